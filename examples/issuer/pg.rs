//! The PostgreSQL [`Store`] (with `DATABASE_URL`): users, clients, signing
//! keys, refresh-token families, revocations and opaque access tokens,
//! shared by every replica and kept across restarts.
//!
//! # Schema
//!
//! Every table is prefixed `issuer_`, so the issuer can share a database.
//! The migrations below run at start-up inside one transaction holding a
//! transaction-level advisory lock: replicas starting at once apply them
//! one after the other, and each is applied once (`issuer_schema_migrations`).
//!
//! # Concurrency
//!
//! Transactions run at PostgreSQL's default isolation, READ COMMITTED. Every
//! change to a refresh-token family (rotation, reuse, revocation, disabling
//! its user) first locks the family's row (`SELECT … FOR UPDATE`), so the
//! changes to one family happen one at a time across every replica; the
//! rotation's `UPDATE … WHERE NOT used` is a second guard. Of many
//! concurrent presentations of one token exactly one rotates it; the others
//! find it used (each statement sees what committed before it) and revoke
//! the family. Key rotations hold the advisory lock [`KEYS_LOCK`] for their
//! transaction: one at a time across replicas, each deciding on the keys
//! as the database holds them.

use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{ManagerConfig, Pool, PoolConfig, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::{NoTls, Row, Transaction};

use super::config::{Client, User};
use super::store::{
    BoxFuture, Family, Grant, Issued, LOGIN_FREE_FAILURES, LOGIN_MAX_LOCK_MS, MAX_USED_PER_FAMILY,
    Redeemed, Store, StoreError, StoreResult, TokenHash,
};

/// Advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x6973_7375_6572_0001;
/// Advisory lock held while the signing keys are decided on (start-up,
/// rotation): one replica at a time.
pub const KEYS_LOCK: i64 = 0x6973_7375_6572_0002;
/// Advisory lock held while seeding users and clients.
const SEED_LOCK: i64 = 0x6973_7375_6572_0003;

/// Most access tokens remembered per family (for revoking them with it).
const MAX_ACCESS_PER_FAMILY: i32 = 1024;

/// How long one store operation may take before it counts as an outage.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// The migrations, in order; each runs once, in the start-up transaction.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "
    CREATE TABLE issuer_signing_keys (
        kid text PRIMARY KEY,
        alg text NOT NULL,
        created_ms bigint NOT NULL,
        activates_ms bigint NOT NULL,
        ttl_ms bigint NOT NULL,
        encryption text NOT NULL CHECK (encryption IN ('none', 'aes-256-gcm')),
        private_key bytea NOT NULL
    );
    CREATE TABLE issuer_users (
        username text PRIMARY KEY,
        password_hash text NOT NULL,
        scopes text[] NOT NULL DEFAULT '{}',
        roles text[] NOT NULL DEFAULT '{}',
        tenant text,
        audiences text[],
        disabled boolean NOT NULL DEFAULT false,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE issuer_clients (
        client_id text PRIMARY KEY,
        document text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE issuer_refresh_families (
        id text PRIMARY KEY,
        sub text NOT NULL,
        client_id text NOT NULL,
        scopes text[] NOT NULL,
        audience text NOT NULL,
        roles text[] NOT NULL,
        tenant text,
        expires_at bigint NOT NULL,
        revoked boolean NOT NULL DEFAULT false
    );
    CREATE INDEX issuer_refresh_families_sub ON issuer_refresh_families (sub);
    CREATE INDEX issuer_refresh_families_expires ON issuer_refresh_families (expires_at);
    CREATE TABLE issuer_refresh_tokens (
        token_hash bytea PRIMARY KEY,
        family_id text NOT NULL REFERENCES issuer_refresh_families (id) ON DELETE CASCADE,
        generation integer NOT NULL,
        used boolean NOT NULL DEFAULT false
    );
    CREATE INDEX issuer_refresh_tokens_family ON issuer_refresh_tokens (family_id, generation);
    CREATE TABLE issuer_family_access (
        jti text PRIMARY KEY,
        family_id text NOT NULL REFERENCES issuer_refresh_families (id) ON DELETE CASCADE,
        generation integer NOT NULL,
        exp bigint NOT NULL
    );
    CREATE INDEX issuer_family_access_family ON issuer_family_access (family_id, generation);
    CREATE TABLE issuer_revoked_access (
        jti text PRIMARY KEY,
        exp bigint NOT NULL
    );
    CREATE TABLE issuer_opaque_tokens (
        token_hash bytea PRIMARY KEY,
        claims text NOT NULL,
        exp bigint NOT NULL
    );
    ",
    ),
    (
        2,
        "
    CREATE TABLE issuer_login_failures (
        source text NOT NULL,
        name text NOT NULL,
        failures integer NOT NULL,
        locked_until_ms bigint NOT NULL,
        last_ms bigint NOT NULL,
        PRIMARY KEY (source, name)
    );
    ",
    ),
];

/// A pool of connections to the issuer's database.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
}

