//! A BPF_PROG_TEST_RUN campaign of 180,000 random and mutated packets against the XDP program
//! (maps filled by the production compiler, simple names and every routing policy, the policy
//! zone also signed here, with DO frames among the seeds): whatever
//! it is fed, the program either passes the frame up untouched, or answers with a frame whose
//! headers are the query's swapped, whose IP and UDP checksums verify and whose DNS payload is
//! exactly the userspace answer to the same query. Deterministic (seeded); the seed and the
//! frame are printed on failure.
//!
//! Needs root; never skips.

use std::net::IpAddr;

use aya::programs::{TestRun, TestRunOptions};
use dns_common::PROGRAM_NAME;
use dns_tests::fixtures::{ecs, fixtures, policy_catalog, q, q_edns};
use dns_tests::frame::{Frame, XDP_PASS, XDP_TX, fold, sum16, udp_checksum};
use dns_user::fastpath::compile::{SlotRandom, compile, key};
use dns_user::fastpath::maps::MapWriter;
use dns_user::fastpath::xdp::{self, LoadOptions};
use dns_user::health::HealthState;
use dns_user::policy::RandomSource;
use dns_user::server::answer::{AnswerOptions, Transport, respond_with};
use dns_user::zone::Catalog;
use hickory_proto::rr::LowerName;

const SEED: u64 = 0x0005_eed0_fd05;
/// Per campaign (three campaigns: the fixture zone, the policy zone, the policy zone signed
/// here).
const PACKETS: usize = 60_000;
/// Pinned so the userspace answer for the same slot can be computed.
const DRAW: u32 = 5;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// What a well-formed frame carries.
struct Parsed {
    l3: usize,
    v6: bool,
    src: IpAddr,
    dst: IpAddr,
    udp: usize,
}

/// Parses Ethernet [+ VLAN] / IPv4 (IHL 5) or IPv6 / UDP, loosely: only to find the pieces
/// an answered frame must have.
fn parse(f: &[u8]) -> Option<Parsed> {
    let mut l3 = 14;
    let mut ethertype = u16::from_be_bytes([*f.get(12)?, *f.get(13)?]);
    if ethertype == 0x8100 {
        ethertype = u16::from_be_bytes([*f.get(16)?, *f.get(17)?]);
        l3 += 4;
    }
    match ethertype {
        0x0800 => {
            let h = f.get(l3..l3 + 20)?;
            Some(Parsed {
                l3,
                v6: false,
                src: IpAddr::from(<[u8; 4]>::try_from(&h[12..16]).ok()?),
                dst: IpAddr::from(<[u8; 4]>::try_from(&h[16..20]).ok()?),
                udp: l3 + 20,
            })
        }
        0x86dd => {
            let h = f.get(l3..l3 + 40)?;
            Some(Parsed {
                l3,
                v6: true,
                src: IpAddr::from(<[u8; 16]>::try_from(&h[8..24]).ok()?),
                dst: IpAddr::from(<[u8; 16]>::try_from(&h[24..40]).ok()?),
                udp: l3 + 40,
            })
        }
        _ => None,
    }
}

/// Seeds for the fixture zone: every fixture frame.
fn fixture_seeds() -> Vec<Vec<u8>> {
    fixtures().iter().map(|f| f.input()).collect()
}

/// Seeds for the policy zone: every routing-policy name, A and AAAA, IPv4 and IPv6, with and
/// without ECS.
fn policy_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let names = [
        "w.example.com",
        "mv.example.com",
        "geo.example.com",
        "fronly.example.com",
        "lat.example.com",
        "ip.example.com",
        "prox.example.com",
        "tree.example.com",
    ];
    for v6 in [false, true] {
        let frame = Frame::query(v6);
        for name in names {
            for qtype in [1u16, 28] {
                out.push(frame.build(&q(name, qtype)));
                let option = ecs("198.51.100.0".parse().unwrap(), 24);
                out.push(frame.build(&q_edns(name, qtype, 1232, 0x8000, &option)));
                let option = ecs("2001:db8:1::".parse().unwrap(), 48);
                out.push(frame.build(&q_edns(name, qtype, 1232, 0, &option)));
            }
        }
    }
    out
}

