//! Who checks RS256 signatures in this VM: Envoy's native `verify_signature` foreign function
//! (BoringSSL), or RSA compiled into the module. The choice is made once at configure time by
//! asking the host to check a known-good and a known-bad signature, and logged.

use jira_entra_guard_core::envoy_signature::{
    broken_probe, decode_result, encode_arguments, probe, FUNCTION, PROBE_MESSAGE,
};
use jira_entra_guard_core::keys::jwks::{SignatureVerifier, VerificationKey};
use jira_entra_guard_core::policy::SignatureBackend;
use proxy_wasm::hostcalls;

/// Checks signatures through Envoy's `verify_signature`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvoyVerifier;

impl EnvoyVerifier {
    /// The host's answer for one signature; `None` when the call itself failed.
    fn ask(public_key_der: &[u8], message: &[u8], signature: &[u8]) -> Option<bool> {
        let arguments = encode_arguments(public_key_der, signature, message);
        match hostcalls::call_foreign_function(FUNCTION, Some(&arguments)) {
            Ok(Some(result)) => decode_result(&result),
            Ok(None) => Some(false),
            Err(_) => None,
        }
    }
}

impl SignatureVerifier for EnvoyVerifier {
    fn verify_rs256(&self, key: &VerificationKey, message: &[u8], signature: &[u8]) -> bool {
        match Self::ask(key.public_key_der(), message, signature) {
            Some(valid) => valid,
            // The host refused the call (it answered the probe, so this is unexpected): the
            // module's own RSA decides rather than failing the request.
            None => key.verify_rs256(message, signature),
        }
    }
}

/// True when the host checks the probe signature correctly: accepts the good one, rejects the
/// broken one.
pub fn host_verifies_correctly() -> bool {
    let (key, good) = probe();
    let (_, bad) = broken_probe();
    EnvoyVerifier::ask(&key, PROBE_MESSAGE, &good) == Some(true)
        && EnvoyVerifier::ask(&key, PROBE_MESSAGE, &bad) == Some(false)
}

/// Decides whether to use Envoy's `verify_signature` for the configured backend; `Err` when
/// `envoy` is required and the host cannot provide it.
pub fn choose(backend: SignatureBackend) -> Result<bool, &'static str> {
    match backend {
        SignatureBackend::Wasm => Ok(false),
        SignatureBackend::Auto => Ok(host_verifies_correctly()),
        SignatureBackend::Envoy if host_verifies_correctly() => Ok(true),
        SignatureBackend::Envoy => Err(
            "signature_backend: \"envoy\" requires Envoy's verify_signature foreign function, which this host does not provide",
        ),
    }
}
