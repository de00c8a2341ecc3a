//! A request's wait for its tenant's keys, bounded in all by `key_wait_ms`.

/// How long one request may still wait for keys. The wait is fixed when the request first
/// waits and is not renewed by the fetches it sees end: a token naming an unknown key that
/// waited for a scheduled refresh, which did not bring the key, and then waits for the refetch
/// it asks for still answers by its first deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyWait {
    deadline_ms: u64,
}

impl KeyWait {
    /// The wait of a request that must wait at `now_ms`: the one it already has, or a new one
    /// of `key_wait_ms`.
    pub fn continued(previous: Option<KeyWait>, now_ms: u64, key_wait_ms: u64) -> KeyWait {
        previous.unwrap_or(KeyWait {
            deadline_ms: now_ms.saturating_add(key_wait_ms),
        })
    }

    /// When the wait ends (epoch milliseconds).
    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }

    /// True once the request has waited as long as it may.
    pub fn is_over(&self, now_ms: u64) -> bool {
        now_ms >= self.deadline_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn a_request_waits_key_wait_ms_in_total_however_many_fetches_it_sees() {
        let first = KeyWait::continued(None, 10_000, 3_000);
        assert_eq!(first.deadline_ms(), 13_000);
        // Woken at 12.5 s by a refresh that did not bring its key, it waits again for its own
        // refetch: the deadline it started with still holds.
        let again = KeyWait::continued(Some(first), 12_500, 3_000);
        assert_eq!(again.deadline_ms(), 13_000);
        assert!(!again.is_over(12_999));
        assert!(again.is_over(13_000));
    }
}
