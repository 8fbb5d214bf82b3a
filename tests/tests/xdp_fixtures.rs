//! The XDP program run through BPF_PROG_TEST_RUN against a fixture table: input frame,
//! expected action and counter, expected output bytes. Maps are filled by the production map
//! compiler and writer. For every answered fixture the expected output is built independently
//! (headers swapped, checksums computed here) around the userspace server's answer to the same
//! query, so "fast path = slow path" is checked byte for byte.
//!
//! Needs root (CAP_BPF + CAP_NET_ADMIN); it fails, never skips, without it.

use std::net::Ipv4Addr;

use aya::Ebpf;
use aya::programs::{TestRun, TestRunOptions};
use dns_common::{AnswerKey, AnswerSet, Counter, PROGRAM_NAME, TYPE_A, TYPE_AAAA, TapRecord};
use dns_tests::fixtures::{Expect, Fixture, fixtures, q};
use dns_tests::frame::*;
use dns_user::fastpath::compile::{Change, Delta, Tables, compile, entry, key, render};
use dns_user::fastpath::maps::{Capacity, MapWriteError, MapWriter};
use dns_user::fastpath::xdp::{self, LoadOptions};
use dns_user::health::HealthState;
use dns_user::metrics::XdpCounters;
use dns_user::server::answer::{AnswerOptions, Transport, respond};
use dns_user::zone::Catalog;
use dns_user::zone::RrSet;
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{LowerName, Name, RData, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

const EDNS_SIZE: u16 = 1232;

struct Harness {
    ebpf: Ebpf,
    writer: MapWriter,
    counters: XdpCounters,
    catalog: Catalog,
}

impl Harness {
    fn new(catalog: Catalog, max_entries: u32) -> Harness {
        Self::with_growth(catalog, max_entries, false)
    }

    fn with_growth(catalog: Catalog, max_entries: u32, grow_at_head: bool) -> Harness {
        Self::with_options(catalog, max_entries, grow_at_head, None, None, 0)
    }

    fn with_options(
        catalog: Catalog,
        max_entries: u32,
        grow_at_head: bool,
        fixed_draw: Option<u32>,
        rrl: Option<dns_user::rrl::RrlConfig>,
        tap_sample: u32,
    ) -> Harness {
        let mut ebpf = xdp::load(&LoadOptions {
            port: 53,
            edns_udp_size: EDNS_SIZE,
            max_entries,
            max_variants: None,
            grow_at_head,
            fixed_draw,
            hash_mask: u64::MAX,
            rrl,
            tap_sample,
        })
        .expect("loading the XDP program needs root (CAP_BPF); run the tests as root");
        let mut writer = MapWriter::new(&mut ebpf, max_entries).unwrap();
        let (table, _) = compile(&catalog, &HealthState::default());
        // As the daemon starts: straight into the empty maps, the table kept as installed.
        writer.install_owned(table.clone()).unwrap();
        assert_eq!(writer.installed(), &table);
        writer.set_enabled(true).unwrap();
        let counters = XdpCounters::take(&mut ebpf).unwrap();
        Harness {
            ebpf,
            writer,
            counters,
            catalog,
        }
    }

    /// Runs one frame; returns (action, output frame).
    fn run(&mut self, frame: &[u8]) -> (u32, Vec<u8>) {
        let prog = xdp::program(&mut self.ebpf, PROGRAM_NAME).unwrap();
        let mut out = vec![0u8; 4096];
        let result = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ..Default::default()
            })
            .expect("BPF_PROG_TEST_RUN");
        out.truncate(result.data_size_out as usize);
        (result.return_value, out)
    }

    fn counter(&self, c: Counter) -> u64 {
        self.counters
            .read()
            .into_iter()
            .find(|(k, _)| *k == c)
            .map(|(_, n)| n)
            .unwrap()
    }

    fn userspace(&self, payload: &[u8]) -> Vec<u8> {
        respond(
            &self.catalog,
            &HealthState::default(),
            &AnswerOptions {
                edns_udp_size: EDNS_SIZE,
                ..Default::default()
            },
            payload,
            Transport::Udp,
            std::net::IpAddr::V4(CLIENT_V4),
        )
        .expect("userspace answers every fixture query")
    }
}

#[test]
fn fixture_table_and_fast_path_equals_slow_path() {
    run_fixture_table(Harness::new(catalog(), 1024));
}

/// The same table with responses grown at the head (the path taken when a driver leaves too
/// little tailroom, e.g. veth in native mode).
#[test]
fn fixture_table_with_growth_at_the_head() {
    run_fixture_table(Harness::with_growth(catalog(), 1024, true));
}

