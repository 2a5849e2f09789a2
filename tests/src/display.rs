//! What virtio-gpud's display shows (`display/N`, `display/cursor`): the
//! Netpbm PAM images tests compare.

use std::time::{Duration, Instant};

/// A PAM image from `display/...`: its header and RGBA bytes.
pub struct Pam {
    /// The header, comments included.
    pub header: String,
    /// RGBA, row by row.
    pub pixels: Vec<u8>,
}

impl Pam {
    /// Parses a whole PAM file.
    pub fn parse(bytes: &[u8]) -> Pam {
        let end = bytes
            .windows(7)
            .position(|w| w == b"ENDHDR\n")
            .expect("a PAM header")
            + 7;
        let pam = Pam {
            header: String::from_utf8(bytes[..end].to_vec()).unwrap(),
            pixels: bytes[end..].to_vec(),
        };
        assert!(pam.header.starts_with("P7\n") && pam.header.contains("TUPLTYPE RGB_ALPHA\n"));
        assert_eq!(pam.field("DEPTH "), 4);
        let (w, h) = pam.size();
        assert_eq!(pam.pixels.len() as u64, w * h * 4);
        pam
    }

    /// The number after the header line prefix `name`.
    pub fn field(&self, name: &str) -> u64 {
        self.header
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {}", self.header))
            .trim()
            .parse()
            .unwrap()
    }

    /// Width and height.
    pub fn size(&self) -> (u64, u64) {
        (self.field("WIDTH "), self.field("HEIGHT "))
    }
}

/// `display/what` in one read (the bus's reads are not positioned; the
/// 1024×768 scanout is 3 MiB).
pub fn display(what: &str) -> std::io::Result<Vec<u8>> {
    let fd = scheme_seam::SchemeFd::open(&format!("/scheme/virtio-gpu/display/{what}"), 0)?;
    let mut buf = vec![0u8; 8 << 20];
    let n = fd.read(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Reads `display/what` until `done` holds (the display thread hears the
/// backend a moment after the command).
pub fn shown(what: &str, done: impl Fn(&Pam) -> bool) -> Pam {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pam = Pam::parse(&display(what).unwrap());
        if done(&pam) {
            return pam;
        }
        assert!(Instant::now() < deadline, "display/{what}: {}", pam.header);
        std::thread::sleep(Duration::from_millis(10));
    }
}
