//! Token introspection (RFC 7662): the settings ([`Introspection`]), the
//! endpoint client (`client`), the answer cache keyed by exact token
//! (`cache`), the single-flight and concurrency bounds (`flight`) and the
//! judgement of an answer before its claims are checked (`response`). The
//! user's documentation is on [`Introspection`].

use std::fmt;
use std::time::Duration;

use crate::error::BuildError;

mod cache;
mod client;
mod flight;
mod response;

pub(crate) use cache::{Confirmed, Lookup};
pub(crate) use flight::Introspector;

/// How the client authenticates at the introspection endpoint (RFC 6749
/// §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// `Authorization: Basic` with the form-encoded id and secret
    /// (`client_secret_basic`).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Post,
}

/// The introspection settings of one issuer. Add them with
/// [`Issuer::introspection`](crate::Issuer::introspection) or
/// [`VerifierBuilder::introspection`](crate::VerifierBuilder::introspection).
///
/// An issuer configured with [`Introspection`] has the tokens that are not
/// JWTs (not three dot-separated segments) checked at its introspection
/// endpoint; its JWTs are still verified locally. A route wrapped in
/// [`RequireActiveLayer`](crate::RequireActiveLayer) has even a locally
/// valid JWT confirmed there, with its own short cache age.
///
/// An answer becomes [`Claims`](crate::Claims) through the same parse and the
/// same `exp`/`nbf`/`aud`/required-claims checks as a JWT payload, so scopes,
/// extractors and the audit record work unchanged. Answers are cached by
/// exact token; concurrent requests carrying one new token share one call;
/// calls to the endpoint are bounded. When the endpoint is down, slow or
/// answers garbage, requests get 503 with `Retry-After` (gRPC
/// `UNAVAILABLE`): never 200 for an unconfirmed token, never a 401 that
/// blames the client for the server's outage.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), authlayer::BuildError> {
/// use std::time::Duration;
///
/// use authlayer::{ClientAuth, Introspection, Verifier};
///
/// let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1",
///     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
/// let verifier = Verifier::builder()
///     .issuer("https://id.example")
///     .jwks_json(jwks)
///     .audience("urn:orders")
///     .introspection(
///         Introspection::new("orders-service", "s3cret")
///             // Without it, `introspection_endpoint` comes from discovery.
///             .endpoint("https://id.example/introspect")
///             .client_auth(ClientAuth::Post)
///             .cache_ttl(Duration::from_secs(30)),
///     )
///     // Do not call the endpoint before the first request.
///     .lazy(true)
///     .build()
///     .await?;
///
/// let health = verifier.health();
/// assert_eq!(health.introspection[0].endpoint.as_deref(), Some("https://id.example/introspect"));
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
#[must_use]
pub struct Introspection {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) endpoint: Option<String>,
    pub(crate) auth: ClientAuth,
    pub(crate) timeout: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) cache_ttl: Duration,
    pub(crate) inactive_ttl: Duration,
    pub(crate) cache_bytes: u64,
    pub(crate) inactive_cache_bytes: u64,
    pub(crate) max_concurrency: usize,
    pub(crate) max_pending: usize,
    pub(crate) require_token_kind: bool,
}

// Hand-written: the secret never reaches a log line.
impl fmt::Debug for Introspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspection")
            .field("client_id", &self.client_id)
            .field("endpoint", &self.endpoint)
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .field("cache_ttl", &self.cache_ttl)
            .field("require_token_kind", &self.require_token_kind)
            .finish_non_exhaustive()
    }
}

