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
use crate::fastpath::maps::{Capacity, HeartbeatWriter, MapWriter};
use crate::fastpath::pins::Pins;
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

/// Serves `settings` until SIGTERM or SIGINT, or until a new daemon takes over; SIGHUP
/// re-imports what `reread` returns. With `pid_file`, the process id is written there while
/// it runs. With `takeover`, the daemon running on the same store hands over its sockets and
/// XDP attachments once this one is ready (see [`crate::takeover`]).
pub fn serve(
    settings: Settings,
    pid_file: Option<&Path>,
    reread: Reread,
    takeover: bool,
) -> anyhow::Result<()> {
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
    // Pinned XDP links and maps (xdp.pin_dir): a daemon that crashed on them left the fast
    // path answering; its heartbeat is kept fresh while this one loads the store (taking
    // over, the running daemon beats).
    let pins = match &settings.pin_dir {
        Some(dir) if settings.xdp_enabled() => Some(Pins::open(dir, xdp::OBJECT)?),
        _ => None,
    };
    let bridge = match (&pins, settings.heartbeat_timeout) {
        (Some(pins), Some(max_age)) if !takeover => pins.heartbeat().map(|beat| {
            tracing::info!(
                "XDP: the fast path a daemon left pinned in {} answers on while the store loads",
                pins.dir().display()
            );
            BridgeBeat::start(beat, max_age)
        }),
        _ => None,
    };
    // Taking over: the running daemon first closes the store (and keeps serving).
    let taker = if takeover {
        let taker = crate::takeover::Taker::connect(&settings.store)?;
        taker.release()?;
        tracing::info!("takeover: the running daemon released the store; loading it");
        Some(taker)
    } else {
        None
    };
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
    for problem in control.problems_at_start() {
        tracing::error!("{problem}");
    }
    let catalog = control.catalog();
    let checks = control.health_checks();
    // Loading a large store leaves much freed memory in the allocator: give it back.
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe { libc::malloc_trim(0) };
    runtime()?.block_on(async move {
        // Bind first: an address in use is reported before anything is attached. Taking
        // over, the sockets come from the running daemon once this one is ready.
        let (mut listeners, mut api_listener, mut metrics_listener) = (None, None, None);
        if taker.is_none() {
            listeners = Some(crate::server::bind(&settings.listen, settings.udp_workers)?);
            if let Some(api) = &settings.api {
                api_listener = Some(crate::control::api::bind(api.listen).await?);
            }
            if let Some(addr) = settings.metrics {
                metrics_listener = Some(crate::metrics::bind(addr).await?);
            }
        }

        // Health checks start now; until the publisher exists their changes only accumulate
        // in the monitor, and the publisher starts from the monitor's latest state.
        let publisher: Arc<OnceLock<Arc<Published>>> = Arc::new(OnceLock::new());
        let health_runtime = HealthRuntime::start().context("starting the health-check thread")?;
        let hook = publisher.clone();
        // A cluster node is one checker among several (see crate::cluster).
        let vantage = settings
            .cluster
            .as_ref()
            .map(|c| crate::health::monitor::Vantage {
                node_id: c.node_id.clone(),
                region: c.region.clone(),
                healthy_fraction: c.healthy_fraction,
            });
        let monitor = Arc::new(Monitor::start_at(
            checks.clone(),
            Arc::new(NetProber::new(settings.health.clone())),
            Arc::new(move |latest: &dyn Fn() -> Arc<HealthState>| {
                if let Some(p) = hook.get() {
                    p.health(latest);
                }
            }),
            None,
            health_runtime.handle(),
            vantage,
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
            // The first tables come first: with xdp.max_entries = 0 they size the maps.
            let (table, report) = crate::fastpath::compile::compile(&catalog, &health);
            let capacity = match settings.max_entries {
                0 => Capacity::auto(&table),
                n => Capacity::of(n),
            };
            tracing::info!(
                "XDP maps: {} answer entries, {} routing-policy variants per buffer{}",
                capacity.answers,
                capacity.variants,
                if settings.max_entries == 0 {
                    " (xdp.max_entries = 0: a quarter more than the zones need now)"
                } else {
                    ""
                }
            );
            let options = LoadOptions {
                port: settings.port(),
                edns_udp_size: settings.edns_udp_size,
                max_entries: capacity.answers,
                max_variants: Some(capacity.variants),
                grow_at_head: false,
                fixed_draw: None,
                hash_mask: u64::MAX,
                rrl: settings.rrl,
                tap_sample,
            };
            let (mut loaded, adopted) = load_fast_path(&options, pins.as_ref(), &settings, takeover)?;
            if tap_sample > 0 {
                tap_reader = Some(crate::fastpath::tap::TapReader::take(&mut loaded)?);
            }
            let mut w = if adopted {
                MapWriter::adopt(&mut loaded, capacity)?
            } else {
                MapWriter::with_capacity(&mut loaded, capacity)?
            };
            w.install_owned(table)?;
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
                if taker.is_some() {
                    continue; // attached below, in the running daemon's place
                }
                match &pins {
                    Some(pins) => {
                        let link = pins.link(iface);
                        if xdp::attach_pinned(&mut loaded, iface, settings.mode, &link)? {
                            tracing::info!(
                                "XDP on {iface}: took over the link pinned at {} (answers went on)",
                                link.display()
                            );
                        } else {
                            tracing::info!("XDP on {iface}: link pinned at {}", link.display());
                        }
                    }
                    None => xdp::attach(&mut loaded, iface, settings.mode)?,
                }
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
        let notifier = if settings.notify.is_empty() {
            None
        } else {
            if settings.serial_policy == crate::zone::records::SerialPolicy::Keep {
                tracing::warn!(
                    "server.notify with serial_policy = \"keep\": API changes do not move the serial, so secondaries do not transfer them"
                );
            }
            tracing::info!("NOTIFY to {:?} when a zone's serial changes", settings.notify);
            Some(Arc::new(crate::server::notify::Notifier::start(
                settings.notify.clone(),
                settings.notify_key.as_ref(),
                &catalog,
            )?))
        };
        let published = Arc::new(Published::new(catalog, health, writer));
        let _ = publisher.set(published.clone());
        // A change that landed between the first read and now is published here.
        published.health(&|| monitor.health());
        let _publisher = control
            .start_publisher(published.clone(), monitor.clone(), notifier)
            .context("starting the publisher thread")?;
        // A cluster node serves its cache from here on, and joins the cluster beside.
        let cluster = match &settings.cluster {
            Some(c) => {
                tracing::info!(
                    "cluster: node {} of the store at {}",
                    c.node_id,
                    c.endpoints.join(",")
                );
                Some(
                    crate::cluster::Cluster::start(c.clone(), control.clone(), monitor.clone())
                        .context("starting the cluster thread")?,
                )
            }
            None => None,
        };

        // Taking over: the running daemon's sockets, and its XDP links moved to this program.
        let mut held_links = Vec::new();
        if let Some(taker) = &taker {
            let handed = taker.take()?;
            listeners = Some(crate::server::Listeners::from_descriptors(handed.udp, handed.tcp)?);
            let listener = crate::server::tcp_listener;
            api_listener = handed.api.map(listener).transpose()?;
            metrics_listener = handed.metrics.map(listener).transpose()?;
            held_links = take_over_links(&mut ebpf, handed.links, &settings, pins.as_ref())?;
        }
        let listeners = listeners.expect("bound or handed over");
        let stopper = crate::server::Stopper::default();
        let handed_over = Arc::new(tokio::sync::Notify::new());
        let descriptors = listeners.descriptors()?;
        let dup = |l: &Option<tokio::net::TcpListener>| {
            l.as_ref()
                .map(|l| std::os::fd::AsFd::as_fd(l).try_clone_to_owned())
                .transpose()
        };
        let (api_fd, metrics_fd) = (dup(&api_listener)?, dup(&metrics_listener)?);

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
            tcp_max: settings.tcp_max_connections,
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
        let mut server = tokio::spawn(crate::server::serve(listeners, shared, stopper.clone()));
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
        drop(bridge); // this daemon's heartbeat beats now
        let source = Arc::new(MetricsSource {
            xdp: counters,
            server: stats,
            health: Some(monitor.clone()),
            control: Some(control.clone()),
            published: Some(published.clone()),
            dnstap: tap.as_ref().map(|t| t.stats.clone()),
            cluster: cluster.clone(),
        });
        if let Some(listener) = metrics_listener {
            let addr = listener.local_addr()?;
            let api_guard = settings.api.as_ref().map(api_guard);
            tasks.spawn(crate::metrics::serve(listener, source.clone(), api_guard));
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
        let took_over = taker.is_some();
        if let Some(taker) = taker {
            // The service manager learns the new main process before the old one exits.
            crate::sdnotify::notify(&format!("MAINPID={}", std::process::id()));
            taker.done()?;
            tracing::info!("takeover: serving in the place of the daemon that ran on this store");
        }
        // The next upgrade takes over from this daemon.
        let donor = Arc::new(Donor {
            control: control.clone(),
            udp: descriptors.0,
            tcp: descriptors.1,
            api: api_fd,
            metrics: metrics_fd,
            handed_over: handed_over.clone(),
        });
        if let Err(e) = crate::takeover::offer(&settings.store, donor) {
            tracing::warn!("no takeover for upgrades: {e}");
        }
        let _pid_file = pid_file.map(PidFile::create).transpose()?;
        tracing::info!(
            "ready: {} zone(s) from store {} on {:?}",
            control.zone_count(),
            settings.store.display(),
            settings.listen
        );
        crate::sdnotify::ready(took_over);

        use tokio::signal::unix::{SignalKind, signal};
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sighup = signal(SignalKind::hangup())?;
        let mut replaced = false;
        let outcome = loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break Ok(()),
                _ = sigterm.recv() => break Ok(()),
                _ = handed_over.notified() => {
                    replaced = true;
                    break Ok(());
                }
                done = &mut server => break done.context("server task"),
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
        if !replaced {
            crate::sdnotify::notify("STOPPING=1");
        }
        if replaced {
            // The API and metrics listeners are the new daemon's now (requests in flight
            // finish on their own tasks); the heartbeat beats for maps no program reads.
            tasks.abort_all();
            // The sockets live on in the new daemon: every query read here is answered, and
            // every open TCP connection served to its end, before this process exits.
            stopper.stop();
            let _ = server.await;
            tracing::info!("takeover: handed over; exiting");
        }
        control.stop();
        // Leaving the cluster: INSYNC stops waiting for this node at once, not after its lease.
        if let Some(c) = &cluster {
            c.leave();
        }
        if let Some(w) = tap_writer {
            if tap_sample > 0 {
                // XDP's last samples reach the log at the reader's next drain.
                tokio::time::sleep(
                    crate::fastpath::tap::DRAIN_EVERY + Duration::from_millis(50),
                )
                .await;
            }
            w.stop(); // what is queued is written, and the stream ended properly
        }
        if replaced {
            // The XDP links now run the new daemon's program, which holds them; closing this
            // process's copies detaches nothing.
            drop(ebpf);
        } else if let Some(ebpf) = ebpf {
            // Orderly shutdown: the fast path goes transparent first, then the links are
            // dropped.
            if let Err(e) = published.set_fast_path(false) {
                tracing::warn!("turning the fast path off: {e}");
            }
            // Unpinned, the links go with the last descriptor (below).
            if let Some(Err(e)) = pins.as_ref().map(Pins::remove_all) {
                tracing::warn!("removing the pinned XDP links and maps: {e}");
            }
            drop(ebpf);
            tracing::info!("XDP detached");
        }
        drop(held_links);
        outcome
    })
}

/// Moves the running daemon's XDP links to this daemon's program, interface by interface (one
/// atomic replacement each); an interface of this config that had none is attached afresh.
/// Returns the links, which live as long as this daemon holds them.
fn take_over_links(
    ebpf: &mut Option<aya::Ebpf>,
    links: Vec<(u32, std::os::fd::OwnedFd)>,
    settings: &Settings,
    pins: Option<&Pins>,
) -> anyhow::Result<Vec<std::os::fd::OwnedFd>> {
    let Some(ebpf) = ebpf else {
        if !links.is_empty() {
            tracing::warn!(
                "takeover: XDP is off in this config: the fast path goes with the old daemon"
            );
        }
        return Ok(Vec::new());
    };
    let mut by_index: std::collections::HashMap<u32, std::os::fd::OwnedFd> =
        links.into_iter().collect();
    // Every interface is checked before any link moves: a failure leaves the running daemon
    // as it was.
    let mut indexes = Vec::new();
    for iface in &settings.interfaces {
        let name = std::ffi::CString::new(iface.as_str())?;
        // SAFETY: if_nametoindex reads a NUL-terminated string.
        match unsafe { libc::if_nametoindex(name.as_ptr()) } {
            0 => anyhow::bail!("takeover: no interface {iface}"),
            index => indexes.push((iface, index)),
        }
    }
    let mut held = Vec::new();
    for (iface, index) in indexes {
        match by_index.remove(&index) {
            Some(link) => {
                let program = xdp::program(ebpf, dns_common::PROGRAM_NAME)?;
                let fd = program.fd()?;
                crate::takeover::update_link(&link, std::os::fd::AsFd::as_fd(fd))?;
                tracing::info!("takeover: XDP on {iface} moved to this daemon's program");
                if let Some(pins) = pins {
                    pins.pin_link(&link, iface)?;
                }
                held.push(link);
            }
            None => {
                match pins {
                    Some(pins) => {
                        xdp::attach_pinned(ebpf, iface, settings.mode, &pins.link(iface))?;
                    }
                    None => xdp::attach(ebpf, iface, settings.mode)?,
                }
                tracing::info!("XDP attached to {iface} in {} mode", settings.mode.name());
            }
        }
    }
    // This program holds the links: its maps are the ones a restart takes over.
    if let Some(pins) = pins {
        pins.commit_staging()?;
    }
    for index in by_index.keys() {
        tracing::warn!(
            "takeover: interface index {index} is not in this config: its XDP goes with the old daemon"
        );
    }
    Ok(held)
}

/// Loads the XDP program. With pins: a takeover makes fresh maps in the staging directory (the
/// running daemon keeps writing its own); otherwise the maps a daemon that is gone left are
/// reused (returns true) unless they no longer fit the config, in which case they are
/// replaced (the program still attached reads its old ones until this one takes the link).
fn load_fast_path(
    options: &LoadOptions,
    pins: Option<&Pins>,
    settings: &Settings,
    takeover: bool,
) -> anyhow::Result<(aya::Ebpf, bool)> {
    let Some(pins) = pins else {
        return Ok((xdp::load(options)?, false));
    };
    if takeover {
        let staging = pins.staging();
        pins.prepare(&staging, true)?;
        return Ok((xdp::load_pinned(options, &staging)?, false));
    }
    for name in pins.remove_stale(&settings.interfaces)? {
        tracing::info!(
            "XDP: removed the stale pin {name} from {}",
            pins.dir().display()
        );
    }
    let dir = pins.maps();
    let adopted = pins.has_maps();
    pins.prepare(&dir, false)?;
    match xdp::load_pinned(options, &dir) {
        Ok(ebpf) => {
            if adopted {
                tracing::info!(
                    "XDP: took over the maps pinned in {} (answers went on through the restart)",
                    dir.display()
                );
            }
            Ok((ebpf, adopted))
        }
        Err(e) if xdp::is_incompatible_pin(&e) => {
            tracing::warn!("XDP: the pinned maps do not fit this config ({e}): making new ones");
            pins.remove_maps()?;
            pins.prepare(&dir, false)?;
            Ok((xdp::load_pinned(options, &dir)?, false))
        }
        Err(e) => Err(e.into()),
    }
}

/// Keeps the heartbeat a daemon that is gone left pinned fresh while this one starts, so that
/// the fast path it left answers on; stops when dropped.
struct BridgeBeat {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BridgeBeat {
    fn start(mut beat: HeartbeatWriter, max_age: Duration) -> BridgeBeat {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            loop {
                if let Err(e) = beat.beat(Some(max_age)) {
                    tracing::warn!("XDP heartbeat (pinned): {e}");
                    return;
                }
                match stopped.recv_timeout(max_age / 4) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
        });
        BridgeBeat {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for BridgeBeat {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The running daemon's side of a takeover (see [`crate::takeover`]).
struct Donor {
    control: Arc<Control>,
    udp: Vec<std::os::fd::OwnedFd>,
    tcp: Vec<std::os::fd::OwnedFd>,
    api: Option<std::os::fd::OwnedFd>,
    metrics: Option<std::os::fd::OwnedFd>,
    handed_over: Arc<tokio::sync::Notify>,
}

impl crate::takeover::Donor for Donor {
    fn release(&self) -> Result<(), String> {
        self.control.release_store();
        Ok(())
    }

    fn resume(&self) {
        // The new daemon's exit closes its socket and its store file in no set order: its
        // lock on the store may outlive the socket by a moment.
        let mut last = None;
        for _ in 0..100 {
            match self.control.reacquire_store() {
                Ok(()) => return,
                Err(e) => last = Some(e),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some(e) = last {
            tracing::error!("takeover abandoned, but the store cannot be opened again: {e}");
        }
    }

    fn hand_over(&self) -> Result<crate::takeover::Handover, String> {
        let dup = |fds: &[std::os::fd::OwnedFd]| {
            fds.iter()
                .map(|f| f.try_clone())
                .collect::<Result<Vec<_>, _>>()
        };
        let one =
            |fd: &Option<std::os::fd::OwnedFd>| fd.as_ref().map(|f| f.try_clone()).transpose();
        let handover = (|| {
            Ok::<_, std::io::Error>(crate::takeover::Handover {
                udp: dup(&self.udp)?,
                tcp: dup(&self.tcp)?,
                api: one(&self.api)?,
                metrics: one(&self.metrics)?,
                links: crate::takeover::xdp_links()?,
            })
        })();
        handover.map_err(|e| format!("copying descriptors: {e}"))
    }

    fn finished(&self) {
        // A permit is kept if the main loop is not waiting yet.
        self.handed_over.notify_one();
    }
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
        // After a takeover the file holds the new daemon's pid: it stays.
        let ours = format!("{}\n", std::process::id());
        if crate::files::read_text(&self.0, 64).is_ok_and(|t| t == ours) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}
