//! The client side of `scheme:sync`: what drmd, virtio-gpud, the tests and
//! the ioctl shims use. Every call is the wire encoding a Redox client's
//! relibc sends, so these types also pin that encoding down.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use drm_uapi::sync_file::{self, FenceInfo, FileInfoHeader, Merge};
use drm_uapi::syncobj::{
    self as so, Array, Create, Destroy, FdToHandle, HandleToFd, TimelineArray, Transfer, WaitHeader,
};
use drm_uapi::wire::Builder;
use scheme_seam::{SchemeFd, ShmRegion};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

use crate::api;

fn path(rest: &str) -> String {
    format!("/scheme/{}/{rest}", api::SCHEME)
}

/// The token naming `fd`'s handle in another handle's request.
fn token(fd: &SchemeFd) -> io::Result<u64> {
    let mut out = [0u8; 8];
    fd.call(&mut out, &[api::TOKEN])?;
    Ok(u64::from_le_bytes(out))
}

/// The owner of a timeline: the one who signals it. Dropping it abandons
/// the timeline (its pending points fail with ECANCELED).
#[derive(Debug)]
pub struct TimelineOwner {
    fd: SchemeFd,
    id: u32,
}

impl TimelineOwner {
    /// Creates a timeline named `name` (as FILE_INFO reports it).
    pub fn create(name: &str) -> io::Result<TimelineOwner> {
        let fd = SchemeFd::open(&path(&format!("{}{name}", api::TIMELINE_PATH)), 0)?;
        let id = fd.call(&mut [], &[api::TIMELINE_ID])? as u32;
        Ok(TimelineOwner { fd, id })
    }

    /// The timeline's id, by which fences on it are named.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Takes back a timeline an earlier instance of this program kept
    /// (`fd`); a signal it sent and did not see answered is sent again by
    /// whoever signals next (signalling is idempotent).
    pub fn resume(fd: OwnedFd) -> io::Result<TimelineOwner> {
        let fd = SchemeFd::resume(fd, 0)?.0;
        let id = fd.call(&mut [], &[api::TIMELINE_ID])? as u32;
        Ok(TimelineOwner { fd, id })
    }

    /// The timeline's connection, to keep across a restart of this program.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.fd)
    }

    /// Signals every point up to `point`.
    pub fn signal(&self, point: u64) -> io::Result<()> {
        self.fd
            .call(&mut point.to_le_bytes(), &[api::SIGNAL])
            .map(drop)
    }

    /// Marks `point` failed with `errno` (its waiters complete with it).
    pub fn fail(&self, point: u64, errno: i32) -> io::Result<()> {
        let mut payload = [0u8; 16];
        payload[..8].copy_from_slice(&point.to_le_bytes());
        payload[8..12].copy_from_slice(&errno.to_le_bytes());
        self.fd.call(&mut payload, &[api::FAIL]).map(drop)
    }
}

/// The read-only page of every timeline's last signalled point: a busy
/// check without a call; and its handle, readable once any timeline moves.
#[derive(Debug)]
pub struct TimelinePage {
    fd: SchemeFd,
    map: ShmRegion,
}

impl TimelinePage {
    /// Maps the page.
    pub fn open() -> io::Result<TimelinePage> {
        let fd = SchemeFd::open(&path(api::PAGE_PATH), 0)?;
        let map = fd.mmap(0, api::PAGE_LEN, false)?;
        Ok(TimelinePage { fd, map })
    }

    /// A descriptor that is readable while some timeline has moved since
    /// the last [`TimelinePage::acknowledge`].
    pub fn poll_fd(&self) -> io::Result<BorrowedFd<'_>> {
        self.fd.poll_fd()
    }

    /// Takes note of every move so far (the descriptor stops being
    /// readable until the next); returns the move count.
    pub fn acknowledge(&self) -> io::Result<u64> {
        let mut count = [0u8; 8];
        self.fd.read(&mut count)?;
        Ok(u64::from_le_bytes(count))
    }

    /// A sync_file of fence `point` on `timeline`, made by duplicating this
    /// handle (no new connection to syncd, unlike [`SyncFile::for_fence`]).
    pub fn sync_file(&self, timeline: u32, point: u64) -> io::Result<SyncFile> {
        let f = api::FenceRef {
            timeline,
            pad: 0,
            point,
        };
        Ok(SyncFile::from_fd(self.fd.dup(f.as_bytes())?))
    }

    /// Timeline `id`'s last signalled point, if the page has a slot for it.
    pub fn last_signaled(&self, id: u32) -> Option<u64> {
        self.slot(id, 0)
    }

    /// Timeline `id`'s highest failed point (0: none; `u64::MAX`: the
    /// timeline was abandoned), if it has a slot.
    pub fn last_failed(&self, id: u32) -> Option<u64> {
        self.slot(id, api::FAILED_AT)
    }

    fn slot(&self, id: u32, base: usize) -> Option<u64> {
        if id >= api::PAGE_SLOTS {
            return None;
        }
        let mut b = [0u8; 8];
        self.map.read_bytes(base + id as usize * 8, &mut b);
        Some(u64::from_le_bytes(b))
    }
}

