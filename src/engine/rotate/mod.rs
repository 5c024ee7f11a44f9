//! `certs rotate-ca`: replacing a CA (or the service-account key pair) without a moment at
//! which a running component refuses a peer, in three stages run on every control-plane host
//! with restarts between them:
//!
//! - `trust`: a new CA waits under `next/`; every place that trusts the CA holds the old one
//!   (which still signs) then the new one;
//! - `sign`: the new one becomes the signer (the old key goes to a backup first), every
//!   certificate it signs is re-issued, and every place holds the new one then the old one;
//! - `finish`: the old one leaves every place.
//!
//! Where a rotation stands is read from the files alone (`state`), so every stage is
//! idempotent, refuses to run out of order, and completes what a killed run of itself left
//! (the store's writes roll forward). Each stage is a plan of writes (`trust`, `sign`,
//! `finish`) carried out here in one batch of the store; `--dry-run` stops before it.

mod finish;
mod incoming;
pub mod places;
pub mod restarts;
mod sign;
pub mod state;
mod trust;

use crate::duration::Duration;
use crate::engine::issue::Capped;
use crate::pki::keys::Algorithm;
use crate::pki::trust::Anchor;
use crate::profile::{PENDING_DIR, Profile};
use crate::tree::TreeDirs;
use crate::tree::generations;
use crate::tree::problem::Problem;
use crate::tree::reader;
use crate::tree::store::{self, FileWrite};
use anyhow::{Result, bail};
use state::{Phase, State, read_state};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// A stage of a rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Trust the new one beside the old.
    Trust,
    /// Sign with the new one.
    Sign,
    /// Trust the new one alone.
    Finish,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 3] = [Stage::Trust, Stage::Sign, Stage::Finish];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Trust => "trust",
            Stage::Sign => "sign",
            Stage::Finish => "finish",
        }
    }

    /// The stage called `name`.
    pub fn by_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The phase it leaves.
    fn leaves(self) -> Phase {
        match self {
            Stage::Trust => Phase::Trusted,
            Stage::Sign => Phase::Signed,
            Stage::Finish => Phase::Idle,
        }
    }
}

/// What a stage was asked to do.
pub struct RotateRequest {
    /// The row rotated.
    pub row: &'static Profile,
    /// The stage.
    pub stage: Stage,
    /// `trust --from DIR`: the new one, made on another host.
    pub from: Option<PathBuf>,
    /// `trust`: the new one's key algorithm; `sign`: the re-issued certificates' (`None`:
    /// the signer's, and each certificate's own).
    pub algorithm: Option<Algorithm>,
    /// A new CA's validity.
    pub ca_validity: Duration,
    /// The validity of the certificates `sign` re-issues.
    pub cert_validity: Duration,
    /// The directory where `sign` copies what it replaces first, into a new
    /// `kubepki-backup-<UTC time>` of its own (never over an earlier backup).
    pub backup_dir: PathBuf,
    /// The one "now" of this run.
    pub now: OffsetDateTime,
    /// Only say what would change.
    pub dry_run: bool,
    /// `trust`: accept a new CA that ends before the signer or within `cert_validity`;
    /// `finish` of the service-account key before `SA_FINISH_AFTER` has passed since `sign`.
    pub force: bool,
}

/// How long after `sign` the service-account key's `finish` waits unless forced: tokens the
/// old key signed keep working only while it is trusted, so `finish` waits out the longest
/// token lifetime kubepki can know of by default (24 h, as the issue of the rotation asks).
pub const SA_FINISH_AFTER: time::Duration = time::Duration::hours(24);

/// `2026-12-08 01:20 UTC`: a moment as the messages and `status` give it.
pub fn utc_minute(moment: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    moment
        .to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| moment.to_string())
}

