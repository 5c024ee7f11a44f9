//! Crash safety: `init` and `certs renew` are killed with SIGKILL, at random instants over
//! their run (seeded; the seed is printed and `KUBEPKI_CRASH_SEED` replays it) and, since
//! the writes take a small part of a run, also at every write step in turn (strace injects
//! the SIGKILL at the n-th `linkat`, `rename`, `fsync`, `syncfs`, `write` or `unlink`). After
//! each kill:
//! every certificate that exists matches its key and verifies against its CA (a renewal caught
//! between its two renames excepted), no CA or service-account key has changed, and the next
//! writing command completes a sound tree and leaves no temp or staged file behind.

use crate::support::check::{self, check_tree, leftovers, mismatched_keys, stable_keys};
use crate::support::{TempTree, assert_success, changed, kubepki, openssl, require_tool};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kills at random instants that must land while the process runs, per command.
const RANDOM_KILLS: usize = 200;
const DEFAULT_SEED: u64 = 0x6b75_6265_706b_6908;
/// The system calls that write, at each of which a systematic kill is injected in turn.
const WRITE_CALLS: &[&str] = &["linkat", "rename", "fsync", "syncfs", "write", "unlink"];

/// How a run is killed.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// SIGKILL after this long.
    After(Duration),
    /// SIGKILL on entry to the n-th (1-based) call of this system call.
    AtCall(&'static str, usize),
}

/// What the kills of one test found, for its closing line and its coverage checks.
#[derive(Default)]
struct Tally {
    /// Kills that landed while the process ran.
    landed: usize,
    /// Rounds run (a random delay can outlast the run).
    rounds: usize,
    /// Kills that left some of the tree's files written and others not.
    partial: usize,
    /// Kills that caught a renewal between its two renames.
    pending: usize,
}

/// A small seeded generator (splitmix64), so that a failing run can be replayed.
struct Random(u64);

