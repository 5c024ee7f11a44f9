//! `kubepki init phase control-plane|etcd local` and `init --manifests` (#22): the static pod
//! manifests parse as kubeadm's Pods, field by field; their commands hold every line of
//! `kubepki flags` (one table) and the configuration's extraArgs; extraVolumes, dataDir and
//! imageRepository reach them; bad input is one line and writes nothing. (The tier test
//! `upstream_control_plane_from_kubepki_static_pod_manifests` runs the real components from
//! these commands.)

use crate::support::{TempTree, assert_success, kubepki};
use serde_yaml::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

const NODE: [&str; 4] = [
    "--node-name",
    "cp1",
    "--apiserver-advertise-address",
    "10.0.0.5",
];

/// `kubepki <words>` on `tree` for node cp1 at 10.0.0.5, manifests into `<root>/manifests`.
fn run(tree: &TempTree, words: &[&str], extra: &[&str]) -> Output {
    let mut args: Vec<String> = words.iter().map(|s| s.to_string()).collect();
    args.extend(tree.dir_args());
    args.extend(NODE.iter().chain(extra).map(|s| s.to_string()));
    args.extend([
        "--manifests-dir".into(),
        manifests(tree).display().to_string(),
    ]);
    kubepki(&args)
}

fn manifests(tree: &TempTree) -> PathBuf {
    tree.root().join("manifests")
}

fn pod(tree: &TempTree, component: &str) -> Value {
    let path = manifests(tree).join(format!("{component}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mode = std::fs::metadata(&path)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{path:?}");
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: not YAML: {e}"))
}

fn command(pod: &Value) -> Vec<String> {
    pod["spec"]["containers"][0]["command"]
        .as_sequence()
        .expect("a command")
        .iter()
        .map(|a| a.as_str().expect("a string").to_string())
        .collect()
}

fn volume<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["spec"]["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .find(|v| v["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no volume {name}"))
}

fn mount<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["spec"]["containers"][0]["volumeMounts"]
        .as_sequence()
        .expect("mounts")
        .iter()
        .find(|v| v["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no mount {name}"))
}

fn flag_lines(tree: &TempTree, component: &str) -> Vec<String> {
    let out = run_flags(tree, component);
    assert_success(&out, "kubepki flags");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn run_flags(tree: &TempTree, component: &str) -> Output {
    let mut args = vec!["flags".to_string(), component.to_string()];
    args.extend(tree.dir_args());
    args.extend(NODE.iter().map(|s| s.to_string()));
    kubepki(&args)
}

fn s(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value:?}"))
}

