//! What `certs generations` and `certs rollback` print: each generation with its time,
//! command and what it changed (or the same as JSON or YAML); what a rollback restored,
//! from where, and which components must restart.

use super::renew::{kept_text, restart_hints};
use super::{Format, emit, report_text, serialized};
use crate::engine::rollback::Rollback;
use crate::tree::generations::{Generation, Record};
use anyhow::Result;
use serde::Serialize;
use std::path::Path;

#[derive(Serialize)]
struct GenerationsDocument<'a> {
    dir: &'a Path,
    generations: Vec<GenerationDocument<'a>>,
}

#[derive(Serialize)]
struct GenerationDocument<'a> {
    id: &'a str,
    path: &'a Path,
    #[serde(flatten)]
    record: &'a Record,
}

/// Prints `generations` (oldest first) of `dir` in `format`: text lists the newest first.
pub fn print_generations(generations: &[Generation], dir: &Path, format: Format) -> Result<()> {
    let document = GenerationsDocument {
        dir,
        generations: generations
            .iter()
            .map(|g| GenerationDocument {
                id: &g.id,
                path: &g.path,
                record: &g.record,
            })
            .collect(),
    };
    let text = match serialized("Generations", &document, format)? {
        Some(text) => text,
        None => generations_text(generations, dir),
    };
    emit(format, &text)
}

fn generations_text(generations: &[Generation], dir: &Path) -> String {
    if generations.is_empty() {
        return format!("No generations in {}.\n", dir.display());
    }
    let mut text = format!("Generations in {}, newest first:\n", dir.display());
    for generation in generations.iter().rev() {
        let record = &generation.record;
        text.push_str(&format!(
            "\n{}  {}  {}\n",
            generation.id, record.time, record.command
        ));
        let width = record.rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
        for row in &record.rows {
            text.push_str(&format!("  {:<width$}  {}\n", row.name, row.change));
        }
    }
    text
}

/// Prints that `generation` was removed, and the keys it held.
pub fn print_removed_generation(generation: &Generation) -> Result<()> {
    let keys = generation.held_keys();
    let held = match keys.is_empty() {
        true => String::new(),
        false => format!(
            ": it held the replaced key of {}, which it no longer keeps",
            keys.join(", ")
        ),
    };
    report_text(&format!(
        "Removed the generation {} ({}, {}){held}\n",
        generation.path.display(),
        generation.record.command,
        generation.record.time
    ))
}

/// Prints what a rollback restored, where the replaced files went and what must restart.
pub fn print_rollback(rollback: &Rollback) -> Result<()> {
    report_text(&rollback_text(rollback))
}

/// What `certs rollback --dry-run` would restore.
fn dry_rollback_text(rollback: &Rollback) -> String {
    let mut text: String = rollback
        .restored
        .iter()
        .map(|(row, from)| {
            format!(
                "[rollback] {} would be restored from generation {from}\n",
                row.cert_name()
            )
        })
        .collect();
    text.push_str(&format!(
        "\nDry run: nothing was written; without --dry-run the tree would be as it was before \
         generation {}.\n",
        rollback.target.id
    ));
    text
}

fn rollback_text(rollback: &Rollback) -> String {
    let target = &rollback.target.id;
    if rollback.dry_run && !rollback.restored.is_empty() {
        return dry_rollback_text(rollback);
    }
    let Some(kept) = &rollback.kept else {
        return format!("Nothing to restore: the tree already is as it was before {target}.\n");
    };
    let mut text = String::new();
    for (row, from) in &rollback.restored {
        text.push_str(&format!(
            "[rollback] {} restored from generation {from}\n",
            row.cert_name()
        ));
    }
    text.push_str(&format!(
        "\nThe tree is as it was before generation {target}.\n"
    ));
    text.push_str(&kept_text(kept));
    let rows: Vec<_> = rollback.restored.iter().map(|(row, _)| *row).collect();
    text.push_str(&restart_hints(&rows, "Done rolling back."));
    text
}
