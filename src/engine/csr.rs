//! `certs generate-csr`, `certs sign-csr` and `kubelet serving-cert --csr-only`: kubeadm's
//! external-CA flow, and signing a request whose key never leaves the host that made it.
//!
//! generate-csr: For every control-plane certificate
//! and kubeconfig of the table, a new key and a certificate signing request with the subject,
//! SANs and usages `init` would give it, so that a CA kept elsewhere (Vault, an offline root,
//! a corporate CA) signs them: `<cert-dir>/<name>.key` and `<name>.csr`, and for a kubeconfig
//! `<kubeconfig-dir>/<name>.conf` holding only its key and `<name>.conf.csr`. The signed
//! certificates go beside the keys as `<name>.crt`, or into the kubeconfig as
//! `client-certificate-data`; `init` then reuses them. Nothing is ever replaced: one existing
//! file refuses the whole run, before anything is written.

use super::issue::SigningCa;
use crate::cluster::kubeconfig::Kubeconfig;
use crate::duration::Duration;
use crate::pki::csr::{csr_pem, parse_csr};
use crate::pki::issue::CertRequest;
use crate::pki::keys::{self, Algorithm};
use crate::pki::pem;
use crate::profile::{BACKDATE, Cn};
use crate::profile::{Kind, PROFILES, Profile, Role, Scope, by_role};
use crate::spec::ClusterSpec;
use crate::tree::store::{self, FileWrite, SECRET_MODE};
use crate::tree::{TreeDirs, reader};
use anyhow::{Context, Result, anyhow, bail};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// The rows that get a CSR: control-plane leaves and kubeconfigs (not the CAs, which are
/// the outside CA's, nor the service-account key pair); none of the local etcd's with an
/// external etcd.
pub fn csr_rows(external_etcd: bool) -> impl Iterator<Item = &'static Profile> {
    PROFILES.iter().filter(move |row| {
        row.scope == Scope::ControlPlane
            && matches!(row.kind, Kind::Leaf | Kind::Kubeconfig(_))
            && !(external_etcd && row.needs_local_etcd())
    })
}

/// Writes a key and a CSR for every row of `csr_rows`; returns the files written, in table
/// order.
pub fn generate_csrs(
    dirs: &TreeDirs,
    spec: &ClusterSpec,
    algorithm: Algorithm,
    external_etcd: bool,
) -> Result<Vec<PathBuf>> {
    let rows: Vec<&Profile> = csr_rows(external_etcd).collect();
    let ca_pem = cluster_ca_pem(dirs)?;
    let algorithms = vec![algorithm; rows.len()];
    let keys = keys::generate_all(&algorithms, &|_| {})?;
    let mut files = Vec::new();
    for (row, key) in rows.into_iter().zip(keys) {
        let request = row
            .request(spec, None)
            .ok_or_else(|| anyhow!("internal error: {} has no certificate", row.name))?;
        let csr = csr_pem(&request, &key)?.into_bytes();
        let key_pem = keys::to_pem(&key)?.into_bytes();
        files.extend(match row.kind {
            Kind::Kubeconfig(_) => kubeconfig_files(
                dirs,
                spec,
                row,
                &request.cn,
                &key_pem,
                ca_pem.as_deref(),
                csr,
            )?,
            _ => leaf_files(dirs, row, key_pem, csr),
        });
    }
    refuse_existing(&files)?;
    store::create_all(&files)?;
    Ok(files.iter().map(FileWrite::path).collect())
}

/// `<name>.key` and `<name>.csr` in the row's directory.
fn leaf_files(dirs: &TreeDirs, row: &Profile, key_pem: Vec<u8>, csr: Vec<u8>) -> Vec<FileWrite> {
    let root = dirs.root_of(row).to_path_buf();
    let file = |suffix: &str, content: Vec<u8>| FileWrite {
        root: root.clone(),
        rel: format!("{}.{suffix}", row.file).into(),
        content,
        mode: SECRET_MODE,
    };
    vec![file("key", key_pem), file("csr", csr)]
}

/// `<name>.conf` with the key only, and `<name>.conf.csr`.
fn kubeconfig_files(
    dirs: &TreeDirs,
    spec: &ClusterSpec,
    row: &Profile,
    user: &str,
    key_pem: &[u8],
    ca_pem: Option<&[u8]>,
    csr: Vec<u8>,
) -> Result<Vec<FileWrite>> {
    let server = row
        .server_url(spec)
        .ok_or_else(|| anyhow!("internal error: {} has no server", row.name))?;
    let yaml = Kubeconfig::with_client_key(&spec.cluster_name, &server, ca_pem, user, key_pem)
        .to_yaml()?
        .into_bytes();
    let root = dirs.kubeconfig_dir.clone();
    Ok(vec![
        FileWrite {
            root: root.clone(),
            rel: row.file.into(),
            content: yaml,
            mode: SECRET_MODE,
        },
        FileWrite {
            root,
            rel: format!("{}.csr", row.file).into(),
            content: csr,
            mode: SECRET_MODE,
        },
    ])
}

