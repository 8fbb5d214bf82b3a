//! DNSSEC in answers of zones signed here ([`crate::signing`]): the answer is found as for
//! any zone, then, for a query with the DO bit, every authoritative RRset in it gets its
//! RRSIG, and a negative answer or an insecure referral gets a compact denial (RFC 9824):
//! one NSEC at the name denied, made for this answer and signed.
//!
//! - A name that does not exist is answered NOERROR with an NSEC listing RRSIG, NSEC and
//!   NXNAME (RFC 9824 section 3.2), as Route 53 answers.
//! - A wildcard expansion and every routing-policy answer are signed as they are served, at
//!   the name asked: no proof of a closer name is needed.
//! - An RRset whose records were given different TTLs (a multivalue answer drawn from record
//!   sets with different TTLs) is served and signed with the smallest.
//! - The DNSKEY RRset at the apex is the signer's, signed by each active KSK; so are CDS and
//!   CDNSKEY (RFC 7344), which tell the parent the DS records to publish.

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use crate::signing::{self, NXNAME, Signer};
use crate::zone::Zone;

/// Types the routing-policy groups at a name may have (listed in a denial at that name).
const POLICY_TYPES: [RecordType; 14] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::CAA,
    RecordType::CNAME,
    RecordType::DS,
    RecordType::HTTPS,
    RecordType::MX,
    RecordType::NAPTR,
    RecordType::PTR,
    RecordType::SRV,
    RecordType::SSHFP,
    RecordType::SVCB,
    RecordType::TLSA,
    RecordType::TXT,
];

/// The signer's key RRset `question` asks for, if it asks for one at the apex (DNSKEY,
/// CDNSKEY, CDS: answered by [`keys`], not from the zone's data).
pub fn asks_keys(zone: &Zone, signer: &Signer, question: &Query) -> Option<Vec<RData>> {
    if LowerName::new(question.name()) != LowerName::new(zone.origin()) {
        return None;
    }
    signer.apex_keys(question.query_type())
}

/// A key RRset (`keys`, what [`asks_keys`] found) as the answer, with its RRSIGs if `dnssec`.
pub fn keys(
    signer: &Signer,
    question: &Query,
    keys: Vec<RData>,
    dnssec: bool,
    response: &mut Message,
    now: u32,
) {
    response.metadata.authoritative = true;
    let owner = question.name();
    let ttl = signer.dnskey_ttl();
    if dnssec {
        let set = (question.query_type(), ttl, keys);
        response
            .answers
            .extend(with_signatures(signer, owner, set, now));
    } else {
        let records = keys
            .into_iter()
            .map(|r| Record::from_rdata(owner.clone(), ttl, r));
        response.answers.extend(records);
    }
}

/// Signs `response`, the answer to `question` from `zone` (see the module docs).
pub fn response(zone: &Zone, signer: &Signer, question: &Query, response: &mut Message, now: u32) {
    let answers = std::mem::take(&mut response.answers);
    response.answers = signed(zone, signer, answers, now);
    let additionals = std::mem::take(&mut response.additionals);
    response.additionals = signed(zone, signer, additionals, now);
    let authorities = std::mem::take(&mut response.authorities);
    if !response.metadata.authoritative {
        response.authorities = referral(zone, signer, authorities, now);
        return;
    }
    let negative = authorities
        .iter()
        .any(|r| r.record_type() == RecordType::SOA);
    response.authorities = signed(zone, signer, authorities, now);
    if !negative {
        return;
    }
    // The name denied: the question's, or the last in-zone target of its CNAME chain.
    let denied = response
        .answers
        .iter()
        .rev()
        .find_map(|r| match &r.data {
            RData::CNAME(target) => Some(target.0.clone()),
            _ => None,
        })
        .unwrap_or_else(|| question.name().clone());
    let ttl = response
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::SOA)
        .map_or(0, |r| r.ttl);
    let nsec = if response.metadata.response_code == ResponseCode::NXDomain {
        // RFC 9824 section 3.2: NOERROR, the name "exists" with nothing but its NSEC.
        response.metadata.response_code = ResponseCode::NoError;
        signing::compact_nsec(&denied, [NXNAME])
    } else {
        let present = types_at(zone, signer, &LowerName::new(&denied));
        let qtype = question.query_type();
        signing::compact_nsec(&denied, present.into_iter().filter(|t| *t != qtype))
    };
    let nsec = (RecordType::NSEC, ttl, vec![nsec]);
    response
        .authorities
        .extend(with_signatures(signer, &denied, nsec, now));
}

