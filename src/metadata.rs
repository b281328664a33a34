//! RFC 9728 protected-resource metadata: what a client needs to find the
//! authorization servers and scopes of this resource. Configured with
//! [`ResourceMetadata`] on the
//! [`VerifierBuilder`](crate::VerifierBuilder), checked by `build()`, and
//! served by [`ResourceMetadataService`]; the same document URL goes into
//! every challenge (`resource_metadata="…"`, rendered in `crate::reject`).
//! The user's documentation is on the two types.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde::Serialize;
use url::Url;

use crate::error::BuildError;
use crate::jwks::check_url;

/// The well-known path of RFC 9728 §3.
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// How long clients and caches may keep the document. It changes only when
/// the service is redeployed with another configuration.
const CACHE_CONTROL: &str = "public, max-age=3600";

/// The protected-resource metadata (RFC 9728) of the service a
/// [`Verifier`](crate::Verifier) protects: given to
/// [`VerifierBuilder::resource_metadata`](crate::VerifierBuilder::resource_metadata),
/// served by the [`ResourceMetadataService`] that
/// [`Verifier::resource_metadata`](crate::Verifier::resource_metadata)
/// returns, and named in every challenge the layers send
/// (`WWW-Authenticate: Bearer …, resource_metadata="…"`), so that a client
/// that got a 401 finds the authorization server and the scopes to ask
/// for. The MCP authorization specification requires it of every HTTP
/// server.
///
/// The document has `resource`, `authorization_servers` (by default the
/// verifier's issuers), `scopes_supported` (when given),
/// `bearer_methods_supported` (`["header"]`: the `Authorization` header is
/// the only standard method `VerifyLayer` reads; cookies and custom headers
/// are not RFC 6750 methods and are not listed), and `resource_name` and
/// `resource_documentation` when given.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use authlayer::{ResourceMetadata, Verifier};
/// # let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1",
/// #     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
///
/// let verifier = Verifier::builder()
///     .issuer("https://id.example")
///     .jwks_json(jwks)
///     .audience("https://api.example/orders")
///     .resource_metadata(
///         ResourceMetadata::new("https://api.example/orders")
///             .scopes_supported(["orders:read", "orders:write"])
///             .resource_name("Orders"),
///     )
///     .build()
///     .await?;
///
/// let metadata = verifier.resource_metadata().expect("configured");
/// // RFC 9728 §3.1: the resource's path follows the well-known path.
/// assert_eq!(metadata.path(), "/.well-known/oauth-protected-resource/orders");
/// assert_eq!(
///     metadata.url(),
///     "https://api.example/.well-known/oauth-protected-resource/orders"
/// );
/// assert_eq!(
///     metadata.json(),
///     r#"{"resource":"https://api.example/orders","authorization_servers":["https://id.example"],"scopes_supported":["orders:read","orders:write"],"bearer_methods_supported":["header"],"resource_name":"Orders"}"#
/// );
///
/// // In axum: `Router::new().route_service(metadata.path(), metadata.clone())`.
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ResourceMetadata {
    resource: String,
    authorization_servers: Option<Vec<String>>,
    scopes: Vec<String>,
    name: Option<String>,
    documentation: Option<String>,
}

