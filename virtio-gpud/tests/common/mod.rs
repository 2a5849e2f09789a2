//! Bringing up the real device for a test: QEMU's vhost-user-gpu backend.
//! A missing backend fails the test with the set-up command to run; it
//! never skips.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

use virtio_gpu_proto::{CtxAttachResource, CtxId, Resource3dParams};
use virtio_gpud::transport::vhost_user::{
    launch, BackendProcess, LaunchOptions, VhostUserTransport,
};
use virtio_gpud::{Gpu, Resource};

/// A running device; the backend is killed when this drops.
pub struct Device {
    pub gpu: Gpu<VhostUserTransport>,
    // Dropped after `gpu`, so the backend sees a clean disconnect first.
    _backend: BackendProcess,
}

fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = env_logger::builder().is_test(true).try_init();
    });
}

pub fn options(virgl: bool) -> LaunchOptions {
    init_logging();
    let mut opts = LaunchOptions::new(virgl).unwrap_or_else(|e| panic!("{e}"));
    // Keep the backend's chatter (Mesa's loader warnings) out of test
    // output; the file is named in any bring-up failure.
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let log = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("vhost-user-gpu-{}-{n}.log", std::process::id()));
    opts.backend.log_file = Some(log);
    opts
}

pub fn start_with(opts: &LaunchOptions) -> Device {
    let (gpu, backend) = launch(opts).unwrap_or_else(|e| {
        panic!(
            "bringing up the device: {e} (backend log: {:?})",
            opts.backend.log_file
        )
    });
    Device {
        gpu,
        _backend: backend,
    }
}

/// A device with virgl 3D.
pub fn start_3d() -> Device {
    start_with(&options(true))
}

/// A 2D-only device, which can show scanouts on the display it serves.
pub fn start_2d() -> Device {
    start_with(&options(false))
}

/// Parameters of a `w × h` RGBA8 2D render target.
pub fn render_target(w: u32, h: u32) -> Resource3dParams {
    Resource3dParams {
        target: virgl_stream::target::TEXTURE_2D,
        format: virgl_stream::format::R8G8B8A8_UNORM,
        bind: virgl_stream::bind::RENDER_TARGET | virgl_stream::bind::SAMPLER_VIEW,
        width: w,
        height: h,
        depth: 1,
        array_size: 1,
        last_level: 0,
        nr_samples: 0,
        flags: 0,
    }
}

pub fn ctx(gpu: &mut Gpu<VhostUserTransport>) -> CtxId {
    gpu.create_context(virtio_gpu_proto::CapsetId::VIRGL2, "test")
        .expect("creating a context")
}

/// A context and a `w × h` RGBA8 render target with backing, attached to it.
pub fn ctx_with_target(gpu: &mut Gpu<VhostUserTransport>, w: u32, h: u32) -> (CtxId, Resource) {
    let ctx = ctx(gpu);
    let res = gpu
        .create_resource_3d(&render_target(w, h), (w * h * 4) as usize)
        .expect("creating a render target");
    gpu.call(&CtxAttachResource::new(ctx, res.id), &[], None)
        .expect("attaching it to the context");
    (ctx, res)
}
