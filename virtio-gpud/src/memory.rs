//! Session memory: DMA regions shared by the sessions of one *domain* (the
//! user a session serves), sub-allocated, with a quota per domain.
//!
//! The backend maps at most 32 regions, so a region per session capped the
//! device at 31 clients. Sessions of one domain now sub-allocate from a few
//! regions of their own; through the API a session still reaches only its
//! own allocations (the object table checks every address it names, and
//! mmap maps only an allocation of its own). Domains do not share regions:
//! on Linux a region's memfd is the unit a peer can map, and processes of
//! one user can already read each other's memory there (ptrace), while
//! another user's cannot be reached through a region handed to this one.
//! A domain's regions are withdrawn from the device once nothing is
//! allocated in them and no session of it is open.

use std::collections::HashMap;

use scheme_seam::Errno;

use crate::device::Gpu;
use crate::dma::{DmaBuf, DmaPool};
use crate::resource::PAGE_SIZE;
use crate::transport::Transport;

/// Who a session's memory belongs to: the uid of the client it serves.
pub type Domain = u32;

/// Bytes of each region (sparse until touched).
pub const REGION_LEN: usize = 256 << 20;

/// What one domain may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Sessions open at once (EMFILE beyond).
    pub sessions: usize,
    /// Bytes allocated at once (ENOMEM beyond).
    pub bytes: usize,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            sessions: 512,
            bytes: 1 << 30,
        }
    }
}

#[derive(Debug, Default)]
struct DomainMemory {
    pools: Vec<DmaPool>,
    sessions: usize,
}

impl DomainMemory {
    fn used(&self) -> usize {
        self.pools
            .iter()
            .map(|p| p.region().len() - p.free_bytes())
            .sum()
    }
}

/// Every domain's regions.
#[derive(Debug, Default)]
pub struct Memory {
    domains: HashMap<Domain, DomainMemory>,
    quota: Quota,
}

impl Memory {
    /// Memory under `quota` per domain.
    pub fn new(quota: Quota) -> Self {
        Memory {
            domains: HashMap::new(),
            quota,
        }
    }

    /// A session of `domain` opens (EMFILE over the quota).
    pub fn open_session(&mut self, domain: Domain) -> Result<(), Errno> {
        let d = self.domains.entry(domain).or_default();
        if d.sessions >= self.quota.sessions {
            return Err(Errno::EMFILE);
        }
        d.sessions += 1;
        Ok(())
    }

    /// A session of `domain` closed.
    pub fn close_session(&mut self, domain: Domain) {
        if let Some(d) = self.domains.get_mut(&domain) {
            d.sessions = d.sessions.saturating_sub(1);
        }
    }

    /// `len` bytes (rounded to pages) for a session of `domain`: from one
    /// of its regions, or a new one. ENOMEM over the quota, beyond a
    /// region, or when the device has no region left to give.
    pub fn alloc<T: Transport>(
        &mut self,
        gpu: &mut Gpu<T>,
        domain: Domain,
        len: usize,
    ) -> Result<DmaBuf, Errno> {
        let len = len
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(Errno::ENOMEM)?;
        if len > REGION_LEN {
            return Err(Errno::ENOMEM);
        }
        let d = self.domains.entry(domain).or_default();
        if d.used() + len > self.quota.bytes {
            return Err(Errno::ENOMEM);
        }
        if let Some(buf) = d.pools.iter().find_map(|p| p.alloc(len, PAGE_SIZE).ok()) {
            return Ok(buf);
        }
        let pool = gpu.new_pool(REGION_LEN).map_err(|e| {
            log::warn!("memory for domain {domain}: {e}");
            Errno::ENOMEM
        })?;
        let buf = pool.alloc(len, PAGE_SIZE).map_err(|_| Errno::ENOMEM)?;
        d.pools.push(pool);
        Ok(buf)
    }

    /// Withdraws the regions of domains with no session and nothing
    /// allocated: nothing of theirs is attached to a resource or read by a
    /// command in flight (those hold their allocations until done).
    pub fn withdraw_idle<T: Transport>(&mut self, gpu: &mut Gpu<T>) {
        let idle: Vec<Domain> = self
            .domains
            .iter()
            .filter(|(_, d)| d.sessions == 0 && d.used() == 0)
            .map(|(&domain, _)| domain)
            .collect();
        for domain in idle {
            let d = self.domains.remove(&domain).expect("listed");
            for pool in d.pools {
                if let Err(e) = gpu.release_pool(pool) {
                    log::warn!("withdrawing domain {domain}'s memory: {e}");
                }
            }
        }
    }

    /// Regions the device has now.
    pub fn regions(&self) -> usize {
        self.domains.values().map(|d| d.pools.len()).sum()
    }

    /// Bytes allocated now, over every domain.
    pub fn used(&self) -> usize {
        self.domains.values().map(DomainMemory::used).sum()
    }
}
