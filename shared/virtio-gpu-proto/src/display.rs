//! Display queries: scanout geometry and EDID.
//!
//! Layouts: [§5.7 Device Operation: controlq].
//!
//! [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::cmd2d::Rect;
use crate::config::MAX_SCANOUTS;
use crate::header::CtrlHdr;
use crate::ids::ScanoutId;
use crate::message::{impl_request, Response};
use crate::types::{CommandType, ResponseType};

/// `VIRTIO_GPU_CMD_GET_DISPLAY_INFO`: a bare header, 24 bytes
/// ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct GetDisplayInfo {
    /// Request header.
    pub hdr: CtrlHdr,
}

const _: () = assert!(core::mem::size_of::<GetDisplayInfo>() == 24);
impl_request!(GetDisplayInfo => CommandType::GET_DISPLAY_INFO, RespDisplayInfo);

impl GetDisplayInfo {
    /// The query.
    pub fn new() -> Self {
        Self {
            hdr: CtrlHdr::new(CommandType::GET_DISPLAY_INFO),
        }
    }
}

/// `struct virtio_gpu_display_one`, 24 bytes: one scanout's preferred mode
/// ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct DisplayOne {
    /// Preferred position and size of the scanout.
    pub r: Rect,
    /// Non-zero when a display is connected to the scanout.
    pub enabled: U32,
    /// Reserved by the spec; passed through as read.
    pub flags: U32,
}

const _: () = assert!(core::mem::size_of::<DisplayOne>() == 24);

/// `struct virtio_gpu_resp_display_info`, 408 bytes
/// ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct RespDisplayInfo {
    /// Response header.
    pub hdr: CtrlHdr,
    /// One entry per possible scanout; only the first `num_scanouts` are meaningful.
    pub pmodes: [DisplayOne; MAX_SCANOUTS],
}

const _: () = assert!(core::mem::size_of::<RespDisplayInfo>() == 408);

impl Response for RespDisplayInfo {
    const TYPE: ResponseType = ResponseType::OK_DISPLAY_INFO;
}

/// `struct virtio_gpu_cmd_get_edid`, 32 bytes ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct GetEdid {
    /// Request header.
    pub hdr: CtrlHdr,
    /// Scanout whose EDID is wanted.
    pub scanout: U32,
    /// Must be zero.
    pub padding: U32,
}

const _: () = assert!(core::mem::size_of::<GetEdid>() == 32);
impl_request!(GetEdid => CommandType::GET_EDID, RespEdid);

impl GetEdid {
    /// Asks for the EDID of `scanout`.
    pub fn new(scanout: ScanoutId) -> Self {
        Self {
            hdr: CtrlHdr::new(CommandType::GET_EDID),
            scanout: U32::new(scanout.get()),
            padding: U32::ZERO,
        }
    }
}

/// `struct virtio_gpu_resp_edid`, 1056 bytes ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug)]
pub struct RespEdid {
    /// Response header.
    pub hdr: CtrlHdr,
    /// Number of valid bytes in `edid`, as claimed by the device.
    pub size: U32,
    /// Must be zero.
    pub padding: U32,
    /// The EDID blob, `size` bytes of it valid.
    pub edid: [u8; 1024],
}

const _: () = assert!(core::mem::size_of::<RespEdid>() == 1056);

impl Response for RespEdid {
    const TYPE: ResponseType = ResponseType::OK_EDID;
}

impl RespEdid {
    /// The valid part of the EDID. `size` comes from the device, so it is clamped to
    /// the buffer rather than trusted.
    pub fn edid(&self) -> &[u8] {
        let len =
            usize::try_from(self.size.get()).map_or(self.edid.len(), |n| n.min(self.edid.len()));
        &self.edid[..len]
    }
}
