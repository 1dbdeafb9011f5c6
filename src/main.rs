//! astro: fetch an HTTP JSON API for ClickHouse, with retry, validation and clear errors.
//!
//! The layers, from the top down; each module uses only those below it:
//! - `cli`: the command line: what the user typed (`args`, `values`) and the job it builds
//!   (`build`, the only reader of the environment and files);
//! - `commands`: one module per command, each with its job;
//! - the core: `pull` (every page of an answer fetched and validated, and the paginators),
//!   `clickhouse_client` (a ClickHouse server over HTTP), `cluster` (the schema on a cluster),
//!   `oauth` (OAuth2 client-credentials tokens), `open_notify` (the flagship preset),
//!   `oauth` (OAuth2 client credentials: the token the HTTP client sends), `http` (the HTTP
//!   client), `retry` (the one retry loop and its failure sentence), `guard`
//!   (what may be reached), `validate` (what an answer must hold);
//! - the leaves: `json` (the one-pass scanner, as strict as ClickHouse), `rows` (the rows
//!   printed and their formats), `schema` (the SQL carried inside the binary), `template` (a URL
//!   with placeholders), `secrets`, `messages`, `text`, `units`, `tls`, `fingerprint`.

mod cli;
mod clickhouse_client;
mod cluster;
mod commands;
mod fingerprint;
mod guard;
mod http;
mod json;
mod messages;
mod oauth;
mod open_notify;
mod progress;
mod pull;
mod rate;
mod retry;
mod rows;
mod schema;
mod secrets;
mod template;
#[cfg(test)]
mod testing;
mod text;
mod tls;
mod units;
mod validate;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let parsed = cli::parse();
    messages::set_verbose(parsed.verbose);
    match parsed.job.and_then(commands::run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line. ClickHouse (stderr_reaction = 'log_last') puts it into the SQL user's
            // exception followed by its own text, so no newline ends it there; a terminal gets
            // one.
            progress::finish();
            let line = messages::failure_line(&error);
            let mut stderr = std::io::stderr().lock();
            let end = if stderr.is_terminal() { "\n" } else { "" };
            let _ = write!(stderr, "astro: {line}{end}");
            ExitCode::FAILURE
        }
    }
}
