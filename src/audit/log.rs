//! The JSON-lines writer of the audit records (feature `audit-log`): the
//! [`AuditRecorder`] layer renders each record on the request thread and
//! appends it to a shared batch; one writer thread writes the batches to
//! the sink. The user's documentation (format, queue bounds, drops) is on
//! [`AuditLog`].
//!
//! Why this shape: the request thread must never wait on I/O, and under
//! load it pays for every byte of work here (the writer thread shares its
//! core when the process is pinned to one). So a record costs one render
//! into a reused per-thread buffer and one copy into the batch under a
//! short lock: no allocation, no channel operation, no cross-thread free.
//! The records `emit` makes arrive rendered ([`Rendered`]): the generic
//! field visitor only serves other events on the audit target. The writer
//! swaps the whole batch out at once and writes it with one `write`; after
//! a batch it lingers a millisecond before looking again, so under load it
//! is never parked and a request thread never has to wake it.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::Record;
use crate::telemetry;

/// The target of the audit events.
const TARGET: &str = "authlayer::audit";

/// Records the queue holds by default.
const DEFAULT_QUEUE: usize = 65_536;

/// Bytes of records the queue holds by default.
const DEFAULT_QUEUE_BYTES: usize = 32 * 1024 * 1024;

/// The batch's starting capacity (it grows as the load needs, and keeps
/// its capacity from batch to batch).
const BATCH: usize = 64 * 1024;

/// A batch buffer larger than this is given back once written.
const SHRINK_ABOVE: usize = 1024 * 1024;

/// After a batch, the writer waits this long before looking again, so that
/// it is not parked (and need not be woken) while records keep coming.
const LINGER: Duration = Duration::from_millis(1);

/// Drops are reported at most this often while they happen.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// How long dropping the guard waits for the writer to finish.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// How long [`AuditLogGuard::flush`] waits for the writer.
const FLUSH_WAIT: Duration = Duration::from_secs(10);

/// Configures the JSON-lines audit log; [`start`](Self::start) starts its
/// writer thread.
///
/// The [`AuditRecorder`] it gives is a [`tracing_subscriber::Layer`]: it
/// picks the events of the audit target ([`TARGET`](crate::audit::TARGET))
/// out of everything the application logs, turns each into one JSON line
/// and hands the line to the writer thread. The [`AuditLogGuard`] flushes
/// and stops that thread when dropped; keep it alive as long as the program
/// runs. Other layers of the same subscriber (a `fmt` layer) see the audit
/// events too: [filter them there](crate::audit#keeping-the-audit-log-apart-from-the-human-log).
///
/// # Example
///
/// ```
/// use authlayer::audit::AuditLog;
/// use tracing_subscriber::layer::SubscriberExt as _;
///
/// # fn main() -> std::io::Result<()> {
/// let path = std::env::temp_dir().join(format!("audit-doc-{}.jsonl", std::process::id()));
/// let (recorder, guard) = AuditLog::file(&path).start()?;
/// let subscriber = tracing_subscriber::registry().with(recorder);
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(target: "authlayer::audit", schema_version = 1u64, decision = "allow");
///     tracing::info!("not an audit event: not in the audit log");
/// });
/// guard.flush()?;
/// let log = std::fs::read_to_string(&path)?;
/// assert_eq!(log.lines().count(), 1);
/// assert!(log.contains(r#""schema_version":1,"decision":"allow""#));
/// assert_eq!(guard.dropped(), 0);
/// # drop(guard);
/// # std::fs::remove_file(&path)
/// # }
/// ```
///
/// # One line
///
/// `{"ts":"2026-12-01T21:13:12.345Z", …the event's fields in order…}`: `ts`
/// is the time the event was recorded (RFC 3339, UTC, milliseconds), then
/// every field of the event under its own name. Strings are JSON-escaped
/// (serde_json); integers and booleans stay numbers and booleans; `%` and
/// `?` fields become strings. No field is added or dropped, so the line has
/// exactly the [schema](crate::audit#schema-version-1) the emitter
/// documents.
///
/// # A bounded queue, off the request path
///
/// The request thread only formats the line and offers it to a bounded
/// queue without waiting; one writer thread batches the lines to the sink.
/// The queue holds at most [`queue_capacity`](AuditLog::queue_capacity)
/// records (65,536 by default) and at most
/// [`queue_bytes`](AuditLog::queue_bytes) bytes of them (32 MiB by
/// default), whichever comes first. A full queue drops the record rather
/// than block a request: an audit log must not become a way to stall the
/// service. The defaults are chosen not to drop: the writer keeps up with
/// far more than 50,000 records/s to a file, and 65,536 records absorb more
/// than a second of stall of the disk at that rate. A record is about 400
/// bytes (the path is cut at 512 bytes), so the count bounds the queue at
/// roughly 25 MiB; the byte bound holds whatever the records carry.
///
/// Drops are never silent: they are counted ([`AuditRecorder::dropped`],
/// [`AuditLogGuard::dropped`]), exported as `authlayer_audit_dropped_total`
/// with the `metrics` feature, and reported as a `warn!` on target
/// `authlayer::audit_log` at most every ten seconds while they happen and
/// once more, with the total, at shutdown. A record that cannot be written
/// (an I/O error) counts as dropped too.
#[must_use]
pub struct AuditLog {
    sink: Sink,
    queue: usize,
    queue_bytes: usize,
}

