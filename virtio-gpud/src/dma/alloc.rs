//! First-fit free list over a region's offsets, coalescing on free.
//!
//! The pool holds few, mostly short-lived allocations (ring memory, one
//! request and response per command in flight, resource backing), so a
//! sorted list of free ranges is both simple and fast enough.

/// Free ranges of a region as sorted, non-adjacent `(offset, len)` pairs.
#[derive(Debug)]
pub(crate) struct FreeList {
    ranges: Vec<(usize, usize)>,
}

impl FreeList {
    /// A list in which all of `len` bytes are free.
    pub(crate) fn new(len: usize) -> Self {
        FreeList {
            ranges: vec![(0, len)],
        }
    }

    /// Takes `len` bytes at an offset that is a multiple of `align`.
    pub(crate) fn alloc(&mut self, len: usize, align: usize) -> Option<usize> {
        let (i, start, pad) = self.ranges.iter().enumerate().find_map(|(i, &(s, l))| {
            let aligned = s.checked_next_multiple_of(align)?;
            let pad = aligned - s;
            (l >= pad.checked_add(len)?).then_some((i, aligned, pad))
        })?;
        let (s, l) = self.ranges[i];
        let tail = (start + len, l - pad - len);
        match (pad > 0, tail.1 > 0) {
            (false, false) => {
                self.ranges.remove(i);
            }
            (false, true) => self.ranges[i] = tail,
            (true, false) => self.ranges[i] = (s, pad),
            (true, true) => {
                self.ranges[i] = (s, pad);
                self.ranges.insert(i + 1, tail);
            }
        }
        Some(start)
    }

    /// Returns `offset..offset + len`, merging it with free neighbours.
    pub(crate) fn free(&mut self, offset: usize, len: usize) {
        let i = self.ranges.partition_point(|&(s, _)| s < offset);
        debug_assert!(i == 0 || self.ranges[i - 1].0 + self.ranges[i - 1].1 <= offset);
        debug_assert!(i == self.ranges.len() || offset + len <= self.ranges[i].0);
        let joins_prev = i > 0 && self.ranges[i - 1].0 + self.ranges[i - 1].1 == offset;
        let joins_next = i < self.ranges.len() && offset + len == self.ranges[i].0;
        match (joins_prev, joins_next) {
            (true, true) => {
                self.ranges[i - 1].1 += len + self.ranges[i].1;
                self.ranges.remove(i);
            }
            (true, false) => self.ranges[i - 1].1 += len,
            (false, true) => self.ranges[i] = (offset, len + self.ranges[i].1),
            (false, false) => self.ranges.insert(i, (offset, len)),
        }
    }

    /// Total free bytes.
    pub(crate) fn free_bytes(&self) -> usize {
        self.ranges.iter().map(|&(_, l)| l).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::FreeList;

    #[test]
    fn alignment_padding_stays_free() {
        let mut f = FreeList::new(8192);
        assert_eq!(f.alloc(64, 64), Some(0));
        assert_eq!(f.alloc(64, 4096), Some(4096));
        assert_eq!(f.ranges, vec![(64, 4032), (4160, 4032)]);
        assert_eq!(f.alloc(4032, 64), Some(64));
    }

    #[test]
    fn frees_coalesce_in_any_order() {
        let mut f = FreeList::new(4 * 64);
        let offs: Vec<_> = (0..4).map(|_| f.alloc(64, 64).unwrap()).collect();
        assert_eq!(f.alloc(64, 64), None);
        for &o in &[offs[1], offs[3], offs[0], offs[2]] {
            f.free(o, 64);
        }
        assert_eq!(f.ranges, vec![(0, 256)]);
        assert_eq!(f.free_bytes(), 256);
    }

    #[test]
    fn too_large_or_unalignable_requests_fail() {
        let mut f = FreeList::new(4096);
        assert_eq!(f.alloc(4097, 64), None);
        f.alloc(64, 64).unwrap();
        assert_eq!(f.alloc(4096 - 64, 4096), None);
    }
}