/// The table again with dnstap sampling every answer (both growth paths): the answers are
/// the same bytes, and each answer's ring record holds exactly the query as received and the
/// response as sent, with the frame's addresses and ports; a passed packet is never logged.
#[test]
fn fixture_table_with_every_answer_tapped_for_dnstap() {
    for grow_at_head in [false, true] {
        let mut h = Harness::with_options(catalog(), 1024, grow_at_head, None, None, 1);
        let ring = h.ebpf.take_map(dns_common::TAP_MAP).unwrap();
        let mut ring = aya::maps::RingBuf::try_from(ring).unwrap();
        let tapped = std::cell::RefCell::new(0);
        let mut check = |f: &Fixture, response: Option<&[u8]>| {
            let record = ring.next().map(|item| {
                assert!(item.len() >= size_of::<TapRecord>());
                // SAFETY: the length is checked; TapRecord is plain data.
                unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<TapRecord>()) }
            });
            let Some(response) = response else {
                assert!(record.is_none(), "{}: a passed packet was logged", f.name);
                return;
            };
            let rec = record.unwrap_or_else(|| panic!("{}: no TAP record", f.name));
            let event = dns_user::fastpath::tap::event(&rec, dns_user::fastpath::tap::Clock::now());
            assert_eq!(event.query, f.payload, "{}: the query as received", f.name);
            assert_eq!(
                event.response.unwrap().1,
                response,
                "{}: the response as sent",
                f.name
            );
            let ends = (
                std::net::SocketAddr::new(f.frame.src, f.frame.sport),
                std::net::SocketAddr::new(f.frame.dst, f.frame.dport),
            );
            assert_eq!((event.client, event.server), ends, "{}", f.name);
            *tapped.borrow_mut() += 1;
        };
        let answered = run_fixture_table_with(&mut h, &mut check);
        assert_eq!(*tapped.borrow(), answered, "grow_at_head {grow_at_head}");
    }
}

fn run_fixture_table(mut h: Harness) {
    run_fixture_table_with(&mut h, &mut |_, _| {});
}

/// Runs every fixture, calling `after` with each one and its DNS response (`None` if passed);
/// returns how many were answered.
fn run_fixture_table_with(
    h: &mut Harness,
    after: &mut dyn FnMut(&Fixture, Option<&[u8]>),
) -> usize {
    let mut answered = 0;
    for f in fixtures() {
        let input = f.input();
        let before = h.counter(match f.expect {
            Expect::Tx => Counter::Answered,
            Expect::Pass(c) => c,
        });
        let (action, out) = h.run(&input);
        match f.expect {
            Expect::Tx => {
                assert_eq!(action, XDP_TX, "{}: expected XDP_TX", f.name);
                let userspace = h.userspace(&f.payload);
                let expected = f.frame.response().build(&userspace);
                assert_eq!(
                    out[f.frame.dns_offset()..],
                    userspace[..],
                    "{}: XDP's DNS payload differs from the userspace answer",
                    f.name
                );
                assert_eq!(
                    out, expected,
                    "{}: frame bytes (headers, checksums)",
                    f.name
                );
                answered += 1;
                assert_eq!(h.counter(Counter::Answered), before + 1, "{}", f.name);
                after(&f, Some(&out[f.frame.dns_offset()..]));
            }
            Expect::Pass(c) => {
                assert_eq!(action, XDP_PASS, "{}: expected XDP_PASS", f.name);
                assert_eq!(out, input, "{}: a passed frame must be untouched", f.name);
                assert_eq!(h.counter(c), before + 1, "{}: counter {:?}", f.name, c);
                after(&f, None);
            }
        }
    }
    assert!(answered >= 15);
    answered
}

#[test]
fn disabled_fast_path_passes_everything() {
    let mut h = Harness::new(catalog(), 1024);
    h.writer.set_enabled(false).unwrap();
    let input = Frame::query(false).build(&q("www.example.com", TYPE_A));
    let (action, out) = h.run(&input);
    assert_eq!(action, XDP_PASS);
    assert_eq!(out, input);
    assert_eq!(h.counter(Counter::Disabled), 1);
    h.writer.set_enabled(true).unwrap();
    assert_eq!(h.run(&input).0, XDP_TX);
}

fn a_set(ttl: u32, addrs: &[Ipv4Addr]) -> RrSet {
    RrSet {
        rtype: RecordType::A,
        ttl,
        rdatas: addrs.iter().map(|a| RData::A(A(*a))).collect(),
    }
}

/// The answer-map entry of `name`'s A records `set`.
fn entry_a(name: &LowerName, set: &RrSet) -> (AnswerKey, AnswerSet) {
    entry(name, RecordType::A, render(set).unwrap()).unwrap()
}

fn answer_addr(out: &[u8]) -> Ipv4Addr {
    let n = out.len();
    Ipv4Addr::new(out[n - 4], out[n - 3], out[n - 2], out[n - 1])
}

