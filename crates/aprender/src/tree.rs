//! CART decision trees: grow greedily, at each node taking the split that most reduces
//! impurity (gini or entropy for classes, squared error for values), until a stopping
//! rule says leaf.
//!
//! The search mirrors scikit-learn's `BestSplitter`, so that a tree grown on the same
//! data is the same tree:
//! * features are compared as `float32` (scikit-learn's `DTYPE`), candidate thresholds
//!   lie halfway between consecutive distinct sorted values (`a/2 + b/2` in f64; values
//!   closer than 1e-7 count as equal), and `x <= threshold` goes left;
//! * a split is scored by the same "proxy" improvement formulas
//!   (`-w_r * imp_r - w_l * imp_l` for gini/entropy, `S_l^2/w_l + S_r^2/w_r` for squared
//!   error), so exact ties compare as ties;
//! * a node is a leaf when it is at `max_depth`, has fewer than `min_samples_split`
//!   samples (or fewer than `2 * min_samples_leaf`), is pure, or has no split leaving
//!   `min_samples_leaf` samples on each side.
//!
//! **Tie-breaking (deterministic):** features are visited in index order (scikit-learn
//! visits them in a random order, so on an exact tie its choice depends on
//! `random_state`) and a candidate replaces the best only if strictly better: on a tie
//! the lowest feature index wins, and within a feature the lowest threshold. With a
//! feature subset (`max_features`, forests) the visiting order is a seeded shuffle.
//!
//! Nodes are numbered in pre-order (parent, left subtree, right subtree), the layout of
//! scikit-learn's `Tree` and of realizar's tabular format, so children always come after
//! their parent. Sample weights (bootstrap counts) weight every statistic; the
//! `min_samples_*` rules count distinct samples, as scikit-learn's do.

use crate::rng::Rng;
use crate::{Error, Labels, Matrix, Result, argmax, check_features};

/// Values closer than this are one value (scikit-learn's `FEATURE_THRESHOLD`).
const FEATURE_THRESHOLD: f32 = 1e-7;
/// A node with impurity at most this is pure.
const EPSILON: f64 = f64::EPSILON;

/// How impure a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criterion {
    Gini,
    /// Shannon entropy in bits.
    Entropy,
    SquaredError,
}

/// How many features each split considers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxFeatures {
    All,
    Sqrt,
    Log2,
    Count(usize),
    Fraction(f64),
}

impl MaxFeatures {
    pub(crate) fn resolve(self, p: usize) -> Result<usize> {
        let k = match self {
            MaxFeatures::All => p,
            MaxFeatures::Sqrt => ((p as f64).sqrt() as usize).max(1),
            MaxFeatures::Log2 => ((p as f64).log2() as usize).max(1),
            MaxFeatures::Count(c) => c,
            MaxFeatures::Fraction(f) if f > 0.0 && f <= 1.0 => ((f * p as f64) as usize).max(1),
            MaxFeatures::Fraction(f) => {
                return Err(Error::Parameter(format!(
                    "max_features={f} must be a fraction in (0, 1]"
                )));
            }
        };
        if k == 0 || k > p {
            return Err(Error::Parameter(format!(
                "max_features={k} must be in [1, n_features={p}]"
            )));
        }
        Ok(k)
    }
}

/// Growth parameters, named and defaulted as in scikit-learn.
#[derive(Debug, Clone)]
pub struct DecisionTree {
    pub criterion: Criterion,
    pub max_depth: Option<usize>,
    pub min_samples_split: usize,
    pub min_samples_leaf: usize,
    pub max_features: MaxFeatures,
    pub seed: u64,
}

impl DecisionTree {
    pub fn classifier() -> Self {
        DecisionTree {
            criterion: Criterion::Gini,
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features: MaxFeatures::All,
            seed: 0,
        }
    }

    pub fn regressor() -> Self {
        DecisionTree {
            criterion: Criterion::SquaredError,
            ..Self::classifier()
        }
    }

