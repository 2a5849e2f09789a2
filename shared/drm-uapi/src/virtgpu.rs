//! `DRM_IOCTL_VIRTGPU_*` as drmd receives them (ABI-REFERENCE §2.1–2.4):
//! the driver ioctls Mesa's virgl winsys issues on a render node.
//!
//! Same rule as [`crate::syncobj`]: each wire struct is the Linux struct
//! minus its pointer fields, in declaration order, with the pointed-to
//! arrays following inline (see [`crate::wire`]). Field types are the
//! host's native integers (DRM structs are host-endian).
//!
//! Linux dispatches on the nr alone and zero-extends structs from older
//! headers (EXECBUFFER was 32 and 40 bytes, TRANSFER 36). Only the current
//! layouts are defined here: a client library that meets an older request
//! number zero-extends the struct before packing, so daemons see one
//! shape.

use crate::wire::is_drm_request;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `DRM_IOCTL_VIRTGPU_MAP` nr: payload [`Map`].
pub const MAP: u64 = 0x41;
/// `DRM_IOCTL_VIRTGPU_EXECBUFFER` nr: payload [`ExecbufferHeader`] +
/// command + BO handles + in and out [`ExecSyncobj`]s.
pub const EXECBUFFER: u64 = 0x42;
/// `DRM_IOCTL_VIRTGPU_GETPARAM` nr: payload [`GetParam`].
pub const GETPARAM: u64 = 0x43;
/// `DRM_IOCTL_VIRTGPU_RESOURCE_CREATE` nr: payload [`ResourceCreate`].
pub const RESOURCE_CREATE: u64 = 0x44;
/// `DRM_IOCTL_VIRTGPU_RESOURCE_INFO` nr: payload [`ResourceInfo`].
pub const RESOURCE_INFO: u64 = 0x45;
/// `DRM_IOCTL_VIRTGPU_TRANSFER_FROM_HOST` nr: payload [`Transfer`].
pub const TRANSFER_FROM_HOST: u64 = 0x46;
/// `DRM_IOCTL_VIRTGPU_TRANSFER_TO_HOST` nr: payload [`Transfer`].
pub const TRANSFER_TO_HOST: u64 = 0x47;
/// `DRM_IOCTL_VIRTGPU_WAIT` nr: payload [`Wait`].
pub const WAIT: u64 = 0x48;
/// `DRM_IOCTL_VIRTGPU_GET_CAPS` nr: payload [`GetCapsHeader`] + data
/// (OUT).
pub const GET_CAPS: u64 = 0x49;
/// `DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB` nr: payload
/// [`ResourceCreateBlobHeader`] + command.
pub const RESOURCE_CREATE_BLOB: u64 = 0x4A;
/// `DRM_IOCTL_VIRTGPU_CONTEXT_INIT` nr: payload [`ContextInitHeader`] +
/// [`ContextParam`]s.
pub const CONTEXT_INIT: u64 = 0x4B;

/// The full Linux request number of `DRM_IOCTL_VIRTGPU_MAP`, which the
/// LD_PRELOAD shim intercepts before translating to a scheme call.
pub const IOC_MAP: u32 = 0xC010_6441;
/// The full Linux request number of `DRM_IOCTL_VIRTGPU_EXECBUFFER` (the
/// current 64-byte struct; see [`IOC_MAP`]).
pub const IOC_EXECBUFFER: u32 = 0xC040_6442;
/// The full Linux request number of `DRM_IOCTL_VIRTGPU_GETPARAM` (see
/// [`IOC_MAP`]).
pub const IOC_GETPARAM: u32 = 0xC010_6443;
/// The full Linux request number of `DRM_IOCTL_VIRTGPU_RESOURCE_CREATE`
/// (see [`IOC_MAP`]).
pub const IOC_RESOURCE_CREATE: u32 = 0xC038_6444;
/// The full Linux request number of `DRM_IOCTL_VIRTGPU_RESOURCE_INFO` (see
/// [`IOC_MAP`]).
pub const IOC_RESOURCE_INFO: u32 = 0xC010_6445;
/// The full Linux request number of `DRM_IOCTL_VIRTGPU_TRANSFER_FROM_HOST`
/// (the current 44-byte struct; see [`IOC_MAP`]).
pub const IOC_TRANSFER_FROM_HOST: u32 = 0xC02C_6446;
/// The full Linux request number of `DRM_IOCTL_VIRTGPU_TRANSFER_TO_HOST`
/// (the current 44-byte struct; see [`IOC_MAP`]).
pub const IOC_TRANSFER_TO_HOST: u32 = 0xC02C_6447;
/// The full Linux request number of `DRM_IOCTL_VIRTGPU_WAIT` (see
/// [`IOC_MAP`]).
pub const IOC_WAIT: u32 = 0xC008_6448;
/// The full Linux request number of `DRM_IOCTL_VIRTGPU_GET_CAPS` (see
/// [`IOC_MAP`]).
pub const IOC_GET_CAPS: u32 = 0xC018_6449;
/// The full Linux request number of
/// `DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB` (see [`IOC_MAP`]).
pub const IOC_RESOURCE_CREATE_BLOB: u32 = 0xC030_644A;
/// The full Linux request number of `DRM_IOCTL_VIRTGPU_CONTEXT_INIT` (see
/// [`IOC_MAP`]).
pub const IOC_CONTEXT_INIT: u32 = 0xC010_644B;

