//! The user's DPoP settings ([`Dpop`], [`ReplayStore`]) and what `build()`
//! makes of them ([`Settings`]): the proof policy, the mode, and where the
//! URL the client called comes from.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderName;
use http::{HeaderMap, Request};
use url::Url;

use super::{MemoryReplayStore, NonceKeys, ProofPolicy, ProofStore};
use crate::algorithm::Algorithm;
use crate::error::BuildError;
use crate::jwks::AlgSet;

/// The longest `iat` window accepted: a proof is a one-time, short-lived
/// statement; a longer window only widens what a stolen proof allows.
const MAX_IAT_PAST: Duration = Duration::from_secs(600);
/// The most clock skew ahead accepted.
const MAX_IAT_FUTURE: Duration = Duration::from_secs(300);

/// DPoP (RFC 9449): tokens bound to a key the client proves it holds with
/// a fresh signed proof on every request. Set on the verifier with
/// [`VerifierBuilder::dpop`](crate::VerifierBuilder::dpop).
///
/// - [`allowed`](Self::allowed): both schemes. `Authorization: Bearer`
///   tokens without a key binding pass as before; `Authorization: DPoP`
///   tokens need a proof; a token bound to a key (`cnf.jkt`) is refused
///   when presented as `Bearer` (RFC 9449 §7.2).
/// - [`required`](Self::required): only `DPoP`; every `Bearer` token is
///   refused. A route can change the mode:
///   [`VerifyLayer::dpop_required`](crate::VerifyLayer::dpop_required).
///
/// Without `dpop(..)`, the verifier accepts no `DPoP` scheme (such a
/// request carries no token it understands) and refuses every token bound
/// to a key: a binding it cannot check must not be ignored.
///
/// The proof must name the URL the client called (`htu`). Behind a proxy
/// or a load balancer, the server cannot see it, so it is configured: the
/// origin of [`public_url`](Self::public_url) or of the verifier's
/// [`resource_metadata`](crate::VerifierBuilder::resource_metadata)
/// resource, with the request's path; or, when you allow it, the proxy's
/// `Forwarded` / `X-Forwarded-Proto` + `X-Forwarded-Host` headers
/// ([`trust_forwarded_headers`](Self::trust_forwarded_headers)). Never the
/// request's own `Host` header alone: a client chooses it. With none of
/// these, `build()` fails.
///
/// Each proof is checked on every request (the verified token may come
/// from the cache, its proof never does) and accepted once
/// ([`replay_store`](Self::replay_store)).
///
/// Answers: 401 with `WWW-Authenticate: DPoP error="invalid_dpop_proof"` for
/// a bad proof, `error="use_dpop_nonce"` and a `DPoP-Nonce` header when a
/// server nonce is needed ([`nonces`](Self::nonces)), and a fresh
/// `DPoP-Nonce` on a successful response when the client's is getting old.
/// Browser clients on other origins read these headers only when your CORS
/// layer exposes them: `Access-Control-Expose-Headers: WWW-Authenticate,
/// DPoP-Nonce`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use authlayer::{Algorithm, Dpop, Verifier};
///
/// # let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
/// let verifier = Verifier::builder()
///     .issuer("https://id.example")
///     .jwks_json(jwks)
///     .audience("urn:orders")
///     .dpop(
///         Dpop::allowed()
///             .public_url("https://api.example")
///             .algorithms([Algorithm::ES256, Algorithm::EdDSA])
///             .iat_window(Duration::from_secs(60), Duration::from_secs(5)),
///     )
///     .build()
///     .await?;
/// # let _ = verifier;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct Dpop {
    required: bool,
    algorithms: Option<Vec<Algorithm>>,
    iat_past: Duration,
    iat_future: Duration,
    nonce_secret: Option<Vec<u8>>,
    previous_nonce_secret: Option<Vec<u8>>,
    store: ReplayStore,
    public_url: Option<String>,
    forwarded: bool,
}

