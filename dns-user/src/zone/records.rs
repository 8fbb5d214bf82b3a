//! Route 53 change batches: the JSON `aws route53 change-resource-record-sets --change-batch`
//! takes, read as a zone's record sets (`--route53 ORIGIN=PATH`).
//!
//! A batch is validated whole before anything is used: CREATE of a record set that exists
//! fails, DELETE must match an existing set exactly, UPSERT creates or replaces; every problem
//! is listed. A ResourceRecordSet is the one form every record set takes (config records, zone
//! files and API changes are converted to it at the edge); [`check`] reads its TTL and routing
//! policy once, with Route 53's rules.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::policy::{FailoverRole, GeoLocation, Policy};

/// A change batch could not be used; nothing of it was applied.
#[derive(Debug, thiserror::Error)]
#[error("{file}: invalid change batch:\n  {}", problems.join("\n  "))]
pub struct InvalidChangeBatch {
    pub file: String,
    pub problems: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ChangeBatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub changes: Vec<Change>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Change {
    pub action: String,
    pub resource_record_set: ResourceRecordSet,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ResourceRecordSet {
    pub name: String,
    #[serde(rename = "Type")]
    pub rtype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_identifier: Option<String>,
    /// Checked against 0..255 here, so a bad value is a listed problem, not a parse error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_location: Option<GeoLocationJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_proximity_location: Option<GeoProximityJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_value_answer: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr_routing_config: Option<CidrJson>,
    #[serde(rename = "TTL")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_records: Option<Vec<ValueJson>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_target: Option<AliasJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_id: Option<String>,
}

impl ResourceRecordSet {
    /// A simple record set: `name` (absolute), `rtype`, `ttl` and its values.
    pub fn records(name: String, rtype: String, ttl: i64, values: Vec<ValueJson>) -> Self {
        ResourceRecordSet {
            name,
            rtype,
            set_identifier: None,
            weight: None,
            region: None,
            geo_location: None,
            geo_proximity_location: None,
            failover: None,
            multi_value_answer: None,
            cidr_routing_config: None,
            ttl: Some(ttl),
            resource_records: Some(values),
            alias_target: None,
            health_check_id: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct GeoLocationJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continent_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdivision_code: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct GeoProximityJson {
    #[serde(rename = "AWSRegion")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<CoordinatesJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<i64>,
}

/// Route 53 sends coordinates as strings ("47.61").
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CoordinatesJson {
    pub latitude: String,
    pub longitude: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CidrJson {
    pub collection_id: String,
    pub location_name: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ValueJson {
    pub value: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct AliasJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_zone_id: Option<String>,
    #[serde(rename = "DNSName")]
    pub dns_name: String,
    pub evaluate_target_health: bool,
}

/// Reads the batch at `path` and applies it to an empty zone: the record sets it leaves.
/// `regions` gives the coordinates of named regions (GeoProximityLocation.AWSRegion).
pub fn load(
    path: &Path,
    regions: &crate::location::Regions,
) -> Result<Vec<ResourceRecordSet>, InvalidChangeBatch> {
    let file = path.display().to_string();
    let fail = |problems: Vec<String>| InvalidChangeBatch {
        file: file.clone(),
        problems,
    };
    let text = crate::files::read_text(path, crate::files::MAX_SMALL_FILE)
        .map_err(|e| fail(vec![format!("cannot read: {e}")]))?;
    let batch: ChangeBatch =
        serde_json::from_str(&text).map_err(|e| fail(vec![format!("malformed JSON: {e}")]))?;
    apply_to(Vec::new(), &batch, regions, None).map_err(fail)
}

/// Parses a change batch's JSON text and applies it to an empty zone, listing every problem.
pub fn parse(
    text: &str,
    regions: &crate::location::Regions,
) -> Result<Vec<ResourceRecordSet>, Vec<String>> {
    let batch: ChangeBatch =
        serde_json::from_str(text).map_err(|e| vec![format!("malformed JSON: {e}")])?;
    apply_to(Vec::new(), &batch, regions, None)
}

/// The identity of a record set in its zone: name (lower case, absolute), type, set id.
pub type SetKey = (String, String, Option<String>);

/// `set`'s identity ([`SetKey`]).
pub fn set_key(set: &ResourceRecordSet) -> SetKey {
    (
        crate::zone::absolute_lower(&set.name),
        set.rtype.to_ascii_uppercase(),
        set.set_identifier.clone(),
    )
}

/// `set` as stored: the name absolute and lower case, the type upper case.
pub fn normalize(mut set: ResourceRecordSet) -> ResourceRecordSet {
    set.name = crate::zone::absolute_lower(&set.name);
    set.rtype = set.rtype.to_ascii_uppercase();
    if let Some(alias) = &mut set.alias_target {
        alias.dns_name = crate::zone::absolute_lower(&alias.dns_name);
    }
    set
}

/// Route 53's limits on one change batch.
pub const MAX_BATCH_RECORDS: usize = 1000;
pub const MAX_BATCH_VALUE_CHARS: usize = 32_000;
pub const MAX_COMMENT: usize = 256;
pub const MAX_SET_IDENTIFIER: usize = 128;

/// Route 53's size limits on a batch, checked before anything else (they bound the work the
/// rest of the validation does): at most 1,000 ResourceRecord elements and 32,000 characters
/// of values, an UPSERT counting twice; a comment of at most 256 characters.
pub fn check_limits(batch: &ChangeBatch) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    if let Some(c) = &batch.comment {
        check_comment(c).unwrap_or_else(|e| problems.push(e));
    }
    let (mut records, mut chars) = (0usize, 0usize);
    for change in &batch.changes {
        let weight = if change.action == "UPSERT" { 2 } else { 1 };
        let values = change
            .resource_record_set
            .resource_records
            .as_deref()
            .unwrap_or_default();
        records += weight * values.len();
        chars += weight
            * values
                .iter()
                .map(|v| v.value.chars().count())
                .sum::<usize>();
    }
    if records > MAX_BATCH_RECORDS {
        problems.push(format!(
            "the batch has {records} ResourceRecord elements (an UPSERT counts twice): at most {MAX_BATCH_RECORDS}"
        ));
    }
    if chars > MAX_BATCH_VALUE_CHARS {
        problems.push(format!(
            "the batch has {chars} characters of values (an UPSERT counts twice): at most {MAX_BATCH_VALUE_CHARS}"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// A comment (of a hosted zone or a change batch): at most 256 characters, no control
/// characters.
pub fn check_comment(comment: &str) -> Result<(), String> {
    if comment.chars().count() > MAX_COMMENT {
        return Err(format!(
            "Comment has {} characters: at most {MAX_COMMENT}",
            comment.chars().count()
        ));
    }
    if comment.chars().any(char::is_control) {
        return Err("Comment has a control character".into());
    }
    Ok(())
}

/// Applies `batch` to a zone's record sets `sets`, listing every problem ([`apply_changes`]).
/// Returns the zone's record sets afterwards: `sets` in their order, replaced or removed
/// where the batch says, then the sets it creates.
pub fn apply_to(
    sets: Vec<ResourceRecordSet>,
    batch: &ChangeBatch,
    regions: &crate::location::Regions,
    apex: Option<&str>,
) -> Result<Vec<ResourceRecordSet>, Vec<String>> {
    let sets: Vec<ResourceRecordSet> = sets.into_iter().map(normalize).collect();
    let index: HashMap<SetKey, usize> = sets
        .iter()
        .enumerate()
        .map(|(i, s)| (set_key(s), i))
        .collect();
    let changes = apply_changes(
        &|k| index.get(k).map(|i| sets[*i].clone()),
        batch,
        regions,
        apex,
    )?;
    let mut changed: HashMap<SetKey, Option<ResourceRecordSet>> = HashMap::new();
    let mut created = Vec::new();
    for Applied { key, set } in changes {
        let set = set.map(|(set, _)| set);
        if !index.contains_key(&key)
            && let Some(set) = &set
        {
            created.push(set.clone());
        }
        changed.insert(key, set);
    }
    Ok(sets
        .into_iter()
        .filter_map(|s| match changed.get(&set_key(&s)) {
            Some(replacement) => replacement.clone(),
            None => Some(s),
        })
        .chain(created)
        .collect())
}

/// Applies `batch` to a zone whose record set at a key is `existing(key)`, listing every
/// problem: CREATE of a set that exists, DELETE that does not match a set exactly, unknown
/// actions, out-of-range values. With `apex`, the zone's SOA and apex NS cannot be created or
/// deleted (only UPSERT), as in Route 53. Nothing is applied unless everything is valid.
/// Returns what the batch leaves at each key it touches, in the order first touched; it
/// costs what the batch holds, whatever the zone's size.
pub fn apply_changes(
    existing: &dyn Fn(&SetKey) -> Option<ResourceRecordSet>,
    batch: &ChangeBatch,
    regions: &crate::location::Regions,
    apex: Option<&str>,
) -> Result<Vec<Applied>, Vec<String>> {
    check_limits(batch)?;
    // What the batch has done so far, over what exists.
    let mut order: Vec<SetKey> = Vec::new();
    let mut overlay: HashMap<SetKey, Option<ResourceRecordSet>> = HashMap::new();
    let mut read: HashMap<SetKey, Checked> = HashMap::new();
    let mut problems = Vec::new();
    if batch.changes.is_empty() {
        problems.push("the batch has no changes".into());
    }
    for (i, change) in batch.changes.iter().enumerate() {
        let rrs = normalize(change.resource_record_set.clone());
        let at = format!(
            "change #{} ({} {} {}{})",
            i + 1,
            change.action,
            crate::text::escape(&rrs.name),
            crate::text::escape(&rrs.rtype),
            rrs.set_identifier
                .as_deref()
                .map(|s| format!(" {s:?}"))
                .unwrap_or_default()
        );
        if let Err(e) = crate::zone::canonical_name(&change.resource_record_set.name) {
            problems.push(format!("{at}: Name {e}"));
        }
        if let Some(id) = &rrs.set_identifier {
            let n = id.chars().count();
            if n == 0 || n > MAX_SET_IDENTIFIER || id.chars().any(char::is_control) {
                problems.push(format!(
                    "{at}: SetIdentifier must be 1 to {MAX_SET_IDENTIFIER} printable characters"
                ));
            }
        }
        let key = set_key(&rrs);
        let current = match overlay.get(&key) {
            Some(set) => set.clone(),
            None => existing(&key).map(normalize),
        };
        let apex_only = apex.is_some_and(|apex| {
            key.1 == "SOA" || (key.1 == "NS" && key.0 == apex.to_ascii_lowercase())
        });
        let mut set = |key: &SetKey, value: Option<ResourceRecordSet>| {
            if overlay.insert(key.clone(), value).is_none() {
                order.push(key.clone());
            }
        };
        match (change.action.as_str(), current) {
            ("CREATE" | "DELETE", _) if apex_only => problems.push(format!(
                "{at}: the zone's SOA and apex NS record sets can only be changed with UPSERT"
            )),
            ("CREATE", Some(_)) => problems.push(format!("{at}: the record set already exists")),
            ("CREATE" | "UPSERT", _) => set(&key, Some(rrs.clone())),
            ("DELETE", Some(current)) if current == rrs => set(&key, None),
            ("DELETE", Some(_)) => problems.push(format!(
                "{at}: DELETE must match the existing record set exactly"
            )),
            ("DELETE", None) => problems.push(format!("{at}: no such record set to delete")),
            (other, _) => problems.push(format!(
                "{at}: unknown action {:?} (CREATE, DELETE, UPSERT)",
                crate::text::escape(other)
            )),
        }
        match check(&rrs, regions) {
            Ok(checked) => {
                read.insert(key, checked);
            }
            Err(e) => problems.push(format!("{at}: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(order
            .into_iter()
            .map(|key| {
                let set = overlay
                    .remove(&key)
                    .expect("ordered keys are in the overlay");
                let set = set.map(|s| (s, read[&key].clone()));
                Applied { key, set }
            })
            .collect())
    } else {
        Err(problems)
    }
}

/// What a change batch leaves at one key: the record set with its TTL and routing policy
/// read ([`check`]), or `None` (deleted).
#[derive(Clone, Debug)]
pub struct Applied {
    pub key: SetKey,
    pub set: Option<(ResourceRecordSet, Checked)>,
}

/// What a record set's routing fields say, range-checked and read once.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    /// The TTL of a set of records (an alias has none).
    pub ttl: Option<u32>,
    /// `None` for a simple record set.
    pub policy: Option<Policy>,
}

/// Reads `s`'s TTL and routing policy with Route 53's rules, or says what is wrong:
/// out-of-range TTL, weight or bias, a geoproximity region without coordinates, an alias with
/// a TTL or records, a policy without a SetIdentifier (or the reverse), two policies at once.
/// `regions` gives named regions' coordinates (GeoProximityLocation.AWSRegion).
pub fn check(s: &ResourceRecordSet, regions: &crate::location::Regions) -> Result<Checked, String> {
    let ttl = match s.ttl {
        Some(t) if !(0..=i64::from(i32::MAX)).contains(&t) => {
            return Err(format!("TTL {t} is out of range"));
        }
        Some(t) => Some(t as u32),
        None => None,
    };
    let weight = match s.weight {
        Some(w) if !(0..=255).contains(&w) => return Err(format!("weight {w} is outside 0..255")),
        Some(w) => Some(w as u8),
        None => None,
    };
    let geoproximity = match &s.geo_proximity_location {
        None => None,
        Some(g) => Some(geoproximity(g, regions)?),
    };
    if s.alias_target.is_some()
        && (ttl.is_some() || s.resource_records.as_ref().is_some_and(|r| !r.is_empty()))
    {
        return Err("an alias has no TTL or ResourceRecords".into());
    }
    let mut policies = Vec::new();
    if let Some(weight) = weight {
        policies.push(Policy::Weighted { weight });
    }
    if let Some(role) = &s.failover {
        policies.push(Policy::Failover(match role.to_ascii_uppercase().as_str() {
            "PRIMARY" => FailoverRole::Primary,
            "SECONDARY" => FailoverRole::Secondary,
            other => {
                return Err(format!(
                    "failover must be PRIMARY or SECONDARY, not {other:?}"
                ));
            }
        }));
    }
    if let Some(region) = &s.region {
        policies.push(Policy::Latency {
            region: region.clone(),
        });
    }
    if let Some(g) = &s.geo_location {
        policies.push(Policy::Geolocation(geolocation(g)?));
    }
    if let Some(g) = geoproximity {
        policies.push(g);
    }
    if s.multi_value_answer == Some(true) {
        policies.push(Policy::MultiValue);
    }
    if let Some(c) = &s.cidr_routing_config {
        policies.push(Policy::IpBased {
            collection: c.collection_id.clone(),
            location: c.location_name.clone(),
        });
    }
    let policy = match (policies.len(), &s.set_identifier) {
        (0, None) => None,
        (0, Some(_)) => return Err("set_id without a routing policy (weight, failover, region, geolocation, geoproximity, multivalue or cidr)".into()),
        (1, Some(id)) if id.is_empty() || id.len() > 128 => {
            return Err("set_id must be 1..128 characters".into());
        }
        (1, Some(_)) => policies.pop(),
        (1, None) => return Err("a routing policy needs a set_id".into()),
        _ => return Err("more than one routing policy on one record set".into()),
    };
    Ok(Checked { ttl, policy })
}

/// A GeoProximityLocation: coordinates (given, or of a named region) and a bias.
fn geoproximity(
    g: &GeoProximityJson,
    regions: &crate::location::Regions,
) -> Result<Policy, String> {
    let bias = g.bias.unwrap_or(0);
    if !(-99..=99).contains(&bias) {
        return Err(format!("bias {bias} is outside -99..99"));
    }
    let (lat, lon) = match (&g.aws_region, &g.coordinates) {
        (Some(region), None) => {
            let [lat, lon] = regions.get(region).ok_or_else(|| {
                format!("region {region:?} has no coordinates in [location.regions]")
            })?;
            (*lat, *lon)
        }
        (None, Some(c)) => (
            c.latitude
                .parse()
                .map_err(|_| format!("bad latitude {:?}", c.latitude))?,
            c.longitude
                .parse()
                .map_err(|_| format!("bad longitude {:?}", c.longitude))?,
        ),
        _ => return Err("GeoProximityLocation needs AWSRegion or Coordinates".into()),
    };
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(format!(
            "geoproximity coordinates {lat}, {lon} are out of range"
        ));
    }
    Ok(Policy::Geoproximity {
        lat,
        lon,
        bias: bias as i8,
    })
}

/// A GeoLocation: a continent, a country, a country's subdivision, or the default (`*`).
fn geolocation(g: &GeoLocationJson) -> Result<GeoLocation, String> {
    const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];
    let code = |s: &str| s.to_ascii_uppercase();
    let default = g.country_code.as_deref() == Some("*");
    let country = g.country_code.as_ref().filter(|c| *c != "*");
    match (&g.continent_code, country, &g.subdivision_code, default) {
        (None, None, None, true) => Ok(GeoLocation::Default),
        (Some(c), None, None, false) if CONTINENTS.contains(&code(c).as_str()) => {
            Ok(GeoLocation::Continent(code(c)))
        }
        (Some(c), None, None, false) => Err(format!("unknown continent {c:?} (AF AN AS EU NA OC SA)")),
        (None, Some(c), None, false) if c.len() == 2 => Ok(GeoLocation::Country(code(c))),
        (None, Some(c), Some(s), false) if c.len() == 2 && !s.is_empty() => {
            Ok(GeoLocation::Subdivision { country: code(c), subdivision: code(s) })
        }
        _ => Err("geolocation is one of { continent }, { country }, { country, subdivision } or { default = true }".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn batch(json: &str) -> ChangeBatch {
        serde_json::from_str(json).unwrap()
    }

    const SAMPLE: &str = include_str!("../../../examples/route53-batch.json");

    #[test]
    fn create_upsert_delete_leave_the_expected_sets() {
        let sets = apply_to(Vec::new(), &batch(SAMPLE), &HashMap::new(), None).unwrap();
        let names: Vec<String> = sets
            .iter()
            .map(|s| format!("{} {} {:?}", s.name, s.rtype, s.set_identifier))
            .collect();
        assert_eq!(sets.len(), 6, "{names:?}");
        assert!(
            !names.iter().any(|n| n.starts_with("txt.")),
            "deleted: {names:?}"
        );
        assert!(sets.iter().all(|s| s.name.ends_with('.')));
    }

    #[test]
    fn every_problem_is_listed_and_nothing_is_used() {
        let bad = r#"{"Changes": [
          {"Action": "CREATE", "ResourceRecordSet": {"Name": "a.example.org.", "Type": "A", "SetIdentifier": "x", "Weight": 256, "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}},
          {"Action": "CREATE", "ResourceRecordSet": {"Name": "b.example.org.", "Type": "A", "SetIdentifier": "y", "GeoProximityLocation": {"Coordinates": {"Latitude": "1", "Longitude": "2"}, "Bias": 100}, "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}},
          {"Action": "CREATE", "ResourceRecordSet": {"Name": "c.example.org.", "Type": "A", "TTL": -1, "ResourceRecords": [{"Value": "192.0.2.1"}]}},
          {"Action": "CREATE", "ResourceRecordSet": {"Name": "d.example.org.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}},
          {"Action": "CREATE", "ResourceRecordSet": {"Name": "d.example.org.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}},
          {"Action": "DELETE", "ResourceRecordSet": {"Name": "d.example.org.", "Type": "A", "TTL": 61, "ResourceRecords": [{"Value": "192.0.2.1"}]}},
          {"Action": "REPLACE", "ResourceRecordSet": {"Name": "e.example.org.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}},
          {"Action": "CREATE", "ResourceRecordSet": {"Name": "f.example.org.", "Type": "A", "SetIdentifier": "z", "GeoProximityLocation": {"AWSRegion": "mars-1"}, "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}}
        ]}"#;
        let problems = apply_to(Vec::new(), &batch(bad), &HashMap::new(), None).unwrap_err();
        let all = problems.join("\n");
        for expected in [
            "change #1",
            "weight 256 is outside 0..255",
            "change #2",
            "bias 100 is outside -99..99",
            "change #3",
            "TTL -1 is out of range",
            "change #5",
            "already exists",
            "change #6",
            "must match the existing record set exactly",
            "change #7",
            "unknown action \"REPLACE\"",
            "change #8",
            "region \"mars-1\" has no coordinates",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert_eq!(problems.len(), 7, "{all}");
    }

    #[test]
    fn named_regions_resolve_through_the_configured_coordinates() {
        let json = r#"{"Changes": [{"Action": "CREATE", "ResourceRecordSet": {"Name": "g.example.org.", "Type": "A", "SetIdentifier": "r", "GeoProximityLocation": {"AWSRegion": "us-west-2", "Bias": -20}, "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}}]}"#;
        let regions = HashMap::from([("us-west-2".to_string(), [45.52, -122.68])]);
        let sets = apply_to(Vec::new(), &batch(json), &regions, None).unwrap();
        assert_eq!(
            check(&sets[0], &regions).unwrap().policy,
            Some(Policy::Geoproximity {
                lat: 45.52,
                lon: -122.68,
                bias: -20
            })
        );
    }

    #[test]
    fn unknown_fields_and_malformed_json_are_rejected() {
        let dir = std::env::temp_dir().join(format!("dns-r53-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("b.json");
        std::fs::write(&path, r#"{"Changes": [], "Bogus": 1}"#).unwrap();
        let err = load(&path, &HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("b.json") && err.contains("Bogus"), "{err}");
        std::fs::write(&path, "{").unwrap();
        assert!(
            load(&path, &HashMap::new())
                .unwrap_err()
                .to_string()
                .contains("malformed JSON")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// How a zone's SOA serial follows changes made through the API (`server.serial_policy`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SerialPolicy {
    /// As Route 53: the serial changes only when a batch changes the SOA.
    #[default]
    Keep,
    /// Every batch that leaves the SOA alone adds one to its serial (RFC 1982 arithmetic),
    /// so that secondaries see the change.
    Increment,
    /// As `increment`, but the serial becomes the current Unix time when that is larger.
    Unixtime,
}

impl ChangeBatch {
    /// This batch with an UPSERT of the apex SOA (`soa`, as stored) whose serial follows
    /// `policy`, when the batch does not change the SOA itself; `None` when nothing is added.
    /// `now` is the Unix time for [`SerialPolicy::Unixtime`].
    pub fn with_serial_bump(
        &self,
        soa: &ResourceRecordSet,
        policy: SerialPolicy,
        now: u32,
    ) -> Option<ChangeBatch> {
        if policy == SerialPolicy::Keep
            || self
                .changes
                .iter()
                .any(|c| c.resource_record_set.rtype.eq_ignore_ascii_case("SOA"))
        {
            return None;
        }
        let value = &soa.resource_records.as_ref()?.first()?.value;
        let mut fields: Vec<String> = value.split_whitespace().map(String::from).collect();
        let serial: u32 = fields.get(2)?.parse().ok()?;
        let mut next = serial.wrapping_add(1);
        if policy == SerialPolicy::Unixtime && now.wrapping_sub(serial) as i32 > 0 {
            next = now;
        }
        fields[2] = next.to_string();
        let mut set = soa.clone();
        set.resource_records = Some(vec![ValueJson {
            value: fields.join(" "),
        }]);
        let mut batch = self.clone();
        batch.changes.push(Change {
            action: "UPSERT".into(),
            resource_record_set: set,
        });
        Some(batch)
    }
}

#[cfg(test)]
mod serial_tests {
    use super::*;

    fn set(name: &str, rtype: &str, value: &str) -> ResourceRecordSet {
        ResourceRecordSet::records(
            name.into(),
            rtype.into(),
            60,
            vec![ValueJson {
                value: value.into(),
            }],
        )
    }

    fn soa(serial: &str) -> ResourceRecordSet {
        let value =
            format!("ns1.example.com. hostmaster.example.com. {serial} 7200 900 1209600 86400");
        set("example.com.", "SOA", &value)
    }

    fn batch(rtype: &str) -> ChangeBatch {
        ChangeBatch {
            comment: None,
            changes: vec![Change {
                action: "UPSERT".into(),
                resource_record_set: set("www.example.com.", rtype, "192.0.2.1"),
            }],
        }
    }

    fn bumped_serial(b: &ChangeBatch) -> String {
        let set = &b.changes.last().unwrap().resource_record_set;
        let value = &set.resource_records.as_ref().unwrap()[0].value;
        value.split_whitespace().nth(2).unwrap().to_string()
    }

    #[test]
    fn serials_follow_the_policy() {
        let b = batch("A");
        assert!(
            b.with_serial_bump(&soa("1"), SerialPolicy::Keep, 0)
                .is_none()
        );
        let inc = b
            .with_serial_bump(&soa("41"), SerialPolicy::Increment, 0)
            .unwrap();
        assert_eq!(inc.changes.len(), 2);
        assert_eq!(bumped_serial(&inc), "42");
        // RFC 1982: past 2^32 - 1 it wraps.
        let wrap = b.with_serial_bump(&soa("4294967295"), SerialPolicy::Increment, 0);
        assert_eq!(bumped_serial(&wrap.unwrap()), "0");
        let unix = b.with_serial_bump(&soa("5"), SerialPolicy::Unixtime, 1_800_000_000);
        assert_eq!(bumped_serial(&unix.unwrap()), "1800000000");
        let ahead = b.with_serial_bump(&soa("1800000005"), SerialPolicy::Unixtime, 1_800_000_000);
        assert_eq!(bumped_serial(&ahead.unwrap()), "1800000006");
        // A batch that sets the SOA itself is left as it is.
        assert!(
            batch("SOA")
                .with_serial_bump(&soa("1"), SerialPolicy::Increment, 0)
                .is_none()
        );
    }
}
