//! Helper for `benches/load.sh`: serves a test issuer's JWKS and OIDC
//! discovery document on 127.0.0.1 and writes pre-minted access tokens for
//! the `orders` example to files.
//!
//! ```text
//! cargo run --release --example bench_issuer -- OUT_DIR [POOL] [ALG] [LIFETIME_SECS]
//! ```
//!
//! Writes `OUT_DIR/token` (one token, for the repeated-token run) and
//! `OUT_DIR/tokens.txt` (`POOL` distinct tokens, one a line, default
//! 200000), all with audience `urn:orders`, scope `orders:read`, valid for
//! an hour, signed with `ALG` (EdDSA, ES256 or RS256; default EdDSA). Then
//! prints `issuer http://127.0.0.1:PORT` and serves until killed, or for at
//! most `LIFETIME_SECS` (default 900), so it always stops by itself.

use std::io::Write;
use std::time::Duration;

use authlayer::Algorithm;
use authlayer::test_util::{TestIssuer, kids};

fn mint(issuer: &TestIssuer, alg: Algorithm, n: usize) -> Vec<String> {
    let kid = match alg {
        Algorithm::ES256 => kids::EC,
        Algorithm::EdDSA => kids::ED,
        _ => kids::RSA,
    };
    let one = || {
        issuer
            .token()
            .sub("load-test")
            .audience("urn:orders")
            .scope("orders:read")
            .expires_in(Duration::from_secs(3600))
            .key(kid)
            .alg(alg)
            .sign()
    };
    // Both cores: RSA signing is slow, and the pool is large.
    let half = n / 2;
    std::thread::scope(|s| {
        let other = s.spawn(|| (0..half).map(|_| one()).collect::<Vec<_>>());
        let mut tokens: Vec<String> = (half..n).map(|_| one()).collect();
        tokens.extend(other.join().unwrap_or_default());
        tokens
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(
        args.next()
            .ok_or("usage: bench_issuer OUT_DIR [POOL] [ALG] [LIFETIME_SECS]")?,
    );
    let pool: usize = args.next().map_or(Ok(200_000), |v| v.parse())?;
    let alg = match args.next().as_deref() {
        None | Some("EdDSA") => Algorithm::EdDSA,
        Some("ES256") => Algorithm::ES256,
        Some("RS256") => Algorithm::RS256,
        Some(other) => return Err(format!("unsupported algorithm {other}").into()),
    };
    let lifetime: u64 = args.next().map_or(Ok(900), |v| v.parse())?;

    let issuer = TestIssuer::new("http://127.0.0.1");
    // Serving renames the issuer to the server's URL: mint afterwards.
    let server = issuer.serve().await;
    // Nobody fetches keys before the address is printed: minting may block
    // this single-threaded runtime.
    let tokens = mint(&issuer, alg, pool + 1);
    let (first, rest) = tokens.split_first().ok_or("empty pool")?;
    std::fs::write(out.join("token"), first)?;
    let mut file = std::io::BufWriter::new(std::fs::File::create(out.join("tokens.txt"))?);
    for token in rest {
        writeln!(file, "{token}")?;
    }
    file.flush()?;
    println!("issuer {}", server.issuer_url());
    std::io::stdout().flush()?;
    tokio::time::sleep(Duration::from_secs(lifetime)).await;
    Ok(())
}
