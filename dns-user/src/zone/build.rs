//! The one road from record sets to a served [`Zone`]: [`build`] reads each Route 53
//! `ResourceRecordSet` once (its TTL and routing policy by [`records::check`], its records by
//! their type's RDATA parser, or its alias target) and assembles the zone with the rules a zone
//! must satisfy (RFC 1034/2181 and Route 53's policy-group rules).

use std::borrow::Cow;

use super::file::parse_name;
use super::records::{self, ResourceRecordSet};
use super::*;
use crate::location::Regions;

/// A record set in the one form every input takes (Route 53's `ResourceRecordSet`), with
/// where it came from, for its problems.
/// Borrowed where the sets are already stored (the store road builds from its own copy).
#[derive(Clone, Debug)]
pub struct SourcedSet<'a> {
    pub set: Cow<'a, ResourceRecordSet>,
    /// The zone file and line of its first record, or the config / batch file as a whole.
    pub place: Where,
    /// For config records and batch sets: the record's number (1-based, in the zone's
    /// order) and its name as written.
    pub record: Option<(usize, Cow<'a, str>)>,
    /// Its TTL and routing policy, when already read (an API batch's sets are read when the
    /// batch is applied): read once.
    pub checked: Option<records::Checked>,
}

/// Record sets a new Route 53 hosted zone `origin` starts with (a zone declared without an
/// SOA, or created by the API): an SOA and an NS naming `name_servers` (the delegation set;
/// none given: `ns1.<origin>`), absolute, as Route 53 lists them.
pub fn default_sets(origin: &Name, name_servers: &[String]) -> Vec<ResourceRecordSet> {
    let apex = absolute_lower(&origin.to_ascii());
    let under = |label: &str| absolute_lower(&format!("{label}.{}", apex.trim_end_matches('.')));
    let servers = if name_servers.is_empty() {
        vec![under("ns1")]
    } else {
        name_servers.iter().map(|n| absolute_lower(n)).collect()
    };
    let mbox = under("hostmaster");
    let set = |rtype: &str, ttl: i64, values: Vec<String>| {
        ResourceRecordSet::records(
            apex.clone(),
            rtype.into(),
            ttl,
            values
                .into_iter()
                .map(|value| records::ValueJson { value })
                .collect(),
        )
    };
    vec![
        set(
            "SOA",
            900,
            vec![format!("{} {mbox} 1 7200 900 1209600 86400", servers[0])],
        ),
        set("NS", 172800, servers),
    ]
}

/// What a record set answers with, read.
enum Body {
    Alias(Alias),
    /// TTL and one record per value.
    Records(u32, Vec<Record>),
}

