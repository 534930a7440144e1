use std::process::ExitCode;

fn main() -> ExitCode {
    lltune::protocol::main_with(lltune::modules::report::run, lltune::protocol::Kind::REPORT)
}
