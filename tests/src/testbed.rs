//! A pair of network namespaces joined by a veth pair, and processes run
//! inside them that are ended (by PID) and removed with the testbed.
//!
//! ```text
//!   netns <name>-c                     netns <name>-s
//!   client (dig, kdig, dnsperf)        dns-user serve --iface <veth-s>
//!   <veth-c> 192.0.2.2/24  <-------->  <veth-s> 192.0.2.1/24
//!            2001:db8::2/64                     2001:db8::1/64
//! ```
//!
//! Only documentation prefixes (RFC 5737, RFC 3849), and only inside namespaces made here.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
/// Where [`Testbed::start_service`] serves metrics, inside the server namespace.
pub const METRICS_ADDR: &str = "127.0.0.1:9153";

/// Which end of the testbed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Server,
    Client,
}

/// Two namespaces and a veth pair; removed (with every process started in them) on drop.
pub struct Testbed {
    pub server_ns: String,
    pub client_ns: String,
    pub server_if: String,
    pub client_if: String,
    /// A folder of the testbed's own (the daemon's store lives here), removed on drop.
    pub dir: std::path::PathBuf,
    processes: Vec<Child>,
    /// Whether [`start_service`](Self::start_service) ran (the pass program is attached).
    pub started: bool,
}

fn run(cmd: &mut Command) -> anyhow::Result<Output> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    run(Command::new("ip").args(args)).map(|_| ())
}