impl ResourceMetadata {
    /// The resource identifier (`resource`): the public URL clients call
    /// this service at, e.g. `https://api.example/orders`. It must be
    /// `https`, or plain `http` on a loopback host (or anywhere with
    /// [`allow_insecure_http`](crate::VerifierBuilder::allow_insecure_http)),
    /// without query, fragment or credentials; `build()` refuses anything
    /// else with [`BuildError::Url`] naming `resource_metadata`. The
    /// document states it exactly as given.
    pub fn new(resource: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            authorization_servers: None,
            scopes: Vec::new(),
            name: None,
            documentation: None,
        }
    }

    /// The issuer identifiers of the authorization servers clients get
    /// tokens from (`authorization_servers`); each must pass the same URL
    /// policy as the resource. Defaults to the verifier's issuers, in the
    /// order configured (a tenant template with a tenant list stands for
    /// each of its tenants' issuers; one with a tenant filter is left out).
    pub fn authorization_servers<I, S>(mut self, issuers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.authorization_servers = Some(issuers.into_iter().map(Into::into).collect());
        self
    }

    /// The scopes clients may ask for to call this resource
    /// (`scopes_supported`); repeated calls add to the list. Defaults to
    /// none (the member is left out).
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// A name for people (`resource_name`); not empty. Defaults to none.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// A page about using the resource (`resource_documentation`), a URL
    /// under the same policy as the resource. Defaults to none.
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.documentation = Some(url.into());
        self
    }

    /// The resource identifier, as configured.
    pub(crate) fn resource(&self) -> &str {
        &self.resource
    }

    /// Checks every value and renders the document; `issuers` are the
    /// verifier's, for the default `authorization_servers`.
    pub(crate) fn resolve(
        self,
        issuers: Vec<String>,
        allow_http: bool,
        dpop: Option<&crate::dpop::Settings>,
    ) -> Result<ResourceMetadataService, BuildError> {
        let url = checked_url("resource_metadata", &self.resource, allow_http)?;
        if url.query().is_some() {
            return Err(url_error(
                "resource_metadata",
                &self.resource,
                "a resource identifier with a query cannot be served as a route: leave the query out",
            ));
        }
        let path = document_path(&url);
        let origin = url.origin().ascii_serialization();
        let document_url = format!("{origin}{path}");
        let authorization_servers = match self.authorization_servers {
            Some(servers) => {
                for server in &servers {
                    checked_url(
                        "resource_metadata.authorization_servers",
                        server,
                        allow_http,
                    )?;
                }
                servers
            }
            None => issuers,
        };
        if authorization_servers.is_empty() {
            return Err(BuildError::setting_error(
                "resource_metadata.authorization_servers",
                "the list is empty, so clients would not know where to get a token",
            ));
        }
        if let Some(doc) = &self.documentation {
            checked_url("resource_metadata.resource_documentation", doc, allow_http)?;
        }
        if self.name.as_deref() == Some("") {
            return Err(BuildError::setting_error(
                "resource_metadata.resource_name",
                "must not be empty: leave it unset instead",
            ));
        }
        if let Some(scope) = self.scopes.iter().find(|s| !is_scope_token(s)) {
            return Err(BuildError::setting_error(
                "resource_metadata.scopes_supported",
                format!(
                    "{scope:?} is not a scope (RFC 6749 §3.3: printable ASCII without spaces, \
                     quotes or backslashes)"
                ),
            ));
        }
        let dpop_algs: Option<Vec<&str>> = dpop.map(|d| d.algs_text.split(' ').collect());
        let document = Document {
            resource: &self.resource,
            authorization_servers: &authorization_servers,
            scopes_supported: &self.scopes,
            bearer_methods_supported: &["header"],
            resource_name: self.name.as_deref(),
            resource_documentation: self.documentation.as_deref(),
            dpop_signing_alg_values_supported: dpop_algs.as_deref(),
            dpop_bound_access_tokens_required: dpop.map(|d| d.required),
            tls_client_certificate_bound_access_tokens: None,
        };
        let json = serde_json::to_string(&document).map_err(|e| {
            BuildError::setting_error("resource_metadata", format!("cannot render: {e}"))
        })?;
        Ok(ResourceMetadataService(Arc::new(Served {
            path,
            url: document_url,
            json: json.into(),
        })))
    }
}

/// The document as RFC 9728 §2 names its members, in the RFC's order;
/// members without a value are left out. The proof-of-possession members
/// are stated only when the verifier checks such proofs.
#[derive(Serialize)]
struct Document<'a> {
    resource: &'a str,
    authorization_servers: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    scopes_supported: &'a [String],
    bearer_methods_supported: &'a [&'a str],
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_documentation: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_client_certificate_bound_access_tokens: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dpop_signing_alg_values_supported: Option<&'a [&'a str]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dpop_bound_access_tokens_required: Option<bool>,
}

/// The well-known path of the document of the resource at `url` (RFC 9728
/// §3.1): the well-known path, then the resource's path unless it is `/`.
fn document_path(url: &Url) -> String {
    match url.path() {
        "/" | "" => WELL_KNOWN.to_owned(),
        path => format!("{WELL_KNOWN}{path}"),
    }
}

fn url_error(setting: &'static str, url: &str, reason: impl Into<String>) -> BuildError {
    BuildError::Url {
        setting,
        url: url.to_owned(),
        reason: reason.into(),
    }
}

