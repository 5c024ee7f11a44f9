//! Finishing what a killed run left in the tree (and in the kubelet's certificate
//! directory), before a writing command does anything else: a key and certificate caught
//! between their two renames are completed, the temp files of dead runs (in the tree, its
//! manifests and its backups) are removed, and a rollback that was marked under way is
//! finished (a mark naming no rollback's generation stops the run instead: nothing is
//! restored from an unknown place). Runs under the tree lock, so no other run is mid-write.

use crate::profile::cert_subdirs;
use crate::tree::TreeDirs;
use crate::tree::{generations, store};
use anyhow::Result;
use std::path::PathBuf;

/// Recovers the tree; returns the files whose replacement it completed.
pub fn recover(dirs: &TreeDirs) -> Result<Vec<PathBuf>> {
    let mut completed = Vec::new();
    for rel in cert_subdirs() {
        completed.extend(store::complete_staged(&dirs.cert_dir, &rel)?);
    }
    store::sweep_stale_temp_files_below(&dirs.cert_dir);
    store::sweep_stale_temp_files_below(&dirs.kubeconfig_dir);
    for row in generations::complete_rollback(dirs)? {
        completed.extend(dirs.paths_of(row));
    }
    Ok(completed)
}

/// Recovers the kubelet's certificate directory, where `kubelet serving-cert` and `certs
/// renew` replace the kubelet's serving pair; returns the files completed.
pub fn recover_kubelet_dir(dirs: &TreeDirs) -> Result<Vec<PathBuf>> {
    let completed = store::complete_staged(&dirs.kubelet_dir, std::path::Path::new(""))?;
    store::sweep_stale_temp_files_below(&dirs.kubelet_dir);
    Ok(completed)
}
