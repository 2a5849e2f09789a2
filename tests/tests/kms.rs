//! KMS on scheme:drm with the 2D display device (`virtio-gpud --2d`), judged
//! by what its display shows (`display/0`, `display/cursor`): Debian's
//! modetest through the shim (a mode and its pattern, vsynced flips, a
//! cursor), a client flipping two buffers, DIRTYFB's one rectangle in the
//! trace, Orbital's call sequence, and bad input answered as Linux does.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use drm_uapi::core as dc;
use drm_uapi::kms::{self as k, ClipRect, Cursor2, EventVblank, ModeInfo};
use drmd::client::DrmFd;
use scheme_seam::SchemeFd;
use stack_tests::display::{shown, Pam};
use stack_tests::{poll_readable, shim_command, stack_2d, stack_with, Stack};
use virtio_gpu_proto::CommandType;
use virtio_gpud::trace::record::{self, Kind};
use zerocopy::FromBytes;

/// The daemons serve fixed names in the bus directory: tests take turns.
static DAEMONS: Mutex<()> = Mutex::new(());

const CARD: &str = "/scheme/drm/card0";
/// The one output's objects (drmd's fixed ids for scanout 0).
const CRTC: u32 = 0x40;
const CONNECTOR: u32 = 0x42;

fn errno(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

/// libdrm's SMPTE test pattern of modetest, from the SMPTE RP 219 bars it
/// draws (`tests/util/pattern.c`): RGB of pixel (x, y) of a w×h frame.
fn smpte(x: u32, y: u32, w: u32, h: u32) -> [u8; 3] {
    const TOP: [[u8; 3]; 7] = [
        [192, 192, 192],
        [192, 192, 0],
        [0, 192, 192],
        [0, 192, 0],
        [192, 0, 192],
        [192, 0, 0],
        [0, 0, 192],
    ];
    const MIDDLE: [[u8; 3]; 7] = [
        [0, 0, 192],
        [19, 19, 19],
        [192, 0, 192],
        [19, 19, 19],
        [0, 192, 192],
        [19, 19, 19],
        [192, 192, 192],
    ];
    const BOTTOM: [[u8; 3]; 8] = [
        [0, 33, 76],
        [255, 255, 255],
        [50, 0, 106],
        [19, 19, 19],
        [9, 9, 9],
        [19, 19, 19],
        [29, 29, 29],
        [19, 19, 19],
    ];
    if y < h * 6 / 9 {
        TOP[(x * 7 / w) as usize]
    } else if y < h * 7 / 9 {
        MIDDLE[(x * 7 / w) as usize]
    } else if x < w * 5 / 7 {
        BOTTOM[(x * 4 / (w * 5 / 7)) as usize]
    } else if x < w * 6 / 7 {
        BOTTOM[((x - w * 5 / 7) * 3 / (w / 7) + 4) as usize]
    } else {
        BOTTOM[7]
    }
}

/// The pixels of `pam` that differ from `expected`, in RGB.
fn differing(pam: &Pam, expected: impl Fn(u32, u32) -> [u8; 3]) -> usize {
    let (w, _) = pam.size();
    pam.pixels
        .chunks_exact(4)
        .enumerate()
        .filter(|(i, px)| {
            let (x, y) = ((*i as u64 % w) as u32, (*i as u64 / w) as u32);
            px[..3] != expected(x, y)
        })
        .count()
}

/// modetest on card0 with `args`, its stdin held open (it waits for a key
/// before it tears down) and its output piped.
fn modetest(args: &[&str]) -> Child {
    shim_command("modetest")
        .args(["-M", "virtio_gpu", "-D", "/dev/dri/card0"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running modetest (libdrm-tests)")
}

/// Ends a modetest waiting for its key; its exit status and what it
/// printed.
fn finish(mut child: Child) -> (std::process::ExitStatus, String) {
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"\n");
    }
    let out = child.wait_with_output().expect("modetest ends");
    let printed = [out.stdout, out.stderr].concat();
    (out.status, String::from_utf8_lossy(&printed).into_owned())
}

#[test]
fn modetest_sets_a_mode_and_the_display_shows_its_pattern_pixel_for_pixel() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack_2d();
    let child = modetest(&["-s", "66@64:1024x768"]);
    let frame = shown("0", |p| {
        p.field("# updates ") > 0 && differing(p, |x, y| smpte(x, y, 1024, 768)) == 0
    });
    assert_eq!(frame.size(), (1024, 768));
    let (status, stderr) = finish(child);
    assert!(status.success(), "modetest: {status}: {stderr}");
}

#[test]
fn modetest_flips_with_vsync_events() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack_2d();
    let mut child = modetest(&["-s", "66@64:1024x768", "-v"]);
    // modetest prints its flip rate, measured from the events' timestamps,
    // every 60 flips, on stderr.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let freq = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("freq:"))
        .expect("modetest reports a flip rate");
    println!("modetest -v: {freq}");
    let (status, stderr) = finish(child);
    assert!(status.success(), "modetest: {status}: {stderr}");
}

#[test]
fn modetest_moves_a_cursor() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack_2d();
    let child = modetest(&["-s", "66@64:1024x768", "-C"]);
    let first = shown("cursor", |p| p.header.contains("# visible 1"));
    let x0 = first.field("# x ");
    let moved = shown("cursor", |p| p.field("# x ") != x0);
    assert_eq!(moved.size(), (64, 64));
    let (status, stderr) = finish(child);
    assert!(status.success(), "modetest: {status}: {stderr}");
}

#[test]
fn kmscube_flips_every_frame_on_kms_swrast() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack_2d();
    // kmscube's legacy path: GBM buffers (dumb buffers, on Mesa's software
    // KMS driver: the 2D device has no 3D), ADDFB2, SETCRTC once, then a
    // PAGE_FLIP with an event per frame, waiting for each in select().
    let mut child = shim_command("kmscube")
        .args(["-D", "/dev/dri/card0", "-c", "200"])
        .env("MESA_LOADER_DRIVER_OVERRIDE", "kms_swrast")
        .env("DRM_SHIM_DEBUG", "1")
        // kmscube stops on input: its stdin stays open and silent.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running kmscube");
    // The cube is on the display while it runs.
    shown("0", |p| differing(p, |_, _| [0, 0, 0]) > 10_000);
    let stdin = child.stdin.take();
    let out = child.wait_with_output().expect("kmscube ends");
    drop(stdin);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kmscube: {}: {stdout}", out.status);
    let flip = |result: &str| {
        stderr
            .lines()
            .filter(|l| l.contains(", 0xc01864b0)") && l.ends_with(result))
            .count()
    };
    let (flips, busy) = (flip("Ok(0)"), flip("Err(16)"));
    let rendered = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("Rendered"))
        .expect("kmscube's frame count");
    println!("kmscube: {rendered}; {flips} flips, {busy} EBUSY");
    assert_eq!(busy, 0, "no EBUSY: every frame waits for its flip");
    assert!(flips >= 199, "every frame flipped: {flips}");
}