/// Something about the database that stops the issuer from starting or a
/// CLI command from completing.
fn db_err(what: &str) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
    move |e| StoreError(format!("{what}: {}", describe(&e)))
}

/// An error's text with its database cause (the driver's `Display` alone
/// often says only "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{e}: {}", db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

impl Db {
    /// A pool for `url` (`postgres://user:password@host:port/db`). No
    /// connection is made yet: [`migrate`](Self::migrate) makes the first.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        // SECURITY: the URL may hold a password: never in a message.
        let parsed: tokio_postgres::Config = url.parse().map_err(|_| {
            StoreError(
                "DATABASE_URL is not a PostgreSQL URL (postgres://user:password@host:port/database)"
                    .into(),
            )
        })?;
        let mut config = deadpool_postgres::Config::new();
        config.url = Some(url.to_owned());
        if parsed.get_connect_timeout().is_none() {
            config.connect_timeout = Some(Duration::from_secs(3));
        }
        config.manager = Some(ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        });
        // Bounded waits: during an outage requests fail fast (503) instead
        // of queueing for a connection that will not come.
        config.pool = Some(PoolConfig {
            max_size: 16,
            timeouts: Timeouts {
                wait: Some(OPERATION_TIMEOUT),
                create: Some(Duration::from_secs(3)),
                recycle: Some(Duration::from_secs(3)),
            },
            ..PoolConfig::default()
        });
        let pool = config
            .create_pool(Some(Runtime::Tokio1), NoTls)
            .map_err(|e| StoreError(format!("cannot set up the database pool: {e}")))?;
        Ok(Self { pool })
    }

    /// A connection from the pool.
    pub async fn conn(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError(format!("the database is unreachable: {e}")))
    }

    /// Runs `op` with a bounded time: a database that hangs is an outage.
    pub async fn timed<T>(
        &self,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(OPERATION_TIMEOUT, op)
            .await
            .unwrap_or_else(|_| Err(StoreError("the database did not answer in time".into())))
    }

    /// Whether the database answers now.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.timed(async {
            self.conn()
                .await?
                .simple_query("SELECT 1")
                .await
                .map_err(db_err("the database does not answer"))?;
            Ok(())
        })
        .await
    }

    /// Applies the migrations this database lacks, one replica at a time.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        // SECURITY (integrity): two replicas starting at once would both
        // see a table missing and both create it; the second would fail, or
        // worse, half-apply a migration. One at a time, under this lock.
        let tx = locked_transaction(&mut conn, MIGRATION_LOCK, "cannot lock the schema").await?;
        // Under the lock, a plain check is enough (and `IF NOT EXISTS`
        // would log a notice on every start).
        let exists = tx
            .query_one(
                "SELECT to_regclass('issuer_schema_migrations') IS NOT NULL",
                &[],
            )
            .await
            .map_err(db_err("cannot read the schema"))?
            .get::<_, bool>(0);
        if !exists {
            tx.batch_execute(
                "CREATE TABLE issuer_schema_migrations (
                    version integer PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )",
            )
            .await
            .map_err(db_err("cannot create issuer_schema_migrations"))?;
        }
        let applied: Vec<i32> = tx
            .query("SELECT version FROM issuer_schema_migrations", &[])
            .await
            .map_err(db_err("cannot read the schema version"))?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let latest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
        if let Some(newer) = applied.iter().find(|v| **v > latest) {
            return Err(StoreError(format!(
                "the database schema is at version {newer}, newer than this issuer knows \
                 ({latest}): run a newer issuer"
            )));
        }
        for (version, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            tx.batch_execute(sql)
                .await
                .map_err(|e| StoreError(format!("migration {version}: {}", describe(&e))))?;
            tx.execute(
                "INSERT INTO issuer_schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .await
            .map_err(db_err("cannot record a migration"))?;
            tracing::info!(version, "database migration applied");
        }
        tx.commit()
            .await
            .map_err(db_err("cannot commit the migrations"))
    }

    /// Adds `clients` or replaces those of the same id; with
    /// `only_if_empty`, only into an empty table (the demo seed).
    pub async fn seed_clients(
        &self,
        clients: &[Client],
        only_if_empty: bool,
    ) -> Result<(), StoreError> {
        let mut documents = Vec::new();
        for client in clients {
            let document = serde_json::to_string(client)
                .map_err(|e| StoreError(format!("cannot encode a client: {e}")))?;
            documents.push((client.client_id.clone(), document));
        }
        let mut conn = self.conn().await?;
        let tx = locked_transaction(&mut conn, SEED_LOCK, "cannot seed clients").await?;
        if only_if_empty
            && tx
                .query_opt("SELECT 1 FROM issuer_clients LIMIT 1", &[])
                .await
                .map_err(db_err("cannot seed clients"))?
                .is_some()
        {
            return Ok(());
        }
        for (id, document) in &documents {
            tx.execute(
                "INSERT INTO issuer_clients (client_id, document) VALUES ($1, $2)
                 ON CONFLICT (client_id) DO UPDATE SET document = EXCLUDED.document, updated_at = now()",
                &[id, document],
            )
            .await
            .map_err(db_err("cannot seed clients"))?;
        }
        tx.commit().await.map_err(db_err("cannot seed clients"))
    }

    /// Every client in the database.
    pub async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        let rows = self
            .conn()
            .await?
            .query(
                "SELECT client_id, document FROM issuer_clients ORDER BY client_id",
                &[],
            )
            .await
            .map_err(db_err("cannot read the clients"))?;
        rows.iter()
            .map(|row| {
                let id: String = row.get(0);
                serde_json::from_str(row.get::<_, &str>(1))
                    .map_err(|e| StoreError(format!("client {id:?} in the database: {e}")))
            })
            .collect()
    }

    /// The password hashes of (up to 1000) users: models for the decoys.
    pub async fn password_hashes(&self) -> Result<Vec<String>, StoreError> {
        let rows = self
            .conn()
            .await?
            .query(
                "SELECT password_hash FROM issuer_users ORDER BY username LIMIT 1000",
                &[],
            )
            .await
            .map_err(db_err("cannot read the users"))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// `issuer user add`: a new user. Refuses a name that is taken (by a
    /// user or a client).
    pub async fn add_user(&self, user: &User) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let tx = locked_transaction(&mut conn, SEED_LOCK, "cannot add the user").await?;
        // SECURITY: a login's `sub` is the username, a client-credentials
        // token's the client id: one name must not be both.
        if tx
            .query_opt(
                "SELECT 1 FROM issuer_clients WHERE client_id = $1",
                &[&user.username],
            )
            .await
            .map_err(db_err("cannot add the user"))?
            .is_some()
        {
            return Err(StoreError(format!(
                "{:?} is a client id: a user of that name would share its subject",
                user.username
            )));
        }
        let inserted = tx
            .execute(
                "INSERT INTO issuer_users (username, password_hash, scopes, roles, tenant, audiences)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (username) DO NOTHING",
                &[
                    &user.username,
                    &user.password_hash,
                    &user.scopes,
                    &user.roles,
                    &user.tenant,
                    &user.audiences,
                ],
            )
            .await
            .map_err(db_err("cannot add the user"))?;
        if inserted == 0 {
            return Err(StoreError(format!(
                "user {:?} exists already",
                user.username
            )));
        }
        tx.commit().await.map_err(db_err("cannot add the user"))
    }

    /// `issuer user disable`: the user can no longer log in, their refresh
    /// families are revoked with the access tokens issued from them, and
    /// their other tokens stop introspecting as active.
    pub async fn disable_user(&self, username: &str) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await.map_err(db_err("cannot disable"))?;
        let updated = tx
            .execute(
                "UPDATE issuer_users SET disabled = true, updated_at = now() WHERE username = $1",
                &[&username],
            )
            .await
            .map_err(db_err("cannot disable the user"))?;
        if updated == 0 {
            return Err(StoreError(format!("no user {username:?}")));
        }
        // Locks the families first, as every change to a family does.
        let families: Vec<String> = tx
            .query(
                "SELECT id FROM issuer_refresh_families WHERE sub = $1 AND NOT revoked
                 ORDER BY id FOR UPDATE",
                &[&username],
            )
            .await
            .map_err(db_err("cannot disable the user"))?
            .iter()
            .map(|row| row.get(0))
            .collect();
        for id in &families {
            revoke_family(&tx, id).await?;
        }
        tx.commit().await.map_err(db_err("cannot disable the user"))
    }
}

