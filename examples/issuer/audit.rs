//! The issuer's audit records: the same schema (version 1) and target
//! (`authlayer::audit`) as the records authlayer's layers write, so one
//! log answers "who had access to what" across the issuer and the
//! services.
//!
//! Actions: `login`, `refresh`, `refresh_reuse`, `client_credentials`,
//! `token_exchange`, `introspection`, `revocation`, `key_rotation`. The
//! rule is the endpoint or grant that decided (`password`,
//! `refresh_token`, `client_credentials`, `token_exchange`, `introspect`,
//! `revoke`, `admin_rotate`, `sighup`, `timer`). A record never holds a
//! password, a client secret, a token or a query string. Each record is
//! also counted as `issuer_audit_records_total{action, decision, reason}`.

use axum::http::HeaderMap;

/// The version of the record schema.
pub const SCHEMA_VERSION: u64 = 1;

/// One record in the making: what a handler learns about the request
/// (subject, client, tenant, token id) before it is decided.
#[derive(Debug, Default, Clone)]
pub struct Audit {
    /// What was asked for (`login`, `refresh`, …).
    pub action: &'static str,
    /// The endpoint or grant that decided.
    pub rule: &'static str,
    /// A reason code more precise than the outcome's (e.g. `bad_password`).
    pub reason: Option<&'static str>,
    /// This issuer.
    pub iss: String,
    /// The user or client the tokens are (or would have been) for.
    pub sub: Option<String>,
    /// The client that asked, or that the tokens are issued to.
    pub client_id: Option<String>,
    /// The subject's tenant.
    pub tenant: Option<String>,
    /// The id of the access token issued, introspected or revoked.
    pub jti: Option<String>,
    /// The request's method (`None` for the issuer's own actions).
    pub method: Option<&'static str>,
    /// The request's path, without its query.
    pub path: Option<&'static str>,
    /// The request's `x-request-id`.
    pub request_id: Option<String>,
}

impl Audit {
    /// A record of a `POST path` request.
    pub fn request(
        action: &'static str,
        rule: &'static str,
        path: &'static str,
        iss: &str,
        headers: &HeaderMap,
    ) -> Self {
        Self {
            action,
            rule,
            iss: iss.to_owned(),
            method: Some("POST"),
            path: Some(path),
            // A header value that is text is visible ASCII; shortened so a
            // caller cannot fill the log with one header.
            request_id: headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(128).collect()),
            ..Self::default()
        }
    }

    /// A record of something the issuer did on its own (a timed rotation).
    pub fn event(action: &'static str, rule: &'static str, iss: &str) -> Self {
        Self {
            action,
            rule,
            iss: iss.to_owned(),
            ..Self::default()
        }
    }

    /// Writes the record: `decision` is `allow` or `deny`; the reason is
    /// the one set on the record, else `reason`.
    pub fn record(&self, decision: &'static str, reason: &'static str, status: Option<u16>) {
        let reason = self.reason.unwrap_or(reason);
        tracing::info!(
            target: "authlayer::audit",
            schema_version = SCHEMA_VERSION,
            action = self.action,
            decision,
            reason,
            rule = self.rule,
            sub = self.sub.as_deref(),
            iss = self.iss.as_str(),
            client_id = self.client_id.as_deref(),
            tenant = self.tenant.as_deref(),
            jti = self.jti.as_deref(),
            method = self.method,
            path = self.path,
            status,
            request_id = self.request_id.as_deref(),
        );
        metrics::counter!(
            "issuer_audit_records_total",
            "action" => self.action,
            "decision" => decision,
            "reason" => reason
        )
        .increment(1);
    }
}
