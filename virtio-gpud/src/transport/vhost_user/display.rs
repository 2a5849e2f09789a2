//! The display side of QEMU's vhost-user-gpu socket protocol
//! (`docs/interop/vhost-user-gpu.rst`): what the VMM does for the backend.
//!
//! The backend asks this side for the display configuration and sends it
//! scanout changes, framebuffer updates (with pixels) and cursor updates.
//! Served here on a thread of its own, since the backend's sends block, it
//! stands in for the monitor: [`DisplayState`] holds what a user would see.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use log::{debug, warn};

pub use crate::transport::screen::{Cursor, DisplayState, Scanout};
use virtio_gpu_proto::edid::{self, Monitor, Timing};
use virtio_gpu_proto::{CtrlHdr, DisplayOne, Rect, RespDisplayInfo, RespEdid, ResponseType};
use zerocopy::little_endian::U32;
use zerocopy::IntoBytes;

// Request ids (vhost-user-gpu.rst, "Message types").
const GET_PROTOCOL_FEATURES: u32 = 1;
const SET_PROTOCOL_FEATURES: u32 = 2;
const GET_DISPLAY_INFO: u32 = 3;
const CURSOR_POS: u32 = 4;
const CURSOR_POS_HIDE: u32 = 5;
const CURSOR_UPDATE: u32 = 6;
const SCANOUT: u32 = 7;
const UPDATE: u32 = 8;
const DMABUF_SCANOUT: u32 = 9;
const DMABUF_UPDATE: u32 = 10;
const GET_EDID: u32 = 11;
/// `VHOST_USER_GPU_PROTOCOL_F_EDID`: the backend may ask for EDIDs (and
/// then offers VIRTIO_GPU_F_EDID usefully).
const PROTOCOL_F_EDID: u64 = 1 << 0;
/// `VHOST_USER_GPU_MSG_FLAG_REPLY`.
const FLAG_REPLY: u32 = 0x4;
pub use crate::transport::screen::CURSOR_SIZE;
/// Largest message accepted: a full-HD-sized update plus headers, so a
/// confused peer cannot make this side allocate without bound.
const MAX_MESSAGE: usize = 64 << 20;

/// The display thread and the state it maintains.
#[derive(Debug)]
pub struct Display {
    state: Arc<Mutex<DisplayState>>,
    thread: Option<JoinHandle<()>>,
}

impl Display {
    /// Serves the backend's end of `sock` with one enabled scanout of each
    /// of `sizes` (width, height).
    pub fn spawn(sock: UnixStream, sizes: &[(u32, u32)]) -> io::Result<Display> {
        let state = Arc::new(Mutex::new(DisplayState {
            scanouts: sizes
                .iter()
                .map(|&(width, height)| Scanout {
                    width,
                    height,
                    pixels: vec![0; (width * height) as usize],
                })
                .collect(),
            monitors: sizes.iter().copied().map(Some).collect(),
            ..DisplayState::default()
        }));
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("vhost-user-gpu display".into())
            .spawn(move || {
                let mut server = Server {
                    sock,
                    state: shared,
                };
                match server.run() {
                    Ok(()) => debug!("display: backend closed the socket"),
                    Err(e) => warn!("display: {e}"),
                }
            })?;
        Ok(Display {
            state,
            thread: Some(thread),
        })
    }

    /// The number of scanouts this display provides.
    pub fn num_scanouts(&self) -> u32 {
        self.lock().scanouts.len() as u32
    }

