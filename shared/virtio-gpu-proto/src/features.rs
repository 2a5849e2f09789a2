//! Feature bits the driver negotiates with a virtio-gpu device.

use bitflags::bitflags;

bitflags! {
    /// Device feature bits: the GPU-specific ones of [§5.7.3] plus the generic
    /// virtio bits this driver has to reason about.
    ///
    /// Build values read from the device with [`Features::from_bits_retain`], so
    /// bits this crate does not name survive a round trip instead of being dropped.
    ///
    /// [§5.7.3]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Features: u64 {
        /// `VIRTIO_GPU_F_VIRGL`: 3D commands (0x02xx) and capsets are available.
        const VIRGL = 1 << 0;
        /// `VIRTIO_GPU_F_EDID`: `GET_EDID` is available.
        const EDID = 1 << 1;
        /// `VIRTIO_GPU_F_RESOURCE_UUID`: `RESOURCE_ASSIGN_UUID` is available.
        const RESOURCE_UUID = 1 << 2;
        /// `VIRTIO_GPU_F_RESOURCE_BLOB`: blob resources and `SET_SCANOUT_BLOB`,
        /// `RESOURCE_MAP_BLOB` / `RESOURCE_UNMAP_BLOB`.
        const RESOURCE_BLOB = 1 << 3;
        /// `VIRTIO_GPU_F_CONTEXT_INIT`: `ctx_create.context_init` is honoured and
        /// `FLAG_INFO_RING_IDX` may be used. The spec requires `VIRGL` with it.
        const CONTEXT_INIT = 1 << 4;
        /// `VIRTIO_RING_F_INDIRECT_DESC`: indirect descriptor tables.
        const RING_INDIRECT_DESC = 1 << 28;
        /// `VIRTIO_RING_F_EVENT_IDX`: used/avail event index notification suppression.
        const RING_EVENT_IDX = 1 << 29;
        /// `VIRTIO_F_VERSION_1`: a modern device. Must be negotiated; Linux refuses
        /// devices without it.
        const VERSION_1 = 1 << 32;
        /// `VIRTIO_F_ACCESS_PLATFORM`: the device goes through an IOMMU, so DMA
        /// addresses must be translated.
        const ACCESS_PLATFORM = 1 << 33;
    }
}
