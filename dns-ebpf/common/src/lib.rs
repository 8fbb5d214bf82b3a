//! The kernel/user ABI of the DNS XDP fast path, defined once.
//!
//! ```text
//!  control plane (dns-user)                      kernel (dns-ebpf)
//!  ------------------------                      -----------------
//!  zone data -> map compiler -> AnswerSet ----->  ANSWERS_0 / ANSWERS_1   (HashMap<AnswerKey, AnswerSet>)
//!  routing policies -> per (group, cell, slot) ->  VARIANTS_0 / VARIANTS_1 (HashMap<VariantKey, AnswerSet>)
//!  client prefixes -> location cells ---------->  CELLS_0 / CELLS_1       (LpmTrie<CellKey, Cell>)
//!  map writer: write back buffers, flip ------>  CONTROL[0].active        (Array<Control>)
//!  heartbeat (CLOCK_MONOTONIC ns) ------------>  HEARTBEAT[0]             (Array<Heartbeat>)
//!  metrics   <-------------------------------   COUNTERS                  (PerCpuArray<u64>)
//! ```
//!
//! A routing-policy name's ANSWERS entry is a [`PolicyRef`] (kind [`KIND_POLICY`]): the kernel
//! looks up the client's location cell (if the group depends on location), picks a slot
//! (random, if the group has more than one), and answers with `VARIANTS[(group, cell, slot)]`.
//! Userspace resolved health, failover, aliases, evaluate-target-health and fail-open when it
//! filled the slots; the kernel only indexes.
//!
//! Userspace precomputes, the kernel only indexes: an [`AnswerSet`] holds the answer section
//! already rendered as wire bytes (owner = compression pointer to the question) together with
//! its ones'-complement sum, so the XDP program copies bytes and adds one number to the UDP
//! checksum.
//!
//! Every type is `#[repr(C)]`, `Copy`, with explicit padding; sizes are asserted below. The
//! `user` feature (enabled by dns-user only) implements `aya::Pod`.
#![no_std]

/// Bytes of a buffer for a lower-cased wire-format name. A wire name is at most 255 bytes
/// including the root label (RFC 1035 section 3.1); the last byte is always zero.
pub const NAME_BYTES: usize = 256;
/// Longest wire-format name, root label included (RFC 1035 section 3.1).
pub const MAX_NAME_LEN: usize = 255;
/// Bytes an [`AnswerSet`] holds for the rendered answer and the entry's name after it (eight
/// AAAA records are 224). With its header an [`AnswerSet`] is 256 bytes, which the XDP
/// program's name check relies on (an offset masked with 0xf8 stays inside).
pub const MAX_ANSWER_BYTES: usize = 232;
/// Longest single label (RFC 1035 section 2.3.4).
pub const MAX_LABEL_LEN: u8 = 63;
/// Most EDNS options the XDP program walks in a query's OPT record before passing it up.
pub const MAX_EDNS_OPTIONS: usize = 8;

/// RR type A (RFC 1035 section 3.2.2).
pub const TYPE_A: u16 = 1;
/// RR type AAAA (RFC 3596 section 2.1).
pub const TYPE_AAAA: u16 = 28;
/// RR type OPT (RFC 6891 section 6.1.1).
pub const TYPE_OPT: u16 = 41;
/// Class IN (RFC 1035 section 3.2.4).
pub const CLASS_IN: u16 = 1;
/// EDNS option code of EDNS Client Subnet (RFC 7871 section 6).
pub const EDNS_OPTION_ECS: u16 = 8;
/// The DO bit in the OPT TTL's flags half (RFC 3225 section 3).
pub const EDNS_FLAG_DO: u16 = 0x8000;
/// Smallest UDP payload every client accepts (RFC 1035 section 4.2.1, RFC 6891 section 6.2.5).
pub const MIN_UDP_PAYLOAD: u16 = 512;
/// Length of an OPT RR without options: root name, type, class, TTL, RDLENGTH.
pub const OPT_RR_LEN: usize = 11;
/// Length of the DNS header (RFC 1035 section 4.1.1).
pub const DNS_HEADER_LEN: usize = 12;

