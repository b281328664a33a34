//! A reference model of [`Policy`] over the default claim sources (RFC 9068:
//! `scope`, `scp`, `roles`, `tenant`), shared by the randomized test and the
//! `policy` fuzz target (`fuzz/fuzz_targets/policy.rs` includes this file):
//! random policy trees, random claims JSON, and an evaluator written from
//! the documented rules, independent of the crate's.
//!
//! The rules: an absent (or `null`) claim is an empty list; a claim of
//! another shape than the sources expect is unknown; a `claims` closure
//! that says no while any claim is of another shape is unknown (one that
//! says yes holds); `not(unknown)` is unknown; `all`/`any` follow Kleene's
//! logic; an unknown policy is denied with `claim_shape` (or
//! `insufficient_scope` where only scopes could not be told).

use authlayer::{Claims, Policy, Reason};
use serde_json::{Map, Value};

/// Where random choices come from: a seeded PRNG or a fuzzer's bytes.
pub trait Choose {
    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize;
}

/// Names used for scopes, roles and tenants, so that policies and claims meet.
const NAMES: &[&str] = &["admin", "banned", "orders:read", "acme", "a b", ""];

fn name(c: &mut impl Choose) -> String {
    NAMES[c.below(NAMES.len())].to_owned()
}

fn names(c: &mut impl Choose) -> Vec<String> {
    (0..c.below(3)).map(|_| name(c)).collect()
}

/// A policy tree the model can evaluate.
#[derive(Debug, Clone)]
pub enum Shape {
    ScopesAll(Vec<String>),
    ScopesAny(Vec<String>),
    RolesAll(Vec<String>),
    RolesAny(Vec<String>),
    TenantIn(Vec<String>),
    /// `Policy::claims`: `sub` is this.
    SubIs(String),
    All(Vec<Shape>),
    Any(Vec<Shape>),
    Not(Box<Shape>),
    Allow,
    Deny,
}

impl Shape {
    /// A random tree, at most `depth` levels of `all`/`any`/`not`.
    pub fn random(c: &mut impl Choose, depth: usize) -> Shape {
        let kinds = if depth == 0 { 8 } else { 11 };
        match c.below(kinds) {
            0 => Shape::ScopesAll(names(c)),
            1 => Shape::ScopesAny(names(c)),
            2 => Shape::RolesAll(names(c)),
            3 => Shape::RolesAny(names(c)),
            4 => Shape::TenantIn(names(c)),
            5 => Shape::SubIs(name(c)),
            6 => Shape::Allow,
            7 => Shape::Deny,
            8 => Shape::All(
                (0..c.below(4))
                    .map(|_| Shape::random(c, depth - 1))
                    .collect(),
            ),
            9 => Shape::Any(
                (0..c.below(4))
                    .map(|_| Shape::random(c, depth - 1))
                    .collect(),
            ),
            _ => Shape::Not(Box::new(Shape::random(c, depth - 1))),
        }
    }

    /// The crate's policy for this tree.
    pub fn policy(&self) -> Policy {
        match self {
            Shape::ScopesAll(s) => Policy::scopes_all(s.clone()),
            Shape::ScopesAny(s) => Policy::scopes_any(s.clone()),
            Shape::RolesAll(r) => Policy::roles_all(r.clone()),
            Shape::RolesAny(r) => Policy::roles_any(r.clone()),
            Shape::TenantIn(t) => Policy::tenant_in(t.clone()),
            Shape::SubIs(sub) => {
                let sub = sub.clone();
                Policy::claims("sub", move |c| c.sub() == Some(sub.as_str()))
            }
            Shape::All(p) => Policy::all(p.iter().map(Shape::policy)),
            Shape::Any(p) => Policy::any(p.iter().map(Shape::policy)),
            Shape::Not(p) => Policy::not(p.policy()),
            Shape::Allow => Policy::allow(),
            Shape::Deny => Policy::deny(),
        }
    }

    /// The model's value: `Some(holds)`, or `None` when it cannot be told.
    pub fn eval(&self, v: &View) -> Option<bool> {
        let set = |all: bool, wanted: &[String], have: &List| {
            let held = if all {
                wanted.iter().all(|w| have.items.contains(w))
            } else {
                wanted.iter().any(|w| have.items.contains(w))
            };
            (held || wanted.is_empty() || !have.odd).then_some(held)
        };
        match self {
            Shape::ScopesAll(s) => set(true, s, &v.scopes),
            Shape::ScopesAny(s) => set(false, s, &v.scopes),
            Shape::RolesAll(r) => set(true, r, &v.roles),
            Shape::RolesAny(r) => set(false, r, &v.roles),
            Shape::TenantIn(t) => match &v.tenant {
                Some(tenant) => Some(t.contains(tenant)),
                None => (!v.tenant_odd).then_some(false),
            },
            // A closure may read any claim: its no is unknown while one
            // is odd, its yes stands.
            Shape::SubIs(sub) => {
                let held = v.sub.as_deref() == Some(sub.as_str());
                (held || !(v.scopes.odd || v.roles.odd || v.tenant_odd)).then_some(held)
            }
            Shape::All(p) => {
                let values: Vec<_> = p.iter().map(|p| p.eval(v)).collect();
                if values.contains(&Some(false)) {
                    Some(false)
                } else if values.contains(&None) {
                    None
                } else {
                    Some(true)
                }
            }
            Shape::Any(p) => {
                let values: Vec<_> = p.iter().map(|p| p.eval(v)).collect();
                if values.contains(&Some(true)) {
                    Some(true)
                } else if values.contains(&None) {
                    None
                } else {
                    Some(false)
                }
            }
            Shape::Not(p) => p.eval(v).map(|b| !b),
            Shape::Allow => Some(true),
            Shape::Deny => Some(false),
        }
    }
}

