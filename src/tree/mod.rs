//! The disk: where a tree lives (`TreeDirs`), the one reader of what exists (`reader`), the
//! only writer (`store`) and how it makes its writes durable (`flush`), the lock that keeps
//! two writing runs apart (`lock`, naming a holder through `holder`) and the completion of
//! what a killed run left (`recovery`).

mod flush;
pub mod generations;
pub mod holder;
pub mod lock;
pub mod problem;
pub mod reader;
pub mod recovery;
pub mod store;

use crate::profile::{BOOTSTRAP_KUBECONFIG, FileKind, Kind, PROFILES, Profile, Scope};
use crate::spec::{DEFAULT_CERT_DIR, DEFAULT_KUBECONFIG_DIR, DEFAULT_KUBELET_CERT_DIR};
use std::path::{Component, Path, PathBuf};
use store::{FileWrite, PUBLIC_MODE, SECRET_MODE};

/// `path` as the system resolves it: absolute, each component in turn, links resolved where
/// they exist, `..` taken from what was resolved so far.
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut current = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                current.pop();
            }
            Component::CurDir => {}
            other => {
                current.push(other);
                if let Ok(real) = current.canonicalize() {
                    current = real;
                }
            }
        }
    }
    current
}

/// The directory below the kubeconfig dir where bootstrap manifests go by default.
const MANIFESTS_SUBDIR: &str = "bootstrap";

/// The file below the kubeconfig dir where `init` records the settings it used (a kubeadm
/// v1beta4 InitConfiguration and ClusterConfiguration). The kubeconfig dir, because it is
/// the one directory a command finds without any configuration (`certificatesDir` can move
/// the cert dir, and the record says where), it is this node's like the identity the record
/// holds, and it is not the cert dir that bundles carry between hosts.
pub const RECORD_FILE: &str = "kubepki-config.yaml";

/// The directories of a tree, and the flags that named them (for commands printed to paste).
#[derive(Clone, Debug)]
pub struct TreeDirs {
    /// Certificates and keys.
    pub cert_dir: PathBuf,
    /// Kubeconfig files.
    pub kubeconfig_dir: PathBuf,
    /// The kubelet's certificate directory (its `--cert-dir`): its serving certificate and
    /// its rotated client certificate `kubelet-client-current.pem`.
    pub kubelet_dir: PathBuf,
    /// `--config`, `--cert-dir` and `--kubeconfig-dir` as given, in that order.
    given: Vec<(&'static str, PathBuf)>,
}

impl TreeDirs {
    /// The directories given, or kubeadm's defaults.
    pub fn new(cert_dir: Option<PathBuf>, kubeconfig_dir: Option<PathBuf>) -> TreeDirs {
        let given = [
            ("--cert-dir", &cert_dir),
            ("--kubeconfig-dir", &kubeconfig_dir),
        ]
        .into_iter()
        .filter_map(|(flag, dir)| dir.clone().map(|dir| (flag, dir)))
        .collect();
        TreeDirs {
            cert_dir: cert_dir.unwrap_or_else(|| DEFAULT_CERT_DIR.into()),
            kubeconfig_dir: kubeconfig_dir.unwrap_or_else(|| DEFAULT_KUBECONFIG_DIR.into()),
            kubelet_dir: DEFAULT_KUBELET_CERT_DIR.into(),
            given,
        }
    }

    /// The same tree, with the kubelet's certificate directory `dir` when given (`flag`
    /// names it in printed commands), else its default.
    pub fn with_kubelet_dir(mut self, flag: &'static str, dir: Option<&Path>) -> TreeDirs {
        if let Some(dir) = dir {
            self.kubelet_dir = dir.to_path_buf();
            self.given.push((flag, dir.to_path_buf()));
        }
        self
    }

    /// The directory of a row's key and certificate files: the cert dir, or the kubelet's
    /// for a kubelet row.
    pub fn root_of(&self, row: &Profile) -> &Path {
        match (row.kind, row.scope) {
            (Kind::Kubeconfig(_), _) => &self.kubeconfig_dir,
            (_, Scope::Kubelet) => &self.kubelet_dir,
            (_, Scope::ControlPlane) => &self.cert_dir,
        }
    }

    /// The same tree, read with the configuration file `config` (`--config`), which printed
    /// commands then name too.
    pub fn with_config(mut self, config: Option<&Path>) -> TreeDirs {
        if let Some(config) = config {
            self.given.insert(0, ("--config", config.to_path_buf()));
        }
        self
    }

    /// `kubepki <words>` for this tree: with every `--config`, `--cert-dir` and
    /// `--kubeconfig-dir` this run was given, quoted for a POSIX shell, so that it works
    /// when pasted.
    pub fn command(&self, words: &str) -> String {
        let mut line = format!("kubepki {words}");
        for (flag, path) in &self.given {
            line.push_str(&format!(" {flag} {}", shell_word(&path.to_string_lossy())));
        }
        line
    }

    /// Refuses `path`, given with `flag`, as a place for output when it names a file of the
    /// tree: anything below the cert dir, the kubelet's certificate directory, the default
    /// generations directory or the bootstrap manifests, or a kubeconfig of the table (links
    /// resolved); whatever `--force` says, output never replaces a key or a kubeconfig.
    pub fn refuse_output(&self, flag: &str, path: &Path) -> anyhow::Result<()> {
        let target = resolved(path);
        let below = [
            self.cert_dir.clone(),
            self.kubelet_dir.clone(),
            generations::default_dir(self),
            self.manifests_dir(),
        ];
        let kubeconfig_dir = resolved(&self.kubeconfig_dir);
        let kubeconfigs = PROFILES
            .iter()
            .filter(|row| matches!(row.kind, Kind::Kubeconfig(_)))
            .map(|row| row.file)
            .chain([BOOTSTRAP_KUBECONFIG]);
        let inside = below.iter().find(|dir| target.starts_with(resolved(dir)));
        let named = kubeconfigs
            .map(|file| kubeconfig_dir.join(file))
            .any(|file| file == target);
        match (inside, named) {
            (Some(dir), _) => anyhow::bail!(
                "{flag} {}: lies in {}, a directory of the tree; output goes elsewhere",
                path.display(),
                dir.display()
            ),
            (None, true) => anyhow::bail!(
                "{flag} {}: is a kubeconfig of the tree; output goes elsewhere",
                path.display()
            ),
            (None, false) => Ok(()),
        }
    }

