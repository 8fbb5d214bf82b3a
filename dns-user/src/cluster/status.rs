//! `dns-user cluster status`: what etcd says about a cluster, read directly (it works while
//! a node is down): the last shared write, every live node with what it serves and how long
//! its lease has left, and etcd's members.

use std::collections::BTreeMap;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, GetOptions};
use serde::Serialize;

use super::ClusterError;
use super::keys::{Key, Keys, NodeRecord};

/// A cluster, as etcd holds it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Report {
    pub prefix: String,
    /// The revision of the last shared write, and the node that made it.
    pub head: i64,
    pub head_by: String,
    pub nodes: BTreeMap<String, Node>,
    /// Observations published, per node.
    pub observations: BTreeMap<String, usize>,
    /// etcd's members: name -> client URLs.
    pub members: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Node {
    #[serde(flatten)]
    pub record: NodeRecord,
    /// Seconds the node's lease has left.
    pub lease_ttl: i64,
}

/// Reads the cluster under `prefix` from `endpoints` (the first that answers).
pub async fn read(endpoints: &[String], prefix: &str) -> Result<Report, ClusterError> {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(5));
    let mut last = None;
    for endpoint in endpoints {
        match read_from(endpoint, prefix, options.clone()).await {
            Ok(report) => return Ok(report),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| ClusterError::WatchEnded("no etcd endpoint given".into())))
}

async fn read_from(
    endpoint: &str,
    prefix: &str,
    options: ConnectOptions,
) -> Result<Report, ClusterError> {
    let keys = Keys::new(prefix);
    let mut client = Client::connect([endpoint], Some(options)).await?;
    let mut report = Report {
        prefix: prefix.to_string(),
        head: 0,
        head_by: String::new(),
        nodes: BTreeMap::new(),
        observations: BTreeMap::new(),
        members: BTreeMap::new(),
    };
    // Everything but the store's rows.
    for part in ["head", "nodes/", "obs/"] {
        let key = format!("{}{part}", keys.all());
        let options = (part != "head").then(|| GetOptions::new().with_prefix());
        let response = client.get(key, options).await?;
        for kv in response.kvs() {
            match keys.parse(kv.key()) {
                Some(Key::Head) => {
                    report.head = kv.mod_revision();
                    report.head_by = String::from_utf8_lossy(kv.value()).into();
                }
                Some(Key::Node(id)) => {
                    let Ok(record) = serde_json::from_slice::<NodeRecord>(kv.value()) else {
                        continue;
                    };
                    let lease_ttl = match kv.lease() {
                        0 => -1,
                        lease => client
                            .lease_time_to_live(lease, None)
                            .await
                            .map_or(-1, |t| t.ttl()),
                    };
                    report
                        .nodes
                        .insert(id.to_string(), Node { record, lease_ttl });
                }
                Some(Key::Observation(_, node)) => {
                    *report.observations.entry(node.to_string()).or_default() += 1;
                }
                _ => {}
            }
        }
    }
    for member in client.member_list().await?.members() {
        report
            .members
            .insert(member.name().to_string(), member.client_urls().to_vec());
    }
    Ok(report)
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "cluster {}: last shared write at revision {}{}",
            self.prefix,
            self.head,
            match self.head_by.as_str() {
                "" => String::new(),
                by => format!(" (by {by})"),
            }
        )?;
        writeln!(
            f,
            "{:<20} {:<16} {:>8} {:>10} {:>6} {:>6}  SINCE",
            "NODE", "REGION", "APPLIED", "HEAD", "LEASE", "CHECKS"
        )?;
        for (id, node) in &self.nodes {
            writeln!(
                f,
                "{:<20} {:<16} {:>8} {:>10} {:>5}s {:>6}  {}",
                id,
                node.record.region.as_deref().unwrap_or("-"),
                node.record.applied,
                node.record.head,
                node.lease_ttl,
                self.observations.get(id).copied().unwrap_or(0),
                node.record.since
            )?;
        }
        if self.nodes.is_empty() {
            writeln!(f, "(no live node)")?;
        }
        let members: Vec<String> = self
            .members
            .iter()
            .map(|(name, urls)| format!("{name} {}", urls.join(",")))
            .collect();
        write!(f, "etcd members: {}", members.join("; "))
    }
}
