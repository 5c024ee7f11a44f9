//! `kubepki join`: discover the cluster (token or file), then write the worker's `ca.crt` and
//! `bootstrap-kubelet.conf`. Everything is checked before the first write.

use super::token::parse_token;
use crate::bootstrap::{BOOTSTRAP_KUBECONFIG, BootstrapToken, bootstrap_kubeconfig};
use crate::cli::{JoinArgs, UsageError};
use crate::discovery::{self, Discovered, TokenDiscovery};
use crate::https::HttpsUrl;
use crate::netaddr::https_url;
use crate::profile::by_name;
use crate::report::{JoinReport, detail, print_join, warn};
use crate::spec::TreeDirs;
use crate::store::{self, FileWrite};
use anyhow::{Result, anyhow, bail};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// The API server port when ENDPOINT has none.
const DEFAULT_PORT: u16 = 6443;

/// Runs join.
pub fn run(args: &JoinArgs, verbose: u8) -> Result<ExitCode> {
    let dirs = TreeDirs::from_args(&args.tree);
    let tls_token = token_flag(
        args,
        args.tls_bootstrap_token.as_deref(),
        "--tls-bootstrap-token",
    )?
    .ok_or_else(|| {
        UsageError(
            "bootstrap-kubelet.conf needs a token: pass --token or --tls-bootstrap-token".into(),
        )
    })?;
    let discovered = discover(args, verbose)?;
    for warning in &discovered.warnings {
        warn(warning);
    }
    let files = join_files(&dirs, &discovered, &tls_token)?;
    if let Some(ca) = &files.ca {
        store::create_all(std::slice::from_ref(ca))?;
    }
    store::replace(&files.kubeconfig)?;
    print_join(&JoinReport {
        ca: dirs.cert_dir.join(&files.ca_rel),
        ca_written: files.ca.is_some(),
        kubeconfig: files.kubeconfig.path(),
        server: discovered.server,
        node_name: args.node_name.as_ref().map(|n| n.as_str().to_string()),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `flag` if given, else `--token`; parsed without ever quoting it.
fn token_flag(
    args: &JoinArgs,
    specific: Option<&str>,
    flag: &str,
) -> Result<Option<BootstrapToken>> {
    match (specific, args.token.as_deref()) {
        (Some(text), _) => parse_token(text, flag).map(Some),
        (None, Some(text)) => parse_token(text, "--token").map(Some),
        (None, None) => Ok(None),
    }
}

fn discover(args: &JoinArgs, verbose: u8) -> Result<Discovered> {
    let timeout = Duration::from_secs(args.discovery_timeout.as_secs());
    let on_retry =
        |e: &anyhow::Error| detail(verbose, format_args!("[discovery] will try again: {e:#}"));
    if let Some(source) = &args.discovery_file {
        return discovery::by_file(source, timeout, &on_retry);
    }
    let endpoint = args
        .endpoint
        .as_ref()
        .ok_or_else(|| UsageError("pass ENDPOINT (token discovery) or --discovery-file".into()))?;
    let token = token_flag(args, args.discovery_token.as_deref(), "--discovery-token")?
        .ok_or_else(|| UsageError("token discovery needs --token or --discovery-token".into()))?;
    if args.pins.is_empty() && !args.discovery_token_unsafe_skip_ca_verification {
        return Err(UsageError(
            "token discovery without --discovery-token-ca-cert-hash would trust any server: pass the CA pin (kubepki certs ca-cert-hash on the control plane), or --discovery-token-unsafe-skip-ca-verification".into(),
        )
        .into());
    }
    let url: HttpsUrl = https_url(&endpoint.host, endpoint.port.unwrap_or(DEFAULT_PORT))
        .parse()
        .map_err(anyhow::Error::msg)?;
    detail(
        verbose,
        format_args!("[discovery] token id {:?}, API server {url}", token.id()),
    );
    discovery::by_token(
        &TokenDiscovery {
            endpoint: url,
            token: &token,
            pins: &args.pins,
            timeout,
        },
        &on_retry,
    )
}

/// What join writes.
struct JoinFiles {
    /// `ca.crt` below the cert dir.
    ca_rel: std::path::PathBuf,
    /// `ca.crt`, unless the same one is already there.
    ca: Option<FileWrite>,
    /// `bootstrap-kubelet.conf`, always (over)written as kubeadm does.
    kubeconfig: FileWrite,
}

/// The files to write; an existing `ca.crt` other than the discovered one is refused.
fn join_files(
    dirs: &TreeDirs,
    discovered: &Discovered,
    token: &BootstrapToken,
) -> Result<JoinFiles> {
    let ca_rel = by_name("ca")
        .and_then(|ca| ca.cert_file())
        .ok_or_else(|| anyhow!("internal error: no ca row"))?;
    let ca = match store::read_optional(&dirs.cert_dir, Path::new(&ca_rel))? {
        Some(existing) if existing == discovered.ca_pem => None,
        Some(_) => bail!(
            "{} exists and is not the CA of the discovered cluster; refusing to replace it",
            dirs.cert_dir.join(&ca_rel).display()
        ),
        None => Some(FileWrite {
            root: dirs.cert_dir.clone(),
            rel: ca_rel.clone(),
            content: discovered.ca_pem.clone(),
            mode: store::PUBLIC_MODE,
        }),
    };
    let kubeconfig = FileWrite {
        root: dirs.kubeconfig_dir.clone(),
        rel: BOOTSTRAP_KUBECONFIG.into(),
        content: bootstrap_kubeconfig(&discovered.server, &discovered.ca_pem, token)?.into_bytes(),
        mode: store::SECRET_MODE,
    };
    Ok(JoinFiles {
        ca_rel,
        ca,
        kubeconfig,
    })
}
