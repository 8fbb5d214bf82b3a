//! Lookup: the gate (fast path on, heartbeat fresh, which buffer is active), the entry for
//! the parsed key in ANSWERS_{active} (its name confirmed), and for a routing-policy group
//! its variant (the client's cell by LPM in CELLS_{active}, a random slot, VARIANTS_{active}).

use crate::maps::*;
use crate::parse::*;
use aya_ebpf::{
    helpers::generated::{bpf_get_prandom_u32, bpf_ktime_get_ns},
    maps::lpm_trie::Key,
};
use dns_common::{
    AnswerSet, CLASS_UNKNOWN, CONTROL_ENABLED, Counter, FLAG_SIGNED_ZONE, MAX_ANSWER_BYTES,
    MAX_NAME_LEN, MAX_SLOTS, NAME_BYTES, V4_MAPPED_PREFIX, VariantKey,
};

/// The gate: the fast path is on and its heartbeat fresh. Returns the active buffer (0 or 1);
/// otherwise everything passes up, counted by why.
#[inline(always)]
pub(crate) fn active_buffer() -> Result<u32, Counter> {
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
    Ok(control.active & 1)
}

/// The entry in ANSWERS_{active} for the question in `scratch` (key and name), if its name is
/// the question's. A miss, or another name with the same key, passes up.
#[inline(always)]
pub(crate) fn entry(scratch: &Scratch, active: u32) -> Result<&'static AnswerSet, Counter> {
    let set = if active == 0 {
        ANSWERS_0.get_ptr(&scratch.key)
    } else {
        ANSWERS_1.get_ptr(&scratch.key)
    }
    .ok_or(Counter::Miss)?;
    // SAFETY: a map value pointer from the lookup above. The map writer never modifies a buffer
    // that readers may be using (see dns-user's map writer), so the value is immutable for us.
    let set = unsafe { &*set };
    if !same_name(set, scratch) {
        return Err(Counter::Miss);
    }
    Ok(set)
}

/// The answer to the whole query `q` from its `entry`: the entry itself, or for a
/// routing-policy group its variant for this client. A DO query for a signed zone whose
/// answer with RRSIGs did not fit passes up.
#[inline(always)]
pub(crate) fn answer(
    q: &Query,
    set: &'static AnswerSet,
    active: u32,
) -> Result<&'static AnswerSet, Counter> {
    // DO for a signed zone whose answer with its RRSIGs did not fit the entry: userspace's.
    // One test, no `&&`: each branch here multiplies the verifier's states.
    let no_signed_answer = (u32::from(set.len_do).wrapping_sub(1) >> 31) as u8;
    if set.flags & FLAG_SIGNED_ZONE & u8::from(q.do_bit) & no_signed_answer != 0 {
        return Err(Counter::Edns);
    }
    match set.policy_ref() {
        Some(policy) => variant(&q.client, q.is_v6, q.ecs.as_ref(), active, policy),
        None => Ok(set),
    }
}

/// True if the name in `set` (from `set.name_at`, zero padded to 8 bytes) is the question's
/// in `scratch` (lower-cased, zero padded): the key's hash says little, this says it is the
/// same name. Compared in 8-byte words (a typical name is three or four).
///
/// The length is read again from scratch rather than taken from the caller: the loop narrows
/// what the verifier knows of it at each exit, and a copy the rest of the program uses would
/// carry one state per exit into everything after.
#[inline(always)]
fn same_name(set: &AnswerSet, scratch: &Scratch) -> bool {
    // SAFETY: plain field of the per-CPU scratch value.
    let len = unsafe { core::ptr::read_volatile(&scratch.name_len) } as usize & MAX_NAME_LEN;
    let at = usize::from(set.name_at);
    if at + len > MAX_ANSWER_BYTES {
        return false;
    }
    let value = set as *const AnswerSet as *const u8;
    let ours = scratch.name.as_ptr();
    let mut w = 0;
    while w < NAME_BYTES / 8 {
        if w * 8 >= len {
            return true;
        }
        // The name's word w in the value: checked above to lie in `data`; the mask (a no-op
        // there) shows the verifier an offset inside the 256-byte value.
        let off = (DATA_OFFSET + at + w * 8) & 0xf8;
        // SAFETY: `off + 8 <= 256`, the value's size, and a multiple of 8 of the 8-byte
        // aligned value; `w < 32` words of the 8-byte aligned scratch name.
        let (theirs, ours) = unsafe {
            (
                core::ptr::read(value.add(off) as *const u64),
                core::ptr::read(ours.add(w * 8) as *const u64),
            )
        };
        if theirs != ours {
            return false;
        }
        w += 1;
    }
    true
}

/// Where `data` starts in an [`AnswerSet`].
const DATA_OFFSET: usize = core::mem::offset_of!(AnswerSet, data);

/// A routing-policy group's answer for this client: the client's cell (if the group is
/// located: its class in the aspect the group depends on), a random slot, the variant there.
/// No variant, or a client whose class is unknown: pass up.
#[inline(always)]
pub(crate) fn variant(
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
            cell = *c.classes.get(policy.aspect as usize).ok_or(Counter::Miss)?;
            if cell == CLASS_UNKNOWN {
                return Err(Counter::Miss);
            }
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
