//! What `certs renew --reconcile [--plan]` prints: per row what is done and, under it, the
//! diff field by field (`- DNS:old.example`, `+ DNS:new.example`); then a count, and after
//! an apply where the old files went and what must restart. Or one JSON or YAML document.

use super::renew::{kept_text, restart_hints};
use super::{Format, emit, serialized};
use crate::engine::reconcile::{RowPlan, Verdict};
use crate::engine::renew::Kept;
use crate::tree::TreeDirs;
use anyhow::Result;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The machine form of a reconcile plan or its result.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReconcileDocument<'a> {
    /// Whether this is a plan only.
    plan: bool,
    /// Rows that change (or would, but for an external CA).
    changes: usize,
    rows: Vec<RowDocument>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation: Option<&'a Path>,
}

#[derive(Serialize)]
struct RowDocument {
    name: &'static str,
    action: &'static str,
    files: Vec<PathBuf>,
    diff: Vec<DiffDocument>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize)]
struct DiffDocument {
    field: &'static str,
    removed: Vec<String>,
    added: Vec<String>,
}

/// Prints a reconcile plan (`kept` is `None`) or what applying it did.
pub fn print_reconcile(
    rows: &[RowPlan],
    dirs: &TreeDirs,
    kept: Option<&Kept>,
    plan: bool,
    format: Format,
) -> Result<()> {
    let document = ReconcileDocument {
        plan,
        changes: rows.iter().filter(|r| pending(r)).count(),
        rows: rows.iter().map(|r| row_document(r, dirs)).collect(),
        generation: kept.map(|k| k.generation.as_path()),
    };
    let text = match serialized("Reconcile", &document, format)? {
        Some(text) => text,
        None => reconcile_text(rows, kept, plan),
    };
    emit(format, &text)
}

fn pending(row: &RowPlan) -> bool {
    row.changes() || matches!(row.verdict, Verdict::External(_) | Verdict::Broken(_))
}

fn action(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Unchanged => "unchanged",
        Verdict::Reissue => "reissue",
        Verdict::Repoint => "repoint",
        Verdict::Missing => "missing",
        Verdict::Delegated(_) => "delegated",
        Verdict::External(_) => "external",
        Verdict::Broken(_) => "broken",
    }
}

fn row_document(row: &RowPlan, dirs: &TreeDirs) -> RowDocument {
    RowDocument {
        name: row.row.cert_name(),
        action: action(&row.verdict),
        files: dirs.paths_of(row.row),
        diff: row
            .drifts
            .iter()
            .map(|d| DiffDocument {
                field: d.field.name(),
                removed: d.removed.clone(),
                added: d.added.clone(),
            })
            .collect(),
        reason: reason(row),
    }
}

/// Why a row is left as it is, when that needs saying.
fn reason(row: &RowPlan) -> Option<String> {
    match &row.verdict {
        Verdict::Missing => Some("missing: `kubepki init` creates it".into()),
        Verdict::Delegated(path) => Some(format!(
            "left alone: it points at the kubelet's own rotated certificate {}",
            path.display()
        )),
        Verdict::External(ca) => Some(format!(
            "differs, but can't be re-issued: its CA {ca:?} is external (its key is absent)"
        )),
        Verdict::Broken(problem) => Some(format!("BROKEN, left as it is: {problem}")),
        _ => None,
    }
}

fn reconcile_text(rows: &[RowPlan], kept: Option<&Kept>, plan: bool) -> String {
    let mut text = String::new();
    for row in rows {
        let name = row.row.cert_name();
        let line = match (&row.verdict, reason(row)) {
            (Verdict::Unchanged, _) => continue,
            (Verdict::Reissue, _) => format!("[reconcile] {name}: re-issue with a new key"),
            (Verdict::Repoint, _) => {
                format!("[reconcile] {name}: point at the configured server, certificate kept")
            }
            (_, Some(reason)) => format!("[reconcile] {name}: {reason}"),
            (_, None) => continue,
        };
        text.push_str(&line);
        text.push('\n');
        for diff in row.drifts.iter().flat_map(|d| d.lines()) {
            text.push_str(&format!("    {diff}\n"));
        }
    }
    let changing: Vec<_> = rows.iter().filter(|r| r.changes()).map(|r| r.row).collect();
    let unchanged = rows
        .iter()
        .filter(|r| r.verdict == Verdict::Unchanged)
        .count();
    let broken = rows
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Broken(_)))
        .count();
    let counts = match broken {
        0 => format!("{} to change, {unchanged} unchanged", changing.len()),
        _ => format!(
            "{} to change, {broken} broken, {unchanged} unchanged",
            changing.len()
        ),
    };
    match (plan, kept) {
        (true, _) if changing.is_empty() && broken == 0 => {
            text.push_str(&format!("Nothing to change: {unchanged} unchanged.\n"))
        }
        (true, _) => text.push_str(&format!(
            "\nPlan: {counts}. Nothing was written (--plan).\n"
        )),
        (false, None) => text.push_str(&format!("Nothing to change: {unchanged} unchanged.\n")),
        (false, Some(kept)) => {
            text.push_str(&format!("\nReconciled: {counts}.\n"));
            text.push_str(&kept_text(kept));
            text.push_str(&restart_hints(&changing, "Done."));
        }
    }
    text
}
