//! Issue #8: no secret is ever printed. Every command and subcommand runs with the most
//! verbose output (`-vvv`), in its variants and in failing runs that handle secrets, on an
//! ECDSA tree (and RSA keys where their format adds a failure path). Before each run and at
//! the end, every private key, token secret and certificate key in the trees, the inputs and
//! the by-design results is collected in every form it could leak in; no stderr may hold any
//! of it, and no stdout either, except the by-design results named by [`Prints`].

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_yaml::Value;

use crate::join::printed_join;
use crate::support::bootstrap::read_manifest;
use crate::support::endpoint::Endpoint;
use crate::support::{TempTree, ca_pin, kubepki, openssl};

/// The most detail the CLI gives: `-v` is a count, and every level from 1 on prints detail.
const VERBOSE: &str = "-vvv";
/// The key algorithm of the control plane: fast, and the format most commands handle.
const ALGORITHM: &str = "ECDSA-P256";

/// What a run's stdout is, from its command line. Only the by-design results may hold a
/// secret, and only one the run itself brought (a new one, or `token create`'s TOKEN): never
/// one of the tree, nor one printed before. Every stderr and every other stdout hold none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prints {
    /// A report: no secret at all.
    Report,
    /// `token generate`, `token create`: the token (in the join commands with
    /// `--print-join-command`).
    NewToken,
    /// `certs certificate-key`: the new key.
    NewCertificateKey,
    /// `kubeconfig user` without `--output`, and `kubelet repair` without `--output` on a
    /// control-plane host: the kubeconfig, with its new private key.
    NewKubeconfig,
    /// `init --config`: a report whose join lines name the configuration's own tokens (as
    /// kubeadm's `init` prints its token), and no other secret.
    ConfigTokens,
    /// `token list`: the tokens of the manifests directory in full (as kubeadm's), and no
    /// other secret.
    TokenList,
}

impl Prints {
    fn of(args: &[String]) -> Prints {
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["token", "generate" | "create", ..] => Prints::NewToken,
            ["certs", "certificate-key", ..] => Prints::NewCertificateKey,
            ["kubeconfig", "user", rest @ ..] if !rest.contains(&"--out") => Prints::NewKubeconfig,
            ["kubelet", "repair", rest @ ..] if rest.contains(&"-") => Prints::NewKubeconfig,
            ["init", rest @ ..] if rest.contains(&"--config") => Prints::ConfigTokens,
            ["token", "list", ..] => Prints::TokenList,
            _ => Prints::Report,
        }
    }
}

/// The kinds of secret, and how much of one gives it away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    PrivateKey,
    TokenSecret,
    CertificateKey,
}

impl Kind {
    /// The characters in a row that give a secret away: 32 of any encoding of a private key,
    /// half a token secret, half the hex of a certificate key.
    fn window(self) -> usize {
        match self {
            Kind::PrivateKey | Kind::CertificateKey => 32,
            Kind::TokenSecret => 8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::PrivateKey => "the private key",
            Kind::TokenSecret => "the token secret",
            Kind::CertificateKey => "the certificate key",
        }
    }
}

/// One PEM block as found: its label, its text as written, and its DER.
struct PemBlock {
    label: String,
    text: String,
    der: Vec<u8>,
}

/// The PEM blocks of `text` whose body is valid base64.
fn pem_blocks(text: &str) -> Vec<PemBlock> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let label = line
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"));
        let Some(label) = label else { continue };
        let end = format!("-----END {label}-----");
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != end).collect();
        if let Ok(der) = BASE64.decode(body.concat()) {
            blocks.push(PemBlock {
                label: label.to_string(),
                text: format!("{line}\n{}\n{end}\n", body.join("\n")),
                der,
            });
        }
    }
    blocks
}

/// The forms a PEM block can be printed in: base64 of its DER from each byte alignment (the
/// PEM body, and the DER inside a larger structure such as PKCS#8), hex of the DER, and
/// base64 of the PEM text from each alignment (a kubeconfig's `client-key-data`).
fn encodings(block: &PemBlock) -> Vec<Vec<u8>> {
    let from = |bytes: &[u8], shift: usize| BASE64.encode(bytes.get(shift..).unwrap_or_default());
    let hex: String = block.der.iter().map(|b| format!("{b:02x}")).collect();
    (0..3)
        .flat_map(|shift| [from(&block.der, shift), from(block.text.as_bytes(), shift)])
        .chain([hex])
        .map(String::into_bytes)
        .collect()
}

/// `[a-z0-9]{6}.[a-z0-9]{16}`, or malformed in case or characters but not in shape.
fn token_like(text: &str) -> bool {
    text.len() == 23
        && text.bytes().enumerate().all(|(i, b)| match i {
            6 => b == b'.',
            _ => b.is_ascii_alphanumeric(),
        })
}

/// Every secret seen, and the windows of its encodings that would give it away.
#[derive(Default)]
struct Secrets {
    /// What each secret is and where it was first seen; never the secret itself.
    names: Vec<(Kind, String)>,
    /// A secret's identifying bytes (a key's DER, a token's secret half) → its index.
    ids: HashMap<Vec<u8>, usize>,
    /// A window → the secret it gives away; `None` when two secrets share it (structure
    /// such as a PEM header).
    windows: HashMap<Vec<u8>, Option<usize>>,
    /// Windows of public material (certificates, public keys), which keys contain too.
    public: HashSet<Vec<u8>>,
    /// Contents already read.
    read: HashSet<Vec<u8>>,
}

