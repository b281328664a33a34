//! The HTTP surface: routes, request parsing, client authentication,
//! grants, introspection, revocation, metadata — and [`start`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::config::{
    Client, Config, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN, GRANT_TOKEN_EXCHANGE, User,
};
use super::credentials::{Backoff, ClientCache, Hasher, decoy_like};
use super::exchange::{ExchangeError, Upstreams};
use super::keys::{KeyError, KeyManager, Rotation, now_ms};
use super::store::{Family, Grant, MemoryStore, Redeemed, Store, TokenHash};
use super::tokens::{Minted, mint, random_token};

const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// A running issuer. Dropping it stops the server and its timers.
pub struct Running {
    addr: SocketAddr,
    state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    background: Vec<JoinHandle<()>>,
}

impl Running {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The issuer identifier (`iss`), also its base URL.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// Starts a key rotation with the configured lead (what `SIGHUP` does).
    pub async fn rotate(&self) -> Result<Rotation, KeyError> {
        self.state.keys.rotate(self.state.keys.lead()).await
    }

    /// Stops accepting requests, lets running ones finish, stops the timers.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for task in &self.background {
            task.abort();
        }
        match self.server.take() {
            Some(server) => server
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e))),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for task in &self.background {
            task.abort();
        }
    }
}

struct AppState {
    issuer: String,
    config: Config,
    keys: Arc<KeyManager>,
    store: Arc<dyn Store>,
    users: HashMap<String, User>,
    clients: HashMap<String, Client>,
    user_decoy: String,
    client_decoy: String,
    hasher: Hasher,
    backoff: Backoff,
    client_cache: ClientCache,
    upstreams: Option<Upstreams>,
}

/// Starts the issuer with the in-memory store.
pub async fn start(config: Config) -> Result<Running, Box<dyn std::error::Error + Send + Sync>> {
    start_with_store(config, Arc::new(MemoryStore::default())).await
}

/// Starts the issuer on 127.0.0.1 with `store` for its state.
pub async fn start_with_store(
    mut config: Config,
    store: Arc<dyn Store>,
) -> Result<Running, Box<dyn std::error::Error + Send + Sync>> {
    config.validate()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", config.port))?;
    let addr = listener.local_addr()?;
    let issuer = config
        .issuer_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    config.issuer_url = Some(issuer.clone());
    config.validate()?;

    let keys = KeyManager::open(
        config.key_dir.clone(),
        config.signing_alg,
        config.access_ttl,
        config.retire_grace,
        config.publish_lead,
    )
    .await?;
    let upstreams = Upstreams::build(&config.upstreams).await?;

    // Decoys cost what a real check of the same kind costs (see credentials).
    let default_model = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
    let user_decoy = decoy_like(
        config
            .users
            .first()
            .map_or(default_model, |u| u.password_hash.as_str()),
    );
    let client_decoy = decoy_like(
        config
            .clients
            .first()
            .map_or(default_model, |c| c.secret_hash.as_str()),
    );
    let state = Arc::new(AppState {
        issuer: issuer.clone(),
        users: config
            .users
            .iter()
            .map(|u| (u.username.clone(), u.clone()))
            .collect(),
        clients: config
            .clients
            .iter()
            .map(|c| (c.client_id.clone(), c.clone()))
            .collect(),
        user_decoy,
        client_decoy,
        hasher: Hasher::new(
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get) * 2,
        ),
        backoff: Backoff::new(5, Duration::from_secs(15 * 60)),
        client_cache: ClientCache::new(Duration::from_secs(5 * 60)),
        keys: Arc::clone(&keys),
        store,
        upstreams,
        config,
    });

    let (tx, rx) = oneshot::channel::<()>();
    let app = router(Arc::clone(&state));
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    let purge_store = Arc::clone(&state.store);
    let background = vec![
        tokio::spawn(Arc::clone(&keys).run(state.config.rotate_every)),
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                purge_store.purge(now_ms() / 1000).await;
            }
        }),
    ];
    tracing::info!(
        issuer = %issuer,
        alg = state.config.signing_alg.name(),
        users = state.users.len(),
        clients = state.clients.len(),
        upstreams = state.config.upstreams.len(),
        "issuer started"
    );
    Ok(Running {
        addr,
        state,
        shutdown: Some(tx),
        server: Some(server),
        background,
    })
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/refresh", post(refresh))
        .route("/token", post(token))
        .route("/introspect", post(introspect))
        .route("/revoke", post(revoke))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/openid-configuration", get(metadata))
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/admin/rotate", post(admin_rotate))
        .route("/admin/keys", get(admin_keys))
        .route("/health", get(health))
        // SAFETY (DoS): every request here is a few short parameters.
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

