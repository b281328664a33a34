//! [`TestIssuer`]: a token issuer for tests (feature `test-util`).
//!
//! It generates real keys (RSA 2048, P-256, P-384, Ed25519, and HMAC secrets
//! on request), mints tokens with the claims, `kid` and algorithm you choose,
//! exposes its JWK Set and can serve it, with an OIDC discovery document, on
//! `127.0.0.1:0`. Use it to test your own handlers end to end.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use authlayer::Verifier;
//! use authlayer::test_util::TestIssuer;
//!
//! let issuer = TestIssuer::new("https://id.test");
//! let verifier = Verifier::builder()
//!     .issuer(issuer.issuer())
//!     .jwks_json(issuer.jwks_json())
//!     .audience("urn:orders")
//!     .build()
//!     .await?;
//!
//! let token = issuer.token().sub("alice").audience("urn:orders").scope("orders:read").sign();
//! let claims = verifier.verify(&token).await?;
//! assert_eq!(claims.sub(), Some("alice"));
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{Value, json};

use crate::algorithm::Algorithm;
use crate::error::Reason;
use crate::jwks::AlgSet;

enum Signer {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ec(sig::EcdsaKeyPair),
    Ed(sig::Ed25519KeyPair),
    Hmac(Vec<u8>),
}

struct TestKey {
    kid: String,
    alg: Algorithm,
    signer: Signer,
    jwk: Value,
    published: bool,
}

struct Shared {
    issuer: RwLock<String>,
    keys: RwLock<Vec<TestKey>>,
    counter: AtomicU64,
}

/// A test issuer: keys, tokens, JWKS. Cheap to clone (clones share keys).
#[derive(Clone)]
pub struct TestIssuer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIssuer")
            .field("issuer", &self.issuer())
            .field("kids", &self.kids())
            .finish()
    }
}

/// The key ids of the keys every [`TestIssuer`] starts with.
pub mod kids {
    /// RSA 2048 (RS256/384/512, PS256/384/512).
    pub const RSA: &str = "rsa-1";
    /// P-256 (ES256).
    pub const EC: &str = "ec-1";
    /// Ed25519 (EdDSA).
    pub const ED: &str = "ed-1";
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl TestIssuer {
    /// A new issuer named `iss`, with an RSA, a P-256 and an Ed25519 key
    /// (kids in [`kids`]).
    ///
    /// # Panics
    ///
    /// If the crypto library cannot generate a key (it can always, barring a
    /// broken system RNG).
    pub fn new(iss: impl Into<String>) -> Self {
        let issuer = Self {
            shared: Arc::new(Shared {
                issuer: RwLock::new(iss.into()),
                keys: RwLock::new(Vec::new()),
                counter: AtomicU64::new(0),
            }),
        };
        issuer.add_key(kids::RSA, Algorithm::RS256);
        issuer.add_key(kids::EC, Algorithm::ES256);
        issuer.add_key(kids::ED, Algorithm::EdDSA);
        issuer
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, Vec<TestKey>> {
        self.shared
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_keys(&self) -> std::sync::RwLockWriteGuard<'_, Vec<TestKey>> {
        self.shared
            .keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The issuer identifier (`iss` of minted tokens).
    pub fn issuer(&self) -> String {
        self.shared
            .issuer
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Changes the issuer identifier of tokens minted from now on.
    pub fn set_issuer(&self, iss: impl Into<String>) {
        *self
            .shared
            .issuer
            .write()
            .unwrap_or_else(PoisonError::into_inner) = iss.into();
    }

    /// Generates and publishes a key for `alg` under `kid` (RSA for RS*/PS*,
    /// P-256/P-384 for ES256/ES384, Ed25519 for EdDSA). For HMAC use
    /// [`add_secret`](Self::add_secret).
    ///
    /// # Panics
    ///
    /// For HMAC algorithms, or if key generation fails.
    pub fn add_key(&self, kid: &str, alg: Algorithm) {
        let (signer, mut jwk) = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => {
                let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .expect("RSA key generation");
                let c = sig::RsaPublicKeyComponents::<Vec<u8>>::from(kp.public_key());
                let jwk = json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)});
                (Signer::Rsa(kp), jwk)
            }
            Algorithm::ES256 | Algorithm::ES384 => {
                let (signing, crv, len) = if alg == Algorithm::ES256 {
                    (&sig::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32)
                } else {
                    (&sig::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48)
                };
                let kp = sig::EcdsaKeyPair::generate(signing).expect("EC key generation");
                let point = kp.public_key().as_ref().to_vec();
                let jwk = json!({
                    "kty": "EC", "crv": crv,
                    "x": b64(&point[1..=len]), "y": b64(&point[len + 1..]),
                });
                (Signer::Ec(kp), jwk)
            }
            Algorithm::EdDSA => {
                let kp = sig::Ed25519KeyPair::generate().expect("Ed25519 key generation");
                let jwk =
                    json!({"kty": "OKP", "crv": "Ed25519", "x": b64(kp.public_key().as_ref())});
                (Signer::Ed(kp), jwk)
            }
            _ => panic!("add_key: use add_secret for {alg:?}"),
        };
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        self.push(TestKey {
            kid: kid.to_owned(),
            alg,
            signer,
            jwk,
            published: true,
        });
    }

