//! What a kubeadm user trips over on day 2 (issue 17), one test per item: each failed on the
//! binary before its fix.

use crate::support::{TempTree, assert_success, kubepki, openssl};
use crate::token::token;
use std::process::{Command, Stdio};

/// `notAfter` of a certificate file, as seconds since the epoch (openssl's reading).
fn not_after(path: &std::path::Path) -> i64 {
    let out = openssl(&[
        "x509".as_ref(),
        "-noout".as_ref(),
        "-enddate".as_ref(),
        "-dateopt".as_ref(),
        "iso_8601".as_ref(),
        "-in".as_ref(),
        path.as_os_str(),
    ]);
    assert_success(&out, "openssl x509 -enddate");
    let text = String::from_utf8_lossy(&out.stdout);
    let date = text.trim().trim_start_matches("notAfter=");
    let parsed = time::PrimitiveDateTime::parse(
        date.trim_end_matches('Z'),
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .unwrap_or_else(|e| panic!("{date:?}: {e}"));
    parsed.assume_utc().unix_timestamp()
}

#[test]
fn issue_17_a_leaf_never_outlives_its_ca() {
    let tree = TempTree::new();
    let out = tree.init("ECDSA-P256", &["--cert-validity", "100000h"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("valid only until ") && stderr.contains("when their CA \"etcd-ca\" ends"),
        "{stderr}"
    );
    let ca_end = not_after(&tree.pki().join("ca.crt"));
    for leaf in ["apiserver.crt", "apiserver-kubelet-client.crt"] {
        assert!(not_after(&tree.pki().join(leaf)) <= ca_end, "{leaf}");
    }
    let etcd_end = not_after(&tree.pki().join("etcd/ca.crt"));
    let mut renew = vec![
        "certs",
        "renew",
        "etcd-server",
        "--cert-validity",
        "100000h",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    renew.extend(tree.dir_args());
    let out = kubepki(&renew);
    assert_success(&out, "renew etcd-server");
    assert!(not_after(&tree.pki().join("etcd/server.crt")) <= etcd_end);
    let day_before_end = (ca_end - 86_400).to_string();
    let verify = openssl(&[
        "verify",
        "-attime",
        &day_before_end,
        "-CAfile",
        &tree.pki().join("ca.crt").display().to_string(),
        &tree.pki().join("apiserver.crt").display().to_string(),
    ]);
    assert_success(&verify, "openssl verify at the CA's last day");
}

#[test]
fn issue_17_durations_are_echoed_as_given() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let mut args = vec!["certs".to_string(), "check-expiration".into()];
    args.extend(tree.dir_args());
    args.extend(["--fail-within".into(), "400d".into()]);
    let out = kubepki(&args);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("expiring within 400d:"), "{stderr}");
}

#[test]
fn issue_17_a_closed_stdout_ends_a_command_quietly() {
    for args in [&["completion", "bash"][..], &["token", "generate"][..]] {
        // A pipe whose reading end is closed before kubepki starts: its first write fails.
        let (reader, writer) = nix::unistd::pipe().expect("a pipe");
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_kubepki"))
            .args(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .expect("kubepki");
        assert_eq!(out.status.code(), Some(141), "{args:?}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn issue_17_completion_offers_the_algorithm_names() {
    let out = kubepki(&["completion", "bash"]);
    assert_success(&out, "completion");
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        script.contains("RSA-2048 RSA-3072 RSA-4096 ECDSA-P256 ECDSA-P384"),
        "no algorithm names offered"
    );
}

#[test]
fn issue_17_a_tree_that_is_not_there_is_an_error_and_nothing_is_created() {
    let scratch = TempTree::new();
    let nope = scratch.root().join("nope");
    let dirs = [
        "--cert-dir".to_string(),
        nope.join("pki").display().to_string(),
        "--kubeconfig-dir".to_string(),
        nope.display().to_string(),
    ];
    let commands: [&[&str]; 4] = [
        &["certs", "check-expiration", "--fail-within", "30d"],
        &["certs", "renew", "all"],
        &["token", "create"],
        &["token", "manifests"],
    ];
    for command in commands {
        let mut args: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        args.extend(dirs.iter().cloned());
        let out = kubepki(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!("kubepki: error: {}", nope.display()))
                && stderr.contains("no such directory"),
            "{command:?}: {stderr}"
        );
        assert!(!nope.exists(), "{command:?} created {}", nope.display());
    }
}

#[test]
fn issue_17_a_partly_missing_tree_fails_under_fail_within() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    std::fs::remove_file(tree.root().join("super-admin.conf")).expect("removing");
    let mut args = vec!["certs".to_string(), "check-expiration".into()];
    args.extend(tree.dir_args());
    let out = kubepki(&args);
    assert_success(&out, "check-expiration");
    assert!(String::from_utf8_lossy(&out.stdout).contains("!MISSING! super-admin.conf"));
    args.extend(["--fail-within".into(), "30d".into()]);
    let out = kubepki(&args);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr, "kubepki: missing: super-admin.conf\n");
    // renew: `all` passes over the missing file as kubeadm does; asked for by name, it fails.
    let renew = |names: &[&str]| {
        let mut args: Vec<String> = ["certs", "renew"].map(String::from).to_vec();
        args.extend(names.iter().map(|n| n.to_string()));
        args.extend(tree.dir_args());
        kubepki(&args)
    };
    assert_success(&renew(&["all"]), "renew all without super-admin.conf");
    let out = renew(&["super-admin.conf", "admin.conf"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "kubepki: missing: super-admin.conf, so it cannot be renewed (`kubepki init phase kubeconfig super-admin --cert-dir {} --kubeconfig-dir {}` writes it)\n",
            tree.pki().display(),
            tree.root().display()
        )
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Done renewing certificates."),
        "the other name is renewed"
    );
    std::fs::remove_file(tree.pki().join("ca.crt")).expect("removing");
    let out = kubepki(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ca.crt: CA certificate not found"),
        "{stderr}"
    );
}

