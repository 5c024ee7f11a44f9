//! The cluster objects kubeadm creates so that workers can join, as YAML for
//! `kubectl apply -f`: the bootstrap RBAC, the signed `cluster-info` ConfigMap and the
//! kube-proxy objects, with kubeadm's names. Pure: builds text from admin.conf and the tokens;
//! the caller writes it.

use crate::cluster::bootstrap::{DEFAULT_GROUP, TokenRecord};
use crate::cluster::jws;
use crate::cluster::kubeconfig::Kubeconfig;
use anyhow::{Context, Result};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// File of the RBAC objects.
pub const RBAC_FILE: &str = "bootstrap-rbac.yaml";
/// File of the `cluster-info` ConfigMap.
pub const CLUSTER_INFO_FILE: &str = "cluster-info.yaml";
/// File of the kube-proxy objects.
pub const KUBE_PROXY_FILE: &str = "kube-proxy.yaml";
/// File of the `kubeadm-config` and `kubelet-config` ConfigMaps and their RBAC.
pub const UPLOAD_CONFIG_FILE: &str = "kubeadm-config.yaml";
/// Where kube-proxy's pod finds its ServiceAccount credentials.
const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Every manifest file (name, YAML) for the cluster of `admin` (admin.conf) and `tokens`,
/// signing `cluster-info` with each token that may sign at `now`.
pub fn cluster_manifests(
    admin: &Kubeconfig,
    tokens: &[TokenRecord],
    now: OffsetDateTime,
) -> Result<Vec<(&'static str, String)>> {
    let server = admin.server()?;
    Ok(vec![
        (RBAC_FILE, documents(&rbac_objects())?),
        (
            CLUSTER_INFO_FILE,
            documents(&[cluster_info(&admin.cluster_info_yaml()?, tokens, now)])?,
        ),
        (KUBE_PROXY_FILE, documents(&kube_proxy_objects(server))?),
    ])
}

/// The file of what kubeadm's `upload-config` and `kubelet` phases create, for `kubeadm join`
/// to read during discovery: the `kubeadm-config` ConfigMap (`ClusterConfiguration`, the
/// YAML `cluster_configuration`) and the `kubelet-config` ConfigMap (`kubelet`, the YAML
/// `kubelet_configuration`) in kube-system, each with the Role and RoleBinding that let
/// bootstrap tokens and nodes read it.
pub fn upload_config(
    cluster_configuration: &str,
    kubelet_configuration: &str,
) -> Result<(&'static str, String)> {
    let readers = || {
        vec![
            subject("Group", DEFAULT_GROUP),
            subject("Group", "system:nodes"),
        ]
    };
    let mut objects = Vec::new();
    for (config_map, key, text, role) in [
        (
            "kubeadm-config",
            "ClusterConfiguration",
            cluster_configuration,
            "kubeadm:nodes-kubeadm-config",
        ),
        (
            "kubelet-config",
            "kubelet",
            kubelet_configuration,
            "kubeadm:kubelet-config",
        ),
    ] {
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": config_map, "namespace": "kube-system"},
            "data": {key: text},
        }));
        objects.push(get_role(
            role,
            Some("kube-system"),
            "configmaps",
            Some(config_map),
        ));
        objects.push(binding(
            "RoleBinding",
            role,
            Some("kube-system"),
            ("Role", role),
            readers(),
        ));
    }
    Ok((UPLOAD_CONFIG_FILE, documents(&objects)?))
}

/// The YAML documents of `objects`, separated by `---`.
pub(super) fn documents(objects: &[Value]) -> Result<String> {
    let texts = objects
        .iter()
        .map(serde_yaml::to_string)
        .collect::<Result<Vec<_>, _>>()
        .context("serializing a manifest")?;
    Ok(texts.join("---\n"))
}

/// An RBAC subject: a `User` or `Group` called `name`.
pub(super) fn subject(kind: &str, name: &str) -> Value {
    json!({"apiGroup": RBAC_GROUP, "kind": kind, "name": name})
}

/// A `RoleBinding` (in `namespace`) or `ClusterRoleBinding` of `role` (kind, name) to `subject`.
pub(super) fn binding(
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    role: (&str, &str),
    subjects: Vec<Value>,
) -> Value {
    let mut metadata = json!({"name": name});
    if let Some(namespace) = namespace {
        metadata["namespace"] = json!(namespace);
    }
    json!({
        "apiVersion": format!("{RBAC_GROUP}/v1"),
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": role.0, "name": role.1},
        "subjects": subjects,
    })
}

fn cluster_binding(name: &str, cluster_role: &str, subject: Value) -> Value {
    binding(
        "ClusterRoleBinding",
        name,
        None,
        ("ClusterRole", cluster_role),
        vec![subject],
    )
}

