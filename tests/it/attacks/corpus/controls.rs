//! Controls: the corpus proves nothing if valid tokens fail too.

use authlayer::test_util::kids;
use authlayer::{Algorithm, Reason};
use serde_json::{Value, json};

use super::builders::{claims_with, header, rs256_header, rsa, sign, valid, valid_claims};
use super::{AUD, Accept, Corpus, HS_KID, Keys, Profile, RSA_2, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "control: valid tokens are accepted";
    corpus.token(C, "RS256 rsa-1", valid(keys), Accept);
    let payload = valid_claims();
    for (kid, alg) in [
        (kids::RSA, Algorithm::PS256),
        (kids::RSA, Algorithm::RS512),
        (kids::EC, Algorithm::ES256),
        (kids::ED, Algorithm::EdDSA),
        (RSA_2, Algorithm::RS256),
    ] {
        let name = format!("{alg:?}");
        let h = Value::Object(header(&name, Some(kid))).to_string();
        corpus.token(
            C,
            format!("{name} {kid}"),
            sign(&keys.issuer, &h, &payload, kid, alg),
            Accept,
        );
    }
    // Without kid, accepted only when exactly one key fits the algorithm:
    // one EC key, but two RSA keys (never tried one after the other).
    let h = Value::Object(header("ES256", None)).to_string();
    let es = sign(&keys.issuer, &h, &payload, kids::EC, Algorithm::ES256);
    corpus.token(C, "kid-less ES256 (one P-256 key)", es, Accept);
    let h = Value::Object(header("RS256", None)).to_string();
    let rs = sign(&keys.issuer, &h, &payload, kids::RSA, Algorithm::RS256);
    corpus.token(
        "kid-less token with several candidate keys",
        "kid-less RS256 (two RSA keys)",
        rs,
        Reject(Reason::UnknownKey),
    );
    let aud = claims_with("aud", json!(["urn:other", AUD]));
    corpus.token(
        C,
        "aud array containing the audience",
        rsa(keys, &rs256_header(), &aud),
        Accept,
    );
    // HMAC with the configured shared secret, every HS algorithm.
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let name = format!("{alg:?}");
        let h = Value::Object(header(&name, Some(HS_KID))).to_string();
        let t = sign(&keys.issuer, &h, &payload, HS_KID, alg);
        corpus.token_on(
            Profile::Hmac,
            C,
            format!("{name} shared secret"),
            t.clone(),
            Accept,
        );
        // Without the secret configured, HMAC is simply not allowed.
        corpus.token(
            "HMAC without a configured secret",
            format!("{name} under defaults"),
            t,
            Reject(Reason::AlgorithmNotAllowed),
        );
    }
}
