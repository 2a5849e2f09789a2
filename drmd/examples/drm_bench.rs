//! Measures the paths through `scheme:drm` (client → drmd → virtio-gpud →
//! device, fences through syncd) with the same work `device_bench` gives
//! the device straight (a 64x64 clear; 4 MiB transfers), so the two can be
//! read side by side: `cargo xtask bench` runs both and tabulates them.
//! Reports numbers; judges nothing.
//!
//! Usage: `drm_bench [ITERATIONS [NOWAIT_SECONDS]]` (defaults 1000 and 1)
//! with the daemons running. Besides its lines for people it prints
//! `FIGURE stack.<name> <value> <unit>` lines (xtask's `bench` module):
//!
//! - `getparam_rtt_p50` (us): GETPARAM, answered by drmd alone;
//! - `submit_rtt_p50`/`_p99` (us): EXECBUFFER of the clear with an
//!   out-fence, until the sync_file wait says it signalled;
//! - `submit_rate_unbatched` (/s): EXECBUFFERs back to back (many in
//!   flight), one VIRTGPU_WAIT at the end. Each EXECBUFFER is one call and
//!   virtio-gpud notifies the device once per call, so this is the
//!   device's "notify per command" case; the stack has no batched one;
//! - `submit_rate_serial` (/s): one at a time, each EXECBUFFER followed
//!   by a VIRTGPU_WAIT;
//! - `transfer_to_host_mbps`/`transfer_from_host_mbps` (MB/s, 1 MB = 10^6
//!   bytes): VIRTGPU_TRANSFER_* of a whole 1024x1024 RGBA8 object, each
//!   followed by VIRTGPU_WAIT;
//! - `nowait_checks_per_s` (/s): VIRTGPU_WAIT with NOWAIT on an idle
//!   object, back to back for NOWAIT_SECONDS; `nowait_busy_checks_per_s`
//!   the same on an object kept busy with transfers (answered EBUSY).

use std::error::Error;
use std::time::{Duration, Instant};

use drm_uapi::virtgpu::Box3d;
use drmd::client::DrmFd;
use scheme_seam::Errno;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// Prints a latency figure; returns (p50, p99) in microseconds.
fn report_latency(name: &str, mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let quantiles = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    println!(
        "{name:<48} p50 {:>8.1} us   p99 {:>8.1} us",
        quantiles.0, quantiles.1
    );
    quantiles
}

/// Prints a `FIGURE` line.
fn figure(key: &str, value: f64, unit: &str) {
    println!("FIGURE stack.{key} {value:.1} {unit}");
}

/// Side of the transfer object: 1024x1024 RGBA8, 4 MiB.
const TRANSFER_SIDE: u32 = 1024;
const TRANSFER_BYTES: usize = (TRANSFER_SIDE * TRANSFER_SIDE * 4) as usize;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let nowait_for =
        Duration::from_secs_f64(args.next().map(|s| s.parse()).transpose()?.unwrap_or(1.0));
    let drm = DrmFd::open("/scheme/drm/renderD128")?;
    let (bo, res) = drm.resource_create(drmd::client::render_target(64, 64))?;
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
    let (p50, _) = report_latency("GETPARAM round trip (drmd alone)", samples);
    figure("getparam_rtt_p50", p50, "us");

    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        fenced_submit()?;
        samples.push(t.elapsed());
    }
    let (p50, p99) = report_latency("EXECBUFFER + out-fence sync_file wait", samples);
    figure("submit_rtt_p50", p50, "us");
    figure("submit_rtt_p99", p99, "us");

    let mut samples = Vec::with_capacity(n);
    let t = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        drm.execbuffer(&clear, &[bo], None, false)?;
        drm.wait(bo, false)?;
        samples.push(t.elapsed());
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    report_latency("EXECBUFFER + VIRTGPU_WAIT", samples);
    println!(
        "{:<48} {rate:>9.0} submits/s",
        "EXECBUFFER + VIRTGPU_WAIT, one at a time"
    );
    figure("submit_rate_serial", rate, "/s");

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
    figure("submit_rate_unbatched", rate, "/s");

    // The object's fence has signalled: NOWAIT answers from syncd's page.
    let (checks, elapsed) = nowait_checks(&drm, bo, nowait_for, |r| r.is_ok())?;
    let rate = checks as f64 / elapsed.as_secs_f64();
    println!(
        "{:<48} {rate:>9.0} checks/s",
        "VIRTGPU_WAIT NOWAIT, idle object (answers 0)"
    );
    figure("nowait_checks_per_s", rate, "/s");
    drm.gem_close(bo)?;

    transfers(&drm, n, nowait_for)
}