impl Random {
    fn seeded(what: &str) -> Random {
        let seed = std::env::var("KUBEPKI_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(DEFAULT_SEED);
        eprintln!("{what}: seed {seed} (replay with KUBEPKI_CRASH_SEED={seed})");
        Random(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A delay uniform in `[0, span)`.
    fn delay(&mut self, span: Duration) -> Duration {
        let micros = u64::try_from(span.as_micros()).unwrap_or(u64::MAX).max(1);
        Duration::from_micros(self.next() % micros)
    }
}

/// Runs kubepki with `args`, killed as `kill` says; true when the kill landed mid-run.
fn run_killed(args: &[String], kill: Kill) -> bool {
    run_killed_in(args, kill, None)
}

/// `run_killed`, in the working directory `cwd` when given.
fn run_killed_in(args: &[String], kill: Kill, cwd: Option<&std::path::Path>) -> bool {
    let bin = env!("CARGO_BIN_EXE_kubepki");
    let mut command = match kill {
        Kill::After(_) => Command::new(bin),
        Kill::AtCall(call, n) => {
            let strace = require_tool("strace", "apt-get update && apt-get install -y strace");
            let mut command = Command::new(strace);
            command.args(["-f", "-o", "/dev/null", "-e"]);
            command.arg(format!("trace={call}"));
            command
                .arg("-e")
                .arg(format!("inject={call}:signal=KILL:when={n}"));
            command.arg(bin);
            command
        }
    };
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let mut child = command
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting kubepki");
    match kill {
        Kill::After(delay) => {
            std::thread::sleep(delay);
            let running = child.try_wait().expect("polling kubepki").is_none();
            let _ = child.kill();
            child.wait().expect("reaping kubepki");
            running
        }
        Kill::AtCall(..) => !child.wait().expect("waiting for strace").success(),
    }
}

/// One round: kill a run of `killed`, check what it left, run `next` (a writing command),
/// check that the tree is whole again and that no stable key changed.
fn round(tree: &TempTree, killed: &[String], kill: Kill, next: &[String], tally: &mut Tally) {
    let before = stable_keys(tree);
    let landed = run_killed(killed, kill);
    let after = format!("round {} ({kill:?} of {killed:?})", tally.rounds);
    let findings = check_tree(tree);
    assert!(
        findings.problems.is_empty(),
        "{after}: {:#?}",
        findings.problems
    );
    let left = stable_keys(tree);
    for (file, key) in &before {
        assert_eq!(left.get(file), Some(key), "{after}: {file} changed");
    }
    let present = files_present(tree);
    assert_success(&kubepki(next), &format!("{after}: then {next:?}"));
    let whole = check_tree(tree);
    assert!(
        whole.complete(),
        "{after}: then {next:?}: not whole: {whole:?}"
    );
    let leftover = leftovers(tree);
    assert!(
        leftover.is_empty(),
        "{after}: then {next:?} left {leftover:?}"
    );
    assert_eq!(stable_keys(tree).len(), check::STABLE_KEYS.len());
    for (file, key) in &left {
        assert_eq!(
            stable_keys(tree).get(file),
            Some(key),
            "{after}: {file} changed"
        );
    }
    if tally.rounds % 25 == 0 {
        openssl_verifies(tree).unwrap_or_else(|e| panic!("{after}: {e}"));
    }
    tally.rounds += 1;
    if landed {
        tally.landed += 1;
        tally.partial += usize::from(present > 0 && present < WHOLE_TREE);
        tally.pending += usize::from(findings.pending > 0);
    }
}

/// Runs `one_round` (which kills at a random instant) until `RANDOM_KILLS` kills landed
/// mid-run; fails if most delays outlast the run.
fn at_random_instants(tally: &mut Tally, mut one_round: impl FnMut(&mut Tally)) {
    while tally.landed < RANDOM_KILLS {
        assert!(
            tally.rounds < 3 * RANDOM_KILLS,
            "only {} kills landed",
            tally.landed
        );
        one_round(tally);
    }
}

/// Runs `one_round` with a kill at each write step in turn: the 1st, 2nd, ... call of each
/// of `WRITE_CALLS`, until a run no longer reaches the next one.
fn at_every_write_step(tally: &mut Tally, mut one_round: impl FnMut(Kill, &mut Tally)) {
    for call in WRITE_CALLS {
        for n in 1.. {
            let landed = tally.landed;
            one_round(Kill::AtCall(call, n), tally);
            if tally.landed == landed {
                break;
            }
        }
    }
}

/// The wall time of one uninterrupted run of `args`.
fn timed(args: &[String]) -> Duration {
    let started = Instant::now();
    assert_success(&kubepki(args), "an uninterrupted run");
    started.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The number of files of a whole tree: keys, certificates, kubeconfigs, sa.key and sa.pub.
const WHOLE_TREE: usize = 2 * check::PAIRS.len() + check::KUBECONFIGS.len() + 2;

/// How many of the tree's files exist.
fn files_present(tree: &TempTree) -> usize {
    let pairs = check::PAIRS
        .iter()
        .flat_map(|(stem, _)| ["crt", "key"].map(|ext| tree.pki().join(format!("{stem}.{ext}"))));
    let others = check::KUBECONFIGS
        .iter()
        .map(|name| tree.root().join(name))
        .chain(["sa.key", "sa.pub"].map(|name| tree.pki().join(name)));
    pairs.chain(others).filter(|path| path.exists()).count()
}

/// Every certificate of a whole tree, as openssl sees it: `verify` against its CA succeeds.
fn openssl_verifies(tree: &TempTree) -> Result<(), String> {
    for (stem, ca) in check::PAIRS {
        let cert = tree.pki().join(format!("{stem}.crt"));
        let ca = tree.pki().join(format!("{ca}.crt"));
        let args = [
            "verify".as_ref(),
            "-CAfile".as_ref(),
            ca.as_os_str(),
            cert.as_os_str(),
        ];
        let out = openssl(&args);
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(format!("openssl verify {}: {stderr}", cert.display()));
        }
    }
    Ok(())
}

/// The arguments of `init` on `tree` with `algorithm`.
fn init_args(tree: &TempTree, algorithm: &str) -> Vec<String> {
    tree.init_args(algorithm, &[])
}

#[test]
fn init_killed_at_random_instants_never_loses_a_key() {
    let mut random = Random::seeded("init");
    let algorithm = |n: usize| {
        if n % 20 == 19 {
            "RSA-2048"
        } else {
            "ECDSA-P256"
        }
    };
    let span = |alg: &str, runs: usize| {
        median(
            (0..runs)
                .map(|_| timed(&init_args(&TempTree::new(), alg)))
                .collect(),
        )
    };
    let spans = [span("ECDSA-P256", 5), span("RSA-2048", 3)];
    let mut tally = Tally::default();
    at_random_instants(&mut tally, |tally| {
        let alg = algorithm(tally.rounds);
        let span = spans[usize::from(alg == "RSA-2048")];
        let tree = TempTree::new();
        let args = init_args(&tree, alg);
        let kill = Kill::After(random.delay(span + span / 5));
        round(&tree, &args, kill, &args, tally);
    });
    eprintln!(
        "init: {} random kills survived in {} rounds; {} left a partial tree",
        tally.landed, tally.rounds, tally.partial
    );
}

#[test]
fn init_killed_at_every_write_step_never_loses_a_key() {
    let mut tally = Tally::default();
    at_every_write_step(&mut tally, |kill, tally| {
        let tree = TempTree::new();
        let args = init_args(&tree, "ECDSA-P256");
        round(&tree, &args, kill, &args, tally);
    });
    eprintln!(
        "init: {} kills at write steps survived; {} left a partial tree",
        tally.landed, tally.partial
    );
    assert!(
        tally.partial >= WHOLE_TREE,
        "only {} partial trees",
        tally.partial
    );
}

/// `certs renew all` on `tree`, and the writing commands that must each finish a killed
/// renewal first: a renewal with nothing due, `init`, renewing one certificate, a new token.
fn renew_commands(tree: &TempTree) -> (Vec<String>, Vec<Vec<String>>) {
    let with_dirs = |words: &[&str]| -> Vec<String> {
        let words = words.iter().map(|s| s.to_string());
        words.chain(tree.dir_args()).collect()
    };
    let next = vec![
        with_dirs(&["certs", "renew", "all", "--expiring-within", "1h"]),
        init_args(tree, "ECDSA-P256"),
        with_dirs(&["certs", "renew", "apiserver"]),
        with_dirs(&["token", "create"]),
    ];
    (with_dirs(&["certs", "renew", "all"]), next)
}

#[test]
fn renew_killed_at_random_instants_never_loses_a_key() {
    let mut random = Random::seeded("renew");
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let (renew, next) = renew_commands(&tree);
    let span = median((0..5).map(|_| timed(&renew)).collect());
    let mut tally = Tally::default();
    at_random_instants(&mut tally, |tally| {
        let kill = Kill::After(random.delay(span + span / 5));
        let then = &next[tally.rounds % next.len()];
        round(&tree, &renew, kill, then, tally);
    });
    eprintln!(
        "renew: {} random kills survived in {} rounds; {} caught a pair between its renames",
        tally.landed, tally.rounds, tally.pending
    );
}

#[test]
fn renew_killed_at_every_write_step_never_loses_a_key() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let (renew, next) = renew_commands(&tree);
    let mut tally = Tally::default();
    at_every_write_step(&mut tally, |kill, tally| {
        let then = &next[tally.rounds % next.len()];
        round(&tree, &renew, kill, then, tally);
    });
    eprintln!(
        "renew: {} kills at write steps survived; {} caught a pair between its renames",
        tally.landed, tally.pending
    );
    assert!(
        tally.pending > 0,
        "no kill caught a pair between its renames"
    );
}

/// `certs rollback` killed at every write step, on copies of one renewed tree: the next
/// writing run (a renewal with nothing due, `init`, `token create`) leaves the tree as it was
/// before the rollback (killed before its generation was kept: it never began, and no
/// rollback generation is listed) or as the rollback leaves it, byte for byte, never a mix;
/// and some kills are finished that way by the next run.
#[test]
fn rollback_killed_at_every_write_step_is_finished_by_the_next_run() {
    rollback_killed_at_every_write_step(false);
}

/// A rollback given its directories relative to its working directory, killed, is finished
/// by a run from another one: the mark holds the absolute path (#25).
#[test]
fn rollback_killed_with_relative_dirs_is_finished_from_another_directory() {
    rollback_killed_at_every_write_step(true);
}

/// Kills `certs rollback` at every write step, each time on a fresh copy of a renewed tree,
/// then runs another writing command, which must find the tree rolled back whole or not at
/// all; `relative`: the rollback runs in the tree's root with `--cert-dir pki
/// --kubeconfig-dir .`, the next command from the test's own directory.
fn rollback_killed_at_every_write_step(relative: bool) {
    let template = TempTree::new();
    template.init("ECDSA-P256", &[]);
    let initial = template.pki_contents();
    template.renew_all();
    let renewed = template.pki_contents();
    let mut tally = Tally::default();
    let mut finished = 0;
    at_every_write_step(&mut tally, |kill, tally| {
        let tree = TempTree::copy_of(&template);
        let (_, next) = renew_commands(&tree);
        // Every writing command but the renewal of one certificate, which would change it.
        let next: Vec<&Vec<String>> = next
            .iter()
            .filter(|c| !c.contains(&"apiserver".into()))
            .collect();
        let then = next[tally.rounds % next.len()];
        let (dir_args, cwd) = match relative {
            true => (
                ["--cert-dir", "pki", "--kubeconfig-dir", "."]
                    .map(String::from)
                    .to_vec(),
                Some(tree.root()),
            ),
            false => (tree.dir_args(), None),
        };
        let rollback = [&["certs".to_string(), "rollback".into()][..], &dir_args].concat();
        let landed = run_killed_in(&rollback, kill, cwd);
        let killed = tree.pki_contents();
        let after = format!("round {} ({kill:?})", tally.rounds);
        assert_success(&kubepki(then), &format!("{after}: then {then:?}"));
        let now = tree.pki_contents();
        let rolled_back = changed(&initial, &now).is_empty();
        assert!(
            rolled_back || changed(&renewed, &now).is_empty(),
            "{after}: a mix: {:?} differ from the rollback",
            changed(&initial, &now)
        );
        let listed = kubepki(
            &[
                &[
                    "certs".to_string(),
                    "generations".into(),
                    "-o".into(),
                    "json".into(),
                ][..],
                &tree.dir_args(),
            ]
            .concat(),
        );
        let has_rollback = String::from_utf8_lossy(&listed.stdout).contains("\"certs rollback\"");
        assert_eq!(
            has_rollback, rolled_back,
            "{after}: a rollback generation without its rollback"
        );
        assert!(
            check_tree(&tree).complete(),
            "{after}: {:?}",
            check_tree(&tree)
        );
        assert!(
            leftovers(&tree).is_empty(),
            "{after}: {:?}",
            leftovers(&tree)
        );
        assert!(
            !tree.root().join("tmp/kubepki-rollback.pending").exists(),
            "{after}: marked still"
        );
        tally.rounds += 1;
        if landed {
            tally.landed += 1;
            finished += usize::from(rolled_back && !changed(&initial, &killed).is_empty());
        }
    });
    eprintln!(
        "rollback: {} kills at write steps; {finished} left for the next run to finish",
        tally.landed
    );
    assert!(finished > 0, "no kill left a rollback to finish");
}

/// The content of every private key below the tree's root (key files, backups included).
fn keys_below(tree: &TempTree) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    let mut stack = vec![tree.root().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(content) = std::fs::read(&path) {
                if String::from_utf8_lossy(&content).contains("PRIVATE KEY-----") {
                    keys.push(content);
                }
            }
        }
    }
    keys
}

