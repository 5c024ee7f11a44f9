//! `cargo bench`: the library's hot paths, timed with the standard library only (min,
//! median and max over N runs): key generation per algorithm, issuing one leaf, planning
//! `init` over an existing tree (load every file and verify it), and reading expirations.
//! Whole-command timings, against the openssl baseline, are in `benches/bench.sh`.

use clap::Parser;
use kubepki::cli::{Cli, Command};
use kubepki::engine::expiry::ExpirationInfo;
use kubepki::engine::plan::plan_init;
use kubepki::pki::issue::{self, CertRequest, Eku};
use kubepki::pki::keys::{self, Algorithm};
use kubepki::profile::Selection;
use kubepki::spec::ClusterSpec;
use kubepki::tree::TreeDirs;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

fn main() {
    for (algorithm, name) in Algorithm::ALL {
        let runs = match algorithm {
            Algorithm::Rsa4096 => 5,
            Algorithm::Rsa3072 => 10,
            Algorithm::Rsa2048 => 20,
            _ => 200,
        };
        report(&format!("generate one {name} key"), runs, || {
            keys::generate(algorithm).expect("key generation");
        });
    }
    for algorithm in [Algorithm::Rsa2048, Algorithm::EcdsaP256] {
        let ca_key = keys::generate(algorithm).expect("CA key");
        let ca = issue::self_signed_ca(&request("kubernetes", true), &ca_key).expect("CA");
        let signer = issue::existing_ca(&ca, ca_key).expect("signer");
        let leaf_key = keys::generate(algorithm).expect("leaf key");
        report(&format!("issue one leaf ({algorithm} CA)"), 200, || {
            issue::signed_by(&request("kube-apiserver", false), &leaf_key, &signer)
                .expect("signing");
        });
    }
    let tree = tempfile::tempdir().expect("temp dir");
    let (spec, dirs) = spec_and_dirs(tree.path());
    let plan = plan_init(&spec, &dirs, Selection::All);
    let written = kubepki::engine::apply::apply(
        plan,
        &spec,
        kubepki::engine::apply::no_derived,
        &kubepki::engine::apply::unwatched,
    );
    written.expect("writing a tree");
    report(
        "plan init over a full RSA-2048 tree (load + verify 27 files)",
        50,
        || {
            let plan = plan_init(&spec, &dirs, Selection::All);
            assert!(plan.refusals().next().is_none());
        },
    );
    report("read the expiration of 15 certificates", 100, || {
        ExpirationInfo::read(&dirs, OffsetDateTime::now_utc()).expect("reading expirations");
    });
}

fn spec_and_dirs(root: &std::path::Path) -> (ClusterSpec, TreeDirs) {
    let pki = root.join("pki");
    let args = [
        "kubepki",
        "init",
        "--node-name",
        "cp1",
        "--apiserver-advertise-address",
        "127.0.0.1",
    ];
    let Command::Init(init) = Cli::parse_from(args).command else {
        unreachable!("init parses as init")
    };
    let spec =
        ClusterSpec::resolve(&init.cluster.input(), OffsetDateTime::now_utc()).expect("spec");
    (spec, TreeDirs::new(Some(pki), Some(root.to_path_buf())))
}

fn request(cn: &str, is_ca: bool) -> CertRequest {
    let now = OffsetDateTime::now_utc();
    CertRequest {
        cn: cn.into(),
        orgs: vec![],
        dns_names: vec![cn.into()],
        ips: vec![],
        ekus: if is_ca { vec![] } else { vec![Eku::ServerAuth] },
        is_ca,
        not_before: now,
        not_after: now + time::Duration::days(365),
    }
}

/// Runs `work` `runs` times and prints min, median and max.
fn report(what: &str, runs: usize, mut work: impl FnMut()) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what:<62} median {:>9.3} ms   min {:>9.3} ms   max {:>9.3} ms   ({runs} runs)",
        ms(times[runs / 2]),
        ms(times[0]),
        ms(times[runs - 1])
    );
}
