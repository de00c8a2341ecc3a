//! Where a decided request becomes what Envoy does, as data ([`response`]): the local reply for
//! a [`Denial`] (status, headers and a body in Jira's error shape), or the header changes for a
//! request that goes on to Jira.

use crate::denial::Denial;
use crate::outcome::{Decided, Identity};

/// The realm named in `WWW-Authenticate`.
pub const REALM: &str = "jira";
/// Header carrying the client's configured name to Jira.
pub const CLIENT_NAME_HEADER: &str = "x-jira-client";
/// Header carrying the client's app id to Jira.
pub const CLIENT_ID_HEADER: &str = "x-jira-client-id";

/// What Envoy does with a decided request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a, 'p> {
    /// Forward it to Jira with these header changes (a dry-run forwards what it would deny).
    Forward(UpstreamHeaders<'p>),
    /// Answer it with the local reply for this denial ([`deny_reply`]; the shell adds the
    /// `Retry-After` only a 503 needs).
    Refuse(&'a Denial),
}

/// What Envoy does with `decided`.
pub fn response<'a, 'p>(decided: &'a Decided<'p>) -> Response<'a, 'p> {
    match decided {
        Decided::Deny(denial) => Response::Refuse(denial),
        Decided::Allow(_) | Decided::WouldDeny { .. } => Response::Forward(upstream_headers(
            decided.forwarded_identity().flatten().as_ref(),
        )),
    }
}

/// A response Envoy sends without contacting Jira.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(&'static str, String)>,
    /// JSON body: `{"errorMessages":[...],"errors":{}}`.
    pub body: String,
}

/// The local reply for a denial. `retry_after_seconds` is used for 503s.
pub fn deny_reply(denial: &Denial, retry_after_seconds: u64) -> LocalReply {
    let description = denial.description();
    let mut headers = vec![("content-type", "application/json;charset=UTF-8".to_owned())];
    match denial {
        Denial::MissingToken => {
            headers.push(("www-authenticate", format!("Bearer realm=\"{REALM}\"")));
        }
        Denial::Token(e) => headers.push((
            "www-authenticate",
            format!(
                "Bearer realm=\"{REALM}\", error=\"{}\", error_description=\"{description}\"",
                e.error_code()
            ),
        )),
        Denial::KeySet(_) => headers.push(("retry-after", retry_after_seconds.to_string())),
        Denial::Request(_) | Denial::Path(_) | Denial::Policy(_) | Denial::Body(_) => {}
    }
    LocalReply {
        status: denial.status(),
        headers,
        body: jira_error_body(description),
    }
}

/// Jira's REST error shape.
pub fn jira_error_body(message: &str) -> String {
    serde_json::json!({"errorMessages": [message], "errors": {}}).to_string()
}

/// Header changes for a request that goes on to Jira.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamHeaders<'p> {
    /// Headers to remove: the Entra token and caller-supplied identity headers that are not
    /// replaced below.
    pub remove: &'static [&'static str],
    /// Headers to set; setting replaces every caller-supplied copy.
    pub set: [Option<(&'static str, &'p str)>; 3],
}

/// The upstream header changes for a forwarded request (`identity` is `None` on public paths
/// and for callers no client was identified for).
pub fn upstream_headers<'p>(identity: Option<&Identity<'p>>) -> UpstreamHeaders<'p> {
    match identity {
        None => UpstreamHeaders {
            remove: &["authorization", CLIENT_NAME_HEADER, CLIENT_ID_HEADER],
            set: [None, None, None],
        },
        Some(identity) => UpstreamHeaders {
            remove: match identity.upstream_authorization {
                Some(_) => &[],
                None => &["authorization"],
            },
            set: [
                Some((CLIENT_NAME_HEADER, identity.client_name)),
                Some((CLIENT_ID_HEADER, identity.app_id)),
                identity
                    .upstream_authorization
                    .map(|auth| ("authorization", auth)),
            ],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::jwks::KeySetError;
    use crate::token::TokenError;

    fn header<'a>(reply: &'a LocalReply, name: &str) -> Option<&'a str> {
        reply
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_denial_is_answered_locally_and_a_dry_run_forwards_with_the_identity() {
        let denied = Decided::Deny(Denial::MissingToken);
        assert_eq!(response(&denied), Response::Refuse(&Denial::MissingToken));
        let identity = Identity {
            client_name: "bot",
            app_id: "3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01",
            upstream_authorization: None,
        };
        let flagged = Decided::WouldDeny {
            denial: Denial::MissingToken,
            identity: Some(identity),
        };
        assert_eq!(
            response(&flagged),
            Response::Forward(upstream_headers(Some(&identity)))
        );
        assert_eq!(
            response(&Decided::Allow(None)),
            Response::Forward(upstream_headers(None))
        );
    }

    #[test]
    fn missing_token_gets_a_bare_bearer_challenge() {
        let reply = deny_reply(&Denial::MissingToken, 5);
        assert_eq!(reply.status, 401);
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some("Bearer realm=\"jira\"")
        );
        assert_eq!(
            reply.body,
            r#"{"errorMessages":["a bearer token is required"],"errors":{}}"#
        );
    }

    #[test]
    fn invalid_token_names_the_error_and_its_reason() {
        let reply = deny_reply(&Denial::Token(TokenError::Expired), 5);
        assert_eq!(reply.status, 401);
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some("Bearer realm=\"jira\", error=\"invalid_token\", error_description=\"token is expired\"")
        );
    }

    #[test]
    fn unavailable_keys_answer_503_with_retry_after() {
        let reply = deny_reply(&Denial::KeySet(KeySetError::Unavailable), 7);
        assert_eq!(reply.status, 503);
        assert_eq!(header(&reply, "retry-after"), Some("7"));
        assert_eq!(header(&reply, "www-authenticate"), None);
    }

    #[test]
    fn every_reply_is_json_in_jiras_error_shape() {
        let reply = deny_reply(&Denial::Token(TokenError::GraphToken), 1);
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["errors"], serde_json::json!({}));
        assert!(body["errorMessages"][0]
            .as_str()
            .unwrap()
            .contains("Microsoft Graph"));
        assert_eq!(
            header(&reply, "content-type"),
            Some("application/json;charset=UTF-8")
        );
    }

    #[test]
    fn forwarded_request_loses_the_token_and_caller_identity_headers() {
        let identity = Identity {
            client_name: "bot",
            app_id: "3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01",
            upstream_authorization: None,
        };
        let h = upstream_headers(Some(&identity));
        assert_eq!(h.remove, ["authorization"]);
        assert_eq!(
            h.set,
            [
                Some(("x-jira-client", "bot")),
                Some(("x-jira-client-id", "3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01")),
                None
            ]
        );
        let anonymous = upstream_headers(None);
        assert_eq!(
            anonymous.remove,
            ["authorization", "x-jira-client", "x-jira-client-id"]
        );
        assert_eq!(anonymous.set, [None, None, None]);
        let mapped = Identity {
            upstream_authorization: Some("Bearer pat"),
            ..identity
        };
        let h = upstream_headers(Some(&mapped));
        assert!(
            h.remove.is_empty(),
            "the Entra token is replaced, not removed"
        );
        assert_eq!(h.set[2], Some(("authorization", "Bearer pat")));
    }
}
