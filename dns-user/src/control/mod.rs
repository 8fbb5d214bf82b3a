//! The control plane: hosted zones, change batches and health checks, kept in the durable
//! [`Store`] and published to both answer paths.
//!
//! ```text
//!  API / config import ──> validate (whole batch, touched names rebuilt) ──> Store::commit (fsync)
//!        │  ChangeInfo PENDING                                                   │
//!        ▼                                                                       ▼
//!  publisher thread ──> Published::replace[_touched] (XDP maps, then userspace) ──> INSYNC
//! ```
//!
//! One source of truth: the server answers from the store's zones. Zones and health checks
//! in the config (zone files, `[[zone.record]]`, `--route53` batches, `[health_check.ID]`)
//! are *imported*: created when the store lacks them, replaced when their source changed
//! since the last import (a digest is kept), removed when the config drops them. An
//! unchanged source is not imported again, so API changes to an imported zone survive
//! restarts until its source file changes.
//!
//! A change is validated completely before it is stored (Route 53's change-batch rules, then
//! the names it touches and those that follow them are assembled again exactly as they will be
//! served, [`Zone::rebuild`]: policy mixing, alias loops, unknown health checks, bad values),
//! so what is stored always loads. It costs what the batch touches, apart from copying the
//! zone's model (one `Zone` clone per batch).

pub mod api;
pub mod catalog_zone;
pub mod dnssec;
pub mod import;
mod publisher;
mod replicated;
pub mod store;
mod views;

use publisher::catalog_of;
pub use publisher::{INSYNC_BUCKETS, InsyncStats, Publication};
pub use replicated::ClusterView;
pub use views::{PageStart, RecordSetPage, TestAnswer, ZoneConfigView, ZoneView};
use views::{rcode_name, view_of};

use import::{import, rebuild_all};

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use hickory_proto::rr::{LowerName, Name, RecordType};

use crate::config::Settings;
use crate::health::monitor::{CheckStatus, Monitor};
use crate::health::spec::{CheckSpec, HealthCheckConfig};
use crate::publish::Published;
use crate::zone::Catalog;
use crate::zone::build::SourcedSet;
use crate::zone::records::{self, ChangeBatch, ResourceRecordSet, SetKey};
use crate::zone::{self, Problem, Where, Zone};
use store::{
    ChangeInfo, ChangeStatus, CidrCollection, HostedZone, State, Store, StoreError, StoredCheck,
    Write,
};

/// What the control plane keeps, as a request names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    HostedZone,
    Change,
    HealthCheck,
    CidrCollection,
    CidrLocation,
    KeySigningKey,
}

impl Kind {
    /// Route 53's error code when one is missing.
    pub fn missing_code(self) -> &'static str {
        match self {
            Kind::HostedZone => "NoSuchHostedZone",
            Kind::Change => "NoSuchChange",
            Kind::HealthCheck => "NoSuchHealthCheck",
            Kind::CidrCollection => "NoSuchCidrCollectionException",
            Kind::CidrLocation => "NoSuchCidrLocationException",
            Kind::KeySigningKey => "NoSuchKeySigningKey",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::HostedZone => "hosted zone",
            Kind::Change => "change",
            Kind::HealthCheck => "health check",
            Kind::CidrCollection => "CIDR collection",
            Kind::CidrLocation => "CIDR location",
            Kind::KeySigningKey => "key-signing key",
        })
    }
}

/// Why a control request was refused; nothing of it was applied.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{message}")]
    InvalidInput { message: String },
    #[error("invalid change batch:\n  {}", problems.join("\n  "))]
    InvalidChangeBatch { problems: Vec<String> },
    #[error("no such {what} {id}")]
    NotFound { what: Kind, id: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ControlError {
    fn invalid(message: impl Into<String>) -> Self {
        ControlError::InvalidInput {
            message: message.into(),
        }
    }

    /// Route 53's error code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            ControlError::InvalidInput { .. } => "InvalidInput",
            ControlError::InvalidChangeBatch { .. } => "InvalidChangeBatch",
            ControlError::NotFound { what, .. } => what.missing_code(),
            ControlError::Conflict { code, .. } | ControlError::Refused { code, .. } => code,
            // botocore retries it, as while Route 53 applies a prior request.
            ControlError::Store(StoreError::HandedOver | StoreError::Behind) => {
                "PriorRequestNotComplete"
            }
            ControlError::Store(StoreError::Unavailable(_)) => "ServiceUnavailable",
            ControlError::Store(StoreError::TooLarge { .. }) => "InvalidInput",
            ControlError::Store(_) => "InternalError",
        }
    }
}

/// A config zone or check that could not be imported (startup refuses them all).
#[derive(Debug, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct ImportError {
    pub problems: Vec<String>,
    /// Another cluster node wrote first: the import may be tried again.
    pub behind: bool,
}

impl ImportError {
    fn one(problem: impl ToString) -> ImportError {
        ImportError {
            problems: vec![problem.to_string()],
            behind: false,
        }
    }

    fn new(problems: Vec<String>) -> ImportError {
        ImportError {
            problems,
            behind: false,
        }
    }

    fn store(e: StoreError) -> ImportError {
        ImportError {
            behind: matches!(e, StoreError::Behind),
            ..ImportError::one(e)
        }
    }
}

struct Inner {
    store: Store,
    settings: Arc<Settings>,
    /// Zone id -> the zone as served (built when its sets were validated).
    built: HashMap<String, Arc<Zone>>,
    /// Since the last publication: the names change batches touched (zone origin, names),
    /// and whether anything else changed the zones (then everything is compiled again).
    touched: Vec<(LowerName, HashSet<LowerName>)>,
    publish_all: bool,
    /// The store's health checks, validated.
    specs: Vec<CheckSpec>,
    checks_version: u64,
    published_checks_version: u64,
    last_sequence: u64,
    published_sequence: u64,
    /// Sequence -> (change id, when it was accepted), until INSYNC.
    pending: BTreeMap<u64, (String, Instant)>,
    /// Per-zone counter slots (never reused while running) and the userspace counts.
    zone_slots: HashMap<hickory_proto::rr::LowerName, u32>,
    zone_hits: Arc<Vec<std::sync::atomic::AtomicU64>>,
    /// Publications asked for without a stored change (a reload) and done.
    requested: u64,
    completed: u64,
    stop: bool,
    /// The catalog zone as last built, with its members (`server.catalog_zone`).
    catalog_zone: Option<(catalog_zone::Members, Arc<Zone>)>,
    /// What seals the DNSSEC keys in the store, opened on first use.
    sealer: Option<Arc<crate::signing::keys::Sealer>>,
    /// Zone id -> the signer of a signed zone, with the DNSSEC it was made from.
    signers: HashMap<String, (store::ZoneDnssec, Arc<crate::signing::Signer>)>,
}

/// The control plane (see the module docs).
pub struct Control {
    inner: Mutex<Inner>,
    wake: Condvar,
    /// Signalled after every publication.
    done: Condvar,
    serving: OnceLock<(Arc<Published>, Arc<Monitor>)>,
    /// Tells secondaries about new serials after each publication.
    notifier: OnceLock<Arc<crate::server::notify::Notifier>>,
    /// Set on a cluster node: who serves what.
    cluster: OnceLock<Arc<dyn ClusterView>>,
    pub insync: InsyncStats,
    problems_at_start: Vec<String>,
}

/// How often, and after how long, a change batch another cluster node overtook is tried again.
const MAX_BEHIND: u32 = 100;
const BEHIND_PAUSE: Duration = Duration::from_millis(20);

pub use store::KEPT_CHANGES;

/// One change of ChangeCidrCollection: PUT or DELETE_IF_EXISTS `cidrs` at `location`.
#[derive(Clone, Debug)]
pub struct CidrChange {
    pub location: String,
    pub action: String,
    pub cidrs: Vec<String>,
}

/// Most tags on one resource (Route 53: 50), and added or removed in one call (10).
pub const MAX_TAGS: usize = 50;
pub const MAX_TAGS_PER_CALL: usize = 10;

/// Most record sets on one page (Route 53: 300).
pub const MAX_PAGE: usize = 300;

