//! Bad input, one table: each case prepares a copy of one initialised tree (damages a file,
//! or writes a bad input file into it), runs one command line of any command, and expects its
//! exit status, exactly one stderr line naming the flag or file and what is wrong, nothing on
//! stdout, no token secret anywhere, no panic, and the tree (contents, modes, mtimes) exactly
//! as it was.

use crate::support::{TempTree, kubepki};
use std::fs;
use std::path::Path;
use std::process::Output;

/// How a case prepares its tree (given its root) before the run.
type Setup = fn(&Path);

struct Case {
    name: &'static str,
    setup: Setup,
    /// The command line: `{init}` stands for `kubepki init` of the tree (node, address and
    /// algorithm as it was made), `{tree}` for `--cert-dir` and `--kubeconfig-dir`, and
    /// `{root}` within an argument for the tree's root.
    args: &'static [&'static str],
    exit: i32,
    /// What the stderr line must contain; `{root}` stands for the tree's root.
    says: &'static [&'static str],
}

/// The key algorithm of the trees: the fastest.
const ALGORITHM: &str = "ECDSA-P256";

/// The secret of every token in the table, uppercase or not: never to be printed.
const SECRET_DIGITS: &str = "0123456789";

/// A syntactically valid CA pin that pins nothing.
const NO_PIN: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// The facts of the tree, for the commands that read a configuration.
const NODE_CONFIG: &str = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 127.0.0.1\nnodeRegistration:\n  name: cp1\n";
const MALFORMED_YAML: &str =
    "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking: [\n";
const UNKNOWN_FIELD: &str = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworkin:\n  serviceSubnet: 10.96.0.0/12\n";
const BAD_CIDR: &str = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  serviceSubnet: 10.96.0.0/99\n";
const WRONG_KIND: &str = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: KubeletConfiguration\n";
const JOIN_BAD_TOKEN: &str = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    apiServerEndpoint: 127.0.0.1:6443\n    token: abcdef.0123456789ABCDEF\n    unsafeSkipCAVerification: true\n";
const JOIN_UNKNOWN_FIELD: &str = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    apiServerEndpoint: 127.0.0.1:6443\n    tokn: abcdef.0123456789abcdef\n";

