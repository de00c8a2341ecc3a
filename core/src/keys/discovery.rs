//! OIDC discovery: the key-set path a tenant's discovery document names, accepted only on the
//! configured authority.

use serde::Deserialize;

/// Why an OIDC discovery document could not name the key-set path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryError {
    /// Not JSON, or no string `jwks_uri`.
    Malformed,
    /// `jwks_uri` is not an absolute `https://` (or `http://`) URL.
    NotAUrl,
    /// `jwks_uri` names another host than the configured authority.
    ForeignHost(String),
}

impl std::fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiscoveryError::Malformed => f.write_str("discovery document has no jwks_uri"),
            DiscoveryError::NotAUrl => f.write_str("jwks_uri is not an absolute URL"),
            DiscoveryError::ForeignHost(host) => write!(
                f,
                "jwks_uri host {host:?} is not the configured authority; refused"
            ),
        }
    }
}

/// The key-set path named by an OIDC discovery document, provided its host is `authority`:
/// keys are only ever fetched from the configured authority, through the configured cluster.
pub fn discovered_jwks_path(document: &[u8], authority: &str) -> Result<String, DiscoveryError> {
    #[derive(Deserialize)]
    struct Discovery {
        jwks_uri: String,
    }
    let discovery: Discovery =
        serde_json::from_slice(document).map_err(|_| DiscoveryError::Malformed)?;
    let rest = discovery
        .jwks_uri
        .strip_prefix("https://")
        .or_else(|| discovery.jwks_uri.strip_prefix("http://"))
        .ok_or(DiscoveryError::NotAUrl)?;
    let (host, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => return Err(DiscoveryError::NotAUrl),
    };
    if !host.eq_ignore_ascii_case(authority) {
        return Err(DiscoveryError::ForeignHost(host.to_owned()));
    }
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DiscoveryError::NotAUrl);
    }
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn discovery_names_the_key_set_path_on_the_configured_authority() {
        let doc = br#"{"issuer":"x","jwks_uri":"https://login.microsoftonline.com/t/discovery/v2.0/keys"}"#;
        assert_eq!(
            discovered_jwks_path(doc, "login.microsoftonline.com").unwrap(),
            "/t/discovery/v2.0/keys"
        );
        assert_eq!(
            discovered_jwks_path(doc, "LOGIN.microsoftonline.com").unwrap(),
            "/t/discovery/v2.0/keys"
        );
    }

    #[test]
    fn discovery_pointing_elsewhere_is_refused() {
        let doc = br#"{"jwks_uri":"https://evil.example/keys"}"#;
        assert_eq!(
            discovered_jwks_path(doc, "login.microsoftonline.com").unwrap_err(),
            DiscoveryError::ForeignHost("evil.example".into())
        );
        for bad in [
            &br#"{"jwks_uri":"/keys"}"#[..],
            br#"{"jwks_uri":"https://host"}"#,
        ] {
            assert_eq!(
                discovered_jwks_path(bad, "host").unwrap_err(),
                DiscoveryError::NotAUrl
            );
        }
        assert_eq!(
            discovered_jwks_path(b"{}", "host").unwrap_err(),
            DiscoveryError::Malformed
        );
    }
}
