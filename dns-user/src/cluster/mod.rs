//! A node of a cluster whose store is etcd (`[cluster]`): every node serves the same hosted
//! zones, record sets, health checks and CIDR collections, and a change is INSYNC once every
//! live node serves it.
//!
//! ```text
//!  API on any node ─ validate against its store ─> etcd txn (rows + head, if head unmoved)
//!                                                      │ one revision
//!  every node: watch PREFIX from its head ─> Control::apply_replicated (store = cache,
//!              build the changed names, publish) ─> nodes/NODE = {applied, head} (leased)
//!  GetChange: INSYNC when each live node's `applied` (this node: what it serves) ≥ change
//! ```
//!
//! etcd is the source of truth; each node's store is its cache, so a node restarts and
//! serves its last state with etcd down ("fail static"). Unreachable etcd: answers go on
//! from the last state, writes fail with ServiceUnavailable, and the session starts again
//! (read whole, compare with the cache, watch) once etcd answers. A watch whose revision was
//! compacted away does the same. Other nodes' records stay as last seen while this node is
//! cut off; the ones whose lease expired meanwhile are gone when it reads them again.

pub mod keys;
pub mod status;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, PutOptions, Txn, TxnOp,
    WatchOptions,
};

use crate::config::ClusterSettings;
use crate::control::store::{Object, Replica, Row, StoreError};
use crate::control::{ClusterView, Control};
use crate::health::monitor::{Monitor, NodeObservation};
use keys::{Key, Keys, NodeRecord};

/// Why a session with etcd ended (it starts again).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("the watch was compacted away at revision {0}: reading the store again")]
    Compacted(i64),
    #[error("the watch ended: {0}")]
    WatchEnded(String),
    #[error("the lease expired (no keepalive answer within its TTL)")]
    LeaseLost,
    #[error("{key}: {source}")]
    Unreadable {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("applying the cluster's store: {0}")]
    Apply(String),
}

/// How long a shared write may take before it is reported unavailable.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Keys read per request when the store is read whole.
const PAGE: i64 = 1000;

/// One node's view of the cluster, and its way in (see the module docs).
pub struct Cluster {
    settings: ClusterSettings,
    keys: Keys,
    runtime: tokio::runtime::Handle,
    /// The client of the current session; `None` while etcd is unreachable.
    client: Mutex<Option<Client>>,
    connected: AtomicBool,
    view: Mutex<View>,
    published: tokio::sync::watch::Sender<u64>,
    monitor: Arc<Monitor>,
    /// The lease of the current session (0: none).
    lease: std::sync::atomic::AtomicI64,
}

/// Check id -> node id -> that node's observation.
type Observations = HashMap<String, BTreeMap<String, NodeObservation>>;

#[derive(Default)]
struct View {
    /// The live nodes (their leased records), as last seen.
    nodes: BTreeMap<String, NodeRecord>,
    /// The live nodes' observations of the checks they probe, as last seen (this node's
    /// own included).
    observations: Observations,
    /// Every change up to here was served by every live node (it never goes back).
    insync: u64,
}

/// What `dns-user cluster status` and `/metrics` show.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Status {
    pub node_id: String,
    pub connected: bool,
    pub head: i64,
    pub applied: u64,
    pub nodes: BTreeMap<String, NodeRecord>,
}

