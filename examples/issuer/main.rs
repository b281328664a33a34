//! A small but real token issuer for the services that authlayer protects.
//!
//! ```text
//! cargo run --example issuer
//! ```
//!
//! Settings come from `--name value` flags or `NAME` environment variables
//! (flag `--access-ttl 5m` = `ACCESS_TTL=5m`):
//!
//! | setting | default | meaning |
//! |---|---|---|
//! | `PORT` | 4000 | listen on 127.0.0.1:PORT (0: any free port) |
//! | `ISSUER_URL` | `http://127.0.0.1:PORT` | the `iss` of every token, and the base URL |
//! | `ACCESS_TTL` | 15m | access-token lifetime |
//! | `REFRESH_TTL` | 8h | refresh-token family lifetime (from login) |
//! | `SIGNING_ALG` | `RS256` | `RS256`, `ES256` or `EdDSA` (for new keys) |
//! | `USERS_FILE` | demo user | TOML/JSON `users = [{ username, password_hash, scopes, roles, tenant, audiences }]` |
//! | `CLIENTS_FILE` | demo and gateway clients | TOML/JSON `clients = [{ client_id, secret_hash, scopes, audiences, grant_types, roles, tenant, exchange, admin }]`; `exchange` maps an audience of this issuer's own tokens to the audiences the client may exchange them for (RFC 8693) |
//! | `UPSTREAMS_FILE` | none | TOML/JSON `upstreams = [{ name, issuer, audience, jwks_url, subject_prefix, roles, scopes, role_scopes, tenant, tenant_claim, tenants, … }]`; roles, scopes and tenants from an upstream pass only as mapped (`tenant_claim` needs `tenants`; an unmapped tenant is refused); subject prefixes (`name:` by default) must not overlap |
//! | `KEY_DIR` | none (memory) | persist signing keys (PKCS#8, mode 0600) across restarts; the directory must be owned by the issuer's user and not writable by group or others, else start-up fails |
//! | `ROTATE_EVERY` | 24h | timed key rotation (`off` to disable) |
//! | `JWKS_MAX_AGE` | 5m | `Cache-Control: max-age` of the JWK Set |
//! | `KEY_PUBLISH_LEAD` | 2 × `JWKS_MAX_AGE` | a new key is published this long before it signs |
//! | `KEY_RETIRE_GRACE` | 2m | an old key stays published this long after its last token expired |
//! | `DEFAULT_AUDIENCE` | `urn:orders` | audience when a request names none |
//! | `LOGIN_CLIENT_ID` | `login` | `client_id` of tokens from `/login` |
//! | `DATABASE_URL` | none (memory) | `postgres://user:password@host:port/db`: keys, users, clients, refresh families, revocations and opaque tokens live there, shared by every replica with the same `ISSUER_URL` (see `pg.rs`); not with `KEY_DIR` |
//! | `ISSUER_KEY_ENCRYPTION_KEY` | none | base64 of 32 bytes: signing keys are AES-256-GCM-encrypted in the database; without it they are stored unencrypted (a warning at start-up), and a database holding encrypted keys refuses to start |
//!
//! Password and secret hashes are Argon2 PHC strings; print one with
//! `cargo run --example issuer -- hash` (reads the secret from stdin).
//!
//! Endpoints: `POST /login`, `POST /refresh`, `POST /token`
//! (`client_credentials`, `refresh_token`, RFC 8693 token exchange),
//! `POST /introspect` (RFC 7662), `POST /revoke` (RFC 7009),
//! `GET /.well-known/jwks.json`, `GET /.well-known/openid-configuration`,
//! `POST /admin/rotate` and `GET /admin/keys` (admin clients), `GET /health`.
//! `SIGHUP` starts a key rotation.
//!
//! Without `DATABASE_URL`, state (refresh-token families, revocations) is
//! kept in memory: a restart ends every session, while access tokens stay
//! valid until they expire. With it, replicas share everything and a
//! restart keeps sessions and keys; `issuer user add NAME [--scopes "…"]
//! [--roles "…"] [--tenant T]` (the password on stdin) and `issuer user
//! disable NAME` manage the users there. `GET /health` then answers 503
//! while the database is unreachable, as do logins and refreshes.
//!
//! Logs: `AUDIT_LOG` (unset: audit JSON lines on stdout after the
//! `listening on` line; a path: that file; `off`: none) records every
//! login, refresh, refresh-token reuse, client-credentials grant, token
//! exchange, introspection, revocation and key rotation in authlayer's
//! audit schema (`examples/issuer/audit.rs`); `RUST_LOG` (default `info`)
//! the human log on stderr. `GET /metrics` serves Prometheus text.

pub mod audit;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod exchange;
pub mod keys;
pub mod pg;
pub mod server;
pub mod store;
pub mod tokens;

