//! Upgrades that lose no query: `dns-user serve --takeover`, started beside a running daemon
//! on the same store, takes over its sockets and its XDP attachments, then the old daemon
//! exits.
//!
//! ```text
//!  new daemon                                   running daemon (socket STORE.takeover)
//!  RELEASE  ─────────────────────────────────▶  closes the store file (keeps serving from
//!           ◀───────────────────────────────── RELEASED   memory; API changes refused)
//!  opens the store, builds its zones, loads
//!  and fills its own XDP maps (not attached)
//!  HANDOVER ─────────────────────────────────▶  copies of its UDP/TCP sockets, API and
//!           ◀───────────── FDS + SCM_RIGHTS ──  metrics listeners, and XDP links
//!  serves the sockets (both daemons read them
//!  for a moment), moves each XDP link to its
//!  program (BPF_LINK_UPDATE: atomic)
//!  DONE     ─────────────────────────────────▶  stops reading: every query it read is
//!                                               answered first; open TCP connections are
//!                                               served to their end; exits, the XDP links
//!                                               left attached (the new daemon holds them)
//! ```
//!
//! A socket is shared, not copied: a datagram waiting in it is read by whichever daemon reads
//! next, so none is lost. If the new daemon goes away before DONE, the running one opens the
//! store again and carries on as before. The socket is a SOCK_SEQPACKET unix socket next to
//! the store (in its private directory), one message per packet.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::socket::{
    AddressFamily, Backlog, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    UnixAddr,
};

/// The most descriptors one handover carries.
const MAX_FDS: usize = 250;

/// Why a takeover failed.
#[derive(Debug, thiserror::Error)]
pub enum TakeoverError {
    #[error("takeover socket {}: {error}", path.display())]
    Socket { path: PathBuf, error: nix::Error },
    #[error(
        "no daemon to take over at {} (is `dns-user serve` running on this store?): {error}",
        path.display()
    )]
    NoDaemon { path: PathBuf, error: nix::Error },
    #[error("takeover: {0}")]
    Protocol(String),
    #[error("takeover: the running daemon refused: {0}")]
    Refused(String),
    #[error("takeover: moving the XDP attachment: {0}")]
    Link(std::io::Error),
}

/// The socket of the daemon serving `store`.
pub fn socket_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".takeover");
    PathBuf::from(name)
}

/// What a running daemon hands over.
#[derive(Debug, Default)]
pub struct Handover {
    pub udp: Vec<OwnedFd>,
    pub tcp: Vec<OwnedFd>,
    pub api: Option<OwnedFd>,
    pub metrics: Option<OwnedFd>,
    /// XDP attachments (bpf_link descriptors) with their interface index.
    pub links: Vec<(u32, OwnedFd)>,
}

fn send(fd: RawFd, text: &str, fds: &[RawFd]) -> Result<(), TakeoverError> {
    let iov = [IoSlice::new(text.as_bytes())];
    let cmsgs: Vec<ControlMessage> = if fds.is_empty() {
        Vec::new()
    } else {
        vec![ControlMessage::ScmRights(fds)]
    };
    nix::sys::socket::sendmsg::<()>(fd, &iov, &cmsgs, MsgFlags::empty(), None)
        .map_err(|e| TakeoverError::Protocol(format!("sending: {e}")))?;
    Ok(())
}

/// One message and the descriptors that came with it; `None` at the end of the stream.
fn receive(fd: RawFd) -> Result<Option<(String, Vec<OwnedFd>)>, TakeoverError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg =
        nix::sys::socket::recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
            .map_err(|e| TakeoverError::Protocol(format!("receiving: {e}")))?;
    let mut fds = Vec::new();
    for c in msg
        .cmsgs()
        .map_err(|e| TakeoverError::Protocol(e.to_string()))?
    {
        if let ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: SCM_RIGHTS descriptors are new in this process and owned by nobody else.
            fds.extend(raw.into_iter().map(|r| unsafe { OwnedFd::from_raw_fd(r) }));
        }
    }
    let (len, truncated) = (msg.bytes, msg.flags.contains(MsgFlags::MSG_CTRUNC));
    if truncated {
        return Err(TakeoverError::Protocol("too many descriptors".into()));
    }
    if len == 0 && fds.is_empty() {
        return Ok(None);
    }
    let text = String::from_utf8(buf[..len].to_vec())
        .map_err(|_| TakeoverError::Protocol("a message that is not text".into()))?;
    Ok(Some((text, fds)))
}

// ---- the running daemon's side ----