impl Control {
    /// Opens the store and imports the config's zones and health checks into it. A zone or
    /// check that fails keeps its stored version, or is not served if it has none: one bad
    /// zone never stops the others ([`problems_at_start`](Self::problems_at_start) says
    /// which). A store that cannot be opened or written is an error.
    pub fn open(settings: Settings) -> Result<Control, ImportError> {
        let mut store = Store::open(&settings.store).map_err(ImportError::one)?;
        forget_old_changes(&mut store).map_err(ImportError::one)?;
        let last_sequence = store.state().last_sequence();
        let mut inner = Inner {
            store,
            settings: Arc::new(settings),
            built: HashMap::new(),
            touched: Vec::new(),
            publish_all: false,
            specs: Vec::new(),
            checks_version: 1,
            published_checks_version: 0,
            last_sequence,
            published_sequence: 0,
            pending: BTreeMap::new(),
            zone_slots: HashMap::new(),
            zone_hits: crate::zone::ZoneCounters::new_hits(),
            requested: 0,
            completed: 0,
            stop: false,
            catalog_zone: None,
            sealer: None,
            signers: HashMap::new(),
        };
        let settings = inner.settings.clone();
        // A cluster node serves its cache until it reaches the cluster, and imports the
        // config into the cluster's store then ([`Control::import_config`]).
        let (fresh, mut problems) = match settings.cluster {
            Some(_) => (HashSet::new(), Vec::new()),
            None => import(&mut inner, &settings, false, false)?,
        };
        if let Err(e) = rebuild_all(&mut inner, &fresh, false, false) {
            problems.extend(e.problems);
        }
        // What the store still calls PENDING is published with everything else at start.
        let now = Instant::now();
        for c in inner.store.state().changes.values() {
            if c.status == ChangeStatus::Pending {
                inner.pending.insert(c.sequence, (c.id.clone(), now));
            }
        }
        Ok(Control {
            inner: Mutex::new(inner),
            wake: Condvar::new(),
            done: Condvar::new(),
            serving: OnceLock::new(),
            notifier: OnceLock::new(),
            cluster: OnceLock::new(),
            insync: InsyncStats::default(),
            problems_at_start: problems,
        })
    }

    /// The zones and checks [`open`](Self::open) could not import, and what became of them.
    pub fn problems_at_start(&self) -> &[String] {
        &self.problems_at_start
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("control lock")
    }

    /// The catalog of the store's zones (what the server starts with).
    pub fn catalog(&self) -> Catalog {
        let mut g = self.lock();
        catalog_of(&mut g)
    }

    /// Each hosted zone (by name) with its counter slot and its userspace answer count.
    pub fn zone_counts(&self) -> Vec<(String, u32, u64)> {
        let g = self.lock();
        let mut out: Vec<(String, u32, u64)> = g
            .zone_slots
            .iter()
            .filter(|(_, slot)| **slot < dns_common::MAX_ZONES)
            .map(|(name, slot)| {
                let hits = g.zone_hits[*slot as usize].load(std::sync::atomic::Ordering::Relaxed);
                (name.to_string(), *slot, hits)
            })
            .collect();
        out.sort();
        out
    }

    /// Hosted zones and their record set counts.
    pub fn zone_sizes(&self) -> Vec<(String, usize)> {
        let g = self.lock();
        let state = g.store.state();
        state
            .zones
            .values()
            .map(|z| {
                (
                    z.name.clone(),
                    state.rrsets.get(&z.id).map_or(0, BTreeMap::len),
                )
            })
            .collect()
    }

    /// The store's health checks.
    pub fn health_checks(&self) -> Vec<CheckSpec> {
        self.lock().specs.clone()
    }

    /// Number of hosted zones.
    pub fn zone_count(&self) -> usize {
        self.lock().store.state().zones.len()
    }

    /// Closes the store file for a new daemon taking over (`serve --takeover`): what is
    /// stored stays served and readable through the API; changes are refused (botocore
    /// retries them) until [`reacquire_store`](Self::reacquire_store) or this daemon exits.
    pub fn release_store(&self) {
        self.lock().store.release();
    }

    /// Opens the store file again: the takeover was abandoned.
    pub fn reacquire_store(&self) -> Result<(), StoreError> {
        self.lock().store.reacquire()
    }

