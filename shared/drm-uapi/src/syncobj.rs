//! `DRM_IOCTL_SYNCOBJ_*` as drmd receives them (ABI-REFERENCE §3.2, §6.3).
//!
//! Each wire struct is the Linux struct minus its pointer fields (the
//! arrays follow the struct inline, see [`crate::wire`]) and with the
//! fd field replaced by a capability token. Field types are the host's
//! native integers: DRM structs are host-endian, and client and daemon run
//! on the same machine.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `DRM_IOCTL_SYNCOBJ_CREATE`: payload [`Create`].
pub const CREATE: u64 = 0xBF;
/// `DRM_IOCTL_SYNCOBJ_DESTROY`: payload [`Destroy`].
pub const DESTROY: u64 = 0xC0;
/// `DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD`: payload [`HandleToFd`].
pub const HANDLE_TO_FD: u64 = 0xC1;
/// `DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE`: payload [`FdToHandle`].
pub const FD_TO_HANDLE: u64 = 0xC2;
/// `DRM_IOCTL_SYNCOBJ_WAIT`: payload [`WaitHeader`] + handles.
pub const WAIT: u64 = 0xC3;
/// `DRM_IOCTL_SYNCOBJ_RESET`: payload [`Array`] + handles.
pub const RESET: u64 = 0xC4;
/// `DRM_IOCTL_SYNCOBJ_SIGNAL`: payload [`Array`] + handles.
pub const SIGNAL: u64 = 0xC5;
/// `DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT`: payload [`TimelineWaitHeader`] +
/// handles + points.
pub const TIMELINE_WAIT: u64 = 0xCA;
/// `DRM_IOCTL_SYNCOBJ_QUERY`: payload [`TimelineArray`] + handles + points
/// (OUT).
pub const QUERY: u64 = 0xCB;
/// `DRM_IOCTL_SYNCOBJ_TRANSFER`: payload [`Transfer`].
pub const TRANSFER: u64 = 0xCC;
/// `DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL`: payload [`TimelineArray`] + handles
/// + points.
pub const TIMELINE_SIGNAL: u64 = 0xCD;
/// `DRM_IOCTL_SYNCOBJ_EVENTFD`. Its wire struct (an eventfd, so a token) is
/// not defined yet; the nr is here so dispatch can name it.
pub const EVENTFD: u64 = 0xCF;

/// CREATE: start with an already-signaled stub fence instead of none.
pub const CREATE_SIGNALED: u32 = 1;
/// HANDLE_TO_FD: export a sync_file snapshot of the fence rather than an
/// fd sharing the container.
pub const HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE: u32 = 1;
/// FD_TO_HANDLE: import a sync_file's fence into an existing handle rather
/// than opening a shared container as a new handle.
pub const FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE: u32 = 1;
/// HANDLE_TO_FD / FD_TO_HANDLE: `point` names a timeline point.
pub const FLAGS_TIMELINE: u32 = 2;
/// WAIT / TIMELINE_WAIT: return when all signal, not the first.
pub const WAIT_FLAGS_WAIT_ALL: u32 = 1;
/// WAIT family: a syncobj without a fence is waited on until one is
/// attached, instead of failing with EINVAL.
pub const WAIT_FLAGS_WAIT_FOR_SUBMIT: u32 = 2;
/// TIMELINE_WAIT / EVENTFD: done once the point's fence exists, without
/// waiting for it to signal.
pub const WAIT_FLAGS_WAIT_AVAILABLE: u32 = 4;
/// WAIT family: `deadline_nsec` carries a deadline hint.
pub const WAIT_FLAGS_WAIT_DEADLINE: u32 = 8;
/// Short alias of [`WAIT_FLAGS_WAIT_FOR_SUBMIT`], for code written
/// against the brief's names.
pub const WAIT_FOR_SUBMIT: u32 = WAIT_FLAGS_WAIT_FOR_SUBMIT;
/// Short alias of [`WAIT_FLAGS_WAIT_AVAILABLE`].
pub const WAIT_AVAILABLE: u32 = WAIT_FLAGS_WAIT_AVAILABLE;
/// Short alias of [`WAIT_FLAGS_WAIT_DEADLINE`].
pub const WAIT_DEADLINE: u32 = WAIT_FLAGS_WAIT_DEADLINE;
/// QUERY: report the newest submitted point, not the highest signaled one.
pub const QUERY_FLAGS_LAST_SUBMITTED: u32 = 1;

