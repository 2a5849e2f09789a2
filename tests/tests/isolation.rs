//! What one client can reach of another's, and who may reach the device:
//! every id of another process's objects (GEM handles, resources, mmap
//! offsets, syncobjs) is unknown or refused in a file of one's own;
//! memory handed out cannot be resized or sealed by whoever holds it; and
//! only root or the stack's own user may open virtio-gpud sessions or the
//! primary node, while anyone may render through the render node.

use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use drm_uapi::syncobj as so;
use drm_uapi::virtgpu::{self as vg, ResourceInfo, Wait};
use drmd::client::DrmFd;
use gpu_session::Session;
use stack_tests::{bus_dir, stack, workspace_binary};
use virgl_stream::clear_stream;
use virtio_gpu_proto::{CtxAttachResource, CtxId, ResourceId, ResourceUnref};
use zerocopy::{FromZeros, IntoBytes};

/// The daemons serve fixed names in the bus directory: tests take turns.
static DAEMONS: Mutex<()> = Mutex::new(());

fn errno(r: std::io::Result<impl std::fmt::Debug>) -> Option<i32> {
    r.unwrap_err().raw_os_error()
}

#[test]
fn no_id_of_another_processs_objects_works_in_a_file_of_ones_own() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let (mut other, lines) = stack_tests::holding("drm-ids");
    let ids: Vec<u64> = lines[0]
        .split_whitespace()
        .skip(1)
        .step_by(2)
        .map(|v| v.parse().unwrap())
        .collect();
    let (their_res, their_offset) = (ids[1] as u32, ids[2]);
    let fd = DrmFd::open("/scheme/drm/renderD128").unwrap();
    // Every small GEM handle and syncobj handle: none of this file's.
    for h in 1..=64u32 {
        let mut info = ResourceInfo {
            bo_handle: h,
            ..ResourceInfo::new_zeroed()
        };
        assert_eq!(
            errno(fd.ioctl(vg::RESOURCE_INFO, info.as_mut_bytes())),
            Some(libc::ENOENT)
        );
        let mut w = Wait {
            handle: h,
            flags: 0,
        };
        assert_eq!(
            errno(fd.ioctl(vg::WAIT, w.as_mut_bytes())),
            Some(libc::ENOENT)
        );
        let mut d = so::Destroy { handle: h, pad: 0 };
        assert_eq!(
            errno(fd.ioctl(so::DESTROY, d.as_mut_bytes())),
            Some(libc::EINVAL)
        );
    }
    // Its object's mmap offset, and the pages around it.
    for offset in [their_offset, their_offset + 4096, their_offset - 4096] {
        let r = fd.mmap(offset, 4096);
        assert!(
            matches!(errno(r), Some(libc::EACCES | libc::EINVAL)),
            "offset {offset:#x}"
        );
    }
    // At virtio-gpud, a session of this process's: every resource id
    // around the other's, every small context id.
    let s = Session::open().unwrap();
    for raw in their_res.saturating_sub(32).max(1)..their_res + 32 {
        let res = ResourceId::new(raw).unwrap();
        assert_eq!(
            errno(s.queue(ResourceUnref::new(res).as_bytes(), 0)),
            Some(libc::EACCES),
            "resource {raw}"
        );
        assert_eq!(errno(s.share(raw)), Some(libc::ENOENT), "share {raw}");
    }
    for raw in 1..=64u32 {
        let attach = CtxAttachResource::new(
            CtxId::new(raw).unwrap(),
            ResourceId::new(their_res).unwrap(),
        );
        assert_eq!(
            errno(s.queue(attach.as_bytes(), 0)),
            Some(libc::EACCES),
            "ctx {raw}"
        );
    }
    other.kill().unwrap();
    other.wait().unwrap();
}

