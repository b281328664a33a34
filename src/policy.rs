//! Authorization rules over verified claims: [`Policy`] (scopes, roles,
//! tenants and the user's predicates, composed with all / any / not and
//! evaluated three-valued), the tenant binding [`TenantRule`] and the
//! per-method table [`MethodTable`] for gRPC, behind the crate-private
//! [`Rule`] trait that the rule layers (`crate::layer::require`) apply to
//! requests. The user's documentation is on [`Policy`] and the layers.

use std::any::Any;
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

use http::{Extensions, HeaderMap, HeaderName, Uri};

use crate::audit::RuleInfo;
use crate::claims::{Claims, Slot};
use crate::error::Reason;

/// The parts of a request a rule may look at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleRequest<'a> {
    /// The URI (for gRPC, the path is `/package.Service/Method`).
    pub(crate) uri: &'a Uri,
    /// The headers.
    pub(crate) headers: &'a HeaderMap,
    /// The extensions, where `VerifyLayer` put the claims of your own type
    /// that [`Policy::claims_as`] predicates read.
    pub(crate) extensions: &'a Extensions,
    /// The claims type `VerifyLayer` parsed (for the log of a
    /// `claims_as` over another type).
    pub(crate) claims_type: Option<&'static str>,
}

/// A rule a rule layer applies: scopes, roles, a policy, a tenant binding
/// or a gRPC method table. Users compose a [`Policy`] (with closures) for
/// their own logic.
pub(crate) trait Rule: Send + Sync + 'static {
    /// Checks one verified request; returns the decision and what the
    /// audit record names as the deciding rule.
    fn decide(&self, req: RuleRequest<'_>, claims: &Claims) -> (Result<(), Reason>, &RuleInfo);

    /// What the audit record names for `req` when no claims are there to
    /// decide on (anonymous, or no `VerifyLayer`).
    fn info(&self, req: RuleRequest<'_>) -> &RuleInfo;

    /// What an allowed request carries on to the handler: the tenant a
    /// tenant rule checked.
    fn checked(&self, _claims: &Claims) -> Option<CheckedTenant> {
        None
    }
}

/// The tenant a [`RequireTenant`](crate::RequireTenant) rule checked, in
/// the request extensions of every request it allows: the token's tenant,
/// which the request names (for [`host`](crate::RequireTenantLayer::host), up
/// to ASCII case). Handlers read it (`Extension<CheckedTenant>` in axum)
/// rather than the path, header or host again, so they serve the tenant
/// that was checked.
///
/// A tenant is only meaningful with the issuer that vouched for it: when
/// you trust several issuers, key your data by
/// ([`issuer`](Self::issuer), [`as_str`](Self::as_str)).
#[derive(Clone)]
pub struct CheckedTenant(Arc<crate::claims::StandardClaims>);

impl CheckedTenant {
    /// The tenant.
    pub fn as_str(&self) -> &str {
        self.0.tenant.as_deref().unwrap_or_default()
    }

    /// The issuer (`iss`) of the token that named the tenant.
    pub fn issuer(&self) -> Option<&str> {
        self.0.iss.as_deref()
    }
}

impl fmt::Debug for CheckedTenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckedTenant")
            .field("tenant", &self.as_str())
            .field("issuer", &self.issuer())
            .finish()
    }
}

impl fmt::Display for CheckedTenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    All,
    Any,
}

/// A predicate over verified claims, composed with [`all`](Policy::all),
/// [`any`](Policy::any) and [`not`](Policy::not). Cheap to clone.
///
/// A denial names its reason: a missing scope is
/// [`InsufficientScope`](Reason::InsufficientScope) (403
/// `insufficient_scope`), a missing role [`MissingRole`](Reason::MissingRole),
/// a closure that says no [`PolicyDenied`](Reason::PolicyDenied) (plain
/// 403s). When the claim a rule needs arrived in an unexpected shape, the
/// reason is [`ClaimShape`](Reason::ClaimShape).
///
/// # Claims of an unexpected shape
///
/// A policy is evaluated with three values: it holds, it does not, or it
/// cannot be told. An absent claim is an empty list (a token without
/// `roles` has no role, so `not(roles_any(["banned"]))` holds). A claim of
/// an unexpected shape (`"roles": "banned"`, `"roles": ["banned", 1]`) is
/// unknown: a predicate needing it cannot be told, and neither can its
/// [`not`](Policy::not). [`all`](Policy::all) and [`any`](Policy::any)
/// follow Kleene's logic: `any` holds if one part holds, `all` fails if one
/// part fails, whatever the unknown parts; otherwise an unknown part makes
/// the whole unknown. A policy that cannot be told is denied with
/// [`ClaimShape`](Reason::ClaimShape). Your own [`claims`](Policy::claims)
/// predicates see only the claims of the expected shape, so when one says
/// no while any claim (scopes, roles or tenant) arrived in an unexpected
/// shape, its answer is unknown too (it may have looked for what was left
/// out); when it says yes, it holds. A [`claims_as`](Policy::claims_as)
/// predicate over a claims type the request does not carry is unknown as
/// well, denied with [`ClaimsTypeMismatch`](Reason::ClaimsTypeMismatch)
/// (500: the service's wiring mistake, logged).
///
/// # Example
///
/// ```
/// use authlayer::{Claims, Policy};
///
/// // Admins, or buyers with the write scope, but never suspended accounts.
/// let policy = Policy::all([
///     Policy::any([
///         Policy::roles_all(["admin"]),
///         Policy::all([Policy::roles_all(["buyer"]), Policy::scopes_all(["orders:write"])]),
///     ]),
///     Policy::not(Policy::claims("suspended", |c: &Claims| c.sub() == Some("mallory"))),
/// ]);
///
/// let buyer = Claims::<()>::from_json(r#"{"sub":"bob","roles":["buyer"],"scope":"orders:write"}"#)?;
/// assert!(policy.allows(&buyer));
/// let reader = Claims::<()>::from_json(r#"{"sub":"bob","roles":["buyer"],"scope":"orders:read"}"#)?;
/// assert!(!policy.allows(&reader));
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// On a route: [`RequirePolicyLayer::new(policy)`](crate::RequirePolicyLayer::new);
/// per gRPC method: [`MethodRulesLayer`](crate::MethodRulesLayer).
#[derive(Clone)]
pub struct Policy(Arc<Node>);

type Predicate = dyn Fn(&Claims) -> bool + Send + Sync;

