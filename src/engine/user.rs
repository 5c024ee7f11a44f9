//! `kubeconfig user`: a kubeconfig for any user, with a fresh key and a client certificate
//! signed by the cluster CA — the admin row, resolved with another CN and O (and the same for
//! another kubeconfig row, as `kubelet repair` does with the kubelet's).

use super::issue::{By, Capped, KubeconfigOf, SigningCa, issue};
use crate::duration::Duration;
use crate::pki::keys::{self, Algorithm};
use crate::profile::{Profile, Role, by_role};
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
    /// The cluster's name, if known from a configuration; else admin.conf's, else kubeadm's
    /// default.
    pub cluster_name: Option<String>,
    /// The one "now" of this run.
    pub now: OffsetDateTime,
}

/// The kubeconfig YAML for `user`, and whether its certificate ends with the cluster CA,
/// earlier than asked.
pub fn user_kubeconfig(dirs: &TreeDirs, user: &UserRequest) -> Result<(Vec<u8>, Option<Capped>)> {
    kubeconfig_of(by_role(Role::Admin), dirs, user)
}

/// `user_kubeconfig` with the kubeconfig row `row` (its usages) instead of the admin row;
/// the server and cluster name still default to admin.conf's.
pub fn kubeconfig_of(
    row: &'static Profile,
    dirs: &TreeDirs,
    user: &UserRequest,
) -> Result<(Vec<u8>, Option<Capped>)> {
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
    let signer = SigningCa::new(ca.cert.info, ca_key)?.trusting(&ca.trust);
    let admin_conf = reader::read_kubeconfig_file(dirs, admin)?;
    let server = match (&user.server, &admin_conf) {
        (Some(server), _) => server.clone(),
        (None, Some((path, admin))) => admin
            .server()
            .map(str::to_string)
            .map_err(|e| anyhow!("{}: {e:#}", path.display()))?,
        (None, None) => Err(Problem::Missing {
            path: dirs.kubeconfig_dir.join(admin.file),
            hint: "pass --server URL".into(),
        })?,
    };
    let cluster_name = match (&user.cluster_name, &admin_conf) {
        (Some(name), _) => name.clone(),
        (None, Some((_, admin))) => admin.cluster_name()?.to_string(),
        (None, None) => DEFAULT_CLUSTER_NAME.to_string(),
    };
    let algorithm = user
        .algorithm
        .or(signer.cert.key_algorithm)
        .unwrap_or(Algorithm::Rsa2048);
    let wanted_end = user.now + user.validity.to_time();
    let request = row.user_request(&user.name, &user.groups, &signer.cert, wanted_end);
    let capped = Capped::of(&user.name, ca_row.name, &request, wanted_end);
    let issued = issue(row, &request, keys::generate(algorithm)?, By::Ca(&signer))?;
    let of = KubeconfigOf::New {
        cluster_name: &cluster_name,
        server: &server,
    };
    Ok((issued.kubeconfig(&signer, of)?, capped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::kubeconfig::Kubeconfig;
    use crate::pki::inspect::CertInfo;
    use crate::pki::pem::first_certificate;
    use crate::testtree::{TestTree, ecdsa_spec};

    fn request(server: Option<&str>) -> UserRequest {
        UserRequest {
            name: "alice".into(),
            groups: vec!["dev".into(), "ops".into()],
            validity: Duration::from_hours(24),
            server: server.map(Into::into),
            algorithm: None,
            cluster_name: None,
            now: OffsetDateTime::now_utc(),
        }
    }

    #[test]
    fn a_user_gets_a_client_certificate_of_the_cluster_ca_and_admin_confs_server() {
        let tree = TestTree::written(&ecdsa_spec(&[]));
        let (yaml, capped) = user_kubeconfig(&tree.dirs, &request(None)).expect("a kubeconfig");
        assert!(capped.is_none());
        let creds = Kubeconfig::parse(&yaml)
            .and_then(|k| k.client_credentials())
            .expect("credentials");
        assert_eq!(creds.server, "https://192.168.1.10:6443");
        let cert =
            CertInfo::parse(first_certificate(&creds.cert_pem).expect("PEM")).expect("a cert");
        assert_eq!(
            (cert.cn.as_str(), cert.orgs.as_slice()),
            ("alice", &["dev".to_string(), "ops".to_string()][..])
        );
        assert_eq!(
            cert.key_algorithm,
            Some(Algorithm::EcdsaP256),
            "the CA's algorithm"
        );
        let ca = reader::read_ca(&tree.dirs, by_role(Role::ClusterCa)).expect("the CA");
        assert!(cert.verify_signed_by(&ca.cert.info).is_ok());
        assert_eq!(cert.not_before, ca.cert.info.not_before);
    }

    #[test]
    fn without_the_ca_key_or_admin_conf_it_says_what_is_missing() {
        let tree = TestTree::written(&ecdsa_spec(&[]));
        tree.remove("admin", |_| true);
        let error = user_kubeconfig(&tree.dirs, &request(None)).expect_err("no server");
        assert!(
            error
                .to_string()
                .ends_with("admin.conf is missing: pass --server URL"),
            "{error}"
        );
        assert!(user_kubeconfig(&tree.dirs, &request(Some("https://x.example.com"))).is_ok());
        tree.remove("ca", |i| i == 0);
        let error = user_kubeconfig(&tree.dirs, &request(Some("https://x.example.com")))
            .expect_err("no CA key");
        assert!(
            error
                .to_string()
                .contains("ca.key is absent: the cluster CA's key is needed"),
            "{error}"
        );
    }
}
