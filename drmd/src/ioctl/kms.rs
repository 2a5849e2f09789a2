//! The legacy KMS ioctls (drm_mode_config.c, drm_connector.c, drm_crtc.c,
//! drm_plane.c, drm_framebuffer.c, drm_dumb_buffers.c), answering bad
//! input as Linux does, over [`crate::kms`]. Framebuffers are held by
//! drmd's control session (their objects are exported on ADDFB), which
//! sends every display command, so what is on screen stays valid whatever
//! its maker's file does.

use std::sync::Arc;
use std::time::Instant;

use drm_uapi::kms::{
    self as k, CardResHeader, ClipRect, CreateBlobHeader, CreateDumb, CrtcHeader, CrtcLutHeader,
    Cursor2, FbCmd, FbCmd2, FbDirtyHeader, GetBlobHeader, GetConnectorHeader, GetEncoder,
    GetPlaneHeader, GetPlaneResHeader, GetPropertyHeader, Id, ListLesseesHeader, MapDumb, ModeInfo,
    ObjGetPropertiesHeader, PageFlip, PropertyEnum,
};
use drm_uapi::wire::Payload;
use scheme_seam::{Answer, Errno, HandleId, Result};
use virtio_gpu_proto::{Format, ResourceCreate2d, ResourceId};
use zerocopy::{FromZeros, IntoBytes};

use super::{for_room, virtgpu, wire};
use crate::device::Device;
use crate::file::DrmFile;
use crate::gem::{Image, Upload};
use crate::kms::display::{self, Area};
use crate::kms::{
    cursor_image, modes, props, Flip, Framebuffer, Kms, Object, PlaneState, Queued,
    CONNECTOR_VIRTUAL, CURSOR_FORMATS, CURSOR_SIZE, ENCODER_VIRTUAL, MAX_SIZE, MIN_SIZE,
    PRIMARY_FORMATS, VBLANK_EVENT,
};
use crate::ring::Batch;

/// Known fourccs this device does not scan out (ENOENT rather than EINVAL,
/// as Linux's `virtio_gpu_user_framebuffer_create` answers them).
const OTHER_FORMATS: [&[u8; 4]; 8] = [
    b"RG16", b"XB24", b"AB24", b"RG24", b"BG24", b"XR30", b"NV12", b"YUYV",
];

/// Writes as many of `values` as array `index` has room for.
fn fill<T: IntoBytes + zerocopy::Immutable>(
    p: &mut Payload<'_>,
    index: usize,
    room: u32,
    values: &[T],
) -> Result<()> {
    let n = values.len().min(room as usize);
    p.set_array(index, &values[..n]).map_err(wire)
}

/// GETRESOURCES: the caller's framebuffers, and every CRTC, connector and
/// encoder, each array filled as far as its room goes.
pub fn get_resources(kms: &Kms, id: HandleId, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut r: CardResHeader = p.header().map_err(wire)?;
    let arrays = [
        r.count_fbs,
        r.count_crtcs,
        r.count_connectors,
        r.count_encoders,
    ]
    .map(|n| p.skip_array::<u32>(n));
    p.finish().map_err(wire)?;
    let n = kms.outputs.len();
    let ids = |f: fn(usize) -> Object| (0..n).map(|i| f(i).id()).collect::<Vec<_>>();
    let lists = [
        kms.fbs_of(id),
        ids(Object::Crtc),
        ids(Object::Connector),
        ids(Object::Encoder),
    ];
    let rooms = [
        r.count_fbs,
        r.count_crtcs,
        r.count_connectors,
        r.count_encoders,
    ];
    for ((index, list), room) in arrays.into_iter().zip(&lists).zip(rooms) {
        fill(&mut p, index.map_err(wire)?, room, list)?;
    }
    r.count_fbs = lists[0].len() as u32;
    r.count_crtcs = n as u32;
    r.count_connectors = n as u32;
    r.count_encoders = n as u32;
    r.min_width = MIN_SIZE;
    r.max_width = MAX_SIZE;
    r.min_height = MIN_SIZE;
    r.max_height = MAX_SIZE;
    p.set_header(&r).map_err(wire)?;
    Ok(0)
}

/// GETCONNECTOR: its encoder and modes (each copied only when all fit, as
/// Linux), no properties yet, and whether a display is connected.
pub fn get_connector(kms: &Kms, file: &DrmFile, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut c: GetConnectorHeader = p.header().map_err(wire)?;
    let encoders = p.skip_array::<u32>(c.count_encoders);
    let modes_at = p.skip_array::<ModeInfo>(c.count_modes);
    let props = p.skip_array::<u32>(c.count_props);
    let values = p.skip_array::<u64>(c.count_props);
    p.finish().map_err(wire)?;
    let Some(Object::Connector(n)) = kms.object(c.connector_id) else {
        return Err(Errno::ENOENT);
    };
    let (encoders, modes_at) = (encoders.map_err(wire)?, modes_at.map_err(wire)?);
    let (props_at, values_at) = (props.map_err(wire)?, values.map_err(wire)?);
    let (ids, values) = visible_properties(kms, file, Object::Connector(n));
    fill(&mut p, props_at, c.count_props, &ids)?;
    fill(&mut p, values_at, c.count_props, &values)?;
    let out = &kms.outputs[n];
    let encoder = Object::Encoder(n).id();
    if c.count_encoders >= 1 {
        p.set_array(encoders, &[encoder]).map_err(wire)?;
    }
    let modes = &out.modes;
    if !modes.is_empty() && c.count_modes as usize >= modes.len() {
        p.set_array(modes_at, modes).map_err(wire)?;
    }
    c.count_encoders = 1;
    c.count_modes = modes.len() as u32;
    c.count_props = ids.len() as u32;
    c.encoder_id = if out.mode.is_some() { encoder } else { 0 };
    c.connector_type = CONNECTOR_VIRTUAL;
    c.connector_type_id = n as u32 + 1;
    c.connection = if out.connected() { 1 } else { 2 };
    (c.mm_width, c.mm_height) = out.size_mm;
    // DRM_MODE_SUBPIXEL_UNKNOWN.
    c.subpixel = 1;
    p.set_header(&c).map_err(wire)?;
    Ok(0)
}

