//! The device-specific configuration space.

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `VIRTIO_GPU_EVENT_DISPLAY`: bit in `events_read`/`events_clear` signalling that the
/// display configuration changed and `GET_DISPLAY_INFO` (and `GET_EDID`) should be
/// re-issued.
pub const EVENT_DISPLAY: u32 = 1 << 0;

/// `VIRTIO_GPU_MAX_SCANOUTS`: the protocol's upper bound on `num_scanouts`; a device
/// reporting more is clamped (as Linux does) because `resp_display_info` has room
/// for only this many.
pub const MAX_SCANOUTS: usize = 16;

/// `struct virtio_gpu_config`, 16 bytes ([§5.7.4 Device configuration layout]).
///
/// [§5.7.4 Device configuration layout]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct GpuConfig {
    /// Pending events (read-only); see [`EVENT_DISPLAY`].
    pub events_read: U32,
    /// Write 1-bits here to acknowledge events.
    pub events_clear: U32,
    /// Number of scanouts, 1..=16; 0 means the device has no display.
    pub num_scanouts: U32,
    /// Number of capsets, queried by index with `GET_CAPSET_INFO`.
    pub num_capsets: U32,
}

const _: () = assert!(core::mem::size_of::<GpuConfig>() == 16);
