//! `kubepki kubelet config|serving-cert|repair`.

use super::{lock_existing_tree, lock_kubelet_dir, resolve_cluster};
use crate::cli::{KubeletCommand, KubeletConfigArgs, RepairArgs, ServingCertArgs};
use crate::config::publish::hardened_kubelet_configuration;
use crate::engine::flags::flags_for;
use crate::engine::renew::Backups;
use crate::engine::repair::{RepairRequest, Repaired, repair};
use crate::engine::serving::{ServingRequest, write_serving_cert};
use crate::profile::{Component, When};
use crate::report::{capped, print_document, print_repair, print_serving};
use crate::spec::ClusterSpec;
use crate::spec::{DEFAULT_CERT_VALIDITY, validity};
use crate::tree::{TreeDirs, generations, store};
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
    refuse_existing_output(args.output.as_deref(), args.force)?;
    let (spec, dirs, _) = resolve_cluster(args.config.as_deref(), &args.tree, &args.cluster)?;
    let ca_file = kubelet_client_ca(&spec, &dirs)?;
    let yaml = hardened_kubelet_configuration(&spec, &ca_file, args.server_tls_bootstrap)?;
    match &args.output {
        Some(path) => store::write_outside(path, yaml.as_bytes(), store::PUBLIC_MODE, args.force)?,
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

fn repair_conf(args: &RepairArgs) -> Result<ExitCode> {
    refuse_existing_output(args.output.as_deref(), args.force)?;
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
    if let Repaired::Issued {
        yaml,
        capped: ended_early,
        ..
    } = &repaired
    {
        capped("kubelet", ended_early.as_slice());
        if let Some(path) = &args.output {
            store::write_outside(path, yaml, store::SECRET_MODE, args.force)?;
        }
    }
    print_repair(&repaired, args.output.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// Generations in `--backup-dir`, else `<kubeconfig-dir>/tmp`, the default number kept.
fn backups(dirs: &TreeDirs, dir: Option<&Path>) -> Backups {
    Backups {
        dir: dir.map_or_else(|| generations::default_dir(dirs), Path::to_path_buf),
        keep: generations::DEFAULT_KEEP,
    }
}

/// An existing `--output` file is replaced only with `--force`.
fn refuse_existing_output(output: Option<&Path>, force: bool) -> Result<()> {
    match output {
        Some(path) if !force && path.symlink_metadata().is_ok() => {
            bail!("{} exists; pass --force to replace it", path.display())
        }
        _ => Ok(()),
    }
}
