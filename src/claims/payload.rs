//! The payload as it arrives on the wire, parsed once per token.
//!
//! SECURITY (claim confusion): registered claims keep strict types — numeric
//! dates must be JSON numbers, `aud` a string or an array of strings, `iss`,
//! `sub` and `jti` strings — and any claim appearing twice fails the token,
//! so a payload cannot say two things at once. Claims that roles, scopes
//! and tenant are read from are kept as raw JSON values and read by shape
//! afterwards: an unexpected shape leaves them out of the standard view
//! instead of failing the token. Everything else is skipped unparsed.

use std::any::TypeId;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::sources::{ClaimPath, ClaimSources, ValueShape};
use super::{Scopes, Slot, StandardClaims};

/// The top-level claims to keep as raw values: the union of every
/// configured source's first segment, and `client_id`.
#[derive(Debug, Clone)]
pub(crate) struct ParsePlan {
    keys: Vec<Box<str>>,
}

impl ParsePlan {
    pub(crate) fn new<'a>(sources: impl IntoIterator<Item = &'a ClaimSources>) -> Self {
        let mut keys: Vec<Box<str>> = vec!["client_id".into()];
        for path in sources.into_iter().flat_map(ClaimSources::paths) {
            if !keys.iter().any(|k| **k == *path.top()) {
                keys.push(path.top().into());
            }
        }
        Self { keys }
    }

    fn index(&self, key: &str) -> Option<usize> {
        self.keys.iter().position(|k| **k == *key)
    }
}

/// Registered claims, strictly typed, and the raw values the plan keeps.
#[derive(Debug, Default)]
pub(crate) struct Payload {
    pub(crate) iss: Option<String>,
    sub: Option<String>,
    pub(crate) aud: Option<Vec<String>>,
    pub(crate) exp: Option<i64>,
    pub(crate) nbf: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
    kept: Vec<(usize, Value)>,
}

