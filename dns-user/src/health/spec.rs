//! Health-check definitions: Route 53's `HealthCheckConfig` shape, read from the config's
//! `[health_check.ID]` tables (snake_case keys) or a `--health-checks` JSON file (a list of
//! `{"Id": .., "HealthCheckConfig": {..}}`, Route 53's own key names), validated into
//! [`CheckSpec`]s by one function.
//!
//! Deviations from Route 53, on purpose: `RequestInterval` may be 1..=30 s (Route 53: 10 or
//! 30); the per-stage timeouts are configurable (`ConnectTimeoutMs`, `StatusTimeoutMs`,
//! `BodyTimeoutMs`); private addresses are allowed; the checkers are the nodes of a cluster
//! (`Regions` names the regions of the nodes that probe; alone, the one node probes every
//! check), and `MeasureLatency` is accepted with no effect; `METRIC` checks read a
//! Prometheus-compatible API instead of a CloudWatch alarm.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::targets::TargetPolicy;

/// Route 53's defaults.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_FAILURE_THRESHOLD: u8 = 3;
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(4);
pub const DEFAULT_STATUS_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest search string (Route 53: 255 characters).
pub const MAX_SEARCH_STRING: usize = 255;
/// Most children of a calculated check.
pub const MAX_CHILDREN: usize = 255;
/// Longest any one stage may be configured to wait.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// One entry of a `--health-checks` JSON file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckEntry {
    #[serde(rename = "Id")]
    pub id: String,
    /// Accepted (AWS's `get-health-check` output has it); unused.
    #[serde(rename = "CallerReference", default)]
    pub caller_reference: Option<String>,
    #[serde(rename = "HealthCheckConfig")]
    pub config: HealthCheckConfig,
}

/// Route 53's `HealthCheckConfig`; in TOML the same fields in snake_case.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// HTTP | HTTPS | HTTP_STR_MATCH | HTTPS_STR_MATCH | TCP | CALCULATED | METRIC
    /// (CLOUDWATCH_METRIC is accepted as METRIC).
    #[serde(rename = "Type", alias = "type")]
    pub check_type: String,
    #[serde(rename = "IPAddress", alias = "ip_address", default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<IpAddr>,
    #[serde(rename = "Port", alias = "port", default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(rename = "ResourcePath", alias = "resource_path", default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_path: Option<String>,
    #[serde(
        rename = "FullyQualifiedDomainName",
        alias = "fully_qualified_domain_name",
        alias = "fqdn",
        default
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
    #[serde(rename = "SearchString", alias = "search_string", default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_string: Option<String>,
    /// Seconds between probes: 1..=30 (Route 53: 10 or 30). Default 30.
    #[serde(rename = "RequestInterval", alias = "request_interval", default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_interval: Option<u32>,
    #[serde(rename = "FailureThreshold", alias = "failure_threshold", default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u8>,
    #[serde(rename = "MeasureLatency", alias = "measure_latency", default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measure_latency: Option<bool>,
    #[serde(rename = "Inverted", alias = "inverted", default)]
    pub inverted: bool,
    #[serde(rename = "Disabled", alias = "disabled", default)]
    pub disabled: bool,
    #[serde(rename = "HealthThreshold", alias = "health_threshold", default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_threshold: Option<u16>,
    #[serde(rename = "ChildHealthChecks", alias = "child_health_checks", default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub child_health_checks: Vec<String>,
    #[serde(rename = "EnableSNI", alias = "enable_sni", default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_sni: Option<bool>,
    #[serde(rename = "Regions", alias = "regions", default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Healthy | Unhealthy | LastKnownStatus (default), for METRIC checks.
    #[serde(
        rename = "InsufficientDataHealthStatus",
        alias = "insufficient_data_health_status",
        default
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insufficient_data: Option<String>,
    /// The metric or alert a METRIC check watches.
    #[serde(rename = "Metric", alias = "metric", default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricConfig>,
    #[serde(rename = "ConnectTimeoutMs", alias = "connect_timeout_ms", default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
    #[serde(rename = "StatusTimeoutMs", alias = "status_timeout_ms", default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_timeout_ms: Option<u64>,
    #[serde(rename = "BodyTimeoutMs", alias = "body_timeout_ms", default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_timeout_ms: Option<u64>,
}

