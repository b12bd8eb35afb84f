//! NumPy <-> slice plumbing shared by the kernel bindings.
//!
//! Inputs: a C-contiguous float32/float64 ndarray is borrowed zero-copy; any
//! other layout (transposed, strided, Fortran) is copied once into C order, so
//! the kernels only ever see row-major slices. Outputs: a fresh array is
//! allocated uninitialised and written in full by the kernel (from 4 MiB up
//! over a recycled buffer of trueno's pool, see `pool.rs`), or the caller's
//! `out=` (same dtype and shape, C-contiguous, writeable) is written in place.
//!
//! The one `out=` aliasing rule of every kernel (NumPy's): an `out=` that
//! shares memory with an input gives the result the call gives on copies of
//! the inputs. That covers `out` being an input (`add(a, b, out=a)`), a view
//! of one at an offset (`add(x[1:], x[:-1], out=x[:-1])`), and a second array
//! over the same buffer: [`write_with`] / [`write2`] detect the overlap both
//! through rust-numpy's borrow tracking (arrays sharing a base object) and by
//! address ([`shares_memory`]: arrays with unrelated bases), and then copy
//! the inputs first, so a kernel never sees aliased slices. Overlap is never
//! refused; `out=` is refused only for the wrong dtype (TypeError) or shape,
//! or when it is not C-contiguous or not writeable (ValueError).

use numpy::{
    Element, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyReadwriteArrayDyn, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::borrow::Cow;

/// Inputs at least this long are processed with the GIL released; below it
/// the release/re-acquire would cost more than the kernel.
pub(crate) const DETACH_MIN: usize = 1 << 15;

/// Run `f`, releasing the GIL if the work is large.
#[inline]
pub(crate) fn run<R: Send>(py: Python<'_>, n: usize, f: impl FnOnce() -> R + Send) -> R {
    if n >= DETACH_MIN { py.detach(f) } else { f() }
}

/// A float ndarray argument of either supported dtype.
pub(crate) enum Floats<'py> {
    F32(Bound<'py, PyArrayDyn<f32>>),
    F64(Bound<'py, PyArrayDyn<f64>>),
}

impl<'py> Floats<'py> {
    pub(crate) fn shape(&self) -> &[usize] {
        match self {
            Floats::F32(a) => a.shape(),
            Floats::F64(a) => a.shape(),
        }
    }

    pub(crate) fn dtype_name(&self) -> &'static str {
        match self {
            Floats::F32(_) => "float32",
            Floats::F64(_) => "float64",
        }
    }
}

pub(crate) fn shape_str(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Name the type (and dtype, for arrays) of an unusable argument.
fn describe(obj: &Bound<'_, PyAny>) -> String {
    if let Ok(arr) = obj.cast::<PyUntypedArray>() {
        return format!("an ndarray of dtype {}", arr.dtype());
    }
    obj.get_type()
        .fully_qualified_name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Accept a float32 or float64 ndarray (any shape).
#[inline]
pub(crate) fn floats<'py>(name: &str, obj: &Bound<'py, PyAny>) -> PyResult<Floats<'py>> {
    if let Ok(a) = obj.cast::<PyArrayDyn<f32>>() {
        return Ok(Floats::F32(a.clone()));
    }
    if let Ok(a) = obj.cast::<PyArrayDyn<f64>>() {
        return Ok(Floats::F64(a.clone()));
    }
    Err(PyTypeError::new_err(format!(
        "{name} must be a numpy.ndarray of float32 or float64, got {}",
        describe(obj)
    )))
}

/// Accept a float32 or float64 ndarray of exactly `ndim` dimensions.
pub(crate) fn floats_nd<'py>(
    name: &str,
    obj: &Bound<'py, PyAny>,
    ndim: usize,
) -> PyResult<Floats<'py>> {
    let a = floats(name, obj)?;
    if a.shape().len() != ndim {
        return Err(PyValueError::new_err(format!(
            "{name} must be {ndim}-D, got shape {}",
            shape_str(a.shape())
        )));
    }
    Ok(a)
}