    fn check(&self, is_classifier: bool) -> Result<()> {
        if self.min_samples_split < 2 || self.min_samples_leaf < 1 {
            return Err(Error::Parameter(format!(
                "min_samples_split must be >= 2 and min_samples_leaf >= 1, got {} and {}",
                self.min_samples_split, self.min_samples_leaf
            )));
        }
        if self.max_depth == Some(0) {
            return Err(Error::Parameter("max_depth must be >= 1".into()));
        }
        let classification = self.criterion != Criterion::SquaredError;
        if classification != is_classifier {
            return Err(Error::Parameter(format!(
                "criterion {:?} does not fit a {}",
                self.criterion,
                if is_classifier {
                    "classifier"
                } else {
                    "regressor"
                }
            )));
        }
        Ok(())
    }

    /// Grow a classification tree (gini or entropy).
    pub fn fit_classifier(&self, x: &Matrix<'_>, y: &[i64]) -> Result<Tree> {
        self.check(true)?;
        let labels = Labels::encode(y, x.rows())?;
        let data = TrainData::new(x, Target::Classes(&labels.codes, labels.classes.len()));
        let weights = vec![1.0; x.rows()];
        let samples: Vec<usize> = (0..x.rows()).collect();
        let mut tree = self.grow(&data, &weights, samples, &mut Rng::new(self.seed))?;
        tree.classes = labels.classes;
        Ok(tree)
    }

    /// Grow a regression tree (squared error).
    pub fn fit_regressor(&self, x: &Matrix<'_>, y: &[f64]) -> Result<Tree> {
        self.check(false)?;
        crate::check_target(x, y)?;
        let data = TrainData::new(x, Target::Values(y));
        let weights = vec![1.0; x.rows()];
        let samples: Vec<usize> = (0..x.rows()).collect();
        self.grow(&data, &weights, samples, &mut Rng::new(self.seed))
    }

    /// Grow on the samples with non-zero `weights` (the forest's bootstrap entry point).
    pub(crate) fn grow(
        &self,
        data: &TrainData<'_>,
        weights: &[f64],
        mut samples: Vec<usize>,
        rng: &mut Rng,
    ) -> Result<Tree> {
        let max_features = self.max_features.resolve(data.p)?;
        let width = data.width();
        let mut tree = Tree {
            left: vec![],
            right: vec![],
            feature: vec![],
            threshold: vec![],
            value: vec![],
            width,
            n_features: data.p,
            classes: vec![],
            importances: vec![0.0; data.p],
        };
        let root_weight: f64 = samples.iter().map(|&i| weights[i]).sum();
        let mut features: Vec<usize> = (0..data.p).collect();
        // (start, end, depth, parent and whether this is its left child)
        let mut stack = vec![(0usize, samples.len(), 0usize, None::<(usize, bool)>)];
        while let Some((start, end, depth, parent)) = stack.pop() {
            let node = tree.left.len();
            if let Some((p, is_left)) = parent {
                if is_left {
                    tree.left[p] = node as i64;
                } else {
                    tree.right[p] = node as i64;
                }
            }
            let stats = Stats::of(data, weights, &samples[start..end]);
            let impurity = stats.impurity(self.criterion);
            let n_node = end - start;
            let mut leaf = self.max_depth.is_some_and(|d| depth >= d)
                || n_node < self.min_samples_split
                || n_node < 2 * self.min_samples_leaf
                || impurity <= EPSILON;
            let mut split = None;
            if !leaf {
                if max_features < data.p {
                    rng.shuffle(&mut features);
                }
                split = self.best_split(
                    data,
                    weights,
                    &samples[start..end],
                    &features,
                    max_features,
                    &stats,
                );
                leaf = split.is_none();
            }
            tree.left.push(-1);
            tree.right.push(-1);
            tree.value.extend(stats.value());
            match split {
                Some(s) if !leaf => {
                    tree.feature.push(s.feature as i64);
                    tree.threshold.push(s.threshold);
                    let part = &mut samples[start..end];
                    // Stable partition: `x <= threshold` first, the rule predict uses.
                    let col = &data.xf[s.feature * data.n..(s.feature + 1) * data.n];
                    let (mut l, mut r): (Vec<usize>, Vec<usize>) = part
                        .iter()
                        .partition(|&&i| f64::from(col[i]) <= s.threshold);
                    let mid = start + l.len();
                    l.append(&mut r);
                    part.copy_from_slice(&l);
                    let (left, right) = (
                        Stats::of(data, weights, &samples[start..mid]),
                        Stats::of(data, weights, &samples[mid..end]),
                    );
                    tree.importances[s.feature] += (stats.w * impurity
                        - left.w * left.impurity(self.criterion)
                        - right.w * right.impurity(self.criterion))
                        / root_weight;
                    // Right first on the stack so the left subtree is numbered first.
                    stack.push((mid, end, depth + 1, Some((node, false))));
                    stack.push((start, mid, depth + 1, Some((node, true))));
                }
                _ => {
                    tree.feature.push(0);
                    tree.threshold.push(-2.0);
                }
            }
        }
        Ok(tree)
    }

