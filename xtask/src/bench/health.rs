//! Failover timing: how long a health check takes to see an endpoint go down or come back
//! (detection: endpoint change -> the check's state change) and how long the new answer takes
//! to reach clients through XDP (propagation: state change -> the first XDP answer with the
//! new address). A failover name, an HTTP check at a 1 s interval with threshold 2, a client
//! querying every millisecond; the endpoint is an HTTP listener the bench opens and closes in
//! the client namespace.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use dns_tests::fixtures::ZONE_HEAD;
use dns_tests::{CLIENT_V4, METRICS_ADDR, SERVER_V4, Side, Testbed};
use dns_user::health::monitor::CheckStatus;
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, RecordType};

/// Down-and-up cycles measured.
const CYCLES: usize = 5;
const PRIMARY: &str = "192.0.2.10";
const SECONDARY: &str = "192.0.2.20";
const PORT: u16 = 8081;

/// Medians and maxima over every switch (down and up), in seconds.
pub struct Timing {
    pub switches: usize,
    pub detection: (f64, f64),
    pub propagation: (f64, f64),
    pub interval_s: u32,
    pub threshold: u8,
}

/// An HTTP endpoint that answers 200 until stopped.
pub(super) struct Endpoint {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Endpoint {
    /// In the testbed's client namespace.
    fn start(bed: &Testbed) -> anyhow::Result<Endpoint> {
        let addr = SocketAddr::from((CLIENT_V4, PORT));
        // The socket belongs to the namespace it was created in, whichever thread serves it.
        Endpoint::serve(bed.run_in(Side::Client, move || TcpListener::bind(addr))??)
    }

    /// On `listener`.
    pub(super) fn serve(listener: TcpListener) -> anyhow::Result<Endpoint> {
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                        let mut buf = [0u8; 2048];
                        let _ = s.read(&mut buf);
                        let _ = s.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        Ok(Endpoint { stop, thread })
    }

