//! The whole system in one process: the example issuer, the axum `orders`
//! service and the tonic `orders` service, each on 127.0.0.1:0, with real
//! HTTP and gRPC clients.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use authlayer::test_util::TestIssuer;
use authlayer::{TypPolicy, Verifier};
use reqwest::StatusCode;
use serde_json::Value;
use tonic::transport::Channel;

use crate::common::{
    AUDIENCE, LogBuffer, b64_decode, challenge, grpc_client, http_get, orders_token, serve_axum,
    serve_grpc, with_token,
};
use crate::issuer;
use crate::issuer::config::{
    Client, Config, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN, GRANT_TOKEN_EXCHANGE, Upstream,
    User,
};
use crate::issuer::keys::SigningAlg;
use crate::orders;
use crate::orders_grpc;
use crate::orders_grpc::pb::orders_client::OrdersClient;
use crate::orders_grpc::pb::{CreateOrderRequest, GetOrderRequest, Order};
const TOKEN_EXCHANGE: &str = GRANT_TOKEN_EXCHANGE;
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Argon2id at its minimum cost: the tests check behaviour, not hashing
/// strength, and must stay fast in debug builds.
fn cheap_hash(secret: &str) -> String {
    let params = argon2::Params::new(8, 1, 1, None).expect("valid Argon2 parameters");
    issuer::credentials::hash_secret_with(secret, params).expect("hashing")
}

fn user(name: &str, password: &str, scopes: &[&str], roles: &[&str], tenant: &str) -> User {
    User {
        username: name.into(),
        password_hash: cheap_hash(password),
        scopes: scopes.iter().map(|s| (*s).into()).collect(),
        roles: roles.iter().map(|s| (*s).into()).collect(),
        tenant: Some(tenant.into()),
        audiences: None,
    }
}

pub(crate) fn client(
    id: &str,
    secret: &str,
    scopes: &[&str],
    grants: &[&str],
    admin: bool,
) -> Client {
    Client {
        client_id: id.into(),
        secret_hash: cheap_hash(secret),
        scopes: scopes.iter().map(|s| (*s).into()).collect(),
        audiences: None,
        grant_types: grants.iter().map(|s| (*s).into()).collect(),
        roles: vec!["service".into()],
        tenant: Some("acme".into()),
        exchange: BTreeMap::new(),
        admin,
        opaque_access_tokens: false,
    }
}

/// alice (read + write), the orders-service client (client credentials and
/// token exchange), a read-only client and an admin client; no timed
/// rotation.
pub(crate) fn config() -> Config {
    Config {
        port: 0,
        users: vec![user(
            "alice",
            "alice-password",
            &["orders:read", "orders:write"],
            &["customer"],
            "acme",
        )],
        clients: vec![
            client(
                "orders-service",
                "orders-secret",
                &["orders:read", "orders:write"],
                &[
                    GRANT_CLIENT_CREDENTIALS,
                    GRANT_TOKEN_EXCHANGE,
                    GRANT_REFRESH_TOKEN,
                ],
                false,
            ),
            client(
                "reader",
                "reader-secret",
                &["orders:read"],
                &[GRANT_CLIENT_CREDENTIALS],
                false,
            ),
            client("ops", "ops-secret", &[], &[GRANT_CLIENT_CREDENTIALS], true),
        ],
        rotate_every: None,
        ..Config::default()
    }
}

pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("a JWS part");
    serde_json::from_slice(&b64_decode(part).expect("base64url")).expect("JSON")
}

fn kid_of(token: &str) -> String {
    decode_part(token, 0)["kid"]
        .as_str()
        .expect("kid")
        .to_owned()
}

/// Issuer + axum service + tonic service, with clients for all three.
pub(crate) struct World {
    // Held so the issuer keeps running: dropping it stops the server.
    _issuer: issuer::server::Running,
    pub(crate) iss: String,
    pub(crate) orders: String,
    pub(crate) grpc: OrdersClient<Channel>,
    pub(crate) http: reqwest::Client,
    pub(crate) verifier: Verifier,
}

pub(crate) fn verifier_for(iss: &str) -> authlayer::VerifierBuilder {
    Verifier::builder()
        .issuer(iss)
        .audience(AUDIENCE)
        .typ(TypPolicy::AccessToken)
}

pub(crate) async fn world(config: Config) -> World {
    world_with(config, verifier_for).await
}

pub(crate) async fn world_with(
    config: Config,
    downstream: impl Fn(&str) -> authlayer::VerifierBuilder,
) -> World {
    let issuer = issuer::server::start(config).await.expect("issuer starts");
    let iss = issuer.issuer().to_owned();
    let verifier = downstream(&iss).build().await.expect("verifier");

    let http_addr = serve_axum(orders::app(verifier.clone())).await;
    let grpc_addr = serve_grpc(orders_grpc::router(verifier.clone())).await;
    let grpc = grpc_client(grpc_addr).await;
    World {
        _issuer: issuer,
        iss,
        orders: format!("http://{http_addr}"),
        grpc,
        http: reqwest::Client::new(),
        verifier,
    }
}

