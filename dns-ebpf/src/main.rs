//! XDP fast path of the authoritative server.
//!
//! ```text
//!  NIC rx -> dns_xdp
//!             |  Ethernet [+ one 802.1Q tag] -> IPv4 (no options, no fragments) | IPv6 (UDP next)
//!             |  -> UDP to DNS_PORT -> plain query, QDCOUNT=1, at most an OPT in additional
//!             |  -> lower-cased qname + A/AAAA + IN -> ANSWERS_{CONTROL.active}
//!             |  -> a routing-policy group: cell = CELLS (LPM on the client's ECS prefix or
//!             |     source address), slot = random % slots -> VARIANTS[(group, cell, slot)]
//!             |
//!             +-- hit:  rewrite in place (answers after the question, OPT echoed) -> XDP_TX
//!             +-- anything else, or anything not fully understood  -> XDP_PASS (userspace)
//! ```
//!
//! All validation happens before the first write. After `bpf_xdp_adjust_tail` succeeds the
//! packet is committed to becoming a response; a failure from then on is XDP_DROP, never a
//! half-rewritten packet passed up.
#![no_std]
#![no_main]

use core::mem::size_of;

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, xdp_action},
    helpers::generated::{
        bpf_get_prandom_u32, bpf_ktime_get_ns, bpf_xdp_adjust_head, bpf_xdp_adjust_tail,
        bpf_xdp_load_bytes, bpf_xdp_store_bytes,
    },
    macros::{map, xdp},
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, lpm_trie::Key},
    programs::XdpContext,
};
use dns_common::{
    AnswerKey, AnswerSet, CLASS_IN, CONTROL_ENABLED, COUNTER_COUNT, Control, Counter,
    DEFAULT_MAX_ENTRIES, DEFAULT_MAX_VARIANTS, DNS_HEADER_LEN, EDNS_FLAG_DO, EDNS_OPTION_ECS,
    Heartbeat, KIND_LOCATED, MAX_ANSWER_BYTES, MAX_CELLS, MAX_EDNS_OPTIONS, MAX_LABEL_LEN,
    MAX_NAME_LEN, MAX_SLOTS, MAX_ZONES, MIN_UDP_PAYLOAD, OPT_RR_LEN, RRL_MAX_ENTRIES, RrlBucket,
    TYPE_A, TYPE_AAAA, TYPE_OPT, V4_MAPPED_PREFIX, VariantKey, csum_add_bytes, csum_at_odd_offset,
    csum_fold, rrl_key, udp_checksum_field,
};

#[map]
static ANSWERS_0: HashMap<AnswerKey, AnswerSet> =
    HashMap::with_max_entries(DEFAULT_MAX_ENTRIES, BPF_F_NO_PREALLOC);
#[map]
static ANSWERS_1: HashMap<AnswerKey, AnswerSet> =
    HashMap::with_max_entries(DEFAULT_MAX_ENTRIES, BPF_F_NO_PREALLOC);
#[map]
static VARIANTS_0: HashMap<VariantKey, AnswerSet> =
    HashMap::with_max_entries(DEFAULT_MAX_VARIANTS, BPF_F_NO_PREALLOC);
#[map]
static VARIANTS_1: HashMap<VariantKey, AnswerSet> =
    HashMap::with_max_entries(DEFAULT_MAX_VARIANTS, BPF_F_NO_PREALLOC);
#[map]
static CELLS_0: LpmTrie<[u8; 16], u32> = LpmTrie::with_max_entries(MAX_CELLS, BPF_F_NO_PREALLOC);
#[map]
static CELLS_1: LpmTrie<[u8; 16], u32> = LpmTrie::with_max_entries(MAX_CELLS, BPF_F_NO_PREALLOC);
#[map]
static CONTROL: Array<Control> = Array::with_max_entries(1, 0);
#[map]
static HEARTBEAT: Array<Heartbeat> = Array::with_max_entries(1, 0);
/// Response rate limiting: one bucket per client prefix.
#[map]
static RRL: LruHashMap<[u8; 16], RrlBucket> = LruHashMap::with_max_entries(RRL_MAX_ENTRIES, 0);
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_COUNT, 0);
/// Answers sent per hosted zone slot.
#[map]
static ZONE_HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(MAX_ZONES, 0);
/// Per-CPU scratch: the lookup key (too large for a zeroed stack copy) and the qname length.
#[map]
static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

