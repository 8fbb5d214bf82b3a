//! The userspace answer engine: query bytes in, response bytes out, a pure function of the
//! catalog. The UDP/TCP server and the tests call the same [`respond`].
//!
//! For an A/AAAA query at a name that owns that RRset, the bytes are exactly what the XDP
//! program writes (the fixture tests compare them): the question echoed in the client's case,
//! each answer's owner compressed to the question (0xC00C), AA set, RD and CD copied, and an
//! OPT record (this server's payload size, version 0, DO copied, no options) iff the query had
//! one.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use crate::health::HealthState;
use crate::location::Locations;
use crate::policy::{self, Context, SplitMix64};
use crate::server::{dnssec, sign, tsig};
use crate::zone::denial::Proof;
use crate::zone::{Catalog, RrSet, Zone};

/// Longest CNAME chain followed inside the zone.
const MAX_CNAME_CHAIN: usize = 8;
/// Smallest UDP payload every client accepts (RFC 1035 section 4.2.1).
const MIN_UDP_PAYLOAD: u16 = dns_common::MIN_UDP_PAYLOAD;

/// How the query arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Settings of the answer engine.
#[derive(Clone, Debug)]
pub struct AnswerOptions {
    /// UDP payload size advertised in OPT and the most we send over UDP to EDNS clients.
    pub edns_udp_size: u16,
    /// TSIG keys signed queries are verified with (see [`crate::server::tsig`]).
    pub tsig: std::sync::Arc<crate::server::tsig::Keys>,
}

impl Default for AnswerOptions {
    fn default() -> Self {
        Self {
            edns_udp_size: 1232,
            tsig: Default::default(),
        }
    }
}

/// What the query's header says, read before a full parse so even a malformed query can be
/// answered with FORMERR.
struct RawHeader {
    id: u16,
    flags: u16,
}

/// Answers one DNS message. `None` means send nothing: the input is a response (QR=1) or too
/// short to carry a header.
pub fn respond(
    catalog: &Catalog,
    health: &HealthState,
    options: &AnswerOptions,
    query: &[u8],
    transport: Transport,
    client: IpAddr,
) -> Option<Vec<u8>> {
    RANDOM.with(|rng| {
        respond_with(
            catalog,
            health,
            options,
            query,
            transport,
            client,
            &mut *rng.borrow_mut(),
        )
    })
}

/// [`respond`] with the routing policies' random choices taken from `rng` (tests pin them to
/// compare with the XDP answer for one slot).
pub fn respond_with(
    catalog: &Catalog,
    health: &HealthState,
    options: &AnswerOptions,
    query: &[u8],
    transport: Transport,
    client: IpAddr,
    rng: &mut dyn policy::RandomSource,
) -> Option<Vec<u8>> {
    if query.len() < dns_common::DNS_HEADER_LEN {
        return None;
    }
    let raw = RawHeader {
        id: u16::from_be_bytes([query[0], query[1]]),
        flags: u16::from_be_bytes([query[2], query[3]]),
    };
    if raw.flags & 0x8000 != 0 {
        return None;
    }
    let opcode = OpCode::from_u8(((raw.flags >> 11) & 0xf) as u8);
    let request = match Message::from_vec(query) {
        Ok(m) => m,
        Err(_) => return encode(&error_response(&raw, opcode, ResponseCode::FormErr)),
    };
    // A signed query is verified before anything else (RFC 8945 section 5.2), and its answer
    // signed after.
    let session = match tsig::verify(&options.tsig, &request, query) {
        Ok(session) => session,
        Err(refused) => return Some(refused),
    };
    let reserve = session.as_ref().map_or(0, |(s, _)| s.reserve());
    let bytes = answer_bytes(
        catalog, health, options, &raw, &request, client, rng, transport, reserve,
    )?;
    match session {
        Some((mut s, now)) => s.sign(bytes, now),
        None => Some(bytes),
    }
}

