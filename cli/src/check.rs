//! One request decided without Envoy, by the filter's own code.
//!
//! With a token and key-set files the decision is the core's [`decide_with_body`] as the filter
//! runs it. Without a signature check (`--decode-only`) it is the core's [`decide_unverified`],
//! and without a token at all (`--app-id`) the core's [`decide_as`]: the same steps before the
//! token (missing method or path, method overrides, path canonicalisation, public paths) and
//! the same policy. In every case what is printed is the core's [`Outcome`], the dry-run rule
//! (a denial in audit mode is only logged) already applied.
//!
//! A body given with `--body` is handed to the decision as the filter hands it a buffered body
//! (with `Content-Type: application/json` unless a `--header` says otherwise); the JQL of a
//! `GET …/search` is read from the path's query string. The output says which path key, body
//! field or JQL clause decided the projects.

use jira_entra_guard_core::cloud::issuing_clouds;
use jira_entra_guard_core::decide::{decide_as, decide_unverified, decide_with_body};
use jira_entra_guard_core::keys::jwks::KeySetError;
use jira_entra_guard_core::outcome::{is_dry_run, Decided, Outcome, Verdict as CoreVerdict, Wait};
use jira_entra_guard_core::path::canonical_path;
use jira_entra_guard_core::policy::scope::RequestBody;
use jira_entra_guard_core::policy::{
    Caller, Mode, Policy, ProjectScope, RequestTarget, TenantIndex,
};
use jira_entra_guard_core::request::{RequestHead, METHOD_OVERRIDE_HEADERS};
use jira_entra_guard_core::token::claims::EntraClaims;
use jira_entra_guard_core::token::jws::UntrustedToken;
use jira_entra_guard_core::token::verify::read_unverified;
use jira_entra_guard_core::token::TokenError;
use jira_entra_guard_core::token_cache::TokenCache;

use jira_entra_guard_core::keys::fixed::FixedKeySets;

/// The request to decide, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `:method`.
    pub method: String,
    /// `:path`, with any query string.
    pub path: String,
    /// `Authorization` header values from `--header`.
    pub authorization: Vec<String>,
    /// Method-override header values from `--header`.
    pub method_overrides: Vec<String>,
    /// `Content-Type` values from `--header`.
    pub content_type: Vec<String>,
    /// True when `--header` gave a `Content-Encoding`.
    pub content_encoding: bool,
    /// The body from `--body`, when given.
    pub body: Option<Vec<u8>>,
}

impl Request {
    /// Adds a `--header 'Name: value'`; only the headers the filter reads are kept.
    pub fn add_header(&mut self, header: &str) -> Result<(), String> {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("--header {header:?}: expected 'Name: value'"))?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_owned();
        if name == "authorization" {
            self.authorization.push(value);
        } else if METHOD_OVERRIDE_HEADERS.contains(&name.as_str()) {
            self.method_overrides.push(value);
        } else if name == "content-type" {
            self.content_type.push(value);
        } else if name == "content-encoding" {
            self.content_encoding = true;
        }
        Ok(())
    }

    /// The body as the filter hands it to the decision.
    fn request_body(&self) -> RequestBody<'_> {
        self.body
            .as_deref()
            .map_or(RequestBody::Unread, RequestBody::Complete)
    }

    fn head(&self, with_authorization: bool) -> RequestHead<'_> {
        RequestHead {
            method: &self.method,
            path: &self.path,
            authorization: if with_authorization {
                self.authorization.iter().map(String::as_str).collect()
            } else {
                Vec::new()
            },
            method_overrides: self.method_overrides.iter().map(String::as_str).collect(),
            content_type: self.content_type.iter().map(String::as_str).collect(),
            content_encoding: self.content_encoding,
        }
    }
}