/// Largest part of a query kept when a response grows at the head: Ethernet + VLAN + IPv6 +
/// UDP + DNS header + the longest question.
const MAX_PREFIX: usize = 14 + 4 + 40 + 8 + 12 + 255 + 4;

#[repr(C)]
struct Scratch {
    key: AnswerKey,
    /// Headers and question, while they move forward (see `grow`).
    prefix: [u8; MAX_PREFIX + 3],
    /// The question name's wire length, stored and re-read so that the verifier sees one
    /// bounded value instead of one exact value per loop exit (which would make it verify the
    /// rest of the program once per possible length).
    name_len: u32,
    _pad: u32,
}

/// UDP port served (host order); set by the loader.
#[unsafe(no_mangle)]
static DNS_PORT: u16 = 53;
/// UDP payload size advertised in our OPT record; set by the loader.
#[unsafe(no_mangle)]
static EDNS_UDP_SIZE: u16 = 1232;
/// Test hook, set only by tests: always grow at the head (BPF_PROG_TEST_RUN frames always have
/// tailroom, so this is how the fixtures reach that path). Read-only: the verifier removes the
/// branch when it is 0.
#[unsafe(no_mangle)]
static GROW_AT_HEAD: u8 = 0;
/// Test hook, set only by tests: 0 = random slots; d + 1 = always draw d.
#[unsafe(no_mangle)]
static FIXED_DRAW: u32 = 0;
/// Response rate limiting (set by the loader): ns per allowed response per client prefix
/// (0 = off), how far ahead of now a prefix may run (burst), and the slip ratio.
#[unsafe(no_mangle)]
static RRL_INTERVAL_NS: u64 = 0;
#[unsafe(no_mangle)]
static RRL_BURST_NS: u64 = 0;
#[unsafe(no_mangle)]
static RRL_SLIP: u32 = 0;

/// Longest ECS address (IPv6).
const ECS_ADDR_LEN: usize = 16;
/// Our OPT record with an ECS option: OPT header, option header, family, prefixes, address.
const MAX_OPT_LEN: usize = OPT_RR_LEN + 4 + 4 + ECS_ADDR_LEN;
const ECS_FAMILY_V4: u16 = 1;
const ECS_FAMILY_V6: u16 = 2;

const ETH_LEN: usize = 14;
const VLAN_LEN: usize = 4;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const IPV4_LEN: usize = 20;
const IPV6_LEN: usize = 40;
const UDP_LEN: usize = 8;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_ICMPV6: u8 = 58;
const RESPONSE_HOP_LIMIT: u8 = 64;
/// Largest packet offset the program ever reads (keeps offsets provably bounded).
const MAX_OFFSET: usize = 4096;

// DNS header flag bits (RFC 1035 section 4.1.1).
const FLAG_QR: u16 = 0x8000;
const FLAG_OPCODE: u16 = 0x7800;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_CD: u16 = 0x0010;

/// What the parser learned about a query it can answer.
struct Query {
    /// Offset of the IP header.
    l3: usize,
    is_v6: bool,
    /// Offset of the UDP header.
    udp: usize,
    /// Wire length of the question name, root label included.
    name_len: usize,
    /// Even-offset sum of the question name bytes (as sent, client case).
    name_sum: u32,
    qtype: u16,
    dns_flags: u16,
    /// The query carried an OPT record; `do_bit` and `client_udp` come from it.
    has_opt: bool,
    do_bit: bool,
    client_udp: u16,
    /// Length of the query's DNS message.
    dns_len: usize,
    /// The query's EDNS Client Subnet option, if any (valid per RFC 7871 section 6).
    ecs: Option<Ecs>,
    /// The source address (IPv4 mapped into ::ffff:0:0/96).
    client: [u8; 16],
}

