//! Authorization: claims of real providers' shapes, rule layers over HTTP,
//! tenant templates, the routes of `common::orders_app`, and one audit
//! record per request.

use authlayer::test_util::TestIssuer;
use authlayer::{
    ClaimSources, Claims, Issuer, Policy, Reason, RequirePolicyLayer, RequireRolesLayer, Verifier,
    VerifyLayer,
};
use axum::Router;
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use crate::common::{LogBuffer, http_get, orders_token, serve_axum};

const AUD: &str = "urn:orders";

async fn verifier_with(issuer: &TestIssuer, sources: ClaimSources) -> Verifier {
    Verifier::builder()
        .issuer(issuer.issuer())
        .jwks_json(issuer.jwks_json())
        .audience(AUD)
        .claims(sources)
        .build()
        .await
        .unwrap()
}

/// One provider's token shape, a policy it must pass and one it must fail.
struct Case {
    name: &'static str,
    sources: ClaimSources,
    claims: serde_json::Value,
    allowed: Policy,
    denied: Policy,
    denied_reason: Reason,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "rfc9068",
            sources: ClaimSources::rfc9068(),
            claims: json!({"scope": "orders:read", "roles": ["admin"], "tenant": "acme"}),
            allowed: Policy::all([
                Policy::scopes_all(["orders:read"]),
                Policy::roles_all(["admin"]),
                Policy::tenant_in(["acme"]),
            ]),
            denied: Policy::roles_all(["root"]),
            denied_reason: Reason::MissingRole,
        },
        Case {
            name: "keycloak",
            sources: ClaimSources::keycloak("orders-api"),
            claims: json!({
                "scope": "profile orders:read",
                "realm_access": {"roles": ["offline_access", "user"]},
                "resource_access": {"orders-api": {"roles": ["admin"]}, "account": {"roles": ["manage-account"]}},
            }),
            allowed: Policy::roles_all(["user", "admin"]),
            denied: Policy::roles_any(["manage-account"]),
            denied_reason: Reason::MissingRole,
        },
        Case {
            name: "entra",
            sources: ClaimSources::entra(),
            claims: json!({"scp": "Orders.Read User.Read", "roles": ["Orders.Admin"], "tid": "t-1"}),
            allowed: Policy::all([
                Policy::scopes_all(["Orders.Read"]),
                Policy::roles_all(["Orders.Admin"]),
                Policy::tenant_in(["t-1"]),
            ]),
            denied: Policy::scopes_all(["Orders.Write"]),
            denied_reason: Reason::InsufficientScope,
        },
        Case {
            name: "auth0",
            sources: ClaimSources::auth0(),
            claims: json!({"scope": "openid", "permissions": ["read:orders"], "org_id": "org_9"}),
            allowed: Policy::all([
                Policy::roles_all(["read:orders"]),
                Policy::tenant_in(["org_9"]),
            ]),
            denied: Policy::tenant_in(["org_1"]),
            denied_reason: Reason::TenantNotAllowed,
        },
        Case {
            name: "okta",
            sources: ClaimSources::okta(),
            claims: json!({"scp": ["orders:read"], "groups": ["Everyone", "Admins"]}),
            allowed: Policy::all([
                Policy::scopes_all(["orders:read"]),
                Policy::roles_all(["Admins"]),
            ]),
            denied: Policy::roles_all(["Owners"]),
            denied_reason: Reason::MissingRole,
        },
        Case {
            name: "cognito",
            sources: ClaimSources::cognito(),
            claims: json!({"scope": "orders/read", "cognito:groups": ["admin"]}),
            allowed: Policy::all([
                Policy::scopes_all(["orders/read"]),
                Policy::roles_all(["admin"]),
            ]),
            denied: Policy::scopes_all(["orders/write"]),
            denied_reason: Reason::InsufficientScope,
        },
        Case {
            name: "authentik",
            sources: ClaimSources::authentik(),
            claims: json!({"groups": ["authentik Admins"], "roles": "ignored"}),
            allowed: Policy::roles_all(["authentik Admins"]),
            denied: Policy::roles_all(["ignored"]),
            denied_reason: Reason::MissingRole,
        },
        Case {
            name: "zitadel",
            sources: ClaimSources::zitadel(),
            claims: json!({
                "urn:zitadel:iam:org:project:roles": {"admin": {"2155": "acme.zitadel.cloud"}},
                "urn:zitadel:iam:user:resourceowner:id": "2155",
            }),
            allowed: Policy::all([Policy::roles_all(["admin"]), Policy::tenant_in(["2155"])]),
            denied: Policy::roles_all(["user"]),
            denied_reason: Reason::MissingRole,
        },
    ]
}

