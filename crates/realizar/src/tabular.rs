//! Tabular models exported from scikit-learn: linear models, MLPs and tree ensembles.
//!
//! One file holds a whole model: safetensors tensors for the weights, and a JSON
//! document under the safetensors `__metadata__` key `realizar.tabular` that says how
//! to read them (the format is specified in `docs/realizar-format.md`).
//!
//! The arithmetic follows scikit-learn's own, so predictions agree with it:
//! * linear models and MLPs multiply in float64 with trueno's GEMM (`trueno::matmul_f64`),
//!   the precision scikit-learn fits and predicts in, so they agree to rounding;
//! * trees compare the input cast to float32 against float64 thresholds, exactly as
//!   scikit-learn's `DTYPE` does, and sum leaf values in float64, so tree ensembles
//!   agree to the last few bits;
//! * the output link (sigmoid, softmax) runs in float64 over a handful of classes per row.

mod format;
mod trees;
pub mod write;

use std::path::Path;

pub use format::{ClassLabel, FORMAT_NAME, FORMAT_VERSION, METADATA_KEY, Metadata, Task};

use crate::error::{Error, Result};
use trees::Forest;

/// How the raw scores of a model become its outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Regression: the raw scores are the predictions.
    Identity,
    /// Binary classification from one score: `p1 = sigmoid(score)`.
    Logistic,
    /// Binary classification from one score with the exponential (AdaBoost) loss:
    /// `p1 = sigmoid(2 * score)`.
    Exponential,
    /// Multiclass: softmax over one score per class.
    Softmax,
    /// Multiclass one-vs-rest: a sigmoid per class, normalised to sum to one.
    OneVsRest,
    /// The scores are already class probabilities (tree leaves).
    Probability,
}

/// Hidden-layer activations of scikit-learn's MLPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Identity,
    Logistic,
    Tanh,
    Relu,
}

/// One fully connected layer. The weight is kept `[in, out]` in memory, the right-hand
/// operand of `X[rows, in] @ W[in, out]`, so a whole batch is one trueno GEMM.
#[derive(Debug, Clone)]
struct Dense {
    weight: Vec<f64>,
    bias: Vec<f64>,
    inputs: usize,
    outputs: usize,
}

impl Dense {
    /// `y = x @ w + b` for every row of `x`.
    fn forward(&self, x: &[f64], rows: usize) -> Result<Vec<f64>> {
        let mut y = vec![0.0f64; rows * self.outputs];
        if rows == 0 {
            return Ok(y);
        }
        // One thread: a server already runs one request per core.
        trueno::matmul_f64(x, &self.weight, &mut y, rows, self.inputs, self.outputs, 1)?;
        for row in y.chunks_exact_mut(self.outputs) {
            row.iter_mut().zip(&self.bias).for_each(|(v, b)| *v += b);
        }
        Ok(y)
    }
}

#[derive(Debug, Clone)]
enum Body {
    /// `scores = X W^T + b` (LinearRegression, LogisticRegression).
    Linear(Dense),
    /// Dense layers with `activation` between them (MLPClassifier, MLPRegressor).
    Mlp {
        layers: Vec<Dense>,
        activation: Activation,
    },
    /// Decision trees, random forests, gradient boosting.
    Trees(Forest),
}

/// A scikit-learn estimator loaded from a realizar tabular file.
#[derive(Debug, Clone)]
pub struct TabularModel {
    meta: Metadata,
    body: Body,
    output: Output,
}

