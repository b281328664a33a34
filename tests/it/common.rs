//! What every surface shares: a real issuer JWKS server, the protected
//! HTTP test service on 127.0.0.1 with port 0, and the helpers for
//! requests, the clock, base64url, tokens and captured logs.
//!
//! The examples' test binary includes this file too (by path, as its
//! `common::shared`), so each helper exists once in the repository.
//!
//! Nothing here is process-wide: all tests share one process, so servers,
//! clients and log subscribers belong to the test (and runtime) that made
//! them.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use authlayer::Verifier;
use authlayer::test_util::{TestIssuer, TestServer, TokenBuilder};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub const AUDIENCE: &str = "urn:orders";

/// Every algorithm the crate verifies, the nine asymmetric ones (the
/// verifier's default allow-list) first.
pub const EVERY_ALGORITHM: [authlayer::Algorithm; 12] = {
    use authlayer::Algorithm::{
        ES256, ES384, EdDSA, HS256, HS384, HS512, PS256, PS384, PS512, RS256, RS384, RS512,
    };
    [
        RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, HS256, HS384, HS512,
    ]
};

pub struct Setup {
    pub issuer: TestIssuer,
    pub server: TestServer,
    pub verifier: Verifier,
}

/// A `TestIssuer` served on loopback and a verifier that found its keys by
/// OIDC discovery.
pub async fn setup() -> Setup {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let verifier = Verifier::builder()
        .issuer(server.issuer_url())
        .audience(AUDIENCE)
        .build()
        .await
        .expect("verifier builds against the test issuer");
    Setup {
        issuer,
        server,
        verifier,
    }
}

/// A token builder of `issuer` for the orders services' audience.
pub fn orders_token(issuer: &TestIssuer) -> TokenBuilder {
    issuer.token().audience(AUDIENCE)
}

/// Now, in seconds since the Unix epoch (a JWT `NumericDate`).
pub fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    i64::try_from(secs).expect("time fits i64")
}

/// base64url without padding, as in a JWS.
pub fn b64(data: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// The bytes of base64url text without padding (strict: no padding, no
/// other alphabet, canonical trailing bits).
pub fn b64_decode(text: impl AsRef<[u8]>) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(text)
}