#[test]
fn control_plane_and_etcd_manifests_are_kubeadms_pods() {
    let tree = TempTree::new();
    let init = run(&tree, &["init"], &["--kubernetes-version", "v1.33.1"]);
    assert_success(&init, "kubepki init");
    assert!(!manifests(&tree).exists(), "init wrote manifests unasked");
    let out = run(&tree, &["init", "phase", "control-plane", "all"], &[]);
    assert_success(&out, "init phase control-plane all");
    let out = run(&tree, &["init", "phase", "etcd", "local"], &[]);
    assert_success(&out, "init phase etcd local");
    let pki = tree.pki().display().to_string();
    let root = tree.root().display().to_string();
    for (component, cpu) in [
        ("kube-apiserver", "250m"),
        ("kube-controller-manager", "200m"),
        ("kube-scheduler", "100m"),
        ("etcd", "100m"),
    ] {
        let pod = pod(&tree, component);
        assert_eq!(s(&pod["apiVersion"]), "v1");
        assert_eq!(s(&pod["kind"]), "Pod");
        assert_eq!(s(&pod["metadata"]["name"]), component);
        assert_eq!(s(&pod["metadata"]["namespace"]), "kube-system");
        assert_eq!(s(&pod["metadata"]["labels"]["component"]), component);
        assert_eq!(s(&pod["metadata"]["labels"]["tier"]), "control-plane");
        let spec = &pod["spec"];
        assert_eq!(spec["hostNetwork"].as_bool(), Some(true));
        assert_eq!(s(&spec["priorityClassName"]), "system-node-critical");
        assert_eq!(spec["priority"].as_u64(), Some(2_000_001_000));
        assert_eq!(
            s(&spec["securityContext"]["seccompProfile"]["type"]),
            "RuntimeDefault"
        );
        let container = &spec["containers"][0];
        assert_eq!(s(&container["name"]), component);
        assert_eq!(s(&container["imagePullPolicy"]), "IfNotPresent");
        assert_eq!(s(&container["resources"]["requests"]["cpu"]), cpu);
        let image = match component {
            "etcd" => "registry.k8s.io/etcd:3.5.21-0".to_string(),
            _ => format!("registry.k8s.io/{component}:v1.33.1"),
        };
        assert_eq!(s(&container["image"]), image);
        let command = command(&pod);
        assert_eq!(command[0], component);
        let mut sorted = command[1..].to_vec();
        sorted.sort();
        assert_eq!(command[1..], sorted[..], "{component}: flags not sorted");
        // one table: every flag `kubepki flags` prints is in the manifest, same value
        for line in flag_lines(&tree, component) {
            assert!(command.contains(&line), "{component}: {line} missing");
        }
        // every tree file named is under a hostPath volume the container mounts
        let volumes: Vec<&str> = spec["volumes"]
            .as_sequence()
            .expect("volumes")
            .iter()
            .map(|v| s(&v["hostPath"]["path"]))
            .collect();
        for arg in &command[1..] {
            let value = arg.split_once('=').map_or("", |(_, v)| v);
            if value.starts_with(&root) {
                assert!(volumes.iter().any(|v| value.starts_with(v)), "{arg}");
            }
        }
        assert_eq!(
            container["livenessProbe"]["failureThreshold"].as_u64(),
            Some(8)
        );
        assert_eq!(
            container["startupProbe"]["failureThreshold"].as_u64(),
            Some(24)
        );
    }
    let api = pod(&tree, "kube-apiserver");
    let args = command(&api);
    for expected in [
        "--advertise-address=10.0.0.5",
        "--allow-privileged=true",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--etcd-servers=https://127.0.0.1:2379",
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
        "--secure-port=6443",
    ] {
        assert!(args.iter().any(|a| a == expected), "{expected}");
    }
    assert!(args.contains(&format!("--client-ca-file={pki}/ca.crt")));
    let live = &api["spec"]["containers"][0]["livenessProbe"]["httpGet"];
    assert_eq!(
        (
            s(&live["host"]),
            s(&live["path"]),
            live["port"].as_u64(),
            s(&live["scheme"])
        ),
        ("10.0.0.5", "/livez", Some(6443), "HTTPS")
    );
    let ready = &api["spec"]["containers"][0]["readinessProbe"]["httpGet"];
    assert_eq!(s(&ready["path"]), "/readyz");
    assert_eq!(
        s(
            &api["metadata"]["annotations"]["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"]
        ),
        "10.0.0.5:6443"
    );
    assert_eq!(s(&volume(&api, "k8s-certs")["hostPath"]["path"]), pki);
    assert_eq!(
        s(&volume(&api, "ca-certs")["hostPath"]["path"]),
        "/etc/ssl/certs"
    );
    assert_eq!(mount(&api, "k8s-certs")["readOnly"].as_bool(), Some(true));

    let kcm = pod(&tree, "kube-controller-manager");
    let args = command(&kcm);
    for expected in ["--bind-address=127.0.0.1", "--leader-elect=true"] {
        assert!(args.iter().any(|a| a == expected), "{expected}");
    }
    let kubeconfig = volume(&kcm, "kubeconfig");
    assert_eq!(
        s(&kubeconfig["hostPath"]["path"]),
        format!("{root}/controller-manager.conf")
    );
    assert_eq!(s(&kubeconfig["hostPath"]["type"]), "FileOrCreate");
    let live = &kcm["spec"]["containers"][0]["livenessProbe"]["httpGet"];
    assert_eq!(
        (s(&live["host"]), s(&live["path"]), live["port"].as_u64()),
        ("127.0.0.1", "/healthz", Some(10257))
    );
    volume(&kcm, "flexvolume-dir");

    let sched = pod(&tree, "kube-scheduler");
    assert_eq!(
        s(&volume(&sched, "kubeconfig")["hostPath"]["path"]),
        format!("{root}/scheduler.conf")
    );
    let live = &sched["spec"]["containers"][0]["livenessProbe"]["httpGet"];
    assert_eq!(live["port"].as_u64(), Some(10259));

    let etcd = pod(&tree, "etcd");
    let args = command(&etcd);
    for expected in [
        "--data-dir=/var/lib/etcd",
        "--initial-cluster=cp1=https://10.0.0.5:2380",
        "--listen-client-urls=https://127.0.0.1:2379,https://10.0.0.5:2379",
        "--listen-metrics-urls=http://127.0.0.1:2381",
        "--snapshot-count=10000",
        "--experimental-initial-corrupt-check=true",
        "--experimental-watch-progress-notify-interval=5s",
    ] {
        assert!(args.iter().any(|a| a == expected), "{expected}");
    }
    assert_eq!(
        s(&volume(&etcd, "etcd-certs")["hostPath"]["path"]),
        format!("{pki}/etcd")
    );
    assert_eq!(
        s(&volume(&etcd, "etcd-data")["hostPath"]["path"]),
        "/var/lib/etcd"
    );
    let live = &etcd["spec"]["containers"][0]["livenessProbe"]["httpGet"];
    assert_eq!(
        (s(&live["path"]), live["port"].as_u64(), s(&live["scheme"])),
        ("/livez", Some(2381), "HTTP")
    );
    assert_eq!(
        s(&etcd["spec"]["containers"][0]["resources"]["requests"]["memory"]),
        "100Mi"
    );

    // a second run writes the same content: nothing changes
    let before = std::fs::metadata(manifests(&tree).join("etcd.yaml"))
        .and_then(|m| m.modified())
        .expect("mtime");
    let again = run(&tree, &["init", "phase", "etcd", "local"], &[]);
    assert_success(&again, "etcd local again");
    assert!(String::from_utf8_lossy(&again.stdout).contains("unchanged"));
    let after = std::fs::metadata(manifests(&tree).join("etcd.yaml"))
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(before, after);
}

