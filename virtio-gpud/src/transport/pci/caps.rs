//! The virtio structures a PCI function points at from its capability
//! list (virtio 1.2 §4.1.4): where the common configuration, notification
//! area, ISR status and device configuration live, and the shared-memory
//! regions it offers.
//!
//! Configuration space is input from the device: every pointer is checked
//! against the 256 bytes of the PCI-compatible space, the list may not
//! loop, and each structure must lie inside a memory BAR of the size the
//! platform mapped.

/// Bytes of PCI-compatible configuration space the capability list lives in.
pub const CONFIG_SPACE: usize = 256;

/// `Status` register bit: the function has a capability list (PCI 3.0 §6.2.3).
const STATUS_CAP_LIST: u16 = 1 << 4;
/// Offset of the `Status` register.
const STATUS: usize = 0x06;
/// Offset of the capabilities pointer.
const CAP_POINTER: usize = 0x34;
/// The first byte after the standard header: capabilities start here.
const HEADER_END: usize = 0x40;
/// Capability id of a vendor-specific capability, which virtio uses.
const CAP_VENDOR: u8 = 0x09;
/// Capability id of MSI-X (PCI 3.0 §6.8.2).
const CAP_MSIX: u8 = 0x11;
/// `struct virtio_pci_cap` is 16 bytes.
const VIRTIO_CAP_LEN: u8 = 16;
/// `struct virtio_pci_notify_cap` adds `notify_off_multiplier`.
const NOTIFY_CAP_LEN: u8 = 20;
/// `struct virtio_pci_cap64` adds `offset_hi` and `length_hi`.
const CAP64_LEN: u8 = 24;
/// A 256-byte space holds at most this many 4-byte-aligned capabilities;
/// a longer walk has looped.
const MAX_CAPS: usize = (CONFIG_SPACE - HEADER_END) / 4;
/// The six BARs of a type-0 header.
const BARS: u8 = 6;

/// `cfg_type` values (virtio 1.2 §4.1.4).
mod cfg_type {
    pub const COMMON: u8 = 1;
    pub const NOTIFY: u8 = 2;
    pub const ISR: u8 = 3;
    pub const DEVICE: u8 = 4;
    pub const SHARED_MEMORY: u8 = 8;
}

/// Errors in a function's capability list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    /// The configuration space read was shorter than the header.
    #[error("configuration space is {0} bytes, shorter than the PCI header")]
    Short(usize),
    /// The function has no capability list at all.
    #[error("the function has no capability list")]
    NoList,
    /// A capability pointer leaves the PCI-compatible space or points into
    /// the header.
    #[error("capability pointer {0:#x} is outside 0x40..0x100")]
    BadPointer(usize),
    /// The list does not end.
    #[error("the capability list loops")]
    Loop,
    /// A virtio capability is shorter than its structure.
    #[error("virtio capability at {at:#x} is {len} bytes, its type needs {need}")]
    TooShort {
        /// Where it is.
        at: usize,
        /// Its `cap_len`.
        len: u8,
        /// What its type needs.
        need: u8,
    },
    /// A structure the driver needs is missing.
    #[error("no {0} capability")]
    Missing(&'static str),
    /// A structure names a BAR that does not exist.
    #[error("{what} names BAR {bar}")]
    BadBar {
        /// Which structure.
        what: &'static str,
        /// The BAR it names.
        bar: u8,
    },
    /// A structure does not fit its BAR, or is smaller than its layout.
    #[error("{what} at {offset:#x}+{length:#x} does not fit BAR {bar} of {bar_len:#x} bytes")]
    OutOfBar {
        /// Which structure.
        what: &'static str,
        /// Its BAR.
        bar: u8,
        /// Its offset there.
        offset: u64,
        /// Its length.
        length: u64,
        /// The BAR's size.
        bar_len: u64,
    },
}

/// Where one virtio structure lives: `length` bytes at `offset` in `bar`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The BAR index, 0..=5.
    pub bar: u8,
    /// Offset of the structure in the BAR.
    pub offset: u64,
    /// Its length.
    pub length: u64,
}