impl Payload {
    pub(crate) fn parse(json: &[u8], plan: &ParsePlan) -> Result<Self, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let payload = PayloadSeed(plan).deserialize(&mut de)?;
        de.end()?;
        Ok(payload)
    }

    /// The raw value kept for the top-level claim `key`.
    fn kept(&self, plan: &ParsePlan, key: &str) -> Option<&Value> {
        let index = plan.index(key)?;
        self.kept.iter().find(|(i, _)| *i == index).map(|(_, v)| v)
    }

    /// `client_id` when it is a string.
    pub(crate) fn client_id<'a>(&'a self, plan: &ParsePlan) -> Option<&'a str> {
        self.kept(plan, "client_id").and_then(Value::as_str)
    }

    /// The standard view, reading roles, scopes and tenant from `sources`.
    pub(crate) fn to_standard(&self, sources: &ClaimSources, plan: &ParsePlan) -> StandardClaims {
        let mut unexpected = 0;
        let mut scopes = Scopes::default();
        let mut roles: Vec<String> = Vec::new();
        for path in &sources.scopes {
            match self.read(plan, path) {
                Read::Absent => {}
                Read::List(values) => values.for_each(|s| scopes.push_unique(s)),
                Read::Unexpected => unexpected |= Slot::Scopes as u8,
            }
        }
        for path in &sources.roles {
            match self.read(plan, path) {
                Read::Absent => {}
                Read::List(values) => {
                    for role in values {
                        if !role.is_empty() && !roles.iter().any(|r| r == role) {
                            roles.push(role.to_owned());
                        }
                    }
                }
                Read::Unexpected => unexpected |= Slot::Roles as u8,
            }
        }
        let mut tenant = None;
        for path in &sources.tenant {
            match self.walk(plan, path) {
                None => {}
                Some(Value::String(t)) if tenant.is_none() => tenant = Some(t.clone()),
                Some(Value::String(_)) => {}
                Some(_) => unexpected |= Slot::Tenant as u8,
            }
        }
        StandardClaims {
            iss: self.iss.clone(),
            sub: self.sub.clone(),
            aud: self.aud.clone().unwrap_or_default(),
            exp: self.exp,
            nbf: self.nbf,
            iat: self.iat,
            jti: self.jti.clone(),
            scopes,
            roles,
            tenant,
            client_id: self.client_id(plan).map(str::to_owned),
            unexpected,
        }
    }

    fn walk<'a>(&'a self, plan: &ParsePlan, path: &ClaimPath) -> Option<&'a Value> {
        let mut value = self.kept(plan, path.top())?;
        for segment in path.segments.iter().skip(1) {
            value = value.as_object()?.get(&**segment)?;
        }
        Some(value)
    }

    fn read<'a>(&'a self, plan: &ParsePlan, path: &ClaimPath) -> Read<'a> {
        let Some(value) = self.walk(plan, path) else {
            return Read::Absent;
        };
        let shape = path.shape;
        let array = matches!(
            shape,
            ValueShape::Array | ValueShape::ArrayOrSpaced | ValueShape::Any
        );
        let spaced = matches!(
            shape,
            ValueShape::Spaced | ValueShape::ArrayOrSpaced | ValueShape::Any
        );
        let keys = matches!(shape, ValueShape::Keys | ValueShape::Any);
        match value {
            Value::Array(items) if array && items.iter().all(Value::is_string) => {
                Read::List(Box::new(items.iter().filter_map(Value::as_str)))
            }
            Value::String(s) if spaced => Read::List(Box::new(s.split(' '))),
            Value::Object(map) if keys => Read::List(Box::new(map.keys().map(String::as_str))),
            _ => Read::Unexpected,
        }
    }

    /// Whether `claim` is present, for `require_claims`.
    pub(crate) fn has(&self, claim: &str, standard: &StandardClaims) -> bool {
        match claim {
            "iss" => self.iss.is_some(),
            "sub" => self.sub.is_some(),
            "aud" => self.aud.as_ref().is_some_and(|a| !a.is_empty()),
            "exp" => self.exp.is_some(),
            "nbf" => self.nbf.is_some(),
            "iat" => self.iat.is_some(),
            "jti" => self.jti.is_some(),
            "scope" => !standard.scopes.is_empty(),
            "client_id" => standard.client_id.is_some(),
            "tenant" => standard.tenant.is_some(),
            "roles" => !standard.roles.is_empty(),
            _ => false,
        }
    }
}

enum Read<'a> {
    Absent,
    List(Box<dyn Iterator<Item = &'a str> + 'a>),
    Unexpected,
}

/// Your own claims type, parsed from the whole payload: it may name `sub`,
/// `roles`, `scope` or anything else. `()` costs nothing.
pub(crate) fn extra<E: DeserializeOwned + 'static>(json: &[u8]) -> Result<E, serde_json::Error> {
    if TypeId::of::<E>() == TypeId::of::<()>() {
        return E::deserialize(Value::Null);
    }
    serde_json::from_slice(json)
}

struct PayloadSeed<'a>(&'a ParsePlan);

enum Field {
    Iss,
    Sub,
    Aud,
    Exp,
    Nbf,
    Iat,
    Jti,
    Kept(usize),
    Other,
}

impl Field {
    /// The bit recording that the field was seen (duplicates fail).
    fn bit(&self) -> Option<u64> {
        Some(match self {
            Field::Iss => 1,
            Field::Sub => 1 << 1,
            Field::Aud => 1 << 2,
            Field::Exp => 1 << 3,
            Field::Nbf => 1 << 4,
            Field::Iat => 1 << 5,
            Field::Jti => 1 << 6,
            Field::Kept(i) if *i < 57 => 1 << (7 + i),
            Field::Kept(_) | Field::Other => return None,
        })
    }
}

struct FieldSeed<'a>(&'a ParsePlan);

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Field;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldSeed<'_> {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a claim name")
    }

    fn visit_str<Er: de::Error>(self, key: &str) -> Result<Field, Er> {
        Ok(match key {
            "iss" => Field::Iss,
            "sub" => Field::Sub,
            "aud" => Field::Aud,
            "exp" => Field::Exp,
            "nbf" => Field::Nbf,
            "iat" => Field::Iat,
            "jti" => Field::Jti,
            _ => self.0.index(key).map_or(Field::Other, Field::Kept),
        })
    }
}

