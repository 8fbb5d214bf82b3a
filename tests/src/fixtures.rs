//! The XDP fixture table, shared by the BPF_PROG_TEST_RUN tests and the bench: frames over
//! the fixture zone ([`crate::frame::catalog`]), each with the action and counter the program
//! must produce.

use dns_common::{Counter, TYPE_A, TYPE_AAAA};

use crate::frame::{Frame, opt, question, raw_query};

/// What the XDP program must do with a fixture.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
    /// XDP_TX with exactly the userspace answer.
    Tx,
    /// XDP_PASS, frame unchanged, this counter incremented.
    Pass(Counter),
}

/// One input frame and what must happen to it.
pub struct Fixture {
    pub name: &'static str,
    /// The frame's shape (and, for answered fixtures, the response's).
    pub frame: Frame,
    /// The DNS payload (what the userspace server is asked for comparison).
    pub payload: Vec<u8>,
    pub expect: Expect,
    /// A frame given as raw bytes instead of `frame` around `payload` (malformed framing).
    pub raw: Option<Vec<u8>>,
}

impl Fixture {
    /// The frame fed to the program.
    pub fn input(&self) -> Vec<u8> {
        self.raw
            .clone()
            .unwrap_or_else(|| self.frame.build(&self.payload))
    }
}

fn fx(name: &'static str, frame: Frame, payload: Vec<u8>, expect: Expect) -> Fixture {
    Fixture {
        name,
        frame,
        payload,
        expect,
        raw: None,
    }
}

/// A plain query (RD set).
pub fn q(name: &str, qtype: u16) -> Vec<u8> {
    raw_query(0xbeef, 0x0100, [1, 0, 0, 0], &question(name, qtype, 1), &[])
}

/// A TSIG record (RFC 8945 section 4.2) of key `key.`, hmac-sha256, a 32-byte MAC.
fn tsig_rr() -> Vec<u8> {
    let mut rdata = b"\x0bhmac-sha256\x00".to_vec();
    rdata.extend_from_slice(&[0, 0, 0x6b, 0x49, 0xd2, 0x00]); // time signed
    rdata.extend_from_slice(&300u16.to_be_bytes()); // fudge
    rdata.extend_from_slice(&32u16.to_be_bytes());
    rdata.extend_from_slice(&[0xab; 32]); // MAC
    rdata.extend_from_slice(&[0x07, 0x77, 0, 0, 0, 0]); // original id, error, other length
    let mut rr = b"\x03key\x00".to_vec();
    rr.extend_from_slice(&250u16.to_be_bytes()); // TSIG
    rr.extend_from_slice(&255u16.to_be_bytes()); // class ANY
    rr.extend_from_slice(&[0, 0, 0, 0]);
    rr.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    rr.extend_from_slice(&rdata);
    rr
}

/// A query with an OPT record (RD and CD set).
pub fn q_edns(name: &str, qtype: u16, udp: u16, flags: u16, options: &[u8]) -> Vec<u8> {
    raw_query(
        0x1234,
        0x0110,
        [1, 0, 0, 1],
        &question(name, qtype, 1),
        &opt(udp, 0, flags, options),
    )
}

