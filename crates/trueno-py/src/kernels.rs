//! The NumPy-like functions of `trueno`: element-wise maps, reductions,
//! row-wise softmax/normalisation and similarity search. Each one converts
//! and checks its arguments, releases the GIL for large inputs and calls one
//! `trueno` kernel; see `convert.rs` for the array rules.

use crate::convert::{
    Floats, c_order, f32s, floats, kernel_error, mixed_dtypes, output, read, reduce2, run,
    shape_str, small_view, write_borrow, write_with, write2,
};
use numpy::ndarray::{ArrayView, IxDyn};
use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;

/// backend() -> str: the instruction set the kernels currently use.
#[pyfunction]
fn backend() -> PyResult<&'static str> {
    trueno::backend::active()
        .map(trueno::Backend::name)
        .map_err(kernel_error)
}

/// backends() -> list[str]: the backends this CPU can run, narrowest first.
#[pyfunction]
fn backends(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    PyList::new(
        py,
        trueno::backend::supported()
            .into_iter()
            .map(trueno::Backend::name),
    )
}

/// set_backend(name) -> None: use `name` ("scalar", "avx2", "avx512",
/// "neon") from now on, process-wide. ValueError if unknown or not supported
/// by this CPU.
#[pyfunction]
fn set_backend(name: &str) -> PyResult<()> {
    let b: trueno::Backend = name
        .parse()
        .map_err(|e: trueno::Error| PyValueError::new_err(e.to_string()))?;
    trueno::set_backend(b).map_err(|e| PyValueError::new_err(e.to_string()))
}

fn same_shape(names: (&str, &str), a: &[usize], b: &[usize]) -> PyResult<()> {
    if a == b {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "{} has shape {} but {} has shape {} (trueno does not broadcast)",
            names.0,
            shape_str(a),
            names.1,
            shape_str(b)
        )))
    }
}

macro_rules! binary {
    ($name:ident, $f32:path, $f64:path, $doc:literal) => {
        #[doc = $doc]
        #[pyfunction]
        #[pyo3(signature = (a, b, out = None))]
        fn $name<'py>(
            py: Python<'py>,
            a: &Bound<'py, PyAny>,
            b: &Bound<'py, PyAny>,
            out: Option<&Bound<'py, PyAny>>,
        ) -> PyResult<Bound<'py, PyAny>> {
            let (fa, fb) = (floats("a", a)?, floats("b", b)?);
            same_shape(("a", "b"), fa.shape(), fb.shape())?;
            match (fa, fb) {
                (Floats::F32(x), Floats::F32(y)) => {
                    let res = output::<f32>(py, out, x.shape(), "float32")?;
                    write2(py, ("a", &x), Some(("b", &y)), &res, |p, q, o| {
                        $f32(p, q, o)
                    })?
                    .map_err(kernel_error)?;
                    Ok(res.into_any())
                }
                (Floats::F64(x), Floats::F64(y)) => {
                    let res = output::<f64>(py, out, x.shape(), "float64")?;
                    write2(py, ("a", &x), Some(("b", &y)), &res, |p, q, o| {
                        $f64(p, q, o)
                    })?
                    .map_err(kernel_error)?;
                    Ok(res.into_any())
                }
                (x, y) => Err(mixed_dtypes(("a", "b"), &x, &y)),
            }
        }
    };
}

binary!(
    add,
    trueno::add,
    trueno::add_f64,
    "add(a, b, out=None) -> ndarray: a + b, same shape and dtype (float32/float64)."
);
binary!(
    sub,
    trueno::sub,
    trueno::sub_f64,
    "sub(a, b, out=None) -> ndarray: a - b, same shape and dtype."
);
binary!(
    mul,
    trueno::mul,
    trueno::mul_f64,
    "mul(a, b, out=None) -> ndarray: a * b, same shape and dtype."
);
binary!(
    div,
    trueno::div,
    trueno::div_f64,
    "div(a, b, out=None) -> ndarray: a / b (IEEE: x/0 = ±inf), same shape and dtype."
);

type Map<T> = fn(&[T], &mut [T]) -> Result<(), trueno::Error>;

