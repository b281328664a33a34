//! A bounded, seeded randomized test of the entry points the fuzz targets
//! exercise (`fuzz/`), so every CI run covers them: `Verifier::verify`,
//! `jwks::verify_jws` and the `VerifyLayer` service.
//!
//! Valid tokens (RS256, PS256, ES256, `EdDSA`, HS256) are mutated at random:
//! bit flips, character edits, truncation, segment swaps and splices,
//! base64 garbage, and JSON mutations of header or payload re-signed with
//! the real key. Nothing may panic; a token mutated without re-signing is
//! never accepted unless it is unchanged; a re-signed one is accepted if and
//! only if an independent model of the policy (`policy_accepts`) says so.
//!
//! `AUTHLAYER_RANDOMIZED_SEED` and `AUTHLAYER_RANDOMIZED_ITERS` override the
//! seed and the number of iterations (defaults: fixed seed, 3000).

use std::convert::Infallible;
use std::time::{Duration, Instant};

use authlayer::test_util::verify_jws;
use authlayer::test_util::{TestIssuer, kids};
use authlayer::{Algorithm, Verifier, VerifyLayer};
use http::{Request, Response, StatusCode, header};
use serde_json::{Map, Value, json};
use tower::{Layer as _, ServiceExt as _, service_fn};

use crate::common::{AUDIENCE, b64, now};

const ISS: &str = "https://id.random.test";
const AUD: &str = AUDIENCE;
const HS_KID: &str = "hs-1";
const SECRET: &[u8; 32] = b"randomized-secret-32-bytes-long!";
const LEEWAY: i64 = 60;
/// Stop early if the machine is slow: the test must stay a few seconds.
const TIME_BUDGET: Duration = Duration::from_secs(6);

/// xorshift64*: small, fast, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).expect("usize fits u64")).expect("below n")
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// A valid token and how it was made, so mutations can be re-signed.
#[derive(Clone)]
struct Base {
    token: String,
    header: Map<String, Value>,
    payload: Map<String, Value>,
    kid: &'static str,
    alg: Algorithm,
}

fn alg_name(alg: Algorithm) -> String {
    format!("{alg:?}")
}

fn base(issuer: &TestIssuer, kid: &'static str, alg: Algorithm) -> Base {
    let Value::Object(header) = json!({"alg": alg_name(alg), "kid": kid, "typ": "JWT"}) else {
        unreachable!()
    };
    let now = now();
    let Value::Object(payload) = json!({
        "iss": ISS, "aud": AUD, "sub": "alice", "scope": "orders:read",
        "iat": now, "exp": now + 600, "jti": "j-1",
    }) else {
        unreachable!()
    };
    let token = issuer
        .sign_raw(
            Value::Object(header.clone()).to_string().as_bytes(),
            Value::Object(payload.clone()).to_string().as_bytes(),
            kid,
            alg,
        )
        .expect("sign");
    Base {
        token,
        header,
        payload,
        kid,
        alg,
    }
}

const CHARS: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \t{}\"%\\~";

/// Mutations that do not re-sign: the result must never verify unless it
/// is the original token.
fn mutate_bytes(rng: &mut Rng, base: &Base, other: &Base) -> (&'static str, String) {
    let token = base.token.as_bytes();
    let mut bytes = token.to_vec();
    let segments: Vec<&str> = base.token.split('.').collect();
    let other_segments: Vec<&str> = other.token.split('.').collect();
    let kind = match rng.below(9) {
        0 => {
            let i = rng.below(bytes.len());
            bytes[i] ^= 1 << rng.below(8);
            "bit flip"
        }
        1 => {
            let i = rng.below(bytes.len());
            bytes[i] = *rng.pick(CHARS);
            "character replaced"
        }
        2 => {
            let i = rng.below(bytes.len() + 1);
            bytes.insert(i, *rng.pick(CHARS));
            "character inserted"
        }
        3 => {
            let i = rng.below(bytes.len());
            bytes.remove(i);
            "character deleted"
        }
        4 => {
            bytes.truncate(rng.below(bytes.len()));
            "truncated"
        }
        5 => {
            // Permute the segments, or take some from another token.
            let mut parts: Vec<&str> = segments.clone();
            let (i, j) = (rng.below(3), rng.below(3));
            if rng.chance(2) {
                parts.swap(i, j);
            } else {
                parts[i] = other_segments[i];
            }
            bytes = parts.join(".").into_bytes();
            "segments swapped or spliced"
        }
        6 => {
            let mut parts: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
            let len = rng.below(400);
            let garbage: Vec<u8> = (0..len)
                .map(|_| u8::try_from(rng.below(256)).expect("byte"))
                .collect();
            parts[rng.below(3)] = b64(&garbage);
            bytes = parts.join(".").into_bytes();
            "segment replaced by base64 garbage"
        }
        7 => {
            let extra = match rng.below(4) {
                0 => ".",
                1 => ".e30",
                2 => "=",
                _ => "..e30.e30",
            };
            bytes.extend_from_slice(extra.as_bytes());
            "suffix appended"
        }
        _ => {
            // Several edits at once.
            for _ in 0..=rng.below(4) {
                let i = rng.below(bytes.len());
                bytes[i] = *rng.pick(CHARS);
            }
            "several characters replaced"
        }
    };
    (kind, String::from_utf8_lossy(&bytes).into_owned())
}