#[test]
fn glmark2_runs_its_scenes_on_kms_swrast() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack_2d();
    // glmark2 finds its card through udev unless told: the shim's nodes
    // are not udev's.
    let out = shim_command("glmark2-es2-drm")
        .args(["--winsys-options", "drm-device=/dev/dri/card0"])
        .args(["-b", "build:duration=2", "-b", "texture:duration=2"])
        .env("MESA_LOADER_DRIVER_OVERRIDE", "kms_swrast")
        .stdin(Stdio::piped())
        .output()
        .expect("running glmark2-es2-drm");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "glmark2: {}: {stdout}", out.status);
    let scenes: Vec<&str> = stdout.lines().filter(|l| l.contains("FPS:")).collect();
    assert_eq!(scenes.len(), 2, "{stdout}");
    println!("glmark2-es2-drm: {}", scenes.join("; "));
}

/// A master's file on card0 with the one output's preferred mode.
struct Output {
    fd: DrmFd,
    mode: ModeInfo,
}

fn output() -> Output {
    let fd = DrmFd::open(CARD).expect("opening card0 (tests run as root)");
    let res = fd.resources().unwrap();
    assert_eq!(
        (res.crtcs.as_slice(), res.connectors.as_slice()),
        (&[CRTC][..], &[CONNECTOR][..])
    );
    let (conn, modes) = fd.connector(CONNECTOR, 16).unwrap();
    assert_eq!(conn.connection, 1, "connected");
    Output { fd, mode: modes[0] }
}

/// A dumb buffer of the mode's size filled with `argb`, as a framebuffer:
/// (framebuffer, GEM handle).
fn filled_fb(fd: &DrmFd, w: u32, h: u32, argb: u32) -> (u32, u32) {
    let d = fd.create_dumb(w, h).unwrap();
    let map = fd.map_dumb(d.handle, d.size as usize).unwrap();
    let row: Vec<u8> = std::iter::repeat_n(argb.to_le_bytes(), w as usize)
        .flatten()
        .collect();
    for y in 0..h as usize {
        map.write_bytes(y * d.pitch as usize, &row);
    }
    let fb = fd
        .add_fb2(d.handle, w, h, d.pitch, k::FORMAT_XRGB8888)
        .unwrap();
    (fb, d.handle)
}

fn rgb(argb: u32) -> [u8; 3] {
    [(argb >> 16) as u8, (argb >> 8) as u8, argb as u8]
}

/// The events in `buf[..n]`.
fn vblank_events(buf: &[u8]) -> Vec<EventVblank> {
    buf.chunks_exact(size_of::<EventVblank>())
        .map(|c| EventVblank::read_from_bytes(c).unwrap())
        .collect()
}

#[test]
fn a_hundred_and_twenty_flips_give_one_event_each_on_the_vblank_grid() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack_2d();
    let out = output();
    let (w, h) = (u32::from(out.mode.hdisplay), u32::from(out.mode.vdisplay));
    const RED: u32 = 0x00c0_0000;
    const BLUE: u32 = 0x0000_00c0;
    let fbs = [
        filled_fb(&out.fd, w, h, RED).0,
        filled_fb(&out.fd, w, h, BLUE).0,
    ];
    out.fd
        .set_crtc(CRTC, fbs[0], &[CONNECTOR], Some(out.mode))
        .unwrap();
    assert_eq!(
        errno(out.fd.page_flip(CRTC, fbs[1], 0x80, 0)),
        Some(libc::EINVAL),
        "unknown flag"
    );
    let mut events = Vec::new();
    let mut asked = Vec::new();
    let mut buf = [0u8; 4096];
    for i in 0..120u64 {
        let fb = fbs[(i as usize + 1) % 2];
        asked.push(sync_client::clock::now_ns());
        out.fd.page_flip(CRTC, fb, k::flip::EVENT, i).unwrap();
        if i == 0 {
            // One flip at a time: EBUSY while this one is pending.
            assert_eq!(
                errno(out.fd.page_flip(CRTC, fbs[0], k::flip::EVENT, 99)),
                Some(libc::EBUSY)
            );
        }
        // Blocking read: exactly this flip's event.
        let n = out.fd.read_events(&mut buf).unwrap();
        let got = vblank_events(&buf[..n]);
        assert_eq!(got.len(), 1, "one event per flip");
        assert_eq!(
            (got[0].base.type_, got[0].user_data, got[0].crtc_id),
            (k::event::FLIP_COMPLETE, i, CRTC)
        );
        events.push(got[0]);
        if i == 60 {
            // The frame shown alternates with the flips.
            let colour = rgb(if fb == fbs[0] { RED } else { BLUE });
            shown("0", |p| differing(p, |_, _| colour) == 0);
        }
    }
    let ns = |e: &EventVblank| u64::from(e.tv_sec) * 1_000_000_000 + u64::from(e.tv_usec) * 1000;
    for (e, asked) in events.iter().zip(&asked) {
        // None early: the vblank a flip completes at comes after the flip
        // was asked for (the timestamp is cut to microseconds).
        assert!(
            ns(e) + 1000 > *asked,
            "event {} before its flip",
            e.user_data
        );
    }
    // Reported, not asserted: how the events sit on the mode's grid.
    let period = ModeInfoExt(out.mode).frame_ns();
    let mut frames = Vec::new();
    let mut off_grid = 0u64;
    for pair in events.windows(2) {
        let n = u64::from(pair[1].sequence.wrapping_sub(pair[0].sequence));
        frames.push(n);
        off_grid = off_grid.max((ns(&pair[1]) - ns(&pair[0])).abs_diff(n * period));
    }
    frames.sort_unstable();
    let span = ns(events.last().unwrap()) - ns(&events[0]);
    println!(
        "120 flips in {:.1} ms: vblanks between events min {} median {} max {}; \
         largest distance from the {period} ns grid {off_grid} ns",
        span as f64 / 1e6,
        frames[0],
        frames[frames.len() / 2],
        frames[frames.len() - 1]
    );
}

/// The frame time of a mode, as drmd paces it.
struct ModeInfoExt(ModeInfo);

impl ModeInfoExt {
    fn frame_ns(&self) -> u64 {
        u64::from(self.0.htotal) * u64::from(self.0.vtotal) * 1_000_000 / u64::from(self.0.clock)
    }
}