/// Revokes family `id` (its row locked by the caller) and the access tokens
/// issued from it.
async fn revoke_family(tx: &Transaction<'_>, id: &str) -> Result<(), StoreError> {
    let failed = db_err("cannot revoke a family");
    tx.execute(
        "UPDATE issuer_refresh_families SET revoked = true WHERE id = $1",
        &[&id],
    )
    .await
    .map_err(&failed)?;
    tx.execute(
        "INSERT INTO issuer_revoked_access (jti, exp)
         SELECT jti, exp FROM issuer_family_access WHERE family_id = $1
         ON CONFLICT (jti) DO NOTHING",
        &[&id],
    )
    .await
    .map_err(&failed)?;
    tx.execute(
        "DELETE FROM issuer_family_access WHERE family_id = $1",
        &[&id],
    )
    .await
    .map_err(&failed)?;
    Ok(())
}

/// The family columns, in [`family_of`]'s order.
const FAMILY_COLUMNS: &str =
    "f.id, f.sub, f.client_id, f.scopes, f.audience, f.roles, f.tenant, f.expires_at, f.revoked";

fn family_of(row: &Row) -> (Family, bool) {
    (
        Family {
            id: row.get(0),
            grant: Grant {
                sub: row.get(1),
                client_id: row.get(2),
                scopes: row.get(3),
                audience: row.get(4),
                roles: row.get(5),
                tenant: row.get(6),
            },
            expires_at: row.get(7),
        },
        row.get(8),
    )
}

