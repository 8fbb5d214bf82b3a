//! Query logs in dnstap (<https://dnstap.info>): every query the userspace server answers, and
//! one XDP answer in `xdp_sample` (read from the XDP program's ring buffer by
//! `fastpath::tap`), written as AUTH_QUERY and AUTH_RESPONSE messages in Frame Streams to a
//! file or a unix socket, as Knot, BIND and Unbound write them.
//!
//! The answer paths never wait for the log: events go through a bounded queue to one writer
//! thread, and an event that finds the queue full is counted as dropped. A socket whose
//! reader is away is retried every second (events meanwhile are dropped and counted).

mod fstrm;
pub mod proto;

use std::io::BufWriter;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, SystemTime};

use prost::Message as _;

/// Events queued for the writer before new ones are dropped.
const QUEUE: usize = 65_536;
/// The writer flushes at least this often.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Where and what to log (`[dnstap]`, `--dnstap`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub sink: Sink,
    /// `Dnstap.identity`: this server's name (default: the host name).
    pub identity: String,
    /// Log queries (AUTH_QUERY) and responses (AUTH_RESPONSE).
    pub queries: bool,
    pub responses: bool,
    /// One XDP answer in this many is logged; 0 = none.
    pub xdp_sample: u32,
}

/// A Frame Streams destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    /// A file, created (0600) or truncated.
    File(PathBuf),
    /// A unix socket a reader listens on (`unix:PATH`).
    Unix(PathBuf),
}

impl Sink {
    /// `unix:PATH` or a file path.
    pub fn parse(text: &str) -> Result<Sink, String> {
        let (unix, path) = match text.strip_prefix("unix:") {
            Some(p) => (true, p),
            None => (false, text),
        };
        if path.is_empty() {
            return Err(format!("dnstap sink {text:?}: no path"));
        }
        let path = PathBuf::from(path);
        Ok(if unix {
            Sink::Unix(path)
        } else {
            Sink::File(path)
        })
    }
}

impl std::fmt::Display for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::File(p) => write!(f, "{}", p.display()),
            Sink::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// Which answer path an event comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerPath {
    Xdp = 0,
    Userspace = 1,
}

/// Transport of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Udp,
    Tcp,
}

/// One query and what was answered.
#[derive(Clone, Debug)]
pub struct Event {
    pub path: AnswerPath,
    pub protocol: Protocol,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub query_time: SystemTime,
    /// The query's DNS message; empty when it was not kept (an XDP query too long to copy).
    pub query: Vec<u8>,
    /// The response and when it was sent; `None` when nothing was sent.
    pub response: Option<(SystemTime, Vec<u8>)>,
}

/// Counts of what was logged, for metrics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages written, by [`AnswerPath`].
    pub written: [AtomicU64; 2],
    /// Events dropped: queue full, or the sink unavailable.
    pub dropped: AtomicU64,
}

enum Msg {
    Event(Box<Event>),
    Stop,
}

/// The answer paths' handle: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Tap {
    tx: SyncSender<Msg>,
    pub stats: Arc<Stats>,
    pub settings: Arc<Settings>,
}

