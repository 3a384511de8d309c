//! The `alga-batch` binary: parse, run, exit with the documented code.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    alga_batch::init_tracing();
    std::process::ExitCode::from(alga_batch::cli::main_entry().await)
}
