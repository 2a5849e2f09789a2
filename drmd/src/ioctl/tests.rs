//! The ioctl handlers' rules, without a device: each handler runs against
//! an in-memory device ([`MemoryDevice`]) that records what was placed on its ring
//! and can be made to have no room. (Fences are syncd's: these tests keep
//! to objects without pending fences; the stack tests cover the rest.)

use std::sync::Arc;

use drm_uapi::core::{self as dc, GemClose, GetCap, PrimeHandle, VersionHeader};
use drm_uapi::kms::{GetConnectorHeader, ModeInfo};
use drm_uapi::virtgpu::{
    self as vg, Box3d, ExecbufferHeader, GetCapsHeader, GetParam, Map, ResourceCreate,
    ResourceInfo, Transfer, Wait,
};
use drm_uapi::wire::Builder;
use gpu_session::api::{DisplayEntry, QUEUE_DETACHED, QUEUE_FENCED};
use scheme_seam::{token, Answer, Errno, Park};
use virtio_gpu_proto::{CommandType, Features};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

use super::{core, prime, virtgpu, ROOM};
use crate::backend::memory::MemoryDevice;
use crate::client::render_target;
use crate::device::Device;
use crate::file::DrmFile;
use crate::gem::Gem;
use crate::node::Node;

/// A device with `features`, and a render file on it.
struct Env {
    fake: MemoryDevice,
    device: Device,
    file: DrmFile,
}

impl Env {
    fn new(features: Features) -> Env {
        let fake = MemoryDevice::new(features);
        let device = Device::new(Arc::new(fake.clone()), None).unwrap();
        let file = DrmFile::open(Node::Render, 1000, Box::new(fake.clone()));
        Env { fake, device, file }
    }

    fn virgl() -> Env {
        Env::new(Features::VIRGL)
    }

    fn room(&self, commands: Option<u32>) {
        self.fake.set_room(commands);
    }

    /// RESOURCE_CREATE of a small render target: (GEM handle, resource id).
    fn create(&mut self) -> (u32, u32) {
        let mut r = render_target(16, 16);
        let answer = virtgpu::resource_create(&mut self.device, &mut self.file, r.as_mut_bytes());
        assert_eq!(answer, Ok(Answer::Ready(0)));
        (r.bo_handle, r.res_handle)
    }
}

fn for_room() -> Result<Answer, Errno> {
    Ok(Answer::Park(Park::on(ROOM)))
}

#[test]
fn version_gives_lengths_then_strings_cut_to_the_room_given() {
    let mut v = VersionHeader::new_zeroed();
    assert_eq!(core::version(v.as_mut_bytes()), Ok(0));
    assert_eq!((v.version_major, v.version_minor, v.name_len), (0, 1, 10));
    let ask = VersionHeader {
        name_len: 3,
        ..VersionHeader::new_zeroed()
    };
    let mut payload = Builder::new(&ask).zeroed::<u8>(3).build();
    assert_eq!(core::version(&mut payload), Ok(0));
    assert_eq!(&payload[size_of::<VersionHeader>()..], b"vir");
    assert_eq!(core::version(&mut payload[..8]), Err(Errno::EINVAL));
}

#[test]
fn get_cap_answers_what_linux_virtio_gpu_answers() {
    for (cap, value) in [
        (dc::DRM_CAP_DUMB_BUFFER, 1),
        (dc::DRM_CAP_VBLANK_HIGH_CRTC, 1),
        (dc::DRM_CAP_DUMB_PREFERRED_DEPTH, 0),
        (dc::DRM_CAP_DUMB_PREFER_SHADOW, 0),
        (dc::DRM_CAP_PRIME, 3),
        (dc::DRM_CAP_TIMESTAMP_MONOTONIC, 1),
        (dc::DRM_CAP_ASYNC_PAGE_FLIP, 0),
        (dc::DRM_CAP_CURSOR_WIDTH, 64),
        (dc::DRM_CAP_CURSOR_HEIGHT, 64),
        (dc::DRM_CAP_ADDFB2_MODIFIERS, 0),
        (dc::DRM_CAP_PAGE_FLIP_TARGET, 0),
        (dc::DRM_CAP_CRTC_IN_VBLANK_EVENT, 1),
        (dc::DRM_CAP_SYNCOBJ, 1),
        (dc::DRM_CAP_SYNCOBJ_TIMELINE, 1),
        (dc::DRM_CAP_ATOMIC_ASYNC_PAGE_FLIP, 0),
    ] {
        let mut c = GetCap {
            capability: cap,
            value: 99,
        };
        assert_eq!(core::get_cap(c.as_mut_bytes()), Ok(0), "{cap:#x}");
        assert_eq!(c.value, value, "{cap:#x}");
    }
    for cap in [0, 0x16, 0xdead] {
        let mut c = GetCap {
            capability: cap,
            value: 0,
        };
        assert_eq!(
            core::get_cap(c.as_mut_bytes()),
            Err(Errno::EINVAL),
            "{cap:#x}"
        );
    }
    assert_eq!(core::get_cap(&mut [0; 4]), Err(Errno::EINVAL));
}

