//! Fork-join thread teams for trueno's multi-threaded kernels. The f32/f64 GEMM
//! ([`crate::matmul`]) and realizar's LLM run on them; `lowp` and `f16` still spawn
//! scoped threads per call and are the next to move here.
//!
//! Spawning OS threads per call costs tens of microseconds (more in a VM), as much as a
//! whole 256^3 product on one core, and a sleeping thread takes about as long to wake.
//! A [`Team`] keeps `threads - 1` workers alive: after each job a worker spins for
//! [`SPIN`] waiting for the next one (products called back to back, a model's layers,
//! a decode step's matrices) and then parks on a condition variable, so an idle process
//! uses no CPU after that. The calling thread always runs part 0 itself.
//!
//! [`run`] runs a job on the process-wide team (grown on demand up to [`team_limit`]).
//! Only one job uses it at a time: a caller that finds it busy (another thread's
//! product, or a nested call from inside a job) runs its parts on scoped threads
//! instead, so concurrent callers never wait for each other and nothing can deadlock.
//!
//! A panic in any part is re-raised in the caller once every part has finished; the
//! team stays usable.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type Job = dyn Fn(usize) + Sync;

/// How long an idle worker spins for the next job before it parks.
pub const SPIN: Duration = Duration::from_micros(300);

/// The largest team [`run`] keeps, whatever the CPU count; larger jobs run on scoped
/// threads.
pub const MAX_THREADS: usize = 64;

/// The largest team [`run`] keeps here: one thread per CPU (at most [`MAX_THREADS`]).
/// More parts than CPUs would only take turns on them, and idle workers must not spin
/// on CPUs another part needs.
pub fn team_limit() -> usize {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS)
    })
}

/// A published job: the caller's closure with its lifetime erased, valid until every
/// worker it names has reported its part done ([`Team::run`] waits for that).
#[derive(Clone, Copy)]
struct JobPtr(*const Job, Option<usize>);
// SAFETY: the pointee is `Sync` and outlives every use (see above).
unsafe impl Send for JobPtr {}

/// One worker's doorbell: the caller bumps `epoch` for the workers a job needs only, so
/// a two-part job on a big team wakes one worker, not all of them.
struct Slot {
    epoch: AtomicU64,
    sleeping: AtomicBool,
    lock: Mutex<()>,
    bell: Condvar,
}

struct Shared {
    slots: Vec<Slot>,
    /// Parts not yet finished by workers.
    pending: AtomicUsize,
    quit: AtomicBool,
    panicked: AtomicBool,
    job: Mutex<Option<JobPtr>>,
}

/// `threads - 1` workers plus the calling thread.
pub struct Team {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Team {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Team({} threads)", self.threads())
    }
}

