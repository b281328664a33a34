//! The key lifecycle against a misbehaving JWKS server: hangs, errors,
//! garbage, rotation, floods of unknown kids, outages, several issuers.
//!
//! The fault server is real (axum on 127.0.0.1:0). Time-dependent behaviour
//! uses paused tokio time; network I/O runs with the clock resumed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use authlayer::test_util::TestIssuer;
use authlayer::{BuildError, ErrorKind, Issuer, Reason, Verifier, VerifyLayer};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::common::{AUDIENCE, http_get, orders_token, serve_axum};

#[derive(Debug, Clone, PartialEq)]
enum Mode {
    Ok,
    Status(u16),
    Hang,
    Slow(Duration),
    Garbage,
    Oversized,
    EmptySet,
    Html,
    Redirect,
}

struct Fault {
    issuer: Mutex<TestIssuer>,
    mode: Mutex<Mode>,
    cache_control: Mutex<Option<String>>,
    etag: Mutex<Option<String>>,
    fetches: AtomicU64,
    not_modified: AtomicU64,
    /// Signalled whenever a JWKS request arrives.
    arrived: Notify,
    base: Mutex<String>,
}

#[derive(Clone)]
struct FaultServer(Arc<Fault>);

impl FaultServer {
    async fn start(issuer: &TestIssuer) -> Self {
        let fault = FaultServer(Arc::new(Fault {
            issuer: Mutex::new(issuer.clone()),
            mode: Mutex::new(Mode::Ok),
            cache_control: Mutex::new(None),
            etag: Mutex::new(None),
            fetches: AtomicU64::new(0),
            not_modified: AtomicU64::new(0),
            arrived: Notify::new(),
            base: Mutex::new(String::new()),
        }));
        let app = Router::new()
            .route("/jwks", get(jwks))
            .route("/.well-known/openid-configuration", get(discovery))
            .with_state(fault.clone());
        let addr = serve_axum(app).await;
        let base = format!("http://{addr}");
        issuer.set_issuer(base.clone());
        *fault.0.base.lock().unwrap() = base;
        fault
    }

    fn url(&self) -> String {
        format!("{}/jwks", self.0.base.lock().unwrap())
    }

    fn issuer_url(&self) -> String {
        self.0.base.lock().unwrap().clone()
    }

    fn set(&self, mode: Mode) {
        *self.0.mode.lock().unwrap() = mode;
    }

    fn fetches(&self) -> u64 {
        self.0.fetches.load(Ordering::SeqCst)
    }

    fn serve_keys_of(&self, issuer: &TestIssuer) {
        *self.0.issuer.lock().unwrap() = issuer.clone();
    }
}

async fn discovery(State(f): State<FaultServer>) -> Response {
    let base = f.issuer_url();
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({"issuer": base, "jwks_uri": format!("{base}/jwks")}).to_string(),
    )
        .into_response()
}

async fn jwks(State(f): State<FaultServer>, headers: HeaderMap) -> Response {
    f.0.fetches.fetch_add(1, Ordering::SeqCst);
    f.0.arrived.notify_waiters();
    let mode = f.0.mode.lock().unwrap().clone();
    let body = f.0.issuer.lock().unwrap().jwks_json();
    let json = [(header::CONTENT_TYPE, "application/json")];
    match mode {
        Mode::Ok => {}
        Mode::Status(code) => return StatusCode::from_u16(code).unwrap().into_response(),
        Mode::Hang => std::future::pending::<()>().await,
        Mode::Slow(d) => tokio::time::sleep(d).await,
        Mode::Garbage => return (json, "{\"keys\": [oops").into_response(),
        Mode::Oversized => {
            return (
                json,
                format!("{{\"keys\":[],\"pad\":\"{}\"}}", "x".repeat(300 * 1024)),
            )
                .into_response();
        }
        Mode::EmptySet => return (json, "{\"keys\":[]}").into_response(),
        Mode::Html => return ([(header::CONTENT_TYPE, "text/html")], body).into_response(),
        Mode::Redirect => {
            return (StatusCode::FOUND, [(header::LOCATION, "/elsewhere")]).into_response();
        }
    }
    let etag = f.0.etag.lock().unwrap().clone();
    if let Some(etag) = &etag
        && headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v == etag.as_str())
    {
        f.0.not_modified.fetch_add(1, Ordering::SeqCst);
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut res = (json, body).into_response();
    if let Some(cc) = f.0.cache_control.lock().unwrap().clone() {
        res.headers_mut()
            .insert(header::CACHE_CONTROL, cc.parse().unwrap());
    }
    if let Some(etag) = etag {
        res.headers_mut()
            .insert(header::ETAG, etag.parse().unwrap());
    }
    res
}

