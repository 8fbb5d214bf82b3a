//! Prometheus text exposition at `/metrics`: XDP per-CPU counters (summed) and userspace
//! response counters.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use aya::Ebpf;
use aya::maps::{MapData, PerCpuArray};
use dns_common::{COUNTERS_MAP, Counter};

use crate::health::monitor::Monitor;
use crate::server::ServerStats;

/// Reads the XDP program's counters.
pub struct XdpCounters {
    map: PerCpuArray<MapData, u64>,
}

impl XdpCounters {
    /// Takes the counter map out of a loaded object.
    pub fn take(ebpf: &mut Ebpf) -> anyhow::Result<Self> {
        let map = ebpf
            .take_map(COUNTERS_MAP)
            .ok_or_else(|| anyhow::anyhow!("the eBPF object has no map {COUNTERS_MAP}"))?;
        Ok(Self {
            map: PerCpuArray::try_from(map)?,
        })
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
}

/// Renders the Prometheus text format.
pub fn render(source: &MetricsSource) -> String {
    let mut out = String::new();
    if let Some(xdp) = &source.xdp {
        let counters = xdp.lock().expect("metrics lock").read();
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
    if let Some(monitor) = &source.health {
        out.push_str(
            "# HELP dns_health_check_healthy Effective status of each health check (1 healthy).\n",
        );
        out.push_str("# TYPE dns_health_check_healthy gauge\n");
        for check in monitor.status() {
            let _ = writeln!(
                out,
                "dns_health_check_healthy{{id=\"{}\",type=\"{}\"}} {}",
                escape(&check.id),
                check.check_type,
                u8::from(check.status == "Healthy")
            );
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

/// Serves `/metrics` and `/health-checks` (JSON: every check's status and recent
/// observations) on `addr` until the task is dropped.
pub async fn serve(addr: SocketAddr, source: Arc<MetricsSource>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {addr}: {e}"))?;
    axum::serve(listener, router::<()>(source)).await?;
    Ok(())
}

/// The `/metrics` and `/health-checks` routes (also part of the API).
pub fn router<S: Clone + Send + Sync + 'static>(source: Arc<MetricsSource>) -> Router<S> {
    let health = source.health.clone();
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let source = source.clone();
                async move { render(&source) }
            }),
        )
        .route(
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
