//! `kubepki join`: discover the cluster (token or file), then write the worker's `ca.crt` and
//! `bootstrap-kubelet.conf`. Everything is checked before the first write.

use super::lock_tree;
use super::token::parse_token;
use crate::cli::{JoinArgs, SecretArg, UsageError};
use crate::cluster::bootstrap::{BOOTSTRAP_KUBECONFIG, BootstrapToken, bootstrap_kubeconfig};
use crate::cluster::discovery::{self, Discovered, TokenDiscovery};
use crate::config;
use crate::net::https::HttpsUrl;
use crate::net::netaddr::https_url;
use crate::profile::by_name;
use crate::report::{JoinReport, detail, note, print_join, warn};
use crate::tree::TreeDirs;
use crate::tree::store::{self, FileWrite};
use anyhow::{Result, anyhow, bail};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// The API server port when ENDPOINT has none.
const DEFAULT_PORT: u16 = 6443;

/// How long discovery keeps trying by default (kubeadm's).
const DEFAULT_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs join.
pub fn run(flags: &JoinArgs, verbose: u8) -> Result<ExitCode> {
    let merged = with_config(flags)?;
    let args = &merged;
    let dirs = args.tree.dirs();
    let tls_token = token_flag(
        args,
        args.tls_bootstrap_token.as_ref().map(SecretArg::expose),
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
    let _lock = lock_tree(&dirs, &args.lock)?;
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
    match (specific, args.token.as_ref().map(SecretArg::expose)) {
        (Some(text), _) => parse_token(text, flag).map(Some),
        (None, Some(text)) => parse_token(text, "--token").map(Some),
        (None, None) => Ok(None),
    }
}

/// The flags, with what they leave unset taken from `--config`'s JoinConfiguration (a
/// `--token` flag counts as setting both tokens).
fn with_config(flags: &JoinArgs) -> Result<JoinArgs> {
    let mut args = flags.clone();
    let Some(path) = &flags.config else {
        return Ok(args);
    };
    let (join, notes) = config::load_join(path)?;
    for line in &notes {
        note("config", line);
    }
    let token_text = |token: &BootstrapToken| SecretArg::from(token.expose());
    let discovery = join.discovery;
    let mut file_token = None;
    if let Some(bootstrap) = discovery.bootstrap_token {
        args.endpoint = args.endpoint.take().or(bootstrap.api_server_endpoint);
        if args.pins.is_empty() {
            args.pins = bootstrap.ca_cert_hashes;
        }
        args.discovery_token_unsafe_skip_ca_verification |= bootstrap.unsafe_skip_ca_verification;
        file_token = bootstrap.token;
    }
    if args.token.is_none() {
        args.discovery_token = args
            .discovery_token
            .take()
            .or(file_token.as_ref().map(token_text));
        let tls = discovery.tls_bootstrap_token.or(file_token);
        args.tls_bootstrap_token = args
            .tls_bootstrap_token
            .take()
            .or(tls.as_ref().map(token_text));
    }
    if args.endpoint.is_none() && args.discovery_file.is_none() {
        let source = discovery.file.map(|f| {
            f.parse()
                .map_err(|e: String| anyhow!("{}: discovery.file: {e}", path.display()))
        });
        args.discovery_file = source.transpose()?;
    }
    args.discovery_timeout = args.discovery_timeout.or(discovery.timeout);
    args.node_name = args.node_name.take().or(join.node_name);
    if args.tree.cert_dir.is_none() {
        args.tree.cert_dir = join
            .ca_cert_path
            .map(|ca| cert_dir_of(path, &ca))
            .transpose()?;
    }
    Ok(args)
}

/// The cert dir a `caCertPath` implies: kubepki writes `<cert-dir>/ca.crt`.
fn cert_dir_of(config: &Path, ca_cert_path: &Path) -> Result<std::path::PathBuf> {
    match (ca_cert_path.file_name(), ca_cert_path.parent()) {
        (Some(name), Some(dir)) if name == "ca.crt" => Ok(dir.to_path_buf()),
        _ => bail!(
            "{}: caCertPath {} must name a file ca.crt (kubepki writes <cert-dir>/ca.crt)",
            config.display(),
            ca_cert_path.display()
        ),
    }
}

fn discover(args: &JoinArgs, verbose: u8) -> Result<Discovered> {
    let timeout = args
        .discovery_timeout
        .map_or(DEFAULT_DISCOVERY_TIMEOUT, |d| {
            Duration::from_secs(d.as_secs())
        });
    let on_retry =
        |e: &anyhow::Error| detail(verbose, format_args!("[discovery] will try again: {e:#}"));
    if let Some(source) = &args.discovery_file {
        return discovery::by_file(source, timeout, &on_retry);
    }
    let endpoint = args
        .endpoint
        .as_ref()
        .ok_or_else(|| UsageError("pass ENDPOINT (token discovery) or --discovery-file".into()))?;
    let discovery_token = args.discovery_token.as_ref().map(SecretArg::expose);
    let token = token_flag(args, discovery_token, "--discovery-token")?
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
