//! DRM master and authentication, as Linux's drm_auth.c has them.
//!
//! - The primary file opened while no file is master becomes master (and
//!   authenticated); a file opened while there is one belongs to that
//!   master, whose magic numbers it can be authenticated with.
//! - SET_MASTER: only a file that was master before, used by the process
//!   that opened it, or root (EACCES otherwise); 0 if it already is; EBUSY
//!   while another file is; a file becoming master afresh gets a master of
//!   its own (a new set of magic numbers).
//! - DROP_MASTER: the same permission; EINVAL unless it is master.
//! - GET_MAGIC: the lowest free number (from 1) in the file's master, the
//!   same one on every call; AUTH_MAGIC (master only) authenticates the file
//!   holding it and consumes it: unknown, used or another master's numbers
//!   are EINVAL.
//!
//! Root means root when the file was opened: on Redox a call's uid is only
//! valid at open (see `scheme_seam::Caller`).

use std::collections::HashMap;

use scheme_seam::{Errno, HandleId, Result};
use serde::{Deserialize, Serialize};

/// One master's identity: the magic numbers of the files belonging to it.
type MasterId = u64;

/// What a primary file is to the master logic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Primary {
    /// The master it belongs to (its own once it became master).
    master: MasterId,
    /// Whether it was ever master (SET_MASTER needs it, or root).
    was_master: bool,
    authenticated: bool,
    /// Its magic number, once asked for.
    magic: Option<u32>,
    /// Whether AUTH_MAGIC consumed the number (it stays the file's).
    magic_used: bool,
    /// The process that opened it.
    opener: u32,
    root: bool,
}

/// The device's master and its primary files (journaled whole: a
/// restarted instance has the same master and authentications).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Masters {
    /// The file that is master now.
    current: Option<HandleId>,
    /// The master of the current master file (what new opens belong to).
    current_master: Option<MasterId>,
    next_master: MasterId,
    files: HashMap<HandleId, Primary>,
    /// Masters whose SET_VERSION (interface 1.1 or later) gave them the
    /// device's bus id, which GET_UNIQUE then answers.
    with_busid: Vec<MasterId>,
}

/// The bus id SET_VERSION 1.1 sets: the PCI function QEMU places
/// virtio-gpu-pci at (the one the Linux shim's sysfs shows).
pub const BUSID: &str = "pci:0000:00:02.0";

impl Masters {
    /// A primary file `file` opened by process `opener` (root or not).
    pub fn open(&mut self, file: HandleId, opener: u32, root: bool) {
        let mut primary = Primary {
            master: 0,
            was_master: false,
            authenticated: root,
            magic: None,
            magic_used: false,
            opener,
            root,
        };
        match self.current_master {
            Some(m) if self.current.is_some() => primary.master = m,
            _ => {
                self.files.insert(file, primary);
                self.become_master(file, true);
                return;
            }
        }
        self.files.insert(file, primary);
    }

    fn become_master(&mut self, file: HandleId, fresh: bool) {
        let primary = self.files.get_mut(&file).expect("a primary file");
        if fresh {
            self.next_master += 1;
            primary.master = self.next_master;
        }
        primary.was_master = true;
        primary.authenticated = true;
        self.current = Some(file);
        self.current_master = Some(primary.master);
    }

    /// Forgets a closed file; the master's close leaves the device without
    /// one, so the next primary open becomes master.
    pub fn close(&mut self, file: HandleId) {
        self.files.remove(&file);
        if self.current == Some(file) {
            self.current = None;
        }
    }

    /// The primary files it knows.
    pub fn files(&self) -> Vec<HandleId> {
        self.files.keys().copied().collect()
    }

    /// Whether `file` is the current master.
    pub fn is_master(&self, file: HandleId) -> bool {
        self.current == Some(file)
    }

    /// Whether `file` is authenticated (render files need not be).
    pub fn authenticated(&self, file: HandleId) -> bool {
        self.files.get(&file).is_some_and(|p| p.authenticated)
    }

