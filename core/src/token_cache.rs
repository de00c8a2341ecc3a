//! The verified-token cache: client-credentials callers reuse one token for up to an hour, so
//! the signature of a token is checked once and its verified claims are reused until it
//! expires. The cache is bounded (least recently used entries go first), keyed by the SHA-256
//! digest of the whole token (so a reused signature under any other header or payload can never
//! hit), holds only successes, never returns an entry past its `exp`, and never returns an entry
//! whose signing key is no longer in its tenant's key set.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use sha2::{Digest, Sha256};

use crate::token::verify::VerifiedToken;

/// SHA-256 of a token.
pub type TokenDigest = [u8; 32];

/// The digest a token is cached under.
pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// The keys are already uniformly distributed digests: their first bytes are the hash.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 |= u64::from(*b) << (i.saturating_mul(8));
        }
    }
}

const NIL: usize = usize::MAX;

struct Node {
    key: TokenDigest,
    token: Rc<VerifiedToken>,
    prev: usize,
    next: usize,
}

/// A bounded LRU map from token digest to verified token.
pub struct TokenCache {
    capacity: usize,
    index: HashMap<TokenDigest, usize, BuildHasherDefault<DigestHasher>>,
    nodes: Vec<Node>,
    head: usize,
    tail: usize,
    free: Vec<usize>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::new(0)
    }
}

impl TokenCache {
    /// A cache for at most `capacity` tokens; 0 disables caching.
    pub fn new(capacity: usize) -> Self {
        TokenCache {
            capacity,
            index: HashMap::default(),
            nodes: Vec::new(),
            head: NIL,
            tail: NIL,
            free: Vec::new(),
        }
    }

    /// Number of cached tokens.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The verified token cached under `key`, if it has not expired at `now` (seconds) and
    /// `key_still_published` confirms its signing key is still in the tenant's set.
    pub fn get(
        &mut self,
        key: &TokenDigest,
        now: i64,
        key_still_published: impl FnOnce(&VerifiedToken) -> bool,
    ) -> Option<Rc<VerifiedToken>> {
        let slot = *self.index.get(key)?;
        let token = Rc::clone(&self.nodes.get(slot)?.token);
        if now > token.expires_at || !key_still_published(&token) {
            self.remove(key);
            return None;
        }
        self.unlink(slot);
        self.push_front(slot);
        Some(token)
    }

    /// Caches a verified token, evicting the least recently used one when full.
    pub fn insert(&mut self, key: TokenDigest, token: Rc<VerifiedToken>) {
        if self.capacity == 0 {
            return;
        }
        if let Some(&slot) = self.index.get(&key) {
            if let Some(node) = self.nodes.get_mut(slot) {
                node.token = token;
            }
            self.unlink(slot);
            self.push_front(slot);
            return;
        }
        if self.index.len() >= self.capacity {
            if let Some(oldest) = self.nodes.get(self.tail).map(|n| n.key) {
                self.remove(&oldest);
            }
        }
        let node = Node {
            key,
            token,
            prev: NIL,
            next: NIL,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(n) = self.nodes.get_mut(slot) {
                    *n = node;
                }
                slot
            }
            None => {
                self.nodes.push(node);
                self.nodes.len().saturating_sub(1)
            }
        };
        self.index.insert(key, slot);
        self.push_front(slot);
    }

    /// Drops a token.
    pub fn remove(&mut self, key: &TokenDigest) {
        if let Some(slot) = self.index.remove(key) {
            self.unlink(slot);
            self.free.push(slot);
        }
    }

    fn unlink(&mut self, slot: usize) {
        let (prev, next) = match self.nodes.get(slot) {
            Some(n) => (n.prev, n.next),
            None => return,
        };
        match self.nodes.get_mut(prev) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.nodes.get_mut(next) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
        if let Some(n) = self.nodes.get_mut(slot) {
            n.prev = NIL;
            n.next = NIL;
        }
    }

    fn push_front(&mut self, slot: usize) {
        let old_head = self.head;
        if let Some(n) = self.nodes.get_mut(slot) {
            n.prev = NIL;
            n.next = old_head;
        }
        match self.nodes.get_mut(old_head) {
            Some(h) => h.prev = slot,
            None => self.tail = slot,
        }
        self.head = slot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{TenantIndex, TokenVersion};
    use crate::token::claims::EntraClaims;
    use crate::token::verify::TokenFacts;

    fn token(exp: i64) -> Rc<VerifiedToken> {
        Rc::new(VerifiedToken::assume_verified(TokenFacts {
            tenant: TenantIndex(0),
            version: TokenVersion::V2,
            claims: EntraClaims::default(),
            expires_at: exp,
            key_id: crate::token::verify::KeyId::Kid("k".into()),
        }))
    }

    fn key(n: u8) -> TokenDigest {
        digest(&format!("token-{n}"))
    }

    #[test]
    fn cached_token_is_returned_until_it_expires() {
        let mut cache = TokenCache::new(10);
        cache.insert(key(1), token(100));
        assert!(cache.get(&key(1), 100, |_| true).is_some());
        assert!(
            cache.get(&key(1), 101, |_| true).is_none(),
            "never past exp"
        );
        assert!(cache.is_empty(), "an expired entry is dropped");
    }

    #[test]
    fn entry_whose_key_left_the_set_is_dropped() {
        let mut cache = TokenCache::new(10);
        cache.insert(key(1), token(100));
        assert!(cache.get(&key(1), 0, |_| false).is_none());
        assert!(cache.get(&key(1), 0, |_| true).is_none());
    }

    #[test]
    fn cache_never_grows_past_its_capacity_and_evicts_the_least_recently_used() {
        let mut cache = TokenCache::new(3);
        for n in 0..3 {
            cache.insert(key(n), token(100));
        }
        assert!(cache.get(&key(0), 0, |_| true).is_some()); // 0 is now the most recent
        cache.insert(key(3), token(100));
        assert_eq!(cache.len(), 3);
        assert!(
            cache.get(&key(1), 0, |_| true).is_none(),
            "1 was the least recently used"
        );
        for n in [0, 2, 3] {
            assert!(cache.get(&key(n), 0, |_| true).is_some(), "{n}");
        }
        for n in 10..200 {
            cache.insert(key(n), token(100));
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.nodes.len(), 3, "slots are reused, not leaked");
    }

    #[test]
    fn zero_capacity_disables_caching() {
        let mut cache = TokenCache::new(0);
        cache.insert(key(1), token(100));
        assert!(cache.get(&key(1), 0, |_| true).is_none());
    }

    #[test]
    fn different_tokens_have_different_digests() {
        assert_ne!(digest("a.b.c"), digest("a.b.d"));
        assert_eq!(digest("a.b.c"), digest("a.b.c"));
    }
}
