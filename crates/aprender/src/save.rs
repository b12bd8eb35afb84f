//! Trained models written in realizar's tabular format (`docs/realizar-format.md`), the
//! one format `realizar serve` and `realizar.TabularModel` read: the metadata document is
//! realizar's own [`Metadata`] type and the bytes come from realizar's writer
//! ([`realizar::tabular::write`]), so there is no second format to drift.
//!
//! Linear and logistic models become `kind: linear`; trees and forests become
//! `kind: trees` in scikit-learn's node layout (children after their parent, thresholds
//! compared against `float32(x)`), so the file reads exactly like an exported
//! scikit-learn estimator.

use std::path::Path;

use realizar::tabular::write::{Tensor, save, to_bytes};
use realizar::tabular::{ClassLabel, FORMAT_NAME, FORMAT_VERSION, Metadata, Task};

use crate::Result;

fn producer() -> String {
    format!("aprender {}", env!("CARGO_PKG_VERSION"))
}

pub(crate) fn metadata(
    estimator: &str,
    task: Task,
    n_features: usize,
    classes: &[i64],
    kind: &str,
    output: &str,
    combine: Option<&str>,
) -> Metadata {
    Metadata {
        format: FORMAT_NAME.into(),
        format_version: FORMAT_VERSION,
        estimator: estimator.into(),
        producer: producer(),
        task,
        n_features,
        n_outputs: 1,
        feature_names: None,
        classes: classes.iter().map(|&c| ClassLabel::Int(c)).collect(),
        kind: kind.into(),
        output: output.into(),
        activation: None,
        n_layers: None,
        combine: combine.map(Into::into),
        learning_rate: None,
        init: None,
    }
}

/// A model that can be written as a realizar tabular file.
pub trait SaveModel {
    /// The metadata document and tensors of the file.
    fn export(&self) -> (Metadata, Vec<(&'static str, Tensor)>);

    /// The bytes of the file (validated by realizar's reader).
    fn to_bytes(&self) -> Result<Vec<u8>> {
        let (meta, tensors) = self.export();
        Ok(to_bytes(&meta, &tensors)?)
    }

    /// Write the file atomically.
    fn save(&self, path: &Path) -> Result<()> {
        let (meta, tensors) = self.export();
        Ok(save(path, &meta, &tensors)?)
    }
}

pub(crate) fn f64s(shape: Vec<usize>, data: Vec<f64>) -> Tensor {
    Tensor::F64 { shape, data }
}

impl SaveModel for crate::linear::LinearModel {
    fn export(&self) -> (Metadata, Vec<(&'static str, Tensor)>) {
        let p = self.coef.len();
        let meta = metadata(
            self.estimator,
            Task::Regression,
            p,
            &[],
            "linear",
            "identity",
            None,
        );
        let tensors = vec![
            ("coef", f64s(vec![1, p], self.coef.clone())),
            ("intercept", f64s(vec![1], vec![self.intercept])),
        ];
        (meta, tensors)
    }
}

impl SaveModel for crate::logistic::LogisticModel {
    fn export(&self) -> (Metadata, Vec<(&'static str, Tensor)>) {
        let k = self.intercept.len();
        let output = if k == 1 { "logistic" } else { "softmax" };
        let meta = metadata(
            "LogisticRegression",
            Task::Classification,
            self.n_features,
            &self.classes,
            "linear",
            output,
            None,
        );
        let tensors = vec![
            ("coef", f64s(vec![k, self.n_features], self.coef.clone())),
            ("intercept", f64s(vec![k], self.intercept.clone())),
        ];
        (meta, tensors)
    }
}

/// Pack trees into realizar's node arrays (absolute child indices, one root per tree).
fn pack(trees: &[&crate::tree::Tree]) -> Vec<(&'static str, Tensor)> {
    let width = trees[0].width;
    let (mut left, mut right, mut feature, mut threshold, mut value, mut roots) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for t in trees {
        let offset = left.len() as i64;
        roots.push(offset);
        let shift = |c: &i64| if *c < 0 { -1 } else { c + offset };
        left.extend(t.left.iter().map(shift));
        right.extend(t.right.iter().map(shift));
        feature.extend_from_slice(&t.feature);
        threshold.extend_from_slice(&t.threshold);
        value.extend_from_slice(&t.value);
    }
    let nodes = left.len();
    vec![
        ("tree.left", Tensor::I64(left)),
        ("tree.right", Tensor::I64(right)),
        ("tree.feature", Tensor::I64(feature)),
        ("tree.threshold", f64s(vec![nodes], threshold)),
        ("tree.value", f64s(vec![nodes, width], value)),
        ("tree.roots", Tensor::I64(roots)),
    ]
}

fn trees_metadata(estimator: &str, classes: &[i64], n_features: usize) -> Metadata {
    let (task, output, combine) = if classes.is_empty() {
        (Task::Regression, "identity", "mean")
    } else {
        (Task::Classification, "probability", "mean_normalized")
    };
    metadata(
        estimator,
        task,
        n_features,
        classes,
        "trees",
        output,
        Some(combine),
    )
}

impl SaveModel for crate::tree::Tree {
    fn export(&self) -> (Metadata, Vec<(&'static str, Tensor)>) {
        let estimator = if self.classes.is_empty() {
            "DecisionTreeRegressor"
        } else {
            "DecisionTreeClassifier"
        };
        (
            trees_metadata(estimator, &self.classes, self.n_features),
            pack(&[self]),
        )
    }
}

impl SaveModel for crate::forest::Forest {
    fn export(&self) -> (Metadata, Vec<(&'static str, Tensor)>) {
        let estimator = if self.classes.is_empty() {
            "RandomForestRegressor"
        } else {
            "RandomForestClassifier"
        };
        let trees: Vec<&crate::tree::Tree> = self.trees.iter().collect();
        (
            trees_metadata(estimator, &self.classes, self.n_features),
            pack(&trees),
        )
    }
}