/// Records `issued` for family `id`, whose token of `generation` it came
/// with, and forgets the oldest beyond [`MAX_ACCESS_PER_FAMILY`].
async fn record(
    tx: &Transaction<'_>,
    id: &str,
    generation: i32,
    issued: &Issued,
) -> Result<(), StoreError> {
    let failed = db_err("cannot record an access token");
    tx.execute(
        "INSERT INTO issuer_family_access (jti, family_id, generation, exp) VALUES ($1, $2, $3, $4)",
        &[&issued.jti, &id, &generation, &issued.exp],
    )
    .await
    .map_err(&failed)?;
    if generation >= MAX_ACCESS_PER_FAMILY {
        tx.execute(
            "DELETE FROM issuer_family_access WHERE family_id = $1 AND generation <= $2",
            &[&id, &(generation - MAX_ACCESS_PER_FAMILY)],
        )
        .await
        .map_err(&failed)?;
    }
    if let Some((hash, claims)) = &issued.opaque {
        tx.execute(
            "INSERT INTO issuer_opaque_tokens (token_hash, claims, exp) VALUES ($1, $2, $3)",
            &[&hash.0.as_slice(), claims, &issued.exp],
        )
        .await
        .map_err(&failed)?;
    }
    Ok(())
}

/// The PostgreSQL [`Store`].
pub struct PgStore {
    db: Db,
}

impl PgStore {
    /// A store over `db` (migrated).
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Runs `f` in a transaction, committed if it returns `Ok`, within the
    /// operation time limit.
    fn in_tx<'a, T: Send + 'a>(
        &'a self,
        f: impl for<'t> FnOnce(&'t Transaction<'t>) -> BoxFuture<'t, StoreResult<T>> + Send + 'a,
    ) -> BoxFuture<'a, StoreResult<T>> {
        Box::pin(self.db.timed(async move {
            let mut conn = self.db.conn().await?;
            let tx = conn
                .transaction()
                .await
                .map_err(db_err("cannot start a transaction"))?;
            let value = f(&tx).await?;
            tx.commit().await.map_err(db_err("cannot commit"))?;
            Ok(value)
        }))
    }

    /// Runs one statement-level read within the operation time limit.
    fn read<'a, T: Send + 'a>(
        &'a self,
        f: impl for<'c> FnOnce(&'c deadpool_postgres::Object) -> BoxFuture<'c, StoreResult<T>>
        + Send
        + 'a,
    ) -> BoxFuture<'a, StoreResult<T>> {
        Box::pin(self.db.timed(async move {
            let conn = self.db.conn().await?;
            f(&conn).await
        }))
    }

    /// Whether `sql` (one `$1` parameter, `key`) finds a row.
    fn exists(
        &self,
        sql: &'static str,
        key: String,
        failed: &'static str,
    ) -> BoxFuture<'_, StoreResult<bool>> {
        self.read(move |conn| {
            Box::pin(async move {
                let row = conn.query_opt(sql, &[&key]).await.map_err(db_err(failed))?;
                Ok(row.is_some())
            })
        })
    }
}

