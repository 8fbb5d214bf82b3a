//! Zones signed elsewhere (BIND's `dnssec-signzone`, NSEC and NSEC3), served as they are: a
//! real validator (`delv`, with the zone's KSK as its only trust anchor) fully validates positive
//! answers, a CNAME, a wildcard, NXDOMAIN, NODATA (at a name, an empty non-terminal and a
//! wildcard) and the absence of a DS at an insecure delegation; a forged signature fails.

mod common;

use std::path::Path;

use common::{Daemon, free_port, temp_dir};
use hickory_proto::rr::RecordType;

const ZONE: &str = "$ORIGIN signed.test.
$TTL 300
@ IN SOA ns1 hostmaster 1 7200 900 1209600 60
@ IN NS ns1
ns1 IN A 192.0.2.53
www IN A 192.0.2.1
www IN AAAA 2001:db8::1
alias IN CNAME www
*.wild IN A 192.0.2.9
mail IN MX 10 www
txt IN TXT \"signed elsewhere\"
sub IN NS ns.sub
ns.sub IN A 192.0.2.54
deep.ent IN TXT \"below an empty non-terminal\"
";

/// Signs ZONE in `dir` (`options` for dnssec-signzone); returns the signed file's name and
/// delv's trust anchor file.
fn sign(dir: &Path, options: &[&str]) -> (String, std::path::PathBuf) {
    std::fs::write(dir.join("signed.test.zone"), ZONE).unwrap();
    let anchor = dns_tests::signer::sign_zone(dir, "signed.test.", "signed.test.zone", options);
    let anchors = dir.join("anchors.conf");
    std::fs::write(&anchors, anchor).unwrap();
    ("signed.zone".into(), anchors)
}

fn serve(dir: &Path, zone_file: &str) -> Daemon {
    let config = dir.join(format!("{zone_file}.toml"));
    std::fs::write(
        &config,
        format!("[[zone]]\norigin = \"signed.test.\"\nfile = \"{zone_file}\"\n"),
    )
    .unwrap();
    let store = dir.join(format!("{zone_file}.d"));
    std::fs::create_dir_all(&store).unwrap();
    Daemon::start(
        &store,
        free_port(),
        free_port(),
        &["--config", config.to_str().unwrap()],
    )
}

/// delv's verdict on `name`/`rtype` asked of `d`, trusting only `anchors`.
fn delv(d: &Daemon, anchors: &Path, name: &str, rtype: &str) -> String {
    dns_tests::signer::delv(d.port, anchors, "signed.test", name, rtype)
}

#[test]
fn a_zone_signed_elsewhere_validates_in_every_kind_of_answer() {
    validates_signed_with(&[], "nsec");
}

#[test]
fn an_nsec3_zone_signed_elsewhere_validates_in_every_kind_of_answer() {
    // Salted and iterated (the hash is computed here to find the proofs); no opt-out, with
    // which a wildcard answer next to the insecure delegation is rightly insecure.
    validates_signed_with(&["-3", "AABBCCDD", "-H", "2"], "nsec3");
}

fn validates_signed_with(options: &[&str], tag: &str) {
    let dir = temp_dir(&format!("dnssec-{tag}"));
    let (signed, anchors) = sign(&dir, options);
    let d = serve(&dir, &signed);
    for (name, rtype, expect) in [
        ("www.signed.test", "A", "fully validated"),
        ("www.signed.test", "AAAA", "fully validated"),
        ("signed.test", "DNSKEY", "fully validated"),
        ("signed.test", "SOA", "fully validated"),
        ("mail.signed.test", "MX", "fully validated"),
        ("txt.signed.test", "TXT", "fully validated"),
        ("alias.signed.test", "A", "fully validated"),
        ("a.b.wild.signed.test", "A", "fully validated"),
        ("deep.ent.signed.test", "TXT", "fully validated"),
        (
            "nothing.signed.test",
            "A",
            "negative response, fully validated",
        ),
        (
            "x.nothing.signed.test",
            "AAAA",
            "negative response, fully validated",
        ),
        (
            "www.signed.test",
            "MX",
            "negative response, fully validated",
        ),
        (
            "ent.signed.test",
            "TXT",
            "negative response, fully validated",
        ),
        (
            "a.wild.signed.test",
            "AAAA",
            "negative response, fully validated",
        ),
        (
            "sub.signed.test",
            "DS",
            "negative response, fully validated",
        ),
    ] {
        let verdict = delv(&d, &anchors, name, rtype);
        assert!(verdict.contains(expect), "{name} {rtype}: {verdict}");
    }
    // Without DO nothing changes: no RRSIG, no NSEC.
    let plain = d.ask("www.signed.test.", RecordType::A);
    assert_eq!(plain.answers.len(), 1, "{plain:?}");
    let nx = d.ask("nothing.signed.test.", RecordType::A);
    assert_eq!(nx.authorities.len(), 1, "{nx:?}");
    drop(d);

    // A signature changed by one bit: the validator refuses the answer.
    let text = std::fs::read_to_string(dir.join(&signed)).unwrap();
    let start = text.find("RRSIG\tA ").expect("an RRSIG over an A RRset");
    let sig_at = start + text[start..].find("signed.test.\n").unwrap() + 13;
    let sig_at = sig_at
        + text[sig_at..]
            .find(|c: char| c.is_ascii_alphanumeric())
            .unwrap();
    let mut forged = text.clone().into_bytes();
    forged[sig_at] = if forged[sig_at] == b'A' { b'B' } else { b'A' };
    std::fs::write(dir.join("forged.zone"), forged).unwrap();
    let d = serve(&dir, "forged.zone");
    let name = text[..start]
        .lines()
        .rev()
        .find(|l| !l.starts_with(char::is_whitespace))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let verdict = delv(&d, &anchors, &name, "A");
    assert!(!verdict.contains("fully validated"), "{name}: {verdict}");
    assert!(verdict.contains("resolution failed"), "{name}: {verdict}");
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}
