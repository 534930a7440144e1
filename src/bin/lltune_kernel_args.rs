use std::process::ExitCode;

fn main() -> ExitCode {
    lltune::protocol::main_with(lltune::modules::kernel_args::run, lltune::protocol::Kind::CHANGING)
}
