//! The EDID a display describes itself with, as GET_EDID carries it
//! (VESA E-EDID 1.4, the 128-byte base block): read by the driver for its
//! connectors' modes, and built by a transport that serves its own display.
//!
//! Only the base block is interpreted; extension blocks (CTA-861,
//! DisplayID) are carried but not read, so a display that lists modes only
//! there gets the modes of its base block. The bytes come from the device:
//! nothing here trusts them beyond what it checked.

use core::fmt;

/// Bytes of a block.
pub const BLOCK: usize = 128;
const HEADER: [u8; 8] = [0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];
/// Where the four 18-byte descriptors start (E-EDID 1.4 §3.10).
const DESCRIPTORS: usize = 54;
const DESCRIPTOR: usize = 18;
/// Display descriptor tags (E-EDID 1.4 §3.10.3).
const TAG_NAME: u8 = 0xfc;
const TAG_RANGE_LIMITS: u8 = 0xfd;
const TAG_DUMMY: u8 = 0x10;
/// DTD byte 17 (§3.10.2, table 3.22): interlaced, and digital separate
/// sync with its polarity bits.
const DTD_INTERLACED: u8 = 1 << 7;
const DTD_DIGITAL_SEPARATE: u8 = 0b11 << 3;
const DTD_VSYNC_POSITIVE: u8 = 1 << 2;
const DTD_HSYNC_POSITIVE: u8 = 1 << 1;
/// The established timings of bytes 35..=37 (§3.8, table 3.18), from
/// byte 35's bit 7 on: size and refresh rate (1024x768@87 is interlaced).
const ESTABLISHED: [(u16, u16, u8); 17] = [
    (720, 400, 70),
    (720, 400, 88),
    (640, 480, 60),
    (640, 480, 67),
    (640, 480, 72),
    (640, 480, 75),
    (800, 600, 56),
    (800, 600, 60),
    (800, 600, 72),
    (800, 600, 75),
    (832, 624, 75),
    (1024, 768, 87),
    (1024, 768, 60),
    (1024, 768, 70),
    (1024, 768, 75),
    (1280, 1024, 75),
    (1152, 870, 75),
];

/// A video timing as a detailed timing descriptor holds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timing {
    /// Pixel clock in kHz (a multiple of 10).
    pub clock_khz: u32,
    /// Horizontal: active pixels, sync start, sync end, total.
    pub h: [u16; 4],
    /// Vertical: active lines, sync start, sync end, total.
    pub v: [u16; 4],
    /// Sync polarities.
    pub hsync_positive: bool,
    /// Sync polarities.
    pub vsync_positive: bool,
    /// Interlaced: `v` counts the lines of one field.
    pub interlaced: bool,
    /// Image size in millimetres (0: not given).
    pub size_mm: (u16, u16),
}

impl Timing {
    /// A 60 Hz timing of `width`×`height` with CVT 1.2 reduced blanking
    /// (160 pixels of horizontal blanking, at least 460 µs of vertical, the
    /// clock in 250 kHz steps): the width is rounded down to its 8-pixel
    /// cell, and each field is clamped to 16 bits.
    pub fn cvt_rb(width: u32, height: u32) -> Timing {
        const H_BLANK: u32 = 160;
        const H_SYNC: u32 = 32;
        const H_FRONT: u32 = 48;
        const V_FRONT: u32 = 3;
        const V_SYNC: u32 = 6;
        const MIN_V_BACK: u32 = 6;
        const MIN_V_BLANK_US: u64 = 460;
        let width = width & !7;
        let htotal = width + H_BLANK;
        let frame_us = 1_000_000 / 60;
        let line_us_x1000 = (frame_us * 1000) / u64::from(height).max(1);
        let vblank = ((MIN_V_BLANK_US * 1000).div_ceil(line_us_x1000.max(1)) as u32)
            .max(V_FRONT + V_SYNC + MIN_V_BACK);
        let vtotal = height + vblank;
        let clock = u64::from(htotal) * u64::from(vtotal) * 60 / 1000 / 250 * 250;
        let clamp = |v: u32| v.min(u32::from(u16::MAX)) as u16;
        Timing {
            clock_khz: clock.min(u64::from(u32::MAX)) as u32,
            h: [
                clamp(width),
                clamp(width + H_FRONT),
                clamp(width + H_FRONT + H_SYNC),
                clamp(htotal),
            ],
            v: [
                clamp(height),
                clamp(height + V_FRONT),
                clamp(height + V_FRONT + V_SYNC),
                clamp(vtotal),
            ],
            hsync_positive: true,
            vsync_positive: false,
            interlaced: false,
            size_mm: (0, 0),
        }
    }

