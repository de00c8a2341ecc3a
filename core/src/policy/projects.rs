//! Project conditions: which Jira project a request path is about, as far as the path alone can
//! tell, and whether a rule's `projects` list admits it.
//!
//! [`project_of`] understands exactly these shapes, where `{v}` is `2`, `3` or `latest`:
//!
//! | path | project |
//! | --- | --- |
//! | `/rest/api/{v}/issue/{ISSUE-KEY}` and `/rest/api/{v}/issue/{ISSUE-KEY}/**` | the issue key's project part |
//! | `/rest/api/{v}/project/{PROJECT-KEY}` and `/rest/api/{v}/project/{PROJECT-KEY}/**` | the project key |
//!
//! A project key is a letter followed by one or more letters, digits or `_`; an issue key is a
//! project key, `-`, and an issue number without leading zeros (`OPS-12`, not `OPS-012`). Every
//! other path — numeric issue or project ids (`issue/10001`, `project/10000`), `search`, other
//! API families such as `/rest/agile/1.0/...`, keys with leading zeros — has no determinable
//! project. An allow rule with `projects` never matches such a path; a deny rule with
//! `projects` always does (in doubt, refuse).
//!
//! Keys in paths are compared case-insensitively with the configured (uppercase) keys: Jira
//! resolves `ops-12` to `OPS-12`, so an exact comparison would let a lowercase key slip past a
//! deny rule.
//!
//! Known limit: the project is read from the key in the path. Jira still resolves an issue's old
//! key after the issue moved to another project, and a renamed project's old key, so the path's
//! key can name a project the issue no longer belongs to. Project conditions are a guard on what
//! the client asks for, not a substitute for Jira's own permissions.

use crate::path::RequestPath;

/// The project key a Jira REST path is about, as written in the path (possibly lowercase), or
/// `None` when the path alone cannot tell. See the module documentation for the shapes.
pub fn project_of<'a>(path: &RequestPath<'a>) -> Option<&'a str> {
    let mut segments = path.segments();
    if segments.next()? != "rest" || segments.next()? != "api" {
        return None;
    }
    if !matches!(segments.next()?, "2" | "3" | "latest") {
        return None;
    }
    match (segments.next()?, segments.next()?) {
        ("issue", id) => project_of_issue_key(id),
        ("project", id) if is_project_key_any_case(id) => Some(id),
        _ => None,
    }
}

/// The project part of an issue key such as `OPS-12`.
pub(crate) fn project_of_issue_key(id: &str) -> Option<&str> {
    let (project, number) = id.rsplit_once('-')?;
    let number_is_canonical = number.bytes().all(|b| b.is_ascii_digit())
        && number.bytes().next().is_some_and(|b| b != b'0');
    (number_is_canonical && is_project_key_any_case(project)).then_some(project)
}

/// A project key in either case, as Jira accepts it in a path, a body or JQL.
pub(crate) fn is_project_key_any_case(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.len() > 0
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A configured project key: `[A-Z][A-Z0-9_]+`.
fn is_configured_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_uppercase())
        && bytes.len() > 0
        && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// A rule's `projects` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProjectCondition {
    /// The rule has no `projects`: any project, or none.
    Any,
    /// The rule applies to these projects (uppercase keys).
    Listed(Vec<String>),
}

/// How a request's project relates to a rule's condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProjectFit {
    /// The rule has no condition, or the project is listed.
    Satisfied,
    /// The project is known and not listed.
    Violated,
    /// The rule lists projects and the request does not tell which projects it is about.
    Undetermined,
}

impl ProjectCondition {
    /// Builds the condition from the configured keys. On error returns the index of the
    /// offending key (`None` for the list as a whole) and the problem.
    pub(crate) fn compile(keys: &[String]) -> Result<ProjectCondition, (Option<usize>, String)> {
        if keys.is_empty() {
            return Err((
                None,
                "must list at least one project key (leave the field out to allow every project)"
                    .into(),
            ));
        }
        for (index, key) in keys.iter().enumerate() {
            if !is_configured_key(key) {
                return Err((
                    Some(index),
                    format!(
                        "{key:?} is not a Jira project key (an uppercase letter followed by uppercase letters, digits or \"_\")"
                    ),
                ));
            }
            if keys.get(..index).is_some_and(|seen| seen.contains(key)) {
                return Err((Some(index), format!("{key:?} is already listed")));
            }
        }
        Ok(ProjectCondition::Listed(keys.to_vec()))
    }

    /// Relates what the request is about to this condition, for an allow rule: satisfied only
    /// when the request provably stays within the listed projects.
    pub(crate) fn fit(&self, scope: &ProjectScope) -> ProjectFit {
        let ProjectCondition::Listed(listed) = self else {
            return ProjectFit::Satisfied;
        };
        let is_listed = |key: &String| listed.iter().any(|k| k.eq_ignore_ascii_case(key));
        let within = match scope {
            ProjectScope::Undetermined(_) => return ProjectFit::Undetermined,
            ProjectScope::Touches { keys, .. } => keys.iter().all(is_listed),
            ProjectScope::Within(restrictions) => {
                restrictions.iter().any(|r| r.keys.iter().all(is_listed))
            }
        };
        if within {
            ProjectFit::Satisfied
        } else {
            ProjectFit::Violated
        }
    }

