//! Where a request is decided. The pipeline, in order: refuse ambiguous requests (method
//! overrides, a token in the query string, non-canonical paths), let public paths through, take
//! the bearer token, verify it (or find it in the verified-token cache), and ask the policy
//! whether this client may make this call. The result is a [`Verdict`]: the request's
//! [`Outcome`] (the dry-run rule already applied) and who asked. The shell calls [`decide`] once
//! per request, again after a key set or a body it waited for arrives.
//!
//! Tools that explain a decision without verifying a signature take the same pipeline with
//! another first step: [`decide_unverified`] reads the token's claims without its signature,
//! [`decide_as`] takes a caller described without a token.

use std::rc::Rc;

use crate::denial::Denial;
use crate::keys::jwks::{KeySetState, KeySets};
use crate::outcome::{refusal, Decided, Outcome, Verdict, Wait};
use crate::path::{canonical_path, RequestPath};
use crate::policy::scope::{request_scope, BodyFacts, RequestBody};
use crate::policy::{Caller, Grant, Policy, PolicyDenial, RequestTarget};
use crate::request::{has_query_token, RequestHead, RequestRejection};
use crate::token::bearer::{presented_token, PresentedToken};
use crate::token::verify::{read_unverified, verify_token, VerifiedToken, VerifyFailure};
use crate::token_cache::TokenCache;

/// Why the pipeline stopped short of a grant.
enum Halt {
    Deny(Denial),
    Wait(Wait),
}

impl From<Denial> for Halt {
    fn from(d: Denial) -> Self {
        Halt::Deny(d)
    }
}

/// The pipeline's result: a grant (none for a public path), or why there is none.
type Step<'p> = Result<Option<Grant<'p>>, Halt>;

/// Decides one request on its head alone at time `now` (seconds since the epoch), using and
/// filling `cache`. A call whose projects are in its body waits for it ([`Wait::Body`]) when a
/// rule needs them.
pub fn decide<'p>(
    policy: &'p Policy,
    head: &RequestHead<'_>,
    keys: &impl KeySets,
    cache: &mut TokenCache,
    now: i64,
) -> Verdict<'p> {
    decide_with_body(policy, head, RequestBody::Unread, keys, cache, now)
}

/// Decides one request with as much of its body as the shell has (see [`RequestBody`]).
pub fn decide_with_body<'p>(
    policy: &'p Policy,
    head: &RequestHead<'_>,
    body: RequestBody<'_>,
    keys: &impl KeySets,
    cache: &mut TokenCache,
    now: i64,
) -> Verdict<'p> {
    let mut facts = Verdict::new(());
    let step = verified_pipeline(policy, head, body, keys, cache, now, &mut facts);
    settle(policy, facts, step)
}

/// Decides one request as [`decide_with_body`] does, except that the token's signature is not
/// checked (its claims are): for tools that explain a decision without the key set
/// (`jira-entra-guard check --decode-only`), never for the request path.
pub fn decide_unverified<'p>(
    policy: &'p Policy,
    head: &RequestHead<'_>,
    body: RequestBody<'_>,
    now: i64,
) -> Verdict<'p> {
    let mut facts = Verdict::new(());
    let step = (|| {
        let Some(path) = checked_target(policy, head)? else {
            return Ok(None);
        };
        let token = presented_token(&head.authorization)?.checked()?;
        let claims = read_unverified(token, policy, now).map_err(Denial::Token)?;
        authorize_caller(policy, &claims.caller(), head, &path, body, &mut facts)
    })();
    settle(policy, facts, step)
}

/// Decides one request made by `caller`, described without a token (`jira-entra-guard check
/// --app-id`): the request checks, public paths and the policy, as for a verified token.
pub fn decide_as<'p>(
    policy: &'p Policy,
    head: &RequestHead<'_>,
    body: RequestBody<'_>,
    caller: &Caller<'_>,
) -> Verdict<'p> {
    let mut facts = Verdict::new(());
    let step = match checked_target(policy, head) {
        Ok(Some(path)) => authorize_caller(policy, caller, head, &path, body, &mut facts),
        Ok(None) => Ok(None),
        Err(denial) => Err(Halt::Deny(denial)),
    };
    settle(policy, facts, step)
}

/// The facts learned on the way with the pipeline's result as their outcome, the dry-run rule
/// applied.
fn settle<'p>(policy: &Policy, facts: Verdict<'p, ()>, step: Step<'p>) -> Verdict<'p> {
    let outcome = match step {
        Ok(grant) => Outcome::Decided(Decided::Allow(grant)),
        Err(Halt::Deny(denial)) => Outcome::Decided(refusal(policy, facts.client, denial)),
        Err(Halt::Wait(wait)) => Outcome::Wait(wait),
    };
    facts.with(outcome)
}

/// The pipeline of the request path: the request checks, the token verified (or found in the
/// cache), then the policy.
fn verified_pipeline<'p>(
    policy: &'p Policy,
    head: &RequestHead<'_>,
    body: RequestBody<'_>,
    keys: &impl KeySets,
    cache: &mut TokenCache,
    now: i64,
    verdict: &mut Verdict<'p, ()>,
) -> Step<'p> {
    let Some(path) = checked_target(policy, head)? else {
        return Ok(None);
    };
    let token = presented_token(&head.authorization)?;
    let verified = verified_token(token, policy, keys, cache, now, verdict)?;
    verdict.token = Some(Rc::clone(&verified));
    authorize_caller(policy, &verified.caller(), head, &path, body, verdict)
}

