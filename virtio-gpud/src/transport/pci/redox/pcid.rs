//! The driver side of pcid's per-function channel (`PCID_CLIENT_CHANNEL`):
//! the few requests this driver sends, and the answers to them.
//!
//! Checked against Redox `base` at 9dd6901d (2026-06-05), whose
//! `drivers/pcid/src/driver_interface/` has been the same since e9fd66c7
//! (2026-05-09, BARs mapped through the channel) and 0fee2618 (2025-12-18,
//! the option ROM in the function's description):
//!
//! - Messages are `bincode` 1.3.3 (base's `Cargo.lock`) through its free
//!   functions, whose format is fixed-width little-endian integers; an
//!   enum variant is its index as a `u32`; `Option` a `u8` tag (0 none,
//!   1 some) before the value; `bool` one byte, 0 or 1; a struct, tuple or
//!   fixed array its fields in order with no length; `usize` a `u64`.
//! - A request is one `write` of its bytes, with no length in front
//!   (`scheme.rs`, `write_channel`: `bincode::deserialize_from(buf)`). The
//!   answer is read back as a `u64` LE length and that many bytes
//!   (`read_channel`), and one request must be answered before the next.
//! - Configuration space is read and written a dword at a time at aligned
//!   offsets: pcid asserts alignment (`cfg_access`), and its port-I/O
//!   fallback offsets below 256, so anything else would bring pcid down for
//!   every driver.
//!
//! The codec is written out by hand rather than pulled in with serde: it is
//! a handful of messages, and spelling out each byte keeps a change of the
//! upstream types from going unnoticed; the tests hold byte strings that
//! bincode 1.3.3 produced from copies of the upstream types.

use std::io::{self, Read, Write};

/// The largest answer accepted, as pcid's own client library does.
const MAX_RESPONSE: u64 = 0x10_0000;

/// Bytes of configuration space reachable through pcid on every machine
/// (see the module docs).
pub const CONFIG_SPACE: u16 = 256;

/// Variant indices of upstream `PcidClientRequest`.
mod request {
    pub const REQUEST_CONFIG: u32 = 1;
    pub const ENABLE_FEATURE: u32 = 4;
    pub const SET_FEATURE_INFO: u32 = 6;
    pub const READ_CONFIG: u32 = 7;
    pub const WRITE_CONFIG: u32 = 8;
    /// Of upstream `SetFeatureInfo`: `MsiX { function_mask: Option<bool> }`.
    pub const SET_FEATURE_INFO_MSIX: u32 = 1;
}

/// Variant indices of upstream `PcidClientResponse`.
mod response {
    pub const ENABLED_DEVICE: u32 = 0;
    pub const CONFIG: u32 = 1;
    pub const FEATURE_ENABLED: u32 = 4;
    pub const ERROR: u32 = 6;
    pub const SET_FEATURE_INFO: u32 = 8;
    pub const READ_CONFIG: u32 = 9;
    pub const WRITE_CONFIG: u32 = 10;
}

/// Variant indices of upstream `PciBar` (`driver_interface/bar.rs`).
mod bar {
    pub const NONE: u32 = 0;
    pub const MEMORY32: u32 = 1;
    pub const MEMORY64: u32 = 2;
    pub const PORT: u32 = 3;
}

/// Upstream `PciFeature`: the interrupt mechanisms pcid switches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// MSI (index 0).
    Msi,
    /// MSI-X (index 1).
    MsiX,
}

impl Feature {
    fn index(self) -> u32 {
        match self {
            Feature::Msi => 0,
            Feature::MsiX => 1,
        }
    }

    fn from_index(index: u32) -> Result<Feature, DecodeError> {
        match index {
            0 => Ok(Feature::Msi),
            1 => Ok(Feature::MsiX),
            _ => Err(DecodeError::Variant("PciFeature", index)),
        }
    }
}