/// GETENCODER.
pub fn get_encoder(kms: &Kms, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut e: GetEncoder = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    let Some(Object::Encoder(n)) = kms.object(e.encoder_id) else {
        return Err(Errno::ENOENT);
    };
    let out = &kms.outputs[n];
    e.encoder_type = ENCODER_VIRTUAL;
    e.crtc_id = if out.mode.is_some() { out.crtc_id() } else { 0 };
    e.possible_crtcs = 1 << n;
    e.possible_clones = 0;
    p.set_header(&e).map_err(wire)?;
    Ok(0)
}

/// GETCRTC: the mode, framebuffer and position (no gamma table).
pub fn get_crtc(kms: &Kms, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut c: CrtcHeader = p.header().map_err(wire)?;
    p.skip_array::<u32>(c.count_connectors).map_err(wire)?;
    p.finish().map_err(wire)?;
    let out = &kms.outputs[kms.crtc(c.crtc_id)?];
    c.fb_id = out.primary.fb.as_ref().map_or(0, |f| f.id);
    (c.x, c.y) = out.primary.src;
    c.gamma_size = 0;
    c.mode_valid = u32::from(out.mode.is_some());
    c.mode = out.mode.unwrap_or_default();
    p.set_header(&c).map_err(wire)?;
    Ok(0)
}

