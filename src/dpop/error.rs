//! Why a DPoP proof was refused: one table of reasons, each with its code
//! (for metrics and audit), the kind of answer it gets and a fixed
//! description (never the proof's own text).

use std::fmt;

/// How a refused proof is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProofErrorKind {
    /// 401, `WWW-Authenticate: DPoP error="invalid_dpop_proof"` (RFC 9449 §7.1).
    InvalidProof,
    /// 401, `error="use_dpop_nonce"` and a `DPoP-Nonce` header (RFC 9449 §9).
    UseNonce,
    /// 503: the server cannot check proofs now (the replay store is
    /// unreachable, no crypto backend). SECURITY: fail closed, never accept
    /// a proof whose `jti` could not be recorded.
    Unavailable,
}

impl ProofErrorKind {
    /// The `error` parameter of the `DPoP` challenge; `None` for [`Unavailable`](Self::Unavailable).
    #[cfg(test)] // only the tests need it
    pub(crate) fn error_code(self) -> Option<&'static str> {
        match self {
            ProofErrorKind::InvalidProof => Some("invalid_dpop_proof"),
            ProofErrorKind::UseNonce => Some("use_dpop_nonce"),
            ProofErrorKind::Unavailable => None,
        }
    }
}

/// Why a proof was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ProofReason {
    Missing,
    Multiple,
    TooLarge,
    Malformed,
    Typ,
    Alg,
    Jwk,
    Signature,
    Jti,
    Htm,
    Htu,
    Iat,
    Ath,
    JktMismatch,
    Replayed,
    NonceMissing,
    NonceStale,
    NonceInvalid,
    ReplayStore,
    Crypto,
}

use ProofErrorKind::{InvalidProof, Unavailable, UseNonce};

/// Every reason once: its code, its kind and what the client is told.
const TABLE: [(ProofReason, &str, ProofErrorKind, &str); 20] = [
    (
        ProofReason::Missing,
        "missing",
        InvalidProof,
        "the request carries no DPoP proof",
    ),
    (
        ProofReason::Multiple,
        "multiple",
        InvalidProof,
        "the request carries more than one DPoP proof",
    ),
    (
        ProofReason::TooLarge,
        "too_large",
        InvalidProof,
        "the DPoP proof is too large",
    ),
    (
        ProofReason::Malformed,
        "malformed",
        InvalidProof,
        "the DPoP proof is not a well-formed JWT",
    ),
    (
        ProofReason::Typ,
        "typ",
        InvalidProof,
        "the DPoP proof's typ is not dpop+jwt",
    ),
    (
        ProofReason::Alg,
        "alg",
        InvalidProof,
        "the DPoP proof's algorithm is not allowed",
    ),
    (
        ProofReason::Jwk,
        "jwk",
        InvalidProof,
        "the DPoP proof's jwk is not a public key fit for its algorithm",
    ),
    (
        ProofReason::Signature,
        "signature",
        InvalidProof,
        "the DPoP proof's signature does not verify",
    ),
    (
        ProofReason::Jti,
        "jti",
        InvalidProof,
        "the DPoP proof's jti is missing, empty or too long",
    ),
    (
        ProofReason::Htm,
        "htm",
        InvalidProof,
        "the DPoP proof's htm is not the request's method",
    ),
    (
        ProofReason::Htu,
        "htu",
        InvalidProof,
        "the DPoP proof's htu is not the request's URI",
    ),
    (
        ProofReason::Iat,
        "iat",
        InvalidProof,
        "the DPoP proof's iat is missing or outside the accepted window",
    ),
    (
        ProofReason::Ath,
        "ath",
        InvalidProof,
        "the DPoP proof's ath is missing or not the access token's hash",
    ),
    (
        ProofReason::JktMismatch,
        "jkt_mismatch",
        InvalidProof,
        "the DPoP proof's key is not the key the access token is bound to",
    ),
    (
        ProofReason::Replayed,
        "replayed",
        InvalidProof,
        "the DPoP proof was used before",
    ),
    (
        ProofReason::NonceMissing,
        "nonce_missing",
        UseNonce,
        "the DPoP proof has no nonce: use the one in DPoP-Nonce",
    ),
    (
        ProofReason::NonceStale,
        "nonce_stale",
        UseNonce,
        "the DPoP proof's nonce has expired: use the one in DPoP-Nonce",
    ),
    (
        ProofReason::NonceInvalid,
        "nonce_invalid",
        UseNonce,
        "the DPoP proof's nonce is not one this server issued: use the one in DPoP-Nonce",
    ),
    (
        ProofReason::ReplayStore,
        "replay_store",
        Unavailable,
        "DPoP proofs cannot be checked for replay right now",
    ),
    (
        ProofReason::Crypto,
        "crypto",
        Unavailable,
        "no crypto backend to check DPoP proofs",
    ),
];

