//! The KMS ioctls (`drm_mode.h`) as a scheme daemon receives them, and the
//! events read from a DRM fd.
//!
//! Every ioctl follows the crate's wire rule: the `#[repr(C)]` image of the
//! Linux struct's non-pointer fields in declaration order, then each
//! pointed-to array inline in declaration order. For the ioctls relibc
//! already forwards upstream (`redox-ioctl/src/drm.rs` of 2026-08-21:
//! GETRESOURCES, GETCRTC/SETCRTC, CURSOR/CURSOR2, GETENCODER, GETCONNECTOR,
//! GETPROPERTY, SETPROPERTY, GETPROPBLOB, GETFB/ADDFB, RMFB, PAGE_FLIP,
//! DIRTYFB, the dumb-buffer ioctls, GETPLANERESOURCES, GETPLANE, SETPLANE,
//! ADDFB2, OBJ_GETPROPERTIES, GETFB2, CLOSEFB) these are exactly the bytes
//! its `define_ioctl_data!` produces; the rest (GAMMA, OBJ_SETPROPERTY,
//! ATOMIC, the property blobs, WAIT_VBLANK, CRTC sequences, leases) follow
//! the same rule, with ATOMIC's one exception documented on
//! [`AtomicHeader`].
//!
//! [`layout`] is the one table of these shapes: the Linux struct's size,
//! which of its bytes form the wire header, and where each array's pointer
//! and count are. A client library packs from it without knowing any
//! ioctl's meaning, and the daemon's typed headers are checked against it.
//!
//! Pointed-to arrays are carried whole whatever their direction, as relibc
//! does: an array the daemon fills comes back with the caller's bytes where
//! it wrote nothing, so copying the whole array back changes only what the
//! daemon wrote (Linux's two-call protocol: the daemon writes the real
//! counts and fills arrays only as far as the caller made room).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::wire::is_drm_request;

/// WAIT_VBLANK.
pub const WAIT_VBLANK: u64 = 0x3A;
/// CRTC_GET_SEQUENCE.
pub const CRTC_GET_SEQUENCE: u64 = 0x3B;
/// CRTC_QUEUE_SEQUENCE.
pub const CRTC_QUEUE_SEQUENCE: u64 = 0x3C;
/// MODE_GETRESOURCES.
pub const GETRESOURCES: u64 = 0xA0;
/// MODE_GETCRTC.
pub const GETCRTC: u64 = 0xA1;
/// MODE_SETCRTC.
pub const SETCRTC: u64 = 0xA2;
/// MODE_CURSOR.
pub const CURSOR: u64 = 0xA3;
/// MODE_GETGAMMA.
pub const GETGAMMA: u64 = 0xA4;
/// MODE_SETGAMMA.
pub const SETGAMMA: u64 = 0xA5;
/// MODE_GETENCODER.
pub const GETENCODER: u64 = 0xA6;
/// MODE_GETCONNECTOR.
pub const GETCONNECTOR: u64 = 0xA7;
/// MODE_GETPROPERTY.
pub const GETPROPERTY: u64 = 0xAA;
/// MODE_SETPROPERTY (connector properties, legacy).
pub const SETPROPERTY: u64 = 0xAB;
/// MODE_GETPROPBLOB.
pub const GETPROPBLOB: u64 = 0xAC;
/// MODE_GETFB.
pub const GETFB: u64 = 0xAD;
/// MODE_ADDFB.
pub const ADDFB: u64 = 0xAE;
/// MODE_RMFB.
pub const RMFB: u64 = 0xAF;
/// MODE_PAGE_FLIP.
pub const PAGE_FLIP: u64 = 0xB0;
/// MODE_DIRTYFB.
pub const DIRTYFB: u64 = 0xB1;
/// MODE_CREATE_DUMB.
pub const CREATE_DUMB: u64 = 0xB2;
/// MODE_MAP_DUMB.
pub const MAP_DUMB: u64 = 0xB3;
/// MODE_DESTROY_DUMB.
pub const DESTROY_DUMB: u64 = 0xB4;
/// MODE_GETPLANERESOURCES.
pub const GETPLANERESOURCES: u64 = 0xB5;
/// MODE_GETPLANE.
pub const GETPLANE: u64 = 0xB6;
/// MODE_SETPLANE.
pub const SETPLANE: u64 = 0xB7;
/// MODE_ADDFB2.
pub const ADDFB2: u64 = 0xB8;
/// MODE_OBJ_GETPROPERTIES.
pub const OBJ_GETPROPERTIES: u64 = 0xB9;
/// MODE_OBJ_SETPROPERTY.
pub const OBJ_SETPROPERTY: u64 = 0xBA;
/// MODE_CURSOR2.
pub const CURSOR2: u64 = 0xBB;
/// MODE_ATOMIC.
pub const ATOMIC: u64 = 0xBC;
/// MODE_CREATEPROPBLOB.
pub const CREATEPROPBLOB: u64 = 0xBD;
/// MODE_DESTROYPROPBLOB.
pub const DESTROYPROPBLOB: u64 = 0xBE;
/// MODE_LIST_LESSEES.
pub const LIST_LESSEES: u64 = 0xC7;
/// MODE_GET_LEASE.
pub const GET_LEASE: u64 = 0xC8;
/// MODE_GETFB2.
pub const GETFB2: u64 = 0xCE;
/// MODE_CLOSEFB.
pub const CLOSEFB: u64 = 0xD0;

