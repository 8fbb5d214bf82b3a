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
        for table in [ZONES, RRSETS, CHECKS, CHANGES, CIDR_COLLECTIONS] {
            txn.open_table(table).map_err(|e| open_err(boxed(e)))?;
        }
        txn.commit().map_err(|e| open_err(boxed(e)))?;
        let mut store = Store {
            db: Some(db),
            path: path.to_path_buf(),
            state: State::default(),
        };
        store.state = store.read_all().map_err(|e| match e {
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

    fn read_all(&self) -> Result<State, StoreError> {
        let txn = self.db()?.begin_read().map_err(boxed)?;
        let mut state = State::default();
        let corrupt = |what: String, source| StoreError::Corrupt {
            path: self.path.clone(),
            what,
            source,
        };
        for entry in txn
            .open_table(ZONES)
            .map_err(boxed)?
            .iter()
            .map_err(boxed)?
        {
            let (k, v) = entry.map_err(boxed)?;
            let zone: HostedZone = serde_json::from_slice(v.value())
                .map_err(|e| corrupt(format!("zone {}", k.value()), e))?;
            state.zones.insert(k.value().to_string(), zone);
        }
        for entry in txn
            .open_table(RRSETS)
            .map_err(boxed)?
            .iter()
            .map_err(boxed)?
        {
            let (k, v) = entry.map_err(boxed)?;
            let key = k.value();
            let (zone, sort) = key.split_once('\x1f').unwrap_or((key, ""));
            let set: ResourceRecordSet = serde_json::from_slice(v.value())
                .map_err(|e| corrupt(format!("record set {key:?}"), e))?;
            state
                .rrsets
                .entry(zone.to_string())
                .or_default()
                .insert(sort.to_string(), set);
        }
        for entry in txn
            .open_table(CHECKS)
            .map_err(boxed)?
            .iter()
            .map_err(boxed)?
        {
            let (k, v) = entry.map_err(boxed)?;
            let check: StoredCheck = serde_json::from_slice(v.value())
                .map_err(|e| corrupt(format!("health check {}", k.value()), e))?;
            state.checks.insert(k.value().to_string(), check);
        }
        for entry in txn
            .open_table(CHANGES)
            .map_err(boxed)?
            .iter()
            .map_err(boxed)?
        {
            let (k, v) = entry.map_err(boxed)?;
            let change: ChangeInfo = serde_json::from_slice(v.value())
                .map_err(|e| corrupt(format!("change {}", k.value()), e))?;
            state.changes.insert(k.value().to_string(), change);
        }
        for entry in txn
            .open_table(CIDR_COLLECTIONS)
            .map_err(boxed)?
            .iter()
            .map_err(boxed)?
        {
            let (k, v) = entry.map_err(boxed)?;
            let collection: CidrCollection = serde_json::from_slice(v.value())
                .map_err(|e| corrupt(format!("CIDR collection {}", k.value()), e))?;
            state.cidr.insert(k.value().to_string(), collection);
        }
        Ok(state)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// Writes `write` in one transaction, synced to disk before this returns, then updates
    /// the in-memory state. On error nothing of it is stored or visible.
    pub fn commit(&mut self, write: Write) -> Result<(), StoreError> {
        self.commit_with(write, Durability::Immediate)
    }

    /// Like [`commit`](Self::commit) without waiting for the disk: for what is re-derived
    /// after a crash anyway (a change turning INSYNC).
    pub fn commit_lazily(&mut self, write: Write) -> Result<(), StoreError> {
        self.commit_with(write, Durability::Eventual)
    }

    fn commit_with(&mut self, write: Write, durability: Durability) -> Result<(), StoreError> {
        if write.is_empty() {
            return Ok(());
        }
        let mut next_sets: HashMap<String, Option<BTreeMap<String, ResourceRecordSet>>> =
            HashMap::new();
        let mut txn = self.db()?.begin_write().map_err(boxed)?;
        txn.set_durability(durability);
        {
            let mut zones = txn.open_table(ZONES).map_err(boxed)?;
            for (id, zone) in &write.zones {
                match zone {
                    Some(z) => {
                        zones
                            .insert(id.as_str(), to_json(z).as_slice())
                            .map_err(boxed)?;
                    }
                    None => {
                        zones.remove(id.as_str()).map_err(boxed)?;
                    }
                }
            }
            let mut rrsets = txn.open_table(RRSETS).map_err(boxed)?;
            for (zone_id, sets) in &write.sets {
                let old = self.state.rrsets.get(zone_id);
                let new: Option<BTreeMap<String, ResourceRecordSet>> = sets
                    .as_ref()
                    .map(|sets| sets.iter().map(|s| (set_sort_key(s), s.clone())).collect());
                for (sort, set) in old.into_iter().flatten() {
                    let kept = new.as_ref().and_then(|n| n.get(sort)) == Some(set);
                    if !kept {
                        rrsets
                            .remove(format!("{zone_id}\x1f{sort}").as_str())
                            .map_err(boxed)?;
                    }
                }
                for (sort, set) in new.iter().flatten() {
                    if old.and_then(|o| o.get(sort)) != Some(set) {
                        rrsets
                            .insert(
                                format!("{zone_id}\x1f{sort}").as_str(),
                                to_json(set).as_slice(),
                            )
                            .map_err(boxed)?;
                    }
                }
                next_sets.insert(zone_id.clone(), new);
            }
            for (zone_id, sort, set) in &write.set_changes {
                let row = format!("{zone_id}\x1f{sort}");
                match set {
                    Some(set) => {
                        rrsets
                            .insert(row.as_str(), to_json(set).as_slice())
                            .map_err(boxed)?;
                    }
                    None => {
                        rrsets.remove(row.as_str()).map_err(boxed)?;
                    }
                }
            }
            let mut checks = txn.open_table(CHECKS).map_err(boxed)?;
            for (id, check) in &write.checks {
                match check {
                    Some(c) => {
                        checks
                            .insert(id.as_str(), to_json(c).as_slice())
                            .map_err(boxed)?;
                    }
                    None => {
                        checks.remove(id.as_str()).map_err(boxed)?;
                    }
                }
            }
            let mut changes = txn.open_table(CHANGES).map_err(boxed)?;
            for change in &write.changes {
                changes
                    .insert(change.id.as_str(), to_json(change).as_slice())
                    .map_err(boxed)?;
            }
            for id in &write.forget {
                changes.remove(id.as_str()).map_err(boxed)?;
            }
            let mut cidr = txn.open_table(CIDR_COLLECTIONS).map_err(boxed)?;
            for (id, collection) in &write.cidr {
                match collection {
                    Some(c) => {
                        cidr.insert(id.as_str(), to_json(c).as_slice())
                            .map_err(boxed)?;
                    }
                    None => {
                        cidr.remove(id.as_str()).map_err(boxed)?;
                    }
                }
            }
        }
        txn.commit().map_err(boxed)?;
        // Stored: now visible.
        for (id, zone) in write.zones {
            match zone {
                Some(z) => self.state.zones.insert(id, z),
                None => self.state.zones.remove(&id),
            };
        }
        for (id, sets) in next_sets {
            match sets {
                Some(s) => self.state.rrsets.insert(id, s),
                None => self.state.rrsets.remove(&id),
            };
        }
        for (id, sort, set) in write.set_changes {
            let sets = self.state.rrsets.entry(id).or_default();
            match set {
                Some(set) => sets.insert(sort, set),
                None => sets.remove(&sort),
            };
        }
        for (id, check) in write.checks {
            match check {
                Some(c) => self.state.checks.insert(id, c),
                None => self.state.checks.remove(&id),
            };
        }
        for change in write.changes {
            self.state.changes.insert(change.id.clone(), change);
        }
        for id in write.forget {
            self.state.changes.remove(&id);
        }
        for (id, collection) in write.cidr {
            match collection {
                Some(c) => self.state.cidr.insert(id, c),
                None => self.state.cidr.remove(&id),
            };
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
