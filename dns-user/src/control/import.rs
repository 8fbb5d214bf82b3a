//! The config's zones into the store: each zone's sources (zone file, `[[zone.record]]`s,
//! `--route53` batches) converted once to record sets ([`record_sets`]), imported when their
//! digest changed, and built by the one road ([`crate::zone::build`]). `check-config` and
//! `export` build the same sets directly ([`catalog`]), so what they accept is what `serve`
//! serves.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::*;
use crate::config::{Settings, ZoneSource, ZoneSpec};
use crate::location::Regions;
use crate::zone::build::{self, SourcedSet};
use crate::zone::records::{self, ResourceRecordSet};
use hickory_proto::rr::LowerName;

use crate::zone::{Catalog, Problem, Where, Zone};

/// Every zone of `settings` built from its record sets, with its location data: the catalog
/// `check-config` and `export` check and print. Any problem fails it (the first with file and
/// line, then every other failing zone's); `serve` would serve the zones that build.
pub fn catalog(settings: &Settings) -> Result<Catalog, Problem> {
    let known: HashSet<&str> = settings
        .health_checks
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    let mut zones = Vec::new();
    let mut problems = Vec::new();
    for spec in &settings.zones {
        match zone(spec, &settings.regions, &known) {
            Ok(z) => zones.push(z),
            Err(e) => problems.push(e),
        }
    }
    match problems.len() {
        0 => Ok(Catalog::new(zones).with_locations(settings.locations.clone())),
        1 => Err(problems.remove(0)),
        n => Err(Problem {
            at: problems[0].at.clone(),
            message: format!(
                "{}\n  and {} more zone(s) that fail:\n  {}",
                problems[0].message,
                n - 1,
                problems[1..]
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ),
        }),
    }
}

/// One config zone built from its record sets ([`record_sets`], [`build::build`]), whose
/// record sets may only name the health checks `known`.
pub fn zone(spec: &ZoneSpec, regions: &Regions, known: &HashSet<&str>) -> Result<Zone, Problem> {
    let source = match &spec.source {
        Some(ZoneSource::File(path)) => path.as_path(),
        Some(ZoneSource::Embedded { name, .. }) => Path::new(name),
        None => spec.config.as_path(),
    };
    let zone = build::build(
        &spec.origin,
        &record_sets(spec, regions)?,
        regions,
        &Where::file(source),
    )?;
    let place = spec
        .route53
        .first()
        .filter(|_| spec.records.is_empty())
        .map_or_else(|| Where::file(&spec.config), |p| Where::file(p));
    build::check_known_checks(zone, known, &place, None)
}

/// The record sets a config zone declares, each converted once to the record-set form: its
/// zone file (one set per name and type, the lowest TTL of its records), its
/// `[[zone.record]]`s, its change batches, and a new hosted zone's default SOA and NS when it
/// has no SOA. The same sets are imported into the store and, by [`catalog`], checked
/// directly: both roads start here.
pub fn record_sets(
    spec: &ZoneSpec,
    regions: &Regions,
) -> Result<Vec<SourcedSet<'static>>, Problem> {
    let records = match &spec.source {
        Some(ZoneSource::File(path)) => crate::zone::read_zone_file(&spec.origin, path)?,
        Some(ZoneSource::Embedded { name, text }) => {
            crate::zone::parse_zone_text(&spec.origin, text, Path::new(name))?
        }
        None => Vec::new(),
    };
    let mut out = crate::zone::file::record_sets(records);
    let mut numbered: Vec<(ResourceRecordSet, Where, String)> = spec
        .records
        .iter()
        .map(|r| {
            (
                r.to_record_set(&spec.origin),
                Where::file(&spec.config),
                r.name.clone(),
            )
        })
        .collect();
    for path in &spec.route53 {
        let place = Where::file(path);
        let applied = records::load(path, regions).map_err(|e| {
            place.error(format!(
                "invalid change batch:\n  {}",
                e.problems.join("\n  ")
            ))
        })?;
        numbered.extend(applied.into_iter().map(|s| {
            let name = s.name.clone();
            (s, place.clone(), name)
        }));
    }
    let has_soa = out
        .iter()
        .map(|s| s.set.as_ref())
        .chain(numbered.iter().map(|(s, _, _)| s))
        .any(|s| s.rtype.eq_ignore_ascii_case("SOA"));
    if !has_soa {
        numbered.extend(
            build::default_sets(&spec.origin, &spec.name_servers)
                .into_iter()
                .map(|s| {
                    let name = s.name.clone();
                    (s, Where::file(&spec.config), name)
                }),
        );
    }
    out.extend(
        numbered
            .into_iter()
            .enumerate()
            .map(|(i, (set, place, name))| SourcedSet {
                set: Cow::Owned(set),
                place,
                record: Some((i + 1, Cow::Owned(name))),
                checked: None,
            }),
    );
    Ok(out)
}