    /// Adds an HMAC secret under `kid` (never published in the JWKS).
    pub fn add_secret(&self, kid: &str, alg: Algorithm, secret: &[u8]) {
        self.push(TestKey {
            kid: kid.to_owned(),
            alg,
            signer: Signer::Hmac(secret.to_vec()),
            jwk: Value::Null,
            published: false,
        });
    }

    fn push(&self, key: TestKey) {
        let mut keys = self.write_keys();
        keys.retain(|k| k.kid != key.kid);
        keys.push(key);
    }

    /// Removes the key `kid` (from the JWKS and from signing).
    pub fn remove_key(&self, kid: &str) {
        self.write_keys().retain(|k| k.kid != kid);
    }

    /// The key ids, in the order added.
    pub fn kids(&self) -> Vec<String> {
        self.read_keys().iter().map(|k| k.kid.clone()).collect()
    }

    /// The public JWK of `kid`.
    pub fn jwk(&self, kid: &str) -> Option<Value> {
        self.read_keys()
            .iter()
            .find(|k| k.kid == kid && k.published)
            .map(|k| k.jwk.clone())
    }

    /// The SubjectPublicKeyInfo DER of `kid` (RSA keys), as an attacker would
    /// find it: for algorithm-confusion tests.
    pub fn public_key_der(&self, kid: &str) -> Option<Vec<u8>> {
        let keys = self.read_keys();
        let key = keys.iter().find(|k| k.kid == kid)?;
        match &key.signer {
            Signer::Rsa(kp) => kp.public_key().as_der().ok().map(|d| d.as_ref().to_vec()),
            Signer::Ec(kp) => Some(kp.public_key().as_ref().to_vec()),
            Signer::Ed(kp) => Some(kp.public_key().as_ref().to_vec()),
            Signer::Hmac(_) => None,
        }
    }

    /// The JWK Set of the published keys.
    pub fn jwks(&self) -> Value {
        let keys = self.read_keys();
        json!({"keys": keys.iter().filter(|k| k.published).map(|k| k.jwk.clone()).collect::<Vec<_>>()})
    }

    /// The JWK Set as JSON text.
    pub fn jwks_json(&self) -> String {
        self.jwks().to_string()
    }

    /// Starts a token with `iss`, `iat`, `exp` (in 5 minutes) and a fresh
    /// `jti`, signed RS256 with [`kids::RSA`] unless told otherwise.
    pub fn token(&self) -> TokenBuilder {
        let n = self.shared.counter.fetch_add(1, Ordering::Relaxed);
        let now = now();
        let mut claims = BTreeMap::new();
        claims.insert("iss".to_owned(), json!(self.issuer()));
        claims.insert("iat".to_owned(), json!(now));
        claims.insert("exp".to_owned(), json!(now + 300));
        claims.insert("jti".to_owned(), json!(format!("jti-{n}-{now}")));
        TokenBuilder {
            issuer: self.clone(),
            kid: Some(kids::RSA.to_owned()),
            signing_kid: kids::RSA.to_owned(),
            alg: None,
            header: BTreeMap::new(),
            claims,
        }
    }

    /// Signs `header` and `payload` exactly as given (any bytes, e.g. JSON with
    /// duplicate keys) with the key `kid` and algorithm `alg`; returns the
    /// compact token. `None` if there is no such key or it cannot sign `alg`.
    pub fn sign_raw(
        &self,
        header: &[u8],
        payload: &[u8],
        kid: &str,
        alg: Algorithm,
    ) -> Option<String> {
        let message = format!("{}.{}", b64(header), b64(payload));
        let signature = self.signature(message.as_bytes(), kid, alg)?;
        Some(format!("{message}.{}", b64(&signature)))
    }