/// The rotation stages killed at every write step: the cluster CA's three (bundle file,
/// kubeconfigs, cluster-info, the signing pair, re-issued leaves, next/ removed), the etcd
/// CA's sign (a bundle in place in the signing pair, next/etcd/) and the service-account
/// key's sign (two whole files).
const ROTATION_KILLS: [(&str, &str); 5] = [
    ("ca", "trust"),
    ("ca", "sign"),
    ("ca", "finish"),
    ("etcd-ca", "sign"),
    ("sa", "sign"),
];

#[test]
fn rotate_ca_killed_at_every_write_step_is_completed_by_the_same_command() {
    let start = TempTree::new();
    start.init("ECDSA-P256", &[]);
    let run = |tree: &TempTree, row: &str, stage: &str| -> Vec<String> {
        let words = ["certs", "rotate-ca", row, stage].map(String::from);
        words.into_iter().chain(tree.dir_args()).collect()
    };
    for (row, stage) in ROTATION_KILLS {
        if stage == "sign" {
            assert_success(&kubepki(&run(&start, row, "trust")), "trust first");
        }
        let mut tally = Tally::default();
        at_every_write_step(&mut tally, |kill, tally| {
            let tree = TempTree::copy_of(&start);
            let args = run(&tree, row, stage);
            let keys = keys_below(&tree);
            let landed = run_killed(&args, kill);
            let after = format!("{row} {stage}, {kill:?}");
            let mismatched = mismatched_keys(&tree);
            assert!(mismatched.is_empty(), "{after}: {mismatched:#?}");
            let left = keys_below(&tree);
            for key in &keys {
                assert!(left.contains(key), "{after}: a private key was lost");
            }
            assert_success(&kubepki(&args), &format!("{after}: then the same command"));
            let status = kubepki(&run(&tree, row, "status"));
            assert_success(&status, &format!("{after}: status"));
            let phase = match stage {
                "trust" => "trusted",
                "sign" => "signed",
                _ => "idle",
            };
            let said = String::from_utf8_lossy(&status.stdout).into_owned();
            // `<row>: <phase>[ (since <time>)]: <what holds>`
            assert!(
                said.starts_with(&format!("{row}: {phase}: "))
                    || said.starts_with(&format!("{row}: {phase} (since ")),
                "{after}: {said}"
            );
            assert!(!said.contains("not complete"), "{after}: {said}");
            assert!(
                check_tree(&tree).complete(),
                "{after}: {:?}",
                check_tree(&tree)
            );
            assert!(
                leftovers(&tree).is_empty(),
                "{after}: {:?}",
                leftovers(&tree)
            );
            tally.rounds += 1;
            tally.landed += usize::from(landed);
        });
        eprintln!(
            "rotate-ca {row} {stage}: {} kills at write steps completed",
            tally.landed
        );
        assert!(
            tally.landed >= 10,
            "{row} {stage}: only {} kills landed",
            tally.landed
        );
        assert_success(
            &kubepki(&run(&start, row, stage)),
            "the stage on the start tree",
        );
    }
}
