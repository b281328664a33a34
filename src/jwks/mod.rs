//! Key sets: parsing JWKS documents, fetching them over HTTP, and keeping
//! them fresh.
//!
//! A [`Verifier`](crate::Verifier) holds one key source per trusted issuer.
//! Each source keeps an immutable snapshot of its keys behind an
//! [`ArcSwap`](arc_swap): requests load it without a lock, and a refresh
//! builds a new snapshot and swaps it in. A fetch that fails or brings
//! nothing usable never replaces the keys in force.

mod fetch;
mod keyset;
mod source;

pub(crate) use crate::error::FetchError;
pub(crate) use fetch::{
    FetchSettings, check_url, discovery_url, jwks_uri_from_discovery, parse_url, read_json_body,
    redirect_refusal, request_error, single_use_body,
};
pub(crate) use keyset::AlgSet;
pub(crate) use keyset::public_key_from_jwk;
pub(crate) use keyset::{KeySet, Origin, VerifyKey, parse_alg, secret_key};
// One JWK on its own, for a key that comes with a request rather than from
// a key set (a DPoP proof's `jwk`); unused until such a caller lands.
#[allow(unused_imports)]
pub(crate) use keyset::parse_jwk;
pub(crate) use source::{KeySource, Lifecycle, Location, Remote, Shared, Trigger};
