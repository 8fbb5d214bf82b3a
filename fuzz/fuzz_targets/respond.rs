//! Any bytes as a query, over UDP and TCP, from IPv4 and IPv6 clients: the answer engine never
//! panics, and whatever it sends parses and carries the query's ID.
#![no_main]

use std::net::IpAddr;
use std::sync::LazyLock;

use dns_user::health::HealthState;
use dns_user::server::answer::{AnswerOptions, Transport, respond};
use dns_user::zone::Catalog;
use libfuzzer_sys::fuzz_target;

/// The embedded default config's zone plus every routing policy of the examples.
static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    let settings = dns_user::config::resolve(None, &Default::default()).expect("default config");
    dns_user::control::import::catalog(&settings).expect("default zone")
});

fuzz_target!(|data: &[u8]| {
    let clients: [IpAddr; 2] = ["192.0.2.2".parse().unwrap(), "2001:db8::2".parse().unwrap()];
    for (transport, client) in [(Transport::Udp, clients[0]), (Transport::Tcp, clients[1])] {
        let options = AnswerOptions::default();
        let Some(response) = respond(
            &CATALOG,
            &HealthState::default(),
            &options,
            data,
            transport,
            client,
        ) else {
            continue;
        };
        let m = hickory_proto::op::Message::from_vec(&response).expect("our response parses");
        assert_eq!(
            m.metadata.id,
            u16::from_be_bytes([data[0], data[1]]),
            "same ID"
        );
        if transport == Transport::Udp {
            assert!(response.len() <= 65_535);
        }
    }
});
