//! Prometheus text exposition at `/metrics`: XDP per-CPU counters (summed) and userspace
//! response counters.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use aya::Ebpf;
use aya::maps::{MapData, PerCpuArray};
use dns_common::{COUNTERS_MAP, Counter, ZONE_HITS_MAP};

use crate::health::monitor::Monitor;
use crate::server::ServerStats;

/// Reads the XDP program's counters.
pub struct XdpCounters {
    map: PerCpuArray<MapData, u64>,
    /// Answers per zone slot.
    zones: PerCpuArray<MapData, u64>,
}

impl XdpCounters {
    /// Takes the counter map out of a loaded object.
    pub fn take(ebpf: &mut Ebpf) -> anyhow::Result<Self> {
        let mut take = |name: &str| {
            ebpf.take_map(name)
                .ok_or_else(|| anyhow::anyhow!("the eBPF object has no map {name}"))
        };
        Ok(Self {
            map: PerCpuArray::try_from(take(COUNTERS_MAP)?)?,
            zones: PerCpuArray::try_from(take(ZONE_HITS_MAP)?)?,
        })
    }

    /// Answers sent for zone `slot`, summed over CPUs.
    pub fn zone(&self, slot: u32) -> u64 {
        self.zones
            .get(&slot, 0)
            .map(|per_cpu| per_cpu.iter().sum())
            .unwrap_or(0)
    }

    /// Each counter summed over CPUs.
    pub fn read(&self) -> Vec<(Counter, u64)> {
        Counter::ALL
            .iter()
            .map(|&c| {
                let total = self
                    .map
                    .get(&(c as u32), 0)
                    .map(|per_cpu| per_cpu.iter().sum())
                    .unwrap_or(0);
                (c, total)
            })
            .collect()
    }
}