    /// Re-imports the config after a reload (SIGHUP). A zone or check that fails keeps its
    /// stored version; the failures are returned (and logged by the caller).
    pub fn reload(&self, settings: Settings) -> Vec<String> {
        let mut g = self.lock();
        let settings = Arc::new(settings);
        let previous = std::mem::replace(&mut g.settings, settings.clone());
        let same_regions = previous.regions == settings.regions;
        let previous_checks = g.specs.clone();
        let mut problems = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let fresh = loop {
            match import(&mut g, &settings, false, same_regions) {
                Ok((fresh, found)) => {
                    problems.extend(found);
                    break fresh;
                }
                // Another cluster node wrote first: imported again once this one holds it.
                Err(e) if e.behind && Instant::now() < deadline => {
                    drop(g);
                    std::thread::sleep(BEHIND_PAUSE);
                    g = self.lock();
                }
                Err(e) => {
                    problems.extend(e.problems);
                    break HashSet::new();
                }
            }
        };
        // Zones that did not change keep their build unless what they are built with did.
        let same_checks = previous_checks.len() == g.specs.len()
            && previous_checks
                .iter()
                .zip(&g.specs)
                .all(|(a, b)| a.id == b.id);
        if let Err(e) = rebuild_all(&mut g, &fresh, false, same_regions && same_checks) {
            problems.extend(e.problems);
        }
        // Published in any case (the reload returns when it is served): all of it when the
        // locations changed, the checks' way when the checks did, else what changed.
        if previous.locations != settings.locations {
            g.publish_all = true;
        }
        if previous_checks != g.specs {
            g.checks_version += 1;
        }
        g.requested += 1;
        let want = g.requested;
        self.wake.notify_all();
        // Returns once both paths serve the result (without a publisher: at once).
        if self.serving.get().is_some() {
            let deadline = Instant::now() + Duration::from_secs(60);
            while g.completed < want && !g.stop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    problems.push("the reload was not published within 60 s".into());
                    break;
                }
                g = self.done.wait_timeout(g, left).expect("control lock").0;
            }
        }
        problems
    }

    // ---- hosted zones ----

    pub fn create_zone(
        &self,
        name: &str,
        caller_reference: &str,
        comment: Option<String>,
    ) -> Result<(ZoneView, ChangeInfo), ControlError> {
        let origin = parse_zone_name(name)?;
        check_caller_reference(caller_reference, 128)?;
        if let Some(c) = &comment {
            records::check_comment(c).map_err(ControlError::invalid)?;
        }
        let mut g = self.lock();
        let state = g.store.state();
        if let Some(z) = state.zone_named(&origin) {
            return Err(ControlError::Conflict {
                code: "HostedZoneAlreadyExists",
                message: format!("a hosted zone {} already exists ({})", z.name, z.id),
            });
        }
        if state
            .zones
            .values()
            .any(|z| z.caller_reference == caller_reference)
        {
            return Err(ControlError::Conflict {
                code: "HostedZoneAlreadyExists",
                message: format!("CallerReference {caller_reference:?} was already used"),
            });
        }
        let zone = HostedZone {
            id: store::new_id("Z"),
            name: origin.clone(),
            caller_reference: caller_reference.to_string(),
            comment: comment.clone(),
            created_at: store::now(),
            version: 1,
            imported_from: None,
            import_digest: None,
            tags: BTreeMap::new(),
            dnssec: None,
        };
        let name = Name::from_ascii(&origin).expect("checked above");
        let sets: Vec<ResourceRecordSet> =
            crate::zone::build::default_sets(&name, &g.settings.name_servers);
        let built =
            build_zone(&g, &zone, &sets).map_err(|e| ControlError::invalid(e.to_string()))?;
        let built = Some(Arc::new(built));
        let change = next_change(&mut g, comment, &zone.id);
        let mut view = view_of(g.store.state(), &zone);
        view.resource_record_set_count = sets.len();
        view.name_servers = sets
            .iter()
            .filter(|s| s.rtype == "NS")
            .flat_map(|s| s.resource_records.iter().flatten())
            .map(|v| v.value.clone())
            .collect();
        let mut write = Write::default();
        write
            .put_zone(zone.clone())
            .replace_sets(&zone.id, sets)
            .put_change(change.clone());
        let change = self.commit_change(g, write, &zone.id, built, change, None)?;
        Ok((view, change))
    }

    pub fn list_zones(&self) -> Vec<ZoneView> {
        let g = self.lock();
        let state = g.store.state();
        let mut zones: Vec<ZoneView> = state.zones.values().map(|z| view_of(state, z)).collect();
        zones.sort_by(|a, b| {
            store::sort_key(&a.name, "", None).cmp(&store::sort_key(&b.name, "", None))
        });
        zones
    }

    pub fn get_zone(&self, id: &str) -> Result<ZoneView, ControlError> {
        let g = self.lock();
        let state = g.store.state();
        let zone = zone_by_id(state, id)?;
        Ok(view_of(state, zone))
    }

    /// UpdateHostedZoneComment: sets (or, with `None`, removes) a zone's comment.
    pub fn update_zone_comment(
        &self,
        id: &str,
        comment: Option<String>,
    ) -> Result<ZoneView, ControlError> {
        if let Some(c) = &comment {
            records::check_comment(c).map_err(ControlError::invalid)?;
        }
        let mut g = self.lock();
        let mut zone = zone_by_id(g.store.state(), id)?.clone();
        zone.comment = comment;
        let mut write = Write::default();
        write.put_zone(zone.clone());
        g.store.commit(write)?;
        Ok(view_of(g.store.state(), &zone))
    }

    /// Deletes a zone that holds only its SOA and apex NS (Route 53: HostedZoneNotEmpty).
    pub fn delete_zone(&self, id: &str) -> Result<ChangeInfo, ControlError> {
        let mut g = self.lock();
        let state = g.store.state();
        let zone = zone_by_id(state, id)?.clone();
        let others: Vec<String> = state
            .sets(id)
            .iter()
            .filter(|s| !(s.name == zone.name && (s.rtype == "SOA" || s.rtype == "NS")))
            .map(|s| format!("{} {}", s.name, s.rtype))
            .collect();
        if !others.is_empty() {
            return Err(ControlError::Refused {
                code: "HostedZoneNotEmpty",
                message: format!(
                    "hosted zone {} still has {} record set(s) besides its SOA and NS (first: {}); delete them first",
                    zone.name,
                    others.len(),
                    others[0]
                ),
            });
        }
        let change = next_change(&mut g, Some(format!("delete {}", zone.name)), id);
        let mut write = Write::default();
        write.delete_zone(id).put_change(change.clone());
        self.commit_change(g, write, id, None, change, None)
    }

    /// Stores `write` (with `change` in it), serves `built` as zone `zone_id` (`None`: the
    /// zone is gone) and wakes the publisher, which owes `change` an INSYNC. `touched`: the
    /// only names whose answers may differ (else the publisher compiles everything).
    fn commit_change(
        &self,
        mut g: MutexGuard<'_, Inner>,
        write: Write,
        zone_id: &str,
        built: Option<Arc<Zone>>,
        change: ChangeInfo,
        touched: Option<HashSet<LowerName>>,
    ) -> Result<ChangeInfo, ControlError> {
        g.store.commit(write)?;
        match (&built, touched) {
            (Some(zone), Some(names)) => {
                let origin = LowerName::new(zone.origin());
                g.touched.push((origin, names));
            }
            _ => g.publish_all = true,
        }
        match built {
            Some(zone) => g.built.insert(zone_id.to_string(), zone),
            None => g.built.remove(zone_id),
        };
        accept(&mut g, &change);
        drop(g);
        self.wake.notify_all();
        Ok(change)
    }

    /// ChangeResourceRecordSets: validated whole, stored (synced), then published.
    pub fn change_record_sets(
        &self,
        zone_id: &str,
        batch: &ChangeBatch,
    ) -> Result<ChangeInfo, ControlError> {
        // Route 53's size limits first: they bound all the work below.
        records::check_limits(batch)
            .map_err(|problems| ControlError::InvalidChangeBatch { problems })?;
        // Validated against a snapshot of what the batch touches, outside the lock that
        // answers and other calls need; committed only if neither the zone nor the checks
        // changed meanwhile. After a few such races the batch is validated under the lock, so
        // it always gets an answer.
        let mut behind = 0;
        for attempt in 1.. {
            let locked = attempt > 3;
            let mut held = locked.then(|| self.lock());
            let (snapshot, bumped) = match &held {
                Some(g) => Snapshot::take_bumped(g, zone_id, batch)?,
                None => Snapshot::take_bumped(&self.lock(), zone_id, batch)?,
            };
            let batch = bumped.as_ref().unwrap_or(batch);
            let validated = snapshot.validate(batch)?;
            let mut g = held.take().unwrap_or_else(|| self.lock());
            let now = zone_by_id(g.store.state(), zone_id)?;
            if now.version != snapshot.zone.version || g.checks_version != snapshot.checks_version {
                continue;
            }
            // The zone as stored now (its comment may have changed meanwhile).
            let mut zone = now.clone();
            zone.version += 1;
            let change = next_change(&mut g, batch.comment.clone(), zone_id);
            let mut write = Write::default();
            write
                .put_zone(zone)
                .change_sets(zone_id, validated.changes)
                .put_change(change.clone());
            // IXFR's journal follows the change.
            let zone = validated
                .zone
                .with_history(&snapshot.built, &validated.touched);
            let built = Some(Arc::new(zone));
            match self.commit_change(g, write, zone_id, built, change, Some(validated.touched)) {
                // Another node wrote first: validated again once this one holds that write.
                Err(ControlError::Store(StoreError::Behind)) if behind < MAX_BEHIND => {
                    behind += 1;
                    std::thread::sleep(BEHIND_PAUSE);
                }
                result => return result,
            }
        }
        unreachable!("the locked attempt always commits or fails")
    }

    /// ListResourceRecordSets, in Route 53's order, from `start`.
    pub fn list_record_sets(
        &self,
        zone_id: &str,
        start: &PageStart,
    ) -> Result<RecordSetPage, ControlError> {
        let max = match start.max_items {
            None => MAX_PAGE,
            Some(n @ 1..=MAX_PAGE) => n,
            Some(n) => {
                return Err(ControlError::invalid(format!(
                    "maxitems {n} is not 1..{MAX_PAGE}"
                )));
            }
        };
        if start.name.is_none() && (start.rtype.is_some() || start.identifier.is_some()) {
            return Err(ControlError::invalid(
                "type and identifier need name (where the page starts)",
            ));
        }
        let g = self.lock();
        zone_by_id(g.store.state(), zone_id)?;
        let empty = BTreeMap::new();
        let sets = g.store.state().rrsets.get(zone_id).unwrap_or(&empty);
        let from = start.name.as_deref().map(|n| {
            store::sort_key(
                n,
                start.rtype.as_deref().unwrap_or(""),
                start.identifier.as_deref(),
            )
        });
        let mut iter = match &from {
            Some(k) => sets.range(k.clone()..),
            None => sets.range::<String, _>(..),
        };
        let page: Vec<ResourceRecordSet> =
            iter.by_ref().take(max).map(|(_, s)| s.clone()).collect();
        let next = iter.next().map(|(_, s)| s.clone());
        Ok(RecordSetPage {
            resource_record_sets: page,
            is_truncated: next.is_some(),
            max_items: max,
            next_record_name: next.as_ref().map(|s| s.name.clone()),
            next_record_type: next.as_ref().map(|s| s.rtype.clone()),
            next_record_identifier: next.and_then(|s| s.set_identifier),
        })
    }

    /// GetChange: INSYNC once both answer paths serve the change, on every live node of a
    /// cluster.
    pub fn get_change(&self, id: &str) -> Result<ChangeInfo, ControlError> {
        let id = id.strip_prefix("/change/").unwrap_or(id);
        let g = self.lock();
        let mut change =
            g.store
                .state()
                .changes
                .get(id)
                .cloned()
                .ok_or_else(|| ControlError::NotFound {
                    what: Kind::Change,
                    id: id.to_string(),
                })?;
        if let Some(cluster) = self.cluster.get() {
            let own = g.published_sequence;
            drop(g);
            change.status = match cluster.served_by_all(change.sequence, own) {
                true => ChangeStatus::Insync,
                false => ChangeStatus::Pending,
            };
        }
        Ok(change)
    }

    // ---- health checks ----

    /// CreateHealthCheck; a CallerReference used before is the same check again when the
    /// config is the same, else HealthCheckAlreadyExists.
    pub fn create_check(
        &self,
        caller_reference: &str,
        config: serde_json::Value,
    ) -> Result<StoredCheck, ControlError> {
        check_caller_reference(caller_reference, 64)?;
        let g = self.lock();
        if let Some(c) = g
            .store
            .state()
            .checks
            .values()
            .find(|c| c.caller_reference == caller_reference)
        {
            // Route 53: the same request again (a client's retry) gets the same check.
            if c.health_check_config == config {
                return Ok(c.clone());
            }
            return Err(ControlError::Conflict {
                code: "HealthCheckAlreadyExists",
                message: format!(
                    "CallerReference {caller_reference:?} was already used, with another config (health check {})",
                    c.id
                ),
            });
        }
        let check = StoredCheck {
            id: store::new_uuid(),
            caller_reference: caller_reference.to_string(),
            health_check_config: config,
            health_check_version: 1,
            imported_from: None,
            import_digest: None,
            tags: BTreeMap::new(),
        };
        self.put_check(g, check)
    }

    /// Stores `check` (new or changed) if every check is valid with it, then publishes.
    fn put_check(
        &self,
        mut g: MutexGuard<'_, Inner>,
        check: StoredCheck,
    ) -> Result<StoredCheck, ControlError> {
        let is_new = !g.store.state().checks.contains_key(&check.id);
        let mut checks = g.store.state().checks.clone();
        checks.insert(check.id.clone(), check.clone());
        let policy = &g.settings.health;
        if is_new && checks.len() > policy.max_checks {
            return Err(ControlError::Refused {
                code: "TooManyHealthChecks",
                message: format!(
                    "at most {} health checks ([health] max_checks)",
                    policy.max_checks
                ),
            });
        }
        let specs = validate_checks(&checks)?;
        // The stored checks were allowed when they were made; this one must be now.
        if let Some(spec) = specs.iter().find(|s| s.id == check.id) {
            crate::health::spec::check_targets(std::slice::from_ref(spec), policy)
                .map_err(|e| ControlError::invalid(e.problems.join("\n")))?;
        }
        let mut write = Write::default();
        write.put_check(check.clone());
        g.store.commit(write)?;
        set_specs(&mut g, specs);
        drop(g);
        self.wake.notify_all();
        Ok(check)
    }

    pub fn list_checks(&self) -> Vec<StoredCheck> {
        self.lock().store.state().checks.values().cloned().collect()
    }

    pub fn get_check(&self, id: &str) -> Result<StoredCheck, ControlError> {
        self.lock()
            .store
            .state()
            .checks
            .get(id)
            .cloned()
            .ok_or_else(|| ControlError::NotFound {
                what: Kind::HealthCheck,
                id: id.to_string(),
            })
    }

    /// UpdateHealthCheck: `patch` holds the fields to change (null removes one) and
    /// optionally `HealthCheckVersion`, which must match. The type cannot change.
    pub fn update_check(
        &self,
        id: &str,
        patch: serde_json::Map<String, serde_json::Value>,
    ) -> Result<StoredCheck, ControlError> {
        let g = self.lock();
        let mut check =
            g.store
                .state()
                .checks
                .get(id)
                .cloned()
                .ok_or_else(|| ControlError::NotFound {
                    what: Kind::HealthCheck,
                    id: id.to_string(),
                })?;
        let mut patch = patch;
        if let Some(v) = patch.remove("HealthCheckVersion") {
            let v = v
                .as_u64()
                .ok_or_else(|| ControlError::invalid("HealthCheckVersion must be a number"))?;
            if v != check.health_check_version {
                return Err(ControlError::Conflict {
                    code: "HealthCheckVersionMismatch",
                    message: format!(
                        "HealthCheckVersion {v} is not the current version {}",
                        check.health_check_version
                    ),
                });
            }
        }
        if patch.is_empty() {
            return Err(ControlError::invalid("the update changes nothing"));
        }
        if patch.contains_key("Type") {
            return Err(ControlError::invalid(
                "Type cannot be changed (delete the check and create another)",
            ));
        }
        let serde_json::Value::Object(mut config) = check.health_check_config.clone() else {
            return Err(ControlError::invalid("the stored config is not an object"));
        };
        for (k, v) in patch {
            if v.is_null() {
                config.remove(&k);
            } else {
                config.insert(k, v);
            }
        }
        check.health_check_config = serde_json::Value::Object(config);
        check.health_check_version += 1;
        self.put_check(g, check)
    }

    /// DeleteHealthCheck; refused while a record set or a calculated check uses it.
    pub fn delete_check(&self, id: &str) -> Result<(), ControlError> {
        let mut g = self.lock();
        let state = g.store.state();
        if !state.checks.contains_key(id) {
            return Err(ControlError::NotFound {
                what: Kind::HealthCheck,
                id: id.to_string(),
            });
        }
        let sets = state
            .rrsets
            .iter()
            .flat_map(|(zone, sets)| sets.values().map(move |s| (zone.as_str(), s)));
        if let Some(user) = check_users(sets, state.checks.values(), id).first() {
            return Err(ControlError::Refused {
                code: "HealthCheckInUse",
                message: format!("health check {id} is in use by {user}"),
            });
        }
        let mut checks = state.checks.clone();
        checks.remove(id);
        let specs = validate_checks(&checks)?;
        let mut write = Write::default();
        write.delete_check(id);
        g.store.commit(write)?;
        set_specs(&mut g, specs);
        drop(g);
        self.wake.notify_all();
        Ok(())
    }

    /// GetHealthCheckStatus (+ last failure reason) of one check.
    pub fn check_status(&self, id: &str) -> Result<CheckStatus, ControlError> {
        self.get_check(id)?;
        let monitor = self.serving.get().map(|(_, m)| m.clone());
        monitor
            .and_then(|m| m.status().into_iter().find(|s| s.id == id))
            .ok_or_else(|| ControlError::Refused {
                code: "HealthCheckNotRunning",
                message: format!("health check {id} has no status yet (just created)"),
            })
    }

    // ---- tags ----

    /// A hosted zone's or health check's tags.
    pub fn tags(&self, kind: Kind, id: &str) -> Result<BTreeMap<String, String>, ControlError> {
        let g = self.lock();
        let state = g.store.state();
        match kind {
            Kind::HostedZone => Ok(zone_by_id(state, id)?.tags.clone()),
            Kind::HealthCheck => Ok(check_by_id(state, id)?.tags.clone()),
            _ => Err(ControlError::invalid(format!("a {kind} has no tags"))),
        }
    }

    /// ChangeTagsForResource: adds (or overwrites) `add` and removes `remove`, at once.
    pub fn change_tags(
        &self,
        kind: Kind,
        id: &str,
        add: Vec<(String, String)>,
        remove: Vec<String>,
    ) -> Result<(), ControlError> {
        if add.is_empty() && remove.is_empty() {
            return Err(ControlError::invalid(
                "AddTags or RemoveTagKeys must name at least one tag",
            ));
        }
        if add.len() > MAX_TAGS_PER_CALL || remove.len() > MAX_TAGS_PER_CALL {
            return Err(ControlError::invalid(format!(
                "at most {MAX_TAGS_PER_CALL} tags may be added, and {MAX_TAGS_PER_CALL} removed, per call"
            )));
        }
        for (key, value) in &add {
            if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
                return Err(ControlError::invalid(format!(
                    "tag {key:?}: a key is 1..128 characters and a value at most 256"
                )));
            }
        }
        let mut g = self.lock();
        let state = g.store.state();
        let apply = |tags: &mut BTreeMap<String, String>| -> Result<(), ControlError> {
            for key in &remove {
                tags.remove(key);
            }
            tags.extend(add.iter().cloned());
            if tags.len() > MAX_TAGS {
                return Err(ControlError::invalid(format!(
                    "a resource has at most {MAX_TAGS} tags"
                )));
            }
            Ok(())
        };
        let mut write = Write::default();
        match kind {
            Kind::HostedZone => {
                let mut zone = zone_by_id(state, id)?.clone();
                apply(&mut zone.tags)?;
                write.put_zone(zone);
            }
            Kind::HealthCheck => {
                let mut check = check_by_id(state, id)?.clone();
                apply(&mut check.tags)?;
                write.put_check(check);
            }
            _ => return Err(ControlError::invalid(format!("a {kind} has no tags"))),
        }
        g.store.commit(write)?;
        Ok(())
    }

    // ---- CIDR collections ----

    /// CreateCidrCollection: a new, empty collection. The same name and CallerReference
    /// again is the same collection (a retry); the same name otherwise is refused.
    pub fn create_cidr_collection(
        &self,
        name: &str,
        caller_reference: &str,
    ) -> Result<CidrCollection, ControlError> {
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            return Err(ControlError::invalid(format!(
                "collection name {name:?}: 1..64 characters of A-Z, a-z, 0-9, - and _"
            )));
        }
        check_caller_reference(caller_reference, 64)?;
        let mut g = self.lock();
        if let Some(c) = g.store.state().cidr.values().find(|c| c.name == name) {
            if c.caller_reference == caller_reference {
                return Ok(c.clone());
            }
            return Err(ControlError::Refused {
                code: "CidrCollectionAlreadyExistsException",
                message: format!("a CIDR collection named {name} already exists ({})", c.id),
            });
        }
        let collection = CidrCollection {
            id: store::new_uuid(),
            name: name.to_string(),
            caller_reference: caller_reference.to_string(),
            version: 1,
            locations: BTreeMap::new(),
        };
        let mut write = Write::default();
        write.put_collection(collection.clone());
        g.store.commit(write)?;
        Ok(collection)
    }

    pub fn cidr_collections(&self) -> Vec<CidrCollection> {
        self.lock().store.state().cidr.values().cloned().collect()
    }

    pub fn cidr_collection(&self, id: &str) -> Result<CidrCollection, ControlError> {
        collection_by_id(self.lock().store.state(), id).cloned()
    }

    /// ChangeCidrCollection: every change checked, then all applied as one change that
    /// turns INSYNC when both answer paths route with it. `version`, when given, must be the
    /// collection's. A location that record sets route to keeps at least one block.
    pub fn change_cidr_collection(
        &self,
        id: &str,
        version: Option<u64>,
        changes: &[CidrChange],
    ) -> Result<ChangeInfo, ControlError> {
        if changes.is_empty() || changes.len() > 1000 {
            return Err(ControlError::invalid("Changes must hold 1..1000 changes"));
        }
        let mut problems = Vec::new();
        for (n, change) in changes.iter().enumerate() {
            let n = n + 1;
            let location = &change.location;
            if location.is_empty()
                || location.len() > 16
                || !location
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
            {
                problems.push(format!(
                    "change #{n}: location name {location:?}: 1..16 characters of A-Z, a-z, 0-9, - and _ (not *)"
                ));
            }
            if !matches!(change.action.as_str(), "PUT" | "DELETE_IF_EXISTS") {
                problems.push(format!(
                    "change #{n}: action {:?} is not PUT or DELETE_IF_EXISTS",
                    change.action
                ));
            }
            if change.cidrs.is_empty() || change.cidrs.len() > 1000 {
                problems.push(format!("change #{n}: CidrList must hold 1..1000 blocks"));
            }
            for cidr in &change.cidrs {
                match cidr.parse::<ipnet::IpNet>() {
                    Ok(net) if net.trunc() == net => {}
                    Ok(net) => problems.push(format!(
                        "change #{n}: {cidr} has host bits set (the block is {})",
                        net.trunc()
                    )),
                    Err(_) => problems.push(format!("change #{n}: {cidr:?} is not a CIDR block")),
                }
            }
        }
        if !problems.is_empty() {
            return Err(ControlError::invalid(problems.join("; ")));
        }
        let mut g = self.lock();
        let state = g.store.state();
        let mut collection = collection_by_id(state, id)?.clone();
        if let Some(v) = version
            && v != collection.version
        {
            return Err(ControlError::Conflict {
                code: "CidrCollectionVersionMismatchException",
                message: format!(
                    "CollectionVersion {v} is not the current version {}",
                    collection.version
                ),
            });
        }
        for change in changes {
            let blocks = collection
                .locations
                .entry(change.location.clone())
                .or_default();
            match change.action.as_str() {
                "PUT" => {
                    for cidr in &change.cidrs {
                        let cidr = cidr.to_ascii_lowercase();
                        if !blocks.contains(&cidr) {
                            blocks.push(cidr);
                        }
                    }
                }
                _ => blocks.retain(|b| !change.cidrs.iter().any(|c| c.eq_ignore_ascii_case(b))),
            }
        }
        collection.locations.retain(|_, blocks| !blocks.is_empty());
        // A location record sets route to may not lose its last block.
        for (zone, sets) in &state.rrsets {
            for set in sets.values() {
                if let Some(c) = &set.cidr_routing_config
                    && c.collection_id == collection.id
                    && c.location_name != "*"
                    && !collection.locations.contains_key(&c.location_name)
                {
                    let zone = state
                        .zones
                        .get(zone)
                        .map_or(zone.as_str(), |z| z.name.as_str());
                    return Err(ControlError::Refused {
                        code: "CidrBlockInUseException",
                        message: format!(
                            "location {} would have no blocks left, and {} {} in zone {zone} routes to it",
                            c.location_name, set.name, set.rtype
                        ),
                    });
                }
            }
        }
        collection.version += 1;
        let change = next_change(&mut g, None, &collection.id);
        let mut write = Write::default();
        write.put_collection(collection).put_change(change.clone());
        g.store.commit(write)?;
        g.publish_all = true;
        accept(&mut g, &change);
        drop(g);
        self.wake.notify_all();
        Ok(change)
    }

    /// DeleteCidrCollection; refused while a record set routes with it.
    pub fn delete_cidr_collection(&self, id: &str) -> Result<(), ControlError> {
        let mut g = self.lock();
        let state = g.store.state();
        let collection = collection_by_id(state, id)?;
        let user = state.rrsets.values().flat_map(|s| s.values()).find(|s| {
            s.cidr_routing_config
                .as_ref()
                .is_some_and(|c| c.collection_id == collection.id)
        });
        if let Some(set) = user {
            return Err(ControlError::Refused {
                code: "CidrCollectionInUseException",
                message: format!(
                    "CIDR collection {} is in use by {} {}",
                    collection.id, set.name, set.rtype
                ),
            });
        }
        let mut write = Write::default();
        write.delete_collection(id);
        g.store.commit(write)?;
        Ok(())
    }

    // ---- TestDNSAnswer ----

    /// What the server answers now for `name`/`rtype` asked by `resolver` with an optional
    /// EDNS Client Subnet.
    pub fn test_answer(
        &self,
        name: &str,
        rtype: &str,
        resolver: Option<IpAddr>,
        ecs: Option<(IpAddr, u8)>,
    ) -> Result<TestAnswer, ControlError> {
        use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
        use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
        let qname = Name::from_ascii(crate::zone::absolute_lower(name))
            .map_err(|e| ControlError::invalid(format!("recordname {name:?}: {e}")))?;
        let qtype = zone::parse_type(&rtype.to_ascii_uppercase())
            .ok_or_else(|| ControlError::invalid(format!("recordtype {rtype:?} is unknown")))?;
        let mut query = Message::new(0x5453, MessageType::Query, OpCode::Query);
        query.add_query(Query::query(qname.clone(), qtype));
        if let Some((addr, len)) = ecs {
            let max = if addr.is_ipv4() { 32 } else { 128 };
            if len > max {
                return Err(ControlError::invalid(format!(
                    "edns0clientsubnetmask {len} is more than {max}"
                )));
            }
            let net = ipnet::IpNet::new(addr, len)
                .map_err(|e| ControlError::invalid(e.to_string()))?
                .trunc();
            let mut edns = Edns::new();
            edns.options_mut()
                .insert(EdnsOption::Subnet(ClientSubnet::new(net.addr(), len, 0)));
            query.set_edns(edns);
        }
        let bytes = query
            .to_vec()
            .map_err(|e| ControlError::invalid(e.to_string()))?;
        let (published, _) = self.serving.get().ok_or_else(|| ControlError::Refused {
            code: "NotServing",
            message: "the server is not serving yet".into(),
        })?;
        let client = resolver.unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let reply = crate::server::answer::respond(
            &published.catalog.load(),
            &published.health.load(),
            &Default::default(),
            &bytes,
            crate::server::answer::Transport::Tcp,
            client,
        )
        .ok_or_else(|| ControlError::invalid("the query was not answered"))?;
        let reply = Message::from_vec(&reply)
            .map_err(|e| ControlError::invalid(format!("unreadable answer: {e}")))?;
        Ok(TestAnswer {
            nameserver: "dns-user".into(),
            record_name: qname.to_ascii(),
            record_type: qtype.to_string(),
            record_data: reply
                .answers
                .iter()
                .filter(|r| r.record_type() == qtype || qtype == RecordType::ANY)
                .map(|r| {
                    let text = crate::zone::rdata::presentation(r.record_type(), &r.data);
                    text.split_once(' ')
                        .map_or(text.clone(), |(_, v)| v.to_string())
                })
                .collect(),
            response_code: rcode_name(reply.metadata.response_code),
            protocol: "UDP".into(),
        })
    }
}