/// Default capacity of each answer map buffer (entries); `xdp.max_entries` overrides it.
pub const DEFAULT_MAX_ENTRIES: u32 = 65_536;

/// Key of the answer maps: a 64-bit FNV-1a hash of the lower-cased wire-format question name
/// ([`name_hash`]), the name's wire length and the query type: 16 bytes, so the kernel's hash
/// table hashes and compares little. The name itself is in the entry's value
/// ([`AnswerSet::name_at`]) and the XDP program confirms it before answering, so two names that
/// share a key cost time (one of them goes to userspace), never a wrong answer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AnswerKey {
    /// [`name_hash`] of the lower-cased wire name, masked by [`GLOBAL_HASH_MASK`] (a test hook:
    /// all ones in production).
    pub hash: u64,
    /// Query type in host byte order.
    pub qtype: u16,
    /// Wire length of the name, root label included (1..=[`MAX_NAME_LEN`]).
    pub name_len: u8,
    /// Always zero.
    pub _pad: [u8; 5],
}

impl AnswerKey {
    /// An all-zero key.
    pub const fn zeroed() -> Self {
        Self {
            hash: 0,
            qtype: 0,
            name_len: 0,
            _pad: [0; 5],
        }
    }

    /// The key of `name` (lower-cased wire format, root label included) and `qtype`, its hash
    /// masked by `mask`.
    pub fn of(name: &[u8], qtype: u16, mask: u64) -> Self {
        Self {
            hash: name_hash(name) & mask,
            qtype,
            name_len: name.len() as u8,
            _pad: [0; 5],
        }
    }
}

/// Start of [`name_hash`] (the FNV-1a 64-bit offset basis).
pub const NAME_HASH_INIT: u64 = 0xcbf2_9ce4_8422_2325;

/// One 8-byte word more of [`name_hash`]: FNV-1a's xor and multiply on a whole word, then the
/// high half folded into the low (a multiply only carries upward).
#[inline(always)]
pub const fn name_hash_word(hash: u64, word: u64) -> u64 {
    let h = (hash ^ word).wrapping_mul(0x0100_0000_01b3);
    h ^ (h >> 32)
}

/// The hash of a lower-cased wire-format name (root label included) in an [`AnswerKey`]: its
/// bytes zero padded to a multiple of 8, taken as little-endian words ([`name_hash_word`]).
/// The XDP program reads the words from the name it lower-cased into its scratch.
pub fn name_hash(name: &[u8]) -> u64 {
    let mut hash = NAME_HASH_INIT;
    let mut at = 0;
    while at < name.len() {
        let mut word = [0u8; 8];
        let mut i = 0;
        while i < 8 && at + i < name.len() {
            word[i] = name[at + i];
            i += 1;
        }
        hash = name_hash_word(hash, u64::from_le_bytes(word));
        at += 8;
    }
    hash
}

/// One precomputed answer: the answer section's records as wire bytes, ready to copy after the
/// question. Each record's owner is the compression pointer `0xC00C` (the question name).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerSet {
    /// Number of records in `data` (the response's ANCOUNT).
    pub ancount: u16,
    /// Bytes used in `data`; 1..=[`MAX_ANSWER_BYTES`].
    pub len: u16,
    /// Folded ones'-complement sum of `data[..len]` as 16-bit big-endian words starting at an
    /// even offset (RFC 1071). At an odd offset the kernel byte-swaps it (RFC 1071 section 2(B)).
    pub csum: u16,
    /// [`KIND_ANSWER`], [`KIND_LOCATED`] or [`KIND_POLICY`].
    pub kind: u8,
    /// [`FLAG_SIGNED_ZONE`] or 0.
    pub flags: u8,
    /// The hosted zone's slot in [`ZONE_HITS_MAP`] (0: not counted per zone).
    pub zone: u32,
    /// A signed zone's answer to a query with the DO bit ([`FLAG_SIGNED_ZONE`]): `data[..len]`
    /// followed by the records' RRSIGs, `data[..len_do]` (0: it did not fit; the query goes
    /// to userspace), with its record count and folded sum.
    pub len_do: u16,
    pub ancount_do: u16,
    pub csum_do: u16,
    /// Where in `data` the name of the entry's key is: its lower-cased wire bytes at this
    /// multiple of 8, zero up to the next multiple of 8, after the records (and their RRSIGs).
    /// The XDP program compares them with the question's before it answers. Variants: 0, no
    /// name (their key is not a name).
    pub name_at: u16,
    /// Always zero.
    pub _pad: u32,
    /// Rendered resource records ([`KIND_POLICY`]: a [`PolicyRef`] in the first bytes), then
    /// the name (see `name_at`).
    pub data: [u8; MAX_ANSWER_BYTES],
}

