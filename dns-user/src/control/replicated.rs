//! A cluster node's side of shared writes: what another node wrote (a watch event) or what
//! the cluster holds that this node's cache does not (a resynchronisation) is stored, then
//! served as the node's own changes are. Only the zones whose rows changed are built again,
//! and only at the names that changed when the zone was built before.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::{LowerName, Name};

use super::store::{Object, Row, Table};
use super::*;

/// What rows change, for the node that applies them.
#[derive(Default)]
struct Effects {
    /// Zone id -> the names of its record sets the rows change.
    names: BTreeMap<String, HashSet<String>>,
    /// Zones put or deleted.
    zones: HashSet<String>,
    checks: bool,
    cidr: bool,
    changes: Vec<ChangeInfo>,
}

impl Effects {
    fn of(rows: &[Row]) -> Effects {
        let mut e = Effects::default();
        for row in rows {
            match row.table {
                Table::Zones => {
                    e.zones.insert(row.key.clone());
                }
                Table::RrSets => {
                    let Some((zone, sort)) = row.key.split_once('\x1f') else {
                        continue;
                    };
                    e.names
                        .entry(zone.to_string())
                        .or_default()
                        .insert(store::name_of_sort_key(sort));
                }
                Table::Checks => e.checks = true,
                Table::Cidr => e.cidr = true,
                Table::Changes => {
                    if let Some(Object::Change(c)) = &row.object {
                        e.changes.push(c.clone());
                    }
                }
            }
        }
        e
    }
}

impl Control {
    /// Makes this control plane a cluster node: its shared writes go through `replica`,
    /// and GetChange asks `cluster` who serves a change. At start, before the cluster is
    /// reached, the node serves its cache.
    pub fn join_cluster(&self, replica: Arc<dyn store::Replica>, cluster: Arc<dyn ClusterView>) {
        self.lock().store.set_replica(replica);
        let _ = self.cluster.set(cluster);
    }

    /// The revision of the last shared write this node holds.
    pub fn head(&self) -> i64 {
        self.lock().store.head()
    }

    /// Every change up to this sequence is served by both answer paths of this node.
    pub fn published_sequence(&self) -> u64 {
        self.lock().published_sequence
    }

    /// Another node's write at revision `head` (a watch event): stored and served. A write
    /// this node holds already (its own) is skipped.
    pub fn apply_replicated(&self, rows: Vec<Row>, head: i64) -> Result<(), ControlError> {
        let mut g = self.lock();
        if head <= g.store.head() {
            return Ok(());
        }
        apply(&mut g, rows, head)?;
        drop(g);
        self.wake.notify_all();
        Ok(())
    }

    /// The cluster's whole store (`remote`, read at one revision, whose last shared write is
    /// `head`): the cache is made equal to it and served.
    pub fn resynchronise(
        &self,
        remote: &HashMap<(Table, String), Object>,
        head: i64,
    ) -> Result<usize, ControlError> {
        let mut g = self.lock();
        let rows = g.store.state().rows_to(remote);
        let n = rows.len();
        apply(&mut g, rows, head)?;
        drop(g);
        self.wake.notify_all();
        Ok(n)
    }

    /// False on a cluster node without a session with etcd (its copy may be behind).
    pub fn writable(&self) -> bool {
        self.cluster.get().is_none_or(|c| c.connected())
    }

