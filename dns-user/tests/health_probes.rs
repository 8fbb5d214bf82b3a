//! Health-check probes against real servers on loopback: HTTP, HTTPS (SNI, self-signed
//! certificate), string match (the 5,120-byte window, gzip), TCP, metric checks against a
//! Prometheus-shaped API, and a slow server for each per-stage timeout (configured short here;
//! the defaults are checked with paused time).

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dns_user::health::probe::{NetProber, Outcome, Prober};
use dns_user::health::spec::{self, CheckSpec, HealthCheckConfig, MetricConfig};
use dns_user::health::targets::TargetPolicy;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the scripted server does with each connection.
#[derive(Clone, Default)]
struct Script {
    /// Before the status line.
    delay: Duration,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send this much of the body, then stall.
    stall_after: Option<usize>,
    /// Accept, read the request, never answer.
    silent: bool,
}

/// What the server saw.
#[derive(Default)]
struct Seen {
    requests: Vec<String>,
    sni: Vec<Option<String>>,
}

struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    _task: tokio::task::JoinHandle<()>,
}

async fn server(script: Script, tls: Option<tokio_rustls::TlsAcceptor>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let script = script.clone();
            let tls = tls.clone();
            let record = record.clone();
            tokio::spawn(async move {
                match tls {
                    None => answer(stream, &script, &record).await,
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(stream).await else {
                            return;
                        };
                        let sni = stream.get_ref().1.server_name().map(str::to_string);
                        record.lock().unwrap().sni.push(sni);
                        answer(stream, &script, &record).await
                    }
                }
            });
        }
    });
    Server {
        addr,
        seen,
        _task: task,
    }
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, script: &Script, seen: &Mutex<Seen>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    seen.lock()
        .unwrap()
        .requests
        .push(String::from_utf8_lossy(&request).into_owned());
    if script.silent {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return;
    }
    tokio::time::sleep(script.delay).await;
    let mut head = format!(
        "HTTP/1.1 {} X\r\ncontent-length: {}\r\n",
        script.status,
        script.body.len()
    );
    for (k, v) in &script.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = s.write_all(head.as_bytes()).await;
    let send = script.stall_after.unwrap_or(script.body.len());
    let _ = s.write_all(&script.body[..send]).await;
    let _ = s.flush().await;
    if script.stall_after.is_some() {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

fn check(config: HealthCheckConfig) -> CheckSpec {
    spec::build(vec![("t".into(), config)]).unwrap().remove(0)
}

fn http(kind: &str, addr: SocketAddr) -> HealthCheckConfig {
    HealthCheckConfig {
        check_type: kind.into(),
        ip_address: Some(addr.ip()),
        port: Some(addr.port()),
        ..Default::default()
    }
}

/// The servers here are on loopback, which health checks may probe only when allowed.
fn loopback_allowed() -> TargetPolicy {
    TargetPolicy {
        allow_networks: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        ..TargetPolicy::default()
    }
}

async fn probe(spec: &CheckSpec) -> Outcome {
    NetProber::new(loopback_allowed()).probe(spec).await
}

fn healthy(o: &Outcome) -> bool {
    matches!(o, Outcome::Healthy(_))
}

fn detail(o: &Outcome) -> &str {
    match o {
        Outcome::Healthy(d) | Outcome::Unhealthy(d) | Outcome::NoData(d) => d,
    }
}

#[tokio::test]
async fn http_status_codes_host_header_and_path() {
    for (status, want) in [
        (200, true),
        (204, true),
        (301, true),
        (399, true),
        (404, false),
        (503, false),
    ] {
        let s = server(
            Script {
                status,
                ..Default::default()
            },
            None,
        )
        .await;
        let mut config = http("HTTP", s.addr);
        config.resource_path = Some("health?deep=1".into());
        config.fqdn = Some("www.example.com".into());
        let o = probe(&check(config)).await;
        assert_eq!(healthy(&o), want, "{status}: {o:?}");
        assert!(detail(&o).contains(&status.to_string()), "{o:?}");
        let req = s.seen.lock().unwrap().requests[0].clone();
        assert!(req.starts_with("GET /health?deep=1 HTTP/1.1\r\n"), "{req}");
        let host = format!("host: www.example.com:{}\r\n", s.addr.port());
        assert!(
            req.to_ascii_lowercase().contains(&host),
            "FQDN:port (non-default port): {req}"
        );
    }
}

#[tokio::test]
async fn connection_refused_is_unhealthy() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let o = probe(&check(http("HTTP", addr))).await;
    assert!(!healthy(&o) && detail(&o).contains("connecting"), "{o:?}");
    let mut tcp = http("TCP", addr);
    tcp.port = Some(port);
    let o = probe(&check(tcp)).await;
    assert!(!healthy(&o) && detail(&o).contains("refused"), "{o:?}");
}

