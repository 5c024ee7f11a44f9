//! Misuse that clap cannot express (a combination of flags, a token that does not parse):
//! `main` maps it to exit status 2, like clap's own usage errors. Its message never quotes a
//! token.

use std::fmt;

/// A usage error: one line naming the flag and what is wrong.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}