    /// Decodes an 18-byte detailed timing descriptor (§3.10.2); None for
    /// a display descriptor (clock 0) or one whose numbers make no timing
    /// (no active area, or sync beyond the blanking).
    fn decode(d: &[u8; DESCRIPTOR]) -> Option<Timing> {
        let clock = u32::from(u16::from_le_bytes([d[0], d[1]])) * 10;
        let hi = |byte: u8, shift: u8, bits: u8| u16::from(byte >> shift) & ((1 << bits) - 1);
        let h_active = u16::from(d[2]) | hi(d[4], 4, 4) << 8;
        let h_blank = u16::from(d[3]) | hi(d[4], 0, 4) << 8;
        let v_active = u16::from(d[5]) | hi(d[7], 4, 4) << 8;
        let v_blank = u16::from(d[6]) | hi(d[7], 0, 4) << 8;
        let h_front = u16::from(d[8]) | hi(d[11], 6, 2) << 8;
        let h_sync = u16::from(d[9]) | hi(d[11], 4, 2) << 8;
        let v_front = hi(d[10], 4, 4) | hi(d[11], 2, 2) << 4;
        let v_sync = hi(d[10], 0, 4) | hi(d[11], 0, 2) << 4;
        if clock == 0 || h_active == 0 || v_active == 0 {
            return None;
        }
        if h_front + h_sync > h_blank || v_front + v_sync > v_blank {
            return None;
        }
        let features = d[17];
        // Analog and composite syncs carry no polarity pair: taken as
        // negative, as Linux does.
        let separate = features & DTD_DIGITAL_SEPARATE == DTD_DIGITAL_SEPARATE;
        Some(Timing {
            clock_khz: clock,
            h: [
                h_active,
                h_active + h_front,
                h_active + h_front + h_sync,
                h_active + h_blank,
            ],
            v: [
                v_active,
                v_active + v_front,
                v_active + v_front + v_sync,
                v_active + v_blank,
            ],
            hsync_positive: separate && features & DTD_HSYNC_POSITIVE != 0,
            vsync_positive: separate && features & DTD_VSYNC_POSITIVE != 0,
            interlaced: features & DTD_INTERLACED != 0,
            size_mm: (
                u16::from(d[12]) | hi(d[14], 4, 4) << 8,
                u16::from(d[13]) | hi(d[14], 0, 4) << 8,
            ),
        })
    }

