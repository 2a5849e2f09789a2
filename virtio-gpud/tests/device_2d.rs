//! The 2D and cursor commands against the real device, checked on the
//! display it drives: what SET_SCANOUT, TRANSFER_TO_HOST_2D and
//! RESOURCE_FLUSH put on the screen, and what the cursor queue shows.
//!
//! These run on the backend without virgl: QEMU 7.2's virgl scanout path
//! needs dma-bufs from a real GPU, which these machines do not have.

mod common;

use std::time::{Duration, Instant};

use common::start_2d;
use virtio_gpu_proto::{
    CommandType, CursorPos, Format, GetDisplayInfo, MemEntry, MoveCursor, Rect,
    ResourceAttachBacking, ResourceDetachBacking, ResourceFlush, ResponseType, ScanoutId,
    SetScanout, TransferToHost2d, UpdateCursor,
};
use virtio_gpud::resource::PAGE_SIZE;
use virtio_gpud::transport::vhost_user::display::{DisplayState, CURSOR_SIZE};
use virtio_gpud::transport::vhost_user::VhostUserTransport;
use virtio_gpud::{DeviceError, Error, Gpu};
use zerocopy::IntoBytes;

/// Waits until the display thread has shown what `done` looks for.
fn wait_display(gpu: &Gpu<VhostUserTransport>, done: impl Fn(&DisplayState) -> bool) {
    let display = gpu.transport().display().expect("a display is served");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(&display.lock()) {
        assert!(Instant::now() < deadline, "display never showed it");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn display_info_reports_the_served_mode() {
    let mut dev = start_2d();
    let info = dev.gpu.call(&GetDisplayInfo::new(), &[], None).unwrap();
    let mode = info.pmodes[0];
    assert_eq!(mode.enabled.get(), 1);
    assert_eq!((mode.r.width.get(), mode.r.height.get()), (1024, 768));
    assert!(info.pmodes[1..].iter().all(|m| m.enabled.get() == 0));
}

#[test]
fn scanout_shows_transferred_and_flushed_pixels() {
    let mut dev = start_2d();
    let gpu = &mut dev.gpu;
    let (w, h) = (320u32, 200u32);
    let res = gpu
        .create_resource_2d(Format::B8G8R8X8_UNORM, w, h)
        .unwrap();
    let image: Vec<u32> = (0..w * h)
        .map(|i| 0xFF00_0000 | (i % w) << 16 | (i / w) << 8 | (i % 251))
        .collect();
    let bytes: Vec<u8> = image.iter().flat_map(|p| p.to_le_bytes()).collect();
    res.backing.write_bytes(0, &bytes);

    let full = Rect::new(0, 0, w, h);
    let scanout = ScanoutId::new(0);
    gpu.call(&TransferToHost2d::new(res.id, full, 0), &[], None)
        .unwrap();
    gpu.call(&SetScanout::new(scanout, Some(res.id), full), &[], None)
        .unwrap();
    gpu.call(&ResourceFlush::new(res.id, full), &[], None)
        .unwrap();
    wait_display(gpu, |d| d.updates > 0 && d.scanouts[0].width == w);
    {
        let display = gpu.transport().display().unwrap().lock();
        let shown = &display.scanouts[0];
        assert_eq!((shown.width, shown.height), (w, h));
        // The X byte is not preserved by the host's copy; compare colours.
        for (i, (a, b)) in shown.pixels.iter().zip(&image).enumerate() {
            assert_eq!(a & 0xFF_FFFF, b & 0xFF_FFFF, "pixel {i}");
        }
    }

    // A partial update: only the damaged rectangle changes.
    let damage = Rect::new(10, 20, 30, 40);
    let white = vec![0xFFu8; (w * h * 4) as usize];
    res.backing.write_bytes(0, &white);
    let offset = u64::from(20 * w * 4 + 10 * 4);
    gpu.call(&TransferToHost2d::new(res.id, damage, offset), &[], None)
        .unwrap();
    let before = gpu.transport().display().unwrap().lock().updates;
    gpu.call(&ResourceFlush::new(res.id, damage), &[], None)
        .unwrap();
    wait_display(gpu, |d| d.updates > before);
    let display = gpu.transport().display().unwrap().lock();
    let px = |x: u32, y: u32| display.scanouts[0].pixels[(y * w + x) as usize] & 0xFF_FFFF;
    assert_eq!(px(10, 20), 0xFF_FFFF);
    assert_eq!(px(39, 59), 0xFF_FFFF);
    assert_eq!(px(9, 20), image[(20 * w + 9) as usize] & 0xFF_FFFF);
    assert_eq!(px(40, 59), image[(59 * w + 40) as usize] & 0xFF_FFFF);
}

#[test]
fn cursor_image_and_moves_reach_the_display() {
    let mut dev = start_2d();
    let gpu = &mut dev.gpu;
    let size = CURSOR_SIZE as u32;
    let cursor = gpu
        .create_resource_2d(Format::B8G8R8A8_UNORM, size, size)
        .unwrap();
    let image: Vec<u32> = (0..size * size).map(|i| 0x8000_0000 | i).collect();
    let bytes: Vec<u8> = image.iter().flat_map(|p| p.to_le_bytes()).collect();
    cursor.backing.write_bytes(0, &bytes);
    gpu.call(
        &TransferToHost2d::new(cursor.id, Rect::new(0, 0, size, size), 0),
        &[],
        None,
    )
    .unwrap();

    let scanout = ScanoutId::new(0);
    let update = UpdateCursor::new(CursorPos::new(scanout, 100, 50), Some(cursor.id), 3, 4);
    gpu.call(&update, &[], None).unwrap();
    wait_display(gpu, |d| !d.cursor.image.is_empty());
    {
        let display = gpu.transport().display().unwrap().lock();
        let c = &display.cursor;
        assert!(c.visible);
        assert_eq!((c.x, c.y, c.hot_x, c.hot_y), (100, 50, 3, 4));
        assert_eq!(c.image, image);
    }

    let moved = MoveCursor::new(CursorPos::new(scanout, 300, 200), Some(cursor.id));
    gpu.call(&moved, &[], None).unwrap();
    wait_display(gpu, |d| d.cursor.x == 300);
    {
        let display = gpu.transport().display().unwrap().lock();
        assert!(display.cursor.visible);
        assert_eq!(display.cursor.y, 200);
    }

    // A move without a resource hides the cursor on this backend.
    let hide = MoveCursor::new(CursorPos::new(scanout, 300, 200), None);
    gpu.call(&hide, &[], None).unwrap();
    wait_display(gpu, |d| !d.cursor.visible);

    // Linux hides by updating to resource 0; this backend then shows a
    // fully transparent image, which is hidden all the same.
    let blank = UpdateCursor::new(CursorPos::new(scanout, 0, 0), None, 0, 0);
    gpu.call(&blank, &[], None).unwrap();
    wait_display(gpu, |d| {
        d.cursor.x == 0 && d.cursor.image.iter().all(|p| p >> 24 == 0)
    });
    assert_eq!(gpu.stats().cursor.completed, 4);
}

#[test]
fn detached_backing_is_gone_and_new_backing_is_shown() {
    let mut dev = start_2d();
    let gpu = &mut dev.gpu;
    let (w, h) = (64u32, 32u32);
    let res = gpu
        .create_resource_2d(Format::B8G8R8X8_UNORM, w, h)
        .unwrap();
    let full = Rect::new(0, 0, w, h);
    gpu.call(&ResourceDetachBacking::new(res.id), &[], None)
        .unwrap();
    // Without backing there is nothing to transfer from.
    match gpu.call(&TransferToHost2d::new(res.id, full, 0), &[], None) {
        Err(Error::Device(DeviceError::Response { command, response })) => {
            assert_eq!(command, CommandType::TRANSFER_TO_HOST_2D);
            assert_eq!(response, ResponseType::ERR_INVALID_RESOURCE_ID);
        }
        other => panic!("transfer without backing: {other:?}"),
    }

    let fresh = gpu.pool().alloc((w * h * 4) as usize, PAGE_SIZE).unwrap();
    let green: Vec<u8> = [0x00, 0xFF, 0x00, 0xFF].repeat((w * h) as usize);
    fresh.write_bytes(0, &green);
    let entry = MemEntry::new(fresh.device_addr(), fresh.len() as u32);
    gpu.call(
        &ResourceAttachBacking::new(res.id, 1),
        entry.as_bytes(),
        None,
    )
    .unwrap();
    gpu.call(&TransferToHost2d::new(res.id, full, 0), &[], None)
        .unwrap();
    gpu.call(
        &SetScanout::new(ScanoutId::new(0), Some(res.id), full),
        &[],
        None,
    )
    .unwrap();
    gpu.call(&ResourceFlush::new(res.id, full), &[], None)
        .unwrap();
    wait_display(gpu, |d| d.updates > 0 && d.scanouts[0].width == w);
    let display = gpu.transport().display().unwrap().lock();
    assert!(display.scanouts[0]
        .pixels
        .iter()
        .all(|p| p & 0xFF_FFFF == 0x00_FF00));
}