enum Sink {
    Stdout,
    File(PathBuf),
    Writer(Box<dyn Write + Send>),
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sink = match &self.sink {
            Sink::Stdout => "stdout".to_owned(),
            Sink::File(path) => path.display().to_string(),
            Sink::Writer(_) => "writer".to_owned(),
        };
        f.debug_struct("AuditLog")
            .field("sink", &sink)
            .field("queue", &self.queue)
            .field("queue_bytes", &self.queue_bytes)
            .finish()
    }
}

impl AuditLog {
    fn new(sink: Sink) -> Self {
        Self {
            sink,
            queue: DEFAULT_QUEUE,
            queue_bytes: DEFAULT_QUEUE_BYTES,
        }
    }

    /// Writes the audit log to standard output.
    pub fn stdout() -> Self {
        Self::new(Sink::Stdout)
    }

    /// Appends the audit log to the file at `path`, created (mode 0600 on
    /// Unix) if missing.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::new(Sink::File(path.into()))
    }

    /// Writes the audit log to `writer` (on the writer thread).
    pub fn writer(writer: impl Write + Send + 'static) -> Self {
        Self::new(Sink::Writer(Box::new(writer)))
    }

    /// How many records may wait for the writer; past that, records are
    /// dropped and counted (at least 1). Defaults to 65,536.
    pub fn queue_capacity(mut self, records: usize) -> Self {
        self.queue = records.max(1);
        self
    }

    /// How many bytes of records may wait for the writer; past that,
    /// records are dropped and counted, as for
    /// [`queue_capacity`](Self::queue_capacity), whichever bound comes
    /// first. A record larger than the whole budget is always dropped.
    /// Defaults to 32 MiB.
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// Opens the sink and starts the writer thread.
    ///
    /// Install the recorder in your subscriber
    /// (`tracing_subscriber::registry().with(recorder)`) and keep the guard
    /// until the program ends: dropping it writes what is queued and stops
    /// the writer.
    pub fn start(self) -> io::Result<(AuditRecorder, AuditLogGuard)> {
        let out: Box<dyn Write + Send> = match self.sink {
            Sink::Stdout => Box::new(io::stdout()),
            Sink::File(path) => {
                let mut options = std::fs::OpenOptions::new();
                options.create(true).append(true);
                // SECURITY: the audit log names users and tenants; it is
                // not for every local account to read.
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let file = options.open(&path).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot open the audit log {}: {e}", path.display()),
                    )
                })?;
                Box::new(file)
            }
            Sink::Writer(w) => w,
        };
        let shared = Arc::new(Shared {
            capacity: self.queue,
            budget: self.queue_bytes,
            queue: Mutex::new(Queue {
                batch: Vec::with_capacity(BATCH),
                ..Queue::default()
            }),
            ..Shared::default()
        });
        let (done_tx, done) = mpsc::sync_channel(1);
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("authlayer-audit-log".into())
                .spawn(move || {
                    Writer::new(out, Arc::clone(&shared)).run();
                    shared.lock().stopped = true;
                    let _ = done_tx.send(());
                })?
        };
        LIVE.fetch_add(1, Ordering::Relaxed);
        Ok((
            AuditRecorder {
                shared: Arc::clone(&shared),
            },
            AuditLogGuard {
                shared,
                done,
                thread: Some(thread),
            },
        ))
    }
}

/// Writers started and not yet stopped: while there is none, `emit` does
/// not render its records for one.
static LIVE: AtomicUsize = AtomicUsize::new(0);

