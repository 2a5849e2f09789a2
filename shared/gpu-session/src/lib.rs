//! The protocol of `scheme:virtio-gpu` ([`api`]), which virtio-gpud
//! serves, and its client side, a [`Session`] on the device: what drmd,
//! the tests and the tools use, without linking the daemon.

pub mod api;
mod session;

pub use session::Session;