/// What FILE_INFO says of a sync_file.
#[derive(Clone, Debug)]
pub struct FileInfo {
    /// 1 signalled, 0 active, negative errno on error.
    pub status: i32,
    /// Per fence: timeline name, driver name, status, signal time.
    pub fences: Vec<FenceInfo>,
}

/// A sync_file: an immutable set of fences, pollable, mergeable.
#[derive(Debug)]
pub struct SyncFile {
    fd: SchemeFd,
}

impl SyncFile {
    /// A sync_file of the one fence `point` on `timeline`.
    pub fn for_fence(timeline: u32, point: u64) -> io::Result<SyncFile> {
        let fd = SchemeFd::open(&path(&format!("{}{timeline}/{point}", api::FENCE_PATH)), 0)?;
        Ok(SyncFile { fd })
    }

    /// Wraps a sync_file descriptor received from a scheme.
    pub fn from_fd(fd: OwnedFd) -> SyncFile {
        SyncFile {
            fd: SchemeFd::from_fd(fd),
        }
    }

    /// Gives up the descriptor, to pass it on.
    pub fn into_fd(self) -> OwnedFd {
        self.fd.into_fd()
    }

    /// The handle, for raw calls.
    pub fn handle(&self) -> &SchemeFd {
        &self.fd
    }

    /// The file's capability token, which names it in another daemon's
    /// request (an EXECBUFFER in-fence) in place of its fd.
    pub fn token(&self) -> io::Result<u64> {
        token(&self.fd)
    }

    /// SYNC_IOC_MERGE: a new file with the fences of both.
    pub fn merge(&self, other: &SyncFile, name: &str) -> io::Result<SyncFile> {
        let mut m = Merge::new_zeroed();
        let n = name.len().min(31);
        m.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        m.token = token(&other.fd)?;
        Ok(SyncFile::from_fd(self.fd.dup(m.as_bytes())?))
    }

    /// SYNC_IOC_FILE_INFO with room for every fence.
    pub fn info(&self) -> io::Result<FileInfo> {
        // Ask for the count first, as libsync does.
        let mut payload = Builder::new(&FileInfoHeader::new_zeroed()).build();
        self.fd.call(&mut payload, &[sync_file::FILE_INFO])?;
        let (header, _) =
            FileInfoHeader::read_from_prefix(&payload).map_err(|_| io::ErrorKind::InvalidData)?;
        let mut ask = FileInfoHeader::new_zeroed();
        ask.num_fences = header.num_fences;
        let mut payload = Builder::new(&ask)
            .zeroed::<FenceInfo>(header.num_fences as usize)
            .build();
        self.fd.call(&mut payload, &[sync_file::FILE_INFO])?;
        let (header, rest) =
            FileInfoHeader::read_from_prefix(&payload).map_err(|_| io::ErrorKind::InvalidData)?;
        let fences = rest
            .chunks_exact(size_of::<FenceInfo>())
            .take(header.num_fences as usize)
            .filter_map(|c| FenceInfo::read_from_bytes(c).ok())
            .collect();
        Ok(FileInfo {
            status: header.status,
            fences,
        })
    }

    /// A descriptor readable once every fence has signalled.
    pub fn poll_fd(&self) -> io::Result<BorrowedFd<'_>> {
        self.fd.poll_fd()
    }

    /// Waits up to `timeout` for every fence (libsync's `sync_wait`);
    /// returns whether they signalled.
    pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
        use std::os::fd::AsRawFd;
        let mut p = libc::pollfd {
            fd: self.poll_fd()?.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n == 1 && p.revents & libc::POLLIN != 0)
    }
}

/// A table of syncobjs (what a DRM file holds), with the syncobj ioctls.
#[derive(Debug)]
pub struct SyncobjTable {
    fd: SchemeFd,
}

impl SyncobjTable {
    /// Opens a new, empty table.
    pub fn open() -> io::Result<SyncobjTable> {
        Ok(SyncobjTable {
            fd: SchemeFd::open(&path(api::SYNCOBJ_PATH), 0)?,
        })
    }

    /// Opens a new, empty table whose waits never block: one that cannot
    /// answer yet answers EAGAIN, for a daemon that parks the request
    /// itself rather than stop serving everyone else.
    pub fn open_nonblocking() -> io::Result<SyncobjTable> {
        Ok(SyncobjTable {
            fd: SchemeFd::open(&path(api::SYNCOBJ_PATH), scheme_seam::NONBLOCK)?,
        })
    }

