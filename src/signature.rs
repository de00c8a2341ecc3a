//! Who checks RS256 signatures in this VM: Envoy's native `verify_signature` foreign function
//! (BoringSSL), or RSA compiled into the module. The choice is the core's
//! (`SignatureBackend::uses_host`), made once at configure time; this module only carries out
//! the host calls: the probe (a known-good and a known-bad signature) and each signature check.

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

/// Whether Envoy's `verify_signature` checks signatures for the configured backend (the
/// core decides; this only runs the probe when asked).
pub fn choose(backend: SignatureBackend) -> Result<bool, &'static str> {
    backend.uses_host(host_verifies_correctly)
}
