//! Passwords and client secrets: Argon2 hashing and verification, the
//! per-name failure back-off, and a short cache of verified client secrets.

use std::collections::HashMap;
use std::net::IpAddr;
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

/// The decoy hashes checked for names that do not exist: one per distinct
/// cost among the configured hashes.
pub struct Decoys {
    // (decoy, how many configured hashes have its cost)
    by_cost: Vec<(String, u64)>,
    total: u64,
    key: [u8; 32],
}

impl Decoys {
    /// Decoys modelled on `models` (the configured users' or clients' PHC
    /// strings), or on the default cost if there are none.
    pub fn new<'a>(models: impl IntoIterator<Item = &'a str>) -> Self {
        let default_model = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
        // Everything but the salt and the output: algorithm, version, cost.
        let cost_of = |phc: &str| phc.rsplitn(3, '$').nth(2).unwrap_or(phc).to_owned();
        let mut by_cost: Vec<(String, &str, u64)> = Vec::new();
        for model in models {
            let cost = cost_of(model);
            match by_cost.iter_mut().find(|(c, _, _)| *c == cost) {
                Some((_, _, count)) => *count += 1,
                None => by_cost.push((cost, model, 1)),
            }
        }
        if by_cost.is_empty() {
            by_cost.push((cost_of(default_model), default_model, 1));
        }
        let by_cost: Vec<(String, u64)> = by_cost
            .into_iter()
            .map(|(_, model, count)| (decoy_like(model), count))
            .collect();
        let mut key = [0u8; 32];
        // A failed fill leaves zeros: the choice is then predictable, still
        // independent of which names exist.
        let _ = aws_lc_rs::rand::fill(&mut key);
        Self {
            total: by_cost.iter().map(|(_, count)| count).sum(),
            by_cost,
            key,
        }
    }

    /// The decoy to check when `name` does not exist.
    // SECURITY (user enumeration): users' hashes may have different costs
    // (rehashed with new parameters, imported), and a check takes as long as
    // its cost. A single decoy would give unknown names one timing that
    // stands out from some real users'. Instead each unknown name gets a
    // decoy of one of the configured costs, weighted by how many hashes have
    // it, chosen by a keyed hash of the name alone: the same name always
    // costs the same (so repeating it shows no spread that a real user's
    // fixed cost would not), and the choice does not depend on which names
    // exist.
    pub fn for_name(&self, name: &str) -> &str {
        let tag = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.key),
            name.as_bytes(),
        );
        let mut first = [0u8; 8];
        first.copy_from_slice(&tag.as_ref()[..8]);
        let mut pick = u64::from_le_bytes(first) % self.total.max(1);
        for (decoy, count) in &self.by_cost {
            if pick < *count {
                return decoy;
            }
            pick -= count;
        }
        &self.by_cost[0].0
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

/// Back-off after repeated failures, per source address and name
/// (usernames and client ids, whether they exist or not, so a lock-out says
/// nothing about existence).
// SECURITY (lock-out as denial of service): names are public (`sub`,
// `client_id` in every token), so a lock keyed by the name alone would let
// anyone lock the rightful owner out with a few bad guesses. Failures are
// counted per (source, name): a stranger's guesses lock the stranger's own
// source, and the owner, speaking from elsewhere, is not affected. The
// stranger stays limited to the same few guesses per name from each source
// (the right secret included: a locked source gets 429 whatever it sends,
// or the lock would answer every guess). An attacker with many addresses
// gets that many budgets; an IPv6 source counts as its /64 (see `Peer`) so
// one host's addresses share one.
pub struct Backoff {
    entries: Mutex<HashMap<Key, Failures>>,
    free: u32,
    max_lock: Duration,
    max_entries: usize,
}

/// Who is trying (the source address) and which name.
type Key = (IpAddr, String);

struct Failures {
    count: u32,
    /// Attempts that passed [`Backoff::begin`] and have no outcome yet.
    in_flight: u32,
    locked_until: Instant,
    last: Instant,
}

impl Failures {
    /// Whether forgetting this entry would forgive something: a running
    /// lock, or attempts whose failures are still to be counted.
    fn binding(&self, now: Instant) -> bool {
        self.locked_until > now || self.in_flight > 0
    }
}

/// One attempt reserved by [`Backoff::begin`]: report its outcome with
/// [`failure`](Self::failure) or [`success`](Self::success). Dropped
/// without one (the request was cancelled), it frees its slot.
#[must_use = "an attempt holds a slot until its outcome is reported"]
pub struct Attempt<'a> {
    backoff: &'a Backoff,
    key: Key,
    open: bool,
}