/// Keeps the newest [`KEPT_CHANGES`] changes of the history.
fn forget_old_changes(store: &mut Store) -> Result<(), StoreError> {
    let changes = &store.state().changes;
    if changes.len() <= KEPT_CHANGES {
        return Ok(());
    }
    let mut by_age: Vec<(u64, &String)> = changes.values().map(|c| (c.sequence, &c.id)).collect();
    by_age.sort();
    let mut write = Write::default();
    for (_, id) in &by_age[..by_age.len() - KEPT_CHANGES] {
        write.forget_change(id);
    }
    store.commit(write)
}

/// A CallerReference: 1 to `max` printable characters (Route 53: 128 for hosted zones, 64
/// for health checks).
fn check_caller_reference(reference: &str, max: usize) -> Result<(), ControlError> {
    let n = reference.chars().count();
    if n == 0 || n > max || reference.chars().any(char::is_control) {
        return Err(ControlError::invalid(format!(
            "CallerReference must be 1 to {max} printable characters"
        )));
    }
    Ok(())
}

fn parse_zone_name(name: &str) -> Result<String, ControlError> {
    let origin = crate::zone::canonical_name(name.trim())
        .map_err(|e| ControlError::invalid(format!("Name {e}")))?;
    let parsed = Name::from_ascii(&origin)
        .map_err(|e| ControlError::invalid(format!("Name {name:?}: {e}")))?;
    if parsed.is_root() || parsed.num_labels() < 1 || name.trim().is_empty() {
        return Err(ControlError::invalid(format!(
            "Name {name:?} is not a domain name"
        )));
    }
    Ok(origin)
}