    fn check_perm(&self, file: HandleId, caller: u32) -> Result<()> {
        let p = self.files.get(&file).ok_or(Errno::EACCES)?;
        if (p.was_master && p.opener == caller) || p.root {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// SET_MASTER by process `caller` on `file`.
    pub fn set_master(&mut self, file: HandleId, caller: u32) -> Result<()> {
        self.check_perm(file, caller)?;
        if self.is_master(file) {
            return Ok(());
        }
        if self.current.is_some() {
            return Err(Errno::EBUSY);
        }
        // A file that was not master a moment ago gets a master of its own,
        // as drm_new_set_master makes one.
        self.become_master(file, true);
        Ok(())
    }

    /// DROP_MASTER by process `caller` on `file`.
    pub fn drop_master(&mut self, file: HandleId, caller: u32) -> Result<()> {
        self.check_perm(file, caller)?;
        if !self.is_master(file) {
            return Err(Errno::EINVAL);
        }
        self.current = None;
        Ok(())
    }

    /// The bus id GET_UNIQUE answers `file` (empty until its master's
    /// SET_VERSION asked for interface 1.1 or later).
    pub fn unique(&self, file: HandleId) -> &'static str {
        match self.files.get(&file) {
            Some(p) if self.with_busid.contains(&p.master) => BUSID,
            _ => "",
        }
    }

    /// SET_VERSION by the master `file` asked for interface 1.1 or later.
    pub fn set_busid(&mut self, file: HandleId) {
        if let Some(p) = self.files.get(&file) {
            if !self.with_busid.contains(&p.master) {
                self.with_busid.push(p.master);
            }
        }
    }

    /// GET_MAGIC: `file`'s magic number.
    pub fn magic(&mut self, file: HandleId) -> Result<u32> {
        let master = self.files.get(&file).ok_or(Errno::EINVAL)?.master;
        if let Some(m) = self.files[&file].magic {
            return Ok(m);
        }
        let taken: Vec<u32> = self
            .files
            .values()
            .filter(|p| p.master == master)
            .filter_map(|p| p.magic)
            .collect();
        let magic = (1..=u32::MAX)
            .find(|m| !taken.contains(m))
            .ok_or(Errno::ENOSPC)?;
        self.files.get_mut(&file).expect("checked").magic = Some(magic);
        Ok(magic)
    }

    /// AUTH_MAGIC by the master `file`: authenticates the file of its
    /// master holding `magic`, and consumes the number.
    pub fn auth_magic(&mut self, file: HandleId, magic: u32) -> Result<()> {
        let master = self.files.get(&file).ok_or(Errno::EINVAL)?.master;
        let holder = self
            .files
            .values_mut()
            .find(|p| p.master == master && p.magic == Some(magic) && !p.magic_used)
            .ok_or(Errno::EINVAL)?;
        holder.authenticated = true;
        // GET_MAGIC keeps answering it, but it authenticates no one again.
        holder.magic_used = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_primary_open_is_master_and_the_next_after_it_closes() {
        let mut m = Masters::default();
        m.open(1, 100, false);
        m.open(2, 200, false);
        assert!(m.is_master(1) && !m.is_master(2));
        assert!(m.authenticated(1) && !m.authenticated(2));
        // Another process's file may not take over, even once free.
        assert_eq!(m.set_master(2, 200), Err(Errno::EACCES));
        m.close(1);
        assert_eq!(m.set_master(2, 200), Err(Errno::EACCES));
        m.open(3, 300, false);
        assert!(m.is_master(3));
    }

    #[test]
    fn set_and_drop_master_follow_linux() {
        let mut m = Masters::default();
        m.open(1, 100, false);
        assert_eq!(m.set_master(1, 100), Ok(()));
        assert_eq!(m.set_master(1, 999), Err(Errno::EACCES), "another process");
        m.open(2, 200, true);
        assert_eq!(m.set_master(2, 200), Err(Errno::EBUSY), "root, but taken");
        assert_eq!(m.drop_master(2, 200), Err(Errno::EINVAL), "not master");
        assert_eq!(m.drop_master(1, 100), Ok(()));
        assert_eq!(m.drop_master(1, 100), Err(Errno::EINVAL));
        assert_eq!(m.set_master(2, 200), Ok(()));
        assert_eq!(m.set_master(1, 100), Err(Errno::EBUSY));
    }

    #[test]
    fn magics_authenticate_once_and_only_within_their_master() {
        let mut m = Masters::default();
        m.open(1, 100, false);
        m.open(2, 200, false);
        let magic = m.magic(2).unwrap();
        assert_eq!(magic, 1);
        assert_eq!(m.magic(2), Ok(1), "the same number again");
        assert_eq!(m.auth_magic(1, 0), Err(Errno::EINVAL));
        assert_eq!(m.auth_magic(1, 7), Err(Errno::EINVAL));
        assert_eq!(m.auth_magic(1, magic), Ok(()));
        assert!(m.authenticated(2));
        assert_eq!(m.auth_magic(1, magic), Err(Errno::EINVAL), "consumed");
        assert_eq!(m.magic(2), Ok(1), "still its number");
        // A file of an earlier master cannot be authenticated by a new one.
        m.open(3, 300, false);
        let old = m.magic(3).unwrap();
        m.close(1);
        m.open(4, 400, false);
        assert!(m.is_master(4));
        assert_eq!(m.auth_magic(4, old), Err(Errno::EINVAL));
    }
}
