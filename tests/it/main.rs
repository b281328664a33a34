//! The library's integration tests, in one binary (each test binary links
//! the whole dependency tree again): one module per surface, real servers
//! on 127.0.0.1 with port 0. They compile no example source: the examples
//! and the suites that run them are the package `authlayer-examples`
//! (examples/tests/it).
//!
//! The module `axum` is named for the surface it tests: only here, at the
//! root, does it hide the crate of the same name (write `::axum` here);
//! everywhere else `axum::` is the crate.

mod common;
mod policy_model;

mod attacks;
mod audit_rules;
mod authz;
mod axum;
mod cache;
mod config;
mod dpop;
mod jwks_faults;
mod metadata;
mod randomized;
mod rejections;
mod wycheproof;
