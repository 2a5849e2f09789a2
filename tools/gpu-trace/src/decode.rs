//! Turning records into text a person reads (one line per command and
//! answer, like a packet analyzer, virgl streams summarized by opcode),
//! JSON for tools, and filters. Pure functions over [`Record`]s; the
//! `gpu-trace` tool is a thin loop around them.
//!
//! - [`StreamDecoder`] reassembles records from chunks cut anywhere (live
//!   reads, file reads);
//! - [`detail`] reads the parameters worth a glance out of a command or
//!   answer ([`Detail`]);
//! - [`describe`] and [`to_json`] render a record as one line;
//! - [`Filter`] keeps the records of one context, type, resource or
//!   session, answers included.
//!
//! Nothing here trusts the bytes: a record cut at the reader's cap, or a
//! command with nonsense in it, is shown as far as it goes.

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::mem::offset_of;

use serde::Serialize;
use serde_json::value::RawValue;
use virgl_stream::names;
use virtio_gpu_proto::{
    CmdSubmit, CommandType, CtrlHdr, CtxCreate, GetCapset, GetCapsetInfo, GetEdid, MemEntry, Rect,
    ResourceAttachBacking, ResourceCreate2d, ResourceCreate3d, ResourceCreateBlob, ResourceFlush,
    ResourceMapBlob, RespCapsetInfo, RespDisplayInfo, RespMapInfo, ResponseType, SetScanout,
    SetScanoutBlob, TransferToHost2d, TransferToHost3d, UpdateCursor,
};
use zerocopy::FromBytes;

use virtio_gpud::trace::record::{self, FormatError, Kind, Record, StreamHeader, FLAG_TRUNCATED};

/// Runs of a virgl stream [`describe`] shows before summing up the rest.
const TEXT_RUNS: usize = 24;
/// Seqs of matched commands a [`Filter`] remembers while their answers are
/// outstanding (answers lost to drops would otherwise pile up).
const MATCHED_SEQS: usize = 1 << 16;

/// A run of equal commands in a virgl stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirglRun {
    /// The opcode (`VIRGL_CCMD_*`).
    pub opcode: u8,
    /// The object type, for CREATE/BIND/DESTROY_OBJECT (0 otherwise).
    pub object: u8,
    /// How many such commands in a row.
    pub count: u32,
}

impl VirglRun {
    /// Whether the object type is part of what the command means.
    fn has_object(&self) -> bool {
        matches!(self.opcode, 1..=3) && self.object != 0
    }
}

/// As JSON: the opcode and its name, the object type and its name where
/// it means something, the count.
impl Serialize for VirglRun {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("opcode", &self.opcode)?;
        map.serialize_entry("name", &names::opcode_name(self.opcode))?;
        if self.has_object() {
            map.serialize_entry("object", &self.object)?;
            map.serialize_entry("object_name", &names::object_name(self.object))?;
        }
        map.serialize_entry("count", &self.count)?;
        map.end()
    }
}

impl fmt::Display for VirglRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match names::opcode_name(self.opcode) {
            Some(name) => f.write_str(name)?,
            None => write!(f, "{:#04x}", self.opcode)?,
        }
        if self.has_object() {
            match names::object_name(self.object) {
                Some(name) => write!(f, "({name})")?,
                None => write!(f, "({:#04x})", self.object)?,
            }
        }
        if self.count > 1 {
            write!(f, " x{}", self.count)?;
        }
        Ok(())
    }
}

/// A virgl stream summarized: its commands with repeats collapsed, and how
/// far the walk got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VirglSummary {
    /// Bytes of the stream present (less than its size if the record was
    /// cut).
    #[serde(rename = "stream_present")]
    pub present: usize,
    /// Bytes of whole commands walked.
    #[serde(rename = "stream_walked")]
    pub walked: usize,
    /// The commands in order, equal neighbours as one run.
    #[serde(rename = "virgl")]
    pub runs: Vec<VirglRun>,
}

/// Summarizes the virgl stream `stream` by opcode (the object type kept for
/// CREATE/BIND/DESTROY_OBJECT), collapsing repeats.
pub fn summarize_virgl(stream: &[u8]) -> VirglSummary {
    let mut runs: Vec<VirglRun> = Vec::new();
    let mut walk = names::commands(stream);
    for (opcode, object, _) in walk.by_ref() {
        let object = if matches!(opcode, 1..=3) { object } else { 0 };
        match runs.last_mut() {
            Some(last) if (last.opcode, last.object) == (opcode, object) => last.count += 1,
            _ => runs.push(VirglRun {
                opcode,
                object,
                count: 1,
            }),
        }
    }
    VirglSummary {
        runs,
        walked: walk.offset(),
        present: stream.len(),
    }
}

