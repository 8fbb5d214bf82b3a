//! Response rate limiting (as BIND, Knot and NSD have): per client prefix (IPv4 /24, IPv6
//! /56), at most `responses_per_second` UDP responses with a burst of `burst`; beyond that,
//! every `slip`-th response is sent truncated (TC=1, no answers: a real client retries over
//! TCP, a spoofed victim gets a small packet) and the others are dropped. The XDP program
//! applies it to the answers it sends (same GCRA, see dns-common's `RrlBucket`); [`Limiter`]
//! applies it to the userspace server's UDP responses. TCP is never limited (a TCP client has
//! proven its address).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Response rate limiting settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RrlConfig {
    /// Responses per second per client prefix (> 0).
    pub responses_per_second: u32,
    /// Responses a prefix may send at once beyond the rate.
    pub burst: u32,
    /// Every n-th limited response is sent truncated; 0 = drop them all.
    pub slip: u32,
}

impl RrlConfig {
    pub fn interval_ns(&self) -> u64 {
        1_000_000_000 / u64::from(self.responses_per_second.max(1))
    }

    pub fn burst_ns(&self) -> u64 {
        self.interval_ns() * u64::from(self.burst)
    }
}

/// What to do with one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Send,
    /// Send a truncated copy (TC=1, no records).
    Slip,
    Drop,
}

/// Prefixes tracked before old ones are forgotten.
const MAX_PREFIXES: usize = 65_536;

/// The userspace limiter: the same GCRA as XDP's, keyed by the same prefixes.
pub struct Limiter {
    config: RrlConfig,
    epoch: Instant,
    buckets: Mutex<HashMap<[u8; 16], (u64, u32)>>,
}

impl Limiter {
    pub fn new(config: RrlConfig) -> Self {
        Self {
            config,
            epoch: Instant::now(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Decides about one response to `client` now.
    pub fn check(&self, client: IpAddr) -> Decision {
        self.check_at(client, self.epoch.elapsed().as_nanos() as u64)
    }

    /// Decides about one response to `client` at `now` (ns since the limiter started).
    pub fn check_at(&self, client: IpAddr, now: u64) -> Decision {
        let (addr, v4) = match client {
            IpAddr::V4(a) => (a.to_ipv6_mapped().octets(), true),
            IpAddr::V6(a) => (a.octets(), false),
        };
        let key = dns_common::rrl_key(addr, v4);
        let interval = self.config.interval_ns();
        let mut buckets = self.buckets.lock().expect("rrl lock");
        if buckets.len() >= MAX_PREFIXES && !buckets.contains_key(&key) {
            // Forget prefixes whose bucket has drained: they start fresh anyway.
            buckets.retain(|_, (tat, _)| *tat > now);
        }
        let (tat, limited) = buckets.entry(key).or_insert((now, 0));
        let start = (*tat).max(now);
        if start - now <= self.config.burst_ns() {
            *tat = start + interval;
            return Decision::Send;
        }
        *limited = limited.wrapping_add(1);
        if self.config.slip != 0 && *limited % self.config.slip == 0 {
            Decision::Slip
        } else {
            Decision::Drop
        }
    }
}

/// A response cut down to its header and question with TC=1 (a slipped response).
pub fn truncate(response: &[u8]) -> Option<Vec<u8>> {
    let mut m = hickory_proto::op::Message::from_vec(response).ok()?;
    m.answers.clear();
    m.authorities.clear();
    m.additionals.clear();
    m.metadata.truncation = true;
    m.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_burst_and_slip_per_prefix() {
        let l = Limiter::new(RrlConfig {
            responses_per_second: 10,
            burst: 4,
            slip: 2,
        });
        let a: IpAddr = "198.51.100.7".parse().unwrap();
        let same_prefix: IpAddr = "198.51.100.200".parse().unwrap();
        let other: IpAddr = "198.51.101.7".parse().unwrap();
        // At t = 0: the first response plus a burst of 4.
        let first: Vec<Decision> = (0..5).map(|_| l.check_at(a, 0)).collect();
        assert!(first.iter().all(|d| *d == Decision::Send), "{first:?}");
        assert_eq!(l.check_at(same_prefix, 0), Decision::Drop, "same /24");
        assert_eq!(
            l.check_at(a, 0),
            Decision::Slip,
            "every 2nd limited one slips"
        );
        assert_eq!(l.check_at(other, 0), Decision::Send, "another /24");
        // 100 ms later one more is allowed (10 per second).
        assert_eq!(l.check_at(a, 100_000_000), Decision::Send);
        assert_ne!(l.check_at(a, 100_000_000), Decision::Send);
        // Over 10 s at 1000 queries a second: about 10 per second get through.
        let sent = (0..10_000u64)
            .filter(|i| l.check_at(other, 1_000_000_000 + i * 1_000_000) == Decision::Send)
            .count();
        assert!((100..=106).contains(&sent), "{sent}");
    }

    #[test]
    fn ipv6_prefixes_are_56_bits() {
        let l = Limiter::new(RrlConfig {
            responses_per_second: 1,
            burst: 0,
            slip: 0,
        });
        let a: IpAddr = "2001:db8:0:ab00::1".parse().unwrap();
        let same: IpAddr = "2001:db8:0:abff::2".parse().unwrap();
        let other: IpAddr = "2001:db8:0:ac00::1".parse().unwrap();
        assert_eq!(l.check_at(a, 0), Decision::Send);
        assert_eq!(l.check_at(same, 0), Decision::Drop);
        assert_eq!(l.check_at(other, 0), Decision::Send);
    }
}
