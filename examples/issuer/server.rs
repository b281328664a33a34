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
use super::config::{Client, Config};
use super::credentials::{Backoff, ClientCache, Decoys, Hasher};
use super::exchange::Upstreams;
use super::keys::{KeyError, KeyManager, Rotation, now_ms};
use super::pg::{Db, PgStore};
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
    /// The database, when the store is PostgreSQL (health, readiness).
    db: Option<Db>,
    clients: HashMap<String, Client>,
    user_decoys: Decoys,
    client_decoys: Decoys,
    hasher: Hasher,
    backoff: Backoff,
    client_cache: ClientCache,
    upstreams: Option<Upstreams>,
}

type StartError = Box<dyn std::error::Error + Send + Sync>;

/// Starts the issuer: on PostgreSQL with `config.database_url`, else with
/// the in-memory store.
pub async fn start(config: Config) -> Result<Running, StartError> {
    match config.database_url.clone() {
        Some(url) => {
            config.validate()?;
            let db = Db::new(&url.0)?;
            db.migrate().await.map_err(|e| format!("database: {e}"))?;
            let store = Arc::new(PgStore::new(db.clone()));
            launch(config, store, Some(db)).await
        }
        None => start_with_store(config, Arc::new(MemoryStore::default())).await,
    }
}

/// Starts the issuer on 127.0.0.1 with `store` for its state (and keys in
/// memory or `KEY_DIR`).
pub async fn start_with_store(
    config: Config,
    store: Arc<dyn Store>,
) -> Result<Running, StartError> {
    launch(config, store, None).await
}

async fn launch(
    mut config: Config,
    store: Arc<dyn Store>,
    db: Option<Db>,
) -> Result<Running, StartError> {
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

    let keys = open_keys(&config, db.as_ref()).await?;
    let upstreams = Upstreams::build(&config.upstreams).await?;

    let (clients, user_hashes) = seed(&config, store.as_ref(), db.as_ref()).await?;
    // Decoys cost what a real check of the same kind costs (see credentials).
    let user_decoys = Decoys::new(user_hashes.iter().map(String::as_str));
    let client_decoys = Decoys::new(clients.iter().map(|c| c.secret_hash.as_str()));
    let state = Arc::new(AppState {
        issuer: issuer.clone(),
        clients: clients
            .into_iter()
            .map(|c| (c.client_id.clone(), c))
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
        db,
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
    let mut background = vec![
        tokio::spawn(Arc::clone(&keys).run(state.config.rotate_every, issuer.clone())),
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                if let Err(e) = purge_store.purge(now_ms() / 1000).await {
                    tracing::warn!(error = %e, "purge failed; retrying in a minute");
                }
            }
        }),
    ];
    if let Some(db) = state.db.clone() {
        background.push(tokio::spawn(probe_database(db)));
    }
    tracing::info!(
        issuer = %issuer,
        alg = state.config.signing_alg.name(),
        users = state.config.users.len(),
        database = state.db.is_some(),
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

/// The signing keys: in the database (shared by the replicas), else in
/// memory or `KEY_DIR`.
async fn open_keys(config: &Config, db: Option<&Db>) -> Result<Arc<KeyManager>, StartError> {
    let Some(db) = db else {
        if config.key_encryption_key.is_some() {
            tracing::warn!(
                "ISSUER_KEY_ENCRYPTION_KEY is set but unused: it encrypts keys in the database (DATABASE_URL)"
            );
        }
        return Ok(KeyManager::open(
            config.key_dir.clone(),
            config.signing_alg,
            config.access_ttl,
            config.retire_grace,
            config.publish_lead,
        )
        .await?);
    };
    if config.key_encryption_key.is_none() {
        tracing::warn!(
            "ISSUER_KEY_ENCRYPTION_KEY is not set: signing keys are stored UNENCRYPTED in \
             the database; whoever can read it can sign tokens (set it to the base64 of \
             32 random bytes, e.g. `openssl rand -base64 32`)"
        );
    }
    Ok(KeyManager::open_db(
        db.clone(),
        config.key_encryption_key.clone(),
        config.key_reload_every,
        config.signing_alg,
        config.access_ttl,
        config.retire_grace,
        config.publish_lead,
    )
    .await?)
}

/// `USERS_FILE` / `CLIENTS_FILE` seed the store (the demo seed only an
/// empty one); returns the clients and the users' password hashes (the
/// models of the decoys).
async fn seed(
    config: &Config,
    store: &dyn Store,
    db: Option<&Db>,
) -> Result<(Vec<Client>, Vec<String>), StartError> {
    store
        .seed_users(config.users.clone(), config.demo_users)
        .await
        .map_err(|e| format!("cannot seed the users: {e}"))?;
    let Some(db) = db else {
        let hashes = config
            .users
            .iter()
            .map(|u| u.password_hash.clone())
            .collect();
        return Ok((config.clients.clone(), hashes));
    };
    db.seed_clients(&config.clients, config.demo_clients)
        .await
        .map_err(|e| format!("cannot seed the clients: {e}"))?;
    Ok((db.clients().await?, db.password_hashes().await?))
}

/// Sets the `issuer_database_up` gauge every few seconds, and logs when
/// the database goes away and comes back.
async fn probe_database(db: Db) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut was_up = true;
    loop {
        tick.tick().await;
        let up = db.ping().await.is_ok();
        metrics::gauge!("issuer_database_up").set(if up { 1.0 } else { 0.0 });
        if up != was_up {
            if up {
                tracing::info!("the database is reachable again");
            } else {
                tracing::error!("the database is unreachable: logins and refreshes answer 503");
            }
            was_up = up;
        }
    }
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
