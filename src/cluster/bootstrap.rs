//! Bootstrap tokens (`<id>.<secret>`): generation from the OS RNG, validation, and their
//! kube-system Secret as kubeadm writes it (`bootstrap-token-<id>`), both ways. Tokens are
//! secrets: `Debug` never shows one, and no error message here ever quotes one.

use crate::cluster::kubeconfig::Kubeconfig;
use crate::duration::Duration;
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The group kubeadm gives its tokens, and the subject of the bootstrap RBAC bindings.
pub const DEFAULT_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";
/// The token's lifetime unless `--ttl` says otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_hours(24);
const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
const SECRET_PREFIX: &str = "bootstrap-token-";
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// Random bytes at or above this (7 * 36) are dropped, so every character is equally likely.
const UNBIASED_LIMIT: u8 = 252;
const FORMAT: &str = "a bootstrap token has the form [a-z0-9]{6}.[a-z0-9]{16}";

/// A bootstrap token. `Debug` shows the id only; the secret leaves this type only through
/// [`BootstrapToken::secret`] and [`BootstrapToken::expose`], for the places that must write it.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    id: String,
    secret: String,
}

impl BootstrapToken {
    /// A new random token from the operating system's RNG, without modulo bias.
    pub fn generate() -> Result<BootstrapToken> {
        Ok(BootstrapToken {
            id: random_chars(6)?,
            secret: random_chars(16)?,
        })
    }

    /// The public half (`system:bootstrap:<id>`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret half: the JWS key, and half of the bearer token.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The whole `<id>.<secret>` token, for a kubeconfig, a Secret or the command's result.
    pub fn expose(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }
}

impl fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BootstrapToken({}.<redacted>)", self.id)
    }
}

impl FromStr for BootstrapToken {
    type Err = anyhow::Error;

    /// Parses `<id>.<secret>`; the error never repeats the input.
    fn from_str(text: &str) -> Result<BootstrapToken> {
        let (id, secret) = text.split_once('.').ok_or_else(|| anyhow!(FORMAT))?;
        if !is_token_part(id, 6) || !is_token_part(secret, 16) {
            bail!(FORMAT);
        }
        Ok(BootstrapToken {
            id: id.into(),
            secret: secret.into(),
        })
    }
}

fn is_token_part(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| ALPHABET.contains(&b))
}

fn random_chars(count: usize) -> Result<String> {
    let mut chars = String::with_capacity(count);
    let mut buf = [0u8; 32];
    while chars.len() < count {
        aws_lc_rs::rand::fill(&mut buf)
            .map_err(|_| anyhow!("the system random generator failed"))?;
        for byte in buf
            .iter()
            .filter(|b| **b < UNBIASED_LIMIT)
            .take(count - chars.len())
        {
            chars.push(char::from(ALPHABET[usize::from(byte % 36)]));
        }
    }
    Ok(chars)
}

/// What a token may be used for (the Secret's `usage-bootstrap-*` keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Usage {
    /// Signing the `cluster-info` ConfigMap (token discovery).
    Signing,
    /// Authenticating to the API server (TLS bootstrap).
    Authentication,
}

impl Usage {
    /// Every usage.
    pub const ALL: [Usage; 2] = [Usage::Signing, Usage::Authentication];

    /// Its name, as `--usages` and kubeadm's configuration spell it.
    pub fn name(self) -> &'static str {
        match self {
            Usage::Signing => "signing",
            Usage::Authentication => "authentication",
        }
    }
}

impl FromStr for Usage {
    type Err = String;

    fn from_str(text: &str) -> Result<Usage, String> {
        Usage::ALL
            .into_iter()
            .find(|usage| usage.name() == text)
            .ok_or_else(|| format!("{text:?} is not a token usage (signing, authentication)"))
    }
}

/// An extra group a token authenticates in, `system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraGroup(String);

impl ExtraGroup {
    /// The group name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ExtraGroup {
    type Err = String;

