//! The map writer: installs an [`AnswerTable`] into the XDP program's double-buffered answer
//! maps so that no reader ever sees a half-written entry or a mix of old and new answers.
//!
//! ```text
//!   readers (XDP):   CONTROL.active ──> ANSWERS_a        (never written while readable)
//!   writer:          1. apply the delta to ANSWERS_b     (the back buffer, unread)
//!                    2. CONTROL.active = b               (one aligned 4-byte store)
//!                    3. wait for an RCU grace period     (every reader of ANSWERS_a is done)
//!                    4. apply the same delta to ANSWERS_a (now the back buffer)
//! ```
//!
//! Step 3 uses a documented kernel guarantee: updating an element of a map-of-maps from the
//! bpf() syscall calls `synchronize_rcu()` before returning (kernel/bpf/syscall.c,
//! `maybe_wait_bpf_programs`), and XDP programs run inside RCU read-side sections. The writer
//! owns a tiny array-of-maps for nothing else.
//!
//! A failure before the flip leaves readers on the old buffer (nothing applied); the back
//! buffer is marked dirty and rewritten in full before the next change.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use aya::Ebpf;
use aya::maps::{Array, HashMap, MapData, MapError};
use dns_common::{ANSWER_MAPS, AnswerKey, AnswerSet, CONTROL_ENABLED, CONTROL_MAP, Control};

use crate::compile::AnswerTable;

/// Map writer errors. Nothing a reader sees has changed when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum MapWriteError {
    #[error(
        "{entries} answer entries exceed the answer map capacity of {capacity} (raise xdp.max_entries)"
    )]
    Capacity { entries: usize, capacity: u32 },
    #[error("the eBPF object has no map {0}")]
    MissingMap(&'static str),
    #[error("answer map access failed: {0}")]
    Map(#[from] MapError),
    #[error("waiting for XDP readers (RCU grace period) failed: {0}")]
    GracePeriod(io::Error),
}

/// What one [`MapWriter::install`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstallStats {
    pub upserts: usize,
    pub deletes: usize,
}

/// Owns the answer maps and the control entry of one loaded XDP program.
pub struct MapWriter {
    buffers: [HashMap<MapData, AnswerKey, AnswerSet>; 2],
    control_map: Array<MapData, Control>,
    control: Control,
    /// What both buffers hold (the back buffer only when `back_dirty` is false).
    installed: AnswerTable,
    back_dirty: bool,
    capacity: u32,
    grace: GracePeriod,
}

impl MapWriter {
    /// Takes the answer and control maps out of `ebpf`. The fast path stays disabled until the
    /// first [`install`](Self::install) and [`set_enabled`](Self::set_enabled).
    pub fn new(ebpf: &mut Ebpf, capacity: u32) -> Result<Self, MapWriteError> {
        let take = |ebpf: &mut Ebpf, name: &'static str| {
            ebpf.take_map(name).ok_or(MapWriteError::MissingMap(name))
        };
        let b0 = HashMap::try_from(take(ebpf, ANSWER_MAPS[0])?)?;
        let b1 = HashMap::try_from(take(ebpf, ANSWER_MAPS[1])?)?;
        let control_map = Array::try_from(take(ebpf, CONTROL_MAP)?)?;
        let control = control_map.get(&0, 0)?;
        Ok(Self {
            buffers: [b0, b1],
            control_map,
            control,
            installed: AnswerTable::new(),
            back_dirty: false,
            capacity,
            grace: GracePeriod::new().map_err(MapWriteError::GracePeriod)?,
        })
    }

    /// What readers currently see.
    pub fn installed(&self) -> &AnswerTable {
        &self.installed
    }

    /// Makes readers see exactly `table`, atomically per the protocol in the module docs.
    /// Costs a diff against everything installed; [`apply`](Self::apply) takes a change directly.
    pub fn install(&mut self, table: &AnswerTable) -> Result<InstallStats, MapWriteError> {
        if table.len() > self.capacity as usize {
            return Err(MapWriteError::Capacity {
                entries: table.len(),
                capacity: self.capacity,
            });
        }
        let upserts: Vec<(AnswerKey, AnswerSet)> = table
            .iter()
            .filter(|(k, v)| self.installed.get(k) != Some(v))
            .map(|(k, v)| (*k, *v))
            .collect();
        let deletes: Vec<AnswerKey> = self
            .installed
            .keys()
            .filter(|k| !table.contains_key(k))
            .copied()
            .collect();
        self.apply(&upserts, &deletes)
    }

    /// Makes readers see the installed entries with `upserts` set and `deletes` removed, all at
    /// once, per the protocol in the module docs. Costs what the change costs.
    pub fn apply(
        &mut self,
        upserts: &[(AnswerKey, AnswerSet)],
        deletes: &[AnswerKey],
    ) -> Result<InstallStats, MapWriteError> {
        let added = upserts
            .iter()
            .filter(|(k, _)| !self.installed.contains_key(k))
            .count();
        let removed = deletes
            .iter()
            .filter(|k| self.installed.contains_key(*k))
            .count();
        let entries = self.installed.len() + added - removed;
        if entries > self.capacity as usize {
            return Err(MapWriteError::Capacity {
                entries,
                capacity: self.capacity,
            });
        }
        let stats = InstallStats {
            upserts: upserts.len(),
            deletes: deletes.len(),
        };
        if upserts.is_empty() && deletes.is_empty() {
            return Ok(stats);
        }

        let front = (self.control.active & 1) as usize;
        let back = 1 - front;
        if self.back_dirty {
            rewrite_all(&mut self.buffers[back], &self.installed)?;
            self.back_dirty = false;
        }
        if let Err(e) = write(&mut self.buffers[back], upserts, deletes) {
            self.back_dirty = true;
            return Err(e);
        }
        let next = Control {
            active: back as u32,
            ..self.control
        };
        if let Err(e) = self.control_map.set(0, &next, 0) {
            self.back_dirty = true;
            return Err(e.into());
        }
        self.control = next;
        let waited = self.grace.wait();
        let caught_up = waited.is_ok() && write(&mut self.buffers[front], upserts, deletes).is_ok();
        self.back_dirty = !caught_up;
        if let Err(e) = waited {
            tracing::warn!("grace period wait failed, old buffer left for a full rewrite: {e}");
        }
        // The same order as `write`: upserts, then deletes.
        self.installed.extend(upserts.iter().copied());
        for key in deletes {
            self.installed.remove(key);
        }
        Ok(stats)
    }

    /// Turns the fast path on (answer from the maps) or off (pass every packet up).
    pub fn set_enabled(&mut self, enabled: bool) -> Result<(), MapWriteError> {
        let flags = if enabled {
            self.control.flags | CONTROL_ENABLED
        } else {
            self.control.flags & !CONTROL_ENABLED
        };
        let next = Control {
            flags,
            ..self.control
        };
        self.control_map.set(0, &next, 0)?;
        self.control = next;
        Ok(())
    }
}