impl Tap {
    /// Queues `event`, or counts it dropped if the queue is full.
    pub fn log(&self, event: Event) {
        match self.tx.try_send(Msg::Event(Box::new(event))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Why the log could not start.
#[derive(Debug, thiserror::Error)]
pub enum DnstapError {
    #[error("dnstap file {}: {error}", path.display())]
    File {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("starting the dnstap writer: {0}")]
    Thread(std::io::Error),
}

/// The writer thread; [`Writer::stop`] ends the stream properly (STOP, and FINISH on a socket).
pub struct Writer {
    tx: SyncSender<Msg>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Writes out what is queued, ends the stream and waits for the thread.
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.tx.send(Msg::Stop);
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Opens the sink (a file now; a socket on the writer thread, retried) and starts the writer.
pub fn start(settings: Settings) -> Result<(Tap, Writer), DnstapError> {
    let file = match &settings.sink {
        Sink::File(path) => Some(create_file(path).map_err(|error| DnstapError::File {
            path: path.clone(),
            error,
        })?),
        Sink::Unix(_) => None,
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    let stats = Arc::new(Stats::default());
    let settings = Arc::new(settings);
    let thread = {
        let (stats, settings) = (stats.clone(), settings.clone());
        std::thread::Builder::new()
            .name("dnstap".into())
            .spawn(move || run(&settings, file, &rx, &stats))
            .map_err(DnstapError::Thread)?
    };
    Ok((
        Tap {
            tx: tx.clone(),
            stats,
            settings,
        },
        Writer {
            tx,
            thread: Some(thread),
        },
    ))
}

/// A log file: private (0600), never through a symbolic link. A log already there (the last
/// run's, or that of a daemon being taken over, which goes on writing to it until it exits)
/// becomes `PATH.old`, replacing the one before.
fn create_file(path: &Path) -> std::io::Result<std::fs::File> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0) {
        let mut old = path.as_os_str().to_owned();
        old.push(".old");
        std::fs::rename(path, PathBuf::from(old))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path)
}

/// An open stream and, on a socket, its read half (for ACCEPT and FINISH).
struct Open {
    writer: fstrm::Writer<BufWriter<Box<dyn std::io::Write + Send>>>,
    reader: Option<UnixStream>,
}

fn open_socket(path: &Path) -> std::io::Result<Open> {
    let stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = stream.try_clone()?;
    let out: Box<dyn std::io::Write + Send> = Box::new(stream);
    let writer = fstrm::Writer::bidirectional(BufWriter::new(out), &mut reader)?;
    Ok(Open {
        writer,
        reader: Some(reader),
    })
}

/// The writer thread: events in, frames out, until [`Msg::Stop`].
fn run(settings: &Settings, file: Option<std::fs::File>, rx: &Receiver<Msg>, stats: &Stats) {
    let mut log = Log {
        settings,
        stats,
        open: None,
        retry_at: std::time::Instant::now(),
        frame: Vec::with_capacity(1024),
    };
    if let Some(f) = file {
        let out: Box<dyn std::io::Write + Send> = Box::new(f);
        match fstrm::Writer::unidirectional(BufWriter::with_capacity(1 << 16, out)) {
            Ok(writer) => {
                log.open = Some(Open {
                    writer,
                    reader: None,
                })
            }
            Err(e) => tracing::error!("dnstap {}: {e}", settings.sink),
        }
    }
    loop {
        let first = match rx.recv_timeout(FLUSH_EVERY) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Msg::Stop),
        };
        log.connect();
        // Everything queued is written before one flush (at least one a second), so a reader
        // sees recent queries without a write per message.
        let started = std::time::Instant::now();
        let mut next = first;
        while let Some(msg) = next {
            match msg {
                Msg::Stop => return log.stop(),
                Msg::Event(event) => log.write(&event),
            }
            next = if started.elapsed() < FLUSH_EVERY {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        log.flush();
    }
}

/// The writer thread's state.
struct Log<'a> {
    settings: &'a Settings,
    stats: &'a Stats,
    open: Option<Open>,
    /// When a socket is tried again.
    retry_at: std::time::Instant,
    frame: Vec<u8>,
}

impl Log<'_> {
    /// Connects a socket sink that is not open, at most once a second.
    fn connect(&mut self) {
        let Sink::Unix(path) = &self.settings.sink else {
            return;
        };
        if self.open.is_some() || std::time::Instant::now() < self.retry_at {
            return;
        }
        match open_socket(path) {
            Ok(o) => {
                tracing::info!("dnstap: writing to {}", self.settings.sink);
                self.open = Some(o);
            }
            Err(e) => {
                tracing::debug!("dnstap {}: {e}; retrying in 1 s", self.settings.sink);
                self.retry_at = std::time::Instant::now() + Duration::from_secs(1);
            }
        }
    }

    fn write(&mut self, event: &Event) {
        let Some(o) = self.open.as_mut() else {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        for message in messages(self.settings, event) {
            self.frame.clear();
            message
                .encode(&mut self.frame)
                .expect("a Vec grows to fit the message");
            if let Err(e) = o.writer.frame(&self.frame) {
                return self.failed(&e);
            }
            self.stats.written[event.path as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&mut self) {
        if let Some(o) = self.open.as_mut()
            && let Err(e) = o.writer.flush()
        {
            self.failed(&e);
        }
    }

    /// A write failed: the stream is closed (a socket is tried again in a second).
    fn failed(&mut self, e: &std::io::Error) {
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("dnstap {}: {e}", self.settings.sink);
        self.open = None;
        self.retry_at = std::time::Instant::now() + Duration::from_secs(1);
    }

    fn stop(&mut self) {
        if let Some(mut o) = self.open.take()
            && let Err(e) = o.writer.stop(o.reader.as_mut())
        {
            tracing::warn!("dnstap {}: ending the stream: {e}", self.settings.sink);
        }
    }
}

/// The dnstap messages of one event: AUTH_QUERY and AUTH_RESPONSE, as configured.
pub fn messages(settings: &Settings, event: &Event) -> Vec<proto::Dnstap> {
    let (family, client_ip, server_ip) = match (event.client, event.server) {
        (SocketAddr::V4(c), SocketAddr::V4(s)) => (
            proto::INET,
            c.ip().octets().to_vec(),
            s.ip().octets().to_vec(),
        ),
        (c, s) => {
            let v6 = |a: SocketAddr| match a {
                SocketAddr::V4(v4) => v4.ip().to_ipv6_mapped().octets().to_vec(),
                SocketAddr::V6(v6) => v6.ip().octets().to_vec(),
            };
            (proto::INET6, v6(c), v6(s))
        }
    };
    let time = |t: SystemTime| {
        let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        (d.as_secs(), d.subsec_nanos())
    };
    let (qs, qn) = time(event.query_time);
    let base = proto::Message {
        r#type: 0,
        socket_family: Some(family),
        socket_protocol: Some(match event.protocol {
            Protocol::Udp => proto::UDP,
            Protocol::Tcp => proto::TCP,
        }),
        query_address: Some(client_ip),
        response_address: Some(server_ip),
        query_port: Some(u32::from(event.client.port())),
        response_port: Some(u32::from(event.server.port())),
        query_time_sec: Some(qs),
        query_time_nsec: Some(qn),
        ..Default::default()
    };
    let wrap = |message: proto::Message| proto::Dnstap {
        identity: Some(settings.identity.as_bytes().to_vec()),
        version: Some(
            concat!("dns-user ", env!("CARGO_PKG_VERSION"))
                .as_bytes()
                .to_vec(),
        ),
        message: Some(message),
        r#type: proto::DNSTAP_TYPE_MESSAGE,
    };
    let mut out = Vec::with_capacity(2);
    if settings.queries {
        out.push(wrap(proto::Message {
            r#type: proto::AUTH_QUERY,
            query_message: (!event.query.is_empty()).then(|| event.query.clone()),
            ..base.clone()
        }));
    }
    if settings.responses
        && let Some((at, response)) = &event.response
    {
        let (rs, rn) = time(*at);
        out.push(wrap(proto::Message {
            r#type: proto::AUTH_RESPONSE,
            response_time_sec: Some(rs),
            response_time_nsec: Some(rn),
            response_message: (!response.is_empty()).then(|| response.clone()),
            ..base
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(path: &Path) -> Settings {
        Settings {
            sink: Sink::File(path.to_path_buf()),
            identity: "ns-test".into(),
            queries: true,
            responses: true,
            xdp_sample: 0,
        }
    }

    fn event() -> Event {
        Event {
            path: AnswerPath::Userspace,
            protocol: Protocol::Udp,
            client: "192.0.2.2:4000".parse().unwrap(),
            server: "192.0.2.1:53".parse().unwrap(),
            query_time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            query: vec![1, 2, 3],
            response: Some((SystemTime::now(), vec![4, 5])),
        }
    }

    #[test]
    fn a_log_already_there_becomes_old_and_a_new_one_starts() {
        let dir = std::env::temp_dir().join(format!("dnstap-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("q.dnstap");
        let (tap, writer) = start(settings(&path)).unwrap();
        tap.log(event());
        writer.stop();
        let first = std::fs::read(&path).unwrap();
        assert!(first.len() > 60, "START, two messages, STOP");
        assert_eq!(
            tap.stats.written[AnswerPath::Userspace as usize].load(Ordering::Relaxed),
            2
        );
        // The next start keeps it as .old.
        let (_tap, writer) = start(settings(&path)).unwrap();
        writer.stop();
        assert_eq!(std::fs::read(dir.join("q.dnstap.old")).unwrap(), first);
        let second = std::fs::read(&path).unwrap();
        assert!(second.len() < first.len() && second.starts_with(&[0, 0, 0, 0]));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn messages_carry_both_ends_and_follow_the_settings() {
        let mut s = settings(Path::new("/unused"));
        let both = messages(&s, &event());
        assert_eq!(both.len(), 2);
        let q = both[0].message.as_ref().unwrap();
        assert_eq!(q.r#type, proto::AUTH_QUERY);
        assert_eq!(q.query_address.as_deref(), Some(&[192, 0, 2, 2][..]));
        assert_eq!((q.query_port, q.response_port), (Some(4000), Some(53)));
        assert_eq!(q.query_time_sec, Some(1_800_000_000));
        let r = both[1].message.as_ref().unwrap();
        assert_eq!(r.r#type, proto::AUTH_RESPONSE);
        assert_eq!(r.response_message.as_deref(), Some(&[4, 5][..]));
        s.queries = false;
        assert_eq!(messages(&s, &event()).len(), 1);
        let mut v6 = event();
        v6.client = "[2001:db8::2]:4000".parse().unwrap();
        let m = messages(&s, &v6);
        let r = m[0].message.as_ref().unwrap();
        assert_eq!(r.socket_family, Some(proto::INET6));
        assert_eq!(
            r.response_address.as_ref().unwrap().len(),
            16,
            "the v4 server mapped"
        );
    }
}
