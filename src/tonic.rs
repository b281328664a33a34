//! tonic integration (feature `tonic`): the layers keep the wrapped server's
//! `NamedService` name, and an [`AuthError`] converts into a
//! `tonic::Status` (documented on [`AuthError`]).

use ::tonic::server::NamedService;

use crate::error::AuthError;
use crate::layer::{RequireActive, Verify};

impl<S: NamedService, E, R> NamedService for Verify<S, E, R> {
    const NAME: &'static str = S::NAME;
}

impl<S: NamedService> NamedService for RequireActive<S> {
    const NAME: &'static str = S::NAME;
}

impl From<AuthError> for ::tonic::Status {
    /// UNAUTHENTICATED, `PERMISSION_DENIED`, UNAVAILABLE, `INVALID_ARGUMENT` or
    /// INTERNAL, with the fixed description as message.
    fn from(err: AuthError) -> Self {
        ::tonic::Status::new(
            ::tonic::Code::from_i32(i32::from(err.grpc_code())),
            err.to_string(),
        )
    }
}
