//! One module per command, each with the job the command line builds for it; `run` starts the
//! async runtime and runs the job.

pub(crate) mod fetch;
pub(crate) mod init;
pub(crate) mod install;
pub(crate) mod load;
pub(crate) mod udf;

use anyhow::{Context, Result};

/// What the command line asked for, built and ready to run.
/// Boxed: a job is built once, and its parts (clients, servers) differ much in size.
pub(crate) enum Job {
    Fetch(Box<fetch::Job>),
    Load(Box<load::Job>),
    Init(Box<init::Job>),
    Install(Box<install::Install>),
    Uninstall(Box<install::Uninstall>),
    Udf(Box<udf::Job>),
}

/// Runs one job.
pub(crate) fn run(job: Job) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match job {
        Job::Fetch(job) => runtime.block_on(fetch::run(*job)),
        Job::Load(job) => runtime.block_on(load::run(*job)),
        Job::Init(job) => runtime.block_on(init::run(*job)),
        Job::Install(job) => runtime.block_on(install::install(*job)),
        Job::Uninstall(job) => runtime.block_on(install::uninstall(*job)),
        Job::Udf(job) => udf::serve(
            &job,
            &runtime,
            std::io::stdin().lock(),
            std::io::stdout().lock(),
        ),
    }
}

/// When the built-in default URL cannot be reached, the line says how to fetch elsewhere.
fn hint_for_default_url(error: crate::pull::AnswerError, is_default: bool) -> anyhow::Error {
    if is_default && error.is_unreachable() {
        anyhow::anyhow!(
            "{} (the built-in default API; point astro at another endpoint with --url or ASTRO_API_URL)",
            crate::messages::failure_line(&anyhow::Error::new(error))
        )
    } else {
        error.into()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::http::{AttemptError, FetchError};
    use crate::retry::Stop;

    fn timed_out() -> crate::pull::AnswerError {
        crate::pull::AnswerError::Fetch(FetchError {
            what: "fetch of http://api.open-notify.org/astros.json".into(),
            attempts: 2,
            elapsed: Duration::from_secs(8),
            stop: Stop::Final,
            last: AttemptError::TimedOut {
                limit: Duration::from_secs(3),
                bound: crate::http::TimeBound::Attempt("--timeout"),
            },
        })
    }

    #[test]
    fn an_unreachable_default_url_says_how_to_point_elsewhere() {
        let line = crate::messages::failure_line(&hint_for_default_url(timed_out(), true));
        assert!(
            line.ends_with("point astro at another endpoint with --url or ASTRO_API_URL)"),
            "{line}"
        );
        let line = crate::messages::failure_line(&hint_for_default_url(timed_out(), false));
        assert!(!line.contains("another endpoint"), "{line}");
    }
}
