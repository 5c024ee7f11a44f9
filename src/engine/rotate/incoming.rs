//! The new CA (or service-account key pair) that `trust` brings in, to wait under `next/`
//! until `sign`: what already waits there (given a certificate for its key when a killed run
//! left the key alone), what `--from DIR` holds (a directory laid out as a cert dir: another
//! host's `next/`, or a whole cert dir), or a new key and a self-signed certificate with the
//! signer's subject. What waits is never replaced by something else.

use super::state::{KeyFile, State, check_same_ca, read_key};
use crate::duration::Duration;
use crate::engine::issue::{By, issue};
use crate::pki::keys::{self, Algorithm};
use crate::pki::trust::Anchor;
use crate::profile::{Kind, PENDING_DIR, Profile};
use crate::tree::TreeDirs;
use crate::tree::reader::read_anchors;
use crate::tree::store::{FileWrite, PUBLIC_MODE, SECRET_MODE};
use anyhow::{Result, anyhow, bail};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// How the new one is made when nothing waits and nothing is given.
pub struct Making {
    /// Its key's algorithm; `None`: the signer's.
    pub algorithm: Option<Algorithm>,
    /// A new CA's validity.
    pub validity: Duration,
    /// The one "now" of the run.
    pub now: OffsetDateTime,
}

/// The new one, and the files of `next/` still to create for it, key first.
pub struct Incoming {
    /// Its certificate (or public key).
    pub anchor: Anchor,
    /// The files to create under `next/`.
    pub creates: Vec<FileWrite>,
}

/// The new one for `state`'s row: what waits, what `from` holds, or one made as `making`
/// says.
pub fn incoming(
    dirs: &TreeDirs,
    state: &State,
    from: Option<&Path>,
    making: &Making,
) -> Result<Incoming> {
    let given = from
        .map(|dir| read_given(dir, state, making.now))
        .transpose()?;
    let [key_rel, anchor_rel] = pending_rels(state.row)?;
    let pending = &state.pending;
    let (anchor, anchor_pem, key_pem) = match (&pending.key, &pending.anchor, given) {
        (Some(_), Some(waiting), given) => {
            if let Some(given) = given.filter(|g| g.anchor != *waiting) {
                bail!(
                    "{} already holds another new one ({}) than {} ({}); run \
                     `certs rotate-ca {} status` to see where the rotation stands",
                    dirs.cert_dir.join(&anchor_rel).display(),
                    waiting.pin(),
                    given.path.display(),
                    given.anchor.pin(),
                    state.row.name
                );
            }
            return Ok(Incoming {
                anchor: waiting.clone(),
                creates: Vec::new(),
            });
        }
        (Some(key), None, Some(given)) if given.anchor.matches(&key.key) => {
            (given.anchor, given.anchor_pem, None)
        }
        (Some(key), None, Some(given)) => bail!(
            "{} waits for a new CA, and {} is another one's",
            key.path.display(),
            given.path.display()
        ),
        (Some(key), None, None) => {
            let (anchor, pem, _) = successor(state, keys::from_pem(&key.pem)?, making)?;
            (anchor, pem, None)
        }
        (None, _, Some(given)) => (given.anchor, given.anchor_pem, Some(given.key.pem)),
        (None, _, None) => {
            let algorithm = making
                .algorithm
                .or(state.signer.algorithm())
                .unwrap_or(Algorithm::Rsa2048);
            let (anchor, pem, key_pem) = successor(state, keys::generate(algorithm)?, making)?;
            (anchor, pem, Some(key_pem))
        }
    };
    let mut creates = Vec::new();
    if let Some(key_pem) = key_pem {
        creates.push(pending_write(dirs, key_rel, key_pem, SECRET_MODE));
    }
    let mode = match state.row.kind {
        Kind::KeyPair => SECRET_MODE,
        _ => PUBLIC_MODE,
    };
    creates.push(pending_write(dirs, anchor_rel, anchor_pem, mode));
    Ok(Incoming { anchor, creates })
}

