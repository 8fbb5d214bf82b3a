//! `cargo xtask fuzz`: builds the cargo-fuzz targets (fuzz/, a workspace of its own, built with
//! AddressSanitizer) and runs each for a bounded time on a scratch copy of its committed seed
//! corpus plus its regression inputs (fuzz/regressions/<target>: every crash found, kept so it
//! is re-run on every run). A crash fails the run; libFuzzer saves the input under
//! fuzz/artifacts/<target>/.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::workspace;

/// The targets (fuzz/fuzz_targets/<name>.rs).
pub const TARGETS: &[&str] = &[
    "respond",
    "zone_file",
    "config",
    "change_batch",
    "rdata_value",
];

fn cargo_fuzz(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(env!("CARGO"))
        .arg("fuzz")
        .args(args)
        .current_dir(dir)
        .status()
        .context("running cargo fuzz (installed by scripts/bootstrap)")?;
    if !status.success() {
        bail!("cargo fuzz {} failed ({status})", args.join(" "));
    }
    Ok(())
}

pub fn fuzz(seconds: u32) -> anyhow::Result<()> {
    let dir = workspace().join("fuzz");
    cargo_fuzz(&dir, &["build", "-O"])?;
    for target in TARGETS {
        let scratch =
            std::env::temp_dir().join(format!("dns-fuzz-{target}-{}", std::process::id()));
        std::fs::create_dir_all(&scratch)?;
        for entry in std::fs::read_dir(dir.join("corpus").join(target))? {
            let entry = entry?;
            std::fs::copy(entry.path(), scratch.join(entry.file_name()))?;
        }
        let regressions = dir.join("regressions").join(target);
        std::fs::create_dir_all(&regressions)?;
        let max_time = format!("-max_total_time={seconds}");
        println!("fuzz: {target} for {seconds} s");
        let outcome = cargo_fuzz(
            &dir,
            &[
                "run",
                "-O",
                target,
                scratch.to_str().context("non-UTF-8 temp dir")?,
                regressions.to_str().context("non-UTF-8 path")?,
                "--",
                &max_time,
                "-timeout=10",
                "-rss_limit_mb=2048",
                "-print_final_stats=0",
                "-print_funcs=0",
            ],
        );
        let _ = std::fs::remove_dir_all(&scratch);
        outcome.with_context(|| format!("fuzz target {target} found a failure"))?;
    }
    Ok(())
}
