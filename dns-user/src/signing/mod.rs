//! Zones signed here, as Route 53 signs them: a key-signing key (KSK) the operator creates
//! through the API signs the DNSKEY RRset, a zone-signing key (ZSK) the daemon makes and keeps
//! signs everything else, online, as answers are given (so the answers of routing policies,
//! which depend on the client, are signed as they are: see `server::sign`).
//!
//! A signature is made once per RRset and reused (cached by a digest of the RRset's canonical
//! form) until it comes near its expiry: valid from an hour before it was made (clocks differ)
//! for [`VALIDITY`], made again once less than [`REFRESH_BEFORE`] is left, so a resolver never
//! holds one that is about to expire. Signatures are kept in wire form (an RRSIG's RDATA as
//! it is sent), so the XDP program's entries and userspace's answers carry the same bytes. Denial of existence is compact (RFC 9824): one NSEC at
//! the name asked, made and signed per answer.

pub mod keys;

use std::collections::HashMap;
use std::sync::Mutex;

use hickory_proto::dnssec::rdata::{CDNSKEY, CDS, DNSKEY, DNSSECRData, NSEC, RRSIG, SigInput};
use hickory_proto::dnssec::{PublicKey as _, SigningKey, TBS};
use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, SerialNumber};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

pub use keys::KeyError;

/// How long a signature is valid after it is made.
pub const VALIDITY: u32 = 14 * 86_400;
/// A cached signature is made again when less than this is left of it.
pub const REFRESH_BEFORE: u32 = 10 * 86_400;
/// How often the zones signed here are compiled again for the fast path (well inside the
/// [`VALIDITY`] - [`REFRESH_BEFORE`] a cached signature lives).
pub const RECOMPILE_EVERY: std::time::Duration = std::time::Duration::from_secs(86_400);
/// How far before now a signature's inception lies (for resolvers whose clocks are behind).
pub const BACKDATE: u32 = 3_600;
/// Most signatures cached per zone; the cache starts over when full.
/// Above the A/AAAA RRsets of a million names, so the fast path's signatures stay the ones
/// userspace serves.
const MAX_CACHED: usize = 4_000_000;
/// The type RFC 9824 lists in a compact denial's NSEC for a name that does not exist.
pub const NXNAME: RecordType = RecordType::Unknown(128);

/// Seconds since the epoch, as signatures count time.
pub fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// One key as the signer uses it.
struct Key {
    key: Box<dyn SigningKey>,
    dnskey: DNSKEY,
    tag: u16,
}

impl Key {
    fn new(algorithm: u8, pkcs8: &[u8], flags: u16) -> Result<Key, KeyError> {
        let key = keys::signing_key(algorithm, pkcs8)?;
        let dnskey = keys::dnskey(key.as_ref(), flags)?;
        let tag = keys::key_tag(&dnskey);
        Ok(Key { key, dnskey, tag })
    }
}

/// Signatures by a digest of what they sign: RDATA bytes and expiration.
type Cache = HashMap<[u8; 16], (Box<[u8]>, u32)>;

/// A private key handed to [`Signer::new`]: algorithm number and PKCS#8 document.
pub struct KeyMaterial {
    pub algorithm: u8,
    pub pkcs8: Vec<u8>,
}

/// The keys of one zone signed here, and the signatures made with them.
pub struct Signer {
    apex: Name,
    /// Active KSKs: each signs the DNSKEY RRset.
    ksks: Vec<Key>,
    /// The ZSK that signs; `published` are in the DNSKEY RRset without signing (a key being
    /// introduced or retired).
    zsk: Key,
    published: Vec<Key>,
    dnskey_ttl: u32,
    /// Digest of what is signed (without the times) -> the RRSIG's RDATA and its
    /// expiration (about 150 bytes an RRset: the cache holds every A/AAAA RRset XDP serves).
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("apex", &self.apex)
            .field("ksks", &self.ksks.iter().map(|k| k.tag).collect::<Vec<_>>())
            .field("zsk", &self.zsk.tag)
            .finish()
    }
}

