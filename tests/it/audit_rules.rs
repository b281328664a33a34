//! The audit record of a route guarded by several rules, over HTTP: one
//! record per request, naming what every rule that allowed it required.

use std::io::Write;
use std::sync::{Arc, Mutex};

use authlayer::audit::{AuditLog, AuditLogGuard};
use authlayer::test_util::TestIssuer;
use authlayer::{RequireRolesLayer, RequireScopesLayer, Verifier, VerifyLayer};
use axum::Router;
use axum::routing::get;
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::common::{http_get, orders_token, serve_axum};

/// What the audit writer wrote, read back by the test.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    /// The records written so far, once `guard` flushed them; then none.
    fn take(&self, guard: &AuditLogGuard) -> Vec<Value> {
        guard.flush().unwrap();
        assert_eq!(guard.dropped(), 0);
        let text = String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// `GET /orders` needs scope `orders:read` (inner rule) and role `buyer`
/// or `support` (outer rule, so it runs first).
async fn two_rule_app(issuer: &TestIssuer) -> std::net::SocketAddr {
    let verifier = Verifier::builder()
        .issuer(issuer.issuer())
        .jwks_json(issuer.jwks_json())
        .audience(crate::common::AUDIENCE)
        .build()
        .await
        .unwrap();
    let app = Router::new()
        .route(
            "/orders",
            get(|| async { "[]" })
                .route_layer(RequireScopesLayer::all(["orders:read"]))
                .route_layer(RequireRolesLayer::any(["buyer", "support"])),
        )
        .layer(VerifyLayer::new(verifier));
    serve_axum(app).await
}

#[tokio::test]
async fn allow_record_of_two_rules_names_the_scopes_and_roles_of_both() {
    let sink = Sink::default();
    let (recorder, guard) = AuditLog::writer(sink.clone()).start().unwrap();
    // This thread only: the server runs on this current-thread runtime.
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder));
    let issuer = TestIssuer::new("https://id.example");
    let addr = two_rule_app(&issuer).await;
    let url = format!("http://{addr}/orders");
    let http = reqwest::Client::new();
    // The audit callsites may have been met first by another test's thread
    // without a subscriber: hit them, recompute their interest, start afresh.
    assert_eq!(http_get(&http, &url, None).await.status(), 401);
    tracing::callsite::rebuild_interest_cache();
    sink.take(&guard);

    let buyer = orders_token(&issuer)
        .sub("alice")
        .scope("orders:read")
        .claim("roles", serde_json::json!(["buyer"]))
        .sign();
    assert_eq!(http_get(&http, &url, Some(&buyer)).await.status(), 200);
    let records = sink.take(&guard);
    assert_eq!(records.len(), 1, "{records:?}");
    let allowed = &records[0];
    assert_eq!(allowed["decision"], "allow", "{allowed}");
    assert_eq!(allowed["reason"], "granted", "{allowed}");
    assert_eq!(
        allowed["rule"], "scopes",
        "the last rule that ran: {allowed}"
    );
    assert_eq!(allowed["required_scopes"], "orders:read", "{allowed}");
    assert_eq!(allowed["required_roles"], "buyer support", "{allowed}");
    assert_eq!(allowed["sub"], "alice", "{allowed}");
    assert_eq!(allowed["status"], 200, "{allowed}");

    // The inner rule refuses: the record is its denial, naming only what it
    // required.
    let no_scope = orders_token(&issuer)
        .sub("bob")
        .claim("roles", serde_json::json!(["support"]))
        .sign();
    assert_eq!(http_get(&http, &url, Some(&no_scope)).await.status(), 403);
    let records = sink.take(&guard);
    assert_eq!(records.len(), 1, "{records:?}");
    let denied = &records[0];
    assert_eq!(denied["decision"], "deny", "{denied}");
    assert_eq!(denied["rule"], "scopes", "{denied}");
    assert_eq!(denied["required_scopes"], "orders:read", "{denied}");
    assert!(denied.get("required_roles").is_none(), "{denied}");
}
