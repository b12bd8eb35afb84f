//! `trueno.matmul` and `trueno.gemv`: NumPy arrays in, `trueno::matmul` on the
//! raw buffers with the GIL released, NumPy arrays out.
//!
//! C-contiguous inputs are borrowed zero-copy; any other layout (a transpose, a
//! strided slice) is copied once into row-major order first, because the kernel
//! takes row-major slices. Both operands must share one dtype, float32 or
//! float64: unlike NumPy, trueno never silently upcasts.

use numpy::{
    Element as NpElement, PyArray1, PyArray2, PyArrayDescrMethods, PyArrayMethods,
    PyReadonlyArray1, PyReadonlyArray2, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::borrow::Cow;
use trueno::matmul::Element as GemmElement;

/// The dtypes the kernels exist for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F32,
    F64,
}

/// A validated ndarray argument: its dtype and shape.
struct Arg<'py> {
    arr: Bound<'py, PyUntypedArray>,
    dtype: Dtype,
}

fn shape_str(shape: &[usize]) -> String {
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

/// Check `obj` is a float32/float64 ndarray of `ndim` dimensions.
fn arg<'py>(name: &str, obj: &Bound<'py, PyAny>, ndim: usize) -> PyResult<Arg<'py>> {
    let py = obj.py();
    let arr = obj.cast::<PyUntypedArray>().map_err(|_| {
        let ty = obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into());
        PyTypeError::new_err(format!(
            "{name} must be a numpy.ndarray of float32 or float64, got {ty}"
        ))
    })?;
    let descr = arr.dtype();
    let dtype = if descr.is_equiv_to(&numpy::dtype::<f32>(py)) {
        Dtype::F32
    } else if descr.is_equiv_to(&numpy::dtype::<f64>(py)) {
        Dtype::F64
    } else {
        return Err(PyTypeError::new_err(format!(
            "{name} has dtype {descr}, expected float32 or float64"
        )));
    };
    if arr.ndim() != ndim {
        return Err(PyValueError::new_err(format!(
            "{name} must be {ndim}-D, got shape {}",
            shape_str(arr.shape())
        )));
    }
    Ok(Arg {
        arr: arr.clone(),
        dtype,
    })
}

fn same_dtype(a: &Arg<'_>, b: &Arg<'_>, names: (&str, &str)) -> PyResult<Dtype> {
    if a.dtype != b.dtype {
        return Err(PyTypeError::new_err(format!(
            "{} is {} but {} is {}: convert one explicitly (trueno does not upcast)",
            names.0,
            a.arr.dtype(),
            names.1,
            b.arr.dtype()
        )));
    }
    Ok(a.dtype)
}

/// Borrow a C-contiguous buffer, or copy any other layout into row-major order.
///
/// `as_slice` alone is not enough: it also accepts Fortran-ordered arrays, whose
/// memory order is the transpose of what the kernel expects.
fn row_major<'a, T: NpElement + Copy>(arr: &'a PyReadonlyArray2<'_, T>) -> Cow<'a, [T]> {
    match arr.as_slice() {
        Ok(s) if arr.is_c_contiguous() => Cow::Borrowed(s),
        _ => Cow::Owned(arr.as_array().iter().copied().collect()),
    }
}

fn kernel_error(e: trueno::Error) -> PyErr {
    match e {
        trueno::Error::LengthMismatch { .. } => PyValueError::new_err(e.to_string()),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

fn matmul_typed<'py, T>(
    a: &Arg<'py>,
    b: &Arg<'py>,
    out: Option<&Bound<'py, PyAny>>,
    threads: usize,
) -> PyResult<Bound<'py, PyAny>>
where
    T: NpElement + GemmElement,
{
    let py = a.arr.py();
    let ar: PyReadonlyArray2<'py, T> = a.arr.extract()?;
    let br: PyReadonlyArray2<'py, T> = b.arr.extract()?;
    let (m, k) = (ar.shape()[0], ar.shape()[1]);
    let n = br.shape()[1];
    let result: Bound<'py, PyArray2<T>> = match out {
        Some(o) => {
            let oa = arg("out", o, 2)?;
            if oa.dtype != a.dtype {
                return Err(PyTypeError::new_err(format!(
                    "out has dtype {}, expected {} like a and b",
                    oa.arr.dtype(),
                    a.arr.dtype()
                )));
            }
            if oa.arr.shape() != [m, n] {
                return Err(PyValueError::new_err(format!(
                    "out has shape {}, expected {} for a {} @ b {}",
                    shape_str(oa.arr.shape()),
                    shape_str(&[m, n]),
                    shape_str(&[m, k]),
                    shape_str(&[k, n])
                )));
            }
            if !oa.arr.is_c_contiguous() {
                return Err(PyValueError::new_err("out must be C-contiguous"));
            }
            o.cast::<PyArray2<T>>()?.clone()
        }
        // SAFETY: the kernel writes every element of `out` (zeros when k == 0)
        // before the array is returned to Python, so no uninitialised value is seen.
        None => unsafe { PyArray2::<T>::new(py, [m, n], false) },
    };
    {
        let mut w = result.try_readwrite().map_err(|_| {
            PyValueError::new_err("out must be writeable and must not overlap a or b")
        })?;
        let o = w
            .as_slice_mut()
            .map_err(|_| PyValueError::new_err("out must be C-contiguous"))?;
        let (xa, xb) = (row_major(&ar), row_major(&br));
        let backend = trueno::backend::active().map_err(kernel_error)?;
        py.detach(|| trueno::matmul::matmul_with(backend, &xa, &xb, o, m, k, n, threads))
            .map_err(kernel_error)?;
    }
    Ok(result.into_any())
}

