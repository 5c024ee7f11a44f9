//! `kubepki certs check-expiration|renew|ca-cert-hash|certificate-key|rotate-ca|bundle`.

use super::{configured_tree, lock_existing_tree, warn_open_secrets};
use crate::cli::{CertsCommand, CheckExpirationArgs, RenewArgs};
use crate::engine::expiry::ExpirationInfo;
use crate::engine::renew::{Outcome, RenewRequest, default_backup_dir, renew};
use crate::pki::pin::CaPin;
use crate::pki::seal::CertificateKey;
use crate::profile::{Role, by_role, renewable_rows};
use crate::report::{
    Progress, capped, due_notice, expiration_metrics, print_expiration, print_line, print_renewal,
};
use crate::spec::{DEFAULT_CERT_VALIDITY, validity};
use crate::tree::{TreeDirs, reader, store};
use anyhow::{Result, anyhow};
use std::process::ExitCode;
use time::OffsetDateTime;

/// Exit status of `check-expiration --fail-within` when something is due.
const DUE: u8 = 3;

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
    }
}

fn check_expiration(args: &CheckExpirationArgs) -> Result<ExitCode> {
    let (_, dirs) = configured_tree(args.config.as_deref(), &args.tree)?;
    reader::require_tree(&dirs)?;
    let info = ExpirationInfo::read(&dirs, OffsetDateTime::now_utc())?;
    warn_open_secrets(&dirs);
    if let Some(path) = &args.metrics_file {
        let metrics = expiration_metrics(&info);
        store::write_outside(path, metrics.as_bytes(), store::PUBLIC_MODE, true)?;
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

fn renew_certs(args: &RenewArgs) -> Result<ExitCode> {
    let (file, dirs) = configured_tree(args.config.as_deref(), &args.tree)?;
    let now = OffsetDateTime::now_utc();
    let rows = renewable_rows(&args.names)
        .ok_or_else(|| anyhow!("unknown certificate in {:?}", args.names))?;
    let cert_validity = args
        .cert_validity
        .or(file.cluster.certificate_validity_period);
    let validity = validity(cert_validity, DEFAULT_CERT_VALIDITY, "--cert-validity")?;
    let _lock = lock_existing_tree(&dirs, &args.lock)?;
    let backup_dir = match &args.backup_dir {
        Some(dir) => dir.clone(),
        None => default_backup_dir(&dirs, now)?,
    };
    let request = RenewRequest {
        rows,
        due_within: args.expiring_within,
        algorithm: args
            .encryption_algorithm
            .or(file.cluster.encryption_algorithm),
        validity,
        backup_dir,
        now,
    };
    let progress = Progress::new("renew", "keys");
    let renewal = renew(&dirs, &request, &|done, total| progress.update(done, total))?;
    progress.finish();
    capped("renew", &renewal.capped);
    warn_open_secrets(&dirs);
    print_renewal(&renewal, args.expiring_within)?;
    let external = renewal
        .outcomes
        .iter()
        .any(|(_, o)| matches!(o, Outcome::External(_)));
    Ok(match external {
        true => ExitCode::FAILURE,
        false => ExitCode::SUCCESS,
    })
}

/// One pin a line for every CA certificate the cluster's readers trust: the cluster CA's,
/// then during a rotation the CA coming or going (each a `--discovery-token-ca-cert-hash`).
fn ca_cert_hash(dirs: &TreeDirs) -> Result<ExitCode> {
    let ca = reader::read_ca(dirs, by_role(Role::ClusterCa))?;
    let pins: Vec<String> = ca.trust.iter().map(|c| CaPin::of(c).to_string()).collect();
    print_line(&pins.join("\n"))?;
    Ok(ExitCode::SUCCESS)
}
