//! Differential test against Knot DNS: the same zone file served by knotd and by this server
//! (userspace, XDP off), both on loopback; a generated query set exercising every answer rule
//! is sent to both. Responses must agree on RCODE, AA, TC, EDNS presence and the RRsets in each
//! section. Deliberate differences are listed in `DELIBERATE` and in the README. The zone is
//! served as it is and signed (by BIND's `dnssec-signzone`, with NSEC and with NSEC3 opt-out),
//! then asked with the DO bit: both servers serve a zone signed elsewhere, with its RRSIGs and
//! denial proofs.

use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

const BIN: &str = env!("CARGO_BIN_EXE_dns-user-under-test");

const ZONE: &str = r#"$ORIGIN example.com.
$TTL 3600
@        IN SOA  ns1 hostmaster 2026112401 7200 900 1209600 300
@        IN NS   ns1
@        IN NS   ns2.example.net.
@        IN MX   10 mail
@        IN MX   20 mail2.example.net.
@        IN A    192.0.2.10
@        IN AAAA 2001:db8::10
@        IN TXT  "v=spf1 -all"
ns1      IN A    192.0.2.53
ns1      IN AAAA 2001:db8::53
mail     IN A    192.0.2.25
www  300 IN A    192.0.2.1
www  300 IN A    192.0.2.2
www      IN AAAA 2001:db8::1
alias    IN CNAME www
chain1   IN CNAME chain2
chain2   IN CNAME www
loop1    IN CNAME loop2
loop2    IN CNAME loop1
ext      IN CNAME www.example.net.
dangling IN CNAME nowhere
a.b.c    IN A    192.0.2.3
*.wild   IN A    192.0.2.7
*.wild   IN TXT  "wild"
specific.wild IN A 192.0.2.8
*.cw     IN CNAME www
_sip._udp IN SRV 10 5 5060 sip
sip      IN A    192.0.2.60
caa      IN CAA  0 issue "ca.example"
ptr      IN PTR  host.example.net.
types    IN SPF  "v=spf1 -all"
types    IN NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp
types    IN SSHFP 1 1 dd465c09cfa51fb45020cc83316fff21b9ec74ac
types    IN TLSA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6
types    IN SVCB 1 svc alpn=h2 port=8443
types    IN HTTPS 1 . alpn=h2,h3
types    IN TYPE65534 \# 4 0A000001
types    IN TXT  "quoted \"inner\" ; not a comment" "\010\255"
sub      IN NS   ns.sub
sub      IN NS   ns.other.example.net.
ns.sub   IN A    192.0.2.99
sub      IN DS   60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118
big      IN TXT  "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      IN TXT  "1123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      IN TXT  "2123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
"#;

/// Differences that are on purpose: (query name, type, what differs). Keep in sync with the
/// README's "Deliberate behaviour".
const DELIBERATE: &[(&str, &str)] = &[];

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling a child this test started, by its PID.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until_answering(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if ask(port, "example.com.", RecordType::SOA, None).is_some() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not start answering");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_knot(dir: &Path, zone_file: &Path) -> Server {
    let port = dns_tests::free_port();
    let conf = dir.join("knot.conf");
    std::fs::write(
        &conf,
        format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n\
             database:\n    storage: \"{d}\"\n\
             log:\n  - target: stderr\n    any: warning\n\
             zone:\n  - domain: example.com.\n    file: \"{z}\"\n    journal-content: none\n    zonefile-sync: -1\n",
            d = dir.display(),
            z = zone_file.display()
        ),
    )
    .unwrap();
    let mut child = Command::new("knotd")
        .args(["-c", conf.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("knotd (Debian package knot; scripts/bootstrap installs it)");
    wait_until_answering(port, &mut child, "knotd");
    Server { child, port }
}

fn start_ours(zone_file: &Path) -> Server {
    let port = dns_tests::free_port();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--zone-file",
            &format!("example.com.={}", zone_file.display()),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--xdp-mode",
            "off",
            "--no-api",
            "--store",
            &zone_file.with_extension("store").display().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    wait_until_answering(port, &mut child, "dns-user");
    Server { child, port }
}

/// Asks `name`/`qtype`, with EDNS (payload size, DO) or without.
fn ask(port: u16, name: &str, qtype: RecordType, edns: Option<(u16, bool)>) -> Option<Message> {
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some((size, dnssec_ok)) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        e.set_dnssec_ok(dnssec_ok);
        m.set_edns(e);
    }
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    socket
        .send_to(&m.to_vec().ok()?, ("127.0.0.1", port))
        .ok()?;
    let mut buf = [0u8; 65535];
    let (len, _) = socket.recv_from(&mut buf).ok()?;
    Message::from_vec(&buf[..len]).ok()
}

