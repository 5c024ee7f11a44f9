//! End to end with the real `kubectl`: every kubeconfig of a freshly generated tree, used
//! untouched, reaches a TLS endpoint that serves the tree's `apiserver.crt` and verifies client
//! certificates against its `ca.crt`, and is seen as the identity kube-apiserver would derive.
//! That proves kubectl parsed the kubeconfig, trusted `apiserver.crt` for 127.0.0.1 through the
//! embedded CA, and presented a client certificate the server accepted. Copies of `admin.conf`
//! rewired to a client certificate signed by another CA of the tree, or to trust another CA, must
//! be refused during the TLS handshake, by the server and by kubectl respectively.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_yaml::Value;

use crate::support::endpoint::{Endpoint, Identity};
use crate::support::{TempTree, assert_success, check, kubepki, require_tool};

#[test]
fn kubeconfigs_authenticate_with_rsa_2048() {
    assert_kubeconfigs_authenticate("RSA-2048");
}

#[test]
fn renewed_kubeconfigs_and_apiserver_cert_still_authenticate() {
    assert_identities(&Cluster::new("ECDSA-P256", true), "ECDSA-P256, renewed");
}

#[test]
fn kubeconfig_user_authenticates_with_its_groups() {
    let cluster = Cluster::new("ECDSA-P256", false);
    let conf = cluster.tree.root().join("jane.conf");
    let mut args: Vec<String> = [
        "kubeconfig",
        "user",
        "--client-name",
        "jane",
        "--org",
        "dev",
        "--org",
        "ops",
        "--out",
    ]
    .map(String::from)
    .to_vec();
    args.push(conf.display().to_string());
    args.extend(cluster.tree.dir_args());
    assert_success(&kubepki(&args), "kubepki kubeconfig user");
    let out = cluster.kubectl_identity(&conf);
    assert_success(&out, "kubectl with the user kubeconfig");
    let reported: Identity = serde_json::from_slice(&out.stdout).expect("an identity");
    assert_eq!(
        reported,
        Identity {
            user: "jane".into(),
            groups: vec!["dev".into(), "ops".into()]
        }
    );
}

#[test]
fn issue_17_kubeconfig_user_takes_any_number_of_groups() {
    let cluster = Cluster::new("RSA-2048", false);
    let conf = cluster.tree.root().join("kim.conf");
    let groups = ["dev", "ops", "sre", "on-call"];
    let mut args: Vec<String> = ["kubeconfig", "user", "--client-name", "kim", "--out"]
        .map(String::from)
        .to_vec();
    args.push(conf.display().to_string());
    for group in groups {
        args.extend(["--org".to_string(), group.to_string()]);
    }
    args.extend(cluster.tree.dir_args());
    assert_success(&kubepki(&args), "kubepki kubeconfig user with four groups");
    let out = cluster.kubectl_identity(&conf);
    assert_success(&out, "kubectl with the user kubeconfig");
    let reported: Identity = serde_json::from_slice(&out.stdout).expect("an identity");
    assert_eq!(
        reported,
        Identity {
            user: "kim".into(),
            groups: groups.map(String::from).to_vec()
        }
    );
}

#[test]
fn kubeconfigs_authenticate_with_rsa_3072() {
    assert_kubeconfigs_authenticate("RSA-3072");
}

#[test]
fn kubeconfigs_authenticate_with_rsa_4096() {
    assert_kubeconfigs_authenticate("RSA-4096");
}

#[test]
fn kubeconfigs_authenticate_with_ecdsa_p256() {
    assert_kubeconfigs_authenticate("ECDSA-P256");
}

#[test]
fn kubeconfigs_authenticate_with_ecdsa_p384() {
    assert_kubeconfigs_authenticate("ECDSA-P384");
}

#[test]
fn client_certificate_of_another_ca_is_refused() {
    let cluster = Cluster::new("RSA-2048", false);
    let conf = cluster.edited_admin_conf("foreign-client.conf", |config| {
        replace_data(
            config,
            "users",
            "client-certificate-data",
            &cluster.pki_file("front-proxy-client.crt"),
        );
        replace_data(
            config,
            "users",
            "client-key-data",
            &cluster.pki_file("front-proxy-client.key"),
        );
    });
    let out = cluster.kubectl_identity(&conf);
    assert_refused(&out, "remote error: tls: unknown certificate authority");
    assert_no_request_got_through(&cluster.endpoint);
    let errors = cluster.endpoint.tls_errors();
    assert!(
        !errors.is_empty() && errors.iter().all(|e| e.contains("UnknownIssuer")),
        "the server should have rejected the client certificate as of an unknown issuer: {errors:?}"
    );
}

