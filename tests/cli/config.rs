//! `--config`: kubeadm v1beta3 and v1beta4 files drive `init` exactly as the equivalent flags
//! do (compared field by field with openssl and by parsing the kubeconfigs), flags override
//! the file, broken files fail with one located line and write nothing, and
//! `config print init-defaults` reads back as no config at all.

use crate::support::{TempTree, assert_success, check, kubepki, openssl};
use base64::Engine;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every certificate of a full tree, relative to the cert dir.
const CERTS: &[&str] = &[
    "ca.crt",
    "apiserver.crt",
    "apiserver-kubelet-client.crt",
    "front-proxy-ca.crt",
    "front-proxy-client.crt",
    "etcd/ca.crt",
    "etcd/server.crt",
    "etcd/peer.crt",
    "etcd/healthcheck-client.crt",
    "apiserver-etcd-client.crt",
];

/// A config file in its own directory, outside any tree.
struct ConfigFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn config_file(text: &str) -> ConfigFile {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kubeadm.yaml");
    std::fs::write(&path, text).expect("writing the config");
    ConfigFile { _dir: dir, path }
}

fn init_with(tree: &TempTree, args: &[&str]) -> std::process::Output {
    let mut all = vec!["init".to_string()];
    all.extend(tree.dir_args());
    all.extend(args.iter().map(|s| s.to_string()));
    kubepki(&all)
}

/// Subject, issuer, SANs, usages, CA flag and key type of a certificate, as openssl prints them.
fn cert_fields(path: &Path) -> String {
    let out = openssl(&[
        "x509",
        "-in",
        &path.display().to_string(),
        "-noout",
        "-subject",
        "-issuer",
        "-ext",
        "subjectAltName,extendedKeyUsage,keyUsage,basicConstraints",
    ]);
    assert_success(&out, "openssl x509");
    let text = openssl(&[
        "x509",
        "-in",
        &path.display().to_string(),
        "-noout",
        "-text",
    ]);
    let key_lines: Vec<String> = String::from_utf8_lossy(&text.stdout)
        .lines()
        .filter(|l| l.contains("Public-Key:") || l.contains("ASN1 OID"))
        .map(|l| l.trim().to_string())
        .collect();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        key_lines.join(" ")
    )
}

/// Cluster, context and user names, server and client-cert subject of a kubeconfig.
fn kubeconfig_fields(path: &Path) -> String {
    let yaml: serde_yaml::Value =
        serde_yaml::from_slice(&std::fs::read(path).expect("kubeconfig")).expect("YAML");
    let cert_b64 = yaml["users"][0]["user"]["client-certificate-data"]
        .as_str()
        .expect("client cert");
    let pem = base64::engine::general_purpose::STANDARD
        .decode(cert_b64)
        .expect("base64");
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = dir.path().join("client.crt");
    std::fs::write(&cert, pem).expect("write");
    format!(
        "cluster={:?} server={:?} context={:?} user={:?}\n{}",
        yaml["clusters"][0]["name"],
        yaml["clusters"][0]["cluster"]["server"],
        yaml["current-context"],
        yaml["users"][0]["name"],
        cert_fields(&cert)
    )
}

/// Every comparable field of a tree, by file.
fn describe(tree: &TempTree) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    for cert in CERTS {
        fields.insert(cert.to_string(), cert_fields(&tree.pki().join(cert)));
    }
    for conf in check::KUBECONFIGS {
        fields.insert(conf.to_string(), kubeconfig_fields(&tree.root().join(conf)));
    }
    fields
}

fn assert_same_trees(with_config: &TempTree, with_flags: &TempTree) {
    let (a, b) = (describe(with_config), describe(with_flags));
    for (file, fields) in &a {
        assert_eq!(
            fields, &b[file],
            "{file} differs between --config and flags"
        );
    }
}

