//! The audit record: exactly one `tracing` event per request decision, on
//! the target `authlayer::audit`, answering "who had access to what".
//!
//! Verification and every rule on the route make **one** record:
//! - a request that is allowed is recorded when the handler's response
//!   comes back through [`VerifyLayer`](crate::VerifyLayer), with its status
//!   (or without one, if the response never came: the client went away);
//! - a request that is denied is recorded by the layer that denies it.
//!
//! # Schema (version 1)
//!
//! | field | value |
//! |---|---|
//! | `schema_version` | `1` |
//! | `action` | `request` (the bundled issuer writes its own actions with the same fields) |
//! | `decision` | `allow` or `deny` |
//! | `reason` | a [`Reason::code`](crate::Reason::code) when denied; `valid_token`, `no_token` (optional mode) or `granted` when allowed |
//! | `rule` | what decided: `verify`, `scopes`, `roles`, `tenant`, `policy`, `grpc_method`, `active`. A denial names the rule that refused; an allowed request the last rule that allowed it (the innermost layer), or `verify` when the route has none |
//! | `sub`, `iss`, `client_id`, `tenant`, `jti` | from verified claims only; absent when unknown |
//! | `scheme` | how the token was presented: `bearer` (`Authorization: Bearer`, or your cookie or header) or `dpop` (`Authorization: DPoP` with a proof); absent without a token |
//! | `dpop_proof` | when a DPoP proof was refused: the check that refused it (`missing`, `malformed`, `typ`, `alg`, `jwk`, `signature`, `jti`, `htm`, `htu`, `iat`, `ath`, `jkt_mismatch`, `replayed`, `nonce_missing`, `nonce_stale`, `nonce_invalid`, `replay_store`, …) |
//! | `required_scopes`, `required_roles` | space-separated, each name once; a denial: what the refusing rule required; an allowed request: what every rule that allowed it required together (a route with `RequireScopesLayer` and `RequireRolesLayer` names both). Absent when no such rule needs any |
//! | `method`, `path` | the request's; never the query string; a method longer than 32 bytes or a path longer than 512 is cut there and ends in `…[truncated]` |
//! | `status` | the HTTP status of the answer, when known |
//! | `grpc_status` | the `grpc-status` of a trailers-only gRPC answer, when known |
//! | `request_id` | the `x-request-id` header, when present (visible ASCII, at most 128 bytes) |
//!
//! A timestamp is added by the subscriber that writes the record. No token,
//! signature or query string is ever recorded. Values taken from the
//! request (`path`, `request_id`) are recorded as the request sent them;
//! writers must escape them (the JSON writer does).
//!
//! # Writing the records
//!
//! The records are ordinary `tracing` events at level `INFO` on
//! [`TARGET`]: route them with your own subscriber, or write them as JSON
//! lines, off the request path, with [`AuditLog`] (feature `audit-log`).
//!
//! # Keeping the audit log apart from the human log
//!
//! Every layer of your subscriber sees every event, so a `fmt` layer prints
//! the audit records too (one line per request) unless it filters them out.
//! Give the `fmt` layer a filter of its own that drops [`TARGET`]:
//! `filter_fn(|m| m.target() != authlayer::audit::TARGET)`, or the
//! directive `authlayer::audit=off` in its `EnvFilter`. Put the filter on
//! that layer (`.with_filter(…)`), not on the whole subscriber: a global
//! filter below `INFO` (`RUST_LOG=warn`) would drop the audit records as
//! well.
//!
//! ```
//! # #[cfg(feature = "audit-log")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use tracing_subscriber::Layer as _;
//! use tracing_subscriber::filter::filter_fn;
//! use tracing_subscriber::layer::SubscriberExt as _;
//!
//! # #[derive(Clone, Default)]
//! # struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
//! # impl std::io::Write for Buffer {
//! #     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().extend_from_slice(b); Ok(b.len()) }
//! #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! # }
//! # let (stderr, audit_file) = (Buffer::default(), Buffer::default());
//! # let (human_log, audit_sink) = (stderr.clone(), audit_file.clone());
//! // The human log (here written to `human_log`, usually stderr): every
//! // event except the audit records.
//! let human = tracing_subscriber::fmt::layer()
//!     .with_writer(move || human_log.clone())
//!     .with_filter(filter_fn(|meta| meta.target() != authlayer::audit::TARGET));
//! // The audit log: the recorder keeps the audit records and nothing else.
//! let (audit, guard) = authlayer::audit::AuditLog::writer(audit_sink).start()?;
//! let subscriber = tracing_subscriber::registry().with(human).with(audit);
//! // In a program: `subscriber.init()` (`SubscriberInitExt`), and keep
//! // `guard` until it ends.
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!(target: authlayer::audit::TARGET, decision = "allow", "audit record");
//!     tracing::info!("listening on 127.0.0.1:3000");
//! });
//! guard.flush()?;
//! # let human = String::from_utf8(stderr.0.lock().unwrap().clone())?;
//! # let audit = String::from_utf8(audit_file.0.lock().unwrap().clone())?;
//! # assert!(human.contains("listening on") && !human.contains("audit record"), "{human}");
//! # assert!(audit.contains(r#""decision":"allow""#) && !audit.contains("listening"), "{audit}");
//! # Ok(()) }
//! # #[cfg(not(feature = "audit-log"))]
//! # fn main() {}
//! ```

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri};

