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
pub mod policy;
pub mod server;
pub mod xdp;
pub mod zone;

use std::path::Path;

use config::{ZoneSource, ZoneSpec};
use zone::{Place, Zone, ZoneError};

/// Loads every zone; the first error (with file and line) stops the load and nothing is used.
pub fn load_catalog(specs: &[ZoneSpec]) -> Result<answer::Catalog, ZoneError> {
    specs
        .iter()
        .map(load_zone)
        .collect::<Result<Vec<_>, _>>()
        .map(answer::Catalog::new)
}

/// Loads one zone: its file (if any) plus its config records and aliases.
pub fn load_zone(spec: &ZoneSpec) -> Result<Zone, ZoneError> {
    let (mut records, source) = match &spec.source {
        Some(ZoneSource::File(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Place::whole(path).error(format!("cannot read zone file: {e}")))?;
            (
                zone::parse_zone_text(&spec.origin, &text, path)?,
                path.as_path(),
            )
        }
        Some(ZoneSource::Embedded { name, text }) => {
            let path = Path::new(name);
            (zone::parse_zone_text(&spec.origin, text, path)?, path)
        }
        None => (Vec::new(), spec.config.as_path()),
    };
    let mut aliases = Vec::new();
    for (i, r) in spec.records.iter().enumerate() {
        let place = Place::whole(&spec.config);
        let at = |e: ZoneError| {
            place.error(format!(
                "zone {} record #{} ({} {}): {}",
                spec.origin,
                i + 1,
                r.name,
                r.rtype,
                e.message
            ))
        };
        match &r.alias {
            Some(alias) => {
                if r.ttl.is_some() || !r.values.is_empty() {
                    return Err(at(place.error(
                        "an alias takes its target's data and TTL: no ttl or values",
                    )));
                }
                let parsed = zone::parse_config_alias(
                    &spec.origin,
                    &r.name,
                    &r.rtype,
                    &alias.target,
                    alias.evaluate_target_health,
                    &place,
                )
                .map_err(at)?;
                aliases.push((parsed, place.clone()));
            }
            None => {
                let ttl = r.ttl.ok_or_else(|| at(place.error("ttl is required")))?;
                if r.values.is_empty() {
                    return Err(at(place.error("values is empty")));
                }
                for value in &r.values {
                    let record = zone::parse_config_record(
                        &spec.origin,
                        &r.name,
                        &r.rtype,
                        ttl,
                        value,
                        &place,
                    )
                    .map_err(at)?;
                    records.push((record, place.clone()));
                }
            }
        }
    }
    Zone::from_records(spec.origin.clone(), records, aliases, source)
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::{LowerName, Name, RecordType};

    use crate::config::{Overrides, resolve};

    fn config(text: &str) -> Result<crate::answer::Catalog, String> {
        let dir = std::env::temp_dir().join(format!(
            "dns-lib-test-{}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, text).unwrap();
        let out = resolve(Some(&path), &Overrides::default())
            .map_err(|e| e.to_string())
            .and_then(|s| super::load_catalog(&s.zones).map_err(|e| e.to_string()));
        std::fs::remove_dir_all(&dir).unwrap();
        out
    }

    const RECORDS_ONLY: &str = r#"
[[zone]]
origin = "example.net."
[[zone.record]]
name = "@"
type = "SOA"
ttl = 900
values = ["ns1 hostmaster 1 7200 900 1209600 60"]
[[zone.record]]
name = "@"
type = "NS"
ttl = 900
values = ["ns1"]
[[zone.record]]
name = "www"
type = "A"
ttl = 60
values = ["192.0.2.1", "192.0.2.2"]
[[zone.record]]
name = "@"
type = "A"
alias = { target = "www", evaluate_target_health = true }
"#;

    #[test]
    fn zone_from_config_records_with_an_apex_alias() {
        let catalog = config(RECORDS_ONLY).unwrap();
        let apex = LowerName::new(&Name::from_ascii("example.net.").unwrap());
        let zone = catalog.find(&apex).unwrap();
        let a = zone.rrset(&apex, RecordType::A).unwrap();
        assert_eq!((a.ttl, a.rdatas.len()), (60, 2));
    }

    #[test]
    fn bad_config_records_name_the_record() {
        let err = config(&RECORDS_ONLY.replace("192.0.2.2", "192.0.2.999")).unwrap_err();
        assert!(
            err.contains("c.toml")
                && err.contains("record #3 (www A)")
                && err.contains("bad A record"),
            "{err}"
        );
        let err =
            config(&RECORDS_ONLY.replace("target = \"www\"", "target = \"nope\"")).unwrap_err();
        assert!(
            err.contains("record #4") || err.contains("alias target nope.example.net."),
            "{err}"
        );
        let err = config(&RECORDS_ONLY.replace("ttl = 60\n", "")).unwrap_err();
        assert!(err.contains("ttl is required"), "{err}");
    }
}
