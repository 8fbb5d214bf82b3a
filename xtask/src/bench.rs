//! `cargo xtask bench`: the same dnsperf load through the XDP path and through the userspace
//! path (XDP off), in a namespace pair; the XDP program's own cost from the kernel's BPF stats;
//! and BPF_PROG_TEST_RUN ns/run per fixture. Writes a markdown table.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use aya::programs::{TestRun, TestRunOptions};
use dns_common::{PROGRAM_NAME, TYPE_A, TYPE_AAAA};
use dns_tests::frame::{Frame, catalog, opt, question, raw_query};
use dns_tests::{Side, Testbed, metric};
use dns_user::compile::compile;
use dns_user::maps::MapWriter;
use dns_user::xdp::{self, LoadOptions};

use crate::{build_daemon, require_root, workspace};

/// The query mix: every A/AAAA name of the example zone, so every query is a fast-path hit.
const QUERIES: &[&str] = &[
    "www.example.com A",
    "www.example.com AAAA",
    "example.com A",
    "example.com AAAA",
    "ns1.example.com A",
    "ns1.example.com AAAA",
    "mail.example.com A",
    "api.example.com A",
];
/// dnsperf stops after this many passes over the query file even if time remains.
const MAX_PASSES: &str = "2000000";

struct PerfResult {
    label: String,
    qps: f64,
    sent: u64,
    lost: u64,
    avg_latency_us: f64,
    stddev_us: f64,
    /// XDP program cost per run from kernel.bpf_stats_enabled (XDP runs only).
    xdp_ns_per_packet: Option<f64>,
    /// Share of queries the XDP program answered.
    xdp_share: Option<f64>,
    /// Daemon process CPU (user + system) per completed query.
    daemon_cpu_ns_per_query: f64,
}

pub fn bench(seconds: u32, out: &Path) -> anyhow::Result<()> {
    require_root("cargo xtask bench")?;
    let seconds = seconds.clamp(1, 120);
    let bin = build_daemon(true)?;
    let bin = bin.to_str().context("non-UTF-8 path")?;
    which("dnsperf")?;

    let test_run = prog_test_run()?;
    let xdp = dnsperf(bin, "native", seconds)?;
    let user = dnsperf(bin, "off", seconds)?;

    let mut md = String::new();
    writeln!(md, "# Benchmark results\n")?;
    writeln!(
        md,
        "Produced by `cargo xtask bench` (one run; machines are shared and noisy, compare ratios within a run).\n"
    )?;
    writeln!(md, "- machine: {}", machine())?;
    writeln!(md, "- commit: {}", git_commit())?;
    writeln!(
        md,
        "- load: dnsperf from a client namespace over a veth pair, {seconds} s per path, A/AAAA hits only\n"
    )?;
    writeln!(
        md,
        "| path | QPS | sent | lost | avg latency (µs) | latency stddev (µs) | XDP ns/packet (bpf_stats) | answered in XDP | daemon CPU ns/query |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for r in [&xdp, &user] {
        writeln!(
            md,
            "| {} | {:.0} | {} | {} | {:.1} | {:.1} | {} | {} | {:.0} |",
            r.label,
            r.qps,
            r.sent,
            r.lost,
            r.avg_latency_us,
            r.stddev_us,
            r.xdp_ns_per_packet
                .map_or("-".into(), |n| format!("{n:.0}")),
            r.xdp_share
                .map_or("-".into(), |s| format!("{:.1}%", s * 100.0)),
            r.daemon_cpu_ns_per_query,
        )?;
    }
    writeln!(
        md,
        "\nXDP / userspace QPS: **{:.2}x**. With 2 cores, dnsperf itself saturates a core before the XDP path does; the per-packet cost columns are the fairer comparison.\n",
        xdp.qps / user.qps.max(1.0)
    )?;
    writeln!(md, "| BPF_PROG_TEST_RUN fixture | ns/run |")?;
    writeln!(md, "|---|---:|")?;
    for (name, ns) in &test_run {
        writeln!(md, "| {name} | {ns:.1} |")?;
    }
    writeln!(
        md,
        "\nSingle runs (repeat = 1, averaged) include the kernel's per-call timer overhead; the `xdp_pass` baseline shows it. `repeat` cannot be used for hits: the kernel reruns the already-rewritten buffer."
    )?;

    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, &md).with_context(|| format!("writing {}", out.display()))?;
    println!("{md}\nwritten to {}", out.display());
    Ok(())
}

fn which(tool: &str) -> anyhow::Result<()> {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        bail!("{tool} not found: run scripts/bootstrap");
    }
    Ok(())
}

