//! The runner: serves each [`Profile`] over HTTP (`common::orders_app`)
//! and gRPC (the `orders_grpc` tonic example), and checks one case
//! through `Verifier::verify`, HTTP and gRPC.

use std::collections::BTreeMap;

use authlayer::test_util::TestIssuer;
use authlayer::{Reason, Verifier};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use super::builders::verifier;
use super::{Accept, Case, Credential, PROFILES, Profile, Reject};
use crate::common::{grpc_client, orders_app, serve_axum, serve_grpc};
use crate::orders_grpc;
use crate::orders_grpc::pb::GetOrderRequest;
use crate::orders_grpc::pb::orders_client::OrdersClient;

/// One profile's verifier, served over HTTP and gRPC.
pub struct Target {
    pub verifier: Verifier,
    pub http: String,
    pub grpc: OrdersClient<Channel>,
    pub realm: String,
}

async fn target(profile: Profile, issuer: &TestIssuer) -> Target {
    let verifier = verifier(profile, issuer).await;
    let http = format!("http://{}", serve_axum(orders_app(verifier.clone())).await);
    let grpc_addr = serve_grpc(orders_grpc::router(verifier.clone())).await;
    Target {
        verifier,
        http,
        grpc: grpc_client(grpc_addr).await,
        realm: profile.issuer(),
    }
}

/// A server pair for every profile.
pub async fn targets(issuer: &TestIssuer) -> BTreeMap<Profile, Target> {
    let mut targets = BTreeMap::new();
    for profile in PROFILES {
        targets.insert(profile, target(profile, issuer).await);
    }
    targets
}

/// Runs `case` through `Verifier::verify` (bearer tokens only), HTTP and
/// gRPC; returns what went wrong.
pub async fn check(http: &reqwest::Client, target: &Target, case: &Case) -> Vec<String> {
    let mut problems = Vec::new();
    if let Credential::Bearer(token) = &case.credential {
        let outcome = target
            .verifier
            .verify(token)
            .await
            .map(|_| ())
            .map_err(|e| e.reason());
        problems.extend(check_verify(case, outcome).err());
    }
    problems.extend(check_http(http, target, case).await.err());
    problems.extend(check_grpc(target, case).await.err());
    problems
}

fn header_values(credential: &Credential) -> Vec<Vec<u8>> {
    match credential {
        Credential::Bearer(token) => vec![format!("Bearer {token}").into_bytes()],
        Credential::Raw(values) => values.clone(),
    }
}

fn is_invalid_request(reason: Reason) -> bool {
    matches!(reason, Reason::MultipleCredentials | Reason::EmptyBearer)
}

fn check_verify(case: &Case, outcome: Result<(), Reason>) -> Result<(), String> {
    match (case.expect, outcome) {
        (Accept, Ok(())) => Ok(()),
        (Reject(want), Err(got)) if want == got => Ok(()),
        (want, got) => Err(format!("verify(): want {want:?}, got {got:?}")),
    }
}

async fn check_http(http: &reqwest::Client, target: &Target, case: &Case) -> Result<(), String> {
    let mut request = http.get(format!("{}/orders/7", target.http));
    for value in header_values(&case.credential) {
        let value = HeaderValue::from_bytes(&value).map_err(|e| format!("header value: {e}"))?;
        request = request.header(AUTHORIZATION, value);
    }
    let response = request.send().await.map_err(|e| format!("HTTP: {e}"))?;
    let status = response.status();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap_or("<not ASCII>").to_owned());
    match case.expect {
        Accept if status == StatusCode::OK => Ok(()),
        Accept => Err(format!("HTTP: want 200, got {status} {challenge:?}")),
        Reject(reason) => {
            let realm = &target.realm;
            let (want_status, want_challenge) = if reason == Reason::MissingToken {
                (
                    StatusCode::UNAUTHORIZED,
                    format!(r#"Bearer realm="{realm}""#),
                )
            } else {
                let (status, code) = if is_invalid_request(reason) {
                    (StatusCode::BAD_REQUEST, "invalid_request")
                } else {
                    (StatusCode::UNAUTHORIZED, "invalid_token")
                };
                let description = reason.description();
                (
                    status,
                    format!(
                        r#"Bearer realm="{realm}", error="{code}", error_description="{description}""#
                    ),
                )
            };
            if status == want_status && challenge.as_deref() == Some(want_challenge.as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "HTTP: want {want_status} {want_challenge:?}, got {status} {challenge:?}"
                ))
            }
        }
    }
}

async fn check_grpc(target: &Target, case: &Case) -> Result<(), String> {
    let mut request = tonic::Request::new(GetOrderRequest { id: 7 });
    for value in header_values(&case.credential) {
        let value =
            MetadataValue::try_from(value.as_slice()).map_err(|e| format!("metadata: {e}"))?;
        request.metadata_mut().append("authorization", value);
    }
    let result = target.grpc.clone().get_order(request).await;
    match (case.expect, result) {
        (Accept, Ok(response)) if response.get_ref().id == 7 => Ok(()),
        (Accept, other) => Err(format!("gRPC: want OK, got {other:?}")),
        (Reject(reason), Err(status)) => {
            let want_code = if is_invalid_request(reason) {
                Code::InvalidArgument
            } else {
                Code::Unauthenticated
            };
            if status.code() == want_code && status.message() == reason.description() {
                Ok(())
            } else {
                Err(format!(
                    "gRPC: want {want_code:?} {:?}, got {:?} {:?}",
                    reason.description(),
                    status.code(),
                    status.message()
                ))
            }
        }
        (Reject(reason), Ok(_)) => Err(format!("gRPC: want {reason:?}, got OK")),
    }
}