#[tokio::test]
async fn tcp_connect_and_endpoint_by_domain_name() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let o = probe(&check(HealthCheckConfig {
        check_type: "TCP".into(),
        fqdn: Some("localhost".into()),
        port: Some(port),
        ..Default::default()
    }))
    .await;
    assert!(healthy(&o), "{o:?}");
    assert!(
        detail(&o).contains(&format!("127.0.0.1:{port}")),
        "resolved, IPv4 first: {o:?}"
    );
}

const MATCH: &[u8] = b"ALL-SYSTEMS-GO";

fn body_with_match_at(offset: usize) -> Vec<u8> {
    let mut body = vec![b'.'; offset];
    body.extend_from_slice(MATCH);
    body.extend_from_slice(&[b'.'; 100]);
    body
}

fn str_match(kind: &str, addr: SocketAddr) -> HealthCheckConfig {
    HealthCheckConfig {
        search_string: Some(String::from_utf8(MATCH.to_vec()).unwrap()),
        ..http(kind, addr)
    }
}

#[tokio::test]
async fn search_string_within_the_first_5120_bytes_only() {
    for (offset, want) in [
        (0, true),
        (5120 - MATCH.len(), true),
        (5120 - MATCH.len() + 1, false),
        (6000, false),
    ] {
        let s = server(
            Script {
                status: 200,
                body: body_with_match_at(offset),
                ..Default::default()
            },
            None,
        )
        .await;
        let o = probe(&check(str_match("HTTP_STR_MATCH", s.addr))).await;
        assert_eq!(healthy(&o), want, "match at {offset}: {o:?}");
    }
    // Case-sensitive.
    let s = server(
        Script {
            status: 200,
            body: b"all-systems-go".to_vec(),
            ..Default::default()
        },
        None,
    )
    .await;
    assert!(!healthy(
        &probe(&check(str_match("HTTP_STR_MATCH", s.addr))).await
    ));
    // A matching body with a failing status is unhealthy.
    let s = server(
        Script {
            status: 500,
            body: MATCH.to_vec(),
            ..Default::default()
        },
        None,
    )
    .await;
    assert!(!healthy(
        &probe(&check(str_match("HTTP_STR_MATCH", s.addr))).await
    ));
}

#[tokio::test]
async fn search_string_in_a_gzip_body_counts_decompressed_bytes() {
    let gzip = |plain: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(plain).unwrap();
        e.finish().unwrap()
    };
    for (offset, want) in [(5000, true), (5200, false)] {
        let body = gzip(&body_with_match_at(offset));
        assert!(
            body.len() < 200,
            "compressed, the match is within the first bytes on the wire"
        );
        let script = Script {
            status: 200,
            headers: vec![("content-encoding".into(), "gzip".into())],
            body,
            ..Default::default()
        };
        let s = server(script, None).await;
        let o = probe(&check(str_match("HTTP_STR_MATCH", s.addr))).await;
        assert_eq!(healthy(&o), want, "decompressed offset {offset}: {o:?}");
        let req = s.seen.lock().unwrap().requests[0].to_ascii_lowercase();
        assert!(req.contains("accept-encoding: gzip, deflate"), "{req}");
    }
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    let cert =
        rcgen::generate_simple_self_signed(vec!["not-the-checked-name.test".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[tokio::test]
async fn https_without_certificate_validation_and_with_optional_sni() {
    let script = Script {
        status: 200,
        body: body_with_match_at(10),
        ..Default::default()
    };
    let s = server(script, Some(tls_acceptor())).await;
    // EnableSNI defaults on with a domain name: the SNI is the FQDN, the Host too.
    let mut with_sni = str_match("HTTPS_STR_MATCH", s.addr);
    with_sni.fqdn = Some("shop.example.com".into());
    let o = probe(&check(with_sni.clone())).await;
    assert!(
        healthy(&o),
        "self-signed for another name, still healthy: {o:?}"
    );
    // Off: no SNI at all.
    with_sni.enable_sni = Some(false);
    assert!(healthy(&probe(&check(with_sni)).await));
    // By IP only: no SNI.
    assert!(healthy(&probe(&check(http("HTTPS", s.addr))).await));
    {
        let seen = s.seen.lock().unwrap();
        assert_eq!(
            seen.sni,
            vec![Some("shop.example.com".to_string()), None, None]
        );
        assert!(
            seen.requests[0]
                .to_ascii_lowercase()
                .contains(&format!("host: shop.example.com:{}", s.addr.port()))
        );
    }
    // Plain HTTP against a TLS server fails.
    let o = probe(&check(http("HTTP", s.addr))).await;
    assert!(!healthy(&o), "{o:?}");
}

/// A listener whose accept queue is full: further SYNs are dropped, so connecting hangs.
fn black_hole() -> (socket2::Socket, Vec<std::net::TcpStream>, SocketAddr) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    // Fill the queue (never accepted).
    let mut held = Vec::new();
    for _ in 0..4 {
        if let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            held.push(s);
        }
    }
    (socket, held, addr)
}

