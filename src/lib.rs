#![doc = include_str!("../README.md")]
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
//   introspection    introspect (RFC 7662 client, answer cache, single-flight)
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

mod introspect;

mod algorithm;
mod crypto;
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
pub use error::{AuthError, BuildError, ErrorKind, FetchError, Reason};
pub use health::{Health, IntrospectionHealth, IssuerHealth, Metrics, TenantsHealth};
pub use introspect::{ClientAuth, Introspection};
pub use jws::TypPolicy;
pub use layer::{
    AccessToken, MethodRules, MethodRulesLayer, RequireActive, RequireActiveLayer, RequirePolicy,
    RequirePolicyLayer, RequireRoles, RequireRolesLayer, RequireScopes, RequireScopesLayer,
    RequireTenant, RequireTenantLayer, ResponseFuture, Verify, VerifyLayer,
};
pub use policy::{CheckedTenant, Policy};
pub use reject::{DefaultReject, RejectContext, RejectFn};
pub use verifier::{Issuer, Stale, Verifier, VerifierBuilder};

/// The HTTP client this crate fetches keys, discovery documents and tokens
/// with, re-exported because the `http_client` settings take its `Client`:
/// build yours with `authlayer::reqwest` and its version always matches.
/// A public dependency: a major release of reqwest is a major release of
/// authlayer.
pub use reqwest;

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
            "introspect",
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
