//! What the token and worker-side commands print: tokens, token lists, join commands, the
//! manifests written or removed, and what `join` wrote with the kubelet command that uses it.

use super::{Format, emit, manifest_line, note, quiet, report_text, serialized, stdout, tabulate};
use crate::cluster::bootstrap::{BootstrapToken, ExtraGroup, TokenRecord};
use crate::engine::bootstrap::JoinCommand;
use crate::engine::expiry::short_human_duration;
use crate::profile::{Role, by_role};
use anyhow::Result;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Prints a token, the result of `token generate` and `token create`.
pub fn print_token(token: &BootstrapToken) -> Result<()> {
    stdout(&format!("{}\n", token.expose()))
}

/// Prints kubeadm's `token list` table (tokens in full, as kubeadm's does: it is the
/// command's result), or the same as JSON.
pub fn print_token_list(tokens: &[TokenRecord], now: OffsetDateTime, format: Format) -> Result<()> {
    match format {
        Format::Text => emit(format, &token_table(tokens, now)),
        _ => {
            let list: Vec<_> = tokens.iter().map(|t| token_json(t, now)).collect();
            let body = serde_json::json!({ "tokens": list });
            stdout(&serialized("TokenList", &body, format)?.unwrap_or_default())
        }
    }
}

fn token_table(tokens: &[TokenRecord], now: OffsetDateTime) -> String {
    let header = [
        "TOKEN",
        "TTL",
        "EXPIRES",
        "USAGES",
        "DESCRIPTION",
        "EXTRA GROUPS",
    ];
    let rows = tokens
        .iter()
        .map(|t| {
            let (ttl, expires) = ttl_and_expiry(t, now);
            vec![
                t.token.expose(),
                ttl,
                expires,
                usages(t).join(","),
                t.description.clone().unwrap_or_else(|| "<none>".into()),
                groups(t).join(","),
            ]
        })
        .collect();
    tabulate(&header, rows)
}

fn token_json(token: &TokenRecord, now: OffsetDateTime) -> serde_json::Value {
    let (ttl, expires) = ttl_and_expiry(token, now);
    serde_json::json!({
        "token": token.token.expose(),
        "ttl": ttl,
        "expires": expires,
        "usages": usages(token),
        "description": token.description,
        "groups": groups(token),
    })
}

/// kubeadm's TTL and EXPIRES columns.
fn ttl_and_expiry(token: &TokenRecord, now: OffsetDateTime) -> (String, String) {
    match token.expires {
        None => ("<forever>".into(), "<never>".into()),
        Some(at) => (
            short_human_duration((at - now).whole_seconds()),
            at.format(&Rfc3339).unwrap_or_default(),
        ),
    }
}

fn usages(token: &TokenRecord) -> Vec<&'static str> {
    let mut names: Vec<&str> = token.usages.iter().map(|u| u.name()).collect();
    names.sort_unstable();
    names
}

fn groups(token: &TokenRecord) -> Vec<&str> {
    token.groups.iter().map(ExtraGroup::as_str).collect()
}

/// Says which token Secret manifests a deletion (or, `expired`, a pruning) removed: on
/// stdout when they are the result, else on stderr.
pub fn print_removed_tokens(removed: &[PathBuf], expired: bool, to_stderr: bool) -> Result<()> {
    let why = if expired { "expired " } else { "" };
    let text: String = removed
        .iter()
        .map(|path| {
            let path = path.display();
            format!("[bootstrap-token] Removed the {why}token Secret manifest {path}\n")
        })
        .collect();
    to_stdout_or_stderr(&text, to_stderr)
}

/// Says whose tokens `token list` shows: this host's manifests in `dir`, not the cluster's
/// Secrets, which may hold others.
pub fn token_list_scope(dir: &Path) {
    note(
        "bootstrap-token",
        &format!(
            "tokens with a Secret manifest in {} on this host; the cluster's own: kubectl -n \
             kube-system get secrets --field-selector type=bootstrap.kubernetes.io/token",
            dir.display()
        ),
    );
}

/// After `token delete`: the tokens still work until their Secrets leave the cluster, so
/// this prints the command that deletes them there (with `--quiet` too).
pub fn print_cluster_deletion(ids: &[String]) -> Result<()> {
    let secrets: Vec<String> = ids
        .iter()
        .map(|id| format!("bootstrap-token-{id}"))
        .collect();
    stdout(&format!(
        "[bootstrap-token] The tokens work until their Secrets are deleted from the cluster too:\n\
         kubectl -n kube-system delete secret {}\n",
        secrets.join(" ")
    ))
}

/// Prints the `kubepki join` line, then the same for `kubeadm join`.
pub fn print_join_commands(join: &JoinCommand) -> Result<()> {
    let pins: String = join
        .pins
        .iter()
        .map(|pin| format!(" --discovery-token-ca-cert-hash {pin}"))
        .collect();
    let args = format!("{} --token {}{pins}", join.endpoint, join.token.expose());
    stdout(&format!("kubepki join {args}\nkubeadm join {args}\n"))
}

/// Lists the manifest files written: on stdout when they are the result, else on stderr.
pub fn print_manifests(paths: &[PathBuf], to_stderr: bool) -> Result<()> {
    let text: String = paths.iter().map(|p| manifest_line(p)).collect();
    to_stdout_or_stderr(&text, to_stderr)
}

fn to_stdout_or_stderr(text: &str, to_stderr: bool) -> Result<()> {
    match to_stderr {
        true => {
            if !quiet() {
                eprint!("{text}");
            }
            Ok(())
        }
        false => report_text(text),
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
    report_text(&join_text(join))
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