/// A [`Policy::claims_as`] predicate: `None` when the claims of its type
/// are not there.
type TypedPredicate = dyn Fn(Typed<'_>) -> Option<bool> + Send + Sync;

/// Where a [`Policy::claims_as`] predicate finds the claims of its type.
#[derive(Clone, Copy)]
enum Typed<'a> {
    /// A request's extensions, where `VerifyLayer` put `Claims<E>`.
    Extensions(&'a Extensions),
    /// The `Claims<E>` given to [`Policy::allows`] or [`Policy::check`].
    Given(&'a dyn Any),
}

impl<'a> Typed<'a> {
    fn get<E: Send + Sync + 'static>(self) -> Option<&'a Claims<E>> {
        match self {
            Typed::Extensions(extensions) => extensions.get::<Claims<E>>(),
            Typed::Given(claims) => claims.downcast_ref::<Claims<E>>(),
        }
    }
}

/// One evaluation of a policy: the standard view, the claims of your own
/// type, and the first `claims_as` that found no claims of its type.
struct Eval<'a> {
    claims: &'a Claims,
    typed: Typed<'a>,
    /// The name and type of the first `claims_as` over a missing type.
    mismatch: Cell<Option<(&'static str, &'static str)>>,
}

enum Node {
    Scopes(Mode, Vec<String>),
    Roles(Mode, Vec<String>),
    TenantIn(Vec<String>),
    Claims(&'static str, Box<Predicate>),
    ClaimsAs(&'static str, &'static str, Box<TypedPredicate>),
    All(Vec<Policy>),
    Any(Vec<Policy>),
    Not(Policy),
    Allow,
    Deny,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Node::Scopes(mode, s) => write!(f, "scopes_{mode:?}({s:?})"),
            Node::Roles(mode, r) => write!(f, "roles_{mode:?}({r:?})"),
            Node::TenantIn(t) => write!(f, "tenant_in({t:?})"),
            Node::Claims(name, _) => write!(f, "claims({name:?})"),
            Node::ClaimsAs(name, ty, _) => write!(f, "claims_as::<{ty}>({name:?})"),
            Node::All(p) => f.debug_tuple("all").field(p).finish(),
            Node::Any(p) => f.debug_tuple("any").field(p).finish(),
            Node::Not(p) => f.debug_tuple("not").field(p).finish(),
            Node::Allow => f.write_str("allow"),
            Node::Deny => f.write_str("deny"),
        }
    }
}

fn strings<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    items.into_iter().map(Into::into).collect()
}

impl Policy {
    fn node(node: Node) -> Self {
        Self(Arc::new(node))
    }

