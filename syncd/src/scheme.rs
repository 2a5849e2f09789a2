//! `scheme:sync`: the fence authority's scheme.
//!
//! Today a client can open the scheme root, the handle through which the
//! timeline, syncobj and sync_file calls will come; every call answers
//! ENOSYS until they exist.

use std::collections::HashSet;

use scheme_seam::{Context, Errno, HandleId, Opened, Result, Scheme};

/// The sync scheme: the set of open root handles.
#[derive(Debug, Default)]
pub struct SyncScheme {
    roots: HashSet<HandleId>,
    next: HandleId,
}

impl Scheme for SyncScheme {
    fn open(&mut self, path: &str, _flags: usize, _ctx: &mut Context) -> Result<Opened> {
        if !path.trim_matches('/').is_empty() {
            return Err(Errno::ENOENT);
        }
        self.next += 1;
        self.roots.insert(self.next);
        Ok(Opened::Handle(self.next))
    }

    fn call(
        &mut self,
        id: HandleId,
        _payload: &mut [u8],
        _metadata: &[u64],
        _ctx: &mut Context,
    ) -> Result<usize> {
        if self.roots.contains(&id) {
            Err(Errno::ENOSYS)
        } else {
            Err(Errno::EBADF)
        }
    }

    fn close(&mut self, id: HandleId, _ctx: &mut Context) {
        self.roots.remove(&id);
    }
}
