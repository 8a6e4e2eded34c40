//! Giving memory back to the OS once connections have closed.
//!
//! Every worker thread runs [`every_period`]: once a [`PERIOD`] it frees the read
//! buffers its pool did not need (`proxy::bufpool::trim`), and when the process's open
//! client connections have fallen well below their peak, or the trim freed buffers, it
//! asks the allocator to return the freed pages of this thread's heap to the OS.
//!
//! Why the allocator needs asking: mimalloc (the binary's allocator) returns a freed
//! page to the OS only after a delay (10 ms), and it checks the delay only when that
//! thread frees another page of the same segment later. When 5,000 WebSockets close at
//! once and the thread then idles, nothing comes later: 1-2 MiB stayed resident for
//! good (`ws-idle` 2 s after close: 764-1,504 KiB held in 3 of 3 rounds; with a zero
//! delay 172-240 KiB). The library does not name an allocator: the binary registers
//! its collector with [`set_collector`]; without one (tests, the system allocator)
//! only the buffers are freed.

use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

use crate::observability::ACTIVE_CONNS;
use crate::proxy::{bufpool, upstream};

/// How often each thread trims its buffer pool and decides whether to collect: a
/// burst's memory is back with the OS one or two periods after it ends.
pub const PERIOD: Duration = Duration::from_secs(1);

/// Open client connections must have fallen by at least this many since the peak
/// seen by the last collection before a thread collects (with a quarter of the peak,
/// whichever is larger): a handful of connections coming and going never costs a
/// collection.
pub const MIN_DROP: usize = 64;

/// Buffers freed by one trim that make the period's collection worth it (128 KiB).
pub const MIN_TRIMMED: usize = 8;

static COLLECTOR: OnceLock<fn()> = OnceLock::new();

/// Registers the function that returns the calling thread's freed allocator pages to
/// the OS (once per process; a second registration is ignored).
pub fn set_collector(collect: fn()) {
    let _ = COLLECTOR.set(collect);
}

/// One thread's view of the open connections since its last collection.
#[derive(Debug, Default)]
struct Watch {
    /// The most connections seen open at a period's end since the last collection.
    peak: usize,
}

impl Watch {
    /// The period's end with `open` connections and `trimmed` buffers just freed:
    /// whether to collect now. A collection starts the watch again from `open`.
    fn period_end(&mut self, open: usize, trimmed: usize) -> bool {
        self.peak = self.peak.max(open);
        let fell = self.peak - open >= MIN_DROP.max(self.peak / 4);
        let collect = fell || trimmed >= MIN_TRIMMED;
        if collect {
            self.peak = open;
        }
        collect
    }
}

/// Runs on every worker thread until the worker ends: each [`PERIOD`], trims this
/// thread's buffer pool and, when [`Watch::period_end`] says so, runs the collector.
/// The collector works on the calling thread's heap, which is why every worker runs
/// its own copy.
pub async fn every_period() {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watch = Watch::default();
    loop {
        tick.tick().await;
        upstream::close_deferred();
        let trimmed = bufpool::trim();
        let open = ACTIVE_CONNS.load(Ordering::Relaxed);
        if watch.period_end(open, trimmed) {
            if let Some(collect) = COLLECTOR.get() {
                collect();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_once_connections_fall_by_a_quarter_of_the_peak() {
        let mut w = Watch::default();
        assert!(!w.period_end(5_000, 0), "rising: nothing to give back");
        assert!(!w.period_end(4_000, 0), "a fifth gone is not enough");
        assert!(w.period_end(3_750, 0), "a quarter of 5,000 gone");
        assert!(
            !w.period_end(3_750, 0),
            "collected: the watch starts from 3,750"
        );
        assert!(w.period_end(0, 0), "all closed");
        assert!(!w.period_end(0, 0), "idle: no collection every period");
    }

    #[test]
    fn small_numbers_never_collect_below_the_minimum_drop() {
        let mut w = Watch::default();
        assert!(!w.period_end(100, 0));
        assert!(!w.period_end(100 - MIN_DROP + 1, 0), "63 of 100 gone");
        assert!(w.period_end(100 - MIN_DROP, 0), "64 of 100 gone");
    }

    #[test]
    fn a_trim_that_freed_buffers_collects() {
        let mut w = Watch::default();
        assert!(!w.period_end(10, MIN_TRIMMED - 1));
        assert!(w.period_end(10, MIN_TRIMMED));
    }
}