/// The row's key file and certificate (or public key) file under `next/`.
fn pending_rels(row: &Profile) -> Result<[PathBuf; 2]> {
    let files = row.pending_files();
    match <[PathBuf; 2]>::try_from(files) {
        Ok(rels) => Ok(rels),
        Err(_) => Err(anyhow!(
            "internal error: {} has no key and certificate",
            row.name
        )),
    }
}

fn pending_write(dirs: &TreeDirs, rel: PathBuf, content: Vec<u8>, mode: u32) -> FileWrite {
    FileWrite {
        root: dirs.cert_dir.clone(),
        rel,
        content,
        mode,
    }
}

/// A new one for `key`: for a CA, a self-signed certificate with the signer's subject and
/// SANs; for a key pair, its public key. Returns it, its PEM and the key's PEM.
fn successor(
    state: &State,
    key: rcgen::KeyPair,
    making: &Making,
) -> Result<(Anchor, Vec<u8>, Vec<u8>)> {
    let row = state.row;
    let Some(signer) = state.signer.cert() else {
        let anchor = Anchor::of_key(&key);
        let pem = keys::public_key_pem(&key).into_bytes();
        return Ok((anchor, pem, keys::to_pem(&key)?.into_bytes()));
    };
    let request = row.successor_request(signer, making.now, making.validity);
    let issued = issue(row, &request, key, By::Itself)?;
    if issued.cert.subject != signer.subject {
        bail!(
            "the {} CA's subject holds attributes kubepki does not write; make its successor \
             yourself and give it with --from DIR",
            row.name
        );
    }
    let anchor = Anchor::of_cert(issued.cert.clone());
    Ok((anchor, issued.cert_pem, issued.key_pem))
}

/// What `--from DIR` holds.
struct Given {
    /// The file it was read from, for messages.
    path: PathBuf,
    key: KeyFile,
    anchor: Anchor,
    anchor_pem: Vec<u8>,
}

/// Reads the new one from `dir`, laid out as a cert dir: its key, and for a CA its
/// certificate first in its file, a current CA of the signer's subject with another key.
fn read_given(dir: &Path, state: &State, now: OffsetDateTime) -> Result<Given> {
    let row = state.row;
    let from = TreeDirs::new(Some(dir.to_path_buf()), Some(dir.to_path_buf()));
    let key_rel = row.key_file().unwrap_or_default();
    let key = read_key(&from, &key_rel)?.ok_or_else(|| {
        anyhow!(
            "--from {}: {} is missing (the directory holds the new one's files under their \
             usual names, as a cert dir or {}/ does)",
            dir.display(),
            dir.join(&key_rel).display(),
            PENDING_DIR
        )
    })?;
    let (anchor, path) = match row.kind {
        Kind::KeyPair => (Anchor::of_key(&key.key), key.path.clone()),
        _ => {
            let rel = row.cert_file().unwrap_or_default();
            let path = dir.join(&rel);
            let found = read_anchors(&from, row, &rel)?.ok_or_else(|| {
                anyhow!("--from {}: {} is missing", dir.display(), path.display())
            })?;
            let first = found.anchors.into_iter().next();
            let anchor = first.filter(|a| a.matches(&key.key)).ok_or_else(|| {
                anyhow!(
                    "{}: its first certificate is not the key {}'s",
                    path.display(),
                    key.path.display()
                )
            })?;
            check_same_ca(&state.signer, &anchor, &path, 1)?;
            if anchor.cert().is_some_and(|cert| cert.not_after <= now) {
                bail!("{}: the new CA has expired", path.display());
            }
            (anchor, path)
        }
    };
    if anchor == state.signer || state.signer.matches(&key.key) {
        bail!(
            "{}: it is this tree's {} already, not a new one",
            path.display(),
            row.name
        );
    }
    let anchor_pem = anchor.to_pem().into_bytes();
    Ok(Given {
        path,
        key,
        anchor,
        anchor_pem,
    })
}