    fn best_split(
        &self,
        data: &TrainData<'_>,
        weights: &[f64],
        samples: &[usize],
        features: &[usize],
        max_features: usize,
        node: &Stats,
    ) -> Option<Split> {
        let mut best: Option<Split> = None;
        let mut best_proxy = f64::NEG_INFINITY;
        let mut visited = 0;
        let mut pairs: Vec<(f32, usize)> = Vec::with_capacity(samples.len());
        let n = samples.len();
        let min_leaf = self.min_samples_leaf;
        for &f in features {
            if visited == max_features {
                break;
            }
            let col = &data.xf[f * data.n..(f + 1) * data.n];
            pairs.clear();
            pairs.extend(samples.iter().map(|&i| (col[i], i)));
            pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            if pairs[n - 1].0 <= pairs[0].0 + FEATURE_THRESHOLD {
                // Constant here: does not count against max_features (as scikit-learn).
                continue;
            }
            visited += 1;
            let mut left = Stats::empty(node);
            let mut p = 0;
            while p < n {
                // Move every sample of the current value into the left side.
                left.add(data, weights, pairs[p].1);
                while p + 1 < n && pairs[p + 1].0 <= pairs[p].0 + FEATURE_THRESHOLD {
                    p += 1;
                    left.add(data, weights, pairs[p].1);
                }
                p += 1;
                if p >= n {
                    break;
                }
                if p < min_leaf || n - p < min_leaf {
                    continue;
                }
                let right = node.minus(&left);
                let proxy = proxy(self.criterion, &left, &right);
                if proxy > best_proxy {
                    best_proxy = proxy;
                    let (a, b) = (f64::from(pairs[p - 1].0), f64::from(pairs[p].0));
                    let mut threshold = a / 2.0 + b / 2.0;
                    if threshold == b || threshold.is_infinite() {
                        threshold = a;
                    }
                    best = Some(Split {
                        feature: f,
                        threshold,
                    });
                }
            }
        }
        best
    }
}

#[derive(Debug, Clone, Copy)]
struct Split {
    feature: usize,
    threshold: f64,
}

pub(crate) enum Target<'a> {
    /// Class index per sample and the number of classes.
    Classes(&'a [usize], usize),
    Values(&'a [f64]),
}

/// Training data in the layout the splitter scans: float32 columns.
pub(crate) struct TrainData<'a> {
    /// Column-major `p x n` float32 copy of X.
    xf: Vec<f32>,
    n: usize,
    p: usize,
    target: Target<'a>,
}

impl<'a> TrainData<'a> {
    pub(crate) fn new(x: &Matrix<'_>, target: Target<'a>) -> Self {
        let (n, p) = (x.rows(), x.cols());
        let mut xf = vec![0.0f32; n * p];
        for i in 0..n {
            for (j, &v) in x.row(i).iter().enumerate() {
                xf[j * n + i] = v as f32;
            }
        }
        TrainData { xf, n, p, target }
    }

    fn width(&self) -> usize {
        match self.target {
            Target::Classes(_, k) => k,
            Target::Values(_) => 1,
        }
    }
}

/// Weighted sufficient statistics of a set of samples.
#[derive(Debug, Clone)]
struct Stats {
    w: f64,
    /// Class weights (classification) or `[sum, sum of squares]` (regression).
    sums: Vec<f64>,
    classification: bool,
}

impl Stats {
    fn empty(like: &Stats) -> Stats {
        Stats {
            w: 0.0,
            sums: vec![0.0; like.sums.len()],
            classification: like.classification,
        }
    }

