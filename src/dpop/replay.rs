//! Replay protection: each proof's `jti` is accepted once per target
//! (RFC 9449 §11.1) for as long as its `iat` is inside the window.
//!
//! The store sees only a [`ReplayKey`], a SHA-256 over the proof key's
//! thumbprint, `jti`, `htm` and `htu`: fixed size whatever the client sent,
//! and never the client's text itself.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;
use moka::policy::EvictionPolicy;

use super::hash::{NoDigest, sha256};

/// A boxed future: what a [`ProofStore`] returns, so one store type can be
/// chosen at run time (in memory, Redis).
pub(crate) type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What identifies one proof for replay purposes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ReplayKey(pub(crate) [u8; 32]);

impl fmt::Debug for ReplayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplayKey(")?;
        for b in self.0.iter().take(4) {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…)")
    }
}

impl ReplayKey {
    /// The key of a proof by the key `jkt` with this `jti` for the target
    /// `htm` `htu` (normalized). Each field is length-prefixed, so no two
    /// different tuples hash the same bytes.
    ///
    /// SECURITY: the thumbprint is part of the key, so clients cannot burn
    /// each other's `jti`s (and one client's poor `jti` generator collides
    /// only with itself).
    pub(crate) fn new(jkt: &str, jti: &str, htm: &str, htu: &str) -> Result<Self, NoDigest> {
        let len = |s: &str| u64::try_from(s.len()).unwrap_or(u64::MAX).to_be_bytes();
        let (a, b, c, d) = (len(jkt), len(jti), len(htm), len(htu));
        sha256(&[
            b"authlayer DPoP replay v1\n",
            &a,
            jkt.as_bytes(),
            &b,
            jti.as_bytes(),
            &c,
            htm.as_bytes(),
            &d,
            htu.as_bytes(),
        ])
        .map(ReplayKey)
    }
}

/// A store failed; the proof is refused (fail closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoreError(pub(crate) String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// Where seen proofs are remembered.
pub(crate) trait ProofStore: Send + Sync + 'static {
    /// Records `key` for `ttl` unless it is there already: `Ok(true)` the
    /// first time (the proof is fresh), `Ok(false)` if it was seen within
    /// its `ttl` (a replay). Atomic: of two concurrent calls with one key,
    /// exactly one gets `true`, including across processes sharing the store.
    ///
    /// An `Err` refuses the proof: a store that cannot answer must never
    /// let a replay through.
    fn first_use<'a>(
        &'a self,
        key: &'a ReplayKey,
        ttl: Duration,
    ) -> StoreFuture<'a, Result<bool, StoreError>>;

    /// The same answer without waiting, for a store that never waits (the
    /// in-memory one): so the common case costs the request no boxed
    /// future. `None` (the default): ask [`first_use`](Self::first_use).
    fn first_use_now(&self, _key: &ReplayKey, _ttl: Duration) -> Option<Result<bool, StoreError>> {
        None
    }
}

/// The default store: in this process, bounded, forgotten after each
/// entry's window.
///
/// Without a shared store, a proof is refused only when it is replayed to
/// the same process: replicas behind a load balancer each accept it once.
/// When the store is full, the entries closest to expiry are forgotten
/// first (LRU, never admission-filtered: a new `jti` is always recorded);
/// [`evicted_early`](Self::evicted_early) counts them.
#[derive(Clone)]
pub(crate) struct MemoryReplayStore {
    seen: moka::sync::Cache<ReplayKey, Duration>,
    evicted_early: Arc<AtomicU64>,
}

/// Default capacity of the in-memory store: at the default 65 s window,
/// about 1500 proofs per second (each entry is ~150 bytes in moka).
pub(crate) const DEFAULT_CAPACITY: u64 = 100_000;

/// Each entry lives for the `ttl` stored as its value.
struct TtlExpiry;

impl moka::Expiry<ReplayKey, Duration> for TtlExpiry {
    fn expire_after_create(
        &self,
        _key: &ReplayKey,
        ttl: &Duration,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(*ttl)
    }
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayStore")
            .field("entries", &self.seen.entry_count())
            .field("evicted_early", &self.evicted_early())
            .finish()
    }
}

