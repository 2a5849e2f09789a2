//! The recovery log: drmd's records, appended to memory the supervisor
//! keeps, so that what one instance wrote before it died is there for the
//! next to read.
//!
//! Layout: the first 8 bytes are the committed length (little endian),
//! then records, each a 4-byte length and that many bytes. A record is
//! written whole before the committed length moves past it, so an
//! instance killed in the middle of an append leaves the log as it was
//! before the append: no reader ever sees part of a record.

use std::sync::atomic::{compiler_fence, Ordering};

use scheme_seam::ShmRegion;

/// Bytes of log: pages are only allocated as records reach them.
pub const CAPACITY: usize = 64 << 20;
const HEADER: usize = 8;

/// Why a log cannot be read.
#[derive(Debug, PartialEq, Eq)]
pub enum LogError {
    /// The region is smaller than a log's header.
    Short,
    /// The committed length leaves the region.
    Committed(u64),
    /// A record's length leaves the committed part, at this offset.
    Record(usize),
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogError::Short => write!(f, "recovery log shorter than its header"),
            LogError::Committed(n) => write!(f, "recovery log says {n} bytes committed"),
            LogError::Record(at) => write!(f, "recovery log record at {at} overruns the log"),
        }
    }
}

/// An append-only log in shared memory.
#[derive(Debug)]
pub struct Log {
    region: ShmRegion,
    end: usize,
}

impl Log {
    /// A new, empty log.
    pub fn create() -> std::io::Result<Log> {
        let region = ShmRegion::new("drmd-recovery", CAPACITY)?;
        // Committed from the start: an instance killed before its first
        // append leaves a log that reads as empty, not as one refused.
        region.write_bytes(0, &(HEADER as u64).to_le_bytes());
        Ok(Log {
            region,
            end: HEADER,
        })
    }

    /// The log a dead instance left in `region`, with its records. The
    /// region was written by a process that may have been anything by
    /// then, so every length is checked against it.
    pub fn open(region: ShmRegion) -> Result<(Log, Vec<Vec<u8>>), LogError> {
        if region.len() < HEADER {
            return Err(LogError::Short);
        }
        let mut word = [0u8; 8];
        region.read_bytes(0, &mut word);
        let committed = u64::from_le_bytes(word);
        let end = usize::try_from(committed)
            .ok()
            .filter(|&e| (HEADER..=region.len()).contains(&e))
            .ok_or(LogError::Committed(committed))?;
        let mut records = Vec::new();
        let mut at = HEADER;
        while at < end {
            let mut len = [0u8; 4];
            if at + 4 > end {
                return Err(LogError::Record(at));
            }
            region.read_bytes(at, &mut len);
            let len = u32::from_le_bytes(len) as usize;
            let body = at + 4;
            if len > end - body {
                return Err(LogError::Record(at));
            }
            let mut bytes = vec![0; len];
            region.read_bytes(body, &mut bytes);
            records.push(bytes);
            at = body + len;
        }
        Ok((Log { region, end }, records))
    }

    /// The memory, for the supervisor's store.
    pub fn region(&self) -> &ShmRegion {
        &self.region
    }

    /// Bytes used.
    pub fn used(&self) -> usize {
        self.end
    }

    /// Appends `record`; false when the log has no room for it.
    pub fn append(&mut self, record: &[u8]) -> bool {
        let Ok(len) = u32::try_from(record.len()) else {
            return false;
        };
        let end = self.end + 4 + record.len();
        if end > self.region.len() {
            return false;
        }
        self.region.write_bytes(self.end, &len.to_le_bytes());
        self.region.write_bytes(self.end + 4, record);
        // The record's bytes are in the region before the length that
        // commits them: killed between the two, the record never was.
        compiler_fence(Ordering::SeqCst);
        self.region.write_bytes(0, &(end as u64).to_le_bytes());
        self.end = end;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_in_order_and_a_torn_append_never_was() {
        let mut log = Log::create().unwrap();
        assert!(log.append(b"one"));
        assert!(log.append(b""));
        assert!(log.append(&[7; 1000]));
        // A record written but not committed: the length word stays.
        let at = log.used();
        log.region.write_bytes(at, &9u32.to_le_bytes());
        log.region.write_bytes(at + 4, b"uncommitted");
        let region = ShmRegion::map(
            log.region.fd().try_clone_to_owned().unwrap(),
            0,
            CAPACITY,
            true,
        )
        .unwrap();
        let (reopened, records) = Log::open(region).unwrap();
        assert_eq!(records, vec![b"one".to_vec(), vec![], vec![7; 1000]]);
        assert_eq!(reopened.used(), at);
    }

    #[test]
    fn test_regression_a_log_nothing_was_appended_to_reads_as_empty() {
        let log = Log::create().unwrap();
        let fd = log.region.fd().try_clone_to_owned().unwrap();
        let region = ShmRegion::map(fd, 0, CAPACITY, true).unwrap();
        assert_eq!(Log::open(region).map(|(_, r)| r), Ok(vec![]));
    }

    #[test]
    fn lengths_a_dead_writer_left_wrong_are_refused() {
        let log = Log::create().unwrap();
        let reopen = |log: &Log| {
            let fd = log.region.fd().try_clone_to_owned().unwrap();
            Log::open(ShmRegion::map(fd, 0, CAPACITY, true).unwrap()).map(|(_, r)| r)
        };
        for committed in [0u64, 7, CAPACITY as u64 + 1, u64::MAX] {
            log.region.write_bytes(0, &committed.to_le_bytes());
            assert_eq!(reopen(&log), Err(LogError::Committed(committed)));
        }
        // A record whose length runs past what is committed.
        log.region.write_bytes(0, &20u64.to_le_bytes());
        log.region.write_bytes(8, &100u32.to_le_bytes());
        assert_eq!(reopen(&log), Err(LogError::Record(8)));
        // Fewer than 4 bytes left for a length.
        log.region.write_bytes(0, &10u64.to_le_bytes());
        assert_eq!(reopen(&log), Err(LogError::Record(8)));
    }
}
