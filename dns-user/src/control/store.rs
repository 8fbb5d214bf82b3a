//! The durable store: hosted zones, their record sets (Route 53's `ResourceRecordSet`),
//! health checks (Route 53's `HealthCheckConfig`) and the change history, in one redb file.
//!
//! Everything lives in memory as well ([`State`]); the file is written only through
//! [`Store::commit`], one redb write transaction per [`Write`], fsynced before it returns
//! (`Durability::Immediate`), so an acknowledged change survives `kill -9` and power loss.
//! A second process opening the same file gets a clear error (redb locks it).
//!
//! What a change *means* (Route 53's CREATE / DELETE / UPSERT, validation) is decided by the
//! caller ([`crate::control`]); this module only keeps what it is given, atomically.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::zone::absolute_lower;
use crate::zone::records::{ResourceRecordSet, SetKey, set_key};

const ZONES: TableDefinition<&str, &[u8]> = TableDefinition::new("zones");
/// Key: zone id, `\x1f`, [`sort_key`].
const RRSETS: TableDefinition<&str, &[u8]> = TableDefinition::new("rrsets");
const CHECKS: TableDefinition<&str, &[u8]> = TableDefinition::new("health_checks");
const CHANGES: TableDefinition<&str, &[u8]> = TableDefinition::new("changes");
const CIDR_COLLECTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("cidr_collections");
/// What the store knows about itself: [`HEAD`].
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// The cluster revision of the last shared write stored (a cluster node's cache).
const HEAD: &str = "cluster_head";
/// Changes kept in the history: a write that adds one past this forgets the oldest.
pub const KEPT_CHANGES: usize = 10_000;
/// A write of this many rows or more into a zone, and a quarter of its sets at least, packs
/// the zone's record-set map (see `State::compact_sets`): an import does, a change batch
/// (at most 1,000 changes) or a small part of a large zone does not, and costs what it touches.
const COMPACT_AFTER_ROWS: usize = 1024;
/// redb's page cache (its default is 1 GiB).
const STORE_CACHE_BYTES: usize = 32 << 20;

/// The store could not be opened, read or written; what was being written is not stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
    #[error("store {path}: {what} is not valid JSON: {source}")]
    Corrupt {
        path: PathBuf,
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing the store: {0}")]
    Write(#[from] Box<redb::Error>),
    /// The file is being handed to a new daemon (`serve --takeover`): nothing is written.
    #[error("the daemon is being upgraded (takeover): changes are accepted again in a moment")]
    HandedOver,
    /// Another node wrote first: this one must see that write before it writes.
    #[error("another node changed the store meanwhile; try again")]
    Behind,
    /// The cluster did not take the write (unreachable, no quorum, too slow): nothing stored.
    #[error("the cluster store is unavailable: {0}")]
    Unavailable(String),
    /// More rows than the cluster takes in one transaction.
    #[error(
        "this change writes {rows} rows; the cluster takes at most {max} in one transaction \
         ([cluster] max_txn_ops, etcd's --max-txn-ops)"
    )]
    TooLarge { rows: usize, max: usize },
}

/// The tables of the store; a row's key and value are the same in every replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Zones = 0,
    RrSets = 1,
    Checks = 2,
    Changes = 3,
    Cidr = 4,
}

impl Table {
    pub const ALL: [Table; 5] = [
        Table::Zones,
        Table::RrSets,
        Table::Checks,
        Table::Changes,
        Table::Cidr,
    ];

    fn definition(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Table::Zones => ZONES,
            Table::RrSets => RRSETS,
            Table::Checks => CHECKS,
            Table::Changes => CHANGES,
            Table::Cidr => CIDR_COLLECTIONS,
        }
    }

    /// The table's name (redb's, and the cluster's key segment).
    pub fn name(self) -> &'static str {
        match self {
            Table::Zones => "zones",
            Table::RrSets => "rrsets",
            Table::Checks => "health_checks",
            Table::Changes => "changes",
            Table::Cidr => "cidr_collections",
        }
    }

    pub fn named(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// One stored object, typed.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    Zone(HostedZone),
    Set(Box<ResourceRecordSet>),
    Check(StoredCheck),
    Change(ChangeInfo),
    Cidr(CidrCollection),
}

impl Object {
    pub fn to_json(&self) -> Vec<u8> {
        match self {
            Object::Zone(z) => to_json(z),
            Object::Set(s) => to_json(s),
            Object::Check(c) => to_json(c),
            Object::Change(c) => to_json(c),
            Object::Cidr(c) => to_json(c),
        }
    }

    /// The object a row of `table` holds, from its JSON.
    pub fn from_json(table: Table, bytes: &[u8]) -> Result<Object, serde_json::Error> {
        Ok(match table {
            Table::Zones => Object::Zone(serde_json::from_slice(bytes)?),
            Table::RrSets => Object::Set(Box::new(serde_json::from_slice(bytes)?)),
            Table::Checks => Object::Check(serde_json::from_slice(bytes)?),
            Table::Changes => Object::Change(serde_json::from_slice(bytes)?),
            Table::Cidr => Object::Cidr(serde_json::from_slice(bytes)?),
        })
    }
}

