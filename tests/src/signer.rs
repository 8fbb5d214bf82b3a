//! Zones signed the way an operator signs them offline, with BIND's tools (`dnssec-keygen`,
//! `dnssec-signzone`; `scripts/bootstrap` installs bind9-utils), for the tests of zones
//! signed elsewhere.

use std::path::Path;
use std::process::Command;

/// Runs `program` with `args` in `dir`; its standard output (panics with its errors if it
/// fails).
fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/bootstrap installs bind9-utils)"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Signs `zone_file` (in `dir`, for `origin`) with a new KSK and ZSK (ECDSA P-256) and
/// `dnssec-signzone` given `options`, into `dir/signed.zone`. Returns the KSK's DNSKEY as a
/// trust anchor for `delv -a` (`trust-anchors { ... };`).
pub fn sign_zone(dir: &Path, origin: &str, zone_file: &str, options: &[&str]) -> String {
    let keygen = ["-q", "-a", "ECDSAP256SHA256"];
    let ksk = run(
        dir,
        "dnssec-keygen",
        &[&keygen[..], &["-f", "KSK", origin]].concat(),
    );
    run(dir, "dnssec-keygen", &[&keygen[..], &[origin]].concat());
    let sign = ["-q", "-S", "-o", origin, "-f", "signed.zone"];
    run(
        dir,
        "dnssec-signzone",
        &[&sign[..], options, &[zone_file]].concat(),
    );
    let key = std::fs::read_to_string(dir.join(format!("{}.key", ksk.trim()))).unwrap();
    let line = key.lines().find(|l| l.contains("DNSKEY")).unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let at = fields.iter().position(|f| *f == "DNSKEY").unwrap();
    format!(
        "trust-anchors {{ {origin} static-key {} {} {} \"{}\"; }};\n",
        fields[at + 1],
        fields[at + 2],
        fields[at + 3],
        fields[at + 4..].concat()
    )
}

/// delv's verdict (its output) on `name`/`rtype` asked of the server at 127.0.0.1:`port`,
/// trusting only the anchors in `anchors`, for the zone `root`.
pub fn delv(port: u16, anchors: &Path, root: &str, name: &str, rtype: &str) -> String {
    let out = Command::new("delv")
        .args(["@127.0.0.1", "-p", &port.to_string(), "-a"])
        .arg(anchors)
        .arg(format!("+root={root}"))
        .args([name, rtype])
        .output()
        .unwrap_or_else(|e| panic!("delv: {e} (scripts/bootstrap installs bind9-dnsutils)"));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `name`/`rtype` asked of 127.0.0.1:`port` over UDP with the DO bit (and RD if `recursion`,
/// as a stub asks a resolver); the reply, or `None` after `timeout`.
pub fn ask_do(
    port: u16,
    name: &str,
    rtype: hickory_proto::rr::RecordType,
    recursion: bool,
    timeout: std::time::Duration,
) -> Option<hickory_proto::op::Message> {
    ask_do_from(port, name, rtype, recursion, None, timeout)
}

/// [`ask_do`] with an EDNS Client Subnet (address, source prefix length).
pub fn ask_do_from(
    port: u16,
    name: &str,
    rtype: hickory_proto::rr::RecordType,
    recursion: bool,
    subnet: Option<(std::net::IpAddr, u8)>,
    timeout: std::time::Duration,
) -> Option<hickory_proto::op::Message> {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
    let mut q = Message::new(0x4242, MessageType::Query, OpCode::Query);
    q.metadata.recursion_desired = recursion;
    let name = hickory_proto::rr::Name::from_ascii(name).ok()?;
    q.add_query(Query::query(name, rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    edns.set_dnssec_ok(true);
    if let Some((addr, len)) = subnet {
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(addr, len, 0)));
    }
    q.set_edns(edns);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
    socket.set_read_timeout(Some(timeout)).ok()?;
    socket
        .send_to(&q.to_vec().ok()?, ("127.0.0.1", port))
        .ok()?;
    let mut buf = [0u8; 65535];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    Message::from_vec(&buf[..n]).ok()
}