// Row `i` of the table is the variant with discriminant `i` (checked when
// compiling), so a lookup by variant is in bounds.
#[allow(clippy::indexing_slicing)] // `i` < the table's length
const _: () = {
    let mut i = 0;
    while i < TABLE.len() {
        assert!(TABLE[i].0 as usize == i);
        i += 1;
    }
};

#[allow(clippy::indexing_slicing)] // in bounds: see the check above
impl ProofReason {
    fn row(self) -> &'static (ProofReason, &'static str, ProofErrorKind, &'static str) {
        &TABLE[self as usize]
    }

    /// The code for metrics and audit (`"htu"`, `"replayed"`, …).
    pub(crate) fn code(self) -> &'static str {
        self.row().1
    }

    /// How the refusal is answered.
    pub(crate) fn kind(self) -> ProofErrorKind {
        self.row().2
    }

    /// A fixed description for the `error_description` of the challenge.
    pub(crate) fn description(self) -> &'static str {
        self.row().3
    }

    /// Every reason, for tests and for registering metric labels up front.
    #[cfg(test)] // only the tests need it
    pub(crate) fn all() -> impl Iterator<Item = ProofReason> {
        TABLE.iter().map(|row| row.0)
    }
}

/// A refused proof: the reason, and, when server nonces are on, the nonce
/// to send in `DPoP-Nonce` with the refusal (RFC 9449 §9: required with
/// `use_dpop_nonce`, and helpful with any other error, so the client's next
/// proof carries it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProofError {
    pub(crate) reason: ProofReason,
    pub(crate) fresh_nonce: Option<String>,
    /// For [`ProofErrorKind::Unavailable`]: what failed (e.g. the replay
    /// store's connection error), for logs. Never client input.
    pub(crate) detail: Option<Box<str>>,
}

impl ProofError {
    pub(crate) fn new(reason: ProofReason) -> Self {
        ProofError {
            reason,
            fresh_nonce: None,
            detail: None,
        }
    }

    pub(crate) fn reason(&self) -> ProofReason {
        self.reason
    }

    pub(crate) fn kind(&self) -> ProofErrorKind {
        self.reason.kind()
    }

    /// The nonce to send in `DPoP-Nonce` with this refusal, if any.
    #[cfg(test)] // only the tests need it
    pub(crate) fn fresh_nonce(&self) -> Option<&str> {
        self.fresh_nonce.as_deref()
    }
}

impl From<ProofError> for crate::error::AuthError {
    fn from(error: ProofError) -> Self {
        use crate::error::Reason;
        let reason = match error.kind() {
            ProofErrorKind::InvalidProof => Reason::InvalidDpopProof,
            ProofErrorKind::UseNonce => Reason::UseDpopNonce,
            ProofErrorKind::Unavailable => Reason::DpopUnavailable,
        };
        let proof = error.reason;
        Self::dpop_proof(reason, proof.code(), proof.description(), error.fresh_nonce)
    }
}

impl From<ProofReason> for ProofError {
    fn from(reason: ProofReason) -> Self {
        ProofError::new(reason)
    }
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason.description())?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ProofError {}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_reason_has_its_own_row_and_code() {
        let mut codes = HashSet::new();
        for (i, reason) in ProofReason::all().enumerate() {
            assert_eq!(reason as usize, i);
            assert!(codes.insert(reason.code()), "{} twice", reason.code());
            assert!(
                reason
                    .code()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "metric label {:?}",
                reason.code()
            );
        }
        assert_eq!(codes.len(), TABLE.len());
    }

    #[test]
    fn only_nonce_faults_ask_for_a_nonce_and_only_server_faults_are_unavailable() {
        for reason in ProofReason::all() {
            let nonce = reason.code().starts_with("nonce_");
            assert_eq!(reason.kind() == UseNonce, nonce, "{reason:?}");
            let server = matches!(reason, ProofReason::ReplayStore | ProofReason::Crypto);
            assert_eq!(reason.kind() == Unavailable, server, "{reason:?}");
        }
        assert_eq!(
            ProofReason::Htu.kind().error_code(),
            Some("invalid_dpop_proof")
        );
        assert_eq!(
            ProofReason::NonceStale.kind().error_code(),
            Some("use_dpop_nonce")
        );
        assert_eq!(ProofReason::ReplayStore.kind().error_code(), None);
    }

    #[test]
    fn descriptions_are_fixed_and_fit_a_quoted_header_parameter() {
        for reason in ProofReason::all() {
            let d = reason.description();
            assert!(!d.is_empty());
            assert!(
                d.bytes()
                    .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'),
                "{d:?}"
            );
        }
        let mut e = ProofError::new(ProofReason::ReplayStore);
        e.detail = Some("connection refused".into());
        assert_eq!(
            e.to_string(),
            "DPoP proofs cannot be checked for replay right now: connection refused"
        );
    }
}
