//! Issuer state: users, refresh-token families, revocations and opaque
//! access tokens.
//!
//! [`Store`] is the seam; [`MemoryStore`] keeps everything in this process,
//! so a restart logs every user out (refresh tokens stop working) while
//! access tokens stay valid until they expire. The PostgreSQL store
//! (`pg.rs`, with `DATABASE_URL`) shares it all between replicas and
//! across restarts.
//!
//! Refresh tokens are opaque random strings; the store only ever sees their
//! SHA-256, so a dump of it cannot be replayed.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};

use super::config::User;

/// The future type of [`Store`] methods (object-safe async).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// SHA-256 of an opaque token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hashes `token`.
    pub fn of(token: &str) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }
}

/// What a token grants: who, to which client, for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Subject.
    pub sub: String,
    /// The client the tokens are issued to.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Audience.
    pub audience: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Tenant.
    pub tenant: Option<String>,
}

/// A chain of refresh tokens from one login; each refresh replaces the
/// live token with a new one.
#[derive(Debug, Clone)]
pub struct Family {
    /// Random id, safe to log.
    pub id: String,
    /// What every token of the family grants.
    pub grant: Grant,
    /// End of the family (login + `REFRESH_TTL`), seconds since the epoch.
    pub expires_at: i64,
}

/// The outcome of presenting a refresh token.
#[derive(Debug)]
pub enum Redeemed {
    /// It was the live token: it is now used and the new one is live.
    Rotated(Family),
    /// Never issued, or forgotten: after expiry, or used too many
    /// rotations ago to be remembered.
    Unknown,
    /// The family has expired.
    Expired,
    /// The family was revoked earlier.
    Revoked,
    /// It had been used already: someone holds a copy. The family is now
    /// revoked (RFC 6819 §5.2.2.3, OAuth 2.0 Security BCP §4.14).
    Reused(Family),
}

/// An access token issued from a family, recorded in the same atomic step
/// as the family's change, so that revoking the family revokes it too and
/// no failure can leave one change without the other.
#[derive(Clone)]
pub struct Issued {
    /// Its `jti`.
    pub jti: String,
    /// Its `exp`, seconds since the epoch.
    pub exp: i64,
    /// For an opaque access token: its hash and the claims (JSON text) it
    /// stands for.
    pub opaque: Option<(TokenHash, String)>,
}

/// The store could not answer (the database is unreachable or failed):
/// the request is answered 503 and nothing was changed.
#[derive(Debug, Clone)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// What every [`Store`] method returns.
pub type StoreResult<T> = Result<T, StoreError>;

