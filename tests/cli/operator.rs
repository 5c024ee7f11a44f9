//! Issue 24, for the operator: `--quiet`, the "renewed" exit status, `renew -o json`, one
//! shape for every `-o json`, `-o` a format and `--out` a file, the metrics a timer leaves,
//! and the small traps (token delete, kubelet repair's key, rollback --dry-run, help texts,
//! join's timeout message).

use crate::support::{TempTree, assert_success, kubepki};
use serde_json::Value;
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::time::Instant;

/// Runs kubepki with `args` and the tree's directories.
fn on(tree: &TempTree, args: &[&str]) -> Output {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(tree.dir_args());
    kubepki(&all)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A tree whose leaves all expire in 10 days: due for a 30-day renewal.
fn due_tree() -> TempTree {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &["--cert-validity", "10d"]);
    tree
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", stdout(out), stderr(out)))
}

#[test]
fn issue_24_quiet_prints_nothing_when_nothing_is_due_and_documents_still() {
    let tree = TempTree::new();
    let init = kubepki(&[tree.init_args("ECDSA-P256", &[]), vec!["--quiet".into()]].concat());
    assert_success(&init, "init --quiet");
    assert_eq!(
        (stdout(&init), stderr(&init)),
        (String::new(), String::new())
    );
    assert!(tree.pki().join("apiserver.crt").is_file());
    let renew = ["certs", "renew", "all", "--expiring-within", "30d"];
    let loud = on(&tree, &renew);
    assert_success(&loud, "renew");
    assert!(
        stdout(&loud).contains("Nothing to renew"),
        "{}",
        stdout(&loud)
    );
    let quiet = on(&tree, &[&renew[..], &["--quiet"]].concat());
    assert_success(&quiet, "renew --quiet");
    assert_eq!(
        (stdout(&quiet), stderr(&quiet)),
        (String::new(), String::new())
    );
    let check = on(&tree, &["certs", "check-expiration", "-q"]);
    assert_success(&check, "check-expiration -q");
    assert_eq!(stdout(&check), "");
    let document = on(&tree, &["certs", "check-expiration", "-q", "-o", "json"]);
    assert_eq!(json(&document)["kind"], "CertificateExpirationInfo");
    let failed = on(&tree, &["certs", "renew", "nonsense-name", "--quiet"]);
    assert_eq!(failed.status.code(), Some(2), "{}", stderr(&failed));
    assert!(
        stderr(&failed).starts_with("kubepki: error: "),
        "{}",
        stderr(&failed)
    );
}

#[test]
fn issue_24_detailed_exit_code_is_4_when_something_was_renewed() {
    let tree = due_tree();
    let renew = [
        "certs",
        "renew",
        "all",
        "--expiring-within",
        "30d",
        "--detailed-exit-code",
    ];
    let first = on(&tree, &renew);
    assert_eq!(first.status.code(), Some(4), "{}", stderr(&first));
    let second = on(&tree, &renew);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let plain = due_tree();
    assert_success(
        &on(
            &plain,
            &["certs", "renew", "all", "--expiring-within", "30d"],
        ),
        "without --detailed-exit-code, renewing is status 0",
    );
}

#[test]
fn issue_24_renew_o_json_is_a_renewal_document() {
    let tree = due_tree();
    let out = on(
        &tree,
        &[
            "certs",
            "renew",
            "all",
            "--expiring-within",
            "30d",
            "-o",
            "json",
        ],
    );
    assert_success(&out, "renew -o json");
    let document = json(&out);
    assert_eq!(document["kind"], "Renewal");
    assert_eq!(document["apiVersion"], "kubepki.io/v1alpha1");
    let certificates = document["certificates"].as_array().expect("certificates");
    let renewed = certificates
        .iter()
        .filter(|c| c["outcome"] == "renewed")
        .count();
    assert_eq!(document["renewed"], renewed);
    assert_eq!(renewed, 12, "{document:#}");
    assert!(
        Path::new(document["generation"].as_str().expect("a generation")).is_dir(),
        "{document:#}"
    );
    let apiserver = document["restart"]
        .as_array()
        .expect("restart")
        .iter()
        .find(|r| r["component"] == "kube-apiserver")
        .expect("kube-apiserver restarts");
    assert!(
        apiserver["files"]
            .as_array()
            .expect("files")
            .contains(&Value::from("apiserver")),
        "{document:#}"
    );
    let again = on(
        &tree,
        &[
            "certs",
            "renew",
            "all",
            "--expiring-within",
            "30d",
            "-o",
            "yaml",
        ],
    );
    let yaml: Value = serde_yaml::from_slice(&again.stdout).expect("YAML");
    assert_eq!(yaml["renewed"], 0);
    assert!(
        yaml["certificates"]
            .as_array()
            .expect("certificates")
            .iter()
            .all(|c| c["outcome"] == "not-due" && c["expiresIn"].is_string()),
        "{yaml:#}"
    );
}