#[tokio::test]
async fn each_stage_has_its_own_configured_timeout() {
    let ms = |n| Some(n);
    // Connect.
    let (_l, _held, addr) = black_hole();
    let mut c = http("HTTP", addr);
    c.connect_timeout_ms = ms(300);
    let t = Instant::now();
    let o = probe(&check(c)).await;
    assert!(
        detail(&o).contains("timed out connecting (limit 300ms)"),
        "{o:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(2));
    let mut c = http("TCP", addr);
    c.connect_timeout_ms = ms(300);
    let o = probe(&check(c)).await;
    assert!(detail(&o).contains("timed out connecting"), "{o:?}");

    // Status: a server that reads the request and never answers, and one that is slow.
    let s = server(
        Script {
            silent: true,
            ..Default::default()
        },
        None,
    )
    .await;
    let mut c = http("HTTP", s.addr);
    c.status_timeout_ms = ms(300);
    let o = probe(&check(c)).await;
    assert!(
        detail(&o).contains("timed out waiting for the HTTP status (limit 300ms)"),
        "{o:?}"
    );
    let s = server(
        Script {
            status: 200,
            delay: Duration::from_millis(600),
            ..Default::default()
        },
        None,
    )
    .await;
    let mut c = http("HTTP", s.addr);
    c.status_timeout_ms = ms(300);
    assert!(!healthy(&probe(&check(c.clone())).await));
    c.status_timeout_ms = ms(2000);
    assert!(healthy(&probe(&check(c)).await), "within the limit");

    // Body: status at once, then the body stalls before the match.
    let script = Script {
        status: 200,
        body: body_with_match_at(3000),
        stall_after: Some(1000),
        ..Default::default()
    };
    let s = server(script, None).await;
    let mut c = str_match("HTTP_STR_MATCH", s.addr);
    c.body_timeout_ms = ms(300);
    let o = probe(&check(c)).await;
    assert!(
        detail(&o).contains("timed out reading the body (limit 300ms)"),
        "{o:?}"
    );
    // Stalling after the first 5,120 bytes is fine: nothing more is read.
    let script = Script {
        status: 200,
        body: body_with_match_at(100)
            .into_iter()
            .chain(vec![b'.'; 10_000])
            .collect(),
        stall_after: Some(6000),
        ..Default::default()
    };
    let s = server(script, None).await;
    let mut c = str_match("HTTP_STR_MATCH", s.addr);
    c.body_timeout_ms = ms(300);
    assert!(healthy(&probe(&check(c)).await));
}

#[tokio::test(start_paused = true)]
async fn default_timeouts_are_route53s() {
    let (_l, _held, addr) = black_hole();
    let t = tokio::time::Instant::now();
    let o = probe(&check(http("HTTP", addr))).await;
    assert!(
        detail(&o).contains("timed out connecting (limit 4s)"),
        "{o:?}"
    );
    assert_eq!(t.elapsed().as_secs(), 4);
    let mut tcp = http("TCP", addr);
    tcp.port = Some(addr.port());
    let t = tokio::time::Instant::now();
    let o = probe(&check(tcp)).await;
    assert!(detail(&o).contains("(limit 10s)"), "{o:?}");
    assert_eq!(t.elapsed().as_secs(), 10);

    let s = server(
        Script {
            silent: true,
            ..Default::default()
        },
        None,
    )
    .await;
    let o = probe(&check(http("HTTP", s.addr))).await;
    assert!(
        detail(&o).contains("waiting for the HTTP status (limit 2s)"),
        "{o:?}"
    );
    let script = Script {
        status: 200,
        body: body_with_match_at(3000),
        stall_after: Some(10),
        ..Default::default()
    };
    let s = server(script, None).await;
    let o = probe(&check(str_match("HTTP_STR_MATCH", s.addr))).await;
    assert!(detail(&o).contains("reading the body (limit 2s)"), "{o:?}");
}

fn metric(addr: SocketAddr, metric: MetricConfig) -> CheckSpec {
    check(HealthCheckConfig {
        check_type: "METRIC".into(),
        metric: Some(MetricConfig {
            prometheus_url: format!("http://{addr}"),
            ..metric
        }),
        ..Default::default()
    })
}

fn prometheus(body: &str) -> Script {
    Script {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
        ..Default::default()
    }
}

#[tokio::test]
async fn metric_checks_against_a_prometheus_api() {
    let vector = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"12"]}]}}"#;
    let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    let query = |op: &str, threshold: f64| MetricConfig {
        query: Some("sum(rate(http_errors_total[1m]))".into()),
        comparison_operator: Some(op.into()),
        threshold: Some(threshold),
        ..Default::default()
    };
    let s = server(prometheus(vector), None).await;
    let o = probe(&metric(s.addr, query("GreaterThanThreshold", 10.0))).await;
    assert!(
        matches!(o, Outcome::Unhealthy(_)),
        "12 > 10 is an alarm: {o:?}"
    );
    let o = probe(&metric(s.addr, query("GreaterThanThreshold", 20.0))).await;
    assert!(matches!(o, Outcome::Healthy(_)), "{o:?}");
    let req = s.seen.lock().unwrap().requests[0].clone();
    assert!(
        req.starts_with(
            "GET /api/v1/query?query=sum%28rate%28http%5Ferrors%5Ftotal%5B1m%5D%29%29 "
        ),
        "{req}"
    );

    let s = server(prometheus(empty), None).await;
    let o = probe(&metric(s.addr, query("GreaterThanThreshold", 10.0))).await;
    assert!(matches!(o, Outcome::NoData(_)), "{o:?}");
    let alert = MetricConfig {
        alert: Some("WebDown".into()),
        ..Default::default()
    };
    let o = probe(&metric(s.addr, alert.clone())).await;
    assert!(matches!(o, Outcome::Healthy(_)), "no firing series: {o:?}");
    let req = s.seen.lock().unwrap().requests[1].clone();
    assert!(
        req.contains("ALERTS%7Balertname%3D%22WebDown%22%2Calertstate%3D%22firing%22%7D"),
        "{req}"
    );
    let s = server(prometheus(vector), None).await;
    assert!(matches!(
        probe(&metric(s.addr, alert.clone())).await,
        Outcome::Unhealthy(_)
    ));

    // No answer, an error status or an API error: insufficient data, never a verdict.
    let s = server(
        Script {
            status: 503,
            ..Default::default()
        },
        None,
    )
    .await;
    assert!(matches!(
        probe(&metric(s.addr, alert.clone())).await,
        Outcome::NoData(_)
    ));
    let s = server(
        prometheus(r#"{"status":"error","error":"INTERNAL-SECRET db_password=hunter2"}"#),
        None,
    )
    .await;
    let o = probe(&metric(s.addr, alert.clone())).await;
    assert!(matches!(o, Outcome::NoData(_)), "{o:?}");
    assert!(
        !detail(&o).contains("SECRET"),
        "remote text reflected: {o:?}"
    );
    let s = server(
        prometheus(r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"leaked-value-xyz"]}]}}"#),
        None,
    )
    .await;
    let o = probe(&metric(s.addr, alert.clone())).await;
    assert!(
        !detail(&o).contains("leaked"),
        "remote text reflected: {o:?}"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert!(matches!(
        probe(&metric(closed, alert)).await,
        Outcome::NoData(_)
    ));
}

