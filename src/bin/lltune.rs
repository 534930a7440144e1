use std::process::ExitCode;

fn main() -> ExitCode {
    lltune::cli::main()
}
