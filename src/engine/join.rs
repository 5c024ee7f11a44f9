//! `join`: discovering the cluster as the spec says (token or file), then what it leaves on
//! a worker: the cluster CA as `<cert-dir>/ca.crt` (kept when the same one is there, refused
//! when another one is) and kubeadm's `bootstrap-kubelet.conf` with the TLS bootstrap token.

use crate::cluster::bootstrap::{BootstrapToken, bootstrap_kubeconfig};
use crate::cluster::discovery::{self, Discovered, TokenDiscovery};
use crate::profile::{BOOTSTRAP_KUBECONFIG, Role, by_role};
use crate::spec::{Discovery, JoinSpec};
use crate::tree::TreeDirs;
use crate::tree::reader::read_file;
use crate::tree::store::{self, FileWrite};
use anyhow::{Result, bail};
use std::path::PathBuf;
use std::time::Duration;

/// What `join` wrote.
pub struct Joined {
    /// The worker's `ca.crt`.
    pub ca: PathBuf,
    /// Whether `ca.crt` was written (else the same file was already there).
    pub ca_written: bool,
    /// `bootstrap-kubelet.conf`.
    pub kubeconfig: PathBuf,
}

/// Discovers the cluster as `spec` says; `on_retry` hears about each failed attempt that
/// will be retried.
pub fn discover(
    spec: &JoinSpec,
    on_retry: &dyn Fn(&anyhow::Error, Duration),
) -> Result<Discovered> {
    match &spec.discovery {
        Discovery::File(source) => discovery::by_file(source, spec.timeout, on_retry),
        Discovery::Token {
            endpoint,
            token,
            pins,
        } => {
            let request = TokenDiscovery {
                endpoint: endpoint.clone(),
                token,
                pins,
                timeout: spec.timeout,
            };
            discovery::by_token(&request, on_retry)
        }
    }
}

/// Writes the worker's files for the `discovered` cluster and the TLS bootstrap `token`.
/// An existing `ca.crt` other than the discovered one is refused before anything is written.
pub fn write_worker_files(
    dirs: &TreeDirs,
    discovered: &Discovered,
    token: &BootstrapToken,
) -> Result<Joined> {
    let ca_row = by_role(Role::ClusterCa);
    let ca = FileWrite {
        content: discovered.ca_pem.clone(),
        ..dirs.cert_write(ca_row, Vec::new())
    };
    let ca_written = match read_file(&ca.root, &ca.rel)? {
        Some(existing) if existing == discovered.ca_pem => false,
        Some(_) => bail!(
            "{} exists and is not the CA of the discovered cluster; refusing to replace it",
            ca.path().display()
        ),
        None => true,
    };
    let kubeconfig = FileWrite {
        root: dirs.kubeconfig_dir.clone(),
        rel: BOOTSTRAP_KUBECONFIG.into(),
        content: bootstrap_kubeconfig(&discovered.server, &discovered.ca_pem, token)?.into_bytes(),
        mode: store::SECRET_MODE,
    };
    if ca_written {
        store::create_all(std::slice::from_ref(&ca))?;
    }
    store::replace(&kubeconfig)?;
    Ok(Joined {
        ca: ca.path(),
        ca_written,
        kubeconfig: kubeconfig.path(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testtree::{TestTree, ecdsa_spec};
    use std::fs;

    fn discovered(ca_pem: &[u8]) -> Discovered {
        Discovered {
            server: "https://10.0.0.1:6443".into(),
            ca_pem: ca_pem.to_vec(),
            warnings: vec![],
        }
    }

    #[test]
    fn a_worker_gets_the_ca_and_its_bootstrap_kubeconfig_and_keeps_a_ca_only_if_the_same() {
        let control_plane = TestTree::written(&ecdsa_spec(&[]));
        let ca_pem = fs::read(&control_plane.files_of("ca")[1]).expect("ca.crt");
        let token: BootstrapToken = "abcdef.0123456789abcdef".parse().expect("a token");
        let worker = TestTree::empty();
        let joined =
            write_worker_files(&worker.dirs, &discovered(&ca_pem), &token).expect("joined");
        assert!(joined.ca_written);
        assert_eq!(fs::read(&joined.ca).expect("ca.crt"), ca_pem);
        let kubeconfig = fs::read_to_string(&joined.kubeconfig).expect("written");
        assert!(
            kubeconfig.contains("token: abcdef.0123456789abcdef"),
            "{kubeconfig}"
        );
        let again = write_worker_files(&worker.dirs, &discovered(&ca_pem), &token).expect("again");
        assert!(!again.ca_written);
        let other = fs::read(&control_plane.files_of("front-proxy-ca")[1]).expect("another CA");
        fs::remove_file(&joined.kubeconfig).expect("removing");
        let error = write_worker_files(&worker.dirs, &discovered(&other), &token)
            .err()
            .expect("refused");
        assert!(
            error
                .to_string()
                .ends_with("is not the CA of the discovered cluster; refusing to replace it"),
            "{error}"
        );
        assert!(!joined.kubeconfig.exists(), "nothing written");
    }
}
