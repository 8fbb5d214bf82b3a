//! Zones signed here, through Route 53's DNSSEC API: CreateKeySigningKey, then
//! EnableHostedZoneDNSSEC, and every answer of the zone is signed online. Two real validators
//! trust only the DS record GetDNSSEC gives: BIND's `delv`, and Unbound as a resolver (its
//! answers carry AD=1), on loopback. They validate every kind of answer — record types, a
//! CNAME, a wildcard, routing policies (weighted, multivalue with different TTLs,
//! geolocation), NXDOMAIN and NODATA as compact denials (RFC 9824), an insecure delegation —
//! and keep validating across a restart from the store and a KSK rollover done through the API;
//! once signing is disabled, the validators refuse the zone.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, a, create, free_port, temp_dir};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use serde_json::{Value, json};

const ZONE: &str = "online.test.";

fn set(name: &str, rtype: &str, ttl: u32, values: &[&str]) -> Value {
    json!({"Name": name, "Type": rtype, "TTL": ttl,
           "ResourceRecords": values.iter().map(|v| json!({"Value": v})).collect::<Vec<_>>()})
}

fn with(mut set: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        set[k] = v.clone();
    }
    set
}

/// The zone's record sets: every kind of answer a validator has to accept.
fn fill(d: &Daemon, zone: &str) {
    let changes: Vec<Value> = [
        a("www.online.test.", 300, &["192.0.2.1"]),
        set("www.online.test.", "AAAA", 300, &["2001:db8::1"]),
        set("alias.online.test.", "CNAME", 300, &["www.online.test."]),
        a("*.wild.online.test.", 300, &["192.0.2.9"]),
        set("mail.online.test.", "MX", 300, &["10 www.online.test."]),
        set("txt.online.test.", "TXT", 300, &["\"signed here\""]),
        set("sub.online.test.", "NS", 300, &["ns.sub.online.test."]),
        a("ns.sub.online.test.", 300, &["192.0.2.54"]),
        set("deep.ent.online.test.", "TXT", 300, &["\"below an ENT\""]),
        with(
            a("w.online.test.", 60, &["192.0.2.21"]),
            json!({"SetIdentifier": "one", "Weight": 1}),
        ),
        with(
            a("w.online.test.", 60, &["192.0.2.22"]),
            json!({"SetIdentifier": "two", "Weight": 1}),
        ),
        with(
            a("mv.online.test.", 60, &["192.0.2.31"]),
            json!({"SetIdentifier": "a", "MultiValueAnswer": true}),
        ),
        with(
            a("mv.online.test.", 120, &["192.0.2.32"]),
            json!({"SetIdentifier": "b", "MultiValueAnswer": true}),
        ),
        with(
            a("geo.online.test.", 60, &["192.0.2.41"]),
            json!({"SetIdentifier": "eu", "GeoLocation": {"ContinentCode": "EU"}}),
        ),
        with(
            a("geo.online.test.", 60, &["192.0.2.42"]),
            json!({"SetIdentifier": "default", "GeoLocation": {"CountryCode": "*"}}),
        ),
    ]
    .into_iter()
    .map(create)
    .collect();
    let (status, v) = d.change(zone, Value::Array(changes));
    assert_eq!(status, 200, "{v}");
    d.wait_insync(v["ChangeInfo"]["Id"].as_str().unwrap());
}

/// What each validator must accept: (name, type, negative?).
const CASES: &[(&str, &str, bool)] = &[
    ("www.online.test", "A", false),
    ("www.online.test", "AAAA", false),
    ("online.test", "DNSKEY", false),
    ("online.test", "CDS", false),
    ("online.test", "CDNSKEY", false),
    ("online.test", "SOA", false),
    ("online.test", "NS", false),
    ("mail.online.test", "MX", false),
    ("txt.online.test", "TXT", false),
    ("alias.online.test", "A", false),
    ("a.b.wild.online.test", "A", false),
    ("deep.ent.online.test", "TXT", false),
    ("w.online.test", "A", false),
    ("mv.online.test", "A", false),
    ("geo.online.test", "A", false),
    ("nothing.online.test", "A", true),
    ("x.nothing.online.test", "AAAA", true),
    ("www.online.test", "MX", true),
    ("ent.online.test", "TXT", true),
    ("a.wild.online.test", "AAAA", true),
    ("sub.online.test", "DS", true),
    ("w.online.test", "TXT", true),
];

