//! End to end: health checks move answers, automatically, both ways. HTTP servers in the client
//! namespace are the endpoints; the daemon (XDP native on the server veth) checks them every
//! second with threshold 2; a client queries at a steady rate while the test stops and
//! restarts servers. Every query must be answered (NOERROR, never SERVFAIL, never silence) and
//! each switch must land within interval x threshold + timeout + 1 s.
//!
//! Every answer comes from XDP: the server namespace's UDP socket layer sees none of the
//! queries, for failover, weighted and latency -> failover names alike.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dns_tests::{CLIENT_V4, METRICS_ADDR, Process, SERVER_V4, Side, Testbed, metric};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

const BIN: &str = env!("CARGO_BIN_EXE_dns-user-under-test");
const TARGET: &str = env!("CARGO_BIN_EXE_http-target");
const ANSWERED: &str = "dns_xdp_packets_total{action=\"tx\",reason=\"answered\"}";

/// interval (1 s) x threshold (2) + the HTTP connect timeout (4 s) + 1 s.
const BOUND: Duration = Duration::from_secs(2 + 4 + 1);
/// Between queries.
const PACE: Duration = Duration::from_millis(20);

/// (check id, port on the client address).
const ENDPOINTS: &[(&str, u16)] = &[
    ("primary", 8081),
    ("secondary", 8082),
    ("blue", 8083),
    ("green", 8084),
    ("eu-primary", 8085),
    ("eu-secondary", 8086),
    ("us-primary", 8087),
    ("us-secondary", 8088),
];

fn config() -> String {
    let mut text = String::new();
    for (id, port) in ENDPOINTS {
        text.push_str(&format!(
            "[health_check.{id}]\ntype = \"HTTP\"\nip_address = \"{CLIENT_V4}\"\nport = {port}\nresource_path = \"/health\"\nrequest_interval = 1\nfailure_threshold = 2\n\n"
        ));
    }
    text.push_str(
        r#"[location]
latency = [{ prefix = "192.0.2.0/24", regions = { "eu-west-3" = 10.0, "us-west-2" = 100.0 } }]
"#,
    );
    text.push_str(dns_tests::fixtures::ZONE_HEAD);
    let set = |name: &str, id: &str, policy: &str, value: &str| {
        format!(
            "[[zone.record]]\nname = \"{name}\"\ntype = \"A\"\nset_id = \"{id}\"\n{policy}\nhealth_check = \"{id}\"\nttl = 5\nvalues = [\"{value}\"]\n\n"
        )
    };
    text.push_str(&set(
        "www",
        "primary",
        "failover = \"PRIMARY\"",
        "192.0.2.10",
    ));
    text.push_str(&set(
        "www",
        "secondary",
        "failover = \"SECONDARY\"",
        "192.0.2.20",
    ));
    text.push_str(&set("app", "blue", "weight = 1", "198.51.100.1"));
    text.push_str(&set("app", "green", "weight = 1", "198.51.100.2"));
    text.push_str(&set(
        "eu.geo",
        "eu-primary",
        "failover = \"PRIMARY\"",
        "203.0.113.1",
    ));
    text.push_str(&set(
        "eu.geo",
        "eu-secondary",
        "failover = \"SECONDARY\"",
        "203.0.113.2",
    ));
    text.push_str(&set(
        "us.geo",
        "us-primary",
        "failover = \"PRIMARY\"",
        "203.0.113.3",
    ));
    text.push_str(&set(
        "us.geo",
        "us-secondary",
        "failover = \"SECONDARY\"",
        "203.0.113.4",
    ));
    for (region, target) in [("eu-west-3", "eu.geo"), ("us-west-2", "us.geo")] {
        text.push_str(&format!(
            "[[zone.record]]\nname = \"geo\"\ntype = \"A\"\nset_id = \"{region}\"\nregion = \"{region}\"\nalias = {{ target = \"{target}\", evaluate_target_health = true }}\n\n"
        ));
    }
    text
}

struct Endpoints {
    running: Vec<(&'static str, Process)>,
}

impl Endpoints {
    fn start(&mut self, bed: &mut Testbed, id: &'static str) {
        let port = ENDPOINTS.iter().find(|(i, _)| *i == id).unwrap().1;
        let addr = format!("{CLIENT_V4}:{port}");
        let p = bed.spawn(Side::Client, TARGET, &[&addr], false).unwrap();
        p.wait_for(bed, "listening on", Duration::from_secs(10))
            .unwrap();
        self.running.push((id, p));
    }

