//! Dispatch: one `run` per command file. Commands turn arguments into a spec, call the
//! engine (plan, apply) and hand the result to `report`; they parse and decide nothing.

mod init;

use crate::cli::{Cli, Command};
use anyhow::Result;
use std::process::ExitCode;

/// Runs the parsed command line; `Err` means exit status 1 with the error printed once.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Init(args) => init::run(&args, cli.verbose),
    }
}