/// Builds the zone `origin` from its record sets: each read once, then assembled with the
/// rules a zone must satisfy. `regions` resolves geoproximity region names; `source` names
/// the zone in zone-wide problems (no SOA).
pub fn build(
    origin: &Name,
    sets: &[SourcedSet<'_>],
    regions: &Regions,
    source: &Where,
) -> Result<Zone, Problem> {
    Zone::from_inputs(origin.clone(), read(origin, sets, regions)?, source)
}

/// Reads record sets into what a zone is assembled from: each set's routing policy, alias
/// target or records, once.
fn read(origin: &Name, sets: &[SourcedSet<'_>], regions: &Regions) -> Result<Inputs, Problem> {
    let origin = &fqdn(origin.clone());
    let mut records = Vec::new();
    let mut aliases = Vec::new();
    let mut policies = Vec::new();
    let progress = crate::progress::Progress::new(
        format!("zone {origin}: record sets read"),
        Some(sets.len()),
    );
    for (done, sourced) in sets.iter().enumerate() {
        progress.update(done);
        let (s, place) = (sourced.set.as_ref(), &sourced.place);
        let at = |message: String| match &sourced.record {
            Some((n, name)) => place.error(format!(
                "zone {origin} record #{n} ({name} {}): {message}",
                s.rtype
            )),
            None => place.error(message),
        };
        let checked = match &sourced.checked {
            Some(checked) => checked.clone(),
            None => records::check(s, regions).map_err(at)?,
        };
        let name = parse_name(&s.name, &Name::root(), place).map_err(|e| at(e.message))?;
        let rtype = parse_type(&s.rtype).ok_or_else(|| at(format!("unknown type {}", s.rtype)))?;
        let body = match &s.alias_target {
            Some(alias) => Body::Alias(Alias {
                name: name.clone(),
                rtype,
                target: parse_name(&alias.dns_name, &Name::root(), place)
                    .map_err(|e| at(e.message))?,
                evaluate_target_health: alias.evaluate_target_health,
            }),
            None => {
                let ttl = checked.ttl.ok_or_else(|| at("ttl is required".into()))?;
                let values = s.resource_records.as_deref().unwrap_or_default();
                if values.is_empty() {
                    return Err(at("values is empty".into()));
                }
                let parsed = values
                    .iter()
                    .map(|v| {
                        rdata::parse_value(rtype, &v.value, origin)
                            .map(|data| Record::from_rdata(name.clone(), ttl, data))
                            .map_err(|e| at(format!("bad {rtype} record: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Body::Records(ttl, parsed)
            }
        };
        match checked.policy {
            Some(policy) => {
                let target = match body {
                    Body::Alias(a) => policy::Target::Alias {
                        name: LowerName::new(&a.target),
                        evaluate_target_health: a.evaluate_target_health,
                    },
                    Body::Records(ttl, parsed) => policy::Target::Records {
                        ttl,
                        rdatas: parsed.into_iter().map(|rec| rec.data).collect(),
                    },
                };
                let set = policy::RecordSet {
                    set_id: s.set_identifier.clone(),
                    policy,
                    health_check: s.health_check_id.clone(),
                    target,
                };
                policies.push((PolicySet { name, rtype, set }, place.clone()));
            }
            None if s.health_check_id.is_some() => {
                return Err(at(
                    "health_check needs a routing policy (a simple record cannot have one)".into(),
                ));
            }
            None => match body {
                Body::Alias(a) => aliases.push((a, place.clone())),
                Body::Records(_, parsed) => {
                    records.extend(parsed.into_iter().map(|rec| (rec, place.clone())));
                }
            },
        }
    }
    progress.finish(sets.len());
    Ok(Inputs {
        records,
        aliases,
        policies,
    })
}

/// `zone` if every HealthCheckId its record sets name is in `known` (Route 53:
/// NoSuchHealthCheck), else every unknown one, at `place`. With `only`, the groups at those
/// names are checked (the others were before).
pub fn check_known_checks(
    zone: Zone,
    known: &HashSet<&str>,
    place: &Where,
    only: Option<&HashSet<LowerName>>,
) -> Result<Zone, Problem> {
    let mut unknown: Vec<String> = zone
        .policy_groups()
        .filter(|(name, _, _)| only.is_none_or(|names| names.contains(*name)))
        .flat_map(|(name, rtype, sets)| {
            sets.iter().filter_map(move |s| {
                let id = s.health_check.as_deref()?;
                (!known.contains(id))
                    .then(|| format!("{name} {rtype}: HealthCheckId {id} is not defined"))
            })
        })
        .collect();
    if unknown.is_empty() {
        return Ok(zone);
    }
    unknown.sort();
    Err(place.error(format!(
        "zone {}: unknown health checks:\n  {}",
        zone.origin(),
        unknown.join("\n  ")
    )))
}

/// What lets [`Zone::rebuild`] redo only the names a change touches. Derived from the rest of
/// the zone while it is assembled; equal for equal zones.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Index {
    /// Owner -> the types of its routing-policy groups (engine aliases included).
    group_types: Map<LowerName, Vec<RecordType>>,
    /// Name -> how many owner names lie strictly below it (for empty non-terminals).
    below: Map<LowerName, u32>,
    /// Owner -> the names its aliases point at (plain aliases and alias members of groups).
    depends_on: Map<LowerName, Vec<LowerName>>,
    /// Target -> the owners whose data follow it: the reverse of `depends_on`.
    dependents: Map<LowerName, Set<LowerName>>,
    /// Policy group -> the plain RRsets its alias walk reaches (keys of `alias_targets`).
    reaches: Map<(LowerName, RecordType), Vec<(LowerName, RecordType)>>,
    /// `alias_targets` key -> how many groups reach it.
    alias_target_refs: Map<(LowerName, RecordType), u32>,
    /// Health check id -> the owners of the policy groups whose record sets name it.
    checks: Map<String, Set<LowerName>>,
}

/// Removes `owner` from the owners kept under `key`, and the key once it has none.
fn unlink<K: std::hash::Hash + Eq + Clone>(
    map: &mut Map<K, Set<LowerName>>,
    key: &K,
    owner: &LowerName,
) {
    if let Some(owners) = map.get_mut(key) {
        owners.remove(owner);
        if owners.is_empty() {
            map.remove(key);
        }
    }
}

/// A zone's record sets, read: what [`Zone`] is assembled from.
#[derive(Default)]
struct Inputs {
    records: Vec<(Record, Where)>,
    aliases: Vec<(Alias, Where)>,
    policies: Vec<(PolicySet, Where)>,
}

impl Inputs {
    /// Every owner name the inputs have data at.
    fn owners(&self) -> HashSet<LowerName> {
        let records = self.records.iter().map(|(r, _)| LowerName::new(&r.name));
        let aliases = self.aliases.iter().map(|(a, _)| LowerName::new(&a.name));
        let policies = self.policies.iter().map(|(p, _)| LowerName::new(&p.name));
        records.chain(aliases).chain(policies).collect()
    }
}

impl Zone {
    /// Builds a zone from records, aliases and routing-policy sets, checking what a zone must
    /// satisfy. `place` says where each came from, for error messages; `source` names the
    /// zone in zone-wide ones (no SOA).
    pub fn from_records(
        origin: Name,
        records: Vec<(Record, Where)>,
        aliases: Vec<(Alias, Where)>,
        policies: Vec<(PolicySet, Where)>,
        source: &Path,
    ) -> Result<Zone, Problem> {
        let inputs = Inputs {
            records,
            aliases,
            policies,
        };
        Zone::from_inputs(origin, inputs, &Where::file(source))
    }

    /// Builds a zone from its inputs; `source` names it in zone-wide problems.
    fn from_inputs(origin: Name, inputs: Inputs, source: &Where) -> Result<Zone, Problem> {
        let names = inputs.owners();
        let mut zone = Zone {
            origin: fqdn(origin),
            nodes: Map::new(),
            empty_non_terminals: Set::new(),
            cuts: Set::new(),
            policies: Map::new(),
            alias_targets: Map::new(),
            index: Index::default(),
            journal: Default::default(),
            denial: Default::default(),
        };
        zone.assemble(&names, inputs, source)?;
        Ok(zone)
    }

    /// This zone after a change to the record sets at the names `changed`: `sets_at(name)`
    /// gives every record set at `name` afterwards, in the store's order. Only those names
    /// and the names whose data follow theirs (aliases, alias members of policy groups) are
    /// read and assembled again, with the same rules as a full [`build`]; the result equals
    /// a full build of the same record sets. Nothing of `self` changes.
    ///
    /// Also returns the names whose answers may differ: those assembled again, and every name
    /// below a delegation point that appeared or went.
    pub fn rebuild(
        &self,
        changed: &HashSet<LowerName>,
        sets_at: &dyn Fn(&LowerName) -> Vec<SourcedSet<'static>>,
        regions: &Regions,
        source: &Where,
    ) -> Result<(Zone, HashSet<LowerName>), Problem> {
        let touched = self.dependents_of(changed);
        let sets: Vec<SourcedSet<'static>> = touched.iter().flat_map(sets_at).collect();
        let inputs = read(&self.origin, &sets, regions)?;
        if let Some(stray) = inputs.owners().into_iter().find(|o| !touched.contains(o)) {
            // A set handed in for a name that did not change: its name is outside `changed`.
            return Err(source.error(format!("{stray}: a record set outside the changed names")));
        }
        let mut zone = self.clone();
        zone.denial = Default::default();
        zone.forget(&touched);
        zone.assemble(&touched, inputs, source)?;
        let mut answers = touched.clone();
        for cut in touched
            .iter()
            .filter(|n| self.cuts.contains(*n) != zone.cuts.contains(*n))
        {
            answers.extend(
                zone.nodes
                    .keys()
                    .filter(|n| *n != cut && cut.zone_of(n))
                    .cloned(),
            );
        }
        Ok((zone, answers))
    }

    /// `names` and every owner whose data follow one of them, transitively: what
    /// [`rebuild`](Self::rebuild) asks `sets_at` for.
    pub fn dependents_of(&self, names: &HashSet<LowerName>) -> HashSet<LowerName> {
        let mut all = names.clone();
        let mut queue: Vec<LowerName> = names.iter().cloned().collect();
        while let Some(n) = queue.pop() {
            for owner in self.index.dependents.get(&n).into_iter().flatten() {
                if all.insert(owner.clone()) {
                    queue.push(owner.clone());
                }
            }
        }
        all
    }

    /// The owners whose answers follow the health of the checks `ids`: the policy groups
    /// that name one of them, and every owner whose data follow those (aliases into them).
    pub fn following_checks(&self, ids: &HashSet<String>) -> HashSet<LowerName> {
        let owners: HashSet<LowerName> = ids
            .iter()
            .filter_map(|id| self.index.checks.get(id))
            .flat_map(|owners| owners.iter().cloned())
            .collect();
        self.dependents_of(&owners)
    }

    /// Removes everything at `names`, keeping the index true for what remains.
    fn forget(&mut self, names: &HashSet<LowerName>) {
        for n in names {
            if self.nodes.remove(n).is_some() {
                self.count_below(n, -1);
            }
            self.cuts.remove(n);
            for rtype in self.index.group_types.remove(n).unwrap_or_default() {
                let key = (n.clone(), rtype);
                for set in self.policies.remove(&key).unwrap_or_default() {
                    if let Some(id) = set.health_check {
                        unlink(&mut self.index.checks, &id, n);
                    }
                }
                for reached in self.index.reaches.remove(&key).unwrap_or_default() {
                    self.release_alias_target(&reached);
                }
            }
            for target in self.index.depends_on.remove(n).unwrap_or_default() {
                unlink(&mut self.index.dependents, &target, n);
            }
        }
    }

    fn release_alias_target(&mut self, key: &(LowerName, RecordType)) {
        if let Some(refs) = self.index.alias_target_refs.get_mut(key) {
            *refs -= 1;
            if *refs == 0 {
                self.index.alias_target_refs.remove(key);
                self.alias_targets.remove(key);
            }
        }
    }

    /// Adds `delta` to the count of names below each ancestor of `name` inside the zone.
    fn count_below(&mut self, name: &LowerName, delta: i32) {
        let apex = LowerName::new(&self.origin);
        let mut n = name.clone();
        while n != apex && apex.zone_of(&n) && !n.is_root() {
            n = n.base_name();
            let count = self.index.below.entry(n.clone()).or_default();
            *count = count
                .checked_add_signed(delta)
                .expect("counts stay consistent");
            if *count == 0 {
                self.index.below.remove(&n);
            }
        }
    }

    /// Assembles the data at `names` (absent from the zone) from `inputs` (all the data at
    /// those names), with the rest of the zone as it is, and checks every rule for them.
    fn assemble(
        &mut self,
        names: &HashSet<LowerName>,
        inputs: Inputs,
        source: &Where,
    ) -> Result<(), Problem> {
        let origin = self.origin.clone();
        let apex = LowerName::new(&origin);
        let mut first_place: HashMap<(LowerName, RecordType), Where> = HashMap::new();
        let nodes = &mut self.nodes;
        let mut fresh: HashMap<LowerName, Vec<RrSet>> = HashMap::new();
        let progress = crate::progress::Progress::new(
            format!("zone {origin}: records assembled"),
            Some(inputs.records.len()),
        );
        for (done, (record, place)) in inputs.records.into_iter().enumerate() {
            progress.update(done);
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
            let sets = fresh.entry(owner.clone()).or_default();
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
        nodes.extend(fresh);

        let mut groups = policy_groups(&apex, nodes, inputs.policies)?;
        let old_groups = &self.policies;
        let is_group = |key: &(LowerName, RecordType)| {
            groups.contains_key(key) || old_groups.contains_key(key)
        };
        let engine =
            materialize_aliases(&apex, nodes, &mut first_place, &inputs.aliases, &is_group)?;
        let mut depends_on: HashMap<LowerName, Vec<LowerName>> = HashMap::new();
        for (alias, _) in &inputs.aliases {
            depends_on
                .entry(LowerName::new(&alias.name))
                .or_default()
                .push(LowerName::new(&alias.target));
        }
        for (key, set) in engine {
            groups.insert(key, vec![set]);
        }
        for ((owner, _), sets) in &groups {
            nodes.entry(owner.clone()).or_default(); // a policy-routed name exists
            for (set, _) in sets {
                if let policy::Target::Alias { name, .. } = &set.target {
                    depends_on
                        .entry(owner.clone())
                        .or_default()
                        .push(name.clone());
                }
            }
        }
        let reaches = check_engine_aliases(&groups, old_groups, nodes)?;
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

        let place_of = |owner: &LowerName, rtype: RecordType| {
            first_place
                .get(&(owner.clone(), rtype))
                .cloned()
                .unwrap_or_else(|| source.clone())
        };
        for owner in names {
            let Some(sets) = nodes.get(owner) else {
                continue;
            };
            if sets.iter().any(|s| s.rtype == RecordType::CNAME) {
                let place = place_of(owner, RecordType::CNAME);
                if *owner == apex {
                    return Err(place.error("a CNAME cannot be at the zone apex (RFC 1912 2.4)"));
                }
                // A signed zone's CNAME has its RRSIG and NSEC beside it (RFC 4035 2.5).
                let other = sets
                    .iter()
                    .filter(|s| !matches!(s.rtype, RecordType::RRSIG | RecordType::NSEC))
                    .count();
                if other > 1 {
                    return Err(place.error(format!(
                        "{owner} has a CNAME and other data (RFC 1034 3.6.2)"
                    )));
                }
                if sets
                    .iter()
                    .any(|s| s.rtype == RecordType::CNAME && s.rdatas.len() > 1)
                {
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
            return Err(source.error(format!("zone {origin} has no SOA record")));
        }

        // Valid: record what was assembled. A node's RRsets in type order, whatever order
        // its record sets came in (the store's, a zone file's, a batch's).
        for owner in names {
            if let Some(sets) = self.nodes.get_mut(owner) {
                sets.sort_by_key(|s| u16::from(s.rtype));
            }
        }
        for ((owner, rtype), sets) in groups {
            let types = self.index.group_types.entry(owner.clone()).or_default();
            let at = types.partition_point(|t| *t < rtype);
            types.insert(at, rtype);
            for id in sets.iter().filter_map(|(s, _)| s.health_check.clone()) {
                self.index
                    .checks
                    .entry(id)
                    .or_default()
                    .insert(owner.clone());
            }
            self.policies
                .insert((owner, rtype), sets.into_iter().map(|(s, _)| s).collect());
        }
        for (group, reached) in reaches {
            for (key, set) in &reached {
                *self.index.alias_target_refs.entry(key.clone()).or_default() += 1;
                self.alias_targets.insert(key.clone(), vec![set.clone()]);
            }
            self.index
                .reaches
                .insert(group, reached.into_iter().map(|(k, _)| k).collect());
        }
        for (owner, mut targets) in depends_on {
            targets.sort();
            targets.dedup();
            for target in &targets {
                self.index
                    .dependents
                    .entry(target.clone())
                    .or_default()
                    .insert(owner.clone());
            }
            self.index.depends_on.insert(owner, targets);
        }
        for owner in names {
            if self.nodes.contains_key(owner) {
                self.count_below(owner, 1);
            }
        }
        for owner in names {
            let is_cut = *owner != apex
                && self
                    .nodes
                    .get(owner)
                    .is_some_and(|sets| sets.iter().any(|s| s.rtype == RecordType::NS));
            if is_cut {
                self.cuts.insert(owner.clone());
            }
            // The name itself and its ancestors may have become, or stopped being, empty
            // non-terminals.
            let mut n = owner.clone();
            while n != apex && apex.zone_of(&n) {
                let ent = !self.nodes.contains_key(&n) && self.index.below.contains_key(&n);
                if ent {
                    self.empty_non_terminals.insert(n.clone());
                } else {
                    self.empty_non_terminals.remove(&n);
                }
                n = n.base_name();
            }
        }
        Ok(())
    }
}

/// Validates aliases and adds each as an RRset holding its target's data. Rejected: a CNAME
/// alias at the apex, an alias beside records of its own type, a target outside the zone or
/// without records of that type, and loops.
/// Aliases whose target is a routing-policy group are not materialized: they are returned as
/// simple engine groups, resolved per query.
fn materialize_aliases(
    apex: &LowerName,
    nodes: &mut Map<LowerName, Vec<RrSet>>,
    first_place: &mut HashMap<(LowerName, RecordType), Where>,
    aliases: &[(Alias, Where)],
    is_group: &dyn Fn(&(LowerName, RecordType)) -> bool,
) -> Result<Vec<EngineAlias>, Problem> {
    let mut engine = Vec::new();
    let mut by_key: BTreeMap<(LowerName, RecordType), (LowerName, Where)> = BTreeMap::new();
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
        if clash || by_key.contains_key(&key) || is_group(&key) {
            return Err(place.error(format!(
                "alias {owner} {} conflicts with other {} data at that name",
                alias.rtype, alias.rtype
            )));
        }
        by_key.insert(key, (target, place.clone()));
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
                None if is_group(&(at.clone(), *rtype)) => break None,
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

type EngineAlias = ((LowerName, RecordType), (policy::RecordSet, Where));
type Groups = HashMap<(LowerName, RecordType), Vec<(policy::RecordSet, Where)>>;

/// Groups routing-policy record sets by name and type and checks Route 53's rules: one
/// policy per group, no simple records beside it, unique set ids and locations, limits.
fn policy_groups(
    apex: &LowerName,
    nodes: &Map<LowerName, Vec<RrSet>>,
    sets: Vec<(PolicySet, Where)>,
) -> Result<Groups, Problem> {
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

/// What each policy group's alias walk reaches: the plain RRsets its aliases (and those of
/// the groups they lead to) end at, as simple record sets for the engine.
type Reaches = HashMap<(LowerName, RecordType), Vec<((LowerName, RecordType), policy::RecordSet)>>;

/// Every alias in a policy group of `groups` must point at something of its type in the zone,
/// without loops; groups outside `groups` are the zone's `others`. Returns what each group of
/// `groups` reaches.
fn check_engine_aliases(
    groups: &Groups,
    others: &Map<(LowerName, RecordType), Vec<policy::RecordSet>>,
    nodes: &Map<LowerName, Vec<RrSet>>,
) -> Result<Reaches, Problem> {
    struct Walk<'a> {
        groups: &'a Groups,
        others: &'a Map<(LowerName, RecordType), Vec<policy::RecordSet>>,
        nodes: &'a Map<LowerName, Vec<RrSet>>,
        place: &'a Where,
    }
    impl Walk<'_> {
        /// Follows the aliases of group `at`; `path` is the chain of groups that led here.
        fn walk(
            &self,
            at: &LowerName,
            rtype: RecordType,
            path: &mut Vec<LowerName>,
            reached: &mut Vec<((LowerName, RecordType), policy::RecordSet)>,
        ) -> Result<(), Problem> {
            if path.contains(at) {
                let p: Vec<String> = path.iter().chain([at]).map(ToString::to_string).collect();
                return Err(self.place.error(format!("alias loop: {}", p.join(" -> "))));
            }
            let key = (at.clone(), rtype);
            let targets: Option<Vec<&LowerName>> = match self.groups.get(&key) {
                Some(sets) => Some(sets.iter().filter_map(|(s, _)| alias_name(s)).collect()),
                None => self
                    .others
                    .get(&key)
                    .map(|sets| sets.iter().filter_map(alias_name).collect()),
            };
            if let Some(targets) = targets {
                path.push(at.clone());
                for name in targets {
                    self.walk(name, rtype, path, reached)?;
                }
                path.pop();
                return Ok(());
            }
            let Some(plain) = self
                .nodes
                .get(at)
                .and_then(|s| s.iter().find(|s| s.rtype == rtype))
            else {
                return Err(self.place.error(format!(
                    "alias target {at} has no {rtype} records in this zone"
                )));
            };
            if !reached.iter().any(|(k, _)| *k == key) {
                reached.push((
                    key,
                    policy::RecordSet {
                        set_id: None,
                        policy: policy::Policy::Simple,
                        health_check: None,
                        target: policy::Target::Records {
                            ttl: plain.ttl,
                            rdatas: plain.rdatas.clone(),
                        },
                    },
                ));
            }
            Ok(())
        }
    }
    fn alias_name(set: &policy::RecordSet) -> Option<&LowerName> {
        match &set.target {
            policy::Target::Alias { name, .. } => Some(name),
            policy::Target::Records { .. } => None,
        }
    }
    let mut out = Reaches::new();
    for ((owner, rtype), sets) in groups {
        let walk = Walk {
            groups,
            others,
            nodes,
            place: &sets[0].1,
        };
        let mut reached = Vec::new();
        walk.walk(owner, *rtype, &mut Vec::new(), &mut reached)?;
        out.insert((owner.clone(), *rtype), reached);
    }
    Ok(out)
}
