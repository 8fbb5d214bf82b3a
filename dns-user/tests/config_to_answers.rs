//! Config in, answers out: the public API from a TOML config through the one road
//! (`control::import::catalog`) to `server::answer::respond` and the fast-path compiler.

use hickory_proto::rr::{LowerName, Name, RData, RecordType};

use dns_user::config::{Overrides, resolve};

fn config(text: &str) -> Result<dns_user::zone::Catalog, String> {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("dns-lib-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.toml");
    std::fs::write(&path, text).unwrap();
    let out = resolve(Some(&path), &Overrides::default())
        .map_err(|e| e.to_string())
        .and_then(|s| dns_user::control::import::catalog(&s).map_err(|e| e.to_string()));
    std::fs::remove_dir_all(&dir).unwrap();
    out
}

/// The start of a records-only zone example.net: its SOA and NS.
macro_rules! zone_head {
    () => {
        r#"
[[zone]]
origin = "example.net."
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
"#
    };
}

const RECORDS_ONLY: &str = concat!(
    zone_head!(),
    r#"[[zone.record]]
name = "www"
type = "A"
ttl = 60
values = ["192.0.2.1", "192.0.2.2"]
[[zone.record]]
name = "@"
type = "A"
alias = { target = "www", evaluate_target_health = true }
"#
);

const POLICIES: &str = concat!(
    "[health_check.hc-primary]\ntype = \"TCP\"\nip_address = \"192.0.2.10\"\nport = 80\n\n",
    zone_head!(),
    r#"[[zone.record]]
name = "w"
type = "A"
set_id = "blue"
weight = 75
ttl = 30
values = ["192.0.2.1"]
[[zone.record]]
name = "w"
type = "A"
set_id = "green"
weight = 25
ttl = 30
values = ["192.0.2.2"]
[[zone.record]]
name = "f"
type = "A"
set_id = "primary"
failover = "PRIMARY"
health_check = "hc-primary"
ttl = 30
values = ["192.0.2.10"]
[[zone.record]]
name = "f"
type = "A"
set_id = "secondary"
failover = "SECONDARY"
ttl = 30
values = ["192.0.2.11"]
[[zone.record]]
name = "g"
type = "A"
set_id = "france"
geolocation = { country = "FR" }
ttl = 30
values = ["192.0.2.20"]
[[zone.record]]
name = "c"
type = "CNAME"
set_id = "one"
weight = 1
ttl = 30
values = ["w"]
[[zone.record]]
name = "@"
type = "A"
alias = { target = "w" }
"#
);

fn ask(
    catalog: &dns_user::zone::Catalog,
    name: &str,
    qtype: RecordType,
) -> hickory_proto::op::Message {
    ask_as(
        catalog,
        &dns_user::health::HealthState::default(),
        name,
        qtype,
    )
}

fn ask_with(
    catalog: &dns_user::zone::Catalog,
    health: &dns_user::health::HealthState,
    name: &str,
) -> hickory_proto::op::Message {
    ask_as(catalog, health, name, RecordType::A)
}

fn ask_as(
    catalog: &dns_user::zone::Catalog,
    health: &dns_user::health::HealthState,
    name: &str,
    qtype: RecordType,
) -> hickory_proto::op::Message {
    use dns_user::server::answer::{AnswerOptions, Transport, build_query, respond};
    let q = build_query(1, &Name::from_ascii(name).unwrap(), qtype, None);
    let client = std::net::IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 1));
    let r = respond(
        catalog,
        health,
        &AnswerOptions::default(),
        &q,
        Transport::Udp,
        client,
    )
    .unwrap();
    hickory_proto::op::Message::from_vec(&r).unwrap()
}

fn address(m: &hickory_proto::op::Message) -> String {
    m.answers
        .last()
        .map(|r| r.data.to_string())
        .unwrap_or_default()
}

