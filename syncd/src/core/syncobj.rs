//! Syncobj containers: nothing, a plain fence (binary syncobj) or a chain
//! of timeline points, with the lookup, signal and query rules of
//! `drm_syncobj.c` over `dma-fence-chain.c`.
//!
//! A chain is kept the way Linux links it: each added point is a node
//! holding its own fences and depending on everything added before it
//! (including a plain fence that was there first), so a point is done only
//! when its fences and all earlier nodes' fences are. Nodes carry Linux's
//! `prev_seqno` and fence context ("run" here): a point added in order
//! joins the head's run; one not above the head starts a new run with its
//! number raised to the head's, which is what makes QUERY stop early after
//! out-of-order points. Nodes whose own fences are done are dropped
//! (Linux's chain garbage collection), which changes no answer because
//! lookups then land on a node with the same remaining dependencies.

use super::sync_file::FenceSet;
use super::timeline::Timelines;
use super::{Fence, FenceStatus, EINVAL};

/// Chain nodes kept behind the head while their fences are pending. Past
/// this the oldest node is folded into the chain's base: its point's
/// answer stays exact, older points then also wait for the folded fences,
/// and QUERY may under-report; late, never early, so memory stays bounded
/// even if a client piles points on fences that never signal.
pub const MAX_CHAIN: usize = 1024;

#[derive(Clone, Debug)]
struct Node {
    seqno: u64,
    /// The head's seqno when this node was added in order, else 0: lookups
    /// of points above it stop here.
    prev_seqno: u64,
    /// Linux's fence context of the chain node.
    run: u64,
    fences: FenceSet,
}

#[derive(Clone, Debug)]
enum Content {
    Empty,
    Plain(FenceSet),
    Chain {
        /// The plain fence the first point was added over; Linux's chain
        /// links to it, so every point waits for it too.
        base: Option<FenceSet>,
        /// Nodes behind the head, oldest first.
        older: Vec<Node>,
        head: Node,
    },
}

/// Where a lookup landed.
enum Spot<'a> {
    /// A plain fence set: binary content, or the base a chain walk reached.
    Plain(&'a FenceSet),
    /// A chain node: its own fences, depending on the base and the nodes
    /// before it.
    Node {
        own: &'a FenceSet,
        base: Option<&'a FenceSet>,
        before: &'a [Node],
    },
    /// Everything up to the point was collected as done (Linux hands out
    /// its signalled stub here).
    Collected,
}

/// A DRM syncobj's container: what a handle (and every opaque fd exported
/// from it) points at.
#[derive(Clone, Debug)]
pub struct Syncobj {
    content: Content,
    last_run: u64,
    /// Latest completion among fences dropped as done, the time of the stub
    /// a lookup below every remaining node answers with.
    collected_ns: u64,
}

impl Default for Syncobj {
    fn default() -> Self {
        Syncobj {
            content: Content::Empty,
            last_run: 0,
            collected_ns: 0,
        }
    }
}

impl Syncobj {
    /// SYNCOBJ_CREATE: empty (a NULL fence), or with `signaled` holding a
    /// stub signalled at `now_ns`.
    pub fn new(signaled: bool, now_ns: u64) -> Self {
        let mut obj = Syncobj::default();
        if signaled {
            obj.signal(now_ns);
        }
        obj
    }

    /// SYNCOBJ_RESET: no fence at all, chain included.
    pub fn reset(&mut self) {
        self.content = Content::Empty;
    }

    /// SYNCOBJ_SIGNAL: the content becomes a stub signalled at `now_ns`
    /// (a timeline's chain is dropped, as Linux replaces the fence).
    pub fn signal(&mut self, now_ns: u64) {
        self.replace(Some(Fence::Stub {
            signaled_ns: now_ns,
        }));
    }

    /// Binary replace (sync_file import without a point, TRANSFER to point
    /// 0): the content becomes `f`, or nothing.
    pub fn replace(&mut self, f: Option<Fence>) {
        self.replace_set(f.map(FenceSet::single));
    }