const CONFIG: &str = "\
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.34.2
imageRepository: registry.example.com/k8s
apiServer:
  extraArgs:
  - name: authorization-mode
    value: Node,RBAC,Webhook
  - name: audit-log-path
    value: /var/log/kubernetes/audit.log
  extraVolumes:
  - name: audit
    hostPath: /var/log/kubernetes
    mountPath: /var/log/kubernetes
    pathType: DirectoryOrCreate
scheduler:
  extraArgs:
  - name: v
    value: \"4\"
etcd:
  local:
    dataDir: /data/etcd
    extraArgs:
    - name: snapshot-count
      value: \"5000\"
";

#[test]
fn extra_args_volumes_data_dir_and_image_repository_reach_the_manifests() {
    let tree = TempTree::new();
    let config = tree.root().join("kubeadm.yaml");
    std::fs::write(&config, CONFIG).expect("config");
    let config = config.display().to_string();
    let out = run(&tree, &["init", "--manifests", "--config", &config], &[]);
    assert_success(&out, "init --manifests --config");
    assert!(tree.pki().join("ca.key").is_file(), "init wrote no PKI");
    let api = pod(&tree, "kube-apiserver");
    let args = command(&api);
    assert!(args.contains(&"--authorization-mode=Node,RBAC,Webhook".to_string()));
    assert!(!args.contains(&"--authorization-mode=Node,RBAC".to_string()));
    assert!(args.contains(&"--audit-log-path=/var/log/kubernetes/audit.log".to_string()));
    assert_eq!(
        s(&api["spec"]["containers"][0]["image"]),
        "registry.example.com/k8s/kube-apiserver:v1.34.2"
    );
    let audit = volume(&api, "audit");
    assert_eq!(s(&audit["hostPath"]["path"]), "/var/log/kubernetes");
    assert_eq!(s(&audit["hostPath"]["type"]), "DirectoryOrCreate");
    assert_eq!(s(&mount(&api, "audit")["mountPath"]), "/var/log/kubernetes");
    assert!(mount(&api, "audit")["readOnly"].is_null());
    let sched = command(&pod(&tree, "kube-scheduler"));
    assert!(sched.contains(&"--v=4".to_string()));
    let etcd = pod(&tree, "etcd");
    let args = command(&etcd);
    assert!(args.contains(&"--snapshot-count=5000".to_string()));
    assert!(args.contains(&"--data-dir=/data/etcd".to_string()));
    // etcd 3.6 for v1.34: the corruption check is a feature gate
    assert!(args.contains(&"--feature-gates=InitialCorruptCheck=true".to_string()));
    assert!(args.contains(&"--watch-progress-notify-interval=5s".to_string()));
    assert_eq!(
        s(&etcd["spec"]["containers"][0]["image"]),
        "registry.example.com/k8s/etcd:3.6.4-0"
    );
    assert_eq!(
        s(&volume(&etcd, "etcd-data")["hostPath"]["path"]),
        "/data/etcd"
    );
    // the tree records them: the phases without --config write the same files
    let components = [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "etcd",
    ];
    let read =
        |c: &str| std::fs::read(manifests(&tree).join(format!("{c}.yaml"))).expect("a manifest");
    let written: Vec<Vec<u8>> = components.iter().map(|c| read(c)).collect();
    std::fs::remove_dir_all(manifests(&tree)).expect("removing the manifests");
    // renew --reconcile records the settings again, and keeps these
    let mut reconcile: Vec<String> = ["certs", "renew", "--reconcile"].map(String::from).into();
    reconcile.extend(tree.dir_args());
    reconcile.extend(NODE.iter().map(|s| s.to_string()));
    assert_success(&kubepki(&reconcile), "certs renew --reconcile");
    let phase = |words: &[&str]| assert_success(&run(&tree, words, &[]), &words.join(" "));
    phase(&["init", "phase", "control-plane", "all"]);
    phase(&["init", "phase", "etcd", "local"]);
    for (component, content) in components.iter().zip(written) {
        assert_eq!(
            String::from_utf8_lossy(&read(component)),
            String::from_utf8_lossy(&content),
            "{component} from the record"
        );
    }
}