    fn stop(&mut self, bed: &mut Testbed, id: &str) {
        let i = self.running.iter().position(|(r, _)| *r == id).unwrap();
        let (_, p) = self.running.remove(i);
        bed.stop(p.pid, Duration::from_millis(500));
    }
}

/// What one phase of steady querying saw.
struct Phase {
    /// From the start of the phase until `done` first held.
    switched_after: Option<Duration>,
    queries: usize,
    failures: Vec<String>,
    seen: std::collections::BTreeSet<Vec<Ipv4Addr>>,
}

/// Queries `name` A every [`PACE`] from the client namespace until `done` holds for the answers
/// so far (checked after each), or `limit` passes. Every query must get NOERROR with answers.
fn query_until(
    bed: &Testbed,
    name: &str,
    limit: Duration,
    done: impl Fn(&[Vec<Ipv4Addr>]) -> bool + Send,
) -> Phase {
    let qname = Name::from_ascii(name).unwrap();
    bed.run_in(Side::Client, move || {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let start = Instant::now();
        let mut answers: Vec<Vec<Ipv4Addr>> = Vec::new();
        let mut phase = Phase {
            switched_after: None,
            queries: 0,
            failures: Vec::new(),
            seen: Default::default(),
        };
        let mut id: u16 = 0;
        while start.elapsed() < limit {
            id = id.wrapping_add(1);
            let q = dns_user::server::answer::build_query(id, &qname, RecordType::A, None);
            socket.send_to(&q, (SERVER_V4, 53)).unwrap();
            phase.queries += 1;
            let mut buf = [0u8; 1500];
            let reply = loop {
                match socket.recv(&mut buf) {
                    Ok(n) => match Message::from_vec(&buf[..n]) {
                        Ok(m) if m.metadata.id == id => break Ok(m),
                        Ok(_) => continue, // a late reply to an earlier query
                        Err(e) => break Err(format!("unparsable reply: {e}")),
                    },
                    Err(e) => break Err(format!("no reply within 1 s: {e}")),
                }
            };
            match reply {
                Ok(m) if m.metadata.response_code == ResponseCode::NoError => {
                    let ips = dns_tests::a_addresses(&m);
                    if ips.is_empty() {
                        phase.failures.push("NOERROR without an answer".into());
                    }
                    phase.seen.insert(ips.clone());
                    answers.push(ips);
                }
                Ok(m) => phase
                    .failures
                    .push(format!("rcode {:?}", m.metadata.response_code)),
                Err(e) => phase.failures.push(e),
            }
            if done(&answers) {
                phase.switched_after = Some(start.elapsed());
                break;
            }
            std::thread::sleep(PACE);
        }
        phase
    })
    .unwrap()
}

fn ip(s: &str) -> Vec<Ipv4Addr> {
    vec![s.parse().unwrap()]
}

/// The last answer is `want`.
fn now_is(want: &'static str) -> impl Fn(&[Vec<Ipv4Addr>]) -> bool + Send {
    move |a| a.last() == Some(&ip(want))
}

/// The last `n` answers are all `want` (for random policies).
fn streak(want: &'static str, n: usize) -> impl Fn(&[Vec<Ipv4Addr>]) -> bool + Send {
    move |a| a.len() >= n && a[a.len() - n..].iter().all(|x| *x == ip(want))
}

fn assert_switch(what: &str, phase: &Phase, bound: Duration) {
    assert!(
        phase.failures.is_empty(),
        "{what}: {} of {} queries failed: {:?}",
        phase.failures.len(),
        phase.queries,
        &phase.failures[..phase.failures.len().min(5)]
    );
    let took = phase
        .switched_after
        .unwrap_or_else(|| panic!("{what}: no switch within the limit; saw {:?}", phase.seen));
    assert!(took <= bound, "{what}: took {took:?}, bound {bound:?}");
    eprintln!(
        "{what}: switched after {took:?} ({} queries, all answered)",
        phase.queries
    );
}

fn health_status(bed: &Testbed) -> String {
    bed.output(
        Side::Server,
        BIN,
        &[
            "health",
            "status",
            "--api-url",
            &format!("http://{METRICS_ADDR}"),
        ],
    )
    .unwrap()
}

#[test]
fn health_checks_move_answers_both_ways_through_the_fast_path() {
    let mut bed = Testbed::create("dnshc").unwrap();
    let dir = std::env::temp_dir().join(format!("dns-health-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("health.toml");
    std::fs::write(&path, config()).unwrap();

    let mut endpoints = Endpoints {
        running: Vec::new(),
    };
    for (id, _) in ENDPOINTS {
        endpoints.start(&mut bed, id);
    }
    let daemon = bed
        .start_service(
            BIN,
            "native",
            &[
                "--config",
                path.to_str().unwrap(),
                // Query logs on, so the dashboard's dnstap panel is checked too.
                "--dnstap",
                dir.join("queries.dnstap").to_str().unwrap(),
                "--dnstap-xdp-sample",
                "10",
            ],
            false,
        )
        .unwrap();
    // Every check healthy, after real probes (not just "new").
    let deadline = Instant::now() + Duration::from_secs(10);
    while !health_status(&bed).contains("Success: HTTP status code 200") {
        assert!(Instant::now() < deadline, "{}", health_status(&bed));
        std::thread::sleep(Duration::from_millis(200));
    }

    // Failover through XDP: the server namespace's UDP layer sees none of these queries.
    let page = bed.metrics_page().unwrap();
    let (xdp_before, udp_before) = (
        metric(&page, ANSWERED).unwrap(),
        bed.snmp(Side::Server, "Udp", "InDatagrams").unwrap(),
    );
    let steady = query_until(&bed, "www.example.com", Duration::from_millis(500), |_| {
        false
    });
    assert!(steady.failures.is_empty(), "{:?}", steady.failures);
    assert_eq!(
        steady.seen.iter().collect::<Vec<_>>(),
        vec![&ip("192.0.2.10")]
    );

    endpoints.stop(&mut bed, "primary");
    let down = query_until(&bed, "www.example.com", BOUND * 2, now_is("192.0.2.20"));
    assert_switch("primary down -> secondary", &down, BOUND);
    let status = health_status(&bed);
    assert!(
        status.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.starts_with(&["primary", "HTTP", "Unhealthy"])
        }),
        "{status}"
    );

    endpoints.start(&mut bed, "primary");
    let up = query_until(&bed, "www.example.com", BOUND * 2, now_is("192.0.2.10"));
    assert_switch("primary back -> primary", &up, BOUND);

    let mut queries = (steady.queries + down.queries + up.queries) as u64;

    // Weighted active-active: the unhealthy endpoint leaves the answers; with both unhealthy,
    // both come back (fail-open).
    let both = query_until(&bed, "app.example.com", Duration::from_secs(10), |a| {
        a.contains(&ip("198.51.100.1")) && a.contains(&ip("198.51.100.2"))
    });
    assert_switch("weighted: both answer", &both, Duration::from_secs(10));
    endpoints.stop(&mut bed, "blue");
    // 30 greens in a row: by chance with blue healthy, 1 in 2^30.
    let one = query_until(
        &bed,
        "app.example.com",
        BOUND * 2,
        streak("198.51.100.2", 30),
    );
    let streak_time = PACE * 30;
    assert_switch(
        "weighted: blue down -> green only",
        &one,
        BOUND + streak_time * 2,
    );
    endpoints.stop(&mut bed, "green");
    let open = query_until(&bed, "app.example.com", BOUND * 2, |a| {
        a.last() == Some(&ip("198.51.100.1"))
    });
    assert_switch("weighted: all down -> fail-open", &open, BOUND);
    endpoints.start(&mut bed, "blue");
    endpoints.start(&mut bed, "green");
    queries += (both.queries + one.queries + open.queries) as u64;

    // Latency -> failover tree: the client is nearest eu-west-3.
    let eu = query_until(&bed, "geo.example.com", BOUND, now_is("203.0.113.1"));
    assert_switch("latency: eu primary", &eu, BOUND);
    endpoints.stop(&mut bed, "eu-primary");
    let eu2 = query_until(&bed, "geo.example.com", BOUND * 2, now_is("203.0.113.2"));
    assert_switch("latency: eu primary down -> eu secondary", &eu2, BOUND);
    endpoints.stop(&mut bed, "eu-secondary");
    let us = query_until(&bed, "geo.example.com", BOUND * 2, now_is("203.0.113.3"));
    assert_switch("latency: eu region down -> us primary", &us, BOUND);
    endpoints.start(&mut bed, "eu-primary");
    let back = query_until(&bed, "geo.example.com", BOUND * 2, now_is("203.0.113.1"));
    assert_switch("latency: eu primary back", &back, BOUND);
    queries += (eu.queries + eu2.queries + us.queries + back.queries) as u64;

    let page = bed.metrics_page().unwrap();
    // The Grafana dashboard (docs/) asks only for what this daemon exports.
    let missing = dns_tests::dashboard::mismatches(&page);
    assert!(
        missing.is_empty(),
        "the dashboard asks for what /metrics lacks:\n{}\n{page}",
        missing.join("\n")
    );
    let fast = metric(&page, ANSWERED).unwrap() - xdp_before;
    assert_eq!(fast, queries, "every query answered by XDP");
    assert_eq!(
        bed.snmp(Side::Server, "Udp", "InDatagrams").unwrap(),
        udp_before,
        "no query reached the userspace server"
    );

    let log = daemon.log().join("\n");
    assert!(
        log.contains("health check primary (HTTP") && log.contains("Healthy -> Unhealthy"),
        "state changes are logged:\n{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
