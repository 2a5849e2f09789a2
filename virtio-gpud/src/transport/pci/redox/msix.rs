//! The MSI-X table (PCI 3.0 §6.8.2) as this driver programs it on Redox,
//! where the driver and not the kernel writes each vector's message, and
//! the x86 MSI message that delivers a vector to a CPU.

use super::super::caps::MSIX_ENTRY;
use super::super::mmio::Mmio;
use crate::transport::TransportError;

/// Bytes per table entry.
const ENTRY: usize = MSIX_ENTRY as usize;
/// Entry fields: Message Address (low, high), Message Data, Vector Control.
const ADDR_LO: usize = 0;
const ADDR_HI: usize = 4;
const DATA: usize = 8;
const VECTOR_CONTROL: usize = 12;
/// Vector Control's Mask bit; the other bits are reserved and kept.
const MASKED: u32 = 1;

/// What the function writes to raise one vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiMessage {
    /// Message Address.
    pub addr: u64,
    /// Message Data.
    pub data: u32,
}

/// The x86 message for `vector` on the local APIC `apic_id`: the
/// 0xFEExxxxx window with a physical destination and no redirection hint,
/// fixed delivery, edge-triggered (Intel SDM vol. 3, "Message Signalled
/// Interrupts": address and data register formats).
pub fn x86_message(apic_id: u8, vector: u8) -> MsiMessage {
    MsiMessage {
        addr: 0xfee0_0000 | u64::from(apic_id) << 12,
        // Trigger mode 0 (edge), delivery mode 000 (fixed).
        data: u32::from(vector),
    }
}

/// A function's mapped MSI-X table (a window: copies are the same table).
#[derive(Clone, Copy, Debug)]
pub struct MsixTable {
    table: Mmio,
}

impl MsixTable {
    /// The table in `table`, a window of whole entries.
    pub fn new(table: Mmio) -> MsixTable {
        MsixTable { table }
    }

    fn entries(&self) -> usize {
        self.table.len() / ENTRY
    }

    fn set_masked(&self, entry: usize, masked: bool) -> Result<(), TransportError> {
        let at = entry * ENTRY + VECTOR_CONTROL;
        let control: u32 = self.table.read(at)?;
        let control = if masked {
            control | MASKED
        } else {
            control & !MASKED
        };
        self.table.write(at, control)
    }

    /// Masks every entry: a previous driver may have left some unmasked
    /// with messages that are no longer ours.
    pub fn mask_all(&self) -> Result<(), TransportError> {
        (0..self.entries()).try_for_each(|entry| self.set_masked(entry, true))
    }

    /// Writes `message` into `entry`, which should be masked meanwhile
    /// (PCI 3.0 §6.8.3.5).
    pub fn program(&self, entry: usize, message: MsiMessage) -> Result<(), TransportError> {
        let at = entry * ENTRY;
        self.table.write(at + ADDR_LO, message.addr as u32)?;
        self.table
            .write(at + ADDR_HI, (message.addr >> 32) as u32)?;
        self.table.write(at + DATA, message.data)
    }

    /// Lets `entry` fire.
    pub fn unmask(&self, entry: usize) -> Result<(), TransportError> {
        self.set_masked(entry, false)
    }
}

#[cfg(test)]
mod tests {
    use std::ptr::NonNull;

    use super::*;

    #[test]
    fn x86_messages_target_the_apic_window() {
        assert_eq!(
            x86_message(2, 0x31),
            MsiMessage {
                addr: 0xfee0_2000,
                data: 0x31
            }
        );
    }

    #[test]
    fn entries_are_masked_programmed_and_unmasked_in_place() {
        // Three entries; entry 2's Vector Control has a reserved bit set.
        let mut backing = [0u32; 12];
        backing[11] = 0x8000_0000;
        {
            let base = NonNull::new(backing.as_mut_ptr().cast::<u8>()).unwrap();
            // SAFETY: the array outlives the window, which is the only
            // access to it in this block.
            let table = MsixTable::new(unsafe { Mmio::new(base, 48) });
            table.mask_all().unwrap();
            table
                .program(
                    1,
                    MsiMessage {
                        addr: 0x1_fee0_0000,
                        data: 0x41,
                    },
                )
                .unwrap();
            table.unmask(1).unwrap();
            assert!(table.program(3, x86_message(0, 0x40)).is_err());
        }
        assert_eq!(
            backing,
            [0, 0, 0, 1, 0xfee0_0000, 1, 0x41, 0, 0, 0, 0, 0x8000_0001]
        );
    }
}
