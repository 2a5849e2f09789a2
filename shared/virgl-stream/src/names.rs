//! Names for what a virgl stream holds, and a walker over its commands: the
//! decoding side, for traces and logs (virglrenderer `virgl_protocol.h`,
//! `virgl_hw.h`; ABI reference §5.2 and §5.4).
//!
//! Nothing here trusts the stream: [`commands`] stops where a command's
//! length runs past the end, and every name lookup answers `None` for a
//! value it does not know.

/// Opcode names (`enum virgl_context_cmd` without `VIRGL_CCMD_`), by value.
const OPCODES: [&str; 64] = [
    "NOP",
    "CREATE_OBJECT",
    "BIND_OBJECT",
    "DESTROY_OBJECT",
    "SET_VIEWPORT_STATE",
    "SET_FRAMEBUFFER_STATE",
    "SET_VERTEX_BUFFERS",
    "CLEAR",
    "DRAW_VBO",
    "RESOURCE_INLINE_WRITE",
    "SET_SAMPLER_VIEWS",
    "SET_INDEX_BUFFER",
    "SET_CONSTANT_BUFFER",
    "SET_STENCIL_REF",
    "SET_BLEND_COLOR",
    "SET_SCISSOR_STATE",
    "BLIT",
    "RESOURCE_COPY_REGION",
    "BIND_SAMPLER_STATES",
    "BEGIN_QUERY",
    "END_QUERY",
    "GET_QUERY_RESULT",
    "SET_POLYGON_STIPPLE",
    "SET_CLIP_STATE",
    "SET_SAMPLE_MASK",
    "SET_STREAMOUT_TARGETS",
    "SET_RENDER_CONDITION",
    "SET_UNIFORM_BUFFER",
    "SET_SUB_CTX",
    "CREATE_SUB_CTX",
    "DESTROY_SUB_CTX",
    "BIND_SHADER",
    "SET_TESS_STATE",
    "SET_MIN_SAMPLES",
    "SET_SHADER_BUFFERS",
    "SET_SHADER_IMAGES",
    "MEMORY_BARRIER",
    "LAUNCH_GRID",
    "SET_FRAMEBUFFER_STATE_NO_ATTACH",
    "TEXTURE_BARRIER",
    "SET_ATOMIC_BUFFERS",
    "SET_DEBUG_FLAGS",
    "GET_QUERY_RESULT_QBO",
    "TRANSFER3D",
    "END_TRANSFERS",
    "COPY_TRANSFER3D",
    "SET_TWEAKS",
    "CLEAR_TEXTURE",
    "PIPE_RESOURCE_CREATE",
    "PIPE_RESOURCE_SET_TYPE",
    "GET_MEMORY_INFO",
    "SEND_STRING_MARKER",
    "LINK_SHADER",
    "CREATE_VIDEO_CODEC",
    "DESTROY_VIDEO_CODEC",
    "CREATE_VIDEO_BUFFER",
    "DESTROY_VIDEO_BUFFER",
    "BEGIN_FRAME",
    "DECODE_MACROBLOCK",
    "DECODE_BITSTREAM",
    "ENCODE_BITSTREAM",
    "END_FRAME",
    "CLEAR_SURFACE",
    "GET_PIPE_RESOURCE_LAYOUT",
];

/// Object type names (`enum virgl_object_type` without `VIRGL_OBJECT_`).
const OBJECTS: [&str; 12] = [
    "NULL",
    "BLEND",
    "RASTERIZER",
    "DSA",
    "SHADER",
    "VERTEX_ELEMENTS",
    "SAMPLER_VIEW",
    "SAMPLER_STATE",
    "SURFACE",
    "QUERY",
    "STREAMOUT_TARGET",
    "MSAA_SURFACE",
];

/// The name of opcode `op` (`VIRGL_CCMD_*` without the prefix), or `None`
/// from 64 on. Ids 62 and 63 are newer than virglrenderer 0.10.4, whose
/// `VIRGL_MAX_COMMANDS` is 62: that host rejects them ([`crate::walk`]).
pub fn opcode_name(op: u8) -> Option<&'static str> {
    OPCODES.get(usize::from(op)).copied()
}

/// The name of object type `obj` (`VIRGL_OBJECT_*` without the prefix), or
/// `None` from `VIRGL_MAX_OBJECTS` (12) on.
pub fn object_name(obj: u8) -> Option<&'static str> {
    OBJECTS.get(usize::from(obj)).copied()
}

