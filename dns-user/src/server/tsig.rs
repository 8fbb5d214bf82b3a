//! TSIG (RFC 8945): a query signed with a configured key is verified and answered signed; one
//! signed with a key this server does not have, with a wrong MAC, or at a time outside its
//! fudge, gets NOTAUTH with TSIG error BADKEY or BADSIG (unsigned) or BADTIME (signed), as
//! section 5.2 asks, whatever else it asked. Zone transfers can require a key
//! (`server.transfer_keys`); a transfer is signed message by message, each MAC chained to the
//! one before (section 5.3.1). hickory-proto computes and checks the MACs.

use std::collections::HashMap;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::tsig::{TSIG, TsigAlgorithm, TsigError, make_tsig_record};
use hickory_proto::rr::{LowerName, Name};
use hickory_proto::rr::{TSigResponseContext, TSigner};
use hickory_proto::serialize::binary::{BinEncodable as _, BinEncoder};

/// Seconds of clock difference accepted between a client and this server (RFC 8945 section
/// 10 recommends 300).
pub const FUDGE: u16 = 300;

/// A key from the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec {
    pub name: Name,
    pub algorithm: TsigAlgorithm,
    pub secret: Vec<u8>,
}

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TsigKeyError {
    #[error(
        "TSIG key {name}: algorithm {algorithm} is not supported (hmac-sha256, hmac-sha384, hmac-sha512)"
    )]
    Algorithm { name: String, algorithm: String },
    #[error("TSIG key {0}: defined twice")]
    Duplicate(String),
    #[error("TSIG key {0}: the secret is empty")]
    Empty(String),
}

/// The keys queries may be signed with, by name.
#[derive(Clone, Default)]
pub struct Keys {
    by_name: HashMap<LowerName, TSigner>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl Keys {
    pub fn new(specs: &[KeySpec]) -> Result<Keys, TsigKeyError> {
        let mut by_name = HashMap::new();
        for spec in specs {
            let name = spec.name.to_string();
            if spec.secret.is_empty() {
                return Err(TsigKeyError::Empty(name));
            }
            let signer = TSigner::new(
                spec.secret.clone(),
                spec.algorithm.clone(),
                spec.name.clone(),
                FUDGE,
            )
            .map_err(|_| TsigKeyError::Algorithm {
                name: name.clone(),
                algorithm: spec.algorithm.to_name().to_string(),
            })?;
            if by_name.insert(LowerName::new(&spec.name), signer).is_some() {
                return Err(TsigKeyError::Duplicate(name));
            }
        }
        Ok(Keys { by_name })
    }

    pub fn contains(&self, name: &LowerName) -> bool {
        self.by_name.contains_key(name)
    }
}

/// What to do with a query, as far as TSIG goes.
pub enum Verdict {
    /// No TSIG record: answer as usual.
    Unsigned,
    /// Verified: answer, then sign the response with the session.
    Signed(Session),
    /// Not verified: this NOTAUTH response is the answer.
    Refused(Vec<u8>),
}

/// The signing of one verified request's responses.
pub struct Session {
    signer: TSigner,
    id: u16,
    /// The request's MAC, then each signed response's.
    previous_mac: Vec<u8>,
    first: bool,
}

impl Session {
    /// The key the request was signed with.
    pub fn key(&self) -> LowerName {
        LowerName::new(self.signer.signer_name())
    }

    /// Bytes a response must leave free for its TSIG record.
    pub fn reserve(&self) -> usize {
        // Owner and algorithm names, fixed fields, the MAC.
        let names = self.signer.signer_name().len() + self.signer.algorithm().to_name().len();
        let mac = match self.signer.algorithm() {
            TsigAlgorithm::HmacSha256 => 32,
            TsigAlgorithm::HmacSha384 => 48,
            _ => 64,
        };
        names + 10 + 16 + mac
    }