    /// On a cluster node: waits (up to 2 s) until this node holds every shared write made
    /// before the call, so that a client sees through any node what it did through another
    /// (a zone made through one node, changed through the next). With etcd unreachable it
    /// returns at once: the node answers with what it has.
    pub fn catch_up(&self) {
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        let Some(head) = cluster.current_head() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.lock().store.head() < head && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Imports the config into the cluster's store (a node defers it until it reaches the
    /// cluster): what another node imported from the same config is not imported again.
    /// Retried while other nodes write first.
    pub fn import_config(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut g = self.lock();
            let settings = g.settings.clone();
            let checks_before = g.specs.clone();
            let result = import::import(&mut g, &settings, false, true);
            match result {
                Ok((fresh, mut problems)) => {
                    if let Err(e) = import::rebuild_all(&mut g, &fresh, false, true) {
                        problems.extend(e.problems);
                    }
                    // New or changed checks reach the monitor with the next publication.
                    if g.specs != checks_before {
                        g.checks_version += 1;
                    }
                    drop(g);
                    self.wake.notify_all();
                    return problems;
                }
                Err(e) if e.behind && Instant::now() < deadline => {
                    drop(g);
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return e.problems,
            }
        }
    }
}

/// Who serves what, in a cluster (see [`crate::cluster`]).
pub trait ClusterView: Send + Sync {
    /// True once every live node serves every change up to `sequence` (this node serves
    /// those up to `own`).
    fn served_by_all(&self, sequence: u64, own: u64) -> bool;
    /// This node published everything up to `sequence`.
    fn published(&self, sequence: u64);
    /// The revision of the cluster's last shared write, read from etcd now (`None`:
    /// unreachable).
    fn current_head(&self) -> Option<i64>;
    /// Whether this node has a session with etcd.
    fn connected(&self) -> bool;
}

fn apply(g: &mut Inner, rows: Vec<Row>, head: i64) -> Result<(), ControlError> {
    let effects = Effects::of(&rows);
    let before: HashMap<String, Arc<Zone>> = effects
        .names
        .keys()
        .chain(&effects.zones)
        .filter_map(|id| Some((id.clone(), g.built.get(id)?.clone())))
        .collect();
    g.store.apply_replicated(rows, head)?;
    if effects.checks {
        match validate_checks(&g.store.state().checks) {
            Ok(specs) => set_specs(g, specs),
            Err(e) => tracing::error!("cluster: the shared health checks are not valid here: {e}"),
        }
    }
    let zones: HashSet<&String> = effects.names.keys().chain(&effects.zones).collect();
    for id in zones {
        let Some(zone) = g.store.state().zones.get(id).cloned() else {
            g.built.remove(id);
            g.publish_all = true;
            continue;
        };
        let names = effects.names.get(id);
        let incremental = match (before.get(id), names) {
            (Some(old), Some(names)) if !effects.checks => rebuild_names(g, &zone, old, names),
            (Some(_), None) => continue,
            _ => None,
        };
        match incremental {
            Some((built, touched)) => {
                g.touched.push((LowerName::new(built.origin()), touched));
                g.built.insert(id.clone(), Arc::new(built));
            }
            None => {
                let sets = g.store.state().sets(id);
                match build_zone(g, &zone, &sets) {
                    Ok(built) => {
                        g.built.insert(id.clone(), Arc::new(built));
                    }
                    Err(e) => tracing::error!(
                        "cluster: zone {} as shared does not build here ({e}); kept as it was",
                        zone.name
                    ),
                }
                g.publish_all = true;
            }
        }
    }
    if effects.cidr {
        g.publish_all = true;
    }
    for change in effects.changes {
        if g.published_sequence < change.sequence && !g.pending.contains_key(&change.sequence) {
            g.last_sequence = g.last_sequence.max(change.sequence);
            g.pending
                .insert(change.sequence, (change.id.clone(), Instant::now()));
        }
    }
    Ok(())
}

/// Zone `zone` built again from `old` at `names` only (and what follows them), as the
/// store holds them now; `None` when that fails or a full build costs as much.
fn rebuild_names(
    g: &Inner,
    zone: &HostedZone,
    old: &Zone,
    names: &HashSet<String>,
) -> Option<(Zone, HashSet<LowerName>)> {
    let state = g.store.state();
    let count = state.rrsets.get(&zone.id).map_or(0, BTreeMap::len);
    let sets_at = |name: &LowerName| state.sets_at(&zone.id, &Name::from(name.clone()).to_ascii());
    let known: HashSet<&str> = g.specs.iter().map(|c| c.id.as_str()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let (built, touched) = super::import::rebuild_names(
        &g.settings.regions,
        zone,
        old,
        &names,
        count,
        &sets_at,
        &known,
    )
    .ok()??;
    Some((built.with_history(old, &touched), touched))
}
