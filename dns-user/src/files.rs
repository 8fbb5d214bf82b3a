//! The daemon's own files, opened with care: what it reads is a regular file of bounded size
//! (never a FIFO, a device or an endless stream), what it writes is private to its owner
//! (0600 files, 0700 directories), the pid file never follows a symbolic link, and a secret
//! file that others can read is refused.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The largest zone file read (with its `$INCLUDE`s counted one by one).
pub const MAX_ZONE_FILE: u64 = 1 << 30;
/// The largest config, change-batch, health-check or secret file read.
pub const MAX_SMALL_FILE: u64 = 64 << 20;

/// File errors, each naming its path.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    // The I/O error is part of the message, not a `source`: printed once in error chains.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: not a regular file", path.display())]
    NotRegular { path: PathBuf },
    #[error("{}: larger than {limit} bytes", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{}: not UTF-8 text", path.display())]
    NotText { path: PathBuf },
    #[error(
        "{}: mode {mode:04o} lets other users read a secret: chmod 600 it",
        path.display()
    )]
    Exposed { path: PathBuf, mode: u32 },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |error| FileError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Opens `path` for reading without blocking on a FIFO, and checks it is a regular file.
fn open_regular(path: &Path) -> Result<(File, std::fs::Metadata), FileError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io(path))?;
    let meta = file.metadata().map_err(io(path))?;
    if !meta.is_file() {
        return Err(FileError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    Ok((file, meta))
}

/// Reads a regular text file of at most `limit` bytes.
pub fn read_text(path: &Path, limit: u64) -> Result<String, FileError> {
    let (file, meta) = open_regular(path)?;
    read_opened(path, file, &meta, limit)
}

/// Reads a secret (a token, a key): like [`read_text`], refused when group or others may read
/// or write it. The mode is checked on the file that is read (one open).
pub fn read_secret(path: &Path) -> Result<String, FileError> {
    let (file, meta) = open_regular(path)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(FileError::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    read_opened(path, file, &meta, MAX_SMALL_FILE)
}

/// The text of an opened regular file, at most `limit` bytes.
fn read_opened(
    path: &Path,
    file: File,
    meta: &std::fs::Metadata,
    limit: u64,
) -> Result<String, FileError> {
    let too_large = || FileError::TooLarge {
        path: path.to_path_buf(),
        limit,
    };
    if meta.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may grow while read: never past the limit.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|_| FileError::NotText {
        path: path.to_path_buf(),
    })
}

/// Creates `dir` and its missing parents, the ones created 0700.
pub fn create_private_dir(dir: &Path) -> Result<(), FileError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))
}

/// Makes an existing file private to its owner (0600).
pub fn make_private(path: &Path) -> Result<(), FileError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))
}

/// Writes `contents` to `path` (created 0644, or truncated) without following a symbolic
/// link: a link at `path` is an error and is left as it is, and so is what it points to.
pub fn write_no_follow(path: &Path, contents: &[u8]) -> Result<(), FileError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => io(path)(std::io::Error::other(
                "is a symbolic link: refusing to write through it",
            )),
            _ => io(path)(e),
        })?;
    let meta = file.metadata().map_err(io(path))?;
    if !meta.is_file() {
        return Err(FileError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    file.set_len(0)
        .and_then(|()| file.write_all(contents))
        .map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dns-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_only_bounded_regular_files() {
        let d = dir("read");
        let f = d.join("zone");
        std::fs::write(&f, "x 60 IN A 192.0.2.1\n").unwrap();
        assert!(read_text(&f, 100).is_ok());
        assert!(matches!(read_text(&f, 5), Err(FileError::TooLarge { .. })));
        assert!(matches!(
            read_text(Path::new("/dev/zero"), 100),
            Err(FileError::NotRegular { .. })
        ));
        assert!(matches!(
            read_text(&d, 100),
            Err(FileError::NotRegular { .. })
        ));
        let fifo = d.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) on a path this test owns.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Returns at once: no writer is waited for.
        assert!(matches!(
            read_text(&fifo, 100),
            Err(FileError::NotRegular { .. })
        ));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn secrets_readable_by_others_are_refused() {
        let d = dir("secret");
        let f = d.join("token");
        std::fs::write(&f, "s3cret\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read_secret(&f), Err(FileError::Exposed { .. })));
        make_private(&f).unwrap();
        assert_eq!(read_secret(&f).unwrap(), "s3cret\n");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn writing_never_follows_a_link() {
        let d = dir("pid");
        let victim = d.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let pid = d.join("dns.pid");
        std::os::unix::fs::symlink(&victim, &pid).unwrap();
        assert!(write_no_follow(&pid, b"123\n").is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(std::fs::symlink_metadata(&pid).unwrap().is_symlink());
        let plain = d.join("plain.pid");
        std::fs::write(&plain, "a longer stale pid\n").unwrap();
        write_no_follow(&plain, b"123\n").unwrap();
        assert_eq!(std::fs::read_to_string(&plain).unwrap(), "123\n");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
