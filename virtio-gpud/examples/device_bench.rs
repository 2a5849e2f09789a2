//! Measures the driver against the real device: fence round trips and
//! command throughput with one notification per batch versus one per
//! command. Reports numbers; judges nothing.
//!
//! Usage: `device_bench [ITERATIONS]` (default 2000).

use std::error::Error;
use std::time::{Duration, Instant};

use virtio_gpu_proto::{CapsetId, CmdSubmit, CtxAttachResource, GetCapsetInfo, Resource3dParams};
use virtio_gpud::transport::vhost_user::{launch, LaunchOptions, VhostUserTransport};
use virtio_gpud::{Gpu, Timeline};

type Device = Gpu<VhostUserTransport>;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn report_latency(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<44} p50 {:>7.1} us   p99 {:>7.1} us   min {:>7.1} us   max {:>8.1} us",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        percentile(&samples, 0.0),
        percentile(&samples, 1.0)
    );
}

/// Submits `n` commands made by `submit`, keeping the ring full, flushing
/// after every command or only when a batch is in; returns commands/s.
fn throughput(
    gpu: &mut Device,
    n: usize,
    per_command_notify: bool,
    mut submit: impl FnMut(&mut Device) -> Result<(), virtio_gpud::Error>,
) -> Result<(f64, u64), Box<dyn Error>> {
    let notifies = gpu.stats().ctrl.notifies;
    let completed = gpu.stats().ctrl.completed;
    let t = Instant::now();
    for _ in 0..n {
        submit(gpu)?;
        if per_command_notify {
            gpu.flush()?;
        }
        // Collect what is done without blocking, so completions do not pile up.
        gpu.poll();
    }
    while gpu.in_flight() > 0 {
        gpu.wait_any()?;
    }
    let elapsed = t.elapsed().as_secs_f64();
    let stats = gpu.stats().ctrl;
    assert_eq!(stats.completed - completed, n as u64);
    Ok((n as f64 / elapsed, stats.notifies - notifies))
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2000);
    println!("{n} iterations per figure");
    run(n, true)?;
    println!("-- again with VIRTIO_F_EVENT_IDX off (suppression by flags only)");
    run(n, false)
}

fn run(n: usize, event_idx: bool) -> Result<(), Box<dyn Error>> {
    let mut opts = LaunchOptions::new(true)?;
    opts.backend.log_file = Some(std::env::temp_dir().join("vhost-user-gpu-bench.log"));
    opts.gpu.event_idx = event_idx;
    let (mut gpu, _backend) = launch(&opts)?;
    let gpu = &mut gpu;

    let ctx = gpu.create_context(CapsetId::VIRGL2, "bench")?;
    let params = Resource3dParams {
        target: virgl_stream::target::TEXTURE_2D,
        format: virgl_stream::format::R8G8B8A8_UNORM,
        bind: virgl_stream::bind::RENDER_TARGET | virgl_stream::bind::SAMPLER_VIEW,
        width: 64,
        height: 64,
        depth: 1,
        array_size: 1,
        last_level: 0,
        nr_samples: 0,
        flags: 0,
    };
    let res = gpu.create_resource_3d(&params, 64 * 64 * 4)?;
    gpu.call(&CtxAttachResource::new(ctx, res.id), &[], None)?;
    let mut setup = virgl_stream::Stream::new();
    setup
        .create_sub_ctx(1)
        .set_sub_ctx(1)
        .create_surface(1, res.id.get(), params.format, 0)
        .set_framebuffer_state(0, &[1]);
    let setup = setup.to_bytes();
    gpu.call(&CmdSubmit::new(ctx, setup.len() as u32), &setup, None)?;
    let mut clear = virgl_stream::Stream::new();
    clear.clear(virgl_stream::clear::COLOR0, [0.5, 0.5, 0.5, 1.0], 0.0, 0);
    let clear = clear.to_bytes();
    let submit_clear = |gpu: &mut Device, fence: Option<Timeline>| {
        gpu.submit(&CmdSubmit::new(ctx, clear.len() as u32), &clear, fence)
    };

    // Warm up shaders and caches.
    for _ in 0..100 {
        let p = submit_clear(gpu, Some(Timeline::Global))?;
        gpu.wait(p)?;
    }

    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        gpu.call(&GetCapsetInfo::new(0), &[], None)?;
        samples.push(t.elapsed());
    }
    report_latency("unfenced command round trip (GET_CAPSET_INFO)", samples);

    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let p = submit_clear(gpu, Some(Timeline::Global))?;
        let fence = p.fence.expect("fenced");
        gpu.wait_fence(Timeline::Global, fence)?;
        samples.push(t.elapsed());
        gpu.wait(p)?.result?;
    }
    report_latency("fenced SUBMIT_3D (64x64 clear) round trip", samples);

    for (name, fenced) in [
        ("unfenced SUBMIT_3D", None),
        ("fenced SUBMIT_3D", Some(Timeline::Global)),
    ] {
        for per_command in [false, true] {
            let (rate, notifies) = throughput(gpu, n, per_command, |gpu| {
                submit_clear(gpu, fenced).map(drop)
            })?;
            println!(
                "{name:<20} {:<28} {rate:>9.0} commands/s   {notifies:>5} notifications",
                if per_command {
                    "notify per command"
                } else {
                    "notify per batch"
                }
            );
        }
    }
    gpu.destroy_resource(res)?;
    gpu.destroy_context(ctx)?;
    Ok(())
}
