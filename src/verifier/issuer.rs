//! [`Issuer`]: the configuration of one trusted issuer.

use std::fmt;
use std::sync::Arc;

use crate::algorithm::Algorithm;

use crate::claims::ClaimSources;
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
    /// For a tenant template: which tenants it admits.
    pub(crate) tenants: Option<Tenants>,
    /// For a tenant template discovering keys per tenant: how many tenants
    /// may get a key source.
    pub(crate) max_tenants: Option<usize>,
}

/// The tenants a templated issuer admits.
#[derive(Clone)]
pub(crate) enum Tenants {
    /// Not yet chosen (a build error).
    Unset,
    List(Vec<String>),
    Filter(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl fmt::Debug for Tenants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tenants::Unset => f.write_str("Unset"),
            Tenants::List(list) => f.debug_tuple("List").field(list).finish(),
            Tenants::Filter(_) => f.write_str("Filter(..)"),
        }
    }
}

/// The placeholder of a tenant template.
pub(crate) const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// A token's `iss` matched a trusted issuer: exactly, or through its
/// tenant template for an admitted tenant.
pub(crate) enum Match<'a> {
    Exact,
    Tenant(&'a str),
}

/// How a trusted issuer's name is matched against a token's `iss`.
pub(crate) enum IssuerName {
    Exact(Box<str>),
    Template {
        prefix: Box<str>,
        suffix: Box<str>,
        tenants: Tenants,
    },
}

impl IssuerName {
    /// The configured name (a template keeps its placeholder).
    pub(crate) fn as_str(&self) -> String {
        match self {
            IssuerName::Exact(name) => name.to_string(),
            IssuerName::Template { prefix, suffix, .. } => {
                format!("{prefix}{TENANT_PLACEHOLDER}{suffix}")
            }
        }
    }

    pub(crate) fn new(iss: &str, tenants: Option<&Tenants>) -> Self {
        match (tenants, iss.split_once(TENANT_PLACEHOLDER)) {
            (Some(tenants), Some((prefix, suffix))) => IssuerName::Template {
                prefix: prefix.into(),
                suffix: suffix.into(),
                tenants: tenants.clone(),
            },
            _ => IssuerName::Exact(iss.into()),
        }
    }

    /// Whether `iss` names this issuer, and for which tenant.
    pub(crate) fn matches<'a>(&self, iss: &'a str) -> Option<Match<'a>> {
        match self {
            IssuerName::Exact(name) => (**name == *iss).then_some(Match::Exact),
            IssuerName::Template {
                prefix,
                suffix,
                tenants,
            } => {
                let tenant = iss.strip_prefix(&**prefix)?.strip_suffix(&**suffix)?;
                // SECURITY: one path segment of plain characters, admitted
                // by the list or the filter; checked before any key lookup,
                // so an unknown tenant never causes a fetch.
                let plain = !tenant.is_empty()
                    && tenant
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
                let admitted = match tenants {
                    Tenants::Unset => false,
                    Tenants::List(list) => list.iter().any(|t| t == tenant),
                    Tenants::Filter(filter) => filter(tenant),
                };
                (plain && admitted).then_some(Match::Tenant(tenant))
            }
        }
    }
}

/// Everything about an issuer but its name: what the builder's primary-issuer
/// shortcuts fill in before (or without) `.issuer(…)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IssuerSettings {
    pub(crate) source: SourceConfig,
    pub(crate) audiences: Vec<String>,
    pub(crate) any_audience: bool,
    pub(crate) algorithms: Option<AlgSet>,
    pub(crate) secret: Option<(Option<String>, Secret)>,
    pub(crate) claims: ClaimSources,
    pub(crate) audience_from_client_id: bool,
    pub(crate) introspection: Option<Introspection>,
}

/// A shared HMAC secret.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) Vec<u8>);

