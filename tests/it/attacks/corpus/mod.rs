//! The attack corpus: forged, malformed and policy-violating tokens and
//! requests, one group per attack class of the JWT CVE history, each case
//! with its exact expected outcome, and the loop that runs every case on
//! its [`Profile`]'s target.
//!
//! The corpus is generated here from `TestIssuer` keys (the issuer's and an
//! attacker's). Where the outcome is a policy choice (typ, leeway,
//! fractional dates, issuer spelling, length cap, HMAC) the case runs
//! against the default verifier and a stricter or differently configured
//! one (see [`Profile`]).
//!
//! Layout: [`builders`] makes the tokens and the verifier of each profile,
//! and each attack class adds its cases from a module of its own (see
//! [`CLASSES`]). Each test binary brings its own legs: the library's runs
//! every case through `Verifier::verify` and HTTP, the examples' through
//! the `orders_grpc` example over gRPC (this module is included there by
//! path).

pub mod builders;

// The attack classes, one module each; `CLASSES` gives their order.
mod alg_none;
mod audience;
mod bad_alg;
mod controls;
mod crit_and_b64;
mod dates;
mod duplicate_keys;
mod ecdsa_signatures;
mod embedded_jwk;
mod encoding;
mod foreign_signature;
mod hmac_with_public_key;
mod issuer_claim;
mod key_url_headers;
mod kid_injection;
mod mangled_signatures;
mod nested;
mod request_shape;
mod segment_count;
mod sizes;
mod tampering;
mod typ_policy;
mod utf8;

use std::collections::{BTreeMap, BTreeSet};

use authlayer::test_util::{TestIssuer, TestServer};
use authlayer::{Algorithm, Reason, Verifier};

use crate::common::AUDIENCE;

pub const ISS: &str = "https://id.attack.test";
pub const AUD: &str = AUDIENCE;
/// The HMAC shared secret of [`Profile::Hmac`] (64 bytes: enough for HS512).
pub const SECRET: &[u8; 64] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const HS_KID: &str = "hs-1";
/// A second RSA key in the issuer's set: kid-less RS256 tokens are ambiguous.
pub const RSA_2: &str = "rsa-2";
/// The token cap of [`Profile::BigTokens`].
pub const BIG_CAP: usize = 12 * 1024;
/// The default token cap.
pub const CAP: usize = 8 * 1024;

/// One verifier configuration; each gets its own HTTP and gRPC server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Profile {
    /// The defaults: asymmetric algorithms only, leeway 60 s, `typ` not
    /// checked, 8 KiB token cap, `exp` required.
    Default,
    /// RFC 9068 strict: `TypPolicy::AccessToken`, leeway 0, and `sub`,
    /// `iat`, `jti`, `client_id` required.
    Strict,
    /// HS256/384/512 allowed, with a 64-byte shared secret (kid `hs-1`)
    /// next to the public keys.
    Hmac,
    /// The issuer configured as `https://id.attack.test/` (trailing slash).
    SlashIssuer,
    /// `max_token_bytes` raised to 12 KiB.
    BigTokens,
}

const PROFILES: [Profile; 5] = [
    Profile::Default,
    Profile::Strict,
    Profile::Hmac,
    Profile::SlashIssuer,
    Profile::BigTokens,
];

impl Profile {
    pub fn issuer(self) -> String {
        match self {
            Profile::SlashIssuer => format!("{ISS}/"),
            _ => ISS.to_owned(),
        }
    }
}

pub enum Credential {
    /// `Authorization: Bearer <token>`; also checked with `Verifier::verify`.
    Bearer(String),
    /// These raw `Authorization` header values, in order (one header each).
    Raw(Vec<Vec<u8>>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    Accept,
    Reject(Reason),
}
pub use Expect::{Accept, Reject};

pub struct Case {
    pub class: &'static str,
    pub name: String,
    pub profile: Profile,
    pub credential: Credential,
    pub expect: Expect,
}

/// The keys the corpus is made from.
pub struct Keys {
    /// The trusted issuer: rsa-1, ec-1, ed-1, rsa-2 published, hs-1 secret.
    pub issuer: TestIssuer,
    /// Someone else's keys, and a place to put HMAC keys made of public keys.
    pub attacker: TestIssuer,
    /// The attacker's JWKS URL, served on loopback (must never be fetched).
    pub attacker_jwks: String,
}

#[derive(Default)]
pub struct Corpus {
    pub cases: Vec<Case>,
}

impl Corpus {
    pub fn token(
        &mut self,
        class: &'static str,
        name: impl Into<String>,
        token: String,
        expect: Expect,
    ) {
        self.token_on(Profile::Default, class, name, token, expect);
    }

    pub fn token_on(
        &mut self,
        profile: Profile,
        class: &'static str,
        name: impl Into<String>,
        token: String,
        expect: Expect,
    ) {
        self.cases.push(Case {
            class,
            name: name.into(),
            profile,
            credential: Credential::Bearer(token),
            expect,
        });
    }

