//! Fresh large outputs from `trueno::buffers::global()` instead of NumPy's allocator.
//!
//! An allocating call whose result is at least `trueno::buffers::POOL_MIN_BYTES`
//! (4 MiB) gets an ndarray over a pooled buffer: the array's `base` is a
//! [`PoolBuffer`], whose destructor (when the array and its last view die)
//! hands the buffer back, so the next allocating call of the same size reuses
//! the already-faulted pages instead of a new mapping the kernel must fault in
//! and zero. To NumPy it is an ordinary writeable, aligned, C-contiguous array
//! that does not own its data (like any view of a buffer): views keep the
//! owner alive, pickling and copying copy the data, `np.shares_memory` works.

use numpy::ndarray::{ArrayViewD, IxDyn};
use numpy::{Element, PyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::atomic::{AtomicBool, Ordering};
use trueno::buffers::{self, Buffer};

/// The owner (`base`) of an array over a pooled buffer.
#[pyclass(frozen, module = "trueno._trueno", name = "PoolBuffer")]
#[derive(Debug)]
pub(crate) struct PoolBuffer {
    buf: Buffer,
    /// A new allocation no kernel has written yet (see [`first_write`]).
    unwritten: AtomicBool,
}

#[pymethods]
impl PoolBuffer {
    /// Bytes of the buffer (the request rounded up to 2 MiB).
    #[getter]
    fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    fn __repr__(&self) -> String {
        format!("<trueno pooled buffer of {} bytes>", self.buf.capacity())
    }
}

/// An uninitialised C-order array of `shape` for a kernel to write in full.
pub(crate) fn fresh<'py, T: Element>(
    py: Python<'py>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let bytes = shape
        .iter()
        .try_fold(std::mem::size_of::<T>(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| PyValueError::new_err("output shape overflows the address space"))?;
    let pool = buffers::global();
    if bytes < buffers::POOL_MIN_BYTES || !pool.enabled() {
        // SAFETY: every caller passes the new array to a kernel that writes
        // each element before the array becomes visible to Python.
        return Ok(unsafe { PyArrayDyn::<T>::new(py, shape, false) });
    }
    let buf = pool.take(bytes);
    let ptr = buf.as_mut_ptr().cast::<T>();
    // SAFETY: the buffer is 2 MiB-aligned (so aligned for T) and holds at least
    // `bytes` = product(shape) * size_of::<T>() bytes; the view only lives until
    // NumPy has copied its shape and pointer. Its contents are uninitialised (or a
    // previous owner's) like `PyArray::new(.., false)`'s: the callers write every
    // element before Python sees the array.
    let view = unsafe { ArrayViewD::from_shape_ptr(IxDyn(shape), ptr.cast_const()) };
    let unwritten = AtomicBool::new(!buf.reused());
    let owner = Bound::new(py, PoolBuffer { buf, unwritten })?;
    // SAFETY: `owner` becomes the array's base and owns the buffer, which is not
    // moved or freed before `owner` is dropped (by NumPy, after the last view).
    Ok(unsafe { PyArrayDyn::borrow_from_array(&view, owner.into_any()) })
}

/// Whether `res` is a pooled buffer's array that no kernel has written yet (and
/// from now on counts as written). Such a buffer was just faulted in and zeroed by
/// the OS, so its kernel writes it with cached stores (`trueno::cached_stores`);
/// a reused buffer is not in cache and keeps the streaming stores.
pub(crate) fn first_write<T: Element>(res: &Bound<'_, PyArrayDyn<T>>) -> bool {
    // SAFETY: reading the base field of a live ndarray we hold; a non-null base is
    // a live object owned by the array, borrowed here for the GIL-bound lifetime.
    let base = unsafe { (*res.as_array_ptr()).fields.base };
    // SAFETY: as above: `base` is null or a valid object pointer.
    let Some(base) = (unsafe { Bound::from_borrowed_ptr_or_opt(res.py(), base) }) else {
        return false;
    };
    base.cast::<PoolBuffer>()
        .is_ok_and(|b| b.get().unwritten.swap(false, Ordering::Relaxed))
}

/// _pool_stats() -> dict: counters and bounds of the process-wide output buffer
/// pool (a debugging/introspection aid, not a stable API): idle_buffers,
/// idle_bytes, hits, misses, evictions, max_buffers, max_bytes, min_bytes.
#[pyfunction]
fn _pool_stats(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let s = buffers::global().stats();
    let d = PyDict::new(py);
    d.set_item("idle_buffers", s.idle_buffers)?;
    d.set_item("idle_bytes", s.idle_bytes)?;
    d.set_item("hits", s.hits)?;
    d.set_item("misses", s.misses)?;
    d.set_item("evictions", s.evictions)?;
    d.set_item("max_buffers", s.max_buffers)?;
    d.set_item("max_bytes", s.max_bytes)?;
    d.set_item("min_bytes", buffers::POOL_MIN_BYTES)?;
    Ok(d)
}

/// _pool_set_limits(max_buffers, max_bytes) -> (int, int): replace the pool's
/// bounds (0 for either turns pooling off: large outputs come from NumPy's
/// allocator again); returns the old bounds. For tests and benchmarks.
#[pyfunction]
fn _pool_set_limits(max_buffers: usize, max_bytes: usize) -> (usize, usize) {
    buffers::global().set_limits(max_buffers, max_bytes)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PoolBuffer>()?;
    m.add_function(wrap_pyfunction!(_pool_stats, m)?)?;
    m.add_function(wrap_pyfunction!(_pool_set_limits, m)?)?;
    Ok(())
}
