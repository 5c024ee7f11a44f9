//! `finish`: the old CA (or key) leaves every place of the row's trust, which then holds the
//! signer alone; its key is kept only in the backup `sign` made. Runs once `sign` is
//! complete, again to complete one a killed run left half done, and on a tree with no
//! rotation under way (where it has nothing to do).

use super::state::{Phase, State};
use super::trust::{manifests_for, place_writes};
use super::{Planned, RotateRequest, SA_FINISH_AFTER, Stage, out_of_order, utc_minute};
use crate::profile::Kind;
use crate::tree::TreeDirs;
use crate::tree::store;
use anyhow::{Result, bail};

/// The writes of `finish` for a tree in `state`.
pub fn plan(dirs: &TreeDirs, state: &State, request: &RotateRequest) -> Result<Planned> {
    let ready = match state.phase {
        Phase::Idle | Phase::Finishing => true,
        Phase::Signed => state.complete(),
        Phase::Trusted => false,
    };
    if !ready {
        return Err(out_of_order(dirs, state, Stage::Finish));
    }
    too_early(state, request)?;
    let inside: Vec<String> = state
        .old_signed
        .iter()
        .filter(|o| !o.outside)
        .map(|o| o.row.cert_name().to_string())
        .collect();
    if !inside.is_empty() {
        bail!(
            "{}: finish would lock out what the old one still signs: {}; renew it first (`{}`)",
            state.row.name,
            inside.join(", "),
            dirs.command(&format!("certs renew {}", inside.join(" ")))
        );
    }
    let writes = place_writes(dirs, &state.places, &[&state.signer])?;
    let mut wholes = store::differing(writes)?;
    wholes.extend(store::differing(manifests_for(
        dirs, state, &wholes, request,
    )?)?);
    Ok(Planned {
        wholes,
        after: Some((state.signer.clone(), None)),
        ..Planned::default()
    })
}

/// Refuses the service-account key's `finish` sooner than `SA_FINISH_AFTER` after `sign`
/// (unless `--force`): the API server would reject the tokens the old key signed that have
/// not expired yet.
fn too_early(state: &State, request: &RotateRequest) -> Result<()> {
    let (Kind::KeyPair, Phase::Signed, Some(signed)) = (state.row.kind, state.phase, state.since)
    else {
        return Ok(());
    };
    let ready_at = signed + SA_FINISH_AFTER;
    if request.force || request.now >= ready_at {
        return Ok(());
    }
    let ago = request.now - signed;
    bail!(
        "{}: sign ran {}h{:02}m ago ({}); finish removes the old key, and the API server \
         would reject every token it signed that has not expired (up to {}h); run finish after \
         {}, or give --force",
        state.row.name,
        ago.whole_hours(),
        ago.whole_minutes() % 60,
        utc_minute(signed),
        SA_FINISH_AFTER.whole_hours(),
        utc_minute(ready_at)
    )
}
