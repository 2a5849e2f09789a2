//! What a scheme keeps across its own death: descriptors it holds on the
//! scheme's behalf (its sessions with other daemons, the memory its
//! journal is in), kept in the supervisor's store beside the serving
//! side's connections, for the next instance to take back. Only a scheme
//! served under a supervisor with a store is given a [`Keeper`]
//! ([`crate::Scheme::keep`]); on a platform without one, none exists.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;

/// Names a scheme keeps are this prefix plus its own, apart from the
/// serving side's.
#[cfg(target_os = "linux")]
pub(crate) const PREFIX: &str = "scheme/";

/// The supervisor's store, as a scheme sees it.
#[derive(Debug)]
pub struct Keeper {
    #[cfg(target_os = "linux")]
    store: Arc<crate::linux::fdstore::FdStore>,
    #[cfg(not(target_os = "linux"))]
    store: Arc<std::convert::Infallible>,
    /// What the instance before this one kept and this one has not taken.
    left: BTreeMap<String, OwnedFd>,
}

impl Keeper {
    /// The scheme's side of `store`, with `held` (every name the store
    /// gave back; the scheme's are taken out).
    #[cfg(target_os = "linux")]
    pub(crate) fn new(
        store: Arc<crate::linux::fdstore::FdStore>,
        held: &mut BTreeMap<String, OwnedFd>,
    ) -> Keeper {
        let names: Vec<String> = held
            .keys()
            .filter(|n| n.starts_with(PREFIX))
            .cloned()
            .collect();
        let left = names
            .into_iter()
            .filter_map(|n| {
                let fd = held.remove(&n)?;
                Some((n[PREFIX.len()..].to_string(), fd))
            })
            .collect();
        Keeper { store, left }
    }

    /// Keeps `fd` under `name` (replacing what the name held) until
    /// [`Keeper::forget`]. Asynchronous: the store does not answer, so the
    /// hot path pays one send.
    pub fn keep(&self, name: &str, fd: BorrowedFd<'_>) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        return self.store.store(&format!("{PREFIX}{name}"), fd);
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (name, fd);
            match *self.store {}
        }
    }

    /// Closes what `name` holds in the store.
    pub fn forget(&self, name: &str) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        return self.store.remove(&format!("{PREFIX}{name}"));
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            match *self.store {}
        }
    }

    /// Keeps the memory of `region` under `name` (see [`Keeper::keep`]).
    pub fn keep_region(&self, name: &str, region: &crate::ShmRegion) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        return self.keep(name, region.fd());
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (name, region);
            match *self.store {}
        }
    }

    /// The memory the instance before this one kept under `name`, mapped
    /// whole and writable (see [`Keeper::take`]).
    pub fn take_region(&mut self, name: &str) -> io::Result<Option<crate::ShmRegion>> {
        let Some(fd) = self.take(name) else {
            return Ok(None);
        };
        #[cfg(target_os = "linux")]
        {
            let len = std::fs::File::from(fd.try_clone()?).metadata()?.len();
            let len = usize::try_from(len).map_err(|_| io::ErrorKind::InvalidData)?;
            crate::ShmRegion::map(fd, 0, len, true).map(Some)
        }
        #[cfg(not(target_os = "linux"))]
        {
            drop(fd);
            match *self.store {}
        }
    }

    /// What the instance before this one kept under `name`, taken (it
    /// stays in the store).
    pub fn take(&mut self, name: &str) -> Option<OwnedFd> {
        self.left.remove(name)
    }

    /// Forgets every name left that nothing took: what an instance kept
    /// for a handle that did not come back.
    pub fn forget_left(&mut self) {
        for name in std::mem::take(&mut self.left).into_keys() {
            if let Err(e) = self.forget(&name) {
                log::warn!("fd store: {e}");
            }
        }
    }
}
