//! The `dns-user` command line (clap). Errors become one clear message and a non-zero exit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tokio::sync::Semaphore;

use hickory_proto::rr::LowerName;

use crate::answer::AnswerOptions;
use crate::client::{ApiArgs, ChangeCommand, CheckCommand, TestAnswerArgs, ZoneCommand};
use crate::compile::compile;
use crate::config::{Overrides, Settings, resolve};
use crate::control::Control;
use crate::health::HealthState;
use crate::health::monitor::{HealthRuntime, Monitor};
use crate::health::probe::NetProber;
use crate::maps::{HeartbeatWriter, MapWriter};
use crate::metrics::{MetricsSource, XdpCounters};
use crate::publish::Published;
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
    /// Hosted zones of a running server (control API).
    Zone {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: ZoneCommand,
    },
    /// Change batches: apply one to a hosted zone, or ask for a change's status.
    Change {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: ChangeCommand,
    },
    /// Health checks of a running server: definitions and status (control API).
    Health {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: CheckCommand,
    },
    /// What the server answers for a name and type, from a resolver address and ECS subnet
    /// (Route 53's TestDNSAnswer).
    TestAnswer {
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        query: TestAnswerArgs,
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

#[derive(Args, Debug, Clone)]
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
    /// Response rate limit: UDP responses per second per client /24 (IPv6 /56); 0 = off.
    #[arg(long, value_name = "N")]
    rrl_rate: Option<u32>,
    /// XDP passes everything up if the daemon's heartbeat is older than this (ms; 0 = never).
    #[arg(long, value_name = "MS")]
    heartbeat_timeout_ms: Option<u64>,
    /// UDP payload size advertised in OPT.
    #[arg(long)]
    edns_udp_size: Option<u16>,
    /// Prometheus endpoint address (serves /metrics).
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<SocketAddr>,
    /// Health checks: a JSON list of `{"Id": .., "HealthCheckConfig": {..}}` in Route 53's
    /// shape (repeatable; added to the config's `[health_check.ID]` tables).
    #[arg(long = "health-checks", value_name = "PATH")]
    health_checks: Vec<PathBuf>,
    /// A network health checks may probe although it is loopback, link-local, ... (repeatable;
    /// added to health.allow_networks).
    #[arg(long = "health-allow", value_name = "CIDR")]
    health_allow: Vec<ipnet::IpNet>,
    /// Write the server's PID here (for `dns-user reload`); removed on exit.
    #[arg(long, value_name = "PATH")]
    pid_file: Option<PathBuf>,
    /// The durable store (replaces store.path; default /var/lib/dns-user/store.redb).
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
    /// Control API address (replaces api.listen; port 0 picks a free port).
    #[arg(long = "api", value_name = "ADDR:PORT")]
    api_listen: Option<SocketAddr>,
    /// No control API.
    #[arg(long, conflicts_with = "api_listen")]
    no_api: bool,
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
            heartbeat_timeout_ms: self.heartbeat_timeout_ms,
            rrl_rate: self.rrl_rate,
            edns_udp_size: self.edns_udp_size,
            metrics: self.metrics,
            health_check_files: self.health_checks.clone(),
            health_allow_networks: self.health_allow.clone(),
            store: self.store.clone(),
            api_listen: self.api_listen,
            no_api: self.no_api,
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
    if !matches!(cli.command, Command::Serve(_)) {
        // A command whose output pipe closes (`| head`) ends quietly, as other Unix tools do
        // (status 141), instead of panicking in println!. Sockets are unaffected: Rust sends
        // with MSG_NOSIGNAL. The daemon keeps SIGPIPE ignored.
        // SAFETY: signal(2) with the default disposition, before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let result = match cli.command {
        Command::Serve(args) => serve(&args),
        Command::CheckConfig(args) => check_config(&args),
        Command::Export {
            origin,
            output,
            config,
        } => export(&origin, output.as_deref(), &config),
        Command::Reload { pid_file } => reload_signal(&pid_file),
        Command::Zone { api, command } => {
            runtime().and_then(|rt| rt.block_on(crate::client::zone(&api, command)))
        }
        Command::Change { api, command } => {
            runtime().and_then(|rt| rt.block_on(crate::client::change(&api, command)))
        }
        Command::Health { api, command } => {
            runtime().and_then(|rt| rt.block_on(crate::client::health(&api, command)))
        }
        Command::TestAnswer { api, query } => {
            runtime().and_then(|rt| rt.block_on(crate::client::test_answer(&api, query)))
        }
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
    // Compiled as at start: every check healthy until it has data (inverted ones unhealthy).
    let health = HealthState(
        settings
            .health_checks
            .iter()
            .map(|c| (c.id.clone(), c.disabled || !c.inverted))
            .collect(),
    );
    let (table, report) = compile(&catalog, &health);
    let most = table.answers.len().max(table.variants.len());
    if settings.xdp_enabled() && most > settings.max_entries as usize {
        anyhow::bail!(
            "{} XDP answer entries and {} routing-policy variants: more than xdp.max_entries = {}",
            table.answers.len(),
            table.variants.len(),
            settings.max_entries
        );
    }
    println!(
        "ok: {} zone(s), {} health check(s), {} XDP answer entries + {} routing-policy variants ({} RRsets too large for XDP, {} policy groups left to userspace), listen {:?}, xdp {} on {:?}",
        settings.zones.len(),
        settings.health_checks.len(),
        report.entries,
        report.variants,
        report.too_large,
        report.groups_passed,
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
    // The store is the source of truth; the config's zones and checks are imported into it.
    let control = Arc::new(Control::open(settings.clone())?);
    let catalog = control.catalog();
    let checks = control.health_checks();
    // Loading a large store leaves much freed memory in the allocator: give it back.
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe { libc::malloc_trim(0) };
    runtime()?.block_on(async move {
        // Bind first: an address in use is reported before anything is attached.
        let listeners = crate::server::bind(&settings.listen, settings.udp_workers)?;
        let api_listener = match &settings.api {
            Some(api) => Some(crate::api::bind(api.listen).await?),
            None => None,
        };

        // Health checks start now; until the publisher exists their changes only accumulate
        // in the monitor, and the publisher starts from the monitor's latest state.
        let publisher: Arc<OnceLock<Arc<Published>>> = Arc::new(OnceLock::new());
        let health_runtime = HealthRuntime::start().context("starting the health-check thread")?;
        let hook = publisher.clone();
        let monitor = Arc::new(Monitor::start(
            checks.clone(),
            Arc::new(NetProber::new(settings.health.clone())),
            Arc::new(move |latest: &dyn Fn() -> Arc<HealthState>| {
                if let Some(p) = hook.get() {
                    p.health(latest);
                }
            }),
            None,
            health_runtime.handle(),
        ));
        if !checks.is_empty() {
            tracing::info!("{} health check(s) running", checks.len());
        }

        let mut ebpf = None;
        let mut writer = None;
        let mut counters = None;
        let mut heartbeat = None;
        let health = monitor.health();
        if settings.xdp_enabled() {
            let mut loaded = xdp::load(&LoadOptions {
                port: settings.port(),
                edns_udp_size: settings.edns_udp_size,
                max_entries: settings.max_entries,
                grow_at_head: false,
                fixed_draw: None,
                rrl: settings.rrl,
            })?;
            let mut w = MapWriter::new(&mut loaded, settings.max_entries)?;
            let report = Published::install_initial(&mut w, &catalog, &health)?;
            let mut beat = HeartbeatWriter::take(&mut loaded)?;
            beat.beat(settings.heartbeat_timeout)?;
            heartbeat = Some(beat);
            w.set_enabled(true)?;
            counters = Some(Mutex::new(XdpCounters::take(&mut loaded)?));
            for iface in &settings.interfaces {
                xdp::attach(&mut loaded, iface, settings.mode)?;
                tracing::info!(
                    "XDP attached to {iface} in {} mode (UDP port {}, {} answer entries, {} routing-policy variants; left to userspace: {} RRsets too large, {} policy groups)",
                    settings.mode.name(),
                    settings.port(),
                    report.entries,
                    report.variants,
                    report.too_large,
                    report.groups_passed
                );
            }
            ebpf = Some(loaded);
            writer = Some(w);
        } else {
            tracing::info!("XDP off: the userspace server answers every query");
        }
        let published = Arc::new(Published::new(catalog, health, writer));
        let _ = publisher.set(published.clone());
        // A change that landed between the first read and now is published here.
        published.health(&|| monitor.health());
        let _publisher = control
            .start_publisher(published.clone(), monitor.clone())
            .context("starting the publisher thread")?;

        let stats = Arc::new(ServerStats::default());
        let shared = Arc::new(Shared {
            published: published.clone(),
            options: AnswerOptions {
                edns_udp_size: settings.edns_udp_size,
            },
            stats: stats.clone(),
            tcp_idle: Duration::from_secs(settings.tcp_idle_timeout_secs),
            tcp_slots: Arc::new(Semaphore::new(settings.tcp_max_connections)),
            tcp_clients: Arc::new(crate::server::ClientSlots::new(settings.tcp_max_per_client)),
            limiter: settings.rrl.map(crate::rrl::Limiter::new),
            transfer_allow: settings.transfer_allow.clone(),
        });
        if let Some(r) = settings.rrl {
            tracing::info!(
                "response rate limiting: {} UDP responses/s per client /24 (/56), burst {}, slip {}",
                r.responses_per_second,
                r.burst,
                r.slip
            );
        }
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(async move {
            crate::server::serve(listeners, shared).await;
            Ok(())
        });
        if let (Some(max_age), Some(mut beat)) = (settings.heartbeat_timeout, heartbeat) {
            // On the main runtime: if it stops (hang, crash), so does the heartbeat, and XDP
            // goes transparent within `max_age`.
            tasks.spawn(async move {
                let mut tick = tokio::time::interval(max_age / 4);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if let Err(e) = beat.beat(Some(max_age)) {
                        tracing::error!("XDP heartbeat: {e}");
                    }
                }
            });
            tracing::info!(
                "XDP heartbeat every {:?}; the fast path goes transparent after {:?} without one",
                max_age / 4,
                max_age
            );
        }
        let source = Arc::new(MetricsSource {
            xdp: counters,
            server: stats,
            health: Some(monitor.clone()),
            control: Some(control.clone()),
            published: Some(published.clone()),
        });
        if let Some(addr) = settings.metrics {
            let api_guard = settings.api.as_ref().map(api_guard);
            tasks.spawn(crate::metrics::serve(addr, source.clone(), api_guard));
            tracing::info!("metrics on http://{addr}/metrics");
            if !addr.ip().is_loopback() {
                tracing::warn!(
                    "metrics.listen {addr} is not a loopback address: /metrics answers anyone who reaches it; /health-checks there needs the API's token"
                );
            }
        }
        if let (Some(listener), Some(api)) = (api_listener, &settings.api) {
            let addr = listener.local_addr()?;
            let state = Arc::new(crate::api::ApiState {
                control: control.clone(),
                metrics: source.clone(),
                guard: api_guard(api),
            });
            tasks.spawn(crate::api::serve(listener, state));
            tracing::info!(
                "API on http://{addr}/2013-04-01/ ({})",
                if api.token.is_some() { "bearer token required" } else { "no token: loopback only" }
            );
        }
        let _pid_file = args.pid_file.as_deref().map(PidFile::create).transpose()?;
        tracing::info!(
            "ready: {} zone(s) from store {} on {:?}",
            control.zone_count(),
            settings.store.display(),
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
                    let control = control.clone();
                    let running = settings.clone();
                    let args = args.clone();
                    // The import may read large zone files: off the async workers.
                    let _ = tokio::task::spawn_blocking(move || reload(&args, &running, &control))
                        .await;
                }
                Some(done) = tasks.join_next() => break done.context("server task")?,
            }
        };
        control.stop();
        // Orderly shutdown: the fast path goes transparent first, then the links are dropped.
        if let Some(ebpf) = ebpf {
            if let Err(e) = published.set_fast_path(false) {
                tracing::warn!("turning the fast path off: {e}");
            }
            drop(ebpf);
            tracing::info!("XDP detached");
        }
        outcome
    })
}

