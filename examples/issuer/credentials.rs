//! Passwords and client secrets: Argon2 hashing and verification, the
//! per-name failure back-off, and a short cache of verified client secrets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Hashes `secret` with Argon2id and the OWASP-recommended parameters
/// (19 MiB, 2 passes), returning a PHC string for a users or clients file.
pub fn hash_secret(secret: &str) -> Result<String, String> {
    hash_secret_with(secret, argon2::Params::default())
}

/// Hashes `secret` with Argon2id and the given cost parameters.
pub fn hash_secret_with(secret: &str, params: argon2::Params) -> Result<String, String> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| "the system random generator failed")?;
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_with_salt(secret.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// Checks that `phc` is an Argon2 PHC string this issuer can verify.
pub fn check_phc(phc: &str) -> Result<(), String> {
    let hash = argon2::PasswordHash::new(phc)
        .map_err(|e| format!("is not a PHC string ({e}); create one with hash_secret"))?;
    if !hash.algorithm.as_str().starts_with("argon2") {
        return Err(format!(
            "uses {}, expected argon2id (or argon2i/argon2d)",
            hash.algorithm
        ));
    }
    argon2::Params::try_from(&hash).map_err(|e| format!("has unusable parameters: {e}"))?;
    Ok(())
}

/// A PHC string with the same algorithm and cost as `model` but a random
/// salt and output: verifying anything against it costs as much as a real
/// check and always fails.
pub fn decoy_like(model: &str) -> String {
    let mut random = [0u8; 48];
    // A failed fill leaves zeros: still a valid decoy, just a predictable one.
    let _ = aws_lc_rs::rand::fill(&mut random);
    let (salt, output) = random.split_at(16);
    let mut parts: Vec<&str> = model.split('$').collect();
    let salt = STANDARD_NO_PAD.encode(salt);
    let output = STANDARD_NO_PAD.encode(output);
    let n = parts.len();
    if n >= 3 {
        parts[n - 2] = &salt;
        parts[n - 1] = &output;
        parts.join("$")
    } else {
        // Not reachable with a validated model; fall back to cheap defaults.
        format!("$argon2id$v=19$m=19456,t=2,p=1${salt}${output}")
    }
}

/// The decoy hashes checked for names that do not exist.
pub struct Decoys {
    decoy: String,
}

impl Decoys {
    /// Decoys modelled on `models` (the configured users' or clients' PHC
    /// strings), or on the default cost if there are none.
    pub fn new<'a>(models: impl IntoIterator<Item = &'a str>) -> Self {
        let default_model = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
        let first = models.into_iter().next().unwrap_or(default_model);
        Self {
            decoy: decoy_like(first),
        }
    }

    /// The decoy to check when `name` does not exist.
    pub fn for_name(&self, _name: &str) -> &str {
        &self.decoy
    }
}

/// Verifies secrets against PHC strings off the async threads, a few at a
/// time.
#[derive(Clone)]
pub struct Hasher {
    // SECURITY (DoS): each Argon2 check holds its memory cost (19 MiB by
    // default) for tens of milliseconds; unbounded concurrency would let a
    // burst of logins exhaust memory and starve the runtime.
    permits: Arc<Semaphore>,
}

impl Hasher {
    /// At most `concurrent` checks run at once.
    pub fn new(concurrent: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrent.max(1))),
        }
    }

    /// Whether `secret` matches `phc`. Argon2 compares its output in
    /// constant time; callers use a decoy hash for unknown names so that
    /// timing does not tell whether a name exists.
    pub async fn verify(&self, secret: String, phc: String) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || {
            Argon2::default()
                .verify_password(secret.as_bytes(), phc.as_str())
                .is_ok()
        })
        .await
        .unwrap_or(false)
    }
}

/// Per-name back-off after repeated failures (usernames and client ids,
/// whether they exist or not, so a lock-out says nothing about existence).
pub struct Backoff {
    entries: Mutex<HashMap<String, Failures>>,
    free: u32,
    max_lock: Duration,
    max_entries: usize,
}

struct Failures {
    count: u32,
    locked_until: Instant,
    last: Instant,
}

impl Backoff {
    /// `free` failures are allowed; each further one locks the name for
    /// 1 s, 2 s, 4 s … up to `max_lock`.
    pub fn new(free: u32, max_lock: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            free,
            max_lock,
            max_entries: 10_000,
        }
    }

    /// `Err(retry_after)` while `name` is locked.
    pub fn check(&self, name: &str) -> Result<(), Duration> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(name) {
            Some(f) if f.locked_until > Instant::now() => {
                Err(f.locked_until.saturating_duration_since(Instant::now()))
            }
            _ => Ok(()),
        }
    }

    /// Records a failure for `name`.
    pub fn failure(&self, name: &str) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.max_entries && !entries.contains_key(name) {
            // SECURITY (memory): bounded map. Forget names idle for the longest
            // lock; if that frees nothing, forget the stalest one.
            let horizon = self.max_lock;
            entries.retain(|_, f| f.locked_until > now || now.duration_since(f.last) < horizon);
            if entries.len() >= self.max_entries
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        let f = entries.entry(name.to_owned()).or_insert(Failures {
            count: 0,
            locked_until: now,
            last: now,
        });
        // Failures long ago do not count against a returning user.
        if now.duration_since(f.last) > self.max_lock.max(Duration::from_secs(900)) {
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        if f.count > self.free {
            let exp = (f.count - self.free - 1).min(20);
            let lock = Duration::from_secs(1u64 << exp).min(self.max_lock);
            f.locked_until = now + lock;
        }
    }

    /// Forgets the failures of `name` after a success.
    pub fn success(&self, name: &str) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }
}

/// Recently verified client secrets, so that a resource server calling
/// `/introspect` or `/token` often does not pay an Argon2 check each time.
pub struct ClientCache {
    // client_id → (SHA-256 of the secret, valid until)
    entries: Mutex<HashMap<String, ([u8; 32], Instant)>>,
    ttl: Duration,
}

impl ClientCache {
    /// Entries are trusted for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    fn digest(client_id: &str, secret: &str) -> [u8; 32] {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(client_id.as_bytes());
        ctx.update(&[0]);
        ctx.update(secret.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    /// Whether this exact secret was verified for `client_id` recently.
    pub fn hit(&self, client_id: &str, secret: &str) -> bool {
        let digest = Self::digest(client_id, secret);
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(client_id).is_some_and(|(known, until)| {
            // SECURITY: constant-time comparison, like Argon2's own.
            *until > Instant::now()
                && aws_lc_rs::constant_time::verify_slices_are_equal(known, &digest).is_ok()
        })
    }

    /// Remembers a secret that Argon2 just verified.
    pub fn remember(&self, client_id: &str, secret: &str) {
        let digest = Self::digest(client_id, secret);
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(client_id.to_owned(), (digest, Instant::now() + self.ttl));
    }
}