/// A query's EDNS Client Subnet option.
#[derive(Clone, Copy)]
struct Ecs {
    family: u16,
    source_prefix: u8,
    /// The address bytes sent: ceil(source_prefix / 8), the rest zero.
    addr: [u8; ECS_ADDR_LEN],
}

impl Ecs {
    #[inline(always)]
    fn addr_len(&self) -> usize {
        usize::from(self.source_prefix).div_ceil(8)
    }
}

#[xdp]
pub fn dns_xdp(ctx: XdpContext) -> u32 {
    match parse(&ctx) {
        Err(reason) => {
            count(reason);
            xdp_action::XDP_PASS
        }
        Ok((query, set)) => {
            let truncated = match rate_limit(&query) {
                Rate::Allow => false,
                Rate::Slip => true,
                Rate::Drop => {
                    count(Counter::RateLimited);
                    return xdp_action::XDP_DROP;
                }
            };
            let zone = set.zone;
            match respond(&ctx, &query, set, truncated) {
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

/// What response rate limiting says about one answer.
enum Rate {
    Allow,
    /// Over the rate: send it truncated (TC=1, no answers) so a real client retries over TCP.
    Slip,
    /// Over the rate: send nothing.
    Drop,
}

/// GCRA per client prefix (the packet's source, never its ECS option: the rate is the
/// sender's). Buckets are shared by all CPUs without locks: concurrent updates can lose an
/// increment, so the limit is approximate, never stricter than configured.
#[inline(always)]
fn rate_limit(q: &Query) -> Rate {
    // SAFETY: read-only globals set by the loader.
    let interval = unsafe { core::ptr::read_volatile(&RRL_INTERVAL_NS) };
    if interval == 0 {
        return Rate::Allow;
    }
    // SAFETY: as above.
    let burst = unsafe { core::ptr::read_volatile(&RRL_BURST_NS) };
    // SAFETY: as above.
    let slip = unsafe { core::ptr::read_volatile(&RRL_SLIP) };
    let key = rrl_key(q.client, !q.is_v6);
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    let Some(bucket) = RRL.get_ptr_mut(&key) else {
        let fresh = RrlBucket {
            tat_ns: now + interval,
            limited: 0,
            _pad: 0,
        };
        let _ = RRL.insert(&key, &fresh, 0);
        return Rate::Allow;
    };
    // SAFETY: a value pointer from the lookup above; racing writers only lose updates.
    let bucket = unsafe { &mut *bucket };
    let tat = if bucket.tat_ns > now {
        bucket.tat_ns
    } else {
        now
    };
    if tat - now <= burst {
        bucket.tat_ns = tat + interval;
        return Rate::Allow;
    }
    bucket.limited = bucket.limited.wrapping_add(1);
    if slip != 0 && bucket.limited % slip == 0 {
        Rate::Slip
    } else {
        Rate::Drop
    }
}

enum Verdict {
    /// Nothing was modified yet.
    Pass(Counter),
    /// The packet was partly rewritten and must not go anywhere.
    Drop,
}

#[inline(always)]
fn count(counter: Counter) {
    if let Some(value) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *value += 1 };
    }
}

#[inline(always)]
fn load<T: Copy>(ctx: &XdpContext, offset: usize) -> Result<T, Counter> {
    let start = ctx.data();
    if offset > MAX_OFFSET || start + offset + size_of::<T>() > ctx.data_end() {
        return Err(Counter::Malformed);
    }
    // SAFETY: bounds checked against data_end just above.
    Ok(unsafe { core::ptr::read_unaligned((start + offset) as *const T) })
}

#[inline(always)]
fn load_be16(ctx: &XdpContext, offset: usize) -> Result<u16, Counter> {
    load::<[u8; 2]>(ctx, offset).map(u16::from_be_bytes)
}

#[inline(always)]
fn store<T: Copy>(ctx: &XdpContext, offset: usize, value: T) -> Result<(), Verdict> {
    let start = ctx.data();
    if offset > MAX_OFFSET || start + offset + size_of::<T>() > ctx.data_end() {
        return Err(Verdict::Drop);
    }
    // SAFETY: bounds checked against data_end just above.
    unsafe { core::ptr::write_unaligned((start + offset) as *mut T, value) };
    Ok(())
}

#[inline(always)]
fn store_be16(ctx: &XdpContext, offset: usize, value: u16) -> Result<(), Verdict> {
    store(ctx, offset, value.to_be_bytes())
}

#[inline(always)]
fn to_lower(b: u8) -> u8 {
    if b.is_ascii_uppercase() { b | 0x20 } else { b }
}

/// Validates the packet and finds its answer. Never modifies the packet.
#[inline(always)]
fn parse(ctx: &XdpContext) -> Result<(Query, &'static AnswerSet), Counter> {
    // SAFETY: CONTROL has exactly one entry; reading a u32 field is a single load.
    let control = CONTROL.get(0).ok_or(Counter::HelperError)?;
    if control.flags & CONTROL_ENABLED == 0 {
        return Err(Counter::Disabled);
    }
    let beat = HEARTBEAT.get(0).ok_or(Counter::HelperError)?;
    if beat.max_age_ns != 0 {
        // SAFETY: helper without arguments.
        let now = unsafe { bpf_ktime_get_ns() };
        if now > beat.at_ns && now - beat.at_ns > beat.max_age_ns {
            return Err(Counter::Stale);
        }
    }
    let active = control.active & 1;

    let pkt_len = ctx.data_end() - ctx.data();
    let mut l3 = ETH_LEN;
    let mut ethertype = load_be16(ctx, 12)?;
    if ethertype == ETH_P_8021Q {
        ethertype = load_be16(ctx, 16)?;
        l3 += VLAN_LEN;
    }

    let (is_v6, udp) = match ethertype {
        ETH_P_IP => {
            let ver_ihl: u8 = load(ctx, l3)?;
            if ver_ihl != 0x45 {
                return Err(Counter::IpUnsupported);
            }
            if load_be16(ctx, l3 + 6)? & 0x3fff != 0 {
                return Err(Counter::IpUnsupported); // MF set or a non-zero fragment offset
            }
            if load::<u8>(ctx, l3 + 9)? != IPPROTO_UDP {
                return Err(Counter::NotDns);
            }
            if usize::from(load_be16(ctx, l3 + 2)?) != pkt_len - l3 {
                return Err(Counter::Malformed);
            }
            (false, l3 + IPV4_LEN)
        }
        ETH_P_IPV6 => {
            if load::<u8>(ctx, l3)? >> 4 != 6 {
                return Err(Counter::Malformed);
            }
            match load::<u8>(ctx, l3 + 6)? {
                IPPROTO_UDP => {}
                IPPROTO_TCP | IPPROTO_ICMPV6 => return Err(Counter::NotDns),
                _ => return Err(Counter::IpUnsupported), // extension headers, ESP, ...
            }
            if usize::from(load_be16(ctx, l3 + 4)?) != pkt_len - l3 - IPV6_LEN {
                return Err(Counter::Malformed);
            }
            (true, l3 + IPV6_LEN)
        }
        _ => return Err(Counter::NotIp),
    };

    // SAFETY: DNS_PORT is a read-only global the loader sets.
    let port = unsafe { core::ptr::read_volatile(&DNS_PORT) };
    if load_be16(ctx, udp + 2)? != port {
        return Err(Counter::NotDns);
    }
    if load_be16(ctx, udp)? == 0 {
        return Err(Counter::Malformed); // source port 0 cannot be answered
    }
    let udp_len = usize::from(load_be16(ctx, udp + 4)?);
    if udp_len != pkt_len - udp || udp_len < UDP_LEN + DNS_HEADER_LEN {
        return Err(Counter::Malformed);
    }
    let dns = udp + UDP_LEN;
    let dns_len = udp_len - UDP_LEN;

    let dns_flags = load_be16(ctx, dns + 2)?;
    if dns_flags & (FLAG_QR | FLAG_OPCODE | FLAG_TC) != 0 {
        return Err(Counter::NotQuery);
    }
    let arcount = load_be16(ctx, dns + 10)?;
    if load_be16(ctx, dns + 4)? != 1
        || load_be16(ctx, dns + 6)? != 0
        || load_be16(ctx, dns + 8)? != 0
        || arcount > 1
    {
        return Err(Counter::NotQuery);
    }

    // Question name: walk the labels, lower-case into the scratch key, sum the bytes as sent.
    let scratch = SCRATCH.get_ptr_mut(0).ok_or(Counter::HelperError)?;
    // SAFETY: per-CPU scratch entry, used only by this invocation on this CPU.
    let scratch = unsafe { &mut *scratch };
    let key = &mut scratch.key;
    let words = key.name.as_mut_ptr() as *mut u64;
    let mut w = 0;
    while w < key.name.len() / 8 {
        // SAFETY: w < 32, inside the 256-byte name buffer (8-byte aligned within the map value).
        unsafe { core::ptr::write_volatile(words.add(w), 0) };
        w += 1;
    }
    let qname = dns + DNS_HEADER_LEN;
    let mut name_len = 0;
    let mut name_sum: u32 = 0;
    let mut label_left: u8 = 0;
    let mut i = 0;
    while i < MAX_NAME_LEN {
        let b: u8 = load(ctx, qname + i)?;
        if label_left == 0 {
            if b == 0 {
                name_len = i + 1;
                break;
            }
            if b > MAX_LABEL_LEN {
                return Err(Counter::Qname); // compression pointer or extended label type
            }
            label_left = b;
            key.name[i] = b;
        } else {
            key.name[i] = to_lower(b);
            label_left -= 1;
        }
        name_sum += if i & 1 == 0 {
            u32::from(b) << 8
        } else {
            u32::from(b)
        };
        i += 1;
    }
    // SAFETY: plain field of our per-CPU scratch value.
    unsafe { core::ptr::write_volatile(&mut scratch.name_len, name_len as u32) };
    // SAFETY: as above.
    let name_len = unsafe { core::ptr::read_volatile(&scratch.name_len) } as usize;
    if name_len == 0 || name_len > MAX_NAME_LEN {
        return Err(Counter::Qname); // no root label within 255 bytes
    }
    let key = &mut scratch.key;

    let qtype = load_be16(ctx, qname + name_len)?;
    if load_be16(ctx, qname + name_len + 2)? != CLASS_IN {
        return Err(Counter::Qtype);
    }
    if qtype != TYPE_A && qtype != TYPE_AAAA {
        return Err(Counter::Qtype);
    }
    let question_end = qname + name_len + 4;

    let mut has_opt = false;
    let mut ecs: Option<Ecs> = None;
    let mut do_bit = false;
    let mut client_udp = MIN_UDP_PAYLOAD;
    if arcount == 0 {
        if question_end != pkt_len {
            return Err(Counter::Malformed);
        }
    } else {
        // OPT pseudo-RR (RFC 6891 section 6.1.2): root owner, type 41, payload size, extended
        // RCODE, version, flags, RDLENGTH. Read in one go: single-byte loads at a variable
        // offset get compiled into a bounds check the verifier cannot use.
        let opt: [u8; OPT_RR_LEN] = load(ctx, question_end)?;
        if opt[0] != 0 || u16::from_be_bytes([opt[1], opt[2]]) != TYPE_OPT {
            return Err(Counter::Edns);
        }
        client_udp = u16::from_be_bytes([opt[3], opt[4]]);
        if opt[5] != 0 || opt[6] != 0 {
            return Err(Counter::Edns); // extended RCODE bits in a query, or EDNS version > 0
        }
        do_bit = u16::from_be_bytes([opt[7], opt[8]]) & EDNS_FLAG_DO != 0;
        let opt_end =
            question_end + OPT_RR_LEN + usize::from(u16::from_be_bytes([opt[9], opt[10]]));
        if opt_end != pkt_len {
            return Err(Counter::Malformed);
        }
        // Unknown options are ignored (RFC 6891 section 6.1.2), as userspace does. ECS is
        // parsed and must be exactly canonical (RFC 7871 section 6); anything else goes up.
        let mut opt = question_end + OPT_RR_LEN;
        let mut n = 0;
        while n < MAX_EDNS_OPTIONS && opt < opt_end {
            let option_len = usize::from(load_be16(ctx, opt + 2)?);
            if load_be16(ctx, opt)? == EDNS_OPTION_ECS {
                if ecs.is_some() {
                    return Err(Counter::Edns);
                }
                ecs = Some(parse_ecs(ctx, opt + 4, option_len)?);
            }
            opt += 4 + option_len;
            n += 1;
        }
        if opt != opt_end {
            return Err(Counter::Edns);
        }
        has_opt = true;
    }

    key.qtype = qtype;
    let set = if active == 0 {
        ANSWERS_0.get_ptr(key)
    } else {
        ANSWERS_1.get_ptr(key)
    }
    .ok_or(Counter::Miss)?;
    // SAFETY: a map value pointer from the lookup above. The map writer never modifies a buffer
    // that readers may be using (see dns-user's map writer), so the value is immutable for us.
    let mut set = unsafe { &*set };
    let client = source_address(ctx, l3, is_v6)?;
    if let Some(policy) = set.policy_ref() {
        set = variant(&client, is_v6, ecs.as_ref(), active, policy)?;
    }

    Ok((
        Query {
            l3,
            is_v6,
            udp,
            name_len,
            name_sum,
            qtype,
            dns_flags,
            has_opt,
            do_bit,
            client_udp,
            dns_len,
            ecs,
            client,
        },
        set,
    ))
}

/// The packet's source address, IPv4 mapped into ::ffff:0:0/96.
#[inline(always)]
fn source_address(ctx: &XdpContext, l3: usize, is_v6: bool) -> Result<[u8; 16], Counter> {
    if is_v6 {
        return load(ctx, l3 + 8);
    }
    let v4: [u8; 4] = load(ctx, l3 + 12)?;
    let mut addr = [0u8; 16];
    addr[..12].copy_from_slice(&V4_MAPPED_PREFIX);
    addr[12..].copy_from_slice(&v4);
    Ok(addr)
}

/// Reads and validates an ECS option's body (`len` bytes at `at`): family 1 or 2, a source
/// prefix that fits it, scope 0, exactly ceil(source / 8) address bytes, no bits set beyond
/// the prefix. Anything else goes up (userspace answers FORMERR).
#[inline(always)]
fn parse_ecs(ctx: &XdpContext, at: usize, len: usize) -> Result<Ecs, Counter> {
    let head: [u8; 4] = load(ctx, at)?;
    let family = u16::from_be_bytes([head[0], head[1]]);
    let source_prefix = head[2];
    let max = match family {
        ECS_FAMILY_V4 => 32,
        ECS_FAMILY_V6 => 128,
        _ => return Err(Counter::Edns),
    };
    if source_prefix > max || head[3] != 0 {
        return Err(Counter::Edns);
    }
    let mut ecs = Ecs {
        family,
        source_prefix,
        addr: [0; ECS_ADDR_LEN],
    };
    let addr_len = ecs.addr_len();
    if len != 4 + addr_len {
        return Err(Counter::Edns);
    }
    if addr_len > 0 && addr_len <= ECS_ADDR_LEN {
        // SAFETY: the helper checks offset and length against the packet; `addr` holds 16.
        let rc = unsafe {
            bpf_xdp_load_bytes(
                ctx.ctx,
                (at + 4) as u32,
                ecs.addr.as_mut_ptr() as *mut _,
                addr_len as u32,
            )
        };
        if rc != 0 {
            return Err(Counter::Malformed);
        }
        let spare = (addr_len * 8 - usize::from(source_prefix)) as u32;
        let last = ecs.addr[(addr_len - 1) & (ECS_ADDR_LEN - 1)];
        if u32::from(last) & ((1u32 << spare) - 1) != 0 {
            return Err(Counter::Edns);
        }
    }
    Ok(ecs)
}

/// A routing-policy group's answer for this client: the client's cell (if the group is
/// located), a random slot, the variant there. No variant: pass up.
#[inline(always)]
fn variant(
    client: &[u8; 16],
    is_v6: bool,
    ecs: Option<&Ecs>,
    active: u32,
    policy: dns_common::PolicyRef,
) -> Result<&'static AnswerSet, Counter> {
    if policy.slots == 0 || policy.slots > MAX_SLOTS {
        return Err(Counter::Miss);
    }
    let mut cell = 0;
    if policy.located != 0 {
        // The client: its ECS prefix if it sent one (source prefix > 0), else its address.
        let mut addr = [0u8; 16];
        let prefix_len: u32;
        match ecs {
            Some(e) if e.source_prefix > 0 => {
                if e.family == ECS_FAMILY_V4 {
                    addr[..12].copy_from_slice(&V4_MAPPED_PREFIX);
                    addr[12..].copy_from_slice(&e.addr[..4]);
                    prefix_len = 96 + u32::from(e.source_prefix);
                } else {
                    addr = e.addr;
                    prefix_len = u32::from(e.source_prefix);
                }
            }
            _ => {
                addr = *client;
                prefix_len = 128;
            }
        }
        let v6_client = match ecs {
            Some(e) if e.source_prefix > 0 => e.family == ECS_FAMILY_V6,
            _ => is_v6,
        };
        if v6_client && addr[..12] == V4_MAPPED_PREFIX {
            return Err(Counter::Miss); // IPv4-mapped IPv6: userspace's business
        }
        let key = Key::new(prefix_len, addr);
        let found = if active == 0 {
            CELLS_0.get(&key)
        } else {
            CELLS_1.get(&key)
        };
        if let Some(c) = found {
            cell = *c;
        }
    }
    // SAFETY: read-only global set by the loader.
    let fixed = unsafe { core::ptr::read_volatile(&FIXED_DRAW) };
    let draw = if fixed != 0 {
        fixed - 1
    } else {
        // SAFETY: helper without arguments.
        unsafe { bpf_get_prandom_u32() }
    };
    let key = VariantKey {
        group: policy.group,
        cell,
        slot: draw % policy.slots,
        _pad: 0,
    };
    let found = if active == 0 {
        VARIANTS_0.get_ptr(&key)
    } else {
        VARIANTS_1.get_ptr(&key)
    }
    .ok_or(Counter::Miss)?;
    // SAFETY: as for the answer maps: the value is immutable while readable.
    Ok(unsafe { &*found })
}

/// Resizes the packet by `delta` bytes at the end, keeping headers and question in place.
///
/// Growing the tail needs tailroom, which depends on the driver (veth in native mode hands
/// over the sender's skb, with little to spare). When the tail cannot grow, the packet grows at
/// the head instead (native XDP guarantees 256 bytes of headroom) and the headers and question
/// move forward through per-CPU scratch; the bytes after the question are not needed.
/// `Pass` if the packet is still untouched, `Drop` once it is not.
#[inline(always)]
fn grow(ctx: &XdpContext, q: &Query, delta: i32) -> Result<(), Verdict> {
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
fn respond(ctx: &XdpContext, q: &Query, set: &AnswerSet, truncated: bool) -> Result<(), Verdict> {
    if set.len == 0 || usize::from(set.len) > MAX_ANSWER_BYTES {
        return Err(Verdict::Pass(Counter::HelperError));
    }
    // A truncated response (a slipped rate-limited one) carries no answers: TC=1 tells the
    // client to retry over TCP.
    let (answer_len, ancount, answer_sum) = if truncated {
        (0, 0, 0)
    } else {
        (usize::from(set.len), set.ancount, set.csum)
    };
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
