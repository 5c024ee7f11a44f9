//! `certs rollback`: the tree back as it was before a generation's run (by default the
//! newest), undoing that run and every later one. Each row comes from the oldest generation,
//! from the one asked for on, that holds it: that copy is the row as it was before. Rows
//! already as they were are left alone; the files a rollback replaces are kept as a
//! generation of their own (so a rollback can be rolled back), and the rollback is marked
//! under way until its writes are done, so that a killed one is finished by the next
//! writing run (`tree::recovery`).

use super::renew::{Backups, Kept};
use crate::cluster::kubeconfig::Kubeconfig;
use crate::pki::inspect::CertInfo;
use crate::pki::pem;
use crate::pki::trust::{self, Anchor, AnchorKind};
use crate::profile::{Kind, Profile, Scope, by_cert_name, by_name};
use crate::tree::generations::{self, Generation, Restore, RestorePlan, RowChange};
use crate::tree::lock::TreeLock;
use crate::tree::{TreeDirs, store};
use anyhow::{Context, Result, anyhow, bail};
use std::path::Path;
use time::OffsetDateTime;

/// What `certs rollback` was asked to do.
pub struct RollbackRequest {
    /// Where the generations are, and how many to keep.
    pub backups: Backups,
    /// The generation to roll back to (its id or directory name); `None`: the newest.
    pub to: Option<String>,
    /// The one "now" of this run.
    pub now: OffsetDateTime,
    /// Restore certificates and kubeconfigs that the CA on disk after the rollback did not
    /// sign (`--force`).
    pub force: bool,
    /// Decide what would be restored, and write nothing.
    pub dry_run: bool,
}