    /// For a deny rule: true only when the request provably stays away from every listed
    /// project (a request whose projects cannot be told is not excluded: in doubt, refuse).
    pub(crate) fn excludes(&self, scope: &ProjectScope) -> bool {
        let ProjectCondition::Listed(listed) = self else {
            return false;
        };
        let is_listed = |key: &String| listed.iter().any(|k| k.eq_ignore_ascii_case(key));
        match scope {
            ProjectScope::Undetermined(_) => false,
            ProjectScope::Touches { keys, .. } => !keys.iter().any(is_listed),
            ProjectScope::Within(restrictions) => {
                restrictions.iter().any(|r| !r.keys.iter().any(is_listed))
            }
        }
    }
}

/// The projects a request is about, as far as the gateway can prove, with what decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectScope {
    /// The request acts on every one of these projects (uppercase keys, at least one).
    Touches {
        /// The keys.
        keys: Vec<String>,
        /// Where they were read, e.g. `path`, `fields.project.key`.
        basis: String,
    },
    /// A search: every result lies within each of these restrictions (at least one).
    Within(Vec<ScopeRestriction>),
    /// The request's projects cannot be told; the reason says why.
    Undetermined(String),
}

/// One JQL `project` clause, its values resolved to keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRestriction {
    /// The admitted keys, uppercase.
    pub keys: Vec<String>,
    /// The clause, e.g. `project in (OPS, SEC)`.
    pub clause: String,
}

