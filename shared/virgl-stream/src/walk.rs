//! A validating walker over a SUBMIT_3D command stream: it refuses every
//! stream that virglrenderer 0.10.4's decoder would stop on for framing or
//! length reasons, and lists the resources the stream names.
//!
//! One bad length is fatal on the host: `vrend_decode_ctx_submit_cmd` marks
//! the context as in error and the context refuses every later submit and
//! transfer, silently (host-validation §4.2). So [`walk`] checks, before a
//! stream is sent:
//! - the framing: a whole number of dwords, no command running past the
//!   end, no command id the host does not know (62 and up), no video
//!   command (the backend never initialises video, §4.3);
//! - every per-command rule of `vrend_decode.c` that depends on the stream
//!   alone: payload lengths (equal, at least, one of, or a base plus a
//!   multiple), the counts and slot ranges the decoder bounds, shader
//!   stages, object types, and the field values the decoder refuses;
//! - the few such rules that the renderer applies right behind the decoder
//!   with the same effect (scissor slots, sampler-state slots, the number
//!   of vertex elements), each marked where it is checked;
//! - the chunk rules of shader uploads (`vrend_create_shader`), as far as a
//!   single stream can see them.
//!
//! It does not check what needs the host's state: whether handles name
//! live objects or resources attached to the context (the caller checks
//! [`Summary::resources`]), transfer boxes against resource sizes, formats,
//! or host features. Line numbers below are those of virglrenderer 0.10.4's
//! `src/vrend_decode.c` unless a file is named.
//!
//! The walk is linear in the stream's length and never panics, whatever the
//! bytes.

use std::collections::HashSet;
use std::fmt;

use crate::names::{object_name, opcode_name};

/// Command ids (`enum virgl_context_cmd`, virgl_protocol.h:65-133).
mod op {
    pub const NOP: u8 = 0;
    pub const CREATE_OBJECT: u8 = 1;
    pub const BIND_OBJECT: u8 = 2;
    pub const DESTROY_OBJECT: u8 = 3;
    pub const SET_VIEWPORT_STATE: u8 = 4;
    pub const SET_FRAMEBUFFER_STATE: u8 = 5;
    pub const SET_VERTEX_BUFFERS: u8 = 6;
    pub const CLEAR: u8 = 7;
    pub const DRAW_VBO: u8 = 8;
    pub const RESOURCE_INLINE_WRITE: u8 = 9;
    pub const SET_SAMPLER_VIEWS: u8 = 10;
    pub const SET_INDEX_BUFFER: u8 = 11;
    pub const SET_CONSTANT_BUFFER: u8 = 12;
    pub const SET_STENCIL_REF: u8 = 13;
    pub const SET_BLEND_COLOR: u8 = 14;
    pub const SET_SCISSOR_STATE: u8 = 15;
    pub const BLIT: u8 = 16;
    pub const RESOURCE_COPY_REGION: u8 = 17;
    pub const BIND_SAMPLER_STATES: u8 = 18;
    pub const BEGIN_QUERY: u8 = 19;
    pub const END_QUERY: u8 = 20;
    pub const GET_QUERY_RESULT: u8 = 21;
    pub const SET_POLYGON_STIPPLE: u8 = 22;
    pub const SET_CLIP_STATE: u8 = 23;
    pub const SET_SAMPLE_MASK: u8 = 24;
    pub const SET_STREAMOUT_TARGETS: u8 = 25;
    pub const SET_RENDER_CONDITION: u8 = 26;
    pub const SET_UNIFORM_BUFFER: u8 = 27;
    pub const SET_SUB_CTX: u8 = 28;
    pub const CREATE_SUB_CTX: u8 = 29;
    pub const DESTROY_SUB_CTX: u8 = 30;
    pub const BIND_SHADER: u8 = 31;
    pub const SET_TESS_STATE: u8 = 32;
    pub const SET_MIN_SAMPLES: u8 = 33;
    pub const SET_SHADER_BUFFERS: u8 = 34;
    pub const SET_SHADER_IMAGES: u8 = 35;
    pub const MEMORY_BARRIER: u8 = 36;
    pub const LAUNCH_GRID: u8 = 37;
    pub const SET_FRAMEBUFFER_STATE_NO_ATTACH: u8 = 38;
    pub const TEXTURE_BARRIER: u8 = 39;
    pub const SET_ATOMIC_BUFFERS: u8 = 40;
    pub const SET_DEBUG_FLAGS: u8 = 41;
    pub const GET_QUERY_RESULT_QBO: u8 = 42;
    pub const TRANSFER3D: u8 = 43;
    pub const END_TRANSFERS: u8 = 44;
    pub const COPY_TRANSFER3D: u8 = 45;
    pub const SET_TWEAKS: u8 = 46;
    pub const CLEAR_TEXTURE: u8 = 47;
    pub const PIPE_RESOURCE_CREATE: u8 = 48;
    pub const PIPE_RESOURCE_SET_TYPE: u8 = 49;
    pub const GET_MEMORY_INFO: u8 = 50;
    pub const SEND_STRING_MARKER: u8 = 51;
    pub const LINK_SHADER: u8 = 52;
    /// CREATE_VIDEO_CODEC, the first video command.
    pub const FIRST_VIDEO: u8 = 53;
    /// END_FRAME, the last video command.
    pub const LAST_VIDEO: u8 = 61;
}

/// `VIRGL_MAX_COMMANDS` in 0.10.4: the decoder refuses any id from here on
/// (1926-1927). Later releases added ids 62 and 63.
pub const MAX_COMMANDS: u8 = 62;

/// Object types (`enum virgl_object_type`, virgl_protocol.h).
mod obj {
    pub const BLEND: u8 = 1;
    pub const RASTERIZER: u8 = 2;
    pub const DSA: u8 = 3;
    pub const SHADER: u8 = 4;
    pub const VERTEX_ELEMENTS: u8 = 5;
    pub const SAMPLER_VIEW: u8 = 6;
    pub const SAMPLER_STATE: u8 = 7;
    pub const SURFACE: u8 = 8;
    pub const QUERY: u8 = 9;
    pub const STREAMOUT_TARGET: u8 = 10;
    pub const MSAA_SURFACE: u8 = 11;
}

/// Shader stages (`enum pipe_shader_type`): 0..=5, compute last.
const SHADER_STAGES: u32 = 6;
/// `PIPE_SHADER_COMPUTE`, whose CREATE_OBJECT has no stream-output part.
const COMPUTE: u32 = 5;

/// Fixed table sizes of gallium's `p_state.h` that the decoder bounds
/// counts and slots by.
mod limit {
    /// `PIPE_MAX_VIEWPORTS`.
    pub const VIEWPORTS: u32 = 16;
    /// `PIPE_MAX_COLOR_BUFS` (the decoder's `surf_handle[8]`).
    pub const COLOR_BUFS: u32 = 8;
    /// `PIPE_MAX_ATTRIBS`: vertex buffers and vertex elements.
    pub const ATTRIBS: u32 = 32;
    /// `PIPE_MAX_SHADER_SAMPLER_VIEWS`.
    pub const SAMPLER_VIEWS: u32 = 128;
    /// `PIPE_MAX_SAMPLERS`.
    pub const SAMPLERS: u32 = 32;
    /// `PIPE_MAX_CONSTANT_BUFFERS`.
    pub const CONSTANT_BUFFERS: u32 = 32;
    /// `PIPE_MAX_SHADER_BUFFERS`.
    pub const SHADER_BUFFERS: u32 = 32;
    /// `PIPE_MAX_SHADER_IMAGES`.
    pub const SHADER_IMAGES: u32 = 32;
    /// `PIPE_MAX_HW_ATOMIC_BUFFERS`.
    pub const ATOMIC_BUFFERS: u32 = 32;
    /// `PIPE_MAX_SO_OUTPUTS`.
    pub const SO_OUTPUTS: u32 = 64;
    /// The decoder's `handles[16]` for streamout targets.
    pub const STREAMOUT_TARGETS: u32 = 16;
}

/// Bit 31 of a shader chunk's offset word: a continuation chunk
/// (`VIRGL_OBJ_SHADER_OFFSET_CONT`).
const SHADER_CONTINUATION: u32 = 1 << 31;

/// What a command's payload length must be, in dwords after the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Length {
    /// Exactly this many.
    Exactly(u32),
    /// At least this many.
    AtLeast(u32),
    /// One of these.
    OneOf(&'static [u32]),
    /// `base` plus a whole number (0 included) of `stride`s.
    Stride {
        /// The fixed part.
        base: u32,
        /// The size of one repeated element.
        stride: u32,
    },
}

impl Length {
    fn allows(self, len: u32) -> bool {
        match self {
            Self::Exactly(n) => len == n,
            Self::AtLeast(n) => len >= n,
            Self::OneOf(set) => set.contains(&len),
            Self::Stride { base, stride } => len >= base && (len - base).is_multiple_of(stride),
        }
    }
}

impl fmt::Display for Length {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exactly(n) => write!(f, "exactly {n}"),
            Self::AtLeast(n) => write!(f, "at least {n}"),
            Self::OneOf(set) => {
                f.write_str("one of")?;
                for (i, n) in set.iter().enumerate() {
                    write!(f, "{}{n}", if i == 0 { " " } else { ", " })?;
                }
                Ok(())
            }
            Self::Stride { base, stride } => write!(f, "{base} plus a multiple of {stride}"),
        }
    }
}

/// What a stream that [`walk`] accepts contains.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Commands in the stream, NOPs included.
    pub commands: usize,
    /// The distinct non-zero resource handles the stream names, in order of
    /// first appearance. Every one must be a resource attached to the
    /// submitting context: the host kills the context on a handle it cannot
    /// find (`ILLEGAL_RESOURCE`, host-validation §7).
    pub resources: Vec<u32>,
}

