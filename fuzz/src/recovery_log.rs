//! `recovery_log`: drmd's recovery log (`drmd::recovery::log::Log`), the
//! records in it (`recovery::replay`, postcard-decoded `Record`s folded
//! into a `State`) and the display rebuilt from that state
//! (`Kms::restore`) — what the next drmd reads of memory a dead instance
//! wrote, which may have been anything by then.
//!
//! Input: `[tear: u8][cut: u16][records: u16-length-prefixed bytes...]`.
//! Every record is appended to a fresh log; then, as a kill would leave
//! it, bit 0 of `tear` writes a next record without committing it, and
//! bit 1 moves the committed length back by `1 + cut % (the last record's
//! size)` bytes: into the last record, or to its start.
//!
//! Checked against a model: the log reopened gives back exactly the
//! committed records (an uncommitted one never was; a committed length
//! inside a record is refused at that record, one at its start leaves it
//! out); the state the records add up to, said again by its own records,
//! is the same state; and the display rebuilt from it has the device's
//! outputs and no framebuffer (no object comes back here, so none can be
//! shown).

use std::sync::Arc;
use std::time::Instant;

use drmd::backend::memory::MemoryDevice;
use drmd::device::Device;
use drmd::kms::Kms;
use drmd::recovery::log::{Log, LogError, CAPACITY};
use drmd::recovery::replay;
use scheme_seam::ShmRegion;
use virtio_gpu_proto::Features;

use crate::{Input, Writer};

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let tear = input.u8();
    let cut = input.u16();
    let mut log = Log::create().expect("a log's memory");
    let mut records = Vec::new();
    // Where each committed record starts.
    let mut starts = Vec::new();
    while !input.is_empty() {
        let record = input.bytes16();
        let at = log.used();
        assert!(log.append(record), "a record below 64 KiB fits");
        starts.push(at);
        records.push(record.to_vec());
    }
    let end = log.used();
    if tear & 1 != 0 {
        log.region().write_bytes(end, &5u32.to_le_bytes());
        log.region().write_bytes(end + 4, b"never");
    }
    let mut expected = Ok(records.clone());
    if tear & 2 != 0 {
        if let (Some(&last), Some(size)) = (starts.last(), records.last().map(|r| r.len() + 4)) {
            let back = 1 + usize::from(cut) % size;
            log.region()
                .write_bytes(0, &((end - back) as u64).to_le_bytes());
            // Back to the record's start, it was never committed.
            expected = match back == size {
                true => Ok(records[..records.len() - 1].to_vec()),
                false => Err(LogError::Record(last)),
            };
        }
    }
    let fd = log.region().fd().try_clone_to_owned().expect("dup");
    let region = ShmRegion::map(fd, 0, CAPACITY, true).expect("the log maps again");
    let read = Log::open(region).map(|(_, r)| r);
    assert_eq!(read, expected, "the log read back");
    let Ok(read) = read else {
        return;
    };

    let state = replay(&read);
    let said: Vec<Vec<u8>> = state
        .records()
        .iter()
        .map(|r| postcard::to_allocvec(r).expect("a record encodes"))
        .collect();
    assert_eq!(replay(&said), state, "a state said again by its records");

    if let Some(kms) = &state.kms {
        let memory = MemoryDevice::new(Features::VIRGL);
        let device = Device::new(Arc::new(memory), None).expect("the memory device answers");
        let monitors = device.monitors();
        let rebuilt = Kms::restore(&monitors, kms, &|_| None, &mut |_| None, Instant::now());
        let again = rebuilt.state();
        assert_eq!(again.outputs.len(), monitors.len(), "one output a display");
        assert!(again.fbs.is_empty(), "no framebuffer without its object");
        assert!(again
            .outputs
            .iter()
            .all(|o| o.primary.is_none() && o.cursor_fb.is_none()));
    }
}

/// An input that appends `records` and tears the log as `tear` says.
pub fn seed(tear: u8, cut: u16, records: &[Vec<u8>]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(tear).u16(cut);
    for r in records {
        w.bytes16(r);
    }
    w.build()
}
