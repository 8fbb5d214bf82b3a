//! The `dns-user` command line (clap). Errors become one clear message and a non-zero exit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use hickory_proto::rr::LowerName;

use crate::client::{
    ApiArgs, ChangeCommand, CheckCommand, DnssecCommand, TestAnswerArgs, ZoneCommand,
};
use crate::config::{Overrides, Settings, resolve};
use crate::fastpath::compile::compile;
use crate::fastpath::xdp::{self, AttachMode};

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
    /// DNSSEC of a hosted zone: key-signing keys, signing on and off (Route 53's calls).
    Dnssec {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: DnssecCommand,
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
    /// A cluster of nodes on etcd: what etcd says about it (works while nodes are down).
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
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
    /// Capacity of each answer map buffer (0: a quarter more than the zones need at start).
    #[arg(long)]
    max_entries: Option<u32>,
    /// Response rate limit: UDP responses per second per client /24 (IPv6 /56); 0 = off.
    #[arg(long, value_name = "N")]
    rrl_rate: Option<u32>,
    /// XDP passes everything up if the daemon's heartbeat is older than this (ms; 0 = never).
    #[arg(long, value_name = "MS")]
    heartbeat_timeout_ms: Option<u64>,
    /// Directory on bpffs to pin XDP links and maps in, so that a restart after a crash takes
    /// them over (replaces xdp.pin_dir).
    #[arg(long, value_name = "DIR")]
    xdp_pin_dir: Option<PathBuf>,
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
    /// Run as this user once started, with only the capabilities serving needs (replaces
    /// server.user).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Write dnstap query logs to this file, or to `unix:PATH` (replaces dnstap.sink).
    #[arg(long, value_name = "SINK")]
    dnstap: Option<String>,
    /// Log one XDP answer in N to dnstap; 0 = none (replaces dnstap.xdp_sample).
    #[arg(long, value_name = "N")]
    dnstap_xdp_sample: Option<u32>,
    /// Serve as a node of a cluster whose store is these etcd endpoints (replaces
    /// cluster.etcd).
    #[arg(long, value_name = "URL,...", value_delimiter = ',')]
    etcd: Vec<String>,
    /// This node's name in the cluster (replaces cluster.node_id; default: the host name).
    #[arg(long, value_name = "NAME")]
    node_id: Option<String>,
    /// Where this node is, e.g. a Route 53 health-check region (replaces cluster.region).
    #[arg(long, value_name = "REGION")]
    node_region: Option<String>,
    /// serve: take over from the daemon running on the same store (its sockets and XDP
    /// attachments) once this one is ready; that one then exits. No query is lost.
    #[arg(long)]
    takeover: bool,
    /// serve: fork; the parent returns once the daemon serves (status 0) or has failed
    /// (status 1). For a service manager's reload command.
    #[arg(long)]
    detach: bool,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// The last shared write, every live node (what it serves, its lease, how many checks it
    /// reports on) and etcd's members.
    Status {
        /// etcd endpoints.
        #[arg(long, value_name = "URL,...", value_delimiter = ',', required = true)]
        etcd: Vec<String>,
        /// The cluster's key prefix (cluster.prefix).
        #[arg(long, default_value = "/dns-user/v1")]
        prefix: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn cluster(command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Status { etcd, prefix, json } => {
            let report = crate::daemon::runtime()?
                .block_on(crate::cluster::status::read(&etcd, &prefix))
                .with_context(|| format!("reading the cluster from {}", etcd.join(",")))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
    }
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
            pin_dir: self.xdp_pin_dir.clone(),
            rrl_rate: self.rrl_rate,
            edns_udp_size: self.edns_udp_size,
            metrics: self.metrics,
            health_check_files: self.health_checks.clone(),
            health_allow_networks: self.health_allow.clone(),
            store: self.store.clone(),
            api_listen: self.api_listen,
            no_api: self.no_api,
            user: self.user.clone(),
            dnstap: self.dnstap.clone(),
            dnstap_xdp_sample: self.dnstap_xdp_sample,
            etcd: self.etcd.clone(),
            node_id: self.node_id.clone(),
            node_region: self.node_region.clone(),
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
        Command::Serve(args) => {
            let run = |args: ConfigArgs| {
                args.settings().and_then(|settings| {
                    let (pid_file, takeover) = (args.pid_file.clone(), args.takeover);
                    let reread = Arc::new(move || args.settings());
                    crate::daemon::serve(settings, pid_file.as_deref(), reread, takeover)
                })
            };
            if !args.detach {
                run(args)
            } else {
                match crate::sdnotify::detach() {
                    // The parent: the daemon's outcome is its status.
                    Ok(Some(0)) => Ok(()),
                    Ok(Some(_)) => {
                        Err(anyhow::anyhow!("the detached daemon did not start serving"))
                    }
                    Ok(None) => run(args),
                    Err(e) => Err(anyhow::anyhow!("detaching: {e}")),
                }
            }
        }
        Command::CheckConfig(args) => check_config(&args),
        Command::Export {
            origin,
            output,
            config,
        } => export(&origin, output.as_deref(), &config),
        Command::Reload { pid_file } => reload_signal(&pid_file),
        Command::Cluster { command } => cluster(command),
        Command::Zone { api, command } => {
            crate::daemon::runtime().and_then(|rt| rt.block_on(crate::client::zone(&api, command)))
        }
        Command::Dnssec { api, command } => crate::daemon::runtime()
            .and_then(|rt| rt.block_on(crate::client::dnssec(&api, command))),
        Command::Change { api, command } => crate::daemon::runtime()
            .and_then(|rt| rt.block_on(crate::client::change(&api, command))),
        Command::Health { api, command } => crate::daemon::runtime()
            .and_then(|rt| rt.block_on(crate::client::health(&api, command))),
        Command::TestAnswer { api, query } => crate::daemon::runtime()
            .and_then(|rt| rt.block_on(crate::client::test_answer(&api, query))),
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
    let catalog = crate::control::import::catalog(&settings)?;
    // Compiled as at start, before any check has data.
    let health = crate::health::monitor::at_start(&settings.health_checks);
    let (table, report) = compile(&catalog, &health);
    let most = table.answers.len().max(table.variants.len());
    if settings.xdp_enabled() && settings.max_entries != 0 && most > settings.max_entries as usize {
        anyhow::bail!(
            "{} XDP answer entries and {} routing-policy variants: more than xdp.max_entries = {}",
            table.answers.len(),
            table.variants.len(),
            settings.max_entries
        );
    }
    // What the maps will reserve: the configured size, or (0) a quarter more than compiled.
    let capacity = match settings.max_entries {
        0 => crate::fastpath::maps::Capacity::auto(&table),
        n => crate::fastpath::maps::Capacity::of(n),
    };
    println!(
        "ok: {} zone(s), {} health check(s), {} XDP answer entries + {} routing-policy variants ({} RRsets too large for XDP, {} policy groups left to userspace; maps sized for {} + {}), listen {:?}, xdp {} on {:?}",
        settings.zones.len(),
        settings.health_checks.len(),
        report.entries,
        report.variants,
        report.too_large,
        report.groups_passed,
        capacity.answers,
        capacity.variants,
        settings.listen,
        settings.mode.name(),
        settings.interfaces
    );
    Ok(())
}

fn export(origin: &str, output: Option<&std::path::Path>, args: &ConfigArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let catalog = crate::control::import::catalog(&settings)?;
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
    crate::daemon::runtime()?.block_on(async {
        let mut sigterm =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = sigterm.recv() => {},
        }
        Ok(())
    })
}
