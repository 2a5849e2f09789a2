//! The caller's memory, reached as the kernel reaches it with
//! `copy_from_user` / `copy_to_user`: a bad pointer is EFAULT for the
//! ioctl, never a crash of the calling process.
//!
//! Copies go through `process_vm_readv` / `process_vm_writev` on this very
//! process, which the kernel always allows and which report an unmapped
//! range as EFAULT instead of raising SIGSEGV.
//!
//! A pointed-to array is packed as the wire rule says (`drm_uapi::wire`):
//! one over the wire's cap is not carried at all, and one the shim cannot
//! read is not carried either, its count replaced on the wire by
//! [`NOT_CARRIED`] so that the daemon reaches it in Linux's order and
//! answers ENOMEM there; the shim then reports EFAULT, as Linux would at
//! that point.

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::ioctl::Result;

/// The count a faulting array gets on the wire: over every cap.
pub const NOT_CARRIED: u32 = u32::MAX;

/// Copies `dst.len()` bytes of this process's memory at `src` into `dst`.
fn copy_in(src: u64, dst: &mut [u8]) -> Result<()> {
    if dst.is_empty() {
        return Ok(());
    }
    let local = libc::iovec {
        iov_base: dst.as_mut_ptr().cast(),
        iov_len: dst.len(),
    };
    let remote = libc::iovec {
        iov_base: src as *mut libc::c_void,
        iov_len: dst.len(),
    };
    // SAFETY: `local` is our own buffer of that length; the kernel checks
    // `remote` and fails with EFAULT rather than fault.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    if n == dst.len() as isize {
        Ok(())
    } else {
        Err(libc::EFAULT)
    }
}

/// Copies `src` to this process's memory at `dst`.
fn copy_out(dst: u64, src: &[u8]) -> Result<()> {
    if src.is_empty() {
        return Ok(());
    }
    let local = libc::iovec {
        iov_base: src.as_ptr() as *mut libc::c_void,
        iov_len: src.len(),
    };
    let remote = libc::iovec {
        iov_base: dst as *mut libc::c_void,
        iov_len: src.len(),
    };
    // SAFETY: `local` is our own buffer of that length, only read; the
    // kernel checks `remote` and fails with EFAULT rather than fault.
    let n = unsafe { libc::process_vm_writev(libc::getpid(), &local, 1, &remote, 1, 0) };
    if n == src.len() as isize {
        Ok(())
    } else {
        Err(libc::EFAULT)
    }
}

/// The caller's ioctl struct `T` at `arg`, of which the request says `size`
/// bytes are there: a shorter struct reads as zero-extended, a longer one's
/// extra bytes are ignored, as Linux's `drm_ioctl` does.
pub fn read_arg<T: FromBytes + IntoBytes>(arg: u64, size: usize) -> Result<T> {
    let mut value = T::new_zeroed();
    let n = size.min(size_of::<T>());
    if arg == 0 && n > 0 {
        return Err(libc::EFAULT);
    }
    copy_in(arg, &mut value.as_mut_bytes()[..n])?;
    Ok(value)
}

/// Writes `value`'s first `size` bytes back to the caller's struct.
pub fn write_arg<T: IntoBytes + Immutable>(arg: u64, size: usize, value: &T) -> Result<()> {
    let n = size.min(size_of::<T>());
    if arg == 0 && n > 0 {
        return Err(libc::EFAULT);
    }
    copy_out(arg, &value.as_bytes()[..n])
}

/// `len` bytes of the caller's memory at `ptr`.
pub fn read(ptr: u64, len: usize) -> Result<Vec<u8>> {
    let mut bytes = vec![0u8; len];
    if ptr == 0 && len > 0 {
        return Err(libc::EFAULT);
    }
    copy_in(ptr, &mut bytes)?;
    Ok(bytes)
}

/// Copies `bytes` to the caller's array at `ptr`.
pub fn write(ptr: u64, bytes: &[u8]) -> Result<()> {
    if ptr == 0 && !bytes.is_empty() {
        return Err(libc::EFAULT);
    }
    copy_out(ptr, bytes)
}

/// How an array's NULL pointer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Null {
    /// As zeros (Linux takes NULL timeline points as all 0).
    Zeros,
    /// As a fault (everywhere else Linux copies from the pointer).
    Faults,
}

/// One of the caller's pointed-to arrays, as it goes on the wire.
#[derive(Debug)]
pub struct InArray {
    /// The bytes carried (none if the array is not carried).
    pub bytes: Vec<u8>,
    /// The count to put on the wire ([`NOT_CARRIED`] for an array the
    /// shim could not read).
    pub count: u32,
    /// Whether the array could not be read.
    pub faulted: bool,
}

/// Reads the caller's array of `count` elements of `elem` bytes at `ptr`,
/// if the wire carries it (`carried`).
pub fn in_array(ptr: u64, count: u32, elem: usize, carried: bool, null: Null) -> InArray {
    let not_carried = InArray {
        bytes: Vec::new(),
        count,
        faulted: false,
    };
    if !carried {
        return not_carried;
    }
    let len = count as usize * elem;
    let mut bytes = vec![0u8; len];
    let read = match (ptr, null) {
        (0, Null::Zeros) => Ok(()),
        (0, Null::Faults) if len > 0 => Err(libc::EFAULT),
        _ => copy_in(ptr, &mut bytes),
    };
    match read {
        Ok(()) => InArray {
            bytes,
            count,
            faulted: false,
        },
        Err(_) => InArray {
            count: NOT_CARRIED,
            faulted: true,
            ..not_carried
        },
    }
}

/// The daemon's answer to a request in which `faulted` arrays were not
/// carried: the ENOMEM it gives on reaching such an array is the EFAULT
/// Linux would give there.
pub fn fault_answer<T>(answer: Result<T>, faulted: bool) -> Result<T> {
    match answer {
        Err(libc::ENOMEM) if faulted => Err(libc::EFAULT),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pointers_are_efault_not_a_crash() {
        let mut buf = [0u8; 8];
        assert_eq!(copy_in(8, &mut buf), Err(libc::EFAULT));
        assert_eq!(copy_out(8, &buf), Err(libc::EFAULT));
        let a = in_array(16, 4, 4, true, Null::Faults);
        assert!(a.faulted);
        assert_eq!(a.count, NOT_CARRIED);
        let a = in_array(0, 2, 8, true, Null::Zeros);
        assert_eq!((a.bytes, a.faulted), (vec![0; 16], false));
        assert!(in_array(0, 1, 4, true, Null::Faults).faulted);
        assert!(!in_array(0, 0, 4, true, Null::Faults).faulted);
    }

    #[test]
    fn good_pointers_round_trip() {
        let src = [1u32, 2, 3];
        let a = in_array(src.as_ptr() as u64, 3, 4, true, Null::Faults);
        assert_eq!(a.bytes, src.as_bytes());
        let mut dst = [0u32; 3];
        write(dst.as_mut_ptr() as u64, src.as_bytes()).unwrap();
        assert_eq!(dst, src);
        // Not carried: nothing is read, even from a bad pointer.
        let a = in_array(8, u32::MAX, 4, false, Null::Faults);
        assert!(a.bytes.is_empty() && !a.faulted && a.count == u32::MAX);
    }
}
