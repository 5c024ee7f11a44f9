//! The Debian package (`scripts/package-deb`) built around the test binary (a debug build:
//! the release build's LTO would cost minutes; the packaging is the same), unpacked into a
//! throwaway root with `dpkg -x`, and used from there: the installed binary runs, `man -l`
//! renders its pages, the completions are the binary's, and the commands of the systemd
//! units run against a tree.

use crate::support::{TempTree, assert_success, require_tool};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const INSTALL_DPKG: &str = "apt-get update && apt-get install -y dpkg man-db";

/// Builds the package into `out` and unpacks it into `root`; returns the .deb.
fn build_and_unpack(out: &Path, root: &Path) -> PathBuf {
    require_tool("dpkg-deb", INSTALL_DPKG);
    let built = Command::new(format!(
        "{}/scripts/package-deb",
        env!("CARGO_MANIFEST_DIR")
    ))
    .arg(env!("CARGO_BIN_EXE_kubepki"))
    .arg(out)
    .env("DEB_COMPRESSION", "none")
    .output()
    .expect("running scripts/package-deb");
    assert_success(&built, "scripts/package-deb");
    let deb = PathBuf::from(String::from_utf8_lossy(&built.stdout).trim());
    let unpacked = Command::new(require_tool("dpkg", INSTALL_DPKG))
        .arg("-x")
        .arg(&deb)
        .arg(root)
        .output()
        .expect("running dpkg -x");
    assert_success(&unpacked, "dpkg -x");
    deb
}

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn issue_24_the_debian_package_installs_a_working_tool_pages_and_units() {
    let work = tempfile::tempdir().expect("temp dir");
    let root = work.path().join("root");
    let deb = build_and_unpack(&work.path().join("out"), &root);
    let info = run(
        &require_tool("dpkg-deb", INSTALL_DPKG),
        &["--field", &deb.display().to_string(), "Package", "Version"],
    );
    assert_success(&info, "dpkg-deb --field");
    assert_eq!(
        text(&info.stdout),
        format!("Package: kubepki\nVersion: {}\n", env!("CARGO_PKG_VERSION"))
    );

    let kubepki = root.join("usr/bin/kubepki");
    let version = run(&kubepki, &["--version"]);
    assert_success(&version, "the installed kubepki --version");
    assert_eq!(
        text(&version.stdout),
        format!("kubepki {}\n", env!("CARGO_PKG_VERSION"))
    );

    let page = root.join("usr/share/man/man1/kubepki-certs-renew.1.gz");
    let man = Command::new(require_tool("man", INSTALL_DPKG))
        .arg("-l")
        .arg(&page)
        .env("MANWIDTH", "200")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .expect("running man -l");
    assert_success(&man, "man -l");
    let rendered = text(&man.stdout);
    for expected in [
        "kubepki-certs-renew",
        "--detailed-exit-code",
        "--metrics-file",
    ] {
        assert!(rendered.contains(expected), "{expected} in\n{rendered}");
    }
    let pages = std::fs::read_dir(root.join("usr/share/man/man1"))
        .expect("man1")
        .count();
    let checked_in = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("man"))
        .expect("man/")
        .count();
    assert_eq!(pages, checked_in, "one page per command");

    let bash = std::fs::read_to_string(root.join("usr/share/bash-completion/completions/kubepki"))
        .expect("bash completion");
    assert!(bash.contains("complete -F _kubepki"), "{bash}");
    for file in [
        "usr/share/zsh/vendor-completions/_kubepki",
        "usr/share/fish/vendor_completions.d/kubepki.fish",
        "usr/share/doc/kubepki/copyright",
        "usr/share/doc/kubepki/examples/kubepki.cron",
    ] {
        assert!(root.join(file).is_file(), "{file}");
    }
    units_run_against_a_tree(&root);
}

/// The value of `key=` in a unit file.
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in\n{unit}"))
        .to_string()
}

/// Runs the service's ExecStart (the packaged job, with the packaged binary first on PATH)
/// on a tree whose certificates are due, then the failure unit's.
fn units_run_against_a_tree(root: &Path) {
    let units = root.join("usr/lib/systemd/system");
    let read = |name: &str| std::fs::read_to_string(units.join(name)).expect(name);
    let service = read("kubepki-renew.service");
    let timer = read("kubepki-renew.timer");
    assert_eq!(unit_value(&timer, "RandomizedDelaySec"), "1h");
    assert_eq!(
        unit_value(&service, "OnFailure"),
        "kubepki-renew-failed.service"
    );
    let exec = unit_value(&service, "ExecStart");
    assert_eq!(exec, "/usr/sbin/kubepki-renew", "the packaged path");
    let job = root.join(exec.trim_start_matches('/'));

    let tree = TempTree::new();
    tree.init("ECDSA-P256", &["--cert-validity", "10d"]);
    let metrics = tree.root().join("kubepki.prom");
    let path = format!(
        "{}:{}",
        root.join("usr/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let job_run = |tree: &TempTree| {
        Command::new(&job)
            .env("PATH", &path)
            .env_remove("KUBEPKI")
            .env("CERT_DIR", tree.pki())
            .env("KUBECONFIG_DIR", tree.root())
            .env("METRICS_FILE", &metrics)
            .env("RESTART_CMD", "echo restarted")
            .output()
            .expect("running the packaged job")
    };
    let renewed = job_run(&tree);
    assert_success(&renewed, "the service's ExecStart");
    let stdout = text(&renewed.stdout);
    assert!(stdout.contains("restarted kube-apiserver\n"), "{stdout}");
    let written = std::fs::read_to_string(&metrics).expect("metrics");
    assert!(
        written.contains("kubepki_last_run_renewed_certificates{command=\"renew\"} 12"),
        "{written}"
    );
    let quiet = job_run(&tree);
    assert_success(&quiet, "the service's ExecStart, nothing due");
    assert_eq!(
        (text(&quiet.stdout), text(&quiet.stderr)),
        (String::new(), String::new())
    );

    let failed = read("kubepki-renew-failed.service");
    let command = unit_value(&failed, "ExecStart");
    let (program, message) = command.split_once(' ').expect("a program and its argument");
    let said = run(Path::new(program), &[message.trim_matches('"')]);
    assert!(text(&said.stdout).starts_with("<3>kubepki-renew.service failed"));
}
