//! Turns a bearer token into a verified caller, or says exactly why not.
//!
//! The order is chosen so that nothing from the token is trusted before its signature is
//! checked with a key and algorithm the filter chose: the issuer only selects which configured
//! tenant's key set to look in, the `kid` only selects a key inside it, and the algorithm is
//! always RS256. Claims are judged after the signature holds.

use std::rc::Rc;

use crate::keys::jwks::{KeyFingerprint, KeySet, KeySetState, KeySets, Refetch, VerificationKey};
use crate::outcome::KeysNeeded;
use crate::policy::{Caller, Policy, TenantIndex, TokenVersion};
use crate::token_cache::SharedText;

use super::claims::EntraClaims;
use super::jws::UntrustedToken;
use super::{TokenError, GRAPH_APP_ID, GRAPH_APP_ID_URI};

/// What a token says and which configured tenant it routes to. On its own it is *not* trusted:
/// only [`verify_token`] wraps it in a [`VerifiedToken`].
#[derive(Debug, Clone)]
pub struct TokenFacts {
    /// The tenant that issued it.
    pub tenant: TenantIndex,
    /// v1 or v2 format.
    pub version: TokenVersion,
    /// All claims the filter reads.
    pub claims: EntraClaims,
    /// `exp`, for caching decisions no longer than the token lives.
    pub expires_at: i64,
    /// How the signing key was selected.
    pub key_id: KeyId,
}

/// The header member that selected the signing key. (Shared text: every cached token signed
/// by one key can point at one copy.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyId {
    /// By `kid`.
    Kid(Rc<str>),
    /// By certificate thumbprint `x5t` (the token named no `kid`).
    X5t(Rc<str>),
}

impl KeyId {
    /// The key of `set` this id selects.
    pub fn select<'s>(&self, set: &'s KeySet) -> Option<&'s VerificationKey> {
        match self {
            KeyId::Kid(kid) => set.by_kid(kid),
            KeyId::X5t(x5t) => set.by_x5t(x5t),
        }
    }
}

/// A token whose signature and claims hold. Only [`verify_token`] makes one.
///
/// It keeps only what later decisions and the audit record read, in owned slices without spare
/// capacity: the verified-token cache holds one per cached token (issuer, audience and the time
/// claims other than `exp` were judged once and are not needed again).
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// The tenant that issued it.
    pub tenant: TenantIndex,
    /// v1 or v2 format.
    pub version: TokenVersion,
    /// `exp`: a cached token is never used after it.
    pub expires_at: i64,
    /// How the signing key was selected.
    pub key_id: KeyId,
    /// The material of the key the signature verified under: a cached token is dropped when
    /// its key id no longer selects that material (the key left the set, or its id now names
    /// other material).
    key_fingerprint: KeyFingerprint,
    // The client's text is the same in every token of that client: shared when cached (see
    // `sharing_text`, called by `TokenCache::insert`), only `uti` is the token's own.
    app_id: Rc<str>,
    credential_type: Option<Rc<str>>,
    roles: Rc<[String]>,
    delegated: bool,
    token_id: Option<Box<str>>,
}

impl VerifiedToken {
    /// Keeps what decisions and the audit record read of facts that have been verified under the
    /// key whose fingerprint is `key_fingerprint`.
    fn from_verified_facts(facts: TokenFacts, key_fingerprint: KeyFingerprint) -> Self {
        VerifiedToken {
            key_fingerprint,
            tenant: facts.tenant,
            version: facts.version,
            expires_at: facts.expires_at,
            app_id: facts.app_id().into(),
            credential_type: facts.credential_type().map(Rc::from),
            delegated: facts.claims.is_delegated(),
            token_id: facts.claims.uti.as_deref().map(Box::from),
            roles: facts.claims.roles.unwrap_or_default().into(),
            key_id: facts.key_id,
        }
    }

    /// The same token with its client's text (app id, credential type, roles, key id) taken
    /// from `shared` where equal text is already there, and added to it otherwise.
    pub(crate) fn sharing_text(mut self, shared: &mut SharedText) -> Self {
        self.app_id = shared.text(&self.app_id);
        self.credential_type = self.credential_type.map(|c| shared.text(&c));
        self.roles = shared.roles(&self.roles);
        self.key_id = match self.key_id {
            KeyId::Kid(kid) => KeyId::Kid(shared.text(&kid)),
            KeyId::X5t(x5t) => KeyId::X5t(shared.text(&x5t)),
        };
        self
    }

    /// Treats facts as verified (by a key of fingerprint zero), for unit tests of code that
    /// consumes verified tokens.
    #[cfg(test)]
    pub(crate) fn assume_verified(facts: TokenFacts) -> Self {
        VerifiedToken::from_verified_facts(facts, KeyFingerprint::default())
    }

