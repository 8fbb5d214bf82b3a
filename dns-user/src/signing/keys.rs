//! Signing keys: made here (ECDSA P-256, algorithm 13; Ed25519, algorithm 15), kept sealed
//! at rest, and what a parent zone needs of them (DNSKEY, key tag, DS).
//!
//! A private key is stored as its PKCS#8 document sealed with AES-256-GCM under the node's
//! key file ([`Sealer`]), bound to what it is (zone and key name) so a sealed key cannot be
//! moved to another zone or role.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use data_encoding::BASE64;
use hickory_proto::dnssec::crypto::{EcdsaSigningKey, Ed25519SigningKey};
use hickory_proto::dnssec::rdata::{DNSKEY, DS};
use hickory_proto::dnssec::{Algorithm, DigestType, PublicKey as _, SigningKey};
use hickory_proto::rr::Name;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::pki_types::PrivatePkcs8KeyDer;

/// DNSKEY flags: a zone key (256), and a secure entry point (257, a key-signing key).
pub const ZONE_KEY: u16 = 256;
pub const SECURE_ENTRY_POINT: u16 = 257;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("DNSSEC key file {path}: {message}")]
    KeyFile { path: PathBuf, message: String },
    #[error(
        "a sealed DNSSEC key does not open with this node's key file (another key file, or damaged)"
    )]
    Unseal,
    #[error("DNSSEC key: {0}")]
    Key(String),
    #[error("signing algorithm {0} is not supported (13 ECDSAP256SHA256 and 15 ED25519 are)")]
    Algorithm(u8),
}

/// Algorithm numbers keys are made with (RFC 8624): ECDSA P-256 with SHA-256, and Ed25519.
pub const ECDSAP256SHA256: u8 = 13;
pub const ED25519: u8 = 15;

/// The algorithms keys are made with.
pub fn algorithm(number: u8) -> Result<Algorithm, KeyError> {
    match number {
        13 => Ok(Algorithm::ECDSAP256SHA256),
        15 => Ok(Algorithm::ED25519),
        n => Err(KeyError::Algorithm(n)),
    }
}

/// Route 53's mnemonic for an algorithm number.
pub fn mnemonic(number: u8) -> &'static str {
    match number {
        13 => "ECDSAP256SHA256",
        15 => "ED25519",
        _ => "UNKNOWN",
    }
}

/// A new private key (PKCS#8) for `algorithm`.
pub fn generate(algorithm_number: u8) -> Result<Vec<u8>, KeyError> {
    let der = match algorithm(algorithm_number)? {
        Algorithm::ED25519 => Ed25519SigningKey::generate_pkcs8(),
        a => EcdsaSigningKey::generate_pkcs8(a),
    }
    .map_err(|e| KeyError::Key(e.to_string()))?;
    Ok(der.secret_pkcs8_der().to_vec())
}

/// The PKCS#8 document of a PEM `-----BEGIN PRIVATE KEY-----` block (what `openssl genpkey`
/// writes).
pub fn pkcs8_from_pem(text: &str) -> Result<Vec<u8>, KeyError> {
    let body: String = text
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "-----BEGIN PRIVATE KEY-----")
        .skip(1)
        .take_while(|l| *l != "-----END PRIVATE KEY-----")
        .collect();
    if body.is_empty() {
        return Err(KeyError::Key(
            "no PKCS#8 private key (-----BEGIN PRIVATE KEY-----) in it".into(),
        ));
    }
    BASE64
        .decode(body.as_bytes())
        .map_err(|_| KeyError::Key("the PEM block is not base64".into()))
}

/// The algorithm (13 or 15) of the PKCS#8 private key `pkcs8`, if it is one this server
/// signs with.
pub fn algorithm_of(pkcs8: &[u8]) -> Result<u8, KeyError> {
    [ECDSAP256SHA256, ED25519]
        .into_iter()
        .find(|a| signing_key(*a, pkcs8).is_ok())
        .ok_or_else(|| KeyError::Key("not an ECDSA P-256 or Ed25519 PKCS#8 private key".into()))
}

/// A private key ready to sign.
pub fn signing_key(algorithm_number: u8, pkcs8: &[u8]) -> Result<Box<dyn SigningKey>, KeyError> {
    let der = PrivatePkcs8KeyDer::from(pkcs8);
    let key: Box<dyn SigningKey> = match algorithm(algorithm_number)? {
        Algorithm::ED25519 => {
            Box::new(Ed25519SigningKey::from_pkcs8(&der).map_err(|e| KeyError::Key(e.to_string()))?)
        }
        a => Box::new(
            EcdsaSigningKey::from_pkcs8(&der, a).map_err(|e| KeyError::Key(e.to_string()))?,
        ),
    };
    Ok(key)
}

/// The DNSKEY record data of `key` with `flags`.
pub fn dnskey(key: &dyn SigningKey, flags: u16) -> Result<DNSKEY, KeyError> {
    let public = key
        .to_public_key()
        .map_err(|e| KeyError::Key(e.to_string()))?;
    Ok(DNSKEY::with_flags(flags, public))
}

/// The key tag of a DNSKEY (RFC 4034 appendix B).
pub fn key_tag(dnskey: &DNSKEY) -> u16 {
    dnskey.calculate_key_tag().unwrap_or(0)
}

