//! The map compiler: catalog in, the exact contents of the XDP answer maps out. Pure; the map
//! writer ([`crate::maps`]) installs what this returns.
//!
//! An entry exists for every (name, A|AAAA) whose userspace answer is exactly "these records,
//! AA, nothing else": a name that owns the data, is authoritative (not at or below a delegation)
//! and belongs to the most specific hosted zone. CNAMEs, wildcards, delegations and misses are
//! left out, so XDP passes them up. An RRset too large for [`MAX_ANSWER_BYTES`] is left out too.
//!
//! Routing-policy groups whose answer depends only on health ([`policy::is_static`]: simple and
//! failover record sets, alias trees of them) are compiled too: the policy engine runs here,
//! with the current health, and its answer becomes the entry. A health change recompiles just
//! those entries ([`policy_changes`]).

use std::collections::HashMap;

use dns_common::{
    AnswerKey, AnswerSet, CLASS_IN, MAX_ANSWER_BYTES, NAME_BYTES, csum_add_bytes, csum_fold,
};
use hickory_proto::rr::{LowerName, Name, RData, RecordType};

use crate::answer::Catalog;
use crate::health::HealthState;
use crate::policy;
use crate::zone::{RrSet, Zone};

/// The desired contents of one answer map buffer.
pub type AnswerTable = HashMap<AnswerKey, AnswerSet>;

/// What the compiler left out, for logs and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompileReport {
    /// Entries compiled.
    pub entries: usize,
    /// RRsets larger than an [`AnswerSet`] holds (answered by userspace).
    pub too_large: usize,
}

/// Compiles every zone of `catalog` into answer map entries, routing-policy groups with
/// `health`.
pub fn compile(catalog: &Catalog, health: &HealthState) -> (AnswerTable, CompileReport) {
    let is_address = |s: &RrSet| s.rtype == RecordType::A || s.rtype == RecordType::AAAA;
    // Sized up front: growing a table of ~500-byte entries doubles peak memory.
    let candidates = catalog
        .zones()
        .flat_map(|z| z.nodes())
        .map(|(_, sets)| sets.iter().filter(|s| is_address(s)).count())
        .sum();
    let mut table = AnswerTable::with_capacity(candidates);
    let mut report = CompileReport::default();
    for zone in catalog.zones() {
        for (name, sets) in zone.nodes() {
            if !answers_here(catalog, zone, name) {
                continue;
            }
            for set in sets.iter().filter(|s| is_address(s)) {
                match render(set) {
                    Some(value) => {
                        table.insert(key(name, set.rtype), value);
                    }
                    None => report.too_large += 1,
                }
            }
        }
    }
    for (k, entry) in policy_entries(catalog, health) {
        match entry {
            Some(value) => {
                table.insert(k, value);
            }
            None => report.too_large += 1,
        }
    }
    report.entries = table.len();
    (table, report)
}

/// True if `name` in `zone` answers from this zone's data: authoritative, not delegated, and
/// no more specific hosted zone holds it.
fn answers_here(catalog: &Catalog, zone: &Zone, name: &LowerName) -> bool {
    !zone.is_at_or_below_cut(name)
        && catalog
            .find(name)
            .is_some_and(|z| z.origin() == zone.origin())
}

/// Every compilable policy group's key with its entry under `health` (`None`: the answer
/// exists but cannot be an entry: empty, or too large).
fn policy_entries<'c>(
    catalog: &'c Catalog,
    health: &'c HealthState,
) -> impl Iterator<Item = (AnswerKey, Option<AnswerSet>)> + 'c {
    catalog.zones().flat_map(move |zone| {
        zone.policy_groups()
            .filter(move |(name, rtype, sets)| {
                matches!(*rtype, RecordType::A | RecordType::AAAA)
                    && !name.is_wildcard()
                    && answers_here(catalog, zone, name)
                    && policy::is_static(sets, *rtype, zone)
            })
            .map(move |(name, rtype, sets)| {
                (key(name, rtype), policy_answer(zone, sets, rtype, health))
            })
    })
}

