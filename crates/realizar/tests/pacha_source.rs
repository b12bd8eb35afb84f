//! `--model pacha://ROOT/NAME@ALIAS`: realizar serves a model out of a pacha registry,
//! and a tampered artifact is refused before it is parsed.

use std::path::Path;

use realizar::server::{ServedModel, load_model};
use safetensors::Dtype;
use safetensors::tensor::TensorView;

/// A binary logistic regression on two features, as realizar tabular bytes.
fn model_bytes() -> Vec<u8> {
    let coef: Vec<u8> = [1.0f64, -1.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let intercept: Vec<u8> = 0.0f64.to_le_bytes().to_vec();
    let tensors = vec![
        (
            "coef",
            TensorView::new(Dtype::F64, vec![1, 2], &coef).unwrap(),
        ),
        (
            "intercept",
            TensorView::new(Dtype::F64, vec![1], &intercept).unwrap(),
        ),
    ];
    let meta = r#"{"format": "realizar.tabular", "format_version": 1, "estimator": "LogisticRegression",
                   "task": "classification", "n_features": 2, "classes": [0, 1],
                   "kind": "linear", "output": "logistic"}"#;
    let info = std::collections::HashMap::from([("realizar.tabular".to_owned(), meta.to_owned())]);
    safetensors::serialize(tensors, Some(info)).unwrap()
}

#[test]
fn serves_the_champion_and_refuses_a_tampered_one() {
    let root = std::env::temp_dir().join(format!("realizar-pacha-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let registry = pacha::Registry::init(&root).unwrap();
    let key = pacha::keys::generate().unwrap();
    registry.trust(&key.verifying_key()).unwrap();
    let bytes = model_bytes();
    let card = serde_json::json!({"metrics": {"auc": 0.9}, "run_id": "r1"});
    registry
        .register("fraud", &bytes, "fraud.safetensors", &card, &key)
        .unwrap();
    registry.promote("fraud", 1, "champion").unwrap();

    let uri = format!("pacha://{}/fraud@champion", root.display());
    let (model, name) = load_model(Path::new(&uri)).unwrap();
    assert_eq!(name, "fraud");
    let ServedModel::Tabular(model) = model else {
        panic!("expected a tabular model");
    };
    assert_eq!(model.n_features(), 2);

    let missing = format!("pacha://{}/fraud@challenger", root.display());
    let err = load_model(Path::new(&missing)).unwrap_err().to_string();
    assert!(err.contains("no alias \"challenger\""), "{err}");
    assert!(load_model(Path::new("pacha://fraud")).is_err());

    // The registry holds one blob: the model's bytes, named by their SHA-256.
    let blob = std::fs::read_dir(root.join("blobs/sha256"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut b = std::fs::read(&blob).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0x55;
    std::fs::write(&blob, b).unwrap();
    let err = load_model(Path::new(&uri)).unwrap_err().to_string();
    assert!(
        err.contains("refused by the registry") && err.contains("tampered"),
        "{err}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}