/// The checks that come before the token: the canonical path of a request that needs a token,
/// or `None` for a public path.
fn checked_target<'h>(
    policy: &Policy,
    head: &RequestHead<'h>,
) -> Result<Option<RequestPath<'h>>, Denial> {
    if head.method.is_empty() || head.path.is_empty() {
        return Err(Denial::Request(RequestRejection::MissingPseudoHeader));
    }
    if head.method_overrides.iter().any(|m| *m != head.method) {
        return Err(Denial::Request(RequestRejection::MethodOverride));
    }
    if has_query_token(head.path) {
        return Err(Denial::Request(RequestRejection::TokenInQuery));
    }
    let path = canonical_path(head.path).map_err(Denial::Path)?;
    let target = RequestTarget {
        method: head.method,
        path: &path,
    };
    if policy.is_public(&target) {
        return Ok(None);
    }
    Ok(Some(path))
}

/// The last step: the configured client `caller` is, and whether it may make the call. A call
/// whose projects are in a body that is still [`RequestBody::Unread`] waits for it; when a rule
/// with `projects` decides, the verdict says what the request was found to be about.
fn authorize_caller<'p>(
    policy: &'p Policy,
    caller: &Caller<'_>,
    head: &RequestHead<'_>,
    path: &RequestPath<'_>,
    body: RequestBody<'_>,
    verdict: &mut Verdict<'p, ()>,
) -> Step<'p> {
    let client = policy.client_of(caller);
    verdict.client = client;
    let Some(client) = client else {
        return Err(Denial::Policy(PolicyDenial::UnknownClient).into());
    };
    let target = RequestTarget {
        method: head.method,
        path,
    };
    if !client.has_project_rules() {
        return match client.authorize(caller, &target) {
            Ok(grant) => Ok(Some(grant)),
            Err(refusal) => Err(Denial::Policy(refusal).into()),
        };
    }
    let needs_body = client.needs_body(head.method, path);
    if needs_body && body == RequestBody::Unread {
        return Err(Halt::Wait(Wait::Body));
    }
    let facts = BodyFacts {
        content_type: &head.content_type,
        content_encoding: head.content_encoding,
        // A body no rule needs is not judged, even when the shell has it.
        body: if needs_body {
            body
        } else {
            RequestBody::Unread
        },
    };
    let query = head.path.split_once('?').map(|(_, query)| query);
    let scope = request_scope(head.method, path, query, &facts, policy.project_ids())
        .map_err(Denial::Body)?;
    let (step, scope_decided) = match client.authorize_scoped(caller, &target, &scope) {
        Ok(grant) => {
            let decided = client.rule_names_projects(grant.matched_rule);
            (Ok(Some(grant)), decided)
        }
        Err(refusal) => (
            Err(Denial::Policy(refusal).into()),
            matches!(
                refusal,
                PolicyDenial::ProjectNotAllowed
                    | PolicyDenial::ProjectNotDeterminable
                    | PolicyDenial::DeniedByRule
            ),
        ),
    };
    // Reported only when a rule with `projects` decided: an account of a body nobody read
    // would mislead.
    verdict.scope = scope_decided.then_some(scope);
    step
}

