//! The other half of the table: every flag kubeadm gives each component that names a file
//! of a row, or a value derived from the same configuration, as `kubepki flags` prints them
//! and as restart hints read them (`Profile::readers`). No I/O, no crypto.

use super::{Profile, by_name};
use crate::net::netaddr::{Host, https_url};
use crate::spec::ClusterSpec;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A component whose flags `kubepki flags` prints, with kubeadm's name for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// `kube-apiserver`.
    KubeApiserver,
    /// `kube-controller-manager`.
    KubeControllerManager,
    /// `kube-scheduler`.
    KubeScheduler,
    /// `etcd` (a local etcd, as kubeadm's static pod).
    Etcd,
    /// `kubelet`.
    Kubelet,
}

impl Component {
    /// Every component, in the order `kubepki flags --help` lists them.
    pub const ALL: [Component; 5] = [
        Component::KubeApiserver,
        Component::KubeControllerManager,
        Component::KubeScheduler,
        Component::Etcd,
        Component::Kubelet,
    ];

    /// The program's name.
    pub fn name(self) -> &'static str {
        match self {
            Component::KubeApiserver => "kube-apiserver",
            Component::KubeControllerManager => "kube-controller-manager",
            Component::KubeScheduler => "kube-scheduler",
            Component::Etcd => "etcd",
            Component::Kubelet => "kubelet",
        }
    }

    /// The component called `name`.
    pub fn by_name(name: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// Which file of a row a flag names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// `<file>.crt`.
    Cert,
    /// `<file>.key`.
    Key,
    /// `<file>.pub` (`sa.pub`).
    PublicKey,
    /// The kubeconfig file itself.
    Kubeconfig,
}