fn zone_by_id<'a>(state: &'a State, id: &str) -> Result<&'a HostedZone, ControlError> {
    let id = id.strip_prefix("/hostedzone/").unwrap_or(id);
    state.zones.get(id).ok_or_else(|| ControlError::NotFound {
        what: Kind::HostedZone,
        id: id.to_string(),
    })
}

fn collection_by_id<'a>(state: &'a State, id: &str) -> Result<&'a CidrCollection, ControlError> {
    state.cidr.get(id).ok_or_else(|| ControlError::NotFound {
        what: Kind::CidrCollection,
        id: id.to_string(),
    })
}

fn check_by_id<'a>(state: &'a State, id: &str) -> Result<&'a StoredCheck, ControlError> {
    state.checks.get(id).ok_or_else(|| ControlError::NotFound {
        what: Kind::HealthCheck,
        id: id.to_string(),
    })
}

/// A new PENDING change with the next sequence number.
fn next_change(g: &mut Inner, comment: Option<String>, target: &str) -> ChangeInfo {
    ChangeInfo {
        id: store::new_id("C"),
        status: ChangeStatus::Pending,
        submitted_at: store::now(),
        comment,
        target: Some(target.to_string()),
        sequence: g.last_sequence + 1,
    }
}

/// `change` is stored: the publisher owes it an INSYNC.
fn accept(g: &mut Inner, change: &ChangeInfo) {
    g.last_sequence = change.sequence;
    g.pending
        .insert(change.sequence, (change.id.clone(), Instant::now()));
}

