//! DNSSEC in answers from a zone signed elsewhere (RFC 4035 section 3.1), for queries with
//! the DO bit: each signed RRset goes with its RRSIGs, negative answers and wildcard
//! expansions with the NSEC or NSEC3 records that prove them, referrals with the DS (or the
//! denial that there is none). The records are the signer's; nothing is signed here.

use hickory_proto::rr::{LowerName, Name, Record, RecordType};

use crate::zone::denial::Proof;
use crate::zone::rdata_dnssec::rrsig_covers;
use crate::zone::{RrSet, Zone};

/// The RRSIGs at `source` that cover `rtype`, owned by `owner` with TTL `ttl` (an RRSIG's
/// TTL is its RRset's, RFC 4034 section 3; a wildcard's are served at the expanded name, as
/// their label count tells a validator).
pub fn signatures(
    zone: &Zone,
    source: &LowerName,
    owner: &Name,
    rtype: RecordType,
    ttl: u32,
) -> Vec<Record> {
    zone.signatures(source, rtype)
        .map(|r| Record::from_rdata(owner.clone(), ttl, r.clone()))
        .collect()
}

/// `set` at `owner` (data from `source`) into `section`, with its RRSIGs.
pub fn push_signed(
    zone: &Zone,
    section: &mut Vec<Record>,
    source: &LowerName,
    owner: &Name,
    set: &RrSet,
) {
    section.extend(
        set.rdatas
            .iter()
            .map(|r| Record::from_rdata(owner.clone(), set.ttl, r.clone())),
    );
    section.extend(signatures(zone, source, owner, set.rtype, set.ttl));
}

/// The NSEC or NSEC3 records (and their RRSIGs) that prove `proof`, into `section`.
pub fn prove(zone: &Zone, proof: &Proof, section: &mut Vec<Record>) {
    let denial = zone.denial();
    let rtype = denial.record_type();
    for owner in denial.owners(zone, proof) {
        if let Some(set) = zone.rrset(&owner, rtype) {
            push_signed(zone, section, &owner, &Name::from(owner.clone()), set);
        }
    }
}

/// The RRSIG RRset itself as an answer (qtype RRSIG, or ANY's lowest type), at `owner`: each
/// signature with the TTL of the RRset it covers, as signed. With `lowest_only` (qtype RRSIG),
/// only those over the lowest covered type: one RRset's signatures, as Knot DNS answers (in
/// RFC 8482's spirit).
pub fn push_signature_set(
    zone: &Zone,
    section: &mut Vec<Record>,
    source: &LowerName,
    owner: &Name,
    set: &RrSet,
    lowest_only: bool,
) {
    let lowest = set
        .rdatas
        .iter()
        .filter_map(rrsig_covers)
        .min_by_key(|t| u16::from(*t));
    for rdata in &set.rdatas {
        let Some(rtype) = rrsig_covers(rdata) else {
            continue;
        };
        if lowest_only && Some(rtype) != lowest {
            continue;
        }
        let ttl = zone.rrset(source, rtype).map_or(set.ttl, |s| s.ttl);
        section.push(Record::from_rdata(owner.clone(), ttl, rdata.clone()));
    }
}
