//! The audit trail: one JSON object per decision, for the log line the shell writes and for
//! Envoy's access log. It says who (tenant, client, app id, token id), what (method, path
//! without its query string), and what was decided and why (decision, status, reason, matched
//! rule) — never the token or its signature.

use serde::Serialize;

use crate::outcome::{Decided, DecidedVerdict};
use crate::policy::{AuditLog, Policy};
use crate::request::RequestHead;

/// Longest path written to the log; longer paths are cut (the request was judged on all of it).
const MAX_LOGGED_PATH: usize = 512;

/// One audit record.
#[derive(Debug, Serialize)]
pub struct AuditRecord<'a> {
    /// RFC 3339 UTC time of the decision.
    pub time: String,
    /// Envoy's `x-request-id`.
    pub request_id: Option<&'a str>,
    /// Tenant of the verified token.
    pub tenant: Option<String>,
    /// Configured client name.
    pub client: Option<&'a str>,
    /// Client app id from the verified token.
    pub app_id: Option<&'a str>,
    /// Request method.
    pub method: &'a str,
    /// Request path without its query string.
    pub path: &'a str,
    /// `allow`, `deny`, or `would_deny` (a dry-run let a denied request through).
    pub decision: &'static str,
    /// The status a denial is (or would be) answered with; 0 for allowed requests.
    pub status: u16,
    /// Stable reason code of a denial, or `public` / `allowed`.
    pub reason: &'static str,
    /// The rule that allowed the request, e.g. `clients[1].allow[0]`.
    pub matched_rule: Option<&'a str>,
    /// The token's `uti` (Entra ID's unique token id).
    pub token_id: Option<&'a str>,
    /// Whether the verified token came from the cache.
    pub cached: bool,
    /// What decided the request's projects (a path key, a body field, a JQL clause, or why
    /// they cannot be determined), when a rule with `projects` needed them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projects: Option<String>,
}