/// Mode object types (`DRM_MODE_OBJECT_*`).
pub mod object {
    /// A CRTC.
    pub const CRTC: u32 = 0xcccc_cccc;
    /// A connector.
    pub const CONNECTOR: u32 = 0xc0c0_c0c0;
    /// An encoder.
    pub const ENCODER: u32 = 0xe0e0_e0e0;
    /// A property.
    pub const PROPERTY: u32 = 0xb0b0_b0b0;
    /// A framebuffer.
    pub const FB: u32 = 0xfbfb_fbfb;
    /// A property blob.
    pub const BLOB: u32 = 0xbbbb_bbbb;
    /// A plane.
    pub const PLANE: u32 = 0xeeee_eeee;
    /// Any of them (OBJ_GETPROPERTIES).
    pub const ANY: u32 = 0;
}

/// Property flags (`DRM_MODE_PROP_*`).
pub mod prop_flags {
    /// A range of unsigned values (min, max).
    pub const RANGE: u32 = 2;
    /// Only the driver changes it.
    pub const IMMUTABLE: u32 = 4;
    /// One of named values.
    pub const ENUM: u32 = 8;
    /// A blob id.
    pub const BLOB: u32 = 0x10;
    /// An object id of the type in its one value.
    pub const OBJECT: u32 = 1 << 6;
    /// A range of signed values.
    pub const SIGNED_RANGE: u32 = 2 << 6;
    /// Seen only by atomic clients.
    pub const ATOMIC: u32 = 0x8000_0000;
}

/// `DRM_MODE_ATOMIC_*` and `DRM_MODE_PAGE_FLIP_*` flags.
pub mod flip {
    /// Send an event when the flip is done.
    pub const EVENT: u32 = 0x1;
    /// Flip at once, not at vblank.
    pub const ASYNC: u32 = 0x2;
    /// PAGE_FLIP at an absolute vblank.
    pub const TARGET_ABSOLUTE: u32 = 0x4;
    /// PAGE_FLIP at a relative vblank.
    pub const TARGET_RELATIVE: u32 = 0x8;
    /// ATOMIC: check only.
    pub const TEST_ONLY: u32 = 0x100;
    /// ATOMIC: do not wait for the commit.
    pub const NONBLOCK: u32 = 0x200;
    /// ATOMIC: a full modeset may happen.
    pub const ALLOW_MODESET: u32 = 0x400;
}

/// `drm_event.type` values.
pub mod event {
    /// WAIT_VBLANK with EVENT.
    pub const VBLANK: u32 = 0x01;
    /// A PAGE_FLIP's or an ATOMIC commit's.
    pub const FLIP_COMPLETE: u32 = 0x02;
    /// CRTC_QUEUE_SEQUENCE's.
    pub const CRTC_SEQUENCE: u32 = 0x03;
    /// Redox's connector hotplug (`REDOX_DRM_EVENT_CONNECTOR_HOTPLUG`),
    /// sent to files with [`super::REDOX_CLIENT_CAP_HOTPLUG_EVENTS`].
    pub const REDOX_CONNECTOR_HOTPLUG: u32 = 0x299f_c90d;
}

/// Redox's client cap for hotplug events (graphics-ipc's
/// `REDOX_DRM_CLIENT_CAP_HOTPLUG_EVENTS`).
pub const REDOX_CLIENT_CAP_HOTPLUG_EVENTS: u64 = 0x299f_c90c;

/// The id of drmd's `OUT_FENCE_PTR` CRTC property: its value in an ATOMIC
/// request is a pointer, which the client library replaces (see
/// [`AtomicHeader`]). Fixed, so that the library needs no lookup.
pub const PROP_OUT_FENCE_PTR: u32 = 8;
/// The id of drmd's `IN_FENCE_FD` plane property: its value is an fd,
/// which travels as its token.
pub const PROP_IN_FENCE_FD: u32 = 12;

/// fourcc `XR24`.
pub const FORMAT_XRGB8888: u32 = 0x3432_5258;
/// fourcc `AR24`.
pub const FORMAT_ARGB8888: u32 = 0x3432_5241;

/// `DRM_MODE_CURSOR_BO`: the image changes.
pub const CURSOR_BO: u32 = 1;
/// `DRM_MODE_CURSOR_MOVE`: the position changes.
pub const CURSOR_MOVE: u32 = 2;

/// `DRM_MODE_FB_DIRTY_MAX_CLIPS`.
pub const DIRTY_MAX_CLIPS: u32 = 256;
/// `DRM_MODE_FB_INTERLACED`.
pub const FB_INTERLACED: u32 = 1;
/// `DRM_MODE_FB_MODIFIERS`.
pub const FB_MODIFIERS: u32 = 2;

