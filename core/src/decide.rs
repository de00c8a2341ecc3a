//! The request pipeline, in order: refuse ambiguous requests (method overrides, a token in the
//! query string, non-canonical paths), let public paths through, take the bearer token, verify it
//! (or find it in the verified-token cache), and ask the policy whether this client may make this
//! call. The result is a [`Verdict`]: what the policy decided and who asked. [`Verdict::action`]
//! then applies the enforcement mode (a dry-run lets a denied request through, flagged), which is
//! what the shell carries out. The shell calls [`decide`] once per request (again after a key set
//! it was waiting for arrives).

use std::rc::Rc;

use crate::denial::Denial;
use crate::jwks::{KeySetState, KeySets};
use crate::path::canonical_path;
use crate::policy::{Client, Grant, Mode, Policy, PolicyDenial, RequestTarget, TenantIndex};
use crate::request::{has_query_token, RequestHead, RequestRejection};
use crate::token::bearer::{presented_token, PresentedToken};
use crate::token::verify::{verify_token, VerifiedToken, VerifyFailure};
use crate::token_cache::TokenCache;

/// What the policy decided.
// Built once per request and moved at most once: boxing the large variant would only add an
// allocation to every allowed request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Decision<'p> {
    /// Forward to Jira, with the identity headers of the grant (none for a public path).
    Forward(Option<Grant<'p>>),
    /// Answer locally with the reply for this denial.
    Deny(Denial),
    /// Pause the request until the tenant's key set is (re)loaded, then decide again. When
    /// `refetch` is set, the shell must start a fetch first (an unknown `kid`).
    AwaitKeys {
        /// The tenant whose keys are awaited.
        tenant: TenantIndex,
        /// Whether the shell must start a refetch.
        refetch: bool,
    },
}

/// A decision with what is known about the caller, for enforcement, logs and metrics.
#[derive(Debug)]
pub struct Verdict<'p> {
    /// The policy's decision.
    pub decision: Decision<'p>,
    /// The verified token, when one was presented and verified.
    pub token: Option<Rc<VerifiedToken>>,
    /// The configured client the token identifies, even when the policy denies the call.
    pub client: Option<&'p Client>,
    /// Whether the verified token came from the cache.
    pub cache_hit: bool,
}

/// What the shell does with the request.
#[derive(Debug)]
pub enum Action<'p> {
    /// Forward to Jira with these identity headers (none for public paths and unidentified
    /// callers). `would_deny` is set when a dry-run lets a denied request through.
    Forward {
        /// The client's name, app id and upstream credential, when known.
        identity: Option<Identity<'p>>,
        /// The denial the dry-run did not enforce.
        would_deny: Option<Denial>,
    },
    /// Answer locally.
    Deny(Denial),
    /// Wait for keys (see [`Decision::AwaitKeys`]).
    AwaitKeys {
        /// The tenant whose keys are awaited.
        tenant: TenantIndex,
        /// Whether the shell must start a refetch.
        refetch: bool,
    },
}

/// The identity presented to Jira.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity<'p> {
    /// `x-jira-client`.
    pub client_name: &'p str,
    /// `x-jira-client-id`.
    pub app_id: &'p str,
    /// The upstream `Authorization`, when the client maps to its own Jira account.
    pub upstream_authorization: Option<&'p str>,
}

impl<'p> Verdict<'p> {
    /// Applies the enforcement mode: in `audit` mode (for the whole policy, or for the client
    /// the token identifies) a denial is not answered but carried along as `would_deny`.
    pub fn action(&self, policy: &'p Policy) -> Action<'p> {
        match &self.decision {
            Decision::Forward(grant) => Action::Forward {
                identity: grant.as_ref().map(|g| Identity {
                    client_name: g.client_name,
                    app_id: g.app_id,
                    upstream_authorization: g.upstream_authorization,
                }),
                would_deny: None,
            },
            Decision::AwaitKeys { tenant, refetch } => Action::AwaitKeys {
                tenant: *tenant,
                refetch: *refetch,
            },
            Decision::Deny(denial) => {
                let client_dry_run = self.client.is_some_and(|c| c.mode() == Mode::Audit);
                if policy.mode() == Mode::Audit || client_dry_run {
                    Action::Forward {
                        identity: self.client.map(|c| Identity {
                            client_name: c.name(),
                            app_id: c.app_id_text(),
                            upstream_authorization: c.upstream_authorization(),
                        }),
                        would_deny: Some(denial.clone()),
                    }
                } else {
                    Action::Deny(denial.clone())
                }
            }
        }
    }
}

/// Decides one request at time `now` (seconds since the epoch), using and filling `cache`.
pub fn decide<'p>(
    policy: &'p Policy,
    head: &RequestHead<'_>,
    keys: &impl KeySets,
    cache: &mut TokenCache,
    now: i64,
) -> Verdict<'p> {
    let mut verdict = Verdict {
        decision: Decision::Forward(None),
        token: None,
        client: None,
        cache_hit: false,
    };
    verdict.decision = match decide_inner(policy, head, keys, cache, now, &mut verdict) {
        Ok(grant) => Decision::Forward(grant),
        Err(Outcome::Deny(denial)) => Decision::Deny(denial),
        Err(Outcome::Await { tenant, refetch }) => Decision::AwaitKeys { tenant, refetch },
    };
    verdict
}