/// Where the issuer keeps users, refresh-token families, revocations and
/// opaque access tokens.
///
/// Each method is one atomic step: an implementation over a database runs
/// each in one transaction, and an error means nothing was changed.
pub trait Store: Send + Sync + 'static {
    /// Starts a family whose live token is `first`, with the access token
    /// issued alongside it.
    fn create_family(
        &self,
        family: Family,
        first: TokenHash,
        issued: Issued,
    ) -> BoxFuture<'_, StoreResult<()>>;

    /// Consumes `presented` and makes `next` the live token of its family
    /// (recording `issued` with it), or says why not. A token presented
    /// twice revokes its family; an implementation may bound how many used
    /// tokens it remembers per family (the oldest are then unknown).
    /// Without `issued` a live token is left alone and reported `Unknown`:
    /// the caller only wants to know why a token it could not find live
    /// fails (and the family revoked if it is a reuse).
    fn rotate(
        &self,
        presented: TokenHash,
        next: TokenHash,
        now: i64,
        issued: Option<Issued>,
    ) -> BoxFuture<'_, StoreResult<Redeemed>>;

    /// The family of `token` if it is the live token of a family that is
    /// neither expired nor revoked.
    fn live_family(&self, token: TokenHash, now: i64)
    -> BoxFuture<'_, StoreResult<Option<Family>>>;

    /// Revokes the family of `token` (any token of it, used or not).
    fn revoke_family_of(&self, token: TokenHash) -> BoxFuture<'_, StoreResult<Option<Family>>>;

    /// Revokes access token `jti` until `exp`.
    fn revoke_access(&self, jti: String, exp: i64) -> BoxFuture<'_, StoreResult<()>>;

    /// Whether access token `jti` was revoked.
    fn is_access_revoked(&self, jti: String) -> BoxFuture<'_, StoreResult<bool>>;

    /// Forgets whatever expired before `now`.
    fn purge(&self, now: i64) -> BoxFuture<'_, StoreResult<()>>;

    /// Remembers an opaque access token (by hash) and the claims (JSON
    /// text) it stands for, until `exp`.
    fn save_opaque(
        &self,
        token: TokenHash,
        claims: String,
        exp: i64,
    ) -> BoxFuture<'_, StoreResult<()>>;

    /// The claims of an opaque access token that has not expired.
    fn opaque(&self, token: TokenHash, now: i64) -> BoxFuture<'_, StoreResult<Option<String>>>;

    /// Adds `users` or replaces those of the same name (their hash, scopes,
    /// roles, tenant and audiences; a disabled user stays disabled). With
    /// `only_if_empty`, does so only if there is no user at all (the demo
    /// seed must not add its well-known password to a real user base).
    fn seed_users(&self, users: Vec<User>, only_if_empty: bool) -> BoxFuture<'_, StoreResult<()>>;

    /// The user called `name`, unless unknown or disabled.
    fn user(&self, name: String) -> BoxFuture<'_, StoreResult<Option<User>>>;

    /// Whether `sub` is a disabled user: their tokens are no longer active.
    fn is_disabled(&self, sub: String) -> BoxFuture<'_, StoreResult<bool>>;

    /// Failed logins counted by every replica together: how long logins
    /// of `name` from `source` are still locked (ms), if they are. The
    /// memory store has none (each process's own back-off counts).
    fn login_locked(
        &self,
        _source: String,
        _name: String,
        _now_ms: i64,
    ) -> BoxFuture<'_, StoreResult<Option<i64>>> {
        Box::pin(std::future::ready(Ok(None)))
    }

    /// Counts a failed login of `name` from `source`; past
    /// [`LOGIN_FREE_FAILURES`] it locks them for 1 s, 2 s, 4 s … up to
    /// [`LOGIN_MAX_LOCK_MS`].
    fn login_failed(
        &self,
        _source: String,
        _name: String,
        _now_ms: i64,
    ) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Forgets the failed logins of `name` from `source`.
    fn login_succeeded(&self, _source: String, _name: String) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Failed logins allowed per source and name before locks start (the same
/// as each process's own back-off).
pub const LOGIN_FREE_FAILURES: i32 = 5;
/// The longest lock after failed logins.
pub const LOGIN_MAX_LOCK_MS: i64 = 15 * 60 * 1000;

/// The in-memory [`Store`]: one mutex, no I/O, nothing survives a restart.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Memory>,
}

#[derive(Default)]
struct Memory {
    families: HashMap<String, FamilyState>,
    tokens: HashMap<TokenHash, TokenState>,
    revoked: HashMap<String, i64>,
    /// Opaque access tokens: claims as JSON text, and `exp`.
    opaque: HashMap<TokenHash, (String, i64)>,
    users: HashMap<String, User>,
}

struct FamilyState {
    family: Family,
    revoked: bool,
    access: Vec<(String, i64)>,
    /// The most recently used tokens, oldest first, for reuse detection.
    used: VecDeque<TokenHash>,
}

struct TokenState {
    family_id: String,
    used: bool,
}

/// Most access tokens remembered per family; older expired ones go first.
const MAX_ACCESS_PER_FAMILY: usize = 1024;

// SECURITY (memory): a family may be refreshed without limit during its
// lifetime, so remembering every used token grows without bound. Reuse
// detection only needs the recent ones: a stolen copy is replayed soon after
// the theft, while the thief and the owner race for the next rotation. A
// token older than this many rotations is forgotten: presenting it is
// refused as unknown (it never works again) but no longer revokes the family.
/// Most used refresh tokens remembered per family for reuse detection.
pub const MAX_USED_PER_FAMILY: usize = 32;

