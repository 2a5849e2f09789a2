//! A virtio-gpud session client run as its own process by the tests.
//!
//! - `gpu-tool hold`: on a virtio-gpud session, creates a context and a
//!   resource with backing, prints "holding", and waits to be killed.
//! - `gpu-tool drm-hold`: the same through scheme:drm (RESOURCE_CREATE on a
//!   render node).
//! - `gpu-tool open-as-nobody PATH...`: drops to user `nobody` (65534), opens
//!   each scheme path and prints `PATH ok` or `PATH <errno>` per line.

use std::io::Write;

use virtio_gpu_proto::{CtxCreate, CtxId, Resource3dParams, ResourceCreate3d, ResourceId};
use virtio_gpud::client::Session;
use zerocopy::IntoBytes;

fn main() -> std::io::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("hold") => hold_session(),
        Some("drm-hold") => hold_drm(),
        Some("open-as-nobody") => open_as_nobody(std::env::args().skip(2)),
        _ => Err(std::io::Error::other(
            "usage: gpu-tool hold | drm-hold | open-as-nobody PATH...",
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
    let mut r = drm_uapi::virtgpu::ResourceCreate {
        target: 2,
        format: 67,
        bind: 0xa,
        width: 16,
        height: 16,
        depth: 1,
        array_size: 1,
        size: 1024,
        ..zerocopy::FromZeros::new_zeroed()
    };
    fd.call(
        zerocopy::IntoBytes::as_mut_bytes(&mut r),
        &[drm_uapi::virtgpu::RESOURCE_CREATE],
    )?;
    holding()
}

fn hold_session() -> std::io::Result<()> {
    let s = Session::open()?;
    let placeholder = CtxId::new(1).expect("non-zero");
    s.call(CtxCreate::new(placeholder, 0, "held").as_bytes(), 0, 24)?;
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
    s.call(res.as_bytes(), 0, 24)?;
    s.alloc(4096)?;
    holding()
}

fn open_as_nobody(paths: impl Iterator<Item = String>) -> std::io::Result<()> {
    const NOBODY: libc::uid_t = 65534;
    // SAFETY: plain system calls changing this process's own identity.
    if unsafe { libc::setgid(NOBODY) } != 0 || unsafe { libc::setuid(NOBODY) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    for path in paths {
        match scheme_seam::SchemeFd::open(&path, 0) {
            Ok(_) => println!("{path} ok"),
            Err(e) => println!("{path} {}", e.raw_os_error().unwrap_or(0)),
        }
    }
    Ok(())
}
