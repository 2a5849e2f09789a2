//! Core (non-KMS) DRM ioctls as drmd receives them (ABI-REFERENCE §3.2–3.4):
//! the ones Mesa's virgl winsys, libdrm and GBM use on a render node.
//!
//! Same rule as [`crate::syncobj`]: pointers dropped and their arrays
//! appended, fds replaced by capability tokens, fds returned by the ioctl
//! obtained by the client through `dup` instead of on the wire. Field types
//! are the host's native integers (DRM structs are host-endian).

use crate::wire::is_drm_request;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `DRM_IOCTL_VERSION` nr: payload [`VersionHeader`] + name + date + desc.
pub const VERSION: u64 = 0x00;
/// `DRM_IOCTL_GEM_CLOSE` nr: payload [`GemClose`].
pub const GEM_CLOSE: u64 = 0x09;
/// `DRM_IOCTL_GET_CAP` nr: payload [`GetCap`].
pub const GET_CAP: u64 = 0x0C;
/// `DRM_IOCTL_SET_CLIENT_CAP` nr: payload [`SetClientCap`].
pub const SET_CLIENT_CAP: u64 = 0x0D;
/// `DRM_IOCTL_PRIME_HANDLE_TO_FD` nr: payload [`PrimeHandle`].
pub const PRIME_HANDLE_TO_FD: u64 = 0x2D;
/// `DRM_IOCTL_PRIME_FD_TO_HANDLE` nr: payload [`PrimeHandle`].
pub const PRIME_FD_TO_HANDLE: u64 = 0x2E;
/// `DRM_IOCTL_GET_UNIQUE` nr: payload [`UniqueHeader`] + the bus id.
pub const GET_UNIQUE: u64 = 0x01;
/// `DRM_IOCTL_GET_MAGIC` nr: payload [`Auth`] (OUT).
pub const GET_MAGIC: u64 = 0x02;
/// `DRM_IOCTL_GET_CLIENT` nr: payload [`Client`].
pub const GET_CLIENT: u64 = 0x05;
/// `DRM_IOCTL_GET_STATS` nr: payload [`Stats`] (OUT).
pub const GET_STATS: u64 = 0x06;
/// `DRM_IOCTL_SET_VERSION` nr: payload [`SetVersion`].
pub const SET_VERSION: u64 = 0x07;
/// `DRM_IOCTL_GEM_FLINK` nr: payload [`GemFlink`].
pub const GEM_FLINK: u64 = 0x0A;
/// `DRM_IOCTL_GEM_OPEN` nr: payload [`GemOpen`].
pub const GEM_OPEN: u64 = 0x0B;
/// `DRM_IOCTL_AUTH_MAGIC` nr: payload [`Auth`].
pub const AUTH_MAGIC: u64 = 0x11;
/// `DRM_IOCTL_SET_MASTER` nr: no payload.
pub const SET_MASTER: u64 = 0x1E;
/// `DRM_IOCTL_DROP_MASTER` nr: no payload.
pub const DROP_MASTER: u64 = 0x1F;

/// The full Linux request number of `DRM_IOCTL_VERSION` on LP64 (a
/// 64-byte `drm_version`), which the LD_PRELOAD shim intercepts before
/// translating to a scheme call.
pub const IOC_VERSION: u32 = 0xC040_6400;
/// The full Linux request number of `DRM_IOCTL_GEM_CLOSE` (`_IOW`; see
/// [`IOC_VERSION`]).
pub const IOC_GEM_CLOSE: u32 = 0x4008_6409;
/// The full Linux request number of `DRM_IOCTL_GET_CAP` (see
/// [`IOC_VERSION`]).
pub const IOC_GET_CAP: u32 = 0xC010_640C;
/// The full Linux request number of `DRM_IOCTL_SET_CLIENT_CAP` (`_IOW`;
/// see [`IOC_VERSION`]).
pub const IOC_SET_CLIENT_CAP: u32 = 0x4010_640D;
/// The full Linux request number of `DRM_IOCTL_PRIME_HANDLE_TO_FD` (a
/// 12-byte `drm_prime_handle`; see [`IOC_VERSION`]).
pub const IOC_PRIME_HANDLE_TO_FD: u32 = 0xC00C_642D;
/// The full Linux request number of `DRM_IOCTL_PRIME_FD_TO_HANDLE` (see
/// [`IOC_PRIME_HANDLE_TO_FD`]).
pub const IOC_PRIME_FD_TO_HANDLE: u32 = 0xC00C_642E;

