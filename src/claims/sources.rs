//! Where roles, scopes and the tenant come from: claim paths per issuer,
//! with presets for the providers that put them elsewhere than RFC 9068.

/// How a claim's value is read into a list (roles, scopes) or one value
/// (tenant). A value of another shape is left out of the standard view,
/// never fails the token; a rule that needs it refuses with
/// [`ClaimShape`](crate::Reason::ClaimShape).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueShape {
    /// A JSON array of strings: `["admin","buyer"]`.
    Array,
    /// A space-separated string: `"orders:read orders:write"`.
    Spaced,
    /// Either of the above.
    ArrayOrSpaced,
    /// An object whose keys are the values (ZITADEL):
    /// `{"admin": {…}, "buyer": {…}}`.
    Keys,
    /// Any of the above.
    Any,
    /// One string (tenants).
    Text,
}

/// A claim path: top-level claim, then nested members. Built from a dotted
/// string (`realm_access.roles`) or from segments, for names that contain
/// dots themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath {
    pub(crate) segments: Box<[Box<str>]>,
    pub(crate) shape: ValueShape,
}

impl ClaimPath {
    /// A path with dots for nesting: `realm_access.roles`. An empty
    /// segment is refused when the verifier is built.
    pub fn new(path: &str, shape: ValueShape) -> Self {
        Self::from_segments(path.split('.'), shape)
    }

    /// A path from its segments: `["resource_access", "my.client", "roles"]`.
    pub fn from_segments<I, S>(segments: I, shape: ValueShape) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            segments: segments
                .into_iter()
                .map(|s| s.into().into_boxed_str())
                .collect(),
            shape,
        }
    }

    fn array(path: &str) -> Self {
        Self::new(path, ValueShape::Array)
    }

    fn spaced(path: &str) -> Self {
        Self::new(path, ValueShape::Spaced)
    }

    fn text(path: &str) -> Self {
        Self::new(path, ValueShape::Text)
    }

    pub(crate) fn top(&self) -> &str {
        self.segments.first().map_or("", |s| s)
    }

    pub(crate) fn is_valid(&self) -> bool {
        !self.segments.is_empty() && self.segments.iter().all(|s| !s.is_empty())
    }
}

/// Where an issuer's tokens carry roles, scopes and tenant. Several paths
/// per part are merged (roles from the realm and from one client, say).
///
/// | preset | scopes | roles | tenant |
/// |---|---|---|---|
/// | [`rfc9068`](Self::rfc9068) (default) | `scope` (spaced), `scp` (array or spaced) | `roles` (array) | `tenant` |
/// | [`keycloak`](Self::keycloak) | `scope` | `realm_access.roles`, `resource_access.<client>.roles` | — (mind the audience: [`keycloak`](Self::keycloak)) |
/// | [`entra`](Self::entra) | `scp` (spaced) | `roles` | `tid` |
/// | [`auth0`](Self::auth0) | `scope` | `permissions` | `org_id` |
/// | [`okta`](Self::okta) | `scp` (array) | `groups` | — |
/// | [`cognito`](Self::cognito) | `scope` | `cognito:groups` | — |
/// | [`authentik`](Self::authentik) | `scope` | `groups` | — |
/// | [`zitadel`](Self::zitadel) | `scope` | keys of `urn:zitadel:iam:org:project:roles` | `urn:zitadel:iam:user:resourceowner:id` |
///
/// ```
/// use authlayer::{ClaimPath, ClaimSources, Claims, ValueShape};
///
/// let keycloak = ClaimSources::keycloak("orders-api");
/// let claims = Claims::<()>::from_json_with(
///     r#"{"realm_access":{"roles":["user"]},
///         "resource_access":{"orders-api":{"roles":["admin"]},"other":{"roles":["root"]}}}"#,
///     &keycloak,
/// )?;
/// assert!(claims.has_role("user") && claims.has_role("admin"));
/// assert!(!claims.has_role("root"));
///
/// // Your own layout: roles from a nested member, merged with `groups`.
/// let mine = ClaimSources::rfc9068().roles([
///     ClaimPath::new("app.roles", ValueShape::Array),
///     ClaimPath::new("groups", ValueShape::Any),
/// ]);
/// # let _ = mine;
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct ClaimSources {
    pub(crate) scopes: Vec<ClaimPath>,
    pub(crate) roles: Vec<ClaimPath>,
    pub(crate) tenant: Vec<ClaimPath>,
}

