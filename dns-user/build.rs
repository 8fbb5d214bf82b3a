//! Builds the XDP object (dns-ebpf, bin `dns-xdp`) into OUT_DIR with BTF, using the toolchain
//! that builds this crate (pinned in rust-toolchain.toml), so `cargo build` builds everything.
use anyhow::Context as _;
use aya_build::{Package, Toolchain};
// A build dependency only so cargo rebuilds us when the eBPF crate changes.
use dns_ebpf as _;

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=RUSTUP_TOOLCHAIN");
    if std::env::var_os("CARGO_CFG_FUZZING").is_some() {
        // cargo-fuzz builds with sanitizer flags that an eBPF target cannot take; fuzz targets
        // never load the XDP object, so an empty one stands in.
        let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("dns-xdp");
        std::fs::write(out, [])?;
        return Ok(());
    }
    let toolchain = std::env::var("RUSTUP_TOOLCHAIN")
        .context("RUSTUP_TOOLCHAIN unset: build through rustup (see scripts/bootstrap)")?;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../dns-ebpf");
    aya_build::build_ebpf(
        [Package {
            name: "dns-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        Toolchain::Custom(&toolchain),
    )
}
