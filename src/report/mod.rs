//! The only printer. Results go to stdout as text for people (kubeadm's `[certs] ...` lines
//! and a summary) or as one JSON or YAML document; notes, warnings and `-v` detail go to
//! stderr. Nothing secret is ever part of a report: it holds names, paths, reasons and
//! public hashes, and a token only where it is the command's result.

mod audit;
mod bundle;
mod csr;
mod expiry;
mod flags;
mod generations;
mod init;
mod join;
mod kubelet;
mod reconcile;
mod renew;
mod rotate;
mod staticpod;

pub use audit::print_audit;
pub use bundle::{bundle_absent, print_bundle_written, print_import};
pub use csr::{print_csrs_written, print_serving_csr, print_signed};
pub use expiry::{
    RunFacts, due_notice, expiration_metrics, expiration_tables, is_expiration_metrics,
    print_expiration, run_metrics,
};
pub use flags::print_flags;
pub use generations::{print_generations, print_removed_generation, print_rollback};
pub use init::{InitReport, StepReport};
pub use join::{
    JoinReport, print_cluster_deletion, print_join, print_join_commands, print_manifests,
    print_removed_tokens, print_token, print_token_list, token_list_scope,
};
pub use kubelet::{print_repair, print_serving};
pub use reconcile::print_reconcile;
pub use renew::{missing_notice, print_renewal};
pub use rotate::{print_rotation, print_rotation_status};
pub use staticpod::{PodWritten, print_static_pods};

use crate::engine::issue::Capped;
use crate::tree::TreeDirs;
use anyhow::{Context, Result};
use serde::Serialize;
use std::cell::Cell;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The `apiVersion` of kubepki's own documents. Every `-o json|yaml` document is one object
/// that opens with `kind` and `apiVersion`, as Kubernetes objects do (check-expiration's is
/// kubeadm's own `CertificateExpirationInfo`).
pub const API_VERSION: &str = "kubepki.io/v1alpha1";

/// Set by `--quiet`: progress, notes and text reports are not printed; errors, warnings
/// and documents asked for are.
static QUIET: AtomicBool = AtomicBool::new(false);

/// `--quiet`: from now on print errors, warnings and documents only.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A document: `kind`, `apiVersion`, then the body's own fields.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a, T: Serialize> {
    kind: &'static str,
    api_version: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

/// `body` (a struct or map) as the JSON or YAML document of `kind`; `None` for text.
fn serialized<T: Serialize>(
    kind: &'static str,
    body: &T,
    format: Format,
) -> Result<Option<String>> {
    let document = Document {
        kind,
        api_version: API_VERSION,
        body,
    };
    Ok(match format {
        Format::Json => Some(serde_json::to_string_pretty(&document)? + "\n"),
        Format::Yaml => Some(serde_yaml::to_string(&document)?),
        Format::Text => None,
    })
}

/// How a result is printed on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Lines (or kubeadm's tables) for people.
    Text,
    /// One JSON document.
    Json,
    /// One YAML document.
    Yaml,
}

/// A line of detail on stderr when `-v` was given.
pub fn detail(verbose: u8, message: std::fmt::Arguments<'_>) {
    if verbose > 0 && !quiet() {
        eprintln!("[detail] {message}");
    }
}

/// A note on stderr, kubeadm-style (`[config] skipping ...`).
pub fn note(group: &str, message: &str) {
    if !quiet() {
        eprintln!("[{group}] {message}");
    }
}

/// A warning on stderr, shown even with `--quiet`.
fn warning(group: &str, message: &str) {
    eprintln!("[{group}] WARNING: {message}");
}

/// Says that an old spelling was used, and the one to use instead (shown with `--quiet`
/// too: a cron job is where it would otherwise go unnoticed).
pub fn deprecated(old: &str, new: &str) {
    warning(
        "deprecated",
        &format!("{old} is deprecated and goes in the next release; use {new}"),
    );
}

/// Says that a replacement a killed run left half done was completed.
pub fn recovered(path: &Path) {
    note(
        "recover",
        &format!(
            "completed the replacement of {} left by an interrupted run",
            path.display()
        ),
    );
}

/// A document (YAML, a kubeconfig, a completion script, lines of a check) on stdout, as it is.
pub fn print_document(text: &str) -> Result<()> {
    stdout(text)
}

/// A failure as the document of a command run with `-o json|yaml`: `failed` and `error`.
pub fn print_error_document(error: &anyhow::Error, format: Format) -> Result<()> {
    let body = serde_json::json!({"failed": true, "error": format!("{error:#}")});
    stdout(&serialized("Error", &body, format)?.unwrap_or_default())
}

/// One line on stdout: a command's whole result (a pin, a key).
pub fn print_line(line: &str) -> Result<()> {
    stdout(&format!("{line}\n"))
}

/// The tree's directories, for detail lines.
pub fn describe_dirs(dirs: &TreeDirs) -> String {
    format!(
        "cert dir {}, kubeconfig dir {}",
        dirs.cert_dir.display(),
        dirs.kubeconfig_dir.display()
    )
}