impl Secrets {
    /// Registers the secret `identity` first seen `place`, with the windows of `forms`;
    /// returns its index.
    fn add(&mut self, kind: Kind, place: &str, identity: &[u8], forms: &[Vec<u8>]) -> usize {
        let next = self.names.len();
        let id = *self.ids.entry(identity.to_vec()).or_insert(next);
        if id == next {
            self.names.push((kind, place.to_string()));
        }
        for piece in forms.iter().flat_map(|form| form.windows(kind.window())) {
            self.windows
                .entry(piece.to_vec())
                .and_modify(|owner| {
                    if *owner != Some(id) {
                        *owner = None;
                    }
                })
                .or_insert(Some(id));
        }
        id
    }

    /// A token secret, as it is and as base64 (a Secret's `data`).
    fn add_token_secret(&mut self, place: &str, secret: &str) {
        let forms = [secret.into(), BASE64.encode(secret).into_bytes()];
        self.add(Kind::TokenSecret, place, secret.as_bytes(), &forms);
    }

    /// The name of secret `id` for a message: its kind and where it was first seen.
    fn name(&self, id: usize) -> String {
        let (kind, place) = &self.names[id];
        format!("{} {place}", kind.name())
    }

    /// The ids of every secret of `kind` seen so far.
    fn of_kind(&self, kind: Kind) -> BTreeSet<usize> {
        let ids = self.names.iter().enumerate();
        ids.filter(|(_, (k, _))| *k == kind)
            .map(|(id, _)| id)
            .collect()
    }

    fn count(&self, kind: Kind) -> usize {
        self.names.iter().filter(|(k, _)| *k == kind).count()
    }

    /// Reads the private keys (secret) and certificates and public keys (public) of `text`.
    fn read_pem(&mut self, name: &str, text: &str) {
        for block in pem_blocks(text) {
            let forms = encodings(&block);
            if block.label.ends_with("PRIVATE KEY") {
                self.add(Kind::PrivateKey, &format!("in {name}"), &block.der, &forms);
            } else {
                let window = Kind::PrivateKey.window();
                let pieces = forms.iter().flat_map(|form| form.windows(window));
                self.public.extend(pieces.map(<[u8]>::to_vec));
            }
        }
    }

    /// Reads every secret of a file or output: PEM keys, tokens, and in YAML the base64
    /// `*-data` fields (kubeconfigs) and `token-secret` (bootstrap-token Secrets).
    fn read_text(&mut self, name: &str, bytes: &[u8]) {
        if !self.read.insert(bytes.to_vec()) {
            return;
        }
        let text = String::from_utf8_lossy(bytes);
        self.read_pem(name, &text);
        let words = text.split(|c: char| !c.is_ascii_alphanumeric() && c != '.');
        for token in words.filter(|w| token_like(w)) {
            let place = format!("of token {} in {name}", &token[..6]);
            self.add_token_secret(&place, &token[7..]);
        }
        let documents = serde_yaml::Deserializer::from_str(&text).map(Value::deserialize);
        for value in documents.map_while(Result::ok) {
            self.read_yaml(name, &value);
        }
    }

    fn read_yaml(&mut self, name: &str, value: &Value) {
        match value {
            Value::Mapping(map) => {
                for (key, value) in map {
                    let decoded = value.as_str().and_then(|v| BASE64.decode(v).ok());
                    let decoded = decoded.map(|d| String::from_utf8_lossy(&d).into_owned());
                    match (key.as_str(), decoded) {
                        (Some(key), Some(pem)) if key.ends_with("-data") => {
                            self.read_pem(&format!("{name} ({key})"), &pem);
                        }
                        (Some("token-secret"), Some(secret)) => {
                            self.add_token_secret(&format!("in {name}"), &secret);
                        }
                        _ => self.read_yaml(name, value),
                    }
                }
            }
            Value::Sequence(items) => items.iter().for_each(|item| self.read_yaml(name, item)),
            _ => {}
        }
    }

    /// Where `text` gives a secret away: each hit's secret and byte range.
    fn hits(&self, text: &[u8]) -> Vec<(usize, std::ops::Range<usize>)> {
        let mut hits = Vec::new();
        for window in [Kind::PrivateKey.window(), Kind::TokenSecret.window()] {
            for (at, piece) in text.windows(window).enumerate() {
                if let Some(Some(id)) = self.windows.get(piece) {
                    if !self.public.contains(piece) {
                        hits.push((*id, at..at + window));
                    }
                }
            }
        }
        hits
    }

    /// The secrets `text` gives away.
    fn found_in(&self, text: &[u8]) -> BTreeSet<usize> {
        self.hits(text).into_iter().map(|(id, _)| id).collect()
    }

