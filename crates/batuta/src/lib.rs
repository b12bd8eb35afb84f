//! batuta: orchestration, the part of a data platform that runs a job's tasks in the
//! right order and decides what happens when one fails.
//!
//! It runs a Databricks Jobs API 2.1 job definition (the JSON `databricks jobs create
//! --json` takes, databricks-sdk's `JobSettings`) on one machine, with the platform's
//! documented semantics:
//!
//! - [`job`]: reading and validating the definition: task types, `depends_on`, cycles,
//!   unknown dependencies and references refused before anything runs;
//! - [`semantics`]: `run_if`, condition-task comparison, skipped (UPSTREAM_FAILED) versus
//!   excluded (EXCLUDED) tasks, and the run's result from its leaf tasks;
//! - [`refs`]: dynamic value references (`{{job.parameters.x}}`,
//!   `{{tasks.t.values.v}}`, `{{job.run_id}}`, `{{task.name}}`);
//! - [`process`]: a task's process tree, its timeout and its cancellation;
//! - [`runner`]: the scheduler: bounded parallelism, retries with an interval and
//!   backoff, task values passed between tasks, repair of a failed run;
//! - [`record`]: the run record (the Jobs API's run object as JSON) and the summary.
//!
//! Notebook tasks run through the project's notebook runner (`python -m coursekit.run`),
//! Python tasks (`spark_python_task`) and shell tasks (`shell_task`, a batuta extension)
//! as processes. The `batuta` command (src/main.rs) ships in a wheel of its own.

pub mod job;
pub mod process;
pub mod record;
pub mod refs;
pub mod runner;
pub mod semantics;

pub use job::{Job, JobError, Locate};
pub use runner::{Run, Settings, run};
pub use semantics::ResultState;
