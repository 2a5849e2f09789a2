//! Capability sets: the query commands and a validating parser for the common
//! virgl capset header.
//!
//! Command layouts: [§5.7 Device Operation: controlq]. The capset contents are not
//! part of the virtio spec; they are `struct virgl_caps_v1`/`v2` from virglrenderer's
//! `virgl_hw.h`, whose first 308 bytes both versions share.
//!
//! [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007

use core::fmt;

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::cmd2d::Format;
use crate::header::CtrlHdr;
use crate::ids::CapsetId;
use crate::message::{impl_request, Response};
use crate::types::{CommandType, ResponseType};

/// `struct virtio_gpu_get_capset_info`, 32 bytes ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct GetCapsetInfo {
    /// Request header.
    pub hdr: CtrlHdr,
    /// Which capset to describe, `0..num_capsets`.
    pub capset_index: U32,
    /// Must be zero.
    pub padding: U32,
}

const _: () = assert!(core::mem::size_of::<GetCapsetInfo>() == 32);
impl_request!(GetCapsetInfo => CommandType::GET_CAPSET_INFO, RespCapsetInfo);

impl GetCapsetInfo {
    /// Asks about the capset at position `index` (not a capset id).
    pub fn new(index: u32) -> Self {
        Self {
            hdr: CtrlHdr::new(CommandType::GET_CAPSET_INFO),
            capset_index: U32::new(index),
            padding: U32::ZERO,
        }
    }
}

/// `struct virtio_gpu_resp_capset_info`, 40 bytes ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct RespCapsetInfo {
    /// Response header.
    pub hdr: CtrlHdr,
    /// The capset's id (see [`CapsetId`]).
    pub capset_id: U32,
    /// Highest version the host can fill in.
    pub capset_max_version: U32,
    /// Size of the capset data in bytes; varies between host versions, so always
    /// size `GET_CAPSET` buffers from this rather than from a constant.
    pub capset_max_size: U32,
    /// Must be zero.
    pub padding: U32,
}

const _: () = assert!(core::mem::size_of::<RespCapsetInfo>() == 40);

impl Response for RespCapsetInfo {
    const TYPE: ResponseType = ResponseType::OK_CAPSET_INFO;
}

/// `struct virtio_gpu_get_capset`, 32 bytes ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct GetCapset {
    /// Request header.
    pub hdr: CtrlHdr,
    /// Capset id, as reported by `GET_CAPSET_INFO`.
    pub capset_id: U32,
    /// Version to fill in, at most the reported maximum.
    pub capset_version: U32,
}

const _: () = assert!(core::mem::size_of::<GetCapset>() == 32);
impl_request!(GetCapset => CommandType::GET_CAPSET, RespCapset);

impl GetCapset {
    /// Fetches capset `id` at `version`.
    pub fn new(id: CapsetId, version: u32) -> Self {
        Self {
            hdr: CtrlHdr::new(CommandType::GET_CAPSET),
            capset_id: U32::new(id.get()),
            capset_version: U32::new(version),
        }
    }
}

/// `struct virtio_gpu_resp_capset`, fixed part (24 bytes): the header, followed in the
/// response buffer by `capset_max_size` bytes of capset data
/// ([§5.7 Device Operation: controlq]).
///
/// [§5.7 Device Operation: controlq]: https://docs.oasis-open.org/virtio/virtio/v1.2/virtio-v1.2.html#x1-3650007
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct RespCapset {
    /// Response header.
    pub hdr: CtrlHdr,
}

const _: () = assert!(core::mem::size_of::<RespCapset>() == 24);

impl Response for RespCapset {
    const TYPE: ResponseType = ResponseType::OK_CAPSET;
}

/// Size of `struct virgl_caps_v1`, and so of the header every virgl capset starts with.
pub const CAPSET_V1_SIZE: usize = 308;

/// One bit per virgl format (`bit f` = `mask[f / 32] >> (f % 32) & 1`).
pub type FormatMask = [U32; 16];

/// Whether `format` has its bit set in `mask`; formats beyond the mask's 512 bits are
/// never supported.
pub fn format_supported(mask: &FormatMask, format: u32) -> bool {
    usize::try_from(format / 32)
        .ok()
        .and_then(|word| mask.get(word))
        .is_some_and(|word| word.get() >> (format % 32) & 1 != 0)
}

