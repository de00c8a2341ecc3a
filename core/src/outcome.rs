//! The outcome of one request, as [`crate::decide`] produces it and everything downstream
//! consumes it: the shell carries it out, the audit trail ([`crate::audit`]) and the counters
//! ([`crate::metrics`]) record it, and `jira-entra-guard check` prints it.
//!
//! A request is either [`Decided`] — allowed (forwarded with the identity of its grant),
//! denied, or would-be denied in a dry-run (forwarded, flagged) — or it must [`Wait`] for its
//! tenant's keys or for its body and be decided again. Whether a denial is enforced is decided
//! here once, by [`is_dry_run`]. A [`Verdict`] carries the outcome with what was learned about
//! the caller on the way (token, client, cache hit, projects), for logs and metrics.

use std::rc::Rc;

use crate::denial::Denial;
use crate::keys::jwks::{KeySetError, KeySetState, KeySets};
use crate::policy::scope::BodyRejection;
use crate::policy::{Client, Grant, Mode, Policy, ProjectScope, TenantIndex};
use crate::token::verify::VerifiedToken;
use crate::token::TokenError;

/// What became of a request.
// Built once per request and moved at most once: boxing the large variant would only add an
// allocation to every allowed request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Outcome<'p> {
    /// The request is decided.
    Decided(Decided<'p>),
    /// The request cannot be decided yet; decide it again when the wait is over.
    Wait(Wait),
}

/// A request that is decided: what Envoy does with it.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Decided<'p> {
    /// Forward to Jira with the identity of the grant (none for a public path).
    Allow(Option<Grant<'p>>),
    /// Answer locally with the reply for this denial.
    Deny(Denial),
    /// Dry-run: the policy denies, but the request goes on to Jira, flagged, with the identity
    /// of the client the token identified (if any).
    WouldDeny {
        /// The denial that is not enforced.
        denial: Denial,
        /// The identity presented to Jira.
        identity: Option<Identity<'p>>,
    },
}

/// What an undecided request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Its tenant's key set (see [`KeysNeeded`]).
    Keys(KeysNeeded),
    /// Its whole body: a rule with `projects` applies to a call whose projects are in it.
    Body,
}

/// A token that can only be verified once its tenant's key set is (re)loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeysNeeded {
    /// The tenant whose keys are awaited.
    pub tenant: TenantIndex,
    /// True when the token names a key the set lacks and a refetch must be started (within
    /// the rate limit).
    pub refetch: bool,
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

impl<'p> Identity<'p> {
    /// The identity a grant forwards.
    pub fn of_grant(grant: &Grant<'p>) -> Self {
        Identity {
            client_name: grant.client_name,
            app_id: grant.app_id,
            upstream_authorization: grant.upstream_authorization,
        }
    }

    /// The identity of a configured client.
    pub fn of_client(client: &'p Client) -> Self {
        Identity {
            client_name: client.name(),
            app_id: client.app_id_text(),
            upstream_authorization: client.upstream_authorization(),
        }
    }
}

/// The dry-run rule: a denial is not enforced when the whole policy, or the client the token
/// identifies, is in `audit` mode.
pub fn is_dry_run(policy: &Policy, client: Option<&Client>) -> bool {
    policy.mode() == Mode::Audit || client.is_some_and(|c| c.mode() == Mode::Audit)
}

/// A denial under the dry-run rule: enforced, or let through flagged with the client's
/// identity.
pub fn refusal<'p>(policy: &Policy, client: Option<&'p Client>, denial: Denial) -> Decided<'p> {
    if is_dry_run(policy, client) {
        Decided::WouldDeny {
            denial,
            identity: client.map(Identity::of_client),
        }
    } else {
        Decided::Deny(denial)
    }
}

