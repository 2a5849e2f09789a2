//! `SYNC_IOC_*` (ioctl type `'>'`) as syncd receives them (ABI-REFERENCE
//! §6.2).
//!
//! Same rule as [`crate::syncobj`]: pointers dropped and their arrays
//! appended, fds replaced by capability tokens, fds returned by the ioctl
//! obtained by the client through `dup` instead of on the wire.

use crate::wire::nr_of;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The Linux ioctl type byte of every sync_file ioctl, for clients that
/// route Linux request numbers by type.
pub const IOC_TYPE: u8 = b'>';

/// `SYNC_IOC_MERGE` nr: payload [`Merge`].
pub const MERGE: u64 = 3;
/// `SYNC_IOC_FILE_INFO` nr: payload [`FileInfoHeader`] + [`FenceInfo`]s.
pub const FILE_INFO: u64 = 4;
/// `SYNC_IOC_SET_DEADLINE` nr: payload [`SetDeadline`].
pub const SET_DEADLINE: u64 = 5;

/// The full Linux request number of `SYNC_IOC_MERGE`, which the LD_PRELOAD
/// shim intercepts before translating to a scheme call.
pub const IOC_MERGE: u32 = 0xC030_3E03;
/// The full Linux request number of `SYNC_IOC_FILE_INFO` (see
/// [`IOC_MERGE`]).
pub const IOC_FILE_INFO: u32 = 0xC038_3E04;
/// The full Linux request number of `SYNC_IOC_SET_DEADLINE` (see
/// [`IOC_MERGE`]).
pub const IOC_SET_DEADLINE: u32 = 0x4010_3E05;

/// The length of the name fields, which are NUL-padded, not necessarily
/// NUL-terminated.
pub const NAME_LEN: usize = 32;

/// MERGE (`sync_merge_data` with `fd2` replaced by a token).
///
/// The merged sync_file is not on the wire: the client library obtains
/// the new fd by `dup` on a handle (the daemon's scheme defines which).
/// `fence` is therefore unused on the wire and kept only so the struct
/// still reads like Linux's; `pad2` rounds the size to a
/// multiple of 8 so the `u64` token's alignment leaves no implicit padding.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Merge {
    /// The merged file's name (shows up in FILE_INFO).
    pub name: [u8; NAME_LEN],
    /// The capability token of `fd2`, the sync_file merged with the one the
    /// call is made on.
    pub token: u64,
    /// Unused on the wire (see the type's documentation).
    pub fence: i32,
    /// Must be 0 (EINVAL otherwise).
    pub flags: u32,
    /// Linux's `pad`: must be 0 (EINVAL otherwise).
    pub pad: u32,
    /// Wire-only padding; clients send 0.
    pub pad2: u32,
}

/// FILE_INFO header (`sync_file_info` without its `sync_fence_info`
/// pointer), followed by `[FenceInfo; num_fences]` (OUT).
///
/// With `num_fences` 0 the call only reports the count, so the payload is
/// the header alone.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct FileInfoHeader {
    /// OUT: the file's name.
    pub name: [u8; NAME_LEN],
    /// OUT: 1 all signaled, 0 active, < 0 the first error.
    pub status: i32,
    /// Must be 0 (EINVAL otherwise).
    pub flags: u32,
    /// IN: room in the array that follows; OUT: the file's fence count.
    pub num_fences: u32,
    /// Must be 0 (EINVAL otherwise).
    pub pad: u32,
}

/// One element of FILE_INFO's array (`sync_fence_info`, unchanged).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct FenceInfo {
    /// The fence's timeline name (`controlq` for virtio-gpu).
    pub obj_name: [u8; NAME_LEN],
    /// The driver name (`virtio_gpu`).
    pub driver_name: [u8; NAME_LEN],
    /// 1 signaled, 0 active, < 0 error.
    pub status: i32,
    /// Fence flags as Linux reports them.
    pub flags: u32,
    /// CLOCK_MONOTONIC signal time in ns, when signaled.
    pub timestamp_ns: u64,
}

/// SET_DEADLINE (`sync_set_deadline`, unchanged).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SetDeadline {
    /// CLOCK_MONOTONIC deadline hint in ns.
    pub deadline_ns: u64,
    /// Must be 0 (EINVAL otherwise).
    pub pad: u64,
}

