//! The HTTP control API (axum): Route 53's REST-XML protocol under `/2013-04-01/`, as
//! aws-cli, boto3, octoDNS and Terraform speak it ([`crate::route53`] has the shapes), plus
//! `/metrics`. What is implemented and where it deviates: `docs/route53-api.md`.
//!
//! Every request passes [`crate::http`]'s front door first (browser guard, SigV4 when access
//! keys are configured, timeouts, size and connection limits). Every request body is parsed
//! strictly (unknown elements are errors) before anything is touched; every refusal is
//! Route 53's `ErrorResponse` with its status: 400 (bad input), 403 (signature), 404 (no such
//! thing), 409 (already exists, version mismatch) or 500 (the store failed).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;

use crate::control::dnssec::KskView;
use crate::control::store::{ChangeInfo, ChangeStatus, StoredCheck};
use crate::control::{Control, ControlError, Kind, PageStart, ZoneView};
use crate::metrics::MetricsSource;
use crate::route53::shapes::{self as wire, Xmlns};
use crate::route53::{api_name, bare_id, plain_name};

/// What the API serves from.
pub struct ApiState {
    pub control: Arc<Control>,
    pub metrics: Arc<MetricsSource>,
    /// The front door: names, access keys, limits.
    pub guard: Arc<crate::http::Guard>,
}

type Shared = State<Arc<ApiState>>;

/// An API error response, in Route 53's terms.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Route 53's error code (`InvalidChangeBatch`, `NoSuchHostedZone`, ...).
    pub code: &'static str,
    pub message: String,
    /// Each problem of an invalid change batch.
    pub problems: Vec<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        crate::http::error(self.status, self.code, &self.message, &self.problems)
    }
}

use crate::control::store::StoreError;

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        let status = match &e {
            ControlError::InvalidInput { .. }
            | ControlError::InvalidChangeBatch { .. }
            | ControlError::Refused { .. } => StatusCode::BAD_REQUEST,
            ControlError::NotFound { .. } => StatusCode::NOT_FOUND,
            ControlError::Conflict { .. } => StatusCode::CONFLICT,
            ControlError::Store(
                StoreError::HandedOver | StoreError::Behind | StoreError::TooLarge { .. },
            ) => StatusCode::BAD_REQUEST,
            // botocore retries it, as Route 53's own.
            ControlError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ControlError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let problems = match &e {
            ControlError::InvalidChangeBatch { problems } => problems.clone(),
            _ => Vec::new(),
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("API: {e}");
        }
        ApiError {
            status,
            code: e.code(),
            message: e.to_string(),
            problems,
        }
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "InvalidInput",
        message: message.into(),
        problems: Vec::new(),
    }
}

/// Parses an XML body strictly.
fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    wire::from_xml(bytes).map_err(|e| bad(format!("malformed request body: {e}")))
}

/// A 200 (or `status`) response with an XML body.
fn xml<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml")],
        wire::to_xml(value),
    )
        .into_response()
}

fn ok<T: serde::Serialize>(value: &T) -> Result<Response, ApiError> {
    Ok(xml(StatusCode::OK, value))
}

/// A 201 with an XML body and `Location` (what Route 53's Create* calls answer).
fn created<T: serde::Serialize>(value: &T, location: String) -> Result<Response, ApiError> {
    let mut response = xml(StatusCode::CREATED, value);
    response.headers_mut().insert(
        header::LOCATION,
        location.parse().expect("an id is a valid header"),
    );
    Ok(response)
}

/// Runs a control call (it may wait for the disk) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ControlError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalError",
            message: e.to_string(),
            problems: Vec::new(),
        })?
        .map_err(ApiError::from)
}

/// A call of the control plane: it may wait for the disk or a reload's import, so off the
/// async workers.
async fn call<T: Send + 'static>(
    s: &ApiState,
    f: impl FnOnce(&Control) -> Result<T, ControlError> + Send + 'static,
) -> Result<T, ApiError> {
    let control = s.control.clone();
    blocking(move || {
        // On a cluster: what the caller did through another node first.
        control.catch_up();
        f(&control)
    })
    .await
}

// ---- conversions to the wire ----

fn zone_shape(z: &ZoneView) -> wire::HostedZone {
    wire::HostedZone {
        id: format!("/hostedzone/{}", z.id),
        name: api_name(&z.name),
        caller_reference: z.caller_reference.clone(),
        config: wire::HostedZoneConfig {
            comment: z.config.comment.clone(),
            private_zone: Some(z.config.private_zone),
        },
        resource_record_set_count: z.resource_record_set_count as u64,
        imported_from: z.imported_from.clone(),
    }
}

fn delegation(z: &ZoneView) -> wire::DelegationSet {
    wire::DelegationSet {
        name_servers: z
            .name_servers
            .iter()
            .map(|n| n.trim_end_matches('.').to_string())
            .collect::<Vec<_>>()
            .into(),
    }
}

fn change_shape(c: &ChangeInfo) -> wire::ChangeInfo {
    wire::ChangeInfo {
        id: format!("/change/{}", c.id),
        status: match c.status {
            ChangeStatus::Pending => "PENDING",
            ChangeStatus::Insync => "INSYNC",
        }
        .into(),
        submitted_at: c.submitted_at.clone(),
        comment: c.comment.clone(),
    }
}