impl<'p> Decided<'p> {
    /// The identity headers of a forwarded request (`Some(None)`: forwarded without one), or
    /// `None` for a request answered locally.
    pub fn forwarded_identity(&self) -> Option<Option<Identity<'p>>> {
        match self {
            Decided::Allow(grant) => Some(grant.as_ref().map(Identity::of_grant)),
            Decided::WouldDeny { identity, .. } => Some(*identity),
            Decided::Deny(_) => None,
        }
    }

    /// The policy's denial, enforced or not.
    pub fn denial(&self) -> Option<&Denial> {
        match self {
            Decided::Allow(_) => None,
            Decided::Deny(denial) | Decided::WouldDeny { denial, .. } => Some(denial),
        }
    }
}

/// An outcome (by default an [`Outcome`]) with what is known about the caller, for
/// enforcement, logs and metrics.
#[derive(Debug)]
pub struct Verdict<'p, O = Outcome<'p>> {
    /// What became of the request.
    pub outcome: O,
    /// The verified token, when one was presented and verified.
    pub token: Option<Rc<VerifiedToken>>,
    /// The configured client the token identifies, even when the policy denies the call.
    pub client: Option<&'p Client>,
    /// Whether the verified token came from the cache.
    pub cache_hit: bool,
    /// What the request was found to be about, when a rule with `projects` needed to know.
    pub scope: Option<ProjectScope>,
}

/// A verdict whose request is decided.
pub type DecidedVerdict<'p> = Verdict<'p, Decided<'p>>;

impl<'p, O> Verdict<'p, O> {
    /// A verdict about no caller yet.
    pub fn new(outcome: O) -> Self {
        Verdict {
            outcome,
            token: None,
            client: None,
            cache_hit: false,
            scope: None,
        }
    }

    /// The same facts about the caller with another outcome.
    pub(crate) fn with<N>(self, outcome: N) -> Verdict<'p, N> {
        Verdict {
            outcome,
            token: self.token,
            client: self.client,
            cache_hit: self.cache_hit,
            scope: self.scope,
        }
    }

    /// Splits the outcome off (`O` has no further use) and keeps the facts.
    fn split(self) -> (O, Verdict<'p, ()>) {
        let Verdict {
            outcome,
            token,
            client,
            cache_hit,
            scope,
        } = self;
        let facts = Verdict {
            outcome: (),
            token,
            client,
            cache_hit,
            scope,
        };
        (outcome, facts)
    }
}

impl<'p> Verdict<'p> {
    /// The decided verdict, or the waiting one.
    pub fn decided(self) -> Result<DecidedVerdict<'p>, Verdict<'p, Wait>> {
        let (outcome, facts) = self.split();
        match outcome {
            Outcome::Decided(decided) => Ok(facts.with(decided)),
            Outcome::Wait(wait) => Err(facts.with(wait)),
        }
    }
}

impl<'p> Verdict<'p, Wait> {
    /// The verdict of a request whose wait is over, answered with what is known now. A tenant
    /// whose key set is usable and within `max_stale_seconds` only keeps a request waiting for
    /// a refetch its token's unknown key asked for, so the token is refused (401,
    /// [`TokenError::UnknownKeyRefetchFailed`]): a slow key server must not turn a forged or
    /// retired key id into a 5xx while the keys in hand are fresh. Only a tenant without such a
    /// set answers 503. A body that never completed is refused as late (408).
    pub fn wait_over(self, policy: &Policy, keys: &impl KeySets) -> DecidedVerdict<'p> {
        let denial = match self.outcome {
            Wait::Keys(needed) => match keys.state(needed.tenant) {
                KeySetState::Ready(_) => Denial::Token(TokenError::UnknownKeyRefetchFailed),
                KeySetState::Unavailable(e) => Denial::KeySet(e),
                KeySetState::Loading => Denial::KeySet(KeySetError::Unavailable),
            },
            Wait::Body => Denial::Body(BodyRejection::TimedOut),
        };
        let outcome = refusal(policy, self.client, denial);
        self.with(outcome)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_support::*;

