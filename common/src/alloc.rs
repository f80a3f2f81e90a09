//! Process memory settings of every binary, applied first thing in `main`.
//!
//! mimalloc (the global allocator, docs/performance.md, "The allocator") asks the
//! kernel for transparent huge pages on its arenas. With the encoder on its own thread,
//! rows are allocated on one thread and freed on another, the two threads' pages spread
//! over more 2 MiB regions, and each touched region became a whole huge page: peak RSS
//! went from 25-46 MB to 60-80 MB. Without huge pages it is 35-50 MB, for a few per
//! cent of CPU (TLB misses); measured in docs/performance.md ("What is left, and why").
//! mimalloc's own `allow_thp` option cannot help here: its first arena is set up before
//! `main`, and only an environment variable reaches that.

/// Turns transparent huge pages off for this process (`PR_SET_THP_DISABLE`); a
/// kernel that refuses leaves things as they were, which is only slower to free.
pub fn tune() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with an integer option and no pointers.
    unsafe {
        let _ = libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// How often each stage of an export hands freed memory back (see [`Releaser`]).
pub const RELEASE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Hands the memory the allocator keeps after frees back to the system now.
///
/// mimalloc returns freed pages after a purge delay (10 ms), but a busy process keeps
/// postponing it: peak RSS of a 1M-row export grew with the rows through S3 (70 MB at
/// 100,000 rows, 140-150 MB at 1,000,000) and reached 60-85 MB with the null sink. A
/// forced collection, every [`RELEASE_INTERVAL`] in each stage, holds every null-sink
/// export under 64 MB and halves the S3 path's peak, for a few per cent of speed
/// (docs/performance.md, "What is left, and why"). `MIMALLOC_PURGE_DELAY=0` would do it
/// for every free, at half the speed.
pub fn release_freed() {
    // SAFETY: mi_collect takes no pointers and may be called from any thread.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Calls [`release_freed`] from a stage's loop at most every [`RELEASE_INTERVAL`].
pub struct Releaser {
    last: std::time::Instant,
}

impl Default for Releaser {
    fn default() -> Self {
        Self {
            last: std::time::Instant::now(),
        }
    }
}

impl Releaser {
    pub fn tick(&mut self) {
        if self.last.elapsed() >= RELEASE_INTERVAL {
            release_freed();
            self.last = std::time::Instant::now();
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn freed_memory_can_be_released_from_any_thread() {
        let big: Vec<Vec<u8>> = (0..64).map(|_| vec![1u8; 1 << 20]).collect();
        drop(big);
        std::thread::spawn(super::release_freed).join().unwrap();
        let mut releaser = super::Releaser::default();
        releaser.tick();
    }

    #[test]
    fn huge_pages_are_off_after_tune() {
        super::tune();
        // SAFETY: prctl with an integer option and no pointers.
        let flag = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(flag, 1);
    }
}