// ---------------------------------------------------------------------------
// Errors (RFC 6749 §5.2)

#[derive(Debug)]
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    retry_after: Option<Duration>,
    basic_challenge: bool,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            retry_after: None,
            basic_challenge: false,
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn invalid_client(basic: bool) -> Self {
        Self {
            basic_challenge: true,
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                if basic {
                    "client authentication failed"
                } else {
                    "client authentication failed or missing (use HTTP Basic or client_id + client_secret)"
                },
            )
        }
    }

    fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    fn invalid_target(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_target", description)
    }

    fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", description)
    }

    fn too_many(retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "too many failed attempts; retry later",
            )
        }
    }

    fn unavailable(description: impl Into<String>) -> Self {
        Self {
            retry_after: Some(Duration::from_secs(5)),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                description,
            )
        }
    }
}

impl From<KeyError> for OAuthError {
    fn from(e: KeyError) -> Self {
        tracing::error!(error = %e, "cannot issue a token");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the issuer cannot sign tokens right now",
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        let mut res = no_store((self.status, Json(body)).into_response());
        if self.basic_challenge {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"authlayer-issuer\""),
            );
        }
        if let Some(after) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

/// Token responses and errors must not be cached (RFC 6749 §5.1).
fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// At most this many characters of a client-supplied value in a message.
fn shorten(value: &str) -> String {
    value.chars().take(64).collect()
}

// ---------------------------------------------------------------------------
// Parameters: form (OAuth's encoding) or JSON (convenient with curl)

struct Params(HashMap<String, String>);

const MAX_PARAMS: usize = 32;

impl Params {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let mut params = HashMap::new();
        let mut add = |name: String, value: String| {
            if params.len() >= MAX_PARAMS {
                return Err(OAuthError::invalid_request("too many parameters"));
            }
            // RFC 6749 §3.1: a parameter without a value counts as absent, and
            // none may be given twice.
            if value.is_empty() {
                return Ok(());
            }
            if params.insert(name.clone(), value).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {:?} is given more than once",
                    shorten(&name)
                )));
            }
            Ok(())
        };
        if body.is_empty() {
            return Ok(Self(params));
        }
        match content_type.as_str() {
            "application/json" => {
                let object: Map<String, Value> = serde_json::from_slice(body).map_err(|_| {
                    OAuthError::invalid_request("the body is not a JSON object of strings")
                })?;
                for (name, value) in object {
                    let Value::String(value) = value else {
                        return Err(OAuthError::invalid_request(format!(
                            "parameter {:?} must be a string",
                            shorten(&name)
                        )));
                    };
                    add(name, value)?;
                }
            }
            "application/x-www-form-urlencoded" => {
                for (name, value) in url::form_urlencoded::parse(body) {
                    add(name.into_owned(), value.into_owned())?;
                }
            }
            _ => {
                return Err(OAuthError::invalid_request(
                    "send parameters as application/x-www-form-urlencoded or application/json",
                ));
            }
        }
        Ok(Self(params))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter {name:?}")))
    }
}

/// Scopes to grant: all allowed ones when none are requested, else the
/// requested ones, each of which must be allowed.
fn choose_scopes(requested: Option<&str>, allowed: &[String]) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested else {
        return Ok(allowed.to_vec());
    };
    let mut scopes: Vec<String> = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == scope) {
            return Err(OAuthError::invalid_scope(format!(
                "scope {:?} is not available here",
                shorten(scope)
            )));
        }
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    Ok(scopes)
}

/// The audience: the requested `audience` or `resource` (RFC 8693 / 8707),
/// which must be one the principal may have, else the default one.
fn choose_audience(
    p: &Params,
    allowed: Option<&[String]>,
    default: &str,
) -> Result<String, OAuthError> {
    let default_list = [default.to_owned()];
    let allowed = allowed.unwrap_or(&default_list);
    let requested = match (p.get("audience"), p.get("resource")) {
        (Some(a), Some(r)) if a != r => {
            return Err(OAuthError::invalid_request(
                "audience and resource name different targets; give one",
            ));
        }
        (a, r) => a.or(r),
    };
    match requested {
        Some(wanted) => allowed
            .iter()
            .find(|a| *a == wanted)
            .cloned()
            .ok_or_else(|| {
                OAuthError::invalid_target(format!(
                    "audience {:?} is not available here",
                    shorten(wanted)
                ))
            }),
        None => allowed
            .iter()
            .find(|a| *a == default)
            .or_else(|| allowed.first())
            .cloned()
            .ok_or_else(|| OAuthError::invalid_target("no audience is available here")),
    }
}