    /// Takes back a table an earlier instance of this program kept (`fd`),
    /// non-blocking or not. Answers to its last requests are dropped: a
    /// syncobj ioctl the instance did not see answered is one its client
    /// is told to retry.
    pub fn resume(fd: OwnedFd, nonblocking: bool) -> io::Result<SyncobjTable> {
        let flags = if nonblocking {
            scheme_seam::NONBLOCK
        } else {
            0
        };
        Ok(SyncobjTable {
            fd: SchemeFd::resume(fd, flags)?.0,
        })
    }

    /// The table's connection, to keep across a restart of this program.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.fd)
    }

    /// A raw ioctl: `nr` with its wire payload.
    pub fn ioctl(&self, nr: u64, payload: &mut [u8]) -> io::Result<usize> {
        self.fd.call(payload, &[nr])
    }

    /// SYNCOBJ_CREATE.
    pub fn create(&self, signaled: bool) -> io::Result<u32> {
        let c = Create {
            handle: 0,
            flags: if signaled { so::CREATE_SIGNALED } else { 0 },
        };
        let mut payload = c.as_bytes().to_vec();
        self.ioctl(so::CREATE, &mut payload)?;
        Ok(Create::read_from_bytes(&payload)
            .map_err(|_| io::ErrorKind::InvalidData)?
            .handle)
    }

    /// SYNCOBJ_DESTROY.
    pub fn destroy(&self, handle: u32) -> io::Result<()> {
        let mut payload = Destroy { handle, pad: 0 }.as_bytes().to_vec();
        self.ioctl(so::DESTROY, &mut payload).map(drop)
    }

    /// SYNCOBJ_WAIT (`points` = None) or SYNCOBJ_TIMELINE_WAIT until the
    /// absolute CLOCK_MONOTONIC `deadline_ns`; returns `first_signaled`.
    pub fn wait(
        &self,
        handles: &[u32],
        points: Option<&[u64]>,
        deadline_ns: i64,
        flags: u32,
    ) -> io::Result<u32> {
        let header = WaitHeader {
            timeout_nsec: deadline_ns,
            count_handles: handles.len() as u32,
            flags,
            first_signaled: 0,
            pad: 0,
            deadline_nsec: 0,
        };
        let mut b = Builder::new(&header).array(handles);
        let nr = match points {
            Some(points) => {
                b = b.array(points);
                so::TIMELINE_WAIT
            }
            None => so::WAIT,
        };
        let mut payload = b.build();
        self.ioctl(nr, &mut payload)?;
        let (out, _) =
            WaitHeader::read_from_prefix(&payload).map_err(|_| io::ErrorKind::InvalidData)?;
        Ok(out.first_signaled)
    }

    fn array(&self, nr: u64, handles: &[u32]) -> io::Result<()> {
        let header = Array {
            count_handles: handles.len() as u32,
            pad: 0,
        };
        let mut payload = Builder::new(&header).array(handles).build();
        self.ioctl(nr, &mut payload).map(drop)
    }

    /// EXECBUFFER's post-dependencies in one call ([`api::SUBMIT_DEPS`],
    /// [`api::CHECK_DEPS`]):
    /// fence `point` of `timeline` into each of `outs` (handle, timeline
    /// point or 0), then `resets` reset; with `point` None, only resolves
    /// them (ENOENT for an unknown one) and changes nothing.
    pub fn submit_deps(
        &self,
        timeline: u32,
        point: Option<u64>,
        outs: &[(u32, u64)],
        resets: &[u32],
    ) -> io::Result<()> {
        let header = api::SubmitDeps {
            timeline,
            pad: 0,
            point: point.unwrap_or(0),
            count_outs: outs.len() as u32,
            count_resets: resets.len() as u32,
        };
        let outs: Vec<api::OutSyncobj> = outs
            .iter()
            .map(|&(handle, point)| api::OutSyncobj {
                handle,
                pad: 0,
                point,
            })
            .collect();
        let mut payload = Builder::new(&header).array(&outs).array(resets).build();
        let nr = match point {
            Some(_) => api::SUBMIT_DEPS,
            None => api::CHECK_DEPS,
        };
        self.ioctl(nr, &mut payload).map(drop)
    }

    /// SYNCOBJ_RESET.
    pub fn reset(&self, handles: &[u32]) -> io::Result<()> {
        self.array(so::RESET, handles)
    }

    /// SYNCOBJ_SIGNAL.
    pub fn signal(&self, handles: &[u32]) -> io::Result<()> {
        self.array(so::SIGNAL, handles)
    }

    fn timeline_array(
        &self,
        nr: u64,
        handles: &[u32],
        points: &[u64],
        flags: u32,
    ) -> io::Result<Vec<u64>> {
        let header = TimelineArray {
            count_handles: handles.len() as u32,
            flags,
        };
        let mut payload = Builder::new(&header).array(handles).array(points).build();
        self.ioctl(nr, &mut payload)?;
        let at = size_of::<TimelineArray>() + 4 * handles.len();
        Ok(payload[at..]
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }

    /// SYNCOBJ_TIMELINE_SIGNAL.
    pub fn timeline_signal(&self, handles: &[u32], points: &[u64]) -> io::Result<()> {
        self.timeline_array(so::TIMELINE_SIGNAL, handles, points, 0)
            .map(drop)
    }

    /// SYNCOBJ_QUERY: each syncobj's signalled (or, with
    /// LAST_SUBMITTED, newest) point.
    pub fn query(&self, handles: &[u32], flags: u32) -> io::Result<Vec<u64>> {
        self.timeline_array(so::QUERY, handles, &vec![0; handles.len()], flags)
    }

    /// SYNCOBJ_TRANSFER.
    pub fn transfer(
        &self,
        src: u32,
        src_point: u64,
        dst: u32,
        dst_point: u64,
        flags: u32,
    ) -> io::Result<()> {
        let t = Transfer {
            src_handle: src,
            dst_handle: dst,
            src_point,
            dst_point,
            flags,
            pad: 0,
        };
        let mut payload = t.as_bytes().to_vec();
        self.ioctl(so::TRANSFER, &mut payload).map(drop)
    }

    fn handle_to_fd(&self, handle: u32, flags: u32, point: u64) -> io::Result<OwnedFd> {
        self.forward_handle_to_fd(&HandleToFd {
            handle,
            flags,
            token: 0,
            point,
        })
    }

    /// HANDLE_TO_FD as a client sent it (a daemon forwarding the ioctl):
    /// syncd checks its flags and handle, and the fd is a sync_file or an
    /// opaque syncobj fd as the flags say.
    pub fn forward_handle_to_fd(&self, h: &HandleToFd) -> io::Result<OwnedFd> {
        self.fd.dup(h.as_bytes())
    }

    /// HANDLE_TO_FD with EXPORT_SYNC_FILE: a snapshot of the fence (at
    /// `point` on a timeline syncobj).
    pub fn export_sync_file(&self, handle: u32, point: Option<u64>) -> io::Result<SyncFile> {
        let (flags, point) = match point {
            Some(p) => (
                so::HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE | so::FLAGS_TIMELINE,
                p,
            ),
            None => (so::HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE, 0),
        };
        Ok(SyncFile::from_fd(self.handle_to_fd(handle, flags, point)?))
    }

    /// HANDLE_TO_FD: an opaque fd sharing the syncobj.
    pub fn export(&self, handle: u32) -> io::Result<SchemeFd> {
        Ok(SchemeFd::from_fd(self.handle_to_fd(handle, 0, 0)?))
    }

    fn fd_to_handle(&self, handle: u32, flags: u32, token: u64, point: u64) -> io::Result<u32> {
        let f = FdToHandle {
            handle,
            flags,
            token,
            point,
        };
        let mut payload = f.as_bytes().to_vec();
        self.ioctl(so::FD_TO_HANDLE, &mut payload)?;
        Ok(FdToHandle::read_from_bytes(&payload)
            .map_err(|_| io::ErrorKind::InvalidData)?
            .handle)
    }

    /// FD_TO_HANDLE with IMPORT_SYNC_FILE: `file`'s fence into `handle`
    /// (as timeline `point` when given).
    pub fn import_sync_file(
        &self,
        handle: u32,
        file: &SyncFile,
        point: Option<u64>,
    ) -> io::Result<()> {
        let (flags, point) = match point {
            Some(p) => (
                so::FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE | so::FLAGS_TIMELINE,
                p,
            ),
            None => (so::FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE, 0),
        };
        self.fd_to_handle(handle, flags, token(&file.fd)?, point)
            .map(drop)
    }

    /// FD_TO_HANDLE with IMPORT_SYNC_FILE, the sync_file named by its
    /// capability `token` (another process's file, as a daemon receives it).
    pub fn import_sync_file_token(&self, handle: u32, token: u64) -> io::Result<()> {
        self.fd_to_handle(handle, so::FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE, token, 0)
            .map(drop)
    }

    /// FD_TO_HANDLE: a new handle sharing an exported syncobj.
    pub fn import(&self, exported: &SchemeFd) -> io::Result<u32> {
        self.fd_to_handle(0, 0, token(exported)?, 0)
    }
}
