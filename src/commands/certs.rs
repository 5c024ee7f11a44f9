//! `kubepki certs check-expiration|renew|ca-cert-hash|certificate-key|rotate-ca|bundle|audit|generations|rollback`.

use super::metrics::{self, RunResult};
use super::pods;
use super::{
    Configuration, Configured, configured_tree, lock_existing_tree, lock_kubelet_dir,
    resolve_cluster, warn_open_secrets,
};
use crate::cli::{
    AuditArgs, CertsCommand, CheckExpirationArgs, GenerateCsrArgs, GenerationsArgs, RenewArgs,
    RollbackArgs, SignCsrArgs,
};
use crate::config::InitConfig;
use crate::engine::audit::audit;
use crate::engine::bootstrap::record_write;
use crate::engine::csr::{SignRequest, generate_csrs, sign_request};
use crate::engine::expiry::ExpirationInfo;
use crate::engine::reconcile::{self, ReconcileRequest, Verdict};
use crate::engine::renew::{Backups, Outcome, RenewRequest, renew};
use crate::engine::rollback::{RollbackRequest, remove_generation, rollback};
use crate::pki::pin::CaPin;
use crate::pki::seal::CertificateKey;
use crate::profile::{Profile, Role, by_name, by_role, renewable_rows};
use crate::report::{
    Format, Progress, capped, due_notice, missing_notice, print_audit, print_csrs_written,
    print_expiration, print_generations, print_line, print_reconcile, print_removed_generation,
    print_renewal, print_rollback, print_signed,
};
use crate::spec::ClusterInput;
use crate::spec::{DEFAULT_CERT_VALIDITY, validity};
use crate::tree::{TreeDirs, generations, reader, store};
use crate::usage::UsageError;
use anyhow::{Context, Result, anyhow};
use std::path::Path;
use std::process::ExitCode;
use time::OffsetDateTime;

/// Exit status of `check-expiration --fail-within` when something is due, of `audit` when
/// it found something, and of `renew --reconcile --plan` when changes are pending.
const DUE: u8 = 3;

/// Exit status of `certs renew --detailed-exit-code` when something was renewed.
const RENEWED: u8 = 4;

/// Runs a `certs` command.
pub fn run(command: &CertsCommand) -> Result<ExitCode> {
    match command {
        CertsCommand::CheckExpiration(args) => check_expiration(args),
        CertsCommand::Renew(args) => renew_certs(args),
        CertsCommand::CaCertHash { tree } => ca_cert_hash(&tree.dirs()),
        CertsCommand::CertificateKey => {
            print_line(&CertificateKey::generate()?.to_hex())?;
            Ok(ExitCode::SUCCESS)
        }
        CertsCommand::RotateCa(args) => super::rotate::run(args),
        CertsCommand::Bundle { command } => super::bundle::run(command),
        CertsCommand::Audit(args) => audit_tree(args),
        CertsCommand::Generations(args) => list_generations(args),
        CertsCommand::Rollback(args) => roll_back(args),
        CertsCommand::GenerateCsr(args) => generate_csr(args),
        CertsCommand::SignCsr(args) => sign_csr(args),
    }
}