/// The flags that say what `V1BETA4_EQUIVALENT` and `V1BETA3_EQUIVALENT` say.
const EQUIVALENT_FLAGS: &[&str] = &[
    "--node-name",
    "cp1",
    "--apiserver-advertise-address",
    "127.0.0.1",
    "--apiserver-bind-port",
    "7443",
    "--control-plane-endpoint",
    "lb.example.com",
    "--apiserver-cert-extra-sans",
    "10.0.0.5,api.example.com,*.apps.example.com",
    "--service-cidr",
    "10.100.0.0/16,fd00:10:96::/112",
    "--service-dns-domain",
    "corp.local",
];

const V1BETA4_EQUIVALENT: &str = "\
# kubeadm v1beta4, several documents, comments and an anchor
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 127.0.0.1   # the local endpoint
  bindPort: 7443
nodeRegistration:
  name: &node cp1
  criSocket: unix:///var/run/containerd/containerd.sock
  kubeletExtraArgs:
  - name: hostname-override
    value: *node
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.33.0
controlPlaneEndpoint: lb.example.com
networking:
  serviceSubnet: 10.100.0.0/16,fd00:10:96::/112
  dnsDomain: corp.local
  podSubnet: 10.244.0.0/16
apiServer:
  certSANs: [10.0.0.5, api.example.com, '*.apps.example.com']
  extraArgs:
  - {name: authorization-mode, value: 'Node,RBAC'}
controllerManager: {}
scheduler:
  extraArgs: []
dns: {disabled: false}
proxy: {disabled: true}
etcd:
  local:
    dataDir: /var/lib/etcd
encryptionAlgorithm: ECDSA-P256
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
";

const V1BETA3_EQUIVALENT: &str = "\
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
controlPlaneEndpoint: lb.example.com
networking: &net
  serviceSubnet: 10.100.0.0/16,fd00:10:96::/112
  dnsDomain: corp.local
apiServer:
  timeoutForControlPlane: 4m0s
  certSANs:
  - 10.0.0.5
  - api.example.com
  - '*.apps.example.com'
  extraArgs:
    authorization-mode: Node,RBAC
featureGates:
  PublicKeysECDSA: true   # kubeadm <= 1.30's way to ask for ECDSA P-256
---
# the InitConfiguration second, this time
apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
localAPIEndpoint: {advertiseAddress: 127.0.0.1, bindPort: 7443}
nodeRegistration:
  name: cp1
  kubeletExtraArgs: {cgroup-driver: systemd}
  taints: null
";

fn same_tree_as_flags(config: &str) {
    let file = config_file(config);
    let (with_config, with_flags) = (TempTree::new(), TempTree::new());
    let out = init_with(
        &with_config,
        &["--config", &file.path.display().to_string()],
    );
    assert_success(&out, "init --config");
    let mut flags = EQUIVALENT_FLAGS.to_vec();
    flags.extend(["--encryption-algorithm", "ECDSA-P256"]);
    assert_success(&init_with(&with_flags, &flags), "init with flags");
    assert_same_trees(&with_config, &with_flags);
}

#[test]
fn v1beta4_file_gives_the_tree_of_the_equivalent_flags() {
    same_tree_as_flags(V1BETA4_EQUIVALENT);
}

#[test]
fn v1beta3_file_gives_the_tree_of_the_equivalent_flags() {
    same_tree_as_flags(V1BETA3_EQUIVALENT);
}

#[test]
fn skipped_documents_are_noted_on_stderr() {
    let file = config_file(V1BETA4_EQUIVALENT);
    let tree = TempTree::new();
    let out = init_with(
        &tree,
        &["--config", &file.path.display().to_string(), "--dry-run"],
    );
    assert_success(&out, "init --config --dry-run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[config] skipping KubeProxyConfiguration"),
        "{stderr}"
    );
}