/// Writes a change into one buffer.
fn write(
    map: &mut HashMap<MapData, AnswerKey, AnswerSet>,
    upserts: &[(AnswerKey, AnswerSet)],
    deletes: &[AnswerKey],
) -> Result<(), MapWriteError> {
    for (key, value) in upserts {
        map.insert(key, value, 0)?;
    }
    for key in deletes {
        match map.remove(key) {
            Ok(()) | Err(MapError::KeyNotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Makes `map` hold exactly `table` (used on a back buffer only).
fn rewrite_all(
    map: &mut HashMap<MapData, AnswerKey, AnswerSet>,
    table: &AnswerTable,
) -> Result<(), MapWriteError> {
    let stale: Vec<AnswerKey> = map
        .keys()
        .filter_map(Result::ok)
        .filter(|k| !table.contains_key(k))
        .collect();
    let upserts: Vec<(AnswerKey, AnswerSet)> = table.iter().map(|(k, v)| (*k, *v)).collect();
    write(map, &upserts, &stale)
}

/// Waits for an RCU grace period through a private array-of-maps (see the module docs).
struct GracePeriod {
    outer: OwnedFd,
    inner: OwnedFd,
}

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_ARRAY_OF_MAPS: u32 = 12;

/// The leading fields of `union bpf_attr` for BPF_MAP_CREATE; the kernel zero-fills the rest.
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
}

/// `union bpf_attr` for BPF_MAP_UPDATE_ELEM.
#[repr(C)]
struct MapUpdateAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

fn bpf<T>(cmd: libc::c_long, attr: &T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, fully initialised bpf_attr prefix of the given size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn create_map(attr: &MapCreateAttr) -> io::Result<OwnedFd> {
    let fd = bpf(BPF_MAP_CREATE, attr)?;
    // SAFETY: BPF_MAP_CREATE returned a new file descriptor we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

impl GracePeriod {
    fn new() -> io::Result<Self> {
        let inner = create_map(&MapCreateAttr {
            map_type: BPF_MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            ..Default::default()
        })?;
        let outer = create_map(&MapCreateAttr {
            map_type: BPF_MAP_TYPE_ARRAY_OF_MAPS,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            inner_map_fd: inner.as_raw_fd() as u32,
            ..Default::default()
        })?;
        Ok(Self { outer, inner })
    }

    /// Returns once every BPF program invocation that was running at the call has finished.
    fn wait(&self) -> io::Result<()> {
        let key: u32 = 0;
        let value: u32 = self.inner.as_raw_fd() as u32;
        bpf(
            BPF_MAP_UPDATE_ELEM,
            &MapUpdateAttr {
                map_fd: self.outer.as_raw_fd() as u32,
                _pad: 0,
                key: &key as *const u32 as u64,
                value: &value as *const u32 as u64,
                flags: 0,
            },
        )
        .map(|_| ())
    }
}
