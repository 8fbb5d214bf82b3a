//! Responding: the query rewritten in place into its answer (grown at the tail, or at the
//! head when the driver leaves no tailroom), checksums updated incrementally.

use core::mem::size_of;

use crate::maps::*;
use crate::parse::*;
use aya_ebpf::{
    helpers::generated::{
        bpf_xdp_adjust_head, bpf_xdp_adjust_tail, bpf_xdp_load_bytes, bpf_xdp_store_bytes,
    },
    programs::XdpContext,
};
use dns_common::{
    AnswerSet, CLASS_IN, Counter, DNS_HEADER_LEN, EDNS_FLAG_DO, EDNS_OPTION_ECS, FLAG_SIGNED_ZONE,
    KIND_LOCATED, MAX_ANSWER_BYTES, MIN_UDP_PAYLOAD, OPT_RR_LEN, TYPE_OPT, csum_add_bytes,
    csum_at_odd_offset, csum_fold, udp_checksum_field,
};

pub(crate) enum Verdict {
    /// Nothing was modified yet.
    Pass(Counter),
    /// The packet was partly rewritten and must not go anywhere.
    Drop,
}

#[inline(always)]
pub(crate) fn store<T: Copy>(ctx: &XdpContext, offset: usize, value: T) -> Result<(), Verdict> {
    let start = ctx.data();
    if offset > MAX_OFFSET || start + offset + size_of::<T>() > ctx.data_end() {
        return Err(Verdict::Drop);
    }
    // SAFETY: bounds checked against data_end just above.
    unsafe { core::ptr::write_unaligned((start + offset) as *mut T, value) };
    Ok(())
}

#[inline(always)]
pub(crate) fn store_be16(ctx: &XdpContext, offset: usize, value: u16) -> Result<(), Verdict> {
    store(ctx, offset, value.to_be_bytes())
}

/// Resizes the packet by `delta` bytes at the end, keeping headers and question in place.
///
/// Growing the tail needs tailroom, which depends on the driver (veth in native mode hands
/// over the sender's skb, with little to spare). When the tail cannot grow, the packet grows at
/// the head instead (native XDP guarantees 256 bytes of headroom) and the headers and question
/// move forward through per-CPU scratch; the bytes after the question are not needed.
/// `Pass` if the packet is still untouched, `Drop` once it is not.
#[inline(always)]
pub(crate) fn grow(ctx: &XdpContext, q: &Query, delta: i32) -> Result<(), Verdict> {
    // SAFETY: read-only global set by the loader.
    let force_head = unsafe { core::ptr::read_volatile(&GROW_AT_HEAD) } != 0;
    // SAFETY: helper call on this program's own context.
    if !(force_head && delta > 0) && unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta) } == 0 {
        return Ok(());
    }
    if delta <= 0 {
        return Err(Verdict::Pass(Counter::HelperError));
    }
    let prefix_len = q.udp + UDP_LEN + DNS_HEADER_LEN + q.name_len + 4;
    if prefix_len > MAX_PREFIX {
        return Err(Verdict::Pass(Counter::HelperError));
    }
    let scratch = SCRATCH
        .get_ptr_mut(0)
        .ok_or(Verdict::Pass(Counter::HelperError))?;
    // SAFETY: per-CPU scratch, used only by this invocation on this CPU.
    let prefix = unsafe { (*scratch).prefix.as_mut_ptr() };
    // SAFETY: helpers check offsets and lengths against the packet; `prefix` holds MAX_PREFIX.
    if unsafe { bpf_xdp_load_bytes(ctx.ctx, 0, prefix as *mut _, prefix_len as u32) } != 0 {
        return Err(Verdict::Pass(Counter::HelperError));
    }
    // SAFETY: as above.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -delta) } != 0 {
        return Err(Verdict::Pass(Counter::HelperError));
    }
    // SAFETY: as above.
    if unsafe { bpf_xdp_store_bytes(ctx.ctx, 0, prefix as *mut _, prefix_len as u32) } != 0 {
        return Err(Verdict::Drop);
    }
    Ok(())
}

