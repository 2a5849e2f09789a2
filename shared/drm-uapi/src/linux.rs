//! The Linux ioctl structs (LP64) whose layout differs from the wire's:
//! those with pointers or fds, as a Linux program passes them to `ioctl`.
//! The LD_PRELOAD shim re-packs them into the wire encoding; programs
//! that drive a node with Linux's ABI (the probes in `tests`) fill them.
//! The others are the same bytes on both sides.
//!
//! Pointers are `u64` addresses; fields are Linux's, in Linux's order.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `struct drm_version`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Version {
    /// Linux's `version_major`.
    pub version_major: i32,
    /// Linux's `version_minor`.
    pub version_minor: i32,
    /// Linux's `version_patchlevel`.
    pub version_patchlevel: i32,
    /// Linux's `pad`.
    pub pad: u32,
    /// Linux's `name_len`.
    pub name_len: u64,
    /// Linux's `name`.
    pub name: u64,
    /// Linux's `date_len`.
    pub date_len: u64,
    /// Linux's `date`.
    pub date: u64,
    /// Linux's `desc_len`.
    pub desc_len: u64,
    /// Linux's `desc`.
    pub desc: u64,
}

/// `struct drm_unique`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Unique {
    /// Linux's `unique_len`.
    pub unique_len: u64,
    /// Linux's `unique`.
    pub unique: u64,
}

/// `struct drm_prime_handle`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PrimeHandle {
    /// Linux's `handle`.
    pub handle: u32,
    /// Linux's `flags`.
    pub flags: u32,
    /// Linux's `fd`.
    pub fd: i32,
}

/// `struct drm_virtgpu_execbuffer` (Mesa 22.3 passes the first 40 bytes;
/// the rest reads as zero, as the kernel zero-fills a short struct).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Execbuffer {
    /// Linux's `flags`.
    pub flags: u32,
    /// Linux's `size`.
    pub size: u32,
    /// Linux's `command`.
    pub command: u64,
    /// Linux's `bo_handles`.
    pub bo_handles: u64,
    /// Linux's `num_bo_handles`.
    pub num_bo_handles: u32,
    /// Linux's `fence_fd`.
    pub fence_fd: i32,
    /// Linux's `ring_idx`.
    pub ring_idx: u32,
    /// Linux's `syncobj_stride`.
    pub syncobj_stride: u32,
    /// Linux's `num_in_syncobjs`.
    pub num_in_syncobjs: u32,
    /// Linux's `num_out_syncobjs`.
    pub num_out_syncobjs: u32,
    /// Linux's `in_syncobjs`.
    pub in_syncobjs: u64,
    /// Linux's `out_syncobjs`.
    pub out_syncobjs: u64,
}

/// `struct drm_virtgpu_getparam`: `value` points at an `int`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GetParam {
    /// Linux's `param`.
    pub param: u64,
    /// Linux's `value`.
    pub value: u64,
}

/// `struct drm_virtgpu_get_caps`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GetCaps {
    /// Linux's `cap_set_id`.
    pub cap_set_id: u32,
    /// Linux's `cap_set_ver`.
    pub cap_set_ver: u32,
    /// Linux's `addr`.
    pub addr: u64,
    /// Linux's `size`.
    pub size: u32,
    /// Linux's `pad`.
    pub pad: u32,
}

/// `struct drm_virtgpu_context_init`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ContextInit {
    /// Linux's `num_params`.
    pub num_params: u32,
    /// Linux's `pad`.
    pub pad: u32,
    /// Linux's `ctx_set_params`.
    pub ctx_set_params: u64,
}

/// `struct drm_virtgpu_resource_create_blob`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ResourceCreateBlob {
    /// Linux's `blob_mem`.
    pub blob_mem: u32,
    /// Linux's `blob_flags`.
    pub blob_flags: u32,
    /// Linux's `bo_handle`.
    pub bo_handle: u32,
    /// Linux's `res_handle`.
    pub res_handle: u32,
    /// Linux's `size`.
    pub size: u64,
    /// Linux's `pad`.
    pub pad: u32,
    /// Linux's `cmd_size`.
    pub cmd_size: u32,
    /// Linux's `cmd`.
    pub cmd: u64,
    /// Linux's `blob_id`.
    pub blob_id: u64,
}

/// `struct sync_merge_data`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Merge {
    /// Linux's `name`.
    pub name: [u8; 32],
    /// Linux's `fd2`.
    pub fd2: i32,
    /// Linux's `fence`.
    pub fence: i32,
    /// Linux's `flags`.
    pub flags: u32,
    /// Linux's `pad`.
    pub pad: u32,
}

