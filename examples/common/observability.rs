//! Logging and metrics of the example binaries (orders, orders_grpc, the
//! issuer, the demo): one set-up, used by all.
//!
//! - `AUDIT_LOG` — where the audit log (JSON lines, one record per decision)
//!   goes: unset or empty → stdout; `off` → nowhere; anything else → that
//!   file (appended; created with mode 0600).
//! - `RUST_LOG` — the human-readable log on stderr (default `info`). The
//!   audit target never goes there: it has its own log, and the human log
//!   has no per-request lines at the default level.
//! - `GET /metrics` — Prometheus text, rendered by
//!   `metrics-exporter-prometheus` from what authlayer (and the issuer)
//!   measure through the `metrics` facade.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use authlayer::audit::{AuditLog, AuditLogGuard};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer as _, fmt};

/// Where the audit log goes, from `AUDIT_LOG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditDestination {
    /// Standard output (`AUDIT_LOG` unset or empty).
    Stdout,
    /// This file, appended to.
    File(PathBuf),
    /// No audit log (`AUDIT_LOG=off`).
    Off,
}

impl AuditDestination {
    /// Reads `AUDIT_LOG`.
    pub fn from_env() -> Self {
        match std::env::var_os("AUDIT_LOG") {
            None => Self::Stdout,
            Some(v) if v.is_empty() => Self::Stdout,
            Some(v) if v == "off" => Self::Off,
            Some(path) => Self::File(path.into()),
        }
    }

    fn audit_log(&self) -> Option<AuditLog> {
        match self {
            Self::Stdout => Some(AuditLog::stdout()),
            Self::File(path) => Some(AuditLog::file(path)),
            Self::Off => None,
        }
    }
}

/// Installs the global subscriber: the human log (stderr, `RUST_LOG`, else
/// `default_filter`) and the audit log at `audit`. Keep the guard until the
/// program ends: dropping it writes the queued records.
pub fn init_logging(
    audit: &AuditDestination,
    default_filter: &str,
) -> Result<Option<AuditLogGuard>, String> {
    let human = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_filter))
        // The audit records have their own log.
        .add_directive("authlayer::audit=off".parse().map_err(|e| format!("{e}"))?);
    let human = fmt::layer().with_writer(std::io::stderr).with_filter(human);
    let (recorder, guard) = match audit.audit_log() {
        Some(log) => {
            let (recorder, guard) = log.start().map_err(|e| format!("AUDIT_LOG: {e}"))?;
            let only_audit = Targets::new().with_target("authlayer::audit", LevelFilter::INFO);
            (Some(recorder.with_filter(only_audit)), Some(guard))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(human)
        .with(recorder)
        .try_init()
        .map_err(|e| format!("cannot install the log subscriber: {e}"))?;
    Ok(guard)
}

/// Installs the global `metrics` recorder (Prometheus); its handle renders
/// `GET /metrics`. Histograms get buckets (not summaries) so that they
/// aggregate across instances.
pub fn install_metrics() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005,
            0.025, 0.1, 0.5,
        ])
        .map_err(|e| format!("metrics buckets: {e}"))?
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    // Draining histogram samples now and then keeps memory flat between
    // scrapes.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// `GET /metrics`: the Prometheus text format.
pub fn metrics_route<S: Clone + Send + Sync + 'static>(
    handle: PrometheusHandle,
    before_render: impl Fn() + Clone + Send + Sync + 'static,
) -> axum::Router<S> {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            let before_render = before_render.clone();
            async move {
                before_render();
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }
        }),
    )
}

/// Prints `listening on ADDR` on stdout, flushed: scripts and tests wait
/// for this exact line.
pub fn announce(addr: std::net::SocketAddr) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
}

/// Resolves on Ctrl-C or (Unix) SIGTERM: the signal to stop gracefully.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
