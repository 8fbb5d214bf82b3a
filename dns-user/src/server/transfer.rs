//! Zone transfer (AXFR, RFC 5936; IXFR, RFC 1995) over TCP, to the addresses in
//! `server.transfer_allow` only; everyone else, and every transfer over UDP, gets REFUSED (see
//! `answer.rs`). An IXFR gets the changes since the client's serial from the zone's journal
//! (API changes with a serial policy that moves the serial), or the whole zone in AXFR form
//! when the journal does not reach back that far (RFC 1995 section 4).
//!
//! A transfer carries the zone's data as a secondary server can serve it: its RRsets (aliases
//! as the records they answer with), SOA first and last. Routing-policy groups have no zone
//! file form (Route 53 has no zone transfer at all) and are left out, as `dns-user export`
//! leaves them out.

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{LowerName, RecordType};
use hickory_proto::serialize::binary::BinEncodable as _;
use ipnet::IpNet;

use crate::server::tsig;
use crate::zone::Catalog;

/// Largest message of a transfer stream (well under TCP's 65,535, as servers do).
const MAX_MESSAGE: usize = 16_384;

/// Who may transfer zones: client networks, and the TSIG keys one of which must sign the
/// request (none: unsigned requests from those networks too).
#[derive(Clone, Debug, Default)]
pub struct TransferAcl {
    pub networks: Vec<IpNet>,
    pub keys: Vec<LowerName>,
}

/// If `query` asks for a zone transfer that `client` may have: the response messages, in order
/// (signed message by message when the request was). `None`: not a transfer request from an
/// allowed client with an allowed key (answer it as any query: REFUSED).
pub fn respond(
    catalog: &Catalog,
    query: &[u8],
    client: IpAddr,
    acl: &TransferAcl,
    keys: &tsig::Keys,
) -> Option<Vec<Vec<u8>>> {
    if !acl.networks.iter().any(|net| net.contains(&client)) {
        return None;
    }
    let request = Message::from_vec(query).ok()?;
    let session = match tsig::verify(keys, &request, query) {
        Ok(session) => session,
        Err(refused) => return Some(vec![refused]),
    };
    let key = session.as_ref().map(|(s, _)| s.key());
    if !acl.keys.is_empty() && !key.is_some_and(|k| acl.keys.contains(&k)) {
        return None;
    }
    let messages = transfer(catalog, &request)?;
    match session {
        None => Some(messages),
        Some((mut s, now)) => messages.into_iter().map(|m| s.sign(m, now)).collect(),
    }
}

