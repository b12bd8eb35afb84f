//! Dynamic value references: the `{{job.parameters.x}}`, `{{tasks.t.values.v}}`,
//! `{{job.run_id}}` templates a job definition puts in its parameters.
//!
//! The rules are Databricks' documented ones: the text between the braces is a dotted
//! path, not an expression; identifiers other than letters, digits and `_` are written
//! in backticks; text that is not a reference's syntax (a lone brace, `{{ 1 + 2 }}`,
//! an unknown bare name) stays literal, but a path in a known namespace (`job`, `task`,
//! `tasks`, `workspace`) that names nothing (`{{job.naem}}`) is an error, reported when
//! the job is validated. The legacy task-parameter variables (`{{job_id}}`, `{{run_id}}`,
//! `{{task_key}}`, `{{start_date}}`, ...) are still accepted.

use std::fmt;

/// A reference the local runner can resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    JobId,
    JobName,
    JobRunId,
    JobRepairCount,
    JobStartTime(TimeField),
    JobTriggerType,
    JobParameter(String),
    TaskName,
    TaskRunId,
    TaskNotebookPath,
    TaskExecutionCount,
    TasksRunId(String),
    TasksResultState(String),
    TasksErrorCode(String),
    TasksExecutionCount(String),
    TasksValue(String, String),
    /// `{{start_date}}`: the run's start date, `yyyy-MM-dd` (UTC).
    LegacyStartDate,
    /// `{{start_time}}`: the run's start, milliseconds since the epoch.
    LegacyStartTime,
    /// `{{task_retry_count}}`: attempts before this one.
    LegacyRetryCount,
    /// `{{parent_run_id}}`: the job run holding the task run.
    LegacyParentRunId,
}

/// The parts of `{{job.start_time.<field>}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeField {
    IsoDate,
    IsoDatetime,
    IsWeekday,
    TimestampMs,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

impl TimeField {
    fn parse(s: &str) -> Option<TimeField> {
        Some(match s {
            "iso_date" => TimeField::IsoDate,
            "iso_datetime" => TimeField::IsoDatetime,
            "is_weekday" => TimeField::IsWeekday,
            "timestamp_ms" => TimeField::TimestampMs,
            "year" => TimeField::Year,
            "month" => TimeField::Month,
            "day" => TimeField::Day,
            "hour" => TimeField::Hour,
            "minute" => TimeField::Minute,
            "second" => TimeField::Second,
            _ => return None,
        })
    }

    /// The field of a UTC instant given in milliseconds since the epoch.
    pub fn format(self, unix_ms: i64) -> String {
        let secs = unix_ms.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let tod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let (hh, mm, ss) = (tod / 3600, tod % 3600 / 60, tod % 60);
        match self {
            TimeField::IsoDate => format!("{y:04}-{m:02}-{d:02}"),
            TimeField::IsoDatetime => format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}"),
            // 1970-01-01 was a Thursday: day 0 -> weekday index 3 with Monday = 0.
            TimeField::IsWeekday => ((days + 3).rem_euclid(7) < 5).to_string(),
            TimeField::TimestampMs => unix_ms.to_string(),
            TimeField::Year => y.to_string(),
            TimeField::Month => m.to_string(),
            TimeField::Day => d.to_string(),
            TimeField::Hour => hh.to_string(),
            TimeField::Minute => mm.to_string(),
            TimeField::Second => ss.to_string(),
        }
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Reference {
    /// The task whose state this reference reads, if any (`tasks.<key>....`).
    pub fn upstream_task(&self) -> Option<&str> {
        match self {
            Reference::TasksRunId(k)
            | Reference::TasksResultState(k)
            | Reference::TasksErrorCode(k)
            | Reference::TasksExecutionCount(k)
            | Reference::TasksValue(k, _) => Some(k),
            _ => None,
        }
    }

    /// True for references that exist only inside a task run.
    pub fn task_scoped(&self) -> bool {
        self.upstream_task().is_some()
            || matches!(
                self,
                Reference::TaskName
                    | Reference::TaskRunId
                    | Reference::TaskNotebookPath
                    | Reference::TaskExecutionCount
                    | Reference::LegacyRetryCount
                    | Reference::LegacyParentRunId
            )
    }

    /// The reference as written between the braces (identifiers re-quoted when needed).
    pub fn describe(&self) -> String {
        fn q(s: &str) -> String {
            if is_plain(s) {
                s.to_owned()
            } else {
                format!("`{s}`")
            }
        }
        match self {
            Reference::JobId => "job.id".into(),
            Reference::JobName => "job.name".into(),
            Reference::JobRunId => "job.run_id".into(),
            Reference::JobRepairCount => "job.repair_count".into(),
            Reference::JobStartTime(f) => format!("job.start_time.{}", time_name(*f)),
            Reference::JobTriggerType => "job.trigger.type".into(),
            Reference::JobParameter(n) => format!("job.parameters.{}", q(n)),
            Reference::TaskName => "task.name".into(),
            Reference::TaskRunId => "task.run_id".into(),
            Reference::TaskNotebookPath => "task.notebook_path".into(),
            Reference::TaskExecutionCount => "task.execution_count".into(),
            Reference::TasksRunId(k) => format!("tasks.{}.run_id", q(k)),
            Reference::TasksResultState(k) => format!("tasks.{}.result_state", q(k)),
            Reference::TasksErrorCode(k) => format!("tasks.{}.error_code", q(k)),
            Reference::TasksExecutionCount(k) => format!("tasks.{}.execution_count", q(k)),
            Reference::TasksValue(k, v) => format!("tasks.{}.values.{}", q(k), q(v)),
            Reference::LegacyStartDate => "start_date".into(),
            Reference::LegacyStartTime => "start_time".into(),
            Reference::LegacyRetryCount => "task_retry_count".into(),
            Reference::LegacyParentRunId => "parent_run_id".into(),
        }
    }
}

fn time_name(f: TimeField) -> &'static str {
    match f {
        TimeField::IsoDate => "iso_date",
        TimeField::IsoDatetime => "iso_datetime",
        TimeField::IsWeekday => "is_weekday",
        TimeField::TimestampMs => "timestamp_ms",
        TimeField::Year => "year",
        TimeField::Month => "month",
        TimeField::Day => "day",
        TimeField::Hour => "hour",
        TimeField::Minute => "minute",
        TimeField::Second => "second",
    }
}

