//! Configuration: the TOML file (`deny_unknown_fields`), the embedded default, and CLI
//! overrides, resolved into validated [`Settings`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use serde::Deserialize;

use crate::fastpath::xdp::AttachMode;
use crate::location::{GeoInfo, Locations};
use crate::zone::records::{self, ResourceRecordSet};

/// The embedded default configuration (`cargo xtask run`, `dns-user serve` without --config).
pub const DEFAULT_CONFIG: &str = include_str!("../../examples/default.toml");
/// Files the embedded default configuration refers to, by the name it uses.
const EMBEDDED_FILES: &[(&str, &str)] = &[(
    "example.com.zone",
    include_str!("../../examples/example.com.zone"),
)];

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // Not a `source`: the message carries it, printed once in error chains.
    #[error("cannot read config: {0}")]
    Read(crate::files::FileError),
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// The config file's shape.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub xdp: XdpSection,
    #[serde(default)]
    pub metrics: MetricsSection,
    #[serde(default, rename = "zone")]
    pub zones: Vec<ZoneSection>,
    #[serde(default)]
    pub location: LocationSection,
    #[serde(default)]
    pub rrl: RrlSection,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub cluster: ClusterSection,
    #[serde(default)]
    pub dnstap: DnstapSection,
    #[serde(default)]
    pub dnssec: DnssecSection,
    /// TSIG keys (RFC 8945) queries and transfer requests may be signed with.
    #[serde(default, rename = "tsig_key")]
    pub tsig_keys: Vec<TsigKeySection>,
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default)]
    pub health: HealthSection,
    /// `[health_check.ID]`: Route 53 HealthCheckConfig fields in snake_case.
    #[serde(default, rename = "health_check")]
    pub health_checks: std::collections::BTreeMap<String, crate::health::spec::HealthCheckConfig>,
}

/// `[dnssec]`: the timings of zones signed here. The zone-signing key is rolled over by
/// pre-publication (RFC 6781 section 4.1.1.1): a new key is published beside the one that
/// signs, signs once every resolver can have it (the DNSKEY TTL and the propagation delay
/// after), and the old key stays published until every signature it made has expired from
/// caches (the zone's largest TTL and the propagation delay after).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnssecSection {
    /// How long a zone-signing key signs before the next one is published.
    #[serde(default = "default_zsk_lifetime")]
    pub zsk_lifetime_secs: u64,
    /// The DNSKEY RRset's TTL.
    #[serde(default = "default_dnskey_ttl")]
    pub dnskey_ttl_secs: u32,
    /// How long a change takes to reach every server of the zone.
    #[serde(default = "default_propagation_delay")]
    pub propagation_delay_secs: u64,
    /// The algorithm of a newly signed zone's keys: 13 (ECDSAP256SHA256, Route 53's) or 15
    /// (ED25519). A zone keeps the algorithm of the keys it has.
    #[serde(default = "default_algorithm")]
    pub algorithm: u8,
    /// Where CreateKeySigningKey may read a key the operator gives (relative to the config
    /// file's folder): a KeyManagementServiceArn `file:NAME` names a PEM PKCS#8 private key
    /// (owner-only) directly in this folder. Unset: only keys the daemon makes.
    #[serde(default)]
    pub import_dir: Option<PathBuf>,
}

fn default_algorithm() -> u8 {
    crate::signing::keys::ECDSAP256SHA256
}

fn default_zsk_lifetime() -> u64 {
    30 * 86_400
}

fn default_dnskey_ttl() -> u32 {
    3_600
}

fn default_propagation_delay() -> u64 {
    3_600
}

impl Default for DnssecSection {
    fn default() -> Self {
        DnssecSection {
            zsk_lifetime_secs: default_zsk_lifetime(),
            dnskey_ttl_secs: default_dnskey_ttl(),
            propagation_delay_secs: default_propagation_delay(),
            algorithm: default_algorithm(),
            import_dir: None,
        }
    }
}

impl DnssecSection {
    fn check(&self) -> Result<(), ConfigError> {
        crate::signing::keys::algorithm(self.algorithm)
            .map_err(|e| ConfigError::Invalid(format!("dnssec.algorithm: {e}")))?;
        if !(1..=86_400).contains(&self.dnskey_ttl_secs) {
            return Err(ConfigError::Invalid(
                "dnssec.dnskey_ttl_secs: 1..86400".into(),
            ));
        }
        let publish = u64::from(self.dnskey_ttl_secs) + self.propagation_delay_secs;
        if self.zsk_lifetime_secs < 2 * publish {
            return Err(ConfigError::Invalid(format!(
                "dnssec.zsk_lifetime_secs: at least twice the DNSKEY TTL and the propagation delay ({})",
                2 * publish
            )));
        }
        Ok(())
    }
}

/// `[health]`: what health checks may do.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    /// Networks health checks may probe although they are loopback, link-local, unspecified,
    /// broadcast, multicast or metadata addresses (refused by default).
    #[serde(default)]
    pub allow_networks: Vec<ipnet::IpNet>,
    /// Most health checks (config and API together); Route 53's default is 200.
    #[serde(default = "default_max_checks")]
    pub max_checks: usize,
    /// The addresses probes leave from (a multi-homed host's checker address, which
    /// endpoints' firewalls allow); default: the kernel's choice.
    pub source_v4: Option<std::net::Ipv4Addr>,
    pub source_v6: Option<std::net::Ipv6Addr>,
}

impl Default for HealthSection {
    fn default() -> Self {
        Self {
            allow_networks: Vec::new(),
            max_checks: default_max_checks(),
            source_v4: None,
            source_v6: None,
        }
    }
}

fn default_max_checks() -> usize {
    crate::health::targets::DEFAULT_MAX_CHECKS
}