#[test]
fn dirtyfb_of_a_small_rectangle_transfers_only_that_rectangle() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack_2d();
    let out = output();
    let (w, h) = (u32::from(out.mode.hdisplay), u32::from(out.mode.vdisplay));
    let d = out.fd.create_dumb(w, h).unwrap();
    let map = out.fd.map_dumb(d.handle, d.size as usize).unwrap();
    let fb = out
        .fd
        .add_fb2(d.handle, w, h, d.pitch, k::FORMAT_XRGB8888)
        .unwrap();
    out.fd
        .set_crtc(CRTC, fb, &[CONNECTOR], Some(out.mode))
        .unwrap();
    shown("0", |p| {
        p.field("# updates ") > 0 && differing(p, |_, _| [0, 0, 0]) == 0
    });
    let trace = SchemeFd::open("/scheme/virtio-gpu/trace", libc::O_NONBLOCK as usize).unwrap();
    // A 10x5 white box at (100, 200), damaged as two clips that merge.
    for y in 200..205 {
        map.write_bytes(y * d.pitch as usize + 400, &[0xff; 40]);
    }
    let clips = [
        ClipRect {
            x1: 100,
            y1: 200,
            x2: 105,
            y2: 205,
        },
        ClipRect {
            x1: 105,
            y1: 200,
            x2: 110,
            y2: 205,
        },
    ];
    out.fd.dirty_fb(fb, &clips).unwrap();
    let inside = |x, y| (100..110).contains(&x) && (200..205).contains(&y);
    shown("0", |p| {
        differing(p, |x, y| if inside(x, y) { [255; 3] } else { [0; 3] }) == 0
    });
    let mut stream = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(n) = trace.read(&mut buf) {
        if n == 0 {
            break;
        }
        stream.extend_from_slice(&buf[..n]);
    }
    let body = record::stream_body(&stream).unwrap();
    let mut at = 0;
    let mut transfers = Vec::new();
    while let Some(r) = record::next_record(body, &mut at).unwrap() {
        if r.header.kind == Kind::COMMAND.0 && r.header.ty == CommandType::TRANSFER_TO_HOST_2D.0 {
            let t = virtio_gpu_proto::TransferToHost2d::read_from_prefix(r.bytes)
                .unwrap()
                .0;
            transfers.push((t.r.x.get(), t.r.y.get(), t.r.width.get(), t.r.height.get()));
        }
    }
    assert_eq!(
        transfers,
        [(100, 200, 10, 5)],
        "one transfer of the merged rectangle"
    );
}

#[test]
fn orbitals_legacy_call_sequence_shows_its_frame_and_cursor() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack_2d();
    // Orbital (redox-os/orbital src/compositor/display.rs): the hotspot cap
    // first (it needs ATOMIC, so it fails and Orbital goes on), the cursor
    // size, the resources, the first connected connector and its first
    // mode, the encoder's CRTC, a dumb buffer as ADDFB(32, 32), SETCRTC,
    // damage by DIRTYFB, the cursor by CURSOR2 and moves.
    let fd = DrmFd::open(CARD).unwrap();
    assert!(fd
        .set_client_cap(dc::DRM_CLIENT_CAP_CURSOR_PLANE_HOTSPOT, 1)
        .is_err());
    assert_eq!(fd.get_cap(dc::DRM_CAP_DUMB_BUFFER).unwrap(), 1);
    assert_eq!(fd.get_cap(dc::DRM_CAP_CURSOR_WIDTH).unwrap(), 64);
    assert_eq!(fd.get_cap(dc::DRM_CAP_DUMB_PREFER_SHADOW).unwrap(), 0);
    let res = fd.resources().unwrap();
    let (conn, modes) = fd.connector(res.connectors[0], 16).unwrap();
    let mut enc = k::GetEncoder {
        encoder_id: res.encoders[0],
        ..Default::default()
    };
    fd.ioctl(k::GETENCODER, zerocopy::IntoBytes::as_mut_bytes(&mut enc))
        .unwrap();
    assert_eq!(enc.possible_crtcs, 1);
    let mode = modes[0];
    let (w, h) = (u32::from(mode.hdisplay), u32::from(mode.vdisplay));
    let d = fd.create_dumb(w, h).unwrap();
    let map = fd.map_dumb(d.handle, d.size as usize).unwrap();
    let mut f = k::FbCmd {
        width: w,
        height: h,
        pitch: d.pitch,
        bpp: 32,
        depth: 32,
        handle: d.handle,
        ..Default::default()
    };
    fd.ioctl(k::ADDFB, zerocopy::IntoBytes::as_mut_bytes(&mut f))
        .unwrap();
    fd.set_crtc(res.crtcs[0], f.fb_id, &[conn.connector_id], Some(mode))
        .unwrap();
    let green = 0xff00_c000u32.to_le_bytes();
    for y in 0..100 {
        for x in 0..100 {
            map.write_bytes(y * d.pitch as usize + x * 4, &green);
        }
    }
    fd.dirty_fb(
        f.fb_id,
        &[ClipRect {
            x1: 0,
            y1: 0,
            x2: 100,
            y2: 100,
        }],
    )
    .unwrap();
    shown("0", |p| {
        differing(p, |x, y| {
            if x < 100 && y < 100 {
                [0, 192, 0]
            } else {
                [0; 3]
            }
        }) == 0
    });
    let cursor = fd.create_dumb(64, 64).unwrap();
    let image = fd.map_dumb(cursor.handle, cursor.size as usize).unwrap();
    image.write_bytes(0, &vec![0xff; 64 * 64 * 4]);
    let c = Cursor2 {
        flags: k::CURSOR_BO | k::CURSOR_MOVE,
        crtc_id: res.crtcs[0],
        x: 10,
        y: 20,
        width: 64,
        height: 64,
        handle: cursor.handle,
        hot_x: 3,
        hot_y: 4,
    };
    fd.cursor2(c).unwrap();
    let shown_cursor = shown("cursor", |p| p.header.contains("# visible 1"));
    assert_eq!(
        (
            shown_cursor.field("# hot_x "),
            shown_cursor.field("# hot_y ")
        ),
        (3, 4)
    );
    fd.cursor2(Cursor2 {
        flags: k::CURSOR_MOVE,
        x: 300,
        ..c
    })
    .unwrap();
    shown("cursor", |p| p.field("# x ") == 300);
}

