//! ATOMIC (`drm_mode_atomic_ioctl`), staged as Linux's: the flags, each
//! object's properties applied to a copy of the state ([`crate::kms::atomic`]),
//! the whole state checked, then — unless TEST_ONLY — what it needs
//! prepared (event space, out-fences), a pending commit waited for
//! (NONBLOCK: EBUSY), the in-fences waited for, and only then the commit.
//! Every error comes before anything changed.

use std::time::Instant;

use drm_uapi::kms::{self as k, AtomicHeader};
use drm_uapi::wire::Payload;
use scheme_seam::{Answer, Errno, HandleId, Park, Result, WakeKey};

use super::{for_room, wire, PROGRESS};
use crate::device::Device;
use crate::errno::io_errno;
use crate::file::{DrmFile, OutFence};
use crate::kms::atomic::OutputSet;
use crate::kms::display::{self, Area};
use crate::kms::{props, Flip, Kms, PlaneState, VBLANK_EVENT};
use crate::ring::Batch;

/// Woken when output `n`'s pending flip completes: what a blocking commit
/// behind it waits for.
pub fn flip_key(n: usize) -> WakeKey {
    WakeKey(2 << 32 | n as u64)
}

/// ATOMIC.
pub fn atomic(
    device: &mut Device,
    kms: &mut Kms,
    file: &mut DrmFile,
    id: HandleId,
    payload: &mut [u8],
) -> Result<Answer> {
    let mut p = Payload::new(payload);
    let a: AtomicHeader = p.header().map_err(wire)?;
    let objs = p.u32s(a.count_objs);
    let counts = p.u32s(a.count_objs);
    // The one count of the wire that is no field: the sum of the counts
    // (0 when they were not carried, and then neither is anything after).
    let total = counts.as_ref().map_or(0, |c| {
        let sum: u64 = c.iter().map(|&n| u64::from(n)).sum();
        u32::try_from(sum).unwrap_or(u32::MAX)
    });
    let ids = p.u32s(total);
    let values_at = p.skip_array::<u64>(total);
    p.finish().map_err(wire)?;
    let known = k::flip::EVENT
        | k::flip::ASYNC
        | k::flip::TEST_ONLY
        | k::flip::NONBLOCK
        | k::flip::ALLOW_MODESET;
    let test_only = a.flags & k::flip::TEST_ONLY != 0;
    let event = a.flags & k::flip::EVENT != 0;
    let invalid = !file.caps.atomic
        || a.flags & !known != 0
        || a.reserved != 0
        // No ASYNC_PAGE_FLIP on this device.
        || a.flags & k::flip::ASYNC != 0
        || (test_only && event);
    if invalid {
        return Err(Errno::EINVAL);
    }
    let (objs, counts, ids) = (
        objs.map_err(wire)?,
        counts.map_err(wire)?,
        ids.map_err(wire)?,
    );
    let values_at = values_at.map_err(wire)?;
    let mut values: Vec<u64> = p
        .array_bytes(values_at)
        .map_err(wire)?
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();

    // Apply each object's properties to a copy of the state.
    let mut sets: Vec<OutputSet> = (0..kms.outputs.len()).map(|n| kms.current(n)).collect();
    let mut at = 0;
    for (&obj, &count) in objs.iter().zip(&counts) {
        for i in at..at + count as usize {
            kms.set_atomic(&mut sets, obj, ids[i], values[i])?;
        }
        at += count as usize;
    }
    let touched = |s: &OutputSet| s.touched || s.primary.touched || s.cursor.touched;
    let allow_modeset = a.flags & k::flip::ALLOW_MODESET != 0;
    for (n, set) in sets.iter().enumerate().filter(|(_, s)| touched(s)) {
        kms.check_atomic(n, set, allow_modeset)?;
        // An event needs the CRTC on before or after (drm_atomic_crtc_check).
        if event && !set.active && !kms.outputs[n].active() {
            return Err(Errno::EINVAL);
        }
    }
    if test_only {
        return Ok(Answer::Ready(0));
    }

    // A commit behind a pending one: NONBLOCK is EBUSY, a blocking one
    // waits for it (drm_atomic_helper_setup_commit's stall).
    let busy: Vec<usize> = (0..sets.len())
        .filter(|&n| touched(&sets[n]) && kms.outputs[n].flip.is_some())
        .collect();
    if !busy.is_empty() {
        if a.flags & k::flip::NONBLOCK != 0 {
            return Err(Errno::EBUSY);
        }
        return Ok(Answer::Park(Park::on_any(busy.into_iter().map(flip_key))));
    }
    // In-fences: the commit waits until they have signalled.
    for set in sets.iter().filter(|s| touched(s)) {
        for token in [set.primary.in_fence, set.cursor.in_fence]
            .into_iter()
            .flatten()
        {
            if !file.in_fence_signaled(token)? {
                return Ok(Answer::Park(Park::on(PROGRESS)));
            }
        }
    }

    // Prepare: event space and out-fence points (syncd timelines of drmd's,
    // one per CRTC, made on first use).
    let flipping: Vec<usize> = (0..sets.len())
        .filter(|&n| touched(&sets[n]) && (sets[n].active || kms.outputs[n].active()))
        .collect();
    let events = if event { flipping.len() } else { 0 };
    file.events.reserve(events * VBLANK_EVENT)?;
    let mut out_fences = Vec::new();
    for &n in &flipping {
        if !sets[n].out_fence {
            continue;
        }
        let out = &mut kms.outputs[n];
        if out.fences.is_none() {
            let name = format!("drmd crtc {n}");
            match sync_client::TimelineOwner::create(&name) {
                Ok(owner) => out.fences = Some((owner, 0)),
                Err(e) => {
                    file.events.unreserve(events * VBLANK_EVENT);
                    return Err(io_errno(e));
                }
            }
        }
        let (owner, last) = out.fences.as_mut().expect("just made");
        *last += 1;
        out_fences.push((n, owner.id(), *last));
    }

    // Commit.
    let session = device.export_holder().clone();
    let now = Instant::now();
    for n in (0..sets.len()).filter(|&n| touched(&sets[n])) {
        let set = &sets[n];
        let modeset = set.modeset(&kms.current(n));
        let damage = damage_of(kms, set);
        let out = &mut kms.outputs[n];
        let before = (out.mode, out.dpms_off, out.shown);
        out.mode = set.mode;
        out.dpms_off = !set.active;
        let mut batch = Batch::new(display::SHOW + display::CURSOR);
        let mut fence = 0;
        if set.primary.touched || modeset {
            let plane = PlaneState {
                fb: set.primary.fb.clone().filter(|_| set.primary.on_crtc),
                src: (
                    (set.primary.src[0] >> 16) as u32,
                    (set.primary.src[1] >> 16) as u32,
                ),
            };
            let damage = damage.filter(|_| !modeset);
            match display::show(&*session, &mut batch, out, plane, damage)? {
                Some(f) => fence = f,
                None => {
                    (out.mode, out.dpms_off, out.shown) = before;
                    file.events.unreserve(events * VBLANK_EVENT);
                    return Ok(for_room());
                }
            }
        }
        if set.cursor.touched {
            let fb = set.cursor.fb.clone().filter(|_| set.cursor.on_crtc);
            let image = fb.as_ref().map(|f| f.gem.clone());
            let pos = (set.cursor.dst[0] as i32, set.cursor.dst[1] as i32);
            // Placed after the primary's commands, the batch's room is
            // reserved for it: only a commit of the cursor alone can find
            // the ring full here, before anything changed.
            let hot = set.cursor.hot;
            if display::set_cursor(&*session, &*session, &mut batch, out, image, pos, hot)?
                .is_none()
            {
                (out.mode, out.dpms_off, out.shown) = before;
                file.events.unreserve(events * VBLANK_EVENT);
                return Ok(for_room());
            }
            out.cursor.fb = fb;
        }
        if modeset {
            out.vblank
                .follow(set.mode.as_ref().filter(|_| set.active), now);
            kms.set_mode(n, set.mode);
        }
        let out = &mut kms.outputs[n];
        if flipping.contains(&n) {
            let out_fence = out_fences.iter().find(|f| f.0 == n).map(|f| f.2);
            out.flip = Some(Flip {
                owner: id,
                fence,
                event: event.then_some(a.user_data),
                checked: out.vblank.count(now),
                out_fence,
            });
        }
    }

    // OUT_FENCE_PTR's value comes back as a slot naming the fence.
    let mut at = 0;
    for (&obj, &count) in objs.iter().zip(&counts) {
        for i in at..at + count as usize {
            let crtc = kms.crtc(obj).ok();
            if ids[i] != props::OUT_FENCE_PTR || values[i] == 0 {
                continue;
            }
            if let Some(&(_, timeline, point)) = out_fences.iter().find(|f| Some(f.0) == crtc) {
                values[i] = file.out_fences.put(OutFence::Timeline(timeline, point)) as u64;
            }
        }
        at += count as usize;
    }
    p.set_u64s(values_at, &values).map_err(wire)?;
    Ok(Answer::Ready(0))
}

/// The merged FB_DAMAGE_CLIPS of the primary plane, in framebuffer
/// coordinates (None: none given, all of it is damaged).
fn damage_of(kms: &Kms, set: &OutputSet) -> Option<Area> {
    let blob = kms.blob(set.primary.damage).ok()?;
    let rects = blob
        .data
        .chunks_exact(size_of::<k::DamageRect>())
        .filter_map(|c| <k::DamageRect as zerocopy::FromBytes>::read_from_bytes(c).ok())
        .filter(|r| r.x2 > r.x1 && r.y2 > r.y1 && r.x1 >= 0 && r.y1 >= 0)
        .map(|r| {
            [
                r.x1 as u32,
                r.y1 as u32,
                (r.x2 - r.x1) as u32,
                (r.y2 - r.y1) as u32,
            ]
        });
    display::merged(rects)
}