fn builder(server: &FaultServer) -> authlayer::VerifierBuilder {
    Verifier::builder()
        .issuer(server.issuer_url())
        .jwks_url(server.url())
        .audience(AUDIENCE)
}

fn token(issuer: &TestIssuer, kid: &str) -> String {
    orders_token(issuer).sub("u").key(kid).sign()
}

/// Skips time forward by `d` (and lets timers fire), then lets the clock run again.
async fn skip(d: Duration) {
    tokio::time::pause();
    tokio::time::advance(d).await;
    tokio::time::resume();
}

#[tokio::test]
async fn known_kid_never_waits_while_the_server_hangs() {
    let issuer = TestIssuer::new("x");
    let server = FaultServer::start(&issuer).await;
    let verifier = builder(&server)
        .fetch_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let known = token(&issuer, "rsa-1");
    skip(Duration::from_secs(31)).await;

    server.set(Mode::Hang);
    let arrived = server.0.arrived.notified();
    let stranger = TestIssuer::new(server.issuer_url());
    stranger.add_key("new", authlayer::Algorithm::ES256);
    let unknown = token(&stranger, "new");
    let v = verifier.clone();
    let waiting = tokio::spawn(async move {
        let start = Instant::now();
        let result = v.verify(&unknown).await;
        (result, start.elapsed())
    });
    arrived.await; // the refetch is now hanging inside the server

    // A known kid completes on its first poll: no I/O, no lock, no waiting.
    let mut latencies = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let start = std::time::Instant::now();
        let fut = verifier.verify(&known);
        let mut fut = std::pin::pin!(fut);
        let polled = fut.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        latencies.push(start.elapsed());
        assert!(
            matches!(polled, Poll::Ready(Ok(_))),
            "known kid had to wait"
        );
    }
    latencies.sort();
    println!(
        "known-kid verify during a hanging fetch: p50 {:?}, p99 {:?}",
        latencies[500], latencies[990]
    );

    // The waiter gives up after the fetch timeout (virtual time).
    tokio::time::pause();
    let (result, waited) = waiting.await.unwrap();
    assert_eq!(result.unwrap_err().reason(), Reason::UnknownKey);
    assert!(
        waited <= Duration::from_secs(5) + Duration::from_millis(100),
        "{waited:?}"
    );
    // The fetch itself gives up at its own deadline, which may fall a timer
    // tick after the waiter's: let virtual time reach it, then read why.
    let failed = || verifier.health().issuers[0].last_error.clone();
    eventually(Duration::from_secs(1), || failed().is_some()).await;
    assert!(failed().unwrap().contains("timed out"), "{:?}", failed());
    assert_eq!(verifier.metrics().fetch_failures, 1);
    assert!(verifier.verify(&known).await.is_ok());
}

/// Lets (paused, virtual) time run until `done` holds; fails after `limit`.
async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) {
    let reached = tokio::time::timeout(limit, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "condition not reached within {limit:?}");
}

