//! The attack suite: every case of the [`corpus`] (forged, malformed and
//! policy-violating tokens and requests, one group per attack class of the
//! JWT CVE history) with its exact expected outcome, through
//! `Verifier::verify` (the exact `Reason`) and over HTTP through the real
//! `VerifyLayer` (401 `invalid_token` or 400 `invalid_request`, with the
//! exact `WWW-Authenticate` challenge) of `common::orders_app`, one server
//! per [`corpus::Profile`] on 127.0.0.1:0. The same corpus runs over gRPC
//! in the examples' tests.
//!
//! [`runner`] checks a case both ways; [`kid_flood`], the random-`kid`
//! flood, is a test of its own.

mod corpus;
mod kid_flood;
mod runner;

use corpus::Attack;

use crate::common::{orders_app, serve_axum};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attack_is_refused_by_verify_and_over_http() {
    let attack = Attack::new().await;
    let targets = attack
        .targets(async |verifier| format!("http://{}", serve_axum(orders_app(verifier)).await))
        .await;
    let http = reqwest::Client::new();
    attack
        .run(&targets, "verify() and HTTP", async |target, case| {
            runner::check(&http, target, case).await
        })
        .await;
}
