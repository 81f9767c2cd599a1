//! A zeroed table, in transparent huge pages where the system allows.
//!
//! A counter table for a million keys spans some 18 MB. In 4 KiB pages nearly every check
//! on it misses the TLB and walks the page table before it reaches its slot; in 2 MiB pages
//! the whole table needs a few entries. Linux gives huge pages only to memory advised for
//! them (its usual `madvise` setting), and only if advised before the memory is first
//! touched, which a table built through the global allocator is not. So a large table is
//! mapped here directly, advised, and left untouched: anonymous memory reads as zeros,
//! which must be each value's empty state. Untouched, it also takes memory only as keys
//! come to its pages, where a table built value by value is resident whole from the start.
#![allow(unsafe_code)]

use std::ops::Deref;
use std::ptr::NonNull;

/// The huge page size on x86-64 (and aarch64 with 4 KiB pages).
#[cfg(target_os = "linux")]
const HUGE_PAGE: usize = 2 << 20;

/// A type for which all-zero bytes are a valid value.
///
/// # Safety
/// Every field, at every depth, must read all-zero bytes as a valid value: integers,
/// atomic integers, and types whose layout says so (each `impl` says why).
pub(super) unsafe trait Zeroable: Send + Sync {}

/// A fixed-size table of `T`, every value zeros when made.
pub(super) struct Table<T: Zeroable> {
    ptr: NonNull<T>,
    len: usize,
    /// The size of the mapping when the table is one; 0 when it is a boxed slice.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    mapped: usize,
}

// SAFETY: the table owns its values, which are `Send` as `Zeroable` requires: sending the
// table sends them.
unsafe impl<T: Zeroable> Send for Table<T> {}
// SAFETY: the table owns its values, which are `Sync` as `Zeroable` requires: sharing the
// table shares them.
unsafe impl<T: Zeroable> Sync for Table<T> {}

impl<T: Zeroable> Table<T> {
    /// `len` values, made by `zero` where the table is too small for a huge page.
    pub fn zeroed(len: usize, zero: impl Fn() -> T) -> Self {
        #[cfg(target_os = "linux")]
        if let Some((ptr, mapped)) = map::<T>(len) {
            return Table { ptr, len, mapped };
        }
        let values: Box<[T]> = (0..len).map(|_| zero()).collect();
        Table {
            ptr: NonNull::from(Box::leak(values)).cast(),
            len,
            mapped: 0,
        }
    }
}

/// A fresh mapping for `len` values of `T`, advised for huge pages, if it fills one.
#[cfg(target_os = "linux")]
fn map<T>(len: usize) -> Option<(NonNull<T>, usize)> {
    let size = len.checked_mul(std::mem::size_of::<T>())?;
    if size < HUGE_PAGE || std::mem::align_of::<T>() > 4096 {
        return None;
    }
    // Whole huge pages, so that the kernel places the mapping on a huge page boundary.
    let bytes = size.checked_next_multiple_of(HUGE_PAGE)?;
    // SAFETY: a new private anonymous mapping, which nothing else refers to.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the range is the mapping just made. Should the advice be refused, the table
    // works the same in small pages.
    unsafe { libc::madvise(ptr, bytes, libc::MADV_HUGEPAGE) };
    Some((NonNull::new(ptr.cast())?, bytes))
}

#[cfg(test)]
impl<T: Zeroable> Table<T> {
    /// Whether the table is a mapping rather than a boxed slice.
    pub fn is_mapped(&self) -> bool {
        self.mapped > 0
    }
}

impl<T: Zeroable> Deref for Table<T> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` holds `len` initialised values (a mapping's zeros are valid `T`s, as
        // `Zeroable` requires) for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> Drop for Table<T> {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if self.mapped > 0 {
            let values = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
            // SAFETY: the values are initialised and ours, and dropped once: the mapping
            // goes next. The mapping is ours, and no reference into it outlives `self`.
            unsafe {
                if std::mem::needs_drop::<T>() {
                    std::ptr::drop_in_place(values);
                }
                libc::munmap(self.ptr.as_ptr().cast(), self.mapped);
            }
            return;
        }
        // SAFETY: `ptr` and `len` came from the boxed slice leaked in `zeroed`.
        drop(unsafe {
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.ptr.as_ptr(),
                self.len,
            ))
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)]
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    struct Word(AtomicU64);
    // SAFETY: one atomic integer.
    unsafe impl Zeroable for Word {}

    fn check(len: usize) -> usize {
        let t = Table::zeroed(len, || Word(AtomicU64::new(0)));
        assert_eq!(t.len(), len);
        assert!(t.iter().all(|w| w.0.load(Ordering::Relaxed) == 0));
        for (i, w) in t.iter().enumerate().step_by(4093) {
            w.0.store(i as u64 + 1, Ordering::Relaxed);
        }
        for (i, w) in t.iter().enumerate() {
            let want = if i % 4093 == 0 { i as u64 + 1 } else { 0 };
            assert_eq!(w.0.load(Ordering::Relaxed), want);
        }
        t.mapped
    }

    #[test]
    fn a_small_table_is_a_boxed_slice() {
        assert_eq!(check(0), 0);
        assert_eq!(check(1000), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_table_of_a_huge_page_or_more_is_mapped_in_whole_huge_pages() {
        assert_eq!(check(HUGE_PAGE / 8), HUGE_PAGE);
        assert_eq!(check(HUGE_PAGE / 8 + 1), 2 * HUGE_PAGE);
    }

    #[test]
    fn dropping_a_table_drops_each_value_once() {
        static DROPS: AtomicU64 = AtomicU64::new(0);
        struct Counted(#[allow(dead_code)] AtomicU64);
        // SAFETY: one atomic integer.
        unsafe impl Zeroable for Counted {}
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut total = 0;
        for len in [1000, 2 << 20] {
            let t = Table::zeroed(len, || Counted(AtomicU64::new(0)));
            assert_eq!(t.is_mapped(), len > 1000 && cfg!(target_os = "linux"));
            drop(t);
            total += len as u64;
            assert_eq!(DROPS.load(Ordering::Relaxed), total);
        }
    }
}