#[tokio::test]
async fn random_kid_flood_costs_one_fetch_per_cooldown() {
    let issuer = TestIssuer::new("x");
    let server = FaultServer::start(&issuer).await;
    let verifier = builder(&server)
        .refetch_cooldown(Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    let stranger = TestIssuer::new(server.issuer_url());
    let random = |i: usize| {
        orders_token(&stranger)
            .header_kid(Some(&format!("kid-{i}")))
            .sign()
    };
    let tokens: Vec<String> = (0..1000).map(random).collect();
    let before = server.fetches();

    // Right after start-up: the start-up fetch opens no window (a new key
    // is fetched on first sight), so the flood forces exactly one fetch.
    flood(&verifier, &tokens, Duration::from_secs(5)).await;
    assert_eq!(server.fetches(), before + 1);
    // A scheduled refresh inside that window opens no new one.
    verifier.refresh().await;
    flood(&verifier, &tokens, Duration::from_secs(5)).await;
    assert_eq!(server.fetches(), before + 2);

    // Each new window: exactly one fetch for the whole flood.
    for window in 1..=3 {
        skip(Duration::from_secs(31)).await;
        flood(&verifier, &tokens, Duration::from_secs(5)).await;
        assert_eq!(server.fetches(), before + 2 + window, "window {window}");
    }
    println!(
        "1,000-request random-kid flood x5 (4 windows, one scheduled refresh): {} fetches",
        server.fetches() - before
    );
    let m = verifier.metrics();
    assert_eq!(m.unknown_key_refetches, 4);
    assert_eq!(m.rejected(Reason::UnknownKey), 5000);
}

#[tokio::test]
async fn flood_during_a_hanging_refetch_waits_at_most_the_timeout() {
    let issuer = TestIssuer::new("x");
    let server = FaultServer::start(&issuer).await;
    let verifier = builder(&server)
        .fetch_timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    let stranger = TestIssuer::new(server.issuer_url());
    let tokens: Vec<String> = (0..1000)
        .map(|i| {
            orders_token(&stranger)
                .header_kid(Some(&format!("k{i}")))
                .sign()
        })
        .collect();
    skip(Duration::from_secs(31)).await;
    server.set(Mode::Hang);
    let before = server.fetches();
    let arrived = server.0.arrived.notified();
    let v = verifier.clone();
    let first = tokens[0].clone();
    let handle = tokio::spawn(async move { v.verify(&first).await });
    arrived.await;
    tokio::time::pause();
    let slowest = flood(&verifier, &tokens, Duration::from_secs(2)).await;
    assert!(handle.await.unwrap().is_err());
    assert_eq!(server.fetches(), before + 1);
    println!("slowest request during a hanging refetch: {slowest:?} (virtual)");
}

/// Sends every token concurrently; asserts each is refused within `bound`;
/// returns the slowest.
async fn flood(verifier: &Verifier, tokens: &[String], bound: Duration) -> Duration {
    let mut set = tokio::task::JoinSet::new();
    for t in tokens {
        let v = verifier.clone();
        let t = t.clone();
        set.spawn(async move {
            let start = Instant::now();
            let r = v.verify(&t).await;
            (r, start.elapsed())
        });
    }
    let mut slowest = Duration::ZERO;
    while let Some(res) = set.join_next().await {
        let (r, took) = res.unwrap();
        assert_eq!(r.unwrap_err().reason(), Reason::UnknownKey);
        assert!(
            took <= bound + Duration::from_millis(100),
            "waited {took:?}"
        );
        slowest = slowest.max(took);
    }
    slowest
}

#[tokio::test]
async fn rotated_key_is_accepted_on_first_sight_after_a_scheduled_fetch_and_old_key_retired() {
    let issuer = TestIssuer::new("x");
    let server = FaultServer::start(&issuer).await;
    let verifier = builder(&server).build().await.unwrap();
    let old = token(&issuer, "rsa-1");
    // A scheduled fetch has just happened (as the start-up fetch has): the
    // key the issuer activates next must still be fetched on first sight.
    verifier.refresh().await;

    issuer.add_key("rsa-2", authlayer::Algorithm::RS256);
    let new = token(&issuer, "rsa-2");
    let start = std::time::Instant::now();
    assert!(verifier.verify(&new).await.is_ok());
    println!(
        "time to accept a rotated key (one refetch): {:?}",
        start.elapsed()
    );
    assert!(verifier.verify(&old).await.is_ok());

    issuer.remove_key("rsa-1");
    verifier.refresh().await;
    assert_eq!(
        verifier.verify(&old).await.unwrap_err().reason(),
        Reason::UnknownKey
    );
    assert!(verifier.verify(&new).await.is_ok());
}

#[tokio::test]
async fn stale_keys_serve_through_an_outage_until_max_stale() {
    let issuer = TestIssuer::new("x");
    let server = FaultServer::start(&issuer).await;
    let verifier = builder(&server)
        .max_stale(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    let known = token(&issuer, "ec-1");
    server.set(Mode::Status(500));
    verifier.refresh().await;
    let h = &verifier.health().issuers[0];
    assert!(h.stale && h.ready, "{h:?}");
    assert!(h.last_error.as_deref().unwrap().contains("500"));

    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(3500)).await;
    assert!(verifier.verify(&known).await.is_ok());
    tokio::time::advance(Duration::from_secs(200)).await;
    let err = verifier.verify(&known).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeysUnavailable);
    assert_eq!(err.status(), 503);
    assert!(!verifier.health().ready);

    // Over HTTP: 503 with Retry-After, not 401.
    tokio::time::resume();
    let app = Router::new()
        .route("/x", get(|| async { "x" }))
        .layer(VerifyLayer::new(verifier.clone()));
    let addr = serve_axum(app).await;
    let res = http_get(
        &reqwest::Client::new(),
        &format!("http://{addr}/x"),
        Some(&known),
    )
    .await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));

    // The issuer comes back: keys are confirmed again.
    server.set(Mode::Ok);
    verifier.refresh().await;
    assert!(verifier.verify(&known).await.is_ok());
    assert!(!verifier.health().issuers[0].stale);
}

