//! The set of hosted zones a server answers for, found by longest suffix, with the location
//! data their routing policies use and the per-zone counters.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hickory_proto::rr::LowerName;

use super::Zone;
use crate::location::Locations;

/// The zones this server is authoritative for, found by longest suffix.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// Shared with the control plane, which keeps each zone as served: a catalog of new
    /// zones costs a pointer per zone.
    zones: BTreeMap<LowerName, Arc<Zone>>,
    /// Location data for the routing policies (reloaded with the zones).
    locations: Locations,
    /// Each zone's slot in the per-zone counters (XDP and userspace), and the userspace ones.
    counters: std::sync::Arc<ZoneCounters>,
    /// The zones signed here (by apex), with their keys.
    signers: HashMap<LowerName, Arc<crate::signing::Signer>>,
}

/// Per-zone answer counters: a slot per zone (the same in the XDP program's `ZONE_HITS`) and
/// the userspace server's count per slot. Shared by successive catalogs, so a change to the
/// zones does not reset them.
#[derive(Debug)]
pub struct ZoneCounters {
    pub slots: HashMap<LowerName, u32>,
    pub hits: std::sync::Arc<Vec<std::sync::atomic::AtomicU64>>,
}

impl Default for ZoneCounters {
    fn default() -> Self {
        Self {
            slots: HashMap::new(),
            hits: Self::new_hits(),
        }
    }
}

impl ZoneCounters {
    /// Fresh counters, one per slot.
    pub fn new_hits() -> std::sync::Arc<Vec<std::sync::atomic::AtomicU64>> {
        std::sync::Arc::new(
            (0..dns_common::MAX_ZONES)
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
        )
    }
}

impl Catalog {
    /// A catalog of `zones`. A later zone with the same origin replaces an earlier one.
    pub fn new(zones: impl IntoIterator<Item = Zone>) -> Self {
        Self::of_shared(zones.into_iter().map(Arc::new))
    }

    /// A catalog of `zones`, shared. A later zone with the same origin replaces an earlier one.
    pub fn of_shared(zones: impl IntoIterator<Item = Arc<Zone>>) -> Self {
        let zones: BTreeMap<LowerName, Arc<Zone>> = zones
            .into_iter()
            .map(|z| (LowerName::new(z.origin()), z))
            .collect();
        // Slots in name order until someone assigns stable ones (`with_zone_counters`).
        let slots = zones
            .keys()
            .enumerate()
            .map(|(i, name)| (name.clone(), i as u32 + 1))
            .collect();
        Self {
            zones,
            locations: Locations::default(),
            counters: std::sync::Arc::new(ZoneCounters {
                slots,
                hits: ZoneCounters::new_hits(),
            }),
            signers: HashMap::new(),
        }
    }

    /// The same catalog signing the zones `signers` name (by apex) online.
    pub fn with_signers(
        mut self,
        signers: impl IntoIterator<Item = Arc<crate::signing::Signer>>,
    ) -> Self {
        self.signers = signers
            .into_iter()
            .map(|s| (LowerName::new(s.apex()), s))
            .collect();
        self
    }

    /// The signer of `zone`, if it is signed here.
    pub fn signer(&self, zone: &Zone) -> Option<&crate::signing::Signer> {
        if self.signers.is_empty() {
            return None;
        }
        self.signers
            .get(&LowerName::new(zone.origin()))
            .map(Arc::as_ref)
    }

    /// The same catalog counting into `counters` (slots stable across changes).
    pub fn with_zone_counters(mut self, counters: std::sync::Arc<ZoneCounters>) -> Self {
        self.counters = counters;
        self
    }

    /// `origin`'s slot in the per-zone counters: 1..[`dns_common::MAX_ZONES`], or 0 (not
    /// counted on its own).
    pub fn zone_slot(&self, origin: &hickory_proto::rr::Name) -> u32 {
        self.counters
            .slots
            .get(&LowerName::new(origin))
            .copied()
            .filter(|s| *s < dns_common::MAX_ZONES)
            .unwrap_or(0)
    }

    /// Counts one userspace answer from `zone`.
    pub fn count(&self, zone: &Zone) {
        let slot = self.zone_slot(zone.origin()) as usize;
        if let Some(c) = self.counters.hits.get(slot) {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The same catalog with `locations` for the routing policies.
    pub fn with_locations(mut self, locations: Locations) -> Self {
        self.locations = locations;
        self
    }

    /// The most specific zone containing `name`.
    pub fn find(&self, name: &LowerName) -> Option<&Zone> {
        let mut n = name.clone();
        loop {
            if let Some(zone) = self.zones.get(&n) {
                return Some(zone.as_ref());
            }
            if n.is_root() {
                return None;
            }
            n = n.base_name();
        }
    }

    /// The zone whose apex is exactly `origin`.
    pub fn zone(&self, origin: &LowerName) -> Option<&Zone> {
        self.zones.get(origin).map(Arc::as_ref)
    }

    /// All zones.
    pub fn zones(&self) -> impl Iterator<Item = &Zone> {
        self.zones.values().map(Arc::as_ref)
    }

    /// Location data for the routing policies.
    pub fn locations(&self) -> &Locations {
        &self.locations
    }
}