    /// Every one of `scopes` is granted (with none: always true).
    pub fn scopes_all<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Self::node(Node::Scopes(Mode::All, strings(scopes)))
    }

    /// At least one of `scopes` is granted (with none: always false).
    pub fn scopes_any<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Self::node(Node::Scopes(Mode::Any, strings(scopes)))
    }

    /// The token has every one of `roles` (exact match).
    pub fn roles_all<I: IntoIterator<Item = S>, S: Into<String>>(roles: I) -> Self {
        Self::node(Node::Roles(Mode::All, strings(roles)))
    }

    /// The token has at least one of `roles`.
    pub fn roles_any<I: IntoIterator<Item = S>, S: Into<String>>(roles: I) -> Self {
        Self::node(Node::Roles(Mode::Any, strings(roles)))
    }

    /// The token's tenant is one of `tenants`.
    pub fn tenant_in<I: IntoIterator<Item = S>, S: Into<String>>(tenants: I) -> Self {
        Self::node(Node::TenantIn(strings(tenants)))
    }

    /// Your own predicate; `name` identifies it in logs.
    ///
    /// The predicate sees the standard view of the claims, which leaves out
    /// a claim of an unexpected shape (`"roles": "banned"` gives no roles).
    /// So when it returns `false` while any scope, role or tenant claim
    /// arrived in an unexpected shape, the result is unknown rather than
    /// false (see [`Policy`]): alone it still denies, now with
    /// [`ClaimShape`](Reason::ClaimShape), and `not` of it denies too
    /// instead of allowing. When it returns `true`, it holds.
    pub fn claims<F>(name: &'static str, predicate: F) -> Self
    where
        F: Fn(&Claims) -> bool + Send + Sync + 'static,
    {
        Self::node(Node::Claims(name, Box::new(predicate)))
    }

    /// Your own predicate over the claims of your own type `E`, the
    /// `Claims<E>` that [`VerifyLayer::with_claims`](crate::VerifyLayer::with_claims)
    /// parses; `name` identifies it in logs.
    ///
    /// ```
    /// use authlayer::{Claims, Policy};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Mine {
    ///     plan: String,
    /// }
    ///
    /// let pro = Policy::claims_as::<Mine>("pro plan", |c| c.extra().plan == "pro");
    /// let claims = Claims::<Mine>::from_json(r#"{"plan":"pro"}"#)?;
    /// assert!(pro.allows(&claims));
    /// // Over claims of another type, it cannot be told: denied, and so is its `not`.
    /// let standard = Claims::<()>::from_json(r#"{"plan":"pro"}"#)?;
    /// assert!(!pro.allows(&standard));
    /// assert!(!Policy::not(pro).allows(&standard));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    ///
    /// The rule layers evaluate it against the `Claims<E>` `VerifyLayer`
    /// put into the request, [`allows`](Self::allows) against the claims
    /// it is given. Where
    /// there are no claims of type `E` (`VerifyLayer` parses another type),
    /// the wiring is wrong: the predicate is unknown, never true, so alone
    /// or under [`not`](Self::not) it denies, with
    /// [`ClaimsTypeMismatch`](Reason::ClaimsTypeMismatch) (500), and the
    /// mistake is logged once per evaluation. A claim of an unexpected
    /// shape in the standard view makes its "no" unknown, as for
    /// [`claims`](Self::claims).
    pub fn claims_as<E: Send + Sync + 'static>(
        name: &'static str,
        predicate: impl Fn(&Claims<E>) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self::node(Node::ClaimsAs(
            name,
            std::any::type_name::<E>(),
            Box::new(move |typed| typed.get::<E>().map(&predicate)),
        ))
    }

    /// Every one of `policies` holds (with none: always true).
    pub fn all<I: IntoIterator<Item = Policy>>(policies: I) -> Self {
        Self::node(Node::All(policies.into_iter().collect()))
    }

    /// At least one of `policies` holds (with none: always false).
    pub fn any<I: IntoIterator<Item = Policy>>(policies: I) -> Self {
        Self::node(Node::Any(policies.into_iter().collect()))
    }

    /// `policy` does not hold.
    #[allow(clippy::should_implement_trait)]
    pub fn not(policy: Policy) -> Self {
        Self::node(Node::Not(policy))
    }

    /// Always holds (for example, a public gRPC method).
    pub fn allow() -> Self {
        Self::node(Node::Allow)
    }

    /// Never holds.
    pub fn deny() -> Self {
        Self::node(Node::Deny)
    }

    /// Whether `claims` satisfy this policy. [`claims_as`](Self::claims_as)
    /// predicates over type `E` read them; over another type they deny.
    pub fn allows<E: Send + Sync + 'static>(&self, claims: &Claims<E>) -> bool {
        self.check_typed(claims).is_ok()
    }

    /// [`allows`](Self::allows), with the reason of a denial.
    fn check_typed<E: Send + Sync + 'static>(&self, claims: &Claims<E>) -> Result<(), Reason> {
        let given: &dyn Any = claims;
        let standard;
        let view = if let Some(view) = given.downcast_ref::<Claims>() {
            view
        } else {
            standard = claims.to_standard();
            &standard
        };
        self.decide_over(view, Typed::Given(given), Some(std::any::type_name::<E>()))
    }

    /// The decision over the standard view, with the reason of a denial.
    /// A policy that cannot be evaluated (see [`Policy`]) is denied with
    /// [`ClaimShape`](Reason::ClaimShape), or with
    /// [`InsufficientScope`](Reason::InsufficientScope) when only scopes
    /// were wanted (what a client asks its authorization server for), or
    /// with [`ClaimsTypeMismatch`](Reason::ClaimsTypeMismatch) when it
    /// holds a [`claims_as`](Self::claims_as) predicate over your own
    /// claims type, which the standard view does not have.
    pub fn check(&self, claims: &Claims) -> Result<(), Reason> {
        self.decide_over(claims, Typed::Given(claims), Some("()"))
    }

    /// The decision for a request: your own claims types are read from its
    /// extensions.
    pub(crate) fn decide(&self, req: RuleRequest<'_>, claims: &Claims) -> Result<(), Reason> {
        self.decide_over(claims, Typed::Extensions(req.extensions), req.claims_type)
    }

    fn decide_over(
        &self,
        claims: &Claims,
        typed: Typed<'_>,
        configured: Option<&'static str>,
    ) -> Result<(), Reason> {
        let eval = Eval {
            claims,
            typed,
            mismatch: Cell::new(None),
        };
        let truth = self.eval(&eval);
        if let Some((name, wanted)) = eval.mismatch.get() {
            let configured = configured.unwrap_or("()");
            tracing::error!(
                policy = name,
                wanted,
                configured,
                "Policy::claims_as::<{wanted}>({name:?}) has no Claims<{wanted}> to read, the \
                 claims are Claims<{configured}>: configure VerifyLayer::with_claims::<{wanted}>() \
                 (the predicate counts as unknown and never allows)"
            );
        }
        match truth {
            Truth::Yes => Ok(()),
            Truth::No(reason) | Truth::Unknown(reason) => Err(reason),
        }
    }

    /// Three-valued evaluation (Kleene logic).
    ///
    /// SECURITY: a claim that arrived in an unexpected shape is neither
    /// "has it" nor "lacks it" but unknown, and `not(unknown)` is still
    /// unknown: otherwise `not(roles_any(["banned"]))` would allow a token
    /// whose `roles` is the string `"banned"`. An absent claim is the empty
    /// set, known.
    fn eval(&self, ctx: &Eval<'_>) -> Truth {
        let claims = ctx.claims;
        let odd = |slot| claims.standard().unexpected(slot);
        let any_odd = || {
            [Slot::Scopes, Slot::Roles, Slot::Tenant]
                .into_iter()
                .any(odd)
        };
        match &*self.0 {
            Node::Scopes(mode, scopes) => {
                let granted = claims.scopes();
                let held = matches(*mode, scopes, |s| granted.contains(s), odd(Slot::Scopes));
                // A scope rule over a `scope` of an unexpected shape still
                // answers `insufficient_scope`: the client can act on it.
                Truth::of(held, Reason::InsufficientScope, Reason::InsufficientScope)
            }
            Node::Roles(mode, roles) => {
                let held = matches(*mode, roles, |r| claims.has_role(r), odd(Slot::Roles));
                Truth::of(held, Reason::MissingRole, Reason::ClaimShape)
            }
            Node::TenantIn(tenants) => match claims.tenant() {
                Some(t) if tenants.iter().any(|x| x == t) => Truth::Yes,
                Some(_) => Truth::No(Reason::TenantNotAllowed),
                None if odd(Slot::Tenant) => Truth::Unknown(Reason::ClaimShape),
                None => Truth::No(Reason::TenantMissing),
            },
            Node::Claims(_, predicate) => {
                // SECURITY: a closure reads the standard view, which leaves
                // odd-shaped claims out, so its "no" over such claims may
                // only mean "not visible" (`has_role("banned")` over
                // `"roles": "banned"`). Which claims it reads is unknown, so
                // any odd slot makes its "no" unknown; `not` of it then
                // denies. Its "yes" stands.
                let held = predicate(claims);
                Truth::of(
                    (held || !any_odd()).then_some(held),
                    Reason::PolicyDenied,
                    Reason::ClaimShape,
                )
            }
            Node::ClaimsAs(name, ty, predicate) => match predicate(ctx.typed) {
                // SECURITY: no claims of the predicate's type means a wiring
                // mistake, not an answer: unknown, so it never allows,
                // alone or under `not`.
                None => {
                    if ctx.mismatch.get().is_none() {
                        ctx.mismatch.set(Some((name, ty)));
                    }
                    Truth::Unknown(Reason::ClaimsTypeMismatch)
                }
                // The typed claims share the standard view's odd slots:
                // the same rule as `claims`.
                Some(held) => Truth::of(
                    (held || !any_odd()).then_some(held),
                    Reason::PolicyDenied,
                    Reason::ClaimShape,
                ),
            },
            Node::All(policies) => {
                // false wins over unknown; the first false names the reason.
                let mut unknown = None;
                for p in policies {
                    match p.eval(ctx) {
                        Truth::Yes => {}
                        no @ Truth::No(_) => return no,
                        Truth::Unknown(reason) => unknown = Some(same(unknown, reason)),
                    }
                }
                unknown.map_or(Truth::Yes, Truth::Unknown)
            }
            Node::Any(policies) => {
                // true wins over unknown, unknown over false.
                let mut unknown = None;
                let mut common: Option<Reason> = None;
                for p in policies {
                    match p.eval(ctx) {
                        Truth::Yes => return Truth::Yes,
                        Truth::Unknown(reason) => unknown = Some(same(unknown, reason)),
                        Truth::No(reason) if common.is_none_or(|c| c == reason) => {
                            common = Some(reason);
                        }
                        Truth::No(_) => common = Some(Reason::PolicyDenied),
                    }
                }
                match unknown {
                    Some(reason) => Truth::Unknown(reason),
                    None => Truth::No(common.unwrap_or(Reason::PolicyDenied)),
                }
            }
            Node::Not(policy) => match policy.eval(ctx) {
                Truth::Yes => Truth::No(Reason::PolicyDenied),
                Truth::No(_) => Truth::Yes,
                // A wiring mistake stays one.
                Truth::Unknown(Reason::ClaimsTypeMismatch) => {
                    Truth::Unknown(Reason::ClaimsTypeMismatch)
                }
                // What the inner part would have asked for is beside the
                // point now: the claim's shape is.
                Truth::Unknown(_) => Truth::Unknown(Reason::ClaimShape),
            },
            Node::Allow => Truth::Yes,
            Node::Deny => Truth::No(Reason::PolicyDenied),
        }
    }

    /// The scopes and roles this policy mentions, space-separated, for the
    /// audit record and the `insufficient_scope` challenge.
    fn mentioned(&self) -> (Vec<&str>, Vec<&str>) {
        let mut scopes = Vec::new();
        let mut roles = Vec::new();
        self.collect(&mut scopes, &mut roles);
        (scopes, roles)
    }

    fn collect<'a>(&'a self, scopes: &mut Vec<&'a str>, roles: &mut Vec<&'a str>) {
        match &*self.0 {
            Node::Scopes(_, s) => scopes.extend(s.iter().map(String::as_str)),
            Node::Roles(_, r) => roles.extend(r.iter().map(String::as_str)),
            Node::All(p) | Node::Any(p) => p.iter().for_each(|p| p.collect(scopes, roles)),
            Node::Not(p) => p.collect(scopes, roles),
            Node::TenantIn(_)
            | Node::Claims(..)
            | Node::ClaimsAs(..)
            | Node::Allow
            | Node::Deny => {}
        }
    }

    fn info(&self, rule: &'static str) -> RuleInfo {
        let (scopes, roles) = self.mentioned();
        let join = |v: Vec<&str>| (!v.is_empty()).then(|| Arc::from(v.join(" ")));
        RuleInfo {
            rule,
            scopes: join(scopes),
            roles: join(roles),
        }
    }
}