/// `GET url`, with `Authorization: Bearer <token>` when a token is given.
///
/// Takes the test's own client: a client's pooled connections belong to the
/// runtime of the test that opened them.
pub async fn http_get(http: &reqwest::Client, url: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// The `WWW-Authenticate` challenge of a response.
pub fn challenge(res: &reqwest::Response) -> String {
    res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The library's own test service: an axum router serving the routes of
/// the `orders` example, built here from the public API so that the
/// library's tests compile no example source.
///
/// `GET /health` (no token: the verifier's health as JSON, 503 when not
/// ready), `GET /orders/{id}` (scope `orders:read`: the id and the owner),
/// `POST /orders` (scope `orders:write`: 201), `GET /me` (any valid token:
/// the verified claims), `GET /admin/orders` (role `admin`) and
/// `GET /tenants/{tenant}/orders/{id}` (scope `orders:read`, and the
/// token's tenant must be `{tenant}`).
pub fn orders_app(verifier: Verifier) -> axum::Router {
    use authlayer::{
        Claims, RequireRolesLayer, RequireScopesLayer, RequireTenantLayer, VerifyLayer,
    };
    use axum::Json;
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use serde_json::{Value, json};

    async fn health(State(verifier): State<Verifier>) -> (StatusCode, Json<Value>) {
        let health = verifier.health();
        let (status, text) = if health.ready {
            (StatusCode::OK, "ok")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        };
        (status, Json(json!({"status": text, "auth": health})))
    }
    async fn get_order(claims: Claims, Path(id): Path<u64>) -> Json<Value> {
        Json(json!({"id": id, "owner": claims.sub()}))
    }
    async fn create_order(claims: Claims, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
        let order = json!({"id": 42, "order": body, "owner": claims.sub()});
        (StatusCode::CREATED, Json(order))
    }
    async fn me(claims: Claims) -> Json<Claims> {
        Json(claims)
    }

    let protected = axum::Router::new()
        .route(
            "/orders/{id}",
            get(get_order).route_layer(RequireScopesLayer::all(["orders:read"])),
        )
        .route(
            "/orders",
            post(create_order).route_layer(RequireScopesLayer::all(["orders:write"])),
        )
        .route("/me", get(me))
        .route(
            "/admin/orders",
            get(|| async { Json(json!([])) }).route_layer(RequireRolesLayer::all(["admin"])),
        )
        .route(
            "/tenants/{tenant}/orders/{id}",
            get(|Path((tenant, id)): Path<(String, u64)>| async move {
                Json(json!({"tenant": tenant, "id": id}))
            })
            .route_layer(RequireTenantLayer::path_segment(1))
            .route_layer(RequireScopesLayer::all(["orders:read"])),
        )
        .layer(VerifyLayer::new(verifier.clone()));
    axum::Router::new()
        .route("/health", get(health))
        .with_state(verifier)
        .merge(protected)
}

/// Serves an axum router on 127.0.0.1:0.
pub async fn serve_axum(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A tracing subscriber capturing formatted events into a buffer.
#[derive(Clone, Default)]
pub struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Captures the events of this thread until the guard drops. Never a
    /// global subscriber: the other tests of the process run on other
    /// threads, and their events must neither reach this buffer nor depend
    /// on it.
    ///
    /// # Panics
    ///
    /// On a multi-thread runtime, whose workers this guard does not cover.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            assert_eq!(
                runtime.runtime_flavor(),
                tokio::runtime::RuntimeFlavor::CurrentThread,
                "LogBuffer sees this thread's events only: use a current-thread runtime"
            );
        }
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A DPoP client: an ES256 key pair (a `TestIssuer`'s) that signs proofs
/// (RFC 9449 §4.2) and knows its key's RFC 7638 thumbprint, for tokens
/// bound to it (`cnf.jkt`).
pub struct DpopClient {
    keys: TestIssuer,
}

impl Default for DpopClient {
    fn default() -> Self {
        Self::new()
    }
}

impl DpopClient {
    pub fn new() -> Self {
        Self {
            keys: TestIssuer::new("dpop-client"),
        }
    }

    /// The public JWK as a client sends it (no `kid`, no `use`).
    pub fn jwk(&self) -> serde_json::Value {
        let mut jwk = self
            .keys
            .jwk(authlayer::test_util::kids::EC)
            .expect("the EC key");
        let map = jwk.as_object_mut().unwrap();
        map.remove("kid");
        map.remove("use");
        map.remove("alg");
        jwk
    }

    /// The RFC 7638 thumbprint of the key: SHA-256 of the required members
    /// in lexicographic order, without whitespace.
    pub fn jkt(&self) -> String {
        let jwk = self.jwk();
        let canonical = format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["crv"].as_str().unwrap(),
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        );
        b64(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.as_bytes(),
        ))
    }

    /// A fresh proof for `method url` presenting `token`.
    pub fn proof(&self, method: &str, url: &str, token: &str) -> String {
        self.proof_with(method, url, token, |_, _| {})
    }

    /// A proof whose header and claims `edit` may change first.
    pub fn proof_with(
        &self,
        method: &str,
        url: &str,
        token: &str,
        edit: impl FnOnce(&mut serde_json::Value, &mut serde_json::Value),
    ) -> String {
        use std::sync::atomic::{AtomicU64, Ordering};
        static JTI: AtomicU64 = AtomicU64::new(0);
        let mut header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()});
        let mut claims = serde_json::json!({
            "jti": format!("proof-{}-{}", std::process::id(), JTI.fetch_add(1, Ordering::Relaxed)),
            "htm": method,
            "htu": url,
            "iat": now(),
            "ath": ath(token),
        });
        edit(&mut header, &mut claims);
        self.keys
            .sign_raw(
                header.to_string().as_bytes(),
                claims.to_string().as_bytes(),
                authlayer::test_util::kids::EC,
                authlayer::Algorithm::ES256,
            )
            .expect("ES256 signs")
    }
}

/// `ath`: base64url(SHA-256(token)).
pub fn ath(token: &str) -> String {
    b64(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        token.as_bytes(),
    ))
}
