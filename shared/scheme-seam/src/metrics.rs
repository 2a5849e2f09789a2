//! What this process asks of schemes, counted by the client side of the
//! seam: requests made (each one a hop to another process) and the payload
//! bytes they carry. A daemon reads the counters around serving one
//! request of its own to learn what that request cost downstream —
//! instrumented, not estimated. And, on the serving side, how many of its
//! clients' requests are parked now.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

static REQUESTS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static PARKED: AtomicUsize = AtomicUsize::new(0);

/// Requests of this daemon's clients parked in its serving loop now.
pub fn parked() -> usize {
    PARKED.load(Ordering::Relaxed)
}

/// The serving loop parked `parked` more requests and answered or dropped
/// `unparked`.
pub(crate) fn count_parked(parked: usize, unparked: usize) {
    PARKED.fetch_add(parked, Ordering::Relaxed);
    PARKED.fetch_sub(unparked, Ordering::Relaxed);
}

/// Requests and bytes so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Requests made to any scheme.
    pub requests: u64,
    /// Payload bytes those requests carried to the schemes (call payloads,
    /// write and dup buffers).
    pub bytes: u64,
}

impl Traffic {
    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: Traffic) -> Traffic {
        Traffic {
            requests: self.requests - earlier.requests,
            bytes: self.bytes - earlier.bytes,
        }
    }
}

/// The counters now.
pub fn traffic() -> Traffic {
    Traffic {
        requests: REQUESTS.load(Ordering::Relaxed),
        bytes: BYTES.load(Ordering::Relaxed),
    }
}

/// Counts one request carrying `bytes`.
pub(crate) fn count(bytes: usize) {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
}
