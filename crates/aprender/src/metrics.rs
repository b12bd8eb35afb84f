//! Scores for classifiers and regressors, with scikit-learn's rules for the edge cases
//! (`tests/python/test_aprender.py` checks them against `sklearn.metrics` to 1e-12).
//!
//! * Labels are the sorted union of `y_true` and `y_pred` (`unique_labels`).
//! * Zero division (no predicted positives for precision, no true positives for recall,
//!   nothing at all for F1) gives 0.0, scikit-learn's `zero_division="warn"` value.
//! * F1 is `2 tp / (2 tp + fp + fn)`, the form that stays defined when precision or
//!   recall is zero division.
//! * `r2_score` of a constant `y_true` is 1.0 for a perfect prediction and 0.0 otherwise
//!   (`force_finite=True`); `log_loss` clips probabilities to `[eps, 1 - eps]`.

use crate::{Error, Result};

fn same_length(a: usize, b: usize) -> Result<()> {
    if a != b {
        return Err(Error::Shape(format!(
            "y_true has {a} samples but y_pred has {b}"
        )));
    }
    if a == 0 {
        return Err(Error::Empty("y_true and y_pred are empty".into()));
    }
    Ok(())
}

/// Fraction of exact matches.
pub fn accuracy_score(y_true: &[i64], y_pred: &[i64]) -> Result<f64> {
    same_length(y_true.len(), y_pred.len())?;
    let hits = y_true.iter().zip(y_pred).filter(|(a, b)| a == b).count();
    Ok(hits as f64 / y_true.len() as f64)
}

fn union_labels(y_true: &[i64], y_pred: &[i64]) -> Vec<i64> {
    let mut labels: Vec<i64> = y_true.iter().chain(y_pred).copied().collect();
    labels.sort_unstable();
    labels.dedup();
    labels
}

/// `C[i, j]` = number of samples of true label `labels[i]` predicted as `labels[j]`,
/// row-major; `labels` defaults to the sorted union of both vectors.
pub fn confusion_matrix(
    y_true: &[i64],
    y_pred: &[i64],
    labels: Option<&[i64]>,
) -> Result<(Vec<i64>, Vec<u64>)> {
    same_length(y_true.len(), y_pred.len())?;
    let labels = match labels {
        Some([]) => return Err(Error::Empty("labels is empty".into())),
        Some(l) => l.to_vec(),
        None => union_labels(y_true, y_pred),
    };
    let k = labels.len();
    let index = |v: &i64| labels.iter().position(|l| l == v);
    let mut cm = vec![0u64; k * k];
    for (t, p) in y_true.iter().zip(y_pred) {
        // Samples whose labels are not listed are left out, as scikit-learn does.
        if let (Some(i), Some(j)) = (index(t), index(p)) {
            cm[i * k + j] += 1;
        }
    }
    Ok((labels, cm))
}

/// How per-class precision, recall and F1 are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Average {
    /// The scores of `pos_label` only (y must have at most two labels).
    Binary { pos_label: i64 },
    /// Global counts of true positives, false positives and false negatives.
    Micro,
    /// Unweighted mean over labels.
    Macro,
    /// Mean over labels weighted by their support in `y_true`.
    Weighted,
}

/// Precision, recall and F1 under `average`.
pub fn precision_recall_f1(
    y_true: &[i64],
    y_pred: &[i64],
    average: Average,
) -> Result<(f64, f64, f64)> {
    let (labels, cm) = confusion_matrix(y_true, y_pred, None)?;
    let k = labels.len();
    let ratio = |num: u64, den: u64| {
        if den == 0 {
            0.0
        } else {
            num as f64 / den as f64
        }
    };
    let counts = |i: usize| {
        let tp = cm[i * k + i];
        let predicted: u64 = (0..k).map(|r| cm[r * k + i]).sum();
        let actual: u64 = cm[i * k..(i + 1) * k].iter().sum();
        (tp, predicted - tp, actual - tp)
    };
    let scores = |tp: u64, fp: u64, fneg: u64| {
        (
            ratio(tp, tp + fp),
            ratio(tp, tp + fneg),
            ratio(2 * tp, 2 * tp + fp + fneg),
        )
    };
    match average {
        Average::Binary { pos_label } => {
            if k > 2 {
                return Err(Error::Parameter(format!(
                    "average='binary' needs binary targets, but y has {k} labels {labels:?}: choose micro, macro or weighted"
                )));
            }
            match labels.iter().position(|&l| l == pos_label) {
                Some(i) => {
                    let (tp, fp, fneg) = counts(i);
                    Ok(scores(tp, fp, fneg))
                }
                // A label absent from both vectors has no positives at all.
                None if k < 2 => Ok((0.0, 0.0, 0.0)),
                None => Err(Error::Parameter(format!(
                    "pos_label={pos_label} is not a valid label: it should be one of {labels:?}"
                ))),
            }
        }
        Average::Micro => {
            let (mut tp, mut fp, mut fneg) = (0, 0, 0);
            for i in 0..k {
                let (a, b, c) = counts(i);
                tp += a;
                fp += b;
                fneg += c;
            }
            Ok(scores(tp, fp, fneg))
        }
        Average::Macro | Average::Weighted => {
            let (mut sums, mut total) = ((0.0, 0.0, 0.0), 0.0);
            for i in 0..k {
                let (tp, fp, fneg) = counts(i);
                let w = if average == Average::Macro {
                    1.0
                } else {
                    (tp + fneg) as f64
                };
                let (p, r, f) = scores(tp, fp, fneg);
                sums = (sums.0 + w * p, sums.1 + w * r, sums.2 + w * f);
                total += w;
            }
            if total == 0.0 {
                return Ok((0.0, 0.0, 0.0));
            }
            Ok((sums.0 / total, sums.1 / total, sums.2 / total))
        }
    }
}

