//! Configuration: environment variables (or `--flags`), the users, clients
//! and upstream-issuer files, and the demo seed used when none is given.
//!
//! ```toml
//! # USERS_FILE (hashes from `cargo run --example issuer -- hash`)
//! [[users]]
//! username = "alice"
//! password_hash = "$argon2id$v=19$m=19456,t=2,p=1$…"
//! scopes = ["orders:read", "orders:write"]
//! roles = ["customer"]
//! tenant = "acme"
//!
//! # CLIENTS_FILE
//! [[clients]]
//! client_id = "orders-service"
//! secret_hash = "$argon2id$v=19$m=19456,t=2,p=1$…"
//! scopes = ["orders:read"]
//! grant_types = ["client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"]
//! admin = false
//! opaque_access_tokens = false        # true: random access tokens, checked at /introspect
//!
//! [[clients]]                          # a gateway: trades its callers' tokens for downstream ones
//! client_id = "gateway"
//! secret_hash = "$argon2id$v=19$m=19456,t=2,p=1$…"
//! scopes = ["orders:read", "orders:write"]
//! grant_types = ["urn:ietf:params:oauth:grant-type:token-exchange"]
//! [clients.exchange]                   # our own tokens for this audience -> these audiences
//! "urn:gateway" = ["urn:orders"]
//!
//! # UPSTREAMS_FILE: a Keycloak realm whose users become local customers
//! [[upstreams]]
//! name = "keycloak"
//! issuer = "https://sso.example.com/realms/partners"
//! audience = "acme-issuer"            # upstream tokens must be meant for us
//! roles_claim = "realm_access.roles"
//! tenant_claim = "org"
//! [upstreams.tenants]                 # upstream tenant -> local tenant; others are refused
//! acme-buyers = "acme"
//! [upstreams.roles]                   # upstream role -> local roles
//! buyer = ["customer"]
//! [upstreams.role_scopes]             # local role -> scopes
//! customer = ["orders:read", "orders:write"]
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::credentials;
use super::keys::{KeyCipher, SigningAlg};

/// Everything the issuer needs to start. Build it with [`Config::from_env`]
/// (the binary) or fill it in directly (tests, the demo).
#[derive(Debug, Clone)]
pub struct Config {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The issuer identifier (`iss`) and base URL. `None`: `http://` + the
    /// bound address, so port 0 still yields a working issuer.
    pub issuer_url: Option<String>,
    /// Lifetime of access tokens.
    pub access_ttl: Duration,
    /// Lifetime of a refresh-token family (absolute, from the login).
    pub refresh_ttl: Duration,
    /// Algorithm of newly generated signing keys.
    pub signing_alg: SigningAlg,
    /// Local users (password login).
    pub users: Vec<User>,
    /// OAuth clients (client credentials, token exchange, introspection).
    pub clients: Vec<Client>,
    /// Trusted upstream issuers for token exchange.
    pub upstreams: Vec<Upstream>,
    /// Where signing keys are persisted; `None`: in memory only.
    pub key_dir: Option<PathBuf>,
    /// Start a rotation this long after the current key began signing;
    /// `None`: only on demand.
    pub rotate_every: Option<Duration>,
    /// How long a new key is published before it signs anything.
    pub publish_lead: Duration,
    /// How long a retired key stays published after the last token it
    /// signed has expired (downstream clock skew and leeway).
    pub retire_grace: Duration,
    /// `Cache-Control: max-age` of the JWK Set.
    pub jwks_max_age: Duration,
    /// Audience of tokens whose request names none.
    pub default_audience: String,
    /// `client_id` of tokens issued by `/login` (the first-party login).
    pub login_client_id: String,
    /// What was seeded because no file was given (for the start-up banner).
    pub seeded: Vec<String>,
    /// Serves `GET /metrics` (Prometheus text) from this handle; `None`: no
    /// such route.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// `DATABASE_URL`: keep users, clients, keys and sessions in this
    /// PostgreSQL database, shared by every replica; `None`: in memory.
    pub database_url: Option<DatabaseUrl>,
    /// `ISSUER_KEY_ENCRYPTION_KEY`: encrypts signing keys in the database;
    /// `None`: they are stored unencrypted (with a warning).
    pub key_encryption_key: Option<KeyCipher>,
    /// With a database: how often each replica rereads the signing keys.
    pub key_reload_every: Duration,
    /// The users are the demo seed (no `USERS_FILE`): a database gets
    /// them only if it has no user at all.
    pub demo_users: bool,
    /// The clients are the demo seed (no `CLIENTS_FILE`): a database gets
    /// them only if it has no client at all.
    pub demo_clients: bool,
}

