//! `certs renew`: re-issuing leaf certificates and kubeconfig client certificates from the
//! CAs on disk, keeping each certificate's subject and SANs as they are (like kubeadm), with
//! a new key. CAs and the sa key pair are never renewed. Everything is checked and issued in
//! memory first; then old files are backed up and new ones replace them pair-safely.

use crate::duration::Duration;
use crate::engine::expiry::short_human_duration;
use crate::pki::inspect::CertInfo;
use crate::pki::issue::{self, CertRequest, Signer};
use crate::pki::keys::{self, Algorithm};
use crate::pki::pem;
use crate::profile::{BACKDATE, Profile, by_name};
use crate::tree::TreeDirs;
use crate::tree::reader::CaOnDisk;
use crate::tree::reader::{self, Location, OnDisk};
use crate::tree::store::{self, FileWrite, PUBLIC_MODE, SECRET_MODE};
use anyhow::{Context, Result, anyhow};
use rcgen::KeyPair;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// What `certs renew` was asked to do.
pub struct RenewRequest {
    /// The rows to consider, in table order.
    pub rows: Vec<&'static Profile>,
    /// Renew only what expires within this window.
    pub due_within: Option<Duration>,
    /// Key algorithm for new keys; `None` keeps each certificate's algorithm.
    pub algorithm: Option<Algorithm>,
    /// Validity of the new certificates.
    pub validity: Duration,
    /// Where old files are copied before they are replaced.
    pub backup_dir: PathBuf,
    /// The one "now" of this run.
    pub now: OffsetDateTime,
}

/// What happened to one row.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Re-issued.
    Renewed,
    /// Not due: the residual time, kubeadm style.
    NotDue(String),
    /// The file does not exist.
    Missing,
    /// kubelet.conf points at the kubelet's own rotated certificate file.
    Delegated(PathBuf),
    /// Its CA's key is absent (external CA): cannot be renewed here.
    External(&'static str),
}

/// The result of a renew run.
pub struct Renewal {
    /// One outcome per considered row, in table order.
    pub outcomes: Vec<(&'static Profile, Outcome)>,
    /// The backup directory, when anything was replaced.
    pub backup_dir: Option<PathBuf>,
}

/// A row that will be renewed: what is on disk and the request for its successor.
struct Due {
    profile: &'static Profile,
    found: OnDisk,
    request: CertRequest,
    algorithm: Algorithm,
}

/// Runs `certs renew`.
pub fn renew(dirs: &TreeDirs, request: &RenewRequest) -> Result<Renewal> {
    let mut cas: Cas = HashMap::new();
    let mut outcomes = Vec::new();
    let mut due = Vec::new();
    for profile in &request.rows {
        let (outcome, renewal) = decide(dirs, profile, request, &mut cas)?;
        outcomes.push((*profile, outcome));
        due.extend(renewal);
    }
    if due.is_empty() {
        return Ok(Renewal {
            outcomes,
            backup_dir: None,
        });
    }
    let signers = load_signers(&cas, &due)?;
    let algorithms: Vec<Algorithm> = due.iter().map(|d| d.algorithm).collect();
    let new_keys = keys::generate_all(&algorithms)?;
    let mut writes = Vec::new();
    for (item, key) in due.iter().zip(new_keys) {
        let issuer = item.profile.issuer.unwrap_or_default();
        let ca = cas
            .get(issuer)
            .ok_or_else(|| anyhow!("internal error: no CA {issuer}"))?;
        let signer = signers
            .get(issuer)
            .ok_or_else(|| anyhow!("internal error: no signer for {issuer}"))?;
        writes.push(reissue(dirs, item, &key, &ca.cert, signer)?);
    }
    let originals: Vec<(PathBuf, PathBuf)> = writes
        .iter()
        .flat_map(Replacement::backup_sources)
        .collect();
    store::backup(&originals, &request.backup_dir)?;
    let pairs: Vec<_> = writes.iter().filter_map(Replacement::pair).collect();
    let files: Vec<_> = writes.iter().filter_map(Replacement::whole).collect();
    store::replace_many(&pairs, &files)?;
    Ok(Renewal {
        outcomes,
        backup_dir: Some(request.backup_dir.clone()),
    })
}

/// The CAs read so far, by row name.
type Cas = HashMap<&'static str, CaOnDisk>;

/// Signers for the CAs of the due rows only: a run with nothing due loads no CA key.
fn load_signers(cas: &Cas, due: &[Due]) -> Result<HashMap<&'static str, Signer>> {
    let mut signers = HashMap::new();
    for issuer in due.iter().filter_map(|d| d.profile.issuer) {
        if signers.contains_key(issuer) {
            continue;
        }
        let ca = cas
            .get(issuer)
            .ok_or_else(|| anyhow!("internal error: no CA {issuer}"))?;
        let signer = ca
            .signer()?
            .ok_or_else(|| anyhow!("internal error: renewing under the external CA {issuer}"))?;
        signers.insert(issuer, signer);
    }
    Ok(signers)
}