/// One line on stderr, naming `what`, non-zero, and no manifest written.
fn refused(tree: &TempTree, out: &Output, what: &str) {
    assert!(!out.status.success(), "accepted: {what}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(what), "{what} not in {stderr}");
    assert!(!manifests(tree).exists(), "{what}: a manifest was written");
}

#[test]
fn bad_input_is_one_line_and_writes_no_manifest() {
    let tree = TempTree::new();
    assert_success(&run(&tree, &["init"], &[]), "init");
    let phase = ["init", "phase", "control-plane", "all"];
    refused(&tree, &run(&tree, &phase, &[]), "no kubernetesVersion");
    refused(
        &tree,
        &run(&tree, &phase, &["--kubernetes-version", "stable-1"]),
        "kubernetesVersion \"stable-1\"",
    );
    refused(
        &tree,
        &run(&tree, &phase, &["--kubernetes-version", "v1.20.2"]),
        "kubernetesVersion v1.20.2",
    );
    let bad = tree.root().join("bad.yaml");
    let write = |text: &str| std::fs::write(&bad, text).expect("config");
    let config = ["--config", bad.to_str().expect("utf-8")];
    write(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
         kubernetesVersion: v1.33.1\napiServer:\n  extraVolumes:\n  - name: x\n    \
         hostPath: relative/dir\n    mountPath: /x\n",
    );
    refused(
        &tree,
        &run(&tree, &phase, &config),
        "apiServer.extraVolumes[0].hostPath",
    );
    write(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
         kubernetesVersion: v1.33.1\netcd:\n  external:\n    endpoints: [https://e:2379]\n",
    );
    refused(
        &tree,
        &run(&tree, &["init", "phase", "etcd", "local"], &config),
        "etcd.external",
    );
    // init --manifests with a bad version writes neither the PKI nor a manifest
    let fresh = TempTree::new();
    let out = run(&fresh, &["init", "--manifests"], &[]);
    refused(&fresh, &out, "no kubernetesVersion");
    assert!(!Path::new(&fresh.pki()).join("ca.key").exists());
    // a dry run writes nothing
    let out = run(
        &tree,
        &phase,
        &["--kubernetes-version", "v1.33.1", "--dry-run"],
    );
    assert_success(&out, "dry run");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Would write"));
    assert!(!manifests(&tree).exists());
}