    /// [`Self::replace`] with a whole fence set, so an imported merged
    /// sync_file keeps every fence (Linux installs its fence array).
    pub fn replace_set(&mut self, set: Option<FenceSet>) {
        self.content = match set {
            Some(set) => Content::Plain(set),
            None => Content::Empty,
        };
    }

    /// Timeline add (TIMELINE_SIGNAL with a stub, TRANSFER or sync_file
    /// import to a point): a new chain node for `point` holding `f`.
    pub fn add_point(&mut self, point: u64, f: Fence) {
        self.add_point_set(point, FenceSet::single(f));
    }

    /// [`Self::add_point`] with a whole fence set (a merged sync_file, or
    /// the exact dependency [`Self::fence_set_at`] gave for a TRANSFER).
    ///
    /// Like Linux: the node depends on everything already there; a point
    /// not above the newest one starts a new run numbered as the newest
    /// (so it waits for everything, and QUERY restarts from it); point 0
    /// makes a node numbered 0 (or the newest point's number).
    pub fn add_point_set(&mut self, point: u64, set: FenceSet) {
        let content = std::mem::replace(&mut self.content, Content::Empty);
        self.content = match content {
            Content::Empty => Content::Chain {
                base: None,
                older: Vec::new(),
                head: self.first_node(point, set),
            },
            Content::Plain(plain) => Content::Chain {
                base: Some(plain),
                older: Vec::new(),
                head: self.first_node(point, set),
            },
            Content::Chain {
                base,
                mut older,
                mut head,
            } => {
                if point > head.seqno && head.fences == set {
                    // Same fences as the head: one node can answer for
                    // both points with identical dependencies.
                    head.seqno = point;
                } else {
                    let node = if point > head.seqno {
                        Node {
                            seqno: point,
                            prev_seqno: head.seqno,
                            run: head.run,
                            fences: set,
                        }
                    } else {
                        Node {
                            seqno: head.seqno,
                            prev_seqno: 0,
                            run: self.new_run(),
                            fences: set,
                        }
                    };
                    older.push(std::mem::replace(&mut head, node));
                }
                Content::Chain { base, older, head }
            }
        };
        // Stubs are done by birth, so dropping stub-only nodes needs no
        // timeline: repeated TIMELINE_SIGNALs never grow the chain.
        self.prune(|set| {
            set.fences()
                .iter()
                .map(|f| match f {
                    Fence::Stub { signaled_ns } => Some(*signaled_ns),
                    Fence::Point { .. } => None,
                })
                .try_fold(0, |acc: u64, ns| ns.map(|ns| acc.max(ns)))
        });
        self.bound();
    }

    /// Drops chain nodes (and the base) whose own fences have all completed,
    /// as Linux's chain walk does; no lookup, status or query answer
    /// changes. The scheme calls it after timelines move or before adding
    /// points, to keep chains of timeline fences short.
    pub fn collect(&mut self, tl: &Timelines) {
        self.prune(|set| match set.status(tl) {
            FenceStatus::Active => None,
            done => Some(done.timestamp_ns()),
        });
    }

    /// The current fence (binary view, point 0): for a chain, the newest
    /// node's own fence, not what it depends on; see [`Self::fence_set`].
    pub fn fence(&self) -> Option<Fence> {
        self.fence_at(0).ok().flatten()
    }

    /// The fence that stands for `point` (0: the current content): Ok(None)
    /// when there is no fence (point 0 of an empty syncobj); EINVAL when
    /// the point is not submitted (beyond the newest point, or any point
    /// above 0 on a binary or empty syncobj), as `dma_fence_chain_find_seqno`
    /// answers. A point between two submitted ones is the later one's.
    ///
    /// On a chain this is the landing node's own fence (a node holding
    /// several fences gives its last): enough where one fence per timeline
    /// point is added in order, but a point also depends on earlier nodes,
    /// which [`Self::fence_set_at`] includes; exports and transfers should
    /// use that to keep Linux's semantics.
    pub fn fence_at(&self, point: u64) -> Result<Option<Fence>, i32> {
        Ok(self.locate(point)?.map(|spot| match spot {
            Spot::Plain(set) | Spot::Node { own: set, .. } => {
                representative(set, self.collected_ns)
            }
            Spot::Collected => self.collected_stub(),
        }))
    }