#[test]
fn map_writer_updates_removes_and_rejects_over_capacity() {
    let mut h = Harness::new(catalog(), 64);
    let www = LowerName::new(&Name::from_ascii("www.example.com.").unwrap());
    let frame = Frame::query(false);
    let input = frame.build(&q("www.example.com", TYPE_A));

    // Change the answer: the next query sees the new one (and only it).
    let mut table: Tables = h.writer.installed().clone();
    table
        .answers
        .extend([entry_a(&www, &a_set(30, &[Ipv4Addr::new(198, 51, 100, 7)]))]);
    let stats = h.writer.install(&table).unwrap();
    assert_eq!((stats.upserts, stats.deletes), (1, 0));
    let (action, out) = h.run(&input);
    assert_eq!(action, XDP_TX);
    assert_eq!(answer_addr(&out), Ipv4Addr::new(198, 51, 100, 7));
    // Install again (the other buffer becomes active): still the same answer.
    table
        .answers
        .extend([entry_a(&www, &a_set(30, &[Ipv4Addr::new(198, 51, 100, 8)]))]);
    h.writer.install(&table).unwrap();
    assert_eq!(
        answer_addr(&h.run(&input).1),
        Ipv4Addr::new(198, 51, 100, 8)
    );

    // Remove it: a miss, passed up.
    table.answers.remove(&key(&www, RecordType::A));
    let stats = h.writer.install(&table).unwrap();
    assert_eq!((stats.upserts, stats.deletes), (0, 1));
    assert_eq!(h.run(&input).0, XDP_PASS);

    // Over capacity: rejected whole, readers keep the previous table.
    let mut huge = table.clone();
    for i in 0..100u32 {
        let name = LowerName::new(&Name::from_ascii(format!("h{i}.example.com.")).unwrap());
        huge.answers
            .extend([entry_a(&name, &a_set(5, &[Ipv4Addr::from(i)]))]);
    }
    assert!(matches!(
        h.writer.install(&huge),
        Err(MapWriteError::Capacity { .. })
    ));
    assert_eq!(h.writer.installed(), &table);
    let mail = frame.build(&q("mail.example.com", TYPE_A));
    assert_eq!(answer_addr(&h.run(&mail).1), Ipv4Addr::new(192, 0, 2, 25));
}

/// A daemon that is gone left its maps pinned (xdp.pin_dir): a program loaded over them
/// answers what they hold before anything is written; the first install makes each buffer
/// hold exactly the new table (a name only the old table had is gone from both), and the
/// fixture table then answers byte for byte as userspace.
#[test]
fn maps_left_pinned_are_taken_over_and_rewritten_whole() {
    let mount = std::env::temp_dir().join(format!("dnsx-pins-{}", std::process::id()));
    let bpffs = dns_tests::BpfFs::mount(&mount).unwrap();
    let options = LoadOptions {
        edns_udp_size: EDNS_SIZE,
        max_entries: 1024,
        ..Default::default()
    };
    let name = |n: &str| LowerName::new(&Name::from_ascii(n).unwrap());
    let frame = Frame::query(false);
    let www = frame.build(&q("www.example.com", TYPE_A));
    let gone = frame.build(&q("gone.example.com", TYPE_A));
    let old_www = Ipv4Addr::new(198, 51, 100, 7);
    {
        // The daemon before: the fixture zone, www changed, and a name the next one lacks.
        let mut ebpf = xdp::load_pinned(&options, &bpffs.path).unwrap();
        let mut writer = MapWriter::new(&mut ebpf, 1024).unwrap();
        let (mut table, _) = compile(&catalog(), &HealthState::default());
        for (n, addr) in [
            ("www.example.com.", old_www),
            ("gone.example.com.", old_www),
        ] {
            table
                .answers
                .extend([entry_a(&name(n), &a_set(30, &[addr]))]);
        }
        writer.install_owned(table).unwrap();
        writer.set_enabled(true).unwrap();
    } // gone without a clean stop: the pinned maps stay

    let mut ebpf = xdp::load_pinned(&options, &bpffs.path).unwrap();
    let writer = MapWriter::adopt(&mut ebpf, Capacity::of(1024)).unwrap();
    let counters = XdpCounters::take(&mut ebpf).unwrap();
    let mut h = Harness {
        ebpf,
        writer,
        counters,
        catalog: catalog(),
    };
    let (action, out) = h.run(&www);
    assert_eq!(action, XDP_TX, "answers on from the maps it took over");
    assert_eq!(answer_addr(&out), old_www);
    assert_eq!(h.run(&gone).0, XDP_TX);

    let (table, _) = compile(&h.catalog, &HealthState::default());
    h.writer.install_owned(table.clone()).unwrap();
    assert_eq!(h.writer.installed(), &table);
    assert_eq!(h.run(&gone).0, XDP_PASS);
    assert_ne!(answer_addr(&h.run(&www).1), old_www);
    // A change makes the other buffer the readers': it was rewritten whole too.
    let mut changed = table.clone();
    changed.answers.extend([entry_a(
        &name("new.example.com."),
        &a_set(30, &[Ipv4Addr::new(192, 0, 2, 200)]),
    )]);
    h.writer.install(&changed).unwrap();
    assert_eq!(
        h.run(&gone).0,
        XDP_PASS,
        "the stale name is gone from both buffers"
    );
    h.writer.install(&table).unwrap();
    run_fixture_table(h);
    drop(bpffs);
}

/// A change to the answer map only.
fn answers(
    upserts: Vec<(dns_common::AnswerKey, dns_common::AnswerSet)>,
    deletes: Vec<dns_common::AnswerKey>,
) -> Change {
    Change {
        answers: Delta { upserts, deletes },
        ..Default::default()
    }
}