#[test]
fn routing_policies_from_the_config_are_served() {
    let catalog = config(POLICIES).unwrap();
    // Weighted 75/25.
    let blue = (0..400)
        .filter(|_| address(&ask(&catalog, "w.example.net.", RecordType::A)) == "192.0.2.1")
        .count();
    assert!((250..350).contains(&blue), "75% expected, got {blue}/400");
    // Failover: the primary while healthy (every check is healthy until health checks run).
    assert_eq!(
        address(&ask(&catalog, "f.example.net.", RecordType::A)),
        "192.0.2.10"
    );
    // Geolocation without a match and no default: NOERROR, no answer, SOA.
    let r = ask(&catalog, "g.example.net.", RecordType::A);
    assert_eq!(
        r.metadata.response_code,
        hickory_proto::op::ResponseCode::NoError
    );
    assert!(r.answers.is_empty());
    assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
    // A policy-routed CNAME is followed; a simple apex alias resolves through the weights.
    let r = ask(&catalog, "c.example.net.", RecordType::A);
    assert_eq!(r.answers[0].record_type(), RecordType::CNAME);
    assert!(address(&r).starts_with("192.0.2."));
    let r = ask(&catalog, "example.net.", RecordType::A);
    assert_eq!(r.answers[0].name.to_string(), "example.net.");
    // Other types at a policy name are NODATA, and unknown names still NXDOMAIN.
    let r = ask(&catalog, "w.example.net.", RecordType::AAAA);
    assert!(
        r.answers.is_empty()
            && r.metadata.response_code == hickory_proto::op::ResponseCode::NoError
    );
    let r = ask(&catalog, "x.example.net.", RecordType::A);
    assert_eq!(
        r.metadata.response_code,
        hickory_proto::op::ResponseCode::NXDomain
    );
}

const LOCATED: &str = r#"
[location]
geo = [
  { prefix = "198.51.100.0/24", continent = "EU", country = "FR" },
  { prefix = "203.0.113.0/24", continent = "NA", country = "US", subdivision = "WA", coordinates = [47.61, -122.33] },
]
latency = [
  { prefix = "198.51.100.0/24", regions = { "eu-west-3" = 8.0, "us-west-2" = 140.0 } },
  { prefix = "203.0.113.0/24", regions = { "eu-west-3" = 150.0, "us-west-2" = 9.0 } },
]
[location.cidr_collections.offices]
paris = ["198.51.100.0/24"]
[[zone]]
origin = "example.net."
[[zone.record]]
name = "@"
type = "SOA"
ttl = 900
values = ["ns1 hostmaster 1 7200 900 1209600 60"]
[[zone.record]]
name = "geo"
type = "A"
set_id = "fr"
geolocation = { country = "FR" }
ttl = 30
values = ["192.0.2.33"]
[[zone.record]]
name = "geo"
type = "A"
set_id = "rest"
geolocation = { default = true }
ttl = 30
values = ["192.0.2.99"]
[[zone.record]]
name = "lat"
type = "A"
set_id = "paris"
region = "eu-west-3"
ttl = 30
values = ["192.0.2.3"]
[[zone.record]]
name = "lat"
type = "A"
set_id = "oregon"
region = "us-west-2"
ttl = 30
values = ["192.0.2.4"]
[[zone.record]]
name = "ip"
type = "A"
set_id = "office"
cidr = { collection = "offices", location = "paris" }
ttl = 30
values = ["10.0.0.1"]
[[zone.record]]
name = "ip"
type = "A"
set_id = "default"
cidr = { collection = "offices", location = "*" }
ttl = 30
values = ["192.0.2.200"]
[[zone.record]]
name = "plain"
type = "A"
ttl = 30
values = ["192.0.2.7"]
"#;

/// Asks `name` A with an ECS option for `subnet`/`prefix`; returns (address, echoed scope).
fn ask_from(
    catalog: &dns_user::zone::Catalog,
    name: &str,
    subnet: &str,
    prefix: u8,
) -> (String, Option<u8>) {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let mut e = Edns::new();
    e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
        subnet.parse().unwrap(),
        prefix,
        0,
    )));
    m.set_edns(e);
    let resolver = std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 250));
    let options = dns_user::server::answer::AnswerOptions::default();
    let r = dns_user::server::answer::respond(
        catalog,
        &dns_user::health::HealthState::default(),
        &options,
        &m.to_vec().unwrap(),
        dns_user::server::answer::Transport::Udp,
        resolver,
    )
    .unwrap();
    let r = Message::from_vec(&r).unwrap();
    let scope = r
        .edns
        .as_ref()
        .and_then(|e| match e.options().get(EdnsCode::Subnet) {
            Some(EdnsOption::Subnet(s)) => Some(s.scope_prefix()),
            _ => None,
        });
    (address(&r), scope)
}

