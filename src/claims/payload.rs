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
/// configured source's first segment, and `client_id` (index 0).
#[derive(Debug, Clone)]
pub(crate) struct ParsePlan {
    keys: Vec<Box<str>>,
    /// Bit `n` set: some key is `n` bytes long (63: longer). Most claims of
    /// a payload are not kept; this turns them away without comparing.
    lengths: u64,
}

impl ParsePlan {
    pub(crate) fn new<'a>(sources: impl IntoIterator<Item = &'a ClaimSources>) -> Self {
        let mut keys: Vec<Box<str>> = vec!["client_id".into()];
        for path in sources.into_iter().flat_map(ClaimSources::paths) {
            if !keys.iter().any(|k| **k == *path.top()) {
                keys.push(path.top().into());
            }
        }
        let lengths = keys.iter().fold(0, |bits, k| bits | Self::length_bit(k));
        Self { keys, lengths }
    }

    fn length_bit(key: &str) -> u64 {
        1 << key.len().min(63)
    }

    fn index(&self, key: &str) -> Option<usize> {
        if self.lengths & Self::length_bit(key) == 0 {
            return None;
        }
        self.keys.iter().position(|k| **k == *key)
    }

    /// `sources` compiled against this plan: each path knows its kept slot.
    pub(crate) fn resolve(&self, sources: &ClaimSources) -> Resolved {
        let steps = |paths: &[ClaimPath]| -> Vec<Step> {
            paths
                .iter()
                .filter_map(|path| {
                    Some(Step {
                        key: self.index(path.top())?,
                        rest: path.segments.iter().skip(1).cloned().collect(),
                        shape: path.shape,
                    })
                })
                .collect()
        };
        Resolved {
            scopes: steps(&sources.scopes),
            roles: steps(&sources.roles),
            tenant: steps(&sources.tenant),
        }
    }
}

/// One issuer's claim sources, resolved against the [`ParsePlan`].
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    scopes: Vec<Step>,
    roles: Vec<Step>,
    tenant: Vec<Step>,
}

#[derive(Debug, Clone)]
struct Step {
    /// Index of the top-level claim in the plan (and in `Payload::kept`).
    key: usize,
    /// Nested members below it.
    rest: Box<[Box<str>]>,
    shape: ValueShape,
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
    /// `cnf.jkt` (RFC 9449 §6): the thumbprint of the key the token is bound to.
    cnf_jkt: Option<String>,
    /// One slot per plan key.
    kept: Slots,
}

