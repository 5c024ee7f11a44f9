//! `kubepki token generate|create|manifests`, and the manifests step `init` shares.

use super::lock_tree;
use crate::cli::{ManifestsArgs, TokenCommand, TokenCreateArgs, UsageError};
use crate::cluster::bootstrap::{BootstrapToken, DEFAULT_GROUP, DEFAULT_TTL, TokenRecord, Usage};
use crate::cluster::kubeconfig::Kubeconfig;
use crate::engine::bootstrap::{read_admin, write_manifests};
use crate::pki::pin::CaPin;
use crate::report::{JoinCommand, print_join_commands, print_manifests, print_token};
use crate::tree::store::{self, FileWrite};
use anyhow::{Result, anyhow, bail};
use std::path::PathBuf;
use std::process::ExitCode;
use time::OffsetDateTime;

/// Runs a `token` command.
pub fn run(command: &TokenCommand) -> Result<ExitCode> {
    match command {
        TokenCommand::Generate => {
            print_token(&BootstrapToken::generate()?)?;
        }
        TokenCommand::Create(args) => create(args)?,
        TokenCommand::Manifests(args) => {
            let dirs = args.tree.dirs();
            let _lock = lock_tree(&dirs, &args.lock)?;
            let written = write_manifests(&dirs, &manifests_dir(args), OffsetDateTime::now_utc())?;
            print_manifests(&written, false)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A token from the command line, refused without quoting it.
pub fn parse_token(text: &str, flag: &str) -> Result<BootstrapToken> {
    text.parse()
        .map_err(|e: anyhow::Error| UsageError(format!("{flag}: {e}")).into())
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
    let dir = manifests_dir(&args.manifests);
    let record = token_record(args, now)?;
    let _lock = lock_tree(&dirs, &args.manifests.lock)?;
    let admin = read_admin(&dirs)?;
    let join = args
        .print_join_command
        .then(|| join_command(&admin, &record.token))
        .transpose()?;
    let secret = FileWrite {
        root: dir.clone(),
        rel: format!("{}.yaml", record.secret_name()).into(),
        content: record.secret_manifest()?.into_bytes(),
        mode: store::SECRET_MODE,
    };
    if store::read_optional(&secret.root, &secret.rel)?.is_some() {
        bail!(
            "{} exists: a token with id {:?} was created before",
            secret.path().display(),
            record.token.id()
        );
    }
    store::create_all(std::slice::from_ref(&secret))?;
    let mut written = vec![secret.path()];
    written.extend(write_manifests(&dirs, &dir, now)?);
    print_manifests(&written, true)?;
    match join {
        Some(join) => print_join_commands(&join),
        None => print_token(&record.token),
    }
}

fn token_record(args: &TokenCreateArgs, now: OffsetDateTime) -> Result<TokenRecord> {
    let token = match &args.token {
        Some(text) => parse_token(text.expose(), "TOKEN")?,
        None => BootstrapToken::generate()?,
    };
    let mut groups = args.groups.clone();
    if groups.is_empty() && args.usages.contains(&Usage::Authentication) {
        groups.push(DEFAULT_GROUP.parse().map_err(anyhow::Error::msg)?);
    }
    TokenRecord::new(
        token,
        args.ttl.unwrap_or(DEFAULT_TTL),
        now,
        args.usages.clone(),
        groups,
        args.description.clone(),
    )
}

/// The join commands for `token`: admin.conf's server and its CA's pin.
fn join_command(admin: &Kubeconfig, token: &BootstrapToken) -> Result<JoinCommand> {
    let ca_pem = admin.client_credentials()?.ca_pem;
    let pin = CaPin::of_bundle(&ca_pem)?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("admin.conf holds no CA certificate"))?;
    Ok(JoinCommand {
        endpoint: admin
            .server()?
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string(),
        token: token.clone(),
        pin,
    })
}
