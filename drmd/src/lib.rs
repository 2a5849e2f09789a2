//! drmd: the DRM personality. The daemon (`main.rs`) serves `scheme:drm`
//! ([`scheme`]); [`client`] is the typed client side of its ioctls; [`mesa`]
//! runs unmodified Mesa programs on it through the Linux shim (`drmd/shim`).
//! The ioctls ([`ioctl`]), KMS among them ([`kms`]), run on a device seam ([`backend`]), which the unit
//! tests and the fuzz target fill with an in-memory device.

pub mod backend;
pub mod client;
pub mod device;
mod errno;
pub mod events;
pub mod file;
pub mod gem;
mod handle;
pub mod ioctl;
pub mod kms;
pub mod master;
#[cfg(target_os = "linux")]
pub mod mesa;
pub mod node;
pub mod recovery;
mod ring;
pub mod scheme;
mod stats;
