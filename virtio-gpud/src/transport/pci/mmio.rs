//! A window of device registers: volatile, bounds-checked accesses at
//! offsets, never Rust references into device memory.

use std::ptr::NonNull;

use super::caps::Window;
use crate::transport::TransportError;

/// A register width: the integer types a register access may have.
pub trait Register: Copy + sealed::Sealed {}
impl Register for u8 {}
impl Register for u16 {}
impl Register for u32 {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
}

/// `len` bytes of mapped device memory (a BAR, or a structure inside one).
/// It does not own the mapping: the platform that mapped it keeps it for
/// as long as the transport using it lives.
#[derive(Clone, Copy, Debug)]
pub struct Mmio {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the window is device memory reached only through volatile
// accesses; which thread issues them does not matter to the device.
unsafe impl Send for Mmio {}

impl Mmio {
    /// A window over `len` bytes at `base`.
    ///
    /// # Safety
    /// `base` must map `len` bytes of device memory that stay mapped for
    /// as long as this value and every window cut from it are used, and
    /// that nothing treats as ordinary memory.
    pub unsafe fn new(base: NonNull<u8>, len: usize) -> Mmio {
        Mmio { base, len }
    }

    /// The window's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The part of this window (a whole BAR) a capability names, after
    /// checking it fits and holds at least `min` bytes.
    pub fn window(&self, what: &'static str, w: Window, min: u64) -> Result<Mmio, TransportError> {
        w.check(what, self.len as u64, min)
            .map_err(|e| TransportError::Unsupported(e.to_string()))?;
        // Both fit in `len`, a usize, after the check.
        let (offset, len) = (w.offset as usize, w.length as usize);
        Ok(Mmio {
            // SAFETY: offset < len of the mapping (checked), so the result
            // is inside it and not null.
            base: unsafe { NonNull::new_unchecked(self.base.as_ptr().add(offset)) },
            len,
        })
    }

    fn at<T: Register>(&self, offset: usize) -> Result<*mut T, TransportError> {
        let size = std::mem::size_of::<T>();
        let inside = offset.checked_add(size).is_some_and(|end| end <= self.len);
        // Device registers are naturally aligned (virtio 1.2 §4.1.3.1).
        let ptr = self.base.as_ptr().wrapping_add(offset);
        if !inside || !(ptr as usize).is_multiple_of(size) {
            return Err(TransportError::Unsupported(format!(
                "register access of {size} bytes at {offset:#x} outside or misaligned in a \
                 window of {:#x}",
                self.len
            )));
        }
        Ok(ptr.cast())
    }

    /// Reads the register at `offset`.
    pub fn read<T: Register>(&self, offset: usize) -> Result<T, TransportError> {
        let ptr = self.at::<T>(offset)?;
        // SAFETY: `at` checked that the access is inside the mapping and
        // aligned; the mapping is live (see `new`).
        Ok(unsafe { ptr.read_volatile() })
    }

    /// Writes the register at `offset`.
    pub fn write<T: Register>(&self, offset: usize, value: T) -> Result<(), TransportError> {
        let ptr = self.at::<T>(offset)?;
        // SAFETY: as in `read`.
        unsafe { ptr.write_volatile(value) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_stay_inside_and_aligned() {
        let mut backing = [0u32; 8];
        let base = NonNull::new(backing.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: the array outlives the window and is only used through it.
        let bar = unsafe { Mmio::new(base, 32) };
        bar.write(4, 0xdead_beefu32).unwrap();
        assert_eq!(bar.read::<u32>(4).unwrap(), 0xdead_beef);
        assert_eq!(bar.read::<u16>(6).unwrap(), 0xdead);
        assert!(bar.read::<u32>(30).is_err());
        assert!(bar.read::<u32>(usize::MAX - 1).is_err());
        assert!(bar.read::<u16>(3).is_err());
        let w = |offset, length| Window {
            bar: 0,
            offset,
            length,
        };
        let inner = bar.window("x", w(16, 16), 8).unwrap();
        assert_eq!(inner.read::<u32>(0).unwrap(), 0);
        assert!(inner.read::<u32>(16).is_err());
        assert!(bar.window("x", w(16, 17), 0).is_err());
        assert!(bar.window("x", w(16, 4), 8).is_err());
    }
}
