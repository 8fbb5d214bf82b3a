//! The map compiler: catalog in, the exact contents of the XDP answer maps out. Pure; the map
//! writer ([`crate::maps`]) installs what this returns.
//!
//! An entry exists for every (name, A|AAAA) whose userspace answer is exactly "this RRset, AA,
//! nothing else": a name that owns the RRset, is authoritative (not at or below a delegation)
//! and belongs to the most specific hosted zone. CNAMEs, wildcards, delegations and misses are
//! left out, so XDP passes them up. An RRset too large for [`MAX_ANSWER_BYTES`] is left out too.

use std::collections::HashMap;

use dns_common::{
    AnswerKey, AnswerSet, CLASS_IN, MAX_ANSWER_BYTES, NAME_BYTES, csum_add_bytes, csum_fold,
};
use hickory_proto::rr::{LowerName, Name, RData, RecordType};

use crate::answer::Catalog;
use crate::zone::RrSet;

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

/// Compiles every zone of `catalog` into answer map entries.
pub fn compile(catalog: &Catalog) -> (AnswerTable, CompileReport) {
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
            if zone.is_at_or_below_cut(name)
                || !catalog
                    .find(name)
                    .is_some_and(|z| z.origin() == zone.origin())
            {
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
    report.entries = table.len();
    (table, report)
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
    let mut value = AnswerSet {
        ancount: 0,
        len: 0,
        csum: 0,
        _pad: 0,
        data: [0; MAX_ANSWER_BYTES],
    };
    let mut at = 0usize;
    for rdata in &set.rdatas {
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
        rr[2..4].copy_from_slice(&u16::from(set.rtype).to_be_bytes());
        rr[4..6].copy_from_slice(&CLASS_IN.to_be_bytes());
        rr[6..10].copy_from_slice(&set.ttl.to_be_bytes());
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