    /// The raw signature of `message` by key `kid` with `alg`.
    pub fn signature(&self, message: &[u8], kid: &str, alg: Algorithm) -> Option<Vec<u8>> {
        let keys = self.read_keys();
        let key = keys.iter().find(|k| k.kid == kid)?;
        let rng = SystemRandom::new();
        match &key.signer {
            Signer::Rsa(kp) => {
                let padding: &'static dyn sig::RsaEncoding = match alg {
                    Algorithm::RS256 => &sig::RSA_PKCS1_SHA256,
                    Algorithm::RS384 => &sig::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &sig::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &sig::RSA_PSS_SHA256,
                    Algorithm::PS384 => &sig::RSA_PSS_SHA384,
                    Algorithm::PS512 => &sig::RSA_PSS_SHA512,
                    _ => return None,
                };
                let mut out = vec![0; kp.public_modulus_len()];
                kp.sign(padding, &rng, message, &mut out).ok()?;
                Some(out)
            }
            Signer::Ec(kp) => {
                let fits = matches!(
                    (alg, key.alg),
                    (Algorithm::ES256, Algorithm::ES256) | (Algorithm::ES384, Algorithm::ES384)
                );
                fits.then(|| kp.sign(&rng, message).ok().map(|s| s.as_ref().to_vec()))?
            }
            Signer::Ed(kp) => (alg == Algorithm::EdDSA).then(|| kp.sign(message).as_ref().to_vec()),
            Signer::Hmac(secret) => {
                let algorithm = match alg {
                    Algorithm::HS256 => aws_lc_rs::hmac::HMAC_SHA256,
                    Algorithm::HS384 => aws_lc_rs::hmac::HMAC_SHA384,
                    Algorithm::HS512 => aws_lc_rs::hmac::HMAC_SHA512,
                    _ => return None,
                };
                let key = aws_lc_rs::hmac::Key::new(algorithm, secret);
                Some(aws_lc_rs::hmac::sign(&key, message).as_ref().to_vec())
            }
        }
    }

    fn default_alg(&self, kid: &str) -> Algorithm {
        self.read_keys()
            .iter()
            .find(|k| k.kid == kid)
            .map_or(Algorithm::RS256, |k| k.alg)
    }

    /// Serves the JWK Set at `/.well-known/jwks.json` and an OIDC discovery
    /// document at `/.well-known/openid-configuration` on `127.0.0.1:0`, and
    /// renames the issuer to the server's URL. The server stops when the
    /// returned [`TestServer`] is dropped.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub async fn serve(&self) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let base = format!("http://{addr}");
        self.set_issuer(base.clone());
        let requests = Arc::new(AtomicU64::new(0));
        let issuer = self.clone();
        let counter = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let issuer = issuer.clone();
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        counter.fetch_add(1, Ordering::Relaxed);
                        let res = issuer.answer(&req);
                        async move { Ok::<_, Infallible>(res) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestServer {
            addr,
            base,
            requests,
            task,
        }
    }

    fn answer<B>(&self, req: &http::Request<B>) -> http::Response<Full<Bytes>> {
        let body = match req.uri().path() {
            "/.well-known/jwks.json" => self.jwks_json(),
            "/.well-known/openid-configuration" => {
                let iss = self.issuer();
                json!({
                    "issuer": iss,
                    "jwks_uri": format!("{iss}/.well-known/jwks.json"),
                    "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
                })
                .to_string()
            }
            _ => {
                let mut res = http::Response::new(Full::new(Bytes::from_static(b"not found")));
                *res.status_mut() = http::StatusCode::NOT_FOUND;
                return res;
            }
        };
        let mut res = http::Response::new(Full::new(Bytes::from(body)));
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        res
    }
}

/// A running JWKS + discovery server of a [`TestIssuer`]. Stops on drop.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    base: String,
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The issuer URL (`http://127.0.0.1:PORT`), also the discovery base.
    pub fn issuer_url(&self) -> &str {
        &self.base
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.base)
    }

    /// Requests served so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Builds one token. See [`TestIssuer::token`].
#[derive(Debug)]
#[must_use]
pub struct TokenBuilder {
    issuer: TestIssuer,
    kid: Option<String>,
    signing_kid: String,
    alg: Option<Algorithm>,
    header: BTreeMap<String, Value>,
    claims: BTreeMap<String, Value>,
}

impl TokenBuilder {
    /// `sub`.
    #[allow(clippy::should_implement_trait)] // the claim's name
    pub fn sub(self, sub: &str) -> Self {
        self.claim("sub", sub)
    }