/// One row written: `object` at `key` of `table` (`None`: deleted). Record sets are keyed
/// by zone id, `\x1f` and [`sort_key`]; everything else by its id.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub table: Table,
    pub key: String,
    pub object: Option<Object>,
}

/// Where shared writes go first when the store is a cluster node's cache.
pub trait Replica: Send + Sync {
    /// Writes `rows` in one cluster transaction if no shared write came after revision
    /// `head` (else [`StoreError::Behind`]); returns the transaction's revision.
    fn write(&self, rows: &[Row], head: i64) -> Result<i64, StoreError>;
}

fn boxed(e: impl Into<redb::Error>) -> Box<redb::Error> {
    Box::new(e.into())
}

/// A Route 53 hosted zone.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostedZone {
    pub id: String,
    /// Absolute, lower case: `example.org.`.
    pub name: String,
    pub caller_reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub created_at: String,
    /// Bumped by every change to the zone's record sets.
    pub version: u64,
    /// Set for zones imported from the config (file, records, change batches): where from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
    /// Digest of the import the zone last took; an unchanged source is not imported again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_digest: Option<String>,
    /// Route 53's tags (ChangeTagsForResource).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// DNSSEC signing: its keys, and whether the zone is signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec: Option<ZoneDnssec>,
}

/// A hosted zone's DNSSEC (Route 53's model): key-signing keys the operator manages through the
/// API, zone-signing keys the daemon makes, private keys sealed (`signing::keys::Sealer`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ZoneDnssec {
    /// EnableHostedZoneDNSSEC was called (and DisableHostedZoneDNSSEC not since).
    pub signing: bool,
    #[serde(default)]
    pub key_signing_keys: Vec<StoredKsk>,
    /// The one ACTIVE signs; a NEXT one (about to sign) and a RETIRED one (whose signatures
    /// may still be cached) are published beside it.
    #[serde(default)]
    pub zone_signing_keys: Vec<StoredZsk>,
}

/// A key-signing key.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoredKsk {
    pub name: String,
    pub kms_arn: String,
    /// ACTIVE or INACTIVE.
    pub status: String,
    pub algorithm: u8,
    pub sealed_key: String,
    pub created_at: String,
    pub last_modified_at: String,
}

/// A zone-signing key.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoredZsk {
    pub id: String,
    pub algorithm: u8,
    pub sealed_key: String,
    pub created_at: String,
    /// ACTIVE, NEXT or RETIRED.
    pub state: String,
    /// When it took that state (seconds since the epoch).
    pub since: u64,
    /// RETIRED: when it leaves the DNSKEY RRset (every signature it made has left caches).
    #[serde(default)]
    pub until: u64,
}

/// A health check as stored.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoredCheck {
    pub id: String,
    pub caller_reference: String,
    /// Route 53's `HealthCheckConfig` JSON.
    pub health_check_config: serde_json::Value,
    pub health_check_version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_digest: Option<String>,
    /// Route 53's tags (ChangeTagsForResource).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// A CIDR collection (IP-based routing): location name -> CIDR blocks, as given.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CidrCollection {
    /// A UUID, what record sets' `CidrRoutingConfig.CollectionId` names.
    pub id: String,
    pub name: String,
    pub caller_reference: String,
    /// 1 at creation, +1 per change.
    pub version: u64,
    pub locations: BTreeMap<String, Vec<String>>,
}

/// PENDING until both the userspace server and the XDP maps serve the change.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeStatus {
    Pending,
    Insync,
}

/// Route 53's `ChangeInfo`, with what it changed.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeInfo {
    pub id: String,
    pub status: ChangeStatus,
    pub submitted_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The hosted zone or health check changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Order of acceptance (INSYNC follows publication of everything up to it).
    pub sequence: u64,
}

/// Everything the store holds.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub zones: BTreeMap<String, HostedZone>,
    /// Zone id -> [`sort_key`] -> record set.
    pub rrsets: HashMap<String, BTreeMap<String, ResourceRecordSet>>,
    pub checks: BTreeMap<String, StoredCheck>,
    pub changes: HashMap<String, ChangeInfo>,
    /// CIDR collections by id.
    pub cidr: BTreeMap<String, CidrCollection>,
}

impl State {
    /// The zone called `name` (any case, with or without the final dot).
    pub fn zone_named(&self, name: &str) -> Option<&HostedZone> {
        let name = absolute_lower(name);
        self.zones.values().find(|z| z.name == name)
    }