/// Whether the token holds `wanted` (every one, or one of them): `None`
/// when that depends on a claim that arrived in an unexpected shape (`odd`),
/// since what it would have held is unknown.
fn matches(mode: Mode, wanted: &[String], has: impl Fn(&str) -> bool, odd: bool) -> Option<bool> {
    let held = match mode {
        Mode::All => wanted.iter().all(|w| has(w)),
        Mode::Any => wanted.iter().any(|w| has(w)),
    };
    // With nothing wanted the answer holds whatever the claim says.
    if held || wanted.is_empty() || !odd {
        Some(held)
    } else {
        None
    }
}

/// The value of a policy over some claims: holds, does not hold (and
/// why), or cannot be told because a claim it needs has an unexpected shape
/// (and the reason a denial then gives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    Yes,
    No(Reason),
    Unknown(Reason),
}

impl Truth {
    fn of(held: Option<bool>, no: Reason, unknown: Reason) -> Self {
        match held {
            Some(true) => Truth::Yes,
            Some(false) => Truth::No(no),
            None => Truth::Unknown(unknown),
        }
    }
}

/// The reason unknown parts give together: a wiring mistake
/// ([`ClaimsTypeMismatch`](Reason::ClaimsTypeMismatch)) if one is, theirs
/// if they agree, else [`ClaimShape`](Reason::ClaimShape).
fn same(so_far: Option<Reason>, reason: Reason) -> Reason {
    match so_far {
        Some(Reason::ClaimsTypeMismatch) => Reason::ClaimsTypeMismatch,
        Some(r) if r != reason && reason != Reason::ClaimsTypeMismatch => Reason::ClaimShape,
        _ => reason,
    }
}

fn tenant_absent(claims: &Claims) -> Reason {
    if claims.standard().unexpected(Slot::Tenant) {
        Reason::ClaimShape
    } else {
        Reason::TenantMissing
    }
}

macro_rules! policy_rule {
    ($(#[$doc:meta])* $name:ident, $rule:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub(crate) struct $name {
            policy: Policy,
            info: RuleInfo,
        }

        impl $name {
            pub(crate) fn new(policy: Policy) -> Self {
                let info = policy.info($rule);
                Self { policy, info }
            }
        }

        impl Rule for $name {
            fn decide(&self, req: RuleRequest<'_>, claims: &Claims) -> (Result<(), Reason>, &RuleInfo) {
                (self.policy.decide(req, claims), &self.info)
            }

            fn info(&self, _: RuleRequest<'_>) -> &RuleInfo {
                &self.info
            }
        }
    };
}

policy_rule!(
    /// The rule of [`RequireScopes`](crate::RequireScopes).
    ScopeRule,
    "scopes"
);
policy_rule!(
    /// The rule of [`RequireRoles`](crate::RequireRoles).
    RoleRule,
    "roles"
);
policy_rule!(
    /// The rule of [`RequirePolicy`](crate::RequirePolicy).
    PolicyRule,
    "policy"
);

/// Where the request names its tenant.
#[derive(Debug, Clone)]
enum TenantFrom {
    /// The n-th path segment (0-based, after the leading `/`), percent-decoded.
    Segment(usize),
    /// A header's value.
    Header(HeaderName),
    /// The first label of the host (`acme.example.com` → `acme`), ASCII
    /// case-insensitive.
    Host,
}

/// The rule of [`RequireTenant`](crate::RequireTenant): the tenant the
/// request names must be the token's tenant.
#[derive(Debug, Clone)]
pub(crate) struct TenantRule {
    from: TenantFrom,
    /// Issuer names (`{tenantid}` standing for the tenant) the token must
    /// come from; empty: any.
    issuers: Vec<Box<str>>,
    info: RuleInfo,
}

impl TenantRule {
    fn new(from: TenantFrom) -> Self {
        Self {
            from,
            issuers: Vec::new(),
            info: RuleInfo {
                rule: "tenant",
                ..RuleInfo::default()
            },
        }
    }

    pub(crate) fn segment(index: usize) -> Self {
        Self::new(TenantFrom::Segment(index))
    }

    pub(crate) fn header(name: HeaderName) -> Self {
        Self::new(TenantFrom::Header(name))
    }

    pub(crate) fn host() -> Self {
        Self::new(TenantFrom::Host)
    }

    pub(crate) fn issued_by(mut self, issuer: String) -> Self {
        self.issuers.push(issuer.into_boxed_str());
        self
    }

    /// Whether the token comes from an issuer this rule binds its tenants
    /// to (any, when none is named).
    ///
    /// SECURITY: a tenant is a name in its issuer's namespace. When several
    /// issuers are trusted, one may name a tenant that is another's
    /// customer; binding the rule to the tenant's own issuer name keeps
    /// them apart.
    fn issuer_ok(&self, claims: &Claims, tenant: &str) -> bool {
        if self.issuers.is_empty() {
            return true;
        }
        let Some(iss) = claims.iss() else {
            return false;
        };
        self.issuers
            .iter()
            .any(|name| match name.split_once("{tenantid}") {
                Some((prefix, suffix)) => {
                    iss.strip_prefix(prefix)
                        .and_then(|rest| rest.strip_suffix(suffix))
                        == Some(tenant)
                }
                None => **name == *iss,
            })
    }

    /// Whether the request names tenant `token`; `Err` when it names its
    /// tenant ambiguously.
    fn named(&self, req: RuleRequest<'_>, token: &str) -> Result<bool, Reason> {
        Ok(match &self.from {
            TenantFrom::Segment(i) => req
                .uri
                .path()
                .split('/')
                .skip(1)
                .nth(*i)
                .and_then(|raw| percent_encoding::percent_decode_str(raw).decode_utf8().ok())
                // SECURITY: compared decoded, as the handler's path
                // extractor will see it: `%61cme` names tenant `acme`.
                .is_some_and(|named| !named.is_empty() && named == token),
            TenantFrom::Header(name) => {
                let mut values = req.headers.get_all(name).iter();
                // SECURITY: two values would let the request name two tenants.
                match (values.next(), values.next()) {
                    (Some(v), None) => v.as_bytes() == token.as_bytes() && !token.is_empty(),
                    (Some(_), Some(_)) => return Err(Reason::AmbiguousTenant),
                    (None, _) => false,
                }
            }
            TenantFrom::Host => host(req)?
                .as_deref()
                .and_then(|h| h.split('.').next())
                .is_some_and(|label| !label.is_empty() && label.eq_ignore_ascii_case(token)),
        })
    }
}