impl Payload {
    pub(crate) fn parse(json: &str, plan: &ParsePlan) -> Result<Self, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(json);
        let payload = PayloadSeed(plan).deserialize(&mut de)?;
        de.end()?;
        Ok(payload)
    }

    /// `client_id` when it is a string.
    pub(crate) fn client_id(&self) -> Option<&str> {
        match self.kept.get(0) {
            Some(Kept::Str(c)) => Some(c),
            _ => None,
        }
    }

    /// The standard view, reading roles, scopes and tenant as `sources`
    /// say. Each kept value is moved out, not copied: a path read twice is
    /// absent the second time.
    pub(crate) fn into_standard(mut self, sources: &Resolved) -> StandardClaims {
        let mut unexpected = 0;
        let mut scopes = Scopes::default();
        for step in &sources.scopes {
            if !self.read(step, |s| scopes.push_owned(s)) {
                unexpected |= Slot::Scopes as u8;
            }
        }
        let mut roles: Vec<String> = Vec::new();
        for step in &sources.roles {
            // The common case, one array of roles: keep its Vec as it is.
            if roles.is_empty()
                && matches!(
                    step.shape,
                    ValueShape::Array | ValueShape::ArrayOrSpaced | ValueShape::Any
                )
                && let Some(Kept::Strings(list)) = self.peek(step)
                && !list.iter().any(String::is_empty)
                && !has_duplicates(list)
            {
                if let Kept::Strings(list) = self.take(step) {
                    roles = list;
                }
                continue;
            }
            let ok = self.read(step, |role| {
                if !role.is_empty() && !roles.contains(&role) {
                    roles.push(role);
                }
            });
            if !ok {
                unexpected |= Slot::Roles as u8;
            }
        }
        let mut tenant = None;
        for step in &sources.tenant {
            match self.take(step) {
                Kept::Str(t) if tenant.is_none() => tenant = Some(t),
                Kept::Absent | Kept::Null | Kept::Str(_) => {}
                _ => unexpected |= Slot::Tenant as u8,
            }
        }
        let client_id = match self.kept.get_mut(0).map(std::mem::take) {
            Some(Kept::Str(c)) => Some(c),
            _ => None,
        };
        StandardClaims {
            iss: self.iss,
            sub: self.sub,
            aud: self.aud.unwrap_or_default(),
            exp: self.exp,
            nbf: self.nbf,
            iat: self.iat,
            jti: self.jti,
            cnf_jkt: self.cnf_jkt,
            scopes,
            roles,
            tenant,
            client_id,
            unexpected,
        }
    }

    /// The top-level value at `step`, when `step` has no nested part.
    fn peek(&self, step: &Step) -> Option<&Kept> {
        if step.rest.is_empty() {
            self.kept.get(step.key)
        } else {
            None
        }
    }

    /// Moves the value at `step` out. A nested path moves only its leaf, so
    /// sibling paths under one claim all read.
    fn take(&mut self, step: &Step) -> Kept {
        let Some(top) = self.kept.get_mut(step.key) else {
            return Kept::Absent;
        };
        if step.rest.is_empty() {
            return std::mem::take(top);
        }
        let Kept::Object(value) = top else {
            return Kept::Absent;
        };
        let mut value: &mut Value = value;
        for segment in &step.rest {
            match value.as_object_mut().and_then(|o| o.get_mut(&**segment)) {
                Some(inner) => value = inner,
                None => return Kept::Absent,
            }
        }
        Kept::from(value.take())
    }

    /// Reads the list at `step` into `push`; `false` when its value has an
    /// unexpected shape (then nothing is pushed).
    fn read(&mut self, step: &Step, mut push: impl FnMut(String)) -> bool {
        let shape = step.shape;
        let array = matches!(
            shape,
            ValueShape::Array | ValueShape::ArrayOrSpaced | ValueShape::Any
        );
        let spaced = matches!(
            shape,
            ValueShape::Spaced | ValueShape::ArrayOrSpaced | ValueShape::Any
        );
        let keys = matches!(shape, ValueShape::Keys | ValueShape::Any);
        match self.take(step) {
            Kept::Absent | Kept::Null => true,
            Kept::Strings(items) if array => {
                items.into_iter().for_each(push);
                true
            }
            Kept::Str(s) if spaced => {
                s.split(' ').map(str::to_owned).for_each(push);
                true
            }
            Kept::Object(object) if keys => match *object {
                Value::Object(map) => {
                    map.into_iter().for_each(|(k, _)| push(k));
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }
}

fn has_duplicates(list: &[String]) -> bool {
    list.iter()
        .enumerate()
        .any(|(i, a)| list.iter().skip(i + 1).any(|b| a == b))
}

/// Whether `claim` is present, for `require_claims`.
pub(crate) fn has(standard: &StandardClaims, claim: &str) -> bool {
    match claim {
        "iss" => standard.iss.is_some(),
        "sub" => standard.sub.is_some(),
        "aud" => !standard.aud.is_empty(),
        "exp" => standard.exp.is_some(),
        "nbf" => standard.nbf.is_some(),
        "iat" => standard.iat.is_some(),
        "jti" => standard.jti.is_some(),
        "scope" => !standard.scopes.is_empty(),
        "client_id" => standard.client_id.is_some(),
        "tenant" => standard.tenant.is_some(),
        "roles" => !standard.roles.is_empty(),
        _ => false,
    }
}

/// Your own claims type, parsed from the whole payload: it may name `sub`,
/// `roles`, `scope` or anything else. `()` costs nothing.
pub(crate) fn extra<E: DeserializeOwned + 'static>(json: &str) -> Result<E, serde_json::Error> {
    if TypeId::of::<E>() == TypeId::of::<()>() {
        return E::deserialize(Value::Null);
    }
    serde_json::from_str(json)
}

/// Logs why the token's claims (`json`) do not fit your claims type `E`:
/// the field and the kind of problem, never a value.
///
/// At `warn`: only a token whose signature, issuer, audience and dates all
/// passed gets this far, so anonymous traffic cannot flood the log with it,
/// and it means the issuer's tokens and the service's type disagree, which
/// refuses such tokens on every route until someone fixes one or the other.
///
/// The deserialization runs again on this failure path only, tracking the
/// path to the error; the accepting path pays nothing for it.
pub(crate) fn report_misfit<E: DeserializeOwned>(json: &str) {
    let mut de = serde_json::Deserializer::from_str(json);
    let Err(err) = serde_path_to_error::deserialize::<_, E>(&mut de) else {
        return;
    };
    let full = err.inner().to_string();
    let at = format!(
        " at line {} column {}",
        err.inner().line(),
        err.inner().column()
    );
    let misfit = Misfit::parse(full.strip_suffix(&at).unwrap_or(&full));
    let path = err.path().to_string();
    let field = match misfit.field {
        Some(name) if path == "." => name.to_owned(),
        Some(name) => format!("{path}.{name}"),
        None => path,
    };
    tracing::warn!(
        claims_type = std::any::type_name::<E>(),
        field = ?bounded(&field),
        problem = misfit.problem,
        expected = misfit.expected.map(bounded),
        "a verified token does not fit the claims type of VerifyLayer::with_claims: refused \
         with invalid_claim"
    );
}

/// What a serde error says went wrong, without what the token said.
#[derive(Debug, PartialEq, Eq)]
struct Misfit<'a> {
    /// `missing`, `wrong type`, …
    problem: &'static str,
    /// A field the message names that the path does not (a missing one):
    /// a name from your type, not from the token.
    field: Option<&'a str>,
    /// What your type expected there (`u64`, `a string`, `one of …`).
    expected: Option<&'a str>,
}