/// A METRIC check's source: an instant query compared with a threshold, or an alert.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricConfig {
    /// Base URL of the Prometheus-compatible API, e.g. `http://127.0.0.1:9090`.
    #[serde(rename = "PrometheusUrl", alias = "prometheus_url")]
    pub prometheus_url: String,
    /// PromQL instant query; the check is unhealthy while any series is in alarm.
    #[serde(rename = "Query", alias = "query", default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// CloudWatch's operators: GreaterThanOrEqualToThreshold | GreaterThanThreshold |
    /// LessThanThreshold | LessThanOrEqualToThreshold.
    #[serde(rename = "ComparisonOperator", alias = "comparison_operator", default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison_operator: Option<String>,
    #[serde(rename = "Threshold", alias = "threshold", default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Alert name: unhealthy while `ALERTS{alertname=..., alertstate="firing"}` has a series.
    #[serde(rename = "Alert", alias = "alert", default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
}

/// A validated health check.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckSpec {
    pub id: String,
    pub kind: CheckKind,
    pub interval: Duration,
    pub failure_threshold: u8,
    pub inverted: bool,
    pub disabled: bool,
    /// Where it is probed from, on a cluster: the nodes of these regions (empty: every node).
    pub regions: Vec<String>,
}

/// What a check probes.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckKind {
    Http(HttpCheck),
    Tcp {
        endpoint: Endpoint,
        connect_timeout: Duration,
    },
    Calculated {
        children: Vec<String>,
        threshold: u16,
    },
    Metric(MetricCheck),
}

/// Where an endpoint is: an IP address (the FQDN, if any, is then only for Host and SNI) or a
/// domain name resolved at every probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: Option<IpAddr>,
    pub fqdn: Option<String>,
    pub port: u16,
}

/// An HTTP or HTTPS check, with or without a search string.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpCheck {
    pub endpoint: Endpoint,
    pub tls: bool,
    /// Server name sent in the TLS ClientHello (the FQDN, with EnableSNI).
    pub sni: Option<String>,
    pub path: String,
    /// The Host header: the FQDN, else the IP, plus `:port` when the port is not the scheme's.
    pub host: String,
    pub search: Option<String>,
    pub connect_timeout: Duration,
    pub status_timeout: Duration,
    pub body_timeout: Duration,
}

/// A metric check (Route 53's CloudWatch alarm check, against a Prometheus-compatible API).
#[derive(Clone, Debug, PartialEq)]
pub struct MetricCheck {
    /// `http[s]://host[:port]`, no trailing slash.
    pub url: String,
    pub source: MetricSource,
    pub insufficient_data: InsufficientData,
    /// For the whole API request.
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub enum MetricSource {
    /// In alarm (unhealthy) while any series' value compares true with the threshold.
    Query {
        query: String,
        operator: Comparison,
        threshold: f64,
    },
    /// Unhealthy while the alert fires.
    Alert { name: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    GreaterThanOrEqual,
    GreaterThan,
    LessThan,
    LessThanOrEqual,
}

impl Comparison {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterThanOrEqual => value >= threshold,
            Comparison::GreaterThan => value > threshold,
            Comparison::LessThan => value < threshold,
            Comparison::LessThanOrEqual => value <= threshold,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqual => ">=",
            Comparison::GreaterThan => ">",
            Comparison::LessThan => "<",
            Comparison::LessThanOrEqual => "<=",
        }
    }
}

/// What a metric check's status becomes without data (Route 53's InsufficientDataHealthStatus).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsufficientData {
    Healthy,
    Unhealthy,
    LastKnownStatus,
}

