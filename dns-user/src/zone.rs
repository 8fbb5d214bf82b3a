//! Zone data: the in-memory model of one hosted zone, and loading it from RFC 1035 zone files.
//!
//! The file front end here owns where an entry starts (file and line), `$ORIGIN`, `$TTL`,
//! `$INCLUDE` and owner inheritance. Each resource record's data is then read by its type's
//! RDATA parser ([`crate::rdata`]), so every error names file and line. `$INCLUDE` is read only
//! in a zone file the operator's config names ([`read_zone_file`]), relative to it, as a
//! bounded regular file; zone text from anywhere else cannot name a file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::policy;
use crate::rdata::{self, TYPE_SPF};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

/// Deepest `$INCLUDE` nesting accepted.
const MAX_INCLUDE_DEPTH: usize = 8;

/// A zone loading error, with the place it was found.
#[derive(Debug, thiserror::Error)]
pub struct ZoneError {
    /// File the problem is in (or `<config>` for records from the config).
    pub file: PathBuf,
    /// 1-based line of the entry; 0 when the problem is about the zone as a whole.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

/// One RRset: records of one type at one name, in zone-file order, sharing one TTL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrSet {
    pub rtype: RecordType,
    pub ttl: u32,
    pub rdatas: Vec<RData>,
}

/// All data of one hosted zone.
#[derive(Clone, Debug)]
pub struct Zone {
    origin: Name,
    /// Owner (lower-cased) -> RRsets at that name. Hashed: ordered maps of names spend their
    /// time in label-by-label comparisons.
    nodes: HashMap<LowerName, Vec<RrSet>>,
    /// Names that exist only because something below them exists (empty non-terminals).
    empty_non_terminals: HashSet<LowerName>,
    /// Delegation points: names below the apex with an NS RRset.
    cuts: HashSet<LowerName>,
    /// Route 53 routing-policy groups, answered by the policy engine: (owner, type) -> sets.
    policies: HashMap<(LowerName, RecordType), Vec<policy::RecordSet>>,
    /// Plain RRsets that engine aliases point to, as simple record sets.
    alias_targets: HashMap<(LowerName, RecordType), Vec<policy::RecordSet>>,
}

/// A record set with a routing policy, from the config or a Route 53 change batch.
#[derive(Clone, Debug)]
pub struct PolicySet {
    pub name: Name,
    pub rtype: RecordType,
    pub set: policy::RecordSet,
}

impl policy::Groups for Zone {
    fn group(&self, name: &LowerName, rtype: RecordType) -> Option<&[policy::RecordSet]> {
        let key = (name.clone(), rtype);
        self.policies
            .get(&key)
            .or_else(|| self.alias_targets.get(&key))
            .map(Vec::as_slice)
    }
}

impl Zone {
    /// The zone apex.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// RRsets at `name`, if the name owns any data.
    pub fn node(&self, name: &LowerName) -> Option<&[RrSet]> {
        self.nodes.get(name).map(Vec::as_slice)
    }

    /// The routing-policy group of `rtype` at `name`, if that name and type are policy-routed.
    pub fn policy_group(
        &self,
        name: &LowerName,
        rtype: RecordType,
    ) -> Option<&[policy::RecordSet]> {
        self.policies.get(&(name.clone(), rtype)).map(Vec::as_slice)
    }

    /// Every routing-policy group: (owner, type, record sets), in no particular order.
    pub fn policy_groups(
        &self,
    ) -> impl Iterator<Item = (&LowerName, RecordType, &[policy::RecordSet])> {
        self.policies
            .iter()
            .map(|((owner, rtype), sets)| (owner, *rtype, sets.as_slice()))
    }

    /// The RRset of `rtype` at `name`.
    pub fn rrset(&self, name: &LowerName, rtype: RecordType) -> Option<&RrSet> {
        self.node(name)?.iter().find(|s| s.rtype == rtype)
    }

    /// True if `name` exists only as the ancestor of other names (RFC 8020's empty non-terminal).
    pub fn is_empty_non_terminal(&self, name: &LowerName) -> bool {
        self.empty_non_terminals.contains(name)
    }