/// A PostgreSQL URL, which may hold a password: never printed.
#[derive(Clone)]
pub struct DatabaseUrl(pub String);

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseUrl(..)")
    }
}

impl Default for Config {
    /// Defaults without any user or client: fill them in.
    fn default() -> Self {
        Self {
            port: 4000,
            issuer_url: None,
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(8 * 3600),
            signing_alg: SigningAlg::RS256,
            users: Vec::new(),
            clients: Vec::new(),
            upstreams: Vec::new(),
            key_dir: None,
            rotate_every: Some(Duration::from_secs(24 * 3600)),
            publish_lead: Duration::from_secs(10 * 60),
            retire_grace: Duration::from_secs(2 * 60),
            jwks_max_age: Duration::from_secs(5 * 60),
            default_audience: "urn:orders".into(),
            login_client_id: "login".into(),
            seeded: Vec::new(),
            metrics: None,
            database_url: None,
            key_encryption_key: None,
            key_reload_every: Duration::from_secs(5),
            demo_users: false,
            demo_clients: false,
        }
    }
}

/// A local user. Passwords are stored only as Argon2 PHC strings.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Login name, compared exactly.
    pub username: String,
    /// Argon2 PHC string (`$argon2id$v=19$…`).
    pub password_hash: String,
    /// Scopes the user may be granted.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Roles put into the user's tokens.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Tenant put into the user's tokens.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Audiences the user may get tokens for; `None`: the default audience.
    #[serde(default)]
    pub audiences: Option<Vec<String>>,
}

// Hand-written so that a hash never reaches a log line.
impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .field("scopes", &self.scopes)
            .field("roles", &self.roles)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// A confidential OAuth client. Secrets are stored only as Argon2 PHC strings.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
// `client_id` is the OAuth parameter name, kept for recognisability.
#[allow(clippy::struct_field_names)]
pub struct Client {
    /// The client identifier.
    pub client_id: String,
    /// Argon2 PHC string of the client secret.
    pub secret_hash: String,
    /// Scopes the client may be granted (also the cap for token exchange).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Audiences the client may get tokens for; `None`: the default audience.
    #[serde(default)]
    pub audiences: Option<Vec<String>>,
    /// Grant types the client may use at `/token`.
    #[serde(default = "default_grants")]
    pub grant_types: Vec<String>,
    /// Roles put into the client's own (client-credentials) tokens; also the
    /// cap for token exchange: an exchanged token carries only those of the
    /// mapped upstream roles that are listed here.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Tenant put into the client's own tokens.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Token exchange of this issuer's own tokens: the audience of a
    /// subject token → the audiences it may be exchanged for. Empty: only
    /// upstream issuers' tokens can be exchanged (`UPSTREAMS_FILE`).
    #[serde(default)]
    pub exchange: BTreeMap<String, Vec<String>>,
    /// May call `/admin/*` (key rotation, key status).
    #[serde(default)]
    pub admin: bool,
    /// Issue opaque access tokens (random strings, checked only at
    /// `/introspect`) instead of JWTs to this client, as reference-token
    /// providers do. They can be introspected and revoked.
    #[serde(default)]
    pub opaque_access_tokens: bool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("grant_types", &self.grant_types)
            .field("exchange", &self.exchange)
            .field("admin", &self.admin)
            .field("opaque_access_tokens", &self.opaque_access_tokens)
            .finish_non_exhaustive()
    }
}

