//! `virgl_walk`: `virgl_stream::walk::walk` (the check every SUBMIT_3D
//! stream passes before it reaches the host) on arbitrary streams, with
//! the opcode walker of `virgl_stream::names` and the trace decoder's
//! summary of the same stream.
//!
//! Input: the stream.
//!
//! Checked: an accepted stream is whole dwords whose commands the opcode
//! walker finds too, re-encodes byte for byte with the crate's encoder,
//! and names distinct non-zero resources; a refusal points inside the
//! stream; every error and summary renders.

use virgl_stream::names;
use virgl_stream::walk::{walk, WalkError};
use virgl_stream::Stream;

/// The target.
pub fn run(data: &[u8]) {
    let summary = gpu_trace::decode::summarize_virgl(data);
    assert!(summary.walked <= data.len());
    match walk(data) {
        Ok(s) => {
            assert_eq!(data.len() % 4, 0);
            let mut commands = names::commands(data);
            let mut again = Stream::new();
            let mut n = 0;
            while let Some((op, obj, len)) = commands.next() {
                let at = commands.offset() - 4 * usize::from(len);
                let payload: Vec<u32> = data[at..commands.offset()]
                    .chunks_exact(4)
                    .map(|w| u32::from_le_bytes(w.try_into().unwrap()))
                    .collect();
                again.command(op, obj, &payload);
                n += 1;
            }
            assert_eq!(
                commands.offset(),
                data.len(),
                "the opcode walker stopped early"
            );
            assert_eq!(n, s.commands);
            assert_eq!(summary.walked, data.len());
            assert!(
                again.to_bytes() == data,
                "an accepted stream does not re-encode"
            );
            let mut seen = std::collections::HashSet::new();
            assert!(s.resources.iter().all(|&r| r != 0 && seen.insert(r)));
        }
        Err(e) => {
            let _ = e.to_string();
            match e {
                WalkError::Unaligned { len } => assert!(len == data.len() && len % 4 != 0),
                e => {
                    let at = e.offset().expect("a command's offset");
                    assert!(at < data.len() && at % 4 == 0, "{e:?}");
                    assert_eq!(e.command(), Some(data[at]));
                }
            }
        }
    }
}