/// GET_CAP id: dumb buffers are supported (KMS only).
pub const DRM_CAP_DUMB_BUFFER: u64 = 0x1;
/// GET_CAP id: vblank waits can name CRTCs above 1 (KMS only).
pub const DRM_CAP_VBLANK_HIGH_CRTC: u64 = 0x2;
/// GET_CAP id: the depth dumb-buffer clients should use (KMS only).
pub const DRM_CAP_DUMB_PREFERRED_DEPTH: u64 = 0x3;
/// GET_CAP id: whether dumb-buffer clients should render
/// to a shadow copy (KMS only).
pub const DRM_CAP_DUMB_PREFER_SHADOW: u64 = 0x4;
/// GET_CAP id: a mask of [`DRM_PRIME_CAP_IMPORT`] | [`DRM_PRIME_CAP_EXPORT`];
/// answered on render nodes too, and Mesa needs it for buffer sharing.
pub const DRM_CAP_PRIME: u64 = 0x5;
/// GET_CAP id: event timestamps are CLOCK_MONOTONIC.
pub const DRM_CAP_TIMESTAMP_MONOTONIC: u64 = 0x6;
/// GET_CAP id: legacy page flips may tear (KMS only).
pub const DRM_CAP_ASYNC_PAGE_FLIP: u64 = 0x7;
/// GET_CAP id: the cursor plane's width (KMS only).
pub const DRM_CAP_CURSOR_WIDTH: u64 = 0x8;
/// GET_CAP id: the cursor plane's height (KMS only).
pub const DRM_CAP_CURSOR_HEIGHT: u64 = 0x9;
/// GET_CAP id: ADDFB2 accepts format modifiers (KMS only).
pub const DRM_CAP_ADDFB2_MODIFIERS: u64 = 0x10;
/// GET_CAP id: page flips can target a vblank (KMS only).
pub const DRM_CAP_PAGE_FLIP_TARGET: u64 = 0x11;
/// GET_CAP id: vblank events carry the CRTC id (KMS only).
pub const DRM_CAP_CRTC_IN_VBLANK_EVENT: u64 = 0x12;
/// GET_CAP id: the syncobj ioctls work; compositors offer explicit
/// sync only when it is 1.
pub const DRM_CAP_SYNCOBJ: u64 = 0x13;
/// GET_CAP id: the timeline syncobj ioctls work.
pub const DRM_CAP_SYNCOBJ_TIMELINE: u64 = 0x14;
/// GET_CAP id: atomic commits may tear (KMS only).
pub const DRM_CAP_ATOMIC_ASYNC_PAGE_FLIP: u64 = 0x15;

/// [`DRM_CAP_PRIME`] bit for PRIME_FD_TO_HANDLE.
pub const DRM_PRIME_CAP_IMPORT: u64 = 1;
/// [`DRM_CAP_PRIME`] bit for PRIME_HANDLE_TO_FD.
pub const DRM_PRIME_CAP_EXPORT: u64 = 2;

