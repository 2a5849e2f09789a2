//! The KMS part of the main job: on the 2D display device (`virtio-gpud
//! --2d`, which `cargo xtask demo` starts), sets the connector's preferred
//! mode on a dumb-buffer framebuffer with a picture drawn into it, damages
//! a part of it again with DIRTYFB, sets a cursor with its hotspot and
//! moves it, then writes what the display shows — the frame with the
//! cursor over it — as a PNG.
//!
//! Usage: `kms [OUTPUT.png]` (default `out/display.png`); reading the
//! display (`scheme:virtio-gpu/display/*`) takes root.

use std::error::Error;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use drm_uapi::core as dc;
use drm_uapi::kms::{self as k, ClipRect, Cursor2};
use drmd::client::DrmFd;
use scheme_seam::SchemeFd;

/// The pixel (XRGB8888) of the picture at (x, y) of a w×h frame: a
/// gradient with a band of eight colours.
fn picture(x: u32, y: u32, w: u32, h: u32) -> u32 {
    let (r, g, b) = (x * 255 / w, y * 255 / h, 160);
    let band = (h * 2 / 5..h * 3 / 5).contains(&y);
    if band {
        const BARS: [u32; 8] = [
            0xc0c0c0, 0xc0c000, 0x00c0c0, 0x00c000, 0xc000c0, 0xc00000, 0x0000c0, 0x101010,
        ];
        return BARS[(x * 8 / w) as usize];
    }
    r << 16 | g << 8 | b
}

/// An arrow cursor (ARGB8888, 64x64), its hotspot at its tip (2, 2).
fn arrow(x: u32, y: u32) -> u32 {
    let (x, y) = (x as i32 - 2, y as i32 - 2);
    let inside = x >= 0 && y >= 0 && x <= y && y < 40 && x < 28;
    let edge = inside && (x == 0 || x == y || y == 39 || x == 27);
    match (inside, edge) {
        (true, true) => 0xff00_0000,
        (true, false) => 0xffff_ffff,
        _ => 0,
    }
}

/// What a `display/...` file of virtio-gpud holds.
struct Shown {
    width: u32,
    height: u32,
    header: String,
    /// RGBA.
    pixels: Vec<u8>,
}