impl fmt::Debug for Dpop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SECURITY: never the nonce secrets.
        f.debug_struct("Dpop")
            .field("required", &self.required)
            .field("algorithms", &self.algorithms)
            .field("iat_past", &self.iat_past)
            .field("iat_future", &self.iat_future)
            .field("nonces", &self.nonce_secret.is_some())
            .field(
                "previous_nonce_secret",
                &self.previous_nonce_secret.is_some(),
            )
            .field("store", &self.store)
            .field("public_url", &self.public_url)
            .field("forwarded", &self.forwarded)
            .finish_non_exhaustive()
    }
}

impl Dpop {
    /// Both schemes: `Bearer` tokens without a key binding, `DPoP` tokens
    /// with their proof.
    pub fn allowed() -> Self {
        Dpop {
            required: false,
            algorithms: None,
            iat_past: super::DEFAULT_IAT_PAST,
            iat_future: super::DEFAULT_IAT_FUTURE,
            nonce_secret: None,
            previous_nonce_secret: None,
            store: ReplayStore::memory(super::replay::DEFAULT_CAPACITY),
            public_url: None,
            forwarded: false,
        }
    }

    /// Only `DPoP` tokens with their proof: `Bearer` is refused.
    pub fn required() -> Self {
        Dpop {
            required: true,
            ..Self::allowed()
        }
    }

