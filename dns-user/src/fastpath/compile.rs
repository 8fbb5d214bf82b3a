//! The map compiler: catalog in, the exact contents of the XDP answer maps out. Pure; the map
//! writer ([`crate::fastpath::maps`]) installs what this returns.
//!
//! An entry exists for every (name, A|AAAA) whose userspace answer is exactly "these records,
//! AA, nothing else": a name that owns the data, is authoritative (not at or below a delegation)
//! and belongs to the most specific hosted zone. CNAMEs, wildcards, delegations and misses are
//! left out, so XDP passes them up. An RRset too large for [`MAX_ANSWER_BYTES`] is left out too.
//!
//! Routing-policy groups become a [`PolicyRef`] entry plus their variants: for each location
//! cell (one, if the group does not depend on location) and each random slot (one, unless the
//! group makes a random choice), the policy engine runs here with the current health and a
//! client standing for the cell, and its answer is rendered. The kernel picks the cell by LPM
//! on the client's prefix and the slot by a random draw, and only indexes:
//!
//! - a weighted choice gives each record its share of [0, 1) (weight / sum, in order); slot
//!   `d` of `S` stands for the point `(2d + 1) / 2S` and answers with the record whose share
//!   holds it; a weighted alias into another weighted group chooses again with the point's
//!   place within the first share ([`Position`]). With `S` the least common denominator of
//!   the outcomes' shares ([`exact_slots`], over every cell, up to [`MAX_SLOTS`]) each answer
//!   has exactly its probability's share of slots; a single choice finer than that gets
//!   [`MAX_SLOTS`] slots, each answer within one slot of its share;
//! - a multivalue group has [`MULTIVALUE_SLOTS`] subsets, each the engine's own random pick
//!   with a fixed seed per slot;
//! - cells are the prefixes of the location tables, CIDR collections and MaxMind database,
//!   each with a class per aspect of location ([`crate::location::Cells`]); a located group
//!   has a variant per class of the aspect it depends on (all aspects together if several).
//!
//! Groups whose nested choices need more than [`MAX_SLOTS`] slots (or a shuffle under a
//! weighted alias), or more than [`MAX_GROUP_VARIANTS`] variants, stay out: XDP passes them
//! up; so do located groups when the cells cannot stand for the locations. A health
//! change recompiles the groups that follow the checks that changed ([`policy_changes`]); a
//! change batch the names it touched ([`compile_touched`]); only what changed is written.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dns_common::{
    ASPECT_ALL, ASPECT_CIDR, ASPECT_COORDINATES, ASPECT_GEO, ASPECT_LATENCY, AnswerKey, AnswerSet,
    CLASS_IN, Cell, CellKey, FLAG_SIGNED_ZONE, KIND_ANSWER, KIND_LOCATED, MAX_ANSWER_BYTES,
    MAX_SLOTS, NAME_BYTES, PolicyRef, VariantKey, csum_add_bytes, csum_fold,
};
use hickory_proto::rr::{LowerName, Name, RData, RecordType};

use crate::health::HealthState;
use crate::location::Cells;
use crate::policy;
use crate::zone::Catalog;
use crate::zone::{RrSet, Zone};

/// The desired contents of one answer map buffer.
pub type AnswerTable = HashMap<AnswerKey, AnswerSet>;
/// The desired contents of one variant map buffer.
pub type VariantTable = HashMap<VariantKey, AnswerSet>;
/// The desired contents of one cell trie buffer.
pub type CellTable = HashMap<CellKey, Cell>;

/// Most variants of one group (classes x slots); a group that needs more is left to userspace.
pub const MAX_GROUP_VARIANTS: usize = 65_536;

/// Random slots of a multivalue group.
pub const MULTIVALUE_SLOTS: u32 = 64;

/// Everything one buffer of the fast path holds.
#[derive(Clone, Debug, Default)]
pub struct Tables {
    pub answers: AnswerTable,
    pub variants: VariantTable,
    /// Shared with the [`Cells`] it was compiled from while unchanged.
    pub cells: Arc<CellTable>,
    /// Entries left out because another name had their key (see [`put`]); almost always 0.
    /// While it is not, [`compile_touched`] compiles everything.
    pub shared_keys: usize,
    /// Derived from `answers`, for [`compile_touched`]: which group ids are taken.
    groups: GroupIds,
}

/// The same entries (what is derived from them aside).
impl PartialEq for Tables {
    fn eq(&self, other: &Self) -> bool {
        self.answers == other.answers
            && self.variants == other.variants
            && self.cells == other.cells
    }
}

/// What compile_touched needs to know of an answer table: its routing-policy entries by
/// group id, and its entries per zone and flags.
#[derive(Clone, Debug, Default, PartialEq)]
struct GroupIds {
    by_id: HashMap<u32, AnswerKey>,
    /// Entries whose id is not their key's [`base_id`] (moved on by a collision).
    probed: usize,
    /// Entries whose answer depends on the client's location cell.
    located: usize,
    /// Entries per (zone slot, flags): a zone that became signed or unsigned is compiled
    /// again whole, as every entry's flags change.
    stamps: HashMap<(u32, u8), usize>,
}

impl GroupIds {
    fn of(answers: &AnswerTable) -> GroupIds {
        let mut ids = GroupIds::default();
        for (k, v) in answers {
            ids.add(k, v);
        }
        ids
    }

    fn add(&mut self, k: &AnswerKey, v: &AnswerSet) {
        *self.stamps.entry((v.zone, v.flags)).or_default() += 1;
        if let Some(p) = v.policy_ref() {
            self.by_id.insert(p.group, *k);
            self.probed += usize::from(p.group != base_id(k));
            self.located += usize::from(p.located != 0);
        }
    }

    fn remove(&mut self, k: &AnswerKey, v: &AnswerSet) {
        if let Some(n) = self.stamps.get_mut(&(v.zone, v.flags)) {
            *n -= 1;
            if *n == 0 {
                self.stamps.remove(&(v.zone, v.flags));
            }
        }
        if let Some(p) = v.policy_ref() {
            self.by_id.remove(&p.group);
            self.probed -= usize::from(p.group != base_id(k));
            self.located -= usize::from(p.located != 0);
        }
    }
}

impl Tables {
    /// The tables with `change` applied, as the map writer applies it to the maps.
    pub fn apply(&mut self, change: &Change) {
        for (k, v) in &change.answers.upserts {
            if let Some(old) = self.answers.insert(*k, *v) {
                self.groups.remove(k, &old);
            }
            self.groups.add(k, v);
        }
        for k in &change.answers.deletes {
            if let Some(old) = self.answers.remove(k) {
                self.groups.remove(k, &old);
            }
        }
        merge(&mut self.variants, &change.variants);
        if let Some(n) = change.shared_keys {
            self.shared_keys = n;
        }
        if let Some(cells) = &change.cells_to {
            self.cells = cells.clone();
        } else if !change.cells.is_empty() {
            merge(Arc::make_mut(&mut self.cells), &change.cells);
        }
    }
}