#[tokio::test]
async fn a_tcp_check_of_a_listening_port_then_a_closed_one() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut c = http("TCP", addr);
    c.port = Some(addr.port());
    let spec = check(c);
    assert!(healthy(&probe(&spec).await));
    drop(listener);
    let _ = TcpStream::connect(addr).await; // nothing listens any more
    assert!(!healthy(&probe(&spec).await));
}

/// With the default policy, loopback, link-local (the metadata address) and names that
/// resolve to loopback are never connected to, at every probe: a server listening there sees
/// no connection.
#[tokio::test]
async fn private_service_addresses_are_never_probed_by_default() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let strict = NetProber::new(TargetPolicy::default());
    let by_name = check(HealthCheckConfig {
        check_type: "TCP".into(),
        fqdn: Some("localhost".into()),
        port: Some(addr.port()),
        ..Default::default()
    });
    for spec in [
        check(http("HTTP", addr)),
        check(HealthCheckConfig {
            check_type: "TCP".into(),
            ip_address: Some(addr.ip()),
            port: Some(addr.port()),
            ..Default::default()
        }),
        by_name,
        check(http("HTTP", "169.254.169.254:80".parse().unwrap())),
    ] {
        let o = strict.probe(&spec).await;
        assert!(!healthy(&o), "{o:?}");
        assert!(
            detail(&o).contains("may not probe") || detail(&o).contains("may probe"),
            "{o:?}"
        );
    }
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "a refused target was connected to");
    // And a definition naming such an address is refused where checks are made.
    let specs = vec![check(http("HTTP", addr))];
    let err = spec::check_targets(&specs, &TargetPolicy::default()).unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
    assert!(spec::check_targets(&specs, &loopback_allowed()).is_ok());
}
