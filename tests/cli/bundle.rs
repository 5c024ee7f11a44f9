//! Issue #16: the shared control-plane material as kubeadm's encrypted `kubeadm-certs`
//! bundle, and `init` on hosts 2 and 3.
//!
//! - Round trip: export, import into an empty directory, byte-identical files with kubeadm's
//!   modes; a second import keeps them all.
//! - An independent implementation both ways: Python's `cryptography` AES-GCM (and PyYAML)
//!   opens what kubepki seals, and seals, as `kubectl get secret -o yaml` shows kubeadm's
//!   Secret, what kubepki then opens (`support/kubeadm_certs.py`).
//! - Refusals, each exit 1 with one line naming the file and nothing written: a wrong key, a
//!   bundle cut short (mid-entry and between entries), a flipped ciphertext byte, entries
//!   swapped, another cluster's CA in the tree (and `--force`, which backs it up first).
//! - Three control planes on 127.0.0.1, .2 and .3 from one bundle: a real 3-member etcd
//!   cluster, each member serving its own host's `etcd/server` and `etcd/peer` (members dial
//!   each other's own address, so each peer certificate is checked for its host's IP), put
//!   and get through each host's `apiserver-etcd-client`; one CA in every `ca.crt` and
//!   `admin.conf`; each `apiserver` valid for the shared endpoint and its own address.
//!
//! Costs (ECDSA-P256 trees): about a second each, and 3 s for the etcd cluster.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_yaml::Value;

use crate::etcd::{Cluster, Etcdctl, text};
use crate::support::{TempTree, assert_success, check, kubepki, openssl, python_with_cryptography};
use crate::tier::ha;

const ALGORITHM: &str = "ECDSA-P256";
/// The control-plane endpoint the three hosts share (a load balancer's name).
const ENDPOINT_HOST: &str = "cp.kubepki.test";

