//! A connector's modes, as Linux's virtio_gpu lists them
//! (`virtio_gpu_conn_get_modes`): a disconnected display has none; with an
//! EDID, the EDID's (`drm_add_edid_modes`); without one, the display's own
//! size, marked preferred, then the standard modes that fit inside it
//! (`drm_add_modes_noedid`). Either way the list is sorted as DRM's probe
//! sorts it (`drm_mode_sort`): preferred first, then largest first.

use drm_uapi::kms::ModeInfo;
use gpu_session::api::DisplayEntry;
use virtio_gpu_proto::edid::{Edid, Timing};

/// `DRM_MODE_TYPE_PREFERRED`.
pub const TYPE_PREFERRED: u32 = 1 << 3;
/// `DRM_MODE_TYPE_DRIVER`.
pub const TYPE_DRIVER: u32 = 1 << 6;
const PHSYNC: u32 = 1;
const NHSYNC: u32 = 2;
const PVSYNC: u32 = 4;
const NVSYNC: u32 = 8;
const INTERLACE: u32 = 16;

/// The size QEMU's virtio-gpu shows before a display says otherwise, and
/// Linux's fallback for a display without a size.
pub const DEFAULT_SIZE: (u32, u32) = (1024, 768);

/// Standard timings (VESA DMT, and CEA-861 for 1280x720 and 1920x1080) at
/// 60 Hz: clock in kHz, then h display/sync start/sync end/total, v the
/// same, and the sync polarities.
const STANDARD: &[(u32, [u16; 4], [u16; 4], u32)] = &[
    (
        25_175,
        [640, 656, 752, 800],
        [480, 490, 492, 525],
        NHSYNC | NVSYNC,
    ),
    (
        40_000,
        [800, 840, 968, 1056],
        [600, 601, 605, 628],
        PHSYNC | PVSYNC,
    ),
    (
        65_000,
        [1024, 1048, 1184, 1344],
        [768, 771, 777, 806],
        NHSYNC | NVSYNC,
    ),
    (
        74_250,
        [1280, 1390, 1430, 1650],
        [720, 725, 730, 750],
        PHSYNC | PVSYNC,
    ),
    (
        83_500,
        [1280, 1352, 1480, 1680],
        [800, 803, 809, 831],
        NHSYNC | PVSYNC,
    ),
    (
        108_000,
        [1280, 1328, 1440, 1688],
        [1024, 1025, 1028, 1066],
        PHSYNC | PVSYNC,
    ),
    (
        106_500,
        [1440, 1520, 1672, 1904],
        [900, 903, 909, 934],
        NHSYNC | PVSYNC,
    ),
    (
        108_000,
        [1600, 1624, 1704, 1800],
        [900, 901, 904, 1000],
        PHSYNC | PVSYNC,
    ),
    (
        146_250,
        [1680, 1784, 1960, 2240],
        [1050, 1053, 1059, 1089],
        NHSYNC | PVSYNC,
    ),
    (
        148_500,
        [1920, 2008, 2052, 2200],
        [1080, 1084, 1089, 1125],
        PHSYNC | PVSYNC,
    ),
    (
        154_000,
        [1920, 1968, 2000, 2080],
        [1200, 1203, 1209, 1235],
        PHSYNC | NVSYNC,
    ),
];

fn named(mut mode: ModeInfo) -> ModeInfo {
    let name = format!("{}x{}", mode.hdisplay, mode.vdisplay);
    let n = name.len().min(31);
    mode.name[..n].copy_from_slice(&name.as_bytes()[..n]);
    mode
}

fn standard(&(clock, h, v, flags): &(u32, [u16; 4], [u16; 4], u32)) -> ModeInfo {
    named(ModeInfo {
        clock,
        hdisplay: h[0],
        hsync_start: h[1],
        hsync_end: h[2],
        htotal: h[3],
        vdisplay: v[0],
        vsync_start: v[1],
        vsync_end: v[2],
        vtotal: v[3],
        vrefresh: 60,
        flags,
        type_: TYPE_DRIVER,
        ..ModeInfo::default()
    })
}

/// The mode of an EDID timing (`drm_mode_detailed`): its refresh rate
/// from clock and totals, rounded.
pub fn from_timing(t: &Timing) -> ModeInfo {
    let pixels = u64::from(t.h[3]) * u64::from(t.v[3]);
    let mut hz = (u64::from(t.clock_khz) * 1000 * 2).div_ceil(pixels.max(1)) / 2;
    if t.interlaced {
        hz *= 2;
    }
    let flags = if t.hsync_positive { PHSYNC } else { NHSYNC }
        | if t.vsync_positive { PVSYNC } else { NVSYNC }
        | if t.interlaced { INTERLACE } else { 0 };
    let mut mode = named(ModeInfo {
        clock: t.clock_khz,
        hdisplay: t.h[0],
        hsync_start: t.h[1],
        hsync_end: t.h[2],
        htotal: t.h[3],
        vdisplay: t.v[0],
        vsync_start: t.v[1],
        vsync_end: t.v[2],
        vtotal: t.v[3],
        vrefresh: hz.min(u64::from(u32::MAX)) as u32,
        flags,
        type_: TYPE_DRIVER,
        ..ModeInfo::default()
    });
    if t.interlaced {
        let name = format!("{}x{}i", t.h[0], t.v[0]);
        let n = name.len().min(31);
        mode.name[..n].copy_from_slice(&name.as_bytes()[..n]);
    }
    mode
}