#[test]
fn getparam_reports_features_and_refuses_unknown_params() {
    let env = Env::virgl();
    for (param, value) in [
        (vg::PARAM_3D_FEATURES, 1),
        (vg::PARAM_CAPSET_QUERY_FIX, 1),
        (vg::PARAM_RESOURCE_BLOB, 0),
        (vg::PARAM_HOST_VISIBLE, 0),
        (vg::PARAM_CONTEXT_INIT, 0),
        (vg::PARAM_SUPPORTED_CAPSET_IDS, 1 << 2),
    ] {
        let mut g = GetParam { param, value: 7 };
        assert_eq!(virtgpu::getparam(&env.device, g.as_mut_bytes()), Ok(0));
        assert_eq!(g.value, value, "param {param}");
    }
    let mut g = GetParam {
        param: 99,
        value: 0,
    };
    assert_eq!(
        virtgpu::getparam(&env.device, g.as_mut_bytes()),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        virtgpu::getparam(&env.device, &mut [0; 12]),
        Err(Errno::EINVAL)
    );
    let two_d = Env::new(Features::empty());
    let mut g = GetParam {
        param: vg::PARAM_3D_FEATURES,
        value: 7,
    };
    assert_eq!(virtgpu::getparam(&two_d.device, g.as_mut_bytes()), Ok(0));
    assert_eq!(g.value, 0);
}

#[test]
fn get_caps_copies_up_to_the_size_asked_and_refuses_what_is_not_offered() {
    let env = Env::virgl();
    let caps = |id, version, size| {
        let h = GetCapsHeader {
            cap_set_id: id,
            cap_set_ver: version,
            size,
            pad: 0,
        };
        let mut payload = Builder::new(&h).zeroed::<u8>(size as usize).build();
        virtgpu::get_caps(&env.device, &mut payload).map(|n| (n, payload))
    };
    let (n, payload) = caps(2, 2, 8).unwrap();
    assert_eq!(n, 8);
    assert_eq!(&payload[16..], &[2u8; 8]);
    assert_eq!(caps(2, 2, 0).err(), Some(Errno::EINVAL), "size 0");
    assert_eq!(caps(3, 1, 8).err(), Some(Errno::EINVAL), "not offered");
    assert_eq!(caps(2, 3, 8).err(), Some(Errno::EINVAL), "version too new");
}

#[test]
fn context_init_needs_the_feature_and_comes_before_the_context() {
    let mut env = Env::virgl();
    let h = vg::ContextInitHeader {
        num_params: 0,
        pad: 0,
    };
    let mut payload = h.as_bytes().to_vec();
    let init = |env: &mut Env, p: &mut [u8]| virtgpu::context_init(&env.device, &mut env.file, p);
    assert_eq!(
        init(&mut env, &mut payload),
        Err(Errno::EINVAL),
        "no CONTEXT_INIT"
    );
    let mut env = Env::new(Features::VIRGL | Features::CONTEXT_INIT);
    env.create();
    assert_eq!(
        init(&mut env, &mut payload),
        Err(Errno::EEXIST),
        "the context exists"
    );
}

#[test]
fn resource_create_places_its_batch_in_order_with_page_rounded_backing() {
    let mut env = Env::virgl();
    let (bo, res) = env.create();
    assert!(bo != 0 && res != 0);
    assert_eq!(
        env.fake.placed(),
        [
            CommandType::RESOURCE_CREATE_3D,
            CommandType::RESOURCE_ATTACH_BACKING,
            CommandType::CTX_CREATE,
            CommandType::CTX_ATTACH_RESOURCE,
        ]
    );
    assert!(
        env.fake
            .placed_with_flags()
            .iter()
            .all(|p| p.1 & QUEUE_DETACHED != 0),
        "nothing waits for an answer"
    );
    assert_eq!(env.fake.allocations(), [4096], "1024 bytes take a page");
}

#[test]
fn resource_create_refuses_bad_sizes_and_2d_shapes_before_anything_is_placed() {
    let mut env = Env::virgl();
    let mut r = ResourceCreate {
        size: u32::MAX,
        ..render_target(16, 16)
    };
    let answer = virtgpu::resource_create(&mut env.device, &mut env.file, r.as_mut_bytes());
    assert_eq!(answer, Err(Errno::ENOMEM));
    let mut two_d = Env::new(Features::empty());
    for bad in [
        ResourceCreate {
            depth: 2,
            ..render_target(16, 16)
        },
        ResourceCreate {
            nr_samples: 2,
            ..render_target(16, 16)
        },
        ResourceCreate {
            target: 3,
            ..render_target(16, 16)
        },
        ResourceCreate {
            array_size: 2,
            ..render_target(16, 16)
        },
    ] {
        let mut bad = bad;
        let answer =
            virtgpu::resource_create(&mut two_d.device, &mut two_d.file, bad.as_mut_bytes());
        assert_eq!(answer, Err(Errno::EINVAL), "{bad:?}");
    }
    assert_eq!(
        virtgpu::resource_create(&mut env.device, &mut env.file, &mut [0; 8]),
        Err(Errno::EINVAL)
    );
    assert!(env.fake.placed().is_empty() && two_d.fake.placed().is_empty());
    assert!(env.fake.allocations().is_empty(), "no memory left behind");
}