/// Accept only a float32 ndarray (kernels without a float64 version).
#[inline]
pub(crate) fn f32s<'py>(
    name: &str,
    obj: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    if let Ok(a) = obj.cast::<PyArrayDyn<f32>>() {
        return Ok(a.clone());
    }
    Err(PyTypeError::new_err(format!(
        "{name} must be a numpy.ndarray of float32, got {}",
        describe(obj)
    )))
}

pub(crate) fn mixed_dtypes(names: (&str, &str), a: &Floats<'_>, b: &Floats<'_>) -> PyErr {
    PyTypeError::new_err(format!(
        "{} is {} but {} is {}: convert one explicitly (trueno does not upcast)",
        names.0,
        a.dtype_name(),
        names.1,
        b.dtype_name()
    ))
}

/// Zero-copy view of a *small* C-contiguous, aligned array, bypassing
/// rust-numpy's dynamic borrow tracking.
///
/// Why: acquiring and releasing a tracked borrow costs about 90 ns per array
/// (a hash-map entry keyed by the base object), more than the kernel itself
/// at 1e3 elements and as much as the whole pyo3 call floor. Inputs shorter
/// than [`DETACH_MIN`] are processed with the GIL held from here until the
/// kernel returns, so no Python code (including NumPy) can run and mutate the
/// array meanwhile; overlaps with our own output are checked by address
/// ([`overlaps`]). Larger inputs, which release the GIL, always go through
/// the tracked borrows. The residual assumption is NumPy's own: no native
/// thread writes into the array without holding the GIL.
#[inline]
pub(crate) fn small_view<'a, T: Element>(a: &'a Bound<'_, PyArrayDyn<T>>) -> Option<&'a [T]> {
    if a.len() >= DETACH_MIN || !a.is_c_contiguous() {
        return None;
    }
    // SAFETY: see above: the GIL stays held for the slice's whole use (the
    // returned lifetime is tied to the `Bound`, which needs the GIL), the
    // array is C-contiguous and `as_slice` checks alignment and length.
    unsafe { a.as_slice() }.ok()
}

/// Mutable counterpart of [`small_view`] for an output array; `None` if it
/// is not writeable, not C-contiguous, or large.
#[inline]
#[expect(
    clippy::mut_from_ref,
    reason = "the &mut aliases NumPy-owned memory, like rust-numpy's own as_slice_mut; uniqueness is checked by the caller"
)]
fn small_view_mut<'a, T: Element>(a: &'a Bound<'_, PyArrayDyn<T>>) -> Option<&'a mut [T]> {
    if a.len() >= DETACH_MIN || !a.is_c_contiguous() {
        return None;
    }
    // SAFETY: reading the flags field of a live ndarray object we hold.
    let writeable =
        unsafe { (*a.as_array_ptr()).fields.flags } & numpy::npyffi::NPY_ARRAY_WRITEABLE != 0;
    if !writeable {
        return None;
    }
    // SAFETY: as for `small_view`, plus: callers check with `overlaps` that
    // no input slice shares memory with this one, so the `&mut` is unique.
    unsafe { a.as_slice_mut() }.ok()
}

/// Whether two slices share any byte.
#[inline]
fn overlaps<T>(a: &[T], b: &[T]) -> bool {
    let (a0, b0) = (a.as_ptr() as usize, b.as_ptr() as usize);
    let (a1, b1) = (a0 + std::mem::size_of_val(a), b0 + std::mem::size_of_val(b));
    a0 < b1 && b0 < a1
}

/// Whether the C-contiguous array `res` shares any byte with one of `views`,
/// by address. rust-numpy's borrow tracking only compares arrays with one
/// base object; two arrays wrapping the same foreign buffer have different
/// bases, so the bindings also check the addresses before writing.
#[inline]
fn shares_memory<T: Element>(res: &Bound<'_, PyArrayDyn<T>>, views: &[&[T]]) -> bool {
    let start = res.data() as usize;
    let end = start + res.len() * std::mem::size_of::<T>();
    views.iter().any(|v| {
        let (v0, v1) = (
            v.as_ptr() as usize,
            v.as_ptr() as usize + std::mem::size_of_val(*v),
        );
        !v.is_empty() && v0 < end && start < v1
    })
}

