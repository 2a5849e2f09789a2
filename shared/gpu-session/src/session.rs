//! The client side of `scheme:virtio-gpu` sessions (drmd, tests, tools).

use std::io;

use scheme_seam::{SchemeFd, ShmRegion};
use zerocopy::{FromBytes, IntoBytes};

use crate::api::{self, QueueHeader, QueueReply};

/// A session with the device daemon.
#[derive(Debug)]
pub struct Session {
    fd: SchemeFd,
}

impl Session {
    /// Opens a session serving this process's own user.
    pub fn open() -> io::Result<Session> {
        let path = format!("/scheme/{}/{}", api::SCHEME, api::SESSION_PATH);
        Ok(Session {
            fd: SchemeFd::open(&path, 0)?,
        })
    }

    /// Opens a session serving the clients of user `uid` (drmd's session
    /// for a DRM file): its memory is that user's, under that user's quota.
    pub fn open_for(uid: u32) -> io::Result<Session> {
        let path = format!("/scheme/{}/{}/{uid}", api::SCHEME, api::SESSION_PATH);
        Ok(Session {
            fd: SchemeFd::open(&path, 0)?,
        })
    }

    /// Takes back a session an earlier instance of this program kept
    /// (`fd`, its connection), with the replies to queue requests it sent
    /// and did not read, oldest first (see [`SchemeFd::resume`]).
    pub fn resume(fd: std::os::fd::OwnedFd) -> io::Result<(Session, Vec<QueueReply>)> {
        let (fd, stale) = SchemeFd::resume(fd, 0)?;
        let replies = stale
            .into_iter()
            .filter_map(|r| {
                QueueReply::read_from_prefix(&r.ok()?.1)
                    .ok()
                    .map(|(q, _)| q)
            })
            .collect();
        Ok((Session { fd }, replies))
    }

    /// Tells the daemon this session was taken back ([`api::TAKEN_OVER`]),
    /// its client gone (`vanished`) or not; the objects it holds.
    pub fn taken_over(&self, vanished: bool) -> io::Result<usize> {
        let mut payload = u32::from(vanished).to_le_bytes();
        self.fd.call(&mut payload, &[api::TAKEN_OVER])
    }

    /// Tells the daemon a restart is done, after `micros` ([`api::RESTARTED`]).
    pub fn restarted(&self, micros: u64) -> io::Result<()> {
        self.fd
            .call(&mut micros.to_le_bytes(), &[api::RESTARTED])
            .map(drop)
    }

