//! What the examples' tests share: the library's test helpers (one copy,
//! tests/it/common.rs, included here by path) and the gRPC server and
//! client of the `orders.v1.Orders` service.

use std::net::SocketAddr;

use tonic::transport::Channel;
use tonic::transport::server::{Router, TcpIncoming};

use crate::orders_grpc::pb::orders_client::OrdersClient;

#[path = "../../../tests/it/common.rs"]
#[allow(dead_code)] // `orders_app` and `Setup::server` serve the library's tests only
mod shared;
pub use shared::*;

/// Serves a tonic server whose every call passes `VerifyLayer` (as
/// `orders_grpc::router` builds it) on 127.0.0.1:0.
pub async fn serve_grpc<L>(router: Router<L>) -> SocketAddr
where
    L: tower::Layer<tonic::service::Routes> + Send + 'static,
    L::Service: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    <L::Service as tower::Service<http::Request<tonic::body::Body>>>::Future: Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = TcpIncoming::from(listener);
    tokio::spawn(async move { router.serve_with_incoming(incoming).await.unwrap() });
    addr
}

/// A client of the `orders.v1.Orders` service at `addr`.
pub async fn grpc_client(addr: SocketAddr) -> OrdersClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap_or_else(|e| panic!("gRPC connect to {addr}: {e}"));
    OrdersClient::new(channel)
}

/// A gRPC request carrying `authorization: Bearer <token>`.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}
