//! Type codes, header helpers, constructors and the capset parser.

use virtio_gpu_proto::blob::MapCache;
use virtio_gpu_proto::capset::FormatMask;
use virtio_gpu_proto::*;
use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

fn res(raw: u32) -> ResourceId {
    ResourceId::new(raw).unwrap()
}

fn ctx(raw: u32) -> CtxId {
    CtxId::new(raw).unwrap()
}

/// Checks a request's `TYPE` and its response's `TYPE` against the ABI-REFERENCE §1.3
/// table, that its constructor put the code in the header, and that it serialises to
/// its full size.
fn check_request<R: Request>(req: R, code: u32, resp_code: u32) {
    let name = core::any::type_name::<R>();
    assert_eq!(R::TYPE, CommandType(code), "{name}::TYPE");
    assert_eq!(
        R::Response::TYPE,
        ResponseType(resp_code),
        "{name}::Response"
    );
    assert_eq!(req.hdr().ty(), code, "{name} constructor header");
    assert_eq!(req.as_bytes().len(), size_of::<R>(), "{name} bytes");
    assert_eq!(
        &req.as_bytes()[..4],
        &code.to_le_bytes(),
        "{name} wire type"
    );
}

#[test]
fn every_request_has_its_spec_code() {
    let r = Rect::new(0, 0, 64, 64);
    let b = Box3d::new(0, 0, 0, 64, 64, 1);
    let pos = CursorPos::new(ScanoutId::new(0), 10, 20);
    let layout = ScanoutBlobLayout {
        width: 64,
        height: 64,
        format: Format::B8G8R8X8_UNORM,
        strides: [256, 0, 0, 0],
        offsets: [0; 4],
    };

    check_request(GetDisplayInfo::new(), 0x0100, 0x1101);
    check_request(
        ResourceCreate2d::new(res(1), Format::B8G8R8A8_UNORM, 64, 64),
        0x0101,
        0x1100,
    );
    check_request(ResourceUnref::new(res(1)), 0x0102, 0x1100);
    check_request(
        SetScanout::new(ScanoutId::new(0), Some(res(1)), r),
        0x0103,
        0x1100,
    );
    check_request(ResourceFlush::new(res(1), r), 0x0104, 0x1100);
    check_request(TransferToHost2d::new(res(1), r, 0), 0x0105, 0x1100);
    check_request(ResourceAttachBacking::new(res(1), 1), 0x0106, 0x1100);
    check_request(ResourceDetachBacking::new(res(1)), 0x0107, 0x1100);
    check_request(GetCapsetInfo::new(0), 0x0108, 0x1102);
    check_request(GetCapset::new(CapsetId::VIRGL2, 2), 0x0109, 0x1103);
    check_request(GetEdid::new(ScanoutId::new(0)), 0x010A, 0x1104);
    check_request(ResourceAssignUuid::new(res(1)), 0x010B, 0x1105);
    check_request(
        ResourceCreateBlob::new(
            Some(ctx(1)),
            res(1),
            BlobMem::HOST3D,
            BlobFlags::USE_MAPPABLE,
            7,
            4096,
            0,
        ),
        0x010C,
        0x1100,
    );
    check_request(
        SetScanoutBlob::new(ScanoutId::new(0), res(1), r, &layout),
        0x010D,
        0x1100,
    );
    check_request(CtxCreate::new(ctx(1), 0, "test"), 0x0200, 0x1100);
    check_request(CtxDestroy::new(ctx(1)), 0x0201, 0x1100);
    check_request(CtxAttachResource::new(ctx(1), res(1)), 0x0202, 0x1100);
    check_request(CtxDetachResource::new(ctx(1), res(1)), 0x0203, 0x1100);
    check_request(
        ResourceCreate3d::new(res(1), &Resource3dParams::default()),
        0x0204,
        0x1100,
    );
    check_request(
        TransferToHost3d::new(ctx(1), res(1), b, 0, 0, 0, 0),
        0x0205,
        0x1100,
    );
    check_request(
        TransferFromHost3d::new(ctx(1), res(1), b, 0, 0, 0, 0),
        0x0206,
        0x1100,
    );
    check_request(CmdSubmit::new(ctx(1), 16), 0x0207, 0x1100);
    check_request(ResourceMapBlob::new(res(1), 0), 0x0208, 0x1106);
    check_request(ResourceUnmapBlob::new(res(1)), 0x0209, 0x1100);
    // The cursor queue is not answered: a zero-sized response.
    check_request(UpdateCursor::new(pos, Some(res(1)), 0, 0), 0x0300, 0);
    check_request(MoveCursor::new(pos, Some(res(1))), 0x0301, 0);
    assert_eq!(size_of::<NoResponse>(), 0);
}

