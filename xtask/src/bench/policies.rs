//! The fast path on routing policies: BPF_PROG_TEST_RUN ns/query for each policy (maps filled
//! by the production compiler from the shared policy zone), and the share of A/AAAA queries a
//! live daemon answers in XDP for that zone.

use std::time::Duration;

use aya::programs::{TestRun, TestRunOptions};
use dns_common::{PROGRAM_NAME, TYPE_A, TYPE_AAAA};
use dns_tests::fixtures::{ecs, policy_catalog, policy_config, q_edns};
use dns_tests::frame::Frame;
use dns_tests::{SERVER_V4, Side, Testbed, metric};
use dns_user::fastpath::compile::compile;
use dns_user::fastpath::maps::MapWriter;
use dns_user::fastpath::xdp::{self, LoadOptions};

pub(super) const RUNS: u32 = 5_000;
const ANSWERED: &str = "dns_xdp_packets_total{action=\"tx\",reason=\"answered\"}";

/// An ECS client prefix: (address, prefix length).
type Client = Option<(&'static str, u8)>;

/// (policy, name, qtype, ECS client prefix).
const QUERIES: &[(&str, &str, u16, Client)] = &[
    ("weighted", "w.example.com", TYPE_A, None),
    ("weighted AAAA", "w.example.com", TYPE_AAAA, None),
    ("multivalue (8 of 12)", "mv.example.com", TYPE_A, None),
    (
        "geolocation (ECS)",
        "geo.example.com",
        TYPE_A,
        Some(("198.51.100.0", 24)),
    ),
    (
        "latency (ECS)",
        "lat.example.com",
        TYPE_A,
        Some(("203.0.113.0", 24)),
    ),
    (
        "IP-based (ECS)",
        "ip.example.com",
        TYPE_A,
        Some(("198.51.100.0", 24)),
    ),
    (
        "geoproximity (ECS)",
        "prox.example.com",
        TYPE_A,
        Some(("203.0.113.0", 24)),
    ),
    (
        "latency -> failover tree (ECS)",
        "tree.example.com",
        TYPE_A,
        Some(("198.51.100.0", 24)),
    ),
    (
        "geolocation (source address)",
        "geo.example.com",
        TYPE_A,
        None,
    ),
];

fn payload(name: &str, qtype: u16, client: Option<(&str, u8)>) -> Vec<u8> {
    let option = client
        .map(|(addr, len)| ecs(addr.parse().expect("address"), len))
        .unwrap_or_default();
    q_edns(name, qtype, 1232, 0, &option)
}

/// BPF_PROG_TEST_RUN ns/run (mean of single runs) per policy.
pub fn prog_test_run() -> anyhow::Result<Vec<(String, f64)>> {
    let (catalog, health) = policy_catalog(&[]);
    let mut ebpf = xdp::load(&LoadOptions {
        max_entries: 4096,
        ..Default::default()
    })?;
    let mut writer = MapWriter::new(&mut ebpf, 4096)?;
    writer.install(&compile(&catalog, &health).0)?;
    writer.set_enabled(true)?;
    let prog = xdp::program(&mut ebpf, PROGRAM_NAME)?;
    let frame = Frame::query(false);
    let mut out = vec![0u8; 4096];
    let mut rows = Vec::new();
    for (label, name, qtype, client) in QUERIES {
        let input = frame.build(&payload(name, *qtype, *client));
        rows.push((
            format!("{label} -> XDP_TX (repeat 1, mean of {RUNS})"),
            mean_tx_ns(prog, &input, &mut out, label)?,
        ));
    }
    Ok(rows)
}

/// The mean ns of [`RUNS`] single BPF_PROG_TEST_RUNs of `prog` on `input`, each of which must
/// answer (XDP_TX).
pub(super) fn mean_tx_ns(
    prog: &aya::programs::Xdp,
    input: &[u8],
    out: &mut [u8],
    label: &str,
) -> anyhow::Result<f64> {
    let mut total = 0u128;
    for _ in 0..RUNS {
        let r = prog.test_run(TestRunOptions {
            data_in: Some(input),
            data_out: Some(&mut *out),
            ..Default::default()
        })?;
        anyhow::ensure!(r.return_value == 3, "{label}: not answered in XDP");
        total += r.duration.as_nanos();
    }
    Ok(total as f64 / f64::from(RUNS))
}

/// (share answered in XDP, queries): every A/AAAA name of the policy zone from three client
/// networks (source address, ECS France, ECS US), 20 rounds, through a live daemon. The one
/// group that answers NODATA by design (geolocation without a default, outside France) is
/// asked only from France.
pub fn coverage(bin: &str) -> anyhow::Result<(f64, u64)> {
    let mut bed = Testbed::create("dnsxp")?;
    let dir = std::env::temp_dir().join(format!("dns-bench-policies-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("policies.toml");
    std::fs::write(&path, policy_config())?;
    let _daemon = bed.start_service(bin, "native", &["--config", path.to_str().unwrap()], false)?;
    let names: &[(&str, u16)] = &[
        ("w.example.com", TYPE_A),
        ("w.example.com", TYPE_AAAA),
        ("mv.example.com", TYPE_A),
        ("geo.example.com", TYPE_A),
        ("lat.example.com", TYPE_A),
        ("ip.example.com", TYPE_A),
        ("prox.example.com", TYPE_A),
        ("tree.example.com", TYPE_A),
        ("fronly.example.com", TYPE_A),
    ];
    let clients = [None, Some(("198.51.100.0", 24)), Some(("203.0.113.0", 24))];
    let mut queries = Vec::new();
    for (name, qtype) in names {
        for client in clients {
            if *name == "fronly.example.com" && client != Some(("198.51.100.0", 24)) {
                continue;
            }
            queries.push(payload(name, *qtype, client));
        }
    }
    let before = metric(&bed.metrics_page()?, ANSWERED).unwrap_or(0);
    let sent = bed.run_in(Side::Client, move || -> anyhow::Result<u64> {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
        socket.connect((SERVER_V4, 53))?;
        socket.set_read_timeout(Some(Duration::from_millis(500)))?;
        let mut buf = [0u8; 1500];
        let mut sent = 0;
        for _round in 0..20 {
            for q in &queries {
                socket.send(q)?;
                sent += 1;
                let _ = socket.recv(&mut buf);
            }
        }
        Ok(sent)
    })??;
    let after = metric(&bed.metrics_page()?, ANSWERED).unwrap_or(0);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(((after - before) as f64 / sent as f64, sent))
}