/// `drm_mode_convert_umode`'s checks: EINVAL for timings that are not
/// ordered or a mode of no size.
fn check_mode(m: &ModeInfo) -> Result<()> {
    let h = m.hdisplay <= m.hsync_start && m.hsync_start <= m.hsync_end && m.hsync_end <= m.htotal;
    let v = m.vdisplay <= m.vsync_start && m.vsync_start <= m.vsync_end && m.vsync_end <= m.vtotal;
    if m.clock == 0 || m.hdisplay == 0 || m.vdisplay == 0 || !h || !v {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// `drm_crtc_check_viewport`: the mode, from (x, y), must lie inside the
/// framebuffer (ENOSPC).
fn check_viewport(fb: &Framebuffer, (x, y): (u32, u32), m: &ModeInfo) -> Result<()> {
    let inside = u64::from(x) + u64::from(m.hdisplay) <= u64::from(fb.width)
        && u64::from(y) + u64::from(m.vdisplay) <= u64::from(fb.height);
    if inside {
        Ok(())
    } else {
        Err(Errno::ENOSPC)
    }
}

/// SETCRTC: a mode and framebuffer on a CRTC and its connector, or the
/// CRTC off. Checked as `drm_mode_setcrtc`; parks while the ring lacks
/// room for the scanout change.
pub fn set_crtc(device: &Device, kms: &mut Kms, payload: &mut [u8]) -> Result<Answer> {
    let mut p = Payload::new(payload);
    let c: CrtcHeader = p.header().map_err(wire)?;
    let connectors = p.u32s(c.count_connectors);
    p.finish().map_err(wire)?;
    let n = kms.crtc(c.crtc_id)?;
    if c.x & 0xffff_0000 != 0 || c.y & 0xffff_0000 != 0 {
        return Err(Errno::ERANGE);
    }
    let connectors = connectors.map_err(wire)?;
    let plane = if c.mode_valid != 0 {
        check_mode(&c.mode)?;
        let fb = match c.fb_id {
            u32::MAX => kms.outputs[n].primary.fb.clone().ok_or(Errno::EINVAL)?,
            id => kms.fb(id)?,
        };
        check_viewport(&fb, (c.x, c.y), &c.mode)?;
        if connectors.is_empty() {
            return Err(Errno::EINVAL);
        }
        for &id in &connectors {
            match kms.object(id) {
                Some(Object::Connector(m)) if m == n => {}
                Some(Object::Connector(_)) => return Err(Errno::EINVAL),
                _ => return Err(Errno::ENOENT),
            }
        }
        PlaneState {
            fb: Some(fb),
            src: (c.x, c.y),
        }
    } else {
        if !connectors.is_empty() {
            return Err(Errno::EINVAL);
        }
        PlaneState::default()
    };
    let mode = (c.mode_valid != 0).then_some(c.mode);
    let out = &mut kms.outputs[n];
    let before = (out.mode, out.shown, out.dpms_off);
    out.mode = mode;
    // A modeset turns the CRTC on whatever DPMS said.
    out.dpms_off = false;
    match display::show(
        &**device.export_holder(),
        &mut Batch::new(display::SHOW),
        out,
        plane,
        None,
    )? {
        Some(_) => {
            // An unchanged mode keeps its vblank count running.
            if mode.is_none() || before.0 != mode || before.2 {
                out.vblank.follow(mode.as_ref(), Instant::now());
            }
            if before.0 != mode {
                kms.set_mode(n, mode);
            }
            Ok(Answer::Ready(0))
        }
        None => {
            (out.mode, out.shown, out.dpms_off) = before;
            Ok(for_room())
        }
    }
}

/// GETPLANERESOURCES: primary and cursor planes for files with
/// UNIVERSAL_PLANES (this device has no overlay planes).
pub fn get_plane_resources(kms: &Kms, file: &DrmFile, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut r: GetPlaneResHeader = p.header().map_err(wire)?;
    let planes = p.skip_array::<u32>(r.count_planes);
    p.finish().map_err(wire)?;
    // An atomic client that does not set the cursor's hotspot gets no
    // cursor plane (drm_mode_getplane_res on a DRIVER_CURSOR_HOTSPOT driver).
    let caps = file.caps;
    let cursor = !caps.atomic || caps.cursor_hotspot;
    let ids: Vec<u32> = match caps.universal_planes {
        true => (0..kms.outputs.len())
            .flat_map(|i| {
                [
                    Some(Object::Primary(i).id()),
                    cursor.then(|| Object::Cursor(i).id()),
                ]
            })
            .flatten()
            .collect(),
        false => Vec::new(),
    };
    fill(&mut p, planes.map_err(wire)?, r.count_planes, &ids)?;
    r.count_planes = ids.len() as u32;
    p.set_header(&r).map_err(wire)?;
    Ok(0)
}

/// GETPLANE: where it shows and its formats (copied only when all fit).
pub fn get_plane(kms: &Kms, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut g: GetPlaneHeader = p.header().map_err(wire)?;
    let formats_at = p.skip_array::<u32>(g.count_format_types);
    p.finish().map_err(wire)?;
    let (n, formats, fb) = match kms.object(g.plane_id) {
        Some(Object::Primary(n)) => {
            let out = &kms.outputs[n];
            (
                n,
                &PRIMARY_FORMATS[..],
                out.primary.fb.as_ref().map(|f| f.id),
            )
        }
        Some(Object::Cursor(n)) => (n, &CURSOR_FORMATS[..], None),
        _ => return Err(Errno::ENOENT),
    };
    let out = &kms.outputs[n];
    let formats_at = formats_at.map_err(wire)?;
    if g.count_format_types as usize >= formats.len() {
        p.set_array(formats_at, formats).map_err(wire)?;
    }
    g.crtc_id = match kms.object(g.plane_id) {
        Some(Object::Cursor(_)) if out.cursor.image.is_some() => out.crtc_id(),
        Some(Object::Primary(_)) if fb.is_some() => out.crtc_id(),
        _ => 0,
    };
    g.fb_id = fb.unwrap_or(0);
    g.possible_crtcs = 1 << n;
    g.gamma_size = 0;
    g.count_format_types = formats.len() as u32;
    p.set_header(&g).map_err(wire)?;
    Ok(0)
}

/// CREATE_DUMB: a 2D XRGB8888 resource of 32 bits per pixel (the only
/// depth virtio_gpu makes), with lines of `width * 4` bytes. Checked as
/// `drm_mode_create_dumb` then `virtio_gpu_mode_dumb_create`.
pub fn create_dumb(device: &mut Device, file: &mut DrmFile, payload: &mut [u8]) -> Result<Answer> {
    let mut p = Payload::new(payload);
    let mut d: CreateDumb = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    if d.width == 0 || d.height == 0 || d.bpp == 0 || d.flags != 0 {
        return Err(Errno::EINVAL);
    }
    let cpp = d.bpp.div_ceil(8);
    let pitch = cpp.checked_mul(d.width).ok_or(Errno::EINVAL)?;
    let size = pitch.checked_mul(d.height).ok_or(Errno::EINVAL)?;
    if d.bpp != 32 {
        return Err(Errno::EINVAL);
    }
    let placeholder = ResourceId::new(1).expect("non-zero");
    let request = ResourceCreate2d::new(placeholder, Format::B8G8R8X8_UNORM, d.width, d.height);
    let image = Image {
        width: d.width,
        height: d.height,
        cpp: 4,
        upload: Upload::Transfer,
    };
    let Some((handle, _)) =
        virtgpu::new_object(device, file, request.as_bytes(), size, Some(image))?
    else {
        return Ok(for_room());
    };
    d.handle = handle;
    d.pitch = pitch;
    d.size = u64::from(file.bo(handle)?.size);
    p.set_header(&d).map_err(wire)?;
    Ok(Answer::Ready(0))
}

/// MAP_DUMB: the object's mmap offset (pad must be 0, as Linux insists).
pub fn map_dumb(file: &DrmFile, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut m: MapDumb = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    if m.pad != 0 {
        return Err(Errno::EINVAL);
    }
    m.offset = file.bo(m.handle)?.offset;
    p.set_header(&m).map_err(wire)?;
    Ok(0)
}

/// DESTROY_DUMB: GEM_CLOSE of the handle.
pub fn destroy_dumb(file: &mut DrmFile, payload: &mut [u8]) -> Result<Answer> {
    let mut p = Payload::new(payload);
    let d: Id = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    Ok(match file.close_handle(d.id)? {
        Some(()) => Answer::Ready(0),
        None => for_room(),
    })
}

/// The fourcc ADDFB's bpp/depth pair names (`drm_driver_legacy_fb_format`).
fn legacy_format(bpp: u32, depth: u32) -> Result<u32> {
    Ok(match (bpp, depth) {
        (32, 24) => k::FORMAT_XRGB8888,
        (32, 32) => k::FORMAT_ARGB8888,
        (16, 16) => u32::from_le_bytes(*b"RG16"),
        (24, 24) => u32::from_le_bytes(*b"RG24"),
        (32, 30) => u32::from_le_bytes(*b"XR30"),
        _ => return Err(Errno::EINVAL),
    })
}

/// ADDFB2 (and ADDFB, turned into one): checked as `framebuffer_check`,
/// `drm_gem_fb_init_with_funcs` and virtio_gpu's `fb_create`, in that
/// order; the object is exported so that drmd's control session holds it
/// for as long as the framebuffer is shown.
pub fn add_fb2(
    device: &Device,
    kms: &mut Kms,
    file: &mut DrmFile,
    id: HandleId,
    f: &mut FbCmd2,
) -> Result<()> {
    let known = PRIMARY_FORMATS.contains(&f.pixel_format)
        || OTHER_FORMATS
            .iter()
            .any(|c| u32::from_le_bytes(**c) == f.pixel_format);
    if !known {
        return Err(Errno::EINVAL);
    }
    let inside = |v: u32| (MIN_SIZE..=MAX_SIZE).contains(&v);
    if !inside(f.width) || !inside(f.height) {
        return Err(Errno::EINVAL);
    }
    // No modifiers on this device (fb_modifiers_not_supported).
    if f.flags & !k::FB_INTERLACED != 0 {
        return Err(Errno::EINVAL);
    }
    if f.handles[0] == 0 || f.pitches[0] < f.width.saturating_mul(4) {
        return Err(Errno::EINVAL);
    }
    if f.handles[1..].iter().any(|&h| h != 0)
        || f.pitches[1..].iter().any(|&p| p != 0)
        || f.offsets[1..].iter().any(|&o| o != 0)
    {
        return Err(Errno::EINVAL);
    }
    let gem = file.bo(f.handles[0])?.clone();
    let min = (u64::from(f.height) - 1) * u64::from(f.pitches[0])
        + u64::from(f.width) * 4
        + u64::from(f.offsets[0]);
    if u64::from(gem.size) < min {
        return Err(Errno::EINVAL);
    }
    if !PRIMARY_FORMATS.contains(&f.pixel_format) {
        return Err(Errno::ENOENT);
    }
    // What virtio scans out is a rectangle of the resource's image: the
    // framebuffer must be one, on its lines.
    let image = gem.image.ok_or(Errno::EINVAL)?;
    // (An image whose lines do not fit a u32 fits no framebuffer's pitch.)
    let line = image
        .width
        .checked_mul(image.cpp)
        .filter(|&l| l > 0)
        .ok_or(Errno::EINVAL)?;
    let origin = (f.offsets[0] % line / 4, f.offsets[0] / line);
    let fits = f.pitches[0] == line
        && f.offsets[0].is_multiple_of(4)
        && u64::from(origin.0) + u64::from(f.width) <= u64::from(image.width)
        && u64::from(origin.1) + u64::from(f.height) <= u64::from(image.height);
    if !fits {
        return Err(Errno::EINVAL);
    }
    gem.export(&*file.session, device.export_holder())
        .map_err(crate::errno::io_errno)?;
    let fb_id = kms.new_id();
    kms.add_fb(Framebuffer {
        id: fb_id,
        owner: id,
        gem,
        handle: f.handles[0],
        width: f.width,
        height: f.height,
        pitch: f.pitches[0],
        offset: f.offsets[0],
        format: f.pixel_format,
        origin,
    });
    f.fb_id = fb_id;
    Ok(())
}

/// ADDFB2.
pub fn addfb2(
    device: &Device,
    kms: &mut Kms,
    file: &mut DrmFile,
    id: HandleId,
    payload: &mut [u8],
) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut f: FbCmd2 = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    add_fb2(device, kms, file, id, &mut f)?;
    p.set_header(&f).map_err(wire)?;
    Ok(0)
}

/// ADDFB: ADDFB2 of the format its bpp and depth name.
pub fn addfb(
    device: &Device,
    kms: &mut Kms,
    file: &mut DrmFile,
    id: HandleId,
    payload: &mut [u8],
) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut f: FbCmd = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    let mut f2 = FbCmd2 {
        width: f.width,
        height: f.height,
        pixel_format: legacy_format(f.bpp, f.depth)?,
        ..FbCmd2::new_zeroed()
    };
    f2.handles[0] = f.handle;
    f2.pitches[0] = f.pitch;
    add_fb2(device, kms, file, id, &mut f2)?;
    f.fb_id = f2.fb_id;
    p.set_header(&f).map_err(wire)?;
    Ok(0)
}

