//! Which Jira projects a request is about: read from the path ([`super::projects::project_of`]),
//! from the JQL of a search, or from the JSON body of the calls that name projects there.
//!
//! | call | where the projects are read |
//! | --- | --- |
//! | `POST /rest/api/{v}/issue` | body `fields.project.key` and/or `fields.project.id` |
//! | `POST /rest/api/{v}/issue/bulk` | body `issueUpdates[*].fields.project` (every one) |
//! | `POST /rest/api/{v}/issueLink` | body `inwardIssue.key` and `outwardIssue.key` (both) |
//! | `GET /rest/api/{v}/search`, `GET /rest/api/{v}/search/jql` | the one `jql` query parameter |
//! | `POST /rest/api/{v}/search`, `POST /rest/api/{v}/search/jql` | body `jql` |
//! | anything else | the path, as [`super::projects::project_of`] reads it |
//!
//! `{v}` is `2`, `3` or `latest`. Numeric project ids count only through the configured
//! [`ProjectIds`]; issue ids never do. A body is read only when the shell handed it in
//! ([`RequestBody::Complete`]); before that the body calls are [`ProjectScope::Undetermined`],
//! and [`needs_body`] tells whether a rule could want it.

use std::collections::BTreeMap;

use crate::path::RequestPath;
use crate::policy::jql::{project_restrictions, ProjectValue};
use crate::policy::projects::{
    is_project_key_any_case, project_of, project_of_issue_key, ProjectScope, ScopeRestriction,
};
use crate::policy::strict_json::{parse, JsonRejection, JsonValue};

/// The configured map from numeric project ids to keys (`project_ids`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectIds(pub(crate) BTreeMap<String, String>);

impl ProjectIds {
    /// The key configured for a numeric id.
    pub fn key_of(&self, id: &str) -> Option<&str> {
        self.0.get(id).map(String::as_str)
    }
}

/// A call whose projects are not (only) in its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopedCall {
    /// `POST …/issue`.
    CreateIssue,
    /// `POST …/issue/bulk`.
    BulkCreate,
    /// `POST …/issueLink`.
    LinkIssues,
    /// `POST …/search` or `…/search/jql`.
    SearchByBody,
    /// `GET …/search` or `…/search/jql`.
    SearchByQuery,
}

impl ScopedCall {
    /// True when the projects are in the body.
    pub fn reads_body(self) -> bool {
        !matches!(self, ScopedCall::SearchByQuery)
    }
}

/// The scoped call a method and path are, if any.
pub fn scoped_call(method: &str, path: &RequestPath<'_>) -> Option<ScopedCall> {
    let mut segments = path.segments();
    if segments.next()? != "rest" || segments.next()? != "api" {
        return None;
    }
    if !matches!(segments.next()?, "2" | "3" | "latest") {
        return None;
    }
    let rest = (segments.next(), segments.next(), segments.next());
    match (method, rest) {
        ("POST", (Some("issue"), None, None)) => Some(ScopedCall::CreateIssue),
        ("POST", (Some("issue"), Some("bulk"), None)) => Some(ScopedCall::BulkCreate),
        ("POST", (Some("issueLink"), None, None)) => Some(ScopedCall::LinkIssues),
        ("POST", (Some("search"), None | Some("jql"), None)) => Some(ScopedCall::SearchByBody),
        ("GET", (Some("search"), None | Some("jql"), None)) => Some(ScopedCall::SearchByQuery),
        _ => None,
    }
}

/// True when deciding the call may need its body.
pub fn needs_body(method: &str, path: &RequestPath<'_>) -> bool {
    scoped_call(method, path).is_some_and(ScopedCall::reads_body)
}

/// The request body as far as the shell has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody<'a> {
    /// Not read (yet): the decision is made on the headers alone.
    Unread,
    /// The whole body.
    Complete(&'a [u8]),
    /// The body grew past `max_body_bytes`.
    TooLarge,
    /// The body did not arrive in time.
    TimedOut,
}

