//! A typed client of `scheme:drm`: each ioctl encoded on the wire exactly
//! as relibc sends it ([`drm_uapi`]). Used by the demo and the tests, and
//! the reference for the Linux shim.

use std::io;
use std::os::fd::OwnedFd;

use drm_uapi::core::{self as dc, GemClose, PrimeHandle, VersionHeader};
use drm_uapi::kms as k;
use drm_uapi::virtgpu::{
    self as vg, Box3d, ExecbufferHeader, GetCapsHeader, GetParam, Map, ResourceCreate, Transfer,
    Wait,
};
use drm_uapi::wire::Builder;
use scheme_seam::{SchemeFd, ShmRegion, Stat};
use sync_client::SyncFile;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// RESOURCE_CREATE of a `w × h` RGBA8 texture to render into and sample
/// (what Mesa makes for a small render target).
pub fn render_target(w: u32, h: u32) -> ResourceCreate {
    texture_2d(
        w,
        h,
        virgl_stream::format::R8G8B8A8_UNORM,
        virgl_stream::bind::RENDER_TARGET | virgl_stream::bind::SAMPLER_VIEW,
    )
}

/// RESOURCE_CREATE of a `w × h` 2D texture of a 4-byte `format` with the
/// `bind` flags (`virgl_stream::bind`).
pub fn texture_2d(w: u32, h: u32, format: u32, bind: u32) -> ResourceCreate {
    ResourceCreate {
        target: virgl_stream::target::TEXTURE_2D,
        format,
        bind,
        width: w,
        height: h,
        depth: 1,
        array_size: 1,
        size: w * h * 4,
        stride: w * 4,
        ..ResourceCreate::new_zeroed()
    }
}

/// What VERSION says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// Major, minor, patch level.
    pub number: (i32, i32, i32),
    /// Driver name (`virtio_gpu`).
    pub name: String,
}

/// An open DRM file.
#[derive(Debug)]
pub struct DrmFd {
    fd: SchemeFd,
}

/// A dma-buf from PRIME export: it keeps its buffer alive, and another DRM
/// file (of any process it is passed to) imports the buffer with it.
#[derive(Debug)]
pub struct DmaBuf {
    fd: SchemeFd,
}

impl DmaBuf {
    /// Wraps a dma-buf fd (received from another process).
    pub fn from_fd(fd: OwnedFd) -> DmaBuf {
        DmaBuf {
            fd: SchemeFd::from_fd(fd),
        }
    }

    /// The fd, to pass to another process.
    pub fn into_fd(self) -> OwnedFd {
        self.fd.into_fd()
    }

    /// The capability token PRIME_FD_TO_HANDLE carries.
    pub fn token(&self) -> io::Result<u64> {
        let mut out = [0u8; 8];
        self.fd.call(&mut out, &[scheme_seam::token::CALL])?;
        Ok(u64::from_le_bytes(out))
    }

    /// mmap of the buffer's first `len` bytes, shared.
    pub fn map(&self, len: usize) -> io::Result<ShmRegion> {
        self.fd.mmap(0, len, true)
    }

    /// `fstat`: the size is the buffer's.
    pub fn stat(&self) -> io::Result<Stat> {
        self.fd.fstat()
    }
}

fn bad() -> io::Error {
    io::ErrorKind::InvalidData.into()
}

impl DrmFd {
    /// Opens a node, e.g. `/scheme/drm/renderD128`.
    pub fn open(path: &str) -> io::Result<DrmFd> {
        Self::open_with_flags(path, 0)
    }

    /// Opens a node with open `flags` (e.g. `O_NONBLOCK`: an ioctl that
    /// would wait answers EAGAIN instead).
    pub fn open_with_flags(path: &str, flags: usize) -> io::Result<DrmFd> {
        Ok(DrmFd {
            fd: SchemeFd::open(path, flags)?,
        })
    }

    /// `fstat` of the file: libdrm checks for a character device of major
    /// 226 and reads the node type from the minor.
    pub fn stat(&self) -> io::Result<Stat> {
        self.fd.fstat()
    }

