//! What the integration tests that drive a daemon over its API share: a daemon on loopback
//! (XDP off) with its store in a test directory, and helpers to call it.
#![allow(dead_code)] // each test crate uses part of it

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use dns_tests::api::bare;
use dns_tests::api::{Key, call, call_with, host_curl};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_dns-user-under-test");

#[allow(unused_imports)]
pub use dns_tests::free_port;

/// A daemon on loopback (XDP off) with its store in `dir`.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
    pub api: String,
    /// The access key (id, secret) calls are signed with, if the daemon wants one.
    pub key: Option<(String, String)>,
}

impl Daemon {
    pub fn start(dir: &Path, port: u16, api_port: u16, extra: &[&str]) -> Daemon {
        Self::start_inner(dir, port, api_port, None, extra)
    }

    /// A daemon whose API wants requests signed with `key` (id, secret; set in the config
    /// among `extra`).
    pub fn start_with_key(
        dir: &Path,
        port: u16,
        api_port: u16,
        key: (&str, &str),
        extra: &[&str],
    ) -> Daemon {
        let key = (key.0.to_string(), key.1.to_string());
        Self::start_inner(dir, port, api_port, Some(key), extra)
    }

    /// The key calls are signed with.
    pub fn key(&self) -> Option<Key<'_>> {
        self.key.as_ref().map(|(id, secret)| Key { id, secret })
    }

    fn start_inner(
        dir: &Path,
        port: u16,
        api_port: u16,
        key: Option<(String, String)>,
        extra: &[&str],
    ) -> Daemon {
        let store = dir.join("store.redb");
        let child = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--xdp-mode",
                "off",
                "--api",
                &format!("127.0.0.1:{api_port}"),
                "--store",
                store.to_str().unwrap(),
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log(dir))
            .spawn()
            .unwrap();
        let daemon = Daemon {
            child,
            port,
            api: format!("http://127.0.0.1:{api_port}/2013-04-01"),
            key,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while call_with(
            &host_curl,
            "GET",
            &daemon.url("/hostedzone"),
            None,
            daemon.key(),
        )
        .map(|(s, _)| s != 200)
        .unwrap_or(true)
        {
            assert!(Instant::now() < deadline, "the API did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        call_with(
            &host_curl,
            method,
            &self.url(path),
            body.as_deref(),
            self.key(),
        )
        .unwrap()
    }

    pub fn raw(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        call(&host_curl, method, &self.url(path), Some(body)).unwrap()
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill9(mut self) {
        // SAFETY: signalling the child this test started, by its PID.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGKILL) };
        let _ = self.child.wait();
        std::mem::forget(self);
    }

    pub fn ask(&self, name: &str, rtype: RecordType) -> Message {
        self.ask_from(name, rtype, None)
    }

    /// [`ask`](Self::ask) with an EDNS Client Subnet (address, prefix length).
    pub fn ask_from(
        &self,
        name: &str,
        rtype: RecordType,
        subnet: Option<(std::net::IpAddr, u8)>,
    ) -> Message {
        use hickory_proto::op::Edns;
        use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
        let mut q = Message::new(0x1234, MessageType::Query, OpCode::Query);
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        if let Some((addr, len)) = subnet {
            let mut edns = Edns::new();
            edns.options_mut()
                .insert(EdnsOption::Subnet(ClientSubnet::new(addr, len, 0)));
            q.set_edns(edns);
        }
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        socket
            .send_to(&q.to_vec().unwrap(), ("127.0.0.1", self.port))
            .unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = socket.recv_from(&mut buf).unwrap();
        Message::from_vec(&buf[..n]).unwrap()
    }

    /// The data of the answers of `rtype`, sorted.
    pub fn answer(&self, name: &str, rtype: RecordType) -> Vec<String> {
        self.answer_from(name, rtype, None)
    }

    /// [`answer`](Self::answer) with an EDNS Client Subnet.
    pub fn answer_from(
        &self,
        name: &str,
        rtype: RecordType,
        subnet: Option<(std::net::IpAddr, u8)>,
    ) -> Vec<String> {
        let m = self.ask_from(name, rtype, subnet);
        let mut v: Vec<String> = m
            .answers
            .iter()
            .filter(|r| r.record_type() == rtype)
            .map(|r| r.data.to_string())
            .collect();
        v.sort();
        v
    }

    /// Polls the change until INSYNC.
    pub fn wait_insync(&self, change: &str) {
        let change = bare(change);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, v) = self.call("GET", &format!("/change/{change}"), None);
            assert_eq!(status, 200, "{v}");
            if v["ChangeInfo"]["Status"] == "INSYNC" {
                return;
            }
            assert!(Instant::now() < deadline, "change {change} never INSYNC");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn create_zone(&self, name: &str) -> String {
        let (status, v) = self.call(
            "POST",
            "/hostedzone",
            Some(json!({"Name": name, "CallerReference": format!("ref-{name}")})),
        );
        assert_eq!(status, 201, "{v}");
        self.wait_insync(v["ChangeInfo"]["Id"].as_str().unwrap());
        bare(v["HostedZone"]["Id"].as_str().unwrap()).to_string()
    }

    /// Applies `changes` (a list of Route 53 changes) and returns the change id.
    pub fn change(&self, zone: &str, changes: Value) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/hostedzone/{zone}/rrset"),
            Some(json!({"ChangeBatch": {"Changes": changes}})),
        )
    }

    pub fn sets(&self, zone: &str) -> Value {
        let (status, v) = self.call("GET", &format!("/hostedzone/{zone}/rrset"), None);
        assert_eq!(status, 200, "{v}");
        v["ResourceRecordSets"].clone()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling the child this test started, by its PID.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// The daemon's log, `daemon.log` in its directory (kept across restarts).
fn log(dir: &Path) -> Stdio {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("daemon.log"))
        .map_or_else(|_| Stdio::null(), Stdio::from)
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dnsx-api-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn a(name: &str, ttl: u32, values: &[&str]) -> Value {
    json!({"Name": name, "Type": "A", "TTL": ttl,
           "ResourceRecords": values.iter().map(|v| json!({"Value": v})).collect::<Vec<_>>()})
}

pub fn create(set: Value) -> Value {
    json!({"Action": "CREATE", "ResourceRecordSet": set})
}
