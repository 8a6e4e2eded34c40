//! switchyard's process allocator and the one call into it beyond `GlobalAlloc`.
//!
//! The workspace forbids `unsafe` code; calling a C function needs it, so the call
//! lives here, in one block, behind a safe function.

pub use mimalloc::MiMalloc;

/// Returns the freed pages of the calling thread's heap to the OS now, instead of
/// after mimalloc's purge delay (which it only checks when the thread frees again:
/// an idle thread otherwise keeps them), and the arena's delayed purges. Costs a walk
/// over the thread's pages: call it after many connections closed, not per request.
pub fn collect() {
    // SAFETY: `mi_collect` takes no pointers and may be called from any thread at
    // any time; with `force` it also purges without waiting for the delay.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

#[cfg(test)]
mod tests {
    #[global_allocator]
    static GLOBAL: super::MiMalloc = super::MiMalloc;

    #[test]
    fn collect_returns_freed_pages_to_the_os() {
        // 64 MiB in 64 KiB blocks, touched, then freed: mimalloc keeps the pages
        // committed until its delay passes and the thread frees again; `collect` must
        // give them back now. Measured as the process's resident set.
        let rss = || {
            let s = std::fs::read_to_string("/proc/self/statm").unwrap();
            let pages: u64 = s.split_whitespace().nth(1).unwrap().parse().unwrap();
            pages * 4096
        };
        let blocks: Vec<Vec<u8>> = (0..1024).map(|_| vec![1u8; 64 * 1024]).collect();
        let full = rss();
        drop(blocks);
        let freed = rss();
        super::collect();
        let collected = rss();
        assert!(
            full - collected > 48 << 20,
            "collect gave back only {} KiB of 64 MiB (resident {full} before free, {freed} after, {collected} after collect)",
            (full.saturating_sub(collected)) >> 10
        );
    }
}