const CASES: &[Case] = &[
    // Flags.
    Case {
        name: "bad IP",
        setup: nothing,
        args: &["{init}", "--apiserver-advertise-address", "999.1.1.1"],
        exit: 2,
        says: &["--apiserver-advertise-address", "999.1.1.1"],
    },
    Case {
        name: "bad CIDR",
        setup: nothing,
        args: &["{init}", "--service-cidr", "10.96.0.0/99"],
        exit: 2,
        says: &["--service-cidr", "10.96.0.0/99"],
    },
    Case {
        name: "two CIDRs of one family",
        setup: nothing,
        args: &["{init}", "--service-cidr", "10.96.0.0/12,10.97.0.0/16"],
        exit: 2,
        says: &["--service-cidr", "dual-stack"],
    },
    Case {
        name: "unknown algorithm",
        setup: nothing,
        args: &["{init}", "--encryption-algorithm", "RSA-1024"],
        exit: 2,
        says: &["--encryption-algorithm", "RSA-1024"],
    },
    Case {
        name: "bad extra SAN",
        setup: nothing,
        args: &[
            "{init}",
            "--apiserver-cert-extra-sans",
            "ok.example.com,bad_name",
        ],
        exit: 2,
        says: &["--apiserver-cert-extra-sans", "bad_name"],
    },
    Case {
        name: "bad endpoint port",
        setup: nothing,
        args: &["{init}", "--control-plane-endpoint", "lb:99999"],
        exit: 2,
        says: &["--control-plane-endpoint", "lb:99999"],
    },
    Case {
        name: "bad duration",
        setup: nothing,
        args: &["{init}", "--cert-validity", "10x"],
        exit: 2,
        says: &["--cert-validity", "10x"],
    },
    Case {
        name: "zero validity",
        setup: nothing,
        args: &["{init}", "--ca-validity", "0"],
        exit: 2,
        says: &["--ca-validity", "longer than zero"],
    },
    Case {
        name: "zero validity written 0s",
        setup: nothing,
        args: &["{init}", "--cert-validity", "0s"],
        exit: 2,
        says: &["--cert-validity", "longer than zero"],
    },
    Case {
        name: "unspecified advertise address",
        setup: nothing,
        args: &["{init}", "--apiserver-advertise-address", "0.0.0.0"],
        exit: 2,
        says: &[
            "--apiserver-advertise-address",
            "0.0.0.0",
            "not a usable host address",
        ],
    },
    Case {
        name: "validity beyond Go's durations",
        setup: nothing,
        args: &["{init}", "--cert-validity", "99999999999h"],
        exit: 2,
        says: &["--cert-validity", "too long"],
    },
    Case {
        name: "bad node name",
        setup: nothing,
        args: &["{init}", "--node-name", "Node_1"],
        exit: 2,
        says: &["--node-name", "Node_1"],
    },
    Case {
        name: "bad bind port",
        setup: nothing,
        args: &["{init}", "--apiserver-bind-port", "0"],
        exit: 2,
        says: &["--apiserver-bind-port"],
    },
    Case {
        name: "missing --config file",
        setup: nothing,
        args: &["{init}", "--config", "{root}/missing.yaml"],
        exit: 1,
        says: &["{root}/missing.yaml", "No such file"],
    },
    Case {
        name: "bad --fail-within",
        setup: nothing,
        args: &[
            "certs",
            "check-expiration",
            "{tree}",
            "--fail-within",
            "soon",
        ],
        exit: 2,
        says: &["--fail-within", "soon"],
    },
    Case {
        name: "negative --expiring-within",
        setup: nothing,
        args: &["certs", "renew", "all", "{tree}", "--expiring-within=-1h"],
        exit: 2,
        says: &["--expiring-within", "-1h"],
    },
    Case {
        name: "unknown renew name",
        setup: nothing,
        args: &["certs", "renew", "apiserverr", "{tree}"],
        exit: 2,
        says: &["'apiserverr'", "possible values"],
    },
    Case {
        name: "renewing a CA",
        setup: nothing,
        args: &["certs", "renew", "ca", "{tree}"],
        exit: 2,
        says: &["'ca'", "possible values"],
    },
    Case {
        name: "renew with zero validity",
        setup: nothing,
        args: &["certs", "renew", "all", "{tree}", "--cert-validity", "0"],
        exit: 2,
        says: &["--cert-validity", "longer than zero"],
    },
    Case {
        name: "renew with a validity beyond Go's durations",
        setup: nothing,
        args: &[
            "certs",
            "renew",
            "all",
            "{tree}",
            "--cert-validity",
            "99999999999h",
        ],
        exit: 2,
        says: &["--cert-validity", "too long"],
    },
    Case {
        name: "user without a name",
        setup: nothing,
        args: &["kubeconfig", "user", "{tree}", "--client-name", ""],
        exit: 2,
        says: &["--client-name"],
    },
    Case {
        name: "user with an empty group",
        setup: nothing,
        args: &[
            "kubeconfig",
            "user",
            "{tree}",
            "--client-name",
            "bob",
            "--org",
            "",
        ],
        exit: 2,
        says: &["--org"],
    },
    Case {
        name: "user with a bad validity",
        setup: nothing,
        args: &[
            "kubeconfig",
            "user",
            "{tree}",
            "--client-name",
            "bob",
            "--validity-period",
            "1y",
        ],
        exit: 2,
        says: &["--validity-period", "1y"],
    },
    Case {
        name: "user with zero validity",
        setup: nothing,
        args: &[
            "kubeconfig",
            "user",
            "{tree}",
            "--client-name",
            "bob",
            "--validity-period",
            "0",
        ],
        exit: 2,
        says: &["--validity-period", "longer than zero"],
    },
    Case {
        name: "user with a validity beyond Go's durations",
        setup: nothing,
        args: &[
            "kubeconfig",
            "user",
            "{tree}",
            "--client-name",
            "bob",
            "--validity-period",
            "99999999999h",
        ],
        exit: 2,
        says: &["--validity-period", "too long"],
    },
    Case {
        name: "user with a server that is no URL",
        setup: nothing,
        args: &[
            "kubeconfig",
            "user",
            "{tree}",
            "--client-name",
            "bob",
            "--server",
            "not a url",
        ],
        exit: 2,
        says: &["--server", "not a url", "https://"],
    },
    // Tokens and join.
    Case {
        name: "token create with an upper-case token",
        setup: nothing,
        args: &["token", "create", "{tree}", "abcdef.0123456789ABCDEF"],
        exit: 2,
        says: &["TOKEN", "has the form"],
    },
    Case {
        name: "token create with a bad ttl",
        setup: nothing,
        args: &["token", "create", "{tree}", "--ttl", "forever"],
        exit: 2,
        says: &["--ttl", "forever"],
    },
    Case {
        name: "token create with a ttl beyond Go's durations",
        setup: nothing,
        args: &["token", "create", "{tree}", "--ttl", "99999999999h"],
        exit: 2,
        says: &["--ttl", "too long"],
    },
    Case {
        name: "token create with a bad usage",
        setup: nothing,
        args: &["token", "create", "{tree}", "--usages", "signing,admin"],
        exit: 2,
        says: &["--usages", "admin", "not a token usage"],
    },
    Case {
        name: "token create with a bad group",
        setup: nothing,
        args: &["token", "create", "{tree}", "--groups", "system:masters"],
        exit: 2,
        says: &["--groups", "system:masters", "not a bootstrap group"],
    },
    Case {
        name: "token create with groups but no authentication",
        setup: nothing,
        args: &[
            "token",
            "create",
            "{tree}",
            "--usages",
            "signing",
            "--groups",
            "system:bootstrappers:x",
        ],
        exit: 1,
        says: &["--groups needs", "authentication"],
    },
    Case {
        name: "token create with an existing token id",
        setup: |r| {
            copy(
                r,
                "bootstrap/cluster-info.yaml",
                "bootstrap/bootstrap-token-abcdef.yaml",
            )
        },
        args: &["token", "create", "{tree}", "abcdef.0123456789abcdef"],
        exit: 1,
        says: &["{root}/bootstrap/bootstrap-token-abcdef.yaml", "exists"],
    },
    Case {
        name: "join with a malformed token",
        setup: nothing,
        args: &[
            "join",
            "127.0.0.1:6443",
            "{tree}",
            "--token",
            "abcdef.0123456789",
            "--discovery-token-ca-cert-hash",
            NO_PIN,
        ],
        exit: 2,
        says: &["--token", "has the form"],
    },
    Case {
        name: "join with a bad pin",
        setup: nothing,
        args: &[
            "join",
            "127.0.0.1:6443",
            "{tree}",
            "--token",
            "abcdef.0123456789abcdef",
            "--discovery-token-ca-cert-hash",
            "md5:abc",
        ],
        exit: 2,
        says: &["--discovery-token-ca-cert-hash", "md5:abc"],
    },
    Case {
        name: "join with a missing discovery file",
        setup: nothing,
        args: &[
            "join",
            "{tree}",
            "--token",
            "abcdef.0123456789abcdef",
            "--discovery-file",
            "{root}/missing.conf",
        ],
        exit: 1,
        says: &["{root}/missing.conf", "No such file"],
    },
    Case {
        name: "join with a discovery file that is not a kubeconfig",
        setup: |r| write(r, "discovery.conf", "{{{ not yaml"),
        args: &[
            "join",
            "{tree}",
            "--token",
            "abcdef.0123456789abcdef",
            "--discovery-file",
            "{root}/discovery.conf",
        ],
        exit: 1,
        says: &["{root}/discovery.conf", "not a valid kubeconfig"],
    },
    Case {
        name: "join against an unreachable endpoint",
        setup: nothing,
        args: &[
            "join",
            "127.0.0.1:1",
            "{tree}",
            "--token",
            "abcdef.0123456789abcdef",
            "--discovery-token-ca-cert-hash",
            NO_PIN,
            "--discovery-timeout",
            "1s",
        ],
        exit: 1,
        says: &["https://127.0.0.1:1", "discovery timeout of 1s"],
    },
    // Config files.
    // The kubelet's side.
    Case {
        name: "kubelet serving-cert: bad node name",
        setup: nothing,
        args: &[
            "kubelet",
            "serving-cert",
            "{tree}",
            "--node-name",
            "Bad_Name",
            "--node-ip",
            "10.0.0.21",
            "--out-dir",
            "{root}",
        ],
        exit: 2,
        says: &["--node-name", "Bad_Name"],
    },
    Case {
        name: "kubelet serving-cert: bad node IP",
        setup: nothing,
        args: &[
            "kubelet",
            "serving-cert",
            "{tree}",
            "--node-name",
            "w1",
            "--node-ip",
            "10.0.0.21,10.0.0.300",
            "--out-dir",
            "{root}",
        ],
        exit: 2,
        says: &["--node-ip", "10.0.0.300"],
    },
    Case {
        name: "kubelet serving-cert: no such --out-dir",
        setup: nothing,
        args: &[
            "kubelet",
            "serving-cert",
            "{tree}",
            "--node-name",
            "w1",
            "--node-ip",
            "10.0.0.21",
            "--out-dir",
            "{root}/no-kubelet/pki",
        ],
        exit: 1,
        says: &["{root}/no-kubelet/pki: no such directory", "--out-dir"],
    },
    Case {
        name: "kubelet serving-cert: no CA key",
        setup: |r| {
            fs::remove_file(r.join("pki/ca.key")).expect("removing the CA key");
            fs::create_dir(r.join("kubelet-pki")).expect("a kubelet directory");
        },
        args: &[
            "kubelet",
            "serving-cert",
            "{tree}",
            "--node-name",
            "w1",
            "--node-ip",
            "10.0.0.21",
            "--out-dir",
            "{root}/kubelet-pki",
        ],
        exit: 1,
        says: &["{root}/pki/ca.key is absent", "kubelet serving certificate"],
    },
    Case {
        name: "kubelet repair: bad node name",
        setup: nothing,
        args: &["kubelet", "repair", "{tree}", "--node-name", "w_1"],
        exit: 2,
        says: &["--node-name", "w_1"],
    },
    Case {
        name: "kubelet repair: no rotated certificate, no CA key",
        setup: |r| fs::remove_file(r.join("pki/ca.key")).expect("removing the CA key"),
        args: &[
            "kubelet",
            "repair",
            "{tree}",
            "--node-name",
            "w1",
            "--kubelet-cert-dir",
            "{root}/none",
        ],
        exit: 1,
        says: &[
            "{root}/none/kubelet-client-current.pem is not there",
            "{root}/pki/ca.key is absent",
        ],
    },
    Case {
        name: "kubelet config: existing --out",
        setup: |r| write(r, "config.yaml", "kept"),
        args: &["kubelet", "config", "{tree}", "--out", "{root}/config.yaml"],
        exit: 1,
        says: &["{root}/config.yaml exists", "--force"],
    },
    Case {
        name: "init --config: malformed YAML",
        setup: |r| write(r, "bad.yaml", MALFORMED_YAML),
        args: &["{init}", "--config", "{root}/bad.yaml"],
        exit: 1,
        says: &["{root}/bad.yaml:4:1", "not valid YAML"],
    },
    Case {
        name: "init --config: unknown field",
        setup: |r| write(r, "bad.yaml", UNKNOWN_FIELD),
        args: &["{init}", "--config", "{root}/bad.yaml"],
        exit: 1,
        says: &["{root}/bad.yaml:3:1", "unknown field \"networkin\""],
    },
    Case {
        name: "init --config: bad CIDR",
        setup: |r| write(r, "bad.yaml", BAD_CIDR),
        args: &["{init}", "--config", "{root}/bad.yaml"],
        exit: 1,
        says: &["{root}/bad.yaml:4:", "serviceSubnet", "10.96.0.0/99"],
    },
    Case {
        name: "init --config: wrong kind",
        setup: |r| write(r, "bad.yaml", WRONG_KIND),
        args: &["{init}", "--config", "{root}/bad.yaml"],
        exit: 1,
        says: &["{root}/bad.yaml", "KubeletConfiguration"],
    },
    Case {
        name: "join --config: malformed token",
        setup: |r| write(r, "bad.yaml", JOIN_BAD_TOKEN),
        args: &["join", "{tree}", "--config", "{root}/bad.yaml"],
        exit: 1,
        says: &["{root}/bad.yaml:6:", "bootstrapToken.token", "has the form"],
    },
    Case {
        name: "join --config: unknown field",
        setup: |r| write(r, "bad.yaml", JOIN_UNKNOWN_FIELD),
        args: &["join", "{tree}", "--config", "{root}/bad.yaml"],
        exit: 1,
        says: &["{root}/bad.yaml:6:5", "unknown field \"tokn\""],
    },
    Case {
        name: "join --config: malformed YAML",
        setup: |r| write(r, "bad.yaml", MALFORMED_YAML),
        args: &["join", "{tree}", "--config", "{root}/bad.yaml"],
        exit: 1,
        says: &["{root}/bad.yaml:4:1", "not valid YAML"],
    },
    Case {
        name: "config validate: collections nested 100 000 deep (#25)",
        setup: |r| {
            write(
                r,
                "deep.yaml",
                deep_yaml(
                    "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nextra: ",
                ),
            )
        },
        args: &["config", "validate", "--config", "{root}/deep.yaml"],
        exit: 1,
        says: &["{root}/deep.yaml: line 3: collections nested more than 64 deep"],
    },
    Case {
        name: "init --config: a FIFO (#25)",
        setup: |r| fifo(r, "fifo.yaml"),
        args: &["{init}", "--config", "{root}/fifo.yaml"],
        exit: 1,
        says: &["reading {root}/fifo.yaml: a FIFO, not a regular file"],
    },
    Case {
        name: "check-expiration: a kubeconfig nested 100 000 deep (#25)",
        setup: |r| write(r, "admin.conf", deep_yaml("apiVersion: v1\nclusters: ")),
        args: &["certs", "check-expiration", "{tree}"],
        exit: 1,
        says: &["{root}/admin.conf", "collections nested more than 64 deep"],
    },
    // PEM files, and the tree they live in.
    Case {
        name: "init: the CA key appended to ca.crt (#25)",
        setup: |r| append(r, "pki/ca.crt", "pki/ca.key"),
        args: &["{init}"],
        exit: 1,
        says: &[
            "{root}/pki/ca.crt: not a valid certificate",
            "a PEM EC PRIVATE KEY block where only CERTIFICATE belongs",
        ],
    },
    Case {
        name: "renew: trailing data after a key (#25)",
        setup: |r| {
            write(
                r,
                "pki/apiserver.key",
                read(r, "pki/apiserver.key") + "garbage\n",
            )
        },
        args: &["certs", "renew", "apiserver", "{tree}"],
        exit: 1,
        says: &[
            "{root}/pki/apiserver.key: not a valid private key",
            "data after the last PEM block",
        ],
    },
    Case {
        name: "check-expiration: a second key in a key file (#25)",
        setup: |r| append(r, "pki/etcd/peer.key", "pki/ca.key"),
        args: &["certs", "check-expiration", "{tree}"],
        exit: 1,
        says: &[
            "{root}/pki/etcd/peer.key: not a valid private key",
            "2 PEM blocks (EC PRIVATE KEY, EC PRIVATE KEY)",
        ],
    },
    Case {
        name: "init: garbage certificate",
        setup: |r| write(r, "pki/apiserver.crt", "garbage"),
        args: &["{init}"],
        exit: 1,
        says: &["{root}/pki/apiserver.crt", "not a valid certificate"],
    },
    Case {
        name: "init: truncated key",
        setup: |r| truncate(r, "pki/apiserver.key"),
        args: &["{init}"],
        exit: 1,
        says: &[
            "{root}/pki/apiserver.key",
            "not a valid private key",
            "-----END EC PRIVATE KEY-----",
        ],
    },
    Case {
        name: "init: empty key",
        setup: |r| write(r, "pki/etcd/peer.key", ""),
        args: &["{init}"],
        exit: 1,
        says: &["{root}/pki/etcd/peer.key", "not a valid private key"],
    },
    Case {
        name: "init: certificate in a key file",
        setup: |r| copy(r, "pki/apiserver.crt", "pki/apiserver.key"),
        args: &["{init}"],
        exit: 1,
        says: &["{root}/pki/apiserver.key", "not a valid private key"],
    },
    Case {
        name: "init: key of another certificate",
        setup: |r| copy(r, "pki/apiserver-kubelet-client.key", "pki/apiserver.key"),
        args: &["{init}"],
        exit: 1,
        says: &["{root}/pki/apiserver.key", "does not match"],
    },
    Case {
        name: "init: certificate without its key",
        setup: |r| fs::remove_file(r.join("pki/front-proxy-client.key")).expect("removing a key"),
        args: &["{init}"],
        exit: 1,
        says: &["{root}/pki/front-proxy-client.crt", "without its key"],
    },
    Case {
        name: "init: leaf of another CA",
        setup: |r| {
            copy(
                r,
                "pki/front-proxy-client.crt",
                "pki/apiserver-kubelet-client.crt",
            );
            copy(
                r,
                "pki/front-proxy-client.key",
                "pki/apiserver-kubelet-client.key",
            )
        },
        args: &["{init}"],
        exit: 1,
        says: &[
            "{root}/pki/apiserver-kubelet-client.crt",
            "not signed by ca",
        ],
    },
    Case {
        name: "init: CA certificate that is not a CA",
        setup: |r| {
            copy(r, "pki/front-proxy-client.crt", "pki/front-proxy-ca.crt");
            copy(r, "pki/front-proxy-client.key", "pki/front-proxy-ca.key")
        },
        args: &["{init}"],
        exit: 1,
        says: &["{root}/pki/front-proxy-ca.crt", "not a CA"],
    },
    Case {
        name: "init: CA key that does not match",
        setup: |r| copy(r, "pki/etcd/ca.key", "pki/ca.key"),
        args: &["{init}"],
        exit: 1,
        says: &["{root}/pki/ca.key", "does not match"],
    },
    Case {
        name: "init: expired CA",
        setup: expired_ca,
        args: &["{init}"],
        exit: 1,
        says: &["{root}/pki/ca.crt", "expired on 2021-01-01"],
    },
    Case {
        name: "init: SAN the flags now require",
        setup: nothing,
        args: &[
            "{init}",
            "--apiserver-cert-extra-sans",
            "new.example.com,10.9.9.9",
        ],
        exit: 1,
        says: &["{root}/pki/apiserver.crt", "new.example.com, 10.9.9.9"],
    },
    Case {
        name: "init: sa.pub of another key",
        setup: |r| replace(r, "pki/sa.pub", "A", "B"),
        args: &["{init}"],
        exit: 1,
        says: &["{root}/pki/sa.pub"],
    },
    Case {
        name: "init: symlink at a key path",
        setup: |r| {
            fs::remove_file(r.join("pki/apiserver.key")).expect("removing a key");
            std::os::unix::fs::symlink(r.join("admin.conf"), r.join("pki/apiserver.key"))
                .expect("linking")
        },
        args: &["{init}"],
        exit: 1,
        says: &["{root}/pki/apiserver.key", "symbolic link"],
    },
    Case {
        name: "init: cert dir below a file",
        setup: nothing,
        args: &["{init}", "--cert-dir", "{root}/admin.conf/pki"],
        exit: 1,
        says: &["{root}/admin.conf"],
    },
    // Day 2: audit, reconcile, generations and rollback (#15).
    Case {
        name: "--plan without --reconcile",
        setup: nothing,
        args: &["certs", "renew", "all", "{tree}", "--plan"],
        exit: 2,
        says: &["required arguments were not provided: --reconcile"],
    },
    Case {
        name: "init's node flags without --reconcile",
        setup: nothing,
        args: &["certs", "renew", "all", "{tree}", "--node-name", "other"],
        exit: 2,
        says: &["work only with --reconcile"],
    },
    Case {
        name: "--reconcile with --expiring-within",
        setup: nothing,
        args: &[
            "certs",
            "renew",
            "--reconcile",
            "{tree}",
            "--expiring-within",
            "30d",
        ],
        exit: 2,
        says: &["--reconcile", "--expiring-within"],
    },
    Case {
        name: "renew keeping no generation",
        setup: nothing,
        args: &["certs", "renew", "all", "{tree}", "--keep", "0"],
        exit: 2,
        says: &["--keep", "'0'"],
    },
    Case {
        name: "audit failing on an unknown severity",
        setup: nothing,
        args: &["certs", "audit", "{tree}", "--fail-on", "never"],
        exit: 2,
        says: &["--fail-on", "'never'"],
    },
    Case {
        name: "audit with an unknown config field",
        setup: |r| write(r, "kubeadm.yaml", UNKNOWN_FIELD),
        args: &[
            "certs",
            "audit",
            "{tree}",
            "--config",
            "{root}/kubeadm.yaml",
        ],
        exit: 1,
        says: &["{root}/kubeadm.yaml", "networkin"],
    },
    Case {
        name: "reconcile with an unknown config field",
        setup: |r| write(r, "kubeadm.yaml", UNKNOWN_FIELD),
        args: &[
            "certs",
            "renew",
            "--reconcile",
            "{tree}",
            "--config",
            "{root}/kubeadm.yaml",
        ],
        exit: 1,
        says: &["{root}/kubeadm.yaml", "networkin"],
    },
    Case {
        name: "reconcile over a key that does not match",
        setup: |r| {
            write(r, "kubeadm.yaml", NODE_CONFIG);
            copy(r, "pki/etcd/peer.key", "pki/etcd/server.key")
        },
        args: &[
            "certs",
            "renew",
            "--reconcile",
            "{tree}",
            "--config",
            "{root}/kubeadm.yaml",
        ],
        exit: 1,
        says: &["{root}/pki/etcd/server.key", "does not match"],
    },
    Case {
        name: "rollback without a generation",
        setup: nothing,
        args: &["certs", "rollback", "{tree}"],
        exit: 1,
        says: &["{root}/tmp", "no generation to roll back to"],
    },
    Case {
        name: "rollback to a generation that is not there",
        setup: |r| {
            let record =
                "{\"time\":\"2026-01-01T00:00:00Z\",\"command\":\"certs renew\",\"rows\":[]}";
            let generation = "tmp/kubepki-backup-20260101T000000Z";
            fs::create_dir_all(r.join(generation)).expect("a directory");
            write(r, &format!("{generation}/kubepki-generation.json"), record)
        },
        args: &["certs", "rollback", "{tree}", "--to", "20250101T000000Z"],
        exit: 1,
        says: &["--to 20250101T000000Z", "there are: 20260101T000000Z"],
    },
    // A broken row named alone: `renew all` renews the sound rows beside it (#21,
    // tests/cli/broken.rs), so these name the broken one, which changes nothing.
    Case {
        name: "renew: truncated certificate",
        setup: |r| truncate(r, "pki/apiserver.crt"),
        args: &["certs", "renew", "apiserver", "{tree}"],
        exit: 1,
        says: &[
            "{root}/pki/apiserver.crt",
            "not a valid certificate",
            "-----END CERTIFICATE-----",
        ],
    },
    Case {
        name: "renew: wrong PEM label on a key",
        setup: |r| replace(r, "pki/apiserver.key", "EC PRIVATE KEY", "CERTIFICATE"),
        args: &["certs", "renew", "apiserver", "{tree}"],
        exit: 1,
        says: &["{root}/pki/apiserver.key", "not a valid private key"],
    },
    Case {
        name: "renew: DER CA key",
        setup: |r| to_der(r, "pki/ca.key"),
        args: &["certs", "renew", "apiserver", "{tree}"],
        exit: 1,
        says: &["{root}/pki/ca.key", "not a valid private key"],
    },
    Case {
        name: "renew: certificate and key swapped",
        setup: |r| exchange(r, "pki/apiserver.crt", "pki/apiserver.key"),
        args: &["certs", "renew", "apiserver", "{tree}"],
        exit: 1,
        says: &["{root}/pki/apiserver.crt", "not a valid certificate"],
    },
    Case {
        name: "renew: leaf key that does not match",
        setup: |r| copy(r, "pki/etcd/peer.key", "pki/etcd/server.key"),
        args: &["certs", "renew", "etcd-server", "{tree}"],
        exit: 1,
        says: &[
            "{root}/pki/etcd/server.key",
            "does not match",
            "{root}/pki/etcd/server.crt",
        ],
    },
    Case {
        name: "renew: CA certificate that is not a CA",
        setup: |r| {
            copy(r, "pki/apiserver.crt", "pki/ca.crt");
            copy(r, "pki/apiserver.key", "pki/ca.key")
        },
        args: &["certs", "renew", "apiserver", "{tree}"],
        exit: 1,
        says: &["{root}/pki/ca.crt", "not a CA"],
    },
    Case {
        name: "renew: expired CA",
        setup: expired_ca,
        args: &["certs", "renew", "apiserver", "{tree}"],
        exit: 1,
        says: &["{root}/pki/ca.crt", "expired on 2021-01-01"],
    },
    Case {
        name: "renew: CA key that does not match",
        setup: |r| copy(r, "pki/etcd/ca.key", "pki/ca.key"),
        args: &[
            "certs",
            "renew",
            "apiserver",
            "{tree}",
            "--expiring-within",
            "30d",
        ],
        exit: 1,
        says: &["{root}/pki/ca.key", "does not match"],
    },
    Case {
        name: "check-expiration: metrics file in a missing directory",
        setup: nothing,
        args: &[
            "certs",
            "check-expiration",
            "{tree}",
            "--metrics-file",
            "{root}/missing/kubepki.prom",
        ],
        exit: 1,
        says: &["{root}/missing: no such directory"],
    },
    Case {
        name: "check-expiration: truncated certificate",
        setup: |r| truncate(r, "pki/apiserver.crt"),
        args: &["certs", "check-expiration", "{tree}"],
        exit: 1,
        says: &[
            "{root}/pki/apiserver.crt",
            "not a valid certificate",
            "-----END CERTIFICATE-----",
        ],
    },
    Case {
        name: "check-expiration: DER certificate",
        setup: |r| to_der(r, "pki/front-proxy-client.crt"),
        args: &["certs", "check-expiration", "{tree}"],
        exit: 1,
        says: &[
            "{root}/pki/front-proxy-client.crt",
            "not a valid certificate",
        ],
    },
    Case {
        name: "check-expiration: empty CA certificate",
        setup: |r| write(r, "pki/etcd/ca.crt", ""),
        args: &["certs", "check-expiration", "{tree}"],
        exit: 1,
        says: &["{root}/pki/etcd/ca.crt", "not a valid certificate"],
    },
    Case {
        name: "ca-cert-hash: truncated CA certificate",
        setup: |r| truncate(r, "pki/ca.crt"),
        args: &["certs", "ca-cert-hash", "{tree}"],
        exit: 1,
        says: &["{root}/pki/ca.crt", "not a valid certificate"],
    },
    Case {
        name: "ca-cert-hash: wrong PEM label",
        setup: |r| replace(r, "pki/ca.crt", "CERTIFICATE", "PUBLIC KEY"),
        args: &["certs", "ca-cert-hash", "{tree}"],
        exit: 1,
        says: &[
            "{root}/pki/ca.crt",
            "a PEM PUBLIC KEY block where only CERTIFICATE belongs",
        ],
    },
    Case {
        name: "ca-cert-hash: CA certificate that is not a CA",
        setup: |r| copy(r, "pki/apiserver.crt", "pki/ca.crt"),
        args: &["certs", "ca-cert-hash", "{tree}"],
        exit: 1,
        says: &["{root}/pki/ca.crt", "not a CA"],
    },
    Case {
        name: "user: truncated CA key",
        setup: |r| truncate(r, "pki/ca.key"),
        args: &["kubeconfig", "user", "{tree}", "--client-name", "bob"],
        exit: 1,
        says: &["{root}/pki/ca.key", "not a valid private key"],
    },
    Case {
        name: "user: empty CA certificate",
        setup: |r| write(r, "pki/ca.crt", ""),
        args: &["kubeconfig", "user", "{tree}", "--client-name", "bob"],
        exit: 1,
        says: &["{root}/pki/ca.crt", "not a valid certificate"],
    },
    Case {
        name: "user: CA certificate and key swapped",
        setup: |r| exchange(r, "pki/ca.crt", "pki/ca.key"),
        args: &["kubeconfig", "user", "{tree}", "--client-name", "bob"],
        exit: 1,
        says: &["{root}/pki/ca.crt", "not a valid certificate"],
    },
    Case {
        name: "user: CA certificate that is not a CA",
        setup: |r| {
            copy(r, "pki/apiserver.crt", "pki/ca.crt");
            copy(r, "pki/apiserver.key", "pki/ca.key")
        },
        args: &["kubeconfig", "user", "{tree}", "--client-name", "bob"],
        exit: 1,
        says: &["{root}/pki/ca.crt", "not a CA"],
    },
    Case {
        name: "user: expired CA",
        setup: expired_ca,
        args: &["kubeconfig", "user", "{tree}", "--client-name", "bob"],
        exit: 1,
        says: &["{root}/pki/ca.crt", "expired on 2021-01-01"],
    },
    Case {
        name: "user: CA key that does not match",
        setup: |r| copy(r, "pki/front-proxy-ca.key", "pki/ca.key"),
        args: &["kubeconfig", "user", "{tree}", "--client-name", "bob"],
        exit: 1,
        says: &["{root}/pki/ca.key", "does not match"],
    },
    // Kubeconfigs.
    Case {
        name: "init: kubeconfig of another CA",
        setup: |r| {
            set_data(
                r,
                "admin.conf",
                "certificate-authority-data",
                "pki/etcd/ca.crt",
            )
        },
        args: &["{init}"],
        exit: 1,
        says: &["{root}/admin.conf", "wrong CA cert"],
    },
    Case {
        name: "init: kubeconfig that is not YAML",
        setup: |r| write(r, "scheduler.conf", "{{{ not yaml"),
        args: &["{init}"],
        exit: 1,
        says: &["{root}/scheduler.conf", "not a valid kubeconfig"],
    },
    Case {
        name: "init: kubeconfig whose server is no URL",
        setup: |r| replace(r, "admin.conf", "https://127.0.0.1:6443", "not a url"),
        args: &["{init}"],
        exit: 1,
        says: &["{root}/admin.conf", "server", "not an https:// URL"],
    },
    Case {
        name: "renew: kubeconfig without its user",
        setup: |r| {
            replace(
                r,
                "admin.conf",
                "- name: kubernetes-admin",
                "- name: somebody-else",
            )
        },
        args: &["certs", "renew", "admin.conf", "{tree}"],
        exit: 1,
        says: &["{root}/admin.conf", "user \"kubernetes-admin\" not found"],
    },
    Case {
        name: "renew: kubeconfig client certificate of another CA",
        setup: |r| {
            set_data(
                r,
                "scheduler.conf",
                "client-certificate-data",
                "pki/front-proxy-client.crt",
            );
            set_data(
                r,
                "scheduler.conf",
                "client-key-data",
                "pki/front-proxy-client.key",
            )
        },
        args: &["certs", "renew", "scheduler.conf", "{tree}"],
        exit: 1,
        says: &["{root}/scheduler.conf", "not signed by ca"],
    },
    Case {
        name: "renew: kubeconfig client key that does not match",
        setup: |r| {
            set_data(
                r,
                "controller-manager.conf",
                "client-key-data",
                "pki/apiserver.key",
            )
        },
        args: &["certs", "renew", "controller-manager.conf", "{tree}"],
        exit: 1,
        says: &[
            "{root}/controller-manager.conf",
            "client-key-data does not match",
        ],
    },
    Case {
        name: "renew: empty kubeconfig",
        setup: |r| write(r, "kubelet.conf", ""),
        args: &["certs", "renew", "kubelet.conf", "{tree}"],
        exit: 1,
        says: &["{root}/kubelet.conf", "not a valid kubeconfig"],
    },
    Case {
        name: "check-expiration: kubeconfig that is not YAML",
        setup: |r| write(r, "admin.conf", "{{{ not yaml"),
        args: &["certs", "check-expiration", "{tree}"],
        exit: 1,
        says: &["{root}/admin.conf", "not a valid kubeconfig"],
    },
    Case {
        name: "check-expiration: bad base64 in client-certificate-data",
        setup: |r| {
            replace(
                r,
                "controller-manager.conf",
                "client-certificate-data: ",
                "client-certificate-data: A*",
            )
        },
        args: &["certs", "check-expiration", "{tree}"],
        exit: 1,
        says: &[
            "{root}/controller-manager.conf",
            "client-certificate-data is not valid base64",
        ],
    },
    Case {
        name: "user: admin.conf without its cluster",
        setup: |r| {
            replace(
                r,
                "admin.conf",
                "    cluster: kubernetes\n",
                "    cluster: elsewhere\n",
            )
        },
        args: &["kubeconfig", "user", "{tree}", "--client-name", "bob"],
        exit: 1,
        says: &["{root}/admin.conf", "cluster \"elsewhere\" not found"],
    },
    Case {
        name: "user: admin.conf whose server is no URL",
        setup: |r| replace(r, "admin.conf", "https://127.0.0.1:6443", "not a url"),
        args: &["kubeconfig", "user", "{tree}", "--client-name", "bob"],
        exit: 1,
        says: &["{root}/admin.conf", "server", "not an https:// URL"],
    },
    Case {
        name: "token create: admin.conf that is not YAML",
        setup: |r| write(r, "admin.conf", "{{{ not yaml"),
        args: &["token", "create", "{tree}"],
        exit: 1,
        says: &["{root}/admin.conf", "not a valid kubeconfig"],
    },
    Case {
        name: "token create: admin.conf whose server is no URL",
        setup: |r| replace(r, "admin.conf", "https://127.0.0.1:6443", "not a url"),
        args: &["token", "create", "{tree}"],
        exit: 1,
        says: &["{root}/admin.conf", "server", "not an https:// URL"],
    },
    Case {
        name: "token create: bad base64 in admin.conf's CA",
        setup: |r| {
            replace(
                r,
                "admin.conf",
                "certificate-authority-data: ",
                "certificate-authority-data: A*",
            )
        },
        args: &["token", "create", "{tree}"],
        exit: 1,
        says: &[
            "{root}/admin.conf",
            "certificate-authority-data is not valid base64",
        ],
    },
    Case {
        name: "token manifests: admin.conf's CA is no certificate",
        setup: |r| set_data(r, "admin.conf", "certificate-authority-data", "pki/sa.pub"),
        args: &["token", "manifests", "{tree}"],
        exit: 1,
        says: &[
            "{root}/admin.conf",
            "certificate-authority-data",
            "no PEM CERTIFICATE block",
        ],
    },
    Case {
        name: "token create: no admin.conf",
        setup: |r| fs::remove_file(r.join("admin.conf")).expect("removing admin.conf"),
        args: &["token", "create", "{tree}"],
        exit: 1,
        says: &["{root}/admin.conf is missing"],
    },
    // certs bundle.
    Case {
        name: "bundle export: a malformed certificate key",
        setup: nothing,
        args: &[
            "certs",
            "bundle",
            "export",
            "--certificate-key",
            "c0ffee",
            "{tree}",
        ],
        exit: 2,
        says: &[
            "--certificate-key: must be 64 hexadecimal characters",
            "got 6",
        ],
    },
    Case {
        name: "bundle export: a CA key that is not the CA's",
        setup: |r| exchange(r, "pki/ca.key", "pki/front-proxy-ca.key"),
        args: &[
            "certs",
            "bundle",
            "export",
            "--certificate-key",
            CERTIFICATE_KEY,
            "{tree}",
        ],
        exit: 1,
        says: &["{root}/pki/ca.key: does not match the certificate {root}/pki/ca.crt"],
    },
    Case {
        name: "bundle import: not a bundle",
        setup: |r| write(r, "kubeadm-certs.yaml", "apiVersion: v1\nkind: ConfigMap\n"),
        args: &[
            "certs",
            "bundle",
            "import",
            "--certificate-key",
            CERTIFICATE_KEY,
            "{root}/kubeadm-certs.yaml",
            "{tree}",
        ],
        exit: 1,
        says: &[
            "{root}/kubeadm-certs.yaml: not a kubeadm-certs bundle: no Secret named kubeadm-certs",
        ],
    },
    Case {
        name: "bundle import: no such file",
        setup: nothing,
        args: &[
            "certs",
            "bundle",
            "import",
            "--certificate-key",
            CERTIFICATE_KEY,
            "{root}/none.yaml",
            "{tree}",
        ],
        exit: 1,
        says: &["{root}/none.yaml: No such file"],
    },
    Case {
        name: "bundle import: sealed with another key",
        setup: |r| write(r, "kubeadm-certs.yaml", SEALED_WITH_ANOTHER_KEY),
        args: &[
            "certs",
            "bundle",
            "import",
            "--certificate-key",
            CERTIFICATE_KEY,
            "{root}/kubeadm-certs.yaml",
            "{tree}",
        ],
        exit: 1,
        says: &["{root}/kubeadm-certs.yaml: the certificate key does not open this bundle"],
    },
];

