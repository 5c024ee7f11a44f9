//! Temporary trees for unit tests: a spec with fast ECDSA keys, a whole tree written by the
//! engine itself, and small edits of one. Test-only.

use crate::cluster::kubeconfig::Kubeconfig;
use crate::engine::apply::{apply, no_derived, unwatched};
use crate::engine::plan::{Action, Plan, plan_init};
use crate::pki::inspect::CertInfo;
use crate::pki::{issue, keys, pem};
use crate::profile::{Kind, PROFILES, Selection, by_name};
use crate::spec::ClusterSpec;
use crate::spec::tests::spec_for;
use crate::tree::TreeDirs;
use crate::tree::reader::{self, Found};
use rcgen::{CertificateParams, KeyPair};
use std::collections::BTreeMap;
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

    /// Every file of every row `init` writes, with its content.
    pub fn contents(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        PROFILES
            .iter()
            .filter(|row| Selection::All.includes(row))
            .flat_map(|row| self.dirs.paths_of(row))
            .map(|path| (path.clone(), std::fs::read(&path).expect("a file")))
            .collect()
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

impl TestTree {
    /// Re-issues row `name`'s certificate for its current key as `spec` asks, with `edit`
    /// applied to the certificate's parameters, signed by the row's CA as it is on disk (a CA
    /// by itself). The key stays, so the pair still matches.
    pub fn resign(
        &self,
        spec: &ClusterSpec,
        name: &str,
        edit: impl FnOnce(&mut CertificateParams),
    ) {
        let key = self.current_key(name);
        self.resign_with(spec, name, key, edit);
    }

    /// The private key of row `name`, loaded.
    pub fn current_key(&self, name: &str) -> KeyPair {
        let row = by_name(name).expect("a row");
        match reader::read_row(&self.dirs, row)
            .expect("readable")
            .expect("present")
        {
            Found::Pair { key, .. } => key.expect("a key").load().expect("loads"),
            Found::Kubeconfig(found) => {
                found.embedded().expect("embedded").1.load().expect("loads")
            }
        }
    }

    /// As `resign`, with `key` in place of the current one.
    pub fn resign_with(
        &self,
        spec: &ClusterSpec,
        name: &str,
        key: KeyPair,
        edit: impl FnOnce(&mut CertificateParams),
    ) {
        let row = by_name(name).expect("a row");
        let ca = row.issuer_row().map(|ca_row| {
            let found = reader::read_ca(&self.dirs, ca_row).expect("its CA");
            let ca_key = found
                .key
                .as_ref()
                .expect("the CA key")
                .load()
                .expect("loads");
            let signer = issue::existing_ca(&found.cert.info.der, ca_key).expect("a signer");
            (found.cert.info, signer)
        });
        let request = row
            .request(spec, ca.as_ref().map(|(info, _)| info))
            .expect("a request");
        let mut params = issue::params_for(&request, &key).expect("parameters");
        edit(&mut params);
        let der = match &ca {
            None => params.self_signed(&key).expect("self-signed").der().clone(),
            Some((_, signer)) => params
                .signed_by(&key, signer)
                .expect("signed")
                .der()
                .clone(),
        };
        let cert_pem = pem::encode("CERTIFICATE", &der).into_bytes();
        let key_pem = keys::to_pem(&key).expect("PEM").into_bytes();
        self.write_cert(row, ca.as_ref().map(|(info, _)| info), &cert_pem, &key_pem);
    }

    fn write_cert(
        &self,
        row: &crate::profile::Profile,
        ca: Option<&CertInfo>,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) {
        let files = self.dirs.paths_of(row);
        match row.kind {
            Kind::Kubeconfig(_) => {
                let path = &files[0];
                let mut kubeconfig =
                    Kubeconfig::parse(&std::fs::read(path).expect("reading")).expect("parses");
                let ca_pem = pem::encode("CERTIFICATE", &ca.expect("a CA").der).into_bytes();
                kubeconfig
                    .replace_credentials(&ca_pem, cert_pem, key_pem)
                    .expect("replaced");
                std::fs::write(path, kubeconfig.to_yaml().expect("YAML")).expect("writing");
            }
            _ => {
                std::fs::write(&files[0], key_pem).expect("writing the key");
                std::fs::write(&files[1], cert_pem).expect("writing the certificate");
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