#[test]
fn resource_create_parks_for_room_for_its_whole_batch_and_leaves_nothing() {
    let mut env = Env::virgl();
    // Room for three commands: the batch needs four.
    env.room(Some(3));
    let mut r = render_target(16, 16);
    let answer = virtgpu::resource_create(&mut env.device, &mut env.file, r.as_mut_bytes());
    assert_eq!(answer, for_room());
    assert!(env.fake.placed().is_empty());
    assert!(env.fake.allocations().is_empty(), "its memory was freed");
    assert!(env.file.bos.is_empty());
    env.room(Some(4));
    let answer = virtgpu::resource_create(&mut env.device, &mut env.file, r.as_mut_bytes());
    assert_eq!(answer, Ok(Answer::Ready(0)));
    assert_eq!(env.fake.waited(), 0, "once placed, it never waited");
}

#[test]
fn resource_info_and_map_answer_for_known_handles_only() {
    let mut env = Env::virgl();
    let (bo, res) = env.create();
    let mut i = ResourceInfo {
        bo_handle: bo,
        ..ResourceInfo::new_zeroed()
    };
    assert_eq!(
        virtgpu::resource_info(&mut env.file, i.as_mut_bytes()),
        Ok(0)
    );
    assert_eq!((i.res_handle, i.size), (res, 4096));
    let mut m = Map {
        handle: bo,
        ..Map::new_zeroed()
    };
    assert_eq!(virtgpu::map(&mut env.file, m.as_mut_bytes()), Ok(0));
    assert_ne!(m.offset, 0);
    for handle in [0, bo + 1, u32::MAX] {
        let mut i = ResourceInfo {
            bo_handle: handle,
            ..ResourceInfo::new_zeroed()
        };
        assert_eq!(
            virtgpu::resource_info(&mut env.file, i.as_mut_bytes()),
            Err(Errno::ENOENT)
        );
        let mut m = Map {
            handle,
            ..Map::new_zeroed()
        };
        assert_eq!(
            virtgpu::map(&mut env.file, m.as_mut_bytes()),
            Err(Errno::ENOENT)
        );
    }
}

fn transfer(env: &mut Env, bo: u32, to_host: bool, t: Transfer) -> Result<Answer, Errno> {
    let mut t = Transfer { bo_handle: bo, ..t };
    virtgpu::transfer(&env.device, &mut env.file, to_host, t.as_mut_bytes())
}

fn whole() -> Transfer {
    Transfer {
        box_: Box3d::whole(16, 16),
        ..Transfer::new_zeroed()
    }
}

#[test]
fn transfers_are_fenced_on_their_object_and_check_linuxs_order() {
    let mut env = Env::virgl();
    let (bo, _) = env.create();
    assert_eq!(transfer(&mut env, bo, true, whole()), Ok(Answer::Ready(0)));
    assert_eq!(
        env.fake.placed().last(),
        Some(&CommandType::TRANSFER_TO_HOST_3D)
    );
    assert_ne!(env.file.bo(bo).unwrap().fence(), 0, "WAIT waits for it");
    assert_eq!(
        transfer(&mut env, bo + 1, true, whole()),
        Err(Errno::ENOENT)
    );
    let strided = Transfer {
        stride: 64,
        ..whole()
    };
    assert_eq!(transfer(&mut env, bo, false, strided), Err(Errno::EINVAL));
    let mut two_d = Env::new(Features::empty());
    let (bo2, _) = two_d.create();
    // Without virgl FROM_HOST is ENOSYS before the handle is looked at.
    assert_eq!(
        transfer(&mut two_d, bo2 + 7, false, whole()),
        Err(Errno::ENOSYS)
    );
    assert_eq!(
        transfer(&mut two_d, bo2, true, whole()),
        Ok(Answer::Ready(0))
    );
    assert_eq!(
        two_d.fake.placed().last(),
        Some(&CommandType::TRANSFER_TO_HOST_2D)
    );
    assert_ne!(
        two_d.file.bo(bo2).unwrap().fence(),
        0,
        "a 2D upload is fenced too"
    );
}

#[test]
fn a_transfer_on_a_full_ring_parks_without_placing_anything() {
    let mut env = Env::virgl();
    let (bo, _) = env.create();
    env.room(Some(0));
    let placed = env.fake.placed().len();
    assert_eq!(transfer(&mut env, bo, true, whole()), for_room());
    assert_eq!(env.fake.placed().len(), placed);
    assert_eq!(env.file.bo(bo).unwrap().fence(), 0);
}

fn wait(env: &mut Env, handle: u32, flags: u32, expired: bool) -> Result<Answer, Errno> {
    let mut w = Wait { handle, flags };
    virtgpu::wait(&mut env.device, &mut env.file, w.as_mut_bytes(), expired)
}

