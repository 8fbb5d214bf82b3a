//! Route 53's request and response shapes as XML (serde + quick-xml), named and nested as
//! botocore's model (`botocore/data/route53/2013-04-01/service-2.json`) has them: element
//! names are case-sensitive for boto3, list wrappers are always written (an absent
//! `HostedZones` or `IsTruncated` is a `KeyError` in octoDNS), absent optional members are
//! left out. The server reads requests and writes responses with these types, and the CLI
//! does the opposite with the same types.
//!
//! Requests are read strictly: an element the model does not have (or that this server does
//! not implement) is an error, never silently dropped.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::zone::records::{AliasJson, CidrJson, GeoLocationJson, GeoProximityJson, ValueJson};

/// The namespace of every request and response root.
pub const NAMESPACE: &str = "https://route53.amazonaws.com/doc/2013-04-01/";

/// The `xmlns` attribute of a root element: written as [`NAMESPACE`], any value read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Xmlns;

impl Serialize for Xmlns {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(NAMESPACE)
    }
}

impl<'de> Deserialize<'de> for Xmlns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|_| Xmlns)
    }
}

/// A list member: a wrapper element holding one element per item (`<NameServers>
/// <NameServer>..</NameServer></NameServers>`).
macro_rules! list {
    ($(#[$meta:meta])* $name:ident, $item:literal, $ty:ty) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            #[serde(rename = $item, default)]
            pub items: Vec<$ty>,
        }

        impl From<Vec<$ty>> for $name {
            fn from(items: Vec<$ty>) -> Self {
                $name { items }
            }
        }
    };
}

/// Parses a request body, strictly.
pub fn from_xml<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
    quick_xml::de::from_str(text).map_err(|e| e.to_string())
}

/// A response or request body: the XML declaration, then `value` as the root element.
pub fn to_xml<T: Serialize>(value: &T) -> String {
    let mut out = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    quick_xml::se::to_writer(&mut out, value).expect("the shapes serialize");
    out
}

/// As [`to_xml`], with the root element named `root` (one shape, several calls' answers).
pub fn to_xml_as<T: Serialize>(root: &str, value: &T) -> String {
    let mut out = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    quick_xml::se::to_writer_with_root(&mut out, root, value).expect("the shapes serialize");
    out
}

/// Every list member (wrapper element -> item element): plain lists in JSON (boto3's and
/// aws-cli's shape, the stored health-check configs), wrappers in XML.
pub const LISTS: [(&str, &str); 22] = [
    ("CidrCollections", "member"),
    ("CidrBlocks", "member"),
    ("CidrLocations", "member"),
    ("CidrList", "Cidr"),
    ("Tags", "Tag"),
    ("AddTags", "Tag"),
    ("RemoveTagKeys", "Key"),
    ("ResourceIds", "ResourceId"),
    ("ResourceTagSets", "ResourceTagSet"),
    ("HostedZones", "HostedZone"),
    ("ResourceRecordSets", "ResourceRecordSet"),
    ("ResourceRecords", "ResourceRecord"),
    // (ChangeCidrCollection's `Changes` hold `member`s: not read or written as JSON here.)
    ("Changes", "Change"),
    ("HealthChecks", "HealthCheck"),
    ("NameServers", "NameServer"),
    ("HealthCheckObservations", "HealthCheckObservation"),
    ("ChildHealthChecks", "ChildHealthCheck"),
    ("Regions", "Region"),
    ("RecordData", "RecordDataEntry"),
    ("Messages", "Message"),
    ("ResetElements", "ResettableElementName"),
    ("KeySigningKeys", "member"),
];

/// The item element of list member `list`.
pub fn item_of(list: &str) -> Option<&'static str> {
    LISTS.iter().find(|(l, _)| *l == list).map(|(_, i)| *i)
}

