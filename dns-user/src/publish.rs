//! What is being served: the catalog and the health state the userspace server answers from,
//! and the XDP answer maps compiled from both. A publication by the control plane (a change
//! batch, a reload: [`crate::control`]) and a health change are the only two ways either
//! changes, and both come through here, one at a time:
//!
//! ```text
//!   control plane ──> replace(next, health) ──> compile all ──> MapWriter::install ──┐
//!   change batches ──> replace_touched ──> compile::compile_touched ──> apply ───────┤
//!   health change ──> health(latest) ──> compile::policy_changes ──> apply ─────────┤
//!                                                                                 ▼
//!                                              userspace switches (ArcSwap store), same moment
//! ```
//!
//! The maps go first. If they cannot take a change (full), the fast path is turned off
//! (every query goes up to userspace, which has the change) rather than leave XDP answering
//! the old data; the next publication that installs cleanly turns it back on.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use hickory_proto::rr::LowerName;

use crate::fastpath::compile::{self, CompileReport};
use crate::fastpath::maps::{InstallStats, MapWriteError, MapWriter};
use crate::health::HealthState;
use crate::zone::Catalog;

/// The served state.
pub struct Published {
    pub catalog: ArcSwap<Catalog>,
    pub health: ArcSwap<HealthState>,
    /// `None` when XDP is off. The lock serializes every change.
    writer: Mutex<Option<MapWriter>>,
    /// A map is beyond nine tenths of its capacity (warned once per crossing).
    crowded: std::sync::atomic::AtomicBool,
}

impl Published {
    /// Serves `catalog` with `health`; with a writer, its maps must already hold
    /// `compile(catalog, health)` (see [`Published::install_initial`]).
    pub fn new(catalog: Catalog, health: Arc<HealthState>, writer: Option<MapWriter>) -> Self {
        Self {
            catalog: ArcSwap::from_pointee(catalog),
            health: ArcSwap::new(health),
            writer: Mutex::new(writer),
            crowded: Default::default(),
        }
    }

    /// Warns once when a map crosses nine tenths of its capacity: the change that fills it
    /// turns the fast path off.
    fn watch_fill(&self, writer: &MapWriter) {
        use std::sync::atomic::Ordering::Relaxed;
        match writer.nearly_full() {
            Some((map, entries, capacity)) => {
                if !self.crowded.swap(true, Relaxed) {
                    tracing::warn!(
                        "XDP {map} map {entries} of {capacity} entries full: a change beyond it turns the fast path off (raise xdp.max_entries; with xdp.max_entries = 0, a reload sizes the maps again)"
                    );
                }
            }
            None => self.crowded.store(false, Relaxed),
        }
    }

    /// Fills a fresh writer's maps for `catalog` and `health`.
    pub fn install_initial(
        writer: &mut MapWriter,
        catalog: &Catalog,
        health: &HealthState,
    ) -> Result<CompileReport, MapWriteError> {
        // The table goes to the writer, which keeps it as what the maps hold: no copy of it
        // (it is large for big zones).
        let (table, report) = compile::compile(catalog, health);
        writer.install_owned(table)?;
        Ok(report)
    }

    /// A change from the control plane: serves `next` with `health` (read under the lock).
    /// If the maps cannot take it, the fast path is turned off and userspace serves it
    /// anyway: a stored change is never left unserved, and XDP never answers stale.
    pub fn replace(
        &self,
        next: Catalog,
        health: impl FnOnce() -> Arc<HealthState>,
    ) -> Option<CompileReport> {
        self.publish(next, health, |writer, next, _, health| {
            Self::install_initial(writer, next, health)
        })
    }

