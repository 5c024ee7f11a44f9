//! The shape of the crate: every `crate::` path in the library's code (test modules aside)
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

/// A file's code without its test module and comment lines.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("reading a source file");
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
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
