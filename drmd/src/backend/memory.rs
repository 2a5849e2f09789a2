//! An in-memory device: what the ioctl handlers' unit tests and the
//! `drm_handlers` fuzz target run them on. It assigns ids, stamps fences,
//! keeps allocations and holds as virtio-gpud would, records every command
//! placed on its ring, and can be made to have no room. It has no syncd:
//! its timeline call fails (ENODEV), so fences it stamps are never waited
//! on through it.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};

use gpu_session::api::{CapsetEntry, DeviceInfo, DisplayEntry, QueueReply, QUEUE_FENCED};
use scheme_seam::{Errno, ShmRegion};
use virtio_gpu_proto::{CommandType, Features, ResourceField, Wire};

use super::DeviceSession;

/// What the device holds, shared by all its sessions.
#[derive(Debug, Default)]
struct State {
    features: u64,
    capsets: Vec<CapsetEntry>,
    /// Commands the ring takes before it is full (None: no limit).
    room: Option<u32>,
    /// Commands placed: type and `QUEUE_*` flags.
    placed: Vec<(CommandType, u32)>,
    /// Blocking QUEUEs made while the ring was full.
    waited: u32,
    next_id: u32,
    next_fence: u64,
    next_addr: u64,
    /// Allocations by address (their lengths), and resources by id (their
    /// holders).
    allocs: BTreeMap<u64, u64>,
    holds: BTreeMap<u32, u32>,
    /// The one scanout's display and EDID.
    display: (DisplayEntry, Vec<u8>),
}

/// An in-memory device; every clone (and every session it opens) is the
/// same device.
#[derive(Debug, Clone)]
pub struct MemoryDevice(Arc<Mutex<State>>);

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.0)
}

impl MemoryDevice {
    /// A device with `features` and one capset (VIRGL2, version 2, 16 bytes).
    pub fn new(features: Features) -> MemoryDevice {
        MemoryDevice(Arc::new(Mutex::new(State {
            features: features.bits(),
            capsets: vec![CapsetEntry {
                id: 2,
                max_version: 2,
                max_size: 16,
                pad: 0,
            }],
            next_addr: 0x1000,
            // One display connected at QEMU's default size, without EDID.
            display: (
                DisplayEntry {
                    width: 1024,
                    height: 768,
                    enabled: 1,
                    ..DisplayEntry::default()
                },
                Vec::new(),
            ),
            ..State::default()
        })))
    }