/// Location data for latency, geolocation, geoproximity and IP-based routing, by client prefix.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LocationSection {
    /// `[[location.geo]]`: what the clients of a prefix are (most specific prefix wins).
    #[serde(default)]
    pub geo: Vec<GeoEntry>,
    /// `[[location.latency]]`: a prefix's latency to each region, in ms.
    #[serde(default)]
    pub latency: Vec<LatencyEntry>,
    /// A MaxMind DB (GeoLite2 / GeoIP2 / DB-IP, Country or City) for geo data; relative to
    /// the config file. Entries of `geo` take precedence.
    pub maxmind: Option<PathBuf>,
    /// `[location.regions]`: region name -> [latitude, longitude], for geoproximity by region.
    #[serde(default)]
    pub regions: crate::location::Regions,
    /// `[location.cidr_collections.NAME]`: location name -> CIDR blocks, for IP-based routing.
    #[serde(default)]
    pub cidr_collections:
        std::collections::HashMap<String, std::collections::HashMap<String, Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoEntry {
    pub prefix: String,
    pub continent: Option<String>,
    pub country: Option<String>,
    pub subdivision: Option<String>,
    /// [latitude, longitude].
    pub coordinates: Option<[f64; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyEntry {
    pub prefix: String,
    pub regions: std::collections::HashMap<String, f64>,
}

impl LocationSection {
    fn build(&self, base_dir: &Path) -> Result<Locations, ConfigError> {
        let net = |s: &str, what: &str| -> Result<ipnet::IpNet, ConfigError> {
            s.parse::<ipnet::IpNet>()
                .map(|n| n.trunc())
                .map_err(|e| ConfigError::Invalid(format!("{what}: bad prefix {s:?}: {e}")))
        };
        let mut out = Locations::default();
        if let Some(path) = &self.maxmind {
            let path = base_dir.join(path);
            let reader = maxminddb::Reader::open_readfile(&path).map_err(|e| {
                ConfigError::Invalid(format!("location.maxmind {}: {e}", path.display()))
            })?;
            out.maxmind = Some(std::sync::Arc::new(reader));
        }
        for g in &self.geo {
            let up = |s: &Option<String>| s.as_ref().map(|s| s.to_ascii_uppercase());
            out.geo.push((
                net(&g.prefix, "location.geo")?,
                GeoInfo {
                    continent: up(&g.continent),
                    country: up(&g.country),
                    subdivision: up(&g.subdivision),
                    coordinates: g.coordinates.map(|[lat, lon]| (lat, lon)),
                },
            ));
        }
        for l in &self.latency {
            if l.regions.values().any(|ms| !ms.is_finite() || *ms < 0.0) {
                return Err(ConfigError::Invalid(format!(
                    "location.latency {}: latencies must be >= 0",
                    l.prefix
                )));
            }
            out.latency
                .push((net(&l.prefix, "location.latency")?, l.regions.clone()));
        }
        for (collection, locations) in &self.cidr_collections {
            let mut built = std::collections::HashMap::new();
            for (location, blocks) in locations {
                let what = format!("location.cidr_collections.{collection}.{location}");
                let mut nets = Vec::new();
                for b in blocks {
                    let n = net(b, &what)?;
                    // Route 53: IPv4 /1-/24, IPv6 /1-/48.
                    let max = if n.addr().is_ipv4() { 24 } else { 48 };
                    if n.prefix_len() == 0 || n.prefix_len() > max {
                        return Err(ConfigError::Invalid(format!(
                            "{what}: {b} must be /1../{max}"
                        )));
                    }
                    nets.push(n);
                }
                built.insert(location.clone(), nets);
            }
            out.cidr.collections.insert(collection.clone(), built);
        }
        Ok(out)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// UDP+TCP addresses to answer on.
    #[serde(default = "default_listen")]
    pub listen: Vec<SocketAddr>,
    /// UDP payload size advertised in OPT (RFC 6891); at least 512.
    #[serde(default = "default_edns_udp_size")]
    pub edns_udp_size: u16,
    /// Seconds an idle TCP connection is kept (RFC 7766 section 6.2.3).
    #[serde(default = "default_tcp_idle")]
    pub tcp_idle_timeout_secs: u64,
    /// Most concurrent TCP connections.
    #[serde(default = "default_tcp_max")]
    pub tcp_max_connections: usize,
    /// Most concurrent TCP connections from one client (an IPv4 address, an IPv6 /64).
    #[serde(default = "default_tcp_max_per_client")]
    pub tcp_max_per_client: usize,
    /// UDP worker threads (one SO_REUSEPORT socket each) per address; 0 = one per CPU.
    #[serde(default)]
    pub udp_workers: usize,
    /// Client networks allowed zone transfers (AXFR over TCP); empty = none (REFUSED).
    #[serde(default)]
    pub transfer_allow: Vec<ipnet::IpNet>,
    /// TSIG keys (`[[tsig_key]]` names) one of which must sign a transfer request; empty =
    /// unsigned requests from `transfer_allow` are served too.
    #[serde(default)]
    pub transfer_keys: Vec<String>,
    /// How the SOA serial follows API changes: `keep` (Route 53), `increment`, `unixtime`.
    /// Secondaries (transfers, NOTIFY) need one of the last two to see changes.
    #[serde(default)]
    pub serial_policy: crate::zone::records::SerialPolicy,
    /// Secondaries sent a NOTIFY (RFC 1996) when a zone's serial changes, `ADDR:PORT`.
    #[serde(default)]
    pub notify: Vec<SocketAddr>,
    /// The `[[tsig_key]]` NOTIFY messages are signed with; unset = unsigned.
    #[serde(default)]
    pub notify_key: Option<String>,
    /// The name of a catalog zone (RFC 9432) listing every hosted zone, for secondaries that
    /// provision zones from it (e.g. `catalog.invalid.`); unset = none.
    #[serde(default)]
    pub catalog_zone: Option<String>,
    /// The name servers hosted zones delegate to (Route 53's delegation set): the apex NS of
    /// a zone created through the API or declared without an SOA, and its SOA's MNAME (the
    /// first); what GetHostedZone reports. Empty: `ns1.<zone>`.
    #[serde(default)]
    pub name_servers: Vec<String>,
    /// The user the daemon runs as once it has bound its sockets' capabilities (see
    /// [`crate::privileges`]); unset = the user that started it. The store, its directory
    /// and the files read on a reload must be that user's to read and write.
    #[serde(default)]
    pub user: Option<String>,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            edns_udp_size: default_edns_udp_size(),
            tcp_idle_timeout_secs: default_tcp_idle(),
            tcp_max_connections: default_tcp_max(),
            tcp_max_per_client: default_tcp_max_per_client(),
            udp_workers: 0,
            transfer_allow: Vec::new(),
            transfer_keys: Vec::new(),
            serial_policy: Default::default(),
            notify: Vec::new(),
            notify_key: None,
            catalog_zone: None,
            name_servers: Vec::new(),
            user: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XdpSection {
    /// Interfaces to attach the fast path to.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// native | skb | off.
    #[serde(default = "default_mode")]
    pub mode: AttachMode,
    /// Capacity of each answer map buffer, in (name, type) entries (and of each variant
    /// buffer); 0 = a quarter more than the zones need at start (in steps of 4096).
    #[serde(default = "default_max_entries")]
    pub max_entries: u32,
    /// XDP stops answering (passes everything up) if the daemon has not refreshed its
    /// heartbeat for this long (crash, hang); 0 = never.
    #[serde(default = "default_heartbeat_timeout_ms")]
    pub heartbeat_timeout_ms: u64,
    /// A directory on bpffs where links and maps are pinned so that a restart after a crash
    /// takes them over (see [`crate::fastpath::pins`]); relative to the config's directory.
    #[serde(default)]
    pub pin_dir: Option<PathBuf>,
}

impl Default for XdpSection {
    fn default() -> Self {
        Self {
            interfaces: Vec::new(),
            mode: default_mode(),
            max_entries: default_max_entries(),
            heartbeat_timeout_ms: default_heartbeat_timeout_ms(),
            pin_dir: None,
        }
    }
}

fn default_heartbeat_timeout_ms() -> u64 {
    2000
}

/// Response rate limiting (see [`crate::rrl`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RrlSection {
    /// UDP responses per second per client prefix (IPv4 /24, IPv6 /56); 0 = off.
    #[serde(default)]
    pub responses_per_second: u32,
    /// Responses a prefix may get at once beyond the rate.
    #[serde(default = "default_rrl_burst")]
    pub burst: u32,
    /// Every n-th limited response is sent truncated (TC=1) instead of dropped; 0 = drop all.
    #[serde(default = "default_rrl_slip")]
    pub slip: u32,
}

impl Default for RrlSection {
    fn default() -> Self {
        Self {
            responses_per_second: 0,
            burst: default_rrl_burst(),
            slip: default_rrl_slip(),
        }
    }
}

fn default_rrl_burst() -> u32 {
    5
}

fn default_rrl_slip() -> u32 {
    2
}

/// `[[tsig_key]]`: a shared secret (see [`crate::server::tsig`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsigKeySection {
    /// The key's name, as the other side knows it (e.g. `xfr-key.`).
    pub name: String,
    /// `hmac-sha256` (default), `hmac-sha384` or `hmac-sha512`.
    #[serde(default = "default_tsig_algorithm")]
    pub algorithm: String,
    /// The secret, base64 (as `tsig-keygen` and `keymgr -t` print it).
    pub secret: String,
}

fn default_tsig_algorithm() -> String {
    "hmac-sha256".into()
}

/// `[dnstap]`: query logs (see [`crate::dnstap`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnstapSection {
    /// A file (relative to the config file), or `unix:PATH` for a reader's socket; unset =
    /// no query log.
    pub sink: Option<String>,
    /// The server's name in every message; default: the host name.
    pub identity: Option<String>,
    #[serde(default = "default_true")]
    pub log_queries: bool,
    #[serde(default = "default_true")]
    pub log_responses: bool,
    /// One XDP answer in this many is logged (the userspace server logs every query); 0 =
    /// none.
    #[serde(default)]
    pub xdp_sample: u32,
}

impl Default for DnstapSection {
    fn default() -> Self {
        Self {
            sink: None,
            identity: None,
            log_queries: true,
            log_responses: true,
            xdp_sample: 0,
        }
    }
}

/// `[store]`: the durable store of hosted zones, record sets, health checks and changes.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// The store file (relative to the config file's folder); default
    /// `/var/lib/dns-user/store.redb`.
    pub path: Option<PathBuf>,
    /// The key that seals the DNSSEC private keys in the store (relative to the config file's
    /// folder): 32 bytes in base64, readable by its owner alone; made when the first signing
    /// key is. Default: beside the store, `<store>.dnssec-key`. Every node of a cluster needs
    /// the same file.
    pub dnssec_key_file: Option<PathBuf>,
}

