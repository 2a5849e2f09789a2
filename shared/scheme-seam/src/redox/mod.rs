//! Redox: the adapter to redox-scheme and the libredox client.
