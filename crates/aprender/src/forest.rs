//! Random forests: many CART trees, each grown on a bootstrap sample of the rows and
//! choosing every split among a random subset of the features, averaged. Bagging lowers
//! the variance of single deep trees; the feature subsets decorrelate them so the
//! average gains more.
//!
//! Bootstrap rows enter a tree as weights (how often each row was drawn), which is what
//! scikit-learn does and equals growing on the duplicated rows. Each tree draws from its
//! own generator forked from `seed` in tree order, so the forest is the same whether it
//! is grown on one thread or many. The stream is not NumPy's: the same `seed` is not the
//! same forest as scikit-learn's `random_state`, so forests are compared with
//! scikit-learn by accuracy, not tree by tree.

use crate::rng::Rng;
use crate::tree::{Criterion, DecisionTree, MaxFeatures, Target, TrainData, Tree};
use crate::{Error, Labels, Matrix, Result, argmax, check_features};

/// Forest parameters, named and defaulted as in scikit-learn.
#[derive(Debug, Clone)]
pub struct RandomForest {
    pub n_estimators: usize,
    /// Growth rules of every tree (its `seed` is ignored: trees fork the forest's).
    pub tree: DecisionTree,
    pub bootstrap: bool,
    pub seed: u64,
    /// Threads to grow trees on (0 or 1: the calling thread only).
    pub n_jobs: usize,
}

impl RandomForest {
    /// `RandomForestClassifier` defaults: gini, `max_features="sqrt"`.
    pub fn classifier() -> Self {
        RandomForest {
            n_estimators: 100,
            tree: DecisionTree {
                max_features: MaxFeatures::Sqrt,
                ..DecisionTree::classifier()
            },
            bootstrap: true,
            seed: 0,
            n_jobs: 1,
        }
    }

    /// `RandomForestRegressor` defaults: squared error, all features.
    pub fn regressor() -> Self {
        RandomForest {
            tree: DecisionTree::regressor(),
            ..Self::classifier()
        }
    }

    pub fn fit_classifier(&self, x: &Matrix<'_>, y: &[i64]) -> Result<Forest> {
        if self.tree.criterion == Criterion::SquaredError {
            return Err(Error::Parameter(
                "a classifier forest needs criterion gini or entropy".into(),
            ));
        }
        let labels = Labels::encode(y, x.rows())?;
        let data = TrainData::new(x, Target::Classes(&labels.codes, labels.classes.len()));
        let trees = self.grow(&data, x.rows(), x.cols())?;
        Ok(Forest {
            trees,
            classes: labels.classes,
            n_features: x.cols(),
        })
    }

    pub fn fit_regressor(&self, x: &Matrix<'_>, y: &[f64]) -> Result<Forest> {
        if self.tree.criterion != Criterion::SquaredError {
            return Err(Error::Parameter(
                "a regressor forest needs criterion squared_error".into(),
            ));
        }
        crate::check_target(x, y)?;
        let data = TrainData::new(x, Target::Values(y));
        let trees = self.grow(&data, x.rows(), x.cols())?;
        Ok(Forest {
            trees,
            classes: vec![],
            n_features: x.cols(),
        })
    }

    fn grow(&self, data: &TrainData<'_>, n: usize, p: usize) -> Result<Vec<Tree>> {
        if self.n_estimators == 0 {
            return Err(Error::Parameter("n_estimators must be >= 1".into()));
        }
        self.tree.max_features.resolve(p)?;
        let mut master = Rng::new(self.seed);
        let rngs: Vec<Rng> = (0..self.n_estimators).map(|_| master.fork()).collect();
        let one = |mut rng: Rng| -> Result<Tree> {
            let mut weights = vec![0.0; n];
            if self.bootstrap {
                for _ in 0..n {
                    weights[rng.below(n)] += 1.0;
                }
            } else {
                weights.fill(1.0);
            }
            let samples: Vec<usize> = (0..n).filter(|&i| weights[i] > 0.0).collect();
            self.tree.grow(data, &weights, samples, &mut rng)
        };
        let threads = self.n_jobs.clamp(1, self.n_estimators);
        if threads == 1 {
            return rngs.into_iter().map(one).collect();
        }
        let chunk = self.n_estimators.div_ceil(threads);
        let mut groups: Vec<Vec<Rng>> = vec![];
        let mut rest = rngs;
        while !rest.is_empty() {
            let tail = rest.split_off(chunk.min(rest.len()));
            groups.push(rest);
            rest = tail;
        }
        let results: Vec<Result<Vec<Tree>>> = std::thread::scope(|s| {
            let handles: Vec<_> = groups
                .into_iter()
                .map(|g| s.spawn(|| g.into_iter().map(one).collect::<Result<Vec<Tree>>>()))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::Parameter("a tree-growing thread panicked".into()))
                    })
                })
                .collect()
        });
        let mut trees = Vec::with_capacity(self.n_estimators);
        for r in results {
            trees.extend(r?);
        }
        Ok(trees)
    }
}

