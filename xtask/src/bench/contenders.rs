//! The servers compared, each started in the server namespace with the same zone file.

use std::path::Path;

use anyhow::Context;
use dns_tests::{Process, SERVER_V4, Side, Testbed};

/// One XDP answer in this many is logged by [`Contender::OursXdpDnstap`].
pub const DNSTAP_SAMPLE: u32 = 100;

/// A server under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contender {
    /// dns-user with the XDP fast path (native mode).
    OursXdp,
    /// dns-user with the XDP fast path and dnstap query logs: every userspace query, one XDP
    /// answer in [`DNSTAP_SAMPLE`].
    OursXdpDnstap,
    /// dns-user with XDP off: the userspace server alone.
    OursUserspace,
    /// Knot DNS answering over UDP sockets.
    KnotUdp,
    /// Knot DNS in its XDP mode (AF_XDP).
    KnotXdp,
    /// NSD.
    Nsd,
}

impl Contender {
    pub const ALL: [Contender; 6] = [
        Contender::OursXdp,
        Contender::OursXdpDnstap,
        Contender::OursUserspace,
        Contender::KnotUdp,
        Contender::KnotXdp,
        Contender::Nsd,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Contender::OursXdp => "dns-xdp (XDP)",
            Contender::OursXdpDnstap => "dns-xdp (XDP, dnstap 1 in 100)",
            Contender::OursUserspace => "dns-xdp (userspace)",
            Contender::KnotUdp => "Knot DNS (UDP)",
            Contender::KnotXdp => "Knot DNS (XDP)",
            Contender::Nsd => "NSD",
        }
    }

    /// dns-xdp itself (as opposed to the servers it is compared with).
    pub fn is_ours(self) -> bool {
        matches!(
            self,
            Contender::OursXdp | Contender::OursXdpDnstap | Contender::OursUserspace
        )
    }

    /// True if the server runs an XDP program on the server veth.
    pub fn uses_xdp(self) -> bool {
        matches!(
            self,
            Contender::OursXdp | Contender::OursXdpDnstap | Contender::KnotXdp
        )
    }

    /// Starts the server; it is ready when it answers (the caller waits for that).
    pub fn start(
        self,
        bed: &mut Testbed,
        bin: &str,
        zone: &Path,
        work: &Path,
    ) -> anyhow::Result<Process> {
        let zone_str = zone.to_str().context("zone path")?;
        let server_if = bed.server_if.clone();
        let listen = format!("{SERVER_V4}:53");
        match self {
            Contender::OursXdp | Contender::OursXdpDnstap | Contender::OursUserspace => {
                let mode = if self == Contender::OursUserspace {
                    "off"
                } else {
                    "native"
                };
                let zone_arg = format!("example.com.={zone_str}");
                let args = [
                    "serve",
                    "--listen",
                    &listen,
                    "--iface",
                    &server_if,
                    "--xdp-mode",
                    mode,
                    "--zone-file",
                    &zone_arg,
                    "--metrics",
                    dns_tests::METRICS_ADDR,
                ];
                let log = work.join("bench.dnstap");
                let sample = DNSTAP_SAMPLE.to_string();
                let dnstap = [
                    "--dnstap",
                    log.to_str().context("path")?,
                    "--dnstap-xdp-sample",
                    &sample,
                ];
                let mut args = args.to_vec();
                if self == Contender::OursXdpDnstap {
                    args.extend(dnstap);
                }
                bed.spawn(Side::Server, bin, &args, false)
            }
            Contender::KnotUdp | Contender::KnotXdp => {
                let dir = work.join(format!("knot-{self:?}"));
                std::fs::create_dir_all(&dir)?;
                let xdp = if self == Contender::KnotXdp {
                    format!("xdp:\n    listen: {server_if}\n    udp: on\n")
                } else {
                    String::new()
                };
                let conf = dir.join("knot.conf");
                std::fs::write(
                    &conf,
                    format!(
                        "server:\n    rundir: \"{d}\"\n    listen: {SERVER_V4}@53\n{xdp}\
                         database:\n    storage: \"{d}\"\n\
                         log:\n  - target: stderr\n    any: warning\n\
                         zone:\n  - domain: example.com.\n    file: \"{zone_str}\"\n    journal-content: none\n    zonefile-sync: -1\n",
                        d = dir.display()
                    ),
                )?;
                bed.spawn(
                    Side::Server,
                    "knotd",
                    &["-c", conf.to_str().context("path")?],
                    false,
                )
            }
            Contender::Nsd => {
                let dir = work.join("nsd");
                std::fs::create_dir_all(&dir)?;
                let d = dir.display();
                let conf = dir.join("nsd.conf");
                std::fs::write(
                    &conf,
                    format!(
                        "server:\n    ip-address: {SERVER_V4}\n    port: 53\n    username: \"\"\n\
                         \x20   chroot: \"\"\n    zonesdir: \"{d}\"\n    database: \"\"\n\
                         \x20   zonelistfile: \"{d}/zone.list\"\n    xfrdfile: \"{d}/xfrd.state\"\n\
                         \x20   xfrdir: \"{d}\"\n    pidfile: \"{d}/nsd.pid\"\n    verbosity: 0\n\
                         remote-control:\n    control-enable: no\n\
                         zone:\n    name: example.com\n    zonefile: \"{zone_str}\"\n"
                    ),
                )?;
                bed.spawn(
                    Side::Server,
                    "nsd",
                    &["-d", "-c", conf.to_str().context("path")?],
                    false,
                )
            }
        }
    }
}
