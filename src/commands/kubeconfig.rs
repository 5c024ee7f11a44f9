//! `kubepki kubeconfig user`.

use crate::cli::{KubeconfigCommand, KubeconfigUserArgs};
use crate::engine::user::{UserRequest, user_kubeconfig};
use crate::report::{capped, print_document};
use crate::spec::{DEFAULT_CERT_VALIDITY, validity};
use crate::tree::store;
use anyhow::Result;
use std::process::ExitCode;
use time::OffsetDateTime;

/// Runs a `kubeconfig` command.
pub fn run(command: &KubeconfigCommand) -> Result<ExitCode> {
    let KubeconfigCommand::User(args) = command;
    user(args)
}

fn user(args: &KubeconfigUserArgs) -> Result<ExitCode> {
    let request = UserRequest {
        name: args.client_name.clone(),
        groups: args.orgs.clone(),
        validity: validity(
            args.validity_period,
            DEFAULT_CERT_VALIDITY,
            "--validity-period",
        )?,
        server: args.server.clone(),
        algorithm: args.encryption_algorithm,
        now: OffsetDateTime::now_utc(),
    };
    let (yaml, ended_early) = user_kubeconfig(&args.tree.dirs(), &request)?;
    capped("kubeconfig", ended_early.as_slice());
    match &args.output {
        Some(path) => store::write_outside(path, &yaml, store::SECRET_MODE)?,
        None => print_document(&String::from_utf8_lossy(&yaml))?,
    }
    Ok(ExitCode::SUCCESS)
}
