//! Route 53 routing policies, as a pure function of (record sets, health state, client
//! location, random source). Semantics: `docs/route53-semantics.md`.
//!
//! ```text
//!   group of record sets (one name+type, one policy)
//!        │  policy ──> preference order    weighted: weighted draw without replacement,
//!        │                                           non-zero weights first, zeros after
//!        │                                 failover: primary, secondary
//!        │                                 latency / geoproximity: nearest first
//!        │                                 geolocation / IP-based: most specific match first
//!        ▼
//!   first healthy set in that order, else the first (fail-open); multivalue: up to 8 healthy
//!        │
//!        ▼  alias? resolve the target group the same way (EvaluateTargetHealth makes an alias
//!           healthy only if its target group has a healthy set: selection backs out of it)
//! ```
//!
//! Health is never checked here: the caller passes the current state ([`Health`]).

use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::rr::{LowerName, RData, RecordType};
use ipnet::IpNet;

/// Most record sets a multivalue answer returns.
pub const MAX_MULTIVALUE: usize = 8;
/// Deepest alias chain followed.
const MAX_ALIAS_DEPTH: usize = 8;

/// One record set of a group (name + type): Route 53's ResourceRecordSet.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordSet {
    /// Route 53's SetIdentifier (absent for simple records).
    pub set_id: Option<String>,
    pub policy: Policy,
    /// Route 53's HealthCheckId: the set is unhealthy while that check is.
    pub health_check: Option<String>,
    pub target: Target,
}

/// What a record set answers with.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Records {
        ttl: u32,
        rdatas: Vec<RData>,
    },
    /// Route 53 alias: the records of another group of the same type in the zone.
    Alias {
        name: LowerName,
        evaluate_target_health: bool,
    },
}

/// Route 53's routing policies.
#[derive(Clone, Debug, PartialEq)]
pub enum Policy {
    Simple,
    /// 0..=255.
    Weighted {
        weight: u8,
    },
    Failover(FailoverRole),
    MultiValue,
    Latency {
        region: String,
    },
    Geolocation(GeoLocation),
    /// Bias -99..=99.
    Geoproximity {
        lat: f64,
        lon: f64,
        bias: i8,
    },
    /// A location of a CIDR collection, or `*` for the default.
    IpBased {
        collection: String,
        location: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailoverRole {
    Primary,
    Secondary,
}

/// Route 53's GeoLocation of a record set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GeoLocation {
    /// AF AN AS EU NA OC SA.
    Continent(String),
    /// ISO 3166-1 alpha-2.
    Country(String),
    Subdivision {
        country: String,
        subdivision: String,
    },
    /// `*`.
    Default,
}

/// Where the client is: from EDNS Client Subnet, else the resolver's address, with what the
/// geo database and latency table say about it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientLocation {
    pub addr: IpAddr,
    /// Bits of `addr` that are known (the ECS source prefix, or the full address).
    pub prefix_len: u8,
    pub continent: Option<String>,
    pub country: Option<String>,
    pub subdivision: Option<String>,
    /// Latitude, longitude.
    pub coordinates: Option<(f64, f64)>,
}

/// Current health: a check id that is unknown here counts as healthy (a new check is healthy
/// until it has data).
pub trait Health {
    fn is_healthy(&self, check_id: &str) -> bool;
}

/// Client-to-region latency (ms). Replaceable: a table keyed by client prefix, or measurements.
pub trait LatencySource {
    fn latency_ms(&self, client: &ClientLocation, region: &str) -> Option<f64>;
}

/// The record sets of other names, for alias targets.
pub trait Groups {
    fn group(&self, name: &LowerName, rtype: RecordType) -> Option<&[RecordSet]>;
}

/// A uniform random number below `n` (n > 0). Tests pass a seeded source.
pub trait RandomSource {
    fn below(&mut self, n: u64) -> u64;

    /// An index into `weights` (not all zero), each chosen with probability weight / sum: one
    /// draw below the sum, walked along the cumulative weights. The fast-path compiler
    /// overrides it to see the choice whole (see `fastpath::compile::SlotRandom`).
    fn pick(&mut self, weights: &[u64]) -> usize {
        let draw = self.below(weights.iter().sum());
        weighted_index(weights, draw)
    }
}

/// The index of `weights` whose share of `0..sum` holds `draw` (the cumulative walk of
/// [`RandomSource::pick`]).
pub fn weighted_index(weights: &[u64], mut draw: u64) -> usize {
    weights
        .iter()
        .position(|w| {
            if draw < *w {
                true
            } else {
                draw -= w;
                false
            }
        })
        .unwrap_or(weights.len() - 1)
}

