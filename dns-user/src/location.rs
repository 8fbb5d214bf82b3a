//! Where clients are: geo data, latency to regions and CIDR collections, looked up by the
//! client's prefix (its EDNS Client Subnet, else its source address).
//!
//! Sources: tables in the config (`[[location.geo]]`, `[[location.latency]]`,
//! `[location.cidr_collections]`; the most specific prefix containing the client's prefix
//! wins) and a MaxMind DB (GeoLite2 / GeoIP2 / DB-IP Country or City, `location.maxmind`)
//! for geo data the table does not cover: the database's network containing the client's
//! whole prefix, as for the tables (an ECS /24 inside a network the database cuts finer is
//! not located by it).
//!
//! [`Locations::cells`] cuts the address space into the cells the fast path's trie holds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;

use crate::policy::{CidrCollections, ClientLocation, LatencySource};

mod cells;
pub use cells::{Cells, cell_key};

/// Named regions' coordinates (`[location.regions]`), for geoproximity by region.
pub type Regions = std::collections::HashMap<String, [f64; 2]>;

/// What is known about the clients of one prefix.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GeoInfo {
    pub continent: Option<String>,
    pub country: Option<String>,
    pub subdivision: Option<String>,
    pub coordinates: Option<(f64, f64)>,
}

/// All location data the routing policies consult.
#[derive(Clone, Debug, Default)]
pub struct Locations {
    pub geo: Vec<(IpNet, GeoInfo)>,
    /// Prefix -> region -> latency in ms.
    pub latency: Vec<(IpNet, HashMap<String, f64>)>,
    pub cidr: CidrCollections,
    /// A MaxMind-format geo database, consulted when no geo table entry covers the client.
    pub maxmind: Option<Arc<maxminddb::Reader<Vec<u8>>>>,
    /// The last [`Cells`] computed, with what they were computed from; shared by clones, as
    /// each catalog a change publishes clones the same locations.
    cells: CellCache,
}

/// [`Locations::cells`]' cache: the cells, with the locations they were computed from.
#[derive(Clone, Default)]
struct CellCache(Arc<Mutex<Option<Computed>>>);

/// Cells and the locations they were computed from.
type Computed = (Locations, Arc<Cells>);

impl std::fmt::Debug for CellCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CellCache")
    }
}

/// Equal when every table is, and the MaxMind database is the same one loaded (a reload that
/// reads it again counts as a change).
impl PartialEq for Locations {
    fn eq(&self, other: &Self) -> bool {
        let same_db = match (&self.maxmind, &other.maxmind) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        same_db && self.geo == other.geo && self.latency == other.latency && self.cidr == other.cidr
    }
}

/// The entry of the most specific prefix that contains the client's whole prefix.
fn longest<T>(table: &[(IpNet, T)], addr: IpAddr, prefix_len: u8) -> Option<&T> {
    longest_index(table, addr, prefix_len).map(|i| &table[i].1)
}

/// The index of [`longest`]'s entry.
fn longest_index<T>(table: &[(IpNet, T)], addr: IpAddr, prefix_len: u8) -> Option<usize> {
    table
        .iter()
        .enumerate()
        .filter(|(_, (net, _))| net.prefix_len() <= prefix_len && net.contains(&addr))
        .max_by_key(|(_, (net, _))| net.prefix_len())
        .map(|(i, _)| i)
}

impl Locations {
    /// The client at `addr`/`prefix_len`, with what the geo table knows about it.
    pub fn locate(&self, addr: IpAddr, prefix_len: u8) -> ClientLocation {
        let geo = longest(&self.geo, addr, prefix_len)
            .cloned()
            .or_else(|| {
                let db = self.maxmind.as_deref()?;
                mmdb_lookup(db, addr, prefix_len)
            })
            .unwrap_or_default();
        ClientLocation {
            addr,
            prefix_len,
            continent: geo.continent,
            country: geo.country,
            subdivision: geo.subdivision,
            coordinates: geo.coordinates,
        }
    }

    /// The cells of these locations (computed once for equal locations).
    pub fn cells(&self) -> Arc<Cells> {
        let mut cache = self.cells.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((of, cells)) = cache.as_ref()
            && of == self
        {
            return cells.clone();
        }
        let cells = Arc::new(Cells::of(self));
        let of = Locations {
            cells: CellCache::default(),
            ..self.clone()
        };
        *cache = Some((of, cells.clone()));
        cells
    }
}

/// Geo data for the client `addr`/`prefix_len` from a Country or City database: its network
/// must hold the client's whole prefix.
fn mmdb_lookup(db: &maxminddb::Reader<Vec<u8>>, addr: IpAddr, prefix_len: u8) -> Option<GeoInfo> {
    let found = db.lookup(addr).ok()?;
    if !found.has_data() || found.network().ok()?.prefix() > prefix_len {
        return None;
    }
    use maxminddb::path;
    let text = |p: &[maxminddb::PathElement<'_>]| found.decode_path::<String>(p).ok().flatten();
    let number = |p: &[maxminddb::PathElement<'_>]| found.decode_path::<f64>(p).ok().flatten();
    let coordinates =
        number(&path!["location", "latitude"]).zip(number(&path!["location", "longitude"]));
    Some(GeoInfo {
        continent: text(&path!["continent", "code"]),
        country: text(&path!["country", "iso_code"]),
        subdivision: text(&path!["subdivisions", 0, "iso_code"]),
        coordinates,
    })
}

impl LatencySource for Locations {
    fn latency_ms(&self, client: &ClientLocation, region: &str) -> Option<f64> {
        longest(&self.latency, client.addr, client.prefix_len)?
            .get(region)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_prefix_containing_the_client_prefix_wins() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let info = |c: &str| GeoInfo {
            country: Some(c.into()),
            ..Default::default()
        };
        let l = Locations {
            geo: vec![
                (net("198.51.0.0/16"), info("DE")),
                (net("198.51.100.0/24"), info("FR")),
            ],
            ..Default::default()
        };
        let addr: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(l.locate(addr, 32).country.as_deref(), Some("FR"));
        // An ECS /20 does not fall inside the /24, only inside the /16.
        assert_eq!(l.locate(addr, 20).country.as_deref(), Some("DE"));
        assert_eq!(l.locate("203.0.113.1".parse().unwrap(), 32).country, None);
    }
}
