//! Zones signed here: the fast path's cost of a DO=1 hit beside a DO=0 hit (BPF_PROG_TEST_RUN,
//! the shared fixture zone signed with the production signer), and what signing a zone of the
//! bench's size costs: signatures per second and the signature cache's memory.

use std::sync::Arc;
use std::time::Instant;

use dns_common::{PROGRAM_NAME, TYPE_A};
use dns_tests::fixtures::q_edns;
use dns_tests::frame::{Frame, catalog};
use dns_user::fastpath::compile::compile;
use dns_user::fastpath::maps::MapWriter;
use dns_user::fastpath::xdp::{self, LoadOptions};
use dns_user::signing::{KeyMaterial, Signer, keys};

use super::policies::{RUNS, mean_tx_ns};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, RecordType};

const DO: u16 = 0x8000;

fn signer(apex: &str) -> anyhow::Result<Signer> {
    let key = || -> anyhow::Result<KeyMaterial> {
        Ok(KeyMaterial {
            algorithm: keys::ECDSAP256SHA256,
            pkcs8: keys::generate(keys::ECDSAP256SHA256)?,
        })
    };
    Ok(Signer::new(
        Name::from_ascii(apex)?,
        &[key()?],
        &key()?,
        &[],
        3_600,
    )?)
}

/// BPF_PROG_TEST_RUN ns/run of an A hit in a zone signed here, without and with DO.
pub fn prog_test_run() -> anyhow::Result<Vec<(String, f64)>> {
    let catalog = catalog().with_signers([Arc::new(signer("example.com.")?)]);
    let mut ebpf = xdp::load(&LoadOptions {
        max_entries: 1024,
        ..Default::default()
    })?;
    let mut writer = MapWriter::new(&mut ebpf, 1024)?;
    writer.install(&compile(&catalog, &dns_user::health::HealthState::default()).0)?;
    writer.set_enabled(true)?;
    let prog = xdp::program(&mut ebpf, PROGRAM_NAME)?;
    let frame = Frame::query(false);
    let mut out = vec![0u8; 4096];
    let mut rows = Vec::new();
    for (label, flags) in [("DO=0", 0), ("DO=1, the RRSIG from the entry", DO)] {
        let input = frame.build(&q_edns("www.example.com", TYPE_A, 1232, flags, &[]));
        rows.push((
            format!("zone signed here, A hit, {label} -> XDP_TX (repeat 1, mean of {RUNS})"),
            mean_tx_ns(prog, &input, &mut out, label)?,
        ));
    }
    Ok(rows)
}

/// What signing `names` A RRsets (one per name) cost.
pub struct Signing {
    pub names: usize,
    pub seconds: f64,
    /// Growth of this process's resident memory while the signatures were made and cached.
    pub cache_mib: f64,
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |pages| pages * 4096.0 / (1024.0 * 1024.0))
}

/// Signs `names` distinct A RRsets with the production signer, on one core, as enabling
/// DNSSEC on a zone of that size does (the compiler signs every A/AAAA RRset for XDP).
pub fn signing(names: usize) -> anyhow::Result<Signing> {
    let signer = signer("bench.test.")?;
    let now = dns_user::signing::unix_now();
    let before = rss_mib();
    let started = Instant::now();
    for i in 0..names {
        let owner = Name::from_ascii(format!("n{i}.bench.test."))?;
        let set = [RData::A(A::from(std::net::Ipv4Addr::from(
            0x0a00_0000u32 + i as u32,
        )))];
        anyhow::ensure!(
            !signer
                .sign(&owner, RecordType::A, 300, &set, now)
                .is_empty(),
            "no signature"
        );
    }
    Ok(Signing {
        names,
        seconds: started.elapsed().as_secs_f64(),
        cache_mib: (rss_mib() - before).max(0.0),
    })
}
