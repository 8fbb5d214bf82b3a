//! Where clients are: geo data, latency to regions and CIDR collections, looked up by the
//! client's prefix (its EDNS Client Subnet, else its source address).
//!
//! Sources: tables in the config (`[[location.geo]]`, `[[location.latency]]`,
//! `[location.cidr_collections]`; the most specific prefix containing the client's prefix
//! wins) and a MaxMind DB (GeoLite2 / GeoIP2 / DB-IP Country or City, `location.maxmind`)
//! for geo data the table does not cover.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::policy::{CidrCollections, ClientLocation, LatencySource};

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
    table
        .iter()
        .filter(|(net, _)| net.prefix_len() <= prefix_len && net.contains(&addr))
        .max_by_key(|(net, _)| net.prefix_len())
        .map(|(_, v)| v)
}

impl Locations {
    /// The client at `addr`/`prefix_len`, with what the geo table knows about it.
    pub fn locate(&self, addr: IpAddr, prefix_len: u8) -> ClientLocation {
        let geo = longest(&self.geo, addr, prefix_len)
            .cloned()
            .or_else(|| self.maxmind.as_deref().and_then(|db| mmdb_lookup(db, addr)))
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
}

/// Geo data for `addr` from a Country or City database.
fn mmdb_lookup(db: &maxminddb::Reader<Vec<u8>>, addr: IpAddr) -> Option<GeoInfo> {
    use maxminddb::path;
    let found = db.lookup(addr).ok()?;
    if !found.has_data() {
        return None;
    }
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
