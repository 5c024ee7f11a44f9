//! What `certs check-expiration` prints: kubeadm's two tables, its
//! `CertificateExpirationInfo` as JSON or YAML, the Prometheus metrics file, and the line
//! that says why `--fail-within` failed.

use super::{Format, emit, tabulate};
use crate::duration::Duration;
use crate::engine::expiry::{Attention, Expiration, ExpirationInfo, short_human_duration};
use anyhow::Result;
use time::OffsetDateTime;

/// Prints check-expiration's result in `format`.
pub fn print_expiration(info: &ExpirationInfo, format: Format) -> Result<()> {
    let text = match format {
        Format::Json => serde_json::to_string_pretty(info)? + "\n",
        Format::Yaml => serde_yaml::to_string(info)?,
        Format::Text => expiration_tables(info),
    };
    emit(format, &text)
}

/// kubeadm's two tables, laid out as Go's tabwriter does (minwidth 10, padding 3).
pub fn expiration_tables(info: &ExpirationInfo) -> String {
    let certificates = [
        "CERTIFICATE",
        "EXPIRES",
        "RESIDUAL TIME",
        "CERTIFICATE AUTHORITY",
        "EXTERNALLY MANAGED",
    ];
    let authorities = [
        "CERTIFICATE AUTHORITY",
        "EXPIRES",
        "RESIDUAL TIME",
        "EXTERNALLY MANAGED",
    ];
    let rows =
        |entries: &[Expiration], with_ca| entries.iter().map(|e| cells(e, with_ca)).collect();
    let first = tabulate(&certificates, rows(&info.certificates, true));
    let second = tabulate(&authorities, rows(&info.certificate_authorities, false));
    format!("{first}\n{second}")
}

/// One row's cells; `with_ca` adds the CERTIFICATE AUTHORITY column.
fn cells(entry: &Expiration, with_ca: bool) -> Vec<String> {
    if entry.missing {
        let blanks = if with_ca { 4 } else { 3 };
        return std::iter::once(format!("!MISSING! {}", entry.name))
            .chain(std::iter::repeat_n(String::new(), blanks))
            .collect();
    }
    let expires = entry.not_after.map(format_expiry).unwrap_or_default();
    let mut cells = vec![
        entry.name.clone(),
        expires,
        short_human_duration(entry.residual_time),
    ];
    if with_ca {
        cells.push(entry.ca_name.unwrap_or_default().to_string());
    }
    let external = if entry.externally_managed {
        "yes"
    } else {
        "no"
    };
    cells.push(format!("{external:<8}"));
    cells
}

