//! Key sources of a tenant-templated issuer without a shared JWKS: one per
//! admitted tenant, found by that tenant's OIDC discovery, created on the
//! first token naming it, and bounded in number.
//!
//! The tenant comes from a token whose signature is not checked yet (its
//! keys are what we are looking for), so nothing a stranger can cause may
//! last: a tenant gets a lasting source only once its keys loaded, and the
//! least recently used of those makes room for a new one. A first fetch
//! that fails leaves no source behind, only a note that refuses the same
//! tenant without a fetch until the refetch cooldown has passed.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::error::Reason;
use crate::health::{IssuerHealth, TenantsHealth};
use crate::jwks::{
    AlgSet, FetchSettings, KeySource, Lifecycle, Location, Remote, Shared, Trigger, parse_url,
};

/// Defaults to 64 tenants per template.
pub(crate) const DEFAULT_MAX_TENANTS: usize = 64;

/// Memory for the names of tenants whose first fetch failed, in bytes.
const FAILED_NAMES_BYTES: u64 = 256 * 1024;

/// What a new tenant's key source is made of.
pub(crate) struct Factory {
    /// The template: the label of every tenant's source in metrics and logs.
    pub(crate) template: Arc<str>,
    pub(crate) client: reqwest::Client,
    pub(crate) settings: FetchSettings,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) shared: Shared,
    pub(crate) algs: AlgSet,
}

/// A tenant whose keys loaded.
struct Tenant {
    keys: Arc<KeySource>,
    // Dropped with the entry (evicted, or with the verifier): stops the
    // tenant's refresher.
    _stop: oneshot::Sender<()>,
}

/// A tenant whose first fetch is running.
struct Pending {
    iss: Box<str>,
    keys: Arc<KeySource>,
    done: watch::Receiver<bool>,
}

pub(crate) struct TenantKeys {
    factory: Factory,
    /// At most `max`; the least recently used is evicted for a new one.
    loaded: moka::sync::Cache<Box<str>, Arc<Tenant>>,
    /// At most `max` at once; each leaves when its first fetch ends.
    pending: Mutex<Vec<Pending>>,
    /// When each tenant's first fetch failed; bounded in bytes.
    failed: moka::sync::Cache<Arc<str>, Instant>,
    max: usize,
}

impl TenantKeys {
    pub(crate) fn new(factory: Factory, max: usize) -> Self {
        Self {
            factory,
            loaded: moka::sync::Cache::builder()
                .max_capacity(u64::try_from(max).unwrap_or(u64::MAX))
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .build(),
            pending: Mutex::new(Vec::new()),
            failed: moka::sync::Cache::builder()
                .weigher(|name: &Arc<str>, _: &Instant| {
                    u32::try_from(name.len()).unwrap_or(u32::MAX)
                })
                .max_capacity(FAILED_NAMES_BYTES)
                .build(),
            max,
        }
    }

    /// The key source for the issuer `iss` (an admitted tenant's name): its
    /// loaded one, or the one whose first fetch is running, or a new one
    /// whose first fetch starts at once. A tenant whose first fetch failed
    /// within the refetch cooldown, or one more tenant while `max` are being
    /// fetched, is refused (503: keys unavailable, not the client's fault).
    pub(crate) fn get(&self, iss: &str) -> Result<Arc<KeySource>, Reason> {
        if let Some(tenant) = self.loaded.get(iss) {
            return Ok(Arc::clone(&tenant.keys));
        }
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        self.settle(&mut pending);
        if let Some(tenant) = self.loaded.get(iss) {
            return Ok(Arc::clone(&tenant.keys));
        }
        if let Some(p) = pending.iter().find(|p| *p.iss == *iss) {
            return Ok(Arc::clone(&p.keys));
        }
        let f = &self.factory;
        if let Some(failed_at) = self.failed.get(iss) {
            // SECURITY (fetch amplification): a tenant whose keys could not
            // be found is not looked for again before the cooldown, however
            // many tokens name it.
            if failed_at.elapsed() < f.lifecycle.cooldown {
                return Err(Reason::KeysUnavailable);
            }
            self.failed.invalidate(iss);
        }
        // SECURITY (key source integrity): the template passed the URL
        // policy at build; each tenant's own issuer URL must too, as every
        // key URL does.
        if let Err(reason) = parse_url(iss, f.settings.allow_http) {
            tracing::warn!(template = %f.template, %reason, "a tenant's issuer URL is refused");
            return Err(Reason::KeysUnavailable);
        }
        if pending.len() >= self.max {
            // SECURITY (fetch amplification): at most `max` first fetches at
            // once, each bounded by the fetch timeout. The slots free
            // themselves: a stranger's tokens hold them for a fetch, never
            // for good.
            tracing::warn!(
                max = self.max,
                template = %f.template,
                "too many tenants' keys are being fetched at once"
            );
            return Err(Reason::KeysUnavailable);
        }
        let keys = Arc::new(KeySource::new(
            Arc::clone(&f.template),
            f.algs,
            None,
            Some(Remote {
                client: f.client.clone(),
                settings: f.settings.clone(),
                location: Location::Discover {
                    issuer: iss.to_owned(),
                },
            }),
            f.lifecycle.clone(),
            f.shared.clone(),
        ));
        let Some(done) = keys.start_fetch(Trigger::Scheduled) else {
            return Err(Reason::KeysUnavailable);
        };
        pending.push(Pending {
            iss: iss.into(),
            keys: Arc::clone(&keys),
            done,
        });
        Ok(keys)
    }

