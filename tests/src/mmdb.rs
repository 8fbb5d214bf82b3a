//! MaxMind-format geo databases for tests, in the GeoIP2-City shape (continent code, country
//! and subdivision ISO codes, coordinates), written with `maxminddb-writer`: IPv6 trees with
//! IPv4 at `::/96`, as MaxMind lays them out (without its aliases of that subtree).

use std::path::Path;

use std::net::IpAddr;

use maxminddb_writer::Database;
use maxminddb_writer::metadata::IpVersion;
use maxminddb_writer::paths::IpAddrWithMask;
use serde::Serialize;

/// What the database says of one network.
#[derive(Clone, Copy, Debug)]
pub struct Place {
    pub continent: &'static str,
    pub country: &'static str,
    pub subdivision: Option<&'static str>,
    /// (latitude, longitude).
    pub coordinates: Option<(f64, f64)>,
}

#[derive(Serialize)]
struct Code {
    code: &'static str,
}

#[derive(Serialize)]
struct Iso {
    iso_code: &'static str,
}

#[derive(Serialize)]
struct Location {
    latitude: f64,
    longitude: f64,
}

#[derive(Serialize)]
struct City {
    continent: Code,
    country: Iso,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subdivisions: Vec<Iso>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Location>,
}

/// Writes a database holding `networks` (prefix, place) to `path`.
pub fn write_city_db(path: &Path, networks: &[(&str, Place)]) {
    let mut db = Database::default();
    db.metadata.database_type = "GeoIP2-City".into();
    db.metadata.binary_format_major_version = 2;
    db.metadata.languages = vec!["en".into()];
    db.metadata.ip_version = IpVersion::V6;
    for (prefix, place) in networks {
        let city = City {
            continent: Code {
                code: place.continent,
            },
            country: Iso {
                iso_code: place.country,
            },
            subdivisions: place
                .subdivision
                .map(|iso_code| vec![Iso { iso_code }])
                .unwrap_or_default(),
            location: place.coordinates.map(|(latitude, longitude)| Location {
                latitude,
                longitude,
            }),
        };
        let value = db.insert_value(city).expect("serializable");
        let net = prefix.parse::<IpAddrWithMask>().expect("a prefix");
        let net = match net.addr {
            IpAddr::V4(v4) => {
                IpAddrWithMask::new(IpAddr::V6(v4.to_ipv6_compatible()), 96 + net.mask)
            }
            IpAddr::V6(_) => net,
        };
        db.insert_node(net, value);
    }
    db.write_to(std::fs::File::create(path).expect("writable"))
        .expect("written");
}

const fn place(
    continent: &'static str,
    country: &'static str,
    subdivision: Option<&'static str>,
    coordinates: (f64, f64),
) -> Place {
    Place {
        continent,
        country,
        subdivision,
        coordinates: Some(coordinates),
    }
}

/// The networks the policy fixtures locate clients by when they use a database instead of
/// the geo table ([`crate::fixtures::policy_catalog_located_by_maxmind`]): Paris and Oregon as
/// the table has them (Oregon cut in two /25, the upper one in Washington), the test frames'
/// own network in Australia, several networks in each of three countries (one class each),
/// IPv6 networks in Oregon and Japan.
pub const POLICY_NETWORKS: &[(&str, Place)] = &[
    (
        "198.51.100.0/24",
        place("EU", "FR", Some("IDF"), (48.86, 2.35)),
    ),
    (
        "198.51.101.0/24",
        place("EU", "FR", Some("IDF"), (48.86, 2.35)),
    ),
    (
        "198.51.102.0/23",
        place("EU", "FR", Some("ARA"), (45.76, 4.84)),
    ),
    (
        "203.0.113.0/25",
        place("NA", "US", Some("OR"), (45.52, -122.68)),
    ),
    (
        "203.0.113.128/25",
        place("NA", "US", Some("WA"), (47.61, -122.33)),
    ),
    (
        "192.0.2.0/24",
        place("OC", "AU", Some("NSW"), (-33.87, 151.21)),
    ),
    ("100.64.0.0/10", place("AS", "JP", None, (35.68, 139.69))),
    (
        "2001:db8:1::/48",
        place("NA", "US", Some("OR"), (45.52, -122.68)),
    ),
    ("2001:db8:2::/48", place("AS", "JP", None, (35.68, 139.69))),
];
