//! How the example HTTP servers (orders, gateway, issuer) accept
//! connections: `axum::serve` with limits it does not have.
//!
//! - a header-read timeout: a connection that has not sent a whole request
//!   head in time is closed (slowloris);
//! - a request timeout: a request not answered in time gets 503;
//! - an idle timeout: a connection with no request in flight for that
//!   long is closed (HTTP/1 keep-alive and HTTP/2), and HTTP/2 connections
//!   are pinged, closed when the peer does not answer;
//! - a connection cap: at the cap, the server stops accepting until a
//!   connection closes (the kernel's backlog holds the rest).
//!
//! Handlers see the peer's address as `ConnectInfo<SocketAddr>`. A stop
//! signal lets running requests finish, as `axum::serve`'s graceful
//! shutdown does.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};

/// How often an HTTP/2 connection is pinged, and how long the answer may
/// take before the connection is closed.
const H2_PING_INTERVAL: Duration = Duration::from_secs(20);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// The limits of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    header_read_timeout: Duration,
    request_timeout: Duration,
    max_connections: usize,
    idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_connections: 512,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl Limits {
    /// How long a connection may take to send a request's head (HTTP/1;
    /// also how long an idle keep-alive connection waits for the next one).
    /// Defaults to 10 s.
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a request may take, from its head to the response's head
    /// (the gateway's upstream timeout, 30 s, fits inside). Defaults to 60 s.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long a connection may stay open with no request in flight, after
    /// its first request (HTTP/1 keep-alive and HTTP/2 alike). Defaults to
    /// 60 s.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How many connections are served at once. Defaults to 512.
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }
}

/// hyper's connection settings: the header-read timeout, HTTP/2 pings.
fn connection_builder(header_read_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // SECURITY (DoS): a client that sends its request head slowly, or
    // never, must not keep a connection (slowloris).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    // SECURITY (DoS): a peer gone silent does not keep an HTTP/2
    // connection: it is pinged and closed without an answer.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    builder
}

/// Serves `app` on `listener` within `limits` until `stop` resolves, then
/// lets the running connections finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    // Closed to tell the connections to finish; each holds a receiver of
    // `done`, so `done_tx.closed()` resolves when the last one has ended.
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    let mut stop = std::pin::pin!(stop);
    loop {
        // SECURITY (DoS): at the cap, stop accepting rather than take
        // sockets and memory without bound.
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                // Only a closed semaphore fails, and nothing closes it.
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off a little.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let first_request = Arc::new(Notify::new());
        let (in_flight, mut in_flight_rx) = watch::channel(0usize);
        let service = TowerToHyperService::new(WithLimits {
            app: app.clone(),
            peer,
            request_timeout: limits.request_timeout,
            first_request: Arc::clone(&first_request),
            in_flight: Arc::new(in_flight),
        });
        let mut stop_rx = stop_rx.clone();
        let done_rx = done_rx.clone();
        let header_read_timeout = limits.header_read_timeout;
        let idle_timeout = limits.idle_timeout;
        tokio::spawn(async move {
            let builder = connection_builder(header_read_timeout);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            // SECURITY (DoS): hyper's timeout covers HTTP/1 heads only; the
            // protocol detection before it and an HTTP/2 preface have none.
            // A connection without a first request in time is closed.
            let mut first = std::pin::pin!(tokio::time::timeout(
                header_read_timeout,
                first_request.notified()
            ));
            // SECURITY (DoS): after its first request, a connection is
            // closed once it has had no request in flight for
            // `idle_timeout`: idle connections would otherwise hold every
            // slot of the cap. First gracefully (HTTP/2: GOAWAY), then,
            // one more `idle_timeout` later, at once.
            let mut idle = std::pin::pin!(tokio::time::sleep(idle_timeout));
            let (mut waiting_first, mut stopping) = (true, false);
            let (mut idle_closing, mut counting) = (false, true);
            loop {
                tokio::select! {
                    // The count first: an expired timer must not close a
                    // connection whose request has just ended.
                    biased;
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, %peer, "connection ended");
                        }
                        break;
                    }
                    changed = in_flight_rx.changed(), if counting => match changed {
                        Ok(()) => {
                            if *in_flight_rx.borrow_and_update() == 0 {
                                idle.as_mut().reset(tokio::time::Instant::now() + idle_timeout);
                            }
                        }
                        // The count's sender lives in `conn`: not reached.
                        Err(_) => counting = false,
                    },
                    arrived = &mut first, if waiting_first => {
                        waiting_first = false;
                        if arrived.is_err() {
                            tracing::debug!(%peer, "no request head in time: connection closed");
                            break;
                        }
                    }
                    () = &mut idle, if !waiting_first && *in_flight_rx.borrow() == 0 => {
                        if idle_closing {
                            tracing::debug!(%peer, "idle: connection closed");
                            break;
                        }
                        idle_closing = true;
                        tracing::debug!(%peer, "idle: connection closing");
                        conn.as_mut().graceful_shutdown();
                        idle.as_mut().reset(tokio::time::Instant::now() + idle_timeout);
                    }
                    _ = stop_rx.changed(), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop((permit, done_rx));
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

/// `app` with the peer's address in each request and the request timeout.
#[derive(Clone)]
struct WithLimits {
    app: Router,
    peer: SocketAddr,
    request_timeout: Duration,
    /// Told when the connection's first request head has arrived.
    first_request: Arc<Notify>,
    /// How many of the connection's requests are in flight: from their
    /// head to the end of their response's body.
    in_flight: Arc<watch::Sender<usize>>,
}

/// Counts one request in flight until dropped.
struct InFlight(Arc<watch::Sender<usize>>);

impl InFlight {
    fn new(count: &Arc<watch::Sender<usize>>) -> Self {
        count.send_modify(|n| *n += 1);
        Self(Arc::clone(count))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl<B> tower::Service<Request<B>> for WithLimits
where
    B: HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        self.first_request.notify_one();
        let in_flight = InFlight::new(&self.in_flight);
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let response = tower::ServiceExt::oneshot(self.app.clone(), request);
        let timeout = self.request_timeout;
        Box::pin(async move {
            // SECURITY (DoS): no request holds its connection and its
            // memory for longer than this.
            let response = match tokio::time::timeout(timeout, response).await {
                Ok(response) => response,
                Err(_) => Ok((
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(serde_json::json!({
                        "error": "timeout",
                        "error_description": "the request took too long",
                    })),
                )
                    .into_response()),
            };
            // The request stays in flight until its response's body is
            // sent (or dropped): a slow download is not idle.
            response.map(|response| {
                response.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        let _ = &in_flight;
                        frame
                    }))
                })
            })
        })
    }
}
