//! What `kubeadm join` reads during discovery (#17, item 3), through the real API server's
//! RBAC: `init`'s `kubeadm-config` and `kubelet-config` ConfigMaps, applied with the rest of
//! `<kubeconfig-dir>/bootstrap/`, can be read by a bootstrap-token identity (a joined
//! worker's `bootstrap-kubelet.conf`, in `system:bootstrappers:kubeadm:default-node-token`),
//! and `kubelet-config` by a node identity (its `kubelet.conf`); the same token may not read
//! another ConfigMap of kube-system. What join would parse is well-formed: the
//! `ClusterConfiguration` (v1beta4; the real kubeadm join of `kubeadm.rs` reads it too)
//! passes kubepki's strict `config validate` with the tree's values, and the
//! `KubeletConfiguration` is loaded strictly and validated by the real kubelet.

use super::kubelet::load_with_the_kubelet;
use super::workers::Node;
use crate::support::controlplane::ControlPlane;
use crate::support::{assert_success, kubepki};
use std::path::Path;

/// The proof, with the node `node` joined this round.
pub fn join_reads_the_published_configuration(plane: &ControlPlane, node: &Node, round: u32) {
    let cluster = config_map(
        plane,
        &node.bootstrap,
        "kubeadm-config",
        "ClusterConfiguration",
    );
    let kubelet = config_map(plane, &node.bootstrap, "kubelet-config", "kubelet");
    let as_node = config_map(plane, &node.kubeconfig, "kubelet-config", "kubelet");
    assert_eq!(as_node, kubelet, "kubelet-config as the node read it");
    let other = plane.kubectl(
        &node.bootstrap,
        &[
            "-n",
            "kube-system",
            "get",
            "configmap",
            "extension-apiserver-authentication",
        ],
    );
    let said = String::from_utf8_lossy(&other.stderr);
    assert!(
        !other.status.success() && said.contains("forbidden"),
        "a bootstrap token read another ConfigMap of kube-system: {said}"
    );
    let dir = plane.scratch(&format!("published-{round}"));
    cluster_configuration_is_the_trees(plane, &dir, &cluster);
    let file = dir.join("kubelet-config.yaml");
    std::fs::write(&file, &kubelet).expect("kubelet-config.yaml");
    let cert_dir = dir.join("kubelet-pki");
    std::fs::create_dir_all(&cert_dir).expect("a kubelet directory");
    let (loaded, _) = load_with_the_kubelet(plane, &file, &cert_dir, &dir);
    assert!(
        loaded["rotateCertificates"].as_bool() == Some(true)
            && loaded["authentication"]["anonymous"]["enabled"].as_bool() == Some(false),
        "the published KubeletConfiguration as the kubelet loaded it:\n{loaded:?}"
    );
}

/// `data.<key>` of the ConfigMap `name` in kube-system, read as `kubeconfig`.
fn config_map(plane: &ControlPlane, kubeconfig: &Path, name: &str, key: &str) -> String {
    let jsonpath = format!("jsonpath={{.data.{key}}}");
    let text = plane.kubectl_ok(
        kubeconfig,
        &[
            "-n",
            "kube-system",
            "get",
            "configmap",
            name,
            "-o",
            &jsonpath,
        ],
    );
    assert!(!text.trim().is_empty(), "{name}: no {key}");
    text
}

/// The ClusterConfiguration passes kubepki's strict reader and says what the tree is.
fn cluster_configuration_is_the_trees(plane: &ControlPlane, dir: &Path, text: &str) {
    let file = dir.join("cluster-configuration.yaml");
    std::fs::write(&file, text).expect("cluster-configuration.yaml");
    let args = [
        "config",
        "validate",
        "--config",
        &file.display().to_string(),
    ];
    let out = kubepki(&args);
    assert_success(
        &out,
        "kubepki config validate of the published ClusterConfiguration",
    );
    let config: serde_yaml::Value = serde_yaml::from_str(text).expect("YAML");
    let pki = plane.tree.root().join("pki").display().to_string();
    let fields = (
        config["apiVersion"].as_str(),
        config["kind"].as_str(),
        config["clusterName"].as_str(),
        config["certificatesDir"].as_str(),
        config["networking"]["serviceSubnet"].as_str(),
        config["networking"]["dnsDomain"].as_str(),
    );
    assert_eq!(
        fields,
        (
            Some("kubeadm.k8s.io/v1beta4"),
            Some("ClusterConfiguration"),
            Some("kubernetes"),
            Some(pki.as_str()),
            Some("10.96.0.0/12"),
            Some("cluster.local"),
        ),
        "the published ClusterConfiguration"
    );
}
