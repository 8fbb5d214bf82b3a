//! The `dns-user` command line (clap). Errors become one clear message and a non-zero exit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tokio::sync::Semaphore;

use arc_swap::ArcSwap;
use hickory_proto::rr::LowerName;

use crate::answer::{AnswerOptions, Catalog};
use crate::compile::compile;
use crate::config::{Overrides, Settings, resolve};
use crate::maps::MapWriter;
use crate::metrics::{MetricsSource, XdpCounters};
use crate::server::{ServerStats, Shared};
use crate::xdp::{self, AttachMode, LoadOptions};

#[derive(Parser, Debug)]
#[command(
    name = "dns-user",
    version,
    about = "XDP-accelerated authoritative DNS server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve DNS: userspace UDP/TCP server, with the XDP fast path on the given interfaces.
    Serve(ConfigArgs),
    /// Load the config and every zone, compile the XDP maps, report, and exit (non-zero on error).
    CheckConfig(ConfigArgs),
    /// Write a zone as an RFC 1035 zone file (to stdout, or --output).
    Export {
        /// The zone's origin, e.g. example.com.
        origin: String,
        /// Write here instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Make a running `dns-user serve --pid-file PATH` reload its config and zones (SIGHUP).
    Reload {
        /// The pid file the server was started with.
        #[arg(long)]
        pid_file: PathBuf,
    },
    /// Attach a pass-everything XDP program to a veth peer (needed for native-mode XDP_TX on
    /// veth) and keep it attached until interrupted.
    #[command(hide = true)]
    XdpPass {
        #[arg(long)]
        iface: String,
        #[arg(long, value_enum, default_value = "native")]
        xdp_mode: AttachMode,
    },
}

#[derive(Args, Debug)]
struct ConfigArgs {
    /// TOML config file; without it the embedded default config is used.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Serve an RFC 1035 zone file: ORIGIN=PATH (repeatable).
    #[arg(long = "zone-file", value_name = "ORIGIN=PATH", value_parser = parse_zone_file)]
    zone_files: Vec<(String, PathBuf)>,
    /// Serve the record sets of a Route 53 change batch (JSON): ORIGIN=PATH (repeatable).
    #[arg(long = "route53", value_name = "ORIGIN=PATH", value_parser = parse_zone_file)]
    route53: Vec<(String, PathBuf)>,
    /// Address to answer on, UDP and TCP (repeatable; replaces server.listen).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    /// Interface to attach XDP to (repeatable; replaces xdp.interfaces).
    #[arg(long, value_name = "NAME")]
    iface: Vec<String>,
    /// XDP attach mode.
    #[arg(long, value_enum)]
    xdp_mode: Option<AttachMode>,
    /// Capacity of each answer map buffer.
    #[arg(long)]
    max_entries: Option<u32>,
    /// UDP payload size advertised in OPT.
    #[arg(long)]
    edns_udp_size: Option<u16>,
    /// Prometheus endpoint address (serves /metrics).
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<SocketAddr>,
    /// Write the server's PID here (for `dns-user reload`); removed on exit.
    #[arg(long, value_name = "PATH")]
    pid_file: Option<PathBuf>,
}

fn parse_zone_file(s: &str) -> Result<(String, PathBuf), String> {
    let (origin, path) = s
        .split_once('=')
        .ok_or_else(|| format!("expected ORIGIN=PATH, got {s:?}"))?;
    if origin.is_empty() || path.is_empty() {
        return Err(format!("expected ORIGIN=PATH, got {s:?}"));
    }
    Ok((origin.to_string(), PathBuf::from(path)))
}

impl ConfigArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        let overrides = Overrides {
            zone_files: self.zone_files.clone(),
            route53_files: self.route53.clone(),
            listen: self.listen.clone(),
            interfaces: self.iface.clone(),
            mode: self.xdp_mode,
            max_entries: self.max_entries,
            edns_udp_size: self.edns_udp_size,
            metrics: self.metrics,
        };
        Ok(resolve(self.config.as_deref(), &overrides)?)
    }
}

