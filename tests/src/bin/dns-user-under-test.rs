//! The dns-user daemon, built inside the test package so the integration tests can spawn the
//! real binary (cargo exposes CARGO_BIN_EXE_* only for a package's own binaries).
fn main() -> std::process::ExitCode {
    dns_user::cli::main()
}
