//! What `certs bundle export|import` print: the bundle itself when it goes to stdout, else a
//! line per file, and what to do next. Never the certificate key, which only the command
//! line holds.

use super::{note, report_text};
use crate::cluster::bundle::{NAMESPACE, SECRET_NAME};
use crate::engine::bundle::{Export, Imported};
use crate::tree::TreeDirs;
use anyhow::Result;
use std::path::Path;

/// Says which shared files the tree lacks (an external CA's key): their entries are empty.
pub fn bundle_absent(export: &Export) {
    for path in &export.absent {
        note(
            "bundle",
            &format!(
                "{} is absent: its entry is empty, as kubeadm leaves it (an external CA's key)",
                path.display()
            ),
        );
    }
}

/// What export wrote to `path`: the Secret alone, or (`secret`) with its RBAC, to apply.
pub fn print_bundle_written(export: &Export, path: &Path, secret: bool) -> Result<()> {
    let sealed = export.sealed.len();
    let what = match secret {
        true => "the kubeadm-certs Secret with its Role and RoleBinding",
        false => "the kubeadm-certs bundle",
    };
    let mut text = format!(
        "[bundle] Wrote {}: {what}, {sealed} files sealed with the certificate key\n",
        path.display()
    );
    if let Some(record) = &export.settings {
        text.push_str(&format!(
            "[bundle] Sealed the cluster's settings of {} too: import records them on the \
             other host\n",
            record.display()
        ));
    }
    if secret {
        text.push_str(&format!(
            "[bundle] Once applied, it stays until deleted (kubeadm's expires with a 2-hour \
             token): kubectl -n {NAMESPACE} delete secret {SECRET_NAME} when the hosts have \
             joined\n"
        ));
    }
    report_text(&text)
}

/// What import did with each file, and the `init` that comes next.
pub fn print_import(imported: &Imported, dirs: &TreeDirs) -> Result<()> {
    for entry in &imported.skipped {
        note(
            "bundle",
            &format!(
                "not written: {entry}, an external etcd's file outside the tree (copy it where \
                 etcd.external names it)"
            ),
        );
    }
    if let (Some(backup), true) = (&imported.generation, imported.replaced_ca) {
        note(
            "bundle",
            &format!(
                "WARNING: a CA was replaced (the old one is in {}): what it signed no longer \
                 verifies, and init refuses it until it is deleted",
                backup.display()
            ),
        );
    }
    let mut text = String::new();
    for path in &imported.created {
        text.push_str(&format!("[bundle] Wrote {}\n", path.display()));
    }
    for path in &imported.kept {
        text.push_str(&format!("[bundle] Kept {} (identical)\n", path.display()));
    }
    for path in &imported.replaced {
        text.push_str(&format!("[bundle] Replaced {}\n", path.display()));
    }
    if let Some(generation) = &imported.generation {
        text.push_str(&format!(
            "[bundle] The replaced files are backed up in {} (`kubepki certs rollback` restores them)\n",
            generation.display()
        ));
    }
    if let Some(record) = &imported.recorded {
        text.push_str(&format!(
            "[bundle] Recorded the cluster's settings (endpoint, SANs, networks, algorithm, \
             validities) in {}\n",
            record.display()
        ));
    }
    text.push_str(&format!(
        "\nThe shared CAs and keys are in place. Make this host's own certificates and \
         kubeconfigs with:\n\n  {}\n",
        dirs.command("init --node-name <name> --apiserver-advertise-address <address>")
    ));
    report_text(&text)
}
