//! The clear-and-read-back flow (ABI reference §5.6) on a real device:
//! QEMU's vhost-user-gpu with virglrenderer. Renders a clear on the host
//! GPU, reads the pixels back into guest memory, checks every one and
//! writes them to a PNG.
//!
//! Usage: `clear_readback [OUTPUT.png]` (default `out/clear-readback.png`).

use std::error::Error;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Instant;

use virtio_gpu_proto::{
    Box3d, CapsetHeader, CapsetId, CmdSubmit, CtxAttachResource, Resource3dParams,
    TransferFromHost3d,
};
use virtio_gpud::transport::vhost_user::{launch, LaunchOptions};
use virtio_gpud::Timeline;

const W: u32 = 256;
const H: u32 = 256;
/// Cornflower blue, as RGBA floats and as the bytes the read-back must hold.
const COLOUR: [f32; 4] = [100.0 / 255.0, 149.0 / 255.0, 237.0 / 255.0, 1.0];
const EXPECTED: [u8; 4] = [100, 149, 237, 255];

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let out = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("out/clear-readback.png"), PathBuf::from);

    let mut opts = LaunchOptions::new(true)?;
    opts.backend.log_file = Some(std::env::temp_dir().join("vhost-user-gpu-demo.log"));
    let started = Instant::now();
    let (mut gpu, _backend) = launch(&opts)?;
    println!(
        "device up in {:.1} ms: backend {}, features {:?}",
        started.elapsed().as_secs_f64() * 1e3,
        opts.backend.binary.display(),
        gpu.features()
    );
    for info in gpu.capsets().to_vec() {
        let data = gpu.capset(info.id, info.max_version)?;
        let header = CapsetHeader::parse(info.id, &data)?;
        println!(
            "capset {} v{}: {} bytes, GLSL {}",
            info.id.get(),
            info.max_version,
            data.len(),
            header.glsl_level.get()
        );
    }

    let ctx = gpu.create_context(CapsetId::VIRGL2, "clear-readback")?;
    let params = Resource3dParams {
        target: virgl_stream::target::TEXTURE_2D,
        format: virgl_stream::format::R8G8B8A8_UNORM,
        bind: virgl_stream::bind::RENDER_TARGET | virgl_stream::bind::SAMPLER_VIEW,
        width: W,
        height: H,
        depth: 1,
        array_size: 1,
        last_level: 0,
        nr_samples: 0,
        flags: 0,
    };
    let res = gpu.create_resource_3d(&params, (W * H * 4) as usize)?;
    gpu.call(&CtxAttachResource::new(ctx, res.id), &[], None)?;
    println!(
        "context {} and {W}x{H} R8G8B8A8 resource {} with {} KiB of backing at {:#x}",
        ctx.get(),
        res.id.get(),
        res.backing.len() / 1024,
        res.backing.device_addr()
    );

    let bytes = virgl_stream::clear_stream(res.id.get(), params.format, COLOUR);
    let t = Instant::now();
    let submit = gpu.submit(&CmdSubmit::new(ctx, bytes.len() as u32), &bytes, None)?;
    let readback = TransferFromHost3d::new(ctx, res.id, Box3d::new(0, 0, 0, W, H, 1), 0, 0, 0, 0);
    let transfer = gpu.submit(&readback, &[], Some(Timeline::Global))?;
    let fence = transfer.fence.expect("fenced");
    gpu.wait_fence(Timeline::Global, fence)?;
    gpu.wait(submit)?.result?;
    gpu.wait(transfer)?.result?;
    println!(
        "SUBMIT_3D ({} bytes of virgl stream) + fenced TRANSFER_FROM_HOST_3D: fence {} signalled after {:.0} us",
        bytes.len(),
        fence.get(),
        t.elapsed().as_secs_f64() * 1e6
    );

    let mut pixels = vec![0u8; (W * H * 4) as usize];
    res.backing.read_bytes(0, &mut pixels);
    let wrong = pixels
        .chunks_exact(4)
        .filter(|p| !p.iter().zip(EXPECTED).all(|(&a, b)| a.abs_diff(b) <= 1))
        .count();
    if wrong > 0 {
        return Err(format!("{wrong} of {} pixels differ from {EXPECTED:?}", W * H).into());
    }
    println!("all {} pixels read back as {EXPECTED:?}", W * H);

    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut png = png::Encoder::new(BufWriter::new(File::create(&out)?), W, H);
    png.set_color(png::ColorType::Rgba);
    png.set_depth(png::BitDepth::Eight);
    png.write_header()?.write_image_data(&pixels)?;
    println!("wrote {}", out.display());

    gpu.destroy_resource(res)?;
    gpu.destroy_context(ctx)?;
    let stats = gpu.stats();
    println!(
        "{} commands, {} notifications, {} device errors",
        stats.ctrl.submitted, stats.ctrl.notifies, stats.ctrl.device_errors
    );
    Ok(())
}