#[test]
fn map_writer_applies_a_delta_without_a_full_table() {
    let mut h = Harness::new(catalog(), 64);
    let name = |n: &str| LowerName::new(&Name::from_ascii(n).unwrap());
    let input = Frame::query(false).build(&q("www.example.com", TYPE_A));
    let new_set = a_set(30, &[Ipv4Addr::new(198, 51, 100, 9)]);
    let (added, new_www) = entry_a(&name("new.example.com."), &new_set);
    let stats = h
        .writer
        .apply(&answers(
            vec![
                entry_a(&name("www.example.com."), &new_set),
                (added, new_www),
            ],
            vec![],
        ))
        .unwrap();
    assert_eq!((stats.upserts, stats.deletes), (2, 0));
    assert_eq!(
        answer_addr(&h.run(&input).1),
        Ipv4Addr::new(198, 51, 100, 9)
    );
    let new = Frame::query(false).build(&q("new.example.com", TYPE_A));
    assert_eq!(h.run(&new).0, XDP_TX);
    assert_eq!(h.writer.installed().answers.get(&added), Some(&new_www));
    // A key in both lists ends up deleted, in the maps and in the writer's record.
    h.writer
        .apply(&answers(vec![(added, new_www)], vec![added]))
        .unwrap();
    assert_eq!(h.run(&new).0, XDP_PASS);
    assert!(!h.writer.installed().answers.contains_key(&added));
    // Over capacity: nothing changes.
    let many: Vec<_> = (0..64u32)
        .map(|i| entry_a(&name(&format!("m{i}.example.com.")), &new_set))
        .collect();
    let before = h.writer.installed().clone();
    assert!(matches!(
        h.writer.apply(&answers(many, vec![])),
        Err(MapWriteError::Capacity { .. })
    ));
    assert_eq!(h.writer.installed(), &before);
}

#[test]
fn a_first_install_over_capacity_is_refused_whole() {
    let (table, _) = compile(&catalog(), &HealthState::default());
    let small = table.answers.len() as u32 - 1;
    let mut ebpf = xdp::load(&LoadOptions {
        max_entries: small,
        ..Default::default()
    })
    .expect("loading the XDP program needs root (CAP_BPF); run the tests as root");
    let mut writer = MapWriter::new(&mut ebpf, small).unwrap();
    assert!(matches!(
        writer.install_owned(table.clone()),
        Err(MapWriteError::Capacity { .. })
    ));
    assert!(writer.installed().answers.is_empty(), "nothing installed");
    // With room, the same table goes in.
    let mut ebpf = xdp::load(&LoadOptions {
        max_entries: small + 1,
        ..Default::default()
    })
    .unwrap();
    let mut writer = MapWriter::new(&mut ebpf, small + 1).unwrap();
    let stats = writer.install_owned(table.clone()).unwrap();
    assert_eq!(
        stats.upserts,
        table.answers.len() + table.variants.len() + table.cells.len()
    );
    assert_eq!(writer.installed(), &table);
}

#[test]
fn hash_bucket_collisions_never_give_another_names_answer() {
    // 4000 names in one map: the kernel hash table has many shared buckets; every name must
    // still get exactly its own address.
    const N: u32 = 4000;
    let mut h = Harness::new(catalog(), N + 64);
    let mut table = h.writer.installed().clone();
    for i in 0..N {
        let name = LowerName::new(&Name::from_ascii(format!("h{i}.example.com.")).unwrap());
        table.answers.extend([entry_a(
            &name,
            &a_set(5, &[Ipv4Addr::from(0x0a00_0000 + i)]),
        )]);
    }
    h.writer.install(&table).unwrap();
    for i in 0..N {
        let input = Frame::query(false).build(&q(&format!("H{i}.example.com"), TYPE_A));
        let (action, out) = h.run(&input);
        assert_eq!(action, XDP_TX, "h{i}");
        assert_eq!(answer_addr(&out), Ipv4Addr::from(0x0a00_0000 + i), "h{i}");
    }
}

/// For every routing policy, client network and a spread of pinned random draws: the XDP
/// answer equals, byte for byte, the userspace answer given the random source that stands for
/// the same slot; a NODATA answer is passed up. Also with a health state that changes the
/// latency -> failover tree.
/// The names of the policy fixtures, one per routing policy (and AAAA, and an alias tree).
const POLICY_NAMES: &[(&str, u16)] = &[
    ("w.example.com", TYPE_A),
    ("w.example.com", 28),
    ("mv.example.com", TYPE_A),
    ("geo.example.com", TYPE_A),
    ("fronly.example.com", TYPE_A),
    ("lat.example.com", TYPE_A),
    ("ip.example.com", TYPE_A),
    ("prox.example.com", TYPE_A),
    ("tree.example.com", TYPE_A),
    ("wa.example.com", TYPE_A),
];

fn ecs(addr: &str, prefix: u8) -> Option<Vec<u8>> {
    Some(dns_tests::fixtures::ecs(addr.parse().unwrap(), prefix))
}

#[test]
fn every_routing_policy_answers_in_xdp_exactly_as_userspace() {
    let clients: Vec<Option<Vec<u8>>> = vec![
        None, // the frame's source address (192.0.2.2: no table entry)
        ecs("198.51.100.0", 24),
        ecs("203.0.113.128", 25),
        ecs("203.0.0.0", 16), // shorter than every block
        ecs("2001:db8:1:2::", 64),
        ecs("0.0.0.0", 0),
    ];
    let (answered, passed) =
        policy_answers_compared(&dns_tests::fixtures::policy_catalog, &clients, 0);
    assert!(
        answered > 1400 && passed > 0,
        "{answered} answered, {passed} passed"
    );
}