/// matmul(a, b, out=None, threads=1) -> ndarray: `a @ b` for 2-D float32/float64.
#[pyfunction]
#[pyo3(signature = (a, b, out = None, threads = 1))]
fn matmul<'py>(
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
    threads: usize,
) -> PyResult<Bound<'py, PyAny>> {
    if threads == 0 {
        return Err(PyValueError::new_err("threads must be >= 1"));
    }
    let (a, b) = (arg("a", a, 2)?, arg("b", b, 2)?);
    let dtype = same_dtype(&a, &b, ("a", "b"))?;
    if a.arr.shape()[1] != b.arr.shape()[0] {
        return Err(PyValueError::new_err(format!(
            "matmul: a has shape {} and b has shape {}: a.shape[1] != b.shape[0]",
            shape_str(a.arr.shape()),
            shape_str(b.arr.shape())
        )));
    }
    match dtype {
        Dtype::F32 => matmul_typed::<f32>(&a, &b, out, threads),
        Dtype::F64 => matmul_typed::<f64>(&a, &b, out, threads),
    }
}

fn gemv_typed<'py, T>(a: &Arg<'py>, x: &Arg<'py>) -> PyResult<Bound<'py, PyAny>>
where
    T: NpElement + GemmElement,
{
    let py = a.arr.py();
    let ar: PyReadonlyArray2<'py, T> = a.arr.extract()?;
    let xr: PyReadonlyArray1<'py, T> = x.arr.extract()?;
    let (m, n) = (ar.shape()[0], ar.shape()[1]);
    let xs: Cow<'_, [T]> = match xr.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(xr.as_array().iter().copied().collect()),
    };
    // SAFETY: gemv writes all m elements before the array reaches Python.
    let y = unsafe { PyArray1::<T>::new(py, [m], false) };
    {
        let mut w = y.readwrite();
        let ys = w
            .as_slice_mut()
            .map_err(|_| PyRuntimeError::new_err("fresh array is not contiguous"))?;
        let xa = row_major(&ar);
        let backend = trueno::backend::active().map_err(kernel_error)?;
        py.detach(|| trueno::matmul::gemv_with(backend, &xa, &xs, ys, m, n))
            .map_err(kernel_error)?;
    }
    Ok(y.into_any())
}

/// gemv(a, x) -> ndarray: `a @ x` for a 2-D matrix and a 1-D vector.
#[pyfunction]
fn gemv<'py>(a: &Bound<'py, PyAny>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let (a, x) = (arg("a", a, 2)?, arg("x", x, 1)?);
    let dtype = same_dtype(&a, &x, ("a", "x"))?;
    if a.arr.shape()[1] != x.arr.shape()[0] {
        return Err(PyValueError::new_err(format!(
            "gemv: a has shape {} and x has shape {}: a.shape[1] != x.shape[0]",
            shape_str(a.arr.shape()),
            shape_str(x.arr.shape())
        )));
    }
    match dtype {
        Dtype::F32 => gemv_typed::<f32>(&a, &x),
        Dtype::F64 => gemv_typed::<f64>(&a, &x),
    }
}

/// Register this module's functions on the extension module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(matmul, m)?)?;
    m.add_function(wrap_pyfunction!(gemv, m)?)?;
    Ok(())
}
