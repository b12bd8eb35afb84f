//! The decision rules of a Databricks job run: when a task runs (`run_if`), what a
//! skipped task is marked, how a condition task compares, and what the run's result is.
//!
//! Databricks documents `run_if` in prose; this module is that prose as a table:
//!
//! | run_if               | runs when                                              | else             |
//! |----------------------|--------------------------------------------------------|------------------|
//! | ALL_SUCCESS          | every dependency succeeded (or was excluded)           | UPSTREAM_FAILED* |
//! | AT_LEAST_ONE_SUCCESS | a dependency succeeded (or was excluded)               | UPSTREAM_FAILED* |
//! | NONE_FAILED          | no dependency failed or was canceled, one ran and succeeded | UPSTREAM_FAILED* |
//! | ALL_DONE             | always, once every dependency is done                  |                  |
//! | AT_LEAST_ONE_FAILED  | a dependency failed, was canceled, or was skipped for a failure | EXCLUDED |
//! | ALL_FAILED           | every dependency failed, was canceled, or was skipped for one   | EXCLUDED |
//!
//! (*) UPSTREAM_CANCELED instead when a cancellation is among the reasons.
//!
//! Before the table: a task whose dependencies are all excluded is excluded, whatever its
//! `run_if`; and a task that needs every dependency (ALL_SUCCESS, ALL_DONE) with an edge
//! on the branch a condition task did not take (`depends_on: [{task_key: c, outcome:
//! "true"}]` when `c` evaluated false) is excluded: that is what makes a branch a branch.
//! Otherwise "excluded tasks are skipped and treated as successful": an excluded or
//! disabled dependency, or an untaken branch edge, counts as a success for ALL_SUCCESS
//! and AT_LEAST_ONE_SUCCESS (a join after two branches runs on the one taken). NONE_FAILED differs from
//! ALL_SUCCESS in tolerating dependencies that were themselves skipped because of an
//! upstream failure (it needs only that none of them *failed*), while requiring one that
//! actually ran.

use std::fmt;

/// `state.result_state` of a task run or a job run (the Jobs API's `RunResultState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultState {
    Success,
    Failed,
    TimedOut,
    Canceled,
    Excluded,
    UpstreamFailed,
    UpstreamCanceled,
    Disabled,
    SuccessWithFailures,
    MaximumConcurrentRunsReached,
}