#[test]
fn every_response_has_its_spec_code() {
    fn code<R: Response>() -> u32 {
        R::TYPE.0
    }
    assert_eq!(code::<RespNodata>(), 0x1100);
    assert_eq!(code::<RespDisplayInfo>(), 0x1101);
    assert_eq!(code::<RespCapsetInfo>(), 0x1102);
    assert_eq!(code::<RespCapset>(), 0x1103);
    assert_eq!(code::<RespEdid>(), 0x1104);
    assert_eq!(code::<RespResourceUuid>(), 0x1105);
    assert_eq!(code::<RespMapInfo>(), 0x1106);
}

#[test]
fn only_cursor_commands_go_on_the_cursor_queue() {
    for code in 0..=0xFFFF {
        let expected = if matches!(code, 0x0300 | 0x0301) {
            Queue::Cursor
        } else {
            Queue::Control
        };
        assert_eq!(CommandType(code).queue(), expected, "{code:#06x}");
    }
    assert_eq!(Queue::Control.index(), 0);
    assert_eq!(Queue::Cursor.index(), 1);
}

#[test]
fn response_codes_are_open() {
    assert!(ResponseType(0x1203).is_error());
    assert_eq!(ResponseType(0x1203), ResponseType::ERR_INVALID_RESOURCE_ID);
    assert!(
        ResponseType(0x12FF).is_error(),
        "future error codes are errors"
    );
    assert!(!ResponseType::OK_NODATA.is_error());
    assert!(!ResponseType::OK_MAP_INFO.is_error());

    let unknown = ResponseType(0x4242);
    assert_eq!(unknown.name(), "unknown");
    assert_eq!(unknown.to_string(), "unknown (0x4242)");
    assert_eq!(ResponseType(0x1201).name(), "ERR_OUT_OF_MEMORY");
    assert_eq!(CommandType(0x0207).to_string(), "SUBMIT_3D (0x0207)");
    assert_eq!(CommandType(0x0999).name(), "unknown");
}

#[test]
fn header_builders_set_flags_and_fields() {
    let hdr = CtrlHdr::new(CommandType::SUBMIT_3D)
        .with_ctx(ctx(3))
        .fenced(FenceId::new(42))
        .with_ring(5);
    assert_eq!(hdr.command_type(), CommandType::SUBMIT_3D);
    assert_eq!(
        hdr.flags(),
        CtrlHdr::FLAG_FENCE | CtrlHdr::FLAG_INFO_RING_IDX
    );
    assert_eq!(hdr.fence_id(), Some(FenceId::new(42)));
    assert_eq!(hdr.ctx_id(), Some(ctx(3)));
    assert_eq!(hdr.ring_idx(), Some(5));

    let plain = CtrlHdr::new(CommandType::GET_DISPLAY_INFO);
    let mut expected = [0u8; 24];
    expected[..4].copy_from_slice(&0x0100u32.to_le_bytes());
    assert_eq!(plain.as_bytes(), &expected);
    assert_eq!(plain.fence_id(), None);
    assert_eq!(plain.ctx_id(), None);
    assert_eq!(plain.ring_idx(), None);
}

#[test]
#[should_panic(expected = "ring_idx 64 out of range")]
fn header_rejects_ring_64() {
    let _ = CtrlHdr::new(CommandType::SUBMIT_3D).with_ring(64);
}