/// A shape from JSON in boto3's and aws-cli's form (lists plain), typed and strict.
pub fn from_json<T: serde::de::DeserializeOwned>(
    mut value: serde_json::Value,
) -> Result<T, String> {
    fn wrap(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, member) in map.iter_mut() {
                    wrap(member);
                    if let (Some(item), serde_json::Value::Array(_)) = (item_of(key), &*member) {
                        *member = serde_json::json!({ item: member.take() });
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(wrap),
            _ => {}
        }
    }
    wrap(&mut value);
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// A shape as JSON in boto3's and aws-cli's form: lists plain, no `xmlns`.
pub fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    fn unwrap(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.remove("@xmlns");
                for (key, member) in map.iter_mut() {
                    if let (Some(item), serde_json::Value::Object(wrapper)) =
                        (item_of(key), &mut *member)
                    {
                        let items = wrapper
                            .remove(item)
                            .unwrap_or(serde_json::Value::Array(Vec::new()));
                        *member = items;
                    }
                    unwrap(member);
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(unwrap),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(value).expect("the shapes serialize");
    unwrap(&mut value);
    value
}

// ---- hosted zones ----

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct HostedZone {
    /// `/hostedzone/Z…`.
    pub id: String,
    pub name: String,
    pub caller_reference: String,
    pub config: HostedZoneConfig,
    pub resource_record_set_count: u64,
    /// This server's own: where a zone imported from the config comes from (such a zone is
    /// changed by editing its source; API changes to it last until the source changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct HostedZoneConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_zone: Option<bool>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ChangeInfo {
    /// `/change/C…`.
    pub id: String,
    /// PENDING | INSYNC.
    pub status: String,
    /// ISO 8601, UTC, milliseconds: `2026-01-02T03:04:05.678Z`.
    pub submitted_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

list!(NameServers, "NameServer", String);

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DelegationSet {
    pub name_servers: NameServers,
}

/// A VPC (private zones); read only to refuse it clearly.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Vpc {
    #[serde(rename = "VPCRegion", default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(rename = "VPCId", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CreateHostedZoneRequest {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub name: String,
    #[serde(rename = "VPC", default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<Vpc>,
    pub caller_reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_zone_config: Option<HostedZoneConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation_set_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CreateHostedZoneResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub hosted_zone: HostedZone,
    pub change_info: ChangeInfo,
    pub delegation_set: DelegationSet,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct GetHostedZoneResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub hosted_zone: HostedZone,
    pub delegation_set: DelegationSet,
}

list!(HostedZones, "HostedZone", HostedZone);

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ListHostedZonesResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub hosted_zones: HostedZones,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
    pub is_truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub max_items: u32,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ListHostedZonesByNameResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub hosted_zones: HostedZones,
    #[serde(rename = "DNSName", default, skip_serializing_if = "Option::is_none")]
    pub dns_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_zone_id: Option<String>,
    pub is_truncated: bool,
    #[serde(
        rename = "NextDNSName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub next_dns_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hosted_zone_id: Option<String>,
    pub max_items: u32,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DeleteHostedZoneResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub change_info: ChangeInfo,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct UpdateHostedZoneCommentRequest {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct UpdateHostedZoneCommentResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub hosted_zone: HostedZone,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct GetHostedZoneCountResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub hosted_zone_count: u64,
}

// ---- record sets and changes ----

list!(ResourceRecords, "ResourceRecord", ValueJson);

/// A record set on the wire; [`crate::zone::records::ResourceRecordSet`] is the same with its
/// values as a plain list.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ResourceRecordSet {
    pub name: String,
    #[serde(rename = "Type")]
    pub rtype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_location: Option<GeoLocationJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_value_answer: Option<bool>,
    #[serde(rename = "TTL", default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_records: Option<ResourceRecords>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_target: Option<AliasJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr_routing_config: Option<CidrJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_proximity_location: Option<GeoProximityJson>,
}

impl From<crate::zone::records::ResourceRecordSet> for ResourceRecordSet {
    fn from(s: crate::zone::records::ResourceRecordSet) -> Self {
        ResourceRecordSet {
            name: s.name,
            rtype: s.rtype,
            set_identifier: s.set_identifier,
            weight: s.weight,
            region: s.region,
            geo_location: s.geo_location,
            failover: s.failover,
            multi_value_answer: s.multi_value_answer,
            ttl: s.ttl,
            resource_records: s.resource_records.map(ResourceRecords::from),
            alias_target: s.alias_target,
            health_check_id: s.health_check_id,
            cidr_routing_config: s.cidr_routing_config,
            geo_proximity_location: s.geo_proximity_location,
        }
    }
}

impl From<ResourceRecordSet> for crate::zone::records::ResourceRecordSet {
    fn from(s: ResourceRecordSet) -> Self {
        crate::zone::records::ResourceRecordSet {
            name: s.name,
            rtype: s.rtype,
            set_identifier: s.set_identifier,
            weight: s.weight,
            region: s.region,
            geo_location: s.geo_location,
            geo_proximity_location: s.geo_proximity_location,
            failover: s.failover,
            multi_value_answer: s.multi_value_answer,
            cidr_routing_config: s.cidr_routing_config,
            ttl: s.ttl,
            resource_records: s.resource_records.map(|r| r.items),
            alias_target: s.alias_target,
            health_check_id: s.health_check_id,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Change {
    /// CREATE | DELETE | UPSERT.
    pub action: String,
    pub resource_record_set: ResourceRecordSet,
}

list!(Changes, "Change", Change);

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ChangeBatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub changes: Changes,
}

impl From<ChangeBatch> for crate::zone::records::ChangeBatch {
    fn from(b: ChangeBatch) -> Self {
        crate::zone::records::ChangeBatch {
            comment: b.comment,
            changes: b
                .changes
                .items
                .into_iter()
                .map(|c| crate::zone::records::Change {
                    action: c.action,
                    resource_record_set: c.resource_record_set.into(),
                })
                .collect(),
        }
    }
}

impl From<crate::zone::records::ChangeBatch> for ChangeBatch {
    fn from(b: crate::zone::records::ChangeBatch) -> Self {
        ChangeBatch {
            comment: b.comment,
            changes: b
                .changes
                .into_iter()
                .map(|c| Change {
                    action: c.action,
                    resource_record_set: c.resource_record_set.into(),
                })
                .collect::<Vec<_>>()
                .into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ChangeResourceRecordSetsRequest {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub change_batch: ChangeBatch,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ChangeResourceRecordSetsResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub change_info: ChangeInfo,
}

list!(ResourceRecordSets, "ResourceRecordSet", ResourceRecordSet);

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ListResourceRecordSetsResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub resource_record_sets: ResourceRecordSets,
    pub is_truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_record_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_record_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_record_identifier: Option<String>,
    pub max_items: u32,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct GetChangeResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub change_info: ChangeInfo,
}

// ---- health checks ----

list!(ChildHealthChecks, "ChildHealthCheck", String);
list!(HealthCheckRegions, "Region", String);
list!(ResettableElementNames, "ResettableElementName", String);

/// A CloudWatch alarm (Route 53's CLOUDWATCH_METRIC checks); read only to refuse it with a
/// pointer to this server's `Metric`.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct AlarmIdentifier {
    pub region: String,
    pub name: String,
}

/// A METRIC check's source (this server's own member: a Prometheus-compatible API instead of
/// a CloudWatch alarm).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Metric {
    pub prometheus_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison_operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
}

/// `HealthCheckConfig`, and the fields UpdateHealthCheck may carry. `Metric` and the three
/// `*TimeoutMs` members are this server's own.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct HealthCheckConfig {
    #[serde(rename = "IPAddress", default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(rename = "Type", default, skip_serializing_if = "Option::is_none")]
    pub check_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fully_qualified_domain_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_interval: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure_latency: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inverted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_threshold: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_health_checks: Option<ChildHealthChecks>,
    #[serde(rename = "EnableSNI", default, skip_serializing_if = "Option::is_none")]
    pub enable_sni: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<HealthCheckRegions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_identifier: Option<AlarmIdentifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insufficient_data_health_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<Metric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_timeout_ms: Option<u64>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct HealthCheck {
    pub id: String,
    pub caller_reference: String,
    pub health_check_config: HealthCheckConfig,
    pub health_check_version: u64,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CreateHealthCheckRequest {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub caller_reference: String,
    pub health_check_config: HealthCheckConfig,
}

/// The response of Create/Get/UpdateHealthCheck (`root` names which).
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct HealthCheckResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub health_check: HealthCheck,
}

/// UpdateHealthCheck: the version it expects, the fields to set (Route 53's updatable
/// members, plus this server's own) and the fields to reset to their defaults.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct UpdateHealthCheckRequest {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_version: Option<u64>,
    #[serde(rename = "IPAddress", default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fully_qualified_domain_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inverted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_threshold: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_health_checks: Option<ChildHealthChecks>,
    #[serde(rename = "EnableSNI", default, skip_serializing_if = "Option::is_none")]
    pub enable_sni: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<HealthCheckRegions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_identifier: Option<AlarmIdentifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insufficient_data_health_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_elements: Option<ResettableElementNames>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_interval: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<Metric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_timeout_ms: Option<u64>,
}

impl UpdateHealthCheckRequest {
    /// The fields the update sets, as a partial config.
    pub fn changes(&self) -> HealthCheckConfig {
        HealthCheckConfig {
            ip_address: self.ip_address.clone(),
            port: self.port,
            check_type: None,
            resource_path: self.resource_path.clone(),
            fully_qualified_domain_name: self.fully_qualified_domain_name.clone(),
            search_string: self.search_string.clone(),
            request_interval: self.request_interval,
            failure_threshold: self.failure_threshold,
            measure_latency: None,
            inverted: self.inverted,
            disabled: self.disabled,
            health_threshold: self.health_threshold,
            child_health_checks: self.child_health_checks.clone(),
            enable_sni: self.enable_sni,
            regions: self.regions.clone(),
            alarm_identifier: self.alarm_identifier.clone(),
            insufficient_data_health_status: self.insufficient_data_health_status.clone(),
            metric: self.metric.clone(),
            connect_timeout_ms: self.connect_timeout_ms,
            status_timeout_ms: self.status_timeout_ms,
            body_timeout_ms: self.body_timeout_ms,
        }
    }
}

list!(HealthChecks, "HealthCheck", HealthCheck);

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ListHealthChecksResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub health_checks: HealthChecks,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
    pub is_truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub max_items: u32,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DeleteHealthCheckResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct GetHealthCheckCountResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub health_check_count: u64,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct StatusReport {
    /// `Success: HTTP Status Code 200, OK` / `Failure: ...`.
    pub status: String,
    pub checked_time: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct HealthCheckObservation {
    /// The checker's region: this node's (`local` for a single node).
    pub region: String,
    #[serde(rename = "IPAddress", default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    pub status_report: StatusReport,
}

list!(
    HealthCheckObservations,
    "HealthCheckObservation",
    HealthCheckObservation
);

/// GetHealthCheckStatus and GetHealthCheckLastFailureReason.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct HealthCheckObservationsResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub health_check_observations: HealthCheckObservations,
    /// This server's own: the check's state as routing uses it (Healthy | Unhealthy), after
    /// the failure threshold, inversion and disabling (Route 53 shows it only in CloudWatch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

// ---- tags ----

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

list!(Tags, "Tag", Tag);
list!(TagKeys, "Key", String);
list!(ResourceIds, "ResourceId", String);

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ChangeTagsForResourceRequest {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_tags: Option<Tags>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_tag_keys: Option<TagKeys>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ChangeTagsForResourceResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ResourceTagSet {
    /// hostedzone | healthcheck.
    pub resource_type: String,
    pub resource_id: String,
    pub tags: Tags,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ListTagsForResourceResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub resource_tag_set: ResourceTagSet,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ListTagsForResourcesRequest {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub resource_ids: ResourceIds,
}

list!(ResourceTagSets, "ResourceTagSet", ResourceTagSet);

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ListTagsForResourcesResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub resource_tag_sets: ResourceTagSets,
}

// ---- CIDR collections (their lists' items are `member` elements) ----

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CreateCidrCollectionRequest {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub name: String,
    pub caller_reference: String,
}

/// A collection, as CreateCidrCollection and ListCidrCollections show it.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CidrCollection {
    pub arn: String,
    pub id: String,
    pub name: String,
    pub version: u64,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CreateCidrCollectionResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub collection: CidrCollection,
}

list!(CidrCollections, "member", CidrCollection);

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ListCidrCollectionsResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    pub cidr_collections: CidrCollections,
}

list!(CidrList, "Cidr", String);

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CidrCollectionChange {
    pub location_name: String,
    /// PUT | DELETE_IF_EXISTS.
    pub action: String,
    pub cidr_list: CidrList,
}

list!(CidrCollectionChanges, "member", CidrCollectionChange);

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ChangeCidrCollectionRequest {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_version: Option<u64>,
    pub changes: CidrCollectionChanges,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ChangeCidrCollectionResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    /// A change id, for GetChange.
    pub id: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CidrBlockSummary {
    pub cidr_block: String,
    pub location_name: String,
}

list!(CidrBlocks, "member", CidrBlockSummary);

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ListCidrBlocksResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    pub cidr_blocks: CidrBlocks,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct LocationSummary {
    pub location_name: String,
}

list!(CidrLocations, "member", LocationSummary);

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ListCidrLocationsResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    pub cidr_locations: CidrLocations,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DeleteCidrCollectionResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
}

// ---- TestDNSAnswer, DNSSEC ----

list!(RecordData, "RecordDataEntry", String);

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct TestDnsAnswerResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub nameserver: String,
    pub record_name: String,
    pub record_type: String,
    pub record_data: RecordData,
    pub response_code: String,
    pub protocol: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DnssecStatus {
    /// SIGNING | NOT_SIGNING | DELETING | ACTION_NEEDED | INTERNAL_FAILURE.
    pub serve_signature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
}

/// A key-signing key, as CreateKeySigningKey and GetDNSSEC show it.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct KeySigningKey {
    pub name: String,
    pub kms_arn: String,
    /// 257: a secure entry point.
    pub flag: u16,
    pub signing_algorithm_mnemonic: String,
    pub signing_algorithm_type: u8,
    pub digest_algorithm_mnemonic: String,
    pub digest_algorithm_type: u8,
    pub key_tag: u16,
    pub digest_value: String,
    pub public_key: String,
    #[serde(rename = "DSRecord")]
    pub ds_record: String,
    #[serde(rename = "DNSKEYRecord")]
    pub dnskey_record: String,
    /// ACTIVE | INACTIVE.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    pub created_date: String,
    pub last_modified_date: String,
}

list!(KeySigningKeys, "member", KeySigningKey);

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(
    deny_unknown_fields,
    rename = "GetDNSSECResponse",
    rename_all = "PascalCase"
)]
pub struct GetDnssecResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub status: DnssecStatus,
    pub key_signing_keys: KeySigningKeys,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CreateKeySigningKeyRequest {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub caller_reference: String,
    pub hosted_zone_id: String,
    pub key_management_service_arn: String,
    pub name: String,
    pub status: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CreateKeySigningKeyResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub change_info: ChangeInfo,
    pub key_signing_key: KeySigningKey,
}

