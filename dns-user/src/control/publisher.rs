//! The publisher: one thread that takes what the control plane accepted (stored changes,
//! reloads, new health checks) to [`Published`], one publication at a time, and marks the
//! changes it carried INSYNC.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::rr::LowerName;

use super::*;

/// Change-to-INSYNC times, for `/metrics`: a histogram in seconds.
#[derive(Debug, Default)]
pub struct InsyncStats {
    inner: Mutex<Histogram>,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; INSYNC_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Upper bounds (seconds) of the INSYNC histogram.
pub const INSYNC_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

impl InsyncStats {
    fn observe(&self, d: Duration) {
        let mut h = self.inner.lock().expect("insync stats");
        let s = d.as_secs_f64();
        for (i, le) in INSYNC_BUCKETS.iter().enumerate() {
            if s <= *le {
                h.buckets[i] += 1;
            }
        }
        h.count += 1;
        h.sum += s;
    }

    /// (cumulative bucket counts, count, sum).
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let h = self.inner.lock().expect("insync stats");
        (
            INSYNC_BUCKETS.iter().copied().zip(h.buckets).collect(),
            h.count,
            h.sum,
        )
    }
}

impl Control {
    /// Starts publishing to `published` (which serves [`catalog`](Self::catalog) and whose
    /// monitor runs [`health_checks`](Self::health_checks)) on a thread of its own.
    pub fn start_publisher(
        self: &Arc<Self>,
        published: Arc<Published>,
        monitor: Arc<Monitor>,
        notifier: Option<Arc<crate::server::notify::Notifier>>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let _ = self.serving.set((published, monitor));
        if let Some(n) = notifier {
            let _ = self.notifier.set(n);
        }
        {
            // The initial catalog and checks are already being served.
            let mut g = self.lock();
            g.published_checks_version = g.checks_version;
        }
        let this = self.clone();
        std::thread::Builder::new()
            .name("dns-dnssec".into())
            .spawn(move || this.dnssec_loop())?;
        let this = self.clone();
        std::thread::Builder::new()
            .name("dns-publisher".into())
            .spawn(move || this.publish_loop())
    }

    /// Takes the ZSK rollovers as they come due, until [`stop`](Self::stop).
    fn dnssec_loop(&self) {
        loop {
            let deadline = Instant::now() + self.dnssec_tick_every();
            let mut g = self.lock();
            while !g.stop && Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                g = self.wake.wait_timeout(g, left).expect("control lock").0;
            }
            if g.stop {
                return;
            }
            drop(g);
            self.dnssec_tick(crate::signing::unix_now().into());
        }
    }

    /// Stops the publisher thread after its current publication.
    pub fn stop(&self) {
        self.lock().stop = true;
        self.wake.notify_all();
    }

    fn publish_loop(&self) {
        let (published, monitor) = self.serving.get().expect("set before the thread starts");
        loop {
            let (catalog, checks, sequence, requested, touched) = {
                let mut g = self.lock();
                while !g.stop
                    && g.requested == g.completed
                    && g.published_sequence == g.last_sequence
                    && g.published_checks_version == g.checks_version
                    && g.pending.is_empty()
                {
                    // Zones signed here are compiled again daily: the fast path's signatures
                    // are then the ones userspace serves (each is made again when 10 of its
                    // 14 days are left; see `signing`).
                    let (guard, waited) = self
                        .wake
                        .wait_timeout(g, crate::signing::RECOMPILE_EVERY)
                        .expect("control lock");
                    g = guard;
                    if waited.timed_out() && !g.signers.is_empty() {
                        g.publish_all = true;
                        g.requested += 1;
                    }
                }
                if g.stop {
                    return;
                }
                let requested = g.requested;
                let checks = (g.published_checks_version != g.checks_version)
                    .then(|| (g.specs.clone(), g.checks_version));
                let Publication { catalog, touched } = take_publication(&mut g);
                (catalog, checks, g.last_sequence, requested, touched)
            };
            match checks {
                Some((specs, version)) => {
                    // As a reload: the new checks' health first, then the monitor switches.
                    let preview = Arc::new(monitor.preview(&specs));
                    published.replace(catalog, || preview);
                    monitor.reconfigure(specs);
                    published.health(&|| monitor.health());
                    self.lock().published_checks_version = version;
                }
                None => match touched {
                    Some(touched) => {
                        published.replace_touched(catalog, &touched, || monitor.health())
                    }
                    None => {
                        published.replace(catalog, || monitor.health());
                    }
                },
            }
            self.mark_insync(sequence);
            if let Some(cluster) = self.cluster.get() {
                cluster.published(sequence);
            }
            if let Some(n) = self.notifier.get() {
                n.published(&published.catalog.load());
            }
            self.lock().completed = requested;
            self.done.notify_all();
        }
    }

    /// Every change up to `sequence` is served by both paths now.
    fn mark_insync(&self, sequence: u64) {
        let mut g = self.lock();
        g.published_sequence = g.published_sequence.max(sequence);
        let done: Vec<u64> = g.pending.range(..=sequence).map(|(s, _)| *s).collect();
        let mut write = Write::default();
        for s in done {
            let (id, accepted) = g.pending.remove(&s).expect("listed");
            self.insync.observe(accepted.elapsed());
            if let Some(c) = g.store.state().changes.get(&id) {
                let mut c = c.clone();
                c.status = ChangeStatus::Insync;
                write.put_change(c);
            }
        }
        // Not synced: after a crash every change is published again at start anyway.
        if let Err(e) = g.store.commit_lazily(write) {
            tracing::error!("recording INSYNC: {e}");
        }
    }
}