enum Outcome {
    Deny(Denial),
    Await { tenant: TenantIndex, refetch: bool },
}

impl From<Denial> for Outcome {
    fn from(d: Denial) -> Self {
        Outcome::Deny(d)
    }
}

fn decide_inner<'p>(
    policy: &'p Policy,
    head: &RequestHead<'_>,
    keys: &impl KeySets,
    cache: &mut TokenCache,
    now: i64,
    verdict: &mut Verdict<'p>,
) -> Result<Option<Grant<'p>>, Outcome> {
    if head.method.is_empty() || head.path.is_empty() {
        return Err(Denial::Request(RequestRejection::MissingPseudoHeader).into());
    }
    if head.method_overrides.iter().any(|m| *m != head.method) {
        return Err(Denial::Request(RequestRejection::MethodOverride).into());
    }
    if has_query_token(head.path) {
        return Err(Denial::Request(RequestRejection::TokenInQuery).into());
    }
    let path = canonical_path(head.path).map_err(Denial::Path)?;
    let target = RequestTarget {
        method: head.method,
        path: &path,
    };
    if policy.is_public(&target) {
        return Ok(None);
    }
    let token = presented_token(&head.authorization)?;
    let verified = verified_token(token, policy, keys, cache, now, verdict)?;
    let caller = verified.caller();
    let client = policy.client_of(&caller);
    verdict.client = client;
    let grant = match client {
        Some(client) => client.authorize(&caller, &target),
        None => Err(PolicyDenial::UnknownClient),
    };
    verdict.token = Some(Rc::clone(&verified));
    Ok(Some(grant.map_err(Denial::Policy)?))
}

