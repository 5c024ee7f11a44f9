//! `kubepki certs rotate-ca <ca|front-proxy-ca|etcd-ca|sa> <trust|sign|finish|status>` and
//! `certs rotate-ca status`: the arguments into a rotation request, the tree lock (not for
//! `status` or `--dry-run`), the engine, the report.

use super::{Configured, configured_tree, lock_existing_tree, warn_open_secrets};
use crate::cli::RotateArgs;
use crate::config::InitConfig;
use crate::engine::flags::trust_flags;
use crate::engine::rotate::restarts::restarts;
use crate::engine::rotate::{RotateRequest, Stage, Standing, rotate, status};
use crate::profile::{Profile, by_name, rotatable_rows};
use crate::report::{Progress, capped, print_rotation, print_rotation_status};
use crate::spec::{DEFAULT_CA_VALIDITY, DEFAULT_CERT_VALIDITY, validity};
use crate::tree::{TreeDirs, generations, reader};
use crate::usage::UsageError;
use anyhow::{Result, anyhow};
use std::process::ExitCode;
use time::OffsetDateTime;

/// What the command line asks.
enum Asked {
    /// Where the rotations of these rows stand.
    Status(Vec<&'static Profile>),
    /// A stage of one row's rotation.
    Stage(&'static Profile, Stage),
}

/// Runs `certs rotate-ca`.
pub fn run(args: &RotateArgs) -> Result<ExitCode> {
    let Configured { file, dirs, .. } = configured_tree(args.config.as_deref(), &args.tree)?;
    match asked(args, &file)? {
        Asked::Status(rows) => show_status(&dirs, &rows, args),
        Asked::Stage(row, stage) => run_stage(&dirs, &file, row, stage, args),
    }
}

/// The rows and stage the arguments name; misuse clap cannot catch is a usage error.
fn asked(args: &RotateArgs, file: &InitConfig) -> Result<Asked> {
    let usage = |message: String| -> anyhow::Error { UsageError(message).into() };
    let stage_only = |flag: &str, stage: &str| {
        usage(format!(
            "certs rotate-ca: {flag} goes with the {stage} stage"
        ))
    };
    let asked = match (args.target.as_str(), args.stage.as_deref()) {
        ("status", None) => Asked::Status(
            rotatable_rows()
                .filter(|row| !(file.external_etcd() && row.needs_local_etcd()))
                .collect(),
        ),
        ("status", Some(_)) => {
            return Err(usage(
                "certs rotate-ca status takes no stage (to see one: certs rotate-ca <CA> status)"
                    .into(),
            ));
        }
        (_, None) => {
            return Err(usage(format!(
                "certs rotate-ca {}: which stage? trust, sign, finish or status",
                args.target
            )));
        }
        (name, Some(stage)) => {
            let row = by_name(name).ok_or_else(|| anyhow!("unknown CA {name:?}"))?;
            if file.external_etcd() && row.needs_local_etcd() {
                return Err(usage(format!(
                    "--config: etcd.external is set: there is no {name} in this tree to rotate"
                )));
            }
            match Stage::by_name(stage) {
                Some(stage) => Asked::Stage(row, stage),
                None => Asked::Status(vec![row]),
            }
        }
    };
    let stage = match &asked {
        Asked::Stage(_, stage) => Some(*stage),
        Asked::Status(_) => None,
    };
    if args.from.is_some() && stage != Some(Stage::Trust) {
        return Err(stage_only("--from DIR", "trust"));
    }
    if args.ca_validity.is_some() && stage != Some(Stage::Trust) {
        return Err(stage_only("--ca-validity", "trust"));
    }
    if args.cert_validity.is_some() && !matches!(stage, Some(Stage::Trust | Stage::Sign)) {
        return Err(stage_only("--cert-validity", "trust or sign"));
    }
    if args.force && !matches!(stage, Some(Stage::Trust | Stage::Finish)) {
        return Err(stage_only("--force", "trust or finish"));
    }
    if args.backup_dir.is_some() && stage != Some(Stage::Sign) {
        return Err(stage_only("--backup-dir", "sign"));
    }
    if args.encryption_algorithm.is_some() && !matches!(stage, Some(Stage::Trust | Stage::Sign)) {
        return Err(stage_only("--encryption-algorithm", "trust or sign"));
    }
    if args.dry_run && stage.is_none() {
        return Err(usage(
            "certs rotate-ca: --dry-run goes with trust, sign or finish".into(),
        ));
    }
    Ok(asked)
}

/// Prints where the rotations of `rows` stand; a row that cannot be told fails the command
/// (exit 1, its problem on stderr) after the whole report is printed.
fn show_status(dirs: &TreeDirs, rows: &[&'static Profile], args: &RotateArgs) -> Result<ExitCode> {
    reader::require_tree(dirs)?;
    let found = status(dirs, rows);
    print_rotation_status(dirs, &found, args.output.into())?;
    let problem = found.into_iter().find_map(|(_, standing)| match standing {
        Standing::Unknown(problem) => Some(problem),
        _ => None,
    });
    match problem {
        Some(problem) => Err(problem.into()),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn run_stage(
    dirs: &TreeDirs,
    file: &InitConfig,
    row: &'static Profile,
    stage: Stage,
    args: &RotateArgs,
) -> Result<ExitCode> {
    let now = OffsetDateTime::now_utc();
    let ca_validity = args
        .ca_validity
        .or(file.cluster.ca_certificate_validity_period);
    let cert_validity = args
        .cert_validity
        .or(file.cluster.certificate_validity_period);
    let algorithm = match stage {
        Stage::Trust => args
            .encryption_algorithm
            .or(file.cluster.encryption_algorithm),
        _ => args.encryption_algorithm,
    };
    let request = RotateRequest {
        row,
        stage,
        from: args.from.clone(),
        algorithm,
        ca_validity: validity(ca_validity, DEFAULT_CA_VALIDITY, "--ca-validity")?,
        cert_validity: validity(cert_validity, DEFAULT_CERT_VALIDITY, "--cert-validity")?,
        backup_dir: args
            .backup_dir
            .clone()
            .unwrap_or_else(|| generations::default_dir(dirs)),
        now,
        dry_run: args.dry_run,
        force: args.force,
    };
    let _lock = match args.dry_run {
        true => {
            reader::require_tree(dirs)?;
            None
        }
        false => Some(lock_existing_tree(dirs, &args.lock)?),
    };
    let progress = Progress::new("rotate-ca", "keys");
    let rotation = rotate(dirs, &request, &|done, total| progress.update(done, total))?;
    progress.finish();
    capped("rotate-ca", &rotation.capped);
    if !args.dry_run {
        warn_open_secrets(dirs);
    }
    let flags = trust_flags(row, dirs)?;
    print_rotation(
        dirs,
        &rotation,
        &restarts(row, stage),
        &flags,
        args.output.into(),
    )?;
    Ok(ExitCode::SUCCESS)
}