fn merge<K: Copy + Eq + std::hash::Hash, V: Copy>(table: &mut HashMap<K, V>, delta: &Delta<K, V>) {
    table.extend(delta.upserts.iter().copied());
    for key in &delta.deletes {
        table.remove(key);
    }
}

/// What the compiler left out, for logs and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompileReport {
    /// Answer entries compiled (names, and routing-policy groups).
    pub entries: usize,
    /// Variants of routing-policy groups.
    pub variants: usize,
    /// RRsets larger than an [`AnswerSet`] holds (answered by userspace).
    pub too_large: usize,
    /// A/AAAA routing-policy groups left to userspace (several random draws, too many
    /// variants, location cells that cannot stand for the locations).
    pub groups_passed: usize,
    /// Entries left to userspace because another name has the same key.
    pub shared_keys: usize,
}

/// Compiles every zone of `catalog` into the fast path's tables, routing-policy groups with
/// `health`.
pub fn compile(catalog: &Catalog, health: &HealthState) -> (Tables, CompileReport) {
    let is_address = |s: &RrSet| s.rtype == RecordType::A || s.rtype == RecordType::AAAA;
    // Sized up front: growing a table of ~500-byte entries doubles peak memory.
    let candidates = catalog
        .zones()
        .flat_map(|z| z.nodes())
        .map(|(_, sets)| sets.iter().filter(|s| is_address(s)).count())
        .sum();
    let mut table = AnswerTable::with_capacity(candidates);
    let mut report = CompileReport::default();
    let mut shared_keys = 0;
    let progress = crate::progress::Progress::new("fast path: answers compiled", Some(candidates));
    for zone in catalog.zones() {
        let stamp = Stamp::of(catalog, zone);
        for (name, sets) in zone.nodes() {
            progress.update(table.len());
            if !answers_here(catalog, zone, name) {
                continue;
            }
            for set in sets.iter().filter(|s| is_address(s)) {
                let rendered = render(set).and_then(|mut value| {
                    stamp.apply(&mut value);
                    add_signatures(&mut value, catalog, zone, name, set);
                    entry(name, set.rtype, value)
                });
                match rendered {
                    Some(e) => shared_keys += put(&mut table, e),
                    None => report.too_large += 1,
                }
            }
        }
    }
    progress.finish(table.len());
    let cells = catalog.locations().cells();
    let policies = compile_policies(catalog, health, &cells);
    report.too_large += policies.too_large;
    report.groups_passed = policies.passed;
    shared_keys += policies.shared_keys;
    for e in policies.answers {
        shared_keys += put(&mut table, e);
    }
    let mut variants = policies.variants;
    if shared_keys > 0 {
        // Groups whose entry another name's took: their variants go too.
        let groups: HashSet<u32> = table
            .values()
            .filter_map(|v| v.policy_ref())
            .map(|p| p.group)
            .collect();
        variants.retain(|k, _| groups.contains(&k.group));
    }
    report.entries = table.len();
    report.variants = variants.len();
    report.shared_keys = shared_keys;
    let tables = Tables {
        groups: GroupIds::of(&table),
        answers: table,
        variants,
        shared_keys,
        cells: if policies.located {
            cells.table.clone()
        } else {
            Arc::default()
        },
    };
    (tables, report)
}

/// True if `name` in `zone` answers from this zone's data: authoritative, not delegated, and
/// no more specific hosted zone holds it.
fn answers_here(catalog: &Catalog, zone: &Zone, name: &LowerName) -> bool {
    !zone.is_at_or_below_cut(name)
        && catalog
            .find(name)
            .is_some_and(|z| z.origin() == zone.origin())
}

/// The random source that stands for slot `slot` of `slots` of a group: what the kernel's draw
/// selects. Tests answer a query in userspace with it to get the kernel's answer.
pub enum SlotRandom {
    /// A position in [0, 1) (the middle of the slot), narrowed by each choice to the
    /// position within the chosen share (see [`Position`]).
    Scaled(Position),
    /// A multivalue subset, from a balanced design (see [`multivalue_order`]): the draws that
    /// make the engine's shuffle produce it, computed at the first draw (which tells the pool
    /// size).
    Balanced {
        seed: u64,
        slot: u64,
        draws: Option<std::vec::IntoIter<u64>>,
    },
}

impl SlotRandom {
    /// The source for `slot` of `slots` of group `key` (multivalue or not).
    pub fn new(key: &AnswerKey, multivalue: bool, slot: u32, slots: u32) -> SlotRandom {
        if multivalue {
            SlotRandom::Balanced {
                seed: key.hash ^ u64::from(key.qtype),
                slot: u64::from(slot),
                draws: None,
            }
        } else {
            SlotRandom::Scaled(Position::of_slot(u64::from(slot), u64::from(slots.max(1))))
        }
    }
}

impl policy::RandomSource for SlotRandom {
    fn below(&mut self, n: u64) -> u64 {
        match self {
            SlotRandom::Scaled(position) => position.below(n),
            SlotRandom::Balanced { seed, slot, draws } => {
                let draws = draws.get_or_insert_with(|| {
                    // The engine's first draw of a shuffle of n items is below(n).
                    shuffle_draws(&multivalue_order(n as usize, *seed, *slot)).into_iter()
                });
                draws.next().unwrap_or(0).min(n - 1)
            }
        }
    }

    fn pick(&mut self, weights: &[u64]) -> usize {
        match self {
            SlotRandom::Scaled(position) => position.pick(weights),
            SlotRandom::Balanced { .. } => {
                let draw = self.below(weights.iter().sum());
                policy::weighted_index(weights, draw)
            }
        }
    }
}

/// A point of [0, 1) as `num / den`: slot `d` of `S` stands for the middle of its share,
/// `(2d + 1) / 2S`. A choice among weights takes the one whose share (weight / sum, in order)
/// holds the point, and the point moves to where it is within that share, for the next choice.
/// With `S` such that every outcome's share of [0, 1) is a whole number of slots (see
/// [`exact_slots`]), each outcome gets exactly its probability's share of the slots, however
/// many choices lead to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    num: u128,
    den: u128,
}

impl Position {
    pub fn of_slot(slot: u64, slots: u64) -> Position {
        Position {
            num: 2 * u128::from(slot) + 1,
            den: 2 * u128::from(slots.max(1)),
        }
    }

    /// One of `n` equal shares: `((2d + 1) n) / 2S` for the first choice.
    fn below(&mut self, n: u64) -> u64 {
        let Some(scaled) = self.num.checked_mul(u128::from(n)) else {
            return 0; // beyond any tree exact_slots accepts
        };
        let d = (scaled / self.den).min(u128::from(n) - 1);
        self.num = scaled - d * self.den;
        d as u64
    }

