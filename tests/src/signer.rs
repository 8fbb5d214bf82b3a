//! Zones signed the way an operator signs them offline, with BIND's tools (`dnssec-keygen`,
//! `dnssec-signzone`; `scripts/bootstrap` installs bind9-utils), for the tests of zones
//! signed elsewhere.

use std::path::Path;
use std::process::Command;

/// Runs `program` with `args` in `dir`; its standard output (panics with its errors if it
/// fails).
fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/bootstrap installs bind9-utils)"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Signs `zone_file` (in `dir`, for `origin`) with a new KSK and ZSK (ECDSA P-256) and
/// `dnssec-signzone` given `options`, into `dir/signed.zone`. Returns the KSK's DNSKEY as a
/// trust anchor for `delv -a` (`trust-anchors { ... };`).
pub fn sign_zone(dir: &Path, origin: &str, zone_file: &str, options: &[&str]) -> String {
    let keygen = ["-q", "-a", "ECDSAP256SHA256"];
    let ksk = run(
        dir,
        "dnssec-keygen",
        &[&keygen[..], &["-f", "KSK", origin]].concat(),
    );
    run(dir, "dnssec-keygen", &[&keygen[..], &[origin]].concat());
    let sign = ["-q", "-S", "-o", origin, "-f", "signed.zone"];
    run(
        dir,
        "dnssec-signzone",
        &[&sign[..], options, &[zone_file]].concat(),
    );
    let key = std::fs::read_to_string(dir.join(format!("{}.key", ksk.trim()))).unwrap();
    let line = key.lines().find(|l| l.contains("DNSKEY")).unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let at = fields.iter().position(|f| *f == "DNSKEY").unwrap();
    format!(
        "trust-anchors {{ {origin} static-key {} {} {} \"{}\"; }};\n",
        fields[at + 1],
        fields[at + 2],
        fields[at + 3],
        fields[at + 4..].concat()
    )
}
