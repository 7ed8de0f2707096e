//! The filter's memory allocator on `wasm32`: blocks of up to 1 KiB come from per-size free lists, everything
//! else from the system allocator (wasi-libc's dlmalloc).
//!
//! Why: a filter allocates a dozen small blocks per request (its context, keys, header values, the values the
//! host returns) and frees them when the request ends. dlmalloc spent about 180 instructions on each
//! allocate-free pair: 2.6k of the 8.7k the quota filter's guest code cost per request (docs/benchmarks.md,
//! "Quota filter: where its cost went"); a free-list pop or push is a handful.
//!
//! How: seven size classes (16, 32, ..., 1024 bytes, 16-byte aligned). A freed small block goes onto its class's
//! list and is handed out again for the next request of that class; a list grows only to the most blocks of its
//! class alive at once, so a steady filter reaches a fixed footprint (wasm memory never shrinks anyway). A block
//! in one class's list does not serve another class: a filter that once held thousands of 32-byte blocks keeps
//! them for later 32-byte requests. Larger or more aligned blocks go to dlmalloc untouched.
//!
//! `wasm32-wasip1` runs one thread, so the lists need no lock. A filter that wants another allocator turns this
//! one off with `default-features = false` on `weir-sdk` and declares its own `#[global_allocator]`.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr::null_mut;

/// The smallest class, as a power of two (16 bytes: a free block holds the next pointer).
const MIN_SHIFT: u32 = 4;
/// Number of classes: 16 to 1024 bytes.
const CLASSES: usize = 7;
/// The largest block served from the lists.
const MAX_SMALL: usize = 16 << (CLASSES - 1);
/// The alignment of every small block.
const ALIGN: usize = 16;

/// Free lists in front of [`System`].
pub struct SmallBlocks {
    /// Head of each class's list; each free block starts with the address of the next.
    free: UnsafeCell<[*mut u8; CLASSES]>,
}

// SAFETY: the allocator is only installed on wasm32-wasip1, which runs a single thread: the lists are never
// touched from two threads.
unsafe impl Sync for SmallBlocks {}

impl SmallBlocks {
    /// Empty lists.
    pub const fn new() -> SmallBlocks {
        SmallBlocks { free: UnsafeCell::new([null_mut(); CLASSES]) }
    }
}

impl Default for SmallBlocks {
    fn default() -> SmallBlocks {
        SmallBlocks::new()
    }
}

/// The class serving `layout`, if a small block can.
fn class(layout: Layout) -> Option<usize> {
    if layout.size() > MAX_SMALL || layout.align() > ALIGN {
        return None;
    }
    let size = layout.size().max(1 << MIN_SHIFT);
    Some((usize::BITS - (size - 1).leading_zeros() - MIN_SHIFT) as usize)
}

/// The block size of class `c`.
fn block(c: usize) -> Layout {
    // 16 << c is a power of two at most MAX_SMALL, aligned to ALIGN: always a valid layout.
    Layout::from_size_align(16 << c, ALIGN).unwrap_or(Layout::new::<u128>())
}

// SAFETY: small blocks are System blocks of their class's size and alignment, which cover every layout the class
// serves; a block is on at most one list, and only while it is free.
unsafe impl GlobalAlloc for SmallBlocks {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(c) = class(layout) else {
            // SAFETY: forwarded unchanged.
            return unsafe { System.alloc(layout) };
        };
        // SAFETY: single-threaded (see `Sync`); no other reference to the lists is alive.
        let free = unsafe { &mut *self.free.get() };
        let head = free[c];
        if head.is_null() {
            // SAFETY: a non-zero size.
            return unsafe { System.alloc(block(c)) };
        }
        // SAFETY: a free block of this class starts with the next block's address (written by `dealloc`).
        free[c] = unsafe { head.cast::<*mut u8>().read() };
        head
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if class(layout).is_none() {
            // SAFETY: forwarded unchanged (calloc skips the clearing of fresh memory).
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: `alloc` returns a block of at least `layout.size()` bytes, or null.
        unsafe {
            let ptr = self.alloc(layout);
            if !ptr.is_null() {
                ptr.write_bytes(0, layout.size());
            }
            ptr
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(c) = class(layout) else {
            // SAFETY: a large block came from System with this layout.
            return unsafe { System.dealloc(ptr, layout) };
        };
        // SAFETY: single-threaded; the block is at least 16 bytes and 16-byte aligned, and the caller gives it up.
        unsafe {
            let free = &mut *self.free.get();
            ptr.cast::<*mut u8>().write(free[c]);
            free[c] = ptr;
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size`, rounded up to `layout.align()`, does not overflow.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class(layout), class(new)) {
            (Some(a), Some(b)) if a == b => ptr,
            // SAFETY: both large: the block came from System with `layout`.
            (None, None) => unsafe { System.realloc(ptr, layout, new_size) },
            // SAFETY: a fresh block, the old one's bytes that fit, then the old one freed.
            _ => unsafe {
                let moved = self.alloc(new);
                if !moved.is_null() {
                    ptr.copy_to_nonoverlapping(moved, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                moved
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_their_sizes() {
        // (size, align, class)
        let table: &[(usize, usize, Option<usize>)] = &[
            (0, 1, Some(0)),
            (1, 1, Some(0)),
            (16, 8, Some(0)),
            (17, 1, Some(1)),
            (32, 16, Some(1)),
            (33, 4, Some(2)),
            (1000, 8, Some(6)),
            (1024, 1, Some(6)),
            (1025, 1, None),
            (64, 32, None),
        ];
        for &(size, align, want) in table {
            let layout = Layout::from_size_align(size, align).expect("layout");
            assert_eq!(class(layout), want, "{size} bytes aligned {align}");
            if let Some(c) = want {
                assert!(block(c).size() >= size && block(c).align() >= align);
            }
        }
    }

    #[test]
    fn freed_blocks_are_reused_and_contents_survive_reallocation() {
        let blocks = SmallBlocks::new();
        let small = Layout::from_size_align(24, 8).expect("layout");
        // SAFETY: each pointer is used within its layout and freed once with it.
        unsafe {
            let a = blocks.alloc(small);
            let b = blocks.alloc(small);
            assert!(!a.is_null() && !b.is_null() && a != b);
            blocks.dealloc(a, small);
            assert_eq!(blocks.alloc(small), a, "the last freed block of the class comes back first");
            let zeroed = blocks.alloc_zeroed(small);
            assert!((0..24).all(|i| *zeroed.add(i) == 0));
            blocks.dealloc(zeroed, small);
            // Within the class the block stays; across classes and into System the bytes move along.
            a.copy_from_nonoverlapping(b"0123456789abcdefghijklmn".as_ptr(), 24);
            let same = blocks.realloc(a, small, 30);
            assert_eq!(same, a, "24 and 30 bytes share the 32-byte class");
            let bigger = blocks.realloc(same, Layout::from_size_align(30, 8).expect("layout"), 4000);
            assert_eq!(std::slice::from_raw_parts(bigger, 24), b"0123456789abcdefghijklmn");
            let back = blocks.realloc(bigger, Layout::from_size_align(4000, 8).expect("layout"), 10);
            assert_eq!(std::slice::from_raw_parts(back, 10), b"0123456789");
            blocks.dealloc(back, Layout::from_size_align(10, 8).expect("layout"));
            blocks.dealloc(b, small);
        }
    }
}
