//! Quality gates: a threshold per measured value, each gate passing or failing on its
//! own, the whole passing only if every gate does. The values are measured, not
//! declared: the champion's ROC AUC on fresh labelled rows, the incoming batch's null
//! rate and out-of-range rate, and the served model's p99 latency over HTTP.

use std::fmt;

/// Which side of the threshold passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    AtLeast,
    AtMost,
}

/// One gate's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub name: &'static str,
    pub value: f64,
    pub direction: Direction,
    pub threshold: f64,
}

impl Gate {
    /// NaN never passes: an unmeasurable value is a failed gate, not a silent pass.
    pub fn passed(&self) -> bool {
        match self.direction {
            Direction::AtLeast => self.value >= self.threshold,
            Direction::AtMost => self.value <= self.threshold,
        }
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.direction {
            Direction::AtLeast => ">=",
            Direction::AtMost => "<=",
        };
        write!(
            f,
            "[{}] {:<24} {:>12.6} {op} {:<12}",
            if self.passed() { "pass" } else { "FAIL" },
            self.name,
            self.value,
            self.threshold
        )
    }
}

/// Thresholds of one gate configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    pub min_roc_auc: f64,
    pub max_null_rate: f64,
    pub max_out_of_range_rate: f64,
    /// Amounts outside `[0, max_amount]` count as out of range.
    pub max_amount: f64,
    pub max_p99_ms: f64,
}

/// The measured values the gates compare.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub roc_auc: f64,
    pub null_rate: f64,
    /// The batch's amounts, checked against `[0, max_amount]`.
    pub amounts: Vec<f64>,
    pub p99_ms: f64,
}

/// Fraction of non-NaN `values` outside `[lo, hi]`; NaN when every value is missing.
pub fn out_of_range_rate(values: &[f64], lo: f64, hi: f64) -> f64 {
    let present: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if present.is_empty() {
        return f64::NAN;
    }
    present.iter().filter(|&&v| v < lo || v > hi).count() as f64 / present.len() as f64
}

/// Fraction of NaN cells; NaN for an empty batch (a gate on no data fails).
pub fn null_rate(x: &[f64]) -> f64 {
    if x.is_empty() {
        return f64::NAN;
    }
    x.iter().filter(|v| v.is_nan()).count() as f64 / x.len() as f64
}

/// Every gate of `t` on `m`.
pub fn evaluate(m: &Measured, t: &Thresholds) -> Vec<Gate> {
    vec![
        Gate {
            name: "model: ROC AUC",
            value: m.roc_auc,
            direction: Direction::AtLeast,
            threshold: t.min_roc_auc,
        },
        Gate {
            name: "data: null rate",
            value: m.null_rate,
            direction: Direction::AtMost,
            threshold: t.max_null_rate,
        },
        Gate {
            name: "data: amount out of range",
            value: out_of_range_rate(&m.amounts, 0.0, t.max_amount),
            direction: Direction::AtMost,
            threshold: t.max_out_of_range_rate,
        },
        Gate {
            name: "serving: p99 latency ms",
            value: m.p99_ms,
            direction: Direction::AtMost,
            threshold: t.max_p99_ms,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_and_empty_inputs_fail_their_gates() {
        assert!(null_rate(&[]).is_nan());
        assert_eq!(null_rate(&[1.0, f64::NAN]), 0.5);
        assert!(out_of_range_rate(&[f64::NAN], 0.0, 1.0).is_nan());
        assert_eq!(
            out_of_range_rate(&[-1.0, 0.5, 2.0, f64::NAN], 0.0, 1.0),
            2.0 / 3.0
        );
        let g = Gate {
            name: "x",
            value: f64::NAN,
            direction: Direction::AtMost,
            threshold: 1.0,
        };
        assert!(!g.passed());
        let g = Gate {
            name: "x",
            value: f64::NAN,
            direction: Direction::AtLeast,
            threshold: 0.0,
        };
        assert!(!g.passed());
    }

    #[test]
    fn thresholds_are_inclusive() {
        let g = Gate {
            name: "x",
            value: 0.9,
            direction: Direction::AtLeast,
            threshold: 0.9,
        };
        assert!(g.passed());
        let g = Gate {
            name: "x",
            value: 0.91,
            direction: Direction::AtMost,
            threshold: 0.9,
        };
        assert!(!g.passed());
    }
}
