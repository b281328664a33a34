//! SHA-256 from the crypto backend already compiled in (aws-lc's `digest`,
//! or RustCrypto's `sha2`), for `ath`, key thumbprints and replay keys.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// No crypto backend can hash: neither backend feature is compiled in and
/// the installed jsonwebtoken provider (if any) computes no SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoDigest;

/// SHA-256 of the concatenation of `parts`.
#[cfg(feature = "aws-lc-rs")]
#[allow(clippy::unnecessary_wraps)] // fallible only without a backend feature
pub(crate) fn sha256(parts: &[&[u8]]) -> Result<[u8; 32], NoDigest> {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in parts {
        context.update(part);
    }
    let mut out = [0; 32];
    out.copy_from_slice(context.finish().as_ref());
    Ok(out)
}

/// SHA-256 of the concatenation of `parts`.
#[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
#[allow(clippy::unnecessary_wraps)] // fallible only without a backend feature
pub(crate) fn sha256(parts: &[&[u8]]) -> Result<[u8; 32], NoDigest> {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    Ok(hasher.finalize().into())
}

/// SHA-256 of the concatenation of `parts`, through the jsonwebtoken
/// provider the application installed (without a backend feature nothing
/// else can hash).
#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
pub(crate) fn sha256(parts: &[&[u8]]) -> Result<[u8; 32], NoDigest> {
    let provider = jsonwebtoken::crypto::CryptoProvider::try_get_default().ok_or(NoDigest)?;
    let data = parts.concat();
    let digest =
        (provider.key_utils.compute_digest)(&data, jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .map_err(|_| NoDigest)?;
    digest.try_into().map_err(|_| NoDigest)
}

/// base64url (no padding) of the SHA-256 of `data`: the form of `ath` and
/// of a `jkt` thumbprint.
pub(crate) fn sha256_b64(data: &[u8]) -> Result<String, NoDigest> {
    Ok(URL_SAFE_NO_PAD.encode(sha256(&[data])?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_published_test_vectors() {
        // FIPS 180-2 appendix B.1 ("abc") and the empty message.
        let abc = sha256(&[b"abc"]).unwrap();
        assert_eq!(
            abc[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256(\"abc\") starts ba7816bf"
        );
        assert_eq!(abc[28..], [0xf2, 0x00, 0x15, 0xad]);
        assert_eq!(
            sha256_b64(b"").unwrap(),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }

    #[test]
    fn parts_hash_as_their_concatenation() {
        assert_eq!(
            sha256(&[b"a", b"", b"bc"]).unwrap(),
            sha256(&[b"abc"]).unwrap()
        );
    }
}