/// Why [`walk`] refused a stream. `offset` is the byte offset of the
/// offending command's header dword and `cmd` its command id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// The stream is not a whole number of dwords (vhost-user-gpu would
    /// drop the tail, virgl.c:214).
    Unaligned {
        /// The stream's length in bytes.
        len: usize,
    },
    /// A command id from [`MAX_COMMANDS`] on: the decoder drops the rest of
    /// the buffer (1926-1927).
    UnknownCommand {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
    },
    /// A command whose payload runs past the end of the stream: a buffer
    /// error, fatal to the context (1933-1936).
    Overrun {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
        /// Payload dwords the header claims.
        len: u16,
        /// Payload dwords left in the stream.
        available: usize,
    },
    /// A video command (53 to 61): vhost-user-gpu never initialises video,
    /// so the host has no video context to run it on (host-validation §4.3).
    VideoCommand {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
    },
    /// The payload length breaks the command's rule.
    BadLength {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
        /// Payload dwords it has.
        len: u16,
        /// What the decoder wants.
        expected: Length,
    },
    /// CREATE_OBJECT of a type the host cannot create, or BIND_OBJECT of a
    /// type it cannot bind (BLEND, DSA, RASTERIZER and VERTEX_ELEMENTS only)
    /// (806-807, 839-840).
    BadObjectType {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
        /// The object type of the header (bits 8..15).
        object: u8,
    },
    /// CREATE_OBJECT with handle 0 (764-765).
    ZeroHandle {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
    },
    /// A shader stage from 6 on (`PIPE_SHADER_TYPES`).
    BadShaderStage {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
        /// The stage field.
        stage: u32,
    },
    /// A count beyond the host's fixed table: colour buffers, vertex
    /// buffers or elements, streamout targets, stream outputs.
    TooMany {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
        /// The count in the stream.
        count: u32,
        /// The largest the host takes.
        max: u32,
    },
    /// Slots `start..start + count` do not fit in the host's table of
    /// `slots` (viewports, scissors, sampler views and states, uniform,
    /// shader and atomic buffers, images, vertex buffer indices).
    SlotRange {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
        /// First slot.
        start: u32,
        /// Slots set.
        count: u32,
        /// Slots the host has.
        slots: u32,
    },
    /// CREATE_OBJECT SAMPLER_STATE with min_mip_filter 3, which is none of
    /// NEAREST, LINEAR and NONE (684-687).
    BadMipFilter {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
    },
    /// Resource handle 0 where the command acts on a resource: the host
    /// finds no such resource in the context and kills the context.
    NoResource {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
    },
    /// TRANSFER3D whose direction is neither TO_HOST (1) nor FROM_HOST (2)
    /// (1413-1415).
    BadTransferDirection {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
        /// The direction field.
        direction: u32,
    },
    /// SEND_STRING_MARKER whose string is longer than its payload
    /// (1625-1627).
    MarkerTooLong {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
        /// The string length field, in bytes.
        bytes: u32,
        /// Bytes of payload after it.
        room: u32,
    },
    /// A shader chunk carrying more text than the shader's declared length
    /// (vrend_renderer.c:4242-4243, 4286-4290).
    ShaderTextTooLong {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
        /// The shader's handle.
        handle: u32,
        /// Byte offset in the shader text where this chunk ends.
        end: u64,
        /// The declared text length, rounded up to whole dwords.
        declared: u64,
    },
    /// A shader's text, once complete, has no NUL in its last dword
    /// (vrend_renderer.c:4306-4307).
    ShaderUnterminated {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
        /// The shader's handle.
        handle: u32,
    },
    /// A new shader, or another handle's continuation, for a stage whose
    /// chunked upload of `pending` is unfinished (vrend_renderer.c:4231-4235).
    ShaderInterleaved {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
        /// The handle of this chunk.
        handle: u32,
        /// The handle whose upload is unfinished.
        pending: u32,
    },
    /// A continuation chunk not starting where the text so far ends
    /// (vrend_renderer.c:4271-4276).
    ShaderOffsetMismatch {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
        /// The shader's handle.
        handle: u32,
        /// Bytes of text received so far.
        expected: u32,
        /// The chunk's offset field.
        found: u32,
    },
    /// A continuation chunk for a stage with no unfinished upload: the host
    /// finds no shader to continue (vrend_renderer.c:4263-4267), or worse,
    /// appends to a finished one.
    ShaderOrphanContinuation {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
        /// The chunk's handle.
        handle: u32,
    },
    /// DESTROY_OBJECT, or a CREATE_OBJECT that replaces it, of a shader
    /// whose chunked upload is unfinished. The host never clears the
    /// stage's upload in progress then (vrend_renderer.c only clears
    /// `long_shader_in_progress_handle` when the text is complete), so the
    /// sub-context would refuse every later shader of that stage.
    ShaderAbandoned {
        /// Byte offset of the command.
        offset: usize,
        /// Its id.
        cmd: u8,
        /// The handle of the unfinished shader.
        handle: u32,
    },
}

impl WalkError {
    /// Byte offset of the offending command, or `None` for [`Self::Unaligned`].
    pub fn offset(&self) -> Option<usize> {
        self.position().map(|(offset, _)| offset)
    }

    /// Id of the offending command, or `None` for [`Self::Unaligned`].
    pub fn command(&self) -> Option<u8> {
        self.position().map(|(_, cmd)| cmd)
    }

    fn position(&self) -> Option<(usize, u8)> {
        match *self {
            Self::Unaligned { .. } => None,
            Self::UnknownCommand { offset, cmd }
            | Self::Overrun { offset, cmd, .. }
            | Self::VideoCommand { offset, cmd }
            | Self::BadLength { offset, cmd, .. }
            | Self::BadObjectType { offset, cmd, .. }
            | Self::ZeroHandle { offset, cmd }
            | Self::BadShaderStage { offset, cmd, .. }
            | Self::TooMany { offset, cmd, .. }
            | Self::SlotRange { offset, cmd, .. }
            | Self::BadMipFilter { offset, cmd }
            | Self::NoResource { offset, cmd }
            | Self::BadTransferDirection { offset, cmd, .. }
            | Self::MarkerTooLong { offset, cmd, .. }
            | Self::ShaderTextTooLong { offset, cmd, .. }
            | Self::ShaderUnterminated { offset, cmd, .. }
            | Self::ShaderInterleaved { offset, cmd, .. }
            | Self::ShaderOffsetMismatch { offset, cmd, .. }
            | Self::ShaderOrphanContinuation { offset, cmd, .. }
            | Self::ShaderAbandoned { offset, cmd, .. } => Some((offset, cmd)),
        }
    }
}

impl fmt::Display for WalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((offset, cmd)) = self.position() {
            let name = opcode_name(cmd).unwrap_or("unknown");
            write!(f, "virgl command {name} ({cmd}) at byte {offset}: ")?;
        }
        match self {
            Self::Unaligned { len } => {
                write!(f, "virgl stream is {len} bytes, not a whole number of dwords")
            }
            Self::UnknownCommand { .. } => write!(
                f,
                "the host knows command ids below {MAX_COMMANDS} only"
            ),
            Self::Overrun { len, available, .. } => write!(
                f,
                "payload of {len} dwords runs past the end of the stream ({available} left)"
            ),
            Self::VideoCommand { .. } => f.write_str("video commands are not available"),
            Self::BadLength { len, expected, .. } => {
                write!(f, "payload of {len} dwords, must be {expected}")
            }
            Self::BadObjectType { object, .. } => {
                let name = object_name(*object).unwrap_or("unknown");
                write!(f, "object type {name} ({object}) not allowed here")
            }
            Self::ZeroHandle { .. } => f.write_str("object handle 0"),
            Self::BadShaderStage { stage, .. } => {
                write!(f, "shader stage {stage}, must be below {SHADER_STAGES}")
            }
            Self::TooMany { count, max, .. } => write!(f, "count {count}, at most {max}"),
            Self::SlotRange {
                start,
                count,
                slots,
                ..
            } => write!(
                f,
                "{count} slots from {start} do not fit in the host's {slots}"
            ),
            Self::BadMipFilter { .. } => f.write_str("min_mip_filter 3 is not a mip filter"),
            Self::NoResource { .. } => f.write_str("resource handle 0 where a resource is needed"),
            Self::BadTransferDirection { direction, .. } => {
                write!(f, "transfer direction {direction}, must be 1 or 2")
            }
            Self::MarkerTooLong { bytes, room, .. } => {
                write!(f, "string of {bytes} bytes in {room} bytes of payload")
            }
            Self::ShaderTextTooLong {
                handle,
                end,
                declared,
                ..
            } => write!(
                f,
                "shader {handle} text reaches byte {end}, beyond its declared {declared}"
            ),
            Self::ShaderUnterminated { handle, .. } => {
                write!(f, "shader {handle} text has no NUL in its last dword")
            }
            Self::ShaderInterleaved {
                handle, pending, ..
            } => write!(
                f,
                "shader {handle} sent while the upload of shader {pending} of that stage is unfinished"
            ),
            Self::ShaderOffsetMismatch {
                handle,
                expected,
                found,
                ..
            } => write!(
                f,
                "shader {handle} continuation at byte {found}, its text so far ends at {expected}"
            ),
            Self::ShaderOrphanContinuation { handle, .. } => write!(
                f,
                "shader {handle} continuation with no upload of that stage in progress"
            ),
            Self::ShaderAbandoned { handle, .. } => write!(
                f,
                "shader {handle} destroyed or replaced before its upload finished"
            ),
        }
    }
}

impl std::error::Error for WalkError {}