    fn pick(&mut self, weights: &[u64]) -> usize {
        let total: u128 = weights.iter().map(|w| u128::from(*w)).sum();
        let first = weights.iter().position(|w| *w > 0).unwrap_or(0);
        let Some(scaled) = self.num.checked_mul(total) else {
            return first; // beyond any tree exact_slots accepts
        };
        let mut start: u128 = 0;
        for (i, w) in weights.iter().enumerate() {
            let w = u128::from(*w);
            let holds = (start + w)
                .checked_mul(self.den)
                .is_none_or(|end| scaled < end);
            if w > 0 && holds {
                // start * den <= scaled: the earlier shares did not hold the point.
                let num = scaled - start * self.den;
                if let Some(den) = w.checked_mul(self.den) {
                    let g = gcd128(num, den);
                    *self = Position {
                        num: num / g,
                        den: den / g,
                    };
                }
                return i;
            }
            start += w;
        }
        first
    }
}

fn gcd128(a: u128, b: u128) -> u128 {
    if b == 0 { a.max(1) } else { gcd128(b, a % b) }
}

/// Slots of a multivalue group whose pool has `n` records: whole rounds of `n` windows, so every
/// record is in exactly the same share of the answers.
pub fn multivalue_slots(n: u64) -> u32 {
    let max = u64::from(MULTIVALUE_SLOTS);
    if n == 0 || n > max {
        MULTIVALUE_SLOTS
    } else {
        (n * (max / n)) as u32
    }
}

