//! The verified-token cache: client-credentials callers reuse one token for up to an hour, so
//! the signature of a token is checked once and its verified claims are reused until it
//! expires. The cache is bounded (least recently used entries go first), holds only successes,
//! never returns an entry past its `exp`, and never returns an entry whose signing key material
//! is no longer published under its key id in its tenant's key set (the caller's check, see
//! [`crate::token::verify::VerifiedToken::signing_key_is_in`]).
//!
//! Entries are keyed by a 128-bit SipHash-2-4 tag of the whole token under a secret key drawn
//! for each VM from the host's random source (so a reused signature under any other header or
//! payload can never hit). A keyed pseudo-random function is what the lookup needs: the tags
//! never leave the VM, so an attacker who wants a forged token to land on a cached entry can
//! only guess, with odds of one in 2^128 per cached token and attempt. An unkeyed
//! collision-resistant hash (SHA-256) would give the same guarantee at about seven times the
//! cost on every request: it was the largest single cost of a cached request in Envoy's V8
//! (about 6 µs of a 1.4 KB token, against 0.8 µs).
//!
//! Cached tokens of one client repeat its text (app id, credential type, roles, key id): the
//! cache keeps one copy of each ([`SharedText`]) and every token it holds points at it.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::rc::Rc;

use siphasher::sip128::{Hasher128, SipHasher24};

use crate::token::verify::VerifiedToken;

/// The tag a token is cached under.
pub type TokenDigest = [u8; 16];

/// The secret key of the cache's tags: 16 bytes from a cryptographically secure random source,
/// drawn once per cache and never shown.
#[derive(Clone)]
pub struct DigestKey([u8; 16]);

impl DigestKey {
    /// A key from 16 secret random bytes.
    pub fn new(bytes: [u8; 16]) -> Self {
        DigestKey(bytes)
    }
}

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestKey(..)")
    }
}

/// The keys are already uniformly distributed tags: their first bytes are the hash.
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
    digest_key: DigestKey,
    shared_text: SharedText,
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
        TokenCache::disabled()
    }
}

impl TokenCache {
    /// A cache for at most `capacity` tokens, tagging them with `digest_key`; 0 disables
    /// caching.
    pub fn new(capacity: usize, digest_key: DigestKey) -> Self {
        TokenCache {
            capacity,
            digest_key,
            shared_text: SharedText::default(),
            // Sized once for the whole capacity: growing by doubling would leave each outgrown
            // table behind in the VM's memory, which never shrinks (about 0.4 MiB for 10,000
            // entries). Untouched capacity costs address space, not resident memory.
            index: HashMap::with_capacity_and_hasher(capacity, Default::default()),
            nodes: Vec::with_capacity(capacity),
            head: NIL,
            tail: NIL,
            free: Vec::new(),
        }
    }

    /// A cache of `capacity` tokens whose digest key `random` fills from a cryptographically
    /// secure random source. When the source fails, the cache is disabled (every token is
    /// verified) and the failure is returned for the log: a fixed or partial key would let
    /// anyone who knows it aim a forged token at a cached tag.
    pub fn with_random_key<E>(
        capacity: usize,
        random: impl FnOnce(&mut [u8; 16]) -> Result<(), E>,
    ) -> (Self, Option<E>) {
        let mut key = [0u8; 16];
        match random(&mut key) {
            Ok(()) => (TokenCache::new(capacity, DigestKey::new(key)), None),
            Err(e) => (TokenCache::disabled(), Some(e)),
        }
    }

    /// A cache that holds nothing (capacity 0), until the configuration gives its size.
    pub fn disabled() -> Self {
        TokenCache::new(0, DigestKey::new([0; 16]))
    }

