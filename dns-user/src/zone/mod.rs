//! Zone data: the in-memory model of one hosted zone, and loading it from RFC 1035 zone files.
//!
//! The file front end here owns where an entry starts (file and line), `$ORIGIN`, `$TTL`,
//! `$INCLUDE` and owner inheritance. Each resource record's data is then read by its type's
//! RDATA parser ([`crate::zone::rdata`]), so every error names file and line. `$INCLUDE` is read only
//! in a zone file the operator's config names ([`read_zone_file`]), relative to it, as a
//! bounded regular file; zone text from anywhere else cannot name a file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::policy;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

pub mod build;
mod catalog;
pub mod denial;
pub mod file;
pub mod rdata;
pub mod rdata_dnssec;
pub mod records;

pub use catalog::{Catalog, ZoneCounters};

pub use file::{parse_zone_text, read_zone_file};
pub use rdata::parse_type;

/// A problem with zone data, and where it is: the one error type of loading and building
/// zones, shared by the config, the store and the API.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct Problem {
    pub at: Where,
    /// What is wrong.
    pub message: String,
}

/// Where zone data came from, for its problems.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Where {
    /// A file the operator named (zone file, config, change batch), at a line (1-based; 0:
    /// the file as a whole). The path is shared by every record of a file.
    File { path: Arc<Path>, line: usize },
    /// A hosted zone's stored record sets.
    HostedZone { id: String },
    /// A change of a change batch sent to a hosted zone (1-based, in the batch's order).
    Change { zone: String, number: usize },
}

impl fmt::Display for Where {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Where::File { path, line: 0 } => write!(f, "{}", path.display()),
            Where::File { path, line } => write!(f, "{}:{line}", path.display()),
            Where::HostedZone { id } => write!(f, "hosted zone {id}"),
            Where::Change { zone, number } => write!(f, "hosted zone {zone}, change #{number}"),
        }
    }
}

impl Where {
    /// A file as a whole.
    pub fn file(path: &Path) -> Where {
        Where::File {
            path: Arc::from(path),
            line: 0,
        }
    }

    /// The line, for a place in a file (0 otherwise).
    pub fn line(&self) -> usize {
        match self {
            Where::File { line, .. } => *line,
            _ => 0,
        }
    }

    /// A problem here.
    pub fn error(&self, message: impl Into<String>) -> Problem {
        Problem {
            at: self.clone(),
            message: message.into(),
        }
    }
}

/// One RRset: records of one type at one name, in zone-file order, sharing one TTL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrSet {
    pub rtype: RecordType,
    pub ttl: u32,
    pub rdatas: Vec<RData>,
}

/// The maps a zone is made of: persistent (a clone shares everything, an update copies the
/// path to what it changes), so a change builds the next version of a zone in what it touches
/// while the current one is served.
pub(crate) type Map<K, V> = imbl::HashMap<K, V>;
pub(crate) type Set<T> = imbl::HashSet<T>;

/// All data of one hosted zone.
#[derive(Clone, Debug)]
pub struct Zone {
    origin: Name,
    /// Owner (lower-cased) -> RRsets at that name, in type order. Hashed: ordered maps of names spend their
    /// time in label-by-label comparisons.
    nodes: Map<LowerName, Vec<RrSet>>,
    /// Names that exist only because something below them exists (empty non-terminals).
    empty_non_terminals: Set<LowerName>,
    /// Delegation points: names below the apex with an NS RRset.
    cuts: Set<LowerName>,
    /// Route 53 routing-policy groups, answered by the policy engine: (owner, type) -> sets.
    policies: Map<(LowerName, RecordType), Vec<policy::RecordSet>>,
    /// Plain RRsets that engine aliases point to, as simple record sets.
    alias_targets: Map<(LowerName, RecordType), Vec<policy::RecordSet>>,
    /// What lets a change rebuild only the names it touches ([`Zone::rebuild`]); all of it
    /// follows from the fields above.
    index: build::Index,
    /// The changes that led to this version, for IXFR (not part of the zone's data: two
    /// zones with the same data are equal whatever their histories).
    journal: Journal,
    /// The NSEC chain, indexed on first use (reset when the zone is rebuilt).
    denial: std::sync::OnceLock<Arc<denial::Denial>>,
}