    /// Closes the listener; returns when it is closed.
    pub(super) fn stop(self) -> SystemTime {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        SystemTime::now()
    }
}

fn config() -> String {
    format!(
        r#"[health_check.primary]
type = "HTTP"
ip_address = "{CLIENT_V4}"
port = {PORT}
request_interval = 1
failure_threshold = 2

{ZONE_HEAD}
[[zone.record]]
name = "www"
type = "A"
set_id = "primary"
failover = "PRIMARY"
health_check = "primary"
ttl = 5
values = ["{PRIMARY}"]

[[zone.record]]
name = "www"
type = "A"
set_id = "secondary"
failover = "SECONDARY"
ttl = 5
values = ["{SECONDARY}"]
"#
    )
}

/// When the check last changed state, per the daemon.
fn state_since(bed: &Testbed, healthy: bool) -> anyhow::Result<Option<SystemTime>> {
    let body = bed.output(
        Side::Server,
        "curl",
        &["-sf", &format!("http://{METRICS_ADDR}/health-checks")],
    )?;
    let checks: Vec<CheckStatus> = serde_json::from_str(&body).context("/health-checks")?;
    let check = checks.first().context("no health check")?;
    let want = if healthy { "Healthy" } else { "Unhealthy" };
    if check.status != want {
        return Ok(None);
    }
    let since = check
        .since
        .as_deref()
        .context("a changed check has a since")?;
    Ok(Some(humantime::parse_rfc3339(since)?))
}

/// Queries www every millisecond (bounded by `limit`) until the answer is `want`; returns when
/// that answer arrived.
fn first_answer(bed: &Testbed, want: &'static str, limit: Duration) -> anyhow::Result<SystemTime> {
    let name = Name::from_ascii("www.example.com.")?;
    bed.run_in(Side::Client, move || -> anyhow::Result<SystemTime> {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        let start = Instant::now();
        let mut id: u16 = 0;
        let mut buf = [0u8; 512];
        while start.elapsed() < limit {
            id = id.wrapping_add(1);
            let q = dns_user::server::answer::build_query(id, &name, RecordType::A, None);
            socket.send_to(&q, (SERVER_V4, 53))?;
            if let Ok(n) = socket.recv(&mut buf) {
                let at = SystemTime::now();
                let m = Message::from_vec(&buf[..n])?;
                let hit = m.answers.iter().any(|r| match &r.data {
                    RData::A(a) => a.0.to_string() == want,
                    _ => false,
                });
                if hit {
                    return Ok(at);
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        bail!("www did not become {want} within {limit:?}")
    })?
}

/// Waits (bounded) until the daemon reports the check `healthy`; returns when it changed.
fn wait_state(bed: &Testbed, healthy: bool, limit: Duration) -> anyhow::Result<SystemTime> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(t) = state_since(bed, healthy)? {
            return Ok(t);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("the check did not become {healthy} within {limit:?}")
}

fn secs(d: Result<Duration, std::time::SystemTimeError>) -> f64 {
    // Clock steps could make a difference negative; count it as 0.
    d.map_or(0.0, |d| d.as_secs_f64())
}

pub fn measure(bin: &str) -> anyhow::Result<Timing> {
    let mut bed = Testbed::create("dnsxh")?;
    let dir = std::env::temp_dir().join(format!("dns-bench-health-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("failover.toml");
    std::fs::write(&path, config())?;
    let mut endpoint = Some(Endpoint::start(&bed)?);
    let _daemon = bed.start_service(bin, "native", &["--config", path.to_str().unwrap()], false)?;
    first_answer(&bed, PRIMARY, Duration::from_secs(10))?;

    let limit = Duration::from_secs(10);
    let mut detection = Vec::new();
    let mut propagation = Vec::new();
    for _ in 0..CYCLES {
        let down_at = endpoint.take().expect("running").stop();
        let answered = first_answer(&bed, SECONDARY, limit)?;
        let changed = wait_state(&bed, false, limit)?;
        detection.push(secs(changed.duration_since(down_at)));
        propagation.push(secs(answered.duration_since(changed)));

        let up_at = SystemTime::now();
        endpoint = Some(Endpoint::start(&bed)?);
        let answered = first_answer(&bed, PRIMARY, limit)?;
        let changed = wait_state(&bed, true, limit)?;
        detection.push(secs(changed.duration_since(up_at)));
        propagation.push(secs(answered.duration_since(changed)));
    }
    if let Some(e) = endpoint {
        e.stop();
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Timing {
        switches: detection.len(),
        detection: median_max(&mut detection),
        propagation: median_max(&mut propagation),
        interval_s: 1,
        threshold: 2,
    })
}

fn median_max(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() - 1])
}

/// Query latency and daemon CPU with and without many health checks running.
pub struct CheckLoad {
    pub checks: usize,
    /// (without checks, with checks): daemon CPU as % of one core.
    pub cpu_pct: (f64, f64),
    /// (without, with): single-client latency of an XDP-answered and a userspace-answered name.
    pub xdp: (super::load::Probe, super::load::Probe),
    pub userspace: (super::load::Probe, super::load::Probe),
    /// Checks that had at least one successful probe by the end of the window.
    pub probed: usize,
}

const LOAD_CHECKS: usize = 2000;
const WINDOW: Duration = Duration::from_secs(5);

fn load_config(checks: usize) -> String {
    // More checks than the daemon allows by default (200): this run measures their cost.
    let mut text = format!("[health]\nmax_checks = {checks}\n\n");
    for i in 0..checks {
        text.push_str(&format!(
            "[health_check.c{i}]\ntype = \"HTTP\"\nip_address = \"{CLIENT_V4}\"\nport = {PORT}\nrequest_interval = 1\n\n"
        ));
    }
    text.push_str(ZONE_HEAD);
    text.push_str(
        r#"
[[zone.record]]
name = "www"
type = "A"
ttl = 60
values = ["192.0.2.10"]

[[zone.record]]
name = "txt"
type = "TXT"
ttl = 60
values = ["\"answered by userspace\""]
"#,
    );
    text
}

/// One run: (cpu %, xdp probe, userspace probe, checks probed successfully).
fn load_run(
    bin: &str,
    checks: usize,
) -> anyhow::Result<(f64, super::load::Probe, super::load::Probe, usize)> {
    let mut bed = Testbed::create("dnsxl")?;
    let dir = std::env::temp_dir().join(format!("dns-bench-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("load.toml");
    std::fs::write(&path, load_config(checks))?;
    let endpoint = Endpoint::start(&bed)?;
    let daemon = bed.start_service(bin, "native", &["--config", path.to_str().unwrap()], false)?;
    // Every check has had its first probe (random phase within the 1 s interval).
    std::thread::sleep(Duration::from_secs(2));
    let cpu0 = super::load::tree_cpu_ns(daemon.pid);
    let t0 = Instant::now();
    let www = [("www.example.com.".to_string(), RecordType::A)];
    let txt = [("txt.example.com.".to_string(), RecordType::TXT)];
    let xdp = super::load::probe(&bed, &www, WINDOW)?;
    let userspace = super::load::probe(&bed, &txt, WINDOW)?;
    let cpu = (super::load::tree_cpu_ns(daemon.pid) - cpu0) as f64 / t0.elapsed().as_nanos() as f64;
    let body = bed.output(
        Side::Server,
        "curl",
        &["-sf", &format!("http://{METRICS_ADDR}/health-checks")],
    )?;
    let status: Vec<CheckStatus> = serde_json::from_str(&body).context("/health-checks")?;
    let probed = status
        .iter()
        .filter(|c| c.observations.iter().any(|o| o.result == "Success"))
        .count();
    endpoint.stop();
    let _ = std::fs::remove_dir_all(&dir);
    Ok((cpu * 100.0, xdp, userspace, probed))
}

pub fn check_load(bin: &str) -> anyhow::Result<CheckLoad> {
    let (cpu0, xdp0, user0, _) = load_run(bin, 0)?;
    let (cpu1, xdp1, user1, probed) = load_run(bin, LOAD_CHECKS)?;
    Ok(CheckLoad {
        checks: LOAD_CHECKS,
        cpu_pct: (cpu0, cpu1),
        xdp: (xdp0, xdp1),
        userspace: (user0, user1),
        probed,
    })
}