/// The first 308 bytes of a virgl capset (`struct virgl_caps_v1`), shared by
/// `VIRGL` and `VIRGL2` capsets.
///
/// Read it with [`CapsetHeader::parse`], which rejects data that cannot be a usable
/// virgl capset; the raw layout is still available via zerocopy for test fixtures.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned, Clone, Copy, Debug, Default)]
pub struct CapsetHeader {
    /// Capset layout version the host filled in: 1 for VIRGL, 2 for VIRGL2.
    pub max_version: U32,
    /// Formats usable as sampler views.
    pub sampler: FormatMask,
    /// Formats usable as render targets.
    pub render: FormatMask,
    /// Formats usable as depth/stencil buffers.
    pub depthstencil: FormatMask,
    /// Formats usable as vertex attributes.
    pub vertexbuffer: FormatMask,
    /// `virgl_caps_bool_set1` feature bits.
    pub bset: U32,
    /// Highest GLSL version supported, as in `#version` (130, 330, 450, ...).
    pub glsl_level: U32,
    /// Maximum array texture layers.
    pub max_texture_array_layers: U32,
    /// Maximum transform-feedback buffers.
    pub max_streamout_buffers: U32,
    /// Maximum dual-source blend render targets.
    pub max_dual_source_render_targets: U32,
    /// Maximum simultaneous render targets.
    pub max_render_targets: U32,
    /// Maximum MSAA sample count.
    pub max_samples: U32,
    /// Supported primitive types, one bit per `PIPE_PRIM_*`.
    pub prim_mask: U32,
    /// Maximum texture buffer object size.
    pub max_tbo_size: U32,
    /// Maximum uniform buffer blocks.
    pub max_uniform_blocks: U32,
    /// Maximum viewports.
    pub max_viewports: U32,
    /// Maximum components returned by texture gather.
    pub max_texture_gather_components: U32,
}

const _: () = assert!(core::mem::size_of::<CapsetHeader>() == CAPSET_V1_SIZE);

impl CapsetHeader {
    /// Parses and sanity-checks the capset data returned for capset `id` (the bytes
    /// after the [`RespCapset`] header).
    ///
    /// The checks are the ones that catch a host that filled in nothing or the wrong
    /// layout: enough bytes for the v1 header, `max_version` matching the capset id,
    /// a non-zero GLSL level, and at least one of the two RGBA8 formats renderable.
    pub fn parse(id: CapsetId, data: &[u8]) -> Result<Self, CapsetError> {
        let expected_version = match id {
            CapsetId::VIRGL => 1,
            CapsetId::VIRGL2 => 2,
            other => return Err(CapsetError::NotVirgl(other)),
        };
        let (header, _) =
            Self::read_from_prefix(data).map_err(|_| CapsetError::TooShort { len: data.len() })?;
        let found = header.max_version.get();
        if found != expected_version {
            return Err(CapsetError::VersionMismatch {
                expected: expected_version,
                found,
            });
        }
        if header.glsl_level.get() == 0 {
            return Err(CapsetError::NoGlsl);
        }
        let renderable = [Format::B8G8R8A8_UNORM, Format::R8G8B8A8_UNORM]
            .into_iter()
            .any(|format| format_supported(&header.render, format.0));
        if !renderable {
            return Err(CapsetError::NoRenderableFormat);
        }
        Ok(header)
    }
}

/// Why [`CapsetHeader::parse`] rejected capset data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapsetError {
    /// The capset id is not a virgl capset, so the header layout does not apply.
    NotVirgl(CapsetId),
    /// Fewer than [`CAPSET_V1_SIZE`] bytes.
    TooShort {
        /// Bytes received.
        len: usize,
    },
    /// `max_version` does not match the capset id (likely an unfilled buffer).
    VersionMismatch {
        /// Version implied by the capset id.
        expected: u32,
        /// Version in the data.
        found: u32,
    },
    /// `glsl_level` is zero.
    NoGlsl,
    /// Neither B8G8R8A8 nor R8G8B8A8 is in the render mask.
    NoRenderableFormat,
}

impl fmt::Display for CapsetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotVirgl(id) => write!(f, "capset {} is not a virgl capset", id.get()),
            Self::TooShort { len } => write!(
                f,
                "capset data is {len} bytes, shorter than the {CAPSET_V1_SIZE}-byte virgl header"
            ),
            Self::VersionMismatch { expected, found } => write!(
                f,
                "capset max_version is {found}, expected {expected} for this capset id"
            ),
            Self::NoGlsl => f.write_str("capset reports GLSL level 0"),
            Self::NoRenderableFormat => {
                f.write_str("capset render mask has neither B8G8R8A8 nor R8G8B8A8")
            }
        }
    }
}

impl core::error::Error for CapsetError {}