/// What a record's bytes say beyond its header: the parameters worth a
/// glance, for the commands and answers that have them. Serialised (as
/// the `detail` of `--json`) under the names given here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Detail {
    /// Nothing more to say (or the bytes end before the fields); never
    /// serialised.
    #[serde(skip)]
    None,
    /// CTX_CREATE.
    CtxCreate {
        /// The debug name (lossy UTF-8).
        name: String,
        /// The capset id in the low byte, 0 for the default.
        context_init: u32,
    },
    /// RESOURCE_CREATE_2D.
    Create2d {
        /// Format (`VIRGL_FORMAT_*` = virtio-gpu format).
        format: u32,
        /// Its name, if known.
        format_name: Option<&'static str>,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// RESOURCE_CREATE_3D.
    Create3d {
        /// `PIPE_TEXTURE_*` target.
        target: u32,
        /// Its name, if known.
        target_name: Option<&'static str>,
        /// Format (`VIRGL_FORMAT_*`).
        format: u32,
        /// Its name, if known.
        format_name: Option<&'static str>,
        /// `VIRGL_BIND_*` bits.
        bind: u32,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Depth.
        depth: u32,
        /// Array layers.
        array_size: u32,
        /// Last mip level.
        last_level: u32,
        /// Sample count.
        nr_samples: u32,
        /// `VIRGL_RESOURCE_*` flags.
        flags: u32,
    },
    /// RESOURCE_CREATE_BLOB.
    CreateBlob {
        /// `BLOB_MEM_*`.
        blob_mem: u32,
        /// `BLOB_FLAG_*`.
        blob_flags: u32,
        /// The host object, for host blobs.
        blob_id: u64,
        /// Bytes.
        size: u64,
        /// Backing entries that follow.
        nr_entries: u32,
    },
    /// RESOURCE_ATTACH_BACKING.
    Backing {
        /// Entries the command says follow.
        nr_entries: u32,
        /// Entries present in the record (fewer if it was cut).
        #[serde(rename = "entries_present")]
        present: u32,
        /// Bytes of the entries present.
        #[serde(rename = "backing_bytes")]
        bytes: u64,
    },
    /// SET_SCANOUT, SET_SCANOUT_BLOB, RESOURCE_FLUSH: a rectangle.
    Rect {
        /// The scanout (not for RESOURCE_FLUSH).
        #[serde(skip_serializing_if = "Option::is_none")]
        scanout: Option<u32>,
        /// x, y, width, height.
        rect: [u32; 4],
    },
    /// TRANSFER_TO_HOST_2D.
    Transfer2d {
        /// x, y, width, height.
        rect: [u32; 4],
        /// Byte offset in the backing.
        offset: u64,
    },
    /// TRANSFER_TO_HOST_3D, TRANSFER_FROM_HOST_3D.
    Transfer3d {
        /// x, y, z, w, h, d.
        #[serde(rename = "box")]
        box_: [u32; 6],
        /// Mip level.
        level: u32,
        /// Byte offset in the backing.
        offset: u64,
        /// Row stride (0: the host derives it).
        stride: u32,
        /// Layer stride (0: the host derives it).
        layer_stride: u32,
    },
    /// SUBMIT_3D.
    Submit {
        /// The stream's size as the command says.
        #[serde(rename = "stream_size")]
        size: u32,
        /// The stream, as far as it is present.
        #[serde(flatten)]
        virgl: VirglSummary,
    },
    /// GET_CAPSET_INFO.
    CapsetIndex {
        /// The capset index asked about.
        #[serde(rename = "capset_index")]
        index: u32,
    },
    /// GET_CAPSET, and its OK_CAPSET_INFO answer.
    Capset {
        /// Capset id.
        #[serde(rename = "capset_id")]
        id: u32,
        /// Version (maximum version in the answer).
        #[serde(rename = "capset_version")]
        version: u32,
        /// Maximum size (answer only).
        #[serde(rename = "capset_max_size", skip_serializing_if = "Option::is_none")]
        max_size: Option<u32>,
    },
    /// GET_EDID.
    Scanout {
        /// The scanout.
        scanout: u32,
    },
    /// UPDATE_CURSOR, MOVE_CURSOR.
    Cursor {
        /// The scanout.
        scanout: u32,
        /// Hotspot x.
        x: u32,
        /// Hotspot y.
        y: u32,
    },
    /// RESOURCE_MAP_BLOB.
    MapBlob {
        /// Offset in the host-visible region.
        offset: u64,
    },
    /// OK_MAP_INFO.
    MapInfo {
        /// `MAP_CACHE_*`.
        map_info: u32,
    },
    /// OK_DISPLAY_INFO: the enabled scanouts.
    Displays {
        /// Each enabled scanout.
        #[serde(rename = "displays")]
        enabled: Vec<ScanoutMode>,
    },
}

/// An enabled scanout and its size, from OK_DISPLAY_INFO.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ScanoutMode {
    /// The scanout.
    pub scanout: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// The parameters of `r`'s command or answer worth a glance.
pub fn detail(r: &Record<'_>) -> Detail {
    let b = r.bytes;
    let d = match r.kind() {
        Kind::COMMAND => command_detail(CommandType(r.header.ty), b),
        Kind::RESPONSE => response_detail(ResponseType(r.header.ty), b),
        _ => None,
    };
    d.unwrap_or(Detail::None)
}

/// The struct at the start of `b`, if `b` holds all of it.
fn read<T: FromBytes>(b: &[u8]) -> Option<T> {
    T::read_from_prefix(b).ok().map(|(t, _)| t)
}

fn rect(r: &Rect) -> [u32; 4] {
    [r.x.get(), r.y.get(), r.width.get(), r.height.get()]
}

fn command_detail(ty: CommandType, b: &[u8]) -> Option<Detail> {
    Some(match ty {
        CommandType::CTX_CREATE => {
            // A cut record shows what is there of the name.
            let fixed = offset_of!(CtxCreate, debug_name);
            if b.len() < fixed {
                return None;
            }
            let mut whole = [0u8; size_of::<CtxCreate>()];
            let present = b.len().min(whole.len());
            whole[..present].copy_from_slice(&b[..present]);
            let c: CtxCreate = read(&whole)?;
            let len = (c.nlen.get() as usize).min(present - fixed);
            let name = &c.debug_name[..len];
            Detail::CtxCreate {
                name: String::from_utf8_lossy(name).into_owned(),
                context_init: c.context_init.get(),
            }
        }
        CommandType::RESOURCE_CREATE_2D => {
            let c: ResourceCreate2d = read(b)?;
            Detail::Create2d {
                format: c.format.get(),
                format_name: names::format_name(c.format.get()),
                width: c.width.get(),
                height: c.height.get(),
            }
        }
        CommandType::RESOURCE_CREATE_3D => {
            let p = read::<ResourceCreate3d>(b)?.params();
            Detail::Create3d {
                target: p.target,
                target_name: names::target_name(p.target),
                format: p.format,
                format_name: names::format_name(p.format),
                bind: p.bind,
                width: p.width,
                height: p.height,
                depth: p.depth,
                array_size: p.array_size,
                last_level: p.last_level,
                nr_samples: p.nr_samples,
                flags: p.flags,
            }
        }
        CommandType::RESOURCE_CREATE_BLOB => {
            let c: ResourceCreateBlob = read(b)?;
            Detail::CreateBlob {
                blob_mem: c.blob_mem.get(),
                blob_flags: c.blob_flags.get(),
                blob_id: c.blob_id.get(),
                size: c.size.get(),
                nr_entries: c.nr_entries.get(),
            }
        }
        CommandType::RESOURCE_ATTACH_BACKING => {
            let c: ResourceAttachBacking = read(b)?;
            let nr_entries = c.nr_entries.get();
            let entries = b
                .get(size_of::<ResourceAttachBacking>()..)
                .unwrap_or_default();
            let present = entries
                .chunks_exact(size_of::<MemEntry>())
                .take(nr_entries as usize)
                .filter_map(read::<MemEntry>);
            let (mut n, mut bytes) = (0u32, 0u64);
            for e in present {
                n += 1;
                bytes += u64::from(e.length.get());
            }
            Detail::Backing {
                nr_entries,
                present: n,
                bytes,
            }
        }
        CommandType::SET_SCANOUT => {
            let c: SetScanout = read(b)?;
            Detail::Rect {
                scanout: Some(c.scanout_id.get()),
                rect: rect(&c.r),
            }
        }
        CommandType::SET_SCANOUT_BLOB => {
            let c: SetScanoutBlob = read(b)?;
            Detail::Rect {
                scanout: Some(c.scanout_id.get()),
                rect: rect(&c.r),
            }
        }
        CommandType::RESOURCE_FLUSH => {
            let c: ResourceFlush = read(b)?;
            Detail::Rect {
                scanout: None,
                rect: rect(&c.r),
            }
        }
        CommandType::TRANSFER_TO_HOST_2D => {
            let c: TransferToHost2d = read(b)?;
            Detail::Transfer2d {
                rect: rect(&c.r),
                offset: c.offset.get(),
            }
        }
        CommandType::TRANSFER_TO_HOST_3D | CommandType::TRANSFER_FROM_HOST_3D => {
            let c: TransferToHost3d = read(b)?;
            let x = &c.box_;
            Detail::Transfer3d {
                box_: [x.x, x.y, x.z, x.w, x.h, x.d].map(|v| v.get()),
                level: c.level.get(),
                offset: c.offset.get(),
                stride: c.stride.get(),
                layer_stride: c.layer_stride.get(),
            }
        }
        CommandType::SUBMIT_3D => {
            let c: CmdSubmit = read(b)?;
            let size = c.size.get();
            let rest = b.get(size_of::<CmdSubmit>()..).unwrap_or_default();
            let stream = &rest[..rest.len().min(size as usize)];
            Detail::Submit {
                size,
                virgl: summarize_virgl(stream),
            }
        }
        CommandType::GET_CAPSET_INFO => Detail::CapsetIndex {
            index: read::<GetCapsetInfo>(b)?.capset_index.get(),
        },
        CommandType::GET_CAPSET => {
            let c: GetCapset = read(b)?;
            Detail::Capset {
                id: c.capset_id.get(),
                version: c.capset_version.get(),
                max_size: None,
            }
        }
        CommandType::GET_EDID => Detail::Scanout {
            scanout: read::<GetEdid>(b)?.scanout.get(),
        },
        CommandType::UPDATE_CURSOR | CommandType::MOVE_CURSOR => {
            let p = read::<UpdateCursor>(b)?.pos;
            Detail::Cursor {
                scanout: p.scanout_id.get(),
                x: p.x.get(),
                y: p.y.get(),
            }
        }
        CommandType::RESOURCE_MAP_BLOB => Detail::MapBlob {
            offset: read::<ResourceMapBlob>(b)?.offset.get(),
        },
        _ => return None,
    })
}

