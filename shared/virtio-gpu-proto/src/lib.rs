//! Wire types for the virtio-gpu device protocol (virtio 1.2, [§5.7 GPU Device]).
//!
//! Every control-queue and cursor-queue request and response is a `#[repr(C)]`
//! struct built from explicit little-endian fields, so it can be copied to and from
//! DMA buffers with [`zerocopy`] without any `unsafe` and without caring about host
//! byte order or alignment (all fields have alignment 1).
//!
//! Values the device writes (response codes, the command code echoed in a header,
//! capset contents) are kept as plain newtypes rather than Rust enums: the host may
//! send a code this crate has never heard of, and that must stay representable.
//!
//! [`Request`] ties each request struct to its command code and to the response
//! struct the device answers with, which is what a typed submission API builds on.
//!
//! [§5.7 GPU Device]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// A request kept to be placed later owns its bytes (`layout::Wire::owned`).
extern crate alloc;

mod message;

pub mod blob;
pub mod capset;
pub mod cmd2d;
pub mod cmd3d;
pub mod config;
pub mod cursor;
pub mod display;
pub mod edid;
pub mod features;
pub mod header;
pub mod ids;
pub mod layout;
pub mod types;

pub use blob::{
    BlobFlags, BlobMem, MapCache, ResourceCreateBlob, ResourceMapBlob, ResourceUnmapBlob,
    RespMapInfo, ScanoutBlobLayout, SetScanoutBlob,
};
pub use capset::{
    format_supported, CapsetError, CapsetHeader, FormatMask, GetCapset, GetCapsetInfo, RespCapset,
    RespCapsetInfo, CAPSET_V1_SIZE,
};
pub use cmd2d::{
    Format, MemEntry, Rect, ResourceAssignUuid, ResourceAttachBacking, ResourceCreate2d,
    ResourceDetachBacking, ResourceFlush, ResourceUnref, RespResourceUuid, SetScanout,
    TransferToHost2d,
};
pub use cmd3d::{
    Box3d, CmdSubmit, CtxAttachResource, CtxCreate, CtxDestroy, CtxDetachResource, CtxResource,
    Resource3dParams, ResourceCreate3d, TransferFromHost3d, TransferHost3d, TransferToHost3d,
};
pub use config::{GpuConfig, EVENT_DISPLAY, MAX_SCANOUTS};
pub use cursor::{CursorCmd, CursorPos, MoveCursor, UpdateCursor};
pub use display::{DisplayOne, GetDisplayInfo, GetEdid, RespDisplayInfo, RespEdid};
pub use features::Features;
pub use header::CtrlHdr;
pub use ids::{CapsetId, CtxId, FenceId, ResourceId, ScanoutId};
pub use layout::{layout, Layout, ResourceField, Wire, WireError};
pub use message::{NoResponse, Request, RespNodata, Response};
pub use types::{CommandType, Queue, ResponseType};