impl Testbed {
    /// Creates the namespaces `<tag>-<pid>-<n>-{s,c}`. Needs root.
    pub fn create(tag: &str) -> anyhow::Result<Testbed> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}{}", std::process::id() % 100_000, n);
        let bed = Testbed {
            server_ns: format!("{tag}-{id}-s"),
            client_ns: format!("{tag}-{id}-c"),
            server_if: format!("dxs{id}"),
            client_if: format!("dxc{id}"),
            dir: std::env::temp_dir().join(format!("dnsx-bed-{tag}-{id}")),
            processes: Vec::new(),
            started: false,
        };
        let _ = std::fs::remove_dir_all(&bed.dir);
        std::fs::create_dir_all(&bed.dir).context("creating the testbed folder")?;
        bed.setup()
            .context("creating the test namespaces (needs root)")?;
        Ok(bed)
    }

    fn setup(&self) -> anyhow::Result<()> {
        let (s, c) = (self.server_ns.as_str(), self.client_ns.as_str());
        ip(&["netns", "add", s])?;
        ip(&["netns", "add", c])?;
        ip(&[
            "link",
            "add",
            &self.server_if,
            "netns",
            s,
            "type",
            "veth",
            "peer",
            "name",
            &self.client_if,
            "netns",
            c,
        ])?;
        for (ns, ifname, v4, v6) in [
            (s, &self.server_if, SERVER_V4, SERVER_V6),
            (c, &self.client_if, CLIENT_V4, CLIENT_V6),
        ] {
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", ifname])?;
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                ifname,
                "nodad",
            ])?;
            ip(&["-n", ns, "link", "set", ifname, "up"])?;
        }
        Ok(())
    }

    /// The namespace of `side`.
    pub fn ns(&self, side: Side) -> &str {
        match side {
            Side::Server => &self.server_ns,
            Side::Client => &self.client_ns,
        }
    }

    /// A command that runs `program` inside `side`'s namespace.
    pub fn command(&self, side: Side, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns(side), program]);
        cmd
    }

    /// Runs `program args` in `side` and returns its stdout (error if it fails).
    pub fn output(&self, side: Side, program: &str, args: &[&str]) -> anyhow::Result<String> {
        let out = run(self.command(side, program).args(args))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts a long-running process in `side`; it is ended when the testbed drops. Its stderr
    /// is collected (and echoed when `echo` is set).
    pub fn spawn(
        &mut self,
        side: Side,
        program: &str,
        args: &[&str],
        echo: bool,
    ) -> anyhow::Result<Process> {
        // Every daemon of this testbed keeps its store in the testbed's folder (so a restart
        // finds what the previous run stored), never in the system default.
        let store = self.store();
        let mut args: Vec<&str> = args.to_vec();
        if args.first() == Some(&"serve") && !args.contains(&"--store") {
            args.extend(["--store", &store]);
        }
        let mut child = self
            .command(side, program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("piped");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("{line}");
                }
                sink.lock().expect("log lock").push(line);
            }
        });
        let process = Process {
            pid: child.id(),
            lines,
        };
        self.processes.push(child);
        Ok(process)
    }

    /// The store file daemons started by [`spawn`](Self::spawn) use.
    pub fn store(&self) -> String {
        self.dir.join("store.redb").display().to_string()
    }

    /// Has the process with `pid` exited? (Reaps it if so.)
    pub fn exited(&mut self, pid: u32) -> Option<std::process::ExitStatus> {
        self.processes
            .iter_mut()
            .find(|c| c.id() == pid)
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Ends one process started here: SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, pid: u32, grace: Duration) -> Option<std::process::ExitStatus> {
        let idx = self.processes.iter().position(|c| c.id() == pid)?;
        let mut child = self.processes.remove(idx);
        stop_child(&mut child, grace)
    }

    /// Kills one process started here with SIGKILL (a crash: nothing of its own runs) and
    /// reaps it.
    pub fn kill(&mut self, pid: u32) -> Option<std::process::ExitStatus> {
        let idx = self.processes.iter().position(|c| c.id() == pid)?;
        let mut child = self.processes.remove(idx);
        let _ = child.kill();
        child.wait().ok()
    }

    /// Starts `bin serve` in the server namespace on the testbed's addresses (port 53, IPv4 and
    /// IPv6) with XDP on the server veth in `mode`, plus `extra` arguments, and waits until it
    /// is ready. In native mode the client veth first gets the pass program, without which the
    /// kernel drops XDP_TX frames on veth.
    pub fn start_service(
        &mut self,
        bin: &str,
        mode: &str,
        extra: &[&str],
        echo: bool,
    ) -> anyhow::Result<Process> {
        if mode == "native" {
            let client_if = self.client_if.clone();
            let args = ["xdp-pass", "--iface", &client_if, "--xdp-mode", "native"];
            let pass = self.spawn(Side::Client, bin, &args, echo)?;
            pass.wait_for(self, "pass program attached", Duration::from_secs(20))?;
        }
        let mut args = self.serve_args(mode);
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let daemon = self.spawn(Side::Server, bin, &args, echo)?;
        daemon.wait_for(self, "ready:", Duration::from_secs(30))?;
        self.started = true;
        Ok(daemon)
    }

    /// The arguments [`start_service`](Self::start_service) runs `serve` with: the testbed's
    /// addresses on port 53, XDP on the server veth in `mode`, metrics on [`METRICS_ADDR`].
    pub fn serve_args(&self, mode: &str) -> Vec<String> {
        [
            "serve",
            "--listen",
            &format!("{SERVER_V4}:53"),
            "--listen",
            &format!("[{SERVER_V6}]:53"),
            "--iface",
            &self.server_if,
            "--xdp-mode",
            mode,
            "--metrics",
            METRICS_ADDR,
        ]
        .map(String::from)
        .to_vec()
    }

    /// `dig +short` from the client namespace to the server's IPv4 address (one try): the
    /// answer's data, one per line.
    pub fn dig(&self, name: &str, rtype: &str) -> String {
        let server = format!("@{SERVER_V4}");
        self.output(
            Side::Client,
            "dig",
            &["+short", "+tries=1", &server, name, rtype],
        )
        .unwrap_or_else(|e| panic!("dig {name} {rtype}: {e:#}"))
    }

    /// The service's Prometheus page (see [`start_service`](Self::start_service)).
    pub fn metrics_page(&self) -> anyhow::Result<String> {
        self.output(
            Side::Server,
            "curl",
            &["-sf", &format!("http://{METRICS_ADDR}/metrics")],
        )
    }

    /// Runs `f` on a thread that has joined `side`'s network namespace (sockets it opens live
    /// there); returns its result.
    pub fn run_in<T: Send>(&self, side: Side, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
        run_in_ns(self.ns(side), f)
    }

    /// A counter from /proc/net/snmp (e.g. ("Udp", "InDatagrams")) in `side`'s namespace.
    pub fn snmp(&self, side: Side, group: &str, field: &str) -> anyhow::Result<u64> {
        let text = self.output(side, "cat", &["/proc/net/snmp"])?;
        let mut lines = text.lines().filter(|l| l.starts_with(&format!("{group}:")));
        let (names, values) = (lines.next(), lines.next());
        let (Some(names), Some(values)) = (names, values) else {
            bail!("no {group} in /proc/net/snmp");
        };
        let idx = names
            .split_whitespace()
            .position(|n| n == field)
            .with_context(|| format!("no {group} {field}"))?;
        Ok(values
            .split_whitespace()
            .nth(idx)
            .context("short line")?
            .parse()?)
    }

    /// A counter from /proc/net/snmp6 (e.g. "Udp6InDatagrams") in `side`'s namespace.
    pub fn snmp6(&self, side: Side, field: &str) -> anyhow::Result<u64> {
        let text = self.output(side, "cat", &["/proc/net/snmp6"])?;
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            if parts.next() == Some(field) {
                return Ok(parts.next().context("no value")?.parse()?);
            }
        }
        bail!("no {field} in /proc/net/snmp6")
    }
}