/// `raw` as a URL that passes the policy of every other URL of the
/// verifier, and names nothing but a place.
fn checked_url(setting: &'static str, raw: &str, allow_http: bool) -> Result<Url, BuildError> {
    let url = Url::parse(raw).map_err(|e| url_error(setting, raw, format!("not a URL: {e}")))?;
    // SECURITY: clients follow these URLs to find where to get tokens, so
    // a plain-http one outside loopback would let anyone on the path send
    // them to another authorization server: the https policy of key URLs.
    check_url(&url, allow_http).map_err(|reason| url_error(setting, raw, reason))?;
    if url.fragment().is_some() {
        return Err(url_error(
            setting,
            raw,
            "a fragment is not allowed (RFC 9728 §2)",
        ));
    }
    // SECURITY: the document and every challenge are public; credentials
    // in one of these URLs would be published to every client.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(url_error(
            setting,
            raw,
            "credentials in the URL would be published to every client",
        ));
    }
    Ok(url)
}

/// A scope as RFC 6749 §3.3 spells one, and one that a quoted `scope`
/// parameter carries unchanged.
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

/// Serves the RFC 9728 document of a [`Verifier`](crate::Verifier) with
/// [`ResourceMetadata`]: `GET` (and `HEAD`) on its [`path`](Self::path)
/// answer `200` `application/json` with `Cache-Control: public,
/// max-age=3600` (the document changes only with the configuration);
/// another method there gets `405` with `Allow: GET, HEAD`, another path
/// `404`. Cheap to clone; the JSON is rendered once, by `build()`.
///
/// A tower `Service` for any request body, answering `Response<String>`:
/// mount it in axum with
/// `Router::route_service(metadata.path(), metadata.clone())`, or in any
/// tower or hyper server. Without a server that takes tower services, serve
/// [`json`](Self::json) at [`path`](Self::path) yourself.
///
/// The route needs no token: serve it outside `VerifyLayer` (in axum,
/// merge it into the router after `.layer(VerifyLayer…)`, or `route_service`
/// it on the outer router). For browser-based clients on other origins,
/// put your CORS layer in front of it.
#[derive(Clone)]
pub struct ResourceMetadataService(Arc<Served>);

struct Served {
    /// Where the document is served (RFC 9728 §3.1).
    path: String,
    /// The document's URL: the `resource_metadata` of every challenge.
    url: String,
    json: Arc<str>,
}

impl fmt::Debug for ResourceMetadataService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceMetadataService")
            .field("url", &self.0.url)
            .finish_non_exhaustive()
    }
}

impl ResourceMetadataService {
    /// The path the document is served at:
    /// `/.well-known/oauth-protected-resource`, followed by the resource's
    /// path unless it is `/` (RFC 9728 §3.1).
    pub fn path(&self) -> &str {
        &self.0.path
    }

    /// The document's URL, as every challenge names it
    /// (`resource_metadata="…"`): the resource's origin, then
    /// [`path`](Self::path).
    pub fn url(&self) -> &str {
        &self.0.url
    }

    /// The document, as JSON.
    pub fn json(&self) -> &str {
        &self.0.json
    }

    /// The answer to `method` on `path`.
    fn respond(&self, method: &Method, path: &str) -> Response<String> {
        let mut res = Response::new(String::new());
        if path != self.0.path {
            *res.status_mut() = StatusCode::NOT_FOUND;
            return res;
        }
        if *method != Method::GET && *method != Method::HEAD {
            *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return res;
        }
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        );
        if *method == Method::GET {
            *res.body_mut() = self.0.json.to_string();
        } else {
            // HEAD: the length the GET body has, no body.
            res.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(self.0.json.len()));
        }
        res
    }
}

