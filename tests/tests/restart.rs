//! drmd under its supervisor (`gpu-launcher`), SIGKILLed: the launcher
//! starts another, which takes back the socket, every client connection
//! and every descriptor drmd kept (the files' virtio-gpud sessions, their
//! syncobj tables, its control session), and rebuilds each client's file
//! from the recovery journal under the id it had. Clients do not notice: a
//! GL program on unmodified Mesa renders on through kills in the middle of
//! its submits, the display shows what it showed, every object stays on
//! the device under the same id, and a request the dead instance took is
//! answered — with its result if its work reached the device (an
//! EXECBUFFER is never submitted twice), else EINTR, which libdrm retries.
//! What clients that went away meanwhile held is reclaimed.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drm_uapi::virtgpu::{self as vg, Box3d};
use drmd::client::DrmFd;
use stack_tests::display::{display, Pam};
use stack_tests::launched::Launched;
use stack_tests::{bus_dir, device_objects, scheme_text, workspace_binary};

/// One stack at a time: the tests share the bus directory.
static STACK: Mutex<()> = Mutex::new(());

const RENDER: &str = "/scheme/drm/renderD128";
const CARD: &str = "/scheme/drm/card0";

fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// A `w × h` render target of `drm` cleared to `rgba` on the host GPU,
/// its fence waited for: (GEM handle, resource id).
fn cleared(drm: &DrmFd, w: u32, h: u32, rgba: [f32; 4]) -> (u32, u32) {
    let (bo, res) = drm
        .resource_create(drmd::client::render_target(w, h))
        .expect("RESOURCE_CREATE");
    clear(drm, bo, res, rgba);
    (bo, res)
}

fn clear(drm: &DrmFd, bo: u32, res: u32, rgba: [f32; 4]) {
    let stream = virgl_stream::clear_stream(res, virgl_stream::format::R8G8B8A8_UNORM, rgba);
    let fence = drm
        .execbuffer(&stream, &[bo], None, true)
        .expect("EXECBUFFER")
        .expect("an out-fence");
    assert!(fence.wait(Duration::from_secs(10)).expect("waiting"));
}

/// TRANSFER_FROM_HOST of the whole object, WAIT, MAP: its first pixel.
fn first_pixel(drm: &DrmFd, bo: u32, w: u32, h: u32) -> [u8; 4] {
    drm.transfer(bo, Box3d::whole(w, h), false)
        .expect("TRANSFER");
    drm.wait(bo, false).expect("WAIT");
    let map = drm.map(bo, (w * h * 4) as usize).expect("MAP");
    let mut px = [0u8; 4];
    map.read_bytes(0, &mut px);
    px
}

/// A number in virtio-gpud's `stats` (the word after `name`).
fn gpu_stat(name: &str) -> u64 {
    let text = scheme_text("/scheme/virtio-gpu/stats");
    let words: Vec<&str> = text.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == name)
        .unwrap_or_else(|| panic!("no {name} in {text}"));
    words[at + 1].parse().unwrap()
}

/// virtio-gpud's `held_per_session`: each session's objects.
fn held_per_session() -> String {
    let text = scheme_text("/scheme/virtio-gpu/stats");
    text.lines()
        .find_map(|l| l.strip_prefix("held_per_session "))
        .unwrap_or_else(|| panic!("no held_per_session in {text}"))
        .to_string()
}

/// The device's resource ids now.
fn resources() -> BTreeSet<u32> {
    device_objects()
        .lines()
        .filter_map(|l| l.strip_prefix("resource ")?.split(' ').next()?.parse().ok())
        .collect()
}

/// Waits until virtio-gpud's object table is empty and its memory back to
/// `memory` bytes: nothing any instance or client held is left.
fn device_back_to(memory: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let objects = device_objects();
        if objects.is_empty() && gpu_stat("memory_used") == memory {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left on the device ({} bytes of memory): {objects}",
            gpu_stat("memory_used")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `child` to its end, its output drained meanwhile, or fails the
/// test if it outlives `limit`.
fn ends_within(child: Child, limit: Duration, what: &str) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{what} hangs across drmd's restart");
        }
    }
}

