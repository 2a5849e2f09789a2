//! A virtio-gpud session client run as its own process by the tests.
//!
//! - `gpu-tool hold`: on a virtio-gpud session, creates a context and a
//!   resource with backing, prints "holding", and waits to be killed.
//! - `gpu-tool drm-hold`: the same through scheme:drm (RESOURCE_CREATE on a
//!   render node).
//! - `gpu-tool open-as-nobody PATH...`: drops to user `nobody` (65534), opens
//!   each scheme path and prints `PATH ok` or `PATH <errno>` per line.
//! - `gpu-tool render-as-nobody`: drops to `nobody`, renders through a
//!   render node (a clear, read back) and prints "rendered".
//! - `gpu-tool drm-ids`: holds objects of every kind on a render node and
//!   prints their ids (`bo RES_HANDLE res RES offset OFFSET syncobj S`),
//!   then waits to be killed.
//! - `gpu-tool storm N`: makes N fenced submits through a render node, up
//!   to 8 in flight, with a syncobj, a PRIME export and import, a mapping
//!   and a VIRTGPU_WAIT along the way; prints `done K` each time K more
//!   fences have signalled (the storm test counts them), and exits 0 when
//!   all N have. A fence that does not signal in 10 s is an error.

use std::io::Write;

use gpu_session::Session;
use virtio_gpu_proto::{CtxCreate, CtxId, Resource3dParams, ResourceCreate3d, ResourceId};
use zerocopy::IntoBytes;

fn main() -> std::io::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("hold") => hold_session(),
        Some("drm-hold") => hold_drm(),
        Some("open-as-nobody") => open_as_nobody(std::env::args().skip(2)),
        Some("render-as-nobody") => {
            become_nobody()?;
            render()?;
            println!("rendered");
            Ok(())
        }
        Some("drm-ids") => drm_ids(),
        Some("storm") => match std::env::args().nth(2).and_then(|n| n.parse().ok()) {
            Some(n) => storm(n),
            None => Err(std::io::Error::other("usage: gpu-tool storm N")),
        },
        _ => Err(std::io::Error::other(
            "usage: gpu-tool hold | drm-hold | open-as-nobody PATH... | render-as-nobody \
             | drm-ids | storm N",
        )),
    }
}

fn holding() -> std::io::Result<()> {
    println!("holding");
    std::io::stdout().flush()?;
    loop {
        std::thread::park();
    }
}

fn hold_drm() -> std::io::Result<()> {
    let fd = scheme_seam::SchemeFd::open("/scheme/drm/renderD128", 0)?;
    let mut r = drmd::client::render_target(16, 16);
    fd.call(
        zerocopy::IntoBytes::as_mut_bytes(&mut r),
        &[drm_uapi::virtgpu::RESOURCE_CREATE],
    )?;
    holding()
}

fn hold_session() -> std::io::Result<()> {
    let s = Session::open()?;
    let placeholder = CtxId::new(1).expect("non-zero");
    s.call(CtxCreate::new(placeholder, 0, "held").as_bytes(), 0)?;
    let params = Resource3dParams {
        target: 2,
        format: 67,
        bind: 0xa,
        width: 16,
        height: 16,
        depth: 1,
        array_size: 1,
        last_level: 0,
        nr_samples: 0,
        flags: 0,
    };
    let res = ResourceCreate3d::new(ResourceId::new(1).expect("non-zero"), &params);
    s.call(res.as_bytes(), 0)?;
    s.alloc(4096)?;
    holding()
}