/// The requests this driver sends (a subset of upstream
/// `PcidClientRequest`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `RequestConfig`: describe the function.
    RequestConfig,
    /// `EnableFeature(feature)`: switch MSI or MSI-X on (and the other off).
    EnableFeature(Feature),
    /// `SetFeatureInfo(SetFeatureInfo::MsiX { function_mask })`: set or
    /// clear the MSI-X Function Mask (`None` leaves it).
    SetMsixFunctionMask(Option<bool>),
    /// `ReadConfig(offset)`: the configuration dword at `offset`.
    ReadConfig(u16),
    /// `WriteConfig(offset, value)`: write the dword at `offset`.
    WriteConfig(u16, u32),
}

impl Request {
    /// The request's bytes, as pcid reads them.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        let mut variant = |index: u32| out.extend_from_slice(&index.to_le_bytes());
        match *self {
            Request::RequestConfig => variant(request::REQUEST_CONFIG),
            Request::EnableFeature(feature) => {
                variant(request::ENABLE_FEATURE);
                out.extend_from_slice(&feature.index().to_le_bytes());
            }
            Request::SetMsixFunctionMask(mask) => {
                variant(request::SET_FEATURE_INFO);
                out.extend_from_slice(&request::SET_FEATURE_INFO_MSIX.to_le_bytes());
                match mask {
                    None => out.push(0),
                    Some(masked) => out.extend_from_slice(&[1, u8::from(masked)]),
                }
            }
            Request::ReadConfig(offset) => {
                variant(request::READ_CONFIG);
                out.extend_from_slice(&offset.to_le_bytes());
            }
            Request::WriteConfig(offset, value) => {
                variant(request::WRITE_CONFIG);
                out.extend_from_slice(&offset.to_le_bytes());
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        out
    }
}

/// A BAR as pcid describes it (upstream `PciBar`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bar {
    /// Not implemented by the function.
    None,
    /// Memory at `addr`, `size` bytes (32- or 64-bit BAR alike).
    Memory {
        /// Physical address.
        addr: u64,
        /// Size in bytes.
        size: u64,
    },
    /// An I/O port range starting at this port.
    Port(u16),
}

/// Where the function's legacy INTx line is delivered (upstream
/// `LegacyInterruptLine`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegacyInterrupt {
    /// ISA-style IRQ `n`: `/scheme/irq/n` (x86).
    Irq(u8),
    /// An interrupt of a device-tree interrupt controller: `phandle` and
    /// the first `cells` of `addr` (`/scheme/irq/phandle-P/A,B,C`).
    Phandle {
        /// The controller's phandle.
        phandle: u32,
        /// The interrupt specifier.
        addr: [u32; 3],
        /// How many words of `addr` are used.
        cells: u64,
    },
}

/// A PCI address (upstream `PciAddressDef`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Address {
    /// Segment group.
    pub segment: u16,
    /// Bus.
    pub bus: u8,
    /// Device.
    pub device: u8,
    /// Function.
    pub function: u8,
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{}",
            self.segment, self.bus, self.device, self.function
        )
    }
}

/// What pcid says about the function (upstream `SubdriverArguments`'s
/// `PciFunction`; the option ROM, which this driver does not use, is
/// skipped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionConfig {
    /// The function's address.
    pub addr: Address,
    /// Its six BARs.
    pub bars: [Bar; 6],
    /// Its INTx line, if it has one.
    pub legacy_interrupt: Option<LegacyInterrupt>,
    /// Vendor id.
    pub vendor_id: u16,
    /// Device id.
    pub device_id: u16,
    /// Class, subclass, programming interface and revision.
    pub class: [u8; 4],
}

/// Upstream `PcidServerResponseError`: why pcid refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    /// The function lacks the feature asked for.
    #[error("the function has no {0:?}")]
    NonexistentFeature(Feature),
    /// A value did not fit its register.
    #[error("invalid bit pattern")]
    InvalidBitPattern,
}

