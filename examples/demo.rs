//! The whole system in one command: the issuer, the axum `orders` service
//! and the gRPC `orders` service, then a scripted tour of what authlayer
//! allows and refuses.
//!
//! ```text
//! cargo run --example demo            # tour, then keep serving until Ctrl-C
//! cargo run --example demo -- --once  # tour only; exit 0 iff all went as expected
//! ```
//!
//! Ports: issuer 4000, HTTP orders 3000, gRPC orders 50051 (override with
//! `ISSUER_PORT`, `ORDERS_PORT`, `ORDERS_GRPC_PORT`; `--once` uses free
//! ports unless these are set). Three gateways (`examples/gateway.rs`), one
//! per mode: `forward` on 8080 and `exchange` on 8081 in front of HTTP
//! orders, `headers` on 8082 in front of a small backend that does not
//! verify tokens and shows the identity headers it got (override with
//! `GATEWAY_PORT`, `GATEWAY_EXCHANGE_PORT`, `GATEWAY_HEADERS_PORT`). The issuer reads the same environment as
//! `cargo run --example issuer` (`USERS_FILE`, `SIGNING_ALG`, …); without
//! files it seeds the demo user and client that the tour uses.
//!
//! The three services write one combined audit log (JSON lines, the schema
//! of `authlayer::audit`): to `AUDIT_LOG` if set (appended), none with
//! `AUDIT_LOG=off`, else to a fresh file in the temporary directory. The
//! tour ends with a per-subject summary drawn from that log: who was
//! allowed and denied what. The human log goes to stderr (`RUST_LOG`,
//! default `warn`).

#[path = "gateway.rs"]
#[allow(dead_code)] // its `main`, `serve` and env parsing are unused here
mod gateway;
#[path = "issuer/main.rs"]
#[allow(dead_code)] // the issuer's own `main` and CLI helpers are unused here
mod issuer;
#[path = "orders.rs"]
#[allow(dead_code)] // its `main` and `serve` are unused here
mod orders;
#[path = "orders_grpc.rs"]
#[allow(dead_code)] // its `main` and `serve` are unused here
mod orders_grpc;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use authlayer::Verifier;
use orders_grpc::pb::orders_client::OrdersClient;
use orders_grpc::pb::{CreateOrderRequest, GetOrderRequest};
use serde_json::Value;
use tonic::Code;
use tonic::transport::Channel;

