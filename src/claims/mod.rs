//! The claims of a verified token: [`Claims`] (the standard view and the
//! user's own type), [`Scopes`], the wire payload parsed once per token
//! (`payload`) and the claim sources that say where roles, scopes and the
//! tenant are read (`sources`). The user's documentation is on [`Claims`]
//! and [`ClaimSources`].

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

mod payload;
mod sources;

pub(crate) use payload::{ParsePlan, Payload, Resolved, extra, has, report_misfit};
pub use sources::{ClaimPath, ClaimSources, ValueShape};

/// The claims of a verified token, cheap to clone (`Arc` inside).
///
/// `E` is your own claims type, deserialized from the same JSON object
/// (default `()`: none). The layer puts a `Claims<E>` into the request
/// extensions; with a custom `E` it also puts the standard view
/// `Claims<()>`, which is what [`RequireScopes`](crate::RequireScopes) reads.
/// Where roles, scopes and the tenant are read from is configured per
/// issuer with [`ClaimSources`].
///
/// # Example
///
/// ```
/// use authlayer::Claims;
/// use serde::Deserialize;
///
/// #[derive(Debug, Deserialize)]
/// struct Mine {
///     plan: String,
/// }
///
/// // Claims are produced by the `Verifier`; `from_json` is for tests and docs.
/// let claims: Claims<Mine> = Claims::from_json(
///     r#"{"iss":"https://id.example","sub":"alice","aud":["urn:orders"],
///         "exp":2000000000,"scope":"orders:read orders:write","plan":"pro"}"#,
/// )?;
/// assert_eq!(claims.sub(), Some("alice"));
/// assert!(claims.scopes().contains("orders:read"));
/// assert!(!claims.scopes().contains("orders"));
/// assert_eq!(claims.extra().plan, "pro");
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// # In axum (feature `axum`)
///
/// `Claims` and `Claims<E>` are extractors (and so is
/// [`AccessToken`](crate::AccessToken)). They read what
/// [`VerifyLayer`](crate::VerifyLayer) put into the request; without the
/// layer on the router, the extractor answers 500 and logs the wiring
/// mistake.
///
/// ```
/// use authlayer::Claims;
///
/// async fn me(claims: Claims) -> String {
///     claims.sub().unwrap_or("anonymous").to_owned()
/// }
///
/// // In mixed routers (`VerifyLayer::optional(true)`), `Option<Claims>`
/// // is `None` for anonymous requests.
/// async fn greet(claims: Option<Claims>) -> String {
///     format!("hello {}", claims.as_ref().and_then(|c| c.sub()).unwrap_or("stranger"))
/// }
/// # let _ = (me, greet);
/// ```
///
/// In tonic handlers, read them from the request:
/// `request.extensions().get::<Claims>()`, and check per-method scopes with
/// [`require_scopes`](Self::require_scopes).
pub struct Claims<E = ()> {
    standard: Arc<StandardClaims>,
    extra: Arc<E>,
}

impl<E> Clone for Claims<E> {
    fn clone(&self) -> Self {
        Self {
            standard: Arc::clone(&self.standard),
            extra: Arc::clone(&self.extra),
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for Claims<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claims")
            .field("standard", &self.standard)
            .field("extra", &self.extra)
            .finish()
    }
}

/// The registered and common claims every token may carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StandardClaims {
    /// `iss`: who issued the token.
    pub iss: Option<String>,
    /// `sub`: whom the token is about.
    pub sub: Option<String>,
    /// `aud`: the audiences (a single string becomes one element).
    pub aud: Vec<String>,
    /// `exp`: expiry, seconds since the epoch (fractions are truncated).
    pub exp: Option<i64>,
    /// `nbf`: not before, seconds since the epoch.
    pub nbf: Option<i64>,
    /// `iat`: issued at, seconds since the epoch.
    pub iat: Option<i64>,
    /// `jti`: the token's unique id.
    pub jti: Option<String>,
    /// Scopes from `scope` (space-delimited, RFC 9068) and `scp` (array or string).
    pub scopes: Scopes,
    /// `roles`.
    pub roles: Vec<String>,
    /// `tenant`.
    pub tenant: Option<String>,
    /// `client_id` (RFC 9068).
    pub client_id: Option<String>,
    /// `cnf.jkt` (RFC 9449 §6): the thumbprint of the key the token is
    /// bound to; such a token is accepted only with a DPoP proof by that key.
    pub cnf_jkt: Option<String>,
    /// The claim sources whose value had an unexpected shape (bits of [`Slot`]).
    #[serde(skip)]
    pub(crate) unexpected: u8,
}

/// A part of the standard view read from configurable claim sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Scopes = 1,
    Roles = 2,
    Tenant = 4,
}

impl StandardClaims {
    /// Whether a source of `slot` carried a value of an unexpected shape
    /// (so the standard view left it out).
    pub(crate) fn unexpected(&self, slot: Slot) -> bool {
        self.unexpected & slot as u8 != 0
    }
}