impl<'a> Misfit<'a> {
    /// Reads serde's message (without serde_json's position suffix).
    ///
    /// SECURITY (no token values in logs): serde's messages quote the
    /// value they refused (`invalid type: string "…", expected u64`); only
    /// the parts that come from your type are kept, and a message of
    /// another form (your own `Deserialize`, which may quote anything) is
    /// dropped.
    fn parse(message: &'a str) -> Self {
        // The expected part comes last and from your type; the value, if
        // any, comes before it, so the last separator is the real one.
        let expected = |rest: &'a str| {
            rest.rfind(", expected ")
                .map(|at| &rest[at + ", expected ".len()..])
        };
        let named = |rest: &'a str| rest.split_once('`').map(|(name, _)| name);
        let (problem, field, expected) = if let Some(rest) = message.strip_prefix("missing field `")
        {
            ("missing", named(rest), None)
        } else if let Some(rest) = message.strip_prefix("invalid type: ") {
            ("wrong type", None, expected(rest))
        } else if let Some(rest) = message.strip_prefix("invalid value: ") {
            ("invalid value", None, expected(rest))
        } else if let Some(rest) = message.strip_prefix("invalid length ") {
            ("wrong length", None, expected(rest))
        } else if let Some(rest) = message.strip_prefix("unknown variant `") {
            ("unknown variant", None, expected(rest))
        } else if message.starts_with("unknown field `") {
            ("unknown field", None, None)
        } else if let Some(rest) = message.strip_prefix("duplicate field `") {
            ("duplicate field", named(rest), None)
        } else {
            ("invalid", None, None)
        };
        Self {
            problem,
            field,
            expected,
        }
    }
}

/// At most 128 characters of a name: map keys in the path come from the token.
fn bounded(text: &str) -> &str {
    text.char_indices()
        .nth(128)
        .map_or(text, |(at, _)| &text[..at])
}

/// `cnf` (RFC 7800): an object; of its members only `jkt` (RFC 9449 §6.1)
/// is read, and must be a non-empty string.
///
/// SECURITY: a `cnf` this crate cannot read (not an object, a `jkt` of
/// another type) fails the token rather than being skipped: a binding
/// silently ignored would let the token pass as a plain bearer token.
/// Other confirmation methods (`x5t#S256`, `jwk`) are not checked here;
/// a token carrying only those passes as before.
#[derive(Deserialize)]
struct Confirmation {
    #[serde(default, deserialize_with = "non_empty")]
    jkt: Option<String>,
}

fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Err(de::Error::custom("empty cnf.jkt"));
    }
    Ok(Some(s))
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
    Cnf,
    Kept(usize),
    Other,
}

