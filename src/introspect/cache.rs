//! The introspection cache: confirmed-active answers and refusals, in two
//! separately bounded maps.
//!
//! SECURITY DECISION: the key is the exact token text (a fast seeded hash
//! picks the bucket, then the whole token is compared), so no other token
//! can ever hit an entry, and no hash collision can matter. A flood of
//! unknown tokens fills only the refusal map, which is small and
//! short-lived; the active map only ever holds tokens the endpoint
//! confirmed, so the flood cannot evict them. Freshness is judged on every
//! hit with tokio's clock (so tests can pause it), against both the
//! configured TTL and the age the caller asks for; `exp` and `nbf` are
//! re-checked by the verifier on every hit.

use std::any::{Any, TypeId};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::claims::Claims;
use crate::error::Reason;

/// Bytes charged per entry besides the token: the claims, the raw answer
/// (charged separately) and moka's bookkeeping. Same measured overhead as the
/// verified-token cache.
const ENTRY_OVERHEAD: u32 = 1152;

/// An answer the endpoint confirmed and the claim checks passed.
#[derive(Clone)]
pub(crate) struct Confirmed {
    claims: Arc<dyn Any + Send + Sync>,
    claims_type: TypeId,
    /// The raw answer: parsed again for a caller wanting another claims type.
    pub(crate) body: Arc<[u8]>,
    pub(crate) exp: i64,
    pub(crate) nbf: Option<i64>,
    fetched: tokio::time::Instant,
}

impl Confirmed {
    pub(crate) fn new<E: Send + Sync + 'static>(claims: &Claims<E>, body: Arc<[u8]>) -> Self {
        Self {
            claims: Arc::new(claims.clone()),
            claims_type: TypeId::of::<E>(),
            body,
            exp: claims.exp().unwrap_or(i64::MIN),
            nbf: claims.nbf(),
            fetched: tokio::time::Instant::now(),
        }
    }

    /// The cached claims of type `E`, if the entry holds that type.
    pub(crate) fn claims<E: Send + Sync + 'static>(&self) -> Option<Claims<E>> {
        if self.claims_type != TypeId::of::<E>() {
            return None;
        }
        self.claims.downcast_ref::<Claims<E>>().cloned()
    }
}

#[derive(Clone, Copy)]
struct Refused {
    reason: Reason,
    fetched: tokio::time::Instant,
}

/// What the cache knows about a token.
pub(crate) enum Lookup {
    Active(Confirmed),
    Refused(Reason),
    Miss,
}

/// Memory-only expiry: moka drops an entry after this; freshness on a hit
/// is judged by [`Results::lookup`].
struct Ttl(Duration);

impl Ttl {
    fn of(&self, value: &Confirmed) -> Duration {
        let left = value.exp.saturating_sub(unix_now());
        self.0
            .min(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
    }
}

impl moka::Expiry<Arc<str>, Confirmed> for Ttl {
    fn expire_after_create(&self, _: &Arc<str>, value: &Confirmed, _: Instant) -> Option<Duration> {
        Some(self.of(value))
    }

    /// A fresh answer (a `RequireActive` re-check) starts its own lifetime,
    /// not the first answer's.
    fn expire_after_update(
        &self,
        _: &Arc<str>,
        value: &Confirmed,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.of(value))
    }
}

pub(crate) struct Results {
    active: Cache<Arc<str>, Confirmed, foldhash::fast::RandomState>,
    refused: Cache<Arc<str>, Refused, foldhash::fast::RandomState>,
    active_ttl: Duration,
    refused_ttl: Duration,
}

fn weigh(token: &Arc<str>, extra: usize) -> u32 {
    u32::try_from(token.len().saturating_add(extra))
        .unwrap_or(u32::MAX)
        .saturating_add(ENTRY_OVERHEAD)
}

impl Results {
    pub(crate) fn new(
        active_bytes: u64,
        refused_bytes: u64,
        active_ttl: Duration,
        refused_ttl: Duration,
    ) -> Self {
        let active = Cache::builder()
            .max_capacity(active_bytes)
            .weigher(|token: &Arc<str>, c: &Confirmed| weigh(token, c.body.len()))
            .expire_after(Ttl(active_ttl))
            .build_with_hasher(foldhash::fast::RandomState::default());
        let refused = Cache::builder()
            .max_capacity(refused_bytes)
            .weigher(|token: &Arc<str>, _: &Refused| weigh(token, 0))
            .time_to_live(refused_ttl)
            .build_with_hasher(foldhash::fast::RandomState::default());
        Self {
            active,
            refused,
            active_ttl,
            refused_ttl,
        }
    }

