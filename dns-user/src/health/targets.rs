//! Which addresses health checks may probe.
//!
//! A health check makes the daemon connect where its creator says and reports what it saw, so
//! without limits it is a probe of the daemon's own network: its loopback services, the cloud
//! metadata endpoint, a port scan. By default these are refused: loopback, link-local (the
//! metadata address 169.254.169.254 among them), unspecified (0.0.0.0/8, `::`), broadcast,
//! multicast and the IPv6 metadata address `fd00:ec2::254`; IPv4-mapped and -compatible IPv6
//! addresses are judged as the IPv4 address they carry. An operator opens networks they own
//! with `[health] allow_networks` (e.g. `["127.0.0.0/8"]` for checks of local services).
//! The rule is applied when a check is created or changed (to an IP address) and again at
//! every probe to every address an FQDN resolves to, so a name rebound to a refused address
//! is never connected to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Route 53's default limit on health checks per account.
pub const DEFAULT_MAX_CHECKS: usize = 200;

/// The networks health checks may probe beyond the default rule, and how many checks there
/// may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetPolicy {
    pub allow_networks: Vec<ipnet::IpNet>,
    pub max_checks: usize,
    /// Where probes leave from (`None`: the kernel chooses).
    pub source_v4: Option<std::net::Ipv4Addr>,
    pub source_v6: Option<std::net::Ipv6Addr>,
}

impl Default for TargetPolicy {
    fn default() -> Self {
        TargetPolicy {
            allow_networks: Vec::new(),
            max_checks: DEFAULT_MAX_CHECKS,
            source_v4: None,
            source_v6: None,
        }
    }
}

impl TargetPolicy {
    /// `Ok` when `ip` may be probed, else why not.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        let ip = canonical(ip);
        match refused(ip) {
            Some(kind) if !self.allow_networks.iter().any(|n| n.contains(&ip)) => Err(format!(
                "{ip} is a {kind} address, which health checks may not probe (allow it with [health] allow_networks)"
            )),
            _ => Ok(()),
        }
    }
}

/// An IPv4-mapped or -compatible IPv6 address as the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                    IpAddr::V4(Ipv4Addr::from_bits(v6.to_bits() as u32))
                } else {
                    ip
                }
            }
        },
        v4 => v4,
    }
}

/// The kind of address refused by default, if `ip` is one.
fn refused(ip: IpAddr) -> Option<&'static str> {
    const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.octets()[0] == 0 {
                Some("unspecified")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_broadcast() {
                Some("broadcast")
            } else if v4.is_multicast() {
                Some("multicast")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_unicast_link_local() {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if v6 == METADATA_V6 {
                Some("cloud metadata")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_service_addresses_are_refused_unless_allowed() {
        let policy = TargetPolicy::default();
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "ff02::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
        ] {
            assert!(policy.check(ip.parse().unwrap()).is_err(), "{ip}");
        }
        for ip in [
            "192.0.2.1",
            "10.1.2.3",
            "192.168.1.1",
            "2001:db8::1",
            "::ffff:192.0.2.1",
        ] {
            assert!(policy.check(ip.parse().unwrap()).is_ok(), "{ip}");
        }
        let open = TargetPolicy {
            allow_networks: vec!["127.0.0.0/8".parse().unwrap()],
            ..TargetPolicy::default()
        };
        assert!(open.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(open.check("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(open.check("169.254.169.254".parse().unwrap()).is_err());
    }
}