/// One mutation of `frame`.
fn mutate(rng: &mut Rng, frame: &mut Vec<u8>) {
    let len = frame.len();
    match rng.below(10) {
        // Flip bits anywhere.
        0 => {
            for _ in 0..=rng.below(4) {
                let at = rng.below(len);
                frame[at] ^= 1 << rng.below(8);
            }
        }
        // Interesting byte values at random places (lengths, pointers, counts).
        1 => {
            let values = [0u8, 1, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xc1, 0xfe, 0xff];
            let at = rng.below(len);
            frame[at] = values[rng.below(values.len())];
        }
        // Truncate.
        2 => frame.truncate(rng.below(len)),
        // Append garbage.
        3 => {
            for _ in 0..=rng.below(64) {
                frame.push(rng.next() as u8);
            }
        }
        // Insert or delete a byte in the DNS part.
        4 if len > 43 => {
            let at = 42 + rng.below(len - 42);
            if rng.below(2) == 0 {
                frame.insert(at, rng.next() as u8);
            } else {
                frame.remove(at);
            }
        }
        // DNS header fields: flags and the four counts.
        5 if len > 54 => {
            let dns = if frame[12] == 0x86 { 62 } else { 42 };
            let field = dns + 2 + 2 * rng.below(5);
            if field + 1 < frame.len() {
                let v = [0u16, 1, 2, 0xffff, 0x8000, 0x0100][rng.below(6)];
                frame[field..field + 2].copy_from_slice(&v.to_be_bytes());
            }
        }
        // IP and UDP header fields (lengths, IHL, fragments, protocol, ports).
        6 => {
            let fields = [14usize, 16, 17, 20, 21, 23, 34, 36, 38, 39, 54, 56, 58];
            let at = fields[rng.below(fields.len())];
            if at < frame.len() {
                frame[at] = rng.next() as u8;
            }
        }
        // An 802.1Q tag (or a second one).
        7 if len >= 12 => {
            let tag = [0x81, 0x00, 0x00, rng.next() as u8];
            frame.splice(12..12, tag);
        }
        // A label length byte in the question.
        8 => {
            let dns = if frame.get(12) == Some(&0x86) { 62 } else { 42 };
            let at = dns + 12 + rng.below(20);
            if at < frame.len() {
                frame[at] = [0u8, 1, 63, 64, 0xc0, 0xff][rng.below(6)];
            }
        }
        // Random bytes replacing a run.
        _ => {
            let at = rng.below(len);
            let end = (at + 1 + rng.below(16)).min(len);
            for b in &mut frame[at..end] {
                *b = rng.next() as u8;
            }
        }
    }
}

/// The checks an answered frame must pass; `Err` says why not.
fn check_answer(
    catalog: &Catalog,
    health: &HealthState,
    input: &[u8],
    out: &[u8],
) -> Result<(), String> {
    let q = parse(input).ok_or("answered a frame that does not parse")?;
    let r = parse(out).ok_or("response does not parse")?;
    if (r.src, r.dst, r.v6, r.l3) != (q.dst, q.src, q.v6, q.l3) {
        return Err("addresses not swapped".into());
    }
    if out[..6] != input[6..12] || out[6..12] != input[..6] {
        return Err("MAC addresses not swapped".into());
    }
    let udp = &out[r.udp..];
    let udp_len = u16::from_be_bytes([udp[4], udp[5]]) as usize;
    if udp_len != udp.len() {
        return Err(format!("UDP length {udp_len} vs {} bytes", udp.len()));
    }
    if !r.v6 && fold(sum16(&out[r.l3..r.l3 + 20])) != 0xffff {
        return Err("IPv4 header checksum".into());
    }
    let mut zeroed = udp.to_vec();
    zeroed[6] = 0;
    zeroed[7] = 0;
    let want = udp_checksum(r.src, r.dst, &zeroed);
    let got = u16::from_be_bytes([udp[6], udp[7]]);
    if want != got {
        return Err(format!("UDP checksum {got:04x}, want {want:04x}"));
    }
    if udp[..2] != input[q.udp + 2..q.udp + 4] || udp[2..4] != input[q.udp..q.udp + 2] {
        return Err("ports not swapped".into());
    }
    // The DNS payload is the userspace answer to the same query (with the slot's random
    // source for a routing-policy group).
    let query = &input[q.udp + 8..];
    let message = hickory_proto::op::Message::from_vec(query)
        .map_err(|e| format!("answered a query userspace cannot parse: {e}"))?;
    let question = message
        .queries
        .first()
        .ok_or("answered without a question")?;
    let k = key(&LowerName::new(question.name()), question.query_type());
    let (tables, _) = compile(catalog, health);
    let mut rng: Box<dyn RandomSource> = match tables.answers.get(&k).and_then(|a| a.policy_ref()) {
        Some(p) => Box::new(SlotRandom::new(
            &k,
            question
                .name()
                .to_ascii()
                .to_ascii_lowercase()
                .starts_with("mv."),
            DRAW % p.slots,
            p.slots,
        )),
        None => Box::new(SlotRandom::new(&k, false, 0, 1)),
    };
    let expected = respond_with(
        catalog,
        health,
        &AnswerOptions {
            edns_udp_size: 1232,
            ..Default::default()
        },
        query,
        Transport::Udp,
        q.src,
        &mut *rng,
    )
    .ok_or("userspace would not answer")?;
    if udp[8..] != expected[..] {
        return Err("DNS payload differs from the userspace answer".into());
    }
    hickory_proto::op::Message::from_vec(&udp[8..]).map_err(|e| format!("response: {e}"))?;
    Ok(())
}