#[test]
fn wait_on_an_idle_object_answers_at_once_and_unknown_handles_are_enoent() {
    let mut env = Env::virgl();
    let (bo, _) = env.create();
    assert_eq!(
        wait(&mut env, bo, vg::WAIT_NOWAIT, false),
        Ok(Answer::Ready(0))
    );
    assert_eq!(wait(&mut env, bo, 0, false), Ok(Answer::Ready(0)));
    // Linux ignores flag bits other than NOWAIT.
    assert_eq!(wait(&mut env, bo, 0xfe, false), Ok(Answer::Ready(0)));
    assert_eq!(wait(&mut env, bo + 1, 0, false), Err(Errno::ENOENT));
    let mut short = [0u8; 4];
    assert_eq!(
        virtgpu::wait(&mut env.device, &mut env.file, &mut short, false),
        Err(Errno::EINVAL)
    );
}

fn execbuffer(env: &mut Env, flags: u32, stream: &[u8], bos: &[u32]) -> Result<Answer, Errno> {
    let header = ExecbufferHeader {
        flags,
        size: stream.len() as u32,
        num_bo_handles: bos.len() as u32,
        ..ExecbufferHeader::new_zeroed()
    };
    let mut payload = Builder::new(&header).array(stream).array(bos).build();
    virtgpu::execbuffer(&mut env.device, &mut env.file, &mut payload, &mut |_| {})
}

#[test]
fn execbuffer_refuses_in_linuxs_order_before_anything_is_placed() {
    let mut env = Env::virgl();
    let (bo, _) = env.create();
    let placed = env.fake.placed().len();
    let stream = [0u8; 64];
    assert_eq!(
        execbuffer(&mut env, 0x80, &stream, &[bo]),
        Err(Errno::EINVAL),
        "flag"
    );
    assert_eq!(
        execbuffer(&mut env, vg::EXECBUF_RING_IDX, &stream, &[bo]),
        Err(Errno::EINVAL),
        "no rings without CONTEXT_INIT"
    );
    assert_eq!(
        execbuffer(&mut env, 0, &stream, &[bo, 99]),
        Err(Errno::ENOENT)
    );
    assert_eq!(
        execbuffer(&mut env, 0, &stream, &[bo, bo]),
        Err(Errno::EALREADY)
    );
    assert_eq!(env.fake.placed().len(), placed);
    assert_eq!(env.file.bo(bo).unwrap().fence(), 0, "nothing published");
    let mut two_d = Env::new(Features::empty());
    assert_eq!(execbuffer(&mut two_d, 0, &stream, &[]), Err(Errno::ENOSYS));
}

#[test]
fn execbuffer_places_one_fenced_submit_and_publishes_its_fence() {
    let mut env = Env::virgl();
    let (bo, _) = env.create();
    let header = ExecbufferHeader {
        flags: vg::EXECBUF_FENCE_FD_OUT,
        size: 64,
        num_bo_handles: 1,
        ..ExecbufferHeader::new_zeroed()
    };
    let mut payload = Builder::new(&header).array(&[0u8; 64]).array(&[bo]).build();
    let answer = virtgpu::execbuffer(&mut env.device, &mut env.file, &mut payload, &mut |_| {});
    assert_eq!(answer, Ok(Answer::Ready(0)));
    let &(ty, flags) = env.fake.placed_with_flags().last().unwrap();
    assert_eq!(ty, CommandType::SUBMIT_3D);
    assert_ne!(flags & QUEUE_FENCED, 0);
    let fence = env.file.bo(bo).unwrap().fence();
    assert_ne!(fence, 0);
    let (out, _) = ExecbufferHeader::read_from_prefix(&payload).unwrap();
    assert_eq!(
        env.file.out_fences.get(out.fence_fd as u64),
        Ok(crate::file::OutFence::Device(fence))
    );
}

#[test]
fn an_execbuffer_on_a_full_ring_parks_and_takes_its_placement_back() {
    let mut env = Env::virgl();
    let (bo, _) = env.create();
    assert_eq!(
        execbuffer(&mut env, 0, &[1u8; 64], &[bo]),
        Ok(Answer::Ready(0))
    );
    let mark = env.file.arena().unwrap().mark();
    env.room(Some(0));
    let placed = env.fake.placed().len();
    assert_eq!(execbuffer(&mut env, 0, &[2u8; 64], &[bo]), for_room());
    assert_eq!(env.fake.placed().len(), placed, "nothing placed");
    assert_eq!(
        env.file.arena().unwrap().mark(),
        mark,
        "the stream's room is back"
    );
    let fence = env.file.bo(bo).unwrap().fence();
    env.room(None);
    assert_eq!(
        execbuffer(&mut env, 0, &[2u8; 64], &[bo]),
        Ok(Answer::Ready(0))
    );
    assert!(env.file.bo(bo).unwrap().fence() > fence);
}

fn gem_close(env: &mut Env, handle: u32, pad: u32) -> Result<Answer, Errno> {
    core::gem_close(&mut env.file, GemClose { handle, pad }.as_mut_bytes())
}

