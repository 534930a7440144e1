use std::process::ExitCode;

fn main() -> ExitCode {
    lltune::protocol::main(lltune::modules::threads::run)
}
