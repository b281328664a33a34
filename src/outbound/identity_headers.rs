//! [`IdentityHeadersLayer`]: pass the verified identity to a backend that
//! does not verify tokens itself, in `x-auth-*` headers that no client can
//! spoof. The user's documentation is on the layer.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue, Request};
use tower_layer::Layer;
use tower_service::Service;

use crate::claims::Claims;

/// One identity header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdentityField {
    /// `sub`; default header `x-auth-sub`.
    Sub,
    /// `client_id`; default header `x-auth-client-id`.
    ClientId,
    /// `tenant`; default header `x-auth-tenant`.
    Tenant,
    /// The scopes, space-separated; default header `x-auth-scopes`.
    Scopes,
    /// The roles, comma-separated; default header `x-auth-roles`.
    Roles,
    /// `iss`; default header `x-auth-iss`.
    Iss,
}

/// Every field with its default header name, in header order.
const FIELDS: [(IdentityField, &str); 6] = [
    (IdentityField::Sub, "x-auth-sub"),
    (IdentityField::ClientId, "x-auth-client-id"),
    (IdentityField::Tenant, "x-auth-tenant"),
    (IdentityField::Scopes, "x-auth-scopes"),
    (IdentityField::Roles, "x-auth-roles"),
    (IdentityField::Iss, "x-auth-iss"),
];

impl IdentityField {
    /// Every field.
    pub const ALL: [IdentityField; 6] = [
        Self::Sub,
        Self::ClientId,
        Self::Tenant,
        Self::Scopes,
        Self::Roles,
        Self::Iss,
    ];

    /// The default header name (`x-auth-sub`, …).
    pub fn default_name(self) -> HeaderName {
        let name = FIELDS
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("x-auth-unknown", |(_, n)| n);
        HeaderName::from_static(name)
    }

    fn index(self) -> usize {
        FIELDS.iter().position(|(f, _)| *f == self).unwrap_or(0)
    }

    /// The header value for `claims`, if the claim is present.
    fn value(self, claims: &Claims) -> Option<HeaderValue> {
        match self {
            Self::Sub => encode(claims.sub(), b' '),
            Self::ClientId => encode(claims.client_id(), b' '),
            Self::Tenant => encode(claims.tenant(), b' '),
            Self::Iss => encode(claims.iss(), b' '),
            Self::Scopes => encode_list(claims.scopes().iter(), b' '),
            Self::Roles => encode_list(claims.roles().iter().map(String::as_str), b','),
        }
    }
}

fn push_encoded(out: &mut String, item: &str, separator: u8) {
    use std::fmt::Write as _;
    for &b in item.as_bytes() {
        // SECURITY: only visible ASCII reaches the header; CR, LF, NUL and
        // every other byte become %XX, so a claim cannot add a header or
        // split a value.
        if (0x21..=0x7e).contains(&b) && b != b'%' && b != separator {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

fn encode(value: Option<&str>, separator: u8) -> Option<HeaderValue> {
    encode_list(value.into_iter(), separator)
}

fn encode_list<'a>(items: impl Iterator<Item = &'a str>, separator: u8) -> Option<HeaderValue> {
    let mut out = String::new();
    for item in items.filter(|i| !i.is_empty()) {
        if !out.is_empty() {
            out.push(char::from(separator));
        }
        push_encoded(&mut out, item, separator);
    }
    if out.is_empty() {
        return None;
    }
    HeaderValue::try_from(out).ok()
}

/// Layer that removes inbound identity headers and sets them from the
/// verified [`Claims`]; builds [`IdentityHeaders`]. Place it after
/// [`VerifyLayer`](crate::VerifyLayer) (inside it).
///
/// For a backend that does not verify tokens itself (behind a gateway):
/// the identity arrives in `x-auth-*` headers that no client can spoof,
/// because inbound ones are always removed first (in any case, with `_`
/// for `-`, renamed ones too).
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use authlayer::outbound::IdentityHeadersLayer;
/// use authlayer::test_util::TestIssuer;
/// use authlayer::{Verifier, VerifyLayer};
/// use http::{Request, Response};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// let issuer = TestIssuer::new("https://id.example");
/// let verifier = Verifier::builder()
///     .issuer(issuer.issuer())
///     .jwks_json(issuer.jwks_json())
///     .audience("urn:orders")
///     .build()
///     .await?;
/// let backend = ServiceBuilder::new()
///     .layer(VerifyLayer::new(verifier))
///     .layer(IdentityHeadersLayer::new())
///     .service(service_fn(|req: Request<()>| async move {
///         let sub = req.headers()["x-auth-sub"].to_str().unwrap().to_owned();
///         Ok::<_, std::convert::Infallible>(Response::new(sub))
///     }));
/// let token = issuer.token().audience("urn:orders").sub("alice").sign();
/// let req = Request::builder()
///     .header("authorization", format!("Bearer {token}"))
///     .header("x-auth-sub", "admin") // spoofed: removed before it is set
///     .body(())?;
/// assert_eq!(backend.oneshot(req).await?.body(), "alice");
/// # Ok(()) }
/// ```
///
///
/// # Values
///
/// Every value is visible ASCII. Bytes outside `!`..`~`, `%` itself, and
/// the list separator inside one list item (space in a scope, `,` in a
/// role) are percent-encoded (`%0D%0A`, `%C3%A9`, `%2C`): a claim holding a
/// line break can neither start a new header nor split a value, and a
/// backend recovers the exact claim by percent-decoding each value (each
/// list item). Claims that are absent give no header.
#[derive(Clone)]
pub struct IdentityHeadersLayer {
    names: Arc<[HeaderName; 6]>,
}

impl fmt::Debug for IdentityHeadersLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityHeadersLayer")
            .field("names", &self.names)
            .finish()
    }
}