#[test]
fn issue_24_every_json_document_is_one_object_with_kind_and_api_version() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    tree.renew_all();
    let token = on(&tree, &["token", "create"]);
    assert_success(&token, "token create");
    let commands: [&[&str]; 10] = [
        &["certs", "check-expiration"],
        &["certs", "audit"],
        &["certs", "generations"],
        &["certs", "rotate-ca", "status"],
        &["certs", "renew", "all"],
        &[
            "certs",
            "renew",
            "--reconcile",
            "--plan",
            "--node-name",
            "cp1",
        ],
        &["token", "list"],
        &["flags", "kube-apiserver"],
        &["init", "--dry-run", "--node-name", "cp1"],
        &["init", "phase", "certs", "apiserver", "--node-name", "cp1"],
    ];
    for args in commands {
        let out = on(&tree, &[args, &["-o", "json"]].concat());
        let document = json(&out);
        assert!(document.is_object(), "{args:?}: {document:#}");
        assert!(
            document["kind"].is_string() && document["apiVersion"].is_string(),
            "{args:?}: {document:#}"
        );
    }
    let status = json(&on(&tree, &["certs", "rotate-ca", "status", "-o", "json"]));
    assert_eq!(status["kind"], "RotationStatus");
    assert_eq!(status["rotations"][0]["name"], "ca", "{status:#}");
    let list = json(&on(&tree, &["token", "list", "-o", "json"]));
    assert_eq!(list["tokens"].as_array().map(Vec::len), Some(1), "{list:#}");
}

#[test]
fn issue_24_o_is_a_format_and_a_file_is_out() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let key = stdout(&kubepki(&["certs", "certificate-key"]))
        .trim()
        .to_string();
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut export: Vec<String> = ["certs", "bundle", "export", "--certificate-key", &key]
        .iter()
        .map(|s| s.to_string())
        .collect();
    export.extend(tree.dir_args());
    let run_in_cwd = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kubepki"))
            .args(&export)
            .args(extra)
            .current_dir(cwd.path())
            .output()
            .expect("running kubepki")
    };
    let refused = run_in_cwd(&["-o", "json"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("--out FILE"),
        "{}",
        stderr(&refused)
    );
    assert!(!cwd.path().join("json").exists(), "no file named json");
    let new = run_in_cwd(&["--out", "bundle.yaml"]);
    assert_success(&new, "bundle export --out");
    assert!(!stderr(&new).contains("deprecated"), "{}", stderr(&new));
    let old = run_in_cwd(&["-o", "old.yaml"]);
    assert_success(&old, "bundle export -o FILE");
    assert!(
        stderr(&old).contains("[deprecated] WARNING: --output FILE (-o FILE) is deprecated"),
        "{}",
        stderr(&old)
    );
    let sealed = |name: &str| {
        let text = std::fs::read_to_string(cwd.path().join(name)).expect("written");
        text.contains("kind: Secret")
    };
    assert!(sealed("bundle.yaml") && sealed("old.yaml"));
    for (flag, name) in [("--out", "alice.conf"), ("--output", "bob.conf")] {
        let file = tree.root().join(name).display().to_string();
        let out = on(
            &tree,
            &["kubeconfig", "user", "--client-name", "alice", flag, &file],
        );
        assert_success(&out, flag);
        assert!(Path::new(&file).is_file());
        assert_eq!(stderr(&out).contains("deprecated"), flag == "--output");
    }
    let force = on(
        &tree,
        &["kubeconfig", "user", "--client-name", "alice", "--force"],
    );
    assert_eq!(force.status.code(), Some(2), "{}", stderr(&force));
    assert!(stderr(&force).contains("--out"), "{}", stderr(&force));
}

