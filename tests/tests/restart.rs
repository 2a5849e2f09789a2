//! drmd under its supervisor (`gpu-launcher`), SIGKILLed: the launcher
//! starts another, which serves the same socket and every connection the
//! dead one had (kept in the launcher's file-descriptor store). A file the
//! dead instance had opened answers ENODEV from then on, and a request it
//! had taken (parked) is answered ENODEV too, never left hanging; a
//! connection still opening, or one made while drmd is down, is served by
//! the next instance as if nothing happened; what the dead instance held
//! on the device is released.

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
