use std::time::Instant;
use tthc_sync::sync::spool::{Pending, Spool};
fn main() {
    let m =
        tthc_sync::mapping::Mapping::load(std::path::Path::new("mappings/lgsp-xml.toml")).unwrap();
    let pages: Vec<Vec<u8>> = (1..=50)
        .map(|p| tthc_sync::synthetic::lgsp_page(5000, p, 100, 0, 0).into_bytes())
        .collect();
    let mut spool = Spool::new().unwrap();
    let t = Instant::now();
    let (mut ext, mut hash, mut js, mut sp) = (
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
    );
    for body in &pages {
        let text =
            tthc_sync::fetch::decode::body_to_text(body, Some("text/xml; charset=utf-8")).unwrap();
        let mut recs = Vec::new();
        let t0 = Instant::now();
        m.extract(&text, &mut |e| recs.push(e)).unwrap();
        ext += t0.elapsed();
        for e in recs {
            let p = e.result.unwrap();
            let t1 = Instant::now();
            let h = p.content_hash();
            hash += t1.elapsed();
            let t2 = Instant::now();
            let record = serde_json::value::RawValue::from_string(p.to_json()).unwrap();
            js += t2.elapsed();
            let t3 = Instant::now();
            spool
                .push(&Pending {
                    code: p.code,
                    name: p.name,
                    local_code: p.local_code,
                    hash: h,
                    raw_hash: Some(e.raw_hash),
                    verdict: tthc_sync::sync::diff::Verdict::Added,
                    record,
                })
                .unwrap();
            sp += t3.elapsed();
        }
    }
    eprintln!(
        "total {:?}: extract {ext:?} hash {hash:?} json {js:?} spool {sp:?}",
        t.elapsed()
    );
}
