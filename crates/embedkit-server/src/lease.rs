//! The cores as units leased to running batches: a batch takes one (a single-threaded
//! session) or all of them, waits until they are free, and gives them back when its
//! `Held` is dropped, a panic included.

use std::sync::{Condvar, Mutex, MutexGuard};

/// The cores, as units leased to running batches (see the batcher's notes).
pub(crate) struct Lease {
    pub units: usize,
    free: Mutex<usize>,
    freed: Condvar,
}

/// Units held by a running batch, given back when dropped (a panic included).
pub(crate) struct Held<'a> {
    lease: &'a Lease,
    pub n: usize,
}

impl Lease {
    pub fn new(units: usize) -> Lease {
        Lease {
            units,
            free: Mutex::new(units),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn free(&self) -> usize {
        *self.lock()
    }

    /// Waits until `n` units are free and takes them.
    pub fn take(&self, n: usize) -> Held<'_> {
        let n = n.clamp(1, self.units);
        let mut free = self.lock();
        while *free < n {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= n;
        Held { lease: self, n }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        *self.lease.lock() += self.n;
        self.lease.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_come_back_when_dropped_even_by_a_panic_and_waiters_get_them() {
        let lease = Lease::new(2);
        let all = lease.take(5);
        assert_eq!((all.n, lease.free()), (2, 0), "clamped to the units");
        std::thread::scope(|s| {
            // Waits for a unit until `all` is dropped below.
            let waiter = s.spawn(|| lease.take(1).n);
            drop(all);
            assert_eq!(waiter.join().unwrap(), 1);
        });
        assert_eq!(lease.free(), 2);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _held = lease.take(1);
            panic!("inference failed");
        }));
        assert!(panicked.is_err());
        assert_eq!(lease.free(), 2);
    }
}
