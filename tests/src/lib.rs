//! Test infrastructure shared by the integration tests (`tests/tests/`), `cargo xtask run` and
//! `cargo xtask bench`.

pub mod api;
pub mod fixtures;
pub mod frame;
pub mod testbed;

pub use testbed::{
    CLIENT_V4, CLIENT_V6, METRICS_ADDR, Process, SERVER_V4, SERVER_V6, Side, Testbed, a_addresses,
    metric,
};
