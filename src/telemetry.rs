//! Measurements through the [`metrics`](https://docs.rs/metrics) facade
//! (feature `metrics`): one function per measurement, each compiling to
//! nothing without the feature.
//!
//! Names follow the Prometheus conventions (`_total` for counters, the unit
//! as a suffix). Labels have bounded cardinality: an issuer label is one of
//! the configured issuers (anything else is `other`), and the other labels
//! come from fixed sets (`decision`, a [`Reason::code`](crate::Reason::code),
//! a fetch outcome). Never a subject, a token or a raw path.
//!
//! The table of names and labels, for users, is in the crate
//! documentation (`src/lib.rs`, section "Metrics"): a new measurement adds
//! its row there.

#![cfg_attr(not(feature = "metrics"), allow(unused_variables))]

use std::time::Duration;

use crate::health::IssuerHealth;

/// The label of an issuer that no verifier in this process is configured
/// for (or an unknown one).
#[cfg(feature = "metrics")]
const OTHER_ISSUER: &str = "other";

/// At most this many issuer labels: a process building verifiers for ever
/// new issuers must not grow the label set without bound.
#[cfg(feature = "metrics")]
const MAX_ISSUERS: usize = 64;

#[cfg(feature = "metrics")]
const DECISIONS: &str = "authlayer_decisions_total";

#[cfg(feature = "metrics")]
mod issuers {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock, PoisonError};

    use metrics::{Key, Label, SharedString};

    /// The reasons of an allowed request: for each known issuer their keys
    /// are built once, so counting the usual decision hashes and allocates
    /// nothing.
    const ALLOWED: [&str; 3] = ["granted", "valid_token", "no_token"];

    /// A configured issuer: its label and its allow keys (as [`ALLOWED`]).
    struct Known {
        name: Arc<str>,
        allow: [Key; 3],
    }

    /// The issuer names that may be label values: read lock-free on every
    /// request, written when a key source is built. Append-only: slots
    /// `..len` are set, and a set slot never changes.
    pub(super) struct Issuers {
        slots: [OnceLock<Known>; super::MAX_ISSUERS],
        len: AtomicUsize,
        write: Mutex<()>,
    }

    impl Default for Issuers {
        fn default() -> Self {
            Self {
                slots: [const { OnceLock::new() }; super::MAX_ISSUERS],
                len: AtomicUsize::new(0),
                write: Mutex::new(()),
            }
        }
    }

    pub(super) fn global() -> &'static Issuers {
        static GLOBAL: OnceLock<Issuers> = OnceLock::new();
        GLOBAL.get_or_init(Issuers::default)
    }

    /// The key of `authlayer_decisions_total` for these labels.
    pub(super) fn decision_key(
        issuer: SharedString,
        decision: &'static str,
        reason: &'static str,
    ) -> Key {
        Key::from_parts(
            super::DECISIONS,
            vec![
                Label::new("issuer", issuer),
                Label::from_static_parts("decision", decision),
                Label::from_static_parts("reason", reason),
            ],
        )
    }

    impl Issuers {
        pub(super) fn register(&self, iss: &str) {
            let _write = self.write.lock().unwrap_or_else(PoisonError::into_inner);
            let len = self.len.load(Ordering::Acquire);
            let Some(slot) = self.slots.get(len) else {
                return;
            };
            if self.find(iss).is_some() {
                return;
            }
            let name: Arc<str> = Arc::from(iss);
            let allow = ALLOWED.map(|reason| {
                decision_key(
                    SharedString::from_shared(Arc::clone(&name)),
                    "allow",
                    reason,
                )
            });
            // Slots are set only here, one writer at a time (the lock): this
            // one is free.
            let _ = slot.set(Known { name, allow });
            self.len.store(len + 1, Ordering::Release);
        }

        fn find(&self, iss: &str) -> Option<&Known> {
            let len = self.len.load(Ordering::Acquire);
            self.slots
                .iter()
                .take(len)
                .filter_map(OnceLock::get)
                .find(|k| *k.name == *iss)
        }

        /// The label for `iss`: a shared (`Arc`) copy of the configured
        /// name, so labelling a request allocates no string.
        pub(super) fn label(&self, iss: Option<&str>) -> SharedString {
            let Some(iss) = iss else {
                return SharedString::const_str("");
            };
            self.find(iss)
                .map_or(SharedString::const_str(super::OTHER_ISSUER), |k| {
                    SharedString::from_shared(Arc::clone(&k.name))
                })
        }

        /// Calls `f` with the key of this decision: the one built in advance
        /// for an allowed request of a configured issuer, otherwise a new one.
        pub(super) fn with_key<T>(
            &self,
            iss: Option<&str>,
            decision: &'static str,
            reason: &'static str,
            f: impl FnOnce(&Key) -> T,
        ) -> T {
            if let Some(iss) = iss
                && decision == "allow"
                && let Some(index) = ALLOWED.iter().position(|r| *r == reason)
                && let Some(known) = self.find(iss)
                && let Some(key) = known.allow.get(index)
            {
                return f(key);
            }
            f(&decision_key(self.label(iss), decision, reason))
        }
    }
}