/// Turns off the outputs whose primary plane shows `fb` (RMFB, and a
/// file's framebuffers when it closes): `false` when the ring is full.
pub fn stop_showing(device: &Device, kms: &mut Kms, fb: &Arc<Framebuffer>) -> Result<bool> {
    for n in kms.showing(fb) {
        let out = &mut kms.outputs[n];
        let mode = out.mode.take();
        if display::show(
            &**device.export_holder(),
            &mut Batch::new(display::SHOW),
            out,
            PlaneState::default(),
            None,
        )?
        .is_none()
        {
            out.mode = mode;
            return Ok(false);
        }
        out.vblank.stop(Instant::now());
        kms.set_mode(n, None);
    }
    Ok(true)
}

/// RMFB (`close` false: the planes showing it go off, as Linux's
/// `drm_framebuffer_remove`) and CLOSEFB (`close`: they keep it).
pub fn rmfb(
    device: &Device,
    kms: &mut Kms,
    id: HandleId,
    close: bool,
    payload: &mut [u8],
) -> Result<Answer> {
    let mut p = Payload::new(payload);
    let fb_id = if close {
        let c: k::CloseFb = p.header().map_err(wire)?;
        p.finish().map_err(wire)?;
        if c.pad != 0 {
            return Err(Errno::EINVAL);
        }
        c.fb_id
    } else {
        let r: Id = p.header().map_err(wire)?;
        p.finish().map_err(wire)?;
        r.id
    };
    let fb = kms.fb(fb_id)?;
    if fb.owner != id {
        return Err(Errno::ENOENT);
    }
    if !close && !stop_showing(device, kms, &fb)? {
        return Ok(for_room());
    }
    kms.take_fb(fb_id, id)?;
    Ok(Answer::Ready(0))
}

/// GETFB and GETFB2: a framebuffer's shape, and a new handle to its object
/// for the master or root (0 for anyone else, as Linux). None when the
/// ring is too full to attach the handle.
fn get_fb_common(
    device: &Device,
    kms: &Kms,
    file: &mut DrmFile,
    privileged: bool,
    fb_id: u32,
) -> Result<Option<(Arc<Framebuffer>, u32)>> {
    let fb = kms.fb(fb_id)?;
    if !privileged {
        return Ok(Some((fb, 0)));
    }
    let virgl = device.features.contains(virtio_gpu_proto::Features::VIRGL);
    Ok(file
        .open_object(fb.gem.clone(), virgl)?
        .map(|handle| (fb, handle)))
}

/// GETFB.
pub fn getfb(
    device: &Device,
    kms: &Kms,
    file: &mut DrmFile,
    privileged: bool,
    payload: &mut [u8],
) -> Result<Answer> {
    let mut p = Payload::new(payload);
    let mut f: FbCmd = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    let Some((fb, handle)) = get_fb_common(device, kms, file, privileged, f.fb_id)? else {
        return Ok(for_room());
    };
    f.width = fb.width;
    f.height = fb.height;
    f.pitch = fb.pitch;
    f.bpp = 32;
    f.depth = if fb.format == k::FORMAT_ARGB8888 {
        32
    } else {
        24
    };
    f.handle = handle;
    p.set_header(&f).map_err(wire)?;
    Ok(Answer::Ready(0))
}

/// GETFB2.
pub fn getfb2(
    device: &Device,
    kms: &Kms,
    file: &mut DrmFile,
    privileged: bool,
    payload: &mut [u8],
) -> Result<Answer> {
    let mut p = Payload::new(payload);
    let f: FbCmd2 = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    let Some((fb, handle)) = get_fb_common(device, kms, file, privileged, f.fb_id)? else {
        return Ok(for_room());
    };
    let mut out = FbCmd2 {
        fb_id: fb.id,
        width: fb.width,
        height: fb.height,
        pixel_format: fb.format,
        ..FbCmd2::new_zeroed()
    };
    out.handles[0] = handle;
    out.pitches[0] = fb.pitch;
    out.offsets[0] = fb.offset;
    p.set_header(&out).map_err(wire)?;
    Ok(Answer::Ready(0))
}