fn set_specs(g: &mut Inner, specs: Vec<CheckSpec>) {
    g.specs = specs;
    g.checks_version += 1;
}

/// Who uses check `id`: record sets and calculated checks.
fn check_users<'a>(
    sets: impl Iterator<Item = (&'a str, &'a ResourceRecordSet)>,
    checks: impl Iterator<Item = &'a StoredCheck>,
    id: &str,
) -> Vec<String> {
    let mut users = Vec::new();
    for (zone_id, s) in sets {
        if s.health_check_id.as_deref() == Some(id) {
            users.push(format!(
                "record set {} {} in hosted zone {zone_id}",
                s.name, s.rtype
            ));
        }
    }
    for c in checks {
        let children = c.health_check_config.get("ChildHealthChecks");
        if children
            .and_then(|v| v.as_array())
            .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(id)))
        {
            users.push(format!("calculated health check {}", c.id));
        }
    }
    users
}

/// Parses and validates every stored check together.
fn validate_checks(checks: &BTreeMap<String, StoredCheck>) -> Result<Vec<CheckSpec>, ControlError> {
    let mut configs = Vec::new();
    let mut problems = Vec::new();
    for c in checks.values() {
        match serde_json::from_value::<HealthCheckConfig>(c.health_check_config.clone()) {
            Ok(config) => configs.push((c.id.clone(), config)),
            Err(e) => problems.push(format!("health check {}: HealthCheckConfig: {e}", c.id)),
        }
    }
    if !problems.is_empty() {
        return Err(ControlError::invalid(problems.join("\n")));
    }
    crate::health::spec::build(configs).map_err(|e| ControlError::invalid(e.problems.join("\n")))
}

/// What a change batch is validated against, copied under the lock: the zone as served and
/// the record sets the batch touches or that follow them (aliases). Costs what the batch
/// touches, whatever the zone's size.
struct Snapshot {
    zone: HostedZone,
    built: Arc<Zone>,
    settings: Arc<Settings>,
    known: HashSet<String>,
    checks_version: u64,
    /// The zone's record sets at the keys the batch names.
    existing: HashMap<SetKey, ResourceRecordSet>,
    /// The zone's record sets at each name the batch touches or that follows one.
    at: HashMap<LowerName, Vec<ResourceRecordSet>>,
}

/// A batch validated: what to store, the zone as it will be served, and the names whose
/// answers may differ.
struct Validated {
    changes: Vec<(SetKey, Option<ResourceRecordSet>)>,
    zone: Zone,
    touched: HashSet<LowerName>,
}

impl Snapshot {
    /// [`take`](Self::take) of `batch` with the SOA serial bump `server.serial_policy` asks
    /// for, and that batch when it differs.
    fn take_bumped(
        g: &Inner,
        zone_id: &str,
        batch: &ChangeBatch,
    ) -> Result<(Snapshot, Option<ChangeBatch>), ControlError> {
        let state = g.store.state();
        let zone = zone_by_id(state, zone_id)?;
        let soa = state.set(zone_id, &(zone.name.clone(), "SOA".to_string(), None));
        let now = crate::server::tsig::now() as u32;
        let bumped = soa.and_then(|soa| batch.with_serial_bump(soa, g.settings.serial_policy, now));
        let snapshot = Snapshot::take(g, zone_id, bumped.as_ref().unwrap_or(batch))?;
        Ok((snapshot, bumped))
    }

    fn take(g: &Inner, zone_id: &str, batch: &ChangeBatch) -> Result<Snapshot, ControlError> {
        let state = g.store.state();
        let zone = zone_by_id(state, zone_id)?.clone();
        let built = match g.built.get(zone_id) {
            Some(built) => built.clone(),
            // Not served (its last import failed): the batch is checked against a full build.
            None => Arc::new(
                build_zone(g, &zone, &state.sets(zone_id))
                    .map_err(|e| ControlError::invalid(e.to_string()))?,
            ),
        };
        let mut existing = HashMap::new();
        let mut changed = HashSet::new();
        for c in &batch.changes {
            let key = records::set_key(&c.resource_record_set);
            if let Some(set) = state.set(zone_id, &key) {
                existing.insert(key.clone(), set.clone());
            }
            if let Some(name) = lower_name(&key.0) {
                changed.insert(name);
            }
        }
        let at = built
            .dependents_of(&changed)
            .into_iter()
            .map(|name| {
                let sets = state.sets_at(zone_id, &Name::from(name.clone()).to_ascii());
                (name, sets)
            })
            .collect();
        Ok(Snapshot {
            zone,
            built,
            settings: g.settings.clone(),
            known: g.specs.iter().map(|c| c.id.clone()).collect(),
            checks_version: g.checks_version,
            existing,
            at,
        })
    }

