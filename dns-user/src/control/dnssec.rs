//! Route 53's DNSSEC verbs: key-signing keys (Create, Activate, Deactivate, Delete), signing
//! a zone (Enable, Disable) and what GetDNSSEC shows; and the signers the publisher hands the
//! served catalog ([`signers_of`]).
//!
//! Route 53 keeps a KSK's private key in KMS; here the daemon makes the key (ECDSA P-256,
//! algorithm 13, the one Route 53 signs with) and keeps it sealed in the store under the
//! node's key file (`store.dnssec_key_file`); the KMS ARN is kept as the key's label. The ZSK
//! is made at the first EnableHostedZoneDNSSEC and kept the same way, and rolled over by
//! pre-publication ([`zsk_step`], [`Control::dnssec_tick`]; timings in `[dnssec]`).

use super::*;
use crate::config::DnssecSection;
use crate::signing::keys::{self, Sealer};
use crate::signing::{KeyMaterial, Signer};
use hickory_proto::dnssec::PublicKey as _;
use store::{StoredKsk, StoredZsk, ZoneDnssec};

/// The algorithm of the keys of a zone: that of the keys it has (a zone keeps one algorithm;
/// changing it would take an algorithm rollover), else the configured one (`dnssec.algorithm`,
/// ECDSAP256SHA256 by default, as Route 53).
fn zone_algorithm(dnssec: &ZoneDnssec, configured: u8) -> u8 {
    dnssec
        .key_signing_keys
        .iter()
        .map(|k| k.algorithm)
        .chain(dnssec.zone_signing_keys.iter().map(|k| k.algorithm))
        .next()
        .unwrap_or(configured)
}
/// Most key-signing keys a zone has (Route 53: two).
pub const MAX_KSKS: usize = 2;

/// What a KSK is sealed for: its zone, its role and name (a sealed key cannot be moved).
fn ksk_label(zone_id: &str, name: &str) -> String {
    format!("zone {zone_id} ksk {name}")
}

fn zsk_label(zone_id: &str, id: &str) -> String {
    format!("zone {zone_id} zsk {id}")
}

fn refused(code: &'static str, message: impl Into<String>) -> ControlError {
    ControlError::Refused {
        code,
        message: message.into(),
    }
}

fn key_error(e: keys::KeyError) -> ControlError {
    refused("InvalidKMSArn", e.to_string())
}

/// The node's sealer, opened (or its key file made) on first use.
fn sealer(g: &mut Inner) -> Result<Arc<Sealer>, ControlError> {
    if let Some(s) = &g.sealer {
        return Ok(s.clone());
    }
    let sealer = Arc::new(Sealer::open_or_create(&g.settings.dnssec_key_file).map_err(key_error)?);
    g.sealer = Some(sealer.clone());
    Ok(sealer)
}

/// A KSK as GetDNSSEC and CreateKeySigningKey show it.
#[derive(Clone, Debug)]
pub struct KskView {
    pub stored: StoredKsk,
    pub flag: u16,
    pub key_tag: u16,
    /// The DNSKEY's public key, base64.
    pub public_key: String,
    /// The DS record's digest (SHA-256), hex upper case, and the whole DS and DNSKEY records as
    /// zone-file text.
    pub digest_value: String,
    pub ds_record: String,
    pub dnskey_record: String,
}

/// GetDNSSEC: whether the zone is signed, and its KSKs.
#[derive(Clone, Debug)]
pub struct DnssecView {
    /// SIGNING, NOT_SIGNING or ACTION_NEEDED (a key does not open here).
    pub serve_signature: &'static str,
    pub status_message: Option<String>,
    pub ksks: Vec<KskView>,
}