/// Derives for a wire struct.
macro_rules! wire {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident: $t:ty,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
        #[repr(C)]
        pub struct $name { $($(#[$fm])* pub $f: $t,)* }
    };
}

wire! {
    /// `drm_mode_modeinfo`, 68 bytes, the same everywhere.
    pub struct ModeInfo {
        /// Pixel clock in kHz.
        pub clock: u32,
        /// Visible width.
        pub hdisplay: u16,
        /// Horizontal sync start.
        pub hsync_start: u16,
        /// Horizontal sync end.
        pub hsync_end: u16,
        /// Total width.
        pub htotal: u16,
        /// Horizontal skew.
        pub hskew: u16,
        /// Visible height.
        pub vdisplay: u16,
        /// Vertical sync start.
        pub vsync_start: u16,
        /// Vertical sync end.
        pub vsync_end: u16,
        /// Total height.
        pub vtotal: u16,
        /// Vertical scan.
        pub vscan: u16,
        /// Refresh rate in Hz.
        pub vrefresh: u32,
        /// `DRM_MODE_FLAG_*`.
        pub flags: u32,
        /// `DRM_MODE_TYPE_*`.
        pub type_: u32,
        /// NUL-terminated name ("1024x768").
        pub name: [u8; 32],
    }
}

wire! {
    /// GETRESOURCES header; then `fbs`, `crtcs`, `connectors`, `encoders`
    /// (`u32` ids, each counted by its field).
    pub struct CardResHeader {
        /// IN: room; OUT: the caller's framebuffers.
        pub count_fbs: u32,
        /// IN: room; OUT: CRTCs.
        pub count_crtcs: u32,
        /// IN: room; OUT: connectors.
        pub count_connectors: u32,
        /// IN: room; OUT: encoders.
        pub count_encoders: u32,
        /// OUT: the smallest framebuffer width.
        pub min_width: u32,
        /// OUT: the largest.
        pub max_width: u32,
        /// OUT: the smallest height.
        pub min_height: u32,
        /// OUT: the largest.
        pub max_height: u32,
    }
}

wire! {
    /// GETCRTC/SETCRTC header; then `set_connectors` (`u32`, counted by
    /// `count_connectors`, SETCRTC's input).
    pub struct CrtcHeader {
        /// SETCRTC: connectors to drive.
        pub count_connectors: u32,
        /// The CRTC.
        pub crtc_id: u32,
        /// Its framebuffer (SETCRTC: -1 keeps the current one).
        pub fb_id: u32,
        /// Where in the framebuffer the scanout starts.
        pub x: u32,
        /// Where in the framebuffer the scanout starts.
        pub y: u32,
        /// OUT: gamma table size (0: none).
        pub gamma_size: u32,
        /// Whether `mode` is set.
        pub mode_valid: u32,
        /// The mode.
        pub mode: ModeInfo,
    }
}

wire! {
    /// CURSOR (`drm_mode_cursor`, unchanged).
    pub struct Cursor {
        /// [`CURSOR_BO`] and/or [`CURSOR_MOVE`].
        pub flags: u32,
        /// The CRTC.
        pub crtc_id: u32,
        /// Position on the CRTC.
        pub x: i32,
        /// Position on the CRTC.
        pub y: i32,
        /// Image width.
        pub width: u32,
        /// Image height.
        pub height: u32,
        /// GEM handle of the image (0 hides the cursor).
        pub handle: u32,
    }
}

wire! {
    /// CURSOR2 (`drm_mode_cursor2`, unchanged): CURSOR with a hotspot.
    pub struct Cursor2 {
        /// [`CURSOR_BO`] and/or [`CURSOR_MOVE`].
        pub flags: u32,
        /// The CRTC.
        pub crtc_id: u32,
        /// Position on the CRTC.
        pub x: i32,
        /// Position on the CRTC.
        pub y: i32,
        /// Image width.
        pub width: u32,
        /// Image height.
        pub height: u32,
        /// GEM handle of the image (0 hides the cursor).
        pub handle: u32,
        /// Hotspot in the image.
        pub hot_x: i32,
        /// Hotspot in the image.
        pub hot_y: i32,
    }
}

wire! {
    /// GETGAMMA/SETGAMMA header; then `red`, `green`, `blue` (`u16`, each
    /// counted by `gamma_size`).
    pub struct CrtcLutHeader {
        /// The CRTC.
        pub crtc_id: u32,
        /// Entries per table: must equal the CRTC's.
        pub gamma_size: u32,
    }
}

wire! {
    /// GETENCODER (`drm_mode_get_encoder`, unchanged).
    pub struct GetEncoder {
        /// The encoder.
        pub encoder_id: u32,
        /// OUT: `DRM_MODE_ENCODER_*`.
        pub encoder_type: u32,
        /// OUT: the CRTC it feeds (0: none).
        pub crtc_id: u32,
        /// OUT: CRTCs it can be fed by (bit per CRTC index).
        pub possible_crtcs: u32,
        /// OUT: encoders it can clone.
        pub possible_clones: u32,
    }
}

wire! {
    /// GETCONNECTOR header; then `encoders` (`u32`), `modes`
    /// ([`ModeInfo`]), `props` (`u32`) and `prop_values` (`u64`), the last
    /// two both counted by `count_props`.
    pub struct GetConnectorHeader {
        /// IN: room; OUT: modes.
        pub count_modes: u32,
        /// IN: room; OUT: properties.
        pub count_props: u32,
        /// IN: room; OUT: encoders.
        pub count_encoders: u32,
        /// OUT: the encoder in use (0: none).
        pub encoder_id: u32,
        /// The connector.
        pub connector_id: u32,
        /// OUT: `DRM_MODE_CONNECTOR_*`.
        pub connector_type: u32,
        /// OUT: index among connectors of its type, from 1.
        pub connector_type_id: u32,
        /// OUT: 1 connected, 2 disconnected, 3 unknown.
        pub connection: u32,
        /// OUT: physical width in mm.
        pub mm_width: u32,
        /// OUT: physical height in mm.
        pub mm_height: u32,
        /// OUT: subpixel order.
        pub subpixel: u32,
        /// Padding.
        pub pad: u32,
    }
}

wire! {
    /// GETPROPERTY header; then `values` (`u64`, counted by
    /// `count_values`) and `enum_blobs` ([`PropertyEnum`], counted by
    /// `count_enum_blobs`).
    pub struct GetPropertyHeader {
        /// The property.
        pub prop_id: u32,
        /// OUT: `DRM_MODE_PROP_*`.
        pub flags: u32,
        /// OUT: NUL-terminated name.
        pub name: [u8; 32],
        /// IN: room; OUT: values (range bounds, enum values, object type).
        pub count_values: u32,
        /// IN: room; OUT: enum entries.
        pub count_enum_blobs: u32,
    }
}

wire! {
    /// One entry of an enum property (`drm_mode_property_enum`).
    pub struct PropertyEnum {
        /// Its value.
        pub value: u64,
        /// Its NUL-terminated name.
        pub name: [u8; 32],
    }
}

wire! {
    /// SETPROPERTY (`drm_mode_connector_set_property`, unchanged).
    pub struct ConnectorSetProperty {
        /// The new value.
        pub value: u64,
        /// The property.
        pub prop_id: u32,
        /// The connector.
        pub connector_id: u32,
    }
}

wire! {
    /// GETPROPBLOB header; then `data` (`u8`, counted by `length`).
    pub struct GetBlobHeader {
        /// The blob.
        pub blob_id: u32,
        /// IN: room; OUT: the blob's length.
        pub length: u32,
    }
}

wire! {
    /// CREATEPROPBLOB header; then `data` (`u8`, counted by `length`).
    pub struct CreateBlobHeader {
        /// Bytes of data.
        pub length: u32,
        /// OUT: the new blob.
        pub blob_id: u32,
    }
}

wire! {
    /// GETFB/ADDFB (`drm_mode_fb_cmd`, unchanged).
    pub struct FbCmd {
        /// ADDFB OUT, GETFB IN: the framebuffer.
        pub fb_id: u32,
        /// Width in pixels.
        pub width: u32,
        /// Height in pixels.
        pub height: u32,
        /// Bytes per line.
        pub pitch: u32,
        /// Bits per pixel.
        pub bpp: u32,
        /// Colour depth.
        pub depth: u32,
        /// ADDFB IN, GETFB OUT: the GEM handle.
        pub handle: u32,
    }
}

wire! {
    /// ADDFB2/GETFB2 (`drm_mode_fb_cmd2`, unchanged).
    pub struct FbCmd2 {
        /// ADDFB2 OUT, GETFB2 IN: the framebuffer.
        pub fb_id: u32,
        /// Width in pixels.
        pub width: u32,
        /// Height in pixels.
        pub height: u32,
        /// fourcc.
        pub pixel_format: u32,
        /// [`FB_INTERLACED`], [`FB_MODIFIERS`].
        pub flags: u32,
        /// GEM handle per plane.
        pub handles: [u32; 4],
        /// Bytes per line per plane.
        pub pitches: [u32; 4],
        /// Offset of each plane in its buffer.
        pub offsets: [u32; 4],
        /// Padding.
        pub pad: u32,
        /// Modifier per plane (with [`FB_MODIFIERS`]).
        pub modifier: [u64; 4],
    }
}

wire! {
    /// PAGE_FLIP (`drm_mode_crtc_page_flip_target`, unchanged).
    pub struct PageFlip {
        /// The CRTC.
        pub crtc_id: u32,
        /// The framebuffer to show.
        pub fb_id: u32,
        /// [`flip`] flags.
        pub flags: u32,
        /// Target vblank (with TARGET_*), else 0.
        pub sequence: u32,
        /// Returned in the event.
        pub user_data: u64,
    }
}

wire! {
    /// DIRTYFB header; then `clips` ([`ClipRect`], counted by `num_clips`).
    pub struct FbDirtyHeader {
        /// The framebuffer.
        pub fb_id: u32,
        /// ANNOTATE_COPY / ANNOTATE_FILL.
        pub flags: u32,
        /// ANNOTATE_FILL's colour.
        pub color: u32,
        /// Clip rectangles (0: the whole framebuffer).
        pub num_clips: u32,
    }
}

wire! {
    /// `drm_clip_rect`: x1, y1 inclusive; x2, y2 exclusive.
    pub struct ClipRect {
        /// Left.
        pub x1: u16,
        /// Top.
        pub y1: u16,
        /// Right, exclusive.
        pub x2: u16,
        /// Bottom, exclusive.
        pub y2: u16,
    }
}

wire! {
    /// `drm_mode_rect`, an FB_DAMAGE_CLIPS entry: x1, y1 inclusive; x2, y2
    /// exclusive.
    pub struct DamageRect {
        /// Left.
        pub x1: i32,
        /// Top.
        pub y1: i32,
        /// Right, exclusive.
        pub x2: i32,
        /// Bottom, exclusive.
        pub y2: i32,
    }
}

wire! {
    /// CREATE_DUMB (`drm_mode_create_dumb`, unchanged).
    pub struct CreateDumb {
        /// Height in pixels.
        pub height: u32,
        /// Width in pixels.
        pub width: u32,
        /// Bits per pixel.
        pub bpp: u32,
        /// Must be 0.
        pub flags: u32,
        /// OUT: the GEM handle.
        pub handle: u32,
        /// OUT: bytes per line.
        pub pitch: u32,
        /// OUT: bytes.
        pub size: u64,
    }
}

wire! {
    /// MAP_DUMB (`drm_mode_map_dumb`, unchanged).
    pub struct MapDumb {
        /// The GEM handle.
        pub handle: u32,
        /// Must be 0.
        pub pad: u32,
        /// OUT: the offset to mmap at.
        pub offset: u64,
    }
}

wire! {
    /// DESTROY_DUMB, RMFB, DESTROYPROPBLOB: one id.
    pub struct Id {
        /// The handle or object.
        pub id: u32,
    }
}

wire! {
    /// GETPLANERESOURCES header; then `planes` (`u32`, counted).
    pub struct GetPlaneResHeader {
        /// IN: room; OUT: planes.
        pub count_planes: u32,
    }
}

wire! {
    /// GETPLANE header; then `format_types` (`u32` fourccs, counted by
    /// `count_format_types`).
    pub struct GetPlaneHeader {
        /// The plane.
        pub plane_id: u32,
        /// OUT: the CRTC it shows on (0: none).
        pub crtc_id: u32,
        /// OUT: its framebuffer (0: none).
        pub fb_id: u32,
        /// OUT: CRTCs it can show on.
        pub possible_crtcs: u32,
        /// OUT: 0.
        pub gamma_size: u32,
        /// IN: room; OUT: formats.
        pub count_format_types: u32,
    }
}

wire! {
    /// SETPLANE (`drm_mode_set_plane`, unchanged; `src_*` are 16.16).
    pub struct SetPlane {
        /// The plane.
        pub plane_id: u32,
        /// The CRTC.
        pub crtc_id: u32,
        /// The framebuffer (0: disable).
        pub fb_id: u32,
        /// Must be 0.
        pub flags: u32,
        /// Destination on the CRTC.
        pub crtc_x: i32,
        /// Destination on the CRTC.
        pub crtc_y: i32,
        /// Destination size.
        pub crtc_w: u32,
        /// Destination size.
        pub crtc_h: u32,
        /// Source in the framebuffer, 16.16.
        pub src_x: u32,
        /// Source in the framebuffer, 16.16.
        pub src_y: u32,
        /// Source height, 16.16 (h before w, as Linux).
        pub src_h: u32,
        /// Source width, 16.16.
        pub src_w: u32,
    }
}

wire! {
    /// OBJ_GETPROPERTIES header; then `props` (`u32`) and `prop_values`
    /// (`u64`), both counted by `count_props`.
    pub struct ObjGetPropertiesHeader {
        /// IN: room; OUT: properties.
        pub count_props: u32,
        /// The object.
        pub obj_id: u32,
        /// Its type ([`object`]).
        pub obj_type: u32,
    }
}

wire! {
    /// OBJ_SETPROPERTY (`drm_mode_obj_set_property`, unchanged).
    pub struct ObjSetProperty {
        /// The new value.
        pub value: u64,
        /// The property.
        pub prop_id: u32,
        /// The object.
        pub obj_id: u32,
        /// Its type ([`object`]).
        pub obj_type: u32,
        /// Padding.
        pub pad: u32,
    }
}

wire! {
    /// ATOMIC header; then `objs` (`u32`, counted by `count_objs`),
    /// `count_props` (`u32`, counted by `count_objs`), `props` (`u32`) and
    /// `prop_values` (`u64`), the last two counted by the sum of
    /// `count_props` — the one count of the wire that is not a field.
    ///
    /// Values that name an fd or a pointer travel as the daemon can use
    /// them: an `IN_FENCE_FD` value is the fd's token (or the token
    /// sentinels, as everywhere), and an `OUT_FENCE_PTR` value is non-zero
    /// for "wanted"; the daemon writes a slot naming the CRTC's out-fence
    /// into that value, and the client library turns it into a sync_file
    /// by `dup` (`[ATOMIC, slot]`, as EXECBUFFER's out-fence) and writes
    /// the fd where the client's pointer points.
    pub struct AtomicHeader {
        /// [`flip`] flags.
        pub flags: u32,
        /// Objects in the commit.
        pub count_objs: u32,
        /// Must be 0.
        pub reserved: u64,
        /// Returned in the events.
        pub user_data: u64,
    }
}

wire! {
    /// WAIT_VBLANK (`union drm_wait_vblank` on LP64, unchanged): the
    /// request is `{type, sequence, signal}`, the reply `{type, sequence,
    /// tval_sec, tval_usec}` in the same bytes.
    pub struct WaitVblank {
        /// `_DRM_VBLANK_*` type and flags; the CRTC index in bits 1..5 and
        /// with HIGH_CRTC in bits 1..=5 of the high-CRTC field.
        pub type_: u32,
        /// IN: the target sequence; OUT: the current one.
        pub sequence: u32,
        /// IN: the event's user data; OUT: seconds.
        pub tval_sec: i64,
        /// OUT: microseconds.
        pub tval_usec: i64,
    }
}

wire! {
    /// CRTC_GET_SEQUENCE (`drm_crtc_get_sequence`, unchanged).
    pub struct CrtcGetSequence {
        /// The CRTC.
        pub crtc_id: u32,
        /// OUT: whether it is on.
        pub active: u32,
        /// OUT: the current vblank count.
        pub sequence: u64,
        /// OUT: its time, CLOCK_MONOTONIC ns.
        pub sequence_ns: i64,
    }
}

wire! {
    /// CRTC_QUEUE_SEQUENCE (`drm_crtc_queue_sequence`, unchanged).
    pub struct CrtcQueueSequence {
        /// The CRTC.
        pub crtc_id: u32,
        /// `DRM_CRTC_SEQUENCE_RELATIVE` 1, `_NEXT_ON_MISS` 2.
        pub flags: u32,
        /// IN: the target; OUT: the sequence it is queued for.
        pub sequence: u64,
        /// Returned in the event.
        pub user_data: u64,
    }
}

wire! {
    /// LIST_LESSEES header; then `lessees` (`u32`, counted).
    pub struct ListLesseesHeader {
        /// IN: room; OUT: lessees.
        pub count_lessees: u32,
        /// Must be 0.
        pub pad: u32,
    }
}

wire! {
    /// CLOSEFB (`drm_mode_closefb`, unchanged).
    pub struct CloseFb {
        /// The framebuffer.
        pub fb_id: u32,
        /// Must be 0.
        pub pad: u32,
    }
}

wire! {
    /// `struct drm_event`: the start of every event read from a DRM fd.
    pub struct Event {
        /// [`event`] type.
        pub type_: u32,
        /// Bytes of the whole event.
        pub length: u32,
    }
}

wire! {
    /// `struct drm_event_vblank`: VBLANK and FLIP_COMPLETE events.
    pub struct EventVblank {
        /// The header.
        pub base: Event,
        /// The request's user data.
        pub user_data: u64,
        /// CLOCK_MONOTONIC seconds of the vblank.
        pub tv_sec: u32,
        /// Microseconds.
        pub tv_usec: u32,
        /// The vblank's sequence number.
        pub sequence: u32,
        /// The CRTC (with CRTC_IN_VBLANK_EVENT; always set here).
        pub crtc_id: u32,
    }
}

wire! {
    /// `struct drm_event_crtc_sequence`: CRTC_QUEUE_SEQUENCE's event.
    pub struct EventCrtcSequence {
        /// The header.
        pub base: Event,
        /// The request's user data.
        pub user_data: u64,
        /// CLOCK_MONOTONIC ns of the vblank.
        pub time_ns: i64,
        /// Its sequence number.
        pub sequence: u64,
    }
}

wire! {
    /// Redox's hotplug event (graphics-ipc's `RedoxDrmEventConnectorHotplug`).
    pub struct EventHotplug {
        /// The header.
        pub base: Event,
        /// The connector that changed.
        pub connector: u32,
    }
}

/// One pointed-to array of a Linux KMS struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Array {
    /// Offset of its `u64` pointer in the Linux struct.
    pub ptr: usize,
    /// Offset of its `u32` count in the Linux struct.
    pub count: usize,
    /// Bytes per element; an array of bytes (blob data) is carried up to
    /// `MAX_BYTES`, the others up to `MAX_COUNT` elements.
    pub elem: usize,
    /// Whether the daemon fills it (copied back to the caller); an input
    /// array is never written back, as in Linux (it may be read-only).
    pub out: bool,
}

/// How a Linux KMS struct becomes its wire payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Size of the Linux struct.
    pub linux: usize,
    /// The byte ranges (offset, length) of the non-pointer fields, in
    /// order: concatenated, they are the wire header.
    pub fields: &'static [(usize, usize)],
    /// The arrays, in order.
    pub arrays: &'static [Array],
}