#[test]
fn cluster_name_and_etcd_sans_come_from_the_file() {
    let file = config_file(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: prod\n\
         etcd:\n  local:\n    serverCertSANs: [etcd.example.com, 10.0.0.7]\n    peerCertSANs: [peer.example.com]\n",
    );
    let tree = TempTree::new();
    tree.init(
        "ECDSA-P256",
        &["--config", &file.path.display().to_string()],
    );
    let admin = kubeconfig_fields(&tree.root().join("admin.conf"));
    assert!(admin.contains("cluster=String(\"prod\")"), "{admin}");
    assert!(admin.contains("kubernetes-admin@prod"), "{admin}");
    let server = cert_fields(&tree.pki().join("etcd/server.crt"));
    assert!(
        server.contains("DNS:etcd.example.com") && server.contains("IP Address:10.0.0.7"),
        "{server}"
    );
    assert!(!server.contains("peer.example.com"), "{server}");
    let peer = cert_fields(&tree.pki().join("etcd/peer.crt"));
    assert!(
        peer.contains("DNS:peer.example.com") && !peer.contains("etcd.example.com"),
        "{peer}"
    );
}

#[test]
fn flags_override_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file_pki = dir.path().join("file-pki");
    let file = config_file(&format!(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
         localAPIEndpoint: {{advertiseAddress: 127.0.0.1, bindPort: 7443}}\n\
         nodeRegistration: {{name: from-file}}\n---\n\
         apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncertificatesDir: {}\n\
         encryptionAlgorithm: RSA-4096\n",
        file_pki.display()
    ));
    let tree = TempTree::new();
    let out = init_with(
        &tree,
        &[
            "--config",
            &file.path.display().to_string(),
            "--apiserver-bind-port",
            "8443",
            "--node-name",
            "from-flag",
            "--encryption-algorithm",
            "ECDSA-P256",
        ],
    );
    assert_success(&out, "init --config with flags");
    assert!(
        !file_pki.exists(),
        "--cert-dir must win over certificatesDir"
    );
    let scheduler = kubeconfig_fields(&tree.root().join("scheduler.conf"));
    assert!(scheduler.contains("https://127.0.0.1:8443"), "{scheduler}");
    let etcd = cert_fields(&tree.pki().join("etcd/server.crt"));
    assert!(
        etcd.contains("CN=from-flag") || etcd.contains("CN = from-flag"),
        "{etcd}"
    );
    assert!(etcd.contains("prime256v1"), "{etcd}");
}

#[test]
fn certificates_dir_is_used_without_cert_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = dir.path().join("pki");
    let file = config_file(&format!(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncertificatesDir: {}\n\
         encryptionAlgorithm: ECDSA-P256\n",
        pki.display()
    ));
    let out = kubepki(&[
        "init",
        "phase",
        "certs",
        "ca",
        "--config",
        &file.path.display().to_string(),
        "--node-name",
        "cp1",
        "--apiserver-advertise-address",
        "127.0.0.1",
        "--kubeconfig-dir",
        &dir.path().display().to_string(),
    ]);
    assert_success(&out, "init phase certs ca --config");
    assert!(pki.join("ca.crt").is_file() && pki.join("ca.key").is_file());
}