const HEADER_FIELDS: &[&str] = &[
    "alg", "kid", "typ", "cty", "crit", "b64", "enc", "zip", "jwk", "jku", "x5u", "x5c", "x",
];
const CLAIM_FIELDS: &[&str] = &[
    "iss",
    "aud",
    "sub",
    "exp",
    "nbf",
    "iat",
    "jti",
    "scope",
    "scp",
    "client_id",
    "roles",
    "tenant",
    "x",
];
const KNOWN_HEADER: &[&str] = &["alg", "kid", "typ", "cty", "crit", "b64", "enc", "zip"];
const KNOWN_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "scope",
    "scp",
    "roles",
    "tenant",
    "client_id",
];

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    let now = now();
    match rng.below(if depth > 2 { 12 } else { 14 }) {
        0 => Value::Null,
        1 => json!(rng.chance(2)),
        2 => json!(now + 600),
        3 => json!(now - 600),
        4 => json!(i64::try_from(rng.next() >> 1).expect("positive")),
        5 => json!(-1),
        6 => json!(f64::from(u32::try_from(rng.below(1_000_000)).expect("small")) + 0.5),
        7 => json!(1e300),
        8 => json!(*rng.pick(&[
            ISS, AUD, "JWT", "at+jwt", "none", "RS256", "HS256", "EdDSA", "ES256", "PS256",
            "rsa-1", "ec-1", "hs-1", ""
        ])),
        9 => json!(format!("{}", now + 600)),
        10 => json!(*rng.pick(&[
            &format!("{ISS}/"),
            "URN:ORDERS",
            "urn:orders ",
            "b64",
            "exp"
        ])),
        11 => json!(u64::MAX),
        12 => Value::Array(
            (0..rng.below(3))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let mut map = Map::new();
            for _ in 0..rng.below(3) {
                let key = (*rng.pick(CLAIM_FIELDS)).to_owned();
                map.insert(key, random_value(rng, depth + 1));
            }
            Value::Object(map)
        }
    }
}

/// A JSON mutation of one object: returns the new JSON text and whether it
/// holds a duplicate of a field the crate reads (which must be refused).
fn mutate_object(
    rng: &mut Rng,
    map: &Map<String, Value>,
    fields: &[&str],
    known: &[&str],
) -> (String, bool) {
    let mut map = map.clone();
    for _ in 0..=rng.below(2) {
        let key = (*rng.pick(fields)).to_owned();
        if rng.chance(3) {
            map.remove(&key);
        } else {
            let value = random_value(rng, 0);
            map.insert(key, value);
        }
    }
    let text = Value::Object(map.clone()).to_string();
    if rng.chance(6) {
        // A duplicate member, written into the text.
        let key = *rng.pick(fields);
        let value = random_value(rng, 1);
        let duplicate = map.contains_key(key) && known.contains(&key);
        let inserted = format!("{{{}:{value},{}", Value::String(key.to_owned()), &text[1..]);
        let inserted = if map.is_empty() {
            format!("{{{}:{value}}}", Value::String(key.to_owned()))
        } else {
            inserted
        };
        return (inserted, duplicate);
    }
    (text, false)
}

