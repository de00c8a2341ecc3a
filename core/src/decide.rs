//! The request pipeline, in order: refuse ambiguous requests (method overrides, non-canonical
//! paths), let public paths through, take the bearer token, verify it, and ask the policy whether
//! this client may make this call. The shell calls [`decide`] once per request (again after a
//! key set it was waiting for arrives) and acts on the [`Decision`].

use crate::denial::Denial;
use crate::jwks::KeySets;
use crate::path::canonical_path;
use crate::policy::{Caller, Grant, Policy, RequestTarget, TenantIndex};
use crate::request::{RequestHead, RequestRejection};
use crate::token::bearer::bearer_token;
use crate::token::verify::{verify_token, VerifiedToken, VerifyFailure};

/// What the shell must do with the request.
// Built once per request and moved at most once: boxing the large variant would only add an
// allocation to every allowed request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Decision<'p> {
    /// Forward to Jira, with the identity headers of the grant (none for a public path).
    Forward(Forwarded<'p>),
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

/// A request that may go on to Jira.
#[derive(Debug)]
pub struct Forwarded<'p> {
    /// The client's grant; `None` when the path is public.
    pub grant: Option<Grant<'p>>,
    /// The verified token behind the grant.
    pub token: Option<VerifiedToken>,
}

/// Decides one request at time `now` (seconds since the epoch).
pub fn decide<'p>(
    policy: &'p Policy,
    head: &RequestHead<'_>,
    keys: &impl KeySets,
    now: i64,
) -> Decision<'p> {
    match decide_inner(policy, head, keys, now) {
        Ok(forwarded) => Decision::Forward(forwarded),
        Err(Outcome::Deny(denial)) => Decision::Deny(denial),
        Err(Outcome::Await { tenant, refetch }) => Decision::AwaitKeys { tenant, refetch },
    }
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
    now: i64,
) -> Result<Forwarded<'p>, Outcome> {
    if head.method.is_empty() || head.path.is_empty() {
        return Err(Denial::Request(RequestRejection::MissingPseudoHeader).into());
    }
    if head.method_overrides.iter().any(|m| *m != head.method) {
        return Err(Denial::Request(RequestRejection::MethodOverride).into());
    }
    let path = canonical_path(head.path).map_err(Denial::Path)?;
    let target = RequestTarget {
        method: head.method,
        path: &path,
    };
    if policy.is_public(&target) {
        return Ok(Forwarded {
            grant: None,
            token: None,
        });
    }
    let token = bearer_token(&head.authorization)?;
    let verified = verify_token(token, policy, keys, now).map_err(|failure| match failure {
        VerifyFailure::Token(e) => Outcome::Deny(Denial::Token(e)),
        VerifyFailure::KeySet(e) => Outcome::Deny(Denial::KeySet(e)),
        VerifyFailure::AwaitKeys { tenant, refetch } => Outcome::Await { tenant, refetch },
    })?;
    let roles = verified.claims.roles.as_deref().unwrap_or_default();
    let caller = Caller {
        tenant: verified.tenant,
        app_id: verified.app_id(),
        credential_type: verified.credential_type(),
        roles,
        delegated: verified.claims.is_delegated(),
    };
    let grant = policy.authorize(&caller, &target).map_err(Denial::Policy)?;
    Ok(Forwarded {
        grant: Some(grant),
        token: Some(verified),
    })
}