/// Most changes a zone remembers for IXFR; an older serial gets the whole zone.
pub const JOURNAL_LENGTH: usize = 100;

/// One change of a zone as IXFR sends it (RFC 1995 section 4): the SOA before and after, and
/// the records removed and added. Routing-policy groups are not in it, as they are not in a
/// transfer.
#[derive(Debug)]
pub struct Delta {
    pub old_soa: Record,
    pub new_soa: Record,
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
}

/// A zone's latest changes, oldest first (shared between versions: cheap to clone).
#[derive(Clone, Debug, Default)]
pub struct Journal(imbl::Vector<Arc<Delta>>);

impl PartialEq for Zone {
    /// The same data, however it was built (a full build or a rebuild of what changed).
    fn eq(&self, other: &Self) -> bool {
        self.differences(other).is_empty()
    }
}

impl Zone {
    /// What differs between two zones, by part (for tests that compare two roads).
    pub fn differences(&self, other: &Zone) -> Vec<String> {
        let mut out = Vec::new();
        let mut part = |name: &str, same: bool, detail: &dyn Fn() -> String| {
            if !same {
                out.push(format!("{name}: {}", detail()));
            }
        };
        part("origin", self.origin == other.origin, &|| String::new());
        part("nodes", self.nodes == other.nodes, &|| {
            let mut names: Vec<_> = self.nodes.keys().chain(other.nodes.keys()).collect();
            names.sort();
            names.dedup();
            names
                .into_iter()
                .filter(|n| self.nodes.get(*n) != other.nodes.get(*n))
                .map(|n| format!("{n}: {:?} / {:?}", self.nodes.get(n), other.nodes.get(n)))
                .collect::<Vec<_>>()
                .join("; ")
        });
        part(
            "empty non-terminals",
            self.empty_non_terminals == other.empty_non_terminals,
            &|| {
                format!(
                    "{:?} / {:?}",
                    self.empty_non_terminals, other.empty_non_terminals
                )
            },
        );
        part("cuts", self.cuts == other.cuts, &|| {
            format!("{:?} / {:?}", self.cuts, other.cuts)
        });
        part("policies", self.policies == other.policies, &|| {
            format!("{:?} / {:?}", self.policies, other.policies)
        });
        part(
            "alias targets",
            self.alias_targets == other.alias_targets,
            &|| format!("{:?} / {:?}", self.alias_targets, other.alias_targets),
        );
        part("index", self.index == other.index, &|| {
            format!("{:?} / {:?}", self.index, other.index)
        });
        out
    }
}

/// A record set with a routing policy, from the config or a Route 53 change batch.
#[derive(Clone, Debug)]
pub struct PolicySet {
    pub name: Name,
    pub rtype: RecordType,
    pub set: policy::RecordSet,
}

impl policy::Groups for Zone {
    fn group(&self, name: &LowerName, rtype: RecordType) -> Option<&[policy::RecordSet]> {
        let key = (name.clone(), rtype);
        self.policies
            .get(&key)
            .or_else(|| self.alias_targets.get(&key))
            .map(Vec::as_slice)
    }
}

impl Zone {
    /// The zone apex.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// RRsets at `name`, if the name owns any data.
    pub fn node(&self, name: &LowerName) -> Option<&[RrSet]> {
        self.nodes.get(name).map(Vec::as_slice)
    }

    /// The routing-policy group of `rtype` at `name`, if that name and type are policy-routed.
    pub fn policy_group(
        &self,
        name: &LowerName,
        rtype: RecordType,
    ) -> Option<&[policy::RecordSet]> {
        self.policies.get(&(name.clone(), rtype)).map(Vec::as_slice)
    }

