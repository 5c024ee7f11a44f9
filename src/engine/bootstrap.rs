//! The cluster objects that let workers join, kept in step with the tree: admin.conf's
//! cluster and the token Secrets of a manifests directory become the RBAC, `cluster-info`
//! and kube-proxy manifests, written only where their content changed.

use crate::cluster::kubeconfig::Kubeconfig;
use crate::cluster::manifests::cluster_manifests;
use crate::profile::by_name;
use crate::tree::TreeDirs;
use crate::tree::reader::read_tokens;
use crate::tree::store::{self, FileWrite};
use anyhow::{Context, Result, anyhow};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// admin.conf, whose cluster (server and CA) the manifests and join commands publish.
pub fn read_admin(dirs: &TreeDirs) -> Result<Kubeconfig> {
    let file = admin_file()?;
    let path = dirs.kubeconfig_dir.join(file);
    let bytes = store::read_optional(&dirs.kubeconfig_dir, Path::new(file))?
        .ok_or_else(|| anyhow!("{} is missing: run kubepki init first", path.display()))?;
    parse_admin(&bytes, &path)
}

/// admin.conf as the tree holds it once `new` files are written: the new one if it is among
/// them, else the one on disk.
pub fn admin_after(dirs: &TreeDirs, new: &[FileWrite]) -> Result<Kubeconfig> {
    let file = Path::new(admin_file()?);
    match new
        .iter()
        .find(|write| write.root == dirs.kubeconfig_dir && write.rel == file)
    {
        Some(write) => parse_admin(&write.content, &write.path()),
        None => read_admin(dirs),
    }
}

/// The file name of admin.conf, from the table.
fn admin_file() -> Result<&'static str> {
    Ok(by_name("admin")
        .ok_or_else(|| anyhow!("internal error: no admin row"))?
        .file)
}

fn parse_admin(bytes: &[u8], path: &Path) -> Result<Kubeconfig> {
    Kubeconfig::parse(bytes)
        .and_then(|admin| admin.check_cluster().map(|()| admin))
        .with_context(|| path.display().to_string())
}

/// Writes the cluster manifests (RBAC, cluster-info signed by the tokens of `dir`, kube-proxy)
/// into `dir`, mode 0600, leaving files that already hold the same content; returns those written.
pub fn write_manifests(dirs: &TreeDirs, dir: &Path, now: OffsetDateTime) -> Result<Vec<PathBuf>> {
    store::replace_changed(&manifests(&read_admin(dirs)?, dir, now)?)
}

/// The cluster manifest files for the cluster of `admin` and the tokens of `dir`, mode 0600.
pub fn manifests(admin: &Kubeconfig, dir: &Path, now: OffsetDateTime) -> Result<Vec<FileWrite>> {
    let tokens = read_tokens(dir)?;
    let files: Vec<FileWrite> = cluster_manifests(admin, &tokens, now)?
        .into_iter()
        .map(|(name, yaml)| FileWrite {
            root: dir.to_path_buf(),
            rel: name.into(),
            content: yaml.into_bytes(),
            mode: store::SECRET_MODE,
        })
        .collect();
    Ok(files)
}
