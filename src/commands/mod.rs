//! One module per command; `run` starts the async runtime and hands the parsed arguments to
//! the command.

mod fetch;
mod init;
mod install;
mod load;
mod udf;

use anyhow::{Context, Result};

use crate::cli::Command;

/// Runs one command.
pub(crate) fn run(command: Command) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match command {
        Command::Fetch(args) => runtime.block_on(fetch::run(args)),
        Command::Load(args) => runtime.block_on(load::run(args)),
        Command::Init(args) => runtime.block_on(init::run(args)),
        Command::Install(args) => runtime.block_on(install::install(args)),
        Command::Uninstall(args) => runtime.block_on(install::uninstall(args)),
        Command::Udf(args) => udf::serve(
            &args,
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
                bound: crate::http::TimeBound::Attempt,
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