/// A fitted forest.
#[derive(Debug, Clone, PartialEq)]
pub struct Forest {
    pub trees: Vec<Tree>,
    /// Class labels of a classifier (empty for a regressor).
    pub classes: Vec<i64>,
    pub n_features: usize,
}

impl Forest {
    pub fn is_classifier(&self) -> bool {
        !self.classes.is_empty()
    }

    /// Mean of the trees' leaf rows: class probabilities or the regression value.
    pub fn predict_values(&self, x: &Matrix<'_>) -> Result<Vec<f64>> {
        check_features(x, self.n_features, "RandomForest")?;
        let mut acc: Vec<f64> = vec![];
        for tree in &self.trees {
            let v = tree.predict_values(x)?;
            if acc.is_empty() {
                acc = v;
            } else {
                acc.iter_mut().zip(&v).for_each(|(a, b)| *a += b);
            }
        }
        let t = self.trees.len() as f64;
        acc.iter_mut().for_each(|a| *a /= t);
        Ok(acc)
    }

    pub fn predict_classes(&self, x: &Matrix<'_>) -> Result<Vec<i64>> {
        if !self.is_classifier() {
            return Err(Error::Parameter(
                "a regression forest has no classes".into(),
            ));
        }
        let k = self.classes.len();
        let proba = self.predict_values(x)?;
        Ok(proba
            .chunks_exact(k)
            .map(|r| self.classes[argmax(r)])
            .collect())
    }

    /// Mean of the trees' normalised importances, renormalised.
    pub fn feature_importances(&self) -> Vec<f64> {
        let mut imp = vec![0.0; self.n_features];
        for t in &self.trees {
            imp.iter_mut()
                .zip(t.feature_importances())
                .for_each(|(a, b)| *a += b);
        }
        let total: f64 = imp.iter().sum();
        if total > 0.0 {
            imp.iter_mut().for_each(|v| *v /= total);
        }
        imp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert_eq, proptest};

    proptest! {
        /// The seed fixes the forest, whatever the number of threads.
        #[test]
        fn threads_do_not_change_the_forest(seed: u64) {
            let mut rng = Rng::new(seed);
            let x: Vec<f64> = (0..120).map(|_| rng.uniform()).collect();
            let y: Vec<i64> = (0..40).map(|i| i64::from(x[i * 3] > 0.5)).collect();
            let m = Matrix::new(&x, 40, 3).unwrap();
            let f = RandomForest { n_estimators: 6, seed, ..RandomForest::classifier() };
            let one = f.fit_classifier(&m, &y).unwrap();
            let two = RandomForest { n_jobs: 3, ..f }.fit_classifier(&m, &y).unwrap();
            prop_assert_eq!(one, two);
        }
    }

    #[test]
    fn forest_learns_a_threshold() {
        let x: Vec<f64> = (0..200).map(|i| f64::from(i) / 200.0).collect();
        let y: Vec<i64> = (0..200).map(|i| i64::from(i >= 100)).collect();
        let m = Matrix::new(&x, 200, 1).unwrap();
        let f = RandomForest {
            n_estimators: 10,
            ..RandomForest::classifier()
        }
        .fit_classifier(&m, &y)
        .unwrap();
        let acc = crate::metrics::accuracy_score(&y, &f.predict_classes(&m).unwrap()).unwrap();
        assert!(acc > 0.98, "{acc}");
        let yr: Vec<f64> = x.iter().map(|v| v * 2.0).collect();
        let r = RandomForest {
            n_estimators: 10,
            ..RandomForest::regressor()
        }
        .fit_regressor(&m, &yr)
        .unwrap();
        let r2 = crate::metrics::r2_score(&yr, &r.predict_values(&m).unwrap()).unwrap();
        assert!(r2 > 0.99, "{r2}");
        assert!(
            RandomForest {
                n_estimators: 0,
                ..RandomForest::classifier()
            }
            .fit_classifier(&m, &y)
            .is_err()
        );
    }
}