/// The answer's bytes within the client's size, less `reserve`.
#[allow(clippy::too_many_arguments)]
fn answer_bytes(
    catalog: &Catalog,
    health: &HealthState,
    options: &AnswerOptions,
    raw: &RawHeader,
    request: &Message,
    client: IpAddr,
    rng: &mut dyn policy::RandomSource,
    transport: Transport,
    reserve: usize,
) -> Option<Vec<u8>> {
    let response = answer_message(catalog, health, options, raw, request, client, rng);
    let bytes = encode(&response)?;
    let limit = match (transport, &request.edns) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => usize::from(MIN_UDP_PAYLOAD),
        (Transport::Udp, Some(edns)) => usize::from(
            edns.max_payload()
                .min(options.edns_udp_size)
                .max(MIN_UDP_PAYLOAD),
        ),
    };
    if bytes.len() + reserve <= limit {
        return Some(bytes);
    }
    // RFC 2181 section 9: set TC rather than send a partial RRset; the client retries on TCP.
    encode(&response.truncate())
}

fn encode(message: &Message) -> Option<Vec<u8>> {
    message.to_vec().ok()
}

fn error_response(raw: &RawHeader, opcode: OpCode, rcode: ResponseCode) -> Message {
    let mut m = Message::error_msg(raw.id, opcode, rcode);
    m.metadata.recursion_desired = raw.flags & 0x0100 != 0;
    m.metadata.checking_disabled = raw.flags & 0x0010 != 0;
    m
}

fn answer_message(
    catalog: &Catalog,
    health: &HealthState,
    options: &AnswerOptions,
    raw: &RawHeader,
    request: &Message,
    client: IpAddr,
    rng: &mut dyn policy::RandomSource,
) -> Message {
    let opcode = request.metadata.op_code;
    let mut response = error_response(raw, opcode, ResponseCode::NoError);
    response.add_queries(request.queries.iter().cloned());
    if let Some(edns) = &request.edns {
        let mut ours = Edns::new();
        ours.set_max_payload(options.edns_udp_size.max(MIN_UDP_PAYLOAD));
        ours.set_version(0);
        ours.set_dnssec_ok(edns.flags().dnssec_ok);
        response.set_edns(ours);
        if edns.version() > 0 {
            // RFC 6891 section 6.1.3.
            response.metadata.response_code = ResponseCode::BADVERS;
            return response;
        }
    }
    if opcode != OpCode::Query {
        // RD is copied (RFC 1035 4.1.1); CD only has a meaning for queries (RFC 4035 3.2.2),
        // so an opcode we do not know gets it clear, as Knot answers.
        response.metadata.checking_disabled = false;
        response.metadata.response_code = ResponseCode::NotImp;
        return response;
    }
    let [question] = request.queries.as_slice() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response;
    };
    if question.query_class() != DNSClass::IN {
        response.metadata.response_code = ResponseCode::Refused;
        return response;
    }
    if matches!(question.query_type(), RecordType::AXFR | RecordType::IXFR) {
        // Zone transfers are not offered (RFC 5936 section 2.2.1 lets a server refuse them).
        response.metadata.response_code = ResponseCode::Refused;
        return response;
    }
    let qname = LowerName::new(question.name());
    let Some(zone) = catalog.find(&qname) else {
        // Never an open resolver.
        response.metadata.response_code = ResponseCode::Refused;
        return response;
    };
    catalog.count(zone);
    // RFC 7871: the client's subnet when the query carries one, else the source address.
    let ecs = request
        .edns
        .as_ref()
        .and_then(|e| match e.options().get(EdnsCode::Subnet) {
            Some(EdnsOption::Subnet(subnet)) => Some(*subnet),
            _ => None,
        });
    // Where the client is gets looked up only if a routing policy asks (see `route`).
    let client = match ecs {
        Some(subnet) if !valid_subnet(&subnet) => {
            response.metadata.response_code = ResponseCode::FormErr;
            return response;
        }
        Some(subnet) if subnet.source_prefix() > 0 => (subnet.addr(), subnet.source_prefix()),
        _ => (client, full_prefix(client)),
    };
    let mut scope = 0;
    // DNSSEC records go to DO queries for signed zones (RFC 3225, RFC 4035 section 3.1): a
    // zone signed elsewhere holds them, one signed here gets them as it is answered.
    let dnssec_ok = request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
    let signer = catalog.signer(zone);
    let now = crate::signing::unix_now;
    match signer.and_then(|s| Some((s, sign::asks_keys(zone, s, question)?))) {
        Some((signer, keys)) => {
            sign::keys(signer, question, keys, dnssec_ok, &mut response, now());
        }
        None => {
            resolve_in_zone(
                zone,
                question,
                client,
                &Inputs {
                    locations: catalog.locations(),
                    health,
                    rng: std::cell::RefCell::new(rng),
                },
                dnssec_ok && signer.is_none() && zone.is_signed(),
                &mut scope,
                &mut response,
            );
            if let Some(signer) = signer
                && dnssec_ok
            {
                sign::response(zone, signer, question, &mut response, now());
            }
        }
    }
    if let (Some(subnet), Some(edns)) = (ecs, response.edns.as_mut()) {
        // RFC 7871 section 7.2.1: echo family, source prefix and address; the scope says how
        // much of the address the answer depended on (at most the source prefix).
        let scope = if subnet.source_prefix() == 0 {
            0
        } else {
            scope.min(subnet.source_prefix())
        };
        let echo = ClientSubnet::new(subnet.addr(), subnet.source_prefix(), scope);
        edns.options_mut().insert(EdnsOption::Subnet(echo));
    }
    response
}