/// The host the request names, without a port (`None`: it names none);
/// `Err` when the places it names one disagree or cannot be read.
///
/// SECURITY: frameworks and proxies read the host from different places in
/// different orders (`axum_extra`'s `Host` takes `Forwarded`, then
/// `X-Forwarded-Host`, then `Host`, then the URI). Checking one of them
/// while the handler reads another would bind the token to one tenant and
/// serve another, so every place present must name the same host (ASCII
/// case-insensitive, ports ignored as the tenant label ignores them), and
/// each value of a list counts.
fn host(req: RuleRequest<'_>) -> Result<Option<Cow<'_, str>>, Reason> {
    let ambiguous = || Reason::AmbiguousTenant;
    let mut hosts = Hosts::default();
    for value in req.headers.get_all(http::header::FORWARDED) {
        let value = value.to_str().map_err(|_| ambiguous())?;
        forwarded_hosts(value, &mut hosts).ok_or_else(ambiguous)?;
    }
    for value in req.headers.get_all("x-forwarded-host") {
        for h in value.to_str().map_err(|_| ambiguous())?.split(',') {
            hosts.add(Cow::Borrowed(h.trim()));
        }
    }
    if let Some(h) = req.uri.host() {
        hosts.add(Cow::Borrowed(h));
    }
    for value in req.headers.get_all(http::header::HOST) {
        let value = value.to_str().map_err(|_| ambiguous())?;
        hosts.add(Cow::Borrowed(value.trim()));
    }
    if hosts.agree {
        Ok(hosts.first)
    } else {
        Err(ambiguous())
    }
}

/// The hosts named so far: the first one, and whether all agree with it.
struct Hosts<'a> {
    first: Option<Cow<'a, str>>,
    agree: bool,
}

impl Default for Hosts<'_> {
    fn default() -> Self {
        Self {
            first: None,
            agree: true,
        }
    }
}

impl<'a> Hosts<'a> {
    fn add(&mut self, raw: Cow<'a, str>) {
        let host = match raw {
            Cow::Borrowed(h) => Cow::Borrowed(without_port(h)),
            Cow::Owned(h) => Cow::Owned(without_port(&h).to_owned()),
        };
        match &self.first {
            None => self.first = Some(host),
            Some(first) => self.agree &= first.eq_ignore_ascii_case(&host),
        }
    }
}

fn without_port(raw: &str) -> &str {
    raw.rsplit_once(':').map_or(raw, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            raw
        }
    })
}

/// Adds the `host=` parameters of one `Forwarded` header value (RFC 7239:
/// elements separated by `,`, pairs by `;`, values tokens or quoted
/// strings). `None` when the value cannot be parsed, or when parsers could
/// read it differently.
///
/// SECURITY: a quoted string hides `,`, `;` and `=` from an RFC 7239 parser
/// but not from a naive one (`axum_extra`'s `Host` splits on `,` and `;`
/// and trims quotes, so `for="x;host=evil"` names the host `evil` to it and
/// none to RFC 7239), and a `\` escape is undone by one and kept by the
/// other (`"ac\me"`). Every plausible reading must name the same host, so a
/// quoted string holding any of these is refused, and the `host=` a naive
/// split finds counts as well as the one RFC 7239 finds.
fn forwarded_hosts<'a>(value: &'a str, hosts: &mut Hosts<'a>) -> Option<()> {
    let mut quoted = false;
    for b in value.bytes() {
        match b {
            b'"' => quoted = !quoted,
            b',' | b';' | b'=' | b'\\' if quoted => return None,
            _ => {}
        }
    }
    if quoted {
        return None;
    }
    // No separator is quoted now, so splitting on them is the RFC reading.
    let naive = |text: &'a str| text.trim_matches(|c: char| c.is_whitespace() || c == '"');
    for pair in value.split([',', ';']) {
        let Some((name, value)) = pair.split_once('=') else {
            // Empty list elements are allowed; a name without a value is not.
            if pair.trim().is_empty() {
                continue;
            }
            return None;
        };
        if name.trim().eq_ignore_ascii_case("host") {
            hosts.add(Cow::Borrowed(unquote(value.trim())?));
        }
        if naive(name).eq_ignore_ascii_case("host") {
            hosts.add(Cow::Borrowed(naive(value)));
        }
    }
    Some(())
}

/// A token as it is, a quoted string (without escapes) without its quotes.
fn unquote(value: &str) -> Option<&str> {
    match value.strip_prefix('"') {
        None => (!value.contains('"')).then_some(value),
        Some(inner) => inner
            .strip_suffix('"')
            .filter(|inner| !inner.contains(['"', '\\'])),
    }
}

impl Rule for TenantRule {
    fn decide(&self, req: RuleRequest<'_>, claims: &Claims) -> (Result<(), Reason>, &RuleInfo) {
        let decision = match claims.tenant() {
            None => Err(tenant_absent(claims)),
            Some(t) => match self.named(req, t) {
                Ok(true) if self.issuer_ok(claims, t) => Ok(()),
                Ok(_) => Err(Reason::TenantMismatch),
                Err(reason) => Err(reason),
            },
        };
        (decision, &self.info)
    }

    fn checked(&self, claims: &Claims) -> Option<CheckedTenant> {
        claims.tenant()?;
        Some(CheckedTenant(claims.standard_arc()))
    }

    fn info(&self, _: RuleRequest<'_>) -> &RuleInfo {
        &self.info
    }
}

/// The table of [`MethodRulesLayer`](crate::MethodRulesLayer): a policy
/// per gRPC method, and one for the rest (deny unless set).
#[derive(Debug, Clone, Default)]
pub(crate) struct MethodTable {
    methods: Vec<(String, PolicyRuleEntry)>,
    default: Option<PolicyRuleEntry>,
    deny: PolicyRuleEntry,
}

#[derive(Debug, Clone)]
struct PolicyRuleEntry {
    policy: Policy,
    info: RuleInfo,
}

impl Default for PolicyRuleEntry {
    fn default() -> Self {
        let policy = Policy::deny();
        let info = policy.info("grpc_method");
        Self { policy, info }
    }
}

impl MethodTable {
    /// Requires `policy` for the method at `path` (exact match, e.g.
    /// `/orders.v1.Orders/CreateOrder`). A later entry for the same path
    /// replaces the earlier one.
    #[must_use]
    pub(crate) fn method(mut self, path: String, policy: Policy) -> Self {
        let info = policy.info("grpc_method");
        self.methods.retain(|(p, _)| *p != path);
        self.methods.push((path, PolicyRuleEntry { policy, info }));
        self
    }

    /// The policy for methods not listed. Defaults to deny.
    #[must_use]
    pub(crate) fn default_policy(mut self, policy: Policy) -> Self {
        let info = policy.info("grpc_method");
        self.default = Some(PolicyRuleEntry { policy, info });
        self
    }
}

impl MethodTable {
    fn entry(&self, req: RuleRequest<'_>) -> Option<&PolicyRuleEntry> {
        let path = req.uri.path();
        self.methods
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, entry)| entry)
            .or(self.default.as_ref())
    }
}

impl Rule for MethodTable {
    fn decide(&self, req: RuleRequest<'_>, claims: &Claims) -> (Result<(), Reason>, &RuleInfo) {
        match self.entry(req) {
            Some(entry) => (entry.policy.decide(req, claims), &entry.info),
            None => (Err(Reason::MethodNotAllowed), &self.deny.info),
        }
    }

