//! `cargo xtask bench`: this service against the field, in one run, on one machine.
//!
//! One generated zone (1k, 100k or 1M names) is served in turn by dns-xdp with XDP, dns-xdp's
//! userspace server alone, Knot DNS over UDP, Knot DNS in XDP mode and NSD, each in the server
//! namespace of a fresh testbed, and loaded from the client namespace with the same query file:
//! dnsperf (QPS, loss, latency) with a single-client latency probe beside it (p50/p99), then
//! kxdpgun at a high offered rate. Server CPU per answered query counts the server's process
//! tree plus its XDP program (`kernel.bpf_stats_enabled`). For dns-xdp also: memory, zone load
//! time, map update throughput, and BPF_PROG_TEST_RUN ns/run per fixture. Writes markdown and
//! a PNG chart under `bench/results/`.

mod chart;
mod cluster;
mod contenders;
mod dnssec;
mod health;
mod load;
mod policies;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aya::programs::{TestRun, TestRunOptions};
use dns_common::PROGRAM_NAME;
use dns_tests::fixtures::{Expect, fixtures};
use dns_tests::frame::catalog;
use dns_tests::{Side, Testbed, metric};
use dns_user::fastpath::compile::compile;
use dns_user::fastpath::maps::MapWriter;
use dns_user::fastpath::xdp::{self, LoadOptions};
use hickory_proto::rr::RecordType;

use crate::{build_daemon, require_root, workspace};
use contenders::Contender;
use load::{Dnsperf, Kxdpgun, Probe};

/// Zone sizes `--zone-size` accepts.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ZoneSize {
    #[value(name = "1k")]
    K1,
    #[value(name = "100k")]
    K100,
    #[value(name = "1m")]
    M1,
}

impl ZoneSize {
    fn names(self) -> usize {
        match self {
            ZoneSize::K1 => 1_000,
            ZoneSize::K100 => 100_000,
            ZoneSize::M1 => 1_000_000,
        }
    }

    fn label(self) -> &'static str {
        match self {
            ZoneSize::K1 => "1k",
            ZoneSize::K100 => "100k",
            ZoneSize::M1 => "1m",
        }
    }
}

/// What `cargo xtask bench` was asked for.
pub struct Options {
    pub zone_size: ZoneSize,
    /// dnsperf seconds per server.
    pub seconds: u32,
    /// kxdpgun seconds per server.
    pub kxdpgun_seconds: u32,
    /// kxdpgun offered rate, queries per second.
    pub kxdpgun_qps: u32,
}

/// One server's results.
struct Row {
    label: &'static str,
    load_time: Duration,
    rss: u64,
    map_memory: Option<u64>,
    perf: Dnsperf,
    probe: Probe,
    kx: Kxdpgun,
    /// Why kxdpgun could not run (its columns are then left empty).
    kx_error: Option<String>,
    cpu_ns_per_query: f64,
    xdp_ns_per_packet: Option<f64>,
    answered_in_xdp: Option<f64>,
    /// Change batches through the API (ours with XDP only).
    insync: Option<Insync>,
}

/// Change-to-INSYNC times of change batches applied through the API.
struct Insync {
    batches: usize,
    /// Client side: POST sent -> GetChange says INSYNC (polled every ms); median, max.
    client: (Duration, Duration),
    /// Server side: acceptance -> both paths serve it (the daemon's histogram); mean.
    server_mean: Duration,
    /// Batches of [`BIG_BATCH`] changes (CREATEs of new names, their DELETEs, CREATEs
    /// again), client side: POST sent -> INSYNC; median, max.
    big: (Duration, Duration),
}

/// Changes in one large batch (Route 53's most records per batch).
const BIG_BATCH: usize = 1000;
/// Large batches applied.
const BIG_BATCHES: usize = 3;

