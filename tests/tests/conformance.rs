//! Conformance tests, named after the RFC sections they check, against the real binary (XDP
//! off) on loopback. The server hosts `example.com` and, beside it, its child zone
//! `child.example.com` (delegated from the parent).

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};

const BIN: &str = env!("CARGO_BIN_EXE_dns-user-under-test");

const PARENT: &str = r#"$ORIGIN example.com.
$TTL 3600
@        IN SOA  ns1 hostmaster 1 7200 900 1209600 300
@        IN NS   ns1
ns1      IN A    192.0.2.53
www      IN A    192.0.2.1
www      IN AAAA 2001:db8::1
mixed 100 IN A   192.0.2.5
mixed 200 IN A   192.0.2.6
alias    IN CNAME www
loop1    IN CNAME loop2
loop2    IN CNAME loop1
a.b      IN A    192.0.2.3
*.wild   IN A    192.0.2.7
specific.wild IN A 192.0.2.8
sub      IN NS   ns.sub
ns.sub   IN A    192.0.2.99
child    IN NS   ns1.child
ns1.child IN A   192.0.2.77
mx       IN MX   10 www
big      IN TXT  "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      IN TXT  "1123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      IN TXT  "2123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
"#;

const CHILD: &str = r#"$ORIGIN child.example.com.
$TTL 600
@        IN SOA  ns1 hostmaster 7 7200 900 1209600 120
@        IN NS   ns1
ns1      IN A    192.0.2.77
host     IN A    192.0.2.78
"#;

struct Server {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling a child this test started, by its PID.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start() -> Server {
    start_with("tcp_idle_timeout_secs = 1")
}

/// Starts the server with `server_extra` added to its `[server]` section.
fn start_with(server_extra: &str) -> Server {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("dnsx-conf-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("parent.zone"), PARENT).unwrap();
    std::fs::write(dir.join("child.zone"), CHILD).unwrap();
    let port = dns_tests::free_port();
    std::fs::write(
        dir.join("dns.toml"),
        format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\n{server_extra}\n\
             [xdp]\nmode = \"off\"\n\
             [store]\npath = \"store.redb\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [[zone]]\norigin = \"example.com.\"\nfile = \"parent.zone\"\n\
             [[zone]]\norigin = \"child.example.com.\"\nfile = \"child.zone\"\n"
        ),
    )
    .unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--config", dir.join("dns.toml").to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server { child, port, dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    while udp(&server, &query("example.com.", RecordType::SOA, None)).is_none() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    dns_user::server::answer::build_query(
        0x1234,
        &Name::from_ascii(name).unwrap(),
        qtype,
        edns.map(|s| (s, false)),
    )
}

fn udp(server: &Server, q: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    socket.send_to(q, ("127.0.0.1", server.port)).unwrap();
    let mut buf = [0u8; 65535];
    let (len, _) = socket.recv_from(&mut buf).ok()?;
    Some(buf[..len].to_vec())
}

fn ask(server: &Server, name: &str, qtype: RecordType) -> Message {
    Message::from_vec(&udp(server, &query(name, qtype, None)).unwrap()).unwrap()
}

fn types(records: &[hickory_proto::rr::Record]) -> Vec<RecordType> {
    records.iter().map(|r| r.record_type()).collect()
}

#[test]
fn rfc1034_4_3_2_authoritative_answer_copies_question_and_sets_aa() {
    let s = start();
    let r = ask(&s, "WWW.example.COM.", RecordType::A);
    assert_eq!(r.metadata.message_type, MessageType::Response);
    assert!(r.metadata.authoritative);
    assert!(r.metadata.recursion_desired, "RD is copied");
    assert!(!r.metadata.recursion_available, "never a resolver");
    assert_eq!(
        r.queries[0].name().to_string(),
        "WWW.example.COM.",
        "question case preserved"
    );
    assert_eq!(r.answers.len(), 1);
}

#[test]
fn rfc1034_4_3_2_cname_followed_in_zone_and_loops_cut() {
    let s = start();
    let r = ask(&s, "alias.example.com.", RecordType::A);
    assert_eq!(types(&r.answers), [RecordType::CNAME, RecordType::A]);
    let r = ask(&s, "loop1.example.com.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(
        r.answers
            .iter()
            .all(|a| a.record_type() == RecordType::CNAME)
    );
    assert!(r.answers.len() <= 8, "the chain is cut");
}

