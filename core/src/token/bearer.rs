//! Extracts the bearer token from the request's `Authorization` header(s) (RFC 6750 §2.1).
//! Tokens are read from that header only — never from the query string or cookies.

use super::TokenError;
use crate::denial::Denial;

/// The token from exactly one `Authorization: Bearer <token>` header.
///
/// No header, or a header with another scheme, means no bearer token was presented.
pub fn bearer_token<'a>(authorization: &[&'a str]) -> Result<&'a str, Denial> {
    presented_token(authorization)?.checked()
}

/// What the single `Authorization: Bearer` header presents, before its characters are checked.
///
/// The check walks the whole token, so the decision pipeline makes it only for tokens the
/// verified-token cache does not hold: a cached token is byte for byte one that passed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresentedToken<'a> {
    /// The whole header value, for telling one malformed token from several credentials.
    header: &'a str,
    token: &'a str,
}

impl<'a> PresentedToken<'a> {
    /// The token text, unchecked.
    pub fn unchecked(&self) -> &'a str {
        self.token
    }

    /// The token, if it is a non-empty `b64token` (RFC 6750 §2.1):
    /// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
    pub fn checked(self) -> Result<&'a str, Denial> {
        if !self.token.is_empty() && self.token.bytes().all(is_b64token_byte) {
            return Ok(self.token);
        }
        Err(several_or(
            self.header,
            Denial::Token(TokenError::MalformedBearer),
        ))
    }
}

/// The bearer token of exactly one `Authorization` header, its characters not yet checked.
pub fn presented_token<'a>(authorization: &[&'a str]) -> Result<PresentedToken<'a>, Denial> {
    let header = match authorization {
        [] => return Err(Denial::MissingToken),
        [one] => *one,
        _ => return Err(Denial::Token(TokenError::MultipleAuthorizationHeaders)),
    };
    let value = header.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, rest) = match value.split_once(' ') {
        Some(parts) => parts,
        None if value.eq_ignore_ascii_case("bearer") => {
            return Err(several_or(
                header,
                Denial::Token(TokenError::MalformedBearer),
            ))
        }
        None => return Err(several_or(header, Denial::MissingToken)),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(several_or(header, Denial::MissingToken));
    }
    Ok(PresentedToken {
        header,
        token: rest.trim_start_matches(' '),
    })
}

/// Envoy folds repeated `Authorization` headers into one comma-separated value, and a comma
/// cannot occur in a token: a header with a comma carried several credentials, whatever else is
/// wrong with it. (A header that passes every check has no comma, so only refusals look.)
fn several_or(header: &str, otherwise: Denial) -> Denial {
    if header.contains(',') {
        Denial::Token(TokenError::MultipleAuthorizationHeaders)
    } else {
        otherwise
    }
}

/// The `b64token` characters, as a table: one load per byte of a kilobyte-long token.
// Evaluated at compile time: an out-of-range index or overflow here fails the build.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const B64TOKEN_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=');
        i += 1;
    }
    table
};

fn is_b64token_byte(b: u8) -> bool {
    B64TOKEN_BYTES.get(usize::from(b)).copied().unwrap_or(false)
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

    #[test]
    fn every_byte_outside_b64token_is_malformed() {
        for b in 0u8..=255 {
            let allowed = b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
            let token = format!("a{}b", char::from(b));
            let header = format!("Bearer {token}");
            let got = bearer_token(&[&header]);
            match (allowed, b) {
                (true, _) => assert_eq!(got, Ok(token.as_str()), "byte {b:#04x}"),
                (false, b',') => assert_eq!(
                    got,
                    Err(Denial::Token(TokenError::MultipleAuthorizationHeaders))
                ),
                (false, _) => assert!(got.is_err(), "byte {b:#04x} accepted"),
            }
        }
    }

    #[test]
    fn comma_means_several_credentials_whatever_else_is_wrong() {
        for header in ["Basic x,Bearer a.b.c", "Bearer,", "Bearer a b,c", "x, y"] {
            assert_eq!(
                bearer_token(&[header]),
                Err(Denial::Token(TokenError::MultipleAuthorizationHeaders)),
                "{header}"
            );
        }
    }

    #[test]
    fn spaces_and_tabs_around_the_value_are_trimmed() {
        for header in [
            "Bearer a.b.c",
            " Bearer a.b.c ",
            "\tBearer a.b.c\t",
            " \t Bearer   a.b.c",
        ] {
            assert_eq!(bearer_token(&[header]), Ok("a.b.c"), "{header:?}");
        }
        // Only spaces and tabs: any other whitespace is part of the value.
        assert_eq!(
            bearer_token(&["Bearer a.b.c\n"]),
            Err(Denial::Token(TokenError::MalformedBearer))
        );
        assert_eq!(
            bearer_token(&["\tBearer\t"]),
            Err(Denial::Token(TokenError::MalformedBearer))
        );
    }

    #[test]
    fn one_word_header_is_a_bearer_without_token_or_no_bearer_token() {
        for header in ["Bearer", "bearer", " BEARER "] {
            assert_eq!(
                bearer_token(&[header]),
                Err(Denial::Token(TokenError::MalformedBearer)),
                "{header:?}"
            );
        }
        for header in ["Basic", "a.b.c", "Bearerx", "Negotiate"] {
            assert_eq!(
                bearer_token(&[header]),
                Err(Denial::MissingToken),
                "{header:?}"
            );
        }
    }

    #[test]
    fn presented_token_is_unchecked_until_asked() {
        let presented = presented_token(&["Bearer a.b c"]);
        assert_eq!(presented.as_ref().map(|p| p.unchecked()), Ok("a.b c"));
        assert_eq!(
            presented.and_then(PresentedToken::checked),
            Err(Denial::Token(TokenError::MalformedBearer))
        );
    }
}
