//! Route 53's DNSSEC verbs: key-signing keys (Create, Activate, Deactivate, Delete), signing
//! a zone (Enable, Disable) and what GetDNSSEC shows; and the signers the publisher hands the
//! served catalog ([`signers_of`]).
//!
//! Route 53 keeps a KSK's private key in KMS; here the daemon makes the key (ECDSA P-256,
//! algorithm 13, the one Route 53 signs with) and keeps it sealed in the store under the
//! node's key file (`store.dnssec_key_file`); the KMS ARN is kept as the key's label. The ZSK
//! is made at the first EnableHostedZoneDNSSEC and kept the same way.

use super::*;
use crate::signing::keys::{self, Sealer};
use crate::signing::{KeyMaterial, Signer};
use hickory_proto::dnssec::PublicKey as _;
use store::{StoredKsk, StoredZsk, ZoneDnssec};

/// The algorithm keys are made with: ECDSAP256SHA256, as Route 53.
pub const ALGORITHM: u8 = 13;
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
        let pkcs8 = keys::generate(ALGORITHM).map_err(key_error)?;
        let now = store::now();
        let ksk = StoredKsk {
            name: name.to_string(),
            kms_arn: kms_arn.to_string(),
            status: status.to_string(),
            algorithm: ALGORITHM,
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
            let id = store::new_id("ZSK");
            let pkcs8 = keys::generate(ALGORITHM).map_err(key_error)?;
            let sealed_key = sealer
                .seal(&zsk_label(&zone.id, &id), &pkcs8)
                .map_err(key_error)?;
            dnssec.zone_signing_keys.push(StoredZsk {
                id,
                algorithm: ALGORITHM,
                sealed_key,
                created_at: store::now(),
            });
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
        mut zone: HostedZone,
        signing: bool,
    ) -> Result<ChangeInfo, ControlError> {
        if let Some(d) = zone.dnssec.as_mut() {
            d.signing = signing;
        }
        if signing {
            // Refused here, not at the next publication, if a key does not open on this node.
            let sealer = sealer(&mut g)?;
            signer_of(&zone, &sealer).map_err(key_error)?;
        }
        let change = next_change(&mut g, None, &zone.id);
        let mut write = Write::default();
        write.put_zone(zone).put_change(change.clone());
        g.store.commit(write)?;
        g.publish_all = true;
        accept(&mut g, &change);
        drop(g);
        self.wake.notify_all();
        Ok(change)
    }
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

/// The signer of `zone` as stored: its active KSKs and its ZSKs, opened with `sealer`.
fn signer_of(zone: &HostedZone, sealer: &Sealer) -> Result<Signer, keys::KeyError> {
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
    let mut zsks = dnssec
        .zone_signing_keys
        .iter()
        .map(|k| {
            Ok(KeyMaterial {
                algorithm: k.algorithm,
                pkcs8: sealer.open(&zsk_label(&zone.id, &k.id), &k.sealed_key)?,
            })
        })
        .collect::<Result<Vec<_>, keys::KeyError>>()?;
    if zsks.is_empty() {
        return Err(keys::KeyError::Key(
            "the zone has no zone-signing key".into(),
        ));
    }
    let zsk = zsks.remove(0);
    let apex = Name::from_ascii(&zone.name).map_err(|e| keys::KeyError::Key(e.to_string()))?;
    Signer::new(apex, &ksks, &zsk, &zsks)
}

/// The signers of the built zones that are signed, each made again only when its DNSSEC
/// changed. A zone whose keys do not open here is served unsigned, with an error logged
/// (GetDNSSEC shows ACTION_NEEDED).
pub(super) fn signers_of(g: &mut Inner) -> Vec<Arc<Signer>> {
    let signed: Vec<HostedZone> = g
        .built
        .keys()
        .filter_map(|id| g.store.state().zones.get(id))
        .filter(|z| z.dnssec.as_ref().is_some_and(|d| d.signing))
        .cloned()
        .collect();
    g.signers.retain(|id, _| signed.iter().any(|z| &z.id == id));
    let mut out = Vec::with_capacity(signed.len());
    for zone in signed {
        let dnssec = zone.dnssec.clone().unwrap_or_default();
        if let Some((cached, signer)) = g.signers.get(&zone.id)
            && *cached == dnssec
        {
            out.push(signer.clone());
            continue;
        }
        let made = sealer(g)
            .map_err(|e| e.to_string())
            .and_then(|s| signer_of(&zone, &s).map_err(|e| e.to_string()));
        match made {
            Ok(signer) => {
                let signer = Arc::new(signer);
                g.signers.insert(zone.id.clone(), (dnssec, signer.clone()));
                out.push(signer);
            }
            Err(e) => tracing::error!("zone {}: cannot sign it: {e}", zone.name),
        }
    }
    out
}
