//! 3D (virgl) commands: contexts, 3D resources, transfers and command submission.
//! Only valid when `VIRTIO_GPU_F_VIRGL` was negotiated.
//!
//! Layouts: [§5.7 Device Operation: controlq (3d)].
//!
//! [§5.7 Device Operation: controlq (3d)]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::header::CtrlHdr;
use crate::ids::{CtxId, ResourceId};
use crate::message::{impl_request, Request, RespNodata};
use crate::types::CommandType;

/// `VIRTIO_GPU_CONTEXT_INIT_CAPSET_ID_MASK`: the low byte of `context_init` selects
/// the capset (and so the protocol) a context speaks.
pub const CONTEXT_INIT_CAPSET_ID_MASK: u32 = 0xFF;

/// `VIRTIO_GPU_RESOURCE_FLAG_Y_0_TOP`, for [`Resource3dParams::flags`]: row 0 is the
/// top of the image (as for scanouts), not the bottom as GL assumes.
pub const RESOURCE_FLAG_Y_0_TOP: u32 = 1 << 0;

/// Longest debug name `CTX_CREATE` carries.
pub const DEBUG_NAME_LEN: usize = 64;

/// `struct virtio_gpu_box`, 24 bytes: a region of a 3D resource
/// ([§5.7 Device Operation: controlq (3d)]).
///
/// [§5.7 Device Operation: controlq (3d)]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct Box3d {
    /// Left edge.
    pub x: U32,
    /// Top edge.
    pub y: U32,
    /// First slice / layer.
    pub z: U32,
    /// Width.
    pub w: U32,
    /// Height.
    pub h: U32,
    /// Depth (number of slices / layers).
    pub d: U32,
}

const _: () = assert!(core::mem::size_of::<Box3d>() == 24);

impl Box3d {
    /// The box at (`x`, `y`, `z`) of `w`×`h`×`d`.
    pub fn new(x: u32, y: u32, z: u32, w: u32, h: u32, d: u32) -> Self {
        Self {
            x: U32::new(x),
            y: U32::new(y),
            z: U32::new(z),
            w: U32::new(w),
            h: U32::new(h),
            d: U32::new(d),
        }
    }
}

/// `struct virtio_gpu_ctx_create`, 96 bytes ([§5.7 Device Operation: controlq (3d)]).
///
/// [§5.7 Device Operation: controlq (3d)]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug)]
pub struct CtxCreate {
    /// Request header; `ctx_id` is the context to create.
    pub hdr: CtrlHdr,
    /// Number of valid bytes in `debug_name`.
    pub nlen: U32,
    /// Capset id in the low byte (see [`CONTEXT_INIT_CAPSET_ID_MASK`]); 0 for the
    /// default virgl context. Only honoured with `CONTEXT_INIT`.
    pub context_init: U32,
    /// Name shown in host logs; not NUL-terminated.
    pub debug_name: [u8; DEBUG_NAME_LEN],
}

const _: () = assert!(core::mem::size_of::<CtxCreate>() == 96);
impl_request!(CtxCreate => CommandType::CTX_CREATE, RespNodata);

impl CtxCreate {
    /// Creates context `ctx`. `debug_name` is cut to 64 bytes, at a character
    /// boundary so host logs never see a broken UTF-8 sequence.
    pub fn new(ctx: CtxId, context_init: u32, debug_name: &str) -> Self {
        let name = &debug_name.as_bytes()[..debug_name.floor_char_boundary(DEBUG_NAME_LEN)];
        let mut cmd = Self {
            hdr: CtrlHdr::new(CommandType::CTX_CREATE).with_ctx(ctx),
            nlen: U32::new(name.len() as u32),
            context_init: U32::new(context_init),
            debug_name: [0; DEBUG_NAME_LEN],
        };
        cmd.debug_name[..name.len()].copy_from_slice(name);
        cmd
    }
}

/// `struct virtio_gpu_ctx_destroy`, 24 bytes: a bare header naming the context
/// ([§5.7 Device Operation: controlq (3d)]).
///
/// [§5.7 Device Operation: controlq (3d)]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct CtxDestroy {
    /// Request header; `ctx_id` is the context to destroy.
    pub hdr: CtrlHdr,
}

const _: () = assert!(core::mem::size_of::<CtxDestroy>() == 24);
impl_request!(CtxDestroy => CommandType::CTX_DESTROY, RespNodata);

impl CtxDestroy {
    /// Destroys context `ctx`.
    pub fn new(ctx: CtxId) -> Self {
        Self {
            hdr: CtrlHdr::new(CommandType::CTX_DESTROY).with_ctx(ctx),
        }
    }
}