const _: () = {
    use core::mem::size_of;
    assert!(size_of::<Merge>() == 56);
    assert!(size_of::<FileInfoHeader>() == 48);
    assert!(size_of::<FenceInfo>() == 80);
    assert!(size_of::<SetDeadline>() == 16);
    // The request numbers encode these nrs, type '>', and the Linux
    // structs' sizes (48, 56, 16).
    assert!(nr_of(IOC_MERGE) == MERGE);
    assert!(nr_of(IOC_FILE_INFO) == FILE_INFO);
    assert!(nr_of(IOC_SET_DEADLINE) == SET_DEADLINE);
    assert!((IOC_MERGE >> 8) & 0xff == IOC_TYPE as u32);
    assert!((IOC_FILE_INFO >> 8) & 0xff == IOC_TYPE as u32);
    assert!((IOC_SET_DEADLINE >> 8) & 0xff == IOC_TYPE as u32);
    assert!((IOC_MERGE >> 16) & 0x3fff == 48);
    assert!((IOC_FILE_INFO >> 16) & 0x3fff == 56);
    assert!((IOC_SET_DEADLINE >> 16) & 0x3fff == 16);
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Builder, Payload, WireError};
    use core::mem::{offset_of, size_of};

    #[test]
    fn sizes_and_offsets() {
        assert_eq!(size_of::<Merge>(), 56);
        assert_eq!(offset_of!(Merge, name), 0);
        assert_eq!(offset_of!(Merge, token), 32);
        assert_eq!(offset_of!(Merge, fence), 40);
        assert_eq!(offset_of!(Merge, flags), 44);
        assert_eq!(offset_of!(Merge, pad), 48);
        assert_eq!(offset_of!(Merge, pad2), 52);

        assert_eq!(size_of::<FileInfoHeader>(), 48);
        assert_eq!(offset_of!(FileInfoHeader, name), 0);
        assert_eq!(offset_of!(FileInfoHeader, status), 32);
        assert_eq!(offset_of!(FileInfoHeader, flags), 36);
        assert_eq!(offset_of!(FileInfoHeader, num_fences), 40);
        assert_eq!(offset_of!(FileInfoHeader, pad), 44);

        assert_eq!(size_of::<FenceInfo>(), 80);
        assert_eq!(offset_of!(FenceInfo, obj_name), 0);
        assert_eq!(offset_of!(FenceInfo, driver_name), 32);
        assert_eq!(offset_of!(FenceInfo, status), 64);
        assert_eq!(offset_of!(FenceInfo, flags), 68);
        assert_eq!(offset_of!(FenceInfo, timestamp_ns), 72);

        assert_eq!(size_of::<SetDeadline>(), 16);
        assert_eq!(offset_of!(SetDeadline, deadline_ns), 0);
        assert_eq!(offset_of!(SetDeadline, pad), 8);
    }

    #[test]
    fn request_numbers() {
        assert_eq!(IOC_MERGE, 0xC0303E03);
        assert_eq!(IOC_FILE_INFO, 0xC0383E04);
        assert_eq!(IOC_SET_DEADLINE, 0x40103E05);
        assert_eq!(nr_of(IOC_FILE_INFO), 4);
    }

    #[test]
    fn merge_round_trip() {
        let mut name = [0u8; NAME_LEN];
        name[..6].copy_from_slice(b"merged");
        let merge = Merge {
            name,
            token: 0xDEAD_BEEF_0000_0001,
            ..Merge::default()
        };
        let mut bytes = Builder::new(&merge).build();
        let mut p = Payload::new(&mut bytes);
        assert_eq!(p.header::<Merge>().unwrap(), merge);
        p.finish().unwrap();
    }

    #[test]
    fn file_info_fills_fewer_fences_than_room() {
        let header = FileInfoHeader {
            num_fences: 3,
            ..FileInfoHeader::default()
        };
        let mut bytes = Builder::new(&header).zeroed::<FenceInfo>(3).build();
        assert_eq!(bytes.len(), 48 + 3 * 80);
        let mut p = Payload::new(&mut bytes);
        let got: FileInfoHeader = p.header().unwrap();
        let fences = p.skip_array::<FenceInfo>(got.num_fences).unwrap();
        p.finish().unwrap();

        let mut info = FenceInfo {
            status: 1,
            timestamp_ns: 99,
            ..FenceInfo::default()
        };
        info.driver_name[..10].copy_from_slice(b"virtio_gpu");
        p.set_array(fences, &[info, info]).unwrap();
        p.set_header(&FileInfoHeader {
            status: 1,
            num_fences: 2,
            ..got
        })
        .unwrap();

        let mut p = Payload::new(&mut bytes);
        let back: FileInfoHeader = p.header().unwrap();
        assert_eq!(back.num_fences, 2);
        let all = p.array::<FenceInfo>(3).unwrap();
        assert_eq!(all[..2], [info, info]);
        assert_eq!(all[2], FenceInfo::default());
    }

    #[test]
    fn set_deadline_exact_size() {
        let mut bytes = Builder::new(&SetDeadline {
            deadline_ns: 5,
            pad: 0,
        })
        .build();
        bytes.truncate(12);
        assert_eq!(
            Payload::new(&mut bytes).header::<SetDeadline>(),
            Err(WireError::Size {
                expected: 16,
                got: 12
            })
        );
    }
}
