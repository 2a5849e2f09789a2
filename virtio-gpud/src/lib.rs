//! virtio-gpud: the driver for a virtio-gpu device with virgl 3D.
//!
//! Layers, bottom up:
//! - [`dma`]: memory the device can reach, with device addresses;
//! - [`queue`]: the split virtqueue;
//! - [`transport`]: the platform seam (virtio over PCI on Redox and, for
//!   the QEMU PCI test, on Linux's vfio; QEMU's vhost-user backend on Linux);
//! - [`command`]: virtio-gpu commands framed on a virtqueue;
//! - [`fence`]: fence ids in queue order and per-timeline progress;
//! - [`device`]: negotiation, both queues, capsets and the command API.

pub mod command;
pub mod device;
pub mod dma;
pub mod error;
pub mod fence;
pub mod memory;
pub mod objects;
pub mod queue;
pub mod ratelimit;
pub mod reclaim;
pub mod resource;
pub mod scheme;
pub mod shape;
pub mod trace;
pub mod transport;

pub use command::{Completion, DeviceError, Payload, RequestId};
pub use device::{CapsetInfo, Gpu, GpuOptions, GpuStats, Pending};
pub use error::Error;
pub use fence::Timeline;
pub use resource::Resource;