/// The answer of Activate/Deactivate/DeleteKeySigningKey and Enable/DisableHostedZoneDNSSEC
/// (each under its own root element name; clients read the ChangeInfo).
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DnssecChangeResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub change_info: ChangeInfo,
}

// ---- errors ----

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ErrorDetail {
    /// `Sender` (the request was wrong) or `Receiver` (this server failed).
    #[serde(rename = "Type")]
    pub kind: String,
    pub code: String,
    pub message: String,
    /// Each problem of an invalid change batch (Route 53's InvalidChangeBatch `Messages`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Messages>,
}

list!(Messages, "Message", String);

/// Route 53's error envelope.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ErrorResponse {
    #[serde(rename = "@xmlns", default)]
    pub xmlns: Xmlns,
    pub error: ErrorDetail,
    pub request_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_request_reads_as_botocore_writes_it() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Comment>x</Comment><Changes><Change><Action>UPSERT</Action><ResourceRecordSet><Name>www.example.com</Name><Type>A</Type><SetIdentifier>eu</SetIdentifier><Weight>0</Weight><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>192.0.2.1</Value></ResourceRecord><ResourceRecord><Value>192.0.2.2</Value></ResourceRecord></ResourceRecords><HealthCheckId>7c1e</HealthCheckId></ResourceRecordSet></Change><Change><Action>CREATE</Action><ResourceRecordSet><Name>example.com.</Name><Type>A</Type><AliasTarget><HostedZoneId>/hostedzone/Z0ABC</HostedZoneId><DNSName>www.example.com.</DNSName><EvaluateTargetHealth>true</EvaluateTargetHealth></AliasTarget></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"#;
        let req: ChangeResourceRecordSetsRequest = from_xml(body.as_bytes()).unwrap();
        let batch: crate::zone::records::ChangeBatch = req.change_batch.clone().into();
        assert_eq!(batch.comment.as_deref(), Some("x"));
        assert_eq!(batch.changes.len(), 2);
        let first = &batch.changes[0].resource_record_set;
        assert_eq!(first.weight, Some(0));
        assert_eq!(first.resource_records.as_ref().unwrap().len(), 2);
        let alias = batch.changes[1]
            .resource_record_set
            .alias_target
            .as_ref()
            .unwrap();
        assert!(alias.evaluate_target_health);
        // And back: what the CLI sends reads as the same request.
        let again: ChangeResourceRecordSetsRequest = from_xml(to_xml(&req).as_bytes()).unwrap();
        assert_eq!(again, req);
    }

    #[test]
    fn lists_are_written_even_when_empty_and_options_left_out() {
        let page = ListResourceRecordSetsResponse {
            xmlns: Xmlns,
            resource_record_sets: Vec::new().into(),
            is_truncated: false,
            next_record_name: None,
            next_record_type: None,
            next_record_identifier: None,
            max_items: 100,
        };
        let xml = to_xml(&page);
        assert!(
            xml.contains(r#"<ListResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">"#),
            "{xml}"
        );
        assert!(
            xml.contains("<ResourceRecordSets/>")
                || xml.contains("<ResourceRecordSets></ResourceRecordSets>"),
            "{xml}"
        );
        assert!(
            xml.contains("<IsTruncated>false</IsTruncated><MaxItems>100</MaxItems>"),
            "{xml}"
        );
        assert!(!xml.contains("NextRecordName"), "{xml}");
    }

    #[test]
    fn unknown_elements_and_malformed_bodies_are_errors() {
        let unknown = r#"<CreateHostedZoneRequest><Name>a.</Name><CallerReference>r</CallerReference><Surprise/></CreateHostedZoneRequest>"#;
        assert!(from_xml::<CreateHostedZoneRequest>(unknown.as_bytes()).is_err());
        let broken = r#"<CreateHostedZoneRequest><Name>a.</Name>"#;
        assert!(from_xml::<CreateHostedZoneRequest>(broken.as_bytes()).is_err());
        let missing = r#"<CreateHostedZoneRequest><Name>a.</Name></CreateHostedZoneRequest>"#;
        assert!(from_xml::<CreateHostedZoneRequest>(missing.as_bytes()).is_err());
        let ok = r#"<CreateHostedZoneRequest xmlns="x"><Name>a.</Name><CallerReference>r</CallerReference><HostedZoneConfig><Comment>c</Comment></HostedZoneConfig></CreateHostedZoneRequest>"#;
        let req: CreateHostedZoneRequest = from_xml(ok.as_bytes()).unwrap();
        assert_eq!(
            req.hosted_zone_config.unwrap().comment.as_deref(),
            Some("c")
        );
    }

    #[test]
    fn update_health_check_reads_fields_beside_the_version() {
        let body = r#"<UpdateHealthCheckRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><HealthCheckVersion>1</HealthCheckVersion><Port>8080</Port><Regions><Region>us-east-1</Region><Region>eu-west-1</Region></Regions><ResetElements><ResettableElementName>ResourcePath</ResettableElementName></ResetElements></UpdateHealthCheckRequest>"#;
        let req: UpdateHealthCheckRequest = from_xml(body.as_bytes()).unwrap();
        assert_eq!(req.health_check_version, Some(1));
        assert_eq!(req.changes().port, Some(8080));
        assert_eq!(req.regions.unwrap().items.len(), 2);
        assert_eq!(req.reset_elements.unwrap().items, ["ResourcePath"]);
    }
}