/// What the policy says about a validly signed token (`signed_alg` by the
/// key `signed_kid`), judged independently of the crate.
fn policy_accepts(
    header: &str,
    payload: &str,
    signed_alg: Algorithm,
    signed_kid: &str,
) -> Result<(), String> {
    let header: Value = serde_json::from_str(header).map_err(|e| format!("header JSON: {e}"))?;
    let payload: Value = serde_json::from_str(payload).map_err(|e| format!("payload JSON: {e}"))?;
    let h = header.as_object().ok_or("header not an object")?;
    let p = payload.as_object().ok_or("payload not an object")?;
    if h.get("alg") != Some(&json!(alg_name(signed_alg))) {
        return Err(format!("alg {:?} is not the signing alg", h.get("alg")));
    }
    for forbidden in ["crit", "b64", "enc", "zip"] {
        if h.contains_key(forbidden) {
            return Err(format!("header has {forbidden}"));
        }
    }
    if h.get("cty")
        .and_then(Value::as_str)
        .is_some_and(|c| c.eq_ignore_ascii_case("jwt"))
    {
        return Err("cty JWT".into());
    }
    for name in ["cty", "typ"] {
        if h.get(name).is_some_and(|v| !v.is_string() && !v.is_null()) {
            return Err(format!("{name} not a string"));
        }
    }
    match h.get("kid") {
        None | Some(Value::Null) => {}
        Some(Value::String(kid)) if kid == signed_kid => {}
        Some(other) => return Err(format!("kid {other} is not the signing key's")),
    }
    if p.get("iss") != Some(&json!(ISS)) {
        return Err(format!("iss {:?}", p.get("iss")));
    }
    let aud_ok = match p.get("aud") {
        Some(Value::String(a)) => a == AUD,
        Some(Value::Array(list)) => {
            list.iter().all(Value::is_string) && list.iter().any(|a| a == AUD)
        }
        _ => false,
    };
    if !aud_ok {
        return Err(format!("aud {:?}", p.get("aud")));
    }
    let date = |name: &str| -> Result<Option<i64>, String> {
        match p.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                if let Some(i) = n.as_i64() {
                    Ok(Some(i))
                } else if n.is_u64() {
                    Err(format!("{name} out of range"))
                } else {
                    let f = n.as_f64().expect("float");
                    if f.abs() < 9.0e15 {
                        // Integral part (toward the past) of a small float.
                        let text = format!("{:.0}", f.floor());
                        Ok(Some(text.parse().expect("integral")))
                    } else {
                        Err(format!("{name} out of range"))
                    }
                }
            }
            Some(other) => Err(format!("{name} is {other}")),
        }
    };
    let now = now();
    let exp = date("exp")?.ok_or("no exp")?;
    if exp + LEEWAY <= now {
        return Err("expired".into());
    }
    if date("nbf")?.is_some_and(|nbf| nbf - LEEWAY > now) {
        return Err("not yet valid".into());
    }
    date("iat")?;
    // Registered claims keep strict types; `scope`, `scp`, `roles`,
    // `tenant` and `client_id` of another shape are left out of the
    // standard view, never fatal: a claim no rule needs must not fail a
    // token.
    for name in ["sub", "jti"] {
        if p.get(name).is_some_and(|v| !v.is_string() && !v.is_null()) {
            return Err(format!("{name} not a string"));
        }
    }
    Ok(())
}

struct Fixture {
    issuer: TestIssuer,
    verifier: Verifier,
    jwks: String,
}

async fn fixture() -> Fixture {
    let issuer = TestIssuer::new(ISS);
    issuer.add_secret(HS_KID, Algorithm::HS256, SECRET);
    let jwks = issuer.jwks_json();
    let verifier = Verifier::builder()
        .issuer(ISS)
        .jwks_json(jwks.clone())
        .audience(AUD)
        .algorithms([
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
            Algorithm::HS256,
        ])
        .shared_secret_with_kid(HS_KID, SECRET.to_vec())
        .build()
        .await
        .expect("verifier");
    Fixture {
        issuer,
        verifier,
        jwks,
    }
}

async fn accepted(f: &Fixture, token: &str) -> bool {
    f.verifier.verify(token).await.is_ok()
}

/// The same token through the layer: the status agrees with `verify`.
async fn layer_status(f: &Fixture, value: &[u8]) -> Option<StatusCode> {
    let value = http::HeaderValue::from_bytes(value).ok()?;
    let request = Request::builder()
        .uri("/orders/1")
        .header(header::AUTHORIZATION, value)
        .body(())
        .expect("request");
    let service =
        VerifyLayer::new(f.verifier.clone()).layer(service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(()))
        }));
    Some(service.oneshot(request).await.expect("infallible").status())
}