/// EXECBUFFER: wait for an in-fence sync_file before running (on this wire
/// its token follows the arrays; see [`ExecbufferHeader`]).
pub const EXECBUF_FENCE_FD_IN: u32 = 0x01;
/// EXECBUFFER: return an out-fence for the submission (see
/// [`ExecbufferHeader::fence_fd`]).
pub const EXECBUF_FENCE_FD_OUT: u32 = 0x02;
/// EXECBUFFER: submit on ring `ring_idx` of the file's context instead of
/// the global fence timeline.
pub const EXECBUF_RING_IDX: u32 = 0x04;
/// Every EXECBUFFER flag Linux knows; any other bit is EINVAL.
pub const EXECBUF_FLAGS: u32 = EXECBUF_FENCE_FD_IN | EXECBUF_FENCE_FD_OUT | EXECBUF_RING_IDX;
/// [`ExecSyncobj::flags`] of an in-syncobj: reset it after a successful
/// submit, so the client need not issue SYNCOBJ_RESET.
pub const EXECBUF_SYNCOBJ_RESET: u32 = 0x01;
/// Every [`ExecSyncobj`] flag Linux knows; any other bit is EINVAL.
pub const EXECBUF_SYNCOBJ_FLAGS: u32 = EXECBUF_SYNCOBJ_RESET;
/// WAIT: report EBUSY instead of blocking while the BO is busy.
pub const WAIT_NOWAIT: u32 = 0x01;

/// GETPARAM: 1 if the device negotiated the VIRGL (3D) feature; Mesa's
/// virgl driver needs it.
pub const PARAM_3D_FEATURES: u64 = 1;
/// GETPARAM: always 1 — GET_CAPS honours `cap_set_id` and `size`.
pub const PARAM_CAPSET_QUERY_FIX: u64 = 2;
/// GETPARAM: the RESOURCE_BLOB feature (RESOURCE_CREATE_BLOB works).
pub const PARAM_RESOURCE_BLOB: u64 = 3;
/// GETPARAM: a host-visible memory region exists (HOST3D blobs can be
/// mapped).
pub const PARAM_HOST_VISIBLE: u64 = 4;
/// GETPARAM: the RESOURCE_UUID feature (cross-device sharing).
pub const PARAM_CROSS_DEVICE: u64 = 5;
/// GETPARAM: the CONTEXT_INIT feature (CONTEXT_INIT works).
pub const PARAM_CONTEXT_INIT: u64 = 6;
/// GETPARAM: the capset id mask (bit N set ⇔ capset N exists).
pub const PARAM_SUPPORTED_CAPSET_IDS: u64 = 7;
/// GETPARAM: [`CONTEXT_PARAM_DEBUG_NAME`] is accepted (same answer as
/// [`PARAM_CONTEXT_INIT`]; newer kernels only).
pub const PARAM_EXPLICIT_DEBUG_NAME: u64 = 8;

/// CONTEXT_INIT param: the capset the context speaks (≤ 63, and present
/// in the [`PARAM_SUPPORTED_CAPSET_IDS`] mask).
pub const CONTEXT_PARAM_CAPSET_ID: u64 = 1;
/// CONTEXT_INIT param: how many rings (fence timelines) the context has,
/// ≤ 64.
pub const CONTEXT_PARAM_NUM_RINGS: u64 = 2;
/// CONTEXT_INIT param: bitmask of rings whose fences produce DRM events.
pub const CONTEXT_PARAM_POLL_RINGS_MASK: u64 = 3;
/// CONTEXT_INIT param: a debug name. In Linux its value is a pointer to a
/// string, which this wire does not carry yet: daemons must not interpret
/// the value.
pub const CONTEXT_PARAM_DEBUG_NAME: u64 = 4;

