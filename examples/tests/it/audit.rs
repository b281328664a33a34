//! The audit log and the metrics, end to end: the JSON-lines writer, one
//! record per request over HTTP and gRPC, the issuer's records, the
//! examples' `AUDIT_LOG` modes and their `GET /metrics`.

use std::io::Write;
use std::sync::{Arc, Mutex};

use authlayer::audit::{AuditLog, AuditLogGuard};
use authlayer::test_util::TestIssuer;
use reqwest::StatusCode;
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::common::{http_get, orders_token};
use crate::e2e::{
    World, config, exchange_as_orders_service, form, partner_issuer, partner_login,
    partner_upstream, token_of, world,
};
use crate::examples::start;

/// A sink the test reads back.
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

/// The audit log of this thread's events (servers included: the tests
/// here run on a current-thread runtime), written by the real writer.
struct Recorded {
    sink: Sink,
    guard: AuditLogGuard,
    _default: tracing::subscriber::DefaultGuard,
}

impl Recorded {
    fn install() -> Self {
        let sink = Sink::default();
        let (recorder, guard) = AuditLog::writer(sink.clone()).start().unwrap();
        let default =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder));
        Self {
            sink,
            guard,
            _default: default,
        }
    }

    /// Starts the log afresh once the audit callsites (the layers' and the
    /// issuer's) have been hit: another test's thread may have met them
    /// first, with no subscriber, and tracing caches that; recompute it
    /// with this subscriber.
    async fn warm_up(&self, w: &World) {
        assert_eq!(w.get_order(None).await.status(), 401);
        w.login("nobody", "nothing", None).await;
        tracing::callsite::rebuild_interest_cache();
        self.guard.flush().unwrap();
        self.sink.0.lock().unwrap().clear();
    }

    /// Every record so far (after the writer flushed), and the raw text.
    fn records(&self) -> (Vec<Value>, String) {
        self.guard.flush().unwrap();
        assert_eq!(self.guard.dropped(), 0);
        let text = String::from_utf8(self.sink.0.lock().unwrap().clone()).unwrap();
        let records = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        (records, text)
    }
}

/// Every record carries the schema version and a millisecond UTC timestamp.
fn assert_schema(record: &Value) {
    assert_eq!(record["schema_version"], 1, "{record}");
    let ts = record["ts"].as_str().unwrap_or_else(|| panic!("{record}"));
    assert!(
        ts.len() == "2026-12-01T21:13:12.345Z".len() && ts.ends_with('Z') && ts.contains('T'),
        "{ts}"
    );
    assert!(
        record["decision"] == "allow" || record["decision"] == "deny",
        "{record}"
    );
    assert!(
        record["reason"].is_string() && record["rule"].is_string(),
        "{record}"
    );
}

