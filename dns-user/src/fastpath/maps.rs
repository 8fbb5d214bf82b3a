//! The map writer: installs [`Tables`] into the XDP program's double-buffered maps (answers,
//! routing-policy variants, location cells) so that no reader ever sees a half-written entry or
//! a mix of old and new data: every buffer pair switches with the one `CONTROL.active` flag.
//!
//! ```text
//!   readers (XDP):   CONTROL.active ──> ANSWERS_a, VARIANTS_a, CELLS_a   (never written while readable)
//!   writer:          1. apply the change to the b buffers    (unread)
//!                    2. CONTROL.active = b                   (one map update)
//!                    3. wait for an RCU grace period         (every reader of the a buffers is done)
//!                    4. apply the same change to the a buffers (now the back buffers)
//! ```
//!
//! Step 3 uses a documented kernel guarantee: updating an element of a map-of-maps from the
//! bpf() syscall calls `synchronize_rcu()` before returning (kernel/bpf/syscall.c,
//! `maybe_wait_bpf_programs`), and XDP programs run inside RCU read-side sections. The writer
//! owns a tiny array-of-maps for nothing else.
//!
//! A failure before the flip leaves readers on the old buffers (nothing applied); the back
//! buffers are marked dirty and rewritten in full before the next change.
//!
//! [`HeartbeatWriter`] keeps the daemon's heartbeat in its own map: with a maximum age set,
//! XDP stops answering once the heartbeat is older than that (a crashed or hung daemon).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use aya::Ebpf;
use aya::maps::lpm_trie::{Key as LpmKey, LpmTrie};
use aya::maps::{Array, HashMap, MapData, MapError};
use dns_common::{
    ANSWER_MAPS, AnswerKey, AnswerSet, CELL_MAPS, CONTROL_ENABLED, CONTROL_MAP, Cell, CellKey,
    Control, HEARTBEAT_MAP, Heartbeat, VARIANT_MAPS, VariantKey,
};

use crate::fastpath::compile::{Change, Delta, Tables};

/// Map writer errors. Nothing a reader sees has changed when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum MapWriteError {
    #[error(
        "{entries} {what} entries exceed the map capacity of {capacity} (raise xdp.max_entries; with xdp.max_entries = 0, a reload sizes the maps again)"
    )]
    Capacity {
        what: &'static str,
        entries: usize,
        capacity: u32,
    },
    #[error("the eBPF object has no map {0}")]
    MissingMap(&'static str),
    #[error("map access failed: {0}")]
    Map(#[from] MapError),
    #[error("waiting for XDP readers (RCU grace period) failed: {0}")]
    GracePeriod(io::Error),
    #[error("reading CLOCK_MONOTONIC failed: {0}")]
    Clock(io::Error),
    #[error("writing a batch of map entries failed: {0}")]
    Batch(io::Error),
}

/// What one [`MapWriter::install`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstallStats {
    pub upserts: usize,
    pub deletes: usize,
}

/// One buffer: the maps readers use together.
struct Buffer {
    answers: HashMap<MapData, AnswerKey, AnswerSet>,
    variants: HashMap<MapData, VariantKey, AnswerSet>,
    cells: LpmTrie<MapData, [u8; 16], Cell>,
}

/// Capacities of each buffer's maps.
#[derive(Clone, Copy, Debug)]
pub struct Capacity {
    pub answers: u32,
    pub variants: u32,
    pub cells: u32,
}

/// The least capacity [`Capacity::auto`] gives each map.
pub const MIN_AUTO_CAPACITY: u32 = 4096;

impl Capacity {
    /// `answers` entries, and as many variants; cells as the ABI sets.
    pub fn of(answers: u32) -> Capacity {
        Capacity {
            answers,
            variants: answers,
            cells: dns_common::MAX_CELLS,
        }
    }

    /// `xdp.max_entries = 0`: room for a quarter more than `tables` holds (changes through
    /// the API add names), in whole multiples of [`MIN_AUTO_CAPACITY`]; answers and variants
    /// each. The maps are preallocated, so this is what they reserve.
    pub fn auto(tables: &Tables) -> Capacity {
        let room = |n: usize| {
            let step = MIN_AUTO_CAPACITY as usize;
            let n = n.saturating_add(n / 4).max(1).div_ceil(step) * step;
            u32::try_from(n).unwrap_or(u32::MAX - step as u32 + 1)
        };
        Capacity {
            answers: room(tables.answers.len()),
            variants: room(tables.variants.len()),
            cells: dns_common::MAX_CELLS,
        }
    }
}

