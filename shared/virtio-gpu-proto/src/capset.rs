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

/// Byte offset of `max_texture_2d_size` in `struct virgl_caps_v2` (virglrenderer
/// 0.10.4 `virgl_hw.h`): the 308-byte v1 part, then 9 floats (point sizes, line
/// widths, LOD bias), 13 dwords (`max_geom_output_vertices` to `capability_bits`),
/// `sample_locations[8]`, 8 dwords (`max_vertex_attrib_stride` to
/// `max_compute_shared_memory_size`) and the two 3-dword compute grid and block
/// sizes: 308 + 36 + 52 + 32 + 32 + 24. Every member is 4 bytes, so there is no
/// padding; `offsetof` on the header agrees.
pub const V2_MAX_TEXTURE_2D_SIZE_OFFSET: usize = 484;
/// Byte offset of `max_texture_3d_size` in `struct virgl_caps_v2`, right after
/// `max_texture_2d_size`.
pub const V2_MAX_TEXTURE_3D_SIZE_OFFSET: usize = 488;
/// Byte offset of `max_texture_cube_size` in `struct virgl_caps_v2`, right after
/// `max_texture_3d_size`.
pub const V2_MAX_TEXTURE_CUBE_SIZE_OFFSET: usize = 492;

/// The limits a capset sets on texture sizes, for validating resources before
/// creating them.
///
/// virglrenderer 0.10.4 refuses a texture wider, higher or deeper than its 2D, 3D
/// or cube limit (`check_resource_valid`, host-validation §1.2). It uses the GL
/// values reported here only once capset 2 has been filled, 16384 until then, so
/// fetch capset 2 before creating resources. It does not check the array layer
/// count at all; exceeding GL's limit only fails later, killing the context, so
/// the guest has to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextureLimits {
    /// Maximum array texture layers (v1 `max_texture_array_layers`,
    /// `GL_MAX_ARRAY_TEXTURE_LAYERS`).
    pub max_texture_array_layers: u32,
    /// Maximum width and height of 1D, 2D and rectangle textures (v2,
    /// `GL_MAX_TEXTURE_SIZE`); `None` without the v2 part.
    pub max_texture_2d_size: Option<u32>,
    /// Maximum width, height and depth of 3D textures (v2,
    /// `GL_MAX_3D_TEXTURE_SIZE`); `None` without the v2 part.
    pub max_texture_3d_size: Option<u32>,
    /// Maximum width (equal to height) of cube map faces (v2,
    /// `GL_MAX_CUBE_MAP_TEXTURE_SIZE`); `None` without the v2 part.
    pub max_texture_cube_size: Option<u32>,
}

impl CapsetHeader {
    /// The texture size limits of the capset `data` this header was parsed from.
    ///
    /// The v2 limits are read only when the header says the host filled in v2
    /// (`max_version` 2 or more) and `data` reaches that far; each is bounds-checked
    /// on its own, so data cut short loses only the fields past the cut.
    pub fn texture_limits(&self, data: &[u8]) -> TextureLimits {
        let v2 = |offset| {
            if self.max_version.get() >= 2 {
                read_u32(data, offset)
            } else {
                None
            }
        };
        TextureLimits {
            max_texture_array_layers: self.max_texture_array_layers.get(),
            max_texture_2d_size: v2(V2_MAX_TEXTURE_2D_SIZE_OFFSET),
            max_texture_3d_size: v2(V2_MAX_TEXTURE_3D_SIZE_OFFSET),
            max_texture_cube_size: v2(V2_MAX_TEXTURE_CUBE_SIZE_OFFSET),
        }
    }
}

/// The little-endian `u32` at `offset` of `data`, if `data` holds all four bytes.
fn read_u32(data: &[u8], offset: usize) -> Option<u32> {
    let bytes = data.get(offset..offset.checked_add(4)?)?;
    Some(U32::read_from_bytes(bytes).ok()?.get())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A VIRGL2 capset of Debian 12's size (1376 bytes) with the texture limits at
    /// their v2 offsets, and distinct values so a wrong offset shows.
    fn synthetic_v2() -> [u8; 1376] {
        let mut header = CapsetHeader::default();
        header.max_version.set(2);
        header.glsl_level.set(450);
        header.render[2].set(1 << 3);
        header.max_texture_array_layers.set(2048);
        let mut data = [0; 1376];
        data[..CAPSET_V1_SIZE].copy_from_slice(header.as_bytes());
        for (offset, value) in [
            (480, 1024u32),
            (484, 16384),
            (488, 2048),
            (492, 8192),
            (496, 7),
        ] {
            data[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
        }
        data
    }

    #[test]
    fn v2_texture_limits_are_read_at_their_offsets() {
        let data = synthetic_v2();
        let header = CapsetHeader::parse(CapsetId::VIRGL2, &data).unwrap();
        assert_eq!(
            header.texture_limits(&data),
            TextureLimits {
                max_texture_array_layers: 2048,
                max_texture_2d_size: Some(16384),
                max_texture_3d_size: Some(2048),
                max_texture_cube_size: Some(8192),
            }
        );
    }

    #[test]
    fn short_or_v1_capsets_have_no_v2_limits() {
        let data = synthetic_v2();
        let header = CapsetHeader::parse(CapsetId::VIRGL2, &data).unwrap();
        let cut = |len: usize| header.texture_limits(&data[..len]);
        let none = TextureLimits {
            max_texture_array_layers: 2048,
            max_texture_2d_size: None,
            max_texture_3d_size: None,
            max_texture_cube_size: None,
        };
        assert_eq!(cut(CAPSET_V1_SIZE), none);
        assert_eq!(cut(487), none);
        assert_eq!(
            cut(495),
            TextureLimits {
                max_texture_2d_size: Some(16384),
                max_texture_3d_size: Some(2048),
                ..none
            }
        );
        assert_eq!(cut(496).max_texture_cube_size, Some(8192));

        // A v1 capset's bytes past the header mean nothing, however many there are.
        let mut v1 = data;
        v1[0..4].copy_from_slice(&1u32.to_le_bytes());
        let header = CapsetHeader::parse(CapsetId::VIRGL, &v1).unwrap();
        assert_eq!(header.texture_limits(&v1), none);
    }
}