    /// The answer for exactly this token, if one no older than `max_age`
    /// (and than the configured TTLs) is cached.
    pub(crate) fn lookup(&self, token: &str, max_age: Option<Duration>) -> Lookup {
        let limit = |ttl: Duration| max_age.map_or(ttl, |age| age.min(ttl));
        if let Some(entry) = self.active.get(token) {
            if entry.fetched.elapsed() < limit(self.active_ttl) {
                return Lookup::Active(entry);
            }
        } else if let Some(entry) = self.refused.get(token)
            && entry.fetched.elapsed() < limit(self.refused_ttl)
        {
            return Lookup::Refused(entry.reason);
        }
        Lookup::Miss
    }

    pub(crate) fn confirm(&self, token: &str, confirmed: Confirmed) {
        self.refused.invalidate(token);
        if confirmed.exp > unix_now() {
            self.active.insert(Arc::from(token), confirmed);
        }
    }

    pub(crate) fn refuse(&self, token: &str, reason: Reason) {
        // SECURITY: a refusal replaces an earlier acceptance at once.
        self.active.invalidate(token);
        self.refused.insert(
            Arc::from(token),
            Refused {
                reason,
                fetched: tokio::time::Instant::now(),
            },
        );
    }

    /// Confirmed answers cached now, as of the last housekeeping.
    #[cfg(test)]
    pub(crate) fn active_len(&self) -> u64 {
        self.active.entry_count()
    }

    #[cfg(test)]
    pub(crate) fn settle(&self) {
        self.active.run_pending_tasks();
        self.refused.run_pending_tasks();
    }
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confirmed(exp: i64) -> Confirmed {
        let claims: Claims = Claims::from_json(&format!(r#"{{"exp":{exp},"sub":"a"}}"#)).unwrap();
        Confirmed::new(&claims, Arc::from(&b"{}"[..]))
    }

    fn results() -> Results {
        Results::new(
            1 << 20,
            1 << 16,
            Duration::from_secs(30),
            Duration::from_secs(5),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn active_answer_is_reused_until_the_ttl_then_asked_again() {
        let r = results();
        r.confirm("t", confirmed(unix_now() + 3600));
        assert!(matches!(r.lookup("t", None), Lookup::Active(_)));
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(matches!(r.lookup("t", None), Lookup::Active(_)));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(matches!(r.lookup("t", None), Lookup::Miss));
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_may_ask_for_a_younger_answer_than_the_ttl() {
        let r = results();
        r.confirm("t", confirmed(unix_now() + 3600));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(matches!(
            r.lookup("t", Some(Duration::from_secs(5))),
            Lookup::Miss
        ));
        assert!(matches!(
            r.lookup("t", Some(Duration::from_secs(6))),
            Lookup::Active(_)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_are_kept_for_the_short_ttl() {
        let r = results();
        r.refuse("t", Reason::Inactive);
        assert!(matches!(
            r.lookup("t", None),
            Lookup::Refused(Reason::Inactive)
        ));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(matches!(r.lookup("t", None), Lookup::Miss));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_lifetimes_reuse_no_answer() {
        let r = Results::new(1 << 20, 1 << 16, Duration::ZERO, Duration::ZERO);
        r.confirm("active", confirmed(unix_now() + 3600));
        r.refuse("refused", Reason::Inactive);
        // Not even at the instant it was stored: every request asks.
        assert!(matches!(r.lookup("active", None), Lookup::Miss));
        assert!(matches!(r.lookup("refused", None), Lookup::Miss));
    }

    #[test]
    fn an_already_expired_answer_is_not_kept() {
        let r = results();
        r.confirm("t", confirmed(unix_now() - 1));
        assert!(matches!(r.lookup("t", None), Lookup::Miss));
    }

    #[test]
    fn a_refusal_replaces_an_acceptance() {
        let r = results();
        r.confirm("t", confirmed(unix_now() + 3600));
        r.refuse("t", Reason::Inactive);
        assert!(matches!(
            r.lookup("t", None),
            Lookup::Refused(Reason::Inactive)
        ));
        r.confirm("t", confirmed(unix_now() + 3600));
        assert!(matches!(r.lookup("t", None), Lookup::Active(_)));
    }

    #[test]
    fn a_flood_of_refusals_never_evicts_an_active_answer() {
        let r = results();
        r.confirm("good", confirmed(unix_now() + 3600));
        for i in 0..5_000 {
            r.refuse(&format!("random-{i:032}"), Reason::Inactive);
        }
        r.settle();
        assert!(matches!(r.lookup("good", None), Lookup::Active(_)));
        assert_eq!(r.active_len(), 1);
        // The refusal map stays within its budget: 64 KiB / ~1.2 KiB.
        assert!(r.refused.entry_count() <= 60, "{}", r.refused.entry_count());
    }

    #[test]
    fn claims_of_another_type_are_not_handed_out() {
        let c = confirmed(unix_now() + 3600);
        assert!(c.claims::<()>().is_some());
        assert!(c.claims::<serde_json::Value>().is_none());
    }
}