impl TabularModel {
    /// Load a model written by `realizar.export_sklearn`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            Error::Format { message, .. } => Error::Format {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parse a model from the bytes of a realizar tabular file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        format::parse(bytes)
    }

    /// The metadata document of the file.
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// Number of input columns the model expects.
    pub fn n_features(&self) -> usize {
        self.meta.n_features
    }

    /// Class labels of a classifier, in scikit-learn's `classes_` order; empty for a regressor.
    pub fn classes(&self) -> &[ClassLabel] {
        &self.meta.classes
    }

    /// Whether the model is a classifier.
    pub fn is_classifier(&self) -> bool {
        self.meta.task == Task::Classification
    }

    /// Number of values `predict` returns per row for a regressor (1 for a classifier).
    pub fn n_outputs(&self) -> usize {
        if self.is_classifier() {
            1
        } else {
            self.meta.n_outputs
        }
    }

    /// Name of the scikit-learn class the model was exported from.
    pub fn estimator(&self) -> &str {
        &self.meta.estimator
    }

    /// A rough count of multiply-adds or node visits per row, used to decide whether a
    /// batch is cheap enough to run inline on a server's reactor thread.
    pub fn cost_per_row(&self) -> usize {
        match &self.body {
            Body::Linear(d) => d.inputs * d.outputs,
            Body::Mlp { layers, .. } => layers.iter().map(|d| d.inputs * d.outputs).sum(),
            Body::Trees(f) => f.cost_per_row(),
        }
    }

    fn check_shape(&self, x: &[f64], rows: usize) -> Result<()> {
        let nf = self.meta.n_features;
        if rows.checked_mul(nf) != Some(x.len()) {
            let got = x.len().checked_div(rows).unwrap_or(0);
            return Err(Error::InvalidInput(format!(
                "X has {got} features per row, but the model expects {nf} features ({} values for {rows} rows given)",
                x.len()
            )));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "X contains {} at row {}, column {}: only finite numbers are accepted",
                x[i],
                i / nf,
                i % nf
            )));
        }
        Ok(())
    }

    /// Raw scores, `rows x width`, in float64.
    fn scores(&self, x: &[f64], rows: usize) -> Result<(Vec<f64>, usize)> {
        self.check_shape(x, rows)?;
        match &self.body {
            Body::Linear(d) => Ok((d.forward(x, rows)?, d.outputs)),
            Body::Mlp { layers, activation } => {
                let mut h = layers[0].forward(x, rows)?;
                for layer in &layers[1..] {
                    activate(&mut h, *activation);
                    h = layer.forward(&h, rows)?;
                }
                let width = layers.last().map_or(0, |d| d.outputs);
                Ok((h, width))
            }
            Body::Trees(forest) => {
                Ok((forest.scores(x, rows, self.meta.n_features), forest.width()))
            }
        }
    }

    /// Class probabilities, `rows x n_classes` row-major, columns in `classes()` order.
    pub fn predict_proba(&self, x: &[f64], rows: usize) -> Result<Vec<f64>> {
        if !self.is_classifier() {
            return Err(Error::InvalidInput(format!(
                "{} is a regressor: it has no predict_proba",
                self.meta.estimator
            )));
        }
        let (scores, width) = self.scores(x, rows)?;
        let k = self.meta.classes.len();
        let mut proba = vec![0.0f64; rows * k];
        if rows == 0 {
            return Ok(proba);
        }
        for (s, p) in scores.chunks_exact(width).zip(proba.chunks_exact_mut(k)) {
            link(self.output, s, p);
        }
        Ok(proba)
    }

    /// Predictions: class indices into `classes()` for a classifier, values
    /// (`rows x n_outputs`) for a regressor.
    pub fn predict(&self, x: &[f64], rows: usize) -> Result<Prediction> {
        if self.is_classifier() {
            let proba = self.predict_proba(x, rows)?;
            let k = self.meta.classes.len();
            let idx = proba.chunks_exact(k).map(argmax).collect();
            Ok(Prediction::Classes(idx))
        } else {
            let (scores, _) = self.scores(x, rows)?;
            Ok(Prediction::Values(scores))
        }
    }
}

/// What `TabularModel::predict` returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    /// Index into `TabularModel::classes()` for each row.
    Classes(Vec<usize>),
    /// `rows x n_outputs` regression values, row-major.
    Values(Vec<f64>),
}

/// First index of the largest value, like `np.argmax`.
fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

fn sigmoid(z: f64) -> f64 {
    // The two branches keep exp() from overflowing, as scipy's expit does.
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

fn activate(h: &mut [f64], activation: Activation) {
    match activation {
        Activation::Identity => {}
        Activation::Relu => h.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Tanh => h.iter_mut().for_each(|v| *v = v.tanh()),
        Activation::Logistic => h.iter_mut().for_each(|v| *v = sigmoid(*v)),
    }
}

/// Turn one row of raw scores into one row of class probabilities.
fn link(output: Output, s: &[f64], p: &mut [f64]) {
    match output {
        Output::Logistic | Output::Exponential => {
            let z = if output == Output::Exponential {
                2.0 * s[0]
            } else {
                s[0]
            };
            let p1 = sigmoid(z);
            p[0] = 1.0 - p1;
            p[1] = p1;
        }
        Output::Softmax => {
            let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut sum = 0.0;
            for (pi, &si) in p.iter_mut().zip(s) {
                *pi = (si - max).exp();
                sum += *pi;
            }
            p.iter_mut().for_each(|v| *v /= sum);
        }
        Output::OneVsRest => {
            let mut sum = 0.0;
            for (pi, &si) in p.iter_mut().zip(s) {
                *pi = sigmoid(si);
                sum += *pi;
            }
            if sum > 0.0 {
                p.iter_mut().for_each(|v| *v /= sum);
            }
        }
        Output::Probability | Output::Identity => p.copy_from_slice(s),
    }
}

#[cfg(test)]
pub(crate) mod tests;