/// Applies `BATCHES` one-record UPSERTs through the API in the server namespace and times
/// each until INSYNC.
fn measure_insync(bed: &Testbed) -> anyhow::Result<Insync> {
    const BATCHES: usize = 20;
    let curl = |args: &[&str]| bed.output(Side::Server, "curl", args);
    let api = "http://127.0.0.1:8053/2013-04-01";
    let call = |method: &str, path: &str, body: Option<String>| {
        dns_tests::api::call(&curl, method, &format!("{api}{path}"), body.as_deref())
    };
    let metric_sum = || -> anyhow::Result<(f64, f64)> {
        let page = bed.metrics_page()?;
        let value = |name: &str| {
            page.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        Ok((
            value("dns_change_insync_seconds_sum "),
            value("dns_change_insync_seconds_count "),
        ))
    };
    let (_, zones) = call("GET", "/hostedzone", None)?;
    let zone = zones["HostedZones"][0]["Id"]
        .as_str()
        .map(dns_tests::api::bare)
        .context("no hosted zone")?
        .to_string();
    // POST a batch of `changes`, then poll GetChange every ms: the time to INSYNC.
    let apply = |changes: Vec<serde_json::Value>| -> anyhow::Result<Duration> {
        let body = serde_json::json!({"ChangeBatch": {"Changes": changes}});
        let started = Instant::now();
        let (status, v) = call(
            "POST",
            &format!("/hostedzone/{zone}/rrset"),
            Some(body.to_string()),
        )?;
        if status != 200 {
            bail!("change batch refused: {v}");
        }
        until_insync(&|path| call("GET", path, None), &v, started)
    };
    let change = |action: &str, name: String, address: String| {
        serde_json::json!({"Action": action, "ResourceRecordSet": {"Name": name, "Type": "A",
            "TTL": 30, "ResourceRecords": [{"Value": address}]}})
    };
    let before = metric_sum()?;
    let mut times = Vec::new();
    for i in 0..BATCHES {
        let one = change(
            "UPSERT",
            "insync.example.com.".into(),
            format!("192.0.2.{}", 100 + i),
        );
        times.push(apply(vec![one])?);
    }
    let after = metric_sum()?;
    times.sort();
    let count = (after.1 - before.1).max(1.0);
    let mut big = Vec::new();
    // 1,000 new names, the same deleted, then made again (Route 53 counts an UPSERT twice
    // against its 1,000 records per batch, so these are CREATEs and DELETEs).
    for round in 0..BIG_BATCHES {
        let action = if round % 2 == 0 { "CREATE" } else { "DELETE" };
        let changes = (0..BIG_BATCH)
            .map(|i| {
                change(
                    action,
                    format!("batch{i}.example.com."),
                    "198.51.100.1".into(),
                )
            })
            .collect();
        big.push(apply(changes)?);
    }
    big.sort();
    Ok(Insync {
        batches: BATCHES,
        client: (times[times.len() / 2], times[times.len() - 1]),
        server_mean: Duration::from_secs_f64((after.0 - before.0) / count),
        big: (big[big.len() / 2], big[big.len() - 1]),
    })
}

/// Polls GetChange (through `get`) every ms until the change `accepted` (a ChangeInfo
/// reply) is INSYNC: the time since `started`.
fn until_insync(
    get: &dyn Fn(&str) -> anyhow::Result<(u16, serde_json::Value)>,
    accepted: &serde_json::Value,
    started: Instant,
) -> anyhow::Result<Duration> {
    let id = accepted["ChangeInfo"]["Id"]
        .as_str()
        .map(dns_tests::api::bare)
        .context("no change id")?
        .to_string();
    loop {
        let (_, v) = get(&format!("/change/{id}"))?;
        if v["ChangeInfo"]["Status"] == "INSYNC" {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("change {id} not INSYNC after 30 s");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The generated workload.
struct Workload {
    dir: PathBuf,
    zone: PathBuf,
    queries: PathBuf,
    sample: Vec<(String, RecordType)>,
    entries: u32,
}

/// `cargo xtask bench --cluster`: see [`cluster`]; written to bench/results/cluster.md.
pub fn bench_cluster() -> anyhow::Result<()> {
    require_root("cargo xtask bench --cluster")?;
    let bin = build_daemon(true)?;
    let bin = bin.to_str().context("non-UTF-8 path")?.to_string();
    println!("bench: three nodes on etcd");
    let timing = cluster::measure(&bin)?;
    let md = cluster::report(&timing, &machine(), &git_commit());
    let out_dir = workspace().join("bench/results");
    std::fs::create_dir_all(&out_dir)?;
    let path = out_dir.join("cluster.md");
    std::fs::write(&path, &md).with_context(|| format!("writing {}", path.display()))?;
    println!("{md}\nwritten to {}", path.display());
    Ok(())
}

pub fn bench(options: &Options) -> anyhow::Result<()> {
    require_root("cargo xtask bench")?;
    ensure_tools()?;
    let started = Instant::now();
    let bin = build_daemon(true)?;
    let bin = bin.to_str().context("non-UTF-8 path")?.to_string();
    let work = generate(options.zone_size)?;
    println!(
        "bench: zone of {} names, {} map entries",
        options.zone_size.names(),
        work.entries
    );

    let mut test_run = prog_test_run()?;
    test_run.extend(policies::prog_test_run()?);
    test_run.extend(dnssec::prog_test_run()?);
    println!("bench: DNSSEC signing, {} names", options.zone_size.names());
    let signing = dnssec::signing(options.zone_size.names())?;
    println!("bench: routing-policy coverage of the fast path");
    let coverage = policies::coverage(&bin)?;
    let updates = map_update_throughput(&work)?;
    println!("bench: health-check failover timing");
    let failover = health::measure(&bin)?;
    println!("bench: query latency with many health checks running");
    let check_load = health::check_load(&bin)?;
    let stats_before = load::sysctl("kernel.bpf_stats_enabled")?;
    load::set_sysctl("kernel.bpf_stats_enabled", "1")?;
    let mut rows = Vec::new();
    let mut failure = None;
    let mut missing = Vec::new();
    for c in Contender::ALL {
        println!("bench: {}", c.label());
        match measure(c, &bin, &work, options) {
            Ok(row) => rows.push(row),
            // Another server that cannot run on this machine (Knot's XDP mode needs what
            // some kernels refuse) is reported missing; our own failing ends the run.
            Err(e) if !c.is_ours() => {
                eprintln!("bench: {} could not run: {e:#}", c.label());
                missing.push((c.label(), format!("{e:#}")));
            }
            Err(e) => {
                failure = Some(e.context(format!("measuring {}", c.label())));
                break;
            }
        }
    }
    load::set_sysctl("kernel.bpf_stats_enabled", &stats_before)?;
    let _ = std::fs::remove_dir_all(&work.dir);
    if let Some(e) = failure {
        return Err(e);
    }

    let out_dir = workspace().join("bench/results");
    std::fs::create_dir_all(&out_dir)?;
    let size = options.zone_size.label();
    let chart_path = out_dir.join(format!("{size}.png"));
    let chart_rows: Vec<chart::Bar> = rows
        .iter()
        .map(|r| chart::Bar {
            label: r.label.to_string(),
            dnsperf_qps: r.perf.qps,
            kxdpgun_pps: r.kx.replies_pps,
            p99_us: r.probe.p99_us,
        })
        .collect();
    chart::draw(&chart_path, &format!("zone of {size} names"), &chart_rows)?;
    let md = report(
        options,
        &missing,
        &rows,
        &Extras {
            test_run,
            updates,
            failover,
            check_load,
            coverage,
            signing,
        },
        &format!("{size}.png"),
        started.elapsed(),
    )?;
    let md_path = out_dir.join(format!("{size}.md"));
    std::fs::write(&md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;
    println!(
        "{md}\nwritten to {} and {}",
        md_path.display(),
        chart_path.display()
    );
    Ok(())
}

/// The tools the bench runs and the Debian packages that ship them.
const TOOLS: &[(&str, &str)] = &[
    ("dnsperf", "dnsperf"),
    ("kxdpgun", "knot-dnsutils"),
    ("knotd", "knot"),
    ("nsd", "nsd"),
    ("bpftool", "bpftool"),
    (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "fonts-dejavu-core",
    ),
];

fn have(tool: &str) -> bool {
    if tool.starts_with('/') {
        return Path::new(tool).exists();
    }
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs the Debian packages of missing tools.
fn ensure_tools() -> anyhow::Result<()> {
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(t, _)| !have(t))
        .map(|(_, p)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("bench: installing {}", missing.join(" "));
    let apt = |args: &[&str]| -> anyhow::Result<()> {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("running apt-get")?;
        if !status.success() {
            bail!("apt-get {} failed", args.join(" "));
        }
        Ok(())
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&missing);
    apt(&install)
}

/// A deterministic pseudo-random sequence (no state worth a dependency).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Writes the zone (names h0..hN with A, every fourth with AAAA too) and a 10,000-line query
/// file of hits in the format dnsperf and kxdpgun both read.
fn generate(size: ZoneSize) -> anyhow::Result<Workload> {
    let n = size.names();
    let dir = std::env::temp_dir().join(format!("dnsx-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut zone = String::with_capacity(n * 40);
    zone.push_str("$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 900 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.53\n");
    let mut entries = 1u32;
    for i in 0..n {
        // RFC 2544's benchmarking prefix for the data; nothing is ever sent there.
        let _ = writeln!(zone, "h{i} IN A 198.18.{}.{}", (i >> 8) & 0xff, i & 0xff);
        entries += 1;
        if i % 4 == 0 {
            let _ = writeln!(
                zone,
                "h{i} IN AAAA 2001:db8::{:x}:{:x}",
                i >> 16,
                i & 0xffff
            );
            entries += 1;
        }
    }
    let zone_path = dir.join("example.com.zone");
    std::fs::write(&zone_path, zone)?;
    let mut rng = Lcg(0x5eed);
    let mut queries = String::new();
    let mut sample = Vec::new();
    for _ in 0..10_000 {
        let i = rng.next() as usize % n;
        let qtype = if i % 4 == 0 && rng.next() % 2 == 0 {
            RecordType::AAAA
        } else {
            RecordType::A
        };
        let _ = writeln!(queries, "h{i}.example.com {qtype}");
        sample.push((format!("h{i}.example.com."), qtype));
    }
    let queries_path = dir.join("queries.txt");
    std::fs::write(&queries_path, queries)?;
    Ok(Workload {
        dir,
        zone: zone_path,
        queries: queries_path,
        sample,
        entries,
    })
}

fn measure(c: Contender, bin: &str, work: &Workload, options: &Options) -> anyhow::Result<Row> {
    let mut bed = Testbed::create("dnsxb")?;
    let t0 = Instant::now();
    let server = c.start(&mut bed, bin, &work.zone, &work.dir)?;
    load::wait_answering(&mut bed, server.pid, Duration::from_secs(900))?;
    let load_time = t0.elapsed();
    let rss = load::tree_rss_bytes(server.pid);
    let map_memory = c
        .uses_xdp()
        .then(|| load::xdp_program(&bed))
        .flatten()
        .map(|p| p.map_memlock);

    // dnsperf (and the probe beside it). On veth, XDP_TX and AF_XDP frames reach the client
    // only if its end runs an XDP program too.
    let client_if = bed.client_if.clone();
    let peer = if c.uses_xdp() {
        let p = bed.spawn(
            Side::Client,
            bin,
            &["xdp-pass", "--iface", &client_if],
            false,
        )?;
        p.wait_for(&mut bed, "pass program attached", Duration::from_secs(20))?;
        Some(p.pid)
    } else {
        None
    };
    let cpu0 = load::tree_cpu_ns(server.pid);
    let prog0 = load::xdp_program(&bed);
    let probe_for = Duration::from_secs(u64::from(options.seconds.saturating_sub(1).max(1)));
    let (perf, probe) = std::thread::scope(|scope| {
        let bed = &bed;
        let probe = scope.spawn(move || load::probe(bed, &work.sample, probe_for));
        let perf = load::dnsperf(bed, &work.queries, options.seconds);
        (
            perf,
            probe.join().map_err(|_| anyhow::anyhow!("probe panicked")),
        )
    });
    let (perf, probe) = (perf?, probe??);
    let cpu1 = load::tree_cpu_ns(server.pid);
    let prog1 = load::xdp_program(&bed);
    let (xdp_time, xdp_runs) = match (&prog0, &prog1) {
        (Some(a), Some(b)) => (b.run_time_ns - a.run_time_ns, b.run_cnt - a.run_cnt),
        _ => (0, 0),
    };
    let answered_in_xdp = (c == Contender::OursXdp)
        .then(|| bed.metrics_page().ok())
        .flatten()
        .and_then(|page| {
            metric(
                &page,
                "dns_xdp_packets_total{action=\"tx\",reason=\"answered\"}",
            )
        })
        .map(|n| n as f64 / (perf.completed + (probe.samples - probe.lost) as u64).max(1) as f64);
    let insync = (c == Contender::OursXdp)
        .then(|| measure_insync(&bed))
        .transpose()?;
    if let Some(pid) = peer {
        bed.stop(pid, Duration::from_secs(5));
    }

    // kxdpgun: its own XDP program runs on the client end; a server without XDP gets the pass
    // program on its end so the AF_XDP frames are delivered.
    let server_if = bed.server_if.clone();
    let server_pass = if c.uses_xdp() {
        None
    } else {
        let args = ["xdp-pass", "--iface", server_if.as_str()];
        let p = bed.spawn(Side::Server, bin, &args, false)?;
        p.wait_for(&mut bed, "pass program attached", Duration::from_secs(20))?;
        Some(p.pid)
    };
    // kxdpgun loads an XDP program of its own; a kernel that refuses it leaves its columns
    // empty (with the reason in the report) rather than ending the whole run.
    let (kx, kx_error) = match load::kxdpgun(
        &bed,
        &work.queries,
        options.kxdpgun_seconds,
        options.kxdpgun_qps,
    ) {
        Ok(kx) => (kx, None),
        Err(e) => {
            eprintln!("bench: kxdpgun against {}: {e:#}", c.label());
            (Kxdpgun::default(), Some(format!("{e:#}")))
        }
    };
    if let Some(pid) = server_pass {
        bed.stop(pid, Duration::from_secs(5));
    }

    Ok(Row {
        label: c.label(),
        load_time,
        rss,
        map_memory,
        cpu_ns_per_query: (cpu1 - cpu0 + xdp_time) as f64 / perf.completed.max(1) as f64,
        xdp_ns_per_packet: (xdp_runs > 0).then(|| xdp_time as f64 / xdp_runs as f64),
        answered_in_xdp,
        insync,
        perf,
        probe,
        kx,
        kx_error,
    })
}

struct Updates {
    full_entries: u32,
    full_per_sec: f64,
    delta_entries: usize,
    delta_time: Duration,
}

/// Map writer throughput: a full install into empty maps, then a 1% change.
fn map_update_throughput(work: &Workload) -> anyhow::Result<Updates> {
    let spec = dns_user::config::ZoneSpec {
        origin: hickory_proto::rr::Name::from_ascii("example.com.")?,
        source: Some(dns_user::config::ZoneSource::File(work.zone.clone())),
        records: Vec::new(),
        config: PathBuf::from("<bench>"),
        route53: Vec::new(),
        name_servers: Vec::new(),
    };
    let zone = dns_user::control::import::zone(
        &spec,
        &dns_user::location::Regions::new(),
        &Default::default(),
    )?;
    let (table, _) = compile(
        &dns_user::zone::Catalog::new([zone]),
        &dns_user::health::HealthState::default(),
    );
    let capacity = work.entries + 64;
    let mut ebpf = xdp::load(&LoadOptions {
        max_entries: capacity,
        ..Default::default()
    })?;
    let mut writer = MapWriter::new(&mut ebpf, capacity)?;
    let first = table.clone();
    let t = Instant::now();
    writer.install_owned(first)?;
    let full = t.elapsed();
    let mut changed = table.clone();
    let mut delta = 0;
    for (i, value) in changed.answers.values_mut().enumerate() {
        if i % 100 == 0 {
            value.data[value.len as usize - 1] ^= 1; // another address
            delta += 1;
        }
    }
    let t = Instant::now();
    writer.install(&changed)?;
    let partial = t.elapsed();
    Ok(Updates {
        full_entries: table.answers.len() as u32,
        full_per_sec: table.answers.len() as f64 / full.as_secs_f64(),
        delta_entries: delta,
        delta_time: partial,
    })
}

/// dns-xdp's own measurements, beside the comparison table.
struct Extras {
    test_run: Vec<(String, f64)>,
    updates: Updates,
    failover: health::Timing,
    check_load: health::CheckLoad,
    /// (share of A/AAAA queries answered in XDP, queries) for a zone with every policy.
    coverage: (f64, u64),
    signing: dnssec::Signing,
}

fn report(
    options: &Options,
    missing: &[(&str, String)],
    rows: &[Row],
    extras: &Extras,
    chart: &str,
    took: Duration,
) -> anyhow::Result<String> {
    let Extras {
        test_run,
        updates,
        failover,
        check_load,
        coverage,
        signing,
    } = extras;
    let knot_xdp = rows.iter().find(|r| r.label == Contender::KnotXdp.label());
    let ratio = |ours: f64, theirs: Option<f64>| match theirs {
        Some(t) if t > 0.0 => format!("{:.2}x", ours / t),
        _ => "-".into(),
    };
    let mut md = String::new();
    writeln!(
        md,
        "# Benchmark: zone of {} names\n",
        options.zone_size.label()
    )?;
    writeln!(
        md,
        "`cargo xtask bench --zone-size {}` — one run, {:.0} s; machines are shared and noisy, so compare within a run.\n",
        options.zone_size.label(),
        took.as_secs_f64()
    )?;
    writeln!(md, "- machine: {}", machine())?;
    writeln!(md, "- commit: {}", git_commit())?;
    writeln!(
        md,
        "- path: client namespace -> veth pair -> server namespace; every server with its default settings, the same zone and the same 10,000-query file (all hits)"
    )?;
    writeln!(
        md,
        "- dnsperf: {} s, 8 clients, 256 outstanding; probe: one client, one query every 2 ms, during the dnsperf run",
        options.seconds
    )?;
    writeln!(
        md,
        "- kxdpgun: {} s at {} queries/s offered\n",
        options.kxdpgun_seconds, options.kxdpgun_qps
    )?;
    writeln!(
        md,
        "| server | dnsperf QPS | vs Knot XDP | lost | avg latency µs | probe p50 µs | probe p99 µs | probe lost | kxdpgun sent/s | kxdpgun replies/s | vs Knot XDP | response ratio | server CPU ns/query | zone load s | RSS MiB |"
    )?;
    writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )?;
    for r in rows {
        let kx = if r.kx_error.is_some() {
            "- | - | - | -".to_string()
        } else {
            format!(
                "{:.0} | {:.0} | {} | {:.1}%",
                r.kx.sent_pps,
                r.kx.replies_pps,
                ratio(
                    r.kx.replies_pps,
                    knot_xdp
                        .filter(|k| k.kx_error.is_none())
                        .map(|k| k.kx.replies_pps)
                ),
                r.kx.response_ratio * 100.0
            )
        };
        writeln!(
            md,
            "| {} | {:.0} | {} | {} | {:.0} | {:.0} | {:.0} | {}/{} | {kx} | {:.0} | {:.2} | {:.1} |",
            r.label,
            r.perf.qps,
            ratio(r.perf.qps, knot_xdp.map(|k| k.perf.qps)),
            r.perf.lost,
            r.perf.avg_latency_us,
            r.probe.p50_us,
            r.probe.p99_us,
            r.probe.lost,
            r.probe.samples,
            r.cpu_ns_per_query,
            r.load_time.as_secs_f64(),
            r.rss as f64 / (1024.0 * 1024.0),
        )?;
    }
    for (label, e) in missing {
        writeln!(
            md,
            "\n{label} could not run on this machine ({}): `{}`.",
            machine_kernel(),
            e.lines().next().unwrap_or("").trim()
        )?;
    }
    if let Some(e) = rows.iter().find_map(|r| r.kx_error.as_deref()) {
        let reason = e
            .lines()
            .find(|l| l.contains("cannot use helper") || l.starts_with("error:"))
            .unwrap_or_else(|| e.lines().next().unwrap_or(""));
        writeln!(
            md,
            "\nkxdpgun could not run on this machine's kernel ({}): `{}`; its columns are empty.",
            machine_kernel(),
            reason.trim()
        )?;
    }
    writeln!(md, "\n![QPS and latency per server]({chart})\n")?;
    if let Some(ours) = rows.iter().find(|r| r.label == Contender::OursXdp.label()) {
        writeln!(md, "dns-xdp only:\n")?;
        writeln!(md, "| metric | value |\n|---|---:|")?;
        if let Some(tapped) = rows
            .iter()
            .find(|r| r.label == Contender::OursXdpDnstap.label())
        {
            let share = |on: f64, off: f64| {
                if off > 0.0 {
                    format!("{:+.1}%", (on / off - 1.0) * 100.0)
                } else {
                    "-".into()
                }
            };
            writeln!(
                md,
                "| dnstap on (every userspace query, 1 in {} XDP answers) vs off, same run: dnsperf QPS / kxdpgun replies/s | {} / {} |",
                contenders::DNSTAP_SAMPLE,
                share(tapped.perf.qps, ours.perf.qps),
                share(tapped.kx.replies_pps, ours.kx.replies_pps)
            )?;
        }
        if let Some(ns) = ours.xdp_ns_per_packet {
            writeln!(
                md,
                "| XDP program ns/packet under dnsperf (bpf_stats) | {ns:.0} |"
            )?;
        }
        if let Some(share) = ours.answered_in_xdp {
            writeln!(md, "| queries answered in XDP | {:.1}% |", share * 100.0)?;
        }
        writeln!(
            md,
            "| memory: process RSS + BPF maps | {:.1} MiB + {:.1} MiB |",
            ours.rss as f64 / 1048576.0,
            ours.map_memory.unwrap_or(0) as f64 / 1048576.0
        )?;
        writeln!(
            md,
            "| zone load to first answer | {:.2} s |",
            ours.load_time.as_secs_f64()
        )?;
        writeln!(
            md,
            "| map install into empty maps ({} entries, both buffers) | {:.0} entries/s |",
            updates.full_entries, updates.full_per_sec
        )?;
        writeln!(
            md,
            "| map update, 1% changed ({} entries), incl. the RCU grace-period wait | {:.1} ms |",
            updates.delta_entries,
            updates.delta_time.as_secs_f64() * 1e3
        )?;
        if let Some(i) = &ours.insync {
            writeln!(
                md,
                "| change-to-INSYNC, {} one-record batches through the API: client (POST -> GetChange INSYNC, median / max) | {:.1} ms / {:.1} ms |",
                i.batches,
                i.client.0.as_secs_f64() * 1e3,
                i.client.1.as_secs_f64() * 1e3
            )?;
            writeln!(
                md,
                "| change-to-INSYNC: server (accepted -> XDP maps and userspace serve it, mean) | {:.1} ms |",
                i.server_mean.as_secs_f64() * 1e3
            )?;
            writeln!(
                md,
                "| change-to-INSYNC, {BIG_BATCHES} batches of {BIG_BATCH} changes (CREATE new names, DELETE them, CREATE again): client (median / max) | {:.1} ms / {:.1} ms |",
                i.big.0.as_secs_f64() * 1e3,
                i.big.1.as_secs_f64() * 1e3
            )?;
        }
        writeln!(
            md,
            "| A/AAAA queries answered in XDP, zone with every routing policy ({} queries: weighted, multivalue, geolocation, latency, IP-based, geoproximity, latency -> failover; source address and ECS clients) | {:.1}% |",
            coverage.1,
            coverage.0 * 100.0
        )?;
        writeln!(
            md,
            "| failover detection: endpoint down/up -> check state change (HTTP, {} s interval, threshold {}; median / max of {} switches) | {:.2} s / {:.2} s |",
            failover.interval_s,
            failover.threshold,
            failover.switches,
            failover.detection.0,
            failover.detection.1
        )?;
        writeln!(
            md,
            "| failover propagation: state change -> first XDP answer with the new address (client queries every 1 ms; median / max) | {:.1} ms / {:.1} ms |",
            failover.propagation.0 * 1e3,
            failover.propagation.1 * 1e3
        )?;
    }
    let l = check_load;
    writeln!(
        md,
        "\nHealth checks running beside query serving: {} HTTP checks at a 1 s interval ({} had a successful probe in the window), against none; one client, one query every 2 ms, {} s per path:\n",
        l.checks, l.probed, 5
    )?;
    writeln!(
        md,
        "| | daemon CPU, % of a core | XDP answer p50 / p99 µs | userspace answer p50 / p99 µs | lost |\n|---|---:|---:|---:|---:|"
    )?;
    for (label, cpu, x, u) in [
        ("no checks", l.cpu_pct.0, &l.xdp.0, &l.userspace.0),
        ("with checks", l.cpu_pct.1, &l.xdp.1, &l.userspace.1),
    ] {
        writeln!(
            md,
            "| {label} | {cpu:.1} | {:.0} / {:.0} | {:.0} / {:.0} | {} |",
            x.p50_us,
            x.p99_us,
            u.p50_us,
            u.p99_us,
            x.lost + u.lost
        )?;
    }
    writeln!(
        md,
        "\nDNSSEC, a zone signed here: {} A RRsets signed (ECDSAP256SHA256, one core, as enabling signing on a zone of this size does) in {:.2} s ({:.0} signatures/s); the signature cache grew the process by {:.1} MiB.",
        signing.names,
        signing.seconds,
        signing.names as f64 / signing.seconds.max(1e-9),
        signing.cache_mib
    )?;
    writeln!(md, "\n| BPF_PROG_TEST_RUN fixture | ns/run |\n|---|---:|")?;
    for (name, ns) in test_run {
        writeln!(md, "| {name} | {ns:.1} |")?;
    }
    writeln!(
        md,
        "\nSingle runs (repeat = 1, averaged) include the kernel's per-call timer overhead, shown by the `xdp_pass` baseline; hits cannot use `repeat` because the kernel reruns the already-rewritten buffer."
    )?;
    Ok(md)
}

/// BPF_PROG_TEST_RUN ns/run for every fixture of the shared table (maps filled by the
/// production compiler and writer), plus the pass-everything program as a baseline.
fn prog_test_run() -> anyhow::Result<Vec<(String, f64)>> {
    const RUNS: u32 = 5_000;
    const REPEAT: u32 = 200_000;
    let mut ebpf = xdp::load(&LoadOptions {
        max_entries: 1024,
        ..Default::default()
    })?;
    let mut writer = MapWriter::new(&mut ebpf, 1024)?;
    writer.install(&compile(&catalog(), &dns_user::health::HealthState::default()).0)?;
    writer.set_enabled(true)?;

    let mut out = vec![0u8; 4096];
    let mut time = |prog: &aya::programs::Xdp, frame: &[u8], repeat: u32| -> anyhow::Result<f64> {
        if repeat > 1 {
            let r = prog.test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                repeat,
                ..Default::default()
            })?;
            return Ok(r.duration.as_nanos() as f64);
        }
        let mut total = 0u128;
        for _ in 0..RUNS {
            let r = prog.test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ..Default::default()
            })?;
            total += r.duration.as_nanos();
        }
        Ok(total as f64 / f64::from(RUNS))
    };
    let mut results = Vec::new();
    let prog = xdp::program(&mut ebpf, PROGRAM_NAME)?;
    for f in fixtures() {
        let frame = f.input();
        match f.expect {
            Expect::Tx => {
                let ns = time(prog, &frame, 1)?;
                results.push((
                    format!("{} -> XDP_TX (repeat 1, mean of {RUNS})", f.name),
                    ns,
                ));
            }
            Expect::Pass(reason) => {
                // A passed frame is never modified, so the kernel may repeat it.
                let ns = time(prog, &frame, REPEAT)?;
                results.push((
                    format!("{} -> XDP_PASS {} (repeat {REPEAT})", f.name, reason.name()),
                    ns,
                ));
            }
        }
    }
    // The first hit again with dnstap sampling on; the ring is drained between runs (untimed),
    // as the daemon's reader keeps it from filling.
    let hit = fixtures()
        .into_iter()
        .find(|f| matches!(f.expect, Expect::Tx))
        .context("a fixture answered in XDP")?;
    for sample in [contenders::DNSTAP_SAMPLE, 1] {
        let mut tapped = xdp::load(&LoadOptions {
            max_entries: 1024,
            tap_sample: sample,
            ..Default::default()
        })?;
        let mut writer = MapWriter::new(&mut tapped, 1024)?;
        writer.install(&compile(&catalog(), &dns_user::health::HealthState::default()).0)?;
        writer.set_enabled(true)?;
        let ring = tapped
            .take_map(dns_common::TAP_MAP)
            .context("the TAP ring buffer")?;
        let mut ring = aya::maps::RingBuf::try_from(ring)?;
        let prog = xdp::program(&mut tapped, PROGRAM_NAME)?;
        let frame = hit.input();
        let mut total = 0u128;
        let mut tapped_out = vec![0u8; 4096];
        for _ in 0..RUNS {
            let r = prog.test_run(TestRunOptions {
                data_in: Some(&frame),
                data_out: Some(&mut tapped_out),
                ..Default::default()
            })?;
            total += r.duration.as_nanos();
            while ring.next().is_some() {}
        }
        results.push((
            format!(
                "{} -> XDP_TX, dnstap 1 in {sample} answers (repeat 1, mean of {RUNS})",
                hit.name
            ),
            total as f64 / f64::from(RUNS),
        ));
    }
    let mut base = xdp::load_pass()?;
    let pass = xdp::program(&mut base, dns_common::PASS_PROGRAM_NAME)?;
    let frame = fixtures()[0].input();
    let ns = time(pass, &frame, 1)?;
    results.push((format!("baseline: xdp_pass (repeat 1, mean of {RUNS})"), ns));
    Ok(results)
}

fn machine_kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_else(|_| "unknown kernel".into())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, Linux {}", kernel.trim())
}

fn git_commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(workspace())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
