//! Dispatch: one `run` per command file. Commands turn arguments into plain inputs, call the
//! engine and hand the result to `report`; they parse and decide nothing themselves.

mod bundle;
mod certs;
mod config;
mod flags;
mod init;
mod join;
mod kubeconfig;
mod kubelet;
mod metrics;
mod rotate;
mod token;

use crate::cli::{Cli, ClusterArgs, Command, LockArgs, TreeArgs};
use crate::config::InitConfig;
use crate::engine::drift::Wanted;
use crate::pki::keys::Algorithm;
use crate::report::{deprecated, note, open_secret, print_document, recovered, set_quiet};
use crate::spec::{ClusterInput, ClusterSpec};
use crate::tree::TreeDirs;
use crate::tree::lock::{DEFAULT_LOCK_TIMEOUT, TreeLock};
use crate::tree::reader::{self, open_secrets};
use crate::tree::recovery::{recover, recover_kubelet_dir};
use crate::usage::UsageError;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use time::OffsetDateTime;

/// Runs the parsed command line; `Err` means exit status 1 with the error printed once.
pub fn run(cli: Cli) -> Result<ExitCode> {
    set_quiet(cli.quiet);
    match cli.command {
        Command::Init(args) => init::run(&args, cli.verbose),
        Command::Certs { command } => certs::run(&command),
        Command::Kubeconfig { command } => kubeconfig::run(&command),
        Command::Token { command } => token::run(&command),
        Command::Join(args) => join::run(&args, cli.verbose),
        Command::Completion { shell } => completion(shell),
        Command::Flags(args) => flags::run(&args),
        Command::Kubelet { command } => kubelet::run(&command),
        Command::Config { command } => config::run(&command),
    }
}

/// The spec and the tree from `--config`, the tree flags and the cluster flags: flags over
/// the file over defaults over host facts; and what the file says beyond them.
fn resolve_cluster(
    config: Option<&Path>,
    tree: &TreeArgs,
    cluster: &ClusterArgs,
) -> Result<(ClusterSpec, TreeDirs, InitConfig)> {
    let (file, dirs) = configured_tree(config, tree)?;
    let input = file.merge_flags(&cluster.input());
    let spec = file.complete(ClusterSpec::resolve(&input, OffsetDateTime::now_utc())?);
    Ok((spec, dirs, file))
}

/// The file a command writes: `--out FILE`, or the deprecated `--output FILE` (`-o` too
/// where it was a file), said to be so. A format name given to the old spelling is refused:
/// `-o json` never makes a file named `json`. `--force` needs a file.
fn out_file(
    out: Option<&Path>,
    deprecated_output: Option<&Path>,
    force: bool,
) -> Result<Option<PathBuf>> {
    if let Some(old) = deprecated_output {
        if ["text", "json", "yaml"].contains(&old.to_string_lossy().as_ref()) {
            return Err(UsageError(format!(
                "-o/--output {}: this command writes a file, named with --out FILE (-o is a \
                 format only where a command prints a report)",
                old.display()
            ))
            .into());
        }
        deprecated("--output FILE (-o FILE)", "--out FILE");
    }
    let file = out.or(deprecated_output).map(Path::to_path_buf);
    if force && file.is_none() {
        return Err(
            UsageError("--force replaces an --out FILE: name one with --out".into()).into(),
        );
    }
    Ok(file)
}

/// Prints the completion script for `shell`, generated from the command-line definition.
fn completion(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "kubepki", &mut script);
    print_document(&String::from_utf8_lossy(&script))?;
    Ok(ExitCode::SUCCESS)
}

/// Takes the tree's lock for a writing command, then finishes what a killed run left,
/// before the command reads anything.
fn lock_tree(dirs: &TreeDirs, lock: &LockArgs) -> Result<TreeLock> {
    let timeout = lock.lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT);
    let held = TreeLock::acquire(
        &[&dirs.cert_dir, &dirs.kubeconfig_dir],
        timeout,
        &|waiting| note("lock", waiting),
    )?;
    for path in recover(dirs)? {
        recovered(&path);
    }
    Ok(held)
}

