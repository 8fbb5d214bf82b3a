//! Least privilege: `serve` keeps only the capabilities a running daemon uses, before it
//! starts any thread (capabilities are per thread on Linux, and threads inherit their
//! creator's), so every thread of the daemon has only these:
//!
//! - `CAP_BPF`: every bpf() call, for loading the program and for every map write after it
//!   (answers, the heartbeat, the RCU grace-period wait); `CAP_SYS_ADMIN` instead on a kernel
//!   too old to know `CAP_BPF` (before 5.8);
//! - `CAP_PERFMON`: with it the verifier accepts what an unprivileged loader may not
//!   (pointer arithmetic on packet data beyond the speculative-execution rules);
//! - `CAP_NET_ADMIN`: attaching XDP, and detaching it at shutdown;
//! - `CAP_NET_BIND_SERVICE`: port 53.
//!
//! Everything else goes from the effective, permitted, inheritable, ambient and bounding sets
//! (so no exec'd program can get it back either). A daemon started without some of these
//! keeps what it has of them; one that may not change its bounding set (no `CAP_SETPCAP`, as
//! under a service manager that already bounded it) keeps that set as it is.

use caps::{CapSet, Capability, CapsHashSet};

/// Why the capabilities could not be reduced (the daemon does not start with more than it
/// should).
#[derive(Debug, thiserror::Error)]
#[error("dropping capabilities: {0}")]
pub struct PrivilegeError(#[from] caps::errors::CapsError);

/// The capabilities the running daemon keeps (see the module docs).
pub fn kept() -> CapsHashSet {
    let mut keep: CapsHashSet = [
        Capability::CAP_BPF,
        Capability::CAP_PERFMON,
        Capability::CAP_NET_ADMIN,
        Capability::CAP_NET_BIND_SERVICE,
    ]
    .into_iter()
    .collect();
    if !caps::runtime::thread_all_supported().contains(&Capability::CAP_BPF) {
        keep.insert(Capability::CAP_SYS_ADMIN);
    }
    keep
}

/// Reduces the calling thread (the only one yet) to [`kept`]; returns what it holds after.
pub fn drop_to_kept() -> Result<CapsHashSet, PrivilegeError> {
    let keep = kept();
    let permitted = caps::read(None, CapSet::Permitted)?;
    let next: CapsHashSet = permitted.intersection(&keep).copied().collect();
    if permitted.contains(&Capability::CAP_SETPCAP) {
        for cap in caps::read(None, CapSet::Bounding)? {
            if !keep.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap)?;
            }
        }
    }
    caps::clear(None, CapSet::Ambient)?;
    caps::clear(None, CapSet::Inheritable)?;
    caps::set(None, CapSet::Effective, &next)?;
    caps::set(None, CapSet::Permitted, &next)?;
    Ok(next)
}
