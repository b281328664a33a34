//! Per-request cost of authlayer against its floors, all in one run, so the
//! ratios in BENCHMARKS.md compare figures taken under the same conditions.
//!
//! Groups (one per algorithm, plus `flood` and `claims`):
//!
//! - `raw_verify`: `jsonwebtoken::crypto::verify` on the signature alone
//!   (it rebuilds the public key from the JWK's components on every call);
//! - `raw_verify_parsed` (RS256, PS256, ES256, EdDSA): aws-lc's
//!   `ParsedPublicKey::verify_sig` with the key parsed and the signature
//!   decoded outside the loop: the signature check alone, the floor of a
//!   first-seen token (compare `verify_cache_off` and `verify_fresh`);
//! - `bare`: a bare tower service: build the request with its
//!   `Authorization` header, call, poll the response (the stack's floor);
//! - `decode_value`, `decode_typed`: `jsonwebtoken::decode` into a
//!   `serde_json::Value` and into a small typed struct (verification's floor);
//! - `verify_cache_off`: `Verify` over the bare service, token cache off;
//! - `verify_fresh`: `Verify` with the default cache, every token first seen
//!   (a pool of distinct tokens, a new verifier whenever the pool is used up);
//! - `verify_cached`: `Verify`, the same token again (cache hit);
//! - `verify_scopes_cached`, `verify_scopes_cache_off`: `Verify` +
//!   `RequireScopes`.
//!
//! Every service row is measured the same way: request built, service
//! called, future polled once with a no-op waker (no runtime involved; a
//! known key never makes the future wait). No tracing subscriber is
//! installed, so the audit events cost a disabled callsite check, except in
//! the last row, `RS256/verify_cached_shipped_subscriber`: the cache hit
//! with the subscriber the examples ship (human log and audit log, both
//! written to a sink).

use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use authlayer::test_util::{TestIssuer, kids};
use authlayer::{
    Algorithm, CacheSize, Claims, Policy, RequirePolicyLayer, RequireScopesLayer, Verifier,
    VerifyLayer,
};
use aws_lc_rs::signature::ParsedPublicKey;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use tokio::runtime::Runtime;
use tower::{Layer, Service, service_fn};

const AUD: &str = "urn:orders";
const SCOPE: &str = "orders:read";
const HS_KID: &str = "hs";
const SECRET: [u8; 32] = [7; 32];
/// Distinct tokens per algorithm for the first-seen rows.
const POOL: usize = 2048;

type Measurement = criterion::measurement::WallTime;

/// What a hand-written middleware typically decodes.
#[derive(Deserialize)]
#[allow(dead_code)]
struct PeerClaims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    scope: String,
}

/// A user claims type for `with_claims`.
#[derive(Deserialize)]
#[allow(dead_code)]
struct UserClaims {
    plan: String,
    org: u64,
    features: Vec<String>,
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Polls `future` to completion with a no-op waker: every measured path
/// completes without waiting for anything (authlayer's futures on the first
/// poll; axum's router may yield once internally).
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

/// One request through `service`: build it, call, poll the response.
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

fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).expect("header value")
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

/// The kid that signs `alg` in a [`TestIssuer`].
/// jsonwebtoken's name for `alg`, for the raw-library floor.
fn raw_alg(alg: Algorithm) -> jsonwebtoken::Algorithm {
    alg.as_str()
        .parse()
        .expect("jsonwebtoken knows every algorithm authlayer does")
}

fn kid(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 | Algorithm::PS256 => kids::RSA,
        Algorithm::ES256 => kids::EC,
        Algorithm::EdDSA => kids::ED,
        _ => HS_KID,
    }
}

fn token(issuer: &TestIssuer, alg: Algorithm) -> String {
    issuer
        .token()
        .sub("user-42")
        .audience(AUD)
        .scope(SCOPE)
        .key(kid(alg))
        .alg(alg)
        .sign()
}