/// Owns the answer maps and the control entry of one loaded XDP program.
pub struct MapWriter {
    buffers: [Buffer; 2],
    control_map: Array<MapData, Control>,
    control: Control,
    /// What both buffers hold (the back buffers only when `back_dirty` is false).
    installed: Tables,
    back_dirty: bool,
    /// The maps were pinned by a daemon that is gone: both buffers hold what it installed,
    /// unknown here, and the first install rewrites each in full.
    adopted: bool,
    capacity: Capacity,
    grace: GracePeriod,
}

impl MapWriter {
    /// Takes the maps out of `ebpf`. The fast path stays disabled until the first
    /// [`install`](Self::install) and [`set_enabled`](Self::set_enabled).
    pub fn new(ebpf: &mut Ebpf, capacity: u32) -> Result<Self, MapWriteError> {
        Self::with_capacity(ebpf, Capacity::of(capacity))
    }

    /// As [`new`](Self::new), for maps loaded with these capacities.
    pub fn with_capacity(ebpf: &mut Ebpf, capacity: Capacity) -> Result<Self, MapWriteError> {
        let take = |ebpf: &mut Ebpf, name: &'static str| {
            ebpf.take_map(name).ok_or(MapWriteError::MissingMap(name))
        };
        let mut buffer = |i: usize| -> Result<Buffer, MapWriteError> {
            Ok(Buffer {
                answers: HashMap::try_from(take(ebpf, ANSWER_MAPS[i])?)?,
                variants: HashMap::try_from(take(ebpf, VARIANT_MAPS[i])?)?,
                cells: LpmTrie::try_from(take(ebpf, CELL_MAPS[i])?)?,
            })
        };
        let buffers = [buffer(0)?, buffer(1)?];
        let control_map = Array::try_from(take(ebpf, CONTROL_MAP)?)?;
        let control = control_map.get(&0, 0)?;
        Ok(Self {
            buffers,
            control_map,
            control,
            installed: Tables::default(),
            back_dirty: false,
            adopted: false,
            capacity,
            grace: GracePeriod::new().map_err(MapWriteError::GracePeriod)?,
        })
    }

    /// As [`new`](Self::new), for maps a daemon that is gone left pinned: readers keep the
    /// buffer and flags it left them (answers go on) until the first install replaces both
    /// buffers' contents, one after the other, by the same protocol.
    pub fn adopt(ebpf: &mut Ebpf, capacity: Capacity) -> Result<Self, MapWriteError> {
        let mut writer = Self::with_capacity(ebpf, capacity)?;
        writer.adopted = true;
        Ok(writer)
    }

    /// The first map filled beyond nine tenths of its capacity: (map, entries, capacity).
    pub fn nearly_full(&self) -> Option<(&'static str, usize, u32)> {
        nearly_full(&self.installed, self.capacity)
    }

    /// Capacity of each map of one buffer.
    pub fn capacity(&self) -> Capacity {
        self.capacity
    }

    /// What readers currently see.
    pub fn installed(&self) -> &Tables {
        &self.installed
    }

    /// Makes readers see exactly `tables`, atomically per the protocol in the module docs.
    /// Costs a diff against everything installed; [`apply`](Self::apply) takes a change directly.
    pub fn install(&mut self, tables: &Tables) -> Result<InstallStats, MapWriteError> {
        let change = Change::between(&self.installed, tables);
        self.apply(&change)
    }

    /// Makes readers see the installed entries with `change` applied, all at once, per the
    /// protocol in the module docs. Costs what the change costs.
    pub fn apply(&mut self, change: &Change) -> Result<InstallStats, MapWriteError> {
        check(
            "answer",
            &self.installed.answers,
            &change.answers,
            self.capacity.answers,
        )?;
        check(
            "routing-policy variant",
            &self.installed.variants,
            &change.variants,
            self.capacity.variants,
        )?;
        check(
            "location cell",
            &self.installed.cells,
            &change.cells,
            self.capacity.cells,
        )?;
        let stats = InstallStats {
            upserts: change.answers.upserts.len()
                + change.variants.upserts.len()
                + change.cells.upserts.len(),
            deletes: change.answers.deletes.len()
                + change.variants.deletes.len()
                + change.cells.deletes.len(),
        };
        if change.is_empty() {
            return Ok(stats);
        }
        self.switch(|buffer| write(buffer, change))?;
        self.installed.apply(change);
        Ok(stats)
    }

    /// Makes readers see exactly `tables`, which the writer then keeps as what is installed.
    /// Into empty maps (the first install) the entries go straight from `tables`: no diff
    /// and no copy of a table that is large for big zones. Otherwise as
    /// [`install`](Self::install).
    pub fn install_owned(&mut self, tables: Tables) -> Result<InstallStats, MapWriteError> {
        if self.adopted {
            return self.install_adopted(tables);
        }
        let fresh = self.installed.answers.is_empty()
            && self.installed.variants.is_empty()
            && self.installed.cells.is_empty()
            && !self.back_dirty;
        if !fresh {
            return self.install(&tables);
        }
        self.check_fits(&tables)?;
        let stats = InstallStats {
            upserts: tables.answers.len() + tables.variants.len() + tables.cells.len(),
            deletes: 0,
        };
        if stats.upserts > 0 {
            self.switch(|buffer| fill(buffer, &tables))?;
        }
        self.installed = tables;
        Ok(stats)
    }

    /// Fails if `tables` would not fit the maps.
    fn check_fits(&self, tables: &Tables) -> Result<(), MapWriteError> {
        for (what, entries, capacity) in [
            ("answer", tables.answers.len(), self.capacity.answers),
            (
                "routing-policy variant",
                tables.variants.len(),
                self.capacity.variants,
            ),
            ("location cell", tables.cells.len(), self.capacity.cells),
        ] {
            if entries > capacity as usize {
                return Err(MapWriteError::Capacity {
                    what,
                    entries,
                    capacity,
                });
            }
        }
        Ok(())
    }

    /// The first install into adopted maps: each buffer is made to hold exactly `tables`
    /// (stale entries deleted), the back one first.
    fn install_adopted(&mut self, tables: Tables) -> Result<InstallStats, MapWriteError> {
        self.check_fits(&tables)?;
        self.switch(|buffer| rewrite_all(buffer, &tables))?;
        let stats = InstallStats {
            upserts: tables.answers.len() + tables.variants.len() + tables.cells.len(),
            deletes: 0,
        };
        self.installed = tables;
        self.adopted = false;
        Ok(stats)
    }

    /// The write protocol of the module docs: `write` brings the back buffer to the new
    /// contents (after a full rewrite if it is stale), readers are switched to it, and after
    /// a grace period the old front buffer gets the same writes. An error before the switch
    /// changes nothing readers see.
    fn switch(
        &mut self,
        write: impl Fn(&mut Buffer) -> Result<(), MapWriteError>,
    ) -> Result<(), MapWriteError> {
        let front = (self.control.active & 1) as usize;
        let back = 1 - front;
        if self.back_dirty {
            rewrite_all(&mut self.buffers[back], &self.installed)?;
            self.back_dirty = false;
        }
        if let Err(e) = write(&mut self.buffers[back]) {
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
        let caught_up = waited.is_ok() && write(&mut self.buffers[front]).is_ok();
        self.back_dirty = !caught_up;
        if let Err(e) = waited {
            tracing::warn!("grace period wait failed, old buffers left for a full rewrite: {e}");
        }
        Ok(())
    }

    /// Turns the fast path on (answer from the maps) or off (pass every packet up).
    pub fn set_enabled(&mut self, enabled: bool) -> Result<(), MapWriteError> {
        let flags = if enabled {
            self.control.flags | CONTROL_ENABLED
        } else {
            self.control.flags & !CONTROL_ENABLED
        };
        self.set_control(Control {
            flags,
            ..self.control
        })
    }

    fn set_control(&mut self, next: Control) -> Result<(), MapWriteError> {
        self.control_map.set(0, &next, 0)?;
        self.control = next;
        Ok(())
    }
}

