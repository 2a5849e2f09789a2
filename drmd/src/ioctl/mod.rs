//! One handler per ioctl, one module per area. Each handler decodes its
//! wire payload strictly (a wrong size or a count running past the payload
//! is EINVAL, never a panic), checks its flags, acts, and writes OUT
//! fields back into the payload. One that must wait for a fence or ring
//! room parks on [`PROGRESS`] or [`ROOM`] before it has changed anything,
//! and runs again from the start when the key is woken; drmd itself never
//! waits inside another daemon.

pub mod atomic;
pub mod core;
pub mod kms;
pub mod prime;
pub mod syncobj;
pub mod table;
#[cfg(test)]
mod tests;
pub mod virtgpu;

use std::sync::Arc;

use drm_uapi::wire::WireError;
use scheme_seam::{Answer, Errno, HandleId, Park, WakeKey};

use crate::device::Device;
use crate::file::DrmFile;
use crate::gem::{Gem, Names};
use crate::kms::Kms;
use crate::master::Masters;
use crate::recovery::record::Submit;

/// One ioctl call, as its handler ([`table::Handler`]) sees it: the
/// request and the state it may read and change.
pub struct Call<'a> {
    /// The ioctl number.
    pub nr: u64,
    /// The wire payload, in and out.
    pub payload: &'a mut [u8],
    /// The calling file's handle.
    pub id: HandleId,
    /// The calling process.
    pub pid: u32,
    /// A parked call running at its deadline (see
    /// [`scheme_seam::Context::expired`]).
    pub expired: bool,
    /// The calling file.
    pub file: &'a mut DrmFile,
    /// The device.
    pub device: &'a mut Device,
    /// Who is master of the primary node.
    pub masters: &'a mut Masters,
    /// KMS state.
    pub kms: &'a mut Kms,
    /// GEM_FLINK's global names.
    pub names: &'a mut Names,
    /// The object a dma-buf token names (PRIME import).
    pub dma_buf: &'a dyn Fn(u64) -> Option<Arc<Gem>>,
    /// Journals a submit about to be queued (the recovery journal's; see
    /// [`crate::recovery`]).
    pub stage: &'a mut dyn FnMut(Submit),
}

/// Woken when syncd reports fence or syncobj progress: what parked
/// VIRTGPU_WAITs, SYNCOBJ waits and EXECBUFFERs' in-fences wait for.
pub const PROGRESS: WakeKey = WakeKey(0);
/// Woken when virtio-gpud frees ring room after refusing a QUEUE: what
/// parked EXECBUFFERs and transfers wait for.
pub const ROOM: WakeKey = WakeKey(1);

/// What an ioctl refused for a full ring answers: it waits for room.
pub fn for_room() -> Answer {
    Answer::Park(Park::on(ROOM))
}

/// A malformed payload, as the client sees it: EINVAL, or ENOMEM for an
/// array too large to carry (Linux's allocation of it fails).
pub fn wire(e: WireError) -> Errno {
    log::debug!("malformed ioctl payload: {e}");
    match e {
        WireError::TooMany { .. } => Errno::ENOMEM,
        _ => Errno::EINVAL,
    }
}