/// The DS (SHA-256 digest, type 2) a parent zone publishes for the key-signing key `dnskey`
/// of `zone`.
pub fn ds(zone: &Name, dnskey: &DNSKEY) -> Result<DS, KeyError> {
    let digest = dnskey
        .to_digest(zone, DigestType::SHA256)
        .map_err(|e| KeyError::Key(e.to_string()))?;
    Ok(DS::new(
        key_tag(dnskey),
        dnskey.public_key().algorithm(),
        DigestType::SHA256,
        digest.as_ref().to_vec(),
    ))
}

/// Seals private keys for the store and opens them again: AES-256-GCM under a 32-byte key
/// read from a file only its owner may read.
pub struct Sealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    /// The sealer of the key file at `path` (32 bytes in base64, readable by its owner
    /// alone), made with 32 random bytes if there is none.
    pub fn open_or_create(path: &Path) -> Result<Sealer, KeyError> {
        let fail = |message: String| KeyError::KeyFile {
            path: path.to_path_buf(),
            message,
        };
        if !path.exists() {
            let mut bytes = [0u8; 32];
            SystemRandom::new()
                .fill(&mut bytes)
                .map_err(|_| fail("no randomness".into()))?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(|e| fail(format!("cannot create it: {e}")))?;
            file.write_all(format!("{}\n", BASE64.encode(&bytes)).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| fail(format!("cannot write it: {e}")))?;
        }
        let text = crate::files::read_secret(path).map_err(|e| fail(e.to_string()))?;
        let bytes = BASE64
            .decode(text.trim().as_bytes())
            .map_err(|_| fail("not base64".into()))?;
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| fail(format!("{} bytes; a key file holds 32", bytes.len())))?;
        Ok(Sealer::from_bytes(&bytes))
    }

    pub fn from_bytes(bytes: &[u8; 32]) -> Sealer {
        let key = UnboundKey::new(&AES_256_GCM, bytes).expect("32 bytes is an AES-256 key");
        Sealer {
            key: LessSafeKey::new(key),
        }
    }

    /// `secret` sealed for the role `what` (base64 of nonce, ciphertext and tag).
    pub fn seal(&self, what: &str, secret: &[u8]) -> Result<String, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::Key("no randomness".into()))?;
        let mut out = secret.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(what.as_bytes()),
                &mut out,
            )
            .map_err(|_| KeyError::Key("sealing failed".into()))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&out);
        Ok(BASE64.encode(&sealed))
    }

    /// The secret [`seal`](Self::seal) sealed for `what`.
    pub fn open(&self, what: &str, sealed: &str) -> Result<Vec<u8>, KeyError> {
        let bytes = BASE64
            .decode(sealed.as_bytes())
            .map_err(|_| KeyError::Unseal)?;
        if bytes.len() < NONCE_LEN {
            return Err(KeyError::Unseal);
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Unseal)?;
        let mut rest = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(what.as_bytes()), &mut rest)
            .map_err(|_| KeyError::Unseal)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_only_for_its_role_and_key() {
        let sealer = Sealer::from_bytes(&[7; 32]);
        let sealed = sealer.seal("zone Z1 ksk a", b"secret").unwrap();
        assert_eq!(sealer.open("zone Z1 ksk a", &sealed).unwrap(), b"secret");
        assert!(matches!(
            sealer.open("zone Z2 ksk a", &sealed),
            Err(KeyError::Unseal)
        ));
        let other = Sealer::from_bytes(&[8; 32]);
        assert!(matches!(
            other.open("zone Z1 ksk a", &sealed),
            Err(KeyError::Unseal)
        ));
        assert!(matches!(sealer.open("x", "!!"), Err(KeyError::Unseal)));
    }

    #[test]
    fn keys_made_here_sign_and_give_their_ds() {
        for number in [13, 15] {
            let pkcs8 = generate(number).unwrap();
            let key = signing_key(number, &pkcs8).unwrap();
            let dnskey = dnskey(key.as_ref(), SECURE_ENTRY_POINT).unwrap();
            assert!(dnskey.secure_entry_point());
            assert_eq!(u8::from(dnskey.public_key().algorithm()), number);
            let zone = Name::from_ascii("example.org.").unwrap();
            let ds = ds(&zone, &dnskey).unwrap();
            assert_eq!(ds.key_tag(), key_tag(&dnskey));
            assert!(ds.covers(&zone, &dnskey).unwrap());
        }
        assert!(matches!(generate(8), Err(KeyError::Algorithm(8))));
    }

    #[test]
    fn an_operators_pem_key_is_read_and_its_algorithm_found() {
        for number in [13, 15] {
            let der = generate(number).unwrap();
            let pem = format!(
                "junk\n-----BEGIN PRIVATE KEY-----\n{}\n{}\n-----END PRIVATE KEY-----\n",
                &BASE64.encode(&der)[..20],
                &BASE64.encode(&der)[20..]
            );
            let read = pkcs8_from_pem(&pem).unwrap();
            assert_eq!(read, der);
            assert_eq!(algorithm_of(&read).unwrap(), number);
        }
        assert!(pkcs8_from_pem("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n").is_err());
        assert!(algorithm_of(b"not a key").is_err());
    }
}
