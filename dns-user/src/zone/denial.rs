//! Authenticated denial of existence in a zone signed elsewhere (RFC 4035 section 3.1.3, RFC
//! 5155 section 7.2): the zone's NSEC chain in canonical order (RFC 4034 section 6.1), or its
//! NSEC3 chain in hash order, and which of their records prove what. The zone holds the
//! records as the signer wrote them; this only finds them.

use data_encoding::BASE32HEX_NOPAD;
use hickory_proto::rr::{LowerName, Name, RData, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use super::Zone;

/// What a negative answer or a wildcard expansion has to prove.
#[derive(Clone, Debug)]
pub enum Proof {
    /// No such name, and no wildcard at its closest encloser (NXDOMAIN).
    NoName(LowerName),
    /// The name exists without the type asked (NODATA; also no DS at a delegation).
    NoData(LowerName),
    /// The name does not exist but the wildcard `star` does, without the type asked.
    WildcardNoData { name: LowerName, star: LowerName },
    /// An answer from the wildcard `star`: no closer name matched.
    Wildcard { name: LowerName, star: LowerName },
}

/// A zone's chain of denial records.
#[derive(Debug, Default)]
pub struct Denial {
    /// The owners of the NSEC records, in canonical order.
    nsec: Vec<LowerName>,
    /// The NSEC3 chain, if the zone has an NSEC3PARAM at its apex (then it is the one used).
    nsec3: Option<Nsec3Chain>,
}

#[derive(Debug)]
struct Nsec3Chain {
    /// Hash algorithm (1: SHA-1, the only one defined), iterations, salt.
    algorithm: u8,
    iterations: u16,
    salt: Vec<u8>,
    /// (hash, owner) of every NSEC3 record, by hash.
    hashes: Vec<(Vec<u8>, LowerName)>,
}

impl Nsec3Chain {
    /// RFC 5155 section 5: the iterated hash of a name's canonical wire form.
    fn hash(&self, name: &LowerName) -> Option<Vec<u8>> {
        if self.algorithm != 1 {
            return None;
        }
        let wire = Name::from(name.clone()).to_lowercase().to_bytes().ok()?;
        let sha1 = |data: &[u8]| {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
            ctx.update(data);
            ctx.update(&self.salt);
            ctx.finish().as_ref().to_vec()
        };
        let mut h = sha1(&wire);
        for _ in 0..self.iterations {
            h = sha1(&h);
        }
        Some(h)
    }

    /// The NSEC3 owner whose hash is `name`'s.
    fn matching(&self, name: &LowerName) -> Option<&LowerName> {
        let h = self.hash(name)?;
        let at = self.hashes.binary_search_by(|(x, _)| x.cmp(&h)).ok()?;
        Some(&self.hashes[at].1)
    }

    /// The NSEC3 owner whose span covers `name`'s hash (the last before it, wrapping).
    fn covering(&self, name: &LowerName) -> Option<&LowerName> {
        let h = self.hash(name)?;
        let after = self.hashes.partition_point(|(x, _)| *x < h);
        match after {
            0 => self.hashes.last(),
            n => self.hashes.get(n - 1),
        }
        .map(|(_, owner)| owner)
    }
}

impl Denial {
    pub fn of(zone: &Zone) -> Denial {
        let mut nsec: Vec<LowerName> = zone
            .nodes()
            .filter(|(_, sets)| sets.iter().any(|s| s.rtype == RecordType::NSEC))
            .map(|(name, _)| name.clone())
            .collect();
        nsec.sort();
        Denial {
            nsec,
            nsec3: Nsec3Chain::of(zone),
        }
    }

    /// The owners of the records that prove `proof`, each once, in the order given.
    pub fn owners(&self, zone: &Zone, proof: &Proof) -> Vec<LowerName> {
        let mut out: Vec<LowerName> = Vec::new();
        let mut add = |owner: Option<&LowerName>| {
            if let Some(o) = owner
                && !out.contains(o)
            {
                out.push(o.clone());
            }
        };
        match &self.nsec3 {
            None => {
                let names: Vec<LowerName> = match proof {
                    Proof::NoName(name) => {
                        let wildcard = Zone::wildcard_at(&zone.closest_encloser(name));
                        std::iter::once(name.clone()).chain(wildcard).collect()
                    }
                    Proof::NoData(name) => vec![name.clone()],
                    Proof::WildcardNoData { name, star } => vec![name.clone(), star.clone()],
                    Proof::Wildcard { name, .. } => vec![name.clone()],
                };
                for name in &names {
                    add(self.nsec_for(name));
                }
            }
            Some(chain) => match proof {
                // RFC 5155 7.2.2: the closest encloser proof and the wildcard's absence.
                Proof::NoName(name) => {
                    let encloser = zone.closest_encloser(name);
                    add(chain.matching(&encloser));
                    add(chain.covering(&next_closer(name, &encloser)));
                    if let Some(star) = Zone::wildcard_at(&encloser) {
                        add(chain.covering(&star));
                    }
                }
                // 7.2.3; 7.2.4 (no NSEC3 at an opt-out delegation: its closest provable
                // encloser proof).
                Proof::NoData(name) => match chain.matching(name) {
                    Some(owner) => add(Some(owner)),
                    None => {
                        let mut encloser = name.base_name();
                        let mut found = chain.matching(&encloser);
                        while found.is_none() && !encloser.is_root() {
                            encloser = encloser.base_name();
                            found = chain.matching(&encloser);
                        }
                        add(found);
                        add(chain.covering(&next_closer(name, &encloser)));
                    }
                },
                // 7.2.5.
                Proof::WildcardNoData { name, star } => {
                    let encloser = star.base_name();
                    add(chain.matching(&encloser));
                    add(chain.covering(&next_closer(name, &encloser)));
                    add(chain.matching(star));
                }
                // 7.2.6.
                Proof::Wildcard { name, star } => {
                    add(chain.covering(&next_closer(name, &star.base_name())));
                }
            },
        }
        out
    }

    /// The NSEC owner equal to `name`, or else the one whose span covers it: the last owner
    /// before it in canonical order (the chain wraps from its last owner to the apex).
    pub fn nsec_for(&self, name: &LowerName) -> Option<&LowerName> {
        let after = self.nsec.partition_point(|owner| owner <= name);
        match after {
            0 => self.nsec.last(),
            n => self.nsec.get(n - 1),
        }
    }

    /// The type of the records the proofs are made of.
    pub fn record_type(&self) -> RecordType {
        if self.nsec3.is_some() {
            RecordType::NSEC3
        } else {
            RecordType::NSEC
        }
    }
}

impl Nsec3Chain {
    fn of(zone: &Zone) -> Option<Nsec3Chain> {
        let apex = LowerName::new(zone.origin());
        let param = zone.rrset(&apex, RecordType::NSEC3PARAM)?;
        let bytes = match param.rdatas.first()? {
            RData::Unknown { rdata, .. } => rdata.anything.clone(),
            _ => return None,
        };
        let salt_len = usize::from(*bytes.get(4)?);
        let mut hashes: Vec<(Vec<u8>, LowerName)> = zone
            .nodes()
            .filter(|(_, sets)| sets.iter().any(|s| s.rtype == RecordType::NSEC3))
            .filter_map(|(owner, _)| {
                let label = Name::from(owner.clone()).iter().next()?.to_vec();
                let label = String::from_utf8(label).ok()?.to_ascii_uppercase();
                let hash = BASE32HEX_NOPAD.decode(label.as_bytes()).ok()?;
                Some((hash, owner.clone()))
            })
            .collect();
        hashes.sort();
        Some(Nsec3Chain {
            algorithm: bytes[0],
            iterations: u16::from_be_bytes([bytes[2], bytes[3]]),
            salt: bytes.get(5..5 + salt_len)?.to_vec(),
            hashes,
        })
    }
}

/// RFC 5155 section 1.3: the ancestor of `name` one label longer than its closest encloser.
fn next_closer(name: &LowerName, encloser: &LowerName) -> LowerName {
    let mut n = name.clone();
    while n.num_labels() > encloser.num_labels() + 1 {
        n = n.base_name();
    }
    n
}

impl Zone {
    /// True if the zone is signed: a DNSKEY RRset at its apex.
    pub fn is_signed(&self) -> bool {
        self.rrset(&LowerName::new(self.origin()), RecordType::DNSKEY)
            .is_some()
    }

    /// The denial chain's index, built on first use.
    pub fn denial(&self) -> &Denial {
        self.denial
            .get_or_init(|| std::sync::Arc::new(Denial::of(self)))
    }

    /// The closest encloser of a name that does not exist (RFC 5155 section 1.3): its
    /// longest ancestor that does, as a node or an empty non-terminal; the apex at least.
    pub fn closest_encloser(&self, name: &LowerName) -> LowerName {
        let apex = LowerName::new(self.origin());
        let mut encloser = name.base_name();
        while encloser != apex && apex.zone_of(&encloser) {
            if self.node(&encloser).is_some() || self.is_empty_non_terminal(&encloser) {
                return encloser;
            }
            encloser = encloser.base_name();
        }
        apex
    }

    /// The wildcard name at `encloser` (`*.encloser`).
    pub fn wildcard_at(encloser: &LowerName) -> Option<LowerName> {
        Name::from(encloser.clone())
            .prepend_label("*")
            .ok()
            .map(|n| LowerName::new(&n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lower(s: &str) -> LowerName {
        LowerName::new(&Name::from_ascii(s).unwrap())
    }

    #[test]
    fn an_nsec_matches_or_covers_in_canonical_order() {
        // RFC 4034 section 6.1's example order.
        let d = Denial {
            nsec: [
                "example.",
                "a.example.",
                "yljkjljk.a.example.",
                "z.a.example.",
                "z.example.",
            ]
            .map(lower)
            .to_vec(),
            nsec3: None,
        };
        assert_eq!(d.nsec_for(&lower("a.example.")), Some(&lower("a.example.")));
        assert_eq!(
            d.nsec_for(&lower("b.a.example.")),
            Some(&lower("a.example."))
        );
        assert_eq!(
            d.nsec_for(&lower("zz.a.example.")),
            Some(&lower("z.a.example."))
        );
        assert_eq!(
            d.nsec_for(&lower("b.example.")),
            Some(&lower("z.a.example."))
        );
        assert_eq!(
            d.nsec_for(&lower("zz.example.")),
            Some(&lower("z.example."))
        );
        assert_eq!(
            d.nsec_for(&lower("*.z.example.")),
            Some(&lower("z.example."))
        );
    }

    #[test]
    fn nsec3_hashes_as_rfc_5155_appendix_a() {
        // Appendix A: salt aabbccdd, 12 iterations.
        let chain = Nsec3Chain {
            algorithm: 1,
            iterations: 12,
            salt: vec![0xaa, 0xbb, 0xcc, 0xdd],
            hashes: Vec::new(),
        };
        let b32 = |name: &str| {
            BASE32HEX_NOPAD
                .encode(&chain.hash(&lower(name)).unwrap())
                .to_lowercase()
        };
        assert_eq!(b32("example."), "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom");
        assert_eq!(b32("a.example."), "35mthgpgcu1qg68fab165klnsnk3dpvl");
        assert_eq!(b32("*.w.example."), "r53bq7cc2uvmubfu5ocmm6pers9tk9en");
    }
}
