//! `capset`: `virtio_gpu_proto::CapsetHeader::parse` and `texture_limits`
//! on arbitrary capset data (what the device answers GET_CAPSET with),
//! then the texture limits virtio-gpud derives from it (as its
//! `scheme::texture_limits` does) applied to a few resource shapes.
//!
//! Input: `[id: u8][data...]`: `id` 0 and 1 are the VIRGL and VIRGL2
//! capsets, others are ids of capsets that are not virgl.
//!
//! Checked: an accepted header matches its id's version, has a GLSL level
//! and a renderable RGBA8 format, and is the data's first 308 bytes; each
//! v2 limit is present exactly when the header says v2 and the data holds
//! its four bytes, and then is those bytes.

use virtio_gpu_proto::capset::{
    TextureLimits, V2_MAX_TEXTURE_2D_SIZE_OFFSET, V2_MAX_TEXTURE_3D_SIZE_OFFSET,
    V2_MAX_TEXTURE_CUBE_SIZE_OFFSET,
};
use virtio_gpu_proto::{format_supported, CapsetHeader, CapsetId, Format, CAPSET_V1_SIZE};
use virtio_gpud::shape::{Limits, Texture, TextureRules};
use zerocopy::IntoBytes;

use crate::Input;

fn v2_field(header: &CapsetHeader, data: &[u8], off: usize) -> Option<u32> {
    (header.max_version.get() >= 2)
        .then(|| data.get(off..off + 4))
        .flatten()
        .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
}

/// The target.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let id = match input.u8() {
        0 => CapsetId::VIRGL,
        1 => CapsetId::VIRGL2,
        b => CapsetId::new(u32::from(b)),
    };
    let data = input.rest();
    let Ok(header) = CapsetHeader::parse(id, data) else {
        return;
    };
    let expected = match id {
        CapsetId::VIRGL => 1,
        CapsetId::VIRGL2 => 2,
        other => panic!("capset {other:?} accepted as virgl"),
    };
    assert_eq!(header.max_version.get(), expected);
    assert_ne!(header.glsl_level.get(), 0);
    assert!(
        format_supported(&header.render, Format::B8G8R8A8_UNORM.0)
            || format_supported(&header.render, Format::R8G8B8A8_UNORM.0)
    );
    assert_eq!(header.as_bytes(), &data[..CAPSET_V1_SIZE]);
    for format in [0, 511, 512, u32::MAX] {
        let _ = format_supported(&header.sampler, format);
    }
    let t = header.texture_limits(data);
    assert_eq!(
        t,
        TextureLimits {
            max_texture_array_layers: header.max_texture_array_layers.get(),
            max_texture_2d_size: v2_field(&header, data, V2_MAX_TEXTURE_2D_SIZE_OFFSET),
            max_texture_3d_size: v2_field(&header, data, V2_MAX_TEXTURE_3D_SIZE_OFFSET),
            max_texture_cube_size: v2_field(&header, data, V2_MAX_TEXTURE_CUBE_SIZE_OFFSET),
        }
    );
    // virtio-gpud's limits from it, applied.
    let mut limits = Limits::default();
    limits.max_layers = t.max_texture_array_layers;
    limits.max_2d = t.max_texture_2d_size.unwrap_or(limits.max_2d);
    limits.max_3d = t.max_texture_3d_size.unwrap_or(limits.max_3d);
    limits.max_cube = t.max_texture_cube_size.unwrap_or(limits.max_cube);
    for (target, width, height, depth, array_size) in [
        (2, 64, 64, 1, 1),
        (2, 16384, 16384, 1, 1),
        (3, 256, 256, 256, 1),
        (4, 512, 512, 1, 6),
        (7, 64, 64, 1, 2048),
        (1, u32::MAX, 1, 1, 1),
    ] {
        let texture = Texture {
            target,
            format: 67,
            bind: 1 << 3,
            width,
            height,
            depth,
            array_size,
            last_level: 0,
            nr_samples: 0,
            flags: 0,
        };
        let _ = texture.validate(limits);
    }
}
