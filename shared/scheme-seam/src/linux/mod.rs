//! Linux: the scheme bus.
//!
//! A directory of Unix-domain sockets stands for `/scheme/`: a daemon
//! serving scheme `drm` listens on `$SCHEME_DIR/drm`. Each open handle is
//! one connection, so the kernel tells the daemon when a client's handle is
//! gone (close or exit) and handles pass between processes as descriptors.
//! Frames are described in [`wire`]; shared memory travels as a memfd;
//! readiness is an eventfd per handle that the daemon keeps readable while
//! the handle is ready.

mod client;
pub mod fdstore;
pub mod frames;
pub mod journal;
mod persist;
mod scm;
mod server;
pub mod wire;

use std::io;
use std::path::PathBuf;

pub use client::SchemeFd;
pub use server::serve;

/// Environment variable naming the bus directory.
pub const SCHEME_DIR: &str = "SCHEME_DIR";

/// The bus directory: `$SCHEME_DIR`, else `$XDG_RUNTIME_DIR/schemes`, else
/// `/tmp/schemes-<uid>`.
pub fn scheme_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(SCHEME_DIR) {
        return dir.into();
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        return PathBuf::from(dir).join("schemes");
    }
    // SAFETY: getuid cannot fail.
    PathBuf::from(format!("/tmp/schemes-{}", unsafe { libc::getuid() }))
}

/// Splits `/scheme/<name>/<rest>` into the scheme name and the rest.
fn split_scheme_path(path: &str) -> io::Result<(&str, &str)> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a scheme path: {path}"),
        )
    };
    let tail = path.strip_prefix("/scheme/").ok_or_else(bad)?;
    let (name, rest) = tail.split_once('/').unwrap_or((tail, ""));
    if name.is_empty() || name.starts_with('.') {
        return Err(bad());
    }
    Ok((name, rest))
}

#[cfg(test)]
mod tests {
    use super::split_scheme_path;

    #[test]
    fn scheme_paths_split_into_name_and_rest() {
        assert_eq!(
            split_scheme_path("/scheme/drm/card0").unwrap(),
            ("drm", "card0")
        );
        assert_eq!(split_scheme_path("/scheme/sync").unwrap(), ("sync", ""));
        assert_eq!(split_scheme_path("/scheme/a/b/c").unwrap(), ("a", "b/c"));
        assert!(split_scheme_path("/dev/dri/card0").is_err());
        assert!(split_scheme_path("/scheme//x").is_err());
        assert!(split_scheme_path("/scheme/.drm.123").is_err());
    }
}
