//! What an introspected (opaque) token costs, against the JWT figures of the
//! same run (target: a cached opaque token at most twice a cached JWT).
//!
//! Criterion group `introspection` (medians):
//!
//! - `bare`: a bare tower service (the stack's floor);
//! - `jwt_cached`: `Verify` with an ES256 JWT seen before (verified-token
//!   cache hit);
//! - `opaque_cached`: `Verify` with an opaque token introspected before
//!   (introspection cache hit).
//!
//! Both cached rows are measured the same way as in `benches/verify.rs`:
//! request built, service called, future polled once with a no-op waker.
//!
//! Then a timed loop, printed as percentiles: `first_seen` verifies a new
//! opaque token each time (one loopback round trip to a minimal endpoint
//! that answers a fixed active RFC 7662 response), next to `round_trip`,
//! the same POST made with a bare reqwest client (the floor).

use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use authlayer::test_util::{TestIssuer, kids};
use authlayer::{Algorithm, Introspection, Verifier, VerifyLayer};
use criterion::{Criterion, criterion_group, criterion_main};
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};
use tower::{Layer, Service, service_fn};

const AUD: &str = "urn:orders";
/// Timed first-seen verifications (and floor round trips).
const ROUNDS: usize = 2000;

fn ready<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    let mut future = pin!(future);
    for _ in 0..8 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("the future kept waiting")
}

fn call<S>(service: &mut S, auth: &HeaderValue) -> Response<()>
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: Debug,
{
    let mut req = Request::new(());
    req.headers_mut().insert(AUTHORIZATION, auth.clone());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(service.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    ready(service.call(req)).expect("service error")
}

fn bare() -> impl Service<Request<()>, Response = Response<()>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static {
    service_fn(|req: Request<()>| async move {
        black_box(&req);
        Ok::<_, Infallible>(Response::new(()))
    })
}

fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).expect("header value")
}

/// A minimal introspection endpoint on loopback: every token is active.
async fn endpoint(iss: String) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3600;
    let body = serde_json::json!({
        "active": true, "iss": iss, "sub": "user-42", "aud": AUD,
        "exp": exp, "scope": "orders:read", "client_id": "app", "token_type": "Bearer",
    })
    .to_string();
    let app = axum::Router::new().route(
        "/introspect",
        axum::routing::post(move || {
            let body = body.clone();
            async move { ([(http::header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{addr}/introspect")
}

fn percentiles(name: &str, mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    let (p50, p99) = (at(50), at(99));
    println!(
        "introspection/{name}: n={} p50={:.1} µs p99={:.1} µs",
        samples.len(),
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
    (p50, p99)
}

fn introspection(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let issuer = TestIssuer::new("https://id.example");
    let url = rt.block_on(endpoint(issuer.issuer().clone()));
    let verifier = rt
        .block_on(
            Verifier::builder()
                .issuer(issuer.issuer())
                .jwks_json(issuer.jwks_json())
                .audience(AUD)
                .introspection(Introspection::new("bench", "secret").endpoint(&url))
                .build(),
        )
        .expect("verifier");

    let mut group = c.benchmark_group("introspection");
    let mut service = bare();
    let auth = bearer("x");
    group.bench_function("bare", |b| b.iter(|| call(&mut service, black_box(&auth))));

    let jwt = issuer
        .token()
        .sub("user-42")
        .audience(AUD)
        .scope("orders:read")
        .key(kids::EC)
        .alg(Algorithm::ES256)
        .sign();
    let auth = bearer(&jwt);
    let mut service = VerifyLayer::new(verifier.clone()).layer(bare());
    assert_eq!(call(&mut service, &auth).status(), StatusCode::OK);
    group.bench_function("jwt_cached", |b| {
        b.iter(|| call(&mut service, black_box(&auth)));
    });

    let opaque = "opaque-token-of-43-characters-xxxxxxxxxxxxx";
    rt.block_on(verifier.verify(opaque)).expect("introspected");
    let hits = verifier.metrics().introspection_cache_hits;
    let auth = bearer(opaque);
    assert_eq!(call(&mut service, &auth).status(), StatusCode::OK);
    assert_eq!(verifier.metrics().introspection_cache_hits, hits + 1);
    group.bench_function("opaque_cached", |b| {
        b.iter(|| call(&mut service, black_box(&auth)));
    });
    group.finish();

    // First-seen opaque tokens: one loopback round trip each.
    let (first_seen, floor) = rt.block_on(async {
        let calls = verifier.metrics().introspections;
        let mut first_seen = Vec::with_capacity(ROUNDS);
        for i in 0..ROUNDS {
            let token = format!("first-seen-{i:08}");
            let start = Instant::now();
            verifier.verify(&token).await.expect("active");
            first_seen.push(start.elapsed());
        }
        assert_eq!(
            verifier.metrics().introspections,
            calls + ROUNDS as u64,
            "one call per new token"
        );
        let http = reqwest::Client::new();
        let mut floor = Vec::with_capacity(ROUNDS);
        for i in 0..ROUNDS {
            let start = Instant::now();
            let res = http
                .post(&url)
                .basic_auth("bench", Some("secret"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("token=floor-{i:08}&token_type_hint=access_token"))
                .send()
                .await
                .expect("round trip");
            black_box(res.bytes().await.expect("body"));
            floor.push(start.elapsed());
        }
        (first_seen, floor)
    });
    let (p50, p99) = percentiles("first_seen", first_seen);
    let (f50, f99) = percentiles("round_trip", floor);
    println!(
        "introspection/first_seen vs round_trip: p50 x{:.2}, p99 x{:.2}",
        p50.as_secs_f64() / f50.as_secs_f64(),
        p99.as_secs_f64() / f99.as_secs_f64()
    );
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = introspection
}
criterion_main!(benches);
