//! Routing policies through the live XDP path, in network namespaces:
//!
//! - weighted shares and multivalue subsets, sampled by a client through the daemon's fast
//!   path, match the configured distribution (chi-square / per-record frequency);
//! - torn-free updates: the test itself attaches the program and rewrites a group's answers as
//!   fast as the map writer can while a client queries; every reply parses and is exactly one
//!   of the valid answers, and none is missing;
//! - the heartbeat fail-safe: a stopped (SIGSTOP) daemon's fast path goes transparent within
//!   its heartbeat timeout, and comes back when it runs again.
//! - process faults: a daemon killed with SIGKILL under load leaves no stale answers (its XDP
//!   link goes with it; the heartbeat bounds it anyway), and a restart serves within seconds.
//!
//! Needs root; never skips.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dns_common::{AnswerSet, PolicyRef, VariantKey};
use dns_tests::fixtures::ZONE_HEAD;
use dns_tests::{SERVER_V4, Side, Testbed, metric};
use dns_user::fastpath::compile::{Change, Delta, entry, render_records};
use dns_user::fastpath::maps::{HeartbeatWriter, MapWriter};
use dns_user::fastpath::xdp::{self, AttachMode, LoadOptions};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{LowerName, Name, RData, RecordType};

const BIN: &str = env!("CARGO_BIN_EXE_dns-user-under-test");
const ANSWERED: &str = "dns_xdp_packets_total{action=\"tx\",reason=\"answered\"}";

/// Record sets after [`ZONE_HEAD`].
const RECORDS: &str = r#"
[[zone.record]]
name = "w"
type = "A"
set_id = "blue"
weight = 70
ttl = 30
values = ["192.0.2.10"]

[[zone.record]]
name = "w"
type = "A"
set_id = "green"
weight = 20
ttl = 30
values = ["192.0.2.20"]

[[zone.record]]
name = "w"
type = "A"
set_id = "red"
weight = 10
ttl = 30
values = ["192.0.2.30"]
"#;

fn multivalue() -> String {
    (1..=12)
        .map(|i| {
            format!(
                "[[zone.record]]\nname = \"mv\"\ntype = \"A\"\nset_id = \"s{i}\"\nmultivalue = true\nttl = 60\nvalues = [\"198.18.0.{i}\"]\n\n"
            )
        })
        .collect()
}

