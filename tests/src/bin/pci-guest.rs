//! The client side of the QEMU PCI test (`tests/tests/pci.rs`), run inside
//! the guest once virtio-gpud drives the PCI function and syncd and drmd
//! serve: through scheme:drm, the capset query, a clear rendered by the
//! host GPU and read back, and a virgl-rendered frame set as the scanout.
//!
//! Every step prints one `pci-guest:` line. `pci-guest: scanout W H`
//! tells the host the frame is on screen, drawn as
//! [`stack_tests::pci::Frame`] says; the host then resizes its display,
//! and `pci-guest: hotplug: preferred WxH` says the connector followed.
//! The program then stays, so the scanout does too.

use std::error::Error;
use std::time::Duration;

use drm_uapi::kms as k;
use drm_uapi::virtgpu::{self as vg, Box3d};
use drmd::client::DrmFd;
use stack_tests::pci::{Frame, BACKGROUND, INSET};

/// The read-back check's size and colour (R8G8B8A8).
const CHECK: u32 = 64;
const TEAL: [f32; 4] = [0.0, 128.0 / 255.0, 128.0 / 255.0, 1.0];

fn main() -> Result<(), Box<dyn Error>> {
    let render = DrmFd::open("/scheme/drm/renderD128")?;
    let version = render.version()?;
    let capsets = render.getparam(vg::PARAM_SUPPORTED_CAPSET_IDS)?;
    println!(
        "pci-guest: {} 3D_FEATURES={} capsets={capsets:#b}",
        version.name,
        render.getparam(vg::PARAM_3D_FEATURES)?
    );
    let caps = render.get_caps(2, 2, 1376)?;
    let glsl = u32::from_le_bytes(caps[264..268].try_into()?);
    println!(
        "pci-guest: capset 2: {} bytes, GLSL level {glsl}",
        caps.len()
    );

    // The clear-and-read-back flow: EXECBUFFER with an out-fence, then
    // TRANSFER_FROM_HOST, WAIT and MAP.
    let (bo, res) = render.resource_create(drmd::client::render_target(CHECK, CHECK))?;
    let stream = virgl_stream::clear_stream(res, virgl_stream::format::R8G8B8A8_UNORM, TEAL);
    let fence = render
        .execbuffer(&stream, &[bo], None, true)?
        .ok_or("no out-fence")?;
    if !fence.wait(Duration::from_secs(30))? {
        return Err("the clear's out-fence never signalled".into());
    }
    render.transfer(bo, Box3d::whole(CHECK, CHECK), false)?;
    render.wait(bo, false)?;
    let mut pixels = vec![0u8; (CHECK * CHECK * 4) as usize];
    render.map(bo, pixels.len())?.read_bytes(0, &mut pixels);
    let wrong = pixels
        .chunks_exact(4)
        .filter(|p| {
            p.iter()
                .zip([0u8, 128, 128, 255])
                .any(|(&a, b)| a.abs_diff(b) > 1)
        })
        .count();
    if wrong > 0 {
        return Err(format!(
            "read back: {wrong} of {} pixels are not teal",
            CHECK * CHECK
        )
        .into());
    }
    println!("pci-guest: clear read back: {} pixels teal", CHECK * CHECK);
    render.gem_close(bo)?;

    // 3D scan-out: a frame of the mode's size rendered by virgl (a clear,
    // then a smaller cleared resource copied into it at an offset, so
    // that orientation and position show), set on the CRTC.
    let card = DrmFd::open("/scheme/drm/card0")?;
    let kms = card.resources()?;
    let (&crtc, &connector) = (
        kms.crtcs.first().ok_or("no CRTC")?,
        kms.connectors.first().ok_or("no connector")?,
    );
    let (_, modes) = card.connector(connector, 32)?;
    let mode = *modes.first().ok_or("the connector has no mode")?;
    let frame = Frame::new(u32::from(mode.hdisplay), u32::from(mode.vdisplay));
    println!(
        "pci-guest: connector {connector}: {} modes, preferred {}x{}@{}",
        modes.len(),
        frame.width,
        frame.height,
        mode.vrefresh
    );
    let scanout = |w: u32, h: u32| {
        drmd::client::texture_2d(
            w,
            h,
            virgl_stream::format::B8G8R8X8_UNORM,
            virgl_stream::bind::RENDER_TARGET
                | virgl_stream::bind::SAMPLER_VIEW
                | virgl_stream::bind::SCANOUT,
        )
    };
    let (screen_bo, screen) = card.resource_create(scanout(frame.width, frame.height))?;
    let inset = frame.inset();
    let (inset_bo, inset_res) = card.resource_create(scanout(inset.w, inset.h))?;
    let bgrx = virgl_stream::format::B8G8R8X8_UNORM;
    let mut s = virgl_stream::Stream::new();
    s.create_sub_ctx(1)
        .set_sub_ctx(1)
        .create_surface(1, screen, bgrx, 0)
        .set_framebuffer_state(0, &[1])
        .clear(virgl_stream::clear::COLOR0, rgba(BACKGROUND), 0.0, 0)
        .create_surface(2, inset_res, bgrx, 0)
        .set_framebuffer_state(0, &[2])
        .clear(virgl_stream::clear::COLOR0, rgba(INSET), 0.0, 0)
        .resource_copy_region(
            screen,
            0,
            [inset.x, inset.y, 0],
            inset_res,
            0,
            [0, 0, 0, inset.w, inset.h, 1],
        )
        .destroy_object(1)
        .destroy_object(2);
    let fence = card
        .execbuffer(&s.to_bytes(), &[screen_bo, inset_bo], None, true)?
        .ok_or("no out-fence")?;
    if !fence.wait(Duration::from_secs(30))? {
        return Err("the frame's out-fence never signalled".into());
    }
    let fb = card.add_fb2(
        screen_bo,
        frame.width,
        frame.height,
        frame.width * 4,
        k::FORMAT_XRGB8888,
    )?;
    card.set_crtc(crtc, fb, &[connector], Some(mode))?;
    // What the device did, interrupts among it (MSI-X on this device).
    let stats = stack_tests::scheme_text("/scheme/virtio-gpu/stats");
    for line in stats.lines().filter(|l| l.contains("interrupts")) {
        println!("pci-guest: stats: {line}");
    }
    // Hotplug: the host resizes its display next; the device signals a
    // configuration change and the connector follows.
    let listener = DrmFd::open("/scheme/drm/card0")?;
    listener.set_client_cap(k::REDOX_CLIENT_CAP_HOTPLUG_EVENTS, 1)?;
    println!("pci-guest: scanout {} {}", frame.width, frame.height);
    let mut event = [0u8; 64];
    let n = listener.read_events(&mut event)?;
    let kind = event
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("four bytes")));
    if kind != Some(k::event::REDOX_CONNECTOR_HOTPLUG) {
        return Err(format!("expected a hotplug event, read {:x?}", &event[..n]).into());
    }
    let (_, modes) = card.connector(connector, 32)?;
    let preferred = modes.first().ok_or("no mode after the hotplug")?;
    println!(
        "pci-guest: hotplug: preferred {}x{}",
        preferred.hdisplay, preferred.vdisplay
    );
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// A colour as CLEAR takes it.
fn rgba([r, g, b]: [u8; 3]) -> [f32; 4] {
    let unit = |c: u8| f32::from(c) / 255.0;
    [unit(r), unit(g), unit(b), 1.0]
}
