//! The join side of bootstrapping: find the cluster's CA and server as kubeadm does, by token
//! discovery (unverified fetch of `cluster-info`, JWS check with the token, CA pin check keeping
//! only the pinned certificates, then a second fetch over TLS verified with those that must
//! return the same kubeconfig) or by file discovery (a kubeconfig on disk or at an `https://`
//! URL, refreshed from `cluster-info`).
//! Transient failures are retried with back-off until the discovery timeout, which is a
//! deadline for the whole discovery: no attempt is given more than the time left. An answer
//! over the size caps of `net::https` ends discovery at once. Writes nothing, prints nothing:
//! warnings come back to the caller.

use crate::cluster::bootstrap::BootstrapToken;
use crate::cluster::jws;
use crate::cluster::kubeconfig::{ClusterRef, select_cluster};
use crate::net::file;
use crate::net::https::{self, HttpsUrl, Trust};
use crate::pki::inspect::CertInfo;
use crate::pki::pem;
use crate::pki::pin::CaPin;
use anyhow::{Context, Result, anyhow, bail};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The API path of the `cluster-info` ConfigMap.
const CLUSTER_INFO_PATH: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// kubeadm polls every 5 s; back-off grows up to that.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The most one attempt may take, however much of the discovery timeout is left.
const MAX_ATTEMPT: Duration = Duration::from_secs(10);
/// The least one attempt is given, so that even a zero timeout makes one real attempt.
const MIN_ATTEMPT: Duration = Duration::from_millis(100);

/// What discovery found: the cluster to bootstrap against.
#[derive(Debug)]
pub struct Discovered {
    /// The API server URL from the discovered kubeconfig.
    pub server: String,
    /// The cluster CA (may be a bundle): with pins, only the pinned certificates of what
    /// `cluster-info` holds; else verbatim.
    pub ca_pem: Vec<u8>,
    /// Things the user should know (unpinned CA, ignored cluster-info).
    pub warnings: Vec<String>,
}

/// Token discovery against `endpoint`.
pub struct TokenDiscovery<'a> {
    /// The API server to ask first.
    pub endpoint: HttpsUrl,
    /// The discovery token (its secret is the JWS key).
    pub token: &'a BootstrapToken,
    /// Accepted CA pins; empty only with the unsafe skip, which the caller checked.
    pub pins: &'a [CaPin],
    /// How long to keep trying.
    pub timeout: Duration,
}

/// How one attempt went wrong: worth another try, or final.
enum Failure {
    Retry(anyhow::Error),
    Fatal(anyhow::Error),
}

/// The `cluster-info` ConfigMap's data, or the status the server answered instead.
enum Fetched {
    Data(BTreeMap<String, String>),
    Status(u16),
}

/// Runs token discovery; `on_retry` hears about each failed attempt that will be retried, and
/// how long the wait before the next one is.
pub fn by_token(
    request: &TokenDiscovery<'_>,
    on_retry: &dyn Fn(&anyhow::Error, Duration),
) -> Result<Discovered> {
    let deadline = Instant::now() + request.timeout;
    let url = request.endpoint.with_path(CLUSTER_INFO_PATH);
    let id = request.token.id();
    let unverified = retry(deadline, request.timeout, on_retry, |limit| {
        signed_kubeconfig(&url, id, limit)
    })
    .with_context(|| format!("reading cluster-info from {}", request.endpoint))?;
    let (kubeconfig, signature) = unverified;
    if !jws::verify(
        &kubeconfig,
        id,
        request.token.secret().as_bytes(),
        &signature,
    ) {
        bail!(
            "failed to verify the JWS signature of cluster-info from {}: wrong token, or a tampered answer; can't trust this API server",
            request.endpoint
        );
    }
    let cluster = select_cluster(kubeconfig.as_bytes()).context("the cluster-info kubeconfig")?;
    let ca_pem = cluster
        .ca_pem
        .clone()
        .filter(|ca| !ca.is_empty())
        .ok_or_else(|| {
            anyhow!("the cluster-info kubeconfig holds no certificate-authority-data")
        })?;
    if request.pins.is_empty() {
        let warning = "the cluster CA was not verified (--discovery-token-unsafe-skip-ca-verification): anyone between this host and the API server could have impersonated it".to_string();
        return Ok(Discovered {
            server: cluster.server,
            ca_pem,
            warnings: vec![warning],
        });
    }
    let (ca_pem, warnings) = pinned_only(&ca_pem, request.pins)?;
    let trust = Trust::from_pem(&ca_pem).context("the cluster-info CA")?;
    let verified = retry(deadline, request.timeout, on_retry, |limit| {
        match fetch(&url, &trust, limit)? {
            Fetched::Data(mut data) => Ok(data.remove("kubeconfig").unwrap_or_default()),
            Fetched::Status(status) => Err(Failure::Retry(anyhow!("{url} answered HTTP {status}"))),
        }
    })
    .with_context(|| {
        format!(
            "cluster-info from {} over TLS verified with the pinned CA",
            request.endpoint
        )
    })?;
    if verified != kubeconfig {
        bail!(
            "the second cluster-info kubeconfig (fetched over verified TLS) differs from the first; can't trust this API server"
        );
    }
    Ok(Discovered {
        server: cluster.server,
        ca_pem,
        warnings,
    })
}