impl Default for ClaimSources {
    fn default() -> Self {
        Self::rfc9068()
    }
}

impl ClaimSources {
    /// RFC 9068 (the default): scopes from `scope` (space-separated) and
    /// `scp` (array or space-separated), roles from the `roles` array,
    /// tenant from `tenant`.
    pub fn rfc9068() -> Self {
        Self {
            scopes: vec![
                ClaimPath::spaced("scope"),
                ClaimPath::new("scp", ValueShape::ArrayOrSpaced),
            ],
            roles: vec![ClaimPath::array("roles")],
            tenant: vec![ClaimPath::text("tenant")],
        }
    }

    /// Keycloak: realm roles (`realm_access.roles`) plus the roles of
    /// `client` (`resource_access.<client>.roles`); scopes from `scope`.
    /// Keycloak sends no tenant claim.
    ///
    /// # The audience
    ///
    /// By default a Keycloak access token does not name your API in `aud`:
    /// it names the client that asked for it in `azp`, and its `aud` is
    /// `"account"` (Keycloak's own account console, whenever the user has
    /// its default roles) or absent. Do not accept `account` as an audience,
    /// and do not turn the check off: nearly every token of the realm
    /// carries `account`, so either would accept tokens that any application
    /// of the realm obtained for itself. Make Keycloak name your API instead, and
    /// configure that name with [`audience`](crate::VerifierBuilder::audience):
    ///
    /// - an *Audience* mapper (Client scopes → a scope assigned to the
    ///   calling clients, or the calling client's dedicated scope → Add
    ///   mapper → By configuration → Audience), *Included Client Audience*
    ///   = your API's client id (`orders-api`), *Add to access token* on; or
    /// - client roles of your API's client granted to the users (and in the
    ///   calling client's scope, as they are by default): Keycloak's default
    ///   `roles` scope (mapper *Audience Resolve*) then adds your API's
    ///   client to `aud` by itself.
    ///
    /// `client` here is also your API's client id: the client whose roles
    /// [`RequireRolesLayer`](crate::RequireRolesLayer) reads.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use authlayer::{ClaimSources, Reason, Verifier};
    /// # use authlayer::test_util::TestIssuer;
    ///
    /// # let realm = TestIssuer::new("https://keycloak.example/realms/acme");
    /// let verifier = Verifier::builder()
    ///     .issuer("https://keycloak.example/realms/acme")
    /// #   .jwks_json(realm.jwks_json())
    ///     .audience("orders-api")
    ///     .claims(ClaimSources::keycloak("orders-api"))
    ///     .build()
    ///     .await?;
    ///
    /// // Keycloak's default: the web app's token, not meant for this API.
    /// # let token = realm.token().claim("azp", "web-app").claim("aud", "account").sign();
    /// let err = verifier.verify(&token).await.unwrap_err();
    /// assert_eq!(err.reason(), Reason::WrongAudience);
    ///
    /// // With the Audience mapper: `aud` names the API.
    /// # let token = realm.token().claim("azp", "web-app")
    /// #     .claim("aud", serde_json::json!(["orders-api", "account"]))
    /// #     .claim("resource_access", serde_json::json!({"orders-api": {"roles": ["admin"]}}))
    /// #     .sign();
    /// let claims = verifier.verify(&token).await?;
    /// assert!(claims.has_role("admin"));
    /// # Ok(()) }
    /// ```
    pub fn keycloak(client: &str) -> Self {
        Self {
            scopes: vec![ClaimPath::spaced("scope")],
            roles: vec![
                ClaimPath::array("realm_access.roles"),
                ClaimPath::from_segments(["resource_access", client, "roles"], ValueShape::Array),
            ],
            tenant: Vec::new(),
        }
    }