    fn from_str(text: &str) -> Result<ExtraGroup, String> {
        let rest = text.strip_prefix("system:bootstrappers:").unwrap_or("");
        let last_ok = rest
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let body_ok = rest
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b':' || b == b'-');
        if !last_ok || !body_ok || rest.len() > 256 {
            return Err(format!(
                "{text:?} is not a bootstrap group (system:bootstrappers:[a-z0-9:-]{{0,255}}[a-z0-9])"
            ));
        }
        Ok(ExtraGroup(text.into()))
    }
}

/// A token with its Secret's attributes.
#[derive(Clone, Debug)]
pub struct TokenRecord {
    /// The token.
    pub token: BootstrapToken,
    /// `description`, when not empty.
    pub description: Option<String>,
    /// What it may be used for, sorted.
    pub usages: Vec<Usage>,
    /// Its extra groups.
    pub groups: Vec<ExtraGroup>,
    /// When it expires; `None` for never.
    pub expires: Option<OffsetDateTime>,
}

impl TokenRecord {
    /// A record for `token` living `ttl` from `now` (0: forever). Groups need the
    /// authentication usage, as kubeadm says; with it and no groups, the token gets kubeadm's
    /// default group.
    pub fn new(
        token: BootstrapToken,
        ttl: Duration,
        now: OffsetDateTime,
        mut usages: Vec<Usage>,
        mut groups: Vec<ExtraGroup>,
        description: Option<String>,
    ) -> Result<TokenRecord> {
        usages.sort();
        usages.dedup();
        let authenticates = usages.contains(&Usage::Authentication);
        if !groups.is_empty() && !authenticates {
            bail!("--groups needs the \"authentication\" usage in --usages");
        }
        if groups.is_empty() && authenticates {
            groups.push(ExtraGroup(DEFAULT_GROUP.to_string()));
        }
        let expires = (ttl.as_secs() > 0).then(|| (now + ttl.to_time()).replace_nanosecond(0));
        Ok(TokenRecord {
            token,
            description: description.filter(|d| !d.is_empty()),
            usages,
            groups,
            expires: expires.transpose().context("the expiration time")?,
        })
    }

    /// `bootstrap-token-<id>`, the Secret's name and (with `.yaml`) its manifest's file name.
    pub fn secret_name(&self) -> String {
        format!("{SECRET_PREFIX}{}", self.token.id())
    }

    /// Whether the token signs `cluster-info` at `now`: the signing usage and not expired.
    pub fn signs_at(&self, now: OffsetDateTime) -> bool {
        self.usages.contains(&Usage::Signing) && !self.expired_at(now)
    }

    /// Whether the token has expired at `now`.
    pub fn expired_at(&self, now: OffsetDateTime) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }

    /// The Secret manifest, YAML for `kubectl apply -f`.
    pub fn secret_manifest(&self) -> Result<String> {
        let mut data = BTreeMap::new();
        data.insert("token-id", self.token.id().to_string());
        data.insert("token-secret", self.token.secret().to_string());
        if let Some(description) = &self.description {
            data.insert("description", description.clone());
        }
        if let Some(expires) = self.expires {
            data.insert("expiration", expires.format(&Rfc3339)?);
        }
        for usage in &self.usages {
            data.insert(usage_key(*usage), "true".into());
        }
        if !self.groups.is_empty() {
            let groups: Vec<&str> = self.groups.iter().map(ExtraGroup::as_str).collect();
            data.insert("auth-extra-groups", groups.join(","));
        }
        let data: BTreeMap<&str, String> = data
            .into_iter()
            .map(|(k, v)| (k, BASE64.encode(v)))
            .collect();
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": self.secret_name(), "namespace": "kube-system"},
            "type": SECRET_TYPE,
            "data": data,
        });
        serde_yaml::to_string(&secret).context("serializing a Secret")
    }

    /// Reads a Secret manifest back, checking what the API server's authenticator checks.
    pub fn from_secret_manifest(yaml: &[u8]) -> Result<TokenRecord> {
        super::yaml::check_depth(yaml).map_err(|e| anyhow!("not YAML: {e}"))?;
        let secret: serde_json::Value =
            serde_yaml::from_slice(yaml).map_err(|e| anyhow!("not YAML: {e}"))?;
        if secret["type"] != SECRET_TYPE {
            bail!("not a Secret of type {SECRET_TYPE}");
        }
        let field = |key: &str| -> Result<Option<String>> {
            secret["data"][key]
                .as_str()
                .map(|b64| {
                    BASE64
                        .decode(b64)
                        .ok()
                        .and_then(|bytes| String::from_utf8(bytes).ok())
                        .ok_or_else(|| anyhow!("data.{key} is not base64 of UTF-8 text"))
                })
                .transpose()
        };
        let id = field("token-id")?.unwrap_or_default();
        let secret_half = field("token-secret")?.unwrap_or_default();
        let token: BootstrapToken = format!("{id}.{secret_half}").parse()?;
        let record = TokenRecord {
            token,
            description: field("description")?,
            usages: [Usage::Signing, Usage::Authentication]
                .into_iter()
                .filter(|u| field(usage_key(*u)).ok().flatten().as_deref() == Some("true"))
                .collect(),
            groups: parse_groups(field("auth-extra-groups")?)?,
            expires: field("expiration")?
                .map(|text| OffsetDateTime::parse(&text, &Rfc3339))
                .transpose()
                .context("data.expiration is not an RFC 3339 time")?,
        };
        if secret["metadata"]["name"] != record.secret_name().as_str() {
            bail!("metadata.name is not {}", record.secret_name());
        }
        Ok(record)
    }
}