    fn of(data: &TrainData<'_>, weights: &[f64], samples: &[usize]) -> Stats {
        let mut s = match data.target {
            Target::Classes(_, k) => Stats {
                w: 0.0,
                sums: vec![0.0; k],
                classification: true,
            },
            Target::Values(_) => Stats {
                w: 0.0,
                sums: vec![0.0; 2],
                classification: false,
            },
        };
        for &i in samples {
            s.add(data, weights, i);
        }
        s
    }

    fn add(&mut self, data: &TrainData<'_>, weights: &[f64], i: usize) {
        let w = weights[i];
        self.w += w;
        match data.target {
            Target::Classes(codes, _) => self.sums[codes[i]] += w,
            Target::Values(y) => {
                self.sums[0] += w * y[i];
                self.sums[1] += w * y[i] * y[i];
            }
        }
    }

    fn minus(&self, other: &Stats) -> Stats {
        Stats {
            w: self.w - other.w,
            sums: self
                .sums
                .iter()
                .zip(&other.sums)
                .map(|(a, b)| a - b)
                .collect(),
            classification: self.classification,
        }
    }

    fn impurity(&self, criterion: Criterion) -> f64 {
        match criterion {
            Criterion::Gini => {
                let sq: f64 = self.sums.iter().map(|c| c * c).sum();
                1.0 - sq / (self.w * self.w)
            }
            Criterion::Entropy => {
                // ln(p) / ln(2), not log2(p): scikit-learn's `log`, rounded the same
                // way, so near-ties between splits break the same way.
                let mut e = 0.0;
                for &c in &self.sums {
                    if c > 0.0 {
                        let p = c / self.w;
                        e -= p * (p.ln() / std::f64::consts::LN_2);
                    }
                }
                e
            }
            Criterion::SquaredError => {
                let mean = self.sums[0] / self.w;
                self.sums[1] / self.w - mean * mean
            }
        }
    }

    /// Leaf value: class fractions, or the weighted mean.
    fn value(&self) -> Vec<f64> {
        if self.classification {
            self.sums.iter().map(|c| c / self.w).collect()
        } else {
            vec![self.sums[0] / self.w]
        }
    }
}

/// scikit-learn's `proxy_impurity_improvement`: larger is better, and it orders splits
/// as the true improvement does.
fn proxy(criterion: Criterion, left: &Stats, right: &Stats) -> f64 {
    match criterion {
        Criterion::SquaredError => {
            left.sums[0] * left.sums[0] / left.w + right.sums[0] * right.sums[0] / right.w
        }
        c => -right.w * right.impurity(c) - left.w * left.impurity(c),
    }
}

/// A grown tree in scikit-learn's flat layout (`left[node] < 0` marks a leaf).
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub left: Vec<i64>,
    pub right: Vec<i64>,
    pub feature: Vec<i64>,
    pub threshold: Vec<f64>,
    /// `nodes x width`: class fractions, or the regression value.
    pub value: Vec<f64>,
    pub width: usize,
    pub n_features: usize,
    /// Class labels of a classifier (empty for a regressor).
    pub classes: Vec<i64>,
    /// Unnormalised weighted impurity decrease per feature.
    importances: Vec<f64>,
}

impl Tree {
    pub fn node_count(&self) -> usize {
        self.left.len()
    }

    pub fn depth(&self) -> usize {
        let mut depth = vec![0usize; self.node_count()];
        for node in 0..self.node_count() {
            if self.left[node] >= 0 {
                depth[self.left[node] as usize] = depth[node] + 1;
                depth[self.right[node] as usize] = depth[node] + 1;
            }
        }
        depth.into_iter().max().unwrap_or(0)
    }

    pub fn leaf_count(&self) -> usize {
        self.left.iter().filter(|&&l| l < 0).count()
    }

    /// Impurity-based importances normalised to sum to one (all zero for a single leaf).
    pub fn feature_importances(&self) -> Vec<f64> {
        let total: f64 = self.importances.iter().sum();
        if total > 0.0 {
            self.importances.iter().map(|v| v / total).collect()
        } else {
            self.importances.clone()
        }
    }