fn response_detail(ty: ResponseType, b: &[u8]) -> Option<Detail> {
    Some(match ty {
        ResponseType::OK_CAPSET_INFO => {
            let r: RespCapsetInfo = read(b)?;
            Detail::Capset {
                id: r.capset_id.get(),
                version: r.capset_max_version.get(),
                max_size: Some(r.capset_max_size.get()),
            }
        }
        ResponseType::OK_MAP_INFO => Detail::MapInfo {
            map_info: read::<RespMapInfo>(b)?.map_info.get(),
        },
        ResponseType::OK_DISPLAY_INFO => {
            let r: RespDisplayInfo = read(b)?;
            let enabled = r
                .pmodes
                .iter()
                .enumerate()
                .filter(|(_, m)| m.enabled.get() != 0)
                .map(|(i, m)| ScanoutMode {
                    scanout: i as u32,
                    width: m.r.width.get(),
                    height: m.r.height.get(),
                })
                .collect();
            Detail::Displays { enabled }
        }
        _ => return None,
    })
}

fn format_text(format: u32) -> String {
    names::format_name(format).map_or_else(|| format!("format {format}"), str::to_string)
}

fn rect_text([x, y, w, h]: [u32; 4]) -> String {
    format!("{w}x{h}+{x}+{y}")
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detail::None => Ok(()),
            Detail::CtxCreate { name, context_init } => {
                write!(f, "name={name:?}")?;
                if *context_init != 0 {
                    write!(f, " capset={}", context_init & 0xff)?;
                }
                Ok(())
            }
            Detail::Create2d {
                format,
                width,
                height,
                ..
            } => write!(f, "{} {width}x{height}", format_text(*format)),
            Detail::Create3d {
                target,
                format,
                bind,
                width: w,
                height: h,
                depth: d,
                array_size,
                last_level,
                nr_samples,
                flags,
                ..
            } => {
                match names::target_name(*target) {
                    Some(t) => write!(f, "{t}")?,
                    None => write!(f, "target {target}")?,
                }
                write!(f, " {} {w}x{h}x{d} bind={bind:#x}", format_text(*format))?;
                if *array_size > 1 {
                    write!(f, " layers={array_size}")?;
                }
                if *last_level > 0 {
                    write!(f, " levels={}", u64::from(*last_level) + 1)?;
                }
                if *nr_samples > 1 {
                    write!(f, " samples={nr_samples}")?;
                }
                if *flags != 0 {
                    write!(f, " flags={flags:#x}")?;
                }
                Ok(())
            }
            Detail::CreateBlob {
                blob_mem,
                blob_flags,
                blob_id,
                size,
                nr_entries,
            } => {
                let mem = match *blob_mem {
                    1 => "GUEST".to_string(),
                    2 => "HOST3D".to_string(),
                    3 => "HOST3D_GUEST".to_string(),
                    m => format!("mem {m}"),
                };
                write!(f, "{mem} {size} B flags={blob_flags:#x}")?;
                if *blob_id != 0 {
                    write!(f, " blob_id={blob_id}")?;
                }
                if *nr_entries != 0 {
                    write!(f, " entries={nr_entries}")?;
                }
                Ok(())
            }
            Detail::Backing {
                nr_entries,
                present,
                bytes,
            } => {
                write!(f, "entries={nr_entries} backing={bytes} B")?;
                if present < nr_entries {
                    write!(f, " (of {present} entries present)")?;
                }
                Ok(())
            }
            Detail::Rect { scanout, rect } => {
                if let Some(s) = scanout {
                    write!(f, "scanout={s} ")?;
                }
                f.write_str(&rect_text(*rect))
            }
            Detail::Transfer2d { rect, offset } => {
                write!(f, "{} offset={offset}", rect_text(*rect))
            }
            Detail::Transfer3d {
                box_: [x, y, z, w, h, d],
                level,
                offset,
                stride,
                layer_stride,
            } => {
                write!(
                    f,
                    "box={w}x{h}x{d}+{x}+{y}+{z} level={level} offset={offset}"
                )?;
                if *stride != 0 || *layer_stride != 0 {
                    write!(f, " stride={stride} layer_stride={layer_stride}")?;
                }
                Ok(())
            }
            Detail::Submit { size, virgl } => {
                write!(f, "stream={size} B [")?;
                for (i, run) in virgl.runs.iter().take(TEXT_RUNS).enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{run}")?;
                }
                let more = virgl.runs.len().saturating_sub(TEXT_RUNS);
                if more > 0 {
                    write!(f, " +{more} more")?;
                }
                if virgl.present < *size as usize {
                    // The record was cut at the cap (or the command is
                    // shorter than it says): the rest is not here.
                    f.write_str(if virgl.runs.is_empty() { "…" } else { " …" })?;
                } else if virgl.walked < virgl.present {
                    // The host's decoder would fail here too.
                    write!(f, " BAD LENGTH at +{}", virgl.walked)?;
                }
                f.write_str("]")
            }
            Detail::CapsetIndex { index } => write!(f, "index={index}"),
            Detail::Capset {
                id,
                version,
                max_size,
            } => {
                write!(f, "capset={id} version={version}")?;
                if let Some(size) = max_size {
                    write!(f, " size={size}")?;
                }
                Ok(())
            }
            Detail::Scanout { scanout } => write!(f, "scanout={scanout}"),
            Detail::Cursor { scanout, x, y } => write!(f, "scanout={scanout} at {x},{y}"),
            Detail::MapBlob { offset } => write!(f, "offset={offset:#x}"),
            Detail::MapInfo { map_info } => write!(f, "map_info={map_info:#x}"),
            Detail::Displays { enabled } => {
                f.write_str("enabled=[")?;
                for (i, m) in enabled.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{}:{}x{}", m.scanout, m.width, m.height)?;
                }
                f.write_str("]")
            }
        }
    }
}