impl<B> tower_service::Service<Request<B>> for ResourceMetadataService {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        std::future::ready(Ok(self.respond(req.method(), req.uri().path())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(metadata: ResourceMetadata) -> Result<ResourceMetadataService, BuildError> {
        metadata.resolve(vec!["https://id.example".into()], false, None)
    }

    fn refused(metadata: ResourceMetadata) -> (&'static str, String) {
        match resolve(metadata).unwrap_err() {
            BuildError::Url { setting, url, .. } => (setting, url),
            BuildError::InvalidSetting { setting, .. } => (setting, String::new()),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn the_document_url_puts_the_resources_path_after_the_well_known_path() {
        for (resource, url) in [
            (
                "https://api.example",
                "https://api.example/.well-known/oauth-protected-resource",
            ),
            (
                "https://api.example/",
                "https://api.example/.well-known/oauth-protected-resource",
            ),
            (
                "https://api.example/api/v1",
                "https://api.example/.well-known/oauth-protected-resource/api/v1",
            ),
            (
                "https://api.example/api/v1/",
                "https://api.example/.well-known/oauth-protected-resource/api/v1/",
            ),
            (
                "https://API.example:443/x",
                "https://api.example/.well-known/oauth-protected-resource/x",
            ),
            (
                "http://127.0.0.1:8080",
                "http://127.0.0.1:8080/.well-known/oauth-protected-resource",
            ),
            (
                "https://api.example:8443/a%20b",
                "https://api.example:8443/.well-known/oauth-protected-resource/a%20b",
            ),
        ] {
            let served = resolve(ResourceMetadata::new(resource)).unwrap();
            assert_eq!(served.url(), url, "{resource}");
            assert!(url.ends_with(served.path()), "{resource}");
        }
    }

    #[test]
    fn the_resource_is_stated_exactly_as_configured() {
        let served = resolve(ResourceMetadata::new("https://api.example")).unwrap();
        assert_eq!(
            served.json(),
            r#"{"resource":"https://api.example","authorization_servers":["https://id.example"],"bearer_methods_supported":["header"]}"#
        );
    }

    #[test]
    fn resource_urls_pass_the_policy_of_key_urls() {
        for refused_url in [
            "http://api.example",
            "ftp://api.example",
            "api.example/orders",
            "https://api.example/#x",
            "https://api.example/?tenant=a",
            "https://user:pw@api.example/",
        ] {
            assert_eq!(
                refused(ResourceMetadata::new(refused_url)),
                ("resource_metadata", refused_url.to_owned())
            );
        }
        for accepted in [
            "http://127.0.0.1:3000",
            "http://localhost:3000/api",
            "http://[::1]:3000",
        ] {
            assert!(
                resolve(ResourceMetadata::new(accepted)).is_ok(),
                "{accepted}"
            );
        }
        let plain = ResourceMetadata::new("http://api.example");
        assert!(
            plain
                .resolve(vec!["https://id.example".into()], true, None)
                .is_ok()
        );
    }

    #[test]
    fn every_other_value_is_checked_naming_its_setting() {
        let base = || ResourceMetadata::new("https://api.example");
        assert_eq!(
            refused(base().authorization_servers(["http://id.example"])),
            (
                "resource_metadata.authorization_servers",
                "http://id.example".to_owned()
            )
        );
        let none: [&str; 0] = [];
        assert_eq!(
            refused(base().authorization_servers(none)).0,
            "resource_metadata.authorization_servers"
        );
        assert_eq!(
            refused(base().resource_documentation("docs")).0,
            "resource_metadata.resource_documentation"
        );
        assert_eq!(
            refused(base().resource_name("")).0,
            "resource_metadata.resource_name"
        );
        for scope in ["", "a b", "a\"b", "a\\b", "é"] {
            assert_eq!(
                refused(base().scopes_supported([scope])).0,
                "resource_metadata.scopes_supported",
                "{scope:?}"
            );
        }
    }

    #[test]
    fn the_service_answers_get_and_head_on_its_path_only() {
        let served = resolve(ResourceMetadata::new("https://api.example/v1")).unwrap();
        let path = "/.well-known/oauth-protected-resource/v1";
        let res = served.respond(&Method::GET, path);
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "application/json");
        assert_eq!(res.headers()["cache-control"], "public, max-age=3600");
        assert_eq!(res.body(), served.json());
        let head = served.respond(&Method::HEAD, path);
        assert_eq!(head.status(), StatusCode::OK);
        assert!(head.body().is_empty());
        assert_eq!(
            head.headers()["content-length"],
            served.json().len().to_string().as_str()
        );
        let post = served.respond(&Method::POST, path);
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()["allow"], "GET, HEAD");
        assert!(post.body().is_empty());
        for other in ["/.well-known/oauth-protected-resource", "/v1", "/"] {
            assert_eq!(
                served.respond(&Method::GET, other).status(),
                StatusCode::NOT_FOUND,
                "{other}"
            );
        }
    }

    #[test]
    fn the_service_is_send_sync_and_static() {
        fn check<T: Send + Sync + 'static>() {}
        check::<ResourceMetadataService>();
        check::<<ResourceMetadataService as tower_service::Service<Request<()>>>::Future>();
    }
}