/// RESOURCE_CREATE_BLOB: guest memory only (shmem backing).
pub const BLOB_MEM_GUEST: u32 = 1;
/// RESOURCE_CREATE_BLOB: host memory, created by the context's command.
pub const BLOB_MEM_HOST3D: u32 = 2;
/// RESOURCE_CREATE_BLOB: host resource with guest backing.
pub const BLOB_MEM_HOST3D_GUEST: u32 = 3;
/// RESOURCE_CREATE_BLOB flag: the blob will be mapped (MAP + mmap).
pub const BLOB_FLAG_USE_MAPPABLE: u32 = 1;
/// RESOURCE_CREATE_BLOB flag: the blob may be exported.
pub const BLOB_FLAG_USE_SHAREABLE: u32 = 2;
/// RESOURCE_CREATE_BLOB flag: the blob may be shared with other devices.
pub const BLOB_FLAG_USE_CROSS_DEVICE: u32 = 4;

/// The DRM event type read from the drm fd when a fence on a polled ring
/// signals (a bare 8-byte `drm_event`).
pub const EVENT_FENCE_SIGNALED: u32 = 0x9000_0000;

/// MAP (`drm_virtgpu_map`, unchanged: no pointers, no fd).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Map {
    /// OUT: the offset to pass to `mmap` on the drm fd.
    pub offset: u64,
    /// The GEM handle to map (ENOENT if unknown).
    pub handle: u32,
    /// Padding in the Linux struct; clients send 0.
    pub pad: u32,
}

/// EXECBUFFER header (`drm_virtgpu_execbuffer` without its `command`,
/// `bo_handles`, `in_syncobjs` and `out_syncobjs` pointers), followed by
/// `command: [u8; size]`, `bo_handles: [u32; num_bo_handles]`,
/// `in_syncobjs: [ExecSyncobj; num_in_syncobjs]` and
/// `out_syncobjs: [ExecSyncobj; num_out_syncobjs]`, then, with
/// [`EXECBUF_FENCE_FD_IN`] only, the in-fence sync_file's capability token
/// (`u64`) in place of the fd in `fence_fd`.
///
/// The syncobj arrays are packed at 16 bytes per element whatever
/// `syncobj_stride` says: the client library reads each element at the
/// client's stride as Linux does (`min(stride, 16)` bytes, zero-extended)
/// and sends it packed. After a command whose length is not a multiple of
/// 8 the syncobj arrays are unaligned; [`crate::Payload`] copies, so that
/// is harmless.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct ExecbufferHeader {
    /// [`EXECBUF_FLAGS`] bits; others are EINVAL.
    pub flags: u32,
    /// Length in bytes of the command stream that follows.
    pub size: u32,
    /// Length of the BO handle array that follows.
    pub num_bo_handles: u32,
    /// With [`EXECBUF_FENCE_FD_OUT`], OUT: a reference to the submission's
    /// fence, written by the daemon; the client obtains the sync_file fd by
    /// `dup` on the drm fd with that reference (drmd defines the dup
    /// buffer). With [`EXECBUF_FENCE_FD_IN`], IN: ignored; the in-fence
    /// travels as a token after the arrays.
    pub fence_fd: i32,
    /// The ring to submit on, with [`EXECBUF_RING_IDX`]; must be below the
    /// context's ring count.
    pub ring_idx: u32,
    /// The client's element stride in Linux; informational here (see the
    /// type's documentation).
    pub syncobj_stride: u32,
    /// Length of the in-syncobj array (waited on before the command runs).
    pub num_in_syncobjs: u32,
    /// Length of the out-syncobj array (signalled by the submission's
    /// fence).
    pub num_out_syncobjs: u32,
}

/// An EXECBUFFER in- or out-syncobj (`drm_virtgpu_execbuffer_syncobj`,
/// unchanged).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct ExecSyncobj {
    /// The syncobj handle (ENOENT if unknown).
    pub handle: u32,
    /// [`EXECBUF_SYNCOBJ_RESET`] (in-syncobjs only) or 0.
    pub flags: u32,
    /// The timeline point; 0 for a binary syncobj (an out-syncobj's fence
    /// is then replaced rather than added at a point).
    pub point: u64,
}

