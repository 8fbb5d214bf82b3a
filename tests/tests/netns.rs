//! End to end in network namespaces: the daemon attached to one end of a veth pair, dig and
//! kdig in the other namespace. A/AAAA must be answered by XDP (the XDP counter moves and the
//! server namespace's UDP socket layer never sees the queries); MX, TXT, NXDOMAIN by userspace.
//! Over IPv4 and IPv6, in native and generic (skb) mode. Needs root; never skips.

use std::collections::BTreeSet;
use std::time::Duration;

use dns_tests::{SERVER_V4, SERVER_V6, Side, Testbed, metric};

const BIN: &str = env!("CARGO_BIN_EXE_dns-user-under-test");
const ZONE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/example.com.zone");
const ANSWERED: &str = "dns_xdp_packets_total{action=\"tx\",reason=\"answered\"}";

struct Family {
    server: String,
    udp_in: fn(&Testbed) -> u64,
}

fn families() -> [Family; 2] {
    [
        Family {
            server: SERVER_V4.to_string(),
            udp_in: |bed| bed.snmp(Side::Server, "Udp", "InDatagrams").unwrap(),
        },
        Family {
            server: SERVER_V6.to_string(),
            udp_in: |bed| bed.snmp6(Side::Server, "Udp6InDatagrams").unwrap(),
        },
    ]
}

fn answered_by_xdp(bed: &Testbed) -> u64 {
    let page = bed.metrics_page().expect("metrics endpoint");
    metric(&page, ANSWERED).expect("XDP answered counter")
}

