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
