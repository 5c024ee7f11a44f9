//! Turning serde_yaml's errors into one line that names the file, the line and column, the
//! field's path and, for an unknown field, the nearest known name. No I/O.

use anyhow::anyhow;
use std::path::Path;

/// A deserialization error with the path of the field where it happened.
pub type Located = serde_path_to_error::Error<serde_yaml::Error>;

/// The message for an error in a document's `apiVersion` or `kind`, or in its shape.
pub fn located_header(path: &Path, error: Located) -> anyhow::Error {
    let field_path = error.path().to_string();
    let inner = error.into_inner();
    let message = printable(&bare_message(&inner, &field_path));
    match (inner.location(), field_path.as_str()) {
        (Some(at), "apiVersion" | "kind") => {
            anyhow!(
                "{}:{}:{}: {message}",
                path.display(),
                at.line(),
                at.column()
            )
        }
        (Some(at), _) if !message.starts_with("invalid type") => anyhow!(
            "{}:{}:{}: not valid YAML: {message}",
            path.display(),
            at.line(),
            at.column()
        ),
        (Some(at), _) => anyhow!(
            "{}:{}:{}: not a kubeadm configuration document \
             (expected a mapping with apiVersion and kind): {message}",
            path.display(),
            at.line(),
            at.column()
        ),
        (None, _) => anyhow!("{}: {}", path.display(), printable(&inner.to_string())),
    }
}

/// The message for `error` in a document of kind `kind` read from `path`.
pub fn located(path: &Path, kind: &str, error: Located) -> anyhow::Error {
    let field_path = error.path().to_string();
    let inner = error.into_inner();
    let position = match inner.location() {
        Some(at) => format!("{}:{}:{}", path.display(), at.line(), at.column()),
        None => path.display().to_string(),
    };
    let message = bare_message(&inner, &field_path);
    if let Some((field, known)) = unknown_field(&message) {
        let parent = field_path
            .strip_suffix(field.as_str())
            .map(|p| p.trim_end_matches('.'))
            .unwrap_or(&field_path);
        let container = join(kind, &printable(parent));
        let hint = match field.as_str() {
            "<<" => " (YAML merge keys are not supported; use an alias of a whole value)".into(),
            _ => did_you_mean(nearest(&field, known.iter().map(String::as_str))),
        };
        return anyhow!("unknown field {field:?} in {container} at {position}{hint}");
    }
    anyhow!(
        "{} at {position}: {}",
        join(kind, &printable(&field_path)),
        printable(&message)
    )
}

/// `text` with control characters and line separators escaped (`\n`, `\u{85}`): a field
/// path or value quoted from the file never breaks the message's one line.
fn printable(text: &str) -> String {
    text.chars()
        .map(
            |c| match c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                true => c.escape_default().to_string(),
                false => c.to_string(),
            },
        )
        .collect()
}

/// `Kind.path`, or just `Kind` at the root.
fn join(kind: &str, field_path: &str) -> String {
    match field_path {
        "" | "." | "?" => kind.to_string(),
        _ => format!("{kind}.{field_path}"),
    }
}

/// serde_yaml's message without its own path prefix and position suffix.
fn bare_message(inner: &serde_yaml::Error, field_path: &str) -> String {
    let mut text = inner.to_string();
    if let Some(at) = inner.location() {
        let suffix = format!(" at line {} column {}", at.line(), at.column());
        if let Some(stripped) = text.strip_suffix(&suffix) {
            text = stripped.to_string();
        }
    }
    let parent = field_path.rsplit_once('.').map_or("", |(parent, _)| parent);
    for prefix in [field_path, parent] {
        if let Some(rest) = text.strip_prefix(&format!("{prefix}: ")) {
            return rest.to_string();
        }
    }
    text
}

/// From serde's "unknown field `x`, expected one of `a`, `b`": the field and the known names.
/// The field is everything up to the last "`, expected", so a backtick in it is kept.
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, expected) = rest.rsplit_once("`, expected ")?;
    let known = expected.split('`').skip(1).step_by(2).map(str::to_string);
    Some((field.to_string(), known.collect()))
}

/// The known name closest to `word` if it is close enough to be a likely typo.
pub fn nearest<'a>(word: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    known
        .map(|name| (edit_distance(&lower, &name.to_ascii_lowercase()), name))
        .filter(|(distance, name)| *distance <= (name.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// ` (did you mean "x"?)` or nothing.
pub fn did_you_mean(name: Option<&str>) -> String {
    name.map(|n| format!(" (did you mean {n:?}?)"))
        .unwrap_or_default()
}

/// Levenshtein distance over bytes.
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The file as text; invalid UTF-8 is reported at its line and column.
pub fn utf8<'a>(path: &Path, bytes: &'a [u8]) -> anyhow::Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let column = valid.len() - line_start + 1;
        anyhow!(
            "{}:{line}:{column}: not a YAML file (invalid UTF-8 at byte {})",
            path.display(),
            e.valid_up_to()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_and_nearest_names() {
        assert_eq!(edit_distance("certsan", "certsans"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        let known = ["certSANs", "extraArgs", "extraVolumes"];
        assert_eq!(nearest("certSAN", known.into_iter()), Some("certSANs"));
        assert_eq!(nearest("certsans", known.into_iter()), Some("certSANs"));
        assert_eq!(nearest("extraArg", known.into_iter()), Some("extraArgs"));
        assert_eq!(nearest("zzzzzz", known.into_iter()), None);
    }

    #[test]
    fn serde_unknown_field_messages_are_understood() {
        let (field, known) =
            unknown_field("unknown field `certSAN`, expected one of `a`, `certSANs`").unwrap();
        assert_eq!(field, "certSAN");
        assert_eq!(known, ["a", "certSANs"]);
        let (_, known) = unknown_field("unknown field `x`, expected `a` or `b`").unwrap();
        assert_eq!(known, ["a", "b"]);
        assert!(unknown_field("invalid type: string").is_none());
        let (field, known) = unknown_field("unknown field `a`b`, expected `a` or `b`").unwrap();
        assert_eq!(
            (field.as_str(), known),
            ("a`b", vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            printable("a\nb\r\u{85}\u{2028}c"),
            "a\\nb\\r\\u{85}\\u{2028}c"
        );
        assert_eq!(printable("plain é"), "plain é");
    }

    #[test]
    fn invalid_utf8_is_located() {
        let err = utf8(Path::new("c.yaml"), b"a: 1\nbb: \xff\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.yaml:2:5: not a YAML file (invalid UTF-8 at byte 9)"
        );
    }
}