fn verifier(rt: &Runtime, issuer: &TestIssuer, alg: Algorithm, cache: CacheSize) -> Verifier {
    let mut builder = Verifier::builder()
        .issuer(issuer.issuer())
        .jwks_json(issuer.jwks_json())
        .audience(AUD)
        .token_cache(cache);
    if alg == Algorithm::HS256 {
        builder = builder
            .algorithms([Algorithm::HS256])
            .shared_secret_with_kid(HS_KID, SECRET.to_vec());
    }
    rt.block_on(builder.build()).expect("verifier")
}

/// The key of `alg` parsed once by aws-lc, for the signature floor; `None`
/// for HMAC (nothing to parse).
fn parsed_key(issuer: &TestIssuer, alg: Algorithm) -> Option<ParsedPublicKey> {
    use aws_lc_rs::signature as sig;

    let jwk = issuer.jwk(kid(alg))?;
    let part = |name: &str| {
        let text = jwk[name].as_str().expect("JWK member");
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, text)
            .expect("base64url")
    };
    let key = match alg {
        Algorithm::RS256 | Algorithm::PS256 => {
            let params = if alg == Algorithm::RS256 {
                &sig::RSA_PKCS1_2048_8192_SHA256
            } else {
                &sig::RSA_PSS_2048_8192_SHA256
            };
            sig::RsaPublicKeyComponents {
                n: part("n"),
                e: part("e"),
            }
            .to_parsed_public_key(params)
        }
        Algorithm::ES256 => {
            let point = [vec![4], part("x"), part("y")].concat();
            ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point)
        }
        Algorithm::EdDSA => ParsedPublicKey::new(&sig::ED25519, part("x")),
        _ => return None,
    };
    Some(key.expect("aws-lc parses the issuer's key"))
}

fn decoding_key(issuer: &TestIssuer, alg: Algorithm) -> DecodingKey {
    if alg == Algorithm::HS256 {
        return DecodingKey::from_secret(&SECRET).expect("hmac key");
    }
    let jwk: Jwk = serde_json::from_value(issuer.jwk(kid(alg)).expect("jwk")).expect("jwk json");
    DecodingKey::from_jwk(&jwk).expect("decoding key")
}

/// The default cache size, as `Verifier::builder()` sets it.
const DEFAULT_CACHE: CacheSize = CacheSize::Bytes(8 * 1024 * 1024);

fn algorithms(c: &mut Criterion) {
    let rt = runtime();
    let issuer = TestIssuer::new("https://bench.test");
    issuer.add_secret(HS_KID, Algorithm::HS256, &SECRET);
    for alg in [
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
        Algorithm::HS256,
    ] {
        let mut group = c.benchmark_group(format!("{alg:?}"));
        bench_algorithm(&mut group, &rt, &issuer, alg);
        group.finish();
    }
}

