//! The daemon under attack and under careless use, each probe of the security review
//! (`docs/security.md`) run against the real daemon on loopback: record values that try to
//! reach the file system, a browser driving the API (CSRF, DNS rebinding), health checks aimed
//! at private services, TCP clients that never read, slow API clients, oversized batches,
//! Unicode spellings of one name, file modes and a symlinked pid file, and the CLI writing into
//! a closed pipe.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use serde_json::{Value, json};

mod common;

use common::{BIN, Daemon, a, create, free_port, temp_dir};

/// A request with headers of our choosing: status and body.
fn request(method: &str, url: &str, headers: &[&str], body: Option<&str>) -> (u16, String) {
    let mut args = vec!["-s", "-m", "30", "-X", method, "-w", "\n%{http_code}"];
    for h in headers {
        args.extend(["-H", h]);
    }
    if let Some(b) = body {
        args.extend(["--data-binary", b]);
    }
    args.push(url);
    let out = Command::new("curl").args(&args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.trim().parse().unwrap(), body.to_string())
}

/// A config file in `dir`: zone `big.test` (a 3,000-byte TXT answer) plus `extra`.
fn config(dir: &Path, extra: &str) -> PathBuf {
    let txt: Vec<String> = (0..12)
        .map(|i| format!("\"{}\"", "x".repeat(240 + i)))
        .collect();
    let path = dir.join("dns.toml");
    std::fs::write(
        &path,
        format!(
            "{extra}\n[[zone]]\norigin = \"big.test.\"\n\
             [[zone.record]]\nname = \"@\"\ntype = \"SOA\"\nttl = 60\nvalues = [\"ns1 hostmaster 1 7200 900 1209600 60\"]\n\
             [[zone.record]]\nname = \"@\"\ntype = \"NS\"\nttl = 60\nvalues = [\"ns1\"]\n\
             [[zone.record]]\nname = \"@\"\ntype = \"TXT\"\nttl = 60\nvalues = ['{}']\n",
            txt.join(" ")
        ),
    )
    .unwrap();
    path
}

fn query(name: &str, rtype: RecordType, id: u16) -> Vec<u8> {
    let mut q = Message::new(id, MessageType::Query, OpCode::Query);
    q.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    q.to_vec().unwrap()
}

/// One query over TCP from 127.0.0.1: the response.
fn tcp_ask(port: u16, name: &str, rtype: RecordType) -> std::io::Result<Message> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let q = query(name, rtype, 7);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    s.write_all(&framed)?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf)?;
    Message::from_vec(&buf).map_err(std::io::Error::other)
}

/// A TCP connection to `port` from the loopback address `from`.
fn connect_from(from: [u8; 4], port: u16) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    // A small receive window: the server's writes block sooner.
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    socket.into()
}