/// Borrow an array for reading.
pub(crate) fn read<'py, T: Element>(
    name: &str,
    a: &Bound<'py, PyArrayDyn<T>>,
) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    a.try_readonly()
        .map_err(|e| PyValueError::new_err(format!("{name} cannot be read: {e}")))
}

/// The elements in C order: borrowed if C-contiguous, else copied.
#[inline]
pub(crate) fn c_order<'a, T: Element + Copy>(a: &'a PyReadonlyArrayDyn<'_, T>) -> Cow<'a, [T]> {
    match a.as_slice() {
        Ok(s) if a.is_c_contiguous() => Cow::Borrowed(s),
        _ => Cow::Owned(a.as_array().iter().copied().collect()),
    }
}

/// Map a kernel error to the Python exception NumPy users expect.
pub(crate) fn kernel_error(e: trueno::Error) -> PyErr {
    match e {
        trueno::Error::UnknownBackend(_) | trueno::Error::UnsupportedBackend { .. } => {
            PyRuntimeError::new_err(e.to_string())
        }
        other => PyValueError::new_err(other.to_string()),
    }
}

/// Where a kernel's array result goes: a fresh array or the caller's `out=`.
pub(crate) fn output<'py, T: Element>(
    py: Python<'py>,
    out: Option<&Bound<'py, PyAny>>,
    shape: &[usize],
    dtype: &str,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    output_for(py, out, shape, dtype, String::new)
}

/// [`output`], with `context()` appended to the wrong-shape message (say,
/// `" for a (3, 4) @ b (4, 5)"`); it is only called on that error.
pub(crate) fn output_for<'py, T: Element>(
    py: Python<'py>,
    out: Option<&Bound<'py, PyAny>>,
    shape: &[usize],
    dtype: &str,
    context: impl FnOnce() -> String,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    match out {
        None => crate::pool::fresh(py, shape),
        Some(o) => {
            let arr = o.cast::<PyArrayDyn<T>>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "out must be a {dtype} ndarray, got {}",
                    describe(o)
                ))
            })?;
            if arr.shape() != shape {
                return Err(PyValueError::new_err(format!(
                    "out has shape {}, expected {}{}",
                    shape_str(arr.shape()),
                    shape_str(shape),
                    context()
                )));
            }
            if !arr.is_c_contiguous() {
                return Err(PyValueError::new_err("out must be C-contiguous"));
            }
            Ok(arr.clone())
        }
    }
}

/// The write borrow of `name` (`out=`, or a kernel's own result array), or
/// why it cannot be written.
pub(crate) fn write_borrow<'py, T: Element>(
    name: &str,
    res: &Bound<'py, PyArrayDyn<T>>,
) -> PyResult<PyReadwriteArrayDyn<'py, T>> {
    res.try_readwrite()
        .map_err(|e| PyValueError::new_err(format!("{name} must be writeable: {e}")))
}

/// The elements of a write borrow as one slice (`out=` is checked C-contiguous).
pub(crate) fn out_slice<'a, T: Element>(
    w: &'a mut PyReadwriteArrayDyn<'_, T>,
) -> PyResult<&'a mut [T]> {
    w.as_slice_mut()
        .map_err(|_| PyValueError::new_err("out must be C-contiguous"))
}