#[test]
fn issue_17_kubeconfig_user_names_the_trees_cluster_and_keeps_an_existing_file() {
    let tree = TempTree::new();
    let config = tree.root().join("kubeadm.yaml");
    std::fs::write(
        &config,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: prod\n",
    )
    .expect("writing the config");
    tree.init("ECDSA-P256", &["--config", &config.display().to_string()]);
    let output = tree.root().join("alice.conf");
    let user = |extra: &[&str]| {
        let mut args = vec!["kubeconfig", "user", "--client-name", "alice"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        args.extend(tree.dir_args());
        args.extend(extra.iter().map(|s| s.to_string()));
        kubepki(&args)
    };
    let out = user(&[]);
    assert_success(&out, "kubeconfig user");
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert!(yaml.contains("current-context: alice@prod"), "{yaml}");
    let path = output.display().to_string();
    assert_success(&user(&["--out", &path]), "kubeconfig user --out");
    let first = std::fs::read(&output).expect("written");
    let out = user(&["--out", &path]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exists; pass --force to replace it"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&output).expect("kept"), first);
    assert_success(&user(&["--out", &path, "--force"]), "with --force");
    assert_ne!(std::fs::read(&output).expect("replaced"), first);
}

#[test]
fn issue_17_tokens_are_listed_deleted_and_pruned_when_expired() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let keep = "abcdef.0123456789abcdef";
    let gone = "bcdefg.0123456789abcdef";
    let short = "cdefgh.0123456789abcdef";
    for (given, ttl) in [(keep, "24h"), (gone, "0"), (short, "2s")] {
        let out = token(&tree, &["create", given, "--ttl", ttl]);
        assert_success(&out, "token create");
    }
    let out = token(&tree, &["list"]);
    assert_success(&out, "token list");
    let list = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = list.lines().collect();
    assert!(
        lines[0].starts_with("TOKEN") && lines[0].ends_with("EXTRA GROUPS"),
        "{list}"
    );
    assert_eq!(lines.len(), 4, "{list}");
    assert!(
        list.contains(&format!("{gone}   <forever>   <never>")),
        "{list}"
    );
    let out = token(&tree, &["delete", "bcdefg"]);
    assert_success(&out, "token delete");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Removed the token Secret manifest")
            && stdout.contains("bootstrap-token-bcdefg.yaml"),
        "{stdout}"
    );
    let cluster_info = tree.read("bootstrap/cluster-info.yaml");
    let cluster_info = String::from_utf8_lossy(&cluster_info);
    assert!(
        !cluster_info.contains("jws-kubeconfig-bcdefg"),
        "{cluster_info}"
    );
    assert!(
        cluster_info.contains("jws-kubeconfig-abcdef"),
        "{cluster_info}"
    );
    let out = token(&tree, &["delete", "zzzzzz"]);
    assert_eq!(out.status.code(), Some(1));
    std::thread::sleep(std::time::Duration::from_secs(3));
    let out = token(&tree, &["manifests"]);
    assert_success(&out, "token manifests");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Removed the expired token Secret manifest")
            && stdout.contains("bootstrap-token-cdefgh.yaml"),
        "{stdout}"
    );
    let out = token(&tree, &["list", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let tokens: Vec<&str> = list["tokens"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t["token"].as_str().expect("a token"))
        .collect();
    assert_eq!(tokens, [keep]);
}

#[test]
fn issue_17_an_external_ca_is_not_called_a_certificate_and_key() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    std::fs::remove_file(tree.pki().join("front-proxy-ca.key")).expect("removing");
    let out = tree.init("ECDSA-P256", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("[certs] Using the existing \"front-proxy-ca\" certificate; its key is absent (external CA)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[certs] Using the existing \"ca\" certificate and key\n"),
        "{stdout}"
    );
}

