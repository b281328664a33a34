//! A replay store shared by replicas, on Redis (feature `redis`).
//!
//! Each first use is one `SET <prefix><key> 1 NX PX <ttl>`: atomic in
//! Redis, so of two replicas receiving one proof exactly one accepts it,
//! and the entry expires with the proof's window. One multiplexed
//! connection per store, re-established in the background after a
//! failure (`redis::aio::ConnectionManager`).
//!
//! SECURITY (fail closed): when Redis does not answer within the timeout,
//! or answers with an error, the proof is refused (503): a replay that
//! cannot be ruled out is never let through.

use std::fmt;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::replay::{ProofStore, ReplayKey, StoreError, StoreFuture};

/// Default key prefix: several services may share one Redis.
const DEFAULT_PREFIX: &str = "authlayer:dpop:";
/// Default bound on one store round trip (connection included): Redis on
/// the same network answers in well under a millisecond.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);
/// Bound on connecting when the store is created.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Proofs seen by any replica connected to the same Redis.
#[derive(Clone)]
pub(crate) struct RedisReplayStore {
    connection: ConnectionManager,
    prefix: Box<str>,
    timeout: Duration,
}

impl fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SECURITY: never the URL, which may hold a password.
        f.debug_struct("RedisReplayStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisReplayStore {
    /// Connects to the Redis at `url` (`redis://[user:password@]host:port[/db]`).
    /// Fails when the URL is invalid or Redis cannot be reached now: a
    /// server should not start believing it is protected from replays.
    pub(crate) async fn connect(url: &str) -> Result<Self, StoreError> {
        // The error messages below never repeat the URL (it may hold a password).
        let client = ::redis::Client::open(url)
            .map_err(|e| StoreError(format!("the Redis URL is not usable: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEFAULT_TIMEOUT))
            .set_response_timeout(Some(DEFAULT_TIMEOUT))
            // Few quick retries: a request waiting on a reconnection is
            // bounded by `timeout` anyway.
            .set_number_of_retries(2);
        let connection = tokio::time::timeout(
            CONNECT_TIMEOUT,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| StoreError("Redis did not answer the connection in time".into()))?
        .map_err(|e| StoreError(format!("cannot connect to Redis: {e}")))?;
        Ok(RedisReplayStore {
            connection,
            prefix: DEFAULT_PREFIX.into(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The prefix of every key this store writes. Defaults to `authlayer:dpop:`.
    #[must_use]
    #[cfg(test)] // only the tests need it
    pub(crate) fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one check may take before the proof is refused. Defaults to 500 ms.
    #[must_use]
    #[cfg(test)] // only the tests need it
    pub(crate) fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn key_name(&self, key: &ReplayKey) -> String {
        let mut name = String::with_capacity(self.prefix.len() + 43);
        name.push_str(&self.prefix);
        URL_SAFE_NO_PAD.encode_string(key.0, &mut name);
        name
    }
}

impl ProofStore for RedisReplayStore {
    fn first_use<'a>(
        &'a self,
        key: &'a ReplayKey,
        ttl: Duration,
    ) -> StoreFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let mut set = ::redis::cmd("SET");
            set.arg(self.key_name(key))
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(millis);
            // `OK` when set, nil when the key exists.
            let answer = set.query_async::<Option<String>>(&mut connection);
            match tokio::time::timeout(self.timeout, answer).await {
                Ok(Ok(stored)) => Ok(stored.is_some()),
                Ok(Err(e)) => Err(StoreError(format!("Redis: {e}"))),
                Err(_) => Err(StoreError(format!(
                    "Redis did not answer within {} ms",
                    self.timeout.as_millis()
                ))),
            }
        })
    }
}

/// The test Redis from `REDIS_URL` (`bash .ci/run` starts one), or `None`
/// after a notice outside CI. Only a loopback Redis is ever used.
#[cfg(test)]
pub(crate) fn test_redis_url() -> Option<String> {
    let Ok(url) = std::env::var("REDIS_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "REDIS_URL is not set: CI must run the Redis tests (.ci/run starts a throwaway \
             redis-server and sets it)"
        );
        eprintln!(
            "NOTICE: Redis test not run: set REDIS_URL=redis://127.0.0.1:PORT of a throwaway \
             redis-server, or run `bash .ci/run`, which starts one"
        );
        return None;
    };
    let host = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    assert!(
        matches!(host.as_deref(), Some("127.0.0.1" | "localhost" | "[::1]")),
        "REDIS_URL must name a Redis on loopback for tests"
    );
    Some(url)
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Child, Command, Stdio};

    use super::*;

    /// A key no other test (or earlier run) uses.
    fn unique_key() -> ReplayKey {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        ReplayKey::new(
            "test",
            &format!("{nanos}-{:?}", std::thread::current().id()),
            "GET",
            "x",
        )
        .unwrap()
    }

    #[tokio::test]
    async fn replay_across_two_stores_sharing_one_redis() {
        let Some(url) = test_redis_url() else { return };
        let a = RedisReplayStore::connect(&url).await.unwrap();
        let b = RedisReplayStore::connect(&url).await.unwrap();
        let key = unique_key();
        let ttl = Duration::from_secs(60);
        assert_eq!(a.first_use(&key, ttl).await, Ok(true));
        assert_eq!(
            b.first_use(&key, ttl).await,
            Ok(false),
            "seen by the other replica"
        );
        assert_eq!(a.first_use(&key, ttl).await, Ok(false));
        assert_eq!(b.first_use(&unique_key(), ttl).await, Ok(true));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_uses_across_stores_let_exactly_one_through() {
        let Some(url) = test_redis_url() else { return };
        let stores = [
            RedisReplayStore::connect(&url).await.unwrap(),
            RedisReplayStore::connect(&url).await.unwrap(),
        ];
        let key = unique_key();
        let mut tries = tokio::task::JoinSet::new();
        for i in 0..16 {
            let store = stores[i % 2].clone();
            tries.spawn(async move { store.first_use(&key, Duration::from_secs(60)).await });
        }
        let answers = tries.join_all().await;
        assert_eq!(
            answers.iter().filter(|a| **a == Ok(true)).count(),
            1,
            "{answers:?}"
        );
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    }

    #[tokio::test]
    async fn an_entry_expires_with_its_ttl_in_redis() {
        let Some(url) = test_redis_url() else { return };
        let store = RedisReplayStore::connect(&url).await.unwrap();
        let key = unique_key();
        assert_eq!(
            store.first_use(&key, Duration::from_secs(60)).await,
            Ok(true)
        );
        let client = ::redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let pttl: i64 = ::redis::cmd("PTTL")
            .arg(store.key_name(&key))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!((59_000..=60_000).contains(&pttl), "PTTL {pttl}");
        assert!(store.key_name(&key).starts_with("authlayer:dpop:"));
        let prefixed = store.clone().prefix("other:");
        assert!(prefixed.key_name(&key).starts_with("other:"));
        assert_eq!(
            prefixed.first_use(&key, Duration::from_secs(60)).await,
            Ok(true),
            "another prefix is another namespace"
        );
    }

    #[tokio::test]
    async fn an_unreachable_redis_fails_at_connect_with_a_clear_error() {
        // A port nothing listens on: bind one, then free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("redis://:hunter2@127.0.0.1:{port}");
        let error = RedisReplayStore::connect(&url).await.unwrap_err();
        assert!(error.0.starts_with("cannot connect to Redis"), "{error}");
        assert!(!error.0.contains("hunter2"), "the password leaked: {error}");
        for bad in [
            "not a url",
            "http://127.0.0.1:6379",
            "rediss://127.0.0.1:6379",
        ] {
            let error = RedisReplayStore::connect(bad).await.unwrap_err();
            assert!(
                error.0.starts_with("the Redis URL is not usable"),
                "{bad}: {error}"
            );
        }
    }

    /// A redis-server of this test's own, to stop in the middle.
    struct OwnRedis {
        child: Child,
        url: String,
    }

    impl OwnRedis {
        /// Starts one on a free loopback port; ready when it says so on
        /// stdout (a signal, not a sleep).
        fn start() -> Self {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no", "--loglevel", "notice"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server on PATH (.ci/redis.sh installs it)");
            let stdout = child.stdout.take();
            // Owned from here: dropped (killed and reaped) on any panic below.
            let redis = OwnRedis {
                child,
                url: format!("redis://127.0.0.1:{port}"),
            };
            for line in BufReader::new(stdout.unwrap()).lines() {
                if line.unwrap().contains("Ready to accept connections") {
                    return redis;
                }
            }
            panic!("redis-server exited before it was ready");
        }
    }

    impl Drop for OwnRedis {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[tokio::test]
    async fn a_redis_that_goes_down_refuses_proofs_and_never_accepts_them() {
        // Only where a test Redis is available (redis-server installed).
        if test_redis_url().is_none() {
            return;
        }
        let mut redis = OwnRedis::start();
        let store = RedisReplayStore::connect(&redis.url)
            .await
            .unwrap()
            .timeout(Duration::from_secs(2));
        let ttl = Duration::from_secs(60);
        assert_eq!(store.first_use(&unique_key(), ttl).await, Ok(true));
        redis.child.kill().unwrap();
        redis.child.wait().unwrap();
        for _ in 0..3 {
            let answer = store.first_use(&unique_key(), ttl).await;
            let Err(error) = answer else {
                panic!("a store without Redis answered {answer:?}");
            };
            assert!(error.0.starts_with("Redis"), "{error}");
        }
    }
}