/// SplitMix64: a small, seedable [`RandomSource`].
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl RandomSource for SplitMix64 {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

/// Named CIDR collections: collection -> location -> blocks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CidrCollections {
    pub collections: HashMap<String, HashMap<String, Vec<IpNet>>>,
}

impl CidrCollections {
    /// The length of the longest block of `location` containing the client's prefix. A client
    /// prefix shorter than a block does not match it.
    pub fn match_len(
        &self,
        collection: &str,
        location: &str,
        client: &ClientLocation,
    ) -> Option<u8> {
        self.collections
            .get(collection)?
            .get(location)?
            .iter()
            .filter(|block| block.prefix_len() <= client.prefix_len && block.contains(&client.addr))
            .map(IpNet::prefix_len)
            .max()
    }
}

/// Everything a selection may consult.
pub struct Context<'a> {
    pub health: &'a dyn Health,
    pub client: &'a ClientLocation,
    pub latency: &'a dyn LatencySource,
    pub cidr: &'a CidrCollections,
    pub groups: &'a dyn Groups,
}

/// The result for one query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answer {
    /// (TTL, data) of every record to answer with; empty = NOERROR without an answer.
    pub records: Vec<(u32, RData)>,
    /// ECS scope prefix (RFC 7871 section 7.2.1): how many bits of the client address the answer
    /// depended on; 0 when it did not depend on location.
    pub scope: u8,
    /// A location-based choice was made on the way (the scope is the client's prefix length,
    /// whatever that is).
    pub located: bool,
}

/// Answers a query for the group `sets` of type `rtype`.
pub fn answer(
    sets: &[RecordSet],
    rtype: RecordType,
    ctx: &Context<'_>,
    rng: &mut dyn RandomSource,
) -> Answer {
    let mut out = Answer::default();
    resolve(sets, rtype, ctx, rng, 0, &mut out);
    out
}

fn resolve(
    sets: &[RecordSet],
    rtype: RecordType,
    ctx: &Context<'_>,
    rng: &mut dyn RandomSource,
    depth: usize,
    out: &mut Answer,
) {
    if depth > MAX_ALIAS_DEPTH {
        return;
    }
    if depends_on_location(sets) {
        out.scope = out.scope.max(ctx.client.prefix_len);
        out.located = true;
    }
    for set in choose(sets, rtype, ctx, rng) {
        match &set.target {
            Target::Records { ttl, rdatas } => {
                out.records.extend(rdatas.iter().map(|r| (*ttl, r.clone())));
            }
            Target::Alias { name, .. } => {
                if let Some(target) = ctx.groups.group(name, rtype) {
                    resolve(target, rtype, ctx, rng, depth + 1, out);
                }
            }
        }
    }
}

/// The aspects of the client's location an answer can depend on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Aspects {
    /// Continent, country, subdivision (geolocation).
    pub geo: bool,
    /// Coordinates (geoproximity).
    pub coordinates: bool,
    /// Latency to regions.
    pub latency: bool,
    /// CIDR-collection blocks (IP-based).
    pub cidr: bool,
}

impl Aspects {
    /// True if the answer can depend on the client's location at all.
    pub fn any(&self) -> bool {
        self.geo || self.coordinates || self.latency || self.cidr
    }

    fn add(&mut self, other: Aspects) {
        self.geo |= other.geo;
        self.coordinates |= other.coordinates;
        self.latency |= other.latency;
        self.cidr |= other.cidr;
    }

    fn of(sets: &[RecordSet]) -> Aspects {
        let mut out = Aspects::default();
        for s in sets {
            match s.policy {
                Policy::Geolocation(_) => out.geo = true,
                Policy::Geoproximity { .. } => out.coordinates = true,
                Policy::Latency { .. } => out.latency = true,
                Policy::IpBased { .. } => out.cidr = true,
                Policy::Simple | Policy::Weighted { .. } | Policy::Failover(_) => {}
                Policy::MultiValue => {}
            }
        }
        out
    }
}