impl Layout {
    /// Bytes of the wire header.
    pub const fn header(&self) -> usize {
        let mut n = 0;
        let mut i = 0;
        while i < self.fields.len() {
            n += self.fields[i].1;
            i += 1;
        }
        n
    }

    /// The wire header of the Linux struct `linux` (at least
    /// [`Layout::linux`] bytes): its non-pointer fields, concatenated.
    pub fn wire_header(&self, linux: &[u8]) -> alloc::vec::Vec<u8> {
        self.fields
            .iter()
            .flat_map(|&(at, len)| linux[at..at + len].iter().copied())
            .collect()
    }
}

const fn plain(size: usize) -> Layout {
    Layout {
        linux: size,
        fields: match size {
            4 => &[(0, 4)],
            8 => &[(0, 8)],
            16 => &[(0, 16)],
            20 => &[(0, 20)],
            24 => &[(0, 24)],
            28 => &[(0, 28)],
            32 => &[(0, 32)],
            36 => &[(0, 36)],
            48 => &[(0, 48)],
            104 => &[(0, 104)],
            _ => panic!("no plain layout of this size"),
        },
        arrays: &[],
    }
}

/// An input [`Array`] literal (a `const fn` call would not be promoted to
/// the `'static` tables).
macro_rules! array {
    ($ptr:expr, $count:expr, $elem:expr) => {
        Array {
            ptr: $ptr,
            count: $count,
            elem: $elem,
            out: false,
        }
    };
}

