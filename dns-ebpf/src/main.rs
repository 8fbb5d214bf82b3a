//! XDP fast path of the authoritative server.
//!
//! ```text
//!  NIC rx -> dns_xdp, cut by stage (each a file; maps.rs holds every map and loader global)
//!   gate     lookup.rs   CONTROL on, HEARTBEAT fresh -> which buffer is active
//!   parse    parse.rs    question: Ethernet [+ one 802.1Q tag] -> IPv4 (no options, no
//!                        fragments) | IPv6 (UDP next) -> UDP to DNS_PORT -> plain query,
//!                        QDCOUNT=1 -> lower-cased qname hashed + A/AAAA + IN; no lookups
//!   parse    parse.rs    options: at most an OPT (ECS read), nothing after it
//!   lookup   lookup.rs   entry: ANSWERS_{active} by (name hash, length, type), the name in
//!                        the entry confirmed; answer: DO needs the signed answer; a
//!                        routing-policy group: cell = CELLS (LPM on the client's ECS prefix
//!                        or source address), slot = random % slots ->
//!                        VARIANTS[(group, cell, slot)]
//!   rate     rrl.rs      GCRA per client prefix: allow, slip (TC=1) or drop
//!   respond  respond.rs  rewrite in place (answers after the question, OPT echoed) -> XDP_TX
//!   tap      tap.rs      1 in TAP_SAMPLE answers: query and response copied to a ring buffer
//!   anything else, or anything not fully understood at any stage -> XDP_PASS (userspace)
//! ```
//!
//! All validation happens before the first write. After `bpf_xdp_adjust_tail` succeeds the
//! packet is committed to becoming a response; a failure from then on is XDP_DROP, never a
//! half-rewritten packet passed up.
#![no_std]
#![no_main]

mod lookup;
mod maps;
mod parse;
mod respond;
mod rrl;
mod tap;

use crate::maps::*;
use crate::respond::*;
use crate::rrl::*;
use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use dns_common::Counter;

#[xdp]
pub fn dns_xdp(ctx: XdpContext) -> u32 {
    let found = lookup::active_buffer().and_then(|active| {
        let (question, scratch) = parse::question(&ctx)?;
        let query = parse::options(&ctx, question)?;
        let entry = lookup::entry(scratch, active)?;
        let set = lookup::answer(&query, entry, active)?;
        Ok((query, set))
    });
    match found {
        Err(reason) => {
            count(reason);
            xdp_action::XDP_PASS
        }
        Ok((query, set)) => {
            let truncated = match rrl::rate_limit(&query) {
                Rate::Allow => false,
                Rate::Slip => true,
                Rate::Drop => {
                    count(Counter::RateLimited);
                    return xdp_action::XDP_DROP;
                }
            };
            let zone = set.zone;
            tap::begin(&ctx, &query);
            let responded = respond::respond(&ctx, &query, set, truncated);
            tap::finish(&ctx, &query, responded.is_ok());
            match responded {
                Ok(()) => {
                    count(if truncated {
                        Counter::Slipped
                    } else {
                        Counter::Answered
                    });
                    if let Some(value) = ZONE_HITS.get_ptr_mut(zone) {
                        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
                        unsafe { *value += 1 };
                    }
                    xdp_action::XDP_TX
                }
                Err(Verdict::Pass(reason)) => {
                    count(reason);
                    xdp_action::XDP_PASS
                }
                Err(Verdict::Drop) => {
                    count(Counter::HelperError);
                    xdp_action::XDP_DROP
                }
            }
        }
    }
}

#[inline(always)]
fn count(counter: Counter) {
    if let Some(value) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *value += 1 };
    }
}

/// Passes everything. Attached to the far end of a veth pair in native mode, where the kernel
/// delivers XDP_TX frames only if the peer has an XDP program too.
#[xdp]
pub fn xdp_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
