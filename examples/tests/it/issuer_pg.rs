//! The bundled issuer on a real PostgreSQL (`DATABASE_URL`): replicas
//! sharing one database, restarts, the refresh race, the user CLI and a
//! database outage.
//!
//! These tests need `AUTHLAYER_TEST_DATABASE_URL`, a superuser URL of a
//! throwaway cluster (`bash .ci/run` starts one); each test creates and
//! drops its own database, so they run concurrently. In CI (`CI=true`) a
//! missing URL fails every test; elsewhere they print how to run them and
//! return.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio_postgres::NoTls;

use crate::e2e::{client, config, form};
use crate::issuer;
use crate::issuer::config::{Config, DatabaseUrl};
use crate::issuer::keys::KeyCipher;

const ISS: &str = "http://issuer.replicas.test";
const URL_VAR: &str = "AUTHLAYER_TEST_DATABASE_URL";

/// A database of its own on the test cluster.
struct TestDb {
    admin: tokio_postgres::Client,
    name: String,
    url: String,
}

impl TestDb {
    /// A fresh database, or `None` (after a notice) outside CI without
    /// [`URL_VAR`].
    async fn create() -> Option<Self> {
        let Ok(admin_url) = std::env::var(URL_VAR) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{URL_VAR} is not set: CI must run the PostgreSQL tests (.ci/run starts a \
                 throwaway cluster and sets it)"
            );
            eprintln!(
                "NOTICE: PostgreSQL test not run: set {URL_VAR}=postgres://USER@127.0.0.1:PORT/postgres \
                 (a superuser of a throwaway cluster), or run `bash .ci/run`, which starts one"
            );
            return None;
        };
        let (admin, connection) = tokio_postgres::connect(&admin_url, NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {URL_VAR}: {e}"));
        tokio::spawn(connection);
        let mut id = [0u8; 8];
        aws_lc_rs::rand::fill(&mut id).unwrap();
        let name = format!("issuer_test_{}", issuer::keys::hex(&id));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        let mut url = url::Url::parse(&admin_url).expect("a URL");
        url.set_path(&format!("/{name}"));
        Some(Self {
            admin,
            name,
            url: url.to_string(),
        })
    }

    /// A connection to the test database itself.
    async fn connect(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(connection);
        client
    }

    /// The outage: no new connection is accepted and every open one is
    /// cut, as when the database server stops.
    async fn stop(&self) {
        self.admin
            .batch_execute(&format!(
                "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = '{name}' AND pid <> pg_backend_pid();",
                name = self.name
            ))
            .await
            .expect("stop the test database");
    }

    /// The end of the outage.
    async fn restart(&self) {
        self.admin
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                self.name
            ))
            .await
            .expect("restart the test database");
    }

    async fn drop_db(self) {
        self.admin
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await
            .expect("drop the test database");
    }
}

/// The e2e configuration (alice; orders-service, reader, ops clients) on
/// `db`, every replica with the same `iss`.
fn replica_config(db: &TestDb) -> Config {
    let mut opaque = client(
        "opaque-service",
        "opaque-secret",
        &["orders:read"],
        &[issuer::config::GRANT_CLIENT_CREDENTIALS],
        false,
    );
    opaque.opaque_access_tokens = true;
    let mut config = config();
    config.clients.push(opaque);
    Config {
        issuer_url: Some(ISS.into()),
        database_url: Some(DatabaseUrl(db.url.clone())),
        key_reload_every: Duration::from_millis(100),
        ..config
    }
}

/// A replica that brings no users or clients of its own: it knows only
/// what the database holds.
fn bare_config(db: &TestDb) -> Config {
    Config {
        users: Vec::new(),
        clients: Vec::new(),
        ..replica_config(db)
    }
}

async fn replica(config: Config) -> issuer::server::Running {
    issuer::server::start(config)
        .await
        .unwrap_or_else(|e| panic!("replica starts: {e}"))
}

