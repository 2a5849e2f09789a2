//! The fuzz targets' code, one module per target (`fuzz_targets/*.rs` are
//! one-line wrappers around each module's `run`), and the encoders of
//! their input formats, which the seed generator (`src/bin/seeds.rs`)
//! shares so that seeds and targets agree on the layout.
//!
//! Every target checks more than "does not panic": each compares what the
//! decoder did with an independent model of what it should do (the layout
//! a payload's counts imply, frames found in the whole stream, the chains
//! a queue has in flight, ...), and panics, which libFuzzer reports as a
//! crash, when they disagree.

pub mod alloc_count;
pub mod bus_frames;
pub mod bus_journal;
pub mod capset;
pub mod drm_handlers;
pub mod drm_wire;
pub mod edid;
pub mod pci_caps;
pub mod recovery_log;
pub mod session_admission;
pub mod syncd_calls;
pub mod trace_decode;
pub mod used_ring;
pub mod virgl_walk;

/// A target's entry point.
pub type Target = fn(&[u8]);

/// The targets, by name, with their entry points (for the seed
/// generator's self-check).
pub const TARGETS: &[(&str, Target)] = &[
    ("drm_wire", drm_wire::run),
    ("bus_frames", bus_frames::run),
    ("bus_journal", bus_journal::run),
    ("session_admission", session_admission::run),
    ("syncd_calls", syncd_calls::run),
    ("used_ring", used_ring::run),
    ("capset", capset::run),
    ("virgl_walk", virgl_walk::run),
    ("trace_decode", trace_decode::run),
    ("drm_handlers", drm_handlers::run),
    ("edid", edid::run),
    ("pci_caps", pci_caps::run),
    ("recovery_log", recovery_log::run),
];

/// Whether `VGPU_FUZZ_DEBUG` is set: targets then print what each
/// operation did (to see what a seed or a crashing input does).
pub fn debug() -> bool {
    static DEBUG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("VGPU_FUZZ_DEBUG").is_some())
}

/// A cursor over the fuzzer's bytes: every read succeeds, with zeros once
/// the input is used up, so a target never has to give up half-way.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads `data` from the start.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Bytes not read yet.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// The next byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        let (&b, rest) = self.data.split_first().unwrap_or((&0, &[]));
        self.data = rest;
        b
    }

    /// The next little-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next little-endian `u32`.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// The next little-endian `u64`.
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }

    /// Up to `n` next bytes (fewer at the end).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// A byte string prefixed by its `u16` length.
    pub fn bytes16(&mut self) -> &'a [u8] {
        let n = usize::from(self.u16());
        self.take(n)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Builds inputs for [`Input`] (the seed generator's side).
#[derive(Debug, Clone, Default)]
pub struct Writer {
    /// The input so far.
    pub bytes: Vec<u8>,
}

impl Writer {
    /// An empty input.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes.push(v);
        self
    }

    /// Appends a little-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends a little-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends a little-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends raw bytes.
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(v);
        self
    }

    /// Appends a byte string with its `u16` length (see [`Input::bytes16`]).
    pub fn bytes16(&mut self, v: &[u8]) -> &mut Self {
        let n = u16::try_from(v.len()).expect("seed part below 64 KiB");
        self.u16(n).raw(v)
    }

    /// The finished input.
    pub fn build(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
}
