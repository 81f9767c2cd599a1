//! The allocator's own statistics: what mimalloc has reserved and committed from the
//! system, its pages and its allocations, as it reports them itself.
//!
//! mimalloc hands its statistics out only through its C interface, so this module holds
//! the one unsafe call of the debug routes.

use serde_json::{Map, Value};

/// The statistics report's largest size tried: the report is a few tens of kilobytes.
const MAX_REPORT: usize = 1 << 20;

/// mimalloc's statistics as it reports them (`mi_stats_get_json`), without the per-size
/// bins; `None` if the report could not be read.
pub fn stats() -> Option<Map<String, Value>> {
    let mut size = 64 * 1024;
    while size <= MAX_REPORT {
        let mut buf = vec![0u8; size];
        // SAFETY: `buf` is a live, writable buffer of `size` bytes for the whole call;
        // mimalloc writes at most `size` bytes into it (a NUL-terminated string) and
        // returns null rather than overrun it. The call reads the process's statistics
        // under mimalloc's own synchronisation, so it is safe from any thread.
        #[allow(unsafe_code)]
        let written = unsafe { libmimalloc_sys::mi_stats_get_json(size, buf.as_mut_ptr().cast()) };
        if !written.is_null() {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let text = buf.get(..end)?;
            let Value::Object(mut report) = serde_json::from_slice(text).ok()? else {
                return None;
            };
            report.retain(|name, _| !name.ends_with("_bins"));
            return Some(report);
        }
        size = size.saturating_mul(2);
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn mimalloc_reports_what_it_committed() {
        let held: Vec<Vec<u8>> = (0..64).map(|_| vec![1u8; 64 * 1024]).collect();
        let s = stats().unwrap();
        assert!(s["mimalloc_version"].as_u64().unwrap() > 0);
        assert!(s["committed"]["current"].as_u64().unwrap() >= 4 * 1024 * 1024);
        assert!(s["process"]["rss_current"].as_u64().unwrap() > 0);
        assert!(!s.contains_key("malloc_bins"));
        drop(held);
    }
}
