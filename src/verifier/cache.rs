//! The verified-token cache.
//!
//! SECURITY DECISION: a token that verified is accepted again, for the rest
//! of its lifetime, without repeating the signature check. This is sound
//! because:
//! - the key is the exact token text (a fast seeded hash picks the bucket,
//!   then the whole token is compared), so no other token can ever hit an
//!   entry;
//! - `exp` and `nbf` are re-checked with the leeway on every hit, and an entry
//!   is evicted no later than `exp` + leeway;
//! - when a key leaves its issuer's set (rotation, compromise), every entry
//!   verified with it is purged; past `max_stale` the issuer's keys, cached
//!   or not, stop being trusted;
//! - only successes are cached: a rejection is never remembered as an
//!   acceptance, and failed tokens never take space that good ones need.
//!
//! The cache is bounded by weight (token length plus a fixed overhead per
//! entry), so memory stays bounded whatever tokens clients send.
//!
//! In front of it, each thread remembers the last few entries it was served
//! (the memo): a client sends the same token request after request, and
//! finding it there costs a comparison, where the shared cache would hash
//! the token, take its read path and its housekeeping. The memo only
//! shortcuts the lookup: every check above is made on what it returns, and
//! a removal from the cache voids the memo (see [`TokenCache::get`]).

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::claims::Claims;
use crate::jwks::{KeySource, VerifyKey};

/// Bytes charged per entry besides the token itself: the parsed claims and
/// moka's bookkeeping. Measured (BENCHMARKS.md, "Memory") at about 1,215
/// bytes, so the configured size is a real bound on memory.
const ENTRY_OVERHEAD: u32 = 1216;

#[derive(Clone)]
pub(crate) struct Entry {
    /// The token, shared with the cache's key: what the memo compares.
    token: Arc<str>,
    pub(crate) claims: Arc<dyn Any + Send + Sync>,
    pub(crate) claims_type: TypeId,
    pub(crate) exp: i64,
    pub(crate) nbf: Option<i64>,
    /// The key source of the issuer (or tenant) that verified the token.
    pub(crate) keys: Arc<KeySource>,
    /// The key that verified the token: the entry is only good while that
    /// very key is in force.
    pub(crate) key: Weak<VerifyKey>,
    ttl: Duration,
}

struct Ttl;