/// The value of the sample `metric{labels}` in a metrics file.
fn sample(metrics: &str, metric_and_labels: &str) -> Option<i64> {
    metrics.lines().find_map(|line| {
        line.strip_prefix(metric_and_labels)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

#[test]
fn issue_24_renew_writes_its_metrics_after_renewing_and_on_failure() {
    let tree = due_tree();
    let metrics_file = tree.root().join("kubepki.prom");
    let metrics_arg = metrics_file.display().to_string();
    let out = on(
        &tree,
        &[
            "certs",
            "renew",
            "all",
            "--expiring-within",
            "30d",
            "--metrics-file",
            &metrics_arg,
        ],
    );
    assert_success(&out, "renew --metrics-file");
    let metrics = std::fs::read_to_string(&metrics_file).expect("metrics written");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let apiserver_ends = sample(
        &metrics,
        "kubepki_certificate_expiration_timestamp_seconds{name=\"apiserver\",ca=\"ca\"}",
    )
    .expect("apiserver's end");
    assert!(
        apiserver_ends > now + 300 * 86400,
        "the metrics show the date after the renewal:\n{metrics}"
    );
    let run = |metric: &str| sample(&metrics, &format!("{metric}{{command=\"renew\"}}"));
    assert_eq!(run("kubepki_last_run_success"), Some(1), "{metrics}");
    assert_eq!(
        run("kubepki_last_run_renewed_certificates"),
        Some(12),
        "{metrics}"
    );
    let ran_at = run("kubepki_last_run_timestamp_seconds").expect("run time");
    assert!((now - 60..=now + 1).contains(&ran_at), "{metrics}");
    assert_eq!(
        sample(&metrics, "kubepki_audit_findings{severity=\"error\"}"),
        Some(0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "kubepki_rotation_in_progress{name=\"ca\"}"),
        Some(0),
        "{metrics}"
    );

    std::fs::remove_file(tree.pki().join("apiserver.crt")).expect("removing");
    let failed = on(
        &tree,
        &[
            "certs",
            "renew",
            "apiserver",
            "--metrics-file",
            &metrics_arg,
        ],
    );
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    let metrics = std::fs::read_to_string(&metrics_file).expect("metrics written");
    assert_eq!(
        sample(&metrics, "kubepki_last_run_success{command=\"renew\"}"),
        Some(0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "kubepki_certificate_missing{name=\"apiserver\",ca=\"ca\"}"
        ),
        Some(1),
        "{metrics}"
    );
}

#[test]
fn issue_24_check_expiration_metrics_show_rotations_audit_and_the_kubelet() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let kubelet_dir = tree.root().join("kubelet-pki");
    std::fs::create_dir(&kubelet_dir).expect("mkdir");
    let kubelet_arg = kubelet_dir.display().to_string();
    let serving = on(
        &tree,
        &[
            "kubelet",
            "serving-cert",
            "--node-name",
            "w1",
            "--node-ip",
            "10.0.0.21",
            "--out-dir",
            &kubelet_arg,
        ],
    );
    assert_success(&serving, "kubelet serving-cert");
    assert_success(
        &on(&tree, &["certs", "rotate-ca", "front-proxy-ca", "trust"]),
        "rotate-ca trust",
    );
    std::fs::remove_file(tree.root().join("scheduler.conf")).expect("removing");
    let metrics_file = tree.root().join("check.prom");
    let metrics_arg = metrics_file.display().to_string();
    let out = on(
        &tree,
        &[
            "certs",
            "check-expiration",
            "--kubelet-cert-dir",
            &kubelet_arg,
            "--metrics-file",
            &metrics_arg,
        ],
    );
    assert_success(&out, "check-expiration --metrics-file");
    let metrics = std::fs::read_to_string(&metrics_file).expect("metrics written");
    for (sample_of, value) in [
        ("kubepki_rotation_in_progress{name=\"front-proxy-ca\"}", 1),
        ("kubepki_rotation_in_progress{name=\"ca\"}", 0),
        ("kubepki_last_run_success{command=\"check-expiration\"}", 1),
    ] {
        assert_eq!(
            sample(&metrics, sample_of),
            Some(value),
            "{sample_of}\n{metrics}"
        );
    }
    assert!(
        sample(&metrics, "kubepki_audit_findings{severity=\"error\"}").is_some_and(|n| n > 0),
        "the missing scheduler.conf is an audit error:\n{metrics}"
    );
    assert!(
        metrics.lines().any(|l| l
            .starts_with("kubepki_certificate_expiration_timestamp_seconds{name=\"kubelet")
            && !l.contains("name=\"kubelet.conf\"")),
        "the kubelet's serving certificate has a row:\n{metrics}"
    );
}

#[test]
fn issue_24_token_delete_says_how_to_delete_the_secret_in_the_cluster() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let token = "abcdef.0123456789abcdef";
    assert_success(&on(&tree, &["token", "create", token]), "token create");
    let list = on(&tree, &["token", "list"]);
    assert_success(&list, "token list");
    assert!(stderr(&list).contains("on this host"), "{}", stderr(&list));
    let deleted = on(&tree, &["token", "delete", "abcdef"]);
    assert_success(&deleted, "token delete");
    assert!(
        stdout(&deleted).contains("kubectl -n kube-system delete secret bootstrap-token-abcdef\n"),
        "{}",
        stdout(&deleted)
    );
}

#[test]
fn issue_24_kubelet_repair_prints_a_key_only_with_out_dash_and_keeps_a_generation() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let none = tree.root().join("no-kubelet-dir").display().to_string();
    let repair = [
        "kubelet",
        "repair",
        "--node-name",
        "cp1",
        "--kubelet-cert-dir",
        &none,
    ];
    let before = tree.snapshot();
    let refused = on(&tree, &repair);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(!stdout(&refused).contains("client-key-data"));
    assert!(stderr(&refused).contains("--out -"), "{}", stderr(&refused));
    assert_eq!(tree.snapshot(), before, "a refusal writes nothing");
    let printed = on(&tree, &[&repair[..], &["--out", "-"]].concat());
    assert_success(&printed, "repair --out -");
    assert!(stdout(&printed).contains("client-key-data"));

    let live = tree.root().join("kubelet.conf");
    let old = std::fs::read(&live).expect("kubelet.conf");
    let live_arg = live.display().to_string();
    let replaced = on(
        &tree,
        &[&repair[..], &["--out", &live_arg, "--force"]].concat(),
    );
    assert_success(&replaced, "repair --out kubelet.conf --force");
    assert_ne!(std::fs::read(&live).expect("kubelet.conf"), old);
    let generations = json(&on(&tree, &["certs", "generations", "-o", "json"]));
    let kept = generations["generations"]
        .as_array()
        .and_then(|all| all.last())
        .and_then(|g| g["path"].as_str())
        .expect("a generation");
    assert_eq!(
        std::fs::read(Path::new(kept).join("kubelet.conf")).expect("kept"),
        old,
        "{generations:#}"
    );
    assert!(stdout(&replaced).contains(kept), "{}", stdout(&replaced));
}