impl Field {
    /// The bit recording that a registered claim was seen (duplicates fail).
    fn bit(&self) -> Option<u8> {
        Some(match self {
            Field::Iss => 1,
            Field::Sub => 1 << 1,
            Field::Aud => 1 << 2,
            Field::Exp => 1 << 3,
            Field::Nbf => 1 << 4,
            Field::Iat => 1 << 5,
            Field::Jti => 1 << 6,
            Field::Cnf => 1 << 7,
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
            "cnf" => Field::Cnf,
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
        let mut p = Payload {
            kept: Slots::new(self.0.keys.len()),
            ..Payload::default()
        };
        let mut seen: u8 = 0;
        while let Some(field) = map.next_key_seed(FieldSeed(self.0))? {
            let duplicate = match field {
                Field::Kept(i) => !matches!(p.kept.get(i), Some(Kept::Absent)),
                _ => match field.bit() {
                    Some(bit) if seen & bit != 0 => true,
                    Some(bit) => {
                        seen |= bit;
                        false
                    }
                    None => false,
                },
            };
            if duplicate {
                return Err(de::Error::custom("duplicate claim"));
            }
            match field {
                Field::Iss => p.iss = map.next_value()?,
                Field::Sub => p.sub = map.next_value()?,
                Field::Aud => p.aud = Some(map.next_value::<OneOrMany>()?.0),
                Field::Exp => p.exp = Some(map.next_value::<NumericDate>()?.0),
                Field::Nbf => p.nbf = Some(map.next_value::<NumericDate>()?.0),
                Field::Iat => p.iat = Some(map.next_value::<NumericDate>()?.0),
                Field::Jti => p.jti = map.next_value()?,
                Field::Cnf => p.cnf_jkt = map.next_value::<Confirmation>()?.jkt,
                Field::Kept(i) => {
                    let value = map.next_value()?;
                    if let Some(slot) = p.kept.get_mut(i) {
                        *slot = value;
                    }
                }
                Field::Other => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(p)
    }
}

/// The kept values, one slot per plan key: inline for the usual handful
/// (no allocation per token), on the heap for larger plans.
#[derive(Debug)]
enum Slots {
    Inline([Kept; INLINE]),
    Heap(Vec<Kept>),
}

// The default plan keeps five claims (`client_id`, `scope`, `scp`, `roles`,
// `tenant`); presets keep fewer.
const INLINE: usize = 6;

impl Default for Slots {
    fn default() -> Self {
        Slots::Inline(Default::default())
    }
}

impl Slots {
    fn new(len: usize) -> Self {
        if len <= INLINE {
            Slots::default()
        } else {
            Slots::Heap(std::iter::repeat_with(Kept::default).take(len).collect())
        }
    }

    fn get(&self, i: usize) -> Option<&Kept> {
        match self {
            Slots::Inline(slots) => slots.get(i),
            Slots::Heap(slots) => slots.get(i),
        }
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut Kept> {
        match self {
            Slots::Inline(slots) => slots.get_mut(i),
            Slots::Heap(slots) => slots.get_mut(i),
        }
    }
}

/// A kept claim's value, parsed by shape: strings and arrays of strings
/// directly (the common case, no intermediate `Value`), objects as `Value`
/// for nested paths and object keys.
#[derive(Debug, Default)]
enum Kept {
    /// Not in the payload (or already moved out).
    #[default]
    Absent,
    Null,
    Str(String),
    Strings(Vec<String>),
    /// An array with a non-string element.
    Mixed,
    Object(Box<Value>),
    /// A number or a boolean.
    Scalar,
}

impl From<Value> for Kept {
    fn from(value: Value) -> Self {
        match value {
            Value::Null => Kept::Null,
            Value::String(s) => Kept::Str(s),
            Value::Array(items) if items.iter().all(Value::is_string) => Kept::Strings(
                items
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::String(s) => Some(s),
                        _ => None,
                    })
                    .collect(),
            ),
            Value::Array(_) => Kept::Mixed,
            object @ Value::Object(_) => Kept::Object(Box::new(object)),
            Value::Bool(_) | Value::Number(_) => Kept::Scalar,
        }
    }
}

impl<'de> Deserialize<'de> for Kept {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KeptVisitor)
    }
}

struct KeptVisitor;

impl<'de> Visitor<'de> for KeptVisitor {
    type Value = Kept;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<Er: de::Error>(self, _: bool) -> Result<Kept, Er> {
        Ok(Kept::Scalar)
    }
    fn visit_i64<Er: de::Error>(self, _: i64) -> Result<Kept, Er> {
        Ok(Kept::Scalar)
    }
    fn visit_u64<Er: de::Error>(self, _: u64) -> Result<Kept, Er> {
        Ok(Kept::Scalar)
    }
    fn visit_f64<Er: de::Error>(self, _: f64) -> Result<Kept, Er> {
        Ok(Kept::Scalar)
    }
    fn visit_str<Er: de::Error>(self, v: &str) -> Result<Kept, Er> {
        Ok(Kept::Str(v.to_owned()))
    }
    fn visit_string<Er: de::Error>(self, v: String) -> Result<Kept, Er> {
        Ok(Kept::Str(v))
    }
    fn visit_unit<Er: de::Error>(self) -> Result<Kept, Er> {
        Ok(Kept::Null)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Kept, A::Error> {
        let mut strings = Vec::new();
        let mut mixed = false;
        while let Some(item) = seq.next_element::<Item>()? {
            match item {
                Item::Str(s) if !mixed => strings.push(s),
                Item::Str(_) => {}
                Item::Other => mixed = true,
            }
        }
        Ok(if mixed {
            Kept::Mixed
        } else {
            Kept::Strings(strings)
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Kept, A::Error> {
        Value::deserialize(de::value::MapAccessDeserializer::new(map))
            .map(|v| Kept::Object(Box::new(v)))
    }
}

/// An array element: a string, or anything else (checked, not kept).
enum Item {
    Str(String),
    Other,
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ItemVisitor;
        impl<'de> Visitor<'de> for ItemVisitor {
            type Value = Item;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<Er: de::Error>(self, v: &str) -> Result<Item, Er> {
                Ok(Item::Str(v.to_owned()))
            }
            fn visit_string<Er: de::Error>(self, v: String) -> Result<Item, Er> {
                Ok(Item::Str(v))
            }
            fn visit_bool<Er: de::Error>(self, _: bool) -> Result<Item, Er> {
                Ok(Item::Other)
            }
            fn visit_i64<Er: de::Error>(self, _: i64) -> Result<Item, Er> {
                Ok(Item::Other)
            }
            fn visit_u64<Er: de::Error>(self, _: u64) -> Result<Item, Er> {
                Ok(Item::Other)
            }
            fn visit_f64<Er: de::Error>(self, _: f64) -> Result<Item, Er> {
                Ok(Item::Other)
            }
            fn visit_unit<Er: de::Error>(self) -> Result<Item, Er> {
                Ok(Item::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Item, A::Error> {
                Skip.visit_seq(seq).map(|_| Item::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item, A::Error> {
                Skip.visit_map(map).map(|_| Item::Other)
            }
        }
        d.deserialize_any(ItemVisitor)
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
    fn cnf_jkt_is_read_and_a_cnf_that_cannot_be_read_fails_the_token() {
        let c = Claims::<()>::from_json(r#"{"cnf":{"jkt":"abc","x5t#S256":"z"}}"#).unwrap();
        assert_eq!(c.standard().cnf_jkt.as_deref(), Some("abc"));
        let c = Claims::<()>::from_json(r#"{"cnf":{"x5t#S256":"z"}}"#).unwrap();
        assert_eq!(c.standard().cnf_jkt, None);
        for bad in [
            r#"{"cnf":"abc"}"#,
            r#"{"cnf":{"jkt":7}}"#,
            r#"{"cnf":{"jkt":""}}"#,
            r#"{"cnf":{"jkt":null}}"#,
            r#"{"cnf":{"jkt":"a"},"cnf":{"jkt":"b"}}"#,
        ] {
            assert!(Claims::<()>::from_json(bad).is_err(), "{bad}");
        }
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
    fn sibling_paths_under_one_claim_all_read() {
        let s = ClaimSources::rfc9068().roles([
            ClaimPath::new("realm_access.roles", ValueShape::Array),
            ClaimPath::new("realm_access.groups", ValueShape::Array),
        ]);
        let c = with(&s, r#"{"realm_access":{"roles":["a"],"groups":["b"]}}"#);
        assert_eq!(c.roles(), ["a", "b"]);
    }

    #[test]
    fn arrays_with_a_non_string_element_are_unexpected() {
        let c = with(&ClaimSources::rfc9068(), r#"{"roles":["admin",1]}"#);
        assert!(c.roles().is_empty());
        assert!(c.standard().unexpected(Slot::Roles));
    }

    #[test]
    fn empty_path_segments_are_invalid() {
        let s = ClaimSources::rfc9068().roles([ClaimPath::new("a..b", ValueShape::Array)]);
        assert!(s.validate().unwrap_err().contains("a..b"));
        assert!(ClaimSources::keycloak("c").validate().is_ok());
    }

    /// The log lines `f` writes, captured on this thread.
    fn logged(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // only what parses matters
    struct Mine {
        plan: u64,
        org: Org,
        tier: Option<Tier>,
        limits: Option<std::collections::BTreeMap<String, u32>>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Org {
        id: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    enum Tier {
        Free,
        Pro,
    }

    /// Logs the misfit of `json` as the verifier does when `Mine` fails.
    fn misfit(json: &str) -> String {
        assert!(extra::<Mine>(json).is_err(), "{json}");
        logged(|| report_misfit::<Mine>(json))
    }

    #[test]
    fn a_missing_field_of_your_type_is_logged_by_name() {
        let log = misfit(r#"{"org":{"id":"o"}}"#);
        assert!(log.contains("WARN"), "{log}");
        assert!(log.contains(r#"field="plan""#), "{log}");
        assert!(log.contains(r#"problem="missing""#), "{log}");
        assert!(log.contains("payload::tests::Mine"), "{log}");
        let log = misfit(r#"{"plan":1,"org":{}}"#);
        assert!(log.contains(r#"field="org.id""#), "{log}");
        assert!(log.contains(r#"problem="missing""#), "{log}");
    }

    #[test]
    fn a_field_of_the_wrong_type_is_logged_by_name_and_kind_never_with_its_value() {
        let log = misfit(r#"{"plan":"secret-plan-value","org":{"id":"o"}}"#);
        assert!(log.contains(r#"field="plan""#), "{log}");
        assert!(log.contains(r#"problem="wrong type""#), "{log}");
        assert!(log.contains(r#"expected="u64""#), "{log}");
        assert!(!log.contains("secret-plan-value"), "{log}");
        // A value that looks like the end of serde's message.
        let log = misfit(r#"{"plan":1,"org":{"id":["s3cret, expected x"]}}"#);
        assert!(log.contains(r#"field="org.id""#), "{log}");
        assert!(!log.contains("s3cret"), "{log}");
        // An unknown enum variant and a wrong map value: the values stay out.
        let log = misfit(r#"{"plan":1,"org":{"id":"o"},"tier":"secret-tier"}"#);
        assert!(log.contains(r#"problem="unknown variant""#), "{log}");
        assert!(log.contains(r#"field="tier""#), "{log}");
        assert!(!log.contains("secret-tier"), "{log}");
        let log = misfit(r#"{"plan":1,"org":{"id":"o"},"limits":{"calls":-7777}}"#);
        assert!(log.contains(r#"field="limits.calls""#), "{log}");
        assert!(log.contains(r#"problem="invalid value""#), "{log}");
        assert!(!log.contains("7777"), "{log}");
    }

    #[test]
    fn only_the_parts_of_serdes_message_that_come_from_your_type_are_kept() {
        assert_eq!(
            Misfit::parse("invalid type: string \"a, expected b\", expected u64"),
            Misfit {
                problem: "wrong type",
                field: None,
                expected: Some("u64")
            }
        );
        assert_eq!(
            Misfit::parse("missing field `plan`"),
            Misfit {
                problem: "missing",
                field: Some("plan"),
                expected: None
            }
        );
        // Your own Deserialize may say anything: nothing of it is kept.
        assert_eq!(
            Misfit::parse("bad plan secret"),
            Misfit {
                problem: "invalid",
                field: None,
                expected: None
            }
        );
        assert_eq!(bounded(&"x".repeat(500)).len(), 128);
    }
}
