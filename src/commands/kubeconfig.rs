//! `kubepki kubeconfig user`.

use super::{Configured, configured_tree, out_file};
use crate::cli::{KubeconfigCommand, KubeconfigUserArgs};
use crate::engine::user::{UserRequest, user_kubeconfig};
use crate::report::{capped, print_document};
use crate::spec::{DEFAULT_CERT_VALIDITY, validity};
use crate::tree::store;
use anyhow::{Result, bail};
use std::process::ExitCode;
use time::OffsetDateTime;

/// Runs a `kubeconfig` command.
pub fn run(command: &KubeconfigCommand) -> Result<ExitCode> {
    let KubeconfigCommand::User(args) = command;
    user(args)
}

fn user(args: &KubeconfigUserArgs) -> Result<ExitCode> {
    let out = out_file(
        args.out.as_deref(),
        args.deprecated_output.as_deref(),
        args.force,
    )?;
    if let Some(path) = out.as_ref().filter(|_| !args.force) {
        if path.symlink_metadata().is_ok() {
            bail!("{} exists; pass --force to replace it", path.display());
        }
    }
    let Configured { file, dirs, .. } = configured_tree(args.config.as_deref(), &args.tree)?;
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
        cluster_name: file.cluster.cluster_name.clone(),
        now: OffsetDateTime::now_utc(),
    };
    let (yaml, ended_early) = user_kubeconfig(&dirs, &request)?;
    capped("kubeconfig", ended_early.as_slice());
    match &out {
        Some(path) => {
            store::write_outside(&dirs, "--out", path, &yaml, store::SECRET_MODE, args.force)?
        }
        None => print_document(&String::from_utf8_lossy(&yaml))?,
    }
    Ok(ExitCode::SUCCESS)
}
