//! Which counters a decided request adds one to, and the list of every counter the filter can
//! count (created at zero when the plugin is configured, so that a series exists before its
//! first event). The shell only hands these names to Envoy; `envoy.yaml`'s `stats_tags` turn
//! the tag into a Prometheus label (`jira_entra_guard_denied_total{reason="acl"}`).

use crate::denial::Denial;
use crate::outcome::{Decided, DecidedVerdict};
use crate::token::TokenError;

/// A counter: its name (without the common prefix) and, optionally, one `(tag, value)` pair.
pub type Counter = (&'static str, Option<(&'static str, &'static str)>);

/// The counters a decided request adds one to: `token_cache_total{result}` when a token was
/// verified; `allowed_total`, `denied_total{reason}` or, in a dry-run,
/// `dry_run_denied_total{reason}`; and `invalid_token_total{cause}` when the token was refused.
pub fn request_counters(verdict: &DecidedVerdict<'_>) -> [Option<Counter>; 3] {
    let cache = verdict.token.as_ref().map(|_| {
        let result = if verdict.cache_hit { "hit" } else { "miss" };
        ("token_cache_total", Some(("result", result)))
    });
    let (decision, denial) = match &verdict.outcome {
        Decided::Allow(_) => (("allowed_total", None), None),
        Decided::Deny(d) => (
            ("denied_total", Some(("reason", d.metric_reason()))),
            Some(d),
        ),
        Decided::WouldDeny { denial: d, .. } => (
            ("dry_run_denied_total", Some(("reason", d.metric_reason()))),
            Some(d),
        ),
    };
    let invalid_token = match denial {
        Some(Denial::Token(e)) => Some(("invalid_token_total", Some(("cause", e.code())))),
        _ => None,
    };
    [cache, Some(decision), invalid_token]
}

/// Every counter [`request_counters`] can name, and the key-fetch counters.
pub fn every_counter() -> Vec<Counter> {
    let mut counters: Vec<Counter> = vec![
        ("allowed_total", None),
        ("key_fetch_total", Some(("outcome", "success"))),
        ("key_fetch_total", Some(("outcome", "failure"))),
        ("token_cache_total", Some(("result", "hit"))),
        ("token_cache_total", Some(("result", "miss"))),
    ];
    for reason in Denial::METRIC_REASONS {
        counters.push(("denied_total", Some(("reason", reason))));
        counters.push(("dry_run_denied_total", Some(("reason", reason))));
    }
    for error in TokenError::ALL {
        counters.push(("invalid_token_total", Some(("cause", error.code()))));
    }
    counters
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::decide::decide;
    use crate::outcome::Verdict;
    use crate::policy::Policy;
    use crate::request::RequestHead;
    use crate::test_support::*;

    fn counted(policy: &Policy, method: &str, auth: Option<&str>, cache: bool) -> Vec<Counter> {
        let head = RequestHead {
            method,
            path: "/rest/api/2/myself",
            authorization: auth.into_iter().collect(),
            ..Default::default()
        };
        let mut tokens = test_cache(4);
        if cache {
            let _ = decide(policy, &head, &keys(), &mut tokens, NOW);
        }
        let verdict = decide(policy, &head, &keys(), &mut tokens, NOW)
            .decided()
            .unwrap();
        request_counters(&verdict).into_iter().flatten().collect()
    }

    fn token() -> String {
        format!("Bearer {}", sign(&key("a"), &header("key-a"), &v2_claims()))
    }

    fn audit_mode() -> Policy {
        let mut doc = policy_json();
        doc["mode"] = json!("audit");
        crate::config::compile_policy(doc.to_string().as_bytes(), &|_| None).unwrap()
    }

    #[test]
    fn allowed_request_counts_as_allowed_and_its_token_as_a_cache_miss_then_hit() {
        let policy = policy();
        let auth = token();
        assert_eq!(
            counted(&policy, "GET", Some(&auth), false),
            [
                ("token_cache_total", Some(("result", "miss"))),
                ("allowed_total", None)
            ]
        );
        assert_eq!(
            counted(&policy, "GET", Some(&auth), true),
            [
                ("token_cache_total", Some(("result", "hit"))),
                ("allowed_total", None)
            ]
        );
    }

    #[test]
    fn denial_counts_its_reason_and_no_token_counts_no_cache_lookup() {
        let policy = policy();
        assert_eq!(
            counted(&policy, "GET", None, false),
            [("denied_total", Some(("reason", "no_token")))]
        );
        let auth = token();
        assert_eq!(
            counted(&policy, "DELETE", Some(&auth), false),
            [
                ("token_cache_total", Some(("result", "miss"))),
                ("denied_total", Some(("reason", "acl")))
            ]
        );
    }

    #[test]
    fn refused_token_counts_its_cause_too() {
        let forged = format!(
            "Bearer {}",
            sign(&key("attacker"), &header("key-a"), &v2_claims())
        );
        let counters = counted(&policy(), "GET", Some(&forged), false);
        assert_eq!(
            counters,
            [
                ("denied_total", Some(("reason", "invalid_token"))),
                ("invalid_token_total", Some(("cause", "bad_signature")))
            ]
        );
        let counters = counted(&audit_mode(), "GET", Some(&forged), false);
        assert_eq!(
            counters,
            [
                ("dry_run_denied_total", Some(("reason", "invalid_token"))),
                ("invalid_token_total", Some(("cause", "bad_signature")))
            ]
        );
    }

    #[test]
    fn dry_run_counts_what_would_have_been_denied_not_a_denial() {
        assert_eq!(
            counted(&audit_mode(), "GET", None, false),
            [("dry_run_denied_total", Some(("reason", "no_token")))]
        );
        let public = Verdict::new(Decided::Allow(None));
        assert_eq!(
            request_counters(&public),
            [None, Some(("allowed_total", None)), None]
        );
    }

    #[test]
    fn every_counter_a_request_can_touch_is_created_at_zero() {
        let every = every_counter();
        for reason in Denial::METRIC_REASONS {
            assert!(every.contains(&("denied_total", Some(("reason", reason)))));
            assert!(every.contains(&("dry_run_denied_total", Some(("reason", reason)))));
        }
        for error in TokenError::ALL {
            assert!(every.contains(&("invalid_token_total", Some(("cause", error.code())))));
        }
        for counter in [
            ("allowed_total", None),
            ("token_cache_total", Some(("result", "hit"))),
            ("token_cache_total", Some(("result", "miss"))),
            ("key_fetch_total", Some(("outcome", "success"))),
            ("key_fetch_total", Some(("outcome", "failure"))),
        ] {
            assert!(every.contains(&counter), "{counter:?}");
        }
        let expected = 5 + 2 * Denial::METRIC_REASONS.len() + TokenError::ALL.len();
        assert_eq!(every.len(), expected);
    }
}
