//! What `kubepki init phase control-plane|etcd` and `init --manifests` print: kubeadm's
//! `[control-plane]` / `[etcd]` lines, one a manifest, or one JSON document.

use super::{Format, stdout};
use anyhow::Result;
use serde::Serialize;
use std::path::PathBuf;

/// One static pod manifest and what became of it.
#[derive(Debug, Serialize)]
pub struct PodWritten {
    /// The component.
    pub component: &'static str,
    /// The manifest's path.
    pub path: PathBuf,
    /// `written`, `unchanged` (it already held this content) or `would write` (dry run).
    pub action: &'static str,
}

/// Prints the manifests in `format`.
pub fn print_static_pods(pods: &[PodWritten], format: Format) -> Result<()> {
    let text = match format {
        Format::Json => {
            serde_json::to_string_pretty(&serde_json::json!({"manifests": pods}))? + "\n"
        }
        Format::Yaml => serde_yaml::to_string(&serde_json::json!({"manifests": pods}))?,
        Format::Text => pods
            .iter()
            .map(|pod| {
                let group = match pod.component {
                    "etcd" => "etcd",
                    _ => "control-plane",
                };
                let verb = match pod.action {
                    "written" => "Wrote",
                    "unchanged" => "Kept (unchanged)",
                    _ => "Would write",
                };
                format!(
                    "[{group}] {verb} static Pod manifest for component {} to {:?}\n",
                    pod.component,
                    pod.path.display().to_string()
                )
            })
            .collect(),
    };
    stdout(&text)
}
