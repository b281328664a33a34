//! JWKS document parsing: any bytes as a key set, through the signature
//! layer (`test_util::verify_jws`) and through `Verifier::builder().jwks_json()`.
//! Nothing may panic; a set that verifies one of the fixed tokens must have
//! yielded exactly the payload that was signed.

#![no_main]

use std::sync::LazyLock;

use authlayer::test_util::verify_jws;
use authlayer::{Algorithm, Verifier};
use libfuzzer_sys::fuzz_target;

/// Wycheproof JWS vectors (payload "foo") whose keys are in the seed corpus:
/// HS256 `kid-aes-sign`, ES256 `kid-ec-sign`, RS256 `kid-rsa-sign`.
const TOKENS: [&str; 3] = [
    "eyJhbGciOiJIUzI1NiIsImtpZCI6ImtpZC1hZXMtc2lnbiJ9.Zm9v.TD37p4c_0jmreSrBSDmE0F3mYSPtkZ3WrSyI5wb_KTg",
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImtpZC1lYy1zaWduIn0.Zm9v.5cA0OHyMP7ezamUd5c9kV-FrGxdx4hbGXOdplQkutrqWrte5P-pAvsE3Ve6xSyU3YDQwUHjVVOtvcrEbbnZ8yA",
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImtpZC1yc2Etc2lnbiJ9.Zm9v.HUwxI1-cZrZgcuOgBQ7G7NE-GrqK79l6GV1KT4DKXnSMFwC8pfZCzE7pmLE7mYpLCIvzC87yuOjuhT0uW5oe6aaAEtR978cm-q8dfly45flqMrd_ifhi9GCsMlyi8dpQ42Ou1etZljFZuWjfyk8CN1c5DaHRwhqjScAPIFp6xmzKIRUJ_xdQfUSfSlujLaixtScU518EoNP4oo1v7E8RAz6ZO4g2N4Xqs8OvSxYydcoTEg42QnLHe9JnXgI37Q5gSwinwaPsG3Ry56UYiLoL8mCUa74S51y02VsIgVmmGWgaXjM-i_lCiKQDBiBnvWlka4XhVuvd6ZWibM9cbCPtPg",
];

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
});

fn every_algorithm() -> Vec<Algorithm> {
    vec![
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
    ]
}

fuzz_target!(|data: &[u8]| {
    let jwks = String::from_utf8_lossy(data);
    let allowed = every_algorithm();
    for token in TOKENS {
        if let Ok(payload) = verify_jws(token, &jwks, &allowed) {
            assert_eq!(payload, b"foo");
        }
    }
    // A static set through the builder: a result either way, never a panic.
    let built = RT.block_on(
        Verifier::builder()
            .issuer("https://fuzz.test")
            .jwks_json(jwks.clone().into_owned())
            .audience("urn:fuzz")
            .algorithms(every_algorithm())
            .build(),
    );
    if let Ok(verifier) = built {
        for token in TOKENS {
            // "foo" is no claims object: never accepted.
            assert!(RT.block_on(verifier.verify(token)).is_err());
        }
        let _ = verifier.health();
    }
});