/// The fixture table: answered hits (XDP_TX) and everything that must be passed up untouched.
pub fn fixtures() -> Vec<Fixture> {
    let v4 = Frame::query(false);
    let v6 = Frame::query(true);
    let vlan = Frame {
        vlan: Some(0x0064),
        ..v4
    };
    let cookie = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]; // RFC 7873 client cookie
    let ecs = [0, 8, 0, 7, 0, 1, 24, 0, 198, 51, 100]; // RFC 7871 client subnet
    let long_name = {
        let mut n = Vec::new();
        for _ in 0..4 {
            n.push(63);
            n.extend_from_slice(&[b'a'; 63]);
        }
        n.extend_from_slice(&[3, b'c', b'o', b'm', 0, 0, 1, 0, 1]);
        n
    };
    let mut fixtures = vec![
        fx("v4 A", v4, q("www.example.com", TYPE_A), Expect::Tx),
        fx("v4 AAAA", v4, q("www.example.com", TYPE_AAAA), Expect::Tx),
        fx("v6 A", v6, q("www.example.com", TYPE_A), Expect::Tx),
        fx("v6 AAAA", v6, q("ns1.example.com", TYPE_AAAA), Expect::Tx),
        fx("v4 A apex", v4, q("example.com", TYPE_A), Expect::Tx),
        fx(
            "v4 A mixed case",
            v4,
            q("WwW.ExAmPlE.CoM", TYPE_A),
            Expect::Tx,
        ),
        fx(
            "v6 AAAA mixed case",
            v6,
            q("NS1.Example.COM", TYPE_AAAA),
            Expect::Tx,
        ),
        fx(
            "v4 A odd-length name",
            v4,
            q("api.example.com", TYPE_A),
            Expect::Tx,
        ),
        fx(
            "v4 A EDNS",
            v4,
            q_edns("www.example.com", TYPE_A, 4096, 0, &[]),
            Expect::Tx,
        ),
        fx(
            "v4 A EDNS DO",
            v4,
            q_edns("mail.example.com", TYPE_A, 1400, 0x8000, &[]),
            Expect::Tx,
        ),
        fx(
            "v6 AAAA EDNS",
            v6,
            q_edns("www.example.com", TYPE_AAAA, 1232, 0, &[]),
            Expect::Tx,
        ),
        fx(
            "v6 A EDNS small payload",
            v6,
            q_edns("Www.example.com", TYPE_A, 512, 0, &[]),
            Expect::Tx,
        ),
        fx(
            "v4 A EDNS with cookie",
            v4,
            q_edns("www.example.com", TYPE_A, 1232, 0, &cookie),
            Expect::Tx,
        ),
        fx("v4 A VLAN", vlan, q("www.example.com", TYPE_A), Expect::Tx),
        fx(
            "v4 AAAA only AAAA",
            v4,
            q("v6only.example.com", TYPE_AAAA),
            Expect::Tx,
        ),
        // Answered by userspace.
        fx(
            "miss",
            v4,
            q("nope.example.com", TYPE_A),
            Expect::Pass(Counter::Miss),
        ),
        fx(
            "NODATA",
            v4,
            q("v6only.example.com", TYPE_A),
            Expect::Pass(Counter::Miss),
        ),
        fx(
            "CNAME name",
            v4,
            q("ftp.example.com", TYPE_A),
            Expect::Pass(Counter::Miss),
        ),
        fx(
            "wildcard",
            v4,
            q("x.apps.example.com", TYPE_A),
            Expect::Pass(Counter::Miss),
        ),
        fx(
            "below a delegation",
            v4,
            q("ns.sub.example.com", TYPE_A),
            Expect::Pass(Counter::Miss),
        ),
        fx(
            "RRset too large for XDP",
            v4,
            q("many.example.com", TYPE_A),
            Expect::Pass(Counter::Miss),
        ),
        fx(
            "outside every zone",
            v4,
            q("www.example.org", TYPE_A),
            Expect::Pass(Counter::Miss),
        ),
        fx("MX", v4, q("example.com", 15), Expect::Pass(Counter::Qtype)),
        fx(
            "class CH",
            v4,
            raw_query(1, 0, [1, 0, 0, 0], &question("www.example.com", 1, 3), &[]),
            Expect::Pass(Counter::Qtype),
        ),
        fx(
            "ECS option (echoed, scope 0)",
            v4,
            q_edns("www.example.com", TYPE_A, 1232, 0, &ecs),
            Expect::Tx,
        ),
        fx(
            "ECS IPv6 /56 with a cookie",
            v6,
            q_edns(
                "www.example.com",
                TYPE_AAAA,
                1232,
                0x8000,
                &[
                    &cookie[..],
                    &[0, 8, 0, 11, 0, 2, 56, 0, 0x20, 1, 0x0d, 0xb8, 0, 0, 0x12],
                ]
                .concat(),
            ),
            Expect::Tx,
        ),
        fx(
            "ECS source /0",
            v4,
            q_edns(
                "www.example.com",
                TYPE_A,
                1232,
                0,
                &[0, 8, 0, 4, 0, 1, 0, 0],
            ),
            Expect::Tx,
        ),
        fx(
            "TSIG-signed query (verified and signed in userspace)",
            v4,
            raw_query(
                0x0777,
                0x0100,
                [1, 0, 0, 1],
                &question("www.example.com", TYPE_A, 1),
                &tsig_rr(),
            ),
            Expect::Pass(Counter::Edns),
        ),
        fx(
            "ECS scope set in a query",
            v4,
            q_edns(
                "www.example.com",
                TYPE_A,
                1232,
                0,
                &[0, 8, 0, 7, 0, 1, 24, 8, 198, 51, 100],
            ),
            Expect::Pass(Counter::Edns),
        ),
        fx(
            "ECS address bits beyond the prefix",
            v4,
            q_edns(
                "www.example.com",
                TYPE_A,
                1232,
                0,
                &[0, 8, 0, 7, 0, 1, 20, 0, 198, 51, 100],
            ),
            Expect::Pass(Counter::Edns),
        ),
        fx(
            "ECS address longer than the prefix needs",
            v4,
            q_edns(
                "www.example.com",
                TYPE_A,
                1232,
                0,
                &[0, 8, 0, 8, 0, 1, 24, 0, 198, 51, 100, 0],
            ),
            Expect::Pass(Counter::Edns),
        ),
        fx(
            "ECS IPv4 prefix over 32",
            v4,
            q_edns(
                "www.example.com",
                TYPE_A,
                1232,
                0,
                &[0, 8, 0, 9, 0, 1, 33, 0, 198, 51, 100, 0, 0],
            ),
            Expect::Pass(Counter::Edns),
        ),
        fx(
            "ECS family 3",
            v4,
            q_edns(
                "www.example.com",
                TYPE_A,
                1232,
                0,
                &[0, 8, 0, 4, 0, 3, 0, 0],
            ),
            Expect::Pass(Counter::Edns),
        ),
        fx(
            "two ECS options",
            v4,
            q_edns(
                "www.example.com",
                TYPE_A,
                1232,
                0,
                &[&ecs[..], &ecs[..]].concat(),
            ),
            Expect::Pass(Counter::Edns),
        ),
        fx(
            "EDNS version 1",
            v4,
            raw_query(
                1,
                0,
                [1, 0, 0, 1],
                &question("www.example.com", 1, 1),
                &opt(1232, 1, 0, &[]),
            ),
            Expect::Pass(Counter::Edns),
        ),
        fx(
            "OPT options overrun",
            v4,
            raw_query(
                1,
                0,
                [1, 0, 0, 1],
                &question("www.example.com", 1, 1),
                &opt(1232, 0, 0, &[0, 10, 0, 9, 1, 2]),
            ),
            Expect::Pass(Counter::Edns),
        ),
        fx(
            "additional not OPT",
            v4,
            raw_query(
                1,
                0,
                [1, 0, 0, 1],
                &question("www.example.com", 1, 1),
                &[0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0],
            ),
            Expect::Pass(Counter::Edns),
        ),
        // Malformed: each must pass, never TX.
        fx(
            "truncated header",
            v4,
            vec![0xbe, 0xef, 1, 0, 0, 1, 0],
            Expect::Pass(Counter::Malformed),
        ),
        fx(
            "truncated question",
            v4,
            raw_query(1, 0, [1, 0, 0, 0], &[3, b'w', b'w', b'w', 7], &[]),
            Expect::Pass(Counter::Malformed),
        ),
        fx(
            "compression pointer in question",
            v4,
            raw_query(
                1,
                0,
                [1, 0, 0, 0],
                &[3, b'w', b'w', b'w', 0xc0, 12, 0, 1, 0, 1],
                &[],
            ),
            Expect::Pass(Counter::Qname),
        ),
        fx(
            "QDCOUNT=2",
            v4,
            raw_query(
                1,
                0,
                [2, 0, 0, 0],
                &[
                    question("www.example.com", 1, 1),
                    question("www.example.com", 1, 1),
                ]
                .concat(),
                &[],
            ),
            Expect::Pass(Counter::NotQuery),
        ),
        fx(
            "QDCOUNT=0",
            v4,
            raw_query(1, 0, [0, 0, 0, 0], &[], &[]),
            Expect::Pass(Counter::NotQuery),
        ),
        fx(
            "QR=1",
            v4,
            raw_query(
                1,
                0x8000,
                [1, 0, 0, 0],
                &question("www.example.com", 1, 1),
                &[],
            ),
            Expect::Pass(Counter::NotQuery),
        ),
        fx(
            "TC set",
            v4,
            raw_query(
                1,
                0x0200,
                [1, 0, 0, 0],
                &question("www.example.com", 1, 1),
                &[],
            ),
            Expect::Pass(Counter::NotQuery),
        ),
        fx(
            "opcode NOTIFY",
            v4,
            raw_query(
                1,
                4 << 11,
                [1, 0, 0, 0],
                &question("www.example.com", 1, 1),
                &[],
            ),
            Expect::Pass(Counter::NotQuery),
        ),
        fx(
            "answer count in query",
            v4,
            raw_query(1, 0, [1, 1, 0, 0], &question("www.example.com", 1, 1), &[]),
            Expect::Pass(Counter::NotQuery),
        ),
        fx(
            "name over 255 bytes",
            v4,
            raw_query(1, 0, [1, 0, 0, 0], &long_name, &[]),
            Expect::Pass(Counter::Qname),
        ),
        fx(
            "label type 0x40",
            v4,
            raw_query(1, 0, [1, 0, 0, 0], &[0x41, 0, 0, 1, 0, 1], &[]),
            Expect::Pass(Counter::Qname),
        ),
        fx(
            "trailing garbage",
            v4,
            raw_query(
                1,
                0,
                [1, 0, 0, 0],
                &question("www.example.com", 1, 1),
                &[0xde, 0xad],
            ),
            Expect::Pass(Counter::Malformed),
        ),
        fx(
            "wrong port",
            Frame { dport: 5353, ..v4 },
            q("www.example.com", TYPE_A),
            Expect::Pass(Counter::NotDns),
        ),
        fx(
            "source port 0",
            Frame { sport: 0, ..v4 },
            q("www.example.com", TYPE_A),
            Expect::Pass(Counter::Malformed),
        ),
        fx(
            "TCP protocol",
            Frame { proto: 6, ..v4 },
            q("www.example.com", TYPE_A),
            Expect::Pass(Counter::NotDns),
        ),
        fx(
            "IPv4 fragment",
            Frame { frag: 0x2000, ..v4 },
            q("www.example.com", TYPE_A),
            Expect::Pass(Counter::IpUnsupported),
        ),
        fx(
            "IPv4 options",
            Frame {
                ip_options: true,
                ..v4
            },
            q("www.example.com", TYPE_A),
            Expect::Pass(Counter::IpUnsupported),
        ),
        fx(
            "IPv6 extension header",
            Frame { proto: 0, ..v6 },
            q("www.example.com", TYPE_A),
            Expect::Pass(Counter::IpUnsupported),
        ),
    ];
    // A frame whose IP length claims more than is there.
    let mut short = v4.build(&q("www.example.com", TYPE_A));
    short.truncate(short.len() - 3);
    fixtures.push(Fixture {
        name: "truncated frame",
        frame: v4,
        payload: Vec::new(),
        expect: Expect::Pass(Counter::Malformed),
        raw: Some(short),
    });
    fixtures
}

