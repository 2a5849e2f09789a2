//! Plane updates as virtio-gpu commands, in the order Linux's
//! `virtio_gpu_primary_plane_update` and `virtio_gpu_cursor_plane_update`
//! send them. Every command goes through drmd's control session, which
//! holds every framebuffer's resource (see [`crate::ioctl::kms`]), and is
//! detached; the commands of one ioctl are one [`Batch`] (a plane update
//! alone is at most [`SHOW`] or [`CURSOR`] commands), so a full ring refuses
//! it before anything changed (`Ok(None)`: the ioctl parks for room).

use std::sync::Arc;

use virtio_gpu_proto::{
    CursorPos, MoveCursor, Rect, ResourceFlush, ResourceId, ScanoutId, SetScanout,
    TransferToHost2d, UpdateCursor,
};
use zerocopy::IntoBytes;

use gpu_session::api::QUEUE_FENCED;
use scheme_seam::{Errno, Result};

use super::{Framebuffer, Output, PlaneState, CURSOR_SIZE};
use crate::backend::DeviceSession;
use crate::gem::{Gem, Upload};
use crate::ring::Batch;

/// The most commands [`show`] sends (a transfer, SET_SCANOUT, a flush): the
/// size of a batch it alone uses.
pub const SHOW: u32 = 3;
/// The most commands [`set_cursor`] sends.
pub const CURSOR: u32 = 1;

/// A rectangle `[x, y, width, height]` in a resource's image.
pub type Area = [u32; 4];

fn rect(a: Area) -> Rect {
    Rect::new(a[0], a[1], a[2], a[3])
}

/// The intersection of `a` and `b` (None: empty).
pub fn intersect(a: Area, b: Area) -> Option<Area> {
    let end = |p: u32, len: u32| p.saturating_add(len);
    let x0 = a[0].max(b[0]);
    let y0 = a[1].max(b[1]);
    let x1 = end(a[0], a[2]).min(end(b[0], b[2]));
    let y1 = end(a[1], a[3]).min(end(b[1], b[3]));
    (x1 > x0 && y1 > y0).then(|| [x0, y0, x1 - x0, y1 - y0])
}

/// The smallest rectangle holding all of `areas` (None: there are none),
/// as `drm_atomic_helper_damage_merged`.
pub fn merged(areas: impl IntoIterator<Item = Area>) -> Option<Area> {
    let end = |p: u32, len: u32| p.saturating_add(len);
    areas.into_iter().reduce(|a, b| {
        let x0 = a[0].min(b[0]);
        let y0 = a[1].min(b[1]);
        let x1 = end(a[0], a[2]).max(end(b[0], b[2]));
        let y1 = end(a[1], a[3]).max(end(b[1], b[3]));
        [x0, y0, x1 - x0, y1 - y0]
    })
}

fn id(res: u32) -> Result<ResourceId> {
    ResourceId::new(res).ok_or(Errno::EIO)
}

/// Shows `plane` on `out` (its mode set, or off: `out.mode` None or no
/// framebuffer), uploading and flushing `damage` (in framebuffer
/// coordinates; None: all of it). SET_SCANOUT only when what is shown
/// changes, which also uploads the whole visible area (Linux ignores
/// damage clips then). Returns the flush's fence (0: nothing flushed), or
/// None when the ring is full (nothing changed).
pub fn show(
    session: &dyn DeviceSession,
    batch: &mut Batch,
    out: &mut Output,
    plane: PlaneState,
    damage: Option<Area>,
) -> Result<Option<u64>> {
    let scanout = ScanoutId::new(out.index as u32);
    let (Some(mode), Some(fb)) = (out.mode.filter(|_| !out.dpms_off), plane.fb.clone()) else {
        if out.shown.is_some() {
            let off = SetScanout::new(scanout, None, Rect::new(0, 0, 0, 0));
            if batch.send(session, off.as_bytes(), 0)?.is_none() {
                return Ok(None);
            }
        }
        out.shown = None;
        out.primary = plane;
        return Ok(Some(0));
    };
    let visible = [
        fb.origin.0 + plane.src.0,
        fb.origin.1 + plane.src.1,
        u32::from(mode.hdisplay),
        u32::from(mode.vdisplay),
    ];
    let changed = out.shown != Some((fb.gem.res, visible));
    let area = match (changed, damage) {
        // Damage is in framebuffer coordinates: clipped to it, then placed.
        (false, Some(d)) => intersect(d, [0, 0, fb.width, fb.height]).and_then(|d| {
            intersect(
                [fb.origin.0 + d[0], fb.origin.1 + d[1], d[2], d[3]],
                visible,
            )
        }),
        _ => Some(visible),
    };
    let Some(area) = area else {
        out.primary = plane;
        return Ok(Some(0));
    };
    let res = id(fb.gem.res)?;
    let upload = fb_upload(&fb);
    if upload {
        let offset = u64::from(area[1]) * u64::from(fb.pitch) + u64::from(area[0]) * 4;
        let transfer = TransferToHost2d::new(res, rect(area), offset);
        if batch.send(session, transfer.as_bytes(), 0)?.is_none() {
            return Ok(None);
        }
    }
    if changed {
        let set = SetScanout::new(scanout, Some(res), rect(visible));
        if batch.send(session, set.as_bytes(), 0)?.is_none() {
            return Ok(None);
        }
    }
    let flush = ResourceFlush::new(res, rect(area));
    let Some(reply) = batch.send(session, flush.as_bytes(), QUEUE_FENCED)? else {
        return Ok(None);
    };
    out.shown = Some((fb.gem.res, visible));
    out.primary = plane;
    Ok(Some(reply.fence))
}