fn become_nobody() -> std::io::Result<()> {
    const NOBODY: libc::uid_t = 65534;
    // SAFETY: plain system calls changing this process's own identity.
    if unsafe { libc::setgid(NOBODY) } != 0 || unsafe { libc::setuid(NOBODY) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A clear of a 16×16 object through a render node, read back.
fn render() -> std::io::Result<()> {
    use drm_uapi::virtgpu::Box3d;
    let fd = drmd::client::DrmFd::open("/scheme/drm/renderD128")?;
    let (bo, res) = fd.resource_create(drmd::client::render_target(16, 16))?;
    let stream = virgl_stream::clear_stream(res, 67, [1.0, 1.0, 1.0, 1.0]);
    let fence = fd
        .execbuffer(&stream, &[bo], None, true)?
        .expect("out-fence");
    fence.wait(std::time::Duration::from_secs(10))?;
    let whole = Box3d::whole(16, 16);
    fd.transfer(bo, whole, false)?;
    fd.wait(bo, false)?;
    let map = fd.map(bo, 1024)?;
    let mut pixels = [0u8; 1024];
    map.read_bytes(0, &mut pixels);
    if pixels.iter().all(|&b| b == 0xFF) {
        Ok(())
    } else {
        Err(std::io::Error::other("the clear did not reach the buffer"))
    }
}

/// Objects of every kind, with their ids printed for another process to
/// try.
fn drm_ids() -> std::io::Result<()> {
    let fd = drmd::client::DrmFd::open("/scheme/drm/renderD128")?;
    let (bo, res) = fd.resource_create(drmd::client::render_target(16, 16))?;
    let offset = fd.map_offset(bo)?;
    let mut create = drm_uapi::syncobj::Create {
        handle: 0,
        flags: drm_uapi::syncobj::CREATE_SIGNALED,
    };
    fd.ioctl(drm_uapi::syncobj::CREATE, create.as_mut_bytes())?;
    println!(
        "bo {bo} res {res} offset {offset} syncobj {}",
        create.handle
    );
    holding()
}

fn open_as_nobody(paths: impl Iterator<Item = String>) -> std::io::Result<()> {
    become_nobody()?;
    for path in paths {
        match scheme_seam::SchemeFd::open(&path, 0) {
            Ok(_) => println!("{path} ok"),
            Err(e) => println!("{path} {}", e.raw_os_error().unwrap_or(0)),
        }
    }
    Ok(())
}

/// `n` fenced submits with the other objects a client uses along the way
/// (see the module docs).
fn storm(n: u64) -> std::io::Result<()> {
    use drm_uapi::syncobj as so;
    use std::collections::VecDeque;
    use std::time::Duration;

    const IN_FLIGHT: usize = 8;
    const REPORT: u64 = 25;
    let fd = drmd::client::DrmFd::open("/scheme/drm/renderD128")?;
    let (bo, res) = fd.resource_create(drmd::client::render_target(16, 16))?;
    let mut create = so::Create {
        handle: 0,
        flags: 0,
    };
    fd.ioctl(so::CREATE, create.as_mut_bytes())?;
    let mut fences = VecDeque::new();
    let (mut done, mut reported) = (0u64, 0u64);
    let mut out = std::io::stdout();
    let mut retire = |fences: &mut VecDeque<sync_client::SyncFile>, keep: usize| {
        while fences.len() > keep {
            let fence = fences.pop_front().expect("non-empty");
            if !fence.wait(Duration::from_secs(10))? {
                return Err(std::io::Error::other("a fence did not signal in 10 s"));
            }
            done += 1;
        }
        if done >= reported + REPORT || (keep == 0 && done > reported) {
            writeln!(out, "done {}", done - reported)?;
            out.flush()?;
            reported = done;
        }
        Ok(())
    };
    for i in 0..n {
        let shade = (i % 256) as f32 / 255.0;
        let stream = virgl_stream::clear_stream(res, 67, [shade, 0.0, 1.0 - shade, 1.0]);
        let fence = fd
            .execbuffer(&stream, &[bo], None, true)?
            .ok_or_else(|| std::io::Error::other("no out-fence"))?;
        if i % 50 == 0 {
            // The fence into the syncobj, and the object shared and mapped.
            let mut f = so::FdToHandle {
                handle: create.handle,
                flags: so::FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
                token: fence.token()?,
                ..zerocopy::FromZeros::new_zeroed()
            };
            fd.ioctl(so::FD_TO_HANDLE, f.as_mut_bytes())?;
            let shared = fd.prime_export(bo)?;
            let imported = fd.prime_import(&shared)?;
            drop(shared.map(1024)?);
            if imported != bo {
                return Err(std::io::Error::other("PRIME import named another object"));
            }
            fd.wait(bo, false)?;
        }
        fences.push_back(fence);
        retire(&mut fences, IN_FLIGHT)?;
    }
    retire(&mut fences, 0)
}