    /// Microsoft Entra ID (v2 access tokens): app roles from `roles`,
    /// delegated scopes from `scp` (space-separated), tenant from `tid`.
    /// Pair it with [`Issuer::tenant_template`](crate::Issuer::tenant_template).
    pub fn entra() -> Self {
        Self {
            scopes: vec![ClaimPath::spaced("scp")],
            roles: vec![ClaimPath::array("roles")],
            tenant: vec![ClaimPath::text("tid")],
        }
    }

    /// Auth0: RBAC `permissions` (array) as roles, `scope`, and the
    /// organization `org_id` as tenant.
    pub fn auth0() -> Self {
        Self {
            scopes: vec![ClaimPath::spaced("scope")],
            roles: vec![ClaimPath::array("permissions")],
            tenant: vec![ClaimPath::text("org_id")],
        }
    }

    /// Okta: `groups` as roles, `scp` as an array of scopes.
    pub fn okta() -> Self {
        Self {
            scopes: vec![ClaimPath::new("scp", ValueShape::Array)],
            roles: vec![ClaimPath::array("groups")],
            tenant: Vec::new(),
        }
    }

    /// Amazon Cognito access tokens: `cognito:groups` as roles, `scope`.
    /// Cognito access tokens carry no `aud`: pair it with
    /// [`audience_from_client_id`](crate::Issuer::audience_from_client_id).
    pub fn cognito() -> Self {
        Self {
            scopes: vec![ClaimPath::spaced("scope")],
            roles: vec![ClaimPath::array("cognito:groups")],
            tenant: Vec::new(),
        }
    }

    /// Authentik: `groups` as roles, `scope`.
    pub fn authentik() -> Self {
        Self {
            scopes: vec![ClaimPath::spaced("scope")],
            roles: vec![ClaimPath::array("groups")],
            tenant: Vec::new(),
        }
    }

    /// ZITADEL: roles are the keys of `urn:zitadel:iam:org:project:roles`,
    /// tenant is the organization (`urn:zitadel:iam:user:resourceowner:id`).
    pub fn zitadel() -> Self {
        Self {
            scopes: vec![ClaimPath::spaced("scope")],
            roles: vec![ClaimPath::new(
                "urn:zitadel:iam:org:project:roles",
                ValueShape::Keys,
            )],
            tenant: vec![ClaimPath::text("urn:zitadel:iam:user:resourceowner:id")],
        }
    }

    /// Replaces where scopes come from.
    pub fn scopes(mut self, paths: impl IntoIterator<Item = ClaimPath>) -> Self {
        self.scopes = paths.into_iter().collect();
        self
    }

    /// Replaces where roles come from.
    pub fn roles(mut self, paths: impl IntoIterator<Item = ClaimPath>) -> Self {
        self.roles = paths.into_iter().collect();
        self
    }

    /// Replaces where the tenant comes from (the first path with a string
    /// value wins). The shape is always [`ValueShape::Text`].
    pub fn tenant(mut self, paths: impl IntoIterator<Item = ClaimPath>) -> Self {
        self.tenant = paths
            .into_iter()
            .map(|p| ClaimPath {
                shape: ValueShape::Text,
                ..p
            })
            .collect();
        self
    }

    pub(crate) fn paths(&self) -> impl Iterator<Item = &ClaimPath> {
        self.scopes.iter().chain(&self.roles).chain(&self.tenant)
    }

    /// `Err` naming the first empty path segment.
    pub(crate) fn validate(&self) -> Result<(), String> {
        match self.paths().find(|p| !p.is_valid()) {
            Some(p) => Err(format!(
                "claim path {:?} has an empty segment",
                p.segments.join(".")
            )),
            None => Ok(()),
        }
    }
}