/// SET_CLIENT_CAP id: expose stereo modes; value ≤ 1.
pub const DRM_CLIENT_CAP_STEREO_3D: u64 = 1;
/// SET_CLIENT_CAP id: expose primary and cursor planes; value ≤ 1.
pub const DRM_CLIENT_CAP_UNIVERSAL_PLANES: u64 = 2;
/// SET_CLIENT_CAP id: enable atomic modesetting (value ≤ 2); also
/// turns on universal planes and aspect-ratio modes.
pub const DRM_CLIENT_CAP_ATOMIC: u64 = 3;
/// SET_CLIENT_CAP id: report mode aspect ratios; value ≤ 1.
pub const DRM_CLIENT_CAP_ASPECT_RATIO: u64 = 4;
/// SET_CLIENT_CAP id: expose writeback connectors;
/// needs [`DRM_CLIENT_CAP_ATOMIC`] first.
pub const DRM_CLIENT_CAP_WRITEBACK_CONNECTORS: u64 = 5;
/// SET_CLIENT_CAP id: the client sets cursor hotspots;
/// needs [`DRM_CLIENT_CAP_ATOMIC`] first. KWin falls back to legacy
/// modesetting on virtio when this fails, so it must succeed.
pub const DRM_CLIENT_CAP_CURSOR_PLANE_HOTSPOT: u64 = 6;

/// PRIME flag `DRM_CLOEXEC` as the wire carries it: relibc's `O_CLOEXEC`,
/// because relibc forwards the client's flags unchanged. The Linux shim
/// translates Linux's `O_CLOEXEC` (0x80000) to this value, so daemons see
/// one encoding.
pub const PRIME_FLAG_CLOEXEC: u32 = 0x0100_0000;
/// PRIME flag `DRM_RDWR` as the wire carries it: relibc's `O_RDWR` (see
/// [`PRIME_FLAG_CLOEXEC`]; Linux's value is 2).
pub const PRIME_FLAG_RDWR: u32 = 0x0003_0000;

/// VERSION header (`drm_version` without its three `char *` pointers),
/// followed by `name: [u8; name_len]`, `date: [u8; date_len]` and
/// `desc: [u8; desc_len]`.
///
/// IN, the lengths are the client's buffer sizes (libdrm asks twice: 0s
/// first, then the lengths it got back). OUT, the daemon fills the three
/// ints, copies `min(len, strlen)` bytes of each string (no NUL) into its
/// array and writes each string's full length into its `*_len`. The arrays
/// keep the client's lengths: relibc splits the reply by the lengths it
/// sent.
///
/// The `size_t` lengths are `u64`, as on the LP64 targets this project
/// builds for.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct VersionHeader {
    /// OUT: the driver's major version (Mesa requires 0 for virtio_gpu).
    pub version_major: i32,
    /// OUT: the minor version (Mesa enables fence fds from 1).
    pub version_minor: i32,
    /// OUT: the patch level.
    pub version_patchlevel: i32,
    /// Where C puts implicit padding before the `size_t` fields of relibc's
    /// pointer-free struct. relibc sends those bytes uninitialised, so
    /// daemons must ignore this field rather than insist on 0.
    pub pad: u32,
    /// IN: the name array's length; OUT: the name's full length.
    pub name_len: u64,
    /// IN: the date array's length; OUT: the date's full length.
    pub date_len: u64,
    /// IN: the desc array's length; OUT: the description's full length.
    pub desc_len: u64,
}

/// GET_CAP (`drm_get_cap`, unchanged: no pointers, no fd).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GetCap {
    /// A `DRM_CAP_*` id; unknown ids are EINVAL.
    pub capability: u64,
    /// OUT: the capability's value (zeroed before answering).
    pub value: u64,
}

/// SET_CLIENT_CAP (`drm_set_client_cap`, unchanged). Nothing comes back:
/// success or the errno is the whole answer.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SetClientCap {
    /// A `DRM_CLIENT_CAP_*` id; unknown ids are EINVAL.
    pub capability: u64,
    /// The value to set (each cap's limit is in its documentation).
    pub value: u64,
}

/// GEM_CLOSE (`drm_gem_close`, unchanged).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GemClose {
    /// The GEM handle to release; an unknown handle is EINVAL.
    pub handle: u32,
    /// Padding in the Linux struct; clients send 0.
    pub pad: u32,
}

