//! THE table: one row for every certificate, key pair and kubeconfig kubepki manages, as
//! kubeadm's cert list. Rows are static data with named rules (`Cn`, `Sans`, `Validity`)
//! that resolve against a `ClusterSpec` into owned `CertRequest`s. Every command is a loop
//! over this table; nothing else in the code names a certificate or one of its files. No
//! I/O, no crypto. The flags that wire the rows' files into each component are the table's
//! other half, in `components`.

mod components;

pub use components::{
    COMPONENT_FLAGS, Component, ComponentFlag, ETCD_METRICS_PORT, FileKind, FlagValue,
    KUBELET_CONFIG_FILE, SpecValue, When, component_flags,
};

use crate::duration::Duration;
use crate::net::netaddr::San;
use crate::pki::inspect::CertInfo;
use crate::pki::issue::{CertRequest, Eku};
use crate::spec::ClusterSpec;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// What a row produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A self-signed CA: `<file>.crt` and `<file>.key`.
    Ca,
    /// A leaf certificate signed by `issuer`: `<file>.crt` and `<file>.key`.
    Leaf,
    /// A bare key pair: `<file>.key` and `<file>.pub`.
    KeyPair,
    /// A kubeconfig with an embedded client certificate signed by `issuer`.
    Kubeconfig(Server),
}

/// The `init phase` group a row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// `init phase certs`: files under the cert dir.
    Certs,
    /// `init phase kubeconfig`: files under the kubeconfig dir.
    Kubeconfig,
}

/// Which API server URL a kubeconfig points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// This node's advertise address and bind port.
    Local,
    /// The control-plane endpoint when one is set, else the local one.
    ControlPlane,
}

/// The subject common name rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cn {
    /// A fixed name.
    Fixed(&'static str),
    /// The node name.
    NodeName,
    /// A prefix followed by the node name (`system:node:<name>`).
    NodePrefixed(&'static str),
}

/// The subject alternative name rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sans {
    /// No SANs.
    None,
    /// DNS = the common name (kubeadm's CA quirk).
    OwnCn,
    /// The API server's names and addresses.
    ApiServer,
    /// etcd serving: node name, localhost, advertise address, loopbacks, `serverCertSANs`.
    EtcdServer,
    /// etcd peer: the same base set as `EtcdServer`, then `peerCertSANs`.
    EtcdPeer,
    /// A kubelet's serving certificate: DNS = the node name, and the node's addresses, which
    /// only `Profile::node_request` is given (no `ClusterSpec` holds them).
    Node,
}

/// Where a row's files live, and who writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The control plane's tree: written by `init`, under the cert dir (a kubeconfig under
    /// the kubeconfig dir); a missing file is reported.
    ControlPlane,
    /// A node's kubelet: under the kubelet's certificate directory (its `--cert-dir`,
    /// `/var/lib/kubelet/pki`), written on request (`kubepki kubelet serving-cert`), never by
    /// `init`; shown and renewed only when present.
    Kubelet,
}

/// What a row stands for beyond its own files: the rows other commands look up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Nothing beyond its files.
    None,
    /// The cluster CA: the join pin, a worker's `ca.crt`, the signer of user kubeconfigs.
    ClusterCa,
    /// The etcd CA: it and the rows it signs exist only with a local etcd.
    EtcdCa,
    /// The admin kubeconfig: its cluster is what `cluster-info` publishes and join lines
    /// name, and `kubeconfig user` is resolved like it.
    Admin,
    /// The break-glass kubeconfig in `system:masters`, which may create the RBAC that makes
    /// the admin kubeconfig an admin.
    SuperAdmin,
    /// The kubelet's kubeconfig.
    Kubelet,
    /// The kubelet's serving certificate (`kubepki kubelet serving-cert`).
    KubeletServing,
}

/// Whether `certs renew` re-issues a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renew {
    /// Never: CAs (that is rotation) and key pairs.
    Never,
    /// Re-issued from the certificate on disk, with a new key.
    Reissue,
}

/// Where the certificates (or, for a key pair, the public keys) that readers trust for a
/// signing row live: the file `certs rotate-ca` fills with the old and the new one during a
/// rotation, the one that signs first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Nothing: the row signs nothing others check (leaves, kubeconfigs).
    None,
    /// The row's own certificate file (a key pair's public key file): every reader of it
    /// takes several.
    InPlace,
    /// `<stem>.crt` under the cert dir, while it holds more than one certificate: a reader
    /// of the row's own certificate file takes exactly one (the controller manager's
    /// `--cluster-signing-cert-file`), so that file stays one certificate.
    Separate(&'static str),
}

/// The validity period rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// `--ca-validity`.
    Ca,
    /// `--cert-validity`.
    Leaf,
}