/// The token's verified form: from the cache when it holds it (unexpired, key still
/// published, key set usable), else verified now and cached.
fn verified_token(
    token: PresentedToken<'_>,
    policy: &Policy,
    keys: &impl KeySets,
    cache: &mut TokenCache,
    now: i64,
    verdict: &mut Verdict<'_, ()>,
) -> Result<Rc<VerifiedToken>, Halt> {
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
            VerifyFailure::Token(e) => Halt::Deny(Denial::Token(e)),
            VerifyFailure::KeySet(e) => Halt::Deny(Denial::KeySet(e)),
            VerifyFailure::AwaitKeys(needed) => Halt::Wait(Wait::Keys(needed)),
        })?;
    Ok(cache.insert(key, verified))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::keys::jwks::KeySetError;
    use crate::outcome::tests::dry_run_policy;
    use crate::outcome::{Identity, KeysNeeded};
    use crate::policy::{PolicyDenial, TenantIndex};
    use crate::test_support::*;
    use crate::token::TokenError;

    fn head<'a>(method: &'a str, path: &'a str, auth: Option<&'a str>) -> RequestHead<'a> {
        RequestHead {
            method,
            path,
            authorization: auth.into_iter().collect(),
            method_overrides: vec![],
            ..Default::default()
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
        let Outcome::Decided(Decided::Allow(Some(grant))) = &verdict.outcome else {
            panic!("{verdict:?}")
        };
        assert_eq!(grant.client_name, "reporting-bot");
        assert_eq!(verdict.client.map(|c| c.name()), Some("reporting-bot"));
        assert_eq!(
            Identity::of_grant(grant),
            Identity::of_client(verdict.client.unwrap())
        );
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
        assert!(matches!(
            again.outcome,
            Outcome::Decided(Decided::Allow(Some(_)))
        ));
        // The ACL is still evaluated for each request.
        let other = head("DELETE", "/rest/api/2/myself", Some(&auth));
        let denied = decide(&policy, &other, &keys(), &mut cache, NOW);
        assert!(denied.cache_hit);
        assert!(matches!(
            denied.outcome,
            Outcome::Decided(Decided::Deny(Denial::Policy(
                PolicyDenial::MethodNotAllowed
            )))
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
            late.outcome,
            Outcome::Decided(Decided::Deny(Denial::Token(TokenError::Expired)))
        ));
    }

    /// Key sets in which tenant 0 publishes `document` and tenant 1 nothing.
    fn tenant_zero_publishes(document: serde_json::Value) -> FixedKeySets {
        fixed_keys(vec![
            Some(crate::keys::jwks::parse_jwks(document.to_string().as_bytes()).unwrap()),
            None,
        ])
    }

    #[test]
    fn cached_token_is_dropped_when_its_key_leaves_the_set() {
        let policy = policy();
        let auth = good();
        let mut cache = test_cache(10);
        let h = head("GET", "/rest/api/2/myself", Some(&auth));
        decide(&policy, &h, &keys(), &mut cache, NOW);
        let keys = tenant_zero_publishes(json!({"keys": [jwk("key-b", &key("b"))]}));
        let after = decide(&policy, &h, &keys, &mut cache, NOW);
        assert!(!after.cache_hit);
        assert!(matches!(
            after.outcome,
            Outcome::Decided(Decided::Deny(Denial::Token(TokenError::UnknownKey)))
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
            decide(&policy, &h, &keys(), &mut cache, NOW).outcome,
            Outcome::Decided(Decided::Allow(Some(_)))
        ));
        assert!(decide(&policy, &h, &keys(), &mut cache, NOW).cache_hit);
        // `key-a` now names key b's material.
        let keys = tenant_zero_publishes(json!({"keys": [jwk("key-a", &key("b"))]}));
        let after = decide(&policy, &h, &keys, &mut cache, NOW);
        assert!(!after.cache_hit);
        assert!(matches!(
            after.outcome,
            Outcome::Decided(Decided::Deny(Denial::Token(TokenError::BadSignature)))
        ));
    }

    #[test]
    fn stale_key_set_is_not_bypassed_by_a_cached_token() {
        let policy = policy();
        let auth = good();
        let mut cache = test_cache(10);
        let h = head("GET", "/rest/api/2/myself", Some(&auth));
        decide(&policy, &h, &keys(), &mut cache, NOW);
        assert_eq!(cache.len(), 1);
        let stale = FixedKeySets::new(vec![])
            .unavailable_without_a_set(crate::keys::jwks::KeySetError::Stale);
        let after = decide(&policy, &h, &stale, &mut cache, NOW);
        assert!(!after.cache_hit);
        let Outcome::Decided(Decided::Deny(denial)) = after.outcome else {
            panic!("{after:?}")
        };
        assert_eq!(
            denial,
            Denial::KeySet(crate::keys::jwks::KeySetError::Stale),
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
            decide(&policy, &h, &keys(), &mut cache, NOW).outcome,
            Outcome::Decided(Decided::Deny(Denial::Token(TokenError::LifetimeTooLong)))
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
            decide(&policy, &h, &keys(), &mut cache, NOW).outcome,
            Outcome::Decided(Decided::Allow(Some(_)))
        ));
        // The cached token with a character no token can have: a different token, never a hit.
        let altered = format!("{auth}!");
        let h = head("GET", "/rest/api/2/myself", Some(&altered));
        let verdict = decide(&policy, &h, &keys(), &mut cache, NOW);
        assert!(!verdict.cache_hit);
        assert!(matches!(
            verdict.outcome,
            Outcome::Decided(Decided::Deny(Denial::Token(TokenError::MalformedBearer)))
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
        assert!(matches!(
            verdict.outcome,
            Outcome::Decided(Decided::Allow(None))
        ));
    }

    #[test]
    fn request_without_its_method_or_its_path_is_refused_before_anything_else() {
        let policy = policy();
        let auth = good();
        for (method, path) in [("", "/rest/api/2/myself"), ("GET", ""), ("", "")] {
            let verdict = decide(
                &policy,
                &head(method, path, Some(&auth)),
                &keys(),
                &mut test_cache(1),
                NOW,
            );
            let Outcome::Decided(Decided::Deny(denial)) = verdict.outcome else {
                panic!("{method:?} {path:?}")
            };
            assert_eq!(
                denial,
                Denial::Request(RequestRejection::MissingPseudoHeader),
                "{method:?} {path:?}"
            );
            assert_eq!(denial.status(), 400);
        }
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
        assert!(matches!(
            verdict.outcome,
            Outcome::Decided(Decided::Deny(Denial::Path(_)))
        ));
        let mut h = head("GET", "/status", None);
        h.method_overrides = vec!["DELETE"];
        let verdict = decide(&policy, &h, &keys(), &mut test_cache(1), NOW);
        assert!(matches!(
            verdict.outcome,
            Outcome::Decided(Decided::Deny(Denial::Request(
                RequestRejection::MethodOverride
            )))
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
            let Outcome::Decided(Decided::Deny(denial)) = &verdict.outcome else {
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
        assert!(matches!(
            verdict.outcome,
            Outcome::Decided(Decided::Allow(Some(_)))
        ));
    }

    #[test]
    fn audit_mode_lets_every_denial_through_flagged() {
        let policy = dry_run_policy(true, false);
        let verdict = decide(
            &policy,
            &head("GET", "/rest/api/2/myself", None),
            &keys(),
            &mut test_cache(1),
            NOW,
        );
        assert!(matches!(
            verdict.outcome,
            Outcome::Decided(Decided::WouldDeny {
                identity: None,
                denial: Denial::MissingToken
            })
        ));
    }

    #[test]
    fn per_client_dry_run_only_covers_that_clients_policy_denials() {
        let policy = dry_run_policy(false, true);
        let auth = good();
        let verdict = decide(
            &policy,
            &head("DELETE", "/rest/api/2/myself", Some(&auth)),
            &keys(),
            &mut test_cache(1),
            NOW,
        );
        assert!(matches!(
            verdict.outcome,
            Outcome::Decided(Decided::WouldDeny {
                identity: Some(Identity {
                    client_name: "reporting-bot",
                    ..
                }),
                denial: Denial::Policy(PolicyDenial::MethodNotAllowed)
            })
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
            verdict.outcome,
            Outcome::Decided(Decided::Deny(Denial::MissingToken))
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
            verdict.outcome,
            Outcome::Decided(Decided::Deny(Denial::MissingToken))
        ));
        let unavailable = fixed_keys(vec![]);
        let auth = good();
        let verdict = decide(
            &policy,
            &head("GET", "/rest/api/2/myself", Some(&auth)),
            &unavailable,
            &mut test_cache(1),
            NOW,
        );
        assert!(matches!(
            verdict.outcome,
            Outcome::Wait(Wait::Keys(KeysNeeded { refetch: false, .. }))
        ));
    }
    mod waiting_for_keys {
        use super::*;
        use crate::keys::record::SharedKeyRecord;
        use crate::keys::schedule::ScheduleSettings;
        use crate::keys::store::KeyStore;

        const SETTINGS: ScheduleSettings = ScheduleSettings {
            refresh_ms: 3_600_000,
            max_stale_ms: 86_400_000,
            min_refetch_ms: 300_000,
            lease_ms: 3_000,
        };
        /// When the key set was fetched (epoch milliseconds), shortly before `NOW`.
        const FETCHED_MS: u64 = 1_000_000;

        fn store(record: SharedKeyRecord) -> KeyStore {
            let mut store = KeyStore::new(vec![SETTINGS, SETTINGS]);
            let document = json!({"keys": [jwk("key-a", &key("a"))]}).to_string();
            store.observe(TenantIndex(0), record, Some(document.as_bytes()));
            store
        }

        fn fetched_record() -> SharedKeyRecord {
            let mut record = SharedKeyRecord::default();
            record.succeeded(FETCHED_MS, &SETTINGS);
            record
        }

        fn token_with_kid(kid: &str) -> String {
            bearer(&sign(&key("a"), &header(kid), &v2_claims()))
        }

        fn decided(store: &KeyStore, now_ms: u64, auth: &str) -> Outcome<'static> {
            let policy = Box::leak(Box::new(policy()));
            let h = head("GET", "/rest/api/2/myself", Some(auth));
            decide(policy, &h, &store.at(now_ms), &mut test_cache(1), NOW).outcome
        }

        fn decided_after_wait(store: &KeyStore, now_ms: u64, auth: &str) -> Outcome<'static> {
            let policy = Box::leak(Box::new(policy()));
            let h = head("GET", "/rest/api/2/myself", Some(auth));
            let keys = store.at(now_ms);
            let verdict = match decide(policy, &h, &keys, &mut test_cache(1), NOW).decided() {
                Ok(decided) => decided,
                Err(waiting) => waiting.wait_over(policy, &keys),
            };
            Outcome::Decided(verdict.outcome)
        }

        #[test]
        fn unknown_kid_with_fresh_keys_waits_for_the_refetch_it_asks_for() {
            let store = store(fetched_record());
            let decision = decided(&store, FETCHED_MS + 10_000, &token_with_kid("rotated"));
            assert!(matches!(
                decision,
                Outcome::Wait(Wait::Keys(KeysNeeded {
                    tenant: TenantIndex(0),
                    refetch: true
                }))
            ));
        }

        /// A token naming `kid` waits at `now_ms` without asking for a refetch (one is already
        /// running), and is refused once its wait is over: the denial.
        fn refused_when_the_wait_ends(store: &KeyStore, now_ms: u64, kid: &str) -> Denial {
            assert!(matches!(
                decided(store, now_ms, &token_with_kid(kid)),
                Outcome::Wait(Wait::Keys(KeysNeeded { refetch: false, .. }))
            ));
            match decided_after_wait(store, now_ms, &token_with_kid(kid)) {
                Outcome::Decided(Decided::Deny(denial)) => denial,
                other => panic!("{other:?}"),
            }
        }

        #[test]
        fn unknown_kid_with_fresh_keys_is_refused_when_the_wait_ends_before_the_refetch() {
            let mut record = fetched_record();
            record.claim_refetch(FETCHED_MS + 10_000, &SETTINGS);
            // The refetch hangs: its lease is still held when the request's wait ends.
            let denial = refused_when_the_wait_ends(&store(record), FETCHED_MS + 12_000, "rotated");
            assert_eq!(denial, Denial::Token(TokenError::UnknownKeyRefetchFailed));
            assert_eq!(denial.status(), 401);
            assert_eq!(denial.code(), "unknown_key_refetch_failed");
            assert_eq!(denial.description(), "token is signed with an unknown key");
        }

        #[test]
        fn unknown_kid_after_a_failed_refetch_is_refused_without_waiting_again() {
            let mut record = fetched_record();
            record.claim_refetch(FETCHED_MS + 10_000, &SETTINGS);
            record.failed(FETCHED_MS + 11_000, 0);
            let store = store(record);
            assert!(matches!(
                decided(&store, FETCHED_MS + 11_001, &token_with_kid("rotated")),
                Outcome::Decided(Decided::Deny(Denial::Token(
                    TokenError::UnknownKeyRefetchFailed
                )))
            ));
        }

        #[test]
        fn unknown_kid_within_the_rate_limit_after_a_good_refetch_is_plainly_unknown() {
            let mut record = fetched_record();
            record.claim_refetch(FETCHED_MS + 10_000, &SETTINGS);
            record.succeeded(FETCHED_MS + 10_500, &SETTINGS);
            let store = store(record);
            assert!(matches!(
                decided(&store, FETCHED_MS + 11_000, &token_with_kid("rotated")),
                Outcome::Decided(Decided::Deny(Denial::Token(TokenError::UnknownKey)))
            ));
        }

        #[test]
        fn known_kid_is_decided_while_a_refetch_hangs() {
            let mut record = fetched_record();
            record.claim_refetch(FETCHED_MS + 10_000, &SETTINGS);
            let store = store(record);
            assert!(matches!(
                decided(&store, FETCHED_MS + 11_000, &token_with_kid("key-a")),
                Outcome::Decided(Decided::Allow(Some(_)))
            ));
        }

        #[test]
        fn cold_start_with_a_hanging_key_server_answers_503_when_the_wait_ends() {
            let mut record = SharedKeyRecord::default();
            record.claim_scheduled(FETCHED_MS, &SETTINGS);
            let denial = refused_when_the_wait_ends(&store(record), FETCHED_MS + 2_000, "key-a");
            assert_eq!(denial, Denial::KeySet(KeySetError::Unavailable));
            assert_eq!(denial.status(), 503);
        }

        #[test]
        fn cold_start_after_a_failed_fetch_answers_503_at_once() {
            let mut record = SharedKeyRecord::default();
            record.claim_scheduled(FETCHED_MS, &SETTINGS);
            record.failed(FETCHED_MS + 500, 0);
            let store = store(record);
            assert!(matches!(
                decided(&store, FETCHED_MS + 600, &token_with_kid("key-a")),
                Outcome::Decided(Decided::Deny(Denial::KeySet(KeySetError::Unavailable)))
            ));
        }

        #[test]
        fn a_key_set_too_old_answers_503_whatever_the_kid() {
            let mut record = fetched_record();
            let too_old = FETCHED_MS + SETTINGS.max_stale_ms + 1;
            record.claim_scheduled(too_old - 5_000, &SETTINGS);
            record.failed(too_old - 4_000, 0);
            let store = store(record);
            for kid in ["key-a", "rotated"] {
                let decision = decided_after_wait(&store, too_old, &token_with_kid(kid));
                assert!(
                    matches!(
                        decision,
                        Outcome::Decided(Decided::Deny(Denial::KeySet(KeySetError::Stale)))
                    ),
                    "{kid}: {decision:?}"
                );
            }
        }

        #[test]
        fn the_end_of_a_wait_in_a_dry_run_lets_the_request_through_flagged() {
            let mut record = SharedKeyRecord::default();
            record.claim_scheduled(FETCHED_MS, &SETTINGS);
            let store = store(record);
            let policy = dry_run_policy(true, false);
            let auth = good();
            let h = head("GET", "/rest/api/2/myself", Some(&auth));
            let keys = store.at(FETCHED_MS + 2_000);
            let waiting = decide(&policy, &h, &keys, &mut test_cache(1), NOW)
                .decided()
                .unwrap_err();
            assert!(matches!(
                waiting.wait_over(&policy, &keys).outcome,
                Decided::WouldDeny {
                    denial: Denial::KeySet(KeySetError::Unavailable),
                    identity: None
                }
            ));
        }

        #[test]
        fn the_end_of_a_wait_leaves_decided_requests_alone() {
            let store = store(fetched_record());
            let decision = decided_after_wait(&store, FETCHED_MS + 1_000, &token_with_kid("key-a"));
            assert!(matches!(
                decision,
                Outcome::Decided(Decided::Allow(Some(_)))
            ));
        }
    }

    mod without_a_signature_check {
        use super::*;

        /// `GET`/`DELETE` of `path` decided from the token's claims alone.
        fn unverified<'p>(
            policy: &'p Policy,
            method: &str,
            path: &str,
            auth: Option<&str>,
        ) -> Verdict<'p> {
            decide_unverified(policy, &head(method, path, auth), RequestBody::Unread, NOW)
        }

        /// A `GET` of `path` by app `app_id` with the `Jira.Read` role, described by flags.
        fn by_flags<'p>(policy: &'p Policy, h: &RequestHead<'_>, app_id: &str) -> Verdict<'p> {
            let roles = ["Jira.Read".to_owned()];
            let caller = Caller {
                tenant: TenantIndex(0),
                app_id,
                credential_type: Some("2"),
                roles: &roles,
                delegated: false,
            };
            decide_as(policy, h, RequestBody::Unread, &caller)
        }

        fn forged() -> String {
            bearer(&sign(&key("attacker"), &header("key-a"), &v2_claims()))
        }

        #[test]
        fn decode_only_reads_the_claims_and_ignores_the_signature() {
            let policy = policy();
            let verdict = unverified(&policy, "GET", "/rest/api/2/myself", Some(&forged()));
            let Outcome::Decided(Decided::Allow(Some(grant))) = &verdict.outcome else {
                panic!("{verdict:?}")
            };
            assert_eq!(grant.client_name, "reporting-bot");
            assert!(verdict.token.is_none(), "nothing was verified");
            assert_eq!(verdict.client.map(|c| c.name()), Some("reporting-bot"));
        }

        #[test]
        fn decode_only_still_checks_claims_the_request_and_the_policy() {
            let policy = policy();
            let auth = forged();
            let mut claims = v2_claims();
            claims["exp"] = json!(NOW - 600);
            let expired = bearer(&sign(&key("a"), &header("key-a"), &claims));
            let cases = [
                (
                    "GET",
                    "/rest/api/2/myself",
                    Some(expired.as_str()),
                    "expired",
                ),
                (
                    "DELETE",
                    "/rest/api/2/myself",
                    Some(&auth),
                    "method_not_allowed",
                ),
                ("GET", "/rest/api/2/myself", None, "no_token"),
                (
                    "GET",
                    "/rest/api/2/myself",
                    Some("Bearer a b"),
                    "malformed_bearer",
                ),
                (
                    "GET",
                    "/rest/api/2/../myself",
                    Some(&expired),
                    "refused_path",
                ),
            ];
            for (method, path, auth, code) in cases {
                let verdict = unverified(&policy, method, path, auth);
                let Outcome::Decided(Decided::Deny(denial)) = &verdict.outcome else {
                    panic!("{code}: {verdict:?}")
                };
                assert_eq!(denial.code(), code);
            }
            assert!(matches!(
                unverified(&policy, "GET", "/status", None).outcome,
                Outcome::Decided(Decided::Allow(None))
            ));
        }

        #[test]
        fn decode_only_applies_the_dry_run_rule() {
            let policy = dry_run_policy(false, true);
            let verdict = unverified(&policy, "DELETE", "/rest/api/2/myself", Some(&forged()));
            assert!(matches!(
                verdict.outcome,
                Outcome::Decided(Decided::WouldDeny {
                    identity: Some(_),
                    ..
                })
            ));
        }

        #[test]
        fn a_caller_described_by_flags_gets_the_policys_answer() {
            let policy = policy();
            let h = head("GET", "/rest/api/2/myself", None);
            let allowed = by_flags(&policy, &h, REPORTING_BOT);
            assert!(matches!(
                allowed.outcome,
                Outcome::Decided(Decided::Allow(Some(_)))
            ));
            assert_eq!(allowed.client.map(|c| c.name()), Some("reporting-bot"));
            let refused = by_flags(&policy, &h, API_APP_ID);
            assert!(matches!(
                refused.outcome,
                Outcome::Decided(Decided::Deny(Denial::Policy(PolicyDenial::UnknownClient)))
            ));
            assert!(refused.client.is_none());
        }

        #[test]
        fn a_caller_described_by_flags_passes_the_request_checks_first() {
            let policy = policy();
            let mut h = head("GET", "/rest/api/2/myself", None);
            h.method_overrides = vec!["DELETE"];
            assert!(matches!(
                by_flags(&policy, &h, REPORTING_BOT).outcome,
                Outcome::Decided(Decided::Deny(Denial::Request(
                    RequestRejection::MethodOverride
                )))
            ));
            let public = by_flags(&policy, &head("GET", "/status", None), REPORTING_BOT);
            assert!(matches!(
                public.outcome,
                Outcome::Decided(Decided::Allow(None))
            ));
            assert!(public.client.is_none(), "a public path names no client");
        }
    }

    /// The test client, limited to OPS for creates, bulk creates, links and searches, with
    /// `project_ids` mapping 10000 to OPS, and a deny rule for SEC on everything.
    fn scoped_policy() -> Policy {
        let mut doc = policy_json();
        doc["clients"][0]["allow"] = json!([
            {"methods": ["POST"], "paths": ["/rest/api/*/issue", "/rest/api/*/issue/bulk",
                                            "/rest/api/*/issueLink", "/rest/api/*/search"],
             "projects": ["OPS"]},
            {"methods": ["GET"], "paths": ["/rest/api/*/search", "/rest/api/2/myself"], "projects": ["OPS"]}
        ]);
        doc["clients"][0]["deny"] = json!([
            {"methods": ["*"], "paths": ["/rest/api/*/issue/bulk"], "projects": ["SEC"]}
        ]);
        doc["project_ids"] = json!({"10000": "OPS"});
        crate::config::compile_policy(doc.to_string().as_bytes(), &|_| None).unwrap()
    }

    fn json_head<'a>(method: &'a str, path: &'a str, auth: &'a str) -> RequestHead<'a> {
        let mut h = head(method, path, Some(auth));
        h.content_type = vec!["application/json"];
        h
    }

    fn decide_body<'p>(policy: &'p Policy, h: &RequestHead<'_>, body: &str) -> Verdict<'p> {
        decide_with_body(
            policy,
            h,
            RequestBody::Complete(body.as_bytes()),
            &keys(),
            &mut test_cache(10),
            NOW,
        )
    }

    #[test]
    fn body_scoped_call_waits_for_its_body() {
        let policy = scoped_policy();
        let auth = good();
        let h = json_head("POST", "/rest/api/2/issue", &auth);
        let verdict = decide(&policy, &h, &keys(), &mut test_cache(10), NOW);
        assert!(matches!(verdict.outcome, Outcome::Wait(Wait::Body)));
    }

    #[test]
    fn calls_no_project_rule_applies_to_never_wait_for_a_body() {
        let policy = policy();
        let auth = good();
        let h = json_head("POST", "/rest/api/2/issue", &auth);
        let verdict = decide(&policy, &h, &keys(), &mut test_cache(10), NOW);
        assert!(matches!(
            verdict.outcome,
            Outcome::Decided(Decided::Deny(_))
        ));
        let policy = scoped_policy();
        let h = json_head("GET", "/rest/api/2/search?jql=project%3DOPS", &auth);
        assert!(matches!(
            decide(&policy, &h, &keys(), &mut test_cache(10), NOW).outcome,
            Outcome::Decided(Decided::Allow(Some(_)))
        ));
    }

    #[test]
    fn create_in_an_allowed_project_is_forwarded_and_explained() {
        let policy = scoped_policy();
        let auth = good();
        let h = json_head("POST", "/rest/api/2/issue", &auth);
        for body in [
            r#"{"fields":{"project":{"key":"OPS"},"summary":"s"}}"#,
            r#"{"fields":{"project":{"id":"10000"},"summary":"s"}}"#,
        ] {
            let verdict = decide_body(&policy, &h, body);
            assert!(
                matches!(verdict.outcome, Outcome::Decided(Decided::Allow(Some(_)))),
                "{body}"
            );
        }
        let verdict = decide_body(&policy, &h, r#"{"fields":{"project":{"key":"OPS"}}}"#);
        assert_eq!(
            verdict.scope.map(|s| s.explain()).as_deref(),
            Some("fields.project: OPS")
        );
    }

    #[test]
    fn create_elsewhere_or_unprovable_is_refused_with_its_reason() {
        let policy = scoped_policy();
        let auth = good();
        let h = json_head("POST", "/rest/api/2/issue", &auth);
        let cases = [
            (
                r#"{"fields":{"project":{"key":"SEC"}}}"#,
                "project_not_allowed",
                403,
            ),
            (
                r#"{"fields":{"project":{"id":"10001"}}}"#,
                "project_not_determinable",
                403,
            ),
            (r#"{"fields":{}}"#, "project_not_determinable", 403),
            (
                r#"{"fields":{"project":{"key":"OPS"}},"fields":{"project":{"key":"SEC"}}}"#,
                "duplicate_member",
                400,
            ),
            (
                r#"{"fields":{"project":{"key":"OPS"}}"#,
                "invalid_json",
                400,
            ),
        ];
        for (body, code, status) in cases {
            let Outcome::Decided(Decided::Deny(denial)) = decide_body(&policy, &h, body).outcome
            else {
                panic!("{body}")
            };
            assert_eq!((denial.code(), denial.status()), (code, status), "{body}");
        }
    }

    #[test]
    fn body_that_cannot_be_read_is_refused_before_any_rule() {
        let policy = scoped_policy();
        let auth = good();
        let mut h = json_head("POST", "/rest/api/2/issue", &auth);
        let ok = r#"{"fields":{"project":{"key":"OPS"}}}"#;
        let verdict = decide_with_body(
            &policy,
            &h,
            RequestBody::TooLarge,
            &keys(),
            &mut test_cache(10),
            NOW,
        );
        let Outcome::Decided(Decided::Deny(denial)) = verdict.outcome else {
            panic!()
        };
        assert_eq!((denial.code(), denial.status()), ("body_too_large", 413));
        assert_eq!(denial.metric_reason(), "body_too_large");
        h.content_encoding = true;
        let Outcome::Decided(Decided::Deny(denial)) = decide_body(&policy, &h, ok).outcome else {
            panic!()
        };
        assert_eq!(denial.status(), 415);
        h.content_encoding = false;
        h.content_type = vec!["text/plain"];
        let Outcome::Decided(Decided::Deny(denial)) = decide_body(&policy, &h, ok).outcome else {
            panic!()
        };
        assert_eq!(
            (denial.code(), denial.status()),
            ("unsupported_media_type", 415)
        );
    }

    #[test]
    fn a_body_that_did_not_arrive_in_time_is_refused_and_a_dry_run_lets_it_on_flagged() {
        let auth = good();
        let h = json_head("POST", "/rest/api/2/issue", &auth);
        let timed_out = |policy: &Policy| {
            let verdict = decide_with_body(
                policy,
                &h,
                RequestBody::TimedOut,
                &keys(),
                &mut test_cache(10),
                NOW,
            );
            match verdict.outcome {
                Outcome::Decided(Decided::Deny(d)) => (false, d.status(), d.metric_reason()),
                Outcome::Decided(Decided::WouldDeny { denial, identity }) => {
                    assert!(identity.is_some(), "forwarded with the client's identity");
                    (true, denial.status(), denial.metric_reason())
                }
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(timed_out(&scoped_policy()), (false, 408, "body_timeout"));
        let mut doc = policy_json();
        doc["mode"] = json!("audit");
        doc["clients"][0]["allow"] = json!([
            {"methods": ["POST"], "paths": ["/rest/api/*/issue"], "projects": ["OPS"]}
        ]);
        let dry_run = crate::config::compile_policy(doc.to_string().as_bytes(), &|_| None).unwrap();
        assert_eq!(timed_out(&dry_run), (true, 408, "body_timeout"));
    }

    #[test]
    fn bulk_create_needs_every_issue_allowed_and_deny_rules_read_the_body() {
        let policy = scoped_policy();
        let auth = good();
        let h = json_head("POST", "/rest/api/2/issue/bulk", &auth);
        let ops = r#"{"issueUpdates":[{"fields":{"project":{"key":"OPS"}}},{"fields":{"project":{"key":"OPS"}}}]}"#;
        assert!(matches!(
            decide_body(&policy, &h, ops).outcome,
            Outcome::Decided(Decided::Allow(Some(_)))
        ));
        let mixed = r#"{"issueUpdates":[{"fields":{"project":{"key":"OPS"}}},{"fields":{"project":{"key":"SEC"}}}]}"#;
        assert!(matches!(
            decide_body(&policy, &h, mixed).outcome,
            Outcome::Decided(Decided::Deny(Denial::Policy(PolicyDenial::DeniedByRule)))
        ));
    }

    #[test]
    fn searches_are_allowed_only_within_the_listed_projects() {
        let policy = scoped_policy();
        let auth = good();
        let allowed = [
            "/rest/api/2/search?jql=project+%3D+OPS+AND+status+%3D+Open",
            "/rest/api/3/search?jql=project%20in%20(ops)%20ORDER%20BY%20key",
        ];
        for path in allowed {
            let h = json_head("GET", path, &auth);
            let verdict = decide(&policy, &h, &keys(), &mut test_cache(10), NOW);
            assert!(
                matches!(verdict.outcome, Outcome::Decided(Decided::Allow(Some(_)))),
                "{path}"
            );
        }
        let refused = [
            (
                "/rest/api/2/search?jql=project+%3D+SEC",
                "project_not_allowed",
            ),
            (
                "/rest/api/2/search?jql=project+in+(OPS,SEC)",
                "project_not_allowed",
            ),
            (
                "/rest/api/2/search?jql=project+%3D+OPS+OR+project+%3D+SEC",
                "project_not_determinable",
            ),
            (
                "/rest/api/2/search?jql=project%3DOPS&jql=project%3DSEC",
                "project_not_determinable",
            ),
            ("/rest/api/2/search", "project_not_determinable"),
        ];
        for (path, code) in refused {
            let h = json_head("GET", path, &auth);
            let Outcome::Decided(Decided::Deny(denial)) =
                decide(&policy, &h, &keys(), &mut test_cache(10), NOW).outcome
            else {
                panic!("{path}")
            };
            assert_eq!(denial.code(), code, "{path}");
        }
        let h = json_head("POST", "/rest/api/2/search", &auth);
        assert!(matches!(
            decide_body(&policy, &h, r#"{"jql":"project = OPS","maxResults":1}"#).outcome,
            Outcome::Decided(Decided::Allow(Some(_)))
        ));
        assert!(matches!(
            decide_body(&policy, &h, r#"{"jql":"project = OPS or project = SEC"}"#).outcome,
            Outcome::Decided(Decided::Deny(Denial::Policy(
                PolicyDenial::ProjectNotDeterminable
            )))
        ));
    }

    #[test]
    fn links_need_both_ends_in_listed_projects() {
        let policy = scoped_policy();
        let auth = good();
        let h = json_head("POST", "/rest/api/2/issueLink", &auth);
        let link = |a: &str, b: &str| {
            format!(
                r#"{{"type":{{"name":"Blocks"}},"inwardIssue":{{"key":"{a}"}},"outwardIssue":{{"key":"{b}"}}}}"#
            )
        };
        assert!(matches!(
            decide_body(&policy, &h, &link("OPS-1", "OPS-2")).outcome,
            Outcome::Decided(Decided::Allow(Some(_)))
        ));
        assert!(matches!(
            decide_body(&policy, &h, &link("OPS-1", "SEC-2")).outcome,
            Outcome::Decided(Decided::Deny(Denial::Policy(
                PolicyDenial::ProjectNotAllowed
            )))
        ));
    }

    #[test]
    fn a_body_no_rule_needs_is_not_judged_even_when_the_shell_has_it() {
        let mut doc = policy_json();
        doc["clients"][0]["allow"] = json!([
            {"methods": ["POST"], "paths": ["/rest/api/2/issue"]},
            {"methods": ["GET"], "paths": ["/rest/api/2/issue/*"], "projects": ["OPS"]}
        ]);
        let policy = crate::config::compile_policy(doc.to_string().as_bytes(), &|_| None).unwrap();
        let auth = good();
        // A POST that ended with its headers: the shell hands in an empty, complete body.
        let h = head("POST", "/rest/api/2/issue", Some(&auth));
        let verdict = decide_with_body(
            &policy,
            &h,
            RequestBody::Complete(b""),
            &keys(),
            &mut test_cache(10),
            NOW,
        );
        assert!(
            matches!(verdict.outcome, Outcome::Decided(Decided::Allow(Some(_)))),
            "{verdict:?}"
        );
        assert!(verdict.scope.is_none());
    }
}