/// What the running daemon does at each step (the daemon implements it).
pub trait Donor: Send + Sync {
    /// Closes the store file for the new daemon.
    fn release(&self) -> Result<(), String>;
    /// The new daemon went away before taking over: serve as before.
    fn resume(&self);
    /// Copies of the sockets and XDP links.
    fn hand_over(&self) -> Result<Handover, String>;
    /// The new daemon serves: stop and exit.
    fn finished(&self);
}

/// Listens for a new daemon on `socket_path(store)`, in a thread, for as long as the process
/// runs; one new daemon at a time.
pub fn offer(store: &Path, donor: std::sync::Arc<dyn Donor>) -> Result<(), TakeoverError> {
    let path = socket_path(store);
    let err = |error| TakeoverError::Socket {
        path: path.clone(),
        error,
    };
    let listener = nix::sys::socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(err)?;
    // A socket file left by a daemon that died: nobody answers it (the store's lock says no
    // daemon runs on this store now).
    let _ = std::fs::remove_file(&path);
    let addr = UnixAddr::new(&path).map_err(err)?;
    nix::sys::socket::bind(listener.as_raw_fd(), &addr).map_err(err)?;
    let _ = crate::files::make_private(&path);
    nix::sys::socket::listen(&listener, Backlog::new(1).map_err(err)?).map_err(err)?;
    std::thread::Builder::new()
        .name("takeover".into())
        .spawn(move || {
            loop {
                let Ok(raw) = nix::sys::socket::accept(listener.as_raw_fd()) else {
                    continue;
                };
                // SAFETY: accept returned a new descriptor this thread owns.
                let client = unsafe { OwnedFd::from_raw_fd(raw) };
                if let Err(e) = serve_client(client.as_raw_fd(), &*donor) {
                    tracing::warn!("{e}");
                }
            }
        })
        .map_err(|e| TakeoverError::Protocol(format!("starting the thread: {e}")))?;
    Ok(())
}

/// One new daemon, from RELEASE to DONE; anything short of DONE resumes the old state.
fn serve_client(fd: RawFd, donor: &dyn Donor) -> Result<(), TakeoverError> {
    let mut released = false;
    let result = (|| {
        loop {
            let Some((text, _)) = receive(fd)? else {
                return Err(TakeoverError::Protocol(
                    "the new daemon went away before it served".into(),
                ));
            };
            match text.trim() {
                "RELEASE" => {
                    tracing::info!("takeover: a new daemon asks for the store; handing it over");
                    match donor.release() {
                        Ok(()) => {
                            released = true;
                            send(fd, "RELEASED", &[])?;
                        }
                        Err(e) => send(fd, &format!("ERROR {e}"), &[])?,
                    }
                }
                "HANDOVER" => match donor.hand_over() {
                    Ok(h) => {
                        let mut text = format!(
                            "FDS {} {} {} {}",
                            h.udp.len(),
                            h.tcp.len(),
                            u8::from(h.api.is_some()),
                            u8::from(h.metrics.is_some())
                        );
                        for (ifindex, _) in &h.links {
                            text.push_str(&format!("\nLINK {ifindex}"));
                        }
                        let fds: Vec<RawFd> = h
                            .udp
                            .iter()
                            .chain(&h.tcp)
                            .chain(&h.api)
                            .chain(&h.metrics)
                            .chain(h.links.iter().map(|(_, fd)| fd))
                            .map(|fd| fd.as_raw_fd())
                            .collect();
                        send(fd, &text, &fds)?;
                    }
                    Err(e) => send(fd, &format!("ERROR {e}"), &[])?,
                },
                "DONE" => {
                    tracing::info!("takeover: the new daemon serves; this one stops");
                    donor.finished();
                    return Ok(());
                }
                other => {
                    return Err(TakeoverError::Protocol(format!("unexpected {other:?}")));
                }
            }
        }
    })();
    if result.is_err() && released {
        donor.resume();
        tracing::warn!("takeover abandoned: serving on as before");
    }
    result
}

// ---- the new daemon's side ----

/// A connection to the running daemon.
pub struct Taker {
    fd: OwnedFd,
}

