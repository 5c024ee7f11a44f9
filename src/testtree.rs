//! Temporary trees for unit tests: a spec with fast ECDSA keys, a whole tree written by the
//! engine itself, and small edits of one. Test-only.

use crate::engine::apply::{apply, no_derived, unwatched};
use crate::engine::plan::{Action, Plan, plan_init};
use crate::profile::{Selection, by_name};
use crate::spec::ClusterSpec;
use crate::spec::tests::spec_for;
use crate::tree::TreeDirs;
use std::path::PathBuf;

/// A temporary tree: the kubeconfig dir is the temp dir, the cert dir its `pki`, the
/// kubelet's certificate directory its `kubelet/pki` (not created).
pub struct TestTree {
    /// Removes the directory when dropped.
    _dir: tempfile::TempDir,
    /// Its directories.
    pub dirs: TreeDirs,
}

impl TestTree {
    /// An empty tree.
    pub fn empty() -> TestTree {
        let dir = tempfile::tempdir().expect("a temp dir");
        let kubelet_dir = dir.path().join("kubelet/pki");
        let dirs = TreeDirs::new(Some(dir.path().join("pki")), Some(dir.path().into()))
            .with_kubelet_dir("--kubelet-cert-dir", Some(&kubelet_dir));
        TestTree { _dir: dir, dirs }
    }

    /// A whole tree written by `init` for `spec`.
    pub fn written(spec: &ClusterSpec) -> TestTree {
        let tree = TestTree::empty();
        tree.init(spec, Selection::All);
        tree
    }

    /// Plans and applies `init` of `selection`; panics on a refusal.
    pub fn init(&self, spec: &ClusterSpec, selection: Selection) {
        let plan = plan_init(spec, &self.dirs, selection);
        plan.ensure_no_refusal().expect("a plan without refusal");
        apply(plan, spec, no_derived, &unwatched).expect("applying the plan");
    }

    /// The full paths of the files of row `name`, key first.
    pub fn files_of(&self, name: &str) -> Vec<PathBuf> {
        self.dirs.paths_of(by_name(name).expect("a row"))
    }

    /// Removes the files of row `name` for which `which` (an index into its files, key
    /// first) holds.
    pub fn remove(&self, name: &str, which: impl Fn(usize) -> bool) {
        for (index, path) in self.files_of(name).iter().enumerate() {
            if which(index) {
                std::fs::remove_file(path).expect("removing a file");
            }
        }
    }
}

/// The spec of the tests: node `cp1` advertising 192.168.1.10, ECDSA P-256 keys, `args` on top.
pub fn ecdsa_spec(args: &[&str]) -> ClusterSpec {
    let mut all = vec!["--encryption-algorithm", "ECDSA-P256"];
    all.extend(args);
    spec_for(&all)
}

/// Each step's row name and action word, in plan order.
pub fn actions(plan: &Plan) -> Vec<(&'static str, &'static str)> {
    let word = |action: &Action| match action {
        Action::Create => "create",
        Action::Complete => "complete",
        Action::Reuse => "reuse",
        Action::Refuse(_) => "refuse",
    };
    plan.steps
        .iter()
        .map(|s| (s.row.name, word(&s.action)))
        .collect()
}