impl AnswerSet {
    /// True if a name `name_len` bytes long fits in `data` after `used` bytes of records.
    pub const fn fits(used: usize, name_len: usize) -> bool {
        used.div_ceil(8) * 8 + name_len.div_ceil(8) * 8 <= MAX_ANSWER_BYTES
    }

    /// Bytes `data` uses before the name: the records (with their RRSIGs), or a [`PolicyRef`].
    pub const fn used(&self) -> usize {
        let mut used = if self.len_do > self.len {
            self.len_do
        } else {
            self.len
        } as usize;
        if self.kind == KIND_POLICY {
            used = core::mem::size_of::<PolicyRef>();
        }
        used
    }

    /// Puts `name` (lower-cased wire format) after the records, for the XDP program to confirm.
    /// A signed answer that leaves no room loses its DO part (DO queries go to userspace);
    /// false if the name does not fit even then.
    pub fn set_name(&mut self, name: &[u8]) -> bool {
        if !Self::fits(self.used(), name.len()) && self.len_do != 0 {
            self.len_do = 0;
            self.ancount_do = 0;
            self.csum_do = 0;
        }
        let used = self.used();
        if !Self::fits(used, name.len()) {
            return false;
        }
        let at = used.div_ceil(8) * 8;
        let mut i = used;
        while i < MAX_ANSWER_BYTES {
            self.data[i] = 0;
            i += 1;
        }
        self.data[at..at + name.len()].copy_from_slice(name);
        self.name_at = at as u16;
        true
    }

    /// The name [`set_name`](Self::set_name) put in, `len` bytes long.
    pub fn name(&self, len: usize) -> &[u8] {
        let at = usize::from(self.name_at);
        &self.data[at.min(MAX_ANSWER_BYTES)..(at + len).min(MAX_ANSWER_BYTES)]
    }
}

/// [`AnswerSet::kind`]: an answer that did not depend on the client's location (an ECS option
/// is echoed with scope 0).
pub const KIND_ANSWER: u8 = 0;
/// [`AnswerSet::kind`]: an answer chosen by the client's location (ECS echoed with scope =
/// the query's source prefix length).
pub const KIND_LOCATED: u8 = 1;
/// [`AnswerSet::kind`]: not an answer but a [`PolicyRef`] to the group's variants.
pub const KIND_POLICY: u8 = 2;
/// [`AnswerSet::flags`]: the zone is signed; a query with the DO bit gets the answer with its
/// RRSIGs ([`AnswerSet::len_do`]), or goes to userspace.
pub const FLAG_SIGNED_ZONE: u8 = 1;

/// Where a routing-policy group's answers are: `VARIANTS[(group, cell, draw % slots)]`, with
/// `cell` = `CELLS[client].classes[aspect]` if `located` (0 when no prefix matches), else 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PolicyRef {
    pub group: u32,
    /// 1..=[`MAX_SLOTS`].
    pub slots: u32,
    /// 1 if the answer depends on the client's location cell.
    pub located: u32,
    /// The [`Cell::classes`] index of the aspect it depends on ([`ASPECT_ALL`], [`ASPECT_GEO`],
    /// ...), if `located`.
    pub aspect: u32,
}

