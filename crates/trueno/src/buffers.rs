//! A bounded, process-wide pool of large output buffers.
//!
//! Why: a fresh large output costs more than the kernel writing it. Memory
//! from the system allocator (NumPy's too) is a new mapping, and the first
//! write to each page faults and the kernel zeroes the page: for a 64 MB
//! softmax output that is 4-12 ms of system time next to a 9 ms kernel. A
//! buffer handed back here when its array dies is kept mapped, already
//! faulted, and given to the next request of the same capacity.
//!
//! The rules, as built:
//! - Only requests of at least [`POOL_MIN_BYTES`] (4 MiB) are meant for the
//!   pool; callers allocate smaller outputs as before.
//! - Capacities are rounded up to [`ALIGN`] (2 MiB, the x86-64 huge page),
//!   buffers are 2 MiB-aligned and advised `MADV_HUGEPAGE` before their
//!   first touch (as NumPy does for its large arrays), so a 64 MB buffer is 32
//!   huge pages. A request reuses an idle buffer of exactly its rounded
//!   capacity (the most recently returned one); nothing is split or merged.
//! - The pool holds at most `max_buffers` idle buffers and `max_bytes` idle
//!   bytes; returning a buffer past either bound frees the least recently
//!   returned ones back to the system. A buffer larger than `max_bytes` is
//!   freed on return. Buffers in use are not counted: they belong to their
//!   owner until dropped. [`global`]'s bounds are 4 buffers and
//!   min(1 GiB, physical RAM / 16) bytes; `TRUENO_POOL_BYTES` (read once,
//!   bytes) replaces the byte bound, and 0 turns the pool off ([`Pool::enabled`]).
//! - Thread-safe: one mutex around the idle list, held only to push or pop
//!   (allocation, zeroing and freeing happen outside it).
//!
//! Contents of a buffer are unspecified (a recycled buffer holds the last
//! owner's data): the caller writes every byte it exposes.

use std::alloc::{Layout, alloc, dealloc};
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Requests from this many bytes up go through the pool.
pub const POOL_MIN_BYTES: usize = 4 << 20;
/// Alignment and capacity granule of pooled buffers (one x86-64 huge page).
pub const ALIGN: usize = 2 << 20;
/// Idle buffers [`global`] keeps at most.
pub const GLOBAL_MAX_BUFFERS: usize = 4;
/// Upper limit of [`global`]'s idle bytes (the bound is also at most RAM / 16).
pub const GLOBAL_MAX_BYTES: usize = 1 << 30;

/// One allocation: `capacity` bytes at `ptr`, 2 MiB-aligned.
#[derive(Debug)]
struct Raw {
    ptr: NonNull<u8>,
    capacity: usize,
}

// SAFETY: `Raw` is a uniquely owned heap allocation (like a `Box<[u8]>`); moving it
// to another thread moves that ownership.
unsafe impl Send for Raw {}
// SAFETY: through `&Raw` (and `&Buffer`) only the address and capacity can be read;
// writing through the address is the owner's business, as with `Box<[u8]>`.
unsafe impl Sync for Raw {}

impl Raw {
    fn layout(capacity: usize) -> Layout {
        Layout::from_size_align(capacity, ALIGN).expect("pool capacity overflows a Layout")
    }

    fn allocate(capacity: usize) -> Raw {
        let layout = Raw::layout(capacity);
        // SAFETY: `capacity` is a positive multiple of ALIGN (callers round up a
        // request of at least one byte), so the layout has a non-zero size.
        let ptr = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(ptr) else {
            std::alloc::handle_alloc_error(layout)
        };
        advise_huge_pages(ptr.as_ptr(), capacity);
        Raw { ptr, capacity }
    }

    fn free(self) {
        // SAFETY: allocated by `allocate` with this very layout, freed once (by value).
        unsafe { dealloc(self.ptr.as_ptr(), Raw::layout(self.capacity)) }
    }
}