fn stop_child(child: &mut Child, grace: Duration) -> Option<std::process::ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    // SAFETY: signalling a child we started, by its PID; it has not been reaped yet.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().ok()
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for child in &mut self.processes {
            stop_child(child, Duration::from_secs(5));
        }
        // Deleting the namespaces deletes the veth pair with them.
        let _ = ip(&["netns", "del", &self.server_ns]);
        let _ = ip(&["netns", "del", &self.client_ns]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `f` on a thread that has joined network namespace `ns` (sockets it opens live
/// there); returns its result.
pub fn run_in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let ns = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
                // SAFETY: setns on this thread only, with a namespace fd we just opened.
                if unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) }
                    != 0
                {
                    bail!("setns {path}: {}", std::io::Error::last_os_error());
                }
                Ok(f())
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the thread in {path} panicked"))?
    })
}

/// A process started by a [`Testbed`], with its collected stderr.
#[derive(Clone)]
pub struct Process {
    pub pid: u32,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Waits until a stderr line contains `needle`; error on timeout or if the process exits.
    pub fn wait_for(
        &self,
        bed: &mut Testbed,
        needle: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().iter().any(|l| l.contains(needle)) {
                return Ok(());
            }
            if let Some(status) = bed.exited(self.pid) {
                std::thread::sleep(Duration::from_millis(50)); // let the reader drain
                bail!(
                    "process exited ({status}) before {needle:?}:\n{}",
                    self.log().join("\n")
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "no {needle:?} within {timeout:?}:\n{}",
                    self.log().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every stderr line so far.
    pub fn log(&self) -> Vec<String> {
        self.lines.lock().expect("log lock").clone()
    }
}

/// Parses `name{labels} value` out of a Prometheus text page.
pub fn metric(page: &str, name_and_labels: &str) -> Option<u64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

/// The A addresses of a response's answer section, sorted.
pub fn a_addresses(m: &hickory_proto::op::Message) -> Vec<std::net::Ipv4Addr> {
    let mut ips: Vec<std::net::Ipv4Addr> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            hickory_proto::rr::RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    ips.sort();
    ips
}