fn to_record(owner: &Name, set: &RrSet, rdata: &RData) -> Record {
    Record::from_rdata(owner.clone(), set.ttl, rdata.clone())
}

fn push_set(section: &mut Vec<Record>, owner: &Name, set: &RrSet) {
    section.extend(set.rdatas.iter().map(|r| to_record(owner, set, r)));
}

/// How an answer carries DNSSEC: not at all, or (a DO query to a signed zone) with RRSIGs and
/// NSEC proofs.
#[derive(Clone, Copy)]
struct Signed<'z>(Option<&'z Zone>);

impl Signed<'_> {
    /// `set` (data at `source`) into `section` at `owner`, with its RRSIGs if signed.
    fn push(&self, section: &mut Vec<Record>, source: &LowerName, owner: &Name, set: &RrSet) {
        match self.0 {
            Some(zone) => dnssec::push_signed(zone, section, source, owner, set),
            None => push_set(section, owner, set),
        }
    }

    /// An RRset that answers a question (of type `qtype`): an RRSIG RRset asked for keeps
    /// each signature's TTL ([`dnssec::push_signature_set`]); others as [`push`](Self::push).
    fn answer(
        &self,
        zone: &Zone,
        section: &mut Vec<Record>,
        (source, owner): (&LowerName, &Name),
        set: &RrSet,
        qtype: RecordType,
    ) {
        if set.rtype == RecordType::RRSIG {
            let lowest_only = qtype == RecordType::RRSIG;
            dnssec::push_signature_set(zone, section, source, owner, set, lowest_only);
        } else {
            self.push(section, source, owner, set);
        }
    }

    /// The NSEC or NSEC3 records that prove `proof` into `section`, if signed.
    fn prove(&self, proof: &Proof, section: &mut Vec<Record>) {
        if let Some(zone) = self.0 {
            dnssec::prove(zone, proof, section);
        }
    }

    /// For an answer from the wildcard `source` at `name`, the proof that no closer name
    /// matched (RFC 4035 3.1.3.3, RFC 5155 7.2.6), if signed; nothing for a name's own data.
    fn prove_expansion(&self, name: &LowerName, source: &LowerName, section: &mut Vec<Record>) {
        if self.0.is_some() && source != name {
            let proof = Proof::Wildcard {
                name: name.clone(),
                star: source.clone(),
            };
            self.prove(&proof, section);
        }
    }
}