/// Most slots of one group (weighted rings are scaled to fit).
pub const MAX_SLOTS: u32 = 1024;

impl AnswerSet {
    /// The ANSWERS entry of a routing-policy group.
    pub const fn policy(r: PolicyRef) -> AnswerSet {
        let mut data = [0u8; MAX_ANSWER_BYTES];
        let g = r.group.to_ne_bytes();
        let s = r.slots.to_ne_bytes();
        let l = r.located.to_ne_bytes();
        let a = r.aspect.to_ne_bytes();
        let mut i = 0;
        while i < 4 {
            data[i] = g[i];
            data[4 + i] = s[i];
            data[8 + i] = l[i];
            data[12 + i] = a[i];
            i += 1;
        }
        AnswerSet {
            ancount: 0,
            len: 0,
            csum: 0,
            kind: KIND_POLICY,
            flags: 0,
            zone: 0,
            len_do: 0,
            ancount_do: 0,
            csum_do: 0,
            name_at: 0,
            _pad: 0,
            data,
        }
    }

    /// The [`PolicyRef`] of a [`KIND_POLICY`] entry.
    #[inline(always)]
    pub fn policy_ref(&self) -> Option<PolicyRef> {
        if self.kind != KIND_POLICY {
            return None;
        }
        let word = |at: usize| {
            u32::from_ne_bytes([
                self.data[at],
                self.data[at + 1],
                self.data[at + 2],
                self.data[at + 3],
            ])
        };
        Some(PolicyRef {
            group: word(0),
            slots: word(4),
            located: word(8),
            aspect: word(12),
        })
    }
}

/// Key of the variant maps: one answer of a routing-policy group for one location cell and one
/// random slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VariantKey {
    pub group: u32,
    pub cell: u32,
    pub slot: u32,
    /// Always zero.
    pub _pad: u32,
}

/// Key of the cell tries (BPF LPM trie layout: prefix length, then the address). IPv4 is
/// mapped into `::ffff:0:0/96` (prefix length + 96).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellKey {
    pub prefix_len: u32,
    pub addr: [u8; 16],
}

/// Aspects of a client's location an answer may depend on: the index of its class in
/// [`Cell::classes`]. A group that depends on one aspect uses that aspect's classes (fewer
/// than all together: a country database has hundreds of countries and thousands of
/// coordinates); one that depends on several uses [`ASPECT_ALL`].
pub const ASPECT_ALL: u32 = 0;
/// Continent, country, subdivision (geolocation).
pub const ASPECT_GEO: u32 = 1;
/// Coordinates (geoproximity).
pub const ASPECT_COORDINATES: u32 = 2;
/// Latency to regions.
pub const ASPECT_LATENCY: u32 = 3;
/// CIDR-collection blocks (IP-based).
pub const ASPECT_CIDR: u32 = 4;
/// Number of aspects, [`ASPECT_ALL`] included.
pub const ASPECTS: usize = 5;
/// A [`Cell::classes`] value: the fast path does not know this client's location (e.g. a
/// MaxMind alias of the IPv4 space inside IPv6); the query passes up.
pub const CLASS_UNKNOWN: u32 = u32::MAX;

/// Value of the cell tries: the class of the prefix's clients in each aspect. Clients of one
/// class are located alike in that aspect, so a group's variants are per class, not per prefix.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cell {
    pub classes: [u32; ASPECTS],
}

/// The first 12 bytes of an IPv4-mapped IPv6 address (`::ffff:0:0/96`).
pub const V4_MAPPED_PREFIX: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
/// Default capacity of each variant map buffer.
pub const DEFAULT_MAX_VARIANTS: u32 = 65_536;
/// Capacity of each cell trie buffer (created without preallocation: entries cost memory when
/// written). A MaxMind country database is about a million networks.
pub const MAX_CELLS: u32 = 4_194_304;

