//! What `certs rotate-ca` prints: for a stage, each file it wrote (or would write), the
//! backup, which components to restart with which flags, and what comes next (other hosts,
//! workers, the wait before a service-account key's `finish`); for `status`, where each
//! rotation stands, as lines or one JSON document.

use super::{Format, emit, note, serialized};
use crate::engine::flags::TrustFlag;
use crate::engine::rotate::restarts::Restart;
use crate::engine::rotate::state::{Phase, State};
use crate::engine::rotate::{Rotation, Stage, Standing};
use crate::pki::trust::Anchor;
use crate::profile::{Kind, PENDING_DIR, Profile, Role};
use crate::tree::TreeDirs;
use anyhow::Result;
use serde::Serialize;
use std::path::PathBuf;

/// The kubelet's longest wait before it replaces a pod's service-account token: 80% of the
/// token's lifetime, at most 24 hours (`pkg/kubelet/token`'s `requiresRefresh`).
const KUBELET_TOKEN_REFRESH: &str = "24h";

/// Prints what a stage did (or would do) in `format`.
pub fn print_rotation(
    dirs: &TreeDirs,
    rotation: &Rotation,
    restarts: &[Restart],
    flags: &[TrustFlag],
    format: Format,
) -> Result<()> {
    for path in &rotation.outside_old {
        note(
            "rotate-ca",
            &format!(
                "WARNING: {} was signed by the old {}: the API server refuses it once {} \
                 finish has been run and it restarts; have its kubelet get a new client \
                 certificate first",
                path.display(),
                rotation.row.name,
                rotation.row.name
            ),
        );
    }
    let report = RotationReport::of(dirs, rotation, restarts, flags);
    let text = match serialized("Rotation", &report, format)? {
        Some(text) => text,
        None => rotation_text(dirs, rotation, restarts, flags),
    };
    emit(format, &text)
}

/// What a stage did, for `-o json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RotationReport<'a> {
    name: &'static str,
    stage: &'static str,
    dry_run: bool,
    phase_before: Phase,
    created: &'a [PathBuf],
    replaced: &'a [PathBuf],
    removed: &'a [PathBuf],
    backup_dir: Option<&'a PathBuf>,
    reissued: Vec<&'static str>,
    signer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    also_trusted: Option<String>,
    restarts: &'a [Restart],
    trust_flags: &'a [TrustFlag],
    next: Option<String>,
}

impl<'a> RotationReport<'a> {
    fn of(
        dirs: &TreeDirs,
        rotation: &'a Rotation,
        restarts: &'a [Restart],
        flags: &'a [TrustFlag],
    ) -> RotationReport<'a> {
        RotationReport {
            name: rotation.row.name,
            stage: rotation.stage.name(),
            dry_run: rotation.dry_run,
            phase_before: rotation.before,
            created: &rotation.created,
            replaced: &rotation.replaced,
            removed: &rotation.removed,
            backup_dir: rotation.backup_dir.as_ref(),
            reissued: rotation.reissued.iter().map(|r| r.cert_name()).collect(),
            signer: rotation.signer.pin().to_string(),
            also_trusted: rotation.other.as_ref().map(|a| a.pin().to_string()),
            restarts,
            trust_flags: flags,
            next: next_command(dirs, rotation),
        }
    }
}

/// The command that comes after this stage, if any.
fn next_command(dirs: &TreeDirs, rotation: &Rotation) -> Option<String> {
    let next = match rotation.stage {
        Stage::Trust => "sign",
        Stage::Sign => "finish",
        Stage::Finish => return None,
    };
    Some(dirs.command(&format!("certs rotate-ca {} {next}", rotation.row.name)))
}