impl Signer {
    /// The signer of `apex` with its active KSKs, the ZSK that signs, and ZSKs published
    /// beside it; its DNSKEY RRset has `dnskey_ttl`.
    pub fn new(
        apex: Name,
        ksks: &[KeyMaterial],
        zsk: &KeyMaterial,
        published: &[KeyMaterial],
        dnskey_ttl: u32,
    ) -> Result<Signer, KeyError> {
        if ksks.is_empty() {
            return Err(KeyError::Key(
                "a signed zone needs an active key-signing key".into(),
            ));
        }
        let ksks = ksks
            .iter()
            .map(|k| Key::new(k.algorithm, &k.pkcs8, keys::SECURE_ENTRY_POINT))
            .collect::<Result<_, _>>()?;
        let zsk = Key::new(zsk.algorithm, &zsk.pkcs8, keys::ZONE_KEY)?;
        let published = published
            .iter()
            .map(|k| Key::new(k.algorithm, &k.pkcs8, keys::ZONE_KEY))
            .collect::<Result<_, _>>()?;
        Ok(Signer {
            apex,
            ksks,
            zsk,
            published,
            dnskey_ttl,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn apex(&self) -> &Name {
        &self.apex
    }

    pub fn dnskey_ttl(&self) -> u32 {
        self.dnskey_ttl
    }

    /// The DNSKEY RRset at the apex: the active KSKs, the signing ZSK, the published ones.
    pub fn dnskeys(&self) -> Vec<RData> {
        self.ksks
            .iter()
            .chain(std::iter::once(&self.zsk))
            .chain(&self.published)
            .map(|k| RData::DNSSEC(DNSSECRData::DNSKEY(k.dnskey.clone())))
            .collect()
    }

    /// The key RRsets at the apex, by type: DNSKEY ([`dnskeys`](Self::dnskeys)), and for the
    /// parent (RFC 7344, RFC 8078) CDNSKEY and CDS (SHA-256) of each active KSK.
    pub fn apex_keys(&self, rtype: RecordType) -> Option<Vec<RData>> {
        match rtype {
            RecordType::DNSKEY => Some(self.dnskeys()),
            RecordType::CDNSKEY => Some(
                self.ksks
                    .iter()
                    .map(|k| {
                        let public = k.dnskey.public_key();
                        RData::DNSSEC(DNSSECRData::CDNSKEY(CDNSKEY::with_flags(
                            k.dnskey.flags(),
                            Some(public.algorithm()),
                            public.public_bytes().to_vec(),
                        )))
                    })
                    .collect(),
            ),
            RecordType::CDS => Some(
                self.ksks
                    .iter()
                    .filter_map(|k| keys::ds(&self.apex, &k.dnskey).ok())
                    .map(|ds| {
                        RData::DNSSEC(DNSSECRData::CDS(CDS::new(
                            ds.key_tag(),
                            Some(ds.algorithm()),
                            ds.digest_type(),
                            ds.digest().to_vec(),
                        )))
                    })
                    .collect(),
            ),
            _ => None,
        }
    }

    /// The RRSIGs over the RRset `rdatas` of `rtype` at `owner` with `ttl`, as of `now`
    /// (seconds since the epoch): by every active KSK for the key RRsets at the apex
    /// (DNSKEY, CDNSKEY, CDS), by the ZSK otherwise. Empty if the RRset cannot be encoded (it is then served unsigned, and a
    /// validator treats it as bogus, never as secure).
    pub fn sign(
        &self,
        owner: &Name,
        rtype: RecordType,
        ttl: u32,
        rdatas: &[RData],
        now: u32,
    ) -> Vec<RData> {
        let by_ksk = matches!(
            rtype,
            RecordType::DNSKEY | RecordType::CDNSKEY | RecordType::CDS
        );
        let signers: Vec<&Key> = if by_ksk {
            self.ksks.iter().collect()
        } else {
            vec![&self.zsk]
        };
        let records: Vec<Record> = rdatas
            .iter()
            .map(|r| Record::from_rdata(owner.clone(), ttl, r.clone()))
            .collect();
        signers
            .into_iter()
            .filter_map(|key| self.signature(key, owner, rtype, ttl, &records, now))
            .collect()
    }

    fn signature(
        &self,
        key: &Key,
        owner: &Name,
        rtype: RecordType,
        ttl: u32,
        records: &[Record],
        now: u32,
    ) -> Option<RData> {
        let input = |inception: u32, expiration: u32| SigInput {
            type_covered: rtype,
            algorithm: key.dnskey.public_key().algorithm(),
            num_labels: owner.num_labels(),
            original_ttl: ttl,
            sig_expiration: SerialNumber::new(expiration),
            sig_inception: SerialNumber::new(inception),
            key_tag: key.tag,
            signer_name: self.apex.clone(),
        };
        // The cache key: a digest of what is signed, without the times.
        let timeless = input(0, 0);
        let tbs = TBS::from_input(owner, DNSClass::IN, &timeless, records.iter()).ok()?;
        let digest = ring::digest::digest(&ring::digest::SHA256, tbs.as_ref());
        let id: [u8; 16] = digest.as_ref()[..16].try_into().expect("32 bytes");
        if let Some((sig, expiration)) = self.cache.lock().expect("signature cache").get(&id)
            && expiration.wrapping_sub(now) as i32 > REFRESH_BEFORE as i32
        {
            return Some(rrsig_rdata(sig.to_vec()));
        }
        let expiration = now.wrapping_add(VALIDITY);
        let input = input(now.wrapping_sub(BACKDATE), expiration);
        let tbs = TBS::from_input(owner, DNSClass::IN, &input, records.iter()).ok()?;
        let sig = key.key.sign(&tbs).ok()?;
        let bytes = wire(&RRSIG::from_sig(input, sig))?;
        let mut cache = self.cache.lock().expect("signature cache");
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(id, (bytes.clone().into_boxed_slice(), expiration));
        Some(rrsig_rdata(bytes))
    }
}

/// An RRSIG's RDATA bytes as it is sent (the signer's name uncompressed, RFC 4034 section
/// 3.1.7).
fn wire(rrsig: &RRSIG) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(96);
    let mut encoder = BinEncoder::new(&mut bytes);
    RData::DNSSEC(DNSSECRData::RRSIG(rrsig.clone()))
        .emit(&mut encoder)
        .ok()?;
    Some(bytes)
}

/// RRSIG RDATA bytes as record data served as they are.
fn rrsig_rdata(bytes: Vec<u8>) -> RData {
    RData::Unknown {
        code: RecordType::RRSIG,
        rdata: NULL::with(bytes),
    }
}

/// The compact denial (RFC 9824) of `types` absent at `owner`: an NSEC whose next name is the
/// one right after `owner` (`\000.owner`), listing `present` (and RRSIG, NSEC). A name that
/// does not exist lists only those and NXNAME.
pub fn compact_nsec(owner: &Name, present: impl IntoIterator<Item = RecordType>) -> RData {
    let next = Name::from_labels([&[0u8][..]])
        .and_then(|zero| zero.append_name(owner))
        .unwrap_or_else(|_| owner.clone());
    let mut types: Vec<RecordType> = present.into_iter().collect();
    types.extend([RecordType::RRSIG, RecordType::NSEC]);
    RData::DNSSEC(DNSSECRData::NSEC(NSEC::new(next, types)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::A;

    fn signer() -> Signer {
        let material = |n| KeyMaterial {
            algorithm: n,
            pkcs8: keys::generate(n).unwrap(),
        };
        Signer::new(
            Name::from_ascii("example.org.").unwrap(),
            &[material(13)],
            &material(13),
            &[material(15)],
            3_600,
        )
        .unwrap()
    }

    fn rrsig(r: &RData) -> RRSIG {
        use hickory_proto::serialize::binary::{BinDecoder, Restrict};
        let RData::Unknown { code, rdata } = r else {
            panic!("not an RRSIG in wire form: {r:?}")
        };
        assert_eq!(*code, RecordType::RRSIG);
        let bytes = rdata.anything.clone();
        let mut decoder = BinDecoder::new(&bytes);
        let read = RData::read(
            &mut decoder,
            RecordType::RRSIG,
            Restrict::new(bytes.len() as u16),
        )
        .unwrap();
        match read {
            RData::DNSSEC(DNSSECRData::RRSIG(s)) => s,
            other => panic!("not an RRSIG: {other:?}"),
        }
    }

    #[test]
    fn signatures_verify_with_the_right_key_and_are_reused_until_near_expiry() {
        let signer = signer();
        let owner = Name::from_ascii("WWW.example.org.").unwrap();
        let set = [
            RData::A(A::new(192, 0, 2, 1)),
            RData::A(A::new(192, 0, 2, 2)),
        ];
        let now = 1_800_000_000;
        let sigs = signer.sign(&owner, RecordType::A, 300, &set, now);
        assert_eq!(sigs.len(), 1);
        let sig = rrsig(&sigs[0]);
        assert_eq!(sig.input().key_tag, signer.zsk.tag);
        assert_eq!(sig.input().num_labels, 3);
        assert_eq!(sig.input().sig_inception.get(), now - BACKDATE);
        assert_eq!(sig.input().sig_expiration.get(), now + VALIDITY);
        let records: Vec<Record> = set
            .iter()
            .map(|r| Record::from_rdata(owner.clone(), 300, r.clone()))
            .collect();
        let tbs = TBS::from_input(&owner, DNSClass::IN, sig.input(), records.iter()).unwrap();
        let public = signer.zsk.dnskey.public_key();
        public.verify(tbs.as_ref(), sig.sig()).unwrap();
        // The same RRset in another order or case: the same signature, until near expiry.
        let reversed = [set[1].clone(), set[0].clone()];
        let lower = Name::from_ascii("www.example.org.").unwrap();
        let later = now + VALIDITY - REFRESH_BEFORE - 1;
        assert_eq!(
            signer.sign(&lower, RecordType::A, 300, &reversed, later),
            sigs
        );
        let renewed = signer.sign(&lower, RecordType::A, 300, &reversed, later + 2);
        assert_ne!(renewed, sigs);
        assert_eq!(
            rrsig(&renewed[0]).input().sig_inception.get(),
            later + 2 - BACKDATE
        );
        // Another TTL is another RRset.
        assert_ne!(signer.sign(&owner, RecordType::A, 60, &set, now), sigs);
    }

    #[test]
    fn the_dnskey_set_lists_every_key_and_is_signed_by_the_ksk() {
        let signer = signer();
        let keys = signer.dnskeys();
        assert_eq!(keys.len(), 3);
        let apex = signer.apex().clone();
        let sigs = signer.sign(&apex, RecordType::DNSKEY, 3_600, &keys, 1_800_000_000);
        assert_eq!(sigs.len(), 1);
        assert_eq!(rrsig(&sigs[0]).input().key_tag, signer.ksks[0].tag);
        assert_eq!(rrsig(&sigs[0]).input().num_labels, 2);
    }

    #[test]
    fn a_compact_denial_names_the_next_name_and_its_types() {
        let owner = Name::from_ascii("nope.example.org.").unwrap();
        let RData::DNSSEC(DNSSECRData::NSEC(nsec)) = compact_nsec(&owner, [NXNAME]) else {
            panic!("an NSEC")
        };
        assert_eq!(
            nsec.next_domain_name().to_string(),
            "\\000.nope.example.org."
        );
        let types: Vec<RecordType> = nsec.type_bit_maps().collect();
        assert_eq!(types, [RecordType::RRSIG, RecordType::NSEC, NXNAME]);
    }
}