#[allow(clippy::too_many_lines)]
fn bench_algorithm(
    group: &mut BenchmarkGroup<'_, Measurement>,
    rt: &Runtime,
    issuer: &TestIssuer,
    alg: Algorithm,
) {
    let token = token(issuer, alg);
    let auth = bearer(&token);
    // Building a verifier installs the crypto provider jsonwebtoken needs.
    let cached = verifier(rt, issuer, alg, DEFAULT_CACHE);
    let uncached = verifier(rt, issuer, alg, CacheSize::Off);

    let key = decoding_key(issuer, alg);
    let (message, signature) = token.rsplit_once('.').expect("compact token");
    group.bench_function("raw_verify", |b| {
        b.iter(|| {
            let ok = jsonwebtoken::crypto::verify(
                black_box(signature),
                black_box(message.as_bytes()),
                &key,
                raw_alg(alg),
            );
            assert!(matches!(ok, Ok(true)));
        });
    });

    if let Some(parsed) = parsed_key(issuer, alg) {
        let signature =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature)
                .expect("base64url signature");
        assert!(parsed.verify_sig(message.as_bytes(), &signature).is_ok());
        group.bench_function("raw_verify_parsed", |b| {
            b.iter(|| {
                let ok = parsed.verify_sig(black_box(message.as_bytes()), black_box(&signature));
                assert!(ok.is_ok());
            });
        });
    }

    let mut service = bare();
    group.bench_function("bare", |b| b.iter(|| call(&mut service, black_box(&auth))));

    // The validation is built once, as a careful hand-written middleware does.
    let mut validation = Validation::new(raw_alg(alg));
    validation.set_audience(&[AUD]);
    validation.set_issuer(&[issuer.issuer()]);
    jsonwebtoken::decode::<PeerClaims>(&token, &key, &validation).expect("decode");
    group.bench_function("decode_value", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &key, &validation)
                .expect("decode")
        });
    });
    group.bench_function("decode_typed", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<PeerClaims>(black_box(&token), &key, &validation)
                .expect("decode")
        });
    });

    let mut service = VerifyLayer::new(uncached.clone()).layer(bare());
    assert_eq!(call(&mut service, &auth).status(), StatusCode::OK);
    group.bench_function("verify_cache_off", |b| {
        b.iter(|| call(&mut service, black_box(&auth)));
    });

    // First-seen tokens with the cache on: each iteration a token never seen
    // by this verifier (miss, full verification, insertion). When the pool
    // is used up, a fresh verifier (outside the timed part) starts over.
    let pool: Vec<HeaderValue> = (0..POOL)
        .map(|_| bearer(&self::token(issuer, alg)))
        .collect();
    group.bench_function("verify_fresh", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(POOL as u64);
                left -= n;
                let verifier = verifier(rt, issuer, alg, DEFAULT_CACHE);
                let mut service = VerifyLayer::new(verifier).layer(bare());
                let start = Instant::now();
                for auth in pool.iter().take(usize::try_from(n).unwrap_or(POOL)) {
                    black_box(call(&mut service, auth));
                }
                total += start.elapsed();
            }
            total
        });
    });
    let probe = verifier(rt, issuer, alg, DEFAULT_CACHE);
    let mut service = VerifyLayer::new(probe.clone()).layer(bare());
    for auth in &pool {
        assert_eq!(call(&mut service, auth).status(), StatusCode::OK);
    }
    assert_eq!(
        probe.metrics().cache_hits,
        0,
        "every pool token is distinct"
    );

    let mut service = VerifyLayer::new(cached.clone()).layer(bare());
    assert_eq!(call(&mut service, &auth).status(), StatusCode::OK);
    let hits = cached.metrics().cache_hits;
    assert_eq!(call(&mut service, &auth).status(), StatusCode::OK);
    assert_eq!(cached.metrics().cache_hits, hits + 1, "a cache hit");
    group.bench_function("verify_cached", |b| {
        b.iter(|| call(&mut service, black_box(&auth)));
    });

    let scopes = RequireScopesLayer::all([SCOPE]);
    let mut service = VerifyLayer::new(cached.clone()).layer(scopes.layer(bare()));
    assert_eq!(call(&mut service, &auth).status(), StatusCode::OK);
    group.bench_function("verify_scopes_cached", |b| {
        b.iter(|| call(&mut service, black_box(&auth)));
    });
    let mut service = VerifyLayer::new(uncached.clone()).layer(scopes.layer(bare()));
    assert_eq!(call(&mut service, &auth).status(), StatusCode::OK);
    group.bench_function("verify_scopes_cache_off", |b| {
        b.iter(|| call(&mut service, black_box(&auth)));
    });
}