/// The cluster CA's certificate when it is already there (the outside CA's, copied in), for
/// the kubeconfigs; else they get it when their certificate is added.
fn cluster_ca_pem(dirs: &TreeDirs) -> Result<Option<Vec<u8>>> {
    let row = by_role(Role::ClusterCa);
    let rel = row
        .cert_file()
        .ok_or_else(|| anyhow!("internal error: the {} row has no certificate", row.name))?;
    reader::read_file(dirs.root_of(row), &rel)
        .with_context(|| format!("reading {}", dirs.root_of(row).join(&rel).display()))
}

/// One file already there refuses the run, naming it: keys are never replaced.
fn refuse_existing(files: &[FileWrite]) -> Result<()> {
    for file in files {
        let path = file.path();
        if exists(&path) {
            bail!(
                "{} exists: generate-csr never replaces a file (move the old keys and CSRs away \
                 first)",
                path.display()
            );
        }
    }
    Ok(())
}

fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

/// What `certs sign-csr` was asked: the row whose CA, usages and subject rule apply.
pub struct SignRequest {
    /// The row the certificate is for (`kubelet-serving`, `apiserver`, `admin`, ...).
    pub row: &'static Profile,
    /// Validity of the certificate (it ends no later than its CA).
    pub validity: Duration,
    /// The one "now" of this run.
    pub now: OffsetDateTime,
}

/// A certificate signed from a CSR.
pub struct Signed {
    /// The certificate, PEM.
    pub cert_pem: Vec<u8>,
    /// What it was issued for.
    pub request: CertRequest,
    /// The CA row that signed it.
    pub issuer: &'static str,
}

/// Signs the CSR `csr_pem` for `request.row` with that row's CA from the tree: the CSR's
/// subject must be the one the row gives (its CN rule, exactly its organizations), its SANs
/// are kept, and the usages, CA flag (never) and validity are the row's.
pub fn sign_request(dirs: &TreeDirs, csr_pem: &[u8], request: &SignRequest) -> Result<Signed> {
    let row = request.row;
    let csr = parse_csr(csr_pem)?;
    check_subject(row, &csr.cn, &csr.orgs)?;
    let ca_row = row
        .issuer_row()
        .ok_or_else(|| anyhow!("{} is not signed by a CA of the tree", row.name))?;
    let ca = reader::read_signing_ca(dirs, ca_row, request.now)?;
    let ca_key = ca.signing_key()?.ok_or_else(|| {
        anyhow!(
            "{} is absent: its CA's key is needed to sign",
            dirs.root_of(ca_row)
                .join(ca_row.key_file().unwrap_or_default())
                .display()
        )
    })?;
    let signer = SigningCa::new(ca.cert.info, ca_key)?;
    let cert_request = CertRequest {
        cn: csr.cn.clone(),
        orgs: csr.orgs.clone(),
        dns_names: csr.dns_names.clone(),
        ips: csr.ips.clone(),
        ekus: row.ekus.to_vec(),
        is_ca: false,
        not_before: request.now - BACKDATE,
        not_after: (request.now + request.validity.to_time()).min(signer.cert.not_after),
    };
    let der = signer.sign_foreign(csr, &cert_request)?;
    Ok(Signed {
        cert_pem: pem::encode("CERTIFICATE", &der).into_bytes(),
        request: cert_request,
        issuer: ca_row.name,
    })
}

/// The subject `row` gives: its CN rule and exactly its organizations; else why not, naming
/// what the CSR asks.
fn check_subject(row: &Profile, cn: &str, orgs: &[String]) -> Result<()> {
    let cn_fits = match row.cn {
        Cn::Fixed(fixed) => cn == fixed,
        Cn::NodeName => !cn.is_empty() && !cn.contains(':'),
        Cn::NodePrefixed(prefix) => cn.strip_prefix(prefix).is_some_and(|n| !n.is_empty()),
    };
    let wanted_orgs: Vec<&str> = row.orgs.to_vec();
    let asked_orgs: Vec<&str> = orgs.iter().map(String::as_str).collect();
    if !cn_fits || asked_orgs != wanted_orgs {
        bail!(
            "the CSR asks for CN={cn:?} O={asked_orgs:?}, which is not a {} certificate's \
             subject (CN {}, O {wanted_orgs:?}); refused",
            row.name,
            row.common_name_of("<node>")
        );
    }
    Ok(())
}

/// `kubelet serving-cert --csr-only`, on the node: a new key and a CSR for the kubelet's
/// serving certificate of `node` at `ips`, written as `kubelet.key` and `kubelet.csr` in
/// `dirs.kubelet_dir`, never replacing a file; the key never leaves the node.
pub fn write_serving_csr(
    dirs: &TreeDirs,
    node: &str,
    ips: &[IpAddr],
    algorithm: Algorithm,
    now: OffsetDateTime,
) -> Result<Vec<PathBuf>> {
    let row = by_role(Role::KubeletServing);
    let request = row.node_request(node, ips, None, now, Duration::from_secs(0));
    let key = keys::generate(algorithm)?;
    let csr = csr_pem(&request, &key)?.into_bytes();
    let files = leaf_files(dirs, row, keys::to_pem(&key)?.into_bytes(), csr);
    refuse_existing(&files)?;
    store::create_all(&files)?;
    Ok(files.iter().map(FileWrite::path).collect())
}