fn rotation_text(
    dirs: &TreeDirs,
    rotation: &Rotation,
    restarts: &[Restart],
    flags: &[TrustFlag],
) -> String {
    let row = rotation.row;
    let head = format!("[rotate-ca] {} {}:", row.name, rotation.stage.name());
    let would = |verb: &str| match rotation.dry_run {
        true => format!("would {verb}"),
        false => format!("{verb}d"),
    };
    let mut text = String::new();
    for (verb, paths) in [
        ("create", &rotation.created),
        ("replace", &rotation.replaced),
        ("remove", &rotation.removed),
    ] {
        for path in paths {
            text.push_str(&format!("{head} {} {}\n", would(verb), path.display()));
        }
    }
    if !rotation.reissued.is_empty() {
        let names: Vec<&str> = rotation.reissued.iter().map(|r| r.cert_name()).collect();
        let verb = match rotation.dry_run {
            true => "would re-issue",
            false => "re-issued",
        };
        text.push_str(&format!(
            "{head} {verb} with new keys, signed by the new {}: {}\n",
            what(row),
            names.join(", ")
        ));
    }
    if text.is_empty() {
        text.push_str(&format!(
            "{head} nothing to write: every file holds what this stage writes\n"
        ));
    }
    if rotation.dry_run {
        text.push_str("(dry run: nothing was written)\n");
        return text;
    }
    if let Some(backup) = &rotation.backup_dir {
        text.push_str(&format!(
            "\nOld files (the old {} among them) were backed up in {}\n",
            private_key(row),
            backup.display()
        ));
    }
    if rotation.stage == Stage::Finish && rotation.before == Phase::Idle {
        text.push_str(&format!("{} has no rotation under way.\n", row.name));
        return text;
    }
    text.push('\n');
    text.push_str(&summary(rotation));
    text.push_str(&restart_lines(restarts, flags));
    text.push_str(&afterwards(dirs, rotation));
    text
}

/// "CA" or "key", for people.
fn what(row: &Profile) -> &'static str {
    match row.kind {
        Kind::KeyPair => "key",
        _ => "CA",
    }
}

/// What signs, for people: "CA key" or "signing key".
fn private_key(row: &Profile) -> &'static str {
    match row.kind {
        Kind::KeyPair => "signing key",
        _ => "CA key",
    }
}

/// The pin and algorithm of `anchor`, for people.
fn anchor_words(anchor: &Anchor) -> String {
    match anchor.algorithm() {
        Some(algorithm) => format!("{} ({algorithm})", anchor.pin()),
        None => anchor.pin().to_string(),
    }
}

/// One sentence of where the rotation stands after the stage.
fn summary(rotation: &Rotation) -> String {
    let row = rotation.row.name;
    let what = what(rotation.row);
    let signer = anchor_words(&rotation.signer);
    let other = rotation
        .other
        .as_ref()
        .map(anchor_words)
        .unwrap_or_default();
    match rotation.stage {
        Stage::Trust => format!(
            "{row}: the new {what} {other} is trusted beside the old one {signer}, which still \
             signs.\n"
        ),
        Stage::Sign => {
            format!("{row}: the new {what} {signer} signs; the old one {other} is still trusted.\n")
        }
        Stage::Finish => format!(
            "{row}: {signer} alone is trusted; an old {what} is kept only in the backup sign \
             made.\n"
        ),
    }
}

/// Which components to restart, with the trust flags as `kubepki flags` prints them now.
fn restart_lines(restarts: &[Restart], flags: &[TrustFlag]) -> String {
    let mut text = String::from(
        "Restart these components, each with the flags `kubepki flags <component>` prints now \
         (the kubelet's settings in the file `kubepki kubelet config` writes):\n",
    );
    for restart in restarts {
        let reads: Vec<String> = restart
            .reads
            .iter()
            .map(|read| {
                let set = flags
                    .iter()
                    .find(|f| f.component == restart.component && f.setting.flag == *read);
                set.map_or(read.clone(), |f| f.setting.arg())
            })
            .collect();
        text.push_str(&format!("  {}: {}\n", restart.component, reads.join(" ")));
    }
    text
}