/// PRIME_HANDLE_TO_FD / PRIME_FD_TO_HANDLE (`drm_prime_handle` with its
/// `s32 fd` replaced by a token, like [`crate::syncobj::FdToHandle`]; the
/// token's alignment makes the struct 16 bytes instead of Linux's 12).
///
/// HANDLE_TO_FD (export): the dma-buf fd is not on the wire; the client
/// library obtains it by `dup` on a handle (drmd's scheme defines which).
/// `token` is 0 on input and unused on output. FD_TO_HANDLE (import):
/// `token` is the capability token of the client's dma-buf fd, and
/// `handle` comes back.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PrimeHandle {
    /// Export: the GEM handle to export (ENOENT if unknown). Import: OUT,
    /// the handle of the imported object (the same one if the file already
    /// has it).
    pub handle: u32,
    /// Export: [`PRIME_FLAG_CLOEXEC`] | [`PRIME_FLAG_RDWR`], anything else
    /// is EINVAL. Import: 0.
    pub flags: u32,
    /// Import: the dma-buf's capability token. Export: 0, unused (see the
    /// type's documentation).
    pub token: u64,
}

/// GET_UNIQUE header (`drm_unique` without its `char *`), followed by
/// `unique_len` bytes: IN the room, OUT the bus id if it fits (as Linux,
/// nothing is copied into less room), and `unique_len` its full length.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct UniqueHeader {
    /// IN: the array's length; OUT: the bus id's length.
    pub unique_len: u64,
}

/// GET_MAGIC / AUTH_MAGIC (`drm_auth`, unchanged).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Auth {
    /// GET_MAGIC: OUT, the file's magic number. AUTH_MAGIC: the number of
    /// the file to authenticate.
    pub magic: u32,
}

/// GET_CLIENT (`drm_client`, unchanged).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Client {
    /// Which client: only 0 (the caller) exists (EINVAL otherwise).
    pub idx: i32,
    /// OUT: whether the file is authenticated.
    pub auth: i32,
    /// OUT: the caller's pid.
    pub pid: u64,
    /// OUT: the overflow uid (Linux hides the real one).
    pub uid: u64,
    /// OUT: 0.
    pub magic: u64,
    /// OUT: 0.
    pub iocs: u64,
}

/// GET_STATS (`drm_stats`, unchanged): OUT, all zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Stats {
    /// Counters in use: 0.
    pub count: u64,
    /// `{value, type}` pairs.
    pub data: [[u64; 2]; 15],
}

/// SET_VERSION (`drm_set_version`, unchanged).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SetVersion {
    /// Interface major the client wants (-1: any); OUT 1.
    pub di_major: i32,
    /// Interface minor (1 or more sets the bus id); OUT 4.
    pub di_minor: i32,
    /// Driver major the client wants (-1: any); OUT the driver's.
    pub dd_major: i32,
    /// Driver minor; OUT the driver's.
    pub dd_minor: i32,
}

/// GEM_FLINK (`drm_gem_flink`, unchanged).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GemFlink {
    /// The object to name.
    pub handle: u32,
    /// OUT: its global name.
    pub name: u32,
}

/// GEM_OPEN (`drm_gem_open`, unchanged).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GemOpen {
    /// The global name to open.
    pub name: u32,
    /// OUT: a new handle to the object.
    pub handle: u32,
    /// OUT: its size.
    pub size: u64,
}

