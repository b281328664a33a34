//! One issuer's key source: the current snapshot, the single-flight refetch,
//! the background refresher and the health record.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use reqwest::Url;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::FetchError;
use super::fetch::{self, FetchSettings, Fetched};
use super::keyset::{AlgSet, KeySet};
use crate::health::{Counters, IssuerHealth};
use crate::telemetry;

/// Timing policy of the key lifecycle.
#[derive(Debug, Clone)]
pub(crate) struct Lifecycle {
    pub(crate) refresh_interval: Duration,
    pub(crate) min_refresh: Duration,
    pub(crate) max_refresh: Duration,
    pub(crate) cooldown: Duration,
    pub(crate) max_stale: Option<Duration>,
}

/// The key set in force and when it was last confirmed by the issuer.
pub(crate) struct Snapshot {
    pub(crate) set: Arc<KeySet>,
    pub(crate) confirmed_at: Instant,
}

/// Where remote keys come from.
pub(crate) enum Location {
    Jwks(Url),
    Discover { issuer: String },
}

pub(crate) struct Remote {
    pub(crate) client: reqwest::Client,
    pub(crate) settings: FetchSettings,
    pub(crate) location: Location,
}

#[derive(Default)]
struct State {
    in_flight: Option<watch::Receiver<bool>>,
    /// When a token naming an unknown key last forced a fetch: the cooldown
    /// counts from here. Scheduled fetches and the first load do not count.
    last_forced: Option<Instant>,
    etag: Option<String>,
    jwks_url: Option<Url>,
    max_age: Option<Duration>,
    next_refresh: Option<Instant>,
    failures: u32,
    last_success: Option<SystemTime>,
    last_error: Option<String>,
}

/// Why a fetch is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// The background refresher's turn, or the first load.
    Scheduled,
    /// A token named a key we do not have: subject to the cooldown.
    UnknownKey,
}

pub(crate) struct KeySource {
    pub(crate) issuer: Arc<str>,
    pub(crate) allowed: AlgSet,
    current: ArcSwapOption<Snapshot>,
    remote: Option<Remote>,
    lifecycle: Lifecycle,
    state: Mutex<State>,
    shared: Shared,
}