#[test]
fn issue_17_config_all_the_way() {
    let tree = TempTree::new();
    let config = tree.root().join("kubeadm.yaml");
    let text = format!(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
         bootstrapTokens:\n- token: abcdef.0123456789abcdef\n  ttl: 2h\n  description: from the file\n\
         ---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
         certificatesDir: {}\nencryptionAlgorithm: ECDSA-P384\ncertificateValidityPeriod: 100h\n",
        tree.pki().display()
    );
    std::fs::write(&config, text).expect("writing the config");
    let config = config.display().to_string();
    let kubeconfig_dir = tree.root().display().to_string();
    let base = |words: &[&str]| {
        let mut args: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        args.extend(["--config".into(), config.clone()]);
        args.extend(["--kubeconfig-dir".into(), kubeconfig_dir.clone()]);
        args
    };
    let mut init = base(&[
        "init",
        "--node-name",
        "cp1",
        "--apiserver-advertise-address",
        "127.0.0.1",
        "--encryption-algorithm",
        "ECDSA-P256",
        "--cert-validity",
        "8760h",
    ]);
    init.push("--lock-timeout=5s".into());
    let out = kubepki(&init);
    assert_success(&out, "init --config");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("--token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("--config {config}")),
        "printed commands name the config: {stdout}"
    );
    let secret = tree.read("bootstrap/bootstrap-token-abcdef.yaml");
    assert!(
        String::from_utf8_lossy(&secret).contains("ZnJvbSB0aGUgZmlsZQ=="),
        "the description"
    );
    let cluster_info =
        String::from_utf8_lossy(&tree.read("bootstrap/cluster-info.yaml")).into_owned();
    assert!(cluster_info.contains("jws-kubeconfig-abcdef"));
    let out = kubepki(&base(&["certs", "check-expiration", "-o", "json"]));
    assert_success(&out, "check-expiration --config");
    let out = kubepki(&base(&["certs", "renew", "apiserver"]));
    assert_success(&out, "renew --config");
    let text = openssl(&[
        "x509",
        "-noout",
        "-text",
        "-in",
        &tree.pki().join("apiserver.crt").display().to_string(),
    ]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("NIST CURVE: P-384"),
        "the configured algorithm: {text}"
    );
    let left = not_after(&tree.pki().join("apiserver.crt"))
        - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (99 * 3600..=100 * 3600).contains(&left),
        "the configured validity: {left}s"
    );
    let out = kubepki(&base(&["token", "create", "bcdefg.0123456789abcdef"]));
    assert_success(&out, "token create --config");
    let secret =
        String::from_utf8_lossy(&tree.read("bootstrap/bootstrap-token-bcdefg.yaml")).into_owned();
    assert!(
        secret.contains("ZnJvbSB0aGUgZmlsZQ=="),
        "the file's description is the default: {secret}"
    );
}