impl<'de> DeserializeSeed<'de> for PayloadSeed<'_> {
    type Value = Payload;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Payload, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PayloadSeed<'_> {
    type Value = Payload;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Payload, A::Error> {
        let mut p = Payload::default();
        let mut seen: u64 = 0;
        let mut seen_late: Vec<usize> = Vec::new();
        while let Some(field) = map.next_key_seed(FieldSeed(self.0))? {
            match field.bit() {
                Some(bit) if seen & bit != 0 => return Err(de::Error::custom("duplicate claim")),
                Some(bit) => seen |= bit,
                None => {
                    if let Field::Kept(i) = field {
                        if seen_late.contains(&i) {
                            return Err(de::Error::custom("duplicate claim"));
                        }
                        seen_late.push(i);
                    }
                }
            }
            match field {
                Field::Iss => p.iss = map.next_value()?,
                Field::Sub => p.sub = map.next_value()?,
                Field::Aud => p.aud = Some(map.next_value::<OneOrMany>()?.0),
                Field::Exp => p.exp = Some(map.next_value::<NumericDate>()?.0),
                Field::Nbf => p.nbf = Some(map.next_value::<NumericDate>()?.0),
                Field::Iat => p.iat = Some(map.next_value::<NumericDate>()?.0),
                Field::Jti => p.jti = map.next_value()?,
                Field::Kept(i) => p.kept.push((i, map.next_value()?)),
                Field::Other => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(p)
    }
}

/// A claim nobody reads, checked but not kept.
///
/// SECURITY: unlike `IgnoredAny`, this goes through `deserialize_any`, so the
/// parser's nesting limit and UTF-8 validation apply to every claim: a
/// payload that is not valid JSON text fails whatever claim hides it.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Skip)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = Skip;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<Er: de::Error>(self, _: bool) -> Result<Skip, Er> {
        Ok(Skip)
    }
    fn visit_i64<Er: de::Error>(self, _: i64) -> Result<Skip, Er> {
        Ok(Skip)
    }
    fn visit_u64<Er: de::Error>(self, _: u64) -> Result<Skip, Er> {
        Ok(Skip)
    }
    fn visit_f64<Er: de::Error>(self, _: f64) -> Result<Skip, Er> {
        Ok(Skip)
    }
    fn visit_str<Er: de::Error>(self, _: &str) -> Result<Skip, Er> {
        Ok(Skip)
    }
    fn visit_unit<Er: de::Error>(self) -> Result<Skip, Er> {
        Ok(Skip)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
}

/// `aud`: a string or an array of strings. `null` is refused: a present
/// claim must have a value.
struct OneOrMany(Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            One(String),
            Many(Vec<String>),
        }
        Ok(OneOrMany(match Either::deserialize(d)? {
            Either::One(s) => vec![s],
            Either::Many(v) => v,
        }))
    }
}