/// What else to do after the stage: other hosts, workers, published objects, waits.
fn afterwards(dirs: &TreeDirs, rotation: &Rotation) -> String {
    let row = rotation.row;
    let cluster_ca = row.role == Role::ClusterCa;
    let key_file = dirs.cert_dir.join(row.key_file().unwrap_or_default());
    let cluster_info = dirs.manifests_dir().join("cluster-info.yaml");
    let mut lines: Vec<String> = Vec::new();
    if cluster_ca && rotation.replaced.contains(&cluster_info) {
        lines.push(format!(
            "Publish what admin.conf now trusts: kubectl apply -f {}",
            cluster_info.display()
        ));
    }
    match rotation.stage {
        Stage::Trust => {
            lines.push(format!(
                "On every other control-plane host: copy {} there (it holds the new private key: \
                 copy it as you would {}) and run `kubepki certs rotate-ca {} trust --from <that \
                 copy>`, then restart the same components there.",
                dirs.cert_dir.join(PENDING_DIR).display(),
                key_file.display(),
                row.name
            ));
            if cluster_ca {
                lines.push(
                    "Workers: before sign, each kubelet must trust both CAs too: its client CA \
                     file (--client-ca-file) and its kubelet.conf's certificate-authority-data \
                     hold what admin.conf now holds."
                        .into(),
                );
            }
        }
        Stage::Sign => {
            lines.push(format!(
                "Run sign on every other control-plane host too, and restart there, before any \
                 host runs finish. The old {} is now only in the backup.",
                private_key(row)
            ));
            if row.kind == Kind::KeyPair {
                lines.push(format!(
                    "Tokens are signed with the new key now; those signed with the old one \
                     verify until finish. Before finish, wait until no client holds one: the \
                     kubelet replaces a pod's token within {KUBELET_TOKEN_REFRESH} (at 80% of \
                     its lifetime, at most {KUBELET_TOKEN_REFRESH}), a TokenRequest token lives \
                     as long as it asked for, and a token Secret never expires (delete those \
                     after finish: the controller manager makes new ones)."
                ));
            }
            if cluster_ca {
                lines.push(
                    "Nodes: a kubelet client certificate the old CA signed is refused after \
                     finish; each kubelet must get a new one (signed by the new CA through a CSR) \
                     before."
                        .into(),
                );
            }
        }
        Stage::Finish => {
            if row.kind == Kind::KeyPair {
                lines.push(
                    "Tokens signed with the old key are refused once kube-apiserver restarts: \
                     delete the token Secrets made before sign (type \
                     kubernetes.io/service-account-token) and the controller manager makes new \
                     ones."
                        .into(),
                );
            }
            lines.push("Run finish on every other control-plane host too.".into());
        }
    }
    if let Some(next) = next_command(dirs, rotation) {
        lines.push(format!(
            "Next, once every component on every host runs as above: {next}"
        ));
    }
    lines.iter().map(|line| format!("{line}\n")).collect()
}

/// Prints where the rotations of the rows stand, in `format`.
pub fn print_rotation_status(
    dirs: &TreeDirs,
    found: &[(&'static Profile, Standing)],
    format: Format,
) -> Result<()> {
    let reports: Vec<StatusReport> = found
        .iter()
        .map(|(row, state)| StatusReport::of(dirs, row, state))
        .collect();
    let list = StatusList {
        rotations: &reports,
    };
    let text = match serialized("RotationStatus", &list, format)? {
        Some(text) => text,
        None => reports.iter().map(StatusReport::text).collect(),
    };
    emit(format, &text)
}

/// Where every rotation stands, for `-o json|yaml`.
#[derive(Serialize)]
struct StatusList<'a> {
    /// One entry per CA or key pair, in the table's order.
    rotations: &'a [StatusReport],
}

/// Where one row's rotation stands, for `-o json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusReport {
    name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    phase: Option<Phase>,
    complete: bool,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    signer: Option<AnchorReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    other: Option<AnchorReport>,
    places: Vec<PlaceReport>,
    old_signed: Vec<PathBuf>,
    unfinished: Vec<String>,
    /// Since when the phase holds (RFC 3339), when a rotation is under way.
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

/// A certificate or public key of a rotation.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AnchorReport {
    role: &'static str,
    pin: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    algorithm: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_after: Option<String>,
}

/// A place of a row's trust and what it holds, by role (`signer`, `new`, `old`).
#[derive(Serialize)]
struct PlaceReport {
    path: PathBuf,
    holds: Vec<&'static str>,
}

