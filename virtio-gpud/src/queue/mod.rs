//! Virtqueues. Only the split layout is implemented: the packed layout is
//! not offered by the devices this driver targets.

mod split;

pub use split::{Buffer, QueueAddrs, QueueError, SplitQueue, Used, MAX_QUEUE_SIZE};