/// Rebuilds every stored zone with the current settings (regions, locations) and checks,
/// but those in `fresh` (just built by the import); with `unchanged` (the same regions and
/// checks as the built zones had) only zones not built yet.
pub(super) fn rebuild_all(
    g: &mut Inner,
    fresh: &HashSet<String>,
    strict: bool,
    unchanged: bool,
) -> Result<(), ImportError> {
    let known: HashSet<&str> = g.specs.iter().map(|c| c.id.as_str()).collect();
    let mut built = HashMap::new();
    let mut problems = Vec::new();
    for zone in g.store.state().zones.values() {
        if (fresh.contains(&zone.id) || unchanged)
            && let Some(z) = g.built.get(&zone.id)
        {
            built.insert(zone.id.clone(), z.clone());
            continue;
        }
        let sets = g.store.state().sets(&zone.id);
        match build_zone_with(&g.settings, zone, &sets, &known) {
            Ok(z) => {
                built.insert(zone.id.clone(), Arc::new(z));
            }
            Err(e) => {
                problems.push(e.to_string());
                if let Some(old) = g.built.get(&zone.id) {
                    built.insert(zone.id.clone(), old.clone());
                }
            }
        }
    }
    if strict && !problems.is_empty() {
        return Err(ImportError::new(problems));
    }
    let rebuilt_any = built
        .iter()
        .any(|(id, z)| g.built.get(id).is_none_or(|old| !Arc::ptr_eq(old, z)));
    g.built = built;
    if rebuilt_any {
        g.publish_all = true;
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ImportError::one(format!(
            "zones kept at their last good version:\n  {}",
            problems.join("\n  ")
        )))
    }
}

/// The record sets a config zone declares ([`record_sets`]), as stored.
pub fn import_sets(spec: &ZoneSpec, regions: &Regions) -> Result<Vec<ResourceRecordSet>, String> {
    record_sets(spec, regions)
        .map(|sets| sets.into_iter().map(|s| s.set.into_owned()).collect())
        .map_err(|e| e.to_string())
}