impl Taker {
    pub fn connect(store: &Path) -> Result<Taker, TakeoverError> {
        let path = socket_path(store);
        let fd = nix::sys::socket::socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|error| TakeoverError::Socket {
            path: path.clone(),
            error,
        })?;
        let addr = UnixAddr::new(&path).map_err(|error| TakeoverError::Socket {
            path: path.clone(),
            error,
        })?;
        nix::sys::socket::connect(fd.as_raw_fd(), &addr)
            .map_err(|error| TakeoverError::NoDaemon { path, error })?;
        Ok(Taker { fd })
    }

    fn ask(&self, what: &str) -> Result<(String, Vec<OwnedFd>), TakeoverError> {
        send(self.fd.as_raw_fd(), what, &[])?;
        let (text, fds) = receive(self.fd.as_raw_fd())?
            .ok_or_else(|| TakeoverError::Protocol("the running daemon went away".into()))?;
        match text.strip_prefix("ERROR ") {
            Some(e) => Err(TakeoverError::Refused(e.to_string())),
            None => Ok((text, fds)),
        }
    }

    /// Has the running daemon close the store file.
    pub fn release(&self) -> Result<(), TakeoverError> {
        match self.ask("RELEASE")?.0.as_str() {
            "RELEASED" => Ok(()),
            other => Err(TakeoverError::Protocol(format!("unexpected {other:?}"))),
        }
    }

    /// Takes the running daemon's sockets and XDP links.
    pub fn take(&self) -> Result<Handover, TakeoverError> {
        let (text, fds) = self.ask("HANDOVER")?;
        let bad = || TakeoverError::Protocol(format!("unexpected {text:?}"));
        let mut lines = text.lines();
        let counts: Vec<usize> = lines
            .next()
            .and_then(|l| l.strip_prefix("FDS "))
            .ok_or_else(bad)?
            .split(' ')
            .map(|n| n.parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        let [udp, tcp, api, metrics] = counts[..] else {
            return Err(bad());
        };
        let ifindexes: Vec<u32> = lines
            .map(|l| {
                l.strip_prefix("LINK ")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(bad)
            })
            .collect::<Result<_, _>>()?;
        if fds.len() != udp + tcp + api + metrics + ifindexes.len() {
            return Err(TakeoverError::Protocol(format!(
                "{} descriptors for {text:?}",
                fds.len()
            )));
        }
        let mut fds = fds.into_iter();
        let mut take = |n| fds.by_ref().take(n).collect::<Vec<_>>();
        Ok(Handover {
            udp: take(udp),
            tcp: take(tcp),
            api: take(api).pop(),
            metrics: take(metrics).pop(),
            links: ifindexes.into_iter().zip(take(usize::MAX)).collect(),
        })
    }

    /// Tells the running daemon to stop: this one serves.
    pub fn done(self) -> Result<(), TakeoverError> {
        send(self.fd.as_raw_fd(), "DONE", &[])
    }
}

// ---- XDP links ----

/// This process's XDP attachments: (interface index, a copy of the bpf_link descriptor).
/// aya keeps link descriptors to itself, so they are found the way `bpftool` finds them:
/// `/proc/self/fdinfo` says which descriptors are XDP links and on which interface.
pub fn xdp_links() -> std::io::Result<Vec<(u32, OwnedFd)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fdinfo")? {
        let entry = entry?;
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        let Ok(info) = std::fs::read_to_string(entry.path()) else {
            continue; // closed meanwhile
        };
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        if field("link_type:").as_deref() != Some("xdp") {
            continue;
        }
        let Some(ifindex) = field("ifindex:").and_then(|v| v.parse().ok()) else {
            continue;
        };
        // SAFETY: the descriptor is open (its fdinfo was just read) and only borrowed to be
        // duplicated.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        out.push((ifindex, borrowed.try_clone_to_owned()?));
    }
    Ok(out)
}

/// Points an XDP link at `program` in one atomic step (BPF_LINK_UPDATE; aya offers it only
/// for links it made itself).
pub fn update_link(
    link: &OwnedFd,
    program: std::os::fd::BorrowedFd<'_>,
) -> Result<(), TakeoverError> {
    /// `union bpf_attr`'s `link_update` member.
    #[repr(C)]
    struct LinkUpdate {
        link_fd: u32,
        new_prog_fd: u32,
        flags: u32,
        old_prog_fd: u32,
    }
    /// `enum bpf_cmd`: BPF_LINK_UPDATE.
    const BPF_LINK_UPDATE: libc::c_long = 29;
    let attr = LinkUpdate {
        link_fd: link.as_fd().as_raw_fd() as u32,
        new_prog_fd: program.as_raw_fd() as u32,
        flags: 0,
        old_prog_fd: 0,
    };
    crate::fastpath::maps::bpf(BPF_LINK_UPDATE, &attr)
        .map(drop)
        .map_err(TakeoverError::Link)
}
