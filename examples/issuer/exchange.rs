//! Identity normalization: verify a token of a trusted upstream issuer with
//! authlayer's own [`Verifier`] and map its identity to a local one.
//!
//! Downstream services trust only this issuer; partners' and internal
//! providers' tokens become local tokens here, with local subjects, roles,
//! scopes and tenant, or are refused.

use std::collections::BTreeSet;
use std::time::Duration;

use authlayer::{Algorithm, Claims, ErrorKind, Issuer, Verifier};
use serde_json::{Map, Value};

use super::config::Upstream;

/// An upstream identity mapped to local terms.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The upstream's configured name.
    pub upstream: String,
    /// Local subject: prefix + upstream subject.
    pub sub: String,
    /// Local roles (mapped; unmapped upstream roles are dropped).
    pub roles: Vec<String>,
    /// Local scopes (mapped, plus those of the local roles).
    pub scopes: Vec<String>,
    /// Local tenant (fixed, or mapped from the upstream's).
    pub tenant: Option<String>,
}

/// Why a subject token was refused.
#[derive(Debug)]
pub enum ExchangeError {
    /// The token is not acceptable (forged, expired, foreign, no subject…).
    Rejected(String),
    /// The upstream's keys are unavailable right now.
    Unavailable,
}

/// The trusted upstream issuers.
pub struct Upstreams {
    verifier: Verifier,
    upstreams: Vec<Upstream>,
}

type UpstreamClaims = Claims<Map<String, Value>>;

impl Upstreams {
    /// Builds one multi-issuer verifier for all upstreams. It starts lazily:
    /// an upstream that is down now makes exchanges fail with 503 until its
    /// keys arrive, it does not stop the issuer.
    pub async fn build(upstreams: &[Upstream]) -> Result<Option<Self>, String> {
        let Some((first, rest)) = upstreams.split_first() else {
            return Ok(None);
        };
        let algorithms = |u: &Upstream| -> Result<Option<Vec<Algorithm>>, String> {
            let Some(names) = &u.algorithms else {
                return Ok(None);
            };
            names
                .iter()
                .map(|name| {
                    name.parse::<Algorithm>()
                        .ok()
                        // SECURITY: HMAC would need a secret shared with the
                        // upstream; only public-key algorithms are accepted.
                        .filter(|a| {
                            !matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
                        })
                        .ok_or_else(|| {
                            format!("upstream {:?}: unsupported algorithm {name:?}", u.name)
                        })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        };
        let mut builder = Verifier::builder()
            .issuer(first.issuer.clone())
            .audience(first.audience.clone())
            .lazy(true)
            .fetch_timeout(Duration::from_secs(5));
        if let Some(url) = &first.jwks_url {
            builder = builder.jwks_url(url.clone());
        }
        if let Some(algs) = algorithms(first)? {
            builder = builder.algorithms(algs);
        }
        for u in rest {
            let mut issuer = Issuer::new(u.issuer.clone()).audience(u.audience.clone());
            if let Some(url) = &u.jwks_url {
                issuer = issuer.jwks_url(url.clone());
            }
            if let Some(algs) = algorithms(u)? {
                issuer = issuer.algorithms(algs);
            }
            builder = builder.trust(issuer);
        }
        let verifier = builder
            .build()
            .await
            .map_err(|e| format!("upstream issuers: {e}"))?;
        Ok(Some(Self {
            verifier,
            upstreams: upstreams.to_vec(),
        }))
    }

    /// Verifies `token` against the upstream named by its `iss` and maps
    /// its identity.
    pub async fn exchange(&self, token: &str) -> Result<Identity, ExchangeError> {
        let claims: UpstreamClaims = self.verifier.verify_as(token).await.map_err(|e| {
            if e.kind() == ErrorKind::KeysUnavailable {
                ExchangeError::Unavailable
            } else {
                ExchangeError::Rejected(e.to_string())
            }
        })?;
        // The verifier only accepts configured issuers, so this finds one.
        let upstream = self
            .upstreams
            .iter()
            .find(|u| Some(u.issuer.as_str()) == claims.iss())
            .ok_or_else(|| ExchangeError::Rejected("unknown issuer".into()))?;
        map_identity(upstream, &claims)
    }
}

/// Applies an upstream's mapping to verified claims.
fn map_identity(u: &Upstream, claims: &UpstreamClaims) -> Result<Identity, ExchangeError> {
    let subject = lookup(claims, &u.subject_claim)
        .and_then(|v| v.as_str().map(str::to_owned))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ExchangeError::Rejected(format!("the token has no {:?} claim", u.subject_claim))
        })?;
    // SECURITY: a per-upstream prefix keeps upstream subjects from ever
    // colliding with local users or with another upstream's subjects
    // (`Config::validate` refuses prefixes that would allow it).
    let prefix = u.local_prefix();