/// `[cluster]`: serve as one node of several that share hosted zones, changes and health
/// through etcd. Without endpoints (the default) the node is alone and its store is the
/// source of truth.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// etcd endpoints, `http://HOST:PORT`.
    #[serde(default)]
    pub etcd: Vec<String>,
    /// This node's name in the cluster (default: the host name): 1..64 of `A-Za-z0-9._-`.
    pub node_id: Option<String>,
    /// Where this node is (a Route 53 health-check region such as `us-east-1`, or any name).
    pub region: Option<String>,
    /// The etcd key prefix every key of this cluster starts with.
    #[serde(default = "default_cluster_prefix")]
    pub prefix: String,
    /// Seconds a node's lease lives without a keepalive: how long the others wait for a node
    /// that stopped before INSYNC stops waiting for it.
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl_secs: u64,
    /// Most rows one change may write (etcd's `--max-txn-ops` must allow as many, plus one).
    #[serde(default = "default_max_txn_ops")]
    pub max_txn_ops: usize,
    /// A check is healthy when more than this fraction of the nodes that probe it say so
    /// (Route 53's rule: 0.18).
    #[serde(default = "default_healthy_fraction")]
    pub healthy_fraction: f64,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            etcd: Vec::new(),
            node_id: None,
            region: None,
            prefix: default_cluster_prefix(),
            lease_ttl_secs: default_lease_ttl(),
            max_txn_ops: default_max_txn_ops(),
            healthy_fraction: default_healthy_fraction(),
        }
    }
}

fn default_healthy_fraction() -> f64 {
    0.18
}

fn default_cluster_prefix() -> String {
    "/dns-user/v1".into()
}

fn default_lease_ttl() -> u64 {
    10
}

fn default_max_txn_ops() -> usize {
    2048
}

/// A cluster node's settings (see [`ClusterSection`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSettings {
    pub endpoints: Vec<String>,
    pub node_id: String,
    pub region: Option<String>,
    pub prefix: String,
    pub lease_ttl: std::time::Duration,
    pub max_txn_ops: usize,
    pub healthy_fraction: f64,
}

impl ClusterSection {
    /// `None` without endpoints (`--etcd` replaces `etcd`, `--node-id` and `--node-region`
    /// the others).
    fn build(&self, overrides: &Overrides) -> Result<Option<ClusterSettings>, ConfigError> {
        let endpoints = if overrides.etcd.is_empty() {
            self.etcd.clone()
        } else {
            overrides.etcd.clone()
        };
        if endpoints.is_empty() {
            return Ok(None);
        }
        let invalid = |m: String| ConfigError::Invalid(format!("cluster: {m}"));
        for e in &endpoints {
            let rest = e
                .strip_prefix("http://")
                .ok_or_else(|| invalid(format!("etcd endpoint {e:?} is not http://HOST:PORT")))?;
            if rest.is_empty() || rest.contains('/') {
                return Err(invalid(format!(
                    "etcd endpoint {e:?} is not http://HOST:PORT"
                )));
            }
        }
        let node_id = match overrides.node_id.clone().or(self.node_id.clone()) {
            Some(id) => id,
            None => nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
        };
        if node_id.is_empty()
            || node_id.len() > 64
            || !node_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(invalid(format!(
                "node_id {node_id:?}: 1..64 characters of A-Z, a-z, 0-9, '.', '_' and '-'"
            )));
        }
        let region = overrides.node_region.clone().or(self.region.clone());
        if let Some(r) = &region
            && (r.is_empty() || r.len() > 64 || r.chars().any(|c| c.is_control() || c == '/'))
        {
            return Err(invalid(format!("region {r:?}: 1..64 printable characters")));
        }
        let prefix = self.prefix.trim_end_matches('/').to_string();
        if !prefix.starts_with('/') || prefix.len() < 2 {
            return Err(invalid(format!(
                "prefix {:?} must start with '/' and name something",
                self.prefix
            )));
        }
        if !(2..=300).contains(&self.lease_ttl_secs) {
            return Err(invalid("lease_ttl_secs must be 2..300".into()));
        }
        if !(128..=100_000).contains(&self.max_txn_ops) {
            return Err(invalid("max_txn_ops must be 128..100000".into()));
        }
        if !(0.0..1.0).contains(&self.healthy_fraction) {
            return Err(invalid(
                "healthy_fraction must be at least 0 and less than 1".into(),
            ));
        }
        Ok(Some(ClusterSettings {
            endpoints,
            node_id,
            region,
            prefix,
            lease_ttl: std::time::Duration::from_secs(self.lease_ttl_secs),
            max_txn_ops: self.max_txn_ops,
            healthy_fraction: self.healthy_fraction,
        }))
    }
}

/// The store used when neither `[store] path` nor `--store` names one.
pub const DEFAULT_STORE: &str = "/var/lib/dns-user/store.redb";