    /// A raw ioctl: `nr` with its wire payload, sent again while it is
    /// interrupted (EINTR), as libdrm's drmIoctl does: a restarted drmd
    /// answers that to a request it lost.
    pub fn ioctl(&self, nr: u64, payload: &mut [u8]) -> io::Result<usize> {
        // An interrupted call wrote nothing back: it is sent as it was.
        loop {
            match self.fd.call(payload, &[nr]) {
                Err(e) if e.raw_os_error() == Some(scheme_seam::Errno::EINTR.0) => {}
                other => return other,
            }
        }
    }

    /// VERSION, asked twice as Mesa does (lengths, then strings).
    pub fn version(&self) -> io::Result<Version> {
        let mut payload = VersionHeader::new_zeroed().as_bytes().to_vec();
        self.ioctl(dc::VERSION, &mut payload)?;
        let (v, _) = VersionHeader::read_from_prefix(&payload).map_err(|_| bad())?;
        let ask = VersionHeader {
            name_len: v.name_len,
            date_len: v.date_len,
            desc_len: v.desc_len,
            ..VersionHeader::new_zeroed()
        };
        let total = usize::try_from(v.name_len + v.date_len + v.desc_len).map_err(|_| bad())?;
        let mut payload = Builder::new(&ask).zeroed::<u8>(total).build();
        self.ioctl(dc::VERSION, &mut payload)?;
        let name = payload
            .get(size_of::<VersionHeader>()..size_of::<VersionHeader>() + v.name_len as usize)
            .ok_or_else(bad)?;
        Ok(Version {
            number: (v.version_major, v.version_minor, v.version_patchlevel),
            name: String::from_utf8_lossy(name).into_owned(),
        })
    }

    /// VIRTGPU_GETPARAM.
    pub fn getparam(&self, param: u64) -> io::Result<u64> {
        let mut g = GetParam { param, value: 0 };
        self.ioctl(vg::GETPARAM, g.as_mut_bytes())?;
        Ok(g.value)
    }

    /// VIRTGPU_GET_CAPS of `size` bytes.
    pub fn get_caps(&self, id: u32, version: u32, size: u32) -> io::Result<Vec<u8>> {
        let header = GetCapsHeader {
            cap_set_id: id,
            cap_set_ver: version,
            size,
            pad: 0,
        };
        let mut payload = Builder::new(&header).zeroed::<u8>(size as usize).build();
        self.ioctl(vg::GET_CAPS, &mut payload)?;
        Ok(payload[size_of::<GetCapsHeader>()..].to_vec())
    }

    /// VIRTGPU_RESOURCE_CREATE; returns (GEM handle, resource id).
    pub fn resource_create(&self, mut r: ResourceCreate) -> io::Result<(u32, u32)> {
        self.ioctl(vg::RESOURCE_CREATE, r.as_mut_bytes())?;
        Ok((r.bo_handle, r.res_handle))
    }

    /// VIRTGPU_EXECBUFFER of `stream` with `bos` listed, run once
    /// `in_fence` (if any) has signalled; with `fence_out`, returns the
    /// out-fence as a sync_file (obtained by `dup`).
    pub fn execbuffer(
        &self,
        stream: &[u8],
        bos: &[u32],
        in_fence: Option<&SyncFile>,
        fence_out: bool,
    ) -> io::Result<Option<SyncFile>> {
        let mut flags = 0;
        if in_fence.is_some() {
            flags |= vg::EXECBUF_FENCE_FD_IN;
        }
        if fence_out {
            flags |= vg::EXECBUF_FENCE_FD_OUT;
        }
        let header = ExecbufferHeader {
            flags,
            size: stream.len() as u32,
            num_bo_handles: bos.len() as u32,
            ..ExecbufferHeader::new_zeroed()
        };
        let mut b = Builder::new(&header).array(stream).array(bos);
        if let Some(fence) = in_fence {
            b = b.array(&[fence.token()?]);
        }
        let mut payload = b.build();
        self.ioctl(vg::EXECBUFFER, &mut payload)?;
        if !fence_out {
            return Ok(None);
        }
        let (out, _) = ExecbufferHeader::read_from_prefix(&payload).map_err(|_| bad())?;
        let slot = u64::try_from(out.fence_fd).map_err(|_| bad())?;
        Ok(Some(SyncFile::from_fd(
            self.fd_of(vg::EXECBUFFER, &slot.to_le_bytes())?,
        )))
    }