/// The writes a stage plans, in the store's terms.
#[derive(Default)]
struct Planned {
    /// Files to create (what waits under `next/`).
    creates: Vec<FileWrite>,
    /// Key and certificate pairs to replace together, key first.
    pairs: Vec<(FileWrite, FileWrite)>,
    /// Files to replace whole, each differing from what is on disk.
    wholes: Vec<FileWrite>,
    /// Files under the cert dir to remove afterwards (what waited under `next/`).
    removals: Vec<PathBuf>,
    /// Whether what is replaced is backed up first.
    backup: bool,
    /// The rows whose certificates are re-issued.
    reissued: Vec<&'static Profile>,
    /// What signs once the stage is done, and what else is trusted then.
    after: Option<(Anchor, Option<Anchor>)>,
    /// Re-issued certificates that end with their CA, earlier than `cert_validity` asked.
    capped: Vec<Capped>,
}

impl Planned {
    /// Whether nothing would change.
    fn is_empty(&self) -> bool {
        self.creates.is_empty()
            && self.pairs.is_empty()
            && self.wholes.is_empty()
            && self.removals.is_empty()
    }

    /// The files replaced, pairs first.
    fn replaced(&self) -> impl Iterator<Item = &FileWrite> {
        let pairs = self.pairs.iter().flat_map(|(key, cert)| [key, cert]);
        pairs.chain(&self.wholes)
    }
}

/// What a stage did, or with `--dry-run` would do.
pub struct Rotation {
    /// The row rotated.
    pub row: &'static Profile,
    /// The stage.
    pub stage: Stage,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// The phase found before.
    pub before: Phase,
    /// Files created.
    pub created: Vec<PathBuf>,
    /// Files replaced.
    pub replaced: Vec<PathBuf>,
    /// Files removed.
    pub removed: Vec<PathBuf>,
    /// Where the replaced files were copied first, if anywhere.
    pub backup_dir: Option<PathBuf>,
    /// The rows whose certificates were re-issued.
    pub reissued: Vec<&'static Profile>,
    /// What signs afterwards.
    pub signer: Anchor,
    /// The other one trusted afterwards (the new one after `trust`, the old one after
    /// `sign`); none after `finish`.
    pub other: Option<Anchor>,
    /// Certificates outside the tree still signed by the old CA (the kubelet's own), which
    /// `finish` locks out.
    pub outside_old: Vec<PathBuf>,
    /// Re-issued certificates that end with their CA, earlier than `--cert-validity` asked.
    pub capped: Vec<Capped>,
}

/// Runs `request`'s stage on the tree (which the caller has locked, unless a dry run), or
/// with `--dry-run` says what it would do. `on_keys` hears how many new keys are done.
pub fn rotate(
    dirs: &TreeDirs,
    request: &RotateRequest,
    on_keys: &dyn Fn(usize, usize),
) -> Result<Rotation> {
    let state = read_state(dirs, request.row)?;
    let before = state.phase;
    let planned = match request.stage {
        Stage::Trust => trust::plan(dirs, &state, request)?,
        Stage::Sign => sign::plan(dirs, &state, request, on_keys)?,
        Stage::Finish => finish::plan(dirs, &state, request)?,
    };
    let (signer, other) = planned
        .after
        .clone()
        .unwrap_or_else(|| (state.signer.clone(), state.other.clone()));
    let outside_old = state
        .old_signed
        .iter()
        .filter(|o| o.outside)
        .map(|o| o.path.clone())
        .collect();
    let mut rotation = Rotation {
        row: request.row,
        stage: request.stage,
        dry_run: request.dry_run,
        before,
        created: planned.creates.iter().map(FileWrite::path).collect(),
        replaced: planned.replaced().map(FileWrite::path).collect(),
        removed: planned
            .removals
            .iter()
            .map(|r| dirs.cert_dir.join(r))
            .collect(),
        backup_dir: None,
        reissued: planned.reissued.clone(),
        signer,
        other,
        outside_old,
        capped: planned.capped.clone(),
    };
    if request.dry_run || planned.is_empty() {
        return Ok(rotation);
    }
    rotation.backup_dir = apply(dirs, &planned, request)?;
    check_after(dirs, request)?;
    Ok(rotation)
}

