//! Counts the bytes allocated inside [`counted`], so a target can check
//! that a decoder allocates no more than its input justifies (a hostile
//! count must never turn into a huge allocation). Installed as the global
//! allocator of every target; outside `counted` it only forwards.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting while [`counted`] runs.
pub struct Counting;

thread_local! {
    /// Bytes allocated since counting started, if it is on.
    static COUNT: Cell<Option<usize>> = const { Cell::new(None) };
}

fn add(n: usize) {
    // `try_with`: allocations while the thread-local is torn down.
    let _ = COUNT.try_with(|c| {
        if let Some(total) = c.get() {
            c.set(Some(total.saturating_add(n)));
        }
    });
}

// SAFETY: every call is forwarded to `System` unchanged; the count is a
// side effect that allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f`, returning its result and the bytes it allocated (reallocations
/// count their whole new size). Nested calls count into the outer one.
pub fn counted<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let outer = COUNT.with(|c| c.replace(Some(0)));
    let r = f();
    let n = COUNT.with(|c| c.replace(outer)).unwrap_or(0);
    if let Some(total) = outer {
        COUNT.with(|c| c.set(Some(total.saturating_add(n))));
    }
    (r, n)
}
