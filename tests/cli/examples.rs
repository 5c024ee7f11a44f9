//! The scripts in `examples/` run against the built binary, so they cannot rot.

use crate::support::{assert_success, require_tool};
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
