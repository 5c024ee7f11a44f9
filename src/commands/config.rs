//! `kubepki config print init-defaults` and `kubepki config validate --config FILE`.

use crate::cli::{ConfigCommand, PrintWhat};
use crate::config;
use crate::report::print_document;
use anyhow::Result;
use std::process::ExitCode;

/// Runs a `config` subcommand.
pub fn run(command: &ConfigCommand) -> Result<ExitCode> {
    match command {
        ConfigCommand::Print {
            what: PrintWhat::InitDefaults,
        } => print_document(&config::init_defaults())?,
        ConfigCommand::Validate { config: path } => {
            let lines = config::validate(path)?;
            print_document(&format!(
                "{}: valid\n{}\n",
                path.display(),
                lines.join("\n")
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