    /// The algorithms a proof may be signed with; HMAC is never accepted
    /// (a proof is signed with the client's private key), and a list
    /// without an asymmetric algorithm is a build error. Announced in the
    /// `DPoP` challenge (`algs`) and the resource metadata. Defaults to
    /// every asymmetric algorithm (ES256, ES384, RS256/384/512,
    /// PS256/384/512, EdDSA).
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algs.into_iter().collect());
        self
    }

    /// How far from now a proof's `iat` may be: `past` back (at most 10
    /// minutes), `future` ahead for client clock skew (at most 5 minutes).
    /// A proof is remembered for replay until it leaves this window.
    /// Defaults to 60 s back and 5 s ahead.
    pub fn iat_window(mut self, past: Duration, future: Duration) -> Self {
        self.iat_past = past;
        self.iat_future = future;
        self
    }

    /// Requires server nonces (RFC 9449 §8): a proof must carry a nonce
    /// this server issued in the last 5 minutes, sealed with `secret` (at
    /// least 32 bytes). Nonces are stateless: give every replica the same
    /// secret, and a nonce issued by one is accepted by all. Defaults to no
    /// nonces.
    pub fn nonces(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.nonce_secret = Some(secret.into());
        self
    }

    /// Also accepts nonces sealed with `secret`, the one used before
    /// [`nonces`](Self::nonces)' (same length rule): to rotate the secret
    /// one replica at a time. Defaults to none.
    pub fn previous_nonce_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.previous_nonce_secret = Some(secret.into());
        self
    }

    /// Where accepted proofs are remembered, so each is accepted once.
    /// Replicas that do not share a store each accept a replayed proof
    /// once: behind a load balancer, share one ([`ReplayStore::redis`],
    /// feature `redis`). Defaults to [`ReplayStore::memory`] of 100 000
    /// proofs.
    pub fn replay_store(mut self, store: ReplayStore) -> Self {
        self.store = store;
        self
    }

    /// The URL clients call this service at (`https://api.example`): its
    /// origin, with each request's path, is the URI a proof must name.
    /// Defaults to the origin of the verifier's
    /// [`resource_metadata`](crate::VerifierBuilder::resource_metadata)
    /// resource, when set (both set: they must agree).
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Read the URL the client called from the `Forwarded` header (`proto`
    /// and `host`), or `X-Forwarded-Proto` and `X-Forwarded-Host`, when a
    /// request has them; [`public_url`](Self::public_url) otherwise.
    /// Enable it only behind a proxy that overwrites these headers:
    /// otherwise any client sets them. Several values (a proxy that
    /// appends) refuse the proof. Defaults to `false`.
    pub fn trust_forwarded_headers(mut self, trust: bool) -> Self {
        self.forwarded = trust;
        self
    }

    /// Checks every value and connects the replay store.
    /// `resource`: the resource metadata's resource, when configured.
    pub(crate) async fn build(
        self,
        resource: Option<&str>,
        allow_http: bool,
    ) -> Result<Settings, BuildError> {
        let fail = |setting, reason: &str| Err(BuildError::setting_error(setting, reason));
        let algs = match &self.algorithms {
            Some(list) => AlgSet::of(list.iter().copied()).and(AlgSet::ASYMMETRIC),
            None => AlgSet::ASYMMETRIC,
        };
        if algs.is_empty() {
            return fail(
                "dpop.algorithms",
                "no asymmetric algorithm: every proof would be refused (HMAC is never allowed)",
            );
        }
        if self.iat_past > MAX_IAT_PAST || self.iat_future > MAX_IAT_FUTURE {
            return fail(
                "dpop.iat_window",
                "past must be at most 10 minutes and future at most 5 minutes",
            );
        }
        let base = self.base(resource, allow_http)?;
        if base.is_none() && !self.forwarded {
            return fail(
                "dpop.public_url",
                "DPoP needs the URL clients call: set Dpop::public_url or the verifier's \
                 resource_metadata, or Dpop::trust_forwarded_headers behind a proxy that \
                 overwrites them (the request's own Host header is never trusted alone)",
            );
        }
        let mut policy = ProofPolicy::new()
            .algorithms(Algorithm::every().filter(|a| algs.contains(*a)))
            .iat_window(self.iat_past, self.iat_future);
        if let Some(secret) = &self.nonce_secret {
            let mut keys = NonceKeys::new(secret)
                .map_err(|e| BuildError::setting_error("dpop.nonces", e.to_string()))?;
            if let Some(previous) = &self.previous_nonce_secret {
                keys = keys.also_accept(previous).map_err(|e| {
                    BuildError::setting_error("dpop.previous_nonce_secret", e.to_string())
                })?;
            }
            policy = policy.nonces(keys);
        } else if self.previous_nonce_secret.is_some() {
            return fail(
                "dpop.previous_nonce_secret",
                "needs the current secret too (Dpop::nonces)",
            );
        }
        policy = policy.replay_store(self.store.open().await?);
        let algs_text = Algorithm::every()
            .filter(|a| algs.contains(*a))
            .map(Algorithm::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Settings {
            required: self.required,
            policy,
            base: base.map(String::into_boxed_str),
            forwarded: self.forwarded,
            algs_text: algs_text.into(),
        })
    }

    /// The configured origin, from `public_url` or the metadata's resource.
    fn base(&self, resource: Option<&str>, allow_http: bool) -> Result<Option<String>, BuildError> {
        let origin = |setting, raw: &str| -> Result<String, BuildError> {
            let refuse = |reason: String| BuildError::Url {
                setting,
                url: raw.to_owned(),
                reason,
            };
            let url = Url::parse(raw).map_err(|e| refuse(format!("not a URL: {e}")))?;
            // SECURITY: the https policy of key URLs (plain http on
            // loopback, or with allow_insecure_http): a proof for an http
            // URL crosses the network readable by anyone on the path.
            crate::jwks::check_url(&url, allow_http).map_err(refuse)?;
            if url.query().is_some() || url.fragment().is_some() {
                return Err(refuse("a query or fragment is not allowed".into()));
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(refuse("credentials are not allowed in the URL".into()));
            }
            Ok(url.origin().ascii_serialization())
        };
        let public = self
            .public_url
            .as_deref()
            .map(|raw| origin("dpop.public_url", raw))
            .transpose()?;
        let from_metadata = resource
            .and_then(|raw| Url::parse(raw).ok())
            .map(|url| url.origin().ascii_serialization());
        match (public, from_metadata) {
            (Some(public), Some(meta)) if public != meta => Err(BuildError::setting_error(
                "dpop.public_url",
                format!(
                    "its origin {public} is not the resource_metadata resource's ({meta}): \
                     clients would be told one URL and proofs checked against another"
                ),
            )),
            (Some(public), _) => Ok(Some(public)),
            (None, meta) => Ok(meta),
        }
    }
}

