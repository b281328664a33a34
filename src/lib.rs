//! Verify issuer-signed JWT access tokens in any tower stack (axum, tonic,
//! hyper) and authorize each request from their claims.
//!
//! A central issuer signs access tokens; every service verifies them
//! locally against the issuer's published keys (JWKS), gets typed
//! [`Claims`] and enforces scopes, roles, tenants or policies per route.
//! authlayer is that downstream half: one [`VerifyLayer`], rule layers
//! inside it, and the means to carry the caller's identity on to the
//! services you call ([`outbound`]).
//!
//! # Example
//!
//! An axum route that needs the scope `orders:read` (tokens minted by a
//! [`test_util::TestIssuer`] here; in production the verifier finds the
//! issuer's keys by OIDC discovery, and nothing else changes):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use authlayer::test_util::TestIssuer;
//! use authlayer::{Claims, RequireScopesLayer, Verifier, VerifyLayer};
//! use axum::{Router, body::Body, routing::get};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt as _;
//!
//! async fn get_order(claims: Claims) -> String {
//!     format!("order for {}", claims.sub().unwrap_or("?"))
//! }
//!
//! let issuer = TestIssuer::new("https://id.example");
//! let verifier = Verifier::builder()
//!     .issuer(issuer.issuer()) // alone: OIDC discovery → jwks_uri
//!     .jwks_json(issuer.jwks_json()) // here: pinned keys, no network
//!     .audience("urn:orders")
//!     .build()
//!     .await?;
//!
//! let app = Router::new()
//!     .route("/orders/{id}", get(get_order).route_layer(RequireScopesLayer::all(["orders:read"])))
//!     .layer(VerifyLayer::new(verifier));
//!
//! let get = |token: &str| {
//!     Request::get("/orders/7").header("authorization", format!("Bearer {token}")).body(Body::empty())
//! };
//! let reader = issuer.token().sub("alice").audience("urn:orders").scope("orders:read").sign();
//! assert_eq!(app.clone().oneshot(get(&reader)?).await?.status(), StatusCode::OK);
//!
//! // A valid token without the scope: 403 `insufficient_scope`.
//! let other = issuer.token().sub("bob").audience("urn:orders").scope("profile").sign();
//! assert_eq!(app.clone().oneshot(get(&other)?).await?.status(), StatusCode::FORBIDDEN);
//! // No token, or a forged one: 401 with an RFC 6750 challenge.
//! assert_eq!(app.oneshot(get("a.b.c")?).await?.status(), StatusCode::UNAUTHORIZED);
//! # Ok(()) }
//! ```
//!
//! With tonic, the same layers wrap a server:
//! `Server::builder().layer(VerifyLayer::new(verifier)).add_service(RequireScopesLayer::all([…]).layer(svc))`
//! (every service keeps its `NamedService` name), or one
//! [`MethodRulesLayer`] table for all methods; handlers read
//! `request.extensions().get::<Claims>()`.
//!
//! # Where things are
//!
//! **Verifying.** [`Verifier`] turns a token into [`Claims`]: configured
//! with [`VerifierBuilder`] (keys by OIDC discovery, a JWKS URL or a pinned
//! JWK Set; audiences, [`Algorithm`]s, [`TypPolicy`], leeway, limits,
//! [`Stale`] keys through an outage), more issuers with [`Issuer`]. It
//! refreshes keys in the background and verifies a token whose key is
//! known without I/O. [`VerifyLayer`] (service [`Verify`]) runs it on every
//! request and puts the [`Claims`] and the raw [`AccessToken`] into the
//! request extensions.
//!
//! **Rules**, layers inside `VerifyLayer` (in axum: `route_layer`), each
//! `XLayer` building the service `X<S>`:
//!
//! | layer | refuses requests whose token… |
//! |---|---|
//! | [`RequireScopesLayer`] | lacks scopes (`all` / `any`): 403 `insufficient_scope` |
//! | [`RequireRolesLayer`] | lacks roles (`all` / `any`) |
//! | [`RequirePolicyLayer`] | a [`Policy`] does not allow (scopes, roles, tenants, your closures; all / any / not) |
//! | [`RequireTenantLayer`] | names another tenant than the request (path segment, header or host); allowed requests carry a [`CheckedTenant`] |
//! | [`MethodRulesLayer`] | is not allowed the gRPC method by a per-method table of policies |
//! | [`RequireActiveLayer`] | is no longer active at the issuer's introspection endpoint (revocation within seconds) |
//!
//! **Claims.** [`Claims`] (and `Claims<E>` with your own type `E`), its
//! [`StandardClaims`] and [`Scopes`]; where each provider puts roles,
//! scopes and the tenant: [`ClaimSources`] (presets for Keycloak, Entra ID,
//! Auth0, Okta, Cognito, Authentik, ZITADEL), [`ClaimPath`],
//! [`ValueShape`]. With feature `axum`, `Claims` and `AccessToken` are
//! extractors (rejection: [`ClaimsRejection`]).
//!
//! **Errors and responses.** A refused request is an [`AuthError`] with a
//! [`Reason`] and an [`ErrorKind`] (one table: code, description, status),
//! answered as an RFC 6750 challenge or a trailers-only gRPC status by
//! [`DefaultReject`], or your way: a closure given to
//! [`VerifyLayer::on_reject`] (it gets the [`RejectContext`]; kept as a
//! [`RejectFn`]) renders every refusal of the stack. The layers' services
//! share one [`ResponseFuture`]. Building fails with a [`BuildError`]; key
//! fetches with a [`FetchError`].
//!
//! **Health.** [`Verifier::health`] gives a [`Health`] (readiness, and per
//! source [`IssuerHealth`], [`TenantsHealth`], [`IntrospectionHealth`]);
//! [`Verifier::metrics`] gives [`Metrics`], counters since start.
//!
//! **Introspection** (RFC 7662). [`Introspection`] (with [`ClientAuth`])
//! lets an issuer's opaque tokens be checked at its endpoint, and
//! [`RequireActiveLayer`] confirms any token there.
//!
//! **Resource metadata** (RFC 9728). [`ResourceMetadata`], given to
//! [`VerifierBuilder::resource_metadata`], describes the resource (its URL,
//! authorization servers, scopes); [`Verifier::resource_metadata`] serves
//! it ([`ResourceMetadataService`], a tower service for any server), and
//! every challenge names it (`resource_metadata="…"`).
//!
//! **DPoP** (RFC 9449). [`Dpop`], given to [`VerifierBuilder::dpop`],
//! accepts tokens bound to a client's key (`Authorization: DPoP` and a
//! proof on every request, replay and server-nonce checks, a
//! [`ReplayStore`] in memory or shared on Redis) and refuses a bound token
//! presented as a bearer token; [`VerifyLayer::dpop_required`] sets a
//! route's mode.
//!
//! **Modules.**
//! - [`audit`]: the audit record (one `tracing` event per request decision,
//!   versioned schema, [`audit::TARGET`]) and, with feature `audit-log`,
//!   its JSON-lines writer.
//! - [`outbound`]: tokens on the calls your service makes (the caller's own,
//!   one exchanged by RFC 8693, or the service's own by
//!   `client_credentials`), and identity headers for backends that do not
//!   verify tokens.
//! - [`test_util`] (feature `test-util`): [`TestIssuer`](test_util::TestIssuer)
//!   mints tokens and serves a JWKS on 127.0.0.1 for your handlers' tests.
//! - The re-exported crate [`reqwest`](https://docs.rs/reqwest/0.13), the
//!   HTTP client authlayer fetches keys and tokens with, for the
//!   `http_client` settings.
//!
//! # Features
//!
//! | feature | what |
//! |---|---|
//! | `aws-lc-rs` (default) | crypto backend: aws-lc |
//! | `rust-crypto` | crypto backend: the RustCrypto crates; with both, aws-lc is chosen at `build()` |
//! | `axum` | [`Claims`] and [`AccessToken`] as axum extractors |
//! | `tonic` | tonic `NamedService` for every layer's service; `AuthError` → `tonic::Status` |
//! | `test-util` | [`test_util`]: `TestIssuer` |
//! | `audit-log` | [`audit::AuditLog`]: the audit records as JSON lines, written off the request path |
//! | `metrics` | measurements through the [`metrics`](https://docs.rs/metrics) facade (below) |
//! | `redis` | [`ReplayStore::redis`]: a DPoP replay store shared by replicas, on Redis |
//!
//! # Metrics
//!
//! With feature `metrics`, authlayer measures through the `metrics` facade
//! (install any recorder, e.g. `metrics-exporter-prometheus`). Names follow
//! the Prometheus conventions; labels have bounded cardinality: an issuer
//! label is one of the configured issuers (anything else is `other`), the
//! others come from fixed sets. Never a subject, a token or a raw path.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `authlayer_decisions_total` | counter | `issuer`, `decision`, `reason` |
//! | `authlayer_verify_duration_seconds` | histogram | `token` (`first_seen`, `cached`) |
//! | `authlayer_jwks_fetches_total` | counter | `issuer`, `outcome` (`updated`, `not_modified`, `error`) |
//! | `authlayer_jwks_keys` | gauge | `issuer` |
//! | `authlayer_jwks_age_seconds` | gauge | `issuer` |
//! | `authlayer_jwks_stale` | gauge (0/1) | `issuer` |
//! | `authlayer_jwks_next_refresh_seconds` | gauge | `issuer` |
//! | `authlayer_token_cache_hits_total` | counter | |
//! | `authlayer_token_cache_entries` | gauge | |
//! | `authlayer_audit_dropped_total` | counter | |
//! | `authlayer_service_token_requests_total` | counter | `outcome` (`issued`, `error`) |
//! | `authlayer_token_exchanges_total` | counter | `outcome` (`exchanged`, `cached`, `error`) |
//! | `authlayer_dpop_proof_failures_total` | counter | `reason` (the proof check that failed: `missing`, `htu`, `iat`, `replayed`, `nonce_missing`, …) |
//! | `authlayer_dpop_replays_total` | counter | |
//! | `authlayer_dpop_nonce_challenges_total` | counter | |
//!
//! The key-set gauges are set after every fetch and whenever
//! [`Verifier::record_key_metrics`](crate::Verifier::record_key_metrics)
//! runs (call it from a scrape handler: age and next refresh are then
//! exact at scrape time).