#[test]
fn rfc1034_4_3_2_referral_below_a_delegation() {
    let s = start();
    let r = ask(&s, "host.sub.example.com.", RecordType::A);
    assert!(!r.metadata.authoritative);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.answers.is_empty());
    assert_eq!(types(&r.authorities), [RecordType::NS]);
    assert_eq!(r.additionals[0].name.to_string(), "ns.sub.example.com.");
}

#[test]
fn rfc1034_4_3_2_child_zone_hosted_beside_its_parent_answers_itself() {
    let s = start();
    let r = ask(&s, "host.child.example.com.", RecordType::A);
    assert!(
        r.metadata.authoritative,
        "the child zone is authoritative, not a referral"
    );
    assert_eq!(r.answers.len(), 1);
    let r = ask(&s, "nope.child.example.com.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(r.authorities[0].name.to_string(), "child.example.com.");
    assert_eq!(r.authorities[0].ttl, 120);
}

#[test]
fn rfc1034_4_3_2_names_outside_every_zone_are_refused() {
    let s = start();
    let r = ask(&s, "www.example.org.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    assert!(!r.metadata.authoritative && r.answers.is_empty());
}

#[test]
fn rfc2308_3_negative_answers_carry_the_soa_with_the_negative_ttl() {
    let s = start();
    for (name, rcode) in [
        ("nope.example.com.", ResponseCode::NXDomain),
        ("www.example.com.", ResponseCode::NoError), // NODATA (MX)
        ("b.example.com.", ResponseCode::NoError),   // empty non-terminal (RFC 8020)
    ] {
        let r = ask(&s, name, RecordType::MX);
        assert_eq!(r.metadata.response_code, rcode, "{name}");
        assert!(r.answers.is_empty(), "{name}");
        assert_eq!(types(&r.authorities), [RecordType::SOA], "{name}");
        assert_eq!(r.authorities[0].ttl, 300, "{name}: min(SOA TTL, MINIMUM)");
    }
}

#[test]
fn rfc2181_5_2_an_rrset_has_one_ttl() {
    let s = start();
    let r = ask(&s, "mixed.example.com.", RecordType::A);
    assert_eq!(r.answers.len(), 2);
    assert!(r.answers.iter().all(|a| a.ttl == 100));
}

#[test]
fn rfc2181_9_tc_instead_of_a_partial_rrset() {
    let s = start();
    let r = ask(&s, "big.example.com.", RecordType::TXT);
    assert!(r.metadata.truncation);
    assert!(r.answers.is_empty(), "no partial RRset");
    // The same over TCP: complete.
    let full =
        Message::from_vec(&tcp(&s, &[query("big.example.com.", RecordType::TXT, None)]).remove(0))
            .unwrap();
    assert!(!full.metadata.truncation);
    assert_eq!(full.answers.len(), 3);
}

#[test]
fn rfc4592_wildcards() {
    let s = start();
    // 2.2.1: synthesized from *.wild, owner is the query name.
    let r = ask(&s, "x.y.wild.example.com.", RecordType::A);
    assert_eq!(r.answers[0].name.to_string(), "x.y.wild.example.com.");
    // An existing name is not covered by the wildcard; its descendants are not either
    // (closest encloser specific.wild has no wildcard).
    assert_eq!(
        ask(&s, "specific.wild.example.com.", RecordType::A)
            .answers
            .len(),
        1
    );
    let r = ask(&s, "x.specific.wild.example.com.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    // *.wild does not answer wild itself (an empty non-terminal: NODATA).
    let r = ask(&s, "wild.example.com.", RecordType::A);
    assert_eq!(
        (r.metadata.response_code, r.answers.len()),
        (ResponseCode::NoError, 0)
    );
    // Wildcard NODATA for a type it does not have.
    let r = ask(&s, "z.wild.example.com.", RecordType::AAAA);
    assert_eq!(
        (r.metadata.response_code, r.answers.len()),
        (ResponseCode::NoError, 0)
    );
}

#[test]
fn rfc6891_6_1_1_opt_echoed_with_our_payload_size() {
    let s = start();
    let r =
        Message::from_vec(&udp(&s, &query("www.example.com.", RecordType::A, Some(4096))).unwrap())
            .unwrap();
    let edns = r.edns.expect("OPT in the response");
    assert_eq!((edns.max_payload(), edns.version()), (1232, 0));
    let r = ask(&s, "www.example.com.", RecordType::A);
    assert!(r.edns.is_none(), "no OPT without one in the query");
}

#[test]
fn rfc6891_6_1_2_unknown_options_and_flags_are_ignored() {
    let s = start();
    let mut m = Message::new(9, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii("www.example.com.").unwrap(),
        RecordType::A,
    ));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.options_mut()
        .insert(EdnsOption::Unknown(65001, vec![1, 2, 3]));
    m.set_edns(e);
    let mut bytes = m.to_vec().unwrap();
    // Set an unassigned EDNS flag bit (Z): RFC 8906 8.2.4 expects it ignored, not echoed.
    let n = bytes.len();
    bytes[n - 7 - 4] |= 0x40; // OPT TTL low half, after: ttl(4) rdlen(2) option(7)
    let r = Message::from_vec(&udp(&s, &bytes).unwrap()).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(r.answers.len(), 1);
    let edns = r.edns.unwrap();
    assert!(
        edns.options().as_ref().is_empty(),
        "unknown option not echoed"
    );
    assert!(edns.options().get(EdnsCode::Unknown(65001)).is_none());
}

#[test]
fn rfc6891_6_1_3_badvers_for_version_above_zero() {
    let s = start();
    let mut m = Message::from_vec(&query("www.example.com.", RecordType::A, Some(1232))).unwrap();
    m.edns.as_mut().unwrap().set_version(1);
    let r = Message::from_vec(&udp(&s, &m.to_vec().unwrap()).unwrap()).unwrap();
    assert_eq!(u16::from(r.metadata.response_code), 16, "BADVERS");
    assert_eq!(r.edns.unwrap().version(), 0);
    assert!(r.answers.is_empty());
}

#[test]
fn rfc6891_7_tc_when_the_answer_exceeds_the_clients_payload() {
    let s = start();
    let small = Message::from_vec(
        &udp(&s, &query("big.example.com.", RecordType::TXT, Some(512))).unwrap(),
    )
    .unwrap();
    assert!(small.metadata.truncation && small.answers.is_empty());
    let large = Message::from_vec(
        &udp(&s, &query("big.example.com.", RecordType::TXT, Some(4096))).unwrap(),
    )
    .unwrap();
    assert!(!large.metadata.truncation);
    assert_eq!(large.answers.len(), 3);
}

fn tcp(s: &Server, queries: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut stream = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut out = Vec::new();
    for q in queries {
        out.extend_from_slice(&(q.len() as u16).to_be_bytes());
        out.extend_from_slice(q);
    }
    stream.write_all(&out).unwrap(); // all queries in one write: pipelined
    let mut responses = Vec::new();
    for _ in queries {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
        let mut r = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut r).unwrap();
        responses.push(r);
    }
    responses
}

#[test]
fn rfc7766_6_2_1_pipelined_queries_on_one_connection() {
    let s = start();
    let names = ["www.example.com.", "mx.example.com.", "nope.example.com."];
    let queries: Vec<Vec<u8>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut q = query(n, RecordType::A, None);
            q[0..2].copy_from_slice(&(100 + i as u16).to_be_bytes());
            q
        })
        .collect();
    let mut ids: Vec<u16> = tcp(&s, &queries)
        .iter()
        .map(|r| Message::from_vec(r).unwrap().metadata.id)
        .collect();
    ids.sort_unstable(); // any order is allowed
    assert_eq!(ids, [100, 101, 102]);
}