impl Memory {
    fn revoke_family(&mut self, id: &str) {
        if let Some(state) = self.families.get_mut(id) {
            state.revoked = true;
            for (jti, exp) in state.access.drain(..) {
                self.revoked.insert(jti, exp);
            }
        }
    }

    fn record(&mut self, family_id: &str, issued: Issued) {
        if let Some((hash, claims)) = issued.opaque {
            self.opaque.insert(hash, (claims, issued.exp));
        }
        let Some(state) = self.families.get_mut(family_id) else {
            return;
        };
        if state.revoked {
            self.revoked.insert(issued.jti, issued.exp);
            return;
        }
        if state.access.len() >= MAX_ACCESS_PER_FAMILY {
            let oldest = state
                .access
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, exp))| *exp)
                .map(|(i, _)| i);
            if let Some(i) = oldest {
                state.access.swap_remove(i);
            }
        }
        state.access.push((issued.jti, issued.exp));
    }
}

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, StoreResult<T>> {
    Box::pin(std::future::ready(Ok(value)))
}

impl Store for MemoryStore {
    fn create_family(
        &self,
        family: Family,
        first: TokenHash,
        issued: Issued,
    ) -> BoxFuture<'_, StoreResult<()>> {
        self.with(|m| {
            let id = family.id.clone();
            m.tokens.insert(
                first,
                TokenState {
                    family_id: id.clone(),
                    used: false,
                },
            );
            m.families.insert(
                id.clone(),
                FamilyState {
                    family,
                    revoked: false,
                    access: Vec::new(),
                    used: VecDeque::new(),
                },
            );
            m.record(&id, issued);
        });
        ready(())
    }

    fn rotate(
        &self,
        presented: TokenHash,
        next: TokenHash,
        now: i64,
        issued: Option<Issued>,
    ) -> BoxFuture<'_, StoreResult<Redeemed>> {
        let outcome = self.with(|m| {
            let Some(token) = m.tokens.get(&presented) else {
                return Redeemed::Unknown;
            };
            let (family_id, used) = (token.family_id.clone(), token.used);
            let Some(state) = m.families.get(&family_id) else {
                return Redeemed::Unknown;
            };
            if state.revoked {
                return Redeemed::Revoked;
            }
            if state.family.expires_at <= now {
                return Redeemed::Expired;
            }
            let family = state.family.clone();
            if used {
                m.revoke_family(&family_id);
                return Redeemed::Reused(family);
            }
            let Some(issued) = issued else {
                return Redeemed::Unknown;
            };
            if let Some(token) = m.tokens.get_mut(&presented) {
                token.used = true;
            }
            if let Some(state) = m.families.get_mut(&family_id) {
                state.used.push_back(presented);
                while state.used.len() > MAX_USED_PER_FAMILY {
                    if let Some(oldest) = state.used.pop_front() {
                        m.tokens.remove(&oldest);
                    }
                }
            }
            m.tokens.insert(
                next,
                TokenState {
                    family_id: family_id.clone(),
                    used: false,
                },
            );
            m.record(&family_id, issued);
            Redeemed::Rotated(family)
        });
        ready(outcome)
    }

    fn live_family(
        &self,
        token: TokenHash,
        now: i64,
    ) -> BoxFuture<'_, StoreResult<Option<Family>>> {
        let family = self.with(|m| {
            let token = m.tokens.get(&token).filter(|t| !t.used)?;
            let state = m.families.get(&token.family_id)?;
            (!state.revoked && state.family.expires_at > now).then(|| state.family.clone())
        });
        ready(family)
    }

    fn revoke_family_of(&self, token: TokenHash) -> BoxFuture<'_, StoreResult<Option<Family>>> {
        let family = self.with(|m| {
            let id = m.tokens.get(&token)?.family_id.clone();
            let family = m.families.get(&id)?.family.clone();
            m.revoke_family(&id);
            Some(family)
        });
        ready(family)
    }

    fn revoke_access(&self, jti: String, exp: i64) -> BoxFuture<'_, StoreResult<()>> {
        self.with(|m| m.revoked.insert(jti, exp));
        ready(())
    }

    fn is_access_revoked(&self, jti: String) -> BoxFuture<'_, StoreResult<bool>> {
        ready(self.with(|m| m.revoked.contains_key(&jti)))
    }

    fn save_opaque(
        &self,
        token: TokenHash,
        claims: String,
        exp: i64,
    ) -> BoxFuture<'_, StoreResult<()>> {
        self.with(|m| m.opaque.insert(token, (claims, exp)));
        ready(())
    }

    fn opaque(&self, token: TokenHash, now: i64) -> BoxFuture<'_, StoreResult<Option<String>>> {
        ready(self.with(|m| {
            m.opaque
                .get(&token)
                .filter(|(_, exp)| *exp > now)
                .map(|(claims, _)| claims.clone())
        }))
    }

    fn purge(&self, now: i64) -> BoxFuture<'_, StoreResult<()>> {
        self.with(|m| {
            m.revoked.retain(|_, exp| *exp > now);
            m.opaque.retain(|_, (_, exp)| *exp > now);
            m.families.retain(|_, s| s.family.expires_at > now);
            let families = &m.families;
            m.tokens.retain(|_, t| families.contains_key(&t.family_id));
            for state in m.families.values_mut() {
                state.access.retain(|(_, exp)| *exp > now);
            }
        });
        ready(())
    }

    fn seed_users(&self, users: Vec<User>, only_if_empty: bool) -> BoxFuture<'_, StoreResult<()>> {
        self.with(|m| {
            if only_if_empty && !m.users.is_empty() {
                return;
            }
            for user in users {
                m.users.insert(user.username.clone(), user);
            }
        });
        ready(())
    }

    fn user(&self, name: String) -> BoxFuture<'_, StoreResult<Option<User>>> {
        ready(self.with(|m| m.users.get(&name).cloned()))
    }

    fn is_disabled(&self, _sub: String) -> BoxFuture<'_, StoreResult<bool>> {
        // Users are disabled through the database's CLI only.
        ready(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family() -> Family {
        Family {
            id: "fam".into(),
            grant: Grant {
                sub: "alice".into(),
                client_id: "login".into(),
                scopes: Vec::new(),
                audience: "urn:orders".into(),
                roles: Vec::new(),
                tenant: None,
            },
            expires_at: 1_000,
        }
    }

    fn issued(jti: &str) -> Issued {
        Issued {
            jti: jti.into(),
            exp: 500,
            opaque: None,
        }
    }

    fn hash(generation: usize) -> TokenHash {
        TokenHash::of(&format!("token-{generation}"))
    }

    /// A family rotated `rotations` times: `hash(rotations)` is live.
    async fn rotated(rotations: usize) -> MemoryStore {
        let store = MemoryStore::default();
        store
            .create_family(family(), hash(0), issued("jti-0"))
            .await
            .unwrap();
        for generation in 0..rotations {
            let outcome = store
                .rotate(
                    hash(generation),
                    hash(generation + 1),
                    10,
                    Some(issued(&format!("jti-{generation}"))),
                )
                .await
                .unwrap();
            assert!(matches!(outcome, Redeemed::Rotated(_)), "{outcome:?}");
        }
        store
    }

    #[tokio::test]
    async fn memory_per_family_stays_bounded_over_many_rotations() {
        let store = rotated(5_000).await;
        let remembered = store.with(|m| m.tokens.len());
        assert!(
            remembered <= 100,
            "{remembered} tokens remembered for one family"
        );
        // A forgotten token is still refused.
        let outcome = store
            .rotate(hash(0), hash(9_999), 10, Some(issued("x")))
            .await
            .unwrap();
        assert!(matches!(outcome, Redeemed::Unknown), "{outcome:?}");
    }

    #[tokio::test]
    async fn reuse_of_the_previous_token_is_detected_after_many_rotations() {
        let store = rotated(5_000).await;
        let outcome = store
            .rotate(hash(4_999), hash(9_999), 10, Some(issued("x")))
            .await
            .unwrap();
        assert!(matches!(outcome, Redeemed::Reused(_)), "{outcome:?}");
        // The family is revoked: its live token no longer works either.
        let outcome = store
            .rotate(hash(5_000), hash(9_998), 10, Some(issued("y")))
            .await
            .unwrap();
        assert!(matches!(outcome, Redeemed::Revoked), "{outcome:?}");
    }
}