//!
//! # Security
//!
//! The algorithm comes from configuration and the key, never from the
//! token alone: no `none`, no HMAC with a public key, no `jwk`, `jku`,
//! `x5u` or `x5c` header used to find keys, no `crit`, no nested tokens;
//! limits on token, header and JWK Set size. Rejections carry fixed
//! descriptions; tokens and signatures never reach responses or logs.
//! The repository's `SECURITY.md` has the RFC 8725 checklist and how each
//! point is tested.
//!
//! MSRV: Rust 1.88.
#![cfg_attr(docsrs, feature(doc_cfg))]
// No input may panic the request path: these are errors in library code
// (unit tests and the test-util module, whose panics are documented, opt out).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

// One path per public item. The request path (verify, rules, claims,
// errors, health) is re-exported here from private modules; three jobs of
// their own are public modules: `audit` (the record's schema and its
// writer), `outbound` (tokens on outgoing calls) and `test_util` (test
// hooks, feature `test-util`).
//
// Dependencies point one way, top to bottom of this list; no module imports
// one above it (checked by `tests::modules_import_only_downwards`):
//   framework glue   axum, tonic
//   outbound         propagation, service tokens, exchange, identity headers
//   layers           layer (VerifyLayer, the rule layers, RequireActiveLayer),
//                    policy, audit (the record, and its JSON-lines writer),
//                    reject
//   engine           verifier (Verifier: the token-to-claims path, builder,
//                    issuer configuration, token cache)
//   resource         metadata (RFC 9728: the document the verifier is
//                    configured with, served, and named in challenges)
//   introspection    introspect (RFC 7662 client, answer cache, single-flight)
//   proofs           dpop (DPoP proofs, server nonces, the replay store)
//   keys and JWS     jws, jwks, crypto, algorithm
//   claims, errors   claims, telemetry (the `metrics` facade), health, error