/// Rewrites the query into its response.
#[inline(always)]
pub(crate) fn respond(
    ctx: &XdpContext,
    q: &Query,
    set: &AnswerSet,
    truncated: bool,
) -> Result<(), Verdict> {
    // A DO query to a signed zone gets the records and their RRSIGs (`*_do`), chosen without
    // a branch: each one here multiplies the verifier's states over what follows.
    let signed = u16::from(set.flags & FLAG_SIGNED_ZONE & u8::from(q.do_bit)).wrapping_neg();
    let pick = |plain: u16, with_rrsigs: u16| (plain & !signed) | (with_rrsigs & signed);
    let len = pick(set.len, set.len_do);
    if len == 0 || usize::from(len) > MAX_ANSWER_BYTES {
        return Err(Verdict::Pass(Counter::HelperError));
    }
    // A truncated response (a slipped rate-limited one) carries no answers: TC=1 tells the
    // client to retry over TCP. Without a branch, as above.
    let keep = u16::from(!truncated).wrapping_neg();
    let (answer_len, ancount, answer_sum) = (
        usize::from(len & keep),
        pick(set.ancount, set.ancount_do) & keep,
        pick(set.csum, set.csum_do) & keep,
    );
    // SAFETY: read-only global set by the loader.
    let server_udp = unsafe { core::ptr::read_volatile(&EDNS_UDP_SIZE) };
    // Our OPT: root owner, type OPT, our payload size, ext-rcode 0, version 0, DO copied
    // (RFC 3225); an ECS option echoed with the scope the answer used (RFC 7871 section 7.2.1).
    let mut opt = [0u8; MAX_OPT_LEN];
    let mut opt_len = 0;
    if q.has_opt {
        opt[2] = TYPE_OPT as u8;
        opt[3..5].copy_from_slice(&server_udp.to_be_bytes());
        if q.do_bit {
            opt[7] = (EDNS_FLAG_DO >> 8) as u8;
        }
        opt_len = OPT_RR_LEN;
        if let Some(e) = &q.ecs {
            let addr_len = e.addr_len() & 31;
            if addr_len > ECS_ADDR_LEN {
                return Err(Verdict::Pass(Counter::Edns));
            }
            let option_len = 4 + addr_len;
            opt[9..11].copy_from_slice(&((4 + option_len) as u16).to_be_bytes());
            opt[11..13].copy_from_slice(&EDNS_OPTION_ECS.to_be_bytes());
            opt[13..15].copy_from_slice(&(option_len as u16).to_be_bytes());
            opt[15..17].copy_from_slice(&e.family.to_be_bytes());
            opt[17] = e.source_prefix;
            opt[18] = if set.kind == KIND_LOCATED {
                e.source_prefix
            } else {
                0
            };
            let mut i = 0;
            while i < ECS_ADDR_LEN {
                if i < addr_len {
                    opt[19 + i] = e.addr[i];
                }
                i += 1;
            }
            opt_len = OPT_RR_LEN + 4 + option_len;
        }
    }
    let question_len = q.name_len + 4;
    let dns_len = DNS_HEADER_LEN + question_len + answer_len + opt_len;
    let limit = if q.has_opt {
        let offered = if q.client_udp < server_udp {
            q.client_udp
        } else {
            server_udp
        };
        if offered < MIN_UDP_PAYLOAD {
            MIN_UDP_PAYLOAD
        } else {
            offered
        }
    } else {
        MIN_UDP_PAYLOAD
    };
    if dns_len > usize::from(limit) {
        return Err(Verdict::Pass(Counter::TooBig));
    }

    // Commit: from here on a failure drops the packet.
    grow(ctx, q, dns_len as i32 - q.dns_len as i32)?;
    let dns = q.udp + UDP_LEN;
    let answers = dns + DNS_HEADER_LEN + question_len;
    if answer_len > 0 && answer_len <= MAX_ANSWER_BYTES {
        // SAFETY: the helper checks offset and length against the packet; `set` is a map value
        // and `answer_len` is bounded by MAX_ANSWER_BYTES.
        let rc = unsafe {
            bpf_xdp_store_bytes(
                ctx.ctx,
                answers as u32,
                set.data.as_ptr() as *mut _,
                answer_len as u32,
            )
        };
        if rc != 0 {
            return Err(Verdict::Drop);
        }
    }

    if q.has_opt && (OPT_RR_LEN..=MAX_OPT_LEN).contains(&opt_len) {
        // SAFETY: as above; `opt` is on the stack and holds MAX_OPT_LEN bytes.
        let rc = unsafe {
            bpf_xdp_store_bytes(
                ctx.ctx,
                (answers + answer_len) as u32,
                opt.as_mut_ptr() as *mut _,
                opt_len as u32,
            )
        };
        if rc != 0 {
            return Err(Verdict::Drop);
        }
    }

    // DNS header: same ID, QR+AA, RD and CD copied; counts.
    let flags = FLAG_QR
        | FLAG_AA
        | (q.dns_flags & (FLAG_RD | FLAG_CD))
        | if truncated { FLAG_TC } else { 0 };
    let arcount: u16 = if q.has_opt { 1 } else { 0 };
    let id = load_be16(ctx, dns).map_err(|_| Verdict::Drop)?;
    store_be16(ctx, dns + 2, flags)?;
    store_be16(ctx, dns + 6, ancount)?;
    store_be16(ctx, dns + 8, 0)?;
    store_be16(ctx, dns + 10, arcount)?;

    // UDP checksum, composed: pseudo-header + UDP header + DNS header + question + answers + OPT.
    let udp_len = (UDP_LEN + dns_len) as u16;
    let mut sum: u32 = 0;
    let addrs = if q.is_v6 { q.l3 + 8 } else { q.l3 + 12 };
    let addr_words = if q.is_v6 { 16 } else { 4 };
    let mut a = 0;
    while a < 16 {
        if a < addr_words {
            let w = load_be16(ctx, addrs + a * 2).map_err(|_| Verdict::Drop)?;
            sum += u32::from(w);
        }
        a += 1;
    }
    sum += u32::from(IPPROTO_UDP) + u32::from(udp_len);
    let sport = load_be16(ctx, q.udp).map_err(|_| Verdict::Drop)?;
    let dport = load_be16(ctx, q.udp + 2).map_err(|_| Verdict::Drop)?;
    sum += u32::from(sport) + u32::from(dport) + u32::from(udp_len);
    sum += u32::from(id) + u32::from(flags) + 1 + u32::from(ancount) + u32::from(arcount);
    sum += q.name_sum;
    let tail =
        u32::from(csum_fold(u32::from(q.qtype) + u32::from(CLASS_IN))) + u32::from(answer_sum);
    let tail = csum_fold(tail);
    sum += u32::from(if q.name_len & 1 == 1 {
        csum_at_odd_offset(tail)
    } else {
        tail
    });
    if q.has_opt {
        let opt_sum = csum_fold(csum_add_bytes(0, &opt));
        sum += u32::from(if (q.name_len + answer_len) & 1 == 1 {
            csum_at_odd_offset(opt_sum)
        } else {
            opt_sum
        });
    }
    let udp_csum = udp_checksum_field(csum_fold(sum));

    // UDP header: swap ports, new length and checksum.
    store_be16(ctx, q.udp, dport)?;
    store_be16(ctx, q.udp + 2, sport)?;
    store_be16(ctx, q.udp + 4, udp_len)?;
    store_be16(ctx, q.udp + 6, udp_csum)?;

    // IP header: swap addresses, new length, fresh hop limit (and header checksum for IPv4).
    if q.is_v6 {
        let src: [u8; 16] = load(ctx, q.l3 + 8).map_err(|_| Verdict::Drop)?;
        let dst: [u8; 16] = load(ctx, q.l3 + 24).map_err(|_| Verdict::Drop)?;
        store(ctx, q.l3 + 8, dst)?;
        store(ctx, q.l3 + 24, src)?;
        store_be16(ctx, q.l3 + 4, udp_len)?;
        store(ctx, q.l3 + 7, RESPONSE_HOP_LIMIT)?;
    } else {
        let src: [u8; 4] = load(ctx, q.l3 + 12).map_err(|_| Verdict::Drop)?;
        let dst: [u8; 4] = load(ctx, q.l3 + 16).map_err(|_| Verdict::Drop)?;
        store(ctx, q.l3 + 12, dst)?;
        store(ctx, q.l3 + 16, src)?;
        store_be16(ctx, q.l3 + 2, (IPV4_LEN + usize::from(udp_len)) as u16)?;
        store(ctx, q.l3 + 8, RESPONSE_HOP_LIMIT)?;
        store_be16(ctx, q.l3 + 10, 0)?;
        let header: [u8; IPV4_LEN] = load(ctx, q.l3).map_err(|_| Verdict::Drop)?;
        store_be16(ctx, q.l3 + 10, !csum_fold(csum_add_bytes(0, &header)))?;
    }

    // Ethernet: swap MAC addresses (a VLAN tag stays as it is).
    let dst_mac: [u8; 6] = load(ctx, 0).map_err(|_| Verdict::Drop)?;
    let src_mac: [u8; 6] = load(ctx, 6).map_err(|_| Verdict::Drop)?;
    store(ctx, 0, src_mac)?;
    store(ctx, 6, dst_mac)?;
    Ok(())
}