    /// The batch applied: every problem listed (names outside the zone, Route 53's rules),
    /// then the names it touches assembled again as they will be served ([`Zone::rebuild`]).
    fn validate(&self, batch: &ChangeBatch) -> Result<Validated, ControlError> {
        let zone = &self.zone;
        let invalid = |problems| ControlError::InvalidChangeBatch { problems };
        let mut problems = Vec::new();
        let suffix = format!(".{}", zone.name);
        for (i, c) in batch.changes.iter().enumerate() {
            let name = crate::zone::absolute_lower(&c.resource_record_set.name);
            if name != zone.name && !name.ends_with(&suffix) {
                problems.push(format!(
                    "change #{} ({} {}): the name is not in zone {}",
                    i + 1,
                    crate::text::escape(&c.action),
                    crate::text::escape(&c.resource_record_set.name),
                    zone.name
                ));
            }
        }
        let existing = |k: &SetKey| self.existing.get(k).cloned();
        let changes = match records::apply_changes(
            &existing,
            batch,
            &self.settings.regions,
            Some(&zone.name),
        ) {
            Ok(changes) if problems.is_empty() => changes,
            Ok(_) => return Err(invalid(problems)),
            Err(more) => {
                problems.extend(more);
                return Err(invalid(problems));
            }
        };
        let place = Where::HostedZone {
            id: zone.id.clone(),
        };
        // A set the batch wrote is named by the change that wrote it.
        let by_change: HashMap<SetKey, Where> = batch
            .changes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let at = Where::Change {
                    zone: zone.id.clone(),
                    number: i + 1,
                };
                (records::set_key(&c.resource_record_set), at)
            })
            .collect();
        // What the batch leaves, by name: its own sets, read when it was applied.
        let changed_keys: HashSet<&SetKey> = changes.iter().map(|c| &c.key).collect();
        let mut written: HashMap<LowerName, Vec<(ResourceRecordSet, Option<records::Checked>)>> =
            HashMap::new();
        for c in &changes {
            let Some(name) = lower_name(&c.key.0) else {
                continue;
            };
            let sets = written.entry(name).or_default();
            if let Some((set, checked)) = &c.set {
                sets.push((set.clone(), Some(checked.clone())));
            }
        }
        let changed: HashSet<LowerName> = written.keys().cloned().collect();
        let sets_at = |name: &LowerName| -> Vec<SourcedSet<'static>> {
            let mut sets: Vec<(ResourceRecordSet, Option<records::Checked>)> = self
                .at
                .get(name)
                .into_iter()
                .flatten()
                .filter(|s| !changed_keys.contains(&records::set_key(s)))
                .map(|s| (s.clone(), None))
                .collect();
            sets.extend(written.get(name).into_iter().flatten().cloned());
            sets.sort_by_cached_key(|(s, _)| {
                store::sort_key(&s.name, &s.rtype, s.set_identifier.as_deref())
            });
            sets.into_iter()
                .map(|(set, checked)| SourcedSet {
                    place: by_change
                        .get(&records::set_key(&set))
                        .unwrap_or(&place)
                        .clone(),
                    set: Cow::Owned(set),
                    record: None,
                    checked,
                })
                .collect()
        };
        let (rebuilt, touched) = self
            .built
            .rebuild(&changed, &sets_at, &self.settings.regions, &place)
            .map_err(|e| invalid(vec![e.to_string()]))?;
        let known: HashSet<&str> = self.known.iter().map(String::as_str).collect();
        let zone = crate::zone::build::check_known_checks(rebuilt, &known, &place, Some(&touched))
            .map_err(|e| invalid(vec![e.to_string()]))?;
        let changes = changes
            .into_iter()
            .map(|c| (c.key, c.set.map(|(set, _)| set)))
            .collect();
        Ok(Validated {
            changes,
            zone,
            touched,
        })
    }
}

/// A stored name (absolute, lower case) as a DNS name.
fn lower_name(name: &str) -> Option<LowerName> {
    Name::from_ascii(name).ok().map(|n| LowerName::new(&n))
}

/// The zone `zone` with record sets `sets`, built as it will be served.
fn build_zone(g: &Inner, zone: &HostedZone, sets: &[ResourceRecordSet]) -> Result<Zone, Problem> {
    let known: HashSet<&str> = g.specs.iter().map(|c| c.id.as_str()).collect();
    build_zone_with(&g.settings, zone, sets, &known)
}

