//! [`Introspector`]: one issuer's endpoint, its cache, and the limits on
//! calls: one call per token at a time (single-flight), at most
//! `max_concurrency` calls at once, at most `max_pending` tokens waiting.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use reqwest::Url;
use tokio::sync::{OnceCell, Semaphore};

use super::Introspection;
use super::cache::{Confirmed, Lookup, Results, unix_now};
use super::client;
use super::response::{Verdict, judge};
use crate::error::{FetchError, Reason};
use crate::health::{Counters, IntrospectionHealth};

/// The shared result of one call: the answer, or why there is none (for
/// logs and health; never a token).
type Answer = Result<Result<Confirmed, Reason>, Arc<str>>;

type Flight = Arc<OnceCell<Answer>>;

/// Checks what the verifier must check about a confirmed-active answer (the
/// claims) and builds the cache entry.
pub(crate) type Validate<'a> = dyn Fn(Arc<[u8]>) -> Result<Confirmed, Reason> + Send + Sync + 'a;

#[derive(Default)]
struct Status {
    last_success_unix: Option<u64>,
    last_error: Option<String>,
    consecutive_failures: u32,
}

pub(crate) struct Introspector {
    issuer: Box<str>,
    settings: Introspection,
    client: reqwest::Client,
    allow_http: bool,
    max_discovery_bytes: usize,
    endpoint: OnceCell<Url>,
    results: Results,
    /// The calls in flight, each with the number of requests aboard.
    flights: Mutex<HashMap<Arc<str>, (Flight, usize)>>,
    calls: Semaphore,
    counters: Arc<Counters>,
    status: Mutex<Status>,
}

/// Leaves a flight: the last one out (or anyone, once it has landed)
/// removes it, so the next request for the token asks again or reads the
/// cache the flight filled.
///
/// The requests aboard are counted under the map's lock (not read off the
/// `Arc`'s count, which drops only after the lock is released): two
/// requests cancelled at once can never both leave the entry behind.
struct Boarding<'a> {
    flights: &'a Mutex<HashMap<Arc<str>, (Flight, usize)>>,
    token: &'a str,
    flight: Flight,
}