// SECURITY: whoever holds the secret can mint tokens this service accepts;
// configuration is printed in debug logs, the secret never is.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
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
            tenants: None,
            max_tenants: None,
        }
    }

    /// An issuer whose name varies by tenant, as Entra ID's do:
    /// `https://login.microsoftonline.com/{tenantid}/v2.0`. A token's `iss`
    /// matches when the `{tenantid}` part is a tenant admitted by
    /// [`tenants`](Self::tenants) or [`tenant_filter`](Self::tenant_filter)
    /// (one of them is required), and that tenant must equal the token's
    /// tenant claim (`tid` with [`ClaimSources::entra`]). The tenant is
    /// checked before any key lookup, so a tenant not admitted never causes
    /// a fetch. An exact [`Issuer::new`] whose `iss` the template admits is
    /// a build error: one `iss` must select one issuer.
    ///
    /// Keys: with [`jwks_url`](Self::jwks_url) or
    /// [`jwks_json`](Self::jwks_json), all tenants share them. Without,
    /// each admitted tenant's keys are found by OIDC discovery of its own
    /// issuer name (which must pass the same https-or-loopback policy as
    /// every key URL), on the first token naming it; at most
    /// [`max_tenants`](Self::max_tenants) tenants keep a key source. These
    /// sources are reported in [`Health::tenants`](crate::Health::tenants)
    /// and do not decide [`Health::ready`](crate::Health::ready).
    ///
    /// ```
    /// use authlayer::{ClaimSources, Issuer};
    ///
    /// let entra = Issuer::tenant_template("https://login.microsoftonline.com/{tenantid}/v2.0")
    ///     .tenants(["72f988bf-86f1-41af-91ab-2d7cd011db47"])
    ///     .jwks_url("https://login.microsoftonline.com/common/discovery/v2.0/keys")
    ///     .claims(ClaimSources::entra())
    ///     .audience("api://orders");
    /// # let _ = entra;
    /// ```
    pub fn tenant_template(template: impl Into<String>) -> Self {
        Self {
            tenants: Some(Tenants::Unset),
            ..Self::new(template)
        }
    }

    /// The tenants a [`tenant_template`](Self::tenant_template) admits; an
    /// empty list is a build error. Replaces an earlier list or filter.
    /// Defaults to none, a build error for a template.
    pub fn tenants<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tenants: I) -> Self {
        self.tenants = Some(Tenants::List(tenants.into_iter().map(Into::into).collect()));
        self
    }

    /// How many tenants of a [`tenant_template`](Self::tenant_template)
    /// without a shared JWKS keep their own (discovered) key source at
    /// once: a new tenant whose keys load takes the place of the least
    /// recently used one (whose next token fetches again). Only loaded
    /// sources count: a tenant whose first fetch fails keeps none, and is
    /// not fetched again within the
    /// [refetch cooldown](crate::VerifierBuilder::refetch_cooldown) (503
    /// meanwhile). Also the most first fetches running at once; a further
    /// new tenant gets 503 until one ends. Not zero. Defaults to 64.
    pub fn max_tenants(mut self, max: usize) -> Self {
        self.max_tenants = Some(max);
        self
    }

    /// A predicate choosing the tenants a
    /// [`tenant_template`](Self::tenant_template) admits. Replaces an earlier
    /// list or filter. Defaults to none, a build error for a template.
    pub fn tenant_filter<F>(mut self, filter: F) -> Self
    where
        F: Fn(&str) -> bool + Send + Sync + 'static,
    {
        self.tenants = Some(Tenants::Filter(Arc::new(filter)));
        self
    }

    /// Where this issuer's tokens carry roles, scopes and tenant. Defaults
    /// to [`ClaimSources::rfc9068`].
    pub fn claims(mut self, sources: ClaimSources) -> Self {
        self.settings.claims = sources;
        self
    }

    /// Check the audience against `client_id` instead of `aud`, for
    /// providers whose access tokens carry no `aud` (Amazon Cognito).
    /// Defaults to `false`.
    pub fn audience_from_client_id(mut self, on: bool) -> Self {
        self.settings.audience_from_client_id = on;
        self
    }

    /// Fetch keys from this JWKS URL instead of discovering it. Defaults to
    /// OIDC discovery.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.settings.source = SourceConfig::JwksUrl(url.into());
        self
    }

    /// Use this static JWK Set (JSON) instead of fetching keys: pinned keys,
    /// tests. Never refreshed. Defaults to OIDC discovery.
    pub fn jwks_json(mut self, json: impl Into<String>) -> Self {
        self.settings.source = SourceConfig::Static(json.into());
        self
    }

    /// Accept tokens whose `aud` contains `audience`. May be called several
    /// times; any one matching is enough. Required unless
    /// [`allow_any_audience`](Self::allow_any_audience): defaults to none,
    /// a build error.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.settings.audiences.push(audience.into());
        self
    }

    /// With `true`, do not check `aud`. Only for issuers whose tokens are
    /// meant for this service alone; RFC 9068 requires the check. Defaults
    /// to `false`.
    pub fn allow_any_audience(mut self, allow: bool) -> Self {
        self.settings.any_audience = allow;
        self
    }

    /// The algorithms accepted from this issuer; an empty list is a build
    /// error. HMAC algorithms only ever verify with a
    /// [`shared_secret`](Self::shared_secret). Defaults to RS256/384/512,
    /// PS256/384/512, ES256/384 and EdDSA.
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.settings.algorithms = Some(AlgSet::of(algs));
        self
    }

    /// A shared secret for HS256/384/512, which must also be listed in
    /// [`algorithms`](Self::algorithms), and which goes with a static key
    /// set ([`jwks_json`](Self::jwks_json), which may hold no key). It
    /// verifies only the HMAC algorithms its length allows (RFC 7518 §3.2:
    /// 32 bytes for HS256, 48 for HS384, 64 for HS512; shorter for all of
    /// them is a build error). Tokens without `kid` use it when it is the
    /// only key that fits; to bind it to a `kid`, use
    /// [`shared_secret_with_kid`](Self::shared_secret_with_kid). Replaces
    /// an earlier shared secret. Defaults to none: HMAC tokens are refused.
    pub fn shared_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.settings.secret = Some((None, Secret(secret.into())));
        self
    }

    /// A [`shared_secret`](Self::shared_secret) only tokens naming `kid`
    /// use: a token without `kid` never does. Replaces an earlier shared
    /// secret. Defaults to none: HMAC tokens are refused.
    pub fn shared_secret_with_kid(
        mut self,
        kid: impl Into<String>,
        secret: impl Into<Vec<u8>>,
    ) -> Self {
        self.settings.secret = Some((Some(kid.into()), Secret(secret.into())));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_redacts_the_shared_secret() {
        let secret = b"hmac-secret-of-thirty-two-bytes!".to_vec();
        let issuer = Issuer::new("https://id.example")
            .shared_secret_with_kid("hs", secret.clone())
            .audience("a");
        let shown = format!("{issuer:?}");
        // Derived Debug prints bytes as a list of numbers.
        let listed = format!("{secret:?}");
        let numbers = listed.trim_matches(|c| c == '[' || c == ']');
        assert!(!shown.contains(numbers), "{shown}");
        assert!(!shown.contains("hmac-secret"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(shown.contains("\"hs\""), "the kid is no secret: {shown}");
        // The builder holds the primary issuer's settings the same way.
        let builder = crate::Verifier::builder()
            .issuer("https://id.example")
            .shared_secret(secret);
        let shown = format!("{builder:?}");
        assert!(!shown.contains(numbers), "{shown}");
    }
}