/// Ask for transparent huge pages on `[ptr, ptr + bytes)` before it is first touched:
/// the page-aligned interior is advised (`madvise(MADV_HUGEPAGE)`, what NumPy does for
/// its large arrays). A refusal (THP disabled, another OS) leaves ordinary pages, which
/// is still correct, only slower. The one home of this advice: the pool's buffers and
/// the machine probe's (`machine.rs`) use it.
pub(crate) fn advise_huge_pages(ptr: *mut u8, bytes: usize) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = (ptr as usize).next_multiple_of(PAGE);
        let end = (ptr as usize).saturating_add(bytes) / PAGE * PAGE;
        if end > start {
            // SAFETY: [start, end) lies inside the caller's live allocation; MADV_HUGEPAGE
            // only changes how the kernel backs those pages, never their contents.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, bytes);
}

/// A buffer of at least the requested size, returned to its pool when dropped.
#[derive(Debug)]
pub struct Buffer {
    raw: Option<Raw>,
    pool: &'static Pool,
    reused: bool,
}

impl Buffer {
    /// Start of the buffer (2 MiB-aligned, valid for [`Buffer::capacity`] bytes).
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.raw
            .as_ref()
            .map_or(std::ptr::null_mut(), |r| r.ptr.as_ptr())
    }

    /// Bytes usable at [`Buffer::as_mut_ptr`]: the request rounded up to [`ALIGN`].
    pub fn capacity(&self) -> usize {
        self.raw.as_ref().map_or(0, |r| r.capacity)
    }

    /// Whether the buffer came from the idle list (already faulted in) rather
    /// than a new allocation.
    pub fn reused(&self) -> bool {
        self.reused
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            self.pool.give_back(raw);
        }
    }
}

/// Counters and bounds of a pool, for introspection and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Idle buffers held now.
    pub idle_buffers: usize,
    /// Bytes of the idle buffers held now.
    pub idle_bytes: usize,
    /// Requests served from the idle list.
    pub hits: u64,
    /// Requests that allocated a new buffer.
    pub misses: u64,
    /// Buffers freed to the system on return (over a bound).
    pub evictions: u64,
    /// Bound on idle buffers.
    pub max_buffers: usize,
    /// Bound on idle bytes.
    pub max_bytes: usize,
}

#[derive(Debug, Default)]
struct Idle {
    /// Oldest returned first.
    list: VecDeque<Raw>,
    bytes: usize,
}

