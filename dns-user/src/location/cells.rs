//! The address space cut into the cells the fast path's trie holds.
//!
//! A cell is a prefix of the location tables, the CIDR collections or the MaxMind database.
//! Every client whose longest matching prefix among them is P is located exactly as a client
//! standing for P (P's address, P's length) is: each source is a longest-prefix lookup over
//! those same prefixes, and a client prefix shorter than P matches neither P nor anything
//! longer (see the module above). Cells where clients are located alike in an aspect share
//! its class ([`Cell::classes`]): a group that depends on that aspect has one variant per
//! class, so a database of a million networks in two hundred countries costs a geolocation
//! group two hundred variants.
//!
//! The trie maps `::ffff:0:0/96` (IPv4 clients no prefix holds) to class 0 of every aspect,
//! which stands for "no prefix matches". In an IPv6 database that holds IPv4 at `::/96`, the
//! IPv4 space is also reachable from `::/96`, `2001::/32` (Teredo) and `2002::/16` (6to4)
//! when no network of the database lies there (MaxMind's aliases): those map to
//! [`CLASS_UNKNOWN`], and their clients' queries go to userspace.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;

use dns_common::{
    ASPECT_ALL, ASPECT_CIDR, ASPECT_COORDINATES, ASPECT_GEO, ASPECT_LATENCY, ASPECTS,
    CLASS_UNKNOWN, Cell, CellKey, MAX_CELLS, V4_MAPPED_PREFIX,
};
use ipnet::IpNet;

use super::{Locations, longest_index};
use crate::policy::ClientLocation;

/// The trie's contents and a client standing for each class.
#[derive(Debug, Default)]
pub struct Cells {
    /// The cell tries' entries.
    pub table: Arc<HashMap<CellKey, Cell>>,
    /// By aspect, then class id: the (address, prefix length) of a client of that class.
    reps: [Vec<(IpAddr, u8)>; ASPECTS],
    /// Why the cells cannot stand for the locations; `None` if they can.
    pub unusable: Option<String>,
}

/// A class id per distinct key, in order of first appearance.
struct Classes<K> {
    ids: HashMap<K, u32>,
    reps: Vec<(IpAddr, u8)>,
}

impl<K: Hash + Eq> Classes<K> {
    fn new() -> Self {
        Classes {
            ids: HashMap::new(),
            reps: Vec::new(),
        }
    }

    fn id(&mut self, key: K, rep: (IpAddr, u8)) -> u32 {
        let next = self.reps.len() as u32;
        *self.ids.entry(key).or_insert_with(|| {
            self.reps.push(rep);
            next
        })
    }
}

type GeoKey = (Option<String>, Option<String>, Option<String>);
type CoordinatesKey = Option<(u64, u64)>;
/// (collection, location, length of the longest block holding the client).
type CidrKey = Vec<(String, String, u8)>;