#[test]
fn gem_close_detaches_the_last_handle_and_keeps_it_while_the_ring_is_full() {
    let mut env = Env::virgl();
    let (bo, res) = env.create();
    assert_eq!(gem_close(&mut env, bo, 1), Err(Errno::EINVAL), "pad");
    assert_eq!(
        gem_close(&mut env, bo + 1, 0),
        Err(Errno::EINVAL),
        "unknown"
    );
    env.room(Some(0));
    assert_eq!(gem_close(&mut env, bo, 0), for_room());
    assert!(env.file.bo(bo).is_ok(), "the handle stays until it can go");
    env.room(None);
    assert_eq!(gem_close(&mut env, bo, 0), Ok(Answer::Ready(0)));
    assert_eq!(
        env.fake.placed().last(),
        Some(&CommandType::CTX_DETACH_RESOURCE)
    );
    assert!(env.file.bo(bo).is_err());
    assert!(!env.fake.holds(res), "the session let go");
}

#[test]
fn prime_import_tells_unknown_dma_bufs_from_fds_that_are_not_open() {
    let mut env = Env::virgl();
    let import = |env: &mut Env, token: u64, found: Option<Arc<Gem>>| {
        let mut h = PrimeHandle {
            token,
            ..PrimeHandle::new_zeroed()
        };
        let r = prime::import(&env.device, &mut env.file, h.as_mut_bytes(), |_| found);
        r.map(|a| (a, h.handle))
    };
    assert_eq!(
        import(&mut env, token::NOT_OPEN, None).err(),
        Some(Errno::EBADF)
    );
    assert_eq!(
        import(&mut env, token::NOT_A_HANDLE, None).err(),
        Some(Errno::EINVAL)
    );
    assert_eq!(import(&mut env, 1234, None).err(), Some(Errno::EINVAL));
    // A buffer the file has already: its handle, nothing placed.
    let (bo, _) = env.create();
    let gem = env.file.bo(bo).unwrap().clone();
    gem.export(&*env.file.session, env.device.export_holder())
        .unwrap();
    let placed = env.fake.placed().len();
    assert_eq!(import(&mut env, 1, Some(gem)), Ok((Answer::Ready(0), bo)));
    assert_eq!(env.fake.placed().len(), placed);
}

#[test]
fn the_first_primary_file_is_master_and_master_rules_are_linuxs() {
    use crate::master::Masters;
    let mut m = Masters::default();
    m.open(1, 100, false);
    m.open(2, 200, false);
    m.open(3, 300, true);
    assert!(m.is_master(1) && m.authenticated(1));
    assert!(!m.is_master(2) && !m.authenticated(2));
    // Never master and not root: EACCES, before anything else.
    assert_eq!(m.set_master(2, 200), Err(Errno::EACCES));
    assert_eq!(m.drop_master(2, 200), Err(Errno::EACCES));
    // The master's own process only.
    assert_eq!(m.drop_master(1, 999), Err(Errno::EACCES));
    assert_eq!(m.set_master(1, 100), Ok(()), "already master");
    // Root may, but not while another file is master.
    assert_eq!(m.set_master(3, 300), Err(Errno::EBUSY));
    assert_eq!(m.drop_master(3, 300), Err(Errno::EINVAL), "not master");
    assert_eq!(m.drop_master(1, 100), Ok(()));
    assert_eq!(m.set_master(3, 300), Ok(()));
    assert_eq!(m.set_master(1, 100), Err(Errno::EBUSY));
    m.close(3);
    assert_eq!(m.set_master(1, 100), Ok(()), "it was master before");
}

#[test]
fn magic_numbers_authenticate_once_and_only_through_their_master() {
    use crate::master::Masters;
    let mut m = Masters::default();
    m.open(1, 100, false);
    m.open(2, 200, false);
    let magic = |m: &mut Masters, file| {
        let mut a = dc::Auth::default();
        core::get_magic(m, file, a.as_mut_bytes()).map(|_| a.magic)
    };
    let auth = |m: &mut Masters, file, magic: u32| {
        core::auth_magic(m, file, dc::Auth { magic }.as_bytes())
    };
    let n = magic(&mut m, 2).unwrap();
    assert_ne!(n, 0);
    assert_eq!(magic(&mut m, 2), Ok(n), "the same number each time");
    assert_ne!(magic(&mut m, 1), Ok(n), "numbers are distinct");
    assert_eq!(auth(&mut m, 1, n + 100), Err(Errno::EINVAL), "unknown");
    assert_eq!(auth(&mut m, 1, n), Ok(0));
    assert!(m.authenticated(2));
    assert_eq!(auth(&mut m, 1, n), Err(Errno::EINVAL), "used");
    assert_eq!(core::get_magic(&mut m, 2, &mut [0; 2]), Err(Errno::EINVAL));
}