#[test]
fn response_header_reads_device_values() {
    let mut bytes = [0u8; 24];
    bytes[..4].copy_from_slice(&0x1100u32.to_le_bytes());
    bytes[4..8].copy_from_slice(&(CtrlHdr::FLAG_FENCE | 0x80).to_le_bytes());
    bytes[8..16].copy_from_slice(&9u64.to_le_bytes());
    let (hdr, _) = CtrlHdr::ref_from_prefix(&bytes).unwrap();
    assert_eq!(hdr.response_type(), ResponseType::OK_NODATA);
    assert_eq!(hdr.flags(), 0x81, "unknown flag bits are kept");
    assert_eq!(hdr.fence_id(), Some(FenceId::new(9)));
}

#[test]
fn queue_can_stamp_a_fence_through_the_trait() {
    fn stamp<R: Request>(req: &mut R, fence: FenceId) {
        let hdr = req.hdr_mut();
        *hdr = hdr.fenced(fence);
    }
    let mut req = TransferFromHost3d::new(ctx(1), res(2), Box3d::new(0, 0, 0, 1, 1, 1), 0, 0, 0, 0);
    stamp(&mut req, FenceId::new(0x1_0000_0001));
    let bytes = req.as_bytes();
    assert_eq!(&bytes[4..8], &CtrlHdr::FLAG_FENCE.to_le_bytes());
    assert_eq!(&bytes[8..16], &0x1_0000_0001u64.to_le_bytes());
    assert_eq!(&bytes[16..20], &1u32.to_le_bytes());
}

#[test]
fn optional_resources_encode_as_zero() {
    let r = Rect::new(0, 0, 1, 1);
    let off = SetScanout::new(ScanoutId::new(1), None, r);
    assert_eq!(off.resource_id.get(), 0);
    assert_eq!(off.scanout_id.get(), 1);
    let hidden = UpdateCursor::new(CursorPos::new(ScanoutId::new(0), 0, 0), None, 0, 0);
    assert_eq!(hidden.resource_id.get(), 0);
    let guest_blob =
        ResourceCreateBlob::new(None, res(4), BlobMem::GUEST, BlobFlags::empty(), 0, 4096, 1);
    assert_eq!(guest_blob.hdr.ctx_id(), None);
}

#[test]
fn ids_reject_zero() {
    assert_eq!(ResourceId::new(0), None);
    assert_eq!(CtxId::new(0), None);
    assert_eq!(ResourceId::new(7).map(ResourceId::get), Some(7));
    assert_eq!(CapsetId::DRM.get(), 6);
}

#[test]
fn unknown_feature_bits_survive() {
    let raw = (1 << 40) | (1 << 32) | 1;
    let features = Features::from_bits_retain(raw);
    assert!(features.contains(Features::VIRGL | Features::VERSION_1));
    assert_eq!(features.bits(), raw);
}

#[test]
fn ctx_create_truncates_name_at_a_char_boundary() {
    let long = CtxCreate::new(ctx(1), 2, &"x".repeat(100));
    assert_eq!(long.nlen.get(), 64);
    assert_eq!(long.context_init.get(), 2);
    assert_eq!(long.hdr.ctx_id(), Some(ctx(1)));

    // 'é' is two bytes and starts at odd offsets here, so byte 64 splits one.
    let name = format!("a{}", "é".repeat(40));
    let cut = CtxCreate::new(ctx(1), 0, &name);
    assert_eq!(cut.nlen.get(), 63);
    assert_eq!(&cut.debug_name[..63], &name.as_bytes()[..63]);
    assert_eq!(cut.debug_name[63], 0);

    let short = CtxCreate::new(ctx(1), 0, "kwin");
    assert_eq!(short.nlen.get(), 4);
    assert_eq!(&short.debug_name[..5], b"kwin\0");
}

#[test]
fn resp_capset_info_round_trips() {
    let mut buf = Vec::new();
    buf.extend_from_slice(&0x1102u32.to_le_bytes());
    buf.extend_from_slice(&[0; 20]);
    for field in [2u32, 2, 1376, 0] {
        buf.extend_from_slice(&field.to_le_bytes());
    }
    buf.extend_from_slice(b"tail");

    let (info, rest) = RespCapsetInfo::ref_from_prefix(&buf).unwrap();
    assert_eq!(info.hdr.response_type(), RespCapsetInfo::TYPE);
    assert_eq!(info.capset_id.get(), CapsetId::VIRGL2.get());
    assert_eq!(info.capset_max_version.get(), 2);
    assert_eq!(info.capset_max_size.get(), 1376);
    assert_eq!(rest, b"tail");
    assert_eq!(info.as_bytes(), &buf[..40]);
}