/// One element-wise map, float32 or float64 by the input's dtype (out= must match).
fn unary_map<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
    k32: impl FnOnce(&[f32], &mut [f32]) -> Result<(), trueno::Error> + Send,
    k64: impl FnOnce(&[f64], &mut [f64]) -> Result<(), trueno::Error> + Send,
) -> PyResult<Bound<'py, PyAny>> {
    match floats("x", x)? {
        Floats::F32(x) => {
            let res = output::<f32>(py, out, x.shape(), "float32")?;
            write2(py, ("x", &x), None, &res, |p, _, o| k32(p, o))?.map_err(kernel_error)?;
            Ok(res.into_any())
        }
        Floats::F64(x) => {
            let res = output::<f64>(py, out, x.shape(), "float64")?;
            write2(py, ("x", &x), None, &res, |p, _, o| k64(p, o))?.map_err(kernel_error)?;
            Ok(res.into_any())
        }
    }
}

macro_rules! unary {
    ($name:ident, $f32:path, $f64:path, $doc:literal) => {
        #[doc = $doc]
        #[pyfunction]
        #[pyo3(signature = (x, out = None))]
        fn $name<'py>(
            py: Python<'py>,
            x: &Bound<'py, PyAny>,
            out: Option<&Bound<'py, PyAny>>,
        ) -> PyResult<Bound<'py, PyAny>> {
            unary_map(py, x, out, $f32 as Map<f32>, $f64 as Map<f64>)
        }
    };
}

unary!(
    relu,
    trueno::relu,
    trueno::relu_f64,
    "relu(x, out=None) -> ndarray: max(x, 0), NaN propagates. float32 or float64."
);
unary!(
    sigmoid,
    trueno::sigmoid,
    trueno::sigmoid_f64,
    "sigmoid(x, out=None) -> ndarray: 1 / (1 + exp(-x)). float32 or float64."
);
unary!(
    tanh,
    trueno::tanh,
    trueno::tanh_f64,
    "tanh(x, out=None) -> ndarray: hyperbolic tangent. float32 or float64."
);
unary!(
    exp,
    trueno::exp,
    trueno::exp_f64,
    "exp(x, out=None) -> ndarray: e**x within 2 ulp of its dtype. float32 or float64."
);
unary!(
    log,
    trueno::log,
    trueno::log_f64,
    "log(x, out=None) -> ndarray: natural log within 2 ulp; log(0) = -inf, log(x<0) = nan. float32 or float64."
);

/// gelu(x, approximate="tanh", out=None) -> ndarray: GELU; approximate="none"
/// is the exact erf form x·Φ(x). float32 or float64.
#[pyfunction]
#[pyo3(signature = (x, approximate = "tanh", out = None))]
fn gelu<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    approximate: &str,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    match approximate {
        "tanh" => unary_map(py, x, out, trueno::gelu_tanh, trueno::gelu_tanh_f64),
        "none" => unary_map(py, x, out, trueno::gelu_erf, trueno::gelu_erf_f64),
        other => Err(PyValueError::new_err(format!(
            "approximate must be \"tanh\" or \"none\", got {other:?}"
        ))),
    }
}

/// scale(x, alpha, out=None) -> ndarray: alpha * x (alpha rounded to x's dtype).
/// float32 or float64.
#[pyfunction]
#[pyo3(signature = (x, alpha, out = None))]
fn scale<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    alpha: f64,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    unary_map(
        py,
        x,
        out,
        move |p, o| trueno::scale(p, alpha as f32, o),
        move |p, o| trueno::scale_f64(p, alpha, o),
    )
}

/// axpy(alpha, x, y) -> None: y += alpha * x in place (BLAS axpy). float32 or
/// float64, both the same dtype and shape; y must be C-contiguous and writeable.
#[pyfunction]
fn axpy<'py>(
    py: Python<'py>,
    alpha: f64,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
) -> PyResult<()> {
    let (fx, fy) = (floats("x", x)?, floats("y", y)?);
    same_shape(("x", "y"), fx.shape(), fy.shape())?;
    let as_y = |e: PyErr| PyValueError::new_err(e.to_string().replace("out", "y"));
    match (fx, fy) {
        (Floats::F32(x), Floats::F32(y)) => {
            let y = output::<f32>(py, Some(y.as_any()), x.shape(), "float32").map_err(as_y)?;
            write2(py, ("x", &x), None, &y, |p, _, o| {
                trueno::axpy(alpha as f32, p, o)
            })?
            .map_err(kernel_error)
        }
        (Floats::F64(x), Floats::F64(y)) => {
            let y = output::<f64>(py, Some(y.as_any()), x.shape(), "float64").map_err(as_y)?;
            write2(py, ("x", &x), None, &y, |p, _, o| {
                trueno::axpy_f64(alpha, p, o)
            })?
            .map_err(kernel_error)
        }
        (x, y) => Err(mixed_dtypes(("x", "y"), &x, &y)),
    }
}