    /// Finishes an fd-returning ioctl: a `dup` naming the ioctl and its
    /// reference.
    pub fn fd_of(&self, nr: u64, reference: &[u8]) -> io::Result<OwnedFd> {
        let mut buf = nr.to_le_bytes().to_vec();
        buf.extend_from_slice(reference);
        self.fd.dup(&buf)
    }

    /// VIRTGPU_TRANSFER_TO_HOST or _FROM_HOST of a box of a GEM object.
    pub fn transfer(&self, bo: u32, box_: Box3d, to_host: bool) -> io::Result<()> {
        let mut t = Transfer {
            bo_handle: bo,
            box_,
            ..Transfer::new_zeroed()
        };
        let nr = if to_host {
            vg::TRANSFER_TO_HOST
        } else {
            vg::TRANSFER_FROM_HOST
        };
        self.ioctl(nr, t.as_mut_bytes()).map(drop)
    }

    /// VIRTGPU_WAIT (with NOWAIT: EBUSY while busy).
    pub fn wait(&self, bo: u32, nowait: bool) -> io::Result<()> {
        let mut w = Wait {
            handle: bo,
            flags: if nowait { vg::WAIT_NOWAIT } else { 0 },
        };
        self.ioctl(vg::WAIT, w.as_mut_bytes()).map(drop)
    }

    /// VIRTGPU_MAP: the offset to mmap the object at.
    pub fn map_offset(&self, bo: u32) -> io::Result<u64> {
        let mut m = Map {
            handle: bo,
            ..Map::new_zeroed()
        };
        self.ioctl(vg::MAP, m.as_mut_bytes())?;
        Ok(m.offset)
    }

    /// mmap of `len` bytes at `offset` of the file.
    pub fn mmap(&self, offset: u64, len: usize) -> io::Result<ShmRegion> {
        self.fd.mmap(offset, len, true)
    }

    /// VIRTGPU_MAP then mmap: the object's pages, shared.
    pub fn map(&self, bo: u32, len: usize) -> io::Result<ShmRegion> {
        self.mmap(self.map_offset(bo)?, len)
    }

    /// PRIME_HANDLE_TO_FD with DRM_CLOEXEC | DRM_RDWR, as Mesa asks.
    pub fn prime_export(&self, bo: u32) -> io::Result<DmaBuf> {
        let h = PrimeHandle {
            handle: bo,
            flags: dc::PRIME_FLAG_CLOEXEC | dc::PRIME_FLAG_RDWR,
            token: 0,
        };
        Ok(DmaBuf::from_fd(
            self.fd_of(dc::PRIME_HANDLE_TO_FD, h.as_bytes())?,
        ))
    }

    /// PRIME_FD_TO_HANDLE: this file's GEM handle for the dma-buf's buffer.
    pub fn prime_import(&self, dma_buf: &DmaBuf) -> io::Result<u32> {
        let mut h = PrimeHandle {
            token: dma_buf.token()?,
            ..PrimeHandle::new_zeroed()
        };
        self.ioctl(dc::PRIME_FD_TO_HANDLE, h.as_mut_bytes())?;
        Ok(h.handle)
    }

    /// GEM_CLOSE.
    pub fn gem_close(&self, bo: u32) -> io::Result<()> {
        self.ioctl(
            dc::GEM_CLOSE,
            GemClose { handle: bo, pad: 0 }.as_mut_bytes(),
        )
        .map(drop)
    }

    /// GET_CAP.
    pub fn get_cap(&self, capability: u64) -> io::Result<u64> {
        let mut c = dc::GetCap {
            capability,
            value: 0,
        };
        self.ioctl(dc::GET_CAP, c.as_mut_bytes())?;
        Ok(c.value)
    }

    /// SET_CLIENT_CAP.
    pub fn set_client_cap(&self, capability: u64, value: u64) -> io::Result<()> {
        let mut c = dc::SetClientCap { capability, value };
        self.ioctl(dc::SET_CLIENT_CAP, c.as_mut_bytes()).map(drop)
    }

    /// SET_MASTER.
    pub fn set_master(&self) -> io::Result<()> {
        self.ioctl(dc::SET_MASTER, &mut []).map(drop)
    }

    /// DROP_MASTER.
    pub fn drop_master(&self) -> io::Result<()> {
        self.ioctl(dc::DROP_MASTER, &mut []).map(drop)
    }

