//! The XDP side of dnstap: the answers the program samples (one in `dnstap.xdp_sample`) are
//! read from its TAP ring buffer and logged like the userspace server's, with the kernel's
//! CLOCK_MONOTONIC timestamp turned into wall-clock time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use aya::Ebpf;
use aya::maps::{MapData, RingBuf};
use dns_common::{TAP_MAP, TapRecord};
use tokio::io::unix::AsyncFd;

use crate::dnstap::{AnswerPath, Event, Protocol, Tap};

/// How often the ring is drained when the program has not woken the reader.
pub const DRAIN_EVERY: Duration = Duration::from_millis(100);

/// The TAP ring buffer, taken out of a loaded object.
pub struct TapReader {
    ring: RingBuf<MapData>,
}

impl TapReader {
    pub fn take(ebpf: &mut Ebpf) -> anyhow::Result<TapReader> {
        let map = ebpf
            .take_map(TAP_MAP)
            .ok_or_else(|| anyhow::anyhow!("the eBPF object has no map {TAP_MAP}"))?;
        Ok(TapReader {
            ring: RingBuf::try_from(map)?,
        })
    }

    /// Logs every record the program submits, until the task is dropped. The program wakes
    /// this reader only when a quarter of the ring waits; otherwise it drains the ring every
    /// [`DRAIN_EVERY`].
    pub async fn run(self, tap: Tap) -> anyhow::Result<()> {
        // SAFETY: the ring owns its map's file descriptor, which stays open and the same for
        // as long as the ring lives, and the AsyncFd owns the ring.
        let mut fd =
            unsafe { AsyncFd::register_with_interest(self.ring, tokio::io::Interest::READABLE) }
                .map_err(|e| anyhow::anyhow!("watching the TAP ring buffer: {e}"))?;
        let mut tick = tokio::time::interval(DRAIN_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let woken = tokio::select! {
                guard = fd.readable_mut() => Some(guard?),
                _ = tick.tick() => None,
            };
            let clock = Clock::now();
            let drain = |ring: &mut RingBuf<MapData>| {
                while let Some(item) = ring.next() {
                    match record(&item) {
                        Some(rec) => tap.log(event(&rec, clock)),
                        None => tracing::warn!("dnstap: a TAP record of {} bytes", item.len()),
                    }
                }
            };
            match woken {
                Some(mut guard) => {
                    drain(guard.get_inner_mut());
                    guard.clear_ready();
                }
                None => drain(fd.get_mut()),
            }
        }
    }
}

/// A record's bytes as a [`TapRecord`], if they are one.
fn record(bytes: &[u8]) -> Option<TapRecord> {
    (bytes.len() >= size_of::<TapRecord>())
        // SAFETY: the length is checked; TapRecord is plain data, valid for any bytes.
        .then(|| unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<TapRecord>()) })
}

/// CLOCK_MONOTONIC and the wall clock read together, to place kernel timestamps.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub monotonic_ns: u64,
    pub wall: SystemTime,
}

impl Clock {
    pub fn now() -> Clock {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec it is given.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        Clock {
            monotonic_ns: ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64,
            wall: SystemTime::now(),
        }
    }

    /// The wall-clock time of a CLOCK_MONOTONIC timestamp.
    pub fn wall_time(&self, monotonic_ns: u64) -> SystemTime {
        self.wall - Duration::from_nanos(self.monotonic_ns.saturating_sub(monotonic_ns))
    }
}

/// The dnstap event of one XDP record (pure).
pub fn event(rec: &TapRecord, clock: Clock) -> Event {
    let ip = |bytes: [u8; 16]| -> IpAddr {
        if rec.family == 4 {
            IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
        } else {
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
    };
    let at = clock.wall_time(rec.time_ns);
    let message = |bytes: &[u8], len: u16| bytes[..usize::from(len).min(bytes.len())].to_vec();
    Event {
        path: AnswerPath::Xdp,
        protocol: Protocol::Udp,
        client: SocketAddr::new(ip(rec.client), rec.client_port),
        server: SocketAddr::new(ip(rec.server), rec.server_port),
        query_time: at,
        query: message(&rec.query, rec.query_len),
        // XDP answers in the same pass: sent when read.
        response: Some((at, message(&rec.response, rec.response_len))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_become_events_in_wall_time() {
        let mut rec: TapRecord = unsafe { std::mem::zeroed() };
        rec.family = 4;
        rec.client[..4].copy_from_slice(&[192, 0, 2, 2]);
        rec.server[..4].copy_from_slice(&[192, 0, 2, 1]);
        rec.client_port = 40000;
        rec.server_port = 53;
        rec.query[..3].copy_from_slice(b"abc");
        rec.query_len = 3;
        rec.response_len = 0;
        rec.time_ns = 1_000;
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let clock = Clock {
            monotonic_ns: 1_000 + 2_000_000_000,
            wall,
        };
        let e = event(&rec, clock);
        assert_eq!(e.client, "192.0.2.2:40000".parse().unwrap());
        assert_eq!(e.server, "192.0.2.1:53".parse().unwrap());
        assert_eq!(e.query, b"abc");
        assert_eq!(e.query_time, wall - Duration::from_secs(2));
        assert_eq!(e.response.unwrap().1, b"");
        rec.family = 6;
        rec.client = "2001:db8::2".parse::<Ipv6Addr>().unwrap().octets();
        rec.query_len = 5000; // never past the buffer
        let e = event(&rec, clock);
        assert_eq!(e.client.ip(), "2001:db8::2".parse::<IpAddr>().unwrap());
        assert_eq!(e.query.len(), rec.query.len());
    }
}
