//! `scheme:virtio-gpu`, the daemon's private scheme (drmd and debuggers).
//!
//! Today it serves `stats`, a text snapshot of the device's negotiated
//! features, capsets, queue counters and fence progress; the raw command
//! interface, the trace and the object table come with their issues.

use std::collections::HashMap;
use std::fmt::Write;

use scheme_seam::{Context, Errno, HandleId, Opened, Result, Scheme};

use crate::device::Gpu;
use crate::fence::Timeline;
use crate::transport::Transport;

/// What a handle is open on.
#[derive(Debug)]
enum Node {
    /// `stats`: counters as text, read from offset 0 each time.
    Stats,
}

/// The scheme over one device.
pub struct GpuScheme<T: Transport> {
    gpu: Gpu<T>,
    handles: HashMap<HandleId, Node>,
    next: HandleId,
}

impl<T: Transport> GpuScheme<T> {
    /// Serves `gpu`.
    pub fn new(gpu: Gpu<T>) -> Self {
        GpuScheme {
            gpu,
            handles: HashMap::new(),
            next: 0,
        }
    }

    fn stats(&self) -> String {
        let gpu = &self.gpu;
        let stats = gpu.stats();
        let mut s = String::new();
        let _ = writeln!(s, "features {:?}", gpu.features());
        let _ = writeln!(s, "scanouts {}", gpu.config().num_scanouts.get());
        for c in gpu.capsets() {
            let _ = writeln!(
                s,
                "capset {} version {} size {}",
                c.id.get(),
                c.max_version,
                c.max_size
            );
        }
        for (name, q) in [("ctrl", stats.ctrl), ("cursor", stats.cursor)] {
            let _ = writeln!(
                s,
                "{name} submitted {} completed {} errors {} notifies {} bogus {}",
                q.submitted, q.completed, q.device_errors, q.notifies, q.bogus_used
            );
        }
        let _ = writeln!(s, "ring_full_waits {}", stats.ring_full_waits);
        let _ = writeln!(s, "in_flight {}", gpu.in_flight());
        let _ = writeln!(
            s,
            "fence_signaled {}",
            gpu.fences().last_signaled(Timeline::Global).get()
        );
        s
    }
}

impl<T: Transport> Scheme for GpuScheme<T> {
    fn open(&mut self, path: &str, _flags: usize, _ctx: &mut Context) -> Result<Opened> {
        let node = match path.trim_matches('/') {
            "stats" => Node::Stats,
            _ => return Err(Errno::ENOENT),
        };
        self.next += 1;
        self.handles.insert(self.next, node);
        Ok(Opened::Handle(self.next))
    }

    fn read(
        &mut self,
        id: HandleId,
        buf: &mut [u8],
        offset: u64,
        _ctx: &mut Context,
    ) -> Result<usize> {
        match self.handles.get(&id).ok_or(Errno::EBADF)? {
            Node::Stats => {
                let text = self.stats();
                let start = (offset as usize).min(text.len());
                let n = (text.len() - start).min(buf.len());
                buf[..n].copy_from_slice(&text.as_bytes()[start..start + n]);
                Ok(n)
            }
        }
    }

    fn close(&mut self, id: HandleId, _ctx: &mut Context) {
        self.handles.remove(&id);
    }
}