    /// Every routing-policy group: (owner, type, record sets), in no particular order.
    pub fn policy_groups(
        &self,
    ) -> impl Iterator<Item = (&LowerName, RecordType, &[policy::RecordSet])> {
        self.policies
            .iter()
            .map(|((owner, rtype), sets)| (owner, *rtype, sets.as_slice()))
    }

    /// The largest TTL the zone serves (plain RRsets and routing-policy records): how long a
    /// resolver may keep what it got.
    pub fn max_ttl(&self) -> u32 {
        let plain = self.nodes.values().flatten().map(|s| s.ttl);
        let routed = self
            .policies
            .values()
            .flatten()
            .filter_map(|s| match &s.target {
                policy::Target::Records { ttl, .. } => Some(*ttl),
                policy::Target::Alias { .. } => None,
            });
        plain.chain(routed).max().unwrap_or(0)
    }

    /// The RRset of `rtype` at `name`.
    pub fn rrset(&self, name: &LowerName, rtype: RecordType) -> Option<&RrSet> {
        self.node(name)?.iter().find(|s| s.rtype == rtype)
    }

    /// The RRSIGs at `name` over its RRset of `rtype` (a zone signed elsewhere).
    pub fn signatures(&self, name: &LowerName, rtype: RecordType) -> impl Iterator<Item = &RData> {
        self.rrset(name, RecordType::RRSIG)
            .into_iter()
            .flat_map(|s| &s.rdatas)
            .filter(move |r| rdata_dnssec::rrsig_covers(r) == Some(rtype))
    }

    /// True if `name` exists only as the ancestor of other names (RFC 8020's empty non-terminal).
    pub fn is_empty_non_terminal(&self, name: &LowerName) -> bool {
        self.empty_non_terminals.contains(name)
    }

