//! What a resource is, as it was created, and the checks that keep the
//! commands on it within what the host accepts.
//!
//! This backend answers OK to nearly everything and lets virglrenderer
//! fail silently: a resource it refused does not exist, and a transfer out
//! of bounds marks the client's context dead for good, after which that
//! client renders garbage with every ioctl answering 0. So the rules
//! virglrenderer 0.10.4 applies (vrend_renderer.c `check_resource_valid`,
//! `check_transfer_bounds`, `check_iov_bounds`, and QEMU 7.2's
//! vhost-user-gpu for 2D) are applied here first, and a command breaking
//! them is EINVAL to its sender before the host sees it.

use virgl_stream::formats::{self, Block};
use virtio_gpu_proto::{Box3d, Format, Rect, Resource3dParams};

/// Why a command on a resource is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// The creation parameters break a rule of the host's.
    #[error("invalid resource: {0}")]
    Resource(&'static str),
    /// A transfer reaches outside the resource or its backing.
    #[error("transfer out of bounds: {0}")]
    Transfer(&'static str),
}

/// Gallium texture targets (`enum pipe_texture_target`).
mod target {
    pub const BUFFER: u32 = 0;
    pub const TEXTURE_1D: u32 = 1;
    pub const TEXTURE_2D: u32 = 2;
    pub const TEXTURE_3D: u32 = 3;
    pub const CUBE: u32 = 4;
    pub const RECT: u32 = 5;
    pub const TEXTURE_1D_ARRAY: u32 = 6;
    pub const TEXTURE_2D_ARRAY: u32 = 7;
    pub const CUBE_ARRAY: u32 = 8;
}

/// `VIRGL_BIND_*` bits that matter to the host's checks.
mod bind {
    pub const DEPTH_STENCIL: u32 = 1 << 0;
    pub const RENDER_TARGET: u32 = 1 << 1;
    pub const SAMPLER_VIEW: u32 = 1 << 3;
    pub const VERTEX_BUFFER: u32 = 1 << 4;
    pub const INDEX_BUFFER: u32 = 1 << 5;
    pub const CONSTANT_BUFFER: u32 = 1 << 6;
    pub const COMMAND_ARGS: u32 = 1 << 8;
    pub const STREAM_OUTPUT: u32 = 1 << 11;
    pub const SHADER_BUFFER: u32 = 1 << 14;
    pub const QUERY_BUFFER: u32 = 1 << 15;
    pub const CURSOR: u32 = 1 << 16;
    pub const CUSTOM: u32 = 1 << 17;
    pub const STAGING: u32 = 1 << 19;
    pub const SHARED: u32 = 1 << 20;
    pub const LINEAR: u32 = 1 << 22;
}

/// `VIRGL_RESOURCE_Y_0_TOP`, `..._MAP_PERSISTENT`, `..._MAP_COHERENT`.
const Y_0_TOP: u32 = 1;
const KNOWN_FLAGS: u32 = 1 | 2 | 4;

/// The host's texture size limits (capset 2; virglrenderer's defaults
/// until a client has read it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest 1D/2D texture side.
    pub max_2d: u32,
    /// Largest 3D texture side.
    pub max_3d: u32,
    /// Largest cube map side.
    pub max_cube: u32,
    /// Most layers of an array texture (0: unchecked, as the host).
    pub max_layers: u32,
}

impl Default for Limits {
    /// virglrenderer's own defaults (vrend_renderer.c).
    fn default() -> Self {
        Limits {
            max_2d: 16384,
            max_3d: 16384,
            max_cube: 16384,
            max_layers: 0,
        }
    }
}

/// A 3D (virgl) resource as RESOURCE_CREATE_3D made it: its creation
/// parameters, checked by [`TextureRules`].
pub type Texture = Resource3dParams;

/// What a resource is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A virgl resource (RESOURCE_CREATE_3D).
    Texture(Texture),
    /// A 2D image (RESOURCE_CREATE_2D): 4 bytes a pixel on the host.
    Image {
        /// Its format.
        format: Format,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// A blob resource: its size in bytes.
    Blob(u64),
}

fn is_buffer_bind(b: u32) -> bool {
    // The host tests equality, not a mask: exactly one of these (or 0).
    matches!(
        b,
        0 | bind::CUSTOM
            | bind::STAGING
            | bind::INDEX_BUFFER
            | bind::STREAM_OUTPUT
            | bind::VERTEX_BUFFER
            | bind::CONSTANT_BUFFER
            | bind::QUERY_BUFFER
            | bind::COMMAND_ARGS
            | bind::SHADER_BUFFER
    )
}

/// `u_minify`: a dimension at mip `level`.
fn minify(v: u32, level: u32) -> u32 {
    v.checked_shr(level).unwrap_or(0).max(1)
}

