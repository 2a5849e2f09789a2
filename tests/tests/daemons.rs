//! The three daemon binaries as real processes: each signals readiness the
//! way init expects, serves its scheme, and exits cleanly on SIGTERM,
//! leaving nothing behind.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use scheme_seam::SchemeFd;
use stack_tests::{bus_dir, workspace_binary, Daemon};

/// virtio-gpud serves a fixed name in the bus directory: tests that start
/// it take turns.
static GPU: Mutex<()> = Mutex::new(());

fn ioctl_errno(fd: &SchemeFd, nr: u64) -> Option<i32> {
    fd.call(&mut [0u8; 8], &[nr]).unwrap_err().raw_os_error()
}

fn assert_clean_exit(mut d: Daemon) {
    let status = d.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(!d.socket_exists(), "socket removed on exit");
}

#[test]
fn drmd_serves_both_nodes_and_exits_on_sigterm() {
    let _turn = GPU.lock().unwrap_or_else(|e| e.into_inner());
    let gpu = Daemon::start(&workspace_binary("virtio-gpud"), &[], "virtio-gpu");
    let d = Daemon::start(&workspace_binary("drmd"), &[], "drm");
    let card = d.open("card0");
    let render = d.open("renderD128");
    // A number Linux's table does not have answers EINVAL, as Linux, and
    // the daemon keeps serving.
    assert_eq!(ioctl_errno(&card, 0x7F), Some(libc::EINVAL));
    assert_eq!(ioctl_errno(&render, 0x7E), Some(libc::EINVAL));
    let err = SchemeFd::open(&d.path("card1"), 0).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    drop((card, render));
    assert_clean_exit(d);
    assert_clean_exit(gpu);
}

#[test]
fn drmd_without_virtio_gpud_fails_at_once_with_a_clear_error() {
    let _turn = GPU.lock().unwrap_or_else(|e| e.into_inner());
    let output = std::process::Command::new(workspace_binary("drmd"))
        .env(scheme_seam::linux::SCHEME_DIR, bus_dir())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("cannot reach virtio-gpud"), "{log}");
    assert!(!bus_dir().join("drm").exists());
}

#[test]
fn syncd_serves_its_root_and_exits_on_sigterm() {
    let d = Daemon::start(&workspace_binary("syncd"), &[], "sync");
    let root = d.open("");
    let mut buf = [0u8; 256];
    let n = root.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("syncobjs 0"));
    assert_eq!(ioctl_errno(&root, 1), Some(libc::ENOTTY));
    let err = SchemeFd::open(&d.path("no-such-thing"), 0).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    drop(root);
    assert_clean_exit(d);
}

#[test]
fn virtio_gpud_brings_up_the_device_serves_stats_and_releases_it_on_sigterm() {
    let _turn = GPU.lock().unwrap_or_else(|e| e.into_inner());
    let d = Daemon::start(&workspace_binary("virtio-gpud"), &[], "virtio-gpu");
    let stats = d.open("stats");
    let mut buf = vec![0u8; 4096];
    let n = stats.read(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(text.contains("VIRGL"), "{text}");
    assert!(text.contains("capset 2 version 2"), "{text}");
    assert!(text.contains("ctrl submitted"), "{text}");
    // The device backend it started is its child; it must go with it.
    let backend = children_of(d.pid());
    assert_eq!(backend.len(), 1, "one vhost-user-gpu backend: {backend:?}");
    assert_clean_exit(d);
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{}", backend[0])).exists() {
        assert!(
            Instant::now() < deadline,
            "backend {} outlived the daemon",
            backend[0]
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Process ids whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    // Fields after the parenthesised command: state, ppid.
                    let rest = &s[s.rfind(')')? + 2..];
                    rest.split(' ').nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}