/// One certificate, key pair or kubeconfig.
#[derive(Debug, PartialEq, Eq)]
pub struct Profile {
    /// Phase name, e.g. `apiserver`, `etcd-peer`, `admin`.
    pub name: &'static str,
    /// What it produces.
    pub kind: Kind,
    /// File stem under the cert dir (`etcd/peer`), or file name under the kubeconfig dir.
    pub file: &'static str,
    /// The CA row that signs it.
    pub issuer: Option<&'static str>,
    /// Subject common name.
    pub cn: Cn,
    /// Subject organizations.
    pub orgs: &'static [&'static str],
    /// Subject alternative names.
    pub sans: Sans,
    /// Extended key usages.
    pub ekus: &'static [Eku],
    /// Validity period.
    pub validity: Validity,
    /// kubeadm's description, used in renew and check-expiration messages.
    pub long_name: &'static str,
    /// What else the row stands for.
    pub role: Role,
    /// Whether `certs renew` re-issues it.
    pub renew: Renew,
    /// Where its files live, and who writes them.
    pub scope: Scope,
    /// Where what it signs is checked from, and so what `certs rotate-ca` rotates.
    pub trust: Trust,
}

const CLIENT: Profile = Profile {
    name: "",
    kind: Kind::Leaf,
    file: "",
    issuer: Some("ca"),
    cn: Cn::Fixed(""),
    orgs: &[],
    sans: Sans::None,
    ekus: &[Eku::ClientAuth],
    validity: Validity::Leaf,
    long_name: "",
    role: Role::None,
    renew: Renew::Reissue,
    scope: Scope::ControlPlane,
    trust: Trust::None,
};

const CA: Profile = Profile {
    kind: Kind::Ca,
    issuer: None,
    sans: Sans::OwnCn,
    ekus: &[],
    validity: Validity::Ca,
    renew: Renew::Never,
    trust: Trust::InPlace,
    ..CLIENT
};
const KUBECONFIG_LOCAL: Kind = Kind::Kubeconfig(Server::Local);
const KUBECONFIG_ENDPOINT: Kind = Kind::Kubeconfig(Server::ControlPlane);
const SERVING: &[Eku] = &[Eku::ServerAuth, Eku::ClientAuth];

/// Every row, in kubeadm's phase order: CAs before the certificates they sign.
#[rustfmt::skip]
pub static PROFILES: &[Profile] = &[
    Profile { name: "ca", file: "ca", cn: Cn::Fixed("kubernetes"), role: Role::ClusterCa, trust: Trust::Separate("ca-bundle"), long_name: "self-signed Kubernetes CA to provision identities for other Kubernetes components", ..CA },
    Profile { name: "apiserver", file: "apiserver", cn: Cn::Fixed("kube-apiserver"), sans: Sans::ApiServer, ekus: &[Eku::ServerAuth], long_name: "certificate for serving the Kubernetes API", ..CLIENT },
    Profile { name: "apiserver-kubelet-client", file: "apiserver-kubelet-client", cn: Cn::Fixed("kube-apiserver-kubelet-client"), orgs: &[], long_name: "certificate for the API server to connect to kubelet", ..CLIENT },
    Profile { name: "front-proxy-ca", file: "front-proxy-ca", cn: Cn::Fixed("front-proxy-ca"), long_name: "self-signed CA to provision identities for front proxy", ..CA },
    Profile { name: "front-proxy-client", file: "front-proxy-client", issuer: Some("front-proxy-ca"), cn: Cn::Fixed("front-proxy-client"), long_name: "certificate for the front proxy client", ..CLIENT },
    Profile { name: "etcd-ca", file: "etcd/ca", cn: Cn::Fixed("etcd-ca"), role: Role::EtcdCa, long_name: "self-signed CA to provision identities for etcd", ..CA },
    Profile { name: "etcd-server", file: "etcd/server", issuer: Some("etcd-ca"), cn: Cn::NodeName, sans: Sans::EtcdServer, ekus: SERVING, long_name: "certificate for serving etcd", ..CLIENT },
    Profile { name: "etcd-peer", file: "etcd/peer", issuer: Some("etcd-ca"), cn: Cn::NodeName, sans: Sans::EtcdPeer, ekus: SERVING, long_name: "certificate for etcd nodes to communicate with each other", ..CLIENT },
    Profile { name: "etcd-healthcheck-client", file: "etcd/healthcheck-client", issuer: Some("etcd-ca"), cn: Cn::Fixed("kube-etcd-healthcheck-client"), long_name: "certificate for liveness probes to healthcheck etcd", ..CLIENT },
    Profile { name: "apiserver-etcd-client", file: "apiserver-etcd-client", issuer: Some("etcd-ca"), cn: Cn::Fixed("kube-apiserver-etcd-client"), long_name: "certificate the apiserver uses to access etcd", ..CLIENT },
    Profile { name: "sa", kind: Kind::KeyPair, file: "sa", issuer: None, ekus: &[], renew: Renew::Never, trust: Trust::InPlace, long_name: "private key to sign service account tokens along with its public key", ..CLIENT },
    Profile { name: "admin", kind: KUBECONFIG_ENDPOINT, file: "admin.conf", cn: Cn::Fixed("kubernetes-admin"), orgs: &["kubeadm:cluster-admins"], role: Role::Admin, long_name: "certificate embedded in the kubeconfig file for the admin to use and for kubeadm itself", ..CLIENT },
    Profile { name: "super-admin", kind: KUBECONFIG_ENDPOINT, file: "super-admin.conf", cn: Cn::Fixed("kubernetes-super-admin"), orgs: &["system:masters"], role: Role::SuperAdmin, long_name: "certificate embedded in the kubeconfig file for the super-admin", ..CLIENT },
    // kubeadm 1.33+ (ControlPlaneKubeletLocalMode): the kubelet talks to its local API server.
    Profile { name: "kubelet", kind: KUBECONFIG_LOCAL, file: "kubelet.conf", cn: Cn::NodePrefixed("system:node:"), orgs: &["system:nodes"], role: Role::Kubelet, long_name: "certificate embedded in the kubeconfig file for the kubelet to use", ..CLIENT },
    Profile { name: "controller-manager", kind: KUBECONFIG_LOCAL, file: "controller-manager.conf", cn: Cn::Fixed("system:kube-controller-manager"), long_name: "certificate embedded in the kubeconfig file for the controller manager to use", ..CLIENT },
    Profile { name: "scheduler", kind: KUBECONFIG_LOCAL, file: "scheduler.conf", cn: Cn::Fixed("system:kube-scheduler"), long_name: "certificate embedded in the kubeconfig file for the scheduler manager to use", ..CLIENT },
    // The subject the kubelet's own serving CSR has (signer kubernetes.io/kubelet-serving).
    Profile { name: "kubelet-serving", file: "kubelet", cn: Cn::NodePrefixed("system:node:"), orgs: &["system:nodes"], sans: Sans::Node, ekus: &[Eku::ServerAuth], long_name: "certificate the kubelet serves its API with", role: Role::KubeletServing, scope: Scope::Kubelet, ..CLIENT },
];

