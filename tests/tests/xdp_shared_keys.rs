//! Names that share an answer-map key never get each other's answers. The key is a 64-bit
//! hash of the name (with its length and type); the entry holds the name and the XDP program
//! compares it. Real collisions are too rare to meet in a test, so this process keeps only two
//! bits of every hash (`compile::set_key_hash_mask`, and the program's `HASH_MASK` global, the
//! test hook for exactly this): most names of a length then share a key with another.
//!
//! A test binary of its own: the mask holds for the whole process.
//!
//! Needs root (BPF_PROG_TEST_RUN).

use std::net::Ipv4Addr;
use std::path::Path;

use aya::programs::{TestRun, TestRunOptions};
use dns_common::{Counter, PROGRAM_NAME, TYPE_A};
use dns_tests::fixtures::q;
use dns_tests::frame::*;
use dns_user::fastpath::compile::{compile, compile_touched, set_key_hash_mask};
use dns_user::fastpath::maps::MapWriter;
use dns_user::fastpath::xdp::{self, LoadOptions};
use dns_user::health::HealthState;
use dns_user::metrics::XdpCounters;
use dns_user::server::answer::{AnswerOptions, Transport, respond};
use dns_user::zone::{Catalog, Zone, parse_zone_text};
use hickory_proto::rr::{LowerName, Name};

const MASK: u64 = 0b11;
const NAMES: u32 = 200;

/// `h0` … `h199` (A 10.0.x.y), and `www` and `mail` beside them.
fn zone(without: Option<u32>) -> Catalog {
    let mut text = String::from(
        "$TTL 300\n@ IN SOA ns hostmaster 1 7200 900 1209600 300\n@ IN NS ns\nns IN A 192.0.2.53\n",
    );
    for i in (0..NAMES).filter(|i| Some(*i) != without) {
        text += &format!("h{i} IN A {}\n", address(i));
    }
    text += "www IN A 192.0.2.80\nmail IN A 192.0.2.25\n";
    let origin = Name::from_ascii("example.com.").unwrap();
    let path = Path::new("shared.zone");
    let records = parse_zone_text(&origin, &text, path).unwrap();
    Catalog::new([Zone::from_records(origin, records, Vec::new(), Vec::new(), path).unwrap()])
}

fn address(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 + i)
}

struct Run {
    ebpf: aya::Ebpf,
    counters: XdpCounters,
}

impl Run {
    fn query(&mut self, name: &str) -> (u32, Vec<u8>) {
        let frame = Frame::query(false).build(&q(name, TYPE_A));
        let prog = xdp::program(&mut self.ebpf, PROGRAM_NAME).unwrap();
        let mut out = vec![0u8; 4096];
        let result = prog
            .test_run(TestRunOptions {
                data_in: Some(&frame),
                data_out: Some(&mut out),
                ..Default::default()
            })
            .expect("BPF_PROG_TEST_RUN");
        out.truncate(result.data_size_out as usize);
        (result.return_value, out)
    }

    fn misses(&self) -> u64 {
        let counters = self.counters.read();
        counters
            .iter()
            .find(|(c, _)| *c == Counter::Miss)
            .unwrap()
            .1
    }
}

fn userspace(catalog: &Catalog, name: &str) -> Vec<u8> {
    let options = AnswerOptions {
        edns_udp_size: 1232,
        ..Default::default()
    };
    let payload = q(name, TYPE_A);
    respond(
        catalog,
        &HealthState::default(),
        &options,
        &payload,
        Transport::Udp,
        std::net::IpAddr::V4(CLIENT_V4),
    )
    .unwrap()
}

/// Every name is answered by XDP exactly as userspace answers it, or passed up (a miss): none
/// ever gets the answer of the name it shares a key with. Then a change removes names that
/// hold shared keys: the compiler falls back to a full compile and the names that waited get
/// their keys.
#[test]
fn names_sharing_a_key_are_answered_as_themselves_or_passed_up() {
    set_key_hash_mask(MASK);
    let mut ebpf = xdp::load(&LoadOptions {
        max_entries: 1024,
        hash_mask: MASK,
        ..Default::default()
    })
    .expect("loading the XDP program needs root (CAP_BPF); run the tests as root");
    let mut writer = MapWriter::new(&mut ebpf, 1024).unwrap();
    let catalog = zone(None);
    let (tables, report) = compile(&catalog, &HealthState::default());
    // Lengths: h0-h9, h10-h99, h100-h199 (and www, mail) with 4 hashes each: at most 4 entries
    // per (length, type).
    assert!(
        report.shared_keys > 150,
        "names share keys: {}",
        report.shared_keys
    );
    assert_eq!(tables.shared_keys, report.shared_keys);
    writer.install_owned(tables).unwrap();
    writer.set_enabled(true).unwrap();
    let counters = XdpCounters::take(&mut ebpf).unwrap();
    let mut run = Run { ebpf, counters };

    let check = |run: &mut Run, catalog: &Catalog, removed: Option<u32>| {
        let (mut answered, mut passed) = (0, 0);
        for i in (0..NAMES).filter(|i| Some(*i) != removed) {
            // Mixed case: the program lower-cases before hashing and comparing.
            let name = format!("H{i}.Example.com");
            let before = run.misses();
            let (action, out) = run.query(&name);
            match action {
                XDP_TX => {
                    let expected = userspace(catalog, &name);
                    assert_eq!(&out[out.len() - expected.len()..], &expected[..], "{name}");
                    answered += 1;
                }
                XDP_PASS => {
                    assert_eq!(run.misses(), before + 1, "{name}: passed as a miss");
                    passed += 1;
                }
                other => panic!("{name}: action {other}"),
            }
        }
        (answered, passed)
    };
    let (answered, passed) = check(&mut run, &catalog, None);
    eprintln!("{answered} answered by XDP, {passed} passed up (their key held by another)");
    assert!(answered >= 3 && passed > 150, "{answered} / {passed}");

    // A query for a name the zone lacks, with the length and (masked) hash of one it has: the
    // entry's name differs, so it goes up.
    let (action, _) = run.query("h999.example.com");
    assert_eq!(action, XDP_PASS);

    // Remove one name that holds a key (answered by XDP): the change is compiled whole (shared
    // keys), equals a fresh compile, and the name that waited for the key is answered now.
    let holder = (0..NAMES)
        .find(|i| run.query(&format!("h{i}.example.com")).0 == XDP_TX)
        .unwrap();
    let smaller = zone(Some(holder));
    let touched = vec![(
        LowerName::new(&Name::from_ascii("example.com.").unwrap()),
        [LowerName::new(
            &Name::from_ascii(format!("h{holder}.example.com.")).unwrap(),
        )]
        .into(),
    )];
    let (change, incremental) = compile_touched(
        &smaller,
        &HealthState::default(),
        &touched,
        writer.installed(),
    );
    assert!(!incremental, "shared keys: compiled whole");
    writer.apply(&change).unwrap();
    let (fresh, _) = compile(&smaller, &HealthState::default());
    assert_eq!(writer.installed(), &fresh);
    assert_eq!(writer.installed().shared_keys, fresh.shared_keys);
    let (action, _) = run.query(&format!("h{holder}.example.com"));
    assert_eq!(action, XDP_PASS, "the removed name is gone");
    let (answered_after, _) = check(&mut run, &smaller, Some(holder));
    assert_eq!(answered_after, answered, "another name took the key");
}