/// CREATE (`drm_syncobj_create`, unchanged: no pointers, no fd).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Create {
    /// OUT: the new handle (ids from 1 per file).
    pub handle: u32,
    /// [`CREATE_SIGNALED`] or 0.
    pub flags: u32,
}

/// DESTROY (`drm_syncobj_destroy`, unchanged).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Destroy {
    /// The handle to drop.
    pub handle: u32,
    /// Must be 0 (EINVAL otherwise).
    pub pad: u32,
}

/// HANDLE_TO_FD (`drm_syncobj_handle` with `fd`+`pad` replaced by a token).
///
/// The fd this ioctl returns is not on the wire at all: the client library
/// obtains it by `dup` on a handle (the daemon's scheme defines which). `token` keeps the struct's
/// shape shared with [`FdToHandle`]; clients send 0 and daemons ignore it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct HandleToFd {
    /// The syncobj to export.
    pub handle: u32,
    /// [`HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE`] | [`FLAGS_TIMELINE`].
    pub flags: u32,
    /// 0 on input, unused on output (see the type's documentation).
    pub token: u64,
    /// The timeline point to snapshot (with [`FLAGS_TIMELINE`]), else 0.
    pub point: u64,
}

/// FD_TO_HANDLE (`drm_syncobj_handle` with `fd`+`pad` replaced by a token).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct FdToHandle {
    /// With IMPORT_SYNC_FILE: the existing handle to import into. Without
    /// it: OUT, the new handle to the shared container.
    pub handle: u32,
    /// [`FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE`] | [`FLAGS_TIMELINE`].
    pub flags: u32,
    /// The capability token of the client's fd: the sync_file to import,
    /// or the previously exported syncobj fd.
    pub token: u64,
    /// The timeline point to add the fence at (with [`FLAGS_TIMELINE`]),
    /// else 0.
    pub point: u64,
}

/// WAIT header (`drm_syncobj_wait` without `handles`), followed by
/// `handles: [u32; count_handles]`.
///
/// Linux before `deadline_nsec` had a 32-byte struct (24 bytes on the
/// wire); only the current layout is defined here.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct WaitHeader {
    /// Absolute CLOCK_MONOTONIC deadline in ns; 0 or past means poll.
    pub timeout_nsec: i64,
    /// Length of the handles array that follows.
    pub count_handles: u32,
    /// [`WAIT_FLAGS_WAIT_ALL`] | [`WAIT_FLAGS_WAIT_FOR_SUBMIT`] | [`WAIT_FLAGS_WAIT_DEADLINE`].
    pub flags: u32,
    /// OUT: index of the first signaled handle (without WAIT_ALL).
    pub first_signaled: u32,
    /// Padding in the Linux struct.
    pub pad: u32,
    /// Deadline hint, with [`WAIT_FLAGS_WAIT_DEADLINE`].
    pub deadline_nsec: u64,
}

/// RESET / SIGNAL header (`drm_syncobj_array` without `handles`),
/// followed by `handles: [u32; count_handles]`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Array {
    /// Length of the handles array that follows; 0 is EINVAL.
    pub count_handles: u32,
    /// Must be 0 (EINVAL otherwise).
    pub pad: u32,
}

/// TIMELINE_WAIT header (`drm_syncobj_timeline_wait` without `handles`
/// and `points`), followed by `handles: [u32; count_handles]` then
/// `points: [u64; count_handles]` (zeros if the client passed NULL).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct TimelineWaitHeader {
    /// Absolute CLOCK_MONOTONIC deadline in ns; 0 or past means poll.
    pub timeout_nsec: i64,
    /// Length of both arrays that follow.
    pub count_handles: u32,
    /// [`WAIT_FLAGS_WAIT_ALL`] | [`WAIT_FLAGS_WAIT_FOR_SUBMIT`] | [`WAIT_FLAGS_WAIT_AVAILABLE`] |
    /// [`WAIT_FLAGS_WAIT_DEADLINE`].
    pub flags: u32,
    /// OUT: index of the first signaled handle (without WAIT_ALL).
    pub first_signaled: u32,
    /// Padding in the Linux struct.
    pub pad: u32,
    /// Deadline hint, with [`WAIT_FLAGS_WAIT_DEADLINE`].
    pub deadline_nsec: u64,
}