#[tokio::test]
async fn every_preset_reads_its_providers_token_shape_both_ways() {
    let issuer = TestIssuer::new("https://idp.test");
    for case in cases() {
        let verifier = verifier_with(&issuer, case.sources.clone()).await;
        let mut token = issuer.token().audience(AUD).sub("alice");
        for (name, value) in case.claims.as_object().unwrap() {
            token = token.claim(name, value.clone());
        }
        let claims = verifier.verify(&token.sign()).await.unwrap();
        assert_eq!(
            case.allowed.check(&claims),
            Ok(()),
            "{}: {claims:?}",
            case.name
        );
        assert_eq!(
            case.denied.check(&claims),
            Err(case.denied_reason),
            "{}: {claims:?}",
            case.name
        );
        // The default sources do not read the provider's layout.
        if case.name != "rfc9068" {
            let plain = verifier_with(&issuer, ClaimSources::rfc9068()).await;
            let claims = plain
                .verify(&{
                    let mut t = issuer.token().audience(AUD);
                    for (name, value) in case.claims.as_object().unwrap() {
                        t = t.claim(name, value.clone());
                    }
                    t.sign()
                })
                .await
                .unwrap();
            assert!(
                case.allowed.check(&claims).is_err(),
                "{} read by rfc9068",
                case.name
            );
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Mine {
    sub: String,
    plan: Option<String>,
    roles: Vec<String>,
}

#[tokio::test]
async fn a_user_type_naming_sub_works_through_the_layer_and_the_extractor() {
    let issuer = TestIssuer::new("https://idp.test");
    let verifier = verifier_with(&issuer, ClaimSources::rfc9068()).await;
    let app = Router::new()
        .route(
            "/mine",
            get(|c: Claims<Mine>| async move {
                format!(
                    "{} {:?} {:?}",
                    c.extra().sub,
                    c.extra().plan,
                    c.extra().roles
                )
            }),
        )
        .route(
            "/plain",
            get(|c: Claims| async move { c.sub().unwrap_or("").to_owned() }),
        )
        .route(
            "/other",
            get(|c: Claims<serde_json::Value>| async move { c.extra().to_string() }),
        )
        .layer(VerifyLayer::new(verifier).with_claims::<Mine>());
    let base = format!("http://{}", serve_axum(app).await);
    let http = reqwest::Client::new();
    let token = issuer
        .token()
        .audience(AUD)
        .sub("alice")
        .claim("plan", "pro")
        .claim("roles", json!(["buyer"]))
        .sign();
    let res = http_get(&http, &format!("{base}/mine"), Some(&token)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), r#"alice Some("pro") ["buyer"]"#);
    let res = http_get(&http, &format!("{base}/plain"), Some(&token)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "alice");

    // Another type than the layer's: the service's mistake, 500, not 401.
    let logs = LogBuffer::default();
    let res = {
        let _guard = logs.install();
        http_get(&http, &format!("{base}/other"), Some(&token)).await
    };
    assert_eq!(res.status(), 500);
    // A token without the user type's required `sub` fails its verification.
    let no_sub = issuer.token().audience(AUD).without("sub").sign();
    let res = http_get(&http, &format!("{base}/plain"), Some(&no_sub)).await;
    assert_eq!(res.status(), 401);
}

#[tokio::test(flavor = "current_thread")]
async fn a_claims_type_mismatch_is_logged_with_both_type_names() {
    use axum::extract::FromRequestParts;

    let issuer = TestIssuer::new("https://idp.test");
    let verifier = verifier_with(&issuer, ClaimSources::rfc9068()).await;
    let token = orders_token(&issuer)
        .sub("alice")
        .claim("roles", json!([]))
        .sign();
    let svc = VerifyLayer::new(verifier).with_claims::<Mine>();
    let inner = tower::service_fn(|req: http::Request<()>| async move {
        let (mut parts, ()) = req.into_parts();
        let err = Claims::<serde_json::Value>::from_request_parts(&mut parts, &())
            .await
            .unwrap_err();
        Ok::<_, std::convert::Infallible>(axum::response::IntoResponse::into_response(err))
    });
    let logs = LogBuffer::default();
    let _guard = logs.install();
    let mut req = http::Request::new(());
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let res = tower::ServiceExt::oneshot(tower::Layer::layer(&svc, inner), req)
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    let text = logs.contents();
    assert!(text.contains("Mine"), "{text}");
    assert!(text.contains("Value"), "{text}");
}

#[tokio::test]
async fn roles_and_policies_answer_403_over_http() {
    let issuer = TestIssuer::new("https://idp.test");
    let verifier = verifier_with(&issuer, ClaimSources::keycloak("orders")).await;
    let app = Router::new()
        .route(
            "/admin",
            get(|| async { "ok" }).route_layer(RequireRolesLayer::all(["admin"])),
        )
        .route(
            "/weekday",
            get(|| async { "ok" }).route_layer(RequirePolicyLayer::new(Policy::not(
                Policy::claims("blocked", |c| c.sub() == Some("mallory")),
            ))),
        )
        .layer(VerifyLayer::new(verifier));
    let base = format!("http://{}", serve_axum(app).await);
    let http = reqwest::Client::new();
    let admin = orders_token(&issuer)
        .sub("alice")
        .claim("resource_access", json!({"orders": {"roles": ["admin"]}}))
        .sign();
    let user = orders_token(&issuer)
        .sub("mallory")
        .claim("realm_access", json!({"roles": ["user"]}))
        .sign();
    assert_eq!(
        http_get(&http, &format!("{base}/admin"), Some(&admin))
            .await
            .status(),
        200
    );
    let res = http_get(&http, &format!("{base}/admin"), Some(&user)).await;
    assert_eq!(res.status(), 403);
    let challenge = crate::common::challenge(&res);
    assert!(!challenge.contains("insufficient_scope"), "{challenge}");
    assert_eq!(
        http_get(&http, &format!("{base}/weekday"), Some(&admin))
            .await
            .status(),
        200
    );
    assert_eq!(
        http_get(&http, &format!("{base}/weekday"), Some(&user))
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn tenant_templates_admit_listed_tenants_whose_tid_matches_and_never_fetch_for_others() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let template = "https://login.example/{tenantid}/v2.0";
    let verifier = Verifier::builder()
        .trust(
            Issuer::tenant_template(template)
                .tenants(["t-1", "t-2"])
                .jwks_url(server.jwks_url())
                .claims(ClaimSources::entra())
                .audience(AUD),
        )
        .allow_insecure_http(true)
        .build()
        .await
        .unwrap();
    let fetched = server.requests();
    let token = |iss: &str, tid: &str| {
        issuer
            .token()
            .audience(AUD)
            .claim("iss", iss)
            .claim("tid", tid)
            .sign()
    };
    let ok = verifier
        .verify(&token("https://login.example/t-1/v2.0", "t-1"))
        .await
        .unwrap();
    assert_eq!(ok.tenant(), Some("t-1"));
    assert!(
        verifier
            .verify(&token("https://login.example/t-2/v2.0", "t-2"))
            .await
            .is_ok()
    );
    let err = verifier
        .verify(&token("https://login.example/t-1/v2.0", "t-2"))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::IssuerTenantMismatch);
    for iss in [
        "https://login.example/t-3/v2.0",
        "https://login.example//v2.0",
        "https://login.example/t-1/x/v2.0",
        "https://login.example/{tenantid}/v2.0",
    ] {
        let err = verifier.verify(&token(iss, "t-3")).await.unwrap_err();
        assert_eq!(err.reason(), Reason::UnknownIssuer, "{iss}");
    }
    // A token naming a tenant that is not allowed, with an unknown kid,
    // still causes no fetch.
    issuer.add_key("new", authlayer::Algorithm::ES256);
    let unknown_kid = issuer
        .token()
        .key("new")
        .audience(AUD)
        .claim("iss", "https://login.example/t-9/v2.0")
        .claim("tid", "t-9")
        .sign();
    assert_eq!(
        verifier.verify(&unknown_kid).await.unwrap_err().reason(),
        Reason::UnknownIssuer
    );
    assert_eq!(server.requests(), fetched);
}

#[tokio::test]
async fn issuers_sharing_a_jwks_url_share_one_fetch() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let verifier = Verifier::builder()
        .trust(
            Issuer::new("https://a.test")
                .jwks_url(server.jwks_url())
                .audience(AUD),
        )
        .trust(
            Issuer::new("https://b.test")
                .jwks_url(server.jwks_url())
                .audience(AUD),
        )
        .allow_insecure_http(true)
        .build()
        .await
        .unwrap();
    assert_eq!(server.requests(), 1);
    for iss in ["https://a.test", "https://b.test"] {
        let token = issuer.token().audience(AUD).claim("iss", iss).sign();
        assert_eq!(verifier.verify(&token).await.unwrap().iss(), Some(iss));
    }
}

#[tokio::test]
async fn cognito_audience_is_checked_against_client_id_when_configured() {
    let issuer = TestIssuer::new("https://cognito-idp.test/pool");
    let verifier = Verifier::builder()
        .issuer(issuer.issuer())
        .jwks_json(issuer.jwks_json())
        .audience("app-client-1")
        .audience_from_client_id(true)
        .claims(ClaimSources::cognito())
        .build()
        .await
        .unwrap();
    let token = |client: &str| {
        issuer
            .token()
            .without("aud")
            .claim("client_id", client)
            .claim("token_use", "access")
            .sign()
    };
    assert!(verifier.verify(&token("app-client-1")).await.is_ok());
    let err = verifier.verify(&token("app-client-2")).await.unwrap_err();
    assert_eq!(err.reason(), Reason::WrongAudience);
    // `aud` naming the client does not stand in for `client_id`.
    let aud_only = issuer.token().audience("app-client-1").sign();
    assert_eq!(
        verifier.verify(&aud_only).await.unwrap_err().reason(),
        Reason::WrongAudience
    );
}

#[tokio::test(flavor = "current_thread")]
async fn exactly_one_audit_record_per_request_allowed_or_denied() {
    let issuer = TestIssuer::new("https://idp.test");
    let verifier = verifier_with(&issuer, ClaimSources::rfc9068()).await;
    let app = crate::common::orders_app(verifier);
    let call = |path: &str, token: Option<&str>| {
        let mut req = http::Request::get(path).header("x-request-id", "req-7");
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        tower::ServiceExt::oneshot(app.clone(), req.body(axum::body::Body::empty()).unwrap())
    };
    let reader = orders_token(&issuer)
        .sub("alice")
        .scope("orders:read")
        .claim("tenant", "acme")
        .sign();
    let logs = LogBuffer::default();
    let _guard = logs.install();
    let cases = [
        ("/orders/1", Some(reader.as_str()), "allow", "200"),
        ("/orders/1", None, "deny", "401"),
        ("/admin/orders", Some(reader.as_str()), "deny", "403"),
        (
            "/tenants/acme/orders/3",
            Some(reader.as_str()),
            "allow",
            "200",
        ),
        (
            "/tenants/evil/orders/3",
            Some(reader.as_str()),
            "deny",
            "403",
        ),
        ("/me", Some(reader.as_str()), "allow", "200"),
    ];
    for (path, token, _, status) in cases {
        let res = call(path, token).await.unwrap();
        assert_eq!(res.status().as_str(), status, "{path}");
    }
    let text = logs.contents();
    let records: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("authlayer::audit"))
        .collect();
    assert_eq!(records.len(), cases.len(), "{text}");
    for (record, (path, _, decision, status)) in records.iter().zip(cases) {
        assert!(
            record.contains(&format!("decision=\"{decision}\"")),
            "{record}"
        );
        assert!(record.contains(&format!("status={status}")), "{record}");
        assert!(record.contains(&format!("path=\"{path}\"")), "{record}");
        assert!(record.contains("request_id=\"req-7\""), "{record}");
        assert!(record.contains("schema_version=1"), "{record}");
        assert!(!record.contains(&reader), "token in audit record");
    }
    assert!(records[3].contains("rule=\"tenant\""), "{}", records[3]);
    assert!(
        records[4].contains("reason=\"tenant_mismatch\""),
        "{}",
        records[4]
    );
    assert!(
        records[2].contains("required_roles=\"admin\""),
        "{}",
        records[2]
    );
}

type IdpState = (
    String,
    String,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
);

/// Trusts the `multi_tenant_idp` at `base`: `t-…` tenants, at most two
/// keeping their keys.
async fn two_tenant_verifier(base: &str) -> Verifier {
    Verifier::builder()
        .trust(
            Issuer::tenant_template(format!("{base}/{{tenantid}}/v2.0"))
                .tenant_filter(|t| t.starts_with("t-"))
                .max_tenants(2)
                .claims(ClaimSources::entra())
                .audience(AUD),
        )
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn tenant_template_discovers_each_admitted_tenants_keys_on_demand_within_a_bound() {
    use std::sync::atomic::Ordering;

    let issuer = TestIssuer::new("pending");
    let (base, hits) = multi_tenant_idp(&issuer).await;
    let verifier = two_tenant_verifier(&base).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "nothing is fetched before a tenant shows up"
    );
    let token = |tenant: &str| {
        issuer
            .token()
            .audience(AUD)
            .claim("iss", format!("{base}/{tenant}/v2.0"))
            .claim("tid", tenant)
            .sign()
    };
    // First token of a tenant: discovery + JWKS of that tenant, then cached.
    assert_eq!(
        verifier.verify(&token("t-1")).await.unwrap().tenant(),
        Some("t-1")
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert!(verifier.verify(&token("t-1")).await.is_ok());
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // Concurrent first tokens of another tenant share one fetch.
    let t2 = token("t-2");
    let results = futures_join(&verifier, &t2, 20).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 4);
    // Not admitted: refused before any fetch.
    let err = verifier.verify(&token("x-1")).await.unwrap_err();
    assert_eq!(err.reason(), Reason::UnknownIssuer);
    // Admitted, past the bound: the least recently used tenant (t-1) makes
    // room, and comes back with a fetch of its own.
    assert!(verifier.verify(&token("t-3")).await.is_ok());
    assert_eq!(hits.load(Ordering::SeqCst), 6);
    let health = verifier.health();
    let loaded: Vec<_> = health.tenants[0]
        .loaded
        .iter()
        .map(|t| t.issuer.clone())
        .collect();
    assert_eq!(
        loaded,
        [format!("{base}/t-2/v2.0"), format!("{base}/t-3/v2.0")],
        "{health:?}"
    );
    assert!(health.ready && health.issuers.is_empty(), "{health:?}");
    assert!(verifier.verify(&token("t-1")).await.is_ok());
    assert_eq!(hits.load(Ordering::SeqCst), 8);
}

async fn futures_join(
    verifier: &Verifier,
    token: &str,
    n: usize,
) -> Vec<Result<Claims, authlayer::AuthError>> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let verifier = verifier.clone();
        let token = token.to_owned();
        set.spawn(async move { verifier.verify(&token).await });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

/// A multi-tenant identity provider on loopback: `/{tenant}/v2.0` issuers,
/// each with its own discovery document and key set, counting the requests
/// it answers. Tenants are real but for three kinds: `t-dead…` tenants name
/// a JWKS on a closed port, `t-plain…` tenants a plain-http JWKS on a remote
/// host (refused without a request), and `t-gone…` tenants have no
/// discovery document (404).
async fn multi_tenant_idp(
    issuer: &TestIssuer,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = (
        base.clone(),
        issuer.jwks_json(),
        std::sync::Arc::clone(&hits),
    );
    let app = Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(
                move |State((base, _, hits)): State<IdpState>, Path(tenant): Path<String>| async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let jwks_uri = if tenant.starts_with("t-gone") {
                        return StatusCode::NOT_FOUND.into_response();
                    } else if tenant.starts_with("t-dead") {
                        format!("{closed}/{tenant}/keys")
                    } else if tenant.starts_with("t-plain") {
                        format!("http://login.example/{tenant}/keys")
                    } else {
                        format!("{base}/{tenant}/keys")
                    };
                    axum::Json(json!({
                        "issuer": format!("{base}/{tenant}/v2.0"),
                        "jwks_uri": jwks_uri,
                    }))
                    .into_response()
                },
            ),
        )
        .route(
            "/{tenant}/keys",
            get(|State((_, jwks, hits)): State<IdpState>| async move {
                hits.fetch_add(1, Ordering::SeqCst);
                ([("content-type", "application/json")], jwks)
            }),
        )
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, hits)
}

