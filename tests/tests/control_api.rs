//! The control API over real HTTP against the real daemon (userspace path, loopback): every
//! call, invalid input refused with nothing applied, concurrent batches, pagination, the
//! SigV4 access keys, durability across `kill -9`, and the CLI driving it all.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dns_tests::api::{Key, call, call_with, host_curl};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

mod common;

use common::{BIN, Daemon, a, bare, create, free_port, temp_dir};

/// The health checks made here probe loopback ports, which must be allowed.
const LOOPBACK_CHECKS: &[&str] = &["--health-allow", "127.0.0.0/8"];

#[test]
fn every_api_call_over_http() {
    let dir = temp_dir("calls");
    let d = Daemon::start(&dir, free_port(), free_port(), LOOPBACK_CHECKS);

    // Hosted zones: the embedded example was imported; a new one starts with SOA and NS.
    let (status, v) = d.call("GET", "/hostedzone", None);
    assert_eq!(status, 200);
    assert_eq!(v["HostedZones"][0]["Name"], "example.com.");
    assert!(v["HostedZones"][0]["ImportedFrom"].is_string(), "{v}");
    let zone = d.create_zone("api.test");
    let (status, v) = d.call("GET", &format!("/hostedzone/{zone}"), None);
    assert_eq!(
        (status, &v["HostedZone"]["Name"]),
        (200, &json!("api.test."))
    );
    assert_eq!(v["HostedZone"]["ResourceRecordSetCount"], 2);
    assert_eq!(d.ask("api.test.", RecordType::SOA).answers.len(), 1);
    let (status, v) = d.call(
        "POST",
        "/hostedzone",
        Some(json!({"Name": "api.test.", "CallerReference": "other"})),
    );
    assert_eq!(
        (status, &v["Error"]["Code"]),
        (409, &json!("HostedZoneAlreadyExists"))
    );

    // A change batch: PENDING, then INSYNC, then answered; routing policies included.
    let (status, v) = d.change(
        &zone,
        json!([
            create(a("www.api.test.", 60, &["192.0.2.1", "192.0.2.2"])),
            create(json!({"Name": "w.api.test.", "Type": "A", "SetIdentifier": "blue", "Weight": 1, "TTL": 30, "ResourceRecords": [{"Value": "192.0.2.10"}]})),
            create(json!({"Name": "w.api.test.", "Type": "A", "SetIdentifier": "green", "Weight": 0, "TTL": 30, "ResourceRecords": [{"Value": "192.0.2.11"}]})),
            create(json!({"Name": "api.test.", "Type": "A", "AliasTarget": {"DNSName": "www.api.test.", "EvaluateTargetHealth": false}})),
            create(json!({"Name": "api.test.", "Type": "MX", "TTL": 300, "ResourceRecords": [{"Value": "10 mail.api.test."}]})),
        ]),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ChangeInfo"]["Status"], "PENDING");
    assert!(v["ChangeInfo"]["SubmittedAt"].is_string());
    let change = v["ChangeInfo"]["Id"].as_str().unwrap().to_string();
    d.wait_insync(&change);
    assert_eq!(
        d.answer("www.api.test.", RecordType::A),
        ["192.0.2.1", "192.0.2.2"]
    );
    assert_eq!(d.answer("w.api.test.", RecordType::A), ["192.0.2.10"]);
    assert_eq!(
        d.answer("api.test.", RecordType::A),
        ["192.0.2.1", "192.0.2.2"],
        "apex alias"
    );
    let (status, v) = d.call("GET", "/change/CNOSUCHCHANGE", None);
    assert_eq!((status, &v["Error"]["Code"]), (404, &json!("NoSuchChange")));

    // UPSERT and an exact DELETE.
    let (status, v) = d.change(
        &zone,
        json!([
            {"Action": "UPSERT", "ResourceRecordSet": a("www.api.test.", 60, &["192.0.2.3"])},
            {"Action": "DELETE", "ResourceRecordSet": {"Name": "api.test.", "Type": "MX", "TTL": 300, "ResourceRecords": [{"Value": "10 mail.api.test."}]}},
        ]),
    );
    assert_eq!(status, 200, "{v}");
    d.wait_insync(v["ChangeInfo"]["Id"].as_str().unwrap());
    assert_eq!(d.answer("www.api.test.", RecordType::A), ["192.0.2.3"]);
    assert_eq!(d.ask("api.test.", RecordType::MX).answers.len(), 0);

    // Pagination: 25 more sets, pages of 10 in Route 53's order, nothing lost or repeated.
    let many: Vec<Value> = (0..25)
        .map(|i| create(a(&format!("h{i:02}.api.test."), 60, &["192.0.2.50"])))
        .collect();
    let (status, v) = d.change(&zone, json!(many));
    assert_eq!(status, 200, "{v}");
    let all = d.sets(&zone);
    let all: Vec<(String, String)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["Name"].as_str().unwrap().into(),
                s["Type"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(all.len(), 2 + 5 - 1 + 25, "{all:?}");
    assert_eq!(all[0].0, "api.test.", "the apex first");
    let mut paged = Vec::new();
    let mut query = "maxitems=10".to_string();
    let mut pages = 0;
    loop {
        let (status, v) = d.call("GET", &format!("/hostedzone/{zone}/rrset?{query}"), None);
        assert_eq!(status, 200, "{v}");
        pages += 1;
        let page = v["ResourceRecordSets"].as_array().unwrap();
        assert!(page.len() <= 10);
        paged.extend(page.iter().map(|s| {
            (
                s["Name"].as_str().unwrap().to_string(),
                s["Type"].as_str().unwrap().to_string(),
            )
        }));
        if v["IsTruncated"] != true {
            break;
        }
        query = format!(
            "maxitems=10&name={}&type={}",
            v["NextRecordName"].as_str().unwrap(),
            v["NextRecordType"].as_str().unwrap()
        );
        if let Some(id) = v["NextRecordIdentifier"].as_str() {
            query.push_str(&format!("&identifier={id}"));
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(paged, all, "pages join to the whole list");
    let (status, _) = d.call("GET", &format!("/hostedzone/{zone}/rrset?maxitems=0"), None);
    assert_eq!(status, 400);

    // Health checks: create, get, list, update, status, in use, delete.
    let (status, v) = d.call(
        "POST",
        "/healthcheck",
        Some(json!({"CallerReference": "hc-1", "HealthCheckConfig": {"Type": "TCP", "IPAddress": "127.0.0.1", "Port": 1, "RequestInterval": 1, "FailureThreshold": 1}})),
    );
    assert_eq!(status, 201, "{v}");
    let check = v["HealthCheck"]["Id"].as_str().unwrap().to_string();
    assert_eq!(v["HealthCheck"]["HealthCheckVersion"], 1);
    let (status, v) = d.call("GET", &format!("/healthcheck/{check}"), None);
    assert_eq!(
        (status, &v["HealthCheck"]["HealthCheckConfig"]["Port"]),
        (200, &json!(1))
    );
    let (status, v) = d.call("GET", "/healthcheck", None);
    assert_eq!(status, 200);
    assert_eq!(v["HealthChecks"].as_array().unwrap().len(), 1);
    let (status, v) = d.call(
        "POST",
        &format!("/healthcheck/{check}"),
        Some(json!({"HealthCheckVersion": 1, "Port": 2})),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["HealthCheck"]["HealthCheckVersion"], 2);
    let (status, v) = d.call(
        "POST",
        &format!("/healthcheck/{check}"),
        Some(json!({"HealthCheckVersion": 1, "Port": 3})),
    );
    assert_eq!(
        (status, &v["Error"]["Code"]),
        (409, &json!("HealthCheckVersionMismatch"))
    );
    // Nothing listens on port 2: unhealthy after one failed probe, with a failure reason.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, v) = d.call("GET", &format!("/healthcheck/{check}/status"), None);
        if status == 200 && v["Status"] == "Unhealthy" {
            assert!(
                v["HealthCheckObservations"][0]["StatusReport"]["Status"]
                    .as_str()
                    .unwrap()
                    .starts_with("Failure"),
                "{v}"
            );
            let path = format!("/healthcheck/{check}/lastfailurereason");
            let (status, v) = d.call("GET", &path, None);
            assert_eq!(status, 200, "{v}");
            assert!(
                v["HealthCheckObservations"][0]["StatusReport"]["Status"]
                    .as_str()
                    .unwrap()
                    .starts_with("Failure"),
                "{v}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A failover pair on the unhealthy check answers with the secondary.
    let (status, v) = d.change(
        &zone,
        json!([
            create(json!({"Name": "f.api.test.", "Type": "A", "SetIdentifier": "p", "Failover": "PRIMARY", "HealthCheckId": check, "TTL": 30, "ResourceRecords": [{"Value": "192.0.2.70"}]})),
            create(json!({"Name": "f.api.test.", "Type": "A", "SetIdentifier": "s", "Failover": "SECONDARY", "TTL": 30, "ResourceRecords": [{"Value": "192.0.2.71"}]})),
        ]),
    );
    assert_eq!(status, 200, "{v}");
    d.wait_insync(v["ChangeInfo"]["Id"].as_str().unwrap());
    assert_eq!(d.answer("f.api.test.", RecordType::A), ["192.0.2.71"]);
    let (status, v) = d.call("DELETE", &format!("/healthcheck/{check}"), None);
    assert_eq!(
        (status, &v["Error"]["Code"]),
        (400, &json!("HealthCheckInUse")),
        "{v}"
    );

    // TestDNSAnswer, with a resolver address and an ECS subnet.
    let (status, v) = d.call(
        "GET",
        "/testdnsanswer?recordname=www.api.test&recordtype=A&resolverip=198.51.100.7&edns0clientsubnetip=203.0.113.0&edns0clientsubnetmask=24",
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["RecordData"], json!(["192.0.2.3"]));
    assert_eq!(v["ResponseCode"], "NOERROR");
    let (_, v) = d.call(
        "GET",
        "/testdnsanswer?recordname=nope.api.test&recordtype=A",
        None,
    );
    assert_eq!(v["ResponseCode"], "NXDOMAIN");
    let (status, _) = d.call(
        "GET",
        "/testdnsanswer?recordname=www.api.test&recordtype=BOGUS",
        None,
    );
    assert_eq!(status, 400);

    // A zone with record sets cannot be deleted; emptied, it can, and stops answering.
    let (status, v) = d.call("DELETE", &format!("/hostedzone/{zone}"), None);
    assert_eq!(
        (status, &v["Error"]["Code"]),
        (400, &json!("HostedZoneNotEmpty"))
    );
    let deletes: Vec<Value> = d
        .sets(&zone)
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !(s["Name"] == "api.test." && (s["Type"] == "SOA" || s["Type"] == "NS")))
        .map(|s| json!({"Action": "DELETE", "ResourceRecordSet": s}))
        .collect();
    let (status, v) = d.change(&zone, json!(deletes));
    assert_eq!(status, 200, "{v}");
    let (status, v) = d.call("DELETE", &format!("/healthcheck/{check}"), None);
    assert_eq!(status, 200, "{v}");
    let (status, v) = d.call("DELETE", &format!("/hostedzone/{zone}"), None);
    assert_eq!(status, 200, "{v}");
    d.wait_insync(v["ChangeInfo"]["Id"].as_str().unwrap());
    assert_eq!(
        d.ask("www.api.test.", RecordType::A).metadata.response_code,
        ResponseCode::Refused
    );
    let (status, v) = d.call("GET", &format!("/hostedzone/{zone}"), None);
    assert_eq!(
        (status, &v["Error"]["Code"]),
        (404, &json!("NoSuchHostedZone"))
    );
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invalid_input_is_refused_precisely_and_changes_nothing() {
    let dir = temp_dir("invalid");
    let d = Daemon::start(&dir, free_port(), free_port(), LOOPBACK_CHECKS);
    let zone = d.create_zone("bad.test");
    let (status, v) = d.change(
        &zone,
        json!([create(a("www.bad.test.", 60, &["192.0.2.1"]))]),
    );
    assert_eq!(status, 200, "{v}");
    d.wait_insync(v["ChangeInfo"]["Id"].as_str().unwrap());
    let before = d.sets(&zone);
    let weighted = |id: &str, weight: i64| json!({"Name": "w.bad.test.", "Type": "A", "SetIdentifier": id, "Weight": weight, "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.9"}]});
    let path = format!("/hostedzone/{zone}/rrset");
    let cases: Vec<(String, &str)> = vec![
        ("{".into(), "malformed request body"),
        (r#"{"ChangeBatch": {"Changes": [], "Bogus": 1}}"#.into(), "unknown field `Bogus`"),
        (
            json!({"ChangeBatch": {"Changes": [create(weighted("x", 256))]}}).to_string(),
            "weight 256 is outside 0..255",
        ),
        (
            json!({"ChangeBatch": {"Changes": [create(json!({"Name": "g.bad.test.", "Type": "A", "SetIdentifier": "g", "GeoProximityLocation": {"Coordinates": {"Latitude": "1", "Longitude": "2"}, "Bias": 100}, "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}))]}}).to_string(),
            "bias 100 is outside -99..99",
        ),
        (
            json!({"ChangeBatch": {"Changes": [create(json!({"Name": "t.bad.test.", "Type": "A", "TTL": -1, "ResourceRecords": [{"Value": "192.0.2.1"}]}))]}}).to_string(),
            "TTL -1 is out of range",
        ),
        (
            json!({"ChangeBatch": {"Changes": [
                create(weighted("x", 1)),
                create(json!({"Name": "w.bad.test.", "Type": "A", "SetIdentifier": "y", "Failover": "PRIMARY", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.9"}]})),
            ]}}).to_string(),
            "mixes routing policies",
        ),
        (
            json!({"ChangeBatch": {"Changes": [
                create(json!({"Name": "l1.bad.test.", "Type": "A", "AliasTarget": {"DNSName": "l2.bad.test.", "EvaluateTargetHealth": false}})),
                create(json!({"Name": "l2.bad.test.", "Type": "A", "AliasTarget": {"DNSName": "l1.bad.test.", "EvaluateTargetHealth": false}})),
            ]}}).to_string(),
            "alias loop",
        ),
        (
            json!({"ChangeBatch": {"Changes": [create(json!({"Name": "h.bad.test.", "Type": "A", "SetIdentifier": "p", "Failover": "PRIMARY", "HealthCheckId": "no-such-check", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}))]}}).to_string(),
            "HealthCheckId no-such-check is not defined",
        ),
        (
            json!({"ChangeBatch": {"Changes": [{"Action": "DELETE", "ResourceRecordSet": a("www.bad.test.", 61, &["192.0.2.1"])}]}}).to_string(),
            "DELETE must match the existing record set exactly",
        ),
        (
            json!({"ChangeBatch": {"Changes": [create(a("www.other.test.", 60, &["192.0.2.1"]))]}}).to_string(),
            "is not in zone bad.test.",
        ),
        (
            json!({"ChangeBatch": {"Changes": [
                create(a("ok.bad.test.", 60, &["192.0.2.1"])),
                create(a("www.bad.test.", 60, &["192.0.2.1"])),
            ]}}).to_string(),
            "change #2 (CREATE www.bad.test. A): the record set already exists",
        ),
        (
            json!({"ChangeBatch": {"Changes": [{"Action": "DELETE", "ResourceRecordSet": d.sets(&zone).as_array().unwrap().iter().find(|s| s["Type"] == "SOA").unwrap().clone()}]}}).to_string(),
            "can only be changed with UPSERT",
        ),
    ];
    for (body, expected) in &cases {
        let (status, v) = d.raw("POST", &path, body);
        assert_eq!(status, 400, "{body}: {v}");
        let message = v["Error"]["Message"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{expected:?} not in {message:?}"
        );
        assert_eq!(d.sets(&zone), before, "state changed by {body}");
    }
    // The change that was half valid did not half-apply.
    assert_eq!(
        d.ask("ok.bad.test.", RecordType::A).metadata.response_code,
        ResponseCode::NXDomain
    );
    // Other calls: bad zone bodies, bad health checks, unknown zones.
    for (path, body, expected) in [
        (
            "/hostedzone",
            r#"{"Name": "x.test"}"#,
            "missing field `CallerReference`",
        ),
        (
            "/hostedzone",
            r#"{"Name": "..", "CallerReference": "r"}"#,
            "Name",
        ),
        (
            "/healthcheck",
            r#"{"CallerReference": "c", "HealthCheckConfig": {"Type": "HTTP", "IPAddress": "127.0.0.1", "FailureThreshold": 11}}"#,
            "FailureThreshold 11 is not 1..10",
        ),
        (
            "/healthcheck",
            r#"{"CallerReference": "c", "HealthCheckConfig": {"Type": "HTTP", "IPAddress": "127.0.0.1", "Bogus": 1}}"#,
            "unknown field `Bogus`",
        ),
        (
            "/healthcheck",
            r#"{"CallerReference": "c", "HealthCheckConfig": {"Type": "CALCULATED", "HealthThreshold": 1, "ChildHealthChecks": ["nope"]}}"#,
            "child nope is not defined",
        ),
    ] {
        let (status, v) = d.raw("POST", path, body);
        assert_eq!(status, 400, "{path} {body}: {v}");
        let message = v["Error"]["Message"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{expected:?} not in {message:?}"
        );
    }
    let (status, v) = d.call("GET", "/healthcheck", None);
    assert_eq!(
        (status, v["HealthChecks"].as_array().unwrap().len()),
        (200, 0)
    );
    let (status, _) = d.change("ZNOSUCHZONE", json!([create(a("a.b.", 1, &["192.0.2.1"]))]));
    assert_eq!(status, 404);
    // The server kept answering throughout.
    assert_eq!(d.answer("www.bad.test.", RecordType::A), ["192.0.2.1"]);
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn concurrent_batches_to_one_zone() {
    let dir = temp_dir("concurrent");
    let d = Daemon::start(&dir, free_port(), free_port(), LOOPBACK_CHECKS);
    let zone = d.create_zone("conc.test");
    // 16 batches of distinct names and 8 racing to create the same name, all at once.
    let results: Vec<(String, u16, Value)> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for i in 0..16 {
            let (d, zone) = (&d, &zone);
            handles.push(s.spawn(move || {
                let name = format!("n{i}.conc.test.");
                let (status, v) = d.change(zone, json!([create(a(&name, 60, &["192.0.2.1"]))]));
                (name, status, v)
            }));
        }
        for i in 0..8 {
            let (d, zone) = (&d, &zone);
            handles.push(s.spawn(move || {
                let value = format!("192.0.2.{}", 100 + i);
                let (status, v) =
                    d.change(zone, json!([create(a("same.conc.test.", 60, &[&value]))]));
                ("same.conc.test.".to_string(), status, v)
            }));
        }
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let distinct_ok = results[..16].iter().filter(|(_, s, _)| *s == 200).count();
    assert_eq!(distinct_ok, 16, "{results:?}");
    let same_ok: Vec<&Value> = results[16..]
        .iter()
        .filter(|(_, s, _)| *s == 200)
        .map(|(_, _, v)| v)
        .collect();
    assert_eq!(
        same_ok.len(),
        1,
        "exactly one CREATE of the same name wins: {results:?}"
    );
    for (_, status, v) in &results[16..] {
        if *status != 200 {
            assert_eq!(*status, 400);
            assert!(
                v["Error"]["Message"]
                    .as_str()
                    .unwrap()
                    .contains("already exists")
            );
        }
    }
    // Sequence numbers are distinct; all turn INSYNC; all are served.
    let mut ids: Vec<&str> = results
        .iter()
        .filter(|(_, s, _)| *s == 200)
        .map(|(_, _, v)| v["ChangeInfo"]["Id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 17);
    for id in &ids {
        d.wait_insync(id);
    }
    for i in 0..16 {
        assert_eq!(
            d.answer(&format!("n{i}.conc.test."), RecordType::A),
            ["192.0.2.1"]
        );
    }
    assert_eq!(d.answer("same.conc.test.", RecordType::A).len(), 1);
    assert_eq!(d.sets(&zone).as_array().unwrap().len(), 2 + 17);
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn acknowledged_changes_survive_kill_9() {
    let dir = temp_dir("durable");
    let (port, api_port) = (free_port(), free_port());
    let d = Daemon::start(&dir, port, api_port, LOOPBACK_CHECKS);
    let zone = d.create_zone("durable.test");
    let (status, v) = d.call(
        "POST",
        "/healthcheck",
        Some(json!({"CallerReference": "d-1", "HealthCheckConfig": {"Type": "TCP", "IPAddress": "127.0.0.1", "Port": 9}})),
    );
    assert_eq!(status, 201, "{v}");
    let check = v["HealthCheck"]["Id"].as_str().unwrap().to_string();
    // 30 acknowledged batches, the last killed right after its acknowledgement (no wait for
    // INSYNC): each must be there after the restart.
    let mut acknowledged = Vec::new();
    for i in 0..30 {
        let name = format!("k{i}.durable.test.");
        let (status, v) = d.change(
            &zone,
            json!([create(a(&name, 60, &[&format!("192.0.2.{i}")]))]),
        );
        assert_eq!(status, 200, "{v}");
        acknowledged.push((
            name,
            format!("192.0.2.{i}"),
            v["ChangeInfo"]["Id"].as_str().unwrap().to_string(),
        ));
    }
    // Also a change to the imported example zone: it survives the re-import at start.
    let (status, v) = {
        let (_, zones) = d.call("GET", "/hostedzone", None);
        let example = zones["HostedZones"]
            .as_array()
            .unwrap()
            .iter()
            .find(|z| z["Name"] == "example.com.")
            .unwrap()["Id"]
            .as_str()
            .map(bare)
            .unwrap()
            .to_string();
        d.change(
            &example,
            json!([create(a("api-made.example.com.", 60, &["192.0.2.200"]))]),
        )
    };
    assert_eq!(status, 200, "{v}");
    d.kill9();

    let started = Instant::now();
    let d = Daemon::start(&dir, port, api_port, LOOPBACK_CHECKS);
    eprintln!("restart after kill -9: API up in {:?}", started.elapsed());
    for (name, address, change) in &acknowledged {
        assert_eq!(d.answer(name, RecordType::A), [address.as_str()], "{name}");
        d.wait_insync(change);
    }
    assert_eq!(
        d.answer("api-made.example.com.", RecordType::A),
        ["192.0.2.200"]
    );
    let (status, _) = d.call("GET", &format!("/healthcheck/{check}"), None);
    assert_eq!(status, 200, "the health check is stored too");
    assert_eq!(d.sets(&zone).as_array().unwrap().len(), 2 + 30);
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn signatures_are_required_when_keys_are_configured_and_off_loopback() {
    let dir = temp_dir("sigv4");
    let config = dir.join("dns.toml");
    let (port, api_port) = (free_port(), free_port());
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\n[xdp]\nmode = \"off\"\n[api]\nlisten = \"127.0.0.1:{api_port}\"\n[api.access_keys]\nAKIDTEST = \"s3cret\"\n\
             [[zone]]\norigin = \"t.test.\"\n[[zone.record]]\nname = \"www\"\ntype = \"A\"\nttl = 60\nvalues = [\"192.0.2.1\"]\n"
        ),
    )
    .unwrap();
    let store = dir.join("store.redb");
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{api_port}/2013-04-01/hostedzone");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    while Instant::now() < deadline {
        if let Ok(r) = call(&host_curl, "GET", &url, None) {
            last = Some(r);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Unsigned, signed with an unknown key or the wrong secret: refused, 403 with AWS's codes.
    let (status, v) = last.expect("API up");
    assert_eq!(
        (status, &v["Error"]["Code"]),
        (403, &json!("IncompleteSignature"))
    );
    let key = |id, secret| Some(Key { id, secret });
    let (status, v) = call_with(&host_curl, "GET", &url, None, key("OTHER", "s3cret")).unwrap();
    assert_eq!(
        (status, &v["Error"]["Code"]),
        (403, &json!("InvalidClientTokenId"))
    );
    let (status, v) = call_with(&host_curl, "GET", &url, None, key("AKIDTEST", "wrong")).unwrap();
    assert_eq!(
        (status, &v["Error"]["Code"]),
        (403, &json!("SignatureDoesNotMatch"))
    );
    // Signed by curl's own SigV4 with the right key: served, a body and a query included.
    let (status, v) = call_with(&host_curl, "GET", &url, None, key("AKIDTEST", "s3cret")).unwrap();
    assert_eq!(
        (status, &v["HostedZones"][0]["Name"]),
        (200, &json!("t.test.")),
        "{v}"
    );
    let body = json!({"Name": "signed.test", "CallerReference": "signed"}).to_string();
    let (status, v) = call_with(
        &host_curl,
        "POST",
        &url,
        Some(&body),
        key("AKIDTEST", "s3cret"),
    )
    .unwrap();
    assert_eq!(status, 201, "{v}");
    let zone = v["HostedZone"]["Id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    // (In sorted order: curl 7.88 signs the query as it is given, where SigV4 sorts it.)
    let sets = format!(
        "http://127.0.0.1:{api_port}/2013-04-01/hostedzone/{zone}/rrset?name=signed.test.&type=NS"
    );
    let (status, v) = call_with(&host_curl, "GET", &sets, None, key("AKIDTEST", "s3cret")).unwrap();
    assert_eq!(status, 200, "{v}");
    // The CLI signs too (the keys from the environment, as aws-cli takes them).
    let api = format!("http://127.0.0.1:{api_port}");
    let out = Command::new(BIN)
        .args(["zone", "list", "--api-url", &api])
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "s3cret")
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("signed.test."),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["zone", "list", "--api-url", &api])
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SignatureDoesNotMatch"));
    // SAFETY: signalling the child this test started, by its PID.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let _ = child.wait();

    // Off loopback without a token: refused at start with a clear message.
    let out = Command::new(BIN)
        .args([
            "check-config",
            "--api",
            "0.0.0.0:8053",
            "--store",
            store.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("is not a loopback address: set api.access_keys"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs the CLI against `api`; returns stdout (panics on failure).
fn cli(api: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .args(["--api-url", api])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dns-user {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_cli_drives_the_api() {
    let dir = temp_dir("cli");
    let (port, api_port) = (free_port(), free_port());
    let d = Daemon::start(&dir, port, api_port, LOOPBACK_CHECKS);
    let api = format!("http://127.0.0.1:{api_port}");

    let out = cli(&api, &["zone", "create", "cli.test"]);
    assert!(
        out.contains("cli.test.") && out.contains("PENDING"),
        "{out}"
    );
    let out = cli(&api, &["zone", "list"]);
    assert!(
        out.starts_with("ID") && out.contains("cli.test.") && out.contains("example.com."),
        "{out}"
    );
    let zones: Value = serde_json::from_str(&cli(&api, &["zone", "list", "--json"])).unwrap();
    assert_eq!(zones["HostedZones"].as_array().unwrap().len(), 2);

    let batch = dir.join("batch.json");
    std::fs::write(
        &batch,
        json!({"Comment": "from the CLI", "Changes": [
            create(a("www.cli.test.", 60, &["192.0.2.5"])),
            create(json!({"Name": "w.cli.test.", "Type": "A", "SetIdentifier": "a", "Weight": 3, "TTL": 30, "ResourceRecords": [{"Value": "192.0.2.6"}]})),
        ]})
        .to_string(),
    )
    .unwrap();
    let out = cli(
        &api,
        &["change", "apply", batch.to_str().unwrap(), "--wait"],
    );
    assert!(
        out.contains("INSYNC") && out.contains("from the CLI"),
        "{out}"
    );
    assert_eq!(d.answer("www.cli.test.", RecordType::A), ["192.0.2.5"]);
    let id = out
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let got: Value = serde_json::from_str(&cli(&api, &["change", "get", id, "--json"])).unwrap();
    assert_eq!(got["ChangeInfo"]["Status"], "INSYNC");

    let out = cli(&api, &["zone", "records", "cli.test"]);
    assert!(
        out.contains("www.cli.test.") && out.contains("weight 3"),
        "{out}"
    );
    let page: Value = serde_json::from_str(&cli(
        &api,
        &["zone", "records", "cli.test", "--max-items", "1", "--json"],
    ))
    .unwrap();
    assert_eq!(page["IsTruncated"], true);

    let out = cli(
        &api,
        &[
            "test-answer",
            "www.cli.test",
            "A",
            "--ecs",
            "198.51.100.0/24",
        ],
    );
    assert!(
        out.contains("NOERROR") && out.contains("192.0.2.5"),
        "{out}"
    );

    let check = dir.join("check.json");
    std::fs::write(
        &check,
        r#"{"Type": "TCP", "IPAddress": "127.0.0.1", "Port": 9, "RequestInterval": 1}"#,
    )
    .unwrap();
    let created: Value = serde_json::from_str(&cli(
        &api,
        &["health", "create", check.to_str().unwrap(), "--json"],
    ))
    .unwrap();
    let check_id = created["HealthCheck"]["Id"].as_str().unwrap().to_string();
    let out = cli(&api, &["health", "list"]);
    assert!(out.contains(&check_id) && out.contains("TCP"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = cli(&api, &["health", "status", &check_id]);
        if out.contains("last failure 2") {
            break;
        }
        assert!(Instant::now() < deadline, "{out}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let patch = dir.join("patch.json");
    std::fs::write(&patch, r#"{"Port": 10}"#).unwrap();
    let out = cli(
        &api,
        &["health", "update", &check_id, patch.to_str().unwrap()],
    );
    assert!(out.contains("127.0.0.1:10"), "{out}");
    cli(&api, &["health", "delete", &check_id]);

    // A refusal is a clear error and a non-zero exit.
    let out = Command::new(BIN)
        .args(["zone", "delete", "cli.test", "--api-url", &api])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("HostedZoneNotEmpty"), "{stderr}");
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One bad zone never stops the others: the daemon starts and serves the zones that build,
/// and check-config refuses the config, naming the broken file and line.
#[test]
fn a_broken_zone_file_leaves_the_other_zones_served() {
    let dir = temp_dir("broken-zone");
    std::fs::write(
        dir.join("good.zone"),
        "$TTL 60\n@ IN SOA ns1 host 1 7200 900 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.53\nwww IN A 192.0.2.7\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("bad.zone"),
        "$TTL 60\n@ IN SOA ns1 host 1 7200 900 1209600 60\nwww IN A 192.0.2.999\n",
    )
    .unwrap();
    let config = dir.join("dns.toml");
    std::fs::write(
        &config,
        "[[zone]]\norigin = \"good.test.\"\nfile = \"good.zone\"\n\n[[zone]]\norigin = \"bad.test.\"\nfile = \"bad.zone\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let d = Daemon::start(&dir, free_port(), free_port(), &["--config", config]);
    assert_eq!(
        dns_tests::a_addresses(&d.ask("www.good.test.", RecordType::A)),
        [std::net::Ipv4Addr::new(192, 0, 2, 7)]
    );
    assert_eq!(
        d.ask("www.bad.test.", RecordType::A).metadata.response_code,
        ResponseCode::Refused
    );
    let (status, zones) = d.call("GET", "/hostedzone", None);
    assert_eq!(status, 200);
    assert!(!zones.to_string().contains("bad.test."), "{zones}");
    drop(d);

    let out = Command::new(BIN)
        .args(["check-config", "--config", config, "--store"])
        .arg(dir.join("check.redb"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("bad.zone:3") && stderr.contains("bad A record"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
