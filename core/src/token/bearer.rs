//! Extracts the bearer token from the request's `Authorization` header(s) (RFC 6750 §2.1).
//! Tokens are read from that header only — never from the query string or cookies.

use super::TokenError;
use crate::denial::Denial;

/// The token from exactly one `Authorization: Bearer <token>` header.
///
/// No header, or a header with another scheme, means no bearer token was presented.
pub fn bearer_token<'a>(authorization: &[&'a str]) -> Result<&'a str, Denial> {
    let value = match authorization {
        [] => return Err(Denial::MissingToken),
        [one] => *one,
        _ => return Err(Denial::Token(TokenError::MultipleAuthorizationHeaders)),
    };
    // Envoy folds repeated `Authorization` headers into one comma-separated value, and a comma
    // cannot occur in a token: either way there were several credentials.
    if value.contains(',') {
        return Err(Denial::Token(TokenError::MultipleAuthorizationHeaders));
    }
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, rest) = match value.split_once(' ') {
        Some(parts) => parts,
        None if value.eq_ignore_ascii_case("bearer") => {
            return Err(Denial::Token(TokenError::MalformedBearer))
        }
        None => return Err(Denial::MissingToken),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Denial::MissingToken);
    }
    let token = rest.trim_start_matches(' ');
    // b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let valid = !token.is_empty()
        && token.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
        });
    if !valid {
        return Err(Denial::Token(TokenError::MalformedBearer));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_header_is_a_missing_token() {
        assert_eq!(bearer_token(&[]), Err(Denial::MissingToken));
    }

    #[test]
    fn scheme_is_case_insensitive() {
        assert_eq!(bearer_token(&["bEaReR a.b.c"]), Ok("a.b.c"));
        assert_eq!(bearer_token(&["BEARER a.b.c"]), Ok("a.b.c"));
    }

    #[test]
    fn other_scheme_is_a_missing_bearer_token() {
        assert_eq!(
            bearer_token(&["Basic dXNlcjpwYXNz"]),
            Err(Denial::MissingToken)
        );
    }

    #[test]
    fn repeated_header_is_refused() {
        assert_eq!(
            bearer_token(&["Bearer a.b.c", "Bearer a.b.c"]),
            Err(Denial::Token(TokenError::MultipleAuthorizationHeaders))
        );
    }

    #[test]
    fn repeated_header_folded_by_envoy_is_refused() {
        assert_eq!(
            bearer_token(&["Bearer a.b.c,Bearer d.e.f"]),
            Err(Denial::Token(TokenError::MultipleAuthorizationHeaders))
        );
    }

    #[test]
    fn empty_or_spaced_token_is_malformed() {
        assert_eq!(
            bearer_token(&["Bearer"]),
            Err(Denial::Token(TokenError::MalformedBearer))
        );
        assert_eq!(
            bearer_token(&["Bearer   "]),
            Err(Denial::Token(TokenError::MalformedBearer))
        );
        assert_eq!(
            bearer_token(&["Bearer a.b c"]),
            Err(Denial::Token(TokenError::MalformedBearer))
        );
        assert_eq!(
            bearer_token(&["Bearer a.b.c d"]),
            Err(Denial::Token(TokenError::MalformedBearer))
        );
    }
}
