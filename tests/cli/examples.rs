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
    assert_eq!(
        (quiet.stdout.as_slice(), quiet.stderr.as_slice()),
        (&b""[..], &b""[..]),
        "nothing due: the job is silent (cron mails what it prints)"
    );
    let metrics_file = tree.root().join("kubepki.prom");
    let metrics = std::fs::read_to_string(&metrics_file).expect("metrics even when nothing is due");
    assert!(
        metrics.contains("kubepki_last_run_success{command=\"renew\"} 1"),
        "{metrics}"
    );
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
        // Only the components that read a renewed file, one at a time, each once.
        let components = [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubelet",
        ];
        for component in components {
            assert_eq!(
                stdout.matches(&format!("restarted {component}\n")).count(),
                1,
                "year {year}: {stdout}"
            );
        }
        assert_eq!(
            stdout.matches("restarted ").count(),
            5,
            "year {year}: {stdout}"
        );
        assert_eq!(
            fail_within(&tree, "300d"),
            Some(0),
            "year {year}: still due after the job"
        );
        // The metrics were written after the renewal: they show the new dates.
        let metrics = std::fs::read_to_string(&metrics_file).expect("metrics");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let apiserver_ends: i64 = metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(
                    "kubepki_certificate_expiration_timestamp_seconds{name=\"apiserver\",ca=\"ca\"} ",
                )
            })
            .and_then(|v| v.parse().ok())
            .expect("apiserver's end in the metrics");
        assert!(apiserver_ends > now + 300 * 86400, "year {year}: {metrics}");
        assert!(
            metrics.contains("kubepki_last_run_renewed_certificates{command=\"renew\"} 12"),
            "year {year}: {metrics}"
        );
    }
}

#[test]
fn the_systemd_units_renew_first_spread_out_and_report_failure() {
    let read = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/examples/systemd/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let service = read("kubepki-renew.service");
    assert!(
        !service.contains("ExecCondition"),
        "a condition would skip the metrics of the runs with nothing due:\n{service}"
    );
    assert!(
        service.contains("\nExecStart=/usr/local/sbin/kubepki-renew\n"),
        "{service}"
    );
    assert!(
        service.contains("\nOnFailure=kubepki-renew-failed.service\n"),
        "{service}"
    );
    let timer = read("kubepki-renew.timer");
    assert!(timer.contains("\nRandomizedDelaySec="), "{timer}");
    let failed = read("kubepki-renew-failed.service");
    let command = failed
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart");
    let words: Vec<&str> = command.splitn(2, ' ').collect();
    let out = Command::new(words[0])
        .arg(words[1].trim_matches('"'))
        .output()
        .expect("running the failure unit's command");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("<3>kubepki-renew.service failed"),
        "priority err in the journal"
    );
}
