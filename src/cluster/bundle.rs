//! kubeadm's bundle of shared control-plane material, as its `copycerts` phase makes it
//! (`cmd/kubeadm/app/phases/copycerts`): the Secret `kubeadm-certs` in `kube-system`, whose
//! `data` holds each shared file sealed with the certificate key (`pki::seal`), under the
//! file's name below the cert dir with `/` replaced by `-` (`etcd/ca.crt` → `etcd-ca.crt`),
//! base64 as in every Secret; a file that was not there is an empty entry. Beside it, the
//! Role and RoleBinding `kubeadm:kubeadm-certs` let joining control planes (the bootstrap
//! token group) get that one Secret. Builds and reads the YAML; which files go in, and the
//! disk, belong to the callers.

use super::bootstrap::DEFAULT_GROUP;
use super::manifests::{binding, documents, get_role, subject};
use crate::pki::seal::{self, CertificateKey, OpenError};
use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::Value;
use serde_yaml::Mapping;
use std::collections::BTreeMap;

/// The Secret's name.
pub const SECRET_NAME: &str = "kubeadm-certs";
/// Its namespace.
pub const NAMESPACE: &str = "kube-system";
/// The Role and RoleBinding that let joining control planes get the Secret.
const RBAC_NAME: &str = "kubeadm:kubeadm-certs";

/// The first lines of a bundle kubepki writes: what it is, for people who open it.
const HEADER: &str = "# kubeadm's kubeadm-certs Secret: the shared control-plane CAs and keys, each \
                      sealed (AES-256-GCM) with a certificate key.\n";

/// The Secret data key of a file below the cert dir: `/` becomes `-`, as kubeadm names them.
pub fn entry_name(file: &str) -> String {
    file.replace('/', "-")
}

/// A bundle: sealed content by entry name; an empty entry stands for a file that was absent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    entries: BTreeMap<String, Vec<u8>>,
}

/// Why a file is not a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not YAML (nor JSON): the parser's message.
    NotYaml(String),
    /// No document is the Secret `kubeadm-certs`.
    NoSecret,
    /// An entry whose value is not a base64 string.
    NotBase64(String),
}

/// Why a bundle did not open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenFailure {
    /// No entry opens with the key: another key sealed them.
    WrongKey,
    /// This entry does not open though others do, or is shorter than a sealed message: the
    /// bundle was damaged or altered.
    Damaged(String),
}

impl Bundle {
    /// `files` (a name below the cert dir, and the content if the file exists) sealed with
    /// `key`, each with its own random nonce.
    pub fn seal(files: &[(String, Option<Vec<u8>>)], key: &CertificateKey) -> Result<Bundle> {
        let mut entries = BTreeMap::new();
        for (file, content) in files {
            let sealed = match content {
                Some(plaintext) => seal::seal(key, plaintext)?,
                None => Vec::new(),
            };
            entries.insert(entry_name(file), sealed);
        }
        Ok(Bundle { entries })
    }

    /// Whether the bundle has an entry called `name` (empty or not).
    pub fn has(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The names of the entries, sorted.
    #[cfg(test)]
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The Secret alone, as a YAML document: the file to copy between hosts.
    pub fn secret_yaml(&self) -> Result<String> {
        Ok(format!("{HEADER}{}", self.secret()?))
    }

    /// The Secret with kubeadm's Role and RoleBinding, for `kubectl apply -f`.
    pub fn manifest_yaml(&self) -> Result<String> {
        let role = get_role(RBAC_NAME, Some(NAMESPACE), "secrets", Some(SECRET_NAME));
        let role_binding = binding(
            "RoleBinding",
            RBAC_NAME,
            Some(NAMESPACE),
            ("Role", RBAC_NAME),
            vec![subject("Group", DEFAULT_GROUP)],
        );
        Ok(format!(
            "{HEADER}{}---\n{}",
            self.secret()?,
            documents(&[role, role_binding])?
        ))
    }

    /// The Secret's YAML, its fields in the order people expect (serde_json's maps would sort
    /// them) and `data` last, so that a file cut short loses entries, which import names.
    fn secret(&self) -> Result<String> {
        let mut data = Mapping::new();
        for (name, sealed) in &self.entries {
            data.insert(name.as_str().into(), BASE64.encode(sealed).into());
        }
        let mut metadata = Mapping::new();
        metadata.insert("name".into(), SECRET_NAME.into());
        metadata.insert("namespace".into(), NAMESPACE.into());
        let mut secret = Mapping::new();
        secret.insert("apiVersion".into(), "v1".into());
        secret.insert("kind".into(), "Secret".into());
        secret.insert("metadata".into(), metadata.into());
        secret.insert("type".into(), "Opaque".into());
        secret.insert("data".into(), data.into());
        serde_yaml::to_string(&secret).context("serializing the kubeadm-certs Secret")
    }

    /// The Secret `kubeadm-certs` among the YAML (or JSON) documents of `text`: a file kubepki
    /// wrote, with or without the RBAC objects, or what `kubectl get secret kubeadm-certs -o
    /// yaml` prints of one kubeadm uploaded. A `null` value is an empty entry.
    pub fn parse(text: &[u8]) -> Result<Bundle, ParseError> {
        super::yaml::check_depth(text).map_err(|e| ParseError::NotYaml(e.to_string()))?;
        let text = String::from_utf8_lossy(text);
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = Value::deserialize(document)
                .map_err(|e| ParseError::NotYaml(first_line(&e.to_string())))?;
            if is_bundle_secret(&value) {
                return entries_of(&value).map(|entries| Bundle { entries });
            }
        }
        Err(ParseError::NoSecret)
    }