/// Counts NOWAIT checks of `bo` for about `time` whose answer satisfies
/// `counted`, stopping early at the first it does not; returns the count
/// and the time they took.
fn nowait_checks(
    drm: &DrmFd,
    bo: u32,
    time: Duration,
    counted: impl Fn(&std::io::Result<()>) -> bool,
) -> Result<(u64, Duration), Box<dyn Error>> {
    let mut checks = 0u64;
    let t = Instant::now();
    while t.elapsed() < time {
        let answer = drm.wait(bo, true);
        if !counted(&answer) {
            break;
        }
        checks += 1;
    }
    Ok((checks, t.elapsed()))
}

/// VIRTGPU_TRANSFER_TO_HOST and _FROM_HOST of a whole 1024x1024 RGBA8
/// object, each followed by a WAIT; the data comes back in the mapped
/// object. Then NOWAIT checks on the object while transfers keep it busy.
fn transfers(drm: &DrmFd, n: usize, nowait_for: Duration) -> Result<(), Box<dyn Error>> {
    let (bo, _) = drm.resource_create(drmd::client::render_target(TRANSFER_SIDE, TRANSFER_SIDE))?;
    let map = drm.map(bo, TRANSFER_BYTES)?;
    let whole = Box3d::whole(TRANSFER_SIDE, TRANSFER_SIDE);
    let pattern: Vec<u8> = (0..TRANSFER_BYTES).map(|i| (i % 251) as u8).collect();
    map.write_bytes(0, &pattern);
    let transfer = |to_host: bool| -> Result<(), Box<dyn Error>> {
        drm.transfer(bo, whole, to_host)?;
        drm.wait(bo, false)?;
        Ok(())
    };
    // The submit path's context and the object's attachment exist by now;
    // the first transfer of each kind is not timed.
    transfer(true)?;
    map.fill(0, TRANSFER_BYTES, 0);
    transfer(false)?;
    let mut back = vec![0u8; TRANSFER_BYTES];
    map.read_bytes(0, &mut back);
    if back != pattern {
        return Err("TRANSFER_FROM_HOST did not bring back what went up".into());
    }
    let reps = (n / 10).clamp(5, 200);
    for to_host in [true, false] {
        let t = Instant::now();
        for _ in 0..reps {
            transfer(to_host)?;
        }
        let mbps = (reps * TRANSFER_BYTES) as f64 / 1e6 / t.elapsed().as_secs_f64();
        let (name, key) = if to_host {
            (
                "VIRTGPU_TRANSFER_TO_HOST 4 MiB + WAIT",
                "transfer_to_host_mbps",
            )
        } else {
            (
                "VIRTGPU_TRANSFER_FROM_HOST 4 MiB + WAIT",
                "transfer_from_host_mbps",
            )
        };
        println!("{name:<48} {mbps:>9.0} MB/s   ({reps} transfers)");
        figure(key, mbps, "MB/s");
    }

    // Busy checks: a transfer in flight, NOWAIT until it is done; only the
    // EBUSY answers count.
    let busy = |r: &std::io::Result<()>| {
        r.as_ref()
            .is_err_and(|e| e.raw_os_error() == Some(Errno::EBUSY.0))
    };
    let (mut checks, mut spent) = (0u64, Duration::ZERO);
    let t = Instant::now();
    while t.elapsed() < nowait_for {
        drm.transfer(bo, whole, true)?;
        let (c, d) = nowait_checks(drm, bo, nowait_for, busy)?;
        checks += c;
        spent += d;
        drm.wait(bo, false)?;
    }
    if checks == 0 {
        println!("VIRTGPU_WAIT NOWAIT, busy object: never seen busy (transfers too quick)");
    } else {
        let rate = checks as f64 / spent.as_secs_f64();
        println!(
            "{:<48} {rate:>9.0} checks/s   ({checks} EBUSY answers)",
            "VIRTGPU_WAIT NOWAIT, busy object (answers EBUSY)"
        );
        figure("nowait_busy_checks_per_s", rate, "/s");
    }
    drop(map);
    drm.gem_close(bo)?;
    Ok(())
}
