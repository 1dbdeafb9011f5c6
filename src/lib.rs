//! astro: fetch an HTTP JSON API for ClickHouse, with retry, validation and clear errors.
//!
//! One module per concern: `cli` (the command line), `fetch` (HTTP with retry and limits),
//! `guard` (what the UDF may reach), `validate` (the answer's shape), `output` (ClickHouse
//! formats), `secrets` (headers and redaction), and the commands `ingest` (`astro fetch`),
//! `udf` (`astro udf`) and `load` (`astro load`, `astro init`, over `remote`: a ClickHouse server).

pub mod cli;
pub mod fetch;
pub mod guard;
pub mod ingest;
#[allow(dead_code)] // wired in by the commands next
mod json;
pub mod load;
pub mod output;
pub mod remote;
pub mod secrets;
pub mod tls;
pub mod udf;
pub mod units;
pub mod validate;

use anyhow::{Context, Result};

/// Runs one parsed command line.
pub fn run(cli: cli::Cli) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        cli::Command::Fetch(args) => runtime.block_on(ingest::run(args, cli.verbose)),
        cli::Command::Load(args) => runtime.block_on(load::load(args, cli.verbose)),
        cli::Command::Init(args) => runtime.block_on(load::init(args, cli.verbose)),
        cli::Command::Udf(args) => udf::serve(
            args,
            cli.verbose,
            &runtime,
            std::io::stdin().lock(),
            std::io::stdout().lock(),
        ),
    }
}