/// Requests naming keys nobody has: the cost of each refusal once the
/// refetch cooldown is active (a flood costs at most one fetch per window).
fn flood(c: &mut Criterion) {
    let rt = runtime();
    let issuer = TestIssuer::new("https://bench.test");
    let server = rt.block_on(issuer.serve());
    let remote = rt
        .block_on(
            Verifier::builder()
                .issuer(server.issuer_url())
                .audience(AUD)
                .build(),
        )
        .expect("remote verifier");
    let local = verifier(&rt, &issuer, Algorithm::EdDSA, DEFAULT_CACHE);
    let pool: Vec<HeaderValue> = (0..POOL)
        .map(|i| {
            bearer(
                &issuer
                    .token()
                    .sub("mallory")
                    .audience(AUD)
                    .key(kids::ED)
                    .header_kid(Some(&format!("unknown-{i}")))
                    .sign(),
            )
        })
        .collect();

    // The first unknown kid starts the one refetch the cooldown allows; wait
    // for it here so every measured request finds the cooldown active.
    let first = pool.first().expect("pool");
    let token = first.to_str().expect("ascii")["Bearer ".len()..].to_owned();
    let err = rt.block_on(remote.verify(&token)).unwrap_err();
    assert_eq!(err.reason(), authlayer::Reason::UnknownKey);
    let fetches_before = server.requests();

    let mut group = c.benchmark_group("flood");
    for (name, verifier) in [
        ("unknown_kid_remote", &remote),
        ("unknown_kid_static", &local),
    ] {
        let mut service = VerifyLayer::new(verifier.clone()).layer(bare());
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % POOL;
                let res = call(&mut service, &pool[i]);
                assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
                res
            });
        });
    }
    group.finish();
    let fetches = server.requests() - fetches_before;
    eprintln!("flood: JWKS requests during the flood (cooldown active): {fetches}");
    assert_eq!(fetches, 0, "the cooldown bounds refetches");
}

/// Claims extraction: parsing the payload into the default and a user type,
/// the cache hit with each, and the axum extractor in a handler.
fn claims(c: &mut Criterion) {
    use axum::extract::FromRequestParts;

    let rt = runtime();
    let issuer = TestIssuer::new("https://bench.test");
    let token = issuer
        .token()
        .sub("user-42")
        .audience(AUD)
        .scope("orders:read orders:write")
        .claim("roles", serde_json::json!(["buyer"]))
        .claim("tenant", "acme")
        .claim("plan", "pro")
        .claim("org", 7)
        .claim("features", serde_json::json!(["a", "b"]))
        .key(kids::ED)
        .sign();
    let payload = token.split('.').nth(1).expect("payload");
    let payload = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .expect("base64"),
    )
    .expect("utf-8");
    let auth = bearer(&token);
    let verifier = verifier(&rt, &issuer, Algorithm::EdDSA, DEFAULT_CACHE);

    let mut group = c.benchmark_group("claims");
    // The floor of any claims parse: checking the payload's JSON, keeping nothing.
    group.bench_function("parse_floor_ignored", |b| {
        b.iter(|| {
            serde_json::from_str::<serde::de::IgnoredAny>(black_box(&payload)).expect("json")
        });
    });
    group.bench_function("parse_default", |b| {
        b.iter(|| Claims::<()>::from_json(black_box(&payload)).expect("claims"));
    });
    group.bench_function("parse_user", |b| {
        b.iter(|| Claims::<UserClaims>::from_json(black_box(&payload)).expect("claims"));
    });

    let mut default = VerifyLayer::new(verifier.clone()).layer(bare());
    let mut user = VerifyLayer::new(verifier.clone())
        .with_claims::<UserClaims>()
        .layer(bare());
    assert_eq!(call(&mut default, &auth).status(), StatusCode::OK);
    assert_eq!(call(&mut user, &auth).status(), StatusCode::OK);
    group.bench_function("verify_cached_default", |b| {
        b.iter(|| call(&mut default, black_box(&auth)));
    });
    group.bench_function("verify_cached_user", |b| {
        b.iter(|| call(&mut user, black_box(&auth)));
    });

    // Authorization per request: a policy alone, and the layer stack with it.
    let policy = Policy::all([
        Policy::scopes_all(["orders:read"]),
        Policy::any([Policy::roles_all(["admin"]), Policy::roles_all(["buyer"])]),
        Policy::tenant_in(["acme", "globex"]),
        Policy::not(Policy::claims("blocked", |c| c.sub() == Some("mallory"))),
    ]);
    let standard = rt.block_on(verifier.verify(&token)).expect("claims");
    assert!(policy.check(&standard).is_ok());
    group.bench_function("policy_check", |b| {
        b.iter(|| policy.check(black_box(&standard)));
    });
    let mut with_policy = VerifyLayer::new(verifier.clone())
        .layer(RequirePolicyLayer::new(policy.clone()).layer(bare()));
    assert_eq!(call(&mut with_policy, &auth).status(), StatusCode::OK);
    group.bench_function("verify_policy_cached", |b| {
        b.iter(|| call(&mut with_policy, black_box(&auth)));
    });

    let claims = rt
        .block_on(verifier.verify_as::<UserClaims>(&token))
        .expect("claims");
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.extensions.insert(claims.to_standard());
    parts.extensions.insert(claims);
    group.bench_function("axum_extract_default", |b| {
        b.iter(|| ready(Claims::<()>::from_request_parts(&mut parts, &())).expect("claims"));
    });
    group.bench_function("axum_extract_user", |b| {
        b.iter(|| {
            ready(Claims::<UserClaims>::from_request_parts(&mut parts, &())).expect("claims")
        });
    });
    group.finish();
}

