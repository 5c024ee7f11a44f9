//! `kubeconfig user`: a kubeconfig for any user, with a fresh key and a client certificate
//! signed by the cluster CA — the `admin` row with its CN and O replaced.

use crate::cluster::kubeconfig::{ClientCredentials, Kubeconfig};
use crate::duration::Duration;
use crate::pki::issue::{self, CertRequest, Eku};
use crate::pki::keys::{self, Algorithm};
use crate::pki::pem;
use crate::profile::by_name;
use crate::tree::TreeDirs;
use crate::tree::{reader, store};
use anyhow::{Context, Result, anyhow};
use std::path::Path;
use time::OffsetDateTime;

/// Who the kubeconfig is for.
pub struct UserRequest {
    /// CN.
    pub name: String,
    /// O values.
    pub groups: Vec<String>,
    /// Certificate validity.
    pub validity: Duration,
    /// API server URL, if given; else admin.conf's.
    pub server: Option<String>,
    /// Key algorithm, if given; else the CA's.
    pub algorithm: Option<Algorithm>,
    /// The one "now" of this run.
    pub now: OffsetDateTime,
}

/// The kubeconfig YAML for `user`.
pub fn user_kubeconfig(dirs: &TreeDirs, user: &UserRequest) -> Result<String> {
    let admin = by_name("admin").ok_or_else(|| anyhow!("internal error: no admin row"))?;
    let ca_row = by_name(admin.issuer.unwrap_or_default())
        .ok_or_else(|| anyhow!("internal error: no CA row"))?;
    let ca_key = dirs.cert_dir.join(ca_row.key_file().unwrap_or_default());
    let (ca_cert, signer) = reader::load_signer(dirs, ca_row, user.now)?.ok_or_else(|| {
        anyhow!(
            "{} is absent: the cluster CA's key is needed to sign a user certificate",
            ca_key.display()
        )
    })?;
    let server = match &user.server {
        Some(server) => server.clone(),
        None => admin_server(dirs, admin.file)?,
    };
    let algorithm = user
        .algorithm
        .or(ca_cert.key_algorithm)
        .unwrap_or(Algorithm::Rsa2048);
    let key = keys::generate(algorithm)?;
    let request = CertRequest {
        cn: user.name.clone(),
        orgs: user.groups.clone(),
        dns_names: vec![],
        ips: vec![],
        ekus: vec![Eku::ClientAuth],
        is_ca: false,
        not_before: ca_cert.not_before,
        not_after: user.now + user.validity.to_time(),
    };
    let der = issue::signed_by(&request, &key, &signer)?;
    let creds = ClientCredentials {
        ca_pem: pem::encode("CERTIFICATE", &ca_cert.der).into_bytes(),
        server,
        cert_pem: pem::encode("CERTIFICATE", &der).into_bytes(),
        key_pem: keys::to_pem(&key)?.into_bytes(),
    };
    Kubeconfig::with_client_cert("kubernetes", &creds.server, &user.name, &creds).to_yaml()
}

fn admin_server(dirs: &TreeDirs, admin_file: &str) -> Result<String> {
    let path = dirs.kubeconfig_dir.join(admin_file);
    let bytes = store::read_optional(&dirs.kubeconfig_dir, Path::new(admin_file))?
        .ok_or_else(|| anyhow!("{} is missing: pass --server URL", path.display()))?;
    Kubeconfig::parse(&bytes)
        .and_then(|admin| admin.server().map(str::to_string))
        .with_context(|| path.display().to_string())
}