#[test]
fn issue_24_rollback_dry_run_writes_nothing() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    tree.renew_all();
    let before = tree.snapshot();
    let dry = on(&tree, &["certs", "rollback", "--dry-run"]);
    assert_success(&dry, "rollback --dry-run");
    assert!(
        stdout(&dry).contains("[rollback] apiserver would be restored from generation"),
        "{}",
        stdout(&dry)
    );
    assert_eq!(tree.snapshot(), before, "a dry run writes nothing");
    let real = on(&tree, &["certs", "rollback"]);
    assert_success(&real, "rollback");
    assert_ne!(tree.snapshot(), before);
}

#[test]
fn issue_24_help_texts_say_what_the_commands_do() {
    let help = |args: &[&str]| stdout(&kubepki(&[args, &["--help"]].concat()));
    let config = help(&["kubelet", "config"]);
    assert!(config.contains("mode 0644"), "{config}");
    assert!(!config.contains("0600"), "{config}");
    let rollback = help(&["certs", "rollback"]);
    assert!(
        rollback.contains("The generation to undo") && rollback.contains("--dry-run"),
        "{rollback}"
    );
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let file = tree.root().join("kubelet-config.yaml");
    let file_arg = file.display().to_string();
    assert_success(
        &on(&tree, &["kubelet", "config", "--out", &file_arg]),
        "kubelet config --out",
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file)
        .expect("written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
}

#[test]
fn issue_24_join_timeout_message_is_true_and_leads_with_the_cause() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let worker = TempTree::new();
    let started = Instant::now();
    let out = on(
        &worker,
        &[
            "join",
            &format!("127.0.0.1:{closed}"),
            "--token",
            "abcdef.0123456789abcdef",
            "--discovery-token-unsafe-skip-ca-verification",
            "--discovery-timeout",
            "3s",
        ],
    );
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(out.status.code(), Some(1));
    let error = stderr(&out)
        .lines()
        .find(|l| l.starts_with("kubepki: error: "))
        .expect("an error line")
        .to_string();
    assert!(
        error.starts_with(&format!(
            "kubepki: error: reading cluster-info from https://127.0.0.1:{closed}/: GET https://127.0.0.1:{closed}/"
        )),
        "{error}"
    );
    assert!(
        !error.contains("signed") && !error.contains("signature"),
        "{error}"
    );
    let gave_up: f64 = error
        .split("gave up after ")
        .nth(1)
        .and_then(|rest| rest.split('s').next())
        .and_then(|secs| secs.parse().ok())
        .unwrap_or_else(|| panic!("no time in {error}"));
    assert!(gave_up <= elapsed + 0.05, "{gave_up} > {elapsed}: {error}");
    assert!(
        error.contains("past the discovery timeout of 3s"),
        "{error}"
    );
}