    /// A zone's record sets in Route 53's list order.
    pub fn sets(&self, zone_id: &str) -> Vec<ResourceRecordSet> {
        self.rrsets
            .get(zone_id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// A zone's record set with the identity `key`.
    pub fn set(&self, zone_id: &str, key: &SetKey) -> Option<&ResourceRecordSet> {
        let sort = sort_key(&key.0, &key.1, key.2.as_deref());
        self.rrsets.get(zone_id)?.get(&sort)
    }

    /// A zone's record sets at `name` (absolute, lower case), in Route 53's list order.
    pub fn sets_at(&self, zone_id: &str, name: &str) -> Vec<ResourceRecordSet> {
        let Some(sets) = self.rrsets.get(zone_id) else {
            return Vec::new();
        };
        // The sort key starts with the reversed name and a separator: one contiguous range.
        let prefix = name_prefix(name);
        sets.range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// The highest change sequence accepted.
    pub fn last_sequence(&self) -> u64 {
        self.changes.values().map(|c| c.sequence).max().unwrap_or(0)
    }

    /// The object at `key` of `table`.
    pub fn object(&self, table: Table, key: &str) -> Option<Object> {
        match table {
            Table::Zones => self.zones.get(key).cloned().map(Object::Zone),
            Table::RrSets => {
                let (zone, sort) = key.split_once('\x1f')?;
                self.rrsets
                    .get(zone)?
                    .get(sort)
                    .cloned()
                    .map(|s| Object::Set(Box::new(s)))
            }
            Table::Checks => self.checks.get(key).cloned().map(Object::Check),
            Table::Changes => self.changes.get(key).cloned().map(Object::Change),
            Table::Cidr => self.cidr.get(key).cloned().map(Object::Cidr),
        }
    }

    /// Every row of the state.
    pub fn rows(&self) -> impl Iterator<Item = Row> + '_ {
        let row = |table, key: String, object| Row {
            table,
            key,
            object: Some(object),
        };
        let zones = self
            .zones
            .iter()
            .map(move |(k, z)| row(Table::Zones, k.clone(), Object::Zone(z.clone())));
        let sets = self.rrsets.iter().flat_map(move |(zone, sets)| {
            sets.iter().map(move |(sort, s)| {
                row(
                    Table::RrSets,
                    format!("{zone}\x1f{sort}"),
                    Object::Set(Box::new(s.clone())),
                )
            })
        });
        let checks = self
            .checks
            .iter()
            .map(move |(k, c)| row(Table::Checks, k.clone(), Object::Check(c.clone())));
        let changes = self
            .changes
            .iter()
            .map(move |(k, c)| row(Table::Changes, k.clone(), Object::Change(c.clone())));
        let cidr = self
            .cidr
            .iter()
            .map(move |(k, c)| row(Table::Cidr, k.clone(), Object::Cidr(c.clone())));
        zones.chain(sets).chain(checks).chain(changes).chain(cidr)
    }

    /// The rows that make this state `other` (a cluster's, read whole). A change both have
    /// is the same change whatever its status: INSYNC is each node's own. Compares in place:
    /// only the rows that differ are copied.
    pub fn rows_to(&self, other: &HashMap<(Table, String), Object>) -> Vec<Row> {
        let mut rows: Vec<Row> = self
            .keys()
            .filter(|k| !other.contains_key(k))
            .map(|(table, key)| Row {
                table,
                key,
                object: None,
            })
            .collect();
        for ((table, key), object) in other {
            if !self.holds(*table, key, object) {
                rows.push(Row {
                    table: *table,
                    key: key.clone(),
                    object: Some(object.clone()),
                });
            }
        }
        rows
    }

    /// The key of every row of the state.
    fn keys(&self) -> impl Iterator<Item = (Table, String)> + '_ {
        let zones = self.zones.keys().map(|k| (Table::Zones, k.clone()));
        let sets = self.rrsets.iter().flat_map(|(zone, sets)| {
            sets.keys()
                .map(move |sort| (Table::RrSets, format!("{zone}\x1f{sort}")))
        });
        let checks = self.checks.keys().map(|k| (Table::Checks, k.clone()));
        let changes = self.changes.keys().map(|k| (Table::Changes, k.clone()));
        let cidr = self.cidr.keys().map(|k| (Table::Cidr, k.clone()));
        zones.chain(sets).chain(checks).chain(changes).chain(cidr)
    }

    /// True if the state holds `theirs` as the row (`table`, `key`); a change when it has the
    /// same id (its status is each node's own).
    fn holds(&self, table: Table, key: &str, theirs: &Object) -> bool {
        match (table, theirs) {
            (Table::Zones, Object::Zone(t)) => self.zones.get(key) == Some(t),
            (Table::RrSets, Object::Set(t)) => key
                .split_once('\x1f')
                .and_then(|(zone, sort)| self.rrsets.get(zone)?.get(sort))
                .is_some_and(|mine| mine == t.as_ref()),
            (Table::Checks, Object::Check(t)) => self.checks.get(key) == Some(t),
            (Table::Changes, Object::Change(t)) => {
                self.changes.get(key).is_some_and(|mine| mine.id == t.id)
            }
            (Table::Cidr, Object::Cidr(t)) => self.cidr.get(key) == Some(t),
            _ => false,
        }
    }

    /// Rebuilds zone `zone`'s map of record sets in one go. Sets inserted one by one, in
    /// order (an import, a restart), leave the B-tree's nodes about half full: at 100k names
    /// that was a fifth of the daemon's memory. A map built from a sorted run packs them.
    fn compact_sets(&mut self, zone: &str) {
        if let Some(sets) = self.rrsets.get_mut(zone) {
            *sets = std::mem::take(sets).into_iter().collect();
        }
    }

    /// Applies one row.
    fn apply(&mut self, row: Row) {
        match (row.table, row.object) {
            (Table::Zones, Some(Object::Zone(z))) => {
                self.zones.insert(row.key, z);
            }
            (Table::Zones, _) => {
                self.zones.remove(&row.key);
            }
            (Table::RrSets, object) => {
                let Some((zone, sort)) = row.key.split_once('\x1f') else {
                    return;
                };
                match object {
                    Some(Object::Set(set)) => {
                        self.rrsets
                            .entry(zone.to_string())
                            .or_default()
                            .insert(sort.to_string(), *set);
                    }
                    _ => {
                        if let Some(sets) = self.rrsets.get_mut(zone) {
                            sets.remove(sort);
                            if sets.is_empty() {
                                self.rrsets.remove(zone);
                            }
                        }
                    }
                }
            }
            (Table::Checks, Some(Object::Check(c))) => {
                self.checks.insert(row.key, c);
            }
            (Table::Checks, _) => {
                self.checks.remove(&row.key);
            }
            (Table::Changes, Some(Object::Change(c))) => {
                self.changes.insert(row.key, c);
            }
            (Table::Changes, _) => {
                self.changes.remove(&row.key);
            }
            (Table::Cidr, Some(Object::Cidr(c))) => {
                self.cidr.insert(row.key, c);
            }
            (Table::Cidr, _) => {
                self.cidr.remove(&row.key);
            }
        }
    }
}

/// Route 53's list order: the name with its labels reversed (`org.example.www`), then type,
/// then set identifier.
pub fn sort_key(name: &str, rtype: &str, set_id: Option<&str>) -> String {
    format!(
        "{}{}\x1f{}",
        name_prefix(name),
        rtype.to_ascii_uppercase(),
        set_id.unwrap_or("")
    )
}

/// The start every [`sort_key`] of a name shares: its labels reversed, then a separator.
/// The start every [`sort_key`] of the sets at `name` shares (sets at one name are one range).
pub fn name_prefix(name: &str) -> String {
    let name = absolute_lower(name);
    let reversed: Vec<&str> = name.trim_end_matches('.').rsplit('.').collect();
    format!("{}\x1f", reversed.join("."))
}

/// The name (absolute, lower case) a [`sort_key`] starts with.
pub fn name_of_sort_key(sort: &str) -> String {
    let reversed = sort.split('\x1f').next().unwrap_or("");
    let labels: Vec<&str> = reversed.rsplit('.').collect();
    format!("{}.", labels.join("."))
}

/// `set`'s [`sort_key`].
pub fn set_sort_key(set: &ResourceRecordSet) -> String {
    let (name, rtype, id) = set_key(set);
    sort_key(&name, &rtype, id.as_deref())
}

/// One atomic change to the store.
#[derive(Debug, Default)]
pub struct Write {
    zones: Vec<(String, Option<HostedZone>)>,
    /// Zone id -> its complete new record sets (`None`: the zone and its sets are gone).
    sets: Vec<(String, Option<Vec<ResourceRecordSet>>)>,
    /// (zone id, sort key, the set there afterwards; `None`: deleted).
    set_changes: Vec<(String, String, Option<ResourceRecordSet>)>,
    checks: Vec<(String, Option<StoredCheck>)>,
    changes: Vec<ChangeInfo>,
    forget: Vec<String>,
    cidr: Vec<(String, Option<CidrCollection>)>,
}

impl Write {
    pub fn put_zone(&mut self, zone: HostedZone) -> &mut Self {
        self.zones.push((zone.id.clone(), Some(zone)));
        self
    }