#[cfg(feature = "axum")]
mod axum;
#[cfg(feature = "tonic")]
mod tonic;

pub mod outbound;

pub mod audit;
mod layer;
mod policy;
mod reject;

mod verifier;

mod metadata;

mod introspect;

mod algorithm;
mod crypto;
mod dpop;
mod jwks;
mod jws;

mod claims;
mod error;
mod health;
mod telemetry;

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
#[allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
pub mod test_util;

pub use algorithm::{Algorithm, UnknownAlgorithm};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use axum::ClaimsRejection;
pub use claims::{ClaimPath, ClaimSources, Claims, Scopes, StandardClaims, ValueShape};
pub use dpop::{Dpop, ReplayStore};
pub use error::{AuthError, BuildError, ErrorKind, FetchError, Reason};
pub use health::{Health, IntrospectionHealth, IssuerHealth, Metrics, TenantsHealth};
pub use introspect::{ClientAuth, Introspection};
pub use jws::TypPolicy;
pub use layer::{
    AccessToken, MethodRules, MethodRulesLayer, RequireActive, RequireActiveLayer, RequirePolicy,
    RequirePolicyLayer, RequireRoles, RequireRolesLayer, RequireScopes, RequireScopesLayer,
    RequireTenant, RequireTenantLayer, ResponseFuture, Verify, VerifyLayer,
};
pub use metadata::{ResourceMetadata, ResourceMetadataService};
pub use policy::{CheckedTenant, Policy};
pub use reject::{DefaultReject, RejectContext, RejectFn};
pub use verifier::{CacheSize, Issuer, Stale, Verifier, VerifierBuilder};