#[test]
fn bad_input_gets_linuxs_errno_and_only_the_master_modesets() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack: Stack = stack_2d();
    let out = output();
    let fd = &out.fd;
    let (w, h) = (u32::from(out.mode.hdisplay), u32::from(out.mode.vdisplay));
    // Unknown objects.
    assert_eq!(errno(fd.set_crtc(0x99, 0, &[], None)), Some(libc::ENOENT));
    assert_eq!(errno(fd.connector(CRTC, 0)), Some(libc::ENOENT));
    assert_eq!(errno(fd.page_flip(CRTC, 0x7777, 0, 0)), Some(libc::ENOENT));
    assert_eq!(errno(fd.dirty_fb(0x7777, &[])), Some(libc::ENOENT));
    // A flip with no mode set.
    let (fb, _) = filled_fb(fd, w, h, 0);
    assert_eq!(errno(fd.page_flip(CRTC, fb, 0, 0)), Some(libc::EINVAL));
    // Framebuffers that do not fit their buffer: pitch, size, format.
    let small = fd.create_dumb(64, 64).unwrap();
    for (bw, bh, pitch, format, want) in [
        (64, 64, 64 * 4 - 4, k::FORMAT_XRGB8888, libc::EINVAL),
        (64, 65, 64 * 4, k::FORMAT_XRGB8888, libc::EINVAL),
        (0, 64, 64 * 4, k::FORMAT_XRGB8888, libc::EINVAL),
        (64, 64, 64 * 4, 0x1234_5678, libc::EINVAL),
        (64, 64, 64 * 4, u32::from_le_bytes(*b"RG16"), libc::ENOENT),
        (64, 64, 128 * 4, k::FORMAT_XRGB8888, libc::EINVAL),
    ] {
        assert_eq!(
            errno(fd.add_fb2(small.handle, bw, bh, pitch, format)),
            Some(want),
            "{bw}x{bh} pitch {pitch} format {format:#x}"
        );
    }
    assert_eq!(
        errno(fd.add_fb2(0x5555, 64, 64, 256, k::FORMAT_XRGB8888)),
        Some(libc::ENOENT)
    );
    // A mode larger than the framebuffer.
    let small_fb = fd
        .add_fb2(small.handle, 64, 64, 256, k::FORMAT_XRGB8888)
        .unwrap();
    assert_eq!(
        errno(fd.set_crtc(CRTC, small_fb, &[CONNECTOR], Some(out.mode))),
        Some(libc::ENOSPC)
    );
    // The two-call protocol: short rooms get counts and nothing else.
    let ask = k::GetConnectorHeader {
        connector_id: CONNECTOR,
        count_modes: 1,
        ..Default::default()
    };
    let mut payload = drm_uapi::wire::Builder::new(&ask)
        .zeroed::<u32>(0)
        .zeroed::<ModeInfo>(1)
        .build();
    fd.ioctl(k::GETCONNECTOR, &mut payload).unwrap();
    let (header, rest) = k::GetConnectorHeader::read_from_prefix(&payload).unwrap();
    assert!(header.count_modes > 1);
    assert!(
        rest.iter().all(|&b| b == 0),
        "no mode copied into too small a room"
    );
    // An oversized count is not carried: ENOMEM, as Linux's allocation.
    let huge = k::GetConnectorHeader {
        connector_id: CONNECTOR,
        count_modes: u32::MAX,
        ..Default::default()
    };
    let mut payload = drm_uapi::wire::Builder::new(&huge).build();
    assert_eq!(
        errno(fd.ioctl(k::GETCONNECTOR, &mut payload)),
        Some(libc::ENOMEM)
    );
    let res = k::CardResHeader {
        count_crtcs: 5,
        ..Default::default()
    };
    let mut payload = drm_uapi::wire::Builder::new(&res).zeroed::<u32>(5).build();
    fd.ioctl(k::GETRESOURCES, &mut payload).unwrap();
    let (answer, ids) = k::CardResHeader::read_from_prefix(&payload).unwrap();
    assert_eq!(answer.count_crtcs, 1);
    assert_eq!(&ids[..8], &[CRTC.to_le_bytes(), [0; 4]].concat()[..]);

    // Dumb buffers of no size, past u32, or another depth.
    for (dw, dh, bpp) in [
        (0, 64, 32),
        (64, 0, 32),
        (64, 64, 0),
        (u32::MAX, 2, 32),
        (64, 64, 16),
    ] {
        let mut d = k::CreateDumb {
            width: dw,
            height: dh,
            bpp,
            ..Default::default()
        };
        assert_eq!(
            errno(fd.ioctl(k::CREATE_DUMB, zerocopy::IntoBytes::as_mut_bytes(&mut d))),
            Some(libc::EINVAL),
            "dumb {dw}x{dh}x{bpp}"
        );
    }
    // Another file's handle names nothing here; a removed framebuffer is gone.
    // (Handles are per file: the stranger's tenth is a number this file
    // has not handed out.)
    let stranger = DrmFd::open(CARD).unwrap();
    let theirs = (0..10)
        .map(|_| stranger.create_dumb(64, 64).unwrap())
        .last()
        .unwrap();
    assert_eq!(
        errno(fd.add_fb2(theirs.handle, 64, 64, 256, k::FORMAT_XRGB8888)),
        Some(libc::ENOENT)
    );
    let gone = fd
        .add_fb2(small.handle, 64, 64, 256, k::FORMAT_XRGB8888)
        .unwrap();
    let mut rm = k::Id { id: gone };
    fd.ioctl(k::RMFB, zerocopy::IntoBytes::as_mut_bytes(&mut rm))
        .unwrap();
    assert_eq!(errno(fd.dirty_fb(gone, &[])), Some(libc::ENOENT));
    assert_eq!(
        errno(fd.ioctl(k::RMFB, zerocopy::IntoBytes::as_mut_bytes(&mut rm))),
        Some(libc::ENOENT)
    );
    // Too many clips; a scanout origin past 16 bits; a cursor that is not
    // 64x64; async and targeted flips (not offered).
    let clips = vec![ClipRect::default(); 257];
    assert_eq!(errno(fd.dirty_fb(fb, &clips)), Some(libc::EINVAL));
    let far = k::CrtcHeader {
        crtc_id: CRTC,
        fb_id: fb,
        x: 1 << 16,
        mode_valid: 1,
        mode: out.mode,
        count_connectors: 1,
        ..Default::default()
    };
    let mut payload = drm_uapi::wire::Builder::new(&far)
        .array(&[CONNECTOR])
        .build();
    assert_eq!(
        errno(fd.ioctl(k::SETCRTC, &mut payload)),
        Some(libc::ERANGE)
    );
    let cursor = Cursor2 {
        flags: k::CURSOR_BO,
        crtc_id: CRTC,
        width: 64,
        height: 64,
        handle: handle_of_big(fd),
        ..Default::default()
    };
    assert_eq!(errno(fd.cursor2(cursor)), Some(libc::EINVAL));
    assert_eq!(
        errno(fd.cursor2(Cursor2 { flags: 4, ..cursor })),
        Some(libc::EINVAL)
    );
    fd.set_crtc(CRTC, fb, &[CONNECTOR], Some(out.mode)).unwrap();
    for flags in [
        k::flip::ASYNC,
        k::flip::TARGET_ABSOLUTE,
        k::flip::TARGET_RELATIVE,
    ] {
        assert_eq!(
            errno(fd.page_flip(CRTC, fb, flags, 0)),
            Some(libc::EINVAL),
            "{flags:#x}"
        );
    }

    // A second opener may not modeset until the master drops.
    let other = DrmFd::open(CARD).unwrap();
    fd.set_crtc(CRTC, fb, &[CONNECTOR], Some(out.mode)).unwrap();
    assert_eq!(
        errno(other.set_crtc(CRTC, fb, &[CONNECTOR], Some(out.mode))),
        Some(libc::EACCES)
    );
    assert_eq!(errno(other.page_flip(CRTC, fb, 0, 0)), Some(libc::EACCES));
    // Nor remove another file's framebuffer.
    let mut rm = k::Id { id: fb };
    assert_eq!(
        errno(other.ioctl(k::RMFB, zerocopy::IntoBytes::as_mut_bytes(&mut rm))),
        Some(libc::ENOENT)
    );
    fd.drop_master().unwrap();
    other.set_master().unwrap();
    let (other_fb, _) = filled_fb(&other, w, h, 0x00ff_ffff);
    other
        .set_crtc(CRTC, other_fb, &[CONNECTOR], Some(out.mode))
        .unwrap();
    shown("0", |p| differing(p, |_, _| [255; 3]) == 0);
    // The render node has no KMS at all.
    let render = DrmFd::open("/scheme/drm/renderD128").unwrap();
    assert_eq!(errno(render.resources()), Some(libc::EACCES));
}

