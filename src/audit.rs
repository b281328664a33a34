//! The audit record: one `tracing` event per decision, on the target
//! `authlayer::audit`, answering "who had access to what".
//!
//! Fields: `decision` (`allow`, `deny`, `anonymous`), `reason` (a
//! [`Reason::code`](crate::Reason::code) or `valid_token` /
//! `scopes_granted`), `sub`, `iss`, `tenant` (from verified claims only),
//! `required_scopes`, `method` and `path`. No token, signature or query
//! string is ever recorded.

use http::Request;

use crate::claims::Claims;

/// Emits one audit event for a decision about `req`.
pub(crate) fn record<B>(
    req: &Request<B>,
    claims: Option<&Claims<impl Sized>>,
    decision: &'static str,
    reason: &'static str,
    required: &str,
) {
    tracing::info!(
        target: "authlayer::audit",
        decision,
        reason,
        sub = claims.and_then(|c| c.sub()),
        iss = claims.and_then(|c| c.iss()),
        tenant = claims.and_then(|c| c.tenant()),
        required_scopes = required,
        method = %req.method(),
        path = req.uri().path(),
    );
}