/// A 60 Hz mode of `width`×`height`: the standard timing of that size,
/// else CVT with reduced blanking — a timing any display that named the
/// size takes; virtio's host ignores timings anyway.
fn at_60_hz(width: u32, height: u32) -> ModeInfo {
    STANDARD
        .iter()
        .find(|m| (u32::from(m.1[0]), u32::from(m.2[0])) == (width, height))
        .map_or_else(|| from_timing(&Timing::cvt_rb(width, height)), standard)
}

/// A connector's modes for what the device reports of its display.
pub fn of_display(display: &DisplayEntry, edid: Option<&Edid<'_>>) -> Vec<ModeInfo> {
    if display.enabled == 0 {
        return Vec::new();
    }
    match edid.map(from_edid) {
        Some(list) if !list.is_empty() => list,
        _ => noedid(display.width, display.height),
    }
}

/// The modes an EDID lists: its detailed timings (the first preferred),
/// then its standard and established timings at 60 Hz (timed as the
/// standard mode of that size, or CVT); those at other rates are left
/// out, lacking a formula here. Duplicates are dropped.
pub fn from_edid(edid: &Edid<'_>) -> Vec<ModeInfo> {
    let mut list: Vec<ModeInfo> = edid.detailed().map(|t| from_timing(&t)).collect();
    if let Some(first) = list.first_mut() {
        first.type_ |= TYPE_PREFERRED;
    }
    let at_60 = edid.standard().chain(edid.established());
    list.extend(
        at_60
            .filter(|&(_, _, hz)| hz == 60)
            .map(|(w, h, _)| at_60_hz(u32::from(w), u32::from(h))),
    );
    let mut unique: Vec<ModeInfo> = Vec::with_capacity(list.len());
    for m in list {
        let same = |u: &ModeInfo| ModeInfo { type_: 0, ..*u } == ModeInfo { type_: 0, ..m };
        if !unique.iter().any(same) {
            unique.push(m);
        }
    }
    sort(&mut unique);
    unique
}

/// DRM's probe order: preferred first, then by area, then refresh rate,
/// largest first.
fn sort(list: &mut [ModeInfo]) {
    list.sort_by_key(|m| {
        let area = u32::from(m.hdisplay) * u32::from(m.vdisplay);
        (
            m.type_ & TYPE_PREFERRED == 0,
            std::cmp::Reverse(area),
            std::cmp::Reverse(m.vrefresh),
        )
    });
}

/// The modes of a display of `width`×`height` without EDID (0×0:
/// [`DEFAULT_SIZE`]): that size first, preferred, then each standard mode
/// inside it.
pub fn noedid(width: u32, height: u32) -> Vec<ModeInfo> {
    let (width, height) = match (width, height) {
        (0, _) | (_, 0) => DEFAULT_SIZE,
        size => size,
    };
    let own = at_60_hz(width, height);
    let mut list = vec![ModeInfo {
        type_: own.type_ | TYPE_PREFERRED,
        ..own
    }];
    list.extend(
        STANDARD
            .iter()
            .filter(|m| u32::from(m.1[0]) <= width && u32::from(m.2[0]) <= height)
            .filter(|m| (u32::from(m.1[0]), u32::from(m.2[0])) != (width, height))
            .map(standard),
    );
    sort(&mut list);
    list
}

/// The nanoseconds between two vblanks of `mode`: its frame time from
/// clock and totals (`drm_calc_timestamping_constants`), or 60 Hz for a
/// mode whose numbers give none (a zero clock or total, or a frame time
/// outside 1 ms..1 s, which would make the simulated vblank spin or stall).
pub fn frame_ns(mode: &ModeInfo) -> u64 {
    let pixels = u64::from(mode.htotal) * u64::from(mode.vtotal);
    let ns = match mode.clock {
        0 => 0,
        clock => pixels * 1_000_000 / u64::from(clock),
    };
    if (1_000_000..=1_000_000_000).contains(&ns) {
        ns
    } else {
        1_000_000_000 / 60
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_display_size_comes_first_then_what_fits_inside_it() {
        let list = noedid(1024, 768);
        assert_eq!((list[0].hdisplay, list[0].vdisplay), (1024, 768));
        assert_ne!(list[0].type_ & TYPE_PREFERRED, 0);
        assert_eq!(&list[0].name[..9], b"1024x768\0");
        let sizes: Vec<_> = list[1..].iter().map(|m| (m.hdisplay, m.vdisplay)).collect();
        assert_eq!(sizes, [(800, 600), (640, 480)]);
        assert!(list[1..].iter().all(|m| m.type_ & TYPE_PREFERRED == 0));
        assert_eq!(noedid(0, 0)[0].hdisplay, 1024);
    }

    #[test]
    fn an_odd_size_gets_a_cvt_mode_of_about_60_hz() {
        let m = noedid(1000, 700)[0];
        assert_eq!((m.hdisplay, m.vdisplay), (1000, 700));
        let hz = 1e9 / frame_ns(&m) as f64;
        assert!((59.0..61.0).contains(&hz), "{hz}");
        // 1024x768: 1344 x 806 pixels at 65 MHz.
        assert_eq!(frame_ns(&standard(&STANDARD[2])), 16_665_600);
    }

    #[test]
    fn nonsense_timings_pace_at_60_hz() {
        let zero = ModeInfo::default();
        assert_eq!(frame_ns(&zero), 16_666_666);
        let huge_clock = ModeInfo {
            clock: u32::MAX,
            htotal: 1,
            vtotal: 1,
            ..zero
        };
        assert_eq!(frame_ns(&huge_clock), 16_666_666);
    }
}
