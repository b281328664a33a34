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

use std::any::{Any, TypeId};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::claims::Claims;
use crate::jwks::{KeySource, VerifyKey};

/// Bytes charged per entry besides the token itself: the parsed claims and
/// moka's bookkeeping. Measured (BENCHMARKS.md, "Memory") at about 1,100
/// bytes, so the configured size is a real bound on memory.
const ENTRY_OVERHEAD: u32 = 1152;

#[derive(Clone)]
pub(crate) struct Entry {
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
}

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
        Self { map }
    }

    /// The cached entry for exactly this token, if any.
    pub(crate) fn get(&self, token: &str) -> Option<Arc<Entry>> {
        self.map.get(token)
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
        self.map.insert(
            Arc::from(token),
            Arc::new(Entry {
                claims: Arc::new(claims.clone()),
                claims_type: TypeId::of::<E>(),
                exp,
                nbf: claims.nbf(),
                keys: Arc::clone(keys),
                key,
                ttl: Duration::from_secs(secs),
            }),
        );
        crate::telemetry::token_cache_entries(self.map.entry_count());
    }

    pub(crate) fn remove(&self, token: &str) {
        self.map.invalidate(token);
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
    }

    /// Rewrites the `exp` of a cached entry, as if time had passed.
    #[cfg(test)]
    pub(crate) fn set_exp(&self, token: &str, exp: i64) {
        if let Some(entry) = self.map.get(token) {
            let mut entry = Entry::clone(&entry);
            entry.exp = exp;
            self.map.insert(Arc::from(token), Arc::new(entry));
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