impl StatusReport {
    fn of(dirs: &TreeDirs, row: &'static Profile, standing: &Standing) -> StatusReport {
        let untold = |description: &str, problem: Option<String>| StatusReport {
            name: row.name,
            phase: None,
            complete: problem.is_none(),
            description: description.into(),
            signer: None,
            other: None,
            places: Vec::new(),
            old_signed: Vec::new(),
            unfinished: Vec::new(),
            since: None,
            next: None,
            problem,
        };
        let state: &State = match standing {
            Standing::Read(state) => state,
            Standing::Absent => return untold("absent from this tree: nothing to rotate", None),
            Standing::External => {
                return untold(
                    "its key is absent (an external CA): it is rotated where its key is",
                    None,
                );
            }
            Standing::Unknown(problem) => {
                return untold("cannot be told", Some(problem.to_string()));
            }
        };
        let other_role = match state.phase {
            Phase::Trusted => "new",
            _ => "old",
        };
        let role_of = |anchor: &Anchor| match *anchor == state.signer {
            true => "signer",
            false => other_role,
        };
        let next = dirs.command(&format!(
            "certs rotate-ca {} {}",
            row.name,
            state.next_stage().name()
        ));
        StatusReport {
            name: row.name,
            phase: Some(state.phase),
            complete: state.complete(),
            description: state.describe(),
            signer: Some(AnchorReport::of("signer", &state.signer)),
            other: state
                .other
                .as_ref()
                .map(|a| AnchorReport::of(other_role, a)),
            places: state
                .places
                .iter()
                .map(|place| PlaceReport {
                    path: place.path.clone(),
                    holds: place.anchors.iter().map(role_of).collect(),
                })
                .collect(),
            old_signed: state.old_signed.iter().map(|o| o.path.clone()).collect(),
            unfinished: state.unfinished.clone(),
            since: state.since.and_then(|t| {
                t.to_offset(time::UtcOffset::UTC)
                    .replace_nanosecond(0)
                    .ok()?
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok()
            }),
            next: Some(next),
            problem: None,
        }
    }

    fn text(&self) -> String {
        let head = match (&self.phase, &self.problem) {
            (_, Some(problem)) => return format!("{}: cannot be told: {problem}\n", self.name),
            (Some(phase), None) => {
                let since = self
                    .since
                    .as_ref()
                    .map(|t| format!(" (since {t})"))
                    .unwrap_or_default();
                format!(
                    "{}: {}{since}: {}\n",
                    self.name,
                    phase.name(),
                    self.description
                )
            }
            (None, None) => return format!("{}: {}\n", self.name, self.description),
        };
        let mut text = head;
        for anchor in self.signer.iter().chain(&self.other) {
            text.push_str(&format!("  {:<8}{}\n", anchor.role, anchor.words()));
        }
        for place in &self.places {
            let holds = match place.holds.is_empty() {
                true => "(absent)".to_string(),
                false => place.holds.join(", "),
            };
            text.push_str(&format!("  {}: {holds}\n", place.path.display()));
        }
        for path in &self.old_signed {
            text.push_str(&format!(
                "  still signed by the old one: {}\n",
                path.display()
            ));
        }
        if let Some(next) = &self.next {
            text.push_str(&format!("  next: {next}\n"));
        }
        text
    }
}

impl AnchorReport {
    fn of(role: &'static str, anchor: &Anchor) -> AnchorReport {
        let date = |cert: &crate::pki::inspect::CertInfo| cert.not_after.date().to_string();
        AnchorReport {
            role,
            pin: anchor.pin().to_string(),
            algorithm: anchor.algorithm().map(|a| a.name()),
            not_after: anchor.cert().map(date),
        }
    }

    fn words(&self) -> String {
        let mut words = self.pin.clone();
        if let Some(algorithm) = self.algorithm {
            words.push_str(&format!(" {algorithm}"));
        }
        if let Some(until) = &self.not_after {
            words.push_str(&format!(" until {until}"));
        }
        words
    }
}
