//! The API server's audit log, written at `Metadata` level as JSON lines: the witness of who
//! each request authenticated as (user and groups), of what it did and of the answer. The
//! log backend writes an event before the answer is sent, so a request's events are in the
//! file when the client has its answer.

use super::endpoint::Identity;
use serde_json::Value;
use std::path::PathBuf;

/// The audit policy: every request at `Metadata` level (who, what, the answer; no bodies).
pub const POLICY: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n";

/// An audit log file.
pub struct AuditLog {
    path: PathBuf,
}

/// One completed request as the log tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Who it authenticated as.
    pub identity: Identity,
    /// The verb (`get`, `update`, ...).
    pub verb: String,
    /// The request URI.
    pub uri: String,
    /// The name of the object acted on, if any.
    pub name: String,
    /// The answer's status code.
    pub code: u16,
}

impl Event {
    /// The URI without its query (`?timeout=5s`).
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }
}

impl AuditLog {
    /// The log at `path`.
    pub fn new(path: PathBuf) -> AuditLog {
        AuditLog { path }
    }

    /// Every completed request so far, oldest first.
    pub fn events(&self) -> Vec<Event> {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|event| event["stage"] == "ResponseComplete")
            .map(|event| to_event(&event))
            .collect()
    }

    /// The last completed request to exactly `path` (whatever its query).
    pub fn last_to(&self, path: &str) -> Option<Event> {
        self.events().into_iter().rev().find(|e| e.path() == path)
    }
}

fn to_event(event: &Value) -> Event {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    let groups = event["user"]["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Event {
        identity: Identity {
            user: text(&event["user"]["username"]),
            groups: groups.iter().map(text).collect(),
        },
        verb: text(&event["verb"]),
        uri: text(&event["requestURI"]),
        name: text(&event["objectRef"]["name"]),
        code: event["responseStatus"]["code"]
            .as_u64()
            .and_then(|code| u16::try_from(code).ok())
            .unwrap_or_default(),
    }
}
