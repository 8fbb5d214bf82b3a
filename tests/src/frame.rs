//! Frames for BPF_PROG_TEST_RUN: building queries (well-formed or not) around DNS payloads,
//! the responses XDP must produce, RFC 1071 checksums, and the fixture zone.

use std::net::IpAddr;
use std::path::Path;

use dns_user::zone::Catalog;
use dns_user::zone::{Alias, Where, Zone, parse_zone_text};
use hickory_proto::rr::Name;

pub use crate::testbed::{CLIENT_V4, CLIENT_V6, SERVER_V4, SERVER_V6};

/// XDP actions (include/uapi/linux/bpf.h, enum xdp_action).
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;

pub const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const CLIENT_PORT: u16 = 40_000;

/// The bundled example zone plus names the fixtures need.
pub const TEST_ZONE: &str = concat!(
    include_str!("../../examples/example.com.zone"),
    "many IN A 192.0.2.201\nmany IN A 192.0.2.202\nmany IN A 192.0.2.203\n",
    "many IN A 192.0.2.204\nmany IN A 192.0.2.205\nmany IN A 192.0.2.206\n",
    "many IN A 192.0.2.207\nmany IN A 192.0.2.208\nmany IN A 192.0.2.209\n",
    "many IN A 192.0.2.210\nmany IN A 192.0.2.211\nmany IN A 192.0.2.212\n",
    "many IN A 192.0.2.213\nmany IN A 192.0.2.214\nmany IN A 192.0.2.215\n",
    "v6only IN AAAA 2001:db8::66\n",
    "sub IN NS ns.sub\nns.sub IN A 192.0.2.77\n",
);

pub fn origin() -> Name {
    Name::from_ascii("example.com.").unwrap()
}

/// The fixture zone, with Route 53 aliases `lb` A and AAAA -> `www`.
pub fn catalog() -> Catalog {
    let path = Path::new("test.zone");
    let records = parse_zone_text(&origin(), TEST_ZONE, path).unwrap();
    let place = Where::file(Path::new("test.toml"));
    let aliases = ["A", "AAAA"]
        .iter()
        .map(|t| {
            let name = |n: &str| Name::from_ascii(n).unwrap();
            let alias = Alias {
                name: name("lb.example.com."),
                rtype: t.parse().unwrap(),
                target: name("www.example.com."),
                evaluate_target_health: false,
            };
            (alias, place.clone())
        })
        .collect();
    Catalog::new([Zone::from_records(origin(), records, aliases, Vec::new(), path).unwrap()])
}

/// RFC 1071 sum over `bytes` starting at an even offset, unfolded.
pub fn sum16(bytes: &[u8]) -> u32 {
    bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

pub fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The UDP checksum of `udp` (header with checksum field zero + payload) between `src` and `dst`.
pub fn udp_checksum(src: IpAddr, dst: IpAddr, udp: &[u8]) -> u16 {
    let mut s = sum16(udp) + 17 + udp.len() as u32;
    match (src, dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => s += sum16(&a.octets()) + sum16(&b.octets()),
        (IpAddr::V6(a), IpAddr::V6(b)) => s += sum16(&a.octets()) + sum16(&b.octets()),
        _ => panic!("mixed families"),
    }
    let c = !fold(s);
    if c == 0 { 0xffff } else { c }
}

/// How to wrap a DNS payload.
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    pub v6: bool,
    pub vlan: Option<u16>,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub ip_ttl: u8,
    /// IPv4 flags/fragment field.
    pub frag: u16,
    /// IPv4 only: add 4 bytes of options (IHL 6).
    pub ip_options: bool,
    /// IP protocol / next header.
    pub proto: u8,
}

impl Frame {
    pub fn query(v6: bool) -> Frame {
        Frame {
            v6,
            vlan: None,
            src_mac: CLIENT_MAC,
            dst_mac: SERVER_MAC,
            src: if v6 {
                CLIENT_V6.into()
            } else {
                CLIENT_V4.into()
            },
            dst: if v6 {
                SERVER_V6.into()
            } else {
                SERVER_V4.into()
            },
            sport: CLIENT_PORT,
            dport: 53,
            ip_ttl: 61,
            frag: 0x4000,
            ip_options: false,
            proto: 17,
        }
    }

    /// The full Ethernet frame carrying `payload`, with correct lengths and checksums.
    pub fn build(&self, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        if let Some(tci) = self.vlan {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&(if self.v6 { 0x86ddu16 } else { 0x0800 }).to_be_bytes());
        let mut udp = Vec::new();
        udp.extend_from_slice(&self.sport.to_be_bytes());
        udp.extend_from_slice(&self.dport.to_be_bytes());
        udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let csum = udp_checksum(self.src, self.dst, &udp);
        udp[6..8].copy_from_slice(&csum.to_be_bytes());
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let opts: &[u8] = if self.ip_options { &[1, 1, 1, 0] } else { &[] };
                let ihl = 5 + opts.len() / 4;
                let mut ip = vec![0x40 | ihl as u8, 0];
                ip.extend_from_slice(&((ihl * 4 + udp.len()) as u16).to_be_bytes());
                ip.extend_from_slice(&0x1234u16.to_be_bytes());
                ip.extend_from_slice(&self.frag.to_be_bytes());
                ip.extend_from_slice(&[self.ip_ttl, self.proto, 0, 0]);
                ip.extend_from_slice(&s.octets());
                ip.extend_from_slice(&d.octets());
                ip.extend_from_slice(opts);
                let c = !fold(sum16(&ip));
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                f.extend_from_slice(&ip);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                f.extend_from_slice(&[0x60, 0, 0, 0]);
                f.extend_from_slice(&(udp.len() as u16).to_be_bytes());
                f.extend_from_slice(&[self.proto, self.ip_ttl]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
            }
            _ => panic!("mixed families"),
        }
        f.extend_from_slice(&udp);
        f
    }

    /// The response frame XDP must produce for `payload`: addresses and ports swapped, hop
    /// limit 64, the given IPv4 ID, fresh checksums.
    pub fn response(&self) -> Frame {
        Frame {
            src_mac: self.dst_mac,
            dst_mac: self.src_mac,
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            ip_ttl: 64,
            ..*self
        }
    }

    /// Offset of the DNS payload in a frame of this shape.
    pub fn dns_offset(&self) -> usize {
        14 + self.vlan.map_or(0, |_| 4) + if self.v6 { 40 } else { 20 } + 8
    }
}

/// Raw query bytes: header fields as given, then `question` verbatim, then `extra`.
pub fn raw_query(id: u16, flags: u16, counts: [u16; 4], question: &[u8], extra: &[u8]) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        q.extend_from_slice(&c.to_be_bytes());
    }
    q.extend_from_slice(question);
    q.extend_from_slice(extra);
    q
}

/// Wire name + type + class.
pub fn question(name: &str, qtype: u16, qclass: u16) -> Vec<u8> {
    let mut q = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&qclass.to_be_bytes());
    q
}

/// An OPT RR with the given payload size, version, flags and raw options.
pub fn opt(udp: u16, version: u8, flags: u16, options: &[u8]) -> Vec<u8> {
    let mut o = vec![0, 0, 41];
    o.extend_from_slice(&udp.to_be_bytes());
    o.extend_from_slice(&[0, version]);
    o.extend_from_slice(&flags.to_be_bytes());
    o.extend_from_slice(&(options.len() as u16).to_be_bytes());
    o.extend_from_slice(options);
    o
}