/// What the request says about its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyFacts<'a> {
    /// Every `Content-Type` value.
    pub content_type: &'a [&'a str],
    /// True when a `Content-Encoding` header is present.
    pub content_encoding: bool,
    /// The body.
    pub body: RequestBody<'a>,
}

/// Why a body the decision needs is refused before any rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRejection {
    /// Larger than `max_body_bytes` (413).
    TooLarge,
    /// Not complete in time (408).
    TimedOut,
    /// Not `application/json` (415).
    UnsupportedMediaType,
    /// Carries a `Content-Encoding` (415).
    ContentEncoding,
    /// Not valid UTF-8 JSON (400).
    InvalidJson,
    /// An object repeats a member name (400).
    DuplicateMember,
}

impl BodyRejection {
    /// Every body rejection, in declaration order.
    pub const ALL: [BodyRejection; 6] = [
        BodyRejection::TooLarge,
        BodyRejection::TimedOut,
        BodyRejection::UnsupportedMediaType,
        BodyRejection::ContentEncoding,
        BodyRejection::InvalidJson,
        BodyRejection::DuplicateMember,
    ];

    /// HTTP status of the refusal.
    pub fn status(self) -> u16 {
        match self {
            BodyRejection::TooLarge => 413,
            BodyRejection::TimedOut => 408,
            BodyRejection::UnsupportedMediaType | BodyRejection::ContentEncoding => 415,
            BodyRejection::InvalidJson | BodyRejection::DuplicateMember => 400,
        }
    }

    /// Stable reason code.
    pub fn code(self) -> &'static str {
        match self {
            BodyRejection::TooLarge => "body_too_large",
            BodyRejection::TimedOut => "body_timeout",
            BodyRejection::UnsupportedMediaType => "unsupported_media_type",
            BodyRejection::ContentEncoding => "content_encoding",
            BodyRejection::InvalidJson => "invalid_json",
            BodyRejection::DuplicateMember => "duplicate_member",
        }
    }

    /// Reason for the reply body.
    pub fn description(self) -> &'static str {
        match self {
            BodyRejection::TooLarge => "request body is larger than the gateway inspects",
            BodyRejection::TimedOut => "request body did not arrive in time",
            BodyRejection::UnsupportedMediaType => "request body must be application/json",
            BodyRejection::ContentEncoding => "request body must not be content-encoded",
            BodyRejection::InvalidJson => "request body is not valid UTF-8 JSON",
            BodyRejection::DuplicateMember => "request body repeats a member name",
        }
    }
}

/// The projects of a request. Refuses a body the decision needs and cannot trust.
pub fn request_scope(
    method: &str,
    path: &RequestPath<'_>,
    query: Option<&str>,
    body: &BodyFacts<'_>,
    ids: &ProjectIds,
) -> Result<ProjectScope, BodyRejection> {
    let Some(call) = scoped_call(method, path) else {
        return Ok(match project_of(path) {
            Some(key) => ProjectScope::Touches {
                keys: vec![key.to_ascii_uppercase()],
                basis: "path".into(),
            },
            None => undetermined("the path names no project"),
        });
    };
    if call == ScopedCall::SearchByQuery {
        return Ok(match single_query_parameter(query, "jql") {
            Ok(jql) => jql_scope(&jql, ids),
            Err(why) => ProjectScope::Undetermined(why),
        });
    }
    let document = match body_document(body)? {
        Some(document) => document,
        None => return Ok(undetermined("the body was not read")),
    };
    Ok(match call {
        ScopedCall::CreateIssue => issue_fields_scope(&document, "fields", ids),
        ScopedCall::BulkCreate => bulk_scope(&document, ids),
        ScopedCall::LinkIssues => link_scope(&document),
        // (A search by query was answered above, before the body.)
        ScopedCall::SearchByBody | ScopedCall::SearchByQuery => {
            if single_query_parameter(query, "jql").is_ok() {
                undetermined("jql is given both in the query and in the body")
            } else {
                match document.get("jql").map(JsonValue::as_str) {
                    Some(Some(jql)) => jql_scope(jql, ids),
                    Some(None) => undetermined("body `jql` is not a string"),
                    None => undetermined("body has no `jql`"),
                }
            }
        }
    })
}