    /// Encodes the timing as a detailed timing descriptor; None when a
    /// field does not fit one (sizes and blanking up to 4095, porches and
    /// syncs up to 1023 pixels and 63 lines, the clock up to 655.35 MHz).
    fn encode(&self) -> Option<[u8; DESCRIPTOR]> {
        let [ha, hs, he, ht] = self.h.map(u32::from);
        let [va, vs, ve, vt] = self.v.map(u32::from);
        let (h_blank, h_front, h_sync) = (
            ht.checked_sub(ha)?,
            hs.checked_sub(ha)?,
            he.checked_sub(hs)?,
        );
        let (v_blank, v_front, v_sync) = (
            vt.checked_sub(va)?,
            vs.checked_sub(va)?,
            ve.checked_sub(vs)?,
        );
        let clock = u16::try_from(self.clock_khz / 10).ok()?;
        let fits = ha <= 0xfff
            && h_blank <= 0xfff
            && va <= 0xfff
            && v_blank <= 0xfff
            && h_front <= 0x3ff
            && h_sync <= 0x3ff
            && v_front <= 0x3f
            && v_sync <= 0x3f
            && h_front + h_sync <= h_blank
            && v_front + v_sync <= v_blank
            && self.size_mm.0 <= 0xfff
            && self.size_mm.1 <= 0xfff;
        if !fits || clock == 0 || ha == 0 || va == 0 {
            return None;
        }
        let (wmm, hmm) = (u32::from(self.size_mm.0), u32::from(self.size_mm.1));
        let lo = |v: u32| v as u8;
        let mut d = [0u8; DESCRIPTOR];
        d[..2].copy_from_slice(&clock.to_le_bytes());
        d[2] = lo(ha);
        d[3] = lo(h_blank);
        d[4] = lo((ha >> 8) << 4 | h_blank >> 8);
        d[5] = lo(va);
        d[6] = lo(v_blank);
        d[7] = lo((va >> 8) << 4 | v_blank >> 8);
        d[8] = lo(h_front);
        d[9] = lo(h_sync);
        d[10] = lo((v_front & 0xf) << 4 | v_sync & 0xf);
        d[11] = lo((h_front >> 8) << 6 | (h_sync >> 8) << 4 | (v_front >> 4) << 2 | v_sync >> 4);
        d[12] = lo(wmm);
        d[13] = lo(hmm);
        d[14] = lo((wmm >> 8) << 4 | hmm >> 8);
        d[17] = DTD_DIGITAL_SEPARATE
            | if self.interlaced { DTD_INTERLACED } else { 0 }
            | if self.vsync_positive {
                DTD_VSYNC_POSITIVE
            } else {
                0
            }
            | if self.hsync_positive {
                DTD_HSYNC_POSITIVE
            } else {
                0
            };
        Some(d)
    }

    /// The horizontal frequency in kHz, rounded up.
    fn line_khz(&self) -> u32 {
        (self.clock_khz).div_ceil(u32::from(self.h[3]).max(1))
    }
}

/// Why bytes are not an EDID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdidError {
    /// Shorter than a base block, or than the extensions it announces.
    Short(usize),
    /// The fixed 8-byte header is missing.
    Header,
    /// The base block's bytes do not sum to 0 mod 256 (§3.11).
    Checksum,
    /// Not EDID version 1.
    Version(u8),
}

impl fmt::Display for EdidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EdidError::Short(n) => write!(f, "EDID of {n} bytes is cut short"),
            EdidError::Header => f.write_str("no EDID header"),
            EdidError::Checksum => f.write_str("EDID base block checksum is wrong"),
            EdidError::Version(v) => write!(f, "EDID version {v}, not 1"),
        }
    }
}

/// A checked EDID: the base block valid, its extensions present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edid<'a> {
    bytes: &'a [u8],
}

impl<'a> Edid<'a> {
    /// Checks `bytes` (the base block and the extension blocks it
    /// announces; anything after them is not part of the EDID).
    pub fn parse(bytes: &'a [u8]) -> Result<Edid<'a>, EdidError> {
        let base = bytes.get(..BLOCK).ok_or(EdidError::Short(bytes.len()))?;
        if base[..8] != HEADER {
            return Err(EdidError::Header);
        }
        if base.iter().fold(0u8, |s, &b| s.wrapping_add(b)) != 0 {
            return Err(EdidError::Checksum);
        }
        if base[18] != 1 {
            return Err(EdidError::Version(base[18]));
        }
        let len = BLOCK * (1 + usize::from(base[126]));
        let bytes = bytes.get(..len).ok_or(EdidError::Short(bytes.len()))?;
        Ok(Edid { bytes })
    }

    /// The EDID's bytes, extensions included (what a connector's EDID
    /// property holds).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    fn descriptors(&self) -> impl Iterator<Item = &'a [u8; DESCRIPTOR]> {
        let block = &self.bytes[DESCRIPTORS..DESCRIPTORS + 4 * DESCRIPTOR];
        block
            .chunks_exact(DESCRIPTOR)
            .filter_map(|d| d.try_into().ok())
    }

