//! The HTTP control API (axum): Route 53's hosted-zone, change and health-check calls as
//! JSON under `/2013-04-01/`, plus `/metrics`. Documented in `docs/openapi.yaml`.
//!
//! Every request passes [`crate::http`]'s front door first (browser guard, bearer token when
//! one is configured, timeouts, size and connection limits). Every request body is parsed
//! strictly (unknown fields are errors) before anything is touched; every refusal is
//! `{"Error": {"Code", "Message", "Problems"}}` with 400 (bad input), 404 (no such thing), 409
//! (already exists) or 500 (the store failed).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::control::{Control, ControlError, PageStart};
use crate::metrics::MetricsSource;
use crate::zone::records::ChangeBatch;

/// What the API serves from.
pub struct ApiState {
    pub control: Arc<Control>,
    pub metrics: Arc<MetricsSource>,
    /// The front door: names, token, limits.
    pub guard: Arc<crate::http::Guard>,
}

type Shared = State<Arc<ApiState>>;

/// An API error response, in Route 53's terms.
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

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        let status = match &e {
            ControlError::InvalidInput { .. }
            | ControlError::InvalidChangeBatch { .. }
            | ControlError::Refused { .. } => StatusCode::BAD_REQUEST,
            ControlError::NotFound { .. } => StatusCode::NOT_FOUND,
            ControlError::Conflict { .. } => StatusCode::CONFLICT,
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

/// Parses a JSON body strictly.
fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| bad(format!("malformed request body: {e}")))
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

/// A read of the control plane: it may wait for a reload's import, so off the async workers.
async fn read<T: Send + 'static>(
    s: &ApiState,
    f: impl FnOnce(&Control) -> Result<T, ControlError> + Send + 'static,
) -> Result<T, ApiError> {
    let control = s.control.clone();
    blocking(move || f(&control)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct CreateZone {
    name: String,
    caller_reference: String,
    #[serde(default)]
    hosted_zone_config: Option<ZoneConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ZoneConfig {
    comment: Option<String>,
    #[serde(default)]
    private_zone: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ChangeRequest {
    change_batch: ChangeBatch,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct CreateCheck {
    caller_reference: String,
    health_check_config: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    name: Option<String>,
    #[serde(rename = "type")]
    rtype: Option<String>,
    identifier: Option<String>,
    maxitems: Option<String>,
}

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

async fn create_zone(State(s): Shared, bytes: Bytes) -> Result<Response, ApiError> {
    let req: CreateZone = body(&bytes)?;
    let (comment, private) = req
        .hosted_zone_config
        .map_or((None, false), |c| (c.comment, c.private_zone));
    if private {
        return Err(bad("private hosted zones are not supported"));
    }
    let control = s.control.clone();
    let (zone, change) =
        blocking(move || control.create_zone(&req.name, &req.caller_reference, comment)).await?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/2013-04-01/hostedzone/{}", zone.id),
        )],
        axum::Json(json!({"HostedZone": zone, "ChangeInfo": change})),
    )
        .into_response())
}

async fn list_zones(State(s): Shared) -> Result<axum::Json<Value>, ApiError> {
    let zones = read(&s, |c| Ok(c.list_zones())).await?;
    Ok(axum::Json(
        json!({"HostedZones": zones, "IsTruncated": false}),
    ))
}

async fn get_zone(State(s): Shared, Path(id): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    let zone = read(&s, move |c| c.get_zone(&id)).await?;
    Ok(axum::Json(json!({"HostedZone": zone})))
}

async fn delete_zone(
    State(s): Shared,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let control = s.control.clone();
    let change = blocking(move || control.delete_zone(&id)).await?;
    Ok(axum::Json(json!({"ChangeInfo": change})))
}

async fn change_sets(
    State(s): Shared,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    let req: ChangeRequest = body(&bytes).map_err(|e| ApiError {
        code: "InvalidChangeBatch",
        problems: vec![e.message.clone()],
        ..e
    })?;
    let control = s.control.clone();
    let change = blocking(move || control.change_record_sets(&id, &req.change_batch)).await?;
    Ok(axum::Json(json!({"ChangeInfo": change})))
}

async fn list_sets(
    State(s): Shared,
    Path(id): Path<String>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| bad(e.body_text()))?;
    let max_items = q
        .maxitems
        .map(|m| {
            m.parse::<usize>()
                .map_err(|_| bad(format!("maxitems {m:?} is not a number")))
        })
        .transpose()?;
    let start = PageStart {
        name: q.name,
        rtype: q.rtype,
        identifier: q.identifier,
        max_items,
    };
    let page = read(&s, move |c| c.list_record_sets(&id, &start)).await?;
    Ok(axum::Json(serde_json::to_value(page).expect("serializes")))
}

async fn get_change(
    State(s): Shared,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(
        json!({"ChangeInfo": read(&s, move |c| c.get_change(&id)).await?}),
    ))
}