    pub fn raw(&mut self, class: &'static str, name: &str, values: Vec<Vec<u8>>, expect: Expect) {
        self.cases.push(Case {
            class,
            name: name.to_owned(),
            profile: Profile::Default,
            credential: Credential::Raw(values),
            expect,
        });
    }
}

/// Every attack class, in the order its cases run.
const CLASSES: [fn(&mut Corpus, &Keys); 23] = [
    controls::cases,
    alg_none::cases,
    bad_alg::cases,
    hmac_with_public_key::cases,
    embedded_jwk::cases,
    key_url_headers::cases,
    kid_injection::cases,
    foreign_signature::cases,
    ecdsa_signatures::cases,
    mangled_signatures::cases,
    tampering::cases,
    segment_count::cases,
    encoding::cases,
    utf8::cases,
    dates::cases,
    issuer_claim::cases,
    audience::cases,
    duplicate_keys::cases,
    crit_and_b64::cases,
    nested::cases,
    sizes::cases,
    request_shape::cases,
    typ_policy::cases,
];

/// The corpus, the trusted issuer whose keys it was made from, and the
/// attacker's JWKS server (which must never be fetched).
pub struct Attack {
    pub corpus: Corpus,
    /// rsa-1, ec-1, ed-1, rsa-2 published, hs-1 secret.
    pub issuer: TestIssuer,
    attacker_server: TestServer,
}

/// One profile's verifier and a client of a server that verifies with it.
pub struct Target<C> {
    pub verifier: Verifier,
    pub client: C,
}

impl Attack {
    /// Generates the corpus from a new issuer and attacker.
    pub async fn new() -> Attack {
        let issuer = TestIssuer::new(ISS);
        issuer.add_key(RSA_2, Algorithm::RS256);
        issuer.add_secret(HS_KID, Algorithm::HS256, SECRET);
        let attacker = TestIssuer::new(ISS);
        let attacker_server = attacker.serve().await;
        let keys = Keys {
            issuer: issuer.clone(),
            attacker,
            attacker_jwks: attacker_server.jwks_url(),
        };
        let mut corpus = Corpus::default();
        for class in CLASSES {
            class(&mut corpus, &keys);
        }
        Attack {
            corpus,
            issuer,
            attacker_server,
        }
    }

    /// A target for every profile: its verifier, and the client `serve`
    /// returns for a server verifying with it.
    pub async fn targets<C>(
        &self,
        serve: impl AsyncFn(Verifier) -> C,
    ) -> BTreeMap<Profile, Target<C>> {
        let mut targets = BTreeMap::new();
        for profile in PROFILES {
            let verifier = builders::verifier(profile, &self.issuer).await;
            let target = Target {
                verifier: verifier.clone(),
                client: serve(verifier).await,
            };
            targets.insert(profile, target);
        }
        targets
    }

    /// Runs every case on its profile's target through `check` (`how`
    /// names its legs), which returns what went wrong, and fails listing
    /// every failed case. Then no key was ever fetched from a URL named in
    /// a token, and the controls got through.
    pub async fn run<C>(
        &self,
        targets: &BTreeMap<Profile, Target<C>>,
        how: &str,
        check: impl AsyncFn(&Target<C>, &Case) -> Vec<String>,
    ) {
        let mut failures = Vec::new();
        let mut per_class: BTreeMap<&str, usize> = BTreeMap::new();
        let mut names = BTreeSet::new();
        for case in &self.corpus.cases {
            assert!(
                names.insert((case.profile, case.class, case.name.as_str())),
                "duplicate case name: {}",
                case.name
            );
            *per_class.entry(case.class).or_default() += 1;
            let problems = check(&targets[&case.profile], case).await;
            if !problems.is_empty() {
                failures.push(format!(
                    "[{:?}] {} / {}: {}",
                    case.profile,
                    case.class,
                    case.name,
                    problems.join("; ")
                ));
            }
        }

        let cases = &self.corpus.cases;
        let rejections = cases.iter().filter(|c| c.expect != Accept).count();
        println!(
            "attack corpus: {} cases ({} rejections, {} acceptance controls) in {} classes, each run through {how}",
            cases.len(),
            rejections,
            cases.len() - rejections,
            per_class.len()
        );
        for (class, count) in &per_class {
            println!("  {count:4}  {class}");
        }
        assert!(
            failures.is_empty(),
            "{} case(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
        // No key was ever fetched from a URL named in a token.
        assert_eq!(
            self.attacker_server.requests(),
            0,
            "a jku/x5u URL was fetched"
        );
        // Every profile saw traffic, and only the controls got through.
        let accepted: u64 = targets
            .values()
            .map(|t| t.verifier.metrics().accepted)
            .sum();
        assert!(accepted > 0);
    }
}

/// The raw `Authorization` header values a case sends, in order.
pub fn header_values(credential: &Credential) -> Vec<Vec<u8>> {
    match credential {
        Credential::Bearer(token) => vec![format!("Bearer {token}").into_bytes()],
        Credential::Raw(values) => values.clone(),
    }
}

/// Whether a refusal for `reason` is a malformed request (400
/// `invalid_request`, gRPC `INVALID_ARGUMENT`) rather than a bad token.
pub fn is_invalid_request(reason: Reason) -> bool {
    matches!(reason, Reason::MultipleCredentials | Reason::EmptyBearer)
}
