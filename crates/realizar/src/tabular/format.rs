//! Reading the realizar tabular file: safetensors tensors plus a JSON metadata document.
//!
//! Every index in the file is checked before it is trusted, so a corrupt or hostile file
//! is a `Format` error and never an out-of-bounds panic or an endless tree walk.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::trees::{Combine, Forest};
use super::{Activation, Body, Dense, Output, TabularModel};
use crate::error::{Error, Result};
use crate::model_io::{Dtype, SafeTensorsFile, TensorView};

/// The `__metadata__` key whose value is the JSON metadata document.
pub const METADATA_KEY: &str = "realizar.tabular";
/// The value of the document's `format` field.
pub const FORMAT_NAME: &str = "realizar.tabular";
/// The newest format version this reader understands.
pub const FORMAT_VERSION: u32 = 1;

/// Whether the model predicts classes or values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Classification,
    Regression,
}

/// A class label as scikit-learn's `classes_` held it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClassLabel {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// The JSON metadata document of a tabular model file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metadata {
    pub format: String,
    pub format_version: u32,
    /// scikit-learn class name, e.g. `RandomForestClassifier`.
    pub estimator: String,
    #[serde(default)]
    pub producer: String,
    pub task: Task,
    pub n_features: usize,
    #[serde(default = "one")]
    pub n_outputs: usize,
    #[serde(default)]
    pub feature_names: Option<Vec<String>>,
    #[serde(default)]
    pub classes: Vec<ClassLabel>,
    /// `linear`, `mlp` or `trees`.
    pub kind: String,
    /// `identity`, `logistic`, `exponential`, `softmax`, `ovr` or `probability`.
    pub output: String,
    #[serde(default)]
    pub activation: Option<String>,
    #[serde(default)]
    pub n_layers: Option<usize>,
    /// `mean`, `mean_normalized` or `boost`.
    #[serde(default)]
    pub combine: Option<String>,
    #[serde(default)]
    pub learning_rate: Option<f64>,
    #[serde(default)]
    pub init: Option<Vec<f64>>,
}

fn one() -> usize {
    1
}

fn bad(message: impl Into<String>) -> Error {
    // The caller that knows the path fills it in.
    Error::Format {
        path: PathBuf::new(),
        message: message.into(),
    }
}

struct Tensors<'a> {
    st: SafeTensorsFile<'a>,
}

impl Tensors<'_> {
    fn view(&self, name: &str) -> Result<TensorView<'_>> {
        self.st.tensor(name).map_err(|e| bad(e.0))
    }

    fn shape(&self, name: &str) -> Result<Vec<usize>> {
        Ok(self.view(name)?.shape.to_vec())
    }

    fn floats(&self, name: &str, shape: &[usize]) -> Result<Vec<f64>> {
        let view = self.view(name)?;
        if view.shape != shape {
            return Err(bad(format!(
                "tensor {name} has shape {:?}, expected {shape:?}",
                view.shape
            )));
        }
        let data = view.data;
        match view.dtype {
            Dtype::F64 => Ok(data
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect()),
            Dtype::F32 => Ok(data
                .chunks_exact(4)
                .map(|b| f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes"))))
                .collect()),
            other => Err(bad(format!(
                "tensor {name} has dtype {other:?}, expected F32 or F64"
            ))),
        }
    }

    fn ints(&self, name: &str, len: usize) -> Result<Vec<i64>> {
        let view = self.view(name)?;
        if view.shape != [len] {
            return Err(bad(format!(
                "tensor {name} has shape {:?}, expected [{len}]",
                view.shape
            )));
        }
        let data = view.data;
        match view.dtype {
            Dtype::I64 => Ok(data
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect()),
            Dtype::I32 => Ok(data
                .chunks_exact(4)
                .map(|b| i64::from(i32::from_le_bytes(b.try_into().expect("4 bytes"))))
                .collect()),
            other => Err(bad(format!(
                "tensor {name} has dtype {other:?}, expected I32 or I64"
            ))),
        }
    }
}

