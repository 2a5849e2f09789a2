//! KMS properties: the standard set Linux's DRM core attaches to virtio_gpu's
//! objects (ABI reference §3.6), with fixed ids below the objects'. Each is
//! a static description; the values come from the object's state.
//!
//! Properties flagged ATOMIC are seen only by atomic clients, as in Linux.
//! The two whose values are an fd and a pointer have ids the client
//! library knows (`drm_uapi::kms::PROP_*`).

use drm_uapi::kms::{object, prop_flags as pf};

use super::{Kms, Object};

/// The kind of a property and what GETPROPERTY lists for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Unsigned values in `min..=max`.
    Range(u64, u64),
    /// Signed values in `min..=max`.
    SignedRange(i64, i64),
    /// One of these named values.
    Enum(&'static [(u64, &'static str)]),
    /// A blob id (0: none).
    Blob,
    /// An object id of this type (0: none).
    Object(u32),
}

/// One property.
#[derive(Clone, Copy, Debug)]
pub struct Property {
    /// Its id.
    pub id: u32,
    /// Its name.
    pub name: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// Only the driver changes it.
    pub immutable: bool,
    /// Only atomic clients see it.
    pub atomic: bool,
}

impl Property {
    /// `DRM_MODE_PROP_*` flags.
    pub fn flags(&self) -> u32 {
        let kind = match self.kind {
            Kind::Range(..) => pf::RANGE,
            Kind::SignedRange(..) => pf::SIGNED_RANGE,
            Kind::Enum(_) => pf::ENUM,
            Kind::Blob => pf::BLOB,
            Kind::Object(_) => pf::OBJECT,
        };
        let immutable = if self.immutable { pf::IMMUTABLE } else { 0 };
        let atomic = if self.atomic { pf::ATOMIC } else { 0 };
        kind | immutable | atomic
    }
}

const DPMS_VALUES: &[(u64, &str)] = &[(0, "On"), (1, "Standby"), (2, "Suspend"), (3, "Off")];
const LINK_STATUS: &[(u64, &str)] = &[(0, "Good"), (1, "Bad")];
const PLANE_TYPES: &[(u64, &str)] = &[(0, "Overlay"), (1, "Primary"), (2, "Cursor")];

macro_rules! props {
    ($($id:literal $konst:ident $name:literal $kind:expr, $immutable:literal, $atomic:literal;)*) => {
        $(
            #[doc = concat!("The `", $name, "` property's id.")]
            pub const $konst: u32 = $id;
        )*
        /// Every property, by id.
        pub const ALL: &[Property] = &[
            $(Property { id: $id, name: $name, kind: $kind, immutable: $immutable, atomic: $atomic },)*
        ];
    };
}

props! {
    1 DPMS "DPMS" Kind::Enum(DPMS_VALUES), false, false;
    2 EDID "EDID" Kind::Blob, true, false;
    3 LINK_STATUS_ID "link-status" Kind::Enum(LINK_STATUS), false, false;
    4 NON_DESKTOP "non-desktop" Kind::Range(0, 1), true, false;
    5 CONNECTOR_CRTC_ID "CRTC_ID" Kind::Object(object::CRTC), false, true;
    6 ACTIVE "ACTIVE" Kind::Range(0, 1), false, true;
    7 MODE_ID "MODE_ID" Kind::Blob, false, true;
    8 OUT_FENCE_PTR "OUT_FENCE_PTR" Kind::Range(0, u64::MAX), false, true;
    9 VRR_ENABLED "VRR_ENABLED" Kind::Range(0, 1), false, false;
    10 TYPE "type" Kind::Enum(PLANE_TYPES), true, false;
    11 FB_ID "FB_ID" Kind::Object(object::FB), false, true;
    12 IN_FENCE_FD "IN_FENCE_FD" Kind::SignedRange(-1, i32::MAX as i64), false, true;
    13 PLANE_CRTC_ID "CRTC_ID" Kind::Object(object::CRTC), false, true;
    14 CRTC_X "CRTC_X" Kind::SignedRange(i32::MIN as i64, i32::MAX as i64), false, true;
    15 CRTC_Y "CRTC_Y" Kind::SignedRange(i32::MIN as i64, i32::MAX as i64), false, true;
    16 CRTC_W "CRTC_W" Kind::Range(0, i32::MAX as u64), false, true;
    17 CRTC_H "CRTC_H" Kind::Range(0, i32::MAX as u64), false, true;
    18 SRC_X "SRC_X" Kind::Range(0, u32::MAX as u64), false, true;
    19 SRC_Y "SRC_Y" Kind::Range(0, u32::MAX as u64), false, true;
    20 SRC_W "SRC_W" Kind::Range(0, u32::MAX as u64), false, true;
    21 SRC_H "SRC_H" Kind::Range(0, u32::MAX as u64), false, true;
    22 FB_DAMAGE_CLIPS "FB_DAMAGE_CLIPS" Kind::Blob, false, true;
    23 HOTSPOT_X "HOTSPOT_X" Kind::SignedRange(i32::MIN as i64, i32::MAX as i64), false, true;
    24 HOTSPOT_Y "HOTSPOT_Y" Kind::SignedRange(i32::MIN as i64, i32::MAX as i64), false, true;
}