/// Run-time switches of the fast path: the single entry of the `CONTROL` array.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Control {
    /// Which answer buffer readers use: 0 = `ANSWERS_0`, 1 = `ANSWERS_1`.
    pub active: u32,
    /// [`CONTROL_ENABLED`] set: answer from the maps. Clear: pass everything up (the state
    /// before the daemon has filled the maps, and after an orderly shutdown).
    pub flags: u32,
}

/// The daemon's proof of life: the single entry of the `HEARTBEAT` array, written on its own
/// (never under the map writer's lock, so a long reload cannot starve it).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Heartbeat {
    /// CLOCK_MONOTONIC (bpf_ktime_get_ns) when the daemon last proved it is alive.
    pub at_ns: u64,
    /// If non-zero: pass everything up once `at_ns` is older than this, so a crashed or hung
    /// daemon's health state is never served for long.
    pub max_age_ns: u64,
}

/// Name of the heartbeat array.
pub const HEARTBEAT_MAP: &str = "HEARTBEAT";

/// Response rate limiting state of one client prefix (IPv4 /24, IPv6 /56): an LRU hash entry
/// keyed by the masked address (IPv4 mapped into ::ffff:0:0/96). GCRA: a response is allowed
/// while `tat_ns - now <= burst`, and pushes `tat_ns` one interval further.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RrlBucket {
    /// Theoretical arrival time of the next allowed response (CLOCK_MONOTONIC ns).
    pub tat_ns: u64,
    /// Responses refused so far (every `slip`-th is sent truncated).
    pub limited: u32,
    pub _pad: u32,
}

/// Entries of the RRL table (least recently used prefixes are evicted).
pub const RRL_MAX_ENTRIES: u32 = 65_536;
/// Prefix lengths a rate applies to (BIND's defaults).
pub const RRL_V4_PREFIX: u8 = 24;
pub const RRL_V6_PREFIX: u8 = 56;
/// Global (read-only after load): nanoseconds per allowed response per prefix; 0 = no RRL.
pub const GLOBAL_RRL_INTERVAL_NS: &str = "RRL_INTERVAL_NS";
/// Global (read-only after load): how far ahead of now a prefix may run (burst), in ns.
pub const GLOBAL_RRL_BURST_NS: &str = "RRL_BURST_NS";
/// Global (read-only after load): every n-th limited response is sent truncated (0: none).
pub const GLOBAL_RRL_SLIP: &str = "RRL_SLIP";

/// The RRL key of a client address (16 bytes, IPv4 mapped), masked to its prefix.
pub fn rrl_key(addr: [u8; 16], v4: bool) -> [u8; 16] {
    let mut key = addr;
    let keep = if v4 {
        12 + (RRL_V4_PREFIX / 8) as usize
    } else {
        (RRL_V6_PREFIX / 8) as usize
    };
    let mut i = keep;
    while i < 16 {
        key[i] = 0;
        i += 1;
    }
    key
}

/// Bit of [`Control::flags`]: the fast path answers.
pub const CONTROL_ENABLED: u32 = 1;