impl Drop for Boarding<'_> {
    fn drop(&mut self) {
        let mut flights = lock(self.flights);
        let Some((current, aboard)) = flights.get_mut(self.token) else {
            return;
        };
        if !Arc::ptr_eq(current, &self.flight) {
            return;
        }
        *aboard = aboard.saturating_sub(1);
        if *aboard == 0 || self.flight.initialized() {
            flights.remove(self.token);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here only reads or replaces plain values: a
    // panic inside one cannot leave them half-written.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Introspector {
    pub(crate) fn new(
        issuer: &str,
        settings: Introspection,
        endpoint: Option<Url>,
        client: reqwest::Client,
        allow_http: bool,
        max_discovery_bytes: usize,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            results: Results::new(
                settings.cache_bytes,
                settings.inactive_cache_bytes,
                settings.cache_ttl,
                settings.inactive_ttl,
            ),
            calls: Semaphore::new(settings.max_concurrency),
            settings,
            client,
            allow_http,
            max_discovery_bytes,
            endpoint: endpoint.map_or_else(OnceCell::new, |url| OnceCell::new_with(Some(url))),
            flights: Mutex::new(HashMap::new()),
            counters,
            status: Mutex::new(Status::default()),
        }
    }

    /// The endpoint, discovered on first use unless configured.
    pub(crate) async fn endpoint(&self) -> Result<&Url, FetchError> {
        self.endpoint
            .get_or_try_init(|| async {
                tokio::time::timeout(
                    self.settings.timeout,
                    client::discover(
                        &self.client,
                        &self.issuer,
                        self.max_discovery_bytes,
                        self.allow_http,
                    ),
                )
                .await
                .map_err(|_| FetchError::Timeout {
                    after: self.settings.timeout,
                })?
            })
            .await
    }

    /// The cached answer for `token`, no older than `max_age`.
    pub(crate) fn lookup(&self, token: &str, max_age: Option<Duration>) -> Lookup {
        let found = self.results.lookup(token, max_age);
        if !matches!(found, Lookup::Miss) {
            self.counters
                .introspection_cache_hits
                .fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Asks the endpoint about `token`, or joins the call already asking,
    /// and caches the answer. `validate` checks the claims of an active
    /// answer. Waits at most the configured timeout.
    pub(crate) async fn resolve(
        &self,
        token: &str,
        max_age: Option<Duration>,
        validate: &Validate<'_>,
    ) -> Result<Confirmed, Reason> {
        let flight = {
            let mut flights = lock(&self.flights);
            if let Some((flight, aboard)) = flights.get_mut(token) {
                *aboard += 1;
                Arc::clone(flight)
            } else {
                // A flight that just landed has filled the cache before
                // leaving the map: read it rather than ask again.
                match self.results.lookup(token, max_age) {
                    Lookup::Active(confirmed) => return Ok(confirmed),
                    Lookup::Refused(reason) => return Err(reason),
                    Lookup::Miss => {}
                }
                // SECURITY (flood of unknown tokens): bounded waiting, fail
                // fast beyond it.
                if flights.len() >= self.settings.max_pending {
                    self.counters
                        .introspection_shed
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        issuer = %self.issuer,
                        pending = flights.len(),
                        "introspection overloaded: request refused with 503"
                    );
                    return Err(Reason::IntrospectionUnavailable);
                }
                let flight: Flight = Arc::new(OnceCell::new());
                flights.insert(Arc::from(token), (Arc::clone(&flight), 1));
                flight
            }
        };
        let boarding = Boarding {
            flights: &self.flights,
            token,
            flight,
        };
        match boarding
            .flight
            .get_or_init(|| self.fly(token, validate))
            .await
        {
            Ok(result) => result.clone(),
            Err(_) => Err(Reason::IntrospectionUnavailable),
        }
    }

    /// The call itself: wait for a free slot, ask, judge, cache.
    async fn fly(&self, token: &str, validate: &Validate<'_>) -> Answer {
        // SECURITY (slow endpoint): the wait for a free slot counts against
        // the same timeout as the call; a request never waits longer.
        let timeout = self.settings.timeout;
        let ask = async {
            let Ok(_slot) = self.calls.acquire().await else {
                return Err("introspection is shutting down".to_owned());
            };
            let endpoint = self
                .endpoint()
                .await
                .map_err(|e| format!("endpoint discovery failed: {e}"))?;
            self.counters.introspections.fetch_add(1, Ordering::Relaxed);
            client::call(&self.client, endpoint, &self.settings, token)
                .await
                .map_err(|e| e.to_string())
        };
        let body = match tokio::time::timeout(timeout, ask).await {
            Ok(Ok(body)) => body,
            Ok(Err(what)) => return Err(self.failed(&what)),
            Err(_) => return Err(self.failed(&format!("timed out: no answer within {timeout:?}"))),
        };
        let verdict = judge(&body, &self.issuer, self.settings.require_token_kind)
            .map_err(|e| self.failed(&e))?;
        self.succeeded();
        let result = match verdict {
            Verdict::Active => validate(Arc::from(body)),
            Verdict::Refused(reason) => Err(reason),
        };
        match &result {
            Ok(confirmed) => self.results.confirm(token, confirmed.clone()),
            Err(reason) => {
                tracing::debug!(issuer = %self.issuer, reason = reason.code(), "introspection: token refused");
                self.results.refuse(token, *reason);
            }
        }
        Ok(result)
    }

    fn failed(&self, what: &str) -> Arc<str> {
        self.counters
            .introspection_failures
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(issuer = %self.issuer, error = %what, "introspection failed: requests get 503");
        let mut status = lock(&self.status);
        status.last_error = Some(what.to_owned());
        status.consecutive_failures = status.consecutive_failures.saturating_add(1);
        Arc::from(what)
    }

    fn succeeded(&self) {
        let mut status = lock(&self.status);
        status.last_error = None;
        status.consecutive_failures = 0;
        status.last_success_unix = u64::try_from(unix_now()).ok();
    }

    pub(crate) fn health(&self) -> IntrospectionHealth {
        let status = lock(&self.status);
        IntrospectionHealth {
            issuer: self.issuer.to_string(),
            endpoint: self.endpoint.get().map(ToString::to_string),
            last_success_unix: status.last_success_unix,
            last_error: status.last_error.clone(),
            consecutive_failures: status.consecutive_failures,
        }
    }
}

#[cfg(test)]
mod boarding_tests {
    use super::*;

    #[test]
    fn the_last_request_aboard_removes_an_unlanded_flight() {
        let flights: Mutex<HashMap<Arc<str>, (Flight, usize)>> = Mutex::default();
        let flight: Flight = Arc::new(OnceCell::new());
        flights
            .lock()
            .unwrap()
            .insert(Arc::from("t"), (Arc::clone(&flight), 2));
        let board = || Boarding {
            flights: &flights,
            token: "t",
            flight: Arc::clone(&flight),
        };
        let (a, b) = (board(), board());
        drop(a);
        assert_eq!(flights.lock().unwrap().get("t").map(|(_, n)| *n), Some(1));
        drop(b);
        assert!(flights.lock().unwrap().is_empty());
    }

    #[test]
    fn a_landed_flight_leaves_with_its_first_passenger() {
        let flights: Mutex<HashMap<Arc<str>, (Flight, usize)>> = Mutex::default();
        let flight: Flight = Arc::new(OnceCell::new_with(Some(Err(Arc::from("down")))));
        flights
            .lock()
            .unwrap()
            .insert(Arc::from("t"), (Arc::clone(&flight), 3));
        drop(Boarding {
            flights: &flights,
            token: "t",
            flight,
        });
        assert!(flights.lock().unwrap().is_empty());
    }
}
