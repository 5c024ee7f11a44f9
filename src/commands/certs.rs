//! `kubepki certs check-expiration|renew|ca-cert-hash|certificate-key`.

use super::{lock_tree, warn_open_secrets};
use crate::cli::{CertsCommand, CheckExpirationArgs, RenewArgs};
use crate::engine::expiry::ExpirationInfo;
use crate::engine::renew::{Outcome, RenewRequest, renew};
use crate::pki::inspect::hex;
use crate::profile::{PROFILES, Profile, by_cert_name, by_name};
use crate::report::{due_notice, expiration_metrics, print_expiration, print_renewal};
use crate::spec::{DEFAULT_CERT_VALIDITY, validity};
use crate::tree::TreeDirs;
use crate::tree::{reader, store};
use anyhow::{Result, anyhow};
use std::path::{Path, PathBuf};
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
        CertsCommand::CertificateKey => certificate_key(),
    }
}

fn check_expiration(args: &CheckExpirationArgs) -> Result<ExitCode> {
    let dirs = args.tree.dirs();
    let info = ExpirationInfo::read(&dirs, OffsetDateTime::now_utc())?;
    warn_open_secrets(&dirs);
    if let Some(path) = &args.metrics_file {
        store::write_outside(
            path,
            expiration_metrics(&info).as_bytes(),
            store::PUBLIC_MODE,
        )?;
    }
    print_expiration(&info, args.output.into())?;
    let due = args
        .fail_within
        .map(|window| (window, info.due_within(window)));
    match due {
        Some((window, due)) if !due.is_empty() => {
            due_notice(&due, window);
            Ok(ExitCode::from(DUE))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

fn renew_certs(args: &RenewArgs) -> Result<ExitCode> {
    let dirs = args.tree.dirs();
    let now = OffsetDateTime::now_utc();
    let rows = selected_rows(&args.names)?;
    let stamp = now.format(time::macros::format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))?;
    let _lock = lock_tree(&dirs, &args.lock)?;
    let request = RenewRequest {
        rows,
        due_within: args.expiring_within,
        algorithm: args.encryption_algorithm,
        validity: validity(args.cert_validity, DEFAULT_CERT_VALIDITY, "--cert-validity")?,
        backup_dir: args.backup_dir.clone().unwrap_or_else(|| {
            unused_path(
                &dirs
                    .kubeconfig_dir
                    .join("tmp")
                    .join(format!("kubepki-backup-{stamp}")),
            )
        }),
        now,
    };
    let renewal = renew(&dirs, &request)?;
    warn_open_secrets(&dirs);
    print_renewal(&renewal, args.expiring_within)?;
    let external = renewal
        .outcomes
        .iter()
        .any(|(_, o)| matches!(o, Outcome::External(_)));
    Ok(if external {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `path`, or `path.1`, `path.2`, ... when it exists: two renewals within one second (run
/// one after the other under the lock) must not share a backup directory, or the second
/// would overwrite the first one's copies of the original files.
fn unused_path(path: &Path) -> PathBuf {
    let mut candidate = path.to_path_buf();
    let mut suffix = 0;
    while candidate.symlink_metadata().is_ok() {
        suffix += 1;
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{suffix}"));
        candidate = PathBuf::from(name);
    }
    candidate
}

/// The renewable rows named (or all of them), in table order.
fn selected_rows(names: &[String]) -> Result<Vec<&'static Profile>> {
    if names.iter().any(|n| n == "all") {
        return Ok(PROFILES.iter().filter(|p| p.is_renewable()).collect());
    }
    let mut rows = names
        .iter()
        .map(|name| by_cert_name(name).ok_or_else(|| anyhow!("unknown certificate {name:?}")))
        .collect::<Result<Vec<_>>>()?;
    rows.sort_by_key(|row| PROFILES.iter().position(|p| p.name == row.name));
    rows.dedup_by_key(|row| row.name);
    Ok(rows)
}

fn ca_cert_hash(dirs: &TreeDirs) -> Result<ExitCode> {
    let ca = by_name("ca").ok_or_else(|| anyhow!("internal error: no ca row"))?;
    println!("{}", reader::read_ca(dirs, ca)?.cert.pin()?);
    Ok(ExitCode::SUCCESS)
}

fn certificate_key() -> Result<ExitCode> {
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key).map_err(|_| anyhow!("the system random generator failed"))?;
    println!("{}", hex(&key));
    Ok(ExitCode::SUCCESS)
}
