//! `sign`: the new CA (or key pair) waiting under `next/` becomes the signer, its key
//! replacing the old one's (which goes to the backup first, with everything else replaced);
//! every certificate the row signs is re-issued by it (new keys, subject and SANs kept, as
//! `renew` does); every place holds the new one, then the old one; what waited under
//! `next/` goes. Runs once `trust` is complete, and again to complete one a killed run left
//! half done (the signer already switched, `next/` not yet emptied).

use super::places::{Place, PlaceKind};
use super::state::{Phase, State};
use super::trust::manifests_for;
use super::{Planned, RotateRequest, Stage, out_of_order};
use crate::engine::issue::{Capped, SigningCa};
use crate::engine::renew::{Due, Replacement, check_key, reissue_all};
use crate::pki::keys;
use crate::pki::trust::{self, Anchor};
use crate::profile::{Kind, Profile, Trust};
use crate::tree::TreeDirs;
use crate::tree::reader::{self, Client, Found};
use crate::tree::store;
use anyhow::{Result, anyhow};

/// The writes of `sign` for a tree in `state`; `on_keys` hears how many new keys are done.
pub fn plan(
    dirs: &TreeDirs,
    state: &State,
    request: &RotateRequest,
    on_keys: &dyn Fn(usize, usize),
) -> Result<Planned> {
    let ready = match state.phase {
        Phase::Trusted => state.complete(),
        Phase::Signed => true,
        Phase::Idle | Phase::Finishing => false,
    };
    if !ready {
        return Err(out_of_order(dirs, state, Stage::Sign));
    }
    let switching = state.phase == Phase::Trusted;
    let (new, key_pem) = match (switching, &state.pending.key, &state.other) {
        (true, Some(key), Some(new)) => (new, &key.pem),
        (false, _, _) => (&state.signer, &state.signer_key.pem),
        _ => {
            return Err(anyhow!(
                "internal error: {} is trusted without its new one",
                state.row.name
            ));
        }
    };
    let old = state.old();
    let wanted = [new, old];
    let mut planned = Planned {
        backup: true,
        after: Some((new.clone(), Some(old.clone()))),
        ..Planned::default()
    };
    if switching {
        signer_files(dirs, state.row, key_pem, &wanted, &mut planned);
    }
    let due = due_rows(dirs, state.row, new, request)?;
    if let Some(new_cert) = new.cert() {
        let key = keys::from_pem(key_pem)?;
        let trusted: Vec<_> = wanted.iter().filter_map(|a| a.cert().cloned()).collect();
        let signer = SigningCa::new(new_cert.clone(), key)?.trusting(&trusted);
        let signer_of = |_: &str| Ok(&signer);
        for replacement in reissue_all(dirs, &due, &signer_of, on_keys)? {
            match replacement {
                Replacement::Pair { key, cert } => planned.pairs.push((key, cert)),
                Replacement::Kubeconfig(file) => planned.wholes.push(file),
            }
        }
    }
    planned.reissued = due.iter().map(|d| d.row).collect();
    let wanted_end = request.now + request.cert_validity.to_time();
    planned.capped = due
        .iter()
        .filter_map(|d| {
            let request = d.request.as_ref()?;
            Capped::of(d.row.cert_name(), state.row.name, request, wanted_end)
        })
        .collect();
    for place in &state.places {
        if !place.holds(&wanted) && !written_elsewhere(place, state.row, switching, &planned) {
            planned.wholes.push(place.write(dirs, &wanted)?);
        }
    }
    let manifests = manifests_for(dirs, state, &planned.wholes, request)?;
    planned.wholes.extend(store::differing(manifests)?);
    if state.pending.exists() {
        let mut pending = state.row.pending_files();
        pending.reverse();
        planned.removals = pending;
    }
    Ok(planned)
}

/// The signer's own files: for a CA its key and certificate file as a pair (the certificate
/// file holding the new one alone, or the new then the old one where its trust is in
/// place); for a key pair its private and public key files.
fn signer_files(
    dirs: &TreeDirs,
    row: &'static Profile,
    key_pem: &[u8],
    wanted: &[&Anchor; 2],
    planned: &mut Planned,
) {
    let key = dirs.key_write(row, key_pem.to_vec());
    match row.kind {
        Kind::KeyPair => {
            let public = trust::to_pem(wanted.iter().copied());
            planned.wholes.push(key);
            planned.wholes.push(dirs.public_key_write(row, public));
        }
        _ => {
            let certs = match row.trust {
                Trust::Separate(_) => trust::to_pem([wanted[0]]),
                _ => trust::to_pem(wanted.iter().copied()),
            };
            planned.pairs.push((key, dirs.cert_write(row, certs)));
        }
    }
}

/// Whether `place` is written by the plan already: the signer's own file, or a kubeconfig
/// whose certificate is re-issued.
fn written_elsewhere(place: &Place, row: &Profile, switching: bool, planned: &Planned) -> bool {
    match &place.kind {
        PlaceKind::TrustFile(rel) => switching && row.signer_file().as_ref() == Some(rel),
        PlaceKind::Kubeconfig(kubeconfig_row, _) => planned
            .reissued
            .iter()
            .any(|r| r.name == kubeconfig_row.name),
    }
}

/// The rows `row` signs whose certificate (in the tree) `new` did not sign: each is
/// re-issued by it.
fn due_rows(
    dirs: &TreeDirs,
    row: &Profile,
    new: &Anchor,
    request: &RotateRequest,
) -> Result<Vec<Due>> {
    let Some(new_cert) = new.cert() else {
        return Ok(Vec::new());
    };
    let mut due = Vec::new();
    for signed in row.signed_rows() {
        let Some(found) = reader::read_row(dirs, signed)? else {
            continue;
        };
        let pointed =
            matches!(&found, Found::Kubeconfig(k) if matches!(k.client, Client::Pointed(_)));
        if pointed || found.cert().info.verify_signed_by(new_cert).is_ok() {
            continue;
        }
        check_key(dirs, signed, &found)?;
        let validity = (request.now, request.cert_validity);
        due.push(Due::of(
            signed,
            found,
            new_cert,
            validity,
            request.algorithm,
        ));
    }
    Ok(due)
}
