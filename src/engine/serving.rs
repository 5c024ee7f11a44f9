//! `kubelet serving-cert`: the table's kubelet serving row issued for one node (its name and
//! addresses as SANs), signed by the cluster CA through the one issuance path, and written
//! into the kubelet's certificate directory as `kubelet.crt` and `kubelet.key`, where the
//! kubelet looks for its serving pair. What was there (the kubelet's self-signed pair, say) is
//! backed up first, then replaced pair-safely, as `certs renew` does.

use super::issue::{By, Capped, SigningCa, issue};
use super::renew::{Backups, keep_row, prune};
use crate::duration::Duration;
use crate::pki::keys::{self, Algorithm};
use crate::profile::{Role, by_role};
use crate::tree::TreeDirs;
use crate::tree::reader;
use crate::tree::store;
use anyhow::{Result, anyhow};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// What `kubelet serving-cert` was asked for.
pub struct ServingRequest {
    /// The node's name.
    pub node: String,
    /// The node's addresses.
    pub ips: Vec<IpAddr>,
    /// Validity of the certificate.
    pub validity: Duration,
    /// Key algorithm; `None`: the cluster CA's.
    pub algorithm: Option<Algorithm>,
    /// Where replaced files are kept first, as a generation.
    pub backups: Backups,
    /// The one "now" of this run.
    pub now: OffsetDateTime,
}

/// What `kubelet serving-cert` wrote.
pub struct Served {
    /// The files written, key first.
    pub files: Vec<PathBuf>,
    /// The generation that keeps the files it replaced, if any.
    pub kept: Option<PathBuf>,
    /// The certificate's subject CN, DNS names and IPs, for the report.
    pub cn: String,
    /// Its DNS SANs.
    pub dns_names: Vec<String>,
    /// Its IP SANs.
    pub ips: Vec<IpAddr>,
    /// Its end.
    pub not_after: OffsetDateTime,
    /// Set when it ends with the cluster CA, earlier than asked.
    pub capped: Option<Capped>,
}