/// What proves that `name`, answered from `source` (itself, or the wildcard covering it), has
/// no data of the type asked (RFC 4035 3.1.3.1 and 3.1.3.4, RFC 5155 7.2.3 and 7.2.5).
fn no_data(name: &LowerName, source: &LowerName) -> Proof {
    if source == name {
        Proof::NoData(name.clone())
    } else {
        Proof::WildcardNoData {
            name: name.clone(),
            star: source.clone(),
        }
    }
}

/// RFC 1034 section 4.3.2's algorithm, for one zone.
fn resolve_in_zone(
    zone: &Zone,
    question: &Query,
    client: (IpAddr, u8),
    inputs: &Inputs<'_>,
    dnssec: bool,
    scope: &mut u8,
    response: &mut Message,
) {
    let signed = Signed(dnssec.then_some(zone));
    response.metadata.authoritative = true;
    let qtype = question.query_type();
    // Owner names in the answer keep the client's spelling of the question name.
    let mut owner = question.name().clone();
    let mut name = LowerName::new(&owner);

    for _ in 0..MAX_CNAME_CHAIN {
        // DS at a delegation point is the parent's data (RFC 4035 section 3.1.4.1).
        let parent_side_ds = qtype == RecordType::DS && zone.is_delegation(&name);
        if zone.is_at_or_below_cut(&name) && !parent_side_ds {
            if response.answers.is_empty() {
                referral(zone, &name, signed, response);
            }
            return;
        }
        // `source` owns the data that answers: the name itself, or the wildcard covering it.
        let (node, source) = match zone.node(&name) {
            Some(node) => (node, name.clone()),
            None if zone.is_empty_non_terminal(&name) => {
                let proof = || Proof::NoData(name);
                return negative(zone, response, ResponseCode::NoError, signed, proof);
            }
            None => match wildcard_node(zone, &name) {
                Some(found) => found,
                None => {
                    let proof = || Proof::NoName(name);
                    return negative(zone, response, ResponseCode::NXDomain, signed, proof);
                }
            },
        };
        if let Some(group) = zone.policy_group(&source, qtype) {
            let records = route(zone, group, qtype, client, inputs, scope);
            if records.is_empty() {
                // E.g. geolocation without a match and no default: NOERROR, no answer.
                return negative(zone, response, ResponseCode::NoError, signed, || {
                    no_data(&name, &source)
                });
            }
            response.answers.extend(
                records
                    .into_iter()
                    .map(|(ttl, rdata)| Record::from_rdata(owner.clone(), ttl, rdata)),
            );
            return;
        }
        if qtype == RecordType::ANY {
            // RFC 8482 section 4.2: one RRset rather than all of them; like Knot DNS, the one
            // with the lowest type code.
            match node.iter().min_by_key(|s| u16::from(s.rtype)) {
                Some(set) => {
                    signed.answer(zone, &mut response.answers, (&source, &owner), set, qtype);
                    signed.prove_expansion(&name, &source, &mut response.authorities);
                    add_target_addresses(zone, set, signed, &mut response.additionals);
                }
                None => negative(zone, response, ResponseCode::NoError, signed, || {
                    no_data(&name, &source)
                }),
            }
            return;
        }
        if let Some(set) = node.iter().find(|s| s.rtype == qtype) {
            signed.answer(zone, &mut response.answers, (&source, &owner), set, qtype);
            signed.prove_expansion(&name, &source, &mut response.authorities);
            add_target_addresses(zone, set, signed, &mut response.additionals);
            return;
        }
        let target = if let Some(group) = zone.policy_group(&source, RecordType::CNAME) {
            // A policy-routed CNAME: the engine picks it, then it is followed like any CNAME.
            let records = route(zone, group, RecordType::CNAME, client, inputs, scope);
            response.answers.extend(
                records
                    .iter()
                    .map(|(ttl, rdata)| Record::from_rdata(owner.clone(), *ttl, rdata.clone())),
            );
            records.into_iter().find_map(|(_, r)| match r {
                RData::CNAME(t) => Some(t.0),
                _ => None,
            })
        } else {
            let Some(cname) = node.iter().find(|s| s.rtype == RecordType::CNAME) else {
                return negative(zone, response, ResponseCode::NoError, signed, || {
                    no_data(&name, &source)
                });
            };
            signed.push(&mut response.answers, &source, &owner, cname);
            signed.prove_expansion(&name, &source, &mut response.authorities);
            match cname.rdatas.first() {
                Some(RData::CNAME(target)) => Some(target.0.clone()),
                _ => None,
            }
        };
        let Some(target) = target else { return };
        owner = target;
        name = LowerName::new(&owner);
        if !LowerName::new(zone.origin()).zone_of(&name) {
            return; // the resolver follows names outside this zone
        }
    }
}