fn set_shape(mut set: crate::zone::records::ResourceRecordSet) -> wire::ResourceRecordSet {
    set.name = api_name(&set.name);
    if let Some(alias) = &mut set.alias_target {
        alias.dns_name = api_name(&alias.dns_name);
    }
    set.into()
}

/// A change batch as the control plane takes it: names unescaped, zone ids bare.
fn batch_from_wire(batch: wire::ChangeBatch) -> crate::zone::records::ChangeBatch {
    let mut batch: crate::zone::records::ChangeBatch = batch.into();
    for change in &mut batch.changes {
        let set = &mut change.resource_record_set;
        set.name = plain_name(&set.name);
        if let Some(alias) = &mut set.alias_target {
            alias.dns_name = plain_name(&alias.dns_name);
            if let Some(zone) = &mut alias.hosted_zone_id {
                *zone = bare_id(zone).to_string();
            }
        }
    }
    batch
}

/// A health check's config in the stored form (Route 53's JSON names), from the wire.
fn check_config_json(config: &wire::HealthCheckConfig) -> Result<Value, ApiError> {
    if config.alarm_identifier.is_some() {
        return Err(bad(
            "AlarmIdentifier (CloudWatch alarms) is not supported: a METRIC check names a Prometheus-compatible source in Metric",
        ));
    }
    Ok(wire::to_json(config))
}

/// A stored health check on the wire, every member Route 53 returns filled in with its
/// default (octoDNS compares them and fails on an absent one).
fn check_shape(check: &StoredCheck) -> wire::HealthCheck {
    use crate::health::spec::HealthCheckConfig as Stored;
    let stored: Stored = serde_json::from_value(check.health_check_config.clone())
        .unwrap_or_else(|_| Stored::default());
    let check_type = stored.check_type.to_ascii_uppercase();
    let port = stored.port.or(match check_type.as_str() {
        "HTTP" | "HTTP_STR_MATCH" => Some(80),
        "HTTPS" | "HTTPS_STR_MATCH" => Some(443),
        _ => None,
    });
    let probes = !matches!(check_type.as_str(), "CALCULATED" | "METRIC");
    let config = wire::HealthCheckConfig {
        ip_address: stored.ip_address.map(|ip| ip.to_string()),
        port,
        check_type: Some(stored.check_type.clone()),
        resource_path: stored.resource_path.clone(),
        fully_qualified_domain_name: stored.fqdn.clone(),
        search_string: stored.search_string.clone(),
        request_interval: probes.then(|| {
            stored
                .request_interval
                .unwrap_or(crate::health::spec::DEFAULT_INTERVAL.as_secs() as u32)
        }),
        failure_threshold: probes.then(|| {
            stored
                .failure_threshold
                .unwrap_or(crate::health::spec::DEFAULT_FAILURE_THRESHOLD)
        }),
        measure_latency: Some(stored.measure_latency.unwrap_or(false)),
        inverted: Some(stored.inverted),
        disabled: Some(stored.disabled),
        health_threshold: stored.health_threshold,
        child_health_checks: (check_type == "CALCULATED")
            .then(|| stored.child_health_checks.clone().into()),
        enable_sni: stored
            .enable_sni
            .or(check_type.starts_with("HTTPS").then_some(true)),
        regions: (!stored.regions.is_empty()).then(|| stored.regions.clone().into()),
        alarm_identifier: None,
        insufficient_data_health_status: stored.insufficient_data.clone(),
        metric: stored.metric.as_ref().map(|m| wire::Metric {
            prometheus_url: m.prometheus_url.clone(),
            query: m.query.clone(),
            comparison_operator: m.comparison_operator.clone(),
            threshold: m.threshold,
            alert: m.alert.clone(),
        }),
        connect_timeout_ms: stored.connect_timeout_ms,
        status_timeout_ms: stored.status_timeout_ms,
        body_timeout_ms: stored.body_timeout_ms,
    };
    wire::HealthCheck {
        id: check.id.clone(),
        caller_reference: check.caller_reference.clone(),
        health_check_config: config,
        health_check_version: check.health_check_version,
    }
}

fn check_response(check: &StoredCheck) -> wire::HealthCheckResponse {
    wire::HealthCheckResponse {
        xmlns: Xmlns,
        health_check: check_shape(check),
    }
}

// ---- paging of zones and checks ----

/// `maxitems` as a number in 1..=`max` (default `default`).
fn max_items(given: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    match given {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(bad(format!(
                "maxitems {text:?} is not a number in 1..{max}"
            ))),
        },
    }
}

/// One page of `items` starting at the one whose id is `marker`: the page and the id of the
/// first item after it.
fn page<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> &str,
    marker: Option<&str>,
    max: usize,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start = match marker {
        None => 0,
        Some(m) => {
            let m = bare_id(m);
            items
                .iter()
                .position(|i| id(i) == m)
                .ok_or_else(|| bad(format!("marker {m} is not the id of an item")))?
        }
    };
    let mut rest = items.into_iter().skip(start);
    let page: Vec<T> = rest.by_ref().take(max).collect();
    let next = rest.next().map(|i| id(&i).to_string());
    Ok((page, next))
}

// ---- hosted zones ----