#[test]
fn vblank_waits_sequences_and_their_events_follow_the_simulated_vblank() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack_2d();
    let out = output();
    let fd = &out.fd;
    let wait = |type_: u32, sequence: u32, user: i64| {
        let mut w = k::WaitVblank {
            type_,
            sequence,
            tval_sec: user,
            tval_usec: 0,
        };
        fd.ioctl(k::WAIT_VBLANK, zerocopy::IntoBytes::as_mut_bytes(&mut w))
            .map(|_| w)
    };
    const RELATIVE: u32 = 1;
    const EVENT: u32 = 0x0400_0000;
    // Off: no vblank.
    assert_eq!(errno(wait(RELATIVE, 0, 0)), Some(libc::EINVAL));
    let (w, h) = (u32::from(out.mode.hdisplay), u32::from(out.mode.vdisplay));
    let (fb, _) = filled_fb(fd, w, h, 0);
    fd.set_crtc(CRTC, fb, &[CONNECTOR], Some(out.mode)).unwrap();
    let mut get = k::CrtcGetSequence {
        crtc_id: CRTC,
        ..Default::default()
    };
    fd.ioctl(
        k::CRTC_GET_SEQUENCE,
        zerocopy::IntoBytes::as_mut_bytes(&mut get),
    )
    .unwrap();
    assert_eq!(get.active, 1);
    // A blocking wait for two vblanks on: the count moved by two.
    let now = wait(RELATIVE, 0, 0).unwrap();
    let later = wait(RELATIVE, 2, 0).unwrap();
    assert!(
        later.sequence >= now.sequence + 2,
        "{} then {}",
        now.sequence,
        later.sequence
    );
    let ns = |w: &k::WaitVblank| w.tval_sec as u64 * 1_000_000_000 + w.tval_usec as u64 * 1000;
    assert!(ns(&later) > ns(&now));
    // An absolute target already passed answers at once.
    assert_eq!(
        wait(0, now.sequence, 0).unwrap().sequence,
        wait(RELATIVE, 0, 0).unwrap().sequence
    );
    // With EVENT: answered at once with the target, the event at it.
    let asked = wait(RELATIVE | EVENT, 3, 0x77).unwrap();
    let mut q = k::CrtcQueueSequence {
        crtc_id: CRTC,
        flags: 1,
        sequence: 1,
        user_data: 0x88,
    };
    fd.ioctl(
        k::CRTC_QUEUE_SEQUENCE,
        zerocopy::IntoBytes::as_mut_bytes(&mut q),
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while seen.len() < 2 {
        let n = fd.read_events(&mut buf).unwrap();
        let mut at = 0;
        while at < n {
            let e = k::Event::read_from_prefix(&buf[at..n]).unwrap().0;
            seen.push((e.type_, buf[at..at + e.length as usize].to_vec()));
            at += e.length as usize;
        }
    }
    let vblank = seen
        .iter()
        .find(|(t, _)| *t == k::event::VBLANK)
        .expect("a VBLANK event");
    let v = EventVblank::read_from_bytes(&vblank.1).unwrap();
    assert_eq!(
        (v.user_data, v.sequence, v.crtc_id),
        (0x77, asked.sequence, CRTC)
    );
    let seq = seen
        .iter()
        .find(|(t, _)| *t == k::event::CRTC_SEQUENCE)
        .expect("a CRTC_SEQUENCE event");
    let s = k::EventCrtcSequence::read_from_bytes(&seq.1).unwrap();
    assert_eq!((s.user_data, s.sequence), (0x88, q.sequence));
    // A wait longer than Linux's 3 s is EBUSY then.
    let start = Instant::now();
    assert_eq!(errno(wait(RELATIVE, 1000, 0)), Some(libc::EBUSY));
    assert!(start.elapsed() >= std::time::Duration::from_secs(3));
    // Bad requests.
    const SIGNAL: u32 = 0x4000_0000;
    assert_eq!(errno(wait(SIGNAL, 0, 0)), Some(libc::EINVAL));
    assert_eq!(
        errno(wait(RELATIVE | 5 << 1, 0, 0)),
        Some(libc::EINVAL),
        "no CRTC 5"
    );
    assert_eq!(
        errno(wait(0x0800_0000, 0, 0)),
        Some(libc::EINVAL),
        "FLIP is no wait flag"
    );
    let mut bad = k::CrtcQueueSequence {
        crtc_id: CRTC,
        flags: 4,
        ..Default::default()
    };
    assert_eq!(
        errno(fd.ioctl(
            k::CRTC_QUEUE_SEQUENCE,
            zerocopy::IntoBytes::as_mut_bytes(&mut bad)
        )),
        Some(libc::EINVAL)
    );
    let mut none = k::CrtcGetSequence {
        crtc_id: 0x99,
        ..Default::default()
    };
    assert_eq!(
        errno(fd.ioctl(
            k::CRTC_GET_SEQUENCE,
            zerocopy::IntoBytes::as_mut_bytes(&mut none)
        )),
        Some(libc::ENOENT)
    );
}