/// Writes the `HEARTBEAT` map, independently of the [`MapWriter`].
pub struct HeartbeatWriter {
    map: Array<MapData, Heartbeat>,
}

impl HeartbeatWriter {
    /// The heartbeat pinned at `path` by a daemon that is gone (see [`crate::fastpath::pins`]).
    pub fn from_pin(path: &std::path::Path) -> Result<Self, MapWriteError> {
        let map = aya::maps::Map::Array(MapData::from_pin(path)?);
        Ok(Self {
            map: Array::try_from(map)?,
        })
    }

    pub fn take(ebpf: &mut Ebpf) -> Result<Self, MapWriteError> {
        let map = ebpf
            .take_map(HEARTBEAT_MAP)
            .ok_or(MapWriteError::MissingMap(HEARTBEAT_MAP))?;
        Ok(Self {
            map: Array::try_from(map)?,
        })
    }

    /// Proves the daemon alive: stamps the current CLOCK_MONOTONIC time; with `max_age`, XDP
    /// passes everything up once the stamp is older than that (`None`: no limit).
    pub fn beat(&mut self, max_age: Option<Duration>) -> Result<(), MapWriteError> {
        let beat = Heartbeat {
            at_ns: monotonic_ns()?,
            max_age_ns: max_age.map_or(0, |d| d.as_nanos() as u64),
        };
        self.map.set(0, &beat, 0)?;
        Ok(())
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of `bpf_ktime_get_ns`.
pub fn monotonic_ns() -> Result<u64, MapWriteError> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return Err(MapWriteError::Clock(io::Error::last_os_error()));
    }
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// The first map of `tables` filled beyond nine tenths of `capacity`.
fn nearly_full(tables: &Tables, capacity: Capacity) -> Option<(&'static str, usize, u32)> {
    [
        ("answer", tables.answers.len(), capacity.answers),
        (
            "routing-policy variant",
            tables.variants.len(),
            capacity.variants,
        ),
        ("location cell", tables.cells.len(), capacity.cells),
    ]
    .into_iter()
    .find(|(_, n, cap)| *n * 10 > *cap as usize * 9)
}

/// Fails if applying `delta` to `installed` would exceed `capacity`.
fn check<K: Eq + std::hash::Hash, V>(
    what: &'static str,
    installed: &std::collections::HashMap<K, V>,
    delta: &Delta<K, V>,
    capacity: u32,
) -> Result<(), MapWriteError> {
    let added = delta
        .upserts
        .iter()
        .filter(|(k, _)| !installed.contains_key(k))
        .count();
    let removed = delta
        .deletes
        .iter()
        .filter(|k| installed.contains_key(*k))
        .count();
    let entries = installed.len() + added - removed;
    if entries > capacity as usize {
        return Err(MapWriteError::Capacity {
            what,
            entries,
            capacity,
        });
    }
    Ok(())
}

/// Applies `delta` to the writer's record of the maps: upserts, then deletes (as `write`).
fn removed(r: Result<(), MapError>) -> Result<(), MapWriteError> {
    match r {
        Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn lpm_key(k: &CellKey) -> LpmKey<[u8; 16]> {
    LpmKey::new(k.prefix_len, k.addr)
}

/// Writes a change into one buffer: what answers will point to first, the answers last.
fn write(buffer: &mut Buffer, change: &Change) -> Result<(), MapWriteError> {
    for (k, v) in &change.cells.upserts {
        buffer.cells.insert(&lpm_key(k), v, 0)?;
    }
    update_batch(
        &mut buffer.variants,
        change.variants.upserts.iter().map(|(k, v)| (k, v)),
    )?;
    update_batch(
        &mut buffer.answers,
        change.answers.upserts.iter().map(|(k, v)| (k, v)),
    )?;
    for k in &change.answers.deletes {
        removed(buffer.answers.remove(k))?;
    }
    for k in &change.variants.deletes {
        removed(buffer.variants.remove(k))?;
    }
    for k in &change.cells.deletes {
        removed(buffer.cells.remove(&lpm_key(k)))?;
    }
    Ok(())
}

/// Writes every entry of `tables` into an empty buffer, in [`write`]'s order.
fn fill(buffer: &mut Buffer, tables: &Tables) -> Result<(), MapWriteError> {
    for (k, v) in tables.cells.iter() {
        buffer.cells.insert(&lpm_key(k), v, 0)?;
    }
    update_batch(&mut buffer.variants, tables.variants.iter())?;
    update_batch(&mut buffer.answers, tables.answers.iter())
}

/// Makes a (back) buffer hold exactly `tables`.
fn rewrite_all(buffer: &mut Buffer, tables: &Tables) -> Result<(), MapWriteError> {
    let stale_answers: Vec<AnswerKey> = buffer
        .answers
        .keys()
        .filter_map(Result::ok)
        .filter(|k| !tables.answers.contains_key(k))
        .collect();
    let stale_variants: Vec<VariantKey> = buffer
        .variants
        .keys()
        .filter_map(Result::ok)
        .filter(|k| !tables.variants.contains_key(k))
        .collect();
    let stale_cells: Vec<CellKey> = buffer
        .cells
        .keys()
        .filter_map(Result::ok)
        .map(|k| CellKey {
            prefix_len: k.prefix_len(),
            addr: k.data(),
        })
        .filter(|k| !tables.cells.contains_key(k))
        .collect();
    let change = Change {
        answers: Delta {
            upserts: tables.answers.iter().map(|(k, v)| (*k, *v)).collect(),
            deletes: stale_answers,
        },
        variants: Delta {
            upserts: tables.variants.iter().map(|(k, v)| (*k, *v)).collect(),
            deletes: stale_variants,
        },
        cells: Delta {
            upserts: tables.cells.iter().map(|(k, v)| (*k, *v)).collect(),
            deletes: stale_cells,
        },
        cells_to: None,
        shared_keys: None,
    };
    write(buffer, &change)
}

/// Waits for an RCU grace period through a private array-of-maps (see the module docs).
struct GracePeriod {
    outer: OwnedFd,
    inner: OwnedFd,
}

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
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

/// `union bpf_attr` for the BPF_MAP_*_BATCH commands.
#[repr(C)]
struct MapBatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    /// In: entries given; out: entries done.
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Entries per BPF_MAP_UPDATE_BATCH call (the kernel copies them one by one; this bounds the
/// staging arrays).
const BATCH: usize = 4096;

/// Writes `entries` into the hash map `map`, many per bpf() call (BPF_MAP_UPDATE_BATCH, Linux
/// 5.6): one syscall per entry was most of the cost of large installs. A kernel without batch
/// operations gets them one at a time.
fn update_batch<'a, K: aya::Pod + 'a, V: aya::Pod + 'a>(
    map: &mut HashMap<MapData, K, V>,
    entries: impl ExactSizeIterator<Item = (&'a K, &'a V)>,
) -> Result<(), MapWriteError> {
    use aya::maps::IterableMap;
    use std::os::fd::AsFd;
    let fd = map.map().fd().as_fd().as_raw_fd() as u32;
    let total = entries.len();
    let progress = crate::progress::Progress::new("fast path: map entries written", Some(total));
    let mut entries = entries.peekable();
    let (mut keys, mut values) = (Vec::with_capacity(BATCH), Vec::with_capacity(BATCH));
    let mut done = 0;
    while entries.peek().is_some() {
        progress.update(done);
        keys.clear();
        values.clear();
        for (k, v) in entries.by_ref().take(BATCH) {
            keys.push(*k);
            values.push(*v);
        }
        let attr = MapBatchAttr {
            in_batch: 0,
            out_batch: 0,
            keys: keys.as_ptr() as u64,
            values: values.as_ptr() as u64,
            count: keys.len() as u32,
            map_fd: fd,
            elem_flags: 0,
            flags: 0,
        };
        match bpf(BPF_MAP_UPDATE_BATCH, &attr) {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) => {
                for (k, v) in keys.iter().zip(&values) {
                    map.insert(k, v, 0)?;
                }
            }
            Err(e) => return Err(MapWriteError::Batch(e)),
        }
        done += keys.len();
    }
    progress.finish(total);
    Ok(())
}

/// The bpf(2) system call with `attr` (a `union bpf_attr` member, `#[repr(C)]`), for what aya
/// offers no call for: batch updates, the grace-period map, pins and link updates of
/// descriptors aya did not make.
pub(crate) fn bpf<T>(cmd: libc::c_long, attr: &T) -> io::Result<libc::c_long> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use dns_common::AnswerKey;

    fn tables(answers: usize, variants: usize) -> Tables {
        let set = AnswerSet::policy(dns_common::PolicyRef {
            group: 0,
            slots: 1,
            located: 0,
            aspect: 0,
        });
        let mut t = Tables::default();
        for i in 0..answers {
            let mut k = AnswerKey::zeroed();
            k.hash = i as u64;
            t.answers.insert(k, set);
        }
        for i in 0..variants {
            let k = VariantKey {
                group: i as u32,
                cell: 0,
                slot: 0,
                _pad: 0,
            };
            t.variants.insert(k, set);
        }
        t
    }

    #[test]
    fn automatic_capacity_is_a_quarter_more_than_the_need_in_steps_of_the_floor() {
        let c = Capacity::auto(&tables(0, 0));
        assert_eq!((c.answers, c.variants), (4096, 4096));
        let c = Capacity::auto(&tables(3000, 10));
        assert_eq!((c.answers, c.variants), (4096, 4096));
        let c = Capacity::auto(&tables(3300, 4000));
        assert_eq!((c.answers, c.variants), (8192, 8192));
        let c = Capacity::auto(&tables(125_001, 0));
        assert_eq!(c.answers, 159_744); // 156,251 rounded up to 39 x 4096
        assert_eq!(c.cells, dns_common::MAX_CELLS);
    }

    #[test]
    fn maps_beyond_nine_tenths_are_reported_the_first_one_named() {
        let cap = Capacity::of(100);
        assert_eq!(nearly_full(&tables(90, 90), cap), None);
        assert_eq!(nearly_full(&tables(91, 95), cap), Some(("answer", 91, 100)));
        assert_eq!(
            nearly_full(&tables(10, 95), cap),
            Some(("routing-policy variant", 95, 100))
        );
    }
}