/// Run `k(inputs, out_slice)` with read borrows of `inputs` and a write borrow
/// of `res`; if `res` shares memory with an input, copy the inputs first.
pub(crate) fn write_with<'py, T: Element + Copy + Send + Sync, R: Send>(
    py: Python<'py>,
    inputs: &[(&str, &Bound<'py, PyArrayDyn<T>>)],
    res: &Bound<'py, PyArrayDyn<T>>,
    k: impl FnOnce(&[&[T]], &mut [T]) -> R + Send,
) -> PyResult<R> {
    let reads = inputs
        .iter()
        .map(|(n, a)| read(n, a))
        .collect::<PyResult<Vec<_>>>()?;
    let views: Vec<Cow<'_, [T]>> = reads.iter().map(c_order).collect();
    let n = views.iter().map(|v| v.len()).max().unwrap_or(0);
    let slices: Vec<&[T]> = views.iter().map(|v| &**v).collect();
    // A never-written pooled output: cached stores (see `pool::first_write`).
    let cached = crate::pool::first_write(res);
    let k = |ins: &[&[T]], o: &mut [T]| {
        if cached {
            trueno::cached_stores(|| k(ins, o))
        } else {
            k(ins, o)
        }
    };
    // No write borrow while an input may alias `res`: checked by address first.
    let direct = if shares_memory(res, &slices) {
        None
    } else {
        res.try_readwrite().ok()
    };
    if let Some(mut w) = direct {
        let o = out_slice(&mut w)?;
        return Ok(run(py, n, || k(&slices, o)));
    }
    // out= overlaps an input (or is not writeable): work on copies.
    let owned: Vec<Vec<T>> = slices.iter().map(|v| v.to_vec()).collect();
    drop(slices);
    drop(views);
    drop(reads);
    let mut w = write_borrow("out", res)?;
    let o = out_slice(&mut w)?;
    let slices: Vec<&[T]> = owned.iter().map(|v| &v[..]).collect();
    Ok(run(py, n, || k(&slices, o)))
}

/// [`write_with`] for the hot one- and two-input kernels, without the
/// per-call vectors.
#[inline]
pub(crate) fn write2<'py, T: Element + Copy + Send + Sync, R: Send>(
    py: Python<'py>,
    a: (&str, &Bound<'py, PyArrayDyn<T>>),
    b: Option<(&str, &Bound<'py, PyArrayDyn<T>>)>,
    res: &Bound<'py, PyArrayDyn<T>>,
    k: impl FnOnce(&[T], &[T], &mut [T]) -> R + Send,
) -> PyResult<R> {
    if let Some(va) = small_view(a.1) {
        let vb = match b {
            Some((_, arr)) => small_view(arr),
            None => Some(&[][..]),
        };
        if let Some(vb) = vb
            && let Some(o) = small_view_mut(res)
            && !overlaps(va, o)
            && !overlaps(vb, o)
        {
            return Ok(k(va, vb, o));
        }
    }
    // Large, strided or overlapping: the general path (its per-call vectors cost
    // nothing next to the work or the copies there).
    let k = |ins: &[&[T]], o: &mut [T]| k(ins[0], ins.get(1).copied().unwrap_or(&[]), o);
    match b {
        Some(b) => write_with(py, &[a, b], res, k),
        None => write_with(py, &[a], res, k),
    }
}

/// Read one or two arrays and reduce them to a value.
#[inline]
pub(crate) fn reduce2<'py, T: Element + Copy + Send + Sync, R: Send>(
    py: Python<'py>,
    a: (&str, &Bound<'py, PyArrayDyn<T>>),
    b: Option<(&str, &Bound<'py, PyArrayDyn<T>>)>,
    k: impl FnOnce(&[T], &[T]) -> R + Send,
) -> PyResult<R> {
    if let Some(va) = small_view(a.1) {
        let vb = match b {
            Some((_, arr)) => small_view(arr),
            None => Some(&[][..]),
        };
        if let Some(vb) = vb {
            return Ok(k(va, vb));
        }
    }
    let ra = read(a.0, a.1)?;
    let rb = match b {
        Some((n, arr)) => Some(read(n, arr)?),
        None => None,
    };
    let va = c_order(&ra);
    let vb = rb.as_ref().map(c_order);
    let sb: &[T] = vb.as_deref().unwrap_or(&[]);
    Ok(run(py, va.len(), || k(&va, sb)))
}