    /// Removes the zone and all its record sets.
    pub fn delete_zone(&mut self, id: &str) -> &mut Self {
        self.zones.push((id.to_string(), None));
        self.sets.push((id.to_string(), None));
        self
    }

    /// Makes `sets` the zone's complete record sets (only the differences are written).
    pub fn replace_sets(&mut self, zone_id: &str, sets: Vec<ResourceRecordSet>) -> &mut Self {
        self.sets.push((zone_id.to_string(), Some(sets)));
        self
    }

    /// Changes the zone's record sets at the keys of `changes` only (`None`: deleted).
    pub fn change_sets(
        &mut self,
        zone_id: &str,
        changes: Vec<(SetKey, Option<ResourceRecordSet>)>,
    ) -> &mut Self {
        for (key, set) in changes {
            let sort = sort_key(&key.0, &key.1, key.2.as_deref());
            self.set_changes.push((zone_id.to_string(), sort, set));
        }
        self
    }

    pub fn put_check(&mut self, check: StoredCheck) -> &mut Self {
        self.checks.push((check.id.clone(), Some(check)));
        self
    }

    pub fn delete_check(&mut self, id: &str) -> &mut Self {
        self.checks.push((id.to_string(), None));
        self
    }

    pub fn put_collection(&mut self, collection: CidrCollection) -> &mut Self {
        self.cidr.push((collection.id.clone(), Some(collection)));
        self
    }