#[test]
fn issue_17_drift_is_named() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let mut args = vec!["init", "phase", "kubeconfig", "all"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    args.extend(tree.dir_args());
    args.extend(
        [
            "--node-name",
            "cp1",
            "--apiserver-advertise-address",
            "127.0.0.1",
            "--control-plane-endpoint",
            "other:7443",
        ]
        .map(String::from),
    );
    // Another node name is refused: the tree records cp1, and only reconcile moves it (#21).
    let mut moved = args.clone();
    let node = moved.len() - 5;
    moved[node] = "other".into();
    let refused = kubepki(&moved);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("--node-name other: this tree was made for cp1"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let out = kubepki(&args);
    assert_success(&out, "init phase kubeconfig all");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let admin = tree.root().join("admin.conf");
    assert!(
        stdout.contains(&format!(
            "[kubeconfig] WARNING: {}: its server is https://127.0.0.1:6443, the current settings say https://other:7443\n",
            admin.display()
        )),
        "{stdout}"
    );
    let reconcile = format!(
        "to re-issue these for the current settings, run `kubepki certs renew --reconcile --plan --cert-dir {} --kubeconfig-dir {}` with this run's settings, then without --plan",
        tree.pki().display(),
        tree.root().display()
    );
    assert_eq!(stdout.matches(&reconcile).count(), 1, "one hint: {stdout}");
    assert!(
        !stdout.contains("kubeadm join"),
        "a phase prints no join line: {stdout}"
    );
    let mut json_args = args.clone();
    json_args.extend(["-o".into(), "json".into()]);
    let out = kubepki(&json_args);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let admin_step = &json["steps"][0];
    assert_eq!(admin_step["drift"][0]["what"], "server");
    assert_eq!(admin_step["drift"][0]["wanted"], "https://other:7443");
    // The hint works: reconcile with the same settings, and init finds nothing to warn of.
    let settings = &args[4..];
    let mut reconcile_args: Vec<String> =
        ["certs", "renew", "--reconcile"].map(String::from).to_vec();
    reconcile_args.extend(settings.iter().cloned());
    assert_success(&kubepki(&reconcile_args), "the reconcile init suggested");
    let out = kubepki(&args);
    assert_success(&out, "init phase kubeconfig all after the reconcile");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("WARNING"), "{stdout}");
}

#[test]
fn issue_17_slow_work_says_what_it_does_as_it_goes() {
    use std::io::BufRead;
    let tree = TempTree::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubepki"))
        .args(tree.init_args("RSA-4096", &[]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubepki init");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("a first line");
    assert_eq!(first, "[certs] Generating \"ca\" certificate and key\n");
    assert!(
        child.try_wait().expect("a status").is_none(),
        "the steps were printed only at the end"
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("the rest");
    let out = child.wait_with_output().expect("kubepki init");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        rest.contains("Your Kubernetes control-plane PKI is ready."),
        "{rest}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[certs] generating keys: "), "{stderr}");
    assert!(stderr.contains("[certs] generated 16 keys in "), "{stderr}");
}

#[test]
fn issue_17_init_publishes_the_configuration_kubeadm_join_reads() {
    let tree = TempTree::new();
    tree.init(
        "ECDSA-P256",
        &["--control-plane-endpoint", "lb.example.com:6443"],
    );
    let text = String::from_utf8_lossy(&tree.read("bootstrap/kubeadm-config.yaml")).into_owned();
    let objects: Vec<serde_json::Value> = text
        .split("---\n")
        .map(|doc| serde_yaml::from_str(doc).expect("YAML"))
        .collect();
    let names: Vec<String> = objects
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "ConfigMap/kubeadm-config",
            "Role/kubeadm:nodes-kubeadm-config",
            "RoleBinding/kubeadm:nodes-kubeadm-config",
            "ConfigMap/kubelet-config",
            "Role/kubeadm:kubelet-config",
            "RoleBinding/kubeadm:kubelet-config",
        ]
    );
    let binding = &objects[2];
    assert_eq!(
        binding["subjects"][0]["name"],
        "system:bootstrappers:kubeadm:default-node-token"
    );
    assert_eq!(binding["subjects"][1]["name"], "system:nodes");
    let cluster_configuration = objects[0]["data"]["ClusterConfiguration"]
        .as_str()
        .expect("a document");
    let file = tree.root().join("published.yaml");
    std::fs::write(&file, cluster_configuration).expect("writing");
    let out = kubepki(&[
        "config",
        "validate",
        "--config",
        &file.display().to_string(),
    ]);
    assert_success(
        &out,
        "kubepki's strict reader on the published ClusterConfiguration",
    );
    assert!(cluster_configuration.contains("controlPlaneEndpoint: lb.example.com:6443"));
    let kubelet = objects[3]["data"]["kubelet"].as_str().expect("a document");
    assert!(
        kubelet.contains("kind: KubeletConfiguration") && kubelet.contains("- 10.96.0.10"),
        "{kubelet}"
    );
}