/// `lock_tree` for a command that works on an existing tree (renew, token): a tree that is
/// not there is an error naming it, and nothing (no directory) is created for it. The CA is
/// looked for under the lock, once a run that may be creating it is done.
fn lock_existing_tree(dirs: &TreeDirs, lock: &LockArgs) -> Result<TreeLock> {
    reader::require_dirs(dirs)?;
    let held = lock_tree(dirs, lock)?;
    reader::require_tree(dirs)?;
    Ok(held)
}

/// Locks the kubelet's certificate directory for a command that may write there, and
/// finishes what a killed run left in it; `None` when it is not there, unless `required`,
/// when that is an error naming it (no directory is created outside the tree).
fn lock_kubelet_dir(dirs: &TreeDirs, lock: &LockArgs, required: bool) -> Result<Option<TreeLock>> {
    let dir = &dirs.kubelet_dir;
    if !dir.is_dir() {
        return match required {
            true => Err(anyhow::anyhow!(
                "{}: no such directory (the kubelet's certificate directory; create it, or name \
                 another with --out-dir)",
                dir.display()
            )),
            false => Ok(None),
        };
    }
    let timeout = lock.lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT);
    let held = TreeLock::acquire(&[dir], timeout, &|waiting| note("lock", waiting))?;
    for path in recover_kubelet_dir(dirs)? {
        recovered(&path);
    }
    Ok(Some(held))
}

/// The configuration file (`--config`), or none, and the tree: `--cert-dir`, else the file's
/// `certificatesDir`, else the default. Printed commands name the file too.
fn configured_tree(config: Option<&Path>, tree: &TreeArgs) -> Result<(InitConfig, TreeDirs)> {
    let file = match config {
        Some(path) => InitConfig::load(path)?,
        None => InitConfig::default(),
    };
    for line in &file.notes {
        note("config", line);
    }
    let dirs = TreeDirs::new(
        file.cert_dir(tree.cert_dir.as_deref()),
        tree.kubeconfig_dir.clone(),
    )
    .with_config(config);
    Ok((file, dirs))
}

/// Warns about every file of the tree that holds a private key and is open to group or others.
fn warn_open_secrets(dirs: &TreeDirs) {
    for (path, mode) in open_secrets(dirs) {
        open_secret(&path, mode);
    }
}

/// The configuration a day-2 command judges or reconciles a tree against: `--config` and
/// init's flags, resolved as `init` resolves them (flags over the file over defaults over
/// host facts), and the tree it names.
struct Configuration {
    /// The resolved facts; `None` when neither a file nor a flag was given and none is
    /// required.
    spec: Option<ClusterSpec>,
    /// The key algorithm given explicitly (flag or file), if any.
    algorithm: Option<Algorithm>,
    /// The tree (`certificatesDir` counts as `--cert-dir`).
    dirs: TreeDirs,
}

impl Configuration {
    /// Reads `config` and merges `flags` over it. Without either, `required` resolves
    /// kubepki's defaults and the host's facts, as `init` would; otherwise there is none.
    fn load(
        config: Option<&Path>,
        flags: &ClusterInput,
        tree: &TreeArgs,
        now: OffsetDateTime,
        required: bool,
    ) -> Result<Configuration> {
        let (file, dirs) = configured_tree(config, tree)?;
        let merged = file.merge_flags(flags);
        let spec = match required || config.is_some() || flags.is_given() {
            true => Some(file.complete(ClusterSpec::resolve(&merged, now)?)),
            false => None,
        };
        Ok(Configuration {
            spec,
            algorithm: merged.algorithm,
            dirs,
        })
    }

    /// What a tree is judged against: this configuration, or kubeadm's defaults.
    fn wanted(&self, now: OffsetDateTime) -> Wanted<'_> {
        match &self.spec {
            Some(spec) => Wanted::of(spec, self.algorithm),
            None => Wanted::defaults(now),
        }
    }
}