const _: () = {
    use core::mem::size_of;
    assert!(size_of::<UniqueHeader>() == 8);
    assert!(size_of::<Auth>() == 4);
    assert!(size_of::<Client>() == 40);
    assert!(size_of::<Stats>() == 248);
    assert!(size_of::<SetVersion>() == 16);
    assert!(size_of::<GemFlink>() == 8);
    assert!(size_of::<GemOpen>() == 16);
    assert!(size_of::<VersionHeader>() == 40);
    assert!(size_of::<GetCap>() == 16);
    assert!(size_of::<SetClientCap>() == 16);
    assert!(size_of::<GemClose>() == 8);
    assert!(size_of::<PrimeHandle>() == 16);

    // Linux struct sizes from ABI-REFERENCE §3.2 (LP64).
    assert!(is_drm_request(IOC_VERSION, VERSION, 64));
    assert!(is_drm_request(IOC_GEM_CLOSE, GEM_CLOSE, 8));
    assert!(is_drm_request(IOC_GET_CAP, GET_CAP, 16));
    assert!(is_drm_request(IOC_SET_CLIENT_CAP, SET_CLIENT_CAP, 16));
    assert!(is_drm_request(
        IOC_PRIME_HANDLE_TO_FD,
        PRIME_HANDLE_TO_FD,
        12
    ));
    assert!(is_drm_request(
        IOC_PRIME_FD_TO_HANDLE,
        PRIME_FD_TO_HANDLE,
        12
    ));
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{nr_of, Builder, Payload, WireError};
    use alloc::vec::Vec;
    use core::mem::{offset_of, size_of};

    #[test]
    fn sizes_and_offsets() {
        assert_eq!(size_of::<VersionHeader>(), 40);
        assert_eq!(offset_of!(VersionHeader, version_major), 0);
        assert_eq!(offset_of!(VersionHeader, version_minor), 4);
        assert_eq!(offset_of!(VersionHeader, version_patchlevel), 8);
        assert_eq!(offset_of!(VersionHeader, pad), 12);
        assert_eq!(offset_of!(VersionHeader, name_len), 16);
        assert_eq!(offset_of!(VersionHeader, date_len), 24);
        assert_eq!(offset_of!(VersionHeader, desc_len), 32);

        assert_eq!(size_of::<GetCap>(), 16);
        assert_eq!(offset_of!(GetCap, capability), 0);
        assert_eq!(offset_of!(GetCap, value), 8);

        assert_eq!(size_of::<SetClientCap>(), 16);
        assert_eq!(offset_of!(SetClientCap, capability), 0);
        assert_eq!(offset_of!(SetClientCap, value), 8);

        assert_eq!(size_of::<GemClose>(), 8);
        assert_eq!(offset_of!(GemClose, handle), 0);
        assert_eq!(offset_of!(GemClose, pad), 4);

        assert_eq!(size_of::<PrimeHandle>(), 16);
        assert_eq!(offset_of!(PrimeHandle, handle), 0);
        assert_eq!(offset_of!(PrimeHandle, flags), 4);
        assert_eq!(offset_of!(PrimeHandle, token), 8);
    }

    #[test]
    fn request_numbers() {
        assert_eq!(IOC_VERSION, 0xC0406400);
        assert_eq!(IOC_GEM_CLOSE, 0x40086409);
        assert_eq!(IOC_GET_CAP, 0xC010640C);
        assert_eq!(IOC_SET_CLIENT_CAP, 0x4010640D);
        assert_eq!(IOC_PRIME_HANDLE_TO_FD, 0xC00C642D);
        assert_eq!(IOC_PRIME_FD_TO_HANDLE, 0xC00C642E);
        assert_eq!(nr_of(IOC_PRIME_FD_TO_HANDLE), PRIME_FD_TO_HANDLE);
    }

    /// The VERSION header as relibc's `define_ioctl_data!` packs it: three
    /// ints, 4 padding bytes (uninitialised there; 0xAA here, to show they
    /// are ignored), three `size_t`s.
    fn relibc_version(major: i32, minor: i32, patch: i32, lens: [u64; 3]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in [major, minor, patch] {
            out.extend_from_slice(&v.to_ne_bytes());
        }
        out.extend_from_slice(&[0xAA; 4]);
        for len in lens {
            out.extend_from_slice(&len.to_ne_bytes());
        }
        out
    }

    /// Daemon side of VERSION: answer with the strings and their lengths.
    fn serve_version(bytes: &mut [u8]) -> Result<(), WireError> {
        let strings: [&[u8]; 3] = [b"virtio_gpu", b"0", b"virtio GPU"];
        let mut p = Payload::new(bytes);
        let got: VersionHeader = p.header()?;
        let lens = [got.name_len, got.date_len, got.desc_len];
        let mut arrays = [0; 3];
        for (slot, len) in arrays.iter_mut().zip(lens) {
            // A length beyond u32 cannot fit in a payload either: clamping
            // turns it into the same size error.
            *slot = p.bytes(u32::try_from(len).unwrap_or(u32::MAX))?;
        }
        p.finish()?;
        for ((index, len), s) in arrays.into_iter().zip(lens).zip(strings) {
            let n = s.len().min(usize::try_from(len).unwrap_or(usize::MAX));
            p.set_array(index, &s[..n])?;
        }
        p.set_header(&VersionHeader {
            version_major: 0,
            version_minor: 1,
            version_patchlevel: 0,
            name_len: strings[0].len() as u64,
            date_len: strings[1].len() as u64,
            desc_len: strings[2].len() as u64,
            ..got
        })
    }

    #[test]
    fn version_round_trip() {
        // First call: lengths only.
        let mut bytes = relibc_version(0, 0, 0, [0, 0, 0]);
        serve_version(&mut bytes).unwrap();
        let (got, rest) = VersionHeader::read_from_prefix(&bytes).unwrap();
        assert!(rest.is_empty());
        assert_eq!((got.version_major, got.version_minor), (0, 1));
        assert_eq!((got.name_len, got.date_len, got.desc_len), (10, 1, 10));

        // Second call: room for each string plus libdrm's NUL.
        let ask = VersionHeader {
            name_len: 11,
            date_len: 2,
            desc_len: 11,
            ..VersionHeader::default()
        };
        let mut bytes = relibc_version(0, 0, 0, [11, 2, 11]);
        bytes.resize(40 + 11 + 2 + 11, 0);
        // Builder packs the same, except that its padding is 0.
        let mut built = Builder::new(&ask).zeroed::<u8>(11 + 2 + 11).build();
        built[12..16].fill(0xAA);
        assert_eq!(built, bytes);
        serve_version(&mut bytes).unwrap();
        let (got, rest) = VersionHeader::read_from_prefix(&bytes).unwrap();
        assert_eq!((got.name_len, got.date_len, got.desc_len), (10, 1, 10));
        assert_eq!(&rest[..11], b"virtio_gpu\0");
        assert_eq!(&rest[11..13], b"0\0");
        assert_eq!(&rest[13..], b"virtio GPU\0");

        // A buffer shorter than the string gets a prefix, and the full length.
        let ask = VersionHeader {
            name_len: 6,
            ..VersionHeader::default()
        };
        let mut bytes = Builder::new(&ask).zeroed::<u8>(6).build();
        serve_version(&mut bytes).unwrap();
        let (got, rest) = VersionHeader::read_from_prefix(&bytes).unwrap();
        assert_eq!(got.name_len, 10);
        assert_eq!(rest, b"virtio");

        // Lengths the payload does not hold are a size error.
        let ask = VersionHeader {
            desc_len: 100,
            ..VersionHeader::default()
        };
        let mut bytes = Builder::new(&ask).zeroed::<u8>(99).build();
        assert!(matches!(
            serve_version(&mut bytes),
            Err(WireError::Size { .. })
        ));
    }

    #[test]
    fn prime_import_carries_a_token() {
        let sent = PrimeHandle {
            handle: 0,
            flags: 0,
            token: 0x1234_5678_9ABC,
        };
        let mut bytes = Builder::new(&sent).build();
        let mut p = Payload::new(&mut bytes);
        let got: PrimeHandle = p.header().unwrap();
        p.finish().unwrap();
        assert_eq!(got, sent);
        p.set_header(&PrimeHandle { handle: 3, ..got }).unwrap();
        assert_eq!(bytes[..4], 3u32.to_ne_bytes());
        assert_eq!(bytes[8..], 0x1234_5678_9ABCu64.to_ne_bytes());
    }
}
