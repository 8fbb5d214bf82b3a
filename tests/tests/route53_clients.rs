//! Route 53's own clients, unchanged, drive the daemon: boto3 (every operation, paginators, the
//! waiter, errors), aws-cli (the commands an operator types) and octoDNS with its Route 53
//! provider (a zone with weighted, geolocation, failover and subnet dynamic records, health
//! checks and a CIDR collection, synced, then synced again with nothing to change). Requests are signed with SigV4 and the
//! daemon verifies them (it has access keys). What each client made is then asked over DNS.
//!
//! In the namespace testbed, with XDP attached, what boto3, aws-cli and octoDNS made is
//! answered by the XDP program (its counters count every A/AAAA answer).
//!
//! The clients come from `tests/clients/requirements.txt`, installed by `scripts/bootstrap`
//! into a virtualenv (`$DNS_XDP_VENV`, default `~/.cache/dns-xdp/venv`). Without it these
//! tests fail: they are never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::Duration;

use dns_tests::{SERVER_V4, Side, Testbed, metric};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

mod common;

use common::{BIN, Daemon, free_port, temp_dir};

const KEY_ID: &str = "AKIDCLIENTS";
const SECRET: &str = "clients-secret";

/// The virtualenv with the clients.
fn venv() -> PathBuf {
    let venv = std::env::var_os("DNS_XDP_VENV").map_or_else(
        || {
            let home = std::env::var_os("HOME").expect("HOME is set");
            Path::new(&home).join(".cache/dns-xdp/venv")
        },
        PathBuf::from,
    );
    assert!(
        venv.join("bin/python").exists(),
        "no Route 53 clients in {}: run scripts/bootstrap",
        venv.display()
    );
    venv
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// A daemon on loopback whose API wants requests signed with [`KEY_ID`].
fn daemon(dir: &Path) -> Daemon {
    let config = dir.join("dns.toml");
    std::fs::write(
        &config,
        format!("[api.access_keys]\n{KEY_ID} = \"{SECRET}\"\n"),
    )
    .unwrap();
    Daemon::start_with_key(
        dir,
        free_port(),
        free_port(),
        (KEY_ID, SECRET),
        &[
            "--config",
            config.to_str().unwrap(),
            "--health-allow",
            "127.0.0.0/8",
        ],
    )
}

/// Runs `command` with the clients' environment (`endpoint`, key `id`/`secret`, `dir` for
/// files); panics with its output on failure, returns its stdout and stderr.
fn run_client(mut command: Command, endpoint: &str, key: (&str, &str), dir: &Path) -> String {
    let venv = venv();
    let out = command
        .env("ENDPOINT", endpoint)
        .env("AWS_ENDPOINT_URL_ROUTE_53", endpoint)
        .env("AWS_ACCESS_KEY_ID", key.0)
        .env("AWS_SECRET_ACCESS_KEY", key.1)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_PAGER", "")
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        )
        .env("AWS", venv.join("bin/aws"))
        .env("WORK", dir)
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", venv.join("bin").display()),
        )
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{command:?} failed:\n{text}");
    text
}

/// Runs `program` against `d`, signed with its key.
fn run(d: &Daemon, dir: &Path, program: &Path, args: &[&str], cwd: &Path) -> String {
    let endpoint = d.api.trim_end_matches("/2013-04-01");
    let mut command = Command::new(program);
    command.args(args).current_dir(cwd);
    run_client(command, endpoint, (KEY_ID, SECRET), dir)
}

/// Runs the Python suite `script` (in `tests/clients/`) against a new daemon; the daemon,
/// for what the suite made to be asked.
fn suite(tag: &str, script: &str) -> (Daemon, PathBuf) {
    let dir = temp_dir(tag);
    let d = daemon(&dir);
    let script = clients_dir().join(script);
    let python = venv().join("bin/python");
    let out = run(&d, &dir, &python, &[script.to_str().unwrap()], &dir);
    eprintln!("{out}");
    assert!(out.contains("checks passed"), "{out}");
    (d, dir)
}