fn base(r: &issuer::server::Running) -> String {
    format!("http://{}", r.addr())
}

async fn post(
    r: &issuer::server::Running,
    path: &str,
    pairs: &[(&str, &str)],
) -> (StatusCode, Value) {
    post_as(r, path, pairs, None).await
}

async fn post_as(
    r: &issuer::server::Running,
    path: &str,
    pairs: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", base(r)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let res = req.send().await.expect("the replica answers");
    let status = res.status();
    let text = res.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn login(r: &issuer::server::Running, user: &str, password: &str) -> (StatusCode, Value) {
    post(r, "/login", &[("username", user), ("password", password)]).await
}

async fn refresh(r: &issuer::server::Running, token: &str) -> (StatusCode, Value) {
    post(r, "/refresh", &[("refresh_token", token)]).await
}

/// `/introspect` as orders-service: whether `token` is active.
async fn active(r: &issuer::server::Running, token: &str) -> bool {
    let (status, body) = post_as(
        r,
        "/introspect",
        &[("token", token)],
        Some(("orders-service", "orders-secret")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["active"] == Value::Bool(true)
}

async fn jwks(r: &issuer::server::Running) -> Value {
    reqwest::get(format!("{}/.well-known/jwks.json", base(r)))
        .await
        .expect("the replica answers")
        .json()
        .await
        .expect("a JWK Set")
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

fn text(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_owned()
}

/// Waits (bounded) until both replicas publish the same key set, which
/// each rereads every `key_reload_every` (100 ms here).
async fn same_jwks(a: &issuer::server::Running, b: &issuer::server::Running) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (ja, jb) = (jwks(a).await, jwks(b).await);
        if ja == jb {
            return ja;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replicas publish different keys: {:?} vs {:?}",
            kids(&ja),
            kids(&jb)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_keys_refresh_families_revocations_and_opaque_tokens() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let a = replica(replica_config(&db)).await;
    // B brings no users or clients: alice and the clients come from the database.
    let b = replica(bare_config(&db)).await;

    // One key set, one signer: a token signed at A is valid at B.
    let keys = same_jwks(&a, &b).await;
    assert_eq!(kids(&keys).len(), 1, "{keys}");
    let (status, session) = login(&a, "alice", "alice-password").await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let access = text(&session, "access_token");
    assert!(active(&b, &access).await, "A's token is active at B");

    // The family: rotated at B, reuse detected at A, the family revoked everywhere.
    let first = text(&session, "refresh_token");
    let (status, rotated) = refresh(&b, &first).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let second = text(&rotated, "refresh_token");
    let (status, reused) = refresh(&a, &first).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reused}");
    assert_eq!(reused["error"], "invalid_grant");
    let (status, _) = refresh(&b, &second).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the family is revoked at B too"
    );
    assert!(
        !active(&a, &text(&rotated, "access_token")).await,
        "the family's access tokens are revoked with it"
    );

    // Revocations: an access token revoked at B is inactive at A; a
    // refresh token revoked at A no longer refreshes at B.
    let (_, session) = login(&b, "alice", "alice-password").await;
    let access = text(&session, "access_token");
    assert!(active(&a, &access).await);
    let (status, _) = post(&b, "/revoke", &[("token", &access)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!active(&a, &access).await, "revoked at B, inactive at A");
    let (status, _) = post(
        &a,
        "/revoke",
        &[("token", &text(&session, "refresh_token"))],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = refresh(&b, &text(&session, "refresh_token")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Opaque access tokens: issued at A, introspected at B.
    let (status, opaque) = post_as(
        &a,
        "/token",
        &[("grant_type", "client_credentials")],
        Some(("opaque-service", "opaque-secret")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{opaque}");
    let opaque = text(&opaque, "access_token");
    assert_eq!(opaque.matches('.').count(), 0, "an opaque token");
    assert!(active(&b, &opaque).await, "A's opaque token is active at B");

    // A rotation at A is published by B too, and one rotation at a time:
    // asking B right after returns A's pending key.
    let (status, rotation) = post_as(&a, "/admin/rotate", &[], Some(("ops", "ops-secret"))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{rotation}");
    let (status, again) = post_as(&b, "/admin/rotate", &[], Some(("ops", "ops-secret"))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["kid"], rotation["kid"], "B sees A's pending key");
    assert_eq!(again["already_pending"], true);
    let keys = same_jwks(&a, &b).await;
    assert!(kids(&keys).contains(&text(&rotation, "kid")), "{keys}");
    assert_eq!(kids(&keys).len(), 2, "{keys}");

    drop((a, b));
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_of_one_token_across_replicas_have_exactly_one_winner() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let a = replica(replica_config(&db)).await;
    let b = replica(bare_config(&db)).await;
    for round in 0..3 {
        let (status, session) = login(&a, "alice", "alice-password").await;
        assert_eq!(status, StatusCode::OK, "{session}");
        let token = text(&session, "refresh_token");
        let mut racers = tokio::task::JoinSet::new();
        for i in 0..16 {
            let url = format!("{}/refresh", base(if i % 2 == 0 { &a } else { &b }));
            let body = form(&[("refresh_token", &token)]);
            racers.spawn(async move {
                let res = reqwest::Client::new()
                    .post(url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .expect("the replica answers");
                let status = res.status();
                (status, res.json::<Value>().await.unwrap_or(Value::Null))
            });
        }
        let outcomes = racers.join_all().await;
        let winners: Vec<&Value> = outcomes
            .iter()
            .filter(|(s, _)| *s == StatusCode::OK)
            .map(|(_, body)| body)
            .collect();
        let statuses: Vec<u16> = outcomes.iter().map(|(s, _)| s.as_u16()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {statuses:?}");
        for (status, body) in &outcomes {
            if *status != StatusCode::OK {
                assert_eq!(*status, StatusCode::BAD_REQUEST, "round {round}: {body}");
                assert_eq!(body["error"], "invalid_grant", "round {round}: {body}");
            }
        }
        // The losers presented a used token: the family is revoked, the
        // winner's new token included, at either replica.
        let (status, _) = refresh(&b, &text(winners[0], "refresh_token")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "round {round}");
        assert!(!active(&a, &text(winners[0], "access_token")).await);
    }
    drop((a, b));
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_added_with_the_cli_log_in_at_every_replica_and_disabling_ends_their_tokens() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let a = replica(replica_config(&db)).await;
    let b = replica(bare_config(&db)).await;
    let args: Vec<String> = [
        "add",
        "carol",
        "--scopes",
        "orders:read",
        "--roles",
        "customer",
        "--tenant",
        "acme",
    ]
    .map(String::from)
    .to_vec();
    let line = issuer::cli::user_command(&args, &mut &b"carol-password\n"[..], Some(&db.url))
        .await
        .expect("user add");
    assert!(line.contains("carol"), "{line}");
    let again = issuer::cli::user_command(&args, &mut &b"other\n"[..], Some(&db.url)).await;
    assert!(again.expect_err("a second carol").contains("exists"));

    let (status, at_a) = login(&a, "carol", "carol-password").await;
    assert_eq!(status, StatusCode::OK, "{at_a}");
    assert_eq!(at_a["scope"], "orders:read");
    let (status, at_b) = login(&b, "carol", "carol-password").await;
    assert_eq!(status, StatusCode::OK, "{at_b}");
    let (status, _) = login(&b, "carol", "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(active(&a, &text(&at_b, "access_token")).await);

    let disable: Vec<String> = ["disable", "carol"].map(String::from).to_vec();
    issuer::cli::user_command(&disable, &mut &b""[..], Some(&db.url))
        .await
        .expect("user disable");
    for r in [&a, &b] {
        let (status, _) = login(r, "carol", "carol-password").await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "a disabled user cannot log in"
        );
    }
    for session in [&at_a, &at_b] {
        assert!(!active(&a, &text(session, "access_token")).await);
        assert!(!active(&b, &text(session, "access_token")).await);
        let (status, _) = refresh(&b, &text(session, "refresh_token")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "refresh refused");
    }
    // Alice is untouched.
    let (status, _) = login(&b, "alice", "alice-password").await;
    assert_eq!(status, StatusCode::OK);
    drop((a, b));
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_counted_across_replicas() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let a = replica(replica_config(&db)).await;
    let b = replica(bare_config(&db)).await;
    // Six guesses, three at each replica: neither replica's own back-off
    // (five free failures) has seen enough, the shared count has.
    for i in 0..6 {
        let (status, body) = login(if i % 2 == 0 { &a } else { &b }, "alice", "guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "guess {i}: {body}");
    }
    for r in [&a, &b] {
        let (status, body) = login(r, "alice", "alice-password").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    }
    drop((a, b));
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_sessions_and_keys() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let a = replica(replica_config(&db)).await;
    let b = replica(bare_config(&db)).await;
    let (_, session) = login(&a, "alice", "alice-password").await;
    let before = same_jwks(&a, &b).await;
    a.shutdown().await.expect("A stops");
    b.shutdown().await.expect("B stops");

    let c = replica(bare_config(&db)).await;
    let after = jwks(&c).await;
    assert_eq!(
        kids(&after),
        kids(&before),
        "the same keys after the restart"
    );
    assert!(active(&c, &text(&session, "access_token")).await);
    let (status, rotated) = refresh(&c, &text(&session, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "the session survives: {rotated}");
    drop(c);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_at_once_migrate_once_and_make_one_key() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (a, b) = tokio::join!(replica(replica_config(&db)), replica(replica_config(&db)));
    let keys = same_jwks(&a, &b).await;
    assert_eq!(kids(&keys).len(), 1, "one first key for both: {keys}");
    let conn = db.connect().await;
    let versions: i64 = conn
        .query_one("SELECT count(*) FROM issuer_schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(versions, 2);
    drop((a, b));
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_answers_503_loses_nothing_and_recovers_by_itself() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let a = replica(replica_config(&db)).await;
    let b = replica(bare_config(&db)).await;
    let (_, session) = login(&a, "alice", "alice-password").await;
    let token = text(&session, "refresh_token");
    let health = |r: &issuer::server::Running| {
        let url = format!("{}/health", base(r));
        async move {
            let res = reqwest::get(url).await.expect("the replica answers");
            (res.status(), res.json::<Value>().await.expect("JSON"))
        }
    };
    assert_eq!(health(&b).await.0, StatusCode::OK);

    db.stop().await;
    for r in [&a, &b] {
        let (status, body) = login(r, "alice", "alice-password").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["error"], "temporarily_unavailable");
        let (status, body) = refresh(r, &token).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        let (status, body) = health(r).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["database"]["ready"], false);
        // The keys are in memory: the JWK Set is still served.
        assert_eq!(kids(&jwks(r).await).len(), 1);
    }

    db.restart().await;
    assert_eq!(health(&a).await.0, StatusCode::OK);
    // The refresh token presented during the outage was not consumed.
    let (status, rotated) = refresh(&b, &token).await;
    assert_eq!(status, StatusCode::OK, "no family lost: {rotated}");
    let (status, rotated) = refresh(&a, &text(&rotated, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let (status, _) = login(&b, "alice", "alice-password").await;
    assert_eq!(status, StatusCode::OK);
    drop((a, b));
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_keys_need_the_key_they_were_encrypted_with() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let cipher = |byte: u8| {
        use base64::Engine as _;
        KeyCipher::from_base64(&base64::engine::general_purpose::STANDARD.encode([byte; 32]))
            .expect("a key")
    };
    // Keys made without a cipher are stored in the clear…
    let plain = replica(replica_config(&db)).await;
    let first = jwks(&plain).await;
    plain.shutdown().await.expect("stops");
    let conn = db.connect().await;
    assert_eq!(encryption_of_keys(&conn).await, ["none"]);

    // …and encrypted as soon as a replica with the key starts.
    let sealed = replica(Config {
        key_encryption_key: Some(cipher(7)),
        ..replica_config(&db)
    })
    .await;
    assert_eq!(jwks(&sealed).await, first, "the same key, now encrypted");
    sealed.shutdown().await.expect("stops");
    assert_eq!(encryption_of_keys(&conn).await, ["aes-256-gcm"]);

    for (config, expected) in [
        (replica_config(&db), "ISSUER_KEY_ENCRYPTION_KEY"),
        (
            Config {
                key_encryption_key: Some(cipher(8)),
                ..replica_config(&db)
            },
            "cannot decrypt",
        ),
    ] {
        let refused = match issuer::server::start(config).await {
            Ok(_) => panic!("started without the right key"),
            Err(e) => e.to_string(),
        };
        assert!(refused.contains(expected), "{refused}");
    }
    let again = replica(Config {
        key_encryption_key: Some(cipher(7)),
        ..replica_config(&db)
    })
    .await;
    assert_eq!(jwks(&again).await, first);
    drop(again);
    db.drop_db().await;
}

async fn encryption_of_keys(conn: &tokio_postgres::Client) -> Vec<String> {
    conn.query("SELECT encryption FROM issuer_signing_keys", &[])
        .await
        .expect("read the keys")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_processes_on_one_database_follow_the_contract() {
    use std::io::Write as _;
    let Some(db) = TestDb::create().await else {
        return;
    };
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("ISSUER_URL", "http://issuer.contract.test"),
    ];
    let one = crate::examples::start("issuer", &env);
    let two = crate::examples::start("issuer", &env);
    let get = |addr: std::net::SocketAddr| async move {
        reqwest::get(format!("http://{addr}/.well-known/jwks.json"))
            .await
            .expect("answers")
            .json::<Value>()
            .await
            .expect("JSON")
    };
    assert_eq!(get(one.addr).await, get(two.addr).await, "same JWKS");

    let mut add = std::process::Command::new(crate::examples::example("issuer"))
        .args(["user", "add", "dave", "--scopes", "orders:read"])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run issuer user add");
    add.stdin
        .take()
        .expect("stdin")
        .write_all(b"dave-password\n")
        .expect("write the password");
    let output = add.wait_with_output().expect("issuer user add ends");
    assert!(output.status.success(), "{output:?}");

    let http = reqwest::Client::new();
    let mut refresh_token = String::new();
    for addr in [one.addr, two.addr] {
        let body: Value = http
            .post(format!("http://{addr}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("username", "dave"), ("password", "dave-password")]))
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("JSON");
        refresh_token = text(&body, "refresh_token");
    }
    let before = get(one.addr).await;
    drop((one, two));
    let three = crate::examples::start("issuer", &env);
    assert_eq!(get(three.addr).await, before, "the keys survive");
    let res = http
        .post(format!("http://{}/refresh", three.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("refresh_token", refresh_token.as_str())]))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status(), StatusCode::OK, "the session survives");
    drop(three);
    db.drop_db().await;
}

#[test]
fn the_cli_refuses_a_password_on_the_command_line() {
    let args: Vec<String> = ["add", "erin", "--password", "secret"]
        .map(String::from)
        .to_vec();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let refused = runtime
        .block_on(issuer::cli::user_command(
            &args,
            &mut &b""[..],
            Some("postgres://nobody@127.0.0.1:1/none"),
        ))
        .expect_err("a password in argv");
    assert!(refused.contains("stdin"), "{refused}");
}