/// The token's verified form: from the cache when it holds it (unexpired, key still
/// published, key set usable), else verified now and cached.
fn verified_token(
    token: PresentedToken<'_>,
    policy: &Policy,
    keys: &impl KeySets,
    cache: &mut TokenCache,
    now: i64,
    verdict: &mut Verdict<'_>,
) -> Result<Rc<VerifiedToken>, Outcome> {
    let key = cache.digest(token.unchecked());
    let cached = cache.get(&key, now, |t| match keys.state(t.tenant) {
        KeySetState::Ready(set) => t.signing_key_is_in(set),
        KeySetState::Loading | KeySetState::Unavailable(_) => false,
    });
    if let Some(hit) = cached {
        verdict.cache_hit = true;
        return Ok(hit);
    }
    let verified =
        verify_token(token.checked()?, policy, keys, now).map_err(|failure| match failure {
            VerifyFailure::Token(e) => Outcome::Deny(Denial::Token(e)),
            VerifyFailure::KeySet(e) => Outcome::Deny(Denial::KeySet(e)),
            VerifyFailure::AwaitKeys { tenant, refetch } => Outcome::Await { tenant, refetch },
        })?;
    Ok(cache.insert(key, verified))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::policy::PolicyDenial;
    use crate::test_support::*;
    use crate::token::TokenError;

    fn head<'a>(method: &'a str, path: &'a str, auth: Option<&'a str>) -> RequestHead<'a> {
        RequestHead {
            method,
            path,
            authorization: auth.into_iter().collect(),
            method_overrides: vec![],
        }
    }

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    fn good() -> String {
        bearer(&sign(&key("a"), &header("key-a"), &v2_claims()))
    }

    #[test]
    fn allowed_call_forwards_with_the_clients_identity() {
        let policy = policy();
        let auth = good();
        let verdict = decide(
            &policy,
            &head("GET", "/rest/api/2/search?jql=x", Some(&auth)),
            &keys(),
            &mut test_cache(10),
            NOW,
        );
        let Decision::Forward(Some(grant)) = &verdict.decision else {
            panic!("{verdict:?}")
        };
        assert_eq!(grant.client_name, "reporting-bot");
        assert_eq!(verdict.client.map(|c| c.name()), Some("reporting-bot"));
        assert!(matches!(
            verdict.action(&policy),
            Action::Forward {
                identity: Some(Identity {
                    client_name: "reporting-bot",
                    ..
                }),
                would_deny: None
            }
        ));
    }

    #[test]
    fn second_request_with_the_same_token_is_served_from_the_cache() {
        let policy = policy();
        let auth = good();
        let mut cache = test_cache(10);
        let h = head("GET", "/rest/api/2/myself", Some(&auth));
        assert!(!decide(&policy, &h, &keys(), &mut cache, NOW).cache_hit);
        let again = decide(&policy, &h, &keys(), &mut cache, NOW);
        assert!(again.cache_hit);
        assert!(matches!(again.decision, Decision::Forward(Some(_))));
        // The ACL is still evaluated for each request.
        let other = head("DELETE", "/rest/api/2/myself", Some(&auth));
        let denied = decide(&policy, &other, &keys(), &mut cache, NOW);
        assert!(denied.cache_hit);
        assert!(matches!(
            denied.decision,
            Decision::Deny(Denial::Policy(PolicyDenial::MethodNotAllowed))
        ));
    }

    #[test]
    fn cached_token_is_not_used_past_its_expiry() {
        let policy = policy();
        let auth = good();
        let mut cache = test_cache(10);
        let h = head("GET", "/rest/api/2/myself", Some(&auth));
        decide(&policy, &h, &keys(), &mut cache, NOW);
        let late = decide(&policy, &h, &keys(), &mut cache, NOW + 3300 + 61);
        assert!(!late.cache_hit);
        assert!(matches!(
            late.decision,
            Decision::Deny(Denial::Token(TokenError::Expired))
        ));
    }

    #[test]
    fn cached_token_is_dropped_when_its_key_leaves_the_set() {
        let policy = policy();
        let auth = good();
        let mut cache = test_cache(10);
        let h = head("GET", "/rest/api/2/myself", Some(&auth));
        decide(&policy, &h, &keys(), &mut cache, NOW);
        let rotated = json!({"keys": [jwk("key-b", &key("b"))]});
        let keys = FixedKeys::new(vec![
            Some(crate::jwks::parse_jwks(rotated.to_string().as_bytes()).unwrap()),
            None,
        ]);
        let after = decide(&policy, &h, &keys, &mut cache, NOW);
        assert!(!after.cache_hit);
        assert!(matches!(
            after.decision,
            Decision::Deny(Denial::Token(TokenError::UnknownKey))
        ));
    }

    #[test]
    fn cached_token_is_refused_when_its_key_id_comes_to_name_other_material() {
        // A bad key published once under `key-a`, then repaired: tokens verified under it must
        // not outlive the repair in the cache.
        let policy = policy();
        let auth = good();
        let mut cache = test_cache(10);
        let h = head("GET", "/rest/api/2/myself", Some(&auth));
        assert!(matches!(
            decide(&policy, &h, &keys(), &mut cache, NOW).decision,
            Decision::Forward(Some(_))
        ));
        assert!(decide(&policy, &h, &keys(), &mut cache, NOW).cache_hit);
        let repaired = json!({"keys": [jwk("key-a", &key("b"))]});
        let keys = FixedKeys::new(vec![
            Some(crate::jwks::parse_jwks(repaired.to_string().as_bytes()).unwrap()),
            None,
        ]);
        let after = decide(&policy, &h, &keys, &mut cache, NOW);
        assert!(!after.cache_hit);
        assert!(matches!(
            after.decision,
            Decision::Deny(Denial::Token(TokenError::BadSignature))
        ));
    }

    #[test]
    fn stale_key_set_is_not_bypassed_by_a_cached_token() {
        struct Stale;
        impl KeySets for Stale {
            fn state(&self, _: TenantIndex) -> KeySetState<'_> {
                KeySetState::Unavailable(crate::jwks::KeySetError::Stale)
            }
            fn refetch(&self, _: TenantIndex) -> crate::jwks::Refetch {
                crate::jwks::Refetch::RateLimited
            }
        }
        let policy = policy();
        let auth = good();
        let mut cache = test_cache(10);
        let h = head("GET", "/rest/api/2/myself", Some(&auth));
        decide(&policy, &h, &keys(), &mut cache, NOW);
        assert_eq!(cache.len(), 1);
        let after = decide(&policy, &h, &Stale, &mut cache, NOW);
        assert!(!after.cache_hit);
        let Action::Deny(denial) = after.action(&policy) else {
            panic!("{after:?}")
        };
        assert_eq!(
            denial,
            Denial::KeySet(crate::jwks::KeySetError::Stale),
            "503 signing keys are too old"
        );
        assert_eq!(denial.status(), 503);
    }

    #[test]
    fn no_cached_verification_outlives_the_lifetime_ceiling() {
        let mut document = policy_json();
        document["max_token_lifetime_seconds"] = json!(3_600);
        let policy =
            crate::config::compile_policy(document.to_string().as_bytes(), &|_| None).unwrap();
        let mut cache = test_cache(10);
        let mut claims = v2_claims();
        claims.as_object_mut().unwrap().remove("iat");
        // Longer than the ceiling: refused, never cached.
        claims["exp"] = json!(NOW + 3_601);
        let auth = bearer(&sign(&key("a"), &header("key-a"), &claims));
        let h = head("GET", "/rest/api/2/myself", Some(&auth));
        assert!(matches!(
            decide(&policy, &h, &keys(), &mut cache, NOW).decision,
            Decision::Deny(Denial::Token(TokenError::LifetimeTooLong))
        ));
        assert!(cache.is_empty());
        // At the ceiling: cached, and served from the cache no longer than the ceiling.
        claims["exp"] = json!(NOW + 3_600);
        let auth = bearer(&sign(&key("a"), &header("key-a"), &claims));
        let h = head("GET", "/rest/api/2/myself", Some(&auth));
        decide(&policy, &h, &keys(), &mut cache, NOW);
        assert!(decide(&policy, &h, &keys(), &mut cache, NOW + 3_600).cache_hit);
        assert!(!decide(&policy, &h, &keys(), &mut cache, NOW + 3_601).cache_hit);
    }

    #[test]
    fn token_characters_are_checked_whatever_the_cache_holds() {
        let policy = policy();
        let auth = good();
        let mut cache = test_cache(10);
        let h = head("GET", "/rest/api/2/myself", Some(&auth));
        assert!(matches!(
            decide(&policy, &h, &keys(), &mut cache, NOW).decision,
            Decision::Forward(Some(_))
        ));
        // The cached token with a character no token can have: a different token, never a hit.
        let altered = format!("{auth}!");
        let h = head("GET", "/rest/api/2/myself", Some(&altered));
        let verdict = decide(&policy, &h, &keys(), &mut cache, NOW);
        assert!(!verdict.cache_hit);
        assert!(matches!(
            verdict.decision,
            Decision::Deny(Denial::Token(TokenError::MalformedBearer))
        ));
    }

    #[test]
    fn failures_are_never_cached() {
        let policy = policy();
        let forged = bearer(&sign(&key("attacker"), &header("key-a"), &v2_claims()));
        let mut cache = test_cache(10);
        let h = head("GET", "/rest/api/2/myself", Some(&forged));
        decide(&policy, &h, &keys(), &mut cache, NOW);
        assert!(cache.is_empty());
    }

    #[test]
    fn public_path_needs_no_token_and_sets_no_identity() {
        let policy = policy();
        let verdict = decide(
            &policy,
            &head("GET", "/status", None),
            &keys(),
            &mut test_cache(1),
            NOW,
        );
        assert!(matches!(verdict.decision, Decision::Forward(None)));
    }

    #[test]
    fn path_and_override_checks_come_before_public_paths_and_tokens() {
        let policy = policy();
        let verdict = decide(
            &policy,
            &head("GET", "/status/..", None),
            &keys(),
            &mut test_cache(1),
            NOW,
        );
        assert!(matches!(verdict.decision, Decision::Deny(Denial::Path(_))));
        let mut h = head("GET", "/status", None);
        h.method_overrides = vec!["DELETE"];
        let verdict = decide(&policy, &h, &keys(), &mut test_cache(1), NOW);
        assert!(matches!(
            verdict.decision,
            Decision::Deny(Denial::Request(RequestRejection::MethodOverride))
        ));
    }

    #[test]
    fn token_in_the_query_string_is_refused_whatever_the_header_holds() {
        let policy = policy();
        let auth = good();
        for (path, authorization) in [
            ("/rest/api/2/myself?access_token=abc", Some(auth.as_str())),
            ("/rest/api/2/myself?access%5Ftoken=abc", Some(auth.as_str())),
            ("/rest/api/2/myself?access_token=abc", None),
            (
                "/rest/api/2/myself?access_token=abc",
                Some("Bearer not-a-jwt"),
            ),
            ("/status?access_token=abc", None),
        ] {
            let verdict = decide(
                &policy,
                &head("GET", path, authorization),
                &keys(),
                &mut test_cache(4),
                NOW,
            );
            let Decision::Deny(denial) = &verdict.decision else {
                panic!("{path} was not denied: {verdict:?}");
            };
            assert_eq!(
                *denial,
                Denial::Request(RequestRejection::TokenInQuery),
                "{path}"
            );
            assert_eq!(denial.status(), 400);
            assert_eq!(denial.code(), "token_in_query");
            assert_eq!(denial.metric_reason(), "token_in_query");
            assert!(denial.description().contains("Authorization header"));
            assert!(verdict.token.is_none(), "the header token is not even read");
        }
        let verdict = decide(
            &policy,
            &head("GET", "/rest/api/2/search?jql=access_token", Some(&auth)),
            &keys(),
            &mut test_cache(4),
            NOW,
        );
        assert!(matches!(verdict.decision, Decision::Forward(Some(_))));
    }

    fn audit_policy(global: bool, client: bool) -> Policy {
        let mut doc = policy_json();
        if global {
            doc["mode"] = json!("audit");
        }
        if client {
            doc["clients"][0]["mode"] = json!("audit");
        }
        crate::config::compile_policy(doc.to_string().as_bytes(), &|_| None).unwrap()
    }

    #[test]
    fn audit_mode_lets_every_denial_through_flagged() {
        let policy = audit_policy(true, false);
        let verdict = decide(
            &policy,
            &head("GET", "/rest/api/2/myself", None),
            &keys(),
            &mut test_cache(1),
            NOW,
        );
        let action = verdict.action(&policy);
        assert!(matches!(
            action,
            Action::Forward {
                identity: None,
                would_deny: Some(Denial::MissingToken)
            }
        ));
    }

    #[test]
    fn per_client_dry_run_only_covers_that_clients_policy_denials() {
        let policy = audit_policy(false, true);
        let auth = good();
        let verdict = decide(
            &policy,
            &head("DELETE", "/rest/api/2/myself", Some(&auth)),
            &keys(),
            &mut test_cache(1),
            NOW,
        );
        assert!(matches!(
            verdict.action(&policy),
            Action::Forward {
                identity: Some(Identity {
                    client_name: "reporting-bot",
                    ..
                }),
                would_deny: Some(Denial::Policy(PolicyDenial::MethodNotAllowed))
            }
        ));
        // A request that identifies no client is still enforced.
        let verdict = decide(
            &policy,
            &head("GET", "/rest/api/2/myself", None),
            &keys(),
            &mut test_cache(1),
            NOW,
        );
        assert!(matches!(
            verdict.action(&policy),
            Action::Deny(Denial::MissingToken)
        ));
    }

    #[test]
    fn enforce_mode_answers_denials_locally() {
        let policy = policy();
        let verdict = decide(
            &policy,
            &head("GET", "/rest/api/2/myself", None),
            &keys(),
            &mut test_cache(1),
            NOW,
        );
        assert!(matches!(
            verdict.action(&policy),
            Action::Deny(Denial::MissingToken)
        ));
        let unavailable = FixedKeys::new(vec![]);
        let auth = good();
        let verdict = decide(
            &policy,
            &head("GET", "/rest/api/2/myself", Some(&auth)),
            &unavailable,
            &mut test_cache(1),
            NOW,
        );
        assert!(matches!(
            verdict.action(&policy),
            Action::AwaitKeys { refetch: false, .. }
        ));
    }
}
