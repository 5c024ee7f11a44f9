//! What `certs renew` prints: each row's outcome, where the old files went, and which
//! components must restart for which files.

use super::stdout;
use crate::duration::Duration;
use crate::engine::renew::{Outcome, Renewal};
use crate::profile::Profile;
use anyhow::Result;

/// Prints what `certs renew` did, then which components must restart for which files.
pub fn print_renewal(renewal: &Renewal, due_within: Option<Duration>) -> Result<()> {
    stdout(&renewal_text(renewal, due_within))
}

fn renewal_text(renewal: &Renewal, due_within: Option<Duration>) -> String {
    let mut text: String = renewal
        .outcomes
        .iter()
        .map(|(row, outcome)| outcome_line(row, outcome))
        .collect();
    let renewed: Vec<_> = renewal
        .outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::Renewed)
        .map(|(p, _)| *p)
        .collect();
    match (&renewal.backup_dir, renewed.is_empty()) {
        (_, true) => text.push_str(&match due_within {
            Some(window) => {
                format!("\nNothing to renew: no certificate expires within {window}.\n")
            }
            None => "\nNothing was renewed.\n".to_string(),
        }),
        (Some(backup), false) => {
            text.push_str(&format!(
                "\nOld files were backed up in {}\n",
                backup.display()
            ));
            text.push_str(&restart_hints(&renewed));
        }
        (None, false) => {}
    }
    text
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
        Outcome::Foreign(path) => format!(
            "[renew] {}: left alone, {} is not signed by {:?} (the kubelet's own self-signed certificate?)\n",
            row.cert_name(),
            path.display(),
            row.issuer.unwrap_or_default()
        ),
    }
}

fn restart_hints(renewed: &[&'static Profile]) -> String {
    let mut components: Vec<&str> = renewed.iter().filter_map(|p| p.restart).collect();
    components.dedup();
    components.sort_unstable();
    components.dedup();
    if components.is_empty() {
        return "Done renewing certificates. No component needs a restart.\n".into();
    }
    let mut text =
        "Done renewing certificates. Restart these components so that they use the new files:\n"
            .to_string();
    for component in components {
        let names: Vec<&str> = renewed
            .iter()
            .filter(|p| p.restart == Some(component))
            .map(|p| p.cert_name())
            .collect();
        text.push_str(&format!("  {component}: {}\n", names.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::by_name;

    fn renewal(outcomes: Vec<(&str, Outcome)>, backup: Option<&str>) -> Renewal {
        Renewal {
            outcomes: outcomes
                .into_iter()
                .map(|(name, o)| (by_name(name).expect("a row"), o))
                .collect(),
            backup_dir: backup.map(Into::into),
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

Old files were backed up in /etc/kubernetes/tmp/kubepki-backup-x
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
