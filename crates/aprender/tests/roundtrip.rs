//! aprender fit -> save -> realizar load -> the same predictions: the saved file is the
//! format `realizar serve` reads, unchanged.

use aprender::Matrix;
use aprender::linear::{LinearRegression, Ridge};
use aprender::rng::Rng;
use aprender::save::SaveModel;
use realizar::tabular::{Prediction, TabularModel};

fn data(n: usize, p: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let x: Vec<f64> = (0..n * p).map(|_| rng.uniform() * 2.0 - 1.0).collect();
    let y = x
        .chunks(p)
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(j, v)| (j as f64 - 1.5) * v)
                .sum::<f64>()
                + 0.1 * rng.uniform()
        })
        .collect();
    (x, y)
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("aprender-{}-{name}", std::process::id()))
}

#[test]
fn linear_and_ridge_round_trip() {
    let (x, y) = data(80, 4, 1);
    let m = Matrix::new(&x, 80, 4).unwrap();
    for model in [
        LinearRegression::default().fit(&m, &y).unwrap(),
        Ridge {
            alpha: 3.0,
            fit_intercept: true,
        }
        .fit(&m, &y)
        .unwrap(),
    ] {
        let path = tmp(model.estimator);
        model.save(&path).unwrap();
        let loaded = TabularModel::load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(loaded.estimator(), model.estimator);
        let Prediction::Values(got) = loaded.predict(&x, 80).unwrap() else {
            panic!("a regressor predicts values")
        };
        let want = model.predict(&m).unwrap();
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
}

fn classes(n: usize, k: usize, seed: u64) -> (Vec<f64>, Vec<i64>) {
    let mut rng = Rng::new(seed);
    let x: Vec<f64> = (0..n * 3)
        .map(|i| (i % 3) as f64 * 0.1 + rng.uniform())
        .collect();
    let y = (0..n)
        .map(|i| ((i * 7 + (x[i * 3] * 3.0) as usize) % k) as i64 - 1)
        .collect();
    (x, y)
}

/// Probabilities within rounding and identical labels after the file round trip.
fn same_classifier(path: &std::path::Path, x: &[f64], rows: usize, proba: &[f64], labels: &[i64]) {
    let loaded = TabularModel::load(path).unwrap();
    std::fs::remove_file(path).unwrap();
    let got = loaded.predict_proba(x, rows).unwrap();
    for (a, b) in got.iter().zip(proba) {
        assert!((a - b).abs() <= 1e-12, "{a} vs {b}");
    }
    let Prediction::Classes(idx) = loaded.predict(x, rows).unwrap() else {
        panic!("a classifier predicts classes")
    };
    let classes: Vec<i64> = loaded
        .classes()
        .iter()
        .map(|c| match c {
            realizar::tabular::ClassLabel::Int(v) => *v,
            other => panic!("integer labels expected, got {other:?}"),
        })
        .collect();
    let got: Vec<i64> = idx.iter().map(|&i| classes[i]).collect();
    assert_eq!(got, labels);
}

#[test]
fn logistic_round_trip() {
    for k in [2, 4] {
        let (x, y) = classes(90, k, 2);
        let m = Matrix::new(&x, 90, 3).unwrap();
        let model = aprender::logistic::LogisticRegression::default()
            .fit(&m, &y)
            .unwrap();
        let path = tmp(&format!("logistic{k}"));
        model.save(&path).unwrap();
        same_classifier(
            &path,
            &x,
            90,
            &model.predict_proba(&m).unwrap(),
            &model.predict(&m).unwrap(),
        );
    }
}

#[test]
fn trees_and_forests_round_trip() {
    use aprender::forest::RandomForest;
    use aprender::tree::DecisionTree;
    let (x, y) = classes(120, 3, 3);
    let m = Matrix::new(&x, 120, 3).unwrap();
    let tree = DecisionTree::classifier().fit_classifier(&m, &y).unwrap();
    let path = tmp("tree");
    tree.save(&path).unwrap();
    same_classifier(
        &path,
        &x,
        120,
        &tree.predict_values(&m).unwrap(),
        &tree.predict_classes(&m).unwrap(),
    );
    let forest = RandomForest {
        n_estimators: 7,
        ..RandomForest::classifier()
    }
    .fit_classifier(&m, &y)
    .unwrap();
    let path = tmp("forest");
    forest.save(&path).unwrap();
    same_classifier(
        &path,
        &x,
        120,
        &forest.predict_values(&m).unwrap(),
        &forest.predict_classes(&m).unwrap(),
    );

    let (xr, yr) = data(100, 4, 5);
    let mr = Matrix::new(&xr, 100, 4).unwrap();
    let reg = RandomForest {
        n_estimators: 5,
        ..RandomForest::regressor()
    }
    .fit_regressor(&mr, &yr)
    .unwrap();
    let path = tmp("forest-reg");
    reg.save(&path).unwrap();
    let loaded = TabularModel::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let Prediction::Values(got) = loaded.predict(&xr, 100).unwrap() else {
        panic!("a regressor predicts values")
    };
    let want = reg.predict_values(&mr).unwrap();
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
    }
}