impl<E> Claims<E> {
    pub(crate) fn new(standard: StandardClaims, extra: E) -> Self {
        Self {
            standard: Arc::new(standard),
            extra: Arc::new(extra),
        }
    }

    /// The standard claims.
    pub fn standard(&self) -> &StandardClaims {
        &self.standard
    }

    pub(crate) fn standard_arc(&self) -> Arc<StandardClaims> {
        Arc::clone(&self.standard)
    }

    /// Your own claims.
    pub fn extra(&self) -> &E {
        &self.extra
    }

    /// The standard view of these claims, without the custom part.
    pub fn to_standard(&self) -> Claims<()> {
        Claims {
            standard: Arc::clone(&self.standard),
            extra: Arc::new(()),
        }
    }

    /// `iss`.
    pub fn iss(&self) -> Option<&str> {
        self.standard.iss.as_deref()
    }

    /// `sub`.
    pub fn sub(&self) -> Option<&str> {
        self.standard.sub.as_deref()
    }

    /// `aud`, always as a list.
    pub fn aud(&self) -> &[String] {
        &self.standard.aud
    }

    /// `exp` in seconds since the epoch.
    pub fn exp(&self) -> Option<i64> {
        self.standard.exp
    }

    /// `nbf` in seconds since the epoch.
    pub fn nbf(&self) -> Option<i64> {
        self.standard.nbf
    }

    /// `iat` in seconds since the epoch.
    pub fn iat(&self) -> Option<i64> {
        self.standard.iat
    }

    /// `jti`.
    pub fn jti(&self) -> Option<&str> {
        self.standard.jti.as_deref()
    }

    /// The granted scopes.
    pub fn scopes(&self) -> &Scopes {
        &self.standard.scopes
    }

    /// `Ok` if every one of `scopes` is granted, else an
    /// [`insufficient_scope`](crate::ErrorKind::InsufficientScope) error naming
    /// them all. For per-method checks, e.g. in tonic handlers (with feature
    /// `tonic`, `?` turns it into `PERMISSION_DENIED`).
    pub fn require_scopes<'a>(
        &self,
        scopes: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Result<(), crate::AuthError> {
        if scopes
            .clone()
            .into_iter()
            .all(|s| self.scopes().contains(s))
        {
            return Ok(());
        }
        let joined: Vec<&str> = scopes.into_iter().collect();
        Err(crate::AuthError::insufficient_scope(
            joined.join(" ").into(),
        ))
    }

    /// `roles`.
    pub fn roles(&self) -> &[String] {
        &self.standard.roles
    }

    /// Whether `roles` contains `role` exactly.
    pub fn has_role(&self, role: &str) -> bool {
        self.standard.roles.iter().any(|r| r == role)
    }

    /// `tenant`.
    pub fn tenant(&self) -> Option<&str> {
        self.standard.tenant.as_deref()
    }

    /// `client_id`.
    pub fn client_id(&self) -> Option<&str> {
        self.standard.client_id.as_deref()
    }
}

impl<E: DeserializeOwned + 'static> Claims<E> {
    /// Parses claims from a JSON object **without verifying anything**,
    /// reading roles, scopes and tenant as [`ClaimSources::rfc9068`] does.
    ///
    /// For tests and documentation; requests get their claims from the
    /// [`Verifier`](crate::Verifier).
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        static DEFAULT: std::sync::OnceLock<(ParsePlan, Resolved)> = std::sync::OnceLock::new();
        let (plan, resolved) = DEFAULT.get_or_init(|| {
            let sources = ClaimSources::default();
            let plan = ParsePlan::new([&sources]);
            let resolved = plan.resolve(&sources);
            (plan, resolved)
        });
        Self::parse(json, plan, resolved)
    }

    /// [`from_json`](Self::from_json), reading roles, scopes and tenant
    /// from `sources`.
    pub fn from_json_with(json: &str, sources: &ClaimSources) -> Result<Self, serde_json::Error> {
        let plan = ParsePlan::new([sources]);
        Self::parse(json, &plan, &plan.resolve(sources))
    }

    fn parse(json: &str, plan: &ParsePlan, sources: &Resolved) -> Result<Self, serde_json::Error> {
        let payload = Payload::parse(json, plan)?;
        let standard = payload.into_standard(sources);
        let extra = payload::extra::<E>(json)?;
        Ok(Self::new(standard, extra))
    }
}

impl<E: Serialize> Serialize for Claims<E> {
    /// Serializes the standard claims, with your own claims under `"extra"`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a, E> {
            #[serde(flatten)]
            standard: &'a StandardClaims,
            extra: &'a E,
        }
        View {
            standard: &self.standard,
            extra: &*self.extra,
        }
        .serialize(serializer)
    }
}

/// A set of granted scopes. Matching is exact: `orders:reader` does not
/// grant `orders:read`, and `orders` does not grant `orders:read`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Whether `scope` is granted (exact, case-sensitive match).
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// The scopes in the order the token lists them.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Number of scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no scope is granted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn push_owned(&mut self, scope: String) {
        if !scope.is_empty() && !self.contains(&scope) {
            self.0.push(scope);
        }
    }

    pub(crate) fn push_unique(&mut self, scope: &str) {
        if !scope.is_empty() && !self.contains(scope) {
            self.0.push(scope.to_owned());
        }
    }
}