impl Control {
    /// CreateKeySigningKey.
    pub fn create_ksk(
        &self,
        zone_id: &str,
        name: &str,
        kms_arn: &str,
        status: &str,
        caller_reference: &str,
    ) -> Result<(ChangeInfo, KskView), ControlError> {
        if name.len() < 3
            || name.len() > 128
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(refused(
                "InvalidKeySigningKeyName",
                format!("key name {name:?}: 3..128 characters of A-Z, a-z, 0-9 and _"),
            ));
        }
        if kms_arn.is_empty() || kms_arn.len() > 2048 {
            return Err(refused(
                "InvalidKMSArn",
                "KeyManagementServiceArn is required",
            ));
        }
        if !matches!(status, "ACTIVE" | "INACTIVE") {
            return Err(refused(
                "InvalidKeySigningKeyStatus",
                format!("status {status:?}: ACTIVE or INACTIVE"),
            ));
        }
        if caller_reference.is_empty() || caller_reference.len() > 128 {
            return Err(ControlError::invalid("CallerReference: 1..128 characters"));
        }
        let mut g = self.lock();
        let mut zone = zone_by_id(g.store.state(), zone_id)?.clone();
        let dnssec = zone.dnssec.get_or_insert_with(ZoneDnssec::default);
        if dnssec
            .key_signing_keys
            .iter()
            .any(|k| k.name == name || k.kms_arn == kms_arn)
        {
            return Err(ControlError::Conflict {
                code: "KeySigningKeyAlreadyExists",
                message: format!(
                    "zone {} already has a key-signing key named {name} or with that KMS ARN",
                    zone.name
                ),
            });
        }
        if dnssec.key_signing_keys.len() >= MAX_KSKS {
            return Err(refused(
                "TooManyKeySigningKeys",
                format!("a zone has at most {MAX_KSKS} key-signing keys"),
            ));
        }
        let sealer = sealer(&mut g)?;
        let algorithm = zone_algorithm(dnssec, g.settings.dnssec.algorithm);
        let (algorithm, pkcs8) = match kms_arn.strip_prefix("file:") {
            Some(file) => {
                let (given, pkcs8) = imported_key(&g.settings.dnssec, file)?;
                if !dnssec.key_signing_keys.is_empty() && given != algorithm {
                    return Err(refused(
                        "InvalidKMSArn",
                        format!("the zone's keys are algorithm {algorithm}; {file} is {given}"),
                    ));
                }
                (given, pkcs8)
            }
            None => (algorithm, keys::generate(algorithm).map_err(key_error)?),
        };
        let now = store::now();
        let ksk = StoredKsk {
            name: name.to_string(),
            kms_arn: kms_arn.to_string(),
            status: status.to_string(),
            algorithm,
            sealed_key: sealer
                .seal(&ksk_label(&zone.id, name), &pkcs8)
                .map_err(key_error)?,
            created_at: now.clone(),
            last_modified_at: now,
        };
        dnssec.key_signing_keys.push(ksk.clone());
        let signing = dnssec.signing;
        let view = ksk_view(&zone, &sealer, &ksk)?;
        self.commit_dnssec(g, zone, signing).map(|c| (c, view))
    }

    /// ActivateKeySigningKey and DeactivateKeySigningKey. The last active KSK of a signed
    /// zone stays active (Route 53: KeySigningKeyInUse).
    pub fn set_ksk_status(
        &self,
        zone_id: &str,
        name: &str,
        active: bool,
    ) -> Result<ChangeInfo, ControlError> {
        let g = self.lock();
        let mut zone = zone_by_id(g.store.state(), zone_id)?.clone();
        let dnssec = zone.dnssec.get_or_insert_with(ZoneDnssec::default);
        let others_active = dnssec
            .key_signing_keys
            .iter()
            .filter(|k| k.name != name && k.status == "ACTIVE")
            .count();
        let signing = dnssec.signing;
        let ksk = ksk_named(dnssec, name)?;
        if !active && signing && others_active == 0 {
            return Err(refused(
                "KeySigningKeyInUse",
                format!(
                    "{name} is the zone's last active key-signing key while it is signed: disable DNSSEC first"
                ),
            ));
        }
        ksk.status = if active { "ACTIVE" } else { "INACTIVE" }.into();
        ksk.last_modified_at = store::now();
        self.commit_dnssec(g, zone, signing)
    }

    /// DeleteKeySigningKey: only an inactive key.
    pub fn delete_ksk(&self, zone_id: &str, name: &str) -> Result<ChangeInfo, ControlError> {
        let g = self.lock();
        let mut zone = zone_by_id(g.store.state(), zone_id)?.clone();
        let dnssec = zone.dnssec.get_or_insert_with(ZoneDnssec::default);
        let ksk = ksk_named(dnssec, name)?;
        if ksk.status != "INACTIVE" {
            return Err(refused(
                "InvalidKeySigningKeyStatus",
                format!("{name} is {}: deactivate it first", ksk.status),
            ));
        }
        dnssec.key_signing_keys.retain(|k| k.name != name);
        let signing = dnssec.signing;
        self.commit_dnssec(g, zone, signing)
    }

    /// EnableHostedZoneDNSSEC (`true`) and DisableHostedZoneDNSSEC. Enabling needs an active
    /// KSK, and makes the ZSK the first time.
    pub fn set_signing(&self, zone_id: &str, signing: bool) -> Result<ChangeInfo, ControlError> {
        let mut g = self.lock();
        let mut zone = zone_by_id(g.store.state(), zone_id)?.clone();
        if !signing {
            if zone.dnssec.is_none() {
                return Err(refused(
                    "DNSSECNotFound",
                    format!("zone {} has no DNSSEC", zone.name),
                ));
            }
            return self.commit_dnssec(g, zone, false);
        }
        let sealer = sealer(&mut g)?;
        let dnssec = zone.dnssec.get_or_insert_with(ZoneDnssec::default);
        if !dnssec.key_signing_keys.iter().any(|k| k.status == "ACTIVE") {
            return Err(refused(
                "KeySigningKeyWithActiveStatusNotFound",
                "the zone needs an active key-signing key (CreateKeySigningKey)",
            ));
        }
        if dnssec.zone_signing_keys.is_empty() {
            let algorithm = zone_algorithm(dnssec, g.settings.dnssec.algorithm);
            let now = crate::signing::unix_now().into();
            let zsk = new_zsk(&zone.id, algorithm, &sealer, ACTIVE, now)?;
            dnssec.zone_signing_keys.push(zsk);
        }
        self.commit_dnssec(g, zone, true)
    }

    /// GetDNSSEC.
    pub fn dnssec(&self, zone_id: &str) -> Result<DnssecView, ControlError> {
        let mut g = self.lock();
        let zone = zone_by_id(g.store.state(), zone_id)?.clone();
        let Some(dnssec) = &zone.dnssec else {
            return Ok(DnssecView {
                serve_signature: "NOT_SIGNING",
                status_message: None,
                ksks: Vec::new(),
            });
        };
        let sealer = sealer(&mut g)?;
        let ksks = dnssec
            .key_signing_keys
            .iter()
            .map(|k| ksk_view(&zone, &sealer, k))
            .collect::<Result<Vec<_>, _>>();
        match (ksks, dnssec.signing) {
            (Ok(ksks), signing) => Ok(DnssecView {
                serve_signature: if signing { "SIGNING" } else { "NOT_SIGNING" },
                status_message: None,
                ksks,
            }),
            (Err(e), _) => Ok(DnssecView {
                serve_signature: "ACTION_NEEDED",
                status_message: Some(e.to_string()),
                ksks: Vec::new(),
            }),
        }
    }

    /// Stores `zone` with its DNSSEC as changed (signing or not) as one change; the next
    /// publication signs (or stops signing) it.
    fn commit_dnssec(
        &self,
        mut g: MutexGuard<'_, Inner>,
        zone: HostedZone,
        signing: bool,
    ) -> Result<ChangeInfo, ControlError> {
        let change = stage(&mut g, zone, signing)?;
        drop(g);
        self.wake.notify_all();
        Ok(change)
    }

    /// The ZSK rollovers due at `now` (seconds since the epoch), one step per zone, each a
    /// change of its own. A step another node of a cluster took first is refused by the store
    /// and not taken twice: the next tick sees it done.
    pub fn dnssec_tick(&self, now: u64) {
        let mut g = self.lock();
        let timings = g.settings.dnssec.clone();
        let signed: Vec<HostedZone> = g
            .store
            .state()
            .zones
            .values()
            .filter(|z| z.dnssec.as_ref().is_some_and(|d| d.signing))
            .cloned()
            .collect();
        let mut changed = false;
        for mut zone in signed {
            let dnssec = zone.dnssec.clone().unwrap_or_default();
            let Some(step) = zsk_step(&dnssec.zone_signing_keys, now, &timings) else {
                continue;
            };
            let max_ttl = g.built.get(&zone.id).map_or(0, |z| z.max_ttl());
            let taken = sealer(&mut g).and_then(|sealer| {
                let keys = &mut zone.dnssec.as_mut().expect("signed").zone_signing_keys;
                take_step(&zone.id, keys, &step, now, max_ttl, &timings, &sealer)?;
                stage(&mut g, zone.clone(), true)
            });
            match taken {
                Ok(_) => {
                    tracing::info!("zone {}: ZSK rollover: {step:?}", zone.name);
                    changed = true;
                }
                Err(e) => {
                    tracing::warn!("zone {}: ZSK rollover {step:?} not taken: {e}", zone.name)
                }
            }
        }
        drop(g);
        if changed {
            self.wake.notify_all();
        }
    }

    /// How often [`dnssec_tick`](Self::dnssec_tick) should run: often enough for the
    /// shortest of the timings.
    pub fn dnssec_tick_every(&self) -> std::time::Duration {
        let t = &self.lock().settings.dnssec;
        let shortest =
            (u64::from(t.dnskey_ttl_secs) + t.propagation_delay_secs).min(t.zsk_lifetime_secs);
        std::time::Duration::from_secs((shortest / 4).clamp(1, 60))
    }
}