/// Issues the kubelet serving certificate of `request` and writes it into
/// `dirs.kubelet_dir`, backing up and replacing what is there.
pub fn write_serving_cert(dirs: &TreeDirs, request: &ServingRequest) -> Result<Served> {
    let row = by_role(Role::KubeletServing);
    let ca_row = row
        .issuer_row()
        .ok_or_else(|| anyhow!("internal error: {} has no issuer", row.name))?;
    let ca = reader::read_signing_ca(dirs, ca_row, request.now)?;
    let ca_key = ca.signing_key()?.ok_or_else(|| {
        let key = dirs
            .root_of(ca_row)
            .join(ca_row.key_file().unwrap_or_default());
        anyhow!(
            "{} is absent: the cluster CA's key is needed to sign a kubelet serving \
             certificate (run this on a control-plane host and copy the files to the node)",
            key.display()
        )
    })?;
    let signer = SigningCa::new(ca.cert.info, ca_key)?;
    let cert_request = row.node_request(
        &request.node,
        &request.ips,
        Some(&signer.cert),
        request.now,
        request.validity,
    );
    let wanted_end = request.now + request.validity.to_time();
    let capped = Capped::of(row.cert_name(), ca_row.name, &cert_request, wanted_end);
    let algorithm = request
        .algorithm
        .or(signer.cert.key_algorithm)
        .unwrap_or(Algorithm::Rsa2048);
    let issued = issue(
        row,
        &cert_request,
        keys::generate(algorithm)?,
        By::Ca(&signer),
    )?;
    let key = dirs.key_write(row, issued.key_pem.clone());
    let cert = dirs.cert_write(row, issued.cert_pem.clone());
    let root = dirs.root_of(row);
    let exists = |rel: &Path| reader::read_file(root, rel).map(|bytes| bytes.is_some());
    let replaced = exists(&key.rel)? || exists(&cert.rel)?;
    let change = format!("replaced by a serving certificate for {}", request.node);
    let kept = match replaced {
        true => Some(keep_row(
            dirs,
            &request.backups,
            row,
            "kubelet serving-cert",
            &change,
            request.now,
        )?),
        false => None,
    };
    store::replace_many(&[(&key, &cert)], &[])?;
    prune(&request.backups)?;
    Ok(Served {
        files: vec![key.path(), cert.path()],
        kept,
        cn: issued.cert.cn.clone(),
        dns_names: issued.cert.dns_names.clone(),
        ips: issued.cert.ips.clone(),
        not_after: issued.cert.not_after,
        capped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testtree::{TestTree, ecdsa_spec};
    use std::fs;

    fn request(tree: &TestTree) -> ServingRequest {
        ServingRequest {
            node: "worker-1".into(),
            ips: vec!["10.0.0.21".parse().unwrap(), "fd00::21".parse().unwrap()],
            validity: Duration::from_hours(24),
            algorithm: None,
            backups: Backups {
                dir: tree.dirs.kubeconfig_dir.join("backup"),
                keep: 5,
            },
            now: OffsetDateTime::now_utc(),
        }
    }

    #[test]
    fn a_serving_certificate_of_the_cluster_ca_for_the_node() {
        let tree = TestTree::written(&ecdsa_spec(&[]));
        fs::create_dir_all(&tree.dirs.kubelet_dir).unwrap();
        let served = write_serving_cert(&tree.dirs, &request(&tree)).expect("written");
        assert!(served.kept.is_none());
        let row = by_role(Role::KubeletServing);
        let found = reader::read_pair(&tree.dirs, row).expect("readable");
        let (cert, key) = (found.cert.expect("a cert"), found.key.expect("a key"));
        key.check_belongs_to(&cert).expect("its key");
        assert_eq!(cert.path(), tree.dirs.kubelet_dir.join("kubelet.crt"));
        let ca = reader::read_ca(&tree.dirs, by_role(Role::ClusterCa)).expect("the CA");
        cert.check_signed_by(&ca.cert.info, "ca")
            .expect("signed by ca");
        let info = &cert.info;
        assert_eq!(info.cn, "system:node:worker-1");
        assert_eq!(info.orgs, ["system:nodes"]);
        assert_eq!(info.dns_names, ["worker-1"]);
        assert_eq!(info.ips, request(&tree).ips);
        assert!(!info.is_ca);
        assert_eq!(served.files[0], tree.dirs.kubelet_dir.join("kubelet.key"));
    }

    #[test]
    fn what_was_there_is_backed_up_and_without_the_ca_key_nothing_is_written() {
        let tree = TestTree::written(&ecdsa_spec(&[]));
        fs::create_dir_all(&tree.dirs.kubelet_dir).unwrap();
        let old_cert = tree.dirs.kubelet_dir.join("kubelet.crt");
        fs::write(&old_cert, "self-signed").unwrap();
        let served = write_serving_cert(&tree.dirs, &request(&tree)).expect("written");
        let backup = served.kept.expect("a generation");
        assert_eq!(
            fs::read(backup.join("kubelet-pki/kubelet.crt")).unwrap(),
            b"self-signed"
        );
        let before = fs::read(&old_cert).unwrap();
        tree.remove("ca", |i| i == 0);
        let error = write_serving_cert(&tree.dirs, &request(&tree))
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains("ca.key is absent"), "{error}");
        assert_eq!(fs::read(&old_cert).unwrap(), before, "left alone");
    }

    #[test]
    fn the_kubelets_own_self_signed_pair_is_neither_shown_nor_renewed() {
        use crate::engine::expiry::ExpirationInfo;
        use crate::engine::renew::{Outcome, RenewRequest, renew};
        let tree = TestTree::written(&ecdsa_spec(&[]));
        let dir = &tree.dirs.kubelet_dir;
        fs::create_dir_all(dir).unwrap();
        let key = keys::generate(Algorithm::EcdsaP256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["worker-1".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        fs::write(dir.join("kubelet.crt"), cert.pem()).unwrap();
        fs::write(dir.join("kubelet.key"), keys::to_pem(&key).unwrap()).unwrap();
        let now = OffsetDateTime::now_utc();
        let info = ExpirationInfo::read(&tree.dirs, now).unwrap();
        assert!(info.entries().all(|e| e.name != "kubelet-serving"));
        let asked = RenewRequest {
            rows: crate::profile::renewable_rows(&["all".to_string()]).unwrap(),
            due_within: None,
            algorithm: None,
            validity: Duration::from_hours(24),
            backups: Backups {
                dir: tree.dirs.kubeconfig_dir.join("renewed"),
                keep: 5,
            },
            now,
            all: true,
        };
        let renewal = renew(&tree.dirs, &asked, &crate::engine::apply::unwatched).unwrap();
        let row = by_role(Role::KubeletServing);
        let foreign = Outcome::Foreign(dir.join("kubelet.crt"));
        assert!(renewal.outcomes.contains(&(row, foreign)));
        assert_eq!(
            fs::read_to_string(dir.join("kubelet.crt")).unwrap(),
            cert.pem()
        );
    }

    #[test]
    fn check_expiration_and_renew_know_it_only_where_it_exists() {
        use crate::engine::expiry::ExpirationInfo;
        use crate::engine::renew::{Outcome, RenewRequest, renew};
        let tree = TestTree::written(&ecdsa_spec(&[]));
        let names = |tree: &TestTree| -> Vec<String> {
            let info = ExpirationInfo::read(&tree.dirs, OffsetDateTime::now_utc()).unwrap();
            info.entries().map(|e| e.name.clone()).collect()
        };
        let renew_all = |tree: &TestTree| {
            let rows = crate::profile::renewable_rows(&["all".to_string()]).unwrap();
            let asked = RenewRequest {
                rows,
                due_within: None,
                algorithm: None,
                validity: Duration::from_hours(24),
                backups: Backups {
                    dir: tree.dirs.kubeconfig_dir.join("renewed"),
                    keep: 5,
                },
                now: OffsetDateTime::now_utc(),
                all: true,
            };
            renew(&tree.dirs, &asked, &crate::engine::apply::unwatched).unwrap()
        };
        assert!(!names(&tree).contains(&"kubelet-serving".to_string()));
        let renewal = renew_all(&tree);
        assert!(renewal.outcomes.iter().all(|(row, _)| !row.is_optional()));
        fs::create_dir_all(&tree.dirs.kubelet_dir).unwrap();
        write_serving_cert(&tree.dirs, &request(&tree)).expect("written");
        assert!(names(&tree).contains(&"kubelet-serving".to_string()));
        let before = fs::read(tree.dirs.kubelet_dir.join("kubelet.crt")).unwrap();
        let renewal = renew_all(&tree);
        let row = by_role(Role::KubeletServing);
        assert!(renewal.outcomes.contains(&(row, Outcome::Renewed)));
        let generation = renewal.kept.expect("a generation").generation;
        assert_eq!(
            fs::read(generation.join("kubelet-pki/kubelet.crt")).unwrap(),
            before
        );
        let renewed = reader::read_pair(&tree.dirs, row).unwrap().cert.unwrap();
        assert_eq!(renewed.info.dns_names, ["worker-1"]);
        assert_eq!(renewed.info.ips, request(&tree).ips);
        assert_eq!(renewed.info.cn, "system:node:worker-1");
    }
}
