//! NOTIFY (RFC 1996): when a zone's SOA serial changes, its secondaries (`server.notify`)
//! are told at once, so they transfer it (IXFR) instead of waiting for their refresh timer.
//! Each secondary is asked until it answers — five tries, a second apart (section 3.6) — on a
//! thread of its own, and the messages are signed with `server.notify_key` when one is set.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{LowerName, Name, Record, RecordType, TSigner};

use crate::server::tsig;
use crate::zone::Catalog;

/// Tries per secondary and change.
const TRIES: u32 = 5;
/// How long each try waits for the answer.
const WAIT: Duration = Duration::from_secs(1);

/// Tells the secondaries about new serials.
pub struct Notifier {
    tx: Mutex<Sender<(Name, Record)>>,
    /// The serial each zone was last notified (or first seen) with.
    last: Mutex<HashMap<LowerName, u32>>,
}

impl Notifier {
    /// Starts the sending thread; `catalog` is what is served now (not notified).
    pub fn start(
        targets: Vec<SocketAddr>,
        key: Option<&tsig::KeySpec>,
        catalog: &Catalog,
    ) -> Result<Notifier, tsig::TsigKeyError> {
        let signer = match key {
            Some(k) => Some(
                TSigner::new(
                    k.secret.clone(),
                    k.algorithm.clone(),
                    k.name.clone(),
                    tsig::FUDGE,
                )
                .map_err(|_| tsig::TsigKeyError::Algorithm {
                    name: k.name.to_string(),
                    algorithm: k.algorithm.to_name().to_string(),
                })?,
            ),
            None => None,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("dns-notify".into())
            .spawn(move || send_loop(&rx, &targets, signer.as_ref()))
            .map_err(|_| tsig::TsigKeyError::Empty("the NOTIFY thread".into()))?;
        let last = catalog
            .zones()
            .map(|z| (LowerName::new(z.origin()), z.serial()))
            .collect();
        Ok(Notifier {
            tx: Mutex::new(tx),
            last: Mutex::new(last),
        })
    }

    /// After a publication: every zone whose serial moved is notified.
    pub fn published(&self, catalog: &Catalog) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        for zone in catalog.zones() {
            let serial = zone.serial();
            let name = LowerName::new(zone.origin());
            if last.insert(name, serial) != Some(serial) {
                let _ = tx.send((zone.origin().clone(), zone.soa_record()));
            }
        }
    }
}

fn send_loop(rx: &Receiver<(Name, Record)>, targets: &[SocketAddr], signer: Option<&TSigner>) {
    while let Ok((zone, soa)) = rx.recv() {
        for target in targets {
            match notify(*target, &zone, &soa, signer) {
                Ok(()) => tracing::info!("NOTIFY {zone} to {target}: acknowledged"),
                Err(e) => tracing::warn!("NOTIFY {zone} to {target}: {e}"),
            }
        }
    }
}

/// The NOTIFY message for `zone`: its SOA in the answer section (section 3.7), signed when
/// there is a key.
pub fn message(id: u16, zone: &Name, soa: &Record, signer: Option<&TSigner>) -> Option<Vec<u8>> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    m.add_query(Query::query(zone.clone(), RecordType::SOA));
    m.add_answer(soa.clone());
    if let Some(s) = signer {
        let (record, _) = s.sign_message(&m, tsig::now()).ok()?;
        m.signature = Some(record);
    }
    m.to_vec().ok()
}

/// Sends a NOTIFY until the secondary answers it.
fn notify(
    target: SocketAddr,
    zone: &Name,
    soa: &Record,
    signer: Option<&TSigner>,
) -> Result<(), String> {
    let local: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).map_err(|e| e.to_string())?;
    socket.connect(target).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(WAIT))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    let mut last = String::from("no answer");
    for _ in 0..TRIES {
        let id: u16 = rand_id();
        let query = message(id, zone, soa, signer).ok_or("encoding the message")?;
        if let Err(e) = socket.send(&query) {
            last = e.to_string();
            std::thread::sleep(WAIT);
            continue;
        }
        let deadline = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < deadline {
            let Ok(n) = socket.recv(&mut buf) else { break };
            let Ok(reply) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            if reply.metadata.id != id
                || reply.metadata.message_type != MessageType::Response
                || reply.metadata.op_code != OpCode::Notify
            {
                continue;
            }
            return match reply.metadata.response_code {
                ResponseCode::NoError => Ok(()),
                rcode => Err(format!("answered {rcode}")),
            };
        }
    }
    Err(format!("{last} after {TRIES} tries"))
}

fn rand_id() -> u16 {
    let mut b = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u16::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notify_is_an_authoritative_notify_with_the_soa_and_signed_with_a_key() {
        let zone = Name::from_ascii("example.com.").unwrap();
        let soa = Record::from_rdata(
            zone.clone(),
            3600,
            hickory_proto::rr::RData::SOA(hickory_proto::rr::rdata::SOA::new(
                Name::from_ascii("ns1.example.com.").unwrap(),
                Name::from_ascii("hostmaster.example.com.").unwrap(),
                7,
                7200,
                900,
                1209600,
                60,
            )),
        );
        let plain = Message::from_vec(&message(9, &zone, &soa, None).unwrap()).unwrap();
        assert_eq!(plain.metadata.op_code, OpCode::Notify);
        assert!(plain.metadata.authoritative);
        assert_eq!(plain.queries[0].query_type(), RecordType::SOA);
        assert_eq!(plain.answers, vec![soa.clone()]);
        assert!(plain.signature.is_none());
        let spec = tsig::KeySpec {
            name: Name::from_ascii("xfr.").unwrap(),
            algorithm: hickory_proto::rr::rdata::tsig::TsigAlgorithm::HmacSha256,
            secret: b"0123456789abcdef".to_vec(),
        };
        let signer = TSigner::new(
            spec.secret.clone(),
            spec.algorithm.clone(),
            spec.name.clone(),
            300,
        )
        .unwrap();
        let signed = message(9, &zone, &soa, Some(&signer)).unwrap();
        // What a secondary holding the key sees: a verified NOTIFY.
        let keys = tsig::Keys::new(&[spec]).unwrap();
        assert!(matches!(
            tsig::check(&keys, &signed, tsig::now()),
            tsig::Verdict::Signed(_)
        ));
    }
}
