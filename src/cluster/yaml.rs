//! A bound on YAML before it is parsed. The parser's time grows with the square of how
//! deeply flow collections nest (`[[[[…`: a 200 KB file took 27 s), and every YAML kubepki
//! reads can come from someone else (a bundle, `cluster-info`, a kubeconfig, a
//! configuration). No Kubernetes object nests more than a dozen levels, so text whose flow
//! collections nest deeper than [`MAX_DEPTH`] is refused before the parser sees it. The
//! scan is one linear pass that skips comments, quoted scalars and block scalars; where it
//! is unsure, it counts a bracket rather than skip it.

use std::fmt;

/// The deepest nesting of flow collections accepted.
pub const MAX_DEPTH: usize = 64;

/// Text that nests too deeply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooDeep {
    /// The line (from 1) where the nesting passed the limit.
    pub line: usize,
}

impl fmt::Display for TooDeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: collections nested more than {MAX_DEPTH} deep, which no Kubernetes object is",
            self.line
        )
    }
}

impl std::error::Error for TooDeep {}

/// Where the scan is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the structure.
    Plain,
    /// In a `'…'` scalar.
    Single,
    /// In a `"…"` scalar.
    Double,
}

/// Refuses `text` when its flow collections nest deeper than [`MAX_DEPTH`].
pub fn check_depth(text: &[u8]) -> Result<(), TooDeep> {
    let (mut state, mut depth, mut line) = (State::Plain, 0usize, 1usize);
    let mut block_scalar: Option<BlockScalar> = None;
    let mut previous = b'\n';
    let mut at = 0;
    while at < text.len() {
        if previous == b'\n' && state == State::Plain && depth == 0 {
            if let Some(scalar) = &mut block_scalar {
                match scalar.skip_line(&text[at..]) {
                    Some(skipped) => {
                        at += skipped;
                        line += 1;
                        continue;
                    }
                    None => block_scalar = None,
                }
            }
        }
        let byte = text[at];
        match (state, byte) {
            (_, b'\n') => line += 1,
            (State::Single, b'\'') if text.get(at + 1) == Some(&b'\'') => at += 1,
            (State::Single, b'\'') | (State::Double, b'"') => state = State::Plain,
            (State::Double, b'\\') => at += 1,
            (State::Single | State::Double, _) => {}
            (State::Plain, b'#') if previous.is_ascii_whitespace() => {
                at += text[at..].iter().take_while(|&&b| b != b'\n').count();
                continue;
            }
            (State::Plain, b'\'' | b'"') if starts_node(last_token(&text[..at])) => {
                state = match byte {
                    b'\'' => State::Single,
                    _ => State::Double,
                };
            }
            (State::Plain, b'[' | b'{') => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(TooDeep { line });
                }
            }
            (State::Plain, b']' | b'}') => depth = depth.saturating_sub(1),
            (State::Plain, b'|' | b'>') if depth == 0 && starts_block_scalar(text, at) => {
                block_scalar = Some(BlockScalar { indent: None });
            }
            _ => {}
        }
        previous = text.get(at).copied().unwrap_or(b'\n');
        at += 1;
    }
    Ok(())
}

/// The last byte before `before`'s trailing blanks (`\n` at the start of the text or a line).
fn last_token(before: &[u8]) -> u8 {
    before
        .iter()
        .rev()
        .find(|&&b| b != b' ' && b != b'\t')
        .copied()
        .unwrap_or(b'\n')
}

/// Whether a node may start after `token`: a quote there opens a quoted scalar.
fn starts_node(token: u8) -> bool {
    matches!(token, b'\n' | b':' | b'-' | b'[' | b'{' | b',' | b'?')
}

/// Whether the `|` or `>` at `at` is a block scalar's header: after a node's start, and
/// only indicators (`-`, `+`, a digit) and blanks or a comment after it on its line.
fn starts_block_scalar(text: &[u8], at: usize) -> bool {
    if !starts_node(last_token(&text[..at])) {
        return false;
    }
    let rest = &text[at + 1..];
    let header = rest
        .iter()
        .take_while(|&&b| b == b'-' || b == b'+' || b.is_ascii_digit())
        .count();
    let blank = rest[header..]
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    match rest.get(header + blank) {
        None | Some(b'\n' | b'\r') => true,
        Some(b'#') => blank > 0,
        Some(_) => false,
    }
}

/// The lines of a block scalar: as indented as its first one, or blank.
struct BlockScalar {
    indent: Option<usize>,
}

impl BlockScalar {
    /// The length of the line at the start of `rest` (its newline included) when it belongs
    /// to the scalar, `None` when the scalar ended before it.
    fn skip_line(&mut self, rest: &[u8]) -> Option<usize> {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |n| n + 1);
        let line = &rest[..end];
        let indent = line.iter().take_while(|&&b| b == b' ').count();
        if line[indent..].iter().all(u8::is_ascii_whitespace) {
            return Some(end);
        }
        let wanted = *self.indent.get_or_insert(indent);
        (indent >= wanted && indent > 0).then_some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nested(depth: usize) -> String {
        format!("a: {}{}\n", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn nesting_up_to_the_limit_passes_and_past_it_is_refused_naming_the_line() {
        assert_eq!(check_depth(nested(MAX_DEPTH).as_bytes()), Ok(()));
        let deep = format!("kind: Secret\n{}", nested(MAX_DEPTH + 1));
        assert_eq!(check_depth(deep.as_bytes()), Err(TooDeep { line: 2 }));
        let mixed = format!("a: {}", "{b: [".repeat(40));
        assert!(check_depth(mixed.as_bytes()).is_err());
    }

    #[test]
    fn brackets_in_quotes_comments_and_block_scalars_do_not_count() {
        let many = "[".repeat(100);
        for text in [
            format!("a: '{many}'\n"),
            format!("a: 'it''s {many}'\n"),
            format!("a: \"\\\" {many}\"\n"),
            format!("# {many}\na: 1\n"),
            format!("a: 1 # {many}\n"),
            format!("a: |\n  {many}\n  \"\n\n  x\nb: 1\n"),
            format!("- >-\n    {many}\n"),
        ] {
            assert_eq!(check_depth(text.as_bytes()), Ok(()), "{text}");
        }
    }

    #[test]
    fn what_would_hide_brackets_from_the_scan_does_not() {
        let deep = "[".repeat(MAX_DEPTH + 1);
        for text in [
            // A quote inside a plain scalar opens nothing.
            format!("a: it's\nb: {deep}\n"),
            // A block scalar ends at its first less indented line.
            format!("a: |\n    x\n\n    \"\nb: {deep}\n"),
            format!("a: |\nb: {deep}\n"),
            // A `#` inside a word is no comment.
            format!("a: x#{deep}\n"),
        ] {
            assert!(check_depth(text.as_bytes()).is_err(), "{text}");
        }
    }

    #[test]
    fn kubernetes_objects_pass() {
        let kubeconfig = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: TFMw\n    server: https://10.0.0.1:6443\n  name: kubernetes\ncontexts: [{context: {cluster: kubernetes, user: a}, name: a}]\nusers: []\n";
        assert_eq!(check_depth(kubeconfig.as_bytes()), Ok(()));
    }

    proptest! {
        #[test]
        fn any_text_is_scanned_without_a_panic(text in any::<Vec<u8>>()) {
            let _ = check_depth(&text);
        }
    }
}