fn token_response(
    minted: &Minted,
    scopes: &[String],
    refresh_token: Option<&str>,
    issued_token_type: Option<&str>,
) -> Response {
    let mut body = json!({
        "access_token": minted.token,
        "token_type": "Bearer",
        "expires_in": minted.expires_in,
        "scope": scopes.join(" "),
    });
    if let Some(refresh) = refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    if let Some(kind) = issued_token_type {
        body["issued_token_type"] = json!(kind);
    }
    no_store(Json(body).into_response())
}

// ---------------------------------------------------------------------------
// Client authentication (RFC 6749 §2.3.1)

/// Decodes application/x-www-form-urlencoded text (`%XX`, `+`).
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `(client_id, secret, via_basic)` if the request carries client credentials.
fn client_credentials(
    headers: &HeaderMap,
    p: &Params,
) -> Result<Option<(String, String, bool)>, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| OAuthError::invalid_client(true))?;
            let (scheme, creds) = value.split_once(' ').unwrap_or((value, ""));
            if scheme.eq_ignore_ascii_case("basic") {
                let decoded = STANDARD
                    .decode(creds.trim())
                    .ok()
                    .and_then(|d| String::from_utf8(d).ok())
                    .ok_or_else(|| OAuthError::invalid_client(true))?;
                let (id, secret) = decoded
                    .split_once(':')
                    .ok_or_else(|| OAuthError::invalid_client(true))?;
                Some((
                    form_decode(id).ok_or_else(|| OAuthError::invalid_client(true))?,
                    form_decode(secret).ok_or_else(|| OAuthError::invalid_client(true))?,
                ))
            } else {
                None
            }
        }
        None => None,
    };
    let post = match (p.get("client_id"), p.get("client_secret")) {
        (Some(id), Some(secret)) => Some((id.to_owned(), secret.to_owned())),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "client_secret without client_id",
            ));
        }
        _ => None,
    };
    match (basic, post) {
        // SAFETY (RFC 6749 §2.3): one method per request, so no confusion
        // about which client is speaking.
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "use one client authentication method, not two",
        )),
        (Some((id, secret)), None) => Ok(Some((id, secret, true))),
        (None, Some((id, secret))) => Ok(Some((id, secret, false))),
        (None, None) => Ok(None),
    }
}

/// The authenticated client, `None` if the request has no client
/// credentials, or `invalid_client` if they are wrong.
async fn authenticate<'a>(
    s: &'a AppState,
    headers: &HeaderMap,
    p: &Params,
) -> Result<Option<&'a Client>, OAuthError> {
    let Some((id, secret, basic)) = client_credentials(headers, p)? else {
        return Ok(None);
    };
    if id.len() > 256 || secret.len() > 1024 {
        return Err(OAuthError::invalid_client(basic));
    }
    let backoff_key = format!("client:{id}");
    s.backoff
        .check(&backoff_key)
        .map_err(OAuthError::too_many)?;
    let client = s.clients.get(&id);
    if let Some(c) = client
        && s.client_cache.hit(&id, &secret)
    {
        return Ok(Some(c));
    }
    // SAFETY: unknown clients are checked against a decoy of equal cost,
    // so response time does not reveal which client ids exist.
    let phc = client.map_or_else(|| s.client_decoy.clone(), |c| c.secret_hash.clone());
    let ok = s.hasher.verify(secret.clone(), phc).await;
    match client {
        Some(c) if ok => {
            s.backoff.success(&backoff_key);
            s.client_cache.remember(&id, &secret);
            Ok(Some(c))
        }
        _ => {
            s.backoff.failure(&backoff_key);
            tracing::warn!(client_id = %shorten(&id), "client authentication failed");
            Err(OAuthError::invalid_client(basic))
        }
    }
}

async fn require_client<'a>(
    s: &'a AppState,
    headers: &HeaderMap,
    p: &Params,
) -> Result<&'a Client, OAuthError> {
    authenticate(s, headers, p)
        .await?
        .ok_or_else(|| OAuthError::invalid_client(false))
}