/// The answers this driver expects (a subset of upstream
/// `PcidClientResponse`); any other is [`Response::Other`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// `EnabledDevice`.
    EnabledDevice,
    /// `Config(SubdriverArguments)`.
    Config(FunctionConfig),
    /// `FeatureEnabled(feature)`.
    FeatureEnabled(Feature),
    /// `Error(error)`.
    Error(ServerError),
    /// `SetFeatureInfo(feature)`.
    SetFeatureInfo(Feature),
    /// `ReadConfig(value)`.
    ReadConfig(u32),
    /// `WriteConfig`.
    WriteConfig,
    /// Another variant, by index (its fields are not decoded).
    Other(u32),
}

/// Why an answer's bytes do not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end inside a field.
    #[error("the answer ends early")]
    Short,
    /// Bytes are left over: the upstream types are not the ones this codec
    /// knows (pcid older than 2026-05 lacks the option ROM, for one).
    #[error("{0} bytes left over after the answer: pcid's types differ from these")]
    Trailing(usize),
    /// An enum or `Option` tag out of range.
    #[error("{0} has no variant {1}")]
    Variant(&'static str, u32),
}

impl Response {
    /// Decodes one answer's bytes (after the length).
    pub fn decode(bytes: &[u8]) -> Result<Response, DecodeError> {
        let mut r = Reader { bytes };
        let response = match r.u32()? {
            response::ENABLED_DEVICE => Response::EnabledDevice,
            response::CONFIG => Response::Config(r.function()?),
            response::FEATURE_ENABLED => Response::FeatureEnabled(Feature::from_index(r.u32()?)?),
            response::ERROR => Response::Error(match r.u32()? {
                0 => ServerError::NonexistentFeature(Feature::from_index(r.u32()?)?),
                1 => ServerError::InvalidBitPattern,
                n => return Err(DecodeError::Variant("PcidServerResponseError", n)),
            }),
            response::SET_FEATURE_INFO => Response::SetFeatureInfo(Feature::from_index(r.u32()?)?),
            response::READ_CONFIG => Response::ReadConfig(r.u32()?),
            response::WRITE_CONFIG => Response::WriteConfig,
            // Nothing after the tag is known; the frame's length bounds it.
            other => return Ok(Response::Other(other)),
        };
        match r.bytes.len() {
            0 => Ok(response),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

/// Takes fields off the front of an answer.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self.bytes.split_first_chunk().ok_or(DecodeError::Short)?;
        self.bytes = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.take().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.take().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.take().map(u64::from_le_bytes)
    }

    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            n => Err(DecodeError::Variant("bool", n.into())),
        }
    }

    /// An `Option`'s tag: whether a value follows.
    fn some(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            n => Err(DecodeError::Variant("Option", n.into())),
        }
    }

    fn bar(&mut self) -> Result<Bar, DecodeError> {
        Ok(match self.u32()? {
            bar::NONE => Bar::None,
            bar::MEMORY32 => {
                let addr = self.u32()?.into();
                let size = self.u32()?.into();
                Bar::Memory { addr, size }
            }
            bar::MEMORY64 => {
                let addr = self.u64()?;
                let size = self.u64()?;
                Bar::Memory { addr, size }
            }
            bar::PORT => Bar::Port(self.u16()?),
            n => return Err(DecodeError::Variant("PciBar", n)),
        })
    }

    /// `PciFunction`: address, bars, rom, legacy_interrupt_line,
    /// full_device_id.
    fn function(&mut self) -> Result<FunctionConfig, DecodeError> {
        let addr = Address {
            segment: self.u16()?,
            bus: self.u8()?,
            device: self.u8()?,
            function: self.u8()?,
        };
        let mut bars = [Bar::None; 6];
        for bar in &mut bars {
            *bar = self.bar()?;
        }
        // `rom: Option<PciRom { addr: u32, size: u32, enabled: bool }>`.
        if self.some()? {
            self.u32()?;
            self.u32()?;
            self.bool()?;
        }
        let legacy_interrupt = if self.some()? {
            let irq = self.u8()?;
            // `phandled: Option<(u32, [u32; 3], usize)>`.
            Some(if self.some()? {
                let phandle = self.u32()?;
                let addr = [self.u32()?, self.u32()?, self.u32()?];
                let cells = self.u64()?;
                LegacyInterrupt::Phandle {
                    phandle,
                    addr,
                    cells,
                }
            } else {
                LegacyInterrupt::Irq(irq)
            })
        } else {
            None
        };
        Ok(FunctionConfig {
            addr,
            bars,
            legacy_interrupt,
            vendor_id: self.u16()?,
            device_id: self.u16()?,
            class: self.take()?,
        })
    }
}

