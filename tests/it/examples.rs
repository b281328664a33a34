//! The `orders` and `orders_grpc` example binaries, run as a user would:
//! configured by environment, pointed at a real issuer on loopback.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use authlayer::test_util::TestIssuer;

use crate::common::{grpc_client, http_get, orders_token, with_token};
use crate::orders_grpc::pb::{CreateOrderRequest, GetOrderRequest};

/// `target/<profile>/examples/<name>`, built by `cargo test` with the tests.
fn example(name: &str) -> PathBuf {
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
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts an example with `env` and waits for its `listening on …` line.
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
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("{name} printed {line:?}"));
    Running { child, addr }
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
