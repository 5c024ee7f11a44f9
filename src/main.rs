//! The `kubepki` binary: parse the command line, run the command, print an error once and
//! map the outcome to an exit status (0 ok, 1 failure, 2 usage, 3 "something is due").

#![forbid(unsafe_code)]

use clap::Parser;
use clap::error::ErrorKind;
use std::process::ExitCode;

/// Exit status of misuse, as clap's own usage errors.
const USAGE: u8 = 2;

/// Exit status when stdout was closed early (`| head`): a process killed by SIGPIPE's.
const CLOSED_STDOUT: u8 = 128 + 13;

fn main() -> ExitCode {
    let cli = match kubepki::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if shows_help(&error) => error.exit(),
        Err(error) => {
            eprintln!("kubepki: error: {}", kubepki::cli::usage_line(&error));
            return ExitCode::from(USAGE);
        }
    };
    match kubepki::commands::run(cli) {
        Ok(code) => code,
        Err(error) if closed_stdout(&error) => ExitCode::from(CLOSED_STDOUT),
        Err(error) => {
            eprintln!("kubepki: error: {error:#}");
            match error.downcast_ref::<kubepki::usage::UsageError>() {
                Some(_) => ExitCode::from(USAGE),
                None => ExitCode::FAILURE,
            }
        }
    }
}

/// Whether the command ended because its reader closed stdout: that ends it quietly.
fn closed_stdout(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Whether clap's "error" is help or version text, printed as clap prints it.
fn shows_help(error: &clap::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    )
}
