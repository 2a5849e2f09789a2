//! The SYNCOBJ ioctls: the file's syncobj table lives in syncd, and drmd
//! forwards each ioctl's wire payload unchanged (syncd decodes and checks
//! it). HANDLE_TO_FD returns an fd, so it arrives as a `dup` (see the
//! scheme). The table is non-blocking: a wait syncd cannot answer yet is
//! EAGAIN, and drmd parks it on [`PROGRESS`] with its timeout as the
//! deadline rather than wait inside syncd.

use std::time::{Duration, Instant};

use drm_uapi::syncobj as so;
use scheme_seam::{Answer, Errno, Park, Result};
use sync_client::clock::now_ns;
use zerocopy::FromBytes;

use super::PROGRESS;
use crate::errno::{io_errno, would_block};
use crate::file::DrmFile;

/// Forwards SYNCOBJ ioctl `nr`; a wait that cannot answer yet parks until
/// its absolute CLOCK_MONOTONIC timeout (ETIME then, as syncd and Linux).
pub fn forward(file: &mut DrmFile, nr: u64, payload: &mut [u8], expired: bool) -> Result<Answer> {
    match file.syncobjs()?.ioctl(nr, payload) {
        Ok(n) => Ok(Answer::Ready(n)),
        Err(e) if would_block(&e) && matches!(nr, so::WAIT | so::TIMELINE_WAIT) => {
            if expired {
                return Err(Errno::ETIME);
            }
            // syncd parsed the header already (it answered EAGAIN, not
            // EINVAL); a wait's deadline is its timeout.
            let timeout = match nr {
                so::WAIT => so::WaitHeader::read_from_prefix(payload)
                    .ok()
                    .map(|(h, _)| h.timeout_nsec),
                _ => so::TimelineWaitHeader::read_from_prefix(payload)
                    .ok()
                    .map(|(h, _)| h.timeout_nsec),
            }
            .unwrap_or(0);
            let left = timeout.saturating_sub(now_ns() as i64).max(0);
            let until = Instant::now() + Duration::from_nanos(left as u64);
            Ok(Answer::Park(Park::on(PROGRESS).until(until)))
        }
        Err(e) => Err(io_errno(e)),
    }
}