    /// True when `set` still publishes, under this token's key id, the very key material its
    /// signature verified under: what a cached verification is bound to. (A small comparison:
    /// the fingerprint was computed once, when the key set was parsed.)
    pub fn signing_key_is_in(&self, set: &KeySet) -> bool {
        self.key_id
            .select(set)
            .is_some_and(|key| *key.fingerprint() == self.key_fingerprint)
    }

    /// The caller the policy judges: tenant, app id, credential type, roles, delegation.
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            tenant: self.tenant,
            app_id: &self.app_id,
            credential_type: self.credential_type.as_deref(),
            roles: &self.roles,
            delegated: self.delegated,
        }
    }

    /// The client application id: `azp` (v2) or `appid` (v1).
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// How the client authenticated to Entra ID: `azpacr` (v2) or `appidacr` (v1).
    pub fn credential_type(&self) -> Option<&str> {
        self.credential_type.as_deref()
    }

    /// The token's unique identifier (`uti`), for the audit record.
    pub fn token_id(&self) -> Option<&str> {
        self.token_id.as_deref()
    }
}

impl TokenFacts {
    /// The caller the policy judges: tenant, app id, credential type, roles, delegation.
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            tenant: self.tenant,
            app_id: self.app_id(),
            credential_type: self.credential_type(),
            roles: self.claims.roles.as_deref().unwrap_or_default(),
            delegated: self.claims.is_delegated(),
        }
    }

    /// The client application id: `azp` (v2) or `appid` (v1). Present by construction.
    pub fn app_id(&self) -> &str {
        self.client_claims().0.unwrap_or_default()
    }

    /// How the client authenticated to Entra ID: `azpacr` (v2) or `appidacr` (v1).
    pub fn credential_type(&self) -> Option<&str> {
        self.client_claims().1
    }

    fn client_claims(&self) -> (Option<&str>, Option<&str>) {
        match self.version {
            TokenVersion::V2 => (self.claims.azp.as_deref(), self.claims.azpacr.as_deref()),
            TokenVersion::V1 => (
                self.claims.appid.as_deref(),
                self.claims.appidacr.as_deref(),
            ),
        }
    }
}

/// Why verification did not produce a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyFailure {
    /// The token is not acceptable (401).
    Token(TokenError),
    /// The tenant's key set is not loaded yet, or lacks the token's key and a fetch may bring
    /// it; decide again once the fetch is done.
    AwaitKeys(KeysNeeded),
    /// The tenant has no usable key set (503).
    KeySet(crate::keys::jwks::KeySetError),
}

impl From<TokenError> for VerifyFailure {
    fn from(e: TokenError) -> Self {
        VerifyFailure::Token(e)
    }
}

/// Verifies a compact JWS access token issued by one of the policy's tenants at time `now`
/// (seconds since the epoch).
pub fn verify_token(
    token: &str,
    policy: &Policy,
    keys: &impl KeySets,
    now: i64,
) -> Result<VerifiedToken, VerifyFailure> {
    let (untrusted, facts) = read(token, policy)?;
    let await_keys = |refetch| {
        VerifyFailure::AwaitKeys(KeysNeeded {
            tenant: facts.tenant,
            refetch,
        })
    };
    let key_set = match keys.state(facts.tenant) {
        KeySetState::Ready(set) => set,
        KeySetState::Loading => return Err(await_keys(false)),
        KeySetState::Unavailable(e) => return Err(VerifyFailure::KeySet(e)),
    };
    let found = facts.key_id.select(key_set);
    // An unknown key may be a rotation this filter has not seen yet: the key set is fetched
    // again (rate-limited) before the token is refused.
    let key = match (found, keys.refetch(facts.tenant)) {
        (Some(key), _) => key,
        (None, Refetch::Allowed) => return Err(await_keys(true)),
        (None, Refetch::InFlight) => return Err(await_keys(false)),
        (None, Refetch::RateLimited) => return Err(TokenError::UnknownKey.into()),
        (None, Refetch::Failed) => return Err(TokenError::UnknownKeyRefetchFailed.into()),
    };
    let signature = untrusted.signature()?;
    if !keys.verify_rs256(key, untrusted.signing_input.as_bytes(), &signature) {
        return Err(TokenError::BadSignature.into());
    }
    check_claims(&facts, policy, now)?;
    Ok(VerifiedToken::from_verified_facts(
        facts,
        *key.fingerprint(),
    ))
}

/// Reads a token's header and claims and routes it to its tenant, checking its claims but
/// *not* its signature: for tools that explain a decision without the key set
/// (`jira-entra-guard check --decode-only`), never for the request path.
pub fn read_unverified(token: &str, policy: &Policy, now: i64) -> Result<TokenFacts, TokenError> {
    let (_, facts) = read(token, policy)?;
    check_claims(&facts, policy, now)?;
    Ok(facts)
}