/// `[api]`: the HTTP control API (hosted zones, change batches, health checks).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Address of the API; port 0 picks a free one (logged). Default 127.0.0.1:8053.
    #[serde(default = "default_api_listen")]
    pub listen: SocketAddr,
    /// Serve the API at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Access key id -> secret access key: every API request must then be signed with one
    /// (AWS Signature Version 4, as aws-cli, boto3 and Terraform sign). Required off loopback.
    #[serde(default)]
    pub access_keys: BTreeMap<String, String>,
    /// A file of more access keys, one `ACCESS_KEY_ID SECRET_ACCESS_KEY` per line (`#`
    /// comments); refused when group or others may read it.
    pub access_keys_file: Option<PathBuf>,
    /// Host names clients reach the API by, besides IP literals and `localhost`; any other
    /// `Host` is refused (DNS rebinding).
    #[serde(default)]
    pub server_names: Vec<String>,
    /// Connections served at once (API and metrics listeners each).
    #[serde(default = "default_api_connections")]
    pub max_connections: usize,
    /// Time a client has to send a request's headers, and again its body (ms).
    #[serde(default = "default_api_read_timeout_ms")]
    pub read_timeout_ms: u64,
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            listen: default_api_listen(),
            enabled: true,
            access_keys: BTreeMap::new(),
            access_keys_file: None,
            server_names: Vec::new(),
            max_connections: default_api_connections(),
            read_timeout_ms: default_api_read_timeout_ms(),
        }
    }
}

fn default_api_connections() -> usize {
    crate::http::Limits::default().max_connections
}

fn default_api_read_timeout_ms() -> u64 {
    crate::http::Limits::default().read_timeout.as_millis() as u64
}

fn default_api_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8053))
}

fn default_true() -> bool {
    true
}

/// The API's resolved settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiSettings {
    pub listen: SocketAddr,
    /// Access key id -> secret; empty: requests need no signature.
    pub keys: crate::route53::sigv4::Keys,
    /// Extra host names (lower case).
    pub server_names: Vec<String>,
    pub limits: crate::http::Limits,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Address of the Prometheus text endpoint (`/metrics`); none = off.
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneSection {
    /// Zone apex, e.g. "example.com.".
    pub origin: String,
    /// RFC 1035 zone file; relative to the config file's directory. Optional when the zone's
    /// records (SOA included) are all given as `[[zone.record]]`.
    pub file: Option<PathBuf>,
    /// Records given in the config, added to the file's.
    #[serde(default, rename = "record")]
    pub records: Vec<RecordSection>,
}

/// One `[[zone.record]]`: an RRset with `ttl` and `values`, or a Route 53 alias.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSection {
    /// Owner: relative to the origin, `@`, or absolute (ending in a dot).
    pub name: String,
    /// Type mnemonic or TYPEnnn.
    #[serde(rename = "type")]
    pub rtype: String,
    /// TTL of a non-alias RRset (an alias takes its target's).
    pub ttl: Option<u32>,
    /// RDATA of each record, in zone-file syntax.
    #[serde(default)]
    pub values: Vec<String>,
    /// Route 53 alias: answer with the target's records of this type.
    pub alias: Option<AliasSection>,
    /// Route 53's SetIdentifier: required with a routing policy, absent for simple records.
    pub set_id: Option<String>,
    /// Route 53's HealthCheckId.
    pub health_check: Option<String>,
    /// Weighted routing: 0..=255.
    pub weight: Option<u8>,
    /// Failover routing: "PRIMARY" or "SECONDARY".
    pub failover: Option<String>,
    /// Latency routing: the region of this record set.
    pub region: Option<String>,
    /// Geolocation routing.
    pub geolocation: Option<GeolocationSection>,
    /// Geoproximity routing.
    pub geoproximity: Option<GeoproximitySection>,
    /// Multivalue answer routing.
    pub multivalue: Option<bool>,
    /// IP-based routing: a location of a CIDR collection ("*" = default).
    pub cidr: Option<CidrSection>,
}

/// `{ continent = "EU" }`, `{ country = "US" }`, `{ country = "US", subdivision = "WA" }` or
/// `{ default = true }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeolocationSection {
    pub continent: Option<String>,
    pub country: Option<String>,
    pub subdivision: Option<String>,
    #[serde(default)]
    pub default: bool,
}

/// `{ lat = 47.61, lon = -122.33, bias = 10 }` or `{ region = "us-west-2", bias = 10 }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoproximitySection {
    /// Coordinates of the resource...
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// ... or a region named in `[location.regions]`.
    pub region: Option<String>,
    #[serde(default)]
    pub bias: i8,
}

/// `{ collection = "offices", location = "berlin" }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CidrSection {
    pub collection: String,
    pub location: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasSection {
    /// A name in the same zone with records (or an alias) of the same type.
    pub target: String,
    /// Route 53's EvaluateTargetHealth; acts once health checks exist.
    #[serde(default)]
    pub evaluate_target_health: bool,
}

impl RecordSection {
    /// This `[[zone.record]]` of zone `origin` in the one record-set form (Route 53's
    /// `ResourceRecordSet`, as stored): names absolute, relative ones under `origin`.
    pub fn to_record_set(&self, origin: &Name) -> ResourceRecordSet {
        let origin = crate::zone::absolute_lower(&origin.to_ascii());
        let full = |n: &str| -> String {
            if n == "@" {
                origin.clone()
            } else if n.ends_with('.') || origin == "." {
                crate::zone::absolute_lower(n)
            } else {
                crate::zone::absolute_lower(&format!("{n}.{origin}"))
            }
        };
        records::normalize(ResourceRecordSet {
            name: full(&self.name),
            rtype: self.rtype.clone(),
            set_identifier: self.set_id.clone(),
            weight: self.weight.map(i64::from),
            region: self.region.clone(),
            geo_location: self.geolocation.as_ref().map(|g| records::GeoLocationJson {
                continent_code: g.continent.clone(),
                country_code: if g.default {
                    Some("*".into())
                } else {
                    g.country.clone()
                },
                subdivision_code: g.subdivision.clone(),
            }),
            geo_proximity_location: self
                .geoproximity
                .as_ref()
                .map(|g| records::GeoProximityJson {
                    aws_region: g.region.clone(),
                    coordinates: match (g.lat, g.lon) {
                        (Some(lat), Some(lon)) => Some(records::CoordinatesJson {
                            latitude: lat.to_string(),
                            longitude: lon.to_string(),
                        }),
                        _ => None,
                    },
                    bias: (g.bias != 0).then_some(i64::from(g.bias)),
                }),
            failover: self.failover.clone(),
            multi_value_answer: self.multivalue,
            cidr_routing_config: self.cidr.as_ref().map(|c| records::CidrJson {
                collection_id: c.collection.clone(),
                location_name: c.location.clone(),
            }),
            ttl: self.ttl.map(i64::from),
            resource_records: (!self.values.is_empty()).then(|| {
                self.values
                    .iter()
                    .map(|v| records::ValueJson { value: v.clone() })
                    .collect()
            }),
            alias_target: self.alias.as_ref().map(|a| records::AliasJson {
                hosted_zone_id: None,
                dns_name: full(&a.target),
                evaluate_target_health: a.evaluate_target_health,
            }),
            health_check_id: self.health_check.clone(),
        })
    }
}

