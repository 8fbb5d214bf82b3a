//! Any text as one record value of any type (`TYPE\0VALUE`): parsing never panics; a value with
//! a control character (a second line, so a `$INCLUDE`) or a bare `$directive` is always
//! refused; an accepted value of a type whose text form this crate reads and writes itself is
//! written back in a form that reads back to the same data. (CAA, NAPTR, SSHFP, TLSA, SVCB,
//! HTTPS and HINFO are read and written by hickory-proto; their round trip is not asserted.)
#![no_main]

use dns_user::zone::rdata::{parse_value, presentation};
use hickory_proto::rr::Name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some((rtype, value)) = text.split_once('\0') else {
        return;
    };
    let Some(rtype) = dns_user::zone::parse_type(rtype) else {
        return;
    };
    let origin = Name::from_ascii("example.com.").expect("origin");
    let parsed = parse_value(rtype, value, &origin);
    let control = value
        .chars()
        .any(|c| (c.is_ascii_control() && c != '\t') || c == '\u{7f}');
    let directive =
        !value.contains('"') && value.split([' ', '\t']).any(|token| token.starts_with('$'));
    if control || directive {
        assert!(parsed.is_err(), "accepted {rtype} {value:?}");
    }
    let Ok(rdata) = parsed else {
        return;
    };
    if !dns_user::zone::rdata::own_text_form(rtype) {
        return;
    }
    let shown = presentation(rtype, &rdata);
    let (shown_type, fields) = shown.split_once(' ').expect("TYPE DATA");
    let again_type = dns_user::zone::parse_type(shown_type).expect("a known type");
    if let Ok(again) = parse_value(again_type, fields, &origin) {
        let same_wire = {
            use hickory_proto::serialize::binary::BinEncodable;
            rdata.to_bytes().ok() == again.to_bytes().ok()
        };
        assert!(
            same_wire,
            "{rtype} {value:?} -> {shown:?} reads back differently"
        );
    }
});
