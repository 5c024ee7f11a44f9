//! What `certs renew` prints: each row's outcome, where the old files went, and which
//! components must restart for which files.

use super::{Format, emit, serialized};
use crate::duration::Duration;
use crate::engine::renew::{Kept, Outcome, Renewal};
use crate::profile::{Component, Group, Profile, Scope};
use crate::tree::TreeDirs;
use crate::tree::generations::Held;
use anyhow::Result;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Prints what `certs renew` did, then which components must restart for which files, as
/// text or as a `Renewal` document.
pub fn print_renewal(
    renewal: &Renewal,
    due_within: Option<Duration>,
    format: Format,
) -> Result<()> {
    let text = match serialized("Renewal", &RenewalDocument::of(renewal), format)? {
        Some(text) => text,
        None => renewal_text(renewal, due_within),
    };
    emit(format, &text)
}

/// `certs renew -o json|yaml`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RenewalDocument<'a> {
    /// How many certificates were renewed.
    renewed: usize,
    /// One entry per certificate considered, in the table's order.
    certificates: Vec<OutcomeDocument<'a>>,
    /// The generation holding the replaced files, when anything was replaced.
    generation: Option<&'a Path>,
    /// Old generations removed.
    pruned: &'a [PathBuf],
    /// The components to restart, each with the files it reads that were renewed.
    restart: Vec<RestartDocument>,
}

/// One certificate's outcome.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutcomeDocument<'a> {
    name: &'static str,
    /// renewed, not-due, missing, delegated, external, foreign, broken or not-later.
    outcome: &'static str,
    /// not-due: the time left, kubeadm style.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in: Option<&'a str>,
    /// delegated or foreign: the file that was left alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a Path>,
    /// external: the CA whose key is absent; not-later: the CA to rotate first.
    #[serde(skip_serializing_if = "Option::is_none")]
    ca: Option<&'static str>,
    /// broken: what is wrong, one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<&'a str>,
    /// not-later: when the CA ends, which would cap a successor (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_ends: Option<String>,
}

/// A component to restart.
#[derive(Serialize)]
struct RestartDocument {
    component: &'static str,
    files: Vec<&'static str>,
}

impl<'a> RenewalDocument<'a> {
    fn of(renewal: &'a Renewal) -> RenewalDocument<'a> {
        let renewed = renewed_rows(renewal);
        RenewalDocument {
            renewed: renewed.len(),
            certificates: renewal
                .outcomes
                .iter()
                .map(|(row, outcome)| OutcomeDocument::of(row, outcome))
                .collect(),
            generation: renewal.kept.as_ref().map(|k| k.generation.as_path()),
            pruned: renewal
                .kept
                .as_ref()
                .map_or(&[], |k| k.pruned.removed.as_slice()),
            restart: restarts(&renewed)
                .into_iter()
                .map(|(component, files)| RestartDocument { component, files })
                .collect(),
        }
    }
}

impl<'a> OutcomeDocument<'a> {
    fn of(row: &Profile, outcome: &'a Outcome) -> OutcomeDocument<'a> {
        let (name, document) = (row.cert_name(), OutcomeDocument::empty);
        match outcome {
            Outcome::Renewed => document(name, "renewed"),
            Outcome::NotDue(left) => OutcomeDocument {
                expires_in: Some(left),
                ..document(name, "not-due")
            },
            Outcome::Missing => document(name, "missing"),
            Outcome::Delegated(path) => OutcomeDocument {
                file: Some(path),
                ..document(name, "delegated")
            },
            Outcome::External(ca) => OutcomeDocument {
                ca: Some(ca),
                ..document(name, "external")
            },
            Outcome::Foreign(path) => OutcomeDocument {
                file: Some(path),
                ..document(name, "foreign")
            },
            Outcome::Broken(problem) => OutcomeDocument {
                problem: Some(problem),
                ..document(name, "broken")
            },
            Outcome::NotLater(ca, end) => OutcomeDocument {
                ca: Some(ca),
                ca_ends: end
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok(),
                ..document(name, "not-later")
            },
        }
    }

    fn empty(name: &'static str, outcome: &'static str) -> OutcomeDocument<'a> {
        OutcomeDocument {
            name,
            outcome,
            expires_in: None,
            file: None,
            ca: None,
            problem: None,
            ca_ends: None,
        }
    }
}

/// The rows a run renewed.
fn renewed_rows(renewal: &Renewal) -> Vec<&'static Profile> {
    renewal
        .outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::Renewed)
        .map(|(p, _)| *p)
        .collect()
}