    /// The test policy with `mode: audit` for the whole policy (`global`) and/or for its client.
    pub(crate) fn dry_run_policy(global: bool, client: bool) -> Policy {
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
    fn dry_run_applies_to_the_whole_policy_or_to_the_identified_client() {
        let enforce = dry_run_policy(false, false);
        let client = enforce.clients().first();
        assert!(!is_dry_run(&enforce, None));
        assert!(!is_dry_run(&enforce, client));
        let global = dry_run_policy(true, false);
        assert!(is_dry_run(&global, None));
        assert!(is_dry_run(&global, global.clients().first()));
        let per_client = dry_run_policy(false, true);
        assert!(is_dry_run(&per_client, per_client.clients().first()));
        assert!(!is_dry_run(&per_client, None), "no client, no client mode");
    }

    #[test]
    fn refusal_in_dry_run_forwards_with_the_clients_identity() {
        let policy = dry_run_policy(false, true);
        let client = policy.clients().first();
        let Decided::WouldDeny { denial, identity } =
            refusal(&policy, client, Denial::MissingToken)
        else {
            panic!()
        };
        assert_eq!(denial, Denial::MissingToken);
        let identity = identity.unwrap();
        assert_eq!(identity.client_name, "reporting-bot");
        assert_eq!(identity.app_id, REPORTING_BOT);
        let enforce = dry_run_policy(false, false);
        assert!(matches!(
            refusal(&enforce, enforce.clients().first(), Denial::MissingToken),
            Decided::Deny(Denial::MissingToken)
        ));
        let global = dry_run_policy(true, false);
        assert!(matches!(
            refusal(&global, None, Denial::MissingToken),
            Decided::WouldDeny { identity: None, .. }
        ));
    }

    #[test]
    fn decided_outcomes_say_what_is_forwarded_and_what_is_denied() {
        let denied = Decided::Deny(Denial::MissingToken);
        assert_eq!(denied.forwarded_identity(), None);
        assert_eq!(denied.denial(), Some(&Denial::MissingToken));
        let public = Decided::Allow(None);
        assert_eq!(public.forwarded_identity(), Some(None));
        assert_eq!(public.denial(), None);
        let grant = Grant {
            client_name: "bot",
            app_id: "id",
            upstream_authorization: Some("Bearer pat"),
            matched_rule: "clients[0].allow[0]",
        };
        let identity = Identity {
            client_name: "bot",
            app_id: "id",
            upstream_authorization: Some("Bearer pat"),
        };
        assert_eq!(
            Decided::Allow(Some(grant)).forwarded_identity(),
            Some(Some(identity))
        );
        let flagged = Decided::WouldDeny {
            denial: Denial::MissingToken,
            identity: Some(identity),
        };
        assert_eq!(flagged.forwarded_identity(), Some(Some(identity)));
        assert_eq!(flagged.denial(), Some(&Denial::MissingToken));
    }

    #[test]
    fn a_verdict_splits_into_decided_or_waiting_and_keeps_its_facts() {
        let mut verdict = Verdict::new(Outcome::Decided(Decided::Deny(Denial::MissingToken)));
        verdict.cache_hit = true;
        let decided = verdict.decided().unwrap();
        assert!(decided.cache_hit);
        assert!(matches!(decided.outcome, Decided::Deny(_)));
        let mut waiting = Verdict::new(Outcome::Wait(Wait::Body));
        waiting.cache_hit = true;
        let waiting = waiting.decided().unwrap_err();
        assert!(waiting.cache_hit);
        assert_eq!(waiting.outcome, Wait::Body);
    }

    #[test]
    fn a_body_wait_that_is_over_is_refused_as_late() {
        let policy = policy();
        let over = Verdict::new(Wait::Body).wait_over(&policy, &keys());
        let Decided::Deny(denial) = over.outcome else {
            panic!()
        };
        assert_eq!((denial.status(), denial.code()), (408, "body_timeout"));
        let dry_run = dry_run_policy(true, false);
        assert!(matches!(
            Verdict::new(Wait::Body)
                .wait_over(&dry_run, &keys())
                .outcome,
            Decided::WouldDeny { .. }
        ));
    }
}
