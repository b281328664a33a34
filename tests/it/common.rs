//! Shared set-up for the integration tests: a real issuer JWKS server and
//! real protected services, all on 127.0.0.1 with port 0.
#![allow(dead_code)]

use std::net::SocketAddr;

use authlayer::Verifier;
use authlayer::test_util::{TestIssuer, TestServer};

pub const AUDIENCE: &str = "urn:orders";

pub struct Setup {
    pub issuer: TestIssuer,
    pub server: TestServer,
    pub verifier: Verifier,
}

/// A `TestIssuer` served on loopback and a verifier that found its keys by
/// OIDC discovery.
pub async fn setup() -> Setup {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let verifier = Verifier::builder()
        .issuer(server.issuer_url())
        .audience(AUDIENCE)
        .build()
        .await
        .expect("verifier builds against the test issuer");
    Setup {
        issuer,
        server,
        verifier,
    }
}

/// Serves an axum router on 127.0.0.1:0.
pub async fn serve_axum(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A tracing subscriber capturing formatted events into a buffer.
#[derive(Clone, Default)]
pub struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
