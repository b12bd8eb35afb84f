//! Hand-built model files: the arithmetic of each model kind checked against values
//! worked out by hand, and the loader's defences against corrupt files.

use safetensors::Dtype;
use safetensors::tensor::TensorView;
use serde_json::{Value, json};

use super::*;

enum T {
    F64(Vec<usize>, Vec<f64>),
    I64(Vec<i64>),
}

fn file(meta: &Value, tensors: Vec<(&str, T)>) -> Vec<u8> {
    let bytes: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, t)| match t {
            T::F64(shape, v) => (
                name.to_owned(),
                Dtype::F64,
                shape,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            T::I64(v) => (
                name.to_owned(),
                Dtype::I64,
                vec![v.len()],
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                TensorView::new(*d, s.clone(), b).expect("consistent test tensor"),
            )
        })
        .collect();
    let mut info = std::collections::HashMap::new();
    info.insert(METADATA_KEY.to_owned(), meta.to_string());
    safetensors::serialize(views, Some(info)).expect("serialisable")
}

fn base(extra: &Value) -> Value {
    let mut m =
        json!({"format": FORMAT_NAME, "format_version": 1, "estimator": "Test", "n_features": 2});
    m.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    m
}

/// Binary logistic regression with `score = x0 - 2 x1 + 0.5`, classes `["no", "yes"]`.
pub(crate) fn logistic_bytes() -> Vec<u8> {
    file(
        &base(
            &json!({"task": "classification", "classes": ["no", "yes"], "kind": "linear", "output": "logistic"}),
        ),
        vec![
            ("coef", T::F64(vec![1, 2], vec![1.0, -2.0])),
            ("intercept", T::F64(vec![1], vec![0.5])),
        ],
    )
}

/// Two stumps on feature 0 (split at 0.5) boosted: regression `10 + 0.1 * (leaf_a + leaf_b)`.
fn boosted_bytes(left: Vec<i64>) -> Vec<u8> {
    file(
        &base(
            &json!({"task": "regression", "kind": "trees", "output": "identity", "combine": "boost",
                    "learning_rate": 0.1, "init": [10.0]}),
        ),
        vec![
            ("tree.left", T::I64(left)),
            ("tree.right", T::I64(vec![2, -1, -1, 5, -1, -1])),
            ("tree.feature", T::I64(vec![0, 0, 0, 1, 0, 0])),
            (
                "tree.threshold",
                T::F64(vec![6], vec![0.5, 0.0, 0.0, 0.0, 0.0, 0.0]),
            ),
            (
                "tree.value",
                T::F64(vec![6, 1], vec![0.0, -1.0, 1.0, 0.0, 2.0, 4.0]),
            ),
            ("tree.roots", T::I64(vec![0, 3])),
            ("tree.column", T::I64(vec![0, 0])),
        ],
    )
}

#[test]
fn logistic_regression_by_hand() {
    let m = TabularModel::from_bytes(&logistic_bytes()).unwrap();
    assert!(m.is_classifier());
    let x = [1.0, 0.0, 0.0, 1.0];
    let p = m.predict_proba(&x, 2).unwrap();
    let s = |z: f64| 1.0 / (1.0 + (-z).exp());
    for (got, want) in p.iter().zip([1.0 - s(1.5), s(1.5), 1.0 - s(-1.5), s(-1.5)]) {
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
    assert_eq!(m.predict(&x, 2).unwrap(), Prediction::Classes(vec![1, 0]));
    assert_eq!(m.classes()[1], ClassLabel::Str("yes".into()));
}

#[test]
fn boosted_stumps_by_hand() {
    let m = TabularModel::from_bytes(&boosted_bytes(vec![1, -1, -1, 4, -1, -1])).unwrap();
    // Row 0: x0=0 goes left (-1), x1=0 goes left (2): 10 + 0.1 * 1 = 10.1.
    // Row 1: x0=1 goes right (1), x1=1 goes right (4): 10 + 0.1 * 5 = 10.5.
    let Prediction::Values(v) = m.predict(&[0.0, 0.0, 1.0, 1.0], 2).unwrap() else {
        panic!("regressor")
    };
    assert!(
        (v[0] - 10.1).abs() < 1e-12 && (v[1] - 10.5).abs() < 1e-12,
        "{v:?}"
    );
    assert!(m.predict_proba(&[0.0, 0.0], 1).is_err());
}

#[test]
fn wrong_shape_and_non_finite_input_are_errors() {
    let m = TabularModel::from_bytes(&logistic_bytes()).unwrap();
    let e = m.predict(&[1.0, 2.0, 3.0], 1).unwrap_err().to_string();
    assert!(
        e.contains("3 features per row, but the model expects 2"),
        "{e}"
    );
    let e = m.predict(&[1.0, f64::NAN], 1).unwrap_err().to_string();
    assert!(e.contains("NaN"), "{e}");
    assert_eq!(m.predict(&[], 0).unwrap(), Prediction::Classes(vec![]));
}

#[test]
fn cyclic_tree_is_rejected() {
    // Node 3 pointing back at node 0 would make the walk loop forever.
    let e = TabularModel::from_bytes(&boosted_bytes(vec![1, -1, -1, 0, -1, -1]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("node 3 has child 0"), "{e}");
}

#[test]
fn missing_metadata_and_bad_versions_are_rejected() {
    let e = TabularModel::from_bytes(b"garbage")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a safetensors file"), "{e}");
    let newer = file(
        &json!({"format": FORMAT_NAME, "format_version": 2, "estimator": "T", "n_features": 1,
               "task": "regression", "kind": "linear", "output": "identity"}),
        vec![
            ("coef", T::F64(vec![1, 1], vec![1.0])),
            ("intercept", T::F64(vec![1], vec![0.0])),
        ],
    );
    let e = TabularModel::from_bytes(&newer).unwrap_err().to_string();
    assert!(e.contains("format_version 2"), "{e}");
    let mismatch = file(
        &base(
            &json!({"task": "classification", "classes": [0, 1, 2], "kind": "linear", "output": "softmax"}),
        ),
        vec![
            ("coef", T::F64(vec![2, 2], vec![1.0; 4])),
            ("intercept", T::F64(vec![2], vec![0.0; 2])),
        ],
    );
    let e = TabularModel::from_bytes(&mismatch).unwrap_err().to_string();
    assert!(e.contains("2 scores per row"), "{e}");
}
