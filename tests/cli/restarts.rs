//! The renewal job's own restart (issue 24): with no RESTART_CMD, each component the renewal
//! names is restarted by moving its static pod manifest out until its health endpoint
//! fails, then back until it answers again, one component at a time. A simulated kubelet
//! serves each component's health endpoint: healthy a moment after its manifest is in the
//! manifests directory, failing while it is not.

use crate::support::{TempTree, assert_success, kubepki};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STATIC_PODS: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// A component's health endpoint, answered as a kubelet running its static pod would:
/// 200 once its manifest has been in place for a moment, 503 otherwise.
fn health_endpoint(manifest: PathBuf, stop: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}/healthz", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let mut present_since: Option<Instant> = None;
        while !stop.load(Ordering::Relaxed) {
            present_since = match (manifest.exists(), present_since) {
                (true, None) => Some(Instant::now()),
                (true, since) => since,
                (false, _) => None,
            };
            let healthy = present_since.is_some_and(|t| t.elapsed() > Duration::from_millis(300));
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).ok();
                    let mut request = [0u8; 1024];
                    let _ = stream.read(&mut request);
                    let status = if healthy {
                        "200 OK"
                    } else {
                        "503 Service Unavailable"
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    url
}

/// A manifest out of the manifests directory: (component, gone at, back at).
type Absence = (String, Instant, Option<Instant>);

/// Watches the manifests: each absence, in order.
fn watch(manifests: PathBuf, stop: Arc<AtomicBool>) -> Arc<Mutex<Vec<Absence>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            for pod in STATIC_PODS {
                let present = manifests.join(format!("{pod}.yaml")).exists();
                let mut seen = record.lock().expect("lock");
                let open = seen.iter_mut().find(
                    |(name, _, back): &&mut (String, Instant, Option<Instant>)| {
                        name == pod && back.is_none()
                    },
                );
                match (present, open) {
                    (false, None) => seen.push((pod.to_string(), Instant::now(), None)),
                    (true, Some(entry)) => entry.2 = Some(Instant::now()),
                    _ => {}
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    seen
}

fn job(tree: &TempTree, urls: &[(String, String)]) -> std::process::Output {
    let mut command = std::process::Command::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cron/kubepki-renew"),
    );
    command
        .env("KUBEPKI", env!("CARGO_BIN_EXE_kubepki"))
        .env("CERT_DIR", tree.pki())
        .env("KUBECONFIG_DIR", tree.root())
        .env("METRICS_FILE", tree.root().join("kubepki.prom"))
        .env("HEALTH_POLL", "0.1")
        .env("HEALTH_TIMEOUT", "30")
        .env_remove("RESTART_CMD");
    for (variable, url) in urls {
        command.env(variable, url);
    }
    command.output().expect("running the job")
}

#[test]
fn issue_24_the_job_restarts_one_static_pod_at_a_time_waiting_for_health() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &["--cert-validity", "10d"]);
    // kubelet.conf is not due: the job restarts the static pods only.
    let mut args = vec!["certs".to_string(), "renew".into(), "kubelet.conf".into()];
    args.extend(tree.dir_args());
    assert_success(&kubepki(&args), "renewing kubelet.conf for a year");
    let manifests = tree.root().join("manifests");
    std::fs::create_dir(&manifests).expect("manifests dir");
    let stop = Arc::new(AtomicBool::new(false));
    let mut urls = Vec::new();
    for pod in STATIC_PODS {
        let manifest = manifests.join(format!("{pod}.yaml"));
        std::fs::write(&manifest, format!("# {pod}\n")).expect("manifest");
        let variable = format!("{}_HEALTH_URL", pod.to_uppercase().replace('-', "_"));
        urls.push((variable, health_endpoint(manifest, stop.clone())));
    }
    std::thread::sleep(Duration::from_millis(400));
    let seen = watch(manifests.clone(), stop.clone());
    let out = job(&tree, &urls);
    stop.store(true, Ordering::Relaxed);
    assert_success(&out, "the renewal job");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen = seen.lock().expect("lock").clone();
    let order: Vec<&str> = seen.iter().map(|(name, _, _)| name.as_str()).collect();
    assert_eq!(
        order, STATIC_PODS,
        "each once, in the renewal's order:\n{stdout}"
    );
    for window in seen.windows(2) {
        let (first, _, back) = &window[0];
        let (next, gone, _) = &window[1];
        let back = back.unwrap_or_else(|| panic!("{first} never came back"));
        assert!(
            back <= *gone,
            "{next} went before {first} was back:\n{stdout}"
        );
        // The simulated kubelet answers healthy 300 ms after a manifest is back.
        assert!(
            *gone - back >= Duration::from_millis(250),
            "{next} went before {first} was healthy again:\n{stdout}"
        );
    }
    for pod in STATIC_PODS {
        assert!(
            manifests.join(format!("{pod}.yaml")).is_file(),
            "{pod} is back"
        );
        assert!(stdout.contains(&format!("restarted {pod}\n")), "{stdout}");
    }
}