/// fma(a, b, c, out=None) -> ndarray: a * b + c with one rounding. float32 or
/// float64, one dtype for all three.
#[pyfunction]
#[pyo3(signature = (a, b, c, out = None))]
fn fma<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    c: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (fa, fb, fc) = (floats("a", a)?, floats("b", b)?, floats("c", c)?);
    same_shape(("a", "b"), fa.shape(), fb.shape())?;
    same_shape(("a", "c"), fa.shape(), fc.shape())?;
    match (fa, fb, fc) {
        (Floats::F32(a), Floats::F32(b), Floats::F32(c)) => {
            let res = output::<f32>(py, out, a.shape(), "float32")?;
            write_with(py, &[("a", &a), ("b", &b), ("c", &c)], &res, |ins, o| {
                trueno::fma(ins[0], ins[1], ins[2], o)
            })?
            .map_err(kernel_error)?;
            Ok(res.into_any())
        }
        (Floats::F64(a), Floats::F64(b), Floats::F64(c)) => {
            let res = output::<f64>(py, out, a.shape(), "float64")?;
            write_with(py, &[("a", &a), ("b", &b), ("c", &c)], &res, |ins, o| {
                trueno::fma_f64(ins[0], ins[1], ins[2], o)
            })?
            .map_err(kernel_error)?;
            Ok(res.into_any())
        }
        (a, b, c) => {
            let odd = if a.dtype_name() == b.dtype_name() {
                (("a", "c"), &a, &c)
            } else {
                (("a", "b"), &a, &b)
            };
            Err(mixed_dtypes(odd.0, odd.1, odd.2))
        }
    }
}

macro_rules! reduction {
    ($name:ident, $f32:path, $f64:path, $ret:ty, $doc:literal) => {
        #[doc = $doc]
        #[pyfunction]
        fn $name<'py>(py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<$ret> {
            match floats("x", x)? {
                Floats::F32(a) => reduce2(py, ("x", &a), None, |p, _| $f32(p).map(<$ret>::from)),
                Floats::F64(a) => reduce2(py, ("x", &a), None, |p, _| $f64(p).map(<$ret>::from)),
            }?
            .map_err(kernel_error)
        }
    };
}

reduction!(
    sum,
    trueno::sum,
    trueno::sum_f64,
    f64,
    "sum(x) -> float: sum of all elements (0.0 if empty); f32 partial sums blockwise into f64."
);
reduction!(
    norm,
    trueno::norm,
    trueno::norm_f64,
    f64,
    "norm(x) -> float: Euclidean norm of all elements, overflow-safe."
);
reduction!(
    mean,
    trueno::mean,
    trueno::mean_f64,
    f64,
    "mean(x) -> float: arithmetic mean (nan if empty)."
);
reduction!(
    min,
    trueno::min,
    trueno::min_f64,
    f64,
    "min(x) -> float: smallest element; nan if any is nan; ValueError if empty."
);
reduction!(
    max,
    trueno::max,
    trueno::max_f64,
    f64,
    "max(x) -> float: largest element; nan if any is nan; ValueError if empty."
);

fn index(i: usize) -> i64 {
    // Slice lengths fit in isize, so this never saturates.
    i64::try_from(i).unwrap_or(i64::MAX)
}

/// argmin(x) -> int: flat C-order index of the first minimum (or first nan).
#[pyfunction]
fn argmin<'py>(py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<i64> {
    match floats("x", x)? {
        Floats::F32(a) => reduce2(py, ("x", &a), None, |p, _| trueno::argmin(p)),
        Floats::F64(a) => reduce2(py, ("x", &a), None, |p, _| trueno::argmin_f64(p)),
    }?
    .map(index)
    .map_err(kernel_error)
}