/// The head of a config zone `example.com.`: its SOA and NS record sets.
pub const ZONE_HEAD: &str = r#"
[[zone]]
origin = "example.com."

[[zone.record]]
name = "@"
type = "SOA"
ttl = 900
values = ["ns1 hostmaster 1 7200 900 1209600 60"]

[[zone.record]]
name = "@"
type = "NS"
ttl = 900
values = ["ns1"]
"#;

/// A config with every routing policy, and location tables for three client networks.
pub fn policy_config() -> String {
    format!(
        "{POLICY_LOCATIONS}\n{ZONE_HEAD}\n{POLICY_RECORDS}\n{}",
        multivalue_records()
    )
}

/// Location tables and health checks of [`policy_config`].
pub const POLICY_LOCATIONS: &str = r#"
[location]
geo = [
  { prefix = "198.51.100.0/24", continent = "EU", country = "FR", coordinates = [48.86, 2.35] },
  { prefix = "203.0.113.0/24", continent = "NA", country = "US", subdivision = "OR", coordinates = [45.52, -122.68] },
]
latency = [
  { prefix = "198.51.100.0/24", regions = { "eu-west-3" = 9.0, "us-west-2" = 145.0 } },
  { prefix = "203.0.113.0/24", regions = { "eu-west-3" = 150.0, "us-west-2" = 11.0 } },
]
[location.cidr_collections.edge]
paris = ["198.51.100.0/24"]
oregon = ["203.0.113.0/24", "2001:db8:1::/48"]