/// The policy zone signed here: every routing policy's DO answer, from every client, is the
/// variant's records and their RRSIG in XDP, byte for byte what userspace signs and sends.
#[test]
fn every_routing_policy_of_a_zone_signed_here_answers_do_in_xdp_as_userspace() {
    use dns_user::signing::{KeyMaterial, Signer, keys};
    let key = || KeyMaterial {
        algorithm: 13,
        pkcs8: keys::generate(13).unwrap(),
    };
    let apex = Name::from_ascii("example.com.").unwrap();
    let signer = std::sync::Arc::new(Signer::new(apex, &[key()], &key(), &[], 3_600).unwrap());
    let signed = |down: &[&str]| {
        let (catalog, health) = dns_tests::fixtures::policy_catalog(down);
        (catalog.with_signers([signer.clone()]), health)
    };
    let clients: Vec<Option<Vec<u8>>> = vec![
        None,
        ecs("198.51.100.0", 24),
        ecs("203.0.113.128", 25),
        ecs("2001:db8:1:2::", 64),
    ];
    let (answered, passed) = policy_answers_compared(&signed, &clients, 0x8000);
    assert!(
        answered > 900 && passed > 0,
        "{answered} answered, {passed} passed"
    );
}

/// Located by a MaxMind database instead of the geo table: every group compiles, the classes
/// (not the networks) make the variants, and every A/AAAA query with an answer is answered by
/// XDP exactly as by userspace; clients in MaxMind's IPv4 aliases go up.
#[test]
fn routing_policies_located_by_a_maxmind_database_answer_in_xdp_as_userspace() {
    let clients: Vec<Option<Vec<u8>>> = vec![
        None, // 192.0.2.2: Australia; 2001:db8::2: not in the database
        ecs("198.51.100.0", 24),
        ecs("198.51.101.0", 24), // another network of the same class as Paris
        ecs("198.51.102.0", 24), // inside the Lyon /23
        ecs("198.51.102.0", 23),
        ecs("198.51.100.0", 22), // shorter than the networks: the tables' default
        ecs("203.0.113.128", 25), // Washington
        ecs("203.0.113.0", 25),  // Oregon
        ecs("203.0.113.0", 24),  // shorter than both /25: not located by the database
        ecs("203.0.0.0", 16),
        ecs("100.64.1.0", 24), // Japan
        ecs("100.64.0.0", 10),
        ecs("2001:db8:1:2::", 64),
        ecs("2001:db8:2::", 48),
        ecs("2001:db8::", 40),
        ecs("0.0.0.0", 0),
    ];
    let maxmind = &dns_tests::fixtures::policy_catalog_located_by_maxmind;
    // One variant per class of the aspect a group depends on: the database's 9 networks hold
    // 6 places (+ "nowhere"); geolocation has 7 variants, not one per network.
    let (catalog, health) = maxmind(&[]);
    let cells = catalog.locations().cells();
    assert_eq!(cells.unusable, None);
    assert_eq!(cells.classes(dns_common::ASPECT_GEO).len(), 7);
    let (tables, _) = compile(&catalog, &health);
    let geo = key(
        &LowerName::new(&Name::from_ascii("geo.example.com").unwrap()),
        RecordType::A,
    );
    let group = tables.answers[&geo].policy_ref().unwrap();
    assert_eq!((group.located, group.aspect), (1, dns_common::ASPECT_GEO));
    let variants = tables
        .variants
        .keys()
        .filter(|k| k.group == group.group)
        .count();
    assert_eq!(variants, 7);

    let (answered, passed) = policy_answers_compared(maxmind, &clients, 0);
    eprintln!("{answered} answered by XDP as by userspace, {passed} NODATA passed up");
    assert!(
        answered > 4000 && passed > 0,
        "{answered} answered, {passed} passed"
    );

    // The database locates: FR, NA; a prefix shorter than the database's networks and a
    // country without a record get the default.
    let mut h = Harness::with_options(catalog, 4096, false, Some(0), None, 0);
    h.writer.install(&tables).unwrap();
    for (option, expect) in [
        (ecs("198.51.101.0", 24), [192, 0, 2, 31]),
        (ecs("203.0.113.128", 25), [192, 0, 2, 32]),
        (ecs("203.0.113.0", 24), [192, 0, 2, 33]),
        (ecs("100.64.1.0", 24), [192, 0, 2, 33]),
    ] {
        let payload = q_edns_payload("geo.example.com", TYPE_A, option.as_ref().unwrap());
        let frame = Frame::query(false);
        let (action, out) = h.run(&frame.build(&payload));
        assert_eq!(action, XDP_TX);
        let answer = hickory_proto::op::Message::from_vec(&out[frame.dns_offset()..]).unwrap();
        let first = answer.answers[0].data.clone();
        assert_eq!(
            first,
            RData::A(A::from(Ipv4Addr::from(expect))),
            "{option:?}"
        );
    }
    // MaxMind's aliases of the IPv4 space (6to4, Teredo, IPv4-compatible): userspace's.
    for option in [
        ecs("2002:c633:6400::", 48),
        ecs("2001:0:c633:6400::", 64),
        ecs("::c633:6400", 120),
    ] {
        let payload = q_edns_payload("geo.example.com", TYPE_A, &option.unwrap());
        let (action, _) = h.run(&Frame::query(true).build(&payload));
        assert_eq!(action, XDP_PASS);
    }
}