fn format_expiry(when: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[month repr:short] [day], [year] [hour]:[minute] UTC");
    when.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// A metric's name, help text and value for one certificate (`None`: no sample).
type MetricFamily = (&'static str, &'static str, fn(&Expiration) -> Option<i64>);

/// Whether `text` is a metrics file `expiration_metrics` wrote (so `--metrics-file` may
/// replace it): every line a `# HELP`, `# TYPE` or sample of a `kubepki_` metric.
pub fn is_expiration_metrics(text: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    let ours = |line: &str| {
        ["# HELP kubepki_", "# TYPE kubepki_", "kubepki_"]
            .iter()
            .any(|start| line.starts_with(start))
    };
    text.lines().next().is_some() && text.lines().all(ours)
}

/// check-expiration's facts in Prometheus text format, for node_exporter's textfile collector.
pub fn expiration_metrics(info: &ExpirationInfo) -> String {
    let mut text = String::new();
    let families: [MetricFamily; 4] = [
        (
            "kubepki_certificate_expiration_timestamp_seconds",
            "NotAfter of the certificate, in seconds since the Unix epoch.",
            |e| e.not_after.map(|t| t.unix_timestamp()),
        ),
        (
            "kubepki_certificate_is_ca",
            "1 for a certificate authority, else 0.",
            |e| Some(i64::from(e.ca_name.is_none())),
        ),
        (
            "kubepki_certificate_externally_managed",
            "1 when the signing CA's key is absent (external CA), else 0.",
            |e| Some(i64::from(e.externally_managed)),
        ),
        (
            "kubepki_certificate_missing",
            "1 when the certificate's file is missing, else 0.",
            |e| Some(i64::from(e.missing)),
        ),
    ];
    for (metric, help, value) in families {
        text.push_str(&format!("# HELP {metric} {help}\n# TYPE {metric} gauge\n"));
        for entry in info.entries() {
            if let Some(value) = value(entry) {
                let ca = entry.ca_name.unwrap_or(&entry.name);
                text.push_str(&format!(
                    "{metric}{{name=\"{}\",ca=\"{ca}\"}} {value}\n",
                    entry.name
                ));
            }
        }
    }
    text
}

/// The run a metrics file comes from, and what it found beyond the certificates' dates.
pub struct RunFacts {
    /// `check-expiration` or `renew`.
    pub command: &'static str,
    /// When it ran.
    pub at: OffsetDateTime,
    /// Whether it ended well (an error, or a certificate it could not renew, is a failure).
    pub success: bool,
    /// renew: how many certificates it renewed.
    pub renewed: Option<usize>,
    /// The audit's findings: errors, then warnings; `None` when it could not run.
    pub findings: Option<(usize, usize)>,
    /// Each CA or key pair that can be rotated, and whether a rotation of it is under way.
    pub rotations: Vec<(&'static str, bool)>,
}

/// The run's facts in Prometheus text format, after `expiration_metrics`'s.
pub fn run_metrics(run: &RunFacts) -> String {
    let command = run.command;
    let mut text = String::new();
    let mut family = |metric: &str, help: &str, samples: Vec<(String, i64)>| {
        text.push_str(&format!("# HELP {metric} {help}\n# TYPE {metric} gauge\n"));
        for (labels, value) in samples {
            text.push_str(&format!("{metric}{{{labels}}} {value}\n"));
        }
    };
    let this_run = format!("command=\"{command}\"");
    family(
        "kubepki_last_run_timestamp_seconds",
        "When kubepki last wrote this file, in seconds since the Unix epoch.",
        vec![(this_run.clone(), run.at.unix_timestamp())],
    );
    family(
        "kubepki_last_run_success",
        "1 when that run ended well, 0 when it failed.",
        vec![(this_run.clone(), i64::from(run.success))],
    );
    if let Some(renewed) = run.renewed {
        family(
            "kubepki_last_run_renewed_certificates",
            "How many certificates that run renewed.",
            vec![(this_run, renewed as i64)],
        );
    }
    if let Some((errors, warnings)) = run.findings {
        family(
            "kubepki_audit_findings",
            "What `kubepki certs audit` finds in the tree, by severity.",
            vec![
                ("severity=\"error\"".into(), errors as i64),
                ("severity=\"warning\"".into(), warnings as i64),
            ],
        );
    }
    family(
        "kubepki_rotation_in_progress",
        "1 while a rotation of that CA or key pair is under way (trust, sign or finish run, not finished).",
        run.rotations
            .iter()
            .map(|(name, busy)| (format!("name=\"{name}\""), i64::from(*busy)))
            .collect(),
    );
    text
}

/// Says on stderr which certificates made `--fail-within` fail.
pub fn due_notice(attention: &Attention, window: Duration) {
    if !attention.due.is_empty() {
        eprintln!(
            "kubepki: expired or expiring within {window}: {}",
            attention.due.join(", ")
        );
    }
    if !attention.missing.is_empty() {
        eprintln!("kubepki: missing: {}", attention.missing.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::expiry::ExpirationInfo;
    use crate::testtree::{TestTree, ecdsa_spec};

    #[test]
    fn only_a_metrics_file_kubepki_wrote_is_one_to_replace() {
        assert!(is_expiration_metrics(
            expiration_metrics(&info()).as_bytes()
        ));
        for other in [
            &b""[..],
            b"-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n",
            b"# HELP node_load1 1m load average.\nnode_load1 0.5\n",
            b"# HELP kubepki_x y\nkubepki_x 1\nsomething_else 2\n",
            b"\xff\xfe",
        ] {
            assert!(!is_expiration_metrics(other), "{other:?}");
        }
    }

    fn info() -> ExpirationInfo {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        tree.remove("super-admin", |_| true);
        tree.remove("front-proxy-ca", |i| i == 0);
        ExpirationInfo::read(&tree.dirs, spec.now).expect("readable")
    }

    #[test]
    fn the_tables_are_kubeadms_with_missing_and_external_rows() {
        let text = expiration_tables(&info());
        let lines: Vec<&str> = text.lines().collect();
        let header = [
            "CERTIFICATE",
            "EXPIRES",
            "RESIDUAL TIME",
            "CERTIFICATE AUTHORITY",
        ];
        let columns: Vec<usize> = header.iter().filter_map(|h| lines[0].find(h)).collect();
        assert_eq!(columns, [0, 29, 54, 70], "{text}");
        assert!(lines[0].ends_with("   EXTERNALLY MANAGED"), "{text}");
        assert!(
            lines.iter().any(|l| l.starts_with("admin.conf ")
                && l.contains(" 364d ")
                && l.ends_with("no      ")),
            "{text}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.trim_end() == "!MISSING! super-admin.conf"),
            "{text}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("front-proxy-client ") && l.contains("yes")),
            "{text}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("CERTIFICATE AUTHORITY   EXPIRES")),
            "{text}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("etcd-ca ") && l.contains(" 9y ")),
            "{text}"
        );
        assert_eq!(lines.len(), 1 + 12 + 1 + 1 + 3, "{text}");
    }

    #[test]
    fn metrics_have_one_sample_per_certificate_and_family() {
        let text = expiration_metrics(&info());
        for family in [
            "expiration_timestamp_seconds",
            "is_ca",
            "externally_managed",
            "missing",
        ] {
            let metric = format!("kubepki_certificate_{family}");
            assert!(text.contains(&format!("# TYPE {metric} gauge\n")), "{text}");
        }
        assert!(
            text.contains("kubepki_certificate_missing{name=\"super-admin.conf\",ca=\"ca\"} 1\n")
        );
        assert!(text.contains("kubepki_certificate_externally_managed{name=\"front-proxy-client\",ca=\"front-proxy-ca\"} 1\n"));
        assert!(text.contains("kubepki_certificate_is_ca{name=\"etcd-ca\",ca=\"etcd-ca\"} 1\n"));
        let timestamps = text
            .lines()
            .filter(|l| l.starts_with("kubepki_certificate_expiration_timestamp_seconds{"))
            .count();
        assert_eq!(timestamps, 11 + 3, "every present certificate: {text}");
    }
}