fn decide(
    dirs: &TreeDirs,
    profile: &'static Profile,
    request: &RenewRequest,
    cas: &mut Cas,
) -> Result<(Outcome, Option<Due>)> {
    let Some(found) = reader::read_row(dirs, profile)? else {
        return Ok((Outcome::Missing, None));
    };
    if let Location::Pointed { cert, .. } = &found.location {
        return Ok((Outcome::Delegated(cert.clone()), None));
    }
    check_key(&found)?;
    let issuer_name = profile
        .issuer
        .ok_or_else(|| anyhow!("internal error: {} has no issuer", profile.name))?;
    if !cas.contains_key(issuer_name) {
        let issuer = by_name(issuer_name)
            .ok_or_else(|| anyhow!("internal error: unknown CA {issuer_name}"))?;
        cas.insert(
            issuer_name,
            reader::read_signing_ca(dirs, issuer, request.now)?,
        );
    }
    let ca = cas
        .get(issuer_name)
        .ok_or_else(|| anyhow!("internal error: CA {issuer_name} not read"))?;
    if ca.is_external() {
        return Ok((Outcome::External(issuer_name), None));
    }
    let ca_cert = &ca.cert;
    found.cert.verify_signed_by(ca_cert).map_err(|e| {
        anyhow!(
            "{}: not signed by {issuer_name}: {e}",
            found.path().display()
        )
    })?;
    let residual = (found.cert.not_after - request.now).whole_seconds();
    if let Some(window) = request.due_within {
        if residual > i64::try_from(window.as_secs()).unwrap_or(i64::MAX) {
            return Ok((Outcome::NotDue(short_human_duration(residual)), None));
        }
    }
    let algorithm = request
        .algorithm
        .or(found.cert.key_algorithm)
        .unwrap_or(Algorithm::Rsa2048);
    let cert_request = CertRequest {
        cn: found.cert.cn.clone(),
        orgs: found.cert.orgs.clone(),
        dns_names: found.cert.dns_names.clone(),
        ips: found.cert.ips.clone(),
        ekus: profile.ekus.to_vec(),
        is_ca: false,
        not_before: request.now - BACKDATE,
        not_after: request.now + request.validity.to_time(),
    };
    Ok((
        Outcome::Renewed,
        Some(Due {
            profile,
            found,
            request: cert_request,
            algorithm,
        }),
    ))
}

/// The key beside a certificate must exist and match it; renewing over a broken pair would
/// hide the breakage.
fn check_key(found: &OnDisk) -> Result<()> {
    let key_pem = found.key_pem.as_ref().ok_or_else(|| {
        anyhow!(
            "{}: certificate exists without its key",
            found.path().display()
        )
    })?;
    match &found.location {
        Location::Pair { key, .. } => reader::check_pair(&found.cert, found.path(), key, key_pem),
        _ => reader::check_embedded_pair(&found.cert, found.path(), key_pem),
    }
}

/// The files that replace a renewed row.
enum Replacement {
    Pair { key: FileWrite, cert: FileWrite },
    Kubeconfig(FileWrite),
}

impl Replacement {
    /// (file, path under the backup dir) of what this replaces.
    fn backup_sources(&self) -> Vec<(PathBuf, PathBuf)> {
        let under =
            |file: &FileWrite, prefix: &str| (file.path(), Path::new(prefix).join(&file.rel));
        match self {
            Replacement::Pair { key, cert } => vec![under(key, "pki"), under(cert, "pki")],
            Replacement::Kubeconfig(file) => vec![under(file, "")],
        }
    }

    /// The key and certificate, for a pair.
    fn pair(&self) -> Option<(&FileWrite, &FileWrite)> {
        match self {
            Replacement::Pair { key, cert } => Some((key, cert)),
            Replacement::Kubeconfig(_) => None,
        }
    }

    /// The file, for a kubeconfig (replaced whole).
    fn whole(&self) -> Option<&FileWrite> {
        match self {
            Replacement::Kubeconfig(file) => Some(file),
            Replacement::Pair { .. } => None,
        }
    }
}

fn reissue(
    dirs: &TreeDirs,
    due: &Due,
    key: &KeyPair,
    ca_cert: &CertInfo,
    signer: &Signer,
) -> Result<Replacement> {
    let der = issue::signed_by(&due.request, key, signer)
        .with_context(|| format!("renewing {}", due.profile.cert_name()))?;
    let cert_pem = pem::encode("CERTIFICATE", &der).into_bytes();
    let key_pem = keys::to_pem(key)?.into_bytes();
    let file = |root: &Path, rel: PathBuf, content: Vec<u8>, mode| FileWrite {
        root: root.to_path_buf(),
        rel,
        content,
        mode,
    };
    match &due.found.location {
        Location::Pair { .. } => Ok(Replacement::Pair {
            key: file(
                &dirs.cert_dir,
                due.profile.key_file().unwrap_or_default(),
                key_pem,
                SECRET_MODE,
            ),
            cert: file(
                &dirs.cert_dir,
                due.profile.cert_file().unwrap_or_default(),
                cert_pem,
                PUBLIC_MODE,
            ),
        }),
        Location::Kubeconfig { kubeconfig, .. } => {
            let mut kubeconfig = kubeconfig.as_ref().clone();
            let ca_pem = pem::encode("CERTIFICATE", &ca_cert.der).into_bytes();
            kubeconfig.replace_credentials(&ca_pem, &cert_pem, &key_pem)?;
            let yaml = kubeconfig.to_yaml()?.into_bytes();
            Ok(Replacement::Kubeconfig(file(
                &dirs.kubeconfig_dir,
                due.profile.file.into(),
                yaml,
                SECRET_MODE,
            )))
        }
        Location::Pointed { .. } => {
            Err(anyhow!("internal error: renewing a delegated certificate"))
        }
    }
}