/// floor(log2(v)) for v >= 1.
fn log2(v: u32) -> u32 {
    31 - v.max(1).leading_zeros()
}

/// The host's rules for a texture: what it may be created as, and which
/// transfers it takes.
pub trait TextureRules {
    /// Checks the creation parameters as `check_resource_valid` does, with
    /// the gaps it leaves closed (its last level may be one more than GL
    /// allows, and it does not bound layers: the texture would then have
    /// no storage and the first upload kill the context).
    fn validate(&self, limits: Limits) -> Result<Block, ShapeError>;

    /// The bytes of backing a transfer of `bx` at `level` touches from its
    /// offset, for the given strides (0: the level's), checked as
    /// `check_transfer_bounds` and `check_iov_bounds` do; the host
    /// computes in 32 bits, so the span must fit them too. Readback of a
    /// buffer in a format of more than one byte a block is refused: the
    /// host would read that many times the box from a mapping of the box.
    fn transfer_span(
        &self,
        level: u32,
        bx: Box3d,
        stride: u32,
        layer_stride: u32,
        readback: bool,
    ) -> Result<u64, ShapeError>;
}

impl TextureRules for Texture {
    fn validate(&self, limits: Limits) -> Result<Block, ShapeError> {
        use target::*;
        let bad = |why| Err(ShapeError::Resource(why));
        if self.target > CUBE_ARRAY {
            return bad("target");
        }
        let Some(block) = formats::block(self.format) else {
            return bad("format");
        };
        if self.nr_samples > 1
            && (!matches!(self.target, TEXTURE_2D | TEXTURE_2D_ARRAY) || self.last_level != 0)
        {
            return bad("multisampling needs a 2D target and one level");
        }
        if self.flags & !KNOWN_FLAGS != 0
            || (self.flags & Y_0_TOP != 0 && !matches!(self.target, TEXTURE_2D | RECT))
        {
            return bad("flags");
        }
        if is_buffer_bind(self.bind) {
            if self.target != BUFFER || self.height != 1 || self.depth != 1 {
                return bad("a buffer binding needs a buffer of height and depth 1");
            }
        } else {
            let usable = bind::SAMPLER_VIEW
                | bind::DEPTH_STENCIL
                | bind::RENDER_TARGET
                | bind::CURSOR
                | bind::SHARED
                | bind::LINEAR;
            if self.bind & usable == 0 {
                return bad("bind");
            }
        }
        if self.target == BUFFER {
            if self.width == 0 || self.last_level != 0 || self.array_size > 1 {
                return bad("a buffer has a width, one level and one layer");
            }
            return Ok(block);
        }
        if self.width == 0 || self.height == 0 || self.depth == 0 {
            return bad("a texture has a width, height and depth");
        }
        let levels_side = match self.target {
            TEXTURE_3D => self.width.max(self.height).max(self.depth),
            _ => self.width.max(self.height),
        };
        if self.last_level > 0 && (self.target == RECT || self.last_level > log2(levels_side)) {
            return bad("more levels than the mip chain has");
        }
        let layers_ok = match self.target {
            CUBE => self.array_size == 6,
            CUBE_ARRAY => self.array_size >= 6 && self.array_size.is_multiple_of(6),
            TEXTURE_1D_ARRAY | TEXTURE_2D_ARRAY => self.array_size >= 1,
            _ => self.array_size <= 1,
        };
        let layered = matches!(
            self.target,
            TEXTURE_1D_ARRAY | TEXTURE_2D_ARRAY | CUBE_ARRAY
        );
        if !layers_ok || (layered && limits.max_layers != 0 && self.array_size > limits.max_layers)
        {
            return bad("layers");
        }
        let fits = |side: u32, max: u32| side <= max;
        let dims_ok = match self.target {
            TEXTURE_1D | TEXTURE_1D_ARRAY => {
                self.height == 1 && self.depth == 1 && fits(self.width, limits.max_2d)
            }
            TEXTURE_2D | RECT | TEXTURE_2D_ARRAY => {
                self.depth == 1
                    && fits(self.width, limits.max_2d)
                    && fits(self.height, limits.max_2d)
            }
            TEXTURE_3D => [self.width, self.height, self.depth]
                .iter()
                .all(|&s| fits(s, limits.max_3d)),
            _ => self.depth == 1 && self.width == self.height && fits(self.width, limits.max_cube),
        };
        if !dims_ok {
            return bad("dimensions");
        }
        Ok(block)
    }