    // SECURITY: only mapped roles and scopes pass; an upstream can never mint
    // a local role or scope that the configuration does not give it.
    let mut roles = BTreeSet::new();
    for role in strings(lookup(claims, &u.roles_claim)) {
        if let Some(local) = u.roles.get(&role) {
            roles.extend(local.iter().cloned());
        }
    }
    let mut scopes = Vec::new();
    let mut add = |s: &String| {
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    };
    for scope in claims.scopes().iter() {
        u.scopes.get(scope).into_iter().flatten().for_each(&mut add);
    }
    for role in &roles {
        u.role_scopes
            .get(role)
            .into_iter()
            .flatten()
            .for_each(&mut add);
    }
    let tenant = match (&u.tenant, &u.tenant_claim) {
        (Some(fixed), _) => Some(fixed.clone()),
        // SECURITY: an upstream's tenant is mapped, like its roles and
        // scopes, never copied: else a partner minting `tenant: "acme"`
        // would join acme. An unmapped one is refused rather than dropped,
        // so that no downstream mistakes a tenant-less token for a global one.
        (None, Some(claim)) => match lookup(claims, claim) {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_str()
                    .and_then(|t| u.tenants.get(t))
                    .cloned()
                    .ok_or_else(|| {
                        ExchangeError::Rejected(format!(
                            "its tenant ({claim:?} claim) is not one upstream {:?} may assert",
                            u.name
                        ))
                    })?,
            ),
        },
        (None, None) => None,
    };
    Ok(Identity {
        upstream: u.name.clone(),
        sub: format!("{prefix}{subject}"),
        roles: roles.into_iter().collect(),
        scopes,
        tenant,
    })
}

/// A claim by dotted path (`realm_access.roles`); the standard claims by name.
fn lookup(claims: &UpstreamClaims, path: &str) -> Option<Value> {
    let s = |v: Option<&str>| v.map(|v| Value::String(v.to_owned()));
    match path {
        "sub" => s(claims.sub()),
        "iss" => s(claims.iss()),
        "tenant" => s(claims.tenant()),
        "client_id" => s(claims.client_id()),
        "roles" => Some(Value::from(claims.roles().to_vec())),
        _ => {
            let mut parts = path.split('.');
            let first = claims.extra().get(parts.next()?)?;
            parts.try_fold(first, |v, p| v.get(p)).cloned()
        }
    }
}

/// An array of strings or a space-separated string, as strings.
fn strings(value: Option<Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream as an `UPSTREAMS_FILE` entry (TOML) gives it.
    fn upstream(extra: &str) -> Upstream {
        toml::from_str(&format!(
            "name = \"partner\"\nissuer = \"https://partner.example\"\naudience = \"us\"\n{extra}"
        ))
        .expect("a valid upstream entry")
    }

    fn claims(tenant: &str) -> UpstreamClaims {
        let json = serde_json::json!({
            "iss": "https://partner.example",
            "sub": "carol",
            "tenant": tenant,
        });
        Claims::from_json(&json.to_string()).expect("claims")
    }

    #[test]
    fn unmapped_upstream_tenant_is_refused() {
        // A partner minting `tenant: "acme"` must not become a member of acme.
        let u = upstream("tenant_claim = \"tenant\"\n");
        let result = map_identity(&u, &claims("acme"));
        assert!(
            matches!(&result, Err(ExchangeError::Rejected(reason)) if reason.contains("tenant")),
            "{result:?}"
        );
        // Listing other tenants does not let this one through.
        let u = upstream("tenant_claim = \"tenant\"\n[tenants]\npartner-co = \"partner-co\"\n");
        assert!(map_identity(&u, &claims("acme")).is_err());
    }

    #[test]
    fn mapped_upstream_tenant_becomes_the_local_tenant() {
        let u = upstream("tenant_claim = \"tenant\"\n[tenants]\nbuyers = \"acme-partners\"\n");
        let identity = map_identity(&u, &claims("buyers")).expect("a mapped tenant");
        assert_eq!(identity.tenant.as_deref(), Some("acme-partners"));
    }
}
