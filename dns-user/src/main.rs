fn main() -> std::process::ExitCode {
    dns_user::cli::main()
}