    fn transfer_span(
        &self,
        level: u32,
        bx: Box3d,
        stride: u32,
        layer_stride: u32,
        readback: bool,
    ) -> Result<u64, ShapeError> {
        let bad = |why| Err(ShapeError::Transfer(why));
        let block = formats::block(self.format).ok_or(ShapeError::Transfer("format"))?;
        let (x, y, z) = (bx.x.get(), bx.y.get(), bx.z.get());
        let (w, h, d) = (bx.w.get(), bx.h.get(), bx.d.get());
        // The host reads the box as ints.
        if [x, y, z, w, h, d].iter().any(|&v| v > i32::MAX as u32) {
            return bad("negative box");
        }
        if level > self.last_level {
            return bad("level past the mip chain");
        }
        let within =
            |pos: u32, len: u32, extent: u32| u64::from(pos) + u64::from(len) <= u64::from(extent);
        let (lw, lh) = (minify(self.width, level), minify(self.height, level));
        let layers = match self.target {
            target::TEXTURE_3D => minify(self.depth, level),
            target::BUFFER => 1,
            _ => self.array_size,
        };
        if !within(x, w, lw) || !within(y, h, lh) || !within(z, d, layers) {
            return bad("box past the resource");
        }
        if readback && self.target == target::BUFFER && block.bytes != 1 {
            return bad("readback of a buffer with blocks of more than a byte");
        }
        let blocks_x = |n: u32| u64::from(n.div_ceil(block.width));
        let blocks_y = |n: u32| u64::from(n.div_ceil(block.height));
        let bs = u64::from(block.bytes);
        let stride = match stride {
            0 => blocks_x(lw) * bs,
            s if u64::from(s) >= blocks_x(w) * bs => u64::from(s),
            _ => return bad("stride shorter than a row"),
        };
        let layer_stride = match layer_stride {
            0 => blocks_y(lh) * stride,
            s if u64::from(s) >= blocks_y(h) * stride => u64::from(s),
            _ => return bad("layer stride shorter than a layer"),
        };
        // vrend_transfer_size: an empty dimension counts as one.
        let span = u64::from(d.max(1) - 1) * layer_stride
            + (blocks_y(h.max(1)) - 1) * stride
            + blocks_x(w.max(1)) * bs;
        if span > u64::from(u32::MAX) {
            return bad("larger than the host's 32-bit sizes");
        }
        Ok(span)
    }
}

impl Shape {
    /// Checks a 2D image's parameters as vhost-user-gpu does, and that its
    /// host image (4 bytes a pixel, sized in 32 bits there) cannot wrap.
    pub fn image(format: Format, width: u32, height: u32) -> Result<Shape, ShapeError> {
        let known = [
            Format::B8G8R8A8_UNORM,
            Format::B8G8R8X8_UNORM,
            Format::A8R8G8B8_UNORM,
            Format::X8R8G8B8_UNORM,
            Format::R8G8B8A8_UNORM,
            Format::X8B8G8R8_UNORM,
            Format::A8B8G8R8_UNORM,
            Format::R8G8B8X8_UNORM,
        ];
        if !known.contains(&format) {
            return Err(ShapeError::Resource("2D format"));
        }
        if width == 0 || height == 0 || u64::from(width) * u64::from(height) > i32::MAX as u64 / 4 {
            return Err(ShapeError::Resource("2D dimensions"));
        }
        Ok(Shape::Image {
            format,
            width,
            height,
        })
    }

