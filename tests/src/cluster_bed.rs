//! Nodes of a cluster, each in network namespaces of its own with XDP, and the etcd members
//! they share in one more namespace, joined by a bridge. For the cluster tests with XDP,
//! `cargo xtask run --cluster N` and the cluster benchmark.
//!
//! ```text
//!   netns <tag>-e: bridge 198.51.100.1/24, etcd members on :2379, :2381, :2383
//!        │ veth                 │ veth                 │ veth
//!   node 0: testbed             node 1: testbed        node 2: testbed
//!   server ns 198.51.100.10     198.51.100.11          198.51.100.12
//!   (dns-user, XDP on its server veth; dig from its client ns at 192.0.2.1)
//! ```
//!
//! Only documentation prefixes, and only inside namespaces made here.

use std::time::Duration;

use anyhow::Context;

use crate::etcd::Etcd;
use crate::{Process, Side, Testbed, run_in_ns};

/// The etcd namespace's address on the bridge.
pub const HUB: std::net::Ipv4Addr = std::net::Ipv4Addr::new(198, 51, 100, 1);

/// N testbeds, an etcd namespace bridging them, and etcd.
pub struct ClusterBed {
    pub beds: Vec<Testbed>,
    pub hub_ns: String,
    pub etcd: Option<Etcd>,
    pub dir: std::path::PathBuf,
    pub daemons: Vec<Option<Process>>,
    /// Each node's end of its link to the etcd namespace.
    links: Vec<String>,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = std::process::Command::new("ip").args(args).output()?;
    if !out.status.success() {
        anyhow::bail!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

impl ClusterBed {
    /// Creates the namespaces for `n` nodes and starts `members` etcd members. Needs root.
    pub fn create(tag: &str, n: usize, members: usize) -> anyhow::Result<ClusterBed> {
        let id = std::process::id() % 100_000;
        let hub_ns = format!("{tag}-{id}-e");
        let dir = std::env::temp_dir().join(format!("dnsx-cluster-{tag}-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut bed = ClusterBed {
            beds: Vec::new(),
            hub_ns,
            etcd: None,
            dir,
            daemons: Vec::new(),
            links: Vec::new(),
        };
        let hub = bed.hub_ns.clone();
        ip(&["netns", "add", &hub]).context("creating the etcd namespace (needs root)")?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&[
            "-n",
            &hub,
            "addr",
            "add",
            &format!("{HUB}/24"),
            "dev",
            "br0",
        ])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for i in 0..n {
            let node = Testbed::create(&format!("{tag}{i}"))?;
            let (outer, inner) = (format!("dxe{id}{i}"), format!("dxn{id}{i}"));
            ip(&[
                "link",
                "add",
                &outer,
                "netns",
                &hub,
                "type",
                "veth",
                "peer",
                "name",
                &inner,
                "netns",
                &node.server_ns,
            ])?;
            ip(&["-n", &hub, "link", "set", &outer, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &outer, "up"])?;
            let address = format!("198.51.100.{}/24", 10 + i);
            ip(&[
                "-n",
                &node.server_ns,
                "addr",
                "add",
                &address,
                "dev",
                &inner,
            ])?;
            ip(&["-n", &node.server_ns, "link", "set", &inner, "up"])?;
            bed.beds.push(node);
            bed.daemons.push(None);
            bed.links.push(inner);
        }
        let ports: Vec<(u16, u16)> = (0..members as u16)
            .map(|i| (2379 + 2 * i, 2380 + 2 * i))
            .collect();
        bed.etcd = Some(Etcd::start_at(&bed.dir, HUB.into(), Some(&hub), &ports)?);
        Ok(bed)
    }

    /// The etcd endpoints (reachable from every node's server namespace).
    pub fn endpoints(&self) -> String {
        self.etcd.as_ref().map(Etcd::endpoints).unwrap_or_default()
    }

    /// Starts node `i` (`dns-user serve` with XDP in `mode` on its testbed, node id `n<i>`,
    /// the config `config` with its `[cluster]` section pointing at this cluster) and waits
    /// until it serves.
    pub fn start_node(
        &mut self,
        i: usize,
        bin: &str,
        mode: &str,
        config: &str,
        echo: bool,
    ) -> anyhow::Result<()> {
        let path = self.dir.join(format!("n{i}.toml"));
        std::fs::write(&path, config)?;
        let path = path.to_str().context("path")?.to_string();
        let (endpoints, id) = (self.endpoints(), format!("n{i}"));
        let args = ["--config", &path, "--etcd", &endpoints, "--node-id", &id];
        // A restart: the client veth's pass program is still attached.
        let daemon = if self.beds[i].started {
            let bed = &mut self.beds[i];
            let mut all = bed.serve_args(mode);
            all.extend(args.iter().map(|a| a.to_string()));
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            let daemon = bed.spawn(Side::Server, bin, &all, echo)?;
            daemon.wait_for(bed, "ready:", Duration::from_secs(30))?;
            daemon
        } else {
            self.beds[i].start_service(bin, mode, &args, echo)?
        };
        // It takes changes once it has joined.
        daemon.wait_for(
            &mut self.beds[i],
            "joined at revision",
            Duration::from_secs(20),
        )?;
        self.daemons[i] = Some(daemon);
        Ok(())
    }

    /// A control API call (boto3's shape) to node `i`, from inside its namespace.
    pub fn call(
        &self,
        i: usize,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let bed = &self.beds[i];
        let curl = |args: &[&str]| bed.output(Side::Server, "curl", args);
        let body = body.map(|b| b.to_string());
        crate::api::call(
            &curl,
            method,
            &format!("http://127.0.0.1:8053/2013-04-01{path}"),
            body.as_deref(),
        )
    }

    /// Adds `address` (198.51.100.0/24) to the etcd namespace's bridge: a service there, such
    /// as a health check's endpoint, is reachable from every node.
    pub fn hub_address(&self, address: std::net::Ipv4Addr) -> anyhow::Result<()> {
        ip(&[
            "-n",
            &self.hub_ns,
            "addr",
            "add",
            &format!("{address}/24"),
            "dev",
            "br0",
        ])
    }

    /// Makes `address` unreachable from node `i` (a blackhole route) or reachable again.
    pub fn reach(
        &self,
        i: usize,
        address: std::net::Ipv4Addr,
        reachable: bool,
    ) -> anyhow::Result<()> {
        let verb = if reachable { "del" } else { "add" };
        ip(&[
            "-n",
            &self.beds[i].server_ns,
            "route",
            verb,
            "blackhole",
            &format!("{address}/32"),
        ])
    }

    /// Cuts node `i` off from etcd (its link down) or links it again.
    pub fn link(&self, i: usize, up: bool) -> anyhow::Result<()> {
        let state = if up { "up" } else { "down" };
        ip(&[
            "-n",
            &self.beds[i].server_ns,
            "link",
            "set",
            &self.links[i],
            state,
        ])
    }

    /// Runs `f` on a thread in the etcd namespace (a listener there is reachable from every
    /// node at [`HUB`]).
    pub fn run_in_hub<T: Send>(&self, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
        run_in_ns(&self.hub_ns, f)
    }

    /// Waits up to `limit` for `f`, polling.
    pub fn until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while !f() {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

impl Drop for ClusterBed {
    fn drop(&mut self) {
        // The daemons go with their testbeds, etcd with its harness; then the namespace.
        self.beds.clear();
        self.etcd = None;
        let _ = ip(&["netns", "del", &self.hub_ns]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
