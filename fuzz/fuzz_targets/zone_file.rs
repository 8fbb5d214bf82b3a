//! Any text as an RFC 1035 zone file, through the one road a config zone file takes (records,
//! then record sets, then `zone::build`): parsing and building never panic; a zone that loads
//! exports to text that loads again.
#![no_main]

use std::path::Path;

use dns_user::location::Regions;
use dns_user::zone::{Where, build, file};
use hickory_proto::rr::Name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Name::from_ascii("example.com.").unwrap();
    let path = Path::new("fuzz.zone");
    let Ok(records) = dns_user::zone::parse_zone_text(&origin, text, path) else {
        return;
    };
    let sets = file::record_sets(records);
    let Ok(zone) = build::build(&origin, &sets, &Regions::new(), &Where::file(path)) else {
        return;
    };
    let exported = zone.to_zone_file();
    dns_user::zone::parse_zone_text(&origin, &exported, path).expect("an exported zone parses");
});