/// `time_ns - start_ns` as seconds with microseconds, e.g. `1.000042`.
pub fn seconds(time_ns: u64, start_ns: u64) -> String {
    let (sign, d) = if time_ns >= start_ns {
        ("", time_ns - start_ns)
    } else {
        ("-", start_ns - time_ns)
    };
    format!(
        "{sign}{}.{:06}",
        d / 1_000_000_000,
        (d % 1_000_000_000) / 1000
    )
}

/// The queue's name: `ctrl`, `cursor`, or `q<n>`.
pub fn queue_name(queue: u8) -> String {
    match queue {
        0 => "ctrl".to_string(),
        1 => "cursor".to_string(),
        q => format!("q{q}"),
    }
}

/// The name of the record's type: the command's for a COMMAND, the
/// answer's for a RESPONSE; `0x…` for one this build does not know.
pub fn type_name(r: &Record<'_>) -> String {
    let name = match r.kind() {
        Kind::COMMAND => CommandType(r.header.ty).name(),
        Kind::RESPONSE => ResponseType(r.header.ty).name(),
        _ => "unknown",
    };
    if name == "unknown" {
        format!("{:#06x}", r.header.ty)
    } else {
        name.to_string()
    }
}

fn origin_text(origin: u64) -> String {
    if origin == 0 {
        "gpud".to_string()
    } else {
        format!("s{origin}")
    }
}

fn size_text(r: &Record<'_>) -> String {
    let h = &r.header;
    if h.flags & FLAG_TRUNCATED != 0 || h.orig_len > h.bytes_len {
        format!("{}/{} B cut", h.bytes_len, h.orig_len)
    } else {
        format!("{} B", h.bytes_len)
    }
}

/// One line describing `r`, times relative to `start_ns`:
///
/// ```text
///     0.000012 ctrl   s3        #5 -> SUBMIT_3D               ctx=1 stream=100 B [CREATE_SUB_CTX ...] 132 B
///     0.000050 ctrl   s3        #5 <- OK_NODATA               ctx=1 38.0 µs 24 B
///     0.001000 -- 17 records dropped --
/// ```
///
/// Time, queue, origin session (`gpud` for the daemon itself), seq (which
/// links an answer to its command), direction, type name, the header's
/// context, fence and ring, the resource, what [`detail`] finds, the
/// answer's latency, and the bytes traced (`n/m B cut` when cut at the cap).
pub fn describe(r: &Record<'_>, start_ns: u64) -> String {
    let h = &r.header;
    let time = seconds(h.time_ns, start_ns);
    let dir = match r.kind() {
        Kind::COMMAND => "->",
        Kind::RESPONSE => "<-",
        Kind::DROPPED => return format!("{time:>12} -- {} records dropped --", h.latency_ns),
        Kind::MEMORY => {
            return format!(
                "{time:>12} {:<6} {:<5} {:>8} == backing of res={} before it: {} B",
                queue_name(h.queue),
                origin_text(h.origin),
                format!("#{}", h.seq),
                h.resource,
                h.orig_len
            )
        }
        Kind(k) => return format!("{time:>12} ?? record kind {k} ({} B)", h.bytes_len),
    };
    let mut line = format!(
        "{time:>12} {:<6} {:<5} {:>8} {dir} {:<23}",
        queue_name(h.queue),
        origin_text(h.origin),
        format!("#{}", h.seq),
        type_name(r),
    );
    if h.ctx_id != 0 {
        let _ = write!(line, " ctx={}", h.ctx_id);
    }
    if h.hdr_flags & CtrlHdr::FLAG_FENCE != 0 || h.fence_id != 0 {
        let _ = write!(line, " fence={}", h.fence_id);
    }
    if h.hdr_flags & CtrlHdr::FLAG_INFO_RING_IDX != 0 {
        let _ = write!(line, " ring={}", h.ring_idx);
    }
    if h.resource != 0 {
        let _ = write!(line, " res={}", h.resource);
    }
    let d = detail(r);
    if d != Detail::None {
        let _ = write!(line, " {d}");
    }
    if r.kind() == Kind::RESPONSE {
        let _ = write!(line, " {:.1} µs", h.latency_ns as f64 / 1000.0);
    }
    let _ = write!(line, " {}", size_text(r));
    line
}

/// `bytes` as lowercase hex, two digits a byte.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `bytes` as an indented hex dump, 16 bytes a line with their offset, for
/// under a [`describe`] line.
pub fn hex_dump(bytes: &[u8]) -> String {
    let mut s = String::new();
    for (i, line) in bytes.chunks(16).enumerate() {
        let _ = write!(s, "      {:04x} ", i * 16);
        for (j, b) in line.iter().enumerate() {
            let sep = if j == 8 { "  " } else { " " };
            let _ = write!(s, "{sep}{b:02x}");
        }
        s.push('\n');
    }
    s
}

/// `s` as a JSON string literal.
/// A JSON number written as given (fixed decimals, as the text shows).
fn number(text: String) -> Box<RawValue> {
    RawValue::from_string(text).expect("a decimal number is JSON")
}

/// A record as JSON.
#[derive(Serialize)]
struct JsonRecord {
    kind: &'static str,
    kind_code: u8,
    t: Box<RawValue>,
    time_ns: u64,
    #[serde(flatten)]
    rest: JsonRest,
}

#[derive(Serialize)]
#[serde(untagged)]
enum JsonRest {
    Dropped { dropped: u64 },
    Entry(Box<JsonEntry>),
}