#[test]
fn client_subnet_drives_geolocation_latency_and_ip_based_routing() {
    let catalog = config(LOCATED).unwrap();
    assert_eq!(
        ask_from(&catalog, "geo.example.net.", "198.51.100.0", 24),
        ("192.0.2.33".into(), Some(24))
    );
    assert_eq!(
        ask_from(&catalog, "geo.example.net.", "203.0.113.0", 24),
        ("192.0.2.99".into(), Some(24))
    );
    assert_eq!(
        ask_from(&catalog, "lat.example.net.", "198.51.100.0", 24).0,
        "192.0.2.3"
    );
    assert_eq!(
        ask_from(&catalog, "lat.example.net.", "203.0.113.0", 24).0,
        "192.0.2.4"
    );
    assert_eq!(
        ask_from(&catalog, "ip.example.net.", "198.51.100.128", 25).0,
        "10.0.0.1"
    );
    // A /16 client prefix is shorter than the /24 block: it does not match it.
    assert_eq!(
        ask_from(&catalog, "ip.example.net.", "198.51.0.0", 16),
        ("192.0.2.200".into(), Some(16))
    );
    // An answer that does not depend on location echoes scope 0.
    assert_eq!(
        ask_from(&catalog, "plain.example.net.", "198.51.100.0", 24),
        ("192.0.2.7".into(), Some(0))
    );
}

#[test]
fn malformed_client_subnet_gets_formerr() {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
    let catalog = config(LOCATED).unwrap();
    let rcode = |option: EdnsOption| {
        let mut m = Message::new(7, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(
            Name::from_ascii("geo.example.net.").unwrap(),
            RecordType::A,
        ));
        let mut e = Edns::new();
        e.options_mut().insert(option);
        m.set_edns(e);
        let local = std::net::Ipv4Addr::LOCALHOST.into();
        let r = dns_user::server::answer::respond(
            &catalog,
            &dns_user::health::HealthState::default(),
            &Default::default(),
            &m.to_vec().unwrap(),
            dns_user::server::answer::Transport::Udp,
            local,
        )
        .unwrap();
        Message::from_vec(&r).unwrap().metadata.response_code
    };
    // RFC 7871 section 6: a /20 whose address has bits set past the prefix (100 = 0b0110_0100).
    assert_eq!(
        rcode(EdnsOption::Unknown(8, vec![0, 1, 20, 0, 198, 51, 100])),
        ResponseCode::FormErr
    );
    // A query's scope prefix must be 0.
    let scoped = ClientSubnet::new("198.51.100.0".parse().unwrap(), 24, 8);
    assert_eq!(rcode(EdnsOption::Subnet(scoped)), ResponseCode::FormErr);
    // The same subnet, well formed, is answered.
    let fine = ClientSubnet::new("198.51.100.0".parse().unwrap(), 24, 0);
    assert_eq!(rcode(EdnsOption::Subnet(fine)), ResponseCode::NoError);
}

/// Writes a GeoIP2-City-shaped MaxMind DB: 198.51.100.0/24 in Paris, 203.0.113.0/24 in
/// Seattle (Washington).
fn write_test_mmdb(path: &std::path::Path) {
    use maxminddb_writer::Database;
    use maxminddb_writer::paths::IpAddrWithMask;
    #[derive(serde::Serialize)]
    struct Code {
        code: &'static str,
    }
    #[derive(serde::Serialize)]
    struct Iso {
        iso_code: &'static str,
    }
    #[derive(serde::Serialize)]
    struct Location {
        latitude: f64,
        longitude: f64,
    }
    #[derive(serde::Serialize)]
    struct City {
        continent: Code,
        country: Iso,
        subdivisions: Vec<Iso>,
        location: Location,
    }
    let mut db = Database::default();
    db.metadata.database_type = "GeoIP2-City".into();
    db.metadata.binary_format_major_version = 2;
    db.metadata.languages = vec!["en".into()];
    let city = |continent, country, subdivision, latitude, longitude| City {
        continent: Code { code: continent },
        country: Iso { iso_code: country },
        subdivisions: vec![Iso {
            iso_code: subdivision,
        }],
        location: Location {
            latitude,
            longitude,
        },
    };
    let paris = db
        .insert_value(city("EU", "FR", "IDF", 48.85, 2.35))
        .unwrap();
    let seattle = db
        .insert_value(city("NA", "US", "WA", 47.61, -122.33))
        .unwrap();
    db.insert_node("198.51.100.0/24".parse::<IpAddrWithMask>().unwrap(), paris);
    db.insert_node("203.0.113.0/24".parse::<IpAddrWithMask>().unwrap(), seattle);
    db.write_to(std::fs::File::create(path).unwrap()).unwrap();
}