/// The transfer's messages for a parsed request, unsigned.
fn transfer(catalog: &Catalog, request: &Message) -> Option<Vec<Vec<u8>>> {
    let question = request.queries.first()?;
    if request.metadata.message_type != MessageType::Query
        || request.metadata.op_code != OpCode::Query
        || request.queries.len() != 1
        || !matches!(question.query_type(), RecordType::AXFR | RecordType::IXFR)
    {
        return None;
    }
    let mut first = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    first.add_query(question.clone());
    let Some(zone) = catalog.zone(&LowerName::new(question.name())) else {
        // RFC 5936 section 2.2.1: not authoritative for that zone.
        first.metadata.response_code = ResponseCode::NotAuth;
        return Some(vec![first.to_vec().ok()?]);
    };
    first.metadata.authoritative = true;
    let soa = zone.soa_record();
    // IXFR (RFC 1995 section 4): the client's serial is in the SOA of its authority section.
    let client_serial = (question.query_type() == RecordType::IXFR)
        .then(|| {
            request.authorities.iter().find_map(|r| match &r.data {
                hickory_proto::rr::RData::SOA(s) => Some(s.serial),
                _ => None,
            })
        })
        .flatten();
    let mut records = vec![soa.clone()];
    match client_serial.map(|s| (s, zone.changes_since(s))) {
        // Up to date: the current SOA alone.
        Some((s, _)) if s == zone.serial() => {}
        // The changes since, each as the old SOA, what went, the new SOA, what came.
        Some((_, Some(deltas))) => {
            for d in deltas {
                records.push(d.old_soa.clone());
                records.extend(d.removed.iter().cloned());
                records.push(d.new_soa.clone());
                records.extend(d.added.iter().cloned());
            }
            records.push(soa);
        }
        // AXFR, or an IXFR from a serial the journal does not reach: the whole zone.
        _ => {
            let apex = LowerName::new(zone.origin());
            let mut names: Vec<&LowerName> = zone.nodes().map(|(n, _)| n).collect();
            names.sort_by(|a, b| (**a != apex, *a).cmp(&(**b != apex, *b)));
            for name in names {
                records.extend(zone.transfer_records(name));
            }
            records.push(soa);
        }
    }

    let mut out = Vec::new();
    let mut message = first;
    let mut size = message.to_vec().ok()?.len();
    for record in records {
        let record_len = record.to_bytes().map_or(512, |b| b.len());
        if !message.answers.is_empty() && size + record_len > MAX_MESSAGE {
            out.push(message.to_vec().ok()?);
            // RFC 5936 section 2.2.1: the question only in the first message.
            message = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
            message.metadata.authoritative = true;
            size = message.to_vec().ok()?.len();
        }
        size += record_len;
        message.add_answer(record);
    }
    out.push(message.to_vec().ok()?);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Name;
    use hickory_proto::rr::Record;

    fn catalog(names: usize) -> Catalog {
        let mut text = String::from(
            "$ORIGIN example.com.\n@ 3600 IN SOA ns1 hostmaster 1 7200 900 1209600 60\n@ 3600 IN NS ns1\nns1 3600 IN A 192.0.2.53\n",
        );
        for i in 0..names {
            text.push_str(&format!("host{i} 300 IN A 198.51.100.{}\n", i % 250));
        }
        let origin = Name::from_ascii("example.com.").unwrap();
        let path = std::path::Path::new("t.zone");
        let records = crate::zone::parse_zone_text(&origin, &text, path).unwrap();
        let zone =
            crate::zone::Zone::from_records(origin, records, Vec::new(), Vec::new(), path).unwrap();
        Catalog::new([zone])
    }

    fn axfr() -> Vec<u8> {
        crate::server::answer::build_query(
            7,
            &Name::from_ascii("example.com.").unwrap(),
            RecordType::AXFR,
            None,
        )
    }

    #[test]
    fn a_large_zone_streams_in_several_messages_soa_first_and_last() {
        let client: IpAddr = "192.0.2.9".parse().unwrap();
        let messages = respond(&catalog(3000), &axfr(), client, &acl(&[]), &keys()).unwrap();
        assert!(messages.len() > 3, "{} messages", messages.len());
        let parsed: Vec<Message> = messages
            .iter()
            .map(|m| {
                assert!(m.len() <= MAX_MESSAGE + 512);
                Message::from_vec(m).unwrap()
            })
            .collect();
        assert_eq!(
            parsed[0].queries.len(),
            1,
            "the question in the first message"
        );
        assert!(parsed[1..].iter().all(|m| m.queries.is_empty()));
        assert!(
            parsed
                .iter()
                .all(|m| m.metadata.id == 7 && m.metadata.authoritative)
        );
        let records: Vec<&Record> = parsed.iter().flat_map(|m| m.answers.iter()).collect();
        assert_eq!(records.len(), 3000 + 2 + 2, "every record, SOA twice");
        assert_eq!(records[0].record_type(), RecordType::SOA);
        assert_eq!(records.last().unwrap().record_type(), RecordType::SOA);
    }

    fn zone(serial: u32, hosts: &[(&str, &str)]) -> crate::zone::Zone {
        let mut text = format!(
            "$ORIGIN example.com.\n@ 3600 IN SOA ns1 hostmaster {serial} 7200 900 1209600 60\n@ 3600 IN NS ns1\nns1 3600 IN A 192.0.2.53\n"
        );
        for (name, addr) in hosts {
            text.push_str(&format!("{name} 300 IN A {addr}\n"));
        }
        let origin = Name::from_ascii("example.com.").unwrap();
        let path = std::path::Path::new("t.zone");
        let records = crate::zone::parse_zone_text(&origin, &text, path).unwrap();
        crate::zone::Zone::from_records(origin, records, Vec::new(), Vec::new(), path).unwrap()
    }

    fn ixfr(serial: u32) -> Vec<u8> {
        let origin = Name::from_ascii("example.com.").unwrap();
        let mut m = Message::new(8, MessageType::Query, OpCode::Query);
        m.add_query(hickory_proto::op::Query::query(
            origin.clone(),
            RecordType::IXFR,
        ));
        let soa = hickory_proto::rr::rdata::SOA::new(
            Name::from_ascii("ns1.example.com.").unwrap(),
            Name::from_ascii("hostmaster.example.com.").unwrap(),
            serial,
            7200,
            900,
            1209600,
            60,
        );
        m.add_authority(Record::from_rdata(
            origin,
            3600,
            hickory_proto::rr::RData::SOA(soa),
        ));
        m.to_vec().unwrap()
    }

    fn answers(c: &Catalog, query: &[u8]) -> Vec<String> {
        let client: IpAddr = "192.0.2.9".parse().unwrap();
        respond(c, query, client, &acl(&[]), &keys())
            .unwrap()
            .iter()
            .flat_map(|m| Message::from_vec(m).unwrap().answers)
            .map(|r| match &r.data {
                hickory_proto::rr::RData::SOA(s) => format!("SOA {}", s.serial),
                d => format!("{} {d}", r.name),
            })
            .collect()
    }

    #[test]
    fn ixfr_sends_the_changes_since_the_clients_serial_from_the_journal() {
        let changed = |names: &[&str]| -> std::collections::HashSet<LowerName> {
            names
                .iter()
                .map(|n| LowerName::new(&Name::from_ascii(n).unwrap()))
                .collect()
        };
        let v1 = zone(1, &[("a", "192.0.2.1"), ("b", "192.0.2.2")]);
        let v2 = zone(2, &[("a", "192.0.2.1"), ("b", "192.0.2.20")])
            .with_history(&v1, &changed(&["b.example.com."]));
        let v3 = zone(3, &[("b", "192.0.2.20"), ("c", "192.0.2.3")])
            .with_history(&v2, &changed(&["a.example.com.", "c.example.com."]));
        let c = Catalog::new([v3]);
        // From 1: both changes, each as old SOA, removed, new SOA, added.
        assert_eq!(
            answers(&c, &ixfr(1)),
            [
                "SOA 3",
                "SOA 1",
                "b.example.com. 192.0.2.2",
                "SOA 2",
                "b.example.com. 192.0.2.20",
                "SOA 2",
                "a.example.com. 192.0.2.1",
                "SOA 3",
                "c.example.com. 192.0.2.3",
                "SOA 3",
            ]
        );
        // From 2: the last change; up to date: the SOA alone.
        assert_eq!(answers(&c, &ixfr(2)).len(), 6);
        assert_eq!(answers(&c, &ixfr(3)), ["SOA 3"]);
        // A serial the journal does not reach: the whole zone, as AXFR.
        let whole = answers(&c, &ixfr(7));
        assert_eq!(whole.first().map(String::as_str), Some("SOA 3"));
        assert_eq!(whole.last().map(String::as_str), Some("SOA 3"));
        assert!(whole.iter().any(|r| r.contains("ns1.example.com.")));
        // A change that keeps the serial cannot be told apart: the journal starts again.
        let same = zone(3, &[("c", "192.0.2.3")])
            .with_history(c.zones().next().unwrap(), &changed(&["b.example.com."]));
        assert!(same.changes_since(1).is_none() && same.changes_since(2).is_none());
    }

    #[test]
    fn only_allowed_clients_get_a_transfer() {
        let outsider: IpAddr = "203.0.113.9".parse().unwrap();
        assert!(respond(&catalog(3), &axfr(), outsider, &acl(&[]), &keys()).is_none());
        assert!(
            respond(
                &catalog(3),
                &axfr(),
                outsider,
                &TransferAcl::default(),
                &keys()
            )
            .is_none()
        );
    }

    const SECRET: &[u8] = b"transfer-secret-transfer-secret";

    fn keys() -> tsig::Keys {
        tsig::Keys::new(&[tsig::KeySpec {
            name: Name::from_ascii("xfr.").unwrap(),
            algorithm: hickory_proto::rr::rdata::tsig::TsigAlgorithm::HmacSha256,
            secret: SECRET.to_vec(),
        }])
        .unwrap()
    }

    fn acl(keys: &[&str]) -> TransferAcl {
        TransferAcl {
            networks: vec!["192.0.2.0/24".parse().unwrap()],
            keys: keys
                .iter()
                .map(|k| LowerName::new(&Name::from_ascii(k).unwrap()))
                .collect(),
        }
    }

    #[test]
    fn a_transfer_with_a_required_key_is_signed_message_by_message() {
        use hickory_proto::rr::TSigner;
        let client: IpAddr = "192.0.2.9".parse().unwrap();
        // Unsigned: not a transfer for this client (the answer path refuses it).
        assert!(respond(&catalog(3000), &axfr(), client, &acl(&["xfr."]), &keys()).is_none());
        let signer = TSigner::new(
            SECRET.to_vec(),
            hickory_proto::rr::rdata::tsig::TsigAlgorithm::HmacSha256,
            Name::from_ascii("xfr.").unwrap(),
            tsig::FUDGE,
        )
        .unwrap();
        let mut request = Message::from_vec(&axfr()).unwrap();
        let (record, _) = signer.sign_message(&request, tsig::now()).unwrap();
        let mut previous = record.data.mac.clone();
        request.signature = Some(record);
        let query = request.to_vec().unwrap();
        // Signed with a key the ACL does not name: refused too.
        assert!(respond(&catalog(3), &query, client, &acl(&["other."]), &keys()).is_none());
        let messages = respond(&catalog(3000), &query, client, &acl(&["xfr."]), &keys()).unwrap();
        assert!(messages.len() > 3);
        for (i, m) in messages.iter().enumerate() {
            let (mac, _, _) = signer
                .verify_message_byte(m, Some(&previous), i == 0)
                .unwrap_or_else(|e| panic!("message {i}: {e}"));
            previous = mac;
        }
    }
}