impl Window {
    /// Checks the window lies inside a BAR of `bar_len` bytes and holds at
    /// least `min` bytes; `what` names it in the error.
    pub fn check(&self, what: &'static str, bar_len: u64, min: u64) -> Result<(), CapError> {
        let fits = self
            .offset
            .checked_add(self.length)
            .is_some_and(|end| end <= bar_len);
        if fits && self.length >= min {
            Ok(())
        } else {
            Err(CapError::OutOfBar {
                what,
                bar: self.bar,
                offset: self.offset,
                length: self.length,
                bar_len,
            })
        }
    }
}

/// A shared-memory region the device offers (virtio 1.2 §2.10), kept for
/// host-visible blob memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedMemory {
    /// The region's id (for virtio-gpu, 1 is the host-visible region).
    pub id: u8,
    /// Where it is.
    pub window: Window,
}

/// The function's MSI-X capability, as far as the driver needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msix {
    /// Offset of the capability in configuration space.
    pub at: usize,
    /// Vectors the table holds.
    pub vectors: u16,
    /// Where the table is: its BAR (BIR) and offset, 16 bytes per vector
    /// (PCI 3.0 §6.8.2.4). The BIR may name a BAR that does not exist;
    /// mapping it is where that shows.
    pub table: Window,
}

/// Bytes of one MSI-X table entry.
pub const MSIX_ENTRY: u64 = 16;

/// The virtio structures of one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtioCaps {
    /// `struct virtio_pci_common_cfg`.
    pub common: Window,
    /// The notification area.
    pub notify: Window,
    /// Queue `q` is notified at `notify.offset + queue_notify_off(q) *
    /// notify_multiplier`.
    pub notify_multiplier: u32,
    /// The ISR status byte.
    pub isr: Window,
    /// The device-specific configuration.
    pub device: Window,
    /// Shared-memory regions, in list order.
    pub shared_memory: Vec<SharedMemory>,
    /// MSI-X, if the function has it.
    pub msix: Option<Msix>,
}