/// Stores `zone` with its DNSSEC (signing or not) as one change to publish.
fn stage(g: &mut Inner, mut zone: HostedZone, signing: bool) -> Result<ChangeInfo, ControlError> {
    if let Some(d) = zone.dnssec.as_mut() {
        d.signing = signing;
    }
    if signing {
        // Refused here, not at the next publication, if a key does not open on this node.
        let sealer = sealer(g)?;
        signer_of(&zone, &sealer, g.settings.dnssec.dnskey_ttl_secs).map_err(key_error)?;
    }
    let change = next_change(g, None, &zone.id);
    let mut write = Write::default();
    write.put_zone(zone).put_change(change.clone());
    g.store.commit(write)?;
    accept(g, &change);
    Ok(change)
}

const ACTIVE: &str = "ACTIVE";
const NEXT: &str = "NEXT";
const RETIRED: &str = "RETIRED";

fn new_zsk(
    zone_id: &str,
    algorithm: u8,
    sealer: &Sealer,
    state: &str,
    now: u64,
) -> Result<StoredZsk, ControlError> {
    let id = store::new_id("ZSK");
    let pkcs8 = keys::generate(algorithm).map_err(key_error)?;
    let sealed_key = sealer
        .seal(&zsk_label(zone_id, &id), &pkcs8)
        .map_err(key_error)?;
    Ok(StoredZsk {
        id,
        algorithm,
        sealed_key,
        created_at: store::now(),
        state: state.into(),
        since: now,
        until: 0,
    })
}

