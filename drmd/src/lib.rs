//! drmd: the DRM personality. The daemon (`main.rs`) serves `scheme:drm`;
//! [`client`] is the typed client side of its ioctls; [`mesa`] runs
//! unmodified Mesa programs on it through the Linux shim (`drmd/shim`).

pub mod client;
#[cfg(target_os = "linux")]
pub mod mesa;