/// What the next publication serves.
pub struct Publication {
    pub catalog: Catalog,
    /// The only names whose answers may differ from the last publication (zone origin,
    /// names), when only changes to named record sets happened since (none: nothing
    /// differs); `None`: anything may differ.
    pub touched: Option<Vec<(LowerName, HashSet<LowerName>)>>,
}

impl Control {
    /// Takes what the next publication serves, as the publisher thread does (for a
    /// publisher of one's own, in tests: the thread must not be running).
    pub fn take_publication(&self) -> Publication {
        take_publication(&mut self.lock())
    }
}

fn take_publication(g: &mut Inner) -> Publication {
    // First: a zone whose signer changed asks for a whole compile (`dnssec::signers_of`).
    let catalog = catalog_of(g);
    // Only the names batches touched, unless anything else changed the zones.
    let touched = std::mem::take(&mut g.touched);
    let all = std::mem::replace(&mut g.publish_all, false);
    Publication {
        catalog,
        touched: (!all).then_some(touched),
    }
}

/// The catalog the built zones make, counting into the control plane's per-zone counters.
pub(super) fn catalog_of(g: &mut Inner) -> Catalog {
    for zone in g.built.values() {
        let name = hickory_proto::rr::LowerName::new(zone.origin());
        if !g.zone_slots.contains_key(&name) {
            // Slot 0 is "other"; slots are not reused while the daemon runs.
            let slot = g.zone_slots.len() as u32 + 1;
            g.zone_slots.insert(name, slot);
        }
    }
    let counters = Arc::new(crate::zone::ZoneCounters {
        slots: g.zone_slots.clone(),
        hits: g.zone_hits.clone(),
    });
    // The config's locations, and the CIDR collections made through the API (by id, as
    // record sets name them).
    let mut locations = g.settings.locations.clone();
    for c in g.store.state().cidr.values() {
        let blocks = c
            .locations
            .iter()
            .map(|(location, blocks)| {
                let nets = blocks.iter().filter_map(|b| b.parse().ok()).collect();
                (location.clone(), nets)
            })
            .collect();
        locations.cidr.collections.insert(c.id.clone(), blocks);
    }
    let catalog_zone = catalog_zone_of(g);
    let signers = super::dnssec::signers_of(g);
    Catalog::of_shared(g.built.values().cloned().chain(catalog_zone))
        .with_locations(locations)
        .with_zone_counters(counters)
        .with_signers(signers)
}

/// The catalog zone listing the served hosted zones (`server.catalog_zone`), built again only
/// when the list changed, with a serial after the last one.
fn catalog_zone_of(g: &mut Inner) -> Option<Arc<crate::zone::Zone>> {
    let origin = g.settings.catalog_zone.clone()?;
    let state = g.store.state();
    let lower = hickory_proto::rr::LowerName::new(&origin);
    let members: super::catalog_zone::Members = g
        .built
        .keys()
        .filter_map(|id| state.zones.get(id))
        .map(|z| (z.id.clone(), z.name.clone()))
        .collect();
    if g.built
        .values()
        .any(|z| hickory_proto::rr::LowerName::new(z.origin()) == lower)
    {
        tracing::warn!(
            "catalog zone {origin}: a hosted zone has that name; no catalog zone served"
        );
        return None;
    }
    if let Some((cached, zone)) = &g.catalog_zone
        && *cached == members
    {
        return Some(zone.clone());
    }
    let now = crate::server::tsig::now() as u32;
    let previous = g.catalog_zone.as_ref().map_or(0, |(_, z)| z.serial());
    let serial = super::catalog_zone::next_serial(previous, now);
    match super::catalog_zone::build(&origin, &members, serial) {
        Ok(zone) => {
            let zone = Arc::new(zone);
            g.catalog_zone = Some((members, zone.clone()));
            Some(zone)
        }
        Err(e) => {
            tracing::error!("catalog zone {origin}: {e}");
            g.catalog_zone.as_ref().map(|(_, z)| z.clone())
        }
    }
}
