//! The `orders` and `orders_grpc` example binaries, run as a user would:
//! configured by environment, pointed at a real issuer on loopback.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use authlayer::test_util::TestIssuer;

use crate::common::{grpc_client, http_get, orders_token, with_token};
use crate::orders_grpc::pb::{CreateOrderRequest, GetOrderRequest};

/// `target/<profile>/examples/<name>`, built by `cargo test` with the tests.
pub(crate) fn example(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples").join(name)
}

pub(crate) struct Running {
    child: Child,
    pub(crate) addr: SocketAddr,
    /// The lines of stdout after `listening on …`, read as they come (so
    /// the example never writes into a closed pipe).
    stdout: mpsc::Receiver<String>,
}

impl Running {
    /// The next line of stdout, waiting at most 10 s; `None` at the end.
    pub(crate) fn next_line(&self) -> Option<String> {
        self.stdout.recv_timeout(Duration::from_secs(10)).ok()
    }

    /// Stops the example with SIGTERM (a graceful stop: it flushes its
    /// audit log), waits for it, and returns the rest of its stdout.
    pub(crate) fn terminate(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait for the example");
        assert!(exit.success(), "a graceful stop exits 0: {exit}");
        self.stdout.iter().collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts an example with `env` and waits for its `listening on …` line,
/// which must be the first line of its stdout.
pub(crate) fn start(name: &str, env: &[(&str, &str)]) -> Running {
    let mut cmd = Command::new(example(name));
    cmd.env("PORT", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("run {name}: {e}"));
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("{name} printed {line:?}"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Running {
        child,
        addr,
        stdout: rx,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_example_protects_its_routes() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let orders = start("orders", &[("AUTH_ISSUER", server.issuer_url())]);
    let base = format!("http://{}", orders.addr);
    let http = reqwest::Client::new();

    let health: serde_json::Value = http_get(&http, &format!("{base}/health"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(health["auth"]["ready"], true);
    assert_eq!(health["auth"]["issuers"][0]["issuer"], server.issuer_url());

    let res = http_get(&http, &format!("{base}/orders/1"), None).await;
    assert_eq!(res.status(), 401);
    let read = orders_token(&issuer)
        .sub("alice")
        .scope("orders:read")
        .sign();
    let res = http_get(&http, &format!("{base}/orders/1"), Some(&read)).await;
    assert_eq!(res.status(), 200);
    let res = http
        .post(format!("{base}/orders"))
        .bearer_auth(&read)
        .json(&serde_json::json!({"item": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let me: serde_json::Value = http_get(&http, &format!("{base}/me"), Some(&read))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["sub"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_example_with_a_jwks_url_and_another_audience() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let jwks = server.jwks_url();
    let orders = start(
        "orders",
        &[
            ("AUTH_ISSUER", server.issuer_url()),
            ("AUTH_JWKS_URL", &jwks),
            ("AUTH_AUDIENCE", "urn:shop"),
        ],
    );
    let base = format!("http://{}", orders.addr);
    let token = issuer
        .token()
        .audience("urn:shop")
        .scope("orders:read")
        .sign();
    let http = reqwest::Client::new();
    let res = http_get(&http, &format!("{base}/orders/2"), Some(&token)).await;
    assert_eq!(res.status(), 200);
    let wrong = orders_token(&issuer).scope("orders:read").sign();
    let res = http_get(&http, &format!("{base}/orders/2"), Some(&wrong)).await;
    assert_eq!(res.status(), 401);
}

/// Starts the `orders` example against `issuer`, asserts that it exits with
/// a failure, and returns what it wrote to stderr.
fn orders_start_failure(issuer: &str) -> String {
    let out = Command::new(example("orders"))
        .env("AUTH_ISSUER", issuer)
        .env("PORT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn orders_example_refuses_to_start_without_its_issuer() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stderr = orders_start_failure(&format!("http://127.0.0.1:{port}"));
    assert!(
        stderr.contains(&format!(
            "127.0.0.1:{port}/.well-known/openid-configuration"
        )),
        "{stderr}"
    );
}

#[test]
fn orders_example_refuses_plain_http_to_a_remote_host() {
    // Refused before any request is made, so no traffic leaves the machine.
    let stderr = orders_start_failure("http://id.example.invalid");
    assert!(
        stderr.contains("plain http is only allowed for loopback"),
        "{stderr}"
    );
    assert!(
        stderr.contains("AUTH_ALLOW_HTTP") || stderr.contains("allow_insecure_http"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_grpc_example_answers_unauthenticated_and_permission_denied() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let grpc = start("orders_grpc", &[("AUTH_ISSUER", server.issuer_url())]);
    let mut client = grpc_client(grpc.addr).await;
    let status = client
        .get_order(GetOrderRequest { id: 1 })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    let token = orders_token(&issuer).sub("bob").scope("orders:read").sign();
    let req = with_token(GetOrderRequest { id: 3 }, &token);
    assert_eq!(
        client.get_order(req).await.unwrap().into_inner().owner,
        "bob"
    );

    let req = with_token(
        CreateOrderRequest {
            item: "x".into(),
            quantity: 1,
        },
        &token,
    );
    assert_eq!(
        client.create_order(req).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_example_admin_and_tenant_routes_read_the_configured_claims() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let http = reqwest::Client::new();
    let get = |base: &str, path: &str, token: &str| {
        let url = format!("{base}{path}");
        let http = http.clone();
        let token = token.to_owned();
        async move { http_get(&http, &url, Some(&token)).await }
    };

    // Defaults: `roles` and `tenant`.
    let orders = start("orders", &[("AUTH_ISSUER", server.issuer_url())]);
    let base = format!("http://{}", orders.addr);
    let admin = orders_token(&issuer)
        .scope("orders:read")
        .claim("roles", serde_json::json!(["admin"]))
        .claim("tenant", "acme")
        .sign();
    let res = get(&base, "/admin/orders", &admin).await;
    assert_eq!(res.status(), 200);
    assert!(res.json::<serde_json::Value>().await.unwrap().is_array());
    let user = orders_token(&issuer).scope("orders:read").sign();
    assert_eq!(get(&base, "/admin/orders", &user).await.status(), 403);
    let res = get(&base, "/tenants/acme/orders/5", &admin).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"tenant": "acme", "id": 5}));
    assert_eq!(
        get(&base, "/tenants/other/orders/5", &admin).await.status(),
        403
    );
    assert_eq!(
        get(&base, "/tenants/acme/orders/5", &user).await.status(),
        403
    );
    let no_scope = orders_token(&issuer).claim("tenant", "acme").sign();
    assert_eq!(
        get(&base, "/tenants/acme/orders/5", &no_scope)
            .await
            .status(),
        403
    );
    drop(orders);

    // Keycloak-shaped roles and a nested tenant.
    let orders = start(
        "orders",
        &[
            ("AUTH_ISSUER", server.issuer_url()),
            ("AUTH_ROLES_CLAIM", "realm_access.roles"),
            ("AUTH_TENANT_CLAIM", "org.id"),
        ],
    );
    let base = format!("http://{}", orders.addr);
    let keycloak = orders_token(&issuer)
        .scope("orders:read")
        .claim("realm_access", serde_json::json!({"roles": ["admin"]}))
        .claim("org", serde_json::json!({"id": "acme"}))
        .sign();
    assert_eq!(get(&base, "/admin/orders", &keycloak).await.status(), 200);
    assert_eq!(
        get(&base, "/tenants/acme/orders/1", &keycloak)
            .await
            .status(),
        200
    );
    // The default claim names no longer count.
    assert_eq!(get(&base, "/admin/orders", &admin).await.status(), 403);
    assert_eq!(
        get(&base, "/tenants/acme/orders/1", &admin).await.status(),
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_example_forwards_to_orders_and_defaults_its_audience_per_mode() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let orders = start("orders", &[("AUTH_ISSUER", server.issuer_url())]);
    let upstream = format!("http://{}", orders.addr);
    let gateway = start(
        "gateway",
        &[
            ("AUTH_ISSUER", server.issuer_url()),
            ("UPSTREAM", &upstream),
        ],
    );
    let http = reqwest::Client::new();
    let base = format!("http://{}", gateway.addr);
    let token = orders_token(&issuer)
        .sub("carol")
        .scope("orders:read")
        .sign();
    let res = http_get(&http, &format!("{base}/orders/9"), Some(&token)).await;
    assert_eq!(res.status(), 200);
    let order: serde_json::Value = res.json().await.unwrap();
    assert_eq!(order["owner"], "carol");
    assert_eq!(
        http_get(&http, &format!("{base}/orders/9"), None)
            .await
            .status(),
        401
    );
    assert_eq!(
        http_get(&http, &format!("{base}/health"), None)
            .await
            .status(),
        200
    );

    // Exchange mode verifies tokens for urn:gateway, not urn:orders. (The
    // test issuer has no token endpoint, so the exchange itself fails: 502.)
    let exchange = start(
        "gateway",
        &[
            ("AUTH_ISSUER", server.issuer_url()),
            ("UPSTREAM", &upstream),
            ("GATEWAY_MODE", "exchange"),
        ],
    );
    let base = format!("http://{}", exchange.addr);
    let res = http_get(&http, &format!("{base}/orders/9"), Some(&token)).await;
    assert_eq!(res.status(), 401);
    let for_gateway = issuer.token().audience("urn:gateway").sign();
    let res = http_get(&http, &format!("{base}/orders/9"), Some(&for_gateway)).await;
    assert_eq!(res.status(), 502);
}

#[test]
fn gateway_example_refuses_an_unknown_mode() {
    let out = Command::new(example("gateway"))
        .env("GATEWAY_MODE", "teleport")
        .env("PORT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("GATEWAY_MODE=\"teleport\""), "{stderr}");
}

/// The status line of a GET with this exact request target, sent on a raw
/// socket (an HTTP client would normalise `\` and dot segments away).
async fn raw_status(addr: SocketAddr, target: &str, token: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    text.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_example_keeps_requests_below_the_upstream_path_and_health_terse() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let orders = start("orders", &[("AUTH_ISSUER", server.issuer_url())]);
    let gateway = start(
        "gateway",
        &[
            ("AUTH_ISSUER", server.issuer_url()),
            ("UPSTREAM", &format!("http://{}/api", orders.addr)),
        ],
    );
    let token = orders_token(&issuer).scope("orders:read").sign();
    for target in ["/..\\orders/1", "/.%2e\\orders/1", "/..%2forders/1"] {
        let status = raw_status(gateway.addr, target, &token).await;
        assert!(status.starts_with("HTTP/1.1 400"), "{target}: {status}");
    }
    // Forwarded below /api, where orders has no route.
    let status = raw_status(gateway.addr, "/orders/1", &token).await;
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
    let health = http_get(
        &reqwest::Client::new(),
        &format!("http://{}/health", gateway.addr),
        None,
    )
    .await;
    assert_eq!(health.status(), 200);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));
}

#[test]
fn gateway_example_refuses_an_unusable_upstream() {
    for upstream in [
        "ftp://127.0.0.1/x",
        "http://127.0.0.1:3000/api?x=1",
        "not a url",
        "http://alice:hunter2-secret@127.0.0.1:3000/api",
        "http://alice:hunter2-secret@127.0.0.1:99999/api",
        "alice:hunter2-secret@127.0.0.1:3000",
    ] {
        let out = Command::new(example("gateway"))
            .env("UPSTREAM", upstream)
            .env("PORT", "0")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{upstream}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("gateway: cannot start: UPSTREAM="),
            "{upstream}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{upstream}: it listened");
        // SECURITY: the refusal names the URL, never its password.
        assert!(!stderr.contains("hunter2"), "{upstream}: {stderr}");
    }
}
