use std::process::ExitCode;

fn main() -> ExitCode {
    lltune::protocol::main_with(lltune::modules::memory::run, lltune::protocol::Kind::PERSISTING)
}