#[test]
fn rfc7766_6_2_3_idle_connections_are_closed() {
    let s = start();
    let mut stream = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 1];
    assert_eq!(
        stream.read(&mut buf).unwrap(),
        0,
        "server closes an idle connection"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[test]
fn rfc5936_zone_transfer_to_allowed_addresses_over_tcp() {
    let s = start_with("transfer_allow = [\"127.0.0.0/8\"]");
    let port = s.port.to_string();
    let out = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &port,
            "example.com",
            "AXFR",
            "+nocomments",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let records: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .collect();
    // SOA first and last (RFC 5936 section 2.2), everything in between.
    assert!(records.first().unwrap().contains("\tSOA\t"), "{text}");
    assert!(records.last().unwrap().contains("\tSOA\t"), "{text}");
    assert!(records.len() > 10, "{text}");
    assert!(
        text.contains("big.example.com.") && text.contains("child.example.com.\t"),
        "{text}"
    );
    // The zone we are not authoritative for at its apex: NOTAUTH.
    let r = tcp(&s, &[query("www.example.com.", RecordType::AXFR, None)]);
    let m = Message::from_vec(&r[0]).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NotAuth);
    // Over UDP, even an allowed client is refused.
    let r = ask(&s, "example.com.", RecordType::AXFR);
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn rfc5936_2_2_1_zone_transfers_are_refused() {
    let s = start();
    for qtype in [RecordType::AXFR, RecordType::IXFR] {
        let r = ask(&s, "example.com.", qtype);
        assert_eq!(r.metadata.response_code, ResponseCode::Refused, "{qtype}");
        assert!(r.answers.is_empty(), "{qtype}: nothing of the zone");
    }
}

/// Response rate limiting in the userspace server (the same GCRA as XDP's): one client /24
/// gets a burst and the rate over UDP, then every second response slipped (TC=1, no records)
/// and the rest dropped; TCP is never limited.
#[test]
fn response_rate_limiting_bounds_udp_amplification() {
    let s = start_with("\n[rrl]\nresponses_per_second = 5\nburst = 3\nslip = 2");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    // A large answer: what an amplification attack would ask for.
    let q = query("big.example.com.", RecordType::TXT, Some(4096));
    let start = Instant::now();
    for _ in 0..300 {
        socket.send_to(&q, ("127.0.0.1", s.port)).unwrap();
        // Paced so that no socket buffer overflows: every query reaches the server.
        std::thread::sleep(Duration::from_micros(500));
    }
    let sent = start.elapsed().as_secs_f64();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let (mut full, mut slipped, mut bytes, mut full_size) = (0usize, 0usize, 0usize, 0usize);
    let mut buf = [0u8; 4096];
    while let Ok((n, _)) = socket.recv_from(&mut buf) {
        let m = Message::from_vec(&buf[..n]).unwrap();
        if m.metadata.truncation {
            assert!(m.answers.is_empty());
            slipped += 1;
        } else {
            assert!(!m.answers.is_empty());
            full += 1;
            full_size = n;
        }
        bytes += n;
    }
    // The startup probe used one response; then 1 + burst, plus the rate's share of the time.
    let allowed = 1 + 3 + (sent * 5.0).ceil() as usize;
    assert!(
        full >= 3 && full <= allowed,
        "{full} full answers, allowed {allowed}"
    );
    let limited = 300 - full;
    assert!(
        slipped.abs_diff(limited / 2) <= 1,
        "{slipped} slipped of {limited} limited (slip 2)"
    );
    // Unlimited, every query would get the full answer.
    let unlimited = full_size as f64 / q.len() as f64;
    let amplification = bytes as f64 / (300 * q.len()) as f64;
    assert!(
        amplification < unlimited / 5.0,
        "amplification {amplification:.2} (unlimited: {unlimited:.1})"
    );
    // TCP is not limited.
    let r = tcp(&s, std::slice::from_ref(&q));
    let m = Message::from_vec(&r[0]).unwrap();
    assert!(!m.metadata.truncation && !m.answers.is_empty());
}

#[test]
fn rfc8482_4_2_any_gets_one_rrset() {
    let s = start();
    let r = ask(&s, "www.example.com.", RecordType::ANY);
    assert_eq!(types(&r.answers), [RecordType::A]);
}

#[test]
fn rfc8906_8_2_unknown_opcode_type_and_malformed_queries() {
    let s = start();
    // 8.2.6: an unknown opcode gets NOTIMP, with RD copied and CD clear (as Knot answers).
    let mut q = query("www.example.com.", RecordType::A, None);
    q[2] = (q[2] & 0x87) | (15 << 3) | 0x01; // RD
    q[3] |= 0x10; // CD
    let r = Message::from_vec(&udp(&s, &q).unwrap()).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
    assert!(r.metadata.recursion_desired, "RD copied");
    assert!(!r.metadata.checking_disabled, "CD clear");
    // 8.2.2: an unknown type at an existing name is NODATA.
    let r = ask(&s, "www.example.com.", RecordType::Unknown(65000));
    assert_eq!(
        (r.metadata.response_code, r.answers.len()),
        (ResponseCode::NoError, 0)
    );
    assert!(r.metadata.authoritative);
    // RFC 1035 4.1.1: a malformed query gets FORMERR with its ID.
    let mut q = query("www.example.com.", RecordType::A, None);
    q.truncate(q.len() - 3);
    let r = Message::from_vec(&udp(&s, &q).unwrap()).unwrap();
    assert_eq!(
        (r.metadata.response_code, r.metadata.id),
        (ResponseCode::FormErr, 0x1234)
    );
    // A response is never answered (no reflection loops).
    let mut q = query("www.example.com.", RecordType::A, None);
    q[2] |= 0x80;
    assert!(udp(&s, &q).is_none());
}

#[test]
fn rfc1035_additional_section_has_in_zone_target_addresses() {
    let s = start();
    let r = ask(&s, "mx.example.com.", RecordType::MX);
    let extra: Vec<String> = r
        .additionals
        .iter()
        .map(|a| format!("{} {}", a.name, a.record_type()))
        .collect();
    assert_eq!(extra, ["www.example.com. A", "www.example.com. AAAA"]);
}

#[test]
fn tcp_connections_over_the_cap_are_closed() {
    let s = start_with("tcp_max_connections = 1");
    let mut first = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    // Make sure the server has accepted the first connection before opening the second.
    let q = query("www.example.com.", RecordType::A, None);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    first.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    first.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    first.read_exact(&mut body).unwrap();

    let mut second = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut buf = [0u8; 1];
    match second.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("over the cap the connection must be closed at once, got {other:?}"),
    }
    // The first connection still works.
    first.write_all(&framed).unwrap();
    first.read_exact(&mut len).unwrap();
}