/// What must agree between the two servers.
fn summary(m: &Message) -> Vec<String> {
    let section = |name: &str, records: &[hickory_proto::rr::Record]| {
        let set: BTreeSet<String> = records
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} {}",
                    r.name.to_lowercase(),
                    r.ttl,
                    r.record_type(),
                    r.data.to_string().to_lowercase()
                )
            })
            .collect();
        format!("{name}: {set:?}")
    };
    vec![
        format!("rcode: {}", u16::from(m.metadata.response_code)),
        format!(
            "aa: {} tc: {}",
            m.metadata.authoritative, m.metadata.truncation
        ),
        format!("edns: {}", m.edns.is_some()),
        section("answer", &m.answers),
        section("authority", &m.authorities),
        section("additional", &m.additionals),
    ]
}

#[test]
fn answers_agree_with_knot() {
    let dir = std::env::temp_dir().join(format!("dnsx-knot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let zone_file = dir.join("example.com.zone");
    std::fs::write(&zone_file, ZONE).unwrap();
    compare_with_knot(&dir, &zone_file, false);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn signed_answers_agree_with_knot() {
    signed_with(&[], "nsec");
}

#[test]
fn nsec3_signed_answers_agree_with_knot() {
    // RFC 9276: no extra iterations, no salt; opt-out, for the insecure delegation.
    signed_with(&["-3", "-", "-A"], "nsec3");
}

/// Signs ZONE with `dnssec-signzone` and `options` and compares DO answers with Knot's.
fn signed_with(options: &[&str], tag: &str) {
    let dir = std::env::temp_dir().join(format!("dnsx-knot-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("example.com.zone"), ZONE).unwrap();
    dns_tests::signer::sign_zone(&dir, "example.com.", "example.com.zone", options);
    compare_with_knot(&dir, &dir.join("signed.zone"), true);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Serves `zone_file` with knotd and with this server and compares their answers to the query
/// set, every query with the DO bit if `dnssec`.
fn compare_with_knot(dir: &Path, zone_file: &Path, dnssec: bool) {
    let knot = start_knot(dir, zone_file);
    let ours = start_ours(zone_file);

    let names = [
        "example.com.",
        "EXAMPLE.com.",
        "www.example.com.",
        "WwW.ExAmPlE.CoM.",
        "ns1.example.com.",
        "mail.example.com.",
        "alias.example.com.",
        "chain1.example.com.",
        "loop1.example.com.",
        "ext.example.com.",
        "dangling.example.com.",
        "a.b.c.example.com.",
        "b.c.example.com.",
        "c.example.com.",
        "nope.example.com.",
        "x.nope.example.com.",
        "x.wild.example.com.",
        "specific.wild.example.com.",
        "deep.x.wild.example.com.",
        "wild.example.com.",
        "*.wild.example.com.",
        "y.cw.example.com.",
        "_sip._udp.example.com.",
        "sip.example.com.",
        "caa.example.com.",
        "ptr.example.com.",
        "sub.example.com.",
        "ns.sub.example.com.",
        "host.sub.example.com.",
        "big.example.com.",
        "example.org.",
        "com.",
    ];
    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::MX,
        RecordType::TXT,
        RecordType::NS,
        RecordType::SOA,
        RecordType::CNAME,
        RecordType::SRV,
        RecordType::CAA,
        RecordType::PTR,
        RecordType::DS,
        RecordType::ANY,
    ];
    let mut queries = Vec::new();
    for name in names {
        for qtype in types {
            queries.push((name, qtype, dnssec.then_some(1232)));
        }
    }
    if dnssec {
        for name in ["example.com.", "www.example.com.", "x.wild.example.com."] {
            for qtype in [
                RecordType::DNSKEY,
                RecordType::RRSIG,
                RecordType::NSEC,
                RecordType::NSEC3PARAM,
            ] {
                queries.push((name, qtype, Some(1232)));
            }
        }
    }
    for size in [512, 1232, 4096] {
        for name in ["big.example.com.", "www.example.com.", "example.com."] {
            for qtype in [
                RecordType::TXT,
                RecordType::A,
                RecordType::NS,
                RecordType::MX,
            ] {
                queries.push((name, qtype, Some(size)));
            }
        }
    }

    let mut differences = Vec::new();
    for (name, qtype, edns) in &queries {
        let edns = edns.map(|size| (size, dnssec));
        let k = ask(knot.port, name, *qtype, edns).expect("knot answers");
        let o = ask(ours.port, name, *qtype, edns).expect("we answer");
        let (ks, os) = (summary(&k), summary(&o));
        if ks != os
            && !DELIBERATE
                .iter()
                .any(|(n, t)| n == name && *t == qtype.to_string())
        {
            let diff: Vec<String> = ks
                .iter()
                .zip(&os)
                .filter(|(a, b)| a != b)
                .map(|(a, b)| format!("    knot {a}\n    ours {b}"))
                .collect();
            differences.push(format!("{name} {qtype} edns={edns:?}\n{}", diff.join("\n")));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} queries differ from Knot DNS:\n{}",
        differences.len(),
        queries.len(),
        differences.join("\n")
    );
}