/// Makes `iss` a label value that [`decision`] may use (called for every
/// configured issuer when a verifier is built).
pub(crate) fn known_issuer(iss: &str) {
    #[cfg(feature = "metrics")]
    issuers::global().register(iss);
}

/// One request decided: `decision` is `allow` or `deny`, `reason` a stable
/// code ([`Reason::code`](crate::Reason::code) or `granted`). `iss` is the
/// verified issuer (`None` when no token was verified).
pub(crate) fn decision(iss: Option<&str>, decision: &'static str, reason: &'static str) {
    // What `metrics::counter!` does, with a key built in advance where it
    // can be: the macro would build (allocate, hash) the key every time.
    #[cfg(feature = "metrics")]
    {
        static METADATA: metrics::Metadata<'static> =
            metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));
        issuers::global()
            .with_key(iss, decision, reason, |key| {
                metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA))
            })
            .increment(1);
    }
}

/// How long one synchronous verification took; `cached`: answered from the
/// verified-token cache.
pub(crate) fn verify_seconds(cached: bool, took: Duration) {
    // Literal labels: the macro then builds its key once, statically.
    #[cfg(feature = "metrics")]
    if cached {
        metrics::histogram!("authlayer_verify_duration_seconds", "token" => "cached")
            .record(took.as_secs_f64());
    } else {
        metrics::histogram!("authlayer_verify_duration_seconds", "token" => "first_seen")
            .record(took.as_secs_f64());
    }
}

/// Whether measuring is compiled in: callers skip reading the clock when not.
pub(crate) const ON: bool = cfg!(feature = "metrics");

/// One key fetch finished: `outcome` is `updated`, `not_modified` or `error`.
pub(crate) fn jwks_fetch(iss: &std::sync::Arc<str>, outcome: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(
        "authlayer_jwks_fetches_total",
        "issuer" => metrics::SharedString::from_shared(std::sync::Arc::clone(iss)),
        "outcome" => outcome
    )
    .increment(1);
}

/// The key-set gauges of one issuer, from its health record.
#[allow(clippy::cast_precision_loss)] // counts and seconds far below 2^52
pub(crate) fn key_set(iss: &std::sync::Arc<str>, health: &IssuerHealth) {
    #[cfg(feature = "metrics")]
    {
        let label = || metrics::SharedString::from_shared(std::sync::Arc::clone(iss));
        metrics::gauge!("authlayer_jwks_keys", "issuer" => label()).set(health.key_count as f64);
        metrics::gauge!("authlayer_jwks_stale", "issuer" => label()).set(if health.stale {
            1.0
        } else {
            0.0
        });
        if let Some(age) = health.age_secs {
            metrics::gauge!("authlayer_jwks_age_seconds", "issuer" => label()).set(age as f64);
        }
        if let Some(next) = health.next_refresh_secs {
            metrics::gauge!("authlayer_jwks_next_refresh_seconds", "issuer" => label())
                .set(next as f64);
        }
    }
}

/// A token answered from the verified-token cache.
pub(crate) fn token_cache_hit() {
    #[cfg(feature = "metrics")]
    metrics::counter!("authlayer_token_cache_hits_total").increment(1);
}