/// A new certificate key, as `kubepki certs certificate-key` prints it.
fn new_key() -> String {
    let out = kubepki(&["certs", "certificate-key"]);
    assert_success(&out, "certs certificate-key");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// `kubepki certs bundle export` of `tree` with `key` and `extra` arguments.
fn export(tree: &TempTree, key: &str, extra: &[&str]) -> Output {
    let mut args = strings(&["certs", "bundle", "export", "--certificate-key", key]);
    args.extend(tree.dir_args());
    args.extend(strings(extra));
    kubepki(&args)
}

/// The bundle of `tree` with `key`, written to `<tree>/kubeadm-certs.yaml`.
fn export_file(tree: &TempTree, key: &str) -> PathBuf {
    let file = tree.root().join("kubeadm-certs.yaml");
    let out = export(tree, key, &["--out", &file.display().to_string()]);
    assert_success(&out, "certs bundle export -o");
    file
}

/// `kubepki certs bundle import` of `file` into `tree` with `key` and `extra` arguments.
fn import(tree: &TempTree, key: &str, file: &Path, extra: &[&str]) -> Output {
    let mut args = strings(&["certs", "bundle", "import", "--certificate-key", key]);
    args.push(file.display().to_string());
    args.extend(tree.dir_args());
    args.extend(strings(extra));
    kubepki(&args)
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// Every shared file of `to` is byte-identical to `from`'s, with the same mode.
fn assert_same_shared_files(from: &TempTree, to: &TempTree) {
    for rel in check::SHARED_FILES {
        let (original, copy) = (from.pki().join(rel), to.pki().join(rel));
        assert_eq!(fs::read(&copy).ok(), fs::read(&original).ok(), "{rel}");
        assert_eq!(mode(&copy), mode(&original), "mode of {rel}");
    }
}

#[test]
fn round_trip_is_byte_identical_and_a_second_import_keeps_every_file() {
    let first = TempTree::new();
    first.init(ALGORITHM, &[]);
    let key = new_key();
    let file = export_file(&first, &key);
    assert_eq!(mode(&file), 0o600);
    let second = TempTree::new();
    let out = import(&second, &key, &file, &[]);
    assert_success(&out, "certs bundle import");
    assert_same_shared_files(&first, &second);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("[bundle] Wrote ").count(), 8, "{stdout}");
    assert!(
        stdout.contains("kubepki init --node-name <name>"),
        "{stdout}"
    );
    let before = second.snapshot();
    let again = import(&second, &key, &file, &[]);
    assert_success(&again, "a second import");
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert_eq!(stdout.matches("(identical)").count(), 8, "{stdout}");
    assert_eq!(second.snapshot(), before, "nothing written again");
    let on_stdout = export(&first, &key, &["--secret"]);
    assert_success(&on_stdout, "certs bundle export --secret");
    let manifest = String::from_utf8_lossy(&on_stdout.stdout);
    let kinds: Vec<String> = documents(&manifest)
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(kinds, ["Secret", "Role", "RoleBinding"]);
}

/// Runs `support/kubeadm_certs.py` with `args`.
fn kubeadm_certs_py(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/support/kubeadm_certs.py");
    let out = Command::new(python_with_cryptography())
        .arg(script)
        .args(args)
        .output()
        .expect("running python3");
    assert_success(&out, &format!("kubeadm_certs.py {}", args[0]));
}

#[test]
fn python_opens_what_kubepki_seals_and_kubepki_opens_what_python_seals() {
    let first = TempTree::new();
    first.init(ALGORITHM, &[]);
    let key = new_key();
    let opened = TempTree::new();
    for form in [&[][..], &["--secret"][..]] {
        let file = first.root().join("bundle.yaml");
        let path = file.display().to_string();
        assert_success(
            &export(&first, &key, &[&["--out", &path, "--force"], form].concat()),
            "export",
        );
        kubeadm_certs_py(&["open", &key, &path, &opened.root().display().to_string()]);
        for rel in check::SHARED_FILES {
            let entry = opened.root().join(rel.replace('/', "-"));
            assert_eq!(
                fs::read(entry).ok(),
                fs::read(first.pki().join(rel)).ok(),
                "{rel}"
            );
        }
    }
    let sealed_by_python = first.root().join("kubectl-get-secret.yaml");
    let pki = first.pki().display().to_string();
    kubeadm_certs_py(&["seal", &key, &pki, &sealed_by_python.display().to_string()]);
    let second = TempTree::new();
    assert_success(&import(&second, &key, &sealed_by_python, &[]), "import");
    assert_same_shared_files(&first, &second);
}

/// The YAML documents of `text`.
fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("a YAML document"))
        .collect()
}

/// `yaml` with the `data` entry `entry` replaced by `edit` of its decoded bytes.
fn edit_entry(yaml: &str, entry: &str, edit: impl Fn(&mut Vec<u8>)) -> String {
    let line_start = format!("  {entry}: ");
    yaml.lines()
        .map(|line| match line.strip_prefix(&line_start) {
            Some(value) => {
                let mut bytes = BASE64.decode(value).expect("base64");
                edit(&mut bytes);
                format!("{line_start}{}\n", BASE64.encode(bytes))
            }
            None => format!("{line}\n"),
        })
        .collect()
}

/// The `data` value of `entry` in `yaml`.
fn entry_value(yaml: &str, entry: &str) -> String {
    let line_start = format!("  {entry}: ");
    yaml.lines()
        .find_map(|line| line.strip_prefix(&line_start))
        .expect("the entry")
        .to_string()
}

/// `import` of `file` into `tree` exits 1 with one line naming the file and saying `why`,
/// and writes nothing.
fn assert_refused(tree: &TempTree, key: &str, file: &Path, why: &str) {
    let before = tree.snapshot();
    let out = import(tree, key, file, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}: {stderr}", file.display());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("kubepki: error: {}: ", file.display()))
            && stderr.contains(why),
        "{why:?} in {stderr}"
    );
    assert_eq!(
        tree.snapshot(),
        before,
        "{}: nothing written",
        file.display()
    );
    assert!(!tree.pki().exists(), "not even a directory");
}