/// The name of a common resource format (`VIRGL_FORMAT_*` without the
/// prefix, equal to Gallium's numbering), or `None` for the many others.
pub fn format_name(format: u32) -> Option<&'static str> {
    Some(match format {
        0 => "NONE",
        1 => "B8G8R8A8_UNORM",
        2 => "B8G8R8X8_UNORM",
        3 => "A8R8G8B8_UNORM",
        4 => "X8R8G8B8_UNORM",
        5 => "B5G5R5A1_UNORM",
        6 => "B4G4R4A4_UNORM",
        7 => "B5G6R5_UNORM",
        8 => "R10G10B10A2_UNORM",
        9 => "L8_UNORM",
        10 => "A8_UNORM",
        12 => "L8A8_UNORM",
        16 => "Z16_UNORM",
        17 => "Z32_UNORM",
        18 => "Z32_FLOAT",
        19 => "Z24_UNORM_S8_UINT",
        20 => "S8_UINT_Z24_UNORM",
        21 => "Z24X8_UNORM",
        22 => "X8Z24_UNORM",
        23 => "S8_UINT",
        28 => "R32_FLOAT",
        29 => "R32G32_FLOAT",
        30 => "R32G32B32_FLOAT",
        31 => "R32G32B32A32_FLOAT",
        48 => "R16_UNORM",
        49 => "R16G16_UNORM",
        51 => "R16G16B16A16_UNORM",
        64 => "R8_UNORM",
        65 => "R8G8_UNORM",
        66 => "R8G8B8_UNORM",
        67 => "R8G8B8A8_UNORM",
        68 => "X8B8G8R8_UNORM",
        91 => "R16_FLOAT",
        92 => "R16G16_FLOAT",
        94 => "R16G16B16A16_FLOAT",
        100 => "B8G8R8A8_SRGB",
        101 => "B8G8R8X8_SRGB",
        104 => "R8G8B8A8_SRGB",
        121 => "A8B8G8R8_UNORM",
        126 => "Z32_FLOAT_S8X24_UINT",
        131 => "B10G10R10A2_UNORM",
        134 => "R8G8B8X8_UNORM",
        177 => "R8_UINT",
        180 => "R8G8B8A8_UINT",
        193 => "R32_UINT",
        196 => "R32G32B32A32_UINT",
        _ => return None,
    })
}

/// The name of a texture target (`enum pipe_texture_target` without
/// `PIPE_`/`PIPE_TEXTURE_`), or `None` from `PIPE_MAX_TEXTURE_TYPES` (9) on.
pub fn target_name(target: u32) -> Option<&'static str> {
    const TARGETS: [&str; 9] = [
        "BUFFER",
        "1D",
        "2D",
        "3D",
        "CUBE",
        "RECT",
        "1D_ARRAY",
        "2D_ARRAY",
        "CUBE_ARRAY",
    ];
    TARGETS.get(usize::try_from(target).ok()?).copied()
}

/// The commands of a stream, from [`commands`]: each as (opcode, object
/// type, payload length in dwords), the fields of its header dword.
#[derive(Clone, Debug)]
pub struct Commands<'a> {
    stream: &'a [u8],
    at: usize,
}

impl Commands<'_> {
    /// Bytes walked so far: after the last command yielded. Equal to the
    /// stream's length once the walk ended, unless the stream ends inside a
    /// command (cut, or a length running past the end) or in a partial
    /// dword.
    pub fn offset(&self) -> usize {
        self.at
    }
}

impl Iterator for Commands<'_> {
    type Item = (u8, u8, u16);

    fn next(&mut self) -> Option<(u8, u8, u16)> {
        let header = self.stream.get(self.at..self.at.checked_add(4)?)?;
        let word = u32::from_le_bytes(header.try_into().ok()?);
        let (op, obj, len) = (word as u8, (word >> 8) as u8, (word >> 16) as u16);
        let end = self.at + 4 + 4 * usize::from(len);
        if end > self.stream.len() {
            return None;
        }
        self.at = end;
        Some((op, obj, len))
    }
}

