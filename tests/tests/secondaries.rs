//! Secondaries, against stock tools: kdig signs queries and transfers with a TSIG key (RFC
//! 8945) and verifies our signatures; a wrong secret and an unknown key get NOTAUTH with BADSIG
//! and BADKEY; an unsigned transfer is refused when a key is required; and a Knot DNS
//! secondary with the key transfers the zone, then follows API changes: the serial moves, a
//! signed NOTIFY (RFC 1996) reaches it, and it transfers each change by IXFR (RFC 1995).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{BIN, free_port, temp_dir};

const SECRET: &str = "c2VjcmV0LXNoYXJlZC13aXRoLXRoZS1zZWNvbmRhcnkh"; // base64
const KEY: &str = "xfr-key";

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: signalling a child this test started, by its PID.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kdig(port: u16, args: &[&str]) -> String {
    let out = Command::new("kdig")
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("kdig (Debian package knot-dnsutils)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn wait_for(what: &str, mut ready: impl FnMut() -> Option<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = ready() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Our daemon on loopback with the key, transfers to 127.0.0.1 with it; `server` adds to its
/// `[server]` table, `api` is the API's port (none: off).
fn start_ours(dir: &Path, server: &str, api: Option<u16>) -> (Running, u16) {
    let port = free_port();
    let zone = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/example.com.zone");
    let config = dir.join("dns.toml");
    let api = match api {
        Some(p) => format!("listen = \"127.0.0.1:{p}\""),
        None => "enabled = false".into(),
    };
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\ntransfer_allow = [\"127.0.0.1/32\"]\n\
             transfer_keys = [\"{KEY}\"]\n{server}\n\
             [xdp]\nmode = \"off\"\n[api]\n{api}\n\
             [store]\npath = \"store.redb\"\n\
             [[tsig_key]]\nname = \"{KEY}\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n\
             [[zone]]\norigin = \"example.com.\"\nfile = \"{}\"\n",
            zone.display()
        ),
    )
    .unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let running = Running(child);
    wait_for("dns-user answering", || {
        kdig(port, &["+short", "example.com", "SOA"])
            .contains("hostmaster")
            .then_some(String::new())
    });
    (running, port)
}

/// A Knot DNS secondary on `knot_port` in `dir/knot` with our key, its primary our daemon on
/// `port` (NOTIFY from it accepted), serving `zones` (Knot's `zone:` list items).
fn start_knot(dir: &Path, knot_port: u16, port: u16, zones: &str) -> Running {
    let knot_dir = dir.join("knot");
    std::fs::create_dir_all(&knot_dir).unwrap();
    let conf = knot_dir.join("knot.conf");
    std::fs::write(
        &conf,
        format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{knot_port}\n\
             log:\n  - target: stderr\n    any: info\n\
             database:\n    storage: \"{d}\"\n\
             key:\n  - id: {KEY}\n    algorithm: hmac-sha256\n    secret: {SECRET}\n\
             remote:\n  - id: primary\n    address: 127.0.0.1@{port}\n    key: {KEY}\n\
             acl:\n  - id: notify-from-primary\n    address: 127.0.0.1\n    key: {KEY}\n    action: notify\n\
             template:\n  - id: default\n    storage: \"{d}\"\n\
             \x20 - id: member\n    storage: \"{d}\"\n    master: primary\n    acl: notify-from-primary\n    zonefile-sync: -1\n\
             zone:\n{zones}",
            d = knot_dir.display()
        ),
    )
    .unwrap();
    let knot = Command::new("knotd")
        .args(["-c", conf.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("knotd (Debian package knot)");
    Running(knot)
}

/// Stops Knot (SIGTERM) and returns what it logged.
fn stop_knot(mut knot: Running) -> String {
    // SAFETY: signalling a child this test started, by its PID.
    unsafe { libc::kill(knot.0.id() as libc::pid_t, libc::SIGTERM) };
    let out = std::mem::replace(&mut knot.0, Command::new("true").spawn().unwrap())
        .wait_with_output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the CLI against the API on `api_port`.
fn cli(api_port: u16, args: &[&str]) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--api-url")
        .arg(format!("http://127.0.0.1:{api_port}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Applies a one-record change batch through the API and waits until it is INSYNC.
fn change(dir: &Path, api_port: u16, action: &str, name: &str, address: &str) {
    let batch = dir.join("batch.json");
    std::fs::write(&batch, dns_tests::a_record_batch(action, name, address)).unwrap();
    cli(
        api_port,
        &["change", "apply", batch.to_str().unwrap(), "--wait"],
    );
}

/// Our daemon's `[server]` lines for a secondary on `knot_port`.
fn notifying(knot_port: u16, extra: &str) -> String {
    format!(
        "serial_policy = \"increment\"\nnotify = [\"127.0.0.1:{knot_port}\"]\nnotify_key = \"{KEY}\"\n{extra}"
    )
}

#[test]
fn signed_transfers_and_tsig_errors_as_kdig_sees_them() {
    let dir = temp_dir("tsig");
    let (_ours, port) = start_ours(&dir, "", None);
    let key = format!("hmac-sha256:{KEY}:{SECRET}");

    // Signed AXFR: the whole zone, every message's signature verified by kdig.
    let axfr = kdig(port, &["-y", &key, "example.com", "AXFR"]);
    assert!(
        axfr.matches("\tSOA\t").count() >= 2 && axfr.contains("www.example.com."),
        "{axfr}"
    );
    assert!(
        !axfr.contains("WARNING") && !axfr.contains("failed"),
        "kdig verified the signatures:\n{axfr}"
    );
    // Unsigned: the key is required.
    let unsigned = kdig(port, &["example.com", "AXFR"]);
    assert!(unsigned.contains("REFUSED"), "{unsigned}");
    // A signed ordinary query is answered, signed.
    let soa = kdig(port, &["-y", &key, "example.com", "SOA"]);
    assert!(soa.contains("NOERROR") && soa.contains("TSIG"), "{soa}");
    assert!(!soa.contains("WARNING"), "{soa}");
    // The wrong secret: BADSIG; a key we do not have: BADKEY (ISC's `notsig`).
    let bad = kdig(
        port,
        &[
            "-y",
            &format!("hmac-sha256:{KEY}:d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA=="),
            "example.com",
            "SOA",
        ],
    );
    // kdig shows NOTAUTH with its TSIG error as the status.
    assert!(bad.contains("status: BADSIG"), "{bad}");
    let unknown = kdig(
        port,
        &[
            "-y",
            &format!("hmac-sha256:nobody-knows:{SECRET}"),
            "www.example.com",
            "A",
        ],
    );
    assert!(unknown.contains("status: BADKEY"), "{unknown}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_knot_secondary_transfers_the_zone_with_the_key_and_follows_changes_by_notify_and_ixfr() {
    let dir = temp_dir("tsig-knot");
    let (knot_port, api_port) = (free_port(), free_port());
    let (_ours, port) = start_ours(&dir, &notifying(knot_port, ""), Some(api_port));
    let zones = "  - domain: example.com.\n    template: member\n";
    let knot = start_knot(&dir, knot_port, port, zones);
    let answer = wait_for("the Knot secondary serving the transferred zone", || {
        let a = kdig(knot_port, &["+short", "www.example.com", "A"]);
        a.contains("192.0.2.1").then_some(a)
    });
    assert!(answer.contains("192.0.2.2"), "{answer}");
    // Ours and Knot's SOA agree: Knot serves what it transferred.
    let soa = |p| kdig(p, &["+short", "example.com", "SOA"]);
    assert_eq!(soa(knot_port), soa(port));

    // A change through the API: the serial moves, Knot is notified, transfers the change
    // (IXFR) and serves it.
    change(&dir, api_port, "CREATE", "new.example.com.", "192.0.2.123");
    let started = Instant::now();
    wait_for("Knot serving the change", || {
        let a = kdig(knot_port, &["+short", "new.example.com", "A"]);
        a.contains("192.0.2.123").then_some(a)
    });
    let followed = started.elapsed();
    eprintln!("the Knot secondary served the change {followed:?} after it was INSYNC here");
    assert_eq!(soa(knot_port), soa(port));
    assert!(
        soa(port).contains("2026112402"),
        "the serial moved: {}",
        soa(port)
    );
    // A second change: IXFR from the journal again.
    change(&dir, api_port, "DELETE", "new.example.com.", "192.0.2.123");
    wait_for("Knot serving the deletion", || {
        let a = kdig(knot_port, &["new.example.com", "A"]);
        a.contains("NXDOMAIN").then_some(a)
    });
    assert!(
        followed < Duration::from_secs(5),
        "followed in {followed:?} (NOTIFY, not the refresh timer)"
    );
    // Knot's log: the transfer (which our server gives only with the key) finished, and
    // nothing failed.
    let log = stop_knot(knot);
    assert!(
        log.contains("AXFR, incoming") && log.contains("finished"),
        "{log}"
    );
    assert!(log.contains("notify, incoming"), "NOTIFY received:\n{log}");
    assert!(
        log.matches("IXFR, incoming").count() >= 2,
        "the changes came by IXFR:\n{log}"
    );
    assert!(
        !log.contains("BADSIG") && !log.contains("BADKEY") && !log.contains("error"),
        "{log}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_knot_secondary_provisions_every_hosted_zone_from_the_catalog_zone() {
    let dir = temp_dir("catalog");
    let (knot_port, api_port) = (free_port(), free_port());
    let extra = "catalog_zone = \"catalog.invalid.\"\n";
    let (_ours, port) = start_ours(&dir, &notifying(knot_port, extra), Some(api_port));
    // The catalog zone lists the config's zone.
    let catalog = kdig(
        port,
        &[
            "-y",
            &format!("hmac-sha256:{KEY}:{SECRET}"),
            "catalog.invalid",
            "AXFR",
        ],
    );
    assert!(
        catalog.contains("PTR\texample.com.") && catalog.contains("\"2\""),
        "{catalog}"
    );

    // Knot knows only the catalog zone; each member comes from a template.
    let zones = "  - domain: catalog.invalid.\n    template: member\n    catalog-role: interpret\n    catalog-template: member\n";
    let knot = start_knot(&dir, knot_port, port, zones);
    wait_for("Knot serving the member zone from the catalog", || {
        let a = kdig(knot_port, &["+short", "www.example.com", "A"]);
        a.contains("192.0.2.1").then_some(a)
    });

    // A zone created through the API: the catalog changes, Knot is notified, provisions it
    // and transfers it.
    cli(api_port, &["zone", "create", "fresh.test"]);
    change(&dir, api_port, "CREATE", "www.fresh.test.", "192.0.2.99");
    wait_for("Knot serving the zone made through the API", || {
        let a = kdig(knot_port, &["+short", "www.fresh.test", "A"]);
        a.contains("192.0.2.99").then_some(a)
    });
    // Knot's log: the catalog brought the zone in.
    let log = stop_knot(knot);
    assert!(log.contains("[fresh.test.]"), "{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}