fn usage_key(usage: Usage) -> &'static str {
    match usage {
        Usage::Signing => "usage-bootstrap-signing",
        Usage::Authentication => "usage-bootstrap-authentication",
    }
}

fn parse_groups(joined: Option<String>) -> Result<Vec<ExtraGroup>> {
    joined
        .unwrap_or_default()
        .split(',')
        .filter(|g| !g.is_empty())
        .map(|g| {
            g.parse()
                .map_err(|e: String| anyhow!("data.auth-extra-groups: {e}"))
        })
        .collect()
}

/// kubeadm's user name in `bootstrap-kubelet.conf`.
const BOOTSTRAP_USER: &str = "tls-bootstrap-token-user";
/// kubeadm's constant cluster name in `bootstrap-kubelet.conf` (not `clusterName`).
const BOOTSTRAP_CLUSTER: &str = "kubernetes";

/// kubeadm's `bootstrap-kubelet.conf`: the discovered server and CA, and the token as user
/// `tls-bootstrap-token-user`.
pub fn bootstrap_kubeconfig(server: &str, ca_pem: &[u8], token: &BootstrapToken) -> Result<String> {
    Kubeconfig::with_token(
        BOOTSTRAP_CLUSTER,
        server,
        ca_pem,
        BOOTSTRAP_USER,
        &token.expose(),
    )
    .to_yaml()
}

