//! The choice of jsonwebtoken's crypto provider.
//!
//! jsonwebtoken 12 has no default provider when both of its backends are
//! compiled in (as `--all-features` does) and would panic on the first
//! verification. [`VerifierBuilder::build`](crate::VerifierBuilder::build)
//! and [`verify_jws`](crate::jws::verify_jws) (public as
//! `test_util::verify_jws`) choose one here first,
//! preferring aws-lc, so no request can reach that panic.
//!
//! Public keys do not go through that provider: [`PublicKey`] holds the
//! chosen backend's parsed key (see its module).

mod public_key;

#[cfg(test)]
pub(crate) use public_key::parses_on_this_thread;
pub(crate) use public_key::{PublicKey, RSA_ALGORITHMS};

use crate::error::BuildError;

/// Installs the crate's preferred provider unless one is installed already.
pub(crate) fn ensure_provider() -> Result<(), BuildError> {
    use jsonwebtoken::crypto::CryptoProvider;
    if CryptoProvider::try_get_default().is_some() {
        return Ok(());
    }
    #[cfg(feature = "aws-lc-rs")]
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    CryptoProvider::try_get_default()
        .map(|_| ())
        .ok_or(BuildError::NoCryptoProvider)
}
