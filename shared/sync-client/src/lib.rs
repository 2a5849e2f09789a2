//! The protocol of `scheme:sync` ([`api`]), which syncd serves, and its
//! client side: what drmd, virtio-gpud, the tests and the ioctl shims use,
//! without linking the daemon.

pub mod api;
mod client;
pub mod clock;

pub use client::{FileInfo, SyncFile, SyncobjTable, TimelineOwner, TimelinePage};