impl moka::Expiry<Arc<str>, Arc<Entry>> for Ttl {
    fn expire_after_create(
        &self,
        _key: &Arc<str>,
        value: &Arc<Entry>,
        _now: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

pub(crate) struct TokenCache {
    /// Values behind an `Arc`: moka clones the value on every hit, and one
    /// reference count is cheaper than the entry's three.
    map: Cache<Arc<str>, Arc<Entry>, foldhash::fast::RandomState>,
    /// This cache among all caches of the process, in the threads' memos.
    id: u64,
    /// Bumped after every removal: a memo slot remembered under another
    /// generation is void.
    generation: AtomicU64,
}

/// Entries each thread remembers (a power of two).
const MEMO_SLOTS: usize = 8;

/// An entry a thread was served, and the cache and generation it came
/// from.
struct Slot {
    cache: u64,
    generation: u64,
    entry: Arc<Entry>,
}

thread_local! {
    /// Per thread, so that a hit touches no memory other threads write.
    /// It keeps at most [`MEMO_SLOTS`] entries alive past their eviction.
    static MEMO: RefCell<[Option<Slot>; MEMO_SLOTS]> =
        const { RefCell::new([const { None }; MEMO_SLOTS]) };
}

/// The memo slot of `token`, from its last bytes: the end of a signature,
/// as good as random across tokens. (Tokens chosen to share a slot only
/// cost lookups in the shared cache: a slot serves only the very token it
/// holds, compared in full.)
fn slot_of(token: &str) -> usize {
    let bytes = token.as_bytes();
    let mut tail = [0u8; 8];
    let start = bytes.len().saturating_sub(tail.len());
    if let (Some(dst), Some(src)) = (tail.get_mut(..bytes.len() - start), bytes.get(start..)) {
        dst.copy_from_slice(src);
    }
    let mixed = (u64::from_le_bytes(tail) ^ bytes.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // The top bits of the product: MEMO_SLOTS is a power of two.
    usize::try_from(mixed >> (64 - MEMO_SLOTS.trailing_zeros())).unwrap_or(0) % MEMO_SLOTS
}

/// Numbers the caches of the process, for the memo.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl TokenCache {
    pub(crate) fn new(max_bytes: u64) -> Self {
        let map = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|token: &Arc<str>, _: &Arc<Entry>| {
                u32::try_from(token.len())
                    .unwrap_or(u32::MAX)
                    .saturating_add(ENTRY_OVERHEAD)
            })
            .expire_after(Ttl)
            .support_invalidation_closures()
            .build_with_hasher(foldhash::fast::RandomState::default());
        Self {
            map,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
        }
    }

    /// `f` of the cached entry for exactly this token (`None` without
    /// one): from this thread's memo, or from the cache (and then
    /// remembered). `f` is called at most once.
    ///
    /// SECURITY: the memo serves an entry only for the very same token (the
    /// whole text compared, as the cache compares keys), from this cache,
    /// and only while the cache's generation is the one it was remembered
    /// under. The generation is read before the cache is, and bumped after
    /// every removal has taken effect, so an entry removed before or while
    /// it was remembered is never served from the memo. Evictions for size
    /// or time need no bump: they free memory, and the entry's key, dates
    /// and key set are checked on every hit, wherever the entry came from.
    pub(crate) fn get<R>(&self, token: &str, mut f: impl FnMut(&Entry) -> Option<R>) -> Option<R> {
        let generation = self.generation.load(Ordering::Acquire);
        let index = slot_of(token);
        let mut answer = None;
        let remembered = MEMO
            .try_with(|memo| {
                let Ok(memo) = memo.try_borrow() else {
                    return false;
                };
                match memo.get(index) {
                    Some(Some(slot))
                        if slot.cache == self.id
                            && slot.generation == generation
                            && *slot.entry.token == *token =>
                    {
                        answer = f(&slot.entry);
                        true
                    }
                    _ => false,
                }
            })
            .unwrap_or(false);
        if remembered {
            return answer;
        }
        let entry = self.map.get(token)?;
        self.remember(index, generation, &entry);
        f(&entry)
    }

    /// Puts `entry` into this thread's memo, in the slot of its token.
    fn remember(&self, index: usize, generation: u64, entry: &Arc<Entry>) {
        let _ = MEMO.try_with(|memo| {
            if let Ok(mut memo) = memo.try_borrow_mut()
                && let Some(slot) = memo.get_mut(index)
            {
                // Dropping the replaced entry here, under the borrow, is
                // safe: dropping an entry touches no memo.
                *slot = Some(Slot {
                    cache: self.id,
                    generation,
                    entry: Arc::clone(entry),
                });
            }
        });
    }

    /// Voids every memo slot taken from this cache so far. Called after a
    /// removal has taken effect.
    fn forget(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The cached claims of type `E`, if the entry holds that type.
    pub(crate) fn claims<E: Send + Sync + 'static>(entry: &Entry) -> Option<Claims<E>> {
        if entry.claims_type != TypeId::of::<E>() {
            return None;
        }
        entry.claims.downcast_ref::<Claims<E>>().cloned()
    }

    pub(crate) fn insert<E: Send + Sync + 'static>(
        &self,
        token: &str,
        claims: &Claims<E>,
        keys: &Arc<KeySource>,
        key: Weak<VerifyKey>,
        now: i64,
        leeway: i64,
    ) {
        let Some(exp) = claims.exp() else { return };
        let remaining = exp.saturating_add(leeway).saturating_sub(now);
        let Ok(secs) = u64::try_from(remaining) else {
            return;
        };
        if secs == 0 {
            return;
        }
        let generation = self.generation.load(Ordering::Acquire);
        let token: Arc<str> = Arc::from(token);
        let entry = Arc::new(Entry {
            token: Arc::clone(&token),
            claims: Arc::new(claims.clone()),
            claims_type: TypeId::of::<E>(),
            exp,
            nbf: claims.nbf(),
            keys: Arc::clone(keys),
            key,
            ttl: Duration::from_secs(secs),
        });
        self.map.insert(token, Arc::clone(&entry));
        self.remember(slot_of(&entry.token), generation, &entry);
        crate::telemetry::token_cache_entries(self.map.entry_count());
    }

    pub(crate) fn remove(&self, token: &str) {
        self.map.invalidate(token);
        self.forget();
        crate::telemetry::token_cache_entries(self.map.entry_count());
    }

    /// Drops the entries whose key has left the key set. Hits check the key
    /// anyway; this only frees the memory early.
    pub(crate) fn purge_retired(&self) {
        // The closure only reads the entry; registering it cannot fail
        // because invalidation closures are enabled above.
        let _ = self
            .map
            .invalidate_entries_if(|_, entry| entry.key.strong_count() == 0);
        // Only frees memory (hits refuse those entries anyway), but the memo
        // must not keep them alive either.
        self.forget();
    }

    /// Rewrites the `exp` of a cached entry, as if time had passed.
    #[cfg(test)]
    pub(crate) fn set_exp(&self, token: &str, exp: i64) {
        if let Some(entry) = self.map.get(token) {
            let mut entry = Entry::clone(&entry);
            entry.exp = exp;
            self.map.insert(Arc::clone(&entry.token), Arc::new(entry));
            self.forget();
        }
    }