impl<'a> FromIterator<&'a str> for Scopes {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut scopes = Scopes::default();
        for s in iter {
            scopes.push_unique(s);
        }
        scopes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Claims, serde_json::Error> {
        Claims::<()>::from_json(json)
    }

    #[test]
    fn scope_string_and_scp_array_are_merged() {
        let c = parse(r#"{"scope":"a b  c","scp":["d","a"]}"#).unwrap();
        assert_eq!(c.scopes().iter().collect::<Vec<_>>(), ["a", "b", "c", "d"]);
    }

    #[test]
    fn scp_as_string_is_space_separated() {
        let c = parse(r#"{"scp":"orders:read orders:write"}"#).unwrap();
        assert!(c.scopes().contains("orders:read"));
        assert!(c.scopes().contains("orders:write"));
    }

    #[test]
    fn look_alike_scopes_do_not_match() {
        let c = parse(r#"{"scope":"orders:reader orders"}"#).unwrap();
        assert!(!c.scopes().contains("orders:read"));
        assert!(!c.scopes().contains("Orders"));
    }

    #[test]
    fn aud_string_or_array() {
        assert_eq!(parse(r#"{"aud":"x"}"#).unwrap().aud(), ["x"]);
        assert_eq!(parse(r#"{"aud":["x","y"]}"#).unwrap().aud(), ["x", "y"]);
        assert!(parse(r#"{"aud":null}"#).is_err());
        assert!(parse(r#"{"aud":[1]}"#).is_err());
    }

    #[test]
    fn exp_as_string_is_refused() {
        assert!(parse(r#"{"exp":"2000000000"}"#).is_err());
        assert!(parse(r#"{"exp":null}"#).is_err());
        assert!(parse(r#"{"nbf":true}"#).is_err());
    }

    #[test]
    fn fractional_dates_are_truncated() {
        assert_eq!(parse(r#"{"exp":10.9}"#).unwrap().exp(), Some(10));
    }

    #[test]
    fn huge_dates_are_refused() {
        assert!(parse(r#"{"exp":1e300}"#).is_err());
        assert!(parse(r#"{"exp":18446744073709551615}"#).is_err());
    }

    #[test]
    fn duplicate_registered_claims_are_refused() {
        assert!(parse(r#"{"sub":"a","sub":"b"}"#).is_err());
        assert!(parse(r#"{"exp":1,"exp":2}"#).is_err());
    }

    #[test]
    fn iss_as_array_is_refused() {
        assert!(parse(r#"{"iss":["a"]}"#).is_err());
    }

    #[test]
    fn user_claims_see_the_whole_payload_including_registered_claims() {
        #[derive(serde::Deserialize)]
        struct Mine {
            sub: String,
            plan: Option<String>,
            roles: Vec<String>,
            scope: String,
        }
        let c =
            Claims::<Mine>::from_json(r#"{"sub":"a","plan":"pro","roles":["r"],"scope":"x y"}"#)
                .unwrap();
        assert_eq!(c.extra().sub, "a");
        assert_eq!(c.extra().plan.as_deref(), Some("pro"));
        assert_eq!(c.extra().roles, ["r"]);
        assert_eq!(c.extra().scope, "x y");
        assert_eq!(c.sub(), Some("a"));
        assert!(c.scopes().contains("y"));
    }

    #[test]
    fn non_registered_claims_of_unexpected_shape_are_left_out_not_fatal() {
        let c = parse(r#"{"sub":"a","roles":"admin","tenant":7,"scope":["a"],"client_id":{}}"#)
            .unwrap();
        assert!(c.roles().is_empty());
        assert_eq!(c.tenant(), None);
        assert!(c.scopes().is_empty());
        assert_eq!(c.client_id(), None);
        assert!(c.standard().unexpected(Slot::Roles));
        assert!(c.standard().unexpected(Slot::Tenant));
        assert!(c.standard().unexpected(Slot::Scopes));
        let object = parse(r#"{"tenant":{"id":"acme"}}"#).unwrap();
        assert_eq!(object.tenant(), None);
    }

    #[test]
    fn registered_claims_keep_strict_types() {
        assert!(parse(r#"{"sub":7}"#).is_err());
        assert!(parse(r#"{"jti":[]}"#).is_err());
        assert!(parse(r#"{"iat":"1"}"#).is_err());
    }

    #[test]
    fn duplicate_non_registered_claims_are_refused() {
        assert!(parse(r#"{"scope":"a","scope":"b"}"#).is_err());
        assert!(parse(r#"{"roles":["a"],"roles":["admin"]}"#).is_err());
    }

    #[test]
    fn serializes_standard_and_extra() {
        let c = parse(r#"{"sub":"a","scope":"x","roles":["r"]}"#).unwrap();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["sub"], "a");
        assert_eq!(v["scopes"][0], "x");
        assert_eq!(v["roles"][0], "r");
    }
}
