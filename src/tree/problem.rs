//! What can be wrong with a tree, as values: every way a file of the table can be unreadable,
//! broken, mismatched or unusable, with the file it concerns. Reading, planning and renewing
//! all return these; their wording lives here and nowhere else.

use crate::cluster::bundle::ParseError;
use std::fmt;
use std::path::{Path, PathBuf};
use time::Date;

/// Where a certificate or key was found: its own file, or inside a kubeconfig.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// A file of its own (`apiserver.crt`, `apiserver.key`).
    File(PathBuf),
    /// The client certificate or key embedded in a kubeconfig.
    Kubeconfig(PathBuf),
}

impl Place {
    /// The file that holds it.
    pub fn path(&self) -> &PathBuf {
        match self {
            Place::File(path) | Place::Kubeconfig(path) => path,
        }
    }
}

/// What is wrong with the content of one entry of a bundle, once opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryFault {
    /// Not a PEM certificate: what the parser said.
    NotCertificate(String),
    /// A certificate, but not a CA's.
    NotCa,
    /// Not a PEM private key: what the parser said.
    NotKey(String),
    /// Not a PEM public key: what the parser said.
    NotPublicKey(String),
    /// A key (or public key) whose companion entry, named, is empty.
    Alone(String),
    /// Not the key (or public key) of the companion entry, named.
    Mismatch(String),
    /// The tree's file, named, is a key that does not belong to this certificate, and the
    /// bundle has no key to replace it.
    ExistingKeyMismatch(PathBuf),
    /// Not exactly one PEM block of the entry's type: what was found.
    NotOneBlock(String),
    /// Empty, though every CA certificate and the service-account key pair must be there.
    Empty,
    /// Another role's CA: the common name its row wants, and the one found.
    WrongCa {
        /// The row's common name.
        expected: String,
        /// The certificate's.
        found: String,
    },
    /// The same CA as the entry named.
    SameCa(String),
}

impl fmt::Display for EntryFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryFault::NotCertificate(why) => write!(f, "not a valid certificate: {why}"),
            EntryFault::NotCa => f.write_str("certificate is not a CA"),
            EntryFault::NotKey(why) => write!(f, "not a valid private key: {why}"),
            EntryFault::NotPublicKey(why) => write!(f, "not a PEM public key ({why})"),
            EntryFault::Alone(other) => write!(f, "present while {other} is empty"),
            EntryFault::Mismatch(other) => write!(f, "does not match {other}"),
            EntryFault::ExistingKeyMismatch(key) => write!(
                f,
                "the existing {} is not its key and the bundle has none to replace it; move \
                 that key away first",
                key.display()
            ),
            EntryFault::NotOneBlock(why) => write!(f, "{why}"),
            EntryFault::Empty => f.write_str(
                "empty, though a bundle must carry every CA certificate and the \
                 service-account key pair (a host without them would make new ones: another \
                 cluster)",
            ),
            EntryFault::WrongCa { expected, found } => write!(
                f,
                "the CA {found:?} where the CA {expected:?} belongs (entries swapped, or from \
                 another cluster)"
            ),
            EntryFault::SameCa(other) => write!(
                f,
                "the same CA as {other}, though the cluster, front-proxy and etcd CAs are three"
            ),
        }
    }
}

