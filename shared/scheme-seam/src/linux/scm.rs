//! sendmsg/recvmsg with descriptors attached (SCM_RIGHTS): the only unsafe
//! code of the bus.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::wire::MAX_FDS;

/// Control-message space for [`MAX_FDS`] descriptors.
const CMSG_SPACE: usize = {
    // CMSG_SPACE(n * sizeof(int)) for the platform's alignment (8 on 64-bit).
    let data = MAX_FDS * size_of::<RawFd>();
    let align = size_of::<usize>();
    size_of::<libc::cmsghdr>().next_multiple_of(align) + data.next_multiple_of(align)
};

#[repr(C, align(8))]
struct CmsgBuf([MaybeUninit<u8>; CMSG_SPACE]);

/// Sends `data` with `fds` attached in one sendmsg; returns bytes sent
/// (which may be fewer than `data.len()` on a non-blocking socket).
pub fn send(sock: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    assert!(fds.len() <= MAX_FDS, "too many descriptors for one frame");
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut _,
        iov_len: data.len(),
    };
    let mut cmsg = CmsgBuf([MaybeUninit::uninit(); CMSG_SPACE]);
    // SAFETY: an all-zero msghdr is a valid empty message.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        let bytes = std::mem::size_of_val(fds);
        msg.msg_control = cmsg.0.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE is a pure computation on a length.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(bytes as u32) } as _;
        // SAFETY: the control buffer holds CMSG_SPACE(MAX_FDS ints), enough
        // for one header and `fds`; CMSG_FIRSTHDR/CMSG_DATA stay inside it.
        unsafe {
            let hdr = libc::CMSG_FIRSTHDR(&msg);
            (*hdr).cmsg_level = libc::SOL_SOCKET;
            (*hdr).cmsg_type = libc::SCM_RIGHTS;
            (*hdr).cmsg_len = libc::CMSG_LEN(bytes as u32) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(hdr).cast(), fds.len());
        }
    }
    // SAFETY: `msg` points at live buffers for the duration of the call;
    // MSG_NOSIGNAL turns a vanished peer into EPIPE instead of SIGPIPE.
    let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Receives up to `max` bytes appended to `buf` (without initialising its
/// spare capacity first), and any attached descriptors (close-on-exec)
/// appended to `fds`; returns bytes received, 0 at end of stream.
pub fn recv(
    sock: RawFd,
    buf: &mut Vec<u8>,
    max: usize,
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    buf.reserve(max);
    let spare = buf.spare_capacity_mut();
    let mut iov = libc::iovec {
        iov_base: spare.as_mut_ptr().cast(),
        iov_len: max.min(spare.len()),
    };
    let mut cmsg = CmsgBuf([MaybeUninit::uninit(); CMSG_SPACE]);
    // SAFETY: an all-zero msghdr is a valid empty message.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.0.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_SPACE as _;
    // SAFETY: `msg` points at live buffers sized as declared.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled `msg_controllen` bytes of control data;
    // CMSG_FIRSTHDR/CMSG_NXTHDR walk only within them, and every SCM_RIGHTS
    // descriptor is a fresh fd this process now owns.
    unsafe {
        let mut hdr = libc::CMSG_FIRSTHDR(&msg);
        while !hdr.is_null() {
            if (*hdr).cmsg_level == libc::SOL_SOCKET && (*hdr).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(hdr).cast::<RawFd>();
                let len = (*hdr).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for i in 0..len / size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            hdr = libc::CMSG_NXTHDR(&msg, hdr);
        }
    }
    // SAFETY: recvmsg initialised the first `n` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n as usize) };
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::other("more descriptors than a frame may carry"));
    }
    Ok(n as usize)
}

/// Copies the first bytes waiting in `sock` into `buf` without taking
/// them (and without any descriptors sent with them); returns how many, 0
/// at end of stream.
pub fn peek(sock: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live buffer of the length given.
    let n = unsafe {
        libc::recv(
            sock,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// How many bytes wait in `sock`'s receive queue (SIOCINQ).
pub fn queued(sock: RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer given.
    if unsafe { libc::ioctl(sock, libc::FIONREAD, &mut n) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}