/// A NumericDate: a JSON number of seconds, fractions truncated toward the
/// past.
struct NumericDate(i64);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DateVisitor).map(NumericDate)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Claims;

    fn with(sources: &ClaimSources, json: &str) -> Claims {
        Claims::from_json_with(json, sources).unwrap()
    }

    #[test]
    fn entra_reads_roles_spaced_scp_and_tid() {
        let c = with(
            &ClaimSources::entra(),
            r#"{"roles":["Orders.Admin"],"scp":"Orders.Read User.Read","tid":"72f988bf","tenant":"x"}"#,
        );
        assert!(c.has_role("Orders.Admin"));
        assert!(c.scopes().contains("Orders.Read") && c.scopes().contains("User.Read"));
        assert_eq!(c.tenant(), Some("72f988bf"));
    }

    #[test]
    fn auth0_reads_permissions_and_org_id() {
        let c = with(
            &ClaimSources::auth0(),
            r#"{"permissions":["read:orders"],"scope":"openid","org_id":"org_1","roles":["x"]}"#,
        );
        assert_eq!(c.roles(), ["read:orders"]);
        assert_eq!(c.tenant(), Some("org_1"));
        assert!(c.scopes().contains("openid"));
    }

    #[test]
    fn okta_reads_groups_and_scp_array_but_not_a_scp_string() {
        let c = with(
            &ClaimSources::okta(),
            r#"{"groups":["Everyone","Admins"],"scp":["orders:read"]}"#,
        );
        assert!(c.has_role("Admins"));
        assert!(c.scopes().contains("orders:read"));
        let c = with(&ClaimSources::okta(), r#"{"scp":"orders:read"}"#);
        assert!(c.scopes().is_empty());
        assert!(c.standard().unexpected(Slot::Scopes));
    }

    #[test]
    fn cognito_reads_colon_named_groups() {
        let c = with(
            &ClaimSources::cognito(),
            r#"{"cognito:groups":["admin"],"scope":"orders/read","client_id":"abc"}"#,
        );
        assert!(c.has_role("admin"));
        assert!(c.scopes().contains("orders/read"));
        assert_eq!(c.client_id(), Some("abc"));
    }

    #[test]
    fn authentik_reads_groups() {
        let c = with(
            &ClaimSources::authentik(),
            r#"{"groups":["authentik Admins"]}"#,
        );
        assert!(c.has_role("authentik Admins"));
        assert!(!with(&ClaimSources::authentik(), r#"{"roles":["admin"]}"#).has_role("admin"));
    }

    #[test]
    fn zitadel_roles_are_object_keys() {
        let c = with(
            &ClaimSources::zitadel(),
            r#"{"urn:zitadel:iam:org:project:roles":{"admin":{"123":"acme.zitadel.cloud"},"user":{}},
                "urn:zitadel:iam:user:resourceowner:id":"123"}"#,
        );
        assert!(c.has_role("admin") && c.has_role("user"));
        assert_eq!(c.tenant(), Some("123"));
        let arr = with(
            &ClaimSources::zitadel(),
            r#"{"urn:zitadel:iam:org:project:roles":["admin"]}"#,
        );
        assert!(!arr.has_role("admin"));
    }

    #[test]
    fn keycloak_merges_realm_and_one_clients_roles_only() {
        let c = with(
            &ClaimSources::keycloak("orders"),
            r#"{"realm_access":{"roles":["offline_access","user"]},
                "resource_access":{"orders":{"roles":["admin"]},"billing":{"roles":["root"]}},
                "roles":["ignored"]}"#,
        );
        assert_eq!(c.roles(), ["offline_access", "user", "admin"]);
        let dotted = ClaimSources::keycloak("my.client");
        let c = with(
            &dotted,
            r#"{"resource_access":{"my.client":{"roles":["a"]}}}"#,
        );
        assert!(c.has_role("a"));
    }

    #[test]
    fn sources_merge_and_dedupe() {
        let s = ClaimSources::rfc9068().roles([
            ClaimPath::new("roles", ValueShape::Array),
            ClaimPath::new("groups", ValueShape::Any),
        ]);
        let c = with(&s, r#"{"roles":["a"],"groups":"a b"}"#);
        assert_eq!(c.roles(), ["a", "b"]);
    }

    #[test]
    fn the_first_string_tenant_wins_and_numbers_are_left_out() {
        let s = ClaimSources::rfc9068().tenant([
            ClaimPath::new("org.id", ValueShape::Array),
            ClaimPath::new("tenant", ValueShape::Text),
        ]);
        let c = with(&s, r#"{"org":{"id":"o1"},"tenant":"t1"}"#);
        assert_eq!(c.tenant(), Some("o1"));
        let c = with(&s, r#"{"org":{"id":5},"tenant":"t1"}"#);
        assert_eq!(c.tenant(), Some("t1"));
        assert!(c.standard().unexpected(Slot::Tenant));
    }

    #[test]
    fn empty_path_segments_are_invalid() {
        let s = ClaimSources::rfc9068().roles([ClaimPath::new("a..b", ValueShape::Array)]);
        assert!(s.validate().unwrap_err().contains("a..b"));
        assert!(ClaimSources::keycloak("c").validate().is_ok());
    }
}