#[tokio::test]
async fn forged_tokens_naming_unreal_tenants_neither_hold_tenant_slots_nor_clear_readiness() {
    let issuer = TestIssuer::new("pending");
    let (base, _hits) = multi_tenant_idp(&issuer).await;
    let verifier = two_tenant_verifier(&base).await;
    let signed_by = |signer: &TestIssuer, tenant: &str| {
        signer
            .token()
            .audience(AUD)
            .claim("iss", format!("{base}/{tenant}/v2.0"))
            .claim("tid", tenant)
            .sign()
    };
    assert!(
        verifier
            .verify(&signed_by(&issuer, "t-real-1"))
            .await
            .is_ok()
    );

    // Nobody signed these: a stranger's key, unknown to every tenant.
    let forger = TestIssuer::new("pending");
    for i in 0..20 {
        for kind in ["t-gone", "t-dead", "t-plain"] {
            let err = verifier
                .verify(&signed_by(&forger, &format!("{kind}-{i}")))
                .await
                .unwrap_err();
            assert_eq!(err.reason(), Reason::KeysUnavailable, "{kind}-{i}");
        }
    }
    // Repeating one costs no slot either.
    for _ in 0..5 {
        assert!(
            verifier
                .verify(&signed_by(&forger, "t-gone-0"))
                .await
                .is_err()
        );
    }
    let health = verifier.health();
    assert!(health.ready, "{health:?}");
    assert!(
        health.issuers.is_empty(),
        "tenant sources are reported apart"
    );
    let tenants = &health.tenants[0];
    assert_eq!(
        (tenants.loaded.len(), tenants.pending, tenants.failed),
        (1, 0, 60),
        "{tenants:?}"
    );

    // The tenant that was here still verifies, and a real one seen for the
    // first time after the flood gets a source of its own.
    assert!(
        verifier
            .verify(&signed_by(&issuer, "t-real-1"))
            .await
            .is_ok()
    );
    let ok = verifier
        .verify(&signed_by(&issuer, "t-real-2"))
        .await
        .unwrap();
    assert_eq!(ok.tenant(), Some("t-real-2"));
    assert!(verifier.health().ready, "{:?}", verifier.health());
}

