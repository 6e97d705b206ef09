#!/usr/bin/env bash
# Sets everything up and runs the main job on the bundled demo sources (demo/): migrate the
# database, sync every source, load a month's statistics report and a later provincial export
# (so the change log has something to show), publish the commune site and print where it is.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --locked --quiet
bin=./target/release/tthc-sync
config=demo/tthc-sync.toml
"$bin" --config "$config" migrate
"$bin" --config "$config" sync
echo
echo "Search works without diacritics: tthc-sync procedures --search \"dang ky khai sinh\""
"$bin" --config "$config" procedures --search "dang ky khai sinh" --limit 5
echo
echo "A month's report received as a file: tthc-sync import --source report demo/report/bao-cao-thang-11-2026.csv"
"$bin" --config "$config" import --source report demo/report/bao-cao-thang-11-2026.csv
echo
echo "Dossier statistics, October and November together (tthc-sync stats --period 2026-Q4):"
"$bin" --config "$config" stats --period 2026-Q4 --unit 000.00.22.H24
echo
echo "The province's export a month later (a fee raised, a procedure added, one repealed):"
"$bin" --config "$config" import --source lgsp-demo demo/lgsp/LayDanhSachTTHC-2026-12.xml
echo
echo "Publishing the commune site (tthc-sync publish):"
"$bin" --config "$config" publish
echo
echo "Recent runs:"
"$bin" --config "$config" runs --limit 5
echo
echo "The catalogue is in PostgreSQL (${DATABASE_URL:-postgres://root@127.0.0.1:5432/tthc_sync_demo})."
echo "Try: $bin --config $config changes   |   $bin --config $config procedure 1.001193"
echo "Open the site: $(pwd)/demo/site/xa-cong-hoa/index.html"
