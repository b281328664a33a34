//! The full token path against a fixed key set: `Verifier::verify` and the
//! `VerifyLayer` service, on any input. Nothing may panic, and a token that
//! is accepted must satisfy the verifier's policy.
//!
//! The first input byte picks the mode:
//! - 0: the rest is the token, as text;
//! - 1: the rest is `header 0xFF payload`, signed HS256 with the verifier's
//!   shared secret, so arbitrary header and claims JSON reach the claims
//!   checks behind a valid signature;
//! - 2: the rest is the `Authorization` header value of an HTTP request
//!   through the `VerifyLayer` (3: the same as a gRPC request).

#![no_main]

use std::convert::Infallible;
use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use authlayer::test_util::TestIssuer;
use authlayer::{Algorithm, Verifier, VerifyLayer};
use http::{HeaderValue, Request, Response, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use tower::{Layer as _, ServiceExt as _, service_fn};

const ISS: &str = "https://fuzz.test";
const AUD: &str = "urn:fuzz";
const HMAC_KID: &str = "hs";
const SECRET: &[u8; 32] = b"fuzz-secret-fuzz-secret-fuzz-sec";
const MAX_TOKEN_LEN: usize = 8 * 1024;

struct Fixture {
    rt: tokio::runtime::Runtime,
    issuer: TestIssuer,
    verifier: Verifier,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // RSA, P-256 and Ed25519 keys in the JWKS, plus an HMAC shared secret.
    let issuer = TestIssuer::new(ISS);
    issuer.add_secret(HMAC_KID, Algorithm::HS256, SECRET);
    let verifier = rt
        .block_on(
            Verifier::builder()
                .issuer(ISS)
                .jwks_json(issuer.jwks_json())
                .audience(AUD)
                .algorithms([
                    Algorithm::RS256,
                    Algorithm::PS256,
                    Algorithm::ES256,
                    Algorithm::EdDSA,
                    Algorithm::HS256,
                ])
                .shared_secret_with_kid(HMAC_KID, SECRET.to_vec())
                .max_token_bytes(MAX_TOKEN_LEN)
                .build(),
        )
        .expect("verifier");
    Fixture {
        rt,
        issuer,
        verifier,
    }
});

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Verifies `token`; if it is accepted, checks the policy held.
fn check(f: &Fixture, token: &str) -> bool {
    let Ok(claims) = f.rt.block_on(f.verifier.verify(token)) else {
        return false;
    };
    assert!(
        token.len() <= MAX_TOKEN_LEN,
        "accepted a token over the cap"
    );
    assert_eq!(claims.iss(), Some(ISS), "accepted a foreign issuer");
    assert!(
        claims.aud().iter().any(|a| a == AUD),
        "accepted a token for another audience: {:?}",
        claims.aud()
    );
    let exp = claims.exp().expect("accepted a token without exp");
    assert!(exp + 60 > now(), "accepted an expired token");
    if let Some(nbf) = claims.nbf() {
        assert!(nbf - 60 <= now(), "accepted a token before nbf");
    }
    true
}

fn signed_mode(f: &Fixture, rest: &[u8]) {
    let split = rest.iter().position(|b| *b == 0xFF).unwrap_or(rest.len());
    let (header, payload) = rest.split_at(split);
    let payload = payload.get(1..).unwrap_or_default();
    let Some(token) = f
        .issuer
        .sign_raw(header, payload, HMAC_KID, Algorithm::HS256)
    else {
        return;
    };
    if check(f, &token) {
        // The signature is HS256 by the shared secret: an accepted token must
        // say exactly that, in a header without crit/b64/nested content.
        let header: serde_json::Value =
            serde_json::from_slice(header).expect("accepted a header that is not JSON");
        assert_eq!(
            header["alg"], "HS256",
            "accepted under another alg: {header}"
        );
        assert!(header.get("crit").is_none() && header.get("b64").is_none());
        assert!(header["kid"].is_null() || header["kid"] == HMAC_KID);
    }
}

fn layer_mode(f: &Fixture, value: &[u8], grpc: bool) {
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return;
    };
    let mut request = Request::builder().uri("/orders/1");
    if grpc {
        request = request.header(header::CONTENT_TYPE, "application/grpc");
    }
    let request = request
        .header(header::AUTHORIZATION, value)
        .body(())
        .expect("request");
    let service =
        VerifyLayer::new(f.verifier.clone()).layer(service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(()))
        }));
    let response =
        f.rt.block_on(service.oneshot(request))
            .expect("the layer never fails");
    let status = response.status();
    if grpc {
        assert_eq!(status, StatusCode::OK);
        if let Some(code) = response.headers().get("grpc-status") {
            assert!(code == "16" || code == "3", "grpc-status {code:?}");
        }
    } else {
        assert!(
            [
                StatusCode::OK,
                StatusCode::BAD_REQUEST,
                StatusCode::UNAUTHORIZED
            ]
            .contains(&status),
            "status {status}"
        );
        if status != StatusCode::OK {
            let challenge = response.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .expect("ASCII challenge");
            // The challenge is built from fixed texts only: no input echoed.
            assert!(challenge.starts_with("Bearer realm=\"https://fuzz.test\""));
            assert!(challenge.len() < 200, "{challenge}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            check(f, &String::from_utf8_lossy(rest));
        }
        1 => signed_mode(f, rest),
        2 => layer_mode(f, rest, false),
        _ => layer_mode(f, rest, true),
    }
});