/// Where the value of a component's flag comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagValue {
    /// A file of the named row.
    File(&'static str, FileKind),
    /// A file of the named CA row that signs for the component: empty when the tree has the
    /// CA's certificate without its key (kubeadm's external CA, where the controller
    /// manager's signer must not start).
    SigningFile(&'static str, FileKind),
    /// The file that holds what readers trust for the named signing row (see `Trust`): its
    /// own file, or during a rotation of the cluster CA the separate bundle.
    Trust(&'static str),
    /// The named row's subject common name.
    CommonName(&'static str),
    /// The bootstrap kubeconfig `join` writes (`BOOTSTRAP_KUBECONFIG`).
    BootstrapKubeconfig,
    /// A value kubeadm derives from the cluster configuration.
    Spec(SpecValue),
    /// A value kubeadm always sets.
    Fixed(&'static str),
}

/// A flag value kubeadm derives from the cluster configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecValue {
    /// The advertise address.
    AdvertiseAddress,
    /// The API server's bind port.
    BindPort,
    /// The service CIDR(s).
    ServiceCidrs,
    /// `https://kubernetes.default.svc.<dns domain>`.
    ServiceAccountIssuer,
    /// `clusterName`.
    ClusterName,
    /// The node name.
    NodeName,
    /// The cluster DNS service IP (10th of the service CIDR; `10.96.0.10` when too small).
    ClusterDns,
    /// The DNS domain.
    ClusterDomain,
    /// The local etcd's client URL on the loopback of the advertise address's family.
    EtcdServers,
    /// The local etcd's client URLs: loopback, then the advertise address.
    EtcdListenClientUrls,
    /// The local etcd's client URL on the advertise address.
    EtcdAdvertiseClientUrl,
    /// The local etcd's peer URL on the advertise address.
    EtcdPeerUrl,
    /// `<node name>=<peer URL>`: a one-member cluster.
    EtcdInitialCluster,
    /// The local etcd's metrics URL, plain HTTP on the loopback (its probes' port).
    EtcdMetricsUrl,
}

/// kubeadm's kubelet configuration file, which its drop-in's `--config` names.
pub const KUBELET_CONFIG_FILE: &str = "/var/lib/kubelet/config.yaml";

/// When a component's flag is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Always, as kubeadm's manifests.
    Always,
    /// Only when asked to verify the kubelets' serving certificates (`--verify-kubelets`):
    /// the API server's `--kubelet-certificate-authority`, and the kubelet's serving pair
    /// from `kubepki kubelet serving-cert`; kubeadm gives neither, since its kubelets serve
    /// self-signed certificates.
    VerifyKubelets,
    /// Only in the static pod manifest (`kubepki init phase control-plane|etcd`): the
    /// flags kubeadm's manifests set that name no file of the tree (`--allow-privileged`,
    /// `--bind-address`, `--leader-elect`, etcd's tuning), which `kubepki flags` leaves out.
    Manifest,
    /// A kubelet setting kubeadm puts in the kubelet's `KubeletConfiguration`
    /// (`/var/lib/kubelet/config.yaml`, `kubepki kubelet config`), whose command-line flag is
    /// deprecated: `kubepki flags kubelet` leaves it out (as kubeadm's drop-in does) and
    /// `kubelet config` takes its value from here.
    KubeletConfig,
}

/// One flag of a component: its name (without `--`) and where its value comes from.
#[derive(Debug, PartialEq, Eq)]
pub struct ComponentFlag {
    /// The component.
    pub component: Component,
    /// The flag's name, without `--`.
    pub flag: &'static str,
    /// Its value.
    pub value: FlagValue,
    /// When it is given.
    pub when: When,
}

/// kubeadm's local etcd client port.
const ETCD_CLIENT_PORT: u16 = 2379;
/// kubeadm's local etcd peer port.
const ETCD_PEER_PORT: u16 = 2380;
/// kubeadm's local etcd metrics port (plain HTTP, on the loopback), which its probes ask.
pub const ETCD_METRICS_PORT: u16 = 2381;
/// kubeadm's cluster DNS IP when the service CIDR is too small for the 10th address.
const DEFAULT_CLUSTER_DNS: &str = "10.96.0.10";

const fn flag(component: Component, flag: &'static str, value: FlagValue) -> ComponentFlag {
    ComponentFlag {
        component,
        flag,
        value,
        when: When::Always,
    }
}

/// A flag given only `when`.
const fn flag_when(
    when: When,
    component: Component,
    name: &'static str,
    value: FlagValue,
) -> ComponentFlag {
    ComponentFlag {
        when,
        ..flag(component, name, value)
    }
}

use Component::{
    Etcd as ETCD, KubeApiserver as API, KubeControllerManager as KCM, KubeScheduler as SCHED,
    Kubelet as KUBELET,
};
use FileKind::{Cert as CRT, Key as KEY, Kubeconfig as CONF};
use FlagValue::{File, Fixed, Spec, Trust as Trusted};

/// Every certificate, key, kubeconfig and authentication or authorization flag kubeadm
/// gives each component (`controlplane/manifests.go`, `etcd/local.go`, the kubelet's
/// drop-in and `KubeletConfiguration`), and the non-PKI ones it derives from the same
/// configuration. Printed sorted by flag, as kubeadm's manifests are.
#[rustfmt::skip]
pub static COMPONENT_FLAGS: &[ComponentFlag] = &[
    flag(API, "advertise-address", Spec(SpecValue::AdvertiseAddress)),
    flag_when(When::Manifest, API, "allow-privileged", Fixed("true")),
    flag(API, "authorization-mode", Fixed("Node,RBAC")),
    flag(API, "client-ca-file", Trusted("ca")),
    flag(API, "enable-admission-plugins", Fixed("NodeRestriction")),
    flag(API, "enable-bootstrap-token-auth", Fixed("true")),
    flag(API, "etcd-cafile", Trusted("etcd-ca")),
    flag(API, "etcd-certfile", File("apiserver-etcd-client", CRT)),
    flag(API, "etcd-keyfile", File("apiserver-etcd-client", KEY)),
    flag(API, "etcd-servers", Spec(SpecValue::EtcdServers)),
    flag_when(When::VerifyKubelets, API, "kubelet-certificate-authority", File("ca", CRT)),
    flag(API, "kubelet-client-certificate", File("apiserver-kubelet-client", CRT)),
    flag(API, "kubelet-client-key", File("apiserver-kubelet-client", KEY)),
    flag_when(When::Manifest, API, "kubelet-preferred-address-types", Fixed("InternalIP,ExternalIP,Hostname")),
    flag(API, "proxy-client-cert-file", File("front-proxy-client", CRT)),
    flag(API, "proxy-client-key-file", File("front-proxy-client", KEY)),
    flag(API, "requestheader-allowed-names", FlagValue::CommonName("front-proxy-client")),
    flag(API, "requestheader-client-ca-file", Trusted("front-proxy-ca")),
    flag(API, "requestheader-extra-headers-prefix", Fixed("X-Remote-Extra-")),
    flag(API, "requestheader-group-headers", Fixed("X-Remote-Group")),
    flag(API, "requestheader-username-headers", Fixed("X-Remote-User")),
    flag(API, "secure-port", Spec(SpecValue::BindPort)),
    flag(API, "service-account-issuer", Spec(SpecValue::ServiceAccountIssuer)),
    flag(API, "service-account-key-file", Trusted("sa")),
    flag(API, "service-account-signing-key-file", File("sa", KEY)),
    flag(API, "service-cluster-ip-range", Spec(SpecValue::ServiceCidrs)),
    flag(API, "tls-cert-file", File("apiserver", CRT)),
    flag(API, "tls-private-key-file", File("apiserver", KEY)),
    flag(KCM, "authentication-kubeconfig", File("controller-manager", CONF)),
    flag(KCM, "authorization-kubeconfig", File("controller-manager", CONF)),
    flag_when(When::Manifest, KCM, "bind-address", Fixed("127.0.0.1")),
    flag(KCM, "client-ca-file", Trusted("ca")),
    flag(KCM, "cluster-name", Spec(SpecValue::ClusterName)),
    flag(KCM, "cluster-signing-cert-file", FlagValue::SigningFile("ca", CRT)),
    flag(KCM, "cluster-signing-key-file", FlagValue::SigningFile("ca", KEY)),
    flag(KCM, "controllers", Fixed("*,bootstrapsigner,tokencleaner")),
    flag(KCM, "kubeconfig", File("controller-manager", CONF)),
    flag_when(When::Manifest, KCM, "leader-elect", Fixed("true")),
    flag(KCM, "requestheader-client-ca-file", Trusted("front-proxy-ca")),
    flag(KCM, "root-ca-file", Trusted("ca")),
    flag(KCM, "service-account-private-key-file", File("sa", KEY)),
    flag(KCM, "use-service-account-credentials", Fixed("true")),
    flag(SCHED, "authentication-kubeconfig", File("scheduler", CONF)),
    flag(SCHED, "authorization-kubeconfig", File("scheduler", CONF)),
    flag_when(When::Manifest, SCHED, "bind-address", Fixed("127.0.0.1")),
    flag(SCHED, "kubeconfig", File("scheduler", CONF)),
    flag_when(When::Manifest, SCHED, "leader-elect", Fixed("true")),
    flag(ETCD, "advertise-client-urls", Spec(SpecValue::EtcdAdvertiseClientUrl)),
    flag(ETCD, "cert-file", File("etcd-server", CRT)),
    flag(ETCD, "client-cert-auth", Fixed("true")),
    flag(ETCD, "initial-advertise-peer-urls", Spec(SpecValue::EtcdPeerUrl)),
    flag(ETCD, "initial-cluster", Spec(SpecValue::EtcdInitialCluster)),
    flag(ETCD, "key-file", File("etcd-server", KEY)),
    flag(ETCD, "listen-client-urls", Spec(SpecValue::EtcdListenClientUrls)),
    flag_when(When::Manifest, ETCD, "listen-metrics-urls", Spec(SpecValue::EtcdMetricsUrl)),
    flag(ETCD, "listen-peer-urls", Spec(SpecValue::EtcdPeerUrl)),
    flag(ETCD, "name", Spec(SpecValue::NodeName)),
    flag(ETCD, "peer-cert-file", File("etcd-peer", CRT)),
    flag(ETCD, "peer-client-cert-auth", Fixed("true")),
    flag(ETCD, "peer-key-file", File("etcd-peer", KEY)),
    flag(ETCD, "peer-trusted-ca-file", Trusted("etcd-ca")),
    flag_when(When::Manifest, ETCD, "snapshot-count", Fixed("10000")),
    flag(ETCD, "trusted-ca-file", Trusted("etcd-ca")),
    flag_when(When::KubeletConfig, KUBELET, "anonymous-auth", Fixed("false")),
    flag_when(When::KubeletConfig, KUBELET, "authentication-token-webhook", Fixed("true")),
    flag_when(When::KubeletConfig, KUBELET, "authorization-mode", Fixed("Webhook")),
    flag(KUBELET, "bootstrap-kubeconfig", FlagValue::BootstrapKubeconfig),
    flag_when(When::KubeletConfig, KUBELET, "client-ca-file", Trusted("ca")),
    flag_when(When::KubeletConfig, KUBELET, "cluster-dns", Spec(SpecValue::ClusterDns)),
    flag_when(When::KubeletConfig, KUBELET, "cluster-domain", Spec(SpecValue::ClusterDomain)),
    flag(KUBELET, "config", Fixed(KUBELET_CONFIG_FILE)),
    flag(KUBELET, "kubeconfig", File("kubelet", CONF)),
    flag_when(When::KubeletConfig, KUBELET, "rotate-certificates", Fixed("true")),
    flag_when(When::KubeletConfig, KUBELET, "tls-cert-file", File("kubelet-serving", CRT)),
    flag_when(When::KubeletConfig, KUBELET, "tls-private-key-file", File("kubelet-serving", KEY)),
];

/// The `KubeletConfiguration` field of a kubelet flag the table gives as `KubeletConfig`.
fn kubelet_config_field(flag: &str) -> Option<&'static str> {
    Some(match flag {
        "anonymous-auth" => "authentication.anonymous.enabled",
        "authentication-token-webhook" => "authentication.webhook.enabled",
        "authorization-mode" => "authorization.mode",
        "client-ca-file" => "authentication.x509.clientCAFile",
        "cluster-dns" => "clusterDNS",
        "cluster-domain" => "clusterDomain",
        "rotate-certificates" => "rotateCertificates",
        "tls-cert-file" => "tlsCertFile",
        "tls-private-key-file" => "tlsPrivateKeyFile",
        _ => return None,
    })
}

/// The flags of `component`, sorted by name: those given always, and the conditional ones
/// `when` allows.
pub fn component_flags(component: Component, when: &[When]) -> Vec<&'static ComponentFlag> {
    let mut flags: Vec<&ComponentFlag> = COMPONENT_FLAGS
        .iter()
        .filter(|f| f.component == component)
        .filter(|f| f.when == When::Always || when.contains(&f.when))
        .collect();
    flags.sort_by_key(|f| f.flag);
    flags
}