/// The result of a rollback.
pub struct Rollback {
    /// The generation rolled back to.
    pub target: Generation,
    /// The rows restored, each with the id of the generation it came from.
    pub restored: Vec<(&'static Profile, String)>,
    /// The generation holding the files the rollback replaced; `None` when nothing differed
    /// or on a dry run.
    pub kept: Option<Kept>,
    /// Whether nothing was written (`--dry-run`): `restored` is what would be.
    pub dry_run: bool,
}

/// Takes the lock of the kubelet's certificate directory that `TreeDirs` names, for as long
/// as its guard lives; `None` when there is no such directory.
pub type LockKubeletDir<'a> = &'a dyn Fn(&TreeDirs) -> Result<Option<TreeLock>>;

/// Runs `certs rollback`; the caller holds the tree lock, and `lock_kubelet_dir` takes the
/// kubelet directory's when a kubelet row goes back there.
pub fn rollback(
    dirs: &TreeDirs,
    request: &RollbackRequest,
    lock_kubelet_dir: LockKubeletDir,
) -> Result<Rollback> {
    let all = generations::list(&request.backups.dir)?;
    let from = target(&all, request)?;
    let plan = restore_plan(&all[from..])?;
    // The kubelet's serving pair goes back where it was kept from, whatever the default.
    let dirs = &generations::with_recorded_kubelet_dir(dirs, &plan)?;
    let _kubelet_lock = match plan.iter().any(|(row, _)| row.scope == Scope::Kubelet) {
        true => lock_kubelet_dir(dirs)?,
        false => None,
    };
    let prepared = generations::prepare(dirs, &plan)?;
    if !request.force {
        check_signers(dirs, &prepared, &all)?;
    }
    let target = all[from].clone();
    let id_of = |path: &std::path::Path| {
        all.iter()
            .find(|g| g.path == path)
            .map_or_else(|| path.display().to_string(), |g| g.id.clone())
    };
    let restored: Vec<(&'static Profile, String)> =
        prepared.iter().map(|r| (r.row, id_of(&r.from))).collect();
    if prepared.is_empty() || request.dry_run {
        return Ok(Rollback {
            target,
            restored,
            kept: None,
            dry_run: request.dry_run,
        });
    }
    let rows: Vec<(&Profile, RowChange)> = prepared
        .iter()
        .map(|r| {
            let change = RowChange {
                name: r.row.cert_name().to_string(),
                change: format!("restored from {}", id_of(&r.from)),
                restored_from: Some(r.from.clone()),
            };
            (r.row, change)
        })
        .collect();
    let dir = &request.backups.dir;
    let generation = generations::new_path(dir, request.now)?;
    generations::mark_rollback(dirs, &generation)?;
    generations::keep(
        dirs,
        &generation,
        request.now,
        generations::ROLLBACK_COMMAND,
        &rows,
    )?;
    generations::put_back(&prepared)?;
    generations::unmark_rollback(dirs)?;
    let pruned = generations::prune(dir, request.backups.keep)?;
    Ok(Rollback {
        target,
        restored,
        kept: Some(Kept { generation, pruned }),
        dry_run: false,
    })
}

/// Refuses a restored certificate or kubeconfig of the control plane that the CA on disk
/// after the rollback (the restored one, or else the current one) did not sign, or a
/// kubeconfig that does not trust it: a generation older than a CA rotation (or a forced
/// import) would put back what the current CA rejects, or a copy from another cluster.
fn check_signers(dirs: &TreeDirs, prepared: &[Restore], all: &[Generation]) -> Result<()> {
    for restore in prepared {
        let (Some(issuer), Scope::ControlPlane) = (restore.row.issuer, restore.row.scope) else {
            continue;
        };
        let Some(restored) = restore.restored_pem() else {
            continue;
        };
        let ca_row =
            by_name(issuer).ok_or_else(|| anyhow!("internal error: no CA row {issuer}"))?;
        let ca_rel = ca_row.cert_file().unwrap_or_default();
        let ca_pem = match prepared.iter().find(|r| r.row.name == ca_row.name) {
            Some(ca) => ca.restored_pem().map(<[u8]>::to_vec),
            None => store::read_optional(&dirs.cert_dir, &ca_rel)?,
        };
        let Some(ca_pem) = ca_pem else {
            continue;
        };
        let ca_path = dirs.cert_dir.join(&ca_rel);
        let cas = trust::parse(AnchorKind::Certificate, &ca_pem)
            .with_context(|| format!("{} after the rollback", ca_path.display()))?;
        let fault = match restore.row.kind {
            Kind::Kubeconfig(_) => kubeconfig_fault(restored, &cas),
            _ => certificate_fault(restored, &cas),
        }
        .with_context(|| format!("{}: {}", restore.from.display(), restore.row.cert_name()))?;
        if let Some(fault) = fault {
            let id = all
                .iter()
                .find(|g| g.path == restore.from)
                .map_or_else(|| restore.from.display().to_string(), |g| g.id.clone());
            bail!(
                "{} from generation {id}: {fault} {} holds after the rollback: the generation \
                 predates a replacement of the {issuer} CA (`certs rotate-ca {issuer}`, or a \
                 forced `certs bundle import`) or holds another cluster's copy, and restoring \
                 it would break what trusts that CA; nothing restored (--force restores it \
                 anyway)",
                restore.row.cert_name(),
                ca_path.display()
            );
        }
    }
    Ok(())
}

/// What is wrong with a restored certificate given the CA certificates `cas`, if anything.
fn certificate_fault(pem: &[u8], cas: &[Anchor]) -> Result<Option<&'static str>> {
    let cert = CertInfo::parse(pem::first_certificate(pem)?)?;
    let signed = cas
        .iter()
        .filter_map(Anchor::cert)
        .any(|ca| cert.verify_signed_by(ca).is_ok());
    Ok((!signed).then_some("it is not signed by the CA"))
}

/// What is wrong with a restored kubeconfig given the CA certificates `cas`: it must trust
/// one of them, and its embedded client certificate (when it has one) be signed by one.
fn kubeconfig_fault(yaml: &[u8], cas: &[Anchor]) -> Result<Option<&'static str>> {
    let kubeconfig = Kubeconfig::parse(yaml)?;
    let trusted = trust::parse(AnchorKind::Certificate, &kubeconfig.cluster_ca_pem()?)
        .context("certificate-authority-data")?;
    if !trusted.iter().any(|anchor| cas.contains(anchor)) {
        return Ok(Some("it does not trust the CA"));
    }
    match kubeconfig.client_credentials() {
        Ok(credentials) => Ok(certificate_fault(&credentials.cert_pem, cas)?
            .map(|_| "its client certificate is not signed by the CA")),
        Err(_) => Ok(None),
    }
}

