//! What kubepki publishes of a cluster's configuration for `kubeadm join` and the kubelets,
//! as kubeadm's `upload-config` and `kubelet` phases do: the `ClusterConfiguration`
//! (`kubeadm.k8s.io/v1beta4`, the fields kubepki knows) and a `KubeletConfiguration`
//! (`kubelet.config.k8s.io/v1beta1`, kubeadm's defaults); and that same
//! `KubeletConfiguration` hardened, for `kubepki kubelet config`; and the configuration a
//! tree records of itself (`recorded_configuration`). Text only; no I/O.

use crate::spec::ClusterSpec;
use anyhow::{Context, Result, anyhow};
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::Path;

/// The lowest TLS version the hardened kubelet serves.
pub const KUBELET_TLS_MIN_VERSION: &str = "VersionTLS12";
/// The TLS 1.2 cipher suites the hardened kubelet serves (Go's names): ECDHE key exchange
/// and AEAD ciphers only (TLS 1.3's are not configurable and all sound).
pub const KUBELET_TLS_CIPHER_SUITES: [&str; 6] = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
];

/// The kubelet's static pod directory, kubeadm's.
const STATIC_POD_PATH: &str = "/etc/kubernetes/manifests";

/// The `ClusterConfiguration` of `spec`, with `cert_dir` and, when known,
/// `kubernetes_version` (kubeadm join needs it: without one it asks the internet for the
/// latest stable release).
pub fn cluster_configuration(
    spec: &ClusterSpec,
    cert_dir: &Path,
    kubernetes_version: Option<&str>,
) -> Result<String> {
    let mut config = json!({
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "ClusterConfiguration",
        "clusterName": spec.cluster_name,
        "certificatesDir": cert_dir,
        "networking": {
            "dnsDomain": spec.dns_domain.to_string(),
            "serviceSubnet": spec.service_cidrs.to_string(),
        },
        "encryptionAlgorithm": spec.algorithm.name(),
        "certificateValidityPeriod": spec.cert_validity.go(),
        "caCertificateValidityPeriod": spec.ca_validity.go(),
    });
    if let Some(endpoint) = &spec.control_plane_endpoint {
        config["controlPlaneEndpoint"] = json!(endpoint.to_string());
    }
    if let Some(version) = kubernetes_version {
        config["kubernetesVersion"] = json!(version);
    }
    if !spec.extra_sans.is_empty() {
        config["apiServer"] = json!({"certSANs": texts(&spec.extra_sans)});
    }
    if !spec.external_etcd {
        config["etcd"] = json!({"local": {
            "dataDir": "/var/lib/etcd",
            "serverCertSANs": texts(&spec.etcd_server_sans),
            "peerCertSANs": texts(&spec.etcd_peer_sans),
        }});
    }
    yaml(&config)
}

/// The settings a tree was made with, as the tree records them: a v1beta4
/// `InitConfiguration` (the bind port and, `with_node`, this node's name and advertise
/// address; no bootstrap token, so no secret) and the `ClusterConfiguration` of
/// `cluster_configuration` (an external etcd stated as `etcd.external`). `init --config`
/// reads it back as the same spec.
pub fn recorded_configuration(
    spec: &ClusterSpec,
    cert_dir: &Path,
    kubernetes_version: Option<&str>,
    with_node: bool,
) -> Result<String> {
    let mut init = json!({
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "InitConfiguration",
        "localAPIEndpoint": {"bindPort": spec.bind_port},
    });
    if with_node {
        init["localAPIEndpoint"]["advertiseAddress"] = json!(spec.advertise_address.to_string());
        init["nodeRegistration"] = json!({"name": spec.node_name.to_string()});
    }
    let mut cluster: Value =
        serde_yaml::from_str(&cluster_configuration(spec, cert_dir, kubernetes_version)?)
            .context("reading back a configuration")?;
    if spec.external_etcd {
        cluster["etcd"] = json!({"external": {"endpoints": []}});
    }
    Ok(format!(
        "# The settings kubepki used for this tree (kubepki reads them by default; flags\n\
         # override them). Written by kubepki init; not a secret.\n{}---\n{}",
        yaml(&init)?,
        yaml(&cluster)?
    ))
}

/// What every control-plane host shares of a recorded configuration (the text of
/// `recorded_configuration`), for a bundle: its `ClusterConfiguration` without
/// `certificatesDir`, each host's own. `None` when it holds no ClusterConfiguration.
pub fn shared_configuration(recorded: &str) -> Result<Option<String>> {
    for document in serde_yaml::Deserializer::from_str(recorded) {
        let mut value = Value::deserialize(document).context("reading a configuration")?;
        if value.get("kind") == Some(&json!("ClusterConfiguration")) {
            if let Some(fields) = value.as_object_mut() {
                fields.remove("certificatesDir");
            }
            return yaml(&value).map(Some);
        }
    }
    Ok(None)
}

