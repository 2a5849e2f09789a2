//! An encoder for virgl command streams: the payload of SUBMIT_3D and of
//! the VIRTGPU_EXECBUFFER ioctl (virglrenderer `virgl_protocol.h`; ABI
//! reference §5).
//!
//! Only the commands this project's tools and tests emit are here; Mesa
//! encodes real workloads itself. Lengths are computed by the encoder, since
//! one wrong length puts the whole host context into an error state.
//!
//! [`names`] goes the other way: opcode and object names for every command
//! of the protocol, and a walker over a stream's commands (for traces).
//! [`walk`] is the validating counterpart: it refuses any stream whose
//! framing or command lengths the host decoder would reject, and lists the
//! resources the stream names. [`formats`] gives the block layout of every
//! resource format, for sizing resources and transfers.

#![forbid(unsafe_code)]

pub mod formats;
pub mod names;
pub mod walk;

/// Opcodes (`enum virgl_context_cmd`).
pub mod cmd {
    /// CREATE_OBJECT.
    pub const CREATE_OBJECT: u8 = 1;
    /// DESTROY_OBJECT.
    pub const DESTROY_OBJECT: u8 = 3;
    /// SET_FRAMEBUFFER_STATE.
    pub const SET_FRAMEBUFFER_STATE: u8 = 5;
    /// CLEAR.
    pub const CLEAR: u8 = 7;
    /// RESOURCE_COPY_REGION.
    pub const RESOURCE_COPY_REGION: u8 = 17;
    /// SET_SUB_CTX.
    pub const SET_SUB_CTX: u8 = 28;
    /// CREATE_SUB_CTX.
    pub const CREATE_SUB_CTX: u8 = 29;
    /// DESTROY_SUB_CTX.
    pub const DESTROY_SUB_CTX: u8 = 30;
}

/// Object types (`enum virgl_object_type`).
pub mod object {
    /// A surface (render target view).
    pub const SURFACE: u8 = 8;
}

/// Resource formats (`enum virgl_formats`, equal to Gallium's).
pub mod format {
    /// B8G8R8A8_UNORM: bytes B, G, R, A.
    pub const B8G8R8A8_UNORM: u32 = 1;
    /// B8G8R8X8_UNORM: bytes B, G, R, x.
    pub const B8G8R8X8_UNORM: u32 = 2;
    /// R8G8B8A8_UNORM: bytes R, G, B, A.
    pub const R8G8B8A8_UNORM: u32 = 67;
}

/// Bind flags (`VIRGL_BIND_*`).
pub mod bind {
    /// Usable as a render target.
    pub const RENDER_TARGET: u32 = 1 << 1;
    /// Usable as a sampler view.
    pub const SAMPLER_VIEW: u32 = 1 << 3;
    /// Scanned out by the display (`VIRGL_BIND_SCANOUT`).
    pub const SCANOUT: u32 = 1 << 19;
}

/// Texture targets (`enum pipe_texture_target`).
pub mod target {
    /// A buffer.
    pub const BUFFER: u32 = 0;
    /// A 2D texture.
    pub const TEXTURE_2D: u32 = 2;
}

/// Buffers CLEAR acts on (`PIPE_CLEAR_*`).
pub mod clear {
    /// The depth buffer.
    pub const DEPTH: u32 = 1;
    /// The stencil buffer.
    pub const STENCIL: u32 = 2;
    /// Colour buffer 0.
    pub const COLOR0: u32 = 4;
}

/// Largest payload of one command: the header's length field is 16 bits.
const MAX_PAYLOAD: usize = u16::MAX as usize;

/// A command stream under construction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    words: Vec<u32>,
}

impl Stream {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a command: `VIRGL_CMD0(cmd, obj, len)` then `payload`.
    ///
    /// # Panics
    ///
    /// If `payload` is longer than the 16-bit length field can say; the
    /// commands here are all a few words long.
    pub fn command(&mut self, cmd: u8, obj: u8, payload: &[u32]) -> &mut Self {
        assert!(payload.len() <= MAX_PAYLOAD, "virgl command too long");
        let header = u32::from(cmd) | u32::from(obj) << 8 | (payload.len() as u32) << 16;
        self.words.push(header);
        self.words.extend_from_slice(payload);
        self
    }

    /// CREATE_SUB_CTX `id` (Mesa starts every context with it and SET_SUB_CTX).
    pub fn create_sub_ctx(&mut self, id: u32) -> &mut Self {
        self.command(cmd::CREATE_SUB_CTX, 0, &[id])
    }

    /// SET_SUB_CTX `id`.
    pub fn set_sub_ctx(&mut self, id: u32) -> &mut Self {
        self.command(cmd::SET_SUB_CTX, 0, &[id])
    }

    /// DESTROY_SUB_CTX `id`.
    pub fn destroy_sub_ctx(&mut self, id: u32) -> &mut Self {
        self.command(cmd::DESTROY_SUB_CTX, 0, &[id])
    }