/// The order (of pool indices) slot `slot` wants the shuffle to produce: round `slot / n` is a
/// random permutation P (seeded per group and round), and the slot's answer starts at window
/// `slot % n` of it: P[w], P[w+1], ... (cyclically). The first `MAX_MULTIVALUE` of those are
/// the answer; over a round every record is in exactly `min(8, n)` of the `n` windows.
pub fn multivalue_order(n: usize, seed: u64, slot: u64) -> Vec<usize> {
    let round = slot / n.max(1) as u64;
    let window = (slot % n.max(1) as u64) as usize;
    let mut perm: Vec<usize> = (0..n).collect();
    let mut rng = policy::SplitMix64(seed ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    for i in (1..n).rev() {
        let j = policy::RandomSource::below(&mut rng, i as u64 + 1) as usize;
        perm.swap(i, j);
    }
    (0..n).map(|j| perm[(window + j) % n]).collect()
}

/// The draws that make the engine's Fisher-Yates shuffle (for i from n-1 down to 1, swap i with
/// below(i + 1)) turn 0..n into `target`.
fn shuffle_draws(target: &[usize]) -> Vec<u64> {
    let n = target.len();
    let mut current: Vec<usize> = (0..n).collect();
    let mut draws = Vec::with_capacity(n.saturating_sub(1));
    for i in (1..n).rev() {
        let j = current[..=i]
            .iter()
            .position(|x| *x == target[i])
            .expect("a permutation of 0..n");
        draws.push(j as u64);
        current.swap(i, j);
    }
    draws
}

/// Records the `n` of every draw and always draws 0: finds how a group draws.
#[derive(Default)]
struct Probe(Vec<u64>);

impl policy::RandomSource for Probe {
    fn below(&mut self, n: u64) -> u64 {
        self.0.push(n);
        0
    }
}

/// Walks the tree of a group's random choices: takes the choices in `path` at the first
/// picks, then the first possible one, and records every pick's weights.
struct Explorer {
    path: Vec<usize>,
    seen: Vec<Vec<u64>>,
}

impl policy::RandomSource for Explorer {
    fn below(&mut self, n: u64) -> u64 {
        // A uniform draw is a choice among n equal weights (bounded: MAX_WALKS).
        let weights = vec![1; n.min(u64::from(MAX_SLOTS) + 1) as usize];
        self.pick(&weights) as u64
    }

    fn pick(&mut self, weights: &[u64]) -> usize {
        let first = weights.iter().position(|w| *w > 0).unwrap_or(0);
        let choice = self.path.get(self.seen.len()).copied().unwrap_or(first);
        self.seen.push(weights.to_vec());
        choice
    }
}

/// How a group's random choices in one cell divide the ring of slots.
#[derive(Debug, PartialEq, Eq)]
enum Shares {
    /// Every outcome's share of [0, 1) (the product of weight / sum down its choices) is a
    /// whole number of `slots` slots; `nested` if some outcome takes more than one choice.
    Exact { slots: u64, nested: bool },
    /// One choice whose shares need more than [`MAX_SLOTS`]: with that many, each outcome is
    /// within one slot of its share.
    Approximate,
    /// Choices down an alias needing more than [`MAX_SLOTS`] slots, or too many outcomes.
    TooFine,
}

/// Most outcomes walked for one group and cell.
const MAX_WALKS: usize = 4096;

/// The fewest slots that give each outcome of `run`'s random choices exactly its share: the
/// least common denominator of the outcomes' intervals of [0, 1), as [`Position`] lays them
/// out.
fn exact_slots(run: &dyn Fn(&mut dyn policy::RandomSource)) -> Shares {
    let max = u128::from(MAX_SLOTS);
    type Frac = (u128, u128);
    let reduce = |(n, d): Frac| {
        let g = gcd128(n, d);
        (n / g, d / g)
    };
    let add = |a: Frac, b: Frac| -> Option<Frac> {
        let num = a.0.checked_mul(b.1)?.checked_add(b.0.checked_mul(a.1)?)?;
        Some(reduce((num, a.1.checked_mul(b.1)?)))
    };
    let mul = |a: Frac, b: Frac| -> Option<Frac> {
        Some(reduce((a.0.checked_mul(b.0)?, a.1.checked_mul(b.1)?)))
    };
    let (mut lcd, mut nested, mut walks) = (1u128, false, 0);
    // (choices so far, start of the interval, its length), as fractions.
    let mut stack: Vec<(Vec<usize>, Frac, Frac)> = vec![(Vec::new(), (0, 1), (1, 1))];
    while let Some((path, lo, len)) = stack.pop() {
        walks += 1;
        if walks > MAX_WALKS {
            return Shares::TooFine;
        }
        let mut explorer = Explorer {
            path: path.clone(),
            seen: Vec::new(),
        };
        run(&mut explorer);
        let Some(weights) = explorer.seen.get(path.len()) else {
            // An outcome: its interval's ends must fall on slot boundaries.
            nested |= path.len() > 1;
            let Some(hi) = add(lo, len) else {
                return Shares::TooFine;
            };
            for d in [lo.1, hi.1] {
                lcd = (lcd / gcd128(lcd, d)).saturating_mul(d).min(max + 1);
            }
            continue;
        };
        let total: u128 = weights.iter().map(|w| u128::from(*w)).sum();
        let mut start = 0u128;
        for (i, w) in weights.iter().enumerate() {
            let w = u128::from(*w);
            if w > 0 {
                // The child's interval: lo + len * start / total, of length len * w / total.
                let child = mul(len, (start, total))
                    .and_then(|offset| add(lo, offset))
                    .zip(mul(len, (w, total)));
                let Some((child_lo, child_len)) = child else {
                    return Shares::TooFine;
                };
                let mut next = path.clone();
                next.push(i);
                stack.push((next, child_lo, child_len));
            }
            start += w;
        }
    }
    match (lcd > max, nested) {
        (false, _) => Shares::Exact {
            slots: lcd as u64,
            nested,
        },
        (true, false) => Shares::Approximate,
        (true, true) => Shares::TooFine,
    }
}

/// The compiled routing-policy part.
#[derive(Default)]
struct Policies {
    answers: AnswerTable,
    variants: VariantTable,
    shared_keys: usize,
    /// Some compiled group depends on location (the cells are needed).
    located: bool,
    too_large: usize,
    passed: usize,
}

/// The fewest slots `r` (a divisor of `slots`) such that every cell's answers are constant
/// over each run of `slots / r` consecutive slots: slot `d` of `r` then answers as block `d`
/// did, and [`SlotRandom`] maps it into that block.
fn smallest_ring(by_cell: &[Vec<Option<AnswerSet>>], slots: u32) -> u32 {
    (1..=slots)
        .filter(|r| slots.is_multiple_of(*r))
        .find(|r| {
            let block = (slots / r) as usize;
            by_cell
                .iter()
                .all(|row| row.chunks(block).all(|c| c.iter().all(|v| *v == c[0])))
        })
        .unwrap_or(slots)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// One routing-policy group compiled, before it has a group id.
enum Compiled {
    /// Left to userspace (several random draws, or location without usable cells).
    Passed,
    /// One answer whatever the client: an ordinary entry, no indirection (or none at all).
    Entry(Box<Option<AnswerSet>>),
    /// A policy entry: answers per (class, slot); `aspect`: the classes' if located.
    Policy {
        slots: u32,
        aspect: Option<u32>,
        stamp: Stamp,
        variants: Vec<(u32, u32, AnswerSet)>,
    },
}

impl Compiled {
    /// The policy entry and its variants under group id `group`.
    fn finish(
        slots: u32,
        aspect: Option<u32>,
        stamp: Stamp,
        variants: &[(u32, u32, AnswerSet)],
        group: u32,
    ) -> (AnswerSet, Vec<(VariantKey, AnswerSet)>) {
        let mut entry = AnswerSet::policy(PolicyRef {
            group,
            slots,
            located: u32::from(aspect.is_some()),
            aspect: aspect.unwrap_or(0),
        });
        stamp.apply(&mut entry);
        // A signed zone's group answers DO queries in XDP only if every variant has its
        // signed answer (the program checks the entry before it picks a variant).
        let all_signed = !variants.is_empty() && variants.iter().all(|(_, _, v)| v.len_do > 0);
        entry.len_do = u16::from(entry.flags & FLAG_SIGNED_ZONE != 0 && all_signed);
        let variants = variants
            .iter()
            .map(|(cell, slot, value)| {
                let key = VariantKey {
                    group,
                    cell: *cell,
                    slot: *slot,
                    _pad: 0,
                };
                (key, *value)
            })
            .collect();
        (entry, variants)
    }
}

/// What every entry of a zone carries: its slot for per-zone counters, and whether it is
/// signed (a DO query then gets the entry's answer with its RRSIGs; see [`add_signatures`]).
#[derive(Clone, Copy, Debug)]
struct Stamp {
    slot: u32,
    flags: u8,
}

impl Stamp {
    fn of(catalog: &Catalog, zone: &Zone) -> Stamp {
        Stamp {
            slot: catalog.zone_slot(zone.origin()),
            // Signed elsewhere or here: a DO query gets the entry's signed answer, or goes up
            // if it has none.
            flags: if zone.is_signed() || catalog.signer(zone).is_some() {
                FLAG_SIGNED_ZONE
            } else {
                0
            },
        }
    }

    fn apply(&self, value: &mut AnswerSet) {
        value.zone = self.slot;
        value.flags = self.flags;
    }
}

/// The group id a key gets when no other group has the same one: a hash of the name and type.
fn base_id(k: &AnswerKey) -> u32 {
    k.hash as u32 ^ u32::from(k.qtype)
}

/// Compiles the A/AAAA routing-policy group `sets` at `name` of `zone`: the policy engine
/// runs for each (cell, slot) with `health`. Also returns how many answers were too large.
fn compile_group(
    catalog: &Catalog,
    zone: &Zone,
    (name, rtype, sets): (&LowerName, RecordType, &[policy::RecordSet]),
    health: &HealthState,
    cells: &Cells,
) -> (Compiled, usize) {
    let k = key(name, rtype);
    let stamp = Stamp::of(catalog, zone);
    let locations = catalog.locations();
    let aspect = aspect_of(policy::location_aspects(sets, rtype, zone));
    let located = aspect.is_some();
    if located && cells.unusable.is_some() {
        return (Compiled::Passed, 0);
    }
    let reps = match aspect {
        Some(aspect) => cells.classes(aspect),
        None => &[(std::net::IpAddr::from([0u8; 4]), 0)][..],
    };
    let run = |cell: usize, rng: &mut dyn policy::RandomSource| {
        let (addr, len) = reps[cell];
        let client = locations.locate(addr, len);
        let ctx = policy::Context {
            health,
            client: &client,
            latency: locations,
            cidr: &locations.cidr,
            groups: zone,
        };
        policy::answer(sets, rtype, &ctx, rng)
    };
    let cell_count = reps.len();
    let multivalue = sets.iter().all(|s| s.policy == policy::Policy::MultiValue);
    // How each cell chooses: not at all, by weights (once, or again down an alias), or
    // (multivalue) a shuffle.
    let mut slots: u64 = 1;
    let (mut approximate, mut nested) = (false, false);
    for cell in 0..cell_count {
        if multivalue {
            let mut probe = Probe::default();
            run(cell, &mut probe);
            if let [n, ..] = probe.0.as_slice() {
                slots = u64::from(multivalue_slots(*n));
            }
            continue;
        }
        match exact_slots(&|rng| {
            run(cell, rng);
        }) {
            Shares::Exact {
                slots: s,
                nested: n,
            } => {
                slots = (slots / gcd(slots, s) * s).min(u64::from(MAX_SLOTS) + 1);
                nested |= n;
            }
            Shares::Approximate => approximate = true,
            Shares::TooFine => return (Compiled::Passed, 0),
        }
    }
    if approximate || slots > u64::from(MAX_SLOTS) {
        if nested {
            // Choices down an alias get their exact shares or stay in userspace.
            return (Compiled::Passed, 0);
        }
        // One choice, finer than the ring: each outcome within one slot of its share.
        slots = u64::from(MAX_SLOTS);
    }
    let slots = slots as u32;
    if cell_count.saturating_mul(slots as usize) > MAX_GROUP_VARIANTS {
        return (Compiled::Passed, 0);
    }
    let mut too_large = 0;
    // Each cell's answer per slot (None: no answer, or too large: userspace).
    let mut by_cell: Vec<Vec<Option<AnswerSet>>> = Vec::with_capacity(cell_count);
    for cell in 0..cell_count {
        let mut row = Vec::with_capacity(slots as usize);
        for slot in 0..slots {
            let mut rng = SlotRandom::new(&k, multivalue, slot, slots);
            let answer = run(cell, &mut rng);
            if answer.records.is_empty() {
                row.push(None); // NOERROR without an answer: userspace says it
                continue;
            }
            let rendered = render_records(rtype, answer.records.iter().map(|(ttl, r)| (*ttl, r)));
            if rendered.is_none() {
                too_large += 1;
            }
            row.push(rendered.map(|mut value| {
                value.kind = if answer.located {
                    KIND_LOCATED
                } else {
                    KIND_ANSWER
                };
                stamp.apply(&mut value);
                sign_variant(&mut value, catalog, zone, (name, rtype), &answer.records);
                value
            }));
        }
        by_cell.push(row);
    }
    // The smallest ring with the same shares: weights 75/25 need 4 slots, not 100.
    let slots = if multivalue {
        slots
    } else {
        smallest_ring(&by_cell, slots)
    };
    let step = (by_cell.first().map_or(1, Vec::len) as u32 / slots).max(1);
    let mut variants = Vec::new();
    for (cell, row) in by_cell.iter().enumerate() {
        for slot in 0..slots {
            if let Some(value) = row[(slot * step) as usize] {
                variants.push((cell as u32, slot, value));
            }
        }
    }
    if !located && slots == 1 {
        return (
            Compiled::Entry(Box::new(variants.pop().map(|(_, _, v)| v))),
            too_large,
        );
    }
    let compiled = Compiled::Policy {
        slots,
        aspect,
        stamp,
        variants,
    };
    (compiled, too_large)
}

/// The [`Cell::classes`] index a group depending on `aspects` uses; `None`: not located.
fn aspect_of(aspects: policy::Aspects) -> Option<u32> {
    let one = [
        (aspects.geo, ASPECT_GEO),
        (aspects.coordinates, ASPECT_COORDINATES),
        (aspects.latency, ASPECT_LATENCY),
        (aspects.cidr, ASPECT_CIDR),
    ];
    match one.iter().filter(|(on, _)| *on).count() {
        0 => None,
        1 => one.iter().find(|(on, _)| *on).map(|(_, a)| *a),
        _ => Some(ASPECT_ALL),
    }
}

/// The A/AAAA routing-policy groups of `zone` the fast path may answer: not wildcards, and
/// answered from this zone.
fn fast_groups<'z>(
    catalog: &Catalog,
    zone: &'z Zone,
) -> impl Iterator<Item = (&'z LowerName, RecordType, &'z [policy::RecordSet])> {
    zone.policy_groups().filter(move |(name, rtype, _)| {
        matches!(*rtype, RecordType::A | RecordType::AAAA)
            && !name.is_wildcard()
            && answers_here(catalog, zone, name)
    })
}

/// Compiles every A/AAAA routing-policy group that answers from its zone. Group ids go to
/// the groups in key order (each its [`base_id`], or the next free one), so the same groups
/// get the same ids however they are found.
fn compile_policies(catalog: &Catalog, health: &HealthState, cells: &Cells) -> Policies {
    let mut out = Policies::default();
    let mut needing_ids = Vec::new();
    for zone in catalog.zones() {
        for group in fast_groups(catalog, zone) {
            let (name, rtype) = (group.0, group.1);
            let (compiled, too_large) = compile_group(catalog, zone, group, health, cells);
            out.too_large += too_large;
            match compiled {
                Compiled::Passed => out.passed += 1,
                Compiled::Entry(value) => match (*value).map(|v| entry(name, rtype, v)) {
                    Some(Some(e)) => out.shared_keys += put(&mut out.answers, e),
                    Some(None) => out.too_large += 1,
                    None => {}
                },
                Compiled::Policy {
                    slots,
                    aspect,
                    stamp,
                    variants,
                } => {
                    if !AnswerSet::fits(size_of::<PolicyRef>(), WireName::of(name).bytes().len()) {
                        out.too_large += 1; // no room for the name beside the reference
                        continue;
                    }
                    needing_ids.push((
                        key(name, rtype),
                        (name, rtype),
                        slots,
                        aspect,
                        stamp,
                        variants,
                    ))
                }
            }
        }
    }
    needing_ids.sort_by(|a, b| (a.0, a.1.0).cmp(&(b.0, b.1.0)));
    let mut ids: HashSet<u32> = HashSet::new();
    for (k, (name, rtype), slots, aspect, stamp, variants) in needing_ids {
        let mut group = base_id(&k);
        while !ids.insert(group) {
            group = group.wrapping_add(1);
        }
        let (value, variants) = Compiled::finish(slots, aspect, stamp, &variants, group);
        let e = entry(name, rtype, value).expect("the name fits: checked above");
        out.located |= aspect.is_some();
        out.variants.extend(variants);
        out.shared_keys += put(&mut out.answers, e);
    }
    out
}

/// The map change after changes to zones of `catalog` that may have changed the answers at
/// the names `touched` (zone origin, names, as [`Zone::rebuild`] reports them): their entries and
/// routing-policy groups compiled again, against what is `installed`, costing what they cost.
/// When a group id would collide (ids are assigned over all groups, see
/// [`compile_policies`]), it falls back to a full compile and diff. The flag says which
/// was done (true: only the touched names). Either way, `installed` with the change applied
/// equals [`compile`] of `catalog`.
pub fn compile_touched(
    catalog: &Catalog,
    health: &HealthState,
    touched: &[(LowerName, HashSet<LowerName>)],
    installed: &Tables,
) -> (Change, bool) {
    let full = || {
        let (tables, _) = compile(catalog, health);
        (Change::between(installed, &tables), false)
    };
    if installed.groups.probed > 0 || installed.shared_keys > 0 {
        return full();
    }
    let cells = catalog.locations().cells();
    let mut answers: HashMap<AnswerKey, AnswerSet> = HashMap::new();
    let mut variants: HashMap<VariantKey, AnswerSet> = HashMap::new();
    let mut old_keys: HashSet<AnswerKey> = HashSet::new();
    let mut new_ids: HashSet<u32> = HashSet::new();
    let mut located_groups = 0usize;
    // One entry per zone, each name once.
    let mut by_zone: HashMap<&LowerName, HashSet<&LowerName>> = HashMap::new();
    for (origin, names) in touched {
        by_zone.entry(origin).or_default().extend(names);
    }
    for (origin, names) in by_zone {
        let Some(zone) = catalog.zone(origin) else {
            return full();
        };
        let stamp = Stamp::of(catalog, zone);
        if installed
            .groups
            .stamps
            .contains_key(&(stamp.slot, stamp.flags ^ FLAG_SIGNED_ZONE))
        {
            return full(); // signed or unsigned since: every entry's flags change
        }
        for (name, rtype) in names
            .iter()
            .flat_map(|n| [(n, RecordType::A), (n, RecordType::AAAA)])
        {
            let wire = WireName::of(name);
            let k = wire.key(rtype);
            if installed
                .answers
                .get(&k)
                .is_some_and(|v| v.name(wire.bytes().len()) != wire.bytes())
            {
                return full(); // another name has this key: see `put`
            }
            old_keys.insert(k);
            if !answers_here(catalog, zone, name) {
                continue;
            }
            // Two touched names with one key: see `put`.
            let mut add = |value: AnswerSet| match entry(name, rtype, value) {
                Some((k, v)) => answers.insert(k, v).is_none(),
                None => true,
            };
            if let Some(sets) = zone.policy_group(name, rtype) {
                if name.is_wildcard() {
                    continue;
                }
                match compile_group(catalog, zone, (name, rtype, sets), health, &cells).0 {
                    Compiled::Passed => {}
                    Compiled::Entry(value) => {
                        if let Some(value) = *value
                            && !add(value)
                        {
                            return full();
                        }
                    }
                    Compiled::Policy {
                        slots,
                        aspect,
                        stamp,
                        variants: found,
                    } => {
                        if !AnswerSet::fits(size_of::<PolicyRef>(), wire.bytes().len()) {
                            continue; // as compile_policies
                        }
                        let group = base_id(&k);
                        let taken = installed.groups.by_id.get(&group).is_some_and(|o| *o != k);
                        if taken || !new_ids.insert(group) {
                            return full();
                        }
                        let (value, found) = Compiled::finish(slots, aspect, stamp, &found, group);
                        if !add(value) {
                            return full();
                        }
                        located_groups += usize::from(aspect.is_some());
                        variants.extend(found);
                    }
                }
            } else if let Some(set) = zone.rrset(name, rtype)
                && let Some(mut value) = render(set)
            {
                stamp.apply(&mut value);
                add_signatures(&mut value, catalog, zone, name, set);
                if !add(value) {
                    return full();
                }
            }
        }
    }
    let mut change = Change::default();
    // Entries and variants of the touched keys as installed.
    let mut old_variants: Vec<VariantKey> = Vec::new();
    let mut located_before = 0usize;
    for k in &old_keys {
        let Some(old) = installed.answers.get(k) else {
            continue;
        };
        if !answers.contains_key(k) {
            change.answers.deletes.push(*k);
        }
        if let Some(p) = old.policy_ref() {
            located_before += usize::from(p.located != 0);
            let cell_count = match p.located {
                0 => 1,
                _ => cells.classes(p.aspect).len() as u32,
            };
            for cell in 0..cell_count {
                for slot in 0..p.slots {
                    let vk = VariantKey {
                        group: p.group,
                        cell,
                        slot,
                        _pad: 0,
                    };
                    if installed.variants.contains_key(&vk) {
                        old_variants.push(vk);
                    }
                }
            }
        }
    }
    change.answers.upserts = answers
        .iter()
        .filter(|(k, v)| installed.answers.get(k) != Some(v))
        .map(|(k, v)| (*k, *v))
        .collect();
    change.variants.upserts = variants
        .iter()
        .filter(|(k, v)| installed.variants.get(k) != Some(v))
        .map(|(k, v)| (*k, *v))
        .collect();
    change.variants.deletes = old_variants
        .into_iter()
        .filter(|k| !variants.contains_key(k))
        .collect();
    // The cells are installed while any compiled group depends on location.
    let located_after = installed.groups.located - located_before + located_groups;
    let cells_wanted = if located_after > 0 {
        cells.table.clone()
    } else {
        Arc::default()
    };
    if !Arc::ptr_eq(&installed.cells, &cells_wanted) {
        change.cells = Delta::between(&installed.cells, &cells_wanted);
        change.cells_to = Some(cells_wanted);
    }
    (change, true)
}

/// The map change after health went from `before` (what `installed` was compiled with) to
/// `health`: the routing-policy groups that name a check whose status changed, and those that
/// follow them (aliases into them), compiled again ([`compile_touched`]); only entries whose
/// answer changed are written.
pub fn policy_changes(
    catalog: &Catalog,
    before: &HealthState,
    health: &HealthState,
    installed: &Tables,
) -> Change {
    let touched = health_touched(catalog, before, health);
    if touched.is_empty() {
        return Change::default();
    }
    compile_touched(catalog, health, &touched, installed).0
}

/// The names of each zone of `catalog` whose answers may differ between `before` and
/// `health` (zone origin, names), for [`compile_touched`].
pub fn health_touched(
    catalog: &Catalog,
    before: &HealthState,
    health: &HealthState,
) -> Vec<(LowerName, HashSet<LowerName>)> {
    let changed = health.changed_from(before);
    if changed.is_empty() {
        return Vec::new();
    }
    catalog
        .zones()
        .map(|z| (LowerName::new(z.origin()), z.following_checks(&changed)))
        .filter(|(_, names)| !names.is_empty())
        .collect()
}

/// Upserts and deletes for one map.
#[derive(Clone, Debug, PartialEq)]
pub struct Delta<K, V> {
    pub upserts: Vec<(K, V)>,
    pub deletes: Vec<K>,
}

impl<K, V> Default for Delta<K, V> {
    fn default() -> Self {
        Self {
            upserts: Vec::new(),
            deletes: Vec::new(),
        }
    }
}

impl<K: Copy + Eq + std::hash::Hash, V: Copy + PartialEq> Delta<K, V> {
    /// What turns `from` into `to`.
    pub fn between(from: &HashMap<K, V>, to: &HashMap<K, V>) -> Self {
        Self {
            upserts: to
                .iter()
                .filter(|(k, v)| from.get(k) != Some(v))
                .map(|(k, v)| (*k, *v))
                .collect(),
            deletes: from
                .keys()
                .filter(|k| !to.contains_key(k))
                .copied()
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty()
    }
}

/// A change to every table of the fast path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Change {
    pub answers: Delta<AnswerKey, AnswerSet>,
    pub variants: Delta<VariantKey, AnswerSet>,
    pub cells: Delta<CellKey, Cell>,
    /// The cell table `cells` leads to, to share rather than copy.
    pub cells_to: Option<Arc<CellTable>>,
    /// [`Tables::shared_keys`] after the change (`None`: as before).
    pub shared_keys: Option<usize>,
}

impl Change {
    /// What turns `from` into `to`.
    pub fn between(from: &Tables, to: &Tables) -> Change {
        Change {
            answers: Delta::between(&from.answers, &to.answers),
            variants: Delta::between(&from.variants, &to.variants),
            cells: Delta::between(&from.cells, &to.cells),
            cells_to: Some(to.cells.clone()),
            shared_keys: Some(to.shared_keys),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty() && self.variants.is_empty() && self.cells.is_empty()
    }
}

/// The mask on every key's name hash: all ones, but for a test hook
/// ([`set_key_hash_mask`]).
static KEY_HASH_MASK: AtomicU64 = AtomicU64::new(u64::MAX);

/// Test hook: keys made from now on by this process keep only the `mask` bits of the name hash,
/// so that names share keys. The XDP program must be loaded with the same mask
/// (`LoadOptions::hash_mask`). Production never calls it.
pub fn set_key_hash_mask(mask: u64) {
    KEY_HASH_MASK.store(mask, Ordering::Relaxed);
}

/// A name as the XDP program reads it from a question: lower-cased wire format, root label
/// included.
pub struct WireName {
    bytes: [u8; NAME_BYTES],
    len: usize,
}

impl WireName {
    pub fn of(name: &LowerName) -> WireName {
        let mut bytes = [0; NAME_BYTES];
        let name = Name::from(name.clone());
        let mut at = 0;
        for label in name.iter() {
            bytes[at] = label.len() as u8;
            for (i, b) in label.iter().enumerate() {
                bytes[at + 1 + i] = b.to_ascii_lowercase();
            }
            at += 1 + label.len();
        }
        debug_assert!(at < NAME_BYTES, "a Name is at most 255 bytes on the wire");
        WireName { bytes, len: at + 1 }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The map key of this name and `rtype`.
    pub fn key(&self, rtype: RecordType) -> AnswerKey {
        AnswerKey::of(
            self.bytes(),
            u16::from(rtype),
            KEY_HASH_MASK.load(Ordering::Relaxed),
        )
    }
}

/// The map key of (`name`, `rtype`): its name's hash, length and type.
pub fn key(name: &LowerName, rtype: RecordType) -> AnswerKey {
    WireName::of(name).key(rtype)
}

/// The answer-map entry of (`name`, `rtype`) answered by `value`: its key, and `value` with the
/// name the XDP program confirms ([`AnswerSet::set_name`]). `None` if the name does not fit
/// beside the records (left to userspace, as an RRset too large).
pub fn entry(
    name: &LowerName,
    rtype: RecordType,
    mut value: AnswerSet,
) -> Option<(AnswerKey, AnswerSet)> {
    let wire = WireName::of(name);
    value
        .set_name(wire.bytes())
        .then(|| (wire.key(rtype), value))
}

/// Adds an entry to `table`. If another name holds its key, the smaller name keeps it and the
/// other is left to userspace (XDP confirms the name, so it passes that one up); returns 1 in
/// that case, for [`Tables::shared_keys`].
fn put(table: &mut AnswerTable, (k, v): (AnswerKey, AnswerSet)) -> usize {
    let len = usize::from(k.name_len);
    match table.entry(k) {
        std::collections::hash_map::Entry::Vacant(slot) => {
            slot.insert(v);
            0
        }
        std::collections::hash_map::Entry::Occupied(mut held) => {
            if held.get().name(len) == v.name(len) {
                held.insert(v);
                return 0;
            }
            if v.name(len) < held.get().name(len) {
                held.insert(v);
            }
            1
        }
    }
}

/// Renders an A/AAAA RRset as answer-section bytes: owner 0xC00C (the question), type, class
/// IN, TTL, RDLENGTH, address. `None` if it does not fit.
pub fn render(set: &RrSet) -> Option<AnswerSet> {
    render_records(set.rtype, set.rdatas.iter().map(|r| (set.ttl, r)))
}

/// In a signed zone, appends to `value` (`set` rendered) the RRSIGs over `set` at `name`,
/// with its TTL: the answer to a query with the DO bit, as userspace gives it (records, then
/// their signatures; see `server::dnssec` and `server::sign`). A zone signed elsewhere has
/// them in its data; one signed here gets them from its signer, whose cache then gives
/// userspace the same ones. Left without (`len_do` 0: userspace answers) if they do not fit.
fn add_signatures(
    value: &mut AnswerSet,
    catalog: &Catalog,
    zone: &Zone,
    name: &LowerName,
    set: &RrSet,
) {
    if value.flags & FLAG_SIGNED_ZONE == 0 {
        return;
    }
    let made: Vec<RData>;
    let covering: Vec<&RData> = match catalog.signer(zone) {
        Some(signer) => {
            let owner = hickory_proto::rr::Name::from(name.clone());
            let now = crate::signing::unix_now();
            made = signer.sign(&owner, set.rtype, set.ttl, &set.rdatas, now);
            if made.is_empty() {
                return;
            }
            made.iter().collect()
        }
        None if zone.is_signed() => zone.signatures(name, set.rtype).collect(),
        None => return,
    };
    let records = set.rdatas.iter().map(|r| (set.rtype, set.ttl, r)).chain(
        covering
            .into_iter()
            .map(|r| (RecordType::RRSIG, set.ttl, r)),
    );
    if let Some(signed) = render_rrs(records)
        && signed.data[..usize::from(value.len)] == value.data[..usize::from(value.len)]
    {
        value.data = signed.data;
        value.len_do = signed.len;
        value.ancount_do = signed.ancount;
        value.csum_do = signed.csum;
    }
}

/// In a zone signed here, a routing-policy answer's DO part: its records and their RRSIG, as
/// userspace signs that answer (the signer's cache gives both the same signature). An answer
/// whose records have different TTLs (userspace serves it with the smallest) is left to
/// userspace.
fn sign_variant(
    value: &mut AnswerSet,
    catalog: &Catalog,
    zone: &Zone,
    (name, rtype): (&LowerName, RecordType),
    records: &[(u32, RData)],
) {
    let Some(&(ttl, _)) = records.first() else {
        return;
    };
    if catalog.signer(zone).is_none() || records.iter().any(|(t, _)| *t != ttl) {
        return;
    }
    let set = RrSet {
        rtype,
        ttl,
        rdatas: records.iter().map(|(_, r)| r.clone()).collect(),
    };
    add_signatures(value, catalog, zone, name, &set);
}

/// Renders (TTL, address) records of `rtype` like [`render`]; `None` if there are none or
/// they do not fit.
pub fn render_records<'r>(
    rtype: RecordType,
    records: impl Iterator<Item = (u32, &'r RData)>,
) -> Option<AnswerSet> {
    render_rrs(records.map(|(ttl, r)| (rtype, ttl, r)))
}

/// Renders (type, TTL, data) records, each owned by the question name: addresses, and
/// RRSIGs as their wire bytes.
fn render_rrs<'r>(
    records: impl Iterator<Item = (RecordType, u32, &'r RData)>,
) -> Option<AnswerSet> {
    let mut value = AnswerSet {
        ancount: 0,
        len: 0,
        csum: 0,
        kind: KIND_ANSWER,
        flags: 0,
        zone: 0,
        len_do: 0,
        ancount_do: 0,
        csum_do: 0,
        name_at: 0,
        _pad: 0,
        data: [0; MAX_ANSWER_BYTES],
    };
    let mut at = 0usize;
    for (rtype, ttl, rdata) in records {
        let address: Vec<u8> = match rdata {
            RData::A(a) => a.0.octets().to_vec(),
            RData::AAAA(a) => a.0.octets().to_vec(),
            RData::Unknown { code, rdata } if *code == RecordType::RRSIG => rdata.anything.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::RandomSource;
    use std::collections::BTreeSet;

    /// The engine's shuffle (policy.rs), driven by a slot's random source.
    fn shuffled(n: usize, rng: &mut dyn RandomSource) -> Vec<usize> {
        let mut items: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
        items
    }

    /// A tree of weighted choices: a leaf is an outcome's id.
    enum Choice {
        Leaf(u32),
        Pick(Vec<(u64, Choice)>),
    }

    fn walk(choice: &Choice, rng: &mut dyn RandomSource) -> u32 {
        match choice {
            Choice::Leaf(id) => *id,
            Choice::Pick(options) => {
                let weights: Vec<u64> = options.iter().map(|(w, _)| *w).collect();
                walk(&options[rng.pick(&weights)].1, rng)
            }
        }
    }

    /// Each outcome's probability as a reduced fraction.
    fn shares(choice: &Choice, p: (u128, u128), out: &mut HashMap<u32, (u128, u128)>) {
        match choice {
            Choice::Leaf(id) => {
                let e = out.entry(*id).or_insert((0, 1));
                let (n, d) = (e.0 * p.1 + p.0 * e.1, e.1 * p.1);
                let g = gcd128(n, d);
                *e = (n / g, d / g);
            }
            Choice::Pick(options) => {
                let total: u64 = options.iter().map(|(w, _)| w).sum();
                for (w, next) in options.iter().filter(|(w, _)| *w > 0) {
                    let (n, d) = (p.0 * u128::from(*w), p.1 * u128::from(total));
                    let g = gcd128(n, d);
                    shares(next, (n / g, d / g), out);
                }
            }
        }
    }

    fn leaf(id: u32) -> Choice {
        Choice::Leaf(id)
    }

    /// Exact rings: every outcome of nested weighted choices gets exactly its probability's
    /// share of the slots the compiler computes, through the slots' own random sources.
    #[test]
    fn nested_weighted_choices_get_exact_shares_of_the_ring() {
        use Choice::Pick;
        let trees = [
            // A weighted alias (3:1) into a weighted group (1:2): 1/4, 1/2, 1/4.
            (
                Pick(vec![
                    (3, Pick(vec![(1, leaf(1)), (2, leaf(2))])),
                    (1, leaf(3)),
                ]),
                4,
            ),
            // Three levels, a zero weight, and an outcome reached two ways.
            (
                Pick(vec![
                    (
                        1,
                        Pick(vec![
                            (1, leaf(1)),
                            (1, Pick(vec![(2, leaf(2)), (3, leaf(1))])),
                        ]),
                    ),
                    (0, leaf(9)),
                    (2, leaf(3)),
                ]),
                30,
            ),
            // Route 53's usual weights: 70/30 into 50/50.
            (
                Pick(vec![
                    (70, Pick(vec![(50, leaf(1)), (50, leaf(2))])),
                    (30, leaf(3)),
                ]),
                20,
            ),
            // One choice: as before, S = the weights' common denominator.
            (Pick(vec![(75, leaf(1)), (25, leaf(2))]), 4),
        ];
        for (i, (tree, expected_slots)) in trees.iter().enumerate() {
            let found = exact_slots(&|rng| {
                walk(tree, rng);
            });
            let Shares::Exact { slots, nested } = found else {
                panic!("tree {i}: {found:?}");
            };
            assert_eq!(slots, *expected_slots, "tree {i}");
            assert_eq!(nested, i != 3, "tree {i}");
            let mut counted: HashMap<u32, u128> = HashMap::new();
            for slot in 0..slots as u32 {
                let mut rng = SlotRandom::new(&AnswerKey::zeroed(), false, slot, slots as u32);
                *counted.entry(walk(tree, &mut rng)).or_default() += 1;
            }
            let mut expected = HashMap::new();
            shares(tree, (1, 1), &mut expected);
            for (id, (n, d)) in &expected {
                assert_eq!(
                    counted.get(id).copied().unwrap_or(0) * d,
                    n * u128::from(slots),
                    "tree {i}, outcome {id}: {counted:?} of {slots}"
                );
            }
            assert!(!counted.contains_key(&9), "a zero weight is never chosen");
        }
    }

    /// Too fine for the ring: a single choice is approximated (within a slot per outcome, as
    /// always); choices down an alias are left to userspace.
    #[test]
    fn shares_finer_than_the_ring_are_approximated_or_left_out() {
        let single = Choice::Pick(vec![(1, leaf(1)), (1500, leaf(2))]);
        let found = exact_slots(&|rng| {
            walk(&single, rng);
        });
        assert_eq!(found, Shares::Approximate);
        let nested = Choice::Pick(vec![
            (1, Choice::Pick(vec![(1, leaf(1)), (999, leaf(2))])),
            (1000, leaf(3)),
        ]);
        let found = exact_slots(&|rng| {
            walk(&nested, rng);
        });
        assert_eq!(found, Shares::TooFine);
    }

    #[test]
    fn multivalue_slots_are_balanced_and_reproduce_the_engines_shuffle() {
        let key = AnswerKey::zeroed();
        for n in [2usize, 5, 12, 30] {
            let slots = multivalue_slots(n as u64);
            let mut inclusion = vec![0u32; n];
            let mut distinct = BTreeSet::new();
            for slot in 0..slots {
                let mut rng = SlotRandom::new(&key, true, slot, slots);
                let order = shuffled(n, &mut rng);
                let SlotRandom::Balanced { seed, .. } = rng else {
                    unreachable!()
                };
                assert_eq!(order, multivalue_order(n, seed, u64::from(slot)));
                let answer: Vec<usize> = order.into_iter().take(8).collect();
                for i in &answer {
                    inclusion[*i] += 1;
                }
                let mut set = answer.clone();
                set.sort();
                distinct.insert(set);
            }
            let each = slots as usize * n.min(8) / n;
            assert!(
                inclusion.iter().all(|c| *c as usize == each),
                "n = {n}: {inclusion:?}"
            );
            if n <= 8 {
                assert_eq!(distinct.len(), 1, "n = {n}: every record, every time");
            } else {
                assert!(distinct.len() >= n, "n = {n}: {} subsets", distinct.len());
            }
        }
    }
}
