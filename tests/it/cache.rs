//! The verified-token cache: what it remembers, and what it must not.

use authlayer::test_util::{TestIssuer, kids};
use authlayer::{Algorithm, CacheSize, Reason, Verifier};

use crate::common::{AUDIENCE, orders_token, setup};

async fn verifier_for(issuer: &TestIssuer, cache: CacheSize) -> Verifier {
    Verifier::builder()
        .issuer(issuer.issuer())
        .jwks_json(issuer.jwks_json())
        .audience(AUDIENCE)
        .token_cache(cache)
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn repeated_token_is_answered_from_the_cache() {
    let issuer = TestIssuer::new("https://cache.test");
    let verifier = verifier_for(&issuer, CacheSize::Bytes(1 << 20)).await;
    let token = orders_token(&issuer).sub("a").sign();
    for _ in 0..5 {
        assert_eq!(verifier.verify(&token).await.unwrap().sub(), Some("a"));
    }
    verifier.settle_cache();
    let m = verifier.metrics();
    assert_eq!((m.accepted, m.cache_hits, m.cached_tokens), (5, 4, 1));
}

#[tokio::test]
async fn cache_can_be_switched_off() {
    let issuer = TestIssuer::new("https://cache.test");
    let verifier = verifier_for(&issuer, CacheSize::Off).await;
    let token = orders_token(&issuer).sign();
    for _ in 0..3 {
        verifier.verify(&token).await.unwrap();
    }
    verifier.settle_cache();
    let m = verifier.metrics();
    assert_eq!((m.accepted, m.cache_hits, m.cached_tokens), (3, 0, 0));
}

#[tokio::test]
async fn only_the_exact_token_hits() {
    let issuer = TestIssuer::new("https://cache.test");
    let verifier = verifier_for(&issuer, CacheSize::Bytes(1 << 20)).await;
    let token = orders_token(&issuer).key(kids::ED).sign();
    verifier.verify(&token).await.unwrap();
    // Same header and payload, another (forged) signature; and a prefix.
    let (message, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{message}.{}", "A".repeat(86));
    assert_eq!(
        verifier.verify(&forged).await.unwrap_err().reason(),
        Reason::BadSignature
    );
    assert!(verifier.verify(&token[..token.len() - 1]).await.is_err());
    assert_eq!(verifier.metrics().cache_hits, 0);
}

#[tokio::test]
async fn failures_are_not_cached() {
    let issuer = TestIssuer::new("https://cache.test");
    let verifier = verifier_for(&issuer, CacheSize::Bytes(1 << 20)).await;
    let wrong_aud = issuer.token().audience("urn:other").sign();
    for _ in 0..3 {
        assert!(verifier.verify(&wrong_aud).await.is_err());
    }
    verifier.settle_cache();
    assert_eq!(verifier.metrics().cached_tokens, 0);
}

#[tokio::test]
async fn cached_token_dies_with_its_key() {
    let s = setup().await;
    let token = orders_token(&s.issuer).key(kids::EC).sign();
    let other = orders_token(&s.issuer).key(kids::RSA).sign();
    s.verifier.verify(&token).await.unwrap();
    s.verifier.verify(&other).await.unwrap();
    s.verifier.settle_cache();
    assert_eq!(s.verifier.metrics().cached_tokens, 2);

    // The EC key is withdrawn (compromise): its token stops working at once,
    // the RSA one stays cached.
    s.issuer.remove_key(kids::EC);
    s.verifier.refresh().await;
    assert_eq!(
        s.verifier.verify(&token).await.unwrap_err().reason(),
        Reason::UnknownKey
    );
    s.verifier.settle_cache();
    assert_eq!(s.verifier.metrics().cached_tokens, 1);
    let hits = s.verifier.metrics().cache_hits;
    s.verifier.verify(&other).await.unwrap();
    assert_eq!(
        s.verifier.metrics().cache_hits,
        hits + 1,
        "unchanged key keeps its entries"
    );

    // Same kid, new key material: the old entry is not trusted either.
    s.issuer.add_key(kids::RSA, Algorithm::RS256);
    s.verifier.refresh().await;
    assert_eq!(
        s.verifier.verify(&other).await.unwrap_err().reason(),
        Reason::BadSignature
    );
}

#[tokio::test]
async fn memory_is_bounded_by_the_configured_size() {
    let issuer = TestIssuer::new("https://cache.test");
    issuer.add_secret("hs", Algorithm::HS256, &[7; 32]);
    let verifier = Verifier::builder()
        .issuer(issuer.issuer())
        .shared_secret_with_kid("hs", vec![7; 32])
        .jwks_json(issuer.jwks_json())
        .algorithms([Algorithm::HS256])
        .audience(AUDIENCE)
        .token_cache(64 * 1024)
        .build()
        .await
        .unwrap();
    let mut shortest = usize::MAX;
    for i in 0..2000 {
        let token = orders_token(&issuer).claim("n", i).key("hs").sign();
        shortest = shortest.min(token.len());
        verifier.verify(&token).await.unwrap();
    }
    verifier.settle_cache();
    let cached = verifier.metrics().cached_tokens;
    let bound = 64 * 1024 / (shortest as u64 + 512);
    assert!(cached <= bound, "{cached} entries > {bound}");
    assert!(cached > 0);
}

#[tokio::test]
async fn claims_types_do_not_mix() {
    #[derive(serde::Deserialize)]
    struct Mine {
        plan: String,
    }
    let issuer = TestIssuer::new("https://cache.test");
    let verifier = verifier_for(&issuer, CacheSize::Bytes(1 << 20)).await;
    let token = orders_token(&issuer).claim("plan", "pro").sign();
    verifier.verify(&token).await.unwrap();
    let mine = verifier.verify_as::<Mine>(&token).await.unwrap();
    assert_eq!(mine.extra().plan, "pro");
    assert!(verifier.verify(&token).await.is_ok());
}