impl CheckSpec {
    /// Route 53's type name.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            CheckKind::Http(h) => match (h.tls, h.search.is_some()) {
                (false, false) => "HTTP",
                (true, false) => "HTTPS",
                (false, true) => "HTTP_STR_MATCH",
                (true, true) => "HTTPS_STR_MATCH",
            },
            CheckKind::Tcp { .. } => "TCP",
            CheckKind::Calculated { .. } => "CALCULATED",
            CheckKind::Metric(_) => "METRIC",
        }
    }

    /// What the check probes, for status output.
    pub fn target(&self) -> String {
        let endpoint = |e: &Endpoint| match (&e.ip, &e.fqdn) {
            (Some(ip), _) if ip.is_ipv6() => format!("[{ip}]:{}", e.port),
            (Some(ip), _) => format!("{ip}:{}", e.port),
            (None, Some(name)) => format!("{name}:{}", e.port),
            (None, None) => unreachable!("validated: an endpoint has an IP or a name"),
        };
        match &self.kind {
            CheckKind::Http(h) => {
                let scheme = if h.tls { "https" } else { "http" };
                format!(
                    "{scheme}://{}{} (Host {})",
                    endpoint(&h.endpoint),
                    h.path,
                    h.host
                )
            }
            CheckKind::Tcp { endpoint: e, .. } => endpoint(e),
            CheckKind::Calculated {
                children,
                threshold,
            } => format!("{threshold} of [{}]", children.join(", ")),
            CheckKind::Metric(m) => match &m.source {
                MetricSource::Query {
                    query,
                    operator,
                    threshold,
                } => format!(
                    "{}: alarm when {query} {} {threshold}",
                    m.url,
                    operator.symbol()
                ),
                MetricSource::Alert { name } => format!("{}: alert {name}", m.url),
            },
        }
    }

    /// Ids of the checks this one depends on.
    /// The address the check's definition names, if it names one (not a domain name).
    pub fn target_ip(&self) -> Option<IpAddr> {
        match &self.kind {
            CheckKind::Http(HttpCheck { endpoint, .. }) | CheckKind::Tcp { endpoint, .. } => {
                endpoint.ip
            }
            CheckKind::Metric(m) => m
                .url
                .split_once("://")
                .map(|(_, rest)| rest.split('/').next().unwrap_or(""))
                .and_then(|authority| {
                    let host = match authority.strip_prefix('[') {
                        Some(v6) => v6.split(']').next().unwrap_or(""),
                        None => authority.split(':').next().unwrap_or(""),
                    };
                    host.parse().ok()
                }),
            CheckKind::Calculated { .. } => None,
        }
    }

    pub fn children(&self) -> &[String] {
        match &self.kind {
            CheckKind::Calculated { children, .. } => children,
            _ => &[],
        }
    }
}

/// Invalid health checks: every problem found, each naming its check.
#[derive(Debug, thiserror::Error)]
#[error("invalid health checks:\n  {}", problems.join("\n  "))]
pub struct SpecError {
    pub problems: Vec<String>,
}

/// Reads a `--health-checks` JSON file.
pub fn read_json(path: &Path) -> Result<Vec<(String, HealthCheckConfig)>, SpecError> {
    let fail = |m: String| SpecError {
        problems: vec![format!("{}: {m}", path.display())],
    };
    let text = crate::files::read_text(path, crate::files::MAX_SMALL_FILE)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    let entries: Vec<HealthCheckEntry> =
        serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
    Ok(entries.into_iter().map(|e| (e.id, e.config)).collect())
}