const SHAPE: &str = "claim has an unexpected shape";

/// A route, the token's `roles` and `scope`, the status and a text the
/// challenge must contain.
type ShapeCase = (
    &'static str,
    Option<serde_json::Value>,
    Option<&'static str>,
    u16,
    Option<&'static str>,
);

/// The routes of the three-valued HTTP test, the token's `roles` and
/// `scope`, the status and a text the challenge must contain.
fn shape_cases() -> [ShapeCase; 17] {
    [
        ("/not-claims", Some(json!("banned")), None, 403, Some(SHAPE)),
        (
            "/not-claims",
            Some(json!(["banned", 1])),
            None,
            403,
            Some(SHAPE),
        ),
        ("/not-claims", None, None, 200, None),
        ("/not-claims", Some(json!(["user"])), None, 200, None),
        ("/not-claims", Some(json!(["banned"])), None, 403, None),
        // The confirmed cases: a string, and an array with a non-string.
        ("/not", Some(json!("banned")), None, 403, Some(SHAPE)),
        ("/not", Some(json!(["banned", 1])), None, 403, Some(SHAPE)),
        (
            "/not",
            Some(json!({"banned": true})),
            None,
            403,
            Some(SHAPE),
        ),
        // Absent is the empty set; a well-formed list is read.
        ("/not", None, None, 200, None),
        ("/not", Some(json!(["user"])), None, 200, None),
        ("/not", Some(json!(["user", "banned"])), None, 403, None),
        // any(true, unknown) = true; any(false, unknown) = unknown.
        (
            "/any",
            Some(json!("banned")),
            Some("orders:read"),
            200,
            None,
        ),
        ("/any", Some(json!("banned")), Some("x"), 403, Some(SHAPE)),
        // all(false, unknown) = false; all(true, unknown) = unknown.
        (
            "/all",
            Some(json!(["banned", 1])),
            Some("x"),
            403,
            Some("insufficient_scope"),
        ),
        (
            "/all",
            Some(json!(["banned", 1])),
            Some("orders:read"),
            403,
            Some(SHAPE),
        ),
        ("/all", None, Some("orders:read"), 200, None),
        (
            "/all",
            Some(json!(["banned"])),
            Some("orders:read"),
            403,
            None,
        ),
    ]
}

