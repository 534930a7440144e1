use std::process::ExitCode;

fn main() -> ExitCode {
    lltune::protocol::main_with(lltune::modules::timesync::run, lltune::protocol::Kind::CHANGING)
}
