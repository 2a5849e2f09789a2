//! Resource commands of the base (2D) protocol, and the sub-structs they share with
//! the blob and 3D commands.
//!
//! Layouts: [§5.7 Device Operation: controlq].
//!
//! [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::header::CtrlHdr;
use crate::ids::{ResourceId, ScanoutId};
use crate::message::{impl_request, RespNodata, Response};
use crate::types::{CommandType, ResponseType};

/// A 2D pixel format (`enum virtio_gpu_formats`). The values deliberately equal the
/// Gallium `PIPE_FORMAT_*` numbers, so the same value works for virgl resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Format(pub u32);

impl Format {
    /// Bytes B, G, R, A in memory; DRM `ARGB8888` on little-endian.
    pub const B8G8R8A8_UNORM: Self = Self(1);
    /// Bytes B, G, R, X in memory; DRM `XRGB8888` on little-endian.
    pub const B8G8R8X8_UNORM: Self = Self(2);
    /// Bytes A, R, G, B in memory.
    pub const A8R8G8B8_UNORM: Self = Self(3);
    /// Bytes X, R, G, B in memory.
    pub const X8R8G8B8_UNORM: Self = Self(4);
    /// Bytes R, G, B, A in memory.
    pub const R8G8B8A8_UNORM: Self = Self(67);
    /// Bytes X, B, G, R in memory.
    pub const X8B8G8R8_UNORM: Self = Self(68);
    /// Bytes A, B, G, R in memory.
    pub const A8B8G8R8_UNORM: Self = Self(121);
    /// Bytes R, G, B, X in memory.
    pub const R8G8B8X8_UNORM: Self = Self(134);
}

/// `struct virtio_gpu_rect`, 16 bytes ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct Rect {
    /// Left edge.
    pub x: U32,
    /// Top edge.
    pub y: U32,
    /// Width in pixels.
    pub width: U32,
    /// Height in pixels.
    pub height: U32,
}

const _: () = assert!(core::mem::size_of::<Rect>() == 16);

impl Rect {
    /// A rectangle with its top-left corner at (`x`, `y`).
    pub fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Self {
            x: U32::new(x),
            y: U32::new(y),
            width: U32::new(width),
            height: U32::new(height),
        }
    }
}

/// `struct virtio_gpu_mem_entry`, 16 bytes: one guest-physical extent of a backing
/// store ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct MemEntry {
    /// Guest-physical (DMA) address.
    pub addr: U64,
    /// Length in bytes.
    pub length: U32,
    /// Must be zero.
    pub padding: U32,
}

const _: () = assert!(core::mem::size_of::<MemEntry>() == 16);

impl MemEntry {
    /// An extent of `length` bytes at DMA address `addr`.
    pub fn new(addr: u64, length: u32) -> Self {
        Self {
            addr: U64::new(addr),
            length: U32::new(length),
            padding: U32::ZERO,
        }
    }
}

/// `struct virtio_gpu_resource_create_2d`, 40 bytes
/// ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct ResourceCreate2d {
    /// Request header.
    pub hdr: CtrlHdr,
    /// Id the guest picks for the new resource.
    pub resource_id: U32,
    /// A [`Format`] value.
    pub format: U32,
    /// Width in pixels.
    pub width: U32,
    /// Height in pixels.
    pub height: U32,
}

const _: () = assert!(core::mem::size_of::<ResourceCreate2d>() == 40);
impl_request!(ResourceCreate2d => CommandType::RESOURCE_CREATE_2D, RespNodata);

impl ResourceCreate2d {
    /// Creates resource `res` of `width`×`height` pixels in `format`.
    pub fn new(res: ResourceId, format: Format, width: u32, height: u32) -> Self {
        Self {
            hdr: CtrlHdr::new(CommandType::RESOURCE_CREATE_2D),
            resource_id: U32::new(res.get()),
            format: U32::new(format.0),
            width: U32::new(width),
            height: U32::new(height),
        }
    }
}

/// Defines a request that carries only a resource id (plus padding); several
/// commands share exactly this layout.
macro_rules! resource_only_request {
    ($(#[$meta:meta])* $name:ident => $code:ident, $resp:ty) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(
            ::zerocopy::FromBytes,
            ::zerocopy::IntoBytes,
            ::zerocopy::Immutable,
            ::zerocopy::KnownLayout,
            ::zerocopy::Unaligned,
            Clone,
            Copy,
            Debug,
            Default,
        )]
        pub struct $name {
            /// Request header.
            pub hdr: $crate::header::CtrlHdr,
            /// The resource the command applies to.
            pub resource_id: ::zerocopy::little_endian::U32,
            /// Must be zero.
            pub padding: ::zerocopy::little_endian::U32,
        }

        const _: () = assert!(core::mem::size_of::<$name>() == 32);
        $crate::message::impl_request!($name => $crate::types::CommandType::$code, $resp);

        impl $name {
            /// The command for resource `res`.
            pub fn new(res: $crate::ids::ResourceId) -> Self {
                Self {
                    hdr: $crate::header::CtrlHdr::new($crate::types::CommandType::$code),
                    resource_id: ::zerocopy::little_endian::U32::new(res.get()),
                    padding: ::zerocopy::little_endian::U32::ZERO,
                }
            }
        }
    };
}
pub(crate) use resource_only_request;

