//! Measures the submit path through `scheme:drm` (client → drmd →
//! virtio-gpud → device, fences through syncd) with the same 64x64 clear
//! that `device_bench` submits straight to the device, so the two can be
//! read side by side: `cargo xtask bench` runs both and passes the device
//! figures here as the reference. Reports numbers; judges nothing.
//!
//! Usage: `drm_bench [ITERATIONS [REFERENCE_FENCED_P50_US REFERENCE_FENCED_RATE]]`
//! with the daemons running.

use std::error::Error;
use std::time::{Duration, Instant};

use drm_uapi::virtgpu::ResourceCreate;
use drmd::client::DrmFd;
use zerocopy::FromZeros;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// Prints a latency figure; returns its p50 in microseconds.
fn report_latency(name: &str, mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    let p50 = percentile(&samples, 0.5);
    println!(
        "{name:<48} p50 {p50:>8.1} us   p99 {:>8.1} us",
        percentile(&samples, 0.99)
    );
    p50
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let reference: Option<(f64, f64)> = match (args.next(), args.next()) {
        (Some(p50), Some(rate)) => Some((p50.parse()?, rate.parse()?)),
        _ => None,
    };
    let drm = DrmFd::open("/scheme/drm/renderD128")?;
    let (bo, res) = drm.resource_create(ResourceCreate {
        target: virgl_stream::target::TEXTURE_2D,
        format: virgl_stream::format::R8G8B8A8_UNORM,
        bind: virgl_stream::bind::RENDER_TARGET | virgl_stream::bind::SAMPLER_VIEW,
        width: 64,
        height: 64,
        depth: 1,
        array_size: 1,
        size: 64 * 64 * 4,
        stride: 64 * 4,
        ..ResourceCreate::new_zeroed()
    })?;
    // The surface stays bound, as in device_bench: each submit is a clear.
    let mut setup = virgl_stream::Stream::new();
    setup
        .create_sub_ctx(1)
        .set_sub_ctx(1)
        .create_surface(1, res, virgl_stream::format::R8G8B8A8_UNORM, 0)
        .set_framebuffer_state(0, &[1]);
    drm.execbuffer(&setup.to_bytes(), &[bo], None, false)?;
    let mut clear = virgl_stream::Stream::new();
    clear.clear(virgl_stream::clear::COLOR0, [0.5, 0.5, 0.5, 1.0], 0.0, 0);
    let clear = clear.to_bytes();
    let fenced_submit = || -> Result<(), Box<dyn Error>> {
        let fence = drm
            .execbuffer(&clear, &[bo], None, true)?
            .ok_or("no out-fence")?;
        if !fence.wait(Duration::from_secs(10))? {
            return Err("an out-fence never signalled".into());
        }
        Ok(())
    };
    for _ in 0..100 {
        fenced_submit()?;
    }
    println!("{n} iterations per figure, through scheme:drm");

    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        drm.getparam(drm_uapi::virtgpu::PARAM_3D_FEATURES)?;
        samples.push(t.elapsed());
    }
    report_latency("GETPARAM round trip (drmd alone)", samples);

    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        fenced_submit()?;
        samples.push(t.elapsed());
    }
    let fenced_p50 = report_latency("EXECBUFFER + out-fence sync_file wait", samples);

    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        drm.execbuffer(&clear, &[bo], None, false)?;
        drm.wait(bo, false)?;
        samples.push(t.elapsed());
    }
    report_latency("EXECBUFFER + VIRTGPU_WAIT", samples);

    let t = Instant::now();
    for _ in 0..n {
        drm.execbuffer(&clear, &[bo], None, false)?;
    }
    drm.wait(bo, false)?;
    let rate = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "{:<48} {rate:>9.0} submits/s",
        "EXECBUFFER back to back, one WAIT at the end"
    );
    drm.gem_close(bo)?;

    if let Some((device_p50, device_rate)) = reference {
        println!("-- against the device without the daemons (device_bench, event idx on)");
        println!(
            "fenced round trip p50: {fenced_p50:.1} us vs {device_p50:.1} us = {:.1}x",
            fenced_p50 / device_p50
        );
        println!(
            "fenced throughput: {rate:.0}/s vs {device_rate:.0}/s = {:.2}x",
            rate / device_rate
        );
    }
    Ok(())
}