/// The aspects of the client's location the answer can depend on: the location policies in
/// the group and in the alias targets it can reach.
pub fn location_aspects(sets: &[RecordSet], rtype: RecordType, groups: &dyn Groups) -> Aspects {
    let mut out = Aspects::of(sets);
    // Each reachable group again only when reached shallower than before: the union is the
    // same however often it is reached, but a group first met near the depth limit may lead
    // further when met higher up.
    let mut shallowest: HashMap<&LowerName, usize> = HashMap::new();
    let mut next: Vec<(&[RecordSet], usize)> = vec![(sets, 0)];
    while let Some((sets, depth)) = next.pop() {
        if depth >= MAX_ALIAS_DEPTH {
            continue;
        }
        for s in sets {
            if let Target::Alias { name, .. } = &s.target
                && shallowest.get(name).is_none_or(|d| depth + 1 < *d)
                && let Some(target) = groups.group(name, rtype)
            {
                shallowest.insert(name, depth + 1);
                out.add(Aspects::of(target));
                next.push((target, depth + 1));
            }
        }
    }
    out
}

fn depends_on_location(sets: &[RecordSet]) -> bool {
    Aspects::of(sets).any()
}

/// Healthy: its own check passes and, with EvaluateTargetHealth, its target group has a
/// healthy set. Sets without a check are healthy.
fn is_healthy(set: &RecordSet, rtype: RecordType, ctx: &Context<'_>, depth: usize) -> bool {
    if let Some(id) = &set.health_check
        && !ctx.health.is_healthy(id)
    {
        return false;
    }
    match &set.target {
        Target::Alias {
            name,
            evaluate_target_health: true,
        } if depth < MAX_ALIAS_DEPTH => ctx
            .groups
            .group(name, rtype)
            .is_some_and(|target| target.iter().any(|t| is_healthy(t, rtype, ctx, depth + 1))),
        _ => true,
    }
}

/// The chosen record sets of a group: one, several (multivalue), or none (no geolocation match).
fn choose<'s>(
    sets: &'s [RecordSet],
    rtype: RecordType,
    ctx: &Context<'_>,
    rng: &mut dyn RandomSource,
) -> Vec<&'s RecordSet> {
    let healthy = |s: &RecordSet| is_healthy(s, rtype, ctx, 0);
    if sets.iter().all(|s| s.policy == Policy::MultiValue) {
        let mut pool: Vec<&RecordSet> = sets.iter().filter(|s| healthy(s)).collect();
        if pool.is_empty() {
            pool = sets.iter().collect(); // all unhealthy: up to 8 unhealthy ones
        }
        shuffle(&mut pool, rng);
        pool.truncate(MAX_MULTIVALUE);
        return pool;
    }
    if matches!(
        sets.first().map(|s| &s.policy),
        Some(Policy::Weighted { .. })
    ) {
        return weighted_choice(sets, &healthy, rng).into_iter().collect();
    }
    let order = preference(sets, ctx);
    // The first healthy choice; if none is healthy, all count as healthy (fail-open).
    order
        .iter()
        .find(|s| healthy(s))
        .or(order.first())
        .map(|s| vec![*s])
        .unwrap_or_default()
}

fn shuffle<T>(items: &mut [T], rng: &mut dyn RandomSource) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// The policy's order of preference over the group.
fn preference<'s>(sets: &'s [RecordSet], ctx: &Context<'_>) -> Vec<&'s RecordSet> {
    let Some(first) = sets.first() else {
        return Vec::new();
    };
    match first.policy {
        // Weighted groups are chosen by `weighted_choice`.
        Policy::Simple | Policy::MultiValue | Policy::Weighted { .. } => sets.iter().collect(),
        Policy::Failover(_) => {
            let role = |r| sets.iter().filter(move |s| s.policy == Policy::Failover(r));
            role(FailoverRole::Primary)
                .chain(role(FailoverRole::Secondary))
                .collect()
        }
        Policy::Latency { .. } => by_key(sets, |s| match &s.policy {
            Policy::Latency { region } => ctx.latency.latency_ms(ctx.client, region),
            _ => None,
        }),
        Policy::Geoproximity { .. } => {
            by_key(sets, |s| match (&s.policy, ctx.client.coordinates) {
                (Policy::Geoproximity { lat, lon, bias }, Some(client)) => {
                    Some(biased_distance(distance_km(client, (*lat, *lon)), *bias))
                }
                _ => None,
            })
        }
        Policy::Geolocation(_) => {
            let mut matches: Vec<(u8, &RecordSet)> = sets
                .iter()
                .filter_map(|s| match &s.policy {
                    Policy::Geolocation(g) => geo_specificity(g, ctx.client).map(|k| (k, s)),
                    _ => None,
                })
                .collect();
            matches.sort_by_key(|(k, _)| std::cmp::Reverse(*k));
            matches.into_iter().map(|(_, s)| s).collect()
        }
        Policy::IpBased { .. } => {
            let mut matches: Vec<(u8, &RecordSet)> = sets
                .iter()
                .filter_map(|s| match &s.policy {
                    Policy::IpBased { location, .. } if location == "*" => Some((0, s)),
                    Policy::IpBased {
                        collection,
                        location,
                    } => ctx
                        .cidr
                        .match_len(collection, location, ctx.client)
                        .map(|len| (len + 1, s)),
                    _ => None,
                })
                .collect();
            matches.sort_by_key(|(k, _)| std::cmp::Reverse(*k));
            matches.into_iter().map(|(_, s)| s).collect()
        }
    }
}

