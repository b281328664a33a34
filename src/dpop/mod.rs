//! DPoP (RFC 9449): the proof that the client presenting a token holds the
//! private key the token is bound to.
//!
//! [`check_proof`] takes the request's `DPoP` header values, its method,
//! the URI the client called, the access token and the token's `cnf.jkt`,
//! and runs every check of RFC 9449 §4.3 ([`proof`]), the server nonce
//! (§8–9, [`nonce`], optional) and the replay check ([`replay`]) last, so
//! only proofs that passed everything else reach the store. Every refusal
//! is a [`ProofError`] whose [`ProofReason`] has a code for metrics and
//! audit and says whether the answer is `invalid_dpop_proof`,
//! `use_dpop_nonce` (with a fresh nonce) or 503 (the replay store is down:
//! fail closed).
//!
//! The proof is checked on every request, after the token, never instead
//! of it and never cached.

mod config;
mod error;
mod hash;
mod htu;
mod jkt;
mod nonce;
mod proof;
#[cfg(feature = "redis")]
mod redis_store;
mod replay;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method};

use crate::algorithm::Algorithm;
use crate::jwks::AlgSet;

pub(crate) use config::Settings;
pub use config::{Dpop, ReplayStore};
pub(crate) use error::{ProofError, ProofErrorKind, ProofReason};
// The client's side (outbound proofs) hashes `ath` and thumbprints its key
// the way the checks here do.
pub(crate) use hash::sha256_b64;
pub(crate) use jkt::thumbprint;
pub(crate) use nonce::NonceKeys;
pub(crate) use proof::Checked;
pub(crate) use replay::{MemoryReplayStore, ProofStore};

/// Default for how old a proof's `iat` may be.
const DEFAULT_IAT_PAST: Duration = Duration::from_secs(60);
/// Default for how far ahead a proof's `iat` may be (client clock skew).
const DEFAULT_IAT_FUTURE: Duration = Duration::from_secs(5);

/// What a proof must satisfy, and where seen proofs are recorded. Cheap to
/// clone (the store is shared).
#[derive(Clone)]
pub(crate) struct ProofPolicy {
    algs: AlgSet,
    iat_past: Duration,
    iat_future: Duration,
    nonces: Option<NonceKeys>,
    replay: Arc<dyn ProofStore>,
}

impl fmt::Debug for ProofPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProofPolicy")
            .field("algs", &self.algs)
            .field("iat_past", &self.iat_past)
            .field("iat_future", &self.iat_future)
            .field("nonces", &self.nonces)
            .finish_non_exhaustive()
    }
}

impl Default for ProofPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl ProofPolicy {
    /// Every asymmetric algorithm, `iat` from 60 s back to 5 s ahead, no
    /// server nonces, an in-memory replay store.
    pub(crate) fn new() -> Self {
        ProofPolicy {
            algs: AlgSet::ASYMMETRIC,
            iat_past: DEFAULT_IAT_PAST,
            iat_future: DEFAULT_IAT_FUTURE,
            nonces: None,
            replay: Arc::new(MemoryReplayStore::default()),
        }
    }

    /// The algorithms a proof may be signed with. HMAC algorithms are
    /// dropped: SECURITY (RFC 9449 §4.3 check 5): a proof is signed with
    /// the client's private key, so a symmetric algorithm, whose key would
    /// be in the proof for anyone to read, proves nothing. An empty result
    /// refuses every proof. Defaults to every asymmetric algorithm
    /// (ES256, ES384, EdDSA, RS256/384/512, PS256/384/512).
    #[must_use]
    pub(crate) fn algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algs = AlgSet::of(algs).and(AlgSet::ASYMMETRIC);
        self
    }

    /// The algorithms proofs may use: for `algs` in the `DPoP` challenge
    /// and `dpop_signing_alg_values_supported` in resource metadata.
    #[cfg(test)] // only the tests need it
    pub(crate) fn algs(&self) -> AlgSet {
        self.algs
    }

    /// How far from now a proof's `iat` may be: `past` back, `future`
    /// ahead. Defaults to 60 s back and 5 s ahead.
    #[must_use]
    pub(crate) fn iat_window(mut self, past: Duration, future: Duration) -> Self {
        self.iat_past = past;
        self.iat_future = future;
        self
    }

    /// Requires server nonces sealed with `keys`. Defaults to no nonces.
    #[must_use]
    pub(crate) fn nonces(mut self, keys: NonceKeys) -> Self {
        self.nonces = Some(keys);
        self
    }

    /// The nonce keys, when nonces are required.
    #[cfg(test)] // only the tests need it
    pub(crate) fn nonce_keys(&self) -> Option<&NonceKeys> {
        self.nonces.as_ref()
    }

    /// Where seen proofs are recorded. Defaults to a
    /// [`MemoryReplayStore`] of this process.
    #[must_use]
    pub(crate) fn replay_store(mut self, store: Arc<dyn ProofStore>) -> Self {
        self.replay = store;
        self
    }
}

