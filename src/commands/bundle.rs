//! `kubepki certs bundle export|import`: the shared CAs and keys carried to other
//! control-plane hosts in kubeadm's encrypted `kubeadm-certs` format.

use super::{Configured, configured_tree, lock_tree, out_file, warn_open_secrets};
use crate::cli::{BundleCommand, BundleExportArgs, BundleImportArgs, TreeArgs};
use crate::engine::bundle::{export, import, open_bundle, plan_import};
use crate::report::{bundle_absent, print_bundle_written, print_document, print_import};
use crate::tree::{TreeDirs, generations, reader, store};
use anyhow::{Result, bail};
use std::path::Path;
use std::process::ExitCode;
use time::OffsetDateTime;

/// Runs a `certs bundle` command.
pub fn run(command: &BundleCommand) -> Result<ExitCode> {
    match command {
        BundleCommand::Export(args) => export_bundle(args),
        BundleCommand::Import(args) => import_bundle(args),
    }
}

/// The tree (`--cert-dir` over `certificatesDir` of the file or of the tree's recorded
/// configuration) and whether they say the etcd is external.
fn tree_of(config: Option<&Path>, tree: &TreeArgs) -> Result<(TreeDirs, bool)> {
    let Configured { file, dirs, .. } = configured_tree(config, tree)?;
    Ok((dirs, file.external_etcd()))
}

fn export_bundle(args: &BundleExportArgs) -> Result<ExitCode> {
    let out = out_file(
        args.out.as_deref(),
        args.deprecated_output.as_deref(),
        args.force,
    )?;
    let key = args.certificate_key.key()?;
    let (dirs, external_etcd) = tree_of(args.config.as_deref(), &args.tree)?;
    if let Some(path) = &out {
        dirs.refuse_output("--out", path)?;
        if !args.force && path.symlink_metadata().is_ok() {
            bail!("{} exists; pass --force to replace it", path.display());
        }
    }
    let export = export(&dirs, external_etcd, &key)?;
    bundle_absent(&export);
    let yaml = match args.secret {
        true => export.bundle.manifest_yaml()?,
        false => export.bundle.secret_yaml()?,
    };
    match &out {
        Some(path) => {
            store::write_outside(
                &dirs,
                "--out",
                path,
                yaml.as_bytes(),
                store::SECRET_MODE,
                args.force,
            )?;
            print_bundle_written(&export, path, args.secret)?;
        }
        None => print_document(&yaml)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens and checks the bundle before the tree is locked (so that a wrong key or a damaged
/// file creates nothing, not even a directory), then plans and writes under the lock.
fn import_bundle(args: &BundleImportArgs) -> Result<ExitCode> {
    let key = args.certificate_key.key()?;
    let (dirs, external_etcd) = tree_of(args.config.as_deref(), &args.tree)?;
    let opened = open_bundle(&reader::read_bundle(&args.file)?, &key, external_etcd)?;
    let _lock = lock_tree(&dirs, &args.lock)?;
    let plan = plan_import(&dirs, opened)?;
    let generations_dir = args
        .backup_dir
        .clone()
        .unwrap_or_else(|| generations::default_dir(&dirs));
    let imported = import(
        plan,
        args.force,
        &dirs,
        &generations_dir,
        OffsetDateTime::now_utc(),
    )?;
    warn_open_secrets(&dirs);
    print_import(&imported, &dirs)?;
    Ok(ExitCode::SUCCESS)
}
