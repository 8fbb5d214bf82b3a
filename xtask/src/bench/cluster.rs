//! `cargo xtask bench --cluster`: three nodes with XDP, each in namespaces of its own, on
//! three etcd members (dns_tests::cluster_bed). Measures change -> INSYNC on all three (one
//! UPSERT through each node in turn, GetChange polled every ms on another node), and a health
//! change -> every node's XDP answer moved (a failover name whose primary's HTTP endpoint, in
//! the etcd namespace, closes and opens again; each node's client queries every ms).
//! Written to bench/results/cluster.md.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use dns_tests::cluster_bed::{ClusterBed, HUB};
use dns_tests::{SERVER_V4, Side};
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, RecordType};

use super::health::Endpoint;

const NODES: usize = 3;
const CHANGES: usize = 30;
const CYCLES: usize = 3;
const PORT: u16 = 8081;
const PRIMARY: &str = "192.0.2.10";
const SECONDARY: &str = "192.0.2.20";

/// Medians and maxima, in seconds.
pub struct Timing {
    pub changes: usize,
    pub insync: (f64, f64),
    pub switches: usize,
    /// Endpoint down or up -> the last of the three nodes answering the other address.
    pub all_moved: (f64, f64),
    /// The same for the first node to move.
    pub first_moved: (f64, f64),
}

fn config() -> String {
    format!(
        "[cluster]\nlease_ttl_secs = 5\n\n[health]\nallow_networks = [\"198.51.100.0/24\"]\n\n\
         [health_check.primary]\ntype = \"HTTP\"\nip_address = \"{HUB}\"\nport = {PORT}\n\
         request_interval = 1\nfailure_threshold = 2\n\n\
         [[zone]]\norigin = \"bench.test.\"\n\
         [[zone.record]]\nname = \"www\"\ntype = \"A\"\nset_id = \"primary\"\nfailover = \"PRIMARY\"\n\
         health_check = \"primary\"\nttl = 5\nvalues = [\"{PRIMARY}\"]\n\n\
         [[zone.record]]\nname = \"www\"\ntype = \"A\"\nset_id = \"secondary\"\n\
         failover = \"SECONDARY\"\nttl = 5\nvalues = [\"{SECONDARY}\"]\n"
    )
}

/// An HTTP endpoint in the etcd namespace, reachable from every node.
fn endpoint(bed: &ClusterBed) -> anyhow::Result<Endpoint> {
    let addr = SocketAddr::from((HUB, PORT));
    Endpoint::serve(bed.run_in_hub(move || TcpListener::bind(addr))??)
}