    /// GETRESOURCES, asked twice as libdrm does (counts, then ids).
    pub fn resources(&self) -> io::Result<Resources> {
        let mut payload = k::CardResHeader::new_zeroed().as_bytes().to_vec();
        self.ioctl(k::GETRESOURCES, &mut payload)?;
        let (counts, _) = k::CardResHeader::read_from_prefix(&payload).map_err(|_| bad())?;
        let n = [
            counts.count_fbs,
            counts.count_crtcs,
            counts.count_connectors,
            counts.count_encoders,
        ];
        let mut payload = Builder::new(&counts)
            .zeroed::<u32>(n[0] as usize)
            .zeroed::<u32>(n[1] as usize)
            .zeroed::<u32>(n[2] as usize)
            .zeroed::<u32>(n[3] as usize)
            .build();
        self.ioctl(k::GETRESOURCES, &mut payload)?;
        let (header, rest) = k::CardResHeader::read_from_prefix(&payload).map_err(|_| bad())?;
        let ids: Vec<u32> = rest
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        let (fbs, rest) = ids.split_at(n[0] as usize);
        let (crtcs, rest) = rest.split_at(n[1] as usize);
        let (connectors, encoders) = rest.split_at(n[2] as usize);
        Ok(Resources {
            header,
            fbs: fbs.to_vec(),
            crtcs: crtcs.to_vec(),
            connectors: connectors.to_vec(),
            encoders: encoders.to_vec(),
        })
    }

    /// GETCONNECTOR with room for `modes` modes and one encoder: its header
    /// and the modes that came back.
    pub fn connector(
        &self,
        id: u32,
        modes: u32,
    ) -> io::Result<(k::GetConnectorHeader, Vec<k::ModeInfo>)> {
        let ask = k::GetConnectorHeader {
            connector_id: id,
            count_modes: modes,
            count_encoders: 1,
            ..k::GetConnectorHeader::new_zeroed()
        };
        let mut payload = Builder::new(&ask)
            .zeroed::<u32>(1)
            .zeroed::<k::ModeInfo>(modes as usize)
            .build();
        self.ioctl(k::GETCONNECTOR, &mut payload)?;
        let (header, rest) =
            k::GetConnectorHeader::read_from_prefix(&payload).map_err(|_| bad())?;
        let shown = header.count_modes.min(modes) as usize;
        let modes = rest[4..]
            .chunks_exact(size_of::<k::ModeInfo>())
            .take(shown)
            .filter_map(|c| k::ModeInfo::read_from_bytes(c).ok())
            .collect();
        Ok((header, modes))
    }

    /// CREATE_DUMB of a `w × h` buffer of 32 bits per pixel.
    pub fn create_dumb(&self, w: u32, h: u32) -> io::Result<k::CreateDumb> {
        let mut d = k::CreateDumb {
            width: w,
            height: h,
            bpp: 32,
            ..k::CreateDumb::new_zeroed()
        };
        self.ioctl(k::CREATE_DUMB, d.as_mut_bytes())?;
        Ok(d)
    }

    /// A dumb buffer's memory (MAP_DUMB, then mmap).
    pub fn map_dumb(&self, handle: u32, len: usize) -> io::Result<ShmRegion> {
        let mut m = k::MapDumb {
            handle,
            ..k::MapDumb::new_zeroed()
        };
        self.ioctl(k::MAP_DUMB, m.as_mut_bytes())?;
        self.mmap(m.offset, len)
    }

    /// ADDFB2 of one plane: the framebuffer's id.
    pub fn add_fb2(&self, handle: u32, w: u32, h: u32, pitch: u32, format: u32) -> io::Result<u32> {
        let mut f = k::FbCmd2 {
            width: w,
            height: h,
            pixel_format: format,
            ..k::FbCmd2::new_zeroed()
        };
        f.handles[0] = handle;
        f.pitches[0] = pitch;
        self.ioctl(k::ADDFB2, f.as_mut_bytes())?;
        Ok(f.fb_id)
    }

