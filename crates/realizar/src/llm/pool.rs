//! A tiny fork-join team for splitting one matrix product across threads.
//!
//! Decode runs about 200 small products per token, so spawning threads per
//! product (tens of microseconds each) would cost more than the product. A
//! team is made once per generation: the workers wait for the next job and
//! the calling thread runs its own share, then waits for the others. Each
//! generation has its own team, so concurrent generations never queue behind
//! one another's jobs.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

type Job = dyn Fn(usize) + Sync;

/// A published job: a pointer to the caller's closure, valid until every
/// worker has reported it done (see [`Team::run`]).
#[derive(Clone, Copy)]
struct JobPtr(*const Job);
// SAFETY: the pointee is `Sync` and outlives every use (run() waits for all
// workers before returning, i.e. before the borrow it was made from ends).
unsafe impl Send for JobPtr {}

struct Shared {
    epoch: AtomicU64,
    pending: AtomicUsize,
    quit: AtomicBool,
    job: Mutex<Option<JobPtr>>,
    panicked: AtomicBool,
}

/// `threads - 1` workers plus the calling thread.
pub(crate) struct Team {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Team {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Team({} threads)", self.threads())
    }
}

/// Spin this many rounds before yielding the CPU: a decode step's jobs come
/// microseconds apart, but on a loaded machine a spinning waiter must not
/// starve the thread it waits for.
const SPINS: u32 = 20_000;

fn wait_until(mut ready: impl FnMut() -> bool) {
    let mut n = 0u32;
    while !ready() {
        if n < SPINS {
            std::hint::spin_loop();
            n += 1;
        } else {
            std::thread::yield_now();
        }
    }
}

impl Team {
    pub(crate) fn new(threads: usize) -> Team {
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
            quit: AtomicBool::new(false),
            job: Mutex::new(None),
            panicked: AtomicBool::new(false),
        });
        let workers = (1..threads.max(1))
            .map(|idx| {
                let sh = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let mut seen = 0u64;
                    loop {
                        wait_until(|| {
                            sh.quit.load(Ordering::Acquire)
                                || sh.epoch.load(Ordering::Acquire) != seen
                        });
                        if sh.quit.load(Ordering::Acquire) {
                            return;
                        }
                        seen = sh.epoch.load(Ordering::Acquire);
                        let job = *sh.job.lock().unwrap_or_else(|e| e.into_inner());
                        if let Some(JobPtr(p)) = job {
                            // SAFETY: run() keeps the closure alive until
                            // `pending` reaches zero, which happens only after
                            // this call returns.
                            let f = unsafe { &*p };
                            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(idx)))
                                .is_err()
                            {
                                sh.panicked.store(true, Ordering::Release);
                            }
                        }
                        sh.pending.fetch_sub(1, Ordering::AcqRel);
                    }
                })
            })
            .collect();
        Team { shared, workers }
    }

    pub(crate) fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Run `f(i)` for every `i` in `0..threads()`, `f(0)` on this thread, and
    /// return when all are done. A panic in a worker is re-raised here.
    pub(crate) fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        if self.workers.is_empty() {
            f(0);
            return;
        }
        // SAFETY: only the lifetime is erased; the pointer is used by workers
        // strictly before `pending` returns to zero, which we wait for below
        // before `f`'s borrow ends.
        let p: *const Job =
            unsafe { std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const Job>(f) };
        *self.shared.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(JobPtr(p));
        self.shared
            .pending
            .store(self.workers.len(), Ordering::Release);
        self.shared.epoch.fetch_add(1, Ordering::AcqRel);
        let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(0)));
        wait_until(|| self.shared.pending.load(Ordering::Acquire) == 0);
        *self.shared.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        if self.shared.panicked.swap(false, Ordering::AcqRel) {
            panic!("a worker thread panicked while computing a matrix product");
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.quit.store(true, Ordering::Release);
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_share_runs_once_per_job() {
        for threads in 1..=3 {
            let team = Team::new(threads);
            let hits: Vec<AtomicUsize> = (0..threads).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..1000 {
                team.run(&|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
            }
            for h in &hits {
                assert_eq!(h.load(Ordering::Relaxed), 1000);
            }
        }
    }
}