/// Walks `stream` (little-endian dwords, as the device reads them) and
/// checks every command against the host decoder's rules; see the module
/// documentation for what that covers. An empty stream is valid: the host
/// decodes nothing (host-validation §4.1).
pub fn walk(stream: &[u8]) -> Result<Summary, WalkError> {
    if !stream.len().is_multiple_of(4) {
        return Err(WalkError::Unaligned { len: stream.len() });
    }
    let mut walker = Walker::default();
    let mut at = 0;
    while at < stream.len() {
        let header = dword(stream, at);
        let cmd = header as u8;
        let len = (header >> 16) as u16;
        // The decoder looks at the id before the length (1926-1936).
        if cmd >= MAX_COMMANDS {
            return Err(WalkError::UnknownCommand { offset: at, cmd });
        }
        let end = at + 4 + 4 * usize::from(len);
        let words = stream.get(at..end).ok_or(WalkError::Overrun {
            offset: at,
            cmd,
            len,
            available: (stream.len() - at) / 4 - 1,
        })?;
        let command = Command {
            offset: at,
            cmd,
            obj: (header >> 8) as u8,
            len,
            words,
        };
        walker.command(&command)?;
        walker.summary.commands += 1;
        at = end;
    }
    Ok(walker.summary)
}

/// The little-endian dword at byte `at` of `bytes`, or 0 past the end (the
/// walker only reads what it has checked is there; 0 keeps it panic-free
/// regardless).
fn dword(bytes: &[u8], at: usize) -> u32 {
    at.checked_add(4)
        .and_then(|end| bytes.get(at..end))
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// One command: its header and payload.
struct Command<'a> {
    offset: usize,
    cmd: u8,
    obj: u8,
    len: u16,
    /// The header dword and the payload.
    words: &'a [u8],
}

impl Command<'_> {
    /// Dword `i` numbered as the decoder numbers it: 0 is the header, the
    /// payload is 1..=len.
    fn get(&self, i: u32) -> u32 {
        dword(self.words, 4 * i as usize)
    }

    fn len(&self) -> u32 {
        u32::from(self.len)
    }

    fn length(&self, expected: Length) -> Result<(), WalkError> {
        if expected.allows(self.len()) {
            Ok(())
        } else {
            Err(WalkError::BadLength {
                offset: self.offset,
                cmd: self.cmd,
                len: self.len,
                expected,
            })
        }
    }

    fn exactly(&self, n: u32) -> Result<(), WalkError> {
        self.length(Length::Exactly(n))
    }

    fn at_least(&self, n: u32) -> Result<(), WalkError> {
        self.length(Length::AtLeast(n))
    }

    fn stage(&self, stage: u32) -> Result<(), WalkError> {
        if stage < SHADER_STAGES {
            Ok(())
        } else {
            Err(WalkError::BadShaderStage {
                offset: self.offset,
                cmd: self.cmd,
                stage,
            })
        }
    }

    fn at_most(&self, count: u32, max: u32) -> Result<(), WalkError> {
        if count <= max {
            Ok(())
        } else {
            Err(WalkError::TooMany {
                offset: self.offset,
                cmd: self.cmd,
                count,
                max,
            })
        }
    }

    /// `start..start + count` within `0..slots`; the decoder's forms
    /// (`start > max - n`, `start + n > max`, ...) all come to this.
    fn slots(&self, start: u32, count: u32, slots: u32) -> Result<(), WalkError> {
        if u64::from(start) + u64::from(count) <= u64::from(slots) {
            Ok(())
        } else {
            Err(self.slot_error(start, count, slots))
        }
    }

    fn slot_error(&self, start: u32, count: u32, slots: u32) -> WalkError {
        WalkError::SlotRange {
            offset: self.offset,
            cmd: self.cmd,
            start,
            count,
            slots,
        }
    }
}

/// Where a shader stage's chunked upload stands, as far as this stream
/// shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Upload {
    /// Not known: the stream has not shown this stage in the current
    /// sub-context, and an upload may be left from an earlier submit.
    #[default]
    Unknown,
    /// No upload in progress.
    Idle,
    /// Shader `handle` has `done` of its `total` text bytes.
    Pending { handle: u32, done: u32, total: u32 },
}

#[derive(Default)]
struct Walker {
    summary: Summary,
    seen: HashSet<u32>,
    /// Per shader stage, in the current sub-context.
    uploads: [Upload; SHADER_STAGES as usize],
}

impl Walker {
    fn resource(&mut self, handle: u32) {
        if handle != 0 && self.seen.insert(handle) {
            self.summary.resources.push(handle);
        }
    }

    /// A resource the command cannot do without (0 is no resource).
    fn required(&mut self, c: &Command, handle: u32) -> Result<(), WalkError> {
        if handle == 0 {
            return Err(WalkError::NoResource {
                offset: c.offset,
                cmd: c.cmd,
            });
        }
        self.resource(handle);
        Ok(())
    }

    fn command(&mut self, c: &Command) -> Result<(), WalkError> {
        let len = c.len();
        match c.cmd {
            op::NOP | op::END_TRANSFERS => Ok(()),
            op::CREATE_OBJECT => self.create_object(c),
            op::BIND_OBJECT => {
                c.exactly(1)?;
                match c.obj {
                    obj::BLEND | obj::DSA | obj::RASTERIZER | obj::VERTEX_ELEMENTS => Ok(()),
                    object => Err(WalkError::BadObjectType {
                        offset: c.offset,
                        cmd: c.cmd,
                        object,
                    }),
                }
            }
            op::DESTROY_OBJECT => {
                c.exactly(1)?;
                self.not_pending(c, c.get(1))
            }
            op::SET_VIEWPORT_STATE => {
                // 244-256.
                c.length(Length::Stride { base: 1, stride: 6 })?;
                c.slots(c.get(1), (len - 1) / 6, limit::VIEWPORTS)
            }
            op::SET_FRAMEBUFFER_STATE => {
                // 150-164; the count first, so 2 + count cannot overflow.
                c.at_least(2)?;
                let cbufs = c.get(1);
                c.at_most(cbufs, limit::COLOR_BUFS)?;
                c.exactly(2 + cbufs)
            }
            op::SET_VERTEX_BUFFERS => {
                // 318-329; handles at 3 + 3i.
                c.length(Length::Stride { base: 0, stride: 3 })?;
                let n = len / 3;
                c.at_most(n, limit::ATTRIBS)?;
                for i in 0..n {
                    self.resource(c.get(3 * i + 3));
                }
                Ok(())
            }
            op::CLEAR => c.exactly(8),
            op::DRAW_VBO => {
                // 419-422; the indirect form names the indirect buffer (15)
                // and the draw-count buffer (20).
                c.length(Length::OneOf(&[12, 14, 20]))?;
                if len == 20 {
                    self.resource(c.get(15));
                    self.resource(c.get(20));
                }
                Ok(())
            }
            op::RESOURCE_INLINE_WRITE => {
                // 396-397; the data's fit in the resource is checked
                // against the resource, which the walker does not know.
                c.at_least(12)?;
                self.required(c, c.get(1))
            }
            op::SET_SAMPLER_VIEWS => {
                // 348-359.
                c.at_least(2)?;
                c.stage(c.get(1))?;
                c.slots(c.get(2), len - 2, limit::SAMPLER_VIEWS)
            }
            op::SET_INDEX_BUFFER => {
                c.length(Length::OneOf(&[1, 3]))?;
                self.resource(c.get(1));
                Ok(())
            }
            op::SET_CONSTANT_BUFFER => {
                c.at_least(2)?;
                c.stage(c.get(1))
            }
            op::SET_STENCIL_REF | op::SET_SAMPLE_MASK | op::SET_MIN_SAMPLES => c.exactly(1),
            op::SET_BLEND_COLOR => c.exactly(4),
            op::SET_SCISSOR_STATE => {
                // 898-906 bound the count; vrend_set_scissor_state
                // (vrend_renderer.c:9377-9385) reports a buffer error unless
                // start < 16, even with no scissors, and start + n <= 16.
                c.length(Length::Stride { base: 1, stride: 2 })?;
                let (start, n) = (c.get(1), (len - 1) / 2);
                c.at_most(n, limit::VIEWPORTS)?;
                if start >= limit::VIEWPORTS {
                    return Err(c.slot_error(start, n, limit::VIEWPORTS));
                }
                c.slots(start, n, limit::VIEWPORTS)
            }
            op::BLIT => {
                // Destination at 4, source at 13.
                c.exactly(21)?;
                self.required(c, c.get(4))?;
                self.required(c, c.get(13))
            }
            op::RESOURCE_COPY_REGION => {
                // Destination at 1, source at 6.
                c.exactly(13)?;
                self.required(c, c.get(1))?;
                self.required(c, c.get(6))
            }
            op::BIND_SAMPLER_STATES => {
                // 1051-1061, then vrend_bind_sampler_states
                // (vrend_renderer.c:6578-6582) bounds the slots.
                c.at_least(2)?;
                c.stage(c.get(1))?;
                c.slots(c.get(2), len - 2, limit::SAMPLERS)
            }
            op::BEGIN_QUERY | op::END_QUERY => c.exactly(1),
            op::GET_QUERY_RESULT => c.exactly(2),
            op::SET_POLYGON_STIPPLE | op::SET_CLIP_STATE => c.exactly(32),
            op::SET_STREAMOUT_TARGETS => {
                // 1336-1340: handles of streamout target objects, not
                // resources.
                c.at_least(1)?;
                c.at_most(len - 1, limit::STREAMOUT_TARGETS)
            }
            op::SET_RENDER_CONDITION => c.exactly(3),
            op::SET_UNIFORM_BUFFER => {
                // 297-312; the buffer at 5.
                c.exactly(5)?;
                c.stage(c.get(1))?;
                c.slots(c.get(2), 1, limit::CONSTANT_BUFFERS)?;
                self.resource(c.get(5));
                Ok(())
            }
            op::SET_SUB_CTX | op::CREATE_SUB_CTX | op::DESTROY_SUB_CTX => {
                c.exactly(1)?;
                // Shader uploads are per sub-context, and which one is
                // current after this depends on what exists on the host.
                self.uploads = Default::default();
                Ok(())
            }
            op::BIND_SHADER => c.exactly(2),
            op::SET_TESS_STATE => c.exactly(6),
            op::SET_SHADER_BUFFERS => {
                // 1208-1227: n = (len - 2) / 3, a remainder is ignored, no
                // buffers at all is fine whatever the start; buffers at
                // 5 + 3i.
                c.at_least(2)?;
                c.stage(c.get(1))?;
                let n = (len - 2) / 3;
                if n > 0 {
                    c.slots(c.get(2), n, limit::SHADER_BUFFERS)?;
                }
                for i in 0..n {
                    self.resource(c.get(3 * i + 5));
                }
                Ok(())
            }
            op::SET_SHADER_IMAGES => {
                // 1267-1286: as for buffers, 5 dwords each, image at 7 + 5i.
                c.at_least(2)?;
                c.stage(c.get(1))?;
                let n = (len - 2) / 5;
                if n > 0 {
                    c.slots(c.get(2), n, limit::SHADER_IMAGES)?;
                }
                for i in 0..n {
                    self.resource(c.get(5 * i + 7));
                }
                Ok(())
            }
            op::MEMORY_BARRIER | op::TEXTURE_BARRIER => c.exactly(1),
            op::LAUNCH_GRID => {
                // The indirect buffer at 7.
                c.exactly(8)?;
                self.resource(c.get(7));
                Ok(())
            }
            op::SET_FRAMEBUFFER_STATE_NO_ATTACH => c.exactly(2),
            op::SET_ATOMIC_BUFFERS => {
                // 1239-1255: n = (len - 1) / 3, one less than the others
                // subtract; buffers at 4 + 3i.
                c.at_least(2)?;
                let n = (len - 1) / 3;
                if n > 0 {
                    c.slots(c.get(1), n, limit::ATOMIC_BUFFERS)?;
                }
                for i in 0..n {
                    self.resource(c.get(3 * i + 4));
                }
                Ok(())
            }
            op::SET_DEBUG_FLAGS | op::SET_TWEAKS => c.at_least(2),
            op::GET_QUERY_RESULT_QBO => {
                // The query buffer at 2.
                c.exactly(6)?;
                self.required(c, c.get(2))
            }
            op::TRANSFER3D => {
                c.at_least(13)?;
                let direction = c.get(13);
                if !(1..=2).contains(&direction) {
                    return Err(WalkError::BadTransferDirection {
                        offset: c.offset,
                        cmd: c.cmd,
                        direction,
                    });
                }
                self.required(c, c.get(1))
            }
            op::COPY_TRANSFER3D => {
                // 1421-1453: the texture at 1 and the staging buffer at 12,
                // whichever way the copy goes.
                c.exactly(14)?;
                self.required(c, c.get(1))?;
                self.required(c, c.get(12))
            }
            op::CLEAR_TEXTURE => {
                c.exactly(12)?;
                self.required(c, c.get(1))
            }
            op::PIPE_RESOURCE_CREATE => c.exactly(11),
            op::PIPE_RESOURCE_SET_TYPE => {
                // 1482-1492: 8 + 2 per plane, 1 to VIRGL_GBM_MAX_PLANES (4,
                // GBM_MAX_PLANES in Mesa 22.3's gbm.h) planes; the untyped
                // resource at 1.
                c.length(Length::OneOf(&[10, 12, 14, 16]))?;
                self.resource(c.get(1));
                Ok(())
            }
            op::GET_MEMORY_INFO => {
                c.exactly(1)?;
                self.resource(c.get(1));
                Ok(())
            }
            op::SEND_STRING_MARKER => {
                c.at_least(2)?;
                let (bytes, room) = (c.get(1), 4 * (len - 1));
                if bytes > room {
                    return Err(WalkError::MarkerTooLong {
                        offset: c.offset,
                        cmd: c.cmd,
                        bytes,
                        room,
                    });
                }
                Ok(())
            }
            op::LINK_SHADER => c.exactly(6),
            op::FIRST_VIDEO..=op::LAST_VIDEO => Err(WalkError::VideoCommand {
                offset: c.offset,
                cmd: c.cmd,
            }),
            // `walk` refuses ids from MAX_COMMANDS on before getting here.
            _ => Err(WalkError::UnknownCommand {
                offset: c.offset,
                cmd: c.cmd,
            }),
        }
    }