    /// Every owner name with its RRsets, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = (&LowerName, &[RrSet])> {
        self.nodes.iter().map(|(n, s)| (n, s.as_slice()))
    }

    /// The SOA serial.
    pub fn serial(&self) -> u32 {
        match self.soa().1 {
            RData::SOA(soa) => soa.serial,
            _ => 0,
        }
    }

    /// The apex SOA as a record.
    pub fn soa_record(&self) -> Record {
        let (ttl, soa) = self.soa();
        Record::from_rdata(self.origin.clone(), ttl, soa.clone())
    }

    /// The records at `name` a transfer carries (every RRset but the SOA), one per datum.
    pub fn transfer_records(&self, name: &LowerName) -> Vec<Record> {
        let owner = Name::from(name.clone());
        self.node(name)
            .unwrap_or_default()
            .iter()
            .filter(|s| s.rtype != RecordType::SOA)
            .flat_map(|s| {
                s.rdatas
                    .iter()
                    .map(|r| Record::from_rdata(owner.clone(), s.ttl, r.clone()))
            })
            .collect()
    }

    /// This zone, the version after `before`, with `before`'s journal and the change between
    /// the two at the names `changed` (the only ones whose records may differ). Without a new
    /// serial a change cannot be told apart by IXFR: the journal starts again.
    pub fn with_history(mut self, before: &Zone, changed: &HashSet<LowerName>) -> Zone {
        if before.serial() == self.serial() {
            self.journal = Journal::default();
            return self;
        }
        let (mut removed, mut added) = (Vec::new(), Vec::new());
        let mut names: Vec<&LowerName> = changed.iter().collect();
        names.sort();
        for name in names {
            let (old, new) = (before.transfer_records(name), self.transfer_records(name));
            removed.extend(old.iter().filter(|r| !new.contains(r)).cloned());
            added.extend(new.into_iter().filter(|r| !old.contains(r)));
        }
        let mut journal = before.journal.0.clone();
        journal.push_back(Arc::new(Delta {
            old_soa: before.soa_record(),
            new_soa: self.soa_record(),
            removed,
            added,
        }));
        while journal.len() > JOURNAL_LENGTH {
            journal.pop_front();
        }
        self.journal = Journal(journal);
        self
    }

    /// The changes from serial `from` to this version, if the journal holds all of them.
    pub fn changes_since(&self, from: u32) -> Option<Vec<Arc<Delta>>> {
        let serial = |r: &Record| match &r.data {
            RData::SOA(soa) => soa.serial,
            _ => 0,
        };
        let start = self
            .journal
            .0
            .iter()
            .position(|d| serial(&d.old_soa) == from)?;
        let chain: Vec<Arc<Delta>> = self.journal.0.iter().skip(start).cloned().collect();
        let linked = chain
            .windows(2)
            .all(|w| serial(&w[0].new_soa) == serial(&w[1].old_soa));
        (linked
            && chain
                .last()
                .is_some_and(|d| serial(&d.new_soa) == self.serial()))
        .then_some(chain)
    }

    /// The apex SOA record: (TTL, data). Present by construction.
    pub fn soa(&self) -> (u32, &RData) {
        let set = self
            .rrset(&LowerName::new(&self.origin), RecordType::SOA)
            .expect("a loaded zone has an SOA at its apex");
        (set.ttl, &set.rdatas[0])
    }

    /// True if `name` is a delegation point: an NS RRset below the apex.
    pub fn is_delegation(&self, name: &LowerName) -> bool {
        self.cuts.contains(name)
    }

    /// The delegation point covering `name` (the topmost name below the apex, at or above
    /// `name`, with an NS RRset): data there is not authoritative.
    pub fn covering_cut(&self, name: &LowerName) -> Option<LowerName> {
        if self.cuts.is_empty() {
            return None;
        }
        let apex_labels = self.origin.num_labels();
        let mut cut = None;
        let mut n = name.clone();
        while n.num_labels() > apex_labels {
            if self.cuts.contains(&n) {
                cut = Some(n.clone());
            }
            n = n.base_name();
        }
        cut
    }

    /// True if `name` is at or below a delegation.
    pub fn is_at_or_below_cut(&self, name: &LowerName) -> bool {
        self.covering_cut(name).is_some()
    }

    /// The zone as an RFC 1035 zone file that loads back to the same data: absolute names,
    /// one record per line, SOA first; types without a text form in RFC 3597 generic syntax.
    /// Aliases appear as the records they answer with.
    pub fn to_zone_file(&self) -> String {
        use std::fmt::Write as _;
        // Names as A-labels with escapes (Display writes an IDN's Unicode form).
        let mut out = format!("$ORIGIN {}\n", self.origin.to_ascii());
        let apex = LowerName::new(&self.origin);
        let mut nodes: Vec<(&LowerName, &Vec<RrSet>)> = self.nodes.iter().collect();
        nodes.sort_by(|a, b| (*a.0 != apex, a.0).cmp(&(*b.0 != apex, b.0))); // apex first, then canonical order
        for (name, sets) in nodes {
            let mut sets: Vec<&RrSet> = sets.iter().collect();
            sets.sort_by_key(|s| s.rtype != RecordType::SOA);
            for set in sets {
                for rdata in &set.rdatas {
                    let _ = writeln!(
                        out,
                        "{} {} IN {}",
                        Name::from(name).to_ascii(),
                        set.ttl,
                        rdata::presentation(set.rtype, rdata)
                    );
                }
            }
        }
        out
    }
}

/// A Route 53 alias record: `name`/`rtype` answers with the records of `target`/`rtype` in the
/// same zone, with the target's TTL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alias {
    pub name: Name,
    pub rtype: RecordType,
    pub target: Name,
    /// Route 53's EvaluateTargetHealth (used once health checks drive answers).
    pub evaluate_target_health: bool,
}

/// A domain name as it is stored and compared: absolute, lower-case ASCII, an
/// internationalized name as its A-labels (`bücher.test` and `BÜCHER.test` are
/// `xn--bcher-kva.test.`). Escapes (`\052`) are kept as written. A non-ASCII name that is
/// not a valid IDN is refused.
pub fn canonical_name(name: &str) -> Result<String, String> {
    let ascii = if name.is_ascii() {
        name.to_ascii_lowercase()
    } else {
        Name::from_utf8(name)
            .map_err(|e| format!("{name:?} is not a valid internationalized domain name: {e}"))?
            .to_ascii()
            .to_ascii_lowercase()
    };
    Ok(if ascii.ends_with('.') {
        ascii
    } else {
        format!("{ascii}.")
    })
}

