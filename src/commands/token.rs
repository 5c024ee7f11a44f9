//! `kubepki token generate|create|manifests`.

use super::lock_existing_tree;
use crate::cli::{ManifestsArgs, TokenCommand, TokenCreateArgs};
use crate::cluster::bootstrap::{BootstrapToken, DEFAULT_TTL, TokenRecord};
use crate::engine::bootstrap::{create_token, join_command, write_manifests};
use crate::report::{print_join_commands, print_manifests, print_token};
use crate::tree::reader::read_admin;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use time::OffsetDateTime;

/// Runs a `token` command.
pub fn run(command: &TokenCommand) -> Result<ExitCode> {
    match command {
        TokenCommand::Generate => print_token(&BootstrapToken::generate()?)?,
        TokenCommand::Create(args) => create(args)?,
        TokenCommand::Manifests(args) => {
            let dirs = args.tree.dirs();
            let _lock = lock_existing_tree(&dirs, &args.lock)?;
            let written = write_manifests(&dirs, &manifests_dir(args), OffsetDateTime::now_utc())?;
            print_manifests(&written, false)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--manifests-dir`, else the default.
fn manifests_dir(args: &ManifestsArgs) -> PathBuf {
    args.manifests_dir
        .clone()
        .unwrap_or_else(|| args.tree.dirs().manifests_dir())
}

fn create(args: &TokenCreateArgs) -> Result<()> {
    let now = OffsetDateTime::now_utc();
    let dirs = args.manifests.tree.dirs();
    let token = match &args.token {
        Some(arg) => arg.token("TOKEN")?,
        None => BootstrapToken::generate()?,
    };
    let record = TokenRecord::new(
        token,
        args.ttl.unwrap_or(DEFAULT_TTL),
        now,
        args.usages.clone(),
        args.groups.clone(),
        args.description.clone(),
    )?;
    let _lock = lock_existing_tree(&dirs, &args.manifests.lock)?;
    let admin = read_admin(&dirs)?;
    let join = match args.print_join_command {
        true => Some(join_command(&admin, &record.token)?),
        false => None,
    };
    let written = create_token(&dirs, &manifests_dir(&args.manifests), &record, now)?;
    print_manifests(&written, true)?;
    match join {
        Some(join) => print_join_commands(&join),
        None => print_token(&record.token),
    }
}
