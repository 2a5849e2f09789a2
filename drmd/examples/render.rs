//! The main job: render through the DRM interface, as Mesa's virgl driver
//! does, with virtio-gpud, syncd and drmd running (`cargo xtask demo`
//! starts them). Clears a render target on the host GPU, waits on the
//! out-fence, reads the pixels back through MAP + mmap, checks every one
//! and writes them to a PNG.
//!
//! Usage: `render [OUTPUT.png]` (default `out/drm-render.png`).

use std::error::Error;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use drm_uapi::virtgpu::{self as vg, Box3d};
use drmd::client::DrmFd;

const W: u32 = 256;
const H: u32 = 256;
/// A teal, and the bytes it reads back as (R8G8B8A8).
const COLOUR: [f32; 4] = [0.0, 128.0 / 255.0, 128.0 / 255.0, 1.0];
const EXPECTED: [u8; 4] = [0, 128, 128, 255];

fn main() -> Result<(), Box<dyn Error>> {
    let out = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("out/drm-render.png"), PathBuf::from);
    let started = Instant::now();
    let drm = DrmFd::open("/scheme/drm/renderD128")?;
    let version = drm.version()?;
    println!(
        "opened /scheme/drm/renderD128: {} {}.{}.{}",
        version.name, version.number.0, version.number.1, version.number.2
    );
    println!(
        "GETPARAM 3D_FEATURES={} CAPSET_QUERY_FIX={} SUPPORTED_CAPSET_IDs={:#b}",
        drm.getparam(vg::PARAM_3D_FEATURES)?,
        drm.getparam(vg::PARAM_CAPSET_QUERY_FIX)?,
        drm.getparam(vg::PARAM_SUPPORTED_CAPSET_IDS)?
    );
    let caps = drm.get_caps(2, 2, 1376)?;
    let glsl = u32::from_le_bytes(caps[264..268].try_into()?);
    println!("GET_CAPS capset 2: {} bytes, GLSL level {glsl}", caps.len());

    let (bo, res) = drm.resource_create(drmd::client::render_target(W, H))?;
    println!("RESOURCE_CREATE {W}x{H}: GEM handle {bo}, resource {res}");

    let stream = virgl_stream::clear_stream(res, virgl_stream::format::R8G8B8A8_UNORM, COLOUR);
    let submitted = Instant::now();
    let fence = drm
        .execbuffer(&stream, &[bo], None, true)?
        .ok_or("no out-fence")?;
    if !fence.wait(Duration::from_secs(10))? {
        return Err("the out-fence never signalled".into());
    }
    println!(
        "EXECBUFFER ({} bytes of virgl stream) out-fence signalled after {:.0} us",
        stream.len(),
        submitted.elapsed().as_secs_f64() * 1e6
    );

    drm.transfer(bo, Box3d::whole(W, H), false)?;
    drm.wait(bo, false)?;
    let map = drm.map(bo, (W * H * 4) as usize)?;
    let mut pixels = vec![0u8; (W * H * 4) as usize];
    map.read_bytes(0, &mut pixels);
    let wrong = pixels
        .chunks_exact(4)
        .filter(|p| !p.iter().zip(EXPECTED).all(|(&a, b)| a.abs_diff(b) <= 1))
        .count();
    if wrong > 0 {
        return Err(format!("{wrong} of {} pixels differ from {EXPECTED:?}", W * H).into());
    }
    println!(
        "TRANSFER_FROM_HOST + WAIT + MAP: all {} pixels read back as {EXPECTED:?}",
        W * H
    );

    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut png = png::Encoder::new(BufWriter::new(File::create(&out)?), W, H);
    png.set_color(png::ColorType::Rgba);
    png.set_depth(png::BitDepth::Eight);
    png.write_header()?.write_image_data(&pixels)?;
    drm.gem_close(bo)?;
    println!(
        "wrote {} ({:.1} ms through three daemons and the device)",
        out.display(),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