/// Errors talking to pcid.
#[derive(Debug, thiserror::Error)]
pub enum PcidError {
    /// Reading or writing the channel failed.
    #[error("pcid channel: {0}")]
    Io(#[from] io::Error),
    /// pcid announced an answer larger than any it sends.
    #[error("pcid announced a {0}-byte answer")]
    TooLarge(u64),
    /// The answer does not decode.
    #[error("pcid's answer to {request:?}: {error}")]
    Decode {
        /// What was asked.
        request: Request,
        /// What is wrong with the answer.
        error: DecodeError,
    },
    /// pcid refused the request.
    #[error("pcid refused {request:?}: {error}")]
    Refused {
        /// What was asked.
        request: Request,
        /// Its reason.
        error: ServerError,
    },
    /// pcid answered something else than the request calls for.
    #[error("pcid answered {request:?} with {response:?}")]
    Unexpected {
        /// What was asked.
        request: Request,
        /// What came back.
        response: Box<Response>,
    },
    /// A configuration access pcid cannot make (see the module docs).
    #[error(
        "configuration access of {len} bytes at {offset:#x} is unaligned or past {CONFIG_SPACE:#x}"
    )]
    OutOfRange {
        /// Where it starts.
        offset: u16,
        /// Its length.
        len: usize,
    },
}