/// A pool of recycled buffers with bounds on what it keeps idle.
#[derive(Debug)]
pub struct Pool {
    idle: Mutex<Idle>,
    max_buffers: AtomicUsize,
    max_bytes: AtomicUsize,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

impl Pool {
    /// An empty pool keeping at most `max_buffers` idle buffers and `max_bytes` idle bytes.
    pub const fn new(max_buffers: usize, max_bytes: usize) -> Pool {
        Pool {
            idle: Mutex::new(Idle {
                list: VecDeque::new(),
                bytes: 0,
            }),
            max_buffers: AtomicUsize::new(max_buffers),
            max_bytes: AtomicUsize::new(max_bytes),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Idle> {
        // The idle list is consistent after any panic (push/pop only): keep going.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the pool keeps anything (both bounds positive).
    pub fn enabled(&self) -> bool {
        self.max_buffers.load(Ordering::Relaxed) > 0 && self.max_bytes.load(Ordering::Relaxed) > 0
    }

    /// A buffer of at least `bytes` (at least 1) bytes: an idle one of the same
    /// rounded capacity if the pool holds one, else a new allocation.
    pub fn take(&'static self, bytes: usize) -> Buffer {
        let capacity = bytes
            .max(1)
            .checked_next_multiple_of(ALIGN)
            .expect("pool request overflows usize");
        let found = {
            let mut idle = self.lock();
            let at = idle.list.iter().rposition(|r| r.capacity == capacity);
            at.and_then(|i| idle.list.remove(i))
                .inspect(|r| idle.bytes -= r.capacity)
        };
        let reused = found.is_some();
        let raw = match found {
            Some(raw) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                raw
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                Raw::allocate(capacity)
            }
        };
        Buffer {
            raw: Some(raw),
            pool: self,
            reused,
        }
    }

    fn give_back(&self, raw: Raw) {
        let evicted = {
            let mut idle = self.lock();
            idle.bytes += raw.capacity;
            idle.list.push_back(raw);
            self.trim(&mut idle)
        };
        self.free_all(evicted);
    }

    /// Pop the least recently returned buffers until both bounds hold.
    fn trim(&self, idle: &mut Idle) -> Vec<Raw> {
        let (max_buffers, max_bytes) = (
            self.max_buffers.load(Ordering::Relaxed),
            self.max_bytes.load(Ordering::Relaxed),
        );
        let mut evicted = Vec::new();
        while idle.list.len() > max_buffers || idle.bytes > max_bytes {
            let Some(old) = idle.list.pop_front() else {
                break;
            };
            idle.bytes -= old.capacity;
            evicted.push(old);
        }
        evicted
    }

    fn free_all(&self, evicted: Vec<Raw>) {
        self.evictions
            .fetch_add(evicted.len() as u64, Ordering::Relaxed);
        evicted.into_iter().for_each(Raw::free);
    }

    /// Replace the bounds (evicting at once what no longer fits); returns the old ones.
    pub fn set_limits(&self, max_buffers: usize, max_bytes: usize) -> (usize, usize) {
        let evicted;
        let old;
        {
            let mut idle = self.lock();
            old = (
                self.max_buffers.swap(max_buffers, Ordering::Relaxed),
                self.max_bytes.swap(max_bytes, Ordering::Relaxed),
            );
            evicted = self.trim(&mut idle);
        }
        self.free_all(evicted);
        old
    }

    /// Counters and bounds now.
    pub fn stats(&self) -> Stats {
        let idle = self.lock();
        Stats {
            idle_buffers: idle.list.len(),
            idle_bytes: idle.bytes,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            max_buffers: self.max_buffers.load(Ordering::Relaxed),
            max_bytes: self.max_bytes.load(Ordering::Relaxed),
        }
    }
}

/// min([`GLOBAL_MAX_BYTES`], physical RAM / 16), or `TRUENO_POOL_BYTES` if set.
fn global_max_bytes() -> usize {
    if let Ok(v) = std::env::var("TRUENO_POOL_BYTES") {
        match v.trim().parse::<usize>() {
            Ok(b) => return b,
            Err(_) => eprintln!(
                "trueno: TRUENO_POOL_BYTES={v:?} is not a byte count; using the default bound"
            ),
        }
    }
    physical_ram().map_or(GLOBAL_MAX_BYTES, |ram| (ram / 16).min(GLOBAL_MAX_BYTES))
}

#[cfg(unix)]
fn physical_ram() -> Option<usize> {
    // SAFETY: sysconf only reads system constants.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let pages = usize::try_from(pages).ok()?;
    let size = usize::try_from(size).ok()?;
    pages.checked_mul(size)
}

#[cfg(not(unix))]
fn physical_ram() -> Option<usize> {
    None
}

/// The process-wide pool (bounds in the module docs).
pub fn global() -> &'static Pool {
    static GLOBAL: OnceLock<Pool> = OnceLock::new();
    GLOBAL.get_or_init(|| Pool::new(GLOBAL_MAX_BUFFERS, global_max_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(max_buffers: usize, max_bytes: usize) -> &'static Pool {
        Box::leak(Box::new(Pool::new(max_buffers, max_bytes)))
    }

    #[test]
    fn capacity_rounds_up_and_aligns() {
        let p = pool(4, 64 << 20);
        for bytes in [1, ALIGN - 1, ALIGN, ALIGN + 1, 5 * ALIGN + 3] {
            let b = p.take(bytes);
            assert!(b.capacity() >= bytes);
            assert_eq!(b.capacity() % ALIGN, 0);
            assert_eq!(b.capacity() - bytes.div_ceil(ALIGN) * ALIGN, 0);
            assert_eq!(b.as_mut_ptr() as usize % ALIGN, 0);
        }
        assert_eq!(p.take(0).capacity(), ALIGN);
    }

    #[test]
    fn reuses_same_capacity_only() {
        let p = pool(4, 64 << 20);
        let a = p.take(POOL_MIN_BYTES);
        assert!(!a.reused());
        let addr = a.as_mut_ptr();
        // SAFETY: the buffer has at least POOL_MIN_BYTES writable bytes.
        unsafe { addr.write_bytes(7, POOL_MIN_BYTES) };
        drop(a);
        assert_eq!(p.stats().idle_buffers, 1);
        // Another capacity: a new allocation, the idle one stays.
        let other = p.take(POOL_MIN_BYTES + ALIGN);
        assert!(!other.reused());
        assert_eq!(p.stats().idle_buffers, 1);
        // Same rounded capacity (a smaller request in the same granule): the idle one.
        let again = p.take(POOL_MIN_BYTES - 100);
        assert!(again.reused());
        assert_eq!(again.as_mut_ptr(), addr);
        // SAFETY: still the same live allocation.
        assert_eq!(unsafe { *addr.add(POOL_MIN_BYTES - 1) }, 7);
        let s = p.stats();
        assert_eq!(
            (s.hits, s.misses, s.idle_buffers, s.idle_bytes),
            (1, 2, 0, 0)
        );
    }

    #[test]
    fn most_recently_returned_first() {
        let p = pool(4, 64 << 20);
        let (a, b) = (p.take(ALIGN), p.take(ALIGN));
        let pb = b.as_mut_ptr();
        drop(a);
        drop(b);
        assert_eq!(p.take(ALIGN).as_mut_ptr(), pb);
    }

    #[test]
    fn buffer_bound_evicts_oldest() {
        let p = pool(2, 64 << 20);
        let bufs: Vec<Buffer> = (0..4).map(|_| p.take(ALIGN)).collect();
        let ptrs: Vec<*mut u8> = bufs.iter().map(Buffer::as_mut_ptr).collect();
        drop(bufs); // returned in order 0, 1, 2, 3: 0 and 1 are evicted
        let s = p.stats();
        assert_eq!(
            (s.idle_buffers, s.idle_bytes, s.evictions),
            (2, 2 * ALIGN, 2)
        );
        let (x, y) = (p.take(ALIGN), p.take(ALIGN));
        assert_eq!((x.as_mut_ptr(), y.as_mut_ptr()), (ptrs[3], ptrs[2]));
    }

    #[test]
    fn byte_bound_evicts_and_oversize_is_freed() {
        let p = pool(8, 3 * ALIGN);
        let big = p.take(4 * ALIGN);
        drop(big); // larger than the byte bound: freed at once
        assert_eq!(p.stats().idle_buffers, 0);
        assert_eq!(p.stats().evictions, 1);
        let (a, b) = (p.take(2 * ALIGN), p.take(2 * ALIGN));
        drop(a);
        drop(b); // 4 granules > 3: the first returned goes
        let s = p.stats();
        assert_eq!(
            (s.idle_buffers, s.idle_bytes, s.evictions),
            (1, 2 * ALIGN, 2)
        );
    }

    #[test]
    fn set_limits_trims_and_zero_disables() {
        let p = pool(4, 64 << 20);
        assert!(p.enabled());
        drop((p.take(ALIGN), p.take(ALIGN), p.take(ALIGN)));
        assert_eq!(p.stats().idle_buffers, 3);
        assert_eq!(p.set_limits(1, 64 << 20), (4, 64 << 20));
        assert_eq!(p.stats().idle_buffers, 1);
        p.set_limits(0, 0);
        assert!(!p.enabled());
        assert_eq!(p.stats().idle_buffers, 0);
        drop(p.take(ALIGN));
        assert_eq!(p.stats().idle_buffers, 0);
    }

    #[test]
    fn concurrent_take_and_return_stay_bounded_and_exclusive() {
        let p = pool(3, 64 << 20);
        std::thread::scope(|s| {
            for t in 0..4u8 {
                s.spawn(move || {
                    for i in 0..200usize {
                        let bytes = ALIGN * (1 + i % 3);
                        let b = p.take(bytes);
                        let ptr = b.as_mut_ptr();
                        // SAFETY: `bytes` <= capacity; the buffer is ours until dropped.
                        unsafe { ptr.write_bytes(t, bytes) };
                        std::thread::yield_now();
                        // SAFETY: as above; nobody else may have written it meanwhile.
                        let all = unsafe { std::slice::from_raw_parts(ptr, bytes) };
                        assert!(all.iter().all(|&v| v == t), "buffer shared between owners");
                    }
                });
            }
        });
        let s = p.stats();
        assert!(s.idle_buffers <= 3);
        assert_eq!(s.hits + s.misses, 800);
        assert!(s.hits > 0);
    }
}