/// Entry point of the `dns-user` binary.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(&args),
        Command::CheckConfig(args) => check_config(&args),
        Command::Export {
            origin,
            output,
            config,
        } => export(&origin, output.as_deref(), &config),
        Command::Reload { pid_file } => reload_signal(&pid_file),
        Command::XdpPass { iface, xdp_mode } => xdp_pass(&iface, xdp_mode),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dns-user: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(args: &ConfigArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let catalog = crate::load_catalog_for(&settings)?;
    let (table, report) = compile(&catalog);
    if settings.xdp_enabled() && table.len() > settings.max_entries as usize {
        anyhow::bail!(
            "{} XDP answer entries exceed xdp.max_entries = {}",
            table.len(),
            settings.max_entries
        );
    }
    println!(
        "ok: {} zone(s), {} XDP answer entries ({} RRsets too large for XDP), listen {:?}, xdp {} on {:?}",
        settings.zones.len(),
        report.entries,
        report.too_large,
        settings.listen,
        settings.mode.name(),
        settings.interfaces
    );
    Ok(())
}

fn export(origin: &str, output: Option<&std::path::Path>, args: &ConfigArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let catalog = crate::load_catalog_for(&settings)?;
    let mut name = hickory_proto::rr::Name::from_ascii(origin)
        .with_context(|| format!("zone origin {origin:?}"))?;
    name.set_fqdn(true);
    let zone = catalog
        .zone(&LowerName::new(&name))
        .with_context(|| format!("no zone {name} in the configuration"))?;
    let text = zone.to_zone_file();
    match output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn serve(args: &ConfigArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let catalog = Arc::new(ArcSwap::from_pointee(crate::load_catalog_for(&settings)?));
    runtime()?.block_on(async move {
        // Bind first: an address in use is reported before anything is attached.
        let listeners = crate::server::bind(&settings.listen, settings.udp_workers)?;
        let mut fast_path = None;
        let mut counters = None;
        if settings.xdp_enabled() {
            let mut ebpf = xdp::load(&LoadOptions {
                port: settings.port(),
                edns_udp_size: settings.edns_udp_size,
                max_entries: settings.max_entries,
                grow_at_head: false,
            })?;
            let mut writer = MapWriter::new(&mut ebpf, settings.max_entries)?;
            // The table is only needed until the maps hold it (it is large for big zones).
            let (table, report) = compile(&catalog.load());
            writer.install(&table)?;
            drop(table);
            writer.set_enabled(true)?;
            counters = Some(Mutex::new(XdpCounters::take(&mut ebpf)?));
            for iface in &settings.interfaces {
                xdp::attach(&mut ebpf, iface, settings.mode)?;
                tracing::info!(
                    "XDP attached to {iface} in {} mode (UDP port {}, {} answer entries, {} RRsets left to userspace as too large)",
                    settings.mode.name(),
                    settings.port(),
                    report.entries,
                    report.too_large
                );
            }
            fast_path = Some((ebpf, writer));
        } else {
            tracing::info!("XDP off: the userspace server answers every query");
        }

        let stats = Arc::new(ServerStats::default());
        let shared = Arc::new(Shared {
            catalog: catalog.clone(),
            options: AnswerOptions {
                edns_udp_size: settings.edns_udp_size,
            },
            stats: stats.clone(),
            tcp_idle: Duration::from_secs(settings.tcp_idle_timeout_secs),
            tcp_slots: Arc::new(Semaphore::new(settings.tcp_max_connections)),
        });
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(async move {
            crate::server::serve(listeners, shared).await;
            Ok(())
        });
        if let Some(addr) = settings.metrics {
            let source = Arc::new(MetricsSource {
                xdp: counters,
                server: stats,
            });
            tasks.spawn(crate::metrics::serve(addr, source));
            tracing::info!("metrics on http://{addr}/metrics");
        }
        let _pid_file = args.pid_file.as_deref().map(PidFile::create).transpose()?;
        tracing::info!(
            "ready: {} zone(s) on {:?}",
            settings.zones.len(),
            settings.listen
        );

        use tokio::signal::unix::{SignalKind, signal};
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sighup = signal(SignalKind::hangup())?;
        let outcome = loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break Ok(()),
                _ = sigterm.recv() => break Ok(()),
                _ = sighup.recv() => {
                    let writer = fast_path.as_mut().map(|(_, w)| w);
                    reload(args, &settings, &catalog, writer);
                }
                Some(done) = tasks.join_next() => break done.context("server task")?,
            }
        };
        // Orderly shutdown: the fast path goes transparent first, then the links are dropped.
        if let Some((ebpf, mut writer)) = fast_path {
            if let Err(e) = writer.set_enabled(false) {
                tracing::warn!("turning the fast path off: {e}");
            }
            drop(ebpf);
            tracing::info!("XDP detached");
        }
        outcome
    })
}