#[test]
fn mutated_and_random_packets_are_passed_untouched_or_answered_exactly() {
    let simple = dns_tests::frame::catalog();
    let none = HealthState::default();
    let (a_tx, a_pass, a_drop) = campaign(&simple, &none, &fixture_seeds(), SEED);
    let (policies, health) = policy_catalog(&["eu-primary"]);
    let (b_tx, b_pass, b_drop) = campaign(&policies, &health, &policy_seeds(), SEED + 1);
    // The policy zone signed here: DO frames get each variant's records and RRSIG.
    let signed = policies.with_signers([std::sync::Arc::new(signer("example.com."))]);
    let (c_tx, c_pass, c_drop) = campaign(&signed, &health, &policy_seeds(), SEED + 2);
    let (tx, pass, drop) = (
        a_tx + b_tx + c_tx,
        a_pass + b_pass + c_pass,
        a_drop + b_drop + c_drop,
    );
    eprintln!(
        "{} packets: {tx} answered (all exact), {pass} passed untouched, {drop} dropped",
        3 * PACKETS
    );
    assert!(
        a_tx > 1000 && b_tx > 1000 && c_tx > 1000,
        "{a_tx} / {b_tx} / {c_tx} answered"
    );
    assert!(pass > PACKETS, "{pass} passed");
    assert_eq!(drop, 0, "no helper failure on well-sized test frames");
}

/// A signer for `apex` with new ECDSA P-256 keys.
fn signer(apex: &str) -> dns_user::signing::Signer {
    use dns_user::signing::{KeyMaterial, Signer, keys};
    let key = || KeyMaterial {
        algorithm: keys::ECDSAP256SHA256,
        pkcs8: keys::generate(keys::ECDSAP256SHA256).unwrap(),
    };
    let apex = hickory_proto::rr::Name::from_ascii(apex).unwrap();
    Signer::new(apex, &[key()], &key(), &[], 3_600).unwrap()
}

/// Feeds PACKETS mutated seeds (and some noise) to the program over `catalog`; returns
/// (answered, passed, dropped). Panics on the first frame that breaks the rules.
fn campaign(
    catalog: &Catalog,
    health: &HealthState,
    seeds: &[Vec<u8>],
    seed: u64,
) -> (usize, usize, usize) {
    let mut ebpf = xdp::load(&LoadOptions {
        max_entries: 4096,
        fixed_draw: Some(DRAW),
        ..Default::default()
    })
    .expect("loading the XDP program needs root");
    let mut writer = MapWriter::new(&mut ebpf, 4096).unwrap();
    writer.install(&compile(catalog, health).0).unwrap();
    writer.set_enabled(true).unwrap();
    let prog = xdp::program(&mut ebpf, PROGRAM_NAME).unwrap();

    let mut rng = Rng(seed);
    let mut out = vec![0u8; 8192];
    let (mut tx, mut pass, mut drop) = (0usize, 0usize, 0usize);
    for i in 0..PACKETS {
        let mut frame = if i % 50 == 49 {
            // Pure noise of random length.
            (0..rng.below(300)).map(|_| rng.next() as u8).collect()
        } else {
            let mut f = seeds[rng.below(seeds.len())].clone();
            for _ in 0..=rng.below(3) {
                if !f.is_empty() {
                    mutate(&mut rng, &mut f);
                }
            }
            f
        };
        if frame.len() < 14 {
            frame.resize(14, 0); // the kernel wants at least an Ethernet header
        }
        let r = prog
            .test_run(TestRunOptions {
                data_in: Some(&frame),
                data_out: Some(&mut out),
                ..Default::default()
            })
            .expect("BPF_PROG_TEST_RUN");
        let result = &out[..r.data_size_out as usize];
        match r.return_value {
            XDP_PASS => {
                assert_eq!(
                    result,
                    &frame[..],
                    "packet {i} (seed {seed:#x}): passed but modified: {frame:02x?}"
                );
                pass += 1;
            }
            XDP_TX => {
                if let Err(why) = check_answer(catalog, health, &frame, result) {
                    panic!(
                        "packet {i} (seed {seed:#x}): {why}\n  in:  {frame:02x?}\n  out: {result:02x?}"
                    );
                }
                tx += 1;
            }
            1 => drop += 1, // XDP_DROP: a helper failed after the rewrite began
            other => panic!("packet {i}: unexpected action {other}"),
        }
    }
    (tx, pass, drop)
}
