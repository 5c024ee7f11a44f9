//! The `kubepki` binary: parse the command line, run the command, print an error once and
//! map the outcome to an exit status (0 ok, 1 failure, 2 usage, 3 "something is due").

use clap::Parser;
use std::process::ExitCode;

/// Exit status of misuse, as clap's own usage errors.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = kubepki::cli::Cli::parse();
    match kubepki::commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("kubepki: error: {error:#}");
            match error.downcast_ref::<kubepki::cli::UsageError>() {
                Some(_) => ExitCode::from(USAGE),
                None => ExitCode::FAILURE,
            }
        }
    }
}
