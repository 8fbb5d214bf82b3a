//! dns-user: the daemon of the XDP-accelerated authoritative DNS service.
//!
//! ```text
//!  zone files / config ──> zone ──> answer::Catalog ──┬──> server (UDP/TCP) ──> answer::respond
//!                                                     └──> compile ──> maps::MapWriter ──> BPF maps
//!  packet ──> XDP (dns-ebpf) ──hit──> XDP_TX
//!                 └──────────miss/other──> XDP_PASS ──> kernel stack ──> server
//! ```
//!
//! Pure parts (no kernel, no network): [`zone`], [`answer`], [`compile`], [`config`].

pub mod answer;
pub mod cli;
pub mod compile;
pub mod config;
pub mod maps;
pub mod metrics;
pub mod server;
pub mod xdp;
pub mod zone;

use config::{ZoneSource, ZoneSpec};
use zone::{Zone, ZoneError};

/// Loads every zone; the first error (with file and line) stops the load.
pub fn load_catalog(specs: &[ZoneSpec]) -> Result<answer::Catalog, ZoneError> {
    let mut zones = Vec::new();
    for spec in specs {
        let zone = match &spec.source {
            ZoneSource::File(path) => zone::load_zone_file(&spec.origin, path)?,
            ZoneSource::Embedded { name, text } => {
                let path = std::path::Path::new(name);
                let records = zone::parse_zone_text(&spec.origin, text, path)?;
                Zone::from_records(spec.origin.clone(), records, path)?
            }
        };
        zones.push(zone);
    }
    Ok(answer::Catalog::new(zones))
}