#[test]
fn set_version_checks_both_versions_and_1_1_gives_get_unique_its_bus_id() {
    use crate::master::{Masters, BUSID};
    let mut m = Masters::default();
    m.open(1, 100, false);
    let set = |m: &mut Masters, di: (i32, i32), dd: (i32, i32)| {
        let mut v = dc::SetVersion {
            di_major: di.0,
            di_minor: di.1,
            dd_major: dd.0,
            dd_minor: dd.1,
        };
        core::set_version(m, 1, v.as_mut_bytes()).map(|_| v)
    };
    for (di, dd) in [
        ((2, 0), (-1, 0)),
        ((1, 5), (-1, 0)),
        ((-1, 0), (1, 0)),
        ((-1, 0), (0, 2)),
    ] {
        assert_eq!(
            set(&mut m, di, dd).err(),
            Some(Errno::EINVAL),
            "{di:?} {dd:?}"
        );
    }
    let unique = |m: &Masters, room: u64| {
        let h = dc::UniqueHeader { unique_len: room };
        let mut payload = Builder::new(&h).zeroed::<u8>(room as usize).build();
        core::get_unique(m.unique(1), &mut payload).unwrap();
        let len = u64::from_le_bytes(payload[..8].try_into().unwrap());
        (len, payload[8..].to_vec())
    };
    assert_eq!(unique(&m, 0).0, 0, "no bus id before SET_VERSION 1.1");
    let v = set(&mut m, (1, 0), (-1, 0)).unwrap();
    assert_eq!(
        (v.di_major, v.di_minor, v.dd_major, v.dd_minor),
        (1, 4, 0, 1)
    );
    assert_eq!(unique(&m, 0).0, 0, "1.0 sets none");
    set(&mut m, (1, 1), (0, 1)).unwrap();
    let (len, _) = unique(&m, 4);
    assert_eq!(len, BUSID.len() as u64);
    let (_, short) = unique(&m, 4);
    assert_eq!(short, [0; 4], "copied only when it fits");
    let (_, whole) = unique(&m, len);
    assert_eq!(whole, BUSID.as_bytes());
}

#[test]
fn get_client_stats_client_caps_and_unserved_kms_answer_as_linux() {
    let mut c = dc::Client {
        idx: 1,
        ..Default::default()
    };
    assert_eq!(
        core::get_client(true, 42, c.as_mut_bytes()),
        Err(Errno::EINVAL)
    );
    c.idx = 0;
    assert_eq!(core::get_client(true, 42, c.as_mut_bytes()), Ok(0));
    assert_eq!((c.auth, c.pid, c.uid), (1, 42, 65534));
    let mut s = dc::Stats {
        count: 9,
        ..dc::Stats::new_zeroed()
    };
    assert_eq!(core::get_stats(s.as_mut_bytes()), Ok(0));
    assert_eq!(s.count, 0);
    assert_eq!(core::get_stats(&mut [0; 8]), Err(Errno::EINVAL));
    let mut env = Env::virgl();
    let mut set = |capability, value| {
        let mut cap = dc::SetClientCap { capability, value };
        core::set_client_cap(&mut env.file, cap.as_mut_bytes())
    };
    assert_eq!(set(dc::DRM_CLIENT_CAP_STEREO_3D, 1), Ok(0));
    assert_eq!(
        set(dc::DRM_CLIENT_CAP_UNIVERSAL_PLANES, 2),
        Err(Errno::EINVAL)
    );
    // Both need ATOMIC first.
    assert_eq!(
        set(dc::DRM_CLIENT_CAP_WRITEBACK_CONNECTORS, 1),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        set(dc::DRM_CLIENT_CAP_CURSOR_PLANE_HOTSPOT, 1),
        Err(Errno::EINVAL)
    );
    assert_eq!(set(dc::DRM_CLIENT_CAP_ATOMIC, 3), Err(Errno::EINVAL));
    assert_eq!(set(dc::DRM_CLIENT_CAP_ATOMIC, 1), Ok(0));
    assert_eq!(
        set(dc::DRM_CLIENT_CAP_CURSOR_PLANE_HOTSPOT, 2),
        Err(Errno::EINVAL)
    );
    assert_eq!(set(dc::DRM_CLIENT_CAP_CURSOR_PLANE_HOTSPOT, 1), Ok(0));
    assert_eq!(set(99, 0), Err(Errno::EINVAL));
    let caps = env.file.caps;
    // ATOMIC brings universal planes and aspect ratios with it.
    assert!(caps.atomic && caps.universal_planes && caps.aspect_ratio && caps.cursor_hotspot);
    assert_eq!(
        core::set_client_cap(&mut env.file, &mut [0; 4]),
        Err(Errno::EINVAL)
    );
    // LIST_LESSEES and GET_LEASE check their pad first.
    let mut padded = [0u8; 16];
    padded[4] = 1;
    assert_eq!(
        core::no_modeset(0xc7, Errno::EOPNOTSUPP, &padded),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        core::no_modeset(0xc7, Errno::EOPNOTSUPP, &[0; 16]),
        Err(Errno::EOPNOTSUPP)
    );
    assert_eq!(
        core::no_modeset(0xa0, Errno::EOPNOTSUPP, &padded),
        Err(Errno::EOPNOTSUPP)
    );
}

