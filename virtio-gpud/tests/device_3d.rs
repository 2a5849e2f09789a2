//! The 3D command set against QEMU's real vhost-user-gpu device with
//! virglrenderer (on Mesa llvmpipe): capsets, rendering, transfers.

mod common;

use common::{ctx, ctx_with_target, render_target, start_3d};
use virgl_stream::clear_stream;
use virgl_stream::format::R8G8B8A8_UNORM;
use virtio_gpu_proto::Wire;
use virtio_gpu_proto::{
    Box3d, CapsetHeader, CapsetId, CmdSubmit, CtxAttachResource, CtxDetachResource, Features,
    MemEntry, ResourceAttachBacking, ResourceCreate3d, ResourceUnref, TransferFromHost3d,
    TransferToHost3d, CAPSET_V1_SIZE,
};
use virtio_gpud::resource::PAGE_SIZE;
use virtio_gpud::{Payload, Timeline};
use zerocopy::IntoBytes;

const W: u32 = 64;
const H: u32 = 64;

#[test]
fn negotiates_virgl_and_event_idx() {
    let dev = start_3d();
    let f = dev.gpu.features();
    assert!(f.contains(Features::VIRGL | Features::VERSION_1), "{f:?}");
    assert!(f.contains(Features::RING_EVENT_IDX), "{f:?}");
    // Features this backend does not offer are not claimed.
    assert!(!f.contains(Features::RESOURCE_BLOB), "{f:?}");
    assert_eq!(dev.gpu.config().num_scanouts.get(), 1, "one display served");
}

#[test]
fn both_virgl_capsets_are_listed_fetched_and_valid() {
    let mut dev = start_3d();
    let infos = dev.gpu.capsets().to_vec();
    for (id, version) in [(CapsetId::VIRGL, 1), (CapsetId::VIRGL2, 2)] {
        let info = infos
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("capset {id:?} not listed in {infos:?}"));
        assert_eq!(info.max_version, version);
        assert!(info.max_size as usize >= CAPSET_V1_SIZE, "{info:?}");
        let data = dev.gpu.capset(id, version).expect("GET_CAPSET");
        // Exactly what GET_CAPSET_INFO announced, never a constant.
        assert_eq!(data.len(), info.max_size as usize);
        let header = CapsetHeader::parse(id, &data).expect("valid capset header");
        assert_eq!(header.max_version.get(), version);
        assert!(
            header.glsl_level.get() >= 130,
            "glsl {}",
            header.glsl_level.get()
        );
        // A second query is served from the cache, identical.
        assert_eq!(dev.gpu.capset(id, version).unwrap(), data);
    }
    let v1 = infos.iter().find(|c| c.id == CapsetId::VIRGL).unwrap();
    assert_eq!(v1.max_size as usize, CAPSET_V1_SIZE);
    assert!(matches!(
        dev.gpu.capset(CapsetId::VENUS, 0),
        Err(virtio_gpud::Error::NoSuchCapset(_))
    ));
}

/// ABI reference §5.6: context, resource with backing, SUBMIT_3D clear,
/// fenced TRANSFER_FROM_HOST_3D, every pixel checked.
#[test]
fn clear_and_read_back() {
    let mut dev = start_3d();
    let gpu = &mut dev.gpu;
    let (ctx, res) = ctx_with_target(gpu, W, H);

    let stream = clear_stream(res.id.get(), R8G8B8A8_UNORM, [1.0, 0.0, 0.0, 1.0]);
    gpu.call(&CmdSubmit::new(ctx, stream.len() as u32), &stream, None)
        .unwrap();
    let rb = TransferFromHost3d::new(ctx, res.id, Box3d::new(0, 0, 0, W, H, 1), 0, 0, 0, 0);
    let pending = gpu.submit(&rb, &[], Some(Timeline::Global)).unwrap();
    let fence = pending.fence.expect("fenced");
    gpu.wait_fence(Timeline::Global, fence).unwrap();
    assert!(gpu.wait(pending).unwrap().result.is_ok());

    let mut pixels = vec![0u8; (W * H * 4) as usize];
    res.backing.read_bytes(0, &mut pixels);
    for (i, px) in pixels.chunks_exact(4).enumerate() {
        assert_eq!(
            px,
            [0xFF, 0, 0, 0xFF],
            "pixel {i} ({}, {})",
            i as u32 % W,
            i as u32 / W
        );
    }

    gpu.call(&CtxDetachResource::new(ctx, res.id), &[], None)
        .unwrap();
    gpu.destroy_resource(res).unwrap();
    gpu.destroy_context(ctx).unwrap();
}

