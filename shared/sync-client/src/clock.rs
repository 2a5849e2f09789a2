//! CLOCK_MONOTONIC in nanoseconds: the clock DRM wait deadlines and
//! sync_file timestamps use, the same in every process of the machine.

/// Now, in CLOCK_MONOTONIC nanoseconds.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is; the
    // monotonic clock always exists, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
