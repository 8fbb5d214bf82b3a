//! The daemon's life: `dns-user serve` wires the control plane, the health monitor, the XDP
//! program and its map writer, the publisher, the userspace server, metrics and the API,
//! then waits for signals (SIGHUP reloads, SIGTERM/SIGINT stop). The fast path goes
//! transparent before the program is detached.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Semaphore;

use crate::config::Settings;
use crate::control::Control;
use crate::fastpath::maps::{HeartbeatWriter, MapWriter};
use crate::fastpath::xdp::{self, LoadOptions};
use crate::health::HealthState;
use crate::health::monitor::{HealthRuntime, Monitor};
use crate::health::probe::NetProber;
use crate::metrics::{MetricsSource, XdpCounters};
use crate::publish::Published;
use crate::server::answer::AnswerOptions;
use crate::server::{ServerStats, Shared};

/// Reads the config again for a reload (SIGHUP); its error is logged and nothing changes.
pub type Reread = Arc<dyn Fn() -> anyhow::Result<Settings> + Send + Sync>;

/// A multi-threaded tokio runtime.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Serves `settings` until SIGTERM or SIGINT; SIGHUP re-imports what `reread` returns. With
/// `pid_file`, the process id is written there while it runs.
pub fn serve(settings: Settings, pid_file: Option<&Path>, reread: Reread) -> anyhow::Result<()> {
    // Before any thread exists: every thread after inherits only these.
    let held = crate::privileges::drop_to_kept(settings.run_as.as_ref())?;
    let mut names: Vec<String> = held.iter().map(|c| c.to_string()).collect();
    names.sort();
    match &settings.run_as {
        Some(user) => tracing::info!(
            "running as user {} (uid {}, gid {}) with capabilities {}",
            user.name,
            user.uid,
            user.gid,
            names.join(", ")
        ),
        None => tracing::info!("capabilities kept: {}", names.join(", ")),
    }
    // The store is the source of truth; the config's zones and checks are imported into it.
    let control = Arc::new(Control::open(settings.clone()).map_err(|e| {
        let who = settings.run_as.as_ref().map(|u| {
            format!(
                " (user {} must be able to write the store and its directory)",
                u.name
            )
        });
        anyhow::anyhow!("{e:#}{}", who.unwrap_or_default())
    })?);
    let catalog = control.catalog();
    let checks = control.health_checks();
    // Loading a large store leaves much freed memory in the allocator: give it back.
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe { libc::malloc_trim(0) };
    runtime()?.block_on(async move {
        // Bind first: an address in use is reported before anything is attached.
        let listeners = crate::server::bind(&settings.listen, settings.udp_workers)?;
        let api_listener = match &settings.api {
            Some(api) => Some(crate::control::api::bind(api.listen).await?),
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

        // Query logs: the writer starts before anything answers.
        let (tap, tap_writer) = match settings.dnstap.clone() {
            Some(d) => {
                let (tap, writer) = crate::dnstap::start(d)?;
                tracing::info!(
                    "dnstap: {}{} to {} (every userspace query; {})",
                    if tap.settings.queries { "queries" } else { "" },
                    if tap.settings.responses { " and responses" } else { "" },
                    tap.settings.sink,
                    match tap.settings.xdp_sample {
                        0 => "no XDP answers".to_string(),
                        1 => "every XDP answer".to_string(),
                        n => format!("1 in {n} XDP answers"),
                    }
                );
                (Some(tap), Some(writer))
            }
            None => (None, None),
        };
        let tap_sample = tap.as_ref().map_or(0, |t| t.settings.xdp_sample);
        let mut tap_reader = None;
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
                tap_sample,
            })?;
            if tap_sample > 0 {
                tap_reader = Some(crate::fastpath::tap::TapReader::take(&mut loaded)?);
            }
            let mut w = MapWriter::new(&mut loaded, settings.max_entries)?;
            let report = Published::install_initial(&mut w, &catalog, &health)?;
            // What compiling the first tables freed goes back too (start-up only: later
            // publications reuse what they free).
            // SAFETY: malloc_trim only releases free heap memory.
            unsafe { libc::malloc_trim(0) };
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
                tsig: Arc::new(crate::server::tsig::Keys::new(&settings.tsig_keys)?),
            },
            stats: stats.clone(),
            tcp_idle: Duration::from_secs(settings.tcp_idle_timeout_secs),
            tcp_slots: Arc::new(Semaphore::new(settings.tcp_max_connections)),
            tcp_clients: Arc::new(crate::server::ClientSlots::new(settings.tcp_max_per_client)),
            limiter: settings.rrl.map(crate::rrl::Limiter::new),
            transfer: crate::server::transfer::TransferAcl {
                networks: settings.transfer_allow.clone(),
                keys: settings.transfer_keys.clone(),
            },
            tap: tap.clone(),
        });
        if let (Some(reader), Some(tap)) = (tap_reader, tap.clone()) {
            // Not among the tasks whose end stops the daemon: a broken log never stops DNS.
            tokio::spawn(async move {
                if let Err(e) = reader.run(tap).await {
                    tracing::error!("dnstap: reading XDP's sampled answers stopped: {e:#}");
                }
            });
        }
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
            dnstap: tap.as_ref().map(|t| t.stats.clone()),
        });
        if let Some(addr) = settings.metrics {
            let api_guard = settings.api.as_ref().map(api_guard);
            tasks.spawn(crate::metrics::serve(addr, source.clone(), api_guard));
            tracing::info!("metrics on http://{addr}/metrics");
            if !addr.ip().is_loopback() {
                tracing::warn!(
                    "metrics.listen {addr} is not a loopback address: /metrics answers anyone who reaches it; /health-checks there needs a signature when the API has access keys"
                );
            }
        }
        if let (Some(listener), Some(api)) = (api_listener, &settings.api) {
            let addr = listener.local_addr()?;
            let state = Arc::new(crate::control::api::ApiState {
                control: control.clone(),
                metrics: source.clone(),
                guard: api_guard(api),
            });
            tasks.spawn(crate::control::api::serve(listener, state));
            tracing::info!(
                "API on http://{addr}/2013-04-01/ ({})",
                if api.keys.is_empty() { "unsigned requests accepted: loopback only" } else { "SigV4 signatures required" }
            );
        }
        let _pid_file = pid_file.map(PidFile::create).transpose()?;
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
                    let reread = reread.clone();
                    // The import may read large zone files: off the async workers.
                    let _ = tokio::task::spawn_blocking(move || reload(&*reread, &running, &control))
                        .await;
                }
                Some(done) = tasks.join_next() => break done.context("server task")?,
            }
        };
        control.stop();
        if let Some(w) = tap_writer {
            w.stop(); // what is queued is written, and the stream ended properly
        }
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
fn reload(
    reread: &(dyn Fn() -> anyhow::Result<Settings> + Send + Sync),
    running: &Settings,
    control: &Control,
) {
    let settings = match reread() {
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
        || settings.run_as != running.run_as
    {
        tracing::warn!(
            "reload: listen, xdp, edns, rrl, metrics, api, store and user settings take effect on restart only"
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
        keys: Arc::new(api.keys.clone()),
        limits: api.limits.clone(),
    })
}

/// A pid file that is removed when dropped.
struct PidFile(PathBuf);

impl PidFile {
    fn create(path: &Path) -> anyhow::Result<PidFile> {
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