const _: () = assert!(OUT_FENCE_PTR == drm_uapi::kms::PROP_OUT_FENCE_PTR);
const _: () = assert!(IN_FENCE_FD == drm_uapi::kms::PROP_IN_FENCE_FD);

/// The property `id`.
pub fn get(id: u32) -> Option<&'static Property> {
    ALL.iter().find(|p| p.id == id)
}

/// The properties an object has, in the order Linux attaches them.
pub fn of(object: Object) -> &'static [u32] {
    match object {
        Object::Connector(_) => &[DPMS, EDID, LINK_STATUS_ID, NON_DESKTOP, CONNECTOR_CRTC_ID],
        Object::Crtc(_) => &[ACTIVE, MODE_ID, OUT_FENCE_PTR, VRR_ENABLED],
        Object::Primary(_) => &[
            TYPE,
            FB_ID,
            IN_FENCE_FD,
            PLANE_CRTC_ID,
            CRTC_X,
            CRTC_Y,
            CRTC_W,
            CRTC_H,
            SRC_X,
            SRC_Y,
            SRC_W,
            SRC_H,
            FB_DAMAGE_CLIPS,
        ],
        Object::Cursor(_) => &[
            TYPE,
            FB_ID,
            IN_FENCE_FD,
            PLANE_CRTC_ID,
            CRTC_X,
            CRTC_Y,
            CRTC_W,
            CRTC_H,
            SRC_X,
            SRC_Y,
            SRC_W,
            SRC_H,
            HOTSPOT_X,
            HOTSPOT_Y,
        ],
        Object::Encoder(_) => &[],
    }
}

/// The object type of `object` (`DRM_MODE_OBJECT_*`).
pub fn type_of(object: Object) -> u32 {
    match object {
        Object::Crtc(_) => object::CRTC,
        Object::Encoder(_) => object::ENCODER,
        Object::Connector(_) => object::CONNECTOR,
        Object::Primary(_) | Object::Cursor(_) => object::PLANE,
    }
}

impl Kms {
    /// The value of property `prop` on `object`.
    pub fn value(&self, object: Object, prop: u32) -> u64 {
        let (Object::Crtc(n)
        | Object::Encoder(n)
        | Object::Connector(n)
        | Object::Primary(n)
        | Object::Cursor(n)) = object;
        let out = &self.outputs[n];
        let on = out.mode.is_some();
        let cursor = matches!(object, Object::Cursor(_));
        let (mode_w, mode_h) = out
            .mode
            .map_or((0, 0), |m| (u64::from(m.hdisplay), u64::from(m.vdisplay)));
        let shown = if cursor {
            out.cursor.image.is_some()
        } else {
            out.primary.fb.is_some()
        };
        let size = |full: u64, cursor_size: u64| match (shown, cursor) {
            (false, _) => 0,
            (true, true) => cursor_size,
            (true, false) => full,
        };
        let cursor_size = u64::from(super::CURSOR_SIZE);
        match prop {
            DPMS => u64::from(!on) * 3,
            EDID => out.edid_blob.map_or(0, u64::from),
            CONNECTOR_CRTC_ID => u64::from(if on { out.crtc_id() } else { 0 }),
            ACTIVE => u64::from(on),
            MODE_ID => self.mode_blob(n).map_or(0, u64::from),
            TYPE => 1 + u64::from(cursor),
            FB_ID => match cursor {
                true => out.cursor.fb.as_ref(),
                false => out.primary.fb.as_ref(),
            }
            .map_or(0, |f| u64::from(f.id)),
            PLANE_CRTC_ID if shown => u64::from(out.crtc_id()),
            IN_FENCE_FD => u64::MAX,
            CRTC_X if cursor => out.cursor.pos.0 as i64 as u64,
            CRTC_Y if cursor => out.cursor.pos.1 as i64 as u64,
            CRTC_W => size(mode_w, cursor_size),
            CRTC_H => size(mode_h, cursor_size),
            SRC_X if !cursor => u64::from(out.primary.src.0) << 16,
            SRC_Y if !cursor => u64::from(out.primary.src.1) << 16,
            SRC_W => size(mode_w, cursor_size) << 16,
            SRC_H => size(mode_h, cursor_size) << 16,
            HOTSPOT_X => out.cursor.hot.0 as i64 as u64,
            HOTSPOT_Y => out.cursor.hot.1 as i64 as u64,
            _ => 0,
        }
    }
}