impl Attempt<'_> {
    /// The secret was wrong: counts a failure, which may lock the name.
    pub fn failure(mut self) {
        self.open = false;
        self.backoff.finish(&self.key, false);
    }

    /// The secret was right: forgets the name's failures.
    pub fn success(mut self) {
        self.open = false;
        self.backoff.finish(&self.key, true);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.open {
            self.backoff.release(&self.key);
        }
    }
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

    /// Reserves an attempt of `source` for `name`, to be made before the secret is
    /// checked; `Err(retry_after)` while `name` is locked, while its
    /// attempts in flight already use up what a sequence would be allowed,
    /// or while the table is full of locked names and `name` has no entry.
    // SECURITY (concurrent guesses): the outcome of an Argon2 check is
    // known only after it waited for a hashing slot and ran. Checking the
    // lock before it and counting the failure after would let a burst of
    // concurrent guesses all pass the check before the first failure is
    // counted. Each attempt therefore takes a slot before hashing, and
    // attempts in flight count against the budget as if they had failed:
    // a burst gets no more real checks than a sequence would.
    pub fn begin(&self, source: IpAddr, name: &str) -> Result<Attempt<'_>, Duration> {
        let now = Instant::now();
        let key = (source, name.to_owned());
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if !entries.contains_key(&key) && !self.make_room(&mut entries, now) {
            // SECURITY (lock-out bypass): with no room to count this name's
            // failures, its guesses would go unlimited; refuse them until a
            // lock ends instead (see `make_room`).
            let soonest = entries.values().map(|f| f.locked_until).min();
            return Err(soonest.map_or(Duration::from_secs(1), |t| {
                t.saturating_duration_since(now).max(Duration::from_secs(1))
            }));
        }
        let f = entries.entry(key.clone()).or_insert(Failures {
            count: 0,
            in_flight: 0,
            locked_until: now,
            last: now,
        });
        if f.locked_until > now {
            return Err(f.locked_until.saturating_duration_since(now));
        }
        // Failures long ago do not count against a returning user.
        if f.in_flight == 0 && now.duration_since(f.last) > self.forgive_after() {
            f.count = 0;
        }
        // Within the free failures, as many attempts as are left of them;
        // past them, one at a time whenever no lock runs (a sequence gets
        // one attempt each time a lock ends).
        let within_free = f.count.saturating_add(f.in_flight) <= self.free;
        if !within_free && f.in_flight > 0 {
            return Err(Duration::from_secs(1));
        }
        f.in_flight += 1;
        f.last = now;
        Ok(Attempt {
            backoff: self,
            key,
            open: true,
        })
    }

    fn forgive_after(&self) -> Duration {
        self.max_lock.max(Duration::from_secs(900))
    }

    /// Frees an entry for a new name if the table is full; `false` if every
    /// entry binds (see [`Failures::binding`]).
    fn make_room(&self, entries: &mut HashMap<Key, Failures>, now: Instant) -> bool {
        if entries.len() < self.max_entries {
            return true;
        }
        // SECURITY (memory): the table is bounded. Forget first the names
        // idle for longer than any lock, then the stalest unlocked one.
        // SECURITY (lock-out bypass): never a running lock (or an attempt in
        // flight), or a flood of fresh names would set a locked name free.
        let horizon = self.max_lock;
        entries.retain(|_, f| f.binding(now) || now.duration_since(f.last) < horizon);
        if entries.len() < self.max_entries {
            return true;
        }
        let stalest = entries
            .iter()
            .filter(|(_, f)| !f.binding(now))
            .min_by_key(|(_, f)| f.last)
            .map(|(k, _)| k.clone());
        match stalest {
            Some(name) => {
                entries.remove(&name);
                true
            }
            None => false,
        }
    }

    /// Ends an attempt with its outcome.
    fn finish(&self, key: &Key, success: bool) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        // An entry with an attempt in flight is never evicted.
        let Some(f) = entries.get_mut(key) else {
            return;
        };
        f.in_flight = f.in_flight.saturating_sub(1);
        f.last = now;
        if success {
            f.count = 0;
            f.locked_until = now;
        } else {
            f.count = f.count.saturating_add(1);
            if f.count > self.free {
                let exp = (f.count - self.free - 1).min(20);
                let lock = Duration::from_secs(1u64 << exp).min(self.max_lock);
                f.locked_until = now + lock;
            }
        }
        if f.count == 0 && f.in_flight == 0 {
            entries.remove(key);
        }
    }

    /// Ends an attempt that has no outcome.
    fn release(&self, key: &Key) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = entries.get_mut(key) {
            f.in_flight = f.in_flight.saturating_sub(1);
            if f.count == 0 && f.in_flight == 0 {
                entries.remove(key);
            }
        }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use super::{Backoff, Decoys, hash_secret_with};

    const HERE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// The cost segment of a PHC string (`m=…,t=…,p=…`).
    fn cost(phc: &str) -> &str {
        phc.split('$').nth(3).expect("a PHC string with parameters")
    }

    #[test]
    fn unknown_names_get_decoys_of_every_configured_cost_and_always_the_same_one() {
        let cheap = hash_secret_with("a", argon2::Params::new(8, 1, 1, None).unwrap()).unwrap();
        let dearer = hash_secret_with("b", argon2::Params::new(16, 2, 1, None).unwrap()).unwrap();
        let decoys = Decoys::new([cheap.as_str(), cheap.as_str(), dearer.as_str()]);
        let configured: BTreeSet<&str> = [cost(&cheap), cost(&dearer)].into();
        let mut seen = BTreeSet::new();
        for i in 0..64 {
            let name = format!("nobody-{i}");
            let decoy = decoys.for_name(&name);
            assert_eq!(decoy, decoys.for_name(&name), "one decoy per name");
            assert!(
                configured.contains(cost(decoy)),
                "{decoy} is no user's cost"
            );
            seen.insert(cost(decoy).to_owned());
        }
        let seen: BTreeSet<&str> = seen.iter().map(String::as_str).collect();
        assert_eq!(
            seen, configured,
            "every configured cost is used by some decoy"
        );
    }

    #[test]
    fn a_flood_of_fresh_names_does_not_evict_a_locked_name() {
        let mut backoff = Backoff::new(5, Duration::from_secs(900));
        backoff.max_entries = 4;
        for _ in 0..6 {
            backoff.begin(HERE, "user:alice").unwrap().failure();
        }
        assert!(backoff.begin(HERE, "user:alice").is_err(), "locked");
        for i in 0..100 {
            if let Ok(attempt) = backoff.begin(HERE, &format!("user:fresh-{i}")) {
                attempt.failure();
            }
        }
        assert!(
            backoff.begin(HERE, "user:alice").is_err(),
            "still locked after the flood"
        );
    }

    #[test]
    fn a_table_full_of_locked_names_refuses_fresh_names_until_a_lock_ends() {
        let mut backoff = Backoff::new(0, Duration::from_secs(900));
        backoff.max_entries = 2;
        backoff.begin(HERE, "user:a").unwrap().failure();
        backoff.begin(HERE, "user:b").unwrap().failure();
        assert!(backoff.begin(HERE, "user:a").is_err());
        assert!(backoff.begin(HERE, "user:b").is_err());
        assert!(
            backoff.begin(HERE, "user:fresh").is_err(),
            "no room to count its failures: refused, not unlimited"
        );
    }

    #[test]
    fn attempts_in_flight_count_against_the_free_failures() {
        let backoff = Backoff::new(5, Duration::from_secs(900));
        let burst: Vec<_> = (0..64)
            .filter_map(|_| backoff.begin(HERE, "user:alice").ok())
            .collect();
        assert_eq!(burst.len(), 6, "five free failures and the one that locks");
        for attempt in burst {
            attempt.failure();
        }
        assert!(backoff.begin(HERE, "user:alice").is_err(), "locked");
    }

    #[test]
    fn a_cancelled_attempt_frees_its_slot_and_a_success_forgets_failures() {
        let backoff = Backoff::new(1, Duration::from_secs(900));
        drop(backoff.begin(HERE, "user:alice").unwrap());
        backoff.begin(HERE, "user:alice").unwrap().failure();
        backoff.begin(HERE, "user:alice").unwrap().success();
        backoff.begin(HERE, "user:alice").unwrap().failure();
        assert!(
            backoff.begin(HERE, "user:alice").is_ok(),
            "one free failure again"
        );
    }

    #[test]
    fn failures_from_one_source_do_not_lock_the_name_for_another() {
        let backoff = Backoff::new(0, Duration::from_secs(900));
        let stranger = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        backoff.begin(stranger, "client:rs").unwrap().failure();
        assert!(
            backoff.begin(stranger, "client:rs").is_err(),
            "stranger locked"
        );
        assert!(backoff.begin(HERE, "client:rs").is_ok(), "owner not locked");
    }
}
