//! The header that starts every request and every response.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::ids::{CtxId, FenceId};
use crate::types::{CommandType, ResponseType};

/// `struct virtio_gpu_ctrl_hdr`, 24 bytes
/// ([§5.7 Device Operation: Request header]).
///
/// Fence semantics: with [`FLAG_FENCE`](Self::FLAG_FENCE) set the device answers only
/// once the host work has finished and echoes the flag and `fence_id`; without it the
/// response only means "accepted". With [`FLAG_INFO_RING_IDX`](Self::FLAG_INFO_RING_IDX)
/// the fence id is a sequence number on the (`ctx_id`, `ring_idx`) timeline instead of
/// the global one.
///
/// [§5.7 Device Operation: Request header]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct CtrlHdr {
    /// Command code in requests, response code in responses.
    pub ty: U32,
    /// `FLAG_*` bits.
    pub flags: U32,
    /// Fence sequence number; meaningful only with `FLAG_FENCE`.
    pub fence_id: U64,
    /// 3D context, 0 for 2D and global commands.
    pub ctx_id: U32,
    /// Timeline within the context, `0..MAX_RINGS`; meaningful only with
    /// `FLAG_INFO_RING_IDX`.
    pub ring_idx: u8,
    /// Must be zero.
    pub padding: [u8; 3],
}

const _: () = assert!(core::mem::size_of::<CtrlHdr>() == 24);

impl CtrlHdr {
    /// `VIRTIO_GPU_FLAG_FENCE`: complete before answering and echo `fence_id`.
    pub const FLAG_FENCE: u32 = 1 << 0;
    /// `VIRTIO_GPU_FLAG_INFO_RING_IDX`: `ring_idx` selects a per-context timeline.
    /// Only valid when `CONTEXT_INIT` was negotiated.
    pub const FLAG_INFO_RING_IDX: u32 = 1 << 1;
    /// Number of fence timelines a context can have (`ring_idx` is below this).
    pub const MAX_RINGS: u8 = 64;

    /// A header for a request of type `ty`: unfenced, no context.
    pub fn new(ty: CommandType) -> Self {
        Self {
            ty: U32::new(ty.0),
            ..Self::default()
        }
    }

    /// Targets the request at 3D context `ctx`.
    #[must_use]
    pub fn with_ctx(mut self, ctx: CtxId) -> Self {
        self.ctx_id = U32::new(ctx.get());
        self
    }

    /// Asks the device to finish the work before answering and to report `fence`.
    #[must_use]
    pub fn fenced(mut self, fence: FenceId) -> Self {
        self.flags = U32::new(self.flags() | Self::FLAG_FENCE);
        self.fence_id = U64::new(fence.get());
        self
    }

    /// Puts the fence on timeline `ring` of the header's context instead of the
    /// device-global timeline.
    ///
    /// # Panics
    ///
    /// If `ring >= MAX_RINGS`; callers validate client-supplied ring indices first.
    #[must_use]
    pub fn with_ring(mut self, ring: u8) -> Self {
        assert!(ring < Self::MAX_RINGS, "ring_idx {ring} out of range");
        self.flags = U32::new(self.flags() | Self::FLAG_INFO_RING_IDX);
        self.ring_idx = ring;
        self
    }

    /// The raw type code, without interpreting it as a command or response.
    pub fn ty(&self) -> u32 {
        self.ty.get()
    }

    /// The type code read as a request (what a device model sees).
    pub fn command_type(&self) -> CommandType {
        CommandType(self.ty())
    }

    /// The type code read as a response (what the driver sees).
    pub fn response_type(&self) -> ResponseType {
        ResponseType(self.ty())
    }

    /// The raw `FLAG_*` bits, including any this crate does not know.
    pub fn flags(&self) -> u32 {
        self.flags.get()
    }

    /// The fence id, or `None` when `FLAG_FENCE` is clear and the field is meaningless.
    pub fn fence_id(&self) -> Option<FenceId> {
        (self.flags() & Self::FLAG_FENCE != 0).then(|| FenceId::new(self.fence_id.get()))
    }

    /// The context id, or `None` for 2D/global commands.
    pub fn ctx_id(&self) -> Option<CtxId> {
        CtxId::new(self.ctx_id.get())
    }

    /// The ring index, or `None` when `FLAG_INFO_RING_IDX` is clear.
    pub fn ring_idx(&self) -> Option<u8> {
        (self.flags() & Self::FLAG_INFO_RING_IDX != 0).then_some(self.ring_idx)
    }
}