fn undetermined(why: &str) -> ProjectScope {
    ProjectScope::Undetermined(why.to_owned())
}

/// The parsed body, `None` when it was not read.
fn body_document(body: &BodyFacts<'_>) -> Result<Option<JsonValue>, BodyRejection> {
    let bytes = match body.body {
        RequestBody::Unread => return Ok(None),
        RequestBody::TooLarge => return Err(BodyRejection::TooLarge),
        RequestBody::TimedOut => return Err(BodyRejection::TimedOut),
        RequestBody::Complete(bytes) => bytes,
    };
    match body.content_type {
        [one] if is_json_media_type(one) => {}
        _ => return Err(BodyRejection::UnsupportedMediaType),
    }
    if body.content_encoding {
        return Err(BodyRejection::ContentEncoding);
    }
    parse(bytes).map(Some).map_err(|e| match e {
        JsonRejection::Invalid => BodyRejection::InvalidJson,
        JsonRejection::DuplicateMember => BodyRejection::DuplicateMember,
    })
}

/// `application/json`, optionally with `charset=utf-8` (any case, optional spaces).
fn is_json_media_type(value: &str) -> bool {
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|parameter| {
        let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        name.trim().eq_ignore_ascii_case("charset")
            && value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
    })
}

/// The projects a search's JQL is restricted to.
fn jql_scope(jql: &str, ids: &ProjectIds) -> ProjectScope {
    let restrictions = match project_restrictions(jql) {
        Ok(restrictions) => restrictions,
        Err(problem) => return ProjectScope::Undetermined(format!("jql: {problem}")),
    };
    // A clause naming an unmapped id proves nothing; the others still do.
    let resolved: Vec<ScopeRestriction> = restrictions
        .into_iter()
        .filter_map(|r| {
            let keys = r
                .values
                .iter()
                .map(|v| match v {
                    ProjectValue::Key(key) => Some(key.clone()),
                    ProjectValue::Id(id) => ids.key_of(id).map(str::to_owned),
                })
                .collect::<Option<Vec<_>>>()?;
            Some(ScopeRestriction {
                keys,
                clause: r.clause,
            })
        })
        .collect();
    if resolved.is_empty() {
        return undetermined("jql names projects only by ids missing from project_ids");
    }
    ProjectScope::Within(resolved)
}

/// The project of `{at}.project` in an issue body.
fn issue_fields_scope(document: &JsonValue, at: &str, ids: &ProjectIds) -> ProjectScope {
    match project_keys(document.get(at).and_then(|f| f.get("project")), ids) {
        Ok(keys) => ProjectScope::Touches {
            keys,
            basis: format!("{at}.project"),
        },
        Err(why) => ProjectScope::Undetermined(format!("{at}.project: {why}")),
    }
}

/// The keys a `{"key": …}` / `{"id": …}` project object names (both, when both are given: Jira
/// must not be able to pick the one the gateway did not check).
fn project_keys(project: Option<&JsonValue>, ids: &ProjectIds) -> Result<Vec<String>, String> {
    let project = project.ok_or("missing")?;
    if !matches!(project, JsonValue::Object(_)) {
        return Err("not an object".into());
    }
    let mut keys = Vec::new();
    match project.get("key") {
        None => {}
        Some(JsonValue::String(key)) if is_project_key_any_case(key) => {
            keys.push(key.to_ascii_uppercase());
        }
        Some(_) => return Err("key is not a project key".into()),
    }
    match project.get("id") {
        None => {}
        Some(id) => {
            let id = match id {
                JsonValue::String(text) => text.clone(),
                JsonValue::Number(number) if number.is_u64() => number.to_string(),
                _ => return Err("id is not a numeric id".into()),
            };
            let key = ids
                .key_of(&id)
                .ok_or_else(|| format!("id {id} is not in project_ids"))?;
            keys.push(key.to_owned());
        }
    }
    if keys.is_empty() {
        return Err("names no key or id".into());
    }
    Ok(keys)
}