    pub fn delete_collection(&mut self, id: &str) -> &mut Self {
        self.cidr.push((id.to_string(), None));
        self
    }

    pub fn put_change(&mut self, change: ChangeInfo) -> &mut Self {
        self.changes.push(change);
        self
    }

    /// Drops a change from the history.
    pub fn forget_change(&mut self, id: &str) -> &mut Self {
        self.forget.push(id.to_string());
        self
    }

    /// The rows this write stores, given the state it applies to.
    pub fn rows(self, state: &State) -> Vec<Row> {
        let mut rows = Vec::new();
        for (id, zone) in self.zones {
            rows.push(Row {
                table: Table::Zones,
                key: id,
                object: zone.map(Object::Zone),
            });
        }
        for (zone_id, sets) in self.sets {
            let old = state.rrsets.get(&zone_id);
            let new: Option<BTreeMap<String, ResourceRecordSet>> =
                sets.map(|sets| sets.into_iter().map(|s| (set_sort_key(&s), s)).collect());
            for sort in old.into_iter().flat_map(BTreeMap::keys) {
                if new.as_ref().is_none_or(|n| !n.contains_key(sort)) {
                    rows.push(Row {
                        table: Table::RrSets,
                        key: format!("{zone_id}\x1f{sort}"),
                        object: None,
                    });
                }
            }
            for (sort, set) in new.into_iter().flatten() {
                if old.and_then(|o| o.get(&sort)) != Some(&set) {
                    rows.push(Row {
                        table: Table::RrSets,
                        key: format!("{zone_id}\x1f{sort}"),
                        object: Some(Object::Set(Box::new(set))),
                    });
                }
            }
        }
        for (zone_id, sort, set) in self.set_changes {
            rows.push(Row {
                table: Table::RrSets,
                key: format!("{zone_id}\x1f{sort}"),
                object: set.map(|s| Object::Set(Box::new(s))),
            });
        }
        for (id, check) in self.checks {
            rows.push(Row {
                table: Table::Checks,
                key: id,
                object: check.map(Object::Check),
            });
        }
        for change in self.changes {
            rows.push(Row {
                table: Table::Changes,
                key: change.id.clone(),
                object: Some(Object::Change(change)),
            });
        }
        for id in self.forget {
            rows.push(Row {
                table: Table::Changes,
                key: id,
                object: None,
            });
        }
        for (id, collection) in self.cidr {
            rows.push(Row {
                table: Table::Cidr,
                key: id,
                object: collection.map(Object::Cidr),
            });
        }
        rows
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
            && self.sets.is_empty()
            && self.set_changes.is_empty()
            && self.checks.is_empty()
            && self.changes.is_empty()
            && self.forget.is_empty()
            && self.cidr.is_empty()
    }
}

/// The open store.
pub struct Store {
    /// `None` while the file is handed to a new daemon (see [`Store::release`]).
    db: Option<Database>,
    path: PathBuf,
    state: State,
    /// A cluster node's cache: where shared writes go first, and the revision it holds.
    replica: Option<std::sync::Arc<dyn Replica>>,
    head: i64,
}

impl Store {
    /// Opens (or creates) the store at `path` and reads it whole.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |e: Box<redb::Error>| StoreError::Open {
            path: path.to_path_buf(),
            source: e,
        };
        // Zones and health-check targets are the operator's business: the file is private to
        // the daemon's user (0600, in a directory created 0700), whatever the umask.
        let private = |e: crate::files::FileError| {
            open_err(boxed(redb::StorageError::Io(std::io::Error::other(
                e.to_string(),
            ))))
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::files::create_private_dir(dir).map_err(private)?;
        }
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(|e| open_err(boxed(redb::StorageError::Io(e))))?;
        }
        crate::files::make_private(path).map_err(private)?;
        // Everything is read once into memory; the page cache only serves writes.
        let db = redb::Builder::new()
            .set_cache_size(STORE_CACHE_BYTES)
            .create(path)
            .map_err(|e| open_err(boxed(e)))?;
        // Every table exists from the first open on, so reads never meet a missing one.
        let txn = db.begin_write().map_err(|e| open_err(boxed(e)))?;
        for table in [ZONES, RRSETS, CHECKS, CHANGES, CIDR_COLLECTIONS, META] {
            txn.open_table(table).map_err(|e| open_err(boxed(e)))?;
        }
        txn.commit().map_err(|e| open_err(boxed(e)))?;
        let mut store = Store {
            db: Some(db),
            path: path.to_path_buf(),
            state: State::default(),
            replica: None,
            head: 0,
        };
        (store.state, store.head) = store.read_all().map_err(|e| match e {
            StoreError::Write(e) => open_err(e),
            other => other,
        })?;
        Ok(store)
    }

    /// Closes the file (its lock goes with it) so that a new daemon can open it; the state
    /// stays readable, and every write fails with [`StoreError::HandedOver`] until
    /// [`reacquire`](Self::reacquire).
    pub fn release(&mut self) {
        self.db = None;
    }

    /// Opens the file again after [`release`](Self::release) (the handover was abandoned).
    /// Nothing was written meanwhile, so the state read before still holds.
    pub fn reacquire(&mut self) -> Result<(), StoreError> {
        if self.db.is_none() {
            let db = redb::Builder::new()
                .set_cache_size(STORE_CACHE_BYTES)
                .create(&self.path)
                .map_err(|e| StoreError::Open {
                    path: self.path.clone(),
                    source: boxed(e),
                })?;
            self.db = Some(db);
        }
        Ok(())
    }

    fn db(&self) -> Result<&Database, StoreError> {
        self.db.as_ref().ok_or(StoreError::HandedOver)
    }

    fn read_all(&self) -> Result<(State, i64), StoreError> {
        let txn = self.db()?.begin_read().map_err(boxed)?;
        let mut state = State::default();
        let corrupt = |what: String, source| StoreError::Corrupt {
            path: self.path.clone(),
            what,
            source,
        };
        // Every table as rows, through the same `State::apply` that writes take.
        for table in Table::ALL {
            for entry in txn
                .open_table(table.definition())
                .map_err(boxed)?
                .iter()
                .map_err(boxed)?
            {
                let (k, v) = entry.map_err(boxed)?;
                let key = k.value();
                let object = Object::from_json(table, v.value())
                    .map_err(|e| corrupt(format!("{} row {key:?}", table.name()), e))?;
                state.apply(Row {
                    table,
                    key: key.to_string(),
                    object: Some(object),
                });
            }
        }
        let zones: Vec<String> = state.rrsets.keys().cloned().collect();
        for zone in &zones {
            state.compact_sets(zone);
        }
        let head = txn
            .open_table(META)
            .map_err(boxed)?
            .get(HEAD)
            .map_err(boxed)?
            .and_then(|v| std::str::from_utf8(v.value()).ok()?.parse().ok())
            .unwrap_or(0);
        Ok((state, head))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// Writes `write` in one transaction, synced to disk before this returns, then updates
    /// the in-memory state. On error nothing of it is stored or visible. When the store is a
    /// cluster node's cache ([`set_replica`](Self::set_replica)) the cluster takes the write
    /// first, in one transaction after every shared write this node has seen
    /// ([`StoreError::Behind`] otherwise).
    pub fn commit(&mut self, write: Write) -> Result<(), StoreError> {
        let mut rows = write.rows(&self.state);
        if rows.is_empty() {
            return Ok(());
        }
        rows.extend(self.forgotten(&rows));
        let head = match &self.replica {
            Some(replica) => Some(replica.write(&rows, self.head)?),
            None => None,
        };
        self.write_rows(rows, Durability::Immediate, head)
    }

    /// Like [`commit`](Self::commit) without waiting for the disk, and on this node only: for
    /// what is re-derived after a crash anyway (a change turning INSYNC here).
    pub fn commit_lazily(&mut self, write: Write) -> Result<(), StoreError> {
        self.commit_with(write, Durability::Eventual)
    }

    fn commit_with(&mut self, write: Write, durability: Durability) -> Result<(), StoreError> {
        let rows = write.rows(&self.state);
        self.write_rows(rows, durability, None)
    }

    /// Deletions of the oldest changes of the history that `rows` push past
    /// [`KEPT_CHANGES`] (with the write that adds them: a cluster's history stays bounded too).
    fn forgotten(&self, rows: &[Row]) -> Vec<Row> {
        let changes = &self.state.changes;
        let added = rows
            .iter()
            .filter(|r| {
                r.table == Table::Changes && r.object.is_some() && !changes.contains_key(&r.key)
            })
            .count();
        let excess = (changes.len() + added)
            .saturating_sub(KEPT_CHANGES)
            .min(changes.len());
        if excess == 0 {
            return Vec::new();
        }
        let mut by_age: Vec<(u64, &String)> =
            changes.values().map(|c| (c.sequence, &c.id)).collect();
        by_age.select_nth_unstable(excess - 1);
        by_age[..excess]
            .iter()
            .map(|(_, id)| Row {
                table: Table::Changes,
                key: (*id).clone(),
                object: None,
            })
            .collect()
    }

    /// Rows the cluster wrote at revision `head` (a watch event, or a resynchronisation's
    /// difference): stored as they are, and `head` with them.
    pub fn apply_replicated(&mut self, rows: Vec<Row>, head: i64) -> Result<(), StoreError> {
        self.write_rows(rows, Durability::Immediate, Some(head))
    }

    /// Makes this store a cluster node's cache: shared writes go through `replica`.
    pub fn set_replica(&mut self, replica: std::sync::Arc<dyn Replica>) {
        self.replica = Some(replica);
    }

    /// The cluster revision of the last shared write stored (0: none).
    pub fn head(&self) -> i64 {
        self.head
    }

    fn write_rows(
        &mut self,
        rows: Vec<Row>,
        durability: Durability,
        head: Option<i64>,
    ) -> Result<(), StoreError> {
        if rows.is_empty() && head.is_none_or(|h| h == self.head) {
            return Ok(());
        }
        let mut txn = self.db()?.begin_write().map_err(boxed)?;
        txn.set_durability(durability);
        {
            let mut tables = [
                txn.open_table(Table::Zones.definition()).map_err(boxed)?,
                txn.open_table(Table::RrSets.definition()).map_err(boxed)?,
                txn.open_table(Table::Checks.definition()).map_err(boxed)?,
                txn.open_table(Table::Changes.definition()).map_err(boxed)?,
                txn.open_table(Table::Cidr.definition()).map_err(boxed)?,
            ];
            for row in &rows {
                let table = &mut tables[row.table as usize];
                match &row.object {
                    Some(o) => {
                        table
                            .insert(row.key.as_str(), o.to_json().as_slice())
                            .map_err(boxed)?;
                    }
                    None => {
                        table.remove(row.key.as_str()).map_err(boxed)?;
                    }
                }
            }
            if let Some(head) = head {
                let mut meta = txn.open_table(META).map_err(boxed)?;
                meta.insert(HEAD, head.to_string().as_bytes())
                    .map_err(boxed)?;
            }
        }
        txn.commit().map_err(boxed)?;
        // Stored: now visible.
        if let Some(head) = head {
            self.head = head;
        }
        // Rows per zone, when the write is large enough to have any zone to pack.
        let mut per_zone: HashMap<String, usize> = HashMap::new();
        let bulk = rows.len() >= COMPACT_AFTER_ROWS;
        for row in rows {
            if bulk
                && row.table == Table::RrSets
                && let Some((zone, _)) = row.key.split_once('\x1f')
            {
                match per_zone.get_mut(zone) {
                    Some(n) => *n += 1,
                    None => {
                        per_zone.insert(zone.to_string(), 1);
                    }
                }
            }
            self.state.apply(row);
        }
        for (zone, n) in per_zone {
            let size = self.state.rrsets.get(&zone).map_or(0, BTreeMap::len);
            if n >= COMPACT_AFTER_ROWS && n * 4 >= size {
                self.state.compact_sets(&zone);
            }
        }
        Ok(())
    }
}