    /// Every entry opened with `key` (empty ones stay empty). All or nothing, as kubeadm's
    /// `getDataFromSecret`: one entry that does not open fails the whole bundle.
    pub fn open(&self, key: &CertificateKey) -> Result<BTreeMap<String, Vec<u8>>, OpenFailure> {
        let mut opened = BTreeMap::new();
        let mut refused = Vec::new();
        for (name, sealed) in &self.entries {
            if sealed.is_empty() {
                opened.insert(name.clone(), Vec::new());
                continue;
            }
            match seal::open(key, sealed) {
                Ok(plaintext) => {
                    opened.insert(name.clone(), plaintext);
                }
                Err(OpenError::TooShort) => return Err(OpenFailure::Damaged(name.clone())),
                Err(OpenError::NotAuthentic) => refused.push(name.clone()),
            }
        }
        let any_opened = opened.values().any(|plaintext| !plaintext.is_empty());
        match (refused.into_iter().next(), any_opened) {
            (None, _) => Ok(opened),
            (Some(name), true) => Err(OpenFailure::Damaged(name)),
            (Some(_), false) => Err(OpenFailure::WrongKey),
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

fn is_bundle_secret(value: &Value) -> bool {
    value["kind"] == "Secret" && value["metadata"]["name"] == SECRET_NAME
}

/// The Secret's `data`, each value base64-decoded.
fn entries_of(secret: &Value) -> Result<BTreeMap<String, Vec<u8>>, ParseError> {
    let Some(data) = secret["data"].as_object() else {
        return Ok(BTreeMap::new());
    };
    let mut entries = BTreeMap::new();
    for (name, value) in data {
        let bytes = match value {
            Value::Null => Vec::new(),
            Value::String(text) => BASE64
                .decode(text.trim())
                .map_err(|_| ParseError::NotBase64(name.clone()))?,
            _ => return Err(ParseError::NotBase64(name.clone())),
        };
        entries.insert(name.clone(), bytes);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn key() -> CertificateKey {
        "8f".repeat(32).parse().expect("a key")
    }

    fn files() -> Vec<(String, Option<Vec<u8>>)> {
        vec![
            ("ca.crt".into(), Some(b"CA CERTIFICATE".to_vec())),
            ("ca.key".into(), None),
            ("etcd/ca.crt".into(), Some(b"ETCD CA".to_vec())),
        ]
    }

    #[test]
    fn the_secret_is_kubeadms_and_reads_back() {
        let bundle = Bundle::seal(&files(), &key()).expect("sealed");
        assert_eq!(
            bundle.names().collect::<Vec<_>>(),
            ["ca.crt", "ca.key", "etcd-ca.crt"]
        );
        let yaml = bundle.secret_yaml().expect("yaml");
        assert!(
            yaml.starts_with("# kubeadm's kubeadm-certs Secret"),
            "{yaml}"
        );
        assert!(
            yaml.contains("\napiVersion: v1\nkind: Secret\nmetadata:\n  name: kubeadm-certs\n  namespace: kube-system\ntype: Opaque\ndata:\n  ca.crt: "),
            "{yaml}"
        );
        assert!(yaml.contains("  ca.key: ''\n"), "{yaml}");
        assert_eq!(Bundle::parse(yaml.as_bytes()), Ok(bundle.clone()));
        let opened = bundle.open(&key()).expect("opened");
        assert_eq!(opened["ca.crt"], b"CA CERTIFICATE");
        assert_eq!(opened["ca.key"], b"");
        assert_eq!(opened["etcd-ca.crt"], b"ETCD CA");
    }

    #[test]
    fn the_manifest_adds_kubeadms_role_and_binding() {
        let bundle = Bundle::seal(&files(), &key()).expect("sealed");
        let manifest = bundle.manifest_yaml().expect("yaml");
        let objects: Vec<Value> = serde_yaml::Deserializer::from_str(&manifest)
            .map(|d| Value::deserialize(d).expect("a document"))
            .collect();
        assert_eq!(objects.len(), 3);
        assert_eq!(objects[1]["kind"], "Role");
        assert_eq!(objects[1]["metadata"]["name"], "kubeadm:kubeadm-certs");
        assert_eq!(
            objects[1]["rules"],
            json!([{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["kubeadm-certs"], "verbs": ["get"]}])
        );
        assert_eq!(objects[2]["kind"], "RoleBinding");
        assert_eq!(objects[2]["metadata"]["namespace"], "kube-system");
        assert_eq!(objects[2]["roleRef"]["name"], "kubeadm:kubeadm-certs");
        assert_eq!(
            objects[2]["subjects"][0]["name"],
            "system:bootstrappers:kubeadm:default-node-token"
        );
        assert_eq!(Bundle::parse(manifest.as_bytes()), Ok(bundle));
    }

    #[test]
    fn what_kubectl_prints_of_kubeadms_secret_is_read() {
        let sealed = seal::seal(&key(), b"SA KEY").expect("sealed");
        let json = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "kubeadm-certs", "namespace": "kube-system", "uid": "u",
                         "ownerReferences": [{"kind": "Secret", "name": "bootstrap-token-abcdef"}]},
            "data": {"sa.key": BASE64.encode(&sealed), "external-etcd.crt": null},
        });
        let bundle = Bundle::parse(json.to_string().as_bytes()).expect("parsed");
        let opened = bundle.open(&key()).expect("opened");
        assert_eq!(opened["sa.key"], b"SA KEY");
        assert_eq!(opened["external-etcd.crt"], b"");
    }

    #[test]
    fn a_wrong_key_and_a_damaged_entry_are_told_apart() {
        let bundle = Bundle::seal(&files(), &key()).expect("sealed");
        let other = CertificateKey::generate().expect("a key");
        assert_eq!(bundle.open(&other), Err(OpenFailure::WrongKey));
        let mut damaged = bundle.clone();
        let entry = damaged.entries.get_mut("etcd-ca.crt").expect("an entry");
        let last = entry.len() - 1;
        entry[last] ^= 1;
        assert_eq!(
            damaged.open(&key()),
            Err(OpenFailure::Damaged("etcd-ca.crt".into()))
        );
        let mut cut = bundle.clone();
        cut.entries
            .get_mut("ca.crt")
            .expect("an entry")
            .truncate(20);
        assert_eq!(cut.open(&other), Err(OpenFailure::Damaged("ca.crt".into())));
    }

    #[test]
    fn other_files_are_not_bundles() {
        let not_yaml = Bundle::parse(b"data: [unclosed").expect_err("refused");
        assert!(matches!(not_yaml, ParseError::NotYaml(_)), "{not_yaml:?}");
        let other_secret = "kind: Secret\nmetadata: {name: other}\ndata: {a: b}\n";
        assert_eq!(
            Bundle::parse(other_secret.as_bytes()),
            Err(ParseError::NoSecret)
        );
        let bad = "kind: Secret\nmetadata: {name: kubeadm-certs}\ndata: {ca.crt: 'not base64!'}\n";
        assert_eq!(
            Bundle::parse(bad.as_bytes()),
            Err(ParseError::NotBase64("ca.crt".into()))
        );
    }

    proptest! {
        #[test]
        fn any_text_is_a_bundle_or_an_error_never_a_panic(text in ".{0,200}") {
            let _ = Bundle::parse(text.as_bytes());
        }

        #[test]
        fn any_cut_of_a_bundle_is_refused_or_reads_as_a_prefix(cut in 0usize..2000) {
            let bundle = Bundle::seal(&files(), &key()).expect("sealed");
            let yaml = bundle.secret_yaml().expect("yaml");
            let cut = cut.min(yaml.len());
            if let Ok(read) = Bundle::parse(&yaml.as_bytes()[..cut]) {
                if let Ok(opened) = read.open(&key()) {
                    let whole = bundle.open(&key()).expect("opened");
                    for (name, plaintext) in opened {
                        prop_assert!(plaintext.is_empty() || whole[&name] == plaintext);
                    }
                }
            }
        }
    }
}