/// `struct virtio_gpu_ctx_resource`, 32 bytes, shared by `CTX_ATTACH_RESOURCE`
/// (`DETACH = false`, [`CtxAttachResource`]) and `CTX_DETACH_RESOURCE`
/// (`DETACH = true`, [`CtxDetachResource`]) ([§5.7 Device Operation: controlq (3d)]).
///
/// [§5.7 Device Operation: controlq (3d)]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct CtxResource<const DETACH: bool> {
    /// Request header; `ctx_id` is the context gaining or losing the resource.
    pub hdr: CtrlHdr,
    /// The resource.
    pub resource_id: U32,
    /// Must be zero.
    pub padding: U32,
}

/// `VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE`: lets a context use a resource.
pub type CtxAttachResource = CtxResource<false>;
/// `VIRTIO_GPU_CMD_CTX_DETACH_RESOURCE`: revokes a context's use of a resource.
pub type CtxDetachResource = CtxResource<true>;

const _: () = assert!(core::mem::size_of::<CtxAttachResource>() == 32);
const _: () = assert!(core::mem::size_of::<CtxDetachResource>() == 32);
impl_request!(<const DETACH: bool> CtxResource<DETACH> => if DETACH {
    CommandType::CTX_DETACH_RESOURCE
} else {
    CommandType::CTX_ATTACH_RESOURCE
}, RespNodata);

impl<const DETACH: bool> CtxResource<DETACH> {
    /// Attaches `res` to, or detaches it from, context `ctx`.
    pub fn new(ctx: CtxId, res: ResourceId) -> Self {
        Self {
            hdr: CtrlHdr::new(Self::TYPE).with_ctx(ctx),
            resource_id: U32::new(res.get()),
            padding: U32::ZERO,
        }
    }
}

/// Parameters of a 3D resource, mirroring `drm_virtgpu_resource_create` so an
/// ioctl's fields can be passed straight through. Values are Gallium enums
/// (`PIPE_TEXTURE_2D` = 2, `PIPE_FORMAT_*`, `PIPE_BIND_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resource3dParams {
    /// `PIPE_TEXTURE_*` / `PIPE_BUFFER` target.
    pub target: u32,
    /// `PIPE_FORMAT_*` value.
    pub format: u32,
    /// `PIPE_BIND_*` usage bits.
    pub bind: u32,
    /// Width in pixels (bytes for buffers).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Depth in pixels.
    pub depth: u32,
    /// Number of array layers.
    pub array_size: u32,
    /// Index of the smallest mip level.
    pub last_level: u32,
    /// MSAA sample count, 0 for single-sampled.
    pub nr_samples: u32,
    /// `RESOURCE_FLAG_*` bits.
    pub flags: u32,
}

/// `struct virtio_gpu_resource_create_3d`, 72 bytes
/// ([§5.7 Device Operation: controlq (3d)]).
///
/// [§5.7 Device Operation: controlq (3d)]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct ResourceCreate3d {
    /// Request header.
    pub hdr: CtrlHdr,
    /// Id the guest picks for the new resource.
    pub resource_id: U32,
    /// See [`Resource3dParams::target`].
    pub target: U32,
    /// See [`Resource3dParams::format`].
    pub format: U32,
    /// See [`Resource3dParams::bind`].
    pub bind: U32,
    /// See [`Resource3dParams::width`].
    pub width: U32,
    /// See [`Resource3dParams::height`].
    pub height: U32,
    /// See [`Resource3dParams::depth`].
    pub depth: U32,
    /// See [`Resource3dParams::array_size`].
    pub array_size: U32,
    /// See [`Resource3dParams::last_level`].
    pub last_level: U32,
    /// See [`Resource3dParams::nr_samples`].
    pub nr_samples: U32,
    /// See [`Resource3dParams::flags`].
    pub flags: U32,
    /// Must be zero.
    pub padding: U32,
}

const _: () = assert!(core::mem::size_of::<ResourceCreate3d>() == 72);
impl_request!(ResourceCreate3d => CommandType::RESOURCE_CREATE_3D, RespNodata);

impl ResourceCreate3d {
    /// Creates 3D resource `res`. Fence it if the caller needs to know it exists
    /// before first use: the unfenced answer only means "accepted".
    pub fn new(res: ResourceId, params: &Resource3dParams) -> Self {
        Self {
            hdr: CtrlHdr::new(CommandType::RESOURCE_CREATE_3D),
            resource_id: U32::new(res.get()),
            target: U32::new(params.target),
            format: U32::new(params.format),
            bind: U32::new(params.bind),
            width: U32::new(params.width),
            height: U32::new(params.height),
            depth: U32::new(params.depth),
            array_size: U32::new(params.array_size),
            last_level: U32::new(params.last_level),
            nr_samples: U32::new(params.nr_samples),
            flags: U32::new(params.flags),
            padding: U32::ZERO,
        }
    }

