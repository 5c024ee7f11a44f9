//! `kubepki flags` from the command line: every path it prints is a file `init` wrote for
//! the same flags, text and JSON agree, `--config` shapes the values, and the refusals are
//! one line. (`tests/cli/tier/` starts the real components with this output.)

use crate::support::{TempTree, assert_success, kubepki};

const COMPONENTS: [&str; 5] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "etcd",
    "kubelet",
];

/// `kubepki flags <component>` on `tree` for node cp1 on 127.0.0.1, with `extra` arguments.
fn flags(tree: &TempTree, component: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["flags".to_string(), component.to_string()];
    args.extend(tree.dir_args());
    let node = [
        "--node-name",
        "cp1",
        "--apiserver-advertise-address",
        "127.0.0.1",
    ];
    args.extend(node.iter().chain(extra).map(|s| s.to_string()));
    kubepki(&args)
}

#[test]
fn every_file_flag_names_a_file_init_wrote_and_json_agrees() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let root = tree.root().display().to_string();
    for component in COMPONENTS {
        let text = flags(&tree, component, &[]);
        assert_success(&text, &format!("kubepki flags {component}"));
        let lines: Vec<String> = String::from_utf8_lossy(&text.stdout)
            .lines()
            .map(String::from)
            .collect();
        for line in &lines {
            let (flag, value) = line.split_once('=').unwrap_or_else(|| panic!("{line}"));
            assert!(flag.starts_with("--"), "{line}");
            let bootstrap = flag == "--bootstrap-kubeconfig";
            if value.starts_with(&root) && !bootstrap {
                assert!(
                    std::path::Path::new(value).is_file(),
                    "{component} {line}: no such file"
                );
            }
        }
        let json = flags(&tree, component, &["-o", "json"]);
        let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
        assert_eq!(json["component"], component);
        let from_json: Vec<String> = json["flags"]
            .as_array()
            .expect("flags")
            .iter()
            .map(|f| {
                format!(
                    "{}={}",
                    f["flag"].as_str().unwrap(),
                    f["value"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(from_json, lines, "{component}: text and JSON");
    }
}

#[test]
fn the_configuration_shapes_the_values_and_external_etcd_is_left_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("kubeadm.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: prod\n\
         networking:\n  serviceSubnet: 10.100.0.0/16\n  dnsDomain: corp.local\n\
         etcd:\n  external:\n    endpoints: [https://10.0.0.9:2379]\n",
    )
    .expect("writing the config");
    let tree = TempTree::new();
    let config = config.display().to_string();
    let api = flags(&tree, "kube-apiserver", &["--config", &config]);
    assert_success(&api, "kubepki flags kube-apiserver --config");
    let stdout = String::from_utf8_lossy(&api.stdout);
    assert!(
        stdout.contains("--service-cluster-ip-range=10.100.0.0/16\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("--service-account-issuer=https://kubernetes.default.svc.corp.local\n")
    );
    assert!(!stdout.contains("--etcd-"), "{stdout}");
    let stderr = String::from_utf8_lossy(&api.stderr);
    assert!(
        stderr.contains("etcd.external: --etcd-cafile, --etcd-certfile"),
        "{stderr}"
    );
    let kcm = flags(&tree, "kube-controller-manager", &["--config", &config]);
    assert!(String::from_utf8_lossy(&kcm.stdout).contains("--cluster-name=prod\n"));
    let mut kubelet = vec![
        "kubelet".to_string(),
        "config".into(),
        "--config".into(),
        config.clone(),
    ];
    kubelet.extend(tree.dir_args());
    let kubelet = kubepki(&kubelet);
    assert_success(&kubelet, "kubelet config --config");
    assert!(String::from_utf8_lossy(&kubelet.stdout).contains("clusterDNS:\n- 10.100.0.10\n"));
    let etcd = flags(&tree, "etcd", &["--config", &config]);
    assert_eq!(etcd.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&etcd.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("etcd.external"), "{stderr}");
}

#[test]
fn an_unknown_component_is_a_usage_error() {
    let tree = TempTree::new();
    let out = flags(&tree, "kube-proxy", &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("[possible values: kube-apiserver,"),
        "{stderr}"
    );
}