impl Cluster {
    /// Joins `control` to the cluster of `settings` and keeps a session with etcd on a
    /// thread of its own, for as long as the process runs; `monitor`'s observations are
    /// shared with the other nodes and combined with theirs.
    pub fn start(
        settings: ClusterSettings,
        control: Arc<Control>,
        monitor: Arc<Monitor>,
    ) -> std::io::Result<Arc<Cluster>> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dns-cluster")
            .enable_all()
            .build()?;
        let cluster = Arc::new(Cluster {
            keys: Keys::new(&settings.prefix),
            settings,
            runtime: runtime.handle().clone(),
            client: Mutex::new(None),
            connected: AtomicBool::new(false),
            view: Mutex::new(View::default()),
            published: tokio::sync::watch::Sender::new(control.published_sequence()),
            monitor,
            lease: std::sync::atomic::AtomicI64::new(0),
        });
        control.join_cluster(cluster.clone(), cluster.clone());
        let this = cluster.clone();
        std::thread::Builder::new()
            .name("dns-cluster".into())
            .spawn(move || runtime.block_on(this.run(control)))?;
        Ok(cluster)
    }

    /// Revokes this node's lease (its record and observations go at once): on shutdown.
    /// Bounded to a second; a node that cannot reach etcd leaves when the lease expires.
    pub fn leave(&self) {
        let lease = self.lease.swap(0, Ordering::Relaxed);
        let Some(mut client) = self.client.lock().expect("cluster client").clone() else {
            return;
        };
        if lease == 0 {
            return;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let revoked =
                tokio::time::timeout(Duration::from_secs(1), client.lease_revoke(lease)).await;
            let _ = tx.send(revoked.is_ok_and(|r| r.is_ok()));
        });
        if rx.recv_timeout(Duration::from_secs(2)) == Ok(true) {
            tracing::info!("cluster: node {} left", self.settings.node_id);
        }
    }

    pub fn status(&self, control: &Control) -> Status {
        Status {
            node_id: self.settings.node_id.clone(),
            connected: self.connected.load(Ordering::Relaxed),
            head: control.head(),
            applied: control.published_sequence(),
            nodes: self.view.lock().expect("cluster view").nodes.clone(),
        }
    }

    async fn run(self: Arc<Self>, control: Arc<Control>) {
        let mut imported = false;
        let mut pause = Duration::from_millis(100);
        // One member at a time, the next one after a failure: a client balancing over all
        // keeps sending to a dead one.
        let endpoints = &self.settings.endpoints;
        let mut turn = 0usize;
        loop {
            let began = Instant::now();
            let endpoint = &endpoints[turn % endpoints.len()];
            let result = self.session(endpoint, &control, &mut imported).await;
            *self.client.lock().expect("cluster client") = None;
            self.connected.store(false, Ordering::Relaxed);
            if began.elapsed() > Duration::from_secs(30) {
                pause = Duration::from_millis(100);
            }
            // Every member tried: wait longer each round.
            let last = turn % endpoints.len() == endpoints.len() - 1;
            if let Err(e) = result {
                let next = match last {
                    true => format!("trying again in {pause:?}"),
                    false => "trying the next endpoint".into(),
                };
                tracing::warn!("cluster: {endpoint}: {e}; answering with the last state, {next}");
            }
            if last {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            turn = turn.wrapping_add(1);
        }
    }

    /// One session: lease, read whole, import (once), watch until something fails.
    async fn session(
        &self,
        endpoint: &str,
        control: &Arc<Control>,
        imported: &mut bool,
    ) -> Result<(), ClusterError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(WRITE_TIMEOUT)
            .with_keep_alive(Duration::from_secs(1), Duration::from_secs(2));
        let mut client = Client::connect([endpoint], Some(options)).await?;
        let ttl = self.settings.lease_ttl;
        let lease = client.lease_grant(ttl.as_secs() as i64, None).await?.id();
        self.lease.store(lease, Ordering::Relaxed);
        // Kept alive from now on, whatever the session does meanwhile (reading a large store
        // may take longer than the lease lives).
        let (keeper, alive) = client.lease_keep_alive(lease).await?;
        let (lost_tx, mut lost) = tokio::sync::oneshot::channel();
        let _keeping = AbortOnDrop(tokio::spawn(keep_lease(keeper, alive, ttl, lost_tx)));
        let revision = self.read_whole(&mut client, control).await?;
        let mut watch = client
            .watch(
                self.keys.all(),
                Some(
                    WatchOptions::new()
                        .with_prefix()
                        .with_start_revision(revision + 1)
                        .with_progress_notify(),
                ),
            )
            .await?;
        *self.client.lock().expect("cluster client") = Some(client.clone());
        self.connected.store(true, Ordering::Relaxed);
        tracing::info!(
            "cluster: node {} joined at revision {revision} (head {})",
            self.settings.node_id,
            control.head()
        );
        if !*imported {
            *imported = true;
            let control = control.clone();
            tokio::task::spawn_blocking(move || {
                for problem in control.import_config() {
                    tracing::error!("{problem}");
                }
            });
        }
        let since = crate::control::store::now();
        self.put_node(&mut client, lease, control, &since).await?;
        let mut own = self.monitor.own_observations();
        let mut put: BTreeMap<String, NodeObservation> = self
            .view
            .lock()
            .expect("cluster view")
            .observations
            .iter()
            .filter_map(|(check, nodes)| Some((check.clone(), nodes.get(self.id())?.clone())))
            .collect();
        let latest = own.borrow_and_update().clone();
        self.put_observations(&mut client, lease, &mut put, &latest, true)
            .await?;
        let mut published = self.published.subscribe();
        loop {
            tokio::select! {
                message = watch.message() => {
                    let response = message?
                        .ok_or_else(|| ClusterError::WatchEnded("closed by etcd".into()))?;
                    if response.compact_revision() > 0 {
                        return Err(ClusterError::Compacted(response.compact_revision()));
                    }
                    if response.canceled() {
                        return Err(ClusterError::WatchEnded(response.cancel_reason().into()));
                    }
                    self.on_events(response.events(), control).await?;
                }
                why = &mut lost => return Err(why.unwrap_or(ClusterError::LeaseLost)),
                changed = published.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    self.put_node(&mut client, lease, control, &since).await?;
                }
                changed = own.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let latest = own.borrow_and_update().clone();
                    self.put_observations(&mut client, lease, &mut put, &latest, false)
                        .await?;
                }
            }
        }
    }

    /// Reads the cluster's keys at one revision, makes the cache equal to its store, and
    /// returns that revision (the watch starts after it).
    async fn read_whole(
        &self,
        client: &mut Client,
        control: &Arc<Control>,
    ) -> Result<i64, ClusterError> {
        let all = self.keys.all();
        let mut end = all.clone().into_bytes();
        *end.last_mut().expect("the prefix ends with /") += 1;
        let mut from = all.into_bytes();
        let mut revision = 0;
        let (mut remote, mut nodes, mut head) = (HashMap::new(), BTreeMap::new(), 0);
        let mut observations = Observations::new();
        loop {
            let mut options = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if revision > 0 {
                options = options.with_revision(revision);
            }
            let response = client.get(from.clone(), Some(options)).await?;
            if revision == 0 {
                revision = response.header().map_or(0, |h| h.revision());
            }
            for kv in response.kvs() {
                match self.keys.parse(kv.key()) {
                    Some(Key::Head) => head = kv.mod_revision(),
                    Some(Key::Row(table, key)) => {
                        let object = Object::from_json(table, kv.value()).map_err(|source| {
                            ClusterError::Unreadable {
                                key: String::from_utf8_lossy(kv.key()).into(),
                                source,
                            }
                        })?;
                        remote.insert((table, key.to_string()), object);
                    }
                    Some(Key::Node(id)) => {
                        if let Ok(record) = serde_json::from_slice(kv.value()) {
                            nodes.insert(id.to_string(), record);
                        }
                    }
                    Some(Key::Observation(check, node)) => {
                        if let Ok(seen) = serde_json::from_slice(kv.value()) {
                            observations
                                .entry(check.to_string())
                                .or_default()
                                .insert(node.to_string(), seen);
                        }
                    }
                    None => {}
                }
            }
            match response.kvs().last() {
                Some(last) if response.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => break,
            }
        }
        let control = control.clone();
        let rows = tokio::task::spawn_blocking(move || control.resynchronise(&remote, head))
            .await
            .map_err(|e| ClusterError::Apply(e.to_string()))?
            .map_err(|e| ClusterError::Apply(e.to_string()))?;
        if rows > 0 {
            tracing::info!("cluster: {rows} rows of the cache differed from the cluster's store");
        }
        {
            let mut view = self.view.lock().expect("cluster view");
            view.nodes = nodes;
            view.observations = observations;
        }
        self.share_observations().await;
        Ok(revision)
    }

    fn id(&self) -> &str {
        &self.settings.node_id
    }

    /// Hands the other nodes' observations to the health monitor, which combines them with
    /// its own.
    async fn share_observations(&self) {
        let others: Observations = {
            let view = self.view.lock().expect("cluster view");
            view.observations
                .iter()
                .map(|(check, nodes)| {
                    let others = nodes
                        .iter()
                        .filter(|(node, _)| node.as_str() != self.id())
                        .map(|(n, o)| (n.clone(), o.clone()))
                        .collect();
                    (check.clone(), others)
                })
                .collect()
        };
        let monitor = self.monitor.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || monitor.set_remote(others)).await {
            tracing::error!("cluster: combining health observations: {e}");
        }
    }

    /// Makes this node's observations in etcd `latest` (`put` holds what is there): the
    /// changed ones put under the lease, the ones of checks it no longer probes deleted.
    /// `all`: put every one (a new lease).
    async fn put_observations(
        &self,
        client: &mut Client,
        lease: i64,
        put: &mut BTreeMap<String, NodeObservation>,
        latest: &BTreeMap<String, NodeObservation>,
        all: bool,
    ) -> Result<(), ClusterError> {
        let mut ops = Vec::new();
        for (check, seen) in latest {
            if all || put.get(check) != Some(seen) {
                let value = serde_json::to_vec(seen).expect("serializes");
                let options = PutOptions::new().with_lease(lease);
                ops.push(TxnOp::put(
                    self.keys.observation(check, self.id()),
                    value,
                    Some(options),
                ));
            }
        }
        for check in put.keys().filter(|c| !latest.contains_key(*c)) {
            ops.push(TxnOp::delete(self.keys.observation(check, self.id()), None));
        }
        for chunk in ops.chunks(self.settings.max_txn_ops.max(1)) {
            client.txn(Txn::new().and_then(chunk.to_vec())).await?;
        }
        *put = latest.clone();
        Ok(())
    }

    /// Applies a watch response: each revision's rows at once, in order; node records.
    async fn on_events(
        &self,
        events: &[etcd_client::Event],
        control: &Arc<Control>,
    ) -> Result<(), ClusterError> {
        let mut rows: Vec<Row> = Vec::new();
        let mut revision = 0;
        let mut seen_changed = false;
        for event in events {
            let Some(kv) = event.kv() else { continue };
            if kv.mod_revision() != revision && !rows.is_empty() {
                self.apply(std::mem::take(&mut rows), revision, control)
                    .await?;
            }
            revision = kv.mod_revision();
            let put = event.event_type() == EventType::Put;
            match self.keys.parse(kv.key()) {
                Some(Key::Row(table, key)) => {
                    let row = self
                        .keys
                        .row_of(table, key, put.then_some(kv.value()))
                        .map_err(|source| ClusterError::Unreadable {
                            key: String::from_utf8_lossy(kv.key()).into(),
                            source,
                        })?;
                    rows.push(row);
                }
                Some(Key::Node(id)) => {
                    let mut view = self.view.lock().expect("cluster view");
                    match serde_json::from_slice::<NodeRecord>(kv.value()) {
                        Ok(record) if put => {
                            view.nodes.insert(id.to_string(), record);
                        }
                        _ => {
                            view.nodes.remove(id);
                        }
                    }
                }
                Some(Key::Observation(check, node)) => {
                    let mut view = self.view.lock().expect("cluster view");
                    let nodes = view.observations.entry(check.to_string()).or_default();
                    match serde_json::from_slice::<NodeObservation>(kv.value()) {
                        Ok(seen) if put => nodes.insert(node.to_string(), seen),
                        _ => nodes.remove(node),
                    };
                    if nodes.is_empty() {
                        view.observations.remove(check);
                    }
                    seen_changed = true;
                }
                Some(Key::Head) | None => {}
            }
        }
        if !rows.is_empty() {
            self.apply(rows, revision, control).await?;
        }
        if seen_changed {
            self.share_observations().await;
        }
        Ok(())
    }

    async fn apply(
        &self,
        rows: Vec<Row>,
        revision: i64,
        control: &Arc<Control>,
    ) -> Result<(), ClusterError> {
        let control = control.clone();
        tokio::task::spawn_blocking(move || control.apply_replicated(rows, revision))
            .await
            .map_err(|e| ClusterError::Apply(e.to_string()))?
            .map_err(|e| ClusterError::Apply(e.to_string()))
    }

    async fn put_node(
        &self,
        client: &mut Client,
        lease: i64,
        control: &Arc<Control>,
        since: &str,
    ) -> Result<(), ClusterError> {
        let record = NodeRecord {
            applied: *self.published.borrow(),
            head: control.head(),
            region: self.settings.region.clone(),
            since: since.to_string(),
        };
        let value = serde_json::to_vec(&record).expect("serializes");
        client
            .put(
                self.keys.node(&self.settings.node_id),
                value,
                Some(PutOptions::new().with_lease(lease)),
            )
            .await?;
        Ok(())
    }
}