#[test]
fn resp_edid_clamps_device_size() {
    let mut resp = RespEdid::new_zeroed();
    resp.size.set(128);
    assert_eq!(resp.edid().len(), 128);
    resp.size.set(5000);
    assert_eq!(resp.edid().len(), 1024);
}

#[test]
fn map_info_keeps_only_cache_bits() {
    let mut resp = RespMapInfo::new_zeroed();
    resp.map_info.set(0xF0 | 3);
    assert_eq!(resp.cache(), MapCache::WC);
}

/// A well-formed VIRGL2 capset as Debian 12's virglrenderer would report it
/// (1376 bytes), renderable in B8G8R8A8.
fn v2_capset() -> CapsetHeader {
    let mut caps = CapsetHeader::new_zeroed();
    caps.max_version.set(2);
    caps.glsl_level.set(330);
    caps.render[0].set(1 << 1);
    caps
}

fn capset_bytes(caps: &CapsetHeader, len: usize) -> Vec<u8> {
    let mut bytes = caps.as_bytes().to_vec();
    bytes.resize(len, 0);
    bytes
}

#[test]
fn capset_parser_accepts_a_v2_header() {
    let caps = v2_capset();
    let parsed = CapsetHeader::parse(CapsetId::VIRGL2, &capset_bytes(&caps, 1376)).unwrap();
    assert_eq!(parsed.glsl_level.get(), 330);
    assert!(format_supported(&parsed.render, 1));

    // R8G8B8A8 (67) alone is enough too.
    let mut rgba = caps;
    rgba.render = FormatMask::default();
    rgba.render[2].set(1 << 3);
    assert!(CapsetHeader::parse(CapsetId::VIRGL2, rgba.as_bytes()).is_ok());

    let mut v1 = caps;
    v1.max_version.set(1);
    assert!(CapsetHeader::parse(CapsetId::VIRGL, &capset_bytes(&v1, CAPSET_V1_SIZE)).is_ok());
}

#[test]
fn capset_parser_rejects_bad_data() {
    let caps = v2_capset();
    let reject = |id, caps: &CapsetHeader, len| {
        CapsetHeader::parse(id, &capset_bytes(caps, len)).unwrap_err()
    };

    assert_eq!(
        reject(CapsetId::VENUS, &caps, 1376),
        CapsetError::NotVirgl(CapsetId::VENUS)
    );
    assert_eq!(
        reject(CapsetId::VIRGL2, &caps, CAPSET_V1_SIZE - 1),
        CapsetError::TooShort { len: 307 }
    );
    assert_eq!(
        reject(CapsetId::VIRGL, &caps, 1376),
        CapsetError::VersionMismatch {
            expected: 1,
            found: 2
        }
    );

    let mut unfilled = caps;
    unfilled.max_version.set(0);
    assert_eq!(
        reject(CapsetId::VIRGL2, &unfilled, 1376),
        CapsetError::VersionMismatch {
            expected: 2,
            found: 0
        }
    );

    let mut no_glsl = caps;
    no_glsl.glsl_level.set(0);
    assert_eq!(
        reject(CapsetId::VIRGL2, &no_glsl, 1376),
        CapsetError::NoGlsl
    );

    let mut no_render = caps;
    no_render.render[0] = U32::new(1 << 2);
    assert_eq!(
        reject(CapsetId::VIRGL2, &no_render, 1376),
        CapsetError::NoRenderableFormat
    );
}

#[test]
fn capset_errors_display() {
    let err: &dyn std::error::Error = &CapsetError::TooShort { len: 12 };
    assert_eq!(
        err.to_string(),
        "capset data is 12 bytes, shorter than the 308-byte virgl header"
    );
}

#[test]
fn format_mask_bits() {
    let mut mask = FormatMask::default();
    mask[2].set(1 << 3);
    mask[15].set(1 << 31);
    assert!(format_supported(&mask, 67));
    assert!(format_supported(&mask, 511));
    assert!(!format_supported(&mask, 66));
    assert!(!format_supported(&mask, 512));
    assert!(!format_supported(&mask, u32::MAX));
}