    /// Entries currently cached, as of the last housekeeping: reading it
    /// does no work, so a metrics scrape never slows requests down.
    pub(crate) fn len(&self) -> u64 {
        self.map.entry_count()
    }

    /// Runs the pending housekeeping now (tests and benchmarks).
    #[cfg(feature = "test-util")]
    pub(crate) fn settle(&self) {
        self.map.run_pending_tasks();
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use super::*;
    use crate::Verifier;
    use crate::error::Reason;
    use crate::test_util::{TestIssuer, kids};

    use crate::verifier::tests::verifier;

    fn cache(v: &Verifier) -> &TokenCache {
        v.inner.cache.as_deref().unwrap()
    }

    /// Whether `cache` serves an entry for `token` on this thread.
    fn served(cache: &TokenCache, token: &str) -> bool {
        cache.get(token, |_| Some(())).is_some()
    }

    #[tokio::test]
    async fn the_memo_serves_a_hit_without_the_cache_until_a_removal() {
        let issuer = TestIssuer::new("https://t.test");
        let v = verifier(&issuer).await;
        let token = issuer.token().audience("a").sign();
        v.verify(&token).await.unwrap();
        let cache = cache(&v);
        // Gone from the cache behind the memo's back (as an eviction for
        // size would be): this thread's memo still has it.
        cache.map.invalidate(token.as_str());
        assert!(served(cache, &token), "served from the memo");
        assert!(v.verify(&token).await.is_ok());
        assert_eq!(v.metrics().cache_hits, 1);
        // A removal voids the memo.
        cache.remove(&token);
        assert!(!served(cache, &token));
    }

    #[tokio::test]
    async fn the_memo_serves_only_the_very_same_token() {
        let issuer = TestIssuer::new("https://t.test");
        let v = verifier(&issuer).await;
        let token = issuer.token().audience("a").sign();
        v.verify(&token).await.unwrap();
        // Same length, same last bytes (so the same memo slot), one byte
        // different in the payload.
        let mut other = token.clone().into_bytes();
        let dot = token.find('.').unwrap() + 3;
        other[dot] = if other[dot] == b'A' { b'B' } else { b'A' };
        let other = String::from_utf8(other).unwrap();
        assert_eq!(slot_of(&other), slot_of(&token));
        assert!(served(cache(&v), &token));
        assert!(!served(cache(&v), &other));
        assert_ne!(
            v.verify(&other).await.unwrap_err().reason(),
            Reason::KeysUnavailable
        );
    }

    #[tokio::test]
    async fn the_memo_never_serves_another_caches_entry() {
        let issuer = TestIssuer::new("https://t.test");
        let first = verifier(&issuer).await;
        let second = verifier(&issuer).await;
        let token = issuer.token().audience("a").sign();
        first.verify(&token).await.unwrap();
        assert!(served(cache(&first), &token));
        assert!(!served(cache(&second), &token));
    }

    #[tokio::test]
    async fn a_removed_entry_is_never_served_from_any_threads_memo() {
        let issuer = TestIssuer::new("https://t.test");
        let v = verifier(&issuer).await;
        let token = issuer.token().audience("a").sign();
        v.verify(&token).await.unwrap();
        let (remembered_tx, remembered_rx) = std::sync::mpsc::channel();
        let (removed_tx, removed_rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn({
            let (v, token) = (v.clone(), token.clone());
            move || {
                let cache = cache(&v);
                let before = served(cache, &token);
                remembered_tx.send(()).unwrap();
                removed_rx.recv().unwrap();
                (before, served(cache, &token))
            }
        });
        remembered_rx.recv().unwrap();
        cache(&v).remove(&token);
        removed_tx.send(()).unwrap();
        let (before, after) = other.join().unwrap();
        assert!(before, "the other thread remembered the entry");
        assert!(!after, "and no longer serves it once removed");
    }

    #[tokio::test]
    async fn a_purged_entry_is_never_served_from_the_memo_and_a_rotated_keys_token_is_refused() {
        let issuer = TestIssuer::new("https://t.test");
        let server = issuer.serve().await;
        let v = Verifier::builder()
            .issuer(server.issuer_url())
            .jwks_url(server.jwks_url())
            .audience("a")
            .build()
            .await
            .unwrap();
        let token = issuer.token().audience("a").key(kids::RSA).sign();
        v.verify(&token).await.unwrap();
        let cache = cache(&v);
        assert!(served(cache, &token));
        // Hide the entry from the cache, so that only the memo could
        // serve it, then retire its key: the refresh purges.
        cache.map.invalidate(token.as_str());
        assert!(served(cache, &token));
        issuer.remove_key(kids::RSA);
        v.refresh().await;
        assert!(!served(cache, &token), "purged from the memo");
        assert_eq!(
            v.verify(&token).await.unwrap_err().reason(),
            Reason::UnknownKey
        );
    }
}