fn dnsperf(bin: &str, mode: &str, seconds: u32) -> anyhow::Result<PerfResult> {
    let mut bed = Testbed::create("dnsxbench")?;
    let daemon = bed.start_service(bin, mode, &[], false)?;

    let query_file = std::env::temp_dir().join(format!("dnsx-queries-{}", std::process::id()));
    std::fs::write(&query_file, QUERIES.join("\n") + "\n")?;
    let stats_before = sysctl("kernel.bpf_stats_enabled")?;
    if mode != "off" {
        set_sysctl("kernel.bpf_stats_enabled", "1")?;
    }
    let cpu_before = process_cpu_ns(daemon.pid)?;
    let secs = seconds.to_string();
    let output = bed.output(
        Side::Client,
        "dnsperf",
        &[
            "-s",
            "192.0.2.1",
            "-d",
            query_file.to_str().context("path")?,
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
        ],
    );
    let cpu_after = process_cpu_ns(daemon.pid)?;
    let bpf_cost = if mode != "off" {
        xdp_prog_cost(&bed)
    } else {
        None
    };
    set_sysctl("kernel.bpf_stats_enabled", &stats_before)?;
    let _ = std::fs::remove_file(&query_file);
    let output = output?;

    let field = |name: &str| -> anyhow::Result<f64> {
        let line = output
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .with_context(|| format!("dnsperf printed no {name:?}:\n{output}"))?;
        let value = line.split(':').nth(1).context("no value")?;
        Ok(value.split_whitespace().next().context("empty")?.parse()?)
    };
    let completed = field("Queries completed")?;
    let xdp_share = if mode != "off" {
        let page = bed.metrics_page()?;
        let answered = metric(
            &page,
            "dns_xdp_packets_total{action=\"tx\",reason=\"answered\"}",
        )
        .context("xdp counter")?;
        Some(answered as f64 / completed.max(1.0))
    } else {
        None
    };
    Ok(PerfResult {
        label: if mode == "off" {
            "userspace (XDP off)".into()
        } else {
            format!("XDP ({mode}, veth)")
        },
        qps: field("Queries per second")?,
        sent: field("Queries sent")? as u64,
        lost: field("Queries lost")? as u64,
        avg_latency_us: field("Average Latency (s)")? * 1e6,
        stddev_us: field("Latency StdDev (s)")? * 1e6,
        xdp_ns_per_packet: bpf_cost,
        xdp_share,
        daemon_cpu_ns_per_query: (cpu_after - cpu_before) as f64 / completed.max(1.0),
    })
}

fn sysctl(key: &str) -> anyhow::Result<String> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    Ok(std::fs::read_to_string(&path)
        .with_context(|| format!("reading {path}"))?
        .trim()
        .to_string())
}

fn set_sysctl(key: &str, value: &str) -> anyhow::Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::write(&path, value).with_context(|| format!("writing {path}"))
}

/// CPU time (user + system) of a process, in ns.
fn process_cpu_ns(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_comm = stat.rsplit(')').next().context("stat format")?;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the comm field.
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(ticks * 1_000_000_000 / hz)
}

/// run_time_ns / run_cnt of the XDP program attached to the server interface.
fn xdp_prog_cost(bed: &Testbed) -> Option<f64> {
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
    let json = Command::new("bpftool")
        .args(["prog", "show", "id", &id])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&json.stdout);
    let num = |key: &str| -> Option<f64> {
        let rest = text.split(key).nth(1)?;
        rest.split_whitespace().next()?.parse().ok()
    };
    let (time, count) = (num("run_time_ns")?, num("run_cnt")?);
    (count > 0.0).then(|| time / count)
}

fn prog_test_run() -> anyhow::Result<Vec<(String, f64)>> {
    const RUNS: u32 = 20_000;
    let mut ebpf = xdp::load(&LoadOptions {
        port: 53,
        edns_udp_size: 1232,
        max_entries: 1024,
        grow_at_head: false,
    })?;
    let mut writer = MapWriter::new(&mut ebpf, 1024)?;
    writer.install(&compile(&catalog()).0)?;
    writer.set_enabled(true)?;

    let v4 = Frame::query(false);
    let v6 = Frame::query(true);
    let q = |name: &str, t: u16| raw_query(7, 0x0100, [1, 0, 0, 0], &question(name, t, 1), &[]);
    let edns = |name: &str, t: u16| {
        raw_query(
            7,
            0x0100,
            [1, 0, 0, 1],
            &question(name, t, 1),
            &opt(1232, 0, 0, &[]),
        )
    };
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "A hit, IPv4",
            v4.build(&q("www.example.com", TYPE_A)),
            false,
        ),
        (
            "A hit, IPv4, EDNS",
            v4.build(&edns("www.example.com", TYPE_A)),
            false,
        ),
        (
            "AAAA hit, IPv6",
            v6.build(&q("www.example.com", TYPE_AAAA)),
            false,
        ),
        (
            "miss -> XDP_PASS",
            v4.build(&q("nope.example.com", TYPE_A)),
            true,
        ),
        ("MX -> XDP_PASS", v4.build(&q("example.com", 15)), true),
    ];
    let mut results = Vec::new();
    let prog = xdp::program(&mut ebpf, PROGRAM_NAME)?;
    let mut out = vec![0u8; 4096];
    for (name, frame, passes) in &cases {
        let mut total = 0u128;
        for _ in 0..RUNS {
            let r = prog.test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ..Default::default()
            })?;
            total += r.duration.as_nanos();
        }
        results.push((
            format!("{name} (repeat 1, mean of {RUNS})"),
            total as f64 / f64::from(RUNS),
        ));
        if *passes {
            // A passed frame is never modified, so the kernel may repeat it.
            let r = prog.test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                repeat: 1_000_000,
                ..Default::default()
            })?;
            results.push((
                format!("{name} (repeat 1,000,000)"),
                r.duration.as_nanos() as f64,
            ));
        }
    }
    // Baseline: the pass-everything program, to show the per-call timer overhead.
    let mut base = xdp::load_pass()?;
    let pass = xdp::program(&mut base, dns_common::PASS_PROGRAM_NAME)?;
    let frame = &cases[0].1;
    let mut total = 0u128;
    for _ in 0..RUNS {
        total += pass
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ..Default::default()
            })?
            .duration
            .as_nanos();
    }
    results.push((
        format!("baseline: xdp_pass (repeat 1, mean of {RUNS})"),
        total as f64 / f64::from(RUNS),
    ));
    Ok(results)
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
