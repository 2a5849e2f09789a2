//! A minimal RFB (VNC) client for QEMU's `-vnc unix:PATH` server: the only
//! way to see a GL (virgl) scanout from the host, since QMP `screendump`
//! has no surface to dump then. RFB 3.8, no security, raw pixels only.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Raw pixels, the one encoding every server must send.
const ENCODING_RAW: i32 = 0;
/// The pseudo-encoding announcing a new framebuffer size; without it
/// QEMU has no way to tell us the guest changed mode.
const ENCODING_DESKTOP_SIZE: i32 = -223;

/// One whole framebuffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// RGBA, row after row, alpha always 255.
    pub pixels: Vec<u8>,
}

impl Frame {
    /// The RGBA pixel at (`x`, `y`).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        let i = ((y * self.width + x) * 4) as usize;
        self.pixels[i..i + 4].try_into().expect("4 bytes")
    }

    /// Writes the frame as a PNG (for looking at a failure).
    pub fn save_png(&self, path: &Path) -> Result<(), String> {
        let file =
            std::fs::File::create(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), self.width, self.height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder
            .write_header()
            .and_then(|mut w| w.write_image_data(&self.pixels))
            .map_err(|e| format!("writing {}: {e}", path.display()))
    }
}

/// A frame being filled in, and which of its pixels have arrived.
struct Canvas {
    frame: Frame,
    covered: Vec<bool>,
    missing: usize,
}

impl Canvas {
    fn new(width: u32, height: u32) -> Canvas {
        let pixels = (width * height) as usize;
        Canvas {
            frame: Frame {
                width,
                height,
                pixels: vec![0; pixels * 4],
            },
            covered: vec![false; pixels],
            missing: pixels,
        }
    }

    /// Copies a raw `w`x`h` rectangle of B, G, R, X pixels to (`x`, `y`).
    fn paint(&mut self, x: u32, y: u32, w: u32, h: u32, data: &[u8]) -> Result<(), String> {
        let (width, height) = (self.frame.width, self.frame.height);
        if x + w > width || y + h > height {
            return Err(format!(
                "rectangle {w}x{h}+{x}+{y} outside the {width}x{height} screen"
            ));
        }
        for row in 0..h {
            for col in 0..w {
                let src = ((row * w + col) * 4) as usize;
                let at = ((y + row) * width + x + col) as usize;
                let [b, g, r, _] = data[src..src + 4] else {
                    unreachable!("4-byte slice")
                };
                self.frame.pixels[at * 4..at * 4 + 4].copy_from_slice(&[r, g, b, 255]);
                if !self.covered[at] {
                    self.covered[at] = true;
                    self.missing -= 1;
                }
            }
        }
        Ok(())
    }
}

/// A connection to a VNC server, set up for 32-bit XRGB raw updates.
#[derive(Debug)]
pub struct Vnc {
    stream: UnixStream,
    width: u32,
    height: u32,
    /// Update requests the server has not answered yet.
    outstanding: u32,
}

impl Vnc {
    /// Connects to the server on `socket` and does the handshake:
    /// version 3.8, security type None, a shared session, our pixel
    /// format and encodings.
    pub fn connect(socket: &Path) -> Result<Vnc, String> {
        let stream = UnixStream::connect(socket)
            .map_err(|e| format!("connecting to VNC at {}: {e}", socket.display()))?;
        let mut vnc = Vnc {
            stream,
            width: 0,
            height: 0,
            outstanding: 0,
        };
        vnc.handshake().map_err(|e| format!("VNC handshake: {e}"))?;
        Ok(vnc)
    }

    fn handshake(&mut self) -> Result<(), String> {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let version = self.read_bytes(12)?;
        if !version.starts_with(b"RFB 003.") {
            return Err(format!(
                "not an RFB server: {:?}",
                String::from_utf8_lossy(&version)
            ));
        }
        self.write(b"RFB 003.008\n")?;
        let count = self.read_u8()?;
        if count == 0 {
            return Err(format!("server refused: {}", self.read_reason()?));
        }
        let types = self.read_bytes(count as usize)?;
        if !types.contains(&1) {
            return Err(format!(
                "server offers security types {types:?}, not None (1)"
            ));
        }
        self.write(&[1])?;
        if self.read_u32()? != 0 {
            return Err(format!("security failed: {}", self.read_reason()?));
        }
        // Shared: leave other clients (a person watching) connected.
        self.write(&[1])?;
        self.width = self.read_u16()?.into();
        self.height = self.read_u16()?.into();
        let _server_format = self.read_bytes(16)?;
        let name_len = self.read_u32()?;
        let _name = self.read_bytes(name_len as usize)?;
        // SetPixelFormat: 32 bpp, depth 24, little-endian, true colour,
        // 8 bits per channel at shifts 16/8/0, so a pixel is B, G, R, X.
        let mut format = vec![0, 0, 0, 0, 32, 24, 0, 1];
        for max in [255u16; 3] {
            format.extend_from_slice(&max.to_be_bytes());
        }
        format.extend_from_slice(&[16, 8, 0, 0, 0, 0]);
        self.write(&format)?;
        let mut encodings = vec![2, 0];
        encodings.extend_from_slice(&2u16.to_be_bytes());
        for encoding in [ENCODING_RAW, ENCODING_DESKTOP_SIZE] {
            encodings.extend_from_slice(&encoding.to_be_bytes());
        }
        self.write(&encodings)
    }