[health_check.eu-primary]
type = "TCP"
ip_address = "192.0.2.200"
port = 80

"#;

/// The policy zone's record sets (after [`ZONE_HEAD`]).
pub const POLICY_RECORDS: &str = r#"
# A weighted alias into another weighted group: two choices per answer. Shares: 192.0.2.81
# 3/4 x 1/3 = 1/4, 192.0.2.82 3/4 x 2/3 = 1/2, 192.0.2.80 1/4.
[[zone.record]]
name = "wa"
type = "A"
set_id = "pool"
weight = 3
alias = { target = "wt", evaluate_target_health = false }

[[zone.record]]
name = "wa"
type = "A"
set_id = "direct"
weight = 1
ttl = 60
values = ["192.0.2.80"]

[[zone.record]]
name = "wt"
type = "A"
set_id = "one"
weight = 1
ttl = 60
values = ["192.0.2.81"]

[[zone.record]]
name = "wt"
type = "A"
set_id = "two"
weight = 2
ttl = 60
values = ["192.0.2.82"]

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
weight = 30
ttl = 30
values = ["192.0.2.20", "192.0.2.21"]

[[zone.record]]
name = "w"
type = "AAAA"
set_id = "blue"
weight = 1
ttl = 30
values = ["2001:db8::10"]