/// Node `i`'s client queries www every ms until the answer is `want` (bounded): when.
fn moved(bed: &ClusterBed, i: usize, want: &'static str) -> anyhow::Result<Instant> {
    let name = Name::from_ascii("www.bench.test.")?;
    bed.beds[i].run_in(Side::Client, move || -> anyhow::Result<Instant> {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        let start = Instant::now();
        let mut buf = [0u8; 512];
        let mut id: u16 = 0;
        while start.elapsed() < Duration::from_secs(20) {
            id = id.wrapping_add(1);
            let q = dns_user::server::answer::build_query(id, &name, RecordType::A, None);
            socket.send_to(&q, (SERVER_V4, 53))?;
            if let Ok(n) = socket.recv(&mut buf) {
                let at = Instant::now();
                let m = Message::from_vec(&buf[..n])?;
                if m.answers
                    .iter()
                    .any(|r| matches!(&r.data, RData::A(a) if a.0.to_string() == want))
                {
                    return Ok(at);
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        bail!("node {i}: www did not become {want} within 20 s")
    })?
}

/// (median, max) of `v`, in seconds.
fn spread(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() - 1])
}

pub fn measure(bin: &str) -> anyhow::Result<Timing> {
    let mut bed = ClusterBed::create("dnsxb", NODES, 3)?;
    let mut endpoint = Some(endpoint(&bed)?);
    for i in 0..NODES {
        bed.start_node(i, bin, "native", &config(), false)?;
    }
    for i in 0..NODES {
        moved(&bed, i, PRIMARY)?;
    }
    let (_, zones) = bed.call(0, "GET", "/hostedzone", None)?;
    let zone = zones["HostedZones"][0]["Id"]
        .as_str()
        .map(dns_tests::api::bare)
        .context("no hosted zone")?
        .to_string();

    // Change -> INSYNC on all three.
    let mut insync = Vec::new();
    for n in 0..CHANGES {
        let (writer, reader) = (n % NODES, (n + 1) % NODES);
        let body = serde_json::json!({"ChangeBatch": {"Changes": [{"Action": "UPSERT",
            "ResourceRecordSet": {"Name": "insync.bench.test.", "Type": "A", "TTL": 30,
            "ResourceRecords": [{"Value": format!("198.51.100.{}", 100 + n)}]}}]}});
        let started = Instant::now();
        let (status, v) = bed.call(
            writer,
            "POST",
            &format!("/hostedzone/{zone}/rrset"),
            Some(&body),
        )?;
        if status != 200 {
            bail!("change refused: {v}");
        }
        let get = |path: &str| bed.call(reader, "GET", path, None);
        insync.push(super::until_insync(&get, &v, started)?.as_secs_f64());
    }

    // Health change -> every node's XDP answer moved.
    let (mut all, mut first) = (Vec::new(), Vec::new());
    for _ in 0..CYCLES {
        for (want, down) in [(SECONDARY, true), (PRIMARY, false)] {
            let at = if down {
                endpoint.take().context("running")?.stop();
                Instant::now()
            } else {
                endpoint = Some(self::endpoint(&bed)?);
                Instant::now()
            };
            let times: Vec<f64> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..NODES)
                    .map(|i| {
                        let bed = &bed;
                        scope.spawn(move || moved(bed, i, want))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .map_err(|_| anyhow::anyhow!("a query thread panicked"))?
                            .map(|t| t.duration_since(at).as_secs_f64())
                    })
                    .collect::<anyhow::Result<Vec<f64>>>()
            })?;
            all.push(times.iter().copied().fold(0.0, f64::max));
            first.push(times.iter().copied().fold(f64::MAX, f64::min));
        }
    }
    drop(endpoint);
    Ok(Timing {
        changes: CHANGES,
        insync: spread(insync),
        switches: all.len(),
        all_moved: spread(all),
        first_moved: spread(first),
    })
}

/// The report, in Markdown.
pub fn report(t: &Timing, machine: &str, commit: &str) -> String {
    format!(
        "# Cluster benchmark\n\n{machine}, commit {commit}. Three nodes with XDP (native mode on \
         veth), each in namespaces of its own, on three etcd members (Debian's etcd 3.4) in \
         another namespace, joined by a bridge (`dns_tests::cluster_bed`).\n\n\
         | measure | median | max |\n|---|---|---|\n\
         | change -> INSYNC on all three ({} one-record UPSERTs through each node in turn, \
         GetChange polled every ms on another) | {:.1} ms | {:.1} ms |\n\
         | health change -> the first node's XDP answer moved ({} switches: the primary's \
         endpoint closed, then opened; interval 1 s, threshold 2) | {:.2} s | {:.2} s |\n\
         | health change -> all three nodes' XDP answers moved | {:.2} s | {:.2} s |\n\n\
         Every node probes the endpoint and the check's status combines the three (healthy \
         while more than 18% see it healthy), so the nodes switch together (compare the last \
         two rows); detection itself takes interval x threshold, as on one node.\n",
        t.changes,
        t.insync.0 * 1000.0,
        t.insync.1 * 1000.0,
        t.switches,
        t.first_moved.0,
        t.first_moved.1,
        t.all_moved.0,
        t.all_moved.1,
    )
}