    /// Asks for the whole screen and reads updates until every pixel of it
    /// has arrived; starts over at the new size when the server announces
    /// a resize meanwhile (the guest set a mode). Answers still owed to
    /// earlier requests are read and dropped first: they may predate what
    /// the caller is waiting to see.
    pub fn frame(&mut self, timeout: Duration) -> Result<Frame, String> {
        let deadline = Instant::now() + timeout;
        let timed_out = |canvas: &Canvas| {
            format!(
                "no whole {}x{} frame within {timeout:?} ({} pixels missing)",
                canvas.frame.width, canvas.frame.height, canvas.missing
            )
        };
        while self.outstanding > 0 {
            let mut stale = Canvas::new(self.width, self.height);
            if !self.read_message(&mut stale, deadline)? {
                return Err(timed_out(&stale));
            }
        }
        let mut canvas = Canvas::new(self.width, self.height);
        while canvas.missing > 0 || canvas.frame.width == 0 {
            // A resize may have come after the server took our request,
            // or the answer may have covered less than the screen: ask
            // again once nothing is owed.
            if self.outstanding == 0 {
                self.request()?;
            }
            if !self.read_message(&mut canvas, deadline)? {
                return Err(timed_out(&canvas));
            }
        }
        Ok(canvas.frame)
    }

    /// Reads one server message, painting raw rectangles into `canvas`
    /// and starting it over at a new size; false once `deadline` passed.
    fn read_message(&mut self, canvas: &mut Canvas, deadline: Instant) -> Result<bool, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        self.stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match self.read_u8()? {
            0 => {}
            // Bell.
            2 => return Ok(true),
            // ServerCutText: padding, length, text.
            3 => {
                let _ = self.read_bytes(3)?;
                let len = self.read_u32()?;
                let _ = self.read_bytes(len as usize)?;
                return Ok(true);
            }
            other => return Err(format!("unexpected server message type {other}")),
        }
        let _padding = self.read_u8()?;
        let rects = self.read_u16()?;
        // QEMU announces a resize in an update of its own, unasked; any
        // other update answers a request.
        let mut answer = rects == 0;
        for _ in 0..rects {
            let x = u32::from(self.read_u16()?);
            let y = u32::from(self.read_u16()?);
            let w = u32::from(self.read_u16()?);
            let h = u32::from(self.read_u16()?);
            match self.read_i32()? {
                ENCODING_RAW => {
                    answer = true;
                    let data = self.read_bytes((w * h * 4) as usize)?;
                    canvas.paint(x, y, w, h, &data)?;
                }
                ENCODING_DESKTOP_SIZE => {
                    self.width = w;
                    self.height = h;
                    *canvas = Canvas::new(w, h);
                }
                other => return Err(format!("unrequested encoding {other}")),
            }
        }
        if answer {
            self.outstanding = self.outstanding.saturating_sub(1);
        }
        Ok(true)
    }

    /// Asks the server for a `width` × `height` display (SetDesktopSize,
    /// RFB's ExtendedDesktopSize extension, one screen), as resizing a
    /// viewer's window does: QEMU hands the size to the display device as
    /// its monitor's new preferred size. The server's answer to it comes
    /// only to clients that announced the extension, which this one does
    /// not; what changes shows in the guest.
    pub fn request_size(&mut self, width: u16, height: u16) -> Result<(), String> {
        let mut msg = vec![251, 0];
        msg.extend_from_slice(&width.to_be_bytes());
        msg.extend_from_slice(&height.to_be_bytes());
        // One screen: id 0 at (0, 0) of the whole size, no flags.
        msg.extend_from_slice(&[1, 0]);
        msg.extend_from_slice(&0u32.to_be_bytes());
        msg.extend_from_slice(&[0, 0, 0, 0]);
        msg.extend_from_slice(&width.to_be_bytes());
        msg.extend_from_slice(&height.to_be_bytes());
        msg.extend_from_slice(&0u32.to_be_bytes());
        self.write(&msg)
    }

    /// A non-incremental FramebufferUpdateRequest for the whole screen.
    fn request(&mut self) -> Result<(), String> {
        let mut msg = vec![3, 0, 0, 0, 0, 0];
        msg.extend_from_slice(&u16::try_from(self.width).unwrap_or(u16::MAX).to_be_bytes());
        msg.extend_from_slice(&u16::try_from(self.height).unwrap_or(u16::MAX).to_be_bytes());
        self.write(&msg)?;
        self.outstanding += 1;
        Ok(())
    }

    fn read_reason(&mut self) -> Result<String, String> {
        let len = self.read_u32()?;
        Ok(String::from_utf8_lossy(&self.read_bytes(len as usize)?).into_owned())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .map_err(|e| format!("writing to the VNC server: {e}"))
    }

    fn read_bytes(&mut self, n: usize) -> Result<Vec<u8>, String> {
        let mut buf = vec![0; n];
        self.stream
            .read_exact(&mut buf)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    "timed out waiting for the VNC server".to_string()
                }
                _ => format!("reading from the VNC server: {e}"),
            })?;
        Ok(buf)
    }

    fn read_u8(&mut self) -> Result<u8, String> {
        Ok(self.read_bytes(1)?[0])
    }

    fn read_u16(&mut self) -> Result<u16, String> {
        let b = self.read_bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn read_u32(&mut self) -> Result<u32, String> {
        let b = self.read_bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn read_i32(&mut self) -> Result<i32, String> {
        Ok(self.read_u32()? as i32)
    }
}