// ---------------------------------------------------------------------------
// Grants

const BAD_CREDENTIALS: &str = "invalid username or password";
const BAD_REFRESH: &str = "the refresh token is invalid, expired, revoked or already used";

/// `POST /login`: username + password → access and refresh token.
async fn login(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let p = Params::parse(&headers, &body)?;
    let username = p.require("username")?;
    let password = p.require("password")?;
    let denied = || OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_grant", BAD_CREDENTIALS);
    if username.len() > 256 || password.len() > 1024 {
        return Err(denied());
    }
    let backoff_key = format!("user:{username}");
    s.backoff
        .check(&backoff_key)
        .map_err(OAuthError::too_many)?;
    let user = s.users.get(username);
    // SAFETY: one Argon2 check whether or not the user exists (decoy hash
    // of the same cost), compared in constant time by Argon2, and one
    // answer for every failure: neither timing nor message tells which
    // part was wrong.
    let phc = user.map_or_else(|| s.user_decoy.clone(), |u| u.password_hash.clone());
    let ok = s.hasher.verify(password.to_owned(), phc).await;
    let Some(user) = user.filter(|_| ok) else {
        s.backoff.failure(&backoff_key);
        tracing::warn!(username = %shorten(username), "login failed");
        return Err(denied());
    };
    s.backoff.success(&backoff_key);
    let grant = Grant {
        sub: user.username.clone(),
        client_id: s.config.login_client_id.clone(),
        scopes: choose_scopes(p.get("scope"), &user.scopes)?,
        audience: choose_audience(&p, user.audiences.as_deref(), &s.config.default_audience)?,
        roles: user.roles.clone(),
        tenant: user.tenant.clone(),
    };
    let refresh_token = random_token(32)?;
    let family = Family {
        id: random_token(12)?,
        grant: grant.clone(),
        expires_at: now_ms() / 1000
            + i64::try_from(s.config.refresh_ttl.as_secs()).unwrap_or(i64::MAX / 2),
    };
    s.store
        .create_family(family.clone(), TokenHash::of(&refresh_token))
        .await;
    let minted = mint(&s.keys, &s.issuer, &grant, s.config.access_ttl)?;
    s.store
        .record_access(family.id.clone(), minted.jti.clone(), minted.exp)
        .await;
    tracing::info!(sub = %grant.sub, family = %family.id, scope = %grant.scopes.join(" "), aud = %grant.audience, "login");
    Ok(token_response(
        &minted,
        &grant.scopes,
        Some(&refresh_token),
        None,
    ))
}

/// `POST /refresh`: the refresh-token grant without `grant_type`.
async fn refresh(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let p = Params::parse(&headers, &body)?;
    let client = authenticate(&s, &headers, &p).await?;
    refresh_grant(&s, &p, client).await
}

async fn refresh_grant(
    s: &AppState,
    p: &Params,
    client: Option<&Client>,
) -> Result<Response, OAuthError> {
    let presented = TokenHash::of(p.require("refresh_token")?);
    let now = now_ms() / 1000;
    // Checks that need the family come before the token is consumed, so a
    // bad request does not burn a good token.
    let mut scopes = None;
    if let Some(family) = s.store.live_family(presented, now).await {
        // SAFETY (RFC 6749 §6): a refresh token is bound to its client:
        // a confidential client's token needs that client's credentials.
        let owner = match client {
            Some(c) => c.client_id == family.grant.client_id,
            None => family.grant.client_id == s.config.login_client_id,
        };
        if !owner {
            return Err(OAuthError::invalid_grant(BAD_REFRESH));
        }
        // RFC 6749 §6: the new access token may be narrower, never wider.
        scopes = Some(choose_scopes(p.get("scope"), &family.grant.scopes)?);
    }
    let next = random_token(32)?;
    match s.store.rotate(presented, TokenHash::of(&next), now).await {
        Redeemed::Rotated(family) => {
            let grant = Grant {
                scopes: scopes.unwrap_or_else(|| family.grant.scopes.clone()),
                ..family.grant.clone()
            };
            let minted = mint(&s.keys, &s.issuer, &grant, s.config.access_ttl)?;
            s.store
                .record_access(family.id.clone(), minted.jti.clone(), minted.exp)
                .await;
            tracing::info!(sub = %grant.sub, family = %family.id, "refresh token rotated");
            Ok(token_response(&minted, &grant.scopes, Some(&next), None))
        }
        Redeemed::Reused(family) => {
            tracing::warn!(
                sub = %family.grant.sub,
                family = %family.id,
                "refresh token reuse detected: the whole family is revoked"
            );
            Err(OAuthError::invalid_grant(BAD_REFRESH))
        }
        Redeemed::Unknown | Redeemed::Expired | Redeemed::Revoked => {
            Err(OAuthError::invalid_grant(BAD_REFRESH))
        }
    }
}

