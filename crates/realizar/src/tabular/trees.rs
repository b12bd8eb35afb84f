//! Decision trees laid out as flat arrays, the way scikit-learn's `Tree` stores them.
//!
//! All trees of an ensemble share one set of node arrays; `roots[t]` is where tree `t`
//! starts and child indices are absolute. A node is a leaf when `left[node] < 0`.

/// How the leaf values of the trees are combined into one row of scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Combine {
    /// Average the trees' leaf rows (random forests, a single tree). With `normalize`,
    /// each leaf row is first divided by its sum, as `DecisionTreeClassifier.predict_proba`
    /// does.
    Mean { normalize: bool },
    /// Gradient boosting: `init[c] + learning_rate * sum(leaf value of trees for class c)`.
    Boost { learning_rate: f64 },
}

#[derive(Debug, Clone)]
pub(crate) struct Forest {
    pub(crate) left: Vec<i64>,
    pub(crate) right: Vec<i64>,
    pub(crate) feature: Vec<i64>,
    pub(crate) threshold: Vec<f64>,
    /// `nodes x value_width` leaf values.
    pub(crate) value: Vec<f64>,
    pub(crate) value_width: usize,
    pub(crate) roots: Vec<usize>,
    /// For boosting, the score column tree `t` adds to.
    pub(crate) column: Vec<usize>,
    pub(crate) combine: Combine,
    /// Initial raw score per column (boosting only; zeros otherwise).
    pub(crate) init: Vec<f64>,
    pub(crate) max_depth: usize,
}

impl Forest {
    /// Number of score columns a row produces.
    pub(crate) fn width(&self) -> usize {
        match self.combine {
            Combine::Mean { .. } => self.value_width,
            Combine::Boost { .. } => self.init.len(),
        }
    }

    pub(crate) fn cost_per_row(&self) -> usize {
        self.roots.len() * self.max_depth.max(1)
    }

    /// Index of the leaf `row` falls into, starting at `root`.
    fn leaf(&self, root: usize, row: &[f64]) -> usize {
        let mut node = root;
        while self.left[node] >= 0 {
            // scikit-learn casts X to float32 before comparing with float64 thresholds.
            let x = f64::from(row[self.feature[node] as usize] as f32);
            node = if x <= self.threshold[node] {
                self.left[node]
            } else {
                self.right[node]
            } as usize;
        }
        node
    }

    /// Scores for every row: `rows x width()`.
    pub(crate) fn scores(&self, x: &[f64], rows: usize, n_features: usize) -> Vec<f64> {
        let width = self.width();
        let mut out = vec![0.0f64; rows * width];
        if rows == 0 {
            return out;
        }
        let vw = self.value_width;
        for (row, acc) in x.chunks_exact(n_features).zip(out.chunks_exact_mut(width)) {
            match self.combine {
                Combine::Mean { normalize } => {
                    for &root in &self.roots {
                        let leaf = self.leaf(root, row);
                        let v = &self.value[leaf * vw..(leaf + 1) * vw];
                        let sum: f64 = if normalize { v.iter().sum() } else { 1.0 };
                        let sum = if sum == 0.0 { 1.0 } else { sum };
                        for (a, &vi) in acc.iter_mut().zip(v) {
                            *a += vi / sum;
                        }
                    }
                    let n = self.roots.len() as f64;
                    acc.iter_mut().for_each(|a| *a /= n);
                }
                Combine::Boost { learning_rate } => {
                    // Sum the trees first, then scale, in the order scikit-learn's
                    // `predict_stages` accumulates: raw += learning_rate * value.
                    acc.copy_from_slice(&self.init);
                    for (&root, &col) in self.roots.iter().zip(&self.column) {
                        let leaf = self.leaf(root, row);
                        acc[col] += learning_rate * self.value[leaf * vw];
                    }
                }
            }
        }
        out
    }
}