    /// The detailed timings, in their order: in EDID 1.4 the first is the
    /// display's preferred (native) mode.
    pub fn detailed(&self) -> impl Iterator<Item = Timing> + 'a {
        self.descriptors().filter_map(Timing::decode)
    }

    /// The standard timings (§3.9): width, height and refresh rate.
    pub fn standard(&self) -> impl Iterator<Item = (u16, u16, u8)> + 'a {
        let revision = self.bytes[19];
        self.bytes[38..54].chunks_exact(2).filter_map(move |s| {
            // 0x01 0x01 (and, from sloppy writers, 0x00 0x00 or 0x20 0x20)
            // mark an unused slot.
            if matches!((s[0], s[1]), (0x01, 0x01) | (0x00, _) | (0x20, 0x20)) {
                return None;
            }
            let width = (u16::from(s[0]) + 31) * 8;
            let (num, den) = match s[1] >> 6 {
                // Before 1.3 the code meant 1:1.
                0 if revision < 3 => (1, 1),
                0 => (10, 16),
                1 => (3, 4),
                2 => (4, 5),
                _ => (9, 16),
            };
            Some((width, width * num / den, (s[1] & 0x3f) + 60))
        })
    }

    /// The established timings (§3.8) the display lists: width, height
    /// and refresh rate.
    pub fn established(&self) -> impl Iterator<Item = (u16, u16, u8)> + 'a {
        let bits = u32::from(self.bytes[35]) << 16
            | u32::from(self.bytes[36]) << 8
            | u32::from(self.bytes[37]);
        ESTABLISHED
            .iter()
            .enumerate()
            .filter(move |&(i, _)| bits & (1 << (23 - i)) != 0)
            .map(|(_, &t)| t)
    }

    /// The image size in millimetres: the preferred timing's, else the
    /// base block's centimetres (0: not given).
    pub fn size_mm(&self) -> (u32, u32) {
        match self.detailed().next() {
            Some(Timing {
                size_mm: (w, h), ..
            }) if w != 0 && h != 0 => (u32::from(w), u32::from(h)),
            _ => (
                u32::from(self.bytes[21]) * 10,
                u32::from(self.bytes[22]) * 10,
            ),
        }
    }

    /// The display product name descriptor's text, if it has one.
    pub fn name(&self) -> Option<&'a str> {
        let d = self
            .descriptors()
            .find(|d| d[..3] == [0, 0, 0] && d[3] == TAG_NAME)?;
        let text = &d[5..];
        let end = text.iter().position(|&b| b == b'\n').unwrap_or(text.len());
        core::str::from_utf8(&text[..end]).ok().map(str::trim_end)
    }
}

/// What a display built by [`build`] says of itself.
#[derive(Clone, Copy, Debug)]
pub struct Monitor<'a> {
    /// Three capital letters: the manufacturer's PNP id.
    pub vendor: [u8; 3],
    /// Product name (up to 13 characters are kept).
    pub name: &'a str,
    /// Serial number.
    pub serial: u32,
    /// The native mode (its `size_mm` is the image size).
    pub preferred: Timing,
    /// Other sizes it takes at 60 Hz; those the standard timings can name
    /// (widths 256..=2288 in 8-pixel steps, aspect 16:10, 4:3, 5:4 or 16:9)
    /// are listed, up to eight, and 640x480, 800x600 and 1024x768 go in the
    /// established timings.
    pub sizes: &'a [(u16, u16)],
}