use crate::claims::{Claims, StandardClaims};

#[cfg(feature = "audit-log")]
mod log;
#[cfg(feature = "audit-log")]
#[cfg_attr(docsrs, doc(cfg(feature = "audit-log")))]
pub use log::{AuditLog, AuditLogGuard, AuditRecorder};

/// The version of the record's schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u64 = 1;

/// The audit target, for routing records with your own subscriber.
pub const TARGET: &str = "authlayer::audit";

/// What the audit record names as the deciding rule, and what it required.
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleInfo {
    pub(crate) rule: &'static str,
    pub(crate) scopes: Option<Arc<str>>,
    pub(crate) roles: Option<Arc<str>>,
}

/// The decision so far, shared by `VerifyLayer`'s response future and the
/// rule layers of one request (a request extension).
#[derive(Debug, Clone, Default)]
pub(crate) struct Trail(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    /// How the token was presented (`bearer`, `dpop`), when there is one.
    scheme: Option<&'static str>,
    /// Set once a layer wrote to `note`: a request no rule touched (most,
    /// on routes without rule layers) is recorded without taking the lock.
    written: AtomicBool,
    note: Mutex<Note>,
}

#[derive(Debug, Default)]
struct Note {
    /// The rules that allowed the request: the last one's name, and what
    /// all of them required.
    rule: Option<RuleInfo>,
    /// A layer recorded the decision already (a denial).
    done: bool,
}

impl Trail {
    /// The trail of a request whose token came under `scheme`.
    pub(crate) fn of_scheme(scheme: &'static str) -> Self {
        Trail(Arc::new(Shared {
            scheme: Some(scheme),
            ..Shared::default()
        }))
    }