    /// The exact dependency of the current content: [`Self::fence_set_at`]
    /// of point 0.
    pub fn fence_set(&self) -> Option<FenceSet> {
        self.fence_set_at(0).ok().flatten()
    }

    /// Everything that must complete for `point` (0: the current content)
    /// to be done, as a fence set: what Linux's chain node at that point
    /// waits for. Same Ok(None) / EINVAL rules as [`Self::fence_at`].
    pub fn fence_set_at(&self, point: u64) -> Result<Option<FenceSet>, i32> {
        Ok(self.locate(point)?.map(|spot| match spot {
            Spot::Plain(set) => set.clone(),
            Spot::Node { own, base, before } => {
                let mut all: Vec<Fence> = base.map(|b| b.fences().to_vec()).unwrap_or_default();
                for node in before {
                    all.extend_from_slice(node.fences.fences());
                }
                all.extend_from_slice(own.fences());
                FenceSet::from_fences(all)
            }
            Spot::Collected => FenceSet::single(self.collected_stub()),
        }))
    }

    /// Where `point` stands: done when its fences and every earlier chain
    /// node's fences are (the first error among them if any failed); None
    /// when it is not submitted (see [`Self::fence_at`]).
    pub fn point_status(&self, point: u64, tl: &Timelines) -> Option<FenceStatus> {
        let set = self.fence_set_at(point).ok().flatten()?;
        Some(set.status(tl))
    }

    /// SYNCOBJ_QUERY: with `last_submitted` the newest point; otherwise the
    /// highest point such that it and every point before it in the newest
    /// run are done, walking the chain in order and stopping at the first
    /// pending node (0 if that is the first, or if anything before the run
    /// is pending). 0 for a binary or empty syncobj.
    pub fn query(&self, tl: &Timelines, last_submitted: bool) -> u64 {
        let Content::Chain { base, older, head } = &self.content else {
            return 0;
        };
        if last_submitted {
            return head.seqno;
        }
        let done = |set: &FenceSet| set.status(tl).is_complete();
        if base.as_ref().is_some_and(|b| !done(b)) {
            return 0;
        }
        if older.iter().any(|n| n.run != head.run && !done(&n.fences)) {
            return 0;
        }
        let run = older
            .iter()
            .filter(|n| n.run == head.run)
            .chain(std::iter::once(head));
        for node in run {
            if !done(&node.fences) {
                return node.prev_seqno;
            }
        }
        head.seqno
    }

    fn first_node(&mut self, point: u64, set: FenceSet) -> Node {
        Node {
            seqno: point,
            prev_seqno: 0,
            run: self.new_run(),
            fences: set,
        }
    }

    fn new_run(&mut self) -> u64 {
        self.last_run = self.last_run.wrapping_add(1);
        self.last_run
    }

    fn collected_stub(&self) -> Fence {
        Fence::Stub {
            signaled_ns: self.collected_ns,
        }
    }

    /// Drops the base and older nodes for which `done` gives a completion
    /// time; the head always stays, it holds the chain's number and run.
    fn prune(&mut self, mut done: impl FnMut(&FenceSet) -> Option<u64>) {
        let Syncobj {
            content,
            collected_ns,
            ..
        } = self;
        let Content::Chain { base, older, .. } = content else {
            return;
        };
        if let Some(ns) = base.as_ref().and_then(&mut done) {
            *collected_ns = (*collected_ns).max(ns);
            *base = None;
        }
        older.retain(|node| match done(&node.fences) {
            Some(ns) => {
                *collected_ns = (*collected_ns).max(ns);
                false
            }
            None => true,
        });
    }

