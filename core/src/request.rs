//! The parts of the request head the decision needs, gathered by the shell from Envoy's header
//! map, and the checks on them that come before authentication.

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
}

impl RequestRejection {
    /// Reason for the 400 body.
    pub fn description(&self) -> &'static str {
        match self {
            RequestRejection::MethodOverride => {
                "method-override headers are not accepted unless they equal the request method"
            }
            RequestRejection::MissingPseudoHeader => "request has no method or path",
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
