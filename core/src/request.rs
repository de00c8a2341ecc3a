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
            [b'%', high, low, tail @ ..] if hex(*high).is_some() && hex(*low).is_some() => {
                let byte = hex(*high)
                    .zip(hex(*low))
                    .map_or(b'%', |(h, l)| h.wrapping_shl(4) | l);
                (byte, tail)
            }
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

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