    /// Moves every pending tenant whose first fetch ended: to the loaded
    /// ones (its refresher starts), or to the failed ones (its source is
    /// dropped).
    fn settle(&self, pending: &mut Vec<Pending>) {
        let mut added = false;
        pending.retain(|p| {
            if !*p.done.borrow() {
                return true;
            }
            if p.keys.never_loaded() {
                self.failed.insert(Arc::from(&*p.iss), Instant::now());
            } else {
                let (stop, rx) = oneshot::channel();
                p.keys.spawn_refresher(rx, p.keys.next_delay());
                self.loaded.insert(
                    p.iss.clone(),
                    Arc::new(Tenant {
                        keys: Arc::clone(&p.keys),
                        _stop: stop,
                    }),
                );
                added = true;
            }
            false
        });
        if added {
            // Evict now, not at moka's next housekeeping: the bound holds.
            self.loaded.run_pending_tasks();
        }
    }

    /// Every tenant source whose keys loaded.
    pub(crate) fn all(&self) -> Vec<Arc<KeySource>> {
        self.settle(&mut self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        self.loaded
            .iter()
            .map(|(_, tenant)| Arc::clone(&tenant.keys))
            .collect()
    }

    /// Health of the template's tenant sources.
    pub(crate) fn health(&self) -> TenantsHealth {
        let pending = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            self.settle(&mut pending);
            pending.len()
        };
        let mut loaded: Vec<IssuerHealth> = self
            .loaded
            .iter()
            .map(|(iss, tenant)| {
                let mut health = tenant.keys.health();
                health.issuer = iss.to_string();
                health
            })
            .collect();
        loaded.sort_by(|a, b| a.issuer.cmp(&b.issuer));
        let cooldown = self.factory.lifecycle.cooldown;
        let failed = self
            .failed
            .iter()
            .filter(|(_, at)| at.elapsed() < cooldown)
            .count();
        TenantsHealth {
            template: self.factory.template.to_string(),
            max_tenants: self.max,
            loaded,
            pending,
            failed,
        }
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::*;
    use crate::health::Counters;
    use crate::test_util::TestIssuer;

    const COOLDOWN: Duration = Duration::from_secs(30);

    fn tenant_keys(max: usize) -> (TenantKeys, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let settings = FetchSettings {
            timeout: Duration::from_secs(5),
            max_body: 256 * 1024,
            max_keys: 64,
            allow_http: false,
            follow_redirects: false,
        };
        let factory = Factory {
            template: "http://127.0.0.1/{tenantid}".into(),
            client: settings.client().unwrap(),
            settings,
            lifecycle: Lifecycle {
                refresh_interval: Duration::from_secs(300),
                min_refresh: Duration::from_secs(60),
                max_refresh: Duration::from_secs(3600),
                cooldown: COOLDOWN,
                max_stale: Some(Duration::from_secs(24 * 3600)),
            },
            shared: Shared {
                counters: Arc::clone(&counters),
                runtime: tokio::runtime::Handle::current(),
                on_new_keys: None,
            },
            algs: AlgSet::ASYMMETRIC,
        };
        (TenantKeys::new(factory, max), counters)
    }

    /// Waits for the first fetch of every pending tenant.
    async fn first_fetches(keys: &TenantKeys) {
        let waits: Vec<_> = {
            let pending = keys.pending.lock().unwrap();
            pending.iter().map(|p| p.done.clone()).collect()
        };
        for mut done in waits {
            let _ = done.wait_for(|d| *d).await;
        }
    }

    /// Skips virtual time forward by `d`, then lets the clock run again.
    async fn skip(d: Duration) {
        tokio::time::pause();
        tokio::time::advance(d).await;
        tokio::time::resume();
    }

    #[tokio::test]
    async fn a_tenant_whose_issuer_url_fails_the_url_policy_gets_no_source() {
        let (keys, counters) = tenant_keys(4);
        for iss in [
            "http://login.example/t-1/v2.0",
            "ftp://127.0.0.1/t-1/v2.0",
            "t-1",
        ] {
            assert_eq!(keys.get(iss).err(), Some(Reason::KeysUnavailable), "{iss}");
        }
        let health = keys.health();
        assert_eq!((health.pending, health.loaded.len()), (0, 0));
        assert_eq!(counters.fetches.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_failed_first_fetch_leaves_no_source_and_is_retried_after_the_cooldown() {
        let issuer = TestIssuer::new("x");
        let server = issuer.serve().await;
        let (keys, _) = tenant_keys(1);
        // No discovery document there: 404.
        let gone = format!("{}/t-gone", server.issuer_url());
        assert!(keys.get(&gone).is_ok(), "a first fetch starts");
        first_fetches(&keys).await;
        assert_eq!(server.requests(), 1);
        for _ in 0..10 {
            assert_eq!(keys.get(&gone).err(), Some(Reason::KeysUnavailable));
        }
        assert_eq!(server.requests(), 1, "no fetch within the cooldown");
        let health = keys.health();
        assert_eq!((health.pending, health.failed), (0, 1), "{health:?}");
        assert!(keys.all().is_empty());

        // The failed tenant holds no slot: with max_tenants(1), a real one
        // gets its source at once.
        let real = keys.get(server.issuer_url()).unwrap();
        first_fetches(&keys).await;
        assert!(!real.never_loaded());
        assert_eq!(keys.all().len(), 1);
        assert_eq!(keys.health().loaded[0].issuer, server.issuer_url());

        skip(COOLDOWN + Duration::from_secs(1)).await;
        assert_eq!(keys.health().failed, 0);
        let before = server.requests();
        assert!(keys.get(&gone).is_ok(), "tried again after the cooldown");
        first_fetches(&keys).await;
        assert_eq!(server.requests(), before + 1);
    }
}