/// The trust anchor for delv: the DS GetDNSSEC shows for `ksk`.
fn delv_anchor(dir: &Path, ksk: &Value) -> PathBuf {
    let path = dir.join(format!("anchor-{}.conf", ksk["Name"].as_str().unwrap()));
    let ds = ds_of(ksk);
    let [tag, algorithm, digest_type, digest] = ds.split(' ').collect::<Vec<_>>()[..] else {
        panic!("a DS record: {ds}")
    };
    std::fs::write(
        &path,
        format!(
            "trust-anchors {{ {ZONE} static-ds {tag} {algorithm} {digest_type} \"{digest}\"; }};\n"
        ),
    )
    .unwrap();
    path
}

fn delv(d: &Daemon, anchors: &Path, name: &str, rtype: &str) -> String {
    dns_tests::signer::delv(d.port, anchors, "online.test", name, rtype)
}

fn delv_validates_all(d: &Daemon, anchors: &Path) {
    delv_validates(d, anchors, CASES);
}

/// delv fully validates each of `cases` (name, type, negative?).
fn delv_validates(d: &Daemon, anchors: &Path, cases: &[(&str, &str, bool)]) {
    for (name, rtype, negative) in cases {
        let verdict = delv(d, anchors, name, rtype);
        let expect = if *negative {
            "negative response, fully validated"
        } else {
            "; fully validated"
        };
        assert!(verdict.contains(expect), "delv {name} {rtype}: {verdict}");
    }
}

/// Unbound on loopback, validating with `ds` (the zone's DS record) as its only trust anchor
/// and the daemon as the zone's server. Stopped (by its PID) when dropped.
struct Unbound {
    child: Child,
    port: u16,
}

const NO_SUBNET: Option<(std::net::IpAddr, u8)> = None;

impl Unbound {
    /// Unbound trusting each DS of `ds`, with more `server:` settings `extra`.
    fn start(dir: &Path, daemon_port: u16, ds: &[String], extra: &str) -> Unbound {
        Self::start_for(ZONE, dir, daemon_port, ds, extra)
    }

