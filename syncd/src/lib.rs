//! syncd, the fence authority: timelines, sync_files and syncobjs served on
//! `scheme:sync`. The protocol and the client side are the `sync-client`
//! crate's, so that clients need not link the daemon.

pub mod core;
pub mod scheme;