    /// Every owner name with its RRsets, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = (&LowerName, &[RrSet])> {
        self.nodes.iter().map(|(n, s)| (n, s.as_slice()))
    }

    /// The apex SOA record: (TTL, data). Present by construction.
    pub fn soa(&self) -> (u32, &RData) {
        let set = self
            .rrset(&LowerName::new(&self.origin), RecordType::SOA)
            .expect("a loaded zone has an SOA at its apex");
        (set.ttl, &set.rdatas[0])
    }

    /// True if `name` is a delegation point: an NS RRset below the apex.
    pub fn is_delegation(&self, name: &LowerName) -> bool {
        self.cuts.contains(name)
    }

    /// The delegation point covering `name` (the topmost name below the apex, at or above
    /// `name`, with an NS RRset): data there is not authoritative.
    pub fn covering_cut(&self, name: &LowerName) -> Option<LowerName> {
        if self.cuts.is_empty() {
            return None;
        }
        let apex_labels = self.origin.num_labels();
        let mut cut = None;
        let mut n = name.clone();
        while n.num_labels() > apex_labels {
            if self.cuts.contains(&n) {
                cut = Some(n.clone());
            }
            n = n.base_name();
        }
        cut
    }

    /// True if `name` is at or below a delegation.
    pub fn is_at_or_below_cut(&self, name: &LowerName) -> bool {
        self.covering_cut(name).is_some()
    }

    /// The zone as an RFC 1035 zone file that loads back to the same data: absolute names,
    /// one record per line, SOA first; types without a text form in RFC 3597 generic syntax.
    /// Aliases appear as the records they answer with.
    pub fn to_zone_file(&self) -> String {
        use std::fmt::Write as _;
        // Names as A-labels with escapes (Display writes an IDN's Unicode form).
        let mut out = format!("$ORIGIN {}\n", self.origin.to_ascii());
        let apex = LowerName::new(&self.origin);
        let mut nodes: Vec<(&LowerName, &Vec<RrSet>)> = self.nodes.iter().collect();
        nodes.sort_by(|a, b| (*a.0 != apex, a.0).cmp(&(*b.0 != apex, b.0))); // apex first, then canonical order
        for (name, sets) in nodes {
            let mut sets: Vec<&RrSet> = sets.iter().collect();
            sets.sort_by_key(|s| s.rtype != RecordType::SOA);
            for set in sets {
                for rdata in &set.rdatas {
                    let _ = writeln!(
                        out,
                        "{} {} IN {}",
                        Name::from(name).to_ascii(),
                        set.ttl,
                        rdata::presentation(set.rtype, rdata)
                    );
                }
            }
        }
        out
    }

    /// Builds a zone from records and aliases, checking what a zone must satisfy. `place` says
    /// where each came from, for error messages.
    pub fn from_records(
        origin: Name,
        records: Vec<(Record, Place)>,
        aliases: Vec<(Alias, Place)>,
        policies: Vec<(PolicySet, Place)>,
        source: &Path,
    ) -> Result<Zone, ZoneError> {
        let origin = fqdn(origin);
        let apex = LowerName::new(&origin);
        let mut nodes: HashMap<LowerName, Vec<RrSet>> = HashMap::new();
        let mut first_place: HashMap<(LowerName, RecordType), Place> = HashMap::new();
        for (record, place) in records {
            let owner = LowerName::new(&record.name);
            let err = |message: String| place.error(message);
            if !apex.zone_of(&owner) {
                return Err(err(format!(
                    "{} is outside the zone {}",
                    record.name, origin
                )));
            }
            if record.dns_class != DNSClass::IN {
                return Err(err(format!("class {} is not served", record.dns_class)));
            }
            let rtype = record.record_type();
            let sets = nodes.entry(owner.clone()).or_default();
            match sets.iter_mut().find(|s| s.rtype == rtype) {
                Some(set) => {
                    // RFC 2181 section 5.2: one TTL per RRset; use the lowest. Duplicates go.
                    set.ttl = set.ttl.min(record.ttl);
                    if !set.rdatas.contains(&record.data) {
                        set.rdatas.push(record.data.clone());
                    }
                }
                None => {
                    first_place.insert((owner.clone(), rtype), place);
                    sets.push(RrSet {
                        rtype,
                        ttl: record.ttl,
                        rdatas: vec![record.data.clone()],
                    });
                }
            }
        }

        let mut groups = policy_groups(&apex, &nodes, policies)?;
        let policy_keys: HashSet<(LowerName, RecordType)> = groups.keys().cloned().collect();
        for (key, set) in
            materialize_aliases(&apex, &mut nodes, &mut first_place, aliases, &policy_keys)?
        {
            groups.insert(key, vec![set]);
        }
        for (owner, _) in groups.keys() {
            nodes.entry(owner.clone()).or_default(); // a policy-routed name exists
        }
        let alias_targets = check_engine_aliases(&groups, &nodes)?;
        for ((owner, rtype), sets) in &groups {
            let clash = *rtype == RecordType::CNAME
                && (!nodes[owner].is_empty()
                    || groups.keys().any(|(o, t)| o == owner && t != rtype))
                || groups.contains_key(&(owner.clone(), RecordType::CNAME))
                    && *rtype != RecordType::CNAME;
            if clash {
                return Err(sets[0].1.error(format!(
                    "{owner} has a CNAME and other data (RFC 1034 3.6.2)"
                )));
            }
        }
        let policies: HashMap<(LowerName, RecordType), Vec<policy::RecordSet>> = groups
            .into_iter()
            .map(|(k, sets)| (k, sets.into_iter().map(|(s, _)| s).collect()))
            .collect();

        let place_of = |owner: &LowerName, rtype: RecordType| {
            first_place
                .get(&(owner.clone(), rtype))
                .cloned()
                .unwrap_or_else(|| Place::whole(source))
        };
        for (owner, sets) in &nodes {
            if sets.iter().any(|s| s.rtype == RecordType::CNAME) {
                let place = place_of(owner, RecordType::CNAME);
                if *owner == apex {
                    return Err(place.error("a CNAME cannot be at the zone apex (RFC 1912 2.4)"));
                }
                if sets.len() > 1 {
                    return Err(place.error(format!(
                        "{owner} has a CNAME and other data (RFC 1034 3.6.2)"
                    )));
                }
                if sets[0].rdatas.len() > 1 {
                    return Err(place.error(format!("{owner} has more than one CNAME")));
                }
            }
            if let Some(soa) = sets.iter().find(|s| s.rtype == RecordType::SOA) {
                let place = place_of(owner, RecordType::SOA);
                if *owner != apex {
                    return Err(place.error(format!("SOA at {owner} is not at the zone apex")));
                }
                if soa.rdatas.len() > 1 {
                    return Err(place.error("more than one SOA record at the apex"));
                }
            }
        }
        if !nodes
            .get(&apex)
            .is_some_and(|sets| sets.iter().any(|s| s.rtype == RecordType::SOA))
        {
            return Err(Place::whole(source).error(format!("zone {origin} has no SOA record")));
        }

        let mut empty_non_terminals = HashSet::new();
        for owner in nodes.keys() {
            let mut n = owner.base_name();
            while apex.zone_of(&n) && n != apex {
                if !nodes.contains_key(&n) {
                    empty_non_terminals.insert(n.clone());
                }
                n = n.base_name();
            }
        }
        let cuts = nodes
            .iter()
            .filter(|(name, sets)| **name != apex && sets.iter().any(|s| s.rtype == RecordType::NS))
            .map(|(name, _)| name.clone())
            .collect();
        Ok(Zone {
            origin,
            nodes,
            empty_non_terminals,
            cuts,
            policies,
            alias_targets,
        })
    }
}

