//! Redox: the PCI function pcid hands to a driver it spawns.
//!
//! pcid-spawner opens the function's channel (`/scheme/pci/<addr>/channel`),
//! enables it and passes the descriptor in `PCID_CLIENT_CHANNEL`.
//! Everything goes through pcid or the kernel:
//!
//! - configuration space: pcid's `ReadConfig`/`WriteConfig` ([`pcid`]);
//! - BARs: an mmap of the channel, which pcid backs with the BAR;
//! - MSI-X: vectors reserved in the kernel's irq scheme, their messages
//!   written into the table here ([`msix`]), then enabled through pcid;
//!   INTx: the line's irq handle, acknowledged by writing its count back;
//! - DMA: physically contiguous memory of the memory scheme.
//!
//! The codec and the table programming are plain code, tested on every
//! platform; the rest needs Redox.

#[cfg(target_os = "redox")]
mod irq;
pub mod msix;
pub mod pcid;
#[cfg(target_os = "redox")]
mod platform;

#[cfg(target_os = "redox")]
pub use platform::{RedoxPci, PCID_CLIENT_CHANNEL};