fn is_plain(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A reference in a known namespace that names nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefError(pub String);

impl fmt::Display for RefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RefError {}

/// Split `{{ a.b.`c d` }}`'s inside into segments; `None` if it is not reference syntax.
fn segments(inner: &str) -> Option<Vec<String>> {
    let s = inner.trim();
    let bytes: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        if i >= bytes.len() {
            return None;
        }
        if bytes[i] == '`' {
            let close = bytes[i + 1..].iter().position(|&c| c == '`')? + i + 1;
            let seg: String = bytes[i + 1..close].iter().collect();
            if seg.is_empty() {
                return None;
            }
            out.push(seg);
            i = close + 1;
        } else {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == '_') {
                i += 1;
            }
            if i == start {
                return None;
            }
            out.push(bytes[start..i].iter().collect());
        }
        if i == bytes.len() {
            return Some(out);
        }
        if bytes[i] != '.' {
            return None;
        }
        i += 1;
    }
}

/// What a `{{...}}` means: a reference, literal text, or an error.
fn classify(inner: &str) -> Result<Option<Reference>, RefError> {
    let Some(seg) = segments(inner) else {
        return Ok(None);
    };
    let s: Vec<&str> = seg.iter().map(String::as_str).collect();
    let bad = || {
        Err(RefError(format!(
            "{{{{{}}}}} is not a dynamic value reference Databricks defines",
            inner.trim()
        )))
    };
    let r = match s.as_slice() {
        ["job", "id"] => Reference::JobId,
        ["job", "name"] => Reference::JobName,
        ["job", "run_id"] => Reference::JobRunId,
        ["job", "repair_count"] => Reference::JobRepairCount,
        ["job", "trigger", "type"] => Reference::JobTriggerType,
        ["job", "start_time", f] => match TimeField::parse(f) {
            Some(f) => Reference::JobStartTime(f),
            None => return bad(),
        },
        ["job", "parameters", name] => Reference::JobParameter((*name).to_owned()),
        ["task", "name"] => Reference::TaskName,
        ["task", "run_id"] => Reference::TaskRunId,
        ["task", "notebook_path"] => Reference::TaskNotebookPath,
        ["task", "execution_count"] => Reference::TaskExecutionCount,
        ["tasks", k, "run_id"] => Reference::TasksRunId((*k).to_owned()),
        ["tasks", k, "result_state"] => Reference::TasksResultState((*k).to_owned()),
        ["tasks", k, "error_code"] => Reference::TasksErrorCode((*k).to_owned()),
        ["tasks", k, "execution_count"] => Reference::TasksExecutionCount((*k).to_owned()),
        ["tasks", k, "values", v] => Reference::TasksValue((*k).to_owned(), (*v).to_owned()),
        ["workspace", ..] => {
            return Err(RefError(format!(
                "{{{{{}}}}}: there is no Databricks workspace in a local run",
                inner.trim()
            )));
        }
        ["job" | "task" | "tasks", ..] => return bad(),
        ["job_id"] => Reference::JobId,
        ["run_id"] => Reference::TaskRunId,
        ["parent_run_id"] => Reference::LegacyParentRunId,
        ["task_key"] => Reference::TaskName,
        ["start_date"] => Reference::LegacyStartDate,
        ["start_time"] => Reference::LegacyStartTime,
        ["task_retry_count"] => Reference::LegacyRetryCount,
        _ => return Ok(None),
    };
    Ok(Some(r))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Ref(Reference),
}