/// Reloads config and zones (SIGHUP). A zone that fails keeps its last good version; the new
/// catalog is installed into the XDP maps first and served by userspace only once that worked,
/// so a change that cannot be applied changes nothing.
fn reload(
    args: &ConfigArgs,
    running: &Settings,
    catalog: &ArcSwap<Catalog>,
    writer: Option<&mut MapWriter>,
) {
    let settings = match args.settings() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("reload: config not reloaded, still serving the old one: {e:#}");
            return;
        }
    };
    if settings.listen != running.listen
        || settings.interfaces != running.interfaces
        || settings.mode != running.mode
        || settings.edns_udp_size != running.edns_udp_size
        || settings.max_entries != running.max_entries
    {
        tracing::warn!("reload: listen, xdp and edns settings take effect on restart only");
    }
    let current = catalog.load();
    let mut zones = Vec::new();
    for spec in &settings.zones {
        match crate::load_zone(spec, &settings.regions) {
            Ok(zone) => zones.push(zone),
            Err(e) => {
                let old = current.zone(&LowerName::new(&spec.origin));
                tracing::error!(
                    "reload: zone {} failed ({e}); {}",
                    spec.origin,
                    if old.is_some() {
                        "keeping its last good version"
                    } else {
                        "not served"
                    }
                );
                zones.extend(old.cloned());
            }
        }
    }
    let next = Catalog::new(zones).with_locations(settings.locations.clone());
    // The XDP answer table is compiled only if there are maps to install it into.
    if let Some(writer) = writer {
        let (table, report) = compile(&next);
        if let Err(e) = writer.install(&table) {
            tracing::error!("reload: XDP maps not updated ({e}); still serving the old zones");
            return;
        }
        tracing::info!("reload: {} XDP answer entries installed", report.entries);
    }
    catalog.store(Arc::new(next));
    tracing::info!("reloaded: {} zone(s)", settings.zones.len());
}

/// A pid file that is removed when dropped.
struct PidFile(PathBuf);

impl PidFile {
    fn create(path: &std::path::Path) -> anyhow::Result<PidFile> {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing pid file {}", path.display()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn reload_signal(pid_file: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(pid_file)
        .with_context(|| format!("reading {}", pid_file.display()))?;
    let pid: libc::pid_t = text
        .trim()
        .parse()
        .with_context(|| format!("{}: not a pid", pid_file.display()))?;
    // SAFETY: kill(2) with a pid read from the server's own pid file.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        anyhow::bail!("signalling pid {pid}: {}", std::io::Error::last_os_error());
    }
    println!("reload requested (pid {pid}); the server logs the outcome");
    Ok(())
}

fn xdp_pass(iface: &str, mode: AttachMode) -> anyhow::Result<()> {
    let _ebpf = xdp::attach_pass(iface, mode)?;
    tracing::info!("pass program attached to {iface} in {} mode", mode.name());
    runtime()?.block_on(async {
        let mut sigterm =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = sigterm.recv() => {},
        }
        Ok(())
    })
}