#[tokio::test]
async fn bad_responses_keep_the_last_good_set() {
    let issuer = TestIssuer::new("x");
    let server = FaultServer::start(&issuer).await;
    let verifier = builder(&server)
        .fetch_timeout(Duration::from_millis(500))
        .max_jwks_bytes(256 * 1024)
        .build()
        .await
        .unwrap();
    let known = token(&issuer, "ed-1");
    for (mode, cause) in [
        (Mode::Status(500), "500"),
        (Mode::Status(404), "404"),
        (Mode::Garbage, "not a JWK Set"),
        (Mode::Oversized, "larger than"),
        (Mode::EmptySet, "no usable"),
        (Mode::Html, "content-type"),
        (Mode::Redirect, "302"),
        (Mode::Slow(Duration::from_secs(3)), "timed out"),
    ] {
        server.set(mode.clone());
        let failures = verifier.metrics().fetch_failures;
        verifier.refresh().await;
        let h = &verifier.health().issuers[0];
        let err = h.last_error.clone().unwrap_or_default();
        assert!(err.contains(cause), "{mode:?}: {err}");
        assert_eq!(h.key_count, 3, "{mode:?}");
        assert_eq!(verifier.metrics().fetch_failures, failures + 1);
        assert!(verifier.verify(&known).await.is_ok(), "{mode:?}");
    }
}

#[tokio::test]
async fn etag_304_counts_as_success() {
    let issuer = TestIssuer::new("x");
    let server = FaultServer::start(&issuer).await;
    *server.0.etag.lock().unwrap() = Some("\"v1\"".into());
    let verifier = builder(&server).build().await.unwrap();
    server.set(Mode::Status(500));
    verifier.refresh().await;
    assert!(verifier.health().issuers[0].stale);
    server.set(Mode::Ok);
    verifier.refresh().await;
    assert_eq!(server.0.not_modified.load(Ordering::SeqCst), 1);
    assert_eq!(verifier.metrics().not_modified, 1);
    let h = &verifier.health().issuers[0];
    assert!(
        !h.stale && h.last_error.is_none() && h.key_count == 3,
        "{h:?}"
    );
}