/// Name of the answer map buffer `i` (0 or 1) in the eBPF object.
pub const ANSWER_MAPS: [&str; 2] = ["ANSWERS_0", "ANSWERS_1"];
/// Name of the variant map buffer `i`.
pub const VARIANT_MAPS: [&str; 2] = ["VARIANTS_0", "VARIANTS_1"];
/// Name of the cell trie buffer `i`.
pub const CELL_MAPS: [&str; 2] = ["CELLS_0", "CELLS_1"];
/// Name of the control array.
pub const CONTROL_MAP: &str = "CONTROL";
/// Name of the per-CPU counter array, indexed by [`Counter`].
pub const COUNTERS_MAP: &str = "COUNTERS";
/// Per-CPU answers sent, by hosted zone slot ([`AnswerSet::zone`]).
pub const ZONE_HITS_MAP: &str = "ZONE_HITS";
/// Zone slots counted in [`ZONE_HITS_MAP`]; slot 0 collects zones beyond it.
pub const MAX_ZONES: u32 = 4096;
/// Name of the XDP program.
pub const PROGRAM_NAME: &str = "dns_xdp";
/// Name of the pass-everything program for a veth peer in native mode.
pub const PASS_PROGRAM_NAME: &str = "xdp_pass";
/// Global (read-only after load): UDP destination port served, host byte order.
pub const GLOBAL_DNS_PORT: &str = "DNS_PORT";
/// Global (read-only after load): UDP payload size this server advertises in OPT.
pub const GLOBAL_EDNS_UDP_SIZE: &str = "EDNS_UDP_SIZE";
/// Global (read-only after load), a test hook: 1 = grow responses at the head, never the tail.
pub const GLOBAL_GROW_AT_HEAD: &str = "GROW_AT_HEAD";
/// Global (read-only after load), a test hook: 0 = random slots (production); d + 1 = always
/// draw d.
pub const GLOBAL_FIXED_DRAW: &str = "FIXED_DRAW";
/// Global (read-only after load), a test hook: the mask on [`AnswerKey::hash`] (production:
/// all ones). A narrow mask makes names share keys, to prove that costs no wrong answer.
pub const GLOBAL_HASH_MASK: &str = "HASH_MASK";

/// Name of the ring buffer of sampled XDP answers ([`TapRecord`]s), read for dnstap.
pub const TAP_MAP: &str = "TAP";
/// Bytes of the [`TAP_MAP`] ring buffer (a power-of-two multiple of the page size): about 500
/// records.
pub const TAP_RING_BYTES: u32 = 1 << 20;
/// Global (read-only after load): one XDP answer in this many is copied to [`TAP_MAP`]; 0 =
/// none (the verifier then removes the code).
pub const GLOBAL_TAP_SAMPLE: &str = "TAP_SAMPLE";
/// Most bytes of a DNS message a [`TapRecord`] holds; a longer one is left out (length 0).
pub const TAP_MESSAGE_BYTES: usize = 1024;

/// One sampled XDP answer: the query as received and the response as sent, for dnstap.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TapRecord {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when the query was read.
    pub time_ns: u64,
    /// The client's address (IPv4: the first 4 bytes).
    pub client: [u8; 16],
    /// The address the query was sent to.
    pub server: [u8; 16],
    /// Ports, host byte order.
    pub client_port: u16,
    pub server_port: u16,
    /// 4 or 6.
    pub family: u8,
    pub _pad: u8,
    /// Bytes of `query` and `response` used; 0 = not copied.
    pub query_len: u16,
    pub response_len: u16,
    pub _pad2: [u8; 6],
    pub query: [u8; TAP_MESSAGE_BYTES],
    pub response: [u8; TAP_MESSAGE_BYTES],
}

/// Per-CPU counters: what the program did with each packet. `Answered` is XDP_TX; every other
/// counter is a reason for XDP_PASS.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Answered with XDP_TX.
    Answered = 0,
    /// Fast path switched off in `CONTROL`.
    Disabled,
    /// Not IPv4/IPv6 (ARP, LLDP, stacked VLANs, ...).
    NotIp,
    /// IP we do not parse: IPv4 options, fragments, IPv6 extension headers.
    IpUnsupported,
    /// Not UDP to the DNS port.
    NotDns,
    /// Lengths inconsistent or truncated (IP, UDP, DNS, trailing bytes).
    Malformed,
    /// Not a plain query: QR, opcode, TC, section counts.
    NotQuery,
    /// Question name we do not handle: compression, bad label, over 255 bytes.
    Qname,
    /// Type other than A/AAAA, or class other than IN.
    Qtype,
    /// EDNS we leave to userspace: version > 0, ECS, malformed or too many options, DO for a
    /// signed zone whose answer with RRSIGs does not fit an entry.
    Edns,
    /// No answer for this name and type in the maps (or none for the client's cell).
    Miss,
    /// The answer would exceed what the client accepts over UDP.
    TooBig,
    /// A helper call failed.
    HelperError,
    /// The daemon's heartbeat is older than allowed: everything goes up.
    Stale,
    /// Over the client prefix's response rate: dropped (XDP_DROP).
    RateLimited,
    /// Over the rate, but slipped: a truncated (TC=1) answer sent so a real client retries
    /// over TCP (XDP_TX).
    Slipped,
}