impl World {
    pub(crate) async fn post(
        &self,
        path: &str,
        pairs: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (StatusCode, Value) {
        self.post_via(&self.http, path, pairs, basic).await
    }

    /// [`post`](Self::post) with another client (another source address).
    pub(crate) async fn post_via(
        &self,
        http: &reqwest::Client,
        path: &str,
        pairs: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (StatusCode, Value) {
        let mut req = http
            .post(format!("{}{path}", self.iss))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs));
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let res = req.send().await.expect("issuer answers");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(crate) async fn login(
        &self,
        username: &str,
        password: &str,
        scope: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut pairs = vec![("username", username), ("password", password)];
        if let Some(scope) = scope {
            pairs.push(("scope", scope));
        }
        self.post("/login", &pairs, None).await
    }

    pub(crate) async fn alice(&self) -> Value {
        let (status, body) = self.login("alice", "alice-password", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub(crate) async fn client_token(
        &self,
        id: &str,
        secret: &str,
        scope: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut pairs = vec![("grant_type", GRANT_CLIENT_CREDENTIALS)];
        if let Some(scope) = scope {
            pairs.push(("scope", scope));
        }
        self.post("/token", &pairs, Some((id, secret))).await
    }

    pub(crate) async fn introspect(&self, token: &str) -> Value {
        let (status, body) = self
            .post(
                "/introspect",
                &[("token", token)],
                Some(("orders-service", "orders-secret")),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub(crate) async fn get_order(&self, token: Option<&str>) -> reqwest::Response {
        http_get(&self.http, &format!("{}/orders/7", self.orders), token).await
    }

    pub(crate) async fn create_order(&self, token: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/orders", self.orders))
            .bearer_auth(token)
            .json(&serde_json::json!({"item": "widget", "quantity": 2}))
            .send()
            .await
            .expect("orders answers")
    }

    pub(crate) async fn grpc_get(&self, token: Option<&str>) -> Result<Order, tonic::Status> {
        let message = GetOrderRequest { id: 7 };
        let req = match token {
            Some(token) => with_token(message, token),
            None => tonic::Request::new(message),
        };
        self.grpc
            .clone()
            .get_order(req)
            .await
            .map(tonic::Response::into_inner)
    }

    pub(crate) async fn grpc_create(&self, token: &str) -> Result<Order, tonic::Status> {
        let req = with_token(
            CreateOrderRequest {
                item: "widget".into(),
                quantity: 2,
            },
            token,
        );
        self.grpc
            .clone()
            .create_order(req)
            .await
            .map(tonic::Response::into_inner)
    }

    /// `/admin/keys` entry of `kid` (as the admin client).
    pub(crate) async fn key_status(&self, kid: &str) -> Value {
        let keys: Value = self
            .http
            .get(format!("{}/admin/keys", self.iss))
            .basic_auth("ops", Some("ops-secret"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub(crate) async fn jwks_kids(&self) -> Vec<String> {
        let jwks: Value = http_get(
            &self.http,
            &format!("{}/.well-known/jwks.json", self.iss),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }
}

pub(crate) fn token_of(body: &Value) -> String {
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access_token in {body}"))
        .to_owned()
}

#[tokio::test]
async fn login_then_http_and_grpc_calls_succeed_with_an_rfc_9068_token() {
    let w = world(config()).await;
    let body = w.alice().await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "orders:read orders:write");
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|r| r.len() >= 43)
    );
    let token = token_of(&body);

    let header = decode_part(&token, 0);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "RS256");
    assert!(w.jwks_kids().await.contains(&kid_of(&token)));
    let claims = decode_part(&token, 1);
    for name in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "client_id",
        "scope",
        "roles",
        "tenant",
    ] {
        assert!(!claims[name].is_null(), "claim {name} missing in {claims}");
    }
    assert_eq!(claims["iss"], w.iss.as_str());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(claims["roles"], serde_json::json!(["customer"]));

    let res = w.get_order(Some(&token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["owner"], "alice");
    assert_eq!(w.create_order(&token).await.status(), StatusCode::CREATED);
    assert_eq!(w.grpc_get(Some(&token)).await.unwrap().owner, "alice");
    assert_eq!(w.grpc_create(&token).await.unwrap().quantity, 2);

    // Without a token: 401 and UNAUTHENTICATED.
    assert_eq!(w.get_order(None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        w.grpc_get(None).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );

    // JSON logins work too.
    let res = w
        .http
        .post(format!("{}/login", w.iss))
        .json(&serde_json::json!({"username": "alice", "password": "alice-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn wrong_credentials_get_one_answer_and_then_a_back_off() {
    let w = world(config()).await;
    let (status, wrong_password) = w.login("alice", "nope", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, unknown_user) = w.login("mallory", "alice-password", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong_password, unknown_user,
        "one message whatever was wrong"
    );

    // Five free failures (one above), then the name is locked.
    for _ in 0..4 {
        assert_eq!(
            w.login("alice", "nope", None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let res = w
        .http
        .post(format!("{}/login", w.iss))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("username", "alice"), ("password", "nope")]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = w.login("alice", "alice-password", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // Another user is not affected.
    let (status, _) = w.client_token("reader", "reader-secret", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let w = world(config()).await;
    let first = w.alice().await;
    let r1 = first["refresh_token"].as_str().unwrap();

    let (status, second) = w.post("/refresh", &[("refresh_token", r1)], None).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let r2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2, "the refresh token rotates");
    let a2 = token_of(&second);
    assert_eq!(w.get_order(Some(&a2)).await.status(), StatusCode::OK);
    assert_eq!(w.introspect(&a2).await["active"], true);

    // r1 again: someone kept a copy. The family dies, r2 with it.
    let (status, body) = w.post("/refresh", &[("refresh_token", r1)], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = w.post("/refresh", &[("refresh_token", r2)], None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        w.introspect(&a2).await["active"],
        false,
        "family access tokens are revoked too"
    );

    // The token endpoint's refresh_token grant rotates as well, and may narrow scopes.
    let fresh = w.alice().await;
    let (status, body) = w
        .post(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", fresh["refresh_token"].as_str().unwrap()),
                ("scope", "orders:read"),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "orders:read");
    assert_ne!(body["refresh_token"], fresh["refresh_token"]);
}

#[tokio::test]
async fn introspection_reflects_revocation() {
    let w = world(config()).await;
    let body = w.alice().await;
    let access = token_of(&body);
    let refresh = body["refresh_token"].as_str().unwrap();

    let info = w.introspect(&access).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["scope"], "orders:read orders:write");
    assert_eq!(info["client_id"], "login");
    assert_eq!(info["iss"], w.iss.as_str());

    // Client authentication is required.
    let (status, body) = w.post("/introspect", &[("token", &access)], None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (status, _) = w
        .post(
            "/introspect",
            &[("token", &access)],
            Some(("orders-service", "wrong")),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // RFC 7009: revoke answers 200; afterwards the token is inactive.
    let (status, _) = w.post("/revoke", &[("token", &access)], None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        w.introspect(&access).await,
        serde_json::json!({"active": false})
    );

    // Refresh tokens: revoking kills the family.
    let (status, _) = w
        .post(
            "/revoke",
            &[("token", refresh), ("token_type_hint", "refresh_token")],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = w
        .post("/refresh", &[("refresh_token", refresh)], None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Unknown, foreign and garbage tokens are simply inactive; revoking them is fine.
    let foreign = orders_token(&TestIssuer::new(w.iss.clone()))
        .sub("alice")
        .header("typ", "at+jwt")
        .sign();
    for token in [foreign.as_str(), "garbage", "a.b.c"] {
        assert_eq!(w.introspect(token).await["active"], false, "{token}");
        assert_eq!(
            w.post("/revoke", &[("token", token)], None).await.0,
            StatusCode::OK
        );
    }

    // A client's token can be revoked only by that client.
    let (_, cc) = w.client_token("reader", "reader-secret", None).await;
    let cc = token_of(&cc);
    let (status, _) = w
        .post(
            "/revoke",
            &[("token", &cc)],
            Some(("orders-service", "orders-secret")),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(w.introspect(&cc).await["active"], true);
    let (status, _) = w
        .post(
            "/revoke",
            &[("token", &cc)],
            Some(("reader", "reader-secret")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(w.introspect(&cc).await["active"], false);
}

#[tokio::test]
async fn client_credentials_token_calls_the_grpc_service() {
    let w = world(config()).await;
    let (status, body) = w
        .client_token("orders-service", "orders-secret", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["refresh_token"].is_null(),
        "no refresh token for client credentials"
    );
    let token = token_of(&body);
    let claims = decode_part(&token, 1);
    assert_eq!(claims["sub"], "orders-service");
    assert_eq!(claims["client_id"], "orders-service");

    let order = w.grpc_get(Some(&token)).await.expect("GetOrder");
    assert_eq!((order.id, order.owner.as_str()), (7, "orders-service"));
    assert_eq!(
        w.grpc_create(&token).await.expect("CreateOrder").item,
        "widget"
    );

    // client_secret_post works as well; wrong or missing credentials do not.
    let (status, _) = w
        .post(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "reader"),
                ("client_secret", "reader-secret"),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = w.client_token("orders-service", "wrong", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (status, _) = w
        .post("/token", &[("grant_type", "client_credentials")], None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A grant the client is not registered for.
    let (status, body) = w
        .post(
            "/token",
            &[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", "x"),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
            ],
            Some(("reader", "reader-secret")),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );
}

#[tokio::test]
async fn scope_limited_tokens_get_403_and_permission_denied() {
    let w = world(config()).await;
    let (status, body) = w
        .login("alice", "alice-password", Some("orders:read"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "orders:read");
    let user_token = token_of(&body);
    let (_, body) = w.client_token("reader", "reader-secret", None).await;
    let client_token = token_of(&body);

    for token in [&user_token, &client_token] {
        assert_eq!(w.get_order(Some(token)).await.status(), StatusCode::OK);
        let res = w.create_order(token).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let challenge = challenge(&res);
        assert!(challenge.contains("insufficient_scope"), "{challenge}");
        assert!(w.grpc_get(Some(token)).await.is_ok());
        assert_eq!(
            w.grpc_create(token).await.unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
    }

    // Asking for more than one may have is refused, not silently trimmed.
    let (status, body) = w
        .client_token("reader", "reader-secret", Some("orders:write"))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    let (status, body) = w
        .post(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("audience", "urn:payments"),
            ],
            Some(("reader", "reader-secret")),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );
}

/// Counts of the traffic that runs through a rotation.
#[derive(Debug, Default, Clone)]
struct Traffic {
    sent: u64,
    failed: u64,
    by_kid: BTreeMap<String, u64>,
    /// Latest `exp` of a token signed by each key.
    last_exp: BTreeMap<String, i64>,
    /// Issuer clock (ms) when each kid was first seen in a minted token.
    first_seen_ms: BTreeMap<String, i64>,
    jwks: Vec<String>,
    failures: Vec<String>,
}

/// Mints a token, calls both services with it (and with the last token of
/// the old key while that is valid), polls the JWK Set; until `stop`.
async fn traffic(
    w: Arc<World>,
    old_kid: String,
    stop: Arc<AtomicBool>,
    tx: tokio::sync::watch::Sender<Traffic>,
) {
    let mut t = Traffic::default();
    let mut old_token: Option<(String, i64)> = None;
    while !stop.load(Ordering::Relaxed) {
        let (status, body) = w
            .client_token("orders-service", "orders-secret", None)
            .await;
        t.sent += 1;
        if status != StatusCode::OK {
            t.failed += 1;
            t.failures.push(format!("token endpoint: {status} {body}"));
            tx.send_replace(t.clone());
            continue;
        }
        let token = token_of(&body);
        let kid = kid_of(&token);
        let exp = decode_part(&token, 1)["exp"].as_i64().unwrap();
        let now = issuer::keys::now_ms();
        t.first_seen_ms.entry(kid.clone()).or_insert(now);
        *t.by_kid.entry(kid.clone()).or_default() += 1;
        t.last_exp.insert(kid.clone(), exp);
        if kid == old_kid {
            old_token = Some((token.clone(), exp));
        }
        // Every fresh token, plus the last token of the old key for as
        // long as it is valid: old tokens must keep working too.
        let mut tokens = vec![token];
        if let Some((old, exp)) = &old_token
            && exp * 1000 - now > 400
        {
            tokens.push(old.clone());
        }
        for token in &tokens {
            let res = w.get_order(Some(token)).await;
            t.sent += 1;
            if res.status() != StatusCode::OK {
                t.failed += 1;
                t.failures
                    .push(format!("HTTP {} kid {}", res.status(), kid_of(token)));
            }
            t.sent += 1;
            if let Err(status) = w.grpc_get(Some(token)).await {
                t.failed += 1;
                t.failures
                    .push(format!("gRPC {:?} kid {}", status.code(), kid_of(token)));
            }
        }
        t.jwks = w.jwks_kids().await;
        t.sent += 1;
        tx.send_replace(t.clone());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_under_traffic_fails_no_request() {
    // Compressed timeline: 2 s lead, 3 s tokens, 0.5 s grace. The downstream
    // services never refresh on their own here (1 h) and may not refetch on
    // an unknown kid (1 h cooldown): the only way they can know the new key
    // is its early publication. The test triggers their periodic refresh
    // explicitly, standing in for "one refresh interval passed".
    let mut cfg = config();
    cfg.access_ttl = Duration::from_secs(3);
    cfg.publish_lead = Duration::from_secs(2);
    cfg.retire_grace = Duration::from_millis(500);
    cfg.jwks_max_age = Duration::from_secs(1);
    let w = Arc::new(
        world_with(cfg, |iss| {
            verifier_for(iss)
                .refresh_interval(Duration::from_secs(3600))
                .max_age_bounds(Duration::from_secs(3600), Duration::from_secs(3600))
                .refetch_cooldown(Duration::from_secs(3600))
                .leeway(Duration::ZERO)
        })
        .await,
    );
    let old_kid = w.jwks_kids().await.pop().expect("one key");

    let (tx, mut rx) = tokio::sync::watch::channel(Traffic::default());
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = tokio::spawn(traffic(
        Arc::clone(&w),
        old_kid.clone(),
        Arc::clone(&stop),
        tx,
    ));

    rx.wait_for(|t| t.sent >= 30).await.unwrap();
    let before = rx.borrow().sent;

    // Rotate through the authenticated admin endpoint.
    let (status, _) = w
        .post(
            "/admin/rotate",
            &[],
            Some(("orders-service", "orders-secret")),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only admin clients may rotate"
    );
    let (status, rotation) = w
        .post(
            "/admin/rotate",
            &[("lead", "2s")],
            Some(("ops", "ops-secret")),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{rotation}");
    // The downstream's periodic refresh (see above) picks up the new key.
    w.verifier.refresh().await;
    let known_ms = issuer::keys::now_ms();
    let new_kid = rotation["kid"].as_str().unwrap().to_owned();
    let activates_ms = rotation["activates_ms"].as_i64().unwrap();
    assert!(w.verifier.health().issuers[0].kids.contains(&new_kid));
    assert!(
        known_ms < activates_ms,
        "the refresh happened within the lead time"
    );
    assert_eq!(rotation["replaces"], old_kid.as_str());
    let published = w.jwks_kids().await;
    assert!(
        published.contains(&new_kid) && published.contains(&old_kid),
        "{published:?}"
    );
    // The schedule: the old key leaves the JWK Set once its last token has
    // expired (activation + access TTL) plus the grace.
    let removed_ms = w.key_status(&old_kid).await["removed_ms"].as_i64().unwrap();
    assert_eq!(removed_ms, activates_ms + 3000 + 500);

    // Traffic continues until tokens of the new key have flowed and the old
    // key has left the JWK Set.
    rx.wait_for(|t| t.by_kid.get(&new_kid).is_some_and(|&n| n >= 10) && !t.jwks.contains(&old_kid))
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    let end = rx.borrow().clone();

    let during = end.sent - before;
    println!(
        "key rotation: {during} requests sent during the rotation ({} in all), {} failed; tokens per key: {:?}",
        end.sent, end.failed, end.by_kid
    );
    assert_eq!(end.failed, 0, "failures: {:?}", end.failures);
    assert!(during >= 50, "enough traffic to mean something: {during}");
    // Publish before sign: the first new-key token came after the activation
    // instant, which came after the downstream already had the key.
    assert!(end.first_seen_ms[&new_kid] >= activates_ms);
    // Retire after expiry: every token of the old key had expired when the
    // key left the JWK Set.
    assert!(end.last_exp[&old_kid] * 1000 <= removed_ms);
    let m = w.verifier.metrics();
    assert_eq!(
        (m.unknown_key_refetches, m.cooldown_rejections),
        (0, 0),
        "no request ever met a key the service did not know"
    );
}

/// A second issuer instance playing a partner's identity provider (ES256);
/// carol's tokens are addressed to us (`urn:acme-issuer`) by default.
pub(crate) async fn partner_issuer() -> issuer::server::Running {
    partner_issuer_with("carol").await
}

/// [`partner_issuer`] whose one user is called `username` (password
/// `carol-password`).
async fn partner_issuer_with(username: &str) -> issuer::server::Running {
    issuer::server::start(Config {
        port: 0,
        users: vec![User {
            audiences: Some(vec!["urn:acme-issuer".into(), AUDIENCE.into()]),
            ..user(
                username,
                "carol-password",
                &["catalog.read", "admin.everything"],
                &["buyer", "superuser"],
                "partner-co",
            )
        }],
        signing_alg: SigningAlg::ES256,
        default_audience: "urn:acme-issuer".into(),
        rotate_every: None,
        ..Config::default()
    })
    .await
    .unwrap()
}

/// How our issuer maps the partner's identities: `buyer` → `customer`
/// (which grants orders:read and orders:write), `catalog.read` →
/// `orders:read`; everything else is dropped.
pub(crate) fn partner_upstream(iss: &str) -> Upstream {
    Upstream {
        name: "partner".into(),
        issuer: iss.to_owned(),
        jwks_url: None,
        audience: "urn:acme-issuer".into(),
        algorithms: Some(vec!["ES256".into()]),
        subject_prefix: None,
        subject_claim: "sub".into(),
        tenant: None,
        tenant_claim: Some("tenant".into()),
        tenants: BTreeMap::from([("partner-co".into(), "partner-co".into())]),
        roles_claim: "roles".into(),
        roles: BTreeMap::from([("buyer".into(), vec!["customer".into()])]),
        scopes: BTreeMap::from([("catalog.read".into(), vec!["orders:read".into()])]),
        role_scopes: BTreeMap::from([(
            "customer".into(),
            vec!["orders:read".into(), "orders:write".into()],
        )]),
    }
}

/// Logs in at the issuer whose base URL is `iss`; returns the access token.
async fn login_at(iss: &str, fields: &[(&str, &str)]) -> String {
    let res = reqwest::Client::new()
        .post(format!("{iss}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(fields))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    token_of(&res.json::<Value>().await.unwrap())
}

/// Carol's access token from the partner issuer, for `aud`.
pub(crate) async fn partner_login(partner: &str, aud: &str) -> String {
    let carol = [
        ("username", "carol"),
        ("password", "carol-password"),
        ("audience", aud),
    ];
    login_at(partner, &carol).await
}

#[tokio::test]
async fn token_exchange_normalizes_an_upstream_identity() {
    let partner = partner_issuer().await;
    let mut cfg = config();
    cfg.upstreams = vec![partner_upstream(partner.issuer())];
    // Exchanged roles are capped by the client's: it may hand out `customer`.
    cfg.clients[0].roles = vec!["service".into(), "customer".into()];
    let w = world(cfg).await;

    let login = |aud: &'static str| partner_login(partner.issuer(), aud);
    let upstream_token = login("urn:acme-issuer").await;

    // The downstream trusts only our issuer: the partner's token is refused.
    assert_eq!(
        w.get_order(Some(&upstream_token)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        w.grpc_get(Some(&upstream_token)).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );

    let exchange = |subject: String| async {
        let subject = subject;
        w.post(
            "/token",
            &[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
            ],
            Some(("orders-service", "orders-secret")),
        )
        .await
    };
    let (status, body) = exchange(upstream_token.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE);
    let local = token_of(&body);
    let claims = decode_part(&local, 1);
    assert_eq!(claims["iss"], w.iss.as_str());
    assert_eq!(claims["sub"], "partner:carol");
    assert_eq!(claims["tenant"], "partner-co");
    assert_eq!(
        claims["roles"],
        serde_json::json!(["customer"]),
        "unmapped roles are dropped"
    );
    assert_eq!(claims["scope"], "orders:read orders:write");
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["client_id"], "orders-service");

    let res = w.get_order(Some(&local)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["owner"], "partner:carol");
    assert_eq!(
        w.grpc_get(Some(&local)).await.unwrap().owner,
        "partner:carol"
    );

    // Refused: an upstream token for another audience, our own token, garbage.
    let wrong_audience = login(AUDIENCE).await;
    let own = token_of(&w.alice().await);
    for subject in [wrong_audience, own, "not-a-token".to_owned()] {
        let (status, body) = exchange(subject).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{body}"
        );
    }
}

/// Exchanges `subject` at `w` as the orders-service client.
pub(crate) async fn exchange_as_orders_service(w: &World, subject: &str) -> (StatusCode, Value) {
    w.post(
        "/token",
        &[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ],
        Some(("orders-service", "orders-secret")),
    )
    .await
}

#[tokio::test]
async fn token_exchange_caps_roles_by_the_clients_registered_roles() {
    let partner = partner_issuer().await;
    let mut upstream = partner_upstream(partner.issuer());
    // The mapping would give carol (a `superuser` upstream) the local
    // `admin` role, which the exchanging client is not registered for.
    upstream
        .roles
        .insert("superuser".into(), vec!["admin".into()]);
    let mut cfg = config();
    cfg.upstreams = vec![upstream];
    cfg.clients[0].roles = vec!["service".into(), "customer".into()];
    let w = world(cfg).await;

    let upstream_token = partner_login(partner.issuer(), "urn:acme-issuer").await;
    let (status, body) = exchange_as_orders_service(&w, &upstream_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = decode_part(&token_of(&body), 1);
    assert_eq!(claims["roles"], serde_json::json!(["customer"]));
}

#[tokio::test]
async fn token_exchange_log_line_escapes_the_upstream_subject() {
    // An upstream subject that, written raw, would start a forged log line.
    let forged = "carol\r\n2026-01-01T00:00:00Z  INFO forged: admin login\u{1b}[2K";
    let partner = partner_issuer_with(forged).await;
    let mut cfg = config();
    cfg.upstreams = vec![partner_upstream(partner.issuer())];
    let w = world(cfg).await;
    let upstream_token = login_at(
        partner.issuer(),
        &[
            ("username", forged),
            ("password", "carol-password"),
            ("audience", "urn:acme-issuer"),
        ],
    )
    .await;

    // Only the exchange runs under the capturing subscriber (this runtime
    // has one thread, so the servers' tasks log here too).
    let log = LogBuffer::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    // Another test's thread may have met the exchange line first, with no
    // subscriber, and tracing caches that: recompute with this one.
    tracing::callsite::rebuild_interest_cache();
    let (status, body) = exchange_as_orders_service(&w, &upstream_token).await;
    drop(guard);
    assert_eq!(status, StatusCode::OK, "{body}");

    let text = log.contents();
    let exchange_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("token exchange"))
        .collect();
    assert_eq!(exchange_lines.len(), 1, "{text}");
    assert!(exchange_lines[0].contains("forged"), "{text}");
    // The exchange's audit record names the subject too, escaped, on its
    // own one line.
    assert!(
        text.lines().all(|l| !l.contains("forged")
            || l.contains("token exchange")
            || l.contains("authlayer::audit: schema_version=1 action=\"token_exchange\"")),
        "the subject started a line of its own:\n{text}"
    );
    assert!(!text.contains('\r') && !text.contains('\u{1b}'), "{text:?}");
}

#[tokio::test]
async fn token_exchange_answers_503_while_the_upstream_is_down() {
    // A genuine partner token, then the partner goes away before our issuer
    // has ever seen its keys.
    let partner = partner_issuer().await;
    let iss = partner.issuer().to_owned();
    let upstream_token = partner_login(&iss, "urn:acme-issuer").await;
    partner.shutdown().await.unwrap();

    let mut cfg = config();
    cfg.upstreams = vec![partner_upstream(&iss)];
    let w = world(cfg).await;
    let (status, body) = w
        .post(
            "/token",
            &[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", &upstream_token),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
            ],
            Some(("orders-service", "orders-secret")),
        )
        .await;
    // Not the client's fault: 503, not invalid_request, and no token.
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body.get("access_token").is_none(), "{body}");
    // The issuer's own grants are unaffected.
    let own = token_of(&w.alice().await);
    assert_eq!(w.get_order(Some(&own)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn timed_rotation_publishes_the_next_key_before_it_signs() {
    // ROTATE_EVERY 4 s with a 2 s lead: the next key appears in the JWK Set
    // two seconds after start and signs from the fourth second on. The
    // downstream refreshes on its own, every second (the JWKS max-age), so
    // it learns the key during the lead. The issuer's timer runs on the
    // wall clock, so this polls with a deadline.
    let mut cfg = config();
    cfg.rotate_every = Some(Duration::from_secs(4));
    cfg.publish_lead = Duration::from_secs(2);
    cfg.jwks_max_age = Duration::from_secs(1);
    let w = world_with(cfg, |iss| {
        verifier_for(iss)
            .refresh_interval(Duration::from_secs(1))
            .max_age_bounds(Duration::from_secs(1), Duration::from_secs(1))
    })
    .await;
    let first = w.jwks_kids().await;
    assert_eq!(first.len(), 1);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let next = loop {
        let kids = w.jwks_kids().await;
        if let Some(next) = kids.iter().find(|k| !first.contains(k)) {
            break next.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no timed rotation");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let activates_ms = w.key_status(&next).await["activates_ms"].as_i64().unwrap();
    loop {
        let (_, body) = w.client_token("reader", "reader-secret", None).await;
        let token = token_of(&body);
        let minted_ms = issuer::keys::now_ms();
        if kid_of(&token) == next {
            assert!(minted_ms >= activates_ms, "signed before its activation");
            assert_eq!(w.get_order(Some(&token)).await.status(), StatusCode::OK);
            assert_eq!(
                w.verifier.metrics().unknown_key_refetches,
                0,
                "the service knew the key before its first token arrived"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the next key never signed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn users_and_clients_come_from_toml_and_json_files() {
    let dir = std::env::temp_dir().join(format!(
        "authlayer-e2e-files-{}-{}",
        std::process::id(),
        issuer::keys::now_ms()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let users = dir.join("users.toml");
    let clients = dir.join("clients.json");
    std::fs::write(
        &users,
        format!(
            "[[users]]\nusername = \"dana\"\npassword_hash = \"{}\"\nscopes = [\"orders:read\"]\nroles = [\"customer\"]\ntenant = \"acme\"\n",
            cheap_hash("dana-password")
        ),
    )
    .unwrap();
    std::fs::write(
        &clients,
        serde_json::json!({"clients": [{
            "client_id": "billing", "secret_hash": cheap_hash("billing-secret"),
            "scopes": ["orders:read"], "grant_types": ["client_credentials"]
        }]})
        .to_string(),
    )
    .unwrap();
    let settings = |extra: &[&str]| {
        let mut args = vec![
            "--port".to_owned(),
            "0".to_owned(),
            format!("--users-file={}", users.display()),
            format!("--clients-file={}", clients.display()),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        issuer::config::Settings::from_args(args).unwrap()
    };
    let cfg = Config::from_settings(&settings(&["--rotate-every", "off"])).unwrap();
    assert!(
        cfg.seeded.is_empty(),
        "nothing is seeded when files are given"
    );
    assert_eq!(
        cfg.issuer_url, None,
        "port 0: the URL comes from the bound address"
    );
    let w = world(cfg).await;
    let (status, body) = w.login("dana", "dana-password", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "orders:read");
    let (status, _) = w.client_token("billing", "billing-secret", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = w.login("demo", "demo-password", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no demo user with files");

    // Mistakes are refused with a message that says what to fix.
    for (args, needle) in [
        (&["--access-ttl", "soon"][..], "ACCESS_TTL"),
        (&["--signing-alg", "HS256"][..], "SIGNING_ALG"),
        (
            &["--rotate-every", "1m", "--key-publish-lead", "5m"][..],
            "ROTATE_EVERY",
        ),
    ] {
        let err = Config::from_settings(&settings(args))
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
    std::fs::write(
        &users,
        "[[users]]\nusername = \"eve\"\npassword_hash = \"plain\"\n",
    )
    .unwrap();
    let err = Config::from_settings(&settings(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("eve") && err.contains("PHC"), "{err}");
    std::fs::write(
        &users,
        "[[users]]\nusername = \"eve\"\npasword_hash = \"x\"\n",
    )
    .unwrap();
    let err = Config::from_settings(&settings(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("pasword_hash"), "typos are caught: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn every_signing_algorithm_is_verified_downstream() {
    for alg in [SigningAlg::ES256, SigningAlg::EdDSA] {
        let mut cfg = config();
        cfg.signing_alg = alg;
        let w = world(cfg).await;
        let token = token_of(&w.alice().await);
        assert_eq!(decode_part(&token, 0)["alg"], alg.name());
        assert_eq!(
            w.get_order(Some(&token)).await.status(),
            StatusCode::OK,
            "{alg:?}"
        );
        assert!(w.grpc_get(Some(&token)).await.is_ok(), "{alg:?}");
    }
}

#[tokio::test]
async fn metadata_and_jwks_are_cacheable_and_conditional() {
    let w = world(config()).await;
    let metadata_url = format!("{}/.well-known/openid-configuration", w.iss);
    let res = http_get(&w.http, &metadata_url, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let meta: Value = res.json().await.unwrap();
    assert_eq!(meta["issuer"], w.iss.as_str());
    assert_eq!(meta["jwks_uri"], format!("{}/.well-known/jwks.json", w.iss));
    assert_eq!(
        meta["introspection_endpoint"],
        format!("{}/introspect", w.iss)
    );
    assert_eq!(meta["revocation_endpoint"], format!("{}/revoke", w.iss));

    let url = format!("{}/.well-known/jwks.json", w.iss);
    let res = http_get(&w.http, &url, None).await;
    assert_eq!(res.headers()["cache-control"], "public, max-age=300");
    let etag = res.headers()["etag"].clone();
    let res = w
        .http
        .get(&url)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn keys_in_key_dir_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!(
        "authlayer-e2e-keys-{}-{}",
        std::process::id(),
        issuer::keys::now_ms()
    ));
    let mut cfg = config();
    cfg.key_dir = Some(dir.clone());
    let first = issuer::server::start(cfg.clone()).await.unwrap();
    let iss = first.issuer().to_owned();
    let token = login_at(
        &iss,
        &[("username", "alice"), ("password", "alice-password")],
    )
    .await;
    let port = first.addr().port();
    first.shutdown().await.unwrap();

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let file = dir.join(format!("{}.pk8", kid_of(&token)));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "private keys are owner-only");
    }

    // Same port, same issuer URL, same keys: the token still verifies.
    cfg.port = port;
    let second = issuer::server::start(cfg).await.unwrap();
    assert_eq!(second.issuer(), iss);
    let verifier = verifier_for(&iss).build().await.unwrap();
    let claims = verifier
        .verify(&token)
        .await
        .expect("token from before the restart");
    assert_eq!(claims.sub(), Some("alice"));
    second.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn introspection_says_inactive_once_the_token_expired() {
    let mut cfg = config();
    cfg.access_ttl = Duration::from_secs(1);
    let w = world(cfg).await;
    let access = token_of(&w.alice().await);
    assert_eq!(w.introspect(&access).await["active"], true);
    // The issuer reads the wall clock, so paused tokio time cannot stand in:
    // wait until just past the token's own `exp`.
    let exp = decode_part(&access, 1)["exp"].as_u64().expect("exp");
    let after_exp_ms = i64::try_from(exp + 1).expect("exp fits i64") * 1000;
    let wait = (after_exp_ms - issuer::keys::now_ms()).max(0);
    tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
    assert_eq!(
        w.introspect(&access).await,
        serde_json::json!({"active": false})
    );
}

#[tokio::test]
async fn names_with_line_breaks_cannot_forge_log_lines() {
    let logs = LogBuffer::default();
    let _guard = logs.install();
    let w = world(config()).await;
    // tracing caches whether a log line is wanted when its callsite is
    // first hit, and another test's thread (without this subscriber) may be
    // the first: hit both failure lines once, then recompute their interest
    // with this subscriber installed.
    w.login("warm-up", "nope", None).await;
    w.client_token("warm-up", "nope", None).await;
    tracing::callsite::rebuild_interest_cache();
    // No colon: Basic auth splits the client id at the first one.
    let forged = "x\nINFO issuer FORGED login sub=admin\r";
    assert_eq!(
        w.login(forged, "nope", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        w.client_token(forged, "nope", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let text = logs.contents();
    // Audit records (one per request, checked in `audit`) aside.
    let failures: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("FORGED") && !l.contains("authlayer::audit:"))
        .collect();
    assert_eq!(failures.len(), 2, "both failures logged: {text}");
    assert!(
        text.lines().all(|l| !l.contains("FORGED")
            || failures.contains(&l)
            || l.contains("action=\"login\"")),
        "{text}"
    );
    for line in failures {
        assert!(
            line.contains("login failed") || line.contains("client authentication failed"),
            "the name stays inside its own log line: {line:?}"
        );
        assert!(!line.contains('\r'), "no raw CR in {line:?}");
    }
}

#[tokio::test]
async fn a_burst_of_concurrent_guesses_is_limited_like_a_sequence() {
    let w = world(config()).await;
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let request = w
            .http
            .post(format!("{}/login", w.iss))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("username", "alice"), ("password", "nope")]));
        burst.spawn(async move { request.send().await.expect("issuer answers").status() });
    }
    let mut checked = 0;
    while let Some(status) = burst.join_next().await {
        match status.unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    // A sequence gets five free failures and a sixth that locks the name.
    assert!(
        checked <= 6,
        "{checked} of 64 concurrent guesses were checked"
    );
    let (status, body) = w.login("alice", "alice-password", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
}

#[tokio::test]
async fn a_strangers_failures_from_one_source_do_not_lock_out_the_owner_from_another() {
    let w = world(config()).await;
    // All of 127.0.0.0/8 is loopback: the stranger speaks from 127.0.0.2,
    // the owner (the resource server, alice) from 127.0.0.1.
    let stranger = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let client_grant = [("grant_type", GRANT_CLIENT_CREDENTIALS)];
    let login_with = |password| [("username", "alice"), ("password", password)];
    let mut last = (StatusCode::OK, StatusCode::OK);
    for _ in 0..10 {
        let wrong = Some(("orders-service", "guess"));
        last.0 = w
            .post_via(&stranger, "/token", &client_grant, wrong)
            .await
            .0;
        last.1 = w
            .post_via(&stranger, "/login", &login_with("guess"), None)
            .await
            .0;
    }
    assert_eq!(
        last.0,
        StatusCode::TOO_MANY_REQUESTS,
        "the stranger is limited"
    );
    assert_eq!(
        last.1,
        StatusCode::TOO_MANY_REQUESTS,
        "the stranger is limited"
    );

    let (status, body) = w
        .client_token("orders-service", "orders-secret", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(w.introspect(&token_of(&body)).await["active"], true);
    w.alice().await;

    // The stranger stays limited, even with the right secret: a lock that
    // let the right secret through would answer every guess.
    let right = Some(("orders-service", "orders-secret"));
    let (status, _) = w.post_via(&stranger, "/token", &client_grant, right).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _) = w
        .post_via(&stranger, "/login", &login_with("alice-password"), None)
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}