/// Everything before the key: envelope, algorithm, critical headers, claims types, Graph
/// tokens, issuer, key id.
fn read<'t>(
    token: &'t str,
    policy: &Policy,
) -> Result<(UntrustedToken<'t>, TokenFacts), TokenError> {
    let untrusted = UntrustedToken::parse(token)?;
    let header = &untrusted.header;
    if header.alg != "RS256" {
        return Err(TokenError::UnsupportedAlgorithm);
    }
    if header.has_crit() {
        return Err(TokenError::CriticalHeader);
    }
    let claims = EntraClaims::parse(&untrusted.payload)?;
    if header.has_nonce() || claims.aud.as_ref().is_some_and(is_graph_audience) {
        return Err(TokenError::GraphToken);
    }
    let iss = claims.iss.as_deref().ok_or(TokenError::MissingIssuer)?;
    let (tenant, version) = policy
        .tenant_by_issuer(iss)
        .ok_or(TokenError::UntrustedIssuer)?;
    let key_id = match (&header.kid, &header.x5t) {
        (Some(kid), _) => KeyId::Kid(Rc::from(kid.as_str())),
        (None, Some(x5t)) => KeyId::X5t(Rc::from(x5t.as_str())),
        (None, None) => return Err(TokenError::MissingKeyId),
    };
    let expires_at = claims.exp.unwrap_or_default();
    let facts = TokenFacts {
        tenant,
        version,
        claims,
        expires_at,
        key_id,
    };
    Ok((untrusted, facts))
}

/// The claim checks, judged once the signature holds.
fn check_claims(facts: &TokenFacts, policy: &Policy, now: i64) -> Result<(), TokenError> {
    let claims = &facts.claims;
    let skew = policy.clock_skew_seconds();
    let exp = claims.exp.ok_or(TokenError::MissingExpiry)?;
    if now > exp.saturating_add(skew) {
        return Err(TokenError::Expired);
    }
    if claims.nbf.is_some_and(|nbf| nbf > now.saturating_add(skew)) {
        return Err(TokenError::NotYetValid);
    }
    if claims.iat.is_some_and(|iat| iat > now.saturating_add(skew)) {
        return Err(TokenError::IssuedInFuture);
    }
    // A token that claims a long life keeps a stolen or misissued token (and its cache entry)
    // valid that long: Entra ID never issues one past a day. Checked against now as well, so a
    // token without `iat` is bounded too and no cached verification outlives the ceiling.
    let max_life = policy.max_token_lifetime_seconds();
    let lives_too_long = |from: i64| exp.saturating_sub(from) > max_life;
    if lives_too_long(now) || claims.iat.is_some_and(lives_too_long) {
        return Err(TokenError::LifetimeTooLong);
    }
    let tenant = policy
        .tenants()
        .get(facts.tenant.0)
        .ok_or(TokenError::UntrustedIssuer)?;
    let tid_matches = claims
        .tid
        .as_deref()
        .and_then(crate::guid::Guid::parse)
        .is_some_and(|tid| tid == tenant.tenant_id);
    if !tid_matches {
        return Err(TokenError::TenantMismatch);
    }
    let expected_ver = match facts.version {
        TokenVersion::V1 => "1.0",
        TokenVersion::V2 => "2.0",
    };
    if claims.ver.as_deref().is_some_and(|v| v != expected_ver) {
        return Err(TokenError::VersionMismatch);
    }
    let audience_ok = claims
        .aud
        .as_ref()
        .is_some_and(|aud| aud.any(|a| tenant.audiences.iter().any(|ok| same_audience(ok, a))));
    if !audience_ok {
        return Err(TokenError::WrongAudience);
    }
    if facts.client_claims().0.is_none_or(str::is_empty) {
        return Err(TokenError::MissingClientId);
    }
    Ok(())
}

fn is_graph_audience(aud: &super::claims::Audience) -> bool {
    aud.any(|a| {
        let a = a.trim_end_matches('/');
        a.eq_ignore_ascii_case(GRAPH_APP_ID) || a.eq_ignore_ascii_case(GRAPH_APP_ID_URI)
    })
}