async fn create_check(State(s): Shared, bytes: Bytes) -> Result<Response, ApiError> {
    let req: CreateCheck = body(&bytes)?;
    let control = s.control.clone();
    let check =
        blocking(move || control.create_check(&req.caller_reference, req.health_check_config))
            .await?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/2013-04-01/healthcheck/{}", check.id),
        )],
        axum::Json(json!({"HealthCheck": check})),
    )
        .into_response())
}

async fn list_checks(State(s): Shared) -> Result<axum::Json<Value>, ApiError> {
    let checks = read(&s, |c| Ok(c.list_checks())).await?;
    Ok(axum::Json(
        json!({"HealthChecks": checks, "IsTruncated": false}),
    ))
}

async fn get_check(
    State(s): Shared,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(
        json!({"HealthCheck": read(&s, move |c| c.get_check(&id)).await?}),
    ))
}

async fn update_check(
    State(s): Shared,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    let patch: serde_json::Map<String, Value> = body(&bytes)?;
    let control = s.control.clone();
    let check = blocking(move || control.update_check(&id, patch)).await?;
    Ok(axum::Json(json!({"HealthCheck": check})))
}

async fn delete_check(
    State(s): Shared,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let control = s.control.clone();
    blocking(move || control.delete_check(&id)).await?;
    Ok(axum::Json(json!({})))
}

/// A status report: the probe's detail, led by its result unless it already says it.
fn report(result: &str, detail: &str) -> String {
    if detail.starts_with(result) {
        detail.to_string()
    } else {
        format!("{result}: {detail}")
    }
}

async fn check_status(
    State(s): Shared,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let status = read(&s, move |c| c.check_status(&id)).await?;
    let observations: Vec<Value> = status
        .observations
        .iter()
        .map(|o| {
            json!({"Region": "local", "StatusReport": {"Status": report(&o.result, &o.detail), "CheckedTime": o.at}})
        })
        .collect();
    let last_failure = status.last_failure.as_ref().map(|f| {
        json!({"Region": "local", "StatusReport": {"Status": report("Failure", &f.detail), "CheckedTime": f.at}})
    });
    Ok(axum::Json(json!({
        "HealthCheckObservations": observations,
        "Status": status.status,
        "LastFailureReason": last_failure,
        "Detail": status,
    })))
}

async fn test_answer(
    State(s): Shared,
    query: Result<Query<TestQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| bad(e.body_text()))?;
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
    if let Some(zone) = &q.hostedzoneid {
        let zone_id = zone.clone();
        let zone = read(&s, move |c| c.get_zone(&zone_id)).await?;
        let name = crate::zone::absolute_lower(&q.recordname);
        if name != zone.name && !name.ends_with(&format!(".{}", zone.name)) {
            return Err(bad(format!(
                "recordname {} is not in hosted zone {}",
                q.recordname, zone.name
            )));
        }
    }
    let (name, rtype) = (q.recordname.clone(), q.recordtype.clone());
    let answer = read(&s, move |c| c.test_answer(&name, &rtype, resolver, ecs)).await?;
    Ok(axum::Json(
        serde_json::to_value(answer).expect("serializes"),
    ))
}

/// The API's routes.
pub fn router(state: Arc<ApiState>) -> Router {
    let metrics = state.metrics.clone();
    let routes = Router::new()
        .route("/2013-04-01/hostedzone", get(list_zones).post(create_zone))
        .route(
            "/2013-04-01/hostedzone/{id}",
            get(get_zone).delete(delete_zone),
        )
        .route(
            "/2013-04-01/hostedzone/{id}/rrset",
            get(list_sets).post(change_sets),
        )
        .route("/2013-04-01/change/{id}", get(get_change))
        .route(
            "/2013-04-01/healthcheck",
            get(list_checks).post(create_check),
        )
        .route(
            "/2013-04-01/healthcheck/{id}",
            get(get_check).post(update_check).delete(delete_check),
        )
        .route("/2013-04-01/healthcheck/{id}/status", get(check_status))
        .route("/2013-04-01/testdnsanswer", get(test_answer))
        .with_state(state.clone())
        .merge(crate::metrics::router(metrics, true));
    crate::http::guarded(routes, state.guard.clone())
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
    /// Every route this file serves is documented in the OpenAPI file, and nothing more.
    #[test]
    fn the_openapi_file_documents_every_route() {
        let source = include_str!("api.rs");
        let spec = include_str!("../../../docs/openapi.yaml");
        let paths = |text: &'static str| {
            text.split(".route(")
                .skip(1)
                .filter_map(|rest| rest.trim_start().strip_prefix('"'))
                .map(|rest| rest.split('"').next().unwrap())
                .filter(|path| path.starts_with('/'))
        };
        let mut routes: Vec<&str> = paths(source)
            .chain(paths(include_str!("../metrics.rs")))
            .collect();
        routes.sort();
        let mut documented: Vec<&str> = spec
            .lines()
            .filter(|l| l.starts_with("  /") && l.ends_with(':'))
            .map(|l| l.trim().trim_end_matches(':'))
            .collect();
        documented.sort();
        assert_eq!(routes, documented);
    }
}