/// `POST /token`: the OAuth 2.0 token endpoint.
async fn token(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let p = Params::parse(&headers, &body)?;
    let grant_type = p.require("grant_type")?;
    let client = authenticate(&s, &headers, &p).await?;
    let may = |c: &Client, grant: &str| {
        if c.grant_types.iter().any(|g| g == grant) {
            Ok(())
        } else {
            Err(OAuthError::unauthorized_client(format!(
                "client {:?} may not use grant type {grant:?}",
                c.client_id
            )))
        }
    };
    match grant_type {
        GRANT_CLIENT_CREDENTIALS => {
            let c = client.ok_or_else(|| OAuthError::invalid_client(false))?;
            may(c, grant_type)?;
            let grant = Grant {
                sub: c.client_id.clone(),
                client_id: c.client_id.clone(),
                scopes: choose_scopes(p.get("scope"), &c.scopes)?,
                audience: choose_audience(&p, c.audiences.as_deref(), &s.config.default_audience)?,
                roles: c.roles.clone(),
                tenant: c.tenant.clone(),
            };
            let minted = mint(&s.keys, &s.issuer, &grant, s.config.access_ttl)?;
            tracing::info!(client_id = %c.client_id, scope = %grant.scopes.join(" "), aud = %grant.audience, "client credentials");
            // RFC 6749 §4.4.3: no refresh token for client credentials.
            Ok(token_response(&minted, &grant.scopes, None, None))
        }
        GRANT_REFRESH_TOKEN => {
            if let Some(c) = client {
                may(c, grant_type)?;
            }
            refresh_grant(&s, &p, client).await
        }
        GRANT_TOKEN_EXCHANGE => {
            let c = client.ok_or_else(|| OAuthError::invalid_client(false))?;
            may(c, grant_type)?;
            exchange_grant(&s, &p, c).await
        }
        other => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!(
                "grant_type {:?} is not supported (client_credentials, refresh_token, {GRANT_TOKEN_EXCHANGE})",
                shorten(other)
            ),
        )),
    }
}

/// RFC 8693 token exchange: an upstream issuer's token → a local token.
async fn exchange_grant(s: &AppState, p: &Params, client: &Client) -> Result<Response, OAuthError> {
    let Some(upstreams) = &s.upstreams else {
        return Err(OAuthError::invalid_request(
            "token exchange needs trusted upstream issuers (UPSTREAMS_FILE); none is configured",
        ));
    };
    let subject_token = p.require("subject_token")?;
    let kind = p.require("subject_token_type")?;
    if kind != TOKEN_TYPE_ACCESS && kind != TOKEN_TYPE_JWT {
        return Err(OAuthError::invalid_request(format!(
            "subject_token_type must be {TOKEN_TYPE_ACCESS} or {TOKEN_TYPE_JWT}"
        )));
    }
    if p.get("requested_token_type")
        .is_some_and(|t| t != TOKEN_TYPE_ACCESS)
    {
        return Err(OAuthError::invalid_request(format!(
            "only {TOKEN_TYPE_ACCESS} can be issued"
        )));
    }
    if p.get("actor_token").is_some() {
        return Err(OAuthError::invalid_request(
            "actor_token (delegation) is not supported",
        ));
    }
    let identity = upstreams
        .exchange(subject_token)
        .await
        .map_err(|e| match e {
            ExchangeError::Unavailable => {
                OAuthError::unavailable("the upstream issuer's keys are unavailable right now")
            }
            // RFC 8693 §2.2.2: an unacceptable subject token is invalid_request.
            ExchangeError::Rejected(reason) => {
                OAuthError::invalid_request(format!("subject_token is not acceptable: {reason}"))
            }
        })?;
    // SAFETY: the exchanging client can never obtain more than it is
    // registered for, whatever the upstream identity maps to.
    let allowed: Vec<String> = identity
        .scopes
        .iter()
        .filter(|scope| client.scopes.contains(scope))
        .cloned()
        .collect();
    let grant = Grant {
        sub: identity.sub.clone(),
        client_id: client.client_id.clone(),
        scopes: choose_scopes(p.get("scope"), &allowed)?,
        audience: choose_audience(p, client.audiences.as_deref(), &s.config.default_audience)?,
        roles: identity.roles.clone(),
        tenant: identity.tenant.clone(),
    };
    let minted = mint(&s.keys, &s.issuer, &grant, s.config.access_ttl)?;
    tracing::info!(
        upstream = %identity.upstream,
        sub = %grant.sub,
        client_id = %client.client_id,
        scope = %grant.scopes.join(" "),
        "token exchange"
    );
    Ok(token_response(
        &minted,
        &grant.scopes,
        None,
        Some(TOKEN_TYPE_ACCESS),
    ))
}

