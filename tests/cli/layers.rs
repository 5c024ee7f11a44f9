//! The shape of the crate: every `crate::` path in the library's code (test-only items aside)
//! points down the layers of `shared/design.md`, so no module depends on one above it and
//! the layers have no cycle; and within a folder, the files that use each other do so
//! without a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom first: a module may use only modules of lower rank (and itself).
const LAYERS: &[&str] = &[
    "usage", "duration", "pki", "net", "cluster", "spec", "profile", "config", "tree", "engine",
    "report", "cli", "commands",
];

/// Modules outside the layers: the module list, and test-only helpers.
const UNLAYERED: &[&str] = &["lib", "testgen", "testtree"];

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("reading src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// A file's code without comment lines and without each item under `#[cfg(test)]` (a test
/// module, or one test-only function or `use`): the code after such an item is read too.
fn code_of(path: &Path) -> String {
    without_test_items(&std::fs::read_to_string(path).expect("reading a source file"))
}

/// `text` without comment lines and the items `#[cfg(test)]` marks; nothing of a file that
/// is test-only whole (`#![cfg(test)]`).
fn without_test_items(text: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    if text.contains("#![cfg(test)]") {
        return String::new();
    }
    let code = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut kept = String::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find(MARK) {
        kept.push_str(&rest[..at]);
        let item = &rest[at + MARK.len()..];
        rest = &item[item_end(item)..];
    }
    kept.push_str(rest);
    kept
}

/// Where the item at the start of `code` ends: after its `;`, or after the `}` that closes
/// its first `{` (strings and character literals skipped).
fn item_end(code: &str) -> usize {
    let bytes = code.as_bytes();
    let (mut depth, mut at) = (0usize, 0usize);
    while at < bytes.len() {
        match bytes[at] {
            b'"' => at = string_end(bytes, at),
            b'\'' if bytes.get(at + 2) == Some(&b'\'') => at += 2,
            b'\'' if bytes.get(at + 1) == Some(&b'\\') => {
                at += 2;
                while at < bytes.len() && bytes[at] != b'\'' {
                    at += 1;
                }
            }
            b';' if depth == 0 => return at + 1,
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return at + 1;
                }
            }
            _ => {}
        }
        at += 1;
    }
    bytes.len()
}

/// The index of the closing quote of the string literal opening at `start`.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut at = start + 1;
    while at < bytes.len() && bytes[at] != b'"' {
        at += if bytes[at] == b'\\' { 2 } else { 1 };
    }
    at
}

#[test]
fn code_after_a_test_only_item_is_read_too() {
    let text = "use crate::a;\n#[cfg(test)]\nuse crate::x;\n\
                #[cfg(test)]\npub fn names(&self) -> u8 { let c = '{'; \"}\".len() as u8 }\n\
                use crate::b;\n// use crate::comment;\n#[cfg(test)]\nmod tests {\n    \
                use crate::y;\n    fn f() { if true { } }\n}\nuse crate::c;\n";
    let code = without_test_items(text);
    let used: Vec<String> = paths_after(&code, "crate::")
        .iter()
        .map(|p| p.join("::"))
        .collect();
    assert_eq!(used, ["a", "b", "c"], "{code}");
}

/// The paths after `prefix` (`crate::` or `super::`) in `code`, groups (`{a, b::c}`)
/// expanded: each as its segments.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            paths.extend(inner.split(',').map(segments).filter(|p| !p.is_empty()));
        } else {
            paths.push(segments(rest));
        }
    }
    paths
}

/// The leading `a::b::c` segments of `text`.
fn segments(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text.trim_start();
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            return found;
        }
        found.push(rest[..end].to_string());
        match rest[end..].strip_prefix("::") {
            Some(next) if !next.starts_with('{') => rest = next,
            _ => return found,
        }
    }
}

/// The top-level module a file belongs to (`src/tree/store.rs` → `tree`).
fn top_module(file: &Path) -> String {
    let rel = file.strip_prefix(src()).expect("below src");
    let first = rel.components().next().expect("a component");
    Path::new(first.as_os_str())
        .file_stem()
        .expect("a name")
        .to_string_lossy()
        .into_owned()
}

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| *layer == module)
}

#[test]
fn every_dependency_points_down_the_layers() {
    let mut upward = Vec::new();
    for file in rust_files(&src()) {
        if file.ends_with("main.rs") {
            continue;
        }
        let from = top_module(&file);
        if UNLAYERED.contains(&from.as_str()) {
            continue;
        }
        let from_rank = rank(&from).unwrap_or_else(|| panic!("{from} is in no layer"));
        for path in paths_after(&code_of(&file), "crate::") {
            let to = &path[0];
            let to_rank = rank(to).unwrap_or_else(|| panic!("{to} is in no layer"));
            if to_rank > from_rank {
                upward.push(format!(
                    "{} uses crate::{}",
                    file.strip_prefix(src()).unwrap_or(&file).display(),
                    path.join("::")
                ));
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "upward dependencies:\n{}",
        upward.join("\n")
    );
}

/// The file a path below `folder` names, if it is one of `files` (`tree::store::X` → store).
fn file_named(folder: &Path, segment: &str, files: &BTreeSet<PathBuf>) -> Option<PathBuf> {
    let candidate = folder.join(format!("{segment}.rs"));
    files.contains(&candidate).then_some(candidate)
}

#[test]
fn the_files_of_a_folder_use_each_other_without_a_cycle() {
    let files: BTreeSet<PathBuf> = rust_files(&src()).into_iter().collect();
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for file in files.iter().filter(|f| !f.ends_with("mod.rs")) {
        let folder = file.parent().expect("a folder").to_path_buf();
        let Ok(folder_rel) = folder.strip_prefix(src()) else {
            continue;
        };
        let code = code_of(file);
        let mut targets = BTreeSet::new();
        for path in paths_after(&code, "super::") {
            targets.extend(file_named(&folder, &path[0], &files));
        }
        let folder_name = folder_rel.display().to_string();
        for path in paths_after(&code, "crate::") {
            if path.len() > 1 && path[0] == folder_name {
                targets.extend(file_named(&folder, &path[1], &files));
            }
        }
        targets.remove(file);
        edges.insert(file.clone(), targets);
    }
    let mut done = BTreeSet::new();
    for file in edges.keys() {
        let mut trail = Vec::new();
        if let Some(cycle) = find_cycle(file, &edges, &mut trail, &mut done) {
            panic!(
                "files that use each other in a cycle: {}",
                cycle.join(" -> ")
            );
        }
    }
}

/// A cycle reachable from `file`, as the files on it.
fn find_cycle(
    file: &PathBuf,
    edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
    trail: &mut Vec<PathBuf>,
    done: &mut BTreeSet<PathBuf>,
) -> Option<Vec<String>> {
    if let Some(at) = trail.iter().position(|f| f == file) {
        let names = trail[at..].iter().chain([file]);
        return Some(names.map(|f| f.display().to_string()).collect());
    }
    if done.contains(file) {
        return None;
    }
    trail.push(file.clone());
    for next in edges.get(file).into_iter().flatten() {
        if let Some(cycle) = find_cycle(next, edges, trail, done) {
            return Some(cycle);
        }
    }
    trail.pop();
    done.insert(file.clone());
    None
}