#[test]
fn external_etcd_writes_no_etcd_certificates() {
    let file = config_file(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
         etcd:\n  external:\n    endpoints: [https://10.0.0.9:2379]\n    caFile: /etc/etcd/ca.crt\n",
    );
    let tree = TempTree::new();
    tree.init(
        "ECDSA-P256",
        &["--config", &file.path.display().to_string()],
    );
    assert!(!tree.pki().join("etcd").exists());
    assert!(!tree.pki().join("apiserver-etcd-client.crt").exists());
    assert!(tree.pki().join("apiserver.crt").is_file());
}

#[test]
fn ecdsa_and_validity_periods_from_the_file() {
    let file = config_file(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
         encryptionAlgorithm: ECDSA-P256\ncertificateValidityPeriod: 48h0m0s\n\
         caCertificateValidityPeriod: 720h\n",
    );
    let tree = TempTree::new();
    let out = init_with(
        &tree,
        &[
            "--config",
            &file.path.display().to_string(),
            "--node-name",
            "cp1",
            "--apiserver-advertise-address",
            "127.0.0.1",
        ],
    );
    assert_success(&out, "init --config");
    let checkend = |cert: &str, seconds: u64| {
        openssl(&[
            "x509",
            "-in",
            &tree.pki().join(cert).display().to_string(),
            "-noout",
            "-checkend",
            &seconds.to_string(),
        ])
        .status
        .success()
    };
    for (cert, hours) in [
        ("apiserver.crt", 48),
        ("etcd/peer.crt", 48),
        ("ca.crt", 720),
    ] {
        assert!(checkend(cert, hours * 3600 - 3600), "{cert} ends too early");
        assert!(!checkend(cert, hours * 3600 + 3600), "{cert} ends too late");
    }
    for key in ["ca.key", "apiserver.key", "sa.key"] {
        let out = openssl(&[
            "pkey",
            "-in",
            &tree.pki().join(key).display().to_string(),
            "-noout",
            "-text",
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("prime256v1"), "{key}: {text}");
    }
    let admin = kubeconfig_fields(&tree.root().join("admin.conf"));
    assert!(admin.contains("prime256v1"), "{admin}");
}

/// One broken file: what it holds, and what the one stderr line must name.
struct Broken {
    name: &'static str,
    content: &'static [u8],
    says: &'static [&'static str],
}

const BROKEN: &[Broken] = &[
    Broken {
        name: "typo'd field",
        content: b"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer:\n  certSAN: [a.example.com]\n",
        says: &["unknown field \"certSAN\"", "ClusterConfiguration.apiServer", ":4:3", "did you mean \"certSANs\""],
    },
    Broken {
        name: "wrong type",
        content: b"apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  bindPort: six\n",
        says: &["InitConfiguration.localAPIEndpoint.bindPort", ":4:13", "port number"],
    },
    Broken {
        name: "bad IP",
        content: b"apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 999.1.1.1\n",
        says: &["InitConfiguration.localAPIEndpoint.advertiseAddress", ":4:21", "999.1.1.1"],
    },
    Broken {
        name: "bad CIDR",
        content: b"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  serviceSubnet: 10.96.0.0/99\n",
        says: &["ClusterConfiguration.networking.serviceSubnet", ":4:18", "10.96.0.0/99"],
    },
    Broken {
        name: "bad duration",
        content: b"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncertificateValidityPeriod: 10x\n",
        says: &["ClusterConfiguration.certificateValidityPeriod", ":3:28", "10x"],
    },
    Broken {
        name: "bad SAN in a list",
        content: b"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\netcd:\n  local:\n    peerCertSANs: [ok.example.com, bad_name]\n",
        says: &["ClusterConfiguration.etcd.local.peerCertSANs[1]", ":5:36", "bad_name"],
    },
    Broken {
        name: "unknown kind",
        content: b"apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfig\n",
        says: &[":2:7", "unknown kind \"InitConfig\"", "InitConfiguration"],
    },
    Broken {
        name: "unknown apiVersion",
        content: b"apiVersion: kubeadm.k8s.io/v1\nkind: InitConfiguration\n",
        says: &[":1:13", "kubeadm.k8s.io/v1"],
    },
    Broken {
        name: "v1beta4-only field in v1beta3",
        content: b"apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nencryptionAlgorithm: ECDSA-P256\n",
        says: &["unknown field \"encryptionAlgorithm\"", ":3:1"],
    },
    Broken {
        name: "empty file",
        content: b"",
        says: &["empty"],
    },
    Broken {
        name: "only comments",
        content: b"# nothing here\n",
        says: &["empty"],
    },
    Broken {
        name: "not YAML",
        content: b"apiVersion: kubeadm.k8s.io/v1beta4\n- kind\n",
        says: &[":2:1", "not valid YAML"],
    },
    Broken {
        name: "a sentence, not a mapping",
        content: b"this is not a kubeadm file\n",
        says: &[":1:1", "not a kubeadm configuration"],
    },
    Broken {
        name: "binary garbage",
        content: b"\x7fELF\x02\x01\x01\x00\x00\x00\xff\xfe\x00\x01",
        says: &[":1:", "not a YAML file"],
    },
];

#[test]
fn every_broken_file_is_one_located_line_and_writes_nothing() {
    let mut failures = Vec::new();
    for case in BROKEN {
        if let Err(problem) = run_broken(case) {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn run_broken(case: &Broken) -> Result<(), String> {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, case.content).map_err(|e| e.to_string())?;
    let before = tree.snapshot();
    let path_text = path.display().to_string();
    for args in [
        vec![
            "init",
            "--config",
            &path_text,
            "--node-name",
            "cp1",
            "--apiserver-advertise-address",
            "127.0.0.1",
        ],
        vec!["config", "validate", "--config", &path_text],
    ] {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if args[0] == "init" {
            all.extend(tree.dir_args());
        }
        let out = kubepki(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(1) {
            return Err(format!(
                "{}: exit {:?}: {stderr}",
                args[0],
                out.status.code()
            ));
        }
        if stderr.lines().count() != 1 {
            return Err(format!("{}: expected one stderr line: {stderr}", args[0]));
        }
        let wanted = std::iter::once(path_text.as_str()).chain(case.says.iter().copied());
        if let Some(missing) = wanted.into_iter().find(|s| !stderr.contains(s)) {
            return Err(format!("{}: stderr lacks {missing:?}: {stderr}", args[0]));
        }
    }
    if tree.snapshot() != before {
        return Err("the tree changed".into());
    }
    Ok(())
}

#[test]
fn printed_defaults_give_the_tree_of_no_config() {
    let out = kubepki(&["config", "print", "init-defaults"]);
    assert_success(&out, "config print init-defaults");
    let file = config_file(&String::from_utf8_lossy(&out.stdout));
    let validate = kubepki(&[
        "config",
        "validate",
        "--config",
        &file.path.display().to_string(),
    ]);
    assert_success(&validate, "config validate of the defaults");
    let host = [
        "--node-name",
        "cp1",
        "--apiserver-advertise-address",
        "127.0.0.1",
    ];
    let (with_config, without) = (TempTree::new(), TempTree::new());
    let mut args = host.to_vec();
    args.extend(["--config", file.path.to_str().expect("utf-8 path")]);
    assert_success(&init_with(&with_config, &args), "init --config defaults");
    assert_success(&init_with(&without, &host), "init without config");
    assert_same_trees(&with_config, &without);
    let dry = |extra: &[&str]| {
        let mut args = vec!["init", "--dry-run", "-o", "json"];
        args.extend(extra);
        kubepki(&args)
    };
    let (a, b) = (
        dry(&["--config", file.path.to_str().expect("utf-8")]),
        dry(&[]),
    );
    assert_eq!(
        (a.status.code(), a.stdout),
        (b.status.code(), b.stdout),
        "host facts must be detected alike with the printed defaults"
    );
}

#[test]
fn example_config_validates_and_drives_init() {
    let example = format!(
        "{}/examples/kubeadm-config.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = kubepki(&["config", "validate", "--config", &example]);
    assert_success(&out, "config validate example");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ClusterConfiguration: ok"), "{text}");
    let tree = TempTree::new();
    let out = init_with(&tree, &["--config", &example]);
    assert_success(&out, "init --config example");
    let apiserver = cert_fields(&tree.pki().join("apiserver.crt"));
    for san in [
        "DNS:cluster.example.com",
        "DNS:api.example.com",
        "IP Address:192.0.2.100",
        "IP Address:192.0.2.10",
    ] {
        assert!(apiserver.contains(san), "{san}: {apiserver}");
    }
    let etcd = cert_fields(&tree.pki().join("etcd/server.crt"));
    assert!(etcd.contains("DNS:api.example.com"), "{etcd}");
    let admin = kubeconfig_fields(&tree.root().join("admin.conf"));
    assert!(
        admin.contains("https://cluster.example.com:6443") && admin.contains("@example"),
        "{admin}"
    );
}
