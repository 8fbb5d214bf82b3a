//! Pinning in bpffs (`xdp.pin_dir`): the XDP links and the answer maps outlive the daemon, so a
//! crashed daemon's fast path keeps answering and the daemon restarted in its place adopts
//! them instead of starting empty.
//!
//! ```text
//!   PIN_DIR/link-IFACE                 the XDP link of each interface
//!   PIN_DIR/maps-DIGEST/ANSWERS_0 ...  the maps of the program with that object digest:
//!                                      answers, variants, cells (both buffers), CONTROL,
//!                                      HEARTBEAT
//!   PIN_DIR/next/                      a taking-over daemon's maps until its program holds
//!                                      the links (then moved into maps-DIGEST)
//! ```
//!
//! Maps are adopted only by the same eBPF object (the digest is of its bytes): another build
//! may lay its entries out differently. A clean stop removes everything; a crash leaves it, and
//! the heartbeat (`xdp.heartbeat_timeout_ms`) still makes the orphaned program pass everything
//! up if no daemon comes back in time.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use dns_common::{ANSWER_MAPS, CELL_MAPS, CONTROL_MAP, HEARTBEAT_MAP, VARIANT_MAPS};

use crate::fastpath::maps::HeartbeatWriter;

/// `statfs.f_type` of a BPF filesystem.
const BPF_FS_MAGIC: libc::__fsword_t = 0xcafe_4a11;

/// The maps that are pinned: everything a restarted daemon needs to keep answering.
pub fn pinned_maps() -> impl Iterator<Item = &'static str> {
    ANSWER_MAPS
        .into_iter()
        .chain(VARIANT_MAPS)
        .chain(CELL_MAPS)
        .chain([CONTROL_MAP, HEARTBEAT_MAP])
}

/// Pin directory errors.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error(
        "xdp.pin_dir {}: not on a BPF filesystem (mount one: mount -t bpf bpf /sys/fs/bpf)",
        .0.display()
    )]
    NotBpffs(PathBuf),
    #[error("xdp.pin_dir {}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> PinError + '_ {
    move |error| PinError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// One daemon's pin directory.
#[derive(Clone, Debug)]
pub struct Pins {
    dir: PathBuf,
    digest: String,
}