#[test]
fn a_wrong_key_a_cut_or_altered_bundle_are_refused_writing_nothing() {
    let first = TempTree::new();
    first.init(ALGORITHM, &[]);
    let key = new_key();
    let file = export_file(&first, &key);
    let yaml = fs::read_to_string(&file).expect("the bundle");
    let target = TempTree::new();
    assert_refused(
        &target,
        &new_key(),
        &file,
        "the certificate key does not open this bundle",
    );
    let variant = |name: &str, content: &str| {
        let path = first.root().join(name);
        fs::write(&path, content).expect("writing a variant");
        path
    };
    let mid_entry = variant("cut-mid-entry.yaml", &yaml[..yaml.len() - 17]);
    assert_refused(&target, &key, &mid_entry, "entry sa.pub does not open");
    let mid_base64 = variant("cut-mid-base64.yaml", &yaml[..yaml.len() - 20]);
    assert_refused(
        &target,
        &key,
        &mid_base64,
        "entry sa.pub is not base64 (cut short?)",
    );
    let between = &yaml[..yaml.find("  front-proxy-ca.crt:").expect("an entry")];
    let between = variant("cut-between.yaml", between);
    let missing = "no entry for front-proxy-ca.key, front-proxy-ca.crt, sa.key, sa.pub";
    assert_refused(&target, &key, &between, missing);
    let in_header = variant(
        "cut-header.yaml",
        &yaml[..yaml.find("kind:").expect("kind")],
    );
    assert_refused(&target, &key, &in_header, "no Secret named kubeadm-certs");
    let flipped = edit_entry(&yaml, "ca.key", |bytes| bytes[20] ^= 1);
    let flipped = variant("flipped.yaml", &flipped);
    assert_refused(
        &target,
        &key,
        &flipped,
        "entry ca.key does not open with the certificate key though the others do",
    );
    let ca_key = entry_value(&yaml, "ca.key");
    let swapped = edit_entry(&yaml, "front-proxy-ca.key", |bytes| {
        *bytes = BASE64.decode(&ca_key).expect("base64")
    });
    let swapped = variant("swapped.yaml", &swapped);
    assert_refused(
        &target,
        &key,
        &swapped,
        "entry front-proxy-ca.key: does not match front-proxy-ca.crt",
    );
    let misuse = import(&target, "0123", &file, &[]);
    assert_eq!(misuse.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&misuse.stderr);
    assert!(
        stderr.starts_with("kubepki: error: --certificate-key: must be 64 hexadecimal"),
        "{stderr}"
    );
}