    /// Change batches from the control plane: serves `next`, in which only the names `touched`
    /// (zone origin, names) may answer differently, with `health` (read under the lock). The
    /// maps get only those names' entries ([`compile::compile_touched`]); otherwise as
    /// [`replace`](Self::replace).
    pub fn replace_touched(
        &self,
        next: Catalog,
        touched: &[(LowerName, HashSet<LowerName>)],
        health: impl FnOnce() -> Arc<HealthState>,
    ) {
        self.publish(next, health, |writer, next, before, health| {
            // The maps hold the last publication's health: groups following a check that
            // changed since are compiled again too.
            let mut touched = touched.to_vec();
            touched.extend(compile::health_touched(next, before, health));
            let (change, _) = compile::compile_touched(next, health, &touched, writer.installed());
            writer.apply(&change)
        });
    }

    /// Serves `next` with `health`: `write` brings the maps (if any) to it from what they hold
    /// (compiled with the previous health, given too), then userspace switches. If the maps
    /// cannot take it, the fast path goes transparent.
    fn publish<T>(
        &self,
        next: Catalog,
        health: impl FnOnce() -> Arc<HealthState>,
        write: impl FnOnce(
            &mut MapWriter,
            &Catalog,
            &HealthState,
            &HealthState,
        ) -> Result<T, MapWriteError>,
    ) -> Option<T> {
        let mut writer = self.writer.lock().expect("writer lock");
        let health = health();
        let mut written = None;
        if let Some(writer) = writer.as_mut() {
            match write(writer, &next, &self.health.load(), &health) {
                Ok(t) => {
                    written = Some(t);
                    if let Err(e) = writer.set_enabled(true) {
                        tracing::error!("turning the fast path on: {e}");
                    }
                    self.watch_fill(writer);
                }
                Err(e) => fast_path_off(writer, "change", &e),
            }
        }
        self.catalog.store(Arc::new(next));
        self.health.store(health);
        written
    }

    /// Health changed: rewrites the affected map entries, then switches userspace. `latest`
    /// is read under the lock, so a change racing a reload is never published stale.
    pub fn health(&self, latest: &dyn Fn() -> Arc<HealthState>) -> Option<InstallStats> {
        let mut writer = self.writer.lock().expect("writer lock");
        let health = latest();
        let mut stats = None;
        if let Some(writer) = writer.as_mut() {
            let catalog = self.catalog.load();
            let before = self.health.load();
            let change = compile::policy_changes(&catalog, &before, &health, writer.installed());
            match writer.apply(&change) {
                Ok(s) => {
                    stats = Some(s);
                    self.watch_fill(writer);
                }
                Err(e) => fast_path_off(writer, "health change", &e),
            }
        }
        self.health.store(health);
        stats
    }

    /// Entries in the active XDP maps and their capacity: (map, entries, capacity) for the
    /// answers, variants and cells maps; empty when XDP is off.
    pub fn occupancy(&self) -> Vec<(&'static str, usize, u32)> {
        match self.writer.lock().expect("writer lock").as_ref() {
            Some(w) => {
                let (t, c) = (w.installed(), w.capacity());
                vec![
                    ("answers", t.answers.len(), c.answers),
                    ("variants", t.variants.len(), c.variants),
                    ("cells", t.cells.len(), c.cells),
                ]
            }
            None => Vec::new(),
        }
    }

    /// Turns the fast path on or off (shutdown makes it transparent).
    pub fn set_fast_path(&self, enabled: bool) -> Result<(), MapWriteError> {
        match self.writer.lock().expect("writer lock").as_mut() {
            Some(writer) => writer.set_enabled(enabled),
            None => Ok(()),
        }
    }
}

/// `what` could not be written to the maps: the fast path goes transparent, so userspace
/// (which gets it) answers everything rather than XDP answering without it.
fn fast_path_off(writer: &mut MapWriter, what: &str, e: &MapWriteError) {
    tracing::error!(
        "{what} not written to the XDP maps ({e}); fast path off, userspace answers everything"
    );
    if let Err(e) = writer.set_enabled(false) {
        tracing::error!("turning the fast path off failed: {e}");
    }
}