impl Profile {
    /// The components that read a file of this row (a flag of theirs names it): those to
    /// restart when the row's files change.
    pub fn readers(&self) -> Vec<Component> {
        let mut readers: Vec<Component> = COMPONENT_FLAGS
            .iter()
            .filter(|f| {
                matches!(f.value, FlagValue::File(row, _) | FlagValue::SigningFile(row, _) | FlagValue::Trust(row) if row == self.name)
            })
            .map(|f| f.component)
            .collect();
        readers.dedup();
        readers
    }
}

impl ComponentFlag {
    /// How a restart hint names the setting: `--flag`, or for a `KubeletConfig` row its
    /// field in the kubelet's configuration file (`authentication.x509.clientCAFile`).
    pub fn setting_name(&self) -> String {
        match (self.when, kubelet_config_field(self.flag)) {
            (When::KubeletConfig, Some(field)) => field.to_string(),
            _ => format!("--{}", self.flag),
        }
    }

    /// The row whose file or name the flag takes, if any.
    pub fn row(&self) -> Option<&'static Profile> {
        match self.value {
            FlagValue::File(row, _) | FlagValue::SigningFile(row, _) => by_name(row),
            FlagValue::Trust(row) | FlagValue::CommonName(row) => by_name(row),
            _ => None,
        }
    }

    /// Whether the flag exists only with a local etcd (kubeadm's `etcd.external` replaces
    /// it with the configuration's own values).
    pub fn needs_local_etcd(&self) -> bool {
        let etcd_value = matches!(
            self.value,
            FlagValue::Spec(
                SpecValue::EtcdServers
                    | SpecValue::EtcdListenClientUrls
                    | SpecValue::EtcdAdvertiseClientUrl
                    | SpecValue::EtcdPeerUrl
                    | SpecValue::EtcdInitialCluster
                    | SpecValue::EtcdMetricsUrl
            )
        );
        etcd_value || self.row().is_some_and(Profile::needs_local_etcd)
    }
}

