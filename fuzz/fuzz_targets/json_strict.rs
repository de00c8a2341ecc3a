//! Arbitrary bytes through the core's strict JSON check of token headers and claims
//! (`token::strict_json::check_object`), compared with the same rules restated on top of
//! serde_json (`strict_json_violation` in the fuzz library).
//!
//! Invariants: no panic; the two agree on every input; an accepted text is the input itself;
//! an accepted text is also read by serde_json as an object.

#![no_main]

use jira_entra_guard_core::token::strict_json::check_object;
use jira_entra_guard_fuzz::strict_json_violation;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let strict = check_object(data);
    let reference = strict_json_violation(data);
    match (&strict, &reference) {
        (Ok(text), None) => {
            assert_eq!(text.as_bytes(), data);
            assert!(serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v.is_object()));
        }
        (Err(_), Some(_)) => {}
        (Ok(_), Some(why)) => {
            panic!("the strict check accepted what the reference refuses ({why})")
        }
        (Err(defect), None) => {
            panic!("the strict check refused ({defect:?}) what the reference accepts")
        }
    }
});
