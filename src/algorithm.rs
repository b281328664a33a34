//! The signature algorithms this crate verifies, as its own type: a new
//! release of the JWT library underneath changes nothing in our API.

use std::fmt;
use std::str::FromStr;

/// A JWS signature algorithm (RFC 7518, RFC 8037) a verifier may allow.
///
/// ```
/// use authlayer::Algorithm;
///
/// let alg: Algorithm = "ES256".parse()?;
/// assert_eq!(alg, Algorithm::ES256);
/// assert_eq!(alg.to_string(), "ES256");
/// // Names are exact: no `none`, no lower case.
/// assert!("none".parse::<Algorithm>().is_err());
/// assert!("rs256".parse::<Algorithm>().is_err());
/// # Ok::<(), authlayer::UnknownAlgorithm>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC with SHA-256 (a shared secret, never a public key).
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// Ed25519 (RFC 8037).
    EdDSA,
}

/// Every algorithm, each with its JOSE name: the one table the name, the
/// parser and the JWT library's value are read from.
const TABLE: [(Algorithm, &str, jsonwebtoken::Algorithm); 12] = [
    (Algorithm::HS256, "HS256", jsonwebtoken::Algorithm::HS256),
    (Algorithm::HS384, "HS384", jsonwebtoken::Algorithm::HS384),
    (Algorithm::HS512, "HS512", jsonwebtoken::Algorithm::HS512),
    (Algorithm::ES256, "ES256", jsonwebtoken::Algorithm::ES256),
    (Algorithm::ES384, "ES384", jsonwebtoken::Algorithm::ES384),
    (Algorithm::RS256, "RS256", jsonwebtoken::Algorithm::RS256),
    (Algorithm::RS384, "RS384", jsonwebtoken::Algorithm::RS384),
    (Algorithm::RS512, "RS512", jsonwebtoken::Algorithm::RS512),
    (Algorithm::PS256, "PS256", jsonwebtoken::Algorithm::PS256),
    (Algorithm::PS384, "PS384", jsonwebtoken::Algorithm::PS384),
    (Algorithm::PS512, "PS512", jsonwebtoken::Algorithm::PS512),
    (Algorithm::EdDSA, "EdDSA", jsonwebtoken::Algorithm::EdDSA),
];

// Row `i` of the table is the variant with discriminant `i`, so indexing
// it by a variant is always in bounds (checked when compiling).
#[allow(clippy::indexing_slicing)] // `i` < the table's length
const _: () = {
    let mut i = 0;
    while i < TABLE.len() {
        assert!(TABLE[i].0 as usize == i);
        i += 1;
    }
};

#[allow(clippy::indexing_slicing)] // in bounds: see the check above
impl Algorithm {
    /// The JOSE name (`"RS256"`).
    pub fn as_str(self) -> &'static str {
        TABLE[self.index()].1
    }

    /// The position in [`TABLE`], also the bit of an `AlgSet`.
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// The JWT library's value, for the one call that verifies a signature.
    pub(crate) fn to_jwt(self) -> jsonwebtoken::Algorithm {
        TABLE[self.index()].2
    }

    /// Every algorithm, in the table's order.
    pub(crate) fn every() -> impl Iterator<Item = Algorithm> {
        TABLE.iter().map(|(a, _, _)| *a)
    }

    /// Parses the `alg` of a JOSE header or JWK. Exact, case-sensitive
    /// names only: `none`, `None`, `rs256` and unknown names are `None`.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        TABLE
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(a, _, _)| *a)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or(UnknownAlgorithm)
    }
}

/// The error of parsing an [`Algorithm`] from a name that is not one
/// (`none` included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownAlgorithm;

impl fmt::Display for UnknownAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a supported JWS algorithm name (exact, e.g. \"RS256\")")
    }
}

impl std::error::Error for UnknownAlgorithm {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_sits_at_its_own_row_of_the_table() {
        for (i, (alg, name, _)) in TABLE.iter().enumerate() {
            assert_eq!(alg.index(), i, "{name}");
            assert_eq!(Algorithm::from_name(name), Some(*alg));
            assert_eq!(alg.as_str(), *name);
        }
    }

    #[test]
    fn names_are_exact_and_none_is_not_one() {
        for bad in ["none", "None", "rs256", "RS256 ", "", "HS1"] {
            assert_eq!(bad.parse::<Algorithm>(), Err(UnknownAlgorithm), "{bad:?}");
        }
    }
}
