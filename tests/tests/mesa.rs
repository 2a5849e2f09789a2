//! Unmodified Mesa (Debian 12's virgl driver, `virtio_gpu_dri.so`) on the
//! stack: programs open `/dev/dri/renderD128`, the shim carries their
//! ioctls to drmd in relibc's wire encoding, and the device renders. Each
//! test proves it ran on virgl: the drivers folder holds nothing else. A
//! probe drives what Mesa's paths here do not: PRIME, sync_file merges and
//! info, GETPARAM's pointer, dups.

use std::process::Output;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use stack_tests::{device_objects, mesa_command, stack, workspace_binary};

/// The daemons serve fixed names in the bus directory: tests take turns.
static DAEMONS: Mutex<()> = Mutex::new(());

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_gles2_program_on_gbm_draws_a_triangle_on_virgl_through_the_stack() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let output = mesa_command(workspace_binary("gles-triangle"))
        .output()
        .expect("running gles-triangle");
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(all.contains("GL_RENDERER: virgl"), "{all}");
    assert!(all.contains("triangle ok"), "{all}");
    // The program's objects went with it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !device_objects().is_empty() {
        assert!(Instant::now() < deadline, "left: {}", device_objects());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn eglinfo_reports_the_virtio_gpu_driver_through_the_stack() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let output = mesa_command("eglinfo")
        .output()
        .expect("running eglinfo (package mesa-utils; cargo xtask setup installs it)");
    let all = text(&output);
    for platform in ["GBM platform:", "Surfaceless platform:"] {
        let (_, rest) = all
            .split_once(platform)
            .unwrap_or_else(|| panic!("no {platform} in {all}"));
        // Up to the next platform's section.
        let driver = rest
            .lines()
            .take_while(|l| !l.ends_with("platform:"))
            .find(|l| l.starts_with("EGL driver name:"));
        assert_eq!(
            driver,
            Some("EGL driver name: virtio_gpu"),
            "{platform}\n{all}"
        );
    }
}

#[test]
fn linux_ioctls_through_the_shim_share_buffers_and_fences_as_on_linux() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let output = mesa_command(workspace_binary("shim-probe"))
        .output()
        .expect("running shim-probe");
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(all.contains("probe ok"), "{all}");
}