/// Reads `s` until the server closes it (EOF or reset); how long that took, or `None` if it
/// was still open at `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = vec![0u8; 1 << 16];
    while start.elapsed() < limit {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

/// Open (and access) events on the files of a directory, through inotify.
struct OpenWatch(libc::c_int);

impl OpenWatch {
    fn new(dir: &Path) -> OpenWatch {
        // SAFETY: inotify_init1(2) and inotify_add_watch(2) on a directory this test made.
        unsafe {
            let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
            assert!(fd >= 0);
            let path = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
            let wd = libc::inotify_add_watch(fd, path.as_ptr(), libc::IN_OPEN | libc::IN_ACCESS);
            assert!(wd >= 0);
            OpenWatch(fd)
        }
    }

    /// Bytes of events since the last call (0: nothing was opened).
    fn events(&self) -> isize {
        let mut buf = [0u8; 4096];
        let mut total = 0;
        loop {
            // SAFETY: read(2) into a buffer of its length, on the inotify fd this owns.
            let n = unsafe { libc::read(self.0, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return total;
            }
            total += n;
        }
    }
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        // SAFETY: closing the fd this owns.
        unsafe { libc::close(self.0) };
    }
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) on a path in this test's directory.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn record_values_never_reach_the_file_system() {
    let dir = temp_dir("sec-include");
    let targets = dir.join("targets");
    std::fs::create_dir_all(&targets).unwrap();
    let exact = targets.join("same.zone");
    std::fs::write(&exact, "x.inj.test. 60 IN A 192.0.2.1\n").unwrap();
    let fifo = targets.join("fifo");
    mkfifo(&fifo);
    let missing = targets.join("missing");
    let (port, api_port) = (free_port(), free_port());
    let d = Daemon::start(&dir, port, api_port, &[]);
    let zone = d.create_zone("inj.test");
    let before = d.sets(&zone);
    let watch = OpenWatch::new(&targets);

    let mut values: Vec<String> = [&missing, &fifo, &exact, Path::new("/dev/zero")]
        .iter()
        .map(|p| format!("192.0.2.1\n$INCLUDE {}", p.display()))
        .collect();
    values.extend(
        [
            "192.0.2.1 garbage trailing",
            "192.0.2.1\n192.0.2.2",
            "192.0.2.1\r\n$INCLUDE same.zone",
            "$INCLUDE same.zone",
            "( 192.0.2.1 )",
        ]
        .map(String::from),
    );
    for value in &values {
        let started = Instant::now();
        let (status, v) = d.change(
            &zone,
            json!([{"Action": "UPSERT", "ResourceRecordSet": a("x.inj.test.", 60, &[value])}]),
        );
        assert_eq!(
            (status, &v["Error"]["Code"]),
            (400, &json!("InvalidChangeBatch")),
            "{value:?}: {v}"
        );
        println!("{value:?}: refused in {:?}", started.elapsed());
    }
    let (status, v) = d.change(
        &zone,
        json!([{"Action": "UPSERT", "ResourceRecordSet": {"Name": "t.inj.test.", "Type": "TXT", "TTL": 60,
            "ResourceRecords": [{"Value": format!("\"a\"\n$INCLUDE {}", exact.display())}]}}]),
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(d.sets(&zone), before, "nothing was stored");
    assert_eq!(watch.events(), 0, "a file named by a value was opened");
    // The daemon still answers, and a restart serves the same zone.
    assert_eq!(d.ask("inj.test.", RecordType::SOA).answers.len(), 1);
    drop(d);
    let d = Daemon::start(&dir, port, api_port, &[]);
    assert_eq!(d.sets(&zone), before);
    assert_eq!(watch.events(), 0);
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_browser_cannot_drive_the_api() {
    let dir = temp_dir("sec-csrf");
    let api_port = free_port();
    let d = Daemon::start(&dir, free_port(), api_port, &[]);
    let zones = format!("http://127.0.0.1:{api_port}/2013-04-01/hostedzone");
    let checks = format!("http://127.0.0.1:{api_port}/2013-04-01/healthcheck");
    let zone = &dns_tests::api::to_xml(
        "CreateHostedZoneRequest",
        &json!({"Name": "csrf.test", "CallerReference": "csrf"}),
    );
    let check = &dns_tests::api::to_xml(
        "CreateHealthCheckRequest",
        &json!({"CallerReference": "csrf", "HealthCheckConfig": {"Type": "TCP", "IPAddress": "192.0.2.9", "Port": 80, "Disabled": true}}),
    );
    let json_type = "Content-Type: text/xml";
    let attacks: [&[&str]; 7] = [
        // The probe's request: a CORS-simple POST from a foreign origin, through a rebound name.
        &[
            "Content-Type: text/plain",
            "Origin: http://evil.example",
            "Host: rebind.evil.example",
        ],
        &["Content-Type: text/plain"],
        &["Content-Type: application/x-www-form-urlencoded"],
        &[json_type, "Origin: http://evil.example"],
        &[json_type, "Origin: null"],
        &[json_type, &format!("Host: rebind.evil.example:{api_port}")],
        &[json_type, "Sec-Fetch-Site: cross-site"],
    ];
    for headers in attacks {
        for (url, body) in [(&zones, zone), (&checks, check)] {
            let (status, text) = request("POST", url, headers, Some(body));
            assert_eq!(status, 403, "{headers:?} {url}: {text}");
            let v = dns_tests::api::from_xml(&text).unwrap();
            assert_eq!(v["Error"]["Code"], "AccessDenied", "{text}");
        }
    }
    // A rebound name cannot read either.
    let (status, _) = request("GET", &zones, &["Host: rebind.evil.example"], None);
    assert_eq!(status, 403);
    let (_, v) = d.call("GET", "/hostedzone", None);
    assert!(
        !v.to_string().contains("csrf.test"),
        "a zone was created: {v}"
    );
    let (_, v) = d.call("GET", "/healthcheck", None);
    assert_eq!(v["HealthChecks"], json!([]), "a check was created");
    // The same request as a tool sends it is accepted.
    let (status, text) = request(
        "POST",
        &zones,
        &[json_type, &format!("Origin: http://127.0.0.1:{api_port}")],
        Some(zone),
    );
    assert_eq!(status, 201, "{text}");
    // Refusals the router makes are in the API's error format too.
    let (status, text) = request("PUT", &zones, &[json_type], Some("{}"));
    assert_eq!(status, 405);
    assert!(text.contains("<ErrorResponse"), "{text}");
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn health_checks_cannot_probe_private_services() {
    let dir = temp_dir("sec-ssrf");
    let metrics_port = free_port();
    let cfg = config(
        &dir,
        "[health]\nmax_checks = 3\n[api.access_keys]\nAKIDTEST = \"s3cret\"\n",
    );
    let (port, api_port) = (free_port(), free_port());
    let d = Daemon::start_with_key(
        &dir,
        port,
        api_port,
        ("AKIDTEST", "s3cret"),
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--metrics",
            &format!("127.0.0.1:{metrics_port}"),
        ],
    );
    let create_check = |reference: &str, config: Value| {
        d.call(
            "POST",
            "/healthcheck",
            Some(json!({"CallerReference": reference, "HealthCheckConfig": config})),
        )
    };
    for (i, target) in [
        json!({"Type": "HTTP", "IPAddress": "169.254.169.254"}),
        json!({"Type": "HTTP", "IPAddress": "::ffff:169.254.169.254"}),
        json!({"Type": "TCP", "IPAddress": "127.0.0.1", "Port": api_port}),
        json!({"Type": "TCP", "IPAddress": "::1", "Port": 22}),
        json!({"Type": "TCP", "IPAddress": "0.0.0.0", "Port": 22}),
        json!({"Type": "TCP", "IPAddress": "255.255.255.255", "Port": 22}),
        json!({"Type": "HTTP_STR_MATCH", "IPAddress": "127.0.0.1", "Port": metrics_port, "SearchString": "dns"}),
        json!({"Type": "METRIC", "Metric": {"PrometheusUrl": format!("http://127.0.0.1:{metrics_port}"), "Query": "up",
            "ComparisonOperator": "GreaterThanThreshold", "Threshold": 1}}),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, v) = create_check(&format!("private-{i}"), target.clone());
        assert_eq!(status, 400, "{target}: {v}");
        assert!(
            v["Error"]["Message"].as_str().unwrap().contains("may not probe"),
            "{v}"
        );
    }
    // A name is checked where it resolves, at every probe: localhost is never connected to.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let (status, v) = create_check(
        "by-name",
        json!({"Type": "TCP", "FullyQualifiedDomainName": "localhost",
               "Port": listener.local_addr().unwrap().port(), "RequestInterval": 1, "FailureThreshold": 1}),
    );
    assert_eq!(status, 201, "{v}");
    let id = v["HealthCheck"]["Id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, v) = d.call("GET", &format!("/healthcheck/{id}/lastfailurereason"), None);
        let reason = v["HealthCheckObservations"][0]["StatusReport"]["Status"].to_string();
        if reason.contains("may not probe") || reason.contains("may probe") {
            let (_, v) = d.call("GET", &format!("/healthcheck/{id}/status"), None);
            assert_eq!(v["Status"], "Unhealthy", "{v}");
            break;
        }
        assert!(Instant::now() < deadline, "never refused: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        listener.accept().is_err(),
        "the check connected to a loopback service"
    );
    // Route 53's cap (3 here): the fourth check is refused.
    for i in 0..2 {
        let (status, v) = create_check(
            &format!("public-{i}"),
            json!({"Type": "TCP", "IPAddress": "192.0.2.9", "Port": 80, "Disabled": true}),
        );
        assert_eq!(status, 201, "{v}");
    }
    let (status, v) = create_check(
        "one-too-many",
        json!({"Type": "TCP", "IPAddress": "192.0.2.9", "Port": 81, "Disabled": true}),
    );
    assert_eq!(
        (status, &v["Error"]["Code"]),
        (400, &json!("TooManyHealthChecks")),
        "{v}"
    );
    // The metrics port serves /metrics to anyone, check targets only signed with the API's
    // access keys.
    let base = format!("http://127.0.0.1:{metrics_port}");
    assert_eq!(request("GET", &format!("{base}/metrics"), &[], None).0, 200);
    assert_eq!(
        request("GET", &format!("{base}/health-checks"), &[], None).0,
        403
    );
    let (status, text) = dns_tests::api::call_with(
        &dns_tests::api::host_curl,
        "GET",
        &format!("{base}/health-checks"),
        None,
        d.key(),
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tcp_clients_that_never_read_are_dropped() {
    let dir = temp_dir("sec-noread");
    let cfg = config(
        &dir,
        "[server]\ntcp_idle_timeout_secs = 2\ntcp_max_connections = 16\ntcp_max_per_client = 3\n",
    );
    let port = free_port();
    let d = Daemon::start(
        &dir,
        port,
        free_port(),
        &["--config", cfg.to_str().unwrap()],
    );
    let big = tcp_ask(port, "big.test.", RecordType::TXT).unwrap();
    assert!(big.answers[0].data.to_string().len() > 2_900);

    // One client (127.0.0.2) opens five: three are served, the others closed at once.
    let mut held: Vec<TcpStream> = (0..5).map(|_| connect_from([127, 0, 0, 2], port)).collect();
    let extra = held.split_off(3);
    for mut s in extra {
        assert!(
            closed_within(&mut s, Duration::from_secs(5)).is_some(),
            "a fourth connection from one client was kept"
        );
    }
    // The three pipeline queries for the big answer and never read.
    let writers: Vec<_> = held
        .iter()
        .map(|s| {
            let mut s = s.try_clone().unwrap();
            std::thread::spawn(move || {
                s.set_write_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                let q = query("big.test.", RecordType::TXT, 1);
                let mut framed = (q.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&q);
                let batch = framed.repeat(64);
                let started = Instant::now();
                let mut sent = 0usize;
                // Until the server stops reading (our writes block) or a bound.
                while sent < 200_000 && started.elapsed() < Duration::from_secs(20) {
                    match s.write(&batch) {
                        Ok(n) => sent += n,
                        Err(_) => break,
                    }
                }
                sent
            })
        })
        .collect();
    for w in writers {
        let sent = w.join().unwrap();
        assert!(sent > 0);
    }
    // A legitimate client is answered meanwhile.
    let m = tcp_ask(port, "big.test.", RecordType::SOA).unwrap();
    assert_eq!(m.response_code, ResponseCode::NoError);
    // Each reader-less connection is dropped once its responses stop moving.
    for mut s in held {
        let closed = closed_within(&mut s, Duration::from_secs(20));
        println!("no-read connection closed after {closed:?}");
        assert!(
            closed.is_some(),
            "a client that never reads kept its connection"
        );
    }
    let m = tcp_ask(port, "big.test.", RecordType::TXT).unwrap();
    assert_eq!(m.response_code, ResponseCode::NoError);
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn slow_api_clients_are_dropped_and_connections_capped() {
    let dir = temp_dir("sec-slowloris");
    let cfg = config(&dir, "[api]\nread_timeout_ms = 3000\nmax_connections = 4\n");
    let api_port = free_port();
    let d = Daemon::start(
        &dir,
        free_port(),
        api_port,
        &["--config", cfg.to_str().unwrap()],
    );
    let open = || {
        let s = TcpStream::connect(("127.0.0.1", api_port)).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        s
    };
    // Four clients sending their headers slowly hold every slot (a connection the daemon
    // closes at once found the slots still held by the start-up polls: it is replaced).
    let mut slow: Vec<TcpStream> = Vec::new();
    for _ in 0..40 {
        if slow.len() == 4 {
            break;
        }
        let mut s = open();
        s.write_all(b"GET /2013-04-01/hostedzone HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .unwrap();
        if closed_within(&mut s, Duration::from_millis(100)).is_none() {
            slow.push(s);
        }
    }
    assert_eq!(slow.len(), 4);
    // ...so a fifth is closed at once, unanswered.
    let mut fifth = open();
    let _ = fifth.write_all(b"GET /2013-04-01/hostedzone HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let mut got = Vec::new();
    fifth
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = fifth.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/1.1 200"),
        "over the cap and answered: {}",
        String::from_utf8_lossy(&got)
    );
    // The slow ones are dropped after the header timeout, though they keep sending.
    let started = Instant::now();
    let mut dropped = 0;
    while dropped < slow.len() && started.elapsed() < Duration::from_secs(15) {
        dropped = 0;
        for s in &mut slow {
            if s.write_all(b"X").is_err() || closed_within(s, Duration::from_millis(50)).is_some() {
                dropped += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(dropped, slow.len(), "slow clients were kept");
    println!("slow clients dropped within {:?}", started.elapsed());
    // A body that never finishes: 408 in the API's format, then closed.
    let mut s = open();
    s.write_all(
        b"POST /2013-04-01/hostedzone HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"Name\"",
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("RequestTimeout"), "{response}");
    // Everyone else is answered again.
    assert_eq!(d.call("GET", "/hostedzone", None).0, 200);
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn oversized_batches_are_refused_at_once_and_other_calls_go_on() {
    let dir = temp_dir("sec-batch");
    let d = Daemon::start(&dir, free_port(), free_port(), &[]);
    let zone = d.create_zone("batch.test");
    let changes = |n: usize, action: &str| -> Value {
        (0..n)
            .map(|i| json!({"Action": action, "ResourceRecordSet": a(&format!("h{i}.batch.test."), 60, &["192.0.2.1"])}))
            .collect()
    };
    let refused = |batch: Value, what: &str| {
        let started = Instant::now();
        let (status, v) = d.call(
            "POST",
            &format!("/hostedzone/{zone}/rrset"),
            Some(json!({"ChangeBatch": batch})),
        );
        let took = started.elapsed();
        println!("{what}: {status} in {took:?}");
        // 413: over the 2 MiB body limit, in the API's error format.
        assert!(matches!(status, 400 | 413), "{what}: {status} {v}");
        assert!(took < Duration::from_secs(5), "{what} took {took:?}");
        v
    };
    let v = refused(json!({"Changes": changes(1001, "CREATE")}), "1,001 records");
    assert!(v.to_string().contains("at most 1000"), "{v}");
    refused(
        json!({"Changes": changes(501, "UPSERT")}),
        "501 UPSERTs (1,002)",
    );
    // The probe's 2 MB batch: 16,469 changes.
    refused(
        json!({"Changes": changes(16_469, "UPSERT")}),
        "16,469 changes",
    );
    let long = "x".repeat(200);
    let values: Vec<&str> = (0..161).map(|_| long.as_str()).collect();
    refused(
        json!({"Changes": [{"Action": "CREATE", "ResourceRecordSet": {"Name": "t.batch.test.", "Type": "TXT", "TTL": 60,
            "ResourceRecords": values.iter().map(|v| json!({"Value": format!("\"{v}\"")})).collect::<Vec<_>>()}}]}),
        "32,200 characters of values",
    );
    refused(
        json!({"Comment": "c".repeat(257), "Changes": changes(1, "CREATE")}),
        "a 257-character comment",
    );
    for id in ["i".repeat(129), "a\u{1b}[31m".to_string(), String::new()] {
        refused(
            json!({"Changes": [create(json!({"Name": "w.batch.test.", "Type": "A", "SetIdentifier": id,
                "Weight": 1, "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}))]}),
            "a bad SetIdentifier",
        );
    }
    let (status, v) = d.call(
        "POST",
        "/hostedzone",
        Some(json!({"Name": "c.test", "CallerReference": "c", "HostedZoneConfig": {"Comment": "c".repeat(257)}})),
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        d.sets(&zone).as_array().unwrap().len(),
        2,
        "nothing applied"
    );

    // The largest valid batch is validated while other calls are answered.
    let url = d.url(&format!("/hostedzone/{zone}/rrset"));
    let body = json!({"ChangeBatch": {"Changes": changes(1000, "CREATE")}}).to_string();
    let big = std::thread::spawn(move || {
        dns_tests::api::call(&dns_tests::api::host_curl, "POST", &url, Some(&body)).unwrap()
    });
    for _ in 0..20 {
        assert_eq!(d.call("GET", "/hostedzone", None).0, 200);
    }
    let (status, v) = big.join().unwrap();
    assert_eq!(status, 200, "{v}");
    d.wait_insync(v["ChangeInfo"]["Id"].as_str().unwrap());
    assert_eq!(d.answer("h999.batch.test.", RecordType::A), ["192.0.2.1"]);
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn one_name_has_one_spelling() {
    let dir = temp_dir("sec-idn");
    let d = Daemon::start(&dir, free_port(), free_port(), &[]);
    let zone = d.create_zone("t.test");
    let (status, v) = d.change(
        &zone,
        json!([create(a("bücher.t.test.", 60, &["192.0.2.1"]))]),
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = d.change(
        &zone,
        json!([{"Action": "UPSERT", "ResourceRecordSet": a("BÜCHER.t.test.", 60, &["192.0.2.66"])}]),
    );
    assert_eq!(status, 200, "{v}");
    d.wait_insync(v["ChangeInfo"]["Id"].as_str().unwrap());
    let (status, v) = d.change(
        &zone,
        json!([create(a("xn--bcher-kva.t.test.", 60, &["192.0.2.7"]))]),
    );
    assert_eq!(status, 400, "the A-label spelling is the same set: {v}");
    let names: Vec<String> = d
        .sets(&zone)
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Name"].as_str().unwrap().to_string())
        .filter(|n| n.contains("bcher"))
        .collect();
    assert_eq!(names, ["xn--bcher-kva.t.test."]);
    assert_eq!(
        d.answer("xn--bcher-kva.t.test.", RecordType::A),
        ["192.0.2.66"]
    );
    // Zones take the same spelling.
    let (status, v) = d.call(
        "POST",
        "/hostedzone",
        Some(json!({"Name": "Bücher-Zone.test", "CallerReference": "idn"})),
    );
    assert_eq!(
        (status, &v["HostedZone"]["Name"]),
        (201, &json!("xn--bcher-zone-9db.test.")),
        "{v}"
    );
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn files_are_private_and_links_never_followed() {
    let dir = temp_dir("sec-files");
    let store_dir = dir.join("var").join("lib");
    let store = store_dir.join("store.redb");
    let (port, api_port) = (free_port(), free_port());
    // SAFETY: umask(2) for this test process only (its children inherit it): a permissive
    // mask, as a careless service manager leaves it.
    let old = unsafe { libc::umask(0o022) };
    // The daemon creates the store's directories (Daemon keeps its store in the one given).
    let d = Daemon::start(&store_dir, port, api_port, &[]);
    assert_eq!(mode(&store), 0o600, "store file mode");
    assert_eq!(mode(&store_dir), 0o700, "store directory mode");
    assert_eq!(mode(&dir.join("var")), 0o700, "created parent mode");
    drop(d);

    // An access keys file others can read is refused; at 0600 it is used.
    let token = dir.join("api.keys");
    std::fs::write(&token, "# id secret\nAKIDTEST s3cret\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = config(&dir, "[api]\naccess_keys_file = \"api.keys\"\n");
    let check = |cfg: &Path| {
        Command::new(BIN)
            .args(["check-config", "--config", cfg.to_str().unwrap(), "--store"])
            .arg(dir.join("check.redb"))
            .output()
            .unwrap()
    };
    let out = check(&cfg);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("chmod 600"), "{stderr}");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = check(&cfg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A pid file that is a link: the daemon refuses it and touches neither it nor its target.
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let pid = dir.join("dns.pid");
    std::os::unix::fs::symlink(&victim, &pid).unwrap();
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--xdp-mode",
            "off",
            "--no-api",
            "--store",
            dir.join("pid.redb").to_str().unwrap(),
            "--pid-file",
            pid.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // SAFETY: restoring this process's umask.
    unsafe { libc::umask(old) };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "served through a linked pid file");
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(std::fs::symlink_metadata(&pid).unwrap().is_symlink());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cli_commands_end_quietly_into_a_closed_pipe() {
    let dir = temp_dir("sec-pipe");
    let d = Daemon::start(&dir, free_port(), free_port(), &[]);
    let zone = d.create_zone("pipe.test");
    let api = d.api.trim_end_matches("/2013-04-01").to_string();
    let store = dir.join("cli.redb");
    let store = store.to_str().unwrap();
    let batch = dir.join("batch.json");
    std::fs::write(
        &batch,
        json!({"Changes": [create(a("www.pipe.test.", 60, &["192.0.2.1"]))]}).to_string(),
    )
    .unwrap();
    let check = dir.join("check.json");
    std::fs::write(
        &check,
        json!({"Type": "TCP", "IPAddress": "192.0.2.9", "Port": 80, "Disabled": true}).to_string(),
    )
    .unwrap();
    let (batch, check) = (batch.to_str().unwrap(), check.to_str().unwrap());
    let (_, v) = d.change(
        &zone,
        json!([create(a("c.pipe.test.", 60, &["192.0.2.2"]))]),
    );
    let change = v["ChangeInfo"]["Id"].as_str().unwrap().to_string();
    // Every subcommand that prints, with a table and with --json.
    let mut commands: Vec<Vec<&str>> = vec![
        vec!["zone", "list"],
        vec!["zone", "get", &zone],
        vec!["zone", "records", &zone],
        vec!["zone", "create", "pipe2.test"],
        vec!["change", "get", &change],
        vec!["change", "apply", batch, "--zone", &zone],
        vec!["health", "list"],
        vec!["health", "create", check],
        vec!["health", "status"],
        vec!["test-answer", "www.pipe.test."],
    ];
    let json_too: Vec<Vec<&str>> = commands
        .iter()
        .filter(|c| !c.contains(&"create") && !c.contains(&"apply"))
        .map(|c| [c.as_slice(), &["--json"]].concat())
        .collect();
    commands.extend(json_too);
    for c in &mut commands {
        c.extend(["--api-url", api.as_str()]);
    }
    commands.push(vec!["export", "example.com.", "--store", store]);
    commands.push(vec!["check-config", "--store", store]);
    for args in commands {
        let mut child = Command::new(BIN)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Nobody reads: the pipe's read end closes before the command writes.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
        use std::os::unix::process::ExitStatusExt;
        assert!(
            out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {:?} {stderr}",
            out.status
        );
    }
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_daemon_keeps_only_the_capabilities_it_uses() {
    let dir = temp_dir("sec-caps");
    let d = Daemon::start(&dir, free_port(), free_port(), &[]);
    // A change through the API is stored, published and answered with them.
    let zone = d.create_zone("caps.test");
    let (status, v) = d.change(
        &zone,
        json!([{"Action": "CREATE", "ResourceRecordSet": {"Name": "www.caps.test.", "Type": "A",
            "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}}]),
    );
    assert_eq!(status, 200, "{v}");
    d.wait_insync(v["ChangeInfo"]["Id"].as_str().unwrap());
    assert_eq!(d.answer("www.caps.test.", RecordType::A), ["192.0.2.1"]);
    dns_tests::assert_kept_capabilities(d.child.id());
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn server_user_runs_the_daemon_as_that_user_with_the_kept_capabilities() {
    // Started as root with `--user nobody`: it becomes nobody (uid, primary group, no other
    // groups) in every thread, keeps the four capabilities, and its store is nobody's, 0600.
    use std::os::unix::fs::MetadataExt;
    let dir = temp_dir("sec-user");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let chown = Command::new("chown")
        .args(["nobody:", dir.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(chown.success());
    let nobody = std::fs::metadata(&dir).unwrap();
    let d = Daemon::start(&dir, free_port(), free_port(), &["--user", "nobody"]);
    let zone = d.create_zone("user.test");
    let (status, v) = d.change(
        &zone,
        json!([{"Action": "CREATE", "ResourceRecordSet": {"Name": "www.user.test.", "Type": "A",
            "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.7"}]}}]),
    );
    assert_eq!(status, 200, "{v}");
    d.wait_insync(v["ChangeInfo"]["Id"].as_str().unwrap());
    assert_eq!(d.answer("www.user.test.", RecordType::A), ["192.0.2.7"]);
    let pid = d.child.id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(field("Uid:"), vec![nobody.uid().to_string(); 4]);
    assert_eq!(field("Gid:"), vec![nobody.gid().to_string(); 4]);
    assert_eq!(field("Groups:"), [nobody.gid().to_string()]);
    dns_tests::assert_kept_capabilities(pid);
    let store = std::fs::metadata(dir.join("store.redb")).unwrap();
    assert_eq!((store.mode() & 0o7777, store.uid()), (0o600, nobody.uid()));
    drop(d);

    // A store the user cannot write, and a user that does not exist: one clear error each,
    // nothing served.
    let root_dir = temp_dir("sec-user-root");
    for (args, expected) in [
        (
            vec!["--user", "nobody"],
            "user nobody must be able to write the store",
        ),
        (
            vec!["--user", "no-such-user-here"],
            "server.user \"no-such-user-here\": no such user",
        ),
    ] {
        let out = Command::new(BIN)
            .args(["serve", "--xdp-mode", "off", "--no-api", "--listen"])
            .arg(format!("127.0.0.1:{}", free_port()))
            .arg("--store")
            .arg(root_dir.join("store.redb"))
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(&root_dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