/// A Route 53 alias record: `name`/`rtype` answers with the records of `target`/`rtype` in the
/// same zone, with the target's TTL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alias {
    pub name: Name,
    pub rtype: RecordType,
    pub target: Name,
    /// Route 53's EvaluateTargetHealth (used once health checks drive answers).
    pub evaluate_target_health: bool,
}

/// Validates aliases and adds each as an RRset holding its target's data. Rejected: a CNAME
/// alias at the apex, an alias beside records of its own type, a target outside the zone or
/// without records of that type, and loops.
/// Aliases whose target is a routing-policy group are not materialized: they are returned as
/// simple engine groups, resolved per query.
fn materialize_aliases(
    apex: &LowerName,
    nodes: &mut HashMap<LowerName, Vec<RrSet>>,
    first_place: &mut HashMap<(LowerName, RecordType), Place>,
    aliases: Vec<(Alias, Place)>,
    policy_keys: &HashSet<(LowerName, RecordType)>,
) -> Result<Vec<EngineAlias>, ZoneError> {
    let mut engine = Vec::new();
    let mut by_key: BTreeMap<(LowerName, RecordType), (LowerName, Place)> = BTreeMap::new();
    for (alias, place) in aliases {
        let owner = LowerName::new(&alias.name);
        let target = LowerName::new(&alias.target);
        if !apex.zone_of(&owner) {
            return Err(place.error(format!("{} is outside the zone {apex}", alias.name)));
        }
        if !apex.zone_of(&target) {
            return Err(place.error(format!(
                "alias target {} is outside the zone {apex}",
                alias.target
            )));
        }
        if alias.rtype == RecordType::CNAME && owner == *apex {
            return Err(place.error("a CNAME alias cannot be at the zone apex"));
        }
        let key = (owner.clone(), alias.rtype);
        let clash = nodes
            .get(&owner)
            .is_some_and(|sets| sets.iter().any(|s| s.rtype == alias.rtype));
        if clash || by_key.contains_key(&key) || policy_keys.contains(&key) {
            return Err(place.error(format!(
                "alias {owner} {} conflicts with other {} data at that name",
                alias.rtype, alias.rtype
            )));
        }
        by_key.insert(key, (target, place));
    }
    let mut resolved = Vec::new();
    for ((owner, rtype), (target, place)) in &by_key {
        let mut chain = vec![owner.clone()];
        let mut at = target.clone();
        let set = loop {
            if chain.contains(&at) {
                chain.push(at);
                let path: Vec<String> = chain.iter().map(ToString::to_string).collect();
                return Err(place.error(format!("alias loop: {}", path.join(" -> "))));
            }
            if let Some(set) = nodes
                .get(&at)
                .and_then(|sets| sets.iter().find(|s| s.rtype == *rtype))
            {
                break Some(set.clone());
            }
            match by_key.get(&(at.clone(), *rtype)) {
                Some((next, _)) => {
                    chain.push(at);
                    at = next.clone();
                }
                None if policy_keys.contains(&(at.clone(), *rtype)) => break None,
                None => {
                    return Err(place.error(format!(
                        "alias target {at} has no {rtype} records in this zone"
                    )));
                }
            }
        };
        match set {
            Some(set) => resolved.push((owner.clone(), set, place.clone())),
            // The chain ends in a policy group: the engine resolves this alias per query.
            None => engine.push((
                (owner.clone(), *rtype),
                (
                    policy::RecordSet {
                        set_id: None,
                        policy: policy::Policy::Simple,
                        health_check: None,
                        target: policy::Target::Alias {
                            name: target.clone(),
                            evaluate_target_health: false,
                        },
                    },
                    place.clone(),
                ),
            )),
        }
    }
    for (owner, set, place) in resolved {
        first_place.insert((owner.clone(), set.rtype), place);
        nodes.entry(owner).or_default().push(set);
    }
    Ok(engine)
}

type EngineAlias = ((LowerName, RecordType), (policy::RecordSet, Place));
type Groups = HashMap<(LowerName, RecordType), Vec<(policy::RecordSet, Place)>>;

