//! Parsing: Ethernet (one 802.1Q tag), IPv4/IPv6, UDP, the DNS header, the question name
//! (lower-cased into the scratch key), the OPT record and its ECS option. Reads the packet
//! only: no map lookups, no writes.

use core::mem::size_of;

use crate::maps::*;
use aya_ebpf::{helpers::generated::bpf_xdp_load_bytes, programs::XdpContext};
use dns_common::{
    CLASS_IN, Counter, DNS_HEADER_LEN, EDNS_FLAG_DO, EDNS_OPTION_ECS, MAX_EDNS_OPTIONS,
    MAX_LABEL_LEN, MAX_NAME_LEN, MIN_UDP_PAYLOAD, NAME_BYTES, NAME_HASH_INIT, OPT_RR_LEN, TYPE_A,
    TYPE_AAAA, TYPE_OPT, V4_MAPPED_PREFIX, name_hash_word,
};

/// Longest ECS address (IPv6).
pub(crate) const ECS_ADDR_LEN: usize = 16;
/// Our OPT record with an ECS option: OPT header, option header, family, prefixes, address.
pub(crate) const MAX_OPT_LEN: usize = OPT_RR_LEN + 4 + 4 + ECS_ADDR_LEN;
pub(crate) const ECS_FAMILY_V4: u16 = 1;
pub(crate) const ECS_FAMILY_V6: u16 = 2;

pub(crate) const ETH_LEN: usize = 14;
pub(crate) const VLAN_LEN: usize = 4;
pub(crate) const ETH_P_IP: u16 = 0x0800;
pub(crate) const ETH_P_IPV6: u16 = 0x86dd;
pub(crate) const ETH_P_8021Q: u16 = 0x8100;
pub(crate) const IPV4_LEN: usize = 20;
pub(crate) const IPV6_LEN: usize = 40;
pub(crate) const UDP_LEN: usize = 8;
pub(crate) const IPPROTO_UDP: u8 = 17;
pub(crate) const IPPROTO_TCP: u8 = 6;
pub(crate) const IPPROTO_ICMPV6: u8 = 58;
pub(crate) const RESPONSE_HOP_LIMIT: u8 = 64;
/// Largest packet offset the program ever reads (keeps offsets provably bounded).
pub(crate) const MAX_OFFSET: usize = 4096;

// DNS header flag bits (RFC 1035 section 4.1.1).
pub(crate) const FLAG_QR: u16 = 0x8000;
pub(crate) const FLAG_OPCODE: u16 = 0x7800;
pub(crate) const FLAG_AA: u16 = 0x0400;
pub(crate) const FLAG_TC: u16 = 0x0200;
pub(crate) const FLAG_RD: u16 = 0x0100;
pub(crate) const FLAG_CD: u16 = 0x0010;

/// What the parser learned about a query it can answer.
pub(crate) struct Query {
    /// Offset of the IP header.
    pub(crate) l3: usize,
    pub(crate) is_v6: bool,
    /// Offset of the UDP header.
    pub(crate) udp: usize,
    /// Wire length of the question name, root label included.
    pub(crate) name_len: usize,
    /// Even-offset sum of the question name bytes (as sent, client case).
    pub(crate) name_sum: u32,
    pub(crate) qtype: u16,
    pub(crate) dns_flags: u16,
    /// The query carried an OPT record; `do_bit` and `client_udp` come from it.
    pub(crate) has_opt: bool,
    pub(crate) do_bit: bool,
    pub(crate) client_udp: u16,
    /// Length of the query's DNS message.
    pub(crate) dns_len: usize,
    /// The query's EDNS Client Subnet option, if any (valid per RFC 7871 section 6).
    pub(crate) ecs: Option<Ecs>,
    /// The source address (IPv4 mapped into ::ffff:0:0/96).
    pub(crate) client: [u8; 16],
    /// ARCOUNT (0 or 1), for [`options`].
    arcount: u16,
}

/// A query's EDNS Client Subnet option.
#[derive(Clone, Copy)]
pub(crate) struct Ecs {
    pub(crate) family: u16,
    pub(crate) source_prefix: u8,
    /// The address bytes sent: ceil(source_prefix / 8), the rest zero.
    pub(crate) addr: [u8; ECS_ADDR_LEN],
}

impl Ecs {
    #[inline(always)]
    pub(crate) fn addr_len(&self) -> usize {
        usize::from(self.source_prefix).div_ceil(8)
    }
}

#[inline(always)]
pub(crate) fn load<T: Copy>(ctx: &XdpContext, offset: usize) -> Result<T, Counter> {
    let start = ctx.data();
    if offset > MAX_OFFSET || start + offset + size_of::<T>() > ctx.data_end() {
        return Err(Counter::Malformed);
    }
    // SAFETY: bounds checked against data_end just above.
    Ok(unsafe { core::ptr::read_unaligned((start + offset) as *const T) })
}