/// The kubeconfig `join` writes for a worker's kubelet TLS bootstrap, in the kubeconfig
/// directory (kubeadm's `bootstrap-kubelet.conf`). Not a row: it holds a token, no certificate.
pub const BOOTSTRAP_KUBECONFIG: &str = "bootstrap-kubelet.conf";

/// The kubelet's rotated client certificate and key (one PEM file, usually a symlink to the
/// newest `kubelet-client-<time>.pem` beside it) in its certificate directory, which a
/// worker's `kubelet.conf` names after TLS bootstrapping. Not a row: the kubelet writes it.
pub const KUBELET_CLIENT_CURRENT: &str = "kubelet-client-current.pem";

/// The bundle entries kubeadm's `certsToTransfer` has for an external etcd instead of the
/// etcd CA: that etcd's CA and client certificate and key, which live wherever
/// `etcd.external` says, outside the tree. kubepki leaves them empty and never writes them.
pub const EXTERNAL_ETCD_BUNDLE_ENTRIES: &[&str] = &[
    "external-etcd-ca.crt",
    "external-etcd.crt",
    "external-etcd.key",
];

/// The shared rows (see `Profile::is_shared`) in table order; with an external etcd, without
/// the etcd CA, as kubeadm's `certsToTransfer`.
pub fn shared_rows(external_etcd: bool) -> impl Iterator<Item = &'static Profile> {
    PROFILES
        .iter()
        .filter(move |p| p.is_shared() && !(external_etcd && p.needs_local_etcd()))
}

/// The directory below the cert dir where `certs rotate-ca trust` keeps the new CA (or
/// service-account key pair) until `sign` makes it the signer: the row's files under their
/// usual names (`next/ca.key`, `next/etcd/ca.crt`, `next/sa.pub`), a directory that can be
/// copied to the other control-plane hosts for `trust --from`.
pub const PENDING_DIR: &str = "next";

/// The rows `certs rotate-ca` rotates, in table order: those whose signatures others check
/// (the CAs and the service-account key pair).
pub fn rotatable_rows() -> impl Iterator<Item = &'static Profile> {
    PROFILES.iter().filter(|p| p.trust != Trust::None)
}

/// The row that plays `role` (the table has exactly one for every role but `None`, as its
/// unit tests prove).
pub fn by_role(role: Role) -> &'static Profile {
    PROFILES
        .iter()
        .find(|p| p.role == role)
        .expect("the table has a row for every role")
}

/// The directories below the cert dir that hold the table's files (`""` and `etcd`).
pub fn cert_subdirs() -> Vec<PathBuf> {
    let mut subdirs: Vec<PathBuf> = PROFILES
        .iter()
        .filter(|p| p.scope == Scope::ControlPlane)
        .filter_map(|p| p.key_file())
        .map(|key| key.parent().map(Path::to_path_buf).unwrap_or_default())
        .collect();
    subdirs.sort();
    subdirs.dedup();
    subdirs
}

/// The names `certs sign-csr --for` takes: every certificate a CA of the tree signs.
pub fn signable_names() -> impl Iterator<Item = &'static str> {
    PROFILES
        .iter()
        .filter(|p| p.issuer.is_some() && matches!(p.kind, Kind::Leaf | Kind::Kubeconfig(_)))
        .map(|p| p.name)
}

/// The row named `name`.
pub fn by_name(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name)
}

