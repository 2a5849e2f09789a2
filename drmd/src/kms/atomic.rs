//! Atomic modesetting (`drm_atomic_uapi.c`, `drm_atomic.c`, the atomic
//! helpers' checks and virtio_gpu's plane checks): a commit's properties
//! are applied to a copy of each output's state, the whole new state is
//! checked, and only then committed — so a commit that fails, or is
//! TEST_ONLY, changes nothing.

use std::sync::Arc;

use drm_uapi::kms::{self as k, ModeInfo};
use scheme_seam::{Errno, Result};
use zerocopy::FromBytes;

use super::{
    cursor_image, props, Framebuffer, Kms, Object, CURSOR_FORMATS, CURSOR_SIZE, PRIMARY_FORMATS,
};

/// One plane's state in a commit.
#[derive(Clone, Debug, Default)]
pub struct PlaneSet {
    /// Whether the commit sets any of its properties.
    pub touched: bool,
    /// FB_ID.
    pub fb: Option<Arc<Framebuffer>>,
    /// CRTC_ID is its output's CRTC.
    pub on_crtc: bool,
    /// SRC_X, SRC_Y, SRC_W, SRC_H (16.16).
    pub src: [u64; 4],
    /// CRTC_X, CRTC_Y, CRTC_W, CRTC_H.
    pub dst: [i64; 4],
    /// IN_FENCE_FD's token (None: -1).
    pub in_fence: Option<u64>,
    /// FB_DAMAGE_CLIPS (a blob id; 0: none).
    pub damage: u32,
    /// HOTSPOT_X, HOTSPOT_Y.
    pub hot: (i32, i32),
}

/// One output's state in a commit.
#[derive(Clone, Debug)]
pub struct OutputSet {
    /// Whether the commit sets a property of its CRTC or connector.
    pub touched: bool,
    /// MODE_ID's mode (None: no mode, the CRTC is disabled).
    pub mode: Option<ModeInfo>,
    /// MODE_ID's blob.
    pub mode_blob: u32,
    /// ACTIVE.
    pub active: bool,
    /// The connector's CRTC_ID is this output's CRTC.
    pub connected: bool,
    /// OUT_FENCE_PTR was set (non-zero).
    pub out_fence: bool,
    /// The primary plane.
    pub primary: PlaneSet,
    /// The cursor plane.
    pub cursor: PlaneSet,
}

impl OutputSet {
    /// Whether the commit changes the mode, ACTIVE or the connector's
    /// routing: what needs ALLOW_MODESET.
    pub fn modeset(&self, before: &OutputSet) -> bool {
        self.mode != before.mode
            || self.active != before.active
            || self.connected != before.connected
    }
}

impl Kms {
    /// Output `n`'s state as a commit starts from it.
    pub fn current(&self, n: usize) -> OutputSet {
        let out = &self.outputs[n];
        let (w, h) = out
            .mode
            .map_or((0, 0), |m| (u64::from(m.hdisplay), u64::from(m.vdisplay)));
        let primary = PlaneSet {
            fb: out.primary.fb.clone(),
            on_crtc: out.primary.fb.is_some(),
            src: [
                u64::from(out.primary.src.0) << 16,
                u64::from(out.primary.src.1) << 16,
                w << 16,
                h << 16,
            ],
            dst: [0, 0, w as i64, h as i64],
            ..PlaneSet::default()
        };
        let size = u64::from(CURSOR_SIZE);
        let cursor = PlaneSet {
            fb: out.cursor.fb.clone(),
            on_crtc: out.cursor.image.is_some(),
            src: [0, 0, size << 16, size << 16],
            dst: [
                i64::from(out.cursor.pos.0),
                i64::from(out.cursor.pos.1),
                size as i64,
                size as i64,
            ],
            hot: out.cursor.hot,
            ..PlaneSet::default()
        };
        OutputSet {
            touched: false,
            mode: out.mode,
            mode_blob: out.mode_blob.unwrap_or(0),
            active: out.active(),
            connected: out.mode.is_some(),
            out_fence: false,
            primary,
            cursor,
        }
    }