/// Sends `count` A queries for `name` from the client namespace, one at a time; returns every
/// reply's sorted addresses (a missing or non-NOERROR reply is an error).
fn sample(bed: &Testbed, name: &str, count: usize) -> Result<Vec<Vec<Ipv4Addr>>, String> {
    let qname = Name::from_ascii(name).unwrap();
    bed.run_in(Side::Client, move || {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        socket.connect((SERVER_V4, 53)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut out = Vec::with_capacity(count);
        let mut buf = [0u8; 1500];
        for i in 0..count {
            let id = i as u16;
            socket
                .send(&dns_user::server::answer::build_query(
                    id,
                    &qname,
                    RecordType::A,
                    None,
                ))
                .unwrap();
            let n = socket
                .recv(&mut buf)
                .map_err(|e| format!("query {i}: no reply: {e}"))?;
            let m = Message::from_vec(&buf[..n]).map_err(|e| format!("query {i}: {e}"))?;
            if m.metadata.id != id || m.metadata.response_code != ResponseCode::NoError {
                return Err(format!("query {i}: {:?}", m.metadata));
            }
            out.push(dns_tests::a_addresses(&m));
        }
        Ok(out)
    })
    .unwrap()
}

fn answered_by_xdp(bed: &Testbed) -> u64 {
    metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap()
}

#[test]
fn weighted_shares_and_multivalue_subsets_through_the_fast_path() {
    let mut bed = Testbed::create("dnspw").unwrap();
    let dir = std::env::temp_dir().join(format!("dns-policies-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policies.toml");
    std::fs::write(&path, format!("{ZONE_HEAD}\n{RECORDS}\n{}", multivalue())).unwrap();
    let _daemon = bed
        .start_service(BIN, "native", &["--config", path.to_str().unwrap()], false)
        .unwrap();
    let xdp_before = answered_by_xdp(&bed);
    let udp_before = bed.snmp(Side::Server, "Udp", "InDatagrams").unwrap();

    // Weighted 70/20/10: chi-square with 2 degrees of freedom, p = 0.001 -> 13.8.
    const N: usize = 3000;
    let answers = sample(&bed, "w.example.com.", N).unwrap();
    let mut counts: BTreeMap<Ipv4Addr, usize> = BTreeMap::new();
    for a in &answers {
        assert_eq!(a.len(), 1, "one weighted set per answer: {a:?}");
        *counts.entry(a[0]).or_default() += 1;
    }
    let expected = [
        (Ipv4Addr::new(192, 0, 2, 10), 0.7),
        (Ipv4Addr::new(192, 0, 2, 20), 0.2),
        (Ipv4Addr::new(192, 0, 2, 30), 0.1),
    ];
    let chi2: f64 = expected
        .iter()
        .map(|(ip, p)| {
            let e = p * N as f64;
            let o = *counts.get(ip).unwrap_or(&0) as f64;
            (o - e) * (o - e) / e
        })
        .sum();
    assert!(
        chi2 < 13.8,
        "weighted shares off: {counts:?}, chi2 {chi2:.1}"
    );
    assert_eq!(counts.len(), 3, "{counts:?}");

    // Multivalue: up to 8 of the 12 healthy records, different subsets for different queries,
    // every record about 8/12 of the time.
    const M: usize = 1500;
    let answers = sample(&bed, "mv.example.com.", M).unwrap();
    let mut seen: BTreeMap<Ipv4Addr, usize> = BTreeMap::new();
    let mut subsets = BTreeSet::new();
    for a in &answers {
        assert_eq!(a.len(), 8, "8 of 12 healthy records: {a:?}");
        for ip in a {
            *seen.entry(*ip).or_default() += 1;
        }
        subsets.insert(a.clone());
    }
    assert_eq!(seen.len(), 12, "every record appears: {seen:?}");
    for (ip, n) in &seen {
        let share = *n as f64 / M as f64;
        assert!(
            (0.55..0.78).contains(&share),
            "{ip} in {share:.2} of the answers (expected 0.67)"
        );
    }
    assert!(subsets.len() >= 30, "{} distinct subsets", subsets.len());

    // All of it from XDP: the server's UDP layer saw none of these queries.
    assert_eq!(answered_by_xdp(&bed) - xdp_before, (N + M) as u64);
    assert_eq!(
        bed.snmp(Side::Server, "Udp", "InDatagrams").unwrap(),
        udp_before
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// One state of the group under test: `slots` variants, each answering with `records`
/// addresses 10.<state>.<slot>.<i>.
fn state(group: u32, state: u8, slots: u32, records: u8) -> Vec<(VariantKey, AnswerSet)> {
    (0..slots)
        .map(|slot| {
            let rdatas: Vec<RData> = (1..=records)
                .map(|i| RData::A(Ipv4Addr::new(10, state, slot as u8, i).into()))
                .collect();
            let value =
                render_records(RecordType::A, rdatas.iter().map(|r| (30, r))).expect("fits");
            (
                VariantKey {
                    group,
                    cell: 0,
                    slot,
                    _pad: 0,
                },
                value,
            )
        })
        .collect()
}

#[test]
fn concurrent_rewrites_never_show_a_reader_a_torn_or_mixed_answer() {
    let bed = Testbed::create("dnspc").unwrap();
    let mut ebpf = xdp::load(&LoadOptions {
        max_entries: 1024,
        ..Default::default()
    })
    .unwrap();
    let mut writer = MapWriter::new(&mut ebpf, 1024).unwrap();
    let server_if = bed.server_if.clone();
    bed.run_in(Side::Server, || {
        xdp::attach(&mut ebpf, &server_if, AttachMode::Skb)
    })
    .unwrap()
    .unwrap();

    // Two states of one group: A = 64 slots of 1 record, B = 32 slots of 3 records. A reader
    // mixing them (A's reference with B's variants) would find slots 32..63 missing (no reply)
    // or a record count that belongs to the other state.
    let name = LowerName::new(&Name::from_ascii("live.example.com.").unwrap());
    let group = 7;
    let reference = |slots| {
        entry(
            &name,
            RecordType::A,
            AnswerSet::policy(PolicyRef {
                group,
                slots,
                located: 0,
                aspect: 0,
            }),
        )
        .unwrap()
    };
    let a = state(group, 1, 64, 1);
    let b = state(group, 2, 32, 3);
    let to = |from: &[(VariantKey, AnswerSet)], to: &[(VariantKey, AnswerSet)], slots| Change {
        answers: Delta {
            upserts: vec![reference(slots)],
            deletes: vec![],
        },
        variants: Delta {
            upserts: to.to_vec(),
            deletes: from
                .iter()
                .map(|(k, _)| *k)
                .filter(|k| !to.iter().any(|(t, _)| t == k))
                .collect(),
        },
        ..Change::default()
    };
    let a_to_b = to(&a, &b, 32);
    let b_to_a = to(&b, &a, 64);
    writer
        .apply(&Change {
            answers: Delta {
                upserts: vec![reference(64)],
                deletes: vec![],
            },
            variants: Delta {
                upserts: a.clone(),
                deletes: vec![],
            },
            ..Change::default()
        })
        .unwrap();
    writer.set_enabled(true).unwrap();

    let valid: BTreeSet<Vec<Ipv4Addr>> = a
        .iter()
        .chain(b.iter())
        .map(|(_, v)| {
            let data = &v.data[..usize::from(v.len)];
            let mut ips: Vec<Ipv4Addr> = data
                .chunks(16)
                .map(|rr| Ipv4Addr::new(rr[12], rr[13], rr[14], rr[15]))
                .collect();
            ips.sort();
            ips
        })
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let rewrites = std::thread::scope(|scope| {
        let flag = stop.clone();
        let writer_thread = scope.spawn(move || {
            let start = Instant::now();
            let mut flips = 0u64;
            let mut entries = 0u64;
            // Bounded: 3 s and at most 100,000 switches.
            while start.elapsed() < Duration::from_secs(3) && flips < 100_000 {
                let change = if flips % 2 == 0 { &a_to_b } else { &b_to_a };
                let stats = writer.apply(change).unwrap();
                entries += (stats.upserts + stats.deletes) as u64;
                flips += 1;
            }
            flag.store(true, Ordering::Relaxed);
            (flips, entries, start.elapsed())
        });
        // Query for as long as the writer runs (bounded: 200 batches of 500).
        let mut replies = Vec::new();
        for _ in 0..200 {
            replies.extend(sample(&bed, "live.example.com.", 500).expect("every query answered"));
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        let (flips, entries, took) = writer_thread.join().unwrap();
        let mut seen = BTreeSet::new();
        for r in &replies {
            assert!(valid.contains(r), "not one of the valid answers: {r:?}");
            seen.insert(r.len());
        }
        assert_eq!(seen, BTreeSet::from([1, 3]), "both states were seen");
        eprintln!(
            "{} queries, all answered with a valid answer",
            replies.len()
        );
        (flips, entries, took)
    });
    let (flips, entries, took) = rewrites;
    let secs = took.as_secs_f64();
    eprintln!(
        "{flips} atomic switches ({:.0}/s), {entries} entries rewritten ({:.0}/s)",
        flips as f64 / secs,
        entries as f64 / secs
    );
    assert!(flips > 100, "the writer ran: {flips}");
}

#[test]
fn a_stopped_daemon_makes_the_fast_path_transparent_within_its_heartbeat_timeout() {
    let mut bed = Testbed::create("dnsph").unwrap();
    let zone = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/example.com.zone");
    let zone_arg = format!("example.com.={zone}");
    let daemon = bed
        .start_service(
            BIN,
            "native",
            &["--zone-file", &zone_arg, "--heartbeat-timeout-ms", "500"],
            false,
        )
        .unwrap();
    assert!(sample(&bed, "www.example.com.", 5).is_ok());
    let pid = daemon.pid as i32;
    // SAFETY: signalling the daemon this test started, by its PID.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let stopped = Instant::now();
    // XDP keeps answering until the last heartbeat is 500 ms old, then passes everything to
    // the (stopped) daemon's socket: no more replies.
    let mut last_answer = Duration::ZERO;
    while stopped.elapsed() < Duration::from_secs(3) {
        if sample(&bed, "www.example.com.", 1).is_ok() {
            last_answer = stopped.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    assert!(
        last_answer < Duration::from_millis(500 + 150),
        "XDP answered {last_answer:?} after the daemon stopped (timeout 500 ms)"
    );
    // Running again: the heartbeat resumes and so does the fast path (and the daemon answers
    // what was queued meanwhile).
    std::thread::sleep(Duration::from_millis(300));
    let before = answered_by_xdp(&bed);
    let _ = sample(&bed, "www.example.com.", 5);
    let after = answered_by_xdp(&bed);
    assert!(after >= before + 5, "fast path back: {before} -> {after}");
    let stale = metric(
        &bed.metrics_page().unwrap(),
        "dns_xdp_packets_total{action=\"pass\",reason=\"stale\"}",
    )
    .unwrap();
    assert!(stale > 0, "passed up as stale while stopped");
    let _ = HeartbeatWriter::take; // the daemon's writer is the one under test
}

#[test]
fn a_killed_daemon_never_leaves_stale_answers_and_a_restart_serves_again_within_seconds() {
    let mut bed = Testbed::create("dnspk").unwrap();
    let zone = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/example.com.zone");
    let zone_arg = format!("example.com.={zone}");
    let args = [
        "--zone-file",
        zone_arg.as_str(),
        "--heartbeat-timeout-ms",
        "500",
    ];
    // Generic mode: the restart below attaches again without the veth peer's pass program.
    let daemon = bed.start_service(BIN, "skb", &args, false).unwrap();
    assert!(sample(&bed, "www.example.com.", 20).is_ok());
    // A change through the API, acknowledged (stored) before the kill: the restart must
    // serve it from the store.
    let curl = |a: &[&str]| bed.output(Side::Server, "curl", a);
    let api = "http://127.0.0.1:8053/2013-04-01";
    let (_, zones) =
        dns_tests::api::call(&curl, "GET", &format!("{api}/hostedzone"), None).unwrap();
    let zone_id = dns_tests::api::bare(zones["HostedZones"][0]["Id"].as_str().unwrap()).to_string();
    let batch = r#"{"ChangeBatch": {"Changes": [{"Action": "CREATE", "ResourceRecordSet":
        {"Name": "stored.example.com.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.222"}]}}]}}"#;
    let (status, v) = dns_tests::api::call(
        &curl,
        "POST",
        &format!("{api}/hostedzone/{zone_id}/rrset"),
        Some(batch),
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");
    // kill -9 under load: a client keeps querying from another thread.
    let stop = Arc::new(AtomicBool::new(false));
    let last_answer = std::thread::scope(|scope| {
        let flag = stop.clone();
        let bed_ref = &bed;
        let client = scope.spawn(move || {
            let mut answered_after_kill = Duration::ZERO;
            let mut killed_at: Option<Instant> = None;
            // Bounded: 4 s of queries at most.
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(4) {
                if killed_at.is_none() && flag.load(Ordering::Relaxed) {
                    killed_at = Some(Instant::now());
                }
                let ok = sample(bed_ref, "www.example.com.", 1).is_ok();
                if let (true, Some(at)) = (ok, killed_at) {
                    answered_after_kill = at.elapsed();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            answered_after_kill
        });
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: signalling the daemon this test started, by its PID.
        assert_eq!(unsafe { libc::kill(daemon.pid as i32, libc::SIGKILL) }, 0);
        stop.store(true, Ordering::Relaxed);
        client.join().unwrap()
    });
    assert!(
        last_answer < Duration::from_millis(500 + 150),
        "answered {last_answer:?} after kill -9 (heartbeat timeout 500 ms)"
    );
    let _ = bed.stop(daemon.pid, Duration::from_millis(100)); // reap it
    // Restart: serving again within seconds (measured from spawn to the first answer).
    let started = Instant::now();
    let _again = bed.start_service(BIN, "skb", &args, false).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sample(&bed, "www.example.com.", 1).is_err() {
        assert!(
            Instant::now() < deadline,
            "not answering 10 s after restart"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed();
    // The stored change, answered by XDP.
    let xdp_before = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap();
    assert_eq!(
        sample(&bed, "stored.example.com.", 1).unwrap(),
        vec![vec![Ipv4Addr::new(192, 0, 2, 222)]],
        "the change acknowledged before kill -9 is served after the restart"
    );
    let xdp_after = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap();
    assert_eq!(xdp_after, xdp_before + 1, "answered by XDP from the store");
    eprintln!(
        "after kill -9: last answer {last_answer:?} later; restart to first answer from the store {took:?}"
    );
    assert!(took < Duration::from_secs(5), "restart took {took:?}");
}
