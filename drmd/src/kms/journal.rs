//! The display as the recovery journal says it, and the display a
//! restarted instance takes over: the same modes, framebuffers, planes,
//! cursor and pending flips, with nothing sent to the device — what the
//! dead instance set is still what the device shows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use drm_uapi::kms::ModeInfo;
use scheme_seam::HandleId;
use sync_client::TimelineOwner;
use zerocopy::{FromBytes, IntoBytes};

use super::vblank::Vblank;
use super::{Blob, Framebuffer, Kms, Monitor};
use crate::gem::Gem;
use crate::recovery::record::{FbState, Key, KmsState, OutputState};

impl Vblank {
    /// (monotonic ns when it went on, if on; count then; frame time).
    pub fn state(&self) -> (Option<u64>, u64, u64) {
        let (epoch, base, period) = self.parts();
        (epoch.map(|(_, clock)| clock), base, period)
    }

    /// A vblank as [`Vblank::state`] said it, in this process's clock.
    pub fn restore((clock, base, period): (Option<u64>, u64, u64), now: Instant) -> Vblank {
        let epoch = clock.map(|clock| {
            let ago = sync_client::clock::now_ns().saturating_sub(clock);
            (
                now.checked_sub(Duration::from_nanos(ago)).unwrap_or(now),
                clock,
            )
        });
        Vblank::from_parts(epoch, base, period)
    }
}

impl Kms {
    /// The display, for the recovery journal.
    pub fn state(&self) -> KmsState {
        let fb_id = |fb: &Option<Arc<Framebuffer>>| fb.as_ref().map(|f| f.id);
        KmsState {
            outputs: self
                .outputs
                .iter()
                .map(|o| OutputState {
                    mode: o.mode.map(|m| m.as_bytes().to_vec()),
                    mode_blob: o.mode_blob,
                    edid_blob: o.edid_blob,
                    primary: fb_id(&o.primary.fb),
                    src: o.primary.src,
                    cursor: o.cursor.image.as_ref().map(|g| g.offset),
                    cursor_pos: o.cursor.pos,
                    cursor_hot: o.cursor.hot,
                    cursor_fb: fb_id(&o.cursor.fb),
                    cursor_pending: o.cursor.pending.map(|(fence, _)| fence),
                    shown: o.shown,
                    dpms_off: o.dpms_off,
                    vblank: o.vblank.state(),
                    flip: o.flip,
                    queued: o.queued.clone(),
                    fence_point: o.fences.as_ref().map(|(_, p)| *p),
                })
                .collect(),
            // Planes may show a framebuffer RMFB took out of the table:
            // journaled too, so the plane keeps it.
            fbs: self
                .every_fb()
                .map(|f| {
                    let listed = self.fbs.get(&f.id).is_some_and(|t| Arc::ptr_eq(t, f));
                    fb_state(f, listed)
                })
                .collect(),
            blobs: self
                .blobs
                .iter()
                .map(|(&id, b)| (id, b.owner.map(|o| o as u64), b.data.clone()))
                .collect(),
            next_id: self.next_id,
        }
    }

    /// Framebuffers in the table or on a plane.
    fn every_fb(&self) -> impl Iterator<Item = &Arc<Framebuffer>> {
        let mut all: Vec<&Arc<Framebuffer>> = self.fbs.values().collect();
        for o in &self.outputs {
            for fb in [&o.primary.fb, &o.cursor.fb].into_iter().flatten() {
                if !all.iter().any(|f| Arc::ptr_eq(f, fb)) {
                    all.push(fb);
                }
            }
        }
        all.into_iter()
    }