#[test]
fn memory_handed_out_cannot_be_resized_or_sealed_by_its_holder() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let fd = DrmFd::open("/scheme/drm/renderD128").unwrap();
    let (bo, _) = fd
        .resource_create(drmd::client::render_target(16, 16))
        .unwrap();
    let map = fd.map(bo, 1024).unwrap();
    let file = std::fs::File::from(map.fd().try_clone_to_owned().unwrap());
    for len in [0, 1 << 30] {
        assert_eq!(
            file.set_len(len).unwrap_err().raw_os_error(),
            Some(libc::EPERM)
        );
    }
    // SAFETY: F_ADD_SEALS on a descriptor this test holds.
    let sealed = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_WRITE) };
    assert_eq!(sealed, -1, "more seals are refused");
    // The stack goes on, this file's object included.
    map.write_bytes(0, &[1, 2, 3, 4]);
    fd.transfer(bo, vg::Box3d::whole(16, 16), true).unwrap();
    fd.wait(bo, false).unwrap();
}

#[test]
fn only_root_and_the_stacks_user_reach_sessions_and_the_primary_node() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let output = Command::new(workspace_binary("gpu-tool"))
        .args([
            "open-as-nobody",
            "/scheme/virtio-gpu/session",
            "/scheme/virtio-gpu/stats",
            "/scheme/virtio-gpu/display/0",
            "/scheme/virtio-gpu/display/cursor",
            "/scheme/drm/card0",
            "/scheme/drm/renderD128",
        ])
        .env(scheme_seam::linux::SCHEME_DIR, bus_dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    let eacces = libc::EACCES;
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            format!("/scheme/virtio-gpu/session {eacces}"),
            "/scheme/virtio-gpu/stats ok".to_string(),
            format!("/scheme/virtio-gpu/display/0 {eacces}"),
            format!("/scheme/virtio-gpu/display/cursor {eacces}"),
            format!("/scheme/drm/card0 {eacces}"),
            "/scheme/drm/renderD128 ok".to_string(),
        ]
    );
    // And nobody renders through the render node.
    let output = Command::new(workspace_binary("gpu-tool"))
        .arg("render-as-nobody")
        .env(scheme_seam::linux::SCHEME_DIR, bus_dir())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && text.contains("rendered"),
        "{text}"
    );
}

/// A client closing (its context destroyed) while another client's fenced
/// submit runs: that submit's fence still signals. virglrenderer drops the
/// fence its sync thread is waiting on when any context is destroyed, so
/// virtio-gpud fences every CTX_DESTROY; a big clear keeps the other
/// client's fence the one waited on when the destroy arrives.
#[test]
fn a_client_closing_does_not_lose_another_clients_fence_in_flight() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack();
    let render = "/scheme/drm/renderD128";
    let busy = DrmFd::open(render).unwrap();
    let (bo, res) = busy
        .resource_create(drmd::client::render_target(4096, 4096))
        .unwrap();
    let rgba8 = virgl_stream::format::R8G8B8A8_UNORM;
    for round in 0..4 {
        let closing = DrmFd::open(render).unwrap();
        let (small, small_res) = closing
            .resource_create(drmd::client::render_target(16, 16))
            .unwrap();
        // Its context exists once it has submitted.
        let own = closing
            .execbuffer(
                &clear_stream(small_res, rgba8, [1.0; 4]),
                &[small],
                None,
                true,
            )
            .unwrap()
            .unwrap();
        assert!(own.wait(Duration::from_secs(5)).unwrap());
        let v = f32::from(round % 2 == 0);
        let fence = busy
            .execbuffer(
                &clear_stream(res, rgba8, [v, 0.0, 0.0, 1.0]),
                &[bo],
                None,
                true,
            )
            .unwrap()
            .unwrap();
        drop(closing);
        // Within the device timeout: a lost fence is failed only then.
        assert!(
            fence.wait(Duration::from_secs(5)).unwrap(),
            "round {round}: the fence of a submit in flight while another client closed never signaled"
        );
    }
}
