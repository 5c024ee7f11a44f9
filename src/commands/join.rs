//! `kubepki join`: discover the cluster (token or file), then write the worker's `ca.crt` and
//! `bootstrap-kubelet.conf`. Everything is checked before the first write.

use super::lock_tree;
use crate::cli::JoinArgs;
use crate::config;
use crate::engine::join::{discover, write_worker_files};
use crate::report::{JoinReport, detail, note, print_join, retrying, warn};
use crate::spec::{Discovery, JoinSpec};
use crate::tree::TreeDirs;
use anyhow::Result;
use std::process::ExitCode;

/// Runs join.
pub fn run(args: &JoinArgs, verbose: u8) -> Result<ExitCode> {
    let mut input = args.input()?;
    if let Some(path) = &args.config {
        let (file, notes) = config::load_join(path)?;
        for line in &notes {
            note("config", line);
        }
        input = config::merge_join(path, file, input)?;
    }
    let spec = JoinSpec::resolve(input)?;
    let dirs = TreeDirs::new(spec.cert_dir.clone(), args.tree.kubeconfig_dir.clone());
    if let Discovery::Token {
        endpoint, token, ..
    } = &spec.discovery
    {
        let id = token.id();
        detail(
            verbose,
            format_args!("[discovery] token id {id:?}, API server {endpoint}"),
        );
    }
    let on_retry = |e: &anyhow::Error, wait: std::time::Duration| retrying(e, wait);
    let discovered = discover(&spec, &on_retry)?;
    for warning in &discovered.warnings {
        warn(warning);
    }
    let _lock = lock_tree(&dirs, &args.lock)?;
    let joined = write_worker_files(&dirs, &discovered, &spec.tls_bootstrap_token)?;
    print_join(&JoinReport {
        ca: joined.ca,
        ca_written: joined.ca_written,
        kubeconfig: joined.kubeconfig,
        server: discovered.server,
        node_name: spec.node_name.as_ref().map(|n| n.as_str().to_string()),
    })?;
    Ok(ExitCode::SUCCESS)
}