/// Builds the base block of `monitor`'s EDID (version 1.4, digital, 8 bits
/// per colour, sRGB, no extensions); None when its preferred timing does
/// not fit a detailed timing descriptor.
pub fn build(monitor: &Monitor<'_>) -> Option<[u8; BLOCK]> {
    let mut e = [0u8; BLOCK];
    e[..8].copy_from_slice(&HEADER);
    let [a, b, c] = monitor
        .vendor
        .map(|l| u16::from(l.wrapping_sub(b'A') & 0x1f) + 1);
    e[8..10].copy_from_slice(&(a << 10 | b << 5 | c).to_be_bytes());
    e[12..16].copy_from_slice(&monitor.serial.to_le_bytes());
    // Week 1 of 2026; version 1.4.
    (e[16], e[17], e[18], e[19]) = (1, 36, 1, 4);
    // Digital input, 8 bits per primary, interface not defined.
    e[20] = 0x80 | 0b010 << 4;
    let (wmm, hmm) = monitor.preferred.size_mm;
    e[21] = (wmm / 10).min(255) as u8;
    e[22] = (hmm / 10).min(255) as u8;
    // Gamma 2.2; sRGB is the default colour space and the preferred timing
    // is the native mode.
    e[23] = 120;
    e[24] = 1 << 2 | 1 << 1;
    // sRGB's primaries and white point as 10-bit binary fractions (§3.7).
    let xy: [u16; 8] = [655, 338, 307, 614, 154, 61, 320, 337];
    let low = |i: usize| (xy[i] & 3) as u8;
    e[25] = low(0) << 6 | low(1) << 4 | low(2) << 2 | low(3);
    e[26] = low(4) << 6 | low(5) << 4 | low(6) << 2 | low(7);
    for (i, v) in xy.iter().enumerate() {
        e[27 + i] = (v >> 2) as u8;
    }
    let (pw, pv) = (monitor.preferred.h[0], monitor.preferred.v[0]);
    let fits = |&&(w, h): &&(u16, u16)| w <= pw && h <= pv && (w, h) != (pw, pv);
    let mut established = 0u32;
    for (i, &(w, h, hz)) in ESTABLISHED.iter().enumerate() {
        if hz == 60 && monitor.sizes.iter().filter(fits).any(|&s| s == (w, h)) {
            established |= 1 << (23 - i);
        }
    }
    e[35..38].copy_from_slice(&established.to_be_bytes()[1..]);
    let codes = monitor
        .sizes
        .iter()
        .filter(fits)
        .filter(|s| !ESTABLISHED.iter().any(|&(w, h, _)| (w, h) == **s))
        .filter_map(|&(w, h)| standard_code(w, h))
        .chain(core::iter::repeat([1, 1]));
    for (slot, code) in e[38..54].chunks_exact_mut(2).zip(codes) {
        slot.copy_from_slice(&code);
    }
    let p = &monitor.preferred;
    e[DESCRIPTORS..DESCRIPTORS + DESCRIPTOR].copy_from_slice(&p.encode()?);
    // Range limits that hold every listed mode: 50..=75 Hz; lines from
    // 30 kHz to the faster of the native mode and 80 kHz (the fastest
    // standard 60 Hz mode listed); the clock rounded up to 10 MHz.
    let mut limits = [0u8; DESCRIPTOR];
    limits[3] = TAG_RANGE_LIMITS;
    limits[5..9].copy_from_slice(&[50, 75, 30, p.line_khz().clamp(80, 255) as u8]);
    limits[9] = p.clock_khz.max(170_000).div_ceil(10_000).min(255) as u8;
    limits[10] = 0x01;
    text_field(&mut limits[11..], "");
    let mut name = [0u8; DESCRIPTOR];
    name[3] = TAG_NAME;
    text_field(&mut name[5..], monitor.name);
    let mut dummy = [0u8; DESCRIPTOR];
    dummy[3] = TAG_DUMMY;
    for (i, d) in [limits, name, dummy].iter().enumerate() {
        let at = DESCRIPTORS + (i + 1) * DESCRIPTOR;
        e[at..at + DESCRIPTOR].copy_from_slice(d);
    }
    let sum = e[..BLOCK - 1].iter().fold(0u8, |s, &b| s.wrapping_add(b));
    e[BLOCK - 1] = sum.wrapping_neg();
    Some(e)
}