#[test]
fn boto3_drives_every_operation() {
    let (d, dir) = suite("boto3", "boto3_suite.py");
    // What boto3 made is served.
    assert_eq!(d.answer("www.boto3.test.", RecordType::A), ["192.0.2.2"]);
    assert_eq!(
        d.answer("boto3.test.", RecordType::A),
        ["192.0.2.2"],
        "the apex alias"
    );
    assert_eq!(d.answer("h249.boto3.test.", RecordType::A), ["192.0.2.50"]);
    // IP-based routing through the CIDR collection boto3 made.
    let office = Some(("10.9.0.0".parse().unwrap(), 16));
    assert_eq!(
        d.answer_from("ip.boto3.test.", RecordType::A, office),
        ["192.0.2.70"]
    );
    assert_eq!(d.answer("ip.boto3.test.", RecordType::A), ["192.0.2.71"]);
    // The failover pair answers with one of its two (the primary's check probes a closed
    // port, inverted by the update: which one depends on how far the probes got).
    let f = d.answer("f.boto3.test.", RecordType::A);
    assert!(f == ["192.0.2.20"] || f == ["192.0.2.21"], "{f:?}");
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn aws_cli_drives_the_common_commands() {
    let (d, dir) = suite("awscli", "awscli_suite.py");
    assert_eq!(d.answer("www.awscli.test.", RecordType::A), ["192.0.2.101"]);
    assert_eq!(
        d.answer("www.awscli.test.", RecordType::AAAA),
        ["2001:db8::101"]
    );
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn octodns_syncs_dynamic_records_and_then_plans_nothing() {
    let dir = temp_dir("octodns");
    let d = daemon(&dir);
    let config = clients_dir().join("octodns");
    let sync = venv().join("bin/octodns-sync");
    let first = run(
        &d,
        &dir,
        &sync,
        &["--config-file", "config.yaml", "--doit"],
        &config,
    );
    assert!(first.contains("Creates=9"), "{first}");
    // A second sync reads everything back and finds it as it wants it.
    let second = run(&d, &dir, &sync, &["--config-file", "config.yaml"], &config);
    assert!(
        second.contains("No changes were planned"),
        "the second sync wants changes:\n{second}"
    );
    // Served as octoDNS meant: simple records, the weighted pool, the geolocation rules' pools
    // (the health checks probe 192.0.2.x and fail, so answers fail open or fall back).
    assert_eq!(
        d.answer("www.octo.test.", RecordType::A),
        ["192.0.2.2", "192.0.2.3"]
    );
    assert_eq!(d.answer("octo.test.", RecordType::A), ["192.0.2.1"]);
    assert_eq!(d.answer("v6.octo.test.", RecordType::AAAA), ["2001:db8::2"]);
    let weighted = d.answer("weighted.octo.test.", RecordType::A);
    assert!(
        weighted == ["192.0.2.10"] || weighted == ["192.0.2.11"],
        "{weighted:?}"
    );
    let geo = d.answer("geo.octo.test.", RecordType::A);
    assert!(
        ["192.0.2.21", "192.0.2.22"].contains(&geo.first().map_or("", String::as_str)),
        "{geo:?}"
    );
    // The subnet rule routes by the CIDR collection octoDNS made: clients in 10/8 (here, their
    // EDNS Client Subnet) to one pool, everyone else to the other.
    let inside = Some(("10.1.2.0".parse().unwrap(), 24));
    assert_eq!(
        d.answer_from("subnet.octo.test.", RecordType::A, inside),
        ["192.0.2.41"]
    );
    assert_eq!(d.answer("subnet.octo.test.", RecordType::A), ["192.0.2.42"]);
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

const ANSWERED: &str = "dns_xdp_packets_total{action=\"tx\",reason=\"answered\"}";

/// Asks `name`/`rtype` from the client namespace: the answers' data.
fn ask(bed: &Testbed, name: &str, rtype: RecordType) -> Vec<String> {
    let qname = Name::from_ascii(name).unwrap();
    bed.run_in(Side::Client, move || {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        socket.connect((SERVER_V4, 53)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let query = dns_user::server::answer::build_query(7, &qname, rtype, None);
        socket.send(&query).unwrap();
        let mut buf = [0u8; 1500];
        let n = socket.recv(&mut buf).unwrap();
        let m = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
        let mut data: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
        data.sort();
        data
    })
    .unwrap()
}

#[test]
fn what_the_clients_made_is_answered_by_xdp() {
    let mut bed = Testbed::create("dnsrc").unwrap();
    let daemon = bed.start_service(BIN, "native", &[], false).unwrap();
    let venv = venv();
    let endpoint = "http://127.0.0.1:8053";
    let work = temp_dir("xdp-clients");
    let in_server = |program: &Path, args: &[&str], cwd: &Path| {
        let mut command = bed.command(Side::Server, program.to_str().unwrap());
        command.args(args).current_dir(cwd);
        run_client(command, endpoint, ("test", "test"), &work)
    };
    let script = clients_dir().join("xdp_records.py");
    in_server(&venv.join("bin/python"), &[script.to_str().unwrap()], &work);
    in_server(
        &venv.join("bin/octodns-sync"),
        &["--config-file", "config.yaml", "--doit"],
        &clients_dir().join("octodns"),
    );
    let expected: [(&str, RecordType, &[&str]); 8] = [
        ("boto3.fast.test.", RecordType::A, &["192.0.2.201"]),
        ("boto3.fast.test.", RecordType::AAAA, &["2001:db8::201"]),
        ("w.fast.test.", RecordType::A, &["192.0.2.202"]),
        ("cli.fast.test.", RecordType::A, &["192.0.2.206"]),
        ("www.octo.test.", RecordType::A, &["192.0.2.2", "192.0.2.3"]),
        ("v6.octo.test.", RecordType::AAAA, &["2001:db8::2"]),
        ("subnet.octo.test.", RecordType::A, &["192.0.2.42"]),
        ("octo.test.", RecordType::A, &["192.0.2.1"]),
    ];
    let before = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap();
    for (name, rtype, want) in expected {
        assert_eq!(ask(&bed, name, rtype), want, "{name} {rtype}");
    }
    // The failover pair and octoDNS's weighted pool: one of their values.
    let f = ask(&bed, "f.fast.test.", RecordType::A);
    assert!(f == ["192.0.2.204"] || f == ["192.0.2.205"], "{f:?}");
    let w = ask(&bed, "weighted.octo.test.", RecordType::A);
    assert!(w == ["192.0.2.10"] || w == ["192.0.2.11"], "{w:?}");
    let after = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap();
    assert_eq!(after - before, 10, "every answer came from XDP");
    // fast.test is signed (through boto3): delv in the client's namespace, trusting only the
    // DS boto3 got, validates the answers XDP gives with their RRSIGs, the weighted one
    // included.
    let anchor = work.join("fast.test.anchor");
    let before = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap();
    for (name, rtype) in [
        ("boto3.fast.test", "A"),
        ("boto3.fast.test", "AAAA"),
        ("w.fast.test", "A"),
    ] {
        let out = bed
            .command(Side::Client, "delv")
            .args([
                format!("@{SERVER_V4}"),
                "-a".into(),
                anchor.display().to_string(),
            ])
            .args(["+root=fast.test", name, rtype])
            .output()
            .unwrap();
        let verdict = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            verdict.contains("; fully validated"),
            "{name} {rtype}: {verdict}"
        );
    }
    let after = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap();
    assert!(
        after - before >= 3,
        "the signed A, AAAA and weighted A came from XDP: {}",
        after - before
    );
    // All of it with only the capabilities the daemon keeps, in every thread.
    dns_tests::assert_kept_capabilities(daemon.pid);
    std::fs::remove_dir_all(&work).unwrap();
}