/// One problem with one file of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The store refused or failed to read a file (a symbolic link, permissions, I/O); the
    /// message names the path.
    Unreadable(String),
    /// A certificate that does not parse.
    BadCertificate {
        /// The file it was read from.
        path: PathBuf,
        /// What the parser said.
        why: String,
    },
    /// A private key that does not parse.
    BadKey {
        /// Where it was read from.
        place: Place,
        /// What the parser said.
        why: String,
    },
    /// A public key file (`sa.pub`) that does not parse.
    BadPublicKey {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        why: String,
    },
    /// A trust file (a CA bundle, `sa.pub`) that does not parse as one.
    BadTrust {
        /// The file, or the kubeconfig whose CA it is.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Trust files whose content is no shape a rotation leaves (edited by hand?).
    TrustShape {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A key renamed into place while its certificate still waits staged: a run killed
    /// between the two renames, which the next writing command completes.
    Interrupted {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// A kubeconfig that cannot be used (not YAML, no current context, missing fields).
    BadKubeconfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A CA row's certificate that is not a CA.
    NotCa(PathBuf),
    /// A certificate past its NotAfter.
    Expired {
        /// The file.
        path: PathBuf,
        /// Its NotAfter date.
        on: Date,
    },
    /// A CA past its NotAfter, asked to sign.
    ExpiredCa {
        /// The CA certificate file.
        path: PathBuf,
        /// Its NotAfter date.
        on: Date,
    },
    /// A CA certificate that is not there.
    CaMissing(PathBuf),
    /// A file the command needs that is not there.
    Missing {
        /// The file.
        path: PathBuf,
        /// What to do about it.
        hint: String,
    },
    /// A tree directory that does not exist: there is no tree here.
    NoTree(PathBuf),
    /// A private key file that is not the key of the certificate beside it.
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// A kubeconfig whose client key is not the key of its client certificate.
    EmbeddedKeyMismatch(PathBuf),
    /// A public key file that is not the public half of the private key beside it.
    PublicKeyMismatch {
        /// The public key file.
        public: PathBuf,
        /// The private key file.
        key: PathBuf,
    },
    /// A certificate without its private key.
    CertWithoutKey {
        /// The certificate file.
        cert: PathBuf,
        /// The missing key file.
        key: PathBuf,
    },
    /// A public key without its private key.
    PublicWithoutKey {
        /// The public key file.
        public: PathBuf,
        /// The missing private key file.
        key: PathBuf,
    },
    /// A certificate its CA did not sign.
    NotSignedBy {
        /// Where the certificate is.
        place: Place,
        /// The CA row's name.
        issuer: &'static str,
        /// Why the check failed.
        why: String,
    },
    /// A kubeconfig whose embedded CA is not its CA row's certificate.
    WrongEmbeddedCa {
        /// The kubeconfig.
        path: PathBuf,
        /// The CA row's name.
        issuer: &'static str,
    },
    /// A certificate without SANs the current settings require.
    MissingSans {
        /// The certificate file.
        path: PathBuf,
        /// The SANs it lacks.
        missing: Vec<String>,
    },
    /// A file that cannot be checked or created because its CA is broken.
    UnusableCa {
        /// The file.
        path: PathBuf,
        /// The CA row's name.
        issuer: &'static str,
    },
    /// A missing file whose CA's key is absent (an external CA).
    CaKeyNeeded {
        /// The missing file.
        missing: PathBuf,
        /// The absent CA key.
        ca_key: PathBuf,
    },
    /// A missing file whose CA does not exist yet and is not being created.
    CaNotYet {
        /// The missing file.
        missing: PathBuf,
        /// The CA row's name.
        issuer: &'static str,
        /// The command that creates the CA.
        command: String,
    },
    /// A kubeconfig whose client certificate is a file that does not exist.
    PointedCertMissing {
        /// The kubeconfig.
        kubeconfig: PathBuf,
        /// The certificate file it names.
        cert: PathBuf,
    },
    /// A file whose CA does not exist, so that nothing vouches for it.
    CaAbsent {
        /// The file.
        path: PathBuf,
        /// The CA row's name.
        issuer: &'static str,
    },
    /// A file given as a bundle that is not kubeadm's `kubeadm-certs` Secret.
    NotABundle {
        /// The bundle file.
        path: PathBuf,
        /// What is wrong.
        error: ParseError,
    },
    /// A bundle without entries it must have (a file cut short).
    IncompleteBundle {
        /// The bundle file.
        path: PathBuf,
        /// The entries it lacks.
        missing: Vec<String>,
    },
    /// A bundle that holds no file at all.
    EmptyBundle(PathBuf),
    /// A bundle that the certificate key does not open.
    WrongCertificateKey(PathBuf),
    /// A bundle entry that does not open, though others do: damaged or altered.
    DamagedBundle {
        /// The bundle file.
        path: PathBuf,
        /// The entry.
        entry: String,
    },
    /// A bundle entry whose content is not what it must hold.
    BadBundleEntry {
        /// The bundle file.
        path: PathBuf,
        /// The entry.
        entry: String,
        /// What is wrong with it.
        fault: EntryFault,
    },
    /// A file of the tree that differs from the bundle's: another cluster's material.
    DiffersFromBundle {
        /// The file.
        path: PathBuf,
        /// The bundle's entry for it.
        entry: String,
    },
}

impl Problem {
    /// The file the problem is about, when it names one (a store error carries it in its
    /// message only).
    pub fn file(&self) -> Option<&Path> {
        let path = match self {
            Problem::Unreadable(_) => return None,
            Problem::BadKey { place, .. } | Problem::NotSignedBy { place, .. } => place.path(),
            Problem::BadCertificate { path, .. }
            | Problem::BadPublicKey { path, .. }
            | Problem::BadKubeconfig { path, .. }
            | Problem::NotCa(path)
            | Problem::Expired { path, .. }
            | Problem::ExpiredCa { path, .. }
            | Problem::CaMissing(path)
            | Problem::Missing { path, .. }
            | Problem::NoTree(path)
            | Problem::EmbeddedKeyMismatch(path)
            | Problem::WrongEmbeddedCa { path, .. }
            | Problem::MissingSans { path, .. }
            | Problem::UnusableCa { path, .. }
            | Problem::CaAbsent { path, .. }
            | Problem::NotABundle { path, .. }
            | Problem::IncompleteBundle { path, .. }
            | Problem::EmptyBundle(path)
            | Problem::WrongCertificateKey(path)
            | Problem::DamagedBundle { path, .. }
            | Problem::BadBundleEntry { path, .. }
            | Problem::DiffersFromBundle { path, .. }
            | Problem::BadTrust { path, .. }
            | Problem::TrustShape { path, .. } => path,
            Problem::Interrupted { key, .. } => key,
            Problem::KeyMismatch { key, .. } => key,
            Problem::PublicKeyMismatch { public, .. } => public,
            Problem::CertWithoutKey { cert, .. } => cert,
            Problem::PublicWithoutKey { public, .. } => public,
            Problem::PointedCertMissing { kubeconfig, .. } => kubeconfig,
            Problem::CaKeyNeeded { missing, .. } | Problem::CaNotYet { missing, .. } => missing,
        };
        Some(path)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unreadable(message) => f.write_str(message),
            Problem::BadCertificate { path, why } => {
                write!(f, "{}: not a valid certificate: {why}", path.display())
            }
            Problem::BadKey { place, why } => match place {
                Place::File(path) => {
                    write!(f, "{}: not a valid private key: {why}", path.display())
                }
                Place::Kubeconfig(path) => write!(
                    f,
                    "{}: client-key-data: not a valid private key: {why}",
                    path.display()
                ),
            },
            Problem::BadPublicKey { path, why } => {
                write!(f, "{}: not a PEM public key ({why})", path.display())
            }
            Problem::BadTrust { path, why } => {
                write!(f, "{}: not a valid trust bundle: {why}", path.display())
            }
            Problem::TrustShape { path, why } => write!(
                f,
                "{}: {why}, which no stage of certs rotate-ca leaves (edited by hand?)",
                path.display()
            ),
            Problem::Interrupted { key, cert } => write!(
                f,
                "{}: replaced by a run killed before it renamed {} into place; any writing \
                 kubepki command (the same one again) completes it",
                key.display(),
                cert.display()
            ),
            Problem::BadKubeconfig { path, why } => write!(f, "{}: {why}", path.display()),
            Problem::NotCa(path) => write!(f, "{}: certificate is not a CA", path.display()),
            Problem::Expired { path, on } => write!(f, "{}: expired on {on}", path.display()),
            Problem::ExpiredCa { path, on } => write!(
                f,
                "{}: expired on {on}; it can sign no valid certificate",
                path.display()
            ),
            Problem::CaMissing(path) => {
                write!(f, "{}: CA certificate not found", path.display())
            }
            Problem::Missing { path, hint } => write!(f, "{} is missing: {hint}", path.display()),
            Problem::NoTree(path) => write!(
                f,
                "{}: no such directory, so there is no tree here to read (are --cert-dir and \
                 --kubeconfig-dir right?)",
                path.display()
            ),
            Problem::KeyMismatch { key, cert } => write!(
                f,
                "{}: does not match the certificate {}",
                key.display(),
                cert.display()
            ),
            Problem::EmbeddedKeyMismatch(path) => write!(
                f,
                "{}: client-key-data does not match client-certificate-data",
                path.display()
            ),
            Problem::PublicKeyMismatch { public, key } => write!(
                f,
                "{}: does not match the private key {}",
                public.display(),
                key.display()
            ),
            Problem::CertWithoutKey { cert, key } => write!(
                f,
                "{}: certificate exists without its key {}",
                cert.display(),
                key.display()
            ),
            Problem::PublicWithoutKey { public, key } => write!(
                f,
                "{}: exists without its private key {}",
                public.display(),
                key.display()
            ),
            Problem::NotSignedBy { place, issuer, why } => match place {
                Place::File(path) => {
                    write!(f, "{}: not signed by {issuer}: {why}", path.display())
                }
                Place::Kubeconfig(path) => write!(
                    f,
                    "{}: client certificate not signed by {issuer}: {why}",
                    path.display()
                ),
            },
            Problem::WrongEmbeddedCa { path, issuer } => write!(
                f,
                "{}: exists already but has got the wrong CA cert (not {issuer})",
                path.display()
            ),
            Problem::MissingSans { path, missing } => write!(
                f,
                "{}: lacks the SANs {} that the current settings require; delete it and its key \
                 to have it re-issued",
                path.display(),
                missing.join(", ")
            ),
            Problem::UnusableCa { path, issuer } => write!(
                f,
                "{}: cannot be checked or created while its CA {issuer:?} is unusable (see that \
                 error)",
                path.display()
            ),
            Problem::CaKeyNeeded { missing, ca_key } => write!(
                f,
                "{} is missing and the CA key {} is needed to create it (external CA)",
                missing.display(),
                ca_key.display()
            ),
            Problem::CaNotYet {
                missing,
                issuer,
                command,
            } => write!(
                f,
                "{} is missing and its CA {issuer:?} does not exist yet; run `{command}` first",
                missing.display()
            ),
            Problem::PointedCertMissing { kubeconfig, cert } => write!(
                f,
                "{}: its client certificate {} does not exist",
                kubeconfig.display(),
                cert.display()
            ),
            Problem::CaAbsent { path, issuer } => write!(
                f,
                "{}: exists, but its CA {issuer:?} does not, so it cannot be trusted; restore the \
                 CA or delete the file",
                path.display()
            ),
            Problem::NotABundle { path, error } => {
                let why = match error {
                    ParseError::NotYaml(why) => format!("not YAML: {why}"),
                    ParseError::NoSecret => "no Secret named kubeadm-certs in it".into(),
                    ParseError::NotBase64(entry) => {
                        format!("entry {entry} is not base64 (cut short?)")
                    }
                };
                write!(f, "{}: not a kubeadm-certs bundle: {why}", path.display())
            }
            Problem::IncompleteBundle { path, missing } => write!(
                f,
                "{}: the bundle has no entry for {}: it is incomplete (cut short?)",
                path.display(),
                missing.join(", ")
            ),
            Problem::EmptyBundle(path) => {
                write!(f, "{}: the bundle holds no file", path.display())
            }
            Problem::WrongCertificateKey(path) => write!(
                f,
                "{}: the certificate key does not open this bundle (--certificate-key is not the \
                 key it was sealed with)",
                path.display()
            ),
            Problem::DamagedBundle { path, entry } => write!(
                f,
                "{}: entry {entry} does not open with the certificate key though the others do: \
                 the bundle is damaged or was altered",
                path.display()
            ),
            Problem::BadBundleEntry { path, entry, fault } => {
                write!(f, "{}: entry {entry}: {fault}", path.display())
            }
            Problem::DiffersFromBundle { path, entry } => write!(
                f,
                "{}: exists and differs from the bundle's {entry} (a bundle from another cluster?); \
                 not replaced without --force, which backs it up first",
                path.display()
            ),
        }
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_one_line_naming_its_file() {
        let path = PathBuf::from("/etc/kubernetes/pki/apiserver.crt");
        let key = PathBuf::from("/etc/kubernetes/pki/apiserver.key");
        let kubeconfig = PathBuf::from("/etc/kubernetes/admin.conf");
        let on = Date::from_calendar_date(2021, time::Month::January, 1).expect("a date");
        let problems = [
            Problem::BadCertificate {
                path: path.clone(),
                why: "no PEM CERTIFICATE block found".into(),
            },
            Problem::BadKey {
                place: Place::Kubeconfig(kubeconfig.clone()),
                why: "malformed".into(),
            },
            Problem::Expired {
                path: path.clone(),
                on,
            },
            Problem::KeyMismatch {
                key: key.clone(),
                cert: path.clone(),
            },
            Problem::NotSignedBy {
                place: Place::Kubeconfig(kubeconfig.clone()),
                issuer: "ca",
                why: "issued by another".into(),
            },
            Problem::MissingSans {
                path: path.clone(),
                missing: vec!["new.example.com".into(), "10.9.9.9".into()],
            },
            Problem::CaNotYet {
                missing: path.clone(),
                issuer: "ca",
                command: "kubepki init phase certs ca".into(),
            },
        ];
        for problem in problems {
            let text = problem.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(text.starts_with("/etc/kubernetes/"), "{text}");
        }
        let expired = Problem::Expired { path, on }.to_string();
        assert_eq!(
            expired,
            "/etc/kubernetes/pki/apiserver.crt: expired on 2021-01-01"
        );
        let embedded = Problem::NotSignedBy {
            place: Place::Kubeconfig(kubeconfig),
            issuer: "ca",
            why: "x".into(),
        };
        assert_eq!(
            embedded.to_string(),
            "/etc/kubernetes/admin.conf: client certificate not signed by ca: x"
        );
    }
}