/// What every key source of one verifier shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) counters: Arc<Counters>,
    pub(crate) runtime: tokio::runtime::Handle,
    /// Called after a fetch brought a changed key set (the verifier purges
    /// cached tokens whose key left the set).
    pub(crate) on_new_keys: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl KeySource {
    pub(crate) fn new(
        issuer: Arc<str>,
        allowed: AlgSet,
        initial: Option<KeySet>,
        remote: Option<Remote>,
        lifecycle: Lifecycle,
        shared: Shared,
    ) -> Self {
        // Per-tenant sources too: their issuers are label values as well.
        telemetry::known_issuer(&issuer);
        let now = Instant::now();
        let state = State {
            last_success: initial.as_ref().map(|_| SystemTime::now()),
            ..State::default()
        };
        Self {
            issuer,
            allowed,
            current: ArcSwapOption::new(initial.map(|set| {
                Arc::new(Snapshot {
                    set: Arc::new(set),
                    confirmed_at: now,
                })
            })),
            remote,
            lifecycle,
            state: Mutex::new(state),
            shared,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The lock is never held across an await or a panic-prone call; a
        // poisoned lock still holds consistent data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// No key set has ever been loaded. Lock-free.
    pub(crate) fn never_loaded(&self) -> bool {
        self.current.load().is_none()
    }

    pub(crate) fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// The current snapshot, if it may still be used. Lock-free.
    pub(crate) fn usable(&self) -> Result<arc_swap::Guard<Option<Arc<Snapshot>>>, ()> {
        let guard = self.current.load();
        match &*guard {
            None => Err(()),
            Some(snap) => {
                // SECURITY (stale keys): past `max_stale` without a confirmation
                // from the issuer, revoked keys may still be in the set; stop
                // trusting it rather than accept forever.
                if let Some(max) = self.lifecycle.max_stale
                    && self.remote.is_some()
                    && snap.confirmed_at.elapsed() > max
                {
                    return Err(());
                }
                Ok(guard)
            }
        }
    }

    /// Starts a fetch unless one is running (then joins it) or, for
    /// [`Trigger::UnknownKey`], the cooldown forbids it (then `None`: fail fast).
    pub(crate) fn start_fetch(self: &Arc<Self>, trigger: Trigger) -> Option<watch::Receiver<bool>> {
        self.remote.as_ref()?;
        let mut state = self.state();
        if let Some(rx) = &state.in_flight {
            return Some(rx.clone());
        }
        let now = Instant::now();
        if trigger == Trigger::UnknownKey {
            // SECURITY (refetch flood): at most one forced fetch per cooldown
            // window, however many unknown kids arrive. Only forced fetches
            // start a window: a key the issuer began signing with right after
            // a scheduled refresh (Keycloak does) is fetched on first sight.
            if let Some(last) = state.last_forced
                && now.saturating_duration_since(last) < self.lifecycle.cooldown
            {
                self.shared
                    .counters
                    .cooldown_rejections
                    .fetch_add(1, Ordering::Relaxed);
                return None;
            }
            self.shared
                .counters
                .kid_refetches
                .fetch_add(1, Ordering::Relaxed);
            state.last_forced = Some(now);
        }
        let (tx, rx) = watch::channel(false);
        state.in_flight = Some(rx.clone());
        drop(state);
        let this = Arc::clone(self);
        // A spawned task, not the request's future: a client that gives up
        // does not cancel the fetch the others are waiting for.
        self.shared.runtime.spawn(async move {
            let _ = this.fetch_now().await;
            this.state().in_flight = None;
            let _ = tx.send(true);
        });
        Some(rx)
    }

    /// Fetches once and updates the snapshot and the health record. The
    /// current set is replaced only by a set that parsed and has a usable key.
    async fn fetch_now(&self) -> Result<(), FetchError> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        self.shared.counters.fetches.fetch_add(1, Ordering::Relaxed);
        let result = self.fetch_remote(remote).await;
        let outcome = match &result {
            Ok(Fetched::Keys { .. }) => "updated",
            Ok(Fetched::NotModified { .. }) => "not_modified",
            Err(_) => "error",
        };
        telemetry::jwks_fetch(&self.issuer, outcome);
        let result = self.apply_fetched(result);
        if telemetry::ON {
            self.record_gauges();
        }
        result
    }

    /// Takes in the result of a fetch: the new snapshot and the health record.
    fn apply_fetched(&self, result: Result<Fetched, FetchError>) -> Result<(), FetchError> {
        let mut state = self.state();
        match result {
            Ok(fetched) => {
                let (set, max_age) = match fetched {
                    Fetched::Keys { set, etag, max_age } => {
                        state.etag = etag;
                        (Some(set), max_age)
                    }
                    Fetched::NotModified { max_age } => {
                        self.shared
                            .counters
                            .not_modified
                            .fetch_add(1, Ordering::Relaxed);
                        (None, max_age)
                    }
                };
                let old = self.current.load_full();
                let changed = set.is_some();
                let set = match (set, &old) {
                    (Some(set), Some(old)) => Some(Arc::new(set.reuse_unchanged(&old.set))),
                    (Some(set), None) => Some(Arc::new(set)),
                    (None, old) => old.as_ref().map(|s| Arc::clone(&s.set)),
                };
                if let Some(set) = set {
                    tracing::debug!(issuer = %self.issuer, keys = set.len(), "key set refreshed");
                    self.current.store(Some(Arc::new(Snapshot {
                        set,
                        confirmed_at: Instant::now(),
                    })));
                }
                drop(old);
                if changed && let Some(hook) = &self.shared.on_new_keys {
                    hook();
                }
                state.max_age = max_age;
                state.failures = 0;
                state.last_success = Some(SystemTime::now());
                state.last_error = None;
                Ok(())
            }
            Err(err) => {
                self.shared
                    .counters
                    .fetch_failures
                    .fetch_add(1, Ordering::Relaxed);
                state.failures = state.failures.saturating_add(1);
                state.last_error = Some(err.to_string());
                tracing::warn!(
                    issuer = %self.issuer,
                    error = %err,
                    failures = state.failures,
                    serving_stale = self.current.load().is_some(),
                    "key fetch failed; keeping the last good key set"
                );
                Err(err)
            }
        }
    }

    async fn fetch_remote(&self, remote: &Remote) -> Result<Fetched, FetchError> {
        let (url, etag) = {
            let state = self.state();
            (state.jwks_url.clone(), state.etag.clone())
        };
        let url = match (url, &remote.location) {
            (Some(url), _) => url,
            (None, Location::Jwks(url)) => url.clone(),
            (None, Location::Discover { issuer }) => {
                let url = fetch::discover(&remote.client, &remote.settings, issuer).await?;
                self.state().jwks_url = Some(url.clone());
                url
            }
        };
        if let Location::Jwks(_) = remote.location {
            self.state().jwks_url.get_or_insert_with(|| url.clone());
        }
        fetch::fetch_jwks(
            &remote.client,
            &remote.settings,
            &url,
            etag.as_deref(),
            self.allowed,
        )
        .await
    }

    /// The first load at build time: runs the fetch inline and reports its error.
    pub(crate) async fn initial_fetch(self: &Arc<Self>) -> Result<(), FetchError> {
        self.fetch_now().await
    }

    /// The URL keys are fetched from (after discovery), for error messages.
    pub(crate) fn describe_url(&self) -> String {
        if let Some(url) = &self.state().jwks_url {
            return url.to_string();
        }
        match self.remote.as_ref().map(|r| &r.location) {
            Some(Location::Jwks(url)) => url.to_string(),
            Some(Location::Discover { issuer }) => fetch::discovery_url(issuer),
            None => "static key set".into(),
        }
    }

    /// How long the refresher sleeps before its next fetch; recorded for health.
    pub(crate) fn next_delay(&self) -> Duration {
        let mut state = self.state();
        let lc = &self.lifecycle;
        let base = if state.failures > 0 {
            // Back off on failure: 1 s, 2 s, 4 s … up to the refresh interval.
            let exp = state.failures.saturating_sub(1).min(16);
            Duration::from_secs(1u64 << exp).min(lc.refresh_interval)
        } else if let Some(max_age) = state.max_age {
            max_age.clamp(lc.min_refresh, lc.max_refresh)
        } else {
            lc.refresh_interval
        };
        // Up to 10 % earlier, so that a fleet restarted together spreads out.
        let delay = base.saturating_sub(base.mul_f64(jitter() * 0.1));
        state.next_refresh = Some(Instant::now() + delay);
        drop(state);
        if telemetry::ON {
            self.record_gauges();
        }
        delay
    }

    /// Sets this issuer's key-set gauges from its health record.
    pub(crate) fn record_gauges(&self) {
        telemetry::key_set(&self.issuer, &self.health());
    }

    /// Spawns the background refresher. It ends when `stop` fires or its
    /// sender is dropped (the last `Verifier` clone went away).
    pub(crate) fn spawn_refresher(
        self: &Arc<Self>,
        mut stop: oneshot::Receiver<()>,
        first: Duration,
    ) {
        if self.remote.is_none() {
            return;
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        self.shared.runtime.spawn(async move {
            let mut delay = first;
            loop {
                tokio::select! {
                    _ = &mut stop => return,
                    () = tokio::time::sleep(delay) => {}
                }
                let Some(this) = weak.upgrade() else { return };
                if let Some(mut rx) = this.start_fetch(Trigger::Scheduled) {
                    tokio::select! {
                        _ = &mut stop => return,
                        _ = rx.wait_for(|done| *done) => {}
                    }
                }
                delay = this.next_delay();
            }
        });
    }

    pub(crate) fn health(&self) -> IssuerHealth {
        let snap = self.current.load();
        let state = self.state();
        let usable = self.usable().is_ok();
        IssuerHealth {
            issuer: self.issuer.to_string(),
            ready: usable,
            key_count: snap.as_ref().map_or(0, |s| s.set.len()),
            kids: snap
                .as_ref()
                .map(|s| {
                    let mut kids: Vec<String> = s.set.kids().map(str::to_owned).collect();
                    kids.sort();
                    kids
                })
                .unwrap_or_default(),
            age_secs: snap.as_ref().map(|s| s.confirmed_at.elapsed().as_secs()),
            last_success_unix: state
                .last_success
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
            last_error: state.last_error.clone(),
            next_refresh_secs: state
                .next_refresh
                .map(|t| t.saturating_duration_since(Instant::now()).as_secs()),
            consecutive_failures: state.failures,
            stale: snap.is_some() && state.failures > 0,
            source: if self.remote.is_some() {
                "remote"
            } else {
                "static"
            },
        }
    }
}

/// A number in `[0, 1)`, different on every call; for jitter, not for secrets.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::AtomicU64;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    #[allow(clippy::cast_precision_loss)]
    let v = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_in_unit_interval() {
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
