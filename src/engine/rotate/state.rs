//! Where the rotation of one signing row stands, inferred from its files alone (there is no
//! state file): the signer (the first certificate of its certificate file and the key beside
//! it, or the service-account key), the new CA or key pair waiting under `next/`, and what
//! every place of its trust holds. A place holds the signer alone, the signer then one other
//! (the CA coming during `trust`, going after `sign`), or, while `sign` is being completed,
//! the other first. Anything else (a third certificate, another subject, a key that matches
//! none, a bundle without the signer) is refused, naming the file. Reads; writes nothing.

use super::Stage;
use super::places::{Place, read_places};
use crate::pki::keys;
use crate::pki::trust::Anchor;
use crate::profile::{Kind, PENDING_DIR, Profile, Trust};
use crate::tree::TreeDirs;
use crate::tree::problem::{Place as Where, Problem};
use crate::tree::reader::{self, Checked, Client, Found, read_anchors, read_file};
use crate::tree::store;
use rcgen::KeyPair;
use std::fmt;
use std::path::{Path, PathBuf};

/// The phase of a rotation, named after the last stage that ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// One signer, trusted alone: no rotation under way, or the last one finished.
    Idle,
    /// `trust` ran (or began): the new one waits in `next/`, trusted beside the old, which
    /// still signs.
    Trusted,
    /// `sign` ran (or began): the new one signs; the old one is still trusted.
    Signed,
    /// `finish` began: the old one left some places and not others.
    Finishing,
}

impl Phase {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Trusted => "trusted",
            Phase::Signed => "signed",
            Phase::Finishing => "finishing",
        }
    }
}

/// A private key as read, with its PEM kept as it is. `Debug` never shows it.
pub struct KeyFile {
    /// The file.
    pub path: PathBuf,
    /// Its content.
    pub pem: Vec<u8>,
    /// The key, loaded.
    pub key: KeyPair,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyFile({}, <redacted>)", self.path.display())
    }
}

/// What waits under `next/`.
#[derive(Debug, Default)]
pub struct Pending {
    /// `next/<file>.key`.
    pub key: Option<KeyFile>,
    /// `next/<file>.crt` (a CA's) or `next/<file>.pub`.
    pub anchor: Option<Anchor>,
}

impl Pending {
    /// Whether anything waits.
    pub fn exists(&self) -> bool {
        self.key.is_some() || self.anchor.is_some()
    }

    /// Whether what waits is `anchor` (by its key, or its certificate when no key waits).
    pub fn is(&self, anchor: &Anchor) -> bool {
        match (&self.key, &self.anchor) {
            (Some(key), _) => anchor.matches(&key.key),
            (None, Some(pending)) => pending == anchor,
            (None, None) => false,
        }
    }
}

/// A certificate of a row the rotated CA signs that its old CA signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OldSigned {
    /// The row.
    pub row: &'static Profile,
    /// Where the certificate is.
    pub path: PathBuf,
    /// Whether it is outside the tree (the kubelet's own rotated certificate), which kubepki
    /// does not renew.
    pub outside: bool,
}

/// The rotation of one row, as its files tell it.
#[derive(Debug)]
pub struct State {
    /// The row.
    pub row: &'static Profile,
    /// The phase.
    pub phase: Phase,
    /// What signs now: the first certificate of the row's certificate file, or the key
    /// pair's public key.
    pub signer: Anchor,
    /// The signer's key.
    pub signer_key: KeyFile,
    /// The other one of the rotation: the new one (trusted) or the old one (signed,
    /// finishing); none when idle.
    pub other: Option<Anchor>,
    /// What waits under `next/`.
    pub pending: Pending,
    /// Every place of the row's trust.
    pub places: Vec<Place>,
    /// Certificates the old CA signed, once the new one signs.
    pub old_signed: Vec<OldSigned>,
    /// Why the phase is not complete yet (the stage named after it must run again), for
    /// people; empty when it is complete.
    pub unfinished: Vec<String>,
    /// Since when the phase holds, from the file its stage wrote last: `next/`'s key
    /// (`trust`), the signer's key (`sign`, which writes it); none when idle.
    pub since: Option<time::OffsetDateTime>,
}

