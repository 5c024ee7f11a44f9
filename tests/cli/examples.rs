//! The scripts in `examples/` run against the built binary, so they cannot rot.

use crate::support::{TempTree, assert_success, kubepki, require_tool};
use std::process::Command;

fn run_example(script: &str) {
    require_tool("openssl", "apt-get update && apt-get install -y openssl");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new("bash")
        .arg(format!("{}/examples/{script}", env!("CARGO_MANIFEST_DIR")))
        .arg(dir.path())
        .env("KUBEPKI", env!("CARGO_BIN_EXE_kubepki"))
        .output()
        .expect("running bash");
    assert_success(&out, script);
}

#[test]
fn init_and_verify_example_runs() {
    run_example("init-and-verify.sh");
}

#[test]
fn ha_control_plane_example_runs() {
    run_example("ha-control-plane.sh");
}

/// Runs the cron job of `examples/cron` on `tree`; returns its output.
fn cron_job(tree: &TempTree) -> std::process::Output {
    let metrics = tree.root().join("kubepki.prom");
    Command::new(format!(
        "{}/examples/cron/kubepki-renew",
        env!("CARGO_MANIFEST_DIR")
    ))
    .env("KUBEPKI", env!("CARGO_BIN_EXE_kubepki"))
    .env("CERT_DIR", tree.pki())
    .env("KUBECONFIG_DIR", tree.root())
    .env("METRICS_FILE", metrics)
    .env("RESTART_CMD", "echo restarted")
    .output()
    .expect("running the cron job")
}

/// check-expiration's exit status for a window.
fn fail_within(tree: &TempTree, window: &str) -> Option<i32> {
    let mut args = vec![
        "certs".to_string(),
        "check-expiration".into(),
        "--fail-within".into(),
        window.into(),
    ];
    args.extend(tree.dir_args());
    kubepki(&args).status.code()
}

#[test]
fn the_cron_job_keeps_a_tree_valid_across_simulated_years() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let quiet = cron_job(&tree);
    assert_success(&quiet, "cron job with nothing due");
    assert!(!String::from_utf8_lossy(&quiet.stdout).contains("restarted"));
    for year in 1..=3 {
        // A year passes: every leaf is now 10 days from expiry.
        let mut args = vec![
            "certs".to_string(),
            "renew".into(),
            "all".into(),
            "--cert-validity".into(),
            "10d".into(),
        ];
        args.extend(tree.dir_args());
        assert_success(&kubepki(&args), "ageing the tree");
        assert_eq!(
            fail_within(&tree, "14d"),
            Some(3),
            "year {year}: not due before the job"
        );
        let out = cron_job(&tree);
        assert_success(&out, "cron job");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout.matches(" renewed\n").count(),
            12,
            "year {year}: {stdout}"
        );
        assert!(stdout.contains("restarted"), "year {year}: {stdout}");
        assert_eq!(
            fail_within(&tree, "300d"),
            Some(0),
            "year {year}: still due after the job"
        );
        assert!(
            std::fs::read_to_string(tree.root().join("kubepki.prom"))
                .unwrap()
                .contains("kubepki_certificate_expiration_timestamp_seconds")
        );
    }
}

#[test]
fn the_systemd_condition_proceeds_only_when_something_is_due() {
    let unit = std::fs::read_to_string(format!(
        "{}/examples/systemd/kubepki-renew.service",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let condition = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecCondition=/bin/sh -c '"))
        .expect("an ExecCondition")
        .trim_end_matches('\'');
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &["--cert-validity", "10d"]);
    let dirs = tree.dir_args().join(" ");
    let run = |tree_args: &str| {
        let script = condition.replace(
            "/usr/local/bin/kubepki certs check-expiration",
            &format!(
                "{} certs check-expiration {tree_args}",
                env!("CARGO_BIN_EXE_kubepki")
            ),
        );
        Command::new("sh")
            .args(["-c", &script])
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(run(&dirs), Some(0), "due: the service must run");
    tree.renew_all();
    assert_eq!(
        run(&dirs),
        Some(1),
        "nothing due: the service must be skipped"
    );
    assert_eq!(
        run("--cert-dir /nonexistent/pki --kubeconfig-dir /etc/hostname"),
        Some(255),
        "an error must fail the unit"
    );
}