/// RFC 768 / RFC 1035 4.2.1: every datagram is a query on its own. Bursts from several
/// senders at once (read by the server many per system call) get each query's own answer, to
/// its sender, with its ID; datagrams that get no answer (a response, a runt) in the middle of
/// a burst take nothing from the others.
#[test]
fn rfc1035_4_2_1_bursts_of_datagrams_get_every_answer_to_its_sender() {
    let server = start();
    const EACH: u16 = 60;
    let names = ["www.example.com.", "mx.example.com.", "a.b.example.com."];
    let senders: Vec<UdpSocket> = names
        .iter()
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s.connect(("127.0.0.1", server.port)).unwrap();
            s
        })
        .collect();
    let qtype = |name: &str| match name {
        "mx.example.com." => RecordType::MX,
        _ => RecordType::A,
    };
    for id in 0..EACH {
        for (socket, name) in senders.iter().zip(names) {
            let q = dns_user::server::answer::build_query(
                id,
                &Name::from_ascii(name).unwrap(),
                qtype(name),
                None,
            );
            socket.send(&q).unwrap();
            if id % 10 == 5 {
                let mut response = q.clone();
                response[2] |= 0x80; // QR=1: never answered
                socket.send(&response).unwrap();
                socket.send(&q[..5]).unwrap(); // shorter than a header: never answered
            }
        }
    }
    for (socket, name) in senders.iter().zip(names) {
        let mut ids = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf) {
            let m = Message::from_vec(&buf[..n]).unwrap();
            assert_eq!(m.queries[0].name().to_ascii(), name, "to its own sender");
            assert_eq!(m.metadata.message_type, MessageType::Response);
            assert!(!m.answers.is_empty(), "{name} #{}", m.metadata.id);
            ids.push(m.metadata.id);
            if ids.len() == usize::from(EACH) {
                break;
            }
        }
        ids.sort_unstable();
        assert_eq!(ids, (0..EACH).collect::<Vec<_>>(), "{name}: every ID once");
        socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        assert!(socket.recv(&mut buf).is_err(), "{name}: nothing more");
    }
}
