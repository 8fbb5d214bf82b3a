//! The catalog zone (RFC 9432, schema version 2): one zone that lists every hosted zone, so a
//! secondary configured with just this zone (Knot's `catalog-role: interpret`, BIND's
//! `catalog-zones`) provisions each hosted zone, and drops it when it is deleted, without
//! configuration per zone. Its serial moves whenever the list changes, and NOTIFY tells the
//! secondaries as for any zone.
//!
//! ```text
//! catalog.invalid.                  0 SOA invalid. invalid. SERIAL 3600 600 2147483646 0
//! catalog.invalid.                  0 NS  invalid.
//! version.catalog.invalid.          0 TXT "2"
//! <zone id>.zones.catalog.invalid.  0 PTR example.com.
//! ```

use std::collections::BTreeSet;
use std::path::Path;

use hickory_proto::rr::rdata::{NS, PTR, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record};

use crate::zone::{Problem, Where, Zone};

/// The members: (hosted zone id, zone name), in a stable order.
pub type Members = BTreeSet<(String, String)>;

/// The catalog zone `origin` listing `members`, with `serial`.
pub fn build(origin: &Name, members: &Members, serial: u32) -> Result<Zone, Problem> {
    let place = Where::HostedZone {
        id: "catalog zone".into(),
    };
    let err = |e: hickory_proto::ProtoError| place.error(e.to_string());
    let invalid = Name::from_ascii("invalid.").map_err(err)?;
    let at = |label: &str| {
        Name::from_ascii(label)
            .map_err(err)?
            .append_domain(origin)
            .map_err(err)
    };
    let mut records = vec![
        Record::from_rdata(
            origin.clone(),
            0,
            RData::SOA(SOA::new(
                invalid.clone(),
                invalid.clone(),
                serial,
                3600,
                600,
                2_147_483_646,
                0,
            )),
        ),
        Record::from_rdata(origin.clone(), 0, RData::NS(NS(invalid))),
        Record::from_rdata(
            at("version")?,
            0,
            RData::TXT(TXT::new(vec!["2".to_string()])),
        ),
    ];
    for (id, name) in members {
        // A member's unique label: its hosted zone id, which never changes (RFC 9432 4.1).
        let owner = at(&format!("{}.zones", id.to_ascii_lowercase()))?;
        let zone = Name::from_ascii(name).map_err(err)?;
        records.push(Record::from_rdata(owner, 0, RData::PTR(PTR(zone))));
    }
    let records = records.into_iter().map(|r| (r, place.clone())).collect();
    Zone::from_records(
        origin.clone(),
        records,
        Vec::new(),
        Vec::new(),
        Path::new("<catalog zone>"),
    )
}

/// A serial after `previous` that is at least the Unix time `now` (RFC 1982 arithmetic).
pub fn next_serial(previous: u32, now: u32) -> u32 {
    if now.wrapping_sub(previous) as i32 > 0 {
        now
    } else {
        previous.wrapping_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::{LowerName, RecordType};

    #[test]
    fn the_catalog_lists_every_member_under_zones_with_version_2() {
        let origin = Name::from_ascii("catalog.invalid.").unwrap();
        let members: Members = [
            ("Z1ABC".to_string(), "example.com.".to_string()),
            ("Z2DEF".to_string(), "example.org.".to_string()),
        ]
        .into();
        let zone = build(&origin, &members, 7).unwrap();
        assert_eq!(zone.serial(), 7);
        let name = |n: &str| LowerName::new(&Name::from_ascii(n).unwrap());
        let ptr = zone
            .rrset(&name("z1abc.zones.catalog.invalid."), RecordType::PTR)
            .unwrap();
        assert_eq!(ptr.rdatas[0].to_string(), "example.com.");
        assert!(
            zone.rrset(&name("version.catalog.invalid."), RecordType::TXT)
                .is_some()
        );
        assert!(
            zone.rrset(&name("z2def.zones.catalog.invalid."), RecordType::PTR)
                .is_some()
        );
        assert_eq!(next_serial(5, 1_800_000_000), 1_800_000_000);
        assert_eq!(next_serial(1_800_000_000, 1_800_000_000), 1_800_000_001);
    }
}