    /// [`start`](Self::start) for the zone `zone` (its DS records `ds`).
    fn start_for(zone: &str, dir: &Path, daemon_port: u16, ds: &[String], extra: &str) -> Unbound {
        let port = free_port();
        let anchors: String = ds
            .iter()
            .map(|ds| format!("  trust-anchor: \"{zone} DS {ds}\"\n"))
            .collect();
        let conf = dir.join(format!("unbound-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "server:
  interface: 127.0.0.1
  port: {port}
  do-ip6: no
  do-daemonize: no
  username: \"\"
  chroot: \"\"
  directory: \"{dir}\"
  pidfile: \"\"
  use-syslog: no
  logfile: \"\"
  verbosity: 1
  val-log-level: 2
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  module-config: \"subnetcache validator iterator\"
  qname-minimisation: no
  aggressive-nsec: no
  # test. is one of the names Unbound answers itself (RFC 6761) unless told not to.
  local-zone: \"test.\" nodefault
{anchors}{extra}
stub-zone:
  name: \"{zone}\"
  stub-addr: 127.0.0.1@{daemon_port}
remote-control:
  control-enable: no
",
                dir = dir.display()
            ),
        )
        .unwrap();
        let child = Command::new("unbound")
            .args(["-d", "-c", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(dir.join(format!("unbound-{port}.log")))
                    .map_or_else(|_| Stdio::null(), Stdio::from),
            )
            .spawn()
            .expect("unbound (Debian package `unbound`, installed by scripts/bootstrap)");
        let unbound = Unbound { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while unbound.try_ask(zone, RecordType::SOA).is_none() {
            assert!(Instant::now() < deadline, "unbound did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        unbound
    }

    fn try_ask(&self, name: &str, rtype: RecordType) -> Option<Message> {
        self.try_ask_from(name, rtype, NO_SUBNET)
    }

    fn try_ask_from(
        &self,
        name: &str,
        rtype: RecordType,
        subnet: Option<(std::net::IpAddr, u8)>,
    ) -> Option<Message> {
        let timeout = Duration::from_secs(5);
        dns_tests::signer::ask_do_from(self.port, name, rtype, true, subnet, timeout)
    }

    /// Every case answered NOERROR with AD=1 (validated; a compact NXDOMAIN is NOERROR).
    fn validates_all(&self) {
        for (name, rtype, negative) in CASES {
            let rtype: RecordType = rtype.parse().unwrap();
            let m = self
                .try_ask(&format!("{name}."), rtype)
                .unwrap_or_else(|| panic!("unbound: no answer for {name} {rtype}"));
            assert_eq!(
                m.metadata.response_code,
                ResponseCode::NoError,
                "unbound {name} {rtype}: {m:?}"
            );
            assert!(
                m.metadata.authentic_data,
                "unbound {name} {rtype}: AD=0: {m:?}"
            );
            let answered = m.answers.iter().any(|r| r.record_type() == rtype);
            assert_eq!(answered, !negative, "unbound {name} {rtype}: {m:?}");
        }
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        // SAFETY: signalling the child this test started, by its PID.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn ds_of(ksk: &Value) -> String {
    ksk["DSRecord"].as_str().unwrap().to_string()
}

fn dnssec(d: &Daemon, zone: &str) -> Value {
    let (status, v) = d.call("GET", &format!("/hostedzone/{zone}/dnssec"), None);
    assert_eq!(status, 200, "{v}");
    v
}

fn ksks(v: &Value) -> Vec<Value> {
    match &v["KeySigningKeys"] {
        Value::Array(items) => items.clone(),
        _ => Vec::new(),
    }
}

fn create_ksk(d: &Daemon, zone: &str, name: &str, status: &str) -> (u16, Value) {
    d.call(
        "POST",
        "/keysigningkey",
        Some(json!({
            "CallerReference": format!("ksk-{name}"),
            "HostedZoneId": zone,
            "KeyManagementServiceArn": format!("arn:aws:kms:us-east-1:111122223333:key/{name}"),
            "Name": name,
            "Status": status,
        })),
    )
}

fn post(d: &Daemon, path: &str) -> (u16, Value) {
    d.call("POST", path, None)
}

fn insync(d: &Daemon, (status, v): (u16, Value)) {
    assert_eq!(status, 200, "{v}");
    d.wait_insync(v["ChangeInfo"]["Id"].as_str().unwrap());
}

fn start(dir: &Path) -> Daemon {
    Daemon::start(dir, free_port(), free_port(), &[])
}

/// The DO answer to `name`/`rtype` straight from the daemon.
fn ask_do(d: &Daemon, name: &str, rtype: RecordType) -> Message {
    dns_tests::signer::ask_do(d.port, name, rtype, false, Duration::from_secs(2))
        .unwrap_or_else(|| panic!("no answer to {name} {rtype}"))
}

#[test]
fn a_zone_signed_through_the_api_validates_in_every_kind_of_answer() {
    let dir = temp_dir("dnssec-online");
    let d = start(&dir);
    let zone = d.create_zone(ZONE);
    fill(&d, &zone);

    // Nothing to sign with yet.
    let v = dnssec(&d, &zone);
    assert_eq!(v["Status"]["ServeSignature"], "NOT_SIGNING", "{v}");
    let (status, v) = post(&d, &format!("/hostedzone/{zone}/enable-dnssec"));
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v["Error"]["Code"], "KeySigningKeyWithActiveStatusNotFound",
        "{v}"
    );

    // A KSK, as Route 53 shows it.
    let (status, v) = create_ksk(&d, &zone, "first_ksk", "ACTIVE");
    assert_eq!(status, 201, "{v}");
    let ksk = v["KeySigningKey"].clone();
    assert_eq!(ksk["Name"], "first_ksk", "{v}");
    assert_eq!(ksk["Status"], "ACTIVE", "{v}");
    assert_eq!(ksk["Flag"], "257", "{v}");
    assert_eq!(ksk["SigningAlgorithmMnemonic"], "ECDSAP256SHA256", "{v}");
    assert_eq!(ksk["DigestAlgorithmMnemonic"], "SHA-256", "{v}");
    let tag = ksk["KeyTag"].as_str().unwrap();
    assert_eq!(
        ksk["DSRecord"].as_str().unwrap(),
        format!("{tag} 13 2 {}", ksk["DigestValue"].as_str().unwrap())
    );
    assert!(
        ksk["DNSKEYRecord"]
            .as_str()
            .unwrap()
            .starts_with("257 3 13 "),
        "{v}"
    );
    d.wait_insync(v["ChangeInfo"]["Id"].as_str().unwrap());
    // Bad requests change nothing.
    let (status, v) = create_ksk(&d, &zone, "first_ksk", "ACTIVE");
    assert_eq!(
        (status, &v["Error"]["Code"]),
        (409, &json!("KeySigningKeyAlreadyExists")),
        "{v}"
    );
    let (status, v) = create_ksk(&d, &zone, "no", "ACTIVE");
    assert_eq!(
        (status, &v["Error"]["Code"]),
        (400, &json!("InvalidKeySigningKeyName")),
        "{v}"
    );
    let (status, v) = create_ksk(&d, &zone, "third", "SOMETIMES");
    assert_eq!(
        (status, &v["Error"]["Code"]),
        (400, &json!("InvalidKeySigningKeyStatus")),
        "{v}"
    );
    let (status, v) = create_ksk(&d, "ZNOSUCHZONE", "third", "ACTIVE");
    assert_eq!(
        (status, &v["Error"]["Code"]),
        (404, &json!("NoSuchHostedZone")),
        "{v}"
    );
    assert_eq!(ksks(&dnssec(&d, &zone)).len(), 1);

    // Not signed until enabled: no DNSKEY, no RRSIG.
    let m = ask_do(&d, "www.online.test.", RecordType::A);
    assert!(
        m.answers.iter().all(|r| r.record_type() == RecordType::A),
        "{m:?}"
    );
    insync(&d, post(&d, &format!("/hostedzone/{zone}/enable-dnssec")));
    let v = dnssec(&d, &zone);
    assert_eq!(v["Status"]["ServeSignature"], "SIGNING", "{v}");
    let key_file = dir.join("store.dnssec-key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "{}", key_file.display());

    // Signed answers to DO queries only; a name that does not exist is a compact denial.
    let m = ask_do(&d, "www.online.test.", RecordType::A);
    let types: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types, [RecordType::A, RecordType::RRSIG], "{m:?}");
    let plain = d.ask("www.online.test.", RecordType::A);
    assert_eq!(plain.answers.len(), 1, "{plain:?}");
    let nx = ask_do(&d, "nothing.online.test.", RecordType::A);
    assert_eq!(nx.metadata.response_code, ResponseCode::NoError, "{nx:?}");
    let nsec = nx
        .authorities
        .iter()
        .find_map(|r| match &r.data {
            RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::NSEC(n)) => Some(n.clone()),
            _ => None,
        })
        .expect("an NSEC");
    assert_eq!(
        nsec.next_domain_name().to_string(),
        "\\000.nothing.online.test."
    );
    assert!(
        nsec.type_bit_maps().any(|t| t == RecordType::Unknown(128)),
        "NXNAME: {nsec:?}"
    );
    let plain_nx = d.ask("nothing.online.test.", RecordType::A);
    assert_eq!(plain_nx.metadata.response_code, ResponseCode::NXDomain);
    // The referral to the unsigned child proves there is no DS.
    let referral = ask_do(&d, "host.sub.online.test.", RecordType::A);
    let types: Vec<RecordType> = referral
        .authorities
        .iter()
        .map(|r| r.record_type())
        .collect();
    assert_eq!(
        types,
        [RecordType::NS, RecordType::NSEC, RecordType::RRSIG],
        "{referral:?}"
    );
    // CDS tells the parent the DS GetDNSSEC shows.
    let cds = ask_do(&d, "online.test.", RecordType::CDS);
    let shown: Vec<String> = cds
        .answers
        .iter()
        .filter(|r| r.record_type() == RecordType::CDS)
        .map(|r| r.data.to_string().to_uppercase())
        .collect();
    assert_eq!(shown, [ds_of(&ksk).to_uppercase()], "{cds:?}");
    // The multivalue RRset is served with one TTL (its smallest), as signed.
    let mv = ask_do(&d, "mv.online.test.", RecordType::A);
    assert!(mv.answers.iter().all(|r| r.ttl == 60), "{mv:?}");

    let anchors = delv_anchor(&dir, &ksk);
    delv_validates_all(&d, &anchors);
    let unbound = Unbound::start(&dir, d.port, &[ds_of(&ksk)], "");
    unbound.validates_all();
    drop(unbound);

    // A restart from the store: the same keys, still valid for the same DS.
    drop(d);
    let d = start(&dir);
    delv_validates_all(&d, &anchors);

    // A KSK rollover through the API: a second KSK, then the first retired. A validator
    // that trusts only the new DS validates all along.
    let (status, v) = post(&d, &format!("/keysigningkey/{zone}/first_ksk/deactivate"));
    assert_eq!(
        (status, &v["Error"]["Code"]),
        (400, &json!("KeySigningKeyInUse")),
        "{v}"
    );
    let (status, v) = d.call("DELETE", &format!("/keysigningkey/{zone}/first_ksk"), None);
    assert_eq!(
        (status, &v["Error"]["Code"]),
        (400, &json!("InvalidKeySigningKeyStatus")),
        "{v}"
    );
    let (status, v) = create_ksk(&d, &zone, "second_ksk", "ACTIVE");
    assert_eq!(status, 201, "{v}");
    let second = v["KeySigningKey"].clone();
    d.wait_insync(v["ChangeInfo"]["Id"].as_str().unwrap());
    let (status, v) = create_ksk(&d, &zone, "third_ksk", "INACTIVE");
    assert_eq!(
        (status, &v["Error"]["Code"]),
        (400, &json!("TooManyKeySigningKeys")),
        "{v}"
    );
    let dnskeys = ask_do(&d, "online.test.", RecordType::DNSKEY);
    let sigs = dnskeys
        .answers
        .iter()
        .filter(|r| r.record_type() == RecordType::RRSIG)
        .count();
    assert_eq!(sigs, 2, "both KSKs sign the DNSKEY RRset: {dnskeys:?}");
    let new_anchors = delv_anchor(&dir, &second);
    delv_validates_all(&d, &new_anchors);
    insync(
        &d,
        post(&d, &format!("/keysigningkey/{zone}/first_ksk/deactivate")),
    );
    insync(
        &d,
        d.call("DELETE", &format!("/keysigningkey/{zone}/first_ksk"), None),
    );
    let v = dnssec(&d, &zone);
    let names: Vec<Value> = ksks(&v).iter().map(|k| k["Name"].clone()).collect();
    assert_eq!(names, [json!("second_ksk")], "{v}");
    delv_validates_all(&d, &new_anchors);
    let unbound = Unbound::start(&dir, d.port, &[ds_of(&second)], "");
    unbound.validates_all();
    drop(unbound);
    let verdict = delv(&d, &anchors, "www.online.test", "A");
    assert!(
        !verdict.contains("fully validated"),
        "the retired KSK's DS: {verdict}"
    );

    // Signing disabled: no more signatures, and a validator trusting the DS refuses the zone.
    insync(&d, post(&d, &format!("/hostedzone/{zone}/disable-dnssec")));
    assert_eq!(dnssec(&d, &zone)["Status"]["ServeSignature"], "NOT_SIGNING");
    let m = ask_do(&d, "www.online.test.", RecordType::A);
    assert!(
        m.answers.iter().all(|r| r.record_type() == RecordType::A),
        "{m:?}"
    );
    let verdict = delv(&d, &new_anchors, "www.online.test", "A");
    assert!(verdict.contains("resolution failed"), "{verdict}");
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The key tags of the ZSKs (flags 256) the daemon publishes now.
fn zsk_tags(d: &Daemon) -> Vec<u16> {
    let m = ask_do(d, "online.test.", RecordType::DNSKEY);
    let mut tags: Vec<u16> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::DNSKEY(k))
                if !k.secure_entry_point() =>
            {
                k.calculate_key_tag().ok()
            }
            _ => None,
        })
        .collect();
    tags.sort();
    tags
}

/// Queries `unbound` (which re-fetches everything each second) for a positive and a negative
/// answer and the DNSKEY RRset until `done` or `limit` (bounded: at most 5,000 rounds); every
/// answer must be validated (AD=1, NOERROR). `watch` runs each round. Returns the rounds.
fn stream(unbound: &Unbound, limit: Duration, mut watch: impl FnMut() -> bool) -> usize {
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < 5_000 && start.elapsed() < limit {
        for (name, rtype) in [
            ("www.online.test.", RecordType::A),
            ("nothing.online.test.", RecordType::A),
            ("online.test.", RecordType::DNSKEY),
        ] {
            let m = unbound
                .try_ask(name, rtype)
                .unwrap_or_else(|| panic!("no answer for {name} {rtype} after {rounds} rounds"));
            assert!(
                m.metadata.response_code == ResponseCode::NoError && m.metadata.authentic_data,
                "{name} {rtype} not validated after {rounds} rounds: {m:?}"
            );
        }
        rounds += 1;
        if watch() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    rounds
}

/// Rollovers under a continuous stream of validated queries: the ZSK rolls over by itself
/// (pre-publication, on short `[dnssec]` timings), twice, and a KSK is rolled over through the
/// API (the parent's DS set holding both while the old key leaves); Unbound, re-fetching
/// every second, never fails to validate.
#[test]
fn zsk_and_ksk_rollovers_under_validated_queries_never_fail() {
    let dir = temp_dir("dnssec-rollover");
    let config = dir.join("dns.toml");
    std::fs::write(
        &config,
        "[dnssec]\nzsk_lifetime_secs = 6\ndnskey_ttl_secs = 1\npropagation_delay_secs = 1\n",
    )
    .unwrap();
    let d = Daemon::start(
        &dir,
        free_port(),
        free_port(),
        &["--config", config.to_str().unwrap()],
    );
    let zone = d.create_zone(ZONE);
    // Short TTLs everywhere, so a retired key leaves within the test.
    let changes = json!([
        {"Action": "UPSERT", "ResourceRecordSet":
            set("online.test.", "NS", 2, &["ns1.online.test."])},
        {"Action": "UPSERT", "ResourceRecordSet":
            set("online.test.", "SOA", 2, &["ns1.online.test. hostmaster.online.test. 1 7200 900 1209600 1"])},
        create(a("www.online.test.", 2, &["192.0.2.1"])),
    ]);
    let (status, v) = d.change(&zone, changes);
    assert_eq!(status, 200, "{v}");
    d.wait_insync(v["ChangeInfo"]["Id"].as_str().unwrap());
    let (status, v) = create_ksk(&d, &zone, "old_ksk", "ACTIVE");
    assert_eq!(status, 201, "{v}");
    let old = v["KeySigningKey"].clone();
    insync(&d, post(&d, &format!("/hostedzone/{zone}/enable-dnssec")));

    // The ZSK: published next, signing, retired, gone; twice over.
    let unbound = Unbound::start(&dir, d.port, &[ds_of(&old)], "  cache-max-ttl: 1\n");
    let mut seen: Vec<Vec<u16>> = vec![zsk_tags(&d)];
    let rounds = stream(&unbound, Duration::from_secs(40), || {
        let tags = zsk_tags(&d);
        if seen.last() != Some(&tags) {
            seen.push(tags);
        }
        // Two full rollovers: one key, two, one (the third key), ... as states change.
        let all: std::collections::BTreeSet<u16> = seen.iter().flatten().copied().collect();
        all.len() >= 3 && seen.last().is_some_and(|t| t.len() == 1)
    });
    let all: std::collections::BTreeSet<u16> = seen.iter().flatten().copied().collect();
    assert!(
        all.len() >= 3,
        "two ZSK rollovers in {rounds} rounds: {seen:?}"
    );
    assert!(
        seen.iter().any(|t| t.len() == 2),
        "a key published beside another: {seen:?}"
    );
    eprintln!("ZSK tags as the rollovers went, in {rounds} validated rounds: {seen:?}");
    drop(unbound);

    // The KSK, through the API: a new one beside the old (the parent then lists both DS),
    // the old one deactivated and deleted while the stream goes on.
    let (status, v) = create_ksk(&d, &zone, "new_ksk", "ACTIVE");
    assert_eq!(status, 201, "{v}");
    let new = v["KeySigningKey"].clone();
    d.wait_insync(v["ChangeInfo"]["Id"].as_str().unwrap());
    let unbound = Unbound::start(
        &dir,
        d.port,
        &[ds_of(&old), ds_of(&new)],
        "  cache-max-ttl: 1\n",
    );
    let mut step = 0;
    let rounds = stream(&unbound, Duration::from_secs(20), || {
        step += 1;
        match step {
            10 => insync(
                &d,
                post(&d, &format!("/keysigningkey/{zone}/old_ksk/deactivate")),
            ),
            20 => insync(
                &d,
                d.call("DELETE", &format!("/keysigningkey/{zone}/old_ksk"), None),
            ),
            _ => {}
        }
        step >= 40
    });
    assert!(rounds >= 40, "{rounds} rounds");
    let v = dnssec(&d, &zone);
    let names: Vec<Value> = ksks(&v).iter().map(|k| k["Name"].clone()).collect();
    assert_eq!(names, [json!("new_ksk")], "{v}");
    drop(unbound);
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `dnssec.algorithm = 15`: a zone signed with Ed25519 keys, through the CLI, validates too.
#[test]
fn a_zone_signed_with_ed25519_validates() {
    let dir = temp_dir("dnssec-ed25519");
    let config = dir.join("dns.toml");
    std::fs::write(&config, "[dnssec]\nalgorithm = 15\n").unwrap();
    let d = Daemon::start(
        &dir,
        free_port(),
        free_port(),
        &["--config", config.to_str().unwrap()],
    );
    let zone = d.create_zone(ZONE);
    fill(&d, &zone);
    // Through the CLI this time: a KSK, signing on, the DS to give the parent.
    let api = d.api.trim_end_matches("/2013-04-01").to_string();
    let cli = |args: &[&str]| {
        let out = Command::new(common::BIN)
            .args(args)
            .args(["--api-url", &api])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "dns-user {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let made = cli(&["dnssec", "create-ksk", "online.test", "ed_ksk"]);
    assert!(
        made.contains("ed_ksk") && made.contains("ED25519"),
        "{made}"
    );
    let enabled = cli(&["dnssec", "enable", "online.test", "--json"]);
    let enabled: Value = serde_json::from_str(&enabled).unwrap();
    d.wait_insync(enabled["ChangeInfo"]["Id"].as_str().unwrap());
    let shown = cli(&["dnssec", "get", "online.test"]);
    assert!(shown.contains("signing: SIGNING"), "{shown}");
    let ksk = ksks(&dnssec(&d, &zone))[0].clone();
    assert!(shown.contains(ds_of(&ksk).as_str()), "{shown}");
    assert_eq!(ksk["SigningAlgorithmMnemonic"], "ED25519", "{ksk}");
    assert!(ds_of(&ksk).contains(" 15 2 "), "{ksk}");
    let anchors = delv_anchor(&dir, &ksk);
    delv_validates(
        &d,
        &anchors,
        &[
            ("www.online.test", "A", false),
            ("online.test", "DNSKEY", false),
            ("w.online.test", "A", false),
            ("nothing.online.test", "A", true),
        ],
    );
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A KSK the operator gives (`file:NAME` as KeyManagementServiceArn, a PEM PKCS#8 key made by
/// `openssl genpkey` in `dnssec.import_dir`): the zone is signed with exactly that key, and
/// names outside the folder, or no such folder, are refused.
#[test]
fn an_operators_own_key_signing_key_signs_the_zone() {
    let dir = temp_dir("dnssec-import");
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let pem = keys.join("ksk.pem");
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&pem)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::set_permissions(&pem, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    // The public key as openssl sees it: the uncompressed point's X and Y, what DNSKEY holds.
    let der = Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&pem)
        .output()
        .unwrap()
        .stdout;
    let public = data_encoding::BASE64.encode(&der[der.len() - 64..]);
    let config = dir.join("dns.toml");
    std::fs::write(&config, "[dnssec]\nimport_dir = \"keys\"\n").unwrap();
    let d = Daemon::start(
        &dir,
        free_port(),
        free_port(),
        &["--config", config.to_str().unwrap()],
    );
    let zone = d.create_zone(ZONE);
    fill(&d, &zone);
    let with_arn = |name: &str, arn: &str| {
        d.call(
            "POST",
            "/keysigningkey",
            Some(
                json!({"CallerReference": name, "HostedZoneId": zone, "Name": name,
                        "KeyManagementServiceArn": arn, "Status": "ACTIVE"}),
            ),
        )
    };
    for arn in [
        "file:../dns.toml",
        "file:",
        "file:missing.pem",
        "file:.hidden",
    ] {
        let (status, v) = with_arn("refused_key", arn);
        assert_eq!(
            (status, &v["Error"]["Code"]),
            (400, &json!("InvalidKMSArn")),
            "{arn}: {v}"
        );
    }
    let (status, v) = with_arn("given_ksk", "file:ksk.pem");
    assert_eq!(status, 201, "{v}");
    let ksk = v["KeySigningKey"].clone();
    assert_eq!(ksk["PublicKey"], json!(public), "{v}");
    insync(&d, post(&d, &format!("/hostedzone/{zone}/enable-dnssec")));
    let anchors = delv_anchor(&dir, &ksk);
    let cases = [
        ("www.online.test", "A", false),
        ("nothing.online.test", "A", true),
    ];
    delv_validates(&d, &anchors, &cases);
    drop(d);

    // Without dnssec.import_dir, file: ARNs are refused.
    let d = Daemon::start(&dir, free_port(), free_port(), &[]);
    let (status, v) = d.call(
        "POST",
        "/keysigningkey",
        Some(
            json!({"CallerReference": "x", "HostedZoneId": zone, "Name": "other_ksk",
                    "KeyManagementServiceArn": "file:other.pem", "Status": "ACTIVE"}),
        ),
    );
    assert_eq!(
        (status, &v["Error"]["Code"]),
        (400, &json!("InvalidKMSArn")),
        "{v}"
    );
    assert!(
        v["Error"]["Message"]
            .as_str()
            .unwrap()
            .contains("dnssec.import_dir"),
        "{v}"
    );
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every routing policy of the policy zone (located by the config's tables), signed here and
/// asked through Unbound with an EDNS Client Subnet from two client networks (Unbound passes
/// the subnet on: `send-client-subnet`): every answer validated (AD=1), and the located ones
/// differ between the networks, as the policies say.
#[test]
fn every_routing_policy_validates_through_unbound_from_several_client_networks() {
    let dir = temp_dir("dnssec-policies");
    let config = dir.join("dns.toml");
    std::fs::write(&config, dns_tests::fixtures::policy_config()).unwrap();
    let d = Daemon::start(
        &dir,
        free_port(),
        free_port(),
        &["--config", config.to_str().unwrap()],
    );
    let (status, zones) = d.call("GET", "/hostedzone", None);
    assert_eq!(status, 200, "{zones}");
    let zone = zones["HostedZones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["Name"] == "example.com.")
        .map(|z| common::bare(z["Id"].as_str().unwrap()).to_string())
        .expect("the policy zone");
    let (status, v) = create_ksk(&d, &zone, "policy_ksk", "ACTIVE");
    assert_eq!(status, 201, "{v}");
    let ksk = v["KeySigningKey"].clone();
    insync(&d, post(&d, &format!("/hostedzone/{zone}/enable-dnssec")));
    let unbound = Unbound::start_for(
        "example.com.",
        &dir,
        d.port,
        &[ds_of(&ksk)],
        "  send-client-subnet: 127.0.0.1\n  client-subnet-always-forward: yes\n  max-client-subnet-ipv4: 24\n",
    );
    let paris: std::net::IpAddr = "198.51.100.0".parse().unwrap();
    let oregon: std::net::IpAddr = "203.0.113.0".parse().unwrap();
    let mut answers = std::collections::BTreeMap::new();
    for name in ["w", "mv", "geo", "lat", "ip", "prox", "tree", "wa"] {
        for (network, subnet) in [("paris", paris), ("oregon", oregon)] {
            let qname = format!("{name}.example.com.");
            let m = unbound
                .try_ask_from(&qname, RecordType::A, Some((subnet, 24)))
                .unwrap_or_else(|| panic!("no answer for {qname} from {network}"));
            assert_eq!(
                m.metadata.response_code,
                ResponseCode::NoError,
                "{qname} {network}: {m:?}"
            );
            assert!(
                m.metadata.authentic_data,
                "{qname} from {network}: AD=0: {m:?}"
            );
            let mut got: Vec<String> = m
                .answers
                .iter()
                .filter(|r| r.record_type() == RecordType::A)
                .map(|r| r.data.to_string())
                .collect();
            got.sort();
            assert!(!got.is_empty(), "{qname} from {network}: no A: {m:?}");
            answers.insert((name, network), got);
        }
    }
    for name in ["geo", "lat", "ip", "prox"] {
        assert_ne!(
            answers[&(name, "paris")],
            answers[&(name, "oregon")],
            "{name}: the client's network chose the answer"
        );
    }
    drop(unbound);
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}