/// Zone `zone` with record sets `sets` in place of `old_sets`, from `old` (built from
/// `old_sets`): only the names whose record sets differ, and the names that follow theirs,
/// are read and assembled again ([`Zone::rebuild`], which equals a full build). Also returns
/// the names whose answers may differ. `None` when more than a quarter of the names changed
/// (a full build costs as much) or nothing did not.
fn rebuild_zone_with(
    settings: &Settings,
    zone: &HostedZone,
    old: &Zone,
    old_sets: &BTreeMap<String, ResourceRecordSet>,
    sets: &[ResourceRecordSet],
    known: &HashSet<&str>,
) -> Result<Option<(Zone, HashSet<LowerName>)>, Problem> {
    let mut new: Vec<(String, &ResourceRecordSet)> =
        sets.iter().map(|s| (store::set_sort_key(s), s)).collect();
    new.sort_by(|a, b| a.0.cmp(&b.0));
    // The names where the sorted old and new sets differ.
    let mut names: HashSet<&str> = HashSet::new();
    let (mut o, mut n) = (old_sets.iter().peekable(), new.iter().peekable());
    loop {
        match (o.peek(), n.peek()) {
            (Some((ok, os)), Some((nk, ns))) => match ok.as_str().cmp(nk.as_str()) {
                std::cmp::Ordering::Less => {
                    names.insert(os.name.as_str());
                    o.next();
                }
                std::cmp::Ordering::Greater => {
                    names.insert(ns.name.as_str());
                    n.next();
                }
                std::cmp::Ordering::Equal => {
                    if os != ns {
                        names.insert(ns.name.as_str());
                    }
                    o.next();
                    n.next();
                }
            },
            (Some((_, os)), None) => {
                names.insert(os.name.as_str());
                o.next();
            }
            (None, Some((_, ns))) => {
                names.insert(ns.name.as_str());
                n.next();
            }
            (None, None) => break,
        }
    }
    let sets_at = |name: &LowerName| -> Vec<ResourceRecordSet> {
        let prefix = store::name_prefix(&name.to_string());
        let start = new.partition_point(|(k, _)| k.as_str() < prefix.as_str());
        new[start..]
            .iter()
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, s)| (*s).clone())
            .collect()
    };
    let names = names.into_iter().collect::<Vec<_>>();
    rebuild_names(
        &settings.regions,
        zone,
        old,
        &names,
        sets.len(),
        &sets_at,
        known,
    )
}

/// `old`, zone `zone`, with the record sets at `names` read again through `sets_at` and the
/// names that follow theirs assembled again ([`Zone::rebuild`], which equals a full build).
/// Also returns the names whose answers may differ. `None` when more than a quarter of the
/// zone's `count` names changed (a full build costs as much) or a name is not a name. The
/// road of both incremental builds: an import's and a cluster node's.
pub(super) fn rebuild_names(
    regions: &Regions,
    zone: &HostedZone,
    old: &Zone,
    names: &[&str],
    count: usize,
    sets_at: &dyn Fn(&LowerName) -> Vec<ResourceRecordSet>,
    known: &HashSet<&str>,
) -> Result<Option<(Zone, HashSet<LowerName>)>, Problem> {
    if names.len() * 4 > count.max(1) {
        return Ok(None);
    }
    let Some(changed) = names
        .iter()
        .map(|n| lower_name(n))
        .collect::<Option<HashSet<LowerName>>>()
    else {
        return Ok(None);
    };
    let place = Where::HostedZone {
        id: zone.id.clone(),
    };
    let sourced = |name: &LowerName| -> Vec<SourcedSet<'static>> {
        sets_at(name)
            .into_iter()
            .map(|set| SourcedSet {
                set: Cow::Owned(set),
                place: place.clone(),
                record: None,
                checked: None,
            })
            .collect()
    };
    let (rebuilt, touched) = old.rebuild(&changed, &sourced, regions, &place)?;
    let zone = build::check_known_checks(rebuilt, known, &place, Some(&touched))?;
    Ok(Some((zone, touched)))
}

/// What happens to a zone whose import failed.
/// What becomes of a zone that failed to import.
fn kept(strict: bool, stored: bool) -> &'static str {
    match (strict, stored) {
        (true, _) => "",
        (false, true) => "; keeping its last good version",
        (false, false) => "; not served",
    }
}

