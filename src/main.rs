//! The `alga-batch` binary: parse, run, exit with the documented code (logging is set up
//! by each command from its flags).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(alga_batch::cli::main_entry().await)
}