/// A certificate key for the bundle cases.
const CERTIFICATE_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A kubeadm-certs Secret whose one entry (the bytes `x`) was sealed with the zero key.
const SEALED_WITH_ANOTHER_KEY: &str = "kind: Secret\nmetadata: {name: kubeadm-certs}\ndata:\n  ca.crt: AAAAAAAAAAAAAAAAtvibg6SOfSwAI6s7kGFCFqU=\n  ca.key: ''\n  front-proxy-ca.crt: ''\n  front-proxy-ca.key: ''\n  etcd-ca.crt: ''\n  etcd-ca.key: ''\n  sa.key: ''\n  sa.pub: ''\n";

fn nothing(_: &Path) {}

/// Appends the content of `from` to `to`.
fn append(root: &Path, to: &str, from: &str) {
    write(root, to, read(root, to) + &read(root, from));
}

/// `head` followed by a flow sequence nested 100 000 deep.
fn deep_yaml(head: &str) -> String {
    format!("{head}{}{}\n", "[".repeat(100_000), "]".repeat(100_000))
}

/// A FIFO at `rel`: reading it would wait for a writer forever.
fn fifo(root: &Path, rel: &str) {
    nix::unistd::mkfifo(
        &root.join(rel),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("a FIFO");
}

/// Replaces `to` with a copy of `from`.
fn copy(root: &Path, from: &str, to: &str) {
    fs::copy(root.join(from), root.join(to)).expect("copying a file");
}

/// Exchanges the contents of two files.
fn exchange(root: &Path, a: &str, b: &str) {
    let (first, second) = (read(root, a), read(root, b));
    write(root, a, &second);
    write(root, b, &first);
}

fn read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).expect("reading a file")
}

fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    fs::write(root.join(rel), content).expect("writing a file");
}

/// Rewrites a PEM file as the DER bytes of its first block.
fn to_der(root: &Path, rel: &str) {
    use base64::Engine;
    let body: String = read(root, rel)
        .lines()
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("a PEM body");
    write(root, rel, der);
}

/// Cuts a file to its first half.
fn truncate(root: &Path, rel: &str) {
    let text = read(root, rel);
    write(root, rel, &text[..text.len() / 2]);
}

/// Replaces every `from` in a file by `to`; `from` must occur.
fn replace(root: &Path, rel: &str, from: &str, to: &str) {
    let text = read(root, rel);
    assert!(text.contains(from), "{rel} lacks {from:?}");
    write(root, rel, text.replace(from, to));
}

/// Sets the base64 `field` of a kubeconfig to the content of the file `source`.
fn set_data(root: &Path, conf: &str, field: &str, source: &str) {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(read(root, source));
    let text: Vec<String> = read(root, conf)
        .lines()
        .map(|line| match line.split_once(&format!("{field}: ")) {
            Some((indent, _)) => format!("{indent}{field}: {data}"),
            None => line.to_string(),
        })
        .collect();
    write(root, conf, &(text.join("\n") + "\n"));
}

/// Replaces the cluster CA by a CA (same name, with its key) that expired on 2021-01-01.
fn expired_ca(root: &Path) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a key");
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kubernetes");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    params.not_before = time::macros::datetime!(2020-01-01 0:00 UTC);
    params.not_after = time::macros::datetime!(2021-01-01 0:00 UTC);
    let cert = params.self_signed(&key).expect("a self-signed CA");
    write(root, "pki/ca.crt", cert.pem());
    write(root, "pki/ca.key", key.serialize_pem());
}

