//! `kubepki kubelet config|serving-cert|repair`.

use super::{lock_existing_tree, lock_kubelet_dir, out_file, resolve_cluster};
use crate::cli::{KubeletCommand, KubeletConfigArgs, RepairArgs, ServingCertArgs};
use crate::config::publish::hardened_kubelet_configuration;
use crate::engine::csr::write_serving_csr;
use crate::engine::flags::flags_for;
use crate::engine::renew::Backups;
use crate::engine::repair::{RepairRequest, Repaired, repair, replace_kubelet_conf};
use crate::engine::serving::{ServingRequest, write_serving_cert};
use crate::pki::keys::Algorithm;
use crate::profile::{Component, Role, When, by_role};
use crate::report::{capped, print_document, print_repair, print_serving, print_serving_csr};
use crate::spec::ClusterSpec;
use crate::spec::{DEFAULT_CERT_VALIDITY, validity};
use crate::tree::{TreeDirs, generations, store};
use crate::usage::UsageError;
use anyhow::{Result, anyhow, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use time::OffsetDateTime;

/// Runs a `kubelet` command.
pub fn run(command: &KubeletCommand) -> Result<ExitCode> {
    match command {
        KubeletCommand::Config(args) => config(args),
        KubeletCommand::ServingCert(args) => serving_cert(args),
        KubeletCommand::Repair(args) => repair_conf(args),
    }
}

fn config(args: &KubeletConfigArgs) -> Result<ExitCode> {
    let out = out_file(
        args.out.as_deref(),
        args.deprecated_output.as_deref(),
        args.force,
    )?;
    refuse_existing_output(out.as_deref(), args.force)?;
    let (spec, dirs, _) = resolve_cluster(args.config.as_deref(), &args.tree, &args.cluster)?;
    let ca_file = kubelet_client_ca(&spec, &dirs)?;
    let yaml = hardened_kubelet_configuration(&spec, &ca_file, args.server_tls_bootstrap)?;
    match &out {
        Some(path) => store::write_outside(
            &dirs,
            "--out",
            path,
            yaml.as_bytes(),
            store::PUBLIC_MODE,
            args.force,
        )?,
        None => print_document(&yaml)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The file the kubelet's `clientCAFile` names: the table's `client-ca-file` of the kubelet,
/// so during a rotation of the cluster CA the bundle of old and new, as every reader.
fn kubelet_client_ca(spec: &ClusterSpec, dirs: &TreeDirs) -> Result<PathBuf> {
    let flags = flags_for(Component::Kubelet, spec, dirs, &[When::KubeletConfig])?;
    flags
        .flags
        .into_iter()
        .find(|f| f.flag == "--client-ca-file")
        .map(|f| PathBuf::from(f.value))
        .ok_or_else(|| anyhow!("internal error: the kubelet has no client-ca-file row"))
}

fn serving_cert(args: &ServingCertArgs) -> Result<ExitCode> {
    let dirs = args
        .tree
        .dirs()
        .with_kubelet_dir("--out-dir", args.out_dir.as_deref());
    let now = OffsetDateTime::now_utc();
    if args.csr_only {
        return serving_csr(args, &dirs, now);
    }
    let request = ServingRequest {
        node: args.node_name.to_string(),
        ips: args.node_ip.clone(),
        validity: validity(args.cert_validity, DEFAULT_CERT_VALIDITY, "--cert-validity")?,
        algorithm: args.encryption_algorithm,
        backups: backups(&dirs, args.backup_dir.as_deref()),
        now,
    };
    let _lock = lock_existing_tree(&dirs, &args.lock)?;
    let _kubelet_lock = lock_kubelet_dir(&dirs, &args.lock, true)?;
    let served = write_serving_cert(&dirs, &request)?;
    capped("kubelet", served.capped.as_slice());
    print_serving(&served)?;
    Ok(ExitCode::SUCCESS)
}

/// `kubelet repair`: a kubelet.conf made anew holds a new private key, so it goes only
/// where `--out` says (`-`: stdout); the tree's own kubelet.conf named there is replaced as
/// the tree's files are, kept first as a generation.
fn repair_conf(args: &RepairArgs) -> Result<ExitCode> {
    let out = out_file(
        args.out.as_deref(),
        args.deprecated_output.as_deref(),
        args.force,
    )?;
    let to_stdout = out.as_deref() == Some(Path::new("-"));
    let file = out.filter(|path| path != Path::new("-"));
    refuse_existing_output(file.as_deref(), args.force)?;
    let dirs = args
        .tree
        .dirs()
        .with_kubelet_dir("--kubelet-cert-dir", args.kubelet_cert_dir.as_deref());
    let now = OffsetDateTime::now_utc();
    let request = RepairRequest {
        node: args.node_name.to_string(),
        server: args.server.clone(),
        validity: DEFAULT_CERT_VALIDITY,
        backups: backups(&dirs, args.backup_dir.as_deref()),
        now,
    };
    let _lock = lock_existing_tree(&dirs, &args.lock)?;
    let repaired = repair(&dirs, &request)?;
    let mut kept = None;
    if let Repaired::Issued {
        yaml,
        capped: ended_early,
        why,
    } = &repaired
    {
        match &file {
            Some(path) if is_trees_kubelet_conf(&dirs, path) => {
                kept = replace_kubelet_conf(&dirs, yaml.clone(), &request)?;
            }
            Some(path) => {
                store::write_outside(&dirs, "--out", path, yaml, store::SECRET_MODE, args.force)?
            }
            None if to_stdout => {}
            None => bail!(
                "kubelet repair: {why}, so the kubelet.conf for {} needs a new certificate and \
                 private key; name where it goes with --out FILE (mode 0600), or --out - to \
                 print it",
                args.node_name
            ),
        }
        capped("kubelet", ended_early.as_slice());
    }
    print_repair(&repaired, file.as_deref(), kept.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// Whether `path` is the tree's own kubelet.conf (through any symlinked directory).
fn is_trees_kubelet_conf(dirs: &TreeDirs, path: &Path) -> bool {
    let row = by_role(Role::Kubelet);
    let parent = match path.parent() {
        Some(dir) if dir.as_os_str().is_empty() => Path::new("."),
        Some(dir) => dir,
        None => return false,
    };
    let same_dir = match (parent.canonicalize(), dirs.kubeconfig_dir.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    same_dir && path.file_name() == Some(std::ffi::OsStr::new(row.file))
}

/// `kubelet serving-cert --csr-only`, on the node: a key and a CSR in the kubelet's
/// directory, under its lock; no tree, no CA.
fn serving_csr(args: &ServingCertArgs, dirs: &TreeDirs, now: OffsetDateTime) -> Result<ExitCode> {
    if args.cert_validity.is_some() || args.backup_dir.is_some() {
        return Err(UsageError(
            "--csr-only writes a key and a CSR: --cert-validity goes to certs sign-csr, and \
             nothing is replaced, so there is no --backup-dir"
                .into(),
        )
        .into());
    }
    let _kubelet_lock = lock_kubelet_dir(dirs, &args.lock, true)?;
    let algorithm = args.encryption_algorithm.unwrap_or(Algorithm::Rsa2048);
    let written = write_serving_csr(
        dirs,
        &args.node_name.to_string(),
        &args.node_ip,
        algorithm,
        now,
    )?;
    print_serving_csr(&written)?;
    Ok(ExitCode::SUCCESS)
}

/// Generations in `--backup-dir`, else `<kubeconfig-dir>/tmp`, the default number kept.
fn backups(dirs: &TreeDirs, dir: Option<&Path>) -> Backups {
    Backups {
        dir: dir.map_or_else(|| generations::default_dir(dirs), Path::to_path_buf),
        keep: generations::DEFAULT_KEEP,
    }
}

/// An existing `--out` file is replaced only with `--force`.
fn refuse_existing_output(output: Option<&Path>, force: bool) -> Result<()> {
    match output {
        Some(path) if !force && path.symlink_metadata().is_ok() => {
            bail!("{} exists; pass --force to replace it", path.display())
        }
        _ => Ok(()),
    }
}
