//! dnstap query logs read back by stock readers: the daemon in the testbed with XDP attached,
//! queries from the client namespace, the log read by Debian's `dnstap-ldns` (a file) and
//! captured by `fstrm_capture` (a unix socket). Every userspace query is in the log with its
//! response; XDP answers in the sampled share, each with the response XDP sent.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use dns_tests::{SERVER_V4, Side, Testbed, metric};
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};

mod common;

use common::BIN;

/// Sends `count` queries for `name`/`rtype` from the client namespace, one at a time, each
/// waiting for its answer; returns how many were answered.
fn send(bed: &Testbed, name: &str, rtype: RecordType, count: u16) -> u16 {
    let qname = Name::from_ascii(name).unwrap();
    bed.run_in(Side::Client, move || {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        socket.connect((SERVER_V4, 53)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut answered = 0;
        for id in 0..count {
            let query = dns_user::server::answer::build_query(id, &qname, rtype, None);
            socket.send(&query).unwrap();
            let mut buf = [0u8; 1500];
            if let Ok(n) = socket.recv(&mut buf) {
                let m = Message::from_vec(&buf[..n]).unwrap();
                assert_eq!(m.metadata.id, id);
                answered += 1;
            }
        }
        answered
    })
    .unwrap()
}

/// (mnemonic, client, qname, qtype) -> messages, from `dnstap-ldns -q`.
type Log = BTreeMap<(String, String, String, String), usize>;

/// A log as `dnstap-ldns -q` reads it, and its text.
fn read_log(path: &std::path::Path) -> (Log, String) {
    let out = Command::new("dnstap-ldns")
        .arg("-q")
        .arg("-r")
        .arg(path)
        .output()
        .expect("dnstap-ldns (Debian package dnstap-ldns, installed by scripts/bootstrap)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "dnstap-ldns: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut counts = BTreeMap::new();
    // `2026-12-06 23:40:01.123456 AQ 192.0.2.2 UDP 33b "www.example.com." IN A`
    for line in text.lines() {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert!(cells.len() >= 9, "{line}");
        let key = (
            cells[2].to_string(),
            cells[3].to_string(),
            cells[6].trim_matches('"').to_string(),
            cells[8].to_string(),
        );
        *counts.entry(key).or_default() += 1;
    }
    (counts, text)
}

fn count(log: &Log, kind: &str, name: &str, qtype: &str) -> usize {
    log.get(&(
        kind.to_string(),
        "192.0.2.2".to_string(),
        name.to_string(),
        qtype.to_string(),
    ))
    .copied()
    .unwrap_or(0)
}

#[test]
fn a_dnstap_file_holds_every_userspace_query_and_the_sampled_xdp_share() {
    let mut bed = Testbed::create("dnstap").unwrap();
    let file = bed.dir.join("queries.dnstap");
    let daemon = bed
        .start_service(
            BIN,
            "native",
            &[
                "--dnstap",
                file.to_str().unwrap(),
                "--dnstap-xdp-sample",
                "4",
            ],
            false,
        )
        .unwrap();
    // TXT goes up to userspace; A is answered by XDP.
    assert_eq!(send(&bed, "example.com.", RecordType::TXT, 60), 60);
    assert_eq!(send(&bed, "www.example.com.", RecordType::A, 400), 400);
    let page = bed.metrics_page().unwrap();
    let answered_by_xdp = metric(
        &page,
        "dns_xdp_packets_total{action=\"tx\",reason=\"answered\"}",
    )
    .unwrap();
    assert_eq!(answered_by_xdp, 400);
    // Stopping ends the stream (STOP) after what is queued.
    let status = bed.stop(daemon.pid, Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{status}");
    let (log, text) = read_log(&file);
    assert_eq!(count(&log, "AQ", "example.com.", "TXT"), 60, "{text}");
    assert_eq!(count(&log, "AR", "example.com.", "TXT"), 60, "{text}");
    let (aq, ar) = (
        count(&log, "AQ", "www.example.com.", "A"),
        count(&log, "AR", "www.example.com.", "A"),
    );
    assert_eq!(
        aq, ar,
        "each sampled XDP answer logs its query and response"
    );
    // 1 in 4 of 400: 100 expected, standard deviation 8.7; this window is 5.7 of them.
    assert!((50..=150).contains(&aq), "{aq} of 400 sampled at 1 in 4");
    assert_eq!(
        metric(&page, "dns_dnstap_dropped_total").unwrap(),
        0,
        "nothing dropped"
    );

    // The messages themselves, as a stock reader decodes them: the XDP response with its
    // answers, the file private to the daemon.
    let yaml = Command::new("dnstap-ldns")
        .arg("-y")
        .arg("-r")
        .arg(&file)
        .output()
        .unwrap();
    let yaml = String::from_utf8_lossy(&yaml.stdout);
    assert!(yaml.contains("type: AUTH_RESPONSE") && yaml.contains("socket_protocol: UDP"));
    assert!(
        yaml.contains("www.example.com.\t300\tIN\tA\t192.0.2.1"),
        "the XDP response decoded:\n{}",
        &yaml[..yaml.len().min(4000)]
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
}

#[test]
fn a_dnstap_socket_reader_gets_every_userspace_query() {
    let mut bed = Testbed::create("dnstapu").unwrap();
    let socket = bed.dir.join("dnstap.sock");
    let captured = bed.dir.join("captured.dnstap");
    let capture = bed
        .spawn(
            Side::Server,
            "fstrm_capture",
            &[
                "-t",
                "protobuf:dnstap.Dnstap",
                "-u",
                socket.to_str().unwrap(),
                "-w",
                captured.to_str().unwrap(),
            ],
            false,
        )
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "fstrm_capture's socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sink = format!("unix:{}", socket.display());
    let daemon = bed
        .start_service(BIN, "native", &["--dnstap", &sink], false)
        .unwrap();
    daemon
        .wait_for(
            &mut bed,
            "dnstap: writing to unix:",
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(send(&bed, "mail.example.com.", RecordType::MX, 25), 25);
    assert_eq!(send(&bed, "www.example.com.", RecordType::A, 25), 25);
    let status = bed.stop(daemon.pid, Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{status}");
    // The daemon ended the stream (STOP, FINISH); the reader then closes its file.
    bed.stop(capture.pid, Duration::from_secs(5));
    let (log, text) = read_log(&captured);
    assert_eq!(count(&log, "AQ", "mail.example.com.", "MX"), 25, "{text}");
    assert_eq!(count(&log, "AR", "mail.example.com.", "MX"), 25, "{text}");
    assert_eq!(
        count(&log, "AQ", "www.example.com.", "A"),
        0,
        "XDP sampling is off by default"
    );
}