    fn leaf(&self, row: &[f64]) -> usize {
        let mut node = 0;
        while self.left[node] >= 0 {
            let v = f64::from(row[self.feature[node] as usize] as f32);
            node = if v <= self.threshold[node] {
                self.left[node]
            } else {
                self.right[node]
            } as usize;
        }
        node
    }

    /// The leaf row of every input row: `rows x width`.
    pub fn predict_values(&self, x: &Matrix<'_>) -> Result<Vec<f64>> {
        check_features(x, self.n_features, "DecisionTree")?;
        let mut out = Vec::with_capacity(x.rows() * self.width);
        for i in 0..x.rows() {
            let leaf = self.leaf(x.row(i));
            out.extend_from_slice(&self.value[leaf * self.width..(leaf + 1) * self.width]);
        }
        Ok(out)
    }

    /// Class labels (classifier) via the largest class fraction, first on a tie.
    pub fn predict_classes(&self, x: &Matrix<'_>) -> Result<Vec<i64>> {
        if self.classes.is_empty() {
            return Err(Error::Parameter("a regression tree has no classes".into()));
        }
        let v = self.predict_values(x)?;
        Ok(v.chunks_exact(self.width)
            .map(|r| self.classes[argmax(r)])
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};

    proptest! {
        /// A fully grown tree memorises distinct points, and every leaf holds at least
        /// `min_samples_leaf` samples however the data vary.
        #[test]
        fn grown_tree_respects_its_rules(seed: u64, n in 4usize..80, leaf in 1usize..6) {
            let mut rng = Rng::new(seed);
            let x: Vec<f64> = (0..n * 2).map(|_| (rng.uniform() * 1e4).round()).collect();
            let y: Vec<i64> = (0..n).map(|_| rng.below(3) as i64).collect();
            let m = Matrix::new(&x, n, 2).unwrap();
            prop_assume_two_classes(&y)?;
            let full = DecisionTree::classifier().fit_classifier(&m, &y).unwrap();
            let pred = full.predict_classes(&m).unwrap();
            let mut distinct = true;
            for i in 0..n { for j in 0..i { if x[i*2..i*2+2] == x[j*2..j*2+2] { distinct = false; } } }
            if distinct { prop_assert_eq!(pred, y.clone()); }
            let t = DecisionTree { min_samples_leaf: leaf, ..DecisionTree::classifier() }.fit_classifier(&m, &y).unwrap();
            let mut counts = vec![0usize; t.node_count()];
            for i in 0..n { counts[t.leaf(m.row(i))] += 1; }
            for (node, &count) in counts.iter().enumerate() {
                if t.left[node] < 0 { prop_assert!(count >= leaf.min(n)); }
                else { prop_assert!(t.left[node] as usize > node && t.right[node] as usize > node); }
            }
            let imp = t.feature_importances();
            prop_assert!(imp.iter().all(|v| *v >= 0.0));
        }
    }

    fn prop_assume_two_classes(
        y: &[i64],
    ) -> std::result::Result<(), proptest::test_runner::TestCaseError> {
        if y.iter().any(|&v| v != y[0]) {
            Ok(())
        } else {
            Err(proptest::test_runner::TestCaseError::reject("one class"))
        }
    }

    #[test]
    fn xor_needs_depth_two() {
        let x = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
        let y = [0, 1, 1, 0];
        let m = Matrix::new(&x, 4, 2).unwrap();
        let t = DecisionTree::classifier().fit_classifier(&m, &y).unwrap();
        assert_eq!(t.predict_classes(&m).unwrap(), y);
        assert_eq!(t.depth(), 2);
        let stump = DecisionTree {
            max_depth: Some(1),
            ..DecisionTree::classifier()
        };
        assert_eq!(stump.fit_classifier(&m, &y).unwrap().depth(), 1);
        let r = DecisionTree::regressor()
            .fit_regressor(&m, &[1.0, 2.0, 3.0, 4.0])
            .unwrap();
        assert_eq!(r.predict_values(&m).unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
        assert!(
            DecisionTree::classifier()
                .fit_regressor(&m, &[1.0; 4])
                .is_err()
        );
        assert!(matches!(
            DecisionTree::classifier().fit_classifier(&m, &[1; 4]),
            Err(Error::OneClass { .. })
        ));
    }
}