impl Introspection {
    /// Introspect as the client `client_id` (not empty) with `client_secret`.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            endpoint: None,
            auth: ClientAuth::Basic,
            timeout: Duration::from_secs(2),
            max_response_bytes: 64 * 1024,
            cache_ttl: Duration::from_secs(30),
            inactive_ttl: Duration::from_secs(5),
            cache_bytes: 8 * 1024 * 1024,
            inactive_cache_bytes: 1024 * 1024,
            max_concurrency: 16,
            max_pending: 256,
            require_token_kind: false,
        }
    }

    /// The endpoint URL (https, or plain http on loopback unless
    /// [`allow_insecure_http`](crate::VerifierBuilder::allow_insecure_http)).
    /// Defaults to the discovery document's `introspection_endpoint`.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// How the client authenticates. Defaults to [`ClientAuth::Basic`].
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.auth = auth;
        self
    }

    /// The longest a request waits for an answer, queueing for a free call
    /// included; past it, the request gets 503. Not zero. Defaults to 2 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest response body accepted, in bytes; a larger one counts as a
    /// failure (503). Not zero. Defaults to 64 KiB.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// How long an active answer is reused; never past the token's `exp`.
    /// A revocation is seen at most this late (a
    /// [`RequireActiveLayer`](crate::RequireActiveLayer) route asks for a
    /// younger answer). Zero reuses no answer: every request asks the
    /// endpoint (concurrent ones for one token share a call). At most a day.
    /// Defaults to 30 s.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// How long an inactive (or refused) answer is reused; zero reuses none.
    /// At most a day. Defaults to 5 s.
    pub fn inactive_ttl(mut self, ttl: Duration) -> Self {
        self.inactive_ttl = ttl;
        self
    }

    /// Memory for cached active answers, in bytes: each entry is charged its
    /// token length, its answer and a fixed overhead. Inactive answers have
    /// their own budget ([`inactive_cache_bytes`](Self::inactive_cache_bytes)),
    /// so a flood of unknown tokens never evicts a good answer. Not zero: to
    /// reuse no answer, set [`cache_ttl`](Self::cache_ttl) to zero. Defaults
    /// to 8 MiB.
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Memory for cached inactive (or refused) answers, in bytes; see
    /// [`cache_bytes`](Self::cache_bytes). Not zero: to reuse no refusal,
    /// set [`inactive_ttl`](Self::inactive_ttl) to zero. Defaults to 1 MiB.
    pub fn inactive_cache_bytes(mut self, bytes: u64) -> Self {
        self.inactive_cache_bytes = bytes;
        self
    }

    /// Most calls to the endpoint in flight at once. Not zero. Defaults to
    /// 16.
    pub fn max_concurrency(mut self, calls: usize) -> Self {
        self.max_concurrency = calls;
        self
    }

    /// Most distinct tokens waiting for an answer (in flight or queued);
    /// a request with yet another new token gets 503 at once, so a flood of
    /// random tokens can neither queue without bound nor put more than
    /// [`max_concurrency`](Self::max_concurrency) calls on the endpoint.
    ///
    /// # What a flood of random tokens can still do
    ///
    /// The limit is shared by every client: nothing before the endpoint's
    /// answer tells a made-up opaque token from a real new one. Anyone
    /// sending distinct random opaque tokens faster than the endpoint
    /// answers them (about `max_pending` per answer time) keeps the pending
    /// set full, and while it is full:
    ///
    /// - every request whose token has no cached answer gets 503 with
    ///   `Retry-After`: a new opaque token, one whose cached answer is older
    ///   than [`cache_ttl`](Self::cache_ttl), and every request on a
    ///   [`RequireActiveLayer`](crate::RequireActiveLayer) route whose answer
    ///   is older than that route's age;
    /// - requests whose answer is cached, and JWTs verified locally, are
    ///   served as before (the flood cannot evict cached answers, see
    ///   [`cache_bytes`](Self::cache_bytes));
    /// - the endpoint gets at most `max_concurrency` calls at once from this
    ///   verifier, one per random token: the short cache of refusals helps
    ///   only against a token sent again.
    ///
    /// It is a denial of service for new sessions, never an acceptance. Rate
    /// limit unauthenticated or refused requests per client before this layer
    /// (at the load balancer or with a rate-limiting layer outside it); size
    /// `max_pending` to the new tokens you expect per answer time, with room
    /// to spare; watch [`Metrics::introspection_shed`](crate::Metrics::introspection_shed).
    ///
    /// At least [`max_concurrency`](Self::max_concurrency). Defaults to 256.
    pub fn max_pending(mut self, tokens: usize) -> Self {
        self.max_pending = tokens;
        self
    }

    /// Whether an active answer must say which kind of token it is about.
    ///
    /// An answer may name the kind in `token_type` (RFC 7662), `token_use`
    /// (Ory Hydra) or `typ` (Keycloak). Whatever this setting, every one of
    /// them that is present must name an access token, or the token is
    /// refused (401 `invalid_token`, "wrong token type"). With `true`, an
    /// answer with none of them is refused too: an endpoint that also
    /// answers for refresh tokens and leaves the kind out could otherwise
    /// have one accepted. Turn it on when your endpoint always names the
    /// kind (Hydra, Keycloak and the bundled issuer do).
    ///
    /// Defaults to `false`: RFC 7662 makes `token_type` optional.
    pub fn require_token_kind(mut self, require: bool) -> Self {
        self.require_token_kind = require;
        self
    }

    /// Refuses settings that cannot work, naming the setting and `issuer`.
    pub(crate) fn validate(&self, issuer: &str) -> Result<(), BuildError> {
        let fail = |setting, reason: &str| Err(BuildError::issuer_setting(setting, issuer, reason));
        if self.client_id.is_empty() {
            return fail("introspection.client_id", "must not be empty");
        }
        if self.timeout.is_zero() {
            return fail("introspection.timeout", "must be positive");
        }
        if self.max_response_bytes == 0 {
            return fail(
                "introspection.max_response_bytes",
                "must be positive: 0 admits no answer",
            );
        }
        if self.cache_bytes == 0 {
            return fail(
                "introspection.cache_bytes",
                "must be positive (to reuse no answer, set cache_ttl to zero)",
            );
        }
        if self.inactive_cache_bytes == 0 {
            return fail(
                "introspection.inactive_cache_bytes",
                "must be positive (to reuse no refusal, set inactive_ttl to zero)",
            );
        }
        // moka refuses (panics on) lifetimes beyond 1000 years; a day is
        // far more than any answer should be trusted.
        if self.cache_ttl > MAX_TTL {
            return fail("introspection.cache_ttl", "must be at most one day");
        }
        if self.inactive_ttl > MAX_TTL {
            return fail("introspection.inactive_ttl", "must be at most one day");
        }
        if self.max_concurrency == 0 {
            return fail("introspection.max_concurrency", "must be at least 1");
        }
        if self.max_pending < self.max_concurrency {
            return fail(
                "introspection.max_pending",
                "must be at least max_concurrency",
            );
        }
        Ok(())
    }
}

