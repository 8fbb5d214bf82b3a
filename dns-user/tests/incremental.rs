//! A change costs what it touches, and gives what a full rebuild gives: for random sequences
//! of change batches over a small zone (plain records, CNAMEs, a delegation, aliases and
//! their chains, weighted and failover groups with alias members), the zone rebuilt from the
//! names a batch touched ([`Zone::rebuild`]) equals the zone built from all its record sets,
//! and the fast-path tables patched with the change compiled for those names equal the
//! tables compiled from scratch, entry for entry. A batch the full build refuses is refused
//! by the rebuild too.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use hickory_proto::rr::{LowerName, Name};

use dns_user::config::{Overrides, resolve_text};
use dns_user::control::store::sort_key;
use dns_user::control::{Control, PageStart};
use dns_user::fastpath::compile::{compile, compile_touched, policy_changes};
use dns_user::health::HealthState;
use dns_user::location::Regions;
use dns_user::policy::{Health, RandomSource, SplitMix64};
use dns_user::zone::build::{SourcedSet, build};
use dns_user::zone::records::{
    AliasJson, Change, ChangeBatch, ResourceRecordSet, ValueJson, check as check_set, set_key,
};
use dns_user::zone::{Catalog, Where, Zone};

const ORIGIN: &str = "example.test.";
const NAMES: &[&str] = &[
    "example.test.",
    "a.example.test.",
    "b.example.test.",
    "c.example.test.",
    "x.a.example.test.",
    "y.x.a.example.test.",
    "sub.example.test.",
    "n.sub.example.test.",
    "w.example.test.",
];

struct Gen(SplitMix64);

impl Gen {
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn values(&mut self, rtype: &str) -> Vec<ValueJson> {
        let n = 1 + self.below(2);
        (0..n)
            .map(|i| {
                let k = self.below(5) + i;
                let value = match rtype {
                    "A" => format!("192.0.2.{}", k + 1),
                    "AAAA" => format!("2001:db8::{}", k + 1),
                    "TXT" => format!("\"t{k}\""),
                    "MX" => format!("{} mail{k}.example.net.", 10 + k),
                    "NS" => format!("ns{k}.example.net."),
                    _ => unreachable!(),
                };
                ValueJson { value }
            })
            .collect()
    }

    /// A health check for a routing-policy set, or none.
    fn check(&mut self) -> Option<String> {
        [None, Some("hc1"), Some("hc2")][self.below(3)].map(String::from)
    }

    /// A random record set at a random name.
    fn set(&mut self) -> ResourceRecordSet {
        let name = self.pick(NAMES).to_string();
        let ttl = [60, 300][self.below(2)];
        match self.below(10) {
            0..=2 => {
                let rtype = self.pick(&["A", "AAAA", "TXT", "MX"]);
                ResourceRecordSet::records(name, rtype.into(), ttl, self.values(rtype))
            }
            3 => ResourceRecordSet::records(
                name,
                "CNAME".into(),
                ttl,
                vec![ValueJson {
                    value: self.pick(NAMES).into(),
                }],
            ),
            // Now and then the zone becomes signed (or, deleted, unsigned again).
            4 if self.below(4) == 0 => ResourceRecordSet::records(
                ORIGIN.into(),
                "DNSKEY".into(),
                ttl,
                vec![ValueJson {
                    value: "257 3 13 v3OwxeHugMI5DahP4RB8CcCzaCGTXzSoTj/CbJZCG36xc5s8AbY8nTRjh90vuab8i3ctJvTn723/4hZ5WSwMpA==".into(),
                }],
            ),
            4 => ResourceRecordSet::records(
                "sub.example.test.".into(),
                "NS".into(),
                ttl,
                self.values("NS"),
            ),
            5 => {
                let mut set = ResourceRecordSet::records(name, "A".into(), ttl, Vec::new());
                set.ttl = None;
                set.resource_records = None;
                set.alias_target = Some(AliasJson {
                    hosted_zone_id: None,
                    dns_name: self.pick(NAMES).into(),
                    evaluate_target_health: self.below(2) == 0,
                });
                set
            }
            6..=7 => {
                let id = ["one", "two", "three"][self.below(3)];
                let mut set = ResourceRecordSet::records(name, "A".into(), ttl, self.values("A"));
                set.set_identifier = Some(id.into());
                set.weight = Some(self.below(4) as i64);
                set.health_check_id = self.check();
                if self.below(3) == 0 {
                    set.ttl = None;
                    set.resource_records = None;
                    set.alias_target = Some(AliasJson {
                        hosted_zone_id: None,
                        dns_name: self.pick(NAMES).into(),
                        evaluate_target_health: true,
                    });
                }
                set
            }
            _ => {
                let (id, role) = [("p", "PRIMARY"), ("s", "SECONDARY")][self.below(2)];
                let rtype = self.pick(&["A", "AAAA"]);
                let mut set =
                    ResourceRecordSet::records(name, rtype.into(), ttl, self.values(rtype));
                set.set_identifier = Some(id.into());
                set.failover = Some(role.into());
                set.health_check_id = self.check();
                set
            }
        }
    }
}

