//! The metrics file of `certs check-expiration --metrics-file` and `certs renew
//! --metrics-file`: the certificates' dates as they are once the command is done, the run's
//! time and result, the audit's counts by severity and the rotations under way, gathered
//! here and written atomically for node_exporter's textfile collector.

use crate::engine::audit::{Severity, audit};
use crate::engine::drift::Wanted;
use crate::engine::expiry::ExpirationInfo;
use crate::engine::rotate::state::Phase;
use crate::engine::rotate::{Standing, status};
use crate::profile::rotatable_rows;
use crate::report::{RunFacts, expiration_metrics, is_expiration_metrics, run_metrics};
use crate::tree::{TreeDirs, store};
use anyhow::{Context, Result, bail};
use std::path::Path;
use time::OffsetDateTime;

/// What the command that writes the metrics did.
pub struct RunResult {
    /// `check-expiration` or `renew`.
    pub command: &'static str,
    /// When it started.
    pub at: OffsetDateTime,
    /// Whether it ended well.
    pub success: bool,
    /// renew: how many certificates it renewed.
    pub renewed: Option<usize>,
}

/// Writes the metrics of the tree `dirs` after `run` to `path`. A tree that cannot be read
/// (the run failed on it) still gets the run's time and result.
pub fn write(path: &Path, dirs: &TreeDirs, run: RunResult) -> Result<()> {
    let mut text = match ExpirationInfo::read(dirs, run.at) {
        Ok(info) => expiration_metrics(&info),
        Err(_) => String::new(),
    };
    let findings = audit(dirs, &Wanted::defaults(run.at)).ok().map(|found| {
        let errors = found.at_least(Severity::Error);
        (errors, found.findings.len() - errors)
    });
    let rows: Vec<_> = rotatable_rows().collect();
    let rotations = status(dirs, &rows)
        .into_iter()
        .map(|(row, standing)| {
            let busy = matches!(&standing, Standing::Read(state) if state.phase != Phase::Idle);
            (row.name, busy)
        })
        .collect();
    text.push_str(&run_metrics(&RunFacts {
        command: run.command,
        at: run.at,
        success: run.success,
        renewed: run.renewed,
        findings,
        rotations,
    }));
    let replace = replaceable(dirs, path)?;
    store::write_outside(
        dirs,
        "--metrics-file",
        path,
        text.as_bytes(),
        store::PUBLIC_MODE,
        replace,
    )
}

/// Whether `--metrics-file` replaces `path`: not when nothing is there, and only when what
/// is there is a metrics file kubepki wrote; anything else (and any file of the tree) is
/// refused.
fn replaceable(dirs: &TreeDirs, path: &Path) -> Result<bool> {
    dirs.refuse_output("--metrics-file", path)?;
    let existing = match path.file_name() {
        Some(name) => store::read_optional(path.parent().unwrap_or(Path::new(".")), name.as_ref())
            .with_context(|| format!("--metrics-file {}", path.display()))?,
        None => None,
    };
    match existing {
        None => Ok(false),
        Some(text) if is_expiration_metrics(&text) => Ok(true),
        Some(_) => bail!(
            "--metrics-file {}: exists and is not a metrics file kubepki wrote; not replacing it",
            path.display()
        ),
    }
}