/// The same comparison through an axum router (one route, `/orders/{id}`),
/// the stack the reference peer figures were taken on, with a hand-written
/// `from_fn` + `jsonwebtoken::decode` middleware as the in-run peer.
fn axum_stack(c: &mut Criterion) {
    use axum::Router;
    use axum::body::Body;
    use axum::extract::{Path, State};
    use axum::middleware::{Next, from_fn_with_state};
    use axum::response::IntoResponse;
    use axum::routing::get;

    #[derive(Clone)]
    struct Peer {
        key: std::sync::Arc<DecodingKey>,
        validation: std::sync::Arc<Validation>,
    }

    async fn peer_auth(
        State(peer): State<Peer>,
        mut req: Request<Body>,
        next: Next,
    ) -> axum::response::Response {
        let token = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let Some(token) = token else {
            return StatusCode::UNAUTHORIZED.into_response();
        };
        match jsonwebtoken::decode::<PeerClaims>(token, &peer.key, &peer.validation) {
            Ok(data) if data.claims.scope.split(' ').any(|s| s == SCOPE) => {
                req.extensions_mut()
                    .insert(std::sync::Arc::new(data.claims));
                next.run(req).await
            }
            Ok(_) => StatusCode::FORBIDDEN.into_response(),
            Err(_) => StatusCode::UNAUTHORIZED.into_response(),
        }
    }

    async fn get_order(Path(id): Path<u64>) -> String {
        format!("order {id}")
    }

    fn request(router: &mut Router, auth: &HeaderValue) -> axum::response::Response {
        let mut req = Request::get("/orders/1")
            .body(Body::empty())
            .expect("request");
        req.headers_mut().insert(AUTHORIZATION, auth.clone());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(
            Service::<Request<Body>>::poll_ready(router, &mut cx),
            Poll::Ready(Ok(()))
        ));
        ready(router.call(req)).expect("infallible")
    }

    let rt = runtime();
    let issuer = TestIssuer::new("https://bench.test");
    issuer.add_secret(HS_KID, Algorithm::HS256, &SECRET);
    let route = || Router::new().route("/orders/{id}", get(get_order));
    let mut group = c.benchmark_group("axum");

    let token = token(&issuer, Algorithm::RS256);
    let auth = bearer(&token);
    let mut router = route();
    assert_eq!(request(&mut router, &auth).status(), StatusCode::OK);
    group.bench_function("router_bare", |b| {
        b.iter(|| request(&mut router, black_box(&auth)));
    });

    let cached = verifier(&rt, &issuer, Algorithm::RS256, DEFAULT_CACHE);
    let mut router = route().layer(VerifyLayer::new(cached.clone()));
    assert_eq!(request(&mut router, &auth).status(), StatusCode::OK);
    group.bench_function("router_verify_cached", |b| {
        b.iter(|| request(&mut router, black_box(&auth)));
    });
    let mut router = Router::new()
        .route(
            "/orders/{id}",
            get(get_order).route_layer(RequireScopesLayer::all([SCOPE])),
        )
        .layer(VerifyLayer::new(cached));
    assert_eq!(request(&mut router, &auth).status(), StatusCode::OK);
    group.bench_function("router_verify_scopes_cached", |b| {
        b.iter(|| request(&mut router, black_box(&auth)));
    });

    for alg in [
        Algorithm::RS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
        Algorithm::HS256,
    ] {
        let token = self::token(&issuer, alg);
        let auth = bearer(&token);
        let mut validation = Validation::new(raw_alg(alg));
        validation.set_audience(&[AUD]);
        validation.set_issuer(&[issuer.issuer()]);
        let peer = Peer {
            key: std::sync::Arc::new(decoding_key(&issuer, alg)),
            validation: std::sync::Arc::new(validation),
        };
        let mut router = route().layer(from_fn_with_state(peer, peer_auth));
        assert_eq!(request(&mut router, &auth).status(), StatusCode::OK);
        group.bench_function(format!("peer_from_fn_decode_{alg:?}"), |b| {
            b.iter(|| request(&mut router, black_box(&auth)));
        });
    }
    group.finish();
}