/// Checks that `specs` are no more than `policy` allows and that the addresses they name
/// may be probed. All problems are reported.
pub fn check_targets(specs: &[CheckSpec], policy: &TargetPolicy) -> Result<(), SpecError> {
    let mut problems = Vec::new();
    if specs.len() > policy.max_checks {
        problems.push(format!(
            "{} health checks: at most {} ([health] max_checks)",
            specs.len(),
            policy.max_checks
        ));
    }
    for spec in specs {
        if let Some(Err(e)) = spec.target_ip().map(|ip| policy.check(ip)) {
            problems.push(format!("health check {}: {e}", spec.id));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SpecError { problems })
    }
}

/// Validates every check together (ids unique, calculated children exist and are not
/// calculated). All or nothing.
pub fn build(configs: Vec<(String, HealthCheckConfig)>) -> Result<Vec<CheckSpec>, SpecError> {
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    let mut specs = Vec::new();
    for (id, config) in configs {
        if id.is_empty() || id.len() > 64 {
            problems.push(format!("health check id {id:?}: 1 to 64 characters"));
            continue;
        }
        if !seen.insert(id.clone()) {
            problems.push(format!("health check {id}: defined twice"));
            continue;
        }
        match build_one(&id, &config) {
            Ok(spec) => specs.push(spec),
            Err(e) => problems.push(format!("health check {id}: {e}")),
        }
    }
    let kinds: BTreeMap<&str, bool> = specs
        .iter()
        .map(|s| {
            (
                s.id.as_str(),
                matches!(s.kind, CheckKind::Calculated { .. }),
            )
        })
        .collect();
    for spec in &specs {
        for child in spec.children() {
            match kinds.get(child.as_str()) {
                None => problems.push(format!(
                    "health check {}: child {child} is not defined",
                    spec.id
                )),
                Some(true) => problems.push(format!(
                    "health check {}: child {child} is a calculated check (they do not nest)",
                    spec.id
                )),
                Some(false) => {}
            }
        }
    }
    if problems.is_empty() {
        Ok(specs)
    } else {
        Err(SpecError { problems })
    }
}