/// The request a proof must match.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProofRequest<'a> {
    /// The request's method (`htm`).
    pub(crate) method: &'a Method,
    /// The URI the client called, as it called it: the configured public
    /// base URL (or a trusted proxy's) with the request's path (`htu`).
    /// The query, if any, is ignored.
    pub(crate) uri: &'a str,
    /// The access token presented with the proof: then `ath` must be its hash.
    pub(crate) access_token: Option<&'a str>,
    /// The token's `cnf.jkt`: then the proof's key must have this thumbprint.
    pub(crate) expected_jkt: Option<&'a str>,
}

/// An accepted proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProofInfo {
    /// The RFC 7638 thumbprint of the proof's key (for audit).
    pub(crate) jkt: String,
    /// A nonce to send in `DPoP-Nonce` with the response: the proof's own
    /// is past half its lifetime (RFC 9449 §8.2).
    pub(crate) fresh_nonce: Option<String>,
}

/// Checks the request's `DPoP` proof (`values`: every `DPoP` header value
/// of the request) at `now`, seconds since the epoch.
///
/// When nonces are on, every [`ProofError`] but a 503 carries a fresh
/// nonce for `DPoP-Nonce`.
#[cfg(test)] // only the tests need it
pub(crate) async fn check_proof<'h>(
    values: impl IntoIterator<Item = &'h HeaderValue>,
    request: &ProofRequest<'_>,
    now: i64,
    policy: &ProofPolicy,
) -> Result<ProofInfo, ProofError> {
    match check_now(values, request, now, policy) {
        Proof::Done(result) => result,
        Proof::Store(checked) => check_store(checked, now, policy).await,
    }
}

/// What [`check_now`] could decide without waiting.
#[derive(Debug)]
pub(crate) enum Proof {
    Done(Result<ProofInfo, ProofError>),
    /// Every check passed but the replay store's, which must be awaited:
    /// finish with [`check_store`].
    Store(Checked),
}

/// The synchronous part of [`check_proof`]: every check, and the replay
/// store's too when it answers without waiting (the in-memory store).
pub(crate) fn check_now<'h>(
    values: impl IntoIterator<Item = &'h HeaderValue>,
    request: &ProofRequest<'_>,
    now: i64,
    policy: &ProofPolicy,
) -> Proof {
    // jsonwebtoken panics without a provider: never on a request.
    if crate::crypto::ensure_provider().is_err() {
        return Proof::Done(Err(with_nonce(ProofReason::Crypto.into(), now, policy)));
    }
    let checked = match proof::single_value(values)
        .map_err(ProofError::from)
        .and_then(|proof| proof::check(proof, request, now, policy).map_err(ProofError::from))
    {
        Ok(checked) => checked,
        Err(error) => return Proof::Done(Err(with_nonce(error, now, policy))),
    };
    match policy
        .replay
        .first_use_now(&checked.replay_key, checked.replay_ttl)
    {
        Some(answer) => Proof::Done(recorded(checked, answer, now, policy)),
        None => Proof::Store(checked),
    }
}

/// The asynchronous end of [`check_proof`]: the replay store's answer.
pub(crate) async fn check_store(
    checked: Checked,
    now: i64,
    policy: &ProofPolicy,
) -> Result<ProofInfo, ProofError> {
    let answer = policy
        .replay
        .first_use(&checked.replay_key, checked.replay_ttl)
        .await;
    recorded(checked, answer, now, policy)
}

/// The verdict once the store answered.
fn recorded(
    checked: Checked,
    answer: Result<bool, replay::StoreError>,
    now: i64,
    policy: &ProofPolicy,
) -> Result<ProofInfo, ProofError> {
    // SECURITY (RFC 9449 §11.1): the store is asked last, so only proofs
    // that passed every other check are recorded; a store error refuses
    // the proof.
    match answer {
        Ok(true) => {}
        Ok(false) => return Err(with_nonce(ProofReason::Replayed.into(), now, policy)),
        Err(e) => {
            let mut error = ProofError::new(ProofReason::ReplayStore);
            error.detail = Some(e.0.into_boxed_str());
            return Err(error);
        }
    }
    let fresh_nonce = match (&policy.nonces, checked.nonce_issued) {
        (Some(keys), Some(issued)) if keys.refresh_due(issued, now) => Some(keys.issue(now)),
        _ => None,
    };
    Ok(ProofInfo {
        jkt: checked.jkt,
        fresh_nonce,
    })
}