// ---------------------------------------------------------------------------
// Introspection (RFC 7662) and revocation (RFC 7009)

fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

/// The claims of one of our access tokens that is still valid (signature,
/// issuer, expiry, not revoked).
async fn live_access_token(s: &AppState, token: &str) -> Option<Map<String, Value>> {
    let claims = s.keys.verify_jwt(token)?;
    let now = now_ms() / 1000;
    if claims.get("iss").and_then(Value::as_str) != Some(s.issuer.as_str())
        || claims
            .get("exp")
            .and_then(Value::as_i64)
            .is_none_or(|exp| exp <= now)
    {
        return None;
    }
    let jti = claims.get("jti").and_then(Value::as_str)?.to_owned();
    if s.store.is_access_revoked(jti).await {
        return None;
    }
    Some(claims)
}

/// `POST /introspect`: whether a token is active, and its claims.
async fn introspect(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let p = Params::parse(&headers, &body)?;
    let client = require_client(&s, &headers, &p).await?;
    let token = p.require("token")?;
    let inactive = || no_store(Json(json!({"active": false})).into_response());

    if looks_like_jwt(token) {
        let Some(mut claims) = live_access_token(&s, token).await else {
            return Ok(inactive());
        };
        // SAFETY (RFC 7662 §4): a client learns about a token only if it is
        // one of its audiences or the token was issued to it.
        let audiences = client
            .audiences
            .clone()
            .unwrap_or_else(|| vec![s.config.default_audience.clone()]);
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => audiences.contains(a),
            Some(Value::Array(list)) => list
                .iter()
                .any(|a| a.as_str().is_some_and(|a| audiences.iter().any(|x| x == a))),
            _ => false,
        };
        let own =
            claims.get("client_id").and_then(Value::as_str) == Some(client.client_id.as_str());
        if !aud_ok && !own {
            return Ok(inactive());
        }
        claims.insert("active".into(), json!(true));
        claims.insert("token_type".into(), json!("Bearer"));
        return Ok(no_store(Json(Value::Object(claims)).into_response()));
    }

    let now = now_ms() / 1000;
    match s.store.live_family(TokenHash::of(token), now).await {
        Some(family) if family.grant.client_id == client.client_id => Ok(no_store(
            Json(json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": family.grant.client_id,
                "sub": family.grant.sub,
                "scope": family.grant.scopes.join(" "),
                "exp": family.expires_at,
                "iss": s.issuer,
            }))
            .into_response(),
        )),
        _ => Ok(inactive()),
    }
}

/// `POST /revoke`: revoke an access token (until it expires) or a refresh
/// token (with its whole family). Unknown tokens are fine (RFC 7009 §2.2).
async fn revoke(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let p = Params::parse(&headers, &body)?;
    let client = authenticate(&s, &headers, &p).await?;
    let token = p.require("token")?;
    let done = || no_store(StatusCode::OK.into_response());
    // SAFETY (RFC 7009 §2.1): tokens of the public login client may be
    // revoked by whoever holds them; a confidential client's tokens only by
    // that client.
    let may_revoke = |owner: &str| {
        owner == s.config.login_client_id || client.is_some_and(|c| c.client_id == owner)
    };
    let refused = || OAuthError::unauthorized_client("this token was issued to another client");

    if looks_like_jwt(token) {
        if let Some(claims) = live_access_token(&s, token).await {
            let owner = claims
                .get("client_id")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !may_revoke(owner) {
                return Err(refused());
            }
            if let (Some(jti), Some(exp)) = (
                claims.get("jti").and_then(Value::as_str),
                claims.get("exp").and_then(Value::as_i64),
            ) {
                s.store.revoke_access(jti.to_owned(), exp).await;
                tracing::info!(sub = ?claims.get("sub"), "access token revoked");
            }
        }
        return Ok(done());
    }
    let hash = TokenHash::of(token);
    if let Some(family) = s.store.live_family(hash, now_ms() / 1000).await {
        if !may_revoke(&family.grant.client_id) {
            return Err(refused());
        }
        s.store.revoke_family_of(hash).await;
        tracing::info!(sub = %family.grant.sub, family = %family.id, "refresh token family revoked");
    }
    Ok(done())
}