impl SpecValue {
    /// The value for `spec`.
    pub fn resolve(self, spec: &ClusterSpec) -> String {
        let advertise = Host::Ip(spec.advertise_address);
        let loopback = Host::Ip(match spec.advertise_address {
            IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
        let peer_url = https_url(&advertise, ETCD_PEER_PORT);
        match self {
            SpecValue::AdvertiseAddress => spec.advertise_address.to_string(),
            SpecValue::BindPort => spec.bind_port.to_string(),
            SpecValue::ServiceCidrs => spec.service_cidrs.to_string(),
            SpecValue::ServiceAccountIssuer => {
                format!("https://kubernetes.default.svc.{}", spec.dns_domain)
            }
            SpecValue::ClusterName => spec.cluster_name.clone(),
            SpecValue::NodeName => spec.node_name.to_string(),
            SpecValue::ClusterDns => spec
                .service_cidrs
                .dns_ip()
                .map_or(DEFAULT_CLUSTER_DNS.to_string(), |ip| ip.to_string()),
            SpecValue::ClusterDomain => spec.dns_domain.to_string(),
            SpecValue::EtcdServers => https_url(&loopback, ETCD_CLIENT_PORT),
            SpecValue::EtcdListenClientUrls => format!(
                "{},{}",
                https_url(&loopback, ETCD_CLIENT_PORT),
                https_url(&advertise, ETCD_CLIENT_PORT)
            ),
            SpecValue::EtcdAdvertiseClientUrl => https_url(&advertise, ETCD_CLIENT_PORT),
            SpecValue::EtcdPeerUrl => peer_url,
            SpecValue::EtcdInitialCluster => format!("{}={peer_url}", spec.node_name),
            SpecValue::EtcdMetricsUrl => format!("http://{loopback}:{ETCD_METRICS_PORT}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readers_of_a_row_are_the_components_whose_flags_name_its_files() {
        let readers = |name: &str| by_name(name).expect("a row").readers();
        assert_eq!(readers("ca"), [API, KCM, KUBELET]);
        assert_eq!(readers("sa"), [API, KCM]);
        assert_eq!(readers("front-proxy-ca"), [API, KCM]);
        assert_eq!(readers("etcd-ca"), [API, ETCD]);
        assert_eq!(readers("apiserver"), [API]);
        assert_eq!(readers("front-proxy-client"), [API]);
        assert_eq!(readers("etcd-peer"), [ETCD]);
        assert_eq!(readers("kubelet"), [KUBELET]);
        assert_eq!(readers("scheduler"), [SCHED]);
        assert!(readers("etcd-healthcheck-client").is_empty());
        assert!(readers("admin").is_empty());
    }

    #[test]
    fn every_component_flag_names_a_row_file_that_exists_once() {
        for f in COMPONENT_FLAGS {
            let same = COMPONENT_FLAGS
                .iter()
                .filter(|g| g.component == f.component && g.flag == f.flag);
            assert_eq!(same.count(), 1, "{:?} --{}", f.component, f.flag);
            match f.value {
                FlagValue::File(row, kind) | FlagValue::SigningFile(row, kind) => {
                    let row = by_name(row).unwrap_or_else(|| panic!("--{}: no row {row}", f.flag));
                    assert!(
                        row.file_of(kind).is_some(),
                        "--{}: {kind:?} of {}",
                        f.flag,
                        row.name
                    );
                }
                FlagValue::Trust(row) => {
                    let row = by_name(row).unwrap_or_else(|| panic!("--{}: no row {row}", f.flag));
                    assert!(
                        row.trust_file().is_some(),
                        "--{}: {} trusts nothing",
                        f.flag,
                        row.name
                    );
                }
                FlagValue::CommonName(row) => assert!(by_name(row).is_some(), "{row}"),
                _ => assert!(f.row().is_none(), "--{}", f.flag),
            }
        }
        for f in COMPONENT_FLAGS
            .iter()
            .filter(|f| f.when == When::KubeletConfig)
        {
            assert!(
                kubelet_config_field(f.flag).is_some(),
                "--{}: no field",
                f.flag
            );
        }
        for component in Component::ALL {
            assert!(!component_flags(component, &[]).is_empty(), "{component:?}");
            assert_eq!(Component::by_name(component.name()), Some(component));
        }
        let etcd_only: Vec<&str> =
            component_flags(Component::KubeApiserver, &[When::VerifyKubelets])
                .into_iter()
                .filter(|f| f.needs_local_etcd())
                .map(|f| f.flag)
                .collect();
        assert_eq!(
            etcd_only,
            [
                "etcd-cafile",
                "etcd-certfile",
                "etcd-keyfile",
                "etcd-servers"
            ]
        );
    }
}