fn default_listen() -> Vec<SocketAddr> {
    vec![
        "127.0.0.1:5300".parse().expect("valid"),
        "[::1]:5300".parse().expect("valid"),
    ]
}
fn default_edns_udp_size() -> u16 {
    1232
}
fn default_tcp_max_per_client() -> usize {
    64
}

fn default_tcp_idle() -> u64 {
    10
}
fn default_tcp_max() -> usize {
    1024
}
fn default_mode() -> AttachMode {
    AttachMode::Native
}
fn default_max_entries() -> u32 {
    0 // sized to the zones at start
}

/// Where a zone's text comes from.
#[derive(Clone, Debug)]
pub enum ZoneSource {
    File(PathBuf),
    /// Shipped inside the binary (the embedded default config's example zone).
    Embedded {
        name: &'static str,
        text: &'static str,
    },
}

/// One zone to serve.
#[derive(Clone, Debug)]
pub struct ZoneSpec {
    pub origin: Name,
    /// The zone file, if any.
    pub source: Option<ZoneSource>,
    /// Records from the config file.
    pub records: Vec<RecordSection>,
    /// The config file the records come from (for error messages).
    pub config: PathBuf,
    /// Route 53 change batches (JSON) whose record sets the zone also holds.
    pub route53: Vec<PathBuf>,
    /// `server.name_servers` (absolute, lower case): the default SOA and NS name them.
    pub name_servers: Vec<String>,
}

/// CLI overrides applied on top of the config file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub zone_files: Vec<(String, PathBuf)>,
    /// `--route53 ORIGIN=PATH`: Route 53 change batch JSON files.
    pub route53_files: Vec<(String, PathBuf)>,
    pub listen: Vec<SocketAddr>,
    pub interfaces: Vec<String>,
    pub mode: Option<AttachMode>,
    pub max_entries: Option<u32>,
    pub heartbeat_timeout_ms: Option<u64>,
    /// `--xdp-pin-dir DIR`: replaces `xdp.pin_dir`.
    pub pin_dir: Option<PathBuf>,
    /// `--rrl-rate N`: replaces `rrl.responses_per_second`.
    pub rrl_rate: Option<u32>,
    pub edns_udp_size: Option<u16>,
    pub metrics: Option<SocketAddr>,
    /// `--health-checks PATH`: JSON lists of Route 53 health checks.
    pub health_check_files: Vec<PathBuf>,
    /// `--health-allow CIDR`: added to `health.allow_networks`.
    pub health_allow_networks: Vec<ipnet::IpNet>,
    /// `--store PATH`: replaces `store.path`.
    pub store: Option<PathBuf>,
    /// `--api ADDR:PORT`: replaces `api.listen`.
    pub api_listen: Option<SocketAddr>,
    /// `--no-api`: no control API.
    pub no_api: bool,
    /// `--user NAME`: replaces `server.user`.
    pub user: Option<String>,
    /// `--dnstap SINK`: replaces `dnstap.sink`.
    pub dnstap: Option<String>,
    /// `--dnstap-xdp-sample N`: replaces `dnstap.xdp_sample`.
    pub dnstap_xdp_sample: Option<u32>,
    /// `--etcd URL,...`: replaces `cluster.etcd`.
    pub etcd: Vec<String>,
    /// `--node-id NAME`: replaces `cluster.node_id`.
    pub node_id: Option<String>,
    /// `--node-region REGION`: replaces `cluster.region`.
    pub node_region: Option<String>,
}

/// Validated settings the daemon runs with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: Vec<SocketAddr>,
    pub edns_udp_size: u16,
    pub tcp_idle_timeout_secs: u64,
    pub tcp_max_connections: usize,
    pub tcp_max_per_client: usize,
    /// Resolved: at least 1.
    pub udp_workers: usize,
    pub interfaces: Vec<String>,
    pub mode: AttachMode,
    pub max_entries: u32,
    /// See [`XdpSection::heartbeat_timeout_ms`]; `None` = off.
    pub heartbeat_timeout: Option<std::time::Duration>,
    /// See [`XdpSection::pin_dir`]; `None` = nothing pinned.
    pub pin_dir: Option<PathBuf>,
    pub metrics: Option<SocketAddr>,
    pub zones: Vec<ZoneSpec>,
    /// Location data for the routing policies.
    pub locations: Locations,
    /// Named regions' coordinates, for geoproximity by region in change batches.
    pub regions: crate::location::Regions,
    /// Health checks (config tables, then `--health-checks` files), validated together.
    pub health_checks: Vec<crate::health::spec::CheckSpec>,
    /// The same checks as written, for the store.
    pub health_check_configs: Vec<(String, crate::health::spec::HealthCheckConfig)>,
    /// What health checks may probe, and how many there may be.
    pub health: crate::health::targets::TargetPolicy,
    /// The store file (a cluster node's cache of the cluster's store).
    pub store: PathBuf,
    /// See [`StoreSection::dnssec_key_file`].
    pub dnssec_key_file: PathBuf,
    /// The timings of zones signed here.
    pub dnssec: DnssecSection,
    /// One node of a cluster; `None` = alone.
    pub cluster: Option<ClusterSettings>,
    /// The control API; `None` = off.
    pub api: Option<ApiSettings>,
    /// `server.name_servers`, absolute and lower case.
    pub name_servers: Vec<String>,
    /// Response rate limiting; `None` = off.
    pub rrl: Option<crate::rrl::RrlConfig>,
    /// Client networks allowed zone transfers.
    pub transfer_allow: Vec<ipnet::IpNet>,
    /// Keys one of which must sign a transfer request (empty: none needed).
    pub transfer_keys: Vec<hickory_proto::rr::LowerName>,
    /// TSIG keys.
    pub tsig_keys: Vec<crate::server::tsig::KeySpec>,
    /// See [`ServerSection::serial_policy`].
    pub serial_policy: crate::zone::records::SerialPolicy,
    /// Secondaries to NOTIFY, and the key to sign with.
    pub notify: Vec<SocketAddr>,
    pub notify_key: Option<crate::server::tsig::KeySpec>,
    /// See [`ServerSection::catalog_zone`].
    pub catalog_zone: Option<Name>,
    /// `server.user`, looked up.
    pub run_as: Option<crate::privileges::RunAs>,
    /// Query logs; `None` = off.
    pub dnstap: Option<crate::dnstap::Settings>,
}

impl Settings {
    /// The UDP port XDP answers on (all listen addresses share it when XDP is on).
    pub fn port(&self) -> u16 {
        self.listen.first().map_or(53, SocketAddr::port)
    }

    /// True if the fast path is to be attached anywhere.
    pub fn xdp_enabled(&self) -> bool {
        self.mode != AttachMode::Off && !self.interfaces.is_empty()
    }
}