// ---------------------------------------------------------------------------
// Metadata and keys

/// `GET /.well-known/jwks.json`, with `max-age` and an `ETag`.
async fn jwks(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let body = s.keys.jwks().to_string();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body.as_bytes());
    let etag = format!("\"{}\"", super::keys::hex(&digest.as_ref()[..8]));
    let cache = format!("public, max-age={}", s.config.jwks_max_age.as_secs().max(1));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    };
    for (name, value) in [(header::CACHE_CONTROL, cache), (header::ETAG, etag)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(name, value);
        }
    }
    res
}

/// `GET /.well-known/openid-configuration` (and the RFC 8414 path).
async fn metadata(State(s): State<Arc<AppState>>) -> Response {
    let iss = &s.issuer;
    let mut scopes: Vec<&str> = s
        .config
        .users
        .iter()
        .flat_map(|u| &u.scopes)
        .chain(s.config.clients.iter().flat_map(|c| &c.scopes))
        .map(String::as_str)
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    let auth_methods = ["client_secret_basic", "client_secret_post"];
    let body = json!({
        "issuer": iss,
        "jwks_uri": format!("{iss}/.well-known/jwks.json"),
        "token_endpoint": format!("{iss}/token"),
        "introspection_endpoint": format!("{iss}/introspect"),
        "revocation_endpoint": format!("{iss}/revoke"),
        "grant_types_supported": [GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN, GRANT_TOKEN_EXCHANGE],
        "token_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "scopes_supported": scopes,
        // Required by OIDC Discovery and checked by strict clients; here they
        // describe the keys (this issuer mints access tokens only).
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": s.keys.algorithms(),
        // Not standard: the first-party password login and its refresh.
        "login_endpoint": format!("{iss}/login"),
        "refresh_endpoint": format!("{iss}/refresh"),
    });
    let cache = format!("public, max-age={}", s.config.jwks_max_age.as_secs().max(1));
    let mut res = Json(body).into_response();
    if let Ok(value) = HeaderValue::from_str(&cache) {
        res.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    res
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn require_admin<'a>(
    s: &'a AppState,
    headers: &HeaderMap,
    p: &Params,
) -> Result<&'a Client, OAuthError> {
    let client = require_client(s, headers, p).await?;
    if client.admin {
        Ok(client)
    } else {
        Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            "access_denied",
            "this client is not an admin client",
        ))
    }
}

/// `POST /admin/rotate` (admin client): start a key rotation. Optional
/// `lead` (e.g. `30s`) overrides the publication lead, for emergencies.
async fn admin_rotate(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let p = Params::parse(&headers, &body)?;
    let admin = require_admin(&s, &headers, &p).await?;
    let lead = match p.get("lead") {
        Some(text) => super::config::parse_duration(text).ok_or_else(|| {
            OAuthError::invalid_request("lead must be a duration such as 600, 30s or 10m")
        })?,
        None => s.keys.lead(),
    };
    if lead < s.config.jwks_max_age {
        tracing::warn!(
            lead_ms = lead.as_millis(),
            "rotation lead shorter than the JWKS max-age: downstream services may meet the new key before their next refresh and rely on an unknown-kid refetch"
        );
    }
    let rotation = s.keys.rotate(lead).await?;
    tracing::info!(client_id = %admin.client_id, kid = %rotation.kid, "rotation requested");
    Ok((StatusCode::ACCEPTED, Json(json!(rotation))).into_response())
}

/// `GET /admin/keys` (admin client): where each key stands.
async fn admin_keys(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let p = Params(HashMap::new());
    require_admin(&s, &headers, &p).await?;
    Ok(Json(json!({"keys": s.keys.status()})).into_response())
}