/// GETPARAM (`drm_virtgpu_getparam` with `value` no longer a pointer).
///
/// In Linux `value` points at an `int` the kernel writes. A scheme cannot
/// write into the client, so on this wire `value` is the OUT value itself
/// and the client library stores it, as a 4-byte `int`, through the
/// client's pointer.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GetParam {
    /// A `PARAM_*` id; unknown ids are EINVAL.
    pub param: u64,
    /// OUT: the parameter's value (0 on input).
    pub value: u64,
}

/// RESOURCE_CREATE (`drm_virtgpu_resource_create`, unchanged).
///
/// The first ten fields are the virgl resource parameters passed to the
/// device's RESOURCE_CREATE_3D.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct ResourceCreate {
    /// The pipe texture target (0 buffer, 2 2D, …).
    pub target: u32,
    /// The virgl format.
    pub format: u32,
    /// The virgl bind flags.
    pub bind: u32,
    /// Width in pixels (bytes for a buffer).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Depth in pixels.
    pub depth: u32,
    /// Number of array layers.
    pub array_size: u32,
    /// The last mip level.
    pub last_level: u32,
    /// Sample count (0 or 1 for single-sampled).
    pub nr_samples: u32,
    /// virgl resource flags.
    pub flags: u32,
    /// OUT: the new GEM handle.
    pub bo_handle: u32,
    /// OUT: the device resource id.
    pub res_handle: u32,
    /// The guest backing size in bytes.
    pub size: u32,
    /// The row stride in bytes; informational.
    pub stride: u32,
}

/// RESOURCE_INFO (`drm_virtgpu_resource_info`, unchanged).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct ResourceInfo {
    /// The GEM handle to describe (ENOENT if unknown).
    pub bo_handle: u32,
    /// OUT: the device resource id.
    pub res_handle: u32,
    /// OUT: the object's size in bytes.
    pub size: u32,
    /// OUT: the `BLOB_MEM_*` of a blob, 0 otherwise.
    pub blob_mem: u32,
}

/// A transfer box (`drm_virtgpu_3d_box`, unchanged), in pixels.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Box3d {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Front layer / slice.
    pub z: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
    /// Depth.
    pub d: u32,
}

impl Box3d {
    /// The `w × h` box of layer 0 at the origin: a whole 2D image.
    pub const fn whole(w: u32, h: u32) -> Box3d {
        Box3d {
            x: 0,
            y: 0,
            z: 0,
            w,
            h,
            d: 1,
        }
    }
}

/// TRANSFER_FROM_HOST / TRANSFER_TO_HOST (`drm_virtgpu_3d_transfer_*`,
/// unchanged; both directions share the layout).
///
/// The ioctl only queues the transfer and attaches its fence to the BO;
/// completion is observed with WAIT.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Transfer {
    /// The GEM handle of the resource (ENOENT if unknown).
    pub bo_handle: u32,
    /// The region to transfer.
    pub box_: Box3d,
    /// The mip level.
    pub level: u32,
    /// Byte offset of the box in the guest backing.
    pub offset: u32,
    /// Row stride in the backing; non-zero only for HOST3D blobs (EINVAL
    /// otherwise).
    pub stride: u32,
    /// Layer stride in the backing; same rule as `stride`.
    pub layer_stride: u32,
}

/// WAIT (`drm_virtgpu_3d_wait`, unchanged).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Wait {
    /// The GEM handle to wait on (ENOENT if unknown).
    pub handle: u32,
    /// [`WAIT_NOWAIT`] or 0.
    pub flags: u32,
}

/// GET_CAPS header (`drm_virtgpu_get_caps` without its `addr` pointer),
/// followed by `data: [u8; size]` (OUT).
///
/// The client sends `size` zero bytes of room; the daemon fills
/// `min(size, capset size)` of them.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GetCapsHeader {
    /// The capset id (EINVAL if the device has none such).
    pub cap_set_id: u32,
    /// The lowest capset version wanted.
    pub cap_set_ver: u32,
    /// Length of the data array that follows; 0 is EINVAL.
    pub size: u32,
    /// Padding in the Linux struct; clients send 0.
    pub pad: u32,
}

/// CONTEXT_INIT header (`drm_virtgpu_context_init` without its
/// `ctx_set_params` pointer), followed by
/// `params: [ContextParam; num_params]`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct ContextInitHeader {
    /// Length of the param array that follows (Linux accepts at most 4).
    pub num_params: u32,
    /// Padding in the Linux struct; clients send 0.
    pub pad: u32,
}