fn dense(t: &Tensors<'_>, weight: &str, bias: &str, inputs: usize) -> Result<Dense> {
    let shape = t.shape(weight)?;
    let [outputs, got_inputs] = shape[..] else {
        return Err(bad(format!(
            "tensor {weight} must be 2-D [out, in], has shape {shape:?}"
        )));
    };
    if got_inputs != inputs {
        return Err(bad(format!(
            "tensor {weight} takes {got_inputs} inputs, expected {inputs}"
        )));
    }
    // The file keeps [out, in]; the GEMM wants the right-hand operand [in, out].
    let rows = t.floats(weight, &[outputs, inputs])?;
    let mut transposed = vec![0.0; inputs * outputs];
    for (o, row) in rows.chunks_exact(inputs.max(1)).enumerate() {
        for (i, &w) in row.iter().enumerate() {
            transposed[i * outputs + o] = w;
        }
    }
    Ok(Dense {
        weight: transposed,
        bias: t.floats(bias, &[outputs])?,
        inputs,
        outputs,
    })
}

fn output_kind(name: &str) -> Result<Output> {
    Ok(match name {
        "identity" => Output::Identity,
        "logistic" => Output::Logistic,
        "exponential" => Output::Exponential,
        "softmax" => Output::Softmax,
        "ovr" => Output::OneVsRest,
        "probability" => Output::Probability,
        other => return Err(bad(format!("unknown output {other:?}"))),
    })
}

fn activation(name: &str) -> Result<Activation> {
    Ok(match name {
        "identity" => Activation::Identity,
        "logistic" => Activation::Logistic,
        "tanh" => Activation::Tanh,
        "relu" => Activation::Relu,
        other => return Err(bad(format!("unknown activation {other:?}"))),
    })
}

fn forest(t: &Tensors<'_>, meta: &Metadata) -> Result<Forest> {
    let shape = t.shape("tree.value")?;
    let [nodes, value_width] = shape[..] else {
        return Err(bad(format!(
            "tensor tree.value must be 2-D [nodes, width], has shape {shape:?}"
        )));
    };
    let left = t.ints("tree.left", nodes)?;
    let right = t.ints("tree.right", nodes)?;
    let feature = t.ints("tree.feature", nodes)?;
    let threshold = t.floats("tree.threshold", &[nodes])?;
    let value = t.floats("tree.value", &[nodes, value_width])?;
    let n_trees = t.shape("tree.roots")?.first().copied().unwrap_or(0);
    if n_trees == 0 {
        return Err(bad("tree.roots is empty: a forest needs at least one tree"));
    }
    let roots = t.ints("tree.roots", n_trees)?;
    let roots: Vec<usize> = roots
        .iter()
        .map(|&r| {
            usize::try_from(r)
                .ok()
                .filter(|&r| r < nodes)
                .ok_or_else(|| bad(format!("tree root {r} out of range")))
        })
        .collect::<Result<_>>()?;
    // Children always come after their parent (scikit-learn builds depth first), which
    // also proves every walk from a root ends at a leaf.
    let mut depth = vec![0usize; nodes];
    let mut max_depth = 0;
    for node in 0..nodes {
        if left[node] < 0 {
            continue;
        }
        for child in [left[node], right[node]] {
            let ok = usize::try_from(child).is_ok_and(|c| c > node && c < nodes);
            if !ok {
                return Err(bad(format!(
                    "node {node} has child {child}: must be in ({node}, {nodes})"
                )));
            }
            depth[child as usize] = depth[node] + 1;
            max_depth = max_depth.max(depth[node] + 1);
        }
        if usize::try_from(feature[node]).map_or(true, |f| f >= meta.n_features) {
            return Err(bad(format!(
                "node {node} splits on feature {} of {}",
                feature[node], meta.n_features
            )));
        }
    }
    let (combine, init, column) = match meta.combine.as_deref() {
        Some("mean") | Some("mean_normalized") => {
            let normalize = meta.combine.as_deref() == Some("mean_normalized");
            (
                Combine::Mean { normalize },
                vec![0.0; value_width],
                vec![0; n_trees],
            )
        }
        Some("boost") => {
            let learning_rate = meta
                .learning_rate
                .ok_or_else(|| bad("combine=boost needs learning_rate"))?;
            let init = meta
                .init
                .clone()
                .ok_or_else(|| bad("combine=boost needs init"))?;
            if init.is_empty() {
                return Err(bad("init must have one value per score column"));
            }
            let column = t.ints("tree.column", n_trees)?;
            let column = column
                .iter()
                .map(|&c| {
                    usize::try_from(c)
                        .ok()
                        .filter(|&c| c < init.len())
                        .ok_or_else(|| bad(format!("tree column {c} out of range")))
                })
                .collect::<Result<_>>()?;
            (Combine::Boost { learning_rate }, init, column)
        }
        other => return Err(bad(format!("unknown combine {other:?}"))),
    };
    Ok(Forest {
        left,
        right,
        feature,
        threshold,
        value,
        value_width,
        roots,
        column,
        combine,
        init,
        max_depth,
    })
}