/// Groups routing-policy record sets by name and type and checks Route 53's rules: one
/// policy per group, no simple records beside it, unique set ids and locations, limits.
fn policy_groups(
    apex: &LowerName,
    nodes: &HashMap<LowerName, Vec<RrSet>>,
    sets: Vec<(PolicySet, Place)>,
) -> Result<Groups, ZoneError> {
    use policy::{FailoverRole, Policy};
    use std::mem::discriminant;
    let mut groups: Groups = HashMap::new();
    for (p, place) in sets {
        let owner = LowerName::new(&p.name);
        if !apex.zone_of(&owner) {
            return Err(place.error(format!("{} is outside the zone {apex}", p.name)));
        }
        if nodes
            .get(&owner)
            .is_some_and(|s| s.iter().any(|s| s.rtype == p.rtype))
        {
            return Err(place.error(format!(
                "{owner} {} mixes a routing policy with simple records",
                p.rtype
            )));
        }
        groups
            .entry((owner, p.rtype))
            .or_default()
            .push((p.set, place));
    }
    for ((owner, rtype), sets) in &groups {
        let (first, place) = &sets[0];
        let err = |m: String| Err(place.error(format!("{owner} {rtype}: {m}")));
        if sets
            .iter()
            .any(|(s, _)| discriminant(&s.policy) != discriminant(&first.policy))
        {
            return err("mixes routing policies (one policy per name and type)".into());
        }
        let mut ids = HashSet::new();
        let mut locations = HashSet::new();
        for (s, _) in sets {
            if !ids.insert(s.set_id.clone()) {
                return err(format!(
                    "duplicate set_id {:?}",
                    s.set_id.as_deref().unwrap_or("")
                ));
            }
            let location = match &s.policy {
                Policy::Failover(FailoverRole::Primary) => Some("PRIMARY".to_string()),
                Policy::Failover(FailoverRole::Secondary) => Some("SECONDARY".to_string()),
                Policy::Latency { region } => Some(region.clone()),
                Policy::Geolocation(g) => Some(format!("{g:?}")),
                Policy::IpBased {
                    collection,
                    location,
                } => Some(format!("{collection}/{location}")),
                _ => None,
            };
            if let Some(l) = location
                && !locations.insert(l.clone())
            {
                return err(format!("two record sets for {l}"));
            }
            if matches!(s.policy, Policy::MultiValue)
                && (matches!(s.target, policy::Target::Alias { .. })
                    || matches!(*rtype, RecordType::NS | RecordType::CNAME))
            {
                return err("multivalue answers cannot be aliases, NS or CNAME".into());
            }
        }
        let limit = match first.policy {
            Policy::Weighted { .. } => 100,
            Policy::Geoproximity { .. } => 30,
            _ => usize::MAX,
        };
        if sets.len() > limit {
            return err(format!("more than {limit} record sets"));
        }
    }
    Ok(groups)
}

/// Every alias in a policy group must point at something of its type in the zone, without
/// loops. Returns the plain RRsets they point at, as simple record sets for the engine.
fn check_engine_aliases(
    groups: &Groups,
    nodes: &HashMap<LowerName, Vec<RrSet>>,
) -> Result<HashMap<(LowerName, RecordType), Vec<policy::RecordSet>>, ZoneError> {
    /// Follows the aliases of group `at`; `path` is the chain of groups that led here.
    fn walk(
        at: &LowerName,
        rtype: RecordType,
        place: &Place,
        groups: &Groups,
        nodes: &HashMap<LowerName, Vec<RrSet>>,
        path: &mut Vec<LowerName>,
        targets: &mut HashMap<(LowerName, RecordType), Vec<policy::RecordSet>>,
    ) -> Result<(), ZoneError> {
        if path.contains(at) {
            let p: Vec<String> = path.iter().chain([at]).map(ToString::to_string).collect();
            return Err(place.error(format!("alias loop: {}", p.join(" -> "))));
        }
        if let Some(sets) = groups.get(&(at.clone(), rtype)) {
            path.push(at.clone());
            for (set, _) in sets {
                if let policy::Target::Alias { name, .. } = &set.target {
                    walk(name, rtype, place, groups, nodes, path, targets)?;
                }
            }
            path.pop();
            return Ok(());
        }
        let Some(plain) = nodes
            .get(at)
            .and_then(|s| s.iter().find(|s| s.rtype == rtype))
        else {
            return Err(place.error(format!(
                "alias target {at} has no {rtype} records in this zone"
            )));
        };
        targets.insert(
            (at.clone(), rtype),
            vec![policy::RecordSet {
                set_id: None,
                policy: policy::Policy::Simple,
                health_check: None,
                target: policy::Target::Records {
                    ttl: plain.ttl,
                    rdatas: plain.rdatas.clone(),
                },
            }],
        );
        Ok(())
    }
    let mut targets = HashMap::new();
    for ((owner, rtype), sets) in groups {
        walk(
            owner,
            *rtype,
            &sets[0].1,
            groups,
            nodes,
            &mut Vec::new(),
            &mut targets,
        )?;
    }
    Ok(targets)
}

/// Parses one `[[zone.record]]` value: the same RDATA syntax as a zone file line.
pub fn parse_config_record(
    origin: &Name,
    name: &str,
    rtype: &str,
    ttl: u32,
    value: &str,
    place: &Place,
) -> Result<Record, ZoneError> {
    let origin = fqdn(origin.clone());
    let owner = parse_name(name, &origin, place)?;
    let rtype = parse_type(rtype).ok_or_else(|| place.error(format!("unknown type {rtype}")))?;
    let data = rdata::parse_value(rtype, value, &origin)
        .map_err(|e| place.error(format!("bad {rtype} record: {e}")))?;
    Ok(Record::from_rdata(owner, ttl, data))
}

/// Parses a `[[zone.record]]` owner name (relative, `@` or absolute) and type.
pub fn parse_owner_and_type(
    origin: &Name,
    name: &str,
    rtype: &str,
    place: &Place,
) -> Result<(Name, RecordType), ZoneError> {
    let origin = fqdn(origin.clone());
    Ok((
        parse_name(name, &origin, place)?,
        parse_type(rtype).ok_or_else(|| place.error(format!("unknown type {rtype}")))?,
    ))
}