/// A shared configuration (of `shared_configuration`) as this host records it: with its
/// cert dir `cert_dir`, and without a node (this host's `init` says which).
pub fn host_configuration(shared: &str, cert_dir: &Path) -> Result<String> {
    let mut value: Value = serde_yaml::from_str(shared).context("reading a configuration")?;
    value["certificatesDir"] = json!(cert_dir);
    Ok(format!(
        "# The cluster's settings, from the bundle this host's shared files came from (kubepki\n\
         # reads them by default; flags override them; this host's init adds its node).\n{}",
        yaml(&value)?
    ))
}

/// kubeadm's default `KubeletConfiguration` for `spec`: authentication by client
/// certificates of the CA in `ca_file` and by webhook, no anonymous access, webhook
/// authorization, rotated client certificates, and the cluster DNS at the tenth service IP.
pub fn kubelet_configuration(spec: &ClusterSpec, ca_file: &Path) -> Result<String> {
    yaml(&kubeadm_kubelet_configuration(spec, ca_file)?)
}

/// `kubelet_configuration` hardened as a security review asks: the read-only port, which
/// answers without authentication, stated off (`readOnlyPort: 0`, v1beta1's default, which
/// kubeadm leaves implicit); its server at TLS 1.2 or later with only forward-secret AEAD
/// cipher suites (`tlsMinVersion`, `tlsCipherSuites`); client certificate rotation on; and
/// with `server_tls_bootstrap` the kubelet asking the cluster for its serving certificate
/// (`serverTLSBootstrap: true`) instead of signing its own.
pub fn hardened_kubelet_configuration(
    spec: &ClusterSpec,
    ca_file: &Path,
    server_tls_bootstrap: bool,
) -> Result<String> {
    let mut config = kubeadm_kubelet_configuration(spec, ca_file)?;
    config["readOnlyPort"] = json!(0);
    config["rotateCertificates"] = json!(true);
    config["tlsMinVersion"] = json!(KUBELET_TLS_MIN_VERSION);
    config["tlsCipherSuites"] = json!(KUBELET_TLS_CIPHER_SUITES);
    if server_tls_bootstrap {
        config["serverTLSBootstrap"] = json!(true);
    }
    yaml(&config)
}

fn kubeadm_kubelet_configuration(spec: &ClusterSpec, ca_file: &Path) -> Result<Value> {
    let dns_ip = spec.service_cidrs.dns_ip().ok_or_else(|| {
        anyhow!(
            "the service CIDR {} is too small for the cluster DNS IP (its tenth address)",
            spec.service_cidrs
        )
    })?;
    Ok(json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": false},
            "webhook": {"cacheTTL": "0s", "enabled": true},
            "x509": {"clientCAFile": ca_file},
        },
        "authorization": {
            "mode": "Webhook",
            "webhook": {"cacheAuthorizedTTL": "0s", "cacheUnauthorizedTTL": "0s"},
        },
        "cgroupDriver": "systemd",
        "clusterDNS": [dns_ip.to_string()],
        "clusterDomain": spec.dns_domain.to_string(),
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "rotateCertificates": true,
        "staticPodPath": STATIC_POD_PATH,
    }))
}

