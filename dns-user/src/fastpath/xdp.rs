//! Loading the XDP object and attaching it to interfaces.
//!
//! The object is built by this crate's build.rs (aya-build) and embedded in the binary.

use std::path::Path;

use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::xdp::{XdpLink, XdpLinkId};
use aya::programs::{ProgramError, Xdp, XdpMode};
use aya::{Ebpf, EbpfError, EbpfLoader};
use dns_common::{
    ANSWER_MAPS, GLOBAL_DNS_PORT, GLOBAL_EDNS_UDP_SIZE, GLOBAL_FIXED_DRAW, GLOBAL_GROW_AT_HEAD,
    GLOBAL_HASH_MASK, GLOBAL_RRL_BURST_NS, GLOBAL_RRL_INTERVAL_NS, GLOBAL_RRL_SLIP,
    GLOBAL_TAP_SAMPLE, PASS_PROGRAM_NAME, PROGRAM_NAME, VARIANT_MAPS,
};

use crate::fastpath::pins;

/// The eBPF object (bpfel, with BTF).
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dns-xdp"));

/// How the program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    /// Driver (native) mode.
    Native,
    /// Generic (SKB) mode: works on every interface, slower.
    Skb,
    /// Do not attach: userspace answers everything.
    Off,
}

impl AttachMode {
    fn flags(self) -> XdpMode {
        match self {
            AttachMode::Native => XdpMode::Driver,
            AttachMode::Skb | AttachMode::Off => XdpMode::Skb,
        }
    }

    /// Lower-case name, as in the config.
    pub fn name(self) -> &'static str {
        match self {
            AttachMode::Native => "native",
            AttachMode::Skb => "skb",
            AttachMode::Off => "off",
        }
    }
}

/// Loader errors.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error("loading the eBPF object failed: {0}")]
    Load(#[from] EbpfError),
    #[error("the eBPF object has no program {0}")]
    MissingProgram(&'static str),
    #[error("XDP program {program}: {source}")]
    Program {
        program: &'static str,
        source: ProgramError,
    },
    #[error("pinning the XDP link of {iface}: {reason}")]
    Pin { iface: String, reason: String },
    #[error("attaching XDP to interface {iface} in {mode} mode failed: {source}")]
    Attach {
        iface: String,
        mode: &'static str,
        source: ProgramError,
    },
}

/// Load-time parameters (globals and map sizes).
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    pub port: u16,
    pub edns_udp_size: u16,
    pub max_entries: u32,
    /// Capacity of each routing-policy variant map buffer; `None`: `max_entries`.
    pub max_variants: Option<u32>,
    /// Test hook: make every growing response take the grow-at-head path.
    pub grow_at_head: bool,
    /// Test hook: `Some(d)` makes every random slot choice draw `d` (production: `None`).
    pub fixed_draw: Option<u32>,
    /// Test hook: the mask on the answer keys' name hash (production: all ones), the same as
    /// `compile::set_key_hash_mask`'s.
    pub hash_mask: u64,
    /// Response rate limiting; `None` = off.
    pub rrl: Option<crate::rrl::RrlConfig>,
    /// dnstap: one answer in this many is copied to the TAP ring buffer; 0 = none.
    pub tap_sample: u32,
}

impl Default for LoadOptions {
    /// Port 53, a 1232-byte EDNS payload, the default map sizes, no test hooks, no RRL.
    fn default() -> Self {
        Self {
            port: 53,
            edns_udp_size: 1232,
            max_entries: dns_common::DEFAULT_MAX_ENTRIES,
            max_variants: None,
            grow_at_head: false,
            fixed_draw: None,
            hash_mask: u64::MAX,
            rrl: None,
            tap_sample: 0,
        }
    }
}

/// Loads the object and the `dns_xdp` program into the kernel (verifier included), not attached.
pub fn load(options: &LoadOptions) -> Result<Ebpf, XdpError> {
    load_with(options, None)
}

/// As [`load`], with the maps a restart keeps ([`pins::pinned_maps`]) pinned in `dir`: a map
/// already pinned there is used as it is (a daemon that is gone filled it), the others are
/// made and pinned. A pinned map that does not fit (another `max_entries`) fails the load
/// with [`aya::maps::MapError::IncompatiblePinnedMap`].
pub fn load_pinned(options: &LoadOptions, dir: &Path) -> Result<Ebpf, XdpError> {
    load_with(options, Some(dir))
}

/// True if `error` is [`load_pinned`] finding a pinned map that does not fit.
pub fn is_incompatible_pin(error: &XdpError) -> bool {
    matches!(
        error,
        XdpError::Load(EbpfError::MapError(
            aya::maps::MapError::IncompatiblePinnedMap { .. }
        ))
    )
}