/// `gl-bench gbm SECONDS` on unmodified Mesa through the shim.
fn gl_bench(seconds: &str) -> Child {
    stack_tests::mesa_command(workspace_binary("gl-bench"))
        .args(["gbm", seconds])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Asserts a GL program ended well and no error of the kernel's reached it.
fn rendered_well(out: &std::process::Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what}: {}\n{stdout}{stderr}",
        out.status
    );
    assert!(!stderr.contains("error from kernel"), "{what}: {stderr}");
}

/// A client that does one small render after another on its own file,
/// recording when each ioctl succeeded, until stopped.
struct Prober {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Instant>>,
}

impl Prober {
    fn start() -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let drm = DrmFd::open(RENDER).unwrap();
            let (bo, res) = cleared(&drm, 16, 16, [0.0; 4]);
            let mut done = Vec::new();
            let mut i = 0u8;
            while !flag.load(Ordering::Relaxed) {
                drm.getparam(vg::PARAM_3D_FEATURES).expect("GETPARAM");
                done.push(Instant::now());
                let v = f32::from(i % 2);
                clear(&drm, bo, res, [v, 0.0, 0.0, 1.0]);
                drm.wait(bo, false).expect("WAIT");
                done.push(Instant::now());
                i = i.wrapping_add(1);
            }
            done
        });
        Prober { stop, thread }
    }

    /// Stops it; for each of `kills`, how long after it the client's next
    /// ioctl succeeded.
    fn finish(self, kills: &[Instant]) -> Vec<Duration> {
        self.stop.store(true, Ordering::Relaxed);
        let done = self.thread.join().expect("the prober");
        kills
            .iter()
            .map(|k| {
                let next = done
                    .iter()
                    .find(|d| *d > k)
                    .expect("an ioctl after the kill");
                *next - *k
            })
            .collect()
    }
}

/// SIGKILLs drmd, noting when.
fn kill(stack: &Launched, kills: &mut Vec<Instant>) {
    kills.push(Instant::now());
    stack.kill_drmd();
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "restart: {what}: {} kills, kill to the client's next successful ioctl median {:.1} ms, max {:.1} ms",
        times.len(),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
}