impl MemoryReplayStore {
    /// A store remembering at most `capacity` proofs.
    pub(crate) fn new(capacity: u64) -> Self {
        let evicted_early = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&evicted_early);
        let seen = moka::sync::Cache::builder()
            .max_capacity(capacity)
            // SECURITY: TinyLFU (moka's default) may refuse to admit a new
            // key when the cache is full, and a `jti` not recorded could be
            // replayed: LRU always records the new one.
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(TtlExpiry)
            .eviction_listener(move |_, _, cause| {
                if cause == RemovalCause::Size {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        MemoryReplayStore {
            seen,
            evicted_early,
        }
    }

    /// Entries forgotten before their window ended because the store was
    /// full: each is a proof that could be replayed once more.
    pub(crate) fn evicted_early(&self) -> u64 {
        self.evicted_early.load(Ordering::Relaxed)
    }

    fn record(&self, key: ReplayKey, ttl: Duration) -> bool {
        // SECURITY: `or_insert_with`, not `or_insert`: moka's `or_insert` is
        // a lookup then an insert, so two concurrent first uses could both
        // see the key absent and both be accepted; `or_insert_with` runs one
        // initializer per key and the others wait for it and read its value.
        self.seen.entry(key).or_insert_with(|| ttl).is_fresh()
    }
}

impl ProofStore for MemoryReplayStore {
    fn first_use<'a>(
        &'a self,
        key: &'a ReplayKey,
        ttl: Duration,
    ) -> StoreFuture<'a, Result<bool, StoreError>> {
        Box::pin(std::future::ready(Ok(self.record(*key, ttl))))
    }

    fn first_use_now(&self, key: &ReplayKey, ttl: Duration) -> Option<Result<bool, StoreError>> {
        Some(Ok(self.record(*key, ttl)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(jti: &str) -> ReplayKey {
        ReplayKey::new("jkt", jti, "GET", "https://api.example/orders").unwrap()
    }

    #[tokio::test]
    async fn a_jti_is_accepted_once_per_target() {
        let store = MemoryReplayStore::default();
        let ttl = Duration::from_secs(60);
        assert_eq!(store.first_use(&key("a"), ttl).await, Ok(true));
        assert_eq!(store.first_use(&key("a"), ttl).await, Ok(false));
        assert_eq!(store.first_use(&key("b"), ttl).await, Ok(true));
        let other_target =
            ReplayKey::new("jkt", "a", "POST", "https://api.example/orders").unwrap();
        assert_eq!(store.first_use(&other_target, ttl).await, Ok(true));
    }

    #[test]
    fn every_field_of_the_key_counts_and_fields_cannot_shift() {
        let base = ReplayKey::new("k", "j", "GET", "https://a/x").unwrap();
        for other in [
            ReplayKey::new("k2", "j", "GET", "https://a/x"),
            ReplayKey::new("k", "j2", "GET", "https://a/x"),
            ReplayKey::new("k", "j", "PUT", "https://a/x"),
            ReplayKey::new("k", "j", "GET", "https://a/y"),
            // The same bytes split differently between fields.
            ReplayKey::new("kj", "", "GET", "https://a/x"),
            ReplayKey::new("k", "jG", "ET", "https://a/x"),
        ] {
            assert_ne!(other.unwrap(), base);
        }
        assert_eq!(
            ReplayKey::new("k", "j", "GET", "https://a/x").unwrap(),
            base
        );
    }

    #[test]
    fn concurrent_uses_of_one_jti_let_exactly_one_through() {
        let store = MemoryReplayStore::default();
        // Many rounds: a lookup-then-insert race loses some of them.
        for round in 0..100 {
            let k = key(&format!("raced-{round}"));
            let wins: usize = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| s.spawn(|| usize::from(store.record(k, Duration::from_secs(60)))))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert_eq!(wins, 1, "round {round}");
        }
    }

    #[test]
    fn an_entry_is_forgotten_after_its_ttl() {
        let store = MemoryReplayStore::default();
        assert!(store.record(key("short"), Duration::from_millis(1)));
        // moka's clock is its own; wait for the entry to expire rather than
        // for a fixed time (bounded).
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.seen.contains_key(&key("short")) {
            assert!(Instant::now() < deadline, "entry never expired");
            std::thread::yield_now();
        }
        assert!(store.record(key("short"), Duration::from_secs(60)));
        assert!(!store.record(key("short"), Duration::from_secs(60)));
    }

    #[test]
    fn a_full_store_records_the_newest_and_counts_what_it_forgets() {
        let store = MemoryReplayStore::new(10);
        for i in 0..50 {
            assert!(store.record(key(&i.to_string()), Duration::from_secs(60)));
            store.seen.run_pending_tasks();
        }
        assert!(store.seen.entry_count() <= 10);
        assert!(store.evicted_early() >= 40, "{}", store.evicted_early());
        // The newest is still there: a replay of it is refused.
        assert!(!store.record(key("49"), Duration::from_secs(60)));
    }

    #[test]
    fn debug_shows_no_key_material() {
        assert_eq!(
            format!("{:?}", ReplayKey([0xab; 32])),
            "ReplayKey(abababab…)"
        );
    }
}