/// A JSON mutation of header or payload, re-signed with the real key:
/// accepted exactly when the policy model says so. Returns whether accepted.
async fn resigned_mutation(f: &Fixture, rng: &mut Rng, b: &Base) -> bool {
    let (header, payload, duplicate) = if rng.chance(2) {
        let (h, dup) = mutate_object(rng, &b.header, HEADER_FIELDS, KNOWN_HEADER);
        (h, Value::Object(b.payload.clone()).to_string(), dup)
    } else {
        let (p, dup) = mutate_object(rng, &b.payload, CLAIM_FIELDS, KNOWN_CLAIMS);
        (Value::Object(b.header.clone()).to_string(), p, dup)
    };
    let token = f
        .issuer
        .sign_raw(header.as_bytes(), payload.as_bytes(), b.kid, b.alg)
        .expect("re-sign");
    let verdict = policy_accepts(&header, &payload, b.alg, b.kid);
    let ok = accepted(f, &token).await;
    if ok {
        assert!(
            !duplicate,
            "accepted a duplicate known member:\n{header}\n{payload}"
        );
        if let Err(why) = verdict {
            panic!("accepted against policy ({why}):\n{header}\n{payload}");
        }
    } else {
        // And the other way: what the policy allows is not refused.
        assert!(
            duplicate || verdict.is_err(),
            "refused a token the policy allows:\n{header}\n{payload}"
        );
    }
    ok
}

/// A mutation without re-signing: never accepted unless unchanged, by
/// `verify`, `verify_jws` and the layer alike. Returns whether the layer ran.
async fn byte_mutation(f: &Fixture, rng: &mut Rng, bases: &[Base], b: &Base, other: &Base) -> bool {
    let (kind, token) = mutate_bytes(rng, b, other);
    let unchanged = bases.iter().any(|x| x.token == token);
    let ok = accepted(f, &token).await;
    assert!(
        !ok || unchanged,
        "{kind}: accepted a changed token: {token}"
    );
    if b.alg != Algorithm::HS256 {
        let jws = verify_jws(&token, &f.jwks, every_algorithm());
        assert!(
            jws.is_err() || unchanged,
            "{kind}: verify_jws accepted: {token}"
        );
    }
    if !rng.chance(4) {
        return false;
    }
    let mut value = b"Bearer ".to_vec();
    value.extend_from_slice(token.as_bytes());
    if let Some(status) = layer_status(f, &value).await {
        let want = if ok {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        let empty = token.trim_matches(' ').is_empty();
        assert!(
            status == want || (empty && status == StatusCode::BAD_REQUEST),
            "{kind}: layer said {status}, verify said {ok}: {token:?}"
        );
    }
    true
}

fn every_algorithm() -> &'static [Algorithm] {
    &[
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
        Algorithm::HS256,
    ]
}

#[tokio::test(flavor = "current_thread")]
async fn random_mutations_never_panic_and_never_forge_acceptance() {
    let seed = env_u64("AUTHLAYER_RANDOMIZED_SEED").unwrap_or(0x5eed_a11c_e5ca_fe01);
    let iterations = env_u64("AUTHLAYER_RANDOMIZED_ITERS").unwrap_or(3000);
    println!("randomized: seed {seed:#x}, {iterations} iterations");
    let mut rng = Rng(seed | 1);
    let f = fixture().await;
    let bases = [
        base(&f.issuer, kids::RSA, Algorithm::RS256),
        base(&f.issuer, kids::RSA, Algorithm::PS256),
        base(&f.issuer, kids::EC, Algorithm::ES256),
        base(&f.issuer, kids::ED, Algorithm::EdDSA),
        base(&f.issuer, HS_KID, Algorithm::HS256),
    ];
    for b in &bases {
        assert!(accepted(&f, &b.token).await, "base {:?} must verify", b.alg);
        if b.alg != Algorithm::HS256 {
            assert!(verify_jws(&b.token, &f.jwks, every_algorithm()).is_ok());
        }
    }

    let started = Instant::now();
    let (mut done, mut byte_mutations, mut resigned, mut resigned_accepted, mut layered) =
        (0, 0, 0, 0, 0);
    while done < iterations && started.elapsed() < TIME_BUDGET {
        done += 1;
        let b = &bases[rng.below(bases.len())];
        let other = &bases[rng.below(bases.len())];
        if rng.chance(3) {
            resigned += 1;
            if resigned_mutation(&f, &mut rng, b).await {
                resigned_accepted += 1;
            }
        } else {
            byte_mutations += 1;
            if byte_mutation(&f, &mut rng, &bases, b, other).await {
                layered += 1;
            }
        }
    }
    println!(
        "randomized: {done} iterations in {:?}: {byte_mutations} byte mutations (none accepted), \
         {resigned} re-signed JSON mutations ({resigned_accepted} accepted, all as the policy model predicts), \
         {layered} through the layer",
        started.elapsed()
    );
    assert!(
        done >= iterations.min(500),
        "too few iterations ran: {done}"
    );
    assert!(byte_mutations > 0 && resigned > 0 && layered > 0);
}

