use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = astro::cli::Cli::parse();
    match astro::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: ClickHouse's stderr_reaction = 'log_last' shows the last line.
            let message = format!("{error:#}").replace(['\n', '\r'], " ");
            eprintln!("astro: {message}");
            ExitCode::FAILURE
        }
    }
}