fn digest(value: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(value).expect("serializes");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn describe(spec: &ZoneSpec) -> String {
    let mut from = Vec::new();
    match &spec.source {
        Some(ZoneSource::File(p)) => from.push(format!("zone file {}", p.display())),
        Some(ZoneSource::Embedded { name, .. }) => from.push(format!("embedded {name}")),
        None => {}
    }
    if !spec.records.is_empty() {
        from.push(format!("records in {}", spec.config.display()));
    }
    for p in &spec.route53 {
        from.push(format!("change batch {}", p.display()));
    }
    from.join(", ")
}

/// Imports the config's zones and health checks (see the module docs). `strict`: any problem
/// fails the whole import; otherwise the failing zones and checks keep their stored versions
/// (a zone never stored is not served) and the problems are returned beside the ids of the
/// zones it built (already in `g.built`). A store that cannot be written fails it whole. With `same_regions` (the regions the built zones were built
/// with) and the same health checks, a zone that was built before is rebuilt only where its
/// record sets changed, and only those names are published.
pub(super) fn import(
    g: &mut Inner,
    settings: &Settings,
    strict: bool,
    same_regions: bool,
) -> Result<(HashSet<String>, Vec<String>), ImportError> {
    let mut problems = Vec::new();
    let state = g.store.state();
    let mut write = Write::default();

    // Health checks first: the zones are validated against them.
    let mut checks = state.checks.clone();
    let configured: HashSet<&str> = settings
        .health_check_configs
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    for (id, config) in &settings.health_check_configs {
        let json = serde_json::to_value(config).expect("serializes");
        let d = digest(&json);
        let old = checks.get(id);
        if old.is_some_and(|c| c.import_digest.as_deref() == Some(d.as_str())) {
            continue;
        }
        let check = StoredCheck {
            id: id.clone(),
            caller_reference: old
                .map_or_else(|| format!("import:{id}"), |c| c.caller_reference.clone()),
            health_check_config: json,
            health_check_version: old.map_or(1, |c| c.health_check_version + 1),
            imported_from: Some("config".into()),
            import_digest: Some(d),
            tags: old.map(|c| c.tags.clone()).unwrap_or_default(),
        };
        checks.insert(id.clone(), check);
    }
    let dropped: Vec<String> = checks
        .values()
        .filter(|c| c.imported_from.is_some() && !configured.contains(c.id.as_str()))
        .map(|c| c.id.clone())
        .collect();

    // Zones.
    let mut zones_by_name: HashMap<String, HostedZone> = state
        .zones
        .values()
        .map(|z| (z.name.clone(), z.clone()))
        .collect();
    let mut next_sets: HashMap<String, Vec<ResourceRecordSet>> = HashMap::new();
    let mut configured_zones = HashSet::new();
    for spec in &settings.zones {
        let name = crate::zone::absolute_lower(&spec.origin.to_ascii());
        configured_zones.insert(name.clone());
        let sets = match import_sets(spec, &settings.regions) {
            Ok(s) => s,
            Err(e) => {
                let stored = zones_by_name.contains_key(&name);
                problems.push(format!("zone {name} failed ({e}){}", kept(strict, stored)));
                continue;
            }
        };
        let mut sorted: Vec<&ResourceRecordSet> = sets.iter().collect();
        sorted.sort_by_key(|s| store::sort_key(&s.name, &s.rtype, s.set_identifier.as_deref()));
        let d = digest(&sorted);
        let zone = match zones_by_name.get(&name) {
            Some(z) if z.import_digest.as_deref() == Some(d.as_str()) => continue,
            Some(z) => {
                let mut z = z.clone();
                z.version += 1;
                z
            }
            None => HostedZone {
                id: store::new_id("Z"),
                name: name.clone(),
                caller_reference: format!("import:{name}"),
                comment: None,
                created_at: store::now(),
                version: 1,
                imported_from: None,
                import_digest: None,
                tags: BTreeMap::new(),
                dnssec: None,
            },
        };
        let mut zone = zone;
        zone.imported_from = Some(describe(spec));
        zone.import_digest = Some(d);
        zones_by_name.insert(name.clone(), zone.clone());
        next_sets.insert(zone.id.clone(), sets);
    }
    let removed_zones: Vec<HostedZone> = zones_by_name
        .values()
        .filter(|z| z.imported_from.is_some() && !configured_zones.contains(&z.name))
        .cloned()
        .collect();
    for z in &removed_zones {
        zones_by_name.remove(&z.name);
    }

    // Checks the config dropped go unless something still uses them: the record sets as
    // they will be (imported zones' new sets, removed zones' none) and the remaining checks.
    let removed: HashSet<&str> = removed_zones.iter().map(|z| z.id.as_str()).collect();
    let candidate_checks = checks.clone();
    for id in &dropped {
        let stored = state
            .rrsets
            .iter()
            .filter(|(zone, _)| !removed.contains(zone.as_str()) && !next_sets.contains_key(*zone))
            .flat_map(|(zone, sets)| sets.values().map(move |s| (zone.as_str(), s)));
        let imported = next_sets
            .iter()
            .flat_map(|(zone, sets)| sets.iter().map(move |s| (zone.as_str(), s)));
        let users = check_users(stored.chain(imported), candidate_checks.values(), id);
        match users.first() {
            None => {
                checks.remove(id);
            }
            Some(user) => {
                problems.push(format!(
                    "health check {id} left the config but is still used by {user}: kept"
                ));
            }
        }
    }
    let specs = match validate_checks(&checks) {
        Ok(s) => s,
        Err(e) => {
            // Keep the stored checks; zones are validated against those.
            problems.push(e.to_string());
            checks = state.checks.clone();
            validate_checks(&checks).map_err(ImportError::one)?
        }
    };
    let known: HashSet<&str> = specs.iter().map(|c| c.id.as_str()).collect();
    // A zone built before with the same regions and checks is changed where its record sets
    // differ; others are built whole.
    let same_checks =
        known.len() == g.specs.len() && g.specs.iter().all(|c| known.contains(c.id.as_str()));
    let mut accepted = Vec::new();
    for (id, sets) in next_sets {
        let zone = zones_by_name
            .values()
            .find(|z| z.id == id)
            .expect("inserted above")
            .clone();
        let before = match (
            same_regions && same_checks,
            g.built.get(&id),
            state.rrsets.get(&id),
        ) {
            (true, Some(built), Some(old_sets)) => Some((built, old_sets)),
            _ => None,
        };
        let changed = before.and_then(|(built, old_sets)| {
            rebuild_zone_with(settings, &zone, built, old_sets, &sets, &known)
                .ok()
                .flatten()
        });
        match changed {
            Some((built, touched)) => accepted.push((zone, sets, built, Some(touched))),
            None => match build_zone_with(settings, &zone, &sets, &known) {
                Ok(built) => accepted.push((zone, sets, built, None)),
                Err(e) => {
                    let stored = state.zones.contains_key(&zone.id);
                    problems.push(format!(
                        "zone {} failed ({e}){}",
                        zone.name,
                        kept(strict, stored)
                    ));
                }
            },
        }
    }
    if strict && !problems.is_empty() {
        return Err(ImportError::new(problems));
    }
    for c in checks.values() {
        if state.checks.get(&c.id) != Some(c) {
            write.put_check(c.clone());
        }
    }
    for id in state.checks.keys() {
        if !checks.contains_key(id) {
            write.delete_check(id);
        }
    }
    let mut fresh = HashSet::new();
    let mut built_zones = Vec::new();
    let mut touched = Vec::new();
    let mut whole = !removed_zones.is_empty();
    let mut changes = Vec::new();
    for (zone, sets, built, names) in accepted {
        fresh.insert(zone.id.clone());
        match names {
            Some(names) => touched.push((LowerName::new(built.origin()), names)),
            None => whole = true,
        }
        built_zones.push((zone.id.clone(), Arc::new(built)));
        tracing::info!(
            "imported zone {} ({} record sets) from {}",
            zone.name,
            sets.len(),
            zone.imported_from.as_deref().unwrap_or("?")
        );
        let mut change = next_change(g, Some(format!("import of {}", zone.name)), &zone.id);
        change.sequence += changes.len() as u64;
        changes.push(change.clone());
        write
            .put_zone(zone.clone())
            .replace_sets(&zone.id, sets)
            .put_change(change);
    }
    for z in &removed_zones {
        tracing::info!("zone {} left the config: removed from the store", z.name);
        write.delete_zone(&z.id);
    }
    g.store.commit(write).map_err(ImportError::store)?;
    for change in &changes {
        accept(g, change);
    }
    g.specs = specs;
    for z in &removed_zones {
        g.built.remove(&z.id);
    }
    g.built.extend(built_zones);
    if whole {
        g.publish_all = true;
    } else {
        g.touched.extend(touched);
    }
    Ok((fresh, problems))
}
