//! Server-provided nonces (RFC 9449 §8–9), stateless: a nonce is its issue
//! time sealed with HMAC-SHA256 under a secret the replicas share, so any
//! replica accepts what any other issued and nothing is stored.
//!
//! A nonce reads `<time>.<mac>`: `time` the issue time (seconds since the
//! epoch, 8 bytes big-endian, base64url), `mac` the HMAC-SHA256 of a fixed
//! label and `time` (base64url). 55 characters, all `NQCHAR`s (§8.1).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};

/// The shortest secret accepted, in bytes. SECURITY (RFC 7518 §3.2): an
/// HMAC-SHA256 key at least as long as the hash output.
pub(crate) const MIN_SECRET_LEN: usize = 32;
/// Longest nonce looked at; ours are 55 characters. Bounds the work an
/// attacker's nonce costs.
const MAX_NONCE_LEN: usize = 128;
/// base64url of the 8-byte issue time.
const TIME_B64_LEN: usize = 11;
/// SECURITY (domain separation): the MAC covers this label first, so a
/// secret shared with anything else never makes one of its MACs a nonce.
const LABEL: &[u8] = b"authlayer DPoP nonce v1\n";
/// How far in the future an issue time may lie: replicas' clocks differ
/// by a few seconds.
const CLOCK_SKEW: i64 = 5;
/// Default lifetime of a nonce.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// Why a nonce is refused; both answer `use_dpop_nonce` with a fresh one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceFault {
    /// Not one of ours: garbled, forged, or sealed under another secret.
    Invalid,
    /// Ours, but older than its lifetime (or too far in the future).
    Stale,
}

/// Why [`NonceKeys`] cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceKeyError {
    /// The secret is shorter than [`MIN_SECRET_LEN`] bytes.
    ShortSecret { len: usize },
    /// No crypto backend to compute HMACs with.
    NoCryptoProvider,
}

impl fmt::Display for NonceKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NonceKeyError::ShortSecret { len } => write!(
                f,
                "a DPoP nonce secret must be at least {MIN_SECRET_LEN} bytes, this one has {len}"
            ),
            NonceKeyError::NoCryptoProvider => {
                f.write_str("no crypto backend to seal DPoP nonces with")
            }
        }
    }
}

impl std::error::Error for NonceKeyError {}

/// The secret(s) nonces are sealed with, and how long a nonce lives.
/// Replicas built from the same secret accept each other's nonces.
#[derive(Clone)]
pub(crate) struct NonceKeys {
    sealing: EncodingKey,
    /// The current secret first, then previous ones still accepted.
    opening: Vec<DecodingKey>,
    lifetime: Duration,
}

impl fmt::Debug for NonceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SECURITY: never the secrets.
        f.debug_struct("NonceKeys")
            .field("secrets", &self.opening.len())
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

fn keys(secret: &[u8]) -> Result<(EncodingKey, DecodingKey), NonceKeyError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(NonceKeyError::ShortSecret { len: secret.len() });
    }
    // `from_secret` refuses only an empty secret, excluded above.
    let short = || NonceKeyError::ShortSecret { len: secret.len() };
    Ok((
        EncodingKey::from_secret(secret).map_err(|_| short())?,
        DecodingKey::from_secret(secret).map_err(|_| short())?,
    ))
}

impl NonceKeys {
    /// Nonces sealed with `secret` (at least 32 bytes; give every replica
    /// the same one), living 5 minutes.
    pub(crate) fn new(secret: &[u8]) -> Result<Self, NonceKeyError> {
        // jsonwebtoken panics on HMAC without a provider: choose one first.
        crate::crypto::ensure_provider().map_err(|_| NonceKeyError::NoCryptoProvider)?;
        let (sealing, opening) = keys(secret)?;
        Ok(NonceKeys {
            sealing,
            opening: vec![opening],
            lifetime: DEFAULT_LIFETIME,
        })
    }

    /// Also accepts nonces sealed with `secret`, a previous one: for a
    /// rotation, where replicas change secrets one after another. New nonces
    /// are always sealed with the secret given to [`new`](Self::new).
    pub(crate) fn also_accept(mut self, secret: &[u8]) -> Result<Self, NonceKeyError> {
        self.opening.push(keys(secret)?.1);
        Ok(self)
    }

    /// How long a nonce is accepted after it was issued. Defaults to 5 minutes.
    #[must_use]
    #[cfg(test)] // only the tests need it
    pub(crate) fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    fn lifetime_secs(&self) -> i64 {
        i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX)
    }

    /// A nonce issued at `now` (seconds since the epoch).
    pub(crate) fn issue(&self, now: i64) -> String {
        let time = URL_SAFE_NO_PAD.encode(u64::try_from(now).unwrap_or(0).to_be_bytes());
        // HMAC with a valid key cannot fail; an empty MAC (never accepted)
        // would only make clients ask again.
        let mac = jsonwebtoken::crypto::sign(
            &message(&time),
            &self.sealing,
            jsonwebtoken::Algorithm::HS256,
        )
        .unwrap_or_default();
        format!("{time}.{mac}")
    }

    /// When `nonce` was issued, if it is one of ours and still alive at `now`.
    pub(crate) fn check(&self, nonce: &str, now: i64) -> Result<i64, NonceFault> {
        if nonce.len() > MAX_NONCE_LEN {
            return Err(NonceFault::Invalid);
        }
        let (time, mac) = nonce.split_once('.').ok_or(NonceFault::Invalid)?;
        if time.len() != TIME_B64_LEN || mac.is_empty() {
            return Err(NonceFault::Invalid);
        }
        let message = message(time);
        // SECURITY: the backend compares MACs in constant time.
        let sealed_here = self.opening.iter().any(|key| {
            matches!(
                jsonwebtoken::crypto::verify(mac, &message, key, jsonwebtoken::Algorithm::HS256),
                Ok(true)
            )
        });
        if !sealed_here {
            return Err(NonceFault::Invalid);
        }
        let bytes: [u8; 8] = URL_SAFE_NO_PAD
            .decode(time)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(NonceFault::Invalid)?;
        let issued = i64::try_from(u64::from_be_bytes(bytes)).map_err(|_| NonceFault::Invalid)?;
        if issued > now.saturating_add(CLOCK_SKEW)
            || now.saturating_sub(issued) > self.lifetime_secs()
        {
            return Err(NonceFault::Stale);
        }
        Ok(issued)
    }

    /// Whether a nonce issued at `issued` should be replaced on a
    /// successful response: after half its lifetime, so a client that
    /// follows `DPoP-Nonce` never meets an expired one.
    pub(crate) fn refresh_due(&self, issued: i64, now: i64) -> bool {
        now.saturating_sub(issued) >= self.lifetime_secs() / 2
    }

    /// Whether a client sending `nonce` at `now` should get a fresh one:
    /// it is not ours, has expired, or is past half its lifetime.
    #[cfg(test)] // only the tests need it
    pub(crate) fn needs_refresh(&self, nonce: &str, now: i64) -> bool {
        self.check(nonce, now)
            .map_or(true, |issued| self.refresh_due(issued, now))
    }
}