/// Whether `name` is the manifest file name of a token Secret.
pub fn is_secret_manifest(name: &str) -> bool {
    name.starts_with(SECRET_PREFIX) && name.ends_with(".yaml")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testgen::{edited, one_line};
    use proptest::prelude::*;

    fn token() -> BootstrapToken {
        "abcdef.0123456789abcdef".parse().unwrap()
    }

    #[test]
    fn generated_tokens_have_the_format_and_differ() {
        let a = BootstrapToken::generate().unwrap();
        let b = BootstrapToken::generate().unwrap();
        assert_eq!(a.expose().parse::<BootstrapToken>().unwrap(), a);
        assert_ne!(a, b);
    }

    #[test]
    fn generated_characters_cover_the_alphabet() {
        let text: String = (0..200)
            .map(|_| BootstrapToken::generate().unwrap().secret().to_string())
            .collect();
        for c in ALPHABET {
            assert!(text.as_bytes().contains(c), "{} never drawn", *c as char);
        }
    }

    #[test]
    fn malformed_tokens_are_refused_without_echo() {
        for bad in [
            "abcdef0123456789abcdef",
            "ABCDEF.0123456789abcdef",
            "abcde.0123456789abcdefg",
            "abcdef.0123456789abcde",
            "abcdef.0123456789abcdeF",
            "abcdef.0123456789abcdef.",
        ] {
            let err = bad.parse::<BootstrapToken>().unwrap_err().to_string();
            assert!(!err.contains("0123456789"), "{err}");
        }
    }

    #[test]
    fn debug_redacts_the_secret() {
        let record = TokenRecord::new(
            token(),
            DEFAULT_TTL,
            OffsetDateTime::now_utc(),
            vec![Usage::Signing],
            vec![],
            None,
        )
        .unwrap();
        let shown = format!("{record:?}");
        assert!(
            shown.contains("abcdef") && !shown.contains("0123456789abcdef"),
            "{shown}"
        );
    }

    #[test]
    fn groups_must_be_bootstrap_groups() {
        assert!(
            "system:bootstrappers:kubeadm:default-node-token"
                .parse::<ExtraGroup>()
                .is_ok()
        );
        for bad in [
            "system:nodes",
            "system:bootstrappers:",
            "system:bootstrappers:a-",
            "x",
        ] {
            assert!(bad.parse::<ExtraGroup>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_secret_is_kubeadms_and_reads_back() {
        let now = OffsetDateTime::parse("2025-03-01T10:00:00.123Z", &Rfc3339).unwrap();
        let record = TokenRecord::new(
            token(),
            DEFAULT_TTL,
            now,
            vec![Usage::Authentication, Usage::Signing],
            vec![DEFAULT_GROUP.parse().unwrap()],
            Some("for workers".into()),
        )
        .unwrap();
        let yaml = record.secret_manifest().unwrap();
        let value: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(value["metadata"]["name"], "bootstrap-token-abcdef");
        assert_eq!(value["metadata"]["namespace"], "kube-system");
        assert_eq!(value["type"], "bootstrap.kubernetes.io/token");
        let decoded = |key: &str| {
            String::from_utf8(BASE64.decode(value["data"][key].as_str().unwrap()).unwrap()).unwrap()
        };
        assert_eq!(decoded("expiration"), "2025-03-02T10:00:00Z");
        assert_eq!(decoded("token-secret"), "0123456789abcdef");
        assert_eq!(decoded("usage-bootstrap-signing"), "true");
        assert_eq!(decoded("auth-extra-groups"), DEFAULT_GROUP);
        let back = TokenRecord::from_secret_manifest(yaml.as_bytes()).unwrap();
        assert_eq!(back.token, record.token);
        assert_eq!(back.expires, record.expires);
        assert_eq!(back.usages, record.usages);
        assert_eq!(back.groups, record.groups);
        assert!(back.signs_at(now) && !back.signs_at(now + time::Duration::days(2)));
    }

    #[test]
    fn no_ttl_means_no_expiration_and_groups_need_authentication() {
        let record = TokenRecord::new(
            token(),
            Duration::from_secs(0),
            OffsetDateTime::now_utc(),
            vec![Usage::Signing],
            vec![],
            None,
        )
        .unwrap();
        assert!(!record.secret_manifest().unwrap().contains("expiration"));
        let err = TokenRecord::new(
            token(),
            DEFAULT_TTL,
            OffsetDateTime::now_utc(),
            vec![Usage::Signing],
            vec![DEFAULT_GROUP.parse().unwrap()],
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("authentication"));
        let authenticating = TokenRecord::new(
            token(),
            DEFAULT_TTL,
            OffsetDateTime::now_utc(),
            vec![Usage::Authentication],
            vec![],
            None,
        )
        .unwrap();
        assert_eq!(authenticating.groups, [ExtraGroup(DEFAULT_GROUP.into())]);
    }

    #[test]
    fn the_longest_ttl_does_not_overflow_the_expiration() {
        let ttl = "2562047h47m16s".parse().unwrap();
        let record = TokenRecord::new(
            token(),
            ttl,
            OffsetDateTime::now_utc(),
            vec![],
            vec![],
            None,
        );
        assert!(record.is_ok(), "{record:?}");
        assert!("100000000h".parse::<Duration>().is_err());
    }

    /// Whether `text` is `[a-z0-9]{6}\.[a-z0-9]{16}`.
    fn has_token_shape(text: &str) -> bool {
        let part = |p: &str, len| p.len() == len && p.bytes().all(|b| ALPHABET.contains(&b));
        text.split_once('.')
            .is_some_and(|(id, secret)| part(id, 6) && part(secret, 16))
    }

    fn check_token_parse(text: &str) -> Result<(), TestCaseError> {
        match text.parse::<BootstrapToken>() {
            Ok(token) => {
                prop_assert!(has_token_shape(text), "{text:?} accepted");
                prop_assert_eq!(token.expose(), text);
            }
            Err(e) => {
                prop_assert!(!has_token_shape(text), "{text:?} refused");
                prop_assert_eq!(e.to_string(), FORMAT, "the error must not echo the token");
            }
        }
        Ok(())
    }

    fn token_record() -> impl Strategy<Value = TokenRecord> {
        let usages = prop::sample::subsequence(vec![Usage::Signing, Usage::Authentication], 0..=2);
        let group = "system:bootstrappers:[a-z0-9:-]{0,20}[a-z0-9]"
            .prop_map(|g| g.parse::<ExtraGroup>().expect("a generated group"));
        (
            "[a-z0-9]{6}\\.[a-z0-9]{16}",
            0..=Duration::MAX.as_secs(),
            usages,
            prop::collection::vec(group, 0..3),
            prop::option::of(any::<String>()),
        )
            .prop_map(|(token, ttl, usages, groups, description)| {
                let groups = match usages.contains(&Usage::Authentication) {
                    true => groups,
                    false => vec![],
                };
                let now = OffsetDateTime::now_utc();
                let ttl = Duration::from_secs(ttl);
                let token = token.parse().expect("a generated token");
                TokenRecord::new(token, ttl, now, usages, groups, description)
                    .expect("a valid record")
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_text_is_a_token_only_in_the_token_shape(text in any::<String>()) {
            check_token_parse(&text)?;
        }

        #[test]
        fn token_like_text_is_a_token_only_in_the_token_shape(
            text in "[a-z0-9A-Z-]{5,7}[.:]?[a-z0-9A-Z.]{15,17}",
        ) {
            check_token_parse(&text)?;
        }

        #[test]
        fn groups_and_usages_parse_or_err_in_one_line(text in "(system:bootstrappers:)?\\PC{0,12}") {
            if let Err(e) = text.parse::<ExtraGroup>() {
                prop_assert!(one_line(&e), "{}", e);
            }
            if let Err(e) = text.parse::<Usage>() {
                prop_assert!(one_line(&e), "{}", e);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn generated_tokens_have_the_shape_and_parse_back(_draw in 0..1u8) {
            let token = BootstrapToken::generate().unwrap();
            prop_assert!(has_token_shape(&token.expose()));
            prop_assert_eq!(token.expose().parse::<BootstrapToken>().unwrap(), token);
        }

        #[test]
        fn secret_manifests_read_back(record in token_record()) {
            let back = TokenRecord::from_secret_manifest(record.secret_manifest().unwrap().as_bytes())
                .unwrap();
            prop_assert_eq!(&back.token, &record.token);
            prop_assert_eq!(&back.description, &record.description);
            prop_assert_eq!(&back.usages, &record.usages);
            prop_assert_eq!(&back.groups, &record.groups);
            prop_assert_eq!(back.expires, record.expires);
        }

        #[test]
        fn edited_secret_manifests_read_or_err_in_one_line(
            yaml in edited(
                TokenRecord::new(token(), DEFAULT_TTL, OffsetDateTime::now_utc(), vec![Usage::Signing],
                    vec![], Some("d".into())).unwrap().secret_manifest().unwrap().into_bytes(),
            ),
        ) {
            if let Err(e) = TokenRecord::from_secret_manifest(&yaml) {
                prop_assert!(one_line(&format!("{e:#}")), "{:#}", e);
            }
        }

        #[test]
        fn any_bytes_read_or_err_as_a_secret_manifest(bytes in any::<Vec<u8>>()) {
            let _ = TokenRecord::from_secret_manifest(&bytes);
        }
    }
}