async fn create_zone(State(s): Shared, bytes: Bytes) -> Result<Response, ApiError> {
    let req: wire::CreateHostedZoneRequest = body(&bytes)?;
    let config = req.hosted_zone_config.unwrap_or_default();
    if req.vpc.is_some() || config.private_zone == Some(true) {
        return Err(bad("private hosted zones are not supported"));
    }
    if let Some(set) = req.delegation_set_id {
        return Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "NoSuchDelegationSet",
            message: format!("no reusable delegation set {set}: this server has none"),
            problems: Vec::new(),
        });
    }
    let name = plain_name(&req.name);
    let (zone, change) = call(&s, move |c| {
        c.create_zone(&name, &req.caller_reference, config.comment)
    })
    .await?;
    created(
        &wire::CreateHostedZoneResponse {
            xmlns: Xmlns,
            hosted_zone: zone_shape(&zone),
            change_info: change_shape(&change),
            delegation_set: delegation(&zone),
        },
        format!("/2013-04-01/hostedzone/{}", zone.id),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ZonesQuery {
    marker: Option<String>,
    maxitems: Option<String>,
    delegationsetid: Option<String>,
    hostedzonetype: Option<String>,
}

/// Most zones or checks on one page (Route 53: 100).
const MAX_LIST: usize = 100;

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q).map_err(|e| bad(e.body_text()))
}