#[derive(Default)]
struct Shared {
    dropped: AtomicU64,
    written: AtomicU64,
    /// How many records, and how many bytes of them, may wait.
    capacity: usize,
    budget: usize,
    queue: Mutex<Queue>,
    /// The writer waits here for records, a flush or the shutdown.
    wake: Condvar,
}

/// What waits for the writer.
#[derive(Default)]
struct Queue {
    /// Whole lines, one after another.
    batch: Vec<u8>,
    records: usize,
    /// Callers of [`AuditLogGuard::flush`] waiting for the batch.
    flushes: Vec<SyncSender<io::Result<()>>>,
    shutdown: bool,
    /// The writer thread has returned: nothing is written any more.
    stopped: bool,
    /// The writer waits on `wake` and must be woken for new records.
    parked: bool,
}

impl Queue {
    fn is_idle(&self) -> bool {
        self.records == 0 && self.flushes.is_empty() && !self.shutdown
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one line to the batch, or drops it (and counts it) when the
    /// batch is full or the writer has stopped. Never waits for the writer.
    fn push(&self, line: &[u8]) {
        let mut queue = self.lock();
        // SECURITY: bounded in bytes as well as in records, so records
        // that carry long values cannot make the queue hold gigabytes.
        if queue.shutdown
            || queue.stopped
            || queue.records >= self.capacity
            || queue.batch.len().saturating_add(line.len()) > self.budget
        {
            drop(queue);
            self.drop_records(1);
            return;
        }
        queue.batch.extend_from_slice(line);
        queue.records += 1;
        let wake = std::mem::take(&mut queue.parked);
        drop(queue);
        if wake {
            self.wake.notify_one();
        }
    }

    fn drop_records(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        telemetry::audit_dropped(n);
    }
}

/// The [`Layer`] that turns audit events into JSON lines for the writer
/// thread; built by [`AuditLog::start`]. Cheap to clone; every clone feeds
/// the same writer.
///
/// It keeps the events of the audit target and ignores every other one;
/// the other layers of your subscriber still see the audit events, so give
/// your `fmt` layer a filter that drops them (see
/// [`audit`](crate::audit#keeping-the-audit-log-apart-from-the-human-log)).
#[derive(Clone)]
pub struct AuditRecorder {
    shared: Arc<Shared>,
}

impl fmt::Debug for AuditRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditRecorder")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl AuditRecorder {
    /// Records dropped so far: the queue was full, the writer had stopped,
    /// or writing failed.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

thread_local! {
    /// The line being made, reused from record to record.
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
    /// The fields of the record `emit` is dispatching, rendered by
    /// [`Rendered::of`]; empty when there is none.
    static RENDERED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The second the cached date prefix is for, and the prefix
    /// (`2026-12-01T21:13:12.`).
    static DATE: Cell<(u64, [u8; 20])> = const { Cell::new((u64::MAX, [0; 20])) };
}

impl<S: Subscriber> Layer<S> for AuditRecorder {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != TARGET {
            return;
        }
        LINE.with_borrow_mut(|line| {
            line.clear();
            line.extend_from_slice(b"{\"ts\":\"");
            rfc3339_millis(SystemTime::now(), line);
            line.push(b'"');
            let rendered = RENDERED.with_borrow(|fields| {
                // Only `emit`'s own event carries its rendering: another
                // event on the audit target (the issuer's) is visited.
                let ours = !fields.is_empty() && event.metadata().module_path() == Some(EMITTER);
                if ours {
                    line.extend_from_slice(fields);
                }
                ours
            });
            if !rendered {
                event.record(&mut JsonFields { out: line });
            }
            line.extend_from_slice(b"}\n");
            self.shared.push(line);
        });
    }
}

/// The module whose `emit` renders its records ahead.
const EMITTER: &str = "authlayer::audit";

/// The record `emit` is about to dispatch, rendered for the JSON-lines
/// writer while the guard lives (only when a writer runs).
pub(crate) struct Rendered(bool);

impl Rendered {
    pub(crate) fn of(record: &Record<'_>) -> Self {
        if LIVE.load(Ordering::Relaxed) == 0 {
            return Self(false);
        }
        RENDERED.with_borrow_mut(|out| {
            out.clear();
            render(record, out);
        });
        Self(true)
    }
}