impl State {
    /// Whether the phase is complete.
    pub fn complete(&self) -> bool {
        self.unfinished.is_empty()
    }

    /// The stage to run next: the one named after an incomplete phase (again), else the
    /// following one (`trust` when idle).
    pub fn next_stage(&self) -> Stage {
        match (self.phase, self.complete()) {
            (Phase::Idle, _) | (Phase::Trusted, false) => Stage::Trust,
            (Phase::Trusted, true) | (Phase::Signed, false) => Stage::Sign,
            (Phase::Signed, true) | (Phase::Finishing, _) => Stage::Finish,
        }
    }

    /// Where the rotation stands, in words.
    pub fn describe(&self) -> String {
        let first = self
            .unfinished
            .first()
            .map(String::as_str)
            .unwrap_or_default();
        match (self.phase, self.complete()) {
            (Phase::Idle, _) => "no rotation is under way".into(),
            (Phase::Trusted, true) => "the new one is trusted and does not sign yet".into(),
            (Phase::Trusted, false) => format!("trust is not complete: {first}"),
            (Phase::Signed, true) => "the new one signs and the old one is still trusted".into(),
            (Phase::Signed, false) => format!("sign is not complete: {first}"),
            (Phase::Finishing, _) => format!("finish is not complete: {first}"),
        }
    }

    /// The old one: the signer before `sign`, the other one after.
    pub fn old(&self) -> &Anchor {
        match (self.phase, &self.other) {
            (Phase::Signed | Phase::Finishing, Some(other)) => other,
            _ => &self.signer,
        }
    }
}

/// How a place stands to the signer `S` and the other one `X`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// `S` alone (or, for a separate trust file, no file).
    Alone,
    /// `S`, then `X`.
    Both,
    /// `X`, then `S`: a `sign` not yet complete.
    Reversed,
}

/// Reads where the rotation of `row` stands.
pub fn read_state(dirs: &TreeDirs, row: &'static Profile) -> Checked<State> {
    let signer_key =
        read_key(dirs, &row.key_file().unwrap_or_default())?.ok_or_else(|| Problem::Missing {
            path: dirs.cert_dir.join(row.key_file().unwrap_or_default()),
            hint: "a rotation needs the key that signs (an external CA is rotated where its \
                   key is)"
                .into(),
        })?;
    let signer = read_signer(dirs, row, &signer_key)?;
    let pending = read_pending(dirs, row, &signer)?;
    let places = read_places(dirs, row)?;
    check_certificates(&signer, &places)?;
    let other = the_other(&signer, &places, &pending)?;
    let mut state = State {
        row,
        phase: Phase::Idle,
        signer,
        signer_key,
        other,
        pending,
        places,
        old_signed: Vec::new(),
        unfinished: Vec::new(),
        since: None,
    };
    infer_phase(dirs, &mut state)?;
    state.since = match state.phase {
        Phase::Idle => None,
        Phase::Trusted => state
            .pending
            .key
            .as_ref()
            .and_then(|k| reader::modified(&k.path)),
        Phase::Signed | Phase::Finishing => reader::modified(&state.signer_key.path),
    };
    Ok(state)
}

/// Reads `rel` under the cert dir as a private key; `None` when absent.
pub fn read_key(dirs: &TreeDirs, rel: &Path) -> Checked<Option<KeyFile>> {
    let path = dirs.cert_dir.join(rel);
    let Some(pem) = read_file(&dirs.cert_dir, rel)? else {
        return Ok(None);
    };
    let key = keys::from_pem(&pem).map_err(|e| Problem::BadKey {
        place: Where::File(path.clone()),
        why: format!("{e:#}"),
    })?;
    Ok(Some(KeyFile { path, pem, key }))
}