/// Where a verifier remembers accepted DPoP proofs
/// ([`Dpop::replay_store`]).
#[derive(Clone)]
pub struct ReplayStore(StoreKind);

#[derive(Clone)]
enum StoreKind {
    Memory(u64),
    #[cfg(feature = "redis")]
    Redis(String),
}

impl fmt::Debug for ReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            StoreKind::Memory(capacity) => write!(f, "ReplayStore::memory({capacity})"),
            // SECURITY: never the URL, which may hold a password.
            #[cfg(feature = "redis")]
            StoreKind::Redis(_) => f.write_str("ReplayStore::redis(..)"),
        }
    }
}

impl ReplayStore {
    /// In this process, at most `capacity` proofs (at least 1); when full,
    /// the proofs closest to leaving their window are forgotten first.
    /// Replicas that do not share a store each accept a replayed proof once.
    pub fn memory(capacity: u64) -> Self {
        ReplayStore(StoreKind::Memory(capacity))
    }

    /// Shared by every replica connected to the Redis at `url`
    /// (`redis://[user:password@]host:port[/db]`): each proof is accepted
    /// once across all of them (`SET NX PX`). `build()` connects and fails
    /// when Redis cannot be reached. When Redis stops answering, proofs are
    /// refused with 503 until it answers again (never accepted unchecked).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(url: impl Into<String>) -> Self {
        ReplayStore(StoreKind::Redis(url.into()))
    }

    async fn open(&self) -> Result<Arc<dyn ProofStore>, BuildError> {
        match &self.0 {
            StoreKind::Memory(0) => Err(BuildError::setting_error(
                "dpop.replay_store",
                "a memory store of capacity 0 remembers nothing",
            )),
            StoreKind::Memory(capacity) => Ok(Arc::new(MemoryReplayStore::new(*capacity))),
            #[cfg(feature = "redis")]
            StoreKind::Redis(url) => super::redis_store::RedisReplayStore::connect(url)
                .await
                .map(|store| Arc::new(store) as Arc<dyn ProofStore>)
                .map_err(|e| BuildError::setting_error("dpop.replay_store", e.0)),
        }
    }
}

/// The DPoP settings `build()` checked.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The verifier's mode; a route may override it.
    pub(crate) required: bool,
    pub(crate) policy: ProofPolicy,
    /// The origin clients call, without a trailing slash.
    base: Option<Box<str>>,
    forwarded: bool,
    /// The allowed algorithms, space-separated (the challenge's `algs`).
    pub(crate) algs_text: Box<str>,
}

static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

impl Settings {
    /// The URI the client called for `req`: origin and path, no query.
    /// `None`: it cannot be told (forwarded headers that are ambiguous or
    /// malformed, and nothing configured).
    pub(crate) fn external_uri<B>(&self, req: &Request<B>) -> Option<String> {
        let path = req.uri().path();
        let path = if path.is_empty() { "/" } else { path };
        if self.forwarded {
            match forwarded_origin(req.headers()) {
                Forwarded::Origin(origin) => return Some(format!("{origin}{path}")),
                Forwarded::Bad => return None,
                Forwarded::Absent => {}
            }
        }
        self.base.as_deref().map(|base| format!("{base}{path}"))
    }
}

enum Forwarded {
    Origin(String),
    Absent,
    Bad,
}