impl Drop for Rendered {
    fn drop(&mut self) {
        if self.0 {
            RENDERED.with_borrow_mut(Vec::clear);
        }
    }
}

/// The fields of `record` as the field visitor writes them for `emit`'s
/// event: the same names, order and values, absent fields left out.
fn render(record: &Record<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"schema_version\":");
    number(out, super::SCHEMA_VERSION);
    out.extend_from_slice(b",\"action\":\"request\"");
    let texts = [
        ("decision", Some(record.decision)),
        ("reason", Some(record.reason)),
        ("rule", Some(record.rule)),
        ("sub", record.sub),
        ("iss", record.iss),
        ("client_id", record.client_id),
        ("tenant", record.tenant),
        ("jti", record.jti),
        ("scheme", record.scheme),
        ("dpop_proof", record.dpop_proof),
        ("required_scopes", record.required_scopes),
        ("required_roles", record.required_roles),
        ("method", Some(record.method)),
        ("path", Some(record.path)),
    ];
    for (name, value) in texts {
        if let Some(value) = value {
            key(out, name);
            string(out, value);
        }
    }
    for (name, value) in [
        ("status", record.status),
        ("grpc_status", record.grpc_status),
    ] {
        if let Some(value) = value {
            key(out, name);
            number(out, u64::from(value));
        }
    }
    if let Some(id) = record.request_id {
        key(out, "request_id");
        string(out, id);
    }
}

/// `,"name":` for a name that needs no escaping (the schema's).
fn key(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// A JSON string: copied as it is when nothing in it needs escaping (the
/// usual case), else escaped by serde_json.
fn string(out: &mut Vec<u8>, value: &str) {
    if value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, value);
    }
}

fn number(out: &mut Vec<u8>, value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value;
    // At most 20 digits: `u64::MAX` has 20.
    while let Some(slot) = at.checked_sub(1).and_then(|i| digits.get_mut(i)) {
        *slot = b'0' + u8::try_from(rest % 10).unwrap_or_default();
        at -= 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
}

/// Keeps the writer thread; dropping it writes every queued record, flushes
/// and stops the thread (waiting at most five seconds).
pub struct AuditLogGuard {
    shared: Arc<Shared>,
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for AuditLogGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLogGuard")
            .field("written", &self.written())
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl AuditLogGuard {
    /// Waits until every record queued before this call is written and the
    /// sink flushed (at most ten seconds). Not for the request path.
    pub fn flush(&self) -> io::Result<()> {
        let (ack, acked) = mpsc::sync_channel(1);
        {
            let mut queue = self.shared.lock();
            if queue.stopped || queue.shutdown {
                return Err(io::Error::other("the audit log writer has stopped"));
            }
            queue.flushes.push(ack);
            queue.parked = false;
        }
        self.shared.wake.notify_one();
        match acked.recv_timeout(FLUSH_WAIT) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the audit log writer did not flush within 10 s",
            )),
            Err(RecvTimeoutError::Disconnected) => {
                Err(io::Error::other("the audit log writer has stopped"))
            }
        }
    }

    /// Records dropped so far (see [`AuditRecorder::dropped`]).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Records written to the sink so far (handed to it; see
    /// [`flush`](Self::flush)).
    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }
}

impl Drop for AuditLogGuard {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
        // Records queued so far are written; later ones are dropped.
        {
            let mut queue = self.shared.lock();
            queue.shutdown = true;
            queue.parked = false;
        }
        self.shared.wake.notify_one();
        if self.done.recv_timeout(SHUTDOWN_WAIT).is_ok()
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        } else {
            tracing::warn!(
                target: "authlayer::audit_log",
                "the audit log writer did not finish within 5 s; records still queued are lost"
            );
        }
        let dropped = self.dropped();
        if dropped > 0 {
            tracing::warn!(
                target: "authlayer::audit_log",
                dropped,
                written = self.written(),
                "AUDIT RECORDS WERE DROPPED: the audit log is incomplete"
            );
        }
    }
}

/// The writer thread: takes the whole batch at once, writes it, reports
/// drops.
struct Writer {
    out: Box<dyn Write + Send>,
    shared: Arc<Shared>,
    /// The batch being written; swapped with the queue's, so both keep
    /// their capacity.
    spare: Vec<u8>,
    reported: u64,
    last_report: Option<Instant>,
    last_error: Option<Instant>,
}

