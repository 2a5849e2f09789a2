//! Timelines: the fence contexts whose owners (virtio-gpud, drmd) signal
//! points in order, like a Linux driver's fence context with its seqnos.

use std::collections::{BTreeMap, VecDeque};

use super::{Fence, FenceStatus, TimelineId, ECANCELED, EINVAL, ENOENT};

/// Longest timeline name kept, in bytes: `sync_fence_info.obj_name` is 32
/// bytes and Linux copies names into it with a terminating NUL.
pub const NAME_MAX: usize = 31;

/// Signal timestamps kept per timeline. A point older than the retained
/// window reports the oldest retained time, which is only ever later than
/// the truth; in exchange a timeline signalled forever stays this small.
pub const HISTORY_LEN: usize = 256;

/// Failed points remembered per timeline. Failures are rare, but an owner
/// failing every point must not grow the daemon; past this the oldest
/// failure is forgotten and that point reads as plainly signalled.
pub const MAX_FAILED: usize = 1024;

#[derive(Debug)]
struct Timeline {
    name: String,
    last: u64,
    /// `(reached point, ns)` per advancing signal, points ascending, so a
    /// point's time is that of the first entry that reached it.
    history: VecDeque<(u64, u64)>,
    /// point -> (errno, ns) for points completed by `fail`.
    failed: BTreeMap<u64, (i32, u64)>,
    abandoned_ns: Option<u64>,
}

impl Timeline {
    fn advance(&mut self, point: u64, now_ns: u64) {
        self.last = point;
        self.history.push_back((point, now_ns));
        while self.history.len() > HISTORY_LEN {
            self.history.pop_front();
        }
    }

    fn signaled_at(&self, point: u64) -> u64 {
        let i = self
            .history
            .partition_point(|&(reached, _)| reached < point);
        self.history
            .get(i)
            .or_else(|| self.history.back())
            .map_or(0, |&(_, ns)| ns)
    }
}

/// Every timeline the daemon knows, by id.
#[derive(Debug, Default)]
pub struct Timelines {
    map: BTreeMap<u32, Timeline>,
    last_id: u32,
}

impl Timelines {
    /// No timelines yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new timeline at point 0 named `name` (cut at a NUL and to
    /// [`NAME_MAX`] bytes on a character boundary). Ids count up from 1 and
    /// skip live ids after wrapping, so a stale id held by a buggy caller
    /// names nothing rather than somebody else's timeline for as long as
    /// possible.
    pub fn create(&mut self, name: &str) -> TimelineId {
        let mut id = self.last_id;
        // Each step either finds a free id or passes a live one, so
        // (live + 1) steps always suffice.
        for _ in 0..=self.map.len() {
            id = id.wrapping_add(1).max(1);
            if !self.map.contains_key(&id) {
                break;
            }
        }
        self.last_id = id;
        self.map.insert(
            id,
            Timeline {
                name: truncate_name(name).to_owned(),
                last: 0,
                history: VecDeque::new(),
                failed: BTreeMap::new(),
                abandoned_ns: None,
            },
        );
        TimelineId(id)
    }

    /// The timeline's name (`sync_fence_info.obj_name`), if it exists.
    pub fn name(&self, t: TimelineId) -> Option<&str> {
        self.map.get(&t.0).map(|tl| tl.name.as_str())
    }

    /// Whether the timeline exists (created and not removed).
    pub fn exists(&self, t: TimelineId) -> bool {
        self.map.contains_key(&t.0)
    }

    /// The owner signals point `point`: every point `<= point` is done at
    /// `now_ns`. Ok(true) if the timeline advanced, Ok(false) if it was
    /// already there (a late smaller signal changes nothing); EINVAL for an
    /// unknown or abandoned timeline.
    pub fn signal(&mut self, t: TimelineId, point: u64, now_ns: u64) -> Result<bool, i32> {
        let tl = self.owned(t)?;
        if point <= tl.last {
            return Ok(false);
        }
        tl.advance(point, now_ns);
        Ok(true)
    }

