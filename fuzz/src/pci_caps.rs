//! `pci_caps`: `virtio_gpud::transport::pci::caps::parse` on arbitrary
//! configuration space (what a PCI function shows its driver).
//!
//! Input: a BAR size (8 bytes) for [`Window::check`], then the
//! configuration space.
//!
//! Checked against a separate walk of the list (a visited set instead of
//! a step bound): an accepted list is one that ends; each structure is the
//! first vendor capability of its type with a real BAR; a list the model
//! finds looping or leaving the space is refused; a window accepted for a
//! BAR ends inside it.

use virtio_gpud::transport::pci::caps::{parse, Window};

use crate::Input;

/// The target.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let bar_len = input.u64();
    let space = &data[data.len().min(8)..];
    let model = walk(space);
    match parse(space) {
        Ok(caps) => {
            let first = model.expect("the parser accepted a list the model refuses");
            for (ty, w) in [
                (1, caps.common),
                (2, caps.notify),
                (3, caps.isr),
                (4, caps.device),
            ] {
                assert_eq!(first[ty - 1], Some(w), "type {ty}");
                if w.check("x", bar_len, 0).is_ok() {
                    assert!(w.offset + w.length <= bar_len);
                }
            }
            if let Some(m) = caps.msix {
                assert!((1..=2048).contains(&m.vectors));
            }
        }
        Err(_) => {
            // A list the model walks to its end with all four structures
            // may still be refused for a short notify or shared-memory
            // capability; the reverse never holds.
        }
    }
}

/// The first window of each of the four types, or None for a list that
/// loops, leaves the space, or has no list bit.
fn walk(space: &[u8]) -> Option<[Option<Window>; 4]> {
    let space = &space[..space.len().min(256)];
    if space.len() < 0x40 || space[6] & 0x10 == 0 {
        return None;
    }
    let mut seen = [false; 256];
    let mut first = [None; 4];
    let mut at = usize::from(space[0x34] & !3);
    while at != 0 {
        if at < 0x40 || at + 2 > space.len() || std::mem::replace(&mut seen[at], true) {
            return None;
        }
        if space[at] == 0x09 {
            let len = *space.get(at + 2)?;
            if len < 16 || at + 16 > space.len() {
                return None;
            }
            let (ty, bar) = (space[at + 3], space[at + 4]);
            let u32_at = |o: usize| u32::from_le_bytes(space[o..o + 4].try_into().unwrap());
            if (1..=4).contains(&ty) && bar < 6 && first[usize::from(ty) - 1].is_none() {
                first[usize::from(ty) - 1] = Some(Window {
                    bar,
                    offset: u64::from(u32_at(at + 8)),
                    length: u64::from(u32_at(at + 12)),
                });
            }
        }
        at = usize::from(space[at + 1] & !3);
    }
    Some(first)
}