/// The cache hit of `RS256/verify_cached` with the subscriber the examples
/// ship (`examples/common/observability.rs`): a `fmt` layer for the human
/// log at `info`, the audit target filtered out, and the JSON-lines audit
/// recorder; both write to `std::io::sink()` here. Installed as the global
/// default, as a program does, so this runs last: every other row runs
/// without a subscriber.
fn shipped_subscriber(c: &mut Criterion) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt as _;

    let rt = runtime();
    let issuer = TestIssuer::new("https://bench.test");
    let token = token(&issuer, Algorithm::RS256);
    let auth = bearer(&token);
    let cached = verifier(&rt, &issuer, Algorithm::RS256, DEFAULT_CACHE);

    let human = tracing_subscriber::fmt::layer()
        .with_writer(std::io::sink)
        .with_filter(
            Targets::new()
                .with_default(LevelFilter::INFO)
                .with_target(authlayer::audit::TARGET, LevelFilter::OFF),
        );
    let (recorder, guard) = authlayer::audit::AuditLog::writer(std::io::sink())
        .start()
        .expect("audit log");
    let recorder = recorder
        .with_filter(Targets::new().with_target(authlayer::audit::TARGET, LevelFilter::INFO));
    let subscriber = tracing_subscriber::registry().with(human).with(recorder);
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");

    let mut service = VerifyLayer::new(cached.clone()).layer(bare());
    assert_eq!(call(&mut service, &auth).status(), StatusCode::OK);
    let hits = cached.metrics().cache_hits;
    assert_eq!(call(&mut service, &auth).status(), StatusCode::OK);
    assert_eq!(cached.metrics().cache_hits, hits + 1, "a cache hit");
    let mut group = c.benchmark_group("RS256");
    group.bench_function("verify_cached_shipped_subscriber", |b| {
        b.iter(|| call(&mut service, black_box(&auth)));
    });
    group.finish();
    guard.flush().expect("audit log flush");
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
    targets = algorithms, flood, claims, axum_stack, shipped_subscriber
}
criterion_main!(benches);
