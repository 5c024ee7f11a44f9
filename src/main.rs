//! The `kubepki` binary: parse the command line, run the command, print an error once and
//! map the outcome to an exit status (0 ok, 1 failure, 2 usage, 3 "something is due").

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = kubepki::cli::Cli::parse();
    match kubepki::commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("kubepki: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