/// One step of a ZSK rollover by pre-publication (RFC 6781 section 4.1.1.1).
#[derive(Clone, Debug, PartialEq)]
pub enum ZskStep {
    /// The active key has signed its lifetime: a NEXT key is published beside it.
    Publish,
    /// The NEXT key has been published long enough (DNSKEY TTL + propagation) for every
    /// resolver to have it: it signs, and the active key is RETIRED (still published).
    Activate,
    /// A RETIRED key's signatures have left every cache: it leaves the DNSKEY RRset.
    Drop(String),
}

/// The step due at `now` for a zone with ZSKs `zsks`, if any (pure).
pub fn zsk_step(zsks: &[StoredZsk], now: u64, t: &DnssecSection) -> Option<ZskStep> {
    let active = zsks.iter().find(|k| k.state == ACTIVE)?;
    let retired = zsks.iter().find(|k| k.state == RETIRED);
    if let Some(r) = retired
        && now >= r.until
    {
        return Some(ZskStep::Drop(r.id.clone()));
    }
    let publish_wait = u64::from(t.dnskey_ttl_secs) + t.propagation_delay_secs;
    match zsks.iter().find(|k| k.state == NEXT) {
        Some(next) if retired.is_none() && now >= next.since + publish_wait => {
            Some(ZskStep::Activate)
        }
        Some(_) => None,
        None if retired.is_none() && now >= active.since + t.zsk_lifetime_secs => {
            Some(ZskStep::Publish)
        }
        None => None,
    }
}