/// An output [`Array`] literal.
macro_rules! out {
    ($ptr:expr, $count:expr, $elem:expr) => {
        Array {
            ptr: $ptr,
            count: $count,
            elem: $elem,
            out: true,
        }
    };
}

/// The wire shape of KMS ioctl `nr` (None: not a KMS ioctl). ATOMIC's
/// derived count is [`AtomicHeader`]'s to handle; its entry lists only the
/// two arrays counted by `count_objs`.
pub const fn layout(nr: u64) -> Option<Layout> {
    Some(match nr {
        WAIT_VBLANK | CRTC_GET_SEQUENCE | CRTC_QUEUE_SEQUENCE | PAGE_FLIP | OBJ_SETPROPERTY => {
            plain(24)
        }
        GETRESOURCES => Layout {
            linux: 64,
            fields: &[(32, 32)],
            arrays: &[
                out!(0, 32, 4),
                out!(8, 36, 4),
                out!(16, 40, 4),
                out!(24, 44, 4),
            ],
        },
        GETCRTC | SETCRTC => Layout {
            linux: 104,
            fields: &[(8, 96)],
            arrays: &[array!(0, 8, 4)],
        },
        CURSOR | GETFB | ADDFB => plain(28),
        CURSOR2 => plain(36),
        GETGAMMA => Layout {
            linux: 32,
            fields: &[(0, 8)],
            arrays: &[out!(8, 4, 2), out!(16, 4, 2), out!(24, 4, 2)],
        },
        SETGAMMA => Layout {
            linux: 32,
            fields: &[(0, 8)],
            arrays: &[array!(8, 4, 2), array!(16, 4, 2), array!(24, 4, 2)],
        },
        GETENCODER => plain(20),
        GETCONNECTOR => Layout {
            linux: 80,
            fields: &[(32, 48)],
            arrays: &[
                out!(0, 40, 4),
                out!(8, 32, 68),
                out!(16, 36, 4),
                out!(24, 36, 8),
            ],
        },
        GETPROPERTY => Layout {
            linux: 64,
            fields: &[(16, 48)],
            arrays: &[out!(0, 56, 8), out!(8, 60, 40)],
        },
        SETPROPERTY | MAP_DUMB => plain(16),
        GETPROPBLOB => Layout {
            linux: 16,
            fields: &[(0, 8)],
            arrays: &[out!(8, 4, 1)],
        },
        RMFB | DESTROY_DUMB | DESTROYPROPBLOB => plain(4),
        DIRTYFB => Layout {
            linux: 24,
            fields: &[(0, 16)],
            arrays: &[array!(16, 12, 8)],
        },
        CREATE_DUMB => plain(32),
        GETPLANERESOURCES => Layout {
            linux: 16,
            fields: &[(8, 4)],
            arrays: &[out!(0, 8, 4)],
        },
        GETPLANE => Layout {
            linux: 32,
            fields: &[(0, 24)],
            arrays: &[out!(24, 20, 4)],
        },
        SETPLANE => plain(48),
        ADDFB2 | GETFB2 => plain(104),
        OBJ_GETPROPERTIES => Layout {
            linux: 32,
            fields: &[(16, 12)],
            arrays: &[out!(0, 16, 4), out!(8, 16, 8)],
        },
        ATOMIC => Layout {
            linux: 56,
            fields: &[(0, 8), (40, 16)],
            arrays: &[array!(8, 4, 4), array!(16, 4, 4)],
        },
        CREATEPROPBLOB => Layout {
            linux: 16,
            fields: &[(8, 8)],
            arrays: &[array!(0, 8, 1)],
        },
        LIST_LESSEES | GET_LEASE => Layout {
            linux: 16,
            fields: &[(0, 8)],
            arrays: &[out!(8, 0, 4)],
        },
        CLOSEFB => plain(8),
        _ => return None,
    })
}