/// Sets ordered by ascending key; sets without a key (no data) come last.
fn by_key(sets: &[RecordSet], key: impl Fn(&RecordSet) -> Option<f64>) -> Vec<&RecordSet> {
    let mut keyed: Vec<(f64, &RecordSet)> = sets
        .iter()
        .map(|s| (key(s).unwrap_or(f64::INFINITY), s))
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    keyed.into_iter().map(|(_, s)| s).collect()
}

/// Route 53's weighted choice, with one random draw: among the healthy sets with a non-zero
/// weight, each with probability weight / sum; zero-weight sets (equal odds) only when no
/// non-zero set is healthy; if no set is healthy, all count as healthy (fail-open). A single
/// candidate takes no draw. (The XDP fast path indexes a ring built from exactly this draw.)
fn weighted_choice<'s>(
    sets: &'s [RecordSet],
    healthy: &dyn Fn(&RecordSet) -> bool,
    rng: &mut dyn RandomSource,
) -> Option<&'s RecordSet> {
    let weight = |s: &RecordSet| match s.policy {
        Policy::Weighted { weight } => u64::from(weight),
        _ => 0,
    };
    let pick = |keep: &dyn Fn(&RecordSet) -> bool| -> Vec<&'s RecordSet> {
        sets.iter().filter(|s| keep(s)).collect()
    };
    let mut pool = pick(&|s| healthy(s) && weight(s) > 0);
    if pool.is_empty() {
        pool = pick(&|s| healthy(s) && weight(s) == 0);
    }
    if pool.is_empty() {
        pool = pick(&|s| weight(s) > 0);
    }
    if pool.is_empty() {
        pool = sets.iter().collect();
    }
    if pool.len() <= 1 {
        return pool.first().copied();
    }
    let mut weights: Vec<u64> = pool.iter().map(|s| weight(s)).collect();
    if weights.iter().all(|w| *w == 0) {
        weights.fill(1); // all zero: equal shares
    }
    Some(pool[rng.pick(&weights)])
}

/// How specifically a geolocation matches the client: subdivision 3, country 2, continent 1,
/// default 0; `None` if it does not match.
fn geo_specificity(g: &GeoLocation, c: &ClientLocation) -> Option<u8> {
    let eq = |a: &str, b: &Option<String>| b.as_deref().is_some_and(|b| a.eq_ignore_ascii_case(b));
    match g {
        GeoLocation::Subdivision {
            country,
            subdivision,
        } => (eq(country, &c.country) && eq(subdivision, &c.subdivision)).then_some(3),
        GeoLocation::Country(country) => eq(country, &c.country).then_some(2),
        GeoLocation::Continent(continent) => eq(continent, &c.continent).then_some(1),
        GeoLocation::Default => Some(0),
    }
}

/// Route 53's bias. Positive: distance * (1 - bias/100), expanding the resource's region.
/// Negative: distance / (1 + bias/100) with bias < 0 (so -50 doubles the distance), shrinking it,
/// as Route 53 documents ("a negative bias shrinks the region"; see `docs/route53-semantics.md`).
pub fn biased_distance(distance: f64, bias: i8) -> f64 {
    let b = f64::from(bias) / 100.0;
    if bias >= 0 {
        distance * (1.0 - b)
    } else {
        distance / (1.0 + b)
    }
}

