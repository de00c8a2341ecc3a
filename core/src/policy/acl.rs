//! ACL rules compiled for the request path: method sets and path patterns turned, at configure
//! time, into structures that match a [`RequestPath`] without allocating.
//!
//! Pattern syntax: a pattern starts with `/` and its segments are separated by `/`. A literal
//! segment matches the request segment byte for byte (case-sensitive); `*` matches exactly one
//! segment; `**`, allowed only as the last segment, matches zero or more segments. The root
//! pattern `/` matches only the root path. Literal segments may only contain letters, digits and
//! `-._~`: those are the characters [`crate::path`] refuses to see percent-encoded, so a request
//! cannot spell a literal segment differently to slip past a deny rule.
//!
//! Patterns are not rewritten: Jira's `/rest/api/latest/...` is an alias of the current API
//! version, and a client that uses both `/rest/api/2/issue/*` and `/rest/api/latest/issue/*`
//! needs both patterns. The same holds against a deny rule: `/rest/api/2/issue/**` does not
//! cover `/rest/api/latest/issue/...`, so deny rules are best written with `*` in the version
//! segment (`/rest/api/*/issue/**`). Literal segments are case-sensitive while Jira resolves
//! issue and project keys in any case, so a deny rule should name projects with `projects`
//! rather than with a literal key segment.
//!
//! Methods are compared exactly with the request's `:method`; `"*"` alone stands for every
//! method. `GET` does not imply `HEAD`.

use crate::path::RequestPath;
use crate::policy::projects::{ProjectCondition, ProjectFit, ProjectScope};

/// Which request methods a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Methods {
    /// `"*"`: every method.
    Any,
    /// The listed methods, compared exactly with `:method`.
    Listed(Vec<String>),
}

impl Methods {
    /// Builds a method set from the configured list, checking every entry. On error returns the
    /// index of the offending entry (`None` for the list as a whole) and the problem.
    pub(crate) fn compile(methods: &[String]) -> Result<Methods, (Option<usize>, String)> {
        if methods.is_empty() {
            return Err((None, "must list at least one method".into()));
        }
        if methods.iter().any(|m| m == "*") {
            return if methods.len() == 1 {
                Ok(Methods::Any)
            } else {
                Err((None, "\"*\" (any method) must be the only method".into()))
            };
        }
        for (index, method) in methods.iter().enumerate() {
            check_method(method).map_err(|problem| (Some(index), problem))?;
            if methods
                .get(..index)
                .is_some_and(|seen| seen.contains(method))
            {
                return Err((Some(index), format!("{method:?} is already listed")));
            }
        }
        Ok(Methods::Listed(methods.to_vec()))
    }

    /// True when the set contains `method`.
    pub(crate) fn contains(&self, method: &str) -> bool {
        match self {
            Methods::Any => true,
            Methods::Listed(methods) => methods.iter().any(|m| m == method),
        }
    }
}

/// Checks one configured method: an HTTP token (RFC 9110) without lowercase letters, because
/// methods are case-sensitive and a lowercase `get` would silently never match.
fn check_method(method: &str) -> Result<(), String> {
    if method.is_empty() {
        return Err("method must not be empty".into());
    }
    if !method.bytes().all(is_token_byte) {
        return Err(format!("{method:?} is not an HTTP method"));
    }
    if method.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(format!(
            "{method:?} must be written in uppercase ({:?}): methods are case-sensitive",
            method.to_ascii_uppercase()
        ));
    }
    Ok(())
}

/// RFC 9110 `tchar`.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// One segment of a compiled pattern, before an optional trailing `**`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SegmentMatcher {
    /// Matches exactly this segment.
    Literal(String),
    /// `*`: any one segment.
    One,
}

/// A compiled path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathPattern {
    segments: Vec<SegmentMatcher>,
    /// The pattern ended with `**`.
    any_tail: bool,
}

