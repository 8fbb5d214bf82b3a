//! The userspace authoritative server: UDP and TCP (RFC 7766 framing) on the configured
//! addresses, every query answered by [`crate::server::answer::respond`].
//!
//! A TCP connection is held only while it makes progress both ways: a query must arrive, and
//! each response must be written, within the idle timeout, so a client that pipelines queries
//! and never reads its responses is dropped like one that sends nothing. Connections are capped
//! in all and per client (an IPv4 address, an IPv6 /64); `accept` errors are backed off and
//! logged at warn.

pub mod answer;
pub mod dnssec;
pub mod notify;
pub mod sign;
pub mod transfer;
pub mod tsig;

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::publish::Published;
use crate::server::answer::{AnswerOptions, Transport, respond};

/// Largest DNS message over UDP we read.
const MAX_UDP_MESSAGE: usize = 65_535;

/// Server errors.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    // The I/O error is the source: printed once, by the error chain.
    #[error("cannot listen on {proto} {addr}")]
    Bind {
        proto: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Userspace query counters (summed into the metrics).
#[derive(Debug, Default)]
pub struct ServerStats {
    /// [transport][rcode & 0xf]
    responses: [[AtomicU64; 16]; 2],
    /// Inputs that got no response (responses, runts).
    dropped: AtomicU64,
}

impl ServerStats {
    fn record(&self, transport: Transport, response: Option<&[u8]>) {
        match response {
            Some(r) if r.len() >= 4 => {
                let t = usize::from(transport == Transport::Tcp);
                self.responses[t][usize::from(r[3] & 0xf)].fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// (transport, rcode, count) for every non-zero counter, and NOERROR on both transports
    /// always (a series that exists from the start, so that rates over it are never missing).
    pub fn responses(&self) -> Vec<(&'static str, u8, u64)> {
        let mut out = Vec::new();
        for (t, name) in [(0, "udp"), (1, "tcp")] {
            for rcode in 0..16u8 {
                let n = self.responses[t][usize::from(rcode)].load(Ordering::Relaxed);
                if n > 0 || rcode == 0 {
                    out.push((name, rcode, n));
                }
            }
        }
        out
    }

    /// Inputs that got no response.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// What every connection handler shares.
pub struct Shared {
    /// The zones and health state served (replaced on reload and on health changes).
    pub published: Arc<Published>,
    pub options: AnswerOptions,
    pub stats: Arc<ServerStats>,
    pub tcp_idle: Duration,
    pub tcp_slots: Arc<Semaphore>,
    /// The number of `tcp_slots`.
    pub tcp_max: usize,
    /// Open TCP connections per client.
    pub tcp_clients: Arc<ClientSlots>,
    /// Response rate limiting of UDP responses; `None` = off.
    pub limiter: Option<crate::rrl::Limiter>,
    /// Client networks allowed zone transfers over TCP.
    pub transfer: crate::server::transfer::TransferAcl,
    /// Query logs; `None` = off.
    pub tap: Option<crate::dnstap::Tap>,
}

impl Shared {
    /// Logs a query and its response to dnstap, if on.
    fn log(
        &self,
        protocol: crate::dnstap::Protocol,
        (client, server): (SocketAddr, SocketAddr),
        query_time: Option<std::time::SystemTime>,
        query: &[u8],
        response: Option<&[u8]>,
    ) {
        if let (Some(tap), Some(query_time)) = (&self.tap, query_time) {
            tap.log(crate::dnstap::Event {
                path: crate::dnstap::AnswerPath::Userspace,
                protocol,
                client,
                server,
                query_time,
                query: query.to_vec(),
                response: response.map(|r| (std::time::SystemTime::now(), r.to_vec())),
            });
        }
    }

    /// The time a query arrived, when it will be logged.
    fn query_time(&self) -> Option<std::time::SystemTime> {
        self.tap.as_ref().map(|_| std::time::SystemTime::now())
    }
}

/// Bound sockets, ready to serve.
pub struct Listeners {
    /// `udp_workers` sockets per address, sharing it through SO_REUSEPORT.
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<TcpListener>,
}

/// Binds UDP (`udp_workers` SO_REUSEPORT sockets per address, so the kernel spreads queries
/// over them) and TCP on every address. IPv6 sockets are v6-only, so `0.0.0.0` and `[::]` can
/// both be listed.
pub fn bind(addrs: &[SocketAddr], udp_workers: usize) -> Result<Listeners, ServerError> {
    let mut udp: Vec<std::net::UdpSocket> = Vec::new();
    let mut tcp = Vec::new();
    for &addr in addrs {
        let make = |ty: Type, proto: Protocol, name: &'static str, reuse_port: bool| {
            let err = |source| ServerError::Bind {
                proto: name,
                addr,
                source,
            };
            let socket = Socket::new(Domain::for_address(addr), ty, Some(proto)).map_err(err)?;
            if addr.is_ipv6() {
                socket.set_only_v6(true).map_err(err)?;
            }
            socket.set_reuse_address(true).map_err(err)?;
            socket.set_reuse_port(reuse_port).map_err(err)?;
            socket.bind(&addr.into()).map_err(err)?;
            Ok::<_, ServerError>(socket)
        };
        for _ in 0..udp_workers.max(1) {
            let socket = make(Type::DGRAM, Protocol::UDP, "UDP", udp_workers > 1)?;
            socket
                .set_read_timeout(Some(UDP_WAKE))
                .map_err(|source| ServerError::Bind {
                    proto: "UDP",
                    addr,
                    source,
                })?;
            udp.push(socket.into());
        }
        let t = make(Type::STREAM, Protocol::TCP, "TCP", false)?;
        let listening = t.listen(1024).and_then(|()| t.set_nonblocking(true));
        listening.map_err(|source| ServerError::Bind {
            proto: "TCP",
            addr,
            source,
        })?;
        tcp.push(
            TcpListener::from_std(t.into()).map_err(|source| ServerError::Bind {
                proto: "TCP",
                addr,
                source,
            })?,
        );
    }
    Ok(Listeners { udp, tcp })
}

/// How often a UDP worker with nothing to read looks whether it should stop (the sockets'
/// receive timeout).
const UDP_WAKE: Duration = Duration::from_millis(250);

impl Listeners {
    /// Copies of the sockets' descriptors (UDP, TCP), to hand to a new daemon (takeover).
    pub fn descriptors(&self) -> std::io::Result<(Vec<OwnedFd>, Vec<OwnedFd>)> {
        let udp = self
            .udp
            .iter()
            .map(|s| s.as_fd().try_clone_to_owned())
            .collect::<Result<_, _>>()?;
        let tcp = self
            .tcp
            .iter()
            .map(|s| s.as_fd().try_clone_to_owned())
            .collect::<Result<_, _>>()?;
        Ok((udp, tcp))
    }

    /// Sockets a running daemon handed over (bound, the TCP ones listening); in a runtime.
    pub fn from_descriptors(udp: Vec<OwnedFd>, tcp: Vec<OwnedFd>) -> std::io::Result<Listeners> {
        let udp: Vec<std::net::UdpSocket> = udp.into_iter().map(Into::into).collect();
        for socket in &udp {
            socket.set_read_timeout(Some(UDP_WAKE))?;
        }
        let tcp = tcp
            .into_iter()
            .map(tcp_listener)
            .collect::<Result<_, _>>()?;
        Ok(Listeners { udp, tcp })
    }
}

/// A listening TCP socket another process handed over, for this runtime.
pub fn tcp_listener(fd: OwnedFd) -> std::io::Result<TcpListener> {
    let listener = std::net::TcpListener::from(fd);
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

/// Tells a running server to stop: UDP workers finish the query in hand and return, TCP
/// listeners stop accepting and open connections are served to their end (a handover: the
/// sockets live on in the daemon that took them over).
#[derive(Clone)]
pub struct Stopper {
    flag: Arc<AtomicBool>,
    tx: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for Stopper {
    fn default() -> Self {
        Self {
            flag: Arc::new(AtomicBool::new(false)),
            tx: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }
}

impl Stopper {
    pub fn stop(&self) {
        self.flag.store(true, Ordering::Relaxed);
        self.tx.send_replace(true);
    }

    fn stopped(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

/// Serves every bound socket: a thread per UDP socket, a task per TCP listener, until
/// `stop`; then returns once every UDP worker has returned and every open TCP connection has
/// ended (at most the idle timeout later).
pub async fn serve(listeners: Listeners, shared: Arc<Shared>, stop: Stopper) {
    let mut workers = Vec::new();
    for (i, socket) in listeners.udp.into_iter().enumerate() {
        let shared = shared.clone();
        let stop = stop.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("dns-udp-{i}"))
            .spawn(move || serve_udp(&socket, &shared, &stop));
        match spawned {
            Ok(handle) => workers.push(handle),
            Err(e) => tracing::error!("starting UDP worker {i}: {e}"),
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners.tcp {
        tasks.spawn(serve_tcp(listener, shared.clone(), stop.tx.subscribe()));
    }
    while tasks.join_next().await.is_some() {}
    // Stopped: the connections still open keep their slots until they end.
    let all = u32::try_from(shared.tcp_max).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(
        shared.tcp_idle + Duration::from_secs(1),
        shared.tcp_slots.acquire_many(all),
    );
    let _ = drained.await;
    let _ = tokio::task::spawn_blocking(move || {
        for w in workers {
            let _ = w.join();
        }
    })
    .await;
}

/// Datagrams one UDP worker reads (recvmmsg) and answers (sendmmsg) per system call pair.
const UDP_BATCH: usize = 32;

/// One UDP worker: a blocking receive, answer, send loop (no executor on the hot path), a
/// batch of datagrams per system call when more than one is waiting.
fn serve_udp(socket: &std::net::UdpSocket, shared: &Shared, stop: &Stopper) {
    use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage};
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;

    let fd = socket.as_raw_fd();
    let mut bufs = vec![vec![0u8; MAX_UDP_MESSAGE]; UDP_BATCH];
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(UDP_BATCH, None);
    let mut out = MultiHeaders::<SockaddrStorage>::preallocate(UDP_BATCH, None);
    let local = socket
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    // A query read is always answered before the flag is looked at again: a worker that
    // stops leaves nothing half done (the socket may live on in another daemon).
    while !stop.stopped() {
        // Blocks for the first datagram (up to the socket's receive timeout), then takes what
        // else is waiting, without waiting more.
        let received: Vec<(usize, Option<SocketAddr>)> = {
            let mut slices: Vec<[IoSliceMut<'_>; 1]> =
                bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
            match nix::sys::socket::recvmmsg(
                fd,
                &mut headers,
                slices.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(messages) => messages
                    .map(|m| (m.bytes, m.address.and_then(|a| socket_addr(&a))))
                    .collect(),
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::debug!("udp recvmmsg: {e}");
                    continue;
                }
            }
        };
        let mut replies: Vec<(Vec<u8>, SocketAddr)> = Vec::with_capacity(received.len());
        for (buf, (len, peer)) in bufs.iter().zip(&received) {
            let Some(peer) = *peer else { continue };
            let query = &buf[..*len];
            if let Some(reply) = answer_udp(shared, query, peer, local) {
                replies.push((reply, peer));
            }
        }
        send_all(socket, &mut out, &replies);
    }
}

/// One datagram's answer (rate-limited), counted and logged.
fn answer_udp(
    shared: &Shared,
    query: &[u8],
    peer: SocketAddr,
    local: SocketAddr,
) -> Option<Vec<u8>> {
    let query_time = shared.query_time();
    let response = respond(
        &shared.published.catalog.load(),
        &shared.published.health.load(),
        &shared.options,
        query,
        Transport::Udp,
        peer.ip(),
    );
    shared.stats.record(Transport::Udp, response.as_deref());
    let response = match (&shared.limiter, response) {
        (Some(limiter), Some(r)) => match limiter.check(peer.ip()) {
            crate::rrl::Decision::Send => Some(r),
            crate::rrl::Decision::Slip => crate::rrl::truncate(&r),
            crate::rrl::Decision::Drop => None,
        },
        (_, r) => r,
    };
    shared.log(
        crate::dnstap::Protocol::Udp,
        (peer, local),
        query_time,
        query,
        response.as_deref(),
    );
    response
}

/// Sends `replies` with as few sendmmsg calls as the kernel takes; a datagram it refuses is
/// sent on its own (and its error logged), and the rest go on.
fn send_all(
    socket: &std::net::UdpSocket,
    headers: &mut nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
    replies: &[(Vec<u8>, SocketAddr)],
) {
    use nix::sys::socket::{MsgFlags, SockaddrStorage};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;

    let mut at = 0;
    while at < replies.len() {
        let rest = &replies[at..];
        let slices: Vec<[IoSlice<'_>; 1]> = rest.iter().map(|(r, _)| [IoSlice::new(r)]).collect();
        let addrs: Vec<Option<SockaddrStorage>> = rest
            .iter()
            .map(|(_, peer)| Some(SockaddrStorage::from(*peer)))
            .collect();
        let sent = nix::sys::socket::sendmmsg(
            socket.as_raw_fd(),
            headers,
            &slices,
            &addrs,
            [],
            MsgFlags::empty(),
        )
        .map(|results| results.count())
        .unwrap_or(0);
        at += sent;
        if sent == 0 {
            // The first one failed: alone, to say why, then the next.
            let (reply, peer) = &replies[at];
            if let Err(e) = socket.send_to(reply, peer) {
                tracing::debug!("udp send to {peer}: {e}");
            }
            at += 1;
        }
    }
}

/// A received datagram's source as a std address.
fn socket_addr(addr: &nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    match (addr.as_sockaddr_in(), addr.as_sockaddr_in6()) {
        (Some(v4), _) => Some(std::net::SocketAddrV4::from(*v4).into()),
        (_, Some(v6)) => Some(std::net::SocketAddrV6::from(*v6).into()),
        _ => None,
    }
}

/// Open connections per client, capped.
#[derive(Debug)]
pub struct ClientSlots {
    max: usize,
    open: std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>,
}

/// A client's connection slot, given back when dropped.
pub struct ClientSlot {
    slots: Arc<ClientSlots>,
    client: IpAddr,
}

impl ClientSlots {
    pub fn new(max: usize) -> ClientSlots {
        ClientSlots {
            max,
            open: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The client a peer counts as: its IPv4 address, or its IPv6 /64.
    fn client(peer: IpAddr) -> IpAddr {
        match peer {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(std::net::Ipv6Addr::from_bits(
                    v6.to_bits() & !u128::from(u64::MAX),
                )),
            },
            v4 => v4,
        }
    }

    /// A slot for `peer`, unless its client has `max` connections open already.
    pub fn take(self: &Arc<Self>, peer: IpAddr) -> Option<ClientSlot> {
        let client = Self::client(peer);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(client).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            slots: self.clone(),
            client,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.client);
            }
        }
    }
}

/// Logs at warn at most once a second per site, counting what it held back.
pub struct WarnEvery {
    last: std::sync::Mutex<Option<std::time::Instant>>,
    held: AtomicU64,
}

impl WarnEvery {
    pub const fn new() -> WarnEvery {
        WarnEvery {
            last: std::sync::Mutex::new(None),
            held: AtomicU64::new(0),
        }
    }

    pub fn warn(&self, message: impl FnOnce() -> String) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            self.held.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(now);
        let held = self.held.swap(0, Ordering::Relaxed);
        if held > 0 {
            tracing::warn!("{} ({held} more like it in the last second)", message());
        } else {
            tracing::warn!("{}", message());
        }
    }
}

impl Default for WarnEvery {
    fn default() -> Self {
        Self::new()
    }
}

/// Accepts the next connection; on an error (out of file descriptors, say) waits a growing
/// while (10 ms to 1 s) instead of spinning, and says so at warn.
pub async fn accept(
    listener: &TcpListener,
    backoff: &mut Duration,
    warn: &WarnEvery,
) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => {
                *backoff = Duration::ZERO;
                return accepted;
            }
            Err(e) => {
                *backoff = (*backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                let wait = *backoff;
                warn.warn(|| {
                    format!(
                        "accept on {:?}: {e}; retrying in {wait:?}",
                        listener.local_addr().ok()
                    )
                });
                tokio::time::sleep(wait).await;
            }
        }
    }
}

async fn serve_tcp(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let (accept_warn, cap_warn) = (WarnEvery::new(), WarnEvery::new());
    let mut backoff = Duration::ZERO;
    loop {
        // Accepting is cancel-safe: a stop never drops an accepted connection.
        let (stream, peer) = tokio::select! {
            accepted = accept(&listener, &mut backoff, &accept_warn) => accepted,
            _ = stop.wait_for(|stopped| *stopped) => return,
        };
        let Ok(permit) = shared.tcp_slots.clone().try_acquire_owned() else {
            cap_warn
                .warn(|| format!("TCP connection from {peer} refused: connection limit reached"));
            continue; // dropping the stream closes it
        };
        let Some(client_slot) = shared.tcp_clients.take(peer.ip()) else {
            cap_warn
                .warn(|| format!("TCP connection from {peer} refused: per-client limit reached"));
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _slots = (permit, client_slot);
            if let Err(e) = serve_tcp_connection(stream, peer, &shared).await {
                tracing::debug!("tcp {peer}: {e}");
            }
        });
    }
}

/// Writes one framed response within the idle timeout (a client that does not read is
/// dropped).
async fn write_framed(
    stream: &mut TcpStream,
    response: &[u8],
    idle: Duration,
) -> std::io::Result<()> {
    let mut framed = Vec::with_capacity(response.len() + 2);
    framed.extend_from_slice(&(response.len() as u16).to_be_bytes());
    framed.extend_from_slice(response);
    tokio::time::timeout(idle, stream.write_all(&framed))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "client does not read"))?
}

/// RFC 1035 section 4.2.2 framing; queries are answered in order until EOF or idle timeout.
async fn serve_tcp_connection(
    mut stream: TcpStream,
    peer_address: SocketAddr,
    shared: &Shared,
) -> std::io::Result<()> {
    let peer = peer_address.ip();
    let ends = (peer_address, stream.local_addr()?);
    let tcp = crate::dnstap::Protocol::Tcp;
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(shared.tcp_idle, stream.read_exact(&mut len)).await {
            Err(_) => return Ok(()), // idle
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(r) => r?,
        };
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tokio::time::timeout(shared.tcp_idle, stream.read_exact(&mut message))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "message body"))??;
        let query_time = shared.query_time();
        if let Some(stream_of) = crate::server::transfer::respond(
            &shared.published.catalog.load(),
            &message,
            peer,
            &shared.transfer,
            &shared.options.tsig,
        ) {
            // A transfer is logged as its query and first message.
            for (i, r) in stream_of.into_iter().enumerate() {
                shared.stats.record(Transport::Tcp, Some(&r));
                write_framed(&mut stream, &r, shared.tcp_idle).await?;
                if i == 0 {
                    shared.log(tcp, ends, query_time, &message, Some(&r));
                }
            }
            continue;
        }
        let response = respond(
            &shared.published.catalog.load(),
            &shared.published.health.load(),
            &shared.options,
            &message,
            Transport::Tcp,
            peer,
        );
        shared.stats.record(Transport::Tcp, response.as_deref());
        if let Some(r) = &response {
            write_framed(&mut stream, r, shared.tcp_idle).await?;
        }
        shared.log(tcp, ends, query_time, &message, response.as_deref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_capped_by_address_and_ipv6_slash_64() {
        let slots = Arc::new(ClientSlots::new(2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let held = [slots.take(a).unwrap(), slots.take(a).unwrap()];
        assert!(slots.take(a).is_none());
        assert!(slots.take("::ffff:192.0.2.1".parse().unwrap()).is_none());
        assert!(slots.take("192.0.2.2".parse().unwrap()).is_some());
        drop(held);
        assert!(slots.take(a).is_some());
        let one = slots.take("2001:db8::1".parse().unwrap()).unwrap();
        let two = slots.take("2001:db8::ffff:2".parse().unwrap()).unwrap();
        assert!(slots.take("2001:db8::3".parse().unwrap()).is_none());
        assert!(slots.take("2001:db8:0:1::3".parse().unwrap()).is_some());
        drop((one, two));
        assert!(
            slots.open.lock().unwrap().is_empty(),
            "every slot was given back"
        );
    }
}
