#!/usr/bin/env bash
# Sets everything up and runs the main job on the bundled demo sources (demo/): migrate the
# database, sync every source, import a month's statistics report, show what was stored.
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
echo "Recent runs:"
"$bin" --config "$config" runs --limit 4
echo
echo "The catalogue is in PostgreSQL (${DATABASE_URL:-postgres://root@127.0.0.1:5432/tthc_sync_demo})."
echo "Publishing the commune site is not built yet: there is no site to open."
echo "Try: $bin --config $config changes   |   $bin --config $config procedure 1.001193"