impl From<PcidError> for io::Error {
    fn from(e: PcidError) -> io::Error {
        match e {
            PcidError::Io(e) => e,
            PcidError::OutOfRange { .. } => io::Error::new(io::ErrorKind::InvalidInput, e),
            e => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}

/// A function's channel to pcid: `C` is the channel file on Redox (any
/// byte stream in tests).
#[derive(Debug)]
pub struct PcidChannel<C> {
    channel: C,
}

impl<C: Read + Write> PcidChannel<C> {
    /// Talks to pcid over `channel`.
    pub fn new(channel: C) -> PcidChannel<C> {
        PcidChannel { channel }
    }

    /// The channel itself (BARs are mapped through it).
    pub fn get_ref(&self) -> &C {
        &self.channel
    }

    /// Sends `request` and reads its answer; pcid's refusals become
    /// [`PcidError::Refused`].
    fn transact(&mut self, request: Request) -> Result<Response, PcidError> {
        let bytes = request.encode();
        // pcid takes a request whole from one write; a short one would be
        // decoded as a different, truncated request.
        if self.channel.write(&bytes)? != bytes.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short write to pcid").into());
        }
        let mut len = [0u8; 8];
        self.channel.read_exact(&mut len)?;
        let len = u64::from_le_bytes(len);
        if len > MAX_RESPONSE {
            return Err(PcidError::TooLarge(len));
        }
        // Bounded by MAX_RESPONSE just above.
        let mut body = vec![0u8; len as usize];
        self.channel.read_exact(&mut body)?;
        match Response::decode(&body) {
            Ok(Response::Error(error)) => Err(PcidError::Refused { request, error }),
            Ok(response) => Ok(response),
            Err(error) => Err(PcidError::Decode { request, error }),
        }
    }

    /// Describes the function.
    pub fn config(&mut self) -> Result<FunctionConfig, PcidError> {
        let request = Request::RequestConfig;
        match self.transact(request)? {
            Response::Config(config) => Ok(config),
            response => Err(PcidError::Unexpected {
                request,
                response: Box::new(response),
            }),
        }
    }

    /// Reads the configuration dword at `offset` (4-aligned, below
    /// [`CONFIG_SPACE`]).
    pub fn read_config(&mut self, offset: u16) -> Result<u32, PcidError> {
        let request = Request::ReadConfig(checked(offset)?);
        match self.transact(request)? {
            Response::ReadConfig(value) => Ok(value),
            response => Err(PcidError::Unexpected {
                request,
                response: Box::new(response),
            }),
        }
    }

    /// Writes the configuration dword at `offset` (4-aligned, below
    /// [`CONFIG_SPACE`]).
    pub fn write_config(&mut self, offset: u16, value: u32) -> Result<(), PcidError> {
        let request = Request::WriteConfig(checked(offset)?, value);
        match self.transact(request)? {
            Response::WriteConfig => Ok(()),
            response => Err(PcidError::Unexpected {
                request,
                response: Box::new(response),
            }),
        }
    }

    /// Reads `buf.len()` bytes of configuration space at `offset`, a
    /// dword at a time.
    pub fn read_bytes(&mut self, offset: u16, buf: &mut [u8]) -> Result<(), PcidError> {
        let (start, end) = span(offset, buf.len())?;
        for at in (start & !3..end).step_by(4) {
            let dword = self.read_config(at as u16)?.to_le_bytes();
            for (i, byte) in dword.into_iter().enumerate() {
                if let Some(slot) = (at + i).checked_sub(start).and_then(|j| buf.get_mut(j)) {
                    *slot = byte;
                }
            }
        }
        Ok(())
    }

    /// Writes `data` to configuration space at `offset`, a dword at a
    /// time. A dword it covers in part is read first and written back with
    /// its other bytes, except the Status register's: its error bits clear
    /// when written as 1 (PCI 3.0 §6.2.3), so the bytes of it `data` does
    /// not cover are written as 0, which changes nothing.
    pub fn write_bytes(&mut self, offset: u16, data: &[u8]) -> Result<(), PcidError> {
        let (start, end) = span(offset, data.len())?;
        for at in (start & !3..end).step_by(4) {
            let mut dword = if at >= start && at + 4 <= end {
                [0; 4]
            } else {
                let mut old = self.read_config(at as u16)?.to_le_bytes();
                for (i, byte) in old.iter_mut().enumerate() {
                    if STATUS.contains(&(at + i)) {
                        *byte = 0;
                    }
                }
                old
            };
            for (i, byte) in dword.iter_mut().enumerate() {
                if let Some(&new) = (at + i).checked_sub(start).and_then(|j| data.get(j)) {
                    *byte = new;
                }
            }
            self.write_config(at as u16, u32::from_le_bytes(dword))?;
        }
        Ok(())
    }

    /// Switches MSI-X on (pcid switches MSI off first).
    pub fn enable_msix(&mut self) -> Result<(), PcidError> {
        let request = Request::EnableFeature(Feature::MsiX);
        match self.transact(request)? {
            Response::FeatureEnabled(Feature::MsiX) => Ok(()),
            response => Err(PcidError::Unexpected {
                request,
                response: Box::new(response),
            }),
        }
    }

    /// Sets or clears the MSI-X Function Mask, which holds back every
    /// vector at once.
    pub fn set_msix_function_mask(&mut self, masked: bool) -> Result<(), PcidError> {
        let request = Request::SetMsixFunctionMask(Some(masked));
        match self.transact(request)? {
            Response::SetFeatureInfo(Feature::MsiX) => Ok(()),
            response => Err(PcidError::Unexpected {
                request,
                response: Box::new(response),
            }),
        }
    }
}

/// The Status register's bytes (PCI 3.0 §6.2.3).
const STATUS: std::ops::Range<usize> = 0x06..0x08;

/// `offset` if pcid can access the dword there.
fn checked(offset: u16) -> Result<u16, PcidError> {
    if offset.is_multiple_of(4) && offset < CONFIG_SPACE {
        Ok(offset)
    } else {
        Err(PcidError::OutOfRange { offset, len: 4 })
    }
}

/// The byte range `len` bytes at `offset` cover, if pcid can reach it
/// (empty for no bytes, so that nothing is read or written).
fn span(offset: u16, len: usize) -> Result<(usize, usize), PcidError> {
    let start = usize::from(offset);
    match start.checked_add(len) {
        Some(_) if len == 0 => Ok((0, 0)),
        Some(end) if end <= usize::from(CONFIG_SPACE) => Ok((start, end)),
        _ => Err(PcidError::OutOfRange { offset, len }),
    }
}

#[cfg(test)]
mod tests {
    //! The byte strings were produced by bincode 1.3.3's `serialize` from
    //! copies of the upstream types at base 9dd6901d.

