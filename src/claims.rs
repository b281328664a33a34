//! Verified claims: the registered JWT claims, scopes, roles, tenant and your
//! own claims as a type parameter.
//!
//! # Example
//!
//! ```
//! use authlayer::Claims;
//! use serde::Deserialize;
//!
//! #[derive(Debug, Deserialize)]
//! struct Mine {
//!     plan: String,
//! }
//!
//! // Claims are produced by the `Verifier`; `from_json` is for tests and docs.
//! let claims: Claims<Mine> = Claims::from_json(
//!     r#"{"iss":"https://id.example","sub":"alice","aud":["urn:orders"],
//!         "exp":2000000000,"scope":"orders:read orders:write","plan":"pro"}"#,
//! )?;
//! assert_eq!(claims.sub(), Some("alice"));
//! assert!(claims.scopes().contains("orders:read"));
//! assert!(!claims.scopes().contains("orders"));
//! assert_eq!(claims.extra().plan, "pro");
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// The claims of a verified token, cheap to clone (`Arc` inside).
///
/// `E` is your own claims type, deserialized from the same JSON object
/// (default `()`: none). The layer puts a `Claims<E>` into the request
/// extensions; with a custom `E` it also puts the standard view
/// `Claims<()>`, which is what [`RequireScopes`](crate::RequireScopes) reads.
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

impl<E: DeserializeOwned> Claims<E> {
    /// Parses claims from a JSON object **without verifying anything**.
    ///
    /// For tests and documentation; requests get their claims from the
    /// [`Verifier`](crate::Verifier).
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        Ok(serde_json::from_str::<WireClaims<E>>(json)?.into_claims())
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

    fn push_unique(&mut self, scope: &str) {
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

/// The payload as it arrives on the wire. Parsed once per token.
///
/// SECURITY (claim confusion): numeric dates must be JSON numbers, `aud` a
/// string or an array of strings, `iss` a string; duplicate registered
/// claims fail (serde rejects duplicate fields), so a payload cannot say two
/// things at once.
#[derive(Deserialize)]
pub(crate) struct WireClaims<E> {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    aud: Option<Vec<String>>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    scp: Option<Vec<String>>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(flatten)]
    extra: E,
}

impl<E> WireClaims<E> {
    pub(crate) fn iss(&self) -> Option<&str> {
        self.iss.as_deref()
    }
    pub(crate) fn exp(&self) -> Option<i64> {
        self.exp
    }
    pub(crate) fn nbf(&self) -> Option<i64> {
        self.nbf
    }
    pub(crate) fn aud(&self) -> Option<&[String]> {
        self.aud.as_deref()
    }
    pub(crate) fn has(&self, claim: &str) -> bool {
        match claim {
            "iss" => self.iss.is_some(),
            "sub" => self.sub.is_some(),
            "aud" => self.aud.as_ref().is_some_and(|a| !a.is_empty()),
            "exp" => self.exp.is_some(),
            "nbf" => self.nbf.is_some(),
            "iat" => self.iat.is_some(),
            "jti" => self.jti.is_some(),
            "scope" => self.scope.is_some() || self.scp.is_some(),
            "client_id" => self.client_id.is_some(),
            "tenant" => self.tenant.is_some(),
            "roles" => self.roles.is_some(),
            _ => false,
        }
    }

    /// Sets `iss` if the payload has none (introspection answers may omit it).
    pub(crate) fn default_iss(&mut self, iss: &str) {
        self.iss.get_or_insert_with(|| iss.to_owned());
    }

    pub(crate) fn into_claims(self) -> Claims<E> {
        let mut scopes = Scopes::default();
        if let Some(scope) = &self.scope {
            for s in scope.split(' ') {
                scopes.push_unique(s);
            }
        }
        for s in self.scp.iter().flatten() {
            scopes.push_unique(s);
        }
        Claims::new(
            StandardClaims {
                iss: self.iss,
                sub: self.sub,
                aud: self.aud.unwrap_or_default(),
                exp: self.exp,
                nbf: self.nbf,
                iat: self.iat,
                jti: self.jti,
                scopes,
                roles: self.roles.unwrap_or_default(),
                tenant: self.tenant,
                client_id: self.client_id,
            },
            self.extra,
        )
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    // `null` is refused: a present claim must have a value.
    Ok(Some(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    }))
}

fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct DateVisitor;
    impl Visitor<'_> for DateVisitor {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a NumericDate (JSON number of seconds)")
        }
        fn visit_i64<Er: de::Error>(self, v: i64) -> Result<i64, Er> {
            Ok(v)
        }
        fn visit_u64<Er: de::Error>(self, v: u64) -> Result<i64, Er> {
            i64::try_from(v).map_err(|_| Er::custom("NumericDate out of range"))
        }
        #[allow(clippy::cast_possible_truncation)]
        fn visit_f64<Er: de::Error>(self, v: f64) -> Result<i64, Er> {
            // RFC 7519 allows fractional seconds; truncate toward the past.
            if v.is_finite() && v.abs() < 9.0e15 {
                Ok(v.floor() as i64)
            } else {
                Err(Er::custom("NumericDate out of range"))
            }
        }
    }
    d.deserialize_any(DateVisitor).map(Some)
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
    fn scp_as_string_is_one_scope() {
        let c = parse(r#"{"scp":"orders:read"}"#).unwrap();
        assert!(c.scopes().contains("orders:read"));
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
    fn user_claims_are_parsed_from_the_same_object() {
        #[derive(Deserialize)]
        struct Mine {
            plan: String,
        }
        let c = Claims::<Mine>::from_json(r#"{"sub":"a","plan":"pro"}"#).unwrap();
        assert_eq!(c.extra().plan, "pro");
        assert_eq!(c.to_standard().sub(), Some("a"));
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