impl Cells {
    /// The cells of `locations`.
    pub fn of(locations: &Locations) -> Cells {
        let mut prefixes: BTreeSet<IpNet> = BTreeSet::new();
        prefixes.extend(locations.geo.iter().map(|(n, _)| n.trunc()));
        prefixes.extend(locations.latency.iter().map(|(n, _)| n.trunc()));
        for collection in locations.cidr.collections.values() {
            for blocks in collection.values() {
                prefixes.extend(blocks.iter().map(IpNet::trunc));
            }
        }
        let mut unusable = None;
        let mut unknown = Vec::new();
        if let Some(db) = &locations.maxmind {
            match networks(db) {
                Ok(found) => {
                    let has_v4 = found.iter().any(|n| matches!(n, IpNet::V4(_)));
                    if db.metadata().ip_version == 6 && has_v4 {
                        for alias in ["::/96", "2001::/32", "2002::/16"] {
                            let alias: IpNet = alias.parse().expect("valid");
                            if !found.iter().any(|n| alias.contains(n)) {
                                unknown.push(alias);
                            }
                        }
                    }
                    prefixes.extend(found);
                }
                Err(e) => {
                    unusable = Some(format!("the MaxMind database cannot be read whole: {e}"));
                }
            }
        }
        // IPv4-mapped IPv6 prefixes would share the trie space IPv4 is mapped into.
        if prefixes.iter().any(|n| is_mapped(n) && n.prefix_len() > 96) {
            unusable = Some("an IPv4-mapped IPv6 prefix in the location data".into());
        }
        if prefixes
            .iter()
            .any(|p| unknown.iter().any(|u| u.contains(p)))
        {
            unusable = Some("a location table prefix lies in MaxMind's IPv4 aliases".into());
        }
        if prefixes.len() + unknown.len() + 1 >= MAX_CELLS as usize {
            unusable = Some(format!(
                "{} location prefixes, more than the cell tries hold ({MAX_CELLS})",
                prefixes.len() + unknown.len()
            ));
        }
        if let Some(why) = &unusable {
            tracing::warn!("location-dependent answers left to userspace: {why}");
            return Cells {
                unusable,
                ..Cells::default()
            };
        }

        let mut geo = Classes::<GeoKey>::new();
        let mut coordinates = Classes::<CoordinatesKey>::new();
        let mut latency = Classes::<Option<usize>>::new();
        let mut cidr = Classes::<CidrKey>::new();
        let mut all = Classes::<(GeoKey, CoordinatesKey, Option<usize>, CidrKey)>::new();
        let mut cell_of = |rep: (IpAddr, u8)| {
            let client = locations.locate(rep.0, rep.1);
            let g: GeoKey = (
                client.continent.clone(),
                client.country.clone(),
                client.subdivision.clone(),
            );
            let c: CoordinatesKey = client.coordinates.map(|(a, b)| (a.to_bits(), b.to_bits()));
            let l = longest_index(&locations.latency, rep.0, rep.1);
            let b = cidr_key(locations, &client);
            let mut classes = [0; ASPECTS];
            classes[ASPECT_GEO as usize] = geo.id(g.clone(), rep);
            classes[ASPECT_COORDINATES as usize] = coordinates.id(c, rep);
            classes[ASPECT_LATENCY as usize] = latency.id(l, rep);
            classes[ASPECT_CIDR as usize] = cidr.id(b.clone(), rep);
            classes[ASPECT_ALL as usize] = all.id((g, c, l, b), rep);
            Cell { classes }
        };
        // Class 0 of every aspect: no prefix matches.
        let v4_default: IpNet = "0.0.0.0/0".parse().expect("valid");
        let default_rep = if prefixes.contains(&v4_default) {
            (IpAddr::from([0u16; 8]), 0)
        } else {
            (IpAddr::from([0u8; 4]), 0)
        };
        let default = cell_of(default_rep);
        debug_assert_eq!(default, Cell::default());
        let mut table = HashMap::with_capacity(prefixes.len() + unknown.len() + 1);
        // IPv4 clients that match no IPv4 prefix must not fall into an IPv6 prefix that
        // covers ::ffff:0:0/96.
        table.insert(cell_key(IpAddr::from([0u8; 4]), 0), default);
        for net in prefixes {
            let cell = cell_of((net.network(), net.prefix_len()));
            table.insert(cell_key(net.network(), net.prefix_len()), cell);
        }
        for net in unknown {
            let cell = Cell {
                classes: [CLASS_UNKNOWN; ASPECTS],
            };
            table.insert(cell_key(net.network(), net.prefix_len()), cell);
        }
        if locations.maxmind.is_some() {
            tracing::info!(
                "location cells: {} prefixes, {} classes of geo, {} of coordinates, {} in all",
                table.len(),
                geo.reps.len(),
                coordinates.reps.len(),
                all.reps.len()
            );
        }
        let mut reps: [Vec<(IpAddr, u8)>; ASPECTS] = Default::default();
        reps[ASPECT_ALL as usize] = all.reps;
        reps[ASPECT_GEO as usize] = geo.reps;
        reps[ASPECT_COORDINATES as usize] = coordinates.reps;
        reps[ASPECT_LATENCY as usize] = latency.reps;
        reps[ASPECT_CIDR as usize] = cidr.reps;
        Cells {
            table: Arc::new(table),
            reps,
            unusable: None,
        }
    }

    /// A client (address, prefix length) standing for each class of `aspect`, by class id.
    pub fn classes(&self, aspect: u32) -> &[(IpAddr, u8)] {
        self.reps.get(aspect as usize).map_or(&[], Vec::as_slice)
    }
}

/// True for prefixes in `::ffff:0:0/96`.
fn is_mapped(net: &IpNet) -> bool {
    match net {
        IpNet::V6(v6) => v6.network().octets()[..12] == V4_MAPPED_PREFIX,
        IpNet::V4(_) => false,
    }
}

/// The blocks of every CIDR collection that hold the client's whole prefix: the longest per
/// (collection, location), in name order.
fn cidr_key(locations: &Locations, client: &ClientLocation) -> CidrKey {
    let mut key = Vec::new();
    for (collection, places) in &locations.cidr.collections {
        for place in places.keys() {
            if let Some(len) = locations.cidr.match_len(collection, place, client) {
                key.push((collection.clone(), place.clone(), len));
            }
        }
    }
    key.sort();
    key
}

/// Every network of the database that has data (IPv4 as IPv4, aliases of it left out).
fn networks(db: &maxminddb::Reader<Vec<u8>>) -> Result<Vec<IpNet>, maxminddb::MaxMindDbError> {
    let mut out = Vec::new();
    for found in db.networks(maxminddb::WithinOptions::default())? {
        let net = found?.network()?;
        let net = IpNet::new(net.ip(), net.prefix())
            .map_err(|e| maxminddb::MaxMindDbError::invalid_database(e.to_string()))?;
        out.push(net.trunc());
    }
    Ok(out)
}

/// The trie key of a prefix (IPv4 mapped into ::ffff:0:0/96).
pub fn cell_key(addr: IpAddr, prefix_len: u8) -> CellKey {
    match addr {
        IpAddr::V4(v4) => {
            let mut bytes = [0u8; 16];
            bytes[..12].copy_from_slice(&V4_MAPPED_PREFIX);
            bytes[12..].copy_from_slice(&v4.octets());
            CellKey {
                prefix_len: 96 + u32::from(prefix_len),
                addr: bytes,
            }
        }
        IpAddr::V6(v6) => CellKey {
            prefix_len: u32::from(prefix_len),
            addr: v6.octets(),
        },
    }
}
