//! `bench`: the harness's command line. See `bench --help`.

fn main() -> std::process::ExitCode {
    bench::cli::main()
}