/// The signer: the first certificate of a CA's certificate file, which the key must match
/// (and which, for a CA whose trust is separate, must be alone); a key pair's public key.
fn read_signer(dirs: &TreeDirs, row: &Profile, key: &KeyFile) -> Checked<Anchor> {
    if row.kind == Kind::KeyPair {
        return Ok(Anchor::of_key(&key.key));
    }
    let rel = row.cert_file().unwrap_or_default();
    let cert_path = dirs.cert_dir.join(&rel);
    let found = read_anchors(dirs, row, &rel)?.ok_or(Problem::CaMissing(cert_path.clone()))?;
    let anchors = found.anchors;
    match anchors.iter().position(|a| a.matches(&key.key)) {
        Some(0) => {}
        Some(_) if store::is_staged(&dirs.cert_dir, &rel) => {
            return Err(Problem::Interrupted {
                key: key.path.clone(),
                cert: cert_path,
            });
        }
        Some(at) => {
            return Err(Problem::TrustShape {
                path: cert_path,
                why: format!(
                    "its certificate {} belongs to {}, not its first (the one that signs)",
                    at + 1,
                    key.path.display()
                ),
            });
        }
        None => {
            return Err(Problem::TrustShape {
                path: key.path.clone(),
                why: format!(
                    "it matches none of the {} certificate(s) of {}",
                    anchors.len(),
                    cert_path.display()
                ),
            });
        }
    }
    if matches!(row.trust, Trust::Separate(_)) && anchors.len() > 1 {
        return Err(Problem::TrustShape {
            path: cert_path,
            why: format!(
                "it holds {} certificates, and the controller manager's signer \
                 (--cluster-signing-cert-file) takes one; kubepki keeps this CA's bundle in {}",
                anchors.len(),
                row.trust_file().unwrap_or_default().display()
            ),
        });
    }
    let signer = anchors
        .into_iter()
        .next()
        .ok_or(Problem::CaMissing(cert_path))?;
    Ok(signer)
}

/// What waits under `next/`: the key must match the certificate (or public key) beside it,
/// which must be one CA certificate of the signer's subject; a certificate without its key
/// is only the end of a `sign` (the signer's own).
fn read_pending(dirs: &TreeDirs, row: &Profile, signer: &Anchor) -> Checked<Pending> {
    let files = row.pending_files();
    let (Some(key_rel), Some(anchor_rel)) = (files.first(), files.get(1)) else {
        return Ok(Pending::default());
    };
    let key = read_key(dirs, key_rel)?;
    let found = read_anchors(dirs, row, anchor_rel)?;
    let anchor_path = dirs.cert_dir.join(anchor_rel);
    let anchor = match found {
        None => None,
        Some(found) if found.anchors.len() == 1 => found.anchors.into_iter().next(),
        Some(found) => {
            return Err(Problem::TrustShape {
                path: anchor_path,
                why: format!("it holds {} blocks, not one", found.anchors.len()),
            });
        }
    };
    if let Some(anchor) = &anchor {
        check_same_ca(signer, anchor, &anchor_path, 1)?;
        match &key {
            Some(key) if !anchor.matches(&key.key) => {
                return Err(Problem::TrustShape {
                    path: key.path.clone(),
                    why: format!("it is not the key of {}", anchor_path.display()),
                });
            }
            None if anchor != signer => {
                return Err(Problem::TrustShape {
                    path: anchor_path,
                    why: format!(
                        "it waits without its key {}",
                        dirs.cert_dir.join(key_rel).display()
                    ),
                });
            }
            _ => {}
        }
    }
    Ok(Pending { key, anchor })
}

/// Every certificate a place holds must be a CA of the signer's subject.
fn check_certificates(signer: &Anchor, places: &[Place]) -> Checked<()> {
    for place in places {
        for (n, anchor) in place.anchors.iter().enumerate() {
            check_same_ca(signer, anchor, &place.path, n + 1)?;
        }
    }
    Ok(())
}

/// `anchor`, the `n`-th of `path`, must be a CA certificate with the signer's subject (a
/// public key, for a key pair, needs nothing more).
pub fn check_same_ca(signer: &Anchor, anchor: &Anchor, path: &Path, n: usize) -> Checked<()> {
    let (Some(signer), Some(cert)) = (signer.cert(), anchor.cert()) else {
        return Ok(());
    };
    let why = match (cert.is_ca, cert.subject == signer.subject) {
        (false, _) => format!("its certificate {n} is not a CA"),
        (true, false) => format!(
            "its certificate {n} (CN {:?}) is not a certificate of this CA (CN {:?}): its \
             subject differs",
            cert.cn, signer.cn
        ),
        (true, true) => return Ok(()),
    };
    Err(Problem::TrustShape {
        path: path.to_path_buf(),
        why,
    })
}