/// argmax(x) -> int: flat C-order index of the first maximum (or first nan).
#[pyfunction]
fn argmax<'py>(py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<i64> {
    match floats("x", x)? {
        Floats::F32(a) => reduce2(py, ("x", &a), None, |p, _| trueno::argmax(p)),
        Floats::F64(a) => reduce2(py, ("x", &a), None, |p, _| trueno::argmax_f64(p)),
    }?
    .map(index)
    .map_err(kernel_error)
}

fn ddof_of(ddof: i64) -> PyResult<usize> {
    usize::try_from(ddof)
        .map_err(|_| PyValueError::new_err(format!("ddof must be >= 0, got {ddof}")))
}

/// var(x, ddof=0) -> float: variance Σ(x-mean)²/(n-ddof), corrected two-pass.
#[pyfunction]
#[pyo3(signature = (x, ddof = 0))]
fn var<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, ddof: i64) -> PyResult<f64> {
    let d = ddof_of(ddof)?;
    match floats("x", x)? {
        Floats::F32(a) => reduce2(py, ("x", &a), None, |p, _| trueno::var(p, d).map(f64::from)),
        Floats::F64(a) => reduce2(py, ("x", &a), None, |p, _| trueno::var_f64(p, d)),
    }?
    .map_err(kernel_error)
}

/// std(x, ddof=0) -> float: sqrt(var(x, ddof)).
#[pyfunction(name = "std")]
#[pyo3(signature = (x, ddof = 0))]
fn std_<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, ddof: i64) -> PyResult<f64> {
    let d = ddof_of(ddof)?;
    match floats("x", x)? {
        Floats::F32(a) => reduce2(py, ("x", &a), None, |p, _| trueno::std(p, d).map(f64::from)),
        Floats::F64(a) => reduce2(py, ("x", &a), None, |p, _| trueno::std_f64(p, d)),
    }?
    .map_err(kernel_error)
}

/// dot(a, b) -> float: inner product of two 1-D arrays of one dtype.
#[pyfunction]
fn dot<'py>(py: Python<'py>, a: &Bound<'py, PyAny>, b: &Bound<'py, PyAny>) -> PyResult<f64> {
    let (fa, fb) = (floats("a", a)?, floats("b", b)?);
    if fa.shape().len() != 1 || fa.shape() != fb.shape() {
        return Err(PyValueError::new_err(format!(
            "dot needs two 1-D arrays of one length: shapes {} and {} not aligned",
            shape_str(fa.shape()),
            shape_str(fb.shape())
        )));
    }
    match (fa, fb) {
        (Floats::F32(x), Floats::F32(y)) => reduce2(py, ("a", &x), Some(("b", &y)), |p, q| {
            trueno::dot(p, q).map(f64::from)
        }),
        (Floats::F64(x), Floats::F64(y)) => {
            reduce2(py, ("a", &x), Some(("b", &y)), trueno::dot_f64)
        }
        (x, y) => return Err(mixed_dtypes(("a", "b"), &x, &y)),
    }?
    .map_err(kernel_error)
}

