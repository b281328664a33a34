//! The `orders` and `orders_grpc` example binaries, run as a user would:
//! configured by environment, pointed at a real issuer on loopback.

use crate::common;

use crate::orders_grpc;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use authlayer::test_util::TestIssuer;
use common::AUDIENCE;

/// `target/<profile>/examples/<name>`, built by `cargo test` with the tests.
fn example(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples").join(name)
}

struct Running {
    child: Child,
    addr: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts an example with `env` and waits for its `listening on …` line.
fn start(name: &str, env: &[(&str, &str)]) -> Running {
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
        .unwrap_or_else(|| panic!("{name} printed {line:?}"))
        .to_owned();
    Running { child, addr }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_example_protects_its_routes() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let orders = start("orders", &[("AUTH_ISSUER", server.issuer_url())]);
    let base = format!("http://{}", orders.addr);
    let http = reqwest::Client::new();

    let health: serde_json::Value = http
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["auth"]["ready"], true);
    assert_eq!(health["auth"]["issuers"][0]["issuer"], server.issuer_url());

    let res = http.get(format!("{base}/orders/1")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let read = issuer
        .token()
        .sub("alice")
        .audience(AUDIENCE)
        .scope("orders:read")
        .sign();
    let res = http
        .get(format!("{base}/orders/1"))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http
        .post(format!("{base}/orders"))
        .bearer_auth(&read)
        .json(&serde_json::json!({"item": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let me: serde_json::Value = http
        .get(format!("{base}/me"))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap()
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
    let res = reqwest::Client::new()
        .get(format!("{base}/orders/2"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let wrong = issuer
        .token()
        .audience(AUDIENCE)
        .scope("orders:read")
        .sign();
    let res = reqwest::Client::new()
        .get(format!("{base}/orders/2"))
        .bearer_auth(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[test]
fn orders_example_refuses_to_start_without_its_issuer() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(example("orders"))
        .env("AUTH_ISSUER", format!("http://127.0.0.1:{port}"))
        .env("PORT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
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
    let out = Command::new(example("orders"))
        .env("AUTH_ISSUER", "http://id.example.invalid")
        .env("PORT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
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
    use orders_grpc::pb::orders_client::OrdersClient;
    use orders_grpc::pb::{CreateOrderRequest, GetOrderRequest};

    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let grpc = start("orders_grpc", &[("AUTH_ISSUER", server.issuer_url())]);
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", grpc.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = OrdersClient::new(channel);
    let status = client
        .get_order(GetOrderRequest { id: 1 })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    let token = issuer
        .token()
        .sub("bob")
        .audience(AUDIENCE)
        .scope("orders:read")
        .sign();
    let mut req = tonic::Request::new(GetOrderRequest { id: 3 });
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    assert_eq!(
        client.get_order(req).await.unwrap().into_inner().owner,
        "bob"
    );

    let mut req = tonic::Request::new(CreateOrderRequest {
        item: "x".into(),
        quantity: 1,
    });
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    assert_eq!(
        client.create_order(req).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
}
