//! `dns-user serve --takeover` under a query stream: a second daemon on the same store takes
//! over the first one's sockets and XDP attachment while clients query through XDP (A),
//! through the userspace server over UDP (TXT) and over TCP, every query waiting for its
//! answer; none may be lost. Then the new daemon answers through XDP and takes changes
//! through the API it took over. A takeover that fails after the handover leaves the running
//! daemon serving and writable.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dns_tests::{SERVER_V4, Side, Testbed, metric};
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};

mod common;

use common::BIN;

const ANSWERED: &str = "dns_xdp_packets_total{action=\"tx\",reason=\"answered\"}";

/// Runs `f` on a thread inside network namespace `ns`.
fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: setns on this thread only, with a namespace fd just opened.
        let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}");
        f()
    })
}

/// What a stream saw: queries sent, and those that got no (or a wrong) answer.
#[derive(Debug, Default)]
struct Seen {
    sent: u32,
    lost: Vec<String>,
}

impl Seen {
    /// More than `min_sent` queries, every one answered.
    fn assert_none_lost(&self, min_sent: u32, during: &str) {
        assert!(self.sent > min_sent, "{self:?}");
        assert!(
            self.lost.is_empty(),
            "{} lost {during}, the first: {:?}",
            self.lost.len(),
            &self.lost[..self.lost.len().min(3)]
        );
    }
}

fn query(id: u16, name: &str, rtype: RecordType) -> Vec<u8> {
    dns_user::server::answer::build_query(id, &Name::from_ascii(name).unwrap(), rtype, None)
}