/// Run a row-wise kernel over `axis` of `x` (moving it last if needed).
fn rowwise<'py, T: numpy::Element + Copy + Default + Send + Sync>(
    py: Python<'py>,
    x: &Bound<'py, PyArrayDyn<T>>,
    axis: i64,
    out: Option<&Bound<'py, PyAny>>,
    dtype: &str,
    k: impl Fn(&[T], usize, &mut [T]) -> Result<(), trueno::Error> + Send + Sync,
) -> PyResult<Bound<'py, PyAny>> {
    let shape = x.shape().to_vec();
    let nd = shape.len();
    if nd == 0 {
        return Err(PyValueError::new_err(
            "expected an array of at least 1 dimension, got a 0-d array",
        ));
    }
    let ax = if axis < 0 { axis + nd as i64 } else { axis };
    if ax < 0 || ax >= nd as i64 {
        return Err(PyValueError::new_err(format!(
            "axis {axis} is out of bounds for array of dimension {nd}"
        )));
    }
    let ax = ax as usize;
    let res = output::<T>(py, out, &shape, dtype)?;
    let cols = shape[ax];
    if ax == nd - 1 {
        write2(py, ("x", x), None, &res, |p, _, o| k(p, cols, o))?.map_err(kernel_error)?;
        return Ok(res.into_any());
    }
    // Softmax along an inner axis: gather that axis last, run, scatter back.
    let moved_in: Vec<T> = {
        let r = read("x", x)?;
        let mut v = r.as_array();
        v.swap_axes(ax, nd - 1);
        v.iter().copied().collect()
    };
    let mut moved_out = vec![T::default(); moved_in.len()];
    run(py, moved_in.len(), || k(&moved_in, cols, &mut moved_out)).map_err(kernel_error)?;
    let mut swapped = shape.clone();
    swapped.swap(ax, nd - 1);
    let src = ArrayView::from_shape(IxDyn(&swapped), &moved_out)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let mut w = write_borrow("out", &res)?;
    let mut dst = w.as_array_mut();
    dst.swap_axes(ax, nd - 1);
    dst.assign(&src);
    drop(w);
    Ok(res.into_any())
}

type RowsK<T> = fn(&[T], usize, &mut [T]) -> Result<(), trueno::Error>;

/// A row kernel by dtype: float32 or float64.
fn rows_by_dtype<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    axis: i64,
    out: Option<&Bound<'py, PyAny>>,
    k32: RowsK<f32>,
    k64: RowsK<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    match floats("x", x)? {
        Floats::F32(a) => rowwise(py, &a, axis, out, "float32", k32),
        Floats::F64(a) => rowwise(py, &a, axis, out, "float64", k64),
    }
}

/// softmax(x, axis=-1, out=None) -> ndarray: exp(x - max) / sum, along axis.
/// float32 or float64.
#[pyfunction]
#[pyo3(signature = (x, axis = -1, out = None))]
fn softmax<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    axis: i64,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    rows_by_dtype(
        py,
        x,
        axis,
        out,
        trueno::softmax_rows,
        trueno::softmax_rows_f64,
    )
}

/// log_softmax(x, axis=-1, out=None) -> ndarray: x - max - log(sum exp(x - max)).
/// float32 or float64.
#[pyfunction]
#[pyo3(signature = (x, axis = -1, out = None))]
fn log_softmax<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    axis: i64,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    rows_by_dtype(
        py,
        x,
        axis,
        out,
        trueno::log_softmax_rows,
        trueno::log_softmax_rows_f64,
    )
}

/// A 1-D parameter (weight/bias) of the last-axis length, in x's dtype.
fn param<T: numpy::Element + Copy>(
    name: &str,
    obj: Option<&Bound<'_, PyAny>>,
    cols: usize,
) -> PyResult<Option<Vec<T>>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    let a = obj.cast::<PyArrayDyn<T>>().map_err(|_| {
        let got = obj
            .getattr("dtype")
            .map_or_else(|_| obj.get_type().to_string(), |d| d.to_string());
        pyo3::exceptions::PyTypeError::new_err(format!(
            "{name} must be a numpy.ndarray of x's dtype, got {got}"
        ))
    })?;
    if a.shape() != [cols] {
        return Err(PyValueError::new_err(format!(
            "{name} has shape {}, expected ({cols},) to match the last axis",
            shape_str(a.shape())
        )));
    }
    let r = read(name, a)?;
    Ok(Some(c_order(&r).into_owned()))
}

fn last_axis(shape: &[usize], op: &str) -> PyResult<usize> {
    shape
        .last()
        .copied()
        .ok_or_else(|| PyValueError::new_err(format!("{op} needs at least 1 dimension")))
}