#[tokio::test]
async fn cache_control_max_age_sets_the_next_refresh_within_bounds() {
    let issuer = TestIssuer::new("x");
    let server = FaultServer::start(&issuer).await;
    for (cc, low, high) in [
        (Some("public, max-age=600"), 540, 600),
        (Some("max-age=5"), 54, 60),
        (Some("max-age=999999"), 3240, 3600),
        (Some("no-store"), 54, 60),
        (None, 270, 300),
    ] {
        *server.0.cache_control.lock().unwrap() = cc.map(str::to_owned);
        let verifier = builder(&server).build().await.unwrap();
        let next = verifier.health().issuers[0].next_refresh_secs.unwrap();
        assert!((low..=high).contains(&next), "{cc:?}: {next}");
    }
}

#[tokio::test]
async fn background_refresher_picks_up_new_keys() {
    let issuer = TestIssuer::new("x");
    let server = FaultServer::start(&issuer).await;
    let verifier = builder(&server).build().await.unwrap();
    let before = server.fetches();
    issuer.add_key("later", authlayer::Algorithm::EdDSA);
    let arrived = server.0.arrived.notified();
    tokio::task::yield_now().await; // let the refresher start its sleep
    skip(Duration::from_secs(301)).await;
    arrived.await;
    // The refresher's fetch is in; wait for it to be applied.
    let done = async {
        while !verifier.health().issuers[0]
            .kids
            .contains(&"later".to_owned())
        {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), done)
        .await
        .unwrap();
    assert_eq!(server.fetches(), before + 1);
}

/// Waits (bounded) until the runtime has exactly `n` live tasks.
async fn settle_tasks(n: usize) {
    let metrics = tokio::runtime::Handle::current().metrics();
    let settle = async {
        while metrics.num_alive_tasks() != n {
            tokio::task::yield_now().await;
        }
    };
    let settled = tokio::time::timeout(Duration::from_secs(5), settle).await;
    assert!(
        settled.is_ok(),
        "{} live tasks, expected {n}",
        metrics.num_alive_tasks()
    );
}

#[tokio::test]
async fn refresher_stops_when_the_last_verifier_is_dropped() {
    let issuer = TestIssuer::new("x");
    let server = FaultServer::start(&issuer).await;
    let baseline = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    // No pooled connections, so the only task a verifier leaves is its refresher.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let verifier = builder(&server).http_client(client).build().await.unwrap();
    let clone = verifier.clone();
    settle_tasks(baseline + 1).await;
    drop(verifier);
    settle_tasks(baseline + 1).await; // a clone keeps it alive
    drop(clone);
    settle_tasks(baseline).await;
    let fetches = server.fetches();
    skip(Duration::from_secs(3600)).await;
    tokio::task::yield_now().await;
    assert_eq!(server.fetches(), fetches);
}