/// One CONTEXT_INIT param (`drm_virtgpu_context_set_param`, unchanged).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct ContextParam {
    /// A `CONTEXT_PARAM_*` id; each at most once.
    pub param: u64,
    /// Its value (see [`CONTEXT_PARAM_DEBUG_NAME`] for the exception).
    pub value: u64,
}

/// RESOURCE_CREATE_BLOB header (`drm_virtgpu_resource_create_blob`
/// without its `cmd` pointer), followed by `cmd: [u8; cmd_size]`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct ResourceCreateBlobHeader {
    /// A `BLOB_MEM_*` value; others are EINVAL.
    pub blob_mem: u32,
    /// `BLOB_FLAG_USE_*` bits; others are EINVAL.
    pub blob_flags: u32,
    /// OUT: the new GEM handle.
    pub bo_handle: u32,
    /// OUT: the device resource id.
    pub res_handle: u32,
    /// The blob's size in bytes.
    pub size: u64,
    /// Padding in the Linux struct; clients send 0.
    pub pad: u32,
    /// Length of the command that follows (submitted before the blob is
    /// created, for HOST3D blobs).
    pub cmd_size: u32,
    /// An opaque id shared with that command.
    pub blob_id: u64,
}

const _: () = {
    use core::mem::size_of;
    assert!(size_of::<Map>() == 16);
    assert!(size_of::<ExecbufferHeader>() == 32);
    assert!(size_of::<ExecSyncobj>() == 16);
    assert!(size_of::<GetParam>() == 16);
    assert!(size_of::<ResourceCreate>() == 56);
    assert!(size_of::<ResourceInfo>() == 16);
    assert!(size_of::<Box3d>() == 24);
    assert!(size_of::<Transfer>() == 44);
    assert!(size_of::<Wait>() == 8);
    assert!(size_of::<GetCapsHeader>() == 16);
    assert!(size_of::<ContextInitHeader>() == 8);
    assert!(size_of::<ContextParam>() == 16);
    assert!(size_of::<ResourceCreateBlobHeader>() == 40);

    // Linux struct sizes from ABI-REFERENCE §2.1.
    assert!(is_drm_request(IOC_MAP, MAP, 16));
    assert!(is_drm_request(IOC_EXECBUFFER, EXECBUFFER, 64));
    assert!(is_drm_request(IOC_GETPARAM, GETPARAM, 16));
    assert!(is_drm_request(IOC_RESOURCE_CREATE, RESOURCE_CREATE, 56));
    assert!(is_drm_request(IOC_RESOURCE_INFO, RESOURCE_INFO, 16));
    assert!(is_drm_request(
        IOC_TRANSFER_FROM_HOST,
        TRANSFER_FROM_HOST,
        44
    ));
    assert!(is_drm_request(IOC_TRANSFER_TO_HOST, TRANSFER_TO_HOST, 44));
    assert!(is_drm_request(IOC_WAIT, WAIT, 8));
    assert!(is_drm_request(IOC_GET_CAPS, GET_CAPS, 24));
    assert!(is_drm_request(
        IOC_RESOURCE_CREATE_BLOB,
        RESOURCE_CREATE_BLOB,
        48
    ));
    assert!(is_drm_request(IOC_CONTEXT_INIT, CONTEXT_INIT, 16));
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{nr_of, Builder, Payload, WireError, MAX_COUNT};
    use alloc::vec::Vec;
    use core::mem::{offset_of, size_of};

    #[test]
    fn sizes_and_offsets() {
        assert_eq!(size_of::<Map>(), 16);
        assert_eq!(offset_of!(Map, offset), 0);
        assert_eq!(offset_of!(Map, handle), 8);
        assert_eq!(offset_of!(Map, pad), 12);

        assert_eq!(size_of::<ExecbufferHeader>(), 32);
        assert_eq!(offset_of!(ExecbufferHeader, flags), 0);
        assert_eq!(offset_of!(ExecbufferHeader, size), 4);
        assert_eq!(offset_of!(ExecbufferHeader, num_bo_handles), 8);
        assert_eq!(offset_of!(ExecbufferHeader, fence_fd), 12);
        assert_eq!(offset_of!(ExecbufferHeader, ring_idx), 16);
        assert_eq!(offset_of!(ExecbufferHeader, syncobj_stride), 20);
        assert_eq!(offset_of!(ExecbufferHeader, num_in_syncobjs), 24);
        assert_eq!(offset_of!(ExecbufferHeader, num_out_syncobjs), 28);

        assert_eq!(size_of::<ExecSyncobj>(), 16);
        assert_eq!(offset_of!(ExecSyncobj, handle), 0);
        assert_eq!(offset_of!(ExecSyncobj, flags), 4);
        assert_eq!(offset_of!(ExecSyncobj, point), 8);

        assert_eq!(size_of::<GetParam>(), 16);
        assert_eq!(offset_of!(GetParam, param), 0);
        assert_eq!(offset_of!(GetParam, value), 8);

        assert_eq!(size_of::<ResourceCreate>(), 56);
        assert_eq!(offset_of!(ResourceCreate, target), 0);
        assert_eq!(offset_of!(ResourceCreate, format), 4);
        assert_eq!(offset_of!(ResourceCreate, bind), 8);
        assert_eq!(offset_of!(ResourceCreate, width), 12);
        assert_eq!(offset_of!(ResourceCreate, height), 16);
        assert_eq!(offset_of!(ResourceCreate, depth), 20);
        assert_eq!(offset_of!(ResourceCreate, array_size), 24);
        assert_eq!(offset_of!(ResourceCreate, last_level), 28);
        assert_eq!(offset_of!(ResourceCreate, nr_samples), 32);
        assert_eq!(offset_of!(ResourceCreate, flags), 36);
        assert_eq!(offset_of!(ResourceCreate, bo_handle), 40);
        assert_eq!(offset_of!(ResourceCreate, res_handle), 44);
        assert_eq!(offset_of!(ResourceCreate, size), 48);
        assert_eq!(offset_of!(ResourceCreate, stride), 52);

        assert_eq!(size_of::<ResourceInfo>(), 16);
        assert_eq!(offset_of!(ResourceInfo, bo_handle), 0);
        assert_eq!(offset_of!(ResourceInfo, res_handle), 4);
        assert_eq!(offset_of!(ResourceInfo, size), 8);
        assert_eq!(offset_of!(ResourceInfo, blob_mem), 12);

        assert_eq!(size_of::<Box3d>(), 24);
        assert_eq!(offset_of!(Box3d, x), 0);
        assert_eq!(offset_of!(Box3d, y), 4);
        assert_eq!(offset_of!(Box3d, z), 8);
        assert_eq!(offset_of!(Box3d, w), 12);
        assert_eq!(offset_of!(Box3d, h), 16);
        assert_eq!(offset_of!(Box3d, d), 20);

        assert_eq!(size_of::<Transfer>(), 44);
        assert_eq!(offset_of!(Transfer, bo_handle), 0);
        assert_eq!(offset_of!(Transfer, box_), 4);
        assert_eq!(offset_of!(Transfer, level), 28);
        assert_eq!(offset_of!(Transfer, offset), 32);
        assert_eq!(offset_of!(Transfer, stride), 36);
        assert_eq!(offset_of!(Transfer, layer_stride), 40);

        assert_eq!(size_of::<Wait>(), 8);
        assert_eq!(offset_of!(Wait, handle), 0);
        assert_eq!(offset_of!(Wait, flags), 4);

        assert_eq!(size_of::<GetCapsHeader>(), 16);
        assert_eq!(offset_of!(GetCapsHeader, cap_set_id), 0);
        assert_eq!(offset_of!(GetCapsHeader, cap_set_ver), 4);
        assert_eq!(offset_of!(GetCapsHeader, size), 8);
        assert_eq!(offset_of!(GetCapsHeader, pad), 12);

        assert_eq!(size_of::<ContextInitHeader>(), 8);
        assert_eq!(offset_of!(ContextInitHeader, num_params), 0);
        assert_eq!(offset_of!(ContextInitHeader, pad), 4);

        assert_eq!(size_of::<ContextParam>(), 16);
        assert_eq!(offset_of!(ContextParam, param), 0);
        assert_eq!(offset_of!(ContextParam, value), 8);

        assert_eq!(size_of::<ResourceCreateBlobHeader>(), 40);
        assert_eq!(offset_of!(ResourceCreateBlobHeader, blob_mem), 0);
        assert_eq!(offset_of!(ResourceCreateBlobHeader, blob_flags), 4);
        assert_eq!(offset_of!(ResourceCreateBlobHeader, bo_handle), 8);
        assert_eq!(offset_of!(ResourceCreateBlobHeader, res_handle), 12);
        assert_eq!(offset_of!(ResourceCreateBlobHeader, size), 16);
        assert_eq!(offset_of!(ResourceCreateBlobHeader, pad), 24);
        assert_eq!(offset_of!(ResourceCreateBlobHeader, cmd_size), 28);
        assert_eq!(offset_of!(ResourceCreateBlobHeader, blob_id), 32);
    }

    #[test]
    fn request_numbers() {
        assert_eq!(IOC_MAP, 0xC0106441);
        assert_eq!(IOC_EXECBUFFER, 0xC0406442);
        assert_eq!(IOC_GETPARAM, 0xC0106443);
        assert_eq!(IOC_RESOURCE_CREATE, 0xC0386444);
        assert_eq!(IOC_RESOURCE_INFO, 0xC0106445);
        assert_eq!(IOC_TRANSFER_FROM_HOST, 0xC02C6446);
        assert_eq!(IOC_TRANSFER_TO_HOST, 0xC02C6447);
        assert_eq!(IOC_WAIT, 0xC0086448);
        assert_eq!(IOC_GET_CAPS, 0xC0186449);
        assert_eq!(IOC_RESOURCE_CREATE_BLOB, 0xC030644A);
        assert_eq!(IOC_CONTEXT_INIT, 0xC010644B);
        assert_eq!(nr_of(IOC_CONTEXT_INIT), CONTEXT_INIT);
    }

    /// What [`serve_execbuffer`] parsed: command, BO handles, in, out.
    type Parsed = (Vec<u8>, Vec<u32>, Vec<ExecSyncobj>, Vec<ExecSyncobj>);

    /// Daemon side of EXECBUFFER: parse everything, then write the fence
    /// reference back.
    fn serve_execbuffer(bytes: &mut [u8], fence: i32) -> Result<Parsed, WireError> {
        let mut p = Payload::new(bytes);
        let h: ExecbufferHeader = p.header()?;
        let command = p.bytes(h.size)?;
        let bos = p.u32s(h.num_bo_handles)?;
        let ins = p.array::<ExecSyncobj>(h.num_in_syncobjs)?;
        let outs = p.array::<ExecSyncobj>(h.num_out_syncobjs)?;
        p.finish()?;
        let command = p.array_bytes(command)?.to_vec();
        if h.flags & EXECBUF_FENCE_FD_OUT != 0 {
            p.set_header(&ExecbufferHeader {
                fence_fd: fence,
                ..h
            })?;
        }
        Ok((command, bos, ins, outs))
    }

    #[test]
    fn execbuffer_round_trip_with_unaligned_syncobjs() {
        let header = ExecbufferHeader {
            flags: EXECBUF_FENCE_FD_OUT,
            size: 12,
            num_bo_handles: 2,
            fence_fd: -1,
            ring_idx: 0,
            syncobj_stride: 16,
            num_in_syncobjs: 0,
            num_out_syncobjs: 1,
        };
        let command = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        let bos = [5u32, 6];
        let out = ExecSyncobj {
            handle: 9,
            flags: 0,
            point: 0x0102_0304_0506_0708,
        };
        let built = Builder::new(&header)
            .array(&command)
            .array(&bos)
            .array::<ExecSyncobj>(&[])
            .array(&[out])
            .build();
        // 32 + 12 + 8: the syncobj starts at 52, not a multiple of 8.
        assert_eq!(built.len(), 32 + 12 + 8 + 16);
        assert_eq!(built[52..56], 9u32.to_ne_bytes());
        assert_eq!(built[60..68], out.point.to_ne_bytes());

        // One spare byte in front makes the whole buffer misaligned too.
        let mut storage = alloc::vec![0u8];
        storage.extend_from_slice(&built);
        let bytes = &mut storage[1..];
        let (cmd, got_bos, ins, outs) = serve_execbuffer(bytes, 77).unwrap();
        assert_eq!(cmd, command);
        assert_eq!(got_bos, bos);
        assert!(ins.is_empty());
        assert_eq!(outs, [out]);
        let (back, _) = ExecbufferHeader::read_from_prefix(bytes).unwrap();
        assert_eq!(
            back,
            ExecbufferHeader {
                fence_fd: 77,
                ..header
            }
        );
        assert_eq!(bytes[32..], built[32..]);

        // One byte short or long is a size error.
        let mut short = built[..built.len() - 1].to_vec();
        assert!(matches!(
            serve_execbuffer(&mut short, 0),
            Err(WireError::Size { .. })
        ));
        let mut long = built.clone();
        long.push(0);
        assert_eq!(
            serve_execbuffer(&mut long, 0),
            Err(WireError::Size {
                expected: 68,
                got: 69
            })
        );
    }

    #[test]
    fn command_streams_are_capped_at_max_bytes_not_max_count() {
        // Mesa's virgl command buffer limit is 65 × 1024 dwords.
        let command: Vec<u8> = (0..(65 * 1024 * 4)).map(|i: u32| i as u8).collect();
        assert!(command.len() > MAX_COUNT as usize);
        let header = ExecbufferHeader {
            size: command.len() as u32,
            ..ExecbufferHeader::default()
        };
        let mut bytes = Builder::new(&header).array(&command).build();
        let (cmd, ..) = serve_execbuffer(&mut bytes, 0).unwrap();
        assert_eq!(cmd, command);
        // The header's fence_fd is untouched without FENCE_FD_OUT.
        assert_eq!(bytes[12..16], 0i32.to_ne_bytes());

        // A size running past the payload is a size error, not an allocation.
        let mut bytes = Builder::new(&ExecbufferHeader {
            size: crate::wire::MAX_BYTES,
            ..ExecbufferHeader::default()
        })
        .build();
        assert!(matches!(
            serve_execbuffer(&mut bytes, 0),
            Err(WireError::Size { got: 32, .. })
        ));
        // A stream over the cap is not carried.
        let mut bytes = Builder::new(&ExecbufferHeader {
            size: u32::MAX,
            ..ExecbufferHeader::default()
        })
        .build();
        assert!(matches!(
            serve_execbuffer(&mut bytes, 0),
            Err(WireError::TooMany { .. })
        ));
        // Element arrays stay capped.
        let mut bytes = Builder::new(&ExecbufferHeader {
            num_bo_handles: u32::MAX,
            ..ExecbufferHeader::default()
        })
        .build();
        assert!(matches!(
            serve_execbuffer(&mut bytes, 0),
            Err(WireError::TooMany { .. })
        ));
    }

    #[test]
    fn get_caps_fills_its_out_array() {
        let header = GetCapsHeader {
            cap_set_id: 2,
            cap_set_ver: 2,
            size: 8,
            pad: 0,
        };
        let mut bytes = Builder::new(&header).zeroed::<u8>(8).build();
        let mut p = Payload::new(&mut bytes);
        let got: GetCapsHeader = p.header().unwrap();
        let data = p.bytes(got.size).unwrap();
        p.finish().unwrap();
        // A capset shorter than the room: the rest stays zero.
        p.set_array(data, &[0xAAu8; 5]).unwrap();
        assert!(matches!(
            p.set_array(data, &[0u8; 9]),
            Err(WireError::Layout { .. })
        ));
        assert_eq!(bytes[16..], [0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0, 0, 0]);
    }

    #[test]
    fn context_init_and_blob_arrays() {
        let params = [
            ContextParam {
                param: CONTEXT_PARAM_CAPSET_ID,
                value: 2,
            },
            ContextParam {
                param: CONTEXT_PARAM_NUM_RINGS,
                value: 1,
            },
        ];
        let mut bytes = Builder::new(&ContextInitHeader {
            num_params: 2,
            pad: 0,
        })
        .array(&params)
        .build();
        let mut p = Payload::new(&mut bytes);
        let got: ContextInitHeader = p.header().unwrap();
        assert_eq!(p.array::<ContextParam>(got.num_params).unwrap(), params);
        p.finish().unwrap();

        let header = ResourceCreateBlobHeader {
            blob_mem: BLOB_MEM_HOST3D,
            blob_flags: BLOB_FLAG_USE_MAPPABLE | BLOB_FLAG_USE_SHAREABLE,
            size: 1 << 20,
            cmd_size: 3,
            blob_id: 42,
            ..ResourceCreateBlobHeader::default()
        };
        let mut bytes = Builder::new(&header).array(&[7u8, 8, 9]).build();
        let mut p = Payload::new(&mut bytes);
        let got: ResourceCreateBlobHeader = p.header().unwrap();
        let cmd = p.bytes(got.cmd_size).unwrap();
        p.finish().unwrap();
        assert_eq!(p.array_bytes(cmd).unwrap(), [7, 8, 9]);
        assert!(matches!(p.array_bytes(1), Err(WireError::Layout { .. })));
        p.set_header(&ResourceCreateBlobHeader {
            bo_handle: 1,
            res_handle: 2,
            ..got
        })
        .unwrap();
        assert_eq!(bytes[8..12], 1u32.to_ne_bytes());
        assert_eq!(bytes[12..16], 2u32.to_ne_bytes());
    }
}