/// Whether the Linux request number `request` is KMS ioctl `nr` with the
/// struct size [`layout`] gives.
pub const fn is_request(request: u32, nr: u64) -> bool {
    match layout(nr) {
        Some(l) => is_drm_request(request, nr, l.linux),
        None => false,
    }
}

const _: () = {
    use core::mem::size_of;
    const fn header_is(nr: u64, size: usize) -> bool {
        match layout(nr) {
            Some(l) => l.header() == size,
            None => false,
        }
    }
    assert!(size_of::<ModeInfo>() == 68);
    assert!(size_of::<EventVblank>() == 32);
    assert!(size_of::<EventCrtcSequence>() == 32);
    assert!(size_of::<PropertyEnum>() == 40);
    assert!(header_is(WAIT_VBLANK, size_of::<WaitVblank>()));
    assert!(header_is(CRTC_GET_SEQUENCE, size_of::<CrtcGetSequence>()));
    assert!(header_is(
        CRTC_QUEUE_SEQUENCE,
        size_of::<CrtcQueueSequence>()
    ));
    assert!(header_is(GETRESOURCES, size_of::<CardResHeader>()));
    assert!(header_is(GETCRTC, size_of::<CrtcHeader>()));
    assert!(header_is(CURSOR, size_of::<Cursor>()));
    assert!(header_is(CURSOR2, size_of::<Cursor2>()));
    assert!(header_is(GETGAMMA, size_of::<CrtcLutHeader>()));
    assert!(header_is(GETENCODER, size_of::<GetEncoder>()));
    assert!(header_is(GETCONNECTOR, size_of::<GetConnectorHeader>()));
    assert!(header_is(GETPROPERTY, size_of::<GetPropertyHeader>()));
    assert!(header_is(SETPROPERTY, size_of::<ConnectorSetProperty>()));
    assert!(header_is(GETPROPBLOB, size_of::<GetBlobHeader>()));
    assert!(header_is(GETFB, size_of::<FbCmd>()));
    assert!(header_is(RMFB, size_of::<Id>()));
    assert!(header_is(PAGE_FLIP, size_of::<PageFlip>()));
    assert!(header_is(DIRTYFB, size_of::<FbDirtyHeader>()));
    assert!(header_is(CREATE_DUMB, size_of::<CreateDumb>()));
    assert!(header_is(MAP_DUMB, size_of::<MapDumb>()));
    assert!(header_is(GETPLANERESOURCES, size_of::<GetPlaneResHeader>()));
    assert!(header_is(GETPLANE, size_of::<GetPlaneHeader>()));
    assert!(header_is(SETPLANE, size_of::<SetPlane>()));
    assert!(header_is(ADDFB2, size_of::<FbCmd2>()));
    assert!(header_is(
        OBJ_GETPROPERTIES,
        size_of::<ObjGetPropertiesHeader>()
    ));
    assert!(header_is(OBJ_SETPROPERTY, size_of::<ObjSetProperty>()));
    assert!(header_is(ATOMIC, size_of::<AtomicHeader>()));
    assert!(header_is(CREATEPROPBLOB, size_of::<CreateBlobHeader>()));
    assert!(header_is(LIST_LESSEES, size_of::<ListLesseesHeader>()));
    assert!(header_is(CLOSEFB, size_of::<CloseFb>()));

    // Linux request numbers (ABI-REFERENCE §3.5).
    assert!(is_request(0xC018_643A, WAIT_VBLANK));
    assert!(is_request(0xC018_643B, CRTC_GET_SEQUENCE));
    assert!(is_request(0xC018_643C, CRTC_QUEUE_SEQUENCE));
    assert!(is_request(0xC040_64A0, GETRESOURCES));
    assert!(is_request(0xC068_64A1, GETCRTC));
    assert!(is_request(0xC068_64A2, SETCRTC));
    assert!(is_request(0xC01C_64A3, CURSOR));
    assert!(is_request(0xC020_64A4, GETGAMMA));
    assert!(is_request(0xC020_64A5, SETGAMMA));
    assert!(is_request(0xC014_64A6, GETENCODER));
    assert!(is_request(0xC050_64A7, GETCONNECTOR));
    assert!(is_request(0xC040_64AA, GETPROPERTY));
    assert!(is_request(0xC010_64AB, SETPROPERTY));
    assert!(is_request(0xC010_64AC, GETPROPBLOB));
    assert!(is_request(0xC01C_64AD, GETFB));
    assert!(is_request(0xC01C_64AE, ADDFB));
    assert!(is_request(0xC004_64AF, RMFB));
    assert!(is_request(0xC018_64B0, PAGE_FLIP));
    assert!(is_request(0xC018_64B1, DIRTYFB));
    assert!(is_request(0xC020_64B2, CREATE_DUMB));
    assert!(is_request(0xC010_64B3, MAP_DUMB));
    assert!(is_request(0xC004_64B4, DESTROY_DUMB));
    assert!(is_request(0xC010_64B5, GETPLANERESOURCES));
    assert!(is_request(0xC020_64B6, GETPLANE));
    assert!(is_request(0xC030_64B7, SETPLANE));
    assert!(is_request(0xC068_64B8, ADDFB2));
    assert!(is_request(0xC020_64B9, OBJ_GETPROPERTIES));
    assert!(is_request(0xC018_64BA, OBJ_SETPROPERTY));
    assert!(is_request(0xC024_64BB, CURSOR2));
    assert!(is_request(0xC038_64BC, ATOMIC));
    assert!(is_request(0xC010_64BD, CREATEPROPBLOB));
    assert!(is_request(0xC004_64BE, DESTROYPROPBLOB));
    assert!(is_request(0xC010_64C7, LIST_LESSEES));
    assert!(is_request(0xC010_64C8, GET_LEASE));
    assert!(is_request(0xC068_64CE, GETFB2));
    assert!(is_request(0xC008_64D0, CLOSEFB));
};