impl PathPattern {
    /// Compiles a pattern, or says what is wrong with it.
    pub(crate) fn compile(pattern: &str) -> Result<PathPattern, String> {
        let Some(after_root) = pattern.strip_prefix('/') else {
            return Err(format!("{pattern:?} must start with \"/\""));
        };
        let mut compiled = PathPattern {
            segments: Vec::new(),
            any_tail: false,
        };
        if after_root.is_empty() {
            return Ok(compiled);
        }
        let mut segments = after_root.split('/').peekable();
        while let Some(segment) = segments.next() {
            let is_last = segments.peek().is_none();
            match segment {
                "" if is_last => {
                    return Err(format!(
                        "{pattern:?} must not end with \"/\" (such request paths are refused)"
                    ))
                }
                "" => return Err(format!("{pattern:?} has an empty segment")),
                "**" if is_last => compiled.any_tail = true,
                "**" => return Err("\"**\" is only allowed as the last segment".into()),
                "*" => compiled.segments.push(SegmentMatcher::One),
                _ => {
                    check_literal(segment)?;
                    compiled
                        .segments
                        .push(SegmentMatcher::Literal(segment.to_owned()));
                }
            }
        }
        Ok(compiled)
    }

    /// True when the pattern matches the whole path.
    pub(crate) fn matches(&self, path: &RequestPath<'_>) -> bool {
        let mut segments = path.segments();
        for matcher in &self.segments {
            let Some(segment) = segments.next() else {
                return false;
            };
            if let SegmentMatcher::Literal(literal) = matcher {
                if literal != segment {
                    return false;
                }
            }
        }
        self.any_tail || segments.next().is_none()
    }
}

/// Checks a literal pattern segment.
fn check_literal(segment: &str) -> Result<(), String> {
    if segment.contains('*') {
        return Err(format!(
            "segment {segment:?} mixes \"*\" with other characters; \"*\" and \"**\" must be whole segments"
        ));
    }
    if segment.bytes().all(|b| b == b'.') {
        return Err(format!(
            "segment {segment:?} is a dot segment (such request paths are refused)"
        ));
    }
    if let Some(bad) = segment
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c)))
    {
        let hint = match bad {
            '?' => " (the query string is not matched)",
            '%' => " (patterns are not percent-encoded)",
            _ => "",
        };
        return Err(format!(
            "segment {segment:?} contains {bad:?}{hint}; literal segments may only contain letters, digits and \"-._~\""
        ));
    }
    Ok(())
}

/// One compiled allow, deny or public rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// Where the rule is in the document, e.g. `clients[1].allow[0]`; reported in grants.
    pub(crate) id: String,
    pub(crate) methods: Methods,
    pub(crate) paths: Vec<PathPattern>,
    pub(crate) projects: ProjectCondition,
}

impl Rule {
    /// True when one of the rule's patterns matches the path.
    pub(crate) fn matches_path(&self, path: &RequestPath<'_>) -> bool {
        self.paths.iter().any(|p| p.matches(path))
    }

    /// Allow semantics: method, path and (when the rule names projects) a request provably
    /// within the listed projects.
    pub(crate) fn allows(
        &self,
        method: &str,
        path: &RequestPath<'_>,
        scope: &ProjectScope,
    ) -> bool {
        self.methods.contains(method)
            && self.matches_path(path)
            && self.projects.fit(scope) == ProjectFit::Satisfied
    }