/// Reloads the config (SIGHUP): its zones and health checks are imported into the store
/// again (see [`crate::control`]); a zone or check that fails keeps its stored version. The
/// publisher then serves the result (XDP maps first, then userspace).
fn reload(args: &ConfigArgs, running: &Settings, control: &Control) {
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
        || settings.heartbeat_timeout != running.heartbeat_timeout
        || settings.rrl != running.rrl
        || settings.metrics != running.metrics
        || settings.api != running.api
        || settings.store != running.store
    {
        tracing::warn!(
            "reload: listen, xdp, edns, rrl, metrics, api and store settings take effect on restart only"
        );
    }
    let (zones, checks) = (settings.zones.len(), settings.health_checks.len());
    let problems = control.reload(settings);
    for p in &problems {
        tracing::error!("reload: {p}");
    }
    tracing::info!(
        "reloaded: {zones} config zone(s), {checks} config health check(s){}",
        if problems.is_empty() {
            ""
        } else {
            " (with errors above)"
        }
    );
}

/// The API's front door from its settings.
fn api_guard(api: &crate::config::ApiSettings) -> Arc<crate::http::Guard> {
    Arc::new(crate::http::Guard {
        server_names: api.server_names.clone(),
        token: api.token.clone(),
        limits: api.limits.clone(),
    })
}

/// A pid file that is removed when dropped.
struct PidFile(PathBuf);

impl PidFile {
    fn create(path: &std::path::Path) -> anyhow::Result<PidFile> {
        crate::files::write_no_follow(path, format!("{}\n", std::process::id()).as_bytes())
            .context("writing the pid file")?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn reload_signal(pid_file: &std::path::Path) -> anyhow::Result<()> {
    let text = crate::files::read_text(pid_file, 64).context("reading the pid file")?;
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
