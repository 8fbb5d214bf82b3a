//! The XDP program lives in `main.rs` (built for bpfel-unknown-none by dns-user's build.rs).
//! This empty library lets dns-user name the crate as a build dependency, so cargo rebuilds
//! the object when the crate changes.
#![no_std]
