//! The relibc payload shape, read and written without trusting the client.
//!
//! A payload is a header struct followed by counted arrays, each starting
//! right where the previous part ends — so an array of `u64` after an odd
//! number of `u32`s is not 8-aligned, and the buffer itself has no alignment
//! guarantee either. Everything here therefore copies values out and in
//! (zerocopy's `read_from_prefix` / `write_to_prefix`) instead of handing
//! out references into the buffer.
//!
//! Counts come from the client and are arbitrary: they are capped at
//! [`MAX_COUNT`] elements ([`MAX_BYTES`] for byte arrays) and all size
//! arithmetic is checked, so a hostile count is an error, never a panic or a
//! huge allocation.
//!
//! **An array over its cap is not carried.** The client library does not
//! read it from the caller's memory (a count of 0xffffffff over a 4-entry
//! array would fault) and packs none of its elements; the arrays after it
//! follow at once. The daemon declares it as usual, gets
//! [`WireError::TooMany`] for it, and answers `ENOMEM` when its validation
//! reaches that array — after the checks Linux makes first (flags, say), so
//! the answer is Linux's, whose allocation of such an array fails.

use alloc::vec::Vec;
use core::fmt;
use core::mem::size_of;

use zerocopy::{FromBytes, Immutable, IntoBytes};

/// The largest element count accepted for one array.
///
/// Linux bounds these arrays only by memory; a daemon serving many clients
/// must not let one of them make it allocate gigabytes, and no real client
/// waits on or queries anywhere near this many syncobjs or fences at once.
pub const MAX_COUNT: u32 = 1 << 16;

/// The largest byte array carried inline (EXECBUFFER command streams,
/// blob commands): Mesa's virgl command buffers stay below 256 KiB.
pub const MAX_BYTES: u32 = 16 << 20;

/// Whether an array of `count` elements is carried (see the module
/// documentation); a client library packs none of an array that is not.
#[must_use]
pub const fn carried(count: u32) -> bool {
    count <= MAX_COUNT
}

/// Whether a byte array of `len` bytes is carried.
#[must_use]
pub const fn carried_bytes(len: u32) -> bool {
    len <= MAX_BYTES
}

/// Why a payload could not be read or written.
///
/// Kept to plain data with no errno of its own so that each daemon decides
/// the mapping: [`WireError::Size`] is the client's fault (`EINVAL`, as the
/// kernel answers a malformed argument); [`WireError::TooMany`] is an array
/// too large to carry (`ENOMEM`, as Linux's allocation of it fails);
/// [`WireError::Layout`] is a bug in the daemon itself (log it; `EFAULT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The payload is not as long as its header and counts say it must be.
    ///
    /// `expected` is the length the parts declared so far need — a minimum
    /// while parsing, the exact length from [`Payload::finish`].
    Size {
        /// The length the payload must have.
        expected: usize,
        /// The length it has.
        got: usize,
    },
    /// A client-supplied count exceeds [`MAX_COUNT`] (or [`MAX_BYTES`], or
    /// overflows `usize` once multiplied by the element size): the array
    /// was not carried.
    TooMany {
        /// The count the client sent.
        count: u32,
        /// The largest count accepted.
        max: u32,
    },
    /// The daemon asked to write something the parsed layout does not
    /// contain (no header read, an undeclared array, a different element
    /// size, more values than the array holds).
    Layout {
        /// Which rule was broken, for the log.
        reason: &'static str,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Size { expected, got } => {
                write!(f, "payload is {got} bytes, expected {expected}")
            }
            Self::TooMany { count, max } => {
                write!(f, "array count {count} exceeds the limit of {max}")
            }
            Self::Layout { reason } => write!(f, "payload layout misuse: {reason}"),
        }
    }
}

impl core::error::Error for WireError {}

/// The `nr` of a Linux ioctl request number, as it appears in metadata
/// word 0 of the scheme call.
///
/// Clients that intercept Linux request numbers (the LD_PRELOAD shim) need
/// exactly the conversion relibc applies, and the constants in this crate
/// are checked against it at compile time.
#[must_use]
pub const fn nr_of(request: u32) -> u64 {
    (request & 0xff) as u64
}

/// Whether `request` is a Linux DRM request number (type `'d'`) for `nr`
/// with a `size`-byte argument, for the compile-time checks of the `IOC_*`
/// constants: a typo in one of them would make the LD_PRELOAD shim miss or
/// misroute an ioctl silently.
pub(crate) const fn is_drm_request(request: u32, nr: u64, size: usize) -> bool {
    nr_of(request) == nr
        && (request >> 8) & 0xff == b'd' as u32
        && (request >> 16) & 0x3fff == size as u32
}

/// Where one declared array sits in the payload.
#[derive(Debug, Clone, Copy)]
struct Span {
    offset: usize,
    count: usize,
    elem: usize,
}