    fn scheme(&self) -> Option<&'static str> {
        self.0.scheme
    }

    /// A rule allowed the request. The record names the last such rule
    /// (the innermost: rules run outside in) and the scopes and roles that
    /// every one of them required, so a route guarded by two rules does not
    /// lose the first one's requirement.
    pub(crate) fn allow(&self, info: &RuleInfo) {
        let mut note = self.lock();
        self.0.written.store(true, Ordering::Release);
        note.rule = Some(match note.rule.take() {
            None => info.clone(),
            Some(before) => RuleInfo {
                rule: info.rule,
                scopes: merged(before.scopes, info.scopes.as_ref()),
                roles: merged(before.roles, info.roles.as_ref()),
            },
        });
    }

    /// A layer denied the request and recorded it.
    fn close(&self) {
        let mut note = self.lock();
        self.0.written.store(true, Ordering::Release);
        note.done = true;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Note> {
        self.0.note.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the rules wrote: the last allowing rule (taken: the request is
    /// over), and whether a layer recorded a denial already.
    fn take(&self) -> (Option<RuleInfo>, bool) {
        if !self.0.written.load(Ordering::Acquire) {
            return (None, false);
        }
        let mut note = self.lock();
        (note.rule.take(), note.done)
    }
}

/// The space-separated names of `before` followed by those of `more` that
/// it lacks, in order of first appearance.
fn merged(before: Option<Arc<str>>, more: Option<&Arc<str>>) -> Option<Arc<str>> {
    let Some(more) = more else {
        return before;
    };
    let Some(before) = before else {
        return Some(Arc::clone(more));
    };
    let mut names: Vec<&str> = before.split(' ').collect();
    let known = names.len();
    for name in more.split(' ') {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.len() == known {
        return Some(before);
    }
    Some(Arc::from(names.join(" ")))
}

/// The request's side of a record, taken before the request moves on.
#[derive(Debug)]
pub(crate) struct Subject {
    claims: Option<Arc<StandardClaims>>,
    /// Method, URI and request id: taken only when a subscriber records the
    /// audit target (the decision counter needs the claims alone). Boxed:
    /// without a subscriber, the record each response future carries stays
    /// two words.
    line: Option<Box<Line>>,
}

#[derive(Debug)]
struct Line {
    method: Method,
    uri: Uri,
    request_id: Option<HeaderValue>,
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

impl Subject {
    pub(crate) fn of<B, E>(req: &Request<B>, claims: Option<&Claims<E>>) -> Self {
        let recorded = tracing::enabled!(target: TARGET, tracing::Level::INFO);
        Self {
            claims: claims.map(Claims::standard_arc),
            line: recorded.then(|| {
                Box::new(Line {
                    method: req.method().clone(),
                    uri: req.uri().clone(),
                    request_id: req.headers().get(&REQUEST_ID).cloned(),
                })
            }),
        }
    }
}

/// An allowed request's record, written when its response is known, or
/// on drop if it never is.
#[derive(Debug)]
pub(crate) struct Pending {
    subject: Option<Subject>,
    reason: &'static str,
    trail: Trail,
}

impl Pending {
    pub(crate) fn new(subject: Subject, reason: &'static str, trail: Trail) -> Self {
        Self {
            subject: Some(subject),
            reason,
            trail,
        }
    }

    /// Writes the record with the answer's status (`None`: no answer).
    pub(crate) fn finish<B>(&mut self, response: Option<&Response<B>>) {
        let Some(subject) = self.subject.take() else {
            return;
        };
        let (rule, done) = self.trail.take();
        if done {
            return;
        }
        let (info, reason) = match &rule {
            Some(info) => (info, "granted"),
            None => (&VERIFY, self.reason),
        };
        let dpop = Dpop {
            scheme: self.trail.scheme(),
            proof: None,
        };
        emit(&subject, "allow", reason, info, dpop, response);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.finish::<()>(None);
    }
}

const VERIFY: RuleInfo = RuleInfo {
    rule: "verify",
    scopes: None,
    roles: None,
};

/// How the token was presented and, for a refused DPoP proof, which check
/// refused it: the record's `scheme` and `dpop_proof`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Dpop {
    pub(crate) scheme: Option<&'static str>,
    pub(crate) proof: Option<&'static str>,
}

/// Records a denial by `VerifyLayer` itself.
pub(crate) fn deny_verify<B, RB>(
    req: &Request<B>,
    reason: &'static str,
    dpop: Dpop,
    response: &Response<RB>,
) {
    emit(
        &Subject::of(req, None::<&Claims>),
        "deny",
        reason,
        &VERIFY,
        dpop,
        Some(response),
    );
}

/// Records a denial by a rule layer, and closes the request's trail (the
/// one `VerifyLayer` keeps) so that it is not recorded again.
pub(crate) fn deny_rule<B, RB>(
    req: &Request<B>,
    trail: Option<&Trail>,
    claims: Option<&Claims>,
    info: &RuleInfo,
    reason: &'static str,
    response: &Response<RB>,
) {
    if let Some(trail) = trail {
        trail.close();
    }
    let dpop = Dpop {
        scheme: trail.and_then(Trail::scheme),
        proof: None,
    };
    emit(
        &Subject::of(req, claims),
        "deny",
        reason,
        info,
        dpop,
        Some(response),
    );
}

fn emit<B>(
    subject: &Subject,
    decision: &'static str,
    reason: &'static str,
    info: &RuleInfo,
    dpop: Dpop,
    response: Option<&Response<B>>,
) {
    let claims = subject.claims.as_deref();
    crate::telemetry::decision(claims.and_then(|c| c.iss.as_deref()), decision, reason);
    let Some(line) = &subject.line else {
        return;
    };
    let method = cut(line.method.as_str(), MAX_METHOD);
    let path = cut(line.uri.path(), MAX_PATH);
    let record = Record {
        decision,
        reason,
        rule: info.rule,
        sub: claims.and_then(|c| c.sub.as_deref()),
        iss: claims.and_then(|c| c.iss.as_deref()),
        client_id: claims.and_then(|c| c.client_id.as_deref()),
        tenant: claims.and_then(|c| c.tenant.as_deref()),
        jti: claims.and_then(|c| c.jti.as_deref()),
        scheme: dpop.scheme,
        dpop_proof: dpop.proof,
        required_scopes: info.scopes.as_deref(),
        required_roles: info.roles.as_deref(),
        method: &method,
        path: &path,
        status: response.map(|r| r.status().as_u16()),
        grpc_status: response.and_then(|r| grpc_status(r.headers())),
        request_id: line.request_id.as_ref().and_then(request_id),
    };
    // The JSON-lines writer takes the record as rendered here, without
    // visiting the event's fields one by one (it renders the same line).
    #[cfg(feature = "audit-log")]
    let _rendered = log::Rendered::of(&record);
    tracing::info!(
        target: TARGET,
        schema_version = SCHEMA_VERSION,
        action = "request",
        decision = record.decision,
        reason = record.reason,
        rule = record.rule,
        sub = record.sub,
        iss = record.iss,
        client_id = record.client_id,
        tenant = record.tenant,
        jti = record.jti,
        scheme = record.scheme,
        dpop_proof = record.dpop_proof,
        required_scopes = record.required_scopes,
        required_roles = record.required_roles,
        method = record.method,
        path = record.path,
        status = record.status,
        grpc_status = record.grpc_status,
        request_id = record.request_id,
    );
}

/// One audit record, field by field, in the order of the schema (and of
/// the event's fields). `action` is always `request` and
/// `schema_version` is [`SCHEMA_VERSION`].
#[cfg_attr(not(feature = "audit-log"), allow(dead_code))]
pub(crate) struct Record<'a> {
    pub(crate) decision: &'static str,
    pub(crate) reason: &'static str,
    pub(crate) rule: &'static str,
    pub(crate) sub: Option<&'a str>,
    pub(crate) iss: Option<&'a str>,
    pub(crate) client_id: Option<&'a str>,
    pub(crate) tenant: Option<&'a str>,
    pub(crate) jti: Option<&'a str>,
    pub(crate) scheme: Option<&'a str>,
    pub(crate) dpop_proof: Option<&'a str>,
    pub(crate) required_scopes: Option<&'a str>,
    pub(crate) required_roles: Option<&'a str>,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) status: Option<u16>,
    pub(crate) grpc_status: Option<u16>,
    pub(crate) request_id: Option<&'a str>,
}

/// The request id as recorded: visible ASCII only, at most 128 bytes, so a
/// client cannot fill the audit log through one header.
fn request_id(value: &HeaderValue) -> Option<&str> {
    let id = value.to_str().ok()?;
    // `to_str` admits visible ASCII only: any byte index is a char boundary.
    Some(id.get(..id.len().min(MAX_REQUEST_ID)).unwrap_or(id))
}

const MAX_REQUEST_ID: usize = 128;

/// A value from the request as recorded: at most `max` bytes of it, and a
/// marker when it was cut.
fn cut(value: &str, max: usize) -> Cow<'_, str> {
    // SECURITY: the method and path are the client's, recorded also for
    // requests that carried no valid token: without a cap, anyone could
    // write kilobytes per request into the audit log (`http` admits
    // extension methods of any length).
    if value.len() <= max {
        return Cow::Borrowed(value);
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let head = value.get(..end).unwrap_or_default();
    Cow::Owned(format!("{head}{TRUNCATED}"))
}

/// Bytes of the path the record keeps.
const MAX_PATH: usize = 512;

/// Bytes of the method the record keeps (the longest registered method,
/// `BASELINE-CONTROL`, has 16).
const MAX_METHOD: usize = 32;

/// What follows a path that was cut.
const TRUNCATED: &str = "…[truncated]";

fn grpc_status(headers: &HeaderMap) -> Option<u16> {
    headers
        .get(&GRPC_STATUS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_over_512_bytes_are_cut_at_a_char_boundary_with_a_marker() {
        assert_eq!(cut("/orders/7", MAX_PATH), "/orders/7");
        let exact = "a".repeat(MAX_PATH);
        assert_eq!(cut(&exact, MAX_PATH), exact);
        let long = format!("/{}", "é".repeat(MAX_PATH));
        let recorded = cut(&long, MAX_PATH);
        let head = recorded.strip_suffix(TRUNCATED).unwrap();
        assert!(
            head.len() <= MAX_PATH && head.len() >= MAX_PATH - 1,
            "{}",
            head.len()
        );
        assert!(long.starts_with(head));
    }

    fn info(rule: &'static str, scopes: Option<&str>, roles: Option<&str>) -> RuleInfo {
        RuleInfo {
            rule,
            scopes: scopes.map(Arc::from),
            roles: roles.map(Arc::from),
        }
    }

    fn allowed(trail: &Trail) -> RuleInfo {
        trail.0.note.lock().unwrap().rule.clone().unwrap()
    }

    #[test]
    fn allow_record_names_what_every_allowing_rule_required() {
        let trail = Trail::default();
        trail.allow(&info("scopes", Some("orders:read orders:write"), None));
        trail.allow(&info("roles", None, Some("buyer support")));
        trail.allow(&info(
            "policy",
            Some("orders:write admin:read"),
            Some("support"),
        ));
        let merged = allowed(&trail);
        assert_eq!(merged.rule, "policy", "the last rule that allowed");
        assert_eq!(
            merged.scopes.as_deref(),
            Some("orders:read orders:write admin:read")
        );
        assert_eq!(merged.roles.as_deref(), Some("buyer support"));
    }

    #[test]
    fn allow_record_of_one_rule_is_that_rule_unchanged() {
        let trail = Trail::default();
        let scopes = info("scopes", Some("orders:read"), None);
        trail.allow(&scopes);
        let recorded = allowed(&trail);
        assert_eq!(recorded.rule, "scopes");
        assert!(Arc::ptr_eq(
            recorded.scopes.as_ref().unwrap(),
            scopes.scopes.as_ref().unwrap()
        ));
        assert_eq!(recorded.roles, None);
        // A rule requiring nothing keeps what the others required.
        trail.allow(&info("active", None, None));
        let recorded = allowed(&trail);
        assert_eq!(recorded.rule, "active");
        assert_eq!(recorded.scopes.as_deref(), Some("orders:read"));
    }

    #[test]
    fn request_ids_are_cut_to_128_bytes_and_must_be_text() {
        let long = HeaderValue::from_str(&"r".repeat(5000)).unwrap();
        assert_eq!(request_id(&long).map(str::len), Some(128));
        let short = HeaderValue::from_static("req-7");
        assert_eq!(request_id(&short), Some("req-7"));
        let binary = HeaderValue::from_bytes(b"\xff\xfe").unwrap();
        assert_eq!(request_id(&binary), None);
    }
}