thread_local! {
    /// Per-thread random source for weighted and multivalue choices, seeded from the OS.
    static RANDOM: std::cell::RefCell<SplitMix64> = std::cell::RefCell::new(SplitMix64({
        use std::hash::{BuildHasher, Hasher};
        std::collections::hash_map::RandomState::new().build_hasher().finish()
    }));
}

/// What the routing policies consult besides the zone.
struct Inputs<'a> {
    locations: &'a Locations,
    health: &'a HealthState,
    rng: std::cell::RefCell<&'a mut dyn policy::RandomSource>,
}

/// Runs the routing-policy engine for one group; widens `scope` to what the answer used.
fn route(
    zone: &Zone,
    group: &[policy::RecordSet],
    rtype: RecordType,
    client: (IpAddr, u8),
    inputs: &Inputs<'_>,
    scope: &mut u8,
) -> Vec<(u32, RData)> {
    let located = inputs.locations.locate(client.0, client.1);
    let ctx = Context {
        health: inputs.health,
        client: &located,
        latency: inputs.locations,
        cidr: &inputs.locations.cidr,
        groups: zone,
    };
    let answer = policy::answer(group, rtype, &ctx, &mut **inputs.rng.borrow_mut());
    *scope = (*scope).max(answer.scope);
    answer.records
}

fn full_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// RFC 7871 section 6: a query's SCOPE PREFIX-LENGTH is 0, the source prefix fits the family
/// and no address bits are set beyond it.
fn valid_subnet(subnet: &ClientSubnet) -> bool {
    let max = full_prefix(subnet.addr());
    if subnet.scope_prefix() != 0 || subnet.source_prefix() > max {
        return false;
    }
    ipnet::IpNet::new(subnet.addr(), subnet.source_prefix())
        .is_ok_and(|net| net.network() == subnet.addr())
}

/// Additional-section processing (RFC 1034 section 4.3.2 step 6, RFC 2782): addresses of the
/// in-zone, authoritative names an MX, SRV or NS RRset points to (signed, if the answer is).
fn add_target_addresses(
    zone: &Zone,
    set: &RrSet,
    signed: Signed<'_>,
    additionals: &mut Vec<Record>,
) {
    for rdata in &set.rdatas {
        let target = match rdata {
            RData::MX(mx) => &mx.exchange,
            RData::SRV(srv) => &srv.target,
            RData::NS(ns) => &ns.0,
            _ => continue,
        };
        let lower = LowerName::new(target);
        if !LowerName::new(zone.origin()).zone_of(&lower) || zone.is_at_or_below_cut(&lower) {
            continue;
        }
        for rtype in [RecordType::A, RecordType::AAAA] {
            if let Some(addresses) = zone.rrset(&lower, rtype) {
                signed.push(additionals, &lower, target, addresses);
            }
        }
    }
}

