//! The events a DRM file reads (`drm_read`): whole events in the order
//! they happened, in at most [`SPACE`] bytes — Linux's `event_space`: a
//! request that would send an event when there is no room for one is
//! refused (ENOMEM), so a client that never reads cannot grow drmd.

use std::collections::VecDeque;

/// Bytes of events a file may have unread (Linux: 4096).
pub const SPACE: usize = 4096;

/// A file's unread events.
#[derive(Debug, Default)]
pub struct Events {
    queue: VecDeque<Vec<u8>>,
    /// Bytes queued or promised to requests that will send one.
    used: usize,
}

impl Events {
    /// Promises room for an event of `len` bytes (ENOMEM: none left).
    pub fn reserve(&mut self, len: usize) -> Result<(), scheme_seam::Errno> {
        if self.used + len > SPACE {
            return Err(scheme_seam::Errno::ENOMEM);
        }
        self.used += len;
        Ok(())
    }

    /// Gives back a promise that will not be kept (the request failed).
    pub fn unreserve(&mut self, len: usize) {
        self.used = self.used.saturating_sub(len);
    }

    /// Queues `event`, for which room was reserved.
    pub fn push(&mut self, event: Vec<u8>) {
        self.queue.push_back(event);
    }

    /// Whether an event is waiting.
    pub fn ready(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Moves whole events into `buf`, as many as fit; the bytes moved (0
    /// when the first does not fit, as Linux).
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let mut at = 0;
        while let Some(e) = self.queue.front() {
            if at + e.len() > buf.len() {
                break;
            }
            buf[at..at + e.len()].copy_from_slice(e);
            at += e.len();
            self.used = self.used.saturating_sub(e.len());
            self.queue.pop_front();
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_whole_and_room_is_bounded() {
        let mut e = Events::default();
        e.reserve(32).unwrap();
        e.push(vec![1; 32]);
        e.reserve(32).unwrap();
        e.push(vec![2; 32]);
        let mut buf = [0u8; 40];
        assert_eq!(e.read(&mut buf), 32);
        assert_eq!(buf[0], 1);
        assert_eq!(e.read(&mut buf[..16]), 0);
        assert!(e.ready());
        assert_eq!(e.read(&mut buf), 32);
        assert!(!e.ready());
        assert!(e.reserve(SPACE).is_ok());
        assert_eq!(e.reserve(1), Err(scheme_seam::Errno::ENOMEM));
    }
}
