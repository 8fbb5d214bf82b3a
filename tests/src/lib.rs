//! Test infrastructure shared by the integration tests (`tests/tests/`), `cargo xtask run` and
//! `cargo xtask bench`.

pub mod api;
pub mod cluster_bed;
pub mod dashboard;
pub mod etcd;
pub mod fixtures;
pub mod frame;
pub mod mmdb;
pub mod signer;
pub mod testbed;

pub use testbed::{
    CLIENT_V4, CLIENT_V6, METRICS_ADDR, Process, SERVER_V4, SERVER_V6, Side, Testbed, a_addresses,
    metric, run_in_ns,
};

/// A loopback port free for both TCP and UDP, for a server a test starts. Chosen below the
/// kernel's ephemeral range (32768 and up by default), so no client socket of a concurrently
/// running test can take it between this check and the server's bind; other tests pick at
/// random from 20,000 ports and check the same way.
pub fn free_port() -> u16 {
    use std::net::{TcpListener, UdpSocket};
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = u64::from(std::process::id()) << 32
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos().into());
    for _ in 0..1000 {
        // SplitMix64 over a per-process seed: tests in one process and in several spread out.
        let mut z = STATE
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(seed);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let port = 12_000 + ((z ^ (z >> 31)) % 20_000) as u16;
        let tcp = TcpListener::bind(("127.0.0.1", port));
        let udp = UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for TCP and UDP in 12000..32000");
}

/// The capabilities `serve` keeps (dns_user::privileges): CAP_NET_BIND_SERVICE (10),
/// CAP_NET_ADMIN (12), CAP_PERFMON (38), CAP_BPF (39), as a /proc mask.
pub const KEPT_CAPABILITIES: u64 = (1 << 10) | (1 << 12) | (1 << 38) | (1 << 39);

/// Asserts that every thread of process `pid` (more than two: the runtime's are there) holds
/// [`KEPT_CAPABILITIES`] in its permitted, effective and bounding sets, and none inheritable.
pub fn assert_kept_capabilities(pid: u32) {
    let threads = thread_capabilities(pid);
    assert!(
        threads.len() > 2,
        "the runtime's threads are there: {threads:?}"
    );
    for (tid, [inheritable, permitted, effective, bounding]) in threads {
        assert_eq!(inheritable, 0, "thread {tid}");
        assert_eq!(
            (permitted, effective, bounding),
            (KEPT_CAPABILITIES, KEPT_CAPABILITIES, KEPT_CAPABILITIES),
            "thread {tid}: permitted {permitted:x}, effective {effective:x}, bounding {bounding:x}"
        );
    }
}

/// A BPF filesystem of a test's own, mounted at `path` (created) and unmounted on drop with
/// every pin in it.
pub struct BpfFs {
    pub path: std::path::PathBuf,
}

impl BpfFs {
    pub fn mount(path: &std::path::Path) -> anyhow::Result<BpfFs> {
        std::fs::create_dir_all(path)?;
        let status = std::process::Command::new("mount")
            .args(["-t", "bpf", "bpf"])
            .arg(path)
            .status()?;
        anyhow::ensure!(
            status.success(),
            "mount -t bpf bpf {}: {status}",
            path.display()
        );
        Ok(BpfFs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for BpfFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// A Route 53 change batch (JSON) that creates one A record set.
pub fn a_record_batch(action: &str, name: &str, address: &str) -> String {
    format!(
        r#"{{"Changes": [{{"Action": "{action}", "ResourceRecordSet": {{"Name": "{name}",
            "Type": "A", "TTL": 60, "ResourceRecords": [{{"Value": "{address}"}}]}}}}]}}"#
    )
}

/// Every thread of process `pid`: (thread id, CapInh, CapPrm, CapEff, CapBnd) from
/// `/proc/PID/task/TID/status`.
pub fn thread_capabilities(pid: u32) -> Vec<(String, [u64; 4])> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let path = entry.unwrap().path();
        let Ok(status) = std::fs::read_to_string(path.join("status")) else {
            continue; // the thread ended meanwhile
        };
        let field = |name: &str| {
            let line = status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("{name} in {}", path.display()));
            u64::from_str_radix(line.trim(), 16).unwrap()
        };
        let tid = path.file_name().unwrap().to_string_lossy().into_owned();
        out.push((
            tid,
            [
                field("CapInh:"),
                field("CapPrm:"),
                field("CapEff:"),
                field("CapBnd:"),
            ],
        ));
    }
    out
}
