//! The `orders.v1.Orders` gRPC service, protected by authlayer (tonic).
//!
//! ```text
//! AUTH_ISSUER=http://127.0.0.1:4000 cargo run --example orders_grpc
//! ```
//!
//! Same environment as the `orders` example (`AUTH_ISSUER`, `AUTH_JWKS_URL`,
//! `AUTH_AUDIENCE`, …); `PORT` defaults to 50051. `GetOrder` needs scope
//! `orders:read`, `CreateOrder` needs `orders:write`, declared in one
//! [`MethodRules`] table next to the server; any other method is denied
//! (`PERMISSION_DENIED`). The generated code is committed under
//! `examples/proto/gen/` so no `protoc` is needed. `AUDIT_LOG` and
//! `RUST_LOG` as for `orders` (`examples/common/observability.rs`); Ctrl-C
//! or SIGTERM stops it gracefully and flushes the audit log.

use std::time::Duration;

use authlayer::{Claims, MethodRulesLayer, Policy, Verifier, VerifyLayer};
use tonic::transport::Server;
use tonic::transport::server::{Router, TcpIncoming};
use tonic::{Request, Response, Status};
use tower::layer::util::{Identity, Stack};

#[allow(clippy::pedantic, missing_docs)]
pub mod pb {
    include!("proto/gen/orders.v1.rs");
}

use pb::orders_server::{Orders, OrdersServer};
use pb::{CreateOrderRequest, GetOrderRequest, Order};

#[path = "common/auth_env.rs"]
#[allow(clippy::duplicate_mod)] // the demo includes both order services
mod auth_env;
pub use auth_env::verifier_from_env;
#[path = "common/observability.rs"]
#[allow(clippy::duplicate_mod, dead_code)] // shared by every example
mod observability;

/// The service implementation.
#[derive(Debug, Default)]
pub struct OrdersService;

fn claims<T>(request: &Request<T>) -> Result<&Claims, Status> {
    request
        .extensions()
        .get::<Claims>()
        .ok_or_else(|| Status::unauthenticated("no verified token"))
}

#[tonic::async_trait]
impl Orders for OrdersService {
    async fn get_order(
        &self,
        request: Request<GetOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        let claims = claims(&request)?;
        Ok(Response::new(Order {
            id: request.get_ref().id,
            item: "widget".into(),
            quantity: 1,
            owner: claims.sub().unwrap_or_default().into(),
        }))
    }

    async fn create_order(
        &self,
        request: Request<CreateOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        let claims = claims(&request)?;
        let body = request.get_ref();
        Ok(Response::new(Order {
            id: 42,
            item: body.item.clone(),
            quantity: body.quantity,
            owner: claims.sub().unwrap_or_default().into(),
        }))
    }
}

/// Who may call which method; methods not listed are denied.
pub fn method_rules() -> MethodRulesLayer {
    MethodRulesLayer::new()
        .method(
            "/orders.v1.Orders/GetOrder",
            Policy::scopes_all(["orders:read"]),
        )
        .method(
            "/orders.v1.Orders/CreateOrder",
            Policy::scopes_all(["orders:write"]),
        )
}

/// The service's server: every call passes `VerifyLayer` first, so a call
/// to any path, known or not, needs a valid token; then the method table.
///
/// Limits (tonic's own; the HTTP examples' `common/limits.rs` serves
/// HTTP/1 and HTTP/2 through hyper-util, which tonic does not): a call gets
/// 60 s (`DEADLINE_EXCEEDED` after, or the client's shorter `grpc-timeout`),
/// a connection at most 64 calls at once and lives at most 30 min (then a
/// GOAWAY and 60 s to finish), and a peer that stops answering HTTP/2 pings
/// for 20 s is dropped.
pub fn router(verifier: Verifier) -> Router<Stack<MethodRulesLayer, Stack<VerifyLayer, Identity>>> {
    // SECURITY (DoS): bounded calls, streams and connection lifetimes.
    Server::builder()
        .timeout(Duration::from_secs(60))
        .concurrency_limit_per_connection(64)
        .max_concurrent_streams(64)
        .max_connection_age(Duration::from_secs(30 * 60))
        .max_connection_age_grace(Duration::from_secs(60))
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .layer(VerifyLayer::new(verifier))
        .layer(method_rules())
        .add_service(OrdersServer::new(OrdersService))
}

/// Serves on 127.0.0.1:`port` (0: any free port); prints the address when ready.
pub async fn serve(verifier: Verifier, port: u16) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    observability::announce(listener.local_addr()?);
    router(verifier)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), observability::stop_signal())
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let audit = observability::AuditDestination::from_env();
    let _audit_log = observability::init_logging(&audit, "info")?;
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(50051);
    let verifier = verifier_from_env().await.map_err(|e| {
        eprintln!("orders_grpc: cannot start: {e}");
        e
    })?;
    serve(verifier, port).await
}