/// `name` absolute and lower case: its [`canonical_name`], or, for a name that is not a
/// valid IDN, kept recognisable (validation refuses it where it matters).
pub fn absolute_lower(name: &str) -> String {
    canonical_name(name).unwrap_or_else(|_| {
        let name = name.to_ascii_lowercase();
        if name.ends_with('.') {
            name
        } else {
            format!("{name}.")
        }
    })
}

fn fqdn(mut name: Name) -> Name {
    name.set_fqdn(true);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::from_ascii("example.com.").unwrap()
    }

    fn load(text: &str) -> Result<Zone, Problem> {
        let path = Path::new("test.zone");
        let records = parse_zone_text(&origin(), text, path)?;
        Zone::from_records(origin(), records, Vec::new(), Vec::new(), path)
    }

    const BASE: &str = "$TTL 300\n@ IN SOA ns1 hostmaster ( 1 7200 900 1209600 60 )\n  IN NS ns1\nns1 IN A 192.0.2.53\n";

    #[test]
    fn parses_relative_names_parentheses_and_owner_inheritance() {
        let zone = load(&format!(
            "{BASE}www 60 IN A 192.0.2.1\n   IN A 192.0.2.2 ; two\nmail IN MX 10 mx\n"
        ))
        .unwrap();
        let www = LowerName::new(&Name::from_ascii("www.example.com.").unwrap());
        let a = zone.rrset(&www, RecordType::A).unwrap();
        assert_eq!(a.rdatas.len(), 2);
        assert_eq!(a.ttl, 60);
        let mail = LowerName::new(&Name::from_ascii("mail.example.com.").unwrap());
        let mx = zone.rrset(&mail, RecordType::MX).unwrap();
        assert_eq!(mx.rdatas[0].to_string(), "10 mx.example.com.");
        let (soa_ttl, _) = zone.soa();
        assert_eq!(soa_ttl, 300);
    }

    #[test]
    fn errors_name_the_line() {
        let err = load(&format!("{BASE}www IN A 999.1.1.1\n")).unwrap_err();
        assert_eq!(err.at.line(), 5, "{err}");
        assert!(
            err.to_string().starts_with("test.zone:5: bad A record"),
            "{err}"
        );
    }

    #[test]
    fn bad_owner_names_name_their_line() {
        let long = "a".repeat(64);
        let err = load(&format!("{BASE}{long} IN A 192.0.2.1\n")).unwrap_err();
        assert_eq!(err.at.line(), 5, "{err}");
        assert!(err.message.contains("bad name"), "{err}");
        let err = load(&format!(
            "{BASE}www IN A 192.0.2.1 ; ok\nx..y IN A 192.0.2.1\n"
        ))
        .unwrap_err();
        assert_eq!(err.at.line(), 6, "{err}");
    }

    #[test]
    fn unbalanced_parenthesis_names_its_line() {
        let err = load("$TTL 1\n@ IN SOA ns1 host ( 1 2 3 4 5\n").unwrap_err();
        assert_eq!(err.at.line(), 2, "{err}");
    }

    #[test]
    fn rejects_cname_with_other_data_and_out_of_zone_and_missing_soa() {
        let err = load(&format!("{BASE}x IN CNAME www\nx IN A 192.0.2.1\n")).unwrap_err();
        assert!(err.message.contains("CNAME and other data"), "{err}");
        assert_eq!(err.at.line(), 5);
        let err = load(&format!("{BASE}www.example.net. IN A 192.0.2.1\n")).unwrap_err();
        assert!(err.message.contains("outside the zone"), "{err}");
        let err = load("$TTL 1\nwww IN A 192.0.2.1\n").unwrap_err();
        assert!(err.message.contains("no SOA"), "{err}");
    }

    fn with_aliases(aliases: &[(&str, &str, &str)]) -> Result<Zone, Problem> {
        let path = Path::new("test.zone");
        let text =
            format!("{BASE}www 60 IN A 192.0.2.1\nwww 120 IN AAAA 2001:db8::1\nc IN CNAME www\n");
        let records = parse_zone_text(&origin(), &text, path)?;
        let place = Where::file(Path::new("cfg.toml"));
        let aliases = aliases
            .iter()
            .map(|(n, t, target)| {
                let name = |n: &str| file::parse_name(n, &origin(), &place).unwrap();
                let alias = Alias {
                    name: name(n),
                    rtype: parse_type(t).unwrap(),
                    target: name(target),
                    evaluate_target_health: false,
                };
                (alias, place.clone())
            })
            .collect();
        Zone::from_records(origin(), records, aliases, Vec::new(), path)
    }

    #[test]
    fn alias_at_apex_answers_with_target_data_and_ttl() {
        let zone = with_aliases(&[
            ("@", "A", "www"),
            ("lb", "AAAA", "www"),
            ("@", "AAAA", "lb"),
        ])
        .unwrap();
        let apex = LowerName::new(&origin());
        let a = zone.rrset(&apex, RecordType::A).unwrap();
        assert_eq!((a.ttl, a.rdatas.len()), (60, 1));
        // Alias to an alias resolves to the final records.
        let aaaa = zone.rrset(&apex, RecordType::AAAA).unwrap();
        assert_eq!(aaaa.ttl, 120);
    }

    #[test]
    fn alias_loops_missing_targets_and_conflicts_are_rejected() {
        /// Aliases (name, type, target) and the error they must produce.
        type Case = (
            &'static [(&'static str, &'static str, &'static str)],
            &'static str,
        );
        let cases: [Case; 6] = [
            (
                &[("a", "A", "b"), ("b", "A", "a")],
                "alias loop: a.example.com. -> b.example.com. -> a.example.com.",
            ),
            (&[("a", "A", "nothing")], "has no A records"),
            (&[("www", "A", "ns1")], "conflicts"),
            (
                &[("@", "CNAME", "c")],
                "CNAME alias cannot be at the zone apex",
            ),
            (&[("x", "A", "www.example.net.")], "outside the zone"),
            // An alias beside a CNAME is CNAME-and-other-data.
            (&[("c", "A", "www")], "CNAME and other data"),
        ];
        for (aliases, expected) in cases {
            let err = with_aliases(aliases).unwrap_err();
            assert!(err.message.contains(expected), "{aliases:?}: {err}");
        }
    }

    #[test]
    fn generic_rdata_spf_and_ds() {
        let zone = load(&format!(
            "{BASE}g IN TYPE65534 \\# 3 010203\ng IN A \\# 4 C0000201\ng IN SPF \"v=spf1 -all\"\nsub IN NS ns1\nsub IN DS 1 8 2 ABCD\n"
        ))
        .unwrap();
        let g = LowerName::new(&Name::from_ascii("g.example.com.").unwrap());
        assert!(zone.rrset(&g, RecordType::from(65534)).is_some());
        assert_eq!(
            zone.rrset(&g, RecordType::A).unwrap().rdatas[0].to_string(),
            "192.0.2.1"
        );
        assert!(zone.rrset(&g, RecordType::from(rdata::TYPE_SPF)).is_some());
        let err = load(&format!("{BASE}g IN TYPE65534 \\# 4 0102\n")).unwrap_err();
        assert!(err.message.contains("length 4 but 2 bytes"), "{err}");
        let err = load(&format!("{BASE}g IN TYPE65534 hello\n")).unwrap_err();
        assert!(err.message.contains("RFC 3597"), "{err}");
    }

    #[test]
    fn names_are_stored_in_one_canonical_spelling() {
        for spelling in [
            "bücher.t.test.",
            "BÜCHER.t.test",
            "xn--bcher-kva.t.test.",
            "XN--BCHER-KVA.T.TEST",
        ] {
            assert_eq!(
                canonical_name(spelling).unwrap(),
                "xn--bcher-kva.t.test.",
                "{spelling}"
            );
        }
        assert_eq!(
            canonical_name("WWW.Example.COM").unwrap(),
            "www.example.com."
        );
        assert_eq!(
            canonical_name("\\052.example.com.").unwrap(),
            "\\052.example.com."
        );
        assert!(canonical_name("a\u{0}ü.test").is_err());
    }

    #[test]
    fn includes_are_read_only_from_config_zone_files_relative_to_them() {
        let dir = std::env::temp_dir().join(format!("dns-zone-include-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/hosts"), "www 60 IN A 192.0.2.1\n").unwrap();
        let main = dir.join("main.zone");
        std::fs::write(&main, format!("{BASE}$INCLUDE sub/hosts\n")).unwrap();
        let records = read_zone_file(&origin(), &main).unwrap();
        assert!(records.iter().any(|(r, p)| r.record_type() == RecordType::A
            && r.name.to_ascii() == "www.example.com."
            && matches!(p, Where::File { path, .. } if path.ends_with("sub/hosts"))));
        // Text that does not come from a config zone file names no file.
        let err =
            parse_zone_text(&origin(), &format!("{BASE}$INCLUDE sub/hosts\n"), &main).unwrap_err();
        assert!(err.message.contains("only in zone files"), "{err}");
        // A device or a FIFO is never read.
        std::fs::write(&main, format!("{BASE}$INCLUDE /dev/zero\n")).unwrap();
        let err = read_zone_file(&origin(), &main).unwrap_err();
        assert!(err.message.contains("not a regular file"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn export_reloads_to_the_same_data() {
        let text = format!(
            "{BASE}www IN A 192.0.2.1\nwww IN AAAA 2001:db8::1\na IN SPF \"v=spf1 -all\"\n\
             a IN SRV 10 5 5060 sip\na IN CAA 0 issue \"ca.example\"\na IN PTR host\n\
             a IN NAPTR 100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp\nsub IN NS ns1\n\
             sub IN DS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118\n\
             a IN SSHFP 1 1 dd465c09cfa51fb45020cc83316fff21b9ec74ac\n\
             a IN TLSA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6\n\
             a IN SVCB 1 svc alpn=h2 port=8443\na IN HTTPS 1 . alpn=h2,h3\n\
             a IN TXT \"a b\" \"c\\\"d;\" e \"\\010\"\nb IN TYPE65534 \\# 4 0A000001\n\
             mail IN MX 10 mail\nx.y IN CNAME www\n"
        );
        let zone = load(&text).unwrap();
        let exported = zone.to_zone_file();
        let again = load(&exported).unwrap_or_else(|e| panic!("{e}\n{exported}"));
        let a: BTreeMap<_, _> = zone.nodes().collect();
        let b: BTreeMap<_, _> = again.nodes().collect();
        assert_eq!(a, b, "{exported}");
    }

    #[test]
    fn empty_non_terminals_and_cuts() {
        let zone = load(&format!(
            "{BASE}a.b.c IN A 192.0.2.1\nsub IN NS ns.sub\nns.sub IN A 192.0.2.9\n"
        ))
        .unwrap();
        let n = |s: &str| LowerName::new(&Name::from_ascii(s).unwrap());
        assert!(zone.is_empty_non_terminal(&n("b.c.example.com.")));
        assert!(zone.is_empty_non_terminal(&n("c.example.com.")));
        assert!(!zone.is_empty_non_terminal(&n("a.b.c.example.com.")));
        assert!(zone.is_at_or_below_cut(&n("ns.sub.example.com.")));
        assert!(zone.is_at_or_below_cut(&n("sub.example.com.")));
        assert!(!zone.is_at_or_below_cut(&n("a.b.c.example.com.")));
    }
}