/// The types at `name` a denial lists: its RRsets, or (a name a wildcard answers for) the
/// wildcard's, the routing-policy groups there, and the DNSKEY at the apex.
fn types_at(zone: &Zone, signer: &Signer, name: &LowerName) -> Vec<RecordType> {
    let source = match zone.node(name) {
        Some(_) => name.clone(),
        None if zone.is_empty_non_terminal(name) => name.clone(),
        None => Zone::wildcard_at(&zone.closest_encloser(name))
            .filter(|star| zone.node(star).is_some())
            .unwrap_or_else(|| name.clone()),
    };
    let mut types: Vec<RecordType> = zone
        .node(&source)
        .unwrap_or_default()
        .iter()
        .map(|s| s.rtype)
        .collect();
    types.extend(
        POLICY_TYPES
            .into_iter()
            .filter(|t| zone.policy_group(&source, *t).is_some()),
    );
    if *name == LowerName::new(signer.apex()) {
        types.extend([RecordType::DNSKEY, RecordType::CDNSKEY, RecordType::CDS]);
    }
    types.sort_by_key(|t| u16::from(*t));
    types.dedup();
    types
}

/// A referral's authority section: the NS RRset as it is (the child's data), then the DS
/// RRset signed, or the signed denial that there is one (an insecure delegation).
fn referral(zone: &Zone, signer: &Signer, authorities: Vec<Record>, now: u32) -> Vec<Record> {
    let Some(cut) = authorities
        .iter()
        .find(|r| r.record_type() == RecordType::NS)
        .map(|r| r.name.clone())
    else {
        return authorities;
    };
    let mut out = authorities;
    let lower = LowerName::new(&cut);
    match zone.rrset(&lower, RecordType::DS) {
        Some(ds) => {
            let set = (RecordType::DS, ds.ttl, ds.rdatas.clone());
            out.extend(with_signatures(signer, &cut, set, now));
        }
        None => {
            let (soa_ttl, soa) = zone.soa();
            let ttl = match soa {
                RData::SOA(soa) => soa_ttl.min(soa.minimum),
                _ => soa_ttl,
            };
            let nsec = signing::compact_nsec(&cut, [RecordType::NS]);
            let set = (RecordType::NSEC, ttl, vec![nsec]);
            out.extend(with_signatures(signer, &cut, set, now));
        }
    }
    out
}

/// `records` (RRsets one after another, as the answer was built) with an RRSIG after each
/// RRset this zone is authoritative for: not the NS RRset of a delegation or what lies below
/// it (glue), which are the child's.
fn signed(zone: &Zone, signer: &Signer, records: Vec<Record>, now: u32) -> Vec<Record> {
    let mut out = Vec::with_capacity(records.len() * 2);
    let mut rest = records.as_slice();
    while let Some(first) = rest.first() {
        let owner = LowerName::new(&first.name);
        let rtype = first.record_type();
        let len = rest
            .iter()
            .take_while(|r| r.record_type() == rtype && LowerName::new(&r.name) == owner)
            .count();
        let (set, tail) = rest.split_at(len);
        rest = tail;
        let ttl = set.iter().map(|r| r.ttl).min().unwrap_or(0);
        out.extend(set.iter().map(|r| {
            let mut r = r.clone();
            r.ttl = ttl;
            r
        }));
        if !authoritative(zone, &owner, rtype) {
            continue;
        }
        let rdatas: Vec<RData> = set.iter().map(|r| r.data.clone()).collect();
        let name: &Name = &first.name;
        out.extend(
            signer
                .sign(name, rtype, ttl, &rdatas, now)
                .into_iter()
                .map(|r| Record::from_rdata(name.clone(), ttl, r)),
        );
    }
    out
}

/// The RRset (type, TTL, data) at `owner` as records, then its RRSIGs.
fn with_signatures(
    signer: &Signer,
    owner: &Name,
    (rtype, ttl, rdatas): (RecordType, u32, Vec<RData>),
    now: u32,
) -> Vec<Record> {
    let sigs = signer.sign(owner, rtype, ttl, &rdatas, now);
    rdatas
        .into_iter()
        .chain(sigs)
        .map(|r| Record::from_rdata(owner.clone(), ttl, r))
        .collect()
}

/// True if an RRset of `rtype` at `owner` is this zone's own data, to be signed.
fn authoritative(zone: &Zone, owner: &LowerName, rtype: RecordType) -> bool {
    if matches!(rtype, RecordType::RRSIG | RecordType::OPT) {
        return false;
    }
    if !LowerName::new(zone.origin()).zone_of(owner) {
        return false;
    }
    !zone.is_at_or_below_cut(owner) || (rtype == RecordType::DS && zone.is_delegation(owner))
}