/// The longest an introspection answer may be cached.
const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Whether `token` has the shape of a compact JWS (three segments): such a
/// token is verified locally, anything else may be introspected.
pub(crate) fn is_compact_jws(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

/// SECURITY (RFC 6750 §2.1): only `b64token` characters are ever sent to the
/// endpoint; anything else is a malformed token refused locally.
pub(crate) fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// A hook for the fuzz target `introspection` (see
/// [`crate::test_util::judge_introspection_answer`]).
#[cfg(feature = "test-util")]
pub(crate) mod fuzzing {
    use super::response::{Verdict, judge};
    use crate::error::Reason;

    /// How an answer body from `issuer`'s endpoint is judged before its
    /// claims are checked: `Ok(None)` active, `Ok(Some(reason))` refused,
    /// `Err` not an RFC 7662 answer (503).
    pub fn judge_answer(
        body: &[u8],
        issuer: &str,
        require_token_kind: bool,
    ) -> Result<Option<Reason>, String> {
        judge(body, issuer, require_token_kind).map(|verdict| match verdict {
            Verdict::Active => None,
            Verdict::Refused(reason) => Some(reason),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The setting `introspection` names in its build error, if any.
    fn refused(introspection: &Introspection) -> Option<&'static str> {
        let err = introspection.validate("https://id.example").err()?;
        assert!(
            matches!(&err, BuildError::InvalidSetting { issuer: Some(i), .. } if i == "https://id.example"),
            "{err}"
        );
        err.setting()
    }

    #[test]
    fn cache_lifetimes_beyond_a_day_are_a_configuration_error() {
        assert_eq!(refused(&Introspection::new("c", "s")), None);
        let long = Introspection::new("c", "s").inactive_ttl(Duration::MAX);
        assert_eq!(refused(&long), Some("introspection.inactive_ttl"));
        let long = Introspection::new("c", "s").cache_ttl(Duration::from_secs(90_000));
        assert_eq!(refused(&long), Some("introspection.cache_ttl"));
    }

    #[tokio::test]
    async fn a_tenant_template_cannot_introspect() {
        let err = crate::Verifier::builder()
            .trust(
                crate::Issuer::tenant_template("https://login.example/{tenantid}/v2.0")
                    .tenants(["t"])
                    .jwks_json(r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#)
                    .audience("a")
                    .introspection(Introspection::new("c", "s")),
            )
            .build()
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("introspection needs one issuer name"),
            "{err}"
        );
        assert_eq!(err.setting(), Some("introspection"));
    }

    #[test]
    fn only_three_segment_tokens_count_as_jws() {
        assert!(is_compact_jws("a.b.c"));
        assert!(!is_compact_jws("ory_at_abc.def"));
        assert!(!is_compact_jws("opaque"));
        assert!(!is_compact_jws("a.b.c.d.e"));
    }

    #[test]
    fn only_b64token_characters_are_sent() {
        assert!(is_b64token("abc-_~+/.9=="));
        assert!(!is_b64token("a b"));
        assert!(!is_b64token("a\"b"));
        assert!(!is_b64token("=="));
        assert!(!is_b64token("a=b"));
    }

    #[test]
    fn secret_is_not_in_debug_output() {
        let text = format!("{:?}", Introspection::new("id", "hunter2"));
        assert!(text.contains("id") && !text.contains("hunter2"), "{text}");
    }

    #[test]
    fn every_refused_value_names_its_setting() {
        let base = || Introspection::new("id", "s");
        assert_eq!(refused(&base()), None);
        for (introspection, setting) in [
            (Introspection::new("", "s"), "introspection.client_id"),
            (base().timeout(Duration::ZERO), "introspection.timeout"),
            (
                base().max_response_bytes(0),
                "introspection.max_response_bytes",
            ),
            (base().cache_bytes(0), "introspection.cache_bytes"),
            (
                base().inactive_cache_bytes(0),
                "introspection.inactive_cache_bytes",
            ),
            (base().max_concurrency(0), "introspection.max_concurrency"),
            (
                base().max_concurrency(8).max_pending(4),
                "introspection.max_pending",
            ),
        ] {
            assert_eq!(refused(&introspection), Some(setting), "{introspection:?}");
        }
    }

    #[test]
    fn zero_lifetimes_mean_no_reuse_and_are_accepted() {
        let none = Introspection::new("id", "s")
            .cache_ttl(Duration::ZERO)
            .inactive_ttl(Duration::ZERO);
        assert_eq!(refused(&none), None);
    }
}