#[tokio::test]
async fn startup_failure_names_the_url_and_cause() {
    let issuer = TestIssuer::new("x");
    let server = FaultServer::start(&issuer).await;
    server.set(Mode::Status(503));
    let err = builder(&server).build().await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, BuildError::Fetch { .. }));
    assert!(
        text.contains(&server.url()) && text.contains("503"),
        "{text}"
    );

    // Nothing listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = Verifier::builder()
        .issuer(format!("http://127.0.0.1:{port}"))
        .audience(AUDIENCE)
        .build()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "127.0.0.1:{port}/.well-known/openid-configuration"
        )),
        "{text}"
    );
    assert!(text.contains("request failed"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn startup_against_a_hanging_server_times_out() {
    let issuer = TestIssuer::new("x");
    let server = FaultServer::start(&issuer).await;
    server.set(Mode::Hang);
    let err = builder(&server)
        .fetch_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer() {
    let issuer = TestIssuer::new("x");
    let server = FaultServer::start(&issuer).await;
    let err = Verifier::builder()
        .issuer(format!("{}/", server.issuer_url()))
        .audience(AUDIENCE)
        .build()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("names issuer"), "{text}");
    // The exact issuer works, through discovery.
    let verifier = Verifier::builder()
        .issuer(server.issuer_url())
        .audience(AUDIENCE)
        .build()
        .await
        .unwrap();
    assert!(verifier.verify(&token(&issuer, "rsa-1")).await.is_ok());
}

#[tokio::test]
async fn insecure_urls_are_refused_before_any_request() {
    for url in [
        "http://id.example/jwks",
        "ftp://127.0.0.1/jwks",
        "not a url",
    ] {
        let err = Verifier::builder()
            .issuer("https://id.example")
            .jwks_url(url)
            .audience(AUDIENCE)
            .build()
            .await
            .unwrap_err();
        assert!(matches!(err, BuildError::Url { .. }), "{url}: {err}");
    }
}

#[tokio::test]
async fn lazy_start_answers_503_until_the_issuer_is_up() {
    let issuer = TestIssuer::new("x");
    let server = FaultServer::start(&issuer).await;
    server.set(Mode::Status(500));
    let verifier = builder(&server).lazy(true).build().await.unwrap();
    let known = token(&issuer, "rsa-1");
    let app = Router::new()
        .route("/x", get(|| async { "x" }))
        .layer(VerifyLayer::new(verifier.clone()));
    let addr = serve_axum(app).await;
    let url = format!("http://{addr}/x");
    let get_x = || async { http_get(&reqwest::Client::new(), &url, Some(&known)).await };
    let res = get_x().await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "5");
    assert!(!verifier.health().ready);

    // The refresher retries with backoff; once the server answers, keys arrive.
    server.set(Mode::Ok);
    let ready = async {
        loop {
            server.0.arrived.notified().await;
            // The attempt is in; give its response the turns it needs to be
            // read and applied before waiting for the next attempt.
            for _ in 0..10_000 {
                if verifier.health().ready {
                    return;
                }
                tokio::task::yield_now().await;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .unwrap();
    assert_eq!(get_x().await.status(), 200);
}

#[tokio::test]
async fn several_issuers_are_routed_and_isolated() {
    let company = TestIssuer::new("x");
    let admin = TestIssuer::new("y");
    let a = FaultServer::start(&company).await;
    let b = FaultServer::start(&admin).await;
    let verifier = Verifier::builder()
        .issuer(a.issuer_url())
        .jwks_url(a.url())
        .audience(AUDIENCE)
        .trust(
            Issuer::new(b.issuer_url())
                .jwks_url(b.url())
                .audience("admin-api"),
        )
        .build()
        .await
        .unwrap();
    let (fa, fb) = (a.fetches(), b.fetches());

    let c_token = orders_token(&company).sub("c").sign();
    let a_token = admin.token().sub("a").audience("admin-api").sign();
    assert_eq!(verifier.verify(&c_token).await.unwrap().sub(), Some("c"));
    assert_eq!(verifier.verify(&a_token).await.unwrap().sub(), Some("a"));

    // Each issuer's own audience.
    let wrong = orders_token(&admin).sign();
    assert_eq!(
        verifier.verify(&wrong).await.unwrap_err().reason(),
        Reason::WrongAudience
    );

    // Admin's key, company's iss (same kid names in both sets): refused.
    let forged = orders_token(&admin).claim("iss", a.issuer_url()).sign();
    assert_eq!(
        verifier.verify(&forged).await.unwrap_err().reason(),
        Reason::BadSignature
    );

    // Unknown issuer: refused without any fetch, even outside the cooldown.
    skip(Duration::from_secs(31)).await;
    let other = TestIssuer::new("https://evil.example");
    let t = orders_token(&other).sign();
    assert_eq!(
        verifier.verify(&t).await.unwrap_err().reason(),
        Reason::UnknownIssuer
    );
    assert_eq!((a.fetches(), b.fetches()), (fa, fb));

    // Serving the admin keys at the company URL does not make them company keys
    // for the admin issuer, and health reports both issuers.
    let h = verifier.health();
    assert_eq!(h.issuers.len(), 2);
    assert!(h.ready);
    b.serve_keys_of(&company);
    verifier.refresh().await;
    assert!(verifier.verify(&a_token).await.is_err());
}