    /// The owner completes `point` with error `errno` (either sign; stored
    /// positive): like `signal(point)` (earlier pending points complete
    /// normally), except that `point` itself reports `Error` from now on,
    /// also after later signals pass it. EINVAL for an unknown or abandoned
    /// timeline, an errno of 0, or a point already done (Linux cannot put
    /// an error on a signalled fence).
    pub fn fail(&mut self, t: TimelineId, point: u64, errno: i32, now_ns: u64) -> Result<(), i32> {
        let errno = errno.checked_abs().filter(|&e| e != 0).ok_or(EINVAL)?;
        let tl = self.owned(t)?;
        if point <= tl.last {
            return Err(EINVAL);
        }
        tl.failed.insert(point, (errno, now_ns));
        while tl.failed.len() > MAX_FAILED {
            tl.failed.pop_first();
        }
        tl.advance(point, now_ns);
        Ok(())
    }

    /// The owner went away: every point not yet done completes with
    /// ECANCELED at `now_ns`, so nobody waits forever; later `signal` and
    /// `fail` are EINVAL. The timeline stays readable until `remove`.
    /// Unknown timelines and repeated calls change nothing.
    pub fn abandon(&mut self, t: TimelineId, now_ns: u64) {
        if let Some(tl) = self.map.get_mut(&t.0) {
            tl.abandoned_ns.get_or_insert(now_ns);
        }
    }

    /// Forgets the timeline and everything it kept; for when no fence
    /// refers to it any more (fences that still do then report ENOENT).
    pub fn remove(&mut self, t: TimelineId) {
        self.map.remove(&t.0);
    }

    /// The highest point signalled (or failed), 0 if none or unknown.
    pub fn last_signaled(&self, t: TimelineId) -> u64 {
        self.map.get(&t.0).map_or(0, |tl| tl.last)
    }

    /// The highest point that failed (0 if none), or `u64::MAX` once the
    /// owner abandoned the timeline (every point past the last fails).
    pub fn last_failed(&self, t: TimelineId) -> u64 {
        self.map.get(&t.0).map_or(0, |tl| match tl.abandoned_ns {
            Some(_) => u64::MAX,
            None => tl.failed.last_key_value().map_or(0, |(&p, _)| p),
        })
    }

    /// Timelines known (abandoned ones included, until removed).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no timeline is known.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether the owner abandoned the timeline.
    pub fn is_abandoned(&self, t: TimelineId) -> bool {
        self.map
            .get(&t.0)
            .is_some_and(|tl| tl.abandoned_ns.is_some())
    }

    /// Where `f` stands. A stub is signalled at its birth; a point on an
    /// unknown timeline is an ENOENT error (at 0), since nothing can signal
    /// it; point 0 is done from the start (at 0); a point the owner reached
    /// is signalled when the signal that first covered it came, or failed;
    /// past that, abandoned means ECANCELED and otherwise it is active.
    pub fn status(&self, f: Fence) -> FenceStatus {
        let (t, point) = match f {
            Fence::Stub { signaled_ns } => return FenceStatus::Signaled { at_ns: signaled_ns },
            Fence::Point { timeline, point } => (timeline, point),
        };
        let Some(tl) = self.map.get(&t.0) else {
            return FenceStatus::Error {
                errno: ENOENT,
                at_ns: 0,
            };
        };
        if point == 0 {
            return FenceStatus::Signaled { at_ns: 0 };
        }
        if point <= tl.last {
            return match tl.failed.get(&point) {
                Some(&(errno, at_ns)) => FenceStatus::Error { errno, at_ns },
                None => FenceStatus::Signaled {
                    at_ns: tl.signaled_at(point),
                },
            };
        }
        match tl.abandoned_ns {
            Some(at_ns) => FenceStatus::Error {
                errno: ECANCELED,
                at_ns,
            },
            None => FenceStatus::Active,
        }
    }

    fn owned(&mut self, t: TimelineId) -> Result<&mut Timeline, i32> {
        match self.map.get_mut(&t.0) {
            Some(tl) if tl.abandoned_ns.is_none() => Ok(tl),
            _ => Err(EINVAL),
        }
    }
}

