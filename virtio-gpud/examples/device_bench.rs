//! Measures the driver against the real device: fence round trips,
//! command throughput with one notification per batch versus one per
//! command, and 4 MiB transfers each way. Reports numbers; judges nothing.
//! It is the reference `cargo xtask bench` sets the stack against: the
//! device driven by virtio-gpud's library with no daemon in between.
//!
//! Usage: `device_bench [ITERATIONS] [--event-idx-only]` (default 2000).
//! Besides its lines for people it prints the event-index run's figures as
//! `FIGURE device.<name> <value> <unit>` lines (xtask's `bench` module):
//! `submit_rtt_p50`/`_p99` (us), `submit_rate_serial` (fenced submits/s, one
//! at a time, each waited), `submit_rate_batched`/`_unbatched` (fenced
//! submits/s in flight, notify per batch / per command), `transfer_to_host_mbps` and
//! `transfer_from_host_mbps` (MB/s, 1 MB = 10^6 bytes). The second run,
//! with VIRTIO_F_EVENT_IDX off, is skipped with `--event-idx-only`.

use std::error::Error;
use std::time::{Duration, Instant};

use virtio_gpu_proto::{
    Box3d, CapsetId, CmdSubmit, CtxAttachResource, GetCapsetInfo, Resource3dParams,
    TransferFromHost3d, TransferToHost3d,
};
use virtio_gpud::transport::vhost_user::{launch, LaunchOptions, VhostUserTransport};
use virtio_gpud::{Gpu, Timeline};

type Device = Gpu<VhostUserTransport>;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// Prints a latency figure; returns (p50, p99) in microseconds.
fn report_latency(name: &str, mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let quantiles = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    println!(
        "{name:<44} p50 {:>7.1} us   p99 {:>7.1} us   min {:>7.1} us   max {:>8.1} us",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        percentile(&samples, 0.0),
        percentile(&samples, 1.0)
    );
    quantiles
}

/// Prints a `FIGURE` line (when `figures` is on).
fn figure(figures: bool, key: &str, value: f64, unit: &str) {
    if figures {
        println!("FIGURE device.{key} {value:.1} {unit}");
    }
}

/// Side of the transfer resource: 1024x1024 RGBA8, 4 MiB.
const TRANSFER_SIDE: u32 = 1024;
const TRANSFER_BYTES: usize = (TRANSFER_SIDE * TRANSFER_SIDE * 4) as usize;

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
    let event_idx_only = std::env::args().skip(2).any(|a| a == "--event-idx-only");
    println!("{n} iterations per figure");
    run(n, true)?;
    if !event_idx_only {
        println!("-- again with VIRTIO_F_EVENT_IDX off (suppression by flags only)");
        run(n, false)?;
    }
    Ok(())
}

/// One pass on a fresh device; its figures are the reference only with
/// event index on, the stack's setting.
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
    let all = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let p = submit_clear(gpu, Some(Timeline::Global))?;
        let fence = p.fence.expect("fenced");
        gpu.wait_fence(Timeline::Global, fence)?;
        samples.push(t.elapsed());
        gpu.wait(p)?.result?;
    }
    let serial = n as f64 / all.elapsed().as_secs_f64();
    let (p50, p99) = report_latency("fenced SUBMIT_3D (64x64 clear) round trip", samples);
    figure(event_idx, "submit_rtt_p50", p50, "us");
    figure(event_idx, "submit_rtt_p99", p99, "us");
    figure(event_idx, "submit_rate_serial", serial, "/s");

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
            if fenced.is_some() {
                let key = if per_command {
                    "submit_rate_unbatched"
                } else {
                    "submit_rate_batched"
                };
                figure(event_idx, key, rate, "/s");
            }
        }
    }
    gpu.destroy_resource(res)?;
    transfers(gpu, ctx, n, event_idx)?;
    gpu.destroy_context(ctx)?;
    Ok(())
}

/// Fenced TRANSFER_TO_HOST_3D and TRANSFER_FROM_HOST_3D of a whole
/// 1024x1024 RGBA8 resource, each waited before the next; prints MB/s.
/// A pattern written to the backing must come back after a round trip.
fn transfers(
    gpu: &mut Device,
    ctx: virtio_gpu_proto::CtxId,
    n: usize,
    figures: bool,
) -> Result<(), Box<dyn Error>> {
    let params = Resource3dParams {
        target: virgl_stream::target::TEXTURE_2D,
        format: virgl_stream::format::R8G8B8A8_UNORM,
        bind: virgl_stream::bind::RENDER_TARGET | virgl_stream::bind::SAMPLER_VIEW,
        width: TRANSFER_SIDE,
        height: TRANSFER_SIDE,
        depth: 1,
        array_size: 1,
        last_level: 0,
        nr_samples: 0,
        flags: 0,
    };
    let res = gpu.create_resource_3d(&params, TRANSFER_BYTES)?;
    gpu.call(&CtxAttachResource::new(ctx, res.id), &[], None)?;
    let whole = Box3d::new(0, 0, 0, TRANSFER_SIDE, TRANSFER_SIDE, 1);
    let pattern: Vec<u8> = (0..TRANSFER_BYTES).map(|i| (i % 251) as u8).collect();
    res.backing.write_bytes(0, &pattern);
    let reps = transfer_repetitions(n);
    for to_host in [true, false] {
        let transfer = |gpu: &mut Device| -> Result<(), Box<dyn Error>> {
            let p = if to_host {
                let t = TransferToHost3d::new(ctx, res.id, whole, 0, 0, 0, 0);
                gpu.submit(&t, &[], Some(Timeline::Global))?
            } else {
                let t = TransferFromHost3d::new(ctx, res.id, whole, 0, 0, 0, 0);
                gpu.submit(&t, &[], Some(Timeline::Global))?
            };
            gpu.wait_fence(Timeline::Global, p.fence.expect("fenced"))?;
            gpu.wait(p)?.result?;
            Ok(())
        };
        transfer(gpu)?;
        if !to_host {
            // What went up comes back down.
            res.backing.fill(0);
            transfer(gpu)?;
            let mut back = vec![0u8; TRANSFER_BYTES];
            res.backing.read_bytes(0, &mut back);
            if back != pattern {
                return Err("TRANSFER_FROM_HOST_3D did not bring back what went up".into());
            }
        }
        let t = Instant::now();
        for _ in 0..reps {
            transfer(gpu)?;
        }
        let mbps = (reps * TRANSFER_BYTES) as f64 / 1e6 / t.elapsed().as_secs_f64();
        let (name, key) = if to_host {
            (
                "TRANSFER_TO_HOST_3D, 4 MiB, fenced",
                "transfer_to_host_mbps",
            )
        } else {
            (
                "TRANSFER_FROM_HOST_3D, 4 MiB, fenced",
                "transfer_from_host_mbps",
            )
        };
        println!("{name:<44} {mbps:>9.0} MB/s   ({reps} transfers, each waited)");
        figure(figures, key, mbps, "MB/s");
    }
    gpu.destroy_resource(res)?;
    Ok(())
}

/// How many 4 MiB transfers a run of `n` iterations times.
fn transfer_repetitions(n: usize) -> usize {
    (n / 10).clamp(5, 200)
}
