//! The `stampede` binary: a thin shell over [`stampede::main_with_args`].

fn main() -> std::process::ExitCode {
    stampede::main_with_args(std::env::args_os())
}
