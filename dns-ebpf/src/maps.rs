//! Every map and loader global the program reads: the double-buffered answer, variant and
//! cell tables (`_0`/`_1`, CONTROL says which is active), CONTROL and HEARTBEAT, the RRL
//! buckets, counters, and per-CPU scratch.

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, RingBuf},
};
use dns_common::{
    AnswerKey, AnswerSet, COUNTER_COUNT, Cell, Control, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_VARIANTS,
    Heartbeat, MAX_CELLS, MAX_ZONES, NAME_BYTES, RRL_MAX_ENTRIES, RrlBucket, TAP_RING_BYTES,
    TapRecord, VariantKey,
};

// The answer and variant maps are preallocated: their capacity is reserved when they are made
// (the loader sizes it to the zones), an entry costs its own size rather than the next slab
// size class (about half: 552 against 1,024 bytes for an answer), and writes run several
// times faster (no allocation per element). A preallocated map reuses a replaced or deleted
// element at once, which is safe here because the writer only ever changes the buffer no
// reader uses (dns-user's map writer: double buffer, RCU grace period).
#[map]
pub(crate) static ANSWERS_0: HashMap<AnswerKey, AnswerSet> =
    HashMap::with_max_entries(DEFAULT_MAX_ENTRIES, 0);
#[map]
pub(crate) static ANSWERS_1: HashMap<AnswerKey, AnswerSet> =
    HashMap::with_max_entries(DEFAULT_MAX_ENTRIES, 0);
#[map]
pub(crate) static VARIANTS_0: HashMap<VariantKey, AnswerSet> =
    HashMap::with_max_entries(DEFAULT_MAX_VARIANTS, 0);
#[map]
pub(crate) static VARIANTS_1: HashMap<VariantKey, AnswerSet> =
    HashMap::with_max_entries(DEFAULT_MAX_VARIANTS, 0);
#[map]
pub(crate) static CELLS_0: LpmTrie<[u8; 16], Cell> =
    LpmTrie::with_max_entries(MAX_CELLS, BPF_F_NO_PREALLOC);
#[map]
pub(crate) static CELLS_1: LpmTrie<[u8; 16], Cell> =
    LpmTrie::with_max_entries(MAX_CELLS, BPF_F_NO_PREALLOC);
#[map]
pub(crate) static CONTROL: Array<Control> = Array::with_max_entries(1, 0);
#[map]
pub(crate) static HEARTBEAT: Array<Heartbeat> = Array::with_max_entries(1, 0);
/// Response rate limiting: one bucket per client prefix.
#[map]
pub(crate) static RRL: LruHashMap<[u8; 16], RrlBucket> =
    LruHashMap::with_max_entries(RRL_MAX_ENTRIES, 0);
#[map]
pub(crate) static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_COUNT, 0);
/// Answers sent per hosted zone slot.
#[map]
pub(crate) static ZONE_HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(MAX_ZONES, 0);
/// Sampled answers for dnstap (see `tap.rs`).
#[map]
pub(crate) static TAP: RingBuf = RingBuf::with_byte_size(TAP_RING_BYTES, 0);
/// Per-CPU scratch: the lookup key, the lower-cased question name it was hashed from (too
/// large for a zeroed stack copy) and the qname length.
#[map]
pub(crate) static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);
/// The record of a sampled answer while the packet is rewritten (`family` 0: none pending),
/// copied into `TAP` once the response is out: no ring-buffer reservation is held across the
/// rewrite, where it would double what the verifier walks.
#[map]
pub(crate) static TAP_PENDING: PerCpuArray<TapRecord> = PerCpuArray::with_max_entries(1, 0);

/// Largest part of a query kept when a response grows at the head: Ethernet + VLAN + IPv6 +
/// UDP + DNS header + the longest question.
pub(crate) const MAX_PREFIX: usize = 14 + 4 + 40 + 8 + 12 + 255 + 4;

#[repr(C)]
pub(crate) struct Scratch {
    pub(crate) key: AnswerKey,
    /// The question name, lower-cased, zero padded: what an entry's name is compared with.
    pub(crate) name: [u8; NAME_BYTES],
    /// Headers and question, while they move forward (see `grow`).
    pub(crate) prefix: [u8; MAX_PREFIX + 3],
    /// The question name's wire length, stored and re-read so that the verifier sees one
    /// bounded value instead of one exact value per loop exit (which would make it verify the
    /// rest of the program once per possible length).
    pub(crate) name_len: u32,
    pub(crate) _pad: u32,
}

/// UDP port served (host order); set by the loader.
#[unsafe(no_mangle)]
pub(crate) static DNS_PORT: u16 = 53;
/// UDP payload size advertised in our OPT record; set by the loader.
#[unsafe(no_mangle)]
pub(crate) static EDNS_UDP_SIZE: u16 = 1232;
/// Test hook, set only by tests: always grow at the head (BPF_PROG_TEST_RUN frames always have
/// tailroom, so this is how the fixtures reach that path). Read-only: the verifier removes the
/// branch when it is 0.
#[unsafe(no_mangle)]
pub(crate) static GROW_AT_HEAD: u8 = 0;
/// Test hook, set only by tests: 0 = random slots; d + 1 = always draw d.
#[unsafe(no_mangle)]
pub(crate) static FIXED_DRAW: u32 = 0;
/// Test hook, set only by tests: the mask on the name hash of the answer key (all ones in
/// production; narrower, names share keys and the name check in the value tells them apart).
#[unsafe(no_mangle)]
pub(crate) static HASH_MASK: u64 = u64::MAX;
/// Response rate limiting (set by the loader): ns per allowed response per client prefix
/// (0 = off), how far ahead of now a prefix may run (burst), and the slip ratio.
#[unsafe(no_mangle)]
pub(crate) static RRL_INTERVAL_NS: u64 = 0;
#[unsafe(no_mangle)]
pub(crate) static RRL_BURST_NS: u64 = 0;
#[unsafe(no_mangle)]
pub(crate) static RRL_SLIP: u32 = 0;
/// Query logging (set by the loader): one answer in this many goes to `TAP`; 0 = none.
#[unsafe(no_mangle)]
pub(crate) static TAP_SAMPLE: u32 = 0;