/// Spin (then yield) until `ready`, or until `deadline`: for the caller waiting on its
/// workers, and for workers within their [`SPIN`] window. Yielding every few thousand
/// rounds keeps a waiter from starving, on a loaded machine, the very thread it waits for.
fn spin_until(mut ready: impl FnMut() -> bool, deadline: Option<Instant>) -> bool {
    let mut n = 0u32;
    while !ready() {
        n = n.wrapping_add(1);
        if n.is_multiple_of(4096) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    true
}

/// The CPU this thread runs on, where the OS says.
fn current_cpu() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sched_getcpu has no arguments and no preconditions.
        let cpu = unsafe { libc::sched_getcpu() };
        usize::try_from(cpu).ok()
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Move this thread off `cpu` (the caller's): allow every CPU of its affinity mask but
/// that one, which migrates it at once, then restore the mask.
///
/// Why: a worker woken from its park can be placed on the CPU of the thread that woke
/// it even with another CPU idle, and the two then share one core for the whole job
/// (and, both busy, for the jobs after it): on the 2026-12-03 Xeon (2 vCPUs) a two-thread
/// 1024^3 product took 10-14 ms that way against 5.6 ms apart, at random after an idle
/// pause. A no-op when the mask has no other CPU or the calls fail.
fn move_off(cpu: Option<usize>) {
    #[cfg(target_os = "linux")]
    if let Some(cpu) = cpu {
        // SAFETY: cpu_set_t is plain data; the calls read and write only the set passed,
        // for this thread (pid 0), and report failure through their return value.
        unsafe {
            let mut mask: libc::cpu_set_t = std::mem::zeroed();
            let size = std::mem::size_of::<libc::cpu_set_t>();
            if cpu >= 8 * size || libc::sched_getaffinity(0, size, &mut mask) != 0 {
                return;
            }
            let mut others = mask;
            libc::CPU_CLR(cpu, &mut others);
            if libc::CPU_COUNT(&others) == 0 {
                return;
            }
            if libc::sched_setaffinity(0, size, &others) == 0 {
                libc::sched_setaffinity(0, size, &mask);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cpu;
}

fn worker(sh: &Shared, idx: usize) {
    let slot = &sh.slots[idx - 1];
    let mut seen = 0u64;
    loop {
        let fresh = || sh.quit.load(Ordering::SeqCst) || slot.epoch.load(Ordering::SeqCst) != seen;
        if !spin_until(fresh, Some(Instant::now() + SPIN)) {
            // Park. `sleeping` is raised before the epoch is read again under the lock,
            // and the caller bumps the epoch before it reads `sleeping` (both SeqCst), so
            // either the caller sees this sleeper and rings, or this worker sees the job.
            let mut guard = slot.lock.lock().unwrap_or_else(|e| e.into_inner());
            slot.sleeping.store(true, Ordering::SeqCst);
            while !fresh() {
                guard = slot.bell.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
            slot.sleeping.store(false, Ordering::SeqCst);
            drop(guard);
        }
        if sh.quit.load(Ordering::SeqCst) {
            return;
        }
        seen = slot.epoch.load(Ordering::SeqCst);
        let job = *sh.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(JobPtr(p, caller_cpu)) = job {
            if caller_cpu.is_some() && current_cpu() == caller_cpu {
                move_off(caller_cpu);
            }
            // SAFETY: `Team::run` keeps the closure alive until `pending` reaches zero,
            // which happens only after this call returns.
            let f = unsafe { &*p };
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(idx))).is_err() {
                sh.panicked.store(true, Ordering::Release);
            }
        }
        sh.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Team {
    /// A team of `threads` (at least 1: the caller alone); spawns `threads - 1` workers.
    pub fn new(threads: usize) -> Team {
        let shared = Arc::new(Shared {
            slots: (1..threads.max(1))
                .map(|_| Slot {
                    epoch: AtomicU64::new(0),
                    sleeping: AtomicBool::new(false),
                    lock: Mutex::new(()),
                    bell: Condvar::new(),
                })
                .collect(),
            pending: AtomicUsize::new(0),
            quit: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            job: Mutex::new(None),
        });
        let workers = (1..threads.max(1))
            .map(|idx| {
                let sh = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("trueno-{idx}"))
                    .spawn(move || worker(&sh, idx))
                    .expect("spawn a trueno worker thread")
            })
            .collect();
        Team { shared, workers }
    }

    /// Workers plus the calling thread.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Run `f(i)` for every `i` in `0..parts` (at most [`Team::threads`]), `f(0)` on
    /// this thread, and return when all are done. A panic in any part is re-raised here
    /// after every part has finished.
    pub fn run(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        assert!(
            parts <= self.threads(),
            "{parts} parts on a team of {}",
            self.threads()
        );
        if parts <= 1 {
            if parts == 1 {
                f(0);
            }
            return;
        }
        let sh = &*self.shared;
        // SAFETY: only the lifetime is erased; workers use the pointer strictly before
        // `pending` returns to zero, which is awaited below before `f`'s borrow ends
        // (also when `f(0)` panics: the unwind is caught first).
        let p: *const Job =
            unsafe { std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const Job>(f) };
        *sh.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(JobPtr(p, current_cpu()));
        sh.pending.store(parts - 1, Ordering::SeqCst);
        for slot in &sh.slots[..parts - 1] {
            slot.epoch.fetch_add(1, Ordering::SeqCst);
            if slot.sleeping.load(Ordering::SeqCst) {
                let _guard = slot.lock.lock().unwrap_or_else(|e| e.into_inner());
                slot.bell.notify_one();
            }
        }
        let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(0)));
        spin_until(|| sh.pending.load(Ordering::Acquire) == 0, None);
        *sh.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let theirs = sh.panicked.swap(false, Ordering::AcqRel);
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        if theirs {
            panic!("a trueno worker thread panicked");
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.quit.store(true, Ordering::SeqCst);
        for slot in &self.shared.slots {
            let _guard = slot.lock.lock().unwrap_or_else(|e| e.into_inner());
            slot.bell.notify_one();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Run `f(i)` for every `i` in `0..parts`, `f(0)` on the calling thread, on the
/// process-wide team when it is free (grown to `parts` threads on first need), else on
/// scoped threads. Returns when every part is done; a panic in a part is re-raised.
pub fn run(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    static TEAM: OnceLock<Mutex<Option<Team>>> = OnceLock::new();
    if parts <= 1 {
        if parts == 1 {
            f(0);
        }
        return;
    }
    if parts <= team_limit()
        && let Ok(mut slot) = TEAM.get_or_init(|| Mutex::new(None)).try_lock()
    {
        if slot.as_ref().is_none_or(|t| t.threads() < parts) {
            // Replace a smaller team (its workers exit) by one big enough.
            *slot = Some(Team::new(parts));
        }
        if let Some(team) = slot.as_ref() {
            team.run(parts, f);
        }
        return;
    }
    std::thread::scope(|s| {
        for i in 1..parts {
            s.spawn(move || f(i));
        }
        f(0);
    });
}

/// A barrier for the parts of one job: spins (then yields) instead of sleeping, since
/// its parties run at the same time and arrive microseconds apart; a futex sleep and
/// wake per crossing would cost more than the work between two crossings.
#[derive(Debug)]
pub struct SpinBarrier {
    parties: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    pub fn new(parties: usize) -> SpinBarrier {
        SpinBarrier {
            parties: parties.max(1),
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    /// Block until all `parties` have called `wait` for this crossing. Memory written
    /// by any party before its `wait` is visible to every party after it.
    pub fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.parties {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::AcqRel);
        } else {
            spin_until(
                || self.generation.load(Ordering::Acquire) != generation,
                None,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once() {
        for parts in [0, 1, 2, 3, 7, MAX_THREADS, MAX_THREADS + 3] {
            let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..20 {
                run(parts, &|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
            }
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 20),
                "{parts}"
            );
        }
    }

    #[test]
    fn part_zero_runs_on_the_caller() {
        let me = std::thread::current().id();
        run(3, &|i| {
            if i == 0 {
                assert_eq!(std::thread::current().id(), me);
            } else {
                assert_ne!(std::thread::current().id(), me);
            }
        });
    }

    #[test]
    fn concurrent_and_nested_callers_all_finish() {
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50 {
                        run(2, &|_| {
                            run(2, &|_| {
                                total.fetch_add(1, Ordering::Relaxed);
                            });
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 4 * 50 * 4);
    }

    #[test]
    fn parked_workers_wake_for_the_next_job() {
        let team = Team::new(3);
        let hits = AtomicUsize::new(0);
        for _ in 0..3 {
            team.run(3, &|_| {
                hits.fetch_add(1, Ordering::Relaxed);
            });
            // Longer than SPIN: the workers park and must be woken.
            std::thread::sleep(SPIN * 4);
        }
        assert_eq!(hits.load(Ordering::Relaxed), 9);
    }

    #[test]
    fn a_panicking_part_is_reraised_and_the_team_survives() {
        let team = Team::new(2);
        for bad in [0, 1] {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                team.run(2, &|i| assert_ne!(i, bad, "part {bad} fails"));
            }));
            assert!(r.is_err(), "part {bad}");
        }
        let hits = AtomicUsize::new(0);
        team.run(2, &|_| {
            hits.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(hits.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn spin_barrier_orders_phases() {
        let parties = 3;
        let bar = SpinBarrier::new(parties);
        let slots: Vec<AtomicUsize> = (0..parties).map(|_| AtomicUsize::new(0)).collect();
        run(parties, &|i| {
            for round in 1..=200 {
                slots[i].store(round, Ordering::Relaxed);
                bar.wait();
                for s in &slots {
                    assert_eq!(s.load(Ordering::Relaxed), round);
                }
                bar.wait();
            }
        });
    }
}