fn key_of(set: &ResourceRecordSet) -> String {
    let (name, rtype, id) = set_key(set);
    sort_key(&name, &rtype, id.as_deref())
}

fn test_file() -> Where {
    Where::file(Path::new("test"))
}

fn sourced(set: &ResourceRecordSet) -> SourcedSet<'static> {
    SourcedSet {
        set: Cow::Owned(set.clone()),
        place: test_file(),
        record: None,
        checked: None,
    }
}

fn full(sets: &BTreeMap<String, ResourceRecordSet>) -> Result<Zone, String> {
    let sourced: Vec<SourcedSet<'static>> = sets.values().map(sourced).collect();
    build(
        &Name::from_ascii(ORIGIN).unwrap(),
        &sourced,
        &Regions::new(),
        &test_file(),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn a_rebuild_of_what_a_batch_touched_equals_a_full_build() {
    let origin = Name::from_ascii(ORIGIN).unwrap();
    let (mut accepted, mut refused, mut incremental_compiles, mut flips) = (0, 0, 0, 0);
    for seed in 0..40u64 {
        let mut g = Gen(SplitMix64(seed));
        let mut sets: BTreeMap<String, ResourceRecordSet> = BTreeMap::new();
        for set in [
            ResourceRecordSet::records(
                ORIGIN.into(),
                "SOA".into(),
                900,
                vec![ValueJson {
                    value: "ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 86400"
                        .into(),
                }],
            ),
            ResourceRecordSet::records(
                ORIGIN.into(),
                "NS".into(),
                900,
                vec![ValueJson {
                    value: "ns1.example.test.".into(),
                }],
            ),
        ] {
            sets.insert(key_of(&set), set);
        }
        let mut zone = full(&sets).unwrap();
        let mut health = HealthState::default();
        let mut tables = compile(&Catalog::new([zone.clone()]), &health).0;
        for step in 0..60 {
            // Now and then a health check flips: only the groups following it are compiled.
            if g.below(3) == 0 {
                let before = health.clone();
                let id = ["hc1", "hc2"][g.below(2)];
                health.0.insert(id.into(), !before.is_healthy(id));
                let catalog = Catalog::new([zone.clone()]);
                tables.apply(&policy_changes(&catalog, &before, &health, &tables));
                assert!(
                    tables == compile(&catalog, &health).0,
                    "seed {seed} step {step}: tables after {id} flipped differ from a full compile"
                );
                flips += 1;
            }
            // A batch: one to three UPSERTs or DELETEs.
            let mut next = sets.clone();
            let mut changed: HashSet<LowerName> = HashSet::new();
            for _ in 0..1 + g.below(3) {
                let set = g.set();
                if check_set(&set, &Regions::new()).is_err() {
                    continue;
                }
                let key = key_of(&set);
                if g.below(4) == 0 && key != key_of(&sets.values().next().unwrap().clone()) {
                    next.remove(&key);
                } else {
                    next.insert(key, set.clone());
                }
                changed.insert(LowerName::new(&Name::from_ascii(&set.name).unwrap()));
            }
            let sets_at = |name: &LowerName| -> Vec<SourcedSet<'static>> {
                next.values()
                    .filter(|s| LowerName::new(&Name::from_ascii(&s.name).unwrap()) == *name)
                    .map(sourced)
                    .collect()
            };
            let expected = full(&next);
            let rebuilt = zone.rebuild(&changed, &sets_at, &Regions::new(), &test_file());
            match (expected, rebuilt) {
                (Ok(expected), Ok((rebuilt, touched))) => {
                    let differences = rebuilt.differences(&expected);
                    assert!(
                        differences.is_empty(),
                        "seed {seed} step {step}: the rebuild (left) differs from a full build \
                         (right):\n{}",
                        differences.join("\n")
                    );
                    let catalog = Catalog::new([rebuilt.clone()]);
                    let (change, incremental) = compile_touched(
                        &catalog,
                        &health,
                        &[(LowerName::new(&origin), touched)],
                        &tables,
                    );
                    tables.apply(&change);
                    let (from_scratch, _) = compile(&catalog, &health);
                    assert!(
                        tables == from_scratch,
                        "seed {seed} step {step}: patched tables differ from a full compile"
                    );
                    incremental_compiles += usize::from(incremental);
                    zone = rebuilt;
                    sets = next;
                    accepted += 1;
                }
                (Err(_), Err(_)) => refused += 1,
                (Ok(_), Err(e)) => {
                    panic!(
                        "seed {seed} step {step}: the full build accepts, the rebuild refuses: {e}"
                    )
                }
                (Err(e), Ok(_)) => {
                    panic!(
                        "seed {seed} step {step}: the full build refuses ({e}), the rebuild accepts"
                    )
                }
            }
        }
    }
    eprintln!(
        "{accepted} batches accepted ({incremental_compiles} compiled incrementally), \
         {refused} refused, {flips} health flips"
    );
    // The sequences exercise both outcomes, and the incremental compile (not its fallback).
    assert!(
        accepted > 400 && refused > 200,
        "{accepted} accepted, {refused} refused"
    );
    assert!(flips > 400, "{flips} health flips");
    assert!(
        incremental_compiles * 10 > accepted * 9,
        "{incremental_compiles} of {accepted} compiled incrementally"
    );
}

/// The same through the control plane: batches validated against what they touch, stored,
/// and published a few at a time as the publisher does; every publication serves the zone a
/// full build of the stored record sets gives, and its patched tables equal a full compile.
#[test]
fn the_control_plane_publishes_what_a_full_rebuild_serves() {
    let dir = std::env::temp_dir().join(format!("dns-incremental-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let settings = resolve_text(
        "[store]\npath = \"store.redb\"\n",
        &dir.join("dns.toml"),
        &Overrides::default(),
    )
    .unwrap();
    let control = Control::open(settings).unwrap();
    let (zone, _) = control.create_zone("example.test", "r", None).unwrap();
    let origin = LowerName::new(&Name::from_ascii(ORIGIN).unwrap());
    let health = HealthState::default();
    let mut installed = compile(&control.take_publication().catalog, &health).0;
    let stored = || {
        let page = PageStart {
            max_items: Some(300),
            ..PageStart::default()
        };
        let sets = control.list_record_sets(&zone.id, &page).unwrap();
        assert!(!sets.is_truncated);
        sets.resource_record_sets
    };
    let mut g = Gen(SplitMix64(7));
    let (mut accepted, mut refused, mut incremental) = (0, 0, 0);
    for step in 0..400 {
        let existing = stored();
        let mut changes = Vec::new();
        for _ in 0..1 + g.below(3) {
            if g.below(4) == 0 {
                let set = existing[g.below(existing.len())].clone();
                if set.rtype != "SOA" && !(set.rtype == "NS" && set.name == ORIGIN) {
                    let action = "DELETE".into();
                    changes.push(Change {
                        action,
                        resource_record_set: set,
                    });
                }
            } else {
                let action = "UPSERT".into();
                changes.push(Change {
                    action,
                    resource_record_set: g.set(),
                });
            }
        }
        if changes.is_empty() {
            continue;
        }
        let batch = ChangeBatch {
            comment: None,
            changes,
        };
        match control.change_record_sets(&zone.id, &batch) {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
        if g.below(3) != 0 && step != 399 {
            continue; // batches pile up until the next publication
        }
        let publication = control.take_publication();
        match &publication.touched {
            Some(touched) => {
                let (change, only_touched) =
                    compile_touched(&publication.catalog, &health, touched, &installed);
                incremental += usize::from(only_touched);
                installed.apply(&change);
            }
            None => installed = compile(&publication.catalog, &health).0,
        }
        let expected = full(&stored().into_iter().map(|s| (key_of(&s), s)).collect()).unwrap();
        let served = publication.catalog.zone(&origin).unwrap();
        let differences = served.differences(&expected);
        assert!(
            differences.is_empty(),
            "step {step}: served (left) and a full build (right) differ:\n{}",
            differences.join("\n")
        );
        assert!(
            installed == compile(&publication.catalog, &health).0,
            "step {step}: the published tables differ from a full compile"
        );
    }
    eprintln!(
        "{accepted} batches accepted, {refused} refused, {incremental} publications compiled incrementally"
    );
    assert!(
        accepted > 100 && refused > 100,
        "{accepted} accepted, {refused} refused"
    );
    assert!(incremental > 50, "{incremental} incremental publications");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A reload of a changed zone file costs what changed: the zone is rebuilt only at the names
/// whose record sets differ (and what follows them), the publication names only those, and
/// what is served equals a fresh build of the new file; an unchanged reload publishes
/// nothing, and new locations publish everything.
#[test]
fn a_reload_rebuilds_and_publishes_only_what_the_file_changed() {
    let dir = std::env::temp_dir().join(format!("dns-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("example.test.zone");
    let write_zone = |extra: &str, skip: usize, www: &str| {
        let mut text = String::from(
            "$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.53\n",
        );
        for i in 0..2000 {
            if i != skip {
                text.push_str(&format!("h{i} A 192.0.2.{}\n", i % 250));
            }
        }
        text.push_str(&format!("www A {www}\nalias CNAME www\n{extra}"));
        std::fs::write(&file, text).unwrap();
    };
    let config = |locations: &str| {
        resolve_text(
            &format!(
                "[store]\npath = \"store.redb\"\n[[zone]]\norigin = \"{ORIGIN}\"\nfile = \"{}\"\n{locations}",
                file.display()
            ),
            &dir.join("dns.toml"),
            &Overrides::default(),
        )
        .unwrap()
    };
    write_zone("", usize::MAX, "192.0.2.1");
    let control = Control::open(config("")).unwrap();
    let origin = LowerName::new(&Name::from_ascii(ORIGIN).unwrap());
    assert!(
        control.take_publication().touched.is_none(),
        "the start is whole"
    );

    // One value changed, one name gone, one new: only those names (and nothing far) go.
    write_zone("new A 198.51.100.9\n", 7, "192.0.2.2");
    assert!(control.reload(config("")).is_empty());
    let publication = control.take_publication();
    let touched = publication
        .touched
        .expect("a reload of a changed file is incremental");
    let names: HashSet<String> = touched
        .iter()
        .filter(|(o, _)| *o == origin)
        .flat_map(|(_, names)| names.iter().map(|n| n.to_string()))
        .collect();
    for name in ["www.example.test.", "h7.example.test.", "new.example.test."] {
        assert!(names.contains(name), "{name} not in {names:?}");
    }
    assert!(names.len() < 10, "only what changed: {names:?}");
    let expected = dns_user::control::import::catalog(&config("")).unwrap();
    let served = publication.catalog.zone(&origin).unwrap();
    let differences = served.differences(expected.zone(&origin).unwrap());
    assert!(differences.is_empty(), "{}", differences.join("\n"));

    // The same file again: nothing to publish.
    assert!(control.reload(config("")).is_empty());
    let publication = control.take_publication();
    assert!(
        publication
            .touched
            .as_ref()
            .is_some_and(|t| t.iter().all(|(_, n)| n.is_empty())),
        "an unchanged reload publishes nothing"
    );
    // New location data: everything may answer differently.
    let located = "[location.cidr_collections.offices]\nhq = [\"10.0.0.0/8\"]\n";
    assert!(control.reload(config(located)).is_empty());
    assert!(control.take_publication().touched.is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}
