//! The fast path's userspace side: the compiler that turns the catalog into the exact contents
//! of the XDP maps ([`compile`]), the writer that installs them with a double-buffer protocol
//! ([`maps`]), the loader that attaches the program and reads its counters ([`xdp`]), what a
//! restart keeps pinned in bpffs ([`pins`]), and the reader of its sampled answers for dnstap
//! ([`tap`]).

pub mod compile;
pub mod maps;
pub mod pins;
pub mod tap;
pub mod xdp;