/// Every issue of a bulk create, each project counted.
fn bulk_scope(document: &JsonValue, ids: &ProjectIds) -> ProjectScope {
    let Some(JsonValue::Array(updates)) = document.get("issueUpdates") else {
        return undetermined("issueUpdates is missing or not an array");
    };
    if updates.is_empty() {
        return undetermined("issueUpdates is empty");
    }
    let mut keys: Vec<String> = Vec::new();
    for (index, update) in updates.iter().enumerate() {
        match project_keys(update.get("fields").and_then(|f| f.get("project")), ids) {
            Ok(found) => {
                for key in found {
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
            }
            Err(why) => {
                return ProjectScope::Undetermined(format!(
                    "issueUpdates[{index}].fields.project: {why}"
                ))
            }
        }
    }
    ProjectScope::Touches {
        keys,
        basis: "issueUpdates[*].fields.project".into(),
    }
}

/// Both ends of an issue link, by issue key.
fn link_scope(document: &JsonValue) -> ProjectScope {
    let mut keys: Vec<String> = Vec::new();
    for end in ["inwardIssue", "outwardIssue"] {
        let issue = document.get(end);
        if issue.and_then(|i| i.get("id")).is_some() {
            return ProjectScope::Undetermined(format!("{end} is named by id"));
        }
        let key = issue
            .and_then(|i| i.get("key"))
            .and_then(JsonValue::as_str)
            .and_then(project_of_issue_key);
        match key {
            Some(key) => {
                let key = key.to_ascii_uppercase();
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            None => return ProjectScope::Undetermined(format!("{end}.key is not an issue key")),
        }
    }
    ProjectScope::Touches {
        keys,
        basis: "inwardIssue.key, outwardIssue.key".into(),
    }
}

/// The one value of query parameter `name`, percent-decoded (`+` is a space); an error when it
/// is missing, repeated, or not decodable to UTF-8.
pub fn single_query_parameter(query: Option<&str>, name: &str) -> Result<String, String> {
    let mut found: Option<String> = None;
    for pair in query.unwrap_or_default().split('&') {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(decoded_name) = form_decode(raw_name) else {
            return Err("the query string has a malformed escape".into());
        };
        if decoded_name != name {
            continue;
        }
        if found.is_some() {
            return Err(format!("the query repeats `{name}`"));
        }
        found =
            Some(form_decode(raw_value).ok_or_else(|| format!("`{name}` has a malformed escape"))?);
    }
    found.ok_or_else(|| format!("the query has no `{name}`"))
}

/// `application/x-www-form-urlencoded` decoding as servlet containers do it: `+` is a space,
/// `%XX` a byte; the bytes must be UTF-8.
fn form_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut input = text.bytes();
    while let Some(byte) = input.next() {
        bytes.push(match byte {
            b'+' => b' ',
            b'%' => crate::hex::byte(input.next()?, input.next()?)?,
            other => other,
        });
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::canonical_path;

    fn ids() -> ProjectIds {
        ProjectIds(BTreeMap::from([("10000".to_string(), "OPS".to_string())]))
    }

    fn scope_of(
        method: &str,
        raw: &str,
        body: Option<&str>,
    ) -> Result<ProjectScope, BodyRejection> {
        let path = canonical_path(raw).unwrap();
        let query = raw.split_once('?').map(|(_, q)| q);
        let facts = BodyFacts {
            content_type: &["application/json"],
            content_encoding: false,
            body: body.map_or(RequestBody::Unread, |b| RequestBody::Complete(b.as_bytes())),
        };
        request_scope(method, &path, query, &facts, &ids())
    }

    fn keys_of(scope: Result<ProjectScope, BodyRejection>) -> Vec<String> {
        match scope {
            Ok(ProjectScope::Touches { keys, .. }) => keys,
            Ok(ProjectScope::Within(rs)) => rs.into_iter().flat_map(|r| r.keys).collect(),
            other => panic!("{other:?}"),
        }
    }

    fn is_undetermined(scope: Result<ProjectScope, BodyRejection>) -> bool {
        matches!(scope, Ok(ProjectScope::Undetermined(_)))
    }

    #[test]
    fn body_calls_are_recognised_in_every_api_version() {
        for v in ["2", "3", "latest"] {
            let p = |s: &str| {
                canonical_path(&format!("/rest/api/{v}/{s}"))
                    .unwrap()
                    .as_str()
                    .to_owned()
            };
            let call = |m: &str, s: &str| scoped_call(m, &canonical_path(&p(s)).unwrap());
            assert_eq!(call("POST", "issue"), Some(ScopedCall::CreateIssue));
            assert_eq!(call("POST", "issue/bulk"), Some(ScopedCall::BulkCreate));
            assert_eq!(call("POST", "issueLink"), Some(ScopedCall::LinkIssues));
            assert_eq!(call("POST", "search"), Some(ScopedCall::SearchByBody));
            assert_eq!(call("POST", "search/jql"), Some(ScopedCall::SearchByBody));
            assert_eq!(call("GET", "search"), Some(ScopedCall::SearchByQuery));
            assert_eq!(call("GET", "search/jql"), Some(ScopedCall::SearchByQuery));
            assert_eq!(call("GET", "issue"), None);
            assert_eq!(call("PUT", "issue/OPS-1"), None);
            assert_eq!(call("POST", "issue/OPS-1/comment"), None);
            assert_eq!(call("POST", "issueLink/1"), None);
        }
        assert_eq!(
            scoped_call("POST", &canonical_path("/rest/agile/1.0/issue").unwrap()),
            None
        );
    }

    #[test]
    fn create_reads_the_project_key_or_a_mapped_id() {
        assert_eq!(
            keys_of(scope_of(
                "POST",
                "/rest/api/2/issue",
                Some(r#"{"fields":{"project":{"key":"ops"},"summary":"x"}}"#)
            )),
            ["OPS"]
        );
        assert_eq!(
            keys_of(scope_of(
                "POST",
                "/rest/api/2/issue",
                Some(r#"{"fields":{"project":{"key":"\u004fPS"}}}"#)
            )),
            ["OPS"]
        );
        assert_eq!(
            keys_of(scope_of(
                "POST",
                "/rest/api/2/issue",
                Some(r#"{"fields":{"project":{"id":"10000"}}}"#)
            )),
            ["OPS"]
        );
        assert_eq!(
            keys_of(scope_of(
                "POST",
                "/rest/api/2/issue",
                Some(r#"{"fields":{"project":{"id":10000}}}"#)
            )),
            ["OPS"]
        );
        assert_eq!(
            keys_of(scope_of(
                "POST",
                "/rest/api/2/issue",
                Some(r#"{"fields":{"project":{"key":"SEC","id":"10000"}}}"#)
            )),
            ["SEC", "OPS"]
        );
    }

    #[test]
    fn create_without_a_checkable_project_is_undetermined() {
        for body in [
            r#"{}"#,
            r#"{"fields":{}}"#,
            r#"{"fields":{"project":"OPS"}}"#,
            r#"{"fields":{"project":{}}}"#,
            r#"{"fields":{"project":{"name":"Operations"}}}"#,
            r#"{"fields":{"project":{"id":"10001"}}}"#,
            r#"{"fields":{"project":{"key":"OPS","id":"10001"}}}"#,
            r#"{"fields":{"project":{"key":" OPS"}}}"#,
            r#"{"fields":{"project":{"key":"OPS-1"}}}"#,
            r#"{"fields":{"project":{"key":["OPS"]}}}"#,
            r#"{"fields":{"project":{"id":-1}}}"#,
            r#"[]"#,
        ] {
            assert!(
                is_undetermined(scope_of("POST", "/rest/api/2/issue", Some(body))),
                "{body}"
            );
        }
        assert!(is_undetermined(scope_of("POST", "/rest/api/2/issue", None)));
    }

    #[test]
    fn an_id_that_is_not_a_whole_number_is_named_as_such() {
        for id in ["-1", "1.5", "10000.0", "1e4", "true"] {
            let body = format!(r#"{{"fields":{{"project":{{"id":{id}}}}}}}"#);
            assert_eq!(
                scope_of("POST", "/rest/api/2/issue", Some(&body)),
                Ok(ProjectScope::Undetermined(
                    "fields.project: id is not a numeric id".into()
                )),
                "{body}"
            );
        }
    }

    #[test]
    fn bulk_counts_every_issue() {
        let body = r#"{"issueUpdates":[{"fields":{"project":{"key":"OPS"}}},{"fields":{"project":{"key":"SEC"}}},{"fields":{"project":{"id":"10000"}}}]}"#;
        assert_eq!(
            keys_of(scope_of("POST", "/rest/api/2/issue/bulk", Some(body))),
            ["OPS", "SEC"]
        );
        for body in [
            r#"{"issueUpdates":[]}"#,
            r#"{"issueUpdates":{}}"#,
            r#"{"issueUpdates":[{"fields":{"project":{"key":"OPS"}}},{"fields":{}}]}"#,
        ] {
            assert!(
                is_undetermined(scope_of("POST", "/rest/api/2/issue/bulk", Some(body))),
                "{body}"
            );
        }
    }

    #[test]
    fn link_counts_both_ends() {
        let body = r#"{"type":{"name":"Blocks"},"inwardIssue":{"key":"OPS-1"},"outwardIssue":{"key":"sec-2"}}"#;
        assert_eq!(
            keys_of(scope_of("POST", "/rest/api/2/issueLink", Some(body))),
            ["OPS", "SEC"]
        );
        for body in [
            r#"{"inwardIssue":{"key":"OPS-1"}}"#,
            r#"{"inwardIssue":{"key":"OPS-1"},"outwardIssue":{"id":"10001"}}"#,
            r#"{"inwardIssue":{"key":"OPS-1"},"outwardIssue":{"key":"OPS-1","id":"10001"}}"#,
            r#"{"inwardIssue":{"key":"OPS-01"},"outwardIssue":{"key":"OPS-1"}}"#,
        ] {
            assert!(
                is_undetermined(scope_of("POST", "/rest/api/2/issueLink", Some(body))),
                "{body}"
            );
        }
    }

    #[test]
    fn search_by_query_decodes_the_one_jql_parameter() {
        for path in [
            "/rest/api/2/search?jql=project+%3D+OPS",
            "/rest/api/2/search?jql=project%20%3D%20OPS&maxResults=5",
            "/rest/api/2/search?startAt=0&jql=project=ops",
            "/rest/api/3/search/jql?jql=project%20in%20(OPS)%20ORDER%20BY%20key",
            "/rest/api/2/search?jql=project+%3D+10000",
        ] {
            assert_eq!(keys_of(scope_of("GET", path, None)), ["OPS"], "{path}");
        }
        for path in [
            "/rest/api/2/search",
            "/rest/api/2/search?jql=",
            "/rest/api/2/search?JQL=project=OPS",
            "/rest/api/2/search?jql=project=OPS&jql=project=SEC",
            "/rest/api/2/search?jql=project=OPS&j%71l=x",
            "/rest/api/2/search?jql=project%3DOPS%2",
            "/rest/api/2/search?jql=project%3D%ff",
            "/rest/api/2/search?jql=project+%3D+OPS+OR+project+%3D+SEC",
            "/rest/api/2/search?jql=project+%3D+10001",
        ] {
            assert!(is_undetermined(scope_of("GET", path, None)), "{path}");
        }
    }

    #[test]
    fn search_by_body_reads_jql() {
        assert_eq!(
            keys_of(scope_of(
                "POST",
                "/rest/api/2/search",
                Some(r#"{"jql":"project = OPS","maxResults":5}"#)
            )),
            ["OPS"]
        );
        for (path, body) in [
            ("/rest/api/2/search", r#"{"maxResults":5}"#),
            ("/rest/api/2/search", r#"{"jql":["project = OPS"]}"#),
            ("/rest/api/2/search", r#"{"jql":""}"#),
            ("/rest/api/2/search?jql=x", r#"{"jql":"project = OPS"}"#),
        ] {
            assert!(
                is_undetermined(scope_of("POST", path, Some(body))),
                "{path} {body}"
            );
        }
    }

    #[test]
    fn bodies_that_cannot_be_trusted_are_refused() {
        let path = canonical_path("/rest/api/2/issue").unwrap();
        let good = br#"{"fields":{"project":{"key":"OPS"}}}"#;
        let facts =
            |ct: &'static [&'static str], enc: bool, body: RequestBody<'static>| BodyFacts {
                content_type: ct,
                content_encoding: enc,
                body,
            };
        let scope = |f: BodyFacts<'_>| request_scope("POST", &path, None, &f, &ids());
        assert!(scope(facts(
            &["application/json; charset=UTF-8"],
            false,
            RequestBody::Complete(good)
        ))
        .is_ok());
        assert!(scope(facts(
            &["Application/JSON;charset=\"utf-8\""],
            false,
            RequestBody::Complete(good)
        ))
        .is_ok());
        assert_eq!(
            scope(facts(&["application/json"], false, RequestBody::TooLarge)),
            Err(BodyRejection::TooLarge)
        );
        assert_eq!(
            scope(facts(&["application/json"], false, RequestBody::TimedOut))
                .map_err(|r| r.status()),
            Err(408)
        );
        for ct in [
            &[][..],
            &["text/plain"][..],
            &["application/x-www-form-urlencoded"][..],
            &["application/json; charset=iso-8859-1"][..],
            &["application/json", "application/json"][..],
            &["application/jsonp"][..],
        ] {
            assert_eq!(
                scope(facts(ct, false, RequestBody::Complete(good))),
                Err(BodyRejection::UnsupportedMediaType),
                "{ct:?}"
            );
        }
        assert_eq!(
            scope(facts(
                &["application/json"],
                true,
                RequestBody::Complete(good)
            )),
            Err(BodyRejection::ContentEncoding)
        );
        assert_eq!(
            scope(facts(
                &["application/json"],
                false,
                RequestBody::Complete(b"{\"fields\":")
            )),
            Err(BodyRejection::InvalidJson)
        );
        assert_eq!(
            scope(facts(
                &["application/json"],
                false,
                RequestBody::Complete(
                    br#"{"fields":{"project":{"key":"OPS"}},"fields":{"project":{"key":"SEC"}}}"#
                )
            )),
            Err(BodyRejection::DuplicateMember)
        );
    }

    #[test]
    fn every_body_rejection_has_its_own_code_and_reason() {
        let all = BodyRejection::ALL;
        assert_eq!(
            all.map(BodyRejection::status),
            [413, 408, 415, 415, 400, 400]
        );
        assert_eq!(
            BodyRejection::UnsupportedMediaType.description(),
            "request body must be application/json"
        );
        assert_eq!(
            BodyRejection::DuplicateMember.description(),
            "request body repeats a member name"
        );
        for (index, rejection) in all.iter().enumerate() {
            assert!(rejection.description().starts_with("request body "));
            for other in &all[..index] {
                assert_ne!(rejection.code(), other.code());
                assert_ne!(rejection.description(), other.description());
            }
        }
    }

    #[test]
    fn other_paths_keep_the_path_scope() {
        assert_eq!(
            keys_of(scope_of("GET", "/rest/api/2/issue/ops-1", None)),
            ["OPS"]
        );
        assert!(is_undetermined(scope_of("GET", "/rest/api/2/myself", None)));
    }
}
