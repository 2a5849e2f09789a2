//! Cursor-queue commands. The cursor image is always a 64×64 resource; the device's
//! answers on this queue carry nothing the driver needs.
//!
//! Layouts: [§5.7 Device Operation: cursorq].
//!
//! [§5.7 Device Operation: cursorq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::header::CtrlHdr;
use crate::ids::{ResourceId, ScanoutId};
use crate::message::{impl_request, NoResponse};
use crate::types::CommandType;

/// `struct virtio_gpu_cursor_pos`, 16 bytes ([§5.7 Device Operation: cursorq]).
///
/// [§5.7 Device Operation: cursorq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct CursorPos {
    /// Scanout the cursor is on.
    pub scanout_id: U32,
    /// Horizontal position in scanout coordinates.
    pub x: U32,
    /// Vertical position in scanout coordinates.
    pub y: U32,
    /// Must be zero.
    pub padding: U32,
}

const _: () = assert!(core::mem::size_of::<CursorPos>() == 16);

impl CursorPos {
    /// Position (`x`, `y`) on `scanout`.
    pub fn new(scanout: ScanoutId, x: u32, y: u32) -> Self {
        Self {
            scanout_id: U32::new(scanout.get()),
            x: U32::new(x),
            y: U32::new(y),
            padding: U32::ZERO,
        }
    }
}

/// `struct virtio_gpu_update_cursor`, 56 bytes, shared by `UPDATE_CURSOR`
/// (`MOVE = false`, [`UpdateCursor`]) and `MOVE_CURSOR` (`MOVE = true`,
/// [`MoveCursor`]) ([§5.7 Device Operation: cursorq]).
///
/// [§5.7 Device Operation: cursorq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct CursorCmd<const MOVE: bool> {
    /// Request header.
    pub hdr: CtrlHdr,
    /// Where the cursor's hotspot goes.
    pub pos: CursorPos,
    /// 64×64 cursor image; 0 hides the cursor. Ignored by `MOVE_CURSOR`.
    pub resource_id: U32,
    /// Hotspot x within the image. Ignored by `MOVE_CURSOR`.
    pub hot_x: U32,
    /// Hotspot y within the image. Ignored by `MOVE_CURSOR`.
    pub hot_y: U32,
    /// Must be zero.
    pub padding: U32,
}

/// `VIRTIO_GPU_CMD_UPDATE_CURSOR`: new image and hotspot, plus position.
pub type UpdateCursor = CursorCmd<false>;
/// `VIRTIO_GPU_CMD_MOVE_CURSOR`: position only, much cheaper for the host.
pub type MoveCursor = CursorCmd<true>;

const _: () = assert!(core::mem::size_of::<UpdateCursor>() == 56);
const _: () = assert!(core::mem::size_of::<MoveCursor>() == 56);
impl_request!(<const MOVE: bool> CursorCmd<MOVE> => if MOVE {
    CommandType::MOVE_CURSOR
} else {
    CommandType::UPDATE_CURSOR
}, NoResponse);

impl UpdateCursor {
    /// Shows image `res` (or hides the cursor when `None`) with its hotspot at
    /// (`hot_x`, `hot_y`), placed at `pos`.
    pub fn new(pos: CursorPos, res: Option<ResourceId>, hot_x: u32, hot_y: u32) -> Self {
        Self {
            hdr: CtrlHdr::new(CommandType::UPDATE_CURSOR),
            pos,
            resource_id: U32::new(res.map_or(0, ResourceId::get)),
            hot_x: U32::new(hot_x),
            hot_y: U32::new(hot_y),
            padding: U32::ZERO,
        }
    }
}

impl MoveCursor {
    /// Moves the current cursor, `res`, to `pos`.
    ///
    /// The spec reads only `pos`, but Linux sends the cursor's resource in
    /// moves too, and QEMU's vhost-user-gpu hides the cursor on a move with
    /// resource 0; `None` is that hide.
    pub fn new(pos: CursorPos, res: Option<ResourceId>) -> Self {
        Self {
            hdr: CtrlHdr::new(CommandType::MOVE_CURSOR),
            pos,
            resource_id: U32::new(res.map_or(0, ResourceId::get)),
            ..Self::default()
        }
    }
}