/// DIRTYFB: the clips (none: all of it), merged into one rectangle, are
/// uploaded and flushed on every output showing the framebuffer.
pub fn dirtyfb(device: &Device, kms: &mut Kms, payload: &mut [u8]) -> Result<Answer> {
    const COPY: u32 = 1;
    const FILL: u32 = 2;
    let mut p = Payload::new(payload);
    let d: FbDirtyHeader = p.header().map_err(wire)?;
    let clips = p.array::<ClipRect>(d.num_clips);
    p.finish().map_err(wire)?;
    let fb = kms.fb(d.fb_id)?;
    if d.num_clips > k::DIRTY_MAX_CLIPS
        || d.flags & !(COPY | FILL) != 0
        || (d.flags & COPY != 0 && !d.num_clips.is_multiple_of(2))
    {
        return Err(Errno::EINVAL);
    }
    let clips = clips.map_err(wire)?;
    let whole: Area = [0, 0, fb.width, fb.height];
    let damage = if clips.is_empty() {
        Some(whole)
    } else {
        let areas = clips.iter().filter_map(|c| {
            let area = [
                u32::from(c.x1),
                u32::from(c.y1),
                u32::from(c.x2.saturating_sub(c.x1)),
                u32::from(c.y2.saturating_sub(c.y1)),
            ];
            display::intersect(area, whole)
        });
        display::merged(areas)
    };
    let Some(damage) = damage else {
        return Ok(Answer::Ready(0));
    };
    for n in kms.showing(&fb) {
        let out = &mut kms.outputs[n];
        let plane = out.primary.clone();
        if display::show(
            &**device.export_holder(),
            &mut Batch::new(display::SHOW),
            out,
            plane,
            Some(damage),
        )?
        .is_none()
        {
            return Ok(for_room());
        }
    }
    Ok(Answer::Ready(0))
}

/// PAGE_FLIP: shows `fb_id` at the CRTC's next simulated vblank after its
/// flush is done, with a FLIP_COMPLETE event if asked. EBUSY while a flip
/// is pending, EINVAL with the CRTC off, ENOMEM without room for the event.
pub fn page_flip(
    device: &Device,
    kms: &mut Kms,
    file: &mut DrmFile,
    id: HandleId,
    payload: &mut [u8],
) -> Result<Answer> {
    let mut p = Payload::new(payload);
    let f: PageFlip = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    let known =
        k::flip::EVENT | k::flip::ASYNC | k::flip::TARGET_ABSOLUTE | k::flip::TARGET_RELATIVE;
    if f.flags & !known != 0 || f.flags & !k::flip::EVENT != 0 || f.sequence != 0 {
        // ASYNC_PAGE_FLIP and PAGE_FLIP_TARGET are 0: those flags are EINVAL.
        return Err(Errno::EINVAL);
    }
    let n = kms.crtc(f.crtc_id)?;
    let fb = kms.fb(f.fb_id)?;
    let out = &kms.outputs[n];
    let (Some(mode), Some(old)) = (out.mode.filter(|_| out.active()), out.primary.fb.clone())
    else {
        return Err(Errno::EINVAL);
    };
    check_viewport(&fb, out.primary.src, &mode)?;
    if old.format != fb.format {
        return Err(Errno::EINVAL);
    }
    if out.flip.is_some() {
        return Err(Errno::EBUSY);
    }
    let event = f.flags & k::flip::EVENT != 0;
    if event {
        file.events.reserve(VBLANK_EVENT)?;
    }
    let out = &mut kms.outputs[n];
    let plane = PlaneState {
        fb: Some(fb),
        src: out.primary.src,
    };
    let Some(fence) = display::show(
        &**device.export_holder(),
        &mut Batch::new(display::SHOW),
        out,
        plane,
        None,
    )?
    else {
        if event {
            file.events.unreserve(VBLANK_EVENT);
        }
        return Ok(for_room());
    };
    out.flip = Some(Flip {
        owner: id,
        fence,
        event: event.then_some(f.user_data),
        checked: out.vblank.count(Instant::now()),
        out_fence: None,
    });
    Ok(Answer::Ready(0))
}

/// CURSOR and CURSOR2: a new image (BO), a move (MOVE), or both. The image
/// must be a 64x64 buffer (the only cursor virtio shows); handle 0 hides
/// the cursor.
pub fn cursor(
    device: &Device,
    kms: &mut Kms,
    file: &DrmFile,
    v2: bool,
    payload: &mut [u8],
) -> Result<Answer> {
    let mut p = Payload::new(payload);
    let c: Cursor2 = if v2 {
        p.header().map_err(wire)?
    } else {
        let c: k::Cursor = p.header().map_err(wire)?;
        Cursor2 {
            flags: c.flags,
            crtc_id: c.crtc_id,
            x: c.x,
            y: c.y,
            width: c.width,
            height: c.height,
            handle: c.handle,
            hot_x: 0,
            hot_y: 0,
        }
    };
    p.finish().map_err(wire)?;
    if c.flags == 0 || c.flags & !(k::CURSOR_BO | k::CURSOR_MOVE) != 0 {
        return Err(Errno::EINVAL);
    }
    let n = kms.crtc(c.crtc_id)?;
    let out = &mut kms.outputs[n];
    let (image, hot) = if c.flags & k::CURSOR_BO != 0 {
        if c.handle == 0 {
            (None, (0, 0))
        } else {
            let gem = file.bo(c.handle)?.clone();
            if c.width > CURSOR_SIZE || c.height > CURSOR_SIZE || !cursor_image(&gem) {
                return Err(Errno::EINVAL);
            }
            (Some(gem), (c.hot_x, c.hot_y))
        }
    } else {
        (out.cursor.image.clone(), out.cursor.hot)
    };
    let pos = if c.flags & k::CURSOR_MOVE != 0 {
        (c.x, c.y)
    } else {
        out.cursor.pos
    };
    let control = &**device.export_holder();
    let batch = &mut Batch::new(display::CURSOR);
    let shown = image.clone();
    let done = display::set_cursor(control, &*file.session, batch, out, image, pos, hot)?;
    if done.is_none() {
        return Ok(for_room());
    }
    if c.flags & k::CURSOR_BO != 0 {
        // The legacy cursor names a buffer, not a framebuffer; the control
        // session, which shows it, holds it from now on, as it holds a
        // framebuffer's (taken only now: a parked request changes nothing).
        out.cursor.fb = None;
        if let Some(gem) = shown {
            gem.export(&*file.session, device.export_holder())
                .map_err(crate::errno::io_errno)?;
        }
    }
    Ok(Answer::Ready(0))
}

/// GETGAMMA/SETGAMMA: no CRTC has a gamma table (gamma_size 0), so any
/// size is EINVAL, as Linux for a CRTC whose `gamma_size` differs.
pub fn gamma(kms: &Kms, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let g: CrtcLutHeader = p.header().map_err(wire)?;
    for _ in 0..3 {
        p.skip_array::<u16>(g.gamma_size).map_err(wire)?;
    }
    p.finish().map_err(wire)?;
    kms.crtc(g.crtc_id)?;
    Err(Errno::EINVAL)
}