#[derive(Serialize)]
struct JsonEntry {
    seq: u64,
    queue: u8,
    queue_name: String,
    origin: u64,
    #[serde(rename = "type")]
    ty: u32,
    type_name: String,
    #[serde(flatten)]
    answer: Option<JsonAnswer>,
    ctx_id: u32,
    fence_id: u64,
    hdr_flags: u32,
    ring_idx: u8,
    resource: u32,
    flags: u16,
    truncated: bool,
    bytes_len: u32,
    orig_len: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<Detail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<String>,
}

#[derive(Serialize)]
struct JsonAnswer {
    error: bool,
    latency_ns: u64,
    latency_us: Box<RawValue>,
}

/// `r` as one line of JSON (no trailing newline): every header field by
/// number, with names beside the numbers (`kind`, `queue_name`,
/// `type_name`, `t` = seconds since `start_ns`), the [`detail`] under
/// `"detail"`, and the bytes as hex under `"bytes"` if `with_bytes`.
pub fn to_json(r: &Record<'_>, start_ns: u64, with_bytes: bool) -> String {
    let h = &r.header;
    let kind = match r.kind() {
        Kind::COMMAND => "command",
        Kind::RESPONSE => "response",
        Kind::DROPPED => "dropped",
        Kind::MEMORY => "memory",
        _ => "unknown",
    };
    let rest = if r.kind() == Kind::DROPPED {
        JsonRest::Dropped {
            dropped: h.latency_ns,
        }
    } else {
        JsonRest::Entry(Box::new(JsonEntry {
            seq: h.seq,
            queue: h.queue,
            queue_name: queue_name(h.queue),
            origin: h.origin,
            ty: h.ty,
            type_name: type_name(r),
            answer: (r.kind() == Kind::RESPONSE).then(|| JsonAnswer {
                error: ResponseType(h.ty).is_error(),
                latency_ns: h.latency_ns,
                latency_us: number(format!("{:.3}", h.latency_ns as f64 / 1000.0)),
            }),
            ctx_id: h.ctx_id,
            fence_id: h.fence_id,
            hdr_flags: h.hdr_flags,
            ring_idx: h.ring_idx,
            resource: h.resource,
            flags: h.flags,
            truncated: h.flags & FLAG_TRUNCATED != 0,
            bytes_len: h.bytes_len,
            orig_len: h.orig_len,
            detail: Some(detail(r)).filter(|d| *d != Detail::None),
            bytes: with_bytes.then(|| hex(r.bytes)),
        }))
    };
    let record = JsonRecord {
        kind,
        kind_code: h.kind,
        t: number(seconds(h.time_ns, start_ns)),
        time_ns: h.time_ns,
        rest,
    };
    serde_json::to_string(&record).expect("a record serialises")
}

/// A command or response type by name (`SUBMIT_3D`, `submit_3d`,
/// `VIRTIO_GPU_CMD_SUBMIT_3D`, `ERR_INVALID_PARAMETER`) or number (`519`,
/// `0x207`).
pub fn type_by_name(name: &str) -> Option<u32> {
    let name = name.trim();
    if let Some(hex) = name.strip_prefix("0x").or_else(|| name.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).ok();
    }
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper
        .strip_prefix("VIRTIO_GPU_CMD_")
        .or_else(|| upper.strip_prefix("VIRTIO_GPU_RESP_"))
        .unwrap_or(&upper);
    // Codes live in 0x01xx..0x03xx (commands) and 0x11xx..0x12xx (answers).
    let commands = (0x100..0x400).find(|&c| CommandType(c).name() == bare);
    commands.or_else(|| (0x1100..0x1300).find(|&c| ResponseType(c).name() == bare))
}

/// Which records to keep. Each field set must match; a command's answer
/// is kept when its command was (so `ty` may name a command and still keep
/// its answer), and DROPPED notices are always kept.
///
/// `ty` may also name a response type (`ERR_INVALID_PARAMETER`): then the
/// answers of that type are kept.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// The header's context id.
    pub ctx: Option<u32>,
    /// The command (or response) type.
    pub ty: Option<u32>,
    /// The resource the command names.
    pub resource: Option<u32>,
    /// The session that placed the command (0: virtio-gpud itself).
    pub origin: Option<u64>,
    /// Seqs of commands kept whose answer has not come yet (with `ty`).
    matched: BTreeSet<u64>,
}

impl Filter {
    /// A filter keeping everything.
    pub fn new() -> Filter {
        Filter::default()
    }

    /// Whether the filter keeps everything.
    pub fn is_empty(&self) -> bool {
        self.ctx.is_none() && self.ty.is_none() && self.resource.is_none() && self.origin.is_none()
    }

    /// Whether to keep `r`. Feed records in stream order: a command's
    /// answer matches when the command did.
    pub fn matches(&mut self, r: &Record<'_>) -> bool {
        let h = &r.header;
        // Answers carry their command's context, resource and origin.
        let fields = self.ctx.is_none_or(|c| c == h.ctx_id)
            && self.resource.is_none_or(|res| res == h.resource)
            && self.origin.is_none_or(|o| o == h.origin);
        match r.kind() {
            Kind::COMMAND => {
                let keep = fields && self.ty.is_none_or(|t| t == h.ty);
                if keep && self.ty.is_some() {
                    self.matched.insert(h.seq);
                    if self.matched.len() > MATCHED_SEQS {
                        self.matched.pop_first();
                    }
                }
                keep
            }
            Kind::RESPONSE => match self.ty {
                None => fields,
                Some(t) => self.matched.remove(&h.seq) || (fields && t == h.ty),
            },
            _ => true,
        }
    }
}

/// Reassembles a trace stream from chunks cut anywhere (inside the stream
/// header or a record): push what a read returned, then take the records
/// that are whole.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    buf: Vec<u8>,
    /// Where the records start in `buf`, once the stream header is checked.
    body: Option<usize>,
    /// Bytes of records returned, from `body` on.
    at: usize,
    /// Bytes dropped from the front of `buf` (for error offsets).
    drained: usize,
}

