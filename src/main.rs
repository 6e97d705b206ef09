//! The `tthc-sync` binary: parse the command line, set up logging, run the command, and turn
//! the outcome into an exit code (0 ok, 1 run failed, 2 bad usage or configuration, 3 run held
//! by the safety guard, 4 source already being synced).

mod cli;

/// mimalloc: glibc's allocator fragments and slows down under this workload (many small
/// allocations per record across threads); measured in `benches/sync.rs`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    keep_memory_in_small_pages();
    let args = cli::Cli::parse();
    let default_level = match args.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("TTHC_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("tthc_sync={default_level}")));
    // Colour only for a person at a terminal: logs in files and journals stay plain text.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        // A closed stderr must not turn a log line into a panic.
        .log_internal_errors(false)
        .init();
    match cli::run(args) {
        Ok(cli::Outcome::Success) => ExitCode::SUCCESS,
        Ok(cli::Outcome::RunFailed) => ExitCode::from(1),
        Ok(cli::Outcome::Misconfigured) => ExitCode::from(2),
        Ok(cli::Outcome::Held) => ExitCode::from(3),
        Ok(cli::Outcome::Busy) => ExitCode::from(4),
        Err(error) => {
            cli::note(format_args!("error: {error:#}"));
            if error.downcast_ref::<cli::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// mimalloc asks for transparent huge pages on its arenas, so every 2 MiB region it touches
/// counts whole in the resident set: a sync's peak RSS was ~40 % higher for no measurable
/// speed (`benches/sync.rs`, N = 20,000: 101–146 MiB against 67–88 MiB). Small pages keep the
/// process's footprint what it actually uses. Best effort: an old kernel without the option
/// just keeps huge pages.
fn keep_memory_in_small_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