fn build_zone_with(
    settings: &Settings,
    zone: &HostedZone,
    sets: &[ResourceRecordSet],
    known: &HashSet<&str>,
) -> Result<Zone, Problem> {
    let place = Where::HostedZone {
        id: zone.id.clone(),
    };
    let origin = Name::from_ascii(&zone.name)
        .map_err(|e| place.error(format!("zone {}: {e}", zone.name)))?;
    let sourced: Vec<crate::zone::build::SourcedSet<'_>> = sets
        .iter()
        .enumerate()
        .map(|(i, s)| crate::zone::build::SourcedSet {
            set: std::borrow::Cow::Borrowed(s),
            place: place.clone(),
            record: Some((i + 1, std::borrow::Cow::Borrowed(s.name.as_str()))),
            checked: None,
        })
        .collect();
    let built = crate::zone::build::build(&origin, &sourced, &settings.regions, &place)?;
    crate::zone::build::check_known_checks(built, known, &place, None)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::{Overrides, resolve_text};

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dns-control-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn settings(dir: &std::path::Path, zones: &str) -> Settings {
        let text = format!("[store]\npath = \"store.redb\"\n{zones}");
        resolve_text(&text, &dir.join("dns.toml"), &Overrides::default()).unwrap()
    }

    /// Every RRset of every zone: (owner, type, TTL, sorted data).
    fn contents(catalog: &Catalog) -> Vec<(String, String, u32, Vec<String>)> {
        let mut out = Vec::new();
        for zone in catalog.zones() {
            for (name, sets) in zone.nodes() {
                for s in sets {
                    let mut data: Vec<String> = s.rdatas.iter().map(|r| r.to_string()).collect();
                    data.sort();
                    out.push((name.to_string(), s.rtype.to_string(), s.ttl, data));
                }
            }
        }
        out.sort();
        out
    }

    fn a_batch(name: &str, address: &str) -> ChangeBatch {
        serde_json::from_value(serde_json::json!({"Changes": [{"Action": "CREATE",
            "ResourceRecordSet": {"Name": name, "Type": "A", "TTL": 60,
            "ResourceRecords": [{"Value": address}]}}]}))
        .unwrap()
    }

    #[test]
    fn a_zone_file_imported_into_the_store_serves_the_same_data() {
        let d = dir("roundtrip");
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/example.com.zone");
        let zones = format!(
            "[[zone]]\norigin = \"example.com.\"\nfile = \"{example}\"\n\
             [[zone.record]]\nname = \"w\"\ntype = \"A\"\nset_id = \"a\"\nweight = 3\nttl = 30\nvalues = [\"192.0.2.7\"]\n"
        );
        let s = settings(&d, &zones);
        let direct = import::catalog(&s).unwrap();
        let control = Control::open(s).unwrap();
        assert_eq!(contents(&control.catalog()), contents(&direct));
        let zone = control.list_zones().remove(0);
        assert!(zone.imported_from.unwrap().contains("example.com.zone"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// check-config (the config road) and serve (the store road) accept the same configs and
    /// serve the same RRsets: every example, and a records-only zone without an SOA.
    #[test]
    fn zones_delegate_to_the_configured_name_servers() {
        let d = dir("delegation");
        let zones = "[server]\nname_servers = [\"NS-1.Example.NET\", \"ns-2.example.net.\"]\n\
                     [[zone]]\norigin = \"nosoa.test\"\n[[zone.record]]\nname = \"www\"\ntype = \"A\"\nttl = 60\nvalues = [\"192.0.2.1\"]\n";
        let c = Control::open(settings(&d, zones)).unwrap();
        let (zone, _) = c.create_zone("api.test", "r", None).unwrap();
        let servers = ["ns-1.example.net.", "ns-2.example.net."];
        assert_eq!(zone.name_servers, servers);
        for id in [zone.id.as_str(), c.list_zones()[0].id.as_str()] {
            let view = c.get_zone(id).unwrap();
            assert_eq!(view.name_servers, servers, "{}", view.name);
            let page = c.list_record_sets(id, &PageStart::default()).unwrap();
            let soa = page
                .resource_record_sets
                .iter()
                .find(|s| s.rtype == "SOA")
                .unwrap();
            let mname = &soa.resource_records.as_ref().unwrap()[0].value;
            assert!(mname.starts_with("ns-1.example.net. "), "{mname}");
        }
        let bad = "[server]\nname_servers = [\"not a name\"]\n";
        let text = format!("[store]\npath = \"store.redb\"\n{bad}");
        assert!(resolve_text(&text, &d.join("dns.toml"), &Overrides::default()).is_err());
    }

    #[test]
    fn check_config_and_serve_agree() {
        let d = dir("agree");
        let nosoa = d.join("nosoa.toml");
        std::fs::write(
            &nosoa,
            "[[zone]]\norigin = \"nosoa.test\"\n[[zone.record]]\nname = \"www\"\ntype = \"A\"\nttl = 60\nvalues = [\"192.0.2.1\"]\n",
        )
        .unwrap();
        let examples = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples"));
        let mut configs: Vec<std::path::PathBuf> = std::fs::read_dir(examples)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        configs.sort();
        configs.push(nosoa);
        for (i, config) in configs.iter().enumerate() {
            let overrides = Overrides {
                store: Some(d.join(format!("store-{i}.redb"))),
                ..Overrides::default()
            };
            let s = crate::config::resolve(Some(config), &overrides).unwrap();
            let direct = import::catalog(&s);
            let served = Control::open(s).map(|c| c.catalog());
            match (direct, served) {
                (Ok(direct), Ok(served)) => {
                    assert_eq!(contents(&served), contents(&direct), "{}", config.display());
                }
                (Err(e), Err(f)) => panic!("{}: both refuse: {e} / {f}", config.display()),
                (direct, served) => panic!(
                    "{}: check-config {:?}, serve {:?}",
                    config.display(),
                    direct.err().map(|e| e.to_string()),
                    served.err().map(|e| e.to_string())
                ),
            }
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_rrset_with_mixed_ttls_is_imported_with_the_lowest() {
        let d = dir("ttls");
        let zone_file = d.join("t.zone");
        std::fs::write(
            &zone_file,
            "$TTL 60\n@ IN SOA ns1 host 1 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.53\n\
             www 300 IN A 192.0.2.1\nwww 30 IN A 192.0.2.2\nwww 120 IN A 192.0.2.3\n",
        )
        .unwrap();
        let zones = format!(
            "[[zone]]\norigin = \"t.test.\"\nfile = \"{}\"\n",
            zone_file.display()
        );
        let s = settings(&d, &zones);
        let direct = import::catalog(&s).unwrap();
        let control = Control::open(s).unwrap();
        assert_eq!(contents(&control.catalog()), contents(&direct));
        let www = hickory_proto::rr::LowerName::new(&Name::from_ascii("www.t.test.").unwrap());
        let catalog = control.catalog();
        let set = catalog
            .find(&www)
            .unwrap()
            .rrset(&www, RecordType::A)
            .unwrap();
        assert_eq!((set.ttl, set.rdatas.len()), (30, 3));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn imports_follow_the_config_and_api_changes_survive_an_unchanged_one() {
        let d = dir("imports");
        let zone_file = d.join("t.zone");
        std::fs::write(
            &zone_file,
            "$TTL 60\n@ IN SOA ns1 host 1 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.53\nwww IN A 192.0.2.1\n",
        )
        .unwrap();
        let zones = format!(
            "[[zone]]\norigin = \"t.test.\"\nfile = \"{}\"\n",
            zone_file.display()
        );
        let find = |c: &Control, name: &str| {
            let catalog = c.catalog();
            let lower = hickory_proto::rr::LowerName::new(&Name::from_ascii(name).unwrap());
            catalog
                .find(&lower)
                .and_then(|z| z.rrset(&lower, RecordType::A))
                .map(|s| s.rdatas[0].to_string())
        };
        let id = {
            let c = Control::open(settings(&d, &zones)).unwrap();
            let id = c.list_zones()[0].id.clone();
            c.change_record_sets(&id, &a_batch("api.t.test.", "192.0.2.9"))
                .unwrap();
            assert_eq!(find(&c, "api.t.test.").as_deref(), Some("192.0.2.9"));
            id
        };
        // Same config: not imported again; the API's change is still there.
        {
            let c = Control::open(settings(&d, &zones)).unwrap();
            assert_eq!(c.list_zones()[0].id, id);
            assert_eq!(find(&c, "api.t.test.").as_deref(), Some("192.0.2.9"));
            assert_eq!(find(&c, "www.t.test.").as_deref(), Some("192.0.2.1"));
        }
        // The zone file changed: imported again (same zone id), replacing its record sets.
        std::fs::write(
            &zone_file,
            "$TTL 60\n@ IN SOA ns1 host 2 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.53\nwww IN A 192.0.2.2\n",
        )
        .unwrap();
        {
            let c = Control::open(settings(&d, &zones)).unwrap();
            assert_eq!(c.list_zones()[0].id, id);
            assert_eq!(find(&c, "www.t.test.").as_deref(), Some("192.0.2.2"));
            assert_eq!(find(&c, "api.t.test."), None);
            // An API-created zone is not the config's to remove.
            c.create_zone("own.test", "r1", None).unwrap();
        }
        // The config dropped the zone: it leaves the store; the API's zone stays.
        {
            let c = Control::open(settings(&d, "")).unwrap();
            let names: Vec<String> = c.list_zones().into_iter().map(|z| z.name).collect();
            assert_eq!(names, ["own.test."]);
        }
        // A broken zone file at start is a problem naming the file and line, and that zone
        // alone is not served: the others are.
        std::fs::write(
            &zone_file,
            "$TTL 60\n@ IN SOA ns1 host 2 2 3 4 5\nwww IN A 192.0.2.999\n",
        )
        .unwrap();
        let good = d.join("good.zone");
        std::fs::write(
            &good,
            "$TTL 60\n@ IN SOA ns1 host 1 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.53\nwww IN A 192.0.2.7\n",
        )
        .unwrap();
        let both = format!(
            "{zones}[[zone]]\norigin = \"g.test.\"\nfile = \"{}\"\n",
            good.display()
        );
        let c = Control::open(settings(&d, &both)).unwrap();
        let problems = c.problems_at_start().join("\n");
        assert!(
            problems.contains("t.zone:3")
                && problems.contains("bad A record")
                && problems.contains("not served"),
            "{problems}"
        );
        assert_eq!(find(&c, "www.g.test.").as_deref(), Some("192.0.2.7"));
        assert_eq!(find(&c, "www.t.test."), None);
        let names: Vec<String> = c.list_zones().into_iter().map(|z| z.name).collect();
        assert_eq!(names, ["g.test.", "own.test."]);
        drop(c);
        // Fixed, it is imported; broken again later, its last good version is kept.
        std::fs::write(
            &zone_file,
            "$TTL 60\n@ IN SOA ns1 host 3 2 3 4 5\n@ IN NS ns1\nns1 IN A 192.0.2.53\nwww IN A 192.0.2.3\n",
        )
        .unwrap();
        drop(Control::open(settings(&d, &both)).unwrap());
        std::fs::write(&zone_file, "$TTL 60\nwww IN A 192.0.2.999\n").unwrap();
        let c = Control::open(settings(&d, &both)).unwrap();
        assert!(
            c.problems_at_start()
                .join("\n")
                .contains("keeping its last good version")
        );
        assert_eq!(find(&c, "www.t.test.").as_deref(), Some("192.0.2.3"));
        // check-config refuses the config, naming the broken file.
        let err = import::catalog(&settings(&d, &both))
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.zone:2"), "{err}");
        drop(c);
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// A cluster whose first write another node overtakes.
    #[derive(Default)]
    struct Overtaken {
        writes: std::sync::atomic::AtomicU32,
    }

    impl store::Replica for Overtaken {
        fn write(&self, _: &[store::Row], head: i64) -> Result<i64, StoreError> {
            match self
                .writes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            {
                0 => Err(StoreError::Behind),
                _ => Ok(head + 1),
            }
        }
    }

    impl ClusterView for Overtaken {
        fn served_by_all(&self, _: u64, _: u64) -> bool {
            true
        }
        fn published(&self, _: u64) {}
        fn current_head(&self) -> Option<i64> {
            None
        }
        fn connected(&self) -> bool {
            true
        }
    }

    #[test]
    fn a_reload_another_node_overtakes_is_imported_again() {
        let d = dir("overtaken");
        let c = Control::open(settings(&d, "")).unwrap();
        let cluster = Arc::new(Overtaken::default());
        c.join_cluster(cluster.clone(), cluster.clone());
        let zones = "[[zone]]\norigin = \"r.test\"\n[[zone.record]]\nname = \"www\"\ntype = \"A\"\nttl = 60\nvalues = [\"192.0.2.1\"]\n";
        let problems = c.reload(settings(&d, zones));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(cluster.writes.load(std::sync::atomic::Ordering::SeqCst), 2);
        let names: Vec<String> = c.list_zones().into_iter().map(|z| z.name).collect();
        assert_eq!(names, ["r.test."]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_batch_is_validated_whole_against_the_zone_as_it_will_be_served() {
        let d = dir("validate");
        let c = Control::open(settings(&d, "")).unwrap();
        let (zone, change) = c.create_zone("v.test", "r", None).unwrap();
        assert_eq!(change.status, ChangeStatus::Pending);
        c.change_record_sets(&zone.id, &a_batch("www.v.test.", "192.0.2.1"))
            .unwrap();
        let before = c.list_record_sets(&zone.id, &PageStart::default()).unwrap();
        let batch: ChangeBatch = serde_json::from_value(serde_json::json!({"Changes": [
            {"Action": "CREATE", "ResourceRecordSet": {"Name": "ok.v.test.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.2"}]}},
            {"Action": "CREATE", "ResourceRecordSet": {"Name": "c.v.test.", "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": "www.v.test."}]}},
            {"Action": "CREATE", "ResourceRecordSet": {"Name": "c.v.test.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.3"}]}}
        ]}))
        .unwrap();
        let err = c.change_record_sets(&zone.id, &batch).unwrap_err();
        assert!(
            matches!(err, ControlError::InvalidChangeBatch { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("CNAME"), "{err}");
        let after = c.list_record_sets(&zone.id, &PageStart::default()).unwrap();
        assert_eq!(
            serde_json::to_value(&after.resource_record_sets).unwrap(),
            serde_json::to_value(&before.resource_record_sets).unwrap()
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
