//! dns-user: the daemon of the XDP-accelerated authoritative DNS service.
//!
//! ```text
//!  zone files, [[zone.record]], --route53 ──> zone_record_sets ──import──┐  (ResourceRecordSet:
//!  HTTP API (api) ──change──> control ─────────────────────────> store (redb, fsync)  the one form)
//!  record sets ──> build_zone (the one road; check-config and export take it too)
//!                      └──> zone ──> answer::Catalog ──┬──> server (UDP/TCP) ──> answer::respond
//!                                                      └──> compile ──> maps::MapWriter ──> BPF maps
//!  packet ──> XDP (dns-ebpf) ──hit──> XDP_TX
//!                 └──────────miss/other──> XDP_PASS ──> kernel stack ──> server
//! ```
//!
//! Pure parts (no kernel, no network): [`zone`], [`answer`], [`compile`], [`config`],
//! [`policy`], [`route53`].

pub mod cli;
pub mod client;
pub mod config;
pub mod control;
pub mod daemon;
pub mod fastpath;
pub mod files;
pub mod health;
pub mod http;
pub mod location;
pub mod metrics;
pub mod policy;
pub mod publish;
pub mod server;
pub mod text;
pub mod zone;
