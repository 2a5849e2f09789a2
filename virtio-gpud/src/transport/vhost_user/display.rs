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
use virtio_gpu_proto::{CtrlHdr, DisplayOne, Rect, RespDisplayInfo, ResponseType};
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
            ..DisplayState::default()
        }));
        let modes = sizes.to_vec();
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("vhost-user-gpu display".into())
            .spawn(move || {
                let mut server = Server {
                    sock,
                    state: shared,
                    modes,
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
    /// Each scanout's preferred size.
    modes: Vec<(u32, u32)>,
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
            // No protocol extensions: the backend then never sends the
            // EDID or dma-buf v2 messages.
            GET_PROTOCOL_FEATURES => self.reply(request, &0u64.to_le_bytes()),
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
                for ((mode, s), &preferred) in
                    info.pmodes.iter_mut().zip(&state.scanouts).zip(&self.modes)
                {
                    let (w, h) = if s.width == 0 {
                        preferred
                    } else {
                        (s.width, s.height)
                    };
                    *mode = DisplayOne {
                        r: Rect::new(0, 0, w, h),
                        enabled: U32::new(1),
                        flags: U32::new(0),
                    };
                }
                drop(state);
                self.reply(request, info.as_bytes())
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
