//! `trust`: the new CA (or key pair) waits under `next/`, and every place of the row's trust
//! holds the signer, then the new one. Runs when no rotation is under way, and again to
//! complete one a killed run left half done.

use super::incoming::{Making, incoming};
use super::places::Place;
use super::state::{Phase, State};
use super::{Planned, RotateRequest, Stage, out_of_order};
use crate::engine::bootstrap::manifests_after;
use crate::pki::trust::Anchor;
use crate::tree::TreeDirs;
use crate::tree::store::{self, FileWrite};
use anyhow::{Result, bail};

/// The writes of `trust` for a tree in `state`.
pub fn plan(dirs: &TreeDirs, state: &State, request: &RotateRequest) -> Result<Planned> {
    if !matches!(state.phase, Phase::Idle | Phase::Trusted) {
        return Err(out_of_order(dirs, state, Stage::Trust));
    }
    let making = Making {
        algorithm: request.algorithm,
        validity: request.ca_validity,
        now: request.now,
    };
    let new = incoming(dirs, state, request.from.as_deref(), &making)?;
    if !new.creates.is_empty() && !request.force {
        check_lifetime(state, &new.anchor, request)?;
    }
    let wanted = [&state.signer, &new.anchor];
    let writes = place_writes(dirs, &state.places, &wanted)?;
    let mut wholes = store::differing(writes)?;
    wholes.extend(store::differing(manifests_for(
        dirs, state, &wholes, request,
    )?)?);
    Ok(Planned {
        creates: new.creates,
        wholes,
        after: Some((state.signer.clone(), Some(new.anchor))),
        ..Planned::default()
    })
}

/// Refuses a new CA that ends before the one that signs now, or within `--cert-validity`
/// from now: `sign` would cap every certificate it re-issues to its end, and the next
/// rotation would come sooner than the last.
fn check_lifetime(state: &State, new: &Anchor, request: &RotateRequest) -> Result<()> {
    let (Some(new), Some(signer)) = (new.cert(), state.signer.cert()) else {
        return Ok(());
    };
    let row = state.row.name;
    let day = |t: time::OffsetDateTime| t.date().to_string();
    if new.not_after < signer.not_after {
        bail!(
            "the new {row} CA ends {}, before the current one ({}); give one that outlives it \
             (--force accepts it)",
            day(new.not_after),
            day(signer.not_after)
        );
    }
    let wanted_end = request.now + request.cert_validity.to_time();
    if new.not_after < wanted_end {
        bail!(
            "the new {row} CA ends {}, within --cert-validity {} from now: every certificate \
             `sign` re-issues would end with it; give one that outlives them (--force accepts it)",
            day(new.not_after),
            request.cert_validity
        );
    }
    Ok(())
}

/// The writes that make every place hold `wanted`, for those that do not.
pub fn place_writes(
    dirs: &TreeDirs,
    places: &[Place],
    wanted: &[&crate::pki::trust::Anchor],
) -> Result<Vec<FileWrite>> {
    places
        .iter()
        .filter(|place| !place.holds(wanted))
        .map(|place| place.write(dirs, wanted))
        .collect()
}

/// The bootstrap manifests, when admin.conf is among `writes`: `cluster-info` publishes
/// what it trusts.
pub fn manifests_for(
    dirs: &TreeDirs,
    state: &State,
    writes: &[FileWrite],
    request: &RotateRequest,
) -> Result<Vec<FileWrite>> {
    let admin = state
        .places
        .iter()
        .filter_map(Place::kubeconfig_row)
        .find(|row| row.role == crate::profile::Role::Admin);
    let admin_written = admin.is_some_and(|row| {
        let path = dirs.kubeconfig_dir.join(row.file);
        writes.iter().any(|w| w.path() == path)
    });
    match admin_written {
        true => manifests_after(dirs, writes, request.now),
        false => Ok(Vec::new()),
    }
}
