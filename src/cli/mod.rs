//! The command line, as a SQL user meets it inside `executable('astro ...', ...)`: what the user
//! typed ([`args`], checked before any work; a bad value is a usage error, exit status 2), the
//! checks of single values ([`values`]), and the job each command runs, built from it
//! ([`build`], the only part that reads the environment or files).

mod args;
mod build;
mod values;

use crate::commands::Job;

/// The parsed, checked command line: whether to log, and the job to run, or why it could not be
/// built (an unreadable headers file, say: a failure of the job, exit status 1).
pub(crate) struct Parsed {
    pub(crate) verbose: bool,
    pub(crate) job: anyhow::Result<Job>,
}

/// Parses and checks the command line (a usage error ends the process with status 2), then
/// builds its job.
pub(crate) fn parse() -> Parsed {
    let cli = args::Cli::parse_checked();
    Parsed {
        verbose: cli.verbose,
        job: build::job(cli.command),
    }
}
