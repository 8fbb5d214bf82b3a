//! A real etcd cluster on loopback for the cluster tests and `cargo xtask run --cluster`:
//! members started from Debian's `etcd` with free ports and data in a test directory, killed
//! and restarted by PID; and a TCP proxy that cuts one daemon off from etcd and heals it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// One etcd member.
pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    /// The address it listens on (127.0.0.1, or one in [`Etcd::netns`]).
    pub host: std::net::IpAddr,
    dir: PathBuf,
    child: Option<Child>,
}

impl Member {
    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.host, self.client_port)
    }

    fn peer(&self) -> String {
        format!("http://{}:{}", self.host, self.peer_port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

/// An etcd cluster of members on 127.0.0.1 (or on one address inside a namespace).
pub struct Etcd {
    pub members: Vec<Member>,
    initial_cluster: String,
    /// The network namespace the members run in (`None`: the host's loopback).
    pub netns: Option<String>,
}

impl Etcd {
    /// Starts `n` members on 127.0.0.1 (elections in about half a second, 2,048 operations
    /// per transaction, history compacted every 1,000 revisions) and waits until they serve.
    pub fn start(dir: &Path, n: usize) -> anyhow::Result<Etcd> {
        let ports: Vec<(u16, u16)> = (0..n)
            .map(|_| (crate::free_port(), crate::free_port()))
            .collect();
        Etcd::start_at(dir, [127, 0, 0, 1].into(), None, &ports)
    }

    /// [`start`](Self::start) with members on `host` in namespace `netns`, each on its
    /// (client, peer) ports.
    pub fn start_at(
        dir: &Path,
        host: std::net::IpAddr,
        netns: Option<&str>,
        ports: &[(u16, u16)],
    ) -> anyhow::Result<Etcd> {
        let members: Vec<Member> = ports
            .iter()
            .enumerate()
            .map(|(i, (client_port, peer_port))| Member {
                name: format!("m{i}"),
                client_port: *client_port,
                peer_port: *peer_port,
                host,
                dir: dir.join(format!("etcd-m{i}")),
                child: None,
            })
            .collect();
        let n = members.len();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer()))
            .collect::<Vec<_>>()
            .join(",");
        let mut etcd = Etcd {
            members,
            initial_cluster,
            netns: netns.map(str::to_string),
        };
        for i in 0..n {
            etcd.spawn(i)?;
        }
        etcd.wait_healthy(Duration::from_secs(20))?;
        Ok(etcd)
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let log = std::fs::File::create(self.members[i].dir.with_extension("log"))?;
        let child = self
            .command(i, "new")?
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting etcd (Debian package etcd-server; scripts/bootstrap installs it)")?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// `program` in the members' namespace.
    fn program(&self, program: &str) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns, program]);
                cmd
            }
            None => Command::new(program),
        }
    }

    /// Member `i`'s etcd command; `state`: `new` (the first start) or `existing` (a
    /// restart: it rejoins).
    fn command(&self, i: usize, state: &str) -> anyhow::Result<Command> {
        let m = &self.members[i];
        let mut cmd = self.program("etcd");
        cmd.args([
            "--name",
            &m.name,
            "--data-dir",
            m.dir.to_str().context("path")?,
            "--listen-client-urls",
            &m.endpoint(),
            "--advertise-client-urls",
            &m.endpoint(),
            "--listen-peer-urls",
            &m.peer(),
            "--initial-advertise-peer-urls",
            &m.peer(),
            "--initial-cluster",
            &self.initial_cluster,
            "--initial-cluster-state",
            state,
            "--initial-cluster-token",
            "dns-user-test",
            "--heartbeat-interval",
            "50",
            "--election-timeout",
            "500",
            "--max-txn-ops",
            "2048",
            "--auto-compaction-mode",
            "revision",
            "--auto-compaction-retention",
            "1000",
        ]);
        Ok(cmd)
    }

    /// The client endpoints, comma-separated (what `--etcd` takes).
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(Member::endpoint)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `etcdctl` against the running members.
    pub fn ctl(&self, args: &[&str]) -> anyhow::Result<String> {
        let endpoints: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.running())
            .map(Member::endpoint)
            .collect();
        let out = self
            .program("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(endpoints.join(","))
            .arg("--command-timeout=3s")
            .args(args)
            .output()
            .context("running etcdctl")?;
        if !out.status.success() {
            bail!(
                "etcdctl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Waits until a write through the running members succeeds.
    pub fn wait_healthy(&self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            match self.ctl(&["put", "/health-probe", "1"]) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The index of the member that leads now.
    pub fn leader(&self) -> anyhow::Result<usize> {
        let out = self.ctl(&["endpoint", "status", "-w", "json"])?;
        let status: serde_json::Value = serde_json::from_str(&out)?;
        for entry in status.as_array().context("a list")? {
            let member = entry["Status"]["header"]["member_id"].as_u64();
            let leader = entry["Status"]["leader"].as_u64();
            if member.is_some() && member == leader {
                let endpoint = entry["Endpoint"].as_str().context("endpoint")?;
                return self
                    .members
                    .iter()
                    .position(|m| m.endpoint() == endpoint)
                    .context("the leader's endpoint is a member's");
            }
        }
        bail!("no leader in {out}")
    }

    /// SIGKILLs member `i` (by its PID) and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            // SAFETY: signalling a process this harness started, by its PID.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
            let _ = child.wait();
        }
    }

    /// Starts member `i` again on its data (it rejoins).
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.members[i].dir.with_extension("log"))?;
        let child = self
            .command(i, "existing")?
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.members[i].child = Some(child);
        Ok(())
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        // Each member's data preallocates over 100 MB of write-ahead log: removed with it
        // (its log is kept).
        for i in 0..self.members.len() {
            self.kill(i);
            let _ = std::fs::remove_dir_all(&self.members[i].dir);
        }
    }
}

/// A TCP proxy on 127.0.0.1 in front of `target`: what a daemon reaches etcd through, so a
/// test can cut it off (every connection closed, new ones refused) and heal it.
pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(target: u16) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (c, o, s) = (cut.clone(), open.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                if c.load(Ordering::Relaxed) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let mut held = o.lock().expect("proxy");
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
                        continue;
                    };
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
                held.push(client);
                held.push(server);
            }
        });
        Ok(Proxy {
            port,
            cut,
            open,
            stop,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Closes every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::Relaxed);
        for stream in self.open.lock().expect("proxy").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    pub fn heal(&self) {
        self.cut.store(false, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cut();
    }
}