fn default_grants() -> Vec<String> {
    vec![GRANT_CLIENT_CREDENTIALS.into()]
}

/// `grant_type` of the client-credentials grant.
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
/// `grant_type` of the refresh-token grant.
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
/// `grant_type` of RFC 8693 token exchange.
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// A trusted upstream OIDC issuer and how its identities map to local ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Short name, used in logs and as the default subject prefix.
    pub name: String,
    /// The upstream `iss`, compared exactly.
    pub issuer: String,
    /// Its JWKS URL; `None`: OIDC discovery at the issuer.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The audience upstream tokens must carry to be exchanged here.
    pub audience: String,
    /// Accepted algorithms; `None`: the verifier's asymmetric defaults.
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Prefix of local subjects; `None`: `"{name}:"`. It must be a
    /// non-empty name followed by one `:` and contain no other `:`, and no
    /// local username or client id may start with it, so that no subject of
    /// one source can equal a subject of another.
    #[serde(default)]
    pub subject_prefix: Option<String>,
    /// Claim holding the upstream subject (dotted path). Defaults to `sub`.
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// Fixed local tenant for every identity of this upstream.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Else: claim holding the upstream tenant (dotted path), mapped by
    /// `tenants`. A token without it gets no tenant.
    #[serde(default)]
    pub tenant_claim: Option<String>,
    /// Upstream tenant → local tenant; required with `tenant_claim`. A token
    /// whose tenant is not listed is refused, never copied.
    #[serde(default)]
    pub tenants: BTreeMap<String, String>,
    /// Claim holding upstream roles (dotted path, array or space-separated
    /// string), e.g. `realm_access.roles` for Keycloak. Defaults to `roles`.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Upstream role → local roles. Unmapped upstream roles are dropped.
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<String>>,
    /// Upstream scope → local scopes. Unmapped upstream scopes are dropped.
    #[serde(default)]
    pub scopes: BTreeMap<String, Vec<String>>,
    /// Local role (after mapping) → local scopes it grants.
    #[serde(default)]
    pub role_scopes: BTreeMap<String, Vec<String>>,
}

impl Upstream {
    /// The prefix of this upstream's local subjects.
    pub fn local_prefix(&self) -> String {
        self.subject_prefix
            .clone()
            .unwrap_or_else(|| format!("{}{SUBJECT_SEPARATOR}", self.name))
    }

    fn check_tenants(&self) -> Result<(), ConfigError> {
        // SECURITY: the tenant is a trust boundary downstream; an upstream
        // may only name the local tenants its configuration maps to.
        if self.tenant_claim.is_some() && self.tenants.is_empty() {
            return err(format!(
                "upstream {:?}: tenant_claim needs a tenants map (upstream tenant -> \
                 local tenant); an upstream's tenants are never copied as is",
                self.name
            ));
        }
        if self.tenant_claim.is_none() && !self.tenants.is_empty() {
            return err(format!(
                "upstream {:?}: tenants maps the tenant_claim, which is not set",
                self.name
            ));
        }
        Ok(())
    }
}

/// Ends an upstream's subject prefix, and occurs nowhere else in it.
pub const SUBJECT_SEPARATOR: char = ':';

fn default_subject_claim() -> String {
    "sub".into()
}

fn default_roles_claim() -> String {
    "roles".into()
}

/// A configuration problem, with what to fix.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err<T>(message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(message.into()))
}

/// The demo user's name and password, seeded when no `USERS_FILE` is given.
pub const DEMO_USER: (&str, &str) = ("demo", "demo-password");
/// The demo client's id and secret, seeded when no `CLIENTS_FILE` is given.
pub const DEMO_CLIENT: (&str, &str) = ("orders-service", "orders-secret");
/// The gateway client's id and secret, seeded when no `CLIENTS_FILE` is given.
pub const GATEWAY_CLIENT: (&str, &str) = ("gateway", "gateway-secret");
/// The audience of tokens meant for the gateway (`examples/gateway.rs` in
/// `exchange` mode); the demo user may log in for it.
pub const GATEWAY_AUDIENCE: &str = "urn:gateway";