/// Random bytes as a whole `Authorization` header value and as a JWKS
/// document: never a panic, and the layer answers only 200, 400 or 401.
#[tokio::test(flavor = "current_thread")]
async fn random_header_values_and_key_sets_never_panic() {
    let seed = env_u64("AUTHLAYER_RANDOMIZED_SEED").unwrap_or(0x0bad_5eed_0bad_5eed);
    let mut rng = Rng(seed | 1);
    let f = fixture().await;
    let good = base(&f.issuer, kids::ED, Algorithm::EdDSA);
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..1000 {
        if started.elapsed() > TIME_BUDGET / 2 {
            break;
        }
        let mut value: Vec<u8> = match rng.below(3) {
            0 => b"Bearer ".to_vec(),
            1 => b"bearer  ".to_vec(),
            _ => Vec::new(),
        };
        let len = rng.below(60);
        value.extend((0..len).map(|_| *rng.pick(CHARS)));
        if rng.chance(2) {
            value.extend_from_slice(good.token.as_bytes());
        }
        if let Some(status) = layer_status(&f, &value).await {
            assert!(
                [
                    StatusCode::OK,
                    StatusCode::BAD_REQUEST,
                    StatusCode::UNAUTHORIZED
                ]
                .contains(&status),
                "{status} for {value:?}"
            );
            *statuses.entry(status.as_u16()).or_insert(0_u32) += 1;
        }
    }
    println!("randomized header values: statuses {statuses:?}");
    assert!(statuses.contains_key(&401));

    // Key sets: the issuer's, mutated byte by byte.
    let jwks = f.jwks.clone().into_bytes();
    let all = &[Algorithm::RS256, Algorithm::EdDSA, Algorithm::HS256];
    let mut accepted_sets = 0;
    for _ in 0..300 {
        let mut doc = jwks.clone();
        for _ in 0..=rng.below(3) {
            let i = rng.below(doc.len());
            doc[i] = *rng.pick(CHARS);
        }
        let doc = String::from_utf8_lossy(&doc);
        if let Ok(payload) = verify_jws(&good.token, &doc, all) {
            // Only the genuine Ed25519 key can verify: the payload is the signed one.
            assert_eq!(
                payload,
                Value::Object(good.payload.clone()).to_string().into_bytes()
            );
            accepted_sets += 1;
        }
        let _ = Verifier::builder()
            .issuer(ISS)
            .jwks_json(doc.into_owned())
            .audience(AUD)
            .build()
            .await;
    }
    println!(
        "randomized key sets: 300 mutated sets, {accepted_sets} still verify the genuine token"
    );
}

impl crate::policy_model::Choose for Rng {
    fn below(&mut self, n: usize) -> usize {
        Rng::below(self, n)
    }
}

/// Random policy trees (all / any / not over scopes, roles, tenant and a
/// closure) over random claims (absent, `null`, strings, arrays, arrays
/// with non-strings, numbers, objects): the crate agrees with the
/// three-valued reference model of `policy_model`, and `not(p)` never
/// allows where `p` cannot be evaluated.
#[test]
fn random_policies_agree_with_the_three_valued_model() {
    use crate::policy_model::{Shape, agrees, random_claims};

    let seed = env_u64("AUTHLAYER_RANDOMIZED_SEED").unwrap_or(0x0901_1c1e_5eed_0001);
    let iterations = env_u64("AUTHLAYER_RANDOMIZED_ITERS").unwrap_or(20_000);
    let mut rng = Rng(seed | 1);
    let started = Instant::now();
    let mut done = 0;
    while done < iterations && started.elapsed() < TIME_BUDGET {
        done += 1;
        let shape = Shape::random(&mut rng, 3);
        let claims = Value::Object(random_claims(&mut rng)).to_string();
        if let Err(why) = agrees(&shape, &claims) {
            panic!("seed {seed:#x}, case {done}: {why}");
        }
    }
    println!(
        "randomized policies: seed {seed:#x}, {done} cases in {:?}",
        started.elapsed()
    );
    assert!(done >= iterations.min(2000), "too few cases ran: {done}");
}