impl ProjectScope {
    /// A short account of what decided the scope, for logs and the CLI.
    pub fn explain(&self) -> String {
        match self {
            ProjectScope::Touches { keys, basis } => format!("{basis}: {}", keys.join(", ")),
            ProjectScope::Within(restrictions) => restrictions
                .iter()
                .map(|r| format!("jql clause `{}`", r.clause))
                .collect::<Vec<_>>()
                .join("; "),
            ProjectScope::Undetermined(why) => format!("project cannot be determined: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::canonical_path;

    fn project(path: &str) -> Option<&str> {
        project_of(&canonical_path(path).unwrap())
    }

    fn touches(key: Option<&str>) -> ProjectScope {
        match key {
            Some(key) => ProjectScope::Touches {
                keys: vec![key.to_ascii_uppercase()],
                basis: "path".into(),
            },
            None => ProjectScope::Undetermined("test".into()),
        }
    }

    fn within(sets: &[&[&str]]) -> ProjectScope {
        ProjectScope::Within(
            sets.iter()
                .map(|keys| ScopeRestriction {
                    keys: keys.iter().map(|k| k.to_string()).collect(),
                    clause: String::new(),
                })
                .collect(),
        )
    }

    fn condition(keys: &[&str]) -> Result<ProjectCondition, (Option<usize>, String)> {
        ProjectCondition::compile(&keys.iter().map(|k| k.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn project_extraction_table() {
        let table: &[(&str, Option<&str>)] = &[
            ("/rest/api/2/issue/OPS-12", Some("OPS")),
            ("/rest/api/3/issue/OPS-12", Some("OPS")),
            ("/rest/api/latest/issue/OPS-12", Some("OPS")),
            ("/rest/api/2/issue/OPS-12?fields=summary", Some("OPS")),
            ("/rest/api/2/issue/OPS-12/comment", Some("OPS")),
            ("/rest/api/2/issue/OPS-12/comment/10001", Some("OPS")),
            ("/rest/api/2/issue/A1_B-7", Some("A1_B")),
            ("/rest/api/2/issue/ops-12", Some("ops")),
            ("/rest/api/2/issue/Ops-12", Some("Ops")),
            ("/rest/api/2/project/OPS", Some("OPS")),
            ("/rest/api/2/project/OPS/role/10002", Some("OPS")),
            ("/rest/api/latest/project/sec", Some("sec")),
            ("/rest/api/2/issue/10001", None),
            ("/rest/api/2/issue/10001/comment", None),
            ("/rest/api/2/issue/OPS-012", None),
            ("/rest/api/2/issue/OPS-0", None),
            ("/rest/api/2/issue/OPS-", None),
            ("/rest/api/2/issue/-12", None),
            ("/rest/api/2/issue/O-12", None),
            ("/rest/api/2/issue/1OPS-12", None),
            ("/rest/api/2/issue/OPS-1-2", None),
            ("/rest/api/2/issue/OPS-12a", None),
            ("/rest/api/2/issue/OPS%2012", None),
            ("/rest/api/2/issue/createmeta", None),
            ("/rest/api/2/issue", None),
            ("/rest/api/2/project/10000", None),
            ("/rest/api/2/project/10000/role", None),
            ("/rest/api/2/project/O", None),
            ("/rest/api/2/project/OPS-1", None),
            ("/rest/api/2/project", None),
            ("/rest/api/2/search", None),
            ("/rest/api/1/issue/OPS-12", None),
            ("/rest/api/2.0/issue/OPS-12", None),
            ("/rest/agile/1.0/issue/OPS-12", None),
            ("/rest/api/2/issues/OPS-12", None),
            ("/REST/api/2/issue/OPS-12", None),
            ("/jira/rest/api/2/issue/OPS-12", None),
            ("/rest/api/2/ISSUE/OPS-12", None),
            ("/", None),
        ];
        for (path, expected) in table {
            assert_eq!(project(path), *expected, "{path}");
        }
    }

    #[test]
    fn rule_without_projects_is_satisfied_by_anything() {
        let any = ProjectCondition::Any;
        assert_eq!(any.fit(&touches(Some("OPS"))), ProjectFit::Satisfied);
        assert_eq!(any.fit(&touches(None)), ProjectFit::Satisfied);
    }

    #[test]
    fn listed_project_is_satisfied_in_any_case() {
        let listed = condition(&["OPS", "SEC"]).unwrap();
        assert_eq!(listed.fit(&touches(Some("OPS"))), ProjectFit::Satisfied);
        assert_eq!(listed.fit(&touches(Some("sec"))), ProjectFit::Satisfied);
        assert_eq!(listed.fit(&touches(Some("Ops"))), ProjectFit::Satisfied);
    }

    #[test]
    fn unlisted_project_is_violated() {
        let listed = condition(&["OPS"]).unwrap();
        assert_eq!(listed.fit(&touches(Some("SEC"))), ProjectFit::Violated);
        assert_eq!(listed.fit(&touches(Some("OPSX"))), ProjectFit::Violated);
        assert_eq!(listed.fit(&touches(Some("OP"))), ProjectFit::Violated);
    }

    #[test]
    fn unknown_project_is_undetermined() {
        assert_eq!(
            condition(&["OPS"]).unwrap().fit(&touches(None)),
            ProjectFit::Undetermined
        );
    }

    #[test]
    fn every_touched_project_must_be_listed() {
        let listed = condition(&["OPS", "SEC"]).unwrap();
        let both = ProjectScope::Touches {
            keys: vec!["OPS".into(), "SEC".into()],
            basis: "body".into(),
        };
        assert_eq!(listed.fit(&both), ProjectFit::Satisfied);
        let one_more = ProjectScope::Touches {
            keys: vec!["OPS".into(), "HR".into()],
            basis: "body".into(),
        };
        assert_eq!(listed.fit(&one_more), ProjectFit::Violated);
    }

    #[test]
    fn search_is_within_when_one_restriction_is_listed() {
        let listed = condition(&["OPS", "SEC"]).unwrap();
        assert_eq!(listed.fit(&within(&[&["OPS"]])), ProjectFit::Satisfied);
        assert_eq!(
            listed.fit(&within(&[&["OPS", "SEC"]])),
            ProjectFit::Satisfied
        );
        assert_eq!(
            listed.fit(&within(&[&["HR"], &["OPS"]])),
            ProjectFit::Satisfied
        );
        assert_eq!(listed.fit(&within(&[&["OPS", "HR"]])), ProjectFit::Violated);
    }

    #[test]
    fn deny_condition_excludes_only_requests_provably_elsewhere() {
        let denied = condition(&["SEC"]).unwrap();
        assert!(denied.excludes(&touches(Some("OPS"))));
        assert!(!denied.excludes(&touches(Some("sec"))));
        assert!(!denied.excludes(&touches(None)));
        assert!(denied.excludes(&within(&[&["OPS"]])));
        assert!(!denied.excludes(&within(&[&["OPS", "SEC"]])));
        assert!(denied.excludes(&within(&[&["OPS", "SEC"], &["OPS"]])));
        let both = ProjectScope::Touches {
            keys: vec!["OPS".into(), "SEC".into()],
            basis: "body".into(),
        };
        assert!(!denied.excludes(&both));
        assert!(!ProjectCondition::Any.excludes(&touches(Some("OPS"))));
    }

    #[test]
    fn empty_project_list_is_refused() {
        assert_eq!(
            condition(&[]),
            Err((
                None,
                "must list at least one project key (leave the field out to allow every project)"
                    .into()
            ))
        );
    }

    #[test]
    fn malformed_project_keys_are_refused() {
        for key in [
            "ops", "Ops", "O", "1OPS", "OPS-1", "OP S", "", "_OPS", "ÖPS",
        ] {
            assert_eq!(
                condition(&["SEC", key]),
                Err((
                    Some(1),
                    format!("{key:?} is not a Jira project key (an uppercase letter followed by uppercase letters, digits or \"_\")")
                )),
                "{key:?}"
            );
        }
    }

    #[test]
    fn well_formed_project_keys_are_accepted() {
        assert_eq!(
            condition(&["OPS", "A1", "AB_2"]),
            Ok(ProjectCondition::Listed(vec![
                "OPS".into(),
                "A1".into(),
                "AB_2".into()
            ]))
        );
    }

    #[test]
    fn duplicate_project_key_is_refused() {
        assert_eq!(
            condition(&["OPS", "SEC", "OPS"]),
            Err((Some(2), "\"OPS\" is already listed".into()))
        );
    }
}