/// LIST_LESSEES: this driver leases nothing.
pub fn list_lessees(payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut l: ListLesseesHeader = p.header().map_err(wire)?;
    p.skip_array::<u32>(l.count_lessees).map_err(wire)?;
    p.finish().map_err(wire)?;
    if l.pad != 0 {
        return Err(Errno::EINVAL);
    }
    l.count_lessees = 0;
    p.set_header(&l).map_err(wire)?;
    Ok(0)
}

/// GETPROPERTY: a property's name, flags, values (range bounds, enum
/// values, an object property's type) and enum names, each array copied
/// only when all of it fits, as `drm_mode_getproperty_ioctl`.
pub fn get_property(payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut g: GetPropertyHeader = p.header().map_err(wire)?;
    let values_at = p.skip_array::<u64>(g.count_values);
    let enums_at = p.skip_array::<PropertyEnum>(g.count_enum_blobs);
    p.finish().map_err(wire)?;
    let prop = props::get(g.prop_id).ok_or(Errno::ENOENT)?;
    let (values_at, enums_at) = (values_at.map_err(wire)?, enums_at.map_err(wire)?);
    let (values, enums): (Vec<u64>, Vec<PropertyEnum>) = match prop.kind {
        props::Kind::Range(min, max) => (vec![min, max], Vec::new()),
        props::Kind::SignedRange(min, max) => (vec![min as u64, max as u64], Vec::new()),
        props::Kind::Object(ty) => (vec![u64::from(ty)], Vec::new()),
        props::Kind::Blob => (Vec::new(), Vec::new()),
        props::Kind::Enum(list) => (
            list.iter().map(|(v, _)| *v).collect(),
            list.iter()
                .map(|(value, name)| PropertyEnum {
                    value: *value,
                    name: name32(name),
                })
                .collect(),
        ),
    };
    if !values.is_empty() && g.count_values as usize >= values.len() {
        p.set_array(values_at, &values).map_err(wire)?;
    }
    if !enums.is_empty() && g.count_enum_blobs as usize >= enums.len() {
        p.set_array(enums_at, &enums).map_err(wire)?;
    }
    g.flags = prop.flags();
    g.name = name32(prop.name);
    g.count_values = values.len() as u32;
    g.count_enum_blobs = enums.len() as u32;
    p.set_header(&g).map_err(wire)?;
    Ok(0)
}

fn name32(name: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    let n = name.len().min(31);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
}

/// OBJ_GETPROPERTIES: the object's properties and their values, as far as
/// the room goes (atomic-only ones for atomic clients only). An object of
/// another type, or none, is ENOENT; one without properties (an encoder, a
/// framebuffer) EINVAL.
pub fn obj_get_properties(kms: &Kms, file: &DrmFile, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut o: ObjGetPropertiesHeader = p.header().map_err(wire)?;
    let ids_at = p.skip_array::<u32>(o.count_props);
    let values_at = p.skip_array::<u64>(o.count_props);
    p.finish().map_err(wire)?;
    let object = match kms.object(o.obj_id) {
        Some(obj) if o.obj_type == k::object::ANY || o.obj_type == props::type_of(obj) => obj,
        _ if kms.fb(o.obj_id).is_ok() && matches!(o.obj_type, k::object::ANY | k::object::FB) => {
            return Err(Errno::EINVAL)
        }
        _ => return Err(Errno::ENOENT),
    };
    if matches!(object, Object::Encoder(_)) {
        return Err(Errno::EINVAL);
    }
    let (ids_at, values_at) = (ids_at.map_err(wire)?, values_at.map_err(wire)?);
    let (ids, values) = visible_properties(kms, file, object);
    fill(&mut p, ids_at, o.count_props, &ids)?;
    fill(&mut p, values_at, o.count_props, &values)?;
    o.count_props = ids.len() as u32;
    p.set_header(&o).map_err(wire)?;
    Ok(0)
}

/// The properties of `object` `file` sees (atomic ones only once it is
/// atomic, as `drm_mode_object_get_properties`), and their values.
fn visible_properties(kms: &Kms, file: &DrmFile, object: Object) -> (Vec<u32>, Vec<u64>) {
    let ids: Vec<u32> = props::of(object)
        .iter()
        .copied()
        .filter(|&id| props::get(id).is_some_and(|p| file.caps.atomic || !p.atomic))
        .collect();
    let values = ids.iter().map(|&id| kms.value(object, id)).collect();
    (ids, values)
}

/// Sets property `prop` of `object` to `value` for a client that is not
/// atomic: DPMS is the one such property that is not immutable (EINVAL for
/// the rest, and for values out of range); ENOENT for a property the object
/// does not have.
fn set_legacy_property(
    device: &Device,
    kms: &mut Kms,
    object: Object,
    prop: u32,
    value: u64,
) -> Result<Answer> {
    if !props::of(object).contains(&prop) {
        return Err(Errno::ENOENT);
    }
    let (Object::Connector(n), props::DPMS) = (object, prop) else {
        return Err(Errno::EINVAL);
    };
    if value > 3 {
        return Err(Errno::EINVAL);
    }
    let out = &mut kms.outputs[n];
    let off = value != 0;
    if off == out.dpms_off {
        return Ok(Answer::Ready(0));
    }
    let before = out.dpms_off;
    out.dpms_off = off;
    let plane = out.primary.clone();
    let shown = out.shown.take_if(|_| !off);
    match display::show(
        &**device.export_holder(),
        &mut Batch::new(display::SHOW),
        out,
        plane,
        None,
    )? {
        Some(_) => {
            out.vblank
                .follow(out.mode.as_ref().filter(|_| !off), Instant::now());
            Ok(Answer::Ready(0))
        }
        None => {
            out.dpms_off = before;
            out.shown = shown.or(out.shown);
            Ok(for_room())
        }
    }
}

/// SETPROPERTY (a connector's, legacy).
pub fn set_property(device: &Device, kms: &mut Kms, payload: &mut [u8]) -> Result<Answer> {
    let mut p = Payload::new(payload);
    let s: k::ConnectorSetProperty = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    let Some(object @ Object::Connector(_)) = kms.object(s.connector_id) else {
        return Err(Errno::ENOENT);
    };
    set_legacy_property(device, kms, object, s.prop_id, s.value)
}