#[test]
fn another_clusters_bundle_is_refused_and_replaces_the_ca_only_with_force_after_a_backup() {
    let first = TempTree::new();
    first.init(ALGORITHM, &[]);
    let key = new_key();
    let file = export_file(&first, &key);
    let other = TempTree::new();
    other.init(ALGORITHM, &[]);
    let old_ca = other.read("pki/ca.crt");
    let before = other.snapshot();
    let out = import(&other, &key, &file, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let named = format!(
        "kubepki: error: {}: exists and differs from the bundle's ca.crt (a bundle from another cluster?); not replaced without --force",
        other.pki().join("ca.crt").display()
    );
    assert!(
        stderr.starts_with(&named) && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert_eq!(other.snapshot(), before, "nothing written");
    let backup = other.root().join("old");
    let forced = import(
        &other,
        &key,
        &file,
        &["--force", "--backup-dir", &backup.display().to_string()],
    );
    assert_success(&forced, "import --force");
    assert_same_shared_files(&first, &other);
    let generations: Vec<PathBuf> = fs::read_dir(&backup)
        .expect("the backup dir")
        .map(|entry| entry.expect("an entry").path())
        .collect();
    let [generation] = generations.as_slice() else {
        panic!("one generation in {}: {generations:?}", backup.display());
    };
    assert_eq!(fs::read(generation.join("pki/ca.crt")).ok(), Some(old_ca));
    assert_eq!(mode(&generation.join("pki/ca.key")), 0o600);
    let stderr = String::from_utf8_lossy(&forced.stderr);
    assert!(stderr.contains("WARNING: a CA was replaced"), "{stderr}");
    // The import is a generation like a renewal's: rollback puts every file back.
    let backup_arg = backup.display().to_string();
    let mut rollback = strings(&["certs", "rollback", "--backup-dir", &backup_arg]);
    rollback.extend(other.dir_args());
    let rolled_back = kubepki(&rollback);
    assert_success(&rolled_back, "rollback of the import");
    let stdout = String::from_utf8_lossy(&rolled_back.stdout);
    assert!(
        stdout.contains("kube-apiserver: ca, front-proxy-ca, etcd-ca, sa"),
        "{stdout}"
    );
    // Every file as before the import, byte for byte and mode for mode; new are only the
    // generations and the empty directory that held the rollback's mark.
    let files = |snapshot: Vec<(String, u32, std::time::SystemTime, Vec<u8>)>| {
        snapshot
            .into_iter()
            .filter(|(rel, ..)| !rel.starts_with("old") && rel != "tmp")
            .map(|(rel, mode, _, content)| (rel, mode, content))
            .collect::<Vec<_>>()
    };
    let (after, before) = (files(other.snapshot()), files(before));
    let names = |files: &[(String, u32, Vec<u8>)]| -> Vec<String> {
        files.iter().map(|(rel, ..)| rel.clone()).collect()
    };
    assert_eq!(names(&after), names(&before), "the same files");
    assert!(after == before, "every file as before the import");
}

/// `init` of control-plane host `node` at `address` behind the shared endpoint.
fn init_host(tree: &TempTree, node: &str, address: &str) -> Output {
    let endpoint = format!("{ENDPOINT_HOST}:6443");
    let mut args = strings(&[
        "init",
        "--node-name",
        node,
        "--apiserver-advertise-address",
        address,
    ]);
    args.extend(strings(&[
        "--control-plane-endpoint",
        &endpoint,
        "--encryption-algorithm",
        ALGORITHM,
    ]));
    args.extend(tree.dir_args());
    let out = kubepki(&args);
    assert_success(&out, &format!("init on {node}"));
    out
}

/// The CA certificate `admin.conf` of `tree` embeds.
fn admin_ca(tree: &TempTree) -> Vec<u8> {
    let admin = String::from_utf8_lossy(&tree.read("admin.conf")).into_owned();
    let kubeconfig = &documents(&admin)[0];
    let data = kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .expect("certificate-authority-data");
    BASE64.decode(data).expect("base64")
}

/// Whether openssl verifies `cert` against `ca` for `check` (`-verify_ip A`, ...).
fn verifies(ca: &Path, cert: &Path, check: &[&str]) -> bool {
    let (ca, cert) = (ca.display().to_string(), cert.display().to_string());
    let out = openssl(&[&["verify", "-CAfile", &ca], check, &[&cert]].concat());
    out.status.success()
}

#[test]
fn three_control_planes_from_one_bundle_run_one_etcd_cluster() {
    let hosts = [TempTree::new(), TempTree::new(), TempTree::new()];
    let addresses = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
    init_host(&hosts[0], "cp1", addresses[0]);
    let key = new_key();
    let file = export_file(&hosts[0], &key);
    for (i, host) in hosts.iter().enumerate().skip(1) {
        assert_success(&import(host, &key, &file, &[]), "import");
        let out = init_host(host, &format!("cp{}", i + 1), addresses[i]);
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(
            printed.contains("--control-plane --certificate-key \"$KEY\""),
            "{printed}"
        );
        assert!(!printed.contains(&key), "the key is never printed");
        assert_same_shared_files(&hosts[0], host);
    }
    let ca = hosts[0].pki().join("ca.crt");
    for (host, address) in hosts.iter().zip(addresses) {
        assert_eq!(
            admin_ca(host),
            hosts[0].read("pki/ca.crt"),
            "admin.conf's CA"
        );
        let apiserver = host.pki().join("apiserver.crt");
        assert!(verifies(
            &ca,
            &apiserver,
            &["-verify_hostname", ENDPOINT_HOST]
        ));
        assert!(verifies(&ca, &apiserver, &["-verify_ip", address]));
        let etcd_ca = hosts[0].pki().join("etcd/ca.crt");
        let others = addresses
            .iter()
            .filter(|a| **a != address && **a != "127.0.0.1");
        for other in others {
            let peer = host.pki().join("etcd/peer.crt");
            assert!(
                !verifies(&etcd_ca, &peer, &["-verify_ip", other]),
                "peer certs are per host"
            );
            assert!(
                !verifies(&ca, &apiserver, &["-verify_ip", other]),
                "apiserver is per host"
            );
        }
    }
    let members: Vec<(&TempTree, &str)> = hosts.iter().zip(addresses).collect();
    let mut cluster = Cluster::start_on(&members);
    let endpoints = cluster.client_urls();
    let ctl = |host: &TempTree| Etcdctl {
        pki: host.pki(),
        endpoints: endpoints.clone(),
    };
    cluster.wait_healthy(&ctl(&hosts[0]));
    for (i, host) in hosts.iter().enumerate() {
        let health = ctl(host).run("apiserver-etcd-client", &endpoints, &["endpoint", "health"]);
        assert!(health.status.success(), "{}", text(&health));
        let (key, value) = (
            format!("/kubepki/host{i}"),
            format!("written through cp{}", i + 1),
        );
        let put = ctl(host).run(
            "apiserver-etcd-client",
            &endpoints[i..=i],
            &["put", &key, &value],
        );
        assert!(put.status.success(), "{}", text(&put));
        let next = (i + 1) % hosts.len();
        let reader = ctl(&hosts[next]);
        let get = reader.run(
            "apiserver-etcd-client",
            &endpoints[next..=next],
            &["get", &key, "--print-value-only"],
        );
        assert_eq!(
            String::from_utf8_lossy(&get.stdout).trim(),
            value,
            "{}",
            text(&get)
        );
    }
    let list = ctl(&hosts[2]).run(
        "apiserver-etcd-client",
        &endpoints[2..],
        &["member", "list"],
    );
    let listed = text(&list);
    for (i, address) in addresses.iter().enumerate() {
        assert!(
            listed.contains(&format!("member{i}, https://{address}:")),
            "{listed}"
        );
    }
    let nodes = ["cp1", "cp2", "cp3"];
    let ha_hosts: Vec<ha::Host> = hosts
        .iter()
        .zip(nodes)
        .zip(addresses)
        .map(|((tree, node), address)| ha::Host {
            tree,
            node,
            address,
        })
        .collect();
    let endpoint = format!("{ENDPOINT_HOST}:6443");
    ha::apiservers_take_every_hosts_kubeconfigs(&ha_hosts, &endpoint, &endpoints);
}

#[test]
fn a_bundle_for_an_external_etcd_is_imported_only_where_etcd_is_external() {
    let config = tempfile::tempdir().expect("a temp dir");
    let external = config.path().join("external-etcd.yaml");
    let yaml = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
                etcd:\n  external:\n    endpoints: [https://10.0.0.5:2379]\n";
    fs::write(&external, yaml).expect("writing the config");
    let external = external.display().to_string();
    let first = TempTree::new();
    first.init(ALGORITHM, &["--config", &external]);
    let key = new_key();
    let file = first.root().join("kubeadm-certs.yaml");
    let with_config = ["--out", &file.display().to_string(), "--config", &external];
    assert_success(&export(&first, &key, &with_config), "export --config");
    let text = fs::read_to_string(&file).expect("the bundle");
    assert!(
        text.contains("  external-etcd.key: ''\n") && !text.contains("\n  etcd-ca"),
        "{text}"
    );
    let local = TempTree::new();
    assert_refused(&local, &key, &file, "no entry for etcd-ca.key, etcd-ca.crt");
    let second = TempTree::new();
    let out = import(&second, &key, &file, &["--config", &external]);
    assert_success(&out, "import --config");
    assert!(!second.pki().join("etcd").exists());
}

/// A bundle sealed by Python (kubeadm's format, independently) from the shared files of
/// `first` as `edit` leaves them in a copy: `file -> content`, `None` for an absent file.
fn sealed_variant(
    first: &TempTree,
    key: &str,
    name: &str,
    edit: impl Fn(&mut std::collections::BTreeMap<&str, Option<Vec<u8>>>),
) -> PathBuf {
    let mut files: std::collections::BTreeMap<&str, Option<Vec<u8>>> = check::SHARED_FILES
        .iter()
        .map(|rel| (*rel, fs::read(first.pki().join(rel)).ok()))
        .collect();
    edit(&mut files);
    let pki = first.root().join(format!("{name}-pki"));
    fs::create_dir_all(pki.join("etcd")).expect("a directory");
    for (rel, content) in &files {
        if let Some(content) = content {
            fs::write(pki.join(rel), content).expect("written");
        }
    }
    let out = first.root().join(format!("{name}.yaml"));
    let (pki, path) = (pki.display().to_string(), out.display().to_string());
    kubeadm_certs_py(&["seal", key, &pki, &path]);
    out
}

#[test]
fn issue_25_every_entry_is_bound_to_its_role() {
    let first = TempTree::new();
    first.init(ALGORITHM, &[]);
    let key = new_key();
    let target = TempTree::new();
    let swapped = sealed_variant(&first, &key, "swapped", |files| {
        for (a, b) in [("ca.crt", "etcd/ca.crt"), ("ca.key", "etcd/ca.key")] {
            let (x, y) = (files[a].clone(), files[b].clone());
            files.insert(a, y);
            files.insert(b, x);
        }
    });
    let why = r#"entry ca.crt: the CA "etcd-ca" where the CA "kubernetes" belongs"#;
    assert_refused(&target, &key, &swapped, why);
    let one_ca = sealed_variant(&first, &key, "one-ca", |files| {
        for (a, b) in [
            ("front-proxy-ca.crt", "ca.crt"),
            ("front-proxy-ca.key", "ca.key"),
        ] {
            files.insert(a, files[b].clone());
        }
        for (a, b) in [("etcd/ca.crt", "ca.crt"), ("etcd/ca.key", "ca.key")] {
            files.insert(a, files[b].clone());
        }
    });
    let why =
        r#"entry front-proxy-ca.crt: the CA "kubernetes" where the CA "front-proxy-ca" belongs"#;
    assert_refused(&target, &key, &one_ca, why);
    let only_sa = sealed_variant(&first, &key, "only-sa", |files| {
        for rel in &check::SHARED_FILES[..6] {
            files.insert(rel, None);
        }
    });
    assert_refused(
        &target,
        &key,
        &only_sa,
        "entry ca.crt: empty, though a bundle must carry every CA certificate",
    );
    let no_sa_pub = sealed_variant(&first, &key, "no-sa-pub", |files| {
        files.insert("sa.pub", None);
    });
    assert_refused(&target, &key, &no_sa_pub, "entry sa.pub: empty");
}

#[test]
fn issue_25_each_entry_is_one_block_of_its_type_and_is_written_re_encoded() {
    let first = TempTree::new();
    first.init(ALGORITHM, &[]);
    let other = TempTree::new();
    other.init(ALGORITHM, &[]);
    let key = new_key();
    let target = TempTree::new();
    let (ca, ca_key) = (first.read("pki/ca.crt"), first.read("pki/ca.key"));
    let cases: [(&str, &str, Vec<u8>, &str); 4] = [
        (
            "key-in-cert",
            "ca.crt",
            [ca.clone(), ca_key.clone()].concat(),
            "entry ca.crt: a PEM EC PRIVATE KEY block where only CERTIFICATE belongs",
        ),
        (
            "foreign-ca",
            "ca.crt",
            [ca.clone(), other.read("pki/ca.crt")].concat(),
            "entry ca.crt: 2 PEM blocks (CERTIFICATE, CERTIFICATE) where one CERTIFICATE belongs",
        ),
        (
            "foreign-pub",
            "sa.pub",
            [first.read("pki/sa.pub"), other.read("pki/sa.pub")].concat(),
            "entry sa.pub: 2 PEM blocks (PUBLIC KEY, PUBLIC KEY) where one PUBLIC KEY belongs",
        ),
        (
            "trailing",
            "ca.key",
            [ca_key.clone(), b"trailing garbage\n".to_vec()].concat(),
            "entry ca.key: data after the last PEM block",
        ),
    ];
    for (name, rel, content, why) in cases {
        let file = sealed_variant(&first, &key, name, |files| {
            files.insert(rel, Some(content.clone()));
        });
        assert_refused(&target, &key, &file, why);
    }
    // Text before the block (as `openssl x509 -text` leaves) is not written: the entry is.
    let annotated = sealed_variant(&first, &key, "annotated", |files| {
        files.insert(
            "ca.crt",
            Some([b"Certificate: the CA\n".to_vec(), ca.clone()].concat()),
        );
    });
    assert_success(&import(&target, &key, &annotated, &[]), "import");
    assert_same_shared_files(&first, &target);
}

#[test]
fn issue_25_deeply_nested_yaml_is_refused_before_it_is_parsed() {
    let tree = TempTree::new();
    let key = new_key();
    let depth = 100_000;
    let text = format!(
        "kind: Secret\nmetadata: {{name: kubeadm-certs}}\ndata: {{ca.crt: {}{}}}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let file = tree.root().join("deep.yaml");
    fs::write(&file, text).expect("written");
    let started = std::time::Instant::now();
    assert_refused(
        &tree,
        &key,
        &file,
        "not a kubeadm-certs bundle: not YAML: line 3: collections nested more than 64 deep",
    );
    assert!(started.elapsed().as_secs() < 2, "{:?}", started.elapsed());
}

#[test]
fn issue_25_the_certificate_key_comes_from_a_file_or_the_environment_not_only_argv() {
    let first = TempTree::new();
    first.init(ALGORITHM, &[]);
    let key = new_key();
    let key_file = first.root().join("certificate-key");
    fs::write(&key_file, format!("{key}\n")).expect("the key file");
    let file = first.root().join("bundle.yaml");
    let mut args = strings(&["certs", "bundle", "export", "--certificate-key-file"]);
    args.push(key_file.display().to_string());
    args.extend(strings(&["--out", &file.display().to_string()]));
    args.extend(first.dir_args());
    assert_success(&kubepki(&args), "export --certificate-key-file");
    let second = TempTree::new();
    let mut args = strings(&["certs", "bundle", "import", &file.display().to_string()]);
    args.extend(second.dir_args());
    let out = Command::new(env!("CARGO_BIN_EXE_kubepki"))
        .args(&args)
        .env("KUBEPKI_CERTIFICATE_KEY", &key)
        .output()
        .expect("running kubepki");
    assert_success(&out, "import with KUBEPKI_CERTIFICATE_KEY");
    assert_same_shared_files(&first, &second);
    // Neither: misuse, one line naming the three ways.
    let out = Command::new(env!("CARGO_BIN_EXE_kubepki"))
        .args(&args)
        .env_remove("KUBEPKI_CERTIFICATE_KEY")
        .output()
        .expect("running kubepki");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "kubepki: error: a certificate key is required: --certificate-key-file FILE, KUBEPKI_CERTIFICATE_KEY or --certificate-key"
    );
    // A bad key in the file is named by the file, never quoted.
    fs::write(&key_file, "not-a-key-secret\n").expect("a bad key");
    let mut bad = args.clone();
    bad.extend(strings(&[
        "--certificate-key-file",
        &key_file.display().to_string(),
    ]));
    let out = kubepki(&bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "kubepki: error: --certificate-key-file {}: must be 64 hexadecimal",
            key_file.display()
        )) && !stderr.contains("not-a-key-secret"),
        "{stderr}"
    );
}
