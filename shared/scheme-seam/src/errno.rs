//! Error numbers, as schemes answer them. Redox uses Linux's numbering for
//! every code here, so one table serves both platforms.

use std::fmt;

/// An error number returned to a scheme's client.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident = $n:expr, $text:expr;)*) => {
        impl Errno {
            $(#[doc = $text] pub const $name: Errno = Errno($n);)*

            /// The symbolic name, e.g. `"EINVAL"`.
            pub fn name(self) -> &'static str {
                match self.0 {
                    $($n => stringify!($name),)*
                    _ => "E?",
                }
            }
        }
    };
}

errnos! {
    EPERM = 1, "Operation not permitted.";
    ENOENT = 2, "No such file or object.";
    EINTR = 4, "Interrupted.";
    EIO = 5, "I/O error (the device failed).";
    EBADF = 9, "Bad handle.";
    EAGAIN = 11, "Would block; `EWOULDBLOCK` on Redox.";
    ENOMEM = 12, "Out of memory.";
    EACCES = 13, "Permission denied.";
    EFAULT = 14, "Bad size or address in the request.";
    EBUSY = 16, "Busy.";
    EEXIST = 17, "Already exists.";
    ERANGE = 34, "A value out of range.";
    EDEADLK = 35, "A wait that nothing can end.";
    ENODEV = 19, "Not supported by this object.";
    EINVAL = 22, "Invalid argument.";
    EMFILE = 24, "Too many open files.";
    ENOTTY = 25, "Unknown ioctl for this object.";
    ENOSPC = 28, "No space left.";
    ENOSYS = 38, "Operation not implemented.";
    ETIME = 62, "Timer expired.";
    EPROTO = 71, "Protocol error.";
    EOVERFLOW = 75, "Value too large.";
    EMSGSIZE = 90, "Message too long.";
    EOPNOTSUPP = 95, "Operation not supported.";
    ETIMEDOUT = 110, "Timed out.";
    EALREADY = 114, "Already in progress (an object listed twice).";
    ECANCELED = 125, "Cancelled: the caller went away or gave up.";
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&std::io::Error::from_raw_os_error(self.0), f)
    }
}

impl std::error::Error for Errno {}

impl From<Errno> for std::io::Error {
    fn from(e: Errno) -> Self {
        std::io::Error::from_raw_os_error(e.0)
    }
}

impl From<std::io::Error> for Errno {
    /// The OS error number, or EIO for errors that carry none.
    fn from(e: std::io::Error) -> Self {
        Errno(e.raw_os_error().unwrap_or(Errno::EIO.0))
    }
}

/// A scheme operation's result.
pub type Result<T, E = Errno> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::Errno;

    #[test]
    fn numbers_match_the_host() {
        assert_eq!(Errno::EINVAL.0, libc::EINVAL);
        assert_eq!(Errno::ENOTTY.0, libc::ENOTTY);
        assert_eq!(Errno::EAGAIN.0, libc::EAGAIN);
        assert_eq!(Errno::ECANCELED.0, libc::ECANCELED);
        assert_eq!(Errno::ETIME.0, libc::ETIME);
        assert_eq!(Errno::EOPNOTSUPP.0, libc::EOPNOTSUPP);
        assert_eq!(Errno::EMSGSIZE.0, libc::EMSGSIZE);
    }

    #[test]
    fn names_and_io_round_trip() {
        assert_eq!(Errno::ENOENT.name(), "ENOENT");
        assert_eq!(format!("{:?}", Errno(9999)), "E?(9999)");
        let io: std::io::Error = Errno::EBUSY.into();
        assert_eq!(Errno::from(io), Errno::EBUSY);
    }
}