/// OBJ_SETPROPERTY.
pub fn obj_set_property(device: &Device, kms: &mut Kms, payload: &mut [u8]) -> Result<Answer> {
    let mut p = Payload::new(payload);
    let s: k::ObjSetProperty = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    let object = match kms.object(s.obj_id) {
        Some(obj) if s.obj_type == props::type_of(obj) => obj,
        _ => return Err(Errno::ENOENT),
    };
    set_legacy_property(device, kms, object, s.prop_id, s.value)
}

/// GETPROPBLOB: the blob's length, and its bytes if the room holds them.
pub fn get_prop_blob(kms: &Kms, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut g: GetBlobHeader = p.header().map_err(wire)?;
    // A byte array, carried up to MAX_BYTES as every client library packs it.
    let data_at = p.bytes(g.length);
    p.finish().map_err(wire)?;
    let blob = kms.blob(g.blob_id)?;
    let data_at = data_at.map_err(wire)?;
    if g.length as usize >= blob.data.len() {
        p.set_array(data_at, &blob.data).map_err(wire)?;
    }
    g.length = blob.data.len() as u32;
    p.set_header(&g).map_err(wire)?;
    Ok(0)
}

/// CREATEPROPBLOB: a blob of the caller's (EINVAL for no bytes).
pub fn create_prop_blob(kms: &mut Kms, id: HandleId, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut c: CreateBlobHeader = p.header().map_err(wire)?;
    let data = p.bytes(c.length);
    p.finish().map_err(wire)?;
    if c.length == 0 {
        return Err(Errno::EINVAL);
    }
    let data = p.array_bytes(data.map_err(wire)?).map_err(wire)?.to_vec();
    c.blob_id = kms.create_blob(Some(id), data)?;
    p.set_header(&c).map_err(wire)?;
    Ok(0)
}

/// DESTROYPROPBLOB: one of the caller's blobs.
pub fn destroy_prop_blob(kms: &mut Kms, id: HandleId, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let d: Id = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    kms.destroy_blob(d.id, id)?;
    Ok(0)
}

// `_DRM_VBLANK_*` (drm.h).
const VBLANK_RELATIVE: u32 = 0x1;
const VBLANK_HIGH_CRTC_MASK: u32 = 0x3e;
const VBLANK_WITH_EVENT: u32 = 0x0400_0000;
const VBLANK_NEXTONMISS: u32 = 0x1000_0000;
const VBLANK_SECONDARY: u32 = 0x2000_0000;
const VBLANK_SIGNAL: u32 = 0x4000_0000;
/// How long a blocking WAIT_VBLANK waits before EBUSY (Linux: 3 s).
const VBLANK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// WAIT_VBLANK on the simulated vblank (`drm_wait_vblank_ioctl`): the CRTC
/// by index (SECONDARY or the high-CRTC field); a relative or absolute
/// 32-bit target (NEXTONMISS: the next vblank if it has passed); with
/// EVENT a VBLANK event at the target and an answer at once, else the
/// request waits for the target (EBUSY after 3 s). The reply is the current
/// count and its time. EINVAL for unknown flags, SIGNAL, a CRTC that does
/// not exist or is off.
pub fn wait_vblank(
    kms: &mut Kms,
    file: &mut DrmFile,
    id: HandleId,
    expired: bool,
    payload: &mut [u8],
) -> Result<Answer> {
    let mut p = Payload::new(payload);
    let mut w: k::WaitVblank = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    let known = VBLANK_RELATIVE
        | VBLANK_HIGH_CRTC_MASK
        | VBLANK_WITH_EVENT
        | VBLANK_NEXTONMISS
        | VBLANK_SECONDARY
        | VBLANK_SIGNAL;
    if w.type_ & !known != 0 || w.type_ & VBLANK_SIGNAL != 0 {
        return Err(Errno::EINVAL);
    }
    let high = (w.type_ & VBLANK_HIGH_CRTC_MASK) >> 1;
    let index = match (high, w.type_ & VBLANK_SECONDARY != 0) {
        (0, true) => 1,
        (n, _) => n as usize,
    };
    let out = kms.outputs.get_mut(index).ok_or(Errno::EINVAL)?;
    if !out.active() {
        return Err(Errno::EINVAL);
    }
    let now = Instant::now();
    let current = out.vblank.count(now);
    // The wire's 32-bit sequence, placed within 2^31 of the 64-bit count.
    let mut target = if w.type_ & VBLANK_RELATIVE != 0 {
        current + u64::from(w.sequence)
    } else {
        let distance = i64::from(w.sequence.wrapping_sub(current as u32) as i32);
        current.saturating_add_signed(distance)
    };
    if w.type_ & VBLANK_NEXTONMISS != 0 && target <= current {
        target = current + 1;
    }
    let reply = |w: &mut k::WaitVblank, seq: u64, time_ns: u64| {
        w.sequence = seq as u32;
        w.tval_sec = (time_ns / 1_000_000_000) as i64;
        w.tval_usec = (time_ns % 1_000_000_000 / 1000) as i64;
    };
    if w.type_ & VBLANK_WITH_EVENT != 0 {
        file.events.reserve(VBLANK_EVENT)?;
        out.queued.push(Queued {
            owner: id,
            target,
            user_data: w.tval_sec as u64,
            sequence: false,
        });
        // The target's sequence, as Linux answers an event request.
        reply(&mut w, target, out.vblank.time_ns(target));
        w.type_ &= VBLANK_RELATIVE | VBLANK_HIGH_CRTC_MASK | VBLANK_SECONDARY;
        p.set_header(&w).map_err(wire)?;
        return Ok(Answer::Ready(0));
    }
    // A parked wait runs again from the start at its deadline, on the
    // request as it came: a relative target moves with each run, but its
    // length does not — a wait shorter than the timeout is done then.
    let length = out
        .mode
        .map_or(0, |m| u64::from(w.sequence) * modes::frame_ns(&m));
    let relative_done = w.type_ & VBLANK_RELATIVE != 0 && length < VBLANK_TIMEOUT.as_nanos() as u64;
    if current < target && !(expired && relative_done) {
        if expired {
            return Err(Errno::EBUSY);
        }
        let until = out.vblank.time(target, now).min(now + VBLANK_TIMEOUT);
        return Ok(Answer::Park(scheme_seam::Park::on_any([]).until(until)));
    }
    reply(&mut w, current, out.vblank.time_ns(current));
    p.set_header(&w).map_err(wire)?;
    Ok(Answer::Ready(0))
}