#[test]
fn setplane_shows_a_full_screen_primary_and_a_cursor_and_refuses_the_rest() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack_2d();
    let out = output();
    let fd = &out.fd;
    let (w, h) = (u32::from(out.mode.hdisplay), u32::from(out.mode.vdisplay));
    let (a, _) = filled_fb(fd, w, h, 0);
    let (b, _) = filled_fb(fd, w, h, 0x0030_6090);
    fd.set_crtc(CRTC, a, &[CONNECTOR], Some(out.mode)).unwrap();
    let set = |plane, fb, x: i32, y: i32, cw: u32, ch: u32, src: [u32; 4]| {
        let mut s = k::SetPlane {
            plane_id: plane,
            crtc_id: CRTC,
            fb_id: fb,
            crtc_x: x,
            crtc_y: y,
            crtc_w: cw,
            crtc_h: ch,
            src_x: src[0] << 16,
            src_y: src[1] << 16,
            src_w: src[2] << 16,
            src_h: src[3] << 16,
            ..Default::default()
        };
        fd.ioctl(k::SETPLANE, zerocopy::IntoBytes::as_mut_bytes(&mut s))
    };
    const PRIMARY: u32 = 0x43;
    const CURSOR: u32 = 0x44;
    set(PRIMARY, b, 0, 0, w, h, [0, 0, w, h]).unwrap();
    shown("0", |p| differing(p, |_, _| [0x30, 0x60, 0x90]) == 0);
    // A primary that does not cover the CRTC, scaling, a source outside the
    // framebuffer, another CRTC, no such plane.
    assert_eq!(
        errno(set(PRIMARY, b, 8, 0, w - 8, h, [0, 0, w - 8, h])),
        Some(libc::EINVAL)
    );
    assert_eq!(
        errno(set(PRIMARY, b, 0, 0, w, h, [0, 0, w / 2, h / 2])),
        Some(libc::EINVAL)
    );
    assert_eq!(
        errno(set(PRIMARY, b, 0, 0, w, h, [1, 0, w, h])),
        Some(libc::ENOSPC)
    );
    assert_eq!(
        errno(set(PRIMARY, b, i32::MAX, 0, w, h, [0, 0, w, h])),
        Some(libc::ERANGE)
    );
    assert_eq!(
        errno(set(0x99, b, 0, 0, w, h, [0, 0, w, h])),
        Some(libc::ENOENT)
    );
    // The cursor plane takes a 64x64 ARGB framebuffer, and no other.
    let c = fd.create_dumb(64, 64).unwrap();
    fd.map_dumb(c.handle, c.size as usize)
        .unwrap()
        .write_bytes(0, &[0xff; 64 * 64 * 4]);
    let argb = fd
        .add_fb2(c.handle, 64, 64, c.pitch, k::FORMAT_ARGB8888)
        .unwrap();
    assert_eq!(
        errno(set(CURSOR, b, 0, 0, w, h, [0, 0, w, h])),
        Some(libc::EINVAL)
    );
    set(CURSOR, argb, 40, 50, 64, 64, [0, 0, 64, 64]).unwrap();
    let cursor = shown("cursor", |p| p.header.contains("# visible 1"));
    assert_eq!((cursor.field("# x "), cursor.field("# y ")), (40, 50));
    set(CURSOR, 0, 0, 0, 0, 0, [0; 4]).unwrap();
    shown("cursor", |p| p.header.contains("# visible 0"));
}

#[test]
fn modetest_sets_a_mode_atomically_and_the_display_shows_its_pattern() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack_2d();
    // modetest's atomic path wants the plane named as well as the mode.
    let child = modetest(&["-a", "-s", "66@64:1024x768", "-P", "67@64:1024x768"]);
    shown("0", |p| {
        p.field("# updates ") > 0 && differing(p, |x, y| smpte(x, y, 1024, 768)) == 0
    });
    let (status, printed) = finish(child);
    assert!(status.success(), "modetest -a: {status}: {printed}");
}

/// drmd's property ids (docs/KMS.md).
mod prop {
    pub const CONNECTOR_CRTC_ID: u32 = 5;
    pub const ACTIVE: u32 = 6;
    pub const MODE_ID: u32 = 7;
    pub const OUT_FENCE_PTR: u32 = 8;
    pub const FB_ID: u32 = 11;
    pub const CRTC_ID: u32 = 13;
    pub const CRTC_X: u32 = 14;
    pub const CRTC_Y: u32 = 15;
    pub const CRTC_W: u32 = 16;
    pub const CRTC_H: u32 = 17;
    pub const SRC_X: u32 = 18;
    pub const SRC_Y: u32 = 19;
    pub const SRC_W: u32 = 20;
    pub const SRC_H: u32 = 21;
}

/// A plane's properties for a framebuffer of `w × h` shown at the CRTC's
/// origin, unscaled.
fn plane_props(fb: u32, w: u32, h: u32) -> Vec<(u32, u64)> {
    vec![
        (prop::FB_ID, u64::from(fb)),
        (prop::CRTC_ID, u64::from(CRTC)),
        (prop::SRC_X, 0),
        (prop::SRC_Y, 0),
        (prop::SRC_W, u64::from(w) << 16),
        (prop::SRC_H, u64::from(h) << 16),
        (prop::CRTC_X, 0),
        (prop::CRTC_Y, 0),
        (prop::CRTC_W, u64::from(w)),
        (prop::CRTC_H, u64::from(h)),
    ]
}