/// Carries out `planned` in one batch: backups first (durable before anything is
/// replaced); then creations and replacements, keys before certificates; then removals.
/// Returns the backup directory, when anything was backed up. A backup is no generation
/// (it has no record): `certs rollback` does not undo a stage, whose next one would no
/// longer find the tree in a shape a rotation leaves.
fn apply(dirs: &TreeDirs, planned: &Planned, request: &RotateRequest) -> Result<Option<PathBuf>> {
    let mut backed_up = None;
    if planned.backup {
        let sources: Vec<(PathBuf, PathBuf)> = planned
            .replaced()
            .map(crate::engine::renew::backup_source)
            .collect();
        let backup_dir = generations::new_path(&request.backup_dir, request.now)?;
        match store::backup(&sources, &backup_dir, &[])?.is_empty() {
            false => backed_up = Some(backup_dir),
            true => {
                let name = backup_dir.file_name().unwrap_or_default();
                store::remove_empty_dirs(&request.backup_dir, &[name.into()])?;
            }
        }
    }
    if planned.pairs.is_empty() {
        store::create_all_and_replace(&planned.creates, &planned.wholes)?;
    } else {
        let pairs: Vec<(&FileWrite, &FileWrite)> = planned
            .pairs
            .iter()
            .map(|(key, cert)| (key, cert))
            .collect();
        let wholes: Vec<&FileWrite> = planned.wholes.iter().collect();
        store::replace_many(&pairs, &wholes)?;
    }
    let removals: Vec<(PathBuf, PathBuf)> = planned
        .removals
        .iter()
        .map(|rel| (dirs.cert_dir.clone(), rel.clone()))
        .collect();
    if !removals.is_empty() {
        store::remove_all(&removals)?;
        let mut pending_dirs: Vec<PathBuf> = planned
            .removals
            .iter()
            .flat_map(|rel| rel.ancestors().skip(1))
            .filter(|dir| dir.starts_with(PENDING_DIR))
            .map(Path::to_path_buf)
            .collect();
        pending_dirs.sort_by_key(|dir| std::cmp::Reverse(dir.components().count()));
        pending_dirs.dedup();
        store::remove_empty_dirs(&dirs.cert_dir, &pending_dirs)?;
    }
    Ok(backed_up)
}

/// After a stage, its files must read as the phase it leaves, complete: a check of the
/// writes against the same reading every later stage starts from.
fn check_after(dirs: &TreeDirs, request: &RotateRequest) -> Result<()> {
    let state = read_state(dirs, request.row)?;
    if state.phase != request.stage.leaves() || !state.complete() {
        bail!(
            "internal error: after {} the {} rotation reads as {} ({})",
            request.stage.name(),
            request.row.name,
            state.phase.name(),
            state.unfinished.join("; ")
        );
    }
    Ok(())
}

/// The refusal of `stage` when the rotation stands as `state` says: one line, with the
/// stage to run instead.
fn out_of_order(dirs: &TreeDirs, state: &State, stage: Stage) -> anyhow::Error {
    let row = state.row.name;
    let next = dirs.command(&format!(
        "certs rotate-ca {row} {}",
        state.next_stage().name()
    ));
    anyhow::anyhow!(
        "{row}: {} is out of order: {}; run `{next}` next",
        stage.name(),
        state.describe()
    )
}

/// Where the rotation of one row stands, for `status`.
pub enum Standing {
    /// Read from its files.
    Read(Box<State>),
    /// Its certificate (or public key) and key are both absent: nothing to rotate (an etcd
    /// CA where etcd is external).
    Absent,
    /// Its certificate is there without its key: an external CA, rotated where its key is.
    External,
    /// It cannot be told: the files are in a shape no stage leaves, or unreadable.
    Unknown(Problem),
}