#[test]
fn gem_flink_names_an_object_once_and_gem_open_gives_new_handles_to_it() {
    let mut env = Env::virgl();
    let (bo, res) = env.create();
    let mut names = crate::gem::Names::default();
    let flink = |env: &mut Env, names: &mut crate::gem::Names, handle| {
        let mut f = dc::GemFlink { handle, name: 0 };
        core::gem_flink(&env.device, names, &env.file, f.as_mut_bytes()).map(|_| f.name)
    };
    let name = flink(&mut env, &mut names, bo).unwrap();
    assert_ne!(name, 0);
    assert_eq!(
        flink(&mut env, &mut names, bo),
        Ok(name),
        "one name per object"
    );
    assert_eq!(flink(&mut env, &mut names, bo + 9), Err(Errno::ENOENT));
    let open = |env: &mut Env, names: &crate::gem::Names, name| {
        let mut o = dc::GemOpen {
            name,
            ..Default::default()
        };
        core::gem_open(&env.device, names, &mut env.file, o.as_mut_bytes()).map(|a| (a, o))
    };
    assert_eq!(open(&mut env, &names, name + 1).err(), Some(Errno::ENOENT));
    let (answer, o) = open(&mut env, &names, name).unwrap();
    assert_eq!(answer, Answer::Ready(0));
    assert!(o.handle != bo && o.handle != 0, "a new handle, as Linux");
    assert_eq!(o.size, 4096);
    assert_eq!(env.file.bo(o.handle).unwrap().res, res);
    // Closing one handle keeps the object for the other.
    assert_eq!(gem_close(&mut env, bo, 0), Ok(Answer::Ready(0)));
    assert!(env.fake.holds(res));
}

#[test]
fn prime_export_refuses_unknown_flags_tokens_and_handles_and_holds_the_object() {
    let mut env = Env::virgl();
    let (bo, res) = env.create();
    let export = |env: &Env, handle, flags, token| {
        let h = PrimeHandle {
            handle,
            flags,
            token,
        };
        prime::export(&env.device, &env.file, h.as_bytes())
    };
    let rdwr = dc::PRIME_FLAG_CLOEXEC | dc::PRIME_FLAG_RDWR;
    assert_eq!(export(&env, bo, 0x4, 0).err(), Some(Errno::EINVAL), "flag");
    assert_eq!(
        export(&env, bo, rdwr, 5).err(),
        Some(Errno::EINVAL),
        "token"
    );
    assert_eq!(export(&env, bo + 1, rdwr, 0).err(), Some(Errno::ENOENT));
    assert_eq!(
        prime::export(&env.device, &env.file, &[0; 4]).err(),
        Some(Errno::EINVAL)
    );
    let gem = export(&env, bo, rdwr, 0).unwrap();
    assert!(gem.dma_buf_writable());
    // drmd's own hold keeps it after the file lets go.
    assert_eq!(gem_close(&mut env, bo, 0), Ok(Answer::Ready(0)));
    assert!(env.fake.holds(res));
    drop(gem);
    assert!(!env.fake.holds(res), "the last holder went with the object");
}

/// A dumb buffer of `w × h` on the file: its handle.
fn dumb(env: &mut Env, w: u32, h: u32) -> u32 {
    let mut d = drm_uapi::kms::CreateDumb {
        width: w,
        height: h,
        bpp: 32,
        ..Default::default()
    };
    let answer = super::kms::create_dumb(&mut env.device, &mut env.file, d.as_mut_bytes());
    assert_eq!(answer, Ok(Answer::Ready(0)));
    d.handle
}

#[test]
fn test_regression_a_cursor_refused_for_room_holds_nothing_new() {
    // Found by drm_handlers (regressions/drm_handlers/cursor-parked-after-export):
    // CURSOR2 exported its buffer to the control session before it found
    // the ring full, so a parked request had changed what the device holds.
    let mut env = Env::new(Features::empty());
    let mut kms = crate::kms::Kms::new(&env.device.monitors());
    let handle = dumb(&mut env, 64, 64);
    let held = env.fake.held();
    env.room(Some(0));
    let mut c = drm_uapi::kms::Cursor2 {
        flags: drm_uapi::kms::CURSOR_BO,
        crtc_id: 0x40,
        width: 64,
        height: 64,
        handle,
        ..Default::default()
    };
    let answer = super::kms::cursor(&env.device, &mut kms, &env.file, true, c.as_mut_bytes());
    assert_eq!(answer, for_room());
    assert_eq!(
        env.fake.held(),
        held,
        "nothing held anew by a parked CURSOR2"
    );
    env.room(None);
    let answer = super::kms::cursor(&env.device, &mut kms, &env.file, true, c.as_mut_bytes());
    assert_eq!(answer, Ok(Answer::Ready(0)));
    assert!(
        env.fake.held().iter().any(|&(_, n)| n == 2),
        "the control session holds it now"
    );
}

#[test]
fn test_regression_a_framebuffer_of_an_image_whose_lines_overflow_is_einval() {
    // Found by drm_handlers (regressions/drm_handlers/fb-line-overflow): the
    // line length of a u32::MAX-wide image overflowed in ADDFB2.
    let mut env = Env::new(Features::empty());
    let mut kms = crate::kms::Kms::new(&env.device.monitors());
    let mut r = ResourceCreate {
        width: u32::MAX,
        height: 1,
        size: 4096,
        ..render_target(16, 16)
    };
    let answer = virtgpu::resource_create(&mut env.device, &mut env.file, r.as_mut_bytes());
    assert_eq!(answer, Ok(Answer::Ready(0)));
    let mut f = drm_uapi::kms::FbCmd2 {
        width: 64,
        height: 1,
        pixel_format: drm_uapi::kms::FORMAT_XRGB8888,
        ..Default::default()
    };
    f.handles[0] = r.bo_handle;
    f.pitches[0] = 256;
    assert_eq!(
        super::kms::addfb2(&env.device, &mut kms, &mut env.file, 1, f.as_mut_bytes()),
        Err(Errno::EINVAL)
    );
}