/// The origin a proxy says the client called.
///
/// SECURITY: only when the user said a proxy overwrites these headers; a
/// header listed twice or a list of several hops is ambiguous and refused,
/// never resolved by picking one.
fn forwarded_origin(headers: &HeaderMap) -> Forwarded {
    let single = |name: &HeaderName| -> Result<Option<&str>, ()> {
        let mut values = headers.get_all(name).iter();
        let Some(first) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(());
        }
        let text = first.to_str().map_err(|_| ())?.trim();
        if text.contains(',') {
            return Err(());
        }
        Ok(Some(text))
    };
    let pair = match single(&FORWARDED) {
        Err(()) => return Forwarded::Bad,
        Ok(Some(element)) => {
            let (mut proto, mut host) = (None, None);
            for part in element.split(';') {
                let Some((k, v)) = part.trim().split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"');
                if k.trim().eq_ignore_ascii_case("proto") {
                    proto = Some(v);
                } else if k.trim().eq_ignore_ascii_case("host") {
                    host = Some(v);
                }
            }
            match (proto, host) {
                (Some(proto), Some(host)) => (proto, host),
                (None, None) => return Forwarded::Absent,
                _ => return Forwarded::Bad,
            }
        }
        Ok(None) => match (single(&X_FORWARDED_PROTO), single(&X_FORWARDED_HOST)) {
            (Ok(Some(proto)), Ok(Some(host))) => (proto, host),
            (Ok(None), Ok(None)) => return Forwarded::Absent,
            _ => return Forwarded::Bad,
        },
    };
    let (proto, host) = pair;
    if !(proto.eq_ignore_ascii_case("https") || proto.eq_ignore_ascii_case("http"))
        || host.is_empty()
        || host.contains(['/', '@', '?', '#', '\\', ' '])
    {
        return Forwarded::Bad;
    }
    match Url::parse(&format!("{}://{host}", proto.to_ascii_lowercase())) {
        Ok(url) if url.path() == "/" && url.host().is_some() => {
            Forwarded::Origin(url.origin().ascii_serialization())
        }
        _ => Forwarded::Bad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(base: Option<&str>, forwarded: bool) -> Settings {
        Settings {
            required: false,
            policy: ProofPolicy::new(),
            base: base.map(Into::into),
            forwarded,
            algs_text: "ES256".into(),
        }
    }

    fn req(path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn the_external_uri_is_the_configured_origin_and_the_path_without_query() {
        let s = settings(Some("https://api.example"), false);
        let r = req("/orders/7?x=1", &[("host", "evil.example")]);
        assert_eq!(
            s.external_uri(&r).as_deref(),
            Some("https://api.example/orders/7")
        );
        // Forwarded headers are ignored unless trusted.
        let r = req(
            "/a",
            &[
                ("x-forwarded-host", "evil.example"),
                ("x-forwarded-proto", "https"),
            ],
        );
        assert_eq!(s.external_uri(&r).as_deref(), Some("https://api.example/a"));
    }

    #[test]
    fn trusted_forwarded_headers_name_the_origin_and_ambiguity_refuses() {
        let s = settings(None, true);
        let r = req(
            "/a",
            &[("forwarded", "for=1.2.3.4;proto=https;host=api.example")],
        );
        assert_eq!(s.external_uri(&r).as_deref(), Some("https://api.example/a"));
        let r = req(
            "/a",
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "API.example:8443"),
            ],
        );
        assert_eq!(
            s.external_uri(&r).as_deref(),
            Some("https://api.example:8443/a")
        );
        for bad in [
            vec![(
                "forwarded",
                "proto=https;host=a.example, proto=https;host=b.example",
            )],
            vec![
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "a.example,b.example"),
            ],
            vec![("x-forwarded-host", "a.example")],
            vec![
                ("x-forwarded-proto", "ftp"),
                ("x-forwarded-host", "a.example"),
            ],
            vec![
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "a.example/evil"),
            ],
            vec![
                ("forwarded", "proto=https;host=a.example"),
                ("forwarded", "proto=https;host=b.example"),
            ],
        ] {
            assert_eq!(s.external_uri(&req("/a", &bad)), None, "{bad:?}");
        }
        // Without any, and nothing configured: unknown; with a public URL: that.
        assert_eq!(s.external_uri(&req("/a", &[("host", "api.example")])), None);
        let s = settings(Some("https://api.example"), true);
        assert_eq!(
            s.external_uri(&req("/a", &[])).as_deref(),
            Some("https://api.example/a")
        );
    }
}