/// The one other certificate (or public key) of the rotation, if any: every place and
/// what waits in `next/` may hold the signer and at most one other, the same everywhere.
fn the_other(signer: &Anchor, places: &[Place], pending: &Pending) -> Checked<Option<Anchor>> {
    let mut other: Option<Anchor> = pending.anchor.clone().filter(|a| a != signer);
    for place in places {
        for anchor in place.anchors.iter().filter(|a| *a != signer) {
            match &other {
                None => other = Some(anchor.clone()),
                Some(known) if known == anchor => {}
                Some(known) => {
                    return Err(Problem::TrustShape {
                        path: place.path.clone(),
                        why: format!(
                            "it holds {}, a third one beside the signer {} and {}",
                            anchor.pin(),
                            signer.pin(),
                            known.pin()
                        ),
                    });
                }
            }
        }
    }
    Ok(other)
}

/// How `place` stands to the signer and the other one.
fn shape(place: &Place, signer: &Anchor, other: Option<&Anchor>) -> Checked<Shape> {
    let refused = |why: String| Problem::TrustShape {
        path: place.path.clone(),
        why,
    };
    let held: Vec<&Anchor> = place.anchors.iter().collect();
    match (held.as_slice(), other) {
        ([], _) => Ok(Shape::Alone),
        ([only], _) if *only == signer => Ok(Shape::Alone),
        ([first, second], Some(other)) if *first == signer && *second == other => Ok(Shape::Both),
        ([first, second], Some(other)) if *first == other && *second == signer => {
            Ok(Shape::Reversed)
        }
        ([_], _) => Err(refused(format!(
            "it does not hold the signer {}",
            signer.pin()
        ))),
        (held, _) if held.len() > 2 => Err(refused(format!(
            "it holds {} certificates or keys; a rotation holds two at most (the signer, then \
             the one coming or going)",
            held.len()
        ))),
        _ => Err(refused(format!(
            "it holds the signer {} twice, or not at all",
            signer.pin()
        ))),
    }
}

/// Decides the phase from what waits and what the places hold, and what is unfinished.
fn infer_phase(dirs: &TreeDirs, state: &mut State) -> Checked<()> {
    let other = state.other.clone();
    let mut shapes = Vec::new();
    for place in &state.places {
        shapes.push((
            place.path.clone(),
            shape(place, &state.signer, other.as_ref())?,
        ));
    }
    let signing_pending = state.pending.is(&state.signer);
    state.phase = phase_of(state, signing_pending, &shapes)?;
    unfinished_places(state, &shapes)?;
    match state.phase {
        Phase::Trusted if state.pending.anchor.is_none() => state.unfinished.push(format!(
            "{} waits without its certificate",
            state
                .pending
                .key
                .as_ref()
                .map(|k| k.path.display().to_string())
                .unwrap_or_default()
        )),
        Phase::Signed if signing_pending => state.unfinished.push(format!(
            "{} still holds what now signs",
            dirs.cert_dir.join(PENDING_DIR).display()
        )),
        _ => {}
    }
    match (state.phase, &other) {
        (Phase::Trusted, Some(other)) if !state.pending.is(other) => Err(Problem::TrustShape {
            path: first_place(state),
            why: format!(
                "it trusts {}, which is not the new one waiting in next/",
                other.pin()
            ),
        }),
        (Phase::Signed | Phase::Finishing, Some(old)) => still_signed_by_old(dirs, state, old),
        _ => Ok(()),
    }
}

/// The phase: what waits in `next/` (and whether it is the signer), whether a place holds
/// another one, and whether every place holds both.
fn phase_of(state: &State, signing_pending: bool, shapes: &[(PathBuf, Shape)]) -> Checked<Phase> {
    Ok(
        match (state.pending.exists(), signing_pending, &state.other) {
            (true, true, Some(_)) => Phase::Signed,
            (true, true, None) => {
                return Err(Problem::TrustShape {
                    path: first_place(state),
                    why: "the new one signs and waits in next/, but no place holds the old one"
                        .into(),
                });
            }
            (true, false, _) => Phase::Trusted,
            (false, _, None) => Phase::Idle,
            (false, _, Some(_)) if shapes.iter().all(|(_, s)| *s == Shape::Both) => Phase::Signed,
            (false, _, Some(_)) => Phase::Finishing,
        },
    )
}

