//! The examples' tests, in one binary: the example services and the issuer
//! driven in process and as the binaries a user runs, the end-to-end
//! suites, and the surfaces that need a gRPC service (the generated
//! `orders.v1.Orders` of `orders_grpc`). One module per surface, real
//! servers on 127.0.0.1 with port 0.
//!
//! The examples are compiled in once, here, and used by every module that
//! needs them. The module `tonic` is named for the surface it tests: only
//! here, at the root, does it hide the crate of the same name (write
//! `::tonic` here); everywhere else `tonic::` is the crate.

#[path = "../../gateway.rs"]
#[allow(dead_code)] // its `main`, `serve` and env parsing belong to the example binary
mod gateway_example;
#[path = "../../issuer/main.rs"]
#[allow(dead_code)] // the issuer's own `main` and CLI helpers are unused here
mod issuer;
#[path = "../../orders.rs"]
#[allow(dead_code)] // its `main` and `serve` belong to the example binary
mod orders;
#[path = "../../orders_grpc.rs"]
#[allow(dead_code)] // its `main` and `serve` belong to the example binary
mod orders_grpc;

mod common;

mod attacks;
mod audit;
mod dpop;
mod e2e;
mod examples;
mod gateway;
mod introspection;
mod issuer_pg;
mod metadata;
mod outbound;
mod tonic;
