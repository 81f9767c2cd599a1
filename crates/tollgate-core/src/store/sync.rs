//! The memory store's atomics and locks: std's and parking_lot's, or, built with
//! `--cfg loom`, loom's, under which the tests run the tables' races in every interleaving
//! the C11 memory model allows (see the `loom` tests of `gcra_slots` and `memory`).

#[cfg(not(loom))]
pub(super) use imp::*;
#[cfg(loom)]
pub(super) use model::*;

#[cfg(not(loom))]
mod imp {
    pub use parking_lot::{Mutex, MutexGuard};
    pub use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU64, Ordering};
    pub use std::thread::yield_now;

    pub(in crate::store) use crate::store::huge::Table as Slots;

    /// A pause in a spin-wait.
    pub fn spin() {
        std::hint::spin_loop();
    }
}

#[cfg(loom)]
mod model {
    pub use loom::sync::MutexGuard;
    pub use loom::sync::atomic::{AtomicU8, AtomicU16, AtomicU64, Ordering};
    pub use loom::thread::yield_now;

    /// A plain boxed table: loom's atomics and locks are not valid as zeros.
    pub struct Slots<T>(Box<[T]>);

    impl<T> Slots<T> {
        pub fn zeroed(len: usize, zero: impl Fn() -> T) -> Self {
            Slots((0..len).map(|_| zero()).collect())
        }
    }

    impl<T> std::ops::Deref for Slots<T> {
        type Target = [T];
        fn deref(&self) -> &[T] {
            &self.0
        }
    }

    /// loom's mutex with parking_lot's signatures.
    pub struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }

        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(guard) => Some(guard),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }

    /// A spinning thread must yield for loom to run the others.
    pub fn spin() {
        yield_now();
    }

    /// Runs `theirs` on another thread and `mine` on this one; answers both results.
    #[cfg(test)]
    pub fn race<RA: Send + 'static, RB>(
        theirs: impl FnOnce() -> RA + Send + 'static,
        mine: impl FnOnce() -> RB,
    ) -> (RA, RB) {
        let other = loom::thread::spawn(theirs);
        let mine = mine();
        match other.join() {
            Ok(theirs) => (theirs, mine),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}