/// The first place that holds the CA's trust, to name in a refusal.
fn first_place(state: &State) -> PathBuf {
    state
        .places
        .first()
        .map(|p| p.path.clone())
        .unwrap_or_default()
}

/// The places not yet in the shape the phase leaves, as unfinished work; a shape no stage
/// leaves in this phase is refused.
fn unfinished_places(state: &mut State, shapes: &[(PathBuf, Shape)]) -> Checked<()> {
    for (path, shape) in shapes {
        let path_shown = path.display();
        match (state.phase, shape) {
            (Phase::Trusted, Shape::Alone) => state
                .unfinished
                .push(format!("{path_shown} does not trust the new one yet")),
            (Phase::Trusted | Phase::Finishing, Shape::Reversed) => {
                return Err(Problem::TrustShape {
                    path: path.clone(),
                    why: "it holds the signer second".into(),
                });
            }
            (Phase::Signed, Shape::Reversed | Shape::Alone) => state.unfinished.push(format!(
                "{path_shown} does not hold the new one first and the old one after it"
            )),
            (Phase::Finishing, Shape::Both) => state
                .unfinished
                .push(format!("{path_shown} still trusts the old one")),
            _ => {}
        }
    }
    Ok(())
}

/// Once the new one signs: the leaves `old` still signs (unfinished while signing).
fn still_signed_by_old(dirs: &TreeDirs, state: &mut State, old: &Anchor) -> Checked<()> {
    check_not_newer(state, old)?;
    state.old_signed = old_signed(dirs, state.row, &state.signer, old)?;
    let inside = state.old_signed.iter().filter(|o| !o.outside);
    let inside: Vec<String> = inside.map(|o| o.path.display().to_string()).collect();
    if state.phase == Phase::Signed && !inside.is_empty() {
        state.unfinished.push(format!(
            "still signed by the old one: {}",
            inside.join(", ")
        ));
    }
    Ok(())
}

/// Once the new one signs and nothing waits in `next/`, the other one of a CA's bundle is
/// the old CA: one newer than the signer means the new CA's files under `next/` were lost
/// after `trust`, and `finish` would drop the CA that was to sign.
fn check_not_newer(state: &State, old: &Anchor) -> Checked<()> {
    if state.pending.exists() {
        return Ok(());
    }
    let (Some(signer), Some(old_cert)) = (state.signer.cert(), old.cert()) else {
        return Ok(());
    };
    match old_cert.not_before > signer.not_before {
        false => Ok(()),
        true => Err(Problem::TrustShape {
            path: state
                .places
                .first()
                .map(|p| p.path.clone())
                .unwrap_or_default(),
            why: format!(
                "its other certificate ({}) is newer than the one that signs, and nothing waits \
                 in next/ (were the new CA's files removed after trust?)",
                old.pin()
            ),
        }),
    }
}

/// The certificates of the rows `row` signs that `old` signed and `signer` did not.
fn old_signed(
    dirs: &TreeDirs,
    row: &Profile,
    signer: &Anchor,
    old: &Anchor,
) -> Checked<Vec<OldSigned>> {
    let (Some(signer), Some(old)) = (signer.cert(), old.cert()) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for signed in row.signed_rows() {
        let Some(present) = reader::read_row(dirs, signed)? else {
            continue;
        };
        let cert = present.cert();
        let by_old = cert.info.verify_signed_by(old).is_ok();
        if by_old && cert.info.verify_signed_by(signer).is_err() {
            let outside = matches!(
                &present,
                Found::Kubeconfig(k) if matches!(k.client, Client::Pointed(_))
            );
            found.push(OldSigned {
                row: signed,
                path: cert.path().to_path_buf(),
                outside,
            });
        }
    }
    Ok(found)
}
