//! What the API shows: hosted zones, record-set pages, TestDNSAnswer results.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::store::{HostedZone, State};
use crate::zone::records::ResourceRecordSet;

/// A hosted zone as the API shows it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ZoneView {
    pub id: String,
    pub name: String,
    pub caller_reference: String,
    pub config: ZoneConfigView,
    pub resource_record_set_count: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
    /// The name servers the zone delegates to: its apex NS record set's values.
    #[serde(default)]
    pub name_servers: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ZoneConfigView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub private_zone: bool,
}

/// One page of ListResourceRecordSets.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordSetPage {
    pub resource_record_sets: Vec<ResourceRecordSet>,
    pub is_truncated: bool,
    pub max_items: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_record_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_record_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_record_identifier: Option<String>,
}

/// Where a ListResourceRecordSets page starts.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PageStart {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub rtype: Option<String>,
    pub identifier: Option<String>,
    pub max_items: Option<usize>,
}

/// TestDNSAnswer's result.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TestAnswer {
    pub nameserver: String,
    pub record_name: String,
    pub record_type: String,
    pub record_data: Vec<String>,
    pub response_code: String,
    pub protocol: String,
}

/// A hosted zone as the API shows it, with its record-set count.
pub(super) fn view_of(state: &State, z: &HostedZone) -> ZoneView {
    ZoneView {
        id: z.id.clone(),
        name: z.name.clone(),
        caller_reference: z.caller_reference.clone(),
        config: ZoneConfigView {
            comment: z.comment.clone(),
            private_zone: false,
        },
        resource_record_set_count: state.rrsets.get(&z.id).map_or(0, BTreeMap::len),
        imported_from: z.imported_from.clone(),
        name_servers: state
            .set(&z.id, &(z.name.clone(), "NS".into(), None))
            .and_then(|ns| ns.resource_records.as_ref())
            .map(|values| values.iter().map(|v| v.value.clone()).collect())
            .unwrap_or_default(),
    }
}

/// Route 53's spelling of an RCODE (NOERROR, NXDOMAIN, ...).
pub(super) fn rcode_name(rcode: hickory_proto::op::ResponseCode) -> String {
    use hickory_proto::op::ResponseCode as R;
    match rcode {
        R::NoError => "NOERROR".into(),
        R::FormErr => "FORMERR".into(),
        R::ServFail => "SERVFAIL".into(),
        R::NXDomain => "NXDOMAIN".into(),
        R::NotImp => "NOTIMP".into(),
        R::Refused => "REFUSED".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}