/// `+short` answer lines of dig or kdig, as a set.
fn short(bed: &Testbed, tool: &str, server: &str, name: &str, qtype: &str) -> BTreeSet<String> {
    let at = format!("@{server}");
    let args: Vec<&str> = match tool {
        "dig" => vec![&at, "+short", "+tries=1", "+time=2", name, qtype],
        _ => vec![&at, "+short", "+retry=0", "+timeout=2", name, qtype],
    };
    bed.output(Side::Client, tool, &args)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn end_to_end(mode: &str) {
    let mut bed = Testbed::create("dnsxt").unwrap();
    let server_if = bed.server_if.clone();
    let zone_arg = format!("example.com.={ZONE}");
    let daemon = bed
        .start_service(BIN, mode, &["--zone-file", &zone_arg], false)
        .unwrap();
    let log = daemon.log().join("\n");
    assert!(
        log.contains(&format!("XDP attached to {server_if} in {mode} mode")),
        "{log}"
    );

    for fam in families() {
        let s = fam.server.as_str();
        // Fast path: A/AAAA answered in XDP, never reaching the server's UDP sockets.
        let udp_before = (fam.udp_in)(&bed);
        let xdp_before = answered_by_xdp(&bed);
        let www_a = set(&["192.0.2.1", "192.0.2.2"]);
        assert_eq!(
            short(&bed, "kdig", s, "www.example.com", "A"),
            www_a,
            "{mode} {s}"
        );
        assert_eq!(
            short(&bed, "dig", s, "www.example.com", "A"),
            www_a,
            "{mode} {s} (dig, EDNS + cookie)"
        );
        assert_eq!(
            short(&bed, "kdig", s, "WwW.ExAmPlE.cOm", "A"),
            www_a,
            "{mode} {s}"
        );
        assert_eq!(
            short(&bed, "kdig", s, "www.example.com", "AAAA"),
            set(&["2001:db8::1"])
        );
        assert_eq!(
            short(&bed, "dig", s, "ns1.example.com", "AAAA"),
            set(&["2001:db8::53"])
        );
        let xdp_after = answered_by_xdp(&bed);
        assert_eq!(
            xdp_after - xdp_before,
            5,
            "{mode} {s}: every A/AAAA query answered by XDP"
        );
        assert_eq!(
            (fam.udp_in)(&bed),
            udp_before,
            "{mode} {s}: the server's UDP layer saw a fast-path query"
        );

        // Slow path: everything else reaches userspace and is answered there.
        assert_eq!(
            short(&bed, "kdig", s, "example.com", "MX"),
            set(&["10 mail.example.com."])
        );
        assert_eq!(
            short(&bed, "dig", s, "example.com", "TXT"),
            set(&["\"v=spf1 mx -all\""])
        );
        let nx = bed
            .output(
                Side::Client,
                "kdig",
                &[
                    &format!("@{s}"),
                    "+retry=0",
                    "+timeout=2",
                    "nope.example.com",
                    "A",
                ],
            )
            .unwrap();
        assert!(
            nx.contains("status: NXDOMAIN") && nx.contains("SOA"),
            "{nx}"
        );
        assert_eq!(
            (fam.udp_in)(&bed),
            udp_before + 3,
            "{mode} {s}: slow-path queries go to userspace"
        );
        assert_eq!(answered_by_xdp(&bed), xdp_after);
        // TCP goes to userspace too.
        let tcp = bed
            .output(
                Side::Client,
                "kdig",
                &[
                    &format!("@{s}"),
                    "+tcp",
                    "+short",
                    "+timeout=2",
                    "www.example.com",
                    "A",
                ],
            )
            .unwrap();
        assert_eq!(
            tcp.lines().map(str::to_string).collect::<BTreeSet<_>>(),
            www_a
        );
    }

    // Orderly shutdown detaches XDP and exits cleanly.
    let status = bed
        .stop(daemon.pid, Duration::from_secs(10))
        .expect("daemon stopped");
    assert!(
        status.success(),
        "daemon exit: {status}\n{}",
        daemon.log().join("\n")
    );
    assert!(daemon.log().iter().any(|l| l.contains("XDP detached")));
}

#[test]
fn native_mode_ipv4_and_ipv6() {
    end_to_end("native");
}

#[test]
fn generic_mode_ipv4_and_ipv6() {
    end_to_end("skb");
}

/// One bad zone never stops the others: the daemon logs it (file and line) and serves the
/// rest, by XDP too; the bad zone's names are refused, not answered from nothing.
#[test]
fn a_bad_zone_file_is_logged_and_the_other_zones_are_served() {
    let mut bed = Testbed::create("dnsxb").unwrap();
    let dir = std::env::temp_dir().join(format!("dnsx-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let zone = dir.join("bad.zone");
    std::fs::write(
        &zone,
        "$TTL 60\n@ IN SOA ns1 host 1 2 3 4 5\nwww IN A 300.1.1.1\n",
    )
    .unwrap();
    let server_if = bed.server_if.clone();
    let good = format!("example.com.={ZONE}");
    let bad = format!("bad.example.={}", zone.display());
    let daemon = bed
        .start_service(
            BIN,
            "skb",
            &["--zone-file", &good, "--zone-file", &bad],
            false,
        )
        .unwrap();
    let log = daemon.log().join("\n");
    assert!(
        log.contains("bad.zone:3: bad A record") && log.contains("not served"),
        "{log}"
    );
    assert!(
        log.contains(&format!("XDP attached to {server_if} in skb mode")),
        "{log}"
    );
    let xdp_before = answered_by_xdp(&bed);
    assert_eq!(
        short(&bed, "kdig", &SERVER_V4.to_string(), "www.example.com", "A"),
        set(&["192.0.2.1", "192.0.2.2"])
    );
    assert_eq!(answered_by_xdp(&bed) - xdp_before, 1);
    let refused = bed
        .output(
            Side::Client,
            "kdig",
            &[
                &format!("@{SERVER_V4}"),
                "+retry=0",
                "+timeout=2",
                "www.bad.example",
                "A",
            ],
        )
        .unwrap();
    assert!(refused.contains("status: REFUSED"), "{refused}");
    let status = bed.stop(daemon.pid, Duration::from_secs(5));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");

    // No such interface: a clear error, not a panic.
    let out = bed
        .command(Side::Server, BIN)
        .args([
            "serve",
            "--listen",
            "192.0.2.1:53",
            "--iface",
            "nosuchif0",
            "--xdp-mode",
            "skb",
            "--store",
            &bed.store(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("attaching XDP to interface nosuchif0") && !stderr.contains("panicked"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `dns-user reload --pid-file` and waits for a new daemon log line containing `expect`.
fn request_reload(daemon: &dns_tests::Process, pid_file: &str, expect: &str) {
    let before = daemon.log().len();
    let out = std::process::Command::new(BIN)
        .args(["reload", "--pid-file", pid_file])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !daemon.log()[before..].iter().any(|l| l.contains(expect)) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {expect:?}: {:?}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn reload_updates_both_paths_and_keeps_the_last_good_zone() {
    let dir = std::env::temp_dir().join(format!("dnsx-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let zone = dir.join("example.com.zone");
    let original = std::fs::read_to_string(ZONE).unwrap();
    std::fs::write(&zone, &original).unwrap();
    let pid_file = dir.join("dns.pid");
    let (zone_arg, pid_arg) = (
        format!("example.com.={}", zone.display()),
        pid_file.display().to_string(),
    );
    let mut bed = Testbed::create("dnsxl").unwrap();
    let daemon = bed
        .start_service(
            BIN,
            "skb",
            &["--zone-file", &zone_arg, "--pid-file", &pid_arg],
            false,
        )
        .unwrap();
    let s = SERVER_V4.to_string();
    let reload = |expect: &str| request_reload(&daemon, &pid_arg, expect);

    // A change reaches the XDP maps (A) and the userspace server (MX).
    let changed = original
        .replace("www     IN A    192.0.2.1", "www     IN A    192.0.2.111")
        .replace("IN MX   10 mail", "IN MX   20 mail");
    std::fs::write(&zone, &changed).unwrap();
    reload("reloaded:");
    let xdp_before = answered_by_xdp(&bed);
    assert_eq!(
        short(&bed, "kdig", &s, "www.example.com", "A"),
        set(&["192.0.2.111", "192.0.2.2"])
    );
    assert_eq!(
        answered_by_xdp(&bed),
        xdp_before + 1,
        "answered from the new maps"
    );
    assert_eq!(
        short(&bed, "kdig", &s, "example.com", "MX"),
        set(&["20 mail.example.com."])
    );

    // A broken zone keeps the last good version and the error names file and line.
    std::fs::write(&zone, changed.replace("192.0.2.111", "192.0.2.1111")).unwrap();
    reload("keeping its last good version");
    let log = daemon.log().join("\n");
    assert!(
        log.contains(&format!("{}:", zone.display())) && log.contains("bad A record"),
        "{log}"
    );
    assert_eq!(
        short(&bed, "kdig", &s, "www.example.com", "A"),
        set(&["192.0.2.111", "192.0.2.2"])
    );
    assert_eq!(
        short(&bed, "kdig", &s, "example.com", "MX"),
        set(&["20 mail.example.com."])
    );
    drop(bed);
    assert!(!pid_file.exists(), "the pid file is removed on exit");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `dig +subnet` answer and echoed ECS ("address/source/scope"), from the client namespace.
fn dig_subnet(bed: &Testbed, subnet: Option<&str>) -> (String, Option<String>) {
    let sub = subnet.map(|s| format!("+subnet={s}"));
    let mut args = vec!["@192.0.2.1", "www.example.com", "A", "+tries=1", "+time=2"];
    args.extend(sub.as_deref());
    let out = bed.output(Side::Client, "dig", &args).unwrap();
    let answer = out
        .lines()
        .find(|l| l.starts_with("www.example.com.") && l.contains("\tA\t"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_default()
        .to_string();
    let ecs = out
        .lines()
        .find_map(|l| l.strip_prefix("; CLIENT-SUBNET: "))
        .map(str::to_string);
    (answer, ecs)
}

#[test]
fn geolocation_and_ip_based_routing_follow_the_client_subnet() {
    for (example, expected) in [
        (
            "geolocation",
            [
                (
                    Some("198.51.100.0/24"),
                    "192.0.2.10",
                    Some("198.51.100.0/24/24"),
                ),
                (
                    Some("203.0.113.0/24"),
                    "192.0.2.20",
                    Some("203.0.113.0/24/24"),
                ),
                (None, "192.0.2.30", None),
            ],
        ),
        (
            "ip-based",
            [
                (
                    Some("198.51.100.0/24"),
                    "192.0.2.10",
                    Some("198.51.100.0/24/24"),
                ),
                (
                    Some("203.0.113.0/24"),
                    "192.0.2.20",
                    Some("203.0.113.0/24/24"),
                ),
                // A /16 client prefix is shorter than the /24 office block: the default.
                (
                    Some("198.51.0.0/16"),
                    "192.0.2.30",
                    Some("198.51.0.0/16/16"),
                ),
            ],
        ),
    ] {
        let mut bed = Testbed::create("dnsxe").unwrap();
        let config = format!("{}/../examples/{example}.toml", env!("CARGO_MANIFEST_DIR"));
        let daemon = bed
            .start_service(BIN, "skb", &["--config", &config], false)
            .unwrap();
        for (subnet, address, ecs) in expected {
            let (got, echoed) = dig_subnet(&bed, subnet);
            assert_eq!(
                got,
                address,
                "{example} {subnet:?}\n{}",
                daemon.log().join("\n")
            );
            assert_eq!(echoed.as_deref(), ecs, "{example} {subnet:?}: echoed ECS");
        }
    }
}

#[test]
fn location_data_reloads_without_a_restart() {
    let dir = std::env::temp_dir().join(format!("dnsx-geo-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let example = std::fs::read_to_string(format!(
        "{}/../examples/geolocation.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    // Also a record set that needs [location.regions]: every reload must resolve it too.
    let example = example
        + "\n[location.regions]\n\"eu-west-3\" = [48.86, 2.35]\n\
           \n[[zone.record]]\nname = \"near\"\ntype = \"A\"\nset_id = \"paris\"\n\
           geoproximity = { region = \"eu-west-3\" }\nttl = 60\nvalues = [\"192.0.2.40\"]\n";
    let config = dir.join("geo.toml");
    std::fs::write(&config, &example).unwrap();
    let pid_file = dir.join("dns.pid");
    let (config_arg, pid_arg) = (config.display().to_string(), pid_file.display().to_string());
    let mut bed = Testbed::create("dnsxg").unwrap();
    let daemon = bed
        .start_service(
            BIN,
            "skb",
            &["--config", &config_arg, "--pid-file", &pid_arg],
            false,
        )
        .unwrap();
    assert_eq!(
        dig_subnet(&bed, Some("198.51.100.0/24")).0,
        "192.0.2.10",
        "FR"
    );

    // The geo table now puts 198.51.100.0/24 in North America.
    let moved = example.replace(
        r#"{ prefix = "198.51.100.0/24", continent = "EU", country = "FR" }"#,
        r#"{ prefix = "198.51.100.0/24", continent = "NA", country = "CA" }"#,
    );
    assert_ne!(moved, example, "the example's geo table changed shape");
    std::fs::write(&config, moved).unwrap();
    request_reload(&daemon, &pid_arg, "reloaded:");
    let failures: Vec<String> = daemon
        .log()
        .into_iter()
        .filter(|l| l.contains("failed"))
        .collect();
    assert!(failures.is_empty(), "every zone reloads: {failures:?}");
    assert_eq!(
        dig_subnet(&bed, Some("198.51.100.0/24")).0,
        "192.0.2.20",
        "now NA"
    );
    drop(bed);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Maps sized too small for what the API adds: past nine tenths of the answer map the daemon
/// warns, with the remedy; the change that does not fit turns the fast path off, and
/// userspace answers every name, the new ones included, with nothing lost.
#[test]
fn a_zone_outgrowing_its_maps_warns_then_leaves_every_answer_to_userspace() {
    let mut bed = Testbed::create("dnscap").unwrap();
    let zone_arg = format!("example.com.={ZONE}");
    // The example zone compiles to 9 answer entries.
    let daemon = bed
        .start_service(
            BIN,
            "native",
            &["--zone-file", &zone_arg, "--max-entries", "11"],
            false,
        )
        .unwrap();
    let log = daemon.log().join("\n");
    assert!(log.contains("XDP maps: 11 answer entries"), "{log}");
    let add = |bed: &Testbed, name: &str, address: &str| {
        let batch = bed.dir.join("batch.json");
        std::fs::write(&batch, dns_tests::a_record_batch("CREATE", name, address)).unwrap();
        bed.output(
            Side::Server,
            BIN,
            &["change", "apply", batch.to_str().unwrap(), "--wait"],
        )
        .unwrap();
    };
    add(&bed, "n1.example.com.", "192.0.2.101"); // 10 of 11: beyond nine tenths
    daemon
        .wait_for(
            &mut bed,
            "XDP answer map 10 of 11 entries full",
            Duration::from_secs(5),
        )
        .unwrap();
    add(&bed, "n2.example.com.", "192.0.2.102"); // 11 of 11: still fits
    let before = answered_by_xdp(&bed);
    assert_eq!(bed.dig("n2.example.com", "A").trim(), "192.0.2.102");
    assert_eq!(answered_by_xdp(&bed), before + 1, "still answered by XDP");

    add(&bed, "n3.example.com.", "192.0.2.103"); // 12: does not fit
    daemon
        .wait_for(&mut bed, "fast path off", Duration::from_secs(5))
        .unwrap();
    let before = answered_by_xdp(&bed);
    for (name, address) in [
        ("n3.example.com", "192.0.2.103"),
        ("n1.example.com", "192.0.2.101"),
        ("mail.example.com", "192.0.2.25"),
    ] {
        assert_eq!(bed.dig(name, "A").trim(), address, "{name}");
    }
    assert_eq!(
        answered_by_xdp(&bed),
        before,
        "userspace answers everything"
    );
}

/// A zone signed elsewhere through a real interface: a validating resolver's query (DO set)
/// is answered by XDP with the A records and their RRSIG, never reaching the server's UDP
/// sockets; a query without DO gets the records alone, also from XDP.
#[test]
fn a_signed_zone_is_answered_with_its_rrsigs_by_xdp() {
    let mut bed = Testbed::create("dnsxs").unwrap();
    let dir = std::env::temp_dir().join(format!("dnsx-signed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let zone = dir.join("signed.zone");
    std::fs::write(&zone, dns_tests::fixtures::SIGNED_ZONE).unwrap();
    let arg = format!("signed.test.={}", zone.display());
    let daemon = bed
        .start_service(BIN, "skb", &["--zone-file", &arg], false)
        .unwrap();
    let server = SERVER_V4.to_string();
    let udp_before = bed.snmp(Side::Server, "Udp", "InDatagrams").unwrap();
    let xdp_before = answered_by_xdp(&bed);
    let at = format!("@{server}");
    let signed = bed
        .output(
            Side::Client,
            "kdig",
            &[
                &at,
                "+dnssec",
                "+retry=0",
                "+timeout=2",
                "www.signed.test",
                "A",
            ],
        )
        .unwrap();
    assert!(
        signed.contains("192.0.2.1") && signed.contains("RRSIG") && signed.contains("62856"),
        "{signed}"
    );
    assert_eq!(
        short(&bed, "kdig", &server, "www.signed.test", "A"),
        set(&["192.0.2.1"])
    );
    assert_eq!(
        answered_by_xdp(&bed) - xdp_before,
        2,
        "both answered by XDP"
    );
    assert_eq!(
        bed.snmp(Side::Server, "Udp", "InDatagrams").unwrap(),
        udp_before,
        "the server's UDP layer saw a fast-path query"
    );
    let status = bed.stop(daemon.pid, Duration::from_secs(5));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