/// A Role (`namespace`) or ClusterRole (`None`) granting `get` on `resource`, optionally one name.
pub(super) fn get_role(
    name: &str,
    namespace: Option<&str>,
    resource: &str,
    only: Option<&str>,
) -> Value {
    let mut rule = json!({"apiGroups": [""], "resources": [resource], "verbs": ["get"]});
    if let Some(only) = only {
        rule["resourceNames"] = json!([only]);
    }
    let (kind, metadata) = match namespace {
        Some(namespace) => ("Role", json!({"name": name, "namespace": namespace})),
        None => ("ClusterRole", json!({"name": name})),
    };
    json!({
        "apiVersion": format!("{RBAC_GROUP}/v1"),
        "kind": kind,
        "metadata": metadata,
        "rules": [rule],
    })
}

/// kubeadm's bootstrap-token phase RBAC (with, as kubeadm v1.37 has it, the API server's
/// kubelet client bound to `system:kubelet-api-admin` by name: its certificate carries no
/// group), and the `kubeadm:cluster-admins` binding.
fn rbac_objects() -> Vec<Value> {
    let node_token = || subject("Group", DEFAULT_GROUP);
    let csr_role =
        |what: &str| format!("system:certificates.k8s.io:certificatesigningrequests:{what}");
    let cluster_info = "kubeadm:bootstrap-signer-clusterinfo";
    vec![
        cluster_binding(
            "kubeadm:kubelet-bootstrap",
            "system:node-bootstrapper",
            node_token(),
        ),
        get_role("kubeadm:get-nodes", None, "nodes", None),
        cluster_binding("kubeadm:get-nodes", "kubeadm:get-nodes", node_token()),
        cluster_binding(
            "kubeadm:node-autoapprove-bootstrap",
            &csr_role("nodeclient"),
            node_token(),
        ),
        cluster_binding(
            "kubeadm:node-autoapprove-certificate-rotation",
            &csr_role("selfnodeclient"),
            subject("Group", "system:nodes"),
        ),
        cluster_binding(
            "kubeadm:apiserver-kubelet-client",
            "system:kubelet-api-admin",
            subject("User", "kube-apiserver-kubelet-client"),
        ),
        get_role(
            cluster_info,
            Some("kube-public"),
            "configmaps",
            Some("cluster-info"),
        ),
        binding(
            "RoleBinding",
            cluster_info,
            Some("kube-public"),
            ("Role", cluster_info),
            vec![subject("User", "system:anonymous")],
        ),
        cluster_binding(
            "kubeadm:cluster-admins",
            "cluster-admin",
            subject("Group", "kubeadm:cluster-admins"),
        ),
    ]
}

/// The `cluster-info` ConfigMap: the cluster-only kubeconfig and one detached JWS per token
/// that may sign at `now`.
fn cluster_info(kubeconfig: &str, tokens: &[TokenRecord], now: OffsetDateTime) -> Value {
    let mut data = json!({"kubeconfig": kubeconfig});
    for record in tokens.iter().filter(|t| t.signs_at(now)) {
        let token = &record.token;
        data[format!("jws-kubeconfig-{}", token.id())] =
            json!(jws::sign(kubeconfig, token.id(), token.secret().as_bytes()));
    }
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cluster-info", "namespace": "kube-public"},
        "data": data,
    })
}

/// kube-proxy's ServiceAccount, its `system:node-proxier` binding, its ConfigMap, and the
/// Role/RoleBinding that let joining nodes read that ConfigMap.
fn kube_proxy_objects(server: &str) -> Vec<Value> {
    let service_account =
        json!({"kind": "ServiceAccount", "name": "kube-proxy", "namespace": "kube-system"});
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
        }),
        cluster_binding(
            "kubeadm:node-proxier",
            "system:node-proxier",
            service_account,
        ),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": {"app": "kube-proxy"}},
            "data": {
                "config.conf": kube_proxy_config(server),
                "kubeconfig.conf": kube_proxy_kubeconfig(server),
            },
        }),
        get_role(
            "kube-proxy",
            Some("kube-system"),
            "configmaps",
            Some("kube-proxy"),
        ),
        binding(
            "RoleBinding",
            "kube-proxy",
            Some("kube-system"),
            ("Role", "kube-proxy"),
            vec![subject("Group", DEFAULT_GROUP)],
        ),
    ]
}

/// kube-proxy's kubeconfig, kubeadm's hand-written template: the pod's ServiceAccount token
/// and CA files, not a certificate.
fn kube_proxy_kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority: {SA_DIR}/ca.crt\n    server: {server}\n  name: default\ncontexts:\n- context:\n    cluster: default\n    namespace: default\n    user: default\n  name: default\ncurrent-context: default\nusers:\n- name: default\n  user:\n    tokenFile: {SA_DIR}/token"
    )
}