impl ResultState {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultState::Success => "SUCCESS",
            ResultState::Failed => "FAILED",
            ResultState::TimedOut => "TIMEDOUT",
            ResultState::Canceled => "CANCELED",
            ResultState::Excluded => "EXCLUDED",
            ResultState::UpstreamFailed => "UPSTREAM_FAILED",
            ResultState::UpstreamCanceled => "UPSTREAM_CANCELED",
            ResultState::Disabled => "DISABLED",
            ResultState::SuccessWithFailures => "SUCCESS_WITH_FAILURES",
            ResultState::MaximumConcurrentRunsReached => "MAXIMUM_CONCURRENT_RUNS_REACHED",
        }
    }

    pub fn parse(s: &str) -> Option<ResultState> {
        [
            ResultState::Success,
            ResultState::Failed,
            ResultState::TimedOut,
            ResultState::Canceled,
            ResultState::Excluded,
            ResultState::UpstreamFailed,
            ResultState::UpstreamCanceled,
            ResultState::Disabled,
            ResultState::SuccessWithFailures,
            ResultState::MaximumConcurrentRunsReached,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// Treated as success downstream and in the job's result (the task did not fail).
    pub fn is_success_like(self) -> bool {
        matches!(
            self,
            ResultState::Success | ResultState::Excluded | ResultState::Disabled
        )
    }
}

impl fmt::Display for ResultState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunIf {
    AllSuccess,
    AtLeastOneSuccess,
    NoneFailed,
    AllDone,
    AtLeastOneFailed,
    AllFailed,
}

impl RunIf {
    pub fn parse(s: &str) -> Option<RunIf> {
        Some(match s {
            "ALL_SUCCESS" => RunIf::AllSuccess,
            "AT_LEAST_ONE_SUCCESS" => RunIf::AtLeastOneSuccess,
            "NONE_FAILED" => RunIf::NoneFailed,
            "ALL_DONE" => RunIf::AllDone,
            "AT_LEAST_ONE_FAILED" => RunIf::AtLeastOneFailed,
            "ALL_FAILED" => RunIf::AllFailed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunIf::AllSuccess => "ALL_SUCCESS",
            RunIf::AtLeastOneSuccess => "AT_LEAST_ONE_SUCCESS",
            RunIf::NoneFailed => "NONE_FAILED",
            RunIf::AllDone => "ALL_DONE",
            RunIf::AtLeastOneFailed => "AT_LEAST_ONE_FAILED",
            RunIf::AllFailed => "ALL_FAILED",
        }
    }
}

/// How one finished dependency looks to the task waiting on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepStatus {
    /// Ran and succeeded.
    Succeeded,
    /// Excluded or disabled: skipped, counts as success.
    Excluded,
    /// An edge on the outcome a condition task did not choose.
    BranchNotTaken,
    /// Ran and failed or timed out.
    Failed,
    /// Did not run because of a failure upstream of it.
    SkippedForFailure,
    /// Canceled while running.
    Canceled,
    /// Did not run because of a cancellation upstream of it.
    SkippedForCancel,
}

impl DepStatus {
    /// The status of an edge: the dependency's result, and for an edge with an `outcome`,
    /// whether the condition task chose that outcome.
    pub fn of(result: ResultState, outcome_wanted: Option<bool>, outcome: Option<bool>) -> Self {
        match result {
            ResultState::Success => match outcome_wanted {
                Some(want) if outcome != Some(want) => DepStatus::BranchNotTaken,
                _ => DepStatus::Succeeded,
            },
            ResultState::Excluded | ResultState::Disabled => DepStatus::Excluded,
            ResultState::Failed | ResultState::TimedOut => DepStatus::Failed,
            ResultState::UpstreamFailed => DepStatus::SkippedForFailure,
            ResultState::Canceled => DepStatus::Canceled,
            ResultState::UpstreamCanceled => DepStatus::SkippedForCancel,
            // Job-level states never describe a task; treat conservatively as failures.
            ResultState::SuccessWithFailures | ResultState::MaximumConcurrentRunsReached => {
                DepStatus::Failed
            }
        }
    }
}

/// Run the task, or mark it skipped with this result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Run,
    Skip(ResultState),
}

/// The `run_if` table (module docs), once every dependency is done.
pub fn decide(run_if: RunIf, deps: &[DepStatus]) -> Decision {
    use DepStatus as D;
    if deps.is_empty() {
        return Decision::Run;
    }
    let untaken = deps.contains(&D::BranchNotTaken);
    if untaken && matches!(run_if, RunIf::AllSuccess | RunIf::AllDone) {
        return Decision::Skip(ResultState::Excluded);
    }
    let deps: Vec<DepStatus> = deps
        .iter()
        .map(|d| {
            if *d == D::BranchNotTaken {
                D::Excluded
            } else {
                *d
            }
        })
        .collect();
    if deps.iter().all(|d| *d == D::Excluded) {
        return Decision::Skip(ResultState::Excluded);
    }
    let any = |f: &dyn Fn(DepStatus) -> bool| deps.iter().any(|d| f(*d));
    let all = |f: &dyn Fn(DepStatus) -> bool| deps.iter().all(|d| f(*d));
    let success_like = |d: DepStatus| matches!(d, D::Succeeded | D::Excluded);
    let failure_like = |d: DepStatus| {
        matches!(
            d,
            D::Failed | D::SkippedForFailure | D::Canceled | D::SkippedForCancel
        )
    };
    let upstream = if any(&|d| matches!(d, D::Canceled | D::SkippedForCancel)) {
        ResultState::UpstreamCanceled
    } else {
        ResultState::UpstreamFailed
    };
    let run = match run_if {
        RunIf::AllSuccess => all(&success_like),
        RunIf::AtLeastOneSuccess => any(&success_like),
        RunIf::NoneFailed => {
            !any(&|d| matches!(d, D::Failed | D::Canceled)) && any(&|d| d == D::Succeeded)
        }
        RunIf::AllDone => true,
        RunIf::AtLeastOneFailed => {
            return if any(&failure_like) {
                Decision::Run
            } else {
                Decision::Skip(ResultState::Excluded)
            };
        }
        RunIf::AllFailed => {
            return if all(&failure_like) {
                Decision::Run
            } else {
                Decision::Skip(ResultState::Excluded)
            };
        }
    };
    if run {
        Decision::Run
    } else {
        Decision::Skip(upstream)
    }
}