/// What the endpoint reports.
pub struct MetricsSource {
    pub xdp: Option<Mutex<XdpCounters>>,
    pub server: Arc<ServerStats>,
    /// Health checks, also served as JSON at `/health-checks`.
    pub health: Option<Arc<Monitor>>,
    /// Hosted zones and change-to-INSYNC times.
    pub control: Option<Arc<crate::control::Control>>,
    /// Map occupancy.
    pub published: Option<Arc<crate::publish::Published>>,
    /// Query-log counts.
    pub dnstap: Option<Arc<crate::dnstap::Stats>>,
    /// This node of a cluster.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// Renders the Prometheus text format.
pub fn render(source: &MetricsSource) -> String {
    let mut out = String::new();
    let mut xdp_answered = None;
    if let Some(xdp) = &source.xdp {
        let counters = xdp.lock().expect("metrics lock").read();
        xdp_answered = Some(
            counters
                .iter()
                .filter(|(c, _)| matches!(c, Counter::Answered | Counter::Slipped))
                .map(|(_, n)| n)
                .sum::<u64>(),
        );
        out.push_str(
            "# HELP dns_xdp_packets_total Packets seen by the XDP program, by action and reason.\n",
        );
        out.push_str("# TYPE dns_xdp_packets_total counter\n");
        for (c, n) in counters {
            let action = c.action();
            let _ = writeln!(
                out,
                "dns_xdp_packets_total{{action=\"{action}\",reason=\"{}\"}} {n}",
                c.name()
            );
        }
    }
    out.push_str("# HELP dns_userspace_responses_total Responses sent by the userspace server.\n");
    out.push_str("# TYPE dns_userspace_responses_total counter\n");
    for (transport, rcode, n) in source.server.responses() {
        let _ = writeln!(
            out,
            "dns_userspace_responses_total{{transport=\"{transport}\",rcode=\"{rcode}\"}} {n}"
        );
    }
    out.push_str(
        "# HELP dns_userspace_dropped_total Inputs the userspace server did not answer.\n",
    );
    out.push_str("# TYPE dns_userspace_dropped_total counter\n");
    let _ = writeln!(
        out,
        "dns_userspace_dropped_total {}",
        source.server.dropped()
    );
    // One family across both paths: responses by path and RCODE (XDP only sends NOERROR).
    out.push_str("# HELP dns_responses_total Responses sent, by answer path and RCODE.\n");
    out.push_str("# TYPE dns_responses_total counter\n");
    if let Some(n) = xdp_answered {
        let _ = writeln!(
            out,
            "dns_responses_total{{path=\"xdp\",rcode=\"NOERROR\"}} {n}"
        );
    }
    let mut by_rcode: std::collections::BTreeMap<String, u64> = Default::default();
    for (_, rcode, n) in source.server.responses() {
        *by_rcode.entry(rcode.to_string()).or_default() += n;
    }
    for (rcode, n) in by_rcode {
        let _ = writeln!(
            out,
            "dns_responses_total{{path=\"userspace\",rcode=\"{rcode}\"}} {n}"
        );
    }
    if let Some(control) = &source.control {
        out.push_str("# HELP dns_zone_queries_total Queries answered per hosted zone, by path.\n");
        out.push_str("# TYPE dns_zone_queries_total counter\n");
        let xdp = source.xdp.as_ref().map(|x| x.lock().expect("metrics lock"));
        for (zone, slot, userspace) in control.zone_counts() {
            let zone = escape(&zone);
            if let Some(x) = &xdp {
                let _ = writeln!(
                    out,
                    "dns_zone_queries_total{{path=\"xdp\",zone=\"{zone}\"}} {}",
                    x.zone(slot)
                );
            }
            let _ = writeln!(
                out,
                "dns_zone_queries_total{{path=\"userspace\",zone=\"{zone}\"}} {userspace}"
            );
        }
        drop(xdp);
        out.push_str("# HELP dns_hosted_zone_record_sets Record sets per hosted zone.\n");
        out.push_str("# TYPE dns_hosted_zone_record_sets gauge\n");
        for (zone, sets) in control.zone_sizes() {
            let _ = writeln!(
                out,
                "dns_hosted_zone_record_sets{{zone=\"{}\"}} {sets}",
                escape(&zone)
            );
        }
        let (buckets, count, sum) = control.insync.snapshot();
        out.push_str(
            "# HELP dns_change_insync_seconds From a change's acceptance to both answer paths serving it.\n",
        );
        out.push_str("# TYPE dns_change_insync_seconds histogram\n");
        for (le, n) in buckets {
            let _ = writeln!(out, "dns_change_insync_seconds_bucket{{le=\"{le}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "dns_change_insync_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(out, "dns_change_insync_seconds_sum {sum}");
        let _ = writeln!(out, "dns_change_insync_seconds_count {count}");
    }
    if let (Some(cluster), Some(control)) = (&source.cluster, &source.control) {
        let status = cluster.status(control);
        let gauge = |out: &mut String, name: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            &mut out,
            "dns_cluster_connected",
            "1 while this node has a session with etcd.",
            u8::from(status.connected).to_string(),
        );
        gauge(
            &mut out,
            "dns_cluster_head_revision",
            "The etcd revision of the last shared write this node holds.",
            status.head.to_string(),
        );
        gauge(
            &mut out,
            "dns_cluster_applied_sequence",
            "Every change up to this sequence is served by this node.",
            status.applied.to_string(),
        );
        let newest = status.nodes.values().map(|n| n.applied).max().unwrap_or(0);
        gauge(
            &mut out,
            "dns_cluster_lag_changes",
            "Changes the most advanced live node serves that this one does not yet.",
            newest.saturating_sub(status.applied).to_string(),
        );
        out.push_str("# HELP dns_cluster_node_applied_sequence Each live node's applied sequence, as last seen.\n");
        out.push_str("# TYPE dns_cluster_node_applied_sequence gauge\n");
        for (node, record) in &status.nodes {
            let _ = writeln!(
                out,
                "dns_cluster_node_applied_sequence{{node=\"{}\"}} {}",
                escape(node),
                record.applied
            );
        }
    }
    if let Some(published) = &source.published {
        let occupancy = published.occupancy();
        if !occupancy.is_empty() {
            out.push_str("# HELP dns_xdp_map_entries Entries in the active XDP answer maps.\n");
            out.push_str("# TYPE dns_xdp_map_entries gauge\n");
            for (map, n, _) in &occupancy {
                let _ = writeln!(out, "dns_xdp_map_entries{{map=\"{map}\"}} {n}");
            }
            out.push_str("# HELP dns_xdp_map_capacity Capacity of each XDP answer map.\n");
            out.push_str("# TYPE dns_xdp_map_capacity gauge\n");
            for (map, _, cap) in &occupancy {
                let _ = writeln!(out, "dns_xdp_map_capacity{{map=\"{map}\"}} {cap}");
            }
        }
    }
    if let Some(tap) = &source.dnstap {
        use std::sync::atomic::Ordering::Relaxed;
        out.push_str("# HELP dns_dnstap_messages_total dnstap messages written, by answer path.\n");
        out.push_str("# TYPE dns_dnstap_messages_total counter\n");
        for (path, n) in ["xdp", "userspace"].iter().zip(&tap.written) {
            let _ = writeln!(
                out,
                "dns_dnstap_messages_total{{path=\"{path}\"}} {}",
                n.load(Relaxed)
            );
        }
        out.push_str(
            "# HELP dns_dnstap_dropped_total Queries not logged: queue full or sink unavailable.\n",
        );
        out.push_str("# TYPE dns_dnstap_dropped_total counter\n");
        let _ = writeln!(
            out,
            "dns_dnstap_dropped_total {}",
            tap.dropped.load(Relaxed)
        );
    }
    if let Some(monitor) = &source.health {
        let statuses = monitor.status();
        out.push_str(
            "# HELP dns_health_check_healthy Effective status of each health check (1 healthy).\n",
        );
        out.push_str("# TYPE dns_health_check_healthy gauge\n");
        for check in &statuses {
            let _ = writeln!(
                out,
                "dns_health_check_healthy{{id=\"{}\",type=\"{}\"}} {}",
                escape(&check.id),
                check.check_type,
                u8::from(check.status == "Healthy")
            );
        }
        out.push_str("# HELP dns_health_check_probe_seconds Duration of health-check probes.\n");
        out.push_str("# TYPE dns_health_check_probe_seconds summary\n");
        for check in &statuses {
            let id = escape(&check.id);
            let _ = writeln!(
                out,
                "dns_health_check_probe_seconds_sum{{id=\"{id}\"}} {}",
                check.latency.sum_secs
            );
            let _ = writeln!(
                out,
                "dns_health_check_probe_seconds_count{{id=\"{id}\"}} {}",
                check.latency.count
            );
        }
        out.push_str(
            "# HELP dns_health_check_last_probe_seconds Duration of each check's last probe.\n",
        );
        out.push_str("# TYPE dns_health_check_last_probe_seconds gauge\n");
        for check in &statuses {
            if let Some(last) = check.latency.last_secs {
                let _ = writeln!(
                    out,
                    "dns_health_check_last_probe_seconds{{id=\"{}\"}} {last}",
                    escape(&check.id)
                );
            }
        }
    }
    out
}

/// A label value in the text format: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Binds the metrics address.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {addr}: {e}"))
}

/// Serves `/metrics` and `/health-checks` (JSON: every check's status and recent
/// observations) on `listener` (bound by [`bind`], or handed over by a daemon being replaced)
/// until the task is dropped.
///
/// `/health-checks` (targets and probe results) is served here only behind the API's access
/// keys (SigV4), or, when the API has none, only on a loopback address: the metrics listener
/// may face a network the API does not. `/metrics` needs no signature.
pub async fn serve(
    listener: tokio::net::TcpListener,
    source: Arc<MetricsSource>,
    api: Option<Arc<crate::http::Guard>>,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let open = crate::http::Guard {
        server_names: api
            .as_ref()
            .map(|g| g.server_names.clone())
            .unwrap_or_default(),
        ..crate::http::Guard::default()
    };
    let mut routes = router::<()>(source.clone(), false);
    let health_guard = match api {
        Some(g) if !g.keys.is_empty() => Some(g),
        _ if addr.ip().is_loopback() => Some(Arc::new(open.clone())),
        _ => None,
    };
    if let Some(g) = health_guard {
        routes = routes.merge(
            health_router(source)
                .route_layer(axum::middleware::from_fn_with_state(g, crate::http::guard)),
        );
    }
    let routes = crate::http::guarded(routes, Arc::new(open));
    crate::http::serve(listener, routes, crate::http::Limits::default()).await
}

/// The `/health-checks` route: every check's target and last results.
fn health_router<S: Clone + Send + Sync + 'static>(source: Arc<MetricsSource>) -> Router<S> {
    let health = source.health.clone();
    Router::new().route(
        "/health-checks",
        get(move || {
            let health = health.clone();
            async move {
                let status = health.map(|m| m.status()).unwrap_or_default();
                axum::Json(status)
            }
        }),
    )
}

/// The `/metrics` route, and `/health-checks` with `health` (the API serves both).
pub fn router<S: Clone + Send + Sync + 'static>(
    source: Arc<MetricsSource>,
    health: bool,
) -> Router<S> {
    let metrics = Router::new().route("/metrics", {
        let source = source.clone();
        get(move || {
            let source = source.clone();
            async move { render(&source) }
        })
    });
    if health {
        metrics.merge(health_router(source))
    } else {
        metrics
    }
}