#[path = "../common/limits.rs"]
#[allow(clippy::duplicate_mod, dead_code)] // shared by every example
pub mod limits;
#[path = "../common/observability.rs"]
#[allow(clippy::duplicate_mod, dead_code)] // shared by every example
pub mod observability;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let audit = observability::AuditDestination::from_env();
    let _audit_log = match observability::init_logging(&audit, "info") {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("issuer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "hash") {
        return hash_from_stdin();
    }
    if args.first().is_some_and(|a| a == "user") {
        let url = std::env::var("DATABASE_URL").ok();
        let mut stdin = std::io::stdin().lock();
        return match cli::user_command(&args[1..], &mut stdin, url.as_deref()).await {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{HELP}");
        return ExitCode::SUCCESS;
    }
    let settings = match config::Settings::from_args(args.drain(..)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("issuer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut config = match config::Config::from_settings(&settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("issuer: configuration error: {e}");
            return ExitCode::FAILURE;
        }
    };
    announce_seeds(&config);
    match observability::install_metrics() {
        Ok(handle) => config.metrics = Some(handle),
        Err(e) => {
            eprintln!("issuer: {e}");
            return ExitCode::FAILURE;
        }
    }
    let running = match server::start(config).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("issuer: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    observability::announce(running.addr());
    serve_until_ctrl_c(running).await
}

const HELP: &str = "\
usage: issuer [--setting value]...     serve (settings also from NAME=value in the environment)
       issuer hash                     read a secret on stdin, print its Argon2 PHC string
       issuer user add NAME [--scopes \"a b\"] [--roles \"r\"] [--tenant T]
                                       add a user to the database (password on stdin)
       issuer user disable NAME        disable a user and revoke their tokens

settings (flag --access-ttl = variable ACCESS_TTL):
  PORT 4000 | ISSUER_URL http://127.0.0.1:PORT | ACCESS_TTL 15m | REFRESH_TTL 8h
  SIGNING_ALG RS256 (ES256, EdDSA) | USERS_FILE, CLIENTS_FILE, UPSTREAMS_FILE (TOML or JSON)
  KEY_DIR (persist keys) | ROTATE_EVERY 24h (off) | JWKS_MAX_AGE 5m
  KEY_PUBLISH_LEAD 2 x JWKS_MAX_AGE | KEY_RETIRE_GRACE 2m
  DEFAULT_AUDIENCE urn:orders | LOGIN_CLIENT_ID login
  DATABASE_URL postgres://… (share state between replicas) | ISSUER_KEY_ENCRYPTION_KEY (base64 of 32 bytes)";

/// Prints what was seeded, loudly: demo credentials must never go unnoticed.
pub fn announce_seeds(config: &config::Config) {
    if config.seeded.is_empty() {
        return;
    }
    eprintln!("################################################################");
    eprintln!("#  DEMO MODE: no USERS_FILE / CLIENTS_FILE given. Seeded:");
    for seed in &config.seeded {
        eprintln!("#   - {seed}");
    }
    eprintln!("#  Anyone who reads this can log in. Never expose this issuer.");
    eprintln!("################################################################");
}

/// Serves until Ctrl-C; `SIGHUP` starts a key rotation.
pub async fn serve_until_ctrl_c(running: server::Running) -> ExitCode {
    #[cfg(unix)]
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; rotate with POST /admin/rotate");
            None
        }
    };
    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<Option<()>>();
        tokio::select! {
            () = observability::stop_signal() => break,
            Some(()) = hup => {
                match running.rotate().await {
                    Ok(r) => {
                        tracing::info!(kid = %r.kid, already_pending = r.already_pending, "SIGHUP: key rotation");
                        audit::Audit::event("key_rotation", "sighup", running.issuer()).record(
                            "allow",
                            if r.already_pending { "already_pending" } else { "published" },
                            None,
                        );
                    }
                    Err(e) => tracing::error!(error = %e, "SIGHUP: key rotation failed"),
                }
            }
        }
    }
    match running.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("issuer: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `issuer hash`: reads one secret from stdin, prints its Argon2 PHC string.
fn hash_from_stdin() -> ExitCode {
    let mut secret = String::new();
    if std::io::stdin().read_line(&mut secret).is_err() {
        eprintln!("issuer hash: cannot read stdin");
        return ExitCode::FAILURE;
    }
    let secret = secret.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        eprintln!("issuer hash: give the secret on stdin, e.g. `echo -n s3cret | issuer hash`");
        return ExitCode::FAILURE;
    }
    match credentials::hash_secret(secret) {
        Ok(phc) => {
            println!("{phc}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("issuer hash: {e}");
            ExitCode::FAILURE
        }
    }
}