/// Parses a `[[zone.record]]` alias.
pub fn parse_config_alias(
    origin: &Name,
    name: &str,
    rtype: &str,
    target: &str,
    evaluate_target_health: bool,
    place: &Place,
) -> Result<Alias, ZoneError> {
    let (name, rtype) = parse_owner_and_type(origin, name, rtype, place)?;
    Ok(Alias {
        name,
        rtype,
        target: parse_name(target, &fqdn(origin.clone()), place)?,
        evaluate_target_health,
    })
}

/// Where a record came from (the path is shared by every record of a file).
#[derive(Clone, Debug)]
pub struct Place {
    pub file: Arc<Path>,
    pub line: usize,
}

impl Place {
    /// A place with no line: the file (or config) as a whole.
    pub fn whole(file: &Path) -> Place {
        Place {
            file: Arc::from(file),
            line: 0,
        }
    }

    /// An error at this place.
    pub fn error(&self, message: impl Into<String>) -> ZoneError {
        ZoneError {
            file: self.file.to_path_buf(),
            line: self.line,
            message: message.into(),
        }
    }
}

/// A domain name as it is stored and compared: absolute, lower-case ASCII, an
/// internationalized name as its A-labels (`bücher.test` and `BÜCHER.test` are
/// `xn--bcher-kva.test.`). Escapes (`\052`) are kept as written. A non-ASCII name that is
/// not a valid IDN is refused.
pub fn canonical_name(name: &str) -> Result<String, String> {
    let ascii = if name.is_ascii() {
        name.to_ascii_lowercase()
    } else {
        Name::from_utf8(name)
            .map_err(|e| format!("{name:?} is not a valid internationalized domain name: {e}"))?
            .to_ascii()
            .to_ascii_lowercase()
    };
    Ok(if ascii.ends_with('.') {
        ascii
    } else {
        format!("{ascii}.")
    })
}

fn fqdn(mut name: Name) -> Name {
    name.set_fqdn(true);
    name
}

/// Parses zone-file text (RFC 1035 section 5) into records, each with its file and line
/// (`path` names it in errors). `$INCLUDE` is refused: only [`read_zone_file`] reads files.
pub fn parse_zone_text(
    origin: &Name,
    text: &str,
    path: &Path,
) -> Result<Vec<(Record, Place)>, ZoneError> {
    parse_zone(origin, text, path, false)
}

/// Reads and parses the zone file at `path`, which the operator's config names: a regular
/// file of at most [`crate::files::MAX_ZONE_FILE`] bytes, its `$INCLUDE`s resolved relative
/// to the including file and read the same way.
pub fn read_zone_file(origin: &Name, path: &Path) -> Result<Vec<(Record, Place)>, ZoneError> {
    let text = crate::files::read_text(path, crate::files::MAX_ZONE_FILE)
        .map_err(|e| Place::whole(path).error(format!("cannot read zone file: {e}")))?;
    parse_zone(origin, &text, path, true)
}

fn parse_zone(
    origin: &Name,
    text: &str,
    path: &Path,
    includes: bool,
) -> Result<Vec<(Record, Place)>, ZoneError> {
    let mut state = FileState {
        origin: fqdn(origin.clone()),
        default_ttl: None,
        last_ttl: None,
        last_owner: None,
        includes,
    };
    let mut out = Vec::new();
    parse_into(&mut state, text, path, 0, &mut out)?;
    Ok(out)
}

struct FileState {
    origin: Name,
    default_ttl: Option<u32>,
    last_ttl: Option<u32>,
    last_owner: Option<Name>,
    /// Whether `$INCLUDE` may read files (a zone file named by the config).
    includes: bool,
}

fn parse_into(
    state: &mut FileState,
    text: &str,
    path: &Path,
    depth: usize,
    out: &mut Vec<(Record, Place)>,
) -> Result<(), ZoneError> {
    let shared_path: Arc<Path> = Arc::from(path);
    for entry in entries(text).map_err(|(line, message)| ZoneError {
        file: path.to_path_buf(),
        line,
        message,
    })? {
        let place = Place {
            file: shared_path.clone(),
            line: entry.line,
        };
        let tokens = &entry.tokens;
        let Some(first) = tokens.first() else {
            continue;
        };
        if !entry.leading_blank && first.starts_with('$') {
            match first.to_ascii_uppercase().as_str() {
                "$ORIGIN" => {
                    let name = tokens
                        .get(1)
                        .ok_or_else(|| place.error("$ORIGIN needs a name"))?;
                    state.origin = parse_name(name, &state.origin, &place)?;
                }
                "$TTL" => {
                    let ttl = tokens
                        .get(1)
                        .ok_or_else(|| place.error("$TTL needs a value"))?;
                    state.default_ttl = Some(parse_ttl(ttl, &place)?);
                }
                "$INCLUDE" => {
                    if !state.includes {
                        return Err(place
                            .error("$INCLUDE is read only in zone files that the config names"));
                    }
                    if depth >= MAX_INCLUDE_DEPTH {
                        return Err(place.error("$INCLUDE nested too deeply"));
                    }
                    let file = tokens
                        .get(1)
                        .ok_or_else(|| place.error("$INCLUDE needs a file"))?;
                    let file = path.parent().unwrap_or(Path::new(".")).join(file);
                    let included = crate::files::read_text(&file, crate::files::MAX_ZONE_FILE)
                        .map_err(|e| place.error(format!("cannot read $INCLUDE: {e}")))?;
                    // The included file may change its origin; the parent's is restored after
                    // (RFC 1035 section 5.1).
                    let saved_origin = state.origin.clone();
                    if let Some(o) = tokens.get(2) {
                        state.origin = parse_name(o, &state.origin, &place)?;
                    }
                    parse_into(state, &included, &file, depth + 1, out)?;
                    state.origin = saved_origin;
                }
                other => return Err(place.error(format!("unknown directive {other}"))),
            }
            continue;
        }

        let mut rest = tokens.as_slice();
        let owner = if entry.leading_blank {
            state
                .last_owner
                .clone()
                .ok_or_else(|| place.error("record without an owner name"))?
        } else {
            let name = parse_name(&rest[0], &state.origin, &place)?;
            rest = &rest[1..];
            name
        };
        state.last_owner = Some(owner.clone());

        let mut ttl = None;
        let mut class = None;
        let rtype = loop {
            let token = rest
                .first()
                .ok_or_else(|| place.error("record has no type"))?;
            rest = &rest[1..];
            if ttl.is_none() && token.starts_with(|c: char| c.is_ascii_digit()) {
                ttl = Some(parse_ttl(token, &place)?);
            } else if class.is_none() && token.eq_ignore_ascii_case("IN") {
                class = Some(DNSClass::IN);
            } else if class.is_none()
                && ["CH", "HS", "CS"]
                    .iter()
                    .any(|c| token.eq_ignore_ascii_case(c))
            {
                return Err(place.error(format!("class {token} is not served")));
            } else {
                break parse_type(token)
                    .ok_or_else(|| place.error(format!("unknown type {token}")))?;
            }
        };
        // An omitted TTL is $TTL's (RFC 2308 section 4), else the last one stated (RFC 1035).
        if ttl.is_some() {
            state.last_ttl = ttl;
        }
        let ttl = ttl
            .or(state.default_ttl)
            .or(state.last_ttl)
            .ok_or_else(|| place.error("no TTL given and no $TTL in effect"))?;
        if rest.is_empty() {
            return Err(place.error(format!("{rtype} record has no data")));
        }
        let data = rdata::parse_tokens(rtype, rest, &state.origin)
            .map_err(|e| place.error(format!("bad {rtype} record: {e}")))?;
        out.push((Record::from_rdata(owner, ttl, data), place));
    }
    Ok(())
}

