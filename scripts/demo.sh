#!/usr/bin/env bash
# Sets everything up and runs the main job on the bundled demo sources (demo/): migrate the
# database, sync every source, show what was stored.
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
echo "Recent runs:"
"$bin" --config "$config" runs --limit 4
echo
echo "The catalogue is in PostgreSQL (${DATABASE_URL:-postgres://root@127.0.0.1:5432/tthc_sync_demo})."
echo "Publishing the commune site is not built yet: there is no site to open."
echo "Try: $bin --config $config changes   |   $bin --config $config procedure 1.001193"