/// The `kubeconfig` and `jws-kubeconfig-<id>` of `cluster-info`, fetched without trusting the server.
fn signed_kubeconfig(
    url: &HttpsUrl,
    id: &str,
    limit: Duration,
) -> Result<(String, String), Failure> {
    let mut data = match fetch(url, &Trust::Nothing, limit)? {
        Fetched::Data(data) => data,
        Fetched::Status(status) => {
            return Err(Failure::Retry(anyhow!("{url} answered HTTP {status}")));
        }
    };
    let kubeconfig = data
        .remove("kubeconfig")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            Failure::Fatal(anyhow!(
                "{url} has no kubeconfig: this API server isn't set up for token bootstrapping"
            ))
        })?;
    let signature = data.remove(&format!("jws-kubeconfig-{id}")).ok_or_else(|| {
        Failure::Retry(anyhow!("token id {id:?} is invalid for this cluster or it has expired (cluster-info has no signature for it)"))
    })?;
    Ok((kubeconfig, signature))
}

/// The certificates of `ca_pem` that one of `pins` pins, as PEM, and a warning for each one
/// left out. Only those are trusted, for the verified fetch and on the host: a token holder
/// who served the real CA beside one of their own must not get theirs trusted too. None
/// pinned is an error.
fn pinned_only(ca_pem: &[u8], pins: &[CaPin]) -> Result<(Vec<u8>, Vec<String>)> {
    pem::first_certificate(ca_pem).context("the cluster-info CA")?;
    let (mut kept, mut warnings, mut found) = (String::new(), Vec::new(), Vec::new());
    for der in CertificateDer::pem_slice_iter(ca_pem) {
        let der = der.map_err(|e| {
            anyhow!(
                "the cluster-info CA: malformed PEM certificate block: {}",
                pem::describe(&e)
            )
        })?;
        let cert = CertInfo::parse(der).context("the cluster-info CA")?;
        let pin = CaPin::of(&cert);
        match pins.contains(&pin) {
            true => kept.push_str(&pem::encode("CERTIFICATE", &cert.der)),
            false => warnings.push(format!(
                "cluster-info also names a CA that no --discovery-token-ca-cert-hash pins (CN {:?}, {pin}); it is not trusted",
                cert.cn
            )),
        }
        found.push(pin.to_string());
    }
    if kept.is_empty() {
        bail!(
            "the cluster CA found in cluster-info is not the one pinned: none of its public keys [{}] matches --discovery-token-ca-cert-hash",
            found.join(", ")
        );
    }
    Ok((kept.into_bytes(), warnings))
}

/// GETs `cluster-info`: transport errors and unparsable answers are worth a retry; an answer
/// over the size caps, or a server certificate the trusted CA refuses, is not.
fn fetch(url: &HttpsUrl, trust: &Trust, limit: Duration) -> Result<Fetched, Failure> {
    let response = https::get(url, trust, limit).map_err(|e| {
        let fatal = e.is::<https::TooLarge>() || e.is::<https::RefusedServerCertificate>();
        let e = e.context(format!("GET {url}"));
        if fatal {
            Failure::Fatal(e)
        } else {
            Failure::Retry(e)
        }
    })?;
    if response.status != 200 {
        return Ok(Fetched::Status(response.status));
    }
    #[derive(serde::Deserialize)]
    struct ConfigMap {
        #[serde(default)]
        data: BTreeMap<String, String>,
    }
    serde_json::from_slice::<ConfigMap>(&response.body)
        .map(|cm| Fetched::Data(cm.data))
        .map_err(|e| {
            Failure::Retry(anyhow!(
                "{url} answered something that is not a ConfigMap: {e}"
            ))
        })
}

