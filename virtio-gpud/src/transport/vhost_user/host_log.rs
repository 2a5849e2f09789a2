//! The backend's stderr: the one place this backend reports that a
//! client's context died.
//!
//! vhost-user-gpu ignores virglrenderer's return values and answers OK
//! while virglrenderer marks a context that hit an error dead for good
//! (every later submit of it is dropped). virglrenderer says so on stderr:
//! `<function>: context error reported <ctx_id> "<name>" <error> <value>`
//! (vrend_renderer.c, `vrend_report_context_error_internal`). The log is
//! read through a pipe, each line passed on to where the backend's log
//! goes, and those lines turned into lost contexts.

use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::process::ChildStderr;

/// What virglrenderer prints before a context id when it kills a context.
const CONTEXT_ERROR: &str = "context error reported ";

/// The backend's log, read as it comes.
pub struct HostLog {
    pipe: ChildStderr,
    sink: Box<dyn Write + Send>,
    /// The end of the last read, if it was not a whole line.
    partial: Vec<u8>,
    lost: Vec<u32>,
}

impl std::fmt::Debug for HostLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostLog").field("lost", &self.lost).finish()
    }
}

/// The context id a log line reports dead, if it is such a line.
pub fn lost_context(line: &str) -> Option<u32> {
    let rest = &line[line.find(CONTEXT_ERROR)? + CONTEXT_ERROR.len()..];
    let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

impl HostLog {
    /// Reads `pipe` (made non-blocking here) and passes each line to `sink`.
    pub fn new(pipe: ChildStderr, sink: Box<dyn Write + Send>) -> io::Result<HostLog> {
        let fd = pipe.as_raw_fd();
        // SAFETY: F_GETFL/F_SETFL on a pipe this value owns.
        let ok = unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
        };
        if !ok {
            return Err(io::Error::last_os_error());
        }
        Ok(HostLog {
            pipe,
            sink,
            partial: Vec::new(),
            lost: Vec::new(),
        })
    }

    /// The pipe, for the event loop to wake on.
    pub fn fd(&self) -> RawFd {
        self.pipe.as_raw_fd()
    }

    /// Reads what the backend has written so far. Called before completions
    /// are taken: the backend logs a context's death before it answers the
    /// command that caused it, so its answer never overtakes the news.
    pub fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            match self.pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.take(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    fn take(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let _ = self.sink.write_all(&line);
            if let Some(ctx) = lost_context(&String::from_utf8_lossy(&line)) {
                self.lost.push(ctx);
            }
        }
        let _ = self.sink.flush();
    }

    /// The contexts reported dead since the last call.
    pub fn take_lost(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virglrenderers_context_errors_name_the_context() {
        let line = "vrend_decode_ctx_submit_cmd: context error reported 7 \"drmd client\" \
                    Illegal command buffer 329728\n";
        assert_eq!(lost_context(line), Some(7));
        assert_eq!(
            lost_context("vrend_link: context error reported 12 \"x\" Illegal shader 0"),
            Some(12)
        );
        assert_eq!(
            lost_context("Too many fragment shader uniform components"),
            None
        );
        assert_eq!(lost_context("context error reported \"no id\""), None);
    }
}