/// `display/what` of virtio-gpud, in one read.
fn display(what: &str) -> Result<Shown, Box<dyn Error>> {
    let fd = SchemeFd::open(&format!("/scheme/virtio-gpu/display/{what}"), 0)?;
    let mut buf = vec![0u8; 64 << 20];
    let n = fd.read(&mut buf)?;
    buf.truncate(n);
    let end = buf
        .windows(7)
        .position(|w| w == b"ENDHDR\n")
        .ok_or("not a PAM image")?
        + 7;
    let header = String::from_utf8_lossy(&buf[..end]).into_owned();
    let field = |name: &str| -> u32 {
        header
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(Shown {
        width: field("WIDTH "),
        height: field("HEIGHT "),
        pixels: buf[end..].to_vec(),
        header,
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let out = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("out/display.png"), PathBuf::from);
    let drm = DrmFd::open("/scheme/drm/card0")?;
    let res = drm.resources()?;
    let (&crtc, &connector) = (
        res.crtcs.first().ok_or("no CRTC")?,
        res.connectors.first().ok_or("no connector")?,
    );
    let (conn, modes) = drm.connector(connector, 32)?;
    let mode = *modes.first().ok_or("the connector has no mode")?;
    let (w, h) = (u32::from(mode.hdisplay), u32::from(mode.vdisplay));
    println!(
        "card0: connector {connector} ({}), {} modes, preferred {w}x{h}@{}",
        if conn.connection == 1 {
            "connected"
        } else {
            "disconnected"
        },
        modes.len(),
        mode.vrefresh
    );
    let dumb = drm.create_dumb(w, h)?;
    let map = drm.map_dumb(dumb.handle, dumb.size as usize)?;
    let row = |y: u32| -> Vec<u8> {
        (0..w)
            .flat_map(|x| picture(x, y, w, h).to_le_bytes())
            .collect()
    };
    for y in 0..h {
        map.write_bytes((y * dumb.pitch) as usize, &row(y));
    }
    let fb = drm.add_fb2(dumb.handle, w, h, dumb.pitch, k::FORMAT_XRGB8888)?;
    drm.set_crtc(crtc, fb, &[connector], Some(mode))?;
    // A white box drawn afterwards and flushed alone.
    let (bx, by) = (w / 8, h / 8);
    for y in by..by + 48 {
        map.write_bytes((y * dumb.pitch + bx * 4) as usize, &[0xff; 96 * 4]);
    }
    let clip = ClipRect {
        x1: bx as u16,
        y1: by as u16,
        x2: (bx + 96) as u16,
        y2: (by + 48) as u16,
    };
    drm.dirty_fb(fb, &[clip])?;
    // The cursor: an arrow, moved to the middle of the screen.
    assert_eq!(drm.get_cap(dc::DRM_CAP_CURSOR_WIDTH)?, 64);
    let image = drm.create_dumb(64, 64)?;
    let pixels: Vec<u8> = (0..64 * 64)
        .flat_map(|i| arrow(i % 64, i / 64).to_le_bytes())
        .collect();
    drm.map_dumb(image.handle, image.size as usize)?
        .write_bytes(0, &pixels);
    let cursor = Cursor2 {
        flags: k::CURSOR_BO | k::CURSOR_MOVE,
        crtc_id: crtc,
        x: 100,
        y: 100,
        width: 64,
        height: 64,
        handle: image.handle,
        hot_x: 2,
        hot_y: 2,
    };
    drm.cursor2(cursor)?;
    drm.cursor2(Cursor2 {
        flags: k::CURSOR_MOVE,
        x: (w / 2) as i32,
        y: (h / 2) as i32,
        ..cursor
    })?;

    // What the display shows, once it has the box and the moved cursor.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (frame, cursor) = loop {
        let frame = display("0")?;
        let cursor = display("cursor")?;
        let at = ((by * frame.width + bx) * 4) as usize;
        let boxed = frame.pixels.get(at..at + 3) == Some(&[0xff, 0xff, 0xff][..]);
        let moved = cursor.header.contains(&format!("# x {}\n", w / 2));
        if boxed && moved {
            break (frame, cursor);
        }
        if Instant::now() > deadline {
            return Err("the display did not show the frame and cursor".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (fw, fh, mut pixels) = (frame.width, frame.height, frame.pixels);
    let (cw, ch) = (cursor.width, cursor.height);
    // The cursor over the frame, its image's top-left at its position (the
    // display reports the position as the device received it).
    let field = |name: &str| -> i64 {
        cursor
            .header
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let (px, py) = (field("# x "), field("# y "));
    for cy in 0..ch as i64 {
        for cx in 0..cw as i64 {
            let (x, y) = (px + cx, py + cy);
            if x < 0 || y < 0 || x >= i64::from(fw) || y >= i64::from(fh) {
                continue;
            }
            let src = &cursor.pixels[((cy * i64::from(cw) + cx) * 4) as usize..][..4];
            let dst = &mut pixels[((y * i64::from(fw) + x) * 4) as usize..][..4];
            let a = u32::from(src[3]);
            for c in 0..3 {
                dst[c] = ((u32::from(src[c]) * a + u32::from(dst[c]) * (255 - a)) / 255) as u8;
            }
            dst[3] = 255;
        }
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut png = png::Encoder::new(BufWriter::new(File::create(&out)?), fw, fh);
    png.set_color(png::ColorType::Rgba);
    png.set_depth(png::BitDepth::Eight);
    png.write_header()?.write_image_data(&pixels)?;
    println!(
        "display: {fw}x{fh} frame with a {cw}x{ch} cursor at ({px}, {py}) -> {}",
        out.display()
    );
    Ok(())
}
