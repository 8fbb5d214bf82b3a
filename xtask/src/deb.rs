//! `cargo xtask deb`: the Debian package `dns-user` — the daemon and CLI, a hardened systemd
//! unit running it as the system user `dns-user` with four capabilities, its configuration
//! in /etc/dns-user (a conffile) and its store under /var/lib/dns-user. The package's own
//! files are in `packaging/`; this stages them beside the binary and calls `dpkg-deb`.
//!
//! The package test (`tests/tests/package.rs`) builds its package with this same file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// The package (and its system user, unit, /etc and /var/lib directories).
pub const PACKAGE: &str = "dns-user";

/// What to package and where to put it.
pub struct Options {
    /// The dns-user binary (installed as /usr/bin/dns-user, stripped of debug information).
    pub binary: PathBuf,
    /// The workspace whose `packaging/`, `docs/` and `examples/` go in.
    pub workspace: PathBuf,
    /// The directory the .deb is written to.
    pub out: PathBuf,
}

/// Builds the package; returns the path of the .deb.
pub fn deb(opts: &Options) -> anyhow::Result<PathBuf> {
    let binary = &opts.binary;
    let version = format!("{}-1", env!("CARGO_PKG_VERSION"));
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?;
    let name = format!("{PACKAGE}_{version}_{arch}");
    let stage = opts.out.join(&name);
    if stage.exists() {
        std::fs::remove_dir_all(&stage).with_context(|| format!("clearing {}", stage.display()))?;
    }
    let root = &opts.workspace;
    let packaging = root.join("packaging");
    let place = |from: &Path, to: &str, mode: u32| -> anyhow::Result<()> {
        let dest = stage.join(to);
        std::fs::create_dir_all(dest.parent().expect("a file in a directory"))?;
        std::fs::copy(from, &dest)
            .with_context(|| format!("{} -> {}", from.display(), dest.display()))?;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))?;
        Ok(())
    };
    place(binary, "usr/bin/dns-user", 0o755)?;
    // As dh_strip: debug information stays out of the package.
    let strip = Command::new("strip")
        .arg("--strip-debug")
        .arg(stage.join("usr/bin/dns-user"))
        .status()
        .context("running strip")?;
    if !strip.success() {
        bail!("strip failed ({strip})");
    }
    place(
        &packaging.join("dns-user.service"),
        "lib/systemd/system/dns-user.service",
        0o644,
    )?;
    place(
        &packaging.join("config.toml"),
        "etc/dns-user/config.toml",
        0o640,
    )?;
    // Owned by the package's user from postinst on (dpkg creates it before postinst runs).
    std::fs::create_dir_all(stage.join("var/lib/dns-user"))?;
    let doc = "usr/share/doc/dns-user";
    place(&root.join("README.md"), &format!("{doc}/README.md"), 0o644)?;
    place(
        &root.join("examples/default.toml"),
        &format!("{doc}/default.toml"),
        0o644,
    )?;
    for file in [
        "operations.md",
        "security.md",
        "route53-api.md",
        "grafana-dashboard.json",
    ] {
        place(
            &root.join("docs").join(file),
            &format!("{doc}/{file}"),
            0o644,
        )?;
    }
    for script in ["postinst", "prerm", "postrm"] {
        place(&packaging.join(script), &format!("DEBIAN/{script}"), 0o755)?;
    }
    std::fs::write(
        stage.join("DEBIAN/conffiles"),
        "/etc/dns-user/config.toml\n",
    )?;
    std::fs::write(
        stage.join(format!("{doc}/copyright")),
        format!(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: dns-xdp\n\nFiles: *\nLicense: {}\n",
            env!("CARGO_PKG_LICENSE")
        ),
    )?;
    let control = format!(
        "Package: {PACKAGE}\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: dns-xdp developers <dns-xdp@localhost>\n\
         Installed-Size: {}\n\
         Depends: libc6 (>= {}), adduser, init-system-helpers (>= 1.52)\n\
         Section: net\n\
         Priority: optional\n\
         Description: XDP-accelerated authoritative DNS server with Route 53's routing policies\n \
         An authoritative DNS server whose XDP program answers A/AAAA queries of every\n \
         Route 53 routing policy from BPF maps, with health checks, Route 53's REST API\n \
         (aws-cli, boto3, octoDNS) and a complete userspace server behind it.\n",
        installed_kib(&stage)?,
        glibc_needed(binary)?,
    );
    std::fs::write(stage.join("DEBIAN/control"), control)?;
    let deb = opts.out.join(format!("{name}.deb"));
    let status = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zxz", "--build"])
        .arg(&stage)
        .arg(&deb)
        .status()
        .context("running dpkg-deb")?;
    if !status.success() {
        bail!("dpkg-deb failed ({status})");
    }
    std::fs::remove_dir_all(&stage)?;
    Ok(deb)
}

/// A command's trimmed standard output; its failure is an error.
fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// The newest GLIBC_x.y symbol version the binary links against (its libc6 dependency).
fn glibc_needed(binary: &Path) -> anyhow::Result<String> {
    let symbols = output(Command::new("objdump").arg("-T").arg(binary))?;
    let newest = symbols
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>());
            match (parts.next(), parts.next()) {
                (Some(Ok(major)), Some(Ok(minor))) => Some((major, minor)),
                _ => None,
            }
        })
        .max()
        .context("no GLIBC_ symbol versions in the binary")?;
    Ok(format!("{}.{}", newest.0, newest.1))
}

/// The staged files' size in KiB (dpkg's Installed-Size).
fn installed_kib(stage: &Path) -> anyhow::Result<u64> {
    fn walk(dir: &Path, total: &mut u64) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if entry.file_name() == "DEBIAN" {
                continue;
            }
            if meta.is_dir() {
                walk(&entry.path(), total)?;
            } else {
                *total += meta.len().div_ceil(1024);
            }
        }
        Ok(())
    }
    let mut total = 0;
    walk(stage, &mut total)?;
    Ok(total)
}
