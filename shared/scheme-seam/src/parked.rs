//! Requests waiting for their condition, kept by the serving loops of both
//! platforms with the same policy: run again after anything happens,
//! answered in arrival order, dropped with their owner.

/// Parked requests of type `R`, each tagged with the connection or handle
/// that owns it.
#[derive(Debug)]
pub(crate) struct Parked<R> {
    list: Vec<(usize, R)>,
}

impl<R> Default for Parked<R> {
    fn default() -> Self {
        Parked { list: Vec::new() }
    }
}

impl<R> Parked<R> {
    /// Parks `req` for `owner`.
    pub(crate) fn park(&mut self, owner: usize, req: R) {
        self.list.push((owner, req));
    }

    /// Runs every parked request again, oldest first; `attempt` returns
    /// `Some` with an answer when a request no longer blocks. Returns the
    /// answered requests (with their owners), removed from the list.
    pub(crate) fn rerun<A>(
        &mut self,
        mut attempt: impl FnMut(usize, &mut R) -> Option<A>,
    ) -> Vec<(usize, R, A)> {
        let mut answered = Vec::new();
        let mut i = 0;
        while i < self.list.len() {
            let (owner, req) = &mut self.list[i];
            match attempt(*owner, req) {
                Some(answer) => {
                    let (owner, req) = self.list.remove(i);
                    answered.push((owner, req, answer));
                }
                None => i += 1,
            }
        }
        answered
    }

    /// Removes and returns the requests for which `pred` holds (their owner
    /// went away, or the caller cancelled them).
    pub(crate) fn take_where(
        &mut self,
        mut pred: impl FnMut(usize, &R) -> bool,
    ) -> Vec<(usize, R)> {
        let (taken, kept) = std::mem::take(&mut self.list)
            .into_iter()
            .partition(|(owner, req)| pred(*owner, req));
        self.list = kept;
        taken
    }

    /// How many requests are parked.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Parked;

    #[test]
    fn reruns_answer_in_arrival_order_and_keep_the_rest() {
        let mut p = Parked::default();
        p.park(1, 10);
        p.park(2, 20);
        p.park(1, 30);
        let answered = p.rerun(|_, r| (*r != 20).then_some(*r + 1));
        assert_eq!(answered, vec![(1, 10, 11), (1, 30, 31)]);
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn owners_leaving_take_their_requests() {
        let mut p = Parked::default();
        p.park(1, 'a');
        p.park(2, 'b');
        p.park(1, 'c');
        assert_eq!(p.take_where(|o, _| o == 1), vec![(1, 'a'), (1, 'c')]);
        assert_eq!(p.rerun(|_, r| Some(*r)), vec![(2, 'b', 'b')]);
        assert_eq!(p.len(), 0);
    }
}