/// Calls `attempt` (with the time it may take: what is left before `deadline`, within
/// `MIN_ATTEMPT..=MAX_ATTEMPT`) until it succeeds, fails for good, or `deadline` passes; waits
/// between attempts, doubling up to `MAX_BACKOFF`.
fn retry<T>(
    deadline: Instant,
    timeout: Duration,
    on_retry: &dyn Fn(&anyhow::Error, Duration),
    mut attempt: impl FnMut(Duration) -> Result<T, Failure>,
) -> Result<T> {
    let mut backoff = FIRST_BACKOFF;
    let started = Instant::now();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let error = match attempt(remaining.clamp(MIN_ATTEMPT, MAX_ATTEMPT)) {
            Ok(value) => return Ok(value),
            Err(Failure::Fatal(error)) => return Err(error),
            Err(Failure::Retry(error)) => error,
        };
        if Instant::now() + backoff >= deadline {
            // The last failure is the cause, so it leads; the timing says why no more tries.
            return Err(anyhow!(
                "{error:#} (gave up after {:.1}s: the next try would have started past the \
                 discovery timeout of {})",
                started.elapsed().as_secs_f64(),
                crate::duration::Duration::from_secs(timeout.as_secs())
            ));
        }
        on_retry(&error, backoff);
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Where file discovery reads its kubeconfig.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscoverySource {
    /// A file (or `file://` URL).
    File(std::path::PathBuf),
    /// An `https://` URL, fetched trusting the system's roots.
    Url(HttpsUrl),
}

impl std::fmt::Display for DiscoverySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiscoverySource::File(path) => write!(f, "{}", path.display()),
            DiscoverySource::Url(url) => write!(f, "{url}"),
        }
    }
}

impl std::str::FromStr for DiscoverySource {
    type Err = String;

    fn from_str(text: &str) -> Result<DiscoverySource, String> {
        if text.starts_with("https://") {
            return text.parse().map(DiscoverySource::Url);
        }
        Ok(DiscoverySource::File(
            text.strip_prefix("file://").unwrap_or(text).into(),
        ))
    }
}

/// File discovery: the kubeconfig's cluster (unnamed, else the current context's), then a
/// refresh from `cluster-info` over TLS verified with its CA, as kubeadm's `ValidateConfigInfo`.
pub fn by_file(
    source: &DiscoverySource,
    timeout: Duration,
    on_retry: &dyn Fn(&anyhow::Error, Duration),
) -> Result<Discovered> {
    let deadline = Instant::now() + timeout;
    let (yaml, base_dir) = match source {
        DiscoverySource::File(path) => (
            file::read_named(path, file::MAX_FILE_BYTES)
                .map_err(|e| anyhow!("reading the discovery file {}: {e}", path.display()))?,
            path.parent().map(Path::to_path_buf).unwrap_or_default(),
        ),
        DiscoverySource::Url(url) => (fetch_discovery_url(url, deadline)?, Default::default()),
    };
    let cluster = select_cluster(&yaml).with_context(|| source.to_string())?;
    let ca_pem = file_ca(&cluster, &base_dir)?;
    let server: HttpsUrl = cluster
        .server
        .parse()
        .map_err(|e: String| anyhow!("{source}: server: {e}"))?;
    let trust = match &ca_pem {
        Some(ca) => Trust::from_pem(ca).with_context(|| format!("{source}: CA"))?,
        None => Trust::system()?,
    };
    let url = server.with_path(CLUSTER_INFO_PATH);
    let fetched = retry(deadline, timeout, on_retry, |limit| {
        match fetch(&url, &trust, limit)? {
            Fetched::Status(403) => Ok(None),
            Fetched::Status(status) => Err(Failure::Retry(anyhow!("{url} answered HTTP {status}"))),
            Fetched::Data(mut data) => Ok(data.remove("kubeconfig")),
        }
    })
    .with_context(|| format!("reading cluster-info from {server}"))?;
    refreshed(cluster, ca_pem, fetched).with_context(|| source.to_string())
}