    use super::*;
    use std::io::Cursor;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    #[test]
    fn requests_encode_as_bincode_does() {
        let cases = [
            (Request::RequestConfig, "01 00 00 00"),
            (
                Request::EnableFeature(Feature::MsiX),
                "04 00 00 00 01 00 00 00",
            ),
            (
                Request::SetMsixFunctionMask(Some(false)),
                "06 00 00 00 01 00 00 00 01 00",
            ),
            (Request::ReadConfig(0x1234), "07 00 00 00 34 12"),
            (
                Request::WriteConfig(0x04, 0xdead_beef),
                "08 00 00 00 04 00 ef be ad de",
            ),
        ];
        for (request, bytes) in cases {
            assert_eq!(request.encode(), hex(bytes), "{request:?}");
        }
        assert_eq!(
            Request::SetMsixFunctionMask(None).encode(),
            hex("06 00 00 00 01 00 00 00 00")
        );
    }

    #[test]
    fn simple_answers_decode() {
        let cases = [
            ("00 00 00 00", Response::EnabledDevice),
            (
                "04 00 00 00 01 00 00 00",
                Response::FeatureEnabled(Feature::MsiX),
            ),
            (
                "08 00 00 00 01 00 00 00",
                Response::SetFeatureInfo(Feature::MsiX),
            ),
            (
                "06 00 00 00 00 00 00 00 01 00 00 00",
                Response::Error(ServerError::NonexistentFeature(Feature::MsiX)),
            ),
            (
                "06 00 00 00 01 00 00 00",
                Response::Error(ServerError::InvalidBitPattern),
            ),
            ("09 00 00 00 f4 1a 50 10", Response::ReadConfig(0x1050_1af4)),
            ("0a 00 00 00", Response::WriteConfig),
            // AllFeatures(vec![MsiX]): not decoded past its tag.
            (
                "02 00 00 00 01 00 00 00 00 00 00 00 01 00 00 00",
                Response::Other(2),
            ),
        ];
        for (bytes, response) in cases {
            assert_eq!(Response::decode(&hex(bytes)), Ok(response), "{bytes}");
        }
    }

    /// QEMU's virtio-gpu at 00:02.0: MSI-X table in BAR 1, an I/O BAR 3,
    /// the virtio structures in 64-bit BAR 4, an option ROM, IRQ 11.
    const QEMU_CONFIG: &str = "01 00 00 00 00 00 00 02 00 00 00 00 00 01 00 00 00 00 00 bf fe \
        00 10 00 00 00 00 00 00 03 00 00 00 40 c0 02 00 00 00 00 00 00 fe 00 00 00 00 00 40 00 \
        00 00 00 00 00 00 00 00 00 01 00 00 b8 fe 00 00 04 00 00 01 0b 00 f4 1a 50 10 03 80 00 \
        01";