/// Walks the commands of `stream` (little-endian dwords, as the device
/// reads them), stopping at the end or where a command's length runs past
/// it. Never panics, whatever the bytes.
pub fn commands(stream: &[u8]) -> Commands<'_> {
    Commands { stream, at: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{clear_stream, cmd, format, object, Stream};

    #[test]
    fn names_match_the_encoder_constants_and_the_reference() {
        assert_eq!(opcode_name(cmd::CREATE_OBJECT), Some("CREATE_OBJECT"));
        assert_eq!(opcode_name(cmd::DESTROY_OBJECT), Some("DESTROY_OBJECT"));
        assert_eq!(
            opcode_name(cmd::SET_FRAMEBUFFER_STATE),
            Some("SET_FRAMEBUFFER_STATE")
        );
        assert_eq!(opcode_name(cmd::CLEAR), Some("CLEAR"));
        assert_eq!(
            opcode_name(cmd::RESOURCE_COPY_REGION),
            Some("RESOURCE_COPY_REGION")
        );
        assert_eq!(opcode_name(cmd::SET_SUB_CTX), Some("SET_SUB_CTX"));
        assert_eq!(opcode_name(cmd::CREATE_SUB_CTX), Some("CREATE_SUB_CTX"));
        assert_eq!(opcode_name(cmd::DESTROY_SUB_CTX), Some("DESTROY_SUB_CTX"));
        // ABI reference §5.2, a few from each column.
        assert_eq!(opcode_name(0), Some("NOP"));
        assert_eq!(opcode_name(8), Some("DRAW_VBO"));
        assert_eq!(opcode_name(27), Some("SET_UNIFORM_BUFFER"));
        assert_eq!(opcode_name(43), Some("TRANSFER3D"));
        assert_eq!(opcode_name(47), Some("CLEAR_TEXTURE"));
        assert_eq!(opcode_name(52), Some("LINK_SHADER"));
        assert_eq!(opcode_name(53), Some("CREATE_VIDEO_CODEC"));
        assert_eq!(opcode_name(61), Some("END_FRAME"));
        assert_eq!(opcode_name(62), Some("CLEAR_SURFACE"));
        assert_eq!(opcode_name(63), Some("GET_PIPE_RESOURCE_LAYOUT"));
        assert_eq!(opcode_name(64), None);
        assert_eq!(opcode_name(255), None);

        assert_eq!(object_name(object::SURFACE), Some("SURFACE"));
        assert_eq!(object_name(0), Some("NULL"));
        assert_eq!(object_name(11), Some("MSAA_SURFACE"));
        assert_eq!(object_name(12), None);

        assert_eq!(format_name(format::R8G8B8A8_UNORM), Some("R8G8B8A8_UNORM"));
        assert_eq!(format_name(format::B8G8R8A8_UNORM), Some("B8G8R8A8_UNORM"));
        assert_eq!(format_name(format::B8G8R8X8_UNORM), Some("B8G8R8X8_UNORM"));
        assert_eq!(format_name(100_000), None);
        assert_eq!(target_name(crate::target::TEXTURE_2D), Some("2D"));
        assert_eq!(target_name(crate::target::BUFFER), Some("BUFFER"));
        assert_eq!(target_name(9), None);
    }

    #[test]
    fn the_clear_stream_walks_command_by_command() {
        let bytes = clear_stream(42, format::R8G8B8A8_UNORM, [1.0, 0.0, 0.0, 1.0]);
        let mut walk = commands(&bytes);
        let got: Vec<_> = walk.by_ref().collect();
        assert_eq!(
            got,
            [
                (cmd::CREATE_SUB_CTX, 0, 1),
                (cmd::SET_SUB_CTX, 0, 1),
                (cmd::CREATE_OBJECT, object::SURFACE, 5),
                (cmd::SET_FRAMEBUFFER_STATE, 0, 3),
                (cmd::CLEAR, 0, 8),
                (cmd::DESTROY_OBJECT, 0, 1),
            ]
        );
        assert_eq!(walk.offset(), bytes.len());
        let names: Vec<_> = got.iter().filter_map(|c| opcode_name(c.0)).collect();
        assert_eq!(
            names,
            [
                "CREATE_SUB_CTX",
                "SET_SUB_CTX",
                "CREATE_OBJECT",
                "SET_FRAMEBUFFER_STATE",
                "CLEAR",
                "DESTROY_OBJECT"
            ]
        );
    }

    #[test]
    fn a_cut_stream_stops_before_the_cut_command() {
        let bytes = clear_stream(42, format::R8G8B8A8_UNORM, [0.0; 4]);
        // Cut inside CLEAR (dwords 14..23): three whole commands before it.
        let cut = &bytes[..4 * 17];
        let mut walk = commands(cut);
        assert_eq!(walk.by_ref().count(), 4);
        assert_eq!(walk.offset(), 4 * 14);
        // A partial header dword is not a command either.
        assert_eq!(commands(&bytes[..10]).count(), 1);
    }

    #[test]
    fn garbage_never_panics() {
        assert_eq!(commands(&[]).count(), 0);
        assert_eq!(commands(&[1, 2, 3]).count(), 0);
        // A length of 0xffff dwords with nothing after it.
        assert_eq!(commands(&[0xff, 0xff, 0xff, 0xff]).count(), 0);
        // Zero dwords are NOPs of length 0.
        assert_eq!(commands(&[0; 12]).count(), 3);
        let mut x: u32 = 0x1234_5678;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for start in 0..16 {
            let mut walk = commands(&noise[start..]);
            for (op, _, _) in walk.by_ref() {
                let _ = opcode_name(op);
            }
            assert!(walk.offset() <= noise.len() - start);
        }
        let mut s = Stream::new();
        s.command(200, 99, &[1, 2]);
        let got: Vec<_> = commands(&s.to_bytes()).collect();
        assert_eq!(got, [(200, 99, 2)]);
        assert_eq!((opcode_name(200), object_name(99)), (None, None));
    }
}