/// Tokens in the verified-token cache now.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn token_cache_entries(entries: u64) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("authlayer_token_cache_entries").set(entries as f64);
}

/// Audit records the JSON-lines writer could not write.
#[allow(dead_code)] // used by the `audit-log` feature
pub(crate) fn audit_dropped(records: u64) {
    #[cfg(feature = "metrics")]
    metrics::counter!("authlayer_audit_dropped_total").increment(records);
}

/// A `client_credentials` request of a service token source: `issued`, or
/// `error` (a failed renewal keeps serving the current token).
pub(crate) fn service_token(issued: bool) {
    // Literal labels: the macro then builds its key once, statically.
    #[cfg(feature = "metrics")]
    if issued {
        metrics::counter!("authlayer_service_token_requests_total", "outcome" => "issued")
            .increment(1);
    } else {
        metrics::counter!("authlayer_service_token_requests_total", "outcome" => "error")
            .increment(1);
    }
}

/// A token exchange: `exchanged` (the issuer was asked), `cached` or `error`.
pub(crate) fn token_exchange(outcome: Exchange) {
    #[cfg(feature = "metrics")]
    match outcome {
        Exchange::Exchanged => {
            metrics::counter!("authlayer_token_exchanges_total", "outcome" => "exchanged")
                .increment(1);
        }
        Exchange::Cached => {
            metrics::counter!("authlayer_token_exchanges_total", "outcome" => "cached")
                .increment(1);
        }
        Exchange::Error => {
            metrics::counter!("authlayer_token_exchanges_total", "outcome" => "error").increment(1);
        }
    }
}

/// A refused DPoP proof: by reason (a fixed code of the proof checks),
/// and separately when it was a replay or a nonce challenge.
pub(crate) fn dpop_proof_refused(reason: &'static str, replay: bool, nonce_challenge: bool) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("authlayer_dpop_proof_failures_total", "reason" => reason).increment(1);
        if replay {
            metrics::counter!("authlayer_dpop_replays_total").increment(1);
        }
        if nonce_challenge {
            metrics::counter!("authlayer_dpop_nonce_challenges_total").increment(1);
        }
    }
}

/// How a token exchange ended.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Exchange {
    Exchanged,
    Cached,
    Error,
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::issuers::Issuers;
    use super::*;

    #[test]
    fn an_issuer_label_is_a_configured_issuer_or_other() {
        let issuers = Issuers::default();
        issuers.register("https://id.test");
        assert_eq!(&*issuers.label(Some("https://id.test")), "https://id.test");
        assert_eq!(&*issuers.label(Some("https://attacker.test")), "other");
        assert_eq!(&*issuers.label(None), "");
    }

    #[test]
    fn a_decision_key_built_in_advance_equals_the_one_built_on_the_spot() {
        let issuers = Issuers::default();
        issuers.register("https://id.test");
        for (iss, decision, reason) in [
            (Some("https://id.test"), "allow", "granted"),
            (Some("https://id.test"), "allow", "valid_token"),
            (Some("https://id.test"), "allow", "no_token"),
            (Some("https://id.test"), "deny", "expired"),
            (Some("https://attacker.test"), "allow", "granted"),
            (None, "allow", "no_token"),
        ] {
            let built = issuers::decision_key(issuers.label(iss), decision, reason);
            issuers.with_key(iss, decision, reason, |key| assert_eq!(*key, built));
        }
        let key = issuers.with_key(Some("https://id.test"), "allow", "granted", Clone::clone);
        let labels: Vec<_> = key.labels().map(|l| (l.key(), l.value())).collect();
        assert_eq!(
            labels,
            [
                ("issuer", "https://id.test"),
                ("decision", "allow"),
                ("reason", "granted")
            ]
        );
    }

    #[test]
    fn issuer_labels_are_bounded() {
        let issuers = Issuers::default();
        for n in 0..MAX_ISSUERS + 10 {
            issuers.register(&format!("https://id-{n}.test"));
        }
        assert_eq!(
            &*issuers.label(Some("https://id-0.test")),
            "https://id-0.test"
        );
        let last = format!("https://id-{}.test", MAX_ISSUERS + 9);
        assert_eq!(&*issuers.label(Some(&last)), "other");
    }
}
