//! What each gateway mode costs per request, against the direct request to
//! the service behind it (the floor), all in one run.
//!
//! In process, on one tokio runtime (2 workers): the example issuer (its
//! shipped demo configuration: seeded user and clients, RS256), the axum
//! `orders` service, a minimal echo backend and `examples/gateway.rs` in
//! each mode. One reqwest client with a kept-alive connection sends one
//! request at a time (latency, not throughput).
//!
//! Rows (group `gateway`):
//!
//! - `orders_direct`: `GET /orders/7` straight to orders (floor of forward
//!   and exchange);
//! - `forward`: the same through the gateway in forward mode;
//! - `exchange_cached`: through the gateway in exchange mode, exchanged
//!   token cached (one issuer call in all);
//! - `exchange_uncached`: exchange mode with the cache off: every request
//!   also calls the issuer's `/token` (client authentication cached by the
//!   issuer, a new RS256 signature per request);
//! - `echo_direct`: `GET /x` straight to the echo backend (floor of headers);
//! - `headers`: the same through the gateway in headers mode.
//!
//! Logging as shipped: a `tracing_subscriber::fmt` subscriber with the
//! examples' default filter (`info,authlayer::audit=info`), writing to a
//! sink, so every audit and issuer line is formatted but not printed.

#[path = "../gateway.rs"]
#[allow(dead_code)] // its `main` and env parsing belong to the example binary
mod gateway;
#[path = "../issuer/main.rs"]
// Its unit tests compile here too (bench targets build with cfg(test)) but
// never run: criterion's main replaces the test harness. The issuer is
// linted as its own example target.
#[allow(dead_code, unused_imports, clippy::pedantic)]
mod issuer;
#[path = "../orders.rs"]
#[allow(dead_code)] // its `main` and `serve` belong to the example binary
mod orders;

use std::time::Duration;

use authlayer::outbound::TokenExchange;
use authlayer::{CacheSize, Verifier};
use criterion::{Criterion, criterion_group, criterion_main};
use issuer::config::{Config, DEMO_USER, GATEWAY_AUDIENCE, GATEWAY_CLIENT, Settings};
use tokio::runtime::Runtime;

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(axum::serve(listener, app).into_future());
    format!("http://{addr}")
}

struct Bench {
    http: reqwest::Client,
    orders: String,
    echo: String,
    forward: String,
    exchange_cached: String,
    exchange_uncached: String,
    headers: String,
    orders_token: String,
    gateway_token: String,
    _issuer: issuer::server::Running,
}

async fn login(http: &reqwest::Client, iss: &str, audience: &str) -> String {
    let body = format!(
        "username={}&password={}&audience={}",
        DEMO_USER.0,
        DEMO_USER.1,
        url::form_urlencoded::byte_serialize(audience.as_bytes()).collect::<String>()
    );
    let res: serde_json::Value = http
        .post(format!("{iss}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login JSON");
    res["access_token"].as_str().expect("a token").to_owned()
}

async fn start() -> Bench {
    let mut config: Config =
        Config::from_settings(&Settings::from_args([]).expect("settings")).expect("config");
    config.port = 0;
    config.issuer_url = None;
    let running = issuer::server::start(config).await.expect("issuer");
    let iss = running.issuer().to_owned();
    let verifier = |audience: &'static str| {
        Verifier::builder()
            .issuer(iss.clone())
            .audience(audience)
            .build()
    };
    let orders = serve(orders::app(verifier("urn:orders").await.expect("verifier"))).await;
    let echo = serve(axum::Router::new().fallback(|| async { "ok" })).await;
    let exchange = |cache: CacheSize| {
        TokenExchange::builder(format!("{iss}/token"), GATEWAY_CLIENT.0, GATEWAY_CLIENT.1)
            .cache_bytes(cache)
            .build()
            .expect("exchange client")
    };
    let mode = |cache| gateway::Mode::Exchange {
        exchange: exchange(cache),
        audience: "urn:orders".into(),
    };
    let forward = serve(gateway::app(
        verifier("urn:orders").await.expect("verifier"),
        &orders,
        gateway::Mode::Forward,
    ))
    .await;
    let exchange_cached = serve(gateway::app(
        verifier(GATEWAY_AUDIENCE).await.expect("verifier"),
        &orders,
        mode(CacheSize::Bytes(32 * 1024 * 1024)),
    ))
    .await;
    let exchange_uncached = serve(gateway::app(
        verifier(GATEWAY_AUDIENCE).await.expect("verifier"),
        &orders,
        mode(CacheSize::Off),
    ))
    .await;
    let headers = serve(gateway::app(
        verifier("urn:orders").await.expect("verifier"),
        &echo,
        gateway::Mode::Headers,
    ))
    .await;
    let http = reqwest::Client::new();
    let orders_token = login(&http, &iss, "urn:orders").await;
    let gateway_token = login(&http, &iss, GATEWAY_AUDIENCE).await;
    Bench {
        http,
        orders,
        echo,
        forward,
        exchange_cached,
        exchange_uncached,
        headers,
        orders_token,
        gateway_token,
        _issuer: running,
    }
}

async fn get(http: &reqwest::Client, url: &str, token: &str) {
    let res = http.get(url).bearer_auth(token).send().await.expect("send");
    assert!(res.status().is_success(), "{url}: {}", res.status());
    res.bytes().await.expect("body");
}

fn gateway_modes(c: &mut Criterion) {
    let _logging = tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,authlayer::audit=info",
            ))
            .with_writer(std::io::sink)
            .finish(),
    );
    let rt: Runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let b = rt.block_on(start());
    let rows: [(&str, String, &str); 6] = [
        (
            "orders_direct",
            format!("{}/orders/7", b.orders),
            &b.orders_token,
        ),
        (
            "forward",
            format!("{}/orders/7", b.forward),
            &b.orders_token,
        ),
        (
            "exchange_cached",
            format!("{}/orders/7", b.exchange_cached),
            &b.gateway_token,
        ),
        (
            "exchange_uncached",
            format!("{}/orders/7", b.exchange_uncached),
            &b.gateway_token,
        ),
        ("echo_direct", format!("{}/x", b.echo), &b.orders_token),
        ("headers", format!("{}/x", b.headers), &b.orders_token),
    ];
    let mut group = c.benchmark_group("gateway");
    for (name, url, token) in &rows {
        // Fails loudly before measuring if a mode is broken.
        rt.block_on(get(&b.http, url, token));
        group.bench_function(*name, |bench| {
            bench.iter(|| rt.block_on(get(&b.http, url, token)));
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = gateway_modes
}
criterion_main!(benches);