    /// The display now reports `entry` and `edid` (a hotplug or resize).
    pub fn set_display(&self, entry: DisplayEntry, edid: Vec<u8>) {
        self.state().display = (entry, edid);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding it has failed already.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets the ring take `commands` more commands (None: any number).
    pub fn set_room(&self, commands: Option<u32>) {
        self.state().room = commands;
    }

    /// The commands placed so far, in order.
    pub fn placed(&self) -> Vec<CommandType> {
        self.state().placed.iter().map(|p| p.0).collect()
    }

    /// The commands placed so far, with their `QUEUE_*` flags.
    pub fn placed_with_flags(&self) -> Vec<(CommandType, u32)> {
        self.state().placed.clone()
    }

    /// How often a blocking QUEUE met a full ring: a handler that would
    /// have waited for room after placing part of its batch.
    pub fn waited(&self) -> u32 {
        self.state().waited
    }

    /// The lengths of the allocations not freed.
    pub fn allocations(&self) -> Vec<u64> {
        self.state().allocs.values().copied().collect()
    }

    /// Every resource held, with its number of holders.
    pub fn held(&self) -> Vec<(u32, u32)> {
        self.state().holds.iter().map(|(&r, &n)| (r, n)).collect()
    }

    /// Whether anyone holds resource `res`.
    pub fn holds(&self, res: u32) -> bool {
        self.state().holds.contains_key(&res)
    }

    fn place(&self, request: &[u8], flags: u32) -> io::Result<QueueReply> {
        let wire = Wire::parse(request).map_err(|_| errno(Errno::EINVAL))?;
        let mut s = self.state();
        if let Some(room) = &mut s.room {
            *room = room.checked_sub(1).ok_or_else(|| errno(Errno::EAGAIN))?;
        }
        s.placed.push((wire.ty(), flags));
        let creates = matches!(wire.layout().resource, Some(ResourceField::Creates(_)))
            || wire.ty() == CommandType::CTX_CREATE;
        let created = if creates {
            s.next_id += 1;
            let id = s.next_id;
            s.holds.insert(id, 1);
            id
        } else {
            0
        };
        let fence = if flags & QUEUE_FENCED != 0 {
            s.next_fence += 1;
            s.next_fence
        } else {
            0
        };
        Ok(QueueReply {
            ticket: 0,
            fence,
            created: u64::from(created),
            answer_len: 24,
        })
    }
}

impl DeviceSession for MemoryDevice {
    fn open_for(&self, _uid: u32) -> io::Result<Box<dyn DeviceSession>> {
        Ok(Box::new(self.clone()))
    }
    fn info(&self) -> io::Result<(DeviceInfo, Vec<CapsetEntry>)> {
        let s = self.state();
        let info = DeviceInfo {
            features: s.features,
            num_scanouts: 1,
            num_capsets: s.capsets.len() as u32,
        };
        Ok((info, s.capsets.clone()))
    }
    fn displays(&self) -> io::Result<Vec<DisplayEntry>> {
        Ok(vec![self.state().display.0])
    }
    fn edid(&self, scanout: u32) -> io::Result<Vec<u8>> {
        match scanout {
            0 => Ok(self.state().display.1.clone()),
            _ => Err(errno(Errno::ENOENT)),
        }
    }
    fn capset(&self, id: u32, _version: u32, max_size: usize) -> io::Result<Vec<u8>> {
        Ok(vec![id as u8; max_size])
    }
    fn timeline(&self) -> io::Result<u32> {
        Err(errno(Errno::ENODEV))
    }
    fn alloc(&self, len: u64) -> io::Result<(u64, u64)> {
        let mut s = self.state();
        let addr = s.next_addr;
        s.next_addr += len.next_multiple_of(4096);
        s.allocs.insert(addr, len);
        Ok((addr, addr))
    }
    fn free(&self, addr: u64) -> io::Result<()> {
        let freed = self.state().allocs.remove(&addr);
        freed.map(drop).ok_or_else(|| errno(Errno::ENOENT))
    }
    fn map(&self, _offset: u64, len: usize) -> io::Result<ShmRegion> {
        ShmRegion::new("memory-device", len)
    }
    fn queue(&self, request: &[u8], flags: u32) -> io::Result<QueueReply> {
        self.place(request, flags)
            .inspect_err(|_| self.state().waited += 1)
    }
    fn try_queue(&self, request: &[u8], flags: u32, reserve: u32) -> io::Result<QueueReply> {
        let room = self.state().room;
        if room.is_some_and(|r| r < 1 + reserve) {
            return Err(errno(Errno::EAGAIN));
        }
        self.place(request, flags)
    }
    fn share(&self, res: u32) -> io::Result<u64> {
        Ok(u64::from(res) << 32)
    }
    fn adopt(&self, token: u64) -> io::Result<u32> {
        let res = (token >> 32) as u32;
        *self.state().holds.entry(res).or_default() += 1;
        Ok(res)
    }
    fn release(&self, res: u32) -> io::Result<()> {
        let mut s = self.state();
        let holders = s.holds.get_mut(&res).ok_or_else(|| errno(Errno::ENOENT))?;
        *holders -= 1;
        if *holders == 0 {
            s.holds.remove(&res);
        }
        Ok(())
    }
    fn room_fd(&self) -> io::Result<RawFd> {
        Err(errno(Errno::ENODEV))
    }
    fn acknowledge_room(&self) -> io::Result<()> {
        Ok(())
    }
    fn keep_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }
    fn taken_over(&self, _vanished: bool) -> io::Result<usize> {
        Ok(0)
    }
    fn restarted(&self, _micros: u64) -> io::Result<()> {
        Ok(())
    }
}