/// A scheme call's payload, parsed front to back and written back in place.
///
/// Parsing is a cursor: [`Payload::header`] reads the leading struct, then
/// each array method declares the next array (in the ioctl struct's pointer
/// declaration order) and moves past it. [`Payload::finish`] then insists
/// that nothing is left over, because a length mismatch means the client
/// packed a different struct version or a different ioctl. OUT values are
/// written back with [`Payload::set_header`] and [`Payload::set_array`],
/// addressed by the array's declaration index, so a reply can only touch
/// bytes the layout accounts for.
#[derive(Debug)]
pub struct Payload<'a> {
    bytes: &'a mut [u8],
    header_len: Option<usize>,
    cursor: usize,
    arrays: Vec<Span>,
}

impl<'a> Payload<'a> {
    /// Wraps a call's payload; nothing is read yet.
    #[must_use]
    pub fn new(bytes: &'a mut [u8]) -> Self {
        Self {
            bytes,
            header_len: None,
            cursor: 0,
            arrays: Vec::new(),
        }
    }

    /// The payload's length in bytes, for error reports and size checks.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the payload is empty (ioctls without an argument).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Reads the header struct at offset 0 and places the cursor after it.
    ///
    /// Must come first: arrays are laid out after the header, so a header
    /// read later would leave the cursor meaningless.
    ///
    /// # Errors
    ///
    /// [`WireError::Size`] if the payload is shorter than `T`;
    /// [`WireError::Layout`] if a header or array was already read.
    pub fn header<T: FromBytes>(&mut self) -> Result<T, WireError> {
        if self.header_len.is_some() || self.cursor != 0 {
            return Err(WireError::Layout {
                reason: "the header must be read first and once",
            });
        }
        let size = size_of::<T>();
        let (value, _) = T::read_from_prefix(self.bytes).map_err(|_| WireError::Size {
            expected: size,
            got: self.bytes.len(),
        })?;
        self.header_len = Some(size);
        self.cursor = size;
        Ok(value)
    }

    /// Reads the next array of `count` elements of `T`.
    ///
    /// # Errors
    ///
    /// [`WireError::TooMany`] for a count above [`MAX_COUNT`];
    /// [`WireError::Size`] if the payload ends before the array does;
    /// [`WireError::Layout`] for a zero-sized `T`.
    pub fn array<T: FromBytes>(&mut self, count: u32) -> Result<Vec<T>, WireError> {
        let span = self.declare(count, size_of::<T>())?;
        let end = span.offset + span.count * span.elem;
        let mut values = Vec::with_capacity(span.count);
        for chunk in self.bytes[span.offset..end].chunks_exact(span.elem) {
            let value = T::read_from_bytes(chunk).map_err(|_| WireError::Layout {
                reason: "array element does not fill its chunk",
            })?;
            values.push(value);
        }
        Ok(values)
    }

    /// Reads the next array as `u32`s (syncobj handles).
    ///
    /// # Errors
    ///
    /// As [`Payload::array`].
    pub fn u32s(&mut self, count: u32) -> Result<Vec<u32>, WireError> {
        self.array(count)
    }

    /// Reads the next array as `u64`s (timeline points).
    ///
    /// # Errors
    ///
    /// As [`Payload::array`].
    pub fn u64s(&mut self, count: u32) -> Result<Vec<u64>, WireError> {
        self.array(count)
    }

    /// Declares the next array as `count` raw bytes without copying it, and
    /// returns its index for [`Payload::array_bytes`] and
    /// [`Payload::set_array`].
    ///
    /// Byte arrays (EXECBUFFER command streams, blob commands) are capped
    /// at [`MAX_BYTES`], not [`MAX_COUNT`]: nothing is allocated here (the
    /// bytes are already in the payload), and Mesa's virgl command buffers
    /// alone reach 260 KiB.
    ///
    /// # Errors
    ///
    /// [`WireError::TooMany`] above [`MAX_BYTES`] (the array was not
    /// carried); [`WireError::Size`] if the payload ends before the array
    /// does.
    pub fn bytes(&mut self, count: u32) -> Result<usize, WireError> {
        self.declare_within(count, 1, MAX_BYTES)?;
        Ok(self.arrays.len() - 1)
    }

    /// Borrows the bytes of the array declared at `index`, so a large array
    /// (a command stream) is copied once, straight to where it is needed.
    ///
    /// # Errors
    ///
    /// [`WireError::Layout`] if no array was declared at `index`.
    pub fn array_bytes(&self, index: usize) -> Result<&[u8], WireError> {
        let span = self.arrays.get(index).ok_or(WireError::Layout {
            reason: "no array declared at that index",
        })?;
        Ok(&self.bytes[span.offset..span.offset + span.count * span.elem])
    }

    /// Declares the next array without reading it, for OUT-only arrays
    /// (QUERY points, FILE_INFO fences) whose input bytes are meaningless.
    ///
    /// Returns the array's index for [`Payload::set_array`].
    ///
    /// # Errors
    ///
    /// As [`Payload::array`].
    pub fn skip_array<T>(&mut self, count: u32) -> Result<usize, WireError> {
        self.declare(count, size_of::<T>())?;
        Ok(self.arrays.len() - 1)
    }