    /// The parameters the command creates the resource with.
    pub fn params(&self) -> Resource3dParams {
        Resource3dParams {
            target: self.target.get(),
            format: self.format.get(),
            bind: self.bind.get(),
            width: self.width.get(),
            height: self.height.get(),
            depth: self.depth.get(),
            array_size: self.array_size.get(),
            last_level: self.last_level.get(),
            nr_samples: self.nr_samples.get(),
            flags: self.flags.get(),
        }
    }
}

/// `struct virtio_gpu_transfer_host_3d`, 72 bytes, shared by `TRANSFER_TO_HOST_3D`
/// (`FROM_HOST = false`, [`TransferToHost3d`]) and `TRANSFER_FROM_HOST_3D`
/// (`FROM_HOST = true`, [`TransferFromHost3d`])
/// ([§5.7 Device Operation: controlq (3d)]).
///
/// [§5.7 Device Operation: controlq (3d)]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct TransferHost3d<const FROM_HOST: bool> {
    /// Request header; `ctx_id` is the context the transfer is ordered in.
    pub hdr: CtrlHdr,
    /// Region of the resource (`box` in C, a Rust keyword).
    pub box_: Box3d,
    /// Byte offset of the region in the backing store.
    pub offset: U64,
    /// The resource.
    pub resource_id: U32,
    /// Mip level.
    pub level: U32,
    /// Bytes per row in the backing store; 0 lets the host derive it.
    pub stride: U32,
    /// Bytes per layer / slice in the backing store; 0 lets the host derive it.
    pub layer_stride: U32,
}

/// `VIRTIO_GPU_CMD_TRANSFER_TO_HOST_3D`: backing store → host resource.
pub type TransferToHost3d = TransferHost3d<false>;
/// `VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D`: host resource → backing store. The data is
/// only there once this command's fence (or a later one) has signalled.
pub type TransferFromHost3d = TransferHost3d<true>;

const _: () = assert!(core::mem::size_of::<TransferToHost3d>() == 72);
const _: () = assert!(core::mem::size_of::<TransferFromHost3d>() == 72);
impl_request!(<const FROM_HOST: bool> TransferHost3d<FROM_HOST> => if FROM_HOST {
    CommandType::TRANSFER_FROM_HOST_3D
} else {
    CommandType::TRANSFER_TO_HOST_3D
}, RespNodata);

impl<const FROM_HOST: bool> TransferHost3d<FROM_HOST> {
    /// Transfers `box_` of mip `level` of `res`, within context `ctx`, to or from the
    /// backing store at `offset` laid out with `stride` / `layer_stride`.
    pub fn new(
        ctx: CtxId,
        res: ResourceId,
        box_: Box3d,
        offset: u64,
        level: u32,
        stride: u32,
        layer_stride: u32,
    ) -> Self {
        Self {
            hdr: CtrlHdr::new(Self::TYPE).with_ctx(ctx),
            box_,
            offset: U64::new(offset),
            resource_id: U32::new(res.get()),
            level: U32::new(level),
            stride: U32::new(stride),
            layer_stride: U32::new(layer_stride),
        }
    }
}

/// `struct virtio_gpu_cmd_submit`, fixed part (32 bytes); `size` bytes of command
/// stream follow it in the request ([§5.7 Device Operation: controlq (3d)]).
///
/// [§5.7 Device Operation: controlq (3d)]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct CmdSubmit {
    /// Request header; `ctx_id` is the context that runs the stream.
    pub hdr: CtrlHdr,
    /// Length of the command stream in bytes.
    pub size: U32,
    /// Must be zero.
    pub padding: U32,
}

const _: () = assert!(core::mem::size_of::<CmdSubmit>() == 32);
impl_request!(CmdSubmit => CommandType::SUBMIT_3D, RespNodata);

impl CmdSubmit {
    /// Submits the `size`-byte stream sent after this struct to context `ctx`. The
    /// unfenced answer comes right after decoding; fence it to learn when the GPU
    /// work has retired.
    pub fn new(ctx: CtxId, size: u32) -> Self {
        Self {
            hdr: CtrlHdr::new(CommandType::SUBMIT_3D).with_ctx(ctx),
            size: U32::new(size),
            padding: U32::ZERO,
        }
    }
}