/// Who is calling.
pub enum Identity {
    /// A bearer token (already added to [`Request::authorization`]).
    Token {
        /// The token itself, for reading its claims.
        token: String,
        /// The key sets to verify it with; `None` decodes the claims without any check.
        keys: Option<FixedKeySets>,
        /// The time to judge `exp`/`nbf`/`iat` at, seconds since the epoch.
        now: i64,
    },
    /// An authenticated client described by flags instead of a token.
    AppId {
        /// The client's application id.
        app_id: String,
        /// The client's tenant.
        tenant: TenantIndex,
        /// The token's `roles`.
        roles: Vec<String>,
        /// `azpacr`/`appidacr`: `2` certificate, `1` secret, `0` public client.
        credential: &'static str,
    },
}

/// How the caller was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The token's signature and claims were verified against the key-set files.
    Signature,
    /// The token was decoded and nothing in it was checked.
    DecodeOnly,
    /// The caller came from `--app-id`.
    Flags,
}

impl Verification {
    /// The word used in the output.
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Signature => "signature",
            Verification::DecodeOnly => "decode-only",
            Verification::Flags => "app-id",
        }
    }
}

/// The outcome, ready to print.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// True when the request goes on to Jira.
    pub allowed: bool,
    /// The status of the filter's local reply; `None` when the request goes on to Jira.
    pub status: Option<u16>,
    /// Why it was refused: description and stable code.
    pub reason: Option<(&'static str, &'static str)>,
    /// The rule that let the request through (`clients[1].allow[0]`, `public_paths[0]`).
    pub rule: Option<String>,
    /// The configured client the caller is, when it is one.
    pub client: Option<String>,
    /// That client's application id.
    pub app_id: Option<String>,
    /// Whether the filter enforces this decision or only logs it (`audit`).
    pub mode: Mode,
    /// True when Jira receives the client's own `Authorization` value from the environment.
    pub upstream_authorization: bool,
    /// How the caller was established.
    pub verification: Verification,
    /// What decided the request's projects (a path key, a body field, a JQL clause), when a
    /// rule with `projects` needed them.
    pub projects: Option<String>,
    /// Lines that qualify the result.
    pub notes: Vec<String>,
}

/// Decides `request` made by `identity` under `policy`.
pub fn evaluate(
    policy: &Policy,
    request: &Request,
    identity: &Identity,
) -> Result<Verdict, String> {
    match identity {
        Identity::Token {
            token,
            keys: Some(keys),
            now,
        } => {
            let mut verdict = verified(policy, request, token, keys, *now)?;
            note_issuer_of_another_cloud(policy, token, &mut verdict);
            Ok(verdict)
        }
        Identity::Token {
            token,
            keys: None,
            now,
        } => {
            let mut verdict = decode_only(policy, request, *now)?;
            verdict.notes.insert(
                0,
                "warning: --decode-only: the token's signature was NOT checked; its claims, the request checks and the ACL were".into(),
            );
            note_issuer_of_another_cloud(policy, token, &mut verdict);
            Ok(verdict)
        }
        Identity::AppId {
            app_id,
            tenant,
            roles,
            credential,
        } => {
            let caller = Caller {
                tenant: *tenant,
                app_id,
                credential_type: Some(credential),
                roles,
                delegated: false,
            };
            let core = decide_as(
                policy,
                &request.head(false),
                request.request_body(),
                &caller,
            );
            report(policy, request, core, Verification::Flags)
        }
    }
}

/// When a token is refused for its issuer and that issuer is how another Microsoft cloud issues
/// tokens of a configured tenant, says so: the usual cause is a tenant configured with the wrong
/// `cloud`.
fn note_issuer_of_another_cloud(policy: &Policy, token: &str, verdict: &mut Verdict) {
    if verdict.reason.map(|(_, code)| code) != Some(TokenError::UntrustedIssuer.code()) {
        return;
    }
    let Some(iss) = UntrustedToken::parse(token)
        .ok()
        .and_then(|untrusted| EntraClaims::parse(&untrusted.payload).ok())
        .and_then(|claims| claims.iss)
    else {
        return;
    };
    for (index, tenant) in policy.tenants().iter().enumerate() {
        let clouds = issuing_clouds(&iss, tenant.tenant_id);
        if clouds.is_empty() {
            continue;
        }
        let names: Vec<&str> = clouds.iter().map(|cloud| cloud.name()).collect();
        verdict.notes.push(format!(
            "note: {iss:?} is the {} cloud's issuer for tenant {}, which is configured with cloud {:?} (tenants[{index}].cloud)",
            names.join(" or "),
            tenant.tenant_id,
            tenant.cloud.name()
        ));
    }
}