/// Reads the config at `path` (or the embedded default) and applies `overrides`.
pub fn resolve(path: Option<&Path>, overrides: &Overrides) -> Result<Settings, ConfigError> {
    let config_path = path.map_or_else(
        || PathBuf::from("<embedded default config>"),
        Path::to_path_buf,
    );
    let (file, base_dir, embedded) = match path {
        Some(p) => {
            let text = crate::files::read_text(p, crate::files::MAX_SMALL_FILE)
                .map_err(ConfigError::Read)?;
            let file = parse(&text, p)?;
            (
                file,
                p.parent().unwrap_or(Path::new(".")).to_path_buf(),
                false,
            )
        }
        None => {
            let mut file = parse(DEFAULT_CONFIG, Path::new("<embedded default config>"))?;
            if !overrides.zone_files.is_empty() || !overrides.route53_files.is_empty() {
                // Zones given on the command line replace the embedded example zone.
                file.zones.clear();
            }
            (file, PathBuf::new(), true)
        }
    };
    settings_from(file, &config_path, &base_dir, embedded, overrides)
}

/// Validates config `text` as if it were the file `path` (relative paths in it are resolved
/// against `path`'s folder); nothing is read but what the text names.
pub fn resolve_text(
    text: &str,
    path: &Path,
    overrides: &Overrides,
) -> Result<Settings, ConfigError> {
    let file = parse(text, path)?;
    let base_dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    settings_from(file, path, &base_dir, false, overrides)
}

fn settings_from(
    file: ConfigFile,
    config_path: &Path,
    base_dir: &Path,
    embedded: bool,
    overrides: &Overrides,
) -> Result<Settings, ConfigError> {
    let config_path = config_path.to_path_buf();
    let mut zones = Vec::new();
    for z in &file.zones {
        let source = match &z.file {
            None => None,
            Some(f) if embedded => {
                let name = f.to_string_lossy();
                let (name, text) = EMBEDDED_FILES
                    .iter()
                    .find(|(n, _)| *n == name)
                    .ok_or_else(|| ConfigError::Invalid(format!("no embedded file {name}")))?;
                Some(ZoneSource::Embedded { name, text })
            }
            Some(f) => Some(ZoneSource::File(base_dir.join(f))),
        };
        if source.is_none() && z.records.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "{}: zone {} has neither a file nor records",
                config_path.display(),
                z.origin
            )));
        }
        push_zone(
            &mut zones,
            &z.origin,
            source,
            z.records.clone(),
            &config_path,
        )?;
    }
    for (origin, file) in &overrides.zone_files {
        let source = Some(ZoneSource::File(file.clone()));
        push_zone(&mut zones, origin, source, Vec::new(), &config_path)?;
    }
    for (origin, file) in &overrides.route53_files {
        let mut name = Name::from_ascii(origin)
            .map_err(|e| ConfigError::Invalid(format!("zone origin {origin:?}: {e}")))?;
        name.set_fqdn(true);
        if !zones.iter().any(|z| z.origin == name) {
            push_zone(&mut zones, origin, None, Vec::new(), file)?;
        }
        let zone = zones
            .iter_mut()
            .find(|z| z.origin == name)
            .expect("just ensured");
        zone.route53.push(file.clone());
    }

    let mut checks: Vec<(String, crate::health::spec::HealthCheckConfig)> =
        file.health_checks.into_iter().collect();
    for path in &overrides.health_check_files {
        checks.extend(
            crate::health::spec::read_json(path)
                .map_err(|e| ConfigError::Invalid(e.to_string()))?,
        );
    }
    let health = crate::health::targets::TargetPolicy {
        allow_networks: file
            .health
            .allow_networks
            .iter()
            .chain(&overrides.health_allow_networks)
            .copied()
            .collect(),
        max_checks: file.health.max_checks,
        source_v4: file.health.source_v4,
        source_v6: file.health.source_v6,
    };
    let health_checks = crate::health::spec::build(checks.clone())
        .and_then(|specs| crate::health::spec::check_targets(&specs, &health).map(|()| specs))
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    let store = match (&overrides.store, &file.store.path) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => base_dir.join(p),
        (None, None) => PathBuf::from(DEFAULT_STORE),
    };
    file.dnssec.check()?;
    let dnssec_key_file = match &file.store.dnssec_key_file {
        Some(p) => base_dir.join(p),
        None => store.with_extension("dnssec-key"),
    };
    let dnstap = match overrides.dnstap.as_deref().or(file.dnstap.sink.as_deref()) {
        None => None,
        Some(text) => {
            let sink = match crate::dnstap::Sink::parse(text).map_err(ConfigError::Invalid)? {
                crate::dnstap::Sink::File(p) if overrides.dnstap.is_none() => {
                    crate::dnstap::Sink::File(base_dir.join(p))
                }
                other => other,
            };
            let identity = match &file.dnstap.identity {
                Some(i) => i.clone(),
                None => nix::unistd::gethostname()
                    .ok()
                    .and_then(|h| h.into_string().ok())
                    .unwrap_or_default(),
            };
            Some(crate::dnstap::Settings {
                sink,
                identity,
                queries: file.dnstap.log_queries,
                responses: file.dnstap.log_responses,
                xdp_sample: overrides
                    .dnstap_xdp_sample
                    .unwrap_or(file.dnstap.xdp_sample),
            })
        }
    };
    let mut tsig_keys = Vec::new();
    for k in &file.tsig_keys {
        let name = Name::from_ascii(k.name.trim_end_matches('.').to_string() + ".")
            .map_err(|e| ConfigError::Invalid(format!("tsig_key {:?}: {e}", k.name)))?;
        let algorithm = match k.algorithm.to_ascii_lowercase().trim_end_matches('.') {
            "hmac-sha256" => TsigAlgorithm::HmacSha256,
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            other => {
                return Err(ConfigError::Invalid(format!(
                    "tsig_key {:?}: algorithm {other:?} is not supported (hmac-sha256, hmac-sha384, hmac-sha512)",
                    k.name
                )));
            }
        };
        let secret = data_encoding::BASE64
            .decode(k.secret.trim().as_bytes())
            .map_err(|e| {
                ConfigError::Invalid(format!("tsig_key {:?}: secret is not base64: {e}", k.name))
            })?;
        tsig_keys.push(crate::server::tsig::KeySpec {
            name,
            algorithm,
            secret,
        });
    }
    crate::server::tsig::Keys::new(&tsig_keys).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    // A `[[tsig_key]]` named by another setting.
    let key_named = |field: &str, k: &str| {
        let name = Name::from_ascii(k.trim_end_matches('.').to_string() + ".")
            .map_err(|e| ConfigError::Invalid(format!("{field} {k:?}: {e}")))?;
        let lower = hickory_proto::rr::LowerName::new(&name);
        tsig_keys
            .iter()
            .find(|t| hickory_proto::rr::LowerName::new(&t.name) == lower)
            .ok_or_else(|| ConfigError::Invalid(format!("{field}: {k:?} is not a [[tsig_key]]")))
    };
    let transfer_keys = file
        .server
        .transfer_keys
        .iter()
        .map(|k| {
            key_named("server.transfer_keys", k).map(|t| hickory_proto::rr::LowerName::new(&t.name))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let notify_key = file
        .server
        .notify_key
        .as_deref()
        .map(|k| key_named("server.notify_key", k).cloned())
        .transpose()?;
    let api = if overrides.no_api || !file.api.enabled {
        None
    } else {
        let mut keys: crate::route53::sigv4::Keys =
            file.api.access_keys.clone().into_iter().collect();
        if let Some(f) = &file.api.access_keys_file {
            let path = base_dir.join(f);
            let text = crate::files::read_secret(&path)
                .map_err(|e| ConfigError::Invalid(format!("api.access_keys_file: {e}")))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let mut words = line.split_whitespace();
                let (Some(id), Some(secret), None) = (words.next(), words.next(), words.next())
                else {
                    return Err(ConfigError::Invalid(format!(
                        "api.access_keys_file {} line {}: expected ACCESS_KEY_ID SECRET_ACCESS_KEY",
                        path.display(),
                        n + 1
                    )));
                };
                keys.insert(id.to_string(), secret.to_string());
            }
        }
        if keys
            .iter()
            .any(|(id, secret)| id.is_empty() || secret.is_empty())
        {
            return Err(ConfigError::Invalid(
                "api: an access key id or secret is empty".into(),
            ));
        }
        if file.api.max_connections == 0 || file.api.read_timeout_ms == 0 {
            return Err(ConfigError::Invalid(
                "api: max_connections and read_timeout_ms must be more than 0".into(),
            ));
        }
        Some(ApiSettings {
            listen: overrides.api_listen.unwrap_or(file.api.listen),
            keys,
            server_names: file
                .api
                .server_names
                .iter()
                .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            limits: crate::http::Limits {
                max_connections: file.api.max_connections,
                read_timeout: std::time::Duration::from_millis(file.api.read_timeout_ms),
                ..crate::http::Limits::default()
            },
        })
    };

    let mut name_servers = Vec::new();
    for ns in &file.server.name_servers {
        let name = crate::zone::canonical_name(ns)
            .ok()
            .filter(|n| Name::from_ascii(n).is_ok() && n != ".")
            .ok_or_else(|| {
                ConfigError::Invalid(format!("server.name_servers: {ns:?} is not a domain name"))
            })?;
        name_servers.push(name);
    }
    for zone in &mut zones {
        zone.name_servers = name_servers.clone();
    }
    let settings = Settings {
        listen: if overrides.listen.is_empty() {
            file.server.listen
        } else {
            overrides.listen.clone()
        },
        edns_udp_size: overrides.edns_udp_size.unwrap_or(file.server.edns_udp_size),
        tcp_idle_timeout_secs: file.server.tcp_idle_timeout_secs,
        tcp_max_connections: file.server.tcp_max_connections,
        tcp_max_per_client: file.server.tcp_max_per_client,
        udp_workers: match file.server.udp_workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        },
        interfaces: if overrides.interfaces.is_empty() {
            file.xdp.interfaces
        } else {
            overrides.interfaces.clone()
        },
        mode: overrides.mode.unwrap_or(file.xdp.mode),
        max_entries: overrides.max_entries.unwrap_or(file.xdp.max_entries),
        heartbeat_timeout: match overrides
            .heartbeat_timeout_ms
            .unwrap_or(file.xdp.heartbeat_timeout_ms)
        {
            0 => None,
            ms => Some(std::time::Duration::from_millis(ms)),
        },
        pin_dir: overrides
            .pin_dir
            .clone()
            .or(file.xdp.pin_dir.map(|d| base_dir.join(d))),
        metrics: overrides.metrics.or(file.metrics.listen),
        zones,
        name_servers,
        locations: file.location.build(base_dir)?,
        regions: file.location.regions.clone(),
        health_checks,
        health_check_configs: checks,
        health,
        store,
        dnssec_key_file,
        dnssec: DnssecSection {
            import_dir: file.dnssec.import_dir.as_ref().map(|d| base_dir.join(d)),
            ..file.dnssec.clone()
        },
        cluster: file.cluster.build(overrides)?,
        api,
        transfer_allow: file.server.transfer_allow.clone(),
        transfer_keys,
        tsig_keys,
        serial_policy: file.server.serial_policy,
        notify: file.server.notify.clone(),
        notify_key,
        catalog_zone: file
            .server
            .catalog_zone
            .as_deref()
            .map(|n| {
                crate::zone::canonical_name(n)
                    .ok()
                    .and_then(|n| Name::from_ascii(n).ok())
                    .filter(|n| !n.is_root())
                    .ok_or_else(|| {
                        ConfigError::Invalid(format!(
                            "server.catalog_zone: {n:?} is not a domain name"
                        ))
                    })
            })
            .transpose()?,
        dnstap,
        run_as: overrides
            .user
            .as_deref()
            .or(file.server.user.as_deref())
            .map(crate::privileges::RunAs::lookup)
            .transpose()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?,
        rrl: match overrides.rrl_rate.unwrap_or(file.rrl.responses_per_second) {
            0 => None,
            rate => Some(crate::rrl::RrlConfig {
                responses_per_second: rate,
                burst: file.rrl.burst,
                slip: file.rrl.slip,
            }),
        },
    };
    validate(&settings)?;
    Ok(settings)
}