fn renewal_text(renewal: &Renewal, due_within: Option<Duration>) -> String {
    let mut text: String = renewal
        .outcomes
        .iter()
        .map(|(row, outcome)| outcome_line(row, outcome))
        .collect();
    let renewed = renewed_rows(renewal);
    match (&renewal.kept, renewed.is_empty()) {
        (_, true) => text.push_str(&match due_within {
            Some(window) => {
                format!("\nNothing to renew: no certificate expires within {window}.\n")
            }
            None => "\nNothing was renewed.\n".to_string(),
        }),
        (Some(kept), false) => {
            text.push('\n');
            text.push_str(&kept_text(kept));
            text.push_str(&restart_hints(&renewed, "Done renewing certificates."));
        }
        (None, false) => {}
    }
    text
}

/// Says on stderr, for each certificate asked for by name that is missing, the `init
/// phase` that writes it.
pub fn missing_notice(missing: &[&Profile], dirs: &TreeDirs) {
    for row in missing {
        let group = match row.group() {
            Group::Certs => "certs",
            Group::Kubeconfig => "kubeconfig",
        };
        let phase = match row.scope {
            Scope::ControlPlane => dirs.command(&format!("init phase {group} {}", row.name)),
            Scope::Kubelet => "kubepki kubelet serving-cert".to_string(),
        };
        eprintln!(
            "kubepki: missing: {}, so it cannot be renewed (`{phase}` writes it)",
            row.cert_name()
        );
    }
}

/// Where the replaced files went, and the generations pruned.
pub(super) fn kept_text(kept: &Kept) -> String {
    let mut text = format!(
        "Old files were backed up in {} (`kubepki certs rollback` restores them)\n",
        kept.generation.display()
    );
    for pruned in &kept.pruned.removed {
        text.push_str(&format!(
            "Removed the old generation {}\n",
            pruned.display()
        ));
    }
    text.push_str(&held_text(&kept.pruned.held));
    text
}

/// The generations `--keep` left because they hold a CA's or `sa`'s key, and how to remove
/// one.
pub(super) fn held_text(held: &[Held]) -> String {
    held.iter()
        .map(|held| {
            let id = held.path.file_name().unwrap_or_default().to_string_lossy();
            format!(
                "Kept the old generation {} beyond --keep: it holds the replaced key of {} \
                 (maybe its only copy); `kubepki certs generations --remove {id}` removes it\n",
                held.path.display(),
                held.keys.join(", ")
            )
        })
        .collect()
}

fn outcome_line(row: &Profile, outcome: &Outcome) -> String {
    let long = row.long_name;
    match outcome {
        Outcome::Renewed => format!("[renew] {long} renewed\n"),
        Outcome::NotDue(left) => format!("[renew] {long}: not due (expires in {left}), skipped\n"),
        Outcome::Missing => format!("MISSING! {long}\n"),
        Outcome::Delegated(path) => format!(
            "[renew] {}: left alone, it points at the kubelet's own rotated certificate {}\n",
            row.cert_name(),
            path.display()
        ),
        Outcome::External(ca) => format!(
            "[renew] {long} can't be renewed: its CA {ca:?} is external (its key is absent)\n"
        ),
        Outcome::NotLater(ca, end) => format!(
            "[renew] {long}: not renewed, a new certificate would end no later than this one: \
             its CA {ca:?} ends on {}; rotate the CA first (kubepki certs rotate-ca {ca} trust)\n",
            end.date()
        ),
        Outcome::Broken(problem) => {
            format!("[renew] {long} NOT renewed, it is broken: {problem}\n")
        }
        Outcome::Foreign(path) => format!(
            "[renew] {}: left alone, {} is not signed by {:?} (the kubelet's own self-signed certificate?)\n",
            row.cert_name(),
            path.display(),
            row.issuer.unwrap_or_default()
        ),
    }
}