/// The index of the generation asked for.
fn target(all: &[Generation], request: &RollbackRequest) -> Result<usize> {
    if all.is_empty() {
        bail!(
            "{}: no generation to roll back to (renewals keep one each)",
            request.backups.dir.display()
        );
    }
    match &request.to {
        None => Ok(all.len() - 1),
        Some(wanted) => find(all, &request.backups.dir, "--to", wanted),
    }
}

/// The index of the generation `flag` names, `wanted`, in `all` (those of `dir`).
fn find(all: &[Generation], dir: &Path, flag: &str, wanted: &str) -> Result<usize> {
    all.iter().position(|g| g.is(wanted)).ok_or_else(|| {
        let ids: Vec<&str> = all.iter().map(|g| g.id.as_str()).collect();
        anyhow!(
            "{flag} {wanted}: no such generation in {} (there are: {})",
            dir.display(),
            match ids.is_empty() {
                true => "none".to_string(),
                false => ids.join(", "),
            }
        )
    })
}

/// Removes the generation `wanted` of `dir` (`certs generations --remove`), even one that
/// holds a CA's or `sa`'s key, which `--keep` never removes; the caller holds the tree lock.
/// Returns it, for saying what it held.
pub fn remove_generation(dir: &Path, wanted: &str) -> Result<Generation> {
    let all = generations::list(dir)?;
    let generation = all[find(&all, dir, "--remove", wanted)?].clone();
    generations::remove_generation(dir, &generation)?;
    Ok(generation)
}

