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
    /// The size each scanout's monitor asks for (QEMU's UI window size;
    /// None: unplugged): what GET_DISPLAY_INFO and GET_EDID report.
    pub monitors: Vec<Option<(u32, u32)>>,
    /// The cursor.
    pub cursor: Cursor,
    /// Framebuffer updates received.
    pub updates: u64,
    /// Set when the backend sent something this side cannot show (dma-buf
    /// scanouts need a GPU this machine lacks), with the message id.
    pub unsupported: Option<u32>,
}

/// A Netpbm PAM image (RGB_ALPHA) of `pixels`, a8r8g8b8 words (`opaque`:
/// the top byte is X, not alpha), with `comments` as header lines.
fn pam(width: u32, height: u32, pixels: &[u32], opaque: bool, comments: &str) -> Vec<u8> {
    let mut out = format!(
        "P7\n{comments}WIDTH {width}\nHEIGHT {height}\nDEPTH 4\nMAXVAL 255\n\
         TUPLTYPE RGB_ALPHA\nENDHDR\n"
    )
    .into_bytes();
    for p in pixels {
        let alpha = if opaque { 0xFF } else { (p >> 24) as u8 };
        out.extend_from_slice(&[(p >> 16) as u8, (p >> 8) as u8, *p as u8, alpha]);
    }
    out
}

impl DisplayState {
    /// Scanout `index` as a PAM image (opaque), with the number of updates
    /// received and the monitor's size as header comments (`# updates N`,
    /// `# monitor WxH` or `# monitor off`): what tests compare and
    /// tools convert. None for a scanout it lacks.
    pub fn pam(&self, index: usize) -> Option<Vec<u8>> {
        let s = self.scanouts.get(index)?;
        let monitor = match self.monitors.get(index).copied().flatten() {
            Some((w, h)) => format!("{w}x{h}"),
            None => "off".into(),
        };
        let comments = format!("# updates {}\n# monitor {monitor}\n", self.updates);
        Some(pam(s.width, s.height, &s.pixels, true, &comments))
    }

    /// The cursor as a PAM image (64×64 with its alpha; 0×0 before its
    /// first image), with `# visible`, `# scanout`, `# x`, `# y`, `# hot_x`
    /// and `# hot_y` header comments.
    pub fn cursor_pam(&self) -> Vec<u8> {
        let c = &self.cursor;
        let side = if c.image.is_empty() {
            0
        } else {
            CURSOR_SIZE as u32
        };
        let comments = format!(
            "# visible {}\n# scanout {}\n# x {}\n# y {}\n# hot_x {}\n# hot_y {}\n",
            u8::from(c.visible),
            c.scanout,
            c.x,
            c.y,
            c.hot_x,
            c.hot_y
        );
        pam(side, side, &c.image, false, &comments)
    }
}