/// The policy engine's answer for a static group, rendered.
fn policy_answer(
    zone: &Zone,
    sets: &[policy::RecordSet],
    rtype: RecordType,
    health: &HealthState,
) -> Option<AnswerSet> {
    // A static group consults neither the client nor the random source.
    let nowhere = policy::ClientLocation {
        addr: std::net::Ipv4Addr::UNSPECIFIED.into(),
        prefix_len: 0,
        continent: None,
        country: None,
        subdivision: None,
        coordinates: None,
    };
    let ctx = policy::Context {
        health,
        client: &nowhere,
        latency: &crate::location::Locations::default(),
        cidr: &policy::CidrCollections::default(),
        groups: zone,
    };
    let answer = policy::answer(sets, rtype, &ctx, &mut policy::SplitMix64(0));
    render_records(rtype, answer.records.iter().map(|(ttl, r)| (*ttl, r)))
}

/// The map change that makes the routing-policy entries match `health`: (upserts, deletes)
/// against what is `installed`. Only entries whose answer changed are in it.
pub fn policy_changes(
    catalog: &Catalog,
    health: &HealthState,
    installed: &AnswerTable,
) -> (Vec<(AnswerKey, AnswerSet)>, Vec<AnswerKey>) {
    let mut upserts = Vec::new();
    let mut deletes = Vec::new();
    for (k, entry) in policy_entries(catalog, health) {
        match entry {
            Some(value) if installed.get(&k) != Some(&value) => upserts.push((k, value)),
            None if installed.contains_key(&k) => deletes.push(k),
            _ => {}
        }
    }
    (upserts, deletes)
}

/// The map key of (`name`, `rtype`): the lower-cased wire name, zero padded.
pub fn key(name: &LowerName, rtype: RecordType) -> AnswerKey {
    let mut key = AnswerKey::zeroed();
    let name = Name::from(name.clone());
    let mut at = 0;
    for label in name.iter() {
        key.name[at] = label.len() as u8;
        for (i, b) in label.iter().enumerate() {
            key.name[at + 1 + i] = b.to_ascii_lowercase();
        }
        at += 1 + label.len();
    }
    debug_assert!(at < NAME_BYTES, "a Name is at most 255 bytes on the wire");
    key.qtype = u16::from(rtype);
    key
}

/// Renders an A/AAAA RRset as answer-section bytes: owner 0xC00C (the question), type, class
/// IN, TTL, RDLENGTH, address. `None` if it does not fit.
pub fn render(set: &RrSet) -> Option<AnswerSet> {
    render_records(set.rtype, set.rdatas.iter().map(|r| (set.ttl, r)))
}

/// Renders (TTL, address) records of `rtype` like [`render`]; `None` if there are none or
/// they do not fit.
pub fn render_records<'r>(
    rtype: RecordType,
    records: impl Iterator<Item = (u32, &'r RData)>,
) -> Option<AnswerSet> {
    let mut value = AnswerSet {
        ancount: 0,
        len: 0,
        csum: 0,
        _pad: 0,
        data: [0; MAX_ANSWER_BYTES],
    };
    let mut at = 0usize;
    for (ttl, rdata) in records {
        let address: Vec<u8> = match rdata {
            RData::A(a) => a.0.octets().to_vec(),
            RData::AAAA(a) => a.0.octets().to_vec(),
            _ => return None,
        };
        let len = 12 + address.len();
        if at + len > MAX_ANSWER_BYTES {
            return None;
        }
        let rr = &mut value.data[at..at + len];
        rr[0..2].copy_from_slice(&[0xc0, 0x0c]);
        rr[2..4].copy_from_slice(&u16::from(rtype).to_be_bytes());
        rr[4..6].copy_from_slice(&CLASS_IN.to_be_bytes());
        rr[6..10].copy_from_slice(&ttl.to_be_bytes());
        rr[10..12].copy_from_slice(&(address.len() as u16).to_be_bytes());
        rr[12..].copy_from_slice(&address);
        at += len;
        value.ancount += 1;
    }
    if value.ancount == 0 {
        return None;
    }
    value.len = at as u16;
    value.csum = csum_fold(csum_add_bytes(0, &value.data[..at]));
    Some(value)
}
