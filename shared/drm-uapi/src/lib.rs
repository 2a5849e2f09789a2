//! DRM core, virtgpu, syncobj and sync_file ioctls in the form a scheme
//! daemon receives them: the payload of a scheme call, not the Linux ioctl
//! struct.
//!
//! A scheme cannot follow pointers into the client's memory, so relibc's
//! Redox ioctl forwarding (its `define_ioctl_data!` macro) re-packs every
//! ioctl argument before the call, and every client library of this project
//! (relibc, the Linux LD_PRELOAD shim) must pack identically:
//!
//! 1. the metadata word 0 of the call is the ioctl's `nr` (the low 8 bits of
//!    the Linux request number), because dispatch is by `nr` only, exactly
//!    as in the kernel;
//! 2. the payload starts with the `#[repr(C)]` image of a struct holding only
//!    the ioctl struct's non-pointer fields, in declaration order — so field
//!    offsets differ from the Linux struct wherever a pointer was dropped;
//! 3. each pointed-to array follows inline, in declaration order, with
//!    `count × element size` bytes (zeros when the client passed NULL).
//!
//! File descriptors mean nothing to a daemon, so fields that carry an fd in
//! the Linux struct carry a capability *token* (`u64`) on the wire instead:
//! the client library asks the fd's own handle for its token first. An fd
//! the ioctl *returns* is never on the wire; the client obtains it by
//! `dup`-ing its handle.
//!
//! - [`wire`]: the generic payload reader/writer ([`Payload`]) and the
//!   client-side [`Builder`], shared by every ioctl here.
//! - [`core`]: the core (non-KMS) `DRM_IOCTL_*` a render
//!   node serves — VERSION, GEM_CLOSE, GET_CAP, SET_CLIENT_CAP, PRIME
//!   (served by drmd).
//! - [`kms`]: the KMS `DRM_IOCTL_MODE_*` (served by drmd), their one
//!   table of shapes ([`kms::layout`]), and the events read from a DRM fd.
//! - [`virtgpu`]: `DRM_IOCTL_VIRTGPU_*` (served by drmd).
//! - [`syncobj`]: `DRM_IOCTL_SYNCOBJ_*` (served by drmd).
//! - [`sync_file`]: `SYNC_IOC_*` (served by syncd).
//! - [`linux`]: the Linux structs of the ioctls whose wire form differs
//!   (the client side of the re-packing).
//!
//! Layouts, and the Linux request numbers exported for the LD_PRELOAD
//! shim, are checked at compile time against `docs/ABI-REFERENCE.md`
//! §2.1–2.2, §3.2 and §6.2–6.3.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

pub mod core;
pub mod kms;
pub mod linux;
pub mod sync_file;
pub mod syncobj;
pub mod virtgpu;
pub mod wire;

pub use wire::{carried, carried_bytes, Builder, Payload, WireError, MAX_BYTES, MAX_COUNT};
