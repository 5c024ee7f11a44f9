//! `kubelet repair`: the way back for a node whose `kubelet.conf` no longer works (an
//! embedded client certificate expired: kubeadm's `certs renew` leaves it out). On the node,
//! when the kubelet's rotated `kubelet-client-current.pem` is valid (the node's, current,
//! signed by the cluster CA, with its key), `kubelet.conf` is rewritten to point at it, as
//! the kubelet writes it after TLS bootstrapping; the old file is backed up first. Else, on a
//! control-plane host (the cluster CA's key is there), a `kubelet.conf` for the node with a
//! fresh embedded `system:node:<name>` certificate is made, through the kubelet row, to copy
//! to the node.

use super::drift;
use super::issue::Capped;
use super::renew::{Backups, keep_row, prune};
use super::user::{UserRequest, kubeconfig_of};
use crate::cluster::kubeconfig::{Kubeconfig, select_cluster};
use crate::duration::Duration;
use crate::profile::{BOOTSTRAP_KUBECONFIG, Role, by_role};
use crate::tree::TreeDirs;
use crate::tree::reader::{self, FoundCa, RotatedClient};
use crate::tree::store;
use anyhow::{Result, anyhow, bail};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// What `kubelet repair` was asked for.
pub struct RepairRequest {
    /// The node.
    pub node: String,
    /// The API server URL, when given.
    pub server: Option<String>,
    /// Validity of a new certificate (control-plane host).
    pub validity: Duration,
    /// Where a replaced `kubelet.conf` is kept first, as a generation.
    pub backups: Backups,
    /// The one "now" of this run.
    pub now: OffsetDateTime,
}

/// What `kubelet repair` did.
pub enum Repaired {
    /// On the node: `kubelet.conf` points at the rotated certificate.
    Repointed {
        /// `kubelet.conf`.
        kubeconfig: PathBuf,
        /// `kubelet-client-current.pem`.
        pem: PathBuf,
        /// When that certificate ends.
        not_after: OffsetDateTime,
        /// The generation keeping the old `kubelet.conf`, when one was replaced.
        kept: Option<PathBuf>,
        /// Whether `kubelet.conf` already was exactly that (nothing written).
        unchanged: bool,
    },
    /// On a control-plane host: a new `kubelet.conf` for the node.
    Issued {
        /// Its YAML.
        yaml: Vec<u8>,
        /// Why the rotated certificate could not be used.
        why: String,
        /// Set when its certificate ends with the cluster CA, earlier than asked.
        capped: Option<Capped>,
    },
}

/// Repairs the kubelet.conf of `request.node` in the tree `dirs`.
pub fn repair(dirs: &TreeDirs, request: &RepairRequest) -> Result<Repaired> {
    let ca_row = by_role(Role::ClusterCa);
    let ca = reader::read_ca(dirs, ca_row)?;
    let why = match usable_rotated(dirs, &ca, request) {
        Ok(rotated) => return repoint(dirs, &ca, &rotated, request),
        Err(why) => why,
    };
    if ca.is_external() {
        let ca_key = dirs
            .root_of(ca_row)
            .join(ca_row.key_file().unwrap_or_default());
        bail!(
            "cannot repair kubelet.conf: {why}, and {} is absent, so no new certificate can be \
             signed here (run this on a control-plane host, or let the kubelet bootstrap again)",
            ca_key.display()
        );
    }
    let row = by_role(Role::Kubelet);
    let user = UserRequest {
        name: row.common_name_of(&request.node),
        groups: row.orgs.iter().map(|o| o.to_string()).collect(),
        validity: request.validity,
        server: request.server.clone(),
        algorithm: None,
        cluster_name: None,
        now: request.now,
    };
    let (yaml, capped) = kubeconfig_of(row, dirs, &user)?;
    Ok(Repaired::Issued { yaml, why, capped })
}

/// The rotated certificate, when it is the node's, current, signed by the cluster CA and
/// beside its key; else why not.
fn usable_rotated(
    dirs: &TreeDirs,
    ca: &FoundCa,
    request: &RepairRequest,
) -> Result<RotatedClient, String> {
    let rotated = reader::read_rotated_client(dirs)
        .map_err(|problem| problem.to_string())?
        .ok_or_else(|| {
            format!(
                "{} is not there",
                dirs.kubelet_dir
                    .join(crate::profile::KUBELET_CLIENT_CURRENT)
                    .display()
            )
        })?;
    let row = by_role(Role::Kubelet);
    let (cert, path) = (&rotated.cert, rotated.path().display());
    let wanted = row.common_name_of(&request.node);
    if cert.info.cn != wanted {
        return Err(format!("{path} is {}'s, not {wanted}'s", cert.info.cn));
    }
    // drift's organizations rule and the signer rule, as everywhere else.
    if drift::organizations(row, &cert.info).is_some() {
        return Err(format!(
            "{path} is in the group(s) {}, not {}",
            cert.info.orgs.join(", "),
            row.orgs.join(", ")
        ));
    }
    let issuer = row.issuer.unwrap_or_default();
    cert.check_current(request.now)
        .and_then(|()| cert.check_signed_by_any(&ca.trust, issuer))
        .and_then(|()| rotated.key.check_belongs_to(cert))
        .map_err(|problem| problem.to_string())?;
    Ok(rotated)
}