/// Progress of slow work on stderr (key generation): nothing for work done within a second;
/// then, on a terminal, one line rewritten in place, and elsewhere (a log, cron) a plain line
/// at most once a second; and at the end a line saying how long it took.
pub struct Progress {
    group: &'static str,
    what: &'static str,
    started: Instant,
    terminal: bool,
    last_shown: Cell<Option<Instant>>,
    total: Cell<usize>,
}

impl Progress {
    /// Progress of making `what` (e.g. `keys`), reported under `[group]`.
    pub fn new(group: &'static str, what: &'static str) -> Progress {
        Progress {
            group,
            what,
            started: Instant::now(),
            terminal: std::io::stderr().is_terminal(),
            last_shown: Cell::new(None),
            total: Cell::new(0),
        }
    }

    /// `done` of `total` are done.
    pub fn update(&self, done: usize, total: usize) {
        self.total.set(total);
        if quiet() {
            return;
        }
        let now = Instant::now();
        let since_start = now - self.started;
        let since_shown = self.last_shown.get().map(|at| now - at);
        let due = match self.terminal {
            true => since_start >= Duration::from_secs(1),
            false => {
                since_start >= Duration::from_secs(1)
                    && since_shown.is_none_or(|d| d >= Duration::from_secs(1))
            }
        };
        if !due || done == total {
            return;
        }
        self.last_shown.set(Some(now));
        let (group, what) = (self.group, self.what);
        match self.terminal {
            true => eprint!("\r[{group}] generating {what}: {done} of {total} done"),
            false => eprintln!("[{group}] generating {what}: {done} of {total} done"),
        }
    }

    /// The work is over: says how long it took, if anything was shown.
    pub fn finish(&self) {
        if self.last_shown.get().is_none() {
            return;
        }
        let total = self.total.get();
        let took = self.started.elapsed().as_secs_f64();
        let (group, what) = (self.group, self.what);
        let clear = if self.terminal { "\r\x1b[K" } else { "" };
        eprintln!("{clear}[{group}] generated {total} {what} in {took:.1}s");
    }
}

/// Says on stderr why discovery failed this time, and when it tries again.
pub fn retrying(error: &anyhow::Error, wait: Duration) {
    if quiet() {
        return;
    }
    eprintln!("[discovery] will try again in {wait:?}: {error:#}");
}

/// A warning on stderr, kubeadm's way.
pub fn warn(message: &str) {
    eprintln!("[discovery] WARNING: {message}");
}

/// Warns that a file holding a private key is open to group or others.
pub fn open_secret(path: &Path, mode: u32) {
    eprintln!(
        "[security] WARNING: {} has mode {mode:04o}: group or others may read a private key; \
         kubeadm writes it 0600 (chmod 600 {})",
        path.display(),
        path.display()
    );
}

/// Says on stderr, one line per CA, which certificates end with their CA, earlier than
/// their validity asked: one that outlived its CA would stop verifying on the CA's last day.
pub fn capped(group: &str, capped: &[Capped]) {
    let mut issuers: Vec<&str> = Vec::new();
    for issuer in capped.iter().map(|c| c.issuer) {
        if !issuers.contains(&issuer) {
            issuers.push(issuer);
        }
    }
    for issuer in issuers {
        let of_issuer: Vec<&Capped> = capped.iter().filter(|c| c.issuer == issuer).collect();
        let names: Vec<&str> = of_issuer.iter().map(|c| c.name.as_str()).collect();
        let Some(until) = of_issuer.iter().map(|c| c.until.date()).max() else {
            continue;
        };
        note(
            group,
            &format!(
                "valid only until {until}, when their CA {issuer:?} ends (renew or rotate it \
                 before then): {}",
                names.join(", ")
            ),
        );
    }
}

/// The line for a manifest file written.
fn manifest_line(path: &Path) -> String {
    format!("[bootstrap-token] Wrote {}\n", path.display())
}

/// Lays out rows as Go's tabwriter does in kubeadm's tables: every column but the last padded to its widest cell + 3 (at least 10).
fn tabulate(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let columns = header.len();
    let mut widths = vec![0usize; columns - 1];
    let header_cells: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for cells in std::iter::once(&header_cells).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count() + 3).max(10);
        }
    }
    let mut text = String::new();
    for cells in std::iter::once(&header_cells).chain(&rows) {
        for (width, cell) in widths.iter().zip(cells) {
            text.push_str(&format!("{cell:<width$}"));
        }
        text.push_str(cells.last().map(String::as_str).unwrap_or_default());
        text.push('\n');
    }
    text
}

/// A report in `format` on stdout: text is for people, and `--quiet` drops it; a JSON or
/// YAML document was asked for, and is printed.
fn emit(format: Format, text: &str) -> Result<()> {
    match format == Format::Text && quiet() {
        true => Ok(()),
        false => stdout(text),
    }
}

/// A text report on stdout, dropped by `--quiet`.
fn report_text(text: &str) -> Result<()> {
    emit(Format::Text, text)
}

/// Writes `text` to stdout and flushes it.
fn stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")
}