use issuer::config::{DEMO_CLIENT, DEMO_USER, GATEWAY_AUDIENCE, GATEWAY_CLIENT};
use issuer::observability::{AuditDestination, init_logging};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    let audit = match AuditTrail::start() {
        Ok(audit) => audit,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let once = std::env::args().skip(1).any(|a| a == "--once");
    match run(once, &audit).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn port(name: &str, interactive_default: u16, once: bool) -> Result<u16, BoxError> {
    match std::env::var(name) {
        Ok(p) if !p.is_empty() => p
            .parse()
            .map_err(|_| format!("{name}={p:?} is not a port number").into()),
        _ if once => Ok(0),
        _ => Ok(interactive_default),
    }
}

/// Everything that runs, and where.
struct System {
    // Held so the issuer keeps running: dropping it stops the server.
    _issuer: issuer::server::Running,
    iss: String,
    orders: String,
    grpc_addr: SocketAddr,
}

async fn run(once: bool, audit: &AuditTrail) -> Result<bool, BoxError> {
    let system = start(once).await?;
    println!();
    println!("  issuer        {}", system.iss);
    println!("  orders HTTP   {}", system.orders);
    println!("  orders gRPC   {} (orders.v1.Orders)", system.grpc_addr);
    let gateways = start_gateways(&system, once).await?;
    audit.print_location();
    println!();

    let ok = tour(&system).await?;
    let ok = gateway_tour(&system, &gateways).await? && ok;
    audit.print_summary()?;
    println!();
    if ok {
        println!("  Every outcome was as expected.");
    } else {
        println!("  SOME OUTCOMES WERE NOT AS EXPECTED (marked ✘ above).");
    }
    if !once {
        print_curl(&system);
        print_gateway_curl(&gateways);
        println!("\n  Serving until Ctrl-C.");
        tokio::signal::ctrl_c().await?;
    }
    // Returning ends the runtime and with it every server: no need to wait
    // for idle keep-alive connections to drain.
    Ok(ok)
}

async fn start(once: bool) -> Result<System, BoxError> {
    let mut config =
        issuer::config::Config::from_settings(&issuer::config::Settings::from_args([])?)?;
    config.port = port("ISSUER_PORT", 4000, once)?;
    if std::env::var("ISSUER_URL").is_err() {
        // Derived from the bound address, so port 0 works too.
        config.issuer_url = None;
    }
    issuer::announce_seeds(&config);
    let issuer = issuer::server::start(config)
        .await
        .map_err(|e| format!("issuer: {e}"))?;
    let iss = issuer.issuer().to_owned();

    // Both services trust only this issuer, found by OIDC discovery.
    let verifier = Verifier::builder()
        .issuer(iss.clone())
        .audience("urn:orders")
        .build()
        .await?;

    let http = tokio::net::TcpListener::bind(("127.0.0.1", port("ORDERS_PORT", 3000, once)?))
        .await
        .map_err(|e| format!("orders HTTP: {e}"))?;
    let http_addr = http.local_addr()?;
    tokio::spawn(axum::serve(http, orders::app(verifier.clone())).into_future());

    let grpc = tokio::net::TcpListener::bind(("127.0.0.1", port("ORDERS_GRPC_PORT", 50051, once)?))
        .await
        .map_err(|e| format!("orders gRPC: {e}"))?;
    let grpc_addr = grpc.local_addr()?;
    tokio::spawn(
        orders_grpc::router(verifier)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(grpc)),
    );
    Ok(System {
        _issuer: issuer,
        iss,
        orders: format!("http://{http_addr}"),
        grpc_addr,
    })
}

/// Prints one outcome; returns whether it was the expected one.
fn report(what: &str, got: &str, expected: &str, ok: bool) -> bool {
    let mark = if ok { "✔" } else { "✘" };
    let mut line = format!("  {mark} {what:<52} {got}");
    if !ok {
        let _ = write!(line, "   (expected {expected})");
    }
    println!("{line}");
    ok
}

struct Tour {
    http: reqwest::Client,
    iss: String,
    orders: String,
    grpc: OrdersClient<Channel>,
    ok: bool,
}