/// Each row of `generations` (oldest first) from the first one that holds it.
fn restore_plan(generations: &[Generation]) -> Result<RestorePlan> {
    let mut plan: RestorePlan = Vec::new();
    for generation in generations {
        for change in &generation.record.rows {
            let row = by_cert_name(&change.name).ok_or_else(|| {
                anyhow!(
                    "{}: records {:?}, which is no row of the table",
                    generation.path.display(),
                    change.name
                )
            })?;
            if !plan.iter().any(|(known, _)| known.name == row.name) {
                plan.push((row, generation.path.clone()));
            }
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::Duration;
    use crate::engine::renew::{RenewRequest, renew};
    use crate::profile::renewable_rows;
    use crate::testtree::{TestTree, ecdsa_spec};
    use crate::tree::recovery::recover;

    /// The unit tests' trees have no kubelet row to lock for.
    fn no_kubelet_lock(_: &TreeDirs) -> Result<Option<TreeLock>> {
        Ok(None)
    }

    fn backups(tree: &TestTree) -> Backups {
        Backups {
            dir: generations::default_dir(&tree.dirs),
            keep: 5,
        }
    }

    fn renew_rows(tree: &TestTree, names: &[&str], now: OffsetDateTime) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let request = RenewRequest {
            rows: renewable_rows(&names).expect("names"),
            due_within: None,
            algorithm: None,
            validity: Duration::from_hours(8760),
            backups: backups(tree),
            now,
            all: names.iter().any(|n| n == "all"),
        };
        renew(&tree.dirs, &request, &crate::engine::apply::unwatched).expect("renewed");
    }

    fn roll_back(tree: &TestTree, to: Option<&str>, now: OffsetDateTime) -> Rollback {
        let request = RollbackRequest {
            dry_run: false,
            backups: backups(tree),
            to: to.map(str::to_string),
            now,
            force: false,
        };
        rollback(&tree.dirs, &request, &no_kubelet_lock).expect("rolled back")
    }

    #[test]
    fn a_rollback_undoes_its_generation_and_every_later_one_and_can_be_undone() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let second = |n| spec.now + time::Duration::seconds(n);
        let initial = tree.contents();
        renew_rows(&tree, &["all"], second(1));
        let renewed = tree.contents();
        renew_rows(&tree, &["apiserver", "admin.conf"], second(2));
        let ids: Vec<String> = generations::list(&backups(&tree).dir)
            .expect("listed")
            .into_iter()
            .map(|g| g.id)
            .collect();
        let newest = roll_back(&tree, None, second(3));
        assert_eq!(newest.target.id, ids[1]);
        assert_eq!(newest.restored.len(), 2);
        assert_eq!(tree.contents(), renewed, "the last renewal undone");
        let all = roll_back(&tree, Some(&ids[0]), second(4));
        assert_eq!(all.restored.len(), 12);
        assert_eq!(
            tree.contents(),
            initial,
            "both renewals undone, byte for byte"
        );
        let again = roll_back(&tree, Some(&ids[0]), second(5));
        assert!(
            again.kept.is_none() && again.restored.is_empty(),
            "nothing left to do"
        );
        roll_back(&tree, None, second(6));
        assert_eq!(tree.contents(), renewed, "the rollback itself undone");
    }

    #[test]
    fn a_rollback_killed_after_its_mark_is_finished_by_recovery() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let initial = tree.contents();
        renew_rows(&tree, &["all"], spec.now);
        let all = generations::list(&backups(&tree).dir).expect("listed");
        let plan = restore_plan(&all).expect("a plan");
        let prepared = generations::prepare(&tree.dirs, &plan).expect("prepared");
        let rows: Vec<(&Profile, RowChange)> = prepared
            .iter()
            .map(|r| {
                let change = RowChange {
                    name: r.row.cert_name().into(),
                    change: "restored".into(),
                    restored_from: Some(r.from.clone()),
                };
                (r.row, change)
            })
            .collect();
        let dir = backups(&tree).dir;
        let later = spec.now + time::Duration::seconds(1);
        let own = generations::new_path(&dir, later).expect("a path");
        generations::mark_rollback(&tree.dirs, &own).expect("marked");
        // Killed here, its generation not kept yet: the rollback never began.
        assert!(recover(&tree.dirs).expect("recovered").is_empty());
        generations::mark_rollback(&tree.dirs, &own).expect("marked");
        generations::keep(&tree.dirs, &own, later, "certs rollback", &rows).expect("kept");
        // Killed here: its generation kept, nothing restored yet. Recovery finishes it.
        let completed = recover(&tree.dirs).expect("recovered");
        assert_eq!(completed.len(), 2 * 7 + 5, "every file of the 12 rows");
        assert_eq!(tree.contents(), initial);
        assert!(
            recover(&tree.dirs).expect("recovered").is_empty(),
            "the mark is gone"
        );
    }

    #[test]
    fn an_unknown_generation_or_none_at_all_is_an_error_naming_them() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let request = |to: Option<&str>| RollbackRequest {
            dry_run: false,
            backups: backups(&tree),
            to: to.map(str::to_string),
            now: spec.now,
            force: false,
        };
        let none = rollback(&tree.dirs, &request(None), &no_kubelet_lock)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            none.ends_with("no generation to roll back to (renewals keep one each)"),
            "{none}"
        );
        renew_rows(&tree, &["apiserver"], spec.now);
        let id = generations::list(&backups(&tree).dir).expect("listed")[0]
            .id
            .clone();
        let unknown = rollback(
            &tree.dirs,
            &request(Some("19990101T000000Z")),
            &no_kubelet_lock,
        )
        .err()
        .expect("refused")
        .to_string();
        assert_eq!(
            unknown,
            format!(
                "--to 19990101T000000Z: no such generation in {} (there are: {id})",
                backups(&tree).dir.display()
            )
        );
    }
}