/// The row whose certificate name (see `Profile::cert_name`) is `name`.
pub fn by_cert_name(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.cert_name() == name)
}

/// Names of the rows `certs renew` accepts: leaves and kubeconfigs, as kubeadm.
pub fn renewable_names() -> impl Iterator<Item = &'static str> {
    PROFILES
        .iter()
        .filter(|p| p.is_renewable())
        .map(|p| p.cert_name())
}

/// The renewable rows `names` name (`all`: every one), in table order; `None` when a name
/// is not a renewable row's certificate name.
pub fn renewable_rows(names: &[String]) -> Option<Vec<&'static Profile>> {
    let all = names.iter().any(|n| n == "all");
    let named = |row: &&Profile| all || names.iter().any(|n| n == row.cert_name());
    let rows: Vec<&'static Profile> = PROFILES
        .iter()
        .filter(|p| p.is_renewable())
        .filter(named)
        .collect();
    let known = |name: &String| name == "all" || rows.iter().any(|r| r.cert_name() == name);
    names.iter().all(known).then_some(rows)
}

/// The phase names of `group`, for the CLI's accepted values.
pub fn phase_names(group: Group) -> impl Iterator<Item = &'static str> {
    PROFILES
        .iter()
        .filter(move |p| p.group() == group && p.scope == Scope::ControlPlane)
        .map(|p| p.name)
}

/// Which rows a command acts on.
#[derive(Clone, Copy, Debug)]
pub enum Selection {
    /// Every row.
    All,
    /// Every row of a group (`init phase certs all`).
    Group(Group),
    /// One row.
    One(&'static Profile),
}

impl Selection {
    /// Whether `profile` is selected: `init` writes only the control plane's rows.
    pub fn includes(&self, profile: &Profile) -> bool {
        if profile.scope != Scope::ControlPlane {
            return false;
        }
        match self {
            Selection::All => true,
            Selection::Group(group) => profile.group() == *group,
            Selection::One(one) => one.name == profile.name,
        }
    }
}

/// `wanted_end`, or the end of `ca` when that comes first: a certificate that outlives its
/// CA stops verifying on the CA's last day anyway.
fn within(ca: Option<&CertInfo>, wanted_end: OffsetDateTime) -> OffsetDateTime {
    ca.map_or(wanted_end, |ca| wanted_end.min(ca.not_after))
}

/// `sans` appended to DNS names and IPs.
fn with_sans(
    (mut dns_names, mut ips): (Vec<String>, Vec<IpAddr>),
    sans: &[San],
) -> (Vec<String>, Vec<IpAddr>) {
    for san in sans {
        match san {
            San::Dns(name) => dns_names.push(name.to_string()),
            San::Ip(ip) => ips.push(*ip),
        }
    }
    (dns_names, ips)
}

/// kubeadm's back-dating of NotBefore, for clock skew between nodes.
pub const BACKDATE: time::Duration = time::Duration::minutes(5);

impl Profile {
    /// The name in `certs` commands: the file name for kubeconfigs (`admin.conf`), the CA
    /// name for CAs (`etcd-ca`), else the phase name — kubeadm's `certs` names.
    pub fn cert_name(&self) -> &'static str {
        match self.kind {
            Kind::Kubeconfig(_) => self.file,
            _ => self.name,
        }
    }

    /// Whether the row's files may be absent without anything being wrong: a kubelet's,
    /// which exist only where `kubelet serving-cert` wrote them.
    pub fn is_optional(&self) -> bool {
        self.scope == Scope::Kubelet
    }

    /// Whether `certs renew` re-issues it: leaves and kubeconfigs; never CAs or key pairs.
    pub fn is_renewable(&self) -> bool {
        self.renew == Renew::Reissue
    }