impl Store for PgStore {
    fn create_family(
        &self,
        family: Family,
        first: TokenHash,
        issued: Issued,
    ) -> BoxFuture<'_, StoreResult<()>> {
        self.in_tx(move |tx| {
            Box::pin(async move {
                let g = &family.grant;
                tx.execute(
                    "INSERT INTO issuer_refresh_families
                     (id, sub, client_id, scopes, audience, roles, tenant, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[
                        &family.id,
                        &g.sub,
                        &g.client_id,
                        &g.scopes,
                        &g.audience,
                        &g.roles,
                        &g.tenant,
                        &family.expires_at,
                    ],
                )
                .await
                .map_err(db_err("cannot create a family"))?;
                tx.execute(
                    "INSERT INTO issuer_refresh_tokens (token_hash, family_id, generation)
                     VALUES ($1, $2, 0)",
                    &[&first.0.as_slice(), &family.id],
                )
                .await
                .map_err(db_err("cannot create a family"))?;
                record(tx, &family.id, 0, &issued).await
            })
        })
    }

    fn rotate(
        &self,
        presented: TokenHash,
        next: TokenHash,
        now: i64,
        issued: Option<Issued>,
    ) -> BoxFuture<'_, StoreResult<Redeemed>> {
        self.in_tx(move |tx| {
            Box::pin(async move {
                let failed = db_err("cannot rotate a refresh token");
                // SECURITY (refresh race): the family's row is locked before
                // anything is read about its tokens, so every presentation
                // of any token of one family waits for the one before it.
                let Some(row) = tx
                    .query_opt(
                        &format!(
                            "SELECT {FAMILY_COLUMNS} FROM issuer_refresh_tokens t
                             JOIN issuer_refresh_families f ON f.id = t.family_id
                             WHERE t.token_hash = $1 FOR UPDATE OF f"
                        ),
                        &[&presented.0.as_slice()],
                    )
                    .await
                    .map_err(&failed)?
                else {
                    return Ok(Redeemed::Unknown);
                };
                let (family, revoked) = family_of(&row);
                if revoked {
                    return Ok(Redeemed::Revoked);
                }
                if family.expires_at <= now {
                    return Ok(Redeemed::Expired);
                }
                // A new statement: it sees whatever the previous holder of
                // the lock committed.
                let Some(token) = tx
                    .query_opt(
                        "SELECT used, generation FROM issuer_refresh_tokens WHERE token_hash = $1",
                        &[&presented.0.as_slice()],
                    )
                    .await
                    .map_err(&failed)?
                else {
                    return Ok(Redeemed::Unknown);
                };
                let (used, generation): (bool, i32) = (token.get(0), token.get(1));
                if used {
                    revoke_family(tx, &family.id).await?;
                    return Ok(Redeemed::Reused(family));
                }
                let Some(issued) = issued else {
                    return Ok(Redeemed::Unknown);
                };
                let consumed = tx
                    .execute(
                        "UPDATE issuer_refresh_tokens SET used = true
                         WHERE token_hash = $1 AND NOT used",
                        &[&presented.0.as_slice()],
                    )
                    .await
                    .map_err(&failed)?;
                if consumed != 1 {
                    revoke_family(tx, &family.id).await?;
                    return Ok(Redeemed::Reused(family));
                }
                let next_generation = generation.saturating_add(1);
                tx.execute(
                    "INSERT INTO issuer_refresh_tokens (token_hash, family_id, generation)
                     VALUES ($1, $2, $3)",
                    &[&next.0.as_slice(), &family.id, &next_generation],
                )
                .await
                .map_err(&failed)?;
                // SECURITY (storage): like the memory store, remember the
                // most recent used tokens only; older ones become unknown.
                let window = i32::try_from(MAX_USED_PER_FAMILY).unwrap_or(i32::MAX);
                if next_generation > window {
                    tx.execute(
                        "DELETE FROM issuer_refresh_tokens WHERE family_id = $1 AND generation < $2",
                        &[&family.id, &(next_generation - window)],
                    )
                    .await
                    .map_err(&failed)?;
                }
                record(tx, &family.id, next_generation, &issued).await?;
                Ok(Redeemed::Rotated(family))
            })
        })
    }

    fn live_family(
        &self,
        token: TokenHash,
        now: i64,
    ) -> BoxFuture<'_, StoreResult<Option<Family>>> {
        self.read(move |conn| {
            Box::pin(async move {
                let row = conn
                    .query_opt(
                        &format!(
                            "SELECT {FAMILY_COLUMNS} FROM issuer_refresh_tokens t
                             JOIN issuer_refresh_families f ON f.id = t.family_id
                             WHERE t.token_hash = $1 AND NOT t.used AND NOT f.revoked
                             AND f.expires_at > $2"
                        ),
                        &[&token.0.as_slice(), &now],
                    )
                    .await
                    .map_err(db_err("cannot read a family"))?;
                Ok(row.map(|row| family_of(&row).0))
            })
        })
    }

    fn revoke_family_of(&self, token: TokenHash) -> BoxFuture<'_, StoreResult<Option<Family>>> {
        self.in_tx(move |tx| {
            Box::pin(async move {
                let Some(row) = tx
                    .query_opt(
                        &format!(
                            "SELECT {FAMILY_COLUMNS} FROM issuer_refresh_tokens t
                             JOIN issuer_refresh_families f ON f.id = t.family_id
                             WHERE t.token_hash = $1 FOR UPDATE OF f"
                        ),
                        &[&token.0.as_slice()],
                    )
                    .await
                    .map_err(db_err("cannot revoke a family"))?
                else {
                    return Ok(None);
                };
                let (family, _) = family_of(&row);
                revoke_family(tx, &family.id).await?;
                Ok(Some(family))
            })
        })
    }

    fn revoke_access(&self, jti: String, exp: i64) -> BoxFuture<'_, StoreResult<()>> {
        self.read(move |conn| {
            Box::pin(async move {
                conn.execute(
                    "INSERT INTO issuer_revoked_access (jti, exp) VALUES ($1, $2)
                     ON CONFLICT (jti) DO UPDATE SET exp = GREATEST(issuer_revoked_access.exp, EXCLUDED.exp)",
                    &[&jti, &exp],
                )
                .await
                .map_err(db_err("cannot revoke an access token"))?;
                Ok(())
            })
        })
    }

    fn is_access_revoked(&self, jti: String) -> BoxFuture<'_, StoreResult<bool>> {
        self.exists(
            "SELECT 1 FROM issuer_revoked_access WHERE jti = $1",
            jti,
            "cannot read revocations",
        )
    }

    fn purge(&self, now: i64) -> BoxFuture<'_, StoreResult<()>> {
        self.read(move |conn| {
            Box::pin(async move {
                conn.batch_execute(&format!(
                    "DELETE FROM issuer_revoked_access WHERE exp <= {now};
                     DELETE FROM issuer_opaque_tokens WHERE exp <= {now};
                     DELETE FROM issuer_family_access WHERE exp <= {now};
                     DELETE FROM issuer_refresh_families WHERE expires_at <= {now};
                     DELETE FROM issuer_login_failures
                     WHERE locked_until_ms <= {now} * 1000 AND last_ms < ({now} * 1000) - {LOGIN_MAX_LOCK_MS};"
                ))
                .await
                .map_err(db_err("cannot purge"))
            })
        })
    }

    fn save_opaque(
        &self,
        token: TokenHash,
        claims: String,
        exp: i64,
    ) -> BoxFuture<'_, StoreResult<()>> {
        self.read(move |conn| {
            Box::pin(async move {
                conn.execute(
                    "INSERT INTO issuer_opaque_tokens (token_hash, claims, exp) VALUES ($1, $2, $3)",
                    &[&token.0.as_slice(), &claims, &exp],
                )
                .await
                .map_err(db_err("cannot save an opaque token"))?;
                Ok(())
            })
        })
    }

    fn opaque(&self, token: TokenHash, now: i64) -> BoxFuture<'_, StoreResult<Option<String>>> {
        self.read(move |conn| {
            Box::pin(async move {
                let row = conn
                    .query_opt(
                        "SELECT claims FROM issuer_opaque_tokens WHERE token_hash = $1 AND exp > $2",
                        &[&token.0.as_slice(), &now],
                    )
                    .await
                    .map_err(db_err("cannot read an opaque token"))?;
                Ok(row.map(|row| row.get(0)))
            })
        })
    }

    fn seed_users(&self, users: Vec<User>, only_if_empty: bool) -> BoxFuture<'_, StoreResult<()>> {
        self.in_tx(move |tx| {
            Box::pin(async move {
                let failed = db_err("cannot seed users");
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SEED_LOCK])
                    .await
                    .map_err(&failed)?;
                if only_if_empty
                    && tx
                        .query_opt("SELECT 1 FROM issuer_users LIMIT 1", &[])
                        .await
                        .map_err(&failed)?
                        .is_some()
                {
                    return Ok(());
                }
                for user in &users {
                    tx.execute(
                        "INSERT INTO issuer_users (username, password_hash, scopes, roles, tenant, audiences)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash,
                         scopes = EXCLUDED.scopes, roles = EXCLUDED.roles, tenant = EXCLUDED.tenant,
                         audiences = EXCLUDED.audiences, updated_at = now()",
                        &[
                            &user.username,
                            &user.password_hash,
                            &user.scopes,
                            &user.roles,
                            &user.tenant,
                            &user.audiences,
                        ],
                    )
                    .await
                    .map_err(&failed)?;
                }
                Ok(())
            })
        })
    }

    fn user(&self, name: String) -> BoxFuture<'_, StoreResult<Option<User>>> {
        self.read(move |conn| {
            Box::pin(async move {
                let row = conn
                    .query_opt(
                        "SELECT username, password_hash, scopes, roles, tenant, audiences
                         FROM issuer_users WHERE username = $1 AND NOT disabled",
                        &[&name],
                    )
                    .await
                    .map_err(db_err("cannot read a user"))?;
                Ok(row.map(|row| User {
                    username: row.get(0),
                    password_hash: row.get(1),
                    scopes: row.get(2),
                    roles: row.get(3),
                    tenant: row.get(4),
                    audiences: row.get(5),
                }))
            })
        })
    }

    fn is_disabled(&self, sub: String) -> BoxFuture<'_, StoreResult<bool>> {
        self.exists(
            "SELECT 1 FROM issuer_users WHERE username = $1 AND disabled",
            sub,
            "cannot read a user",
        )
    }

    fn login_locked(
        &self,
        source: String,
        name: String,
        now_ms: i64,
    ) -> BoxFuture<'_, StoreResult<Option<i64>>> {
        self.read(move |conn| {
            Box::pin(async move {
                let row = conn
                    .query_opt(
                        "SELECT locked_until_ms FROM issuer_login_failures
                         WHERE source = $1 AND name = $2 AND locked_until_ms > $3",
                        &[&source, &name, &now_ms],
                    )
                    .await
                    .map_err(db_err("cannot read login failures"))?;
                Ok(row.map(|row| row.get::<_, i64>(0) - now_ms))
            })
        })
    }

    fn login_failed(
        &self,
        source: String,
        name: String,
        now_ms: i64,
    ) -> BoxFuture<'_, StoreResult<()>> {
        self.in_tx(move |tx| {
            Box::pin(async move {
                let failed = db_err("cannot count a failed login");
                // Failures long ago do not count against a returning user.
                let failures: i32 = tx
                    .query_one(
                        "INSERT INTO issuer_login_failures (source, name, failures, locked_until_ms, last_ms)
                         VALUES ($1, $2, 1, 0, $3)
                         ON CONFLICT (source, name) DO UPDATE SET
                         failures = CASE WHEN issuer_login_failures.last_ms < $3 - $4
                                    THEN 1 ELSE issuer_login_failures.failures + 1 END,
                         last_ms = $3
                         RETURNING failures",
                        &[&source, &name, &now_ms, &LOGIN_MAX_LOCK_MS],
                    )
                    .await
                    .map_err(&failed)?
                    .get(0);
                if failures > LOGIN_FREE_FAILURES {
                    let doublings = u32::try_from(failures - LOGIN_FREE_FAILURES - 1)
                        .unwrap_or(0)
                        .min(20);
                    let lock = (1000_i64 << doublings).min(LOGIN_MAX_LOCK_MS);
                    tx.execute(
                        "UPDATE issuer_login_failures SET locked_until_ms = $3
                         WHERE source = $1 AND name = $2",
                        &[&source, &name, &(now_ms + lock)],
                    )
                    .await
                    .map_err(&failed)?;
                }
                Ok(())
            })
        })
    }

    fn login_succeeded(&self, source: String, name: String) -> BoxFuture<'_, StoreResult<()>> {
        self.read(move |conn| {
            Box::pin(async move {
                conn.execute(
                    "DELETE FROM issuer_login_failures WHERE source = $1 AND name = $2",
                    &[&source, &name],
                )
                .await
                .map_err(db_err("cannot forget login failures"))?;
                Ok(())
            })
        })
    }
}