fn texts<T: ToString>(values: &[T]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

fn yaml(value: &Value) -> Result<String> {
    serde_yaml::to_string(value).context("serializing a configuration")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::spec_for;
    use std::io::Write;

    #[test]
    fn the_published_cluster_configuration_reads_back_strictly_as_the_spec() {
        let spec = spec_for(&[
            "--control-plane-endpoint",
            "lb.example.com:7443",
            "--apiserver-cert-extra-sans",
            "api.example.com,10.9.9.9",
            "--service-cidr",
            "10.100.0.0/16",
        ]);
        let yaml = cluster_configuration(&spec, Path::new("/etc/kubernetes/pki"), Some("v1.33.0"))
            .expect("YAML");
        let mut file = tempfile::NamedTempFile::new().expect("a file");
        file.write_all(yaml.as_bytes()).expect("writing");
        let config = crate::config::InitConfig::load(file.path()).expect("strictly valid");
        let cluster = &config.cluster;
        assert_eq!(cluster.control_plane_endpoint, spec.control_plane_endpoint);
        assert_eq!(cluster.api_server_cert_sans, spec.extra_sans);
        assert_eq!(cluster.service_subnet.as_ref(), Some(&spec.service_cidrs));
        assert_eq!(cluster.kubernetes_version.as_deref(), Some("v1.33.0"));
        assert_eq!(
            cluster.certificate_validity_period,
            Some(spec.cert_validity)
        );
        assert_eq!(cluster.encryption_algorithm, Some(spec.algorithm));
    }

    #[test]
    fn the_recorded_configuration_reads_back_as_the_same_spec() {
        for external in [false, true] {
            let mut spec = spec_for(&[
                "--node-name",
                "cp7",
                "--apiserver-advertise-address",
                "10.0.0.11",
                "--apiserver-bind-port",
                "7443",
                "--control-plane-endpoint",
                "lb.example.com:6443",
                "--apiserver-cert-extra-sans",
                "api.example.com,10.9.9.9",
                "--service-dns-domain",
                "corp.local",
            ]);
            spec.external_etcd = external;
            spec.cluster_name = "prod".into();
            let yaml =
                recorded_configuration(&spec, Path::new("/srv/pki"), None, true).expect("YAML");
            assert!(!yaml.contains("token"), "{yaml}");
            let mut file = tempfile::NamedTempFile::new().expect("a file");
            file.write_all(yaml.as_bytes()).expect("writing");
            let config = crate::config::InitConfig::load(file.path()).expect("strictly valid");
            let input = config.merge_flags(&crate::spec::ClusterInput::default());
            let read = config
                .complete(crate::spec::ClusterSpec::resolve(&input, spec.now).expect("a spec"));
            assert_eq!(read.node_name, spec.node_name);
            assert_eq!(read.advertise_address, spec.advertise_address);
            assert_eq!(read.bind_port, 7443);
            assert_eq!(read.control_plane_endpoint, spec.control_plane_endpoint);
            assert_eq!(read.extra_sans, spec.extra_sans);
            assert_eq!(read.dns_domain, spec.dns_domain);
            assert_eq!(read.cluster_name, "prod");
            assert_eq!(read.external_etcd, external);
            assert_eq!(read.algorithm, spec.algorithm);
            assert_eq!(read.ca_validity, spec.ca_validity);
            assert_eq!(config.cert_dir(None), Some("/srv/pki".into()));
        }
    }

    #[test]
    fn the_kubelet_configuration_is_kubeadms_default() {
        let spec = spec_for(&["--service-cidr", "10.100.0.0/16"]);
        let yaml =
            kubelet_configuration(&spec, Path::new("/etc/kubernetes/pki/ca.crt")).expect("YAML");
        let value: Value = serde_yaml::from_str(&yaml).expect("YAML");
        assert_eq!(value["clusterDNS"][0], "10.100.0.10");
        assert_eq!(value["authentication"]["anonymous"]["enabled"], false);
        assert_eq!(
            value["authentication"]["x509"]["clientCAFile"],
            "/etc/kubernetes/pki/ca.crt"
        );
        assert_eq!(value["rotateCertificates"], true);
        let tiny = spec_for(&["--service-cidr", "10.0.0.0/29"]);
        assert!(kubelet_configuration(&tiny, Path::new("/ca.crt")).is_err());
    }

    #[test]
    fn the_hardened_kubelet_configuration_is_kubeadms_plus_what_it_leaves_implicit() {
        let spec = spec_for(&[]);
        let ca = Path::new("/etc/kubernetes/pki/ca.crt");
        let parse = |yaml: String| -> Value { serde_yaml::from_str(&yaml).expect("YAML") };
        let kubeadm = parse(kubelet_configuration(&spec, ca).expect("YAML"));
        for bootstrap in [false, true] {
            let hardened =
                parse(hardened_kubelet_configuration(&spec, ca, bootstrap).expect("YAML"));
            let mut added: Vec<&str> = hardened
                .as_object()
                .expect("a mapping")
                .iter()
                .filter(|(key, value)| kubeadm.get(key.as_str()) != Some(value))
                .map(|(key, _)| key.as_str())
                .collect();
            added.sort_unstable();
            let expected: &[&str] = match bootstrap {
                false => &["readOnlyPort", "tlsCipherSuites", "tlsMinVersion"],
                true => &[
                    "readOnlyPort",
                    "serverTLSBootstrap",
                    "tlsCipherSuites",
                    "tlsMinVersion",
                ],
            };
            assert_eq!(added, expected);
            assert_eq!(hardened["readOnlyPort"], 0);
            assert_eq!(hardened["rotateCertificates"], true);
            assert_eq!(hardened["tlsMinVersion"], "VersionTLS12");
            let suites = hardened["tlsCipherSuites"].as_array().expect("suites");
            assert!(suites.iter().all(|s| {
                let s = s.as_str().unwrap_or_default();
                s.starts_with("TLS_ECDHE_") && (s.contains("_GCM_") || s.contains("CHACHA20"))
            }));
            assert_eq!(hardened["authorization"]["mode"], "Webhook");
            assert_eq!(hardened["authentication"]["webhook"]["enabled"], true);
            assert_eq!(hardened.get("serverTLSBootstrap").is_some(), bootstrap);
        }
    }
}