    /// Signs the next response message: the first with the request's MAC and every TSIG
    /// variable, later ones chained to the previous MAC with the timers only (section 5.3.1).
    pub fn sign(&mut self, mut response: Vec<u8>, now: u64) -> Option<Vec<u8>> {
        let record = if self.first {
            TSigResponseContext::new(
                self.id,
                now,
                self.signer.clone(),
                self.previous_mac.clone(),
                None,
            )
            .sign(&response)
            .ok()?
        } else {
            let mut tbs = Vec::with_capacity(response.len() + self.previous_mac.len() + 10);
            tbs.extend_from_slice(&(self.previous_mac.len() as u16).to_be_bytes());
            tbs.extend_from_slice(&self.previous_mac);
            tbs.extend_from_slice(&response);
            tbs.extend_from_slice(&((now >> 32) as u16).to_be_bytes());
            tbs.extend_from_slice(&(now as u32).to_be_bytes());
            tbs.extend_from_slice(&FUDGE.to_be_bytes());
            let mac = self.signer.sign(&tbs).ok()?;
            let rdata = TSIG::new(
                self.signer.algorithm().clone(),
                now,
                FUDGE,
                mac,
                self.id,
                None,
                Vec::new(),
            );
            Box::new(make_tsig_record(self.signer.signer_name().clone(), rdata))
        };
        self.first = false;
        self.previous_mac = record.data.mac.clone();
        append(&mut response, &record)?;
        Some(response)
    }
}

/// Appends a TSIG record (uncompressed, as section 4.2 requires) and counts it in ARCOUNT.
fn append(message: &mut Vec<u8>, record: &hickory_proto::rr::Record<TSIG>) -> Option<()> {
    if message.len() < 12 {
        return None;
    }
    let mut bytes = Vec::with_capacity(128);
    record.emit(&mut BinEncoder::new(&mut bytes)).ok()?;
    let arcount = u16::from_be_bytes([message[10], message[11]]).checked_add(1)?;
    message[10..12].copy_from_slice(&arcount.to_be_bytes());
    message.extend_from_slice(&bytes);
    Some(())
}

/// A parsed query's TSIG record checked now: `Ok(None)` when it has none, `Ok(Some((session,
/// now)))` when it is verified (sign the answer with the session at that time), `Err` with the
/// NOTAUTH response that is the whole answer when it is not.
pub fn verify(
    keys: &Keys,
    request: &Message,
    query: &[u8],
) -> Result<Option<(Session, u64)>, Vec<u8>> {
    if request.signature.is_none() {
        return Ok(None);
    }
    let now = now();
    match check_parsed(keys, request, query, now) {
        Verdict::Unsigned => Ok(None),
        Verdict::Signed(session) => Ok(Some((session, now))),
        Verdict::Refused(response) => Err(response),
    }
}

/// Checks a query's TSIG record, if it has one, at `now` (seconds since the epoch).
#[cfg(test)]
pub fn check(keys: &Keys, query: &[u8], now: u64) -> Verdict {
    // The common case costs a look at ARCOUNT.
    if query.len() < 12 || query[10..12] == [0, 0] {
        return Verdict::Unsigned;
    }
    match Message::from_vec(query) {
        Ok(request) => check_parsed(keys, &request, query, now),
        Err(_) => Verdict::Unsigned, // the answer path replies FORMERR
    }
}

/// [`check`] of a query already parsed (`request` is `query` decoded).
pub fn check_parsed(keys: &Keys, request: &Message, query: &[u8], now: u64) -> Verdict {
    let Some(tsig) = &request.signature else {
        return Verdict::Unsigned;
    };
    let refuse = |context: TSigResponseContext| -> Verdict {
        let mut response = Message::new(
            request.metadata.id,
            MessageType::Response,
            request.metadata.op_code,
        );
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.metadata.response_code = ResponseCode::NotAuth;
        response.queries = request.queries.clone();
        let signed = response.to_vec().ok().and_then(|mut bytes| {
            let record = context.sign(&bytes).ok()?;
            append(&mut bytes, &record)?;
            Some(bytes)
        });
        match signed {
            Some(bytes) => Verdict::Refused(bytes),
            None => Verdict::Unsigned,
        }
    };
    let id = request.metadata.id;
    let Some(signer) = keys
        .by_name
        .get(&LowerName::new(&tsig.name))
        .filter(|s| *s.algorithm() == tsig.data.algorithm)
    else {
        return refuse(TSigResponseContext::unknown_key(id, now, tsig.name.clone()));
    };
    // hickory computes `time - fudge`: a time before the fudge (1970) cannot be verified
    // without underflowing, and is refused as unverifiable.
    if tsig.data.time < u64::from(tsig.data.fudge) {
        return refuse(TSigResponseContext::bad_signature(id, now, signer.clone()));
    }
    let Ok((request_mac, _, window)) = signer.verify_message_byte(query, None, true) else {
        return refuse(TSigResponseContext::bad_signature(id, now, signer.clone()));
    };
    if !window.contains(&now) && window.end != now {
        return refuse(TSigResponseContext::new(
            id,
            now,
            signer.clone(),
            request_mac,
            Some(TsigError::BadTime),
        ));
    }
    Verdict::Signed(Session {
        signer: signer.clone(),
        id,
        previous_mac: request_mac,
        first: true,
    })
}

/// Seconds since the epoch (TSIG times; SOA serials by Unix time).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::RecordType;