fn parse(text: &str, path: &Path) -> Result<ConfigFile, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })
}

fn push_zone(
    zones: &mut Vec<ZoneSpec>,
    origin: &str,
    source: Option<ZoneSource>,
    records: Vec<RecordSection>,
    config: &Path,
) -> Result<(), ConfigError> {
    let mut name = Name::from_ascii(origin)
        .map_err(|e| ConfigError::Invalid(format!("zone origin {origin:?}: {e}")))?;
    name.set_fqdn(true);
    zones.retain(|z| z.origin != name);
    zones.push(ZoneSpec {
        origin: name,
        source,
        records,
        config: config.to_path_buf(),
        route53: Vec::new(),
        name_servers: Vec::new(),
    });
    Ok(())
}

fn validate(s: &Settings) -> Result<(), ConfigError> {
    let invalid = |m: String| Err(ConfigError::Invalid(m));
    if s.listen.is_empty() {
        return invalid("server.listen is empty: nothing to answer on".into());
    }
    if s.edns_udp_size < dns_common::MIN_UDP_PAYLOAD {
        return invalid(format!(
            "server.edns_udp_size {} is below 512 (RFC 6891 section 6.2.5)",
            s.edns_udp_size
        ));
    }
    if s.tcp_max_connections == 0 || s.tcp_max_per_client == 0 || s.tcp_idle_timeout_secs == 0 {
        return invalid(
            "server.tcp_max_connections, tcp_max_per_client and tcp_idle_timeout_secs must be > 0"
                .into(),
        );
    }
    if s.heartbeat_timeout
        .is_some_and(|t| t < std::time::Duration::from_millis(100))
    {
        return invalid("xdp.heartbeat_timeout_ms must be 0 (off) or at least 100".into());
    }
    if s.xdp_enabled() && s.listen.iter().any(|a| a.port() != s.port()) {
        return invalid(
            "with XDP on, every server.listen address must use the same port (XDP answers one port)"
                .into(),
        );
    }
    if let Some(api) = &s.api
        && !api.listen.ip().is_loopback()
        && api.keys.is_empty()
    {
        return invalid(format!(
            "api.listen {} is not a loopback address: set api.access_keys or api.access_keys_file",
            api.listen
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[cluster]` with endpoint and node name, `key = value` replacing or adding a line,
    /// built with no command-line overrides.
    fn cluster_with(key: &str, value: &str) -> Result<Option<ClusterSettings>, String> {
        let mut lines = vec![
            ("etcd", "[\"http://127.0.0.1:2379\"]"),
            ("node_id", "\"n1\""),
        ];
        lines.retain(|(k, _)| *k != key);
        lines.push((key, value));
        let text: String = lines.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        toml::from_str::<ClusterSection>(&text)
            .map_err(|e| e.to_string())?
            .build(&Overrides::default())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn cluster_settings_refuse_what_a_node_could_not_use_with_a_clear_error() {
        let ok = cluster_with("prefix", "\"/dns/\"").unwrap().unwrap();
        assert_eq!(ok.prefix, "/dns", "a trailing '/' is dropped");
        assert_eq!(ok.node_id, "n1");
        assert_eq!((ok.max_txn_ops, ok.healthy_fraction), (2048, 0.18));
        let ok = cluster_with("region", "\"eu-west-1\"").unwrap().unwrap();
        assert_eq!(ok.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            cluster_with("etcd", "[]").unwrap(),
            None,
            "no endpoints: alone"
        );
        for (key, value, says) in [
            ("etcd", "[\"127.0.0.1:2379\"]", "is not http://HOST:PORT"),
            (
                "etcd",
                "[\"https://127.0.0.1:2379\"]",
                "is not http://HOST:PORT",
            ),
            ("etcd", "[\"http://\"]", "is not http://HOST:PORT"),
            ("etcd", "[\"http://h:1/v3\"]", "is not http://HOST:PORT"),
            ("node_id", "\"a b\"", "node_id"),
            ("node_id", "\"\"", "node_id"),
            ("node_id", "\"n/1\"", "node_id"),
            ("region", "\"\"", "region"),
            ("region", "\"a/b\"", "region"),
            ("prefix", "\"dns\"", "prefix"),
            ("prefix", "\"/\"", "prefix"),
            ("lease_ttl_secs", "1", "lease_ttl_secs"),
            ("lease_ttl_secs", "301", "lease_ttl_secs"),
            ("lease_ttl_secs", "-5", "lease_ttl_secs"),
            ("max_txn_ops", "127", "max_txn_ops"),
            ("max_txn_ops", "100001", "max_txn_ops"),
            ("healthy_fraction", "1.0", "healthy_fraction"),
            ("healthy_fraction", "-0.1", "healthy_fraction"),
            ("healthy_fraction", "nan", "healthy_fraction"),
            ("bogus", "1", "bogus"),
        ] {
            let err = cluster_with(key, value).expect_err(value);
            assert!(err.contains(says), "{key} = {value}: {err}");
        }
    }

    #[test]
    fn embedded_default_resolves() {
        let s = resolve(None, &Overrides::default()).unwrap();
        assert_eq!(s.zones.len(), 1);
        assert_eq!(s.zones[0].origin.to_string(), "example.com.");
        assert_eq!(s.edns_udp_size, 1232);
    }

    #[test]
    fn unknown_fields_are_rejected_with_the_file_name() {
        let dir = std::env::temp_dir().join(format!("dns-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bad.toml");
        std::fs::write(&p, "[server]\nlisten = [\"127.0.0.1:53\"]\nbogus = 1\n").unwrap();
        let err = resolve(Some(&p), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.toml") && err.contains("bogus"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dnstap_sinks_are_files_beside_the_config_or_unix_sockets() {
        let dir = std::env::temp_dir().join(format!("dns-config-tap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("tap.toml");
        std::fs::write(
            &p,
            "[dnstap]\nsink = \"q.dnstap\"\nidentity = \"ns9\"\nxdp_sample = 50\nlog_responses = false\n",
        )
        .unwrap();
        let s = resolve(Some(&p), &Overrides::default()).unwrap();
        let tap = s.dnstap.unwrap();
        assert_eq!(tap.sink, crate::dnstap::Sink::File(dir.join("q.dnstap")));
        assert_eq!((tap.identity.as_str(), tap.xdp_sample), ("ns9", 50));
        assert!(tap.queries && !tap.responses);
        // The flags replace the file's; a socket is `unix:PATH`.
        let o = Overrides {
            dnstap: Some("unix:/run/tap.sock".into()),
            dnstap_xdp_sample: Some(0),
            ..Default::default()
        };
        let tap = resolve(Some(&p), &o).unwrap().dnstap.unwrap();
        assert_eq!(tap.sink, crate::dnstap::Sink::Unix("/run/tap.sock".into()));
        assert_eq!(tap.xdp_sample, 0);
        for bad in ["unix:", ""] {
            let o = Overrides {
                dnstap: Some(bad.into()),
                ..Default::default()
            };
            let err = resolve(None, &o).unwrap_err().to_string();
            assert!(err.contains("no path"), "{bad:?}: {err}");
        }
        assert!(
            resolve(None, &Overrides::default())
                .unwrap()
                .dnstap
                .is_none()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tsig_keys_are_checked_and_transfer_keys_must_name_one() {
        let dir = std::env::temp_dir().join(format!("dns-config-tsig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("tsig.toml");
        let resolve_text = |text: &str| {
            std::fs::write(&p, text).unwrap();
            resolve(Some(&p), &Overrides::default()).map_err(|e| e.to_string())
        };
        let key = "[[tsig_key]]\nname = \"xfr\"\nsecret = \"c2VjcmV0\"\n";
        let s = resolve_text(&format!("[server]\ntransfer_keys = [\"XFR.\"]\n{key}")).unwrap();
        assert_eq!(s.tsig_keys.len(), 1);
        assert_eq!(s.tsig_keys[0].secret, b"secret");
        assert_eq!(s.transfer_keys[0].to_string(), "xfr.");
        let s = resolve_text(&format!(
            "[server]\nserial_policy = \"unixtime\"\nnotify = [\"192.0.2.53:53\"]\nnotify_key = \"xfr\"\n{key}"
        ))
        .unwrap();
        assert_eq!(
            s.serial_policy,
            crate::zone::records::SerialPolicy::Unixtime
        );
        assert_eq!(s.notify, ["192.0.2.53:53".parse().unwrap()]);
        assert_eq!(s.notify_key.unwrap().secret, b"secret");
        for (text, expected) in [
            (
                "[server]\ntransfer_keys = [\"other\"]\n".to_string() + key,
                "is not a [[tsig_key]]",
            ),
            (key.replace("c2VjcmV0", "not base64!"), "not base64"),
            (
                key.to_string() + "algorithm = \"hmac-md5\"\n",
                "not supported",
            ),
            (format!("{key}{key}"), "defined twice"),
            (
                "[server]\nnotify_key = \"nope\"\n".to_string() + key,
                "notify_key: \"nope\" is not a [[tsig_key]]",
            ),
            (
                "[server]\nserial_policy = \"sometimes\"\n".to_string(),
                "unknown variant",
            ),
        ] {
            let err = resolve_text(&text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn xdp_requires_one_port() {
        let o = Overrides {
            listen: vec![
                "127.0.0.1:53".parse().unwrap(),
                "127.0.0.1:54".parse().unwrap(),
            ],
            interfaces: vec!["lo".into()],
            ..Default::default()
        };
        let err = resolve(None, &o).unwrap_err().to_string();
        assert!(err.contains("same port"), "{err}");
    }
}