/// GETCONNECTOR of output `n` through both calls of its protocol: the
/// header and the modes.
fn connector(
    kms: &crate::kms::Kms,
    file: &DrmFile,
    n: usize,
) -> (GetConnectorHeader, Vec<ModeInfo>) {
    let mut c = GetConnectorHeader {
        connector_id: crate::kms::Object::Connector(n).id(),
        ..Default::default()
    };
    let mut payload = c.as_bytes().to_vec();
    assert_eq!(super::kms::get_connector(kms, file, &mut payload), Ok(0));
    let counted = GetConnectorHeader::read_from_prefix(&payload).unwrap().0;
    c.count_modes = counted.count_modes;
    c.count_encoders = counted.count_encoders;
    let mut payload = c.as_bytes().to_vec();
    payload.resize(
        payload.len() + 4 * c.count_encoders as usize + 68 * c.count_modes as usize,
        0,
    );
    assert_eq!(super::kms::get_connector(kms, file, &mut payload), Ok(0));
    let (header, rest) = GetConnectorHeader::read_from_prefix(&payload).unwrap();
    let modes = rest[4 * c.count_encoders as usize..]
        .chunks_exact(68)
        .map(|m| ModeInfo::read_from_bytes(m).unwrap())
        .collect();
    (header, modes)
}

#[test]
fn a_display_change_gives_its_connector_the_new_status_modes_size_and_edid() {
    use crate::kms::props;
    use virtio_gpu_proto::edid::{self, Monitor, Timing};
    let env = Env::new(Features::EDID);
    let mut kms = crate::kms::Kms::new(&env.device.monitors());
    let connector_obj = crate::kms::Object::Connector(0);
    // Without EDID: the size's modes, no EDID blob, no physical size.
    let (c, modes) = connector(&kms, &env.file, 0);
    assert_eq!((c.connection, c.mm_width), (1, 0));
    assert_eq!((modes[0].hdisplay, modes[0].vdisplay), (1024, 768));
    assert_eq!(kms.value(connector_obj, props::EDID), 0);
    // Its legacy properties (not CRTC_ID, which is atomic), as Linux.
    assert_eq!(c.count_props, 4);
    assert!(
        kms.update_monitors(&env.device.monitors()).is_empty(),
        "nothing changed"
    );

    let mut preferred = Timing::cvt_rb(1280, 800);
    preferred.size_mm = (339, 212);
    let block = edid::build(&Monitor {
        vendor: *b"VGD",
        name: "unit",
        serial: 1,
        preferred,
        sizes: &[(640, 480), (1024, 768), (1280, 720)],
    })
    .unwrap();
    let entry = DisplayEntry {
        width: 1280,
        height: 800,
        enabled: 1,
        ..DisplayEntry::default()
    };
    env.fake.set_display(entry, block.to_vec());
    assert_eq!(kms.update_monitors(&env.device.monitors()), [0]);
    let (c, modes) = connector(&kms, &env.file, 0);
    assert_eq!((c.connection, c.mm_width, c.mm_height), (1, 339, 212));
    let sizes: Vec<_> = modes.iter().map(|m| (m.hdisplay, m.vdisplay)).collect();
    assert_eq!(sizes, [(1280, 800), (1280, 720), (1024, 768), (640, 480)]);
    assert_ne!(modes[0].type_ & crate::kms::modes::TYPE_PREFERRED, 0);
    assert_eq!(modes[0].clock, preferred.clock_khz);
    let blob = kms.value(connector_obj, props::EDID) as u32;
    assert_eq!(kms.blob(blob).unwrap().data, block);

    // Unplugged: disconnected, no modes, and the EDID blob is gone.
    env.fake.set_display(DisplayEntry::default(), Vec::new());
    assert_eq!(kms.update_monitors(&env.device.monitors()), [0]);
    let (c, modes) = connector(&kms, &env.file, 0);
    assert_eq!((c.connection, c.count_modes, c.mm_width), (2, 0, 0));
    assert!(modes.is_empty());
    assert_eq!(kms.value(connector_obj, props::EDID), 0);
    assert_eq!(kms.blob(blob).map(|_| ()), Err(Errno::ENOENT));

    // An EDID that does not check out counts as none: modes from the size.
    let mut broken = block;
    broken[20] ^= 0xff;
    env.fake.set_display(entry, broken.to_vec());
    assert_eq!(kms.update_monitors(&env.device.monitors()), [0]);
    let (c, modes) = connector(&kms, &env.file, 0);
    assert_eq!((c.connection, c.mm_width), (1, 0));
    assert_eq!((modes[0].hdisplay, modes[0].vdisplay), (1280, 800));
    assert_eq!(kms.value(connector_obj, props::EDID), 0);
}
