//! The integration tests, in one binary (each test binary links the whole
//! dependency tree again): one module per surface, real servers on
//! 127.0.0.1 with port 0.
//!
//! The example services are compiled in once, here, and used by every
//! module that needs them. The modules `axum` and `tonic` are named for the
//! surface they test: only here, at the root, do they hide the crates of the
//! same name (write `::axum` here); everywhere else `axum::` is the crate.

#[cfg(all(feature = "axum", feature = "tonic"))]
#[path = "../../examples/gateway.rs"]
#[allow(dead_code)] // its `main`, `serve` and env parsing belong to the example binary
mod gateway_example;
#[cfg(all(feature = "axum", feature = "tonic"))]
#[path = "../../examples/issuer/main.rs"]
#[allow(dead_code)] // the issuer's own `main` and CLI helpers are unused here
mod issuer;
#[path = "../../examples/orders.rs"]
#[allow(dead_code)] // its `main` and `serve` belong to the example binary
mod orders;
#[path = "../../examples/orders_grpc.rs"]
#[allow(dead_code)] // its `main` and `serve` belong to the example binary
mod orders_grpc;

mod common;
mod policy_model;

mod attacks;
#[cfg(all(
    feature = "axum",
    feature = "tonic",
    feature = "audit-log",
    feature = "metrics"
))]
mod audit;
mod authz;
mod axum;
mod cache;
#[cfg(all(feature = "axum", feature = "tonic"))]
mod e2e;
mod examples;
#[cfg(all(feature = "axum", feature = "tonic"))]
mod gateway;
mod introspection;
#[cfg(all(feature = "axum", feature = "tonic"))]
mod issuer_pg;
mod jwks_faults;
#[cfg(all(feature = "axum", feature = "tonic"))]
mod outbound;
mod randomized;
#[cfg(all(feature = "axum", feature = "tonic"))]
mod rejections;
mod tonic;
mod wycheproof;