impl Default for IdentityHeadersLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl IdentityHeadersLayer {
    /// The default names: `x-auth-sub`, `x-auth-client-id`,
    /// `x-auth-tenant`, `x-auth-scopes`, `x-auth-roles`, `x-auth-iss`.
    pub fn new() -> Self {
        Self {
            names: Arc::new(IdentityField::ALL.map(IdentityField::default_name)),
        }
    }

    /// Use header `name` for `field`; the renamed header is removed from
    /// inbound requests in any spelling (any case, `_` for `-`), as every
    /// `x-auth-*` header is. Defaults to
    /// [`IdentityField::default_name`].
    #[must_use]
    pub fn name(mut self, field: IdentityField, name: HeaderName) -> Self {
        if let Some(slot) = Arc::make_mut(&mut self.names).get_mut(field.index()) {
            *slot = name;
        }
        self
    }

    /// The header names, in [`IdentityField::ALL`] order.
    pub fn names(&self) -> &[HeaderName] {
        &self.names[..]
    }

    /// Whether `name` is an identity header this layer owns: one of its
    /// configured names or any `x-auth-*` name, each also spelled with `_`
    /// for `-` (names are compared case-insensitively). A proxy
    /// drops such headers from clients and never lets a client remove the
    /// ones this layer set (e.g. by naming them in `Connection`).
    pub fn owns(&self, name: &HeaderName) -> bool {
        owned(name, &self.names[..])
    }
}

impl<S> Layer<S> for IdentityHeadersLayer {
    type Service = IdentityHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        IdentityHeaders {
            inner,
            names: Arc::clone(&self.names),
        }
    }
}

/// The service built by [`IdentityHeadersLayer`].
#[derive(Clone)]
pub struct IdentityHeaders<S> {
    inner: S,
    names: Arc<[HeaderName; 6]>,
}

impl<S: fmt::Debug> fmt::Debug for IdentityHeaders<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityHeaders")
            .field("inner", &self.inner)
            .field("names", &self.names)
            .finish()
    }
}

impl<S> IdentityHeaders<S> {
    /// Wraps `inner` with the default header names.
    pub fn new(inner: S) -> Self {
        IdentityHeadersLayer::new().layer(inner)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// Removes every identity header, then sets those `claims` give.
pub(crate) fn apply(headers: &mut http::HeaderMap, names: &[HeaderName], claims: Option<&Claims>) {
    // SECURITY: inbound identity headers are removed first, all of them and
    // every repetition, whether or not the request has claims: a client
    // can never make the backend believe it is someone else. "All of them"
    // is every configured name and every `x-auth-*` name, also spelled with
    // underscores (`x_auth_sub`, `x_my_sub` for a configured `x-my-sub`),
    // which CGI-style backends read as the same header.
    let spoofable: Vec<HeaderName> = headers
        .keys()
        .filter(|name| owned(name, names))
        .cloned()
        .collect();
    for name in &spoofable {
        headers.remove(name);
    }
    let Some(claims) = claims else { return };
    for (field, name) in IdentityField::ALL.iter().zip(names) {
        if let Some(value) = field.value(claims) {
            headers.insert(name.clone(), value);
        }
    }
}

/// Whether `name` is an identity header: in the `x-auth-` namespace or one
/// of `names`, with `_` and `-` taken as the same (`http` stores names in
/// lowercase, so case is folded already).
fn owned(name: &HeaderName, names: &[HeaderName]) -> bool {
    let fold = |b: u8| if b == b'_' { b'-' } else { b };
    let same = |a: &str, b: &str| a.len() == b.len() && a.bytes().map(fold).eq(b.bytes().map(fold));
    is_identity_name(name.as_str()) || names.iter().any(|n| same(n.as_str(), name.as_str()))
}

/// Whether `name` (lowercase, as `http` stores names) is in the identity
/// namespace: `x-auth-…`, with `-` or `_`.
pub(crate) fn is_identity_name(name: &str) -> bool {
    name.len() > 7
        && name
            .bytes()
            .take(7)
            .map(|b| if b == b'_' { b'-' } else { b })
            .eq(b"x-auth-".iter().copied())
}

impl<S, B> Service<Request<B>> for IdentityHeaders<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let (parts, body) = req.into_parts();
        let mut parts = parts;
        let claims = parts.extensions.get::<Claims>();
        apply(&mut parts.headers, &self.names[..], claims);
        req = Request::from_parts(parts, body);
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_inbound_identity_header_is_removed_whatever_its_spelling() {
        let mut headers = http::HeaderMap::new();
        for name in [
            "x-auth-sub",
            "x-auth-admin",
            "x_auth_sub",
            "x-auth_roles",
            "x-custom-user",
        ] {
            headers.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                "evil".parse().unwrap(),
            );
        }
        headers.insert("accept", "text/plain".parse().unwrap());
        let custom = [HeaderName::from_static("x-custom-user")];
        apply(&mut headers, &custom, None);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(headers.contains_key("accept"));
        assert!(!is_identity_name("x-auth-"));
        assert!(!is_identity_name("x-authority"));
    }