/// A list read from claims: what is known, and whether a source was odd.
#[derive(Debug, Default)]
pub struct List {
    items: Vec<String>,
    odd: bool,
}

impl List {
    fn read(&mut self, value: Option<&Value>, array: bool, spaced: bool) {
        match value {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if spaced => {
                self.items
                    .extend(s.split(' ').filter(|s| !s.is_empty()).map(str::to_owned));
            }
            Some(Value::Array(items)) if array && items.iter().all(Value::is_string) => {
                self.items.extend(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                );
            }
            Some(_) => self.odd = true,
        }
    }
}

/// The claims as the model reads them.
#[derive(Debug, Default)]
pub struct View {
    scopes: List,
    roles: List,
    tenant: Option<String>,
    tenant_odd: bool,
    sub: Option<String>,
}

impl View {
    /// Reads `claims` as the RFC 9068 sources say.
    pub fn of(claims: &Map<String, Value>) -> View {
        let mut v = View::default();
        v.scopes.read(claims.get("scope"), false, true);
        v.scopes.read(claims.get("scp"), true, true);
        v.roles.read(claims.get("roles"), true, false);
        match claims.get("tenant") {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) => v.tenant = Some(t.clone()),
            Some(_) => v.tenant_odd = true,
        }
        v.sub = claims.get("sub").and_then(Value::as_str).map(str::to_owned);
        v
    }
}

/// Random claims: each claim a policy reads, absent or of a random shape.
pub fn random_claims(c: &mut impl Choose) -> Map<String, Value> {
    let mut map = Map::new();
    for claim in ["scope", "scp", "roles", "tenant"] {
        if let Some(value) = random_value(c) {
            map.insert(claim.to_owned(), value);
        }
    }
    if c.below(2) == 0 {
        map.insert("sub".to_owned(), Value::String(name(c)));
    }
    map
}

fn strings(c: &mut impl Choose) -> Vec<Value> {
    (0..c.below(4)).map(|_| Value::String(name(c))).collect()
}

fn random_value(c: &mut impl Choose) -> Option<Value> {
    Some(match c.below(10) {
        0 => return None,
        1 => Value::Null,
        2 | 3 => Value::String(
            strings(c)
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        4 | 5 => Value::Array(strings(c)),
        6 => {
            // An array with something else than a string in it.
            let mut items = strings(c);
            let at = c.below(items.len() + 1);
            let odd = [Value::from(1), Value::Null, Value::Bool(true)][c.below(3)].clone();
            items.insert(at, odd);
            Value::Array(items)
        }
        7 => Value::from(7),
        8 => Value::Bool(c.below(2) == 0),
        _ => Value::Object(
            strings(c)
                .into_iter()
                .filter_map(|k| Some((k.as_str()?.to_owned(), Value::Bool(true))))
                .collect(),
        ),
    })
}

/// Checks the crate against the model for one policy over one claims
/// payload; `Err` describes a disagreement. Payloads the crate refuses to
/// parse (a registered claim of the wrong type, a duplicate) are skipped.
pub fn agrees(shape: &Shape, json: &str) -> Result<(), String> {
    let Ok(claims) = Claims::<()>::from_json(json) else {
        return Ok(());
    };
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(json) else {
        return Err(format!(
            "the crate parsed claims serde_json refuses: {json}"
        ));
    };
    let view = View::of(&map);
    let want = shape.eval(&view);
    let got = shape.policy().check(&claims);
    let ok = match (want, got) {
        (Some(true), Ok(())) => true,
        // Unknown denies: with `claim_shape`, or with `insufficient_scope`
        // where only scopes could not be told.
        (None, Err(reason)) => matches!(reason, Reason::ClaimShape | Reason::InsufficientScope),
        (Some(false), Err(reason)) => reason != Reason::ClaimShape,
        _ => false,
    };
    if !ok {
        return Err(format!(
            "policy {shape:?} over {json}: model {want:?}, crate {got:?}"
        ));
    }
    // not(p) never allows where p cannot be told.
    let not = Policy::not(shape.policy()).check(&claims);
    if want.is_none() && not != Err(Reason::ClaimShape) {
        return Err(format!(
            "not({shape:?}) over {json}: {not:?} for an unknown"
        ));
    }
    if not.is_ok() != (want == Some(false)) {
        return Err(format!(
            "not({shape:?}) over {json}: {not:?}, model {want:?}"
        ));
    }
    Ok(())
}