/// Reads the virtio structures from `config`, the function's configuration
/// space (at least the 64-byte header; up to 256 bytes are walked). The
/// first capability of each type wins, as the spec asks drivers to use the
/// first they can; unknown types are skipped.
pub fn parse(config: &[u8]) -> Result<VirtioCaps, CapError> {
    if config.len() < HEADER_END {
        return Err(CapError::Short(config.len()));
    }
    let space = &config[..config.len().min(CONFIG_SPACE)];
    let status = u16::from_le_bytes([space[STATUS], space[STATUS + 1]]);
    if status & STATUS_CAP_LIST == 0 {
        return Err(CapError::NoList);
    }
    let (mut common, mut notify, mut isr, mut device) = (None, None, None, None);
    let mut shared_memory = Vec::new();
    let mut msix = None;
    // The low two bits of every pointer are reserved (PCI 3.0 §6.7).
    let mut at = usize::from(space[CAP_POINTER] & !3);
    let mut walked = 0;
    while at != 0 {
        walked += 1;
        if walked > MAX_CAPS {
            return Err(CapError::Loop);
        }
        // A capability's id and next pointer must be inside the space.
        if at < HEADER_END || at + 2 > space.len() {
            return Err(CapError::BadPointer(at));
        }
        let (id, next) = (space[at], usize::from(space[at + 1] & !3));
        match id {
            CAP_MSIX if at + 8 <= space.len() && msix.is_none() => {
                let control = u16::from_le_bytes([space[at + 2], space[at + 3]]);
                // Table Size is encoded as N-1 (PCI 3.0 §6.8.2.3).
                let vectors = (control & 0x7ff) + 1;
                // Table BIR in the low three bits, a QWORD-aligned offset
                // above them.
                let table = u32_at(space, at + 4);
                msix = Some(Msix {
                    at,
                    vectors,
                    table: Window {
                        bar: (table & 7) as u8,
                        offset: u64::from(table & !7),
                        length: u64::from(vectors) * MSIX_ENTRY,
                    },
                });
            }
            CAP_VENDOR => {
                if let Some(cap) = VendorCap::read(space, at)? {
                    match cap.cfg_type {
                        cfg_type::COMMON => common = common.or(Some(cap.window)),
                        cfg_type::NOTIFY if notify.is_none() => {
                            cap.need(space, at, NOTIFY_CAP_LEN)?;
                            notify = Some((cap.window, u32_at(space, at + 16)));
                        }
                        cfg_type::ISR => isr = isr.or(Some(cap.window)),
                        cfg_type::DEVICE => device = device.or(Some(cap.window)),
                        cfg_type::SHARED_MEMORY => {
                            cap.need(space, at, CAP64_LEN)?;
                            let hi = |o| u64::from(u32_at(space, at + o)) << 32;
                            let window = Window {
                                offset: cap.window.offset | hi(16),
                                length: cap.window.length | hi(20),
                                ..cap.window
                            };
                            shared_memory.push(SharedMemory { id: cap.id, window });
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        at = next;
    }
    let (notify, notify_multiplier) = notify.ok_or(CapError::Missing("notify"))?;
    let caps = VirtioCaps {
        common: common.ok_or(CapError::Missing("common configuration"))?,
        notify,
        notify_multiplier,
        isr: isr.ok_or(CapError::Missing("ISR"))?,
        device: device.ok_or(CapError::Missing("device configuration"))?,
        shared_memory,
        msix,
    };
    for (what, w) in [
        ("common configuration", caps.common),
        ("notify", caps.notify),
        ("ISR", caps.isr),
        ("device configuration", caps.device),
    ] {
        if w.bar >= BARS {
            return Err(CapError::BadBar { what, bar: w.bar });
        }
    }
    Ok(caps)
}

/// The fields of `struct virtio_pci_cap` a walk needs.
struct VendorCap {
    cfg_type: u8,
    id: u8,
    window: Window,
}

impl VendorCap {
    /// Reads the capability at `at`; None for one whose BAR field is
    /// reserved (virtio 1.2 §4.1.4: drivers ignore such a capability).
    fn read(space: &[u8], at: usize) -> Result<Option<VendorCap>, CapError> {
        let len = *space.get(at + 2).ok_or(CapError::BadPointer(at))?;
        if len < VIRTIO_CAP_LEN || at + usize::from(VIRTIO_CAP_LEN) > space.len() {
            return Err(CapError::TooShort {
                at,
                len,
                need: VIRTIO_CAP_LEN,
            });
        }
        let bar = space[at + 4];
        if bar >= BARS {
            return Ok(None);
        }
        Ok(Some(VendorCap {
            cfg_type: space[at + 3],
            id: space[at + 5],
            window: Window {
                bar,
                offset: u64::from(u32_at(space, at + 8)),
                length: u64::from(u32_at(space, at + 12)),
            },
        }))
    }

    /// Checks that the capability at `at` is `need` bytes long and inside
    /// the space, for a type with a longer structure.
    fn need(&self, space: &[u8], at: usize, need: u8) -> Result<(), CapError> {
        let len = space[at + 2];
        if len < need || at + usize::from(need) > space.len() {
            return Err(CapError::TooShort { at, len, need });
        }
        Ok(())
    }
}

fn u32_at(space: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(space[at..at + 4].try_into().expect("four bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU's virtio-gpu-gl-pci as it appears on q35: MSI-X at 0x98 (3
    /// vectors), then common/ISR/device/notify in BAR 4, as the device
    /// reports them.
    fn qemu_like() -> Vec<u8> {
        let mut c = vec![0u8; CONFIG_SPACE];
        c[0..4].copy_from_slice(&[0xf4, 0x1a, 0x50, 0x10]);
        c[STATUS] = STATUS_CAP_LIST as u8;
        c[CAP_POINTER] = 0x98;
        c[0x98..0x9c].copy_from_slice(&[CAP_MSIX, 0x84, 0x02, 0x00]);
        c[0x9c..0xa0].copy_from_slice(&0x2001u32.to_le_bytes());
        let mut vendor = |at: usize, next: u8, ty: u8, offset: u32, len: u8| {
            c[at..at + 6].copy_from_slice(&[CAP_VENDOR, next, len, ty, 4, 0]);
            c[at + 8..at + 12].copy_from_slice(&offset.to_le_bytes());
            c[at + 12..at + 16].copy_from_slice(&0x1000u32.to_le_bytes());
        };
        vendor(0x84, 0x70, cfg_type::COMMON, 0x0, 16);
        vendor(0x70, 0x60, cfg_type::ISR, 0x1000, 16);
        vendor(0x60, 0x40, cfg_type::DEVICE, 0x2000, 16);
        vendor(0x40, 0x00, cfg_type::NOTIFY, 0x3000, 20);
        c[0x40 + 16..0x40 + 20].copy_from_slice(&4u32.to_le_bytes());
        c
    }

    #[test]
    fn reads_the_structures_qemu_offers() {
        let caps = parse(&qemu_like()).unwrap();
        let w = |offset| Window {
            bar: 4,
            offset,
            length: 0x1000,
        };
        assert_eq!(caps.common, w(0));
        assert_eq!(caps.isr, w(0x1000));
        assert_eq!(caps.device, w(0x2000));
        assert_eq!(caps.notify, w(0x3000));
        assert_eq!(caps.notify_multiplier, 4);
        assert_eq!(
            caps.msix,
            Some(Msix {
                at: 0x98,
                vectors: 3,
                table: Window {
                    bar: 1,
                    offset: 0x2000,
                    length: 48
                }
            })
        );
        assert!(caps.shared_memory.is_empty());
    }

    #[test]
    fn the_first_of_each_type_wins_and_shared_memory_is_64_bit() {
        let mut c = qemu_like();
        // A second common cap in BAR 2 after the notify cap, and a
        // shared-memory cap with high halves.
        c[0x41] = 0xa0;
        c[0xa0..0xa6].copy_from_slice(&[CAP_VENDOR, 0xc0, 16, cfg_type::COMMON, 2, 0]);
        c[0xc0..0xc6].copy_from_slice(&[CAP_VENDOR, 0, 24, cfg_type::SHARED_MEMORY, 2, 1]);
        c[0xc8..0xcc].copy_from_slice(&0x10u32.to_le_bytes());
        c[0xcc..0xd0].copy_from_slice(&0x20u32.to_le_bytes());
        c[0xd0..0xd4].copy_from_slice(&1u32.to_le_bytes());
        c[0xd4..0xd8].copy_from_slice(&2u32.to_le_bytes());
        let caps = parse(&c).unwrap();
        assert_eq!(caps.common.bar, 4);
        assert_eq!(
            caps.shared_memory,
            vec![SharedMemory {
                id: 1,
                window: Window {
                    bar: 2,
                    offset: 0x1_0000_0010,
                    length: 0x2_0000_0020
                }
            }]
        );
    }

    #[test]
    fn rejects_lists_that_loop_leave_the_space_or_lack_a_structure() {
        let mut c = qemu_like();
        c[0x41] = 0x84; // notify -> common again
        assert_eq!(parse(&c), Err(CapError::Loop));
        let mut c = qemu_like();
        c[0x41] = 0x20; // into the header
        assert_eq!(parse(&c), Err(CapError::BadPointer(0x20)));
        let mut c = qemu_like();
        c[0x61] = 0x00; // device -> end: notify never seen
        assert_eq!(parse(&c), Err(CapError::Missing("notify")));
        let mut c = qemu_like();
        c[STATUS] = 0;
        assert_eq!(parse(&c), Err(CapError::NoList));
        assert_eq!(parse(&[0; 10]), Err(CapError::Short(10)));
        let mut c = qemu_like();
        c[0x42] = 16; // a notify cap without its multiplier
        assert!(matches!(
            parse(&c),
            Err(CapError::TooShort { need: 20, .. })
        ));
        let mut c = qemu_like();
        c[0x86] = 8;
        assert!(matches!(
            parse(&c),
            Err(CapError::TooShort { need: 16, .. })
        ));
        // A capability whose header runs past the space.
        let mut c = qemu_like();
        c[0x41] = 0xfc;
        c[0xfc] = CAP_VENDOR;
        c[0xfe] = 16;
        assert!(matches!(parse(&c), Err(CapError::TooShort { .. })));
    }

    #[test]
    fn a_reserved_bar_is_skipped_and_windows_must_fit_their_bar() {
        let mut c = qemu_like();
        c[0x88] = 7; // the common cap's BAR is reserved: ignored
        assert_eq!(parse(&c), Err(CapError::Missing("common configuration")));
        let caps = parse(&qemu_like()).unwrap();
        assert!(caps.notify.check("notify", 0x4000, 2).is_ok());
        assert!(caps.notify.check("notify", 0x3fff, 2).is_err());
        assert!(caps.common.check("common", 0x4000, 0x1001).is_err());
        let huge = Window {
            bar: 0,
            offset: u64::MAX,
            length: 2,
        };
        assert!(huge.check("x", u64::MAX, 0).is_err());
    }
}
