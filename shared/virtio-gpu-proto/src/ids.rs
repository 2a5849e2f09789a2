//! Identifier newtypes, one per kind of id, so a context id can never be passed
//! where a resource id is expected.

use core::num::NonZeroU32;

/// Defines an id for which 0 is reserved, so `Option<Id>` is free and "no id"
/// cannot be confused with a real one.
macro_rules! nonzero_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(transparent)]
        pub struct $name(NonZeroU32);

        impl $name {
            /// Wraps a raw id; `None` for 0, which the protocol reserves.
            pub const fn new(raw: u32) -> Option<Self> {
                match NonZeroU32::new(raw) {
                    Some(id) => Some(Self(id)),
                    None => None,
                }
            }

            /// The raw value as it goes on the wire.
            pub const fn get(self) -> u32 {
                self.0.get()
            }
        }
    };
}

/// Defines an id for which every value, including 0, is meaningful.
macro_rules! plain_id {
    ($(#[$meta:meta])* $name:ident($raw:ty)) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(transparent)]
        pub struct $name($raw);

        impl $name {
            /// Wraps a raw id.
            pub const fn new(raw: $raw) -> Self {
                Self(raw)
            }

            /// The raw value as it goes on the wire.
            pub const fn get(self) -> $raw {
                self.0
            }
        }
    };
}

nonzero_id! {
    /// A host resource id. 0 means "no resource" on the wire (e.g. disabling a
    /// scanout or hiding the cursor), which callers express as `Option<ResourceId>`.
    ResourceId
}

nonzero_id! {
    /// A 3D rendering context id (`ctrl_hdr.ctx_id`). 0 is the global, context-less
    /// namespace used by 2D commands.
    CtxId
}

plain_id! {
    /// A fence sequence number (`ctrl_hdr.fence_id`), meaningful only while the
    /// header's `FLAG_FENCE` is set.
    FenceId(u64)
}

plain_id! {
    /// A scanout (display head) index, `0..num_scanouts`.
    ScanoutId(u32)
}

plain_id! {
    /// A capability-set id as reported by `GET_CAPSET_INFO`; also the value in the low
    /// byte of `ctx_create.context_init`.
    CapsetId(u32)
}

impl CapsetId {
    /// `VIRTIO_GPU_CAPSET_VIRGL`: the original virgl caps (`virgl_caps_v1`).
    pub const VIRGL: Self = Self(1);
    /// `VIRTIO_GPU_CAPSET_VIRGL2`: extended virgl caps (`virgl_caps_v2`).
    pub const VIRGL2: Self = Self(2);
    /// `VIRTIO_GPU_CAPSET_GFXSTREAM_VULKAN`.
    pub const GFXSTREAM_VULKAN: Self = Self(3);
    /// `VIRTIO_GPU_CAPSET_VENUS` (Vulkan over virtio-gpu).
    pub const VENUS: Self = Self(4);
    /// `VIRTIO_GPU_CAPSET_CROSS_DOMAIN`.
    pub const CROSS_DOMAIN: Self = Self(5);
    /// `VIRTGPU_DRM_CAPSET_DRM` (native contexts); defined only in the DRM UAPI header.
    pub const DRM: Self = Self(6);
}