fn load_with(options: &LoadOptions, pins: Option<&Path>) -> Result<Ebpf, XdpError> {
    let grow_at_head = u8::from(options.grow_at_head);
    let mut loader = EbpfLoader::new();
    loader
        .override_global(GLOBAL_DNS_PORT, &options.port, true)
        .override_global(GLOBAL_EDNS_UDP_SIZE, &options.edns_udp_size, true)
        .override_global(GLOBAL_GROW_AT_HEAD, &grow_at_head, true);
    let fixed_draw = options.fixed_draw.map_or(0, |d| d.wrapping_add(1));
    loader
        .override_global(GLOBAL_FIXED_DRAW, &fixed_draw, true)
        .override_global(GLOBAL_HASH_MASK, &options.hash_mask, true);
    let (interval, burst, slip) = options.rrl.map_or((0u64, 0u64, 0u32), |r| {
        (r.interval_ns(), r.burst_ns(), r.slip)
    });
    loader
        .override_global(GLOBAL_RRL_INTERVAL_NS, &interval, true)
        .override_global(GLOBAL_RRL_BURST_NS, &burst, true)
        .override_global(GLOBAL_RRL_SLIP, &slip, true)
        .override_global(GLOBAL_TAP_SAMPLE, &options.tap_sample, true);
    for map in ANSWER_MAPS {
        loader.map_max_entries(map, options.max_entries);
    }
    for map in VARIANT_MAPS {
        loader.map_max_entries(map, options.max_variants.unwrap_or(options.max_entries));
    }
    if let Some(dir) = pins {
        for map in pins::pinned_maps() {
            loader.map_pin_path(map, dir.join(map));
        }
    }
    let mut ebpf = loader.load(OBJECT)?;
    load_program(&mut ebpf, PROGRAM_NAME)?;
    Ok(ebpf)
}

/// Loads (verifies) the program `name` of `ebpf` into the kernel.
fn load_program(ebpf: &mut Ebpf, name: &'static str) -> Result<(), XdpError> {
    program(ebpf, name)?
        .load()
        .map_err(|source| XdpError::Program {
            program: name,
            source,
        })
}

/// The XDP program `name` of a loaded object.
pub fn program<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut Xdp, XdpError> {
    ebpf.program_mut(name)
        .ok_or(XdpError::MissingProgram(name))?
        .try_into()
        .map_err(|source| XdpError::Program {
            program: name,
            source,
        })
}

/// Attaches the loaded `dns_xdp` program to `iface`. The attachment lives as long as `ebpf`.
pub fn attach(ebpf: &mut Ebpf, iface: &str, mode: AttachMode) -> Result<(), XdpError> {
    attach_program(ebpf, PROGRAM_NAME, iface, mode).map(drop)
}

fn attach_program(
    ebpf: &mut Ebpf,
    name: &'static str,
    iface: &str,
    mode: AttachMode,
) -> Result<XdpLinkId, XdpError> {
    let err = |source| XdpError::Attach {
        iface: iface.to_string(),
        mode: mode.name(),
        source,
    };
    let ifname = std::ffi::CString::new(iface).map_err(|_| {
        err(ProgramError::IOError(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "interface name contains a NUL byte",
        )))
    })?;
    program(ebpf, name)?
        .attach(ifname.as_c_str(), mode.flags())
        .map_err(err)
}

/// Attaches the loaded `dns_xdp` program to `iface` through the link pinned at `pin`. A link
/// left there by a daemon that is gone is moved to this program in one atomic step
/// (BPF_LINK_UPDATE: the interface is never without a program); otherwise, or if that link is
/// dead (its interface went away), a new link is made and pinned. Returns true if a link was
/// taken over.
pub fn attach_pinned(
    ebpf: &mut Ebpf,
    iface: &str,
    mode: AttachMode,
    pin: &Path,
) -> Result<bool, XdpError> {
    if pin.exists() {
        let program = program(ebpf, PROGRAM_NAME)?;
        let taken = PinnedLink::from_pin(pin)
            .map_err(|e| e.to_string())
            .and_then(|link| XdpLink::try_from(FdLink::from(link)).map_err(|e| e.to_string()))
            .and_then(|link| program.attach_to_link(link).map_err(|e| e.to_string()));
        match taken {
            Ok(_) => return Ok(true),
            Err(e) => {
                tracing::warn!(
                    "the XDP link pinned at {} cannot be taken over ({e}): attaching afresh",
                    pin.display()
                );
                let _ = std::fs::remove_file(pin);
            }
        }
    }
    let id = attach_program(ebpf, PROGRAM_NAME, iface, mode)?;
    let pin_error = |reason: String| XdpError::Pin {
        iface: iface.to_string(),
        reason,
    };
    let prog = program(ebpf, PROGRAM_NAME)?;
    let link = prog.take_link(id).map_err(|e| pin_error(e.to_string()))?;
    let link = FdLink::try_from(link).map_err(|_| {
        pin_error("the kernel attached XDP without a bpf_link (Linux < 5.9)".into())
    })?;
    let pinned = link.pin(pin).map_err(|e| pin_error(e.to_string()))?;
    let link = XdpLink::try_from(FdLink::from(pinned)).map_err(|e| pin_error(e.to_string()))?;
    prog.attach_to_link(link)
        .map_err(|e| pin_error(e.to_string()))?;
    Ok(false)
}

/// Loads the pass-everything program (not attached).
pub fn load_pass() -> Result<Ebpf, XdpError> {
    let mut ebpf = EbpfLoader::new().load(OBJECT)?;
    load_program(&mut ebpf, PASS_PROGRAM_NAME)?;
    Ok(ebpf)
}

/// Loads and attaches the pass-everything program to `iface` (a veth peer in native mode).
pub fn attach_pass(iface: &str, mode: AttachMode) -> Result<Ebpf, XdpError> {
    let mut ebpf = load_pass()?;
    attach_program(&mut ebpf, PASS_PROGRAM_NAME, iface, mode)?;
    Ok(ebpf)
}