    /// SETCRTC: `mode` with `fb` on `connectors`, or the CRTC off (None).
    pub fn set_crtc(
        &self,
        crtc: u32,
        fb: u32,
        connectors: &[u32],
        mode: Option<k::ModeInfo>,
    ) -> io::Result<()> {
        let c = k::CrtcHeader {
            count_connectors: connectors.len() as u32,
            crtc_id: crtc,
            fb_id: fb,
            mode_valid: u32::from(mode.is_some()),
            mode: mode.unwrap_or_default(),
            ..k::CrtcHeader::new_zeroed()
        };
        let mut payload = Builder::new(&c).array(connectors).build();
        self.ioctl(k::SETCRTC, &mut payload).map(drop)
    }

    /// GETCRTC: the CRTC's framebuffer, position and mode.
    pub fn crtc(&self, crtc: u32) -> io::Result<k::CrtcHeader> {
        let mut c = k::CrtcHeader {
            crtc_id: crtc,
            ..k::CrtcHeader::new_zeroed()
        };
        self.ioctl(k::GETCRTC, c.as_mut_bytes())?;
        Ok(c)
    }

    /// PAGE_FLIP.
    pub fn page_flip(&self, crtc: u32, fb: u32, flags: u32, user_data: u64) -> io::Result<()> {
        let mut f = k::PageFlip {
            crtc_id: crtc,
            fb_id: fb,
            flags,
            sequence: 0,
            user_data,
        };
        self.ioctl(k::PAGE_FLIP, f.as_mut_bytes()).map(drop)
    }

    /// DIRTYFB with `clips` (none: all of the framebuffer).
    pub fn dirty_fb(&self, fb: u32, clips: &[k::ClipRect]) -> io::Result<()> {
        let d = k::FbDirtyHeader {
            fb_id: fb,
            num_clips: clips.len() as u32,
            ..k::FbDirtyHeader::new_zeroed()
        };
        let mut payload = Builder::new(&d).array(clips).build();
        self.ioctl(k::DIRTYFB, &mut payload).map(drop)
    }

    /// CURSOR2.
    pub fn cursor2(&self, mut c: k::Cursor2) -> io::Result<()> {
        self.ioctl(k::CURSOR2, c.as_mut_bytes()).map(drop)
    }

    /// ATOMIC of `objects`' properties: the values as answered (an
    /// OUT_FENCE_PTR's is the slot to [`DrmFd::atomic_out_fence`]).
    pub fn atomic(
        &self,
        flags: u32,
        objects: &[(u32, &[(u32, u64)])],
        user_data: u64,
    ) -> io::Result<Vec<u64>> {
        let header = k::AtomicHeader {
            flags,
            count_objs: objects.len() as u32,
            reserved: 0,
            user_data,
        };
        let ids: Vec<u32> = objects.iter().map(|o| o.0).collect();
        let counts: Vec<u32> = objects.iter().map(|o| o.1.len() as u32).collect();
        let props: Vec<u32> = objects
            .iter()
            .flat_map(|o| o.1.iter().map(|p| p.0))
            .collect();
        let values: Vec<u64> = objects
            .iter()
            .flat_map(|o| o.1.iter().map(|p| p.1))
            .collect();
        let mut payload = Builder::new(&header)
            .array(&ids)
            .array(&counts)
            .array(&props)
            .array(&values)
            .build();
        self.ioctl(k::ATOMIC, &mut payload)?;
        let at = payload.len() - values.len() * 8;
        Ok(payload[at..]
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }

    /// The sync_file of an ATOMIC commit's OUT_FENCE_PTR slot.
    pub fn atomic_out_fence(&self, slot: u64) -> io::Result<SyncFile> {
        Ok(SyncFile::from_fd(
            self.fd_of(k::ATOMIC, &slot.to_le_bytes())?,
        ))
    }

    /// Reads events (whole `drm_event`s) into `buf`: the bytes read.
    pub fn read_events(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.read(buf)
    }

    /// A descriptor readable while an event waits.
    pub fn events_fd(&self) -> io::Result<std::os::fd::BorrowedFd<'_>> {
        self.fd.poll_fd()
    }
}

/// What GETRESOURCES lists.
#[derive(Clone, Debug)]
pub struct Resources {
    /// The header as answered (counts, size limits).
    pub header: k::CardResHeader,
    /// The caller's framebuffers.
    pub fbs: Vec<u32>,
    /// CRTCs.
    pub crtcs: Vec<u32>,
    /// Connectors.
    pub connectors: Vec<u32>,
    /// Encoders.
    pub encoders: Vec<u32>,
}
