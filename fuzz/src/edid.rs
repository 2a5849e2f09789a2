//! `edid`: `virtio_gpu_proto::edid::Edid::parse` and its readers on
//! arbitrary bytes (what the device answers GET_EDID with), then the
//! connector modes drmd makes of them (`kms::modes::from_edid`).
//!
//! Input: the EDID bytes.
//!
//! Checked: an accepted EDID starts with the header, its base block sums
//! to 0, and it is exactly the blocks the base block announces; every
//! detailed timing has an active area and its syncs inside its totals, and
//! survives being built into an EDID and read back; drmd's modes are
//! unique, preferred only first, and each paces its simulated vblank at a
//! sane period.

use drmd::kms::modes::{frame_ns, from_edid, TYPE_PREFERRED};
use virtio_gpu_proto::edid::{build, Edid, Monitor, BLOCK};

/// The target.
pub fn run(data: &[u8]) {
    let Ok(edid) = Edid::parse(data) else {
        return;
    };
    let bytes = edid.bytes();
    assert_eq!(&bytes[..8], &[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);
    assert_eq!(
        bytes[..BLOCK].iter().fold(0u8, |s, &b| s.wrapping_add(b)),
        0
    );
    assert_eq!(bytes.len(), BLOCK * (1 + usize::from(bytes[126])));
    assert_eq!(bytes, &data[..bytes.len()]);
    for t in edid.detailed() {
        assert!(t.h[0] > 0 && t.v[0] > 0, "{t:?}");
        assert!(t.h.windows(2).all(|w| w[0] <= w[1]), "{t:?}");
        assert!(t.v.windows(2).all(|w| w[0] <= w[1]), "{t:?}");
        let rebuilt = build(&Monitor {
            vendor: *b"FUZ",
            name: "",
            serial: 0,
            preferred: t,
            sizes: &[],
        })
        .expect("a timing read from a descriptor fits one");
        let back = Edid::parse(&rebuilt).expect("a built EDID parses");
        assert_eq!(back.detailed().next(), Some(t));
    }
    for (w, h, hz) in edid.standard().chain(edid.established()) {
        assert!(w > 0 && h > 0 && hz >= 56, "{w}x{h}@{hz}");
    }
    let _ = (edid.size_mm(), edid.name());
    let modes = from_edid(&edid);
    for (i, m) in modes.iter().enumerate() {
        assert!(m.hdisplay > 0 && m.vdisplay > 0, "{m:?}");
        assert_eq!(
            m.type_ & TYPE_PREFERRED != 0,
            i == 0 && edid.detailed().next().is_some(),
            "only the first detailed timing is preferred, and it comes first"
        );
        assert!((1_000_000..=1_000_000_000).contains(&frame_ns(m)));
        let same = |o: &drm_uapi::kms::ModeInfo| {
            drm_uapi::kms::ModeInfo { type_: 0, ..*o } == drm_uapi::kms::ModeInfo { type_: 0, ..*m }
        };
        assert_eq!(modes.iter().filter(|o| same(o)).count(), 1, "{m:?} twice");
    }
}