/// `not`, `any` and `all` (and `not` of a closure) over a claim of an
/// unexpected shape: three-valued, so "cannot tell" never turns into an
/// allow.
#[tokio::test]
async fn not_of_an_odd_shaped_claim_denies_with_claim_shape_over_http() {
    let issuer = TestIssuer::new("https://idp.test");
    let verifier = verifier_with(&issuer, ClaimSources::rfc9068()).await;
    let not_banned = || Policy::not(Policy::roles_any(["banned"]));
    let app = Router::new()
        .route(
            "/not",
            get(|| async { "ok" }).route_layer(RequirePolicyLayer::new(not_banned())),
        )
        // A closure's no over the odd claim (`has_role` cannot see it) is
        // unknown too.
        .route(
            "/not-claims",
            get(|| async { "ok" }).route_layer(RequirePolicyLayer::new(Policy::not(
                Policy::claims("banned", |c| c.has_role("banned")),
            ))),
        )
        .route(
            "/any",
            get(|| async { "ok" }).route_layer(RequirePolicyLayer::new(Policy::any([
                Policy::scopes_all(["orders:read"]),
                not_banned(),
            ]))),
        )
        .route(
            "/all",
            get(|| async { "ok" }).route_layer(RequirePolicyLayer::new(Policy::all([
                Policy::scopes_all(["orders:read"]),
                not_banned(),
            ]))),
        )
        .layer(VerifyLayer::new(verifier));
    let base = format!("http://{}", serve_axum(app).await);
    let http = reqwest::Client::new();
    let token = |roles: Option<serde_json::Value>, scope: Option<&str>| {
        let mut t = orders_token(&issuer).sub("alice");
        if let Some(roles) = roles {
            t = t.claim("roles", roles);
        }
        if let Some(scope) = scope {
            t = t.scope(scope);
        }
        t.sign()
    };
    for (path, roles, scope, status, challenge) in shape_cases() {
        let label = format!("{path} roles={roles:?} scope={scope:?}");
        let res = http_get(&http, &format!("{base}{path}"), Some(&token(roles, scope))).await;
        assert_eq!(res.status(), status, "{label}");
        if let Some(want) = challenge {
            let got = crate::common::challenge(&res);
            assert!(got.contains(want), "{label}: {got}");
        }
    }
}