    /// Deny semantics: method and path, and a project condition that does not rule the request
    /// out. A request whose projects cannot be told is denied: in doubt, refuse.
    pub(crate) fn denies(
        &self,
        method: &str,
        path: &RequestPath<'_>,
        scope: &ProjectScope,
    ) -> bool {
        self.methods.contains(method) && self.matches_path(path) && !self.projects.excludes(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::canonical_path;

    fn pattern(text: &str) -> PathPattern {
        PathPattern::compile(text).unwrap()
    }

    fn matches(pattern_text: &str, path: &str) -> bool {
        pattern(pattern_text).matches(&canonical_path(path).unwrap())
    }

    fn methods(list: &[&str]) -> Result<Methods, (Option<usize>, String)> {
        Methods::compile(&list.iter().map(|m| m.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn literal_pattern_matches_only_the_same_path() {
        assert!(matches("/rest/api/2/search", "/rest/api/2/search"));
        assert!(matches("/rest/api/2/search", "/rest/api/2/search?jql=x"));
        assert!(!matches("/rest/api/2/search", "/rest/api/2"));
        assert!(!matches("/rest/api/2/search", "/rest/api/2/search/x"));
        assert!(!matches("/rest/api/2/search", "/rest/api/3/search"));
    }

    #[test]
    fn literal_segments_are_case_sensitive() {
        assert!(!matches("/rest/api/2/search", "/rest/api/2/Search"));
        assert!(!matches("/rest/api/2/search", "/REST/api/2/search"));
        assert!(!matches(
            "/rest/api/2/issue/OPS-1",
            "/rest/api/2/issue/ops-1"
        ));
    }

    #[test]
    fn literal_segment_must_match_whole_segment() {
        assert!(!matches("/rest/api/2/issue", "/rest/api/2/issues"));
        assert!(!matches("/rest/api/2/issues", "/rest/api/2/issue"));
    }

    #[test]
    fn single_star_matches_exactly_one_segment() {
        assert!(matches("/rest/api/2/issue/*", "/rest/api/2/issue/OPS-1"));
        assert!(matches("/rest/api/2/issue/*", "/rest/api/2/issue/a%20b"));
        assert!(!matches("/rest/api/2/issue/*", "/rest/api/2/issue"));
        assert!(!matches(
            "/rest/api/2/issue/*",
            "/rest/api/2/issue/OPS-1/comment"
        ));
    }

    #[test]
    fn single_star_in_the_middle_matches_one_segment() {
        assert!(matches("/rest/api/*/issue", "/rest/api/2/issue"));
        assert!(matches("/rest/api/*/issue", "/rest/api/latest/issue"));
        assert!(!matches("/rest/api/*/issue", "/rest/api/issue"));
        assert!(!matches("/rest/api/*/issue", "/rest/api/2/x/issue"));
    }

    #[test]
    fn double_star_matches_zero_segments() {
        assert!(matches("/rest/api/2/project/**", "/rest/api/2/project"));
    }

    #[test]
    fn double_star_matches_one_or_more_segments() {
        assert!(matches("/rest/api/2/project/**", "/rest/api/2/project/OPS"));
        assert!(matches(
            "/rest/api/2/project/**",
            "/rest/api/2/project/OPS/role/10002"
        ));
        assert!(!matches("/rest/api/2/project/**", "/rest/api/2/projects"));
        assert!(!matches("/rest/api/2/project/**", "/rest/api/2"));
    }

    #[test]
    fn star_then_double_star_needs_at_least_one_segment() {
        assert!(!matches("/rest/api/2/issue/*/**", "/rest/api/2/issue"));
        assert!(matches("/rest/api/2/issue/*/**", "/rest/api/2/issue/OPS-1"));
        assert!(matches(
            "/rest/api/2/issue/*/**",
            "/rest/api/2/issue/OPS-1/comment/1"
        ));
    }

    #[test]
    fn root_pattern_matches_only_the_root() {
        assert!(matches("/", "/"));
        assert!(matches("/", "/?x=1"));
        assert!(!matches("/", "/status"));
    }

    #[test]
    fn root_double_star_matches_everything() {
        assert!(matches("/**", "/"));
        assert!(matches("/**", "/rest/api/2/issue/OPS-1"));
    }

    #[test]
    fn pattern_without_leading_slash_is_refused() {
        assert_eq!(
            PathPattern::compile("rest/api"),
            Err("\"rest/api\" must start with \"/\"".into())
        );
        assert_eq!(
            PathPattern::compile(""),
            Err("\"\" must start with \"/\"".into())
        );
    }

    #[test]
    fn double_star_before_the_end_is_refused() {
        for text in ["/**/issue", "/rest/**/issue", "/rest/**/**"] {
            assert_eq!(
                PathPattern::compile(text),
                Err("\"**\" is only allowed as the last segment".into()),
                "{text}"
            );
        }
    }

    #[test]
    fn star_mixed_with_text_is_refused() {
        assert_eq!(
            PathPattern::compile("/rest/api/2/iss*"),
            Err("segment \"iss*\" mixes \"*\" with other characters; \"*\" and \"**\" must be whole segments".into())
        );
        assert_eq!(
            PathPattern::compile("/rest/***"),
            Err("segment \"***\" mixes \"*\" with other characters; \"*\" and \"**\" must be whole segments".into())
        );
    }

    #[test]
    fn empty_segments_and_trailing_slash_are_refused() {
        assert_eq!(
            PathPattern::compile("/rest//api"),
            Err("\"/rest//api\" has an empty segment".into())
        );
        assert_eq!(
            PathPattern::compile("//"),
            Err("\"//\" has an empty segment".into())
        );
        assert_eq!(
            PathPattern::compile("/rest/api/"),
            Err("\"/rest/api/\" must not end with \"/\" (such request paths are refused)".into())
        );
    }

    #[test]
    fn dot_segments_are_refused() {
        for segment in [".", "..", "..."] {
            assert_eq!(
                PathPattern::compile(&format!("/rest/{segment}/api")),
                Err(format!(
                    "segment {segment:?} is a dot segment (such request paths are refused)"
                ))
            );
        }
    }

    #[test]
    fn reserved_characters_in_literals_are_refused() {
        let cases = [
            (
                "/rest/api?x=1",
                "\"api?x=1\" contains '?' (the query string is not matched)",
            ),
            ("/rest/api#x", "\"api#x\" contains '#'"),
            ("/rest;x/api", "\"rest;x\" contains ';'"),
            (
                "/rest/%69ssue",
                "\"%69ssue\" contains '%' (patterns are not percent-encoded)",
            ),
            ("/rest\\api", "\"rest\\\\api\" contains '\\\\'"),
            ("/rest/a:b", "\"a:b\" contains ':'"),
            ("/rest/a b", "\"a b\" contains ' '"),
            ("/rest/é", "\"é\" contains 'é'"),
        ];
        for (text, problem) in cases {
            assert_eq!(
                PathPattern::compile(text),
                Err(format!(
                    "segment {problem}; literal segments may only contain letters, digits and \"-._~\""
                )),
                "{text}"
            );
        }
    }

    #[test]
    fn unreserved_characters_are_allowed_in_literals() {
        assert!(matches(
            "/rest/agile/1.0/a_b~c-d",
            "/rest/agile/1.0/a_b~c-d"
        ));
    }

    #[test]
    fn star_method_means_any_method() {
        let any = methods(&["*"]).unwrap();
        assert_eq!(any, Methods::Any);
        assert!(any.contains("GET"));
        assert!(any.contains("PROPFIND"));
    }

    #[test]
    fn listed_methods_compare_exactly() {
        let listed = methods(&["GET", "PUT"]).unwrap();
        assert!(listed.contains("GET"));
        assert!(listed.contains("PUT"));
        assert!(!listed.contains("get"));
        assert!(!listed.contains("POST"));
        assert!(!listed.contains("GET "));
    }

    #[test]
    fn star_combined_with_other_methods_is_refused() {
        assert_eq!(
            methods(&["GET", "*"]),
            Err((None, "\"*\" (any method) must be the only method".into()))
        );
    }

    #[test]
    fn empty_method_list_is_refused() {
        assert_eq!(
            methods(&[]),
            Err((None, "must list at least one method".into()))
        );
    }

    #[test]
    fn lowercase_method_is_refused_with_the_uppercase_spelling() {
        assert_eq!(
            methods(&["GET", "delete"]),
            Err((
                Some(1),
                "\"delete\" must be written in uppercase (\"DELETE\"): methods are case-sensitive"
                    .into()
            ))
        );
    }

    #[test]
    fn method_that_is_not_a_token_is_refused() {
        assert_eq!(
            methods(&["GE T"]),
            Err((Some(0), "\"GE T\" is not an HTTP method".into()))
        );
        assert_eq!(
            methods(&[""]),
            Err((Some(0), "method must not be empty".into()))
        );
    }

    #[test]
    fn duplicate_method_is_refused() {
        assert_eq!(
            methods(&["GET", "PUT", "GET"]),
            Err((Some(2), "\"GET\" is already listed".into()))
        );
    }

    #[test]
    fn custom_uppercase_methods_are_accepted() {
        assert!(methods(&["PROPFIND", "M-SEARCH"])
            .unwrap()
            .contains("M-SEARCH"));
    }
}
