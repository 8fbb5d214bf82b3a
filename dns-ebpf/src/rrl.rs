//! Response rate limiting: GCRA per client prefix.

use crate::maps::*;
use crate::parse::*;
use aya_ebpf::helpers::generated::bpf_ktime_get_ns;
use dns_common::{RrlBucket, rrl_key};

/// What response rate limiting says about one answer.
pub(crate) enum Rate {
    Allow,
    /// Over the rate: send it truncated (TC=1, no answers) so a real client retries over TCP.
    Slip,
    /// Over the rate: send nothing.
    Drop,
}

/// GCRA per client prefix (the packet's source, never its ECS option: the rate is the
/// sender's). Buckets are shared by all CPUs without locks: concurrent updates can lose an
/// increment, so the limit is approximate, never stricter than configured.
#[inline(always)]
pub(crate) fn rate_limit(q: &Query) -> Rate {
    // SAFETY: read-only globals set by the loader.
    let interval = unsafe { core::ptr::read_volatile(&RRL_INTERVAL_NS) };
    if interval == 0 {
        return Rate::Allow;
    }
    // SAFETY: as above.
    let burst = unsafe { core::ptr::read_volatile(&RRL_BURST_NS) };
    // SAFETY: as above.
    let slip = unsafe { core::ptr::read_volatile(&RRL_SLIP) };
    let key = rrl_key(q.client, !q.is_v6);
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    let Some(bucket) = RRL.get_ptr_mut(&key) else {
        let fresh = RrlBucket {
            tat_ns: now + interval,
            limited: 0,
            _pad: 0,
        };
        let _ = RRL.insert(&key, &fresh, 0);
        return Rate::Allow;
    };
    // SAFETY: a value pointer from the lookup above; racing writers only lose updates.
    let bucket = unsafe { &mut *bucket };
    let tat = if bucket.tat_ns > now {
        bucket.tat_ns
    } else {
        now
    };
    if tat - now <= burst {
        bucket.tat_ns = tat + interval;
        return Rate::Allow;
    }
    bucket.limited = bucket.limited.wrapping_add(1);
    if slip != 0 && bucket.limited % slip == 0 {
        Rate::Slip
    } else {
        Rate::Drop
    }
}