/// Takes `step` on `zsks` at `now`; a retired key stays until the zone's largest TTL
/// (`max_ttl`) and the propagation delay have passed.
fn take_step(
    zone_id: &str,
    zsks: &mut Vec<StoredZsk>,
    step: &ZskStep,
    now: u64,
    max_ttl: u32,
    t: &DnssecSection,
    sealer: &Sealer,
) -> Result<(), ControlError> {
    match step {
        ZskStep::Publish => {
            // The zone's algorithm: the active key's.
            let algorithm = zsks
                .iter()
                .find(|k| k.state == ACTIVE)
                .map_or(keys::ECDSAP256SHA256, |k| k.algorithm);
            zsks.push(new_zsk(zone_id, algorithm, sealer, NEXT, now)?)
        }
        ZskStep::Activate => {
            for k in zsks.iter_mut() {
                match k.state.as_str() {
                    ACTIVE => {
                        k.state = RETIRED.into();
                        k.since = now;
                        k.until = now + u64::from(max_ttl) + t.propagation_delay_secs;
                    }
                    NEXT => {
                        k.state = ACTIVE.into();
                        k.since = now;
                    }
                    _ => {}
                }
            }
        }
        ZskStep::Drop(id) => zsks.retain(|k| &k.id != id),
    }
    Ok(())
}

/// A KSK the operator gives: `file` (from a `file:NAME` ARN), a PEM PKCS#8 private key
/// directly in `dnssec.import_dir`, readable by its owner alone. Its algorithm and DER.
fn imported_key(t: &DnssecSection, file: &str) -> Result<(u8, Vec<u8>), ControlError> {
    let Some(dir) = &t.import_dir else {
        return Err(refused(
            "InvalidKMSArn",
            "a file: KeyManagementServiceArn needs dnssec.import_dir in the config",
        ));
    };
    if file.is_empty() || file.contains('/') || file.starts_with('.') {
        return Err(refused(
            "InvalidKMSArn",
            format!("file:{file}: name a file directly in dnssec.import_dir"),
        ));
    }
    let text = crate::files::read_secret(&dir.join(file))
        .map_err(|e| refused("InvalidKMSArn", e.to_string()))?;
    let der = keys::pkcs8_from_pem(&text).map_err(key_error)?;
    let algorithm = keys::algorithm_of(&der).map_err(key_error)?;
    Ok((algorithm, der))
}

fn ksk_named<'a>(
    dnssec: &'a mut ZoneDnssec,
    name: &str,
) -> Result<&'a mut StoredKsk, ControlError> {
    dnssec
        .key_signing_keys
        .iter_mut()
        .find(|k| k.name == name)
        .ok_or_else(|| ControlError::NotFound {
            what: Kind::KeySigningKey,
            id: name.to_string(),
        })
}

