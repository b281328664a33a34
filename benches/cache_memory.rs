//! Memory of the verified-token cache, measured as resident set size
//! (`/proc/self/status`, Linux): `cargo bench --bench cache_memory`.
//!
//! 1. Control: 100,000 distinct tokens with the cache off.
//! 2. A 1 MiB cache under 200,000 tokens, then the default cache (16 MiB)
//!    under 1,000,000 distinct tokens: peak RSS must stop growing once the
//!    cache is full, whatever the number of tokens.
//! 3. Memory per cached entry: 200,000 tokens into a cache large enough to
//!    keep them all; RSS growth divided by the entries kept, next to the
//!    weight the cache charges for each (token length + 1,152 bytes).
//!
//! HS256 tokens (one shared secret), because they mint fastest; the cache
//! holds the same entry whatever the algorithm. Tokens are minted, verified
//! and dropped one at a time, so only the cache keeps anything.
//!
//! A `harness = false` bench: `cargo bench` runs it with the criterion
//! benches; a filter argument that does not match `cache_memory` skips it.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use authlayer::test_util::TestIssuer;
use authlayer::{Algorithm, CacheSize, Verifier};

const AUD: &str = "urn:orders";
const SECRET: [u8; 32] = [7; 32];
const MIB: f64 = 1024.0 * 1024.0;

/// `VmRSS` and `VmHWM` (peak) of this process, in bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[allow(clippy::cast_precision_loss)]
fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("verification waited for a known key"),
    }
}

fn verifier(rt: &tokio::runtime::Runtime, issuer: &TestIssuer, cache: CacheSize) -> Verifier {
    rt.block_on(
        Verifier::builder()
            .issuer(issuer.issuer())
            .jwks_json(issuer.jwks_json())
            .audience(AUD)
            .algorithms([Algorithm::HS256])
            .shared_secret_with_kid("hs", SECRET.to_vec())
            .token_cache(cache)
            .build(),
    )
    .expect("verifier")
}

/// Mints and verifies `n` distinct tokens; returns the mean token length.
fn feed(issuer: &TestIssuer, verifier: &Verifier, n: u64, mut every: impl FnMut(u64)) -> u64 {
    let mut total_len = 0;
    for i in 1..=n {
        let token = issuer
            .token()
            .sub("user-42")
            .audience(AUD)
            .scope("orders:read")
            .key("hs")
            .alg(Algorithm::HS256)
            .sign();
        total_len += token.len() as u64;
        ready(verifier.verify(&token)).expect("valid token");
        every(i);
    }
    total_len / n
}

/// What `src/verifier/cache.rs` charges per entry besides the token.
const ENTRY_OVERHEAD: u64 = 1216;

fn main() {
    // `cargo bench [-- FILTER]` passes `--bench` and the filter through.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if std::env::args().any(|a| a == "--list") {
        println!("cache_memory: bench");
        return;
    }
    if !filters.is_empty() && !filters.iter().any(|f| "cache_memory".contains(f.as_str())) {
        return;
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let issuer = TestIssuer::new("https://bench.test");
    issuer.add_secret("hs", Algorithm::HS256, &SECRET);

    // 1. Control: no cache.
    let (start, _) = rss();
    let off = verifier(&rt, &issuer, CacheSize::Off);
    let len = feed(&issuer, &off, 100_000, |_| {});
    drop(off);
    let (_, control_peak) = rss();
    println!("cache_memory: token length {len} bytes (HS256)");
    println!(
        "cache_memory: control, cache off, 100,000 tokens: RSS at start {:.1} MiB, peak {:.1} MiB",
        mib(start),
        mib(control_peak)
    );

    // 2a. A 1 MiB cache, to separate what grows with the capacity from
    // what does not.
    let small = verifier(&rt, &issuer, CacheSize::Bytes(1024 * 1024));
    feed(&issuer, &small, 200_000, |_| {});
    small.settle_cache();
    let (now, peak) = rss();
    println!(
        "cache_memory: 1 MiB cache after 200,000 distinct tokens: RSS {:.1} MiB, peak {:.1} MiB \
         (+{:.1} MiB over the control's peak), cached {}",
        mib(now),
        mib(peak),
        mib(peak.saturating_sub(control_peak)),
        small.metrics().cached_tokens
    );
    drop(small);

    // 2b. The default capacity under 1,000,000 distinct tokens.
    let default = verifier(&rt, &issuer, CacheSize::Bytes(16 * 1024 * 1024));
    let began = Instant::now();
    feed(&issuer, &default, 1_000_000, |i| {
        if i % 200_000 == 0 {
            default.settle_cache();
            let (now, peak) = rss();
            println!(
                "cache_memory: default 16 MiB cache, {i:>9} tokens: RSS {:.1} MiB, peak {:.1} MiB, cached {}",
                mib(now),
                mib(peak),
                default.metrics().cached_tokens
            );
        }
    });
    default.settle_cache();
    let (now, peak) = rss();
    println!(
        "cache_memory: default 16 MiB cache after 1,000,000 distinct tokens ({:.1} s): \
         RSS {:.1} MiB, peak {:.1} MiB (+{:.1} MiB over the control's peak), cached {}",
        began.elapsed().as_secs_f64(),
        mib(now),
        mib(peak),
        mib(peak.saturating_sub(control_peak)),
        default.metrics().cached_tokens
    );
    drop(default);

    // 3. Bytes per entry: a cache that keeps every token.
    let n = 200_000;
    let big = verifier(&rt, &issuer, CacheSize::Bytes(4 * 1024 * 1024 * 1024));
    // Warm the allocator with the same churn, then measure from here.
    feed(&issuer, &big, 1_000, |_| {});
    let (before, _) = rss();
    let len = feed(&issuer, &big, n, |_| {});
    big.settle_cache();
    let cached = big.metrics().cached_tokens;
    let (after, _) = rss();
    let per_entry = after.saturating_sub(before) / cached.max(1);
    println!(
        "cache_memory: {cached} entries kept: RSS +{:.1} MiB, {per_entry} bytes per entry \
         (charged weight: {} bytes = token {len} + {ENTRY_OVERHEAD})",
        mib(after.saturating_sub(before)),
        len + ENTRY_OVERHEAD
    );
}
