//! A snapshot of the process: its memory as the kernel and the allocator count it, its
//! threads, the main runtime's tasks and queue, and the open connections.

use serde::Serialize;

/// The snapshot.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Snapshot {
    /// The server's version.
    pub version: &'static str,
    /// Seconds since the process started.
    pub uptime_seconds: f64,
    /// Memory (bytes) and threads, from `/proc/self/status`; absent where that is not.
    pub process: Option<ProcessStatus>,
    /// The main runtime (background work, gRPC, the admin routes' helpers).
    pub runtime: RuntimeStatus,
    /// Connections open on the HTTP, gRPC and proxy doors together, and the limit.
    pub connections: Connections,
    /// The allocator's own statistics, as mimalloc reports them (`committed`,
    /// `reserved`, `pages`, … each with `total`, `peak` and `current`, and the process's
    /// figures as it sees them); absent if it could not report.
    #[schema(value_type = Option<Object>)]
    pub allocator: Option<serde_json::Map<String, serde_json::Value>>,
}

/// What the kernel counts for the process.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProcessStatus {
    /// Resident memory (`VmRSS`).
    pub resident_bytes: u64,
    /// The most resident memory so far (`VmHWM`).
    pub peak_resident_bytes: u64,
    /// The heap and other private data (`VmData`).
    pub data_bytes: u64,
    /// Threads.
    pub threads: u64,
}

/// The main tokio runtime.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuntimeStatus {
    /// Worker threads.
    pub workers: usize,
    /// Tasks alive.
    pub alive_tasks: usize,
    /// Tasks waiting in the global queue.
    pub global_queue_depth: usize,
}

/// Connections.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Connections {
    /// Open now.
    pub open: usize,
    /// `server.max_connections`.
    pub max: usize,
}

/// Reads `/proc/self/status`'s sizes (in kB there) and thread count.
fn process() -> Option<ProcessStatus> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    let kib = |name: &str| field(name).map(|k| k.saturating_mul(1024));
    Some(ProcessStatus {
        resident_bytes: kib("VmRSS:")?,
        peak_resident_bytes: kib("VmHWM:")?,
        data_bytes: kib("VmData:")?,
        threads: field("Threads:")?,
    })
}

/// The snapshot now, with the connections `open` of `max`.
pub fn snapshot(started: std::time::Instant, open: usize, max: usize) -> Snapshot {
    let metrics = tokio::runtime::Handle::current().metrics();
    Snapshot {
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: started.elapsed().as_secs_f64(),
        process: process(),
        runtime: RuntimeStatus {
            workers: metrics.num_workers(),
            alive_tasks: metrics.num_alive_tasks(),
            global_queue_depth: metrics.global_queue_depth(),
        },
        connections: Connections { open, max },
        allocator: super::allocator::stats(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_counts_this_process() {
        let p = process().unwrap();
        assert!(p.resident_bytes > 0 && p.peak_resident_bytes >= p.resident_bytes);
        assert!(p.threads >= 1);
    }
}