/// Rewrites `kubelet.conf` to point at `rotated`, with the server and CA of the kubelet.conf
/// or bootstrap-kubelet.conf there (`--server` first); the old file backed up.
fn repoint(
    dirs: &TreeDirs,
    ca: &FoundCa,
    rotated: &RotatedClient,
    request: &RepairRequest,
) -> Result<Repaired> {
    let row = by_role(Role::Kubelet);
    let cluster = [row.file, BOOTSTRAP_KUBECONFIG]
        .into_iter()
        .find_map(|file| {
            let bytes = reader::read_file(&dirs.kubeconfig_dir, Path::new(file)).ok()??;
            select_cluster(&bytes).ok()
        });
    let server = match (&request.server, &cluster) {
        (Some(server), _) => server.clone(),
        (None, Some(cluster)) => cluster.server.clone(),
        (None, None) => bail!(
            "no server for {}: neither it nor {} names one; pass --server URL",
            dirs.kubeconfig_dir.join(row.file).display(),
            dirs.bootstrap_kubeconfig().display()
        ),
    };
    let ca_pem = match cluster.and_then(|c| c.ca_pem) {
        Some(pem) => pem,
        None => pem_of(&ca.cert.info.der),
    };
    let pem = std::path::absolute(rotated.path())
        .map_err(|e| anyhow!("{}: {e}", rotated.path().display()))?;
    let yaml = Kubeconfig::with_client_file(&server, &ca_pem, &pem.to_string_lossy()).to_yaml()?;
    let file = dirs.kubeconfig_write(row, yaml.into_bytes());
    let existing = reader::read_file(&dirs.kubeconfig_dir, Path::new(row.file))?;
    let unchanged = existing.as_deref() == Some(file.content.as_slice());
    let kept = match existing.is_some() && !unchanged {
        true => Some(keep_row(
            dirs,
            &request.backups,
            row,
            "kubelet repair",
            &format!("pointed at {}", pem.display()),
            request.now,
        )?),
        false => None,
    };
    if !unchanged {
        store::replace(&file)?;
        prune(&request.backups)?;
    }
    Ok(Repaired::Repointed {
        kubeconfig: file.path(),
        pem,
        not_after: rotated.cert.info.not_after,
        kept,
        unchanged,
    })
}

/// Puts `yaml` (an issued kubelet.conf) in place of the tree's own kubelet.conf, when
/// `kubelet repair --out` names it: the old one is kept first as a generation, as renew
/// keeps what it replaces. Returns the generation, if there was a file to keep.
pub fn replace_kubelet_conf(
    dirs: &TreeDirs,
    yaml: Vec<u8>,
    request: &RepairRequest,
) -> Result<Option<PathBuf>> {
    let row = by_role(Role::Kubelet);
    let file = dirs.kubeconfig_write(row, yaml);
    let existing = reader::read_file(&dirs.kubeconfig_dir, Path::new(row.file))?;
    let kept = match existing {
        Some(_) => Some(keep_row(
            dirs,
            &request.backups,
            row,
            "kubelet repair",
            "a new certificate signed by the cluster CA",
            request.now,
        )?),
        None => None,
    };
    store::replace(&file)?;
    prune(&request.backups)?;
    Ok(kept)
}