    /// CREATE_OBJECT (754-807): a non-zero handle, then the type's rules.
    fn create_object(&mut self, c: &Command) -> Result<(), WalkError> {
        c.at_least(1)?;
        let handle = c.get(1);
        if handle == 0 {
            return Err(WalkError::ZeroHandle {
                offset: c.offset,
                cmd: c.cmd,
            });
        }
        match c.obj {
            obj::BLEND => c.exactly(11),
            obj::RASTERIZER => c.exactly(9),
            obj::DSA => c.exactly(5),
            obj::SHADER => return self.create_shader(c, handle),
            obj::VERTEX_ELEMENTS => {
                // 692-720: 4 dwords per element, each vertex buffer index
                // (at 4 + 4i) below 32; vrend_create_vertex_elements_state
                // (vrend_renderer.c:3178-3179) takes at most 32 elements.
                c.length(Length::Stride { base: 1, stride: 4 })?;
                let n = (c.len() - 1) / 4;
                for i in 0..n {
                    c.slots(c.get(4 * i + 4), 1, limit::ATTRIBS)?;
                }
                c.at_most(n, limit::ATTRIBS)
            }
            obj::SURFACE | obj::STREAMOUT_TARGET | obj::SAMPLER_VIEW | obj::MSAA_SURFACE => {
                let size = match c.obj {
                    obj::SURFACE => 5,
                    obj::STREAMOUT_TARGET => 4,
                    _ => 6,
                };
                c.exactly(size)?;
                // The viewed resource is at 2 for all four.
                self.required(c, c.get(2))
            }
            obj::SAMPLER_STATE => {
                c.exactly(9)?;
                if (c.get(2) >> 11) & 3 == 3 {
                    return Err(WalkError::BadMipFilter {
                        offset: c.offset,
                        cmd: c.cmd,
                    });
                }
                Ok(())
            }
            obj::QUERY => {
                // vrend_create_query (vrend_renderer.c:10681) looks up the
                // result buffer, at 4, among the context's resources.
                c.exactly(4)?;
                self.resource(c.get(4));
                Ok(())
            }
            object => Err(WalkError::BadObjectType {
                offset: c.offset,
                cmd: c.cmd,
                object,
            }),
        }?;
        // A new object under the handle of an unfinished shader replaces it.
        self.not_pending(c, handle)
    }

    /// Refuses `c` if `handle` is a shader whose upload is unfinished.
    fn not_pending(&self, c: &Command, handle: u32) -> Result<(), WalkError> {
        let pending = self
            .uploads
            .iter()
            .any(|u| matches!(*u, Upload::Pending { handle: h, .. } if h == handle));
        if pending {
            Err(WalkError::ShaderAbandoned {
                offset: c.offset,
                cmd: c.cmd,
                handle,
            })
        } else {
            Ok(())
        }
    }

    /// CREATE_OBJECT SHADER: the header rules of vrend_decode_create_shader
    /// (66-131), then the chunk rules of vrend_create_shader
    /// (vrend_renderer.c:4192-4336).
    ///
    /// Payload: 2 stage, 3 text length or continuation offset, 4 token
    /// count, 5 stream-output count (compute: local memory), then for
    /// stream outputs 4 strides and 2 dwords per output, then the text.
    fn create_shader(&mut self, c: &Command, handle: u32) -> Result<(), WalkError> {
        let len = c.len();
        c.at_least(5)?;
        let stage = c.get(2);
        let outputs = if stage == COMPUTE { 0 } else { c.get(5) };
        if outputs > 0 {
            c.at_most(outputs, limit::SO_OUTPUTS)?;
        }
        let header = if outputs > 0 { 9 + 2 * outputs } else { 5 };
        c.at_least(header)?;
        // The geometry, tessellation and compute stages also need host
        // features; that is the capset's business.
        c.stage(stage)?;
        let (offset, cmd) = (c.offset, c.cmd);
        let Some(slot) = self.uploads.get_mut(stage as usize) else {
            return Err(WalkError::BadShaderStage { offset, cmd, stage });
        };

        let text_dwords = len - header;
        // The host wants a NUL within the text's last 4 bytes, which are
        // this chunk's last dword whenever the text ends in this chunk.
        let terminated = || text_dwords > 0 && c.get(len).to_le_bytes().contains(&0);
        let offlen = c.get(3);

        if offlen & SHADER_CONTINUATION == 0 {
            // A new shader: offlen is the whole text's length in bytes.
            if let Upload::Pending {
                handle: pending, ..
            } = *slot
            {
                return Err(WalkError::ShaderInterleaved {
                    offset,
                    cmd,
                    handle,
                    pending,
                });
            }
            let declared = offlen.div_ceil(4);
            if text_dwords > declared {
                return Err(WalkError::ShaderTextTooLong {
                    offset,
                    cmd,
                    handle,
                    end: 4 * u64::from(text_dwords),
                    declared: 4 * u64::from(declared),
                });
            }
            if text_dwords == declared {
                if !terminated() {
                    return Err(WalkError::ShaderUnterminated {
                        offset,
                        cmd,
                        handle,
                    });
                }
                *slot = Upload::Idle;
            } else {
                *slot = Upload::Pending {
                    handle,
                    done: 4 * text_dwords,
                    total: 4 * declared,
                };
            }
            // The handle may have been an unfinished shader of another stage.
            return self.not_pending_elsewhere(c, handle, stage);
        }

        let at = offlen & !SHADER_CONTINUATION;
        match *slot {
            // Begun in an earlier submit, or in a sub-context the stream
            // switched away from and back to: nothing to check against.
            Upload::Unknown => Ok(()),
            Upload::Idle => Err(WalkError::ShaderOrphanContinuation {
                offset,
                cmd,
                handle,
            }),
            Upload::Pending {
                handle: pending,
                done,
                total,
            } => {
                if handle != pending {
                    return Err(WalkError::ShaderInterleaved {
                        offset,
                        cmd,
                        handle,
                        pending,
                    });
                }
                if at != done {
                    return Err(WalkError::ShaderOffsetMismatch {
                        offset,
                        cmd,
                        handle,
                        expected: done,
                        found: at,
                    });
                }
                let end = u64::from(done) + 4 * u64::from(text_dwords);
                if end > u64::from(total) {
                    return Err(WalkError::ShaderTextTooLong {
                        offset,
                        cmd,
                        handle,
                        end,
                        declared: u64::from(total),
                    });
                }
                if end == u64::from(total) {
                    // The whole text's last dword is this chunk's last.
                    if !terminated() {
                        return Err(WalkError::ShaderUnterminated {
                            offset,
                            cmd,
                            handle,
                        });
                    }
                    *slot = Upload::Idle;
                } else {
                    // end < total <= 2^31, so this fits.
                    *slot = Upload::Pending {
                        handle,
                        done: end as u32,
                        total,
                    };
                }
                Ok(())
            }
        }
    }

