//! The parts of the request head the decision needs, gathered by the shell from Envoy's header
//! map, and the checks on them that come before authentication.
//!
//! One of them keeps bearer tokens out of Jira's access logs: a query string carrying an
//! `access_token` parameter (RFC 6750 §2.3) is refused, whatever the `Authorization` header
//! holds, since forwarding it would write the token into every log of the URL. The parameter
//! name is compared as a server would read it: percent-decoded (`access%5Ftoken`), `+` as a
//! space, ASCII case ignored, parameters separated by `&` or `;`.

/// Header names whose value some frameworks take as the "real" method.
pub const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Why a request is refused before authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestRejection {
    /// A method-override header names a method other than the request's own.
    MethodOverride,
    /// The request has no `:method` or `:path`.
    MissingPseudoHeader,
    /// The query string has an `access_token` parameter.
    TokenInQuery,
}

impl RequestRejection {
    /// Reason for the 400 body.
    pub fn description(&self) -> &'static str {
        match self {
            RequestRejection::MethodOverride => {
                "method-override headers are not accepted unless they equal the request method"
            }
            RequestRejection::MissingPseudoHeader => "request has no method or path",
            RequestRejection::TokenInQuery => {
                "access tokens are not accepted in the query string (access_token); send the token in the Authorization header"
            }
        }
    }
}

/// The query parameter RFC 6750 §2.3 defines for bearer tokens.
const QUERY_TOKEN_PARAMETER: &[u8] = b"access_token";

/// True when the query string of the raw `:path` has an `access_token` parameter, with or
/// without a value.
pub fn has_query_token(path: &str) -> bool {
    let Some((_, query)) = path.split_once('?') else {
        return false;
    };
    query.split(['&', ';']).any(|parameter| {
        let name = parameter
            .split_once('=')
            .map_or(parameter, |(name, _)| name);
        decoded_name_is(name.as_bytes(), QUERY_TOKEN_PARAMETER)
    })
}