fn fb_upload(fb: &Arc<Framebuffer>) -> bool {
    fb.gem.image.is_some_and(|i| i.upload == Upload::Transfer)
}

/// Sets the cursor of `out`: a new image is uploaded (fenced, through
/// `uploader`, a session holding it) and shown by UPDATE_CURSOR once the
/// upload is done ([`show_cursor`], through the control session, which
/// must hold it by then); the same image only moves (MOVE_CURSOR, through
/// `session`, the control session); no image hides it. None when the ring
/// is full (nothing changed).
pub fn set_cursor(
    session: &dyn DeviceSession,
    uploader: &dyn DeviceSession,
    batch: &mut Batch,
    out: &mut Output,
    image: Option<Arc<Gem>>,
    pos: (i32, i32),
    hot: (i32, i32),
) -> Result<Option<()>> {
    let same = match (&image, &out.cursor.image) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b) && hot == out.cursor.hot,
        (None, None) => true,
        _ => false,
    };
    let scanout = ScanoutId::new(out.index as u32);
    let at = CursorPos::new(scanout, pos.0 as u32, pos.1 as u32);
    if same {
        if image.is_some() && out.cursor.pending.is_none() && pos != out.cursor.pos {
            let res = image.as_ref().map(|g| id(g.res)).transpose()?;
            let moved = MoveCursor::new(at, res);
            if batch.send(session, moved.as_bytes(), 0)?.is_none() {
                return Ok(None);
            }
        }
        out.cursor.pos = pos;
        return Ok(Some(()));
    }
    let fence = match &image {
        Some(gem) if gem.image.is_some_and(|i| i.upload == Upload::Transfer) => {
            let all = Rect::new(0, 0, CURSOR_SIZE, CURSOR_SIZE);
            let upload = TransferToHost2d::new(id(gem.res)?, all, 0);
            let Some(reply) = batch.send(uploader, upload.as_bytes(), QUEUE_FENCED)? else {
                return Ok(None);
            };
            reply.fence
        }
        _ => 0,
    };
    out.cursor.image = image;
    out.cursor.pos = pos;
    out.cursor.hot = hot;
    out.cursor.pending = Some((fence, std::time::Instant::now()));
    Ok(Some(()))
}

/// Sends the UPDATE_CURSOR of `out`'s pending cursor image, whose upload is
/// done. `false` when the ring is full (it stays pending).
pub fn show_cursor(session: &dyn DeviceSession, out: &mut Output) -> Result<bool> {
    let c = &out.cursor;
    let scanout = ScanoutId::new(out.index as u32);
    let at = CursorPos::new(scanout, c.pos.0 as u32, c.pos.1 as u32);
    let res = c.image.as_ref().map(|g| id(g.res)).transpose()?;
    // No image hides the cursor: a MOVE_CURSOR of resource 0, which QEMU's
    // virtio-gpu and its vhost-user-gpu both take as "hide" (the latter
    // ignores an UPDATE_CURSOR of resource 0).
    let sent = match res {
        Some(_) => {
            let update = UpdateCursor::new(at, res, c.hot.0 as u32, c.hot.1 as u32);
            Batch::new(1).send(session, update.as_bytes(), 0)?
        }
        None => Batch::new(1).send(session, MoveCursor::new(at, None).as_bytes(), 0)?,
    };
    if sent.is_none() {
        return Ok(false);
    }
    out.cursor.pending = None;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_merges_into_one_rectangle_and_clips_to_the_visible_area() {
        assert_eq!(
            merged([[10, 10, 5, 5], [0, 20, 2, 2]]),
            Some([0, 10, 15, 12])
        );
        assert_eq!(merged([]), None);
        assert_eq!(
            intersect([0, 0, 100, 100], [90, 90, 20, 20]),
            Some([90, 90, 10, 10])
        );
        assert_eq!(intersect([0, 0, 10, 10], [10, 0, 5, 5]), None);
    }
}