#[test]
fn geolocation_and_geoproximity_from_a_maxmind_database() {
    let dir = std::env::temp_dir().join(format!("dns-mmdb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mmdb = dir.join("geo.mmdb");
    write_test_mmdb(&mmdb);
    let geo = LOCATED.replace(
        "[location]\ngeo = [",
        &format!(
            "[location]\nmaxmind = \"{}\"\ngeo_unused = [",
            mmdb.display()
        ),
    );
    // The geo table above would shadow the database: drop it for this test.
    let geo = geo.replace("geo_unused = [\n  { prefix = \"198.51.100.0/24\", continent = \"EU\", country = \"FR\" },\n  { prefix = \"203.0.113.0/24\", continent = \"NA\", country = \"US\", subdivision = \"WA\", coordinates = [47.61, -122.33] },\n]\n", "");
    let text = format!(
        "{geo}\n[[zone.record]]\nname = \"near\"\ntype = \"A\"\nset_id = \"paris\"\ngeoproximity = {{ lat = 48.86, lon = 2.34 }}\nttl = 30\nvalues = [\"192.0.2.61\"]\n\
         [[zone.record]]\nname = \"near\"\ntype = \"A\"\nset_id = \"portland\"\ngeoproximity = {{ lat = 45.52, lon = -122.68 }}\nttl = 30\nvalues = [\"192.0.2.62\"]\n"
    );
    let catalog = config(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        ask_from(&catalog, "geo.example.net.", "198.51.100.0", 24).0,
        "192.0.2.33",
        "FR from the database"
    );
    assert_eq!(
        ask_from(&catalog, "geo.example.net.", "203.0.113.0", 24).0,
        "192.0.2.99",
        "US: the default"
    );
    assert_eq!(
        ask_from(&catalog, "near.example.net.", "198.51.100.0", 24).0,
        "192.0.2.61",
        "Paris is nearest"
    );
    assert_eq!(
        ask_from(&catalog, "near.example.net.", "203.0.113.0", 24).0,
        "192.0.2.62",
        "Seattle: Portland"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn geoproximity_by_configured_region_names() {
    let regions =
        "[location.regions]\n\"eu-west-3\" = [48.86, 2.35]\n\"us-west-2\" = [45.52, -122.68]\n";
    let records = "\n[[zone.record]]\nname = \"near\"\ntype = \"A\"\nset_id = \"paris\"\ngeoproximity = { region = \"eu-west-3\" }\nttl = 30\nvalues = [\"192.0.2.61\"]\n\
                   [[zone.record]]\nname = \"near\"\ntype = \"A\"\nset_id = \"oregon\"\ngeoproximity = { region = \"us-west-2\", bias = -50 }\nttl = 30\nvalues = [\"192.0.2.62\"]\n";
    let text = LOCATED.replace(
        "[location.cidr_collections.offices]",
        &format!("{regions}[location.cidr_collections.offices]"),
    ) + records;
    let catalog = config(&text).unwrap_or_else(|e| panic!("{e}"));
    // 203.0.113.0/24 is Seattle in the geo table: Oregon is nearest, even at bias -50.
    assert_eq!(
        ask_from(&catalog, "near.example.net.", "203.0.113.0", 24).0,
        "192.0.2.62"
    );
    let err = config(&text.replace("region = \"us-west-2\"", "region = \"mars-1\"")).unwrap_err();
    assert!(
        err.contains("region \"mars-1\" has no coordinates"),
        "{err}"
    );
}

#[test]
fn an_unreadable_maxmind_database_is_a_config_error() {
    let err = config(&LOCATED.replace(
        "[location]\n",
        "[location]\nmaxmind = \"/nonexistent.mmdb\"\n",
    ))
    .unwrap_err();
    assert!(err.contains("location.maxmind /nonexistent.mmdb"), "{err}");
}

#[test]
fn a_route53_change_batch_is_served_as_a_hosted_zone() {
    let batch = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/route53-batch.json"
    );
    let checks = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/route53-health-checks.json"
    );
    let overrides = Overrides {
        route53_files: vec![("example.org.".into(), batch.into())],
        ..Default::default()
    };
    let err = dns_user::control::import::catalog(&resolve(None, &overrides).unwrap()).unwrap_err();
    assert!(
        err.to_string()
            .contains("api.example.org. A: HealthCheckId api-primary is not defined"),
        "{err}"
    );
    let overrides = Overrides {
        health_check_files: vec![checks.into()],
        ..overrides
    };
    let settings = resolve(None, &overrides).unwrap();
    let catalog = dns_user::control::import::catalog(&settings).unwrap();
    assert_eq!(
        catalog.zones().count(),
        1,
        "the batch replaces the embedded example zone"
    );
    let r = ask(&catalog, "api.example.org.", RecordType::A);
    assert_eq!(address(&r), "192.0.2.30", "failover primary");
    let r = ask(&catalog, "example.org.", RecordType::A);
    assert!(
        ["192.0.2.10", "192.0.2.20"].contains(&address(&r).as_str()),
        "apex alias to weighted www"
    );
    let r = ask(&catalog, "example.org.", RecordType::SOA);
    assert_eq!(r.answers.len(), 1, "a hosted zone's default SOA");
    let r = ask(&catalog, "txt.example.org.", RecordType::TXT);
    assert_eq!(
        r.metadata.response_code,
        hickory_proto::op::ResponseCode::NXDomain,
        "deleted in the batch"
    );
}

#[test]
fn a_policy_routed_wildcard_answers_with_the_query_name() {
    let text = format!(
        "{POLICIES}\n[[zone.record]]\nname = \"*.apps\"\ntype = \"A\"\nset_id = \"only\"\nweight = 1\nttl = 30\nvalues = [\"192.0.2.77\"]\n"
    );
    let catalog = config(&text).unwrap();
    let r = ask(&catalog, "x.apps.example.net.", RecordType::A);
    assert_eq!(address(&r), "192.0.2.77");
    assert_eq!(r.answers[0].name.to_string(), "x.apps.example.net.");
}

#[test]
fn policy_groups_compile_with_the_health_state_and_change_only_where_it_matters() {
    use dns_user::fastpath::compile::{compile, entry, key, policy_changes, render_records};
    use dns_user::health::HealthState;
    let catalog = config(POLICIES).unwrap();
    let name_key = |n: &str| {
        key(
            &LowerName::new(&Name::from_ascii(n).unwrap()),
            RecordType::A,
        )
    };
    let f = name_key("f.example.net.");
    let slot = catalog.zone_slot(&Name::from_ascii("example.net.").unwrap());
    assert_eq!(slot, 1, "the only zone has the first slot");
    let f_name = LowerName::new(&Name::from_ascii("f.example.net.").unwrap());
    let entry = |ip: &str| {
        let rdata = RData::A(ip.parse().unwrap());
        let mut set = render_records(RecordType::A, [(30, &rdata)].into_iter()).unwrap();
        set.zone = slot;
        entry(&f_name, RecordType::A, set).unwrap().1
    };
    let (table, report) = compile(&catalog, &HealthState::default());
    assert_eq!(report.groups_passed, 0);
    assert_eq!(
        table.answers.get(&f),
        Some(&entry("192.0.2.10")),
        "failover: one answer, an ordinary entry"
    );
    let down = HealthState([("hc-primary".to_string(), false)].into());
    let change = policy_changes(&catalog, &HealthState::default(), &down, &table);
    assert_eq!(
        change.answers.upserts,
        vec![(f, entry("192.0.2.11"))],
        "only f changes"
    );
    assert!(change.answers.deletes.is_empty() && change.variants.is_empty());
    let (after, _) = compile(&catalog, &down);
    assert_eq!(after.answers.get(&f), Some(&entry("192.0.2.11")));
    assert!(policy_changes(&catalog, &down, &down, &after).is_empty());
    // The userspace answer agrees.
    assert_eq!(
        address(&ask_with(&catalog, &down, "f.example.net.")),
        "192.0.2.11"
    );
    // Weighted (and the apex alias to it) and geolocation become policy references with
    // their variants; the CNAME group is not an A/AAAA group.
    for (name, slots, located) in [
        ("w.example.net.", 4, 0),
        ("example.net.", 4, 0),
        ("g.example.net.", 1, 1),
    ] {
        let r = table.answers[&name_key(name)].policy_ref().unwrap();
        assert_eq!((r.slots, r.located), (slots, located), "{name}");
    }
    assert!(!table.answers.contains_key(&name_key("c.example.net.")));
    let w = table.answers[&name_key("w.example.net.")]
        .policy_ref()
        .unwrap();
    let blue = (0..4)
        .filter(|slot| {
            let v = &table.variants[&dns_common::VariantKey {
                group: w.group,
                cell: 0,
                slot: *slot,
                _pad: 0,
            }];
            v.data[..v.len as usize].ends_with(&[192, 0, 2, 1])
        })
        .count();
    assert_eq!(blue, 3, "weights 75/25 over a ring of 4 slots");
}

#[test]
fn bad_policy_configurations_are_rejected_with_the_record() {
    let cases = [
        (
            POLICIES.replace("weight = 25", "failover = \"PRIMARY\""),
            "mixes routing policies",
        ),
        (
            POLICIES.replace("set_id = \"green\"", "set_id = \"blue\""),
            "duplicate set_id",
        ),
        (
            POLICIES.replace("set_id = \"france\"\n", ""),
            "needs a set_id",
        ),
        (
            POLICIES.replace(
                "geolocation = { country = \"FR\" }",
                "geolocation = { continent = \"XX\" }",
            ),
            "unknown continent",
        ),
        (
            format!(
                "{POLICIES}[[zone.record]]\nname = \"w\"\ntype = \"A\"\nttl = 5\nvalues = [\"192.0.2.9\"]\n"
            ),
            "mixes a routing policy with simple records",
        ),
        (
            format!(
                "{POLICIES}[[zone.record]]\nname = \"z\"\ntype = \"A\"\nset_id = \"a\"\nweight = 1\nalias = {{ target = \"z\" }}\n"
            ),
            "alias loop",
        ),
        (
            POLICIES.replace("failover = \"SECONDARY\"", "failover = \"TERTIARY\""),
            "PRIMARY or SECONDARY",
        ),
    ];
    for (text, expected) in &cases {
        let err = config(text).unwrap_err();
        assert!(err.contains(expected), "{expected}: {err}");
    }
}

#[test]
fn zone_from_config_records_with_an_apex_alias() {
    let catalog = config(RECORDS_ONLY).unwrap();
    let apex = LowerName::new(&Name::from_ascii("example.net.").unwrap());
    let zone = catalog.find(&apex).unwrap();
    let a = zone.rrset(&apex, RecordType::A).unwrap();
    assert_eq!((a.ttl, a.rdatas.len()), (60, 2));
}

#[test]
fn bad_config_records_name_the_record() {
    let err = config(&RECORDS_ONLY.replace("192.0.2.2", "192.0.2.999")).unwrap_err();
    assert!(
        err.contains("c.toml") && err.contains("record #3 (www A)") && err.contains("bad A record"),
        "{err}"
    );
    let err = config(&RECORDS_ONLY.replace("target = \"www\"", "target = \"nope\"")).unwrap_err();
    assert!(
        err.contains("record #4") || err.contains("alias target nope.example.net."),
        "{err}"
    );
    let err = config(&RECORDS_ONLY.replace("ttl = 60\n", "")).unwrap_err();
    assert!(err.contains("ttl is required"), "{err}");
}
