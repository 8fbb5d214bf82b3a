//! Runs the checks: one small task per probing check (a random phase within the interval, then
//! every interval with a little jitter, so thousands of checks do not fire in lockstep), one
//! owner task that feeds results into the state machines, recomputes calculated checks and,
//! when any effective status changed, logs each change and calls the `on_change` hook once per
//! batch of results. The hook publishes the new state (see [`crate::publish`]).
//!
//! Probe tasks only send results; all state lives on the [`Board`], behind one mutex that is
//! held for microseconds (status requests read it too).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::probe::{Outcome, Prober};
use super::spec::{CheckKind, CheckSpec, InsufficientData};
use super::{CheckState, HealthState, Observation, calculated};
use crate::policy::{RandomSource, SplitMix64};

/// Called after the effective health changed (on a blocking-capable thread), with a function
/// that reads the latest health (read it late: under the publisher's lock).
pub type OnChange = Arc<dyn Fn(&dyn Fn() -> Arc<HealthState>) + Send + Sync>;

/// The running health checks.
pub struct Monitor {
    inner: Arc<Inner>,
    results: mpsc::UnboundedSender<ProbeResult>,
    owner: tokio::task::JoinHandle<()>,
}

struct Inner {
    board: Mutex<Board>,
    on_change: OnChange,
    /// This node's own status of each check it probes, for the other nodes of a cluster.
    own: tokio::sync::watch::Sender<Arc<BTreeMap<String, NodeObservation>>>,
    /// Where probe tasks run (a runtime of their own in the daemon, see [`HealthRuntime`]).
    runtime: tokio::runtime::Handle,
    health: ArcSwap<HealthState>,
    prober: Arc<dyn Prober>,
}

#[derive(Default)]
struct Board {
    checks: BTreeMap<String, Tracked>,
    generation: u64,
    rng: Option<SplitMix64>,
    /// Set on a cluster node: which checks it probes, and how observations combine.
    vantage: Option<Vantage>,
    /// Other nodes' observations: check id -> node id -> observation.
    remote: HashMap<String, BTreeMap<String, NodeObservation>>,
}

/// A cluster node as a checker: its name and region (it probes the checks whose `Regions`
/// hold its region, or that name none) and Route 53's rule for many checkers.
#[derive(Clone, Debug, PartialEq)]
pub struct Vantage {
    pub node_id: String,
    pub region: Option<String>,
    /// A check is healthy when more than this fraction of its checkers say so.
    pub healthy_fraction: f64,
}

impl Vantage {
    /// Whether this node probes `spec`.
    pub fn probes(&self, spec: &CheckSpec) -> bool {
        spec.regions.is_empty()
            || self
                .region
                .as_ref()
                .is_some_and(|r| spec.regions.iter().any(|s| s == r))
    }
}

/// One node's status of one check, as the other nodes see it: set when its status last
/// changed there.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeObservation {
    pub healthy: bool,
    /// When the node's status became this (RFC 3339), or started (no data yet).
    pub at: String,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

struct Tracked {
    spec: CheckSpec,
    state: CheckState,
    /// Effective status as last published, and since when.
    healthy: bool,
    since: Option<SystemTime>,
    generation: u64,
    /// Probe durations: the last one, and all of them summed with their count.
    latency: Latency,
    /// Whether this node probes it (always, alone; on a cluster, see [`Vantage`]).
    probed: bool,
    /// The probe task; dropping the entry stops it.
    _task: Option<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct ProbeResult {
    id: String,
    generation: u64,
    at: SystemTime,
    /// How long the probe took.
    took: Duration,
    outcome: Outcome,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.owner.abort();
        // Probe tasks stop with their Tracked entries.
        self.inner.board.lock().expect("board lock").checks.clear();
    }
}

impl Monitor {
    /// Starts probing `specs` (already validated by [`super::spec::build`]) on `runtime`.
    /// `seed` fixes the jitter (tests); `None` seeds from the OS.
    pub fn start(
        specs: Vec<CheckSpec>,
        prober: Arc<dyn Prober>,
        on_change: OnChange,
        seed: Option<u64>,
        runtime: tokio::runtime::Handle,
    ) -> Monitor {
        Monitor::start_at(specs, prober, on_change, seed, runtime, None)
    }