/// Great-circle distance in km between (lat, lon) points.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6371.0;
    let (lat1, lat2) = (a.0.to_radians(), b.0.to_radians());
    let (dlat, dlon) = ((b.0 - a.0).to_radians(), (b.1 - a.1).to_radians());
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::rr::Name;
    use hickory_proto::rr::rdata::A;

    use super::*;
    use crate::health::HealthState;

    fn rec(id: &str, policy: Policy, check: Option<&str>, last_octet: u8) -> RecordSet {
        RecordSet {
            set_id: Some(id.into()),
            policy,
            health_check: check.map(Into::into),
            target: Target::Records {
                ttl: 60,
                rdatas: vec![RData::A(A(Ipv4Addr::new(192, 0, 2, last_octet)))],
            },
        }
    }

    fn alias(id: &str, policy: Policy, target: &str, eth: bool) -> RecordSet {
        RecordSet {
            set_id: Some(id.into()),
            policy,
            health_check: None,
            target: Target::Alias {
                name: LowerName::new(&Name::from_ascii(target).unwrap()),
                evaluate_target_health: eth,
            },
        }
    }

    struct NoLatency;
    impl LatencySource for NoLatency {
        fn latency_ms(&self, _: &ClientLocation, _: &str) -> Option<f64> {
            None
        }
    }

    struct Table(HashMap<&'static str, f64>);
    impl LatencySource for Table {
        fn latency_ms(&self, _: &ClientLocation, region: &str) -> Option<f64> {
            self.0.get(region).copied()
        }
    }

    #[derive(Default)]
    struct Zone(HashMap<LowerName, Vec<RecordSet>>);
    impl Groups for Zone {
        fn group(&self, name: &LowerName, _: RecordType) -> Option<&[RecordSet]> {
            self.0.get(name).map(Vec::as_slice)
        }
    }

    fn client() -> ClientLocation {
        ClientLocation {
            addr: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            prefix_len: 24,
            continent: Some("NA".into()),
            country: Some("US".into()),
            subdivision: Some("WA".into()),
            coordinates: Some((47.61, -122.33)), // Seattle
        }
    }

    struct World {
        health: HealthState,
        client: ClientLocation,
        latency: Box<dyn LatencySource>,
        cidr: CidrCollections,
        zone: Zone,
    }

    impl World {
        fn new() -> World {
            World {
                health: HealthState::default(),
                client: client(),
                latency: Box::new(NoLatency),
                cidr: CidrCollections::default(),
                zone: Zone::default(),
            }
        }
        fn down(mut self, checks: &[&str]) -> World {
            for c in checks {
                self.health.0.insert((*c).into(), false);
            }
            self
        }
        fn ctx(&self) -> Context<'_> {
            Context {
                health: &self.health,
                client: &self.client,
                latency: self.latency.as_ref(),
                cidr: &self.cidr,
                groups: &self.zone,
            }
        }
        /// The last octets answered.
        fn ask(&self, sets: &[RecordSet], seed: u64) -> Vec<u8> {
            let a = answer(sets, RecordType::A, &self.ctx(), &mut SplitMix64(seed));
            a.records
                .iter()
                .map(|(_, r)| match r {
                    RData::A(a) => a.0.octets()[3],
                    _ => 0,
                })
                .collect()
        }
    }

    #[test]
    fn simple_returns_all_values() {
        let mut set = rec("s", Policy::Simple, None, 1);
        if let Target::Records { rdatas, .. } = &mut set.target {
            rdatas.push(RData::A(A(Ipv4Addr::new(192, 0, 2, 2))));
        }
        assert_eq!(World::new().ask(&[set], 1), [1, 2]);
    }

    fn counts(world: &World, sets: &[RecordSet], n: u64) -> HashMap<u8, u64> {
        let mut c = HashMap::new();
        for seed in 0..n {
            for o in world.ask(sets, seed) {
                *c.entry(o).or_default() += 1;
            }
        }
        c
    }

    #[test]
    fn weighted_share_is_weight_over_sum() {
        let sets = [
            rec("a", Policy::Weighted { weight: 10 }, None, 1),
            rec("b", Policy::Weighted { weight: 30 }, None, 2),
            rec("c", Policy::Weighted { weight: 60 }, None, 3),
        ];
        let n = 20_000;
        let c = counts(&World::new(), &sets, n);
        // Chi-square against 10/30/60 %, 2 degrees of freedom: 13.8 is the 0.1% critical value.
        let chi: f64 = [(1u8, 0.1), (2, 0.3), (3, 0.6)]
            .iter()
            .map(|(o, p)| {
                let expected = n as f64 * p;
                (c[o] as f64 - expected).powi(2) / expected
            })
            .sum();
        assert!(chi < 13.8, "chi-square {chi}: {c:?}");
    }

    #[test]
    fn weighted_zero_weight_never_chosen_unless_all_zero() {
        let sets = [
            rec("a", Policy::Weighted { weight: 0 }, None, 1),
            rec("b", Policy::Weighted { weight: 5 }, None, 2),
        ];
        assert_eq!(counts(&World::new(), &sets, 2000).get(&1), None);
        let zeros = [
            rec("a", Policy::Weighted { weight: 0 }, None, 1),
            rec("b", Policy::Weighted { weight: 0 }, None, 2),
        ];
        let c = counts(&World::new(), &zeros, 4000);
        assert!((1800..2200).contains(&c[&1]), "equal odds: {c:?}");
    }

    #[test]
    fn weighted_zero_weight_only_when_every_nonzero_set_is_unhealthy() {
        let sets = [
            rec("a", Policy::Weighted { weight: 0 }, None, 1),
            rec("b", Policy::Weighted { weight: 5 }, Some("hb"), 2),
            rec("c", Policy::Weighted { weight: 5 }, Some("hc"), 3),
        ];
        let c = counts(&World::new().down(&["hb"]), &sets, 1000);
        assert_eq!(
            (c.get(&1), c[&3]),
            (None, 1000),
            "the healthy non-zero set takes all"
        );
        let c = counts(&World::new().down(&["hb", "hc"]), &sets, 1000);
        assert_eq!(
            c[&1], 1000,
            "zero weight when every non-zero set is unhealthy"
        );
    }

    #[test]
    fn fail_open_when_the_whole_group_is_unhealthy() {
        let sets = [
            rec("b", Policy::Weighted { weight: 1 }, Some("hb"), 2),
            rec("c", Policy::Weighted { weight: 3 }, Some("hc"), 3),
        ];
        let c = counts(&World::new().down(&["hb", "hc"]), &sets, 4000);
        assert!(
            c[&3] > c[&2] * 2,
            "all treated as healthy, weights apply: {c:?}"
        );
    }

    #[test]
    fn records_without_a_health_check_are_healthy() {
        let sets = [
            rec("p", Policy::Failover(FailoverRole::Primary), None, 1),
            rec("s", Policy::Failover(FailoverRole::Secondary), None, 2),
        ];
        assert_eq!(World::new().down(&["anything"]).ask(&sets, 0), [1]);
    }

    #[test]
    fn failover_rules() {
        let sets = [
            rec(
                "s",
                Policy::Failover(FailoverRole::Secondary),
                Some("hs"),
                2,
            ),
            rec("p", Policy::Failover(FailoverRole::Primary), Some("hp"), 1),
        ];
        assert_eq!(
            World::new().ask(&sets, 0),
            [1],
            "primary healthy -> primary"
        );
        assert_eq!(
            World::new().down(&["hp"]).ask(&sets, 0),
            [2],
            "primary down -> secondary"
        );
        assert_eq!(
            World::new().down(&["hp", "hs"]).ask(&sets, 0),
            [1],
            "both down -> primary"
        );
        let unchecked = [
            rec("p", Policy::Failover(FailoverRole::Primary), Some("hp"), 1),
            rec("s", Policy::Failover(FailoverRole::Secondary), None, 2),
        ];
        assert_eq!(
            World::new().down(&["hp"]).ask(&unchecked, 0),
            [2],
            "secondary without check"
        );
    }

    #[test]
    fn multivalue_up_to_eight_healthy_random_subsets() {
        let sets: Vec<RecordSet> = (1..=12)
            .map(|i| {
                rec(
                    &format!("m{i}"),
                    Policy::MultiValue,
                    Some(&format!("h{i}")),
                    i,
                )
            })
            .collect();
        let world = World::new().down(&["h1", "h2"]);
        let mut seen = std::collections::HashSet::new();
        for seed in 0..200 {
            let mut got = world.ask(&sets, seed);
            assert_eq!(got.len(), 8);
            assert!(!got.contains(&1) && !got.contains(&2), "unhealthy excluded");
            got.sort_unstable();
            seen.insert(got);
        }
        assert!(seen.len() > 20, "subsets vary per query: {}", seen.len());
        let all_down: Vec<String> = (1..=12).map(|i| format!("h{i}")).collect();
        let refs: Vec<&str> = all_down.iter().map(String::as_str).collect();
        assert_eq!(
            World::new().down(&refs).ask(&sets, 3).len(),
            8,
            "up to 8 unhealthy"
        );
    }

    fn geo(id: &str, g: GeoLocation, check: Option<&str>, o: u8) -> RecordSet {
        rec(id, Policy::Geolocation(g), check, o)
    }

    #[test]
    fn geolocation_most_specific_wins_and_falls_back_when_unhealthy() {
        let sets = [
            geo("d", GeoLocation::Default, None, 1),
            geo("na", GeoLocation::Continent("NA".into()), Some("hna"), 2),
            geo("us", GeoLocation::Country("US".into()), Some("hus"), 3),
            geo(
                "wa",
                GeoLocation::Subdivision {
                    country: "US".into(),
                    subdivision: "WA".into(),
                },
                Some("hwa"),
                4,
            ),
            geo("fr", GeoLocation::Country("FR".into()), None, 5),
        ];
        assert_eq!(World::new().ask(&sets, 0), [4]);
        assert_eq!(World::new().down(&["hwa"]).ask(&sets, 0), [3]);
        assert_eq!(World::new().down(&["hwa", "hus"]).ask(&sets, 0), [2]);
        assert_eq!(World::new().down(&["hwa", "hus", "hna"]).ask(&sets, 0), [1]);
        let mut w = World::new();
        w.client.country = Some("JP".into());
        w.client.continent = Some("AS".into());
        assert_eq!(w.ask(&sets, 0), [1], "unmatched -> default");
    }

    #[test]
    fn geolocation_without_a_default_gives_no_answer() {
        let sets = [geo("fr", GeoLocation::Country("FR".into()), None, 5)];
        let a = answer(
            &sets,
            RecordType::A,
            &World::new().ctx(),
            &mut SplitMix64(0),
        );
        assert!(a.records.is_empty());
        assert_eq!(a.scope, 24, "the answer still depended on the location");
    }

    #[test]
    fn geoproximity_bias_formula_and_closest_wins() {
        assert_eq!(biased_distance(1000.0, 50), 500.0);
        assert_eq!(
            biased_distance(1000.0, -50),
            2000.0,
            "negative bias shrinks the region"
        );
        assert_eq!(biased_distance(1000.0, 0), 1000.0);
        // Seattle client: Portland (~230 km) beats San Francisco (~1090 km)...
        let sets = |sf_bias| {
            [
                rec(
                    "pdx",
                    Policy::Geoproximity {
                        lat: 45.52,
                        lon: -122.68,
                        bias: 0,
                    },
                    None,
                    1,
                ),
                rec(
                    "sfo",
                    Policy::Geoproximity {
                        lat: 37.77,
                        lon: -122.42,
                        bias: sf_bias,
                    },
                    None,
                    2,
                ),
            ]
        };
        assert_eq!(World::new().ask(&sets(0), 0), [1]);
        // ... unless San Francisco's bias pulls Seattle into its region (1090 * 0.1 < 230).
        assert_eq!(World::new().ask(&sets(90), 0), [2]);
    }

    #[test]
    fn latency_lowest_region_then_next_when_unhealthy() {
        let mut world = World::new();
        world.latency = Box::new(Table(HashMap::from([
            ("us-east-1", 70.0),
            ("us-west-2", 12.0),
            ("eu-west-1", 150.0),
        ])));
        let sets = [
            rec(
                "e",
                Policy::Latency {
                    region: "us-east-1".into(),
                },
                Some("he"),
                1,
            ),
            rec(
                "w",
                Policy::Latency {
                    region: "us-west-2".into(),
                },
                Some("hw"),
                2,
            ),
            rec(
                "u",
                Policy::Latency {
                    region: "eu-west-1".into(),
                },
                None,
                3,
            ),
        ];
        assert_eq!(world.ask(&sets, 0), [2]);
        let world = World {
            health: HealthState(HashMap::from([("hw".into(), false)])),
            ..world
        };
        assert_eq!(world.ask(&sets, 0), [1]);
    }

    #[test]
    fn ip_based_longest_match_prefix_rule_and_default() {
        let mut world = World::new();
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        world.cidr.collections.insert(
            "c".into(),
            HashMap::from([
                ("wide".to_string(), vec![net("198.51.0.0/16")]),
                ("narrow".to_string(), vec![net("198.51.100.0/24")]),
                ("other".to_string(), vec![net("203.0.113.0/24")]),
            ]),
        );
        let ip = |loc: &str, o| {
            rec(
                loc,
                Policy::IpBased {
                    collection: "c".into(),
                    location: loc.into(),
                },
                None,
                o,
            )
        };
        let sets = [ip("*", 1), ip("wide", 2), ip("narrow", 3), ip("other", 4)];
        assert_eq!(
            world.ask(&sets, 0),
            [3],
            "longest block containing the client"
        );
        world.client.prefix_len = 20;
        assert_eq!(
            world.ask(&sets, 0),
            [2],
            "a /20 client prefix does not match the /24 block"
        );
        world.client.addr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(world.ask(&sets, 0), [1], "no block -> default");
        let a = answer(&sets, RecordType::A, &world.ctx(), &mut SplitMix64(0));
        assert_eq!(a.scope, 20, "ECS scope: the bits the answer depended on");
    }

    #[test]
    fn location_independent_answers_have_scope_zero() {
        let sets = [rec("a", Policy::Weighted { weight: 1 }, None, 1)];
        let a = answer(
            &sets,
            RecordType::A,
            &World::new().ctx(),
            &mut SplitMix64(0),
        );
        assert_eq!(a.scope, 0);
    }

    #[test]
    fn location_aspects_follow_a_group_met_deep_first_and_shallow_later() {
        // top -> d -> x -> geo (depth 3, within the limit), and top -> a -> b -> ... -> x
        // (depth 8, at the limit). The walk may meet x through the long branch first.
        let name = |n: &str| LowerName::new(&Name::from_ascii(n).unwrap());
        let hop = |target: &str| vec![alias("s", Policy::Simple, target, false)];
        let mut zone = Zone::default();
        let chain = ["a", "b", "c", "e", "f", "g", "h", "x"];
        for pair in chain.windows(2) {
            zone.0.insert(
                name(&format!("{}.t.", pair[0])),
                hop(&format!("{}.t.", pair[1])),
            );
        }
        zone.0.insert(name("d.t."), hop("x.t."));
        zone.0.insert(name("x.t."), hop("geo.t."));
        zone.0.insert(
            name("geo.t."),
            vec![rec(
                "fr",
                Policy::Geolocation(GeoLocation::Country("FR".into())),
                None,
                1,
            )],
        );
        let weighted = Policy::Weighted { weight: 1 };
        for top in [
            [
                alias("d", weighted.clone(), "d.t.", false),
                alias("a", weighted.clone(), "a.t.", false),
            ],
            [
                alias("a", weighted.clone(), "a.t.", false),
                alias("d", weighted.clone(), "d.t.", false),
            ],
        ] {
            assert!(location_aspects(&top, RecordType::A, &zone).geo);
        }
    }

    #[test]
    fn alias_tree_backs_out_of_an_unhealthy_branch_with_evaluate_target_health() {
        // Latency between two regions, each region an alias to a failover pair.
        let mut world = World::new();
        world.latency = Box::new(Table(HashMap::from([
            ("us-west-2", 10.0),
            ("us-east-1", 60.0),
        ])));
        let pair = |p: u8, s: u8, hp: &str, hs: &str| {
            vec![
                rec("p", Policy::Failover(FailoverRole::Primary), Some(hp), p),
                rec("s", Policy::Failover(FailoverRole::Secondary), Some(hs), s),
            ]
        };
        let name = |n: &str| LowerName::new(&Name::from_ascii(n).unwrap());
        world
            .zone
            .0
            .insert(name("west.example.com."), pair(1, 2, "w1", "w2"));
        world
            .zone
            .0
            .insert(name("east.example.com."), pair(3, 4, "e1", "e2"));
        let top = |eth| {
            [
                alias(
                    "west",
                    Policy::Latency {
                        region: "us-west-2".into(),
                    },
                    "west.example.com.",
                    eth,
                ),
                alias(
                    "east",
                    Policy::Latency {
                        region: "us-east-1".into(),
                    },
                    "east.example.com.",
                    eth,
                ),
            ]
        };
        assert_eq!(world.ask(&top(true), 0), [1]);
        let world = World {
            health: HealthState(HashMap::from([("w1".into(), false)])),
            ..world
        };
        assert_eq!(
            world.ask(&top(true), 0),
            [2],
            "west's secondary while its primary is down"
        );
        let world = World {
            health: HealthState(HashMap::from([("w1".into(), false), ("w2".into(), false)])),
            ..world
        };
        assert_eq!(
            world.ask(&top(true), 0),
            [3],
            "west all down: back out to east"
        );
        assert_eq!(
            world.ask(&top(false), 0),
            [1],
            "without EvaluateTargetHealth: stay (fail-open in west)"
        );
    }
}