/// The job run's result from its tasks' results: SUCCESS when every task succeeded,
/// SUCCESS_WITH_FAILURES when some failed but every leaf (a task nothing depends on)
/// succeeded, FAILED when a leaf did not; CANCELED when the run was canceled.
pub fn job_result(results: &[(ResultState, bool)], canceled: bool, timed_out: bool) -> ResultState {
    if timed_out {
        return ResultState::TimedOut;
    }
    if canceled {
        return ResultState::Canceled;
    }
    if results.iter().all(|(r, _)| r.is_success_like()) {
        return ResultState::Success;
    }
    if results
        .iter()
        .filter(|(_, leaf)| *leaf)
        .all(|(r, _)| r.is_success_like())
    {
        ResultState::SuccessWithFailures
    } else {
        ResultState::Failed
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionOp {
    EqualTo,
    NotEqual,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
}

impl ConditionOp {
    pub fn parse(s: &str) -> Option<ConditionOp> {
        Some(match s {
            "EQUAL_TO" => ConditionOp::EqualTo,
            "NOT_EQUAL" => ConditionOp::NotEqual,
            "GREATER_THAN" => ConditionOp::GreaterThan,
            "GREATER_THAN_OR_EQUAL" => ConditionOp::GreaterThanOrEqual,
            "LESS_THAN" => ConditionOp::LessThan,
            "LESS_THAN_OR_EQUAL" => ConditionOp::LessThanOrEqual,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConditionOp::EqualTo => "EQUAL_TO",
            ConditionOp::NotEqual => "NOT_EQUAL",
            ConditionOp::GreaterThan => "GREATER_THAN",
            ConditionOp::GreaterThanOrEqual => "GREATER_THAN_OR_EQUAL",
            ConditionOp::LessThan => "LESS_THAN",
            ConditionOp::LessThanOrEqual => "LESS_THAN_OR_EQUAL",
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            ConditionOp::EqualTo => "==",
            ConditionOp::NotEqual => "!=",
            ConditionOp::GreaterThan => ">",
            ConditionOp::GreaterThanOrEqual => ">=",
            ConditionOp::LessThan => "<",
            ConditionOp::LessThanOrEqual => "<=",
        }
    }

    /// Databricks' comparison: `==`/`!=` compare the operands as strings (`"12.0" == "12"`
    /// is false); the ordering operators compare them as numbers (`"12.0" >= "12"` is
    /// true) and fail on an operand that is not one.
    pub fn evaluate(self, left: &str, right: &str) -> Result<bool, String> {
        match self {
            ConditionOp::EqualTo => return Ok(left == right),
            ConditionOp::NotEqual => return Ok(left != right),
            _ => {}
        }
        let num = |side: &str, s: &str| -> Result<f64, String> {
            match s.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(format!(
                    "{} compares numbers, but the {side} operand {s:?} is not a number",
                    self.as_str()
                )),
            }
        };
        let (a, b) = (num("left", left)?, num("right", right)?);
        Ok(match self {
            ConditionOp::GreaterThan => a > b,
            ConditionOp::GreaterThanOrEqual => a >= b,
            ConditionOp::LessThan => a < b,
            ConditionOp::LessThanOrEqual => a <= b,
            ConditionOp::EqualTo | ConditionOp::NotEqual => unreachable!("handled above"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::DepStatus as D;
    use super::ResultState as R;
    use super::*;

    fn run(r: RunIf, deps: &[D]) -> Decision {
        decide(r, deps)
    }

    #[test]
    fn run_if_table() {
        use Decision::{Run, Skip};
        let cases: &[(RunIf, &[D], Decision)] = &[
            // ALL_SUCCESS
            (RunIf::AllSuccess, &[D::Succeeded, D::Succeeded], Run),
            (RunIf::AllSuccess, &[D::Succeeded, D::Excluded], Run),
            (
                RunIf::AllSuccess,
                &[D::Succeeded, D::Failed],
                Skip(R::UpstreamFailed),
            ),
            (
                RunIf::AllSuccess,
                &[D::SkippedForFailure],
                Skip(R::UpstreamFailed),
            ),
            (
                RunIf::AllSuccess,
                &[D::Failed, D::Canceled],
                Skip(R::UpstreamCanceled),
            ),
            // AT_LEAST_ONE_SUCCESS
            (RunIf::AtLeastOneSuccess, &[D::Failed, D::Succeeded], Run),
            (RunIf::AtLeastOneSuccess, &[D::Failed, D::Excluded], Run),
            (
                RunIf::AtLeastOneSuccess,
                &[D::Failed, D::Failed],
                Skip(R::UpstreamFailed),
            ),
            // NONE_FAILED
            (
                RunIf::NoneFailed,
                &[D::Succeeded, D::SkippedForFailure],
                Run,
            ),
            (RunIf::NoneFailed, &[D::Succeeded, D::Excluded], Run),
            (
                RunIf::NoneFailed,
                &[D::Succeeded, D::Failed],
                Skip(R::UpstreamFailed),
            ),
            (
                RunIf::NoneFailed,
                &[D::SkippedForFailure, D::Excluded],
                Skip(R::UpstreamFailed),
            ),
            (
                RunIf::NoneFailed,
                &[D::Succeeded, D::Canceled],
                Skip(R::UpstreamCanceled),
            ),
            // ALL_DONE
            (
                RunIf::AllDone,
                &[D::Failed, D::SkippedForFailure, D::Canceled],
                Run,
            ),
            (RunIf::AllDone, &[D::Succeeded], Run),
            // AT_LEAST_ONE_FAILED
            (RunIf::AtLeastOneFailed, &[D::Succeeded, D::Failed], Run),
            (RunIf::AtLeastOneFailed, &[D::SkippedForFailure], Run),
            (RunIf::AtLeastOneFailed, &[D::Canceled], Run),
            (
                RunIf::AtLeastOneFailed,
                &[D::Succeeded, D::Succeeded],
                Skip(R::Excluded),
            ),
            // Condition branches: an untaken branch excludes a task that needs every edge.
            (
                RunIf::AllSuccess,
                &[D::BranchNotTaken, D::Succeeded],
                Skip(R::Excluded),
            ),
            (
                RunIf::AllDone,
                &[D::BranchNotTaken, D::Failed],
                Skip(R::Excluded),
            ),
            (
                RunIf::AtLeastOneSuccess,
                &[D::BranchNotTaken, D::Succeeded],
                Run,
            ),
            (
                RunIf::AtLeastOneSuccess,
                &[D::BranchNotTaken, D::Excluded],
                Skip(R::Excluded),
            ),
            (RunIf::NoneFailed, &[D::BranchNotTaken, D::Succeeded], Run),
            // ALL_FAILED
            (RunIf::AllFailed, &[D::Failed, D::Failed], Run),
            (
                RunIf::AllFailed,
                &[D::Failed, D::Succeeded],
                Skip(R::Excluded),
            ),
            (
                RunIf::AllFailed,
                &[D::Failed, D::Excluded],
                Skip(R::Excluded),
            ),
        ];
        for (run_if, deps, want) in cases {
            assert_eq!(
                run(*run_if, deps),
                *want,
                "{} with {deps:?}",
                run_if.as_str()
            );
        }
    }

    #[test]
    fn all_excluded_dependencies_exclude_whatever_run_if() {
        for r in [
            RunIf::AllSuccess,
            RunIf::AtLeastOneSuccess,
            RunIf::NoneFailed,
            RunIf::AllDone,
            RunIf::AtLeastOneFailed,
            RunIf::AllFailed,
        ] {
            assert_eq!(
                run(r, &[D::Excluded, D::Excluded]),
                Decision::Skip(R::Excluded)
            );
        }
        assert_eq!(run(RunIf::AllSuccess, &[]), Decision::Run);
    }

    #[test]
    fn condition_branches_map_to_edges() {
        assert_eq!(
            DepStatus::of(R::Success, Some(true), Some(true)),
            D::Succeeded
        );
        assert_eq!(
            DepStatus::of(R::Success, Some(true), Some(false)),
            D::BranchNotTaken
        );
        assert_eq!(
            DepStatus::of(R::Success, Some(false), Some(false)),
            D::Succeeded
        );
        assert_eq!(DepStatus::of(R::Success, None, Some(false)), D::Succeeded);
        assert_eq!(DepStatus::of(R::Failed, Some(true), None), D::Failed);
        assert_eq!(DepStatus::of(R::TimedOut, None, None), D::Failed);
        assert_eq!(DepStatus::of(R::Disabled, None, None), D::Excluded);
    }

    #[test]
    fn condition_ops_follow_databricks() {
        use ConditionOp as C;
        assert_eq!(C::EqualTo.evaluate("12.0", "12"), Ok(false));
        assert_eq!(C::EqualTo.evaluate("true", "true"), Ok(true));
        assert_eq!(C::NotEqual.evaluate("a", "b"), Ok(true));
        assert_eq!(C::GreaterThanOrEqual.evaluate("12.0", "12"), Ok(true));
        assert_eq!(C::GreaterThanOrEqual.evaluate("10.0", "12"), Ok(false));
        assert_eq!(C::GreaterThan.evaluate("1e3", "999"), Ok(true));
        assert_eq!(C::LessThan.evaluate("-0.5", "0"), Ok(true));
        assert_eq!(C::LessThanOrEqual.evaluate(" 3 ", "3"), Ok(true));
        assert!(C::GreaterThan.evaluate("abc", "1").is_err());
        assert!(C::GreaterThan.evaluate("1", "NaN").is_err());
        assert!(C::LessThan.evaluate("inf", "1").is_err());
        assert!(C::LessThan.evaluate("", "1").is_err());
        // Unicode strings compare exactly.
        assert_eq!(C::EqualTo.evaluate("café", "cafe\u{301}"), Ok(false));
    }

    #[test]
    fn job_result_by_leaves() {
        assert_eq!(
            job_result(&[(R::Success, false), (R::Excluded, true)], false, false),
            R::Success
        );
        assert_eq!(
            job_result(&[(R::Failed, false), (R::Success, true)], false, false),
            R::SuccessWithFailures
        );
        assert_eq!(
            job_result(
                &[(R::Success, false), (R::UpstreamFailed, true)],
                false,
                false
            ),
            R::Failed
        );
        assert_eq!(job_result(&[(R::Success, true)], true, false), R::Canceled);
    }

    proptest::proptest! {
        #[test]
        fn ordering_ops_agree_with_f64(a in -1e6f64..1e6, b in -1e6f64..1e6) {
            let (l, r) = (a.to_string(), b.to_string());
            proptest::prop_assert_eq!(ConditionOp::GreaterThan.evaluate(&l, &r), Ok(a > b));
            proptest::prop_assert_eq!(ConditionOp::LessThanOrEqual.evaluate(&l, &r), Ok(a <= b));
            proptest::prop_assert_eq!(ConditionOp::EqualTo.evaluate(&l, &r), Ok(l == r));
        }

        #[test]
        fn all_done_always_runs(deps in proptest::collection::vec(0u8..6, 1..8)) {
            let deps: Vec<D> = deps.iter().map(|d| [D::Succeeded, D::Excluded, D::Failed,
                D::SkippedForFailure, D::Canceled, D::SkippedForCancel][usize::from(*d)]).collect();
            let all_excluded = deps.iter().all(|d| *d == D::Excluded);
            let want = if all_excluded { Decision::Skip(R::Excluded) } else { Decision::Run };
            proptest::prop_assert_eq!(decide(RunIf::AllDone, &deps), want);
        }
    }
}
