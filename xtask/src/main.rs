//! `cargo xtask`: the project's entry points that need more than `cargo build`.
//!
//! - `run`: the service on the embedded default config. Without `--iface`, in a demo pair of
//!   network namespaces with XDP on the server's veth; with `--iface IF`, on a real NIC.
//! - `test`: fmt, clippy (host and eBPF target), and every test, the privileged ones included.
//! - `bench`: dnsperf through the XDP path and the userspace path, and BPF_PROG_TEST_RUN ns/query.

mod bench;
mod deb;
mod fuzz;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use dns_tests::{METRICS_ADDR, SERVER_V4, SERVER_V6, Testbed};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build and run the service. Without --iface: a demo namespace pair with XDP attached.
    Run {
        /// Attach to this real interface instead of the demo namespaces (repeatable).
        #[arg(long)]
        iface: Vec<String>,
        /// XDP mode: native | skb | off.
        #[arg(long, default_value = "native")]
        xdp_mode: String,
        /// Build dns-user with --release.
        #[arg(long)]
        release: bool,
        /// Serve examples/NAME.toml (failover, weighted, latency-failover, geolocation,
        /// ip-based) instead of the embedded default config.
        #[arg(long, value_name = "NAME")]
        example: Option<String>,
        /// Run N nodes of a cluster instead, each in namespaces of its own with XDP, on three
        /// etcd members in another namespace (the embedded default config's zones).
        #[arg(long, value_name = "N")]
        cluster: Option<usize>,
        /// More `dns-user serve` arguments (e.g. --config FILE, --zone-file ORIGIN=PATH).
        #[arg(last = true)]
        serve_args: Vec<String>,
    },
    /// fmt --check, clippy -D warnings (workspace, eBPF target, fuzz targets), the whole test
    /// suite, and every fuzz target for a bounded time.
    Test,
    /// Builds the Debian package (binary, hardened systemd unit, /etc/dns-user/config.toml,
    /// the `dns-user` system user): target/debian/dns-user_VERSION_ARCH.deb.
    Deb {
        /// Package this dns-user binary instead of building the release binary.
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
        /// Directory the .deb is written to.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Builds the cargo-fuzz targets and runs each for a bounded time.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u32,
    },
    /// Benchmarks (root): this service vs Knot DNS (UDP, XDP) and NSD with dnsperf and
    /// kxdpgun, plus PROG_TEST_RUN ns/run. Writes bench/results/<size>.{md,png}.
    Bench {
        /// Generated zone size.
        #[arg(long, value_enum, default_value = "1k")]
        zone_size: bench::ZoneSize,
        /// dnsperf seconds per server.
        #[arg(long, default_value_t = 8)]
        seconds: u32,
        /// kxdpgun seconds per server.
        #[arg(long, default_value_t = 5)]
        kxdpgun_seconds: u32,
        /// kxdpgun offered rate (queries/s).
        #[arg(long, default_value_t = 1_000_000)]
        kxdpgun_qps: u32,
        /// Instead: three nodes on etcd (change -> INSYNC on all, health change -> every
        /// node's XDP answer), into bench/results/cluster.md.
        #[arg(long)]
        cluster: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run {
            cluster: Some(n),
            xdp_mode,
            release,
            ..
        } => run_cluster(n, &xdp_mode, release),
        Cmd::Run {
            iface,
            xdp_mode,
            release,
            example,
            mut serve_args,
            cluster: None,
        } => example_config(example.as_deref()).and_then(|config| {
            if let Some(path) = config {
                serve_args.splice(0..0, ["--config".to_string(), path]);
            }
            run(&iface, &xdp_mode, release, &serve_args)
        }),
        Cmd::Test => test(),
        Cmd::Fuzz { seconds } => fuzz::fuzz(seconds),
        Cmd::Deb { binary, out } => {
            let out = out.unwrap_or_else(|| workspace().join("target/debian"));
            let binary = match binary {
                Some(b) => Ok(b),
                None => build_daemon(true),
            };
            binary
                .and_then(|binary| {
                    std::fs::create_dir_all(&out)?;
                    deb::deb(&deb::Options {
                        binary,
                        workspace: workspace(),
                        out,
                    })
                })
                .map(|path| println!("{}", path.display()))
        }
        Cmd::Bench { cluster: true, .. } => bench::bench_cluster(),
        Cmd::Bench {
            zone_size,
            seconds,
            kxdpgun_seconds,
            kxdpgun_qps,
            cluster: false,
        } => bench::bench(&bench::Options {
            zone_size,
            seconds: seconds.clamp(1, 120),
            kxdpgun_seconds: kxdpgun_seconds.clamp(1, 60),
            kxdpgun_qps,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Runs a command in the workspace, failing if it fails.
pub fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(workspace())
        .status()
        .with_context(|| format!("running cargo {args:?}"))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Builds the dns-user binary and returns its path.
pub fn build_daemon(release: bool) -> anyhow::Result<PathBuf> {
    let mut args = vec!["build", "--package", "dns-user", "--bin", "dns-user"];
    if release {
        args.push("--release");
    }
    cargo(&args)?;
    let profile = if release { "release" } else { "debug" };
    Ok(workspace().join("target").join(profile).join("dns-user"))
}

/// The config file of `--example NAME`.
fn example_config(name: Option<&str>) -> anyhow::Result<Option<String>> {
    let Some(name) = name else { return Ok(None) };
    let path = workspace().join("examples").join(format!("{name}.toml"));
    if !path.exists() || name == "default" {
        bail!(
            "no example {name:?}: see examples/*.toml (failover, weighted, latency-failover, geolocation, ip-based)"
        );
    }
    Ok(Some(path.to_str().context("non-UTF-8 path")?.to_string()))
}

pub fn require_root(what: &str) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("{what} needs root (XDP attach, network namespaces, BPF_PROG_TEST_RUN)");
    }
    Ok(())
}

fn run(ifaces: &[String], mode: &str, release: bool, extra: &[String]) -> anyhow::Result<()> {
    require_root("cargo xtask run")?;
    let bin = build_daemon(release)?;
    let bin = bin.to_str().context("non-UTF-8 path")?;
    if !ifaces.is_empty() {
        let mut cmd = Command::new(bin);
        cmd.args([
            "serve",
            "--xdp-mode",
            mode,
            "--listen",
            "0.0.0.0:53",
            "--listen",
            "[::]:53",
        ]);
        for i in ifaces {
            cmd.args(["--iface", i]);
        }
        cmd.args(extra);
        let status = cmd.status().context("starting dns-user")?;
        if !status.success() {
            bail!("dns-user exited with {status}");
        }
        return Ok(());
    }

    let mut bed = Testbed::create("dnsxr")?;
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let daemon = bed.start_service(bin, mode, &extra, true)?;
    let server_if = bed.server_if.clone();
    let (c, s) = (bed.client_ns.clone(), bed.server_ns.clone());
    println!(
        "\nDemo running. XDP answers A/AAAA on {server_if} (netns {s}); try:\n\
         \n  ip netns exec {c} dig @{SERVER_V4} www.example.com A      # XDP fast path\
         \n  ip netns exec {c} dig @{SERVER_V6} www.example.com AAAA   # XDP fast path, IPv6\
         \n  ip netns exec {c} dig @{SERVER_V4} example.com MX         # userspace server\
         \n  ip netns exec {s} curl -s http://{METRICS_ADDR}/metrics   # counters per path\
         \n  ip netns exec {s} {bin} zone records example.com         # the control API (CLI)\
         \n\nThe demo's store ({store}) goes with the namespaces.\
         \nCtrl-C stops the service and removes the namespaces.",
        store = bed.store(),
    );
    // Wait for Ctrl-C (or the daemon exiting); the testbed's Drop stops it and cleans up.
    install_stop_handler();
    while !STOP.load(Ordering::Relaxed) {
        if let Some(status) = bed.exited(daemon.pid) {
            bail!("dns-user exited with {status}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("stopping");
    Ok(())
}

/// `cargo xtask run --cluster N`: N nodes with XDP and three etcd members, in namespaces
/// (see dns_tests::cluster_bed), serving the embedded default config's zones through etcd.
fn run_cluster(n: usize, mode: &str, release: bool) -> anyhow::Result<()> {
    require_root("cargo xtask run --cluster")?;
    if !(1..=9).contains(&n) {
        bail!("--cluster takes 1 to 9 nodes");
    }
    let bin = build_daemon(release)?;
    let bin = bin.to_str().context("non-UTF-8 path")?;
    let examples = workspace().join("examples");
    let config = std::fs::read_to_string(examples.join("default.toml"))?
        .replace("file = \"", &format!("file = \"{}/", examples.display()))
        + "\n[cluster]\nlease_ttl_secs = 5\n";
    let mut bed = dns_tests::cluster_bed::ClusterBed::create("dnsxk", n, 3)?;
    for i in 0..n {
        bed.start_node(i, bin, mode, &config, false)?;
    }
    let endpoints = bed.endpoints();
    let hub = bed.hub_ns.clone();
    let mut nodes = String::new();
    for (i, node) in bed.beds.iter().enumerate() {
        nodes.push_str(&format!(
            "\n  node n{i}: ip netns exec {c} dig @{SERVER_V4} www.example.com A   # its XDP path",
            c = node.client_ns
        ));
    }
    let (s0, s1) = (&bed.beds[0].server_ns, &bed.beds[n.min(2) - 1].server_ns);
    println!(
        "\nCluster running: {n} node(s), etcd at {endpoints} (netns {hub}). Try:\n{nodes}\
         \n  ip netns exec {s0} {bin} zone records example.com            # node n0's API\
         \n  ip netns exec {s0} {bin} zone create example.org             # a zone through n0\
         \n  ip netns exec {s1} {bin} change apply --wait {batch}   # INSYNC once every node serves it\
         \n  ip netns exec {hub} {bin} cluster status --etcd {endpoints}  # nodes, what each serves\
         \n  ip netns exec {s0} curl -s http://{METRICS_ADDR}/metrics | grep dns_cluster\
         \n\nCtrl-C stops the nodes and etcd and removes the namespaces.",
        batch = examples.join("api-batch.json").display(),
    );
    install_stop_handler();
    while !STOP.load(Ordering::Relaxed) {
        for (i, daemon) in bed.daemons.iter().enumerate() {
            let pid = daemon.as_ref().map(|d| d.pid).unwrap_or_default();
            if let Some(status) = bed.beds[i].exited(pid) {
                bail!("node n{i} exited with {status}");
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("stopping");
    Ok(())
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// SIGINT/SIGTERM set [`STOP`] instead of killing xtask, so the testbed is cleaned up.
fn install_stop_handler() {
    let handler = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Seconds each fuzz target runs in `cargo xtask test`.
const FUZZ_SECONDS: u32 = 20;

fn test() -> anyhow::Result<()> {
    require_root("cargo xtask test")?;
    cargo(&["fmt", "--all", "--", "--check"])?;
    // The eBPF crate only builds for its own target: checked on its own below.
    cargo(&[
        "clippy",
        "--workspace",
        "--exclude",
        "dns-ebpf",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&[
        "clippy",
        "--package",
        "dns-ebpf",
        "--target",
        "bpfel-unknown-none",
        "-Z",
        "build-std=core",
        "--locked",
        "--",
        "-D",
        "warnings",
    ])?;
    // The fuzz crate is a workspace of its own: checked here, built with sanitizers below.
    let fuzz_manifest = workspace().join("fuzz/Cargo.toml");
    let fuzz_manifest = fuzz_manifest.to_str().context("non-UTF-8 path")?;
    cargo(&["fmt", "--manifest-path", fuzz_manifest, "--", "--check"])?;
    cargo(&[
        "clippy",
        "--manifest-path",
        fuzz_manifest,
        "--locked",
        "--target-dir",
        "target/fuzz-check",
        "--",
        "-D",
        "warnings",
    ])?;
    let (passed, failed) = cargo_test(&["test", "--workspace", "--locked", "--no-fail-fast"])?;
    // One closing line for the whole suite (cargo's own last line is often a doc-test binary
    // with nothing in it).
    println!("tests: {passed} passed, {failed} failed");
    if failed > 0 || passed == 0 {
        bail!("{failed} tests failed, {passed} passed");
    }
    fuzz::fuzz(FUZZ_SECONDS)?;
    println!(
        "fuzz: {} targets, {FUZZ_SECONDS} s each, no failure",
        fuzz::TARGETS.len()
    );
    Ok(())
}

/// Runs `cargo test ...`, echoing its output, and sums its `test result:` lines.
fn cargo_test(args: &[&str]) -> anyhow::Result<(u64, u64)> {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(workspace())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running cargo test")?;
    let (mut passed, mut failed) = (0, 0);
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |what: &str| -> u64 {
                rest.split([';', '.'])
                    .find_map(|p| p.trim().strip_suffix(what)?.trim().parse().ok())
                    .unwrap_or(0)
            };
            passed += count("passed");
            failed += count("failed");
        }
    }
    let status = child.wait()?;
    if !status.success() && failed == 0 {
        bail!("cargo test failed ({status})");
    }
    Ok((passed, failed))
}