/// The RRsets a wildcard supplies for `name` (RFC 4592 section 3.3.1): `*.<closest encloser>`.
/// Also returns the wildcard's owner name, where its routing-policy groups live.
fn wildcard_node<'z>(zone: &'z Zone, name: &LowerName) -> Option<(&'z [RrSet], LowerName)> {
    let star = Zone::wildcard_at(&zone.closest_encloser(name))?;
    zone.node(&star).map(|node| (node, star))
}

/// NXDOMAIN or NODATA: the SOA in authority with TTL min(SOA TTL, MINIMUM) (RFC 2308 section
/// 3); signed, with the records that prove it.
fn negative(
    zone: &Zone,
    response: &mut Message,
    rcode: ResponseCode,
    signed: Signed<'_>,
    proof: impl FnOnce() -> Proof,
) {
    if response.answers.is_empty() || rcode == ResponseCode::NXDomain {
        response.metadata.response_code = rcode;
    }
    let (ttl, soa) = zone.soa();
    let minimum = match soa {
        RData::SOA(soa) => soa.minimum,
        _ => ttl,
    };
    let ttl = ttl.min(minimum);
    response
        .authorities
        .push(Record::from_rdata(zone.origin().clone(), ttl, soa.clone()));
    if let Some(zone) = signed.0 {
        let apex = LowerName::new(zone.origin());
        let sigs = dnssec::signatures(zone, &apex, zone.origin(), RecordType::SOA, ttl);
        response.authorities.extend(sigs);
        signed.prove(&proof(), &mut response.authorities);
    }
}

/// A referral to the delegation covering `name`: AA=0, the NS RRset in authority, in-zone
/// addresses of the name servers (glue) in additional. Signed: the DS RRset and its RRSIGs,
/// or the denial that there is one (RFC 4035 section 3.1.4, RFC 5155 section 7.2.7).
fn referral(zone: &Zone, name: &LowerName, signed: Signed<'_>, response: &mut Message) {
    let Some(cut) = zone.covering_cut(name) else {
        return;
    };
    let Some(ns) = zone.rrset(&cut, RecordType::NS) else {
        return;
    };
    response.metadata.authoritative = false;
    let cut_name = Name::from(cut.clone());
    push_set(&mut response.authorities, &cut_name, ns);
    if signed.0.is_some() {
        match zone.rrset(&cut, RecordType::DS) {
            Some(ds) => signed.push(&mut response.authorities, &cut, &cut_name, ds),
            None => signed.prove(&Proof::NoData(cut.clone()), &mut response.authorities),
        }
    }
    for rdata in &ns.rdatas {
        let RData::NS(target) = rdata else { continue };
        let target_lower = LowerName::new(&target.0);
        for rtype in [RecordType::A, RecordType::AAAA] {
            if let Some(glue) = zone.rrset(&target_lower, rtype) {
                push_set(&mut response.additionals, &target.0, glue);
            }
        }
    }
}