    /// The tag `token` is cached under.
    pub fn digest(&self, token: &str) -> TokenDigest {
        let mut hasher = SipHasher24::new_with_key(&self.digest_key.0);
        hasher.write(token.as_bytes());
        hasher.finish128().as_bytes()
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
    /// `key_still_published` confirms its signing key material is still in the tenant's set.
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

    /// Caches a verified token, evicting the least recently used one when full; returns it,
    /// shared with the cache.
    pub fn insert(&mut self, key: TokenDigest, token: VerifiedToken) -> Rc<VerifiedToken> {
        if self.capacity == 0 {
            return Rc::new(token);
        }
        let token = Rc::new(token.sharing_text(&mut self.shared_text));
        self.store(key, Rc::clone(&token));
        token
    }

    fn store(&mut self, key: TokenDigest, token: Rc<VerifiedToken>) {
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

/// One copy of each text that many verified tokens repeat. Bounded: past `MAX_SHARED` entries
/// it starts afresh (tokens already holding text keep it; only later tokens share anew).
#[derive(Debug, Default)]
pub struct SharedText {
    texts: HashSet<Rc<str>>,
    role_lists: HashSet<Rc<[String]>>,
}

/// Distinct texts kept for sharing, at most: clients, key ids and role lists are few.
const MAX_SHARED: usize = 1024;

impl SharedText {
    /// The one copy of `text`.
    pub(crate) fn text(&mut self, text: &Rc<str>) -> Rc<str> {
        shared_copy(&mut self.texts, text)
    }

    /// The one copy of the role list `roles`.
    pub(crate) fn roles(&mut self, roles: &Rc<[String]>) -> Rc<[String]> {
        shared_copy(&mut self.role_lists, roles)
    }
}

/// The copy of `value` in `pool`, which keeps it from now on if it had none.
fn shared_copy<T: Eq + Hash + ?Sized>(pool: &mut HashSet<Rc<T>>, value: &Rc<T>) -> Rc<T> {
    if let Some(shared) = pool.get(value) {
        return Rc::clone(shared);
    }
    if pool.len() >= MAX_SHARED {
        pool.clear();
    }
    pool.insert(Rc::clone(value));
    Rc::clone(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{TenantIndex, TokenVersion};
    use crate::test_support::test_cache;
    use crate::token::claims::EntraClaims;
    use crate::token::verify::TokenFacts;

    fn token(exp: i64) -> VerifiedToken {
        VerifiedToken::assume_verified(TokenFacts {
            tenant: TenantIndex(0),
            version: TokenVersion::V2,
            claims: EntraClaims::default(),
            expires_at: exp,
            key_id: crate::token::verify::KeyId::Kid("k".into()),
        })
    }

    fn key(n: u8) -> TokenDigest {
        test_cache(0).digest(&format!("token-{n}"))
    }

    #[test]
    fn cached_token_is_returned_until_it_expires() {
        let mut cache = test_cache(10);
        let _ = cache.insert(key(1), token(100));
        assert!(cache.get(&key(1), 100, |_| true).is_some());
        assert!(
            cache.get(&key(1), 101, |_| true).is_none(),
            "never past exp"
        );
        assert!(cache.is_empty(), "an expired entry is dropped");
    }

    #[test]
    fn entry_whose_key_left_the_set_is_dropped() {
        let mut cache = test_cache(10);
        let _ = cache.insert(key(1), token(100));
        assert!(cache.get(&key(1), 0, |_| false).is_none());
        assert!(cache.get(&key(1), 0, |_| true).is_none());
    }

    #[test]
    fn cache_never_grows_past_its_capacity_and_evicts_the_least_recently_used() {
        let mut cache = test_cache(3);
        for n in 0..3 {
            let _ = cache.insert(key(n), token(100));
        }
        assert!(cache.get(&key(0), 0, |_| true).is_some()); // 0 is now the most recent
        let _ = cache.insert(key(3), token(100));
        assert_eq!(cache.len(), 3);
        assert!(
            cache.get(&key(1), 0, |_| true).is_none(),
            "1 was the least recently used"
        );
        for n in [0, 2, 3] {
            assert!(cache.get(&key(n), 0, |_| true).is_some(), "{n}");
        }
        for n in 10..200 {
            let _ = cache.insert(key(n), token(100));
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.nodes.len(), 3, "slots are reused, not leaked");
    }

    #[test]
    fn storage_for_the_whole_capacity_is_reserved_once() {
        let mut cache = test_cache(100);
        let (nodes, index) = (cache.nodes.capacity(), cache.index.capacity());
        assert!(nodes >= 100 && index >= 100);
        for n in 0..100 {
            let _ = cache.insert(key(n), token(1_000));
        }
        assert_eq!(
            (cache.nodes.capacity(), cache.index.capacity()),
            (nodes, index)
        );
    }

    #[test]
    fn zero_capacity_disables_caching() {
        let mut cache = test_cache(0);
        let _ = cache.insert(key(1), token(100));
        assert!(cache.get(&key(1), 0, |_| true).is_none());
    }

    #[test]
    fn no_random_source_means_no_cache() {
        let (mut cache, failure) = TokenCache::with_random_key(10, |_| Err("no entropy"));
        assert_eq!(failure, Some("no entropy"));
        let _ = cache.insert(key(1), token(100));
        assert!(cache.get(&key(1), 0, |_| true).is_none());
        assert!(cache.is_empty());
        // A partly written key is no key either.
        let (mut cache, failure) = TokenCache::with_random_key(10, |bytes| {
            bytes[0] = 1;
            Err(())
        });
        assert!(failure.is_some());
        let _ = cache.insert(key(1), token(100));
        assert!(cache.is_empty());
    }

    #[test]
    fn the_random_source_keys_the_digests() {
        let (mut cache, failure) = TokenCache::with_random_key(10, |bytes| {
            *bytes = [9; 16];
            Ok::<(), ()>(())
        });
        assert!(failure.is_none());
        let expected = TokenCache::new(1, DigestKey::new([9; 16])).digest("a.b.c");
        assert_eq!(cache.digest("a.b.c"), expected);
        let _ = cache.insert(key(1), token(100));
        assert!(cache.get(&key(1), 0, |_| true).is_some());
    }

    #[test]
    fn digest_covers_header_claims_and_signature() {
        // One character changed in any segment, at its start or its end, is another tag.
        let token = format!("{}.{}.{}", "h".repeat(40), "c".repeat(600), "s".repeat(342));
        let cache = test_cache(0);
        let tag = cache.digest(&token);
        let mut bytes = token.clone().into_bytes();
        let dots: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] == b'.').collect();
        for at in [
            0,
            dots[0] - 1,
            dots[0] + 1,
            dots[1] - 1,
            dots[1] + 1,
            bytes.len() - 1,
        ] {
            let original = bytes[at];
            bytes[at] = b'x';
            let changed = String::from_utf8(bytes.clone()).unwrap();
            assert_ne!(cache.digest(&changed), tag, "byte {at}");
            bytes[at] = original;
        }
        assert_eq!(cache.digest(&String::from_utf8(bytes).unwrap()), tag);
    }

    #[test]
    fn different_tokens_have_different_digests() {
        let cache = test_cache(0);
        assert_ne!(cache.digest("a.b.c"), cache.digest("a.b.d"));
        assert_eq!(cache.digest("a.b.c"), cache.digest("a.b.c"));
    }

    #[test]
    fn digests_depend_on_the_secret_key() {
        let a = TokenCache::new(1, DigestKey::new([1; 16]));
        let b = TokenCache::new(1, DigestKey::new([2; 16]));
        assert_ne!(a.digest("a.b.c"), b.digest("a.b.c"));
    }

    #[test]
    fn digest_is_siphash_2_4_with_128_bit_output() {
        // The published test vectors of SipHash-2-4-128 (the reference implementation's
        // `vectors_sip128`): key 00 01 .. 0f, message 00 01 .. (n - 1).
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        let cache = TokenCache::new(1, DigestKey::new(key));
        let hex = |message: &str| -> String {
            cache
                .digest(message)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        assert_eq!(hex(""), "a3817f04ba25a8e66df67214c7550293");
        assert_eq!(hex("\u{0}"), "da87c1d86b99af44347659119b22fc45");
        assert_eq!(hex("\u{0}\u{1}"), "8177228da4a45dc7fca38bdef60affe4");
    }

    #[test]
    fn shared_text_stays_bounded() {
        let mut shared = SharedText::default();
        for n in 0..3 * MAX_SHARED {
            let text: Rc<str> = Rc::from(format!("text-{n}").as_str());
            assert_eq!(shared.text(&text), text);
            let roles: Rc<[String]> = vec![format!("role-{n}")].into();
            assert_eq!(shared.roles(&roles), roles);
            assert!(shared.texts.len() <= MAX_SHARED && shared.role_lists.len() <= MAX_SHARED);
        }
    }
}