fn pem_of(der: &[u8]) -> Vec<u8> {
    crate::pki::pem::encode("CERTIFICATE", der).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::issue::{By, SigningCa, issue};
    use crate::pki::keys::{self, Algorithm};
    use crate::testtree::{TestTree, ecdsa_spec};
    use std::fs;

    fn request(tree: &TestTree, node: &str) -> RepairRequest {
        RepairRequest {
            node: node.into(),
            server: None,
            validity: Duration::from_hours(24),
            backups: Backups {
                dir: tree.dirs.kubeconfig_dir.join("backup"),
                keep: 5,
            },
            now: OffsetDateTime::now_utc(),
        }
    }

    /// Writes `<kubelet-dir>/kubelet-client-<n>.pem` for `cn`, signed by the tree's CA and
    /// ending after `hours`, and `kubelet-client-current.pem` linking to it.
    fn rotated(tree: &TestTree, cn: &str, hours: i64) {
        rotated_in(tree, cn, &["system:nodes"], hours);
    }

    /// `rotated`, in the groups `groups`.
    fn rotated_in(tree: &TestTree, cn: &str, groups: &[&str], hours: i64) {
        let ca = reader::read_ca(&tree.dirs, by_role(Role::ClusterCa)).unwrap();
        let key = ca.signing_key().unwrap().unwrap();
        let signer = SigningCa::new(ca.cert.info.clone(), key).unwrap();
        let row = by_role(Role::Kubelet);
        let now = OffsetDateTime::now_utc();
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let mut request = row.user_request(cn, &groups, &signer.cert, now);
        request.not_before = now - time::Duration::hours(48);
        request.not_after = now + time::Duration::hours(hours);
        let key = keys::generate(Algorithm::EcdsaP256).unwrap();
        let issued = issue(row, &request, key, By::Ca(&signer)).unwrap();
        let dir = &tree.dirs.kubelet_dir;
        fs::create_dir_all(dir).unwrap();
        let file = dir.join(format!("kubelet-client-{hours}.pem"));
        fs::write(&file, [issued.cert_pem, issued.key_pem].concat()).unwrap();
        let link = dir.join("kubelet-client-current.pem");
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&file, &link).unwrap();
    }

    #[test]
    fn a_valid_rotated_certificate_is_pointed_at_and_the_old_file_kept() {
        let tree = TestTree::written(&ecdsa_spec(&[]));
        rotated(&tree, "system:node:cp1", 24);
        let old = fs::read(tree.dirs.kubeconfig_dir.join("kubelet.conf")).unwrap();
        let repaired = repair(&tree.dirs, &request(&tree, "cp1")).expect("repaired");
        let Repaired::Repointed {
            kubeconfig,
            pem,
            kept,
            unchanged,
            ..
        } = repaired
        else {
            panic!("not repointed");
        };
        assert!(!unchanged);
        assert_eq!(
            pem,
            tree.dirs.kubelet_dir.join("kubelet-client-current.pem")
        );
        let backup = kept.expect("a generation");
        assert_eq!(fs::read(backup.join("kubelet.conf")).unwrap(), old);
        let found = reader::read_kubeconfig(&tree.dirs, by_role(Role::Kubelet))
            .unwrap()
            .unwrap();
        assert!(matches!(found.client, reader::Client::Pointed(_)));
        assert_eq!(found.cert().info.cn, "system:node:cp1");
        assert_eq!(
            found.kubeconfig.server().unwrap(),
            "https://192.168.1.10:6443"
        );
        assert_eq!(found.path, kubeconfig);
        let again = repair(&tree.dirs, &request(&tree, "cp1")).expect("again");
        assert!(matches!(
            again,
            Repaired::Repointed {
                unchanged: true,
                ..
            }
        ));
    }

    #[test]
    fn an_unusable_rotated_certificate_makes_a_control_plane_host_issue_one() {
        let tree = TestTree::written(&ecdsa_spec(&[]));
        let nodes: &[&str] = &["system:nodes"];
        for (cn, groups, hours, why) in [
            ("system:node:cp1", nodes, -1, "expired on"),
            (
                "system:node:cp1",
                &["system:nodes", "system:masters"],
                24,
                "is in the group(s) system:nodes, system:masters, not system:nodes",
            ),
            (
                "system:node:other",
                nodes,
                24,
                "is system:node:other's, not system:node:cp1's",
            ),
        ] {
            rotated_in(&tree, cn, groups, hours);
            let repaired = repair(&tree.dirs, &request(&tree, "cp1")).expect("issued");
            let Repaired::Issued {
                yaml, why: said, ..
            } = repaired
            else {
                panic!("not issued");
            };
            assert!(said.contains(why), "{said}");
            let creds = Kubeconfig::parse(&yaml)
                .and_then(|k| k.client_credentials())
                .unwrap();
            let cert = crate::pki::inspect::CertInfo::parse(
                crate::pki::pem::first_certificate(&creds.cert_pem).unwrap(),
            )
            .unwrap();
            assert_eq!(
                (cert.cn.as_str(), cert.orgs.as_slice()),
                ("system:node:cp1", &["system:nodes".to_string()][..])
            );
        }
        tree.remove("ca", |i| i == 0);
        let error = repair(&tree.dirs, &request(&tree, "cp1"))
            .err()
            .expect("refused")
            .to_string();
        assert!(
            error.contains("is system:node:other's") && error.contains("ca.key is absent"),
            "{error}"
        );
    }

    #[test]
    fn a_link_out_of_the_kubelet_directory_is_not_followed() {
        let tree = TestTree::written(&ecdsa_spec(&[]));
        fs::create_dir_all(&tree.dirs.kubelet_dir).unwrap();
        let outside = tree.dirs.kubeconfig_dir.join("elsewhere.pem");
        fs::write(&outside, "x").unwrap();
        std::os::unix::fs::symlink(
            &outside,
            tree.dirs.kubelet_dir.join("kubelet-client-current.pem"),
        )
        .unwrap();
        tree.remove("ca", |i| i == 0);
        let error = repair(&tree.dirs, &request(&tree, "cp1"))
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains("not followed"), "{error}");
    }
}
