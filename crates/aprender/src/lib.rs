//! aprender: the classical machine-learning algorithms a platform's AutoML hides, written
//! small enough to read and checked against scikit-learn (tests/python/test_aprender.py).
//!
//! | module | teaches |
//! |---|---|
//! | [`linear`] | least squares and ridge as one Cholesky solve of the Gram matrix |
//! | [`logistic`] | L2-regularised logistic regression (binary and multinomial) fitted by L-BFGS |
//! | [`tree`] | CART: greedy best splits under gini, entropy or squared error |
//! | [`forest`] | random forests: bootstrap rows, subsample features, average trees |
//! | [`kmeans`] | k-means++ seeding and Lloyd iterations, best of `n_init` |
//! | [`preprocessing`] | standard scaling and (stratified) train/test splits |
//! | [`metrics`] | classification and regression scores with scikit-learn's edge-case rules |
//! | [`save`] | trained models written in realizar's tabular format, served by `realizar serve` |
//! | [`rng`] | the seeded generator every random choice goes through |
//!
//! The heavy arithmetic (Gram matrices, scores `X W^T`, distances `X C^T`, dot products)
//! is trueno's: this crate holds model logic only. Data is row-major `f64`
//! ([`Matrix`]); user input is validated into [`Error`] values, never a panic.

pub mod forest;
pub mod kmeans;
pub mod linear;
pub mod logistic;
pub mod metrics;
pub mod preprocessing;
pub mod rng;
pub mod save;
pub mod tree;

/// Result alias used across aprender.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, named so the caller can fix it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Operands whose sizes must agree do not (X rows vs y, features at predict time).
    Shape(String),
    /// No samples, no features, or an empty label vector.
    Empty(String),
    /// NaN or infinity in the input.
    NonFinite {
        what: &'static str,
        row: usize,
        col: usize,
        value: f64,
    },
    /// A classifier was given labels of a single class.
    OneClass { label: i64 },
    /// A hyper-parameter outside its domain (alpha < 0, k > n_samples, ...).
    Parameter(String),
    /// The normal equations are singular (collinear or constant columns).
    Singular(String),
    /// A trueno kernel rejected its operands (a bug here, surfaced as a value).
    Kernel(trueno::Error),
    /// Writing the model file failed.
    Save(realizar::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Shape(m) | Error::Empty(m) | Error::Parameter(m) | Error::Singular(m) => {
                f.write_str(m)
            }
            Error::NonFinite {
                what,
                row,
                col,
                value,
            } => write!(
                f,
                "{what} contains {value} at row {row}, column {col}: only finite numbers are accepted"
            ),
            Error::OneClass { label } => write!(
                f,
                "y contains only one class ({label}): a classifier needs at least 2 classes"
            ),
            Error::Kernel(e) => write!(f, "kernel error: {e}"),
            Error::Save(e) => write!(f, "cannot save model: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<trueno::Error> for Error {
    fn from(e: trueno::Error) -> Self {
        Error::Kernel(e)
    }
}

impl From<realizar::Error> for Error {
    fn from(e: realizar::Error) -> Self {
        Error::Save(e)
    }
}

/// A borrowed row-major `rows x cols` matrix of finite f64, validated on construction.
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a> {
    data: &'a [f64],
    rows: usize,
    cols: usize,
}

impl<'a> Matrix<'a> {
    /// Check shape (at least one row and one column) and finiteness.
    pub fn new(data: &'a [f64], rows: usize, cols: usize) -> Result<Self> {
        if rows == 0 || cols == 0 {
            return Err(Error::Empty(format!(
                "X has shape ({rows}, {cols}): at least one sample and one feature are required"
            )));
        }
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::Shape(format!(
                "X has {} values, which is not {rows} rows x {cols} columns",
                data.len()
            )));
        }
        check_finite("X", data, cols)?;
        Ok(Matrix { data, rows, cols })
    }

    pub fn data(&self) -> &'a [f64] {
        self.data
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn row(&self, i: usize) -> &'a [f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The `cols x rows` transpose, so that `X^T A` is one row-major GEMM.
    pub(crate) fn transposed(&self) -> Vec<f64> {
        transpose(self.data, self.rows, self.cols)
    }
}

pub(crate) fn transpose(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut t = vec![0.0; a.len()];
    for (i, row) in a.chunks_exact(cols.max(1)).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            t[j * rows + i] = v;
        }
    }
    t
}

pub(crate) fn check_finite(what: &'static str, data: &[f64], cols: usize) -> Result<()> {
    match data.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::NonFinite {
            what,
            row: i / cols.max(1),
            col: i % cols.max(1),
            value: data[i],
        }),
    }
}

/// y must have one finite value per row of X.
pub(crate) fn check_target(x: &Matrix<'_>, y: &[f64]) -> Result<()> {
    if y.len() != x.rows() {
        return Err(Error::Shape(format!(
            "X has {} samples but y has {}",
            x.rows(),
            y.len()
        )));
    }
    check_finite("y", y, 1)
}

/// Prediction input must have the number of features the model was fitted on.
pub(crate) fn check_features(x: &Matrix<'_>, n_features: usize, model: &str) -> Result<()> {
    if x.cols() != n_features {
        return Err(Error::Shape(format!(
            "X has {} features, but {model} was fitted with {n_features} features",
            x.cols()
        )));
    }
    Ok(())
}

/// Integer class labels encoded as indices into their sorted unique values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    /// Sorted distinct labels (scikit-learn's `classes_`).
    pub classes: Vec<i64>,
    /// For each sample, the index of its label in `classes`.
    pub codes: Vec<usize>,
}

impl Labels {
    /// Encode `y`; a classifier needs `n` labels and at least two classes.
    pub fn encode(y: &[i64], n: usize) -> Result<Self> {
        if y.len() != n {
            return Err(Error::Shape(format!(
                "X has {n} samples but y has {}",
                y.len()
            )));
        }
        let mut classes = y.to_vec();
        classes.sort_unstable();
        classes.dedup();
        match classes[..] {
            [] => return Err(Error::Empty("y is empty".into())),
            [label] => return Err(Error::OneClass { label }),
            _ => {}
        }
        let codes = y
            .iter()
            .map(|v| classes.binary_search(v).unwrap_or_default())
            .collect();
        Ok(Labels { classes, codes })
    }
}
/// First index of the largest value (`np.argmax`'s tie rule).
pub(crate) fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}