    /// `text` with every secret it gives away starred out, for a failure message.
    fn redact(&self, text: &[u8]) -> String {
        let mut text = text.to_vec();
        for (_, range) in self.hits(&text.clone()) {
            text[range].fill(b'*');
        }
        String::from_utf8_lossy(&text).into_owned()
    }
}

/// One run: its (secret-free) command line, what its stdout is, and how many secrets were
/// known before it (later ones are the run's own: its arguments or its new result).
struct Run {
    label: String,
    out: Output,
    prints: Prints,
    known_before: usize,
    /// The secrets its stdout may show as its result: the tokens of its `--config` file,
    /// for `Prints::ConfigTokens`.
    shown_by_design: BTreeSet<usize>,
}

/// The trees every command works on; the harness reads all of them before each run.
struct Trees {
    control_plane: TempTree,
    rsa: TempTree,
    workers: [TempTree; 3],
    /// Config files, `--output` and `--metrics-file` targets, another manifests dir.
    scratch: TempTree,
}

impl Trees {
    fn new() -> Trees {
        Trees {
            control_plane: TempTree::new(),
            rsa: TempTree::new(),
            workers: [TempTree::new(), TempTree::new(), TempTree::new()],
            scratch: TempTree::new(),
        }
    }

    fn named(&self) -> Vec<(&'static str, &TempTree)> {
        let [first, second, third] = &self.workers;
        vec![
            ("cp", &self.control_plane),
            ("rsa", &self.rsa),
            ("worker1", first),
            ("worker2", second),
            ("worker3", third),
            ("scratch", &self.scratch),
        ]
    }

    /// A file of the scratch tree, as an argument.
    fn scratch(&self, name: &str) -> String {
        self.scratch.root().join(name).display().to_string()
    }
}

/// Runs commands, collecting secrets and outputs; judges all outputs at the end.
struct Harness<'t> {
    trees: Vec<(&'static str, &'t TempTree)>,
    secrets: Secrets,
    runs: Vec<Run>,
}