async fn list_zones(
    State(s): Shared,
    q: Result<Query<ZonesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    if q.delegationsetid.is_some() {
        return Err(bad("this server has no reusable delegation sets"));
    }
    if q.hostedzonetype
        .as_deref()
        .is_some_and(|t| t != "PublicHostedZone")
    {
        return Ok(xml(
            StatusCode::OK,
            &wire::ListHostedZonesResponse {
                xmlns: Xmlns,
                hosted_zones: Vec::new().into(),
                marker: q.marker,
                is_truncated: false,
                next_marker: None,
                max_items: MAX_LIST as u32,
            },
        ));
    }
    let max = max_items(q.maxitems.as_deref(), MAX_LIST, MAX_LIST)?;
    let zones = call(&s, |c| Ok(c.list_zones())).await?;
    let (zones, next) = page(zones, |z| &z.id, q.marker.as_deref(), max)?;
    ok(&wire::ListHostedZonesResponse {
        xmlns: Xmlns,
        hosted_zones: zones.iter().map(zone_shape).collect::<Vec<_>>().into(),
        marker: q.marker,
        is_truncated: next.is_some(),
        next_marker: next,
        max_items: max as u32,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ByNameQuery {
    dnsname: Option<String>,
    hostedzoneid: Option<String>,
    maxitems: Option<String>,
}

/// ListHostedZonesByName: zones in Route 53's name order (labels reversed), from the first
/// at or after `dnsname` (and `hostedzoneid`).
async fn list_zones_by_name(
    State(s): Shared,
    q: Result<Query<ByNameQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    if q.hostedzoneid.is_some() && q.dnsname.is_none() {
        return Err(bad("hostedzoneid needs dnsname"));
    }
    let max = max_items(q.maxitems.as_deref(), MAX_LIST, MAX_LIST)?;
    let zones = call(&s, |c| Ok(c.list_zones())).await?;
    let key = |name: &str| crate::control::store::sort_key(name, "", None);
    let start = q
        .dnsname
        .as_deref()
        .map(|n| key(&crate::zone::absolute_lower(&plain_name(n))));
    let from_id = q.hostedzoneid.as_deref().map(bare_id);
    let mut rest = zones.into_iter().filter(|z| match &start {
        None => true,
        Some(start) => {
            let k = key(&z.name);
            k > *start || (k == *start && from_id.is_none_or(|id| z.id.as_str() >= id))
        }
    });
    let page: Vec<ZoneView> = rest.by_ref().take(max).collect();
    let next = rest.next();
    ok(&wire::ListHostedZonesByNameResponse {
        xmlns: Xmlns,
        hosted_zones: page.iter().map(zone_shape).collect::<Vec<_>>().into(),
        dns_name: q.dnsname,
        hosted_zone_id: q.hostedzoneid,
        is_truncated: next.is_some(),
        next_dns_name: next.as_ref().map(|z| api_name(&z.name)),
        next_hosted_zone_id: next.as_ref().map(|z| format!("/hostedzone/{}", z.id)),
        max_items: max as u32,
    })
}

async fn zone_count(State(s): Shared) -> Result<Response, ApiError> {
    let count = call(&s, |c| Ok(c.zone_count())).await?;
    ok(&wire::GetHostedZoneCountResponse {
        xmlns: Xmlns,
        hosted_zone_count: count as u64,
    })
}

async fn get_zone(State(s): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    let zone = call(&s, move |c| c.get_zone(bare_id(&id))).await?;
    ok(&wire::GetHostedZoneResponse {
        xmlns: Xmlns,
        hosted_zone: zone_shape(&zone),
        delegation_set: delegation(&zone),
    })
}

async fn update_zone_comment(
    State(s): Shared,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let req: wire::UpdateHostedZoneCommentRequest = body(&bytes)?;
    let zone = call(&s, move |c| {
        c.update_zone_comment(bare_id(&id), req.comment)
    })
    .await?;
    ok(&wire::UpdateHostedZoneCommentResponse {
        xmlns: Xmlns,
        hosted_zone: zone_shape(&zone),
    })
}

async fn delete_zone(State(s): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    let change = call(&s, move |c| c.delete_zone(bare_id(&id))).await?;
    ok(&wire::DeleteHostedZoneResponse {
        xmlns: Xmlns,
        change_info: change_shape(&change),
    })
}

async fn get_dnssec(State(s): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    let view = call(&s, move |c| c.dnssec(bare_id(&id))).await?;
    ok(&wire::GetDnssecResponse {
        xmlns: Xmlns,
        status: wire::DnssecStatus {
            serve_signature: view.serve_signature.into(),
            status_message: view.status_message,
        },
        key_signing_keys: view.ksks.iter().map(ksk_shape).collect::<Vec<_>>().into(),
    })
}

fn ksk_shape(k: &KskView) -> wire::KeySigningKey {
    wire::KeySigningKey {
        name: k.stored.name.clone(),
        kms_arn: k.stored.kms_arn.clone(),
        flag: k.flag,
        signing_algorithm_mnemonic: crate::signing::keys::mnemonic(k.stored.algorithm).into(),
        signing_algorithm_type: k.stored.algorithm,
        digest_algorithm_mnemonic: "SHA-256".into(),
        digest_algorithm_type: 2,
        key_tag: k.key_tag,
        digest_value: k.digest_value.clone(),
        public_key: k.public_key.clone(),
        ds_record: k.ds_record.clone(),
        dnskey_record: k.dnskey_record.clone(),
        status: k.stored.status.clone(),
        status_message: None,
        created_date: k.stored.created_at.clone(),
        last_modified_date: k.stored.last_modified_at.clone(),
    }
}

/// A DNSSEC call's ChangeInfo under the call's own root element.
fn dnssec_change(root: &str, change: &ChangeInfo) -> Result<Response, ApiError> {
    let body = wire::to_xml_as(
        root,
        &wire::DnssecChangeResponse {
            xmlns: Xmlns,
            change_info: change_shape(change),
        },
    );
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/xml")], body).into_response())
}

async fn create_ksk(State(s): Shared, bytes: Bytes) -> Result<Response, ApiError> {
    let req: wire::CreateKeySigningKeyRequest = body(&bytes)?;
    let zone_id = bare_id(&req.hosted_zone_id).to_string();
    let location = format!(
        "https://route53.amazonaws.com/2013-04-01/keysigningkey/{zone_id}/{}",
        req.name
    );
    let (change, view) = call(&s, move |c| {
        c.create_ksk(
            &zone_id,
            &req.name,
            &req.key_management_service_arn,
            &req.status,
            &req.caller_reference,
        )
    })
    .await?;
    created(
        &wire::CreateKeySigningKeyResponse {
            xmlns: Xmlns,
            change_info: change_shape(&change),
            key_signing_key: ksk_shape(&view),
        },
        location,
    )
}

async fn activate_ksk(
    State(s): Shared,
    Path((zone, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let change = call(&s, move |c| c.set_ksk_status(bare_id(&zone), &name, true)).await?;
    dnssec_change("ActivateKeySigningKeyResponse", &change)
}

async fn deactivate_ksk(
    State(s): Shared,
    Path((zone, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let change = call(&s, move |c| c.set_ksk_status(bare_id(&zone), &name, false)).await?;
    dnssec_change("DeactivateKeySigningKeyResponse", &change)
}

async fn delete_ksk(
    State(s): Shared,
    Path((zone, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let change = call(&s, move |c| c.delete_ksk(bare_id(&zone), &name)).await?;
    dnssec_change("DeleteKeySigningKeyResponse", &change)
}

async fn enable_dnssec(State(s): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    let change = call(&s, move |c| c.set_signing(bare_id(&id), true)).await?;
    dnssec_change("EnableHostedZoneDNSSECResponse", &change)
}

async fn disable_dnssec(State(s): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    let change = call(&s, move |c| c.set_signing(bare_id(&id), false)).await?;
    dnssec_change("DisableHostedZoneDNSSECResponse", &change)
}

// ---- record sets and changes ----

async fn change_sets(
    State(s): Shared,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let req: wire::ChangeResourceRecordSetsRequest = body(&bytes).map_err(|e| ApiError {
        code: "InvalidChangeBatch",
        problems: vec![e.message.clone()],
        ..e
    })?;
    let batch = batch_from_wire(req.change_batch);
    let change = call(&s, move |c| c.change_record_sets(bare_id(&id), &batch)).await?;
    ok(&wire::ChangeResourceRecordSetsResponse {
        xmlns: Xmlns,
        change_info: change_shape(&change),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetsQuery {
    name: Option<String>,
    #[serde(rename = "type")]
    rtype: Option<String>,
    identifier: Option<String>,
    maxitems: Option<String>,
}

async fn list_sets(
    State(s): Shared,
    Path(id): Path<String>,
    q: Result<Query<SetsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let max_items = q
        .maxitems
        .map(|m| {
            m.parse::<usize>()
                .map_err(|_| bad(format!("maxitems {m:?} is not a number")))
        })
        .transpose()?;
    let start = PageStart {
        name: q.name.as_deref().map(plain_name),
        rtype: q.rtype,
        identifier: q.identifier,
        max_items,
    };
    let page = call(&s, move |c| c.list_record_sets(bare_id(&id), &start)).await?;
    ok(&wire::ListResourceRecordSetsResponse {
        xmlns: Xmlns,
        resource_record_sets: page
            .resource_record_sets
            .into_iter()
            .map(set_shape)
            .collect::<Vec<_>>()
            .into(),
        is_truncated: page.is_truncated,
        next_record_name: page.next_record_name.as_deref().map(api_name),
        next_record_type: page.next_record_type,
        next_record_identifier: page.next_record_identifier,
        max_items: page.max_items as u32,
    })
}

async fn get_change(State(s): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    let change = call(&s, move |c| c.get_change(bare_id(&id))).await?;
    ok(&wire::GetChangeResponse {
        xmlns: Xmlns,
        change_info: change_shape(&change),
    })
}

// ---- health checks ----

async fn create_check(State(s): Shared, bytes: Bytes) -> Result<Response, ApiError> {
    let req: wire::CreateHealthCheckRequest = body(&bytes)?;
    let config = check_config_json(&req.health_check_config)?;
    let check = call(&s, move |c| c.create_check(&req.caller_reference, config)).await?;
    created(
        &check_response(&check),
        format!("/2013-04-01/healthcheck/{}", check.id),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecksQuery {
    marker: Option<String>,
    maxitems: Option<String>,
}

async fn list_checks(
    State(s): Shared,
    q: Result<Query<ChecksQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let max = max_items(q.maxitems.as_deref(), MAX_LIST, MAX_LIST)?;
    let checks = call(&s, |c| Ok(c.list_checks())).await?;
    let (checks, next) = page(checks, |c| &c.id, q.marker.as_deref(), max)?;
    ok(&wire::ListHealthChecksResponse {
        xmlns: Xmlns,
        health_checks: checks.iter().map(check_shape).collect::<Vec<_>>().into(),
        marker: q.marker,
        is_truncated: next.is_some(),
        next_marker: next,
        max_items: max as u32,
    })
}

async fn check_count(State(s): Shared) -> Result<Response, ApiError> {
    let count = call(&s, |c| Ok(c.list_checks().len())).await?;
    ok(&wire::GetHealthCheckCountResponse {
        xmlns: Xmlns,
        health_check_count: count as u64,
    })
}

async fn get_check(State(s): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    let check = call(&s, move |c| c.get_check(&id)).await?;
    ok(&check_response(&check))
}

async fn update_check(
    State(s): Shared,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let req: wire::UpdateHealthCheckRequest = body(&bytes)?;
    let Value::Object(mut patch) = check_config_json(&req.changes())? else {
        unreachable!("a config is an object")
    };
    for name in req.reset_elements.iter().flat_map(|r| r.items.iter()) {
        if !matches!(
            name.as_str(),
            "FullyQualifiedDomainName" | "Regions" | "ResourcePath" | "ChildHealthChecks"
        ) {
            return Err(bad(format!("ResetElements: {name} cannot be reset")));
        }
        patch.insert(name.clone(), Value::Null);
    }
    if let Some(version) = req.health_check_version {
        patch.insert("HealthCheckVersion".into(), version.into());
    }
    let check = call(&s, move |c| c.update_check(&id, patch)).await?;
    ok(&check_response(&check))
}

async fn delete_check(State(s): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    call(&s, move |c| c.delete_check(&id)).await?;
    ok(&wire::DeleteHealthCheckResponse::default())
}

/// A status report: the probe's detail, led by its result unless it already says it.
fn report(result: &str, detail: &str) -> String {
    if detail.starts_with(result) {
        detail.to_string()
    } else {
        format!("{result}: {detail}")
    }
}

fn observation(
    o: &crate::health::monitor::ObservationStatus,
    result: &str,
) -> wire::HealthCheckObservation {
    wire::HealthCheckObservation {
        region: "local".into(),
        ip_address: None,
        status_report: wire::StatusReport {
            status: report(result, &o.detail),
            checked_time: o.at.clone(),
        },
    }
}

async fn check_status(State(s): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    let status = call(&s, move |c| c.check_status(&id)).await?;
    // On a cluster, one observation per checker (as Route 53 lists its checkers'); alone,
    // this node's last observations.
    let observations: Vec<wire::HealthCheckObservation> = if status.checkers.is_empty() {
        status
            .observations
            .iter()
            .map(|o| observation(o, &o.result))
            .collect()
    } else {
        status
            .checkers
            .iter()
            .map(|c| wire::HealthCheckObservation {
                region: c.region.clone().unwrap_or_else(|| c.node.clone()),
                ip_address: None,
                status_report: wire::StatusReport {
                    status: report(if c.healthy { "Success" } else { "Failure" }, &c.detail),
                    checked_time: c.at.clone(),
                },
            })
            .collect()
    };
    ok(&wire::HealthCheckObservationsResponse {
        xmlns: Xmlns,
        health_check_observations: observations.into(),
        status: Some(status.status.clone()),
    })
}

async fn check_last_failure(
    State(s): Shared,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let status = call(&s, move |c| c.check_status(&id)).await?;
    ok(&wire::HealthCheckObservationsResponse {
        xmlns: Xmlns,
        health_check_observations: status
            .last_failure
            .iter()
            .map(|f| observation(f, "Failure"))
            .collect::<Vec<_>>()
            .into(),
        status: None,
    })
}

// ---- tags ----

/// A tagged resource type from the path: `hostedzone` or `healthcheck`.
fn tagged_kind(resource_type: &str) -> Result<Kind, ApiError> {
    match resource_type {
        "hostedzone" => Ok(Kind::HostedZone),
        "healthcheck" => Ok(Kind::HealthCheck),
        other => Err(bad(format!(
            "resource type {other:?} is not hostedzone or healthcheck"
        ))),
    }
}

fn tag_set(resource_type: &str, id: &str, tags: BTreeMap<String, String>) -> wire::ResourceTagSet {
    wire::ResourceTagSet {
        resource_type: resource_type.to_string(),
        resource_id: id.to_string(),
        tags: tags
            .into_iter()
            .map(|(key, value)| wire::Tag {
                key,
                value: Some(value),
            })
            .collect::<Vec<_>>()
            .into(),
    }
}

async fn list_tags(
    State(s): Shared,
    Path((resource_type, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let kind = tagged_kind(&resource_type)?;
    let id = bare_id(&id).to_string();
    let tags = {
        let id = id.clone();
        call(&s, move |c| c.tags(kind, &id)).await?
    };
    ok(&wire::ListTagsForResourceResponse {
        xmlns: Xmlns,
        resource_tag_set: tag_set(&resource_type, &id, tags),
    })
}

async fn change_tags(
    State(s): Shared,
    Path((resource_type, id)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let kind = tagged_kind(&resource_type)?;
    let req: wire::ChangeTagsForResourceRequest = body(&bytes)?;
    let add = req
        .add_tags
        .map(|t| t.items)
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key, t.value.unwrap_or_default()))
        .collect();
    let remove = req.remove_tag_keys.map(|k| k.items).unwrap_or_default();
    let id = bare_id(&id).to_string();
    call(&s, move |c| c.change_tags(kind, &id, add, remove)).await?;
    ok(&wire::ChangeTagsForResourceResponse::default())
}

/// Most resources ListTagsForResources takes (Route 53: 10).
const MAX_TAGGED: usize = 10;

async fn list_tags_of_many(
    State(s): Shared,
    Path(resource_type): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let kind = tagged_kind(&resource_type)?;
    let req: wire::ListTagsForResourcesRequest = body(&bytes)?;
    let ids: Vec<String> = req
        .resource_ids
        .items
        .iter()
        .map(|id| bare_id(id).to_string())
        .collect();
    if ids.is_empty() || ids.len() > MAX_TAGGED {
        return Err(bad(format!(
            "ResourceIds must name 1..{MAX_TAGGED} resources"
        )));
    }
    let sets = {
        let ids = ids.clone();
        call(&s, move |c| {
            ids.iter()
                .map(|id| c.tags(kind, id))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?
    };
    ok(&wire::ListTagsForResourcesResponse {
        xmlns: Xmlns,
        resource_tag_sets: ids
            .iter()
            .zip(sets)
            .map(|(id, tags)| tag_set(&resource_type, id, tags))
            .collect::<Vec<_>>()
            .into(),
    })
}

// ---- CIDR collections ----

fn collection_shape(c: &crate::control::store::CidrCollection) -> wire::CidrCollection {
    wire::CidrCollection {
        arn: format!("arn:aws:route53:::cidrcollection/{}", c.id),
        id: c.id.clone(),
        name: c.name.clone(),
        version: c.version,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CidrQuery {
    nexttoken: Option<String>,
    maxresults: Option<String>,
    location: Option<String>,
}

/// One page of `items` for a `nexttoken` (the offset of the page, as text) and
/// `maxresults` (default and most: 100): the page and the next token.
fn token_page<T>(items: Vec<T>, q: &CidrQuery) -> Result<(Vec<T>, Option<String>), ApiError> {
    let max = max_items(q.maxresults.as_deref(), MAX_LIST, MAX_LIST)?;
    let start = match &q.nexttoken {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|&n| n <= items.len())
            .ok_or_else(|| bad(format!("nexttoken {t:?} is not one this server gave")))?,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(max).collect();
    let end = start + page.len();
    Ok((page, (end < total).then(|| end.to_string())))
}

async fn create_collection(State(s): Shared, bytes: Bytes) -> Result<Response, ApiError> {
    let req: wire::CreateCidrCollectionRequest = body(&bytes)?;
    let collection = call(&s, move |c| {
        c.create_cidr_collection(&req.name, &req.caller_reference)
    })
    .await?;
    created(
        &wire::CreateCidrCollectionResponse {
            xmlns: Xmlns,
            collection: collection_shape(&collection),
        },
        format!("/2013-04-01/cidrcollection/{}", collection.id),
    )
}

async fn list_collections(
    State(s): Shared,
    q: Result<Query<CidrQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let all = call(&s, |c| Ok(c.cidr_collections())).await?;
    let (page, next) = token_page(all, &q)?;
    ok(&wire::ListCidrCollectionsResponse {
        xmlns: Xmlns,
        next_token: next,
        cidr_collections: page.iter().map(collection_shape).collect::<Vec<_>>().into(),
    })
}

async fn change_collection(
    State(s): Shared,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let req: wire::ChangeCidrCollectionRequest = body(&bytes)?;
    let changes: Vec<crate::control::CidrChange> = req
        .changes
        .items
        .into_iter()
        .map(|c| crate::control::CidrChange {
            location: c.location_name,
            action: c.action,
            cidrs: c.cidr_list.items,
        })
        .collect();
    let version = req.collection_version;
    let change = call(&s, move |c| {
        c.change_cidr_collection(&id, version, &changes)
    })
    .await?;
    ok(&wire::ChangeCidrCollectionResponse {
        xmlns: Xmlns,
        id: format!("/change/{}", change.id),
    })
}

async fn list_blocks(
    State(s): Shared,
    Path(id): Path<String>,
    q: Result<Query<CidrQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let collection = call(&s, move |c| c.cidr_collection(&id)).await?;
    if let Some(location) = &q.location
        && !collection.locations.contains_key(location)
    {
        return Err(ApiError::from(ControlError::NotFound {
            what: Kind::CidrLocation,
            id: location.clone(),
        }));
    }
    let blocks: Vec<wire::CidrBlockSummary> = collection
        .locations
        .iter()
        .filter(|(name, _)| q.location.as_ref().is_none_or(|l| l == *name))
        .flat_map(|(name, blocks)| {
            blocks.iter().map(|b| wire::CidrBlockSummary {
                cidr_block: b.clone(),
                location_name: name.clone(),
            })
        })
        .collect();
    let (page, next) = token_page(blocks, &q)?;
    ok(&wire::ListCidrBlocksResponse {
        xmlns: Xmlns,
        next_token: next,
        cidr_blocks: page.into(),
    })
}

async fn list_locations(
    State(s): Shared,
    Path(id): Path<String>,
    q: Result<Query<CidrQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let collection = call(&s, move |c| c.cidr_collection(&id)).await?;
    let names: Vec<wire::LocationSummary> = collection
        .locations
        .keys()
        .map(|l| wire::LocationSummary {
            location_name: l.clone(),
        })
        .collect();
    let (page, next) = token_page(names, &q)?;
    ok(&wire::ListCidrLocationsResponse {
        xmlns: Xmlns,
        next_token: next,
        cidr_locations: page.into(),
    })
}

async fn delete_collection(State(s): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    call(&s, move |c| c.delete_cidr_collection(&id)).await?;
    ok(&wire::DeleteCidrCollectionResponse::default())
}

// ---- TestDNSAnswer ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestQuery {
    #[serde(default)]
    hostedzoneid: Option<String>,
    recordname: String,
    recordtype: String,
    resolverip: Option<String>,
    edns0clientsubnetip: Option<String>,
    edns0clientsubnetmask: Option<String>,
}

async fn test_answer(
    State(s): Shared,
    q: Result<Query<TestQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let ip = |v: &Option<String>, what: &str| -> Result<Option<IpAddr>, ApiError> {
        v.as_deref()
            .map(|s| {
                s.parse::<IpAddr>()
                    .map_err(|_| bad(format!("{what} {s:?} is not an IP address")))
            })
            .transpose()
    };
    let resolver = ip(&q.resolverip, "resolverip")?;
    let ecs = match (
        ip(&q.edns0clientsubnetip, "edns0clientsubnetip")?,
        &q.edns0clientsubnetmask,
    ) {
        (None, None) => None,
        (Some(addr), mask) => {
            let full = if addr.is_ipv4() { 32 } else { 128 };
            let len = match mask {
                None => full,
                Some(m) => m
                    .parse::<u8>()
                    .map_err(|_| bad(format!("edns0clientsubnetmask {m:?} is not a number")))?,
            };
            Some((addr, len))
        }
        (None, Some(_)) => return Err(bad("edns0clientsubnetmask needs edns0clientsubnetip")),
    };
    let name = plain_name(&q.recordname);
    if let Some(zone) = &q.hostedzoneid {
        let zone_id = bare_id(zone).to_string();
        let zone = call(&s, move |c| c.get_zone(&zone_id)).await?;
        let lower = crate::zone::absolute_lower(&name);
        if lower != zone.name && !lower.ends_with(&format!(".{}", zone.name)) {
            return Err(bad(format!(
                "recordname {} is not in hosted zone {}",
                q.recordname, zone.name
            )));
        }
    }
    let rtype = q.recordtype.clone();
    let answer = call(&s, move |c| c.test_answer(&name, &rtype, resolver, ecs)).await?;
    ok(&wire::TestDnsAnswerResponse {
        xmlns: Xmlns,
        nameserver: answer.nameserver,
        record_name: answer.record_name,
        record_type: answer.record_type,
        record_data: answer.record_data.into(),
        response_code: answer.response_code,
        protocol: answer.protocol,
    })
}

/// The API's routes.
pub fn router(state: Arc<ApiState>) -> Router {
    let metrics = state.metrics.clone();
    let routes = Router::new()
        .route("/2013-04-01/hostedzone", get(list_zones).post(create_zone))
        .route("/2013-04-01/hostedzonesbyname", get(list_zones_by_name))
        .route("/2013-04-01/hostedzonecount", get(zone_count))
        .route(
            "/2013-04-01/hostedzone/{id}",
            get(get_zone).post(update_zone_comment).delete(delete_zone),
        )
        .route(
            "/2013-04-01/hostedzone/{id}/rrset",
            get(list_sets).post(change_sets),
        )
        // botocore posts to `rrset/`; other SDKs to `rrset`.
        .route(
            "/2013-04-01/hostedzone/{id}/rrset/",
            get(list_sets).post(change_sets),
        )
        .route("/2013-04-01/hostedzone/{id}/dnssec", get(get_dnssec))
        .route(
            "/2013-04-01/hostedzone/{id}/enable-dnssec",
            post(enable_dnssec),
        )
        .route(
            "/2013-04-01/hostedzone/{id}/disable-dnssec",
            post(disable_dnssec),
        )
        .route("/2013-04-01/keysigningkey", post(create_ksk))
        .route(
            "/2013-04-01/keysigningkey/{zone}/{name}",
            axum::routing::delete(delete_ksk),
        )
        .route(
            "/2013-04-01/keysigningkey/{zone}/{name}/activate",
            post(activate_ksk),
        )
        .route(
            "/2013-04-01/keysigningkey/{zone}/{name}/deactivate",
            post(deactivate_ksk),
        )
        .route("/2013-04-01/change/{id}", get(get_change))
        .route(
            "/2013-04-01/healthcheck",
            get(list_checks).post(create_check),
        )
        .route("/2013-04-01/healthcheckcount", get(check_count))
        .route(
            "/2013-04-01/healthcheck/{id}",
            get(get_check).post(update_check).delete(delete_check),
        )
        .route("/2013-04-01/healthcheck/{id}/status", get(check_status))
        .route(
            "/2013-04-01/healthcheck/{id}/lastfailurereason",
            get(check_last_failure),
        )
        .route("/2013-04-01/testdnsanswer", get(test_answer))
        .route(
            "/2013-04-01/cidrcollection",
            get(list_collections).post(create_collection),
        )
        .route(
            "/2013-04-01/cidrcollection/{id}",
            get(list_locations)
                .post(change_collection)
                .delete(delete_collection),
        )
        .route(
            "/2013-04-01/cidrcollection/{id}/cidrblocks",
            get(list_blocks),
        )
        .route(
            "/2013-04-01/tags/{resource_type}/{id}",
            get(list_tags).post(change_tags),
        )
        .route(
            "/2013-04-01/tags/{resource_type}",
            axum::routing::post(list_tags_of_many),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cluster_writes,
        ))
        .with_state(state.clone())
        .merge(crate::metrics::router(metrics, true));
    crate::http::guarded(routes, state.guard.clone())
}

/// On a cluster node that has not reached etcd (starting, or cut off), a change (any method
/// but GET) gets 503 ServiceUnavailable at once, which botocore retries: it would be checked
/// against a copy that may be behind. Reads are answered from what the node has.
async fn cluster_writes(
    State(s): Shared,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.method() != axum::http::Method::GET && !s.control.writable() {
        return ApiError::from(ControlError::Store(StoreError::Unavailable(
            "this node has not reached the cluster's store (etcd) yet".into(),
        )))
        .into_response();
    }
    next.run(request).await
}

/// Binds the API (before anything is served, so an address in use is reported at start).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for the API on {addr}: {e}"))
}

/// Serves the API on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<ApiState>) -> anyhow::Result<()> {
    let limits = state.guard.limits.clone();
    crate::http::serve(listener, router(state), limits).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route this file serves is documented in `docs/route53-api.md`, and nothing more.
    #[test]
    fn the_api_document_lists_every_route() {
        let source = include_str!("api.rs");
        let doc = include_str!("../../../docs/route53-api.md");
        let paths = |text: &'static str| {
            text.split(".route(")
                .skip(1)
                .filter_map(|rest| rest.trim_start().strip_prefix('"'))
                .map(|rest| rest.split('"').next().unwrap())
                .filter(|path| path.starts_with('/'))
        };
        // `rrset/` is the same call as `rrset`.
        let mut routes: Vec<&str> = paths(source)
            .chain(paths(include_str!("../metrics.rs")))
            .map(|p| p.trim_end_matches('/'))
            .collect();
        routes.sort();
        routes.dedup();
        let mut documented: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .filter_map(|l| l.split_once(' ').map(|(_, path)| path))
            .filter(|p| p.starts_with('/'))
            .collect();
        documented.sort();
        documented.dedup();
        assert_eq!(routes, documented);
    }

    #[test]
    fn a_health_check_round_trips_through_the_stored_form() {
        let body = r#"<CreateHealthCheckRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><CallerReference>r</CallerReference><HealthCheckConfig><IPAddress>192.0.2.1</IPAddress><Port>8443</Port><Type>HTTPS</Type><ResourcePath>/health</ResourcePath><RequestInterval>10</RequestInterval><Regions><Region>us-east-1</Region></Regions></HealthCheckConfig></CreateHealthCheckRequest>"#;
        let req: wire::CreateHealthCheckRequest = wire::from_xml(body.as_bytes()).unwrap();
        let stored = check_config_json(&req.health_check_config).unwrap();
        assert_eq!(stored["Regions"], serde_json::json!(["us-east-1"]));
        let check = StoredCheck {
            id: "id".into(),
            caller_reference: "r".into(),
            health_check_config: stored,
            health_check_version: 1,
            imported_from: None,
            import_digest: None,
            tags: Default::default(),
        };
        let shape = check_shape(&check).health_check_config;
        assert_eq!(shape.port, Some(8443));
        assert_eq!(shape.failure_threshold, Some(3), "the default is shown");
        assert_eq!(shape.measure_latency, Some(false));
        assert_eq!(shape.regions.unwrap().items, ["us-east-1"]);
        assert_eq!(shape.enable_sni, Some(true));
    }
}