/// Where settings come from: `--name value` flags first, then `NAME`
/// environment variables.
pub struct Settings {
    flags: HashMap<String, String>,
}

impl Settings {
    /// Parses `--some-name value` / `--some-name=value` into `SOME_NAME`.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, ConfigError> {
        let mut flags = HashMap::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                return err(format!(
                    "unexpected argument {arg:?} (settings are --name value)"
                ));
            };
            let (name, value) = if let Some((name, value)) = flag.split_once('=') {
                (name.to_owned(), value.to_owned())
            } else {
                let Some(value) = args.next() else {
                    return err(format!("--{flag} needs a value"));
                };
                (flag.to_owned(), value)
            };
            flags.insert(name.replace('-', "_").to_ascii_uppercase(), value);
        }
        Ok(Self { flags })
    }

    fn get(&self, name: &str) -> Option<String> {
        self.flags
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .filter(|v| !v.trim().is_empty())
    }

    fn duration(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        self.get(name).map_or(Ok(default), |v| {
            parse_duration(&v).ok_or_else(|| {
                ConfigError(format!(
                    "{name}={v:?} is not a duration (e.g. 900, 30s, 15m, 8h, 1d, 500ms)"
                ))
            })
        })
    }
}

/// `900` (seconds), `500ms`, `30s`, `15m`, `8h`, `1d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => return Some(Duration::from_millis(n)),
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

impl Config {
    /// Reads the configuration from flags and the environment; seeds the
    /// demo user and client when no files are given (hashing their secrets
    /// with Argon2, which takes a moment).
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let port = match settings.get("PORT") {
            Some(p) => p
                .parse()
                .map_err(|_| ConfigError(format!("PORT={p:?} is not a port number")))?,
            None => defaults.port,
        };
        let issuer_url = match settings.get("ISSUER_URL") {
            Some(url) => Some(url),
            None if port == 0 => None,
            None => Some(format!("http://127.0.0.1:{port}")),
        };
        let signing_alg = match settings.get("SIGNING_ALG") {
            Some(alg) => SigningAlg::parse(&alg).ok_or_else(|| {
                ConfigError(format!(
                    "SIGNING_ALG={alg:?} is not supported (RS256, ES256 or EdDSA)"
                ))
            })?,
            None => defaults.signing_alg,
        };
        let rotate_every = match settings.get("ROTATE_EVERY").as_deref() {
            Some("off" | "never" | "0") => None,
            Some(_) => Some(settings.duration("ROTATE_EVERY", Duration::ZERO)?),
            None => defaults.rotate_every,
        };
        let jwks_max_age = settings.duration("JWKS_MAX_AGE", defaults.jwks_max_age)?;
        let mut config = Self {
            port,
            issuer_url,
            access_ttl: settings.duration("ACCESS_TTL", defaults.access_ttl)?,
            refresh_ttl: settings.duration("REFRESH_TTL", defaults.refresh_ttl)?,
            signing_alg,
            users: Vec::new(),
            clients: Vec::new(),
            upstreams: Vec::new(),
            key_dir: settings.get("KEY_DIR").map(PathBuf::from),
            rotate_every,
            // Twice the JWKS max-age: a downstream that honours it has
            // refetched at least once before the key signs.
            publish_lead: settings.duration("KEY_PUBLISH_LEAD", jwks_max_age * 2)?,
            retire_grace: settings.duration("KEY_RETIRE_GRACE", defaults.retire_grace)?,
            jwks_max_age,
            default_audience: settings
                .get("DEFAULT_AUDIENCE")
                .unwrap_or(defaults.default_audience),
            login_client_id: settings
                .get("LOGIN_CLIENT_ID")
                .unwrap_or(defaults.login_client_id),
            seeded: Vec::new(),
            metrics: None,
            database_url: settings.get("DATABASE_URL").map(DatabaseUrl),
            key_encryption_key: settings
                .get("ISSUER_KEY_ENCRYPTION_KEY")
                .map(|k| KeyCipher::from_base64(&k))
                .transpose()
                .map_err(ConfigError)?,
            key_reload_every: defaults.key_reload_every,
            demo_users: false,
            demo_clients: false,
        };