impl Writer {
    fn new(out: Box<dyn Write + Send>, shared: Arc<Shared>) -> Self {
        Self {
            out,
            shared,
            spare: Vec::with_capacity(BATCH),
            reported: 0,
            last_report: None,
            last_error: None,
        }
    }

    fn run(mut self) {
        let mut lingered = false;
        loop {
            let (records, acks, shutdown) = {
                let shared = Arc::clone(&self.shared);
                let mut queue = shared.lock();
                if queue.is_idle() && !lingered {
                    // Under load more records come within the linger:
                    // looking again without parking spares the request
                    // threads the wake-up.
                    drop(queue);
                    lingered = true;
                    std::thread::sleep(LINGER);
                    continue;
                }
                while queue.is_idle() {
                    queue.parked = true;
                    let (back, waited) = shared
                        .wake
                        .wait_timeout(queue, REPORT_EVERY)
                        .unwrap_or_else(PoisonError::into_inner);
                    queue = back;
                    if waited.timed_out() && queue.is_idle() {
                        drop(queue);
                        self.report_drops();
                        queue = shared.lock();
                    }
                }
                queue.parked = false;
                std::mem::swap(&mut queue.batch, &mut self.spare);
                let records = std::mem::take(&mut queue.records);
                (records, std::mem::take(&mut queue.flushes), queue.shutdown)
            };
            lingered = false;
            self.write(records);
            let flushed = self.out.flush();
            if let Err(e) = &flushed {
                self.io_error(e);
            }
            for ack in acks {
                let _ = ack.send(match &flushed {
                    Ok(()) => Ok(()),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                });
            }
            self.report_drops();
            if shutdown {
                return;
            }
        }
    }

    /// Writes the batch of `records` lines in `spare`.
    fn write(&mut self, records: usize) {
        if records == 0 {
            return;
        }
        let n = u64::try_from(records).unwrap_or(u64::MAX);
        match self.out.write_all(&self.spare) {
            Ok(()) => {
                self.shared.written.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                self.shared.drop_records(n);
                self.io_error(&e);
            }
        }
        recycle(&mut self.spare);
    }

    fn io_error(&mut self, e: &io::Error) {
        if self.last_error.is_none_or(|t| t.elapsed() >= REPORT_EVERY) {
            self.last_error = Some(Instant::now());
            tracing::warn!(target: "authlayer::audit_log", error = %e, "cannot write the audit log");
        }
    }

    fn report_drops(&mut self) {
        let dropped = self.shared.dropped.load(Ordering::Relaxed);
        if dropped == self.reported || self.last_report.is_some_and(|t| t.elapsed() < REPORT_EVERY)
        {
            return;
        }
        tracing::warn!(
            target: "authlayer::audit_log",
            dropped = dropped - self.reported,
            total = dropped,
            "AUDIT RECORDS DROPPED: the audit log writer falls behind (raise its queue capacity or use a faster sink)"
        );
        self.reported = dropped;
        self.last_report = Some(Instant::now());
    }
}

/// Empties a written batch for the next one. A burst (a stalled sink) may
/// have grown it to the byte budget: that much memory is not kept.
fn recycle(batch: &mut Vec<u8>) {
    batch.clear();
    if batch.capacity() > SHRINK_ABOVE {
        batch.shrink_to(BATCH);
    }
}