fn pieces(text: &str) -> Result<Vec<Piece<'_>>, RefError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let Some(close_rel) = rest[open + 2..].find("}}") else {
            break;
        };
        let close = open + 2 + close_rel;
        match classify(&rest[open + 2..close])? {
            Some(r) => {
                if open > 0 {
                    out.push(Piece::Text(&rest[..open]));
                }
                out.push(Piece::Ref(r));
                rest = &rest[close + 2..];
            }
            None => {
                // Literal: keep the braces and go on after them.
                out.push(Piece::Text(&rest[..open + 2]));
                rest = &rest[open + 2..];
            }
        }
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// The references a text holds, or the first one that names nothing.
pub fn references(text: &str) -> Result<Vec<Reference>, RefError> {
    Ok(pieces(text)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Ref(r) => Some(r),
            Piece::Text(_) => None,
        })
        .collect())
}

/// The text with every reference replaced by what `resolve` gives for it.
pub fn substitute<F>(text: &str, mut resolve: F) -> Result<String, String>
where
    F: FnMut(&Reference) -> Result<String, String>,
{
    let mut out = String::with_capacity(text.len());
    for p in pieces(text).map_err(|e| e.0)? {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Ref(r) => out.push_str(&resolve(&r)?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(t: &str) -> Vec<Reference> {
        references(t).unwrap()
    }

    #[test]
    fn recognises_the_documented_references() {
        assert_eq!(refs("job_{{job.run_id}}"), vec![Reference::JobRunId]);
        assert_eq!(
            refs("{{ job.parameters.env }}-{{tasks.ingest.values.rows}}"),
            vec![
                Reference::JobParameter("env".into()),
                Reference::TasksValue("ingest".into(), "rows".into())
            ]
        );
        assert_eq!(
            refs("{{job.parameters.`param$@`}}"),
            vec![Reference::JobParameter("param$@".into())]
        );
        assert_eq!(refs("{{task.name}}"), vec![Reference::TaskName]);
        assert_eq!(
            refs("{{job.start_time.iso_date}}"),
            vec![Reference::JobStartTime(TimeField::IsoDate)]
        );
        assert_eq!(refs("{{task_key}}"), vec![Reference::TaskName]);
    }

    #[test]
    fn syntax_errors_stay_literal_known_namespace_errors_do_not() {
        assert!(refs("{{my.value}").is_empty());
        assert!(refs("{{ 1 + 2 }}").is_empty());
        assert!(refs("{{unknown_thing}}").is_empty());
        assert!(refs("{{}}").is_empty());
        assert!(refs("{{`unterminated}}").is_empty());
        assert!(references("{{job.naem}}").is_err());
        assert!(references("{{tasks.a.valuez.b}}").is_err());
        assert!(references("{{job.start_time.fortnight}}").is_err());
        assert!(references("{{workspace.url}}").is_err());
    }

    #[test]
    fn substitute_replaces_and_keeps_literals() {
        let out = substitute("a {{x}} {{job.run_id}} {{ task.name }}} é", |r| {
            Ok(match r {
                Reference::JobRunId => "42".into(),
                Reference::TaskName => "t".into(),
                _ => unreachable!(),
            })
        })
        .unwrap();
        assert_eq!(out, "a {{x}} 42 t} é");
        let err = substitute("{{job.parameters.x}}", |_| Err("missing".into()));
        assert_eq!(err, Err("missing".into()));
    }

    #[test]
    fn describe_round_trips() {
        for t in [
            "job.parameters.`a b`",
            "tasks.t1.values.v",
            "job.start_time.iso_datetime",
            "task.execution_count",
        ] {
            let r = refs(&format!("{{{{{t}}}}}")).remove(0);
            assert_eq!(r.describe(), t);
        }
    }

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        // 2000-02-29 (leap day of a century divisible by 400) is day 11016.
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        // 2026-12-01 is day 20788.
        assert_eq!(civil_from_days(20_788), (2026, 12, 1));
        let ms = 20_788_i64 * 86_400_000 + (16 * 3600 + 5 * 60 + 9) * 1000;
        assert_eq!(TimeField::IsoDatetime.format(ms), "2026-12-01T16:05:09");
        // 2026-12-01 is a Tuesday; 2026-12-05 a Saturday.
        assert_eq!(TimeField::IsWeekday.format(ms), "true");
        assert_eq!(TimeField::IsWeekday.format(ms + 4 * 86_400_000), "false");
    }

    proptest::proptest! {
        #[test]
        fn text_without_braces_is_unchanged(s in "[^{}]*") {
            let out = substitute(&s, |_| Err("no refs expected".into())).unwrap();
            proptest::prop_assert_eq!(out, s);
        }

        #[test]
        fn any_text_never_panics(s in "\\PC*") {
            let _ = references(&s);
            let _ = substitute(&s, |_| Ok(String::new()));
        }
    }
}