#[test]
fn a_gl_program_renders_on_across_kills_in_the_middle_of_its_submits() {
    let _turn = STACK.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Launched::start(&[]);
    let gl = gl_bench("1.5");
    let prober = Prober::start();
    std::thread::sleep(Duration::from_millis(400));
    let before = resources();
    let fences_before = gpu_stat("fence_signaled");
    let mut kills = Vec::new();
    for _ in 0..6 {
        kill(&stack, &mut kills);
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = ends_within(gl, Duration::from_secs(120), "a GL program");
    rendered_well(&out, "gl-bench across six kills");
    report("a GL program and a prober", prober.finish(&kills));
    // The device was never reset: every resource of before the kills is
    // still there (the GL program's among them, until it exited), and its
    // fences went on counting.
    assert!(gpu_stat("fence_signaled") > fences_before);
    assert_eq!(gpu_stat("device_resets"), 1, "the start's reset only");
    assert_eq!(gpu_stat("owner_restarts"), 6);
    assert!(gpu_stat("adopted_total") > 0);
    assert!(!before.is_empty());
    let status = stack.status();
    println!(
        "restart: drmd ready {:.1} ms after its exit (the last of 6); virtio-gpud saw the takeover last {} us",
        status.last_restart_ms,
        gpu_stat("last_restart_us")
    );
}

#[test]
fn clients_of_each_kind_go_on_across_a_kill() {
    let _turn = STACK.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Launched::start(&[]);
    let memory = gpu_stat("memory_used");
    // 1. Unmodified Mesa rendering and checking its frames.
    let gl = gl_bench("1");
    // 2. A file with objects made before the kill, used after it.
    let render = DrmFd::open(RENDER).unwrap();
    let (bo, res) = cleared(&render, 64, 64, [0.0, 1.0, 0.0, 1.0]);
    // 3. A sync_file of a submitted clear.
    let fence = render
        .execbuffer(
            &virgl_stream::clear_stream(
                res,
                virgl_stream::format::R8G8B8A8_UNORM,
                [0.0, 1.0, 0.0, 1.0],
            ),
            &[bo],
            None,
            true,
        )
        .unwrap()
        .expect("an out-fence");
    // 4. A dma-buf exported before the kill, imported after it.
    let dma_buf = render.prime_export(bo).unwrap();
    // 5. A read of a DRM file parked in drmd: interrupted, as a read may be.
    let reader = std::thread::spawn(|| {
        let card = DrmFd::open(CARD).unwrap();
        card.read_events(&mut [0u8; 64]).map_err(|e| errno(&e))
    });
    // 6. A WAIT on a busy object, and 7. a client whose submits fill the
    // ring (`gpu-tool storm`: fenced submits with syncobjs, PRIME, maps
    // and WAITs along the way).
    let waiter = std::thread::spawn(|| {
        let drm = DrmFd::open(RENDER).unwrap();
        let (bo, res) = drm
            .resource_create(drmd::client::render_target(4096, 4096))
            .unwrap();
        let stream =
            virgl_stream::clear_stream(res, virgl_stream::format::R8G8B8A8_UNORM, [0.5; 4]);
        for _ in 0..8 {
            drm.execbuffer(&stream, &[bo], None, false).unwrap();
        }
        drm.wait(bo, false).map_err(|e| errno(&e))
    });
    let storm = Command::new(workspace_binary("gpu-tool"))
        .args(["storm", "400"])
        .env(scheme_seam::linux::SCHEME_DIR, bus_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let status = stack.kill_drmd();
    // 8. A client opening right after.
    let fresh = DrmFd::open(RENDER).unwrap();
    println!(
        "restart: drmd back in {:.1} ms under eight clients",
        status.last_restart_ms
    );

    rendered_well(
        &ends_within(gl, Duration::from_secs(60), "a GL program"),
        "gl-bench across a kill",
    );
    let storm = ends_within(storm, Duration::from_secs(60), "a storm of submits");
    assert!(
        storm.status.success(),
        "{}",
        String::from_utf8_lossy(&storm.stderr)
    );
    assert!(
        fence.wait(Duration::from_secs(10)).unwrap(),
        "the sync_file signals"
    );
    assert_eq!(reader.join().unwrap(), Err(libc::EINTR), "the parked read");
    assert_eq!(waiter.join().unwrap(), Ok(()), "the WAIT");
    // The file goes on with its objects: the same resource, its pixels.
    assert_eq!(render.getparam(vg::PARAM_3D_FEATURES).unwrap(), 1);
    assert_eq!(first_pixel(&render, bo, 64, 64), [0, 255, 0, 255]);
    clear(&render, bo, res, [1.0, 0.0, 0.0, 1.0]);
    assert_eq!(first_pixel(&render, bo, 64, 64), [255, 0, 0, 255]);
    let imported = fresh.prime_import(&dma_buf).unwrap();
    assert_eq!(first_pixel(&fresh, imported, 64, 64), [255, 0, 0, 255]);
    cleared(&fresh, 8, 8, [1.0; 4]);
    drop((render, fresh, dma_buf));
    device_back_to(memory);
}

/// Sets `card`'s first CRTC to its preferred mode on a dumb buffer
/// filled with `pattern` (and a second one for flips): (crtc, fbs).
fn show_pattern(
    card: &DrmFd,
    pattern: impl Fn(usize) -> u32,
) -> (u32, [u32; 2], drm_uapi::kms::ModeInfo) {
    let res = card.resources().unwrap();
    let (crtc, connector) = (res.crtcs[0], res.connectors[0]);
    let (_, modes) = card.connector(connector, 32).unwrap();
    let mode = modes[0];
    let (w, h) = (u32::from(mode.hdisplay), u32::from(mode.vdisplay));
    let fbs = [0, 1].map(|n| {
        let dumb = card.create_dumb(w, h).unwrap();
        let map = card
            .map_dumb(dumb.handle, (dumb.pitch * h) as usize)
            .unwrap();
        let pixels: Vec<u8> = (0..(w * h) as usize)
            .flat_map(|i| (pattern(i) ^ n).to_le_bytes())
            .collect();
        map.write_bytes(0, &pixels);
        card.add_fb2(
            dumb.handle,
            w,
            h,
            dumb.pitch,
            drm_uapi::kms::FORMAT_XRGB8888,
        )
        .unwrap()
    });
    card.set_crtc(crtc, fbs[0], &[connector], Some(mode))
        .unwrap();
    card.dirty_fb(fbs[0], &[]).unwrap();
    (crtc, fbs, mode)
}

#[test]
fn the_display_and_a_kms_client_go_on_across_a_kill() {
    let _turn = STACK.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Launched::start(&["--2d"]);
    let card = DrmFd::open(CARD).unwrap();
    let pattern = |i: usize| (i as u32).wrapping_mul(2654435761) | 0xff00_0000;
    let (crtc, fbs, mode) = show_pattern(&card, pattern);
    // The host shows XRGB as RGBA, opaque.
    let expected: Vec<u8> = (0..usize::from(mode.hdisplay) * usize::from(mode.vdisplay))
        .flat_map(|i| {
            let [b, g, r, _] = pattern(i).to_le_bytes();
            [r, g, b, 255]
        })
        .collect();
    let shown = stack_tests::display::shown("0", |p| p.pixels == expected);
    // The frame as the host shows it, read over and over from before the
    // kill until the new drmd answers and a few reads after.
    let frames = Arc::new(AtomicUsize::new(0));
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (watching, frames) = (watching.clone(), frames.clone());
        std::thread::spawn(move || {
            while watching.load(Ordering::Relaxed) {
                let now = Pam::parse(&display("0").unwrap());
                assert!(
                    now.pixels == shown.pixels,
                    "the display changed across the restart"
                );
                frames.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let after_reads = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while frames.load(Ordering::Relaxed) < n && !watcher.is_finished() {
            assert!(Instant::now() < deadline, "the display is not read");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let before = card.crtc(crtc).unwrap();
    after_reads(2);
    stack.kill_drmd();
    let at_kill = frames.load(Ordering::Relaxed);
    card.crtc(crtc).unwrap();
    after_reads(at_kill + 3);
    watching.store(false, Ordering::Relaxed);
    watcher.join().unwrap();
    let frames = frames.load(Ordering::Relaxed);
    println!("restart: the display was the same in {frames} frames read across the kill");
    // The new drmd reports the same configuration, with no modeset.
    let after = card.crtc(crtc).unwrap();
    assert_eq!(after.fb_id, before.fb_id);
    assert_eq!(after.mode_valid, 1);
    assert_eq!(
        zerocopy::IntoBytes::as_bytes(&after.mode),
        zerocopy::IntoBytes::as_bytes(&before.mode)
    );
    // The client goes on flipping, across another kill.
    let flipper = std::thread::spawn(move || {
        for i in 0..60 {
            card.page_flip(crtc, fbs[(i + 1) % 2], 1, i as u64)
                .expect("PAGE_FLIP");
            let mut buf = [0u8; 64];
            // A read drmd lost is interrupted; read again, as POSIX says.
            loop {
                match card.read_events(&mut buf) {
                    Ok(n) => break assert!(n > 0),
                    Err(e) if errno(&e) == libc::EINTR => {}
                    Err(e) => panic!("reading the flip's event: {e}"),
                }
            }
        }
        card
    });
    std::thread::sleep(Duration::from_millis(300));
    stack.kill_drmd();
    let card = flipper.join().unwrap();
    assert_eq!(
        card.crtc(crtc).unwrap().fb_id,
        fbs[0],
        "60 flips end where they began"
    );
}

#[test]
fn fifty_restarts_with_clients_running_leave_the_device_as_it_was() {
    let _turn = STACK.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Launched::start(&[]);
    let memory = gpu_stat("memory_used");
    let probers: Vec<Prober> = (0..3).map(|_| Prober::start()).collect();
    // Files that sit with objects through every restart.
    let idle: Vec<(DrmFd, u32)> = (0..4)
        .map(|i| {
            let drm = DrmFd::open(if i % 2 == 0 { RENDER } else { CARD }).unwrap();
            let (bo, _) = cleared(&drm, 32, 32, [0.0, 0.0, 1.0, 1.0]);
            (drm, bo)
        })
        .collect();
    // Every session's objects, once the probers hold theirs: a restart
    // adopts them all and adds none.
    std::thread::sleep(Duration::from_millis(200));
    let held = held_per_session();
    let mut kills = Vec::new();
    let mut restart_ms = Vec::new();
    for round in 0..50 {
        kill(&stack, &mut kills);
        restart_ms.push(stack.status().last_restart_ms);
        // The clients run between kills.
        std::thread::sleep(Duration::from_millis(40));
        if round % 10 == 9 {
            for (drm, bo) in &idle {
                assert_eq!(
                    first_pixel(drm, *bo, 32, 32),
                    [0, 0, 255, 255],
                    "round {round}"
                );
            }
        }
    }
    assert_eq!(
        held_per_session(),
        held,
        "what each session holds, across 50 kills"
    );
    println!("restart: held per session (session:objects) through 50 kills: {held}");
    for p in probers {
        report(
            "fifty kills, three probers",
            p.finish(&kills[kills.len() - 50..]),
        );
    }
    restart_ms.sort_by(f64::total_cmp);
    println!(
        "restart: 50 restarts, drmd ready after its exit in median {:.1} ms, max {:.1} ms",
        restart_ms[25], restart_ms[49]
    );
    assert_eq!(gpu_stat("owner_restarts"), 50);
    assert_eq!(gpu_stat("device_resets"), 1, "the start's reset only");
    drop(idle);
    device_back_to(memory);
    // The connections of closed files left the store with them.
    let e = DrmFd::open("/scheme/drm/nothing").map(drop).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
}

/// `gpu-tool drm-ids`, once it holds objects of every kind.
fn holder() -> Child {
    let (child, lines) = stack_tests::holding("drm-ids");
    assert!(lines[0].starts_with("bo "), "{lines:?}");
    child
}

#[test]
fn clients_killed_with_live_objects_leave_nothing_across_restarts() {
    let _turn = STACK.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Launched::start(&[]);
    let memory = gpu_stat("memory_used");
    // Killed after a restart: its file was taken over, then closes.
    let mut a = holder();
    stack.kill_drmd();
    a.kill().unwrap();
    a.wait().unwrap();
    device_back_to(memory);
    // Killed while drmd is down: the next drmd finds it gone and reclaims
    // what it held; another restart later finds nothing of it.
    let mut b = holder();
    let mut c = holder();
    let before = stack.status();
    // SAFETY: signalling a process of this test's stack.
    unsafe { libc::kill(before.drmd_pid as libc::pid_t, libc::SIGKILL) };
    b.kill().unwrap();
    b.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while stack.status().restarts == before.restarts {
        assert!(Instant::now() < deadline, "drmd was not restarted");
        std::thread::sleep(Duration::from_millis(5));
    }
    stack.kill_drmd();
    c.kill().unwrap();
    c.wait().unwrap();
    stack.kill_drmd();
    device_back_to(memory);
    assert_eq!(gpu_stat("owner_restarts"), 4);
}