    /// Checks that `r` lies inside a 2D image (TRANSFER_TO_HOST_2D,
    /// RESOURCE_FLUSH, SET_SCANOUT): the host answers an error for one
    /// outside, but only after reading the backing.
    pub fn rect_inside(&self, r: Rect) -> Result<(), ShapeError> {
        let (width, height) = match *self {
            Shape::Image { width, height, .. } => (width, height),
            Shape::Texture(t) => (t.width, t.height),
            Shape::Blob(_) => return Err(ShapeError::Transfer("a blob has no rectangles")),
        };
        let within =
            |pos: u32, len: u32, extent: u32| u64::from(pos) + u64::from(len) <= u64::from(extent);
        if within(r.x.get(), r.width.get(), width) && within(r.y.get(), r.height.get(), height) {
            Ok(())
        } else {
            Err(ShapeError::Transfer("rectangle past the image"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgba(width: u32, height: u32) -> Texture {
        Texture {
            target: target::TEXTURE_2D,
            format: 67,
            bind: bind::SAMPLER_VIEW | bind::RENDER_TARGET,
            width,
            height,
            depth: 1,
            array_size: 1,
            last_level: 0,
            nr_samples: 0,
            flags: 0,
        }
    }

    fn bx(x: u32, y: u32, z: u32, w: u32, h: u32, d: u32) -> Box3d {
        Box3d::new(x, y, z, w, h, d)
    }

    #[test]
    fn what_mesa_creates_is_valid() {
        let limits = Limits::default();
        assert!(rgba(64, 64).validate(limits).is_ok());
        let buffer = Texture {
            target: target::BUFFER,
            format: 64,
            bind: bind::VERTEX_BUFFER,
            width: 4096,
            height: 1,
            ..rgba(1, 1)
        };
        assert!(buffer.validate(limits).is_ok());
        let mipped = Texture {
            last_level: 6,
            ..rgba(64, 32)
        };
        assert!(mipped.validate(limits).is_ok());
        let cube = Texture {
            target: target::CUBE,
            array_size: 6,
            ..rgba(32, 32)
        };
        assert!(cube.validate(limits).is_ok());
    }

    #[test]
    fn what_the_host_would_refuse_or_choke_on_is_refused() {
        let limits = Limits::default();
        let refused = |t: Texture| assert!(t.validate(limits).is_err(), "{t:?}");
        refused(Texture {
            target: 99,
            ..rgba(8, 8)
        });
        refused(Texture {
            format: 0,
            ..rgba(8, 8)
        });
        refused(Texture {
            width: 0,
            ..rgba(8, 8)
        });
        // log2(64) = 6: a 7th level is one too many (the host allows it).
        refused(Texture {
            last_level: 7,
            ..rgba(64, 64)
        });
        refused(Texture {
            depth: 2,
            ..rgba(8, 8)
        });
        refused(Texture {
            target: target::CUBE,
            array_size: 5,
            ..rgba(8, 8)
        });
        refused(Texture {
            target: target::CUBE,
            array_size: 6,
            ..rgba(8, 4)
        });
        refused(Texture {
            width: 1 << 20,
            ..rgba(8, 8)
        });
        refused(Texture {
            bind: 0,
            ..rgba(8, 8)
        });
        refused(Texture {
            flags: 8,
            ..rgba(8, 8)
        });
        refused(Texture {
            nr_samples: 4,
            last_level: 1,
            ..rgba(8, 8)
        });
        let limited = Limits {
            max_layers: 16,
            ..limits
        };
        let array = Texture {
            target: target::TEXTURE_2D_ARRAY,
            array_size: 17,
            ..rgba(8, 8)
        };
        assert!(array.validate(limited).is_err());
    }

    #[test]
    fn transfers_inside_the_resource_pass_with_their_byte_span() {
        let t = Texture {
            last_level: 2,
            ..rgba(16, 16)
        };
        assert_eq!(
            t.transfer_span(0, bx(0, 0, 0, 16, 16, 1), 0, 0, false),
            Ok(16 * 16 * 4)
        );
        // A sub-box spans whole rows of the level up to its last pixel.
        assert_eq!(
            t.transfer_span(0, bx(0, 0, 0, 4, 2, 1), 0, 0, false),
            Ok(64 + 16)
        );
        assert_eq!(
            t.transfer_span(2, bx(0, 0, 0, 4, 4, 1), 0, 0, false),
            Ok(4 * 4 * 4)
        );
        assert_eq!(
            t.transfer_span(0, bx(0, 0, 0, 16, 16, 1), 128, 0, false),
            Ok(15 * 128 + 64)
        );
    }

    #[test]
    fn transfers_past_the_resource_are_refused() {
        let t = rgba(16, 16);
        let refused = |r: Result<u64, ShapeError>| assert!(r.is_err(), "{r:?}");
        refused(t.transfer_span(0, bx(8, 0, 0, 16, 16, 1), 0, 0, false));
        refused(t.transfer_span(0, bx(0, 0, 0, u32::MAX, u32::MAX, 1), 0, 0, false));
        refused(t.transfer_span(5, bx(0, 0, 0, 1, 1, 1), 0, 0, false));
        refused(t.transfer_span(0, bx(0, 0, 3, 16, 16, 1), 0, 0, false));
        refused(t.transfer_span(0, bx(0, 0, 0, 16, 16, 1), 8, 0, false));
        let buffer = Texture {
            target: target::BUFFER,
            format: 67,
            bind: bind::VERTEX_BUFFER,
            width: 64,
            height: 1,
            ..rgba(1, 1)
        };
        assert!(buffer
            .transfer_span(0, bx(0, 0, 0, 64, 1, 1), 0, 0, false)
            .is_ok());
        refused(buffer.transfer_span(0, bx(0, 0, 0, 64, 1, 1), 0, 0, true));
    }

    #[test]
    fn images_follow_vhost_user_gpus_rules() {
        assert!(Shape::image(Format::B8G8R8X8_UNORM, 64, 64).is_ok());
        assert!(Shape::image(Format(99), 64, 64).is_err());
        assert!(Shape::image(Format::B8G8R8X8_UNORM, 0, 64).is_err());
        assert!(Shape::image(Format::B8G8R8X8_UNORM, 1 << 16, 1 << 16).is_err());
        let image = Shape::image(Format::B8G8R8X8_UNORM, 64, 32).unwrap();
        assert!(image.rect_inside(Rect::new(0, 0, 64, 32)).is_ok());
        assert!(image.rect_inside(Rect::new(1, 0, 64, 32)).is_err());
    }
}
