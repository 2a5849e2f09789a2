//! The events a DRM file reads (`drm_read`): whole events in the order
//! they happened, in at most [`SPACE`] bytes — Linux's `event_space`: a
//! request that would send an event when there is no room for one is
//! refused (ENOMEM), so a client that never reads cannot grow drmd.

use std::collections::VecDeque;
use std::time::Duration;

use drm_uapi::kms::{self as k, EventVblank};
use zerocopy::IntoBytes;

use crate::kms::VBLANK_EVENT;

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

    /// Queues `event`, which no request reserved room for, if there is
    /// room and the same event is not already waiting (a hotplug event
    /// says "look again": one unread is as good as many).
    pub fn post(&mut self, event: Vec<u8>) {
        if !self.queue.contains(&event) && self.reserve(event.len()).is_ok() {
            self.push(event);
        }
    }

    /// Whether the unread events are `events`, in order.
    pub fn are(&self, events: &[Vec<u8>]) -> bool {
        self.queue.iter().eq(events.iter())
    }

    /// The unread events.
    pub fn unread(&self) -> Vec<Vec<u8>> {
        self.queue.iter().cloned().collect()
    }

    /// A file's unread `events` as a dead instance left them, with room
    /// promised for `reserved` bytes more (its pending flips' events).
    pub fn restore(events: Vec<Vec<u8>>, reserved: usize) -> Events {
        let used = events.iter().map(Vec::len).sum::<usize>() + reserved;
        Events {
            queue: events.into(),
            used,
        }
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

/// The FLIP_COMPLETE event of a flip done at vblank `seq` of CRTC
/// `crtc_id`, at `time`.
pub fn flip(user_data: u64, crtc_id: u32, seq: u64, time: Duration) -> Vec<u8> {
    vblank_like(k::event::FLIP_COMPLETE, user_data, crtc_id, seq, time)
}

/// The VBLANK event of a WAIT_VBLANK for vblank `seq` of CRTC `crtc_id`,
/// which happened at `time_ns`.
pub fn vblank(user_data: u64, crtc_id: u32, seq: u64, time_ns: u64) -> Vec<u8> {
    let time = Duration::from_nanos(time_ns);
    vblank_like(k::event::VBLANK, user_data, crtc_id, seq, time)
}

/// The CRTC_SEQUENCE event of a CRTC_QUEUE_SEQUENCE for vblank `seq`.
pub fn sequence(user_data: u64, seq: u64, time_ns: u64) -> Vec<u8> {
    k::EventCrtcSequence {
        base: k::Event {
            type_: k::event::CRTC_SEQUENCE,
            length: size_of::<k::EventCrtcSequence>() as u32,
        },
        user_data,
        time_ns: time_ns as i64,
        sequence: seq,
    }
    .as_bytes()
    .to_vec()
}

/// Redox's hotplug event for connector `connector` (sent to files with
/// its client cap).
pub fn hotplug(connector: u32) -> Vec<u8> {
    k::EventHotplug {
        base: k::Event {
            type_: k::event::REDOX_CONNECTOR_HOTPLUG,
            length: size_of::<k::EventHotplug>() as u32,
        },
        connector,
    }
    .as_bytes()
    .to_vec()
}

fn vblank_like(type_: u32, user_data: u64, crtc_id: u32, seq: u64, time: Duration) -> Vec<u8> {
    EventVblank {
        base: k::Event {
            type_,
            length: VBLANK_EVENT as u32,
        },
        user_data,
        // struct drm_event_vblank's 32-bit seconds, as Linux fills them.
        tv_sec: time.as_secs() as u32,
        tv_usec: time.subsec_micros(),
        sequence: seq as u32,
        crtc_id,
    }
    .as_bytes()
    .to_vec()
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

    #[test]
    fn hotplug_events_coalesce_and_never_overflow() {
        let mut e = Events::default();
        e.post(hotplug(0x42));
        e.post(hotplug(0x42));
        e.post(hotplug(0x4a));
        let mut buf = [0u8; 64];
        assert_eq!(e.read(&mut buf), 24);
        let mut full = Events::default();
        full.reserve(SPACE).unwrap();
        full.post(hotplug(0x42));
        assert!(!full.ready());
    }
}
