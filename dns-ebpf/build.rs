use which::which;

/// Rebuild the eBPF object when bpf-linker changes (e.g. rebuilt for a new toolchain).
fn main() {
    let bpf_linker = which("bpf-linker").expect("bpf-linker not on PATH: run scripts/bootstrap");
    println!("cargo:rerun-if-changed={}", bpf_linker.display());
}