    /// Applies `prop` = `value` of object `id` to `sets`
    /// (`drm_atomic_set_property`): ENOENT for an unknown object or a
    /// property it lacks, EINVAL for a value the property cannot take or an
    /// immutable property.
    pub fn set_atomic(&self, sets: &mut [OutputSet], id: u32, prop: u32, value: u64) -> Result<()> {
        let object = self.object(id).ok_or(Errno::ENOENT)?;
        if !props::of(object).contains(&prop) {
            return Err(Errno::ENOENT);
        }
        let range = |max: u64| {
            if value <= max {
                Ok(())
            } else {
                Err(Errno::EINVAL)
            }
        };
        let signed = || value as i64;
        let i32_value = || i32::try_from(signed()).map_err(|_| Errno::EINVAL);
        match object {
            Object::Connector(n) => {
                let set = &mut sets[n];
                set.touched = true;
                match prop {
                    props::CONNECTOR_CRTC_ID => {
                        set.connected = match value {
                            0 => false,
                            v if v == u64::from(Object::Crtc(n).id()) => true,
                            v if self.crtc(v as u32).is_ok() => return Err(Errno::EINVAL),
                            _ => return Err(Errno::ENOENT),
                        }
                    }
                    // DPMS is the legacy property's (Linux: EINVAL in a commit).
                    props::LINK_STATUS_ID => range(1)?,
                    _ => return Err(Errno::EINVAL),
                }
            }
            Object::Crtc(n) => {
                let set = &mut sets[n];
                set.touched = true;
                match prop {
                    props::ACTIVE => {
                        range(1)?;
                        set.active = value == 1;
                    }
                    props::MODE_ID => {
                        let blob = u32::try_from(value).map_err(|_| Errno::EINVAL)?;
                        set.mode_blob = blob;
                        set.mode = match blob {
                            0 => None,
                            id => {
                                let data = &self.blob(id).map_err(|_| Errno::EINVAL)?.data;
                                let mode =
                                    ModeInfo::read_from_bytes(data).map_err(|_| Errno::EINVAL)?;
                                Some(mode)
                            }
                        };
                    }
                    props::OUT_FENCE_PTR => set.out_fence = value != 0,
                    props::VRR_ENABLED => range(1)?,
                    _ => return Err(Errno::EINVAL),
                }
            }
            Object::Primary(n) | Object::Cursor(n) => {
                let cursor = matches!(object, Object::Cursor(_));
                let plane = match cursor {
                    true => &mut sets[n].cursor,
                    false => &mut sets[n].primary,
                };
                plane.touched = true;
                match prop {
                    props::FB_ID => {
                        plane.fb = match value {
                            0 => None,
                            id => Some(self.fb(u32::try_from(id).map_err(|_| Errno::ENOENT)?)?),
                        }
                    }
                    props::PLANE_CRTC_ID => {
                        plane.on_crtc = match value {
                            0 => false,
                            v if v == u64::from(Object::Crtc(n).id()) => true,
                            v if self.crtc(v as u32).is_ok() => return Err(Errno::EINVAL),
                            _ => return Err(Errno::ENOENT),
                        }
                    }
                    props::IN_FENCE_FD => {
                        plane.in_fence = match signed() {
                            -1 => None,
                            _ => Some(value),
                        }
                    }
                    props::CRTC_X => plane.dst[0] = i64::from(i32_value()?),
                    props::CRTC_Y => plane.dst[1] = i64::from(i32_value()?),
                    props::CRTC_W | props::CRTC_H => {
                        range(i32::MAX as u64)?;
                        plane.dst[if prop == props::CRTC_W { 2 } else { 3 }] = value as i64;
                    }
                    props::SRC_X | props::SRC_Y | props::SRC_W | props::SRC_H => {
                        range(u64::from(u32::MAX))?;
                        plane.src[(prop - props::SRC_X) as usize] = value;
                    }
                    props::FB_DAMAGE_CLIPS => {
                        let blob = u32::try_from(value).map_err(|_| Errno::EINVAL)?;
                        if blob != 0 {
                            let len = self.blob(blob).map_err(|_| Errno::EINVAL)?.data.len();
                            if len % size_of::<k::DamageRect>() != 0 {
                                return Err(Errno::EINVAL);
                            }
                        }
                        plane.damage = blob;
                    }
                    props::HOTSPOT_X => plane.hot.0 = i32_value()?,
                    props::HOTSPOT_Y => plane.hot.1 = i32_value()?,
                    _ => return Err(Errno::EINVAL),
                }
            }
            Object::Encoder(_) => return Err(Errno::ENOENT),
        }
        Ok(())
    }

    /// Checks output `n`'s new state `set` (`drm_atomic_check_only` with
    /// the helpers' and virtio_gpu's checks): EINVAL for an active CRTC
    /// without a mode, a mode without the connector or the reverse, a
    /// modeset without `allow_modeset`, a plane with a framebuffer and no
    /// CRTC or the reverse, a plane on a CRTC that is off, a format the
    /// plane lacks, scaling, a primary that does not cover its CRTC, a
    /// cursor over 64x64; ERANGE for destinations that overflow; ENOSPC for
    /// a source outside its framebuffer.
    pub fn check_atomic(&self, n: usize, set: &OutputSet, allow_modeset: bool) -> Result<()> {
        let before = self.current(n);
        if set.active && set.mode.is_none() {
            return Err(Errno::EINVAL);
        }
        if set.mode.is_some() != set.connected {
            return Err(Errno::EINVAL);
        }
        if set.modeset(&before) && !allow_modeset {
            return Err(Errno::EINVAL);
        }
        for (plane, cursor) in [(&set.primary, false), (&set.cursor, true)] {
            if !plane.touched && !set.touched {
                continue;
            }
            let Some(fb) = &plane.fb else {
                if plane.on_crtc {
                    return Err(Errno::EINVAL);
                }
                continue;
            };
            if !plane.on_crtc || set.mode.is_none() {
                return Err(Errno::EINVAL);
            }
            let formats: &[u32] = match cursor {
                true => &CURSOR_FORMATS,
                false => &PRIMARY_FORMATS,
            };
            if !formats.contains(&fb.format) {
                return Err(Errno::EINVAL);
            }
            let [x, y, w, h] = plane.dst;
            if x + w > i64::from(i32::MAX) || y + h > i64::from(i32::MAX) {
                return Err(Errno::ERANGE);
            }
            let [sx, sy, sw, sh] = plane.src;
            let (fw, fh) = (u64::from(fb.width) << 16, u64::from(fb.height) << 16);
            if sw > fw || sx > fw - sw || sh > fh || sy > fh - sh {
                return Err(Errno::ENOSPC);
            }
            let whole = [sx, sy, sw, sh].iter().all(|v| v & 0xffff == 0);
            if !whole || (sw >> 16) as i64 != w || (sh >> 16) as i64 != h {
                return Err(Errno::EINVAL);
            }
            if cursor {
                if !cursor_image(&fb.gem)
                    || w > i64::from(CURSOR_SIZE)
                    || h > i64::from(CURSOR_SIZE)
                {
                    return Err(Errno::EINVAL);
                }
            } else if let Some(m) = set.mode {
                let full = [0, 0, i64::from(m.hdisplay), i64::from(m.vdisplay)];
                if plane.dst != full {
                    return Err(Errno::EINVAL);
                }
            }
        }
        Ok(())
    }
}