/// A minimal KubeProxyConfiguration: kube-proxy defaults the rest, as it does for kubeadm's.
fn kube_proxy_config(server: &str) -> String {
    let bind = if server.contains('[') {
        "'::'"
    } else {
        "0.0.0.0"
    };
    format!(
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nbindAddress: {bind}\nclientConnection:\n  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::bootstrap::{BootstrapToken, Usage};
    use crate::cluster::kubeconfig::ClientCredentials;
    use crate::duration::Duration;

    fn admin() -> Kubeconfig {
        let creds = ClientCredentials {
            ca_pem: crate::testgen::ca_pem().into_bytes(),
            server: "https://10.0.0.1:6443".into(),
            cert_pem: b"CERT\n".to_vec(),
            key_pem: b"KEY\n".to_vec(),
        };
        Kubeconfig::with_client_cert("kubernetes", &creds.server, "kubernetes-admin", &creds)
    }

    fn token(text: &str, usages: Vec<Usage>, now: OffsetDateTime) -> TokenRecord {
        let token: BootstrapToken = text.parse().expect("a token");
        TokenRecord::new(token, Duration::from_hours(1), now, usages, vec![], None)
            .expect("a record")
    }

    /// The documents of one manifest file.
    fn documents_of(yaml: &str) -> Vec<Value> {
        yaml.split("---\n")
            .map(|doc| serde_yaml::from_str(doc).expect("YAML"))
            .collect()
    }

    #[test]
    fn cluster_info_is_signed_by_each_token_that_may_sign_now() {
        let now = OffsetDateTime::now_utc();
        let tokens = [
            token("abcdef.0123456789abcdef", vec![Usage::Signing], now),
            token("bcdefg.0123456789abcdef", vec![Usage::Authentication], now),
            token(
                "cdefgh.0123456789abcdef",
                vec![Usage::Signing],
                now - time::Duration::hours(2),
            ),
        ];
        let files = cluster_manifests(&admin(), &tokens, now).expect("manifests");
        let names: Vec<&str> = files.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, [RBAC_FILE, CLUSTER_INFO_FILE, KUBE_PROXY_FILE]);
        let info = &documents_of(&files[1].1)[0];
        let kubeconfig = info["data"]["kubeconfig"].as_str().expect("a kubeconfig");
        let signature = info["data"]["jws-kubeconfig-abcdef"]
            .as_str()
            .expect("signed");
        assert!(jws::verify(
            kubeconfig,
            "abcdef",
            b"0123456789abcdef",
            signature
        ));
        assert!(
            info["data"].get("jws-kubeconfig-bcdefg").is_none(),
            "no signing usage"
        );
        assert!(
            info["data"].get("jws-kubeconfig-cdefgh").is_none(),
            "expired"
        );
        assert!(
            kubeconfig.contains("server: https://10.0.0.1:6443"),
            "{kubeconfig}"
        );
        assert!(!kubeconfig.contains("client-key-data"), "{kubeconfig}");
    }

    #[test]
    fn rbac_and_kube_proxy_objects_have_kubeadms_names() {
        let files = cluster_manifests(&admin(), &[], OffsetDateTime::now_utc()).expect("manifests");
        let names = |yaml: &str| -> Vec<String> {
            documents_of(yaml)
                .iter()
                .map(|d| {
                    format!(
                        "{}/{}",
                        d["kind"].as_str().unwrap_or("?"),
                        d["metadata"]["name"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        };
        assert_eq!(
            names(&files[0].1),
            [
                "ClusterRoleBinding/kubeadm:kubelet-bootstrap",
                "ClusterRole/kubeadm:get-nodes",
                "ClusterRoleBinding/kubeadm:get-nodes",
                "ClusterRoleBinding/kubeadm:node-autoapprove-bootstrap",
                "ClusterRoleBinding/kubeadm:node-autoapprove-certificate-rotation",
                "ClusterRoleBinding/kubeadm:apiserver-kubelet-client",
                "Role/kubeadm:bootstrap-signer-clusterinfo",
                "RoleBinding/kubeadm:bootstrap-signer-clusterinfo",
                "ClusterRoleBinding/kubeadm:cluster-admins",
            ]
        );
        assert_eq!(
            names(&files[2].1),
            [
                "ServiceAccount/kube-proxy",
                "ClusterRoleBinding/kubeadm:node-proxier",
                "ConfigMap/kube-proxy",
                "Role/kube-proxy",
                "RoleBinding/kube-proxy",
            ]
        );
        let proxy = &documents_of(&files[2].1)[2];
        let kubeconfig = proxy["data"]["kubeconfig.conf"]
            .as_str()
            .expect("a kubeconfig");
        assert!(kubeconfig.contains("server: https://10.0.0.1:6443"));
        assert!(
            kubeconfig.contains("tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token")
        );
    }
}
