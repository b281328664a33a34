//! RFC 6750 §2: one credential; and the typ policy.

use authlayer::Reason;
use serde_json::json;

use super::builders::{claims_with, rs256_header, rsa, valid};
use super::{Accept, Corpus, Keys, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "malformed requests (400 invalid_request)";
    const P: &str = "credential policy";
    let token = valid(keys);
    let bearer = format!("Bearer {token}").into_bytes();
    corpus.raw(
        C,
        "two Authorization: Bearer headers",
        vec![bearer.clone(), bearer.clone()],
        Reject(Reason::MultipleCredentials),
    );
    let other = format!(
        "Bearer {}",
        rsa(keys, &rs256_header(), &claims_with("sub", json!("alice")))
    )
    .into_bytes();
    corpus.raw(
        C,
        "two different bearer tokens",
        vec![bearer.clone(), other],
        Reject(Reason::MultipleCredentials),
    );
    corpus.raw(
        C,
        "empty bearer",
        vec![b"Bearer ".to_vec()],
        Reject(Reason::EmptyBearer),
    );
    corpus.raw(
        C,
        "scheme only",
        vec![b"Bearer".to_vec()],
        Reject(Reason::EmptyBearer),
    );
    corpus.raw(
        C,
        "empty bearer next to a token",
        vec![bearer.clone(), b"Bearer ".to_vec()],
        Reject(Reason::EmptyBearer),
    );
    // Policy: the scheme is case-insensitive (RFC 7235 §2.1); other schemes
    // are not ours to judge and are ignored.
    corpus.raw(
        P,
        "scheme in lower case",
        vec![format!("bearer {token}").into_bytes()],
        Accept,
    );
    corpus.raw(
        P,
        "scheme in upper case",
        vec![format!("BEARER {token}").into_bytes()],
        Accept,
    );
    corpus.raw(
        P,
        "Basic next to Bearer",
        vec![b"Basic YTpi".to_vec(), bearer],
        Accept,
    );
    corpus.raw(
        P,
        "Basic only",
        vec![b"Basic YTpi".to_vec()],
        Reject(Reason::MissingToken),
    );
    corpus.raw(
        P,
        "DPoP scheme only",
        vec![format!("DPoP {token}").into_bytes()],
        Reject(Reason::MissingToken),
    );
}