[[zone.record]]
name = "w"
type = "AAAA"
set_id = "green"
weight = 3
ttl = 30
values = ["2001:db8::20"]

[[zone.record]]
name = "geo"
type = "A"
set_id = "fr"
geolocation = { country = "FR" }
ttl = 60
values = ["192.0.2.31"]

[[zone.record]]
name = "geo"
type = "A"
set_id = "na"
geolocation = { continent = "NA" }
ttl = 60
values = ["192.0.2.32"]

[[zone.record]]
name = "geo"
type = "A"
set_id = "default"
geolocation = { default = true }
ttl = 60
values = ["192.0.2.33"]

[[zone.record]]
name = "fronly"
type = "A"
set_id = "fr"
geolocation = { country = "FR" }
ttl = 60
values = ["192.0.2.34"]

[[zone.record]]
name = "lat"
type = "A"
set_id = "paris"
region = "eu-west-3"
ttl = 60
values = ["192.0.2.41"]

[[zone.record]]
name = "lat"
type = "A"
set_id = "oregon"
region = "us-west-2"
ttl = 60
values = ["192.0.2.42"]

[[zone.record]]
name = "ip"
type = "A"
set_id = "paris"
cidr = { collection = "edge", location = "paris" }
ttl = 60
values = ["192.0.2.51"]

[[zone.record]]
name = "ip"
type = "A"
set_id = "oregon"
cidr = { collection = "edge", location = "oregon" }
ttl = 60
values = ["192.0.2.52"]

[[zone.record]]
name = "ip"
type = "A"
set_id = "rest"
cidr = { collection = "edge", location = "*" }
ttl = 60
values = ["192.0.2.53"]

[[zone.record]]
name = "prox"
type = "A"
set_id = "paris"
geoproximity = { lat = 48.86, lon = 2.35, bias = 0 }
ttl = 60
values = ["192.0.2.61"]

[[zone.record]]
name = "prox"
type = "A"
set_id = "virginia"
geoproximity = { lat = 38.9, lon = -77.0, bias = 50 }
ttl = 60
values = ["192.0.2.62"]

[[zone.record]]
name = "tree"
type = "A"
set_id = "paris"
region = "eu-west-3"
alias = { target = "eu.tree", evaluate_target_health = true }

[[zone.record]]
name = "tree"
type = "A"
set_id = "oregon"
region = "us-west-2"
alias = { target = "us.tree", evaluate_target_health = true }

[[zone.record]]
name = "eu.tree"
type = "A"
set_id = "primary"
failover = "PRIMARY"
health_check = "eu-primary"
ttl = 60
values = ["192.0.2.71"]

[[zone.record]]
name = "eu.tree"
type = "A"
set_id = "secondary"
failover = "SECONDARY"
ttl = 60
values = ["192.0.2.72"]

[[zone.record]]
name = "us.tree"
type = "A"
set_id = "primary"
failover = "PRIMARY"
ttl = 60
values = ["192.0.2.73"]
"#;

pub fn multivalue_records() -> String {
    (1..=12)
        .map(|i| {
            format!(
                "[[zone.record]]\nname = \"mv\"\ntype = \"A\"\nset_id = \"s{i}\"\nmultivalue = true\nttl = 60\nvalues = [\"198.18.0.{i}\"]\n\n"
            )
        })
        .collect()
}

/// The policy zone's catalog, with the listed health checks down.
pub fn policy_catalog(
    health_checks_down: &[&str],
) -> (dns_user::zone::Catalog, dns_user::health::HealthState) {
    catalog_of(&policy_config(), &[], health_checks_down)
}