/// UDP queries one at a time (each waits up to 2 s for its answer), every 2 ms, until `stop`.
fn udp_stream(name: &'static str, rtype: RecordType, stop: &'static AtomicBool) -> Seen {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    socket.connect((SERVER_V4, 53)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut seen = Seen::default();
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) && seen.sent < 20_000 {
        let id = seen.sent as u16;
        seen.sent += 1;
        socket.send(&query(id, name, rtype)).unwrap();
        match socket.recv(&mut buf) {
            Ok(n) => {
                let m = Message::from_vec(&buf[..n]).unwrap();
                if m.metadata.id != id || m.answers.is_empty() {
                    seen.lost
                        .push(format!("{name} #{id}: a wrong answer {m:?}"));
                }
            }
            Err(e) => seen.lost.push(format!("{name} #{id}: {e}")),
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    seen
}

/// TCP: a connection per query, every 5 ms, until `stop`.
fn tcp_stream(stop: &'static AtomicBool) -> Seen {
    let mut seen = Seen::default();
    while !stop.load(Ordering::Relaxed) && seen.sent < 10_000 {
        let id = seen.sent as u16;
        seen.sent += 1;
        let outcome = (|| -> std::io::Result<Message> {
            let mut s = std::net::TcpStream::connect_timeout(
                &(SERVER_V4, 53).into(),
                Duration::from_secs(2),
            )?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            let q = query(id, "example.com.", RecordType::MX);
            let mut framed = (q.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&q);
            s.write_all(&framed)?;
            let mut len = [0u8; 2];
            s.read_exact(&mut len)?;
            let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut body)?;
            Message::from_vec(&body).map_err(std::io::Error::other)
        })();
        match outcome {
            Ok(m) if m.metadata.id == id && !m.answers.is_empty() => {}
            Ok(m) => seen.lost.push(format!("TCP #{id}: a wrong answer {m:?}")),
            Err(e) => seen.lost.push(format!("TCP #{id}: {e}")),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    seen
}

fn wait_exit(bed: &mut Testbed, pid: u32, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = bed.exited(pid) {
            return status;
        }
        assert!(Instant::now() < deadline, "process {pid} did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A testbed whose service pins its links and maps in a BPF filesystem of the test's own:
/// (testbed, that filesystem, the pin directory, the service). The filesystem is unmounted
/// before the testbed's namespaces go (the tuple's later parts drop first).
fn pinned_service(
    tag: &str,
) -> (
    Testbed,
    dns_tests::BpfFs,
    std::path::PathBuf,
    dns_tests::Process,
) {
    let mut bed = Testbed::create(tag).unwrap();
    let bpffs = dns_tests::BpfFs::mount(&bed.dir.join("bpffs")).unwrap();
    let pin_dir = bpffs.path.join("dns-user");
    let pin_arg = pin_dir.display().to_string();
    let service = bed
        .start_service(BIN, "native", &["--xdp-pin-dir", &pin_arg], false)
        .unwrap();
    (bed, bpffs, pin_dir, service)
}

#[test]
fn a_takeover_under_a_query_stream_loses_no_query() {
    static STOP: AtomicBool = AtomicBool::new(false);
    // Both daemons pin (xdp.pin_dir): the new one's maps replace the old one's pins.
    let (mut bed, _bpffs, pin_dir, old) = pinned_service("dnsto");
    let pin_arg = pin_dir.display().to_string();
    let client_ns = bed.client_ns.clone();
    let streams = [
        in_netns(&client_ns, || {
            udp_stream("www.example.com.", RecordType::A, &STOP)
        }),
        in_netns(&client_ns, || {
            udp_stream("example.com.", RecordType::TXT, &STOP)
        }),
        in_netns(&client_ns, || tcp_stream(&STOP)),
    ];
    std::thread::sleep(Duration::from_millis(500));

    // The new daemon, same arguments, same store.
    let server_if = bed.server_if.clone();
    let mut args = bed.serve_args("native");
    args.extend(["--takeover".into(), "--xdp-pin-dir".into(), pin_arg.clone()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let new = bed.spawn(Side::Server, BIN, &args, false).unwrap();
    new.wait_for(
        &mut bed,
        "takeover: serving in the place",
        Duration::from_secs(30),
    )
    .unwrap();
    let status = wait_exit(&mut bed, old.pid, Duration::from_secs(20));
    assert!(status.success(), "the old daemon exits cleanly: {status}");
    std::thread::sleep(Duration::from_millis(500));
    STOP.store(true, Ordering::Relaxed);
    let seen: Vec<Seen> = streams.into_iter().map(|s| s.join().unwrap()).collect();
    for s in &seen {
        s.assert_none_lost(100, "during the takeover");
    }
    let log = new.log().join("\n");
    assert!(
        log.contains(&format!("takeover: XDP on {server_if} moved")),
        "{log}"
    );
    let old_log = old.log().join("\n");
    assert!(
        old_log.contains("takeover: handed over; exiting"),
        "{old_log}"
    );
    assert!(!old_log.contains("XDP detached"), "{old_log}");
    // The pins are the new daemon's: its maps (moved out of staging) and the same link.
    let pins: Vec<String> = std::fs::read_dir(&pin_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(pins.len(), 2, "{pins:?}");
    assert!(pins.contains(&format!("link-{server_if}")), "{pins:?}");
    let maps = pins.iter().find(|p| p.starts_with("maps-")).unwrap();
    assert_eq!(std::fs::read_dir(pin_dir.join(maps)).unwrap().count(), 8);

    // The new daemon answers through XDP (its metrics on the listener it took over) ...
    let before = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap();
    let answered = in_netns(&client_ns, || {
        static NEVER: AtomicBool = AtomicBool::new(false);
        let _ = &NEVER;
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        socket.connect((SERVER_V4, 53)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 1500];
        (0..20)
            .filter(|i| {
                socket
                    .send(&query(*i, "www.example.com.", RecordType::A))
                    .unwrap();
                socket.recv(&mut buf).is_ok()
            })
            .count()
    })
    .join()
    .unwrap();
    assert_eq!(answered, 20);
    let after = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap();
    assert_eq!(
        after - before,
        20,
        "answered by the new daemon's XDP program"
    );
    // ... and takes changes through the API it took over, served at once.
    let cli = |args: &[&str]| bed.output(Side::Server, BIN, args);
    cli(&["zone", "create", "after.test"]).unwrap();
    let batch = bed.dir.join("batch.json");
    std::fs::write(
        &batch,
        dns_tests::a_record_batch("CREATE", "www.after.test.", "192.0.2.77"),
    )
    .unwrap();
    cli(&["change", "apply", batch.to_str().unwrap(), "--wait"]).unwrap();
    let dig = bed.dig("www.after.test", "A");
    assert_eq!(dig.trim(), "192.0.2.77");
}

#[test]
fn a_takeover_that_fails_after_the_handover_leaves_the_old_daemon_serving() {
    let mut bed = Testbed::create("dnstf").unwrap();
    let old = bed.start_service(BIN, "native", &[], false).unwrap();
    // The new daemon names an interface that does not exist: it fails once it has the
    // sockets and before it moves anything.
    let server_if = bed.server_if.clone();
    let v4 = format!("{SERVER_V4}:53");
    let args = [
        "serve",
        "--listen",
        &v4,
        "--iface",
        "no-such-if0",
        "--iface",
        &server_if,
        "--xdp-mode",
        "native",
        "--takeover",
    ];
    let new = bed.spawn(Side::Server, BIN, &args, false).unwrap();
    let status = wait_exit(&mut bed, new.pid, Duration::from_secs(30));
    assert!(!status.success());
    assert!(
        new.log().join("\n").contains("no interface no-such-if0"),
        "{:?}",
        new.log()
    );
    old.wait_for(&mut bed, "takeover abandoned", Duration::from_secs(5))
        .unwrap();
    // The old daemon still answers, through XDP, and writes its store again.
    assert!(bed.exited(old.pid).is_none());
    let cli = |args: &[&str]| bed.output(Side::Server, BIN, args);
    cli(&["zone", "create", "still.test"]).unwrap();
    let before = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap();
    let a = bed.dig("www.example.com", "A");
    assert!(a.contains("192.0.2.1"), "{a}");
    let after = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap();
    assert_eq!(after - before, 1);
}

/// One UDP query from the client namespace: its answer's A addresses, or the error.
fn ask_a(bed: &Testbed, name: &'static str) -> std::io::Result<Vec<std::net::Ipv4Addr>> {
    in_netns(&bed.client_ns, move || {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
        socket.connect((SERVER_V4, 53))?;
        socket.set_read_timeout(Some(Duration::from_secs(1)))?;
        socket.send(&query(7, name, RecordType::A))?;
        let mut buf = [0u8; 1500];
        let n = socket.recv(&mut buf)?;
        let m = Message::from_vec(&buf[..n]).map_err(std::io::Error::other)?;
        Ok(dns_tests::a_addresses(&m))
    })
    .join()
    .unwrap()
}

fn xdp_attached(bed: &Testbed) -> bool {
    let out = bed
        .output(
            Side::Server,
            "ip",
            &["-d", "link", "show", "dev", &bed.server_if],
        )
        .unwrap();
    out.contains("prog/xdp")
}

#[test]
fn a_crash_restart_takes_over_the_pinned_fast_path() {
    static STOP: AtomicBool = AtomicBool::new(false);
    let (mut bed, _bpffs, pin_dir, first) = pinned_service("dnscr");
    let pin_arg = pin_dir.display().to_string();
    let server_if = bed.server_if.clone();
    let log = first.log().join("\n");
    assert!(
        log.contains(&format!("XDP on {server_if}: link pinned at")),
        "{log}"
    );
    assert!(pin_dir.join(format!("link-{server_if}")).exists());
    let base = bed.serve_args("native");
    let args = |extra: &[&str]| {
        let mut args = base.clone();
        args.extend(["--xdp-pin-dir".to_string(), pin_arg.clone()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let restart = args(&[]);

    // A crash under an XDP query stream: the pinned program answers on from the pinned maps,
    // and the daemon started in its place takes them over. Not one query is lost.
    let stream = in_netns(&bed.client_ns.clone(), || {
        udp_stream("www.example.com.", RecordType::A, &STOP)
    });
    std::thread::sleep(Duration::from_millis(300));
    bed.kill(first.pid).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let restart: Vec<&str> = restart.iter().map(String::as_str).collect();
    let second = bed.spawn(Side::Server, BIN, &restart, false).unwrap();
    second
        .wait_for(&mut bed, "ready:", Duration::from_secs(30))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    STOP.store(true, Ordering::Relaxed);
    stream
        .join()
        .unwrap()
        .assert_none_lost(200, "through the crash and restart");
    let log = second.log().join("\n");
    assert!(log.contains("answers on while the store loads"), "{log}");
    assert!(log.contains("took over the maps pinned"), "{log}");
    assert!(
        log.contains(&format!("XDP on {server_if}: took over the link pinned")),
        "{log}"
    );
    // The restarted daemon's program answers (its own counters), and its changes are served.
    let before = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap();
    for _ in 0..10 {
        let a = ask_a(&bed, "www.example.com.").unwrap();
        assert_eq!(a.len(), 2, "{a:?}");
    }
    let after = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap();
    assert_eq!(
        after - before,
        10,
        "answered by the restarted daemon's program"
    );
    let batch = bed.dir.join("batch.json");
    std::fs::write(
        &batch,
        dns_tests::a_record_batch("UPSERT", "www.example.com.", "192.0.2.99"),
    )
    .unwrap();
    bed.output(
        Side::Server,
        BIN,
        &["change", "apply", batch.to_str().unwrap(), "--wait"],
    )
    .unwrap();
    assert_eq!(
        ask_a(&bed, "www.example.com.").unwrap(),
        ["192.0.2.99".parse::<std::net::Ipv4Addr>().unwrap()]
    );

    // A crash that no daemon follows: the heartbeat runs out and the orphaned program passes
    // everything up (to no one) instead of serving what it knew for ever.
    bed.kill(second.pid).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        ask_a(&bed, "www.example.com.").is_err(),
        "stale answers after the heartbeat"
    );
    assert!(xdp_attached(&bed), "the pinned link stays");

    // Restarted with maps of another size: the pinned ones do not fit and new ones are made;
    // the pinned link is taken over as before.
    let bigger = args(&["--max-entries", "8192"]);
    let bigger: Vec<&str> = bigger.iter().map(String::as_str).collect();
    let third = bed.spawn(Side::Server, BIN, &bigger, false).unwrap();
    third
        .wait_for(&mut bed, "ready:", Duration::from_secs(30))
        .unwrap();
    let log = third.log().join("\n");
    assert!(log.contains("do not fit this config"), "{log}");
    assert!(log.contains("took over the link pinned"), "{log}");
    assert_eq!(
        ask_a(&bed, "www.example.com.").unwrap(),
        ["192.0.2.99".parse::<std::net::Ipv4Addr>().unwrap()]
    );

    // A clean stop removes the pins, and the XDP program goes.
    let status = bed.stop(third.pid, Duration::from_secs(20)).unwrap();
    assert!(status.success(), "{status}");
    assert!(!pin_dir.exists(), "pins left after a clean stop");
    assert!(!xdp_attached(&bed), "XDP left attached after a clean stop");
}