/// Each policy name asked by each client (an ECS option, or none: the frame's source), over
/// IPv4 and IPv6, with every health state and several random draws: XDP's answer is the
/// userspace answer byte for byte, or (NODATA) XDP passes. Returns (answered, passed).
/// Every policy name asked by every client (EDNS flags `flags`: 0x8000 for DO) of XDP and of
/// userspace: (answered in XDP, identical; passed up, NODATA).
fn policy_answers_compared(
    catalog_of: &dyn Fn(&[&str]) -> (Catalog, HealthState),
    clients: &[Option<Vec<u8>>],
    flags: u16,
) -> (usize, usize) {
    let mut answered = 0;
    let mut passed = 0;
    // Over IPv4 and IPv6: the source address is the client when there is no ECS prefix.
    let frames = [
        (Frame::query(false), std::net::IpAddr::V4(CLIENT_V4)),
        (Frame::query(true), std::net::IpAddr::V6(CLIENT_V6)),
    ];
    for (down, (frame, source)) in [&[][..], &["eu-primary"][..]]
        .into_iter()
        .flat_map(|d| frames.iter().map(move |f| (d, f)))
    {
        for draw in [0u32, 1, 2, 3, 7, 9, 63, 1000] {
            let (catalog, health) = catalog_of(down);
            let mut h = Harness::with_options(catalog, 4096, false, Some(draw), None, 0);
            let (tables, report) = compile(&h.catalog, &health);
            assert_eq!(report.groups_passed, 0, "every group compiles");
            h.writer.install(&tables).unwrap();
            for (name, qtype) in POLICY_NAMES {
                for client in clients {
                    let option = client.as_deref().unwrap_or_default();
                    let payload = dns_tests::fixtures::q_edns(name, *qtype, 1232, flags, option);
                    let input = frame.build(&payload);
                    let k = key(
                        &LowerName::new(&Name::from_ascii(name).unwrap()),
                        RecordType::from(*qtype),
                    );
                    let entry = h.writer.installed().answers[&k];
                    let mut rng = match entry.policy_ref() {
                        Some(r) => dns_user::fastpath::compile::SlotRandom::new(
                            &k,
                            name.starts_with("mv."),
                            draw % r.slots,
                            r.slots,
                        ),
                        None => dns_user::fastpath::compile::SlotRandom::new(&k, false, 0, 1),
                    };
                    let userspace = dns_user::server::answer::respond_with(
                        &h.catalog,
                        &health,
                        &AnswerOptions {
                            edns_udp_size: EDNS_SIZE,
                            ..Default::default()
                        },
                        &payload,
                        Transport::Udp,
                        *source,
                        &mut rng,
                    )
                    .unwrap();
                    let what = format!(
                        "{name}/{qtype} draw {draw} client {client:?} from {source} down {down:?}"
                    );
                    let ancount = u16::from_be_bytes([userspace[6], userspace[7]]);
                    let (action, out) = h.run(&input);
                    if ancount == 0 {
                        assert_eq!(action, XDP_PASS, "{what}: NODATA goes up");
                        passed += 1;
                        continue;
                    }
                    if action == XDP_PASS && flags != 0 {
                        // A signed answer goes up only if it cannot fit an entry.
                        let m = hickory_proto::op::Message::from_vec(&userspace).unwrap();
                        let answer_len: usize = m
                            .answers
                            .iter()
                            .map(|r| 12 + BinEncodable::to_bytes(&r.data).unwrap().len())
                            .sum();
                        let name_len = name.len() + 2;
                        assert!(
                            !AnswerSet::fits(answer_len, name_len),
                            "{what}: a signed answer of {answer_len} bytes went up"
                        );
                        passed += 1;
                        continue;
                    }
                    assert_eq!(action, XDP_TX, "{what}");
                    assert_eq!(
                        out[frame.dns_offset()..],
                        userspace[..],
                        "{what}: XDP's DNS payload differs from the userspace answer"
                    );
                    assert_eq!(
                        out,
                        frame.response().build(&userspace),
                        "{what}: frame bytes"
                    );
                    answered += 1;
                }
            }
        }
    }
    (answered, passed)
}

fn q_edns_payload(name: &str, qtype: u16, option: &[u8]) -> Vec<u8> {
    dns_tests::fixtures::q_edns(name, qtype, 1232, 0, option)
}

