//! syncd, the fence authority: timelines, sync_files and syncobjs served on
//! `scheme:sync` ([`api`] describes the protocol), with the client side
//! drmd and virtio-gpud use ([`client`]).

pub mod api;
pub mod client;
pub mod clock;
pub mod core;
pub mod scheme;
