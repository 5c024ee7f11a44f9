//! What `certs renew` prints: each row's outcome, where the old files went, and which
//! components must restart for which files.

use super::stdout;
use crate::duration::Duration;
use crate::engine::renew::{Outcome, Renewal};
use crate::profile::Profile;
use anyhow::Result;

/// Prints what `certs renew` did, then which components must restart for which files.
pub fn print_renewal(renewal: &Renewal, due_within: Option<Duration>) -> Result<()> {
    let mut text = String::new();
    for (profile, outcome) in &renewal.outcomes {
        let long = profile.long_name;
        text.push_str(&match outcome {
            Outcome::Renewed => format!("[renew] {long} renewed\n"),
            Outcome::NotDue(left) => {
                format!("[renew] {long}: not due (expires in {left}), skipped\n")
            }
            Outcome::Missing => format!("MISSING! {long}\n"),
            Outcome::Delegated(path) => format!(
                "[renew] {}: left alone, it points at the kubelet's own rotated certificate {}\n",
                profile.cert_name(),
                path.display()
            ),
            Outcome::External(ca) => format!(
                "[renew] {long} can't be renewed: its CA {ca:?} is external (its key is absent)\n"
            ),
        });
    }
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
    stdout(&text)
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
