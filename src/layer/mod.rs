//! The layers: [`VerifyLayer`] authenticates every request, and rule layers
//! such as [`RequireScopesLayer`] authorize it from the verified claims.
//!
//! What they share lives here: the marker a verified request carries, and
//! the response future. Rejections are rendered by [`crate::reject`] and
//! recorded by [`crate::audit`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use crate::error::Reason;
use crate::verifier::Verifier;

mod scopes;
mod verify;

pub use scopes::{RequireScopes, RequireScopesLayer};
pub use verify::{Verify, VerifyLayer};

/// Marks a request that went through [`VerifyLayer`], with or without claims
/// (optional mode), so later layers can tell "anonymous" from "misordered",
/// challenge with the same realm and count their refusals in the same
/// [`Verifier::metrics`].
#[derive(Debug, Clone)]
pub(crate) struct Authenticated {
    pub(crate) verifier: Verifier,
}

impl Authenticated {
    /// Counts a refusal and returns the realm to challenge with.
    pub(crate) fn refuse(&self, reason: Reason) -> Arc<str> {
        self.verifier.count_rejection(reason);
        self.verifier.realm_arc()
    }
}

pub(crate) type Waiting<B, E> = Pin<Box<dyn Future<Output = Result<Response<B>, E>> + Send>>;

pin_project! {
    /// Response future of [`Verify`] and [`RequireScopes`].
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        state: State<F, B, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B, E> {
        Inner { #[pin] future: F },
        Reject { response: Option<Response<B>> },
        Waiting { future: Waiting<B, E> },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn inner(future: F) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    pub(crate) fn reject(response: Response<B>) -> Self {
        Self {
            state: State::Reject {
                response: Some(response),
            },
        }
    }

    pub(crate) fn waiting(future: Waiting<B, E>) -> Self {
        Self {
            state: State::Waiting { future },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future } => future.poll(cx),
            StateProj::Reject { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Pending,
            },
            StateProj::Waiting { future } => Poll::Ready(ready!(future.as_mut().poll(cx))),
        }
    }
}

impl<F, B, E> fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