fn parse_name(text: &str, origin: &Name, place: &Place) -> Result<Name, ZoneError> {
    if text == "@" {
        return Ok(origin.clone());
    }
    Name::parse(text, Some(origin)).map_err(|e| place.error(format!("bad name {text}: {e}")))
}

fn parse_ttl(text: &str, place: &Place) -> Result<u32, ZoneError> {
    hickory_proto::serialize::txt::parse_ttl(text)
        .map_err(|e| place.error(format!("bad TTL {text}: {e}")))
}

/// An RR type from its mnemonic, RFC 3597's `TYPEnnn`, or `SPF`.
pub fn parse_type(token: &str) -> Option<RecordType> {
    let upper = token.to_ascii_uppercase();
    if let Some(code) = upper
        .strip_prefix("TYPE")
        .and_then(|n| n.parse::<u16>().ok())
    {
        return Some(RecordType::from(code));
    }
    if upper == "SPF" {
        return Some(RecordType::from(TYPE_SPF));
    }
    upper.parse().ok()
}

/// One logical entry of a zone file: the tokens of one line, or of several joined by
/// parentheses, with the line it starts on.
struct Entry {
    line: usize,
    leading_blank: bool,
    tokens: Vec<String>,
}

/// Splits zone text into logical entries. Quotes and backslash escapes are kept in the tokens
/// (hickory's RDATA parser reads them); comments are dropped.
fn entries(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    let mut current: Option<Entry> = None;
    let mut token = String::new();
    let mut depth = 0usize;
    let mut paren_line = 0;
    let mut at_line_start = true;

    fn flush(token: &mut String, entry: &mut Option<Entry>, line: usize, leading_blank: bool) {
        if !token.is_empty() {
            entry
                .get_or_insert_with(|| Entry {
                    line,
                    leading_blank,
                    tokens: Vec::new(),
                })
                .tokens
                .push(std::mem::take(token));
        }
    }

    let mut leading_blank = false;
    while let Some(c) = chars.next() {
        if at_line_start && depth == 0 {
            leading_blank = c == ' ' || c == '\t';
            at_line_start = false;
        }
        match c {
            '\n' => {
                flush(&mut token, &mut current, line, leading_blank);
                line += 1;
                if depth == 0 {
                    if let Some(e) = current.take() {
                        out.push(e);
                    }
                    at_line_start = true;
                }
            }
            ';' => {
                // A comment runs to the end of the line, which the '\n' arm then ends.
                while chars.next_if(|&n| n != '\n').is_some() {}
                flush(&mut token, &mut current, line, leading_blank);
            }
            ' ' | '\t' | '\r' => flush(&mut token, &mut current, line, leading_blank),
            '(' => {
                flush(&mut token, &mut current, line, leading_blank);
                if depth == 0 {
                    paren_line = line;
                }
                depth += 1;
            }
            ')' => {
                flush(&mut token, &mut current, line, leading_blank);
                if depth == 0 {
                    return Err((line, "unbalanced ')'".into()));
                }
                depth -= 1;
            }
            '"' => {
                token.push('"');
                let start = line;
                loop {
                    match chars.next() {
                        None => return Err((start, "unterminated quoted string".into())),
                        Some('\\') => {
                            token.push('\\');
                            if let Some(n) = chars.next() {
                                token.push(n);
                            }
                        }
                        Some('"') => {
                            token.push('"');
                            break;
                        }
                        Some('\n') => return Err((start, "newline inside a quoted string".into())),
                        Some(o) => token.push(o),
                    }
                }
            }
            '\\' => {
                token.push('\\');
                if let Some(n) = chars.next() {
                    token.push(n);
                }
            }
            other => {
                if current.is_none() && token.is_empty() {
                    // Remember where the entry starts.
                    current = Some(Entry {
                        line,
                        leading_blank,
                        tokens: Vec::new(),
                    });
                }
                token.push(other);
            }
        }
    }
    if depth > 0 {
        return Err((paren_line, "unbalanced '(' (no closing parenthesis)".into()));
    }
    flush(&mut token, &mut current, line, leading_blank);
    if let Some(e) = current.take() {
        out.push(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::from_ascii("example.com.").unwrap()
    }

    fn load(text: &str) -> Result<Zone, ZoneError> {
        let path = Path::new("test.zone");
        let records = parse_zone_text(&origin(), text, path)?;
        Zone::from_records(origin(), records, Vec::new(), Vec::new(), path)
    }

    const BASE: &str = "$TTL 300\n@ IN SOA ns1 hostmaster ( 1 7200 900 1209600 60 )\n  IN NS ns1\nns1 IN A 192.0.2.53\n";

    #[test]
    fn parses_relative_names_parentheses_and_owner_inheritance() {
        let zone = load(&format!(
            "{BASE}www 60 IN A 192.0.2.1\n   IN A 192.0.2.2 ; two\nmail IN MX 10 mx\n"
        ))
        .unwrap();
        let www = LowerName::new(&Name::from_ascii("www.example.com.").unwrap());
        let a = zone.rrset(&www, RecordType::A).unwrap();
        assert_eq!(a.rdatas.len(), 2);
        assert_eq!(a.ttl, 60);
        let mail = LowerName::new(&Name::from_ascii("mail.example.com.").unwrap());
        let mx = zone.rrset(&mail, RecordType::MX).unwrap();
        assert_eq!(mx.rdatas[0].to_string(), "10 mx.example.com.");
        let (soa_ttl, _) = zone.soa();
        assert_eq!(soa_ttl, 300);
    }

    #[test]
    fn errors_name_the_line() {
        let err = load(&format!("{BASE}www IN A 999.1.1.1\n")).unwrap_err();
        assert_eq!(err.line, 5, "{err}");
        assert!(
            err.to_string().starts_with("test.zone:5: bad A record"),
            "{err}"
        );
    }

    #[test]
    fn bad_owner_names_name_their_line() {
        let long = "a".repeat(64);
        let err = load(&format!("{BASE}{long} IN A 192.0.2.1\n")).unwrap_err();
        assert_eq!(err.line, 5, "{err}");
        assert!(err.message.contains("bad name"), "{err}");
        let err = load(&format!(
            "{BASE}www IN A 192.0.2.1 ; ok\nx..y IN A 192.0.2.1\n"
        ))
        .unwrap_err();
        assert_eq!(err.line, 6, "{err}");
    }

    #[test]
    fn unbalanced_parenthesis_names_its_line() {
        let err = load("$TTL 1\n@ IN SOA ns1 host ( 1 2 3 4 5\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn rejects_cname_with_other_data_and_out_of_zone_and_missing_soa() {
        let err = load(&format!("{BASE}x IN CNAME www\nx IN A 192.0.2.1\n")).unwrap_err();
        assert!(err.message.contains("CNAME and other data"), "{err}");
        assert_eq!(err.line, 5);
        let err = load(&format!("{BASE}www.example.net. IN A 192.0.2.1\n")).unwrap_err();
        assert!(err.message.contains("outside the zone"), "{err}");
        let err = load("$TTL 1\nwww IN A 192.0.2.1\n").unwrap_err();
        assert!(err.message.contains("no SOA"), "{err}");
    }

    fn with_aliases(aliases: &[(&str, &str, &str)]) -> Result<Zone, ZoneError> {
        let path = Path::new("test.zone");
        let text =
            format!("{BASE}www 60 IN A 192.0.2.1\nwww 120 IN AAAA 2001:db8::1\nc IN CNAME www\n");
        let records = parse_zone_text(&origin(), &text, path)?;
        let place = Place::whole(Path::new("cfg.toml"));
        let aliases = aliases
            .iter()
            .map(|(n, t, target)| {
                (
                    parse_config_alias(&origin(), n, t, target, false, &place).unwrap(),
                    place.clone(),
                )
            })
            .collect();
        Zone::from_records(origin(), records, aliases, Vec::new(), path)
    }

    #[test]
    fn alias_at_apex_answers_with_target_data_and_ttl() {
        let zone = with_aliases(&[
            ("@", "A", "www"),
            ("lb", "AAAA", "www"),
            ("@", "AAAA", "lb"),
        ])
        .unwrap();
        let apex = LowerName::new(&origin());
        let a = zone.rrset(&apex, RecordType::A).unwrap();
        assert_eq!((a.ttl, a.rdatas.len()), (60, 1));
        // Alias to an alias resolves to the final records.
        let aaaa = zone.rrset(&apex, RecordType::AAAA).unwrap();
        assert_eq!(aaaa.ttl, 120);
    }

    #[test]
    fn alias_loops_missing_targets_and_conflicts_are_rejected() {
        /// Aliases (name, type, target) and the error they must produce.
        type Case = (
            &'static [(&'static str, &'static str, &'static str)],
            &'static str,
        );
        let cases: [Case; 6] = [
            (
                &[("a", "A", "b"), ("b", "A", "a")],
                "alias loop: a.example.com. -> b.example.com. -> a.example.com.",
            ),
            (&[("a", "A", "nothing")], "has no A records"),
            (&[("www", "A", "ns1")], "conflicts"),
            (
                &[("@", "CNAME", "c")],
                "CNAME alias cannot be at the zone apex",
            ),
            (&[("x", "A", "www.example.net.")], "outside the zone"),
            // An alias beside a CNAME is CNAME-and-other-data.
            (&[("c", "A", "www")], "CNAME and other data"),
        ];
        for (aliases, expected) in cases {
            let err = with_aliases(aliases).unwrap_err();
            assert!(err.message.contains(expected), "{aliases:?}: {err}");
        }
    }

    #[test]
    fn generic_rdata_spf_and_ds() {
        let zone = load(&format!(
            "{BASE}g IN TYPE65534 \\# 3 010203\ng IN A \\# 4 C0000201\ng IN SPF \"v=spf1 -all\"\nsub IN NS ns1\nsub IN DS 1 8 2 ABCD\n"
        ))
        .unwrap();
        let g = LowerName::new(&Name::from_ascii("g.example.com.").unwrap());
        assert!(zone.rrset(&g, RecordType::from(65534)).is_some());
        assert_eq!(
            zone.rrset(&g, RecordType::A).unwrap().rdatas[0].to_string(),
            "192.0.2.1"
        );
        assert!(zone.rrset(&g, RecordType::from(TYPE_SPF)).is_some());
        let err = load(&format!("{BASE}g IN TYPE65534 \\# 4 0102\n")).unwrap_err();
        assert!(err.message.contains("length 4 but 2 bytes"), "{err}");
        let err = load(&format!("{BASE}g IN TYPE65534 hello\n")).unwrap_err();
        assert!(err.message.contains("RFC 3597"), "{err}");
    }

    #[test]
    fn names_are_stored_in_one_canonical_spelling() {
        for spelling in [
            "bücher.t.test.",
            "BÜCHER.t.test",
            "xn--bcher-kva.t.test.",
            "XN--BCHER-KVA.T.TEST",
        ] {
            assert_eq!(
                canonical_name(spelling).unwrap(),
                "xn--bcher-kva.t.test.",
                "{spelling}"
            );
        }
        assert_eq!(
            canonical_name("WWW.Example.COM").unwrap(),
            "www.example.com."
        );
        assert_eq!(
            canonical_name("\\052.example.com.").unwrap(),
            "\\052.example.com."
        );
        assert!(canonical_name("a\u{0}ü.test").is_err());
    }

    #[test]
    fn includes_are_read_only_from_config_zone_files_relative_to_them() {
        let dir = std::env::temp_dir().join(format!("dns-zone-include-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/hosts"), "www 60 IN A 192.0.2.1\n").unwrap();
        let main = dir.join("main.zone");
        std::fs::write(&main, format!("{BASE}$INCLUDE sub/hosts\n")).unwrap();
        let records = read_zone_file(&origin(), &main).unwrap();
        assert!(records.iter().any(|(r, p)| r.record_type() == RecordType::A
            && r.name.to_ascii() == "www.example.com."
            && p.file.ends_with("sub/hosts")));
        // Text that does not come from a config zone file names no file.
        let err =
            parse_zone_text(&origin(), &format!("{BASE}$INCLUDE sub/hosts\n"), &main).unwrap_err();
        assert!(err.message.contains("only in zone files"), "{err}");
        // A device or a FIFO is never read.
        std::fs::write(&main, format!("{BASE}$INCLUDE /dev/zero\n")).unwrap();
        let err = read_zone_file(&origin(), &main).unwrap_err();
        assert!(err.message.contains("not a regular file"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn export_reloads_to_the_same_data() {
        let text = format!(
            "{BASE}www IN A 192.0.2.1\nwww IN AAAA 2001:db8::1\na IN SPF \"v=spf1 -all\"\n\
             a IN SRV 10 5 5060 sip\na IN CAA 0 issue \"ca.example\"\na IN PTR host\n\
             a IN NAPTR 100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp\nsub IN NS ns1\n\
             sub IN DS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118\n\
             a IN SSHFP 1 1 dd465c09cfa51fb45020cc83316fff21b9ec74ac\n\
             a IN TLSA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6\n\
             a IN SVCB 1 svc alpn=h2 port=8443\na IN HTTPS 1 . alpn=h2,h3\n\
             a IN TXT \"a b\" \"c\\\"d;\" e \"\\010\"\nb IN TYPE65534 \\# 4 0A000001\n\
             mail IN MX 10 mail\nx.y IN CNAME www\n"
        );
        let zone = load(&text).unwrap();
        let exported = zone.to_zone_file();
        let again = load(&exported).unwrap_or_else(|e| panic!("{e}\n{exported}"));
        let a: BTreeMap<_, _> = zone.nodes().collect();
        let b: BTreeMap<_, _> = again.nodes().collect();
        assert_eq!(a, b, "{exported}");
    }

    #[test]
    fn empty_non_terminals_and_cuts() {
        let zone = load(&format!(
            "{BASE}a.b.c IN A 192.0.2.1\nsub IN NS ns.sub\nns.sub IN A 192.0.2.9\n"
        ))
        .unwrap();
        let n = |s: &str| LowerName::new(&Name::from_ascii(s).unwrap());
        assert!(zone.is_empty_non_terminal(&n("b.c.example.com.")));
        assert!(zone.is_empty_non_terminal(&n("c.example.com.")));
        assert!(!zone.is_empty_non_terminal(&n("a.b.c.example.com.")));
        assert!(zone.is_at_or_below_cut(&n("ns.sub.example.com.")));
        assert!(zone.is_at_or_below_cut(&n("sub.example.com.")));
        assert!(!zone.is_at_or_below_cut(&n("a.b.c.example.com.")));
    }
}