/// A standard timing's two bytes for `width`×`height` at 60 Hz.
fn standard_code(width: u16, height: u16) -> Option<[u8; 2]> {
    if !width.is_multiple_of(8) || !(256..=2288).contains(&width) {
        return None;
    }
    let aspect = [(10, 16), (3, 4), (4, 5), (9, 16)]
        .iter()
        .position(|&(num, den)| width * num / den == height)?;
    Some([(width / 8 - 31) as u8, (aspect as u8) << 6])
}

/// Text of a display descriptor: ends with a line feed, padded with
/// spaces (§3.10.3).
fn text_field(field: &mut [u8], text: &str) {
    field.fill(b' ');
    let n = text.len().min(field.len());
    field[..n].copy_from_slice(&text.as_bytes()[..n]);
    if n < field.len() {
        field[n] = b'\n';
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn monitor(width: u32, height: u32) -> [u8; BLOCK] {
        let mut preferred = Timing::cvt_rb(width, height);
        preferred.size_mm = (286, 179);
        build(&Monitor {
            vendor: *b"VGD",
            name: "test display",
            serial: 7,
            preferred,
            sizes: &[
                (640, 480),
                (800, 600),
                (1024, 768),
                (1280, 720),
                (1280, 800),
            ],
        })
        .unwrap()
    }

    #[test]
    fn a_built_edid_reads_back_as_built() {
        let bytes = monitor(1280, 800);
        let edid = Edid::parse(&bytes).unwrap();
        let dtds: Vec<_> = edid.detailed().collect();
        assert_eq!(dtds.len(), 1);
        let mut want = Timing::cvt_rb(1280, 800);
        want.size_mm = (286, 179);
        assert_eq!(dtds[0], want);
        assert_eq!(edid.name(), Some("test display"));
        assert_eq!(edid.size_mm(), (286, 179));
        let est: Vec<_> = edid.established().collect();
        assert_eq!(est, [(640, 480, 60), (800, 600, 60), (1024, 768, 60)]);
        // 1280x800 is the preferred mode, listed once.
        assert_eq!(edid.standard().collect::<Vec<_>>(), [(1280, 720, 60)]);
        assert_eq!(&bytes[8..10], &[0x58, 0xe4]);
    }

    #[test]
    fn broken_bytes_are_refused() {
        let good = monitor(1024, 768);
        assert_eq!(Edid::parse(&good[..127]), Err(EdidError::Short(127)));
        let mut bad = good;
        bad[0] = 1;
        assert_eq!(Edid::parse(&bad), Err(EdidError::Header));
        let mut bad = good;
        bad[40] ^= 1;
        assert_eq!(Edid::parse(&bad), Err(EdidError::Checksum));
        // An announced extension that is not there.
        let mut bad = good;
        bad[126] = 1;
        bad[127] = bad[127].wrapping_sub(1);
        assert_eq!(Edid::parse(&bad), Err(EdidError::Short(128)));
        assert_eq!(Edid::parse(&[]), Err(EdidError::Short(0)));
    }

    #[test]
    fn sizes_a_descriptor_cannot_hold_make_no_edid() {
        assert!(build(&Monitor {
            vendor: *b"VGD",
            name: "",
            serial: 0,
            preferred: Timing::cvt_rb(5120, 2880),
            sizes: &[],
        })
        .is_none());
    }

    #[test]
    fn a_timing_whose_sync_leaves_its_blanking_is_skipped() {
        let mut bytes = monitor(1024, 768);
        // Horizontal sync width 255 in a blank of 160.
        bytes[DESCRIPTORS + 9] = 255;
        bytes[127] = 0;
        bytes[127] = bytes.iter().fold(0u8, |s, &b| s.wrapping_sub(b));
        assert_eq!(Edid::parse(&bytes).unwrap().detailed().count(), 0);
    }
}