/// `done`, then which components must restart for which of `renewed`'s files.
pub(super) fn restart_hints(renewed: &[&'static Profile], done: &str) -> String {
    let restarts = restarts(renewed);
    if restarts.is_empty() {
        return format!("{done} No component needs a restart.\n");
    }
    let mut text = format!("{done} Restart these components so that they use the new files:\n");
    for (component, names) in restarts {
        text.push_str(&format!("  {component}: {}\n", names.join(", ")));
    }
    text
}

/// Each component that reads one of `renewed`'s files (by name), with those files.
fn restarts(renewed: &[&'static Profile]) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut components: Vec<&'static str> = renewed
        .iter()
        .flat_map(|p| p.readers())
        .map(Component::name)
        .collect();
    components.sort_unstable();
    components.dedup();
    components
        .into_iter()
        .map(|component| {
            let names = renewed
                .iter()
                .filter(|p| p.readers().iter().any(|c| c.name() == component))
                .map(|p| p.cert_name())
                .collect();
            (component, names)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::by_name;
    use crate::tree::generations::Pruned;

    fn renewal(outcomes: Vec<(&str, Outcome)>, backup: Option<&str>) -> Renewal {
        Renewal {
            outcomes: outcomes
                .into_iter()
                .map(|(name, o)| (by_name(name).expect("a row"), o))
                .collect(),
            kept: backup.map(|dir| Kept {
                generation: dir.into(),
                pruned: Pruned::default(),
            }),
            capped: Vec::new(),
        }
    }

    #[test]
    fn each_outcome_is_a_line_and_restarts_are_grouped_by_component() {
        let text = renewal_text(
            &renewal(
                vec![
                    ("apiserver", Outcome::Renewed),
                    ("front-proxy-client", Outcome::Renewed),
                    ("etcd-server", Outcome::NotDue("200d".into())),
                    ("etcd-peer", Outcome::Missing),
                    (
                        "kubelet",
                        Outcome::Delegated(
                            "/var/lib/kubelet/pki/kubelet-client-current.pem".into(),
                        ),
                    ),
                    ("apiserver-etcd-client", Outcome::External("etcd-ca")),
                    ("admin", Outcome::Renewed),
                ],
                Some("/etc/kubernetes/tmp/kubepki-backup-x"),
            ),
            None,
        );
        let expected = "\
[renew] certificate for serving the Kubernetes API renewed
[renew] certificate for the front proxy client renewed
[renew] certificate for serving etcd: not due (expires in 200d), skipped
MISSING! certificate for etcd nodes to communicate with each other
[renew] kubelet.conf: left alone, it points at the kubelet's own rotated certificate /var/lib/kubelet/pki/kubelet-client-current.pem
[renew] certificate the apiserver uses to access etcd can't be renewed: its CA \"etcd-ca\" is external (its key is absent)
[renew] certificate embedded in the kubeconfig file for the admin to use and for kubeadm itself renewed

Old files were backed up in /etc/kubernetes/tmp/kubepki-backup-x (`kubepki certs rollback` restores them)
Done renewing certificates. Restart these components so that they use the new files:
  kube-apiserver: apiserver, front-proxy-client
";
        assert_eq!(text, expected);
    }

    #[test]
    fn nothing_renewed_says_why() {
        let none = renewal(vec![("apiserver", Outcome::NotDue("300d".into()))], None);
        let window: Duration = "30d".parse().expect("a duration");
        assert!(renewal_text(&none, Some(window)).ends_with(&format!(
            "\nNothing to renew: no certificate expires within {window}.\n"
        )));
        assert!(renewal_text(&none, None).ends_with("\nNothing was renewed.\n"));
        let admin_only = renewal(vec![("admin", Outcome::Renewed)], Some("/b"));
        assert!(renewal_text(&admin_only, None).ends_with("No component needs a restart.\n"));
    }
}
