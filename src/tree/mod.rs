//! The disk: where a tree lives (`TreeDirs`), the one reader of what exists (`reader`), the
//! only writer (`store`) and how it makes its writes durable (`flush`), the lock that keeps
//! two writing runs apart (`lock`) and the completion of what a killed run left (`recovery`).

mod flush;
pub mod lock;
pub mod reader;
pub mod recovery;
pub mod store;

use crate::spec::{DEFAULT_CERT_DIR, DEFAULT_KUBECONFIG_DIR};
use std::path::PathBuf;

/// The directory below the kubeconfig dir where bootstrap manifests go by default.
const MANIFESTS_SUBDIR: &str = "bootstrap";

/// The directories of a tree.
#[derive(Clone, Debug)]
pub struct TreeDirs {
    /// Certificates and keys.
    pub cert_dir: PathBuf,
    /// Kubeconfig files.
    pub kubeconfig_dir: PathBuf,
}

impl TreeDirs {
    /// The directories given, or kubeadm's defaults.
    pub fn new(cert_dir: Option<PathBuf>, kubeconfig_dir: Option<PathBuf>) -> TreeDirs {
        TreeDirs {
            cert_dir: cert_dir.unwrap_or_else(|| DEFAULT_CERT_DIR.into()),
            kubeconfig_dir: kubeconfig_dir.unwrap_or_else(|| DEFAULT_KUBECONFIG_DIR.into()),
        }
    }

    /// `<kubeconfig-dir>/bootstrap`, where `init` and `token` write manifests by default.
    pub fn manifests_dir(&self) -> PathBuf {
        self.kubeconfig_dir.join(MANIFESTS_SUBDIR)
    }
}