    fn info(&self, req: RuleRequest<'_>) -> &RuleInfo {
        self.entry(req).map_or(&self.deny.info, |entry| &entry.info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClaimSources;

    fn claims(json: &str) -> Claims {
        Claims::from_json(json).unwrap()
    }

    #[test]
    fn any_of_roles_alone_denies_with_missing_role() {
        let p = Policy::any([Policy::roles_all(["a"]), Policy::roles_all(["b"])]);
        assert_eq!(
            p.check(&claims(r#"{"roles":["c"]}"#)),
            Err(Reason::MissingRole)
        );
        assert_eq!(p.check(&claims(r#"{"roles":["b"]}"#)), Ok(()));
    }

    #[test]
    fn mixed_any_denies_with_policy_denied() {
        let p = Policy::any([Policy::roles_all(["a"]), Policy::scopes_all(["s"])]);
        assert_eq!(
            p.check(&claims(r#"{"roles":["c"]}"#)),
            Err(Reason::PolicyDenied)
        );
    }

    #[test]
    fn not_inverts_and_all_reports_the_first_failure() {
        let p = Policy::all([
            Policy::not(Policy::roles_any(["banned"])),
            Policy::scopes_all(["s"]),
        ]);
        assert_eq!(
            p.check(&claims(r#"{"roles":["banned"],"scope":"s"}"#)),
            Err(Reason::PolicyDenied)
        );
        assert_eq!(
            p.check(&claims(r#"{"roles":["x"]}"#)),
            Err(Reason::InsufficientScope)
        );
        assert_eq!(p.check(&claims(r#"{"scope":"s"}"#)), Ok(()));
    }

    #[test]
    fn empty_all_allows_and_empty_any_denies() {
        let c = claims("{}");
        assert_eq!(Policy::all([]).check(&c), Ok(()));
        assert_eq!(Policy::any([]).check(&c), Err(Reason::PolicyDenied));
        assert_eq!(
            Policy::scopes_any(Vec::<String>::new()).check(&c),
            Err(Reason::InsufficientScope)
        );
    }

    #[test]
    fn scopes_of_the_wrong_shape_deny_with_insufficient_scope_but_not_of_them_with_claim_shape() {
        let c = claims(r#"{"scope":["orders:read"]}"#);
        let read = Policy::scopes_all(["orders:read"]);
        assert_eq!(read.check(&c), Err(Reason::InsufficientScope));
        assert_eq!(
            Policy::all([read.clone(), Policy::allow()]).check(&c),
            Err(Reason::InsufficientScope)
        );
        assert_eq!(Policy::not(read.clone()).check(&c), Err(Reason::ClaimShape));
        assert_eq!(
            Policy::all([read, Policy::roles_any(["a"])])
                .check(&claims(r#"{"scope":["x"],"roles":"a"}"#)),
            Err(Reason::ClaimShape)
        );
    }

    #[test]
    fn roles_of_the_wrong_shape_deny_with_claim_shape() {
        let c = claims(r#"{"roles":"admin"}"#);
        assert!(c.roles().is_empty());
        assert_eq!(
            Policy::roles_all(["admin"]).check(&c),
            Err(Reason::ClaimShape)
        );
    }

    #[test]
    fn tenant_of_the_wrong_shape_denies_with_claim_shape() {
        for json in [r#"{"tenant":7}"#, r#"{"tenant":{"id":"acme"}}"#] {
            let c = claims(json);
            assert_eq!(c.tenant(), None);
            assert_eq!(
                Policy::tenant_in(["acme", "7"]).check(&c),
                Err(Reason::ClaimShape)
            );
        }
        assert_eq!(
            Policy::tenant_in(["acme"]).check(&claims("{}")),
            Err(Reason::TenantMissing)
        );
        assert_eq!(
            Policy::tenant_in(["acme"]).check(&claims(r#"{"tenant":"other"}"#)),
            Err(Reason::TenantNotAllowed)
        );
    }

    #[test]
    fn not_of_an_odd_shaped_claim_is_unknown_and_denies_with_claim_shape() {
        let p = Policy::not(Policy::roles_any(["banned"]));
        for json in [
            r#"{"roles":"banned"}"#,
            r#"{"roles":["banned",1]}"#,
            r#"{"roles":7}"#,
        ] {
            assert_eq!(p.check(&claims(json)), Err(Reason::ClaimShape), "{json}");
        }
        assert_eq!(p.check(&claims("{}")), Ok(()));
        assert_eq!(p.check(&claims(r#"{"roles":null}"#)), Ok(()));
        assert_eq!(
            Policy::not(Policy::scopes_any(["admin"])).check(&claims(r#"{"scp":{"admin":1}}"#)),
            Err(Reason::ClaimShape)
        );
        assert_eq!(
            Policy::not(Policy::tenant_in(["acme"])).check(&claims(r#"{"tenant":["acme"]}"#)),
            Err(Reason::ClaimShape)
        );
        assert_eq!(
            Policy::not(Policy::tenant_in(["acme"])).check(&claims("{}")),
            Ok(())
        );
    }

    #[test]
    fn a_claims_predicate_saying_no_over_an_odd_shaped_claim_is_unknown() {
        let banned = Policy::claims("banned", |c| c.has_role("banned"));
        let not_banned = Policy::not(banned.clone());
        for json in [
            r#"{"roles":"banned"}"#,
            r#"{"roles":["banned",1]}"#,
            r#"{"roles":{"banned":true}}"#,
            // Whichever slot is odd: the predicate may read any of them.
            r#"{"scope":["s"]}"#,
            r#"{"tenant":7}"#,
        ] {
            let c = claims(json);
            assert_eq!(not_banned.check(&c), Err(Reason::ClaimShape), "{json}");
            // A plain no still denies.
            assert_eq!(banned.check(&c), Err(Reason::ClaimShape), "{json}");
        }
        // Well-formed claims are known either way.
        assert_eq!(not_banned.check(&claims("{}")), Ok(()));
        assert_eq!(not_banned.check(&claims(r#"{"roles":["user"]}"#)), Ok(()));
        assert_eq!(
            not_banned.check(&claims(r#"{"roles":["banned"]}"#)),
            Err(Reason::PolicyDenied)
        );
        assert_eq!(
            banned.check(&claims(r#"{"roles":["user"]}"#)),
            Err(Reason::PolicyDenied)
        );
        // A predicate saying yes holds whatever else is odd.
        let c = claims(r#"{"roles":"x","sub":"alice"}"#);
        let alice = Policy::claims("alice", |c| c.sub() == Some("alice"));
        assert_eq!(alice.check(&c), Ok(()));
        assert_eq!(Policy::not(alice).check(&c), Err(Reason::PolicyDenied));
    }

    #[derive(Debug, serde::Deserialize)]
    struct Mine {
        plan: String,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Other {}

    fn mine(json: &str) -> Claims<Mine> {
        Claims::from_json(json).unwrap()
    }

    fn pro() -> Policy {
        Policy::claims_as::<Mine>("pro", |c| c.extra().plan == "pro")
    }

    #[test]
    fn claims_as_reads_your_own_claims_type() {
        assert_eq!(pro().check_typed(&mine(r#"{"plan":"pro"}"#)), Ok(()));
        assert!(pro().allows(&mine(r#"{"plan":"pro"}"#)));
        assert_eq!(
            pro().check_typed(&mine(r#"{"plan":"free"}"#)),
            Err(Reason::PolicyDenied)
        );
        assert_eq!(
            Policy::not(pro()).check_typed(&mine(r#"{"plan":"free"}"#)),
            Ok(())
        );
        // Beside the standard rules, over the same claims.
        let both = Policy::all([pro(), Policy::scopes_all(["s"])]);
        assert_eq!(
            both.check_typed(&mine(r#"{"plan":"pro","scope":"s"}"#)),
            Ok(())
        );
        assert_eq!(
            both.check_typed(&mine(r#"{"plan":"pro"}"#)),
            Err(Reason::InsufficientScope)
        );
        assert_eq!(
            format!("{:?}", pro()),
            format!("claims_as::<{}>(\"pro\")", std::any::type_name::<Mine>())
        );
    }

    #[test]
    fn claims_as_over_a_type_the_claims_are_not_denies_and_so_does_its_not() {
        let wrong = Policy::claims_as::<Other>("other", |_| true);
        let c = mine(r#"{"plan":"pro","scope":"s"}"#);
        assert_eq!(wrong.check_typed(&c), Err(Reason::ClaimsTypeMismatch));
        assert_eq!(
            Policy::not(wrong.clone()).check_typed(&c),
            Err(Reason::ClaimsTypeMismatch)
        );
        assert!(!Policy::not(wrong.clone()).allows(&c));
        // The standard view is not your type either.
        assert_eq!(
            pro().check(&claims(r#"{"plan":"pro"}"#)),
            Err(Reason::ClaimsTypeMismatch)
        );
        assert_eq!(
            Policy::not(pro()).check(&claims(r#"{"plan":"pro"}"#)),
            Err(Reason::ClaimsTypeMismatch)
        );
        // Kleene: unknown beside a yes in `any` does not matter, beside a
        // no in `all` neither; otherwise the wiring mistake is the reason.
        assert_eq!(
            Policy::any([wrong.clone(), Policy::scopes_all(["s"])]).check_typed(&c),
            Ok(())
        );
        assert_eq!(
            Policy::all([wrong.clone(), Policy::scopes_all(["t"])]).check_typed(&c),
            Err(Reason::InsufficientScope)
        );
        assert_eq!(
            Policy::all([wrong.clone(), Policy::scopes_all(["s"])]).check_typed(&c),
            Err(Reason::ClaimsTypeMismatch)
        );
        assert_eq!(
            Policy::any([Policy::roles_all(["a"]), wrong.clone()])
                .check_typed(&mine(r#"{"plan":"x","roles":"a"}"#)),
            Err(Reason::ClaimsTypeMismatch),
            "beside an odd-shaped claim, the wiring mistake is named"
        );
        assert_eq!(
            Policy::any([wrong, Policy::roles_all(["a"])])
                .check_typed(&mine(r#"{"plan":"x","roles":"a"}"#)),
            Err(Reason::ClaimsTypeMismatch)
        );
    }

    #[test]
    fn a_claims_as_predicate_saying_no_over_an_odd_shaped_claim_is_unknown() {
        let c = mine(r#"{"plan":"free","roles":"banned"}"#);
        assert_eq!(pro().check_typed(&c), Err(Reason::ClaimShape));
        assert_eq!(Policy::not(pro()).check_typed(&c), Err(Reason::ClaimShape));
        assert_eq!(
            pro().check_typed(&mine(r#"{"plan":"pro","roles":"banned"}"#)),
            Ok(())
        );
    }

    #[test]
    fn any_and_all_follow_kleene_logic_over_unknown_parts() {
        let odd = claims(r#"{"roles":"admin","scope":"s"}"#);
        let unknown = Policy::roles_all(["admin"]);
        let yes = Policy::scopes_all(["s"]);
        let no = Policy::scopes_all(["t"]);
        assert_eq!(
            Policy::any([unknown.clone(), yes.clone()]).check(&odd),
            Ok(())
        );
        assert_eq!(
            Policy::any([no.clone(), unknown.clone()]).check(&odd),
            Err(Reason::ClaimShape)
        );
        assert_eq!(
            Policy::all([unknown.clone(), no.clone()]).check(&odd),
            Err(Reason::InsufficientScope)
        );
        assert_eq!(
            Policy::all([yes, unknown.clone()]).check(&odd),
            Err(Reason::ClaimShape)
        );
        // Nothing wanted needs nothing from the claim.
        assert_eq!(Policy::roles_all(Vec::<String>::new()).check(&odd), Ok(()));
        assert_eq!(
            Policy::roles_any(Vec::<String>::new()).check(&odd),
            Err(Reason::MissingRole)
        );
        // A role the odd claim's well-formed sibling source grants is known.
        let sources = ClaimSources::rfc9068().roles([
            crate::ClaimPath::new("roles", crate::ValueShape::Array),
            crate::ClaimPath::new("groups", crate::ValueShape::Array),
        ]);
        let partly =
            Claims::from_json_with(r#"{"roles":["admin"],"groups":"x"}"#, &sources).unwrap();
        assert_eq!(Policy::roles_any(["admin"]).check(&partly), Ok(()));
        assert_eq!(
            Policy::roles_all(["admin", "x"]).check(&partly),
            Err(Reason::ClaimShape)
        );
        assert_eq!(
            Policy::not(Policy::roles_any(["admin"])).check(&partly),
            Err(Reason::PolicyDenied)
        );
    }

    #[test]
    fn audit_info_names_every_scope_and_role_mentioned() {
        let p = Policy::any([Policy::roles_all(["admin"]), Policy::scopes_all(["a", "b"])]);
        let info = p.info("policy");
        assert_eq!(info.scopes.as_deref(), Some("a b"));
        assert_eq!(info.roles.as_deref(), Some("admin"));
    }

    fn req<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> RuleRequest<'a> {
        static NONE: std::sync::LazyLock<Extensions> = std::sync::LazyLock::new(Extensions::new);
        RuleRequest {
            uri,
            headers,
            extensions: &NONE,
            claims_type: None,
        }
    }

    #[test]
    fn tenant_segment_is_compared_percent_decoded() {
        let rule = TenantRule::segment(1);
        let c = claims(r#"{"tenant":"acme"}"#);
        let h = HeaderMap::new();
        for (path, ok) in [
            ("/tenants/acme/orders/1", true),
            ("/tenants/%61cme/orders/1", true),
            ("/tenants/other/orders/1", false),
            ("/tenants/", false),
            ("/tenants/acme%2F/orders", false),
        ] {
            let uri: Uri = path.parse().unwrap();
            assert_eq!(rule.decide(req(&uri, &h), &c).0.is_ok(), ok, "{path}");
        }
        let literal = claims(r#"{"tenant":"%61cme"}"#);
        let uri: Uri = "/tenants/%61cme/x".parse().unwrap();
        assert_eq!(
            rule.decide(req(&uri, &h), &literal).0,
            Err(Reason::TenantMismatch)
        );
    }

    #[test]
    fn tenant_header_must_be_single_and_equal() {
        let rule = TenantRule::header(HeaderName::from_static("x-tenant"));
        let c = claims(r#"{"tenant":"acme"}"#);
        let uri: Uri = "/".parse().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(
            rule.decide(req(&uri, &h), &c).0,
            Err(Reason::TenantMismatch)
        );
        h.insert("x-tenant", "acme".parse().unwrap());
        assert_eq!(rule.decide(req(&uri, &h), &c).0, Ok(()));
        h.append("x-tenant", "acme".parse().unwrap());
        assert_eq!(
            rule.decide(req(&uri, &h), &c).0,
            Err(Reason::AmbiguousTenant)
        );
    }

    #[test]
    fn tenant_host_sources_must_all_name_the_same_host() {
        let rule = TenantRule::host();
        let c = claims(r#"{"tenant":"acme"}"#);
        let decide = |uri: &str, headers: &[(&str, &str)]| {
            let uri: Uri = uri.parse().unwrap();
            let mut h = HeaderMap::new();
            for (name, value) in headers {
                h.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    value.parse().unwrap(),
                );
            }
            rule.decide(req(&uri, &h), &c).0
        };
        let ok = [
            ("/x", vec![("forwarded", "host=acme.shop")]),
            (
                "/x",
                vec![
                    ("forwarded", "for=a, host=\"ACME.shop:1\";proto=https"),
                    ("host", "acme.shop"),
                ],
            ),
            (
                "/x",
                vec![
                    ("forwarded", "for=\"[2001:db8::1]:4711\";host=acme.shop"),
                    ("host", "acme.shop"),
                ],
            ),
            (
                "/x",
                vec![("x-forwarded-host", "acme.shop , acme.shop:8080")],
            ),
            ("http://acme.shop/x", vec![("host", "ACME.shop")]),
            ("/x", vec![("forwarded", ",;for=a"), ("host", "acme.shop")]),
        ];
        for (uri, headers) in ok {
            assert_eq!(decide(uri, &headers), Ok(()), "{uri} {headers:?}");
        }
        let ambiguous = [
            ("http://evil.shop/x", vec![("host", "acme.shop")]),
            ("/x", vec![("host", "acme.shop"), ("host", "evil.shop")]),
            (
                "/x",
                vec![("x-forwarded-host", "acme.shop,"), ("host", "acme.shop")],
            ),
            (
                "/x",
                vec![("forwarded", "host=\"acme.shop"), ("host", "acme.shop")],
            ),
            ("/x", vec![("forwarded", "host"), ("host", "acme.shop")]),
            // Quoted strings that naive parsers split differently: every
            // reading must agree, so none may hide a separator or escape.
            (
                "/x",
                vec![("forwarded", "host=\"ac\\me.shop\""), ("host", "acme.shop")],
            ),
            (
                "/x",
                vec![("forwarded", "for=\"a,host=evil\""), ("host", "acme.shop")],
            ),
            (
                "/x",
                vec![
                    ("forwarded", "for=\"x;host=globex.example\""),
                    ("host", "acme.shop"),
                ],
            ),
            (
                "/x",
                vec![("forwarded", "for=\"a=b\""), ("host", "acme.shop")],
            ),
            // A name only a naive reading takes for `host`.
            (
                "/x",
                vec![("forwarded", "\"host\"=evil.shop"), ("host", "acme.shop")],
            ),
            (
                "/x",
                vec![("forwarded", "for=\"x\\\"\""), ("host", "acme.shop")],
            ),
            (
                "/x",
                vec![("forwarded", "host=a\"b"), ("host", "acme.shop")],
            ),
            (
                "/x",
                vec![
                    ("forwarded", "host=evil.shop"),
                    ("x-forwarded-host", "acme.shop"),
                ],
            ),
        ];
        for (uri, headers) in ambiguous {
            assert_eq!(
                decide(uri, &headers),
                Err(Reason::AmbiguousTenant),
                "{uri} {headers:?}"
            );
        }
        assert_eq!(decide("/x", &[]), Err(Reason::TenantMismatch));
    }

    #[test]
    fn a_tenant_rule_bound_to_issuers_refuses_tokens_of_others() {
        let rule = TenantRule::host()
            .issued_by("https://login.b/{tenantid}/v2.0".into())
            .issued_by("https://c.test".into());
        let uri: Uri = "/x".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("host", "acme.shop".parse().unwrap());
        for (iss, ok) in [
            ("https://login.b/acme/v2.0", true),
            ("https://c.test", true),
            ("https://login.b/globex/v2.0", false),
            ("https://login.b/acme/v2.0/", false),
            ("https://a.test", false),
        ] {
            let c = claims(&format!(r#"{{"tenant":"acme","iss":"{iss}"}}"#));
            let want = if ok {
                Ok(())
            } else {
                Err(Reason::TenantMismatch)
            };
            assert_eq!(rule.decide(req(&uri, &h), &c).0, want, "{iss}");
        }
        assert_eq!(
            rule.decide(req(&uri, &h), &claims(r#"{"tenant":"acme"}"#))
                .0,
            Err(Reason::TenantMismatch)
        );
    }

    #[test]
    fn a_checked_tenant_carries_the_tokens_tenant_and_issuer() {
        let c = claims(r#"{"tenant":"acme","iss":"https://a.test"}"#);
        let t = TenantRule::host().checked(&c).unwrap();
        assert_eq!((t.as_str(), t.issuer()), ("acme", Some("https://a.test")));
        assert_eq!(t.to_string(), "acme");
        assert!(TenantRule::host().checked(&claims("{}")).is_none());
        assert!(PolicyRule::new(Policy::allow()).checked(&c).is_none());
    }

    #[test]
    fn tenant_host_uses_the_first_label_without_port() {
        let rule = TenantRule::host();
        let c = claims(r#"{"tenant":"acme"}"#);
        let uri: Uri = "/x".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("host", "ACME.shop.test:8443".parse().unwrap());
        assert_eq!(rule.decide(req(&uri, &h), &c).0, Ok(()));
        h.insert("host", "evil.shop.test".parse().unwrap());
        assert_eq!(
            rule.decide(req(&uri, &h), &c).0,
            Err(Reason::TenantMismatch)
        );
        assert_eq!(
            rule.decide(req(&uri, &h), &claims("{}")).0,
            Err(Reason::TenantMissing)
        );
    }

    #[test]
    fn unlisted_methods_are_denied_unless_a_default_is_declared() {
        let rules = MethodTable::default().method("/p.S/Get".into(), Policy::scopes_all(["r"]));
        let h = HeaderMap::new();
        let c = claims(r#"{"scope":"r"}"#);
        let get: Uri = "/p.S/Get".parse().unwrap();
        let other: Uri = "/p.S/Delete".parse().unwrap();
        assert_eq!(rules.decide(req(&get, &h), &c).0, Ok(()));
        assert_eq!(
            rules.decide(req(&other, &h), &c).0,
            Err(Reason::MethodNotAllowed)
        );
        let open = rules.default_policy(Policy::allow());
        assert_eq!(open.decide(req(&other, &h), &c).0, Ok(()));
    }
}