fn build_one(id: &str, c: &HealthCheckConfig) -> Result<CheckSpec, String> {
    let failure_threshold = c.failure_threshold.unwrap_or(DEFAULT_FAILURE_THRESHOLD);
    if !super::FAILURE_THRESHOLDS.contains(&failure_threshold) {
        return Err(format!("FailureThreshold {failure_threshold} is not 1..10"));
    }
    let interval = match c.request_interval {
        None => DEFAULT_INTERVAL,
        Some(s @ 1..=30) => Duration::from_secs(u64::from(s)),
        Some(s) => return Err(format!("RequestInterval {s} is not 1..30 seconds")),
    };
    let timeout = |ms: Option<u64>, default: Duration, what: &str| match ms {
        None => Ok(default),
        Some(0) => Err(format!("{what} must be more than 0")),
        Some(ms) if Duration::from_millis(ms) > MAX_TIMEOUT => {
            Err(format!("{what} {ms} ms is more than 60 s"))
        }
        Some(ms) => Ok(Duration::from_millis(ms)),
    };
    let check_type = c.check_type.to_ascii_uppercase();
    let endpoint_fields = c.ip_address.is_some() || c.fqdn.is_some() || c.port.is_some();
    let reject = |present: bool, field: &str| {
        if present {
            Err(format!("{field} does not apply to a {check_type} check"))
        } else {
            Ok(())
        }
    };
    let kind = match check_type.as_str() {
        "HTTP" | "HTTPS" | "HTTP_STR_MATCH" | "HTTPS_STR_MATCH" => {
            let tls = check_type.starts_with("HTTPS");
            let matching = check_type.ends_with("_STR_MATCH");
            reject(!c.child_health_checks.is_empty(), "ChildHealthChecks")?;
            reject(c.metric.is_some(), "Metric")?;
            let default_port = if tls { 443 } else { 80 };
            let endpoint = endpoint(c, default_port)?;
            let search = match (&c.search_string, matching) {
                (Some(s), true) if s.is_empty() || s.len() > MAX_SEARCH_STRING => {
                    return Err(format!(
                        "SearchString must be 1..{MAX_SEARCH_STRING} characters"
                    ));
                }
                (Some(s), true) => Some(s.clone()),
                (None, true) => return Err("SearchString is required".into()),
                (Some(_), false) => {
                    return Err(format!("SearchString needs {check_type}_STR_MATCH"));
                }
                (None, false) => None,
            };
            let path = c.resource_path.clone().unwrap_or_else(|| "/".into());
            if path.len() > 255
                || path
                    .chars()
                    .any(|ch| ch.is_ascii_whitespace() || ch.is_control())
            {
                return Err(format!(
                    "ResourcePath {path:?}: at most 255 characters, no spaces"
                ));
            }
            let path = if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            };
            let base = match (&endpoint.fqdn, &endpoint.ip) {
                (Some(name), _) => name.clone(),
                (None, Some(ip)) if ip.is_ipv6() => format!("[{ip}]"),
                (None, Some(ip)) => ip.to_string(),
                (None, None) => unreachable!("endpoint() requires one"),
            };
            let host = if endpoint.port == default_port {
                base
            } else {
                format!("{base}:{}", endpoint.port)
            };
            // Route 53: EnableSNI defaults to true for HTTPS checks with a domain name.
            let sni = match (tls, c.enable_sni.unwrap_or(tls), &endpoint.fqdn) {
                (true, true, Some(name)) => Some(name.clone()),
                (false, true, _) if c.enable_sni == Some(true) => {
                    return Err("EnableSNI applies to HTTPS checks only".into());
                }
                _ => None,
            };
            CheckKind::Http(HttpCheck {
                endpoint,
                tls,
                sni,
                path,
                host,
                search,
                connect_timeout: timeout(
                    c.connect_timeout_ms,
                    DEFAULT_CONNECT_TIMEOUT,
                    "ConnectTimeoutMs",
                )?,
                status_timeout: timeout(
                    c.status_timeout_ms,
                    DEFAULT_STATUS_TIMEOUT,
                    "StatusTimeoutMs",
                )?,
                body_timeout: timeout(c.body_timeout_ms, DEFAULT_BODY_TIMEOUT, "BodyTimeoutMs")?,
            })
        }
        "TCP" => {
            reject(c.resource_path.is_some(), "ResourcePath")?;
            reject(c.search_string.is_some(), "SearchString")?;
            reject(!c.child_health_checks.is_empty(), "ChildHealthChecks")?;
            reject(c.metric.is_some(), "Metric")?;
            reject(c.status_timeout_ms.is_some(), "StatusTimeoutMs")?;
            reject(c.body_timeout_ms.is_some(), "BodyTimeoutMs")?;
            if c.port.is_none() {
                return Err("Port is required for a TCP check".into());
            }
            CheckKind::Tcp {
                endpoint: endpoint(c, 0)?,
                connect_timeout: timeout(
                    c.connect_timeout_ms,
                    DEFAULT_TCP_TIMEOUT,
                    "ConnectTimeoutMs",
                )?,
            }
        }
        "CALCULATED" => {
            reject(endpoint_fields, "IPAddress/FullyQualifiedDomainName/Port")?;
            reject(c.resource_path.is_some(), "ResourcePath")?;
            reject(c.search_string.is_some(), "SearchString")?;
            reject(c.metric.is_some(), "Metric")?;
            if c.child_health_checks.len() > MAX_CHILDREN {
                return Err(format!("more than {MAX_CHILDREN} ChildHealthChecks"));
            }
            let mut unique = HashSet::new();
            if let Some(dup) = c.child_health_checks.iter().find(|c| !unique.insert(*c)) {
                return Err(format!("child {dup} listed twice"));
            }
            if c.child_health_checks.iter().any(|child| child == id) {
                return Err("a calculated check cannot be its own child".into());
            }
            let threshold = c
                .health_threshold
                .ok_or("HealthThreshold is required for a CALCULATED check")?;
            if threshold > 256 {
                return Err(format!("HealthThreshold {threshold} is not 0..256"));
            }
            CheckKind::Calculated {
                children: c.child_health_checks.clone(),
                threshold,
            }
        }
        "METRIC" | "CLOUDWATCH_METRIC" => {
            reject(endpoint_fields, "IPAddress/FullyQualifiedDomainName/Port")?;
            reject(c.resource_path.is_some(), "ResourcePath")?;
            reject(c.search_string.is_some(), "SearchString")?;
            reject(!c.child_health_checks.is_empty(), "ChildHealthChecks")?;
            let m = c
                .metric
                .as_ref()
                .ok_or("Metric is required for a METRIC check")?;
            let url = m.prometheus_url.trim_end_matches('/').to_string();
            let uri: hyper::Uri = url
                .parse()
                .map_err(|e| format!("PrometheusUrl {url:?}: {e}"))?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(format!(
                    "PrometheusUrl {url:?}: expected http(s)://host[:port]"
                ));
            }
            let source = match (&m.query, &m.alert) {
                (Some(query), None) => {
                    let operator = match m.comparison_operator.as_deref() {
                        Some("GreaterThanOrEqualToThreshold") => Comparison::GreaterThanOrEqual,
                        Some("GreaterThanThreshold") => Comparison::GreaterThan,
                        Some("LessThanThreshold") => Comparison::LessThan,
                        Some("LessThanOrEqualToThreshold") => Comparison::LessThanOrEqual,
                        Some(other) => {
                            return Err(format!(
                                "ComparisonOperator {other:?} is not one of GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold"
                            ));
                        }
                        None => return Err("a Metric Query needs a ComparisonOperator".into()),
                    };
                    let threshold = m.threshold.ok_or("a Metric Query needs a Threshold")?;
                    if query.trim().is_empty() {
                        return Err("Metric Query is empty".into());
                    }
                    MetricSource::Query {
                        query: query.clone(),
                        operator,
                        threshold,
                    }
                }
                (None, Some(name)) => {
                    if m.comparison_operator.is_some() || m.threshold.is_some() {
                        return Err("an Alert takes no ComparisonOperator or Threshold".into());
                    }
                    if name.is_empty()
                        || !name
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
                    {
                        return Err(format!("Alert {name:?} is not a Prometheus alert name"));
                    }
                    MetricSource::Alert { name: name.clone() }
                }
                _ => return Err("Metric needs exactly one of Query and Alert".into()),
            };
            let insufficient_data = match c.insufficient_data.as_deref() {
                None | Some("LastKnownStatus") => InsufficientData::LastKnownStatus,
                Some("Healthy") => InsufficientData::Healthy,
                Some("Unhealthy") => InsufficientData::Unhealthy,
                Some(other) => {
                    return Err(format!(
                        "InsufficientDataHealthStatus {other:?} is not Healthy, Unhealthy or LastKnownStatus"
                    ));
                }
            };
            CheckKind::Metric(MetricCheck {
                url,
                source,
                insufficient_data,
                timeout: timeout(
                    c.connect_timeout_ms,
                    DEFAULT_CONNECT_TIMEOUT,
                    "ConnectTimeoutMs",
                )?,
            })
        }
        other => {
            return Err(format!(
                "Type {other:?} is not HTTP, HTTPS, HTTP_STR_MATCH, HTTPS_STR_MATCH, TCP, CALCULATED or METRIC"
            ));
        }
    };
    if !matches!(kind, CheckKind::Calculated { .. }) && c.health_threshold.is_some() {
        return Err("HealthThreshold applies to CALCULATED checks only".into());
    }
    if !matches!(kind, CheckKind::Metric(_)) && c.insufficient_data.is_some() {
        return Err("InsufficientDataHealthStatus applies to METRIC checks only".into());
    }
    let failure_threshold = match (&kind, c.failure_threshold) {
        // Like Route 53's alarm checks: the alarm already spans its periods.
        (CheckKind::Metric(_), Some(_)) => {
            return Err("FailureThreshold does not apply to a METRIC check (its alarm state counts at once)".into());
        }
        (CheckKind::Metric(_), None) => 1,
        _ => failure_threshold,
    };
    Ok(CheckSpec {
        id: id.to_string(),
        kind,
        interval,
        failure_threshold,
        inverted: c.inverted,
        disabled: c.disabled,
        regions: c.regions.clone(),
    })
}