    /// The CA row that signs this row, if any.
    pub fn issuer_row(&self) -> Option<&'static Profile> {
        self.issuer.and_then(by_name)
    }

    /// Whether the row is shared control-plane material, the same files on every
    /// control-plane host: the CAs and the service-account key pair, which the other rows
    /// are signed or checked with (kubeadm's `certsToTransfer`). Every other row is made on
    /// each host for that host.
    pub fn is_shared(&self) -> bool {
        matches!(self.kind, Kind::Ca | Kind::KeyPair)
    }

    /// The row's files under the cert dir, key first (none for kubeconfigs).
    pub fn cert_dir_files(&self) -> Vec<PathBuf> {
        [self.key_file(), self.cert_file(), self.pub_file()]
            .into_iter()
            .flatten()
            .collect()
    }

    /// Whether the row has a certificate (everything but key pairs).
    pub fn has_certificate(&self) -> bool {
        self.kind != Kind::KeyPair
    }

    /// The `init phase` group.
    pub fn group(&self) -> Group {
        match self.kind {
            Kind::Kubeconfig(_) => Group::Kubeconfig,
            _ => Group::Certs,
        }
    }

    /// The file under the cert dir that holds what readers trust for this row during a
    /// rotation (`ca-bundle.crt`, `etcd/ca.crt`, `sa.pub`); none for rows that sign nothing.
    pub fn trust_file(&self) -> Option<PathBuf> {
        match self.trust {
            Trust::None => None,
            Trust::InPlace => self.signer_file(),
            Trust::Separate(stem) => Some(format!("{stem}.crt").into()),
        }
    }

    /// The file of the row that holds its signer's certificate, or for a key pair its
    /// public key, first: `<file>.crt` or `<file>.pub`.
    pub fn signer_file(&self) -> Option<PathBuf> {
        self.cert_file().or_else(|| self.pub_file())
    }

    /// The row's files under `PENDING_DIR`, key first: where a rotation's new CA or key
    /// pair waits.
    pub fn pending_files(&self) -> Vec<PathBuf> {
        let pending = Path::new(PENDING_DIR);
        self.cert_dir_files()
            .into_iter()
            .map(|file| pending.join(file))
            .collect()
    }

    /// The rows this row signs, in table order.
    pub fn signed_rows(&self) -> impl Iterator<Item = &'static Profile> + use<> {
        let name = self.name;
        PROFILES.iter().filter(move |p| p.issuer == Some(name))
    }

    /// Whether the row exists only with a local etcd (the etcd CA and what it signs).
    pub fn needs_local_etcd(&self) -> bool {
        self.role == Role::EtcdCa || self.issuer_row().is_some_and(|ca| ca.role == Role::EtcdCa)
    }

    /// The certificate file under its directory, if the row has a separate one.
    pub fn cert_file(&self) -> Option<PathBuf> {
        matches!(self.kind, Kind::Ca | Kind::Leaf).then(|| format!("{}.crt", self.file).into())
    }

    /// The private key file under the cert dir, if the row has a separate one.
    pub fn key_file(&self) -> Option<PathBuf> {
        matches!(self.kind, Kind::Ca | Kind::Leaf | Kind::KeyPair)
            .then(|| format!("{}.key", self.file).into())
    }

    /// The public key file (`sa.pub`), for key pairs.
    pub fn pub_file(&self) -> Option<PathBuf> {
        (self.kind == Kind::KeyPair).then(|| format!("{}.pub", self.file).into())
    }

    /// The file of `kind` this row has, relative to its directory (the cert dir, or the
    /// kubeconfig dir for a kubeconfig), if it has one.
    pub fn file_of(&self, kind: FileKind) -> Option<PathBuf> {
        match kind {
            FileKind::Cert => self.cert_file(),
            FileKind::Key => self.key_file(),
            FileKind::PublicKey => self.pub_file(),
            FileKind::Kubeconfig => {
                matches!(self.kind, Kind::Kubeconfig(_)).then(|| self.file.into())
            }
        }
    }

    /// The common name for `spec`.
    pub fn common_name(&self, spec: &ClusterSpec) -> String {
        self.common_name_of(&spec.node_name.to_string())
    }

    /// The common name for the node `node`.
    pub fn common_name_of(&self, node: &str) -> String {
        match self.cn {
            Cn::Fixed(cn) => cn.to_string(),
            Cn::NodeName => node.to_string(),
            Cn::NodePrefixed(prefix) => format!("{prefix}{node}"),
        }
    }

    /// The API server URL a kubeconfig row points at.
    pub fn server_url(&self, spec: &ClusterSpec) -> Option<String> {
        match self.kind {
            Kind::Kubeconfig(Server::Local) => Some(spec.local_url()),
            Kind::Kubeconfig(Server::ControlPlane) => Some(spec.control_plane_url()),
            _ => None,
        }
    }

    /// The SANs a certificate of this row must carry: DNS names sorted and unique, IPs in
    /// first-seen order (kubeadm's `RemoveDuplicateAltNames`).
    pub fn alt_names(&self, spec: &ClusterSpec) -> (Vec<String>, Vec<IpAddr>) {
        let node = spec.node_name.to_string();
        let (mut dns_names, ips) = match self.sans {
            Sans::None => (vec![], vec![]),
            Sans::OwnCn => (vec![self.common_name(spec)], vec![]),
            Sans::ApiServer => {
                let mut dns_names = vec![
                    node,
                    "kubernetes".into(),
                    "kubernetes.default".into(),
                    "kubernetes.default.svc".into(),
                ];
                dns_names.push(format!("kubernetes.default.svc.{}", spec.dns_domain));
                let ips = vec![spec.service_cidrs.api_server_ip(), spec.advertise_address];
                let endpoint = spec.control_plane_endpoint.iter().map(|e| e.host.to_san());
                let user_sans: Vec<San> = endpoint.chain(spec.extra_sans.iter().cloned()).collect();
                with_sans((dns_names, ips), &user_sans)
            }
            Sans::EtcdServer | Sans::EtcdPeer => {
                let dns_names = vec![node, "localhost".into()];
                let loopbacks = [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
                let ips = [spec.advertise_address]
                    .into_iter()
                    .chain(loopbacks)
                    .collect();
                let extra = match self.sans {
                    Sans::EtcdServer => &spec.etcd_server_sans,
                    _ => &spec.etcd_peer_sans,
                };
                with_sans((dns_names, ips), extra)
            }
            Sans::Node => (vec![node], vec![]),
        };
        dns_names.sort();
        dns_names.dedup();
        let mut unique_ips = Vec::with_capacity(ips.len());
        for ip in ips {
            if !unique_ips.contains(&ip) {
                unique_ips.push(ip);
            }
        }
        (dns_names, unique_ips)
    }

    /// The certificate request for this row, or `None` for a bare key pair. `ca` is the
    /// certificate of the row's CA (`None` for a CA itself): a kubeconfig's client
    /// certificate starts at its CA's NotBefore, as kubeadm's, and no certificate outlives
    /// its CA (see `Profile::wanted_end` for what the settings alone would give).
    pub fn request(&self, spec: &ClusterSpec, ca: Option<&CertInfo>) -> Option<CertRequest> {
        if self.kind == Kind::KeyPair {
            return None;
        }
        let (dns_names, ips) = self.alt_names(spec);
        let not_before = match (self.kind, ca) {
            (Kind::Kubeconfig(_), Some(ca)) => ca.not_before,
            _ => spec.now - BACKDATE,
        };
        Some(CertRequest {
            cn: self.common_name(spec),
            orgs: self.orgs.iter().map(|o| o.to_string()).collect(),
            dns_names,
            ips,
            ekus: self.ekus.to_vec(),
            is_ca: self.kind == Kind::Ca,
            not_before,
            not_after: within(ca, self.wanted_end(spec)),
        })
    }

    /// When a new certificate of this row would end by the settings alone: now plus the
    /// CA or leaf validity.
    pub fn wanted_end(&self, spec: &ClusterSpec) -> OffsetDateTime {
        let validity = match self.validity {
            Validity::Ca => spec.ca_validity,
            Validity::Leaf => spec.cert_validity,
        };
        spec.now + validity.to_time()
    }

    /// The request that renews `current`, this row's certificate on disk: its subject and
    /// SANs kept as they are (as kubeadm's renew does), the row's usages, a new validity
    /// from `now`, ending no later than `ca`, the certificate of the CA that signs it.
    pub fn renewal_request(
        &self,
        current: &CertInfo,
        now: OffsetDateTime,
        validity: Duration,
        ca: &CertInfo,
    ) -> CertRequest {
        CertRequest {
            cn: current.cn.clone(),
            orgs: current.orgs.clone(),
            dns_names: current.dns_names.clone(),
            ips: current.ips.clone(),
            ekus: self.ekus.to_vec(),
            is_ca: false,
            not_before: now - BACKDATE,
            not_after: within(Some(ca), now + validity.to_time()),
        }
    }

    /// The request of a kubelet row (`Sans::Node`) for the node `node` at `ips`: the row's
    /// subject and usages for that node, DNS = the node name and the IPs as given, from
    /// `now` (back-dated) for `validity`, ending no later than `ca`.
    pub fn node_request(
        &self,
        node: &str,
        ips: &[IpAddr],
        ca: Option<&CertInfo>,
        now: OffsetDateTime,
        validity: Duration,
    ) -> CertRequest {
        let mut unique_ips: Vec<IpAddr> = Vec::with_capacity(ips.len());
        for ip in ips {
            if !unique_ips.contains(ip) {
                unique_ips.push(*ip);
            }
        }
        CertRequest {
            cn: self.common_name_of(node),
            orgs: self.orgs.iter().map(|o| o.to_string()).collect(),
            dns_names: vec![node.to_string()],
            ips: unique_ips,
            ekus: self.ekus.to_vec(),
            is_ca: false,
            not_before: now - BACKDATE,
            not_after: within(ca, now + validity.to_time()),
        }
    }

    /// The request of the CA that succeeds `current`, this CA row's certificate, in a
    /// rotation: its subject and SANs, a validity of `validity` from `now`.
    pub fn successor_request(
        &self,
        current: &CertInfo,
        now: OffsetDateTime,
        validity: Duration,
    ) -> CertRequest {
        CertRequest {
            cn: current.cn.clone(),
            orgs: current.orgs.clone(),
            dns_names: current.dns_names.clone(),
            ips: current.ips.clone(),
            ekus: self.ekus.to_vec(),
            is_ca: true,
            not_before: now - BACKDATE,
            not_after: now + validity.to_time(),
        }
    }

    /// The request of a kubeconfig row for another user: this row's usages, with the
    /// subject `user` in `groups`, starting at `ca`'s NotBefore as kubeadm's kubeconfigs do
    /// and ending at `wanted_end` or at `ca`'s end, whichever comes first.
    pub fn user_request(
        &self,
        user: &str,
        groups: &[String],
        ca: &CertInfo,
        wanted_end: OffsetDateTime,
    ) -> CertRequest {
        CertRequest {
            cn: user.to_string(),
            orgs: groups.to_vec(),
            dns_names: vec![],
            ips: vec![],
            ekus: self.ekus.to_vec(),
            is_ca: false,
            not_before: ca.not_before,
            not_after: within(Some(ca), wanted_end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::spec_for;

    #[test]
    fn table_invariants() {
        for (i, p) in PROFILES.iter().enumerate() {
            assert_eq!(
                PROFILES.iter().filter(|q| q.name == p.name).count(),
                1,
                "{}",
                p.name
            );
            assert_eq!(
                PROFILES.iter().filter(|q| q.file == p.file).count(),
                1,
                "{}",
                p.file
            );
            let needs_issuer = matches!(p.kind, Kind::Leaf | Kind::Kubeconfig(_));
            assert_eq!(p.issuer.is_some(), needs_issuer, "{}", p.name);
            if let Some(issuer) = p.issuer {
                let ca = PROFILES[..i].iter().find(|q| q.name == issuer);
                assert!(
                    ca.is_some_and(|ca| ca.kind == Kind::Ca),
                    "{}: issuer {issuer} is not an earlier CA row",
                    p.name
                );
            }
        }
    }

    #[test]
    fn every_role_has_one_row_and_renew_follows_the_kind() {
        for role in [
            Role::ClusterCa,
            Role::EtcdCa,
            Role::Admin,
            Role::SuperAdmin,
            Role::Kubelet,
            Role::KubeletServing,
        ] {
            let rows: Vec<_> = PROFILES.iter().filter(|p| p.role == role).collect();
            assert_eq!(rows.len(), 1, "{role:?}");
            assert_eq!(by_role(role).role, role);
        }
        assert_eq!(by_role(Role::ClusterCa).kind, Kind::Ca);
        assert_eq!(by_role(Role::EtcdCa).kind, Kind::Ca);
        assert!(matches!(by_role(Role::Admin).kind, Kind::Kubeconfig(_)));
        assert!(matches!(by_role(Role::Kubelet).kind, Kind::Kubeconfig(_)));
        for p in PROFILES {
            let renewable = matches!(p.kind, Kind::Leaf | Kind::Kubeconfig(_));
            assert_eq!(p.is_renewable(), renewable, "{}", p.name);
        }
        let etcd: Vec<_> = PROFILES
            .iter()
            .filter(|p| p.needs_local_etcd())
            .map(|p| p.name)
            .collect();
        assert_eq!(
            etcd,
            [
                "etcd-ca",
                "etcd-server",
                "etcd-peer",
                "etcd-healthcheck-client",
                "apiserver-etcd-client"
            ]
        );
    }

    /// kubeadm's `certsToTransfer` (copycerts.go): these files, with the etcd CA only for a
    /// local etcd.
    #[test]
    fn the_shared_rows_are_kubeadms_certs_to_transfer() {
        let files = |external_etcd| {
            let mut files: Vec<String> = shared_rows(external_etcd)
                .flat_map(|row| row.cert_dir_files())
                .map(|file| file.display().to_string())
                .collect();
            files.sort();
            files
        };
        let kubeadm = [
            "ca.crt",
            "ca.key",
            "etcd/ca.crt",
            "etcd/ca.key",
            "front-proxy-ca.crt",
            "front-proxy-ca.key",
            "sa.key",
            "sa.pub",
        ];
        assert_eq!(files(false), kubeadm);
        let without_etcd: Vec<&str> = kubeadm
            .into_iter()
            .filter(|f| !f.starts_with("etcd/"))
            .collect();
        assert_eq!(files(true), without_etcd);
        let made_on_each_host = PROFILES.iter().filter(|p| !p.is_shared());
        assert!(made_on_each_host.clone().all(|p| p.issuer.is_some()));
        assert_eq!(made_on_each_host.count(), PROFILES.len() - 4);
    }

    #[test]
    fn renew_names_select_rows_in_table_order() {
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let picked = renewable_rows(&names(&["admin.conf", "apiserver", "admin.conf"]))
            .expect("known names");
        let picked: Vec<&str> = picked.iter().map(|r| r.cert_name()).collect();
        assert_eq!(picked, ["apiserver", "admin.conf"]);
        let all = renewable_rows(&names(&["all"])).expect("all");
        assert_eq!(all.len(), renewable_names().count());
        assert!(renewable_rows(&names(&["ca"])).is_none());
        assert!(renewable_rows(&names(&["apiserver", "nope"])).is_none());
    }

    #[test]
    fn every_phase_name_of_the_cli_contract_has_a_row() {
        let certs = "ca apiserver apiserver-kubelet-client front-proxy-ca front-proxy-client etcd-ca etcd-server etcd-peer etcd-healthcheck-client apiserver-etcd-client sa";
        let kubeconfigs = "admin super-admin kubelet controller-manager scheduler";
        assert_eq!(
            phase_names(Group::Certs).collect::<Vec<_>>().join(" "),
            certs
        );
        assert_eq!(
            phase_names(Group::Kubeconfig).collect::<Vec<_>>().join(" "),
            kubeconfigs
        );
    }

    fn sans_of(name: &str, args: &[&str]) -> (Vec<String>, Vec<String>) {
        let spec = spec_for(args);
        let (dns, ips) = by_name(name).unwrap().alt_names(&spec);
        (dns, ips.iter().map(|ip| ip.to_string()).collect())
    }

    #[test]
    fn apiserver_sans_ipv4_defaults() {
        let (dns, ips) = sans_of("apiserver", &[]);
        assert_eq!(
            dns,
            [
                "cp1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local"
            ]
        );
        assert_eq!(ips, ["10.96.0.1", "192.168.1.10"]);
    }

    #[test]
    fn apiserver_sans_ipv6_and_dual_stack() {
        let (_, ips) = sans_of(
            "apiserver",
            &[
                "--apiserver-advertise-address",
                "fd00::10",
                "--service-cidr",
                "fd00:10:96::/112,10.96.0.0/12",
            ],
        );
        assert_eq!(ips, ["fd00:10:96::1", "fd00::10"]);
    }

    #[test]
    fn apiserver_sans_with_endpoint_and_extra_sans_deduplicated() {
        let (dns, ips) = sans_of(
            "apiserver",
            &[
                "--control-plane-endpoint",
                "lb.example.com:443",
                "--apiserver-cert-extra-sans",
                "10.0.0.5,zz.example.com,10.0.0.5,lb.example.com,192.168.1.10",
                "--service-dns-domain",
                "corp.local",
            ],
        );
        assert_eq!(
            dns,
            [
                "cp1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.corp.local",
                "lb.example.com",
                "zz.example.com"
            ]
        );
        assert_eq!(ips, ["10.96.0.1", "192.168.1.10", "10.0.0.5"]);
        let (_, ips) = sans_of("apiserver", &["--control-plane-endpoint", "[fd00::1]:6443"]);
        assert_eq!(ips, ["10.96.0.1", "192.168.1.10", "fd00::1"]);
    }

    #[test]
    fn etcd_sans_and_loopback_advertise() {
        assert_eq!(
            sans_of("etcd-peer", &[]),
            (
                vec!["cp1".into(), "localhost".into()],
                vec!["192.168.1.10".into(), "127.0.0.1".into(), "::1".into()]
            )
        );
        let (_, ips) = sans_of(
            "etcd-server",
            &["--apiserver-advertise-address", "127.0.0.1"],
        );
        assert_eq!(ips, ["127.0.0.1", "::1"]);
        assert_eq!(sans_of("front-proxy-ca", &[]).0, ["front-proxy-ca"]);
        assert_eq!(sans_of("admin", &[]), (vec![], vec![]));
    }

    #[test]
    fn kubeconfig_servers_follow_kubeadm() {
        let spec = spec_for(&[
            "--control-plane-endpoint",
            "lb.example.com",
            "--apiserver-bind-port",
            "7443",
        ]);
        assert_eq!(
            by_name("admin").unwrap().server_url(&spec).unwrap(),
            "https://lb.example.com:7443"
        );
        assert_eq!(
            by_name("scheduler").unwrap().server_url(&spec).unwrap(),
            "https://192.168.1.10:7443"
        );
        assert_eq!(
            by_name("kubelet").unwrap().server_url(&spec).unwrap(),
            "https://192.168.1.10:7443"
        );
        let spec = spec_for(&[
            "--control-plane-endpoint",
            "[fd00::1]:443",
            "--apiserver-advertise-address",
            "fd00::10",
        ]);
        assert_eq!(
            by_name("super-admin").unwrap().server_url(&spec).unwrap(),
            "https://[fd00::1]:443"
        );
        assert_eq!(
            by_name("controller-manager")
                .unwrap()
                .server_url(&spec)
                .unwrap(),
            "https://[fd00::10]:6443"
        );
    }

    #[test]
    fn validity_and_backdating() {
        let spec = spec_for(&[]);
        let ca = by_name("ca").unwrap().request(&spec, None).unwrap();
        assert_eq!(ca.not_before, spec.now - BACKDATE);
        assert_eq!(ca.not_after - spec.now, time::Duration::hours(87600));
        let ca_start = spec.now - time::Duration::days(3);
        let mut ca_cert = CertInfo::parse(
            crate::pki::pem::first_certificate(crate::testgen::ca_pem().as_bytes()).unwrap(),
        )
        .unwrap();
        ca_cert.not_before = ca_start;
        ca_cert.not_after = spec.now + time::Duration::days(3650);
        let admin = by_name("admin")
            .unwrap()
            .request(&spec, Some(&ca_cert))
            .unwrap();
        assert_eq!(
            (admin.not_before, admin.not_after - spec.now),
            (ca_start, time::Duration::hours(8760))
        );
        ca_cert.not_after = spec.now + time::Duration::days(30);
        let apiserver = by_name("apiserver")
            .unwrap()
            .request(&spec, Some(&ca_cert))
            .unwrap();
        assert_eq!(
            apiserver.not_after, ca_cert.not_after,
            "capped at the CA's end"
        );
        assert_eq!(apiserver.not_before, spec.now - BACKDATE);
        assert_eq!(admin.orgs, ["kubeadm:cluster-admins"]);
        assert_eq!(
            by_name("kubelet").unwrap().common_name(&spec),
            "system:node:cp1"
        );
    }
}