#[test]
fn upload_then_read_back_is_identical() {
    let mut dev = start_3d();
    let gpu = &mut dev.gpu;
    let (w, h) = (256u32, 128u32);
    let len = (w * h * 4) as usize;
    let (ctx, res) = ctx_with_target(gpu, w, h);

    let pattern: Vec<u8> = (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    res.backing.write_bytes(0, &pattern);
    let whole = Box3d::new(0, 0, 0, w, h, 1);
    let up = TransferToHost3d::new(ctx, res.id, whole, 0, 0, 0, 0);
    gpu.call(&up, &[], Some(Timeline::Global)).unwrap();

    res.backing.fill(0);
    let down = TransferFromHost3d::new(ctx, res.id, whole, 0, 0, 0, 0);
    gpu.call(&down, &[], Some(Timeline::Global)).unwrap();
    let mut back = vec![0u8; len];
    res.backing.read_bytes(0, &mut back);
    assert!(back == pattern, "read-back differs from the upload");
}

/// Backing made of several separate pages, given as a scatter-gather list:
/// the host must stitch them together in order for both transfer directions.
#[test]
fn scatter_gather_backing_round_trips() {
    let mut dev = start_3d();
    let gpu = &mut dev.gpu;
    let ctx = ctx(gpu);
    let (w, h) = (64u32, 64u32); // 16 KiB: four pages
    let res = gpu.new_resource_id();
    gpu.call(&ResourceCreate3d::new(res, &render_target(w, h)), &[], None)
        .unwrap();
    // Allocate pages with spacers between them, so no two are adjacent.
    let mut pages = Vec::new();
    let mut spacers = Vec::new();
    for _ in 0..4 {
        pages.push(gpu.pool().alloc(PAGE_SIZE, PAGE_SIZE).unwrap());
        spacers.push(gpu.pool().alloc(PAGE_SIZE, PAGE_SIZE).unwrap());
    }
    // In reverse address order, to catch a host that sorts or merges.
    pages.reverse();
    let entries: Vec<MemEntry> = pages
        .iter()
        .map(|p| MemEntry::new(p.device_addr(), PAGE_SIZE as u32))
        .collect();
    gpu.call(
        &ResourceAttachBacking::new(res, entries.len() as u32),
        entries.as_bytes(),
        None,
    )
    .unwrap();
    gpu.call(&CtxAttachResource::new(ctx, res), &[], None)
        .unwrap();

    let image: Vec<u8> = (0..w * h * 4).map(|i| (i * 7 + i / 4096) as u8).collect();
    for (page, chunk) in pages.iter().zip(image.chunks(PAGE_SIZE)) {
        page.write_bytes(0, chunk);
    }
    let whole = Box3d::new(0, 0, 0, w, h, 1);
    gpu.call(
        &TransferToHost3d::new(ctx, res, whole, 0, 0, 0, 0),
        &[],
        Some(Timeline::Global),
    )
    .unwrap();
    pages.iter().for_each(|p| p.fill(0));
    gpu.call(
        &TransferFromHost3d::new(ctx, res, whole, 0, 0, 0, 0),
        &[],
        Some(Timeline::Global),
    )
    .unwrap();
    let mut back = vec![0u8; image.len()];
    for (page, chunk) in pages.iter().zip(back.chunks_mut(PAGE_SIZE)) {
        page.read_bytes(0, chunk);
    }
    assert!(back == image, "scatter-gather read-back differs");
    gpu.call(&ResourceUnref::new(res), &[], None).unwrap();
    drop(spacers);
}

/// The stream is read where it lies in DMA memory (a descriptor of its
/// own), not copied into the command's buffer.
#[test]
fn submit_3d_reads_its_stream_in_place() {
    let mut dev = start_3d();
    let gpu = &mut dev.gpu;
    let (ctx, res) = ctx_with_target(gpu, 16, 16);
    let stream = clear_stream(res.id.get(), R8G8B8A8_UNORM, [1.0, 0.0, 1.0, 1.0]);
    let arena = gpu.pool().alloc(stream.len(), 64).unwrap();
    arena.write_bytes(0, &stream);
    let submit = CmdSubmit::new(ctx, stream.len() as u32);
    let payload = Payload::Device {
        addr: arena.device_addr(),
        len: stream.len() as u32,
    };
    let pending = gpu
        .submit_bytes(Wire::of(&submit), payload, 24, Some(Timeline::Global))
        .unwrap();
    assert!(gpu.wait(pending).unwrap().result.is_ok());
    let rb = TransferFromHost3d::new(ctx, res.id, Box3d::new(0, 0, 0, 16, 16, 1), 0, 0, 0, 0);
    gpu.call(&rb, &[], Some(Timeline::Global)).unwrap();
    let mut px = vec![0u8; 16 * 16 * 4];
    res.backing.read_bytes(0, &mut px);
    assert!(px.chunks_exact(4).all(|p| p == [0xFF, 0, 0xFF, 0xFF]));
}
