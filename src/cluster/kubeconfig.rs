//! The kubeconfig model (client-go's `clientcmd` layout, keys in alphabetical order as
//! kubeadm writes them): building one with embedded CA, client cert and key, and reading the
//! current context's CA and client credentials back. No file I/O.

use super::yaml;
use crate::net::https::HttpsUrl;
use crate::pki::pem;
use anyhow::{Context, Result, anyhow};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A kubeconfig file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Kubeconfig {
    #[serde(rename = "apiVersion")]
    api_version: String,
    clusters: Vec<NamedCluster>,
    contexts: Vec<NamedContext>,
    current_context: String,
    kind: String,
    /// Left out when empty, as client-go writes it since `omitzero` (kubeadm v1.37).
    #[serde(default, skip_serializing_if = "serde_yaml::Mapping::is_empty")]
    preferences: serde_yaml::Mapping,
    users: Vec<NamedUser>,
    #[serde(flatten)]
    rest: serde_yaml::Mapping,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct NamedCluster {
    cluster: Cluster,
    name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate_authority_data: Option<String>,
    server: String,
    #[serde(flatten)]
    rest: serde_yaml::Mapping,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct NamedContext {
    context: Context_,
    name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Context_ {
    cluster: String,
    user: String,
    #[serde(flatten)]
    rest: serde_yaml::Mapping,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct NamedUser {
    name: String,
    user: User,
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct User {
    // Fields in alphabetical order, as client-go's clientcmd writes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_certificate_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_key_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(flatten)]
    rest: serde_yaml::Mapping,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field(
                "client_certificate_data",
                &self.client_certificate_data.is_some(),
            )
            .field(
                "client_key_data",
                &self.client_key_data.as_ref().map(|_| "<redacted>"),
            )
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The credentials a kubeconfig carries for its current context, decoded to PEM.
pub struct ClientCredentials {
    /// The cluster's CA certificate(s), PEM.
    pub ca_pem: Vec<u8>,
    /// The server URL.
    pub server: String,
    /// The client certificate, PEM.
    pub cert_pem: Vec<u8>,
    /// The client private key, PEM.
    pub key_pem: Vec<u8>,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// The cluster-only kubeconfig of `cluster-info` (`contexts` and `users` are `null`).
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterOnly {
    #[serde(rename = "apiVersion")]
    api_version: String,
    clusters: Vec<NamedCluster>,
    contexts: Option<Vec<NamedContext>>,
    current_context: String,
    kind: String,
    #[serde(skip_serializing_if = "serde_yaml::Mapping::is_empty")]
    preferences: serde_yaml::Mapping,
    users: Option<Vec<NamedUser>>,
}

/// Any kubeconfig, read leniently (`null` lists, no current context), to find its cluster.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct LooseKubeconfig {
    #[serde(default)]
    clusters: Option<Vec<NamedCluster>>,
    #[serde(default)]
    contexts: Option<Vec<NamedContext>>,
    #[serde(default)]
    current_context: Option<String>,
}

/// The cluster a kubeconfig points at, as kubeadm's discovery reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterRef {
    /// The API server URL.
    pub server: String,
    /// The embedded CA (`certificate-authority-data`), decoded; may be a bundle.
    pub ca_pem: Option<Vec<u8>>,
    /// The CA file (`certificate-authority`), when the CA is not embedded.
    pub ca_file: Option<String>,
}

/// The cluster kubeadm's `GetClusterFromKubeConfig` picks: the unnamed one if there is one,
/// else the current context's.
pub fn select_cluster(yaml: &[u8]) -> Result<ClusterRef> {
    yaml::check_depth(yaml).map_err(|e| anyhow!("not a valid kubeconfig: {e}"))?;
    let config: LooseKubeconfig =
        serde_yaml::from_slice(yaml).map_err(|e| anyhow!("not a valid kubeconfig: {e}"))?;
    let clusters = config.clusters.unwrap_or_default();
    let current = config.current_context.unwrap_or_default();
    let wanted = match clusters.iter().any(|c| c.name.is_empty()) {
        true => String::new(),
        false => config
            .contexts
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.name == current)
            .map(|c| c.context.cluster)
            .ok_or_else(|| anyhow!("no unnamed cluster and no current context"))?,
    };
    let cluster = clusters
        .into_iter()
        .find(|c| c.name == wanted)
        .map(|c| c.cluster)
        .ok_or_else(|| anyhow!("cluster {wanted:?} not found"))?;
    Ok(ClusterRef {
        ca_pem: match &cluster.certificate_authority_data {
            Some(_) => Some(decode(
                &cluster.certificate_authority_data,
                "certificate-authority-data",
            )?),
            None => None,
        },
        ca_file: cluster
            .rest
            .get("certificate-authority")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        server: cluster.server,
    })
}

impl Kubeconfig {
    /// A kubeconfig for `user` in `cluster_name`, authenticating with an embedded client cert.
    pub fn with_client_cert(
        cluster_name: &str,
        server: &str,
        user: &str,
        creds: &ClientCredentials,
    ) -> Kubeconfig {
        let credentials = User {
            client_certificate_data: Some(BASE64.encode(&creds.cert_pem)),
            client_key_data: Some(BASE64.encode(&creds.key_pem)),
            ..Default::default()
        };
        Kubeconfig::single(cluster_name, server, &creds.ca_pem, user, credentials)
    }

    /// A partial kubeconfig for kubeadm's external-CA flow: `user` holds only its
    /// `client-key-data` until the signed certificate is added as `client-certificate-data`;
    /// the cluster's CA is embedded when known.
    pub fn with_client_key(
        cluster_name: &str,
        server: &str,
        ca_pem: Option<&[u8]>,
        user: &str,
        key_pem: &[u8],
    ) -> Kubeconfig {
        let credentials = User {
            client_key_data: Some(BASE64.encode(key_pem)),
            ..Default::default()
        };
        let mut config = Kubeconfig::single(cluster_name, server, &[], user, credentials);
        config.clusters[0].cluster.certificate_authority_data =
            ca_pem.map(|pem| BASE64.encode(pem));
        config
    }

    /// The kubeconfig a kubelet writes after TLS bootstrapping (`/etc/kubernetes/kubelet.conf`
    /// on a joined worker): cluster `default-cluster` (`server`, the CA embedded), user
    /// `default-auth` whose `client-certificate` and `client-key` both name `pem`, its
    /// rotated `kubelet-client-current.pem`, and context `default-context` in namespace
    /// `default`.
    pub fn with_client_file(server: &str, ca_pem: &[u8], pem: &str) -> Kubeconfig {
        let credentials = User {
            client_certificate: Some(pem.into()),
            client_key: Some(pem.into()),
            ..Default::default()
        };
        let mut config = Kubeconfig::single(
            "default-cluster",
            server,
            ca_pem,
            "default-auth",
            credentials,
        );
        let context = &mut config.contexts[0];
        context.name = "default-context".into();
        context
            .context
            .rest
            .insert("namespace".into(), "default".into());
        config.current_context = "default-context".into();
        config
    }

    /// A kubeconfig for `user` in `cluster_name`, authenticating with a bearer `token`
    /// (kubeadm's `bootstrap-kubelet.conf`).
    pub fn with_token(
        cluster_name: &str,
        server: &str,
        ca_pem: &[u8],
        user: &str,
        token: &str,
    ) -> Kubeconfig {
        let credentials = User {
            token: Some(token.into()),
            ..Default::default()
        };
        Kubeconfig::single(cluster_name, server, ca_pem, user, credentials)
    }

    /// One cluster, one user, one context `<user>@<cluster>` as the current context.
    fn single(
        cluster_name: &str,
        server: &str,
        ca_pem: &[u8],
        user: &str,
        credentials: User,
    ) -> Kubeconfig {
        let context_name = format!("{user}@{cluster_name}");
        Kubeconfig {
            api_version: "v1".into(),
            clusters: vec![NamedCluster {
                cluster: Cluster {
                    certificate_authority_data: Some(BASE64.encode(ca_pem)),
                    server: server.into(),
                    rest: Default::default(),
                },
                name: cluster_name.into(),
            }],
            contexts: vec![NamedContext {
                context: Context_ {
                    cluster: cluster_name.into(),
                    user: user.into(),
                    rest: Default::default(),
                },
                name: context_name.clone(),
            }],
            current_context: context_name,
            kind: "Config".into(),
            preferences: serde_yaml::Mapping::new(),
            users: vec![NamedUser {
                name: user.into(),
                user: credentials,
            }],
            rest: Default::default(),
        }
    }

    /// The `kubeconfig` of kubeadm's `cluster-info` ConfigMap: only the current context's
    /// cluster (server and embedded CA), under the empty name; no contexts, no users.
    pub fn cluster_info_yaml(&self) -> Result<String> {
        let (cluster, _) = self.current()?;
        let only = ClusterOnly {
            api_version: "v1".into(),
            clusters: vec![NamedCluster {
                cluster: Cluster {
                    certificate_authority_data: cluster.certificate_authority_data.clone(),
                    server: cluster.server.clone(),
                    rest: Default::default(),
                },
                name: String::new(),
            }],
            contexts: None,
            current_context: String::new(),
            kind: "Config".into(),
            preferences: serde_yaml::Mapping::new(),
            users: None,
        };
        serde_yaml::to_string(&only).context("serializing the cluster-info kubeconfig")
    }

    /// Parses kubeconfig YAML.
    pub fn parse(yaml: &[u8]) -> Result<Kubeconfig> {
        yaml::check_depth(yaml).map_err(|e| anyhow!("not a valid kubeconfig: {e}"))?;
        serde_yaml::from_slice(yaml).map_err(|e| anyhow!("not a valid kubeconfig: {e}"))
    }

    /// The YAML text.
    pub fn to_yaml(&self) -> Result<String> {
        serde_yaml::to_string(self).context("serializing a kubeconfig")
    }

    /// The current context's server URL, which must be `https://HOST[:PORT][/PATH]`.
    pub fn server(&self) -> Result<&str> {
        let server = &self.current()?.0.server;
        server
            .parse::<HttpsUrl>()
            .map_err(|e| anyhow!("server: {e}"))?;
        Ok(server)
    }

    /// The current context's cluster name (kubeadm's `clusterName`).
    pub fn cluster_name(&self) -> Result<&str> {
        Ok(&self.current_context()?.cluster)
    }

    /// Checks what `cluster-info` publishes of the current cluster: an `https://` server and
    /// an embedded CA certificate.
    pub fn check_cluster(&self) -> Result<()> {
        self.server()?;
        let (cluster, _) = self.current()?;
        let ca = decode(
            &cluster.certificate_authority_data,
            "certificate-authority-data",
        )?;
        pem::first_certificate(&ca).context("certificate-authority-data")?;
        Ok(())
    }

    /// The current context's CA, server, client certificate and key; the certificate and
    /// key must be embedded.
    pub fn client_credentials(&self) -> Result<ClientCredentials> {
        let (cluster, user) = self.current()?;
        Ok(ClientCredentials {
            ca_pem: decode(
                &cluster.certificate_authority_data,
                "certificate-authority-data",
            )?,
            server: cluster.server.clone(),
            cert_pem: decode(&user.client_certificate_data, "client-certificate-data")?,
            key_pem: decode(&user.client_key_data, "client-key-data")?,
        })
    }

    /// The current cluster's embedded CA certificate(s), PEM (`certificate-authority-data`).
    pub fn cluster_ca_pem(&self) -> Result<Vec<u8>> {
        let (cluster, _) = self.current()?;
        decode(
            &cluster.certificate_authority_data,
            "certificate-authority-data",
        )
    }

    /// Replaces the current cluster's embedded CA certificate(s) with `ca_pem`; everything
    /// else (the user's credentials, whether embedded or in files) stays as it is.
    pub fn replace_cluster_ca(&mut self, ca_pem: &[u8]) -> Result<()> {
        let cluster_name = self.current_context()?.cluster.clone();
        let cluster = self
            .clusters
            .iter_mut()
            .find(|c| c.name == cluster_name)
            .ok_or_else(|| anyhow!("cluster {cluster_name:?} not found"))?;
        cluster.cluster.certificate_authority_data = Some(BASE64.encode(ca_pem));
        Ok(())
    }

    /// The file the current user's client certificate is read from, when it is not embedded
    /// (the kubelet's rotated `kubelet-client-current.pem`).
    pub fn client_certificate_file(&self) -> Result<Option<String>> {
        let (_, user) = self.current()?;
        Ok(match user.client_certificate_data {
            Some(_) => None,
            None => user.client_certificate.clone(),
        })
    }

    /// Replaces the current cluster's CA and the current user's embedded certificate and key;
    /// everything else (server, names, unknown fields) stays as it is.
    pub fn replace_credentials(
        &mut self,
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<()> {
        self.replace_cluster_ca(ca_pem)?;
        let user_name = self.current_context()?.user.clone();
        let user = self
            .users
            .iter_mut()
            .find(|u| u.name == user_name)
            .ok_or_else(|| anyhow!("user {user_name:?} not found"))?;
        user.user.client_certificate_data = Some(BASE64.encode(cert_pem));
        user.user.client_key_data = Some(BASE64.encode(key_pem));
        Ok(())
    }

    /// Points the current context's cluster at `server`; everything else stays as it is.
    pub fn set_server(&mut self, server: &str) -> Result<()> {
        let cluster_name = self.current_context()?.cluster.clone();
        let cluster = self
            .clusters
            .iter_mut()
            .find(|c| c.name == cluster_name)
            .ok_or_else(|| anyhow!("cluster {cluster_name:?} not found"))?;
        cluster.cluster.server = server.to_string();
        Ok(())
    }

    fn current_context(&self) -> Result<&Context_> {
        self.contexts
            .iter()
            .find(|c| c.name == self.current_context)
            .map(|c| &c.context)
            .ok_or_else(|| anyhow!("current context {:?} not found", self.current_context))
    }

    fn current(&self) -> Result<(&Cluster, &User)> {
        let context = self.current_context()?;
        let cluster = self
            .clusters
            .iter()
            .find(|c| c.name == context.cluster)
            .ok_or_else(|| anyhow!("cluster {:?} not found", context.cluster))?;
        let user = self
            .users
            .iter()
            .find(|u| u.name == context.user)
            .ok_or_else(|| anyhow!("user {:?} not found", context.user))?;
        Ok((&cluster.cluster, &user.user))
    }
}

fn decode(field: &Option<String>, name: &str) -> Result<Vec<u8>> {
    let text = field
        .as_deref()
        .ok_or_else(|| anyhow!("no embedded {name}"))?;
    BASE64
        .decode(text.trim())
        .map_err(|_| anyhow!("{name} is not valid base64"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testgen::edited;
    use proptest::prelude::*;

    fn creds() -> ClientCredentials {
        ClientCredentials {
            ca_pem: b"CA\n".to_vec(),
            server: String::new(),
            cert_pem: b"CERT\n".to_vec(),
            key_pem: b"KEY\n".to_vec(),
        }
    }

    #[test]
    fn debug_shows_no_key_and_no_token() {
        let server = "https://10.0.0.1:6443";
        let with_key = Kubeconfig::with_client_cert("kubernetes", server, "admin", &creds());
        let token = "abcdef.0123456789abcdef";
        let with_token = Kubeconfig::with_token("kubernetes", server, b"CA\n", "user", token);
        for shown in [
            format!("{with_key:?}"),
            format!("{with_token:?}"),
            format!("{:?}", creds()),
        ] {
            assert!(shown.contains("kubernetes") || shown.contains("ClientCredentials"));
            for secret in ["S0VZCg", "75, 69, 89", "0123456789abcdef"] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
    }

    #[test]
    fn layout_matches_clientcmd() {
        let yaml = Kubeconfig::with_client_cert(
            "kubernetes",
            "https://10.0.0.1:6443",
            "kubernetes-admin",
            &creds(),
        )
        .to_yaml()
        .unwrap();
        let expected = "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EK
    server: https://10.0.0.1:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q0VSVAo=
    client-key-data: S0VZCg==
";
        assert_eq!(yaml, expected);
    }

    #[test]
    fn credentials_roundtrip_and_errors_name_the_field() {
        let kc = Kubeconfig::with_client_cert("c", "https://s:1", "u", &creds());
        let back = Kubeconfig::parse(kc.to_yaml().unwrap().as_bytes())
            .unwrap()
            .client_credentials()
            .unwrap();
        assert_eq!(
            (back.ca_pem, back.cert_pem, back.key_pem),
            (b"CA\n".to_vec(), b"CERT\n".to_vec(), b"KEY\n".to_vec())
        );
        assert!(Kubeconfig::parse(b"{{{").is_err());
        let broken = kc
            .to_yaml()
            .unwrap()
            .replace("current-context: u@c", "current-context: x");
        let err = Kubeconfig::parse(broken.as_bytes())
            .unwrap()
            .client_credentials()
            .unwrap_err();
        assert!(err.to_string().contains("current context"));
    }

    #[test]
    fn replacing_credentials_keeps_everything_else() {
        let yaml = Kubeconfig::with_client_cert("c", "https://s:1", "u", &creds())
            .to_yaml()
            .unwrap()
            .replace("    user: u\n", "    namespace: team\n    user: u\n");
        let mut kc = Kubeconfig::parse(yaml.as_bytes()).unwrap();
        kc.replace_credentials(b"CA2\n", b"CERT2\n", b"KEY2\n")
            .unwrap();
        let out = kc.to_yaml().unwrap();
        assert!(out.contains("namespace: team"), "{out}");
        let back = Kubeconfig::parse(out.as_bytes())
            .unwrap()
            .client_credentials()
            .unwrap();
        assert_eq!(
            (back.ca_pem, back.cert_pem, back.server),
            (
                b"CA2\n".to_vec(),
                b"CERT2\n".to_vec(),
                "https://s:1".to_string()
            )
        );
    }

    #[test]
    fn a_rotated_kubelet_certificate_is_a_file() {
        let yaml = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0EK\n    server: https://s:1\n  name: default-cluster\ncontexts:\n- context:\n    cluster: default-cluster\n    namespace: default\n    user: default-auth\n  name: default-context\ncurrent-context: default-context\nkind: Config\nusers:\n- name: default-auth\n  user:\n    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem\n";
        let kc = Kubeconfig::parse(yaml.as_bytes()).unwrap();
        assert_eq!(
            kc.client_certificate_file().unwrap().as_deref(),
            Some("/var/lib/kubelet/pki/kubelet-client-current.pem")
        );
    }

    #[test]
    fn cluster_info_holds_only_the_cluster_as_kubeadm_writes_it() {
        let admin =
            Kubeconfig::with_client_cert("kubernetes", "https://10.0.0.1:6443", "u", &creds());
        let expected = "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EK
    server: https://10.0.0.1:6443
  name: ''
contexts: null
current-context: ''
kind: Config
users: null
";
        let yaml = admin.cluster_info_yaml().unwrap();
        assert_eq!(yaml, expected);
        let cluster = select_cluster(yaml.as_bytes()).unwrap();
        assert_eq!(cluster.server, "https://10.0.0.1:6443");
        assert_eq!(cluster.ca_pem.as_deref(), Some(&b"CA\n"[..]));
    }

    #[test]
    fn a_token_kubeconfig_selects_its_current_cluster_and_hides_the_token() {
        let kc = Kubeconfig::with_token(
            "kubernetes",
            "https://s:1",
            b"CA\n",
            "tls-bootstrap-token-user",
            "abcdef.0123456789abcdef",
        );
        let yaml = kc.to_yaml().unwrap();
        assert!(
            yaml.contains("    token: abcdef.0123456789abcdef\n"),
            "{yaml}"
        );
        assert!(yaml.contains("current-context: tls-bootstrap-token-user@kubernetes"));
        assert!(!format!("{kc:?}").contains("0123456789abcdef"));
        assert_eq!(
            select_cluster(yaml.as_bytes()).unwrap().server,
            "https://s:1"
        );
        let by_file = yaml.replace(
            "certificate-authority-data: Q0EK",
            "certificate-authority: /ca.crt",
        );
        let cluster = select_cluster(by_file.as_bytes()).unwrap();
        assert_eq!(
            (cluster.ca_pem, cluster.ca_file.as_deref()),
            (None, Some("/ca.crt"))
        );
        assert!(select_cluster(b"clusters: []").is_err());
    }

    /// Everything a kubeconfig offers on `bytes`: an answer or an error, never a panic.
    fn read_every_way(bytes: &[u8]) {
        let _ = select_cluster(bytes);
        if let Ok(kubeconfig) = Kubeconfig::parse(bytes) {
            let _ = kubeconfig.client_credentials();
            let _ = kubeconfig.client_certificate_file();
            let _ = kubeconfig.cluster_info_yaml();
            let _ = kubeconfig.to_yaml();
        }
    }

    fn credentials() -> impl Strategy<Value = ClientCredentials> {
        let bytes = || any::<Vec<u8>>();
        (bytes(), any::<String>(), bytes(), bytes()).prop_map(
            |(ca_pem, server, cert_pem, key_pem)| ClientCredentials {
                ca_pem,
                server,
                cert_pem,
                key_pem,
            },
        )
    }

    /// Unknown fields: `x-` names (no known field has one) with arbitrary text.
    fn unknown_fields() -> impl Strategy<Value = serde_yaml::Mapping> {
        prop::collection::btree_map("x-[a-z-]{1,8}", any::<String>(), 0..3).prop_map(|fields| {
            fields
                .into_iter()
                .map(|(k, v)| (serde_yaml::Value::from(k), serde_yaml::Value::from(v)))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn any_bytes_are_a_kubeconfig_or_an_error(bytes in any::<Vec<u8>>()) {
            read_every_way(&bytes);
        }

        #[test]
        fn edited_kubeconfigs_are_kubeconfigs_or_errors(
            bytes in edited(Kubeconfig::with_client_cert("c", "https://s:1", "u", &creds()).to_yaml().unwrap().into_bytes()),
        ) {
            read_every_way(&bytes);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn built_kubeconfigs_read_back(
            cluster in any::<String>(),
            user in any::<String>(),
            creds in credentials(),
        ) {
            let built = Kubeconfig::with_client_cert(&cluster, &creds.server, &user, &creds);
            let yaml = built.to_yaml().unwrap();
            let back = Kubeconfig::parse(yaml.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
            let read = back.client_credentials().map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
            prop_assert_eq!(
                (read.ca_pem, read.server, read.cert_pem, read.key_pem),
                (creds.ca_pem, creds.server.clone(), creds.cert_pem, creds.key_pem)
            );
            prop_assert_eq!(back.to_yaml().unwrap(), yaml);
            let info = select_cluster(built.cluster_info_yaml().unwrap().as_bytes()).unwrap();
            prop_assert_eq!(info.server, creds.server);
        }

        #[test]
        fn unknown_fields_are_kept(
            top in unknown_fields(),
            cluster in unknown_fields(),
            context in unknown_fields(),
            user in unknown_fields(),
        ) {
            let mut built = Kubeconfig::with_token("c", "https://s:1", b"CA", "u", "abcdef.0123456789abcdef");
            built.rest = top.clone();
            built.clusters[0].cluster.rest = cluster.clone();
            built.contexts[0].context.rest = context.clone();
            built.users[0].user.rest = user.clone();
            let yaml = built.to_yaml().unwrap();
            let back = Kubeconfig::parse(yaml.as_bytes()).unwrap();
            prop_assert_eq!(&back.rest, &top);
            prop_assert_eq!(&back.clusters[0].cluster.rest, &cluster);
            prop_assert_eq!(&back.contexts[0].context.rest, &context);
            prop_assert_eq!(&back.users[0].user.rest, &user);
            prop_assert_eq!(back.users[0].user.token.as_deref(), Some("abcdef.0123456789abcdef"));
        }
    }
}