    /// What the display shows now.
    pub fn lock(&self) -> MutexGuard<'_, DisplayState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Scanout `scanout`'s monitor now asks for `size` (None: it is
    /// unplugged), as a resized or closed window does in QEMU's UI; false
    /// for a scanout this display lacks. The driver learns of it from the
    /// configuration-change event the caller raises.
    pub fn request(&self, scanout: usize, size: Option<(u32, u32)>) -> bool {
        match self.lock().monitors.get_mut(scanout) {
            Some(m) => {
                *m = size;
                true
            }
            None => false,
        }
    }
}

/// Sizes the test monitor also takes at 60 Hz, besides its own: the common
/// VESA and CEA ones.
const MONITOR_SIZES: &[(u16, u16)] = &[
    (640, 480),
    (800, 600),
    (1024, 768),
    (1280, 720),
    (1280, 800),
    (1280, 1024),
    (1440, 900),
    (1600, 900),
    (1680, 1050),
    (1920, 1080),
    (1920, 1200),
];

/// The EDID of scanout `index`'s monitor asking for `width`×`height`: a
/// 96 dpi panel whose native mode is that size at 60 Hz (CVT reduced
/// blanking), taking the common sizes that fit; None for a size no
/// detailed timing holds.
fn monitor_edid(index: usize, width: u32, height: u32) -> Option<[u8; edid::BLOCK]> {
    let mut preferred = Timing::cvt_rb(width, height);
    let mm = |px: u16| (u32::from(px) * 254 / 960) as u16;
    preferred.size_mm = (mm(preferred.h[0]), mm(preferred.v[0]));
    let name = format!("Monitor {index}");
    edid::build(&Monitor {
        vendor: *b"VGD",
        name: &name,
        serial: index as u32 + 1,
        preferred,
        sizes: MONITOR_SIZES,
    })
}

impl Drop for Display {
    fn drop(&mut self) {
        // The thread ends when the backend closes its end; the transport
        // drops the backend connection first.
        if let Some(t) = self.thread.take() {
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

struct Server {
    sock: UnixStream,
    state: Arc<Mutex<DisplayState>>,
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    b.get(4 * i..4 * i + 4)
        .map_or(0, |s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
}

fn pixels(b: &[u8]) -> impl Iterator<Item = u32> + '_ {
    b.chunks_exact(4)
        .map(|p| u32::from_le_bytes(p.try_into().expect("4 bytes")))
}

impl Server {
    fn run(&mut self) -> io::Result<()> {
        loop {
            let mut hdr = [0u8; 12];
            match self.sock.read_exact(&mut hdr) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                r => r?,
            }
            let (request, size) = (u32_at(&hdr, 0), u32_at(&hdr, 2) as usize);
            if size > MAX_MESSAGE {
                return Err(io::Error::other(format!(
                    "message {request} of {size} bytes"
                )));
            }
            let mut body = vec![0u8; size];
            self.sock.read_exact(&mut body)?;
            self.handle(request, &body)?;
        }
    }

    fn reply(&mut self, request: u32, payload: &[u8]) -> io::Result<()> {
        let mut msg = Vec::with_capacity(12 + payload.len());
        for word in [request, FLAG_REPLY, payload.len() as u32] {
            msg.extend_from_slice(&word.to_le_bytes());
        }
        msg.extend_from_slice(payload);
        self.sock.write_all(&msg)
    }

    fn state(&self) -> MutexGuard<'_, DisplayState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn handle(&mut self, request: u32, body: &[u8]) -> io::Result<()> {
        match request {
            // EDIDs, but not dma-buf v2 (no GPU here to share buffers of).
            GET_PROTOCOL_FEATURES => self.reply(request, &PROTOCOL_F_EDID.to_le_bytes()),
            SET_PROTOCOL_FEATURES => Ok(()),
            GET_DISPLAY_INFO => {
                let mut info = RespDisplayInfo {
                    hdr: CtrlHdr {
                        ty: U32::new(ResponseType::OK_DISPLAY_INFO.0),
                        ..CtrlHdr::default()
                    },
                    ..RespDisplayInfo::default()
                };
                let state = self.state();
                for (mode, monitor) in info.pmodes.iter_mut().zip(&state.monitors) {
                    if let Some((w, h)) = *monitor {
                        *mode = DisplayOne {
                            r: Rect::new(0, 0, w, h),
                            enabled: U32::new(1),
                            flags: U32::new(0),
                        };
                    }
                }
                drop(state);
                self.reply(request, info.as_bytes())
            }
            GET_EDID => {
                let scanout = u32_at(body, 0) as usize;
                let monitor = self.state().monitors.get(scanout).copied();
                let mut resp = RespEdid {
                    hdr: CtrlHdr {
                        ty: U32::new(ResponseType::OK_EDID.0),
                        ..CtrlHdr::default()
                    },
                    size: U32::ZERO,
                    padding: U32::ZERO,
                    edid: [0; 1024],
                };
                match monitor {
                    None => resp.hdr.ty = U32::new(ResponseType::ERR_INVALID_SCANOUT_ID.0),
                    // An unplugged monitor has no EDID to read.
                    Some(None) => {}
                    Some(Some((w, h))) => {
                        if let Some(block) = monitor_edid(scanout, w, h) {
                            resp.edid[..block.len()].copy_from_slice(&block);
                            resp.size = U32::new(block.len() as u32);
                        }
                    }
                }
                self.reply(request, resp.as_bytes())
            }
            CURSOR_POS | CURSOR_POS_HIDE => {
                let mut state = self.state();
                let c = &mut state.cursor;
                c.visible = request == CURSOR_POS;
                (c.scanout, c.x, c.y) = (u32_at(body, 0), u32_at(body, 1), u32_at(body, 2));
                Ok(())
            }
            CURSOR_UPDATE => {
                let mut state = self.state();
                let c = &mut state.cursor;
                c.visible = true;
                (c.scanout, c.x, c.y) = (u32_at(body, 0), u32_at(body, 1), u32_at(body, 2));
                (c.hot_x, c.hot_y) = (u32_at(body, 3), u32_at(body, 4));
                c.image = pixels(body.get(20..).unwrap_or_default()).collect();
                Ok(())
            }
            SCANOUT => {
                let (id, w, h) = (u32_at(body, 0), u32_at(body, 1), u32_at(body, 2));
                let mut state = self.state();
                if let Some(s) = state.scanouts.get_mut(id as usize) {
                    *s = Scanout {
                        width: w,
                        height: h,
                        pixels: vec![0; w as usize * h as usize],
                    };
                }
                Ok(())
            }
            UPDATE => {
                let (id, x, y) = (u32_at(body, 0), u32_at(body, 1), u32_at(body, 2));
                let (w, h) = (u32_at(body, 3) as usize, u32_at(body, 4) as usize);
                let data = body.get(20..).unwrap_or_default();
                let mut state = self.state();
                state.updates += 1;
                let Some(s) = state.scanouts.get_mut(id as usize) else {
                    return Ok(());
                };
                let stride = s.width as usize;
                for (row, src) in data.chunks_exact(w * 4).take(h).enumerate() {
                    let dy = y as usize + row;
                    if dy >= s.height as usize || x as usize >= stride {
                        continue;
                    }
                    let n = w.min(stride - x as usize);
                    let start = dy * stride + x as usize;
                    for (dst, p) in s.pixels[start..start + n].iter_mut().zip(pixels(src)) {
                        *dst = p;
                    }
                }
                Ok(())
            }
            DMABUF_SCANOUT => {
                self.state().unsupported = Some(request);
                Ok(())
            }
            DMABUF_UPDATE => {
                self.state().unsupported = Some(request);
                self.reply(request, &[])
            }
            other => {
                warn!("display: unknown message {other} ({} bytes)", body.len());
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromBytes;

    /// Sends the backend's `request` with `body` and reads the reply's
    /// payload.
    fn ask(sock: &mut UnixStream, request: u32, body: &[u8]) -> Vec<u8> {
        let mut msg = Vec::new();
        for word in [request, 0, body.len() as u32] {
            msg.extend_from_slice(&word.to_le_bytes());
        }
        msg.extend_from_slice(body);
        sock.write_all(&msg).unwrap();
        let mut hdr = [0u8; 12];
        sock.read_exact(&mut hdr).unwrap();
        assert_eq!((u32_at(&hdr, 0), u32_at(&hdr, 1)), (request, FLAG_REPLY));
        let mut payload = vec![0u8; u32_at(&hdr, 2) as usize];
        sock.read_exact(&mut payload).unwrap();
        payload
    }

    fn edid_of(sock: &mut UnixStream, scanout: u32) -> RespEdid {
        let reply = ask(sock, GET_EDID, &scanout.to_le_bytes());
        RespEdid::read_from_bytes(&reply).expect("a whole virtio_gpu_resp_edid")
    }

    #[test]
    fn the_display_answers_what_its_monitors_ask_for_with_their_edids() {
        let (mut backend, ours) = UnixStream::pair().unwrap();
        let display = Display::spawn(ours, &[(1280, 800), (800, 600)]).unwrap();
        let features = ask(&mut backend, GET_PROTOCOL_FEATURES, &[]);
        assert_eq!(features, PROTOCOL_F_EDID.to_le_bytes());

        let info =
            RespDisplayInfo::read_from_bytes(&ask(&mut backend, GET_DISPLAY_INFO, &[])).unwrap();
        let sizes: Vec<_> = info.pmodes[..3]
            .iter()
            .map(|m| (m.enabled.get(), m.r.width.get(), m.r.height.get()))
            .collect();
        assert_eq!(sizes, [(1, 1280, 800), (1, 800, 600), (0, 0, 0)]);
        let resp = edid_of(&mut backend, 0);
        assert_eq!(resp.hdr.ty.get(), ResponseType::OK_EDID.0);
        let edid = edid::Edid::parse(resp.edid()).unwrap();
        let native = edid.detailed().next().unwrap();
        assert_eq!((native.h[0], native.v[0]), (1280, 800));
        assert_eq!(edid.size_mm(), (338, 211));
        assert_eq!(edid.name(), Some("Monitor 0"));

        // Unplugged: disabled, and no EDID to read; a scanout it lacks is
        // the device's error.
        assert!(display.request(1, None));
        assert!(!display.request(2, Some((640, 480))));
        let info =
            RespDisplayInfo::read_from_bytes(&ask(&mut backend, GET_DISPLAY_INFO, &[])).unwrap();
        assert_eq!(info.pmodes[1].enabled.get(), 0);
        assert_eq!(edid_of(&mut backend, 1).size.get(), 0);
        let missing = edid_of(&mut backend, 2);
        assert_eq!(missing.hdr.ty.get(), ResponseType::ERR_INVALID_SCANOUT_ID.0);
        assert!(display
            .lock()
            .pam(1)
            .unwrap()
            .starts_with(b"P7\n# updates 0\n# monitor off\n"));
    }

    #[test]
    fn the_monitors_edids_pass_edid_decodes_conformance_check() {
        // edid-decode (a test package `cargo xtask setup` installs) is an
        // independent reading of the standard.
        for (w, h) in [
            (1024, 768),
            (1280, 800),
            (1920, 1080),
            (640, 480),
            (2560, 1600),
        ] {
            let block = monitor_edid(0, w, h).unwrap();
            let mut child = std::process::Command::new("edid-decode")
                .arg("--check")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("edid-decode (run `cargo xtask setup`)");
            child.stdin.take().unwrap().write_all(&block).unwrap();
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{w}x{h}:\n{text}");
            let native = text.lines().find(|l| l.trim_start().starts_with("DTD 1:"));
            assert!(
                native.is_some_and(|l| l.contains(&format!(" {w}x{h} "))),
                "{w}x{h}:\n{text}"
            );
        }
        assert!(monitor_edid(0, 5120, 2880).is_none(), "too large for a DTD");
    }
}
