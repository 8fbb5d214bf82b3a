//! Several nodes on one etcd cluster (`[cluster]`), all real: three etcd members and three
//! daemons on loopback. A change through any node's API is served by every node, and INSYNC
//! only once every live node serves it; etcd members and daemons killed, restarted and cut
//! off, nothing acknowledged is lost and every node converges.

use std::time::{Duration, Instant};

use dns_tests::cluster_bed::ClusterBed;
use dns_tests::etcd::{Etcd, Proxy};
use dns_tests::{Side, metric};

/// The HTTP endpoint the health checks probe (answers only the sources a file lists).
const TARGET: &str = env!("CARGO_BIN_EXE_http-target");
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

mod common;

use common::{Daemon, a, bare, free_port, temp_dir};

/// Lease TTL of the test nodes: how long INSYNC waits for a node that stopped.
const LEASE_TTL: u64 = 3;

fn config(dir: &std::path::Path, more: &str) -> String {
    let path = dir.join("dns.toml");
    std::fs::write(
        &path,
        format!("{more}\n[cluster]\nlease_ttl_secs = {LEASE_TTL}\n"),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

/// A node `id` of the cluster at `etcd` (comma-separated endpoints), its store in `dir/id`
/// (a restart on the same `dir` and `id` starts from the node's cache).
fn node(dir: &std::path::Path, id: &str, etcd: &str) -> Daemon {
    node_with(dir, id, etcd, "", &[])
}

/// [`node`] with more config (`[health]` settings, say) and arguments.
fn node_with(dir: &std::path::Path, id: &str, etcd: &str, more: &str, args: &[&str]) -> Daemon {
    let own = dir.join(id);
    std::fs::create_dir_all(&own).unwrap();
    let config = config(&own, more);
    let mut all = vec!["--config", &config, "--etcd", etcd, "--node-id", id];
    all.extend_from_slice(args);
    // The node takes changes once it has joined (its log says so; a restart appends).
    let joined = || {
        std::fs::read_to_string(own.join("daemon.log"))
            .unwrap_or_default()
            .matches("joined at revision")
            .count()
    };
    let before = joined();
    let daemon = Daemon::start(&own, free_port(), free_port(), &all);
    until(
        Duration::from_secs(20),
        "the node joined the cluster",
        || joined() > before,
    );
    daemon
}

fn status(d: &Daemon, change: &str) -> String {
    let (code, v) = d.call("GET", &format!("/change/{}", bare(change)), None);
    assert_eq!(code, 200, "{v}");
    v["ChangeInfo"]["Status"].as_str().unwrap().to_string()
}

/// Polls until `f` holds, or fails after `limit` saying `what`.
fn until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "{what} (waited {limit:?})");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn upsert_a(d: &Daemon, zone: &str, name: &str, address: &str) -> (u16, Value) {
    d.change(
        zone,
        json!([{"Action": "UPSERT", "ResourceRecordSet": a(name, 60, &[address])}]),
    )
}

/// INSYNC came no earlier than a node that stopped at `stopped` could have lost its lease:
/// its last keepalive (one every third of the TTL) left it two thirds of the TTL at least.
fn assert_lease_waited(stopped: Instant) {
    let least = Duration::from_secs(LEASE_TTL) * 2 / 3;
    assert!(
        stopped.elapsed() >= least,
        "INSYNC {:?} after the node stopped, before its lease could expire",
        stopped.elapsed()
    );
}

/// Three nodes on a new three-member etcd (the first with metrics), and a zone made through
/// the first.
struct Cluster {
    dir: std::path::PathBuf,
    etcd: Etcd,
    nodes: Vec<Daemon>,
    zone: String,
    /// Node a's metrics address.
    metrics: String,
}

fn cluster(tag: &str) -> Cluster {
    let dir = temp_dir(tag);
    let etcd = Etcd::start(&dir, 3).unwrap();
    let endpoints = etcd.endpoints();
    let metrics = format!("127.0.0.1:{}", free_port());
    let nodes: Vec<Daemon> = ["a", "b", "c"]
        .iter()
        .map(|id| match *id {
            "a" => node_with(&dir, id, &endpoints, "", &["--metrics", &metrics]),
            _ => node(&dir, id, &endpoints),
        })
        .collect();
    let (code, v) = nodes[0].call(
        "POST",
        "/hostedzone",
        Some(json!({"Name": "c.test", "CallerReference": "r1"})),
    );
    assert_eq!(code, 201, "{v}");
    let zone = bare(v["HostedZone"]["Id"].as_str().unwrap()).to_string();
    let created = v["ChangeInfo"]["Id"].as_str().unwrap().to_string();
    until(Duration::from_secs(10), "zone INSYNC", || {
        status(&nodes[0], &created) == "INSYNC"
    });
    Cluster {
        dir,
        etcd,
        nodes,
        zone,
        metrics,
    }
}

/// Waits until every node answers `name` with `address`.
fn all_answer(nodes: &[&Daemon], name: &str, address: &str, limit: Duration) {
    until(
        limit,
        &format!("every node answers {name} {address}"),
        || {
            nodes
                .iter()
                .all(|d| d.answer(name, RecordType::A) == [address])
        },
    );
}

/// A value under the shared prefix this node cannot read (a hand-made key, or another
/// build's) ends its session with an error that names the key: it keeps answering what it
/// served, refuses writes (503) rather than validate against a copy that may be behind, and
/// once the value is gone it joins again and takes changes.
#[test]
fn an_unreadable_shared_value_stops_writes_not_answers_until_it_is_gone() {
    let dir = temp_dir("cl-bad");
    let etcd = Etcd::start(&dir, 1).unwrap();
    let a = node(&dir, "a", &etcd.endpoints());
    let (code, v) = a.call(
        "POST",
        "/hostedzone",
        Some(json!({"Name": "c.test", "CallerReference": "bad1"})),
    );
    assert_eq!(code, 201, "{v}");
    let zone = bare(v["HostedZone"]["Id"].as_str().unwrap()).to_string();
    let (code, v) = upsert_a(&a, &zone, "www.c.test.", "192.0.2.1");
    assert_eq!(code, 200, "{v}");
    all_answer(&[&a], "www.c.test.", "192.0.2.1", Duration::from_secs(10));

    let key = "/dns-user/v1/data/zones/Z-NOT-JSON";
    etcd.ctl(&["put", key, "{not json"]).unwrap();
    until(Duration::from_secs(10), "writes refused", || {
        upsert_a(&a, &zone, "x.c.test.", "192.0.2.9").0 == 503
    });
    let log = std::fs::read_to_string(dir.join("a").join("daemon.log")).unwrap();
    assert!(log.contains(key), "the log names the key:\n{log}");
    assert_eq!(a.answer("www.c.test.", RecordType::A), ["192.0.2.1"]);
    assert!(
        a.answer("x.c.test.", RecordType::A).is_empty(),
        "nothing half-applied"
    );

    etcd.ctl(&["del", key]).unwrap();
    until(Duration::from_secs(20), "writes taken again", || {
        upsert_a(&a, &zone, "x.c.test.", "192.0.2.9").0 == 200
    });
    all_answer(&[&a], "x.c.test.", "192.0.2.9", Duration::from_secs(10));
    assert_eq!(a.answer("www.c.test.", RecordType::A), ["192.0.2.1"]);
    drop(a);
    drop(etcd);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_change_through_one_node_is_served_by_all_and_insync_only_then() {
    // A zone made on a: INSYNC there only once b and c serve it too.
    let Cluster {
        etcd,
        nodes,
        zone,
        metrics,
        ..
    } = cluster("cluster-insync");
    let endpoints = etcd.endpoints();
    for d in &nodes {
        assert_eq!(d.ask("c.test.", RecordType::SOA).answers.len(), 1);
    }

    // A batch through b, then one through c: each INSYNC on every node's API at the moment
    // every node answers it, never before.
    for (writer, address) in [(1, "192.0.2.1"), (2, "192.0.2.2")] {
        let (code, v) = nodes[writer].change(
            &zone,
            json!([{"Action": "UPSERT",
            "ResourceRecordSet": a("www.c.test.", 60, &[address])}]),
        );
        assert_eq!(code, 200, "{v}");
        let change = v["ChangeInfo"]["Id"].as_str().unwrap().to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let insync = status(&nodes[0], &change) == "INSYNC";
            let served: Vec<bool> = nodes
                .iter()
                .map(|d| d.answer("www.c.test.", RecordType::A) == [address])
                .collect();
            if insync {
                // INSYNC was read first: every node served the change by then.
                assert_eq!(
                    served,
                    [true, true, true],
                    "INSYNC before every node served"
                );
                break;
            }
            assert!(Instant::now() < deadline, "never INSYNC");
            std::thread::sleep(Duration::from_millis(5));
        }
        for d in &nodes {
            assert_eq!(status(d, &change), "INSYNC");
        }
    }
    // Every node lists the same record sets.
    let sets = nodes[0].sets(&zone);
    for d in &nodes[1..] {
        assert_eq!(d.sets(&zone), sets);
    }

    // `dns-user cluster status` reads the three nodes from etcd, each serving all three
    // changes; a's metrics say it is connected and behind no one.
    let out = std::process::Command::new(common::BIN)
        .args(["cluster", "status", "--json", "--etcd", &endpoints])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let applied: Vec<u64> = ["a", "b", "c"]
        .iter()
        .map(|n| report["Nodes"][n]["Applied"].as_u64().unwrap())
        .collect();
    assert_eq!(applied, [3, 3, 3], "{report}");
    assert_eq!(report["Members"].as_object().unwrap().len(), 3, "{report}");
    let lease = report["Nodes"]["b"]["LeaseTtl"].as_i64().unwrap();
    assert!((1..=LEASE_TTL as i64).contains(&lease), "{report}");
    let text = dns_tests::api::host_curl(&["-s", &format!("http://{metrics}/metrics")]).unwrap();
    for line in [
        "dns_cluster_connected 1",
        "dns_cluster_applied_sequence 3",
        "dns_cluster_lag_changes 0",
        "dns_cluster_node_applied_sequence{node=\"c\"} 3",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
}

#[test]
fn a_node_killed_stops_holding_insync_once_its_lease_expires_and_catches_up_restarted() {
    let Cluster {
        dir,
        etcd,
        mut nodes,
        zone,
        ..
    } = cluster("cluster-kill");
    let endpoints = etcd.endpoints();
    let c = nodes.pop().unwrap();
    let killed = Instant::now();
    c.kill9();
    let (code, v) = upsert_a(&nodes[0], &zone, "www.c.test.", "192.0.2.7");
    assert_eq!(code, 200, "{v}");
    let change = v["ChangeInfo"]["Id"].as_str().unwrap().to_string();
    until(
        Duration::from_secs(LEASE_TTL + 5),
        "INSYNC once c's lease expired",
        || status(&nodes[0], &change) == "INSYNC",
    );
    assert_lease_waited(killed);
    // Restarted on its cache, c catches up; a change after waits for it again.
    let c = node(&dir, "c", &endpoints);
    all_answer(
        &[&nodes[0], &nodes[1], &c],
        "www.c.test.",
        "192.0.2.7",
        Duration::from_secs(10),
    );
    let (code, v) = upsert_a(&c, &zone, "www.c.test.", "192.0.2.8");
    assert_eq!(code, 200, "{v}");
    let change = v["ChangeInfo"]["Id"].as_str().unwrap().to_string();
    until(Duration::from_secs(10), "INSYNC", || {
        status(&nodes[1], &change) == "INSYNC"
    });
    for d in [&nodes[0], &nodes[1], &c] {
        assert_eq!(d.answer("www.c.test.", RecordType::A), ["192.0.2.8"]);
    }
    // Stopped in order (SIGTERM), c leaves at once: INSYNC does not wait for its lease.
    drop(c);
    let (code, v) = upsert_a(&nodes[0], &zone, "www.c.test.", "192.0.2.9");
    assert_eq!(code, 200, "{v}");
    let change = v["ChangeInfo"]["Id"].as_str().unwrap().to_string();
    let written = Instant::now();
    until(Duration::from_secs(10), "INSYNC", || {
        status(&nodes[0], &change) == "INSYNC"
    });
    assert!(
        written.elapsed() < Duration::from_millis(1500),
        "INSYNC waited {:?} for a node that left",
        written.elapsed()
    );
}

#[test]
fn the_etcd_leader_killed_during_a_stream_of_changes_loses_no_acknowledged_one() {
    let Cluster {
        mut etcd,
        nodes,
        zone,
        ..
    } = cluster("cluster-leader");
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for i in 0..40u32 {
        if i == 10 {
            let leader = etcd.leader().unwrap();
            etcd.kill(leader);
        }
        let name = format!("n{i}.c.test.");
        let address = format!("192.0.2.{}", i + 1);
        // Each change goes to another node; one refused (no leader yet: 503, or another
        // node wrote first) is tried again, for at most 10 s.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let d = &nodes[(i as usize + refused) % 3];
            let (code, v) = upsert_a(d, &zone, &name, &address);
            if code == 200 {
                acknowledged.push((name.clone(), address.clone()));
                break;
            }
            assert!(
                [400, 503].contains(&code)
                    && ["ServiceUnavailable", "PriorRequestNotComplete"]
                        .contains(&v["Error"]["Code"].as_str().unwrap_or("")),
                "{code} {v}"
            );
            refused += 1;
            assert!(Instant::now() < deadline, "no write accepted in 10 s: {v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(acknowledged.len(), 40);
    let all: Vec<&Daemon> = nodes.iter().collect();
    for (name, address) in &acknowledged {
        all_answer(&all, name, address, Duration::from_secs(10));
    }
    let sets = nodes[0].sets(&zone);
    assert_eq!(sets.as_array().unwrap().len(), 42, "SOA, NS and 40 A");
    for d in &nodes[1..] {
        assert_eq!(d.sets(&zone), sets);
    }
}

#[test]
fn a_node_cut_off_answers_its_last_state_and_converges_when_the_link_returns() {
    let dir = temp_dir("cluster-cut");
    let etcd = Etcd::start(&dir, 3).unwrap();
    let endpoints = etcd.endpoints();
    let proxy = Proxy::start(etcd.members[2].client_port).unwrap();
    let a_node = node(&dir, "a", &endpoints);
    let b_node = node(&dir, "b", &endpoints);
    let c_node = node(&dir, "c", &proxy.endpoint());
    let nodes = [&a_node, &b_node, &c_node];
    let (code, v) = a_node.call(
        "POST",
        "/hostedzone",
        Some(json!({"Name": "c.test", "CallerReference": "r1"})),
    );
    assert_eq!(code, 201, "{v}");
    let zone = bare(v["HostedZone"]["Id"].as_str().unwrap()).to_string();
    let (code, v) = upsert_a(&b_node, &zone, "www.c.test.", "192.0.2.1");
    assert_eq!(code, 200, "{v}");
    all_answer(&nodes, "www.c.test.", "192.0.2.1", Duration::from_secs(10));

    let cut = Instant::now();
    proxy.cut();
    // Cut off, c refuses writes (nothing applied) and answers what it had.
    let (code, v) = upsert_a(&c_node, &zone, "www.c.test.", "192.0.2.99");
    assert_eq!(
        (code, v["Error"]["Code"].as_str()),
        (503, Some("ServiceUnavailable")),
        "{v}"
    );
    let (code, v) = upsert_a(&a_node, &zone, "www.c.test.", "192.0.2.2");
    assert_eq!(code, 200, "{v}");
    let change = v["ChangeInfo"]["Id"].as_str().unwrap().to_string();
    all_answer(
        &[&a_node, &b_node],
        "www.c.test.",
        "192.0.2.2",
        Duration::from_secs(5),
    );
    until(
        Duration::from_secs(LEASE_TTL + 5),
        "INSYNC without c once its lease expired",
        || status(&a_node, &change) == "INSYNC",
    );
    assert_lease_waited(cut);
    assert_eq!(c_node.answer("www.c.test.", RecordType::A), ["192.0.2.1"]);
    // More changes, and the history c would watch from compacted away: c must read the
    // store whole when it returns.
    for i in 3..8 {
        let (code, v) = upsert_a(&b_node, &zone, "www.c.test.", &format!("192.0.2.{i}"));
        assert_eq!(code, 200, "{v}");
    }
    let (code, v) = upsert_a(&b_node, &zone, "gone.c.test.", "192.0.2.50");
    assert_eq!(code, 200, "{v}");
    let (code, v) = b_node.change(
        &zone,
        json!([{"Action": "DELETE", "ResourceRecordSet": a("gone.c.test.", 60, &["192.0.2.50"])}]),
    );
    assert_eq!(code, 200, "{v}");
    let out = etcd.ctl(&["endpoint", "status", "-w", "json"]).unwrap();
    let revision = serde_json::from_str::<Value>(&out).unwrap()[0]["Status"]["header"]["revision"]
        .as_u64()
        .unwrap();
    etcd.ctl(&["compact", &revision.to_string()]).unwrap();
    assert_eq!(c_node.answer("www.c.test.", RecordType::A), ["192.0.2.1"]);

    proxy.heal();
    all_answer(&nodes, "www.c.test.", "192.0.2.7", Duration::from_secs(15));
    assert!(c_node.answer("gone.c.test.", RecordType::A).is_empty());
    let sets = a_node.sets(&zone);
    assert_eq!(c_node.sets(&zone), sets);
    // Back, c takes writes again (once its session is up: 503 until then), and INSYNC
    // waits for it.
    let mut accepted = None;
    until(Duration::from_secs(10), "c takes writes again", || {
        let (code, v) = upsert_a(&c_node, &zone, "www.c.test.", "192.0.2.9");
        assert!([200, 503].contains(&code), "{v}");
        accepted = (code == 200).then_some(v);
        accepted.is_some()
    });
    let v = accepted.unwrap();
    let change = v["ChangeInfo"]["Id"].as_str().unwrap().to_string();
    until(Duration::from_secs(10), "INSYNC", || {
        status(&a_node, &change) == "INSYNC"
    });
    for d in nodes {
        assert_eq!(d.answer("www.c.test.", RecordType::A), ["192.0.2.9"]);
    }
}

#[test]
fn without_an_etcd_quorum_writes_are_refused_and_every_node_keeps_answering() {
    let Cluster {
        dir,
        mut etcd,
        mut nodes,
        zone,
        ..
    } = cluster("cluster-quorum");
    let (code, v) = upsert_a(&nodes[1], &zone, "www.c.test.", "192.0.2.1");
    assert_eq!(code, 200, "{v}");
    let all: Vec<&Daemon> = nodes.iter().collect();
    all_answer(&all, "www.c.test.", "192.0.2.1", Duration::from_secs(10));
    etcd.kill(0);
    etcd.kill(1);
    for d in &nodes {
        let (code, v) = upsert_a(d, &zone, "www.c.test.", "192.0.2.2");
        assert_eq!(code, 503, "{v}");
        assert_eq!(v["Error"]["Code"], "ServiceUnavailable");
        assert_eq!(d.answer("www.c.test.", RecordType::A), ["192.0.2.1"]);
    }
    // A node restarted meanwhile serves its cache: its last state, with etcd out of reach.
    nodes.pop().unwrap().kill9();
    let own = dir.join("c");
    let config = own.join("dns.toml");
    let endpoints = etcd.endpoints();
    let c = Daemon::start(
        &own,
        free_port(),
        free_port(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--etcd",
            &endpoints,
            "--node-id",
            "c",
        ],
    );
    assert_eq!(c.answer("www.c.test.", RecordType::A), ["192.0.2.1"]);
    nodes.push(c);
    let all: Vec<&Daemon> = nodes.iter().collect();
    etcd.restart(0).unwrap();
    etcd.restart(1).unwrap();
    etcd.wait_healthy(Duration::from_secs(20)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, v) = upsert_a(&nodes[2], &zone, "www.c.test.", "192.0.2.3");
        if code == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "writes never came back: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    all_answer(&all, "www.c.test.", "192.0.2.3", Duration::from_secs(10));
}

/// Each node probes from its own loopback address; the endpoint answers the sources a file
/// lists. Route 53's rule decides: healthy while more than 18% of the nodes that probe see it
/// healthy (one of three), unhealthy when none does; failover answers move on every node.
#[test]
fn health_is_judged_from_every_node_and_failover_moves_on_all() {
    let dir = temp_dir("cluster-health");
    let etcd = Etcd::start(&dir, 3).unwrap();
    let endpoints = etcd.endpoints();
    let allowed = dir.join("allowed");
    std::fs::write(&allowed, "127.0.0.2\n127.0.0.3\n127.0.0.4\n").unwrap();
    let port = free_port();
    let _target = Killed(
        std::process::Command::new(TARGET)
            .args([&format!("127.0.0.1:{port}"), allowed.to_str().unwrap()])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    // c reaches etcd through a proxy the test cuts at the end.
    let proxy = Proxy::start(etcd.members[2].client_port).unwrap();
    let nodes: Vec<Daemon> = [("a", 2), ("b", 3), ("c", 4)]
        .iter()
        .map(|(id, last)| {
            let health = format!(
                "[health]\nallow_networks = [\"127.0.0.0/8\"]\nsource_v4 = \"127.0.0.{last}\"\n"
            );
            let via = match *id {
                "c" => proxy.endpoint(),
                _ => endpoints.clone(),
            };
            node_with(&dir, id, &via, &health, &[])
        })
        .collect();
    let (code, v) = nodes[0].call(
        "POST",
        "/healthcheck",
        Some(json!({"CallerReference": "hc1", "HealthCheckConfig": {
            "Type": "HTTP", "IPAddress": "127.0.0.1", "Port": port, "ResourcePath": "/",
            "RequestInterval": 1, "FailureThreshold": 1}})),
    );
    assert_eq!(code, 201, "{v}");
    let check = v["HealthCheck"]["Id"].as_str().unwrap().to_string();
    let (code, v) = nodes[1].call(
        "POST",
        "/hostedzone",
        Some(json!({"Name": "h.test", "CallerReference": "h1"})),
    );
    assert_eq!(code, 201, "{v}");
    let zone = bare(v["HostedZone"]["Id"].as_str().unwrap()).to_string();
    let (code, v) = nodes[2].change(
        &zone,
        json!([
            {"Action": "CREATE", "ResourceRecordSet": {"Name": "www.h.test.", "Type": "A",
                "SetIdentifier": "primary", "Failover": "PRIMARY", "HealthCheckId": check,
                "TTL": 5, "ResourceRecords": [{"Value": "192.0.2.1"}]}},
            {"Action": "CREATE", "ResourceRecordSet": {"Name": "www.h.test.", "Type": "A",
                "SetIdentifier": "secondary", "Failover": "SECONDARY",
                "TTL": 5, "ResourceRecords": [{"Value": "192.0.2.2"}]}},
        ]),
    );
    assert_eq!(code, 200, "{v}");
    let all: Vec<&Daemon> = nodes.iter().collect();
    all_answer(&all, "www.h.test.", "192.0.2.1", Duration::from_secs(10));
    // Every node lists the three checkers.
    let checkers = |d: &Daemon| -> Vec<(String, String)> {
        let (code, v) = d.call("GET", &format!("/healthcheck/{check}/status"), None);
        assert_eq!(code, 200, "{v}");
        let mut out: Vec<(String, String)> = v["HealthCheckObservations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                let status = o["StatusReport"]["Status"].as_str().unwrap();
                let word = status.split(':').next().unwrap().to_string();
                (o["Region"].as_str().unwrap().to_string(), word)
            })
            .collect();
        out.sort();
        out
    };
    let seen = |good: &[&str]| -> Vec<(String, String)> {
        ["a", "b", "c"]
            .iter()
            .map(|n| {
                let word = if good.contains(n) {
                    "Success"
                } else {
                    "Failure"
                };
                (n.to_string(), word.to_string())
            })
            .collect()
    };
    until(Duration::from_secs(10), "three healthy checkers", || {
        nodes.iter().all(|d| checkers(d) == seen(&["a", "b", "c"]))
    });

    // Reachable from a alone: 1 of 3 > 18%, still healthy everywhere.
    std::fs::write(&allowed, "127.0.0.2\n").unwrap();
    until(Duration::from_secs(10), "b and c see it fail", || {
        nodes.iter().all(|d| checkers(d) == seen(&["a"]))
    });
    for d in &nodes {
        assert_eq!(d.answer("www.h.test.", RecordType::A), ["192.0.2.1"]);
    }
    // From none: unhealthy everywhere within interval x threshold (+ the watch), and the
    // answers fail over on every node.
    std::fs::write(&allowed, "").unwrap();
    let failed = Instant::now();
    all_answer(
        &all,
        "www.h.test.",
        "192.0.2.2",
        Duration::from_secs(1 + LEASE_TTL + 2),
    );
    let took = failed.elapsed();
    // Back: the primary again.
    std::fs::write(&allowed, "127.0.0.4\n").unwrap();
    all_answer(
        &all,
        "www.h.test.",
        "192.0.2.1",
        Duration::from_secs(1 + LEASE_TTL + 2),
    );
    eprintln!("failover on every node {took:?} after the endpoint failed");

    // Cut off, c keeps the others' observations as it last saw them (it cannot see their
    // leases expire): with all three healthy then, it answers the primary on two stale
    // votes against its own, while a and b, once c's lease is gone, fail over. Healed, c
    // reads them again and fails over too.
    std::fs::write(&allowed, "127.0.0.2\n127.0.0.3\n127.0.0.4\n").unwrap();
    until(Duration::from_secs(10), "three healthy checkers", || {
        nodes.iter().all(|d| checkers(d) == seen(&["a", "b", "c"]))
    });
    proxy.cut();
    std::fs::write(&allowed, "").unwrap();
    all_answer(
        &[&nodes[0], &nodes[1]],
        "www.h.test.",
        "192.0.2.2",
        Duration::from_secs(1 + LEASE_TTL + 3),
    );
    until(Duration::from_secs(5), "c sees its own probes fail", || {
        checkers(&nodes[2]) == seen(&["a", "b"])
    });
    assert_eq!(nodes[2].answer("www.h.test.", RecordType::A), ["192.0.2.1"]);
    proxy.heal();
    all_answer(&all, "www.h.test.", "192.0.2.2", Duration::from_secs(10));
}

/// A process this test started, SIGKILLed (by its PID) and reaped when dropped, whatever
/// the test's outcome.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        // SAFETY: signalling the child this test started, by its PID.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// An API call to node `i` that must succeed (2xx): its reply.
fn api(cb: &ClusterBed, i: usize, method: &str, path: &str, body: Option<Value>) -> Value {
    let (code, v) = cb.call(i, method, path, body.as_ref()).unwrap();
    assert!((200..300).contains(&code), "{method} {path}: {code} {v}");
    v
}

/// Whether node `i` says `change` is INSYNC.
fn insync(cb: &ClusterBed, i: usize, change: &str) -> bool {
    let v = api(cb, i, "GET", &format!("/change/{}", bare(change)), None);
    v["ChangeInfo"]["Status"] == "INSYNC"
}

/// Node `i`'s answer to `name` A from its client namespace, and how many answers its XDP
/// program sent meanwhile.
fn xdp_answer(cb: &ClusterBed, i: usize, name: &str) -> (String, u64) {
    let bed = &cb.beds[i];
    let before = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap_or(0);
    let answer = bed.dig(name, "A").trim().to_string();
    let after = metric(&bed.metrics_page().unwrap(), ANSWERED).unwrap_or(0);
    (answer, after - before)
}

/// What the XDP program answered (the counter the netns tests read).
const ANSWERED: &str = "dns_xdp_packets_total{action=\"tx\",reason=\"answered\"}";

/// Each node in namespaces of its own with XDP on its interface (native mode on veth), etcd
/// in another: a change through one node's API is answered by XDP on all three, and
/// GetChange says INSYNC no earlier.
#[test]
fn a_change_through_one_node_is_answered_by_xdp_on_all_three() {
    let mut cb = ClusterBed::create("dxcl", 3, 3).unwrap();
    let config = format!("[cluster]\nlease_ttl_secs = {LEASE_TTL}\n");
    for i in 0..3 {
        cb.start_node(i, common::BIN, "native", &config, false)
            .unwrap();
    }

    let v = api(
        &cb,
        0,
        "POST",
        "/hostedzone",
        Some(json!({"Name": "x.test", "CallerReference": "x1"})),
    );
    let zone = bare(v["HostedZone"]["Id"].as_str().unwrap()).to_string();

    let created = v["ChangeInfo"]["Id"].as_str().unwrap().to_string();
    assert!(ClusterBed::until(Duration::from_secs(10), || insync(
        &cb, 0, &created
    )));

    for (writer, address) in [(1, "192.0.2.77"), (2, "192.0.2.78")] {
        let v = api(
            &cb,
            writer,
            "POST",
            &format!("/hostedzone/{zone}/rrset"),
            Some(json!({"ChangeBatch": {"Changes": [{"Action": "UPSERT",
                "ResourceRecordSet": {"Name": "www.x.test.", "Type": "A", "TTL": 60,
                "ResourceRecords": [{"Value": address}]}}]}})),
        );
        let change = v["ChangeInfo"]["Id"].as_str().unwrap().to_string();
        // INSYNC read on the node that did not write, then every node's XDP answer.
        let reader = 3 - writer;
        assert!(
            ClusterBed::until(Duration::from_secs(10), || insync(&cb, reader, &change)),
            "never INSYNC"
        );
        for i in 0..3 {
            assert_eq!(
                xdp_answer(&cb, i, "www.x.test."),
                (address.to_string(), 1),
                "node {i}: the new answer, from XDP"
            );
        }
    }
    // A node's userspace server runs in the same namespace: the API too.
    assert!(
        cb.beds[0]
            .output(
                Side::Server,
                "curl",
                &["-sf", "http://127.0.0.1:8053/2013-04-01/hostedzone"]
            )
            .unwrap()
            .contains("x.test.")
    );

    // Node 2 killed (SIGKILL): INSYNC waits for its lease, no longer; restarted on its
    // cache, it catches up and answers from XDP.
    let pid = cb.daemons[2].take().unwrap().pid;
    let killed = Instant::now();
    cb.beds[2].kill(pid);
    let v = api(
        &cb,
        0,
        "POST",
        &format!("/hostedzone/{zone}/rrset"),
        Some(json!({"ChangeBatch": {"Changes": [{"Action": "UPSERT",
            "ResourceRecordSet": {"Name": "www.x.test.", "Type": "A", "TTL": 60,
            "ResourceRecords": [{"Value": "192.0.2.79"}]}}]}})),
    );
    let change = v["ChangeInfo"]["Id"].as_str().unwrap().to_string();
    assert!(ClusterBed::until(
        Duration::from_secs(LEASE_TTL + 5),
        || insync(&cb, 1, &change)
    ));
    assert_lease_waited(killed);
    cb.start_node(2, common::BIN, "native", &config, false)
        .unwrap();
    assert!(ClusterBed::until(Duration::from_secs(10), || {
        xdp_answer(&cb, 2, "www.x.test.") == ("192.0.2.79".to_string(), 1)
    }));
}

/// With XDP in namespaces: the etcd leader SIGKILLed during a stream of changes through
/// every node loses no acknowledged change, each answered by XDP on all three; a node whose
/// link to etcd goes down answers its last state from XDP, and follows again when it is up.
#[test]
fn with_xdp_a_leader_killed_and_a_node_cut_off_lose_nothing() {
    let mut cb = ClusterBed::create("dxcm", 3, 3).unwrap();
    let config = format!("[cluster]\nlease_ttl_secs = {LEASE_TTL}\n");
    for i in 0..3 {
        cb.start_node(i, common::BIN, "native", &config, false)
            .unwrap();
    }
    let (code, v) = cb
        .call(
            0,
            "POST",
            "/hostedzone",
            Some(&json!({"Name": "x.test", "CallerReference": "x1"})),
        )
        .unwrap();
    assert_eq!(code, 201, "{v}");
    let zone = bare(v["HostedZone"]["Id"].as_str().unwrap()).to_string();
    let upsert = |cb: &ClusterBed, i: usize, name: &str, address: &str| {
        let body = json!({"ChangeBatch": {"Changes": [{"Action": "UPSERT",
            "ResourceRecordSet": {"Name": name, "Type": "A", "TTL": 60,
            "ResourceRecords": [{"Value": address}]}}]}});
        cb.call(i, "POST", &format!("/hostedzone/{zone}/rrset"), Some(&body))
            .unwrap()
    };
    let mut acknowledged = Vec::new();
    for n in 0..20usize {
        if n == 6 {
            let etcd = cb.etcd.as_mut().unwrap();
            let leader = etcd.leader().unwrap();
            etcd.kill(leader);
        }
        let (name, address) = (format!("n{n}.x.test."), format!("192.0.2.{}", n + 1));
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut turn = n;
        loop {
            let (code, v) = upsert(&cb, turn % 3, &name, &address);
            if code == 200 {
                acknowledged.push((name.clone(), address.clone()));
                break;
            }
            assert!([400, 503].contains(&code), "{code} {v}");
            assert!(Instant::now() < deadline, "no write accepted in 10 s: {v}");
            turn += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    for (name, address) in &acknowledged {
        for i in 0..3 {
            assert!(
                ClusterBed::until(Duration::from_secs(10), || {
                    xdp_answer(&cb, i, name) == (address.clone(), 1)
                }),
                "node {i}: {name} {address} from XDP"
            );
        }
    }

    // Node 2 cut off: it answers what it had, from XDP; the others move on.
    cb.link(2, false).unwrap();
    let (code, v) = upsert(&cb, 0, "n0.x.test.", "192.0.2.99");
    assert_eq!(code, 200, "{v}");
    for i in 0..2 {
        assert!(ClusterBed::until(Duration::from_secs(10), || {
            xdp_answer(&cb, i, "n0.x.test.") == ("192.0.2.99".into(), 1)
        }));
    }
    assert_eq!(
        xdp_answer(&cb, 2, "n0.x.test."),
        ("192.0.2.1".into(), 1),
        "the cut-off node's last state"
    );
    cb.link(2, true).unwrap();
    assert!(
        ClusterBed::until(Duration::from_secs(15), || {
            xdp_answer(&cb, 2, "n0.x.test.") == ("192.0.2.99".into(), 1)
        }),
        "the node followed once linked again"
    );
}

/// With XDP in namespaces: a health check's endpoint in the etcd namespace, made unreachable
/// from chosen nodes by blackhole routes. Reachable from one node of three it stays healthy
/// (1/3 > 18%) on all; from none, every node's XDP answer fails over; back, it returns.
#[test]
fn with_xdp_health_is_judged_from_every_node() {
    let mut cb = ClusterBed::create("dxch", 3, 3).unwrap();
    let endpoint: std::net::Ipv4Addr = [198, 51, 100, 2].into();
    cb.hub_address(endpoint).unwrap();
    let _target = Killed(
        std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &cb.hub_ns,
                TARGET,
                &format!("{endpoint}:8081"),
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let config = format!(
        "[cluster]\nlease_ttl_secs = {LEASE_TTL}\n\n\
         [health_check.web]\ntype = \"HTTP\"\nip_address = \"{endpoint}\"\nport = 8081\n\
         request_interval = 1\nfailure_threshold = 1\nconnect_timeout_ms = 300\n\n\
         [[zone]]\norigin = \"h.test.\"\n\
         [[zone.record]]\nname = \"www\"\ntype = \"A\"\nset_id = \"p\"\nfailover = \"PRIMARY\"\n\
         health_check = \"web\"\nttl = 5\nvalues = [\"192.0.2.1\"]\n\n\
         [[zone.record]]\nname = \"www\"\ntype = \"A\"\nset_id = \"s\"\nfailover = \"SECONDARY\"\n\
         ttl = 5\nvalues = [\"192.0.2.2\"]\n"
    );
    for i in 0..3 {
        cb.start_node(i, common::BIN, "native", &config, false)
            .unwrap();
    }
    let all_answer = |cb: &ClusterBed, address: &str, limit: Duration| {
        (0..3).all(|i| {
            ClusterBed::until(limit, || {
                xdp_answer(cb, i, "www.h.test.") == (address.to_string(), 1)
            })
        })
    };
    assert!(all_answer(&cb, "192.0.2.1", Duration::from_secs(15)));
    // Unreachable from nodes 1 and 2: their probes fail, node 0's succeed; 1 of 3 > 18%.
    cb.reach(1, endpoint, false).unwrap();
    cb.reach(2, endpoint, false).unwrap();
    let failing = |cb: &ClusterBed, i: usize| {
        let (_, v) = cb.call(i, "GET", "/healthcheck/web/status", None).unwrap();
        v["HealthCheckObservations"].as_array().map_or(0, |o| {
            o.iter()
                .filter(|o| {
                    o["StatusReport"]["Status"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("Failure")
                })
                .count()
        })
    };
    assert!(
        ClusterBed::until(Duration::from_secs(10), || (0..3)
            .all(|i| failing(&cb, i) == 2)),
        "two nodes of three see it fail: {:?}",
        cb.call(0, "GET", "/healthcheck/web/status", None).unwrap()
    );
    assert!(all_answer(&cb, "192.0.2.1", Duration::from_secs(1)));
    // From none: every node fails over, within interval x threshold and the watch.
    cb.reach(0, endpoint, false).unwrap();
    assert!(all_answer(&cb, "192.0.2.2", Duration::from_secs(1 + 3)));
    for i in 0..3 {
        cb.reach(i, endpoint, true).unwrap();
    }
    assert!(all_answer(&cb, "192.0.2.1", Duration::from_secs(1 + 3)));
}

/// delv's verdict on `name` A asked of `d`, trusting only `anchor`.
fn delv_validates(d: &Daemon, anchor: &std::path::Path, name: &str) -> String {
    dns_tests::signer::delv(d.port, anchor, "s.test", name, "A")
}

/// DNSSEC through one node signs on every node: the keys are shared through etcd, sealed under
/// the key file every node has; the change is INSYNC once both sign, and a validator trusting
/// the DS one node shows validates the answers of each. Signing stopped through the other
/// node stops on both.
#[test]
fn a_zone_signed_through_one_node_is_signed_by_every_node() {
    let dir = temp_dir("cluster-dnssec");
    let etcd = Etcd::start(&dir, 1).unwrap();
    let endpoints = etcd.endpoints();
    let key_file = dir.join("shared.dnssec-key");
    let more = format!("[store]\ndnssec_key_file = \"{}\"\n", key_file.display());
    let nodes: Vec<Daemon> = ["a", "b"]
        .iter()
        .map(|id| node_with(&dir, id, &endpoints, &more, &[]))
        .collect();
    let (code, v) = nodes[0].call(
        "POST",
        "/hostedzone",
        Some(json!({"Name": "s.test", "CallerReference": "s"})),
    );
    assert_eq!(code, 201, "{v}");
    let zone = bare(v["HostedZone"]["Id"].as_str().unwrap()).to_string();
    let (code, v) = upsert_a(&nodes[0], &zone, "www.s.test.", "192.0.2.7");
    assert_eq!(code, 200, "{v}");
    let insync = |d: &Daemon, v: &Value| {
        let change = v["ChangeInfo"]["Id"].as_str().unwrap().to_string();
        until(Duration::from_secs(10), "INSYNC", || {
            status(d, &change) == "INSYNC"
        });
    };
    insync(&nodes[0], &v);

    let (code, v) = nodes[1].call(
        "POST",
        "/keysigningkey",
        Some(json!({"CallerReference": "k", "HostedZoneId": zone, "Name": "shared_ksk",
                    "KeyManagementServiceArn": "arn:aws:kms:us-east-1:1:key/k", "Status": "ACTIVE"})),
    );
    assert_eq!(code, 201, "{v}");
    insync(&nodes[1], &v);
    let (code, v) = nodes[0].call("POST", &format!("/hostedzone/{zone}/enable-dnssec"), None);
    assert_eq!(code, 200, "{v}");
    insync(&nodes[0], &v);

    let (code, shown) = nodes[1].call("GET", &format!("/hostedzone/{zone}/dnssec"), None);
    assert_eq!(code, 200, "{shown}");
    assert_eq!(shown["Status"]["ServeSignature"], "SIGNING", "{shown}");
    let ksk = &shown["KeySigningKeys"][0];
    let anchor = dir.join("anchor.conf");
    std::fs::write(
        &anchor,
        format!(
            "trust-anchors {{ s.test. static-ds {} 13 2 \"{}\"; }};\n",
            ksk["KeyTag"].as_str().unwrap(),
            ksk["DigestValue"].as_str().unwrap()
        ),
    )
    .unwrap();
    for d in &nodes {
        let verdict = delv_validates(d, &anchor, "www.s.test");
        assert!(verdict.contains("; fully validated"), "{verdict}");
        let verdict = delv_validates(d, &anchor, "nothing.s.test");
        assert!(
            verdict.contains("negative response, fully validated"),
            "{verdict}"
        );
    }

    let (code, v) = nodes[1].call("POST", &format!("/hostedzone/{zone}/disable-dnssec"), None);
    assert_eq!(code, 200, "{v}");
    insync(&nodes[1], &v);
    for d in &nodes {
        let verdict = delv_validates(d, &anchor, "www.s.test");
        assert!(verdict.contains("resolution failed"), "{verdict}");
    }
    drop(nodes);
    drop(etcd);
    std::fs::remove_dir_all(&dir).unwrap();
}