    /// The session's connection, to keep across a restart of this program.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.fd)
    }

    /// Places a raw request (header first) with `QUEUE_*` flags, waiting
    /// for ring room if the ring is full.
    pub fn queue(&self, request: &[u8], flags: u32) -> io::Result<QueueReply> {
        self.queue_with(request, flags, 0, false)
    }

    /// Places a raw request like [`Session::queue`], but answers EAGAIN
    /// instead of waiting when the ring lacks room for it and `reserve`
    /// more commands: the session then polls readable
    /// ([`Session::poll_fd`]) once the device frees room.
    pub fn try_queue(&self, request: &[u8], flags: u32, reserve: u32) -> io::Result<QueueReply> {
        self.queue_with(request, flags, reserve, true)
    }

    fn queue_with(
        &self,
        request: &[u8],
        flags: u32,
        reserve: u32,
        nonblock: bool,
    ) -> io::Result<QueueReply> {
        let mut payload = QueueHeader { flags, reserve }.as_bytes().to_vec();
        payload.extend_from_slice(request);
        // The reply is written over the payload's start.
        let min = size_of::<QueueReply>();
        if payload.len() < min {
            payload.resize(min, 0);
        }
        match nonblock {
            true => self.fd.try_call(&mut payload, &[api::QUEUE])?,
            false => self.fd.call(&mut payload, &[api::QUEUE])?,
        };
        let (reply, _) =
            QueueReply::read_from_prefix(&payload).map_err(|_| io::ErrorKind::InvalidData)?;
        Ok(reply)
    }

    /// The descriptor that polls readable once the device frees ring room
    /// after a [`Session::try_queue`] (of any session) was refused.
    pub fn poll_fd(&self) -> io::Result<std::os::fd::BorrowedFd<'_>> {
        self.fd.poll_fd()
    }

    /// Clears the readiness [`Session::poll_fd`] reported.
    pub fn acknowledge(&self) -> io::Result<()> {
        self.fd.read(&mut []).map(drop)
    }

    /// Waits for a ticket's answer, of the length its QUEUE reply gave.
    pub fn wait(&self, queued: &QueueReply) -> io::Result<Vec<u8>> {
        let ticket = queued.ticket;
        let len = usize::try_from(queued.answer_len).map_err(|_| io::ErrorKind::InvalidData)?;
        let mut payload = vec![0u8; len.max(8)];
        payload[..8].copy_from_slice(&ticket.to_le_bytes());
        let n = self.fd.call(&mut payload, &[api::WAIT])?;
        payload.truncate(n);
        Ok(payload)
    }

    /// Places a request and waits for its answer.
    pub fn call(&self, request: &[u8], flags: u32) -> io::Result<(QueueReply, Vec<u8>)> {
        let reply = self.queue(request, flags)?;
        let answer = self.wait(&reply)?;
        Ok((reply, answer))
    }

    /// Allocates `len` bytes of DMA memory; returns its device address and
    /// the offset to map it at.
    pub fn alloc(&self, len: u64) -> io::Result<(u64, u64)> {
        let mut payload = [0u8; 16];
        payload[..8].copy_from_slice(&len.to_le_bytes());
        self.fd.call(&mut payload, &[api::ALLOC])?;
        let word = |i: usize| u64::from_le_bytes(payload[i..i + 8].try_into().expect("8 bytes"));
        Ok((word(0), word(8)))
    }

    /// Frees memory from [`Session::alloc`].
    pub fn free(&self, addr: u64) -> io::Result<()> {
        self.fd
            .call(&mut addr.to_le_bytes(), &[api::FREE])
            .map(drop)
    }

    /// Maps `len` bytes of allocated memory at `offset` (from `alloc`).
    pub fn map(&self, offset: u64, len: usize) -> io::Result<ShmRegion> {
        self.fd.mmap(offset, len, true)
    }

    /// What the device negotiated, and its capsets.
    pub fn info(&self) -> io::Result<(api::DeviceInfo, Vec<api::CapsetEntry>)> {
        let mut payload = vec![0u8; 16 + 16 * 64];
        let n = self.fd.call(&mut payload, &[api::INFO])?;
        let bad = || io::Error::from(io::ErrorKind::InvalidData);
        let (info, rest) = api::DeviceInfo::read_from_prefix(&payload[..n]).map_err(|_| bad())?;
        let capsets = rest
            .chunks_exact(16)
            .take(info.num_capsets as usize)
            .filter_map(|c| api::CapsetEntry::read_from_bytes(c).ok())
            .collect();
        Ok((info, capsets))
    }

    /// Each scanout's display (see [`api::DISPLAYS`]).
    pub fn displays(&self) -> io::Result<Vec<api::DisplayEntry>> {
        let size = size_of::<api::DisplayEntry>();
        // VIRTIO_GPU_MAX_SCANOUTS: no device has more.
        let mut payload = vec![0u8; size * 16];
        let n = self.fd.call(&mut payload, &[api::DISPLAYS])?;
        Ok(payload[..n.min(payload.len())]
            .chunks_exact(size)
            .filter_map(|c| api::DisplayEntry::read_from_bytes(c).ok())
            .collect())
    }

    /// Scanout `scanout`'s EDID, empty when the device gives none (see
    /// [`api::EDID`]).
    pub fn edid(&self, scanout: u32) -> io::Result<Vec<u8>> {
        // The most GET_EDID answers with.
        let mut payload = vec![0u8; 1024];
        payload[..4].copy_from_slice(&scanout.to_le_bytes());
        let n = self.fd.call(&mut payload, &[api::EDID])?;
        payload.truncate(n);
        Ok(payload)
    }

    /// A capset's data (up to `max_size` bytes).
    pub fn capset(&self, id: u32, version: u32, max_size: usize) -> io::Result<Vec<u8>> {
        let mut payload = vec![0u8; max_size.max(8)];
        payload[..4].copy_from_slice(&id.to_le_bytes());
        payload[4..8].copy_from_slice(&version.to_le_bytes());
        let n = self.fd.call(&mut payload, &[api::CAPSET])?;
        payload.truncate(n.min(max_size));
        Ok(payload)
    }

    /// A token with which another session can adopt resource `res`.
    pub fn share(&self, res: u32) -> io::Result<u64> {
        let mut payload = u64::from(res).to_le_bytes();
        self.fd.call(&mut payload, &[api::SHARE])?;
        Ok(u64::from_le_bytes(payload))
    }

    /// Holds the resource `token` names; returns its id.
    pub fn adopt(&self, token: u64) -> io::Result<u32> {
        Ok(self.fd.call(&mut token.to_le_bytes(), &[api::ADOPT])? as u32)
    }

    /// Lets go of resource `res` (the last holder's release unrefs it and
    /// frees its backing).
    pub fn release(&self, res: u32) -> io::Result<()> {
        self.fd
            .call(&mut u64::from(res).to_le_bytes(), &[api::RELEASE])
            .map(drop)
    }

    /// The syncd timeline carrying device fences.
    pub fn timeline(&self) -> io::Result<u32> {
        Ok(self.fd.call(&mut [], &[api::TIMELINE])? as u32)
    }
}