fn truncate_name(name: &str) -> &str {
    let name = name.split('\0').next().unwrap_or("");
    let mut end = name.len().min(NAME_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.get(..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(t: TimelineId, point: u64) -> Fence {
        Fence::Point { timeline: t, point }
    }

    #[test]
    fn ids_start_at_one_and_are_not_reused_while_alive() {
        let mut tl = Timelines::new();
        let a = tl.create("a");
        let b = tl.create("b");
        assert_eq!(a, TimelineId(1));
        assert_eq!(b, TimelineId(2));
        tl.remove(a);
        assert_eq!(tl.create("c"), TimelineId(3));
        assert!(!tl.exists(a));
        assert!(tl.exists(b));
    }

    #[test]
    fn ids_wrap_past_live_ones_and_never_hand_out_zero() {
        let mut tl = Timelines::new();
        let one = tl.create("one");
        tl.last_id = u32::MAX - 1;
        assert_eq!(tl.create("max"), TimelineId(u32::MAX));
        // Wraps, skips 0 and the still-live 1.
        assert_eq!(tl.create("wrapped"), TimelineId(2));
        assert!(tl.exists(one));
    }

    #[test]
    fn names_are_cut_to_fit_obj_name_with_its_nul() {
        let mut tl = Timelines::new();
        let long = tl.create(&"x".repeat(100));
        assert_eq!(tl.name(long).map(str::len), Some(NAME_MAX));
        // Never splits a character.
        let utf8 = tl.create(&"é".repeat(20));
        assert_eq!(tl.name(utf8), Some("é".repeat(15).as_str()));
        let nul = tl.create("ctrl\0junk");
        assert_eq!(tl.name(nul), Some("ctrl"));
        assert_eq!(tl.name(TimelineId(99)), None);
    }

    #[test]
    fn signal_n_covers_every_point_up_to_n() {
        let mut tl = Timelines::new();
        let t = tl.create("q");
        assert_eq!(tl.signal(t, 5, 100), Ok(true));
        for p in 1..=5 {
            assert_eq!(tl.status(pt(t, p)), FenceStatus::Signaled { at_ns: 100 });
        }
        assert_eq!(tl.status(pt(t, 6)), FenceStatus::Active);
        assert_eq!(tl.last_signaled(t), 5);
    }

    #[test]
    fn a_late_smaller_signal_is_a_no_op() {
        let mut tl = Timelines::new();
        let t = tl.create("q");
        tl.signal(t, 5, 100).unwrap();
        assert_eq!(tl.signal(t, 3, 200), Ok(false));
        assert_eq!(tl.signal(t, 5, 200), Ok(false));
        assert_eq!(tl.last_signaled(t), 5);
        assert_eq!(tl.status(pt(t, 3)), FenceStatus::Signaled { at_ns: 100 });
    }

    #[test]
    fn each_point_reports_the_signal_that_first_covered_it() {
        let mut tl = Timelines::new();
        let t = tl.create("q");
        tl.signal(t, 2, 10).unwrap();
        tl.signal(t, 7, 20).unwrap();
        assert_eq!(tl.status(pt(t, 1)), FenceStatus::Signaled { at_ns: 10 });
        assert_eq!(tl.status(pt(t, 2)), FenceStatus::Signaled { at_ns: 10 });
        assert_eq!(tl.status(pt(t, 3)), FenceStatus::Signaled { at_ns: 20 });
        assert_eq!(tl.status(pt(t, 7)), FenceStatus::Signaled { at_ns: 20 });
    }

    #[test]
    fn point_zero_and_stubs_are_already_done() {
        let mut tl = Timelines::new();
        let t = tl.create("q");
        assert_eq!(tl.status(pt(t, 0)), FenceStatus::Signaled { at_ns: 0 });
        let stub = Fence::Stub { signaled_ns: 42 };
        assert_eq!(tl.status(stub), FenceStatus::Signaled { at_ns: 42 });
    }

    #[test]
    fn unknown_timelines_are_einval_to_signal_and_enoent_to_read() {
        let mut tl = Timelines::new();
        let ghost = TimelineId(7);
        assert_eq!(tl.signal(ghost, 1, 0), Err(EINVAL));
        assert_eq!(tl.fail(ghost, 1, 5, 0), Err(EINVAL));
        assert_eq!(tl.last_signaled(ghost), 0);
        assert_eq!(
            tl.status(pt(ghost, 1)),
            FenceStatus::Error {
                errno: ENOENT,
                at_ns: 0
            }
        );
        tl.abandon(ghost, 0);
        tl.remove(ghost);
    }

    #[test]
    fn fail_completes_the_point_with_its_error_and_later_signals_keep_it() {
        let mut tl = Timelines::new();
        let t = tl.create("q");
        tl.signal(t, 1, 10).unwrap();
        assert_eq!(tl.fail(t, 3, -5, 20), Ok(()));
        // Earlier pending points complete normally with it.
        assert_eq!(tl.status(pt(t, 2)), FenceStatus::Signaled { at_ns: 20 });
        assert_eq!(
            tl.status(pt(t, 3)),
            FenceStatus::Error {
                errno: 5,
                at_ns: 20
            }
        );
        // Signalling up to and over it keeps the error.
        assert_eq!(tl.signal(t, 3, 30), Ok(false));
        assert_eq!(tl.signal(t, 9, 40), Ok(true));
        assert_eq!(
            tl.status(pt(t, 3)),
            FenceStatus::Error {
                errno: 5,
                at_ns: 20
            }
        );
        assert_eq!(tl.status(pt(t, 4)), FenceStatus::Signaled { at_ns: 40 });
    }

    #[test]
    fn fail_rejects_done_points_and_a_zero_errno() {
        let mut tl = Timelines::new();
        let t = tl.create("q");
        tl.signal(t, 4, 10).unwrap();
        assert_eq!(tl.fail(t, 4, 5, 20), Err(EINVAL));
        assert_eq!(tl.fail(t, 0, 5, 20), Err(EINVAL));
        assert_eq!(tl.fail(t, 6, 0, 20), Err(EINVAL));
        assert_eq!(tl.fail(t, 6, i32::MIN, 20), Err(EINVAL));
        assert_eq!(tl.last_signaled(t), 4);
    }

    #[test]
    fn abandon_cancels_pending_points_only() {
        let mut tl = Timelines::new();
        let t = tl.create("q");
        tl.signal(t, 3, 10).unwrap();
        tl.abandon(t, 50);
        assert!(tl.is_abandoned(t));
        assert_eq!(tl.status(pt(t, 3)), FenceStatus::Signaled { at_ns: 10 });
        assert_eq!(
            tl.status(pt(t, 4)),
            FenceStatus::Error {
                errno: ECANCELED,
                at_ns: 50
            }
        );
        assert_eq!(
            tl.status(pt(t, 1000)),
            FenceStatus::Error {
                errno: ECANCELED,
                at_ns: 50
            }
        );
        // The owner is gone: nobody may move it any more.
        assert_eq!(tl.signal(t, 4, 60), Err(EINVAL));
        assert_eq!(tl.fail(t, 4, 5, 60), Err(EINVAL));
        // A second abandon keeps the first time; the name stays readable.
        tl.abandon(t, 70);
        assert_eq!(
            tl.status(pt(t, 4)),
            FenceStatus::Error {
                errno: ECANCELED,
                at_ns: 50
            }
        );
        assert_eq!(tl.name(t), Some("q"));
        tl.remove(t);
        assert_eq!(
            tl.status(pt(t, 4)),
            FenceStatus::Error {
                errno: ENOENT,
                at_ns: 0
            }
        );
    }

    #[test]
    fn ten_thousand_signals_keep_the_history_bounded() {
        let mut tl = Timelines::new();
        let t = tl.create("q");
        for p in 1..=10_000u64 {
            tl.signal(t, p, p * 10).unwrap();
        }
        let kept = tl.map.get(&t.0).map(|x| x.history.len());
        assert_eq!(kept, Some(HISTORY_LEN));
        // Recent points keep their exact time; older ones the oldest kept.
        assert_eq!(
            tl.status(pt(t, 10_000)),
            FenceStatus::Signaled { at_ns: 100_000 }
        );
        let oldest = (10_000 - HISTORY_LEN as u64 + 1) * 10;
        assert_eq!(tl.status(pt(t, 1)), FenceStatus::Signaled { at_ns: oldest });
    }

    #[test]
    fn failed_points_are_bounded_too() {
        let mut tl = Timelines::new();
        let t = tl.create("q");
        for p in 1..=(MAX_FAILED as u64 + 500) {
            tl.fail(t, p, 5, p).unwrap();
        }
        assert_eq!(tl.map.get(&t.0).map(|x| x.failed.len()), Some(MAX_FAILED));
        let newest = MAX_FAILED as u64 + 500;
        assert_eq!(
            tl.status(pt(t, newest)),
            FenceStatus::Error {
                errno: 5,
                at_ns: newest
            }
        );
    }

    #[test]
    fn remove_frees_the_timeline() {
        let mut tl = Timelines::new();
        for round in 0..10_000u64 {
            let t = tl.create("client");
            tl.signal(t, 1, round).unwrap();
            tl.fail(t, 2, 5, round).unwrap();
            tl.abandon(t, round);
            tl.remove(t);
        }
        assert!(tl.map.is_empty());
    }
}