/// CRTC_GET_SEQUENCE: the CRTC's vblank count and its time, and whether it
/// is on.
pub fn crtc_get_sequence(kms: &Kms, payload: &mut [u8]) -> Result<usize> {
    let mut p = Payload::new(payload);
    let mut g: k::CrtcGetSequence = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    let out = &kms.outputs[kms.crtc(g.crtc_id)?];
    let seq = out.vblank.count(Instant::now());
    g.active = u32::from(out.active());
    g.sequence = seq;
    g.sequence_ns = out.vblank.time_ns(seq) as i64;
    p.set_header(&g).map_err(wire)?;
    Ok(0)
}

/// CRTC_QUEUE_SEQUENCE: a CRTC_SEQUENCE event at vblank `sequence`
/// (RELATIVE: from now; NEXT_ON_MISS: the next one if it has passed); the
/// answer is the vblank it is queued for. EINVAL for other flags or a CRTC
/// that is off.
pub fn crtc_queue_sequence(
    kms: &mut Kms,
    file: &mut DrmFile,
    id: HandleId,
    payload: &mut [u8],
) -> Result<usize> {
    const RELATIVE: u32 = 1;
    const NEXT_ON_MISS: u32 = 2;
    let mut p = Payload::new(payload);
    let mut q: k::CrtcQueueSequence = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    let n = kms.crtc(q.crtc_id)?;
    if q.flags & !(RELATIVE | NEXT_ON_MISS) != 0 {
        return Err(Errno::EINVAL);
    }
    let out = &mut kms.outputs[n];
    if !out.active() {
        return Err(Errno::EINVAL);
    }
    let current = out.vblank.count(Instant::now());
    let mut target = match q.flags & RELATIVE {
        0 => q.sequence,
        _ => current.saturating_add(q.sequence),
    };
    if q.flags & NEXT_ON_MISS != 0 && target <= current {
        target = current + 1;
    }
    file.events.reserve(size_of::<k::EventCrtcSequence>())?;
    out.queued.push(Queued {
        owner: id,
        target,
        user_data: q.user_data,
        sequence: true,
    });
    q.sequence = target;
    p.set_header(&q).map_err(wire)?;
    Ok(0)
}

/// SETPLANE (`drm_mode_setplane`, atomic helpers, virtio_gpu's plane
/// checks): fb 0 turns the plane off; otherwise the framebuffer on the
/// plane's own CRTC, unscaled — the primary plane must cover the whole
/// CRTC, the cursor be a 64x64 framebuffer. ENOENT for unknown objects,
/// EINVAL for another CRTC, a format the plane lacks, scaling or a partial
/// primary, ERANGE for destination coordinates that overflow, ENOSPC for a
/// source outside the framebuffer.
pub fn set_plane(device: &Device, kms: &mut Kms, payload: &mut [u8]) -> Result<Answer> {
    let mut p = Payload::new(payload);
    let s: k::SetPlane = p.header().map_err(wire)?;
    p.finish().map_err(wire)?;
    let (n, cursor) = match kms.object(s.plane_id) {
        Some(Object::Primary(n)) => (n, false),
        Some(Object::Cursor(n)) => (n, true),
        _ => return Err(Errno::ENOENT),
    };
    let session = &**device.export_holder();
    if s.fb_id == 0 {
        let out = &mut kms.outputs[n];
        let done = match cursor {
            true => display::set_cursor(
                session,
                session,
                &mut Batch::new(display::CURSOR),
                out,
                None,
                out.cursor.pos,
                (0, 0),
            )?,
            false => display::show(
                session,
                &mut Batch::new(display::SHOW),
                out,
                PlaneState::default(),
                None,
            )?
            .map(drop),
        };
        return Ok(done.map_or_else(for_room, |()| Answer::Ready(0)));
    }
    let crtc = kms.crtc(s.crtc_id)?;
    let fb = kms.fb(s.fb_id)?;
    if crtc != n {
        return Err(Errno::EINVAL);
    }
    let formats = if cursor {
        &CURSOR_FORMATS[..]
    } else {
        &PRIMARY_FORMATS[..]
    };
    if !formats.contains(&fb.format) {
        return Err(Errno::EINVAL);
    }
    let too_far = |pos: i32, len: u32| len > i32::MAX as u32 || pos > i32::MAX - len as i32;
    if too_far(s.crtc_x, s.crtc_w) || too_far(s.crtc_y, s.crtc_h) {
        return Err(Errno::ERANGE);
    }
    let outside = |pos: u32, len: u32, size: u32| {
        let size = u64::from(size) << 16;
        u64::from(len) > size || u64::from(pos) > size - u64::from(len)
    };
    if outside(s.src_x, s.src_w, fb.width) || outside(s.src_y, s.src_h, fb.height) {
        return Err(Errno::ENOSPC);
    }
    // No scaling, and whole pixels.
    let whole = |v: u32| v & 0xffff == 0;
    let unscaled = s.src_w >> 16 == s.crtc_w && s.src_h >> 16 == s.crtc_h;
    if !unscaled || ![s.src_x, s.src_y, s.src_w, s.src_h].into_iter().all(whole) {
        return Err(Errno::EINVAL);
    }
    let out = &mut kms.outputs[n];
    if cursor {
        if !cursor_image(&fb.gem) || s.crtc_w > CURSOR_SIZE || s.crtc_h > CURSOR_SIZE {
            return Err(Errno::EINVAL);
        }
        let (image, hot) = (Some(fb.gem.clone()), out.cursor.hot);
        let done = display::set_cursor(
            session,
            session,
            &mut Batch::new(display::CURSOR),
            out,
            image,
            (s.crtc_x, s.crtc_y),
            hot,
        )?;
        if done.is_some() {
            out.cursor.fb = Some(fb);
        }
        return Ok(done.map_or_else(for_room, |()| Answer::Ready(0)));
    }
    let mode = out.mode.ok_or(Errno::EINVAL)?;
    let covers = (s.crtc_x, s.crtc_y) == (0, 0)
        && (s.crtc_w, s.crtc_h) == (u32::from(mode.hdisplay), u32::from(mode.vdisplay));
    if !covers {
        return Err(Errno::EINVAL);
    }
    let plane = PlaneState {
        fb: Some(fb),
        src: (s.src_x >> 16, s.src_y >> 16),
    };
    Ok(
        match display::show(session, &mut Batch::new(display::SHOW), out, plane, None)? {
            Some(_) => Answer::Ready(0),
            None => for_room(),
        },
    )
}