    #[test]
    fn the_function_description_decodes() {
        let Response::Config(config) = Response::decode(&hex(QEMU_CONFIG)).unwrap() else {
            panic!("not a Config");
        };
        assert_eq!(
            config,
            FunctionConfig {
                addr: Address {
                    segment: 0,
                    bus: 0,
                    device: 2,
                    function: 0
                },
                bars: [
                    Bar::None,
                    Bar::Memory {
                        addr: 0xfebf_0000,
                        size: 0x1000
                    },
                    Bar::None,
                    Bar::Port(0xc040),
                    Bar::Memory {
                        addr: 0xfe00_0000,
                        size: 0x4000
                    },
                    Bar::None,
                ],
                legacy_interrupt: Some(LegacyInterrupt::Irq(11)),
                vendor_id: 0x1af4,
                device_id: 0x1050,
                class: [3, 0x80, 0, 1],
            }
        );
        assert_eq!(config.addr.to_string(), "0000:00:02.0");
    }

    #[test]
    fn a_device_tree_interrupt_and_no_rom_decode() {
        let bytes = hex(
            "01 00 00 00 00 00 00 02 00 00 00 00 00 01 00 00 00 00 00 bf fe 00 10 00 00 00 00 00 \
             00 03 00 00 00 40 c0 02 00 00 00 00 00 00 fe 00 00 00 00 00 40 00 00 00 00 00 00 00 \
             00 00 00 00 01 00 01 07 00 00 00 01 00 00 00 02 00 00 00 03 00 00 00 02 00 00 00 00 \
             00 00 00 f4 1a 50 10 03 80 00 01",
        );
        let Ok(Response::Config(config)) = Response::decode(&bytes) else {
            panic!("not a Config");
        };
        assert_eq!(
            config.legacy_interrupt,
            Some(LegacyInterrupt::Phandle {
                phandle: 7,
                addr: [1, 2, 3],
                cells: 2
            })
        );
    }

    #[test]
    fn malformed_answers_are_errors_not_panics() {
        let full = hex(QEMU_CONFIG);
        for len in 0..full.len() {
            assert_eq!(Response::decode(&full[..len]), Err(DecodeError::Short));
        }
        // pcid before 2025-12 had no option ROM field: the same function
        // without its ten bytes is refused, not misread.
        let mut old = full.clone();
        old.drain(59..59 + 10);
        assert!(Response::decode(&old).is_err());
        let mut extra = full.clone();
        extra.push(0);
        assert_eq!(Response::decode(&extra), Err(DecodeError::Trailing(1)));
        let mut bad_bar = full.clone();
        bad_bar[9] = 4;
        assert_eq!(
            Response::decode(&bad_bar),
            Err(DecodeError::Variant("PciBar", 4))
        );
        assert_eq!(
            Response::decode(&hex("04 00 00 00 02 00 00 00")),
            Err(DecodeError::Variant("PciFeature", 2))
        );
        assert_eq!(
            Response::decode(&hex("06 00 00 00 05 00 00 00")),
            Err(DecodeError::Variant("PcidServerResponseError", 5))
        );
    }

    /// A channel that records what is written and plays back `answers`.
    struct Fake {
        written: Vec<u8>,
        answers: Cursor<Vec<u8>>,
    }

    impl Fake {
        fn answering(bodies: &[&str]) -> PcidChannel<Fake> {
            let mut answers = Vec::new();
            for body in bodies {
                let body = hex(body);
                answers.extend_from_slice(&(body.len() as u64).to_le_bytes());
                answers.extend_from_slice(&body);
            }
            PcidChannel::new(Fake {
                written: Vec::new(),
                answers: Cursor::new(answers),
            })
        }
    }

    impl Read for Fake {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.answers.read(buf)
        }
    }

