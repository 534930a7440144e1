use std::process::ExitCode;

fn main() -> ExitCode {
    lltune::protocol::main_with(lltune::modules::threads::run, lltune::protocol::Kind::PERSISTING)
}
