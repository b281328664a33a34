//! Issuer state: refresh-token families and revocations.
//!
//! [`Store`] is the seam for a database; [`MemoryStore`] keeps everything in
//! this process, so a restart logs every user out (refresh tokens stop
//! working) while access tokens stay valid until they expire.
//!
//! Refresh tokens are opaque random strings; the store only ever sees their
//! SHA-256, so a dump of it cannot be replayed.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};

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

/// Where the issuer keeps refresh-token families and revocations.
///
/// Each method is one atomic step; an implementation over a database runs
/// each in one transaction.
pub trait Store: Send + Sync + 'static {
    /// Starts a family whose live token is `first`.
    fn create_family(&self, family: Family, first: TokenHash) -> BoxFuture<'_, ()>;

    /// Consumes `presented` and makes `next` the live token of its family,
    /// or says why not. A token presented twice revokes its family; an
    /// implementation may bound how many used tokens it remembers per
    /// family (the oldest are then unknown).
    fn rotate(&self, presented: TokenHash, next: TokenHash, now: i64) -> BoxFuture<'_, Redeemed>;

    /// The family of `token` if it is the live token of a family that is
    /// neither expired nor revoked.
    fn live_family(&self, token: TokenHash, now: i64) -> BoxFuture<'_, Option<Family>>;

    /// Revokes the family of `token` (any token of it, used or not).
    fn revoke_family_of(&self, token: TokenHash) -> BoxFuture<'_, Option<Family>>;

    /// Remembers that access token `jti` (expiring at `exp`) was issued from
    /// family `family_id`, so that revoking the family revokes it too.
    fn record_access(&self, family_id: String, jti: String, exp: i64) -> BoxFuture<'_, ()>;

    /// Revokes access token `jti` until `exp`.
    fn revoke_access(&self, jti: String, exp: i64) -> BoxFuture<'_, ()>;

    /// Whether access token `jti` was revoked.
    fn is_access_revoked(&self, jti: String) -> BoxFuture<'_, bool>;

    /// Forgets whatever expired before `now`.
    fn purge(&self, now: i64) -> BoxFuture<'_, ()>;
    /// Remembers an opaque access token (by hash) and the claims (JSON
    /// text) it stands for, until `exp`.
    fn save_opaque(&self, token: TokenHash, claims: String, exp: i64) -> BoxFuture<'_, ()>;
    /// The claims of an opaque access token that has not expired.
    fn opaque(&self, token: TokenHash, now: i64) -> BoxFuture<'_, Option<String>>;
}

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
const MAX_USED_PER_FAMILY: usize = 32;

impl Memory {
    fn revoke_family(&mut self, id: &str) {
        if let Some(state) = self.families.get_mut(id) {
            state.revoked = true;
            for (jti, exp) in state.access.drain(..) {
                self.revoked.insert(jti, exp);
            }
        }
    }
}

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl Store for MemoryStore {
    fn create_family(&self, family: Family, first: TokenHash) -> BoxFuture<'_, ()> {
        self.with(|m| {
            m.tokens.insert(
                first,
                TokenState {
                    family_id: family.id.clone(),
                    used: false,
                },
            );
            m.families.insert(
                family.id.clone(),
                FamilyState {
                    family,
                    revoked: false,
                    access: Vec::new(),
                    used: VecDeque::new(),
                },
            );
        });
        ready(())
    }

    fn rotate(&self, presented: TokenHash, next: TokenHash, now: i64) -> BoxFuture<'_, Redeemed> {
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
                    family_id,
                    used: false,
                },
            );
            Redeemed::Rotated(family)
        });
        ready(outcome)
    }

    fn live_family(&self, token: TokenHash, now: i64) -> BoxFuture<'_, Option<Family>> {
        let family = self.with(|m| {
            let token = m.tokens.get(&token).filter(|t| !t.used)?;
            let state = m.families.get(&token.family_id)?;
            (!state.revoked && state.family.expires_at > now).then(|| state.family.clone())
        });
        ready(family)
    }

    fn revoke_family_of(&self, token: TokenHash) -> BoxFuture<'_, Option<Family>> {
        let family = self.with(|m| {
            let id = m.tokens.get(&token)?.family_id.clone();
            let family = m.families.get(&id)?.family.clone();
            m.revoke_family(&id);
            Some(family)
        });
        ready(family)
    }

    fn record_access(&self, family_id: String, jti: String, exp: i64) -> BoxFuture<'_, ()> {
        self.with(|m| {
            let Some(state) = m.families.get_mut(&family_id) else {
                return;
            };
            if state.revoked {
                m.revoked.insert(jti, exp);
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
            state.access.push((jti, exp));
        });
        ready(())
    }

    fn revoke_access(&self, jti: String, exp: i64) -> BoxFuture<'_, ()> {
        self.with(|m| m.revoked.insert(jti, exp));
        ready(())
    }

    fn is_access_revoked(&self, jti: String) -> BoxFuture<'_, bool> {
        ready(self.with(|m| m.revoked.contains_key(&jti)))
    }

    fn save_opaque(&self, token: TokenHash, claims: String, exp: i64) -> BoxFuture<'_, ()> {
        self.with(|m| m.opaque.insert(token, (claims, exp)));
        ready(())
    }

    fn opaque(&self, token: TokenHash, now: i64) -> BoxFuture<'_, Option<String>> {
        ready(self.with(|m| {
            m.opaque
                .get(&token)
                .filter(|(_, exp)| *exp > now)
                .map(|(claims, _)| claims.clone())
        }))
    }

    fn purge(&self, now: i64) -> BoxFuture<'_, ()> {
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

    fn hash(generation: usize) -> TokenHash {
        TokenHash::of(&format!("token-{generation}"))
    }

    /// A family rotated `rotations` times: `hash(rotations)` is live.
    async fn rotated(rotations: usize) -> MemoryStore {
        let store = MemoryStore::default();
        store.create_family(family(), hash(0)).await;
        for generation in 0..rotations {
            let outcome = store
                .rotate(hash(generation), hash(generation + 1), 10)
                .await;
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
        let outcome = store.rotate(hash(0), hash(9_999), 10).await;
        assert!(matches!(outcome, Redeemed::Unknown), "{outcome:?}");
    }

    #[tokio::test]
    async fn reuse_of_the_previous_token_is_detected_after_many_rotations() {
        let store = rotated(5_000).await;
        let outcome = store.rotate(hash(4_999), hash(9_999), 10).await;
        assert!(matches!(outcome, Redeemed::Reused(_)), "{outcome:?}");
        // The family is revoked: its live token no longer works either.
        let outcome = store.rotate(hash(5_000), hash(9_998), 10).await;
        assert!(matches!(outcome, Redeemed::Revoked), "{outcome:?}");
    }
}