fn ksk_view(zone: &HostedZone, sealer: &Sealer, ksk: &StoredKsk) -> Result<KskView, ControlError> {
    let pkcs8 = sealer
        .open(&ksk_label(&zone.id, &ksk.name), &ksk.sealed_key)
        .map_err(key_error)?;
    let key = keys::signing_key(ksk.algorithm, &pkcs8).map_err(key_error)?;
    let dnskey = keys::dnskey(key.as_ref(), keys::SECURE_ENTRY_POINT).map_err(key_error)?;
    let origin = Name::from_ascii(&zone.name).map_err(|e| ControlError::invalid(e.to_string()))?;
    let ds = keys::ds(&origin, &dnskey).map_err(key_error)?;
    let public_key = data_encoding::BASE64.encode(dnskey.public_key().public_bytes());
    let digest_value = data_encoding::HEXUPPER.encode(ds.digest());
    Ok(KskView {
        flag: dnskey.flags(),
        key_tag: keys::key_tag(&dnskey),
        ds_record: format!("{} {} 2 {}", ds.key_tag(), ksk.algorithm, digest_value),
        dnskey_record: format!("{} 3 {} {}", dnskey.flags(), ksk.algorithm, public_key),
        public_key,
        digest_value,
        stored: ksk.clone(),
    })
}

/// The signer of `zone` as stored: its active KSKs and its ZSKs (the ACTIVE one signs),
/// opened with `sealer`.
fn signer_of(
    zone: &HostedZone,
    sealer: &Sealer,
    dnskey_ttl: u32,
) -> Result<Signer, keys::KeyError> {
    let dnssec = zone.dnssec.clone().unwrap_or_default();
    let ksks = dnssec
        .key_signing_keys
        .iter()
        .filter(|k| k.status == "ACTIVE")
        .map(|k| {
            Ok(KeyMaterial {
                algorithm: k.algorithm,
                pkcs8: sealer.open(&ksk_label(&zone.id, &k.name), &k.sealed_key)?,
            })
        })
        .collect::<Result<Vec<_>, keys::KeyError>>()?;
    let open = |k: &StoredZsk| -> Result<KeyMaterial, keys::KeyError> {
        Ok(KeyMaterial {
            algorithm: k.algorithm,
            pkcs8: sealer.open(&zsk_label(&zone.id, &k.id), &k.sealed_key)?,
        })
    };
    let Some(active) = dnssec.zone_signing_keys.iter().find(|k| k.state == ACTIVE) else {
        return Err(keys::KeyError::Key(
            "the zone has no active zone-signing key".into(),
        ));
    };
    let zsk = open(active)?;
    let published = dnssec
        .zone_signing_keys
        .iter()
        .filter(|k| k.state != ACTIVE)
        .map(open)
        .collect::<Result<Vec<_>, _>>()?;
    let apex = Name::from_ascii(&zone.name).map_err(|e| keys::KeyError::Key(e.to_string()))?;
    Signer::new(apex, &ksks, &zsk, &published, dnskey_ttl)
}