/// A `/t` route behind `RequireTenantLayer::host()` answering the checked
/// tenant, on 127.0.0.1; returns its base URL and a token of tenant `acme`.
async fn tenant_host_server() -> (String, String) {
    let issuer = TestIssuer::new("https://idp.test");
    let verifier = verifier_with(&issuer, ClaimSources::rfc9068()).await;
    let app = Router::new()
        .route(
            "/t",
            get(checked_tenant).route_layer(authlayer::RequireTenantLayer::host()),
        )
        .layer(VerifyLayer::new(verifier));
    let base = format!("http://{}", serve_axum(app).await);
    let acme = orders_token(&issuer).claim("tenant", "acme").sign();
    (base, acme)
}

/// `RequireTenantLayer::host()` with a `Forwarded` value whose quoted strings
/// hide separators: RFC 7239 reads no `host=` in `for="x;host=globex.example"`,
/// a naive split (as `axum_extra`'s `Host` does) reads `globex.example`.
/// Readings that can differ are refused with 400; a quoted IPv6 `for=` is
/// still fine.
#[tokio::test]
async fn tenant_host_refuses_forwarded_quoted_strings_that_parsers_read_differently() {
    let (base, acme) = tenant_host_server().await;
    let http = reqwest::Client::new();
    for (forwarded, status) in [
        ("for=\"x;host=globex.example\"", 400),
        ("for=\"a,host=globex.example\"", 400),
        ("host=\"ac\\me.example\"", 400),
        ("for=\"[2001:db8::1]:4711\";host=acme.example", 200),
    ] {
        let res = http
            .get(format!("{base}/t"))
            .bearer_auth(&acme)
            .header("host", "acme.example")
            .header("forwarded", forwarded)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{forwarded}");
        if status == 400 {
            let challenge = crate::common::challenge(&res);
            assert!(
                challenge.contains("invalid_request"),
                "{forwarded}: {challenge}"
            );
        } else {
            assert_eq!(res.text().await.unwrap(), "acme from https://idp.test");
        }
    }
}

