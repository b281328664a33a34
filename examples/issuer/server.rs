//! The HTTP surface: the shared state, the routes and [`start`].

mod client_auth;
mod error;
mod grants;
mod introspection;
mod metadata;
mod params;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Response;
use axum::routing::{get, post};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::audit::Audit;
use super::config::{Client, Config, User};
use super::credentials::{Backoff, ClientCache, Decoys, Hasher};
use super::exchange::Upstreams;
use super::keys::{KeyError, KeyManager, Rotation, now_ms};
use super::store::{MemoryStore, Store};
use error::OAuthError;

/// The target of every log line the handlers write, whichever file they
/// live in: log lines and `RUST_LOG` filters name `issuer::server`.
const LOG_TARGET: &str = module_path!();

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

/// What every handler shares: the configuration, the keys, the store and
/// the credential checks.
struct AppState {
    issuer: String,
    config: Config,
    keys: Arc<KeyManager>,
    store: Arc<dyn Store>,
    users: HashMap<String, User>,
    clients: HashMap<String, Client>,
    user_decoys: Decoys,
    client_decoys: Decoys,
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
    let user_decoys = Decoys::new(config.users.iter().map(|u| u.password_hash.as_str()));
    let client_decoys = Decoys::new(config.clients.iter().map(|c| c.secret_hash.as_str()));
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
        user_decoys,
        client_decoys,
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
        // SECURITY: the peer address (`ConnectInfo`) feeds the per-source
        // back-off; the limits bound slow and piled-up connections.
        super::limits::serve(listener, app, super::limits::Limits::default(), async {
            let _ = rx.await;
        })
        .await
    });
    let purge_store = Arc::clone(&state.store);
    let background = vec![
        tokio::spawn(Arc::clone(&keys).run(state.config.rotate_every, issuer.clone())),
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

/// Writes the request's one audit record from its outcome, and passes the
/// outcome on.
fn audited(audit: &Audit, result: Result<Response, OAuthError>) -> Result<Response, OAuthError> {
    match &result {
        Ok(res) => audit.record("allow", "granted", Some(res.status().as_u16())),
        Err(e) => audit.record("deny", e.code(), Some(e.status().as_u16())),
    }
    result
}

fn router(state: Arc<AppState>) -> Router {
    let metrics = state.config.metrics.clone();
    let router = Router::new()
        .route("/login", post(grants::login))
        .route("/refresh", post(grants::refresh))
        .route("/token", post(grants::token))
        .route("/introspect", post(introspection::introspect))
        .route("/revoke", post(introspection::revoke))
        .route("/.well-known/jwks.json", get(metadata::jwks))
        .route("/.well-known/openid-configuration", get(metadata::metadata))
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::metadata),
        )
        .route("/admin/rotate", post(metadata::admin_rotate))
        .route("/admin/keys", get(metadata::admin_keys))
        .route("/health", get(metadata::health))
        // SECURITY (DoS): every request here is a few short parameters.
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state);
    match metrics {
        Some(handle) => router.merge(super::observability::metrics_route(handle, || {})),
        None => router,
    }
}
