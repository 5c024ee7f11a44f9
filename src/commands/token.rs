//! `kubepki token generate|create|manifests`.

use super::{Configured, configured_tree, lock_existing_tree};
use crate::cli::{ManifestsArgs, TokenCommand, TokenCreateArgs, TokenDeleteArgs};
use crate::cluster::bootstrap::{BootstrapToken, DEFAULT_TTL};
use crate::config::TokenSettings;
use crate::engine::bootstrap::{
    create_token, delete_tokens, join_command, prune_expired_tokens, write_manifests,
};
use crate::report::{
    print_cluster_deletion, print_join_commands, print_manifests, print_removed_tokens,
    print_token, print_token_list, token_list_scope,
};
use crate::tree::reader::{read_admin, read_tokens};
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
            let now = OffsetDateTime::now_utc();
            let _lock = lock_existing_tree(&dirs, &args.lock)?;
            let pruned = prune_expired_tokens(&manifests_dir(args), now)?;
            print_removed_tokens(&pruned, true, false)?;
            let written = write_manifests(&dirs, &manifests_dir(args), now)?;
            print_manifests(&written, false)?;
        }
        TokenCommand::List(args) => {
            let dir = manifests_dir(&args.manifests);
            let tokens = read_tokens(&dir)?;
            token_list_scope(&dir);
            print_token_list(&tokens, OffsetDateTime::now_utc(), args.output.into())?;
        }
        TokenCommand::Delete(args) => delete(args)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn delete(args: &TokenDeleteArgs) -> Result<()> {
    let ids = args
        .tokens
        .iter()
        .map(|arg| arg.token_id("TOKEN-ID|TOKEN"))
        .collect::<Result<Vec<_>, _>>()?;
    let dirs = args.manifests.tree.dirs();
    let _lock = lock_existing_tree(&dirs, &args.manifests.lock)?;
    let dir = manifests_dir(&args.manifests);
    let (removed, written) = delete_tokens(&dirs, &dir, &ids, OffsetDateTime::now_utc())?;
    print_removed_tokens(&removed, false, false)?;
    print_manifests(&written, false)?;
    print_cluster_deletion(&ids)
}

/// The flag's values when given, else the configuration's.
fn pick<T: Clone>(flag: &[T], file: Option<&Vec<T>>) -> Vec<T> {
    match (flag.is_empty(), file) {
        (false, _) | (true, None) => flag.to_vec(),
        (true, Some(file)) => file.clone(),
    }
}

/// `--manifests-dir`, else the default.
fn manifests_dir(args: &ManifestsArgs) -> PathBuf {
    args.manifests_dir
        .clone()
        .unwrap_or_else(|| args.tree.dirs().manifests_dir())
}

fn create(args: &TokenCreateArgs) -> Result<()> {
    let now = OffsetDateTime::now_utc();
    let Configured { file, dirs, .. } =
        configured_tree(args.config.as_deref(), &args.manifests.tree)?;
    let defaults = file.token_settings(now)?.into_iter().next();
    let token = match (&args.token, defaults.as_ref().and_then(|d| d.token.clone())) {
        (Some(arg), _) => arg.token("TOKEN")?,
        (None, Some(token)) => token,
        (None, None) => BootstrapToken::generate()?,
    };
    let settings = TokenSettings {
        field: String::new(),
        token: None,
        ttl: args
            .ttl
            .or(defaults.as_ref().map(|d| d.ttl))
            .unwrap_or(DEFAULT_TTL),
        usages: pick(&args.usages, defaults.as_ref().map(|d| &d.usages)),
        groups: pick(&args.groups, defaults.as_ref().map(|d| &d.groups)),
        description: args
            .description
            .clone()
            .or(defaults.and_then(|d| d.description)),
    };
    let record = settings.record(token, now)?;
    let _lock = lock_existing_tree(&dirs, &args.manifests.lock)?;
    let admin = read_admin(&dirs)?;
    let join = match args.print_join_command {
        true => Some(join_command(&admin, &record.token)?),
        false => None,
    };
    let dir = manifests_dir(&args.manifests);
    let (pruned, written) = create_token(&dirs, &dir, &record, now)?;
    print_removed_tokens(&pruned, true, true)?;
    print_manifests(&written, true)?;
    match join {
        Some(join) => print_join_commands(&join),
        None => print_token(&record.token),
    }
}