/// layer_norm(x, weight=None, bias=None, eps=1e-5, out=None) -> ndarray:
/// (x - mean) / sqrt(var + eps) * weight + bias over the last axis. float32 or
/// float64 (weight and bias in x's dtype).
#[pyfunction]
#[pyo3(signature = (x, weight = None, bias = None, eps = 1e-5, out = None))]
fn layer_norm<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    bias: Option<&Bound<'py, PyAny>>,
    eps: f64,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    match floats("x", x)? {
        Floats::F32(x) => {
            let cols = last_axis(x.shape(), "layer_norm")?;
            let (w, b) = (
                param::<f32>("weight", weight, cols)?,
                param::<f32>("bias", bias, cols)?,
            );
            rowwise(py, &x, -1, out, "float32", |p, c, o| {
                trueno::layer_norm_rows(p, c, w.as_deref(), b.as_deref(), eps as f32, o)
            })
        }
        Floats::F64(x) => {
            let cols = last_axis(x.shape(), "layer_norm")?;
            let (w, b) = (
                param::<f64>("weight", weight, cols)?,
                param::<f64>("bias", bias, cols)?,
            );
            rowwise(py, &x, -1, out, "float64", |p, c, o| {
                trueno::layer_norm_rows_f64(p, c, w.as_deref(), b.as_deref(), eps, o)
            })
        }
    }
}

/// rms_norm(x, weight=None, eps=1e-6, out=None) -> ndarray:
/// x / sqrt(mean(x²) + eps) * weight over the last axis. float32 or float64.
#[pyfunction]
#[pyo3(signature = (x, weight = None, eps = 1e-6, out = None))]
fn rms_norm<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    eps: f64,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    match floats("x", x)? {
        Floats::F32(x) => {
            let cols = last_axis(x.shape(), "rms_norm")?;
            let w = param::<f32>("weight", weight, cols)?;
            rowwise(py, &x, -1, out, "float32", |p, c, o| {
                trueno::rms_norm_rows(p, c, w.as_deref(), eps as f32, o)
            })
        }
        Floats::F64(x) => {
            let cols = last_axis(x.shape(), "rms_norm")?;
            let w = param::<f64>("weight", weight, cols)?;
            rowwise(py, &x, -1, out, "float64", |p, c, o| {
                trueno::rms_norm_rows_f64(p, c, w.as_deref(), eps, o)
            })
        }
    }
}

/// Scores for the similarity shapes: (d,)x(d,) -> float, (d,)x(n,d) -> (n,),
/// (m,d)x(d,) -> (m,), (m,d)x(n,d) -> (m,n).
fn similarity<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    metric: trueno::Metric,
) -> PyResult<Bound<'py, PyAny>> {
    let (a, b) = (f32s("a", a)?, f32s("b", b)?);
    let (sa, sb) = (a.shape(), b.shape());
    let bad = || {
        PyValueError::new_err(format!(
            "a has shape {} and b has shape {}: expected (d,) or (m, d) and (d,) or (n, d) with one d",
            shape_str(sa),
            shape_str(sb)
        ))
    };
    let (da, db) = (*sa.last().ok_or_else(bad)?, *sb.last().ok_or_else(bad)?);
    if da != db || sa.len() > 2 || sb.len() > 2 {
        return Err(bad());
    }
    // The score of one (d,) x (d,) pair.
    let pair = |x: &[f32], y: &[f32]| match metric {
        trueno::Metric::Cosine => trueno::cosine(x, y),
        trueno::Metric::SqEuclidean => trueno::sqeuclidean(x, y),
        trueno::Metric::Dot => trueno::dot(x, y),
    };
    if sa.len() == 1
        && sb.len() == 1
        && let (Some(va), Some(vb)) = (small_view(&a), small_view(&b))
    {
        // One small pair: no tracked borrows, no GIL release (see small_view).
        let v = pair(va, vb).map_err(kernel_error)?;
        return Ok(f64::from(v).into_pyobject(py)?.into_any());
    }
    let (ra, rb) = (read("a", &a)?, read("b", &b)?);
    let (va, vb) = (c_order(&ra), c_order(&rb));
    let d = da;
    match (sa.len(), sb.len()) {
        (1, 1) => {
            let v = run(py, d, || pair(&va, &vb)).map_err(kernel_error)?;
            Ok(f64::from(v).into_pyobject(py)?.into_any())
        }
        (1, 2) | (2, 1) => {
            let (q, m, n) = if sa.len() == 1 {
                (&va, &vb, sb[0])
            } else {
                (&vb, &va, sa[0])
            };
            // SAFETY: scores_one_to_many writes all n elements before return.
            let res = unsafe { PyArray1::<f32>::new(py, [n], false) };
            let mut w = res.try_readwrite()?;
            let o = w.as_slice_mut()?;
            run(py, m.len(), || {
                trueno::scores_one_to_many(q, m, d, metric, o)
            })
            .map_err(kernel_error)?;
            drop(w);
            Ok(res.into_any())
        }
        _ => {
            let (m, n) = (sa[0], sb[0]);
            // SAFETY: scores_many_to_many writes all m*n elements.
            let res = unsafe { numpy::PyArray2::<f32>::new(py, [m, n], false) };
            let mut w = res.try_readwrite()?;
            let o = w.as_slice_mut()?;
            run(py, va.len() + vb.len(), || {
                trueno::scores_many_to_many(&va, &vb, d, metric, o)
            })
            .map_err(kernel_error)?;
            drop(w);
            Ok(res.into_any())
        }
    }
}

