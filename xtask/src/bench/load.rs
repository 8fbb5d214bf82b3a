//! Load generators and measurements: dnsperf, kxdpgun, a latency probe, process and XDP
//! program costs. Every load is bounded in time (and dnsperf also in count).

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use dns_tests::{SERVER_V4, Side, Testbed};
use hickory_proto::rr::{Name, RecordType};

/// dnsperf stops after this many passes over the query file even if time remains.
const MAX_PASSES: &str = "1000000";

#[derive(Clone, Debug, Default)]
pub struct Dnsperf {
    pub qps: f64,
    pub completed: u64,
    pub lost: u64,
    pub avg_latency_us: f64,
}

/// dnsperf from the client namespace for `seconds`.
pub fn dnsperf(bed: &Testbed, queries: &Path, seconds: u32) -> anyhow::Result<Dnsperf> {
    let secs = seconds.to_string();
    let server = SERVER_V4.to_string();
    let args = [
        "-s",
        &server,
        "-d",
        queries.to_str().context("path")?,
        "-l",
        &secs,
        "-n",
        MAX_PASSES,
        "-c",
        "8",
        "-q",
        "256",
        "-t",
        "2",
    ];
    let output = bed.output(Side::Client, "dnsperf", &args)?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = output
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .with_context(|| format!("dnsperf printed no {name:?}:\n{output}"))?;
        let value = line.split(':').nth(1).context("no value")?;
        Ok(value.split_whitespace().next().context("empty")?.parse()?)
    };
    Ok(Dnsperf {
        qps: field("Queries per second")?,
        completed: field("Queries completed")? as u64,
        lost: field("Queries lost")? as u64,
        avg_latency_us: field("Average Latency (s)")? * 1e6,
    })
}

#[derive(Clone, Debug, Default)]
pub struct Kxdpgun {
    pub sent_pps: f64,
    pub replies_pps: f64,
    pub response_ratio: f64,
}

/// kxdpgun (AF_XDP) from the client veth at `qps` offered for `seconds`.
pub fn kxdpgun(bed: &Testbed, queries: &Path, seconds: u32, qps: u32) -> anyhow::Result<Kxdpgun> {
    let (secs, rate) = (seconds.to_string(), qps.to_string());
    let server = SERVER_V4.to_string();
    let args = [
        "-t",
        &secs,
        "-Q",
        &rate,
        "-i",
        queries.to_str().context("path")?,
        "-I",
        &bed.client_if,
        &server,
    ];
    let out = bed.output(Side::Client, "kxdpgun", &args)?;
    // "total queries:     300010 (100003 pps)" / "total replies:     300010 (100003 pps) (100%)"
    let pps = |label: &str| -> anyhow::Result<f64> {
        let line = out
            .lines()
            .find(|l| l.starts_with(label))
            .with_context(|| format!("kxdpgun printed no {label:?}:\n{out}"))?;
        let inner = line.split('(').nth(1).context("no rate")?;
        Ok(inner.split_whitespace().next().context("empty")?.parse()?)
    };
    let sent = pps("total queries:")?;
    let replies = pps("total replies:").unwrap_or(0.0);
    Ok(Kxdpgun {
        sent_pps: sent,
        replies_pps: replies,
        response_ratio: if sent > 0.0 { replies / sent } else { 0.0 },
    })
}

#[derive(Clone, Debug, Default)]
pub struct Probe {
    pub p50_us: f64,
    pub p99_us: f64,
    pub lost: usize,
    pub samples: usize,
}

