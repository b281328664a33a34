//! The attack corpus of the library's tests (tests/it/attacks/corpus, one
//! copy, included here by path) over gRPC: every case through the real
//! `VerifyLayer` of the `orders_grpc` tonic example (`UNAUTHENTICATED` or
//! `INVALID_ARGUMENT`, with the exact message), one server per
//! [`Profile`](corpus::Profile) on 127.0.0.1:0.

#[path = "../../../tests/it/attacks/corpus/mod.rs"]
mod corpus;

use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::common::{grpc_client, serve_grpc};
use crate::orders_grpc;
use crate::orders_grpc::pb::GetOrderRequest;
use crate::orders_grpc::pb::orders_client::OrdersClient;
use corpus::{Accept, Attack, Case, Reject, Target, header_values, is_invalid_request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attack_is_refused_over_grpc() {
    let attack = Attack::new().await;
    let targets = attack
        .targets(async |verifier| {
            grpc_client(serve_grpc(orders_grpc::router(verifier)).await).await
        })
        .await;
    attack
        .run(&targets, "gRPC", async |target, case| {
            check_grpc(target, case).await.err().into_iter().collect()
        })
        .await;
}

async fn check_grpc(target: &Target<OrdersClient<Channel>>, case: &Case) -> Result<(), String> {
    let mut request = tonic::Request::new(GetOrderRequest { id: 7 });
    for value in header_values(&case.credential) {
        let value =
            MetadataValue::try_from(value.as_slice()).map_err(|e| format!("metadata: {e}"))?;
        request.metadata_mut().append("authorization", value);
    }
    let result = target.client.clone().get_order(request).await;
    match (case.expect, result) {
        (Accept, Ok(response)) if response.get_ref().id == 7 => Ok(()),
        (Accept, other) => Err(format!("gRPC: want OK, got {other:?}")),
        (Reject(reason), Err(status)) => {
            let want_code = if is_invalid_request(reason) {
                Code::InvalidArgument
            } else {
                Code::Unauthenticated
            };
            if status.code() == want_code && status.message() == reason.description() {
                Ok(())
            } else {
                Err(format!(
                    "gRPC: want {want_code:?} {:?}, got {:?} {:?}",
                    reason.description(),
                    status.code(),
                    status.message()
                ))
            }
        }
        (Reject(reason), Ok(_)) => Err(format!("gRPC: want {reason:?}, got OK")),
    }
}
