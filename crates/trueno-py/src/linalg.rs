//! `trueno.matmul` and `trueno.gemv`: NumPy arrays in, `trueno::matmul` on the
//! raw buffers with the GIL released, NumPy arrays out.
//!
//! Arguments go through [`crate::convert`] like the kernel bindings':
//! C-contiguous inputs are borrowed zero-copy; any other layout (a transpose, a
//! strided slice, Fortran order) is copied once into row-major order first,
//! because the kernel takes row-major slices. Both operands must share one
//! dtype, float32 or float64: unlike NumPy, trueno never silently upcasts.
//! An `out=` that shares memory with an operand (is one, or overlaps one) follows
//! the bindings' one rule (`crate::convert`, as NumPy): the product is what the
//! call gives on copies of the operands.
//!
//! `precision="bf16"` / `"int8"` opt into `trueno::lowp` (float32 operands only;
//! the default `"f32"` is never lowered); which kernel runs is `trueno.machine()["lowp"]`.

use crate::convert::{
    Floats, c_order, floats_nd, kernel_error, mixed_dtypes, out_slice, output, output_for, read,
    shape_str, write_borrow, write_with,
};
use numpy::{Element as NpElement, PyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use trueno::backend::Backend;
use trueno::lowp::Precision;
use trueno::matmul::Element as GemmElement;

/// Refuse operands whose inner dimensions differ, naming both shapes.
fn inner_dims(op: &str, names: (&str, &str), a: &[usize], b: &[usize]) -> PyResult<()> {
    if a[1] == b[0] {
        return Ok(());
    }
    let (na, nb) = names;
    Err(PyValueError::new_err(format!(
        "{op}: {na} has shape {} and {nb} has shape {}: {na}.shape[1] != {nb}.shape[0]",
        shape_str(a),
        shape_str(b)
    )))
}

/// Write `res` with `k`, the GIL released (gemv: `res` is always a fresh array,
/// so it aliases nothing).
fn compute<'py, T: NpElement + GemmElement>(
    res: Bound<'py, PyArrayDyn<T>>,
    k: impl FnOnce(Backend, &mut [T]) -> Result<(), trueno::Error> + Send,
) -> PyResult<Bound<'py, PyAny>> {
    {
        let mut w = write_borrow("the result", &res)?;
        let o = out_slice(&mut w)?;
        let backend = trueno::backend::active().map_err(kernel_error)?;
        res.py().detach(|| k(backend, o)).map_err(kernel_error)?;
    }
    Ok(res.into_any())
}

fn matmul_typed<'py, T: NpElement + GemmElement>(
    (a, b): (&Bound<'py, PyArrayDyn<T>>, &Bound<'py, PyArrayDyn<T>>),
    out: Option<&Bound<'py, PyAny>>,
    dtype: &str,
    threads: usize,
) -> PyResult<Bound<'py, PyAny>> {
    inner_dims("matmul", ("a", "b"), a.shape(), b.shape())?;
    let (m, k, n) = (a.shape()[0], a.shape()[1], b.shape()[1]);
    let res = output_for::<T>(a.py(), out, &[m, n], dtype, || {
        format!(" for a {} @ b {}", shape_str(&[m, k]), shape_str(&[k, n]))
    })?;
    let backend = trueno::backend::active().map_err(kernel_error)?;
    // The one out= rule of the bindings (`write_with`): an out that shares memory
    // with an input is computed as if the inputs had been copied first, like NumPy's.
    write_with(a.py(), &[("a", a), ("b", b)], &res, |ins, o| {
        trueno::matmul::matmul_with(backend, ins[0], ins[1], o, m, k, n, threads)
    })?
    .map_err(kernel_error)?;
    Ok(res.into_any())
}