    fn key(name: &str, secret: &[u8]) -> KeySpec {
        KeySpec {
            name: Name::from_ascii(name).unwrap(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret: secret.to_vec(),
        }
    }

    /// A query signed by `spec` at `time`, and the client's signer.
    fn signed_query(spec: &KeySpec, time: u64) -> (Vec<u8>, TSigner) {
        let signer = TSigner::new(
            spec.secret.clone(),
            spec.algorithm.clone(),
            spec.name.clone(),
            FUDGE,
        )
        .unwrap();
        let mut m = Message::new(4321, MessageType::Query, hickory_proto::op::OpCode::Query);
        m.add_query(Query::query(
            Name::from_ascii("example.com.").unwrap(),
            RecordType::SOA,
        ));
        let (record, _) = signer.sign_message(&m, time).unwrap();
        m.signature = Some(record);
        (m.to_vec().unwrap(), signer)
    }

    fn tsig_of(bytes: &[u8]) -> (ResponseCode, TSIG) {
        let m = Message::from_vec(bytes).unwrap();
        (
            m.metadata.response_code,
            m.signature.expect("a TSIG record").data.clone(),
        )
    }

    #[test]
    fn a_verified_query_is_answered_signed_and_the_client_verifies_the_chain() {
        let spec = key("xfr.", b"0123456789abcdef0123456789abcdef");
        let keys = Keys::new(std::slice::from_ref(&spec)).unwrap();
        let now = 1_800_000_000;
        let (query, signer) = signed_query(&spec, now);
        let Verdict::Signed(mut session) = check(&keys, &query, now + 10) else {
            panic!("not verified");
        };
        assert_eq!(session.key(), LowerName::new(&spec.name));
        // Three response messages, as a transfer sends them; the client checks each against
        // the MAC before it (hickory's client side).
        let request_mac = Message::from_vec(&query)
            .unwrap()
            .signature
            .unwrap()
            .data
            .mac
            .clone();
        let mut previous = request_mac;
        for i in 0..3 {
            let mut m = Message::new(
                4321,
                MessageType::Response,
                hickory_proto::op::OpCode::Query,
            );
            m.metadata.authoritative = true;
            let bytes = session.sign(m.to_vec().unwrap(), now + 10 + i).unwrap();
            let (mac, time, _) = signer
                .verify_message_byte(&bytes, Some(&previous), i == 0)
                .unwrap_or_else(|e| panic!("message {i}: {e}"));
            assert_eq!(time, now + 10 + i);
            previous = mac;
        }
    }

    #[test]
    fn unknown_keys_bad_macs_and_stale_times_get_notauth() {
        let spec = key("xfr.", b"0123456789abcdef0123456789abcdef");
        let keys = Keys::new(std::slice::from_ref(&spec)).unwrap();
        let now = 1_800_000_000;
        // A key we do not have: BADKEY, unsigned.
        let (query, _) = signed_query(&key("other.", b"secret-of-someone-else"), now);
        let Verdict::Refused(r) = check(&keys, &query, now) else {
            panic!("an unknown key was accepted");
        };
        let (rcode, tsig) = tsig_of(&r);
        assert_eq!(rcode, ResponseCode::NotAuth);
        assert_eq!(tsig.error, Some(TsigError::BadKey));
        assert!(tsig.mac.is_empty());
        // Our key's name, another secret: BADSIG, unsigned.
        let (query, _) = signed_query(&key("xfr.", b"not the right secret at all....."), now);
        let Verdict::Refused(r) = check(&keys, &query, now) else {
            panic!("a wrong MAC was accepted");
        };
        let (rcode, tsig) = tsig_of(&r);
        assert_eq!(
            (rcode, tsig.error),
            (ResponseCode::NotAuth, Some(TsigError::BadSig))
        );
        assert!(tsig.mac.is_empty());
        // The right key, ten minutes off: BADTIME, signed.
        let (query, _) = signed_query(&spec, now);
        let Verdict::Refused(r) = check(&keys, &query, now + 600) else {
            panic!("a stale query was accepted");
        };
        let (rcode, tsig) = tsig_of(&r);
        assert_eq!(
            (rcode, tsig.error),
            (ResponseCode::NotAuth, Some(TsigError::BadTime))
        );
        assert!(!tsig.mac.is_empty());
        // No keys at all: a signed query still gets BADKEY (never answered as if unsigned).
        let (query, _) = signed_query(&spec, now);
        assert!(matches!(
            check(&Keys::default(), &query, now),
            Verdict::Refused(_)
        ));
        // Unsigned and malformed queries are the answer path's business.
        let mut m = Message::new(1, MessageType::Query, hickory_proto::op::OpCode::Query);
        m.add_query(Query::query(Name::root(), RecordType::NS));
        assert!(matches!(
            check(&keys, &m.to_vec().unwrap(), now),
            Verdict::Unsigned
        ));
        assert!(matches!(check(&keys, &[0; 12], now), Verdict::Unsigned));
        assert!(matches!(
            check(&keys, &[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 7], now),
            Verdict::Unsigned
        ));
    }

    #[test]
    fn keys_are_checked_when_configured() {
        let mut bad = key("k.", b"s");
        bad.algorithm = TsigAlgorithm::HmacMd5;
        assert!(Keys::new(&[bad]).is_err());
        assert!(Keys::new(&[key("k.", b"")]).is_err());
        assert!(Keys::new(&[key("k.", b"a"), key("K.", b"b")]).is_err());
        assert!(format!("{:?}", Keys::new(&[key("k.", b"secret")]).unwrap()).contains("k."));
        assert!(!format!("{:?}", Keys::new(&[key("k.", b"secret")]).unwrap()).contains("secret"));
    }
}
