//! Any text as the TOML config: validation never panics (zone files it names are not read).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = dns_user::config::resolve_text(
        text,
        Path::new("/nonexistent/fuzz.toml"),
        &Default::default(),
    );
});
