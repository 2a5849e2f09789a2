//! What serving each ioctl costs, counted: calls, hops (the client's
//! request plus every request drmd makes of virtio-gpud or syncd while
//! serving it, from the seam's traffic counters), bytes the client sent,
//! bytes drmd sent on, and bytes drmd copied itself (a command stream into
//! the arena). Served as text by `/scheme/drm/stats`, one line per ioctl
//! type: `ioctl <NAME> calls <n> hops <n> bytes_in <n> bytes_out <n>
//! copied <n>`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use scheme_seam::metrics::Traffic;

/// Sums for one ioctl type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counter {
    calls: u64,
    hops: u64,
    bytes_in: u64,
    bytes_out: u64,
    copied: u64,
}

/// Which request a count is for: an ioctl's call, or the `dup` that
/// completes an fd-returning one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// The ioctl call with this nr.
    Call(u64),
    /// The `dup` returning the fd of the ioctl with this nr.
    Fd(u64),
}

/// The counters of every ioctl type served so far.
#[derive(Debug, Default)]
pub struct IoctlStats {
    by_op: BTreeMap<Op, Counter>,
}

impl IoctlStats {
    /// Counts one request: `bytes_in` from the client, `downstream` what
    /// serving it asked of other daemons, `copied` bytes drmd copied.
    pub fn record(&mut self, op: Op, bytes_in: usize, downstream: Traffic, copied: u64) {
        let c = self.by_op.entry(op).or_default();
        c.calls += 1;
        c.hops += 1 + downstream.requests;
        c.bytes_in += bytes_in as u64;
        c.bytes_out += downstream.bytes;
        c.copied += copied;
    }

    /// The counters as text.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (op, c) in &self.by_op {
            let name = match *op {
                Op::Call(nr) => name(nr),
                Op::Fd(nr) => format!("{}_FD", name(nr)),
            };
            let _ = writeln!(
                s,
                "ioctl {name} calls {} hops {} bytes_in {} bytes_out {} copied {}",
                c.calls, c.hops, c.bytes_in, c.bytes_out, c.copied
            );
        }
        s
    }
}

/// The ioctl's name as Linux's headers spell it (without `DRM_IOCTL_`),
/// from the table.
fn name(nr: u64) -> String {
    crate::ioctl::table::entry(nr).map_or_else(|| format!("{nr:#04x}"), |e| e.name.to_string())
}

#[cfg(test)]
mod tests {
    use drm_uapi::virtgpu as vg;

    use super::*;

    #[test]
    fn counts_add_up_per_type() {
        let mut s = IoctlStats::default();
        let down = Traffic {
            requests: 2,
            bytes: 40,
        };
        s.record(Op::Call(vg::EXECBUFFER), 100, down, 64);
        s.record(Op::Call(vg::EXECBUFFER), 100, down, 64);
        s.record(Op::Fd(vg::EXECBUFFER), 16, Traffic::default(), 0);
        assert_eq!(
            s.describe(),
            "ioctl VIRTGPU_EXECBUFFER calls 2 hops 6 bytes_in 200 bytes_out 80 copied 128\n\
             ioctl VIRTGPU_EXECBUFFER_FD calls 1 hops 1 bytes_in 16 bytes_out 0 copied 0\n"
        );
    }
}