    impl Write for Fake {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_channel_frames_requests_and_matches_answers() {
        let mut pcid = Fake::answering(&[
            "09 00 00 00 f4 1a 50 10",
            "0a 00 00 00",
            "04 00 00 00 01 00 00 00",
            "08 00 00 00 01 00 00 00",
        ]);
        assert_eq!(pcid.read_config(0).unwrap(), 0x1050_1af4);
        pcid.write_config(0x04, 0x0010_0507).unwrap();
        pcid.enable_msix().unwrap();
        pcid.set_msix_function_mask(false).unwrap();
        let mut expected = hex("07 00 00 00 00 00");
        expected.extend(hex("08 00 00 00 04 00 07 05 10 00"));
        expected.extend(hex("04 00 00 00 01 00 00 00"));
        expected.extend(hex("06 00 00 00 01 00 00 00 01 00"));
        assert_eq!(pcid.get_ref().written, expected);
    }

    #[test]
    fn byte_accesses_go_a_dword_at_a_time() {
        // Dwords 0 and 4: ids, then command 0x0003 with status 0x0010.
        let mut pcid = Fake::answering(&["09 00 00 00 f4 1a 50 10", "09 00 00 00 03 00 10 00"]);
        let mut buf = [0u8; 4];
        pcid.read_bytes(2, &mut buf).unwrap();
        assert_eq!(buf, [0x50, 0x10, 0x03, 0x00]);
        assert_eq!(
            pcid.get_ref().written,
            [hex("07 00 00 00 00 00"), hex("07 00 00 00 04 00")].concat()
        );

        // The command register alone: status is written back as zeros.
        let mut pcid = Fake::answering(&["09 00 00 00 03 00 f0 ff", "0a 00 00 00"]);
        pcid.write_bytes(4, &[0x07, 0x05]).unwrap();
        assert_eq!(
            pcid.get_ref().written,
            [
                hex("07 00 00 00 04 00"),
                hex("08 00 00 00 04 00 07 05 00 00")
            ]
            .concat()
        );

        // A whole dword is written without reading it; a byte elsewhere
        // keeps its neighbours.
        let mut pcid = Fake::answering(&["0a 00 00 00", "09 00 00 00 11 22 33 44", "0a 00 00 00"]);
        pcid.write_bytes(0x40, &0xa1b2_c3d4u32.to_le_bytes())
            .unwrap();
        pcid.write_bytes(0x45, &[0xee]).unwrap();
        assert_eq!(
            pcid.get_ref().written,
            [
                hex("08 00 00 00 40 00 d4 c3 b2 a1"),
                hex("07 00 00 00 44 00"),
                hex("08 00 00 00 44 00 11 ee 33 44"),
            ]
            .concat()
        );
    }

    #[test]
    fn refusals_mismatches_and_bad_offsets_are_errors() {
        let mut pcid = Fake::answering(&["06 00 00 00 00 00 00 00 01 00 00 00", "0a 00 00 00"]);
        assert!(matches!(
            pcid.enable_msix(),
            Err(PcidError::Refused {
                error: ServerError::NonexistentFeature(Feature::MsiX),
                ..
            })
        ));
        assert!(matches!(
            pcid.read_config(8),
            Err(PcidError::Unexpected { response, .. }) if *response == Response::WriteConfig
        ));
        for offset in [2, 0x100, 0xfffc] {
            assert!(matches!(
                pcid.read_config(offset),
                Err(PcidError::OutOfRange { .. })
            ));
        }
        assert!(matches!(
            pcid.read_bytes(0xfe, &mut [0; 4]),
            Err(PcidError::OutOfRange {
                offset: 0xfe,
                len: 4
            })
        ));
        assert!(matches!(
            pcid.write_bytes(0xffff, &[0; 2]),
            Err(PcidError::OutOfRange { .. })
        ));
        // Nothing was sent for the refused offsets; the channel is drained.
        assert!(matches!(pcid.config(), Err(PcidError::Io(_))));

        let mut huge = PcidChannel::new(Fake {
            written: Vec::new(),
            answers: Cursor::new(u64::MAX.to_le_bytes().to_vec()),
        });
        assert!(matches!(huge.config(), Err(PcidError::TooLarge(_))));
    }
}