    fn bound(&mut self) {
        let Content::Chain { base, older, .. } = &mut self.content else {
            return;
        };
        if older.len() <= MAX_CHAIN {
            return;
        }
        let excess = older.len() - MAX_CHAIN;
        for node in older.drain(..excess) {
            *base = Some(match base.take() {
                Some(b) => b.merge(&node.fences),
                None => node.fences,
            });
        }
    }

    fn locate(&self, point: u64) -> Result<Option<Spot<'_>>, i32> {
        let (base, older, head) = match &self.content {
            Content::Empty if point == 0 => return Ok(None),
            Content::Plain(set) if point == 0 => return Ok(Some(Spot::Plain(set))),
            Content::Empty | Content::Plain(_) => return Err(EINVAL),
            Content::Chain { base, older, head } => (base.as_ref(), older, head),
        };
        if point > head.seqno {
            return Err(EINVAL);
        }
        if point == 0 || head.prev_seqno < point {
            return Ok(Some(Spot::Node {
                own: &head.fences,
                base,
                before: older,
            }));
        }
        // Walk back like dma_fence_chain_find_seqno: the node that signals
        // `point` is the oldest one whose predecessor (at insertion) is
        // below it, and a node of another run ends the walk.
        for (i, node) in older.iter().enumerate().rev() {
            if node.run != head.run || node.prev_seqno < point {
                return Ok(Some(Spot::Node {
                    own: &node.fences,
                    base,
                    before: older.get(..i).unwrap_or_default(),
                }));
            }
        }
        Ok(Some(base.map_or(Spot::Collected, Spot::Plain)))
    }
}