/// Number of [`Counter`] values.
pub const COUNTER_COUNT: u32 = Counter::Slipped as u32 + 1;

impl Counter {
    /// All counters, in index order.
    pub const ALL: [Counter; COUNTER_COUNT as usize] = [
        Counter::Answered,
        Counter::Disabled,
        Counter::NotIp,
        Counter::IpUnsupported,
        Counter::NotDns,
        Counter::Malformed,
        Counter::NotQuery,
        Counter::Qname,
        Counter::Qtype,
        Counter::Edns,
        Counter::Miss,
        Counter::TooBig,
        Counter::HelperError,
        Counter::Stale,
        Counter::RateLimited,
        Counter::Slipped,
    ];

    /// Stable snake_case name (metrics label).
    pub const fn name(self) -> &'static str {
        match self {
            Counter::Answered => "answered",
            Counter::Disabled => "disabled",
            Counter::NotIp => "not_ip",
            Counter::IpUnsupported => "ip_unsupported",
            Counter::NotDns => "not_dns",
            Counter::Malformed => "malformed",
            Counter::NotQuery => "not_query",
            Counter::Qname => "qname",
            Counter::Qtype => "qtype",
            Counter::Edns => "edns",
            Counter::Miss => "miss",
            Counter::TooBig => "too_big",
            Counter::HelperError => "helper_error",
            Counter::Stale => "stale",
            Counter::RateLimited => "rate_limited",
            Counter::Slipped => "slipped",
        }
    }

    /// The XDP action the program took when it counted this.
    pub const fn action(self) -> &'static str {
        match self {
            Counter::Answered | Counter::Slipped => "tx",
            Counter::RateLimited => "drop",
            _ => "pass",
        }
    }
}