fn endpoint(c: &HealthCheckConfig, default_port: u16) -> Result<Endpoint, String> {
    let fqdn = match &c.fqdn {
        None => None,
        Some(name) => {
            let name = name.trim_end_matches('.');
            let valid = !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
                });
            if !valid {
                return Err(format!(
                    "FullyQualifiedDomainName {name:?} is not a domain name"
                ));
            }
            Some(name.to_ascii_lowercase())
        }
    };
    if c.ip_address.is_none() && fqdn.is_none() {
        return Err("needs an IPAddress or a FullyQualifiedDomainName".into());
    }
    let port = c.port.unwrap_or(default_port);
    if port == 0 {
        return Err("Port must be 1..65535".into());
    }
    Ok(Endpoint {
        ip: c.ip_address,
        fqdn,
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Result<Vec<CheckSpec>, SpecError> {
        let entries: Vec<HealthCheckEntry> = serde_json::from_str(text).unwrap();
        build(entries.into_iter().map(|e| (e.id, e.config)).collect())
    }

    #[test]
    fn route53_json_shape_with_defaults() {
        let specs = json(
            r#"[{"Id": "web", "CallerReference": "x", "HealthCheckConfig": {
                    "Type": "HTTPS_STR_MATCH", "FullyQualifiedDomainName": "www.Example.com",
                    "IPAddress": "192.0.2.10", "ResourcePath": "health", "SearchString": "ok",
                    "RequestInterval": 10, "MeasureLatency": false, "Regions": ["us-east-1"]}},
                {"Id": "db", "HealthCheckConfig": {"Type": "TCP", "IPAddress": "2001:db8::5",
                    "Port": 5432, "FailureThreshold": 2, "Inverted": true}}]"#,
        )
        .unwrap();
        let CheckKind::Http(h) = &specs[0].kind else {
            panic!()
        };
        assert_eq!(specs[0].type_name(), "HTTPS_STR_MATCH");
        assert_eq!(specs[0].interval, Duration::from_secs(10));
        assert_eq!(specs[0].failure_threshold, 3, "Route 53's default");
        assert_eq!(h.endpoint.port, 443);
        assert_eq!(h.path, "/health");
        assert_eq!(h.host, "www.example.com", "Host = FQDN on the default port");
        assert_eq!(
            h.sni.as_deref(),
            Some("www.example.com"),
            "SNI defaults on for HTTPS"
        );
        assert_eq!(h.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(specs[1].type_name(), "TCP");
        assert!(specs[1].inverted);
        let CheckKind::Tcp {
            connect_timeout, ..
        } = specs[1].kind
        else {
            panic!()
        };
        assert_eq!(connect_timeout, DEFAULT_TCP_TIMEOUT);
    }

    #[test]
    fn host_header_carries_a_non_default_port_and_falls_back_to_the_ip() {
        let specs = build(vec![(
            "a".into(),
            HealthCheckConfig {
                check_type: "HTTP".into(),
                ip_address: Some("2001:db8::1".parse().unwrap()),
                port: Some(8080),
                ..Default::default()
            },
        )])
        .unwrap();
        let CheckKind::Http(h) = &specs[0].kind else {
            panic!()
        };
        assert_eq!(h.host, "[2001:db8::1]:8080");
        assert_eq!(h.sni, None);
    }

    #[test]
    fn every_problem_is_reported_and_nothing_is_built() {
        let err = json(
            r#"[{"Id": "a", "HealthCheckConfig": {"Type": "HTTP"}},
                {"Id": "b", "HealthCheckConfig": {"Type": "TCP", "IPAddress": "192.0.2.1"}},
                {"Id": "c", "HealthCheckConfig": {"Type": "HTTP_STR_MATCH", "IPAddress": "192.0.2.1"}},
                {"Id": "d", "HealthCheckConfig": {"Type": "HTTP", "IPAddress": "192.0.2.1", "RequestInterval": 31}},
                {"Id": "e", "HealthCheckConfig": {"Type": "HTTP", "IPAddress": "192.0.2.1", "FailureThreshold": 11}},
                {"Id": "f", "HealthCheckConfig": {"Type": "CALCULATED", "ChildHealthChecks": ["g", "nope"], "HealthThreshold": 1}},
                {"Id": "g", "HealthCheckConfig": {"Type": "CALCULATED", "ChildHealthChecks": [], "HealthThreshold": 0}},
                {"Id": "g", "HealthCheckConfig": {"Type": "TCP", "IPAddress": "192.0.2.1", "Port": 1}},
                {"Id": "h", "HealthCheckConfig": {"Type": "PING", "IPAddress": "192.0.2.1"}},
                {"Id": "i", "HealthCheckConfig": {"Type": "METRIC", "Metric": {"PrometheusUrl": "ftp://x", "Query": "up"}}},
                {"Id": "j", "HealthCheckConfig": {"Type": "HTTP", "IPAddress": "192.0.2.1", "ConnectTimeoutMs": 0}}]"#,
        )
        .unwrap_err();
        let text = err.to_string();
        for needle in [
            "health check a: needs an IPAddress or a FullyQualifiedDomainName",
            "health check b: Port is required",
            "health check c: SearchString is required",
            "health check d: RequestInterval 31",
            "health check e: FailureThreshold 11",
            "health check f: child g is a calculated check",
            "health check f: child nope is not defined",
            "health check g: defined twice",
            "health check h: Type \"PING\"",
            "health check i: PrometheusUrl",
            "health check j: ConnectTimeoutMs must be more than 0",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let r: Result<Vec<HealthCheckEntry>, _> = serde_json::from_str(
            r#"[{"Id": "a", "HealthCheckConfig": {"Type": "HTTP", "IPAdress": "192.0.2.1"}}]"#,
        );
        assert!(
            r.unwrap_err()
                .to_string()
                .contains("unknown field `IPAdress`")
        );
    }

    #[test]
    fn metric_checks() {
        let specs = json(
            r#"[{"Id": "q", "HealthCheckConfig": {"Type": "CLOUDWATCH_METRIC",
                  "InsufficientDataHealthStatus": "Unhealthy",
                  "Metric": {"PrometheusUrl": "http://127.0.0.1:9090/", "Query": "rate(errors[1m])",
                             "ComparisonOperator": "GreaterThanThreshold", "Threshold": 5}}},
                {"Id": "a", "HealthCheckConfig": {"Type": "METRIC",
                  "Metric": {"PrometheusUrl": "http://127.0.0.1:9090", "Alert": "WebDown"}}}]"#,
        )
        .unwrap();
        let CheckKind::Metric(m) = &specs[0].kind else {
            panic!()
        };
        assert_eq!(m.url, "http://127.0.0.1:9090");
        assert_eq!(m.insufficient_data, InsufficientData::Unhealthy);
        assert!(
            matches!(m.source, MetricSource::Query { operator: Comparison::GreaterThan, threshold, .. } if threshold == 5.0)
        );
        let CheckKind::Metric(m) = &specs[1].kind else {
            panic!()
        };
        assert_eq!(
            m.insufficient_data,
            InsufficientData::LastKnownStatus,
            "the default"
        );
        assert_eq!(
            m.source,
            MetricSource::Alert {
                name: "WebDown".into()
            }
        );
    }
}