/// QUERY / TIMELINE_SIGNAL header (`drm_syncobj_timeline_array` without
/// `handles` and `points`), followed by `handles: [u32; count_handles]`
/// then `points: [u64; count_handles]` — OUT for QUERY, IN for
/// TIMELINE_SIGNAL.
///
/// With an odd count the points array starts 4 bytes off 8-alignment;
/// [`crate::Payload`] copies, so that is harmless.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct TimelineArray {
    /// Length of both arrays that follow; 0 is EINVAL.
    pub count_handles: u32,
    /// QUERY: [`QUERY_FLAGS_LAST_SUBMITTED`] or 0; TIMELINE_SIGNAL: 0.
    pub flags: u32,
}

/// TRANSFER (`drm_syncobj_transfer`, unchanged).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Transfer {
    /// The syncobj whose fence is taken.
    pub src_handle: u32,
    /// The syncobj that receives it.
    pub dst_handle: u32,
    /// The source point (0 for a binary syncobj).
    pub src_point: u64,
    /// The destination point; 0 replaces dst's fence (binary).
    pub dst_point: u64,
    /// Wait flags passed through to the source lookup.
    pub flags: u32,
    /// Must be 0 (EINVAL otherwise).
    pub pad: u32,
}

const _: () = {
    use core::mem::size_of;
    assert!(size_of::<Create>() == 8);
    assert!(size_of::<Destroy>() == 8);
    assert!(size_of::<HandleToFd>() == 24);
    assert!(size_of::<FdToHandle>() == 24);
    assert!(size_of::<WaitHeader>() == 32);
    assert!(size_of::<Array>() == 8);
    assert!(size_of::<TimelineWaitHeader>() == 32);
    assert!(size_of::<TimelineArray>() == 8);
    assert!(size_of::<Transfer>() == 32);
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Builder, Payload, WireError, MAX_COUNT};
    use core::mem::{offset_of, size_of};

    #[test]
    fn sizes_and_offsets() {
        assert_eq!(size_of::<Create>(), 8);
        assert_eq!(offset_of!(Create, handle), 0);
        assert_eq!(offset_of!(Create, flags), 4);

        assert_eq!(size_of::<Destroy>(), 8);
        assert_eq!(offset_of!(Destroy, handle), 0);
        assert_eq!(offset_of!(Destroy, pad), 4);

        for (size, handle, flags, token, point) in [
            (
                size_of::<HandleToFd>(),
                offset_of!(HandleToFd, handle),
                offset_of!(HandleToFd, flags),
                offset_of!(HandleToFd, token),
                offset_of!(HandleToFd, point),
            ),
            (
                size_of::<FdToHandle>(),
                offset_of!(FdToHandle, handle),
                offset_of!(FdToHandle, flags),
                offset_of!(FdToHandle, token),
                offset_of!(FdToHandle, point),
            ),
        ] {
            assert_eq!((size, handle, flags, token, point), (24, 0, 4, 8, 16));
        }

        assert_eq!(size_of::<WaitHeader>(), 32);
        assert_eq!(offset_of!(WaitHeader, timeout_nsec), 0);
        assert_eq!(offset_of!(WaitHeader, count_handles), 8);
        assert_eq!(offset_of!(WaitHeader, flags), 12);
        assert_eq!(offset_of!(WaitHeader, first_signaled), 16);
        assert_eq!(offset_of!(WaitHeader, pad), 20);
        assert_eq!(offset_of!(WaitHeader, deadline_nsec), 24);

        assert_eq!(size_of::<TimelineWaitHeader>(), 32);
        assert_eq!(offset_of!(TimelineWaitHeader, timeout_nsec), 0);
        assert_eq!(offset_of!(TimelineWaitHeader, count_handles), 8);
        assert_eq!(offset_of!(TimelineWaitHeader, flags), 12);
        assert_eq!(offset_of!(TimelineWaitHeader, first_signaled), 16);
        assert_eq!(offset_of!(TimelineWaitHeader, pad), 20);
        assert_eq!(offset_of!(TimelineWaitHeader, deadline_nsec), 24);

        assert_eq!(size_of::<Array>(), 8);
        assert_eq!(offset_of!(Array, count_handles), 0);
        assert_eq!(offset_of!(Array, pad), 4);

        assert_eq!(size_of::<TimelineArray>(), 8);
        assert_eq!(offset_of!(TimelineArray, count_handles), 0);
        assert_eq!(offset_of!(TimelineArray, flags), 4);

        assert_eq!(size_of::<Transfer>(), 32);
        assert_eq!(offset_of!(Transfer, src_handle), 0);
        assert_eq!(offset_of!(Transfer, dst_handle), 4);
        assert_eq!(offset_of!(Transfer, src_point), 8);
        assert_eq!(offset_of!(Transfer, dst_point), 16);
        assert_eq!(offset_of!(Transfer, flags), 24);
        assert_eq!(offset_of!(Transfer, pad), 28);
    }

    /// Packs a WAIT the way relibc's `define_ioctl_data!` would, by hand
    /// (not with `Builder`), so the parser is checked against the rule.
    fn relibc_wait(header: &WaitHeader, handles: &[u32]) -> alloc::vec::Vec<u8> {
        let mut out = alloc::vec::Vec::new();
        out.extend_from_slice(&header.timeout_nsec.to_ne_bytes());
        out.extend_from_slice(&header.count_handles.to_ne_bytes());
        out.extend_from_slice(&header.flags.to_ne_bytes());
        out.extend_from_slice(&header.first_signaled.to_ne_bytes());
        out.extend_from_slice(&header.pad.to_ne_bytes());
        out.extend_from_slice(&header.deadline_nsec.to_ne_bytes());
        for h in handles {
            out.extend_from_slice(&h.to_ne_bytes());
        }
        out
    }

    #[test]
    fn wait_round_trip() {
        let header = WaitHeader {
            timeout_nsec: 1_234_567_890,
            count_handles: 3,
            flags: WAIT_FLAGS_WAIT_ALL | WAIT_DEADLINE,
            first_signaled: 0,
            pad: 0,
            deadline_nsec: 42,
        };
        let handles = [7u32, 8, 9];
        let mut bytes = relibc_wait(&header, &handles);
        assert_eq!(bytes, Builder::new(&header).array(&handles).build());
        assert_eq!(bytes.len(), 32 + 12);

        let mut p = Payload::new(&mut bytes);
        let got: WaitHeader = p.header().unwrap();
        assert_eq!(got, header);
        assert_eq!(p.u32s(got.count_handles).unwrap(), handles);
        p.finish().unwrap();

        // OUT: first_signaled goes back into the header.
        p.set_header(&WaitHeader {
            first_signaled: 2,
            ..got
        })
        .unwrap();
        assert_eq!(bytes[16..20], 2u32.to_ne_bytes());
        assert_eq!(bytes[32..], relibc_wait(&header, &handles)[32..]);
    }

    #[test]
    fn timeline_array_with_odd_count_reads_unaligned_points() {
        let header = TimelineArray {
            count_handles: 3,
            flags: 0,
        };
        let handles = [1u32, 2, 3];
        let points = [u64::MAX - 1, 5, 1 << 40];
        // One spare byte in front makes the whole buffer misaligned too.
        let mut storage = alloc::vec![0u8];
        storage.extend(Builder::new(&header).array(&handles).array(&points).build());
        let bytes = &mut storage[1..];
        assert_eq!(bytes.len(), 8 + 12 + 24);

        let mut p = Payload::new(bytes);
        let got: TimelineArray = p.header().unwrap();
        assert_eq!(p.u32s(got.count_handles).unwrap(), handles);
        assert_eq!(p.u64s(got.count_handles).unwrap(), points);
        p.finish().unwrap();

        // QUERY-style OUT write into the (unaligned) points array.
        p.set_u64s(1, &[10, 20, 30]).unwrap();
        assert_eq!(bytes[20..28], 10u64.to_ne_bytes());
        assert_eq!(bytes[36..44], 30u64.to_ne_bytes());
    }

    #[test]
    fn query_points_are_declared_without_reading() {
        let header = TimelineArray {
            count_handles: 2,
            flags: QUERY_FLAGS_LAST_SUBMITTED,
        };
        let mut bytes = Builder::new(&header)
            .array(&[4u32, 5])
            .zeroed::<u64>(2)
            .build();
        let mut p = Payload::new(&mut bytes);
        let got: TimelineArray = p.header().unwrap();
        let _handles = p.u32s(got.count_handles).unwrap();
        let points = p.skip_array::<u64>(got.count_handles).unwrap();
        p.finish().unwrap();
        p.set_u64s(points, &[11, 12]).unwrap();
        assert_eq!(bytes[16..24], 11u64.to_ne_bytes());
    }

    #[test]
    fn wrong_lengths_are_rejected() {
        let header = WaitHeader {
            count_handles: 2,
            ..WaitHeader::default()
        };
        let good = Builder::new(&header).array(&[1u32, 2]).build();

        // Too short: the second handle is cut off.
        let mut short = good[..good.len() - 1].to_vec();
        let mut p = Payload::new(&mut short);
        p.header::<WaitHeader>().unwrap();
        assert_eq!(
            p.u32s(2),
            Err(WireError::Size {
                expected: 40,
                got: 39
            })
        );

        // Shorter than the header itself.
        let mut tiny = good[..10].to_vec();
        assert_eq!(
            Payload::new(&mut tiny).header::<WaitHeader>(),
            Err(WireError::Size {
                expected: 32,
                got: 10
            })
        );

        // Too long: a trailing byte.
        let mut long = good.clone();
        long.push(0);
        let mut p = Payload::new(&mut long);
        p.header::<WaitHeader>().unwrap();
        p.u32s(2).unwrap();
        assert_eq!(
            p.finish(),
            Err(WireError::Size {
                expected: 40,
                got: 41
            })
        );
    }

    #[test]
    fn test_regression_absurd_counts_are_not_carried_and_the_next_array_follows() {
        for count in [u32::MAX, MAX_COUNT + 1] {
            let header = TimelineWaitHeader {
                count_handles: count,
                ..TimelineWaitHeader::default()
            };
            // Neither array over the cap is carried: the client packs none
            // of its elements.
            let mut bytes = Builder::new(&header).build();
            let mut p = Payload::new(&mut bytes);
            let got: TimelineWaitHeader = p.header().unwrap();
            let too_many = WireError::TooMany {
                count,
                max: MAX_COUNT,
            };
            assert_eq!(p.u32s(got.count_handles), Err(too_many));
            assert_eq!(p.u64s(got.count_handles), Err(too_many));
            assert_eq!(p.finish(), Ok(()));
        }
        // An array after one that is not carried is read where it starts.
        let header = Array {
            count_handles: u32::MAX,
            pad: 0,
        };
        let mut bytes = Builder::new(&header).array(&[7u32, 8]).build();
        let mut p = Payload::new(&mut bytes);
        let got: Array = p.header().unwrap();
        assert!(p.u32s(got.count_handles).is_err());
        assert_eq!(p.u32s(2), Ok(alloc::vec![7, 8]));
        assert_eq!(p.finish(), Ok(()));
        // Within the cap but beyond the payload: a size error, no allocation.
        let mut bytes = Builder::new(&Array {
            count_handles: MAX_COUNT,
            pad: 0,
        })
        .build();
        let mut p = Payload::new(&mut bytes);
        let got: Array = p.header().unwrap();
        assert!(matches!(
            p.u32s(got.count_handles),
            Err(WireError::Size { got: 8, .. })
        ));
    }

    #[test]
    fn layout_misuse_is_an_error_not_a_panic() {
        let mut bytes = Builder::new(&Array {
            count_handles: 1,
            pad: 0,
        })
        .array(&[3u32])
        .build();
        let mut p = Payload::new(&mut bytes);
        assert!(matches!(
            p.set_header(&Array::default()),
            Err(WireError::Layout { .. })
        ));
        let got: Array = p.header().unwrap();
        assert!(matches!(p.header::<Array>(), Err(WireError::Layout { .. })));
        p.u32s(got.count_handles).unwrap();
        assert!(matches!(p.set_u64s(0, &[1]), Err(WireError::Layout { .. })));
        assert!(matches!(
            p.set_array(0, &[1u32, 2]),
            Err(WireError::Layout { .. })
        ));
        assert!(matches!(
            p.set_array(1, &[1u32]),
            Err(WireError::Layout { .. })
        ));
        assert!(matches!(
            p.set_header(&Transfer::default()),
            Err(WireError::Layout { .. })
        ));
    }
}