#[test]
fn atomic_commits_check_everything_first_and_flip_with_events_and_out_fences() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack_2d();
    let out = output();
    let fd = &out.fd;
    let (w, h) = (u32::from(out.mode.hdisplay), u32::from(out.mode.vdisplay));
    const PRIMARY: u32 = 0x43;
    const CURSOR: u32 = 0x44;
    const A: u32 = 0x0040_8000;
    const B: u32 = 0x0000_40c0;
    let (a, _) = filled_fb(fd, w, h, A);
    let (b, _) = filled_fb(fd, w, h, B);
    let mode_blob = {
        let m = out.mode;
        let c = k::CreateBlobHeader {
            length: size_of::<ModeInfo>() as u32,
            blob_id: 0,
        };
        let mut payload = drm_uapi::wire::Builder::new(&c).array(&[m]).build();
        fd.ioctl(k::CREATEPROPBLOB, &mut payload).unwrap();
        k::CreateBlobHeader::read_from_prefix(&payload)
            .unwrap()
            .0
            .blob_id
    };
    let modeset = |fb| {
        vec![
            (CONNECTOR, vec![(prop::CONNECTOR_CRTC_ID, u64::from(CRTC))]),
            (
                CRTC,
                vec![(prop::MODE_ID, u64::from(mode_blob)), (prop::ACTIVE, 1)],
            ),
            (PRIMARY, plane_props(fb, w, h)),
        ]
    };
    let commit = |flags, objects: &[(u32, Vec<(u32, u64)>)], user| {
        let objects: Vec<(u32, &[(u32, u64)])> =
            objects.iter().map(|(o, p)| (*o, p.as_slice())).collect();
        fd.atomic(flags, &objects, user)
    };
    // Not an atomic client yet.
    assert_eq!(
        errno(commit(k::flip::ALLOW_MODESET, &modeset(a), 0)),
        Some(libc::EINVAL)
    );
    // The hotspot cap needs ATOMIC first; without it an atomic client has
    // no cursor plane.
    assert_eq!(
        errno(fd.set_client_cap(dc::DRM_CLIENT_CAP_CURSOR_PLANE_HOTSPOT, 1)),
        Some(libc::EINVAL)
    );
    fd.set_client_cap(dc::DRM_CLIENT_CAP_ATOMIC, 1).unwrap();
    let planes = |fd: &DrmFd| {
        let mut r = k::GetPlaneResHeader { count_planes: 4 };
        let mut payload = drm_uapi::wire::Builder::new(&r).zeroed::<u32>(4).build();
        fd.ioctl(k::GETPLANERESOURCES, &mut payload).unwrap();
        r = k::GetPlaneResHeader::read_from_prefix(&payload).unwrap().0;
        r.count_planes
    };
    assert_eq!(planes(fd), 1, "no cursor plane without the hotspot cap");
    fd.set_client_cap(dc::DRM_CLIENT_CAP_CURSOR_PLANE_HOTSPOT, 1)
        .unwrap();
    assert_eq!(planes(fd), 2);

    // Flags: TEST_ONLY with an event, ASYNC, unknown bits; a modeset
    // without ALLOW_MODESET.
    for flags in [k::flip::TEST_ONLY | k::flip::EVENT, k::flip::ASYNC, 0x8000] {
        assert_eq!(
            errno(commit(flags, &modeset(a), 0)),
            Some(libc::EINVAL),
            "{flags:#x}"
        );
    }
    assert_eq!(errno(commit(0, &modeset(a), 0)), Some(libc::EINVAL));
    // Impossible configurations, tested: nothing changes on screen.
    let before = Pam::parse(&stack_tests::display::display("0").unwrap());
    let mut larger = modeset(a);
    larger[2].1[4] = (prop::SRC_W, u64::from(w + 1) << 16);
    larger[2].1[8] = (prop::CRTC_W, u64::from(w + 1));
    assert_eq!(
        errno(commit(
            k::flip::TEST_ONLY | k::flip::ALLOW_MODESET,
            &larger,
            0
        )),
        Some(libc::ENOSPC)
    );
    let big_cursor = fd.create_dumb(128, 128).unwrap();
    let big_fb = fd
        .add_fb2(
            big_cursor.handle,
            128,
            128,
            big_cursor.pitch,
            k::FORMAT_ARGB8888,
        )
        .unwrap();
    let mut with_cursor = modeset(a);
    with_cursor.push((CURSOR, plane_props(big_fb, 128, 128)));
    assert_eq!(
        errno(commit(
            k::flip::TEST_ONLY | k::flip::ALLOW_MODESET,
            &with_cursor,
            0
        )),
        Some(libc::EINVAL)
    );
    let mut unknown = modeset(a);
    unknown[1].1.push((999, 1));
    assert_eq!(
        errno(commit(
            k::flip::TEST_ONLY | k::flip::ALLOW_MODESET,
            &unknown,
            0
        )),
        Some(libc::ENOENT)
    );
    let mut scaled = modeset(a);
    scaled[2].1[4] = (prop::SRC_W, u64::from(w / 2) << 16);
    assert_eq!(
        errno(commit(k::flip::ALLOW_MODESET, &scaled, 0)),
        Some(libc::EINVAL)
    );
    // A valid configuration tests fine, and still changes nothing.
    commit(k::flip::TEST_ONLY | k::flip::ALLOW_MODESET, &modeset(a), 0).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let after = Pam::parse(&stack_tests::display::display("0").unwrap());
    assert_eq!(
        before.header, after.header,
        "tested commits changed the display"
    );

    // The modeset, then flips with events and out-fences.
    commit(k::flip::ALLOW_MODESET, &modeset(a), 0).unwrap();
    shown("0", |p| differing(p, |_, _| rgb(A)) == 0);
    let mut buf = [0u8; 256];
    for (i, fb) in [b, a, b].into_iter().enumerate() {
        let flip = vec![
            (CRTC, vec![(prop::OUT_FENCE_PTR, 1)]),
            (PRIMARY, vec![(prop::FB_ID, u64::from(fb))]),
        ];
        let values = commit(k::flip::NONBLOCK | k::flip::EVENT, &flip, i as u64).unwrap();
        if i == 0 {
            // One commit at a time.
            assert_eq!(
                errno(commit(k::flip::NONBLOCK, &flip, 9)),
                Some(libc::EBUSY)
            );
        }
        let fence = fd.atomic_out_fence(values[0]).unwrap();
        let n = fd.read_events(&mut buf).unwrap();
        let e = vblank_events(&buf[..n])[0];
        assert_eq!(
            (e.base.type_, e.user_data),
            (k::event::FLIP_COMPLETE, i as u64)
        );
        assert!(
            fence.wait(std::time::Duration::from_secs(5)).unwrap(),
            "the out-fence signals with the flip"
        );
    }
    shown("0", |p| differing(p, |_, _| rgb(B)) == 0);
}

#[test]
fn two_displays_are_two_outputs_each_showing_its_own_framebuffer() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack_with(&["--2d", "--display", "1024x768", "--display", "800x600"]);
    let fd = DrmFd::open(CARD).unwrap();
    let res = fd.resources().unwrap();
    assert_eq!(res.crtcs, [0x40, 0x48]);
    assert_eq!(res.connectors, [0x42, 0x4a]);
    for (crtc, connector, (w, h), argb) in [
        (0x40, 0x42, (1024, 768), 0x00c0_2000u32),
        (0x48, 0x4a, (800, 600), 0x0000_80ffu32),
    ] {
        let (conn, modes) = fd.connector(connector, 16).unwrap();
        assert_eq!(conn.connection, 1);
        assert_eq!(
            (u32::from(modes[0].hdisplay), u32::from(modes[0].vdisplay)),
            (w, h)
        );
        let mut enc = k::GetEncoder {
            encoder_id: conn.connector_id - 1,
            ..Default::default()
        };
        fd.ioctl(k::GETENCODER, zerocopy::IntoBytes::as_mut_bytes(&mut enc))
            .unwrap();
        assert_eq!(enc.possible_crtcs, 1 << ((crtc - 0x40) / 8));
        let (fb, _) = filled_fb(&fd, w, h, argb);
        // Each CRTC drives only its own connector.
        let other = if connector == 0x42 { 0x4a } else { 0x42 };
        assert_eq!(
            errno(fd.set_crtc(crtc, fb, &[other], Some(modes[0]))),
            Some(libc::EINVAL)
        );
        fd.set_crtc(crtc, fb, &[connector], Some(modes[0])).unwrap();
    }
    let first = shown("0", |p| differing(p, |_, _| rgb(0x00c0_2000)) == 0);
    let second = shown("1", |p| differing(p, |_, _| rgb(0x0000_80ff)) == 0);
    assert_eq!((first.size(), second.size()), ((1024, 768), (800, 600)));
}