#[inline(always)]
pub(crate) fn load_be16(ctx: &XdpContext, offset: usize) -> Result<u16, Counter> {
    load::<[u8; 2]>(ctx, offset).map(u16::from_be_bytes)
}

#[inline(always)]
pub(crate) fn to_lower(b: u8) -> u8 {
    if b.is_ascii_uppercase() { b | 0x20 } else { b }
}

/// Validates the packet up to the question and reads it: into per-CPU scratch the lookup key
/// (name hash, length and type) with the lower-cased name it confirms. [`options`] reads the
/// rest. Never modifies the packet; looks nothing up.
#[inline(always)]
pub(crate) fn question(ctx: &XdpContext) -> Result<(Query, &'static Scratch), Counter> {
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

    // Question name: walk the labels, lower-case into scratch and hash (the key), sum the
    // bytes as sent (the checksum).
    let scratch = SCRATCH.get_ptr_mut(0).ok_or(Counter::HelperError)?;
    // SAFETY: per-CPU scratch entry, used only by this invocation on this CPU.
    let scratch = unsafe { &mut *scratch };
    let name = &mut scratch.name;
    let words = name.as_mut_ptr() as *mut u64;
    let mut w = 0;
    while w < name.len() / 8 {
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
            name[i] = b;
        } else {
            name[i] = to_lower(b);
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
    let hash = name_hash(scratch);
    // SAFETY: read-only global set by the loader.
    let mask = unsafe { core::ptr::read_volatile(&HASH_MASK) };
    let key = &mut scratch.key;
    key.hash = hash & mask;
    key.name_len = name_len as u8;

    let qtype = load_be16(ctx, qname + name_len)?;
    if load_be16(ctx, qname + name_len + 2)? != CLASS_IN {
        return Err(Counter::Qtype);
    }
    if qtype != TYPE_A && qtype != TYPE_AAAA {
        return Err(Counter::Qtype);
    }
    scratch.key.qtype = qtype;
    Ok((
        Query {
            l3,
            is_v6,
            udp,
            name_len,
            name_sum,
            qtype,
            dns_flags,
            has_opt: false,
            do_bit: false,
            client_udp: MIN_UDP_PAYLOAD,
            dns_len,
            ecs: None,
            client: [0; 16],
            arcount,
        },
        scratch,
    ))
}

/// The rest of a query [`question`] read: the OPT record and its ECS option, the client's
/// address, and that nothing follows.
#[inline(always)]
pub(crate) fn options(ctx: &XdpContext, q: Query) -> Result<Query, Counter> {
    let pkt_len = ctx.data_end() - ctx.data();
    let question_end = q.udp + UDP_LEN + DNS_HEADER_LEN + q.name_len + 4;
    let mut has_opt = false;
    let mut ecs: Option<Ecs> = None;
    let mut do_bit = false;
    let mut client_udp = MIN_UDP_PAYLOAD;
    if q.arcount == 0 {
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

    let client = source_address(ctx, q.l3, q.is_v6)?;
    Ok(Query {
        has_opt,
        do_bit,
        client_udp,
        ecs,
        client,
        ..q
    })
}

/// [`dns_common::name_hash`] of the name in `scratch` (lower-cased, zero padded), word by
/// word. The length is read again from scratch: the loop's exits narrow what the verifier
/// knows of it, and the caller's copy would carry one state per exit into the rest.
#[inline(always)]
fn name_hash(scratch: &Scratch) -> u64 {
    // SAFETY: plain field of the per-CPU scratch value.
    let len = unsafe { core::ptr::read_volatile(&scratch.name_len) } as usize & MAX_NAME_LEN;
    let words = scratch.name.as_ptr() as *const u64;
    let mut hash = NAME_HASH_INIT;
    let mut w = 0;
    while w < NAME_BYTES / 8 {
        if w * 8 >= len {
            break;
        }
        // SAFETY: `w < 32` words of the 8-byte aligned 256-byte scratch name.
        hash = name_hash_word(hash, unsafe { core::ptr::read(words.add(w)) });
        w += 1;
    }
    hash
}

/// The packet's source address, IPv4 mapped into ::ffff:0:0/96.
#[inline(always)]
pub(crate) fn source_address(
    ctx: &XdpContext,
    l3: usize,
    is_v6: bool,
) -> Result<[u8; 16], Counter> {
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
pub(crate) fn parse_ecs(ctx: &XdpContext, at: usize, len: usize) -> Result<Ecs, Counter> {
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