/// The HTTP client this crate fetches keys, discovery documents and tokens
/// with, re-exported because the `http_client` settings take its `Client`:
/// build yours with `authlayer::reqwest` and its version always matches.
/// A public dependency: a major release of reqwest is a major release of
/// authlayer.
pub use reqwest;

// The README's code blocks are compiled and run as doctests: it is not the
// crate documentation, but its examples must keep working.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// The top-level module a source file belongs to (`verifier/cache.rs` →
    /// `verifier`); `None` for the crate root.
    fn module_of(path: &Path, src: &Path) -> Option<String> {
        let rel = path.strip_prefix(src).ok()?;
        let first = rel.components().next()?.as_os_str().to_str()?;
        let name = first.strip_suffix(".rs").unwrap_or(first);
        (name != "lib").then(|| name.to_owned())
    }

    fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Which top-level modules each module's non-test code names with
    /// `crate::…`, in `use` lines and paths (comments and doc links, which
    /// may point anywhere, are not dependencies).
    fn imports() -> BTreeMap<String, BTreeSet<String>> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        // `crate::Claims` names the module that lib.rs re-exports it from.
        let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
        let mut reexported: BTreeMap<String, String> = BTreeMap::new();
        for line in lib.lines().filter_map(|l| l.strip_prefix("pub use ")) {
            let line = line.trim_start_matches("crate::");
            let Some((module, names)) = line.split_once("::") else {
                continue;
            };
            for name in names.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                reexported.insert(name.to_owned(), module.to_owned());
            }
        }
        let mut all = Vec::new();
        files(&src, &mut all);
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for path in all {
            let Some(module) = module_of(&path, &src) else {
                continue;
            };
            let text = std::fs::read_to_string(&path).unwrap();
            // The unit-test module sits at the bottom of each file and may
            // use test_util: read up to its `#[cfg(..test..)] mod tests`
            // (a test-only helper above it is still read).
            let lines: Vec<&str> = text.lines().collect();
            let end = lines
                .windows(2)
                .position(|w| {
                    w[0].starts_with("#[cfg(")
                        && w[0].contains("test")
                        && w[1].starts_with("mod tests")
                })
                .unwrap_or(lines.len());
            let code: String = lines[..end]
                .iter()
                .filter(|l| !l.trim_start().starts_with("//"))
                .copied()
                .collect::<Vec<_>>()
                .join("\n");
            let deps = graph.entry(module.clone()).or_default();
            for (at, _) in code.match_indices("crate::") {
                if code[..at].ends_with('$') {
                    continue; // `$crate::` in a macro
                }
                let rest = &code[at + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let name = reexported.get(&name).cloned().unwrap_or(name);
                if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
        }
        graph
    }

    /// Whether `to` can be reached from `from` along imports (depth first).
    fn reaches(
        graph: &BTreeMap<String, BTreeSet<String>>,
        from: &str,
        to: &str,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        graph
            .get(from)
            .into_iter()
            .flatten()
            .any(|next| next == to || (seen.insert(next.clone()) && reaches(graph, next, to, seen)))
    }

    #[test]
    fn modules_import_only_downwards() {
        let graph = imports();
        assert!(graph.contains_key("verifier") && graph.contains_key("layer"));
        for module in graph.keys() {
            assert!(
                !reaches(&graph, module, module, &mut BTreeSet::new()),
                "{module} imports, directly or through others, a module that depends on it: {graph:#?}"
            );
        }
        // The layers named in lib.rs, bottom first: nothing imports upward.
        let order = [
            "error",
            "health",
            "telemetry",
            "claims",
            "algorithm",
            "crypto",
            "jwks",
            "jws",
            "dpop",
            "introspect",
            "metadata",
            "verifier",
            "reject",
            "audit",
            "policy",
            "layer",
            "outbound",
            "axum",
            "tonic",
            "test_util",
        ];
        let rank = |m: &str| order.iter().position(|o| *o == m);
        for (module, deps) in &graph {
            let Some(mine) = rank(module) else {
                panic!("module {module} is not placed in the layer order");
            };
            for dep in deps {
                let theirs =
                    rank(dep).unwrap_or_else(|| panic!("{module} names unknown module {dep}"));
                assert!(theirs < mine, "{module} imports {dep}, which sits above it");
            }
        }
    }
}
