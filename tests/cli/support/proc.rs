//! Processes the tier tests start: each one a [`Proc`] guard that stops it by its PID (SIGTERM,
//! then SIGKILL after a bounded grace) and kills it when dropped, also during a panic; its
//! stdout and stderr go to a log file kept for failure messages ([`tail`] reads it). And [`run_bounded`], which
//! runs a command to completion or kills it at a deadline.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How often a bounded wait looks again.
const POLL: Duration = Duration::from_millis(100);

/// A started process, stopped by its PID when dropped.
pub struct Proc {
    /// What it is (`kube-apiserver`), for messages.
    pub name: String,
    child: Child,
}

impl Proc {
    /// Starts `command`, appending its stdout and stderr to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Proc {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("opening {}: {e}", log.display()));
        let err = file.try_clone().expect("cloning a log file handle");
        let child = command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({command:?}): {e}"));
        Proc {
            name: name.to_string(),
            child,
        }
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How it ended, if it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends SIGTERM to its PID and waits up to `grace` for it to end, then kills it.
    pub fn stop(&mut self, grace: Duration) {
        if self.exited().is_some() {
            return;
        }
        if let Ok(pid) = i32::try_from(self.pid()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(POLL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `lines` lines of the file at `path` (empty when unreadable).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs `command` to completion with its output captured (and `stdin` fed to it), killing
/// it if it is still running after `timeout`: the output then says so.
pub fn run_bounded(mut command: Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let dir = tempfile::tempdir().expect("a temp dir for captured output");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let input = stdin.map(|bytes| {
        let path = dir.path().join("stdin");
        std::fs::write(&path, bytes).expect("writing stdin");
        path
    });
    command
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .stdin(match &input {
            Some(path) => Stdio::from(File::open(path).expect("stdin file")),
            None => Stdio::null(),
        });
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            break child.wait().expect("reaping a killed child");
        }
        std::thread::sleep(POLL);
    };
    let read = |path: &Path| {
        let mut bytes = Vec::new();
        let _ = File::open(path).and_then(|mut f| f.read_to_end(&mut bytes));
        bytes
    };
    let mut stderr = read(&err_path);
    if Instant::now() >= deadline && !status.success() {
        stderr.extend(format!("\n(killed after {timeout:?})\n").into_bytes());
    }
    Output {
        status,
        stdout: read(&out_path),
        stderr,
    }
}
