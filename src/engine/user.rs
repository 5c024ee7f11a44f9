//! `kubeconfig user`: a kubeconfig for any user, with a fresh key and a client certificate
//! signed by the cluster CA — the admin row, resolved with another CN and O.

use super::issue::{By, KubeconfigOf, SigningCa, issue};
use crate::duration::Duration;
use crate::pki::keys::{self, Algorithm};
use crate::profile::{Role, by_role};
use crate::spec::DEFAULT_CLUSTER_NAME;
use crate::tree::TreeDirs;
use crate::tree::problem::Problem;
use crate::tree::reader;
use anyhow::{Result, anyhow};
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
pub fn user_kubeconfig(dirs: &TreeDirs, user: &UserRequest) -> Result<Vec<u8>> {
    let admin = by_role(Role::Admin);
    let ca_row = by_role(Role::ClusterCa);
    let ca = reader::read_signing_ca(dirs, ca_row, user.now)?;
    let ca_key = ca.signing_key()?.ok_or_else(|| {
        anyhow!(
            "{} is absent: the cluster CA's key is needed to sign a user certificate",
            dirs.cert_dir
                .join(ca_row.key_file().unwrap_or_default())
                .display()
        )
    })?;
    let signer = SigningCa::new(ca.cert.info, ca_key)?;
    let server = match &user.server {
        Some(server) => server.clone(),
        None => admin_server(dirs)?,
    };
    let algorithm = user
        .algorithm
        .or(signer.cert.key_algorithm)
        .unwrap_or(Algorithm::Rsa2048);
    let request = admin.user_request(
        &user.name,
        &user.groups,
        signer.cert.not_before,
        user.now + user.validity.to_time(),
    );
    let issued = issue(admin, &request, keys::generate(algorithm)?, By::Ca(&signer))?;
    let of = KubeconfigOf::New {
        cluster_name: DEFAULT_CLUSTER_NAME,
        server: &server,
    };
    issued.kubeconfig(&signer, of)
}

/// The server of admin.conf, for a user kubeconfig without `--server`.
fn admin_server(dirs: &TreeDirs) -> Result<String> {
    let admin = by_role(Role::Admin);
    let (path, kubeconfig) =
        reader::read_kubeconfig_file(dirs, admin)?.ok_or_else(|| Problem::Missing {
            path: dirs.kubeconfig_dir.join(admin.file),
            hint: "pass --server URL",
        })?;
    kubeconfig
        .server()
        .map(str::to_string)
        .map_err(|e| anyhow!("{}: {e:#}", path.display()))
}