/// As [`policy_catalog`], with clients located by a MaxMind database
/// ([`crate::mmdb::POLICY_NETWORKS`]) instead of the geo table.
pub fn policy_catalog_located_by_maxmind(
    health_checks_down: &[&str],
) -> (dns_user::zone::Catalog, dns_user::health::HealthState) {
    let config = policy_config();
    let start = config.find("geo = [").expect("a geo table");
    let end = start + config[start..].find("]\n").expect("its end") + 2;
    let config = format!(
        "{}maxmind = \"geo.mmdb\"\n{}",
        &config[..start],
        &config[end..]
    );
    catalog_of(
        &config,
        &[("geo.mmdb", crate::mmdb::POLICY_NETWORKS)],
        health_checks_down,
    )
}

/// The catalog of config `text`, beside the listed databases (file name, networks).
fn catalog_of(
    text: &str,
    databases: &[(&str, &[(&str, crate::mmdb::Place)])],
    health_checks_down: &[&str],
) -> (dns_user::zone::Catalog, dns_user::health::HealthState) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("dns-xdp-policies-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (file, networks) in databases {
        crate::mmdb::write_city_db(&dir.join(file), networks);
    }
    let path = dir.join("policies.toml");
    std::fs::write(&path, text).unwrap();
    let settings = dns_user::config::resolve(Some(&path), &Default::default()).unwrap();
    let catalog = dns_user::control::import::catalog(&settings).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let health = dns_user::health::HealthState(
        health_checks_down
            .iter()
            .map(|id| (id.to_string(), false))
            .collect(),
    );
    (catalog, health)
}

/// An ECS option for `addr`/`prefix`.
pub fn ecs(addr: std::net::IpAddr, prefix: u8) -> Vec<u8> {
    let (family, bytes) = match addr {
        std::net::IpAddr::V4(a) => (1u16, a.octets().to_vec()),
        std::net::IpAddr::V6(a) => (2u16, a.octets().to_vec()),
    };
    let n = usize::from(prefix).div_ceil(8);
    let mut body = family.to_be_bytes().to_vec();
    body.extend_from_slice(&[prefix, 0]);
    body.extend_from_slice(&bytes[..n]);
    let mut option = vec![0, 8];
    option.extend_from_slice(&(body.len() as u16).to_be_bytes());
    option.extend_from_slice(&body);
    option
}

/// A small zone signed elsewhere, as a zone file: a DNSKEY at the apex, `www` with its RRSIG,
/// `ns1` without one, and `big`, whose eight A records and RRSIG do not fit an XDP entry. The
/// signatures' bytes are not valid (nothing on the XDP path checks them); `tests/tests/dnssec.rs`
/// signs for real.
pub const SIGNED_ZONE: &str = "$ORIGIN signed.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 60\n@ NS ns1\n\
         @ DNSKEY 257 3 13 v3OwxeHugMI5DahP4RB8CcCzaCGTXzSoTj/CbJZCG36xc5s8AbY8nTRjh90vuab8i3ctJvTn723/4hZ5WSwMpA==\n\
         @ RRSIG DNSKEY 13 2 300 20270106033502 20261207033502 65491 signed.test. EndgrCs8q8sjasb7Zb5WSszNY6oy2pbqwWGpqwt4UUgoum3zR3Rti3fu1iF6rGua+Sm6h7Xpj8XEzQpNhYi4LQ==\n\
         ns1 A 192.0.2.53\nwww A 192.0.2.1\n\
         www RRSIG A 13 3 300 20270106033502 20261207033502 62856 signed.test. 5Or6O16bQbvWzXE3JQH/JtC0clKLaW9vb4JbrZfLwVCdqJQWZaZ5ld6RZj8CzmHjbX4j0211xJI8AZ1CioEalg==\n\
         big A 192.0.2.10\nbig A 192.0.2.11\nbig A 192.0.2.12\nbig A 192.0.2.13\nbig A 192.0.2.14\nbig A 192.0.2.15\nbig A 192.0.2.16\nbig A 192.0.2.17\n\
         big RRSIG A 13 3 300 20270106033502 20261207033502 62856 signed.test. 5Or6O16bQbvWzXE3JQH/JtC0clKLaW9vb4JbrZfLwVCdqJQWZaZ5ld6RZj8CzmHjbX4j0211xJI8AZ1CioEalg==\n";