/// Applies what `cluster-info` says to the file's cluster: a different server only warns, a
/// missing CA is taken from it.
fn refreshed(
    cluster: ClusterRef,
    ca_pem: Option<Vec<u8>>,
    cluster_info: Option<String>,
) -> Result<Discovered> {
    let mut warnings = Vec::new();
    let info = match cluster_info.map(|yaml| select_cluster(yaml.as_bytes())) {
        None => {
            warnings.push("could not read the cluster-info ConfigMap (Forbidden), but the TLS certificate is valid; proceeding with the discovery file".to_string());
            None
        }
        Some(Err(e)) => {
            warnings.push(format!("cluster-info isn't set up properly ({e:#}), but the TLS certificate is valid; proceeding with the discovery file"));
            None
        }
        Some(Ok(info)) => Some(info),
    };
    if let Some(info) = &info {
        if info.server != cluster.server {
            warnings.push(format!(
                "the API server {:?} of the discovery file differs from {:?} in cluster-info",
                cluster.server, info.server
            ));
        }
    }
    let ca_pem = ca_pem
        .or_else(|| info.and_then(|i| i.ca_pem))
        .filter(|ca| !ca.is_empty())
        .ok_or_else(|| anyhow!("the discovery file holds no CA, and cluster-info gave none"))?;
    Ok(Discovered {
        server: cluster.server,
        ca_pem,
        warnings,
    })
}

/// The CA of the discovery file's cluster: embedded, or a file (relative to the kubeconfig).
fn file_ca(cluster: &ClusterRef, base_dir: &Path) -> Result<Option<Vec<u8>>> {
    if let Some(ca) = cluster.ca_pem.clone().filter(|ca| !ca.is_empty()) {
        return Ok(Some(ca));
    }
    cluster
        .ca_file
        .as_ref()
        .map(|file| {
            let path = base_dir.join(file);
            file::read_named(&path, file::MAX_FILE_BYTES)
                .map_err(|e| anyhow!("reading the discovery file's CA {}: {e}", path.display()))
        })
        .transpose()
}

/// A discovery kubeconfig at an `https://` URL, trusting the system's roots (one attempt, as
/// kubeadm, within the time left before `deadline`).
fn fetch_discovery_url(url: &HttpsUrl, deadline: Instant) -> Result<Vec<u8>> {
    let time_left = deadline.saturating_duration_since(Instant::now());
    let response = https::get(url, &Trust::system()?, time_left.min(MAX_ATTEMPT))
        .with_context(|| format!("GET {url}"))?;
    if response.status != 200 {
        bail!("GET {url}: HTTP {}", response.status);
    }
    Ok(response.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testgen::one_line;
    use proptest::prelude::*;

    #[test]
    fn sources_are_files_or_https_urls() {
        assert_eq!(
            "file:///etc/k.conf".parse::<DiscoverySource>().unwrap(),
            DiscoverySource::File("/etc/k.conf".into())
        );
        assert!(matches!(
            "https://h:1/k".parse::<DiscoverySource>().unwrap(),
            DiscoverySource::Url(_)
        ));
    }

    #[test]
    fn retry_gives_up_at_the_deadline_with_the_last_error() {
        let attempts = std::cell::Cell::new(0);
        let timeout = Duration::from_millis(600);
        let result: Result<()> = retry(Instant::now() + timeout, timeout, &|_, _| {}, |_| {
            attempts.set(attempts.get() + 1);
            Err(Failure::Retry(anyhow!("attempt {}", attempts.get())))
        });
        let message = format!("{:#}", result.unwrap_err());
        assert!(
            message.contains("gave up") && message.contains(&format!("attempt {}", attempts.get())),
            "{message}"
        );
        assert!(attempts.get() >= 2, "{}", attempts.get());
    }

    #[test]
    fn a_fatal_failure_stops_at_once() {
        let timeout = Duration::from_secs(60);
        let started = Instant::now();
        let result: Result<()> = retry(Instant::now() + timeout, timeout, &|_, _| {}, |_| {
            Err(Failure::Fatal(anyhow!("bad")))
        });
        assert_eq!(result.unwrap_err().to_string(), "bad");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn any_source_is_a_file_or_an_https_url(text in "(https://|file://)?\\PC{0,30}") {
            match text.parse::<DiscoverySource>() {
                Ok(DiscoverySource::Url(url)) => prop_assert!(text.starts_with("https://"), "{}", url),
                Ok(DiscoverySource::File(path)) => {
                    let expected = text.strip_prefix("file://").unwrap_or(&text);
                    prop_assert!(!text.starts_with("https://"));
                    prop_assert_eq!(path, Path::new(expected));
                }
                Err(e) => prop_assert!(text.starts_with("https://") && one_line(&e), "{}", e),
            }
        }
    }
}
