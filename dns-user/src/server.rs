//! The userspace authoritative server: UDP and TCP (RFC 7766 framing) on the configured
//! addresses, every query answered by [`crate::answer::respond`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::answer::{AnswerOptions, Transport, respond};
use crate::publish::Published;

/// Largest DNS message over UDP we read.
const MAX_UDP_MESSAGE: usize = 65_535;

/// Server errors.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {proto} {addr}: {source}")]
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

    /// (transport, rcode, count) for every non-zero counter.
    pub fn responses(&self) -> Vec<(&'static str, u8, u64)> {
        let mut out = Vec::new();
        for (t, name) in [(0, "udp"), (1, "tcp")] {
            for rcode in 0..16u8 {
                let n = self.responses[t][usize::from(rcode)].load(Ordering::Relaxed);
                if n > 0 {
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
    /// Response rate limiting of UDP responses; `None` = off.
    pub limiter: Option<crate::rrl::Limiter>,
    /// Client networks allowed zone transfers over TCP.
    pub transfer_allow: Vec<ipnet::IpNet>,
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
    let mut udp = Vec::new();
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
            udp.push(make(Type::DGRAM, Protocol::UDP, "UDP", udp_workers > 1)?.into());
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

/// Serves every bound socket: a thread per UDP socket, a task per TCP listener. Returns only
/// if every TCP listener stopped.
pub async fn serve(listeners: Listeners, shared: Arc<Shared>) {
    for (i, socket) in listeners.udp.into_iter().enumerate() {
        let shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("dns-udp-{i}"))
            .spawn(move || serve_udp(&socket, &shared));
        if let Err(e) = spawned {
            tracing::error!("starting UDP worker {i}: {e}");
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners.tcp {
        tasks.spawn(serve_tcp(listener, shared.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

/// One UDP worker: a blocking receive, answer, send loop (no executor on the hot path).
fn serve_udp(socket: &std::net::UdpSocket, shared: &Shared) {
    let mut buf = vec![0u8; MAX_UDP_MESSAGE];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("udp recv: {e}");
                continue;
            }
        };
        let response = respond(
            &shared.published.catalog.load(),
            &shared.published.health.load(),
            &shared.options,
            &buf[..len],
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
        if let Some(r) = response
            && let Err(e) = socket.send_to(&r, peer)
        {
            tracing::debug!("udp send to {peer}: {e}");
        }
    }
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("tcp accept: {e}");
                continue;
            }
        };
        let Ok(permit) = shared.tcp_slots.clone().try_acquire_owned() else {
            tracing::debug!("tcp connection from {peer} refused: connection limit reached");
            continue; // dropping the stream closes it
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = serve_tcp_connection(stream, peer.ip(), &shared).await {
                tracing::debug!("tcp {peer}: {e}");
            }
        });
    }
}

/// RFC 1035 section 4.2.2 framing; queries are answered in order until EOF or idle timeout.
async fn serve_tcp_connection(
    mut stream: TcpStream,
    peer: std::net::IpAddr,
    shared: &Shared,
) -> std::io::Result<()> {
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
        if let Some(stream_of) = crate::transfer::respond(
            &shared.published.catalog.load(),
            &message,
            peer,
            &shared.transfer_allow,
        ) {
            for r in stream_of {
                shared.stats.record(Transport::Tcp, Some(&r));
                let mut framed = Vec::with_capacity(r.len() + 2);
                framed.extend_from_slice(&(r.len() as u16).to_be_bytes());
                framed.extend_from_slice(&r);
                stream.write_all(&framed).await?;
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
        let Some(r) = response else { continue };
        let mut framed = Vec::with_capacity(r.len() + 2);
        framed.extend_from_slice(&(r.len() as u16).to_be_bytes());
        framed.extend_from_slice(&r);
        stream.write_all(&framed).await?;
    }
}