#[test]
fn server_certificate_not_of_the_embedded_ca_is_refused() {
    let cluster = Cluster::new("ECDSA-P256", false);
    let conf = cluster.edited_admin_conf("etcd-ca.conf", |config| {
        replace_data(
            config,
            "clusters",
            "certificate-authority-data",
            &cluster.pki_file("etcd/ca.crt"),
        );
    });
    let out = cluster.kubectl_identity(&conf);
    assert_refused(&out, "x509: certificate signed by unknown authority");
    assert_no_request_got_through(&cluster.endpoint);
    assert!(
        !cluster.endpoint.tls_errors().is_empty(),
        "kubectl never tried a handshake"
    );
}

/// Generates a tree with `algorithm`, then checks every kubeconfig's identity through kubectl.
fn assert_kubeconfigs_authenticate(algorithm: &str) {
    assert_identities(&Cluster::new(algorithm, false), algorithm);
}

/// Checks every kubeconfig of `cluster`'s tree through kubectl.
pub(crate) fn assert_identities(cluster: &Cluster, algorithm: &str) {
    let mut expected_seen = Vec::new();
    for (conf, user, groups) in check::KUBECONFIG_IDENTITIES {
        let expected = Identity {
            user: user.to_string(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        let out = cluster.kubectl_identity(&cluster.tree.root().join(conf));
        assert_success(
            &out,
            &format!("kubectl --kubeconfig {conf} get --raw /identity ({algorithm})"),
        );
        let reported: Identity = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{conf}: kubectl printed no identity ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        assert_eq!(reported, expected, "{conf} ({algorithm})");
        expected_seen.push(expected);
    }
    assert_eq!(
        cluster.endpoint.identities(),
        expected_seen,
        "identities the server answered ({algorithm})"
    );
    assert_eq!(
        cluster.endpoint.tls_errors(),
        Vec::<String>::new(),
        "failed handshakes ({algorithm})"
    );
}

/// Asserts kubectl failed, and that it was the TLS handshake that failed with `reason`.
fn assert_refused(out: &Output, reason: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "kubectl should have failed, but printed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(reason),
        "kubectl should have failed with `{reason}`, but said:\n{stderr}"
    );
}

/// Asserts the server answered no HTTP request at all, so no identity either.
fn assert_no_request_got_through(endpoint: &Endpoint) {
    assert_eq!(
        endpoint.requests(),
        Vec::<String>::new(),
        "requests that got through"
    );
    assert_eq!(endpoint.identities(), Vec::new(), "identities answered");
}

/// Replaces the base64 `key` of the only entry of `section` ("users" or "clusters") with `pem`.
fn replace_data(config: &mut Value, section: &str, key: &str, pem: &[u8]) {
    let entries = config[section]
        .as_sequence_mut()
        .unwrap_or_else(|| panic!("admin.conf has no {section}"));
    assert_eq!(
        entries.len(),
        1,
        "admin.conf should have exactly one entry in {section}"
    );
    let inner = section.trim_end_matches('s');
    let value = entries[0][inner]
        .get_mut(key)
        .unwrap_or_else(|| panic!("admin.conf has no {section}[0].{inner}.{key}"));
    *value = Value::String(BASE64.encode(pem));
}

/// A generated tree and an endpoint listening on the port its kubeconfigs point at.
pub(crate) struct Cluster {
    pub(crate) tree: TempTree,
    endpoint: Endpoint,
}

impl Cluster {
    /// The endpoint of `tree` (whose kubeconfigs point at `listener`'s port), started.
    pub(crate) fn serving(tree: TempTree, listener: TcpListener) -> Cluster {
        let endpoint = Endpoint::start(listener, &tree.pki());
        Cluster { tree, endpoint }
    }

    /// Binds a free port, generates the tree for it with `algorithm` (then renews every
    /// certificate when `renew`), and starts the endpoint.
    fn new(algorithm: &str, renew: bool) -> Cluster {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
        let port = listener
            .local_addr()
            .expect("listener address")
            .port()
            .to_string();
        let tree = TempTree::new();
        tree.init(algorithm, &["--apiserver-bind-port", &port]);
        if renew {
            tree.renew_all();
        }
        Cluster::serving(tree, listener)
    }

    /// The contents of a file of the cert dir.
    fn pki_file(&self, rel: &str) -> Vec<u8> {
        self.tree.read(&format!("pki/{rel}"))
    }

    /// Writes a copy of admin.conf changed by `edit` into the tree as `name`; returns its path.
    fn edited_admin_conf(&self, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
        let mut config: Value =
            serde_yaml::from_slice(&self.tree.read("admin.conf")).expect("parsing admin.conf");
        edit(&mut config);
        let path = self.tree.root().join(name);
        std::fs::write(
            &path,
            serde_yaml::to_string(&config).expect("serializing the kubeconfig"),
        )
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// `kubectl get --raw /identity` with `kubeconfig`, its HTTP cache kept inside the tree.
    fn kubectl_identity(&self, kubeconfig: &std::path::Path) -> Output {
        let kubectl = require_tool(
            "kubectl",
            "apt-get update && apt-get install -y kubernetes-client",
        );
        Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(self.tree.root().join("kube-cache"))
            .args(["--request-timeout=30s", "get", "--raw", "/identity"])
            .output()
            .expect("running kubectl")
    }
}