/// `RequireTenantLayer::host()` when the request names its host in several
/// places (`Forwarded`, `X-Forwarded-Host`, `Host`): they must agree, or the
/// request is malformed (400), since frameworks read them in different
/// orders and the handler may see another tenant than the rule checked.
#[tokio::test]
#[allow(clippy::too_many_lines)] // one table of header combinations
async fn tenant_host_sources_that_disagree_are_refused_with_400() {
    let (base, acme) = tenant_host_server().await;
    let http = reqwest::Client::new();
    let cases: &[(&[(&str, &str)], u16)] = &[
        (&[("host", "acme.example")], 200),
        (
            &[
                ("host", "acme.example"),
                ("x-forwarded-host", "ACME.example:8443"),
            ],
            200,
        ),
        (
            &[
                ("host", "acme.example:80"),
                (
                    "forwarded",
                    "for=192.0.2.1;host=\"acme.example:443\";proto=https",
                ),
            ],
            200,
        ),
        // The confirmed case, and the other way round.
        (
            &[
                ("host", "acme.example"),
                ("x-forwarded-host", "globex.example"),
            ],
            400,
        ),
        (
            &[
                ("host", "globex.example"),
                ("x-forwarded-host", "acme.example"),
            ],
            400,
        ),
        // Several values, as a list or as repeated headers.
        (
            &[
                ("host", "acme.example"),
                ("x-forwarded-host", "acme.example, globex.example"),
            ],
            400,
        ),
        (
            &[
                ("host", "acme.example"),
                ("x-forwarded-host", "acme.example"),
                ("x-forwarded-host", "globex.example"),
            ],
            400,
        ),
        (
            &[
                ("host", "acme.example"),
                ("forwarded", "for=192.0.2.1;host=globex.example"),
            ],
            400,
        ),
        (
            &[
                ("host", "acme.example"),
                ("forwarded", "host=acme.example, host=globex.example"),
            ],
            400,
        ),
        (
            &[
                ("host", "acme.example"),
                ("forwarded", "For=\"[2001:db8::1]\";HOST=globex.example"),
            ],
            400,
        ),
        (
            &[
                ("host", "acme.example"),
                ("x-forwarded-host", "acme.example"),
                ("forwarded", "host=globex.example"),
            ],
            400,
        ),
        // Agreeing on another tenant is a plain mismatch.
        (
            &[
                ("host", "globex.example"),
                ("x-forwarded-host", "globex.example"),
            ],
            403,
        ),
    ];
    for (headers, status) in cases {
        let mut req = http.get(format!("{base}/t")).bearer_auth(&acme);
        for (name, value) in *headers {
            req = req.header(*name, *value);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), *status, "{headers:?}");
        if *status == 200 {
            // The handler is handed the tenant that was checked.
            assert_eq!(res.text().await.unwrap(), "acme from https://idp.test");
        } else if *status == 400 {
            let challenge = crate::common::challenge(&res);
            assert!(
                challenge.contains("invalid_request"),
                "{headers:?}: {challenge}"
            );
        }
    }
}