/// `a @ b` computed in bf16 or int8 (`trueno::lowp`), f32 in and out.
fn matmul_lowp<'py>(
    (a, b): (&Bound<'py, PyArrayDyn<f32>>, &Bound<'py, PyArrayDyn<f32>>),
    out: Option<&Bound<'py, PyAny>>,
    precision: Precision,
    threads: usize,
) -> PyResult<Bound<'py, PyAny>> {
    inner_dims("matmul", ("a", "b"), a.shape(), b.shape())?;
    let (m, k, n) = (a.shape()[0], a.shape()[1], b.shape()[1]);
    let res = output_for::<f32>(a.py(), out, &[m, n], "float32", || {
        format!(" for a {} @ b {}", shape_str(&[m, k]), shape_str(&[k, n]))
    })?;
    write_with(a.py(), &[("a", a), ("b", b)], &res, |ins, o| {
        trueno::lowp::matmul_lowp(precision, ins[0], ins[1], o, m, k, n, threads)
    })?
    .map_err(kernel_error)?;
    Ok(res.into_any())
}

/// matmul(a, b, out=None, threads=1, precision="f32") -> ndarray: `a @ b` for 2-D
/// float32/float64; `precision="bf16"` or `"int8"` (float32 only) opts into
/// reduced-precision arithmetic with f32 / i32 accumulation.
#[pyfunction]
#[pyo3(signature = (a, b, out = None, threads = 1, precision = "f32"))]
fn matmul<'py>(
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
    threads: usize,
    precision: &str,
) -> PyResult<Bound<'py, PyAny>> {
    if threads == 0 {
        return Err(PyValueError::new_err("threads must be >= 1"));
    }
    let precision: Precision = precision.parse().map_err(kernel_error)?;
    if precision != Precision::F32 {
        return match (floats_nd("a", a, 2)?, floats_nd("b", b, 2)?) {
            (Floats::F32(a), Floats::F32(b)) => matmul_lowp((&a, &b), out, precision, threads),
            (a, b) => Err(PyTypeError::new_err(format!(
                "matmul(precision={:?}) takes float32 operands (it converts them itself), got a {} and b {}",
                precision.name(),
                a.dtype_name(),
                b.dtype_name()
            ))),
        };
    }
    match (floats_nd("a", a, 2)?, floats_nd("b", b, 2)?) {
        (Floats::F32(a), Floats::F32(b)) => matmul_typed((&a, &b), out, "float32", threads),
        (Floats::F64(a), Floats::F64(b)) => matmul_typed((&a, &b), out, "float64", threads),
        (a, b) => Err(mixed_dtypes(("a", "b"), &a, &b)),
    }
}

fn gemv_typed<'py, T: NpElement + GemmElement>(
    a: &Bound<'py, PyArrayDyn<T>>,
    x: &Bound<'py, PyArrayDyn<T>>,
) -> PyResult<Bound<'py, PyAny>> {
    inner_dims("gemv", ("a", "x"), a.shape(), x.shape())?;
    let (m, n) = (a.shape()[0], a.shape()[1]);
    let (ar, xr) = (read("a", a)?, read("x", x)?);
    // A fresh array: gemv writes all m elements before it reaches Python.
    let y = output::<T>(a.py(), None, &[m], "")?;
    let (xa, xs) = (c_order(&ar), c_order(&xr));
    compute(y, |backend, ys| {
        trueno::matmul::gemv_with(backend, &xa, &xs, ys, m, n)
    })
}

/// gemv(a, x) -> ndarray: `a @ x` for a 2-D matrix and a 1-D vector.
#[pyfunction]
fn gemv<'py>(a: &Bound<'py, PyAny>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    match (floats_nd("a", a, 2)?, floats_nd("x", x, 1)?) {
        (Floats::F32(a), Floats::F32(x)) => gemv_typed(&a, &x),
        (Floats::F64(a), Floats::F64(x)) => gemv_typed(&a, &x),
        (a, x) => Err(mixed_dtypes(("a", "x"), &a, &x)),
    }
}

/// Register this module's functions on the extension module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(matmul, m)?)?;
    m.add_function(wrap_pyfunction!(gemv, m)?)?;
    Ok(())
}
