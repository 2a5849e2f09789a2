#!/usr/bin/env bash
# Compile-checks the patched relibc ioctl code for x86_64-unknown-redox.
#
# A full `cargo check` of relibc needs its git dependencies (redox-rings,
# redox-buffer-pool, the andypython/object fork, the dlmalloc-rs submodule),
# which only gitlab.redox-os.org serves. This builds what the patch touches
# instead: relibc's own src/header/sys_ioctl/{constants.rs,redox/*.rs} and the
# fstat conversion from src/platform/redox/libredox.rs, against the real
# redox-rt and redox-ioctl crates of the same tree, with minimal stand-ins for
# the rest of relibc (Errno, a few errno/fcntl constants, Pal::fcntl/close).
#
# usage: recipes/relibc/check.sh /path/to/relibc   (patch already applied)
#   e.g. git clone https://gitlab.redox-os.org/redox-os/relibc.git (or a
#   mirror holding the base commit), git checkout 6359922768c6, then
#   git am recipes/relibc/0001-*.patch. The check itself fetches only
#   crates.io packages (the versions pinned in relibc's Cargo.lock).
# needs: rustup's stable toolchain with the x86_64-unknown-redox target
#        (RUSTC_BOOTSTRAP=1 lets it build relibc's nightly features).
set -euo pipefail
relibc=$(cd "${1:?usage: $0 /path/to/patched/relibc}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
cp "$relibc/Cargo.lock" "$work/"   # relibc's pinned versions (redox_syscall 0.9.1, ...)

cat > "$work/Cargo.toml" <<TOML
[package]
name = "relibc-ioctl-check"
version = "0.1.0"
edition = "2024"

[dependencies]
redox_syscall = "0.9.1"
redox-rt = { path = "$relibc/redox-rt" }
redox-ioctl = { path = "$relibc/redox-ioctl" }
redox_protocols = { package = "libredox", version = "0.1.20", default-features = false, features = ["protocol"] }
log = "0.4"

[lints.rust]
unsafe_op_in_unsafe_fn = "deny"
unused_imports = "deny"
unused_mut = "deny"
unused_unsafe = "deny"
TOML

# The fstat conversion, extracted verbatim, with relibc's stat layout.
python3 - "$relibc" > "$work/src/fstat_check.rs" <<'PY'
import sys
src = open(sys.argv[1] + "/src/platform/redox/libredox.rs").read()
fn = src[src.index("pub unsafe fn fstat("):src.index("\npub unsafe fn fstatvfs")]
print("""pub mod fstat_check {
    use crate::platform::types::*;
    use syscall::Result;
    pub type ino_t = u64; pub type nlink_t = core::ffi::c_ulong; pub type uid_t = c_int;
    pub type gid_t = c_int; pub type off_t = i64; pub type blksize_t = c_long;
    pub type blkcnt_t = i64; pub type time_t = i64;
    pub const S_IFMT: mode_t = 0o0_170_000;
    pub const S_IFCHR: mode_t = 0o020_000;
    pub const S_IFBLK: mode_t = 0o060_000;
    #[repr(C)] pub struct timespec { pub tv_sec: time_t, pub tv_nsec: c_long }
    pub mod header { pub mod sys_stat {
        use super::super::*;
        #[repr(C)] pub struct stat { pub st_dev: dev_t, pub st_ino: ino_t, pub st_nlink: nlink_t,
            pub st_mode: mode_t, pub st_uid: uid_t, pub st_gid: gid_t, pub st_rdev: dev_t,
            pub st_size: off_t, pub st_blksize: blksize_t, pub st_blocks: blkcnt_t,
            pub st_atim: timespec, pub st_mtim: timespec, pub st_ctim: timespec }
    } }
""" + fn.replace("crate::header::sys_stat::stat", "header::sys_stat::stat") + "}")
PY

cat > "$work/src/lib.rs" <<RS
#![no_std]
#![allow(non_camel_case_types, dead_code)]
extern crate alloc;

macro_rules! todo_skip {
    (\$issue:expr, \$(\$arg:tt)*) => { log::info!("TODO ({}): {}", \$issue, format_args!(\$(\$arg)*)) };
}

pub mod error {
    use crate::platform::types::c_int;
    #[derive(Debug, Eq, PartialEq)]
    pub struct Errno(pub c_int);
    pub type Result<T, E = Errno> = core::result::Result<T, E>;
    impl From<syscall::Error> for Errno {
        fn from(value: syscall::Error) -> Self { Errno(value.errno) }
    }
}

pub mod platform {
    pub mod types {
        pub use core::ffi::{c_char, c_int, c_long, c_ulong, c_ulonglong, c_void};
        pub type pid_t = c_int;
        pub type dev_t = u64;
        pub type mode_t = c_int;
    }
    use crate::error::Result;
    use types::*;
    pub trait Pal {
        fn fcntl(fd: c_int, cmd: c_int, args: c_ulonglong) -> Result<c_int>;
        fn close(fd: c_int) -> Result<()>;
    }
    pub struct Sys;
    impl Pal for Sys {
        fn fcntl(fd: c_int, cmd: c_int, args: c_ulonglong) -> Result<c_int> {
            Ok(redox_rt::sys::fcntl(fd as usize, cmd as usize, args as usize)? as c_int)
        }
        fn close(fd: c_int) -> Result<()> {
            redox_rt::sys::close(fd as usize)?;
            Ok(())
        }
    }
}

pub mod header {
    pub mod errno {
        use crate::platform::types::c_int;
        pub const EIO: c_int = 5;
        pub const EBADF: c_int = 9;
        pub const EFAULT: c_int = 14;
        pub const EINVAL: c_int = 22;
        pub const EMFILE: c_int = 24;
        pub const ENOTTY: c_int = 25;
    }
    pub mod fcntl {
        use crate::platform::types::c_int;
        pub const F_GETFD: c_int = 1;
        pub const F_SETFD: c_int = 2;
        pub const F_GETFL: c_int = 3;
        pub const F_SETFL: c_int = 4;
        pub const FD_CLOEXEC: c_int = 0x0100_0000;
        pub const O_CLOEXEC: c_int = 0x0100_0000;
        pub const O_NONBLOCK: c_int = 0x0004_0000;
    }
    pub mod bits_winsize { #[repr(C)] pub struct winsize { pub ws_row: u16 } }
    pub mod termios { #[repr(C)] pub struct termios { pub c_iflag: u32 } }
    pub mod unistd {
        pub fn getsid(pid: crate::platform::types::pid_t) -> crate::platform::types::pid_t { pid }
    }
    pub mod sys_ioctl {
        #[path = "$relibc/src/header/sys_ioctl/constants.rs"]
        pub mod constants;
        #[path = "$relibc/src/header/sys_ioctl/redox/mod.rs"]
        pub mod redox;
    }
}

include!("fstat_check.rs");
RS

cd "$work"
RUSTC_BOOTSTRAP=1 cargo +stable check --target x86_64-unknown-redox
echo "relibc ioctl code of $relibc compiles for x86_64-unknown-redox"
