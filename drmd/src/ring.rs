//! How drmd places a file's commands on the device's ring without ever
//! waiting for room: the commands one ioctl sends are a [`Batch`], whose
//! first command is placed only when the ring has room for all of them.
//! An ioctl is thus either refused before it changed anything — it parks
//! on [`crate::ioctl::ROOM`] and runs again from the start — or never held
//! up by a full ring afterwards. Every command is detached: drmd never
//! waits for the device's answer (as Linux's driver, which logs the host's
//! errors rather than return them); virtio-gpud's admission has already
//! refused what the host would, and a fenced command the device fails
//! fails its fence.

use gpu_session::api::{QueueReply, QUEUE_DETACHED};
use scheme_seam::Errno;

use crate::backend::DeviceSession;
use crate::errno::{io_errno, would_block};

/// The commands one ioctl sends: at most the size it was made with.
#[derive(Debug)]
pub struct Batch {
    /// Commands still to send, counting the next.
    left: u32,
    /// No command was placed yet.
    first: bool,
}

impl Batch {
    /// A batch of at most `size` commands (at most
    /// [`gpu_session::api::MAX_RESERVE`] + 1).
    pub fn new(size: u32) -> Batch {
        Batch {
            left: size,
            first: true,
        }
    }

    /// Places `request` (with `QUEUE_*` `flags`, detached) on `session`:
    /// `None` when the ring lacks room for the rest of the batch, which
    /// only the first command can meet (nothing was placed then).
    pub fn send(
        &mut self,
        session: &dyn DeviceSession,
        request: &[u8],
        flags: u32,
    ) -> Result<Option<QueueReply>, Errno> {
        let flags = flags | QUEUE_DETACHED;
        let reply = if self.first {
            let rest = self.left.saturating_sub(1);
            match session.try_queue(request, flags, rest) {
                Err(e) if would_block(&e) => return Ok(None),
                reply => reply,
            }
        } else {
            // Room was reserved by the first: this does not wait (unless
            // another process's session took it meanwhile).
            session.queue(request, flags)
        };
        self.first = false;
        self.left = self.left.saturating_sub(1);
        reply.map(Some).map_err(io_errno)
    }
}