async fn checked_tenant(
    axum::Extension(tenant): axum::Extension<authlayer::CheckedTenant>,
) -> String {
    format!("{tenant} from {}", tenant.issuer().unwrap_or("?"))
}

#[tokio::test]
async fn every_tenant_rule_hands_the_checked_tenant_to_the_handler() {
    let issuer = TestIssuer::new("https://idp.test");
    let verifier = verifier_with(&issuer, ClaimSources::rfc9068()).await;
    let app = Router::new()
        .route(
            "/tenants/{tenant}/x",
            get(checked_tenant).route_layer(authlayer::RequireTenantLayer::path_segment(1)),
        )
        .route(
            "/h",
            get(checked_tenant).route_layer(authlayer::RequireTenantLayer::header(
                http::HeaderName::from_static("x-tenant"),
            )),
        )
        .layer(VerifyLayer::new(verifier));
    let base = format!("http://{}", serve_axum(app).await);
    let http = reqwest::Client::new();
    let acme = orders_token(&issuer).claim("tenant", "acme").sign();
    let res = http_get(&http, &format!("{base}/tenants/%61cme/x"), Some(&acme)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "acme from https://idp.test");
    let res = http
        .get(format!("{base}/h"))
        .bearer_auth(&acme)
        .header("x-tenant", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "acme from https://idp.test");
    // Two values of the tenant header: ambiguous, 400.
    let res = http
        .get(format!("{base}/h"))
        .bearer_auth(&acme)
        .header("x-tenant", "acme")
        .header("x-tenant", "globex")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

/// Two trusted issuers whose tenants are different namespaces: a token
/// from one naming the other's tenant passes a plain tenant rule (the
/// tenant is only a string), and is refused once the rule binds the tenant
/// to its issuer.
#[tokio::test]
async fn a_tenant_rule_bound_to_an_issuer_refuses_the_same_tenant_from_another() {
    let a = TestIssuer::new("pending");
    let server = a.serve().await;
    let verifier = Verifier::builder()
        .trust(
            Issuer::new("https://a.test")
                .jwks_url(server.jwks_url())
                .audience(AUD),
        )
        .trust(
            Issuer::tenant_template("https://login.b.test/{tenantid}/v2.0")
                .tenants(["acme"])
                .jwks_url(server.jwks_url())
                .audience(AUD),
        )
        .allow_insecure_http(true)
        .build()
        .await
        .unwrap();
    let app = Router::new()
        .route(
            "/plain/{tenant}",
            get(checked_tenant).route_layer(authlayer::RequireTenantLayer::path_segment(1)),
        )
        .route(
            "/bound/{tenant}",
            get(checked_tenant).route_layer(
                authlayer::RequireTenantLayer::path_segment(1)
                    .issued_by("https://login.b.test/{tenantid}/v2.0"),
            ),
        )
        .layer(VerifyLayer::new(verifier));
    let base = format!("http://{}", serve_axum(app).await);
    let http = reqwest::Client::new();
    let from = |iss: &str| {
        a.token()
            .audience(AUD)
            .claim("iss", iss)
            .claim("tenant", "acme")
            .sign()
    };
    let a_acme = from("https://a.test");
    let b_acme = from("https://login.b.test/acme/v2.0");
    // Unbound: the string "acme" is all the rule sees.
    let res = http_get(&http, &format!("{base}/plain/acme"), Some(&a_acme)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "acme from https://a.test");
    // Bound: only B's acme.
    let res = http_get(&http, &format!("{base}/bound/acme"), Some(&a_acme)).await;
    assert_eq!(res.status(), 403);
    assert!(crate::common::challenge(&res).contains("tenant mismatch"));
    let res = http_get(&http, &format!("{base}/bound/acme"), Some(&b_acme)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.text().await.unwrap(),
        "acme from https://login.b.test/acme/v2.0"
    );
}