/// Sequential queries (one outstanding, every 2 ms) from the client namespace for `duration`:
/// the latency a single client sees while the load runs.
pub fn probe(
    bed: &Testbed,
    names: &[(String, RecordType)],
    duration: Duration,
) -> anyhow::Result<Probe> {
    bed.run_in(Side::Client, || -> anyhow::Result<Probe> {
        let socket = UdpSocket::bind("0.0.0.0:0")?;
        socket.connect((SERVER_V4, 53))?;
        socket.set_read_timeout(Some(Duration::from_millis(500)))?;
        let mut rtts = Vec::new();
        let mut lost = 0;
        let mut buf = [0u8; 4096];
        let end = Instant::now() + duration;
        let mut i = 0usize;
        while Instant::now() < end {
            let (name, qtype) = &names[i % names.len()];
            let id = (i % 65536) as u16;
            let q =
                dns_user::server::answer::build_query(id, &Name::from_ascii(name)?, *qtype, None);
            let sent = Instant::now();
            socket.send(&q)?;
            loop {
                match socket.recv(&mut buf) {
                    Ok(n) if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id => {
                        rtts.push(sent.elapsed().as_secs_f64() * 1e6);
                        break;
                    }
                    Ok(_) => continue, // a late answer to an earlier query
                    Err(_) => {
                        lost += 1;
                        break;
                    }
                }
            }
            i += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        rtts.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            rtts.get(((rtts.len() as f64 * p) as usize).min(rtts.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0.0)
        };
        Ok(Probe {
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            lost,
            samples: rtts.len() + lost,
        })
    })?
}

/// Waits until the server answers a query from the client namespace.
pub fn wait_answering(bed: &mut Testbed, pid: u32, timeout: Duration) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let q = dns_user::server::answer::build_query(
        1,
        &Name::from_ascii("example.com.")?,
        RecordType::SOA,
        None,
    );
    loop {
        let answered = bed.run_in(Side::Client, || {
            let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
            socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .ok()?;
            socket.send_to(&q, (SERVER_V4, 53)).ok()?;
            let mut buf = [0u8; 512];
            socket
                .recv(&mut buf)
                .ok()
                .filter(|n| *n >= 12 && buf[3] & 0xf == 0)
        })?;
        if answered.is_some() {
            return Ok(start.elapsed());
        }
        if let Some(status) = bed.exited(pid) {
            bail!("server exited ({status}) before answering");
        }
        if start.elapsed() > timeout {
            bail!("server did not answer within {timeout:?}");
        }
    }
}

/// Every PID in the process tree rooted at `pid`.
fn tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        if let Ok(children) =
            std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        {
            all.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
        i += 1;
    }
    all
}

/// CPU time (user + system) of a process tree, in ns.
pub fn tree_cpu_ns(pid: u32) -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    tree(pid)
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|stat| {
            let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
            // utime and stime are fields 14 and 15: 11 and 12 after the comm field.
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum::<u64>()
        * 1_000_000_000
        / hz
}

/// Resident memory of a process tree, in bytes.
pub fn tree_rss_bytes(pid: u32) -> u64 {
    tree(pid)
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
        })
        .sum()
}

/// The XDP program attached to the server veth: (id, run_time_ns, run_cnt, map ids).
pub struct XdpProgram {
    pub run_time_ns: u64,
    pub run_cnt: u64,
    pub map_memlock: u64,
}

pub fn xdp_program(bed: &Testbed) -> Option<XdpProgram> {
    let link = bed
        .output(
            Side::Server,
            "ip",
            &["-d", "link", "show", "dev", &bed.server_if],
        )
        .ok()?;
    let id = link
        .split_whitespace()
        .skip_while(|w| *w != "prog/xdp")
        .nth(2)?
        .to_string();
    let show = |what: &str, id: &str| -> Option<String> {
        let out = Command::new("bpftool")
            .args([what, "show", "id", id])
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let prog = show("prog", &id)?;
    let num = |text: &str, key: &str| -> Option<u64> {
        text.split(key)
            .nth(1)?
            .split_whitespace()
            .next()?
            .trim_end_matches('B')
            .parse()
            .ok()
    };
    let map_ids: Vec<String> = prog
        .split("map_ids")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .map(|ids| ids.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let map_memlock = map_ids
        .iter()
        .filter_map(|m| num(&show("map", m)?, "memlock"))
        .sum();
    Some(XdpProgram {
        run_time_ns: num(&prog, "run_time_ns").unwrap_or(0),
        run_cnt: num(&prog, "run_cnt").unwrap_or(0),
        map_memlock,
    })
}

pub fn sysctl(key: &str) -> anyhow::Result<String> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    Ok(std::fs::read_to_string(&path)
        .with_context(|| format!("reading {path}"))?
        .trim()
        .to_string())
}

pub fn set_sysctl(key: &str, value: &str) -> anyhow::Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::write(&path, value).with_context(|| format!("writing {path}"))
}