/// Entra ID writes a v1 App ID URI audience with or without one trailing slash, depending on how
/// the client asked for the token; both name the same API. Two slashes name another URI, and an
/// application id (a GUID, no scheme) never carries a slash.
fn same_audience(configured: &str, presented: &str) -> bool {
    if presented == configured {
        return true;
    }
    if !configured.contains("://") {
        return false;
    }
    let base = configured.strip_suffix('/').unwrap_or(configured);
    presented == base || presented.strip_suffix('/') == Some(base)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::test_support::*;

    fn verify(token: &str) -> Result<VerifiedToken, VerifyFailure> {
        verify_token(token, &policy(), &keys(), NOW)
    }

    fn with(mut claims: Value, name: &str, value: Value) -> Value {
        claims[name] = value;
        claims
    }

    fn without(mut claims: Value, name: &str) -> Value {
        claims.as_object_mut().unwrap().remove(name);
        claims
    }

    fn rejected(token: &str) -> TokenError {
        match verify(token) {
            Err(VerifyFailure::Token(e)) => e,
            other => panic!("expected a token error, got {other:?}"),
        }
    }

    #[test]
    fn valid_v2_token_is_accepted() {
        let t = verify(&sign(&key("a"), &header("key-a"), &v2_claims())).unwrap();
        assert_eq!(t.tenant, TenantIndex(0));
        assert_eq!(t.version, TokenVersion::V2);
        assert_eq!(t.app_id(), REPORTING_BOT);
        assert_eq!(t.credential_type(), Some("2"));
        assert_eq!(t.expires_at, NOW + 3300);
    }

    #[test]
    fn tokens_of_one_client_share_their_text() {
        let mut shared = SharedText::default();
        let mut tokens = ["uti-1", "uti-2"].map(|uti| {
            let claims = with(v2_claims(), "uti", json!(uti));
            let t = verify(&sign(&key("a"), &header("key-a"), &claims)).unwrap();
            Some(t.sharing_text(&mut shared))
        });
        let (a, b) = (tokens[0].take().unwrap(), tokens[1].take().unwrap());
        assert!(Rc::ptr_eq(&a.app_id, &b.app_id));
        assert!(Rc::ptr_eq(&a.roles, &b.roles));
        match (&a.key_id, &b.key_id) {
            (KeyId::Kid(x), KeyId::Kid(y)) => assert!(Rc::ptr_eq(x, y)),
            other => panic!("{other:?}"),
        }
        assert_eq!((a.token_id(), b.token_id()), (Some("uti-1"), Some("uti-2")));
        assert_eq!(a.caller().app_id, REPORTING_BOT);
    }

    #[test]
    fn verified_token_keeps_what_decisions_and_audit_read() {
        let claims = with(v2_claims(), "uti", json!("token-id"));
        let t = verify(&sign(&key("a"), &header("key-a"), &claims)).unwrap();
        assert_eq!(t.token_id(), Some("token-id"));
        assert_eq!(t.key_id, KeyId::Kid("key-a".into()));
        let caller = t.caller();
        assert_eq!(caller.app_id, REPORTING_BOT);
        assert_eq!(caller.credential_type, Some("2"));
        assert_eq!(caller.roles, ["Jira.Read".to_owned()]);
        assert!(!caller.delegated);
    }

    #[test]
    fn valid_v1_token_is_accepted_with_appid() {
        let h = json!({"typ": "JWT", "alg": "RS256", "x5t": "key-b", "kid": "key-b"});
        let t = verify(&sign(&key("b"), &h, &v1_claims())).unwrap();
        assert_eq!(t.version, TokenVersion::V1);
        assert_eq!(t.app_id(), REPORTING_BOT);
    }

    #[test]
    fn v1_audience_with_trailing_slash_is_the_same_api() {
        let c = with(v1_claims(), "aud", json!("api://jira-gateway/"));
        assert!(verify(&sign(&key("a"), &header("key-a"), &c)).is_ok());
    }

    #[test]
    fn key_is_selected_by_x5t_when_there_is_no_kid() {
        let h = json!({"alg": "RS256", "x5t": "key-b"});
        assert!(verify(&sign(&key("b"), &h, &v2_claims())).is_ok());
    }

    #[test]
    fn expired_token_outside_leeway_is_rejected() {
        let c = with(v2_claims(), "exp", json!(NOW - 61));
        assert_eq!(
            rejected(&sign(&key("a"), &header("key-a"), &c)),
            TokenError::Expired
        );
    }

    #[test]
    fn expired_token_inside_leeway_is_accepted() {
        let c = with(v2_claims(), "exp", json!(NOW - 60));
        assert!(verify(&sign(&key("a"), &header("key-a"), &c)).is_ok());
    }

    #[test]
    fn not_yet_valid_token_outside_leeway_is_rejected() {
        let c = with(v2_claims(), "nbf", json!(NOW + 61));
        assert_eq!(
            rejected(&sign(&key("a"), &header("key-a"), &c)),
            TokenError::NotYetValid
        );
        let c = with(v2_claims(), "nbf", json!(NOW + 60));
        assert!(verify(&sign(&key("a"), &header("key-a"), &c)).is_ok());
    }

    #[test]
    fn token_issued_in_the_future_is_rejected() {
        let c = with(v2_claims(), "iat", json!(NOW + 3600));
        assert_eq!(
            rejected(&sign(&key("a"), &header("key-a"), &c)),
            TokenError::IssuedInFuture
        );
    }

    #[test]
    fn iat_future_bound_is_the_clock_skew_exactly() {
        let c = with(v2_claims(), "iat", json!(NOW + 61));
        assert_eq!(
            rejected(&sign(&key("a"), &header("key-a"), &c)),
            TokenError::IssuedInFuture
        );
        let c = with(v2_claims(), "iat", json!(NOW + 60));
        assert!(verify(&sign(&key("a"), &header("key-a"), &c)).is_ok());
    }

    #[test]
    fn token_size_limit_is_exactly_8_kib() {
        let max = super::super::jws::MAX_TOKEN_BYTES;
        assert_eq!(max, 8 * 1024);
        // At the limit the size check passes and the next check speaks.
        assert_eq!(rejected(&"a".repeat(max)), TokenError::NotCompactJws);
        assert_eq!(rejected(&"a".repeat(max + 1)), TokenError::TooLarge);
        // A genuinely signed token of exactly the limit verifies; one byte longer does not.
        // (Lengths are computed first: signing is slow in a debug build.)
        let claims = |pad: usize| with(v2_claims(), "pad", json!("p".repeat(pad))).to_string();
        let head = |filler: usize| {
            json!({"typ": "JWT", "alg": "RS256", "kid": "key-a", "x": "x".repeat(filler)})
                .to_string()
        };
        let signature_chars = 342; // 256 bytes, unpadded base64url
        let length = |pad: usize, filler: usize| {
            b64(head(filler)).len() + 1 + b64(claims(pad)).len() + 1 + signature_chars
        };
        let sized = |target: usize| {
            let estimate = (target - length(0, 0)) * 3 / 4;
            let (pad, filler) = (estimate.saturating_sub(8)..estimate + 8)
                .flat_map(|pad| (0..4).map(move |filler| (pad, filler)))
                .find(|&(pad, filler)| length(pad, filler) == target)
                .unwrap();
            let t = sign_raw(&key("a"), &head(filler), &claims(pad));
            assert_eq!(t.len(), target);
            t
        };
        assert!(verify(&sized(max)).is_ok());
        assert_eq!(rejected(&sized(max + 1)), TokenError::TooLarge);
    }

    #[test]
    fn every_repeated_member_the_filter_reads_is_refused() {
        // Each name once more, after the original, with a value that would change the decision.
        let header_names = ["alg", "kid", "x5t", "crit", "nonce"];
        for name in header_names {
            let mut h = r#"{"typ":"JWT","alg":"RS256","kid":"key-a","x5t":"key-a""#.to_owned();
            if !h.contains(&format!(r#""{name}""#)) {
                h = format!(r#"{h},"{name}":"first""#);
            }
            let h = format!(r#"{h},"{name}":"key-b"}}"#);
            let t = sign_raw(&key("a"), &h, &v2_claims().to_string());
            assert_eq!(rejected(&t), TokenError::MalformedHeader, "header {name}");
        }
        let claim_names = [
            "iss", "aud", "exp", "nbf", "iat", "tid", "ver", "azp", "azpacr", "appid", "appidacr",
            "roles", "scp", "idtyp", "uti", "oid",
        ];
        for name in claim_names {
            let claims = v2_claims().to_string();
            let value = match name {
                "exp" | "nbf" | "iat" => json!(NOW),
                "roles" => json!(["Jira.Admin"]),
                _ => json!("other"),
            };
            let mut claims = claims.trim_end_matches('}').to_owned();
            if !claims.contains(&format!(r#""{name}""#)) {
                claims = format!(r#"{claims},"{name}":{value}"#);
            }
            let dup = format!(r#"{claims},"{name}":{value}}}"#);
            let t = sign_raw(&key("a"), &header("key-a").to_string(), &dup);
            assert_eq!(rejected(&t), TokenError::MalformedClaims, "claim {name}");
        }
    }

    fn lifetime_rejection(claims: &Value, max: Option<i64>) -> Option<TokenError> {
        let mut document = policy_json();
        if let Some(max) = max {
            document["max_token_lifetime_seconds"] = json!(max);
        }
        let policy = crate::config::compile_policy(document.to_string().as_bytes(), &|_| None);
        let token = sign(&key("a"), &header("key-a"), claims);
        match verify_token(&token, &policy.unwrap(), &keys(), NOW) {
            Ok(_) => None,
            Err(VerifyFailure::Token(e)) => Some(e),
            Err(other) => panic!("{other:?}"),
        }
    }

    fn lifetime(iat: Option<i64>, exp: i64) -> Value {
        let c = with(v2_claims(), "exp", json!(exp));
        match iat {
            Some(iat) => with(c, "iat", json!(iat)),
            None => without(c, "iat"),
        }
    }

    #[test]
    fn token_claiming_more_than_a_day_of_life_is_refused() {
        let day = 86_400;
        let too_long = Some(TokenError::LifetimeTooLong);
        // exp - iat, at the ceiling and one second past it.
        assert_eq!(
            lifetime_rejection(&lifetime(Some(NOW), NOW + day), None),
            None
        );
        assert_eq!(
            lifetime_rejection(&lifetime(Some(NOW - 1), NOW + day), None),
            too_long
        );
        // An old iat with a near exp: the whole claimed life counts, not what is left of it.
        assert_eq!(
            lifetime_rejection(&lifetime(Some(NOW - day), NOW + 1), None),
            too_long
        );
        // exp - now, when there is no iat to measure from.
        assert_eq!(lifetime_rejection(&lifetime(None, NOW + day), None), None);
        assert_eq!(
            lifetime_rejection(&lifetime(None, NOW + day + 1), None),
            too_long
        );
        // exp - now, when iat claims a later issue than it could have had.
        assert_eq!(
            lifetime_rejection(&lifetime(Some(NOW + 60), NOW + day + 60), None),
            too_long
        );
    }

    #[test]
    fn lifetime_ceiling_is_configurable() {
        let hour = 3_600;
        let too_long = Some(TokenError::LifetimeTooLong);
        let claims = lifetime(Some(NOW - 300), NOW + hour - 300);
        assert_eq!(lifetime_rejection(&claims, Some(hour)), None);
        let claims = lifetime(Some(NOW - 301), NOW + hour - 300);
        assert_eq!(lifetime_rejection(&claims, Some(hour)), too_long);
        assert_eq!(
            lifetime_rejection(&lifetime(None, NOW + hour + 1), Some(hour)),
            too_long
        );
    }

    #[test]
    fn missing_exp_is_rejected() {
        let c = without(v2_claims(), "exp");
        assert_eq!(
            rejected(&sign(&key("a"), &header("key-a"), &c)),
            TokenError::MissingExpiry
        );
    }

    #[test]
    fn time_claims_of_the_wrong_type_are_rejected_after_signing() {
        for value in [json!("9999999999"), json!(9_999_999_999.0_f64), Value::Null] {
            let c = with(v2_claims(), "exp", value.clone());
            assert_eq!(
                rejected(&sign(&key("a"), &header("key-a"), &c)),
                TokenError::MalformedClaims,
                "{value}"
            );
        }
    }

    #[test]
    fn every_algorithm_but_rs256_is_rejected() {
        for alg in [
            "none", "None", "NONE", "nOnE", "HS256", "HS384", "HS512", "ES256", "PS256", "RS384",
            "RS512", "rs256", "",
        ] {
            let h = json!({"alg": alg, "kid": "key-a"});
            assert_eq!(
                rejected(&sign(&key("a"), &h, &v2_claims())),
                TokenError::UnsupportedAlgorithm,
                "{alg}"
            );
        }
    }

    #[test]
    fn hmac_signed_with_the_public_key_is_rejected() {
        // The classic key-confusion attack: the header says HS256 and the "secret" is the RSA
        // public key. The verifier never lets the header pick the algorithm.
        let h = json!({"alg": "HS256", "kid": "key-a"});
        let t = format!(
            "{}.{}.{}",
            b64(h.to_string()),
            b64(v2_claims().to_string()),
            b64([0u8; 32])
        );
        assert_eq!(rejected(&t), TokenError::UnsupportedAlgorithm);
    }

    #[test]
    fn crit_header_is_rejected() {
        let h = json!({"alg": "RS256", "kid": "key-a", "crit": ["exp"]});
        assert_eq!(
            rejected(&sign(&key("a"), &h, &v2_claims())),
            TokenError::CriticalHeader
        );
    }

    #[test]
    fn header_supplied_keys_are_ignored() {
        let attacker = key("attacker");
        let h = json!({"alg": "RS256", "kid": "key-a", "jwk": jwk("key-a", &attacker),
                       "jku": "https://evil.example/keys", "x5u": "https://evil.example/cert"});
        assert_eq!(
            rejected(&sign(&attacker, &h, &v2_claims())),
            TokenError::BadSignature
        );
    }

    #[test]
    fn known_kid_with_an_attackers_signature_is_rejected() {
        assert_eq!(
            rejected(&sign(&key("attacker"), &header("key-a"), &v2_claims())),
            TokenError::BadSignature
        );
    }

    #[test]
    fn unknown_kid_is_rejected() {
        for kid in ["nope", "../../etc/passwd", "' OR 1=1 --", &"k".repeat(2000)] {
            assert_eq!(
                rejected(&sign(&key("a"), &header(kid), &v2_claims())),
                TokenError::UnknownKey
            );
        }
    }

    #[test]
    fn missing_kid_and_x5t_is_rejected() {
        let h = json!({"alg": "RS256"});
        assert_eq!(
            rejected(&sign(&key("a"), &h, &v2_claims())),
            TokenError::MissingKeyId
        );
    }

    #[test]
    fn verified_token_is_bound_to_the_material_of_its_key_not_its_name() {
        let t = verify(&sign(&key("a"), &header("key-a"), &v2_claims())).unwrap();
        let set = |entries: Vec<Value>| {
            crate::keys::jwks::parse_jwks(json!({ "keys": entries }).to_string().as_bytes())
                .unwrap()
        };
        assert!(t.signing_key_is_in(&set(vec![jwk("key-a", &key("a"))])));
        assert!(
            !t.signing_key_is_in(&set(vec![jwk("key-a", &key("b"))])),
            "same kid, other material"
        );
        assert!(
            !t.signing_key_is_in(&set(vec![jwk("key-b", &key("a"))])),
            "same material, the kid gone"
        );
        // Selected by x5t: the same binding.
        let h = json!({"alg": "RS256", "x5t": "key-b"});
        let t = verify(&sign(&key("b"), &h, &v2_claims())).unwrap();
        assert!(t.signing_key_is_in(&set(vec![jwk("key-b", &key("b"))])));
        assert!(!t.signing_key_is_in(&set(vec![jwk("key-b", &key("a"))])));
    }

    #[test]
    fn tenant_keys_are_isolated() {
        // Tenant 1 publishes key `a` only as "shared-a"; "key-a" and "key-b" are tenant 0's.
        // Tenant 1's token naming tenant 0's kid is signed by a key tenant 1 does not publish.
        let mut c = v2_claims();
        c["iss"] = json!(format!(
            "https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"
        ));
        c["tid"] = json!(OTHER_TENANT);
        c["aud"] = json!("api://jira-gateway");
        for (signer, kid) in [("a", "key-a"), ("b", "key-b")] {
            assert_eq!(
                rejected(&sign(&key(signer), &header(kid), &c)),
                TokenError::UnknownKey,
                "{kid}"
            );
        }
        // And tenant 0's token naming tenant 1's kid.
        assert_eq!(
            rejected(&sign(&key("a"), &header("shared-a"), &v2_claims())),
            TokenError::UnknownKey
        );
    }

    #[test]
    fn flipped_truncated_or_stripped_signature_is_rejected() {
        let t = sign(&key("a"), &header("key-a"), &v2_claims());
        let (input, sig) = t.rsplit_once('.').unwrap();
        let mut raw = URL_SAFE_NO_PAD_DECODE(sig);
        raw[17] ^= 0x01;
        assert_eq!(
            rejected(&format!("{input}.{}", b64(&raw))),
            TokenError::BadSignature
        );
        let raw = URL_SAFE_NO_PAD_DECODE(sig);
        assert_eq!(
            rejected(&format!("{input}.{}", b64(&raw[..255]))),
            TokenError::BadSignature
        );
        assert_eq!(rejected(&format!("{input}.")), TokenError::BadEncoding);
    }

    #[allow(non_snake_case)]
    fn URL_SAFE_NO_PAD_DECODE(s: &str) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .unwrap()
    }

    #[test]
    fn swapped_payload_under_a_valid_signature_is_rejected() {
        let good = sign(&key("a"), &header("key-a"), &v2_claims());
        let other = with(
            v2_claims(),
            "azp",
            json!("8d1e7c62-2f4b-4d57-8a0e-7c0a55a1b202"),
        );
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], b64(other.to_string()), parts[2]);
        assert_eq!(rejected(&forged), TokenError::BadSignature);
        let header_b = b64(header("key-b").to_string());
        let forged = format!("{header_b}.{}.{}", parts[1], parts[2]);
        assert_eq!(rejected(&forged), TokenError::BadSignature);
    }

    #[test]
    fn issuer_must_be_a_configured_tenant() {
        for iss in [
            json!("https://login.microsoftonline.com/11111111-1111-1111-1111-111111111111/v2.0"),
            json!(format!("https://login.microsoftonline.com/{TENANT}/v2.0/")),
            json!(format!("https://sts.windows.net/{TENANT}")),
            json!("https://evil.example/"),
        ] {
            let c = with(v2_claims(), "iss", iss.clone());
            assert_eq!(
                rejected(&sign(&key("a"), &header("key-a"), &c)),
                TokenError::UntrustedIssuer,
                "{iss}"
            );
        }
        let c = without(v2_claims(), "iss");
        assert_eq!(
            rejected(&sign(&key("a"), &header("key-a"), &c)),
            TokenError::MissingIssuer
        );
        let c = with(v2_claims(), "iss", json!(["a"]));
        assert_eq!(
            rejected(&sign(&key("a"), &header("key-a"), &c)),
            TokenError::MalformedClaims
        );
    }

    #[test]
    fn tid_must_equal_the_issuers_tenant() {
        let c = with(v2_claims(), "tid", json!(OTHER_TENANT));
        assert_eq!(
            rejected(&sign(&key("a"), &header("key-a"), &c)),
            TokenError::TenantMismatch
        );
        let c = without(v2_claims(), "tid");
        assert_eq!(
            rejected(&sign(&key("a"), &header("key-a"), &c)),
            TokenError::TenantMismatch
        );
    }

    #[test]
    fn another_tenants_token_signed_by_a_shared_key_stays_in_its_tenant() {
        // Microsoft signs many tenants' tokens with the same keys: a token of tenant 1 verifies
        // with the shared key, and is then that tenant's token, never tenant 0's.
        let mut c = v2_claims();
        c["iss"] = json!(format!(
            "https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"
        ));
        c["tid"] = json!(OTHER_TENANT);
        c["aud"] = json!("api://jira-gateway");
        let t = verify(&sign(&key("a"), &header("shared-a"), &c)).unwrap();
        assert_eq!(t.tenant, TenantIndex(1));
        // The same token naming tenant 0's issuer but tenant 1's tid is refused.
        c["iss"] = json!(format!("https://login.microsoftonline.com/{TENANT}/v2.0"));
        assert_eq!(
            rejected(&sign(&key("a"), &header("key-a"), &c)),
            TokenError::TenantMismatch
        );
    }

    #[test]
    fn audience_must_be_configured() {
        for aud in [json!("api://other"), json!(["api://other", "x"]), json!([])] {
            let c = with(v2_claims(), "aud", aud.clone());
            assert_eq!(
                rejected(&sign(&key("a"), &header("key-a"), &c)),
                TokenError::WrongAudience,
                "{aud}"
            );
        }
        let c = with(
            v2_claims(),
            "aud",
            json!(["api://other", "api://jira-gateway"]),
        );
        assert!(verify(&sign(&key("a"), &header("key-a"), &c)).is_ok());
    }

    #[test]
    fn graph_tokens_are_refused_with_a_reason_saying_so() {
        let c = with(v2_claims(), "aud", json!(GRAPH_APP_ID));
        assert_eq!(
            rejected(&sign(&key("a"), &header("key-a"), &c)),
            TokenError::GraphToken
        );
        let c = with(v2_claims(), "aud", json!("https://graph.microsoft.com/"));
        assert_eq!(
            rejected(&sign(&key("a"), &header("key-a"), &c)),
            TokenError::GraphToken
        );
        let h = json!({"alg": "RS256", "kid": "key-a", "nonce": "abc"});
        assert_eq!(
            rejected(&sign(&key("a"), &h, &v2_claims())),
            TokenError::GraphToken
        );
    }

    #[test]
    fn client_id_claim_must_match_the_version() {
        let c = without(v2_claims(), "azp");
        assert_eq!(
            rejected(&sign(&key("a"), &header("key-a"), &c)),
            TokenError::MissingClientId
        );
        let c = without(v1_claims(), "appid");
        assert_eq!(
            rejected(&sign(&key("a"), &header("key-a"), &c)),
            TokenError::MissingClientId
        );
        let c = with(v2_claims(), "ver", json!("1.0"));
        assert_eq!(
            rejected(&sign(&key("a"), &header("key-a"), &c)),
            TokenError::VersionMismatch
        );
    }

    #[test]
    fn duplicate_claims_under_a_valid_signature_are_rejected() {
        let claims = v2_claims().to_string();
        let dup = format!(
            "{},\"exp\":{}}}",
            claims.trim_end_matches('}'),
            NOW + 999_999
        );
        let t = sign_raw(&key("a"), &header("key-a").to_string(), &dup);
        assert_eq!(rejected(&t), TokenError::MalformedClaims);
    }

    #[test]
    fn request_waits_while_the_tenants_keys_load() {
        let keys = fixed_keys(vec![None, None]);
        let t = sign(&key("a"), &header("key-a"), &v2_claims());
        assert_eq!(
            verify_token(&t, &policy(), &keys, NOW).unwrap_err(),
            VerifyFailure::AwaitKeys(KeysNeeded {
                tenant: TenantIndex(0),
                refetch: false
            })
        );
    }

    #[test]
    fn unknown_kid_asks_for_a_refetch_when_the_rate_limit_allows() {
        let mut keys = keys();
        keys.set_refetch(Refetch::Allowed);
        let t = sign(&key("a"), &header("rotated-in"), &v2_claims());
        assert_eq!(
            verify_token(&t, &policy(), &keys, NOW).unwrap_err(),
            VerifyFailure::AwaitKeys(KeysNeeded {
                tenant: TenantIndex(0),
                refetch: true
            })
        );
        keys.set_refetch(Refetch::InFlight);
        assert_eq!(
            verify_token(&t, &policy(), &keys, NOW).unwrap_err(),
            VerifyFailure::AwaitKeys(KeysNeeded {
                tenant: TenantIndex(0),
                refetch: false
            })
        );
        // A known kid never waits for a refetch.
        let t = sign(&key("a"), &header("key-a"), &v2_claims());
        assert!(verify_token(&t, &policy(), &keys, NOW).is_ok());
    }

    #[test]
    fn unknown_kid_while_the_key_server_fails_is_refused_at_once_with_its_own_cause() {
        let mut keys = keys();
        keys.set_refetch(Refetch::Failed);
        let t = sign(&key("a"), &header("rotated-in"), &v2_claims());
        assert_eq!(
            verify_token(&t, &policy(), &keys, NOW).unwrap_err(),
            VerifyFailure::Token(TokenError::UnknownKeyRefetchFailed)
        );
        // A known kid is verified as usual.
        let t = sign(&key("a"), &header("key-a"), &v2_claims());
        assert!(verify_token(&t, &policy(), &keys, NOW).is_ok());
    }
}
