//! A malformed-packet storm in the namespaces: random bytes, truncated and mutated queries,
//! responses (QR=1) and oversized garbage at the served port, as fast as one sender can for a
//! bounded time, while a client keeps asking valid questions (A, answered by XDP; TXT, by the
//! userspace server). The daemon stays up, its memory stays flat, and the valid queries keep
//! being answered (the shares are printed).
//!
//! Needs root; never skips.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dns_tests::{SERVER_V4, Side, Testbed};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

const BIN: &str = env!("CARGO_BIN_EXE_dns-user-under-test");
const ZONE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/example.com.zone");
/// How long the storm lasts, and the most packets it sends.
const STORM: Duration = Duration::from_secs(3);
const MAX_PACKETS: u64 = 2_000_000;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// One storm packet: a mix of noise and near-valid DNS.
fn storm_packet(i: u64, valid: &[u8]) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    match i % 6 {
        // Random bytes of random length.
        0 => (0..next() % 512).map(|_| next() as u8).collect(),
        // A valid query cut short.
        1 => valid[..(next() as usize % valid.len())].to_vec(),
        // A valid query with random bytes overwritten.
        2 => {
            let mut p = valid.to_vec();
            for _ in 0..4 {
                let at = next() as usize % p.len();
                p[at] = next() as u8;
            }
            p
        }
        // A response (QR=1): must never be answered.
        3 => {
            let mut p = valid.to_vec();
            p[2] |= 0x80;
            p
        }
        // Oversized garbage.
        4 => (0..1400).map(|_| next() as u8).collect(),
        // A header only.
        _ => valid[..12].to_vec(),
    }
}

#[test]
fn a_malformed_packet_storm_leaves_the_daemon_up_and_answering() {
    let mut bed = Testbed::create("dnsst").unwrap();
    let zone_arg = format!("example.com.={ZONE}");
    let daemon = bed
        .start_service(BIN, "native", &["--zone-file", &zone_arg], false)
        .unwrap();
    let valid = dns_user::server::answer::build_query(
        7,
        &Name::from_ascii("www.example.com.").unwrap(),
        RecordType::A,
        None,
    );
    // Warm up, then take the memory baseline.
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = rss_kib(daemon.pid);

    // Two storms from the same sockets (so the same server worker threads take them): memory
    // may grow once while buffers and allocator arenas warm up, then must stay flat.
    let sockets = bed
        .run_in(Side::Client, || {
            let storm = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            storm.set_nonblocking(true).unwrap();
            let client = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            client.connect((SERVER_V4, 53)).unwrap();
            client
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            Sockets { storm, client }
        })
        .unwrap();
    let mut rss = vec![rss_before];
    for round in 1..=2 {
        let (sent, xdp_share, user_share) = storm_round(&bed, &sockets, &valid);
        std::thread::sleep(Duration::from_millis(500));
        rss.push(rss_kib(daemon.pid));
        eprintln!(
            "storm {round}: {sent} packets in {STORM:?}; valid queries answered: {:.1}% (XDP), {:.1}% (userspace); RSS {} -> {} KiB",
            xdp_share * 100.0,
            user_share * 100.0,
            rss[round - 1],
            rss[round]
        );
        assert!(bed.exited(daemon.pid).is_none(), "the daemon died");
        assert!(sent > 10_000, "the storm ran: {sent}");
        assert!(xdp_share > 0.99, "XDP-answered share {xdp_share:.3}");
        assert!(user_share > 0.5, "userspace-answered share {user_share:.3}");
    }
    assert!(rss[1] < rss[0] + 20 * 1024, "memory grew: {rss:?} KiB");
    assert!(
        rss[2] < rss[1] + 2 * 1024,
        "memory kept growing: {rss:?} KiB"
    );
    // Still answering normally afterwards, on both paths.
    let out = bed
        .output(
            Side::Client,
            "dig",
            &[
                &format!("@{SERVER_V4}"),
                "+short",
                "+tries=1",
                "+time=2",
                "example.com",
                "TXT",
            ],
        )
        .unwrap();
    assert!(out.contains("v=spf1"), "{out}");
}

/// The storm's and the valid client's sockets (created in the client namespace).
struct Sockets {
    storm: std::net::UdpSocket,
    client: std::net::UdpSocket,
}

/// One bounded storm with the valid client beside it: (packets sent, XDP share, userspace
/// share of the valid queries answered).
fn storm_round(bed: &Testbed, sockets: &Sockets, valid: &[u8]) -> (u64, f64, f64) {
    let valid = valid.to_vec();
    let storming = Arc::new(AtomicBool::new(true));
    let bed_ref = bed;
    let (sent, (xdp_share, user_share)) = std::thread::scope(|scope| {
        let flag = storming.clone();
        let valid = valid.clone();
        let storm = scope.spawn(move || {
            bed_ref
                .run_in(Side::Client, move || {
                    let socket = &sockets.storm;
                    let start = Instant::now();
                    let mut sent = 0u64;
                    while start.elapsed() < STORM && sent < MAX_PACKETS {
                        let p = storm_packet(sent, &valid);
                        let _ = socket.send_to(&p, (SERVER_V4, 53));
                        sent += 1;
                    }
                    flag.store(false, Ordering::Relaxed);
                    sent
                })
                .unwrap()
        });
        // The valid client, while the storm lasts.
        let shares = bed_ref
            .run_in(Side::Client, || {
                let socket = &sockets.client;
                let mut asked = [0u32; 2];
                let mut answered = [0u32; 2];
                let mut buf = [0u8; 1500];
                let mut id: u16 = 1000;
                while storming.load(Ordering::Relaxed) {
                    for (k, (name, qtype)) in [
                        ("www.example.com.", RecordType::A),
                        ("example.com.", RecordType::TXT),
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        id = id.wrapping_add(1);
                        let q = dns_user::server::answer::build_query(
                            id,
                            &Name::from_ascii(name).unwrap(),
                            qtype,
                            None,
                        );
                        let _ = socket.send(&q);
                        asked[k] += 1;
                        while let Ok(n) = socket.recv(&mut buf) {
                            let Ok(m) = Message::from_vec(&buf[..n]) else {
                                continue;
                            };
                            if m.metadata.id == id {
                                if m.metadata.response_code == ResponseCode::NoError
                                    && !m.answers.is_empty()
                                {
                                    answered[k] += 1;
                                }
                                break;
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                (
                    f64::from(answered[0]) / f64::from(asked[0].max(1)),
                    f64::from(answered[1]) / f64::from(asked[1].max(1)),
                )
            })
            .unwrap();
        (storm.join().unwrap(), shares)
    });
    (sent, xdp_share, user_share)
}