/// Where the rotation of each of `rows` stands.
pub fn status(dirs: &TreeDirs, rows: &[&'static Profile]) -> Vec<(&'static Profile, Standing)> {
    let standing = |row: &'static Profile| -> Standing {
        let exists =
            |rel: Option<PathBuf>| reader::read_file(&dirs.cert_dir, &rel.unwrap_or_default());
        let (signer, key) = match (exists(row.signer_file()), exists(row.key_file())) {
            (Ok(signer), Ok(key)) => (signer, key),
            (Err(problem), _) | (_, Err(problem)) => return Standing::Unknown(problem),
        };
        match (signer, key) {
            (None, None) => Standing::Absent,
            (Some(_), None) => Standing::External,
            _ => match read_state(dirs, row) {
                Ok(state) => Standing::Read(Box::new(state)),
                Err(problem) => Standing::Unknown(problem),
            },
        }
    };
    rows.iter().map(|row| (*row, standing(row))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::apply::unwatched;
    use crate::engine::plan::plan_init;
    use crate::profile::{Selection, by_name};
    use crate::testtree::{TestTree, ecdsa_spec};
    use crate::tree::reader;
    use std::fs;

    fn request(tree: &TestTree, row: &str, stage: Stage) -> RotateRequest {
        RotateRequest {
            row: by_name(row).expect("a row"),
            stage,
            from: None,
            algorithm: None,
            ca_validity: Duration::from_hours(87600),
            cert_validity: Duration::from_hours(8760),
            backup_dir: tree.dirs.kubeconfig_dir.join("backup"),
            now: OffsetDateTime::now_utc(),
            dry_run: false,
            // the guard of sa's finish has its own test
            force: true,
        }
    }

    #[test]
    fn sa_finish_waits_a_day_after_sign_unless_forced() {
        let tree = TestTree::written(&ecdsa_spec(&[]));
        run(&tree, "sa", Stage::Trust).expect("trust");
        run(&tree, "sa", Stage::Sign).expect("sign");
        let mut early = request(&tree, "sa", Stage::Finish);
        early.force = false;
        let Err(early) = rotate(&tree.dirs, &early, &unwatched) else {
            panic!("finish right after sign was accepted");
        };
        assert!(format!("{early:#}").contains("--force"), "{early:#}");
        let mut later = request(&tree, "sa", Stage::Finish);
        later.force = false;
        later.now += SA_FINISH_AFTER + time::Duration::minutes(1);
        rotate(&tree.dirs, &later, &unwatched).expect("a day later");
    }

    fn run(tree: &TestTree, row: &str, stage: Stage) -> Result<Rotation> {
        rotate(&tree.dirs, &request(tree, row, stage), &unwatched)
    }

    fn phase(tree: &TestTree, row: &str) -> (Phase, bool) {
        let state = read_state(&tree.dirs, by_name(row).expect("a row")).expect("readable");
        (state.phase, state.complete())
    }

    /// Every file under the tree with its content.
    fn snapshot(tree: &TestTree) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            for entry in fs::read_dir(dir).expect("a directory").flatten() {
                let path = entry.path();
                match path.is_dir() {
                    true => walk(&path, out),
                    false => out.push((path.clone(), fs::read(&path).expect("a file"))),
                }
            }
        }
        let mut files = Vec::new();
        walk(&tree.dirs.kubeconfig_dir, &mut files);
        files.sort();
        files
    }

    #[test]
    fn every_row_goes_through_its_stages_idempotently_and_init_accepts_each_phase() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        for row in ["ca", "front-proxy-ca", "etcd-ca", "sa"] {
            assert_eq!(phase(&tree, row), (Phase::Idle, true), "{row}");
            for (stage, after) in [
                (Stage::Trust, Phase::Trusted),
                (Stage::Sign, Phase::Signed),
                (Stage::Finish, Phase::Idle),
            ] {
                run(&tree, row, stage).expect("the stage runs");
                assert_eq!(phase(&tree, row), (after, true), "{row} after {stage:?}");
                let before = snapshot(&tree);
                let again = run(&tree, row, stage).expect("again");
                assert!(
                    again.created.is_empty() && again.replaced.is_empty(),
                    "{row}"
                );
                assert_eq!(snapshot(&tree), before, "{row}: {stage:?} again wrote");
                let plan = plan_init(&spec, &tree.dirs, Selection::All);
                plan.ensure_no_refusal()
                    .unwrap_or_else(|e| panic!("init after {row} {stage:?}: {e}"));
            }
        }
        assert!(
            !tree
                .dirs
                .cert_dir
                .join(crate::profile::PENDING_DIR)
                .exists()
        );
    }

    #[test]
    fn the_cluster_ca_keeps_one_signing_certificate_and_its_bundle_apart() {
        let tree = TestTree::written(&ecdsa_spec(&[]));
        let ca = by_name("ca").expect("the row");
        let old = reader::read_ca(&tree.dirs, ca).expect("the CA").cert.info;
        run(&tree, "ca", Stage::Trust).expect("trust");
        let found = reader::read_ca(&tree.dirs, ca).expect("the CA");
        assert_eq!(found.cert.info.der, old.der, "the old CA still signs");
        assert_eq!(found.trust.len(), 2);
        let ca_crt = fs::read(&tree.files_of("ca")[1]).expect("ca.crt");
        assert_eq!(String::from_utf8_lossy(&ca_crt).matches("BEGIN").count(), 1);
        run(&tree, "ca", Stage::Sign).expect("sign");
        let found = reader::read_ca(&tree.dirs, ca).expect("the CA");
        assert_ne!(found.cert.info.der, old.der, "the new CA signs");
        assert_eq!(found.trust[1].der, old.der, "the old one is still trusted");
        let apiserver = reader::read_row(&tree.dirs, by_name("apiserver").expect("row"))
            .expect("readable")
            .expect("present");
        apiserver
            .cert()
            .check_signed_by(&found.cert.info, "ca")
            .expect("re-issued by the new CA");
        let backups: Vec<_> = fs::read_dir(tree.dirs.kubeconfig_dir.join("backup"))
            .expect("the backup directory")
            .flatten()
            .map(|entry| entry.path())
            .collect();
        assert_eq!(backups.len(), 1, "one backup: {backups:?}");
        let old_key = fs::read(backups[0].join("pki/ca.key")).expect("the old key, backed up");
        assert!(old.matches_key(&crate::pki::keys::from_pem(&old_key).expect("a key")));
        run(&tree, "ca", Stage::Finish).expect("finish");
        let found = reader::read_ca(&tree.dirs, ca).expect("the CA");
        assert_eq!(found.trust.len(), 1);
    }

    #[test]
    fn stages_out_of_order_are_refused_writing_nothing() {
        let tree = TestTree::written(&ecdsa_spec(&[]));
        let before = snapshot(&tree);
        for (row, stage, why) in [
            ("ca", Stage::Sign, "no rotation is under way"),
            ("sa", Stage::Sign, "no rotation is under way"),
        ] {
            let error = run(&tree, row, stage).err().expect("refused").to_string();
            assert!(error.contains(why) && error.contains("trust"), "{error}");
        }
        run(&tree, "etcd-ca", Stage::Finish).expect("nothing to finish");
        assert_eq!(snapshot(&tree), before);
        run(&tree, "etcd-ca", Stage::Trust).expect("trust");
        let before = snapshot(&tree);
        let error = run(&tree, "etcd-ca", Stage::Finish).err().expect("refused");
        assert!(
            error.to_string().contains("finish is out of order"),
            "{error}"
        );
        run(&tree, "etcd-ca", Stage::Sign).expect("sign");
        let error = run(&tree, "etcd-ca", Stage::Trust).err().expect("refused");
        assert!(
            error.to_string().contains("trust is out of order"),
            "{error}"
        );
        assert_ne!(snapshot(&tree), before);
    }

    #[test]
    fn unknown_shapes_and_a_key_of_no_certificate_are_refused() {
        let tree = TestTree::written(&ecdsa_spec(&[]));
        run(&tree, "front-proxy-ca", Stage::Trust).expect("trust");
        let bundle = tree.files_of("front-proxy-ca")[1].clone();
        let two = fs::read(&bundle).expect("the bundle");
        let stranger = fs::read(&tree.files_of("etcd-ca")[1]).expect("another CA");
        fs::write(&bundle, [two.clone(), stranger].concat()).expect("writing");
        let error = run(&tree, "front-proxy-ca", Stage::Sign)
            .err()
            .expect("refused");
        assert!(error.to_string().contains("subject differs"), "{error}");
        let key = tree.files_of("front-proxy-ca")[0].clone();
        fs::write(&bundle, two).expect("writing");
        fs::copy(&tree.files_of("etcd-ca")[0], &key).expect("another key");
        let error = run(&tree, "front-proxy-ca", Stage::Sign)
            .err()
            .expect("refused");
        assert!(
            error.to_string().contains("matches none of the 2"),
            "{error}"
        );
    }

    #[test]
    fn a_kill_between_a_signers_key_and_certificate_reads_as_interrupted() {
        let tree = TestTree::written(&ecdsa_spec(&[]));
        run(&tree, "etcd-ca", Stage::Trust).expect("trust");
        let [key, cert] = [0, 1].map(|i| tree.files_of("etcd-ca")[i].clone());
        let pending = tree.dirs.cert_dir.join("next/etcd/ca.key");
        fs::copy(&pending, &key).expect("the new key in place");
        let staged = cert.with_file_name(".ca.crt.kubepki-staged");
        fs::write(&staged, b"staged").expect("a staged certificate");
        let error =
            read_state(&tree.dirs, by_name("etcd-ca").expect("row")).expect_err("interrupted");
        assert!(matches!(
            error,
            crate::tree::problem::Problem::Interrupted { .. }
        ));
    }

    #[test]
    fn the_new_one_is_taken_from_another_hosts_next_directory() {
        let spec = ecdsa_spec(&[]);
        let first = TestTree::written(&spec);
        let second = TestTree::empty();
        for row in ["ca", "front-proxy-ca", "etcd-ca", "sa"] {
            for (from, to) in first.files_of(row).iter().zip(second.files_of(row)) {
                fs::create_dir_all(to.parent().expect("a dir")).expect("dirs");
                fs::copy(from, to).expect("copying the shared files");
            }
        }
        second.init(&spec, Selection::All);
        for row in ["ca", "sa"] {
            run(&first, row, Stage::Trust).expect("trust on the first host");
            let mut asked = request(&second, row, Stage::Trust);
            asked.from = Some(first.dirs.cert_dir.join(crate::profile::PENDING_DIR));
            let taken = rotate(&second.dirs, &asked, &unwatched).expect("trust --from");
            let made = read_state(&first.dirs, by_name(row).expect("row")).expect("state");
            assert_eq!(taken.other, made.other, "{row}: the same new one");
            asked.from = Some(first.dirs.cert_dir.clone());
            let error = rotate(&second.dirs, &asked, &unwatched)
                .err()
                .expect("refused");
            assert!(error.to_string().contains("this tree's"), "{error}");
            let other = TestTree::written(&spec);
            run(&other, row, Stage::Trust).expect("another new one elsewhere");
            asked.from = Some(other.dirs.cert_dir.join(crate::profile::PENDING_DIR));
            let error = rotate(&second.dirs, &asked, &unwatched)
                .err()
                .expect("refused");
            assert!(error.to_string().contains("another new one"), "{error}");
        }
    }
}
