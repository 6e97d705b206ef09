//! Reader micro-benchmark (not a test): how much CPU one record costs from page bytes to a
//! classified record with its JSON, on a cold baseline (every record new), without network or
//! database. The sync benchmark (`benches/sync.rs`) measures the whole run.
//!
//!     cargo bench --bench read                 # 20 pages of 100 records
//!     cargo bench --bench read -- --pages 50 --threads 2

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tthc_sync::mapping::Mapping;
use tthc_sync::sync::reader::{self, Baseline, PageRecord};
use tthc_sync::synthetic;

// The binary's allocator, so that allocation costs what it costs in a real run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut pages = 20u64;
    let mut threads = 1usize;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--pages" => pages = args.next().and_then(|v| v.parse().ok()).unwrap_or(pages),
            "--threads" => threads = args.next().and_then(|v| v.parse().ok()).unwrap_or(threads),
            _ => {}
        }
    }
    let page_size = 100;
    let total = pages * page_size;
    let bodies: Vec<Bytes> = (1..=pages)
        .map(|p| Bytes::from(synthetic::lgsp_page(total, p, page_size, 0, 0)))
        .collect();
    let mapping_file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/lgsp-xml.toml");
    let baseline = Baseline {
        mapping: Mapping::load(&mapping_file).expect("the shipped mapping loads"),
        stored: Arc::new(HashMap::new()),
        known: HashMap::new(),
        by_local_code: HashMap::new(),
        threads,
    };
    let bytes: usize = bodies.iter().map(Bytes::len).sum();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        let mut read = 0usize;
        for body in &bodies {
            let page = reader::read_page::<tthc_sync::model::Procedures>(
                &baseline,
                &Default::default(),
                body,
                Some("text/xml; charset=utf-8"),
                None,
            )
            .unwrap_or_else(|_| panic!("a synthetic page reads"));
            read += page
                .records
                .iter()
                .filter(
                    |r| matches!(r, PageRecord::Read { result: Ok(c), .. } if c.record.is_some()),
                )
                .count();
        }
        assert_eq!(read as u64, total, "every record read");
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "{total} records, {:.1} MiB: best of 5 {:.3} s, {:.0} µs per record, {:.0} MiB/s",
        bytes as f64 / 1048576.0,
        best,
        best * 1e6 / total as f64,
        bytes as f64 / 1048576.0 / best
    );
}
