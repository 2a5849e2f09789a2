//! Every size and field offset from ABI-REFERENCE §1.2 and §1.5 (themselves compiled
//! from Linux `include/uapi/linux/virtio_gpu.h`), checked against the Rust structs.

use core::mem::{align_of, offset_of, size_of};

use virtio_gpu_proto::*;

/// One test per struct: its size, alignment 1 (so `ref_from_prefix` works on any
/// buffer), and the offset of every listed field.
macro_rules! layout {
    ($test:ident: $ty:ty, $size:literal, { $($field:ident @ $off:literal),* $(,)? }) => {
        #[test]
        fn $test() {
            assert_eq!(size_of::<$ty>(), $size, "size of {}", stringify!($ty));
            assert_eq!(align_of::<$ty>(), 1, "align of {}", stringify!($ty));
            $(assert_eq!(
                offset_of!($ty, $field),
                $off,
                "{}.{}",
                stringify!($ty),
                stringify!($field),
            );)*
        }
    };
}

layout!(gpu_config: GpuConfig, 16, {
    events_read @ 0, events_clear @ 4, num_scanouts @ 8, num_capsets @ 12,
});

layout!(ctrl_hdr: CtrlHdr, 24, {
    ty @ 0, flags @ 4, fence_id @ 8, ctx_id @ 16, ring_idx @ 20, padding @ 21,
});

layout!(rect: Rect, 16, { x @ 0, y @ 4, width @ 8, height @ 12 });

layout!(box_3d: Box3d, 24, { x @ 0, y @ 4, z @ 8, w @ 12, h @ 16, d @ 20 });

layout!(mem_entry: MemEntry, 16, { addr @ 0, length @ 8, padding @ 12 });

layout!(cursor_pos: CursorPos, 16, { scanout_id @ 0, x @ 4, y @ 8, padding @ 12 });

layout!(resp_nodata: RespNodata, 24, { hdr @ 0 });

layout!(get_display_info: GetDisplayInfo, 24, { hdr @ 0 });

layout!(resource_create_2d: ResourceCreate2d, 40, {
    hdr @ 0, resource_id @ 24, format @ 28, width @ 32, height @ 36,
});

layout!(resource_unref: ResourceUnref, 32, { hdr @ 0, resource_id @ 24, padding @ 28 });

layout!(set_scanout: SetScanout, 48, {
    hdr @ 0, r @ 24, scanout_id @ 40, resource_id @ 44,
});

layout!(resource_flush: ResourceFlush, 48, {
    hdr @ 0, r @ 24, resource_id @ 40, padding @ 44,
});

layout!(transfer_to_host_2d: TransferToHost2d, 56, {
    hdr @ 0, r @ 24, offset @ 40, resource_id @ 48, padding @ 52,
});

layout!(resource_attach_backing: ResourceAttachBacking, 32, {
    hdr @ 0, resource_id @ 24, nr_entries @ 28,
});

layout!(resource_detach_backing: ResourceDetachBacking, 32, {
    hdr @ 0, resource_id @ 24, padding @ 28,
});

layout!(display_one: DisplayOne, 24, { r @ 0, enabled @ 16, flags @ 20 });

layout!(resp_display_info: RespDisplayInfo, 408, { hdr @ 0, pmodes @ 24 });

layout!(get_capset_info: GetCapsetInfo, 32, { hdr @ 0, capset_index @ 24, padding @ 28 });

layout!(resp_capset_info: RespCapsetInfo, 40, {
    hdr @ 0, capset_id @ 24, capset_max_version @ 28, capset_max_size @ 32, padding @ 36,
});

layout!(get_capset: GetCapset, 32, { hdr @ 0, capset_id @ 24, capset_version @ 28 });

layout!(resp_capset: RespCapset, 24, { hdr @ 0 });

layout!(get_edid: GetEdid, 32, { hdr @ 0, scanout @ 24, padding @ 28 });

layout!(resp_edid: RespEdid, 1056, { hdr @ 0, size @ 24, padding @ 28, edid @ 32 });

layout!(resource_assign_uuid: ResourceAssignUuid, 32, {
    hdr @ 0, resource_id @ 24, padding @ 28,
});

layout!(resp_resource_uuid: RespResourceUuid, 40, { hdr @ 0, uuid @ 24 });

layout!(resource_create_blob: ResourceCreateBlob, 56, {
    hdr @ 0, resource_id @ 24, blob_mem @ 28, blob_flags @ 32, nr_entries @ 36,
    blob_id @ 40, size @ 48,
});

layout!(set_scanout_blob: SetScanoutBlob, 96, {
    hdr @ 0, r @ 24, scanout_id @ 40, resource_id @ 44, width @ 48, height @ 52,
    format @ 56, padding @ 60, strides @ 64, offsets @ 80,
});

layout!(ctx_create: CtxCreate, 96, {
    hdr @ 0, nlen @ 24, context_init @ 28, debug_name @ 32,
});

layout!(ctx_destroy: CtxDestroy, 24, { hdr @ 0 });

layout!(ctx_attach_resource: CtxAttachResource, 32, {
    hdr @ 0, resource_id @ 24, padding @ 28,
});

layout!(ctx_detach_resource: CtxDetachResource, 32, {
    hdr @ 0, resource_id @ 24, padding @ 28,
});

layout!(resource_create_3d: ResourceCreate3d, 72, {
    hdr @ 0, resource_id @ 24, target @ 28, format @ 32, bind @ 36, width @ 40,
    height @ 44, depth @ 48, array_size @ 52, last_level @ 56, nr_samples @ 60,
    flags @ 64, padding @ 68,
});

layout!(transfer_to_host_3d: TransferToHost3d, 72, {
    hdr @ 0, box_ @ 24, offset @ 48, resource_id @ 56, level @ 60, stride @ 64,
    layer_stride @ 68,
});

layout!(transfer_from_host_3d: TransferFromHost3d, 72, {
    hdr @ 0, box_ @ 24, offset @ 48, resource_id @ 56, level @ 60, stride @ 64,
    layer_stride @ 68,
});

layout!(cmd_submit: CmdSubmit, 32, { hdr @ 0, size @ 24, padding @ 28 });

layout!(resource_map_blob: ResourceMapBlob, 40, {
    hdr @ 0, resource_id @ 24, padding @ 28, offset @ 32,
});

layout!(resp_map_info: RespMapInfo, 32, { hdr @ 0, map_info @ 24, padding @ 28 });

layout!(resource_unmap_blob: ResourceUnmapBlob, 32, {
    hdr @ 0, resource_id @ 24, padding @ 28,
});

layout!(update_cursor: UpdateCursor, 56, {
    hdr @ 0, pos @ 24, resource_id @ 40, hot_x @ 44, hot_y @ 48, padding @ 52,
});

layout!(move_cursor: MoveCursor, 56, {
    hdr @ 0, pos @ 24, resource_id @ 40, hot_x @ 44, hot_y @ 48, padding @ 52,
});

// ABI-REFERENCE §5.7: the virgl capset header.
layout!(capset_header: CapsetHeader, 308, {
    max_version @ 0, sampler @ 4, render @ 68, depthstencil @ 132, vertexbuffer @ 196,
    bset @ 260, glsl_level @ 264, max_texture_array_layers @ 268,
    max_streamout_buffers @ 272, max_dual_source_render_targets @ 276,
    max_render_targets @ 280, max_samples @ 284, prim_mask @ 288, max_tbo_size @ 292,
    max_uniform_blocks @ 296, max_viewports @ 300, max_texture_gather_components @ 304,
});