#[test]
fn a_stale_heartbeat_makes_the_fast_path_transparent() {
    let mut h = Harness::new(catalog(), 1024);
    let mut beat = dns_user::fastpath::maps::HeartbeatWriter::take(&mut h.ebpf).unwrap();
    let input = Frame::query(false).build(&q("www.example.com", TYPE_A));
    beat.beat(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    assert_eq!(h.run(&input).0, XDP_TX);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (action, out) = h.run(&input);
    assert_eq!(action, XDP_PASS, "heartbeat older than its maximum age");
    assert_eq!(out, input);
    assert_eq!(h.counter(Counter::Stale), 1);
    beat.beat(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    assert_eq!(
        h.run(&input).0,
        XDP_TX,
        "a fresh heartbeat: answering again"
    );
    beat.beat(None).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(h.run(&input).0, XDP_TX, "no maximum age: never stale");
}

/// Response rate limiting in XDP: from one /24, a burst and then the rate; beyond it every
/// second response slips (TC=1, no answers, smaller than the query's answer) and the others are
/// dropped; another /24 is unaffected. The amplification an attacker gets is bounded.
#[test]
fn rate_limited_prefixes_get_the_rate_then_slips_and_drops() {
    let rrl = dns_user::rrl::RrlConfig {
        responses_per_second: 5,
        burst: 3,
        slip: 2,
    };
    let mut h = Harness::with_options(catalog(), 1024, false, None, Some(rrl), 0);
    let attacker = Frame::query(false);
    let query = q("www.example.com", TYPE_A);
    let input = attacker.build(&query);
    let (mut sent_bytes, mut answered, mut slipped, mut dropped, mut reply_bytes) = (0, 0, 0, 0, 0);
    // 1000 queries within a few milliseconds (far under 1 s: at most 1 + burst + the rate's
    // share of the elapsed time get full answers).
    let start = std::time::Instant::now();
    for _ in 0..1000 {
        sent_bytes += query.len();
        let (action, out) = h.run(&input);
        match action {
            XDP_TX => {
                let dns = &out[attacker.dns_offset()..];
                let m = hickory_proto::op::Message::from_vec(dns).unwrap();
                if m.metadata.truncation {
                    assert!(
                        m.answers.is_empty(),
                        "a slipped response carries no answers"
                    );
                    // Exactly what the userspace limiter sends for a slip, in a frame with
                    // valid checksums.
                    let expected = dns_user::rrl::truncate(&h.userspace(&query)).unwrap();
                    assert_eq!(out, attacker.response().build(&expected));
                    slipped += 1;
                } else {
                    answered += 1;
                }
                reply_bytes += dns.len();
            }
            1 => dropped += 1,
            other => panic!("unexpected action {other}"),
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let allowed = 1 + 3 + (elapsed * 5.0).ceil() as usize;
    assert!(
        answered >= 4 && answered <= allowed,
        "{answered} full answers, allowed {allowed}"
    );
    assert_eq!(slipped + dropped + answered, 1000);
    assert!(
        (slipped as i64 - dropped as i64).abs() <= 1,
        "slip 2: every other one: {slipped}/{dropped}"
    );
    assert_eq!(h.counter(Counter::Slipped), slipped as u64);
    assert_eq!(h.counter(Counter::RateLimited), dropped as u64);
    // Amplification: response bytes per query byte, at most about half (slipped responses are
    // the query plus a header bit), far below the unlimited answer's.
    let amplification = reply_bytes as f64 / sent_bytes as f64;
    assert!(amplification < 0.6, "amplification {amplification:.2}");
    // Another /24 still gets its answer.
    let other = Frame {
        src: std::net::IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
        ..attacker
    };
    let (action, out) = h.run(&other.build(&query));
    assert_eq!(action, XDP_TX);
    let m = hickory_proto::op::Message::from_vec(&out[other.dns_offset()..]).unwrap();
    assert!(!m.metadata.truncation && !m.answers.is_empty());
}

/// A zone signed elsewhere: XDP answers its A/AAAA queries exactly as userspace, without DO
/// and with DO (the records and their RRSIGs); an unsigned zone's DO queries too. A DO
/// answer that does not fit goes up, counted as EDNS.
#[test]
fn a_signed_zones_do_queries_get_their_rrsigs_from_xdp() {
    let dir = std::env::temp_dir().join(format!("dns-xdp-signed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("signed.zone"), dns_tests::fixtures::SIGNED_ZONE).unwrap();
    std::fs::write(
        dir.join("dns.toml"),
        format!(
            "[[zone]]\norigin = \"signed.test.\"\nfile = \"signed.zone\"\n\n[[zone]]\norigin = \"example.com.\"\nfile = \"{}/../examples/example.com.zone\"\n",
            env!("CARGO_MANIFEST_DIR")
        ),
    )
    .unwrap();
    let settings =
        dns_user::config::resolve(Some(&dir.join("dns.toml")), &Default::default()).unwrap();
    let catalog = dns_user::control::import::catalog(&settings).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let mut h = Harness::new(catalog, 4096);
    let (tables, _) = compile(&h.catalog, &HealthState::default());
    h.writer.install(&tables).unwrap();
    let frame = Frame::query(false);
    const DO: u16 = 0x8000;
    for (name, flags, expect) in [
        ("www.signed.test", 0, XDP_TX),
        ("www.signed.test", DO, XDP_TX),
        ("ns1.signed.test", DO, XDP_TX), // no RRSIG over it here: the records alone
        ("big.signed.test", 0, XDP_TX),
        ("big.signed.test", DO, XDP_PASS), // with its RRSIG it does not fit an entry
        ("www.example.com", DO, XDP_TX),
        ("www.example.com", 0, XDP_TX),
    ] {
        let payload = dns_tests::fixtures::q_edns(name, TYPE_A, 1232, flags, &[]);
        let edns_before = h.counter(Counter::Edns);
        let (action, out) = h.run(&frame.build(&payload));
        assert_eq!(action, expect, "{name} flags {flags:#x}");
        if expect == XDP_TX {
            let userspace = h.userspace(&payload);
            assert_eq!(out, frame.response().build(&userspace), "{name} {flags:#x}");
        } else {
            assert_eq!(h.counter(Counter::Edns), edns_before + 1, "{name}");
        }
    }
}

/// A zone signed here (online, through the API): XDP answers its A/AAAA queries with and
/// without DO exactly as userspace — with DO, the records and the RRSIG its signer made, the
/// same bytes userspace sends (one signature cache). An answer whose signature does not fit
/// goes up.
#[test]
fn a_zone_signed_heres_do_queries_get_the_signers_rrsigs_from_xdp() {
    use dns_user::signing::{KeyMaterial, Signer, keys};
    let dir = std::env::temp_dir().join(format!("dns-xdp-online-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("dns.toml"),
        format!(
            "[[zone]]\norigin = \"example.com.\"\nfile = \"{}/../examples/example.com.zone\"\n",
            env!("CARGO_MANIFEST_DIR")
        ),
    )
    .unwrap();
    let settings =
        dns_user::config::resolve(Some(&dir.join("dns.toml")), &Default::default()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let key = || KeyMaterial {
        algorithm: 13,
        pkcs8: keys::generate(13).unwrap(),
    };
    let signer = Signer::new(
        hickory_proto::rr::Name::from_ascii("example.com.").unwrap(),
        &[key()],
        &key(),
        &[],
        3_600,
    )
    .unwrap();
    let catalog = dns_user::control::import::catalog(&settings)
        .unwrap()
        .with_signers([std::sync::Arc::new(signer)]);
    let mut h = Harness::new(catalog, 4096);
    let (tables, _) = compile(&h.catalog, &HealthState::default());
    h.writer.install(&tables).unwrap();
    let frame = Frame::query(false);
    const DO: u16 = 0x8000;
    for (name, qtype, flags, expect) in [
        ("www.example.com", TYPE_A, 0, XDP_TX),
        ("www.example.com", TYPE_A, DO, XDP_TX),
        ("WwW.Example.COM", TYPE_A, DO, XDP_TX),
        ("ns1.example.com", TYPE_AAAA, DO, XDP_TX),
    ] {
        let payload = dns_tests::fixtures::q_edns(name, qtype, 1232, flags, &[]);
        let edns_before = h.counter(Counter::Edns);
        let (action, out) = h.run(&frame.build(&payload));
        assert_eq!(action, expect, "{name} flags {flags:#x}");
        let userspace = h.userspace(&payload);
        let answer = hickory_proto::op::Message::from_vec(&userspace).unwrap();
        let signed = answer
            .answers
            .iter()
            .any(|r| r.record_type() == hickory_proto::rr::RecordType::RRSIG);
        assert_eq!(signed, flags == DO, "{answer:?}");
        if expect == XDP_TX {
            assert_eq!(out, frame.response().build(&userspace), "{name} {flags:#x}");
        } else {
            assert_eq!(h.counter(Counter::Edns), edns_before + 1);
        }
    }
}

/// The verifier's work on the program in each configuration the daemon can load it with,
/// against its limit of 1,000,000 processed instructions: a change that takes a configuration
/// near it fails here, with the figures, before it fails to load in production.
#[test]
fn the_verifier_has_headroom_in_every_configuration() {
    let rrl = dns_user::rrl::RrlConfig {
        responses_per_second: 10,
        burst: 5,
        slip: 2,
    };
    let configurations = [
        ("default", LoadOptions::default()),
        (
            "rrl",
            LoadOptions {
                rrl: Some(rrl),
                ..Default::default()
            },
        ),
        (
            "dnstap 1 in 1",
            LoadOptions {
                tap_sample: 1,
                ..Default::default()
            },
        ),
        (
            "dnstap 1 in 100 + rrl",
            LoadOptions {
                tap_sample: 100,
                rrl: Some(rrl),
                ..Default::default()
            },
        ),
    ];
    let mut figures = Vec::new();
    for (what, options) in configurations {
        let verified = match xdp::load(&options) {
            Ok(mut ebpf) => xdp::program(&mut ebpf, PROGRAM_NAME)
                .unwrap()
                .info()
                .unwrap()
                .verified_instruction_count()
                .expect("the kernel reports verified instructions (5.16 and later)"),
            Err(_) => u32::MAX, // refused: over the limit
        };
        figures.push((what, verified));
    }
    let shown: Vec<String> = figures
        .iter()
        .map(|(what, n)| match n {
            &u32::MAX => format!("{what}: refused"),
            n => format!("{what}: {n}"),
        })
        .collect();
    eprintln!("verified instructions: {}", shown.join(", "));
    assert!(
        figures.iter().all(|(_, n)| *n < 900_000),
        "within a tenth of the verifier's limit of 1,000,000: {}",
        shown.join(", ")
    );
}
