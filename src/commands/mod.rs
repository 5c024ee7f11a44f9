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
mod pods;
mod rotate;
mod token;

use crate::cli::{Cli, ClusterArgs, Command, LockArgs, TreeArgs};
use crate::config::InitConfig;
use crate::engine::derived::derived_settings;
use crate::engine::drift::Wanted;
use crate::pki::keys::Algorithm;
use crate::report::{deprecated, note, open_secret, print_document, recovered, set_quiet};
use crate::spec::{ClusterInput, ClusterSpec, Contradiction};
use crate::tree::TreeDirs;
use crate::tree::lock::{DEFAULT_LOCK_TIMEOUT, TreeLock};
use crate::tree::reader::{self, open_secrets};
use crate::tree::recovery::{recover, recover_kubelet_dir};
use crate::usage::UsageError;
use anyhow::{Result, bail};
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

/// The spec and the tree from `--config`, the tree's recorded configuration, the tree flags
/// and the cluster flags: flags over the file over the record over defaults over host
/// facts; and what the files say beyond them. A flag that changes the node's identity the
/// tree records is an error; another that contradicts the record is named.
fn resolve_cluster(
    config: Option<&Path>,
    tree: &TreeArgs,
    cluster: &ClusterArgs,
) -> Result<(ClusterSpec, TreeDirs, InitConfig)> {
    let configured = configured_tree(config, tree)?;
    let flags = cluster.input();
    let input = configured.file.merge_flags(&flags);
    let spec = ClusterSpec::resolve(&input, OffsetDateTime::now_utc())?;
    configured.against_record(&flags, false)?;
    let file = configured.file;
    Ok((file.complete(spec), configured.dirs, file))
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

/// What configures a run before its flags: `--config` over the tree's recorded
/// configuration, and the tree.
struct Configured {
    /// `--config` (if given) over the record (if any).
    file: InitConfig,
    /// What `--config` alone sets, as flags would.
    given: ClusterInput,
    /// Where the tree's settings come from (its recorded configuration, else its files)
    /// and what they set, as flags would.
    recorded: Option<(String, ClusterInput)>,
    /// The tree: `--cert-dir`, else `certificatesDir` (of the file, else of the record),
    /// else the default. Printed commands name the file too.
    dirs: TreeDirs,
}

impl Configured {
    /// Checks `flags` (and `--config`) against the tree's settings: one that contradicts
    /// them is named in one line on stderr; one that changes the node's name or address is
    /// an error unless `identity_may_change` (the command's purpose is to change it).
    fn against_record(&self, flags: &ClusterInput, identity_may_change: bool) -> Result<()> {
        if let Some((source, recorded)) = &self.recorded {
            for contradiction in flags.over(&self.given).contradictions(recorded) {
                let Contradiction {
                    flag,
                    given,
                    recorded,
                } = &contradiction;
                if contradiction.is_identity() && !identity_may_change {
                    bail!(
                        "{flag} {given}: this tree was made for {recorded} ({source}); \
                         `kubepki certs renew --reconcile {flag} {given}` moves it"
                    );
                }
                note(
                    "config",
                    &format!("{flag} {given} overrides {recorded} ({source})"),
                );
            }
        }
        Ok(())
    }
}

/// The configuration file (`--config`), or none, over the tree's recorded configuration,
/// else over what the tree's own files tell (said in one line, with the command that
/// records them), and the tree: `--cert-dir`, else `certificatesDir`, else the default.
fn configured_tree(config: Option<&Path>, tree: &TreeArgs) -> Result<Configured> {
    let given = match config {
        Some(path) => InitConfig::load(path)?,
        None => InitConfig::default(),
    };
    let given_input = given.merge_flags(&ClusterInput::default());
    let record = TreeDirs::new(None, tree.kubeconfig_dir.clone()).record_file();
    let (file, mut recorded) = match reader::read_record(&record)? {
        Some(recorded) => {
            let input = recorded.merge_flags(&ClusterInput::default());
            let source = format!("recorded in {}", record.display());
            (given.over(recorded), Some((source, input)))
        }
        None => (given, None),
    };
    let dirs = TreeDirs::new(
        file.cert_dir(tree.cert_dir.as_deref()),
        tree.kubeconfig_dir.clone(),
    )
    .with_config(config);
    let file = match (&recorded, derived_settings(&dirs)) {
        (None, Some(derived)) => {
            let input = derived.merge_flags(&ClusterInput::default());
            note("config", &derived_line(&record, &input, &dirs));
            recorded = Some(("found in the tree's files".into(), input));
            file.over(derived)
        }
        _ => file,
    };
    for line in &file.notes {
        note("config", line);
    }
    Ok(Configured {
        file,
        given: given_input,
        recorded,
        dirs,
    })
}

/// The line that says a tree's settings were read from its files, and how to record them.
fn derived_line(record: &Path, derived: &ClusterInput, dirs: &TreeDirs) -> String {
    let mut told = Vec::new();
    if let Some(name) = &derived.node_name {
        told.push(format!("node {name}"));
    }
    if let Some(address) = &derived.advertise_address {
        told.push(format!("address {address}"));
    }
    if let Some(endpoint) = &derived.control_plane_endpoint {
        told.push(format!("endpoint {endpoint}"));
    }
    format!(
        "{} does not exist: the tree's settings are read from its files ({}); `{}` records them",
        record.display(),
        told.join(", "),
        dirs.command("init")
    )
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
    /// `kubernetesVersion`, if the file or the record says it.
    kubernetes_version: Option<String>,
    /// The static pod settings of the file or the record, which a new record keeps.
    cluster: crate::config::ClusterConfiguration,
}

impl Configuration {
    /// Reads `config` and the tree's recorded configuration, and merges `flags` over them
    /// (see `Configured::against_record`). Without any of them, `required` resolves kubepki's
    /// defaults and the host's facts, as `init` would; otherwise there is none.
    fn load(
        config: Option<&Path>,
        flags: &ClusterInput,
        tree: &TreeArgs,
        (now, required, identity_may_change): (OffsetDateTime, bool, bool),
    ) -> Result<Configuration> {
        let configured = configured_tree(config, tree)?;
        let merged = configured.file.merge_flags(flags);
        let given =
            required || config.is_some() || flags.is_given() || configured.recorded.is_some();
        let spec = match given {
            true => Some(
                configured
                    .file
                    .complete(ClusterSpec::resolve(&merged, now)?),
            ),
            false => None,
        };
        configured.against_record(flags, identity_may_change)?;
        Ok(Configuration {
            spec,
            algorithm: merged.algorithm,
            dirs: configured.dirs,
            kubernetes_version: configured.file.cluster.kubernetes_version.clone(),
            cluster: configured.file.cluster,
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