/// The audit line for a decided request, or `None` when `audit_log` says not to write it.
pub fn audit_line(
    policy: &Policy,
    head: &RequestHead<'_>,
    verdict: &DecidedVerdict<'_>,
    request_id: Option<&str>,
    now: i64,
) -> Option<String> {
    let (decision, status, reason) = match &verdict.outcome {
        Decided::Deny(d) => ("deny", d.status(), d.code()),
        Decided::WouldDeny { denial: d, .. } => ("would_deny", d.status(), d.code()),
        Decided::Allow(None) => ("allow", 0, "public"),
        Decided::Allow(Some(_)) => ("allow", 0, "allowed"),
    };
    match policy.audit_log() {
        AuditLog::Off => return None,
        AuditLog::Denials if decision == "allow" => return None,
        AuditLog::All | AuditLog::Denials => {}
    }
    let token = verdict.token.as_deref();
    let path = head.path.split('?').next().unwrap_or_default();
    let path = match path.char_indices().nth(MAX_LOGGED_PATH) {
        Some((cut, _)) => path.get(..cut).unwrap_or_default(),
        None => path,
    };
    let record = AuditRecord {
        time: rfc3339(now),
        request_id,
        tenant: token
            .and_then(|t| policy.tenants().get(t.tenant.0))
            .map(|t| t.tenant_id.to_string()),
        client: verdict.client.map(|c| c.name()),
        app_id: token.map(|t| t.app_id()),
        method: head.method,
        path,
        decision,
        status,
        reason,
        matched_rule: match &verdict.outcome {
            Decided::Allow(Some(grant)) => Some(grant.matched_rule),
            _ => None,
        },
        token_id: token.and_then(|t| t.token_id()),
        cached: verdict.cache_hit,
        projects: verdict.scope.as_ref().map(|s| s.explain()),
    };
    serde_json::to_string(&record).ok()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (proleptic Gregorian, UTC).
// Every intermediate of an i64 day count fits in i128 many times over: nothing can overflow.
#[allow(clippy::arithmetic_side_effects)]
pub fn rfc3339(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (the era/day-of-era decomposition), in i128.
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        (secs % 3_600) / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::decide::decide;
    use crate::test_support::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_790_000_000), "2026-09-21T14:13:20Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn rfc3339_names_every_day_from_1600_to_2500() {
        let leap = |y: i64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let year_days = |y: i64| if leap(y) { 366 } else { 365 };
        let mut day: i64 = -(1600..1970).map(year_days).sum::<i64>();
        for year in 1600..=2500 {
            let february = if leap(year) { 29 } else { 28 };
            let months = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            for (month, days) in (1..).zip(months) {
                for date in 1..=days {
                    let expected = format!("{year:04}-{month:02}-{date:02}T01:01:01Z");
                    assert_eq!(rfc3339(day * 86_400 + 3_661), expected);
                    day += 1;
                }
            }
        }
    }

    fn line(doc: Value, method: &str, path: &str, auth: Option<String>) -> Option<Value> {
        let policy = crate::config::compile_policy(doc.to_string().as_bytes(), &|_| None).unwrap();
        let auth_values: Vec<&str> = auth.iter().map(String::as_str).collect();
        let head = RequestHead {
            method,
            path,
            authorization: auth_values,
            method_overrides: vec![],
            ..Default::default()
        };
        let verdict = decide(&policy, &head, &keys(), &mut test_cache(4), NOW)
            .decided()
            .unwrap();
        audit_line(&policy, &head, &verdict, Some("req-1"), NOW)
            .map(|l| serde_json::from_str(&l).unwrap())
    }

    fn token() -> Option<String> {
        Some(format!(
            "Bearer {}",
            sign(&key("a"), &header("key-a"), &v2_claims())
        ))
    }

    #[test]
    fn allowed_request_is_logged_with_who_what_and_why() {
        let l = line(
            policy_json(),
            "GET",
            "/rest/api/2/search?jql=secret",
            token(),
        )
        .unwrap();
        assert_eq!(l["decision"], "allow");
        assert_eq!(l["client"], "reporting-bot");
        assert_eq!(l["app_id"], REPORTING_BOT);
        assert_eq!(l["tenant"], TENANT);
        assert_eq!(l["path"], "/rest/api/2/search", "no query string");
        assert_eq!(l["matched_rule"], "clients[0].allow[0]");
        assert_eq!(l["token_id"], "Zx1-abc");
        assert_eq!(l["request_id"], "req-1");
        assert_eq!(l["time"], "2026-09-21T14:13:20Z");
        let text = l.to_string();
        assert!(!text.contains("eyJ"), "the token never appears in the log");
    }

    #[test]
    fn denial_is_logged_with_status_and_reason() {
        let l = line(policy_json(), "DELETE", "/rest/api/2/myself", token()).unwrap();
        assert_eq!(l["decision"], "deny");
        assert_eq!(l["status"], 403);
        assert_eq!(l["reason"], "method_not_allowed");
        assert_eq!(l["client"], "reporting-bot");
        assert!(l["matched_rule"].is_null(), "no rule allowed it");
    }

    #[test]
    fn public_path_is_logged_as_public_without_a_caller() {
        let l = line(policy_json(), "GET", "/status", None).unwrap();
        assert_eq!(l["decision"], "allow");
        assert_eq!(l["reason"], "public");
        assert_eq!(l["status"], 0);
        assert!(l["client"].is_null() && l["token_id"].is_null());
    }

    #[test]
    fn denials_only_setting_skips_allowed_requests() {
        let mut doc = policy_json();
        doc["audit_log"] = json!("denials");
        assert!(line(doc.clone(), "GET", "/rest/api/2/myself", token()).is_none());
        assert_eq!(
            line(doc, "GET", "/rest/api/2/myself", None).unwrap()["reason"],
            "no_token"
        );
    }

    #[test]
    fn off_setting_writes_nothing() {
        let mut doc = policy_json();
        doc["audit_log"] = json!("off");
        assert!(line(doc, "GET", "/rest/api/2/myself", None).is_none());
    }

    #[test]
    fn dry_run_logs_what_would_have_been_denied() {
        let mut doc = policy_json();
        doc["mode"] = json!("audit");
        let l = line(doc, "GET", "/rest/api/2/serverInfo", token()).unwrap();
        assert_eq!(l["decision"], "would_deny");
        assert_eq!(l["reason"], "path_not_allowed");
        assert_eq!(l["status"], 403);
    }
}