/// Parse and validate a whole model file.
pub(super) fn parse(bytes: &[u8]) -> Result<TabularModel> {
    let st =
        SafeTensorsFile::parse(bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let doc = st.metadata().get(METADATA_KEY).ok_or_else(|| {
        bad(format!(
            "no `{METADATA_KEY}` entry in the safetensors metadata: not a realizar tabular model"
        ))
    })?;
    let meta: Metadata =
        serde_json::from_str(doc).map_err(|e| bad(format!("metadata document: {e}")))?;
    if meta.format != FORMAT_NAME {
        return Err(bad(format!(
            "format is {:?}, expected {FORMAT_NAME:?}",
            meta.format
        )));
    }
    if meta.format_version == 0 || meta.format_version > FORMAT_VERSION {
        return Err(bad(format!(
            "format_version {} is not supported by this reader (1..={FORMAT_VERSION})",
            meta.format_version
        )));
    }
    if meta.n_features == 0 || meta.n_outputs == 0 {
        return Err(bad("n_features and n_outputs must be positive"));
    }
    let t = Tensors { st };
    let output = output_kind(&meta.output)?;
    let body = match meta.kind.as_str() {
        "linear" => Body::Linear(dense(&t, "coef", "intercept", meta.n_features)?),
        "mlp" => {
            let n = meta
                .n_layers
                .ok_or_else(|| bad("kind=mlp needs n_layers"))?;
            let act = activation(
                meta.activation
                    .as_deref()
                    .ok_or_else(|| bad("kind=mlp needs activation"))?,
            )?;
            let mut layers = Vec::with_capacity(n);
            let mut inputs = meta.n_features;
            for i in 0..n {
                let layer = dense(
                    &t,
                    &format!("layers.{i}.weight"),
                    &format!("layers.{i}.bias"),
                    inputs,
                )?;
                inputs = layer.outputs;
                layers.push(layer);
            }
            if layers.is_empty() {
                return Err(bad("an mlp needs at least one layer"));
            }
            Body::Mlp {
                layers,
                activation: act,
            }
        }
        "trees" => Body::Trees(forest(&t, &meta)?),
        other => return Err(bad(format!("unknown kind {other:?}"))),
    };
    let width = match &body {
        Body::Linear(d) => d.outputs,
        Body::Mlp { layers, .. } => layers.last().map_or(0, |d| d.outputs),
        Body::Trees(f) => f.width(),
    };
    // The scores a row produces must fit the output link and the declared classes.
    let expected = match (meta.task, output) {
        (Task::Regression, Output::Identity) => meta.n_outputs,
        (Task::Classification, Output::Logistic | Output::Exponential) => {
            if meta.classes.len() != 2 {
                return Err(bad(format!(
                    "output {} needs exactly 2 classes",
                    meta.output
                )));
            }
            1
        }
        (Task::Classification, Output::Softmax | Output::OneVsRest | Output::Probability) => {
            if meta.classes.len() < 2 {
                return Err(bad("a classifier needs at least 2 classes"));
            }
            meta.classes.len()
        }
        (task, _) => {
            return Err(bad(format!(
                "output {} does not fit task {task:?}",
                meta.output
            )));
        }
    };
    if width != expected {
        return Err(bad(format!(
            "the model produces {width} scores per row, output {} needs {expected}",
            meta.output
        )));
    }
    Ok(TabularModel { meta, body, output })
}