/// cosine_similarity(a, b): cosine of (d,)x(d,) -> float, (d,)x(n,d) -> (n,),
/// (m,d)x(n,d) -> (m,n). float32; zero vectors give nan.
#[pyfunction]
fn cosine_similarity<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    similarity(py, a, b, trueno::Metric::Cosine)
}

/// sqeuclidean(a, b): squared Euclidean distance, same shapes as
/// cosine_similarity.
#[pyfunction]
fn sqeuclidean<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    similarity(py, a, b, trueno::Metric::SqEuclidean)
}

/// top_k(query, matrix, k, metric="cosine") -> (indices int64, scores float32):
/// the k best rows of `matrix` (n, d) per query, best first; query (d,) gives
/// shape (k,), (m, d) gives (m, k). k > n returns n. metric: "cosine",
/// "dot" or "sqeuclidean" (smallest distance first).
#[pyfunction]
#[pyo3(signature = (query, matrix, k, metric = "cosine"))]
fn top_k<'py>(
    py: Python<'py>,
    query: &Bound<'py, PyAny>,
    matrix: &Bound<'py, PyAny>,
    k: i64,
    metric: &str,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let metric: trueno::Metric = metric.parse().map_err(kernel_error)?;
    let k = usize::try_from(k)
        .map_err(|_| PyValueError::new_err(format!("k must be >= 0, got {k}")))?;
    let (q, mat) = (f32s("query", query)?, f32s("matrix", matrix)?);
    let (sq, sm) = (q.shape().to_vec(), mat.shape().to_vec());
    if sm.len() != 2 || sq.is_empty() || sq.len() > 2 || sq.last() != sm.last() {
        return Err(PyValueError::new_err(format!(
            "query has shape {} and matrix has shape {}: expected (d,) or (m, d) and (n, d)",
            shape_str(&sq),
            shape_str(&sm)
        )));
    }
    let d = sm[1];
    let (rq, rm) = (read("query", &q)?, read("matrix", &mat)?);
    let (vq, vm) = (c_order(&rq), c_order(&rm));
    let m = if sq.len() == 1 { 1 } else { sq[0] };
    let (idx, scores) = run(py, vm.len(), || {
        trueno::similarity::top_k_rows(&vq, m, &vm, sm[0], d, k, metric)
    })
    .map_err(kernel_error)?;
    let kk = k.min(sm[0]);
    let idx = PyArray1::from_vec(py, idx);
    let scores = PyArray1::from_vec(py, scores);
    if sq.len() == 1 {
        Ok((idx.into_any(), scores.into_any()))
    } else {
        let shape = [sq[0], kk];
        Ok((
            idx.reshape(shape)?.into_any(),
            scores.reshape(shape)?.into_any(),
        ))
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    macro_rules! add {
        ($($f:ident),* $(,)?) => { $( m.add_function(wrap_pyfunction!($f, m)?)?; )* };
    }
    add!(
        backend,
        backends,
        set_backend,
        add,
        sub,
        mul,
        div,
        scale,
        axpy,
        fma,
        relu,
        sigmoid,
        tanh,
        gelu,
        exp,
        log,
        sum,
        dot,
        norm,
        min,
        max,
        argmin,
        argmax,
        mean,
        var,
        std_,
        softmax,
        log_softmax,
        layer_norm,
        rms_norm,
        cosine_similarity,
        sqeuclidean,
        top_k,
    );
    Ok(())
}
