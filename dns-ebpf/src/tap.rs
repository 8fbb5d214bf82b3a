//! Query logging: one answer in `TAP_SAMPLE` is copied into the `TAP` ring buffer, the query
//! as received (before the rewrite) and the response as sent, for the daemon's dnstap writer.
//! With `TAP_SAMPLE` 0 (the default) the verifier removes all of it. A full ring loses the
//! record, never the answer. The reader is woken only when a quarter of the ring waits; it
//! also drains it on a timer.

use crate::maps::*;
use crate::parse::*;
use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::generated::{bpf_get_prandom_u32, bpf_ktime_get_ns, bpf_xdp_load_bytes},
    programs::XdpContext,
};
use dns_common::{TAP_MESSAGE_BYTES, TAP_RING_BYTES};

/// Copies the DNS message at `offset`, `len` bytes, into `buf`; the length kept (0 when the
/// message does not fit or cannot be read).
#[inline(always)]
fn copy_message(ctx: &XdpContext, offset: usize, len: usize, buf: *mut u8) -> u16 {
    if len == 0 || len > TAP_MESSAGE_BYTES {
        return 0;
    }
    // SAFETY: the helper checks offset and length against the packet; `buf` holds
    // TAP_MESSAGE_BYTES and `len` is at most that.
    if unsafe { bpf_xdp_load_bytes(ctx.ctx, offset as u32, buf as *mut _, len as u32) } != 0 {
        return 0;
    }
    len as u16
}

/// Starts a record of this query if it is sampled: addresses, ports and the query, read
/// before `respond` rewrites the packet, into `TAP_PENDING`.
#[inline(always)]
pub(crate) fn begin(ctx: &XdpContext, q: &Query) {
    // SAFETY: read-only global set by the loader.
    let sample = unsafe { core::ptr::read_volatile(&TAP_SAMPLE) };
    if sample == 0 {
        return;
    }
    // SAFETY: helper without arguments.
    if sample > 1 && unsafe { bpf_get_prandom_u32() } % sample != 0 {
        return;
    }
    let Some(rec) = TAP_PENDING.get_ptr_mut(0) else {
        return;
    };
    let client_port = load_be16(ctx, q.udp).unwrap_or(0);
    let server_port = load_be16(ctx, q.udp + 2).unwrap_or(0);
    let mut server = [0u8; 16];
    if q.is_v6 {
        server = load(ctx, q.l3 + 24).unwrap_or([0; 16]);
    } else if let Ok(v4) = load::<[u8; 4]>(ctx, q.l3 + 16) {
        server[..4].copy_from_slice(&v4);
    }
    let mut client = [0u8; 16];
    if q.is_v6 {
        client = q.client;
    } else {
        client[..4].copy_from_slice(&q.client[12..16]);
    }
    // SAFETY: per-CPU scratch, used only by this invocation on this CPU.
    unsafe {
        (*rec).time_ns = bpf_ktime_get_ns();
        (*rec).client = client;
        (*rec).server = server;
        (*rec).client_port = client_port;
        (*rec).server_port = server_port;
        (*rec)._pad = 0;
        (*rec)._pad2 = [0; 6];
        (*rec).response_len = 0;
        (*rec).query_len = copy_message(ctx, q.udp + UDP_LEN, q.dns_len, (*rec).query.as_mut_ptr());
        core::ptr::write_volatile(&mut (*rec).family, if q.is_v6 { 6 } else { 4 });
    }
}

/// Completes a pending record: with the response (as the UDP length now says) into `TAP` when
/// it was sent; dropped when it was not, or when the ring is full.
#[inline(always)]
pub(crate) fn finish(ctx: &XdpContext, q: &Query, sent: bool) {
    let Some(rec) = TAP_PENDING.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU scratch, as in `begin`.
    let rec = unsafe { &mut *rec };
    // SAFETY: a plain field of that value; volatile, as `begin` wrote it.
    if unsafe { core::ptr::read_volatile(&rec.family) } == 0 {
        return;
    }
    if sent {
        let udp_len = usize::from(load_be16(ctx, q.udp + 4).unwrap_or(0));
        rec.response_len = copy_message(
            ctx,
            q.udp + UDP_LEN,
            udp_len.saturating_sub(UDP_LEN),
            rec.response.as_mut_ptr(),
        );
        output(rec);
    }
    rec.family = 0;
}

/// Copies a complete record into `TAP` (a full ring loses it).
#[inline(always)]
fn output(rec: &dns_common::TapRecord) {
    let waiting = TAP.query(u64::from(BPF_RB_AVAIL_DATA));
    let flags = if waiting >= u64::from(TAP_RING_BYTES / 4) {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    let _ = TAP.output(rec, u64::from(flags));
}