resource_only_request! {
    /// `struct virtio_gpu_resource_unref`, 32 bytes: destroys a resource
    /// ([§5.7 Device Operation: controlq]).
    ///
    /// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
    ResourceUnref => RESOURCE_UNREF, RespNodata
}

resource_only_request! {
    /// `struct virtio_gpu_resource_detach_backing`, 32 bytes
    /// ([§5.7 Device Operation: controlq]).
    ///
    /// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
    ResourceDetachBacking => RESOURCE_DETACH_BACKING, RespNodata
}

resource_only_request! {
    /// `struct virtio_gpu_resource_assign_uuid`, 32 bytes: gets a UUID under which
    /// other virtio devices can import the resource ([§5.7 Device Operation: controlq]).
    ///
    /// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
    ResourceAssignUuid => RESOURCE_ASSIGN_UUID, RespResourceUuid
}

/// `struct virtio_gpu_set_scanout`, 48 bytes ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct SetScanout {
    /// Request header.
    pub hdr: CtrlHdr,
    /// Region of the resource to show.
    pub r: Rect,
    /// Scanout to configure.
    pub scanout_id: U32,
    /// Resource to show; 0 disables the scanout.
    pub resource_id: U32,
}

const _: () = assert!(core::mem::size_of::<SetScanout>() == 48);
impl_request!(SetScanout => CommandType::SET_SCANOUT, RespNodata);

impl SetScanout {
    /// Shows region `r` of `res` on `scanout`, or disables the scanout when `res` is
    /// `None`.
    pub fn new(scanout: ScanoutId, res: Option<ResourceId>, r: Rect) -> Self {
        Self {
            hdr: CtrlHdr::new(CommandType::SET_SCANOUT),
            r,
            scanout_id: U32::new(scanout.get()),
            resource_id: U32::new(res.map_or(0, ResourceId::get)),
        }
    }
}

/// `struct virtio_gpu_resource_flush`, 48 bytes ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct ResourceFlush {
    /// Request header.
    pub hdr: CtrlHdr,
    /// Damaged region, in resource coordinates.
    pub r: Rect,
    /// Resource whose scanouts are refreshed.
    pub resource_id: U32,
    /// Must be zero.
    pub padding: U32,
}

const _: () = assert!(core::mem::size_of::<ResourceFlush>() == 48);
impl_request!(ResourceFlush => CommandType::RESOURCE_FLUSH, RespNodata);

impl ResourceFlush {
    /// Refreshes region `r` of `res` on every scanout showing it.
    pub fn new(res: ResourceId, r: Rect) -> Self {
        Self {
            hdr: CtrlHdr::new(CommandType::RESOURCE_FLUSH),
            r,
            resource_id: U32::new(res.get()),
            padding: U32::ZERO,
        }
    }
}

/// `struct virtio_gpu_transfer_to_host_2d`, 56 bytes
/// ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct TransferToHost2d {
    /// Request header.
    pub hdr: CtrlHdr,
    /// Region to copy, in resource coordinates.
    pub r: Rect,
    /// Byte offset of the region's first pixel in the backing store.
    pub offset: U64,
    /// Destination resource.
    pub resource_id: U32,
    /// Must be zero.
    pub padding: U32,
}

const _: () = assert!(core::mem::size_of::<TransferToHost2d>() == 56);
impl_request!(TransferToHost2d => CommandType::TRANSFER_TO_HOST_2D, RespNodata);

impl TransferToHost2d {
    /// Copies region `r` of `res` from its backing store, starting at byte `offset`.
    pub fn new(res: ResourceId, r: Rect, offset: u64) -> Self {
        Self {
            hdr: CtrlHdr::new(CommandType::TRANSFER_TO_HOST_2D),
            r,
            offset: U64::new(offset),
            resource_id: U32::new(res.get()),
            padding: U32::ZERO,
        }
    }
}

/// `struct virtio_gpu_resource_attach_backing`, 32 bytes; `nr_entries` [`MemEntry`]s
/// follow it in the request ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct ResourceAttachBacking {
    /// Request header.
    pub hdr: CtrlHdr,
    /// Resource receiving the backing store.
    pub resource_id: U32,
    /// Number of [`MemEntry`]s that follow.
    pub nr_entries: U32,
}

const _: () = assert!(core::mem::size_of::<ResourceAttachBacking>() == 32);
impl_request!(ResourceAttachBacking => CommandType::RESOURCE_ATTACH_BACKING, RespNodata);

impl ResourceAttachBacking {
    /// Attaches the `nr_entries` extents sent after this struct to `res`.
    pub fn new(res: ResourceId, nr_entries: u32) -> Self {
        Self {
            hdr: CtrlHdr::new(CommandType::RESOURCE_ATTACH_BACKING),
            resource_id: U32::new(res.get()),
            nr_entries: U32::new(nr_entries),
        }
    }
}

/// `struct virtio_gpu_resp_resource_uuid`, 40 bytes
/// ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct RespResourceUuid {
    /// Response header.
    pub hdr: CtrlHdr,
    /// The UUID the host assigned.
    pub uuid: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<RespResourceUuid>() == 40);

impl Response for RespResourceUuid {
    const TYPE: ResponseType = ResponseType::OK_RESOURCE_UUID;
}