/// A signing key as stored: its schedule and its private part (PKCS#8,
/// sealed with AES-256-GCM when `encryption` says so).
pub struct KeyRow {
    /// Key id.
    pub kid: String,
    /// JOSE algorithm name.
    pub alg: String,
    /// When it was made, ms since the epoch.
    pub created_ms: i64,
    /// When it starts (started) signing, ms since the epoch.
    pub activates_ms: i64,
    /// The longest access-token lifetime in force while it could sign.
    pub ttl_ms: i64,
    /// `none` or `aes-256-gcm`.
    pub encryption: String,
    /// The PKCS#8 document, or `nonce || ciphertext || tag`.
    pub private_key: Vec<u8>,
}

const KEY_COLUMNS: &str = "kid, alg, created_ms, activates_ms, ttl_ms, encryption, private_key";

fn key_row(row: &Row) -> KeyRow {
    KeyRow {
        kid: row.get(0),
        alg: row.get(1),
        created_ms: row.get(2),
        activates_ms: row.get(3),
        ttl_ms: row.get(4),
        encryption: row.get(5),
        private_key: row.get(6),
    }
}

/// A transaction holding the keys' advisory lock until it ends.
pub async fn keys_transaction(
    conn: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>, StoreError> {
    locked_transaction(conn, KEYS_LOCK, "cannot lock the keys").await
}

/// A transaction holding the advisory lock `lock` until it ends: one
/// replica at a time. `failed` names what could not be done.
async fn locked_transaction<'c>(
    conn: &'c mut deadpool_postgres::Object,
    lock: i64,
    failed: &'static str,
) -> Result<deadpool_postgres::Transaction<'c>, StoreError> {
    let tx = conn.transaction().await.map_err(db_err(failed))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])
        .await
        .map_err(db_err(failed))?;
    Ok(tx)
}