impl Pins {
    /// Creates `dir` (0700) if it is missing; it must be on a BPF filesystem. `object` is the
    /// eBPF object whose maps are pinned.
    pub fn open(dir: &Path, object: &[u8]) -> Result<Pins, PinError> {
        let parent = dir.parent().unwrap_or(dir);
        if !is_bpffs(if dir.exists() { dir } else { parent }) {
            return Err(PinError::NotBpffs(dir.to_path_buf()));
        }
        if !dir.exists() {
            std::fs::create_dir(dir).map_err(io_error(dir))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io_error(dir))?;
        }
        use sha2::Digest;
        let digest = sha2::Sha256::digest(object);
        let digest = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Pins {
            dir: dir.to_path_buf(),
            digest,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where this program's maps are pinned.
    pub fn maps(&self) -> PathBuf {
        self.dir.join(format!("maps-{}", self.digest))
    }

    /// Where a taking-over daemon pins its maps until it holds the links.
    pub fn staging(&self) -> PathBuf {
        self.dir.join("next")
    }

    /// The pinned XDP link of `iface`.
    pub fn link(&self, iface: &str) -> PathBuf {
        self.dir.join(format!("link-{iface}"))
    }

    /// True if a daemon running this program left its maps here (crash or kill).
    pub fn has_maps(&self) -> bool {
        self.maps().join(CONTROL_MAP).exists()
    }

    /// Makes `dir` (maps or staging) exist, empty when `empty`.
    pub fn prepare(&self, dir: &Path, empty: bool) -> Result<(), PinError> {
        if empty {
            remove_dir(dir)?;
        }
        match std::fs::create_dir(dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(io_error(dir)(e)),
            _ => Ok(()),
        }
    }

    /// The pinned heartbeat of a daemon that ran this program, if any.
    pub fn heartbeat(&self) -> Option<HeartbeatWriter> {
        HeartbeatWriter::from_pin(&self.maps().join(HEARTBEAT_MAP)).ok()
    }

    /// Removes what no daemon of this config uses: links of interfaces not in `interfaces`,
    /// maps of other programs (a program still attached keeps its own maps alive), a staging
    /// directory left by a takeover that did not finish.
    pub fn remove_stale(&self, interfaces: &[String]) -> Result<Vec<String>, PinError> {
        let mut removed = Vec::new();
        let current = self.maps();
        for entry in std::fs::read_dir(&self.dir).map_err(io_error(&self.dir))? {
            let entry = entry.map_err(io_error(&self.dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = match name.strip_prefix("link-") {
                Some(iface) => !interfaces.iter().any(|i| i == iface),
                None => path != current,
            };
            if stale {
                remove_pin(&path)?;
                removed.push(name);
            }
        }
        Ok(removed)
    }

    /// Moves the staging maps into this program's maps directory (each pin replaced in one
    /// rename), once this daemon's program holds the links; another program's maps (the
    /// daemon before was another build) are unpinned.
    pub fn commit_staging(&self) -> Result<(), PinError> {
        let (from, to) = (self.staging(), self.maps());
        self.prepare(&to, false)?;
        for name in pinned_maps() {
            let source = from.join(name);
            std::fs::rename(&source, to.join(name)).map_err(io_error(&source))?;
        }
        remove_dir(&from)?;
        for entry in std::fs::read_dir(&self.dir).map_err(io_error(&self.dir))? {
            let path = entry.map_err(io_error(&self.dir))?.path();
            let maps = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("maps-"));
            if maps && path != to {
                remove_dir(&path)?;
            }
        }
        Ok(())
    }

    /// Pins `link` (an XDP link handed over by a daemon that did not pin it) as `iface`'s,
    /// unless that pin is there already.
    pub fn pin_link(&self, link: &OwnedFd, iface: &str) -> Result<(), PinError> {
        let path = self.link(iface);
        if path.exists() {
            return Ok(());
        }
        obj_pin(link.as_fd(), &path).map_err(io_error(&path))
    }

    /// Removes this program's maps (they no longer fit the config: a new set is made).
    pub fn remove_maps(&self) -> Result<(), PinError> {
        remove_dir(&self.maps())
    }

    /// Removes every pin, and the directory if this daemon may (under systemd it is made for
    /// the service and stays). The links detach once their last descriptor closes.
    pub fn remove_all(&self) -> Result<(), PinError> {
        for entry in std::fs::read_dir(&self.dir).map_err(io_error(&self.dir))? {
            remove_pin(&entry.map_err(io_error(&self.dir))?.path())?;
        }
        let _ = std::fs::remove_dir(&self.dir);
        Ok(())
    }
}

/// Removes a pin, or a directory of pins.
fn remove_pin(path: &Path) -> Result<(), PinError> {
    if path.is_dir() {
        remove_dir(path)
    } else {
        std::fs::remove_file(path).map_err(io_error(path))
    }
}

/// Removes a pin directory and the pins in it (bpffs has no deeper nesting here).
fn remove_dir(dir: &Path) -> Result<(), PinError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(dir)(e)),
        _ => Ok(()),
    }
}

/// BPF_OBJ_PIN of a descriptor aya did not make (aya pins only its own links and maps).
fn obj_pin(fd: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    /// `union bpf_attr`'s `obj_pin` member.
    #[repr(C)]
    struct ObjPin {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
        path_fd: i32,
    }
    /// `enum bpf_cmd`: BPF_OBJ_PIN.
    const BPF_OBJ_PIN: libc::c_long = 6;
    let name = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let attr = ObjPin {
        pathname: name.as_ptr() as u64, // alive across the call
        bpf_fd: fd.as_raw_fd() as u32,
        file_flags: 0,
        path_fd: 0,
    };
    crate::fastpath::maps::bpf(BPF_OBJ_PIN, &attr).map(drop)
}

fn is_bpffs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type().0 == BPF_FS_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_off_bpffs_is_refused_with_the_fix() {
        let dir = std::env::temp_dir().join(format!("pins-{}", std::process::id()));
        let e = Pins::open(&dir, b"object").unwrap_err();
        assert!(matches!(e, PinError::NotBpffs(_)), "{e}");
        assert!(e.to_string().contains("mount -t bpf"), "{e}");
        assert!(!dir.exists(), "nothing created");
    }
}