impl StreamDecoder {
    /// A decoder expecting the stream header first.
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    /// Appends the next bytes of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        if let Some(body) = self.body {
            self.buf.drain(..body + self.at);
            self.drained += body + self.at;
            self.body = Some(0);
            self.at = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole record, or None until more bytes are pushed. Errors
    /// (not a trace, a version this reader does not know, a corrupt record)
    /// are final.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, FormatError> {
        let body = match self.body {
            Some(body) => body,
            None => {
                let n = self.buf.len().min(record::MAGIC.len());
                if self.buf[..n] != record::MAGIC[..n] {
                    return Err(FormatError::BadMagic);
                }
                let Ok((h, _)) = StreamHeader::read_from_prefix(&self.buf) else {
                    return Ok(None);
                };
                let header_len = h.header_len as usize;
                if h.version == record::VERSION && header_len < size_of::<StreamHeader>() {
                    return Err(FormatError::BadMagic);
                }
                if h.version == record::VERSION && self.buf.len() < header_len {
                    return Ok(None);
                }
                let body = self.buf.len() - record::stream_body(&self.buf)?.len();
                self.body = Some(body);
                body
            }
        };
        let at = body + self.at;
        let mut rel = 0;
        let r = record::next_record(&self.buf[at..], &mut rel).map_err(|e| match e {
            FormatError::Corrupt(off) => FormatError::Corrupt(self.drained + at + off),
            e => e,
        })?;
        self.at += rel;
        Ok(r)
    }

    /// Bytes pushed but not returned as records: at the end of the input, a
    /// record cut short (or a stream header still incomplete).
    pub fn pending(&self) -> usize {
        self.buf.len() - self.body.map_or(0, |b| b + self.at)
    }

    /// Whether the stream header was read (an input that ends before it is
    /// not a trace).
    pub fn started(&self) -> bool {
        self.body.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use record::{encode, RecordHeader};
    use virtio_gpu_proto::{
        Box3d, CmdSubmit, CtxAttachResource, CtxCreate, CtxId, FenceId, MemEntry, Resource3dParams,
        ResourceAttachBacking, ResourceCreate3d, ResourceId, TransferFromHost3d,
    };
    use zerocopy::IntoBytes;

    const ORIGIN: u64 = 3;
    const CTX: u32 = 1;
    const RES: u32 = 42;
    /// An arbitrary CLOCK_MONOTONIC start.
    const T0: u64 = 5_000_000_000;

    fn ctx() -> CtxId {
        CtxId::new(CTX).unwrap()
    }

    fn res() -> ResourceId {
        ResourceId::new(RES).unwrap()
    }

    /// The command record the producer makes for `bytes` (header first).
    fn command(seq: u64, t_us: u64, bytes: &[u8], cap: usize) -> (RecordHeader, Vec<u8>) {
        let (hdr, _) = CtrlHdr::read_from_prefix(bytes).unwrap();
        let ty = hdr.command_type();
        let resource = virtio_gpu_proto::layout(ty)
            .and_then(|l| l.resource_id(bytes))
            .unwrap_or(0);
        let keep = bytes.len().min(cap);
        let h = RecordHeader {
            kind: Kind::COMMAND.0,
            flags: if keep < bytes.len() {
                FLAG_TRUNCATED
            } else {
                0
            },
            seq,
            time_ns: T0 + t_us * 1000,
            fence_id: hdr.fence_id.get(),
            origin: ORIGIN,
            ty: ty.0,
            ctx_id: hdr.ctx_id.get(),
            hdr_flags: hdr.flags.get(),
            resource,
            orig_len: bytes.len() as u32,
            ..RecordHeader::default()
        };
        (h, bytes[..keep].to_vec())
    }

    /// Its OK_NODATA answer after `latency_us`.
    fn answer(cmd: &RecordHeader, latency_us: u64) -> (RecordHeader, Vec<u8>) {
        let mut bytes = CtrlHdr::default().as_bytes().to_vec();
        bytes[..4].copy_from_slice(&ResponseType::OK_NODATA.0.to_le_bytes());
        let h = RecordHeader {
            kind: Kind::RESPONSE.0,
            seq: cmd.seq,
            time_ns: cmd.time_ns + latency_us * 1000,
            latency_ns: latency_us * 1000,
            fence_id: cmd.fence_id,
            origin: cmd.origin,
            ty: ResponseType::OK_NODATA.0,
            ctx_id: cmd.ctx_id,
            resource: cmd.resource,
            orig_len: bytes.len() as u32,
            ..RecordHeader::default()
        };
        (h, bytes)
    }

    /// The clear-and-read-back flow of ABI reference §5.6 as a trace stream,
    /// each command answered OK_NODATA; bytes cut at `cap`.
    fn clear_readback_stream(cap: usize) -> Vec<u8> {
        let params = Resource3dParams {
            target: virgl_stream::target::TEXTURE_2D,
            format: virgl_stream::format::R8G8B8A8_UNORM,
            bind: virgl_stream::bind::RENDER_TARGET | virgl_stream::bind::SAMPLER_VIEW,
            width: 64,
            height: 64,
            depth: 1,
            array_size: 1,
            ..Resource3dParams::default()
        };
        let virgl = virgl_stream::clear_stream(
            RES,
            virgl_stream::format::R8G8B8A8_UNORM,
            [1.0, 0.0, 0.0, 1.0],
        );
        let mut attach = ResourceAttachBacking::new(res(), 1).as_bytes().to_vec();
        attach.extend_from_slice(MemEntry::new(0x1_0000_0000, 16384).as_bytes());
        let mut submit = CmdSubmit::new(ctx(), virgl.len() as u32)
            .as_bytes()
            .to_vec();
        submit.extend_from_slice(&virgl);
        let mut transfer =
            TransferFromHost3d::new(ctx(), res(), Box3d::new(0, 0, 0, 64, 64, 1), 0, 0, 0, 0);
        transfer.hdr = transfer.hdr.fenced(FenceId::new(7));
        let commands: [Vec<u8>; 6] = [
            CtxCreate::new(ctx(), 0, "clear-readback")
                .as_bytes()
                .to_vec(),
            ResourceCreate3d::new(res(), &params).as_bytes().to_vec(),
            attach,
            CtxAttachResource::new(ctx(), res()).as_bytes().to_vec(),
            submit,
            transfer.as_bytes().to_vec(),
        ];
        let mut stream = StreamHeader::V1.as_bytes().to_vec();
        let mut t_us = 0;
        for (i, c) in commands.iter().enumerate() {
            let (h, b) = command(i as u64 + 1, t_us, c, cap);
            encode(&mut stream, h, &b);
            let latency = if i == 5 { 850 } else { 12 + i as u64 };
            let (h, b) = answer(&h, latency);
            encode(&mut stream, h, &b);
            t_us += latency + 5;
        }
        stream
    }

    fn records(stream: &[u8]) -> Vec<Record<'_>> {
        let body = record::stream_body(stream).unwrap();
        let mut at = 0;
        std::iter::from_fn(|| record::next_record(body, &mut at).unwrap()).collect()
    }

    const EXPECTED_TEXT: [&str; 12] = [
        "    0.000000 ctrl   s3          #1 -> CTX_CREATE              ctx=1 name=\"clear-readback\" 96 B",
        "    0.000012 ctrl   s3          #1 <- OK_NODATA               ctx=1 12.0 µs 24 B",
        "    0.000017 ctrl   s3          #2 -> RESOURCE_CREATE_3D      res=42 2D R8G8B8A8_UNORM 64x64x1 bind=0xa 72 B",
        "    0.000030 ctrl   s3          #2 <- OK_NODATA               res=42 13.0 µs 24 B",
        "    0.000035 ctrl   s3          #3 -> RESOURCE_ATTACH_BACKING res=42 entries=1 backing=16384 B 48 B",
        "    0.000049 ctrl   s3          #3 <- OK_NODATA               res=42 14.0 µs 24 B",
        "    0.000054 ctrl   s3          #4 -> CTX_ATTACH_RESOURCE     ctx=1 res=42 32 B",
        "    0.000069 ctrl   s3          #4 <- OK_NODATA               ctx=1 res=42 15.0 µs 24 B",
        "    0.000074 ctrl   s3          #5 -> SUBMIT_3D               ctx=1 stream=100 B [CREATE_SUB_CTX SET_SUB_CTX CREATE_OBJECT(SURFACE) SET_FRAMEBUFFER_STATE CLEAR DESTROY_OBJECT] 132 B",
        "    0.000090 ctrl   s3          #5 <- OK_NODATA               ctx=1 16.0 µs 24 B",
        "    0.000095 ctrl   s3          #6 -> TRANSFER_FROM_HOST_3D   ctx=1 fence=7 res=42 box=64x64x1+0+0+0 level=0 offset=0 72 B",
        "    0.000945 ctrl   s3          #6 <- OK_NODATA               ctx=1 fence=7 res=42 850.0 µs 24 B",
    ];

    #[test]
    fn the_clear_readback_flow_reads_like_a_capture() {
        let stream = clear_readback_stream(usize::MAX);
        let lines: Vec<String> = records(&stream).iter().map(|r| describe(r, T0)).collect();
        for line in &lines {
            println!("{line}");
        }
        assert_eq!(lines, EXPECTED_TEXT);
    }

    #[test]
    fn the_clear_readback_flow_as_json() {
        let stream = clear_readback_stream(usize::MAX);
        let rs = records(&stream);
        let lines: Vec<String> = rs.iter().map(|r| to_json(r, T0, false)).collect();
        for line in &lines {
            println!("{line}");
        }
        assert_eq!(
            lines[8],
            "{\"kind\":\"command\",\"kind_code\":1,\"t\":0.000074,\"time_ns\":5000074000,\
             \"seq\":5,\"queue\":0,\"queue_name\":\"ctrl\",\"origin\":3,\"type\":519,\
             \"type_name\":\"SUBMIT_3D\",\"ctx_id\":1,\"fence_id\":0,\"hdr_flags\":0,\
             \"ring_idx\":0,\"resource\":0,\"flags\":0,\"truncated\":false,\"bytes_len\":132,\
             \"orig_len\":132,\"detail\":{\"stream_size\":100,\"stream_present\":100,\
             \"stream_walked\":100,\"virgl\":[{\"opcode\":29,\"name\":\"CREATE_SUB_CTX\",\
             \"count\":1},{\"opcode\":28,\"name\":\"SET_SUB_CTX\",\"count\":1},\
             {\"opcode\":1,\"name\":\"CREATE_OBJECT\",\"object\":8,\"object_name\":\"SURFACE\",\
             \"count\":1},{\"opcode\":5,\"name\":\"SET_FRAMEBUFFER_STATE\",\"count\":1},\
             {\"opcode\":7,\"name\":\"CLEAR\",\"count\":1},{\"opcode\":3,\
             \"name\":\"DESTROY_OBJECT\",\"count\":1}]}}"
        );
        assert_eq!(
            lines[11],
            "{\"kind\":\"response\",\"kind_code\":2,\"t\":0.000945,\"time_ns\":5000945000,\
             \"seq\":6,\"queue\":0,\"queue_name\":\"ctrl\",\"origin\":3,\"type\":4352,\
             \"type_name\":\"OK_NODATA\",\"error\":false,\"latency_ns\":850000,\
             \"latency_us\":850.000,\"ctx_id\":1,\"fence_id\":7,\"hdr_flags\":0,\"ring_idx\":0,\
             \"resource\":42,\"flags\":0,\"truncated\":false,\"bytes_len\":24,\"orig_len\":24}"
        );
        assert!(lines[2].contains(
            "\"detail\":{\"target\":2,\"target_name\":\"2D\",\"format\":67,\
             \"format_name\":\"R8G8B8A8_UNORM\",\"bind\":10,\"width\":64,\"height\":64,\
             \"depth\":1,\"array_size\":1,\"last_level\":0,\"nr_samples\":0,\"flags\":0}"
        ));
        assert!(lines[4].contains(
            "\"detail\":{\"nr_entries\":1,\"entries_present\":1,\"backing_bytes\":16384}"
        ));
        assert!(lines[10].contains(
            "\"detail\":{\"box\":[0,0,0,64,64,1],\"level\":0,\"offset\":0,\"stride\":0,\
             \"layer_stride\":0}"
        ));
        // Bytes only when asked.
        assert!(!lines[0].contains("\"bytes\""));
        let with = to_json(&rs[1], T0, true);
        assert!(with.ends_with(",\"bytes\":\"001100000000000000000000000000000000000000000000\"}"));
        let dropped = RecordHeader {
            kind: Kind::DROPPED.0,
            time_ns: T0 + 1,
            latency_ns: 9,
            ..RecordHeader::default()
        };
        let r = Record {
            header: dropped,
            bytes: &[],
        };
        assert_eq!(
            to_json(&r, T0, true),
            "{\"kind\":\"dropped\",\"kind_code\":3,\"t\":0.000000,\"time_ns\":5000000001,\
             \"dropped\":9}"
        );
        assert_eq!(describe(&r, T0), "    0.000000 -- 9 records dropped --");
    }

    #[test]
    fn cut_records_say_so_and_summarize_what_is_there() {
        // 32 + 36 bytes: SUBMIT's fixed part and CREATE_SUB_CTX,
        // SET_SUB_CTX, then CREATE_OBJECT cut short.
        let stream = clear_readback_stream(68);
        let rs = records(&stream);
        let line = describe(&rs[8], T0);
        assert!(
            line.ends_with("ctx=1 stream=100 B [CREATE_SUB_CTX SET_SUB_CTX …] 68/132 B cut"),
            "{line}"
        );
        assert!(describe(&rs[4], T0).ends_with("res=42 entries=1 backing=16384 B 48 B"));
        assert!(describe(&rs[0], T0).ends_with("ctx=1 name=\"clear-readback\" 68/96 B cut"));
        // The transfer's fields end past the cut: no detail.
        assert!(describe(&rs[10], T0).ends_with("ctx=1 fence=7 res=42 68/72 B cut"));
        // Cut inside the fixed part: no detail, still a line.
        let stream = clear_readback_stream(24);
        for r in records(&stream) {
            let _ = describe(&r, T0);
            let _ = to_json(&r, T0, true);
        }
    }

    #[test]
    fn repeats_collapse_and_bad_lengths_show() {
        let mut s = virgl_stream::Stream::new();
        for _ in 0..12 {
            s.command(8, 0, &[0; 12]);
        }
        s.command(99, 0, &[]);
        let mut bytes = s.to_bytes();
        let sum = summarize_virgl(&bytes);
        assert_eq!(
            sum.runs,
            [
                VirglRun {
                    opcode: 8,
                    object: 0,
                    count: 12
                },
                VirglRun {
                    opcode: 99,
                    object: 0,
                    count: 1
                }
            ]
        );
        // A length running past the end.
        bytes.extend_from_slice(&0x0009_0007u32.to_le_bytes());
        let mut submit = CmdSubmit::new(ctx(), bytes.len() as u32)
            .as_bytes()
            .to_vec();
        submit.extend_from_slice(&bytes);
        let (h, b) = command(1, 0, &submit, usize::MAX);
        let mut stream = StreamHeader::V1.as_bytes().to_vec();
        encode(&mut stream, h, &b);
        let line = describe(&records(&stream)[0], T0);
        assert!(
            line.ends_with("stream=632 B [DRAW_VBO x12 0x63 BAD LENGTH at +628] 664 B"),
            "{line}"
        );
    }

    #[test]
    fn garbage_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut noise = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for ty in (0x100..0x10e)
            .chain(0x200..0x20a)
            .chain([0x300, 0x301, 0x1101, 0x1102, 0x1106])
        {
            for len in [0, 3, 24, 31, 33, 60, 100, 500] {
                let bytes: Vec<u8> = (0..len).map(|_| noise() as u8).collect();
                let kind = if ty >= 0x1100 {
                    Kind::RESPONSE
                } else {
                    Kind::COMMAND
                };
                let r = Record {
                    header: RecordHeader {
                        kind: kind.0,
                        ty,
                        bytes_len: len as u32,
                        orig_len: noise() as u32,
                        time_ns: noise(),
                        ..RecordHeader::default()
                    },
                    bytes: &bytes,
                };
                let _ = describe(&r, T0);
                let _ = to_json(&r, T0, true);
            }
        }
    }

    #[test]
    fn filters_keep_commands_and_their_answers() {
        let stream = clear_readback_stream(usize::MAX);
        let rs = records(&stream);
        let kept = |mut f: Filter| -> Vec<(u8, u64)> {
            rs.iter()
                .filter(|r| f.matches(r))
                .map(|r| (r.header.kind, r.header.seq))
                .collect()
        };
        let (c, a) = (Kind::COMMAND.0, Kind::RESPONSE.0);
        assert_eq!(kept(Filter::new()).len(), 12);
        let f = Filter {
            ty: type_by_name("submit_3d"),
            ..Filter::new()
        };
        assert_eq!(kept(f), [(c, 5), (a, 5)]);
        let f = Filter {
            resource: Some(RES),
            ..Filter::new()
        };
        assert_eq!(
            kept(f),
            [
                (c, 2),
                (a, 2),
                (c, 3),
                (a, 3),
                (c, 4),
                (a, 4),
                (c, 6),
                (a, 6)
            ]
        );
        let f = Filter {
            ctx: Some(CTX),
            ty: type_by_name("0x206"),
            ..Filter::new()
        };
        assert_eq!(kept(f), [(c, 6), (a, 6)]);
        let f = Filter {
            origin: Some(ORIGIN + 1),
            ..Filter::new()
        };
        assert!(kept(f).is_empty());
        // A response type keeps the answers of that type.
        let f = Filter {
            ty: type_by_name("OK_NODATA"),
            ..Filter::new()
        };
        assert_eq!(kept(f).len(), 6);
        // DROPPED notices always pass.
        let mut f = Filter {
            ctx: Some(77),
            ..Filter::new()
        };
        let dropped = Record {
            header: RecordHeader {
                kind: Kind::DROPPED.0,
                latency_ns: 2,
                ..RecordHeader::default()
            },
            bytes: &[],
        };
        assert!(f.matches(&dropped));
    }

    #[test]
    fn types_by_name_or_number() {
        assert_eq!(type_by_name("SUBMIT_3D"), Some(0x207));
        assert_eq!(type_by_name("VIRTIO_GPU_CMD_CTX_CREATE"), Some(0x200));
        assert_eq!(type_by_name("move_cursor"), Some(0x301));
        assert_eq!(type_by_name("0x0105"), Some(0x105));
        assert_eq!(type_by_name("519"), Some(519));
        assert_eq!(type_by_name("ERR_INVALID_PARAMETER"), Some(0x1205));
        assert_eq!(type_by_name("VIRTIO_GPU_RESP_OK_NODATA"), Some(0x1100));
        assert_eq!(type_by_name("unknown"), None);
        assert_eq!(type_by_name("NOPE"), None);
    }

    #[test]
    fn the_stream_decoder_reassembles_any_chunking() {
        let stream = clear_readback_stream(usize::MAX);
        let want: Vec<String> = records(&stream).iter().map(|r| describe(r, T0)).collect();
        for chunk in [1, 7, 16, 17, 80, 81, 1000, stream.len()] {
            let mut d = StreamDecoder::new();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                d.push(piece);
                while let Some(r) = d.next_record().unwrap() {
                    got.push(describe(&r, T0));
                }
            }
            assert_eq!(got, want, "chunks of {chunk}");
            assert!(d.started());
            assert_eq!(d.pending(), 0);
        }
        // A cut tail stays pending.
        let mut d = StreamDecoder::new();
        d.push(&stream[..stream.len() - 3]);
        while d.next_record().unwrap().is_some() {}
        assert_eq!(d.pending(), 24 + 80 - 3);
    }

    #[test]
    fn the_stream_decoder_rejects_what_is_not_a_trace() {
        let mut d = StreamDecoder::new();
        d.push(b"VGT");
        assert!(d.next_record().unwrap().is_none());
        assert!(!d.started());
        d.push(b"x");
        assert_eq!(d.next_record().unwrap_err(), FormatError::BadMagic);

        let mut v2 = StreamHeader::V1;
        v2.version = 2;
        let mut d = StreamDecoder::new();
        d.push(v2.as_bytes());
        assert_eq!(d.next_record().unwrap_err(), FormatError::Version(2));

        let mut stream = StreamHeader::V1.as_bytes().to_vec();
        encode(&mut stream, RecordHeader::default(), b"ok");
        let mut bad = stream.clone();
        bad[16] = 5; // len 5: below the record header's size
        let mut d = StreamDecoder::new();
        d.push(&bad);
        assert_eq!(d.next_record().unwrap_err(), FormatError::Corrupt(16));
    }
}
