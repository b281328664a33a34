//! [`Issuer`]: the configuration of one trusted issuer.

use jsonwebtoken::Algorithm;

use crate::introspect::Introspection;
use crate::jwks::AlgSet;

/// One trusted issuer: who it is, where its keys are, what its tokens must
/// say. Add it to a builder with [`VerifierBuilder::trust`](crate::VerifierBuilder::trust).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), authlayer::BuildError> {
/// use authlayer::{Algorithm, Issuer, Verifier};
///
/// # let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1",
/// #     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
/// // Two realms of one Keycloak, no primary issuer needed.
/// let verifier = Verifier::builder()
///     .trust(Issuer::new("https://keycloak.internal/realms/staff")
///         .jwks_json(jwks)
///         .audience("orders"))
///     .trust(Issuer::new("https://keycloak.internal/realms/admin")
///         .jwks_json(jwks)
///         .audience("admin-api")
///         .algorithms([Algorithm::EdDSA]))
///     .build()
///     .await?;
/// assert_eq!(verifier.health().issuers.len(), 2);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Issuer {
    pub(crate) iss: String,
    pub(crate) settings: IssuerSettings,
}

/// Everything about an issuer but its name: what the builder's primary-issuer
/// shortcuts fill in before (or without) `.issuer(…)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IssuerSettings {
    pub(crate) source: SourceConfig,
    pub(crate) audiences: Vec<String>,
    pub(crate) any_audience: bool,
    pub(crate) algorithms: Option<AlgSet>,
    pub(crate) secret: Option<(Option<String>, Vec<u8>)>,
    pub(crate) introspection: Option<Introspection>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum SourceConfig {
    #[default]
    Discover,
    JwksUrl(String),
    Static(String),
}

impl Issuer {
    /// An issuer identified by `iss`, compared exactly with the token's `iss`.
    /// Its keys are found by OIDC discovery at
    /// `{iss}/.well-known/openid-configuration` unless a JWKS URL or a static
    /// key set is given.
    pub fn new(iss: impl Into<String>) -> Self {
        Self {
            iss: iss.into(),
            settings: IssuerSettings::default(),
        }
    }

    /// Fetch keys from this JWKS URL instead of discovering it.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.settings.source = SourceConfig::JwksUrl(url.into());
        self
    }

    /// Use this static JWK Set (JSON) instead of fetching keys: pinned keys,
    /// tests. Never refreshed.
    pub fn jwks_json(mut self, json: impl Into<String>) -> Self {
        self.settings.source = SourceConfig::Static(json.into());
        self
    }

    /// Use this static [`JwkSet`](jsonwebtoken::jwk::JwkSet).
    pub fn jwk_set(self, set: &jsonwebtoken::jwk::JwkSet) -> Self {
        self.jwks_json(serde_json::to_string(set).unwrap_or_else(|_| "{}".into()))
    }

    /// Accept tokens whose `aud` contains `audience`. May be called several
    /// times; any one matching is enough. Required unless
    /// [`allow_any_audience`](Self::allow_any_audience).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.settings.audiences.push(audience.into());
        self
    }

    /// Do not check `aud`. Only for issuers whose tokens are meant for this
    /// service alone; RFC 9068 requires the check. Defaults to off.
    pub fn allow_any_audience(mut self) -> Self {
        self.settings.any_audience = true;
        self
    }

    /// The algorithms accepted from this issuer. Defaults to RS256/384/512,
    /// PS256/384/512, ES256/384 and EdDSA. HMAC algorithms only ever verify
    /// with a [`shared_secret`](Self::shared_secret).
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.settings.algorithms = Some(AlgSet::of(algs));
        self
    }

    /// A shared secret for HS256/384/512, which must also be listed in
    /// [`algorithms`](Self::algorithms); it verifies only the HMAC algorithms
    /// its length allows (RFC 7518 §3.2: 32 bytes for HS256, 48 for HS384, 64
    /// for HS512; shorter for all of them is a build error). With `Some(kid)`,
    /// only tokens naming that kid use it: a token without `kid` never does.
    /// With `None`, tokens without `kid` use it when it is the only key that
    /// fits. Defaults to none: HMAC tokens are refused.
    pub fn shared_secret(mut self, kid: Option<&str>, secret: impl Into<Vec<u8>>) -> Self {
        self.settings.secret = Some((kid.map(str::to_owned), secret.into()));
        self
    }

    /// Check tokens at this issuer's RFC 7662 introspection endpoint: the
    /// tokens that are not JWTs (opaque tokens), and every token on a
    /// [`RequireActiveLayer`](crate::RequireActiveLayer) route. JWTs are
    /// still verified locally. Opaque tokens go to the first issuer, in
    /// configuration order, that has introspection. Defaults to none: an
    /// opaque token is refused as malformed.
    pub fn introspection(mut self, introspection: Introspection) -> Self {
        self.settings.introspection = Some(introspection);
        self
    }

    /// The issuer's identifier (`iss`).
    pub fn iss(&self) -> &str {
        &self.iss
    }
}