fn to_json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("store types serialize")
}

/// A new random id: `prefix` and 13 characters of `[A-Z0-9]`, like Route 53's.
pub fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let bytes = random_bytes::<13>();
    let mut id = String::from(prefix);
    id.extend(
        bytes
            .iter()
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char),
    );
    id
}

/// A random UUID (version 4 layout), the form of Route 53's health check ids.
pub fn new_uuid() -> String {
    crate::route53::uuid()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // SAFETY: getrandom(2) writes at most N bytes into `out`.
    let n = unsafe { libc::getrandom(out.as_mut_ptr().cast(), N, 0) };
    assert_eq!(n, N as isize, "getrandom failed");
    out
}

/// Now, as Route 53 writes times: RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, rtype: &str, value: &str) -> ResourceRecordSet {
        serde_json::from_value(serde_json::json!({
            "Name": name, "Type": rtype, "TTL": 60, "ResourceRecords": [{"Value": value}]
        }))
        .unwrap()
    }

    fn zone(id: &str, name: &str) -> HostedZone {
        HostedZone {
            id: id.into(),
            name: name.into(),
            caller_reference: "ref".into(),
            comment: None,
            created_at: now(),
            version: 1,
            imported_from: None,
            import_digest: None,
            tags: [("env".to_string(), "test".to_string())].into(),
            dnssec: None,
        }
    }

    #[test]
    fn what_is_committed_is_there_after_reopening() {
        let dir = std::env::temp_dir().join(format!("dns-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub/store.redb");
        let collection = CidrCollection {
            id: "c1".into(),
            name: "offices".into(),
            caller_reference: "r".into(),
            version: 2,
            locations: [("hq".to_string(), vec!["10.0.0.0/8".to_string()])].into(),
        };
        {
            let mut store = Store::open(&path).unwrap();
            let mut w = Write::default();
            w.put_zone(zone("Z1", "example.org.")).replace_sets(
                "Z1",
                vec![
                    set("www.example.org.", "A", "192.0.2.1"),
                    set("example.org.", "TXT", "\"x\""),
                ],
            );
            store.commit(w).unwrap();
            let mut w = Write::default();
            w.replace_sets("Z1", vec![set("www.example.org.", "A", "192.0.2.2")])
                .put_collection(collection.clone());
            store.commit(w).unwrap();
            // A second open of the same file is refused while this one holds it.
            assert!(Store::open(&path).is_err());
        }
        let store = Store::open(&path).unwrap();
        let sets = store.state().sets("Z1");
        assert_eq!(sets, vec![set("www.example.org.", "A", "192.0.2.2")]);
        assert_eq!(store.state().zone_named("EXAMPLE.org").unwrap().id, "Z1");
        assert_eq!(store.state().zones["Z1"].tags["env"], "test");
        assert_eq!(store.state().cidr["c1"], collection);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_write_past_the_kept_history_forgets_the_oldest_changes() {
        let dir = std::env::temp_dir().join(format!("dns-store-kept-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut store = Store::open(&dir.join("store.redb")).unwrap();
        let change = |sequence: u64| ChangeInfo {
            id: format!("C{sequence}"),
            status: ChangeStatus::Pending,
            submitted_at: now(),
            comment: None,
            target: None,
            sequence,
        };
        let mut w = Write::default();
        for s in 1..=KEPT_CHANGES as u64 {
            w.put_change(change(s));
        }
        store.commit(w).unwrap();
        assert_eq!(store.state().changes.len(), KEPT_CHANGES);
        let mut w = Write::default();
        w.put_change(change(KEPT_CHANGES as u64 + 1))
            .put_change(change(KEPT_CHANGES as u64 + 2));
        store.commit(w).unwrap();
        let changes = &store.state().changes;
        assert_eq!(changes.len(), KEPT_CHANGES);
        assert!(!changes.contains_key("C1") && !changes.contains_key("C2"));
        assert!(changes.contains_key("C3") && changes.contains_key("C10002"));
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rows_to_another_state_are_only_the_rows_that_differ() {
        let change = |status: ChangeStatus| ChangeInfo {
            id: "C1".into(),
            status,
            submitted_at: now(),
            comment: None,
            target: None,
            sequence: 1,
        };
        let set_key = |name: &str| format!("Z1\x1f{}", sort_key(name, "A", None));
        let mine: Vec<Row> = vec![
            Row {
                table: Table::Zones,
                key: "Z1".into(),
                object: Some(Object::Zone(zone("Z1", "example.org."))),
            },
            Row {
                table: Table::RrSets,
                key: set_key("a.example.org."),
                object: Some(Object::Set(Box::new(set(
                    "a.example.org.",
                    "A",
                    "192.0.2.1",
                )))),
            },
            Row {
                table: Table::RrSets,
                key: set_key("gone.example.org."),
                object: Some(Object::Set(Box::new(set(
                    "gone.example.org.",
                    "A",
                    "192.0.2.2",
                )))),
            },
            Row {
                table: Table::Changes,
                key: "C1".into(),
                object: Some(Object::Change(change(ChangeStatus::Pending))),
            },
        ];
        let mut state = State::default();
        for row in mine.iter().cloned() {
            state.apply(row);
        }
        // Theirs: the same zone and change (INSYNC there), `a` changed, `gone` gone, `new` new.
        let mut theirs: HashMap<(Table, String), Object> = HashMap::new();
        for row in [&mine[0], &mine[3]] {
            theirs.insert((row.table, row.key.clone()), row.object.clone().unwrap());
        }
        theirs.insert(
            (Table::Changes, "C1".into()),
            Object::Change(change(ChangeStatus::Insync)),
        );
        let a = set("a.example.org.", "A", "192.0.2.9");
        let new = set("new.example.org.", "A", "192.0.2.3");
        theirs.insert(
            (Table::RrSets, set_key("a.example.org.")),
            Object::Set(Box::new(a.clone())),
        );
        theirs.insert(
            (Table::RrSets, set_key("new.example.org.")),
            Object::Set(Box::new(new.clone())),
        );
        let mut rows = state.rows_to(&theirs);
        rows.sort_by(|x, y| x.key.cmp(&y.key));
        let got: Vec<(String, Option<Object>)> =
            rows.into_iter().map(|r| (r.key, r.object)).collect();
        assert_eq!(
            got,
            [
                (set_key("a.example.org."), Some(Object::Set(Box::new(a)))),
                (set_key("gone.example.org."), None),
                (
                    set_key("new.example.org."),
                    Some(Object::Set(Box::new(new)))
                ),
            ]
        );
        // Applied, the states hold the same rows.
        for row in state.rows_to(&theirs) {
            state.apply(row);
        }
        assert!(state.rows_to(&theirs).is_empty());
    }

    #[test]
    fn a_sort_key_gives_back_its_name() {
        for name in [
            "www.example.org.",
            "example.org.",
            "a\\.b.example.org.",
            "org.",
        ] {
            let key = sort_key(name, "A", Some("x"));
            assert_eq!(name_of_sort_key(&key), name);
        }
    }

    #[test]
    fn sets_list_in_route53_order() {
        let mut keys = [
            sort_key("www.example.org.", "A", None),
            sort_key("example.org.", "NS", None),
            sort_key("a.www.example.org.", "A", None),
            sort_key("example.org.", "A", None),
            sort_key("b.example.org.", "A", Some("2")),
            sort_key("b.example.org.", "A", Some("1")),
        ];
        keys.sort();
        let names: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "org.example\x1fA\x1f",
                "org.example\x1fNS\x1f",
                "org.example.b\x1fA\x1f1",
                "org.example.b\x1fA\x1f2",
                "org.example.www\x1fA\x1f",
                "org.example.www.a\x1fA\x1f",
            ]
        );
    }

    #[test]
    fn ids_have_route53_shapes() {
        let z = new_id("Z");
        assert_eq!(z.len(), 14);
        assert!(
            z.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
        assert_ne!(new_id("C"), new_id("C"));
        let u = new_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