    fn claims(json: &str) -> Claims {
        Claims::from_json(json).unwrap()
    }

    fn headers_for(json: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        let layer = IdentityHeadersLayer::new();
        apply(&mut headers, layer.names(), Some(&claims(json)));
        headers
    }

    #[test]
    fn every_field_is_set_from_the_claims() {
        let h = headers_for(
            r#"{"iss":"https://id.example","sub":"alice","client_id":"web","tenant":"acme",
                "scope":"orders:read orders:write","roles":["customer","admin"]}"#,
        );
        assert_eq!(h["x-auth-sub"], "alice");
        assert_eq!(h["x-auth-client-id"], "web");
        assert_eq!(h["x-auth-tenant"], "acme");
        assert_eq!(h["x-auth-scopes"], "orders:read orders:write");
        assert_eq!(h["x-auth-roles"], "customer,admin");
        assert_eq!(h["x-auth-iss"], "https://id.example");
    }

    #[test]
    fn line_breaks_in_claims_are_percent_encoded() {
        let h = headers_for(r#"{"sub":"eve\r\nx-auth-roles: admin","roles":["a,b","c\n"]}"#);
        assert_eq!(h["x-auth-sub"], "eve%0D%0Ax-auth-roles:%20admin");
        assert_eq!(h["x-auth-roles"], "a%2Cb,c%0A");
        assert_eq!(h.get_all("x-auth-roles").iter().count(), 1);
    }

    #[test]
    fn non_ascii_and_percent_are_encoded_losslessly() {
        let h = headers_for(r#"{"sub":"josé 100%"}"#);
        assert_eq!(h["x-auth-sub"], "jos%C3%A9%20100%25");
    }

    #[test]
    fn absent_claims_give_no_header_and_spoofed_ones_are_removed() {
        let mut headers = http::HeaderMap::new();
        headers.append("x-auth-sub", HeaderValue::from_static("admin"));
        headers.append("x-auth-sub", HeaderValue::from_static("root"));
        headers.insert("x-auth-tenant", HeaderValue::from_static("other"));
        let layer = IdentityHeadersLayer::new();
        apply(
            &mut headers,
            layer.names(),
            Some(&claims(r#"{"sub":"alice"}"#)),
        );
        assert_eq!(
            headers.get_all("x-auth-sub").iter().collect::<Vec<_>>(),
            ["alice"]
        );
        assert!(headers.get("x-auth-tenant").is_none());
        apply(&mut headers, layer.names(), None);
        assert!(headers.is_empty(), "{headers:?}");
    }

    #[test]
    fn configured_names_are_removed_whatever_their_spelling() {
        let layer = IdentityHeadersLayer::new()
            .name(IdentityField::Sub, HeaderName::from_static("x-my-sub"))
            .name(
                IdentityField::Tenant,
                HeaderName::from_static("x_my_tenant"),
            );
        let mut headers = http::HeaderMap::new();
        for name in [
            "X_My_Sub",
            "x-my_sub",
            "x-my-sub",
            "x-my-tenant",
            "X_MY_TENANT",
        ] {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("spoofed"),
            );
        }
        for name in ["x_my_sub", "X-My-Tenant"] {
            let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
            assert!(layer.owns(&name), "{name}");
        }
        assert!(!layer.owns(&HeaderName::from_static("x-my-subject")));
        apply(&mut headers, layer.names(), None);
        assert!(headers.is_empty(), "{headers:?}");
    }

    #[test]
    fn names_are_configurable() {
        let layer =
            IdentityHeadersLayer::new().name(IdentityField::Sub, HeaderName::from_static("x-user"));
        let mut headers = http::HeaderMap::new();
        headers.insert("x-user", HeaderValue::from_static("spoofed"));
        apply(
            &mut headers,
            layer.names(),
            Some(&claims(r#"{"sub":"alice"}"#)),
        );
        assert_eq!(headers["x-user"], "alice");
        assert!(headers.get("x-auth-sub").is_none());
    }
}
