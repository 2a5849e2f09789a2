//! drmd under its supervisor (`gpu-launcher`), SIGKILLed: the launcher
//! starts another, which serves the same socket and every connection the
//! dead one had (kept in the launcher's file-descriptor store). A file the
//! dead instance had opened answers ENODEV from then on, and a request it
//! had taken (parked) is answered ENODEV too, never left hanging; a
//! connection still opening, or one made while drmd is down, is served by
//! the next instance as if nothing happened; what the dead instance held
//! on the device is released. Clients of each kind across one kill — an
//! unmodified Mesa program rendering, a sync_file waiter, a parked read, a
//! WAIT on a busy object, a KMS client flipping — go on or get ENODEV,
//! none hangs, and each can reopen the node.

use std::io::ErrorKind;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use drm_uapi::virtgpu as vg;
use drmd::client::DrmFd;
use stack_tests::launched::Launched;
use stack_tests::{bus_dir, device_objects};

/// One stack at a time: the tests share the bus directory.
static STACK: Mutex<()> = Mutex::new(());

const RENDER: &str = "/scheme/drm/renderD128";
const CARD: &str = "/scheme/drm/card0";

/// A render-node file that rendered: a clear on the host GPU, its fence
/// waited for.
fn render(drm: &DrmFd) {
    let (bo, res) = drm
        .resource_create(drmd::client::render_target(64, 64))
        .expect("RESOURCE_CREATE");
    let stream = virgl_stream::clear_stream(
        res,
        virgl_stream::format::R8G8B8A8_UNORM,
        [0.0, 0.5, 0.5, 1.0],
    );
    let fence = drm
        .execbuffer(&stream, &[bo], None, true)
        .expect("EXECBUFFER")
        .expect("an out-fence");
    assert!(fence.wait(Duration::from_secs(10)).expect("waiting"));
}

fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// Waits until virtio-gpud's object table is empty: nothing the dead
/// instance or its clients held is left on the device.
fn device_clean() {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let objects = device_objects();
        if objects.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left on the device: {objects}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_killed_drmd_comes_back_and_the_dead_instances_files_answer_enodev() {
    let _turn = STACK.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Launched::start(&[]);
    let old = DrmFd::open(RENDER).unwrap();
    assert!(old.getparam(vg::PARAM_3D_FEATURES).unwrap() == 1);
    render(&old);
    // A read of a DRM file with no events waits in drmd (parked).
    let parked = std::thread::spawn(|| {
        let card = DrmFd::open(CARD).unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 64];
        let result = card.read_events(&mut buf);
        (result.map_err(|e| errno(&e)), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(200));
    let status = stack.kill_drmd();
    println!(
        "restart: drmd {} ready {:.1} ms after the old one's exit was seen",
        status.drmd_pid, status.last_restart_ms
    );
    assert_eq!(status.restarts, 1);

    let (result, waited) = parked.join().unwrap();
    assert_eq!(result, Err(libc::ENODEV), "the parked read");
    assert!(waited < Duration::from_secs(20));
    let e = old.getparam(vg::PARAM_3D_FEATURES).unwrap_err();
    assert_eq!(
        errno(&e),
        libc::ENODEV,
        "an ioctl on the dead instance's file: {e:?}"
    );
    assert_eq!(
        errno(
            &old.resource_create(drmd::client::render_target(8, 8))
                .unwrap_err()
        ),
        libc::ENODEV
    );
    // The socket never went away; the node opens and renders again.
    assert!(bus_dir().join("drm").exists());
    let fresh = DrmFd::open(RENDER).unwrap();
    render(&fresh);
    drop((old, fresh));
    device_clean();
    let log = std::fs::read_to_string(&stack.log).unwrap();
    assert!(log.contains("drmd restarted (#1"), "{log}");
}

#[test]
fn a_client_that_opens_while_drmd_is_down_is_served_by_the_next_one() {
    let _turn = STACK.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Launched::start(&[]);
    let before = stack.status();
    // SAFETY: signalling a process of this test's stack.
    unsafe { libc::kill(before.drmd_pid as libc::pid_t, libc::SIGKILL) };
    // The open connects to the socket the launcher keeps and waits in it
    // until the next instance takes it.
    let opened = DrmFd::open(RENDER).expect("open while drmd is down");
    render(&opened);
    let after = stack.status();
    assert_eq!(after.restarts, 1);
    assert_ne!(after.drmd_pid, before.drmd_pid);
    drop(opened);
    device_clean();
}

#[test]
fn twenty_restarts_under_clients_leave_nothing_on_the_device() {
    let _turn = STACK.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Launched::start(&[]);
    let mut times = Vec::new();
    let mut held = Vec::new();
    for round in 0..20 {
        let drm = DrmFd::open(if round % 2 == 0 { RENDER } else { CARD }).unwrap();
        render(&drm);
        held.push(drm);
        let status = stack.kill_drmd();
        times.push(status.last_restart_ms);
        // Every file of an earlier instance is dead, whichever instance.
        for old in &held {
            let e = old.getparam(vg::PARAM_3D_FEATURES).unwrap_err();
            assert_eq!(errno(&e), libc::ENODEV, "round {round}");
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "restart: 20 restarts, median {:.1} ms, max {:.1} ms",
        times[10], times[19]
    );
    let fresh = DrmFd::open(RENDER).unwrap();
    render(&fresh);
    drop(fresh);
    drop(held);
    device_clean();
    // The connections of closed files left the store with them.
    let e = DrmFd::open("/scheme/drm/nothing").map(drop).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

/// Runs `child` to its end, its output drained meanwhile, or fails the
/// test if it outlives `limit`.
fn ends_within(child: std::process::Child, limit: Duration, what: &str) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(limit) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            // SAFETY: signalling the test's own child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{what} hangs across drmd's restart");
        }
    }
}

#[test]
fn clients_of_each_kind_go_on_or_get_a_clear_error_across_a_kill() {
    use std::process::Stdio;
    let _turn = STACK.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Launched::start(&[]);
    // Unmodified Mesa rendering and checking frames for a while.
    let gl = stack_tests::mesa_command(stack_tests::workspace_binary("gl-bench"))
        .args(["gbm", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A sync_file of a submitted clear: syncd's, so drmd's death leaves it.
    let render = DrmFd::open(RENDER).unwrap();
    let (bo, res) = render
        .resource_create(drmd::client::render_target(64, 64))
        .unwrap();
    let fence = render
        .execbuffer(
            &virgl_stream::clear_stream(res, virgl_stream::format::R8G8B8A8_UNORM, [1.0; 4]),
            &[bo],
            None,
            true,
        )
        .unwrap()
        .expect("an out-fence");
    // A read of a DRM file parked in drmd, and a WAIT on a busy object.
    let reader = std::thread::spawn(|| {
        let card = DrmFd::open(CARD).unwrap();
        card.read_events(&mut [0u8; 64]).map_err(|e| errno(&e))
    });
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
    std::thread::sleep(Duration::from_millis(500));
    let status = stack.kill_drmd();
    println!(
        "restart: drmd back in {:.1} ms under six clients",
        status.last_restart_ms
    );

    // The GL program is not left hanging: it ends, whatever Mesa makes of
    // the ENODEV its file answers.
    let out = ends_within(gl, Duration::from_secs(60), "a GL program");
    println!(
        "restart: the GL program ended {} across the kill",
        out.status
    );
    assert!(
        fence.wait(Duration::from_secs(10)).unwrap(),
        "the sync_file signals"
    );
    assert_eq!(reader.join().unwrap(), Err(libc::ENODEV), "the parked read");
    // The WAIT either saw its work done before the kill or is told ENODEV.
    let waited = waiter.join().unwrap();
    assert!(matches!(waited, Ok(()) | Err(libc::ENODEV)), "{waited:?}");
    assert_eq!(
        errno(&render.getparam(vg::PARAM_3D_FEATURES).unwrap_err()),
        libc::ENODEV
    );
    // Reopened, everything works, Mesa too.
    render_fresh_gl();
    drop(render);
    device_clean();
}

/// A new GL program on the restarted drmd renders and checks its frames.
fn render_fresh_gl() {
    let out = stack_tests::mesa_command(stack_tests::workspace_binary("gl-bench"))
        .args(["gbm", "0.2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_kms_client_flipping_across_a_kill_gets_enodev_and_can_set_its_mode_again() {
    let _turn = STACK.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Launched::start(&["--2d"]);
    let setup = |drm: &DrmFd| {
        let res = drm.resources().unwrap();
        let (crtc, connector) = (res.crtcs[0], res.connectors[0]);
        let (_, modes) = drm.connector(connector, 32).unwrap();
        let mode = modes[0];
        let (w, h) = (u32::from(mode.hdisplay), u32::from(mode.vdisplay));
        let fbs: Vec<u32> = (0..2)
            .map(|_| {
                let dumb = drm.create_dumb(w, h).unwrap();
                drm.add_fb2(
                    dumb.handle,
                    w,
                    h,
                    dumb.pitch,
                    drm_uapi::kms::FORMAT_XRGB8888,
                )
                .unwrap()
            })
            .collect();
        drm.set_crtc(crtc, fbs[0], &[connector], Some(mode))
            .unwrap();
        (crtc, fbs)
    };
    let card = DrmFd::open(CARD).unwrap();
    let (crtc, fbs) = setup(&card);
    let flipper = std::thread::spawn(move || {
        for i in 0.. {
            if let Err(e) = card.page_flip(crtc, fbs[i % 2], 1, i as u64) {
                return (i, errno(&e));
            }
            // The flip's event, then the next.
            if let Err(e) = card.read_events(&mut [0u8; 64]) {
                return (i, errno(&e));
            }
        }
        unreachable!()
    });
    std::thread::sleep(Duration::from_millis(300));
    stack.kill_drmd();
    let (flips, e) = flipper.join().unwrap();
    assert_eq!(e, libc::ENODEV, "after {flips} flips");
    assert!(flips > 0);
    // Reopened: the client sets its mode and flips again.
    let card = DrmFd::open(CARD).unwrap();
    let (crtc, fbs) = setup(&card);
    card.page_flip(crtc, fbs[1], 1, 7).unwrap();
    assert!(card.read_events(&mut [0u8; 64]).unwrap() > 0);
}