impl<'t> Harness<'t> {
    fn new(trees: &'t Trees) -> Harness<'t> {
        Harness {
            trees: trees.named(),
            secrets: Secrets::default(),
            runs: Vec::new(),
        }
    }

    fn read_trees(&mut self) {
        for (name, tree) in &self.trees {
            for (rel, _, _, content) in tree.snapshot() {
                self.secrets.read_text(&format!("{name}/{rel}"), &content);
            }
        }
    }

    /// Writes a damaged copy of a known secret; its pieces are not new secrets.
    fn damage(&mut self, path: &Path, content: &[u8]) {
        self.secrets.read.insert(content.to_vec());
        std::fs::write(path, content).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// The command line for messages: tree paths shortened, token arguments left out.
    fn label(&self, args: &[String]) -> String {
        let word = |arg: &String| {
            if token_like(arg) {
                return "<token>".to_string();
            }
            let in_tree = self.trees.iter().find_map(|(name, tree)| {
                let root = tree.root().display().to_string();
                arg.strip_prefix(&root)
                    .map(|rest| format!("<{name}>{rest}"))
            });
            in_tree.unwrap_or_else(|| arg.clone())
        };
        args.iter().map(word).collect::<Vec<_>>().join(" ")
    }

    /// Runs `kubepki -vvv <args>`, which must exit with `code`.
    fn run(&mut self, args: Vec<String>, code: i32) -> Output {
        self.read_trees();
        let label = self.label(&args);
        let known_before = self.secrets.names.len();
        self.read_arguments(&label, &args);
        let out = kubepki(&[vec![VERBOSE.to_string()], args.clone()].concat());
        assert_eq!(
            out.status.code(),
            Some(code),
            "`{label}`: {}",
            self.secrets.redact(&out.stderr)
        );
        let prints = Prints::of(&args);
        self.read_result(prints, &label, &out, known_before);
        let shown_by_design = match prints {
            Prints::ConfigTokens => self.config_tokens(&args),
            Prints::TokenList => self.secrets.of_kind(Kind::TokenSecret),
            _ => BTreeSet::new(),
        };
        self.runs.push(Run {
            label,
            out: out.clone(),
            prints,
            known_before,
            shown_by_design,
        });
        out
    }

    /// The secrets of the file `args` name with `--config`.
    fn config_tokens(&self, args: &[String]) -> BTreeSet<usize> {
        let file = args
            .iter()
            .skip_while(|a| *a != "--config")
            .nth(1)
            .expect("a --config file");
        self.secrets
            .found_in(&std::fs::read(file).expect("the --config file"))
    }

    /// Registers the secret halves of token arguments, even malformed ones, and the
    /// certificate keys given with `--certificate-key`.
    fn read_arguments(&mut self, label: &str, args: &[String]) {
        for arg in args.iter().filter(|a| token_like(a)) {
            let place = format!("of a token argument of `{label}`");
            self.secrets.add_token_secret(&place, &arg[7..]);
        }
        let keys = args
            .windows(2)
            .filter(|pair| pair[0] == "--certificate-key")
            .map(|pair| pair[1].to_lowercase().into_bytes());
        for key in keys {
            let place = format!("of `{label}`");
            let forms = [key.clone(), key.to_ascii_uppercase()];
            self.secrets.add(Kind::CertificateKey, &place, &key, &forms);
        }
    }

    /// Registers the new secret a by-design result holds, and checks there is one.
    fn read_result(&mut self, prints: Prints, label: &str, out: &Output, known_before: usize) {
        let name = format!("the stdout of `{label}`");
        match prints {
            Prints::Report | Prints::ConfigTokens | Prints::TokenList => return,
            Prints::NewCertificateKey => {
                let hex = out.stdout.trim_ascii().to_vec();
                let place = format!("in {name}");
                self.secrets.add(
                    Kind::CertificateKey,
                    &place,
                    &hex,
                    std::slice::from_ref(&hex),
                );
            }
            Prints::NewToken | Prints::NewKubeconfig => self.secrets.read_text(&name, &out.stdout),
        }
        let own = self.secrets.found_in(&out.stdout);
        assert!(
            !out.status.success() || own.iter().any(|id| *id >= known_before),
            "`{label}`: no new secret recognised in its result ({prints:?})"
        );
    }

    /// Every leak: a secret on any stderr, or on a stdout other than a by-design result's own.
    fn leaks(&self) -> Vec<String> {
        let mut leaks = Vec::new();
        for run in &self.runs {
            let name = |id: usize| self.secrets.name(id);
            for id in self.secrets.found_in(&run.out.stderr) {
                leaks.push(format!("`{}` printed {} on stderr", run.label, name(id)));
            }
            for id in self.secrets.found_in(&run.out.stdout) {
                if run.shown_by_design.contains(&id) {
                    continue;
                }
                if matches!(
                    run.prints,
                    Prints::Report | Prints::ConfigTokens | Prints::TokenList
                ) || id < run.known_before
                {
                    leaks.push(format!("`{}` printed {} on stdout", run.label, name(id)));
                }
            }
        }
        leaks
    }

    fn assert_no_leak(mut self) {
        self.read_trees();
        let leaks = self.leaks();
        assert!(
            leaks.is_empty(),
            "{} of {} runs leaked:\n{}",
            leaks.len(),
            self.runs.len(),
            leaks.join("\n")
        );
    }
}

/// `args` followed by `tree`'s `--cert-dir` and `--kubeconfig-dir`.
fn on(tree: &TempTree, args: &[&str]) -> Vec<String> {
    let mut all = plain(args);
    all.extend(tree.dir_args());
    all
}

fn plain(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// `init` and its phases, planned and applied, as text and JSON.
fn init_runs(h: &mut Harness, trees: &Trees, port: &str) {
    let variants: [&[&str]; 10] = [
        &["--dry-run"],
        &["--dry-run", "-o", "json"],
        &[],
        &["-o", "json"],
        &["--dry-run"],
        &["phase", "certs", "all", "-o", "json"],
        &["phase", "certs", "sa"],
        &["phase", "certs", "apiserver", "--dry-run"],
        &["phase", "kubeconfig", "all"],
        &["phase", "kubeconfig", "admin", "-o", "json"],
    ];
    for variant in variants {
        let extra = [&["--apiserver-bind-port", port], variant].concat();
        h.run(trees.control_plane.init_args(ALGORITHM, &extra), 0);
    }
}

fn certs_runs(h: &mut Harness, trees: &Trees) {
    let cp = &trees.control_plane;
    let metrics = trees.scratch("metrics.prom");
    let checks: [(&[&str], i32); 5] = [
        (&[], 0),
        (&["-o", "json"], 0),
        (&["-o", "yaml"], 0),
        (&["--metrics-file", &metrics], 0),
        (&["--fail-within", "3650d"], 3),
    ];
    for (variant, code) in checks {
        h.run(
            on(cp, &[&["certs", "check-expiration"], variant].concat()),
            code,
        );
    }
    h.run(on(cp, &["certs", "ca-cert-hash"]), 0);
    h.run(plain(&["certs", "certificate-key"]), 0);
    let backup = trees.scratch("backup");
    let renewals: [&[&str]; 4] = [
        &["all"],
        &["all", "--expiring-within", "30d"],
        &["apiserver", "admin.conf", "--backup-dir", &backup],
        &[
            "all",
            "--expiring-within",
            "400d",
            "--encryption-algorithm",
            "ECDSA-P384",
        ],
    ];
    for variant in renewals {
        h.run(on(cp, &[&["certs", "renew"], variant].concat()), 0);
    }
}

/// `certs audit`, a reconcile planned and applied (every leaf to ECDSA-P256), the
/// generations, and the rollback that puts the tree back as it was.
fn day2_runs(h: &mut Harness, trees: &Trees, port: &str) {
    let cp = &trees.control_plane;
    let config = trees.scratch("reconcile.yaml");
    let yaml = format!(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  \
         advertiseAddress: 127.0.0.1\n  bindPort: {port}\nnodeRegistration:\n  name: cp1\n"
    );
    std::fs::write(&config, yaml).expect("writing the configuration");
    let reconcile = ["certs", "renew", "--reconcile", "--config", &config];
    let ecdsa = [&reconcile[..], &["--encryption-algorithm", "ECDSA-P256"]].concat();
    let runs: [(Vec<&str>, i32); 6] = [
        (vec!["certs", "audit"], 0),
        (vec!["certs", "audit", "-o", "json", "--config", &config], 0),
        ([&ecdsa[..], &["--plan", "-o", "json"]].concat(), 3),
        (ecdsa.clone(), 0),
        (vec!["certs", "generations", "-o", "yaml"], 0),
        (vec!["certs", "rollback"], 0),
    ];
    for (args, code) in runs {
        h.run(on(cp, &args), code);
    }
}

/// `certs rotate-ca`: every stage of the CAs and the key pair whose rotation leaves the
/// cluster CA (and so the later runs' joins) alone, a refusal, and the cluster CA's status
/// and dry runs. The stages write new private keys, which the end of the test reads too.
fn rotation_runs(h: &mut Harness, trees: &Trees) {
    let cp = &trees.control_plane;
    for row in ["front-proxy-ca", "etcd-ca", "sa"] {
        for stage in ["trust", "sign", "finish"] {
            // sa's finish within 24h of sign needs --force
            let mut args = vec!["certs", "rotate-ca", row, stage];
            if (row, stage) == ("sa", "finish") {
                args.push("--force");
            }
            h.run(on(cp, &args), 0);
        }
    }
    h.run(on(cp, &["certs", "rotate-ca", "ca", "sign"]), 1);
    h.run(
        on(cp, &["certs", "rotate-ca", "ca", "trust", "--dry-run"]),
        0,
    );
    h.run(on(cp, &["certs", "rotate-ca", "status", "-o", "json"]), 0);
}

fn kubeconfig_runs(h: &mut Harness, trees: &Trees) {
    let cp = &trees.control_plane;
    let output = trees.scratch("bob.conf");
    let users: [&[&str]; 3] = [
        &["--client-name", "alice", "--org", "devs"],
        &["--client-name", "bob", "--out", &output],
        &[
            "--client-name",
            "carol",
            "--encryption-algorithm",
            "RSA-2048",
        ],
    ];
    for variant in users {
        h.run(on(cp, &[&["kubeconfig", "user"], variant].concat()), 0);
    }
    kubelet_runs(h, trees);
}

/// The kubelet commands on the control plane: a serving certificate, and repair writing a
/// new kubelet.conf to a file and to stdout.
fn kubelet_runs(h: &mut Harness, trees: &Trees) {
    let cp = &trees.control_plane;
    let kubelet_dir = cp.root().join("kubelet-pki");
    std::fs::create_dir_all(&kubelet_dir).expect("a kubelet directory");
    let dir = kubelet_dir.display().to_string();
    let serving = [
        "kubelet",
        "serving-cert",
        "--node-name",
        "w1",
        "--node-ip",
        "10.0.0.21",
        "--out-dir",
        &dir,
    ];
    h.run(on(cp, &serving), 0);
    h.run(
        on(cp, &["certs", "renew", "all", "--kubelet-cert-dir", &dir]),
        0,
    );
    h.run(on(cp, &["kubelet", "config"]), 0);
    let output = trees.scratch("w1.conf");
    let repair = [
        "kubelet",
        "repair",
        "--node-name",
        "w1",
        "--kubelet-cert-dir",
        &dir,
    ];
    h.run(on(cp, &[&repair[..], &["--out", &output]].concat()), 0);
    h.run(on(cp, &[&repair[..], &["--out", "-"]].concat()), 0);
    h.run(on(cp, &repair), 1);
    // The external-CA flow: keys made here are never printed.
    let node_dir = trees.scratch.root().join("node-pki");
    std::fs::create_dir_all(&node_dir).expect("a node's kubelet directory");
    let node = node_dir.display().to_string();
    let csr_only = [
        "kubelet",
        "serving-cert",
        "--csr-only",
        "--node-name",
        "w2",
        "--node-ip",
        "10.0.0.22",
        "--out-dir",
        &node,
    ];
    h.run(plain(&csr_only), 0);
    let csr = node_dir.join("kubelet.csr").display().to_string();
    let sign = ["certs", "sign-csr", &csr, "--for", "kubelet-serving"];
    h.run(on(cp, &sign), 0);
    let signed = trees.scratch("w2.crt");
    h.run(on(cp, &[&sign[..], &["--out", &signed]].concat()), 0);
    let external = trees.scratch.root().join("external");
    let (pki, root) = (external.join("pki"), external.display().to_string());
    let generate = [
        "certs",
        "generate-csr",
        "--node-name",
        "cp9",
        "--apiserver-advertise-address",
        "10.0.0.9",
        "--cert-dir",
        &pki.display().to_string(),
        "--kubeconfig-dir",
        &root,
    ];
    h.run(plain(&generate), 0);
    h.run(plain(&generate), 1);
}

/// The token commands; returns a token `token create` printed and the arguments of the
/// `kubepki join` line another one printed.
fn token_runs(h: &mut Harness, trees: &Trees) -> (String, Vec<String>) {
    let cp = &trees.control_plane;
    h.run(plain(&["token", "generate"]), 0);
    let created = h.run(on(cp, &["token", "create"]), 0);
    let join = h.run(on(cp, &["token", "create", "--print-join-command"]), 0);
    let given = [
        "token",
        "create",
        "given0.t0ken0f0rtheusr0",
        "--ttl",
        "0",
        "--description",
        "for the secrets test",
        "--groups",
        "system:bootstrappers:extra",
        "--print-join-command",
    ];
    h.run(on(cp, &given), 0);
    h.run(on(cp, &["token", "create", "--usages", "signing"]), 0);
    h.run(on(cp, &["token", "manifests"]), 0);
    h.run(on(cp, &["token", "list"]), 0);
    h.run(on(cp, &["token", "list", "-o", "json"]), 0);
    h.run(on(cp, &["token", "delete", "given0"]), 0);
    h.run(on(cp, &["token", "delete", "given0.t0ken0f0rtheusr0"]), 1);
    let manifests = trees.scratch("manifests");
    h.run(
        on(cp, &["token", "manifests", "--manifests-dir", &manifests]),
        0,
    );
    let token = String::from_utf8_lossy(&created.stdout).trim().to_string();
    (token, printed_join(&join.stdout))
}

/// `kubepki join <args>` into `worker`, with a short discovery timeout.
fn join_args(worker: &TempTree, args: &[&str]) -> Vec<String> {
    on(
        worker,
        &[&["join"], args, &["--discovery-timeout", "10s"]].concat(),
    )
}

/// A JoinConfiguration file `name` in the scratch tree: `worker`'s CA path, `token`, the pin.
fn join_configuration(trees: &Trees, name: &str, worker: &TempTree, token: &str) -> String {
    let cp = &trees.control_plane;
    let yaml = format!(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ncaCertPath: {ca}\n\
         discovery:\n  bootstrapToken:\n    apiServerEndpoint: {endpoint}\n    token: {token}\n    \
         caCertHashes: [{pin}]\ntimeouts:\n  discovery: 10s\n",
        ca = worker.pki().join("ca.crt").display(),
        endpoint = String::from_utf8_lossy(&cp.read("admin.conf"))
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: https://"))
            .expect("admin.conf names its server"),
        pin = ca_pin(cp),
    );
    write(&trees.scratch.root().join(name), &yaml)
}

fn write(path: &Path, text: &str) -> String {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path.display().to_string()
}

/// The kubeconfig of the control plane's cluster-info, as a `--discovery-file`.
fn discovery_file(trees: &Trees) -> String {
    let manifests = trees.control_plane.root().join("bootstrap");
    let cluster_info = read_manifest(&manifests, "cluster-info.yaml").expect("cluster-info");
    let kubeconfig = cluster_info["data"]["kubeconfig"]
        .as_str()
        .expect("kubeconfig");
    write(&trees.scratch.root().join("discovery.conf"), kubeconfig)
}

/// Joins by token (the printed command, again, unpinned, two tokens), by file and by
/// config file; returns the config file.
fn join_runs(h: &mut Harness, trees: &Trees, token: &str, printed: &[String]) -> String {
    let [first, second, third] = &trees.workers;
    let printed: Vec<&str> = printed.iter().map(String::as_str).collect();
    let (address, printed_token, pin) = (printed[0], printed[2], printed[4]);
    h.run(join_args(first, &printed), 0);
    h.run(join_args(first, &printed), 0);
    let unpinned = [address, "--token", token];
    let unsafe_skip = "--discovery-token-unsafe-skip-ca-verification";
    h.run(
        join_args(second, &[&unpinned[..], &[unsafe_skip]].concat()),
        0,
    );
    let two_tokens = [
        address,
        "--discovery-token",
        printed_token,
        "--tls-bootstrap-token",
        token,
        "--discovery-token-ca-cert-hash",
        pin,
    ];
    h.run(join_args(first, &two_tokens), 0);
    let file = discovery_file(trees);
    let by_file = ["--discovery-file", &file, "--tls-bootstrap-token", token];
    h.run(join_args(third, &by_file), 0);
    let config = join_configuration(trees, "join.yaml", second, token);
    h.run(on(second, &["join", "--config", &config]), 0);
    config
}

/// `config print|validate`, `init --config` with a token in the file, `completion`.
fn config_runs(h: &mut Harness, trees: &Trees, port: &str, join_config: &str) {
    let init_config = write(
        &trees.scratch.root().join("init.yaml"),
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
         bootstrapTokens:\n- token: \"c0nf1g.t0ken0in0a0file0\"\n",
    );
    h.run(plain(&["config", "print", "init-defaults"]), 0);
    for config in [&init_config, join_config] {
        h.run(plain(&["config", "validate", "--config", config]), 0);
    }
    let with_config = ["--apiserver-bind-port", port, "--config", &init_config];
    h.run(trees.control_plane.init_args(ALGORITHM, &with_config), 0);
    for shell in ["bash", "zsh", "fish"] {
        h.run(plain(&["completion", shell]), 0);
    }
}

/// Refusals that handle a token: wrong secret, wrong pin, malformed tokens on the command
/// line and in config files (quoted wrongly, or unquoted digits that YAML reads as a number),
/// and a token created twice.
fn refusal_runs(h: &mut Harness, trees: &Trees, token: &str, printed: &[String], port: &str) {
    let worker = &trees.workers[0];
    let (address, pin) = (printed[0].as_str(), printed[4].as_str());
    let wrong_secret = format!("{}.wrongsecret01234", &token[..6]);
    let wrong_pin = format!("sha256:{}", "0".repeat(64));
    let malformed = format!("{}.MALFORMEDsecret1", &token[..6]);
    let hash = "--discovery-token-ca-cert-hash";
    let (discovery, tls) = ("--discovery-token", "--tls-bootstrap-token");
    let refusals: [(&[&str], i32); 5] = [
        (&[address, "--token", &wrong_secret, hash, pin], 1),
        (&[address, "--token", token, hash, &wrong_pin], 1),
        (&[address, "--token", &malformed, hash, pin], 2),
        (&[address, discovery, &malformed, tls, token, hash, pin], 2),
        (&[address, discovery, token, tls, &malformed, hash, pin], 2),
    ];
    for (args, code) in refusals {
        h.run(join_args(worker, args), code);
    }
    let unknown = [address, "--token", "zzzzzz.unkn0wnt0ken0id0", hash, pin];
    let retried = [&["join"], &unknown[..], &["--discovery-timeout", "1s"]].concat();
    h.run(on(worker, &retried), 1);
    let cp = &trees.control_plane;
    h.run(on(cp, &["token", "create", "abcdef.MALFORMEDsecret2"]), 2);
    h.run(on(cp, &["token", "create", token]), 1);
    let digits = "314159.2653589793238462";
    let join_digits = join_configuration(trees, "join-digits.yaml", worker, digits);
    let join_malformed = join_configuration(
        trees,
        "join-malformed.yaml",
        worker,
        "abcdef.MALFORMEDsecret3",
    );
    let init_digits = write(
        &trees.scratch.root().join("init-digits.yaml"),
        &format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
             bootstrapTokens:\n- token: {digits}\n"
        ),
    );
    for config in [&join_digits, &join_malformed] {
        h.run(on(worker, &["join", "--config", config]), 1);
    }
    for config in [&join_digits, &init_digits] {
        h.run(plain(&["config", "validate", "--config", config]), 1);
    }
    let with_config = ["--apiserver-bind-port", port, "--config", &init_digits];
    h.run(cp.init_args(ALGORITHM, &with_config), 1);
}

/// The first `lines` lines of a PEM file: a key cut short.
fn truncated(pem: &[u8], lines: usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(pem);
    let kept: String = text.lines().take(lines).map(|l| format!("{l}\n")).collect();
    kept.into_bytes()
}

/// RSA (PKCS#1) keys cut short, with a broken structure, not matching their certificate, and
/// a damaged CA key, under init, renew and kubeconfig user.
fn damaged_key_runs(h: &mut Harness, trees: &Trees) {
    let rsa = &trees.rsa;
    let phase = |name: &str| rsa.init_args("RSA-2048", &["phase", "certs", name]);
    h.run(phase("ca"), 0);
    h.run(phase("apiserver"), 0);
    let key = rsa.pki().join("apiserver.key");
    let original = rsa.read("pki/apiserver.key");
    h.damage(&key, &truncated(&original, 3));
    h.run(phase("apiserver"), 1);
    h.run(on(rsa, &["certs", "renew", "apiserver"]), 1);
    let text = String::from_utf8_lossy(&original);
    h.damage(&key, text.replacen("\nMII", "\nNII", 1).as_bytes());
    h.run(phase("apiserver"), 1);
    h.damage(&key, &rsa.read("pki/ca.key"));
    h.run(phase("apiserver"), 1);
    h.run(rsa.init_args("RSA-2048", &[]), 1);
    std::fs::write(&key, &original).expect("restoring apiserver.key");
    h.damage(
        &rsa.pki().join("ca.key"),
        &truncated(&rsa.read("pki/ca.key"), 4),
    );
    let server = ["--server", "https://127.0.0.1:6443"];
    let user = [
        &["kubeconfig", "user", "--client-name", "dave"],
        &server[..],
    ]
    .concat();
    h.run(on(rsa, &user), 1);
    h.run(phase("apiserver-kubelet-client"), 1);
}

/// `certs bundle export` (stdout, a file, the Secret manifest) and `import` (new, again,
/// refused for a wrong, malformed or uppercase key and for another cluster's CA, forced),
/// all with a certificate key on the command line.
fn bundle_runs(h: &mut Harness, trees: &Trees) {
    let key_out = h.run(plain(&["certs", "certificate-key"]), 0);
    let key = String::from_utf8_lossy(&key_out.stdout).trim().to_string();
    let cp = &trees.control_plane;
    let file = trees.scratch("kubeadm-certs.yaml");
    let export = ["certs", "bundle", "export", "--certificate-key", &key];
    h.run(on(cp, &export), 0);
    h.run(on(cp, &[&export[..], &["--secret"]].concat()), 0);
    h.run(on(cp, &[&export[..], &["--out", &file]].concat()), 0);
    let imported = trees.scratch.root().join("imported");
    let into_scratch = |args: &[&str]| {
        let mut all = plain(args);
        let pki = imported.join("pki").display().to_string();
        all.extend(plain(&["--cert-dir", &pki]));
        all.extend(plain(&[
            "--kubeconfig-dir",
            &imported.display().to_string(),
        ]));
        all
    };
    let import = ["certs", "bundle", "import", &file, "--certificate-key"];
    let wrong = format!(
        "{}{}",
        &key[..63],
        if key.ends_with('0') { "1" } else { "0" }
    );
    h.run(into_scratch(&[&import[..], &[&wrong]].concat()), 1);
    h.run(into_scratch(&[&import[..], &[&key[..40]]].concat()), 2);
    h.run(into_scratch(&[&import[..], &[&key]].concat()), 0);
    h.run(
        into_scratch(&[&import[..], &[&key.to_uppercase()]].concat()),
        0,
    );
    let rsa = &trees.rsa;
    h.run(on(rsa, &[&import[..], &[&key]].concat()), 1);
    let backup = trees.scratch("bundle-backup");
    let forced = [&import[..], &[&key, "--force", "--backup-dir", &backup]].concat();
    h.run(on(rsa, &forced), 0);
}

/// A kubeconfig whose embedded key is cut short, under every command that reads it.
fn damaged_kubeconfig_runs(h: &mut Harness, trees: &Trees, port: &str) {
    let cp = &trees.control_plane;
    let admin = String::from_utf8_lossy(&cp.read("admin.conf")).into_owned();
    let damaged: String = admin
        .lines()
        .map(|line| match line.split_once("client-key-data: ") {
            Some((indent, data)) => {
                format!("{indent}client-key-data: {}\n", &data[..data.len() / 2])
            }
            None => format!("{line}\n"),
        })
        .collect();
    h.damage(&cp.root().join("admin.conf"), damaged.as_bytes());
    h.run(on(cp, &["certs", "check-expiration"]), 0);
    h.run(on(cp, &["certs", "renew", "admin.conf"]), 1);
    let phase = [
        "--apiserver-bind-port",
        port,
        "phase",
        "kubeconfig",
        "admin",
    ];
    h.run(cp.init_args(ALGORITHM, &phase), 1);
    h.run(on(cp, &["token", "create", "--print-join-command"]), 0);
    h.run(on(cp, &["kubeconfig", "user", "--client-name", "erin"]), 0);
}

/// The check finds what it looks for: many secrets of each kind, a key planted whole, in
/// part, as PKCS#8 and as a kubeconfig's base64; half a token; and no certificate.
fn assert_not_vacuous(h: &mut Harness, trees: &Trees, token: &str) {
    h.read_trees();
    let s = &h.secrets;
    let counts = [
        s.count(Kind::PrivateKey),
        s.count(Kind::TokenSecret),
        s.count(Kind::CertificateKey),
    ];
    assert!(
        counts[0] >= 40 && counts[1] >= 5 && counts[2] == 4,
        "private keys, tokens, certificate keys: {counts:?}"
    );
    let plant = |piece: &[u8]| s.found_in(&[&b"noise "[..], piece, b" noise"].concat());
    let cp = &trees.control_plane;
    let ca_key = cp.read("pki/ca.key");
    let ca = plant(&ca_key);
    assert_eq!(ca.len(), 1, "the CA key is one known secret");
    let body = ca_key.split(|b| *b == b'\n').nth(1).expect("a body line");
    assert_eq!(
        plant(&body[10..50]),
        ca,
        "40 characters of the CA key's PEM body"
    );
    let key_path = cp.pki().join("ca.key").display().to_string();
    let pkcs8 = openssl(&["pkey", "-in", &key_path]).stdout;
    assert_eq!(plant(&pkcs8), ca, "the CA key as PKCS#8");
    let kubeconfig = String::from_utf8_lossy(&cp.read("super-admin.conf")).into_owned();
    let data = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("client-key-data: "))
        .expect("client-key-data");
    assert_eq!(
        plant(&data.as_bytes()[100..140]).len(),
        1,
        "40 characters of client-key-data"
    );
    assert_eq!(
        plant(&token.as_bytes()[9..17]).len(),
        1,
        "half a token secret"
    );
    assert!(
        plant(&cp.read("pki/ca.crt")).is_empty(),
        "a certificate is public"
    );
}

#[test]
fn no_command_prints_a_secret() {
    let trees = Trees::new();
    let mut h = Harness::new(&trees);
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    let port = listener.local_addr().expect("address").port().to_string();
    init_runs(&mut h, &trees, &port);
    let cp = &trees.control_plane;
    let _endpoint = Endpoint::start_bootstrap(listener, &cp.pki(), &cp.root().join("bootstrap"));
    certs_runs(&mut h, &trees);
    day2_runs(&mut h, &trees, &port);
    rotation_runs(&mut h, &trees);
    kubeconfig_runs(&mut h, &trees);
    let (token, printed) = token_runs(&mut h, &trees);
    let join_config = join_runs(&mut h, &trees, &token, &printed);
    config_runs(&mut h, &trees, &port, &join_config);
    refusal_runs(&mut h, &trees, &token, &printed, &port);
    damaged_key_runs(&mut h, &trees);
    bundle_runs(&mut h, &trees);
    assert_not_vacuous(&mut h, &trees, &token);
    damaged_kubeconfig_runs(&mut h, &trees, &port);
    h.assert_no_leak();
}
