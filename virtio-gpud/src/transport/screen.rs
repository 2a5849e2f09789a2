//! What a display shows: the state a transport that serves its own
//! display keeps (the Linux backend's display side), platform-neutral so
//! that the daemon can show it to tests and tools on any transport that has
//! one.

/// Cursor images are 64×64 32-bit pixels.
pub const CURSOR_SIZE: usize = 64;

/// One scanout as the display shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scanout {
    /// Width in pixels; 0 when disabled.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width × height` 32-bit pixels, row-major, as the backend sent them.
    pub pixels: Vec<u32>,
}

/// The cursor as the display shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Whether it is visible.
    pub visible: bool,
    /// Scanout it is on.
    pub scanout: u32,
    /// Position.
    pub x: u32,
    /// Position.
    pub y: u32,
    /// Hot spot.
    pub hot_x: u32,
    /// Hot spot.
    pub hot_y: u32,
    /// The 64×64 image, empty until the first update.
    pub image: Vec<u32>,
}

/// What the monitor currently shows, and how much the backend sent.
#[derive(Clone, Debug, Default)]
pub struct DisplayState {
    /// Scanouts, indexed by scanout id.
    pub scanouts: Vec<Scanout>,
    /// The cursor.
    pub cursor: Cursor,
    /// Framebuffer updates received.
    pub updates: u64,
    /// Set when the backend sent something this side cannot show (dma-buf
    /// scanouts need a GPU this machine lacks), with the message id.
    pub unsupported: Option<u32>,
}

impl DisplayState {
    /// Scanout `index` as a Netpbm PAM image (RGB_ALPHA, opaque), with the
    /// number of updates received as a header comment (`# updates N`):
    /// what tests compare and tools convert. None for a scanout it lacks.
    pub fn pam(&self, index: usize) -> Option<Vec<u8>> {
        let s = self.scanouts.get(index)?;
        let mut out = format!(
            "P7\n# updates {}\nWIDTH {}\nHEIGHT {}\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n",
            self.updates, s.width, s.height
        )
        .into_bytes();
        // The backend's pixels are x8r8g8b8 words; X is not kept.
        for p in &s.pixels {
            out.extend_from_slice(&[(p >> 16) as u8, (p >> 8) as u8, *p as u8, 0xFF]);
        }
        Some(out)
    }
}
