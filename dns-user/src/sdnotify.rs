//! Telling a service manager how the daemon is doing (systemd's `sd_notify` protocol): a
//! datagram of `KEY=value` lines to the unix socket in `$NOTIFY_SOCKET` (`@` starts an
//! abstract name). `READY=1` once it answers (the packaged unit is `Type=notify`, so
//! `systemctl start` returns when the zones are served), `MAINPID=` when a daemon taking
//! over becomes the service's main process, `STOPPING=1` on the way out. Without the
//! variable nothing is sent.
//!
//! `serve --detach` (how the unit's `ExecReload=` starts a takeover) forks first: the parent
//! returns once the child serves (or fails), and the child carries on in the service's
//! control group.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Mutex;

/// The write end of the pipe a detached daemon's parent waits on.
static DETACHED: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// Sends `state` to the service manager, if there is one.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = (|| -> std::io::Result<()> {
        let socket = std::os::unix::net::UnixDatagram::unbound()?;
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)?;
        } else {
            socket.send_to(state.as_bytes(), &path)?;
        }
        Ok(())
    })();
    if let Err(e) = sent {
        tracing::warn!("telling the service manager {state:?}: {e}");
    }
}

/// The daemon serves: `READY=1` (with `MAINPID=` when it took over from another), and a
/// detached daemon's parent may return.
pub fn ready(took_over: bool) {
    if took_over {
        notify(&format!("MAINPID={}\nREADY=1", std::process::id()));
    } else {
        notify("READY=1");
    }
    if let Some(mut pipe) = DETACHED.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = pipe.write_all(b"1");
    }
}

/// Forks: the parent waits until the child calls [`ready`] and returns `Some(exit code)` (0
/// when it serves, 1 when it died first); the child gets `None` and goes on, in a session of
/// its own. Call before any thread starts.
pub fn detach() -> std::io::Result<Option<i32>> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and owned here.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: no other thread exists yet (the caller's contract), so the child is a faithful
    // copy that may run any code.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => {
            drop(read);
            // SAFETY: setsid has no preconditions; a new session leaves the parent's.
            unsafe { libc::setsid() };
            *DETACHED.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::fs::File::from(write));
            Ok(None)
        }
        _child => {
            drop(write);
            let mut byte = [0u8; 1];
            let served = std::fs::File::from(read).read(&mut byte).unwrap_or(0) == 1;
            Ok(Some(if served { 0 } else { 1 }))
        }
    }
}
