//! What the QEMU PCI test's guest client draws (`pci-guest`) and the host
//! expects to read back from the scanout: one definition for both sides.

/// The frame's background colour (R, G, B).
pub const BACKGROUND: [u8; 3] = [0x20, 0x60, 0xa0];
/// The inset's colour.
pub const INSET: [u8; 3] = [0xf0, 0xc0, 0x10];

/// A rectangle of the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

/// The scanned-out frame: the background with an inset of another colour
/// off-centre, so a flipped, shifted or scaled frame does not match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Width in pixels (the mode's).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Frame {
    /// The frame for a `width` × `height` mode.
    pub fn new(width: u32, height: u32) -> Frame {
        Frame { width, height }
    }

    /// Where the inset is: a quarter of each side, an eighth in from the
    /// top-left corner.
    pub fn inset(&self) -> Rect {
        Rect {
            x: self.width / 8,
            y: self.height / 8,
            w: self.width / 4,
            h: self.height / 4,
        }
    }

    /// The colour of pixel (`x`, `y`).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let r = self.inset();
        if (r.x..r.x + r.w).contains(&x) && (r.y..r.y + r.h).contains(&y) {
            INSET
        } else {
            BACKGROUND
        }
    }
}
