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
//!
//! With `server.user` the daemon also becomes that user (its uid, its primary group, no
//! other groups) and keeps only the capabilities above, as Knot and NSD do: started as root,
//! it switches; started as that user already (a service manager's `User=` with
//! `AmbientCapabilities=`), it has nothing to switch.

use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Gid, Uid};

/// Why the daemon could not reduce its privileges (it does not start with more than it
/// should).
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("dropping capabilities: {0}")]
    Caps(#[from] caps::errors::CapsError),
    #[error("server.user {0:?}: no such user")]
    NoSuchUser(String),
    #[error("server.user {name:?}: looking it up: {error}")]
    Lookup { name: String, error: nix::Error },
    #[error("becoming user {name:?}: {what}: {error} (switching users needs root)")]
    Switch {
        name: String,
        what: &'static str,
        error: nix::Error,
    },
}

/// The account the daemon runs as (`server.user`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    /// The user `name` from the system's user database.
    pub fn lookup(name: &str) -> Result<RunAs, PrivilegeError> {
        let user = nix::unistd::User::from_name(name)
            .map_err(|error| PrivilegeError::Lookup {
                name: name.to_string(),
                error,
            })?
            .ok_or_else(|| PrivilegeError::NoSuchUser(name.to_string()))?;
        Ok(RunAs {
            name: name.to_string(),
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        })
    }

    /// Becomes this user, keeping the permitted capabilities (their effective set is cleared
    /// by the kernel, and set again by the caller).
    fn become_it(&self) -> Result<(), PrivilegeError> {
        let fail = |what: &'static str| {
            move |error| PrivilegeError::Switch {
                name: self.name.clone(),
                what,
                error,
            }
        };
        let (uid, gid) = (Uid::from_raw(self.uid), Gid::from_raw(self.gid));
        if Uid::current() == uid && Uid::effective() == uid {
            return Ok(());
        }
        for cap in [Capability::CAP_SETUID, Capability::CAP_SETGID] {
            caps::raise(None, CapSet::Effective, cap).map_err(|_| PrivilegeError::Switch {
                name: self.name.clone(),
                what: "raising CAP_SETUID/CAP_SETGID",
                error: nix::Error::EPERM,
            })?;
        }
        // SAFETY: prctl(PR_SET_KEEPCAPS) takes integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
            return Err(fail("PR_SET_KEEPCAPS")(nix::Error::last()));
        }
        nix::unistd::setgroups(&[gid]).map_err(fail("setgroups"))?;
        nix::unistd::setresgid(gid, gid, gid).map_err(fail("setresgid"))?;
        nix::unistd::setresuid(uid, uid, uid).map_err(fail("setresuid"))?;
        // SAFETY: as above.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
        Ok(())
    }
}

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

/// Reduces the calling thread (the only one yet) to [`kept`], as `run_as` when given;
/// returns the capabilities it holds after.
pub fn drop_to_kept(run_as: Option<&RunAs>) -> Result<CapsHashSet, PrivilegeError> {
    let keep = kept();
    let permitted = caps::read(None, CapSet::Permitted)?;
    let next: CapsHashSet = permitted.intersection(&keep).copied().collect();
    if permitted.contains(&Capability::CAP_SETPCAP) {
        caps::raise(None, CapSet::Effective, Capability::CAP_SETPCAP)?;
        for cap in caps::read(None, CapSet::Bounding)? {
            if !keep.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap)?;
            }
        }
    }
    caps::clear(None, CapSet::Ambient)?;
    caps::clear(None, CapSet::Inheritable)?;
    if let Some(user) = run_as {
        user.become_it()?;
    }
    caps::set(None, CapSet::Effective, &next)?;
    caps::set(None, CapSet::Permitted, &next)?;
    Ok(next)
}
