//! The SYNCOBJ ioctls: the file's syncobj table lives in syncd, and drmd
//! forwards each ioctl's wire payload unchanged (syncd decodes and checks
//! it). HANDLE_TO_FD returns an fd, so it arrives as a `dup` (see the
//! scheme).

use scheme_seam::Result;

use crate::errno::io_errno;
use crate::file::DrmFile;

/// Forwards SYNCOBJ ioctl `nr`.
pub fn forward(file: &mut DrmFile, nr: u64, payload: &mut [u8]) -> Result<usize> {
    file.syncobjs()?.ioctl(nr, payload).map_err(io_errno)
}