/// Compares a raw parameter name, percent-decoded and with `+` read as a space, to `expected`
/// ignoring ASCII case, without allocating. A `%` not followed by two hex digits is itself.
fn decoded_name_is(raw: &[u8], expected: &[u8]) -> bool {
    let mut rest = raw;
    let mut expected = expected.iter();
    loop {
        let (byte, tail) = match rest {
            [] => return expected.next().is_none(),
            [b'%', after @ ..] => match after {
                [high, low, tail @ ..] => {
                    crate::hex::byte(*high, *low).map_or((b'%', after), |byte| (byte, tail))
                }
                _ => (b'%', after),
            },
            [b'+', tail @ ..] => (b' ', tail),
            [byte, tail @ ..] => (*byte, tail),
        };
        if !expected
            .next()
            .is_some_and(|e| e.eq_ignore_ascii_case(&byte))
        {
            return false;
        }
        rest = tail;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_head_holds_every_header_the_decision_reads_and_nothing_else() {
        let list = headers(&[
            (":method", "POST"),
            (":path", "/rest/api/2/issue"),
            (":authority", "jira.example.com"),
            ("authorization", "Bearer a"),
            ("x-request-id", "req-1"),
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
            ("x-http-method-override", "GET"),
            ("x-method-override", "PUT"),
            ("x-http-method", "DELETE"),
            ("cookie", "session=1"),
        ]);
        let (head, request_id) = RequestHead::from_headers(&list);
        assert_eq!(head.method, "POST");
        assert_eq!(head.path, "/rest/api/2/issue");
        assert_eq!(head.authorization, ["Bearer a"]);
        assert_eq!(head.content_type, ["application/json"]);
        assert!(head.content_encoding);
        assert_eq!(head.method_overrides, ["GET", "PUT", "DELETE"]);
        assert_eq!(request_id, Some("req-1"));
    }

    #[test]
    fn repeated_headers_keep_every_value_in_order() {
        let list = headers(&[
            ("authorization", "Bearer first"),
            ("content-type", "text/plain"),
            ("authorization", "Bearer second"),
            ("content-type", "application/json"),
        ]);
        let (head, _) = RequestHead::from_headers(&list);
        assert_eq!(head.authorization, ["Bearer first", "Bearer second"]);
        assert_eq!(head.content_type, ["text/plain", "application/json"]);
    }

    #[test]
    fn a_request_without_pseudo_headers_or_request_id_has_an_empty_head() {
        let list = headers(&[("accept", "application/json")]);
        let (head, request_id) = RequestHead::from_headers(&list);
        assert_eq!((head.method, head.path), ("", ""));
        assert!(head.authorization.is_empty() && head.method_overrides.is_empty());
        assert!(!head.content_encoding);
        assert_eq!(request_id, None);
    }

    #[test]
    fn access_token_parameter_is_found_with_or_without_a_value() {
        for path in [
            "/rest/api/2/myself?access_token=eyJ0eXAi.eyJhdWQi.c2ln",
            "/rest/api/2/search?jql=project%3DOPS&access_token=x",
            "/rest/api/2/myself?access_token",
            "/rest/api/2/myself?access_token=",
            "/rest/api/2/myself?a=1;access_token=x",
            "/rest/api/2/myself?&&access_token=x&&",
            "/?access_token=x",
        ] {
            assert!(has_query_token(path), "{path}");
        }
    }

    #[test]
    fn percent_encoded_or_differently_cased_names_are_found() {
        for path in [
            "/x?access%5Ftoken=t",
            "/x?access%5ftoken=t",
            "/x?%61ccess_token=t",
            "/x?%61%63%63%65%73%73%5f%74%6f%6b%65%6e=t",
            "/x?Access_Token=t",
            "/x?ACCESS_TOKEN=t",
            "/x?ACCESS%5FTOKEN",
        ] {
            assert!(has_query_token(path), "{path}");
        }
    }

    #[test]
    fn other_parameters_and_values_are_not_a_query_token() {
        for path in [
            "/rest/api/2/myself",
            "/rest/api/2/myself?",
            "/rest/api/2/search?jql=access_token",
            "/rest/api/2/search?jql=text~%22access_token=x%22",
            "/x?access_tokens=t",
            "/x?my_access_token=t",
            "/x?access_token_hint=t",
            "/x?access+token=t",
            "/x?access%20token=t",
            "/x?access%5token=t",
            "/x?access%255Ftoken=t",
            "/x?access_toke=t",
            "/access_token=x",
        ] {
            assert!(!has_query_token(path), "{path}");
        }
    }
}

/// The request head as far as the filter cares.
#[derive(Debug, Clone, Default)]
pub struct RequestHead<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path`, raw, with the query string.
    pub path: &'a str,
    /// Every `Authorization` header value, in order (a request may carry several).
    pub authorization: Vec<&'a str>,
    /// Values of the [`METHOD_OVERRIDE_HEADERS`] present on the request.
    pub method_overrides: Vec<&'a str>,
    /// Every `Content-Type` value (read only when a body decides).
    pub content_type: Vec<&'a str>,
    /// True when the request carries a `Content-Encoding` header.
    pub content_encoding: bool,
}

impl<'a> RequestHead<'a> {
    /// The head and the `x-request-id` of a request, picked out of its header list as Envoy
    /// hands it over: lowercase names, `:method` and `:path` among them. Headers the filter
    /// does not read are passed over; one it reads several times of keeps every value, in
    /// order, so that the decision sees what Jira would.
    pub fn from_headers(headers: &'a [(String, String)]) -> (Self, Option<&'a str>) {
        let mut head = RequestHead::default();
        let mut request_id = None;
        for (name, value) in headers {
            match name.as_str() {
                ":method" => head.method = value,
                ":path" => head.path = value,
                "authorization" => head.authorization.push(value),
                "x-request-id" => request_id = Some(value.as_str()),
                "content-type" => head.content_type.push(value),
                "content-encoding" => head.content_encoding = true,
                other if METHOD_OVERRIDE_HEADERS.contains(&other) => {
                    head.method_overrides.push(value);
                }
                _ => {}
            }
        }
        (head, request_id)
    }
}
