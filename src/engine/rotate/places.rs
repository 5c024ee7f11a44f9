//! Where a signing row's trust lives, and how each place is rewritten to hold a given list
//! of certificates (or public keys): the row's trust file (`ca-bundle.crt`, `etcd/ca.crt`,
//! `front-proxy-ca.crt`, `sa.pub`) and the `certificate-authority-data` of the kubeconfigs
//! of the rows it signs (the cluster CA's five). The bootstrap manifests follow admin.conf
//! (`engine::bootstrap::manifests_after`). Reads through `tree::reader`; writes nothing.

use crate::cluster::kubeconfig::Kubeconfig;
use crate::pki::trust::{self, Anchor};
use crate::profile::{Kind, Profile, Trust};
use crate::tree::TreeDirs;
use crate::tree::problem::Problem;
use crate::tree::reader::{self, Checked};
use crate::tree::store::{FileWrite, PUBLIC_MODE, SECRET_MODE};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// What a place is.
#[derive(Clone, Debug)]
pub enum PlaceKind {
    /// The row's trust file, under the cert dir at this path.
    TrustFile(PathBuf),
    /// A kubeconfig of a row the CA signs, which embeds what its cluster trusts.
    Kubeconfig(&'static Profile, Box<Kubeconfig>),
}

/// One place of a row's trust, as found.
#[derive(Clone, Debug)]
pub struct Place {
    /// What it is.
    pub kind: PlaceKind,
    /// The file.
    pub path: PathBuf,
    /// What it holds, in order; empty for a separate trust file that does not exist.
    pub anchors: Vec<Anchor>,
}

impl Place {
    /// The write that makes the place hold `anchors`, in order.
    pub fn write(&self, dirs: &TreeDirs, anchors: &[&Anchor]) -> Result<FileWrite> {
        let pem = trust::to_pem(anchors.iter().copied());
        match &self.kind {
            PlaceKind::TrustFile(rel) => Ok(FileWrite {
                root: dirs.cert_dir.clone(),
                rel: rel.clone(),
                content: pem,
                mode: trust_file_mode(rel),
            }),
            PlaceKind::Kubeconfig(row, kubeconfig) => {
                let mut kubeconfig = kubeconfig.as_ref().clone();
                kubeconfig
                    .replace_cluster_ca(&pem)
                    .with_context(|| self.path.display().to_string())?;
                Ok(dirs.kubeconfig_write(row, kubeconfig.to_yaml()?.into_bytes()))
            }
        }
    }

    /// Whether it holds exactly `anchors`, in order.
    pub fn holds(&self, anchors: &[&Anchor]) -> bool {
        self.anchors.len() == anchors.len()
            && self.anchors.iter().zip(anchors).all(|(a, b)| a == *b)
    }

    /// The kubeconfig row, for a kubeconfig.
    pub fn kubeconfig_row(&self) -> Option<&'static Profile> {
        match &self.kind {
            PlaceKind::Kubeconfig(row, _) => Some(row),
            PlaceKind::TrustFile(_) => None,
        }
    }
}

/// The mode of a trust file: `sa.pub` is 0600 as kubeadm writes it, certificates 0644.
fn trust_file_mode(rel: &Path) -> u32 {
    match rel.extension().is_some_and(|e| e == "pub") {
        true => SECRET_MODE,
        false => PUBLIC_MODE,
    }
}

/// Every place of `row`'s trust: its trust file (read as holding nothing when a separate one
/// does not exist), then the kubeconfigs of the rows it signs that exist.
pub fn read_places(dirs: &TreeDirs, row: &'static Profile) -> Checked<Vec<Place>> {
    let Some(rel) = row.trust_file() else {
        return Ok(Vec::new());
    };
    let found = reader::read_anchors(dirs, row, &rel)?;
    let path = dirs.cert_dir.join(&rel);
    if found.is_none() && row.trust == Trust::InPlace {
        return Err(reader_missing(row, path));
    }
    let mut places = vec![Place {
        kind: PlaceKind::TrustFile(rel),
        path,
        anchors: found.map(|f| f.anchors).unwrap_or_default(),
    }];
    let kubeconfigs = row
        .signed_rows()
        .filter(|p| matches!(p.kind, Kind::Kubeconfig(_)));
    for signed in kubeconfigs {
        if let Some((path, kubeconfig, anchors)) = reader::read_kubeconfig_trust(dirs, signed)? {
            places.push(Place {
                kind: PlaceKind::Kubeconfig(signed, Box::new(kubeconfig)),
                path,
                anchors,
            });
        }
    }
    Ok(places)
}

/// The problem of a row whose own certificate or public key file is missing.
fn reader_missing(row: &Profile, path: PathBuf) -> Problem {
    match row.kind {
        Kind::KeyPair => Problem::Missing {
            path,
            hint: "a rotation needs the key pair in place".into(),
        },
        _ => Problem::CaMissing(path),
    }
}