/// The signers of the built zones that are signed, each made again only when its DNSSEC
/// changed. A zone whose keys do not open here is served unsigned, with an error logged
/// (GetDNSSEC shows ACTION_NEEDED). A signer made, made again or dropped asks for a whole
/// compile (`publish_all`): every entry of its zone changes (flags, signatures), however the
/// change came (an API call here, a ZSK step, another cluster node).
pub(super) fn signers_of(g: &mut Inner) -> Vec<Arc<Signer>> {
    let signed: Vec<HostedZone> = g
        .built
        .keys()
        .filter_map(|id| g.store.state().zones.get(id))
        .filter(|z| z.dnssec.as_ref().is_some_and(|d| d.signing))
        .cloned()
        .collect();
    let before = g.signers.len();
    g.signers.retain(|id, _| signed.iter().any(|z| &z.id == id));
    if g.signers.len() != before {
        g.publish_all = true;
    }
    let mut out = Vec::with_capacity(signed.len());
    for zone in signed {
        let dnssec = zone.dnssec.clone().unwrap_or_default();
        if let Some((cached, signer)) = g.signers.get(&zone.id)
            && *cached == dnssec
        {
            out.push(signer.clone());
            continue;
        }
        let ttl = g.settings.dnssec.dnskey_ttl_secs;
        let made = sealer(g)
            .map_err(|e| e.to_string())
            .and_then(|s| signer_of(&zone, &s, ttl).map_err(|e| e.to_string()));
        match made {
            Ok(signer) => {
                let signer = Arc::new(signer);
                g.signers.insert(zone.id.clone(), (dnssec, signer.clone()));
                g.publish_all = true;
                out.push(signer);
            }
            Err(e) => {
                // Served unsigned: its entries lose their signed flag.
                g.publish_all |= g.signers.remove(&zone.id).is_some();
                tracing::error!("zone {}: cannot sign it: {e}", zone.name)
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, state: &str, since: u64, until: u64) -> StoredZsk {
        StoredZsk {
            id: id.into(),
            algorithm: 13,
            sealed_key: String::new(),
            created_at: String::new(),
            state: state.into(),
            since,
            until,
        }
    }

    #[test]
    fn a_zsk_rolls_over_by_pre_publication() {
        let t = DnssecSection {
            zsk_lifetime_secs: 1_000,
            dnskey_ttl_secs: 60,
            propagation_delay_secs: 40,
            algorithm: 13,
            import_dir: None,
        };
        let active = key("a", ACTIVE, 0, 0);
        assert_eq!(zsk_step(std::slice::from_ref(&active), 999, &t), None);
        assert_eq!(
            zsk_step(std::slice::from_ref(&active), 1_000, &t),
            Some(ZskStep::Publish)
        );
        // Published at 1,000: signs once the DNSKEY TTL and the propagation delay are past.
        let next = key("b", NEXT, 1_000, 0);
        let both = [active.clone(), next];
        assert_eq!(zsk_step(&both, 1_099, &t), None);
        assert_eq!(zsk_step(&both, 1_100, &t), Some(ZskStep::Activate));
        let mut keys = both.to_vec();
        let sealer = Sealer::from_bytes(&[1; 32]);
        take_step("Z", &mut keys, &ZskStep::Activate, 1_100, 300, &t, &sealer).unwrap();
        let states: Vec<(&str, &str, u64, u64)> = keys
            .iter()
            .map(|k| (k.id.as_str(), k.state.as_str(), k.since, k.until))
            .collect();
        assert_eq!(
            states,
            [("a", RETIRED, 1_100, 1_440), ("b", ACTIVE, 1_100, 0)]
        );
        // The retired key stays until the zone's largest TTL and the propagation delay;
        // meanwhile no new rollover starts, however long it takes.
        assert_eq!(zsk_step(&keys, 1_439, &t), None);
        assert_eq!(zsk_step(&keys, 1_440, &t), Some(ZskStep::Drop("a".into())));
        take_step(
            "Z",
            &mut keys,
            &ZskStep::Drop("a".into()),
            1_440,
            300,
            &t,
            &sealer,
        )
        .unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(zsk_step(&keys, 2_099, &t), None);
        assert_eq!(zsk_step(&keys, 2_100, &t), Some(ZskStep::Publish));
        // Publish makes a sealed key the signer can open.
        take_step("Z", &mut keys, &ZskStep::Publish, 2_100, 300, &t, &sealer).unwrap();
        let made = &keys[1];
        assert_eq!((made.state.as_str(), made.since), (NEXT, 2_100));
        sealer
            .open(&zsk_label("Z", &made.id), &made.sealed_key)
            .unwrap();
        // No active key (not signed): nothing to do.
        assert_eq!(zsk_step(&[], 5_000, &t), None);
    }
}
