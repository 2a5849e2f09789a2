//! drmd: the DRM personality. The daemon (`main.rs`) serves `scheme:drm`;
//! [`client`] is the typed client side of its ioctls.

pub mod client;