/// A task aborted when this is dropped (with the session that started it).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Keeps a lease alive, a keepalive every third of `ttl`, until it is lost (an error, an
/// answer that it expired, or none within `ttl`): why is sent on `lost`.
async fn keep_lease(
    mut keeper: etcd_client::LeaseKeeper,
    mut alive: etcd_client::LeaseKeepAliveStream,
    ttl: Duration,
    lost: tokio::sync::oneshot::Sender<ClusterError>,
) {
    let mut tick = tokio::time::interval(ttl / 3);
    let mut answered = Instant::now();
    let why = loop {
        tokio::select! {
            answer = alive.message() => match answer {
                Ok(Some(a)) if a.ttl() > 0 => answered = Instant::now(),
                Ok(_) => break ClusterError::LeaseLost,
                Err(e) => break e.into(),
            },
            _ = tick.tick() => {
                if answered.elapsed() > ttl {
                    break ClusterError::LeaseLost;
                }
                if let Err(e) = keeper.keep_alive().await {
                    break e.into();
                }
            }
        }
    };
    let _ = lost.send(why);
}

impl Replica for Cluster {
    fn write(&self, rows: &[Row], head: i64) -> Result<i64, StoreError> {
        if rows.len() + 1 > self.settings.max_txn_ops {
            return Err(StoreError::TooLarge {
                rows: rows.len(),
                max: self.settings.max_txn_ops - 1,
            });
        }
        let mut client = self
            .client
            .lock()
            .expect("cluster client")
            .clone()
            .ok_or_else(|| StoreError::Unavailable("etcd is not reachable".into()))?;
        let mut ops: Vec<TxnOp> = rows
            .iter()
            .map(|row| {
                let key = self.keys.row(row.table, &row.key);
                match &row.object {
                    Some(o) => TxnOp::put(key, o.to_json(), None),
                    None => TxnOp::delete(key, None),
                }
            })
            .collect();
        ops.push(TxnOp::put(
            self.keys.head(),
            self.settings.node_id.clone(),
            None,
        ));
        let txn = Txn::new()
            .when([Compare::mod_revision(
                self.keys.head(),
                CompareOp::Equal,
                head,
            )])
            .and_then(ops);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(tokio::time::timeout(WRITE_TIMEOUT, client.txn(txn)).await);
        });
        let unavailable = |e: String| StoreError::Unavailable(e);
        let response = rx
            .recv_timeout(WRITE_TIMEOUT + Duration::from_secs(1))
            .map_err(|_| unavailable("etcd did not answer in time".into()))?
            .map_err(|_| unavailable("etcd did not answer in time".into()))?
            .map_err(|e| unavailable(e.to_string()))?;
        if !response.succeeded() {
            return Err(StoreError::Behind);
        }
        Ok(response.header().map_or(head, |h| h.revision()))
    }
}

impl ClusterView for Cluster {
    fn served_by_all(&self, sequence: u64, own: u64) -> bool {
        let mut view = self.view.lock().expect("cluster view");
        let now = keys::served_by_all(
            view.nodes.iter().map(|(id, n)| (id.as_str(), n.applied)),
            &self.settings.node_id,
            own,
        );
        view.insync = view.insync.max(now);
        sequence <= view.insync
    }

    fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    fn current_head(&self) -> Option<i64> {
        let mut client = self.client.lock().expect("cluster client").clone()?;
        let key = self.keys.head();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let read = tokio::time::timeout(Duration::from_secs(1), client.get(key, None)).await;
            let _ = tx.send(read);
        });
        let response = rx.recv_timeout(Duration::from_secs(2)).ok()?.ok()?.ok()?;
        Some(response.kvs().first().map_or(0, |kv| kv.mod_revision()))
    }

    fn published(&self, sequence: u64) {
        self.published.send_if_modified(|s| {
            let newer = sequence > *s;
            *s = (*s).max(sequence);
            newer
        });
    }
}