    /// `aud` as a single string.
    pub fn audience(self, aud: &str) -> Self {
        self.claim("aud", aud)
    }

    /// `scope`, space-delimited.
    pub fn scope(self, scope: &str) -> Self {
        self.claim("scope", scope)
    }

    /// `exp` = now + `ttl`.
    pub fn expires_in(self, ttl: Duration) -> Self {
        let exp = now() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        self.claim("exp", exp)
    }

    /// `exp` = now − `ago`.
    pub fn expired_for(self, ago: Duration) -> Self {
        let exp = now() - i64::try_from(ago.as_secs()).unwrap_or(0);
        self.claim("exp", exp)
    }

    /// Any claim; `Value::Null` sets it to JSON null.
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a claim (e.g. `exp`).
    pub fn without(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sign with key `kid` and put that `kid` in the header.
    pub fn key(mut self, kid: &str) -> Self {
        kid.clone_into(&mut self.signing_kid);
        self.kid = Some(kid.to_owned());
        self
    }

    /// Put `kid` in the header whatever key signs (`None`: no `kid`).
    pub fn header_kid(mut self, kid: Option<&str>) -> Self {
        self.kid = kid.map(str::to_owned);
        self
    }

    /// The algorithm (defaults to the signing key's own).
    pub fn alg(mut self, alg: Algorithm) -> Self {
        self.alg = Some(alg);
        self
    }

    /// Any header parameter.
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.to_owned(), value.into());
        self
    }

    /// The payload as JSON.
    pub fn payload(&self) -> Value {
        Value::Object(self.claims.clone().into_iter().collect())
    }

    /// Signs the token.
    ///
    /// # Panics
    ///
    /// If the signing key does not exist or cannot sign the algorithm.
    pub fn sign(self) -> String {
        let alg = self
            .alg
            .unwrap_or_else(|| self.issuer.default_alg(&self.signing_kid));
        let mut header = self.header.clone();
        header.insert("alg".to_owned(), json!(format!("{alg:?}")));
        header
            .entry("typ".to_owned())
            .or_insert_with(|| json!("JWT"));
        if let Some(kid) = &self.kid {
            header.insert("kid".to_owned(), json!(kid));
        }
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let payload = serde_json::to_vec(&self.payload()).unwrap_or_default();
        self.issuer
            .sign_raw(&header, &payload, &self.signing_kid, alg)
            .unwrap_or_else(|| panic!("key {:?} cannot sign {alg:?}", self.signing_kid))
    }
}

/// Verifies the signature of a compact JWS against a JWK Set: the
/// signature layer alone, with the same header checks, key selection and
/// algorithm rules as for tokens, but no claims. Returns the decoded
/// payload. For conformance suites (Wycheproof) and fuzzing.
///
/// The set may hold `oct` keys (as a static set may); HMAC still needs an
/// HS algorithm in `allowed`. Fails with
/// [`KeysUnavailable`](Reason::KeysUnavailable) only when no crypto
/// backend is compiled in.
///
/// ```
/// use authlayer::test_util::verify_jws;
/// use authlayer::{Algorithm, Reason};
///
/// let jwks = r#"{"keys":[{"kty":"oct","kid":"k","k":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}]}"#;
/// // The header `{}` names no algorithm.
/// assert_eq!(verify_jws("e30.e30.AAAA", jwks, &[Algorithm::HS256]), Err(Reason::Malformed));
/// // `{"alg":"none"}` is never accepted.
/// assert_eq!(
///     verify_jws("eyJhbGciOiJub25lIn0.e30.AAAA", jwks, &[Algorithm::HS256]),
///     Err(Reason::AlgorithmNotAllowed)
/// );
/// ```
pub fn verify_jws(token: &str, jwks: &str, allowed: &[Algorithm]) -> Result<Vec<u8>, Reason> {
    crate::jws::verify_jws(token, jwks, AlgSet::of(allowed.iter().copied()))
}

/// How an RFC 7662 answer body from `issuer`'s endpoint is judged before
/// its claims are checked: `Ok(None)` active, `Ok(Some(reason))` refused,
/// `Err` not an RFC 7662 answer (503). A hook for the fuzz target
/// `introspection`, not API: it may change in any release.
#[doc(hidden)]
pub fn judge_introspection_answer(
    body: &[u8],
    issuer: &str,
    require_token_kind: bool,
) -> Result<Option<Reason>, String> {
    crate::introspect::fuzzing::judge_answer(body, issuer, require_token_kind)
}
