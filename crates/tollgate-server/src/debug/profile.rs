//! A CPU profile of the whole process for a few seconds, sampled by `pprof`, as a
//! flamegraph (SVG) or in pprof's protobuf format.

use std::time::{Duration, SystemTime};

use prost::Message as _;
use tokio::sync::Mutex;

use super::pprof_proto::Builder;

/// Samples a second.
const FREQUENCY: i32 = 99;
/// The longest profile asked for.
pub const MAX_SECONDS: u64 = 60;

/// The flamegraph of a profile without a sample.
const IDLE_SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"40\">\
<text x=\"10\" y=\"25\">No samples: the process used no CPU while it was profiled.</text></svg>";

/// One profile at a time: the sampler is process-wide.
static RUNNING: Mutex<()> = Mutex::const_new(());

/// How a profile is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An interactive SVG flamegraph.
    Flamegraph,
    /// pprof's protobuf (`go tool pprof` reads it).
    Pprof,
}

/// Why no profile was made.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Another profile is being taken.
    #[error("another profile is being taken")]
    Busy,
    /// The sampler failed.
    #[error("profiling failed: {0}")]
    Failed(String),
}

/// Profiles the process for `seconds` and writes the profile as `format`.
pub async fn take(seconds: u64, format: Format) -> Result<Vec<u8>, ProfileError> {
    let _only = RUNNING.try_lock().map_err(|_| ProfileError::Busy)?;
    let failed = |e: pprof::Error| ProfileError::Failed(e.to_string());
    let started = SystemTime::now();
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(failed)?;
    tokio::time::sleep(Duration::from_secs(seconds.clamp(1, MAX_SECONDS))).await;
    let report = guard.report().build().map_err(failed)?;
    drop(guard);
    match format {
        Format::Flamegraph => {
            if report.data.is_empty() {
                // An idle process is sampled never: a picture saying so, rather than none.
                return Ok(IDLE_SVG.as_bytes().to_vec());
            }
            let mut svg = Vec::new();
            report.flamegraph(&mut svg).map_err(failed)?;
            Ok(svg)
        }
        Format::Pprof => {
            let nanos = |t: SystemTime| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            };
            let duration = i64::try_from(report.timing.duration.as_nanos()).unwrap_or(i64::MAX);
            let mut b = Builder::cpu(i64::from(FREQUENCY), nanos(started), duration);
            for (frames, count) in &report.data {
                let stack: Vec<Vec<(String, String, i64)>> = frames
                    .frames
                    .iter()
                    .map(|inlined| {
                        inlined
                            .iter()
                            .map(|s| {
                                let file = s
                                    .filename
                                    .as_ref()
                                    .map(|f| f.display().to_string())
                                    .unwrap_or_default();
                                (s.name(), file, i64::from(s.lineno.unwrap_or(0)))
                            })
                            .collect()
                    })
                    .collect();
                let count = i64::try_from(*count).unwrap_or(0);
                b.sample(&stack, &frames.thread_name, count);
            }
            Ok(b.finish().encode_to_vec())
        }
    }
}
