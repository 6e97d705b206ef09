//! What the benchmarks share: the PostgreSQL they use, CPU and memory measurements of the
//! sync process and of PostgreSQL, and running the real binary.

#![allow(dead_code)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use diesel::prelude::*;
use diesel::sql_types::BigInt;

pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into())
}

pub fn database_url(name: &str) -> String {
    let mut url = url::Url::parse(&admin_url()).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// A new, empty database `{prefix}_{pid}` (dropped first if a killed run left it): its name
/// and a connection to the server to drop it with when done.
pub fn fresh_database(prefix: &str) -> (String, PgConnection) {
    let name = format!("{prefix}_{}", std::process::id());
    let mut admin = PgConnection::establish(&admin_url()).expect("PostgreSQL is running");
    for statement in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        diesel::sql_query(statement).execute(&mut admin).unwrap();
    }
    (name, admin)
}

#[derive(QueryableByName)]
pub struct Count {
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// Rows inserted, updated or deleted so far in `tables`.
pub fn rows_written(conn: &mut PgConnection, tables: &[&str]) -> i64 {
    let names: Vec<String> = tables.iter().map(|t| format!("'{t}'")).collect();
    diesel::sql_query(format!(
        "SELECT COALESCE(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint AS n FROM pg_stat_user_tables \
         WHERE relname IN ({})",
        names.join(", ")
    ))
    .get_result::<Count>(conn)
    .map(|c| c.n)
    .unwrap_or(-1)
}

/// CPU time (user + system) of all waited-for children so far.
pub fn children_cpu_seconds() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// CPU time (user + system) of every PostgreSQL process, including exited backends (counted in
/// the postmaster's children times once it has reaped them). Other databases' activity counts
/// too, which on a quiet machine is noise.
pub fn postgres_cpu_seconds() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return f64::NAN;
    };
    let mut total = 0u64;
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ... utime(14) stime(15) cutime(16) cstime(17)
        let Some((comm, rest)) = stat.split_once(") ") else {
            continue;
        };
        if !comm.ends_with("(postgres") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        total += fields
            .get(11..15)
            .map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    }
    total as f64 / ticks
}

/// What running a program measured.
pub struct Measured {
    pub wall: f64,
    /// User + system CPU seconds of the process (and its children).
    pub cpu: f64,
    pub peak_mib: f64,
    pub code: i32,
    pub stdout: String,
}

/// Runs the binary, returning (wall seconds, CPU seconds, peak RSS in MiB, exit code).
pub fn run_sync(config: &std::path::Path, args: &[&str], label: &str) -> (f64, f64, f64, i32) {
    // TTHC_BENCH_WRAP="perf record -g -o target/perf-{run}.data" profiles each sync (the peak
    // RSS shown is then the wrapper's).
    let slug: String = label.chars().filter(char::is_ascii_alphanumeric).collect();
    let wrap = std::env::var("TTHC_BENCH_WRAP")
        .unwrap_or_default()
        .replace("{run}", &slug);
    let mut words = wrap.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(env!("CARGO_BIN_EXE_tthc-sync"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_tthc-sync")),
    };
    command.arg("--config").arg(config).args(args);
    let m = measure(command);
    (m.wall, m.cpu, m.peak_mib, m.code)
}

/// Runs `command` to its end, its standard output kept: wall time, CPU, peak RSS.
pub fn measure(mut command: Command) -> Measured {
    let started = Instant::now();
    let out = tempfile::tempfile().expect("a temporary file");
    let mut child = command
        .stdout(out.try_clone().expect("the temporary file"))
        .spawn()
        .expect("start the program");
    // ru_maxrss would include the harness's own memory (it survives fork and exec), so the peak
    // is read from the child's /proc/PID/status (VmHWM, the high-water mark since exec).
    let pid = child.id();
    let peak_kib = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let peak_kib = peak_kib.clone();
        std::thread::spawn(move || {
            let path = format!("/proc/{pid}/status");
            while let Ok(status) = std::fs::read_to_string(&path) {
                if let Some(kib) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                {
                    peak_kib.fetch_max(kib, Ordering::SeqCst);
                }
                if status.contains("State:\tZ") {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    let cpu_before = children_cpu_seconds();
    let status = child.wait().expect("wait for tthc-sync");
    let wall = started.elapsed().as_secs_f64();
    let cpu = children_cpu_seconds() - cpu_before;
    let code = status.code().unwrap_or(-1);
    let _ = sampler.join();
    let mut stdout = String::new();
    let mut out = out;
    use std::io::{Read, Seek};
    let _ = out.rewind();
    let _ = out.read_to_string(&mut stdout);
    Measured {
        wall,
        cpu,
        peak_mib: peak_kib.load(Ordering::SeqCst) as f64 / 1024.0,
        code,
        stdout,
    }
}

/// The value given after `name` on the benchmark's command line (`cargo bench --bench sync --
/// --n 2000`), if any.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// [`arg`] read as a number (the benchmark stops, naming the option, when it is not one).
pub fn number<T: std::str::FromStr>(name: &str) -> Option<T> {
    arg(name).map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} takes a number, not {v}"))
    })
}

/// A one-worker runtime for the fake portal, and `app` served from it on a free port of
/// 127.0.0.1; the portal's address.
pub fn serve_portal(app: axum::Router) -> (tokio::runtime::Runtime, std::net::SocketAddr) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    (runtime, address)
}
