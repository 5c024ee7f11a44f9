//! What `certs audit` prints: one line per finding (severity, id, the file and what is
//! wrong), a count, and the checks skipped for want of a configuration; or the same as one
//! JSON or YAML document.

use super::{Format, emit, serialized};
use crate::engine::audit::{Audit, Finding, Severity};
use crate::tree::TreeDirs;
use anyhow::Result;
use serde::Serialize;
use std::path::Path;

/// The machine form of an audit.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuditDocument<'a> {
    cert_dir: &'a Path,
    kubeconfig_dir: &'a Path,
    errors: usize,
    warnings: usize,
    findings: Vec<FindingDocument<'a>>,
    skipped: &'a [String],
}

#[derive(Serialize)]
struct FindingDocument<'a> {
    id: &'static str,
    severity: Severity,
    file: &'a Path,
    message: &'a str,
}

impl<'a> FindingDocument<'a> {
    fn of(finding: &'a Finding) -> FindingDocument<'a> {
        FindingDocument {
            id: finding.check.id(),
            severity: finding.check.severity(),
            file: &finding.file,
            message: &finding.message,
        }
    }
}

/// Prints an audit in `format`.
pub fn print_audit(audit: &Audit, dirs: &TreeDirs, format: Format) -> Result<()> {
    let document = AuditDocument {
        cert_dir: &dirs.cert_dir,
        kubeconfig_dir: &dirs.kubeconfig_dir,
        errors: audit.at_least(Severity::Error),
        warnings: audit.findings.len() - audit.at_least(Severity::Error),
        findings: audit.findings.iter().map(FindingDocument::of).collect(),
        skipped: &audit.skipped,
    };
    let text = match serialized("Audit", &document, format)? {
        Some(text) => text,
        None => audit_text(&document),
    };
    emit(format, &text)
}

fn audit_text(document: &AuditDocument<'_>) -> String {
    let width = document
        .findings
        .iter()
        .map(|f| f.id.len())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for finding in &document.findings {
        let severity = match finding.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        text.push_str(&format!(
            "{severity:<7}  {:<width$}  {}\n",
            finding.id, finding.message
        ));
    }
    let places = format!(
        "{} and {}",
        document.cert_dir.display(),
        document.kubeconfig_dir.display()
    );
    match document.findings.len() {
        0 => text.push_str(&format!("No findings in {places}.\n")),
        n => text.push_str(&format!(
            "\n{n} finding(s) in {places}: {} error(s), {} warning(s).\n",
            document.errors, document.warnings
        )),
    }
    for skipped in document.skipped {
        text.push_str(&format!("Not checked: {skipped}.\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::audit::Check;

    #[test]
    fn findings_are_aligned_lines_then_a_count_and_what_was_skipped() {
        let audit = Audit {
            findings: vec![
                Finding {
                    check: Check::KeyMismatch,
                    file: "/t/pki/apiserver.key".into(),
                    message: "/t/pki/apiserver.key: does not match the certificate /t/pki/apiserver.crt".into(),
                },
                Finding {
                    check: Check::SanExtra,
                    file: "/t/pki/apiserver.crt".into(),
                    message: "/t/pki/apiserver.crt: carries DNS:old.example.com, which the configuration does not ask for".into(),
                },
            ],
            skipped: vec!["the key algorithm, which no configuration sets".into()],
        };
        let dirs = TreeDirs::new(Some("/t/pki".into()), Some("/t".into()));
        let document = AuditDocument {
            cert_dir: &dirs.cert_dir,
            kubeconfig_dir: &dirs.kubeconfig_dir,
            errors: 1,
            warnings: 1,
            findings: audit.findings.iter().map(FindingDocument::of).collect(),
            skipped: &audit.skipped,
        };
        let expected = "\
error    key-mismatch  /t/pki/apiserver.key: does not match the certificate /t/pki/apiserver.crt
warning  san-extra     /t/pki/apiserver.crt: carries DNS:old.example.com, which the configuration does not ask for

2 finding(s) in /t/pki and /t: 1 error(s), 1 warning(s).
Not checked: the key algorithm, which no configuration sets.
";
        assert_eq!(audit_text(&document), expected);
        let json = serde_json::to_value(&document).expect("JSON");
        assert_eq!(json["findings"][1]["id"], "san-extra");
        assert_eq!(json["findings"][1]["severity"], "warning");
        assert_eq!(json["errors"], 1);
    }
}