/// A dumb buffer larger than a cursor: its handle.
fn handle_of_big(fd: &DrmFd) -> u32 {
    fd.create_dumb(128, 128).unwrap().handle
}

#[test]
fn a_flips_event_wakes_a_poller_of_the_drm_fd() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack_2d();
    let out = output();
    let (w, h) = (u32::from(out.mode.hdisplay), u32::from(out.mode.vdisplay));
    let (a, _) = filled_fb(&out.fd, w, h, 0);
    let (b, _) = filled_fb(&out.fd, w, h, 0x0010_1010);
    out.fd
        .set_crtc(CRTC, a, &[CONNECTOR], Some(out.mode))
        .unwrap();
    let events = out.fd.events_fd().unwrap();
    assert!(!poll_readable(events, 0), "nothing to read yet");
    let start = Instant::now();
    out.fd.page_flip(CRTC, b, k::flip::EVENT, 7).unwrap();
    assert!(
        poll_readable(out.fd.events_fd().unwrap(), 5_000),
        "the event makes the fd readable"
    );
    println!("flip to event: {:?}", start.elapsed());
    let mut buf = [0u8; 64];
    let n = out.fd.read_events(&mut buf).unwrap();
    assert_eq!(vblank_events(&buf[..n])[0].user_data, 7);
    assert!(
        !poll_readable(out.fd.events_fd().unwrap(), 0),
        "read: not readable"
    );
    // A buffer too small for the event reads nothing and keeps it.
    out.fd.page_flip(CRTC, a, k::flip::EVENT, 8).unwrap();
    assert!(poll_readable(out.fd.events_fd().unwrap(), 5_000));
    assert_eq!(out.fd.read_events(&mut buf[..16]).unwrap(), 0);
    let n = out.fd.read_events(&mut buf).unwrap();
    assert_eq!(vblank_events(&buf[..n])[0].user_data, 8);
}

/// Makes scanout `scanout`'s monitor ask for `what` (`WxH`, or `off` to
/// unplug it), as resizing or closing a VMM's window does.
fn monitor(scanout: u32, what: &str) -> std::io::Result<usize> {
    SchemeFd::open(&format!("/scheme/virtio-gpu/display/{scanout}"), 0)?.write(what.as_bytes())
}

/// Reads `fd`'s events once it is readable: Redox's hotplug events.
fn hotplug_events(fd: &DrmFd) -> Vec<k::EventHotplug> {
    assert!(
        poll_readable(fd.events_fd().unwrap(), 5_000),
        "a hotplug event comes"
    );
    let mut buf = [0u8; 256];
    let n = fd.read_events(&mut buf).unwrap();
    buf[..n]
        .chunks_exact(size_of::<k::EventHotplug>())
        .map(|c| k::EventHotplug::read_from_bytes(c).unwrap())
        .collect()
}

/// GETCONNECTOR of the connector until `done` holds (drmd hears of a
/// display change a moment after virtio-gpud).
fn connector_until(
    fd: &DrmFd,
    done: impl Fn(&k::GetConnectorHeader, &[ModeInfo]) -> bool,
) -> (k::GetConnectorHeader, Vec<ModeInfo>) {
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (c, modes) = fd.connector(CONNECTOR, 32).unwrap();
        if done(&c, &modes) {
            return (c, modes);
        }
        assert!(Instant::now() < deadline, "connector stays {c:?}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn a_resized_or_unplugged_monitor_reaches_the_connector_and_hotplug_listeners() {
    let _turn = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    let _stack = stack_2d();
    let out = output();
    let (w, h) = (u32::from(out.mode.hdisplay), u32::from(out.mode.vdisplay));
    let (fb, _) = filled_fb(&out.fd, w, h, 0x0030_6090);
    out.fd
        .set_crtc(CRTC, fb, &[CONNECTOR], Some(out.mode))
        .unwrap();
    shown("0", |p| differing(p, |_, _| rgb(0x0030_6090)) == 0);
    let listener = DrmFd::open(CARD).unwrap();
    listener
        .set_client_cap(k::REDOX_CLIENT_CAP_HOTPLUG_EVENTS, 1)
        .unwrap();

    // Resized: the new size is the preferred mode; what is shown stays.
    monitor(0, "1280x720").unwrap();
    let events = hotplug_events(&listener);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].base.type_, k::event::REDOX_CONNECTOR_HOTPLUG);
    assert_eq!(events[0].base.length, 12);
    assert_eq!(events[0].connector, CONNECTOR);
    let (c, modes) = connector_until(&out.fd, |_, m| {
        m.first().is_some_and(|m| m.hdisplay == 1280)
    });
    assert_eq!(c.connection, 1);
    assert_eq!((modes[0].hdisplay, modes[0].vdisplay), (1280, 720));
    assert_ne!(modes[0].type_ & 8, 0, "preferred");
    assert!(modes.iter().any(|m| (m.hdisplay, m.vdisplay) == (800, 600)));
    assert!(
        !poll_readable(out.fd.events_fd().unwrap(), 0),
        "no event without the cap"
    );
    let frame = shown("0", |p| p.header.contains("# monitor 1280x720"));
    assert_eq!(frame.size(), (1024, 768), "the CRTC still shows its mode");
    assert_eq!(differing(&frame, |_, _| rgb(0x0030_6090)), 0);
    let crtc = out.fd.crtc(CRTC).unwrap();
    assert_eq!((crtc.fb_id, crtc.mode.hdisplay), (fb, 1024));

    // Unplugged, then plugged back before the listener reads: one event
    // says to look again.
    monitor(0, "off").unwrap();
    connector_until(&out.fd, |c, m| c.connection == 2 && m.is_empty());
    monitor(0, "1024x768").unwrap();
    let (_, modes) = connector_until(&out.fd, |c, _| c.connection == 1);
    assert_eq!((modes[0].hdisplay, modes[0].vdisplay), (1024, 768));
    assert_eq!(hotplug_events(&listener).len(), 1);
    let stats = stack_tests::scheme_text("/scheme/virtio-gpu/stats");
    assert!(stats.contains("display_changes 3"), "{stats}");

    // What the monitor is told must be a size or `off`.
    for bad in ["", "banana", "0x0", "1024x0", "16385x10", "x768", "-1x-1"] {
        assert_eq!(errno(monitor(0, bad)), Some(libc::EINVAL), "{bad:?}");
    }
    assert_eq!(errno(monitor(1, "640x480")), Some(libc::ENOENT));
    let cursor = SchemeFd::open("/scheme/virtio-gpu/display/cursor", 0).unwrap();
    assert_eq!(errno(cursor.write(b"640x480")), Some(libc::EBADF));
    assert!(
        !poll_readable(listener.events_fd().unwrap(), 100),
        "no change, no event"
    );
}
