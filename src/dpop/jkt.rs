//! RFC 7638 JWK thumbprints: what a token's `cnf.jkt` holds (RFC 9449 §6).

use serde_json::{Map, Value};

use super::hash::{NoDigest, sha256_b64};

/// Why a JWK has no thumbprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoThumbprint {
    /// Not a key type with required members this crate knows, or a required
    /// member is missing or not a string.
    Key,
    /// No backend to hash with.
    Digest,
}

impl From<NoDigest> for NoThumbprint {
    fn from(_: NoDigest) -> Self {
        NoThumbprint::Digest
    }
}

/// The required members of each key type, in lexicographic order
/// (RFC 7638 §3.2; OKP from RFC 8037 §2).
fn required_members(kty: &str) -> Option<&'static [&'static str]> {
    match kty {
        "EC" => Some(&["crv", "kty", "x", "y"]),
        "RSA" => Some(&["e", "kty", "n"]),
        "OKP" => Some(&["crv", "kty", "x"]),
        _ => None,
    }
}

/// The SHA-256 thumbprint of `jwk`, base64url: SHA-256 over the JSON
/// object of the key type's required members only, in lexicographic order,
/// without whitespace (RFC 7638 §3).
pub(crate) fn thumbprint(jwk: &Map<String, Value>) -> Result<String, NoThumbprint> {
    let kty = jwk
        .get("kty")
        .and_then(Value::as_str)
        .ok_or(NoThumbprint::Key)?;
    let members = required_members(kty).ok_or(NoThumbprint::Key)?;
    let mut canonical = Vec::with_capacity(512);
    canonical.push(b'{');
    for (i, name) in members.iter().enumerate() {
        let value = jwk
            .get(*name)
            .and_then(Value::as_str)
            .ok_or(NoThumbprint::Key)?;
        if i > 0 {
            canonical.push(b',');
        }
        canonical.push(b'"');
        canonical.extend_from_slice(name.as_bytes());
        canonical.extend_from_slice(b"\":");
        // serde_json escapes as RFC 7638 §3.3 asks (RFC 7159 string rules);
        // a base64url value needs none. Writing to a Vec cannot fail.
        serde_json::to_writer(&mut canonical, value).map_err(|_| NoThumbprint::Key)?;
    }
    canonical.push(b'}');
    Ok(sha256_b64(&canonical)?)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("test JWKs are objects"),
        }
    }

    #[test]
    fn thumbprint_is_rfc7638_section_3_1_example() {
        let jwk = object(json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        }));
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn thumbprint_of_an_ed25519_key_is_rfc8037_appendix_a_3() {
        let jwk = object(json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        }));
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn optional_members_and_their_order_do_not_change_the_thumbprint() {
        let a = object(json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "BBBB"}));
        let b = object(
            json!({"y": "BBBB", "use": "sig", "x": "AAAA", "kid": "k", "crv": "P-256", "kty": "EC"}),
        );
        assert_eq!(thumbprint(&a).unwrap(), thumbprint(&b).unwrap());
        let c = object(json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "BBBC"}));
        assert_ne!(thumbprint(&a).unwrap(), thumbprint(&c).unwrap());
    }

    #[test]
    fn a_key_without_its_required_members_has_no_thumbprint() {
        for jwk in [
            json!({"kty": "EC", "crv": "P-256", "x": "AAAA"}),
            json!({"kty": "RSA", "n": "AAAA", "e": 3}),
            json!({"kty": "oct", "k": "AAAA"}),
            json!({"crv": "Ed25519", "x": "AAAA"}),
        ] {
            assert_eq!(
                thumbprint(&object(jwk.clone())),
                Err(NoThumbprint::Key),
                "{jwk}"
            );
        }
    }
}
