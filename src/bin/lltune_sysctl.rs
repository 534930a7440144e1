use std::process::ExitCode;

fn main() -> ExitCode {
    lltune::protocol::main_changing(lltune::modules::sysctl::run)
}