#[test]
fn every_bad_input_is_one_line_and_changes_nothing() {
    let pristine = TempTree::new();
    pristine.init(ALGORITHM, &[]);
    let failures: Vec<String> = CASES
        .iter()
        .filter_map(|case| {
            run_case(&pristine, case)
                .err()
                .map(|problem| format!("{}: {problem}", case.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

/// The case's command line for `tree`.
fn command_line(case: &Case, tree: &TempTree) -> Vec<String> {
    let root = tree.root().display().to_string();
    case.args
        .iter()
        .flat_map(|arg| match *arg {
            "{init}" => tree.init_args(ALGORITHM, &[]),
            "{tree}" => tree.dir_args(),
            _ => vec![arg.replace("{root}", &root)],
        })
        .collect()
}

fn run_case(pristine: &TempTree, case: &Case) -> Result<(), String> {
    let tree = TempTree::copy_of(pristine);
    (case.setup)(tree.root());
    let before = tree.snapshot();
    let out = kubepki(&command_line(case, &tree));
    check_output(case, &out, &tree.root().display().to_string())?;
    if tree.snapshot() != before {
        return Err("the tree changed".into());
    }
    Ok(())
}

/// The exit status, one `kubepki: error:` line on stderr saying what the case says (`root`
/// standing for `{root}`), nothing on stdout, no token secret.
fn check_output(case: &Case, out: &Output, root: &str) -> Result<(), String> {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    if out.status.code() != Some(case.exit) {
        return Err(format!(
            "exit {:?}, expected {}; stderr: {stderr}",
            out.status.code(),
            case.exit
        ));
    }
    // Lines saying why discovery will try again come before the error; they are progress.
    let errors: String = stderr
        .lines()
        .filter(|line| !line.starts_with("[discovery] will try again in "))
        .map(|line| format!("{line}\n"))
        .collect();
    let line = errors.strip_suffix('\n').unwrap_or(&errors);
    if line.contains('\n') || !line.starts_with("kubepki: error: ") {
        return Err(format!(
            "expected one \"kubepki: error:\" line on stderr, got: {stderr}"
        ));
    }
    let says = case.says.iter().map(|s| s.replace("{root}", root));
    if let Some(missing) = says.into_iter().find(|s| !line.contains(s.as_str())) {
        return Err(format!("stderr lacks {missing:?}: {line}"));
    }
    if !stdout.is_empty() {
        return Err(format!("expected nothing on stdout, got: {stdout}"));
    }
    if stderr.contains(SECRET_DIGITS) {
        return Err(format!("a token secret leaked: {stderr}"));
    }
    Ok(())
}

#[test]
fn an_expired_certificate_is_refused() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &["--cert-validity", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let before = tree.snapshot();
    let args = tree.init_args("ECDSA-P256", &[]);
    let out = kubepki(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("pki/apiserver.crt: expired on"), "{stderr}");
    assert_eq!(tree.snapshot(), before);
}
