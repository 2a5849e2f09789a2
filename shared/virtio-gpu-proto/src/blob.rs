//! Blob resources: creation, scanout, and mapping into the host-visible shared
//! memory region. Only valid when `VIRTIO_GPU_F_RESOURCE_BLOB` was negotiated.
//!
//! Layouts: [§5.7 Device Operation: controlq].
//!
//! [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007

use bitflags::bitflags;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::cmd2d::{resource_only_request, Format, Rect};
use crate::header::CtrlHdr;
use crate::ids::{CtxId, ResourceId, ScanoutId};
use crate::message::{impl_request, RespNodata, Response};
use crate::types::{CommandType, ResponseType};

/// Where a blob's memory lives (`VIRTIO_GPU_BLOB_MEM_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct BlobMem(pub u32);

impl BlobMem {
    /// Guest memory only, supplied as `mem_entry`s.
    pub const GUEST: Self = Self(1);
    /// Host memory allocated by a context (`blob_id` names it); no guest backing.
    pub const HOST3D: Self = Self(2);
    /// Host memory with guest backing supplied as `mem_entry`s.
    pub const HOST3D_GUEST: Self = Self(3);
}

bitflags! {
    /// How a blob may be used (`VIRTIO_GPU_BLOB_FLAG_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct BlobFlags: u32 {
        /// Can be mapped with `RESOURCE_MAP_BLOB`.
        const USE_MAPPABLE = 1 << 0;
        /// Can be shared with other guest processes.
        const USE_SHAREABLE = 1 << 1;
        /// Can be shared with other virtio devices (needs a UUID).
        const USE_CROSS_DEVICE = 1 << 2;
    }
}

/// The caching mode the host mapped a blob with (`VIRTIO_GPU_MAP_CACHE_*`); the guest
/// must map the region the same way. Device-written, so kept as an open newtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct MapCache(pub u32);

impl MapCache {
    /// `VIRTIO_GPU_MAP_CACHE_MASK`: the bits of `map_info` holding the mode.
    pub const MASK: u32 = 0x0F;
    /// No mode reported.
    pub const NONE: Self = Self(0);
    /// Write-back cached.
    pub const CACHED: Self = Self(1);
    /// Uncached.
    pub const UNCACHED: Self = Self(2);
    /// Write-combining.
    pub const WC: Self = Self(3);
}

/// `struct virtio_gpu_resource_create_blob`, fixed part (56 bytes); `nr_entries`
/// [`MemEntry`](crate::cmd2d::MemEntry)s follow it in the request
/// ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct ResourceCreateBlob {
    /// Request header; `ctx_id` is the context owning a `HOST3D*` blob.
    pub hdr: CtrlHdr,
    /// Id the guest picks for the new resource.
    pub resource_id: U32,
    /// A [`BlobMem`] value.
    pub blob_mem: U32,
    /// [`BlobFlags`] bits.
    pub blob_flags: U32,
    /// Number of `mem_entry`s that follow.
    pub nr_entries: U32,
    /// Context-defined id of the host allocation (for `HOST3D*`), 0 otherwise.
    pub blob_id: U64,
    /// Size in bytes.
    pub size: U64,
}

const _: () = assert!(core::mem::size_of::<ResourceCreateBlob>() == 56);
impl_request!(ResourceCreateBlob => CommandType::RESOURCE_CREATE_BLOB, RespNodata);

impl ResourceCreateBlob {
    /// Creates blob `res` of `size` bytes. `ctx` is required for host blobs (it owns
    /// `blob_id`) and `None` for plain guest blobs; the `nr_entries` backing extents
    /// are sent after this struct.
    pub fn new(
        ctx: Option<CtxId>,
        res: ResourceId,
        mem: BlobMem,
        flags: BlobFlags,
        blob_id: u64,
        size: u64,
        nr_entries: u32,
    ) -> Self {
        let hdr = CtrlHdr::new(CommandType::RESOURCE_CREATE_BLOB);
        Self {
            hdr: ctx.map_or(hdr, |ctx| hdr.with_ctx(ctx)),
            resource_id: U32::new(res.get()),
            blob_mem: U32::new(mem.0),
            blob_flags: U32::new(flags.bits()),
            nr_entries: U32::new(nr_entries),
            blob_id: U64::new(blob_id),
            size: U64::new(size),
        }
    }
}

