//! dns-user: the daemon of the XDP-accelerated authoritative DNS service.
//!
//! The data path, by folder (README copies this diagram; each module's own zooms in):
//!
//! ```text
//! edges: every input converted once to the one form, zone/records.rs ResourceRecordSet
//!   config.rs [[zone]], zone/file.rs (RFC 1035), --route53    control/api.rs (HTTP), client.rs
//!        │ control/import.rs (only sources that changed)           │ change batches
//!        ▼                                                         ▼
//! control/   mod.rs: a batch validated whole ──> store.rs (redb, fsync) ──> PENDING
//!        │   publisher.rs: one publication at a time ──> INSYNC
//!        ▼ record sets
//! zone/      build.rs (the one road) ──> Zone (mod.rs) ──> Catalog (catalog.rs)
//!        │                      health/ (probes, monitor) ──> HealthState
//!        ▼ Catalog + HealthState
//! publish.rs Published, the served state: XDP maps first, then userspace
//!        ├──> fastpath/  compile.rs (pure) ──> Tables ──> maps.rs (MapWriter) ──> BPF maps
//!        └──> server/    UDP, TCP ──> answer.rs (policy.rs, location.rs), transfer.rs; rrl.rs
//!                        sign.rs: zones signed here, online (signing/: keys, RRSIGs)
//!
//! packet ──> dns-ebpf: gate ─> parse ─> lookup (BPF maps) ─> rrl ─> respond ──> XDP_TX
//!                └── anything else, or not fully understood ──> XDP_PASS ──> kernel ──> server/
//! ```
//!
//! Pure parts (no kernel, no network): [`zone`], [`server::answer`], [`fastpath::compile`],
//! [`policy`], [`config`]. A module imports only from the layers below its own (the test
//! `tests/layers.rs` holds it to this): `text`, `files`, `progress`, `privileges`, `sdnotify`
//! → `policy`,
//! `location`, `rrl`, `dnstap`, `signing` → `health` → `zone` → `fastpath` → `publish` → `server` →
//! `http`, `config`, `route53` → `control`, `metrics` → `daemon`, `cli`, `client`,
//! `takeover`.

pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dnstap;
pub mod fastpath;
pub mod files;
pub mod health;
pub mod http;
pub mod location;
pub mod metrics;
pub mod policy;
pub mod privileges;
pub mod progress;
pub mod publish;
pub mod route53;
pub mod rrl;
pub mod sdnotify;
pub mod server;
pub mod signing;
pub mod takeover;
pub mod text;
pub mod zone;