    /// `<kubeconfig-dir>/kubepki-config.yaml`, the tree's recorded configuration.
    pub fn record_file(&self) -> PathBuf {
        self.kubeconfig_dir.join(RECORD_FILE)
    }

    /// `<kubeconfig-dir>/bootstrap`, where `init` and `token` write manifests by default.
    pub fn manifests_dir(&self) -> PathBuf {
        self.kubeconfig_dir.join(MANIFESTS_SUBDIR)
    }

    /// The full paths of a row's files, key first.
    pub fn paths_of(&self, row: &Profile) -> Vec<PathBuf> {
        if let Kind::Kubeconfig(_) = row.kind {
            return vec![self.kubeconfig_dir.join(row.file)];
        }
        [row.key_file(), row.cert_file(), row.pub_file()]
            .into_iter()
            .flatten()
            .map(|rel| self.root_of(row).join(rel))
            .collect()
    }

    /// The full path of a row's file of `kind`, if the row has one.
    pub fn path_of(&self, row: &Profile, kind: FileKind) -> Option<PathBuf> {
        row.file_of(kind).map(|rel| self.root_of(row).join(rel))
    }

    /// The bootstrap kubeconfig `join` writes, `<kubeconfig-dir>/bootstrap-kubelet.conf`.
    pub fn bootstrap_kubeconfig(&self) -> PathBuf {
        self.kubeconfig_dir.join(BOOTSTRAP_KUBECONFIG)
    }

    /// The write of a row's private key file (mode 0600).
    pub fn key_write(&self, row: &Profile, pem: Vec<u8>) -> FileWrite {
        self.row_write(row, row.key_file(), pem, SECRET_MODE)
    }

    /// The write of a row's certificate file (mode 0644).
    pub fn cert_write(&self, row: &Profile, pem: Vec<u8>) -> FileWrite {
        self.row_write(row, row.cert_file(), pem, PUBLIC_MODE)
    }

    /// The write of a key pair row's public key file (mode 0600, as kubeadm's `sa.pub`).
    pub fn public_key_write(&self, row: &Profile, pem: Vec<u8>) -> FileWrite {
        self.row_write(row, row.pub_file(), pem, SECRET_MODE)
    }

    /// The write of a kubeconfig row's file (mode 0600).
    pub fn kubeconfig_write(&self, row: &Profile, yaml: Vec<u8>) -> FileWrite {
        FileWrite {
            root: self.kubeconfig_dir.clone(),
            rel: row.file.into(),
            content: yaml,
            mode: SECRET_MODE,
        }
    }

    fn row_write(
        &self,
        row: &Profile,
        rel: Option<PathBuf>,
        content: Vec<u8>,
        mode: u32,
    ) -> FileWrite {
        FileWrite {
            root: self.root_of(row).to_path_buf(),
            rel: rel.unwrap_or_default(),
            content,
            mode,
        }
    }
}

/// `text` as one word of a POSIX shell: as it is when it holds only characters no shell
/// treats specially, else in single quotes.
pub fn shell_word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./,:=@%+".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_never_names_a_file_of_the_tree_even_through_a_link() {
        let root = tempfile::tempdir().expect("a temp dir");
        let dirs = TreeDirs::new(Some(root.path().join("pki")), Some(root.path().into()))
            .with_kubelet_dir("--kubelet-cert-dir", Some(&root.path().join("kubelet")));
        std::fs::create_dir_all(root.path().join("pki")).expect("a cert dir");
        let outside = tempfile::tempdir().expect("a temp dir");
        let link = outside.path().join("link");
        std::os::unix::fs::symlink(root.path().join("pki"), &link).expect("a link");
        let refused = |path: &Path| dirs.refuse_output("--output", path).is_err();
        for path in [
            root.path().join("pki/ca.key"),
            root.path().join("pki/etcd/new.pem"),
            link.join("ca.key"),
            root.path().join("admin.conf"),
            root.path().join("kubelet/kubelet.key"),
            root.path().join("tmp/x"),
            root.path().join("bootstrap/cluster-info.yaml"),
            root.path().join("sub/../pki/sa.key"),
        ] {
            assert!(refused(&path), "{} accepted", path.display());
        }
        for path in [
            root.path().join("alice.conf"),
            root.path().join("metrics/kubepki.prom"),
            outside.path().join("bundle.yaml"),
        ] {
            assert!(!refused(&path), "{} refused", path.display());
        }
    }

    #[test]
    fn printed_commands_carry_the_flags_given_quoted() {
        let default = TreeDirs::new(None, None);
        assert_eq!(
            default.command("init phase certs ca"),
            "kubepki init phase certs ca"
        );
        let elsewhere = TreeDirs::new(Some("/tmp/my cluster/pki".into()), Some("/x".into()))
            .with_config(Some(Path::new("/etc/kubeadm.yaml")));
        assert_eq!(
            elsewhere.command("token create --print-join-command"),
            "kubepki token create --print-join-command --config /etc/kubeadm.yaml \
             --cert-dir '/tmp/my cluster/pki' --kubeconfig-dir /x"
        );
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
    }
}