/// How a blob's bytes are laid out as an image, for [`SetScanoutBlob`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanoutBlobLayout {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Pixel format.
    pub format: Format,
    /// Bytes per row, per plane.
    pub strides: [u32; 4],
    /// Byte offset of each plane within the blob.
    pub offsets: [u32; 4],
}

/// `struct virtio_gpu_set_scanout_blob`, 96 bytes ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct SetScanoutBlob {
    /// Request header.
    pub hdr: CtrlHdr,
    /// Region of the image to show.
    pub r: Rect,
    /// Scanout to configure.
    pub scanout_id: U32,
    /// Blob resource to show.
    pub resource_id: U32,
    /// Image width in pixels.
    pub width: U32,
    /// Image height in pixels.
    pub height: U32,
    /// A [`Format`] value.
    pub format: U32,
    /// Must be zero.
    pub padding: U32,
    /// Bytes per row, per plane.
    pub strides: [U32; 4],
    /// Byte offset of each plane within the blob.
    pub offsets: [U32; 4],
}

const _: () = assert!(core::mem::size_of::<SetScanoutBlob>() == 96);
impl_request!(SetScanoutBlob => CommandType::SET_SCANOUT_BLOB, RespNodata);

impl SetScanoutBlob {
    /// Shows region `r` of blob `res`, interpreted per `layout`, on `scanout`.
    /// (Disable a scanout with [`SetScanout`](crate::cmd2d::SetScanout) instead.)
    pub fn new(scanout: ScanoutId, res: ResourceId, r: Rect, layout: &ScanoutBlobLayout) -> Self {
        Self {
            hdr: CtrlHdr::new(CommandType::SET_SCANOUT_BLOB),
            r,
            scanout_id: U32::new(scanout.get()),
            resource_id: U32::new(res.get()),
            width: U32::new(layout.width),
            height: U32::new(layout.height),
            format: U32::new(layout.format.0),
            padding: U32::ZERO,
            strides: layout.strides.map(U32::new),
            offsets: layout.offsets.map(U32::new),
        }
    }
}

/// `struct virtio_gpu_resource_map_blob`, 40 bytes ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct ResourceMapBlob {
    /// Request header.
    pub hdr: CtrlHdr,
    /// A mappable blob resource.
    pub resource_id: U32,
    /// Must be zero.
    pub padding: U32,
    /// Where to place the blob inside the host-visible shared memory region.
    pub offset: U64,
}

const _: () = assert!(core::mem::size_of::<ResourceMapBlob>() == 40);
impl_request!(ResourceMapBlob => CommandType::RESOURCE_MAP_BLOB, RespMapInfo);

impl ResourceMapBlob {
    /// Maps blob `res` at `offset` in the host-visible region; the guest then maps
    /// that part of the region with the caching mode from [`RespMapInfo::cache`].
    pub fn new(res: ResourceId, offset: u64) -> Self {
        Self {
            hdr: CtrlHdr::new(CommandType::RESOURCE_MAP_BLOB),
            resource_id: U32::new(res.get()),
            padding: U32::ZERO,
            offset: U64::new(offset),
        }
    }
}

/// `struct virtio_gpu_resp_map_info`, 32 bytes ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct RespMapInfo {
    /// Response header.
    pub hdr: CtrlHdr,
    /// Caching mode in the [`MapCache::MASK`] bits; other bits are reserved.
    pub map_info: U32,
    /// Must be zero.
    pub padding: U32,
}

const _: () = assert!(core::mem::size_of::<RespMapInfo>() == 32);

impl Response for RespMapInfo {
    const TYPE: ResponseType = ResponseType::OK_MAP_INFO;
}

impl RespMapInfo {
    /// The caching mode, with reserved bits dropped.
    pub fn cache(&self) -> MapCache {
        MapCache(self.map_info.get() & MapCache::MASK)
    }
}

resource_only_request! {
    /// `struct virtio_gpu_resource_unmap_blob`, 32 bytes
    /// ([§5.7 Device Operation: controlq]).
    ///
    /// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
    ResourceUnmapBlob => RESOURCE_UNMAP_BLOB, RespNodata
}