/// Area under the ROC curve of a binary problem: `y_true` has exactly two labels, the
/// larger is the positive class, `score` ranks samples (higher = more positive).
/// Tied scores count one half, which is what the trapezoid over scikit-learn's curve
/// computes.
pub fn roc_auc_score(y_true: &[i64], score: &[f64]) -> Result<f64> {
    same_length(y_true.len(), score.len())?;
    crate::check_finite("y_score", score, 1)?;
    let mut labels = y_true.to_vec();
    labels.sort_unstable();
    labels.dedup();
    let positive = match labels[..] {
        [_] => {
            return Err(Error::OneClass { label: labels[0] });
        }
        [_, p] => p,
        _ => {
            return Err(Error::Parameter(format!(
                "roc_auc_score here is binary: y_true has {} labels",
                labels.len()
            )));
        }
    };
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    // Walk thresholds from high to low; each group of tied scores is one ROC point.
    let (mut tp, mut fp, mut area) = (0.0f64, 0.0f64, 0.0f64);
    let mut i = 0;
    while i < order.len() {
        let (tp0, fp0) = (tp, fp);
        let s = score[order[i]];
        while i < order.len() && score[order[i]] == s {
            if y_true[order[i]] == positive {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        area += (fp - fp0) * (tp + tp0) / 2.0;
    }
    Ok(area / (tp * fp))
}

/// Mean negative log-likelihood of the true labels. `proba` is `n x k` row-major with
/// columns in the order of `labels` (sorted unique `y_true` by default); `k = 1` is the
/// positive-class probability of a binary problem.
pub fn log_loss(y_true: &[i64], proba: &[f64], labels: Option<&[i64]>) -> Result<f64> {
    let n = y_true.len();
    if n == 0 {
        return Err(Error::Empty("y_true is empty".into()));
    }
    let labels = match labels {
        Some(l) => {
            let mut l = l.to_vec();
            l.sort_unstable();
            l.dedup();
            l
        }
        None => union_labels(y_true, &[]),
    };
    if labels.len() < 2 {
        return Err(Error::OneClass { label: labels[0] });
    }
    if !proba.len().is_multiple_of(n) {
        return Err(Error::Shape(format!(
            "y_proba has {} values, not a whole number of columns for {n} samples",
            proba.len()
        )));
    }
    let width = proba.len() / n;
    let k = labels.len();
    if width != k && !(width == 1 && k == 2) {
        return Err(Error::Shape(format!(
            "y_true has {k} labels {labels:?} but y_proba has {width} columns"
        )));
    }
    crate::check_finite("y_proba", proba, width)?;
    if let Some(v) = proba.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(Error::Parameter(format!(
            "y_proba contains {v}, outside [0, 1]"
        )));
    }
    let eps = f64::EPSILON;
    let mut total = 0.0;
    for (i, t) in y_true.iter().enumerate() {
        let c = labels.binary_search(t).map_err(|_| {
            Error::Parameter(format!(
                "y_true contains {t}, which is not in labels {labels:?}"
            ))
        })?;
        let p = if width == 1 {
            let p1 = proba[i];
            if c == 1 { p1 } else { 1.0 - p1 }
        } else {
            proba[i * width + c]
        };
        total -= p.clamp(eps, 1.0 - eps).ln();
    }
    Ok(total / n as f64)
}

fn regression_pair(y_true: &[f64], y_pred: &[f64]) -> Result<()> {
    same_length(y_true.len(), y_pred.len())?;
    crate::check_finite("y_true", y_true, 1)?;
    crate::check_finite("y_pred", y_pred, 1)
}

/// Mean squared error.
pub fn mean_squared_error(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    regression_pair(y_true, y_pred)?;
    let d: Vec<f64> = y_true.iter().zip(y_pred).map(|(a, b)| a - b).collect();
    Ok(trueno::dot_f64(&d, &d)? / d.len() as f64)
}

/// Coefficient of determination `1 - SS_res / SS_tot`.
pub fn r2_score(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    regression_pair(y_true, y_pred)?;
    let mean = trueno::mean_f64(y_true)?;
    let res: Vec<f64> = y_true.iter().zip(y_pred).map(|(a, b)| a - b).collect();
    let dev: Vec<f64> = y_true.iter().map(|a| a - mean).collect();
    let ss_res = trueno::dot_f64(&res, &res)?;
    let ss_tot = trueno::dot_f64(&dev, &dev)?;
    Ok(if ss_tot != 0.0 {
        1.0 - ss_res / ss_tot
    } else if ss_res == 0.0 {
        1.0
    } else {
        0.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hand_worked_binary_scores() {
        let t = [1, 1, 0, 0, 1];
        let p = [1, 0, 0, 1, 1];
        let (pr, re, f1) = precision_recall_f1(&t, &p, Average::Binary { pos_label: 1 }).unwrap();
        assert_eq!((pr, re), (2.0 / 3.0, 2.0 / 3.0));
        assert!((f1 - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(accuracy_score(&t, &p).unwrap(), 0.6);
        let (labels, cm) = confusion_matrix(&t, &p, None).unwrap();
        assert_eq!((labels, cm), (vec![0, 1], vec![1, 1, 1, 2]));
        // No predicted positives: precision and F1 are zero division -> 0.
        let none = precision_recall_f1(&[1, 0], &[0, 0], Average::Binary { pos_label: 1 });
        assert_eq!(none.unwrap(), (0.0, 0.0, 0.0));
        assert!(precision_recall_f1(&[2, 3], &[2, 3], Average::Binary { pos_label: 1 }).is_err());
    }

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(roc_auc_score(&[0, 1], &[0.5, 0.5]).unwrap(), 0.5);
        assert_eq!(
            roc_auc_score(&[0, 0, 1, 1], &[0.1, 0.4, 0.35, 0.8]).unwrap(),
            0.75
        );
        assert!(matches!(
            roc_auc_score(&[1, 1], &[0.1, 0.2]),
            Err(Error::OneClass { .. })
        ));
    }

    #[test]
    fn regression_edge_cases() {
        assert_eq!(r2_score(&[2.0, 2.0], &[2.0, 2.0]).unwrap(), 1.0);
        assert_eq!(r2_score(&[2.0, 2.0], &[2.0, 3.0]).unwrap(), 0.0);
        assert_eq!(mean_squared_error(&[1.0, 2.0], &[1.0, 4.0]).unwrap(), 2.0);
        assert!(matches!(mean_squared_error(&[], &[]), Err(Error::Empty(_))));
        assert!(matches!(
            mean_squared_error(&[1.0], &[1.0, 2.0]),
            Err(Error::Shape(_))
        ));
    }

    proptest! {
        /// AUC equals the Mann-Whitney statistic computed pair by pair.
        #[test]
        fn auc_is_pairwise_ranking(pairs in proptest::collection::vec((0i64..2, 0u8..6), 2..60)) {
            let y: Vec<i64> = pairs.iter().map(|p| p.0).collect();
            let s: Vec<f64> = pairs.iter().map(|p| f64::from(p.1)).collect();
            prop_assume!(y.contains(&0) && y.contains(&1));
            let mut wins = 0.0;
            let mut total = 0.0;
            for i in 0..y.len() { for j in 0..y.len() {
                if y[i] == 1 && y[j] == 0 {
                    total += 1.0;
                    wins += if s[i] > s[j] { 1.0 } else if s[i] == s[j] { 0.5 } else { 0.0 };
                }
            }}
            prop_assert!((roc_auc_score(&y, &s).unwrap() - wins / total).abs() < 1e-12);
        }

        /// Micro-averaged F1 of single-label data is accuracy.
        #[test]
        fn micro_f1_is_accuracy(pairs in proptest::collection::vec((0i64..4, 0i64..4), 1..60)) {
            let t: Vec<i64> = pairs.iter().map(|p| p.0).collect();
            let p: Vec<i64> = pairs.iter().map(|p| p.1).collect();
            let (_, _, f1) = precision_recall_f1(&t, &p, Average::Micro).unwrap();
            prop_assert!((f1 - accuracy_score(&t, &p).unwrap()).abs() < 1e-12);
        }
    }
}
