//! Process memory settings of every binary, applied first thing in `main`.
//!
//! mimalloc (the global allocator, README Performance) asks the kernel for transparent
//! huge pages on its arenas. With the encoder on its own thread, rows are allocated on
//! one thread and freed on another, the two threads' pages spread over more 2 MiB
//! regions, and each touched region became a whole huge page: peak RSS went from 25-46
//! MB to 60-80 MB. Without huge pages it is 35-50 MB, for a few per cent of CPU (TLB
//! misses); measured in README. mimalloc's own `allow_thp` option cannot help here: its
//! first arena is set up before `main`, and only an environment variable reaches that.

/// Turns transparent huge pages off for this process (`PR_SET_THP_DISABLE`); a
/// kernel that refuses leaves things as they were, which is only slower to free.
pub fn tune() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with an integer option and no pointers.
    unsafe {
        let _ = libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn huge_pages_are_off_after_tune() {
        super::tune();
        // SAFETY: prctl with an integer option and no pointers.
        let flag = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(flag, 1);
    }
}
