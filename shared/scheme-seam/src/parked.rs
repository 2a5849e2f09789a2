//! Requests waiting for their condition, kept by the serving loops of both
//! platforms with the same policy: each with the keys it waits for and its
//! deadline; run again only when a key is woken or the deadline passes;
//! answered in arrival order; dropped with their owner.

use std::time::Instant;

use crate::errno::{Errno, Result};
use crate::handler::{Answer, Park, WakeKey};

/// Rounds of re-runs one step of the loop makes while re-run requests wake
/// others; what is still woken after them runs on the loop's next turn,
/// which then does not wait.
pub(crate) const MAX_ROUNDS: usize = 8;

/// A handler's answer as the loop acts on it: a park of a non-blocking
/// request is `EAGAIN`; one of a request at its deadline is `ETIMEDOUT`
/// (the handler should have answered); one that can never wake (no key,
/// no deadline) is `EDEADLK`, logged as the handler bug it is.
pub(crate) fn resolve(answer: Result<Answer>, nonblock: bool, expired: bool) -> Result<Answer> {
    match answer? {
        Answer::Park(_) if nonblock => Err(Errno::EAGAIN),
        Answer::Park(_) if expired => Err(Errno::ETIMEDOUT),
        Answer::Park(p) if p.wake.is_empty() && p.until.is_none() => {
            log::error!("a request parked on nothing: answered EDEADLK");
            Err(Errno::EDEADLK)
        }
        ready => Ok(ready),
    }
}

struct Entry<R> {
    owner: usize,
    wake: Vec<WakeKey>,
    until: Option<Instant>,
    req: R,
}

/// Parked requests of type `R`, each tagged with the connection or handle
/// that owns it.
pub(crate) struct Parked<R> {
    list: Vec<Entry<R>>,
}

impl<R> Default for Parked<R> {
    fn default() -> Self {
        Parked { list: Vec::new() }
    }
}

/// What running a parked request again gave.
pub(crate) enum Rerun<A> {
    /// Answered: it leaves the list.
    Answered(A),
    /// Still waiting, for what this says (its first deadline is kept
    /// unless this one is earlier).
    Parked(Park),
}

impl<R> Parked<R> {
    /// Parks `req` for `owner` as `park` says.
    pub(crate) fn park(&mut self, owner: usize, park: Park, req: R) {
        crate::metrics::count_parked(1, 0);
        self.list.push(Entry {
            owner,
            wake: park.wake,
            until: park.until,
            req,
        });
    }

    /// Runs again, oldest first, every request waiting for one of `woken`
    /// or whose deadline is at or before `now` (`attempt`'s `bool`: it
    /// expired). Returns the answered requests with their owners, removed
    /// from the list.
    pub(crate) fn rerun<A>(
        &mut self,
        woken: &[WakeKey],
        now: Instant,
        mut attempt: impl FnMut(usize, &mut R, bool) -> Rerun<A>,
    ) -> Vec<(usize, R, A)> {
        let mut answered = Vec::new();
        let mut i = 0;
        while i < self.list.len() {
            let e = &mut self.list[i];
            let expired = e.until.is_some_and(|at| at <= now);
            if !expired && !e.wake.iter().any(|k| woken.contains(k)) {
                i += 1;
                continue;
            }
            match attempt(e.owner, &mut e.req, expired) {
                Rerun::Answered(answer) => {
                    crate::metrics::count_parked(0, 1);
                    let e = self.list.remove(i);
                    answered.push((e.owner, e.req, answer));
                }
                Rerun::Parked(park) => {
                    e.wake = park.wake;
                    e.until = match (e.until, park.until) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    i += 1;
                }
            }
        }
        answered
    }

    /// The earliest deadline of a parked request.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.list.iter().filter_map(|e| e.until).min()
    }

    /// Removes and returns the requests for which `pred` holds (their owner
    /// went away, or the caller cancelled them).
    pub(crate) fn take_where(
        &mut self,
        mut pred: impl FnMut(usize, &R) -> bool,
    ) -> Vec<(usize, R)> {
        let (taken, kept) = std::mem::take(&mut self.list)
            .into_iter()
            .partition(|e| pred(e.owner, &e.req));
        self.list = kept;
        crate::metrics::count_parked(0, taken.len());
        taken.into_iter().map(|e| (e.owner, e.req)).collect()
    }

    /// How many requests are parked.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Parked, Rerun};
    use crate::handler::{Park, WakeKey};

    const A: WakeKey = WakeKey(1);
    const B: WakeKey = WakeKey(2);

    #[test]
    fn only_requests_on_a_woken_key_run_again_in_arrival_order() {
        let mut p = Parked::default();
        let now = Instant::now();
        p.park(1, Park::on(A), 10);
        p.park(2, Park::on(B), 20);
        p.park(1, Park::on_any([B, A]), 30);
        let mut ran = Vec::new();
        let answered = p.rerun(&[A], now, |_, r, expired| {
            assert!(!expired);
            ran.push(*r);
            Rerun::Answered(*r + 1)
        });
        assert_eq!(ran, vec![10, 30], "20 waits for B only");
        assert_eq!(answered, vec![(1, 10, 11), (1, 30, 31)]);
        assert_eq!(p.len(), 1);
        assert!(p.rerun(&[], now, |_, _, _| Rerun::Answered(())).is_empty());
    }

    #[test]
    fn a_deadline_runs_its_request_as_expired_and_is_kept_across_reparks() {
        let mut p = Parked::default();
        let now = Instant::now();
        let soon = now + Duration::from_millis(5);
        p.park(1, Park::on(A).until(soon), 'a');
        p.park(2, Park::on(A), 'b');
        assert_eq!(p.next_deadline(), Some(soon));
        // Woken before its deadline, it parks again with a later one: the
        // first deadline stands.
        let later = now + Duration::from_secs(60);
        p.rerun(&[A], now, |_, _, _| {
            Rerun::<()>::Parked(Park::on(A).until(later))
        });
        assert_eq!(p.next_deadline(), Some(soon));
        let mut expired = Vec::new();
        let answered = p.rerun(&[], soon, |_, r, e| {
            expired.push((*r, e));
            Rerun::Answered(())
        });
        assert_eq!(expired, vec![('a', true)], "'b' waits until later");
        assert_eq!(answered.len(), 1);
        assert_eq!(p.next_deadline(), Some(later));
    }

    #[test]
    fn owners_leaving_take_their_requests() {
        let mut p = Parked::default();
        p.park(1, Park::on(A), 'a');
        p.park(2, Park::on(A), 'b');
        p.park(1, Park::on(A), 'c');
        assert_eq!(p.take_where(|o, _| o == 1), vec![(1, 'a'), (1, 'c')]);
        let answered = p.rerun(&[A], Instant::now(), |_, r, _| Rerun::Answered(*r));
        assert_eq!(answered, vec![(2, 'b', 'b')]);
        assert_eq!(p.len(), 0);
    }
}