/// The stored keys.
pub async fn load_keys(tx: &Transaction<'_>) -> Result<Vec<KeyRow>, StoreError> {
    let rows = tx
        .query(
            &format!("SELECT {KEY_COLUMNS} FROM issuer_signing_keys"),
            &[],
        )
        .await
        .map_err(db_err("cannot read the signing keys"))?;
    Ok(rows.iter().map(key_row).collect())
}

/// [`load_keys`] outside a transaction.
pub async fn load_keys_from(conn: &deadpool_postgres::Object) -> Result<Vec<KeyRow>, StoreError> {
    let rows = conn
        .query(
            &format!("SELECT {KEY_COLUMNS} FROM issuer_signing_keys"),
            &[],
        )
        .await
        .map_err(db_err("cannot read the signing keys"))?;
    Ok(rows.iter().map(key_row).collect())
}

/// Stores a new key.
pub async fn insert_key(tx: &Transaction<'_>, key: &KeyRow) -> Result<(), StoreError> {
    tx.execute(
        &format!(
            "INSERT INTO issuer_signing_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ),
        &[
            &key.kid,
            &key.alg,
            &key.created_ms,
            &key.activates_ms,
            &key.ttl_ms,
            &key.encryption,
            &key.private_key,
        ],
    )
    .await
    .map_err(db_err("cannot store a signing key"))?;
    Ok(())
}

/// Replaces the stored private part of key `kid`.
pub async fn seal_key(
    tx: &Transaction<'_>,
    kid: &str,
    encryption: &str,
    private_key: &[u8],
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE issuer_signing_keys SET encryption = $2, private_key = $3 WHERE kid = $1",
        &[&kid, &encryption, &private_key],
    )
    .await
    .map_err(db_err("cannot encrypt a signing key"))?;
    Ok(())
}

/// Forgets retired keys.
pub async fn delete_keys(
    conn: &deadpool_postgres::Object,
    kids: &[String],
) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM issuer_signing_keys WHERE kid = ANY($1)",
        &[&kids],
    )
    .await
    .map_err(db_err("cannot delete retired keys"))?;
    Ok(())
}