/// The filter's own decision, signature included. A single decision has nothing to cache.
fn verified(
    policy: &Policy,
    request: &Request,
    token: &str,
    keys: &FixedKeySets,
    now: i64,
) -> Result<Verdict, String> {
    let core = decide_with_body(
        policy,
        &request.head(true),
        request.request_body(),
        keys,
        &mut TokenCache::disabled(),
        now,
    );
    let mut verdict = report(policy, request, core, Verification::Signature)?;
    if verdict.reason.map(|(_, code)| code) == Some(KeySetError::Unavailable.code()) {
        if let Ok(token) = read_unverified(token, policy, now) {
            if !keys.has(token.tenant) {
                let tenant = tenant_id(policy, token.tenant);
                verdict.notes.push(format!(
                    "note: no --jwks key set was given for tenant {tenant}, the token's issuer"
                ));
            }
        }
    }
    Ok(verdict)
}

/// The request checks, the claim checks and the ACL for the token, its signature unchecked.
fn decode_only(policy: &Policy, request: &Request, now: i64) -> Result<Verdict, String> {
    let core = decide_unverified(policy, &request.head(true), request.request_body(), now);
    report(policy, request, core, Verification::DecodeOnly)
}

/// Turns the core's outcome into what is printed.
fn report(
    policy: &Policy,
    request: &Request,
    core: CoreVerdict<'_>,
    verification: Verification,
) -> Result<Verdict, String> {
    let client = core.client;
    let mut verdict = Verdict {
        allowed: true,
        status: None,
        reason: None,
        rule: None,
        client: client.map(|c| c.name().to_owned()),
        app_id: client.map(|c| c.app_id_text().to_owned()),
        mode: Mode::Enforce,
        upstream_authorization: false,
        verification,
        projects: core.scope.as_ref().map(ProjectScope::explain),
        notes: Vec::new(),
    };
    let decided = match core.outcome {
        Outcome::Decided(decided) => decided,
        Outcome::Wait(Wait::Keys(_)) => {
            return Err("the decision waits for a key set, which files and flags never do".into())
        }
        Outcome::Wait(Wait::Body) => {
            verdict.allowed = false;
            verdict.reason = Some((
                "a rule with `projects` applies and this call names its projects in its body: give the body with --body FILE",
                "body_required",
            ));
            return Ok(verdict);
        }
    };
    match &decided {
        Decided::Allow(grant) => {
            match grant {
                Some(grant) => {
                    verdict.rule = Some(grant.matched_rule.to_owned());
                    verdict.client = Some(grant.client_name.to_owned());
                    verdict.app_id = Some(grant.app_id.to_owned());
                    verdict.upstream_authorization = grant.upstream_authorization.is_some();
                }
                None => {
                    verdict.rule = canonical_path(&request.path).ok().and_then(|path| {
                        policy
                            .public_rule(&RequestTarget {
                                method: &request.method,
                                path: &path,
                            })
                            .map(str::to_owned)
                    });
                }
            }
            // An allowed call is the same in both modes; the configured mode is shown.
            if is_dry_run(policy, client) {
                verdict.mode = Mode::Audit;
            }
        }
        Decided::Deny(denial) | Decided::WouldDeny { denial, .. } => {
            verdict.allowed = false;
            verdict.status = Some(denial.status());
            verdict.reason = Some((denial.description(), denial.code()));
            if let Decided::WouldDeny { .. } = decided {
                verdict.mode = Mode::Audit;
            }
        }
    }
    Ok(verdict)
}

/// The tenant id at `index`, for messages.
pub fn tenant_id(policy: &Policy, index: TenantIndex) -> String {
    policy
        .tenants()
        .get(index.0)
        .map(|t| t.tenant_id.to_string())
        .unwrap_or_default()
}