/// Builds a query message (tests, benchmarks and the CLI use it).
pub fn build_query(id: u16, name: &Name, qtype: RecordType, edns: Option<(u16, bool)>) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name.clone(), qtype));
    if let Some((size, dnssec_ok)) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        e.set_dnssec_ok(dnssec_ok);
        m.set_edns(e);
    }
    m.to_vec().expect("a query always encodes")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::zone::{Zone, parse_zone_text};

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// The engine's UDP answer to `query` from localhost.
    fn respond_udp(query: &[u8]) -> Option<Vec<u8>> {
        respond(
            &catalog(),
            &HealthState::default(),
            &AnswerOptions::default(),
            query,
            Transport::Udp,
            LOCAL,
        )
    }

    fn catalog() -> Catalog {
        let origin = Name::from_ascii("example.com.").unwrap();
        let text = "$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 900 1209600 60\n@ IN NS ns1\n\
                    ns1 IN A 192.0.2.53\nwww IN A 192.0.2.1\nwww IN AAAA 2001:db8::1\n\
                    alias IN CNAME www\n*.wild IN A 192.0.2.7\na.b IN TXT \"x\"\n\
                    sub IN NS ns.sub\nns.sub IN A 192.0.2.99\n";
        let path = Path::new("t.zone");
        let recs = parse_zone_text(&origin, text, path).unwrap();
        Catalog::new([Zone::from_records(origin, recs, Vec::new(), Vec::new(), path).unwrap()])
    }

    fn ask(name: &str, qtype: RecordType) -> Message {
        let q = build_query(7, &Name::from_ascii(name).unwrap(), qtype, None);
        let r = respond_udp(&q).unwrap();
        Message::from_vec(&r).unwrap()
    }

    #[test]
    fn positive_answer_keeps_client_case_and_sets_aa() {
        let r = ask("WwW.Example.COM.", RecordType::A);
        assert!(r.metadata.authoritative);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(r.answers[0].name.to_string(), "WwW.Example.COM.");
        assert_eq!(r.queries[0].name().to_string(), "WwW.Example.COM.");
    }

    #[test]
    fn nxdomain_and_nodata_carry_soa_with_negative_ttl() {
        let r = ask("nope.example.com.", RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(r.authorities[0].ttl, 60);
        let r = ask("www.example.com.", RecordType::MX);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());
        assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
        // Empty non-terminal: NODATA, not NXDOMAIN.
        let r = ask("b.example.com.", RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    }

    #[test]
    fn cname_followed_wildcard_synthesized_referral_and_refused() {
        let r = ask("alias.example.com.", RecordType::A);
        assert_eq!(r.answers.len(), 2);
        assert_eq!(r.answers[0].record_type(), RecordType::CNAME);
        let r = ask("x.wild.example.com.", RecordType::A);
        assert_eq!(r.answers[0].name.to_string(), "x.wild.example.com.");
        let r = ask("host.sub.example.com.", RecordType::A);
        assert!(!r.metadata.authoritative);
        assert_eq!(r.authorities[0].record_type(), RecordType::NS);
        assert_eq!(r.additionals.len(), 1);
        let r = ask("example.org.", RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        assert!(!r.metadata.authoritative);
    }

    #[test]
    fn responses_are_never_answered_and_garbage_gets_formerr() {
        let mut q = build_query(
            9,
            &Name::from_ascii("www.example.com.").unwrap(),
            RecordType::A,
            None,
        );
        q[2] |= 0x80;
        assert!(respond_udp(&q).is_none());
        let garbage = [0u8, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff];
        let r = respond_udp(&garbage).unwrap();
        let r = Message::from_vec(&r).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(r.metadata.id, 9);
    }

    #[test]
    fn edns_echoed_and_badvers() {
        let q = build_query(
            1,
            &Name::from_ascii("www.example.com.").unwrap(),
            RecordType::A,
            Some((4096, true)),
        );
        let r = respond_udp(&q).unwrap();
        let r = Message::from_vec(&r).unwrap();
        let edns = r.edns.unwrap();
        assert_eq!(edns.max_payload(), 1232);
        assert!(edns.flags().dnssec_ok);
        let mut m = Message::from_vec(&q).unwrap();
        m.edns.as_mut().unwrap().set_version(1);
        let r = respond_udp(&m.to_vec().unwrap()).unwrap();
        let r = Message::from_vec(&r).unwrap();
        // RCODE 16 (RFC 6891 6.1.3); hickory decodes 16 under its other name, BADSIG.
        assert_eq!(u16::from(r.metadata.response_code), 16);
        assert_eq!(r.edns.unwrap().version(), 0);
    }
}