    /// Checks that the header and arrays read so far cover the payload
    /// exactly.
    ///
    /// # Errors
    ///
    /// [`WireError::Size`] with the exact expected length when bytes are
    /// left over.
    pub fn finish(&self) -> Result<(), WireError> {
        if self.cursor == self.bytes.len() {
            Ok(())
        } else {
            Err(WireError::Size {
                expected: self.cursor,
                got: self.bytes.len(),
            })
        }
    }

    /// Writes the header back (OUT fields such as `first_signaled` or a new
    /// handle).
    ///
    /// # Errors
    ///
    /// [`WireError::Layout`] unless a header of the same size was read.
    pub fn set_header<T: IntoBytes + Immutable>(&mut self, value: &T) -> Result<(), WireError> {
        if self.header_len != Some(size_of::<T>()) {
            return Err(WireError::Layout {
                reason: "set_header needs a header of the same size read first",
            });
        }
        value
            .write_to_prefix(self.bytes)
            .map_err(|_| WireError::Layout {
                reason: "header does not fit the payload",
            })
    }

    /// Writes `values` over the start of the array declared at `index`
    /// (0 = the first array after the header).
    ///
    /// Fewer values than the array's count are allowed — FILE_INFO fills
    /// only as many fences as the file has — and leave the rest untouched.
    ///
    /// # Errors
    ///
    /// [`WireError::Layout`] if no array was declared at `index`, its
    /// element size differs from `T`'s, or `values` is longer than it.
    pub fn set_array<T: IntoBytes + Immutable>(
        &mut self,
        index: usize,
        values: &[T],
    ) -> Result<(), WireError> {
        let span = *self.arrays.get(index).ok_or(WireError::Layout {
            reason: "no array declared at that index",
        })?;
        if span.elem != size_of::<T>() {
            return Err(WireError::Layout {
                reason: "element size differs from the declared array's",
            });
        }
        if values.len() > span.count {
            return Err(WireError::Layout {
                reason: "more values than the array holds",
            });
        }
        let src = values.as_bytes();
        self.bytes[span.offset..span.offset + src.len()].copy_from_slice(src);
        Ok(())
    }

    /// Writes `u64`s into the array at `index` (QUERY's OUT points).
    ///
    /// # Errors
    ///
    /// As [`Payload::set_array`].
    pub fn set_u64s(&mut self, index: usize, values: &[u64]) -> Result<(), WireError> {
        self.set_array(index, values)
    }

    /// Validates the next array's extent and records it.
    fn declare(&mut self, count: u32, elem: usize) -> Result<Span, WireError> {
        self.declare_within(count, elem, MAX_COUNT)
    }

    /// [`Payload::declare`] with the count capped at `max` instead of
    /// [`MAX_COUNT`].
    fn declare_within(&mut self, count: u32, elem: usize, max: u32) -> Result<Span, WireError> {
        if elem == 0 {
            return Err(WireError::Layout {
                reason: "zero-sized array elements",
            });
        }
        let too_many = WireError::TooMany { count, max };
        if count > max {
            // Not carried: the next array starts where this one would.
            return Err(too_many);
        }
        let n = usize::try_from(count).map_err(|_| too_many)?;
        let end = n
            .checked_mul(elem)
            .and_then(|len| self.cursor.checked_add(len))
            .ok_or(too_many)?;
        if end > self.bytes.len() {
            return Err(WireError::Size {
                expected: end,
                got: self.bytes.len(),
            });
        }
        let span = Span {
            offset: self.cursor,
            count: n,
            elem,
        };
        self.arrays.push(span);
        self.cursor = end;
        Ok(span)
    }
}

/// Packs a payload the way relibc's `define_ioctl_data!` does, for client
/// libraries (the LD_PRELOAD shim) and tests, so both sides of the wire
/// share one definition of its shape.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    bytes: Vec<u8>,
}

impl Builder {
    /// Starts a payload with its header struct.
    #[must_use]
    pub fn new<T: IntoBytes + Immutable>(header: &T) -> Self {
        Self {
            bytes: header.as_bytes().to_vec(),
        }
    }

    /// Appends the next array, packed with no alignment padding.
    #[must_use]
    pub fn array<T: IntoBytes + Immutable>(mut self, values: &[T]) -> Self {
        self.bytes.extend_from_slice(values.as_bytes());
        self
    }

    /// Appends `count` zeroed elements of `T`: what relibc sends for a NULL
    /// array pointer, and room for an OUT-only array.
    #[must_use]
    pub fn zeroed<T>(mut self, count: usize) -> Self {
        let len = count.saturating_mul(size_of::<T>());
        self.bytes.resize(self.bytes.len().saturating_add(len), 0);
        self
    }

    /// The finished payload.
    #[must_use]
    pub fn build(self) -> Vec<u8> {
        self.bytes
    }
}