/// Adds `bytes` to a running ones'-complement sum as big-endian 16-bit words that start at an
/// even offset; an odd trailing byte is the high half of a word (RFC 1071).
#[inline(always)]
pub fn csum_add_bytes(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut i = 0;
    while i + 1 < bytes.len() {
        sum += u32::from(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
        i += 2;
    }
    if i < bytes.len() {
        sum += u32::from(bytes[i]) << 8;
    }
    sum
}

/// Folds a 32-bit accumulator into a 16-bit ones'-complement sum.
#[inline(always)]
pub const fn csum_fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// The 16-bit sum of a block that starts at an odd offset, given its even-offset sum.
#[inline(always)]
pub const fn csum_at_odd_offset(sum: u16) -> u16 {
    sum.swap_bytes()
}

/// The UDP checksum field for a folded sum (RFC 768: a computed zero is sent as all ones).
#[inline(always)]
pub const fn udp_checksum_field(folded: u16) -> u16 {
    let c = !folded;
    if c == 0 { 0xffff } else { c }
}

const _: () = assert!(core::mem::size_of::<AnswerKey>() == 16);
const _: () = assert!(core::mem::size_of::<AnswerSet>() == 24 + MAX_ANSWER_BYTES);
const _: () = assert!(core::mem::size_of::<AnswerSet>() == 256);
const _: () = assert!(core::mem::offset_of!(AnswerSet, data) % 8 == 0);
const _: () = assert!(MAX_ANSWER_BYTES % 8 == 0);
const _: () = assert!(core::mem::size_of::<Control>() == 8);
const _: () = assert!(core::mem::size_of::<Heartbeat>() == 16);
const _: () = assert!(core::mem::size_of::<RrlBucket>() == 16);
const _: () = assert!(RRL_V4_PREFIX % 8 == 0 && RRL_V6_PREFIX % 8 == 0);
const _: () = assert!(core::mem::size_of::<VariantKey>() == 16);
const _: () = assert!(core::mem::size_of::<CellKey>() == 20);
const _: () = assert!(core::mem::size_of::<Cell>() == 4 * ASPECTS);
const _: () = assert!(MAX_ANSWER_BYTES % 4 == 0);
const _: () = assert!(core::mem::size_of::<TapRecord>() == 56 + 2 * TAP_MESSAGE_BYTES);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain #[repr(C)] data with explicit padding fields and no invalid bit patterns.
    unsafe impl aya::Pod for super::AnswerKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::AnswerSet {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Control {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Heartbeat {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::RrlBucket {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::VariantKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::CellKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Cell {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::TapRecord {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(len: u16, len_do: u16) -> AnswerSet {
        AnswerSet {
            ancount: 1,
            len,
            csum: 0,
            kind: KIND_ANSWER,
            flags: 0,
            zone: 0,
            len_do,
            ancount_do: 2,
            csum_do: 7,
            name_at: 0,
            _pad: 0,
            data: [0xaa; MAX_ANSWER_BYTES],
        }
    }

    const WWW: &[u8] = b"\x03www\x07example\x03com\x00"; // 17 bytes

    #[test]
    fn the_name_goes_after_the_records_at_a_multiple_of_eight_zero_padded() {
        let mut a = answer(16, 0);
        assert!(a.set_name(WWW));
        assert_eq!(a.name_at, 16);
        assert_eq!(a.name(WWW.len()), WWW);
        assert!(a.data[16 + WWW.len()..].iter().all(|b| *b == 0));
        assert_eq!(a.data[..16], [0xaa; 16]);
        // After a signed answer (records and RRSIGs), rounded up.
        let mut a = answer(16, 101);
        assert!(a.set_name(WWW));
        assert_eq!((a.name_at, a.len_do), (104, 101));
        // A policy reference: after it.
        let mut p = AnswerSet::policy(PolicyRef {
            group: 1,
            slots: 2,
            located: 0,
            aspect: 0,
        });
        assert!(p.set_name(WWW));
        assert_eq!(p.name_at, 16);
        assert_eq!(p.policy_ref().unwrap().slots, 2);
    }

    #[test]
    fn a_signed_answer_without_room_for_the_name_loses_its_do_part_then_the_entry_goes() {
        let mut a = answer(28, 220);
        assert!(a.set_name(WWW));
        assert_eq!((a.len_do, a.ancount_do, a.csum_do), (0, 0, 0));
        assert_eq!(a.name_at, 32);
        let mut full = answer(224, 0);
        assert!(!full.set_name(WWW), "224 + 24 > 232");
        assert!(answer(208, 0).set_name(WWW));
        // One A record and a name of 216 bytes is the most; a 255-byte name never fits.
        assert!(AnswerSet::fits(16, 216) && !AnswerSet::fits(17, 216));
        assert!(!AnswerSet::fits(0, MAX_NAME_LEN));
    }

    #[test]
    fn the_name_hash_takes_little_endian_words_zero_padded() {
        let mut words = [[0u8; 8]; 3];
        for (i, b) in WWW.iter().enumerate() {
            words[i / 8][i % 8] = *b;
        }
        let expected = words.iter().fold(NAME_HASH_INIT, |h, w| {
            name_hash_word(h, u64::from_le_bytes(*w))
        });
        assert_eq!(name_hash(WWW), expected);
        assert_ne!(name_hash(WWW), name_hash(b"\x03wwx\x07example\x03com\x00"));
        let key = AnswerKey::of(WWW, TYPE_A, u64::MAX);
        assert_eq!((key.hash, key.qtype, key.name_len), (expected, TYPE_A, 17));
        assert_eq!(AnswerKey::of(WWW, TYPE_A, 0b11).hash, expected & 0b11);
    }
}