/// `struct sync_file_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct FileInfo {
    /// Linux's `name`.
    pub name: [u8; 32],
    /// Linux's `status`.
    pub status: i32,
    /// Linux's `flags`.
    pub flags: u32,
    /// Linux's `num_fences`.
    pub num_fences: u32,
    /// Linux's `pad`.
    pub pad: u32,
    /// Linux's `sync_fence_info`.
    pub sync_fence_info: u64,
}

/// `struct drm_syncobj_handle`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SyncobjHandle {
    /// Linux's `handle`.
    pub handle: u32,
    /// Linux's `flags`.
    pub flags: u32,
    /// Linux's `fd`.
    pub fd: i32,
    /// Linux's `pad`.
    pub pad: u32,
    /// Linux's `point`.
    pub point: u64,
}

/// `struct drm_syncobj_wait`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SyncobjWait {
    /// Linux's `handles`.
    pub handles: u64,
    /// Linux's `timeout_nsec`.
    pub timeout_nsec: i64,
    /// Linux's `count_handles`.
    pub count_handles: u32,
    /// Linux's `flags`.
    pub flags: u32,
    /// Linux's `first_signaled`.
    pub first_signaled: u32,
    /// Linux's `pad`.
    pub pad: u32,
    /// Linux's `deadline_nsec`.
    pub deadline_nsec: u64,
}

/// `struct drm_syncobj_timeline_wait`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SyncobjTimelineWait {
    /// Linux's `handles`.
    pub handles: u64,
    /// Linux's `points`.
    pub points: u64,
    /// Linux's `timeout_nsec`.
    pub timeout_nsec: i64,
    /// Linux's `count_handles`.
    pub count_handles: u32,
    /// Linux's `flags`.
    pub flags: u32,
    /// Linux's `first_signaled`.
    pub first_signaled: u32,
    /// Linux's `pad`.
    pub pad: u32,
    /// Linux's `deadline_nsec`.
    pub deadline_nsec: u64,
}

/// `struct drm_syncobj_array`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SyncobjArray {
    /// Linux's `handles`.
    pub handles: u64,
    /// Linux's `count_handles`.
    pub count_handles: u32,
    /// Linux's `pad`.
    pub pad: u32,
}

/// `struct drm_syncobj_timeline_array`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SyncobjTimelineArray {
    /// Linux's `handles`.
    pub handles: u64,
    /// Linux's `points`.
    pub points: u64,
    /// Linux's `count_handles`.
    pub count_handles: u32,
    /// Linux's `flags`.
    pub flags: u32,
}

/// Linux's `O_CLOEXEC` and `O_RDWR`, which `drm_prime_handle.flags`
/// carries as `DRM_CLOEXEC` / `DRM_RDWR`.
pub const O_CLOEXEC: u32 = 0o2_000_000;
/// See [`O_CLOEXEC`].
pub const O_RDWR: u32 = 2;

const _: () = {
    use core::mem::size_of;
    assert!(size_of::<Version>() == 64);
    assert!(size_of::<Unique>() == 16);
    assert!(size_of::<PrimeHandle>() == 12);
    assert!(size_of::<Execbuffer>() == 64);
    assert!(size_of::<GetParam>() == 16);
    assert!(size_of::<GetCaps>() == 24);
    assert!(size_of::<ContextInit>() == 16);
    assert!(size_of::<ResourceCreateBlob>() == 48);
    assert!(size_of::<Merge>() == 48);
    assert!(size_of::<FileInfo>() == 56);
    assert!(size_of::<SyncobjHandle>() == 24);
    assert!(size_of::<SyncobjWait>() == 40);
    assert!(size_of::<SyncobjTimelineWait>() == 48);
    assert!(size_of::<SyncobjArray>() == 16);
    assert!(size_of::<SyncobjTimelineArray>() == 24);
};

/// `struct drm_mode_atomic` (56 bytes).
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Atomic {
    /// Flags.
    pub flags: u32,
    /// Objects in the commit.
    pub count_objs: u32,
    /// `u32` object ids.
    pub objs_ptr: u64,
    /// `u32` property count per object.
    pub count_props_ptr: u64,
    /// `u32` property ids.
    pub props_ptr: u64,
    /// `u64` property values.
    pub prop_values_ptr: u64,
    /// Must be 0.
    pub reserved: u64,
    /// Returned in the events.
    pub user_data: u64,
}

const _: () = assert!(core::mem::size_of::<Atomic>() == 56);
