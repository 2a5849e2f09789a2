//! The decoder of virtio-gpud's trace stream ([`decode`]): records of the
//! daemon's record codec (`virtio_gpud::trace::record`) as text lines,
//! details per command, JSON and filters, for the `gpu-trace` tool.

pub mod decode;