    /// A new shader object under `handle` replaces whatever had it,
    /// including an unfinished shader of another stage.
    fn not_pending_elsewhere(&self, c: &Command, handle: u32, stage: u32) -> Result<(), WalkError> {
        for (s, upload) in self.uploads.iter().enumerate() {
            if s != stage as usize {
                if let Upload::Pending { handle: h, .. } = *upload {
                    if h == handle {
                        return Err(WalkError::ShaderAbandoned {
                            offset: c.offset,
                            cmd: c.cmd,
                            handle,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{clear_stream, format, Stream};

    fn bytes(commands: &[(u8, u8, &[u32])]) -> Vec<u8> {
        let mut s = Stream::new();
        for (cmd, obj, payload) in commands {
            s.command(*cmd, *obj, payload);
        }
        s.to_bytes()
    }

    fn one(cmd: u8, obj: u8, payload: &[u32]) -> Result<Summary, WalkError> {
        walk(&bytes(&[(cmd, obj, payload)]))
    }

    /// A CREATE_OBJECT SHADER payload without stream outputs: `offlen` is
    /// the text length (or continuation offset with bit 31), `text` is
    /// padded with NULs to whole dwords.
    fn shader(handle: u32, stage: u32, offlen: u32, text: &[u8]) -> Vec<u32> {
        let mut payload = vec![handle, stage, offlen, 300, 0];
        payload.extend(text.chunks(4).map(|c| {
            let mut w = [0; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        }));
        payload
    }

    const FS: &[u8] =
        b"FRAG\nDCL OUT[0], COLOR\nIMM[0] FLT32 {1.0, 0.0, 0.0, 1.0}\nMOV OUT[0], IMM[0]\nEND\n\0";

    #[test]
    fn every_encoder_stream_walks_clean() {
        let clear = clear_stream(42, format::R8G8B8A8_UNORM, [1.0, 0.0, 0.0, 1.0]);
        let summary = walk(&clear).unwrap();
        assert_eq!(summary.commands, 6);
        assert_eq!(summary.resources, [42]);

        let mut s = Stream::new();
        s.create_sub_ctx(2)
            .set_sub_ctx(2)
            .create_surface(1, 5, format::B8G8R8A8_UNORM, 0)
            .create_surface(2, 5, format::B8G8R8A8_UNORM, 1)
            .set_framebuffer_state(0, &[])
            .set_framebuffer_state(2, &[1; 8])
            .clear(crate::clear::COLOR0 | crate::clear::DEPTH, [0.5; 4], 1.0, 3)
            .resource_copy_region(7, 0, [1, 2, 0], 9, 0, [0, 0, 0, 4, 4, 1])
            .resource_copy_region(9, 1, [0, 0, 0], 5, 0, [0, 0, 0, 1, 1, 1])
            .destroy_object(2)
            .destroy_object(1)
            .set_sub_ctx(0)
            .destroy_sub_ctx(2);
        let summary = walk(&s.to_bytes()).unwrap();
        assert_eq!(summary.commands, 13);
        assert_eq!(summary.resources, [5, 7, 9]);
    }

    #[test]
    fn an_empty_stream_is_an_empty_summary() {
        assert_eq!(walk(&[]), Ok(Summary::default()));
        // NOPs of any length are fine too.
        let nops = bytes(&[(op::NOP, 0, &[]), (op::NOP, 7, &[1, 2, 3])]);
        assert_eq!(walk(&nops).unwrap().commands, 2);
    }

    #[test]
    fn a_stream_must_be_whole_dwords() {
        assert_eq!(walk(&[0; 6]), Err(WalkError::Unaligned { len: 6 }));
        assert_eq!(walk(&[0; 3]), Err(WalkError::Unaligned { len: 3 }));
        let mut clear = clear_stream(1, format::R8G8B8A8_UNORM, [0.0; 4]);
        clear.push(0);
        assert!(matches!(walk(&clear), Err(WalkError::Unaligned { .. })));
    }

    #[test]
    fn an_overrun_is_caught() {
        let clear = clear_stream(1, format::R8G8B8A8_UNORM, [0.0; 4]);
        // Cut inside CLEAR, the fifth command, at dwords 14..23.
        assert_eq!(
            walk(&clear[..4 * 17]),
            Err(WalkError::Overrun {
                offset: 4 * 14,
                cmd: op::CLEAR,
                len: 8,
                available: 2,
            })
        );
        // The largest length with nothing after it.
        assert_eq!(
            walk(&0xffff_0000u32.to_le_bytes()),
            Err(WalkError::Overrun {
                offset: 0,
                cmd: op::NOP,
                len: 0xffff,
                available: 0,
            })
        );
    }

    #[test]
    fn unknown_ids_are_refused_before_their_length_is_looked_at() {
        for id in [MAX_COMMANDS, 63, 100, 255] {
            let err = one(id, 0, &[]).unwrap_err();
            assert_eq!(err, WalkError::UnknownCommand { offset: 0, cmd: id });
            // Running past the end makes no difference.
            let header = u32::from(id) | 5 << 16;
            let err = walk(&header.to_le_bytes()).unwrap_err();
            assert_eq!(err, WalkError::UnknownCommand { offset: 0, cmd: id });
        }
        // After a valid command, the offset points at the bad one.
        let s = bytes(&[(op::SET_SUB_CTX, 0, &[1]), (62, 0, &[])]);
        assert_eq!(
            walk(&s),
            Err(WalkError::UnknownCommand { offset: 8, cmd: 62 })
        );
    }

    #[test]
    fn video_commands_are_refused() {
        for id in op::FIRST_VIDEO..=op::LAST_VIDEO {
            assert_eq!(
                one(id, 0, &[1, 2, 3, 4, 5, 6, 7, 8]),
                Err(WalkError::VideoCommand { offset: 0, cmd: id })
            );
        }
        assert!(one(op::LINK_SHADER, 0, &[0; 6]).is_ok());
    }

    /// Every fixed-length command, at its length and one off either way.
    #[test]
    fn fixed_lengths() {
        let fixed: &[(u8, u8, u32)] = &[
            (op::BIND_OBJECT, obj::BLEND, 1),
            (op::DESTROY_OBJECT, 0, 1),
            (op::CLEAR, 0, 8),
            (op::SET_STENCIL_REF, 0, 1),
            (op::SET_BLEND_COLOR, 0, 4),
            (op::BLIT, 0, 21),
            (op::RESOURCE_COPY_REGION, 0, 13),
            (op::BEGIN_QUERY, 0, 1),
            (op::END_QUERY, 0, 1),
            (op::GET_QUERY_RESULT, 0, 2),
            (op::SET_POLYGON_STIPPLE, 0, 32),
            (op::SET_CLIP_STATE, 0, 32),
            (op::SET_SAMPLE_MASK, 0, 1),
            (op::SET_RENDER_CONDITION, 0, 3),
            (op::SET_SUB_CTX, 0, 1),
            (op::CREATE_SUB_CTX, 0, 1),
            (op::DESTROY_SUB_CTX, 0, 1),
            (op::BIND_SHADER, 0, 2),
            (op::SET_TESS_STATE, 0, 6),
            (op::SET_MIN_SAMPLES, 0, 1),
            (op::MEMORY_BARRIER, 0, 1),
            (op::LAUNCH_GRID, 0, 8),
            (op::SET_FRAMEBUFFER_STATE_NO_ATTACH, 0, 2),
            (op::TEXTURE_BARRIER, 0, 1),
            (op::GET_QUERY_RESULT_QBO, 0, 6),
            (op::COPY_TRANSFER3D, 0, 14),
            (op::CLEAR_TEXTURE, 0, 12),
            (op::PIPE_RESOURCE_CREATE, 0, 11),
            (op::GET_MEMORY_INFO, 0, 1),
            (op::LINK_SHADER, 0, 6),
            (op::CREATE_OBJECT, obj::BLEND, 11),
            (op::CREATE_OBJECT, obj::RASTERIZER, 9),
            (op::CREATE_OBJECT, obj::DSA, 5),
            (op::CREATE_OBJECT, obj::SURFACE, 5),
            (op::CREATE_OBJECT, obj::SAMPLER_VIEW, 6),
            (op::CREATE_OBJECT, obj::SAMPLER_STATE, 9),
            (op::CREATE_OBJECT, obj::QUERY, 4),
            (op::CREATE_OBJECT, obj::STREAMOUT_TARGET, 4),
            (op::CREATE_OBJECT, obj::MSAA_SURFACE, 6),
            (op::SET_UNIFORM_BUFFER, 0, 5),
        ];
        for &(cmd, object, n) in fixed {
            // A handle of 1 satisfies CREATE_OBJECT and the commands that
            // need a resource there; zeros do the rest.
            let mut payload = vec![0; n as usize + 1];
            payload[0] = 1;
            for &at in needed_resources(cmd, object) {
                payload[at] = 1;
            }
            assert!(
                one(cmd, object, &payload[..n as usize]).is_ok(),
                "{cmd}/{object}"
            );
            for bad in [n - 1, n + 1] {
                let err = one(cmd, object, &payload[..bad as usize]).unwrap_err();
                assert_eq!(
                    err,
                    WalkError::BadLength {
                        offset: 0,
                        cmd,
                        len: bad as u16,
                        expected: Length::Exactly(n),
                    },
                    "{cmd}/{object} with {bad}"
                );
            }
        }
    }

    #[test]
    fn minimum_and_alternative_lengths() {
        let bad_len = |cmd, payload: &[u32], expected| {
            assert_eq!(
                one(cmd, 0, payload),
                Err(WalkError::BadLength {
                    offset: 0,
                    cmd,
                    len: payload.len() as u16,
                    expected,
                }),
                "{cmd}"
            );
        };
        bad_len(op::RESOURCE_INLINE_WRITE, &[1; 11], Length::AtLeast(12));
        assert!(one(op::RESOURCE_INLINE_WRITE, 0, &[1; 12]).is_ok());
        assert!(one(op::RESOURCE_INLINE_WRITE, 0, &[1; 40]).is_ok());
        bad_len(op::TRANSFER3D, &[1; 12], Length::AtLeast(13));
        bad_len(op::SET_CONSTANT_BUFFER, &[0], Length::AtLeast(2));
        assert!(one(op::SET_CONSTANT_BUFFER, 0, &[1, 0, 0, 0, 0, 0]).is_ok());
        bad_len(op::SET_DEBUG_FLAGS, &[0], Length::AtLeast(2));
        bad_len(op::SET_TWEAKS, &[0], Length::AtLeast(2));
        bad_len(op::SEND_STRING_MARKER, &[0], Length::AtLeast(2));
        bad_len(op::SET_SAMPLER_VIEWS, &[0], Length::AtLeast(2));
        bad_len(op::BIND_SAMPLER_STATES, &[0], Length::AtLeast(2));
        bad_len(op::SET_SHADER_BUFFERS, &[0], Length::AtLeast(2));
        bad_len(op::SET_SHADER_IMAGES, &[0], Length::AtLeast(2));
        bad_len(op::SET_ATOMIC_BUFFERS, &[0], Length::AtLeast(2));
        bad_len(op::SET_STREAMOUT_TARGETS, &[], Length::AtLeast(1));
        bad_len(op::SET_FRAMEBUFFER_STATE, &[0], Length::AtLeast(2));
        bad_len(op::CREATE_OBJECT, &[], Length::AtLeast(1));

        bad_len(op::DRAW_VBO, &[0; 13], Length::OneOf(&[12, 14, 20]));
        for n in [12, 14, 20] {
            assert!(one(op::DRAW_VBO, 0, &vec![0; n]).is_ok());
        }
        bad_len(op::SET_INDEX_BUFFER, &[0; 2], Length::OneOf(&[1, 3]));
        assert!(one(op::SET_INDEX_BUFFER, 0, &[0]).is_ok());
        assert!(one(op::SET_INDEX_BUFFER, 0, &[0; 3]).is_ok());
        // One to four planes.
        let planes = Length::OneOf(&[10, 12, 14, 16]);
        bad_len(op::PIPE_RESOURCE_SET_TYPE, &[1; 8], planes);
        bad_len(op::PIPE_RESOURCE_SET_TYPE, &[1; 11], planes);
        bad_len(op::PIPE_RESOURCE_SET_TYPE, &[1; 18], planes);
        assert!(one(op::PIPE_RESOURCE_SET_TYPE, 0, &[1; 16]).is_ok());

        bad_len(
            op::SET_VIEWPORT_STATE,
            &[0; 8],
            Length::Stride { base: 1, stride: 6 },
        );
        bad_len(
            op::SET_SCISSOR_STATE,
            &[0; 4],
            Length::Stride { base: 1, stride: 2 },
        );
        bad_len(
            op::SET_VERTEX_BUFFERS,
            &[0; 4],
            Length::Stride { base: 0, stride: 3 },
        );
        // No vertex buffers at all is fine.
        assert!(one(op::SET_VERTEX_BUFFERS, 0, &[]).is_ok());
    }

    #[test]
    fn create_object_rules() {
        assert_eq!(
            one(op::CREATE_OBJECT, obj::SURFACE, &[0, 1, 67, 0, 0]),
            Err(WalkError::ZeroHandle {
                offset: 0,
                cmd: op::CREATE_OBJECT
            })
        );
        for object in [0, 12, 255] {
            assert_eq!(
                one(op::CREATE_OBJECT, object, &[1; 6]),
                Err(WalkError::BadObjectType {
                    offset: 0,
                    cmd: op::CREATE_OBJECT,
                    object,
                })
            );
        }
        // Vertex elements: 1 + 4 per element, buffer index below 32, at
        // most 32 elements.
        let ve = |elements: &[[u32; 4]]| {
            let mut p = vec![1];
            p.extend(elements.iter().flatten());
            one(op::CREATE_OBJECT, obj::VERTEX_ELEMENTS, &p)
        };
        assert!(ve(&[]).is_ok());
        assert!(ve(&[[0, 0, 31, 31]; 32]).is_ok());
        assert!(matches!(
            ve(&[[0, 0, 0, 31]; 33]),
            Err(WalkError::TooMany {
                count: 33,
                max: 32,
                ..
            })
        ));
        assert!(matches!(
            ve(&[[0, 0, 0, 31], [0, 0, 32, 31]]),
            Err(WalkError::SlotRange {
                start: 32,
                count: 1,
                slots: 32,
                ..
            })
        ));
        assert!(matches!(
            one(op::CREATE_OBJECT, obj::VERTEX_ELEMENTS, &[1, 0, 0]),
            Err(WalkError::BadLength { .. })
        ));
        // Sampler state: min_mip_filter (bits 11..12 of dword 2) 0, 1, 2.
        for mip in 0..3 {
            assert!(one(
                op::CREATE_OBJECT,
                obj::SAMPLER_STATE,
                &[1, mip << 11, 0, 0, 0, 0, 0, 0, 0]
            )
            .is_ok());
        }
        assert_eq!(
            one(
                op::CREATE_OBJECT,
                obj::SAMPLER_STATE,
                &[1, 3 << 11, 0, 0, 0, 0, 0, 0, 0]
            ),
            Err(WalkError::BadMipFilter {
                offset: 0,
                cmd: op::CREATE_OBJECT
            })
        );
        // Bind: four types only.
        for object in [obj::BLEND, obj::DSA, obj::RASTERIZER, obj::VERTEX_ELEMENTS] {
            assert!(one(op::BIND_OBJECT, object, &[1]).is_ok());
        }
        assert!(matches!(
            one(op::BIND_OBJECT, obj::SHADER, &[1]),
            Err(WalkError::BadObjectType {
                object: obj::SHADER,
                ..
            })
        ));
    }

    #[test]
    fn counts_and_slots() {
        let slots = |cmd, payload: &[u32], start, count, slots| {
            assert_eq!(
                one(cmd, 0, payload),
                Err(WalkError::SlotRange {
                    offset: 0,
                    cmd,
                    start,
                    count,
                    slots,
                }),
                "{cmd}"
            );
        };
        let too_many = |cmd, payload: &[u32], count, max| {
            assert_eq!(
                one(cmd, 0, payload),
                Err(WalkError::TooMany {
                    offset: 0,
                    cmd,
                    count,
                    max,
                }),
                "{cmd}"
            );
        };

        // Framebuffer: len == 2 + nr_cbufs, nr_cbufs <= 8.
        too_many(
            op::SET_FRAMEBUFFER_STATE,
            &[9, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1],
            9,
            8,
        );
        too_many(op::SET_FRAMEBUFFER_STATE, &[u32::MAX, 0], u32::MAX, 8);
        assert_eq!(
            one(op::SET_FRAMEBUFFER_STATE, 0, &[2, 0, 1]),
            Err(WalkError::BadLength {
                offset: 0,
                cmd: op::SET_FRAMEBUFFER_STATE,
                len: 3,
                expected: Length::Exactly(4),
            })
        );
        // Viewports: start + n <= 16.
        let mut vp = vec![15];
        vp.extend([0; 12]);
        slots(op::SET_VIEWPORT_STATE, &vp, 15, 2, 16);
        vp[0] = 14;
        assert!(one(op::SET_VIEWPORT_STATE, 0, &vp).is_ok());
        // Scissors: start below 16 even with none, start + n <= 16.
        slots(op::SET_SCISSOR_STATE, &[16], 16, 0, 16);
        slots(op::SET_SCISSOR_STATE, &[15, 0, 0, 0, 0], 15, 2, 16);
        assert!(one(op::SET_SCISSOR_STATE, 0, &[15, 0, 0]).is_ok());
        let mut many = vec![0];
        many.extend([0; 34]);
        too_many(op::SET_SCISSOR_STATE, &many, 17, 16);
        // Vertex buffers: at most 32.
        too_many(op::SET_VERTEX_BUFFERS, &[0; 99], 33, 32);
        assert!(one(op::SET_VERTEX_BUFFERS, 0, &[0; 96]).is_ok());
        // Sampler views: stage, then start + n <= 128.
        assert!(matches!(
            one(op::SET_SAMPLER_VIEWS, 0, &[6, 0]),
            Err(WalkError::BadShaderStage { stage: 6, .. })
        ));
        slots(op::SET_SAMPLER_VIEWS, &[1, 127, 0, 0], 127, 2, 128);
        assert!(one(op::SET_SAMPLER_VIEWS, 0, &[5, 127, 0]).is_ok());
        // Sampler states: start + n <= 32 (the renderer's check).
        slots(
            op::BIND_SAMPLER_STATES,
            &[
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0,
            ],
            0,
            33,
            32,
        );
        slots(op::BIND_SAMPLER_STATES, &[0, 32, 0], 32, 1, 32);
        assert!(one(op::BIND_SAMPLER_STATES, 0, &[0, 31, 0]).is_ok());
        // Streamout targets: at most 16 handles.
        too_many(op::SET_STREAMOUT_TARGETS, &[0; 18], 17, 16);
        assert!(one(op::SET_STREAMOUT_TARGETS, 0, &[0; 17]).is_ok());
        // Uniform buffers: stage below 6, index below 32.
        slots(op::SET_UNIFORM_BUFFER, &[0, 32, 0, 0, 0], 32, 1, 32);
        assert!(matches!(
            one(op::SET_UNIFORM_BUFFER, 0, &[7, 0, 0, 0, 0]),
            Err(WalkError::BadShaderStage { stage: 7, .. })
        ));
        assert!(matches!(
            one(op::SET_CONSTANT_BUFFER, 0, &[6, 0, 0]),
            Err(WalkError::BadShaderStage { stage: 6, .. })
        ));
        // Shader buffers: 3 dwords each; no buffers means no slot check.
        slots(
            op::SET_SHADER_BUFFERS,
            &[0, 31, 0, 0, 0, 0, 0, 0],
            31,
            2,
            32,
        );
        assert!(one(op::SET_SHADER_BUFFERS, 0, &[0, 100]).is_ok());
        assert!(one(op::SET_SHADER_BUFFERS, 0, &[0, 100, 0, 0]).is_ok());
        assert!(matches!(
            one(op::SET_SHADER_BUFFERS, 0, &[6, 0]),
            Err(WalkError::BadShaderStage { .. })
        ));
        // Images: 5 dwords each.
        slots(op::SET_SHADER_IMAGES, &[0, 32, 0, 0, 0, 0, 0], 32, 1, 32);
        assert!(one(op::SET_SHADER_IMAGES, 0, &[0, 31, 0, 0, 0, 0, 0]).is_ok());
        // Atomic buffers: n = (len - 1) / 3, start at dword 1.
        slots(op::SET_ATOMIC_BUFFERS, &[32, 0, 0, 0], 32, 1, 32);
        assert!(one(op::SET_ATOMIC_BUFFERS, 0, &[31, 0, 0, 0]).is_ok());
        assert!(one(op::SET_ATOMIC_BUFFERS, 0, &[99, 0]).is_ok());
    }

    /// The payload indices of the resources a command cannot do without.
    fn needed_resources(cmd: u8, object: u8) -> &'static [usize] {
        match (cmd, object) {
            (op::BLIT, _) => &[3, 12],
            (op::RESOURCE_COPY_REGION, _) => &[0, 5],
            (op::COPY_TRANSFER3D, _) => &[0, 11],
            (op::CLEAR_TEXTURE, _) => &[0],
            (op::CREATE_OBJECT, obj::SURFACE | obj::SAMPLER_VIEW | obj::STREAMOUT_TARGET)
            | (op::CREATE_OBJECT, obj::MSAA_SURFACE)
            | (op::GET_QUERY_RESULT_QBO, _) => &[1],
            _ => &[],
        }
    }

    #[test]
    fn resource_zero_is_refused_where_a_resource_is_needed() {
        let no_resource = |cmd| Err(WalkError::NoResource { offset: 0, cmd });
        assert_eq!(
            one(op::CLEAR_TEXTURE, 0, &[0; 12]),
            no_resource(op::CLEAR_TEXTURE)
        );
        let mut t = [0; 13];
        t[12] = 1;
        assert_eq!(one(op::TRANSFER3D, 0, &t), no_resource(op::TRANSFER3D));
        // Unbinding (0) is fine where it means none.
        assert!(one(op::SET_INDEX_BUFFER, 0, &[0]).is_ok());
    }

    #[test]
    fn field_rules() {
        let mut t = [0; 13];
        t[0] = 1;
        for direction in [1, 2] {
            t[12] = direction;
            assert!(one(op::TRANSFER3D, 0, &t).is_ok());
        }
        for direction in [0, 3, u32::MAX] {
            t[12] = direction;
            assert_eq!(
                one(op::TRANSFER3D, 0, &t),
                Err(WalkError::BadTransferDirection {
                    offset: 0,
                    cmd: op::TRANSFER3D,
                    direction,
                })
            );
        }
        assert!(one(op::SEND_STRING_MARKER, 0, &[4, 0]).is_ok());
        assert_eq!(
            one(op::SEND_STRING_MARKER, 0, &[5, 0]),
            Err(WalkError::MarkerTooLong {
                offset: 0,
                cmd: op::SEND_STRING_MARKER,
                bytes: 5,
                room: 4,
            })
        );
    }

    #[test]
    fn resource_handles_are_read_from_the_right_dwords() {
        let mut blit = [0; 21];
        (blit[3], blit[12]) = (101, 102);
        let mut rcr = [0; 13];
        (rcr[0], rcr[5]) = (103, 104);
        let mut iw = [0; 14];
        iw[0] = 105;
        let mut t3d = [0; 13];
        (t3d[0], t3d[12]) = (106, 1);
        let mut ct3d = [0; 14];
        (ct3d[0], ct3d[11]) = (107, 108);
        let mut ct = [0; 12];
        ct[0] = 109;
        let mut draw = [0; 20];
        (draw[14], draw[19]) = (110, 111);
        let mut grid = [0; 8];
        grid[6] = 112;
        let s = bytes(&[
            (op::BLIT, 0, &blit),
            (op::RESOURCE_COPY_REGION, 0, &rcr),
            (op::RESOURCE_INLINE_WRITE, 0, &iw),
            (op::TRANSFER3D, 0, &t3d),
            (op::COPY_TRANSFER3D, 0, &ct3d),
            (op::CLEAR_TEXTURE, 0, &ct),
            (op::DRAW_VBO, 0, &draw),
            (op::LAUNCH_GRID, 0, &grid),
            (op::CREATE_OBJECT, obj::SURFACE, &[1, 113, 67, 0, 0]),
            (op::CREATE_OBJECT, obj::SAMPLER_VIEW, &[2, 114, 67, 0, 0, 0]),
            (op::CREATE_OBJECT, obj::STREAMOUT_TARGET, &[3, 115, 0, 16]),
            (op::CREATE_OBJECT, obj::MSAA_SURFACE, &[4, 116, 67, 0, 0, 4]),
            (op::CREATE_OBJECT, obj::QUERY, &[5, 0, 0, 117]),
            (
                op::SET_VERTEX_BUFFERS,
                0,
                &[16, 0, 118, 16, 0, 0, 16, 0, 119],
            ),
            (op::SET_INDEX_BUFFER, 0, &[120, 2, 0]),
            (op::SET_UNIFORM_BUFFER, 0, &[1, 1, 0, 256, 121]),
            (
                op::SET_SHADER_BUFFERS,
                0,
                &[5, 0, 0, 64, 122, 0, 64, 123, 9],
            ),
            (op::SET_SHADER_IMAGES, 0, &[1, 2, 67, 0, 0, 0, 124]),
            (op::SET_ATOMIC_BUFFERS, 0, &[0, 0, 4, 125]),
            (op::GET_QUERY_RESULT_QBO, 0, &[5, 126, 1, 0, 0, 0]),
            (op::GET_MEMORY_INFO, 0, &[127]),
            (
                op::PIPE_RESOURCE_SET_TYPE,
                0,
                &[128, 67, 2, 64, 64, 0, 0, 0, 256, 0],
            ),
            // Repeats, zeros and non-resource handles add nothing.
            (op::SET_INDEX_BUFFER, 0, &[0]),
            (op::SET_INDEX_BUFFER, 0, &[101]),
            (op::SET_STREAMOUT_TARGETS, 0, &[0, 3]),
            (op::SET_SAMPLER_VIEWS, 0, &[1, 0, 2]),
            (op::SET_FRAMEBUFFER_STATE, 0, &[1, 0, 1]),
            (op::DRAW_VBO, 0, &[999; 12]),
        ]);
        let summary = walk(&s).unwrap();
        assert_eq!(summary.commands, 28);
        assert_eq!(summary.resources, (101..=128).collect::<Vec<_>>());
    }

    #[test]
    fn single_chunk_shaders() {
        let fs = shader(1, 1, FS.len() as u32, FS);
        assert!(one(op::CREATE_OBJECT, obj::SHADER, &fs).is_ok());
        // Compute: dword 5 is local memory, not a stream-output count.
        let mut cs = shader(2, COMPUTE, FS.len() as u32, FS);
        cs[4] = 1000;
        assert!(one(op::CREATE_OBJECT, obj::SHADER, &cs).is_ok());
        // Stream outputs: 4 strides and 2 dwords each before the text.
        let mut vs = vec![3, 0, FS.len() as u32, 300, 2, 4, 0, 0, 0, 1, 0, 2, 0];
        vs.extend_from_slice(&fs[5..]);
        assert!(one(op::CREATE_OBJECT, obj::SHADER, &vs).is_ok());
        let mut so = vec![3, 0, 0, 0, 65];
        so.extend([0; 200]);
        assert!(matches!(
            one(op::CREATE_OBJECT, obj::SHADER, &so),
            Err(WalkError::TooMany {
                count: 65,
                max: 64,
                ..
            })
        ));
        assert!(matches!(
            one(
                op::CREATE_OBJECT,
                obj::SHADER,
                &[3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]
            ),
            Err(WalkError::BadLength {
                expected: Length::AtLeast(13),
                ..
            })
        ));
        assert!(matches!(
            one(op::CREATE_OBJECT, obj::SHADER, &[3, 0, 0, 0]),
            Err(WalkError::BadLength {
                expected: Length::AtLeast(5),
                ..
            })
        ));
        assert!(matches!(
            one(
                op::CREATE_OBJECT,
                obj::SHADER,
                &shader(1, 6, FS.len() as u32, FS)
            ),
            Err(WalkError::BadShaderStage { stage: 6, .. })
        ));
        // No NUL in the last dword, or no text at all.
        let unterminated = shader(1, 1, 8, b"END\nEND\n");
        assert_eq!(
            one(op::CREATE_OBJECT, obj::SHADER, &unterminated),
            Err(WalkError::ShaderUnterminated {
                offset: 0,
                cmd: op::CREATE_OBJECT,
                handle: 1,
            })
        );
        assert!(matches!(
            one(op::CREATE_OBJECT, obj::SHADER, &shader(1, 1, 0, b"")),
            Err(WalkError::ShaderUnterminated { .. })
        ));
        // More text than declared.
        assert_eq!(
            one(op::CREATE_OBJECT, obj::SHADER, &shader(1, 1, 4, b"END\n\0")),
            Err(WalkError::ShaderTextTooLong {
                offset: 0,
                cmd: op::CREATE_OBJECT,
                handle: 1,
                end: 8,
                declared: 4,
            })
        );
    }

    #[test]
    fn chunked_shaders() {
        let total = FS.len() as u32;
        let (first, rest) = FS.split_at(32);
        let (middle, last) = rest.split_at(16);
        let start = shader(7, 1, total, first);
        let cont = |at: u32, text: &[u8]| shader(7, 1, SHADER_CONTINUATION | at, text);
        let good = bytes(&[
            (op::CREATE_OBJECT, obj::SHADER, &start),
            // Other stages and objects may come in between.
            (op::CREATE_OBJECT, obj::SHADER, &shader(8, 0, total, FS)),
            (op::CREATE_OBJECT, obj::SHADER, &cont(32, middle)),
            (op::CREATE_OBJECT, obj::SHADER, &cont(48, last)),
            // And the stage is free again.
            (op::CREATE_OBJECT, obj::SHADER, &shader(9, 1, total, FS)),
        ]);
        assert_eq!(walk(&good).unwrap().commands, 5);

        let second = 4 * (1 + start.len());
        let case = |second_chunk: &[u32]| {
            walk(&bytes(&[
                (op::CREATE_OBJECT, obj::SHADER, &start),
                (op::CREATE_OBJECT, obj::SHADER, second_chunk),
            ]))
        };
        assert_eq!(
            case(&cont(36, middle)),
            Err(WalkError::ShaderOffsetMismatch {
                offset: second,
                cmd: op::CREATE_OBJECT,
                handle: 7,
                expected: 32,
                found: 36,
            })
        );
        assert_eq!(
            case(&shader(9, 1, total, FS)),
            Err(WalkError::ShaderInterleaved {
                offset: second,
                cmd: op::CREATE_OBJECT,
                handle: 9,
                pending: 7,
            })
        );
        assert!(matches!(
            case(&shader(9, 1, SHADER_CONTINUATION | 32, middle)),
            Err(WalkError::ShaderInterleaved {
                handle: 9,
                pending: 7,
                ..
            })
        ));
        // The rest in one go fits exactly (the text is padded to dwords).
        assert_eq!(case(&cont(32, rest)).map(|s| s.commands), Ok(2));
        let mut long = rest.to_vec();
        long.extend([0; 4]);
        assert!(matches!(
            case(&cont(32, &long)),
            Err(WalkError::ShaderTextTooLong { .. })
        ));
        // Destroying or replacing the unfinished shader.
        let destroy = bytes(&[
            (op::CREATE_OBJECT, obj::SHADER, &start),
            (op::DESTROY_OBJECT, 0, &[7]),
        ]);
        assert!(matches!(
            walk(&destroy),
            Err(WalkError::ShaderAbandoned { handle: 7, .. })
        ));
        let replace = bytes(&[
            (op::CREATE_OBJECT, obj::SHADER, &start),
            (op::CREATE_OBJECT, obj::DSA, &[7, 0, 0, 0, 0]),
        ]);
        assert!(matches!(
            walk(&replace),
            Err(WalkError::ShaderAbandoned { handle: 7, .. })
        ));
        assert!(matches!(
            case(&shader(7, 0, total, FS)),
            Err(WalkError::ShaderAbandoned { handle: 7, .. })
        ));
        // A text of whole dwords whose last one has no NUL.
        let text = [b' '; 64];
        let bad = bytes(&[
            (
                op::CREATE_OBJECT,
                obj::SHADER,
                &shader(7, 1, 64, &text[..32]),
            ),
            (op::CREATE_OBJECT, obj::SHADER, &cont(32, &text[32..])),
        ]);
        assert!(matches!(
            walk(&bad),
            Err(WalkError::ShaderUnterminated { handle: 7, .. })
        ));
    }

    #[test]
    fn continuations_the_stream_cannot_judge_pass() {
        let total = FS.len() as u32;
        // Begun in an earlier submit: nothing to check against.
        let cont = shader(7, 1, SHADER_CONTINUATION | 32, &FS[32..]);
        assert!(one(op::CREATE_OBJECT, obj::SHADER, &cont).is_ok());
        // After a finished shader of that stage, a continuation is an orphan.
        let s = bytes(&[
            (op::CREATE_OBJECT, obj::SHADER, &shader(7, 1, total, FS)),
            (op::CREATE_OBJECT, obj::SHADER, &cont),
        ]);
        assert!(matches!(
            walk(&s),
            Err(WalkError::ShaderOrphanContinuation { handle: 7, .. })
        ));
        // Switching sub-context forgets what the stream knew.
        let s = bytes(&[
            (op::CREATE_OBJECT, obj::SHADER, &shader(7, 1, total, FS)),
            (op::SET_SUB_CTX, 0, &[2]),
            (op::CREATE_OBJECT, obj::SHADER, &cont),
        ]);
        assert!(walk(&s).is_ok());
        let s = bytes(&[
            (
                op::CREATE_OBJECT,
                obj::SHADER,
                &shader(7, 1, total, &FS[..32]),
            ),
            (op::SET_SUB_CTX, 0, &[2]),
            (op::CREATE_OBJECT, obj::SHADER, &shader(9, 1, total, FS)),
            (op::DESTROY_OBJECT, 0, &[7]),
        ]);
        assert!(walk(&s).is_ok());
    }

    #[test]
    fn errors_say_where_and_what() {
        let s = bytes(&[(op::SET_SUB_CTX, 0, &[1]), (op::CLEAR, 0, &[0; 7])]);
        let err = walk(&s).unwrap_err();
        assert_eq!((err.offset(), err.command()), (Some(8), Some(op::CLEAR)));
        assert_eq!(
            err.to_string(),
            "virgl command CLEAR (7) at byte 8: payload of 7 dwords, must be exactly 8"
        );
        let err = WalkError::Unaligned { len: 5 };
        assert_eq!((err.offset(), err.command()), (None, None));
        assert_eq!(
            err.to_string(),
            "virgl stream is 5 bytes, not a whole number of dwords"
        );
        assert_eq!(
            one(op::DRAW_VBO, 0, &[0; 1]).unwrap_err().to_string(),
            "virgl command DRAW_VBO (8) at byte 0: payload of 1 dwords, must be one of 12, 14, 20"
        );
        assert_eq!(
            one(op::SET_VERTEX_BUFFERS, 0, &[0; 1]).unwrap_err().to_string(),
            "virgl command SET_VERTEX_BUFFERS (6) at byte 0: payload of 1 dwords, must be 0 plus a multiple of 3"
        );
        assert_eq!(
            one(200, 0, &[]).unwrap_err().to_string(),
            "virgl command unknown (200) at byte 0: the host knows command ids below 62 only"
        );
        assert_eq!(
            one(op::CREATE_OBJECT, 12, &[1]).unwrap_err().to_string(),
            "virgl command CREATE_OBJECT (1) at byte 0: object type unknown (12) not allowed here"
        );
        // Every variant has a message.
        let e = |err: WalkError| assert!(!err.to_string().is_empty());
        e(one(op::FIRST_VIDEO, 0, &[]).unwrap_err());
        e(walk(&0x0005_0000u32.to_le_bytes()).unwrap_err());
    }

    /// A small LCG (Knuth's MMIX constants): deterministic noise.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 32) as u32
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Lcg(0x5eed);
        for _ in 0..5000 {
            let len = rng.next() as usize % 256;
            let noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if let Ok(summary) = walk(&noise) {
                assert!(summary.commands <= len / 4);
            }
        }
    }

    /// Noise with plausible headers, so the walk gets past the framing and
    /// into every command's rules.
    #[test]
    fn random_commands_never_panic() {
        let mut rng = Lcg(42);
        let mut accepted = 0;
        for _ in 0..5000 {
            let mut s = Stream::new();
            for _ in 0..rng.next() % 8 {
                let cmd = (rng.next() % 56) as u8;
                let object = (rng.next() % 13) as u8;
                let len = match rng.next() % 4 {
                    0 => rng.next() % 40,
                    _ => rng.next() % 16,
                };
                let payload: Vec<u32> = (0..len)
                    .map(|_| match rng.next() % 4 {
                        0 => rng.next(),
                        1 => SHADER_CONTINUATION | (rng.next() % 64),
                        _ => rng.next() % 8,
                    })
                    .collect();
                s.command(cmd, object, &payload);
            }
            let bytes = s.to_bytes();
            if walk(&bytes).is_ok() {
                accepted += 1;
            }
            // Any cut of a stream is walked without panicking too.
            let cut = rng.next() as usize % (bytes.len() + 1);
            let _ = walk(&bytes[..cut]);
        }
        // The generator does reach valid streams, not only errors.
        assert!(accepted > 100, "{accepted}");
    }
}