#[tokio::test]
async fn exactly_one_record_per_request_allowed_and_denied_over_http_and_grpc() {
    let log = Recorded::install();
    let w = world(config()).await;
    log.warm_up(&w).await;
    let token = token_of(&w.alice().await);
    let (status, body) = w
        .login("alice", "alice-password", Some("orders:read"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let read_only = token_of(&body);

    // HTTP: 3 allowed, 3 denied (no token, a forged token, a missing scope).
    assert_eq!(w.get_order(Some(&token)).await.status(), 200);
    assert_eq!(w.get_order(Some(&token)).await.status(), 200);
    assert_eq!(w.create_order(&token).await.status(), 201);
    assert_eq!(w.get_order(None).await.status(), 401);
    assert_eq!(w.get_order(Some("a.b.c")).await.status(), 401);
    assert_eq!(w.create_order(&read_only).await.status(), 403);
    // gRPC: 2 allowed, 2 denied.
    w.grpc_get(Some(&token)).await.unwrap();
    w.grpc_get(Some(&read_only)).await.unwrap();
    assert_eq!(
        w.grpc_get(None).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    assert_eq!(
        w.grpc_get(Some("a.b.c")).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );

    let (records, text) = log.records();
    let requests: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "request")
        .collect();
    for record in &requests {
        assert_schema(record);
    }
    let http: Vec<(&str, &str, u64)> = requests
        .iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/orders/") || r["path"] == "/orders")
        .map(|r| {
            (
                r["decision"].as_str().unwrap(),
                r["rule"].as_str().unwrap(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        http,
        [
            ("allow", "scopes", 200),
            ("allow", "scopes", 200),
            ("allow", "scopes", 201),
            ("deny", "verify", 401),
            ("deny", "verify", 401),
            ("deny", "scopes", 403),
        ],
        "{text}"
    );
    let grpc: Vec<&str> = requests
        .iter()
        .filter(|r| r["path"] == "/orders.v1.Orders/GetOrder")
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert_eq!(grpc, ["allow", "allow", "deny", "deny"], "{text}");
    assert_eq!(requests.len(), 10, "nothing else was recorded: {text}");

    let denied_scope = requests.iter().find(|r| r["status"] == 403).unwrap();
    assert_eq!(denied_scope["sub"], "alice");
    assert_eq!(denied_scope["required_scopes"], "orders:write");
    assert_eq!(denied_scope["reason"], "insufficient_scope");
    let allowed = requests.iter().find(|r| r["status"] == 201).unwrap();
    assert_eq!(allowed["iss"], w.iss);
    assert_eq!(allowed["method"], "POST");
    assert!(allowed["jti"].is_string());
    // SECURITY: never a token, or any part of one.
    let signature = token.rsplit('.').next().unwrap();
    assert!(!text.contains(signature) && !text.contains(&read_only));
}

#[tokio::test]
async fn request_ids_are_recorded_and_query_strings_are_not() {
    let log = Recorded::install();
    let w = world(config()).await;
    log.warm_up(&w).await;
    let token = token_of(&w.alice().await);
    let res = w
        .http
        .get(format!("{}/orders/7?secret=hunter2", w.orders))
        .bearer_auth(&token)
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (records, text) = log.records();
    let request = records.iter().find(|r| r["action"] == "request").unwrap();
    assert_eq!(request["request_id"], "req-42");
    assert_eq!(request["path"], "/orders/7");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn a_long_path_is_recorded_cut_with_a_marker_for_denied_and_allowed_requests() {
    let log = Recorded::install();
    let w = world(config()).await;
    log.warm_up(&w).await;
    let token = token_of(&w.alice().await);
    // 8 KiB of path: no token (denied, unauthenticated), then a valid one.
    let url = format!("{}/orders/{}", w.orders, "7".repeat(8 * 1024));
    let res = w.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = w.http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    let (records, _) = log.records();
    let paths: Vec<&str> = records
        .iter()
        .filter(|r| r["action"] == "request")
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 2, "{records:?}");
    for path in paths {
        assert!(path.len() <= 512 + 32, "{} bytes recorded", path.len());
        assert!(path.starts_with("/orders/777"), "{path}");
        assert!(path.ends_with("…[truncated]"), "{path}");
    }
}

#[tokio::test]
async fn a_long_extension_method_is_recorded_cut_with_a_marker() {
    let log = Recorded::install();
    let w = world(config()).await;
    log.warm_up(&w).await;
    // `http` admits extension methods of any length; no token: denied.
    let method = reqwest::Method::from_bytes("A".repeat(4096).as_bytes()).unwrap();
    let res = w
        .http
        .request(method, format!("{}/orders/7", w.orders))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let (records, _) = log.records();
    let record = records.iter().find(|r| r["action"] == "request").unwrap();
    let recorded = record["method"].as_str().unwrap();
    assert_eq!(recorded, format!("{}…[truncated]", "A".repeat(32)));
}

#[tokio::test]
async fn the_issuer_records_every_kind_of_decision_in_the_same_schema() {
    let log = Recorded::install();
    let partner = partner_issuer().await;
    let mut cfg = config();
    cfg.upstreams = vec![partner_upstream(partner.issuer())];
    let w = world(cfg).await;
    log.warm_up(&w).await;

    let first = w.alice().await;
    let wrong_password = "Not-Alices-Password-7";
    let (status, _) = w.login("alice", wrong_password, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let r1 = first["refresh_token"].as_str().unwrap();
    let (status, second) = w.post("/refresh", &[("refresh_token", r1)], None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = w.post("/refresh", &[("refresh_token", r1)], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "reuse of a rotated token");
    let (status, body) = w
        .client_token("orders-service", "orders-secret", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let service_token = token_of(&body);
    let upstream = partner_login(partner.issuer(), "urn:acme-issuer").await;
    let (status, body) = exchange_as_orders_service(&w, &upstream).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(w.introspect(&service_token).await["active"], true);
    let (status, _) = w
        .post(
            "/revoke",
            &[("token", &service_token)],
            Some(("orders-service", "orders-secret")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = w
        .post("/admin/rotate", &[], Some(("ops", "ops-secret")))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let (records, text) = log.records();
    let ours: Vec<&Value> = records
        .iter()
        .filter(|r| r["iss"] == w.iss && r["action"] != "request")
        .collect();
    for record in &ours {
        assert_schema(record);
        assert_eq!(record["method"], "POST");
    }
    let summary: Vec<(&str, &str, &str, &str)> = ours
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["decision"].as_str().unwrap(),
                r["reason"].as_str().unwrap(),
                r["sub"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("login", "allow", "granted", "alice"),
            ("login", "deny", "bad_password", "alice"),
            ("refresh", "allow", "granted", "alice"),
            ("refresh_reuse", "deny", "family_revoked", "alice"),
            ("client_credentials", "allow", "granted", "orders-service"),
            ("token_exchange", "allow", "granted", "partner:carol"),
            ("introspection", "allow", "active", "orders-service"),
            (
                "revocation",
                "allow",
                "access_token_revoked",
                "orders-service"
            ),
            ("key_rotation", "allow", "published", "-"),
        ],
        "{text}"
    );
    assert_eq!(ours[0]["status"], 200);
    assert_eq!(ours[1]["status"], 401);
    assert_eq!(ours[6]["client_id"], "orders-service");
    assert_eq!(ours[8]["client_id"], "ops");
    assert_eq!(ours[8]["path"], "/admin/rotate");
    // SECURITY: never a password, a secret or a token.
    for secret in [
        wrong_password,
        "alice-password",
        "orders-secret",
        r1,
        second["refresh_token"].as_str().unwrap(),
        &service_token,
        &upstream,
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[test]
fn the_default_queue_loses_no_record_of_a_flood() {
    let path = std::env::temp_dir().join(format!("authlayer-flood-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (recorder, guard) = AuditLog::file(&path).start().unwrap();
    let subscriber = Arc::new(tracing_subscriber::registry().with(recorder.clone()));
    // Four threads, as fast as they can: 60,000 records.
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let subscriber = Arc::clone(&subscriber);
            std::thread::spawn(move || {
                tracing::subscriber::with_default(subscriber, || {
                    for n in 0..15_000u64 {
                        tracing::info!(target: "authlayer::audit", schema_version = 1u64, t, n, decision = "allow");
                    }
                });
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    drop(guard);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(recorder.dropped(), 0);
    assert_eq!(text.lines().count(), 60_000);
    assert!(text.lines().all(|l| l.ends_with("\"decision\":\"allow\"}")));
}

/// The sum of the samples of `name` whose labels contain `label` (the
/// counts, gauges and counters read here are whole numbers).
fn metric(text: &str, name: &str, label: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| l.contains(label))
        .map(|l| {
            let value = l.rsplit(' ').next().unwrap();
            value
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("not a whole number: {l}"))
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_metrics_count_decisions_and_key_set_health() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let orders = start(
        "orders",
        &[("AUTH_ISSUER", server.issuer_url()), ("AUDIT_LOG", "off")],
    );
    let base = format!("http://{}", orders.addr);
    let http = reqwest::Client::new();
    let scrape = || async {
        let res = http_get(&http, &format!("{base}/metrics"), None).await;
        assert_eq!(res.status(), 200);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        res.text().await.unwrap()
    };
    let before = scrape().await;
    let token = orders_token(&issuer)
        .sub("alice")
        .scope("orders:read")
        .sign();
    for _ in 0..3 {
        let res = http_get(&http, &format!("{base}/orders/1"), Some(&token)).await;
        assert_eq!(res.status(), 200);
    }
    let res = http_get(&http, &format!("{base}/orders/1"), None).await;
    assert_eq!(res.status(), 401);
    let after = scrape().await;

    let moved = |label| {
        metric(&after, "authlayer_decisions_total", label)
            - metric(&before, "authlayer_decisions_total", label)
    };
    assert_eq!(moved("decision=\"allow\""), 3, "{after}");
    assert_eq!(moved("decision=\"deny\""), 1, "{after}");
    assert_eq!(
        metric(
            &after,
            "authlayer_decisions_total",
            "reason=\"missing_token\""
        ),
        1,
        "{after}"
    );
    let issuer_label = format!("issuer=\"{}\"", server.issuer_url());
    assert_eq!(
        metric(&after, "authlayer_decisions_total", &issuer_label),
        3
    );
    // One first sight of the token, then the cache.
    assert_eq!(
        metric(
            &after,
            "authlayer_verify_duration_seconds_count",
            "token=\"first_seen\""
        ),
        1,
        "{after}"
    );
    assert_eq!(
        metric(
            &after,
            "authlayer_verify_duration_seconds_count",
            "token=\"cached\""
        ),
        2
    );
    assert_eq!(metric(&after, "authlayer_token_cache_hits_total", ""), 2);
    assert_eq!(metric(&after, "authlayer_jwks_keys", &issuer_label), 3);
    assert_eq!(metric(&after, "authlayer_jwks_stale", &issuer_label), 0);
    assert!(after.contains("authlayer_jwks_age_seconds{"), "{after}");
    assert!(after.contains("authlayer_jwks_next_refresh_seconds{"));
    assert!(
        metric(
            &after,
            "authlayer_jwks_fetches_total",
            "outcome=\"updated\""
        ) >= 1,
        "{after}"
    );
    // Bounded labels: no subject, no token, no raw path.
    assert!(!after.contains("alice") && !after.contains("/orders/1"));
    assert!(!after.contains(&token[..20]));
    orders.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_writes_audit_json_lines_to_stdout_after_its_listening_line() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    // `start` checks that `listening on …` is the first line of stdout.
    let orders = start("orders", &[("AUTH_ISSUER", server.issuer_url())]);
    let base = format!("http://{}", orders.addr);
    let http = reqwest::Client::new();
    let token = orders_token(&issuer).sub("bob").scope("orders:read").sign();
    let res = http_get(&http, &format!("{base}/orders/1"), Some(&token)).await;
    assert_eq!(res.status(), 200);
    let res = http_get(&http, &format!("{base}/orders/1"), None).await;
    assert_eq!(res.status(), 401);

    let allowed: Value = serde_json::from_str(&orders.next_line().unwrap()).unwrap();
    let denied: Value = serde_json::from_str(&orders.next_line().unwrap()).unwrap();
    assert_schema(&allowed);
    assert_eq!(
        (&allowed["decision"], &allowed["sub"], &allowed["status"]),
        (&"allow".into(), &"bob".into(), &200.into())
    );
    assert_eq!(
        (&denied["decision"], &denied["reason"], &denied["status"]),
        (&"deny".into(), &"missing_token".into(), &401.into())
    );
    // Health checks are no decisions; nothing else reaches stdout.
    let res = http_get(&http, &format!("{base}/health"), None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(orders.terminate(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_appends_audit_records_to_the_file_named_by_audit_log() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let path = std::env::temp_dir().join(format!("authlayer-orders-{}.jsonl", std::process::id()));
    std::fs::write(&path, "{\"earlier\":true}\n").unwrap();
    let orders = start(
        "orders",
        &[
            ("AUTH_ISSUER", server.issuer_url()),
            ("AUDIT_LOG", path.to_str().unwrap()),
            ("RUST_LOG", "info"),
        ],
    );
    let base = format!("http://{}", orders.addr);
    let http = reqwest::Client::new();
    let token = orders_token(&issuer)
        .sub("carol")
        .scope("orders:read")
        .sign();
    for expected in [200, 200, 401] {
        let token = (expected == 200).then_some(token.as_str());
        let res = http_get(&http, &format!("{base}/orders/1"), token).await;
        assert_eq!(res.status(), expected);
    }
    // A graceful stop flushes the file; stdout has only `listening on`.
    assert_eq!(orders.terminate(), Vec::<String>::new());
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], "{\"earlier\":true}");
    let decisions: Vec<String> = lines[1..]
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["decision"].to_string())
        .collect();
    assert_eq!(decisions, ["\"allow\"", "\"allow\"", "\"deny\""]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_with_audit_log_off_writes_no_records() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let orders = start(
        "orders",
        &[("AUTH_ISSUER", server.issuer_url()), ("AUDIT_LOG", "off")],
    );
    let base = format!("http://{}", orders.addr);
    let http = reqwest::Client::new();
    let res = http_get(&http, &format!("{base}/orders/1"), None).await;
    assert_eq!(res.status(), 401);
    assert_eq!(orders.terminate(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issuer_binary_writes_its_audit_log_and_serves_metrics() {
    let issuer = start("issuer", &[("ROTATE_EVERY", "off")]);
    let base = format!("http://{}", issuer.addr);
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("username", "demo"),
            ("password", "wrong-password-1"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let record: Value = serde_json::from_str(&issuer.next_line().unwrap()).unwrap();
    assert_schema(&record);
    assert_eq!(
        (&record["action"], &record["reason"], &record["sub"]),
        (&"login".into(), &"bad_password".into(), &"demo".into())
    );
    let metrics = http_get(&http, &format!("{base}/metrics"), None)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(
            &metrics,
            "issuer_audit_records_total",
            "reason=\"bad_password\""
        ),
        1,
        "{metrics}"
    );
    let rest = issuer.terminate();
    assert!(rest.iter().all(|l| !l.contains("wrong-password-1")));
}

#[test]
fn the_demo_ends_with_a_per_subject_summary_from_its_one_audit_log() {
    let path = std::env::temp_dir().join(format!("authlayer-demo-it-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let out = std::process::Command::new(crate::examples::example("demo"))
        .arg("--once")
        .env("AUDIT_LOG", &path)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let records = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    // One log for the three services: the issuer's and both order services'.
    for needle in [
        "\"action\":\"login\"",
        "\"path\":\"/orders/7\"",
        "\"path\":\"/orders.v1.Orders/GetOrder\"",
    ] {
        assert!(records.contains(needle), "{needle} missing from {records}");
    }
    let summary: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("summary: "))
        .collect();
    assert!(
        summary.contains(
            &"(no token) deny GET /orders/7 ×2, POST /orders.v1.Orders/GetOrder, refresh, GET /me ×2"
        ),
        "{stdout}"
    );
    assert!(
        summary.contains(
            &"demo deny POST /orders, POST /orders.v1.Orders/CreateOrder, login, refresh_reuse"
        ),
        "{stdout}"
    );
    assert!(
        summary
            .iter()
            .any(|l| l.starts_with("orders-service allow client_credentials")),
        "{stdout}"
    );
    assert!(stdout.contains("Every outcome was as expected."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_at_the_default_log_level_writes_no_human_line_per_request() {
    use std::io::{BufRead, BufReader};
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let mut child = std::process::Command::new(crate::examples::example("orders"))
        .env_remove("RUST_LOG")
        .env("AUTH_ISSUER", server.issuer_url())
        .env("AUDIT_LOG", "off")
        .env("PORT", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let http = reqwest::Client::new();
    let token = orders_token(&issuer).scope("orders:read").sign();
    for token in [Some(token.as_str()), None, Some("a.b.c")] {
        http_get(&http, &format!("http://{addr}/orders/1"), token).await;
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("/orders/1") && !stderr.contains("authlayer::audit"),
        "{stderr}"
    );
    // The default level is `info`: start-up and shutdown may say so, but
    // three requests add nothing.
    assert!(stderr.lines().count() < 3, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_metrics_count_dpop_proof_failures_replays_and_nonce_challenges() {
    use crate::common::DpopClient;

    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let orders = start(
        "orders",
        &[
            ("AUTH_ISSUER", server.issuer_url()),
            ("AUDIT_LOG", "off"),
            ("AUTH_DPOP_NONCE", "1"),
        ],
    );
    let base = format!("http://{}", orders.addr);
    let url = format!("{base}/orders/1");
    let http = reqwest::Client::new();
    let client = DpopClient::new();
    let token = orders_token(&issuer)
        .scope("orders:read")
        .claim("cnf", serde_json::json!({"jkt": client.jkt()}))
        .sign();
    let send = |proof: String| {
        http.get(&url)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .send()
    };
    let res = send(client.proof("GET", &url, &token)).await.unwrap();
    assert_eq!(res.status(), 401);
    let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let proof = client.proof_with("GET", &url, &token, |_, c| c["nonce"] = nonce.into());
    assert_eq!(send(proof.clone()).await.unwrap().status(), 200);
    assert_eq!(send(proof).await.unwrap().status(), 401);

    let text = http_get(&http, &format!("{base}/metrics"), None)
        .await
        .text()
        .await
        .unwrap();
    let failures = "authlayer_dpop_proof_failures_total";
    assert_eq!(
        metric(&text, failures, "reason=\"nonce_missing\""),
        1,
        "{text}"
    );
    assert_eq!(metric(&text, failures, "reason=\"replayed\""), 1, "{text}");
    assert_eq!(
        metric(&text, "authlayer_dpop_replays_total", ""),
        1,
        "{text}"
    );
    assert_eq!(
        metric(&text, "authlayer_dpop_nonce_challenges_total", ""),
        1,
        "{text}"
    );
}
