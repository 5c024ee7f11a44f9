//! What the worker-side commands print: tokens, join commands, the manifests written, and
//! what `join` wrote with the kubelet command that uses it.

use super::{manifest_line, stdout};
use crate::cluster::bootstrap::BootstrapToken;
use crate::engine::bootstrap::JoinCommand;
use crate::profile::{Role, by_role};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Prints a token, the result of `token generate` and `token create`.
pub fn print_token(token: &BootstrapToken) -> Result<()> {
    stdout(&format!("{}\n", token.expose()))
}

/// Prints the `kubepki join` line, then the same for `kubeadm join`.
pub fn print_join_commands(join: &JoinCommand) -> Result<()> {
    let args = format!(
        "{} --token {} --discovery-token-ca-cert-hash {}",
        join.endpoint,
        join.token.expose(),
        join.pin
    );
    stdout(&format!("kubepki join {args}\nkubeadm join {args}\n"))
}

/// Lists the manifest files written: on stdout when they are the result, else on stderr.
pub fn print_manifests(paths: &[PathBuf], to_stderr: bool) -> Result<()> {
    let text: String = paths.iter().map(|p| manifest_line(p)).collect();
    match to_stderr {
        true => {
            eprint!("{text}");
            Ok(())
        }
        false => stdout(&text),
    }
}

/// What `join` wrote.
#[derive(Debug)]
pub struct JoinReport {
    /// The worker's `ca.crt`.
    pub ca: PathBuf,
    /// Whether `ca.crt` was written (else the same file was already there).
    pub ca_written: bool,
    /// `bootstrap-kubelet.conf`.
    pub kubeconfig: PathBuf,
    /// The API server the kubelet will bootstrap against.
    pub server: String,
    /// `--node-name`, for the kubelet hint.
    pub node_name: Option<String>,
}

/// Prints what join wrote and how to start the kubelet with it.
pub fn print_join(join: &JoinReport) -> Result<()> {
    stdout(&join_text(join))
}

fn join_text(join: &JoinReport) -> String {
    let ca = match join.ca_written {
        true => format!(
            "[kubelet-start] Wrote the cluster CA to {}\n",
            join.ca.display()
        ),
        false => format!(
            "[kubelet-start] Using the existing cluster CA {}\n",
            join.ca.display()
        ),
    };
    let kubeconfig_dir = join.kubeconfig.parent().unwrap_or(Path::new("."));
    let node = join
        .node_name
        .as_ref()
        .map(|name| format!(" --hostname-override={name}"))
        .unwrap_or_default();
    format!(
        "{ca}[kubelet-start] Wrote the TLS bootstrap kubeconfig {} (API server {})\n\n\
         This node can now bootstrap its kubelet:\n\n  \
         kubelet --bootstrap-kubeconfig={} --kubeconfig={}{node} ...\n",
        join.kubeconfig.display(),
        join.server,
        join.kubeconfig.display(),
        kubeconfig_dir.join(by_role(Role::Kubelet).file).display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_join_report_names_the_files_and_the_kubelet_command() {
        let text = join_text(&JoinReport {
            ca: "/etc/kubernetes/pki/ca.crt".into(),
            ca_written: true,
            kubeconfig: "/etc/kubernetes/bootstrap-kubelet.conf".into(),
            server: "https://10.0.0.1:6443".into(),
            node_name: Some("worker1".into()),
        });
        assert_eq!(
            text,
            "[kubelet-start] Wrote the cluster CA to /etc/kubernetes/pki/ca.crt\n\
             [kubelet-start] Wrote the TLS bootstrap kubeconfig /etc/kubernetes/bootstrap-kubelet.conf (API server https://10.0.0.1:6443)\n\n\
             This node can now bootstrap its kubelet:\n\n  \
             kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf --hostname-override=worker1 ...\n"
        );
    }
}
