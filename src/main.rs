//! The `tthc-sync` binary: parse the command line, set up logging, run the command, and turn
//! the outcome into an exit code (0 ok, 1 run failed, 2 bad usage or config, 3 run held by the
//! safety guard, 4 source already being synced).

mod cli;

/// mimalloc: glibc's allocator fragments and slows down under this workload (many small
/// allocations per record across threads); measured in `benches/sync.rs`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let default_level = match args.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("TTHC_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("tthc_sync={default_level}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match cli::run(args) {
        Ok(cli::Outcome::Success) => ExitCode::SUCCESS,
        Ok(cli::Outcome::RunFailed) => ExitCode::from(1),
        Ok(cli::Outcome::Held) => ExitCode::from(3),
        Ok(cli::Outcome::Busy) => ExitCode::from(4),
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.downcast_ref::<cli::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