impl Tour {
    async fn post_form(
        &self,
        path: &str,
        pairs: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<(u16, Value), BoxError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let mut req = self
            .http
            .post(format!("{}{path}", self.iss))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let text = res.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    fn check_status(&mut self, what: &str, got: u16, expected: u16, detail: &str) {
        let shown = if detail.is_empty() {
            got.to_string()
        } else {
            format!("{got} {detail}")
        };
        self.ok &= report(what, &shown, &expected.to_string(), got == expected);
    }

    async fn login(&mut self, what: &str, scope: Option<&str>) -> Result<Option<Value>, BoxError> {
        let mut pairs = vec![("username", DEMO_USER.0), ("password", DEMO_USER.1)];
        if let Some(scope) = scope {
            pairs.push(("scope", scope));
        }
        let (status, body) = self.post_form("/login", &pairs, None).await?;
        let scope = body["scope"].as_str().unwrap_or_default().to_owned();
        self.check_status(what, status, 200, &format!("scope \"{scope}\""));
        Ok((status == 200).then_some(body))
    }

    async fn http(
        &mut self,
        what: &str,
        write: bool,
        token: Option<&str>,
        expected: u16,
    ) -> Result<(), BoxError> {
        let mut req = if write {
            self.http
                .post(format!("{}/orders", self.orders))
                .json(&serde_json::json!({"item": "widget", "quantity": 2}))
        } else {
            self.http.get(format!("{}/orders/7", self.orders))
        };
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let detail = match res.headers().get("www-authenticate") {
            Some(c) if status != 200 && status != 201 => {
                let c = c.to_str().unwrap_or_default();
                if c.contains("insufficient_scope") {
                    "insufficient_scope".to_owned()
                } else if c.contains("invalid_token") {
                    "invalid_token".to_owned()
                } else {
                    "no token".to_owned()
                }
            }
            _ => {
                let body: Value = res.json().await.unwrap_or(Value::Null);
                body["owner"]
                    .as_str()
                    .map(|o| format!("owner {o}"))
                    .unwrap_or_default()
            }
        };
        self.check_status(what, status, expected, &detail);
        Ok(())
    }

    async fn grpc(
        &mut self,
        what: &str,
        write: bool,
        token: Option<&str>,
        expected: tonic::Code,
    ) -> Result<(), BoxError> {
        let bearer = token.map(|t| format!("Bearer {t}").parse()).transpose()?;
        let mut client = self.grpc.clone();
        let result = if write {
            let mut req = tonic::Request::new(CreateOrderRequest {
                item: "widget".into(),
                quantity: 2,
            });
            if let Some(b) = bearer {
                req.metadata_mut().insert("authorization", b);
            }
            client.create_order(req).await
        } else {
            let mut req = tonic::Request::new(GetOrderRequest { id: 7 });
            if let Some(b) = bearer {
                req.metadata_mut().insert("authorization", b);
            }
            client.get_order(req).await
        };
        let (code, detail) = match result {
            Ok(res) => (tonic::Code::Ok, format!(" owner {}", res.get_ref().owner)),
            Err(status) => (status.code(), String::new()),
        };
        self.ok &= report(
            what,
            &format!("{code:?}{detail}"),
            &format!("{expected:?}"),
            code == expected,
        );
        Ok(())
    }
}

/// The scripted part: every call and its expected outcome.
async fn tour(system: &System) -> Result<bool, BoxError> {
    let channel = Channel::from_shared(format!("http://{}", system.grpc_addr))?
        .connect()
        .await?;
    let mut t = Tour {
        http: reqwest::Client::new(),
        iss: system.iss.clone(),
        orders: system.orders.clone(),
        grpc: OrdersClient::new(channel),
        ok: true,
    };
    let Some(refresh) = user_calls(&mut t).await? else {
        return Ok(false);
    };
    too_few_scopes(&mut t).await?;
    let service_token = service_to_service(&mut t).await?;
    refresh_rotation(&mut t, &refresh).await?;
    introspection(&mut t, &service_token).await?;
    Ok(t.ok)
}

/// Returns the user's refresh token.
async fn user_calls(t: &mut Tour) -> Result<Option<String>, BoxError> {
    println!("  A user logs in and calls both services");
    let Some(login) = t.login("POST /login demo / demo-password", None).await? else {
        println!("    (the demo user is missing: is USERS_FILE set?)");
        return Ok(None);
    };
    let token = login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let refresh = login["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    t.http("GET  /orders/7 without a token", false, None, 401)
        .await?;
    t.http("GET  /orders/7 with the token", false, Some(&token), 200)
        .await?;
    t.http("POST /orders with the token", true, Some(&token), 201)
        .await?;
    t.grpc(
        "gRPC GetOrder without a token",
        false,
        None,
        Code::Unauthenticated,
    )
    .await?;
    t.grpc(
        "gRPC GetOrder with the token",
        false,
        Some(&token),
        Code::Ok,
    )
    .await?;
    t.http(
        "GET  /orders/7 with a tampered token",
        false,
        Some(&tamper(&token)),
        401,
    )
    .await?;

    Ok(Some(refresh))
}

async fn too_few_scopes(t: &mut Tour) -> Result<(), BoxError> {
    println!("\n  Too few scopes");
    if let Some(read_only) = t
        .login("POST /login with scope=orders:read", Some("orders:read"))
        .await?
    {
        let read_only = read_only["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        t.http(
            "GET  /orders/7 with the read-only token",
            false,
            Some(&read_only),
            200,
        )
        .await?;
        t.http(
            "POST /orders with the read-only token",
            true,
            Some(&read_only),
            403,
        )
        .await?;
        t.grpc(
            "gRPC CreateOrder with the read-only token",
            true,
            Some(&read_only),
            Code::PermissionDenied,
        )
        .await?;
    }
    let (status, _) = t
        .post_form(
            "/login",
            &[("username", DEMO_USER.0), ("password", "wrong")],
            None,
        )
        .await?;
    t.check_status("POST /login with a wrong password", status, 401, "");

    Ok(())
}

/// Returns the service's token.
async fn service_to_service(t: &mut Tour) -> Result<String, BoxError> {
    println!("\n  A service calls another service (client credentials)");
    let (status, body) = t
        .post_form(
            "/token",
            &[("grant_type", "client_credentials")],
            Some(DEMO_CLIENT),
        )
        .await?;
    t.check_status(
        "POST /token client_credentials (orders-service)",
        status,
        200,
        "",
    );
    let service_token = body["access_token"].as_str().unwrap_or_default().to_owned();
    t.grpc(
        "gRPC GetOrder with the service token",
        false,
        Some(&service_token),
        Code::Ok,
    )
    .await?;

    Ok(service_token)
}

async fn refresh_rotation(t: &mut Tour, refresh: &str) -> Result<(), BoxError> {
    println!("\n  Refresh-token rotation and reuse detection");
    let (status, body) = t
        .post_form("/refresh", &[("refresh_token", refresh)], None)
        .await?;
    t.check_status("POST /refresh", status, 200, "new refresh token");
    let rotated = body["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (status, body) = t
        .post_form("/refresh", &[("refresh_token", refresh)], None)
        .await?;
    t.check_status(
        "POST /refresh with the old one again",
        status,
        400,
        body["error"].as_str().unwrap_or_default(),
    );
    let (status, body) = t
        .post_form("/refresh", &[("refresh_token", &rotated)], None)
        .await?;
    t.check_status(
        "POST /refresh with the newest (family revoked)",
        status,
        400,
        body["error"].as_str().unwrap_or_default(),
    );

    Ok(())
}

async fn introspection(t: &mut Tour, service_token: &str) -> Result<(), BoxError> {
    println!("\n  Introspection and revocation");
    let active = |body: &Value| format!("active: {}", body["active"]);
    let (status, body) = t
        .post_form(
            "/introspect",
            &[("token", service_token)],
            Some(DEMO_CLIENT),
        )
        .await?;
    t.ok &= report(
        "POST /introspect the service token",
        &active(&body),
        "active: true",
        status == 200 && body["active"] == true,
    );
    let (status, _) = t
        .post_form("/revoke", &[("token", service_token)], Some(DEMO_CLIENT))
        .await?;
    t.check_status("POST /revoke the service token", status, 200, "");
    let (status, body) = t
        .post_form(
            "/introspect",
            &[("token", service_token)],
            Some(DEMO_CLIENT),
        )
        .await?;
    t.ok &= report(
        "POST /introspect it again",
        &active(&body),
        "active: false",
        status == 200 && body["active"] == false,
    );
    Ok(())
}

/// The gateways, one per mode, and the backend behind the `headers` one.
struct Gateways {
    forward: String,
    exchange: String,
    headers: String,
}

/// A backend that does not verify tokens (a non-Rust service behind a
/// gateway): it answers with the identity headers it received.
fn legacy_backend() -> axum::Router {
    axum::Router::new().fallback(|headers: axum::http::HeaderMap| async move {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        axum::Json(serde_json::json!({
            "x-auth-sub": get("x-auth-sub"),
            "x-auth-tenant": get("x-auth-tenant"),
            "x-auth-scopes": get("x-auth-scopes"),
            "x-auth-roles": get("x-auth-roles"),
            "authorization": get("authorization").is_some(),
        }))
    })
}

async fn serve_app(app: axum::Router, port: u16, what: &str) -> Result<String, BoxError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    let addr = listener.local_addr()?;
    tokio::spawn(axum::serve(listener, app).into_future());
    Ok(format!("http://{addr}"))
}

async fn start_gateways(system: &System, once: bool) -> Result<Gateways, BoxError> {
    let verifier = |audience: &str| {
        Verifier::builder()
            .issuer(system.iss.clone())
            .audience(audience)
            .build()
    };
    let legacy = serve_app(legacy_backend(), 0, "legacy backend").await?;
    let forward = gateway::app(
        verifier("urn:orders").await?,
        &system.orders,
        gateway::Mode::Forward,
    );
    let exchange = authlayer::outbound::TokenExchange::builder(
        format!("{}/token", system.iss),
        GATEWAY_CLIENT.0,
        GATEWAY_CLIENT.1,
    )
    .build()?;
    let exchange = gateway::app(
        verifier(GATEWAY_AUDIENCE).await?,
        &system.orders,
        gateway::Mode::Exchange {
            exchange,
            audience: "urn:orders".into(),
        },
    );
    let headers = gateway::app(
        verifier("urn:orders").await?,
        &legacy,
        gateway::Mode::Headers,
    );
    let gateways = Gateways {
        forward: serve_app(
            forward,
            port("GATEWAY_PORT", 8080, once)?,
            "gateway (forward)",
        )
        .await?,
        exchange: serve_app(
            exchange,
            port("GATEWAY_EXCHANGE_PORT", 8081, once)?,
            "gateway (exchange)",
        )
        .await?,
        headers: serve_app(
            headers,
            port("GATEWAY_HEADERS_PORT", 8082, once)?,
            "gateway (headers)",
        )
        .await?,
    };
    println!(
        "  gateway       {} (forward → orders HTTP)",
        gateways.forward
    );
    println!(
        "  gateway       {} (exchange → orders HTTP)",
        gateways.exchange
    );
    println!(
        "  gateway       {} (headers → {legacy}, no token check there)",
        gateways.headers
    );
    Ok(gateways)
}

/// Calls through each gateway and checks what the service behind it saw.
async fn gateway_tour(system: &System, gateways: &Gateways) -> Result<bool, BoxError> {
    println!("\n  A gateway verifies once at the edge and passes the identity on");
    let http = reqwest::Client::new();
    let mut ok = true;
    let login = |audience: Option<&'static str>| {
        let http = http.clone();
        let iss = system.iss.clone();
        async move {
            let mut pairs = vec![("username", DEMO_USER.0), ("password", DEMO_USER.1)];
            if let Some(audience) = audience {
                pairs.push(("audience", audience));
            }
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            let res: Value = http
                .post(format!("{iss}/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await?
                .json()
                .await?;
            Ok::<_, BoxError>(res["access_token"].as_str().unwrap_or_default().to_owned())
        }
    };
    let get = |url: String, token: Option<String>| {
        let http = http.clone();
        async move {
            let mut req = http.get(url).header("x-auth-sub", "admin");
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            let res = req.send().await?;
            let status = res.status().as_u16();
            Ok::<_, BoxError>((status, res.json::<Value>().await.unwrap_or(Value::Null)))
        }
    };
    let saw = |body: &Value| {
        format!(
            "orders saw sub {}, aud {}, client {}",
            body["sub"].as_str().unwrap_or("-"),
            body["aud"][0].as_str().unwrap_or("-"),
            body["client_id"].as_str().unwrap_or("-")
        )
    };

    let token = login(None).await?;
    let (status, body) = get(format!("{}/me", gateways.forward), Some(token.clone())).await?;
    ok &= report(
        "forward:  GET /me through the gateway",
        &format!("{status} {}", saw(&body)),
        "200, the caller's own token",
        status == 200 && body["sub"] == DEMO_USER.0 && body["client_id"] == "login",
    );
    let (status, _) = get(format!("{}/me", gateways.forward), None).await?;
    ok &= report(
        "forward:  GET /me without a token",
        &status.to_string(),
        "401 at the edge",
        status == 401,
    );

    let gateway_token = login(Some(GATEWAY_AUDIENCE)).await?;
    let (status, _) = get(format!("{}/me", system.orders), Some(gateway_token.clone())).await?;
    ok &= report(
        "exchange: a urn:gateway token, straight to orders",
        &status.to_string(),
        "401",
        status == 401,
    );
    let (status, body) = get(format!("{}/me", gateways.exchange), Some(gateway_token)).await?;
    ok &= report(
        "exchange: GET /me through the gateway",
        &format!("{status} {}", saw(&body)),
        "200, a token for urn:orders issued to the gateway",
        status == 200 && body["aud"][0] == "urn:orders" && body["client_id"] == GATEWAY_CLIENT.0,
    );

    let (status, body) = get(format!("{}/me", gateways.headers), Some(token)).await?;
    ok &= report(
        "headers:  GET /me, spoofing x-auth-sub: admin",
        &format!(
            "{status} backend saw x-auth-sub {}, token {}",
            body["x-auth-sub"].as_str().unwrap_or("-"),
            if body["authorization"] == true {
                "yes"
            } else {
                "no"
            }
        ),
        "200, x-auth-sub demo, no token",
        status == 200 && body["x-auth-sub"] == DEMO_USER.0 && body["authorization"] == false,
    );
    Ok(ok)
}

fn print_gateway_curl(gateways: &Gateways) {
    println!(
        "  curl -s {}/me -H \"Authorization: Bearer $TOKEN\"            # gateway, forward mode",
        gateways.forward
    );
    println!(
        "  curl -s {}/me -H \"Authorization: Bearer $TOKEN\"            # gateway, headers mode",
        gateways.headers
    );
    println!(
        "  # exchange mode wants a token for {GATEWAY_AUDIENCE}: log in with -d audience={GATEWAY_AUDIENCE}, then curl {}/me",
        gateways.exchange
    );
}

/// The demo's one audit log: every service's records, and where they are.
struct AuditTrail {
    /// The file, and its length before this run: the summary reads only
    /// this run's records.
    file: Option<(PathBuf, u64)>,
    guard: Option<authlayer::audit::AuditLogGuard>,
}

impl AuditTrail {
    /// Installs the logging: the audit log at `AUDIT_LOG`, `off`, or (unset)
    /// a fresh file in the temporary directory; the human log on stderr.
    fn start() -> Result<Self, String> {
        let destination = match AuditDestination::from_env() {
            AuditDestination::Stdout => AuditDestination::File(
                std::env::temp_dir()
                    .join(format!("authlayer-demo-audit-{}.jsonl", std::process::id())),
            ),
            other => other,
        };
        let file = match &destination {
            AuditDestination::File(path) => {
                let start = std::fs::metadata(path).map_or(0, |m| m.len());
                Some((path.clone(), start))
            }
            _ => None,
        };
        let guard = init_logging(&destination, "warn")?;
        Ok(Self { file, guard })
    }

    fn print_location(&self) {
        match &self.file {
            Some((path, _)) => println!("  audit log     {}", path.display()),
            None => println!("  audit log     off (AUDIT_LOG=off)"),
        }
    }

    /// This run's records, once the writer has written them.
    fn records(&self) -> Result<Option<Vec<Value>>, BoxError> {
        let (Some((path, start)), Some(guard)) = (&self.file, &self.guard) else {
            return Ok(None);
        };
        guard.flush()?;
        let text = std::fs::read(path)?;
        let ours = text.get(usize::try_from(*start)?..).unwrap_or_default();
        let records = String::from_utf8_lossy(ours)
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        Ok(Some(records))
    }

    /// Who was allowed and denied what, per subject, from the audit log.
    fn print_summary(&self) -> Result<(), BoxError> {
        let Some(records) = self.records()? else {
            println!("\n  (no audit log, so no summary)");
            return Ok(());
        };
        println!(
            "\n  Who was allowed and denied what ({} audit records)",
            records.len()
        );
        for line in summarize(&records) {
            println!("  summary: {line}");
        }
        if let Some(guard) = &self.guard
            && guard.dropped() > 0
        {
            println!("  ({} audit records were dropped)", guard.dropped());
        }
        Ok(())
    }
}

/// One line per subject and decision: `alice allow GET /orders/7 ×2, login`.
/// The subject is `sub`, else the client, else `(no token)`; what was asked
/// is the method and path of a request, else the issuer's action.
fn summarize(records: &[Value]) -> Vec<String> {
    // subject → decision → (what, count), in first-seen order.
    let mut table: BTreeMap<String, BTreeMap<String, Vec<(String, usize)>>> = BTreeMap::new();
    for record in records {
        let text = |name: &str| record[name].as_str().filter(|s| !s.is_empty());
        let subject = text("sub")
            .or(text("client_id"))
            .unwrap_or("(no token)")
            .to_owned();
        let mut what = match (text("action"), text("method"), text("path")) {
            (Some("request"), Some(method), Some(path)) => format!("{method} {path}"),
            (Some(action), _, _) => action.to_owned(),
            _ => continue,
        };
        // Allowed by authlayer, refused by the handler itself (the gRPC
        // service checks its scopes in the handler).
        if record["decision"] == "allow" {
            match (record["status"].as_u64(), record["grpc_status"].as_u64()) {
                (_, Some(code)) if code != 0 => {
                    let _ = write!(what, " (handler answered grpc-status {code})");
                }
                (Some(status), _) if status >= 400 => {
                    let _ = write!(what, " (handler answered {status})");
                }
                _ => {}
            }
        }
        let decision = text("decision").unwrap_or("?").to_owned();
        let whats = table
            .entry(subject)
            .or_default()
            .entry(decision)
            .or_default();
        match whats.iter_mut().find(|(w, _)| *w == what) {
            Some((_, n)) => *n += 1,
            None => whats.push((what, 1)),
        }
    }
    let mut lines = Vec::new();
    for (subject, decisions) in &table {
        for (decision, whats) in decisions {
            let list: Vec<String> = whats
                .iter()
                .map(|(what, n)| {
                    if *n > 1 {
                        format!("{what} ×{n}")
                    } else {
                        what.clone()
                    }
                })
                .collect();
            lines.push(format!("{subject} {decision} {}", list.join(", ")));
        }
    }
    lines
}

/// The token with one character of its payload changed.
fn tamper(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    if let Some(payload) = parts.get_mut(1).filter(|p| !p.is_empty()) {
        let middle = payload.len() / 2;
        let flipped = if payload[middle..].starts_with('A') {
            "B"
        } else {
            "A"
        };
        payload.replace_range(middle..=middle, flipped);
    }
    parts.join(".")
}

fn print_curl(system: &System) {
    let (iss, orders, grpc) = (&system.iss, &system.orders, system.grpc_addr);
    let (user, password) = DEMO_USER;
    let (client, secret) = DEMO_CLIENT;
    println!("\n  Try it yourself:\n");
    println!(
        "  TOKEN=$(curl -s -X POST {iss}/login -d username={user} -d password={password} | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')"
    );
    println!("  curl -i {orders}/orders/7 -H \"Authorization: Bearer $TOKEN\"");
    println!(
        "  curl -i -X POST {orders}/orders -H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json' -d '{{\"item\":\"widget\",\"quantity\":2}}'"
    );
    println!("  curl -i {orders}/orders/7                       # no token: 401");
    println!("  curl -s {orders}/me -H \"Authorization: Bearer $TOKEN\"");
    println!("  curl -s -X POST {iss}/token -u {client}:{secret} -d grant_type=client_credentials");
    println!("  curl -s -X POST {iss}/introspect -u {client}:{secret} -d token=$TOKEN");
    println!("  curl -s {iss}/.well-known/jwks.json");
    println!(
        "  grpcurl -plaintext -import-path examples/proto -proto orders.proto -H \"authorization: Bearer $TOKEN\" -d '{{\"id\":7}}' {grpc} orders.v1.Orders/GetOrder"
    );
}
