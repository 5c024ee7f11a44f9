//! The disk: where a tree lives (`TreeDirs`), the one reader of what exists (`reader`), the
//! only writer (`store`), the lock that keeps two writing runs apart (`lock`, naming a holder
//! through `holder`) and the completion of what a killed run left (`recovery`).

pub mod holder;
pub mod lock;
pub mod problem;
pub mod reader;
pub mod recovery;
pub mod store;

use crate::profile::{Kind, Profile};
use crate::spec::{DEFAULT_CERT_DIR, DEFAULT_KUBECONFIG_DIR};
use std::path::PathBuf;
use store::{FileWrite, PUBLIC_MODE, SECRET_MODE};

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

    /// The full paths of a row's files, key first.
    pub fn paths_of(&self, row: &Profile) -> Vec<PathBuf> {
        if let Kind::Kubeconfig(_) = row.kind {
            return vec![self.kubeconfig_dir.join(row.file)];
        }
        [row.key_file(), row.cert_file(), row.pub_file()]
            .into_iter()
            .flatten()
            .map(|rel| self.cert_dir.join(rel))
            .collect()
    }

    /// The write of a row's private key file (mode 0600).
    pub fn key_write(&self, row: &Profile, pem: Vec<u8>) -> FileWrite {
        self.cert_dir_write(row.key_file(), pem, SECRET_MODE)
    }

    /// The write of a row's certificate file (mode 0644).
    pub fn cert_write(&self, row: &Profile, pem: Vec<u8>) -> FileWrite {
        self.cert_dir_write(row.cert_file(), pem, PUBLIC_MODE)
    }

    /// The write of a key pair row's public key file (mode 0600, as kubeadm's `sa.pub`).
    pub fn public_key_write(&self, row: &Profile, pem: Vec<u8>) -> FileWrite {
        self.cert_dir_write(row.pub_file(), pem, SECRET_MODE)
    }

    /// The write of a kubeconfig row's file (mode 0600).
    pub fn kubeconfig_write(&self, row: &Profile, yaml: Vec<u8>) -> FileWrite {
        FileWrite {
            root: self.kubeconfig_dir.clone(),
            rel: row.file.into(),
            content: yaml,
            mode: SECRET_MODE,
        }
    }

    fn cert_dir_write(&self, rel: Option<PathBuf>, content: Vec<u8>, mode: u32) -> FileWrite {
        FileWrite {
            root: self.cert_dir.clone(),
            rel: rel.unwrap_or_default(),
            content,
            mode,
        }
    }
}