    /// CREATE_OBJECT SURFACE `handle` viewing level `level`, layer 0 of the
    /// texture resource `res` (a device resource id) as `format`.
    pub fn create_surface(&mut self, handle: u32, res: u32, format: u32, level: u32) -> &mut Self {
        self.command(
            cmd::CREATE_OBJECT,
            object::SURFACE,
            &[handle, res, format, level, 0],
        )
    }

    /// SET_FRAMEBUFFER_STATE with colour buffers `cbufs` and depth surface
    /// `zsurf` (0 for none).
    pub fn set_framebuffer_state(&mut self, zsurf: u32, cbufs: &[u32]) -> &mut Self {
        let mut payload = vec![cbufs.len() as u32, zsurf];
        payload.extend_from_slice(cbufs);
        self.command(cmd::SET_FRAMEBUFFER_STATE, 0, &payload)
    }

    /// CLEAR `buffers` (`clear::*`) to `rgba`, `depth` and `stencil`.
    pub fn clear(&mut self, buffers: u32, rgba: [f32; 4], depth: f64, stencil: u32) -> &mut Self {
        let d = depth.to_bits();
        let [r, g, b, a] = rgba.map(f32::to_bits);
        self.command(
            cmd::CLEAR,
            0,
            &[buffers, r, g, b, a, d as u32, (d >> 32) as u32, stencil],
        )
    }

    /// RESOURCE_COPY_REGION: copies the box `src_box` (x, y, z, w, h, d) of
    /// level `src_level` of resource `src` to (`x`, `y`, `z`) of level
    /// `dst_level` of resource `dst` (device resource ids).
    pub fn resource_copy_region(
        &mut self,
        dst: u32,
        dst_level: u32,
        [x, y, z]: [u32; 3],
        src: u32,
        src_level: u32,
        src_box: [u32; 6],
    ) -> &mut Self {
        let [bx, by, bz, w, h, d] = src_box;
        self.command(
            cmd::RESOURCE_COPY_REGION,
            0,
            &[dst, dst_level, x, y, z, src, src_level, bx, by, bz, w, h, d],
        )
    }

    /// DESTROY_OBJECT `handle` (of any type).
    pub fn destroy_object(&mut self, handle: u32) -> &mut Self {
        self.command(cmd::DESTROY_OBJECT, 0, &[handle])
    }

    /// The stream as dwords.
    pub fn words(&self) -> &[u32] {
        &self.words
    }

    /// The stream as little-endian bytes, as the device reads it.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }
}

/// The stream of ABI reference §5.5 as a client's whole submit: in
/// sub-context 1, clear colour buffer `res` (a render target of `format`)
/// to `rgba` through surface 1, destroyed again afterwards.
pub fn clear_stream(res: u32, format: u32, rgba: [f32; 4]) -> Vec<u8> {
    let mut s = Stream::new();
    s.create_sub_ctx(1)
        .set_sub_ctx(1)
        .create_surface(1, res, format, 0)
        .set_framebuffer_state(0, &[1])
        .clear(clear::COLOR0, rgba, 0.0, 0)
        .destroy_object(1);
    s.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clear stream of ABI reference §5.5, dword by dword.
    #[test]
    fn clear_stream_matches_the_reference_encoding() {
        let res = 42;
        let bytes = clear_stream(res, format::R8G8B8A8_UNORM, [1.0, 0.0, 0.0, 1.0]);
        let words: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes(w.try_into().unwrap()))
            .collect();
        let expected = [
            0x0001_001D,
            1,
            0x0001_001C,
            1,
            0x0005_0801,
            1,
            res,
            67,
            0,
            0,
            0x0003_0005,
            1,
            0,
            1,
            0x0008_0007,
            4,
            0x3F80_0000,
            0,
            0,
            0x3F80_0000,
            0,
            0,
            0,
            // The surface is destroyed again.
            0x0001_0003,
            1,
        ];
        assert_eq!(words, expected);
        assert_eq!(&bytes[..4], &[0x1D, 0x00, 0x01, 0x00]);
    }

    #[test]
    fn depth_is_a_little_endian_double() {
        let mut s = Stream::new();
        s.clear(clear::DEPTH, [0.0; 4], 1.0, 7);
        let bits = 1.0f64.to_bits();
        assert_eq!(&s.words()[6..9], &[bits as u32, (bits >> 32) as u32, 7]);
    }

    #[test]
    fn copy_region_has_thirteen_payload_dwords_in_decoder_order() {
        let mut s = Stream::new();
        s.resource_copy_region(7, 0, [1, 2, 0], 9, 0, [0, 0, 0, 4, 4, 1]);
        assert_eq!(s.words()[0], 0x000D_0011);
        assert_eq!(&s.words()[1..], &[7, 0, 1, 2, 0, 9, 0, 0, 0, 0, 4, 4, 1]);
    }

    #[test]
    fn destroy_encodes_as_the_reference_cleanup() {
        let mut s = Stream::new();
        s.destroy_object(1);
        assert_eq!(s.words(), &[0x0001_0003, 1]);
    }
}