struct JsonFields<'a> {
    out: &'a mut Vec<u8>,
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        self.out.push(b',');
        string(self.out, field.name());
        self.out.push(b':');
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        string(self.out, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        number(self.out, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        // NaN and infinities are not JSON numbers.
        let _ = serde_json::to_writer(&mut *self.out, &value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        string(self.out, &format!("{value:?}"));
    }
}

/// `2026-12-01T21:13:12.345Z`.
fn rfc3339_millis(t: SystemTime, out: &mut Vec<u8>) {
    let since = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    // The date and time to the second change once a second: rendered
    // once per thread and second, then copied.
    let (cached, prefix) = DATE.get();
    if cached == secs {
        out.extend_from_slice(&prefix);
    } else {
        let start = out.len();
        let (year, month, day) = civil_from_days(secs / 86_400);
        let rem = secs % 86_400;
        let _ = write!(
            out,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.",
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
        );
        // Years past 9999 do not fit the cache: rendered every time.
        if let Some(Ok(prefix)) = out.get(start..).map(<[u8; 20]>::try_from) {
            DATE.set((secs, prefix));
        }
    }
    let millis = since.subsec_millis();
    out.extend_from_slice(&[
        b'0' + digit(millis / 100),
        b'0' + digit(millis / 10 % 10),
        b'0' + digit(millis % 10),
        b'Z',
    ]);
}

/// A number below 10 as a byte.
fn digit(n: u32) -> u8 {
    u8::try_from(n % 10).unwrap_or_default()
}

/// The proleptic Gregorian date `days` after 1970-01-01 (H. Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// A sink tests can read, and stall; it tells when a write begins.
    #[derive(Clone, Default)]
    struct Sink {
        bytes: Arc<Mutex<Vec<u8>>>,
        stall: Arc<Mutex<()>>,
        entered: Arc<Mutex<Option<mpsc::Sender<()>>>>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Some(entered) = &*self.entered.lock().unwrap() {
                let _ = entered.send(());
            }
            let _stalled = self.stall.lock().unwrap();
            self.bytes.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        /// Stalls the sink; the receiver hears of every write that begins.
        fn stall(&self) -> (std::sync::MutexGuard<'_, ()>, mpsc::Receiver<()>) {
            let (tx, rx) = mpsc::channel();
            *self.entered.lock().unwrap() = Some(tx);
            (self.stall.lock().unwrap(), rx)
        }

        fn lines(&self) -> Vec<serde_json::Value> {
            String::from_utf8(self.bytes.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    fn with_recorder(recorder: AuditRecorder, f: impl FnOnce()) {
        let subscriber = tracing_subscriber::registry().with(recorder);
        tracing::subscriber::with_default(subscriber, f);
    }

    /// Keeps, for each audit event, the line the field visitor makes of
    /// it and the one `emit` rendered ahead, if any.
    #[derive(Clone, Default)]
    struct BothWays(Arc<Mutex<Vec<Seen>>>);

    /// The visited line and the rendered one.
    type Seen = (Vec<u8>, Vec<u8>);

    impl<S: Subscriber> Layer<S> for BothWays {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            let mut visited = Vec::new();
            event.record(&mut JsonFields { out: &mut visited });
            let rendered = RENDERED.with_borrow(Clone::clone);
            self.0.lock().unwrap().push((visited, rendered));
        }
    }

    #[test]
    fn emit_renders_exactly_the_line_the_field_visitor_makes() {
        use crate::audit::{RuleInfo, Subject, Trail};
        let both = BothWays::default();
        let (recorder, guard) = AuditLog::writer(io::sink()).start().unwrap();
        let subscriber = tracing_subscriber::registry()
            .with(both.clone())
            .with(recorder);
        let claims = crate::Claims::from_json(
            r#"{"sub":"ann \"the\" admin\n","iss":"https://id.example","client_id":"c","tenant":"t1","jti":"j-é"}"#,
        )
        .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let req = http::Request::builder()
                .method("PATCH")
                .uri(format!("/orders/{}?q=secret", "p".repeat(600)))
                .header("x-request-id", "req-1")
                .body(())
                .unwrap();
            let denied = http::Response::builder().status(403).body(()).unwrap();
            let info = RuleInfo {
                rule: "scopes",
                scopes: Some(Arc::from("orders:write")),
                roles: Some(Arc::from("admin")),
            };
            super::super::deny_rule(
                &req,
                None,
                Some(&claims),
                &info,
                "insufficient_scope",
                &denied,
            );
            let grpc = http::Response::builder()
                .header("grpc-status", "16")
                .body(())
                .unwrap();
            super::super::deny_verify(
                &http::Request::new(()),
                "invalid_dpop_proof",
                super::super::Dpop {
                    scheme: Some("dpop"),
                    proof: Some("htu"),
                },
                &grpc,
            );
            let mut pending = super::super::Pending::new(
                Subject::of(&http::Request::new(()), Some(&claims)),
                "valid_token",
                Trail::of_scheme("bearer"),
            );
            pending.finish::<()>(None);
        });
        drop(guard);
        let seen = both.0.lock().unwrap();
        assert_eq!(seen.len(), 3);
        for (visited, rendered) in seen.iter() {
            assert_eq!(
                String::from_utf8_lossy(rendered),
                String::from_utf8_lossy(visited)
            );
        }
        let first = String::from_utf8(seen[0].1.clone()).unwrap();
        assert!(first.contains(r#""sub":"ann \"the\" admin\n""#), "{first}");
        assert!(first.contains(r#""status":403"#), "{first}");
        assert!(!first.contains("secret"), "{first}");
        assert!(seen[1].1.ends_with(br#""grpc_status":16"#));
    }

    #[test]
    fn without_a_writer_running_emit_renders_nothing_ahead() {
        let both = BothWays::default();
        let subscriber = tracing_subscriber::registry().with(both.clone());
        // Other tests may run a writer meanwhile: only the line is compared.
        tracing::subscriber::with_default(subscriber, || {
            let rendered = super::Rendered::of(&super::Record {
                decision: "allow",
                reason: "valid_token",
                rule: "verify",
                sub: None,
                iss: None,
                client_id: None,
                tenant: None,
                jti: None,
                scheme: None,
                dpop_proof: None,
                required_scopes: None,
                required_roles: None,
                method: "GET",
                path: "/",
                status: Some(200),
                grpc_status: None,
                request_id: None,
            });
            let live = rendered.0;
            drop(rendered);
            assert_eq!(live, LIVE.load(Ordering::Relaxed) > 0);
            assert!(
                RENDERED.with_borrow(Vec::is_empty),
                "cleared when the guard goes"
            );
        });
    }

    #[test]
    fn a_batch_grown_by_a_burst_gives_its_memory_back_once_written() {
        let mut usual = Vec::with_capacity(BATCH);
        usual.extend_from_slice(&[b'x'; 1000]);
        recycle(&mut usual);
        assert!(usual.is_empty());
        assert_eq!(usual.capacity(), BATCH, "the usual batch keeps its buffer");
        let mut burst = vec![b'x'; 8 * SHRINK_ABOVE];
        recycle(&mut burst);
        assert!(burst.is_empty());
        assert!(burst.capacity() <= SHRINK_ABOVE, "{}", burst.capacity());
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 403, 65_535, u64::MAX] {
            let mut out = Vec::new();
            number(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }

    #[test]
    fn strings_needing_no_escape_are_copied_and_the_rest_escaped_as_serde_json_does() {
        for text in [
            "plain",
            "",
            "a\"b",
            "back\\slash",
            "tab\t",
            "nl\n",
            "é",
            "\u{7f}",
            "\u{1}",
        ] {
            let mut out = Vec::new();
            string(&mut out, text);
            assert_eq!(out, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let mut out = Vec::new();
        rfc3339_millis(SystemTime::UNIX_EPOCH, &mut out);
        assert_eq!(out, b"1970-01-01T00:00:00.000Z");
        let mut out = Vec::new();
        // 2024-02-29T23:59:59.123Z, a leap day.
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_709_251_199_123);
        rfc3339_millis(t, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "2024-02-29T23:59:59.123Z");
        let mut out = Vec::new();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(951_868_800); // 2000-03-01
        rfc3339_millis(t, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "2000-03-01T00:00:00.000Z");
        // The same second again (the cached date), then the next one.
        for (millis, expected) in [
            (951_868_800_999, "2000-03-01T00:00:00.999Z"),
            (951_868_801_050, "2000-03-01T00:00:01.050Z"),
        ] {
            let mut out = Vec::new();
            rfc3339_millis(
                SystemTime::UNIX_EPOCH + Duration::from_millis(millis),
                &mut out,
            );
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn an_audit_event_becomes_one_json_line_with_its_fields_escaped() {
        let sink = Sink::default();
        let (recorder, guard) = AuditLog::writer(sink.clone()).start().unwrap();
        with_recorder(recorder, || {
            tracing::info!(
                target: "authlayer::audit",
                schema_version = 1u64,
                decision = "deny",
                sub = "mallory\"\n{\"decision\":\"allow\"}",
                status = 403u16,
                method = %http::Method::GET,
                anonymous = false,
            );
        });
        guard.flush().unwrap();
        let lines = sink.lines();
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["schema_version"], 1);
        assert_eq!(line["decision"], "deny");
        assert_eq!(line["sub"], "mallory\"\n{\"decision\":\"allow\"}");
        assert_eq!(line["status"], 403);
        assert_eq!(line["method"], "GET");
        assert_eq!(line["anonymous"], false);
        let ts = line["ts"].as_str().unwrap();
        assert_eq!(ts.len(), "2026-12-01T21:13:12.345Z".len(), "{ts}");
        assert!(ts.ends_with('Z'));
    }

    #[test]
    fn events_of_other_targets_are_not_written() {
        let sink = Sink::default();
        let (recorder, guard) = AuditLog::writer(sink.clone()).start().unwrap();
        with_recorder(recorder, || {
            tracing::info!(target: "authlayer::audit_log", "not audit");
            tracing::warn!(token = "secret", "application line");
            tracing::info!(target: "authlayer::audit", decision = "allow");
        });
        guard.flush().unwrap();
        let lines = sink.lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["decision"], "allow");
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let sink = Sink::default();
        let (stalled, entered) = sink.stall();
        let (recorder, guard) = AuditLog::writer(sink.clone())
            .queue_capacity(4)
            .start()
            .unwrap();
        let counter = recorder.clone();
        with_recorder(recorder, || {
            tracing::info!(target: "authlayer::audit", n = 0u64);
            // The writer took that record and is stuck writing it.
            entered.recv().unwrap();
            for n in 1..=200u64 {
                tracing::info!(target: "authlayer::audit", n);
            }
        });
        // Four fit in the queue; the rest was dropped without waiting.
        assert_eq!(counter.dropped(), 196);
        drop(stalled);
        guard.flush().unwrap();
        assert_eq!(guard.written(), 5);
        let lines = sink.lines();
        let written: Vec<u64> = lines.iter().map(|l| l["n"].as_u64().unwrap()).collect();
        assert_eq!(written, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn the_queue_is_bounded_in_bytes_as_well_as_in_records() {
        let sink = Sink::default();
        let (stalled, entered) = sink.stall();
        let (recorder, guard) = AuditLog::writer(sink.clone())
            .queue_bytes(64 * 1024)
            .start()
            .unwrap();
        let counter = recorder.clone();
        let big = "x".repeat(10_000);
        with_recorder(recorder, || {
            tracing::info!(target: "authlayer::audit", n = 0u64);
            entered.recv().unwrap();
            // About 10 KB each: six fit in 64 KiB, far fewer than the
            // 65,536 records the queue would take by count.
            for n in 1..=100u64 {
                tracing::info!(target: "authlayer::audit", n, big = big.as_str());
            }
        });
        assert_eq!(counter.dropped(), 94);
        drop(stalled);
        guard.flush().unwrap();
        assert_eq!(guard.written(), 7);
        // Written records give their bytes back: the queue takes more.
        let again = AuditRecorder::clone(&counter);
        with_recorder(again, || {
            for n in 101..=106u64 {
                tracing::info!(target: "authlayer::audit", n, big = big.as_str());
            }
        });
        guard.flush().unwrap();
        assert_eq!(counter.dropped(), 94);
        assert_eq!(guard.written(), 13);
    }

    #[test]
    fn dropping_the_guard_writes_every_queued_record() {
        let sink = Sink::default();
        let (stalled, _entered) = sink.stall();
        let (recorder, guard) = AuditLog::writer(sink.clone()).start().unwrap();
        with_recorder(recorder, || {
            for n in 0..10_000u64 {
                tracing::info!(target: "authlayer::audit", n);
            }
        });
        drop(stalled);
        assert_eq!(guard.dropped(), 0);
        drop(guard);
        let lines = sink.lines();
        assert_eq!(lines.len(), 10_000);
        assert_eq!(lines[9_999]["n"], 9_999);
    }

    #[test]
    fn records_after_shutdown_are_counted_as_dropped() {
        let sink = Sink::default();
        let (recorder, guard) = AuditLog::writer(sink.clone()).start().unwrap();
        drop(guard);
        let counter = recorder.clone();
        with_recorder(recorder, || {
            tracing::info!(target: "authlayer::audit", decision = "allow");
        });
        assert_eq!(counter.dropped(), 1);
        assert!(sink.lines().is_empty());
    }

    #[test]
    fn a_file_sink_appends() {
        let path = std::env::temp_dir().join(format!(
            "authlayer-audit-unit-{}-{:?}.jsonl",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, "{\"earlier\":true}\n").unwrap();
        let (recorder, guard) = AuditLog::file(&path).start().unwrap();
        with_recorder(recorder, || {
            tracing::info!(target: "authlayer::audit", decision = "allow");
        });
        drop(guard);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], "{\"earlier\":true}");
        assert!(lines[1].contains("\"decision\":\"allow\""));
    }

    #[test]
    fn an_unopenable_file_is_an_error_naming_it() {
        let err = AuditLog::file("/nonexistent-dir/audit.jsonl")
            .start()
            .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-dir/audit.jsonl"),
            "{err}"
        );
    }
}