/// One fence standing for a set: the set's last (a timeline point if it
/// has any), for callers that can hold only one.
fn representative(set: &FenceSet, fallback_ns: u64) -> Fence {
    set.fences().last().copied().unwrap_or(Fence::Stub {
        signaled_ns: fallback_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::TimelineId;

    fn pt(t: TimelineId, point: u64) -> Fence {
        Fence::Point { timeline: t, point }
    }

    fn stub(ns: u64) -> Fence {
        Fence::Stub { signaled_ns: ns }
    }

    fn setup() -> (Timelines, TimelineId) {
        let mut tl = Timelines::new();
        let t = tl.create("ring");
        (tl, t)
    }

    /// A chain of points 1..=n on one syncobj, point k holding fence t:k.
    fn chain(t: TimelineId, n: u64) -> Syncobj {
        let mut obj = Syncobj::new(false, 0);
        for k in 1..=n {
            obj.add_point(k, pt(t, k));
        }
        obj
    }

    #[test]
    fn create_without_signaled_holds_no_fence() {
        let (tl, _) = setup();
        let obj = Syncobj::new(false, 5);
        assert_eq!(obj.fence(), None);
        assert_eq!(obj.fence_at(0), Ok(None));
        assert_eq!(obj.point_status(0, &tl), None);
    }

    #[test]
    fn create_signaled_holds_a_stub_signalled_at_creation() {
        let (tl, _) = setup();
        let obj = Syncobj::new(true, 5);
        assert_eq!(obj.fence(), Some(stub(5)));
        assert_eq!(
            obj.point_status(0, &tl),
            Some(FenceStatus::Signaled { at_ns: 5 })
        );
    }

    #[test]
    fn reset_drops_the_fence_and_any_chain() {
        let (_, t) = setup();
        let mut obj = Syncobj::new(true, 5);
        obj.reset();
        assert_eq!(obj.fence(), None);
        let mut obj = chain(t, 3);
        obj.reset();
        assert_eq!(obj.fence(), None);
        assert_eq!(obj.fence_at(2), Err(EINVAL));
    }

    #[test]
    fn signal_installs_a_signalled_stub_replacing_a_chain() {
        let (tl, t) = setup();
        let mut obj = chain(t, 3);
        obj.signal(9);
        assert_eq!(obj.fence(), Some(stub(9)));
        assert_eq!(
            obj.point_status(0, &tl),
            Some(FenceStatus::Signaled { at_ns: 9 })
        );
        // Now binary again: points are gone and QUERY reads 0.
        assert_eq!(obj.fence_at(1), Err(EINVAL));
        assert_eq!(obj.query(&tl, true), 0);
    }

    #[test]
    fn timeline_signal_adds_signalled_points() {
        let (tl, _) = setup();
        let mut obj = Syncobj::new(false, 0);
        obj.add_point(3, stub(10));
        assert_eq!(
            obj.point_status(3, &tl),
            Some(FenceStatus::Signaled { at_ns: 10 })
        );
        assert_eq!(obj.query(&tl, false), 3);
        obj.add_point(7, stub(20));
        assert_eq!(obj.query(&tl, false), 7);
        assert_eq!(
            obj.point_status(5, &tl),
            Some(FenceStatus::Signaled { at_ns: 20 })
        );
    }

    #[test]
    fn query_reports_the_highest_signalled_point_walking_the_chain() {
        let (mut tl, t) = setup();
        let obj = chain(t, 5);
        assert_eq!(obj.query(&tl, false), 0);
        tl.signal(t, 3, 10).unwrap();
        assert_eq!(obj.query(&tl, false), 3);
        tl.signal(t, 5, 20).unwrap();
        assert_eq!(obj.query(&tl, false), 5);
    }

    #[test]
    fn query_stops_at_the_first_unsignalled_point() {
        let mut tl = Timelines::new();
        let a = tl.create("a");
        let b = tl.create("b");
        let mut obj = Syncobj::new(false, 0);
        obj.add_point(1, pt(a, 1));
        obj.add_point(2, pt(b, 1)); // still pending
        obj.add_point(3, pt(a, 2));
        tl.signal(a, 2, 10).unwrap();
        // Point 3's own fence is done, but point 2 before it is not.
        assert_eq!(obj.query(&tl, false), 1);
        assert_eq!(obj.point_status(3, &tl), Some(FenceStatus::Active));
        tl.signal(b, 1, 20).unwrap();
        assert_eq!(obj.query(&tl, false), 3);
    }

    #[test]
    fn query_across_a_gap_reports_the_submitted_points() {
        let (mut tl, t) = setup();
        let mut obj = Syncobj::new(false, 0);
        obj.add_point(2, pt(t, 1));
        obj.add_point(10, pt(t, 2));
        tl.signal(t, 1, 10).unwrap();
        assert_eq!(obj.query(&tl, false), 2);
        tl.signal(t, 2, 20).unwrap();
        assert_eq!(obj.query(&tl, false), 10);
    }

    #[test]
    fn query_with_last_submitted_reports_the_newest_point() {
        let (tl, t) = setup();
        let obj = chain(t, 4);
        assert_eq!(obj.query(&tl, true), 4);
        assert_eq!(obj.query(&tl, false), 0);
    }

    #[test]
    fn query_is_zero_for_binary_and_empty_syncobjs() {
        let (tl, _) = setup();
        assert_eq!(Syncobj::new(false, 0).query(&tl, false), 0);
        assert_eq!(Syncobj::new(true, 1).query(&tl, false), 0);
        assert_eq!(Syncobj::new(true, 1).query(&tl, true), 0);
    }

    #[test]
    fn an_out_of_order_point_is_raised_to_the_newest_and_restarts_query() {
        let (mut tl, t) = setup();
        let mut obj = chain(t, 5);
        tl.signal(t, 5, 10).unwrap();
        assert_eq!(obj.query(&tl, false), 5);
        obj.add_point(3, pt(t, 6));
        // Linux numbers the node 5 in a fresh context: LAST_SUBMITTED stays
        // 5 and QUERY reads 0 until everything (incl. t:6) is done.
        assert_eq!(obj.query(&tl, true), 5);
        assert_eq!(obj.query(&tl, false), 0);
        // Every point up to 5 now waits for the new fence as well.
        assert_eq!(obj.point_status(2, &tl), Some(FenceStatus::Active));
        assert_eq!(obj.fence_at(6), Err(EINVAL));
        tl.signal(t, 6, 20).unwrap();
        assert_eq!(obj.query(&tl, false), 5);
        // In-order points join the new run.
        obj.add_point(8, pt(t, 7));
        tl.signal(t, 7, 30).unwrap();
        assert_eq!(obj.query(&tl, false), 8);
    }

    #[test]
    fn fence_at_zero_is_the_current_fence() {
        let (_, t) = setup();
        let obj = chain(t, 3);
        assert_eq!(obj.fence_at(0), Ok(Some(pt(t, 3))));
        assert_eq!(obj.fence(), Some(pt(t, 3)));
        let mut bin = Syncobj::new(false, 0);
        bin.replace(Some(pt(t, 7)));
        assert_eq!(bin.fence_at(0), Ok(Some(pt(t, 7))));
    }

    #[test]
    fn fence_at_an_unsubmitted_point_is_einval() {
        let (_, t) = setup();
        assert_eq!(chain(t, 3).fence_at(4), Err(EINVAL));
        assert_eq!(chain(t, 3).fence_at(u64::MAX), Err(EINVAL));
        // A binary or empty syncobj has no points at all.
        assert_eq!(Syncobj::new(true, 0).fence_at(1), Err(EINVAL));
        assert_eq!(Syncobj::new(false, 0).fence_at(1), Err(EINVAL));
    }

    #[test]
    fn a_point_in_a_gap_is_the_next_submitted_one() {
        let (_, t) = setup();
        let mut obj = Syncobj::new(false, 0);
        obj.add_point(2, pt(t, 20));
        obj.add_point(5, pt(t, 50));
        assert_eq!(obj.fence_at(1), Ok(Some(pt(t, 20))));
        assert_eq!(obj.fence_at(3), Ok(Some(pt(t, 50))));
        assert_eq!(obj.fence_at(5), Ok(Some(pt(t, 50))));
    }

    #[test]
    fn a_point_depends_on_every_earlier_point() {
        let mut tl = Timelines::new();
        let a = tl.create("a");
        let b = tl.create("b");
        let mut obj = Syncobj::new(false, 0);
        obj.add_point(1, pt(a, 1));
        obj.add_point(2, pt(b, 1));
        let dep = obj.fence_set_at(2).unwrap().unwrap();
        assert_eq!(dep.fences(), &[pt(a, 1), pt(b, 1)]);
        tl.signal(b, 1, 10).unwrap();
        assert_eq!(obj.point_status(2, &tl), Some(FenceStatus::Active));
        assert_eq!(obj.point_status(0, &tl), Some(FenceStatus::Active));
        tl.signal(a, 1, 20).unwrap();
        assert_eq!(
            obj.point_status(2, &tl),
            Some(FenceStatus::Signaled { at_ns: 20 })
        );
    }

    #[test]
    fn points_added_over_a_binary_fence_wait_for_it() {
        let (mut tl, t) = setup();
        let mut obj = Syncobj::new(false, 0);
        obj.replace(Some(pt(t, 9)));
        obj.add_point(1, stub(5));
        assert_eq!(obj.point_status(1, &tl), Some(FenceStatus::Active));
        assert_eq!(obj.query(&tl, false), 0);
        tl.signal(t, 9, 30).unwrap();
        assert_eq!(
            obj.point_status(1, &tl),
            Some(FenceStatus::Signaled { at_ns: 30 })
        );
        assert_eq!(obj.query(&tl, false), 1);
    }

    #[test]
    fn a_failed_fence_fails_the_points_that_depend_on_it() {
        let (mut tl, t) = setup();
        let obj = chain(t, 3);
        tl.fail(t, 2, 5, 10).unwrap();
        assert_eq!(
            obj.point_status(2, &tl),
            Some(FenceStatus::Error {
                errno: 5,
                at_ns: 10
            })
        );
        // QUERY counts errored fences as signalled, like dma_fence_is_signaled.
        assert_eq!(obj.query(&tl, false), 2);
    }

    #[test]
    fn transfer_to_binary_replaces_with_the_source_points_dependency() {
        let mut tl = Timelines::new();
        let a = tl.create("a");
        let b = tl.create("b");
        let mut src = Syncobj::new(false, 0);
        src.add_point(1, pt(a, 1));
        src.add_point(2, pt(b, 1));
        let mut dst = chain(a, 4);
        let dep = src.fence_set_at(2).unwrap();
        dst.replace_set(dep);
        assert_eq!(dst.fence_at(1), Err(EINVAL));
        tl.signal(b, 1, 10).unwrap();
        assert_eq!(dst.point_status(0, &tl), Some(FenceStatus::Active));
        tl.signal(a, 1, 20).unwrap();
        assert_eq!(
            dst.point_status(0, &tl),
            Some(FenceStatus::Signaled { at_ns: 20 })
        );
        // The plain-fence form carries the point's own fence.
        let mut plain = Syncobj::new(false, 0);
        plain.replace(src.fence_at(2).unwrap());
        assert_eq!(plain.fence(), Some(pt(b, 1)));
    }

    #[test]
    fn transfer_to_a_point_adds_it_after_the_existing_ones() {
        let (mut tl, t) = setup();
        let src = chain(t, 3);
        let mut dst = Syncobj::new(false, 0);
        dst.add_point(1, stub(1));
        let f = src.fence_at(2).unwrap().unwrap();
        dst.add_point(4, f);
        assert_eq!(dst.query(&tl, true), 4);
        assert_eq!(dst.query(&tl, false), 1);
        tl.signal(t, 2, 10).unwrap();
        assert_eq!(dst.query(&tl, false), 4);
        // The exact dependency form also works for a point.
        let mut dst2 = Syncobj::new(false, 0);
        dst2.add_point_set(6, src.fence_set_at(3).unwrap().unwrap());
        assert_eq!(dst2.point_status(6, &tl), Some(FenceStatus::Active));
    }

    #[test]
    fn transfer_from_an_unsubmitted_point_has_nothing_to_give() {
        let (_, t) = setup();
        assert_eq!(chain(t, 2).fence_set_at(3), Err(EINVAL));
        assert_eq!(Syncobj::new(false, 0).fence_set_at(0), Ok(None));
    }

    #[test]
    fn an_imported_merged_sync_file_keeps_all_its_fences() {
        let mut tl = Timelines::new();
        let a = tl.create("a");
        let b = tl.create("b");
        let merged = FenceSet::single(pt(a, 1)).merge(&FenceSet::single(pt(b, 1)));
        let mut obj = Syncobj::new(false, 0);
        obj.replace_set(Some(merged.clone()));
        assert_eq!(obj.fence_set(), Some(merged));
        tl.signal(b, 1, 10).unwrap();
        assert_eq!(obj.point_status(0, &tl), Some(FenceStatus::Active));
    }

    #[test]
    fn collect_drops_done_nodes_without_changing_any_answer() {
        let (mut tl, t) = setup();
        let mut obj = Syncobj::new(false, 0);
        obj.replace(Some(pt(t, 1)));
        for k in 1..=8 {
            // Fences out of timeline order, so some later points finish
            // before earlier ones.
            let f = pt(t, if k % 2 == 1 { 2 } else { 9 });
            obj.add_point(k * 2, f);
        }
        tl.signal(t, 1, 5).unwrap();
        tl.signal(t, 4, 10).unwrap();
        let answers = |o: &Syncobj, tl: &Timelines| {
            let points: Vec<_> = (0..=17).map(|p| o.point_status(p, tl)).collect();
            (points, o.query(tl, false), o.query(tl, true))
        };
        let before = answers(&obj, &tl);
        obj.collect(&tl);
        assert_eq!(answers(&obj, &tl), before);
        let Content::Chain { base, older, .. } = &obj.content else {
            panic!("still a chain");
        };
        assert!(base.is_none());
        assert_eq!(older.len(), 3);
        assert_eq!(
            obj.point_status(2, &tl),
            Some(FenceStatus::Signaled { at_ns: 10 })
        );
        assert_eq!(obj.query(&tl, false), 2);
    }

    #[test]
    fn ten_thousand_timeline_signals_keep_the_chain_bounded() {
        let (tl, _) = setup();
        let mut obj = Syncobj::new(false, 0);
        for k in 1..=10_000u64 {
            obj.add_point(k, stub(k));
        }
        let Content::Chain { older, .. } = &obj.content else {
            panic!("a chain");
        };
        assert!(older.is_empty());
        assert_eq!(obj.query(&tl, false), 10_000);
        assert_eq!(
            obj.point_status(17, &tl),
            Some(FenceStatus::Signaled { at_ns: 9_999 })
        );
    }

    #[test]
    fn ten_thousand_signalled_points_are_collected() {
        let (mut tl, t) = setup();
        let mut obj = Syncobj::new(false, 0);
        for k in 1..=10_000u64 {
            obj.add_point(k, pt(t, k));
            tl.signal(t, k, k).unwrap();
            obj.collect(&tl);
        }
        let Content::Chain { older, .. } = &obj.content else {
            panic!("a chain");
        };
        assert!(older.is_empty());
        assert_eq!(obj.query(&tl, false), 10_000);
    }

    #[test]
    fn points_on_fences_that_never_signal_stay_bounded_and_never_signal_early() {
        let mut tl = Timelines::new();
        let ts: Vec<_> = (0..4).map(|i| tl.create(&format!("t{i}"))).collect();
        let mut obj = Syncobj::new(false, 0);
        for k in 1..=10_000u64 {
            let t = ts[(k % 4) as usize];
            obj.add_point(k, pt(t, k));
        }
        let Content::Chain { older, .. } = &obj.content else {
            panic!("a chain");
        };
        assert_eq!(older.len(), MAX_CHAIN);
        // The newest points keep their exact dependencies.
        let newest = obj.fence_set_at(10_000).unwrap().unwrap();
        assert_eq!(newest.fences().len(), 4);
        for p in [1, 5_000, 10_000] {
            assert_eq!(obj.point_status(p, &tl), Some(FenceStatus::Active));
        }
        assert_eq!(obj.query(&tl, false), 0);
    }

    #[test]
    fn repeated_points_on_one_pending_fence_share_a_node() {
        let (mut tl, t) = setup();
        let mut obj = Syncobj::new(false, 0);
        for k in 1..=10_000u64 {
            obj.add_point(k, pt(t, 1));
        }
        let Content::Chain { older, .. } = &obj.content else {
            panic!("a chain");
        };
        assert!(older.is_empty());
        assert_eq!(obj.query(&tl, false), 0);
        tl.signal(t, 1, 10).unwrap();
        assert_eq!(obj.query(&tl, false), 10_000);
        assert_eq!(
            obj.point_status(1, &tl),
            Some(FenceStatus::Signaled { at_ns: 10 })
        );
    }

    #[test]
    fn adding_point_zero_makes_a_node_numbered_like_linux() {
        let (tl, _) = setup();
        let mut obj = Syncobj::new(false, 0);
        obj.add_point(0, stub(3));
        assert_eq!(obj.query(&tl, true), 0);
        assert_eq!(obj.fence_at(0), Ok(Some(stub(3))));
        assert_eq!(obj.fence_at(1), Err(EINVAL));
        obj.add_point(4, stub(4));
        obj.add_point(0, stub(5));
        assert_eq!(obj.query(&tl, true), 4);
    }
}
