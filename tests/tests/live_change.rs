//! Change batches applied through the API while dnsperf loads the server through XDP and
//! userspace, in namespaces: no query lost, every response well formed and one of the valid
//! answers, and the changes served by the fast path.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dns_tests::api::call;
use dns_tests::{SERVER_V4, Side, Testbed, metric};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_dns-user-under-test");
const API: &str = "http://127.0.0.1:8053/2013-04-01";
const ANSWERED: &str = "dns_xdp_packets_total{action=\"tx\",reason=\"answered\"}";

fn api(bed: &Testbed, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let curl = |args: &[&str]| bed.output(Side::Server, "curl", args);
    let body = body.map(|b| b.to_string());
    call(&curl, method, &format!("{API}{path}"), body.as_deref()).unwrap()
}

fn wait_insync(bed: &Testbed, change: &str) -> Duration {
    let started = Instant::now();
    loop {
        let path = format!("/change/{}", dns_tests::api::bare(change));
        let (_, v) = api(bed, "GET", &path, None);
        if v["ChangeInfo"]["Status"] == "INSYNC" {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{v}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn upsert(name: &str, address: &str) -> Value {
    json!({"Action": "UPSERT", "ResourceRecordSet": {"Name": name, "Type": "A", "TTL": 30,
           "ResourceRecords": [{"Value": address}]}})
}

/// Field `name` of dnsperf's summary.
fn dnsperf_field(output: &str, name: &str) -> f64 {
    let line = output
        .lines()
        .find(|l| l.trim_start().starts_with(name))
        .unwrap_or_else(|| panic!("no {name:?} in:\n{output}"));
    line.split(':')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn batches_applied_under_dnsperf_lose_nothing() {
    let mut bed = Testbed::create("dnsxlive").unwrap();
    let daemon = bed.start_service(BIN, "native", &[], false).unwrap();
    let (_, zones) = api(&bed, "GET", "/hostedzone", None);
    let zone = dns_tests::api::bare(zones["HostedZones"][0]["Id"].as_str().unwrap()).to_string();
    let rrset = format!("/hostedzone/{zone}/rrset");
    let (status, v) = api(
        &bed,
        "POST",
        &rrset,
        Some(json!({"ChangeBatch": {"Changes": [upsert("live.example.com.", "192.0.2.100")]}})),
    );
    assert_eq!(status, 200, "{v}");
    wait_insync(&bed, v["ChangeInfo"]["Id"].as_str().unwrap());

    // dnsperf: XDP names (A), userspace ones (MX, TXT, NXDOMAIN) and the changing name.
    let queries = bed.dir.join("queries.txt");
    std::fs::write(
        &queries,
        "www.example.com A\nlive.example.com A\nexample.com MX\nexample.com TXT\nnx.example.com A\nwww.example.com AAAA\n",
    )
    .unwrap();
    let stop = AtomicBool::new(false);
    let (perf, checked, insync) = std::thread::scope(|s| {
        let perf = s.spawn(|| {
            let server = SERVER_V4.to_string();
            // Bounded: 4 s, at most 5,000 queries/s, at most 100 passes over the file.
            bed.output(
                Side::Client,
                "dnsperf",
                &[
                    "-s",
                    &server,
                    "-d",
                    queries.to_str().unwrap(),
                    "-l",
                    "4",
                    "-Q",
                    "5000",
                    "-n",
                    "100000",
                    "-c",
                    "4",
                    "-t",
                    "2",
                ],
            )
            .unwrap()
        });
        // Our own client checks every answer to the changing name while it changes.
        let checker = s.spawn(|| {
            bed.run_in(Side::Client, || {
                let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_secs(1)))
                    .unwrap();
                let mut seen = std::collections::BTreeMap::<String, u32>::new();
                let mut id: u16 = 0;
                let deadline = Instant::now() + Duration::from_secs(8);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    id = id.wrapping_add(1);
                    let mut q = Message::new(id, MessageType::Query, OpCode::Query);
                    q.add_query(Query::query(
                        Name::from_ascii("live.example.com.").unwrap(),
                        RecordType::A,
                    ));
                    socket
                        .send_to(&q.to_vec().unwrap(), (SERVER_V4, 53))
                        .unwrap();
                    let mut buf = [0u8; 1500];
                    let (n, _) = socket.recv_from(&mut buf).expect("an answer (none lost)");
                    let m = Message::from_vec(&buf[..n]).expect("a well-formed response");
                    assert_eq!(m.metadata.id, id);
                    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
                    let addresses: Vec<String> = m
                        .answers
                        .iter()
                        .map(|r| match &r.data {
                            RData::A(a) => a.to_string(),
                            other => panic!("unexpected {other:?}"),
                        })
                        .collect();
                    assert_eq!(addresses.len(), 1, "{m:?}");
                    assert!(
                        ["192.0.2.100", "192.0.2.101"].contains(&addresses[0].as_str()),
                        "{addresses:?}"
                    );
                    *seen.entry(addresses[0].clone()).or_default() += 1;
                    std::thread::sleep(Duration::from_micros(500));
                }
                seen
            })
            .unwrap()
        });
        // Meanwhile: 20 batches flip the name and add names, each waited for INSYNC.
        std::thread::sleep(Duration::from_millis(500));
        let mut insync = Vec::new();
        for i in 0..20 {
            let address = if i % 2 == 0 {
                "192.0.2.101"
            } else {
                "192.0.2.100"
            };
            let (status, v) = api(
                &bed,
                "POST",
                &rrset,
                Some(json!({"ChangeBatch": {"Changes": [
                    upsert("live.example.com.", address),
                    upsert(&format!("added{i}.example.com."), "192.0.2.150"),
                ]}})),
            );
            assert_eq!(status, 200, "{v}");
            insync.push(wait_insync(&bed, v["ChangeInfo"]["Id"].as_str().unwrap()));
            std::thread::sleep(Duration::from_millis(100));
        }
        let perf = perf.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        (perf, checker.join().unwrap(), insync)
    });
    let sent = dnsperf_field(&perf, "Queries sent");
    let completed = dnsperf_field(&perf, "Queries completed");
    let lost = dnsperf_field(&perf, "Queries lost");
    eprintln!(
        "dnsperf under 20 live batches: {sent} sent, {completed} completed, {lost} lost; \
         our client saw {checked:?}; change-to-INSYNC (polled) max {:?}",
        insync.iter().max().unwrap()
    );
    assert!(sent > 5_000.0, "{perf}");
    assert_eq!(lost, 0.0, "{perf}");
    assert_eq!(completed, sent, "{perf}");
    assert!(
        !perf.contains("Warning"),
        "dnsperf saw a bad response:\n{perf}"
    );
    assert!(checked.len() == 2, "both answers were served: {checked:?}");
    // The last state is served by XDP, as are the added names.
    let page = bed.metrics_page().unwrap();
    let xdp = metric(
        &page,
        "dns_zone_queries_total{path=\"xdp\",zone=\"example.com.\"}",
    )
    .unwrap();
    let user = metric(
        &page,
        "dns_zone_queries_total{path=\"userspace\",zone=\"example.com.\"}",
    )
    .unwrap();
    assert!(
        xdp > 1_000 && user > 1_000,
        "per-zone counts: xdp {xdp}, userspace {user}"
    );
    assert!(metric(&page, "dns_change_insync_seconds_count").unwrap() >= 21);
    assert!(metric(&page, "dns_xdp_map_entries{map=\"answers\"}").unwrap() >= 20);
    let answered = |page: &str| metric(page, ANSWERED).expect("XDP answered counter");
    let before = answered(&page);
    let out = bed
        .output(
            Side::Client,
            "dig",
            &["@192.0.2.1", "+short", "added19.example.com", "A"],
        )
        .unwrap();
    assert_eq!(out.trim(), "192.0.2.150");
    let after = answered(&bed.metrics_page().unwrap());
    assert_eq!(after - before, 1, "the added name is answered by XDP");
    drop(daemon);
}