/// The metrics describe the tree the renewal worked on: with only `--kubeconfig-dir`, the
/// cert dir comes from the tree's recorded configuration, for the renewal and the metrics
/// alike, also when the renewal fails.
#[test]
fn renew_metrics_read_the_cert_dir_the_record_names() {
    let tree = due_tree();
    let metrics_file = tree.root().join("kubepki.prom");
    let metrics_arg = metrics_file.display().to_string();
    let kubeconfig_dir = tree.root().display().to_string();
    let renew = |names: &[&str]| {
        let mut args = vec!["certs", "renew"];
        args.extend(names);
        args.extend([
            "--kubeconfig-dir",
            &kubeconfig_dir,
            "--metrics-file",
            &metrics_arg,
        ]);
        kubepki(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    };
    let out = renew(&["all", "--expiring-within", "30d"]);
    assert_success(&out, "renew with the record's cert dir");
    let metrics = std::fs::read_to_string(&metrics_file).expect("metrics written");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let apiserver_ends = sample(
        &metrics,
        "kubepki_certificate_expiration_timestamp_seconds{name=\"apiserver\",ca=\"ca\"}",
    )
    .expect("apiserver's end, from the renewed tree");
    assert!(apiserver_ends > now + 300 * 86400, "{metrics}");

    std::fs::remove_file(tree.pki().join("apiserver.crt")).expect("removing");
    let failed = renew(&["apiserver"]);
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    let metrics = std::fs::read_to_string(&metrics_file).expect("metrics written");
    assert_eq!(
        sample(
            &metrics,
            "kubepki_certificate_missing{name=\"apiserver\",ca=\"ca\"}"
        ),
        Some(1),
        "{metrics}"
    );
}