/// `certs sign-csr`: the CSR signed by the CA of the row `--for` names, to `--out` or stdout.
fn sign_csr(args: &SignCsrArgs) -> Result<ExitCode> {
    let row = by_name(&args.for_name)
        .ok_or_else(|| anyhow!("internal error: no row {}", args.for_name))?;
    let csr =
        std::fs::read(&args.csr).with_context(|| format!("reading {}", args.csr.display()))?;
    let request = SignRequest {
        row,
        validity: validity(args.cert_validity, DEFAULT_CERT_VALIDITY, "--cert-validity")?,
        now: OffsetDateTime::now_utc(),
    };
    let dirs = args.tree.dirs();
    reader::require_tree(&dirs)?;
    let signed =
        sign_request(&dirs, &csr, &request).with_context(|| format!("{}", args.csr.display()))?;
    if let Some(path) = &args.out {
        store::write_outside(
            &dirs,
            "--out",
            path,
            &signed.cert_pem,
            store::PUBLIC_MODE,
            false,
        )?;
    }
    print_signed(&signed, args.out.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// `certs generate-csr`: the spec as `init` resolves it, then a key and a CSR per row.
fn generate_csr(args: &GenerateCsrArgs) -> Result<ExitCode> {
    let (spec, dirs, file) = resolve_cluster(args.config.as_deref(), &args.tree, &args.cluster)?;
    let written = generate_csrs(&dirs, &spec, spec.algorithm, file.external_etcd())?;
    print_csrs_written(&written)?;
    Ok(ExitCode::SUCCESS)
}

fn list_generations(args: &GenerationsArgs) -> Result<ExitCode> {
    let dirs = args.tree.dirs();
    reader::require_dirs(&dirs)?;
    let dir = backups(&dirs, args.generations.backup_dir.as_deref(), None).dir;
    if let Some(wanted) = &args.remove {
        let _lock = lock_existing_tree(&dirs, &args.lock)?;
        print_removed_generation(&remove_generation(&dir, wanted)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    print_generations(&generations::list(&dir)?, &dir, args.output.into())?;
    Ok(ExitCode::SUCCESS)
}

fn roll_back(args: &RollbackArgs) -> Result<ExitCode> {
    let dirs = args.tree.dirs();
    // A dry run takes no lock, so that it finishes nothing a killed run left: it writes nothing.
    let _lock = match args.dry_run {
        true => reader::require_tree(&dirs).map(|()| None)?,
        false => Some(lock_existing_tree(&dirs, &args.lock)?),
    };
    let request = RollbackRequest {
        backups: backups(&dirs, args.generations.backup_dir.as_deref(), args.keep),
        to: args.to.clone(),
        now: OffsetDateTime::now_utc(),
        force: args.force,
        dry_run: args.dry_run,
    };
    let lock_kubelet = |dirs: &TreeDirs| match args.dry_run {
        true => Ok(None),
        false => lock_kubelet_dir(dirs, &args.lock, false),
    };
    print_rollback(&rollback(&dirs, &request, &lock_kubelet)?)?;
    Ok(ExitCode::SUCCESS)
}

fn audit_tree(args: &AuditArgs) -> Result<ExitCode> {
    let now = OffsetDateTime::now_utc();
    let input = args.cluster.input();
    let configuration = Configuration::load(
        args.config.as_deref(),
        &input,
        &args.tree,
        (now, false, false),
    )?;
    let found = audit(&configuration.dirs, &configuration.wanted(now))?;
    print_audit(&found, &configuration.dirs, args.output.into())?;
    Ok(match found.at_least(args.fail_on.into()) {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::from(DUE),
    })
}

fn check_expiration(args: &CheckExpirationArgs) -> Result<ExitCode> {
    let Configured { dirs, .. } = configured_tree(args.config.as_deref(), &args.tree)?;
    let dirs = dirs.with_kubelet_dir("--kubelet-cert-dir", args.kubelet_cert_dir.as_deref());
    reader::require_tree(&dirs)?;
    let info_time = OffsetDateTime::now_utc();
    let info = ExpirationInfo::read(&dirs, info_time)?;
    warn_open_secrets(&dirs);
    if let Some(path) = &args.metrics_file {
        let run = RunResult {
            command: "check-expiration",
            at: info_time,
            success: true,
            renewed: None,
        };
        metrics::write(path, &dirs, run)?;
    }
    print_expiration(&info, args.output.into())?;
    let attention = args
        .fail_within
        .map(|window| (window, info.attention(window)));
    match attention {
        Some((window, attention)) if !attention.is_empty() => {
            due_notice(&attention, window);
            Ok(ExitCode::from(DUE))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// `certs renew`, then its metrics (`--metrics-file`), written whatever the outcome: the
/// dates as they are after the renewal, and whether it succeeded.
fn renew_certs(args: &RenewArgs) -> Result<ExitCode> {
    let at = OffsetDateTime::now_utc();
    // The tree the renewal resolved (from the flags, `--config` and the tree's record), as
    // soon as it is known: the metrics describe that tree, even when the renewal then fails.
    let mut renewed_tree = None;
    let result = match args.reconcile.reconcile {
        true => reconcile_certs(args, &mut renewed_tree),
        false => renew_due(args, &mut renewed_tree),
    };
    let Some(path) = &args.metrics_file else {
        return result.map(|(code, _)| code);
    };
    // No tree was resolved (`--config` or the record unreadable): the flags' and the
    // readable `--config`'s, for the run's result at least.
    let dirs = renewed_tree.unwrap_or_else(|| {
        let file = args
            .config
            .as_deref()
            .and_then(|config| InitConfig::load(config).ok());
        let cert_dir = file
            .unwrap_or_default()
            .cert_dir(args.tree.cert_dir.as_deref());
        TreeDirs::new(cert_dir, args.tree.kubeconfig_dir.clone())
            .with_kubelet_dir("--kubelet-cert-dir", args.kubelet_cert_dir.as_deref())
    });
    let run = RunResult {
        command: "renew",
        at,
        success: matches!(&result, Ok((code, _)) if *code != ExitCode::FAILURE),
        renewed: result.as_ref().ok().map(|(_, renewed)| *renewed),
    };
    let written = metrics::write(path, &dirs, run);
    match (result, written) {
        (Ok((code, _)), Ok(())) => Ok(code),
        (Ok(_), Err(error)) => Err(error),
        (Err(error), Ok(())) => Err(error),
        (Err(error), Err(also)) => Err(error.context(format!("(and the metrics: {also:#})"))),
    }
}

/// The exit status of a renewal that ended: 1 when something could not be renewed, else 4
/// when something was and `--detailed-exit-code` asks, else 0.
fn renewal_status(args: &RenewArgs, failed: bool, renewed: usize) -> ExitCode {
    match (failed, args.detailed_exit_code && renewed > 0) {
        (true, _) => ExitCode::FAILURE,
        (false, true) => ExitCode::from(RENEWED),
        (false, false) => ExitCode::SUCCESS,
    }
}

/// `certs renew` without `--reconcile`: what is due (or named) is re-issued as it is; the
/// exit status and how many were renewed. `resolved` gets the tree once it is known.
fn renew_due(args: &RenewArgs, resolved: &mut Option<TreeDirs>) -> Result<(ExitCode, usize)> {
    if args.reconcile.node.input().is_given() {
        return Err(UsageError(
            "init's flags (--node-name, --control-plane-endpoint, --apiserver-cert-extra-sans, \
             ...) work only with --reconcile: a plain renew keeps each certificate's subject \
             and SANs"
                .into(),
        )
        .into());
    }
    // A plain renew keeps each certificate as it is, as kubeadm's: only `--config` (not the
    // tree's recorded configuration) sets its validity and algorithm.
    let Configured { given, dirs, .. } = configured_tree(args.config.as_deref(), &args.tree)?;
    let dirs = dirs.with_kubelet_dir("--kubelet-cert-dir", args.kubelet_cert_dir.as_deref());
    *resolved = Some(dirs.clone());
    let now = OffsetDateTime::now_utc();
    let rows = renewable_rows(&args.names)
        .ok_or_else(|| anyhow!("unknown certificate in {:?}", args.names))?;
    let cert_validity = args.cert_validity.or(given.cert_validity);
    let validity = validity(cert_validity, DEFAULT_CERT_VALIDITY, "--cert-validity")?;
    let _lock = lock_existing_tree(&dirs, &args.lock)?;
    let _kubelet_lock = lock_kubelet_dir(&dirs, &args.lock, false)?;
    let request = RenewRequest {
        rows,
        due_within: args.expiring_within,
        algorithm: args.encryption_algorithm.or(given.algorithm),
        validity,
        backups: backups(&dirs, args.backup_dir.as_deref(), args.keep),
        now,
        all: args.names.iter().any(|name| name == "all"),
    };
    let progress = Progress::new("renew", "keys");
    let renewal = renew(&dirs, &request, &|done, total| progress.update(done, total))?;
    progress.finish();
    let all_broken = renewal
        .outcomes
        .iter()
        .all(|(_, o)| matches!(o, Outcome::Broken(_)));
    if all_broken {
        // Nothing was done: the error alone says why.
        broken_rows(&renewal.outcomes)?;
    }
    capped("renew", &renewal.capped);
    warn_open_secrets(&dirs);
    print_renewal(&renewal, args.expiring_within, args.output.into())?;
    // As kubeadm, `all` passes over a missing file (a tree from before super-admin.conf);
    // a certificate asked for by name must be there.
    let named = !args.names.iter().any(|name| name == "all");
    let missing: Vec<&Profile> = renewal
        .outcomes
        .iter()
        .filter(|(_, o)| named && *o == Outcome::Missing)
        .map(|(row, _)| *row)
        .collect();
    missing_notice(&missing, &dirs);
    broken_rows(&renewal.outcomes)?;
    let external = renewal
        .outcomes
        .iter()
        .any(|(_, o)| matches!(o, Outcome::External(_)));
    let renewed = renewal
        .outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::Renewed)
        .count();
    let failed = external || !missing.is_empty();
    Ok((renewal_status(args, failed, renewed), renewed))
}

/// The failure of a renew that left broken rows as they are (the sound ones were renewed):
/// the first one's problem, and how many more there are.
fn broken_rows(outcomes: &[(&'static Profile, Outcome)]) -> Result<()> {
    let broken = outcomes.iter().filter_map(|(_, outcome)| match outcome {
        Outcome::Broken(problem) => Some(problem.as_str()),
        _ => None,
    });
    broken_failure(broken, "listed above; the sound rows were renewed")
}

/// `certs renew --reconcile [--plan]`: the configuration is `--config`, with init's node
/// flags, `--encryption-algorithm` and `--cert-validity` over it; `--plan` takes no lock
/// and writes nothing. `resolved` gets the tree once it is known.
fn reconcile_certs(args: &RenewArgs, resolved: &mut Option<TreeDirs>) -> Result<(ExitCode, usize)> {
    let now = OffsetDateTime::now_utc();
    let flags = ClusterInput {
        algorithm: args.encryption_algorithm,
        cert_validity: args.cert_validity,
        ..args.reconcile.node.input()
    };
    let config = args.config.as_deref();
    let configuration = Configuration::load(config, &flags, &args.tree, (now, true, true))?;
    let (dirs, spec) = (&configuration.dirs, configuration.spec.as_ref());
    *resolved = Some(
        dirs.clone()
            .with_kubelet_dir("--kubelet-cert-dir", args.kubelet_cert_dir.as_deref()),
    );
    let spec = spec.ok_or_else(|| anyhow!("internal error: no configuration resolved"))?;
    let names = match args.names.is_empty() {
        true => vec!["all".to_string()],
        false => args.names.clone(),
    };
    let rows = renewable_rows(&names).ok_or_else(|| anyhow!("unknown certificate in {names:?}"))?;
    let plan_only = args.reconcile.plan;
    let _lock = match plan_only {
        true => reader::require_tree(dirs).map(|()| None)?,
        false => Some(lock_existing_tree(dirs, &args.lock)?),
    };
    let request = ReconcileRequest {
        spec,
        algorithm: configuration.algorithm,
        rows,
        backups: backups(dirs, args.backup_dir.as_deref(), args.keep),
    };
    let plan = reconcile::plan(dirs, &request)?;
    let format = Format::from(args.output);
    if plan_only {
        print_reconcile(&plan.rows, dirs, None, true, format)?;
        let code = match plan.pending() {
            true => ExitCode::from(DUE),
            false => ExitCode::SUCCESS,
        };
        return Ok((code, 0));
    }
    let progress = Progress::new("reconcile", "keys");
    let done = reconcile::apply(dirs, plan, &request, &|done, total| {
        progress.update(done, total)
    })?;
    progress.finish();
    if done.kept.is_none() {
        // Nothing was written: a broken row's error alone says why.
        broken_plan_rows(&done.rows)?;
    }
    let version = configuration.kubernetes_version.as_deref();
    store::replace_changed(&[pods::keeping_pod_settings(
        record_write(dirs, spec, version, true)?,
        &configuration.cluster,
    )?])?;
    capped("reconcile", &done.capped);
    warn_open_secrets(dirs);
    print_reconcile(&done.rows, dirs, done.kept.as_ref(), false, format)?;
    broken_plan_rows(&done.rows)?;
    let external = done
        .rows
        .iter()
        .any(|r| matches!(r.verdict, Verdict::External(_)));
    let reissued = done.rows.iter().filter(|r| r.changes()).count();
    Ok((renewal_status(args, external, reissued), reissued))
}

/// The failure of a reconcile that left broken rows as they are: the first one's problem.
fn broken_plan_rows(rows: &[reconcile::RowPlan]) -> Result<()> {
    let broken = rows.iter().filter_map(|r| match &r.verdict {
        Verdict::Broken(problem) => Some(problem.as_str()),
        _ => None,
    });
    broken_failure(broken, "left as they are")
}

/// One error for the broken rows' problems, `broken`: the first one's, and how many more
/// there are (`more`: what became of them); none is no error.
fn broken_failure<'a>(broken: impl Iterator<Item = &'a str>, more: &str) -> Result<()> {
    let broken: Vec<&str> = broken.collect();
    match broken.as_slice() {
        [] => Ok(()),
        [only] => Err(anyhow!("{only}")),
        [first, rest @ ..] => Err(anyhow!(
            "{first} (and {} more broken row(s), {more})",
            rest.len()
        )),
    }
}

/// `--backup-dir` (else `<kubeconfig-dir>/tmp`) and `--keep` (else 5).
fn backups(dirs: &TreeDirs, dir: Option<&Path>, keep: Option<u16>) -> Backups {
    Backups {
        dir: dir.map_or_else(|| generations::default_dir(dirs), Path::to_path_buf),
        keep: keep.map_or(generations::DEFAULT_KEEP, usize::from),
    }
}

/// One pin a line for every CA certificate the cluster's readers trust: the cluster CA's,
/// then during a rotation the CA coming or going (each a `--discovery-token-ca-cert-hash`).
fn ca_cert_hash(dirs: &TreeDirs) -> Result<ExitCode> {
    let ca = reader::read_ca(dirs, by_role(Role::ClusterCa))?;
    let pins: Vec<String> = ca.trust.iter().map(|c| CaPin::of(c).to_string()).collect();
    print_line(&pins.join("\n"))?;
    Ok(ExitCode::SUCCESS)
}
