//! astro: fetch an HTTP JSON API for ClickHouse, with retry, validation and clear errors.
//!
//! The rooms, from the top floor down: `cli` (every flag) and `commands` (one module per
//! command); `api` (every page of an answer fetched and validated) and `paginate` (the next
//! page), `server` (a ClickHouse server over HTTP), `schema` (the SQL carried inside the
//! binary); `http` (the HTTP client) and `retry` (the one retry loop); and the leaves `guard`
//! (what may be reached), `validate` (the answer's shape), `json` (the one-pass scanner, as
//! strict as ClickHouse), `rows` and `formats` (what is printed, and how), `secrets`,
//! `fingerprint` (content hashes), `tls`, `units`, `messages`.

mod api;
mod cli;
mod cluster;
mod commands;
mod fingerprint;
mod formats;
mod guard;
mod http;
mod json;
mod messages;
mod paginate;
mod retry;
mod rows;
mod schema;
mod secrets;
mod server;
mod tls;
mod units;
mod validate;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse_checked();
    messages::set_verbose(cli.verbose);
    match commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line. ClickHouse (stderr_reaction = 'log_last') puts it into the SQL user's
            // exception followed by its own text, so no newline ends it there; a terminal gets
            // one.
            let line = messages::failure_line(&error);
            let mut stderr = std::io::stderr().lock();
            let end = if stderr.is_terminal() { "\n" } else { "" };
            let _ = write!(stderr, "astro: {line}{end}");
            ExitCode::FAILURE
        }
    }
}