/// A refusal carries a fresh nonce when nonces are on (but a 503 none).
fn with_nonce(mut error: ProofError, now: i64, policy: &ProofPolicy) -> ProofError {
    if error.kind() != ProofErrorKind::Unavailable
        && let Some(keys) = &policy.nonces
    {
        error.fresh_nonce = Some(keys.issue(now));
    }
    error
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};

    use super::replay::{ReplayKey, StoreError, StoreFuture};
    use super::*;
    use crate::test_util::TestIssuer;

    const NOW: i64 = 1_700_000_000;
    const URI: &str = "https://api.example.com/orders/7";
    const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
    const SECRET: &[u8] = b"a nonce secret of 32 bytes or more";

    /// A DPoP client: a key pair and the means to sign proofs with it.
    struct Client {
        keys: TestIssuer,
        kid: &'static str,
        alg: Algorithm,
    }

    static JTI: AtomicU64 = AtomicU64::new(0);

    impl Client {
        fn new(alg: Algorithm) -> Self {
            let keys = TestIssuer::new("dpop-client");
            let kid = match alg {
                Algorithm::ES256 => "ec-1",
                Algorithm::EdDSA => "ed-1",
                Algorithm::ES384 => {
                    keys.add_key("ec-384", Algorithm::ES384);
                    "ec-384"
                }
                _ => "rsa-1",
            };
            Client { keys, kid, alg }
        }

        fn es256() -> Self {
            Self::new(Algorithm::ES256)
        }

        /// The public JWK as a client sends it (no `kid`, no `use`).
        fn jwk(&self) -> Value {
            let mut jwk = self.keys.jwk(self.kid).unwrap();
            let map = jwk.as_object_mut().unwrap();
            map.remove("kid");
            map.remove("use");
            jwk
        }

        fn jkt(&self) -> String {
            jkt::thumbprint(self.jwk().as_object().unwrap()).unwrap()
        }

        fn header(&self) -> Value {
            json!({"typ": "dpop+jwt", "alg": self.alg.as_str(), "jwk": self.jwk()})
        }

        /// Claims of a good proof for `GET URI` with `TOKEN` at `NOW`.
        fn claims() -> Value {
            json!({
                "jti": format!("jti-{}", JTI.fetch_add(1, Ordering::Relaxed)),
                "htm": "GET",
                "htu": URI,
                "iat": NOW,
                "ath": ath(TOKEN),
            })
        }

        fn sign(&self, header: &Value, claims: &Value) -> String {
            self.sign_raw(header.to_string().as_bytes(), claims.to_string().as_bytes())
        }

        fn sign_raw(&self, header: &[u8], claims: &[u8]) -> String {
            self.keys
                .sign_raw(header, claims, self.kid, self.alg)
                .unwrap()
        }

        fn proof(&self) -> String {
            self.sign(&self.header(), &Client::claims())
        }

        fn proof_with(&self, edit: impl FnOnce(&mut Value)) -> String {
            let mut claims = Client::claims();
            edit(&mut claims);
            self.sign(&self.header(), &claims)
        }

        fn proof_with_header(&self, edit: impl FnOnce(&mut Value)) -> String {
            let mut header = self.header();
            edit(&mut header);
            self.sign(&header, &Client::claims())
        }
    }

    fn ath(token: &str) -> String {
        hash::sha256_b64(token.as_bytes()).unwrap()
    }

    fn request() -> ProofRequest<'static> {
        ProofRequest {
            method: &Method::GET,
            uri: URI,
            access_token: Some(TOKEN),
            expected_jkt: None,
        }
    }

    fn value(proof: &str) -> HeaderValue {
        HeaderValue::from_str(proof).unwrap()
    }

    async fn check_with(
        proof: &str,
        request: &ProofRequest<'_>,
        now: i64,
        policy: &ProofPolicy,
    ) -> Result<ProofInfo, ProofError> {
        let value = value(proof);
        check_proof([&value], request, now, policy).await
    }

    /// The reason `proof` is refused for [`request`] at `NOW` under the
    /// default policy, or `None` if it is accepted.
    async fn refusal(proof: &str) -> Option<ProofReason> {
        check_with(proof, &request(), NOW, &ProofPolicy::new())
            .await
            .err()
            .map(|e| e.reason())
    }

    #[tokio::test]
    async fn a_valid_proof_is_accepted_for_every_asymmetric_algorithm() {
        for alg in [
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::RS512,
            Algorithm::PS384,
        ] {
            let client = Client::new(alg);
            let info = check_with(&client.proof(), &request(), NOW, &ProofPolicy::new())
                .await
                .unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(info.jkt, client.jkt(), "{alg}");
            assert_eq!(info.fresh_nonce, None);
        }
    }

    #[tokio::test]
    async fn a_request_without_a_proof_is_refused_as_missing() {
        let error = check_proof([], &request(), NOW, &ProofPolicy::new())
            .await
            .unwrap_err();
        assert_eq!(error.reason(), ProofReason::Missing);
        assert_eq!(error.kind(), ProofErrorKind::InvalidProof);
        assert_eq!(error.fresh_nonce(), None, "no nonces configured");
    }

    #[tokio::test]
    async fn two_dpop_header_values_are_refused_as_multiple() {
        let client = Client::es256();
        let (a, b) = (value(&client.proof()), value(&client.proof()));
        let error = check_proof([&a, &b], &request(), NOW, &ProofPolicy::new())
            .await
            .unwrap_err();
        assert_eq!(error.reason(), ProofReason::Multiple);
        // A proxy folding both into one line.
        let folded = format!("{}, {}", client.proof(), client.proof());
        assert_eq!(refusal(&folded).await, Some(ProofReason::Multiple));
    }

    #[tokio::test]
    async fn an_oversized_proof_is_refused_before_any_parsing() {
        let client = Client::es256();
        let huge = client.proof_with(|c| {
            c["pad"] = json!("x".repeat(proof::MAX_PROOF_LEN));
        });
        assert_eq!(refusal(&huge).await, Some(ProofReason::TooLarge));
        let garbage = "a".repeat(proof::MAX_PROOF_LEN + 1);
        assert_eq!(refusal(&garbage).await, Some(ProofReason::TooLarge));
    }

    #[tokio::test]
    async fn a_proof_that_is_not_a_compact_jws_is_malformed() {
        let client = Client::es256();
        let good = client.proof();
        let (message, signature) = good.rsplit_once('.').unwrap();
        let (header, claims) = message.split_once('.').unwrap();
        let b64 = |s: &[u8]| URL_SAFE_NO_PAD.encode(s);
        let not_object = client.sign_raw(client.header().to_string().as_bytes(), b"[1,2]");
        let not_utf8 = client.sign_raw(
            client.header().to_string().as_bytes(),
            b"{\"jti\":\"a\",\"x\":\"\xff\"}",
        );
        let duplicate_htm = client.sign_raw(
            client.header().to_string().as_bytes(),
            format!(r#"{{"jti":"d","htm":"POST","htm":"GET","htu":"{URI}","iat":{NOW}}}"#)
                .as_bytes(),
        );
        for bad in [
            String::new(),
            message.to_owned(),
            format!("{header}.{claims}."),
            format!("{good}.{signature}.x"),
            format!("{header}.{claims}={}.{signature}", ""),
            format!("{}.{claims}.{signature}", b64(b"not json")),
            format!("{header}.{}.{signature}", b64(b"not json")),
            format!(" {good}"),
            not_object,
            not_utf8,
            duplicate_htm,
        ] {
            let reason = refusal(&bad).await;
            assert!(
                matches!(
                    reason,
                    Some(ProofReason::Malformed | ProofReason::Signature)
                ),
                "{bad:?}: {reason:?}"
            );
        }
        // Claims that are no JSON object, correctly signed: malformed, not accepted.
        assert_eq!(
            refusal(&client.sign_raw(client.header().to_string().as_bytes(), b"[1,2]")).await,
            Some(ProofReason::Malformed)
        );
    }

    #[tokio::test]
    async fn typ_must_name_dpop_jwt_in_any_case() {
        let client = Client::es256();
        for good in [
            "dpop+jwt",
            "DPoP+JWT",
            "application/dpop+jwt",
            "Application/DPOP+jwt",
        ] {
            let proof = client.proof_with_header(|h| h["typ"] = json!(good));
            assert_eq!(refusal(&proof).await, None, "{good}");
        }
        for bad in [
            json!("JWT"),
            json!("at+jwt"),
            json!("dpop"),
            json!("text/dpop+jwt"),
            json!("application/dpop+jwt; x=1"),
            json!("dpop+jwt "),
            json!(null),
            json!(["dpop+jwt"]),
        ] {
            let proof = client.proof_with_header(|h| h["typ"] = bad.clone());
            let reason = refusal(&proof).await;
            assert!(
                matches!(reason, Some(ProofReason::Typ | ProofReason::Malformed)),
                "{bad}: {reason:?}"
            );
        }
        let untyped = client.proof_with_header(|h| {
            h.as_object_mut().unwrap().remove("typ");
        });
        assert_eq!(refusal(&untyped).await, Some(ProofReason::Typ));
    }

    #[tokio::test]
    async fn alg_none_hmac_and_algorithms_off_the_list_are_refused() {
        let client = Client::es256();
        // `none`, with or without a signature.
        let header = URL_SAFE_NO_PAD
            .encode(json!({"typ": "dpop+jwt", "alg": "none", "jwk": client.jwk()}).to_string());
        let claims = URL_SAFE_NO_PAD.encode(Client::claims().to_string());
        for proof in [
            format!("{header}.{claims}."),
            format!("{header}.{claims}.AAAA"),
        ] {
            let reason = refusal(&proof).await;
            assert!(
                matches!(reason, Some(ProofReason::Alg | ProofReason::Malformed)),
                "{reason:?}"
            );
        }
        // HMAC, with the "key" in the proof, even when configured.
        let hmac = Client::es256();
        let secret = [7u8; 32];
        hmac.keys.add_secret("h", Algorithm::HS256, &secret);
        let header = json!({
            "typ": "dpop+jwt", "alg": "HS256",
            "jwk": {"kty": "oct", "k": URL_SAFE_NO_PAD.encode(secret)},
        });
        let proof = hmac
            .keys
            .sign_raw(
                header.to_string().as_bytes(),
                Client::claims().to_string().as_bytes(),
                "h",
                Algorithm::HS256,
            )
            .unwrap();
        assert_eq!(refusal(&proof).await, Some(ProofReason::Alg));
        let hs_configured = ProofPolicy::new().algorithms([Algorithm::HS256, Algorithm::ES256]);
        assert!(!hs_configured.algs().contains(Algorithm::HS256));
        let error = check_with(&proof, &request(), NOW, &hs_configured)
            .await
            .unwrap_err();
        assert_eq!(error.reason(), ProofReason::Alg);
        // An asymmetric algorithm that is not on the configured list.
        let ed = Client::new(Algorithm::EdDSA);
        let es256_only = ProofPolicy::new().algorithms([Algorithm::ES256]);
        let error = check_with(&ed.proof(), &request(), NOW, &es256_only)
            .await
            .unwrap_err();
        assert_eq!(error.reason(), ProofReason::Alg);
        assert!(
            check_with(&client.proof(), &request(), NOW, &es256_only)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_jwk_with_private_members_is_refused() {
        let client = Client::es256();
        for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            let proof = client.proof_with_header(|h| h["jwk"][member] = json!("AQAB"));
            assert_eq!(refusal(&proof).await, Some(ProofReason::Jwk), "{member}");
        }
        let rsa = Client::new(Algorithm::RS256);
        let proof = rsa.proof_with_header(|h| h["jwk"]["p"] = json!("AQAB"));
        assert_eq!(refusal(&proof).await, Some(ProofReason::Jwk));
    }

    #[tokio::test]
    async fn a_jwk_that_is_missing_or_does_not_fit_the_alg_is_refused() {
        let client = Client::es256();
        let ed = Client::new(Algorithm::EdDSA);
        let p384 = Client::new(Algorithm::ES384);
        let rsa = Client::new(Algorithm::RS256);
        for (jwk, alg) in [
            (None, "ES256"),
            (Some(json!("a string")), "ES256"),
            (Some(json!({})), "ES256"),
            (Some(p384.jwk()), "ES256"),
            (Some(client.jwk()), "ES384"),
            (Some(ed.jwk()), "ES256"),
            (Some(rsa.jwk()), "ES256"),
            (Some(client.jwk()), "RS256"),
            (Some(client.jwk()), "EdDSA"),
            (
                Some(json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"})),
                "ES256",
            ),
            (
                Some(json!({"kty": "EC", "crv": "secp256k1", "x": "AAAA", "y": "AAAA"})),
                "ES256",
            ),
        ] {
            let proof = client.proof_with_header(|h| {
                h["alg"] = json!(alg);
                match &jwk {
                    Some(jwk) => h["jwk"] = jwk.clone(),
                    None => {
                        h.as_object_mut().unwrap().remove("jwk");
                    }
                }
            });
            assert_eq!(
                refusal(&proof).await,
                Some(ProofReason::Jwk),
                "{jwk:?} {alg}"
            );
        }
        // A JWK whose `alg` says another algorithm than the header.
        let proof = rsa.proof_with_header(|h| h["jwk"]["alg"] = json!("PS256"));
        assert_eq!(refusal(&proof).await, Some(ProofReason::Jwk));
        // An encryption key.
        let proof = client.proof_with_header(|h| h["jwk"]["use"] = json!("enc"));
        assert_eq!(refusal(&proof).await, Some(ProofReason::Jwk));
    }

    #[tokio::test]
    async fn a_signature_that_the_proof_key_did_not_make_is_refused() {
        let client = Client::es256();
        let other = Client::es256();
        // Signed by `other`, carrying `client`'s key.
        let foreign = other.sign(&client.header(), &Client::claims());
        assert_eq!(refusal(&foreign).await, Some(ProofReason::Signature));
        // Claims changed after signing.
        let good = client.proof();
        let (message, signature) = good.rsplit_once('.').unwrap();
        let (header, _) = message.split_once('.').unwrap();
        let mut claims = Client::claims();
        claims["htm"] = json!("DELETE");
        let tampered = format!(
            "{header}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        assert_eq!(refusal(&tampered).await, Some(ProofReason::Signature));
        // A `kid` in the header changes nothing: only the proof's key counts.
        let with_kid = client.proof_with_header(|h| h["kid"] = json!("rsa-1"));
        assert_eq!(refusal(&with_kid).await, None);
    }

    #[tokio::test]
    async fn jti_must_be_present_non_empty_and_bounded() {
        let client = Client::es256();
        for bad in [json!(null), json!("")] {
            let proof = client.proof_with(|c| c["jti"] = bad.clone());
            assert_eq!(refusal(&proof).await, Some(ProofReason::Jti), "{bad}");
        }
        let proof = client.proof_with(|c| {
            c.as_object_mut().unwrap().remove("jti");
        });
        assert_eq!(refusal(&proof).await, Some(ProofReason::Jti));
        let long = client.proof_with(|c| c["jti"] = json!("j".repeat(proof::MAX_JTI_LEN + 1)));
        assert_eq!(refusal(&long).await, Some(ProofReason::Jti));
        let longest = client.proof_with(|c| c["jti"] = json!("j".repeat(proof::MAX_JTI_LEN)));
        assert_eq!(refusal(&longest).await, None);
    }

    #[tokio::test]
    async fn htm_must_be_the_request_method_exactly() {
        let client = Client::es256();
        for bad in [json!("POST"), json!("get"), json!("GET "), json!(null)] {
            let proof = client.proof_with(|c| c["htm"] = bad.clone());
            assert_eq!(refusal(&proof).await, Some(ProofReason::Htm), "{bad}");
        }
        let post = client.proof_with(|c| c["htm"] = json!("POST"));
        let request = ProofRequest {
            method: &Method::POST,
            ..request()
        };
        assert!(
            check_with(&post, &request, NOW, &ProofPolicy::new())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn htu_must_name_the_called_uri_after_normalization() {
        let client = Client::es256();
        for good in [
            URI,
            "HTTPS://API.example.com:443/orders/7",
            "https://api.example.com/orders/./7",
            "https://api.example.com/orders/7?page=2",
            "https://api.example.com/orders/7#top",
            "https://api.example.com/%6Frders/7",
        ] {
            let proof = client.proof_with(|c| c["htu"] = json!(good));
            assert_eq!(refusal(&proof).await, None, "{good}");
        }
        for bad in [
            json!("http://api.example.com/orders/7"),
            json!("https://api.example.com:8443/orders/7"),
            json!("https://evil.example.com/orders/7"),
            json!("https://api.example.com/orders/8"),
            json!("https://api.example.com/orders/7/"),
            json!("/orders/7"),
            json!(null),
        ] {
            let proof = client.proof_with(|c| c["htu"] = bad.clone());
            assert_eq!(refusal(&proof).await, Some(ProofReason::Htu), "{bad}");
        }
        // The request's own URI is normalized the same way, query dropped.
        let request = ProofRequest {
            uri: "https://API.example.com:443/orders/7?x=1",
            ..request()
        };
        assert!(
            check_with(&client.proof(), &request, NOW, &ProofPolicy::new())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn iat_must_be_inside_the_window_edges_included() {
        let client = Client::es256();
        for (iat, accepted) in [
            (json!(NOW), true),
            (json!(NOW - 60), true),
            (json!(NOW - 61), false),
            (json!(NOW + 5), true),
            (json!(NOW + 6), false),
            (json!(1_700_000_000.5_f64), true),
            (json!(1_699_999_939.5_f64), false),
            (json!(1e300), false),
            (json!(u64::MAX), false),
            (json!(null), false),
        ] {
            let proof = client.proof_with(|c| c["iat"] = iat.clone());
            let expected = (!accepted).then_some(ProofReason::Iat);
            assert_eq!(refusal(&proof).await, expected, "iat {iat}");
        }
        let as_string = client.proof_with(|c| c["iat"] = json!(NOW.to_string()));
        assert_eq!(refusal(&as_string).await, Some(ProofReason::Malformed));
        // A configured window.
        let wide = ProofPolicy::new().iat_window(Duration::from_secs(300), Duration::ZERO);
        let old = client.proof_with(|c| c["iat"] = json!(NOW - 300));
        assert!(check_with(&old, &request(), NOW, &wide).await.is_ok());
        let ahead = client.proof_with(|c| c["iat"] = json!(NOW + 1));
        let error = check_with(&ahead, &request(), NOW, &wide)
            .await
            .unwrap_err();
        assert_eq!(error.reason(), ProofReason::Iat);
    }

    #[tokio::test]
    async fn ath_must_hash_the_presented_token() {
        let client = Client::es256();
        let missing = client.proof_with(|c| {
            c.as_object_mut().unwrap().remove("ath");
        });
        assert_eq!(refusal(&missing).await, Some(ProofReason::Ath));
        for bad in [
            ath("another token"),
            String::new(),
            ath(TOKEN).to_lowercase(),
        ] {
            let proof = client.proof_with(|c| c["ath"] = json!(bad));
            assert_eq!(refusal(&proof).await, Some(ProofReason::Ath), "{bad}");
        }
        // Without a token (a token request), `ath` is not required.
        let request = ProofRequest {
            access_token: None,
            ..request()
        };
        assert!(
            check_with(&missing, &request, NOW, &ProofPolicy::new())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn the_proof_key_must_be_the_one_the_token_is_bound_to() {
        let client = Client::es256();
        let other = Client::es256();
        let jkt = client.jkt();
        let bound = ProofRequest {
            expected_jkt: Some(&jkt),
            ..request()
        };
        let info = check_with(&client.proof(), &bound, NOW, &ProofPolicy::new())
            .await
            .unwrap();
        assert_eq!(info.jkt, jkt);
        let error = check_with(&other.proof(), &bound, NOW, &ProofPolicy::new())
            .await
            .unwrap_err();
        assert_eq!(error.reason(), ProofReason::JktMismatch);
    }

    #[tokio::test]
    async fn a_replayed_proof_is_refused_and_a_new_one_accepted() {
        let client = Client::es256();
        let policy = ProofPolicy::new();
        let proof = client.proof();
        assert!(check_with(&proof, &request(), NOW, &policy).await.is_ok());
        let error = check_with(&proof, &request(), NOW + 1, &policy)
            .await
            .unwrap_err();
        assert_eq!(error.reason(), ProofReason::Replayed);
        assert_eq!(error.kind(), ProofErrorKind::InvalidProof);
        assert!(
            check_with(&client.proof(), &request(), NOW, &policy)
                .await
                .is_ok()
        );
        // Clones of a policy share its store.
        let clone = policy.clone();
        assert_eq!(
            check_with(&proof, &request(), NOW, &clone)
                .await
                .unwrap_err()
                .reason(),
            ProofReason::Replayed
        );
    }

    #[tokio::test]
    async fn the_same_jti_for_another_target_is_not_a_replay() {
        let client = Client::es256();
        let policy = ProofPolicy::new();
        let first = client.proof_with(|c| c["jti"] = json!("shared"));
        let second = client.proof_with(|c| {
            c["jti"] = json!("shared");
            c["htu"] = json!("https://api.example.com/orders/8");
        });
        assert!(check_with(&first, &request(), NOW, &policy).await.is_ok());
        let other = ProofRequest {
            uri: "https://api.example.com/orders/8",
            ..request()
        };
        assert!(check_with(&second, &other, NOW, &policy).await.is_ok());
        // Another spelling of the first target is the same target.
        let respelled = client.proof_with(|c| {
            c["jti"] = json!("shared");
            c["htu"] = json!("HTTPS://api.example.com:443/orders/7");
        });
        let error = check_with(&respelled, &request(), NOW, &policy)
            .await
            .unwrap_err();
        assert_eq!(error.reason(), ProofReason::Replayed);
    }

    #[test]
    fn a_jti_is_remembered_until_its_iat_leaves_the_window() {
        crate::crypto::ensure_provider().unwrap();
        let client = Client::es256();
        let policy = ProofPolicy::new();
        for (iat, ttl) in [(NOW, 61), (NOW - 60, 1), (NOW + 5, 66)] {
            let proof = client.proof_with(|c| c["iat"] = json!(iat));
            let checked = proof::check(&proof, &request(), NOW, &policy).unwrap();
            assert_eq!(checked.replay_ttl, Duration::from_secs(ttl), "iat {iat}");
        }
    }

    /// A store that is down.
    struct DownStore;

    impl ProofStore for DownStore {
        fn first_use<'a>(
            &'a self,
            _key: &'a ReplayKey,
            _ttl: Duration,
        ) -> StoreFuture<'a, Result<bool, StoreError>> {
            Box::pin(async { Err(StoreError("connection refused".into())) })
        }
    }

    #[tokio::test]
    async fn a_store_that_cannot_answer_refuses_the_proof() {
        let client = Client::es256();
        let policy = ProofPolicy::new()
            .replay_store(Arc::new(DownStore))
            .nonces(NonceKeys::new(SECRET).unwrap());
        let nonce = policy.nonce_keys().unwrap().issue(NOW);
        let proof = client.proof_with(|c| c["nonce"] = json!(nonce));
        let error = check_with(&proof, &request(), NOW, &policy)
            .await
            .unwrap_err();
        assert_eq!(error.reason(), ProofReason::ReplayStore);
        assert_eq!(error.kind(), ProofErrorKind::Unavailable);
        assert_eq!(error.fresh_nonce(), None, "a 503 asks for no nonce");
        assert!(error.to_string().contains("connection refused"), "{error}");
        // An invalid proof never reaches the store.
        let stale = client.proof_with(|c| {
            c["nonce"] = json!(nonce);
            c["iat"] = json!(NOW - 3600);
        });
        let error = check_with(&stale, &request(), NOW, &policy)
            .await
            .unwrap_err();
        assert_eq!(error.reason(), ProofReason::Iat);
    }

    #[tokio::test]
    async fn nonces_are_required_when_configured_and_errors_carry_a_fresh_one() {
        let client = Client::es256();
        let keys = NonceKeys::new(SECRET)
            .unwrap()
            .lifetime(Duration::from_secs(120));
        let policy = ProofPolicy::new().nonces(keys.clone());

        let error = check_with(&client.proof(), &request(), NOW, &policy)
            .await
            .unwrap_err();
        assert_eq!(error.reason(), ProofReason::NonceMissing);
        assert_eq!(error.kind(), ProofErrorKind::UseNonce);
        assert_eq!(error.kind().error_code(), Some("use_dpop_nonce"));
        let nonce = error.fresh_nonce().unwrap().to_owned();
        assert_eq!(keys.check(&nonce, NOW), Ok(NOW));

        let with_nonce = |n: &str| client.proof_with(|c| c["nonce"] = json!(n));
        let info = check_with(&with_nonce(&nonce), &request(), NOW, &policy)
            .await
            .unwrap();
        assert_eq!(info.fresh_nonce, None, "the nonce is new");

        // Stale: issued longer ago than its lifetime (an injected clock).
        let old = keys.issue(NOW - 121);
        let error = check_with(&with_nonce(&old), &request(), NOW, &policy)
            .await
            .unwrap_err();
        assert_eq!(error.reason(), ProofReason::NonceStale);
        assert!(error.fresh_nonce().is_some());

        // Forged: sealed under another secret.
        let foreign = NonceKeys::new(b"some other secret, 32 bytes long!!")
            .unwrap()
            .issue(NOW);
        let error = check_with(&with_nonce(&foreign), &request(), NOW, &policy)
            .await
            .unwrap_err();
        assert_eq!(error.reason(), ProofReason::NonceInvalid);

        // Past half its lifetime: accepted, and a fresh one comes back.
        let aging = keys.issue(NOW - 60);
        let info = check_with(&with_nonce(&aging), &request(), NOW, &policy)
            .await
            .unwrap();
        let fresh = info.fresh_nonce.unwrap();
        assert_eq!(keys.check(&fresh, NOW), Ok(NOW));

        // Any other refusal brings a nonce too, for the next proof.
        let error = check_proof([], &request(), NOW, &policy).await.unwrap_err();
        assert_eq!(error.reason(), ProofReason::Missing);
        assert!(error.fresh_nonce().is_some());
    }

    #[tokio::test]
    async fn nonces_across_two_verifiers_sharing_a_key() {
        let client = Client::es256();
        let a = ProofPolicy::new().nonces(NonceKeys::new(SECRET).unwrap());
        let b = ProofPolicy::new().nonces(NonceKeys::new(SECRET).unwrap());
        // `a` hands out the nonce; the client's next proof goes to `b`.
        let error = check_proof([], &request(), NOW, &a).await.unwrap_err();
        let nonce = error.fresh_nonce().unwrap().to_owned();
        let proof = client.proof_with(|c| c["nonce"] = json!(nonce));
        assert!(check_with(&proof, &request(), NOW + 1, &b).await.is_ok());
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn a_proof_accepted_by_one_replica_is_refused_by_another_sharing_redis() {
        let Some(url) = redis_store::test_redis_url() else {
            return;
        };
        let replica = || async {
            let store = redis_store::RedisReplayStore::connect(&url).await.unwrap();
            ProofPolicy::new().replay_store(Arc::new(store))
        };
        let (a, b) = (replica().await, replica().await);
        let client = Client::es256();
        let proof = client.proof();
        assert!(check_with(&proof, &request(), NOW, &a).await.is_ok());
        let error = check_with(&proof, &request(), NOW, &b).await.unwrap_err();
        assert_eq!(error.reason(), ProofReason::Replayed);
        assert!(
            check_with(&client.proof(), &request(), NOW, &b)
                .await
                .is_ok()
        );
    }

    #[test]
    fn check_proof_is_send_for_tower_services() {
        fn assert_send<T: Send>(_: &T) {}
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        let policy = ProofPolicy::new();
        let value = HeaderValue::from_static("x");
        let request = request();
        let future = check_proof([&value], &request, NOW, &policy);
        assert_send(&future);
        assert_send_sync::<ProofPolicy>();
    }
}