    /// The display a dead instance left (`state`), on `monitors` as the
    /// device reports them now, over its `objects`; output `n`'s flip
    /// timeline is `timeline(n)`, kept across the restart. A framebuffer
    /// or cursor whose object is not there is left off.
    pub fn restore(
        monitors: &[Monitor],
        state: &KmsState,
        objects: &dyn Fn(Key) -> Option<Arc<Gem>>,
        timeline: &mut dyn FnMut(usize) -> Option<TimelineOwner>,
        now: Instant,
    ) -> Kms {
        let mut kms = Kms::new(monitors);
        kms.blobs = state
            .blobs
            .iter()
            .map(|(id, owner, data)| {
                let blob = Blob {
                    owner: owner.map(|o| o as HandleId),
                    data: data.clone(),
                };
                (*id, blob)
            })
            .collect();
        kms.next_id = state.next_id;
        let fbs: Vec<(Arc<Framebuffer>, bool)> = state
            .fbs
            .iter()
            .filter_map(|f| Some((Arc::new(framebuffer(f, objects(f.key)?)), f.listed)))
            .collect();
        let fb = |id: Option<u32>| {
            id.and_then(|id| fbs.iter().find(|(f, _)| f.id == id).map(|(f, _)| f.clone()))
        };
        // Only those the table had go back into it (RMFB'd ones stay on
        // their planes alone).
        for (f, _) in fbs.iter().filter(|(_, listed)| *listed) {
            kms.fbs.insert(f.id, f.clone());
        }
        for (n, o) in state.outputs.iter().enumerate().take(kms.outputs.len()) {
            let out = &mut kms.outputs[n];
            out.mode = o
                .mode
                .as_deref()
                .and_then(|m| ModeInfo::read_from_bytes(m).ok());
            out.mode_blob = o.mode_blob;
            // The EDID blob the dead instance gave the connector stays
            // (Kms::new made another for the same display).
            if let Some(fresh) = out.edid_blob.take() {
                if Some(fresh) != o.edid_blob && !state.blobs.iter().any(|b| b.0 == fresh) {
                    kms.blobs.remove(&fresh);
                }
            }
            out.edid_blob = o.edid_blob;
            out.primary.fb = fb(o.primary);
            out.primary.src = o.src;
            out.cursor.image = o.cursor.and_then(objects);
            out.cursor.pos = o.cursor_pos;
            out.cursor.hot = o.cursor_hot;
            out.cursor.fb = fb(o.cursor_fb);
            out.cursor.pending = o.cursor_pending.map(|fence| (fence, now));
            out.shown = o.shown;
            out.dpms_off = o.dpms_off;
            out.vblank = Vblank::restore(o.vblank, now);
            out.flip = o.flip;
            out.queued = o.queued.clone();
            out.fences = o.fence_point.and_then(|point| Some((timeline(n)?, point)));
        }
        kms
    }

    /// Bytes of events promised to file `owner` by its pending flips.
    pub fn promised_to(&self, owner: HandleId) -> usize {
        self.outputs
            .iter()
            .map(|o| {
                let flip = o.flip.filter(|f| f.owner == owner && f.event.is_some());
                let queued = o.queued.iter().filter(|q| q.owner == owner).count();
                (usize::from(flip.is_some()) + queued) * super::VBLANK_EVENT
            })
            .sum()
    }

    /// The objects framebuffers and cursors show.
    pub fn objects(&self) -> impl Iterator<Item = &Arc<Gem>> {
        self.every_fb()
            .map(|f| &f.gem)
            .chain(self.outputs.iter().filter_map(|o| o.cursor.image.as_ref()))
    }

    /// Output `n`'s flip timeline, once made.
    pub fn flip_timeline(&self, n: usize) -> Option<&TimelineOwner> {
        self.outputs[n].fences.as_ref().map(|(t, _)| t)
    }
}

fn fb_state(f: &Arc<Framebuffer>, listed: bool) -> FbState {
    FbState {
        id: f.id,
        owner: f.owner as u64,
        key: f.gem.offset,
        handle: f.handle,
        geometry: [f.width, f.height, f.pitch, f.offset, f.format],
        origin: f.origin,
        listed,
    }
}

fn framebuffer(f: &FbState, gem: Arc<Gem>) -> Framebuffer {
    let [width, height, pitch, offset, format] = f.geometry;
    Framebuffer {
        id: f.id,
        owner: f.owner as HandleId,
        gem,
        handle: f.handle,
        width,
        height,
        pitch,
        offset,
        format,
        origin: f.origin,
    }
}
