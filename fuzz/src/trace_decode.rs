//! `trace_decode`: virtio-gpud's trace decoder (`trace::decode`, over the
//! record codec of `trace::record`) on arbitrary bytes, as `gpu-trace`
//! reads a recorded file or the live stream: chunks cut anywhere pushed
//! into a `StreamDecoder`, every whole record rendered as text, as JSON
//! and as a hex dump, summarized, and passed through a filter.
//!
//! Input: `[config: u8][filter: u8][ctx: u32][type: u32][resource: u32][origin: u8]`,
//! `config % 16` cut offsets (`u16`), then the stream. With `config` bit 4
//! the stream gets the version-1 stream header in front (so the fuzzer
//! spends its bytes on records); bit 5 adds the bytes to the JSON. `filter`
//! bits 0-3 set the filter's context, type, resource and origin.
//!
//! Checked: the records (and the final error, or what is left pending)
//! are the same however the stream is cut; a described record is one
//! line; its JSON is valid JSON, one object with its kind.

use gpu_trace::decode::{self, Filter, StreamDecoder};
use virtio_gpu_proto::CommandType;
use virtio_gpud::trace::record::{FormatError, Kind, Record, StreamHeader};
use zerocopy::IntoBytes;

use crate::{Input, Writer};

/// What a decode produced: the records (header bytes, bytes), the final
/// error if any, and what was left pending.
#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    records: Vec<(Vec<u8>, Vec<u8>)>,
    error: Option<FormatError>,
    pending: usize,
    started: bool,
}

fn decode_chunks<'a>(
    chunks: impl Iterator<Item = &'a [u8]>,
    mut each: impl FnMut(&Record<'_>),
) -> Decoded {
    let mut d = StreamDecoder::new();
    let mut out = Decoded {
        records: Vec::new(),
        error: None,
        pending: 0,
        started: false,
    };
    'outer: for chunk in chunks {
        d.push(chunk);
        loop {
            match d.next_record() {
                Ok(Some(r)) => {
                    each(&r);
                    out.records
                        .push((r.header.as_bytes().to_vec(), r.bytes.to_vec()));
                }
                Ok(None) => break,
                Err(e) => {
                    out.error = Some(e);
                    break 'outer;
                }
            }
        }
    }
    if out.error.is_none() {
        out.pending = d.pending();
    }
    out.started = d.started();
    out
}

fn render(r: &Record<'_>, start: u64, with_bytes: bool, filter: &mut Filter) {
    let line = decode::describe(r, start);
    assert!(
        !line.contains('\n'),
        "a described record spans lines: {line:?}"
    );
    // Hex of long records is the same loop over more bytes: a prefix
    // covers it, and the fuzzer's time goes to the records instead.
    let json = decode::to_json(r, start, with_bytes && r.bytes.len() <= 512);
    assert!(!json.contains('\n'));
    let value: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("invalid JSON ({e}): {json}"));
    assert!(value.get("kind").is_some_and(|k| k.is_string()), "{json}");
    let _ = decode::detail(r).to_string();
    let _ = decode::type_name(r);
    let _ = decode::hex_dump(&r.bytes[..r.bytes.len().min(256)]);
    let _ = filter.matches(r);
    if r.kind() == Kind::COMMAND && CommandType(r.header.ty) == CommandType::SUBMIT_3D {
        let s = decode::summarize_virgl(r.bytes.get(32..).unwrap_or_default());
        assert!(s.walked <= s.present);
    }
}

/// The target.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let config = input.u8();
    let mask = input.u8();
    let (ctx, ty, res, origin) = (input.u32(), input.u32(), input.u32(), input.u8());
    let mut filter = Filter::new();
    filter.ctx = (mask & 1 != 0).then_some(ctx);
    filter.ty = (mask & 2 != 0).then_some(ty);
    filter.resource = (mask & 4 != 0).then_some(res);
    filter.origin = (mask & 8 != 0).then_some(u64::from(origin));
    let mut cuts: Vec<usize> = (0..config % 16).map(|_| usize::from(input.u16())).collect();
    let mut stream = Vec::new();
    if config & 0x10 != 0 {
        stream.extend_from_slice(StreamHeader::V1.as_bytes());
    }
    stream.extend_from_slice(input.rest());
    for c in &mut cuts {
        *c %= stream.len() + 1;
    }
    cuts.extend([0, stream.len()]);
    cuts.sort_unstable();
    cuts.dedup();
    let with_bytes = config & 0x20 != 0;
    let mut start = None;
    let chunked = decode_chunks(cuts.windows(2).map(|w| &stream[w[0]..w[1]]), |r| {
        let start = *start.get_or_insert(r.header.time_ns);
        render(r, start, with_bytes, &mut filter);
    });
    let whole = decode_chunks(std::iter::once(&stream[..]), |_| {});
    assert!(
        chunked == whole,
        "cut at {cuts:?}, the stream decodes differently:\n{chunked:?}\nwhole:\n{whole:?}"
    );
}

/// A seed: the config and filter bytes, then `stream` (which should carry
/// its own stream header unless `config` bit 4 is set).
pub fn seed(
    config: u8,
    mask: u8,
    filter: (u32, u32, u32, u8),
    cuts: &[u16],
    stream: &[u8],
) -> Vec<u8> {
    assert_eq!(usize::from(config % 16), cuts.len());
    let mut w = Writer::new();
    w.u8(config)
        .u8(mask)
        .u32(filter.0)
        .u32(filter.1)
        .u32(filter.2)
        .u8(filter.3);
    for &c in cuts {
        w.u16(c);
    }
    w.raw(stream).build()
}
