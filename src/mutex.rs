//! The one helper for std mutexes: take the guard even when another thread panicked while
//! holding it (every value guarded in this crate stays consistent between statements).

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Lock `m`, recovering the guard from a poisoned mutex.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