        if let Some(path) = settings.get("USERS_FILE") {
            config.users = load::<UsersFile>(Path::new(&path))?.users;
        } else {
            config.users.push(demo_user(&config.default_audience)?);
            config.demo_users = true;
            config.seeded.push(format!(
                "user {:?} with password {:?} (scopes orders:read orders:write, role customer, tenant acme)",
                DEMO_USER.0, DEMO_USER.1
            ));
        }
        if let Some(path) = settings.get("CLIENTS_FILE") {
            config.clients = load::<ClientsFile>(Path::new(&path))?.clients;
        } else {
            config.clients.push(demo_client()?);
            config.demo_clients = true;
            config.seeded.push(format!(
                "client {:?} with secret {:?} (client_credentials, token exchange)",
                DEMO_CLIENT.0, DEMO_CLIENT.1
            ));
            config
                .clients
                .push(gateway_client(&config.default_audience)?);
            config.seeded.push(format!(
                "client {:?} with secret {:?} (token exchange {GATEWAY_AUDIENCE} -> {})",
                GATEWAY_CLIENT.0, GATEWAY_CLIENT.1, config.default_audience
            ));
        }
        if let Some(path) = settings.get("UPSTREAMS_FILE") {
            config.upstreams = load::<UpstreamsFile>(Path::new(&path))?.upstreams;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the settings against each other; every message names the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.access_ttl < Duration::from_secs(1) || self.access_ttl > Duration::from_secs(86_400)
        {
            return err("ACCESS_TTL must be between 1 s and 24 h");
        }
        if self.refresh_ttl < self.access_ttl {
            return err("REFRESH_TTL must be at least ACCESS_TTL");
        }
        self.check_storage()?;
        if self.jwks_max_age < Duration::from_secs(1) {
            return err("JWKS_MAX_AGE must be at least 1 s");
        }
        if let Some(every) = self.rotate_every
            && every <= self.publish_lead
        {
            return err(
                "ROTATE_EVERY must be longer than KEY_PUBLISH_LEAD (or \"off\"), else keys pile up",
            );
        }
        if let Some(url) = &self.issuer_url {
            let parsed = url::Url::parse(url)
                .map_err(|e| ConfigError(format!("ISSUER_URL={url:?} is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") || url.ends_with('/') {
                return err(format!(
                    "ISSUER_URL={url:?} must be an http(s) URL without a trailing slash"
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for user in &self.users {
            if user.username.is_empty() || !seen.insert(&user.username) {
                return err(format!(
                    "users: empty or duplicate username {:?}",
                    user.username
                ));
            }
            credentials::check_phc(&user.password_hash)
                .map_err(|e| ConfigError(format!("user {:?}: password_hash {e}", user.username)))?;
        }
        let mut seen = std::collections::HashSet::new();
        for client in &self.clients {
            if client.client_id.is_empty()
                || client.client_id == self.login_client_id
                || !seen.insert(&client.client_id)
            {
                return err(format!(
                    "clients: empty, duplicate or reserved client_id {:?}",
                    client.client_id
                ));
            }
            credentials::check_phc(&client.secret_hash).map_err(|e| {
                ConfigError(format!("client {:?}: secret_hash {e}", client.client_id))
            })?;
            if !client.exchange.is_empty()
                && !client.grant_types.iter().any(|g| g == GRANT_TOKEN_EXCHANGE)
            {
                return err(format!(
                    "client {:?}: exchange rules need grant type {GRANT_TOKEN_EXCHANGE:?}",
                    client.client_id
                ));
            }
            for grant in &client.grant_types {
                if ![
                    GRANT_CLIENT_CREDENTIALS,
                    GRANT_REFRESH_TOKEN,
                    GRANT_TOKEN_EXCHANGE,
                ]
                .contains(&grant.as_str())
                {
                    return err(format!(
                        "client {:?}: unknown grant type {grant:?}",
                        client.client_id
                    ));
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for upstream in &self.upstreams {
            if upstream.name.is_empty() || !seen.insert(&upstream.name) {
                return err(format!(
                    "upstreams: empty or duplicate name {:?}",
                    upstream.name
                ));
            }
            // SECURITY: trusting ourselves as an upstream would let any token
            // we issued be re-minted with mapped (possibly larger) rights.
            if self.issuer_url.as_deref() == Some(upstream.issuer.as_str()) {
                return err(format!(
                    "upstream {:?} is this issuer itself",
                    upstream.name
                ));
            }
            upstream.check_tenants()?;
            if upstream.audience.is_empty() {
                return err(format!(
                    "upstream {:?}: audience is required (the audience upstream tokens must be addressed to)",
                    upstream.name
                ));
            }
        }
        self.check_subjects()
    }

    /// Where the state lives: `DATABASE_URL` or memory / `KEY_DIR`.
    fn check_storage(&self) -> Result<(), ConfigError> {
        if self.database_url.is_some() && self.key_dir.is_some() {
            return err(
                "KEY_DIR and DATABASE_URL both would hold the signing keys; with a database the \
                 keys live there: unset KEY_DIR",
            );
        }
        if let Some(DatabaseUrl(url)) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return err("DATABASE_URL must be a postgres:// (or postgresql://) URL");
        }
        Ok(())
    }

    /// Refuses any configuration under which two sources could produce the
    /// same `sub`: users and clients (both unprefixed) and each upstream
    /// (prefixed).
    fn check_subjects(&self) -> Result<(), ConfigError> {
        // SECURITY: downstream services key data and permissions by `sub`;
        // a partner's `x` that became our user `x` (or another partner's `x`)
        // would act as them. A prefix is `name:` with no other `:`, so the
        // first `:` of a subject ends the prefix: no prefix can be the start
        // of another, and each upstream subject has exactly one origin.
        let mut prefixes: Vec<(String, &str)> = Vec::new();
        for upstream in &self.upstreams {
            let prefix = upstream.local_prefix();
            let name = prefix.strip_suffix(SUBJECT_SEPARATOR).unwrap_or("");
            if name.is_empty()
                || name.contains(SUBJECT_SEPARATOR)
                || name.chars().any(char::is_control)
            {
                return err(format!(
                    "upstream {:?}: subject prefix {prefix:?} must be a non-empty name followed \
                     by one {SUBJECT_SEPARATOR:?} and contain no other (e.g. \"partner:\"), so \
                     that no upstream's subjects can run into another's; set subject_prefix",
                    upstream.name
                ));
            }
            if let Some((_, other)) = prefixes
                .iter()
                .find(|(p, _)| p.starts_with(&prefix) || prefix.starts_with(p.as_str()))
            {
                return err(format!(
                    "upstreams {other:?} and {:?} have the same subject prefix {prefix:?}: \
                     their subjects would collide; give one another subject_prefix",
                    upstream.name
                ));
            }
            prefixes.push((prefix, &upstream.name));
        }
        // SECURITY: a client-credentials token's `sub` is the client id, a
        // login's is the username: one name must not be both.
        let clients: std::collections::HashSet<&str> =
            self.clients.iter().map(|c| c.client_id.as_str()).collect();
        for user in &self.users {
            if clients.contains(user.username.as_str()) {
                return err(format!(
                    "user and client {name:?} would both get sub {name:?}; rename one",
                    name = user.username
                ));
            }
        }
        let locals = self
            .users
            .iter()
            .map(|u| ("user", &u.username))
            .chain(self.clients.iter().map(|c| ("client", &c.client_id)));
        for (kind, local) in locals {
            if let Some((prefix, upstream)) = prefixes.iter().find(|(p, _)| local.starts_with(p)) {
                return err(format!(
                    "{kind} {local:?} lies in upstream {upstream:?}'s subject namespace \
                     ({prefix:?}…): an upstream subject could become it; rename the {kind} \
                     or change the upstream's subject_prefix"
                ));
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    users: Vec<User>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsFile {
    clients: Vec<Client>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpstreamsFile {
    upstreams: Vec<Upstream>,
}

/// Reads a TOML or JSON file (by extension; otherwise by its first character).
fn load<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    let json = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => true,
        Some("toml") => false,
        _ => text.trim_start().starts_with('{'),
    };
    if json {
        serde_json::from_str(&text)
            .map_err(|e| ConfigError(format!("{} (JSON): {e}", path.display())))
    } else {
        toml::from_str(&text).map_err(|e| ConfigError(format!("{} (TOML): {e}", path.display())))
    }
}

/// The demo user: tokens for the default audience, or for the gateway
/// (`/login` with `audience=urn:gateway` or `resource=urn:gateway`).
fn demo_user(default_audience: &str) -> Result<User, ConfigError> {
    Ok(User {
        username: DEMO_USER.0.into(),
        password_hash: credentials::hash_secret(DEMO_USER.1)
            .map_err(|e| ConfigError(format!("hashing the demo password: {e}")))?,
        scopes: vec!["orders:read".into(), "orders:write".into()],
        roles: vec!["customer".into()],
        tenant: Some("acme".into()),
        audiences: Some(vec![default_audience.into(), GATEWAY_AUDIENCE.into()]),
    })
}

/// The gateway: exchanges tokens meant for it for tokens meant for the
/// default audience (the orders services).
fn gateway_client(default_audience: &str) -> Result<Client, ConfigError> {
    Ok(Client {
        client_id: GATEWAY_CLIENT.0.into(),
        secret_hash: credentials::hash_secret(GATEWAY_CLIENT.1)
            .map_err(|e| ConfigError(format!("hashing the gateway client secret: {e}")))?,
        scopes: vec!["orders:read".into(), "orders:write".into()],
        audiences: None,
        grant_types: vec![GRANT_TOKEN_EXCHANGE.into()],
        roles: Vec::new(),
        tenant: None,
        exchange: BTreeMap::from([(
            GATEWAY_AUDIENCE.to_owned(),
            vec![default_audience.to_owned()],
        )]),
        admin: false,
        opaque_access_tokens: false,
    })
}

fn demo_client() -> Result<Client, ConfigError> {
    Ok(Client {
        client_id: DEMO_CLIENT.0.into(),
        secret_hash: credentials::hash_secret(DEMO_CLIENT.1)
            .map_err(|e| ConfigError(format!("hashing the demo client secret: {e}")))?,
        scopes: vec!["orders:read".into(), "orders:write".into()],
        audiences: None,
        grant_types: vec![GRANT_CLIENT_CREDENTIALS.into(), GRANT_TOKEN_EXCHANGE.into()],
        roles: vec!["service".into()],
        tenant: Some("acme".into()),
        exchange: BTreeMap::new(),
        admin: false,
        opaque_access_tokens: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap_hash() -> String {
        let params = argon2::Params::new(8, 1, 1, None).expect("valid Argon2 parameters");
        credentials::hash_secret_with("secret", params).expect("hashing")
    }

    fn user(name: &str) -> User {
        User {
            username: name.into(),
            password_hash: cheap_hash(),
            scopes: Vec::new(),
            roles: Vec::new(),
            tenant: None,
            audiences: None,
        }
    }

    fn client(id: &str) -> Client {
        Client {
            client_id: id.into(),
            secret_hash: cheap_hash(),
            scopes: Vec::new(),
            audiences: None,
            grant_types: default_grants(),
            roles: Vec::new(),
            tenant: None,
            exchange: BTreeMap::new(),
            admin: false,
            opaque_access_tokens: false,
        }
    }

    #[test]
    fn exchange_rules_need_the_token_exchange_grant() {
        let mut gateway = client("gateway");
        gateway.exchange = BTreeMap::from([("urn:gateway".into(), vec!["urn:orders".into()])]);
        let e = config(Vec::new(), vec![gateway.clone()], Vec::new())
            .validate()
            .unwrap_err();
        assert!(e.0.contains("exchange rules need grant type"), "{e:?}");
        gateway.grant_types.push(GRANT_TOKEN_EXCHANGE.into());
        assert!(
            config(Vec::new(), vec![gateway], Vec::new())
                .validate()
                .is_ok()
        );
    }

    /// An upstream as an `UPSTREAMS_FILE` entry gives it.
    fn upstream(name: &str, subject_prefix: Option<&str>) -> Upstream {
        let prefix = subject_prefix.map_or(String::new(), |p| format!("subject_prefix = {p:?}\n"));
        toml::from_str(&format!(
            "name = {name:?}\nissuer = \"https://{name}.example\"\naudience = \"us\"\n{prefix}"
        ))
        .expect("a valid upstream entry")
    }

    fn config(users: Vec<User>, clients: Vec<Client>, upstreams: Vec<Upstream>) -> Config {
        Config {
            users,
            clients,
            upstreams,
            ..Config::default()
        }
    }

    fn refusal(config: &Config) -> String {
        match config.validate() {
            Ok(()) => panic!("accepted a configuration whose subjects can collide"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn tenant_claim_without_a_tenants_map_is_refused() {
        let mut partner = upstream("partner", None);
        partner.tenant_claim = Some("org".into());
        let message = config(vec![], vec![], vec![partner.clone()])
            .validate()
            .expect_err("an upstream could name any tenant")
            .to_string();
        assert!(message.contains("tenants"), "{message}");
        partner.tenants = BTreeMap::from([("buyers".into(), "acme".into())]);
        config(vec![], vec![], vec![partner])
            .validate()
            .expect("a mapped tenant claim");
    }

    #[test]
    fn distinct_subject_sources_are_accepted() {
        let config = config(
            vec![user("alice")],
            vec![client("orders-service")],
            vec![upstream("partner", None), upstream("keycloak", Some("kc:"))],
        );
        config.validate().expect("no subject can collide");
    }

    #[test]
    fn user_and_client_with_the_same_name_are_refused() {
        let message = refusal(&config(vec![user("alice")], vec![client("alice")], vec![]));
        assert!(message.contains("\"alice\""), "{message}");
    }

    #[test]
    fn empty_subject_prefix_is_refused() {
        let message = refusal(&config(vec![], vec![], vec![upstream("partner", Some(""))]));
        assert!(message.contains("partner"), "{message}");
    }

    #[test]
    fn overlapping_upstream_prefixes_are_refused() {
        // `a` + `b:x` and `a:b` + `x` would both be `a:b:x`.
        let message = refusal(&config(
            vec![],
            vec![],
            vec![upstream("a", None), upstream("a:b", None)],
        ));
        assert!(message.contains("a:b"), "{message}");
        // Explicit prefixes that overlap the same way.
        refusal(&config(
            vec![],
            vec![],
            vec![upstream("one", Some("a:")), upstream("two", Some("a:b:"))],
        ));
        // The same prefix twice.
        refusal(&config(
            vec![],
            vec![],
            vec![upstream("one", Some("p:")), upstream("two", Some("p:"))],
        ));
    }

    #[test]
    fn local_name_inside_an_upstream_namespace_is_refused() {
        let message = refusal(&config(
            vec![user("partner:carol")],
            vec![],
            vec![upstream("partner", None)],
        ));
        assert!(message.contains("partner:carol"), "{message}");
        refusal(&config(
            vec![],
            vec![client("kc:svc")],
            vec![upstream("keycloak", Some("kc:"))],
        ));
    }
}
