//! Command and response type codes (`ctrl_hdr.type`).
//!
//! Both are open newtypes over `u32`, not Rust enums: the device writes the response
//! code, and a value outside the known set must be representable (and loggable)
//! rather than being undefined behaviour or a parse failure.

use core::fmt;

/// Defines a code newtype whose associated constants and [`name`](CommandType::name)
/// come from a single list, so the two cannot drift apart.
macro_rules! codes {
    (
        $(#[$meta:meta])*
        $name:ident {
            $($(#[$cmeta:meta])* $code:ident = $value:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(transparent)]
        pub struct $name(pub u32);

        impl $name {
            $($(#[$cmeta])* pub const $code: Self = Self($value);)*

            /// The code's name without the `VIRTIO_GPU_CMD_` or `VIRTIO_GPU_RESP_` prefix, or `"unknown"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$code => stringify!($code),)*
                    _ => "unknown",
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} ({:#06x})", self.name(), self.0)
            }
        }
    };
}

codes! {
    /// A request code, `VIRTIO_GPU_CMD_*` ([§5.7 Device Operation: Request header]).
    ///
    /// [§5.7 Device Operation: Request header]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
    CommandType {
        /// Query scanout geometry; answered with `RESP_OK_DISPLAY_INFO`.
        GET_DISPLAY_INFO = 0x0100,
        /// Create a host-side 2D resource.
        RESOURCE_CREATE_2D = 0x0101,
        /// Destroy a resource.
        RESOURCE_UNREF = 0x0102,
        /// Show a resource (region) on a scanout, or disable the scanout.
        SET_SCANOUT = 0x0103,
        /// Push a resource region to the display.
        RESOURCE_FLUSH = 0x0104,
        /// Copy guest backing memory into a 2D resource.
        TRANSFER_TO_HOST_2D = 0x0105,
        /// Attach guest pages as a resource's backing store.
        RESOURCE_ATTACH_BACKING = 0x0106,
        /// Detach a resource's backing store.
        RESOURCE_DETACH_BACKING = 0x0107,
        /// Query id, version and size of capset number `n`.
        GET_CAPSET_INFO = 0x0108,
        /// Fetch a capset's contents.
        GET_CAPSET = 0x0109,
        /// Fetch a scanout's EDID blob.
        GET_EDID = 0x010A,
        /// Get a UUID for sharing a resource with other virtio devices.
        RESOURCE_ASSIGN_UUID = 0x010B,
        /// Create a blob resource.
        RESOURCE_CREATE_BLOB = 0x010C,
        /// Scan out a blob resource with an explicit layout.
        SET_SCANOUT_BLOB = 0x010D,
        /// Create a 3D context.
        CTX_CREATE = 0x0200,
        /// Destroy a 3D context.
        CTX_DESTROY = 0x0201,
        /// Make a resource usable from a context.
        CTX_ATTACH_RESOURCE = 0x0202,
        /// Revoke a context's use of a resource.
        CTX_DETACH_RESOURCE = 0x0203,
        /// Create a host-side 3D (virgl) resource.
        RESOURCE_CREATE_3D = 0x0204,
        /// Copy guest backing memory into a 3D resource.
        TRANSFER_TO_HOST_3D = 0x0205,
        /// Copy a 3D resource into guest backing memory.
        TRANSFER_FROM_HOST_3D = 0x0206,
        /// Submit a command stream (virgl, venus, ...) to a context.
        SUBMIT_3D = 0x0207,
        /// Map a host-visible blob into the shared memory region.
        RESOURCE_MAP_BLOB = 0x0208,
        /// Undo `CMD_RESOURCE_MAP_BLOB`.
        RESOURCE_UNMAP_BLOB = 0x0209,
        /// Set the cursor image, hotspot and position (cursor queue).
        UPDATE_CURSOR = 0x0300,
        /// Move the cursor only (cursor queue).
        MOVE_CURSOR = 0x0301,
    }
}

impl CommandType {
    /// The virtqueue this command must be sent on: the cursor queue carries only the
    /// two cursor commands, everything else (including unknown codes) goes on the
    /// control queue.
    pub const fn queue(self) -> Queue {
        match self {
            Self::UPDATE_CURSOR | Self::MOVE_CURSOR => Queue::Cursor,
            _ => Queue::Control,
        }
    }
}

codes! {
    /// A response code, `VIRTIO_GPU_RESP_*`, as written by the device.
    ///
    /// [§5.7 Device Operation: Request header](https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007)
    ResponseType {
        /// Success, no payload.
        OK_NODATA = 0x1100,
        /// Success, `resp_display_info` follows.
        OK_DISPLAY_INFO = 0x1101,
        /// Success, `resp_capset_info` follows.
        OK_CAPSET_INFO = 0x1102,
        /// Success, capset data follows.
        OK_CAPSET = 0x1103,
        /// Success, `resp_edid` follows.
        OK_EDID = 0x1104,
        /// Success, `resp_resource_uuid` follows.
        OK_RESOURCE_UUID = 0x1105,
        /// Success, `resp_map_info` follows.
        OK_MAP_INFO = 0x1106,
        /// Unspecified failure.
        ERR_UNSPEC = 0x1200,
        /// The host ran out of memory.
        ERR_OUT_OF_MEMORY = 0x1201,
        /// The scanout id is out of range.
        ERR_INVALID_SCANOUT_ID = 0x1202,
        /// The resource id does not name a live resource.
        ERR_INVALID_RESOURCE_ID = 0x1203,
        /// The context id does not name a live context.
        ERR_INVALID_CONTEXT_ID = 0x1204,
        /// Some other parameter was rejected.
        ERR_INVALID_PARAMETER = 0x1205,
    }
}

impl ResponseType {
    /// Whether this is an error response. Like Linux, any code from 0x1200 up counts,
    /// so error codes added by newer devices are still recognised as errors.
    pub const fn is_error(self) -> bool {
        self.0 >= Self::ERR_UNSPEC.0
    }
}

/// The two virtqueues of a virtio-gpu device, with their queue indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    /// `controlq`: every command except the cursor ones.
    Control = 0,
    /// `cursorq`: `CMD_UPDATE_CURSOR` and `CMD_MOVE_CURSOR`.
    Cursor = 1,
}

impl Queue {
    /// The virtqueue index to select in the transport.
    pub const fn index(self) -> u16 {
        self as u16
    }
}