    /// [`start`](Self::start) as one checker of a cluster (`vantage`): it probes the checks
    /// of its region, and a check's status combines every node's ([`set_remote`](Self::set_remote)).
    pub fn start_at(
        specs: Vec<CheckSpec>,
        prober: Arc<dyn Prober>,
        on_change: OnChange,
        seed: Option<u64>,
        runtime: tokio::runtime::Handle,
        vantage: Option<Vantage>,
    ) -> Monitor {
        let seed = seed.unwrap_or_else(|| {
            use std::hash::{BuildHasher, Hasher};
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        });
        let inner = Arc::new(Inner {
            board: Mutex::new(Board {
                rng: Some(SplitMix64(seed)),
                vantage,
                ..Board::default()
            }),
            on_change,
            own: tokio::sync::watch::Sender::new(Arc::default()),
            health: ArcSwap::from_pointee(HealthState::default()),
            prober,
            runtime,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let owner = inner.runtime.spawn(own(inner.clone(), rx));
        let monitor = Monitor {
            inner,
            results: tx,
            owner,
        };
        monitor.reconfigure(specs);
        monitor
    }

    /// This node's status of each check it probes, updated when one changes.
    pub fn own_observations(
        &self,
    ) -> tokio::sync::watch::Receiver<Arc<BTreeMap<String, NodeObservation>>> {
        self.inner.own.subscribe()
    }

    /// The other nodes' observations (check id -> node id -> observation) on a cluster: the
    /// checks' statuses are combined again, and published if any changed. Call it on a
    /// thread that may block.
    pub fn set_remote(&self, remote: HashMap<String, BTreeMap<String, NodeObservation>>) {
        let changed = {
            let mut board = self.inner.board.lock().expect("board lock");
            if board.remote == remote {
                return;
            }
            board.remote = remote;
            let (health, changes) = effective(&mut board, SystemTime::now());
            let changed = !changes.is_empty();
            if changed {
                self.inner.health.store(Arc::new(health));
            }
            changed
        };
        if changed {
            let inner = self.inner.clone();
            (self.inner.on_change)(&|| inner.health.load_full());
        }
    }

    /// The current effective health of every check.
    pub fn health(&self) -> Arc<HealthState> {
        self.inner.health.load_full()
    }

    /// Replaces the set of checks (config reload): an unchanged check keeps its state and
    /// schedule, a changed or new one starts over (healthy until it has data), a removed one
    /// stops. Returns the effective health afterwards; `on_change` is not called for this.
    pub fn reconfigure(&self, specs: Vec<CheckSpec>) -> Arc<HealthState> {
        let mut board = self.inner.board.lock().expect("board lock");
        let mut next = BTreeMap::new();
        for spec in specs {
            if let Some(kept) = board.checks.remove(&spec.id)
                && kept.spec == spec
            {
                next.insert(spec.id.clone(), kept); // moved: its task keeps running
                continue;
            }
            board.generation += 1;
            let generation = board.generation;
            let probed = board.vantage.as_ref().is_none_or(|v| v.probes(&spec));
            let probing =
                probed && !spec.disabled && !matches!(spec.kind, CheckKind::Calculated { .. });
            let task = probing.then(|| {
                let phase = board
                    .rng
                    .as_mut()
                    .expect("seeded")
                    .below(spec.interval.as_micros().max(1) as u64);
                let seed = board.rng.as_mut().expect("seeded").below(u64::MAX);
                AbortOnDrop(self.inner.runtime.spawn(probe_loop(
                    self.inner.prober.clone(),
                    spec.clone(),
                    generation,
                    Duration::from_micros(phase),
                    seed,
                    self.results.clone(),
                )))
            });
            let state = CheckState::new(spec.inverted);
            next.insert(
                spec.id.clone(),
                Tracked {
                    healthy: state.effective(spec.disabled),
                    state,
                    since: None,
                    generation,
                    latency: Latency::default(),
                    probed: probing,
                    _task: task,
                    spec,
                },
            );
        }
        board.checks = next; // dropping the rest aborts their tasks
        let (health, _) = effective(&mut board, SystemTime::now());
        let health = Arc::new(health);
        self.inner.health.store(health.clone());
        publish_own(&self.inner, &board);
        health
    }

    /// The effective health [`reconfigure`](Self::reconfigure) with `specs` would give, without
    /// changing anything (a reload checks that it can be published first).
    pub fn preview(&self, specs: &[CheckSpec]) -> HealthState {
        let board = self.inner.board.lock().expect("board lock");
        let states: Vec<(&CheckSpec, CheckState)> = specs
            .iter()
            .map(|spec| match board.checks.get(&spec.id) {
                Some(kept) if kept.spec == *spec => (spec, kept.state.clone()),
                _ => (spec, CheckState::new(spec.inverted)),
            })
            .collect();
        HealthState(statuses(states.iter().map(|(spec, state)| (*spec, state)), &alone).0)
    }

    /// Every check's status, by id.
    pub fn status(&self) -> Vec<CheckStatus> {
        let board = self.inner.board.lock().expect("board lock");
        board
            .checks
            .values()
            .map(|t| CheckStatus {
                id: t.spec.id.clone(),
                check_type: t.spec.type_name().into(),
                target: t.spec.target(),
                status: if t.healthy { "Healthy" } else { "Unhealthy" }.into(),
                disabled: t.spec.disabled,
                inverted: t.spec.inverted,
                request_interval_secs: t.spec.interval.as_secs_f64(),
                failure_threshold: t.spec.failure_threshold,
                since: t.since.map(rfc3339),
                observations: t
                    .state
                    .observations()
                    .rev()
                    .map(ObservationStatus::from)
                    .collect(),
                last_failure: t.state.last_failure().map(ObservationStatus::from),
                latency: t.latency,
                checkers: checkers(&board, t),
            })
            .collect()
    }
}

/// The daemon's health-check runtime: one OS thread at a lower scheduling priority (nice +10)
/// running a single-threaded tokio runtime, so probes (thousands per second) only use CPU the
/// query path leaves over. Stops when dropped.
pub struct HealthRuntime {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HealthRuntime {
    pub fn start() -> std::io::Result<HealthRuntime> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("dns-health")
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("dns-health".into())
            .spawn(move || {
                // SAFETY: setpriority on this thread (who = its tid); no memory is passed.
                let tid = unsafe { libc::gettid() };
                if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10) } != 0 {
                    tracing::warn!(
                        "health checks keep normal priority: {}",
                        std::io::Error::last_os_error()
                    );
                }
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        Ok(HealthRuntime {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> tokio::runtime::Handle {
        self.handle.clone()
    }
}

impl Drop for HealthRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One check's status (GetHealthCheckStatus + GetHealthCheckLastFailureReason).
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct CheckStatus {
    pub id: String,
    #[serde(rename = "type")]
    pub check_type: String,
    pub target: String,
    /// Effective: Healthy | Unhealthy.
    pub status: String,
    pub disabled: bool,
    pub inverted: bool,
    pub request_interval_secs: f64,
    pub failure_threshold: u8,
    /// When the status last changed (absent: never, since the check started).
    pub since: Option<String>,
    /// Newest first.
    pub observations: Vec<ObservationStatus>,
    pub last_failure: Option<ObservationStatus>,
    /// Probe durations (calculated checks do not probe).
    #[serde(default)]
    pub latency: Latency,
    /// On a cluster: every node that probes the check, this one first, with its latest
    /// observation (another node's as of its last status change).
    #[serde(default)]
    pub checkers: Vec<Checker>,
}

/// One checker of a check on a cluster.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Checker {
    pub node: String,
    pub region: Option<String>,
    pub healthy: bool,
    pub at: String,
    pub detail: String,
}

/// The checkers of `t` (none alone, or for a calculated check).
fn checkers(board: &Board, t: &Tracked) -> Vec<Checker> {
    let Some(vantage) = &board.vantage else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if t.probed {
        let last = t.state.observations().last();
        out.push(Checker {
            node: vantage.node_id.clone(),
            region: vantage.region.clone(),
            healthy: t.state.healthy(),
            at: last.map_or_else(String::new, |o| rfc3339(o.at)),
            detail: last.map_or_else(|| "no data yet".into(), |o| o.detail.clone()),
        });
    }
    for (node, seen) in board.remote.get(&t.spec.id).into_iter().flatten() {
        out.push(Checker {
            node: node.clone(),
            region: seen.region.clone(),
            healthy: seen.healthy,
            at: seen.at.clone(),
            detail: seen.detail.clone(),
        });
    }
    out
}

/// Probe durations of one check, in seconds.
#[derive(Clone, Copy, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct Latency {
    pub last_secs: Option<f64>,
    pub sum_secs: f64,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ObservationStatus {
    pub at: String,
    /// Success | Failure (the probe's own result, before inversion).
    pub result: String,
    pub detail: String,
}

impl From<&Observation> for ObservationStatus {
    fn from(o: &Observation) -> Self {
        Self {
            at: rfc3339(o.at),
            result: if o.ok { "Success" } else { "Failure" }.into(),
            detail: o.detail.clone(),
        }
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

async fn probe_loop(
    prober: Arc<dyn Prober>,
    spec: CheckSpec,
    generation: u64,
    phase: Duration,
    seed: u64,
    results: mpsc::UnboundedSender<ProbeResult>,
) {
    let mut rng = SplitMix64(seed);
    let mut due = Instant::now() + phase;
    // Up to ±2.5% of the interval, around a fixed schedule (no drift).
    let spread = (spec.interval.as_micros() as u64 / 20).max(1);
    loop {
        let jitter = rng.below(spread) as i64 - (spread / 2) as i64;
        let at = if jitter >= 0 {
            due + Duration::from_micros(jitter as u64)
        } else {
            due.checked_sub(Duration::from_micros(jitter.unsigned_abs()))
                .unwrap_or(due)
        };
        tokio::time::sleep_until(at).await;
        let started = Instant::now();
        let outcome = prober.probe(&spec).await;
        let sent = results.send(ProbeResult {
            id: spec.id.clone(),
            generation,
            at: SystemTime::now(),
            took: started.elapsed(),
            outcome,
        });
        if sent.is_err() {
            return;
        }
        due += spec.interval;
        let now = Instant::now();
        if due < now {
            due = now; // a probe slower than the interval: the next one starts at once
        }
    }
}

/// The owner: applies results in batches, publishes changes.
async fn own(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<ProbeResult>) {
    while let Some(first) = rx.recv().await {
        let changed = {
            let mut board = inner.board.lock().expect("board lock");
            let mut next = Some(first);
            let mut flipped = false;
            while let Some(result) = next {
                flipped |= record(&mut board, result);
                next = rx.try_recv().ok();
            }
            if !flipped {
                continue; // statuses (calculated ones too) only move when a check flips
            }
            publish_own(&inner, &board);
            let (health, changes) = effective(&mut board, SystemTime::now());
            if changes.is_empty() {
                false
            } else {
                inner.health.store(Arc::new(health));
                true
            }
        };
        if changed {
            let hook = inner.on_change.clone();
            let inner = inner.clone();
            let publish = move || hook(&|| inner.health.load_full());
            if let Err(e) = tokio::task::spawn_blocking(publish).await {
                tracing::error!("publishing a health change failed: {e}");
            }
        }
    }
}

/// Feeds one probe result into its check's state machine; true if its status flipped.
fn record(board: &mut Board, result: ProbeResult) -> bool {
    let Some(t) = board.checks.get_mut(&result.id) else {
        return false;
    };
    if t.generation != result.generation {
        return false; // from before a reconfigure
    }
    t.latency.last_secs = Some(result.took.as_secs_f64());
    t.latency.sum_secs += result.took.as_secs_f64();
    t.latency.count += 1;
    let inverted = t.spec.inverted;
    let threshold = t.spec.failure_threshold;
    let observation = |ok: bool, detail: String| Observation {
        at: result.at,
        ok,
        detail,
    };
    let flipped = match result.outcome {
        Outcome::Healthy(d) => t.state.observe(observation(true, d), threshold, inverted),
        Outcome::Unhealthy(d) => t.state.observe(observation(false, d), threshold, inverted),
        Outcome::NoData(d) => {
            let rule = match &t.spec.kind {
                CheckKind::Metric(m) => m.insufficient_data,
                _ => InsufficientData::LastKnownStatus,
            };
            // The rule names the check's status, so it is fed in pre-inverted.
            match rule {
                InsufficientData::Healthy => t.state.observe(
                    observation(!inverted, format!("{d} (counts as Healthy)")),
                    threshold,
                    inverted,
                ),
                InsufficientData::Unhealthy => t.state.observe(
                    observation(inverted, format!("{d} (counts as Unhealthy)")),
                    threshold,
                    inverted,
                ),
                InsufficientData::LastKnownStatus => {
                    let ok = t.state.healthy() != inverted;
                    t.state.note(observation(
                        ok,
                        format!("{d} (keeps the last known status)"),
                    ));
                    None
                }
            }
        }
    };
    flipped.is_some()
}

/// Sends this node's status of each check it probes to [`Monitor::own_observations`].
fn publish_own(inner: &Inner, board: &Board) {
    let Some(vantage) = &board.vantage else {
        return;
    };
    let own: BTreeMap<String, NodeObservation> = board
        .checks
        .values()
        .filter(|t| t.probed)
        .map(|t| {
            let last = t.state.observations().last();
            let observation = NodeObservation {
                healthy: t.state.healthy(),
                at: rfc3339(
                    t.since
                        .or(last.map(|o| o.at))
                        .unwrap_or_else(SystemTime::now),
                ),
                detail: last.map_or_else(|| "no data yet".into(), |o| o.detail.clone()),
                region: vantage.region.clone(),
            };
            (t.spec.id.clone(), observation)
        })
        .collect();
    inner.own.send_if_modified(|current| {
        let differs = current.len() != own.len()
            || own
                .iter()
                .any(|(id, o)| current.get(id).is_none_or(|c| c.healthy != o.healthy));
        if differs {
            *current = Arc::new(own);
        }
        differs
    });
}

/// Effective statuses of `checks` (calculated ones from their children), with why each
/// calculated one is what it is.
/// The health `specs` start with, before any check has data: the state a fresh monitor
/// publishes first (healthy, an inverted check unhealthy, a disabled one healthy, calculated
/// checks from those).
pub fn at_start(specs: &[CheckSpec]) -> HealthState {
    let states: Vec<CheckState> = specs.iter().map(|s| CheckState::new(s.inverted)).collect();
    HealthState(statuses(specs.iter().zip(&states), &alone).0)
}

/// A probing check's status on a node alone: its own.
fn alone(spec: &CheckSpec, state: &CheckState) -> bool {
    state.effective(spec.disabled)
}

/// The statuses of `checks`: each probing check's by `status_of`, then the calculated ones
/// from them.
fn statuses<'a>(
    checks: impl Iterator<Item = (&'a CheckSpec, &'a CheckState)> + Clone,
    status_of: &dyn Fn(&CheckSpec, &CheckState) -> bool,
) -> (HashMap<String, bool>, HashMap<String, String>) {
    let mut statuses: HashMap<String, bool> = checks
        .clone()
        .filter(|(spec, _)| !matches!(spec.kind, CheckKind::Calculated { .. }))
        .map(|(spec, state)| (spec.id.clone(), status_of(spec, state)))
        .collect();
    let mut explain: HashMap<String, String> = HashMap::new();
    for (spec, _) in checks {
        if let CheckKind::Calculated {
            children,
            threshold,
        } = &spec.kind
        {
            let child: Vec<bool> = children
                .iter()
                .map(|c| statuses.get(c).copied().unwrap_or(true))
                .collect();
            let healthy = spec.disabled || calculated(&child, *threshold, spec.inverted);
            explain.insert(
                spec.id.clone(),
                format!(
                    "{} of {} children healthy, threshold {threshold}",
                    child.iter().filter(|h| **h).count(),
                    child.len()
                ),
            );
            statuses.insert(spec.id.clone(), healthy);
        }
    }
    (statuses, explain)
}

/// Effective statuses of every check, marking and logging the ones that changed since the
/// last call.
fn effective(board: &mut Board, now: SystemTime) -> (HealthState, Vec<String>) {
    let (statuses, mut explain) = {
        let board = &*board;
        let status_of = |spec: &CheckSpec, state: &CheckState| -> bool {
            let Some(vantage) = &board.vantage else {
                return alone(spec, state);
            };
            if spec.disabled {
                return true;
            }
            let Some(t) = board.checks.get(&spec.id) else {
                return alone(spec, state);
            };
            let own = t.probed.then(|| state.healthy());
            let others = board
                .remote
                .get(&spec.id)
                .into_iter()
                .flat_map(|nodes| nodes.values().map(|o| o.healthy));
            super::combined(
                own.into_iter().chain(others),
                vantage.healthy_fraction,
                t.healthy,
            )
        };
        statuses(
            board.checks.values().map(|t| (&t.spec, &t.state)),
            &status_of,
        )
    };
    let mut changes = Vec::new();
    for t in board.checks.values_mut() {
        let healthy = statuses[&t.spec.id];
        if healthy == t.healthy {
            continue;
        }
        let why = explain.remove(&t.spec.id).unwrap_or_else(|| {
            t.state
                .observations()
                .last()
                .map_or_else(String::new, |o| o.detail.clone())
        });
        let word = |h: bool| if h { "Healthy" } else { "Unhealthy" };
        tracing::info!(
            "health check {} ({} {}): {} -> {}: {why}",
            t.spec.id,
            t.spec.type_name(),
            t.spec.target(),
            word(t.healthy),
            word(healthy)
        );
        t.healthy = healthy;
        t.since = Some(now);
        changes.push(t.spec.id.clone());
    }
    (HealthState(statuses), changes)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::health::probe::BoxFuture;
    use crate::health::spec::{self, HealthCheckConfig, MetricConfig};
    use crate::policy::Health;

    /// Answers each check with whatever the test last set; optionally slowly.
    #[derive(Default)]
    struct Scripted {
        outcomes: Mutex<HashMap<String, Outcome>>,
        delay: Mutex<Duration>,
        probes: AtomicUsize,
    }

    impl Scripted {
        fn set(&self, id: &str, outcome: Outcome) {
            self.outcomes.lock().unwrap().insert(id.into(), outcome);
        }
    }

    impl Prober for Scripted {
        fn probe<'a>(&'a self, spec: &'a CheckSpec) -> BoxFuture<'a, Outcome> {
            Box::pin(async move {
                self.probes.fetch_add(1, Ordering::Relaxed);
                let delay = *self.delay.lock().unwrap();
                tokio::time::sleep(delay).await;
                self.outcomes
                    .lock()
                    .unwrap()
                    .get(&spec.id)
                    .cloned()
                    .unwrap_or_else(|| Outcome::Healthy("ok".into()))
            })
        }
    }

    fn http(id: &str, interval: u32, threshold: u8) -> (String, HealthCheckConfig) {
        (
            id.into(),
            HealthCheckConfig {
                check_type: "HTTP".into(),
                ip_address: Some("192.0.2.1".parse().unwrap()),
                request_interval: Some(interval),
                failure_threshold: Some(threshold),
                ..Default::default()
            },
        )
    }

    fn ok() -> Outcome {
        Outcome::Healthy("Success: HTTP status code 200 (OK)".into())
    }
    fn down() -> Outcome {
        Outcome::Unhealthy("Failure: connecting to 192.0.2.1:80: Connection refused".into())
    }

    struct Harness {
        monitor: Monitor,
        prober: Arc<Scripted>,
        changes: Arc<AtomicUsize>,
    }

    fn start(configs: Vec<(String, HealthCheckConfig)>) -> Harness {
        let prober = Arc::new(Scripted::default());
        let changes = Arc::new(AtomicUsize::new(0));
        let counter = changes.clone();
        let monitor = Monitor::start(
            spec::build(configs).unwrap(),
            prober.clone(),
            Arc::new(move |_: &dyn Fn() -> Arc<HealthState>| {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
            Some(7),
            tokio::runtime::Handle::current(),
        );
        Harness {
            monitor,
            prober,
            changes,
        }
    }

    impl Harness {
        fn healthy(&self, id: &str) -> bool {
            self.monitor.health().is_healthy(id)
        }
    }

    /// Lets virtual time pass in small steps so every due probe runs and its result lands.
    async fn advance(d: Duration) {
        let step = Duration::from_millis(50);
        let mut left = d;
        while !left.is_zero() {
            let s = step.min(left);
            tokio::time::sleep(s).await;
            left -= s;
        }
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    fn observation(healthy: bool) -> NodeObservation {
        NodeObservation {
            healthy,
            at: "2026-12-07T00:00:00Z".into(),
            detail: String::new(),
            region: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_cluster_node_combines_its_own_status_with_the_other_nodes() {
        let prober = Arc::new(Scripted::default());
        let changes = Arc::new(AtomicUsize::new(0));
        let counter = changes.clone();
        let mut elsewhere = http("elsewhere", 1, 1);
        elsewhere.1.regions = vec!["eu-west-1".into()];
        let monitor = Monitor::start_at(
            spec::build(vec![http("web", 1, 1), elsewhere]).unwrap(),
            prober.clone(),
            Arc::new(move |_: &dyn Fn() -> Arc<HealthState>| {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
            Some(7),
            tokio::runtime::Handle::current(),
            Some(Vantage {
                node_id: "a".into(),
                region: Some("us-east-1".into()),
                healthy_fraction: 0.18,
            }),
        );
        let own = monitor.own_observations();
        // It probes only the checks of its region (or of none).
        assert_eq!(own.borrow().keys().collect::<Vec<_>>(), ["web"]);
        prober.set("web", down());
        advance(Duration::from_secs(2)).await;
        assert!(!own.borrow()["web"].healthy, "its own status is published");
        assert!(!monitor.health().is_healthy("web"), "alone in the count");
        // Another node sees it healthy: 1 of 2 > 18%.
        let remote = |check: &str, nodes: &[(&str, bool)]| {
            let map = nodes
                .iter()
                .map(|(n, h)| (n.to_string(), observation(*h)))
                .collect();
            HashMap::from([(check.to_string(), map)])
        };
        monitor.set_remote(remote("web", &[("b", true)]));
        assert!(monitor.health().is_healthy("web"));
        assert_eq!(changes.load(Ordering::SeqCst), 2, "each flip published");
        // b healthy, a and c not: 1 of 3 is still more than 18%.
        monitor.set_remote(remote("web", &[("b", true), ("c", false)]));
        assert!(monitor.health().is_healthy("web"), "1 of 3 > 18%");
        // A check it does not probe follows the others alone.
        monitor.set_remote(remote("elsewhere", &[("b", false), ("c", false)]));
        assert!(!monitor.health().is_healthy("elsewhere"));
        assert!(
            !monitor.health().is_healthy("web"),
            "b's view of web is gone"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn threshold_consecutive_failures_flip_and_recover_within_bound() {
        let h = start(vec![http("web", 1, 2)]);
        assert!(h.healthy("web"), "a new check is healthy");
        advance(Duration::from_secs(3)).await;
        assert!(h.healthy("web"));
        assert_eq!(h.changes.load(Ordering::SeqCst), 0);

        h.prober.set("web", down());
        let t0 = Instant::now();
        while h.healthy("web") {
            advance(Duration::from_millis(100)).await;
        }
        let took = t0.elapsed();
        // Two failed probes, one interval apart: within interval x threshold (+ jitter).
        assert!(took <= Duration::from_millis(2100), "{took:?}");
        assert!(
            took >= Duration::from_millis(900),
            "needs two results: {took:?}"
        );
        assert_eq!(
            h.changes.load(Ordering::SeqCst),
            1,
            "one publication per change"
        );

        h.prober.set("web", ok());
        let t0 = Instant::now();
        while !h.healthy("web") {
            advance(Duration::from_millis(100)).await;
        }
        assert!(t0.elapsed() <= Duration::from_millis(2100));
        assert_eq!(h.changes.load(Ordering::SeqCst), 2);
        let status = &h.monitor.status()[0];
        assert_eq!(status.status, "Healthy");
        assert!(status.since.is_some());
        assert_eq!(
            status.last_failure.as_ref().unwrap().detail,
            "Failure: connecting to 192.0.2.1:80: Connection refused"
        );
        assert_eq!(status.observations[0].result, "Success", "newest first");
    }

    #[tokio::test(start_paused = true)]
    async fn a_single_failure_below_the_threshold_changes_nothing() {
        let h = start(vec![http("web", 1, 3)]);
        advance(Duration::from_millis(1500)).await;
        h.prober.set("web", down());
        advance(Duration::from_secs(2)).await;
        h.prober.set("web", ok());
        advance(Duration::from_secs(5)).await;
        assert!(h.healthy("web"));
        assert_eq!(h.changes.load(Ordering::SeqCst), 0);
        assert!(h.monitor.status()[0].last_failure.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn inverted_and_disabled() {
        let mut inverted = http("inv", 1, 1);
        inverted.1.inverted = true;
        let mut disabled = http("off", 1, 1);
        disabled.1.disabled = true;
        let h = start(vec![inverted, disabled]);
        assert!(!h.healthy("inv"), "a new inverted check starts unhealthy");
        assert!(h.healthy("off"));
        h.prober.set("off", down());
        h.prober.set("inv", down());
        advance(Duration::from_secs(3)).await;
        assert!(
            h.healthy("inv"),
            "a failing endpoint makes an inverted check healthy"
        );
        assert!(h.healthy("off"), "disabled is always healthy");
        let probes = h.prober.probes.load(Ordering::Relaxed);
        assert!(
            (2..=4).contains(&probes),
            "a disabled check is not probed: {probes}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn calculated_follows_its_children() {
        let calc = (
            "calc".to_string(),
            HealthCheckConfig {
                check_type: "CALCULATED".into(),
                child_health_checks: vec!["a".into(), "b".into(), "c".into()],
                health_threshold: Some(2),
                ..Default::default()
            },
        );
        let mut c = http("c", 1, 1);
        c.1.disabled = true;
        let h = start(vec![http("a", 1, 1), http("b", 1, 1), c, calc]);
        assert!(h.healthy("calc"));
        h.prober.set("a", down());
        h.prober.set("c", down());
        advance(Duration::from_secs(2)).await;
        assert!(!h.healthy("a"));
        assert!(h.healthy("calc"), "b and the disabled c count: 2 of 3");
        h.prober.set("b", down());
        advance(Duration::from_secs(2)).await;
        assert!(!h.healthy("calc"), "1 of 3 < 2");
        h.prober.set("b", ok());
        advance(Duration::from_secs(2)).await;
        assert!(h.healthy("calc"));
    }

    fn metric(id: &str, rule: &str) -> (String, HealthCheckConfig) {
        (
            id.into(),
            HealthCheckConfig {
                check_type: "METRIC".into(),
                request_interval: Some(1),
                insufficient_data: Some(rule.into()),
                metric: Some(MetricConfig {
                    prometheus_url: "http://127.0.0.1:9".into(),
                    alert: Some("Down".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn insufficient_data_rules() {
        let h = start(vec![
            metric("last", "LastKnownStatus"),
            metric("good", "Healthy"),
            metric("bad", "Unhealthy"),
        ]);
        let no_data = Outcome::NoData("Insufficient data: no samples".into());
        for id in ["last", "good", "bad"] {
            h.prober.set(
                id,
                Outcome::Unhealthy("Failure: alert Down is firing".into()),
            );
        }
        advance(Duration::from_secs(2)).await;
        assert!(!h.healthy("last") && !h.healthy("good") && !h.healthy("bad"));
        for id in ["last", "good", "bad"] {
            h.prober.set(id, no_data.clone());
        }
        advance(Duration::from_secs(2)).await;
        assert!(!h.healthy("last"), "keeps the last known status");
        assert!(h.healthy("good"));
        assert!(!h.healthy("bad"));
        h.prober.set("last", ok());
        advance(Duration::from_secs(2)).await;
        assert!(h.healthy("last"));
        h.prober.set("last", no_data);
        advance(Duration::from_secs(2)).await;
        assert!(h.healthy("last"), "keeps healthy too");
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_slower_than_the_interval_does_not_pile_up() {
        let h = start(vec![http("web", 1, 1)]);
        *h.prober.delay.lock().unwrap() = Duration::from_secs(3);
        advance(Duration::from_secs(10)).await;
        let probes = h.prober.probes.load(Ordering::Relaxed);
        assert!((3..=5).contains(&probes), "one probe at a time: {probes}");
    }

    #[tokio::test(start_paused = true)]
    async fn reconfigure_keeps_unchanged_checks_and_restarts_changed_ones() {
        let h = start(vec![
            http("keep", 1, 1),
            http("change", 1, 1),
            http("drop", 1, 1),
        ]);
        for id in ["keep", "change", "drop"] {
            h.prober.set(id, down());
        }
        advance(Duration::from_secs(2)).await;
        assert!(!h.healthy("keep") && !h.healthy("change"));
        let health = h
            .monitor
            .reconfigure(spec::build(vec![http("keep", 1, 1), http("change", 1, 2)]).unwrap());
        assert!(!health.is_healthy("keep"), "state kept");
        assert!(
            health.is_healthy("change"),
            "a changed check starts over, healthy"
        );
        assert!(!health.0.contains_key("drop"));
        assert_eq!(h.monitor.status().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn checks_are_spread_over_the_interval() {
        let configs: Vec<_> = (0..200).map(|i| http(&format!("c{i}"), 10, 3)).collect();
        let h = start(configs);
        // After a tenth of the interval, about a tenth of the checks have probed once.
        advance(Duration::from_secs(1)).await;
        let probes = h.prober.probes.load(Ordering::Relaxed);
        assert!(
            (5..=45).contains(&probes),
            "{probes} of 200 in the first second"
        );
        advance(Duration::from_secs(9)).await;
        let probes = h.prober.probes.load(Ordering::Relaxed);
        assert!(
            (190..=210).contains(&probes),
            "{probes}: each once per interval"
        );
    }
}