/// What the MAC covers: the label, then the time as sent.
fn message(time_b64: &str) -> Vec<u8> {
    [LABEL, time_b64.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;
    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn keys() -> NonceKeys {
        NonceKeys::new(SECRET).unwrap()
    }

    #[test]
    fn a_nonce_is_accepted_within_its_lifetime_and_stale_after() {
        let keys = keys().lifetime(Duration::from_secs(120));
        let nonce = keys.issue(NOW);
        assert_eq!(nonce.len(), 55);
        assert!(
            nonce
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)),
            "NQCHAR only: {nonce}"
        );
        assert_eq!(keys.check(&nonce, NOW), Ok(NOW));
        assert_eq!(keys.check(&nonce, NOW + 120), Ok(NOW));
        assert_eq!(keys.check(&nonce, NOW + 121), Err(NonceFault::Stale));
        // A replica whose clock is a little behind still accepts it.
        assert_eq!(keys.check(&nonce, NOW - 5), Ok(NOW));
        assert_eq!(keys.check(&nonce, NOW - 6), Err(NonceFault::Stale));
    }

    #[test]
    fn nonces_across_two_verifiers_sharing_a_key() {
        let a = NonceKeys::new(SECRET).unwrap();
        let b = NonceKeys::new(SECRET).unwrap();
        assert_eq!(b.check(&a.issue(NOW), NOW + 1), Ok(NOW));
        assert_eq!(a.check(&b.issue(NOW), NOW + 1), Ok(NOW));
        let other = NonceKeys::new(b"another secret of at least 32 bytes").unwrap();
        assert_eq!(other.check(&a.issue(NOW), NOW), Err(NonceFault::Invalid));
    }

    #[test]
    fn forged_and_garbled_nonces_are_invalid() {
        let keys = keys();
        let good = keys.issue(NOW);
        let (time, mac) = good.split_once('.').unwrap();
        // Another time under the old MAC: the time is what is sealed.
        let later = URL_SAFE_NO_PAD.encode(u64::try_from(NOW + 3600).unwrap().to_be_bytes());
        let mut flipped = mac.as_bytes().to_vec();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for bad in [
            String::new(),
            "nonce".into(),
            format!("{later}.{mac}"),
            format!("{time}.{flipped}"),
            format!("{time}."),
            format!("{time}.{mac}="),
            format!("{time}={mac}"),
            format!("A{time}.{mac}"),
            format!("{time}.{mac}.{mac}"),
            format!("{good}{}", "A".repeat(MAX_NONCE_LEN)),
        ] {
            assert_eq!(keys.check(&bad, NOW), Err(NonceFault::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn a_previous_secret_is_accepted_during_a_rotation_but_never_seals() {
        let old = NonceKeys::new(SECRET).unwrap();
        let new_secret = b"the next secret, 32 bytes or more";
        let rotated = NonceKeys::new(new_secret)
            .unwrap()
            .also_accept(SECRET)
            .unwrap();
        assert_eq!(rotated.check(&old.issue(NOW), NOW), Ok(NOW));
        let fresh = rotated.issue(NOW);
        assert_eq!(old.check(&fresh, NOW), Err(NonceFault::Invalid));
        assert_eq!(
            NonceKeys::new(new_secret).unwrap().check(&fresh, NOW),
            Ok(NOW)
        );
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            NonceKeys::new(&SECRET[..31]).unwrap_err(),
            NonceKeyError::ShortSecret { len: 31 }
        );
        assert!(keys().also_accept(b"short").is_err());
        assert!(
            NonceKeyError::ShortSecret { len: 3 }
                .to_string()
                .contains("at least 32 bytes")
        );
    }

    #[test]
    fn a_nonce_needs_refresh_after_half_its_lifetime_or_when_not_ours() {
        let keys = keys().lifetime(Duration::from_secs(100));
        let nonce = keys.issue(NOW);
        assert!(!keys.needs_refresh(&nonce, NOW));
        assert!(!keys.needs_refresh(&nonce, NOW + 49));
        assert!(keys.needs_refresh(&nonce, NOW + 50));
        assert!(keys.needs_refresh(&nonce, NOW + 101), "expired");
        assert!(keys.needs_refresh("garbage", NOW));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?}", keys());
        assert!(!shown.contains("0123456789"), "{shown}");
        assert!(shown.contains("lifetime"));
    }
}
